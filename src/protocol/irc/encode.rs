//! Events as IRC lines.

use std::fmt::Write;

use bytes::Bytes;

use super::codec::MAX_MESSAGE_TARGETS;
use super::numeric::*;
use super::{Asked, Caps, IrcFormat, USER_HOST};
use crate::hub::{
    Census, ClientTags, Entry, ErrorCode, Event, GapCause, LeaveReason, MessageText, Nick, Notice,
    NoticeTarget, Outgoing, PostKind, Posted, RoomName, Said, Standing, WhoEntry, Whois,
    describe_changes,
};
use crate::limits::{
    AWAYLEN, CHATHISTORY_MAX, MAX_BANS_PER_ROOM, MAX_MODE_ARGS, MAX_NICK_CHARS, MAX_ROOM_CHARS,
    TOPICLEN,
};

/// The longest line charla writes, CRLF included: what every client accepts.
const MAX_OUT_BYTES: usize = 512;

/// Bytes of nicks per 353 line: a long member list goes out in several, each well
/// within [`MAX_OUT_BYTES`] with its prefix and channel name.
const NAMES_PER_LINE_BYTES: usize = 400;

/// ISUPPORT tokens per 005 line: with the nick and the trailing text, within the 15
/// parameters a line may have.
const ISUPPORT_PER_LINE: usize = 12;

/// User modes for 004: invisible (`+i`) and server operator (`+o`).
const USER_MODES: &str = "io";

/// Channel modes for 004: every letter `hub::Mode` has, then those that take a parameter.
const CHANNEL_MODES: &str = "biklmnostv";
const CHANNEL_MODES_WITH_PARAM: &str = "bklov";

/// The ISUPPORT tokens. Case: charla compares nicks and room names by a key that also
/// makes look-alikes equal (NFC, Unicode lower case, the UTS #39 confusable skeleton,
/// lower case again: `hub::names`), the same rule in every protocol. No registered
/// CASEMAPPING value describes that, so charla names its own rather than claim `ascii` or
/// `rfc1459`. CHANMODES and PREFIX list exactly the modes the hub has (`hub::Mode`).
fn isupport(format: &IrcFormat) -> String {
    format!(
        "AWAYLEN={AWAYLEN} CASEMAPPING=charla-skeleton CHANLIMIT=#:{} CHANMODES=b,k,l,imnst \
         CHANNELLEN={MAX_ROOM_CHARS} CHANTYPES=# MAXLIST=b:{MAX_BANS_PER_ROOM} \
         MODES={MAX_MODE_ARGS} NETWORK=charla NICKLEN={MAX_NICK_CHARS} PREFIX=(ov)@+ \
         TARGMAX=PRIVMSG:{MAX_MESSAGE_TARGETS},NOTICE:{MAX_MESSAGE_TARGETS} \
         TOPICLEN={TOPICLEN} UTF8ONLY WHOX CHATHISTORY={CHATHISTORY_MAX} MSGREFTYPES=msgid,timestamp",
        format.max_rooms_per_client
    )
}

pub fn encode(format: &IrcFormat, out: &Outgoing) -> Bytes {
    let mut s = Lines::new(&format.server);
    let asked = Asked::read(out.reference.as_deref());
    // Writing to a String cannot fail.
    let _ = write_event(&mut s, format, &out.event, asked);
    match asked.label {
        // The answer to a labeled request the hub may answer later (labeled.rs).
        Some(label) => super::labeled::wrap(&format.server, label, &[s.text.as_bytes()]),
        None => Bytes::from(s.text),
    }
}

/// The lines written for one event, with the server's name (`--server-name`) that its
/// numerics and notices start with at hand, so no writer needs it passed apart.
pub(super) struct Lines<'a> {
    pub text: String,
    pub server: &'a str,
}

impl<'a> Lines<'a> {
    pub fn new(server: &'a str) -> Lines<'a> {
        Lines {
            text: String::with_capacity(256),
            server,
        }
    }
}

impl std::ops::Deref for Lines<'_> {
    type Target = String;

    fn deref(&self) -> &String {
        &self.text
    }
}

impl std::ops::DerefMut for Lines<'_> {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.text
    }
}

fn write_event(
    s: &mut Lines<'_>,
    format: &IrcFormat,
    event: &Event,
    asked: Asked<'_>,
) -> std::fmt::Result {
    let server = s.server;
    match event {
        Event::Welcome { nick, census, .. } => {
            let version = env!("CARGO_PKG_VERSION");
            numeric(
                s,
                RPL_WELCOME,
                nick.as_str(),
                &format!(":Welcome to charla, {nick}"),
            )?;
            numeric(
                s,
                RPL_YOURHOST,
                nick.as_str(),
                &format!(":Your host is {server}, running version charla-{version}"),
            )?;
            numeric(
                s,
                RPL_CREATED,
                nick.as_str(),
                ":This server shares its rooms with nc and JSON-lines users",
            )?;
            // The user modes are those MODE of oneself takes; the channel modes are those
            // of `hub::Mode`, then those taking a parameter.
            numeric(
                s,
                RPL_MYINFO,
                nick.as_str(),
                &format!(
                    "{server} charla-{version} {USER_MODES} {CHANNEL_MODES} \
                     {CHANNEL_MODES_WITH_PARAM}"
                ),
            )?;
            // A line has at most 15 parameters: the nick, the tokens and the trailing text,
            // so the tokens go out a few at a time.
            let tokens = isupport(format);
            let tokens: Vec<&str> = tokens.split(' ').collect();
            for some in tokens.chunks(ISUPPORT_PER_LINE) {
                let some = some.join(" ");
                let line = format!("{some} :are supported by this server");
                numeric(s, RPL_ISUPPORT, nick.as_str(), &line)?;
            }
            write_census(s, nick.as_str(), census)?;
            numeric(s, ERR_NOMOTD, nick.as_str(), ":MOTD File is missing")
        }
        Event::Message(said) => write_said(s, format, said, Replay::Live),
        Event::Private {
            id,
            from,
            to,
            text,
            notice,
            ts,
            account,
            tags,
        } => {
            let verb = if *notice { "NOTICE" } else { "PRIVMSG" };
            let about = About {
                ts: *ts,
                id: *id,
                account: account.as_ref(),
                tags: tags.as_ref(),
            };
            let (tag, _) = stamps(format, about, Replay::Live);
            write_text(s, &tag, from.as_str(), verb, to.as_str(), "", text, false)
        }
        Event::TagsOnly {
            id,
            ts,
            from,
            account,
            to,
            tags,
        } if format.caps.has(Caps::MESSAGE_TAGS) => {
            let about = About {
                ts: *ts,
                id: *id,
                account: account.as_ref(),
                tags: Some(tags),
            };
            let (tag, _) = stamps(format, about, Replay::Live);
            let to = match to {
                NoticeTarget::Room(room) => room.as_str(),
                NoticeTarget::Nick(nick) => nick.as_str(),
            };
            writeln_crlf(s, &format!("{tag}:{from}!{from}@{USER_HOST} TAGMSG {to}"))
        }
        Event::TagsOnly { .. } => Ok(()),
        // One's own join names at most the first few members (a room setting); the codec
        // asks for all of them next, as IRC clients build their member lists from it.
        Event::Joined {
            room,
            nick,
            you,
            account,
            away,
            ..
        } => {
            let tag = match account {
                Some(account) if format.caps.has(Caps::ACCOUNT_TAG) => {
                    format!("@account={account} ")
                }
                _ => String::new(),
            };
            let nick = nick.as_str();
            writeln_crlf(s, &format!("{tag}:{nick}!{nick}@{USER_HOST} JOIN {room}"))?;
            // away-notify: someone joining away is told away, as a change would be.
            match away {
                Some(message) if !you && format.caps.has(Caps::AWAY_NOTIFY) => {
                    user_line(s, nick, "AWAY", &format!(":{}", one_line(message.as_str())))
                }
                _ => Ok(()),
            }
        }
        Event::Left {
            room, nick, reason, ..
        } => match reason {
            LeaveReason::Left(message) => {
                let params = match message {
                    Some(m) => format!("{room} :{}", one_line(m.as_str())),
                    None => room.to_string(),
                };
                user_line(s, nick.as_str(), "PART", &params)
            }
            // The leaver's own connection is ending: its goodbye says why; or its one QUIT
            // was written already (`Event::Quit`).
            _ if matches!(
                event,
                Event::Left { you: true, .. }
                    | Event::Left {
                        told_once: true,
                        ..
                    }
            ) =>
            {
                Ok(())
            }
            other => user_line(s, nick.as_str(), "QUIT", &format!(":{}", quit_words(other))),
        },
        Event::Quit { nick, reason } => user_line(
            s,
            nick.as_str(),
            "QUIT",
            &format!(":{}", quit_words(reason)),
        ),
        Event::NickChanged { old, new, .. } => {
            user_line(s, old.as_str(), "NICK", &format!(":{new}"))
        }
        Event::History { room, messages } => {
            // The history a join sends comes before the join itself, where a client has
            // no channel to show it in; the codec asks for it again once joined.
            let batch = match asked.verb {
                "HISTORY" => None,
                // A `chathistory` batch, for a client that reads batches; its reference
                // need only differ from other batches open at once, and none is.
                "CHATHISTORY" if format.caps.has(Caps::BATCH) => {
                    let id = format!("h{}", messages.first().map_or(0, Entry::id));
                    let server = s.server;
                    writeln_crlf(s, &format!(":{server} BATCH +{id} chathistory {room}"))?;
                    Some(id)
                }
                "CHATHISTORY" => None,
                _ => return Ok(()),
            };
            let replay = Replay::Replayed(batch.as_deref());
            for entry in messages {
                match entry {
                    Entry::Said(said) => write_said(s, format, said, replay)?,
                    Entry::Posted(posted) => write_posted(s, format, posted, replay)?,
                }
            }
            match batch {
                Some(id) => {
                    let server = s.server;
                    writeln_crlf(s, &format!(":{server} BATCH -{id}"))
                }
                None => Ok(()),
            }
        }
        Event::Posted(posted) => write_posted(s, format, posted, Replay::Live),
        Event::Status { room, items } => {
            for notice in items {
                // In a cluster, the node that runs it, as the text protocol says it.
                let text = match notice.node() {
                    Some(node) => format!("--- {} (on {node})", notice.text.as_str()),
                    None => format!("--- {}", notice.text.as_str()),
                };
                write_feed(s, "", notice, room.as_str(), &text)?;
            }
            Ok(())
        }
        Event::Who { room, members } => {
            let channel = room.as_ref().map_or("*", RoomName::as_str);
            for member in members {
                match asked.rest.strip_prefix('%') {
                    Some(whox) => write_whox(s, format, asked.nick, channel, member, whox)?,
                    None => {
                        let (user, flags, realname) = who_fields(format, member);
                        let nick = &member.nick;
                        let reply = format!(
                            "{channel} {user} {USER_HOST} {server} {nick} {flags} :0 {realname}"
                        );
                        numeric(s, RPL_WHOREPLY, asked.nick, &reply)?;
                    }
                }
            }
            // The mask as the client sent it (modern.ircdocs.horse).
            let end = format!("{} :End of WHO list", asked.subject);
            numeric(s, RPL_ENDOFWHO, asked.nick, &end)
        }
        // The members the codec asked for after a JOIN: when the join was refused (a ban,
        // a key, a full room), the asker is not among them and the refusal said it all.
        Event::Users { nicks, .. }
            if asked.verb == "JOINED" && !nicks.iter().any(|n| n.as_str() == asked.nick) =>
        {
            Ok(())
        }
        Event::Users {
            room,
            nicks,
            standing,
            secret,
            ..
        } => {
            let room = Names {
                name: room.as_str(),
                secret: *secret,
            };
            names(s, format, asked.nick, room, nicks, standing)
        }
        Event::Topic {
            room,
            topic: Some(topic),
        } => {
            let text = one_line(topic.text.as_str());
            numeric(s, RPL_TOPIC, asked.nick, &format!("{room} :{text}"))?;
            let by = &topic.by;
            let at = topic.at / 1000;
            let who = format!("{room} {by}!{by}@{USER_HOST} {at}");
            numeric(s, RPL_TOPICWHOTIME, asked.nick, &who)
        }
        Event::Topic { room, topic: None } => numeric(
            s,
            RPL_NOTOPIC,
            asked.nick,
            &format!("{room} :No topic is set"),
        ),
        Event::TopicChanged { room, by, topic } => {
            let text = topic.as_ref().map(|t| one_line(t.text.as_str()));
            let text = text.as_deref().unwrap_or("");
            user_line(s, by.as_str(), "TOPIC", &format!("{room} :{text}"))
        }
        Event::Kicked {
            room,
            nick,
            by,
            reason,
        } => {
            // Servers give the kicker's nick when no reason is given.
            let reason = reason.as_ref().map_or(by.as_str(), MessageText::as_str);
            let reason = one_line(reason);
            user_line(s, by.as_str(), "KICK", &format!("{room} {nick} :{reason}"))
        }
        // Nothing changed: IRC servers say nothing.
        Event::ModeChanged { changes, .. } if changes.is_empty() => Ok(()),
        Event::ModeChanged { room, by, changes } => {
            let modes = describe_changes(changes);
            user_line(s, by.as_str(), "MODE", &format!("{room} {modes}"))
        }
        Event::Modes {
            room,
            modes,
            created,
            ..
        } => {
            let modes = modes.describe(true);
            numeric(s, RPL_CHANNELMODEIS, asked.nick, &format!("{room} {modes}"))?;
            let created = created / 1000;
            numeric(
                s,
                RPL_CREATIONTIME,
                asked.nick,
                &format!("{room} {created}"),
            )
        }
        Event::Bans { room, bans } => {
            for ban in bans {
                let (mask, by, at) = (&ban.mask, &ban.by, ban.at / 1000);
                numeric(
                    s,
                    RPL_BANLIST,
                    asked.nick,
                    &format!("{room} {mask} {by} {at}"),
                )?;
            }
            numeric(
                s,
                RPL_ENDOFBANLIST,
                asked.nick,
                &format!("{room} :End of channel ban list"),
            )
        }
        Event::Invited {
            room,
            nick,
            by,
            you: true,
        } => user_line(s, by.as_str(), "INVITE", &format!("{nick} {room}")),
        Event::Invited { room, nick, .. } => {
            numeric(s, RPL_INVITING, asked.nick, &format!("{nick} {room}"))
        }
        Event::Rooms { rooms } => {
            numeric(s, RPL_LISTSTART, asked.nick, "Channel :Users  Name")?;
            for room in rooms {
                let topic = room.topic.as_ref().map_or("", |t| t.as_str());
                let line = format!("{} {} :{}", room.name, room.members, one_line(topic));
                numeric(s, RPL_LIST, asked.nick, &line)?;
            }
            numeric(s, RPL_LISTEND, asked.nick, ":End of /LIST")
        }
        Event::Census(census) => write_census(s, asked.nick, census),
        Event::UserModes { nick, changed, .. } if !changed.is_empty() => {
            user_line(s, nick.as_str(), "MODE", &format!("{nick} :{changed}"))
        }
        Event::UserModes {
            invisible, oper, ..
        } if asked.verb == "MODE" => {
            let mut modes = String::from("+");
            modes.extend(
                [(*invisible, 'i'), (*oper, 'o')]
                    .into_iter()
                    .filter_map(|(on, l)| on.then_some(l)),
            );
            numeric(s, RPL_UMODEIS, asked.nick, &modes)
        }
        // A change that changed nothing: servers say nothing.
        Event::UserModes { .. } => Ok(()),
        Event::Whois(whois) if asked.verb == "USERHOST" => {
            let away = if whois.away.is_some() { '-' } else { '+' };
            let nick = &whois.nick;
            let reply = format!(":{nick}={away}{nick}@{USER_HOST}");
            numeric(s, RPL_USERHOST, asked.nick, &reply)
        }
        Event::Whois(whois) => write_whois(s, format, asked.nick, whois),
        Event::Online(nicks) => {
            let names: Vec<&str> = nicks.iter().map(Nick::as_str).collect();
            numeric(s, RPL_ISON, asked.nick, &format!(":{}", names.join(" ")))
        }
        Event::Away {
            you: true, message, ..
        } => match message {
            Some(_) => numeric(
                s,
                RPL_NOWAWAY,
                asked.nick,
                ":You have been marked as being away",
            ),
            None => numeric(
                s,
                RPL_UNAWAY,
                asked.nick,
                ":You are no longer marked as being away",
            ),
        },
        Event::Away {
            nick,
            message: Some(message),
            ..
        } => {
            let message = one_line(message.as_str());
            numeric(s, RPL_AWAY, asked.nick, &format!("{nick} :{message}"))
        }
        Event::Away { message: None, .. } => Ok(()),
        // Told only to clients that asked for away-notify.
        Event::AwayChanged { nick, message } if format.caps.has(Caps::AWAY_NOTIFY) => match message
        {
            Some(message) => {
                let message = one_line(message.as_str());
                user_line(s, nick.as_str(), "AWAY", &format!(":{message}"))
            }
            None => writeln_crlf(s, &format!(":{nick}!{nick}@{USER_HOST} AWAY")),
        },
        Event::AwayChanged { .. } => Ok(()),
        // A client with echo-message gets its message back as the others got it; the
        // codec put its text in the request's reference (`Asked::rest`).
        Event::Ack { id, ts, .. } if !asked.rest.is_empty() => {
            let (kind, after) = asked.rest.split_at(1);
            // The sender's account, after `~`, when its echo must carry it.
            let (account, after) = match after.strip_prefix('~') {
                Some(rest) => {
                    let end = rest.find([' ', '@']).unwrap_or(rest.len());
                    let (name, after) = rest.split_at(end);
                    (Nick::parse(name).ok(), after)
                }
                None => (None, after),
            };
            let text = after.trim_start_matches(' ');
            let (from, verb, to) = (asked.nick, asked.verb, asked.subject);
            let mut about = About::plain(*ts, *id);
            about.account = account.as_ref();
            if kind == "t" {
                // A TAGMSG's echo: the tags are what it sent.
                let Ok(Some(tags)) = ClientTags::from_section(text) else {
                    return Ok(());
                };
                about.tags = Some(&tags);
                let (tag, _) = stamps(format, about, Replay::Live);
                let line = format!("{tag}:{from}!{from}@{USER_HOST} {verb} {to}");
                return writeln_crlf(s, &line);
            }
            // A message's echo: its client tags right after the kind, if it had any, then
            // its text.
            let (tags, text) = match after.strip_prefix('@') {
                Some(tagged) => {
                    let (section, text) = tagged.split_once(' ').unwrap_or((tagged, ""));
                    (ClientTags::from_section(section).ok().flatten(), text)
                }
                None => (None, text),
            };
            about.tags = tags.as_ref();
            let Some(text) = MessageText::new(text) else {
                return Ok(());
            };
            let (tag, _) = stamps(format, about, Replay::Live);
            write_text(s, &tag, from, verb, to, "", &text, kind == "a")
        }
        // IRC readers know their message was taken when no error comes back.
        Event::Ack { .. } => Ok(()),
        // Only a JSON hello asks for a resume: a gap an IRC client gets is a cluster's,
        // told as a server notice to the room, counted (IRC shows no room numbers).
        Event::Gap {
            room,
            from,
            to,
            cause,
        } => {
            let count = to.saturating_sub(*from) + 1;
            let what = match cause {
                GapCause::NotRelayed => {
                    "said on another node during a cluster outage were not relayed here"
                }
                GapCause::NotKept => {
                    "said while this server was cut off from the other nodes are no longer kept"
                }
            };
            writeln_crlf(
                s,
                &format!(":{server} NOTICE {room} :*** {count} messages {what}"),
            )
        }
        Event::Error { code, message } => write_error(s, *code, message, asked),
        // IRC clients have their own /help; the server's lists text commands.
        Event::Help => Ok(()),
        Event::Account(news) => super::sasl::write_news(s, news, asked.nick),
        Event::Cluster { reachable } => writeln_crlf(
            s,
            &format!(
                ":{server} NOTICE {} :{}",
                asked.nick,
                crate::protocol::cluster_news(*reachable)
            ),
        ),
        Event::Bye { reason } => writeln_crlf(s, &format!("ERROR :Closing link: {reason}")),
    }
}

/// LUSERS: `251` and `266` count the users of every node of a cluster (`251`'s servers
/// are its live nodes), `255` and `265` this node's own; alone, the figures are the same.
/// Server operators, of every node of a cluster, are counted by `252` only when there
/// are some: the Modern IRC documentation calls its count a positive integer, and ngIRCd
/// and InspIRCd leave it out at zero.
fn write_census(s: &mut Lines<'_>, to: &str, census: &Census) -> std::fmt::Result {
    let Census {
        users,
        opers,
        peak,
        rooms,
        global_users,
        global_invisible,
        global_peak,
        servers,
        ..
    } = *census;
    let visible = global_users - global_invisible;
    numeric(
        s,
        RPL_LUSERCLIENT,
        to,
        &format!(
            ":There are {visible} users and {global_invisible} invisible on {servers} servers"
        ),
    )?;
    if opers > 0 {
        numeric(s, RPL_LUSEROP, to, &format!("{opers} :operator(s) online"))?;
    }
    numeric(
        s,
        RPL_LUSERCHANNELS,
        to,
        &format!("{rooms} :channels formed"),
    )?;
    numeric(
        s,
        RPL_LUSERME,
        to,
        &format!(":I have {users} clients and 0 servers"),
    )?;
    numeric(
        s,
        RPL_LOCALUSERS,
        to,
        &format!("{users} {peak} :Current local users {users}, max {peak}"),
    )?;
    numeric(
        s,
        RPL_GLOBALUSERS,
        to,
        &format!(
            "{global_users} {global_peak} :Current global users {global_users}, max {global_peak}"
        ),
    )
}

/// What a WHO reply says of `member`: the user name (the nick for those who gave none),
/// the flags (`H` here or `G` gone, then the room prefix) and the real name.
fn who_fields(format: &IrcFormat, member: &WhoEntry) -> (String, String, String) {
    let nick = member.nick.as_str();
    let user = member.user.as_deref().unwrap_or(nick).to_string();
    let here = if member.away { 'G' } else { 'H' };
    let oper = if member.oper { "*" } else { "" };
    let flags = format!("{here}{oper}{}", shown(format, member.standing));
    let realname = member
        .realname
        .as_ref()
        .map(|r| one_line(r.as_str()).into_owned());
    (user, flags, realname.unwrap_or_else(|| nick.to_string()))
}

/// A WHOX reply (`354`): the fields `whox` names (`fields,token`, as the codec wrote
/// them), in `WHOX_FIELDS` order. charla shows no addresses, so the IP is
/// `255.255.255.255`, as servers give for one hidden; hops are 0 on one server, and the
/// op level, which charla does not have, 0. The real name is last and may hold spaces.
fn write_whox(
    s: &mut Lines<'_>,
    format: &IrcFormat,
    to: &str,
    channel: &str,
    member: &WhoEntry,
    whox: &str,
) -> std::fmt::Result {
    let (fields, token) = whox.split_once(',').unwrap_or((whox, "0"));
    let (user, flags, realname) = who_fields(format, member);
    let mut reply = String::new();
    for field in fields.chars() {
        let value = match field {
            't' => token.to_string(),
            'c' => channel.to_string(),
            'u' => user.clone(),
            'i' => "255.255.255.255".to_string(),
            'h' => USER_HOST.to_string(),
            's' => s.server.to_string(),
            'n' => member.nick.to_string(),
            'f' => flags.clone(),
            'd' | 'o' => "0".to_string(),
            'l' => member.idle.to_string(),
            'a' => member
                .account
                .as_ref()
                .map_or("0".into(), |a| a.to_string()),
            'r' => format!(":{realname}"),
            _ => continue,
        };
        reply.push_str(if reply.is_empty() { "" } else { " " });
        reply.push_str(&value);
    }
    numeric(s, RPL_WHOSPCRPL, to, &reply)
}

/// WHOIS: 311, the rooms in as many 319s as they take, 312, 301 when away, 317, 318.
fn write_whois(s: &mut Lines<'_>, format: &IrcFormat, to: &str, whois: &Whois) -> std::fmt::Result {
    let server = s.server;
    let nick = &whois.nick;
    let realname = whois.realname.as_ref().map(|r| one_line(r.as_str()));
    let realname = realname.as_deref().unwrap_or(nick.as_str());
    let user = whois.user.as_deref().unwrap_or(nick.as_str());
    numeric(
        s,
        RPL_WHOISUSER,
        to,
        &format!("{nick} {user} {USER_HOST} * :{realname}"),
    )?;
    let prefix = format!(":{server} {RPL_WHOISCHANNELS} {to} {nick} :");
    let rooms = whois.rooms.iter();
    let entries = rooms.map(|(room, standing)| (shown(format, *standing), room.as_str()));
    packed(s, &prefix, MAX_OUT_BYTES, entries)?;
    numeric(
        s,
        RPL_WHOISSERVER,
        to,
        &format!("{nick} {server} :charla, shared with nc and JSON-lines users"),
    )?;
    if whois.oper {
        numeric(
            s,
            RPL_WHOISOPERATOR,
            to,
            &format!("{nick} :is an IRC operator"),
        )?;
    }
    if let Some(account) = &whois.account {
        let line = format!("{nick} {account} :is logged in as");
        numeric(s, RPL_WHOISACCOUNT, to, &line)?;
    }
    if let Some(away) = &whois.away {
        let away = one_line(away.as_str());
        numeric(s, RPL_AWAY, to, &format!("{nick} :{away}"))?;
    }
    let (idle, signon) = (whois.idle / 1000, whois.signon / 1000);
    numeric(
        s,
        RPL_WHOISIDLE,
        to,
        &format!("{nick} {idle} {signon} :seconds idle, signon time"),
    )?;
    numeric(
        s,
        RPL_ENDOFWHOIS,
        to,
        &format!("{nick} :End of /WHOIS list"),
    )
}

/// A refusal as the numeric real servers send for it; the hub's sentence, which may
/// quote what was typed, is the trailing text with its control characters removed.
fn write_error(
    s: &mut Lines<'_>,
    code: ErrorCode,
    message: &str,
    asked: Asked<'_>,
) -> std::fmt::Result {
    let server = s.server;
    // Nothing ever answers a NOTICE automatically (RFC 2812), and what the codec asked for
    // on its own after a join (its members, its history) has nothing to add when the join
    // failed: the join's own error said it.
    if matches!(asked.verb, "NOTICE" | "HISTORY" | "JOINED") {
        return Ok(());
    }
    // `FAIL CHATHISTORY INVALID_TARGET <subcommand> <target>`, as the draft spells it.
    if asked.verb == "CHATHISTORY" {
        let sub = if asked.rest.is_empty() {
            "*"
        } else {
            asked.rest
        };
        let line = format!(
            ":{server} FAIL CHATHISTORY INVALID_TARGET {sub} {} :{}",
            asked.subject,
            one_line(&crate::hub::sanitize(message))
        );
        return writeln_crlf(s, &line);
    }
    // NAMES of a channel that does not exist, or that one may not see, is its end alone
    // (RFC 2812, modern.ircdocs.horse).
    if asked.verb == "NAMES" {
        let end = format!("{} :End of /NAMES list", asked.subject);
        return numeric(s, RPL_ENDOFNAMES, asked.nick, &end);
    }
    // USERHOST lists those it finds, and says nothing of the rest.
    if asked.verb == "USERHOST" {
        return numeric(s, RPL_USERHOST, asked.nick, ":");
    }
    // The hub's text points to the text client's `/login`, which IRC has not: an IRC
    // client logs in to an account with SASL.
    let sasl;
    let message = match code {
        ErrorCode::NickRegistered => {
            sasl = format!(
                "{} is registered; log in with SASL PLAIN to use it",
                asked.subject
            );
            &sasl
        }
        ErrorCode::AccountRequired => {
            sasl = "this server lets only users with an account talk: log in with SASL PLAIN"
                .to_string();
            &sasl
        }
        _ => message,
    };
    let clean = crate::hub::sanitize(message);
    let message = one_line(&clean);
    // KICK and INVITE ask about `#room,nick`; everything else about one name.
    let (room, nick) = asked
        .subject
        .split_once(',')
        .unwrap_or((asked.subject, asked.subject));
    let both = format!("{nick} {room}");
    let (number, subject) = match code {
        ErrorCode::NoSuchNick => (ERR_NOSUCHNICK, Some(nick)),
        ErrorCode::InvalidRoom => (ERR_NOSUCHCHANNEL, Some(room)),
        ErrorCode::NotInRoom if asked.verb == "PRIVMSG" => (ERR_CANNOTSENDTOCHAN, Some(room)),
        ErrorCode::NotInRoom => (ERR_NOTONCHANNEL, Some(room)),
        ErrorCode::NotOperator => (ERR_CHANOPRIVSNEEDED, Some(room)),
        ErrorCode::Banned if asked.verb == "JOIN" => (ERR_BANNEDFROMCHAN, Some(room)),
        ErrorCode::Banned | ErrorCode::Moderated => (ERR_CANNOTSENDTOCHAN, Some(room)),
        ErrorCode::InviteOnly => (ERR_INVITEONLYCHAN, Some(room)),
        ErrorCode::BadKey => (ERR_BADCHANNELKEY, Some(room)),
        ErrorCode::RoomFull => (ERR_CHANNELISFULL, Some(room)),
        ErrorCode::TargetNotInRoom if asked.verb == "KICK" => {
            (ERR_USERNOTINCHANNEL, Some(both.as_str()))
        }
        ErrorCode::TargetNotInRoom => (ERR_USERNOTINCHANNEL, Some("*")),
        ErrorCode::InvalidArgument if asked.verb == "INVITE" => {
            (ERR_USERONCHANNEL, Some(both.as_str()))
        }
        ErrorCode::TooManyRooms => (ERR_TOOMANYCHANNELS, Some(asked.subject)),
        ErrorCode::InvalidNick => (ERR_ERRONEUSNICKNAME, Some(asked.subject)),
        ErrorCode::NickTaken | ErrorCode::NickRegistered => {
            (ERR_NICKNAMEINUSE, Some(asked.subject))
        }
        ErrorCode::EmptyMessage => (ERR_NOTEXTTOSEND, None),
        ErrorCode::BadPassword if asked.verb == "OPER" => (ERR_PASSWDMISMATCH, None),
        ErrorCode::NoOperators => (ERR_NOOPERHOST, None),
        ErrorCode::NotRegistered => (ERR_NOTREGISTERED, None),
        ErrorCode::LineTooLong => (ERR_INPUTTOOLONG, None),
        ErrorCode::MissingArgument => (ERR_NEEDMOREPARAMS, Some(asked.verb)),
        ErrorCode::UnknownCommand => (ERR_UNKNOWNCOMMAND, Some(asked.verb)),
        // Refused at connect (the server is full): the connection closes after this.
        ErrorCode::ServerFull | ErrorCode::TooManyConnections => {
            return writeln_crlf(s, &format!("ERROR :Closing link: {message}"));
        }
        ErrorCode::InvalidUtf8 => {
            // IRCv3's standard reply for UTF8ONLY servers.
            return writeln_crlf(
                s,
                &format!(":{server} FAIL {} INVALID_UTF8 :{message}", asked.verb),
            );
        }
        // Flood control and the rest have no numeric: a notice from the server.
        _ => {
            return writeln_crlf(s, &format!(":{server} NOTICE {} :{message}", asked.nick));
        }
    };
    match subject {
        Some(subject) => numeric(s, number, asked.nick, &format!("{subject} :{message}"))?,
        None => numeric(s, number, asked.nick, &format!(":{message}"))?,
    }
    if asked.verb == "WHOIS" {
        // A WHOIS always ends with its 318, found or not.
        let end = format!("{} :End of /WHOIS list", asked.subject);
        numeric(s, RPL_ENDOFWHOIS, asked.nick, &end)?;
    }
    Ok(())
}

/// Whether a message is said now or replayed from history, and in which batch.
#[derive(Clone, Copy)]
enum Replay<'a> {
    Live,
    Replayed(Option<&'a str>),
}

fn write_said(
    s: &mut Lines<'_>,
    format: &IrcFormat,
    said: &Said,
    replay: Replay<'_>,
) -> std::fmt::Result {
    let about = About {
        account: said.account.as_ref(),
        tags: said.tags.as_ref(),
        ..About::plain(said.ts, said.id)
    };
    let (tag, stamp) = stamps(format, about, replay);
    write_text(
        s,
        &tag,
        said.from.as_str(),
        if said.notice { "NOTICE" } else { "PRIVMSG" },
        said.room.as_str(),
        &stamp,
        &said.text,
        said.action,
    )
}

fn write_posted(
    s: &mut Lines<'_>,
    format: &IrcFormat,
    posted: &Posted,
    replay: Replay<'_>,
) -> std::fmt::Result {
    let (tag, stamp) = stamps(format, About::plain(posted.ts, posted.id), replay);
    let notice = &*posted.notice;
    let marker = match notice.kind {
        PostKind::Notice => "",
        PostKind::Alert => "!!! ",
    };
    let text = format!("{stamp}{marker}{}", notice.text.as_str());
    write_feed(s, &tag, notice, posted.room.as_str(), &text)
}

/// What the tags of a line about a message are made of.
#[derive(Clone, Copy)]
struct About<'a> {
    /// When the hub stamped it.
    ts: u64,
    /// Its id, unique in the server's life: the `msgid`.
    id: u64,
    /// The sender's account.
    account: Option<&'a Nick>,
    /// What the sender's client attached for other clients.
    tags: Option<&'a ClientTags>,
}

impl<'a> About<'a> {
    fn plain(ts: u64, id: u64) -> About<'a> {
        About {
            ts,
            id,
            account: None,
            tags: None,
        }
    }
}

/// The tags a line about a message starts with, as `format`'s capabilities ask (`time`
/// for server-time; `msgid` and the client's own tags for message-tags; `account` for
/// account-tag), and the stamp a replayed line's text starts with for a client without
/// server-time (`[history HH:MM UTC]`). The time is the message's own, as the hub stamped
/// it, in a replay too. A format with none of those capabilities allocates nothing.
fn stamps(format: &IrcFormat, about: About<'_>, replay: Replay<'_>) -> (String, String) {
    let caps = format.caps;
    let server_time = caps.has(Caps::SERVER_TIME);
    let (history, batch) = match replay {
        Replay::Live => (false, None),
        Replay::Replayed(batch) => (true, batch),
    };
    if !caps.any(Caps::TAGGING) && batch.is_none() {
        let stamp = if history {
            history_time(about.ts)
        } else {
            String::new()
        };
        return (String::new(), stamp);
    }
    let mut tag = String::from("@");
    if let Some(batch) = batch {
        let _ = write!(tag, "batch={batch};");
    }
    if server_time {
        let ts = about.ts;
        let at = i64::try_from(ts)
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let _ = write!(
            tag,
            "time={}.{:03}Z;",
            at.strftime("%Y-%m-%dT%H:%M:%S"),
            ts % 1000
        );
    }
    if caps.has(Caps::MESSAGE_TAGS) {
        let _ = write!(tag, "msgid={};", about.id);
    }
    if let Some(account) = about.account.filter(|_| caps.has(Caps::ACCOUNT_TAG)) {
        let _ = write!(tag, "account={account};");
    }
    if let Some(tags) = about.tags.filter(|_| caps.has(Caps::MESSAGE_TAGS)) {
        tag.push_str(tags.as_str());
        tag.push(';');
    }
    if tag.len() == 1 {
        // Only account-tag, and no account.
        tag.clear();
    } else {
        tag.pop();
        tag.push(' ');
    }
    let stamp = if history && !server_time {
        history_time(about.ts)
    } else {
        String::new()
    };
    (tag, stamp)
}

/// A feed speaks as `[source]!feed@charla`: a charla nick never contains `[`, so no
/// person can pass for a feed (`check.feed` could be a nick: they may contain dots).
fn write_feed(
    s: &mut Lines<'_>,
    tag: &str,
    notice: &Notice,
    room: &str,
    text: &str,
) -> std::fmt::Result {
    let source: String = notice
        .source
        .as_str()
        .chars()
        .map(|c| if matches!(c, '!' | '@' | ' ') { '_' } else { c })
        .collect();
    let prefix = format!("{tag}:[{source}]!feed@{USER_HOST} NOTICE {room} :");
    split_lines(s, &prefix, "", text, "")
}

/// `[history HH:MM UTC] `, as text readers see a replayed line.
fn history_time(ts: u64) -> String {
    let minutes = ts / 60_000;
    format!(
        "[history {:02}:{:02} UTC] ",
        minutes / 60 % 24,
        minutes % 60
    )
}

/// A PRIVMSG or NOTICE from `from`, its formatting codes kept, split over as many lines as it
/// takes, each starting with `tag`; an action is CTCP ACTION in each.
#[allow(clippy::too_many_arguments)]
fn write_text(
    s: &mut Lines<'_>,
    tag: &str,
    from: &str,
    verb: &str,
    to: &str,
    stamp: &str,
    text: &MessageText,
    action: bool,
) -> std::fmt::Result {
    let prefix = format!("{tag}:{from}!{from}@{USER_HOST} {verb} {to} :");
    let text = format!("{stamp}{}", text.as_str());
    if action {
        split_lines(s, &prefix, "\x01ACTION ", &text, "\x01")
    } else {
        split_lines(s, &prefix, "", &text, "")
    }
}

/// Writes `prefix open part close` lines, `text` cut into parts on character boundaries
/// so no line passes [`MAX_OUT_BYTES`]: a 4 KiB line from an nc user reaches IRC whole.
/// Each part after the first has a `msgid` of its own (`ID-2`, `ID-3`…): a client that
/// tells messages apart by their msgid would otherwise keep only the first.
fn split_lines(
    s: &mut Lines<'_>,
    prefix: &str,
    open: &str,
    text: &str,
    close: &str,
) -> std::fmt::Result {
    let fixed = prefix.len() + open.len() + close.len() + 2;
    if text.is_empty() {
        return Ok(());
    }
    if fixed + text.len() <= MAX_OUT_BYTES {
        return write!(s, "{prefix}{open}{text}{close}\r\n");
    }
    let msgid_end = prefix.find("msgid=").map(|at| {
        let digits = prefix[at + 6..].bytes().take_while(u8::is_ascii_digit);
        at + 6 + digits.count()
    });
    // Room for the longest part's `-N` too.
    let suffix = msgid_end.map_or(0, |_| 2 + text.len().checked_ilog10().unwrap_or(0) as usize);
    let room = MAX_OUT_BYTES.saturating_sub(fixed + suffix).max(4);
    let mut rest = text;
    let mut part_number = 1;
    while !rest.is_empty() {
        let mut cut = rest.len().min(room);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, after) = rest.split_at(cut);
        match msgid_end.filter(|_| part_number > 1) {
            Some(end) => {
                let (head, tail) = prefix.split_at(end);
                write!(s, "{head}-{part_number}{tail}{open}{part}{close}\r\n")?;
            }
            None => write!(s, "{prefix}{open}{part}{close}\r\n")?,
        }
        rest = after;
        part_number += 1;
    }
    Ok(())
}

fn user_line(s: &mut Lines<'_>, nick: &str, verb: &str, params: &str) -> std::fmt::Result {
    writeln_crlf(s, &format!(":{nick}!{nick}@{USER_HOST} {verb} {params}"))
}

/// `353`s naming `nicks`, `@` before operators and `+` before voiced members, as many as
/// it takes, then `366`. Each line's nicks fit in what its prefix leaves of
/// [`MAX_OUT_BYTES`]: the recipient's nick and the room's name take up to 96 and 128 bytes
/// in a script of many bytes a character, and a line cut at the bound would lose members.
/// The room a NAMES answers for, as its `353`s name it.
struct Names<'a> {
    name: &'a str,
    /// Secret (`+s`): `@` in place of `=` (RFC 2812, modern.ircdocs.horse).
    secret: bool,
}

fn names(
    s: &mut Lines<'_>,
    format: &IrcFormat,
    to: &str,
    room: Names<'_>,
    nicks: &[Nick],
    standing: &[Standing],
) -> std::fmt::Result {
    let server = s.server;
    let symbol = if room.secret { '@' } else { '=' };
    let room = room.name;
    let prefix = format!(":{server} {RPL_NAMREPLY} {to} {symbol} {room} :");
    // userhost-in-names: each member as the source of their lines reads.
    let addresses: Vec<String> = if format.caps.has(Caps::USERHOST_IN_NAMES) {
        nicks
            .iter()
            .map(|n| format!("{n}!{n}@{USER_HOST}"))
            .collect()
    } else {
        Vec::new()
    };
    let names = nicks
        .iter()
        .enumerate()
        .map(|(i, nick)| addresses.get(i).map_or(nick.as_str(), String::as_str));
    let entries = names.zip(standing);
    let entries = entries.map(|(name, standing)| (shown(format, *standing), name));
    packed(s, &prefix, NAMES_PER_LINE_BYTES, entries)?;
    numeric(
        s,
        RPL_ENDOFNAMES,
        to,
        &format!("{room} :End of /NAMES list"),
    )
}

/// `prefix` lines naming each entry (its standing's prefix, then a name), as many to a
/// line as fit in `most` bytes and in what `prefix` leaves of [`MAX_OUT_BYTES`]: no name is
/// cut, however many bytes a character its script takes.
fn packed<'a>(
    s: &mut Lines<'_>,
    prefix: &str,
    most: usize,
    entries: impl Iterator<Item = (&'a str, &'a str)>,
) -> std::fmt::Result {
    let most = most.min(MAX_OUT_BYTES.saturating_sub(prefix.len() + 2));
    let mut line = String::new();
    for (standing, name) in entries {
        let entry = standing.len() + name.len();
        if !line.is_empty() && line.len() + 1 + entry > most {
            writeln_crlf(s, &format!("{prefix}{line}"))?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(standing);
        line.push_str(name);
    }
    if !line.is_empty() {
        writeln_crlf(s, &format!("{prefix}{line}"))?;
    }
    Ok(())
}

/// The prefixes a member is shown with: every one for a client with multi-prefix, the
/// highest for others.
fn shown(format: &IrcFormat, standing: Standing) -> &'static str {
    if format.caps.has(Caps::MULTI_PREFIX) {
        standing.prefixes()
    } else {
        standing.prefix()
    }
}

/// `:charla NUMBER to rest`.
pub(super) fn numeric(s: &mut Lines<'_>, number: &str, to: &str, rest: &str) -> std::fmt::Result {
    let server = s.server;
    writeln_crlf(s, &format!(":{server} {number} {to} {rest}"))
}

/// Writes `line` and CRLF, what follows its tags cut on a character boundary to [`MAX_OUT_BYTES`]: a parting
/// message or a refusal's sentence may be as long as any text line (4 KiB from nc), and
/// unlike a message it is not worth several lines.
pub(super) fn writeln_crlf(s: &mut String, line: &str) -> std::fmt::Result {
    // The tags do not count (IRCv3 message-tags bounds them apart): only what follows
    // them is cut.
    let tags = match line.strip_prefix('@') {
        Some(tagged) => tagged.find(' ').map_or(line.len(), |space| space + 2),
        None => 0,
    };
    let mut end = line.len().min(tags + MAX_OUT_BYTES - 2);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    write!(s, "{}\r\n", &line[..end])
}

/// Why someone left, as a QUIT's reason.
fn quit_words(reason: &LeaveReason) -> String {
    match reason {
        LeaveReason::Quit(Some(message)) => format!("Quit: {}", one_line(message.as_str())),
        other => one_line(&other.to_string()).into_owned(),
    }
}

/// `text` with no line break left in it: a sanitised text has none, but a line cut in two
/// would let a client write another command.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\r', '\n', '\0']) {
        text.replace(['\r', '\n', '\0'], " ").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::RoomName;

    fn format() -> &'static IrcFormat {
        IrcFormat::for_limits(&crate::limits::Limits::default())
    }

    fn lines(event: Event, reference: Option<&str>) -> Vec<String> {
        let out = Outgoing::reply(event, reference.map(String::from));
        let bytes = encode(format(), &out);
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
        text.split_terminator("\r\n").map(String::from).collect()
    }

    fn nick(n: &str) -> Nick {
        Nick::parse(n).unwrap()
    }

    #[test]
    fn a_chathistory_batch_opens_and_closes_with_the_servers_prefix() {
        let event = Event::History {
            room: room("#ops"),
            messages: vec![Entry::Said(said("hola", false))],
        };
        let out = Outgoing::reply(event, Some("ana CHATHISTORY #ops".into()));
        let bytes = encode(format().with_caps(Caps::BATCH), &out);
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(
            lines,
            [
                ":charla BATCH +h1 chathistory #ops",
                "@batch=h1 :João!João@charla PRIVMSG #ops :[history 00:00 UTC] hola",
                ":charla BATCH -h1",
            ]
        );
    }

    fn room(r: &str) -> RoomName {
        RoomName::parse(r).unwrap()
    }

    fn said(text: &str, action: bool) -> Said {
        Said {
            id: 1,
            seq: 1,
            ts: 0,
            room: room("#ops"),
            from: nick("João"),
            text: MessageText::new(text).unwrap(),
            action,
            notice: false,
            account: None,
            tags: None,
        }
    }

    #[test]
    fn messages_keep_formatting_and_actions_are_ctcp() {
        assert_eq!(
            lines(Event::Message(said("olá \x02forte\x02", false)), None),
            [":João!João@charla PRIVMSG #ops :olá \x02forte\x02"]
        );
        assert_eq!(
            lines(Event::Message(said("waves", true)), None),
            [":João!João@charla PRIVMSG #ops :\x01ACTION waves\x01"]
        );
    }

    #[test]
    fn a_lines_tags_do_not_count_against_its_512_bytes() {
        let tags = format!("@+baz={}", "a".repeat(4081));
        let mut s = String::new();
        writeln_crlf(&mut s, &format!("{tags} :ana!ana@charla TAGMSG #ops")).unwrap();
        assert_eq!(s, format!("{tags} :ana!ana@charla TAGMSG #ops\r\n"));
        s.clear();
        let long = format!("{tags} :charla NOTICE ana :{}", "é".repeat(400));
        writeln_crlf(&mut s, &long).unwrap();
        let (_, rest) = s.split_once(' ').unwrap();
        assert!(
            rest.len() <= MAX_OUT_BYTES && rest.ends_with("é\r\n"),
            "{rest}"
        );
    }

    #[test]
    fn tags_on_messages_follow_the_capabilities_asked_for() {
        let mut tagged = said("hola", false);
        // 22:13:20.123 UTC on 14 November 2023.
        tagged.id = 42;
        tagged.ts = 1_700_000_000_123;
        tagged.account = Some(nick("joao"));
        tagged.tags = ClientTags::from_section("+draft/react=x").unwrap();
        let write_of = |said: &Said, caps: Caps, history: bool| {
            let mut s = Lines::new("charla");
            let replay = if history {
                Replay::Replayed(None)
            } else {
                Replay::Live
            };
            write_said(&mut s, format().with_caps(caps), said, replay).unwrap();
            s.text
        };
        let write = |caps, history| write_of(&tagged, caps, history);
        let line = ":João!João@charla PRIVMSG #ops :";
        assert_eq!(write(Caps::default(), false), format!("{line}hola\r\n"));
        assert_eq!(
            write(Caps::ACCOUNT_TAG, false),
            format!("@account=joao {line}hola\r\n")
        );
        assert_eq!(
            write(Caps::MESSAGE_TAGS, true),
            format!("@msgid=42;+draft/react=x {line}[history 22:13 UTC] hola\r\n")
        );
        let all = Caps::MESSAGE_TAGS
            .with(Caps::ACCOUNT_TAG, true)
            .with(Caps::SERVER_TIME, true);
        assert_eq!(
            write(all, true),
            format!(
                "@time=2023-11-14T22:13:20.123Z;msgid=42;account=joao;+draft/react=x {line}hola\r\n"
            )
        );
        // Without an account, account-tag alone adds nothing.
        let anonymous = Said {
            account: None,
            ..tagged.clone()
        };
        assert_eq!(
            write_of(&anonymous, Caps::ACCOUNT_TAG, false),
            format!("{line}hola\r\n")
        );
    }

    #[test]
    fn long_messages_split_on_character_boundaries() {
        let text = "ñ".repeat(2000);
        let got = lines(Event::Message(said(&text, false)), None);
        assert!(got.len() > 1);
        let mut joined = String::new();
        for line in &got {
            assert!(line.len() + 2 <= MAX_OUT_BYTES, "{}", line.len());
            joined.push_str(
                line.strip_prefix(":João!João@charla PRIVMSG #ops :")
                    .unwrap(),
            );
        }
        assert_eq!(joined, text);
    }

    #[test]
    fn each_part_of_a_split_message_has_a_msgid_of_its_own() {
        let mut long = said(&"ñ".repeat(600), false);
        long.id = 42;
        long.tags = ClientTags::from_section("+draft/react=x").unwrap();
        let mut s = Lines::new("charla");
        write_said(
            &mut s,
            format().with_caps(Caps::MESSAGE_TAGS),
            &long,
            Replay::Live,
        )
        .unwrap();
        let got: Vec<&str> = s.text.split_terminator("\r\n").collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        let mut joined = String::new();
        for (n, line) in got.iter().enumerate() {
            assert!(line.len() + 2 <= MAX_OUT_BYTES, "{}", line.len());
            let msgid = match n {
                0 => "@msgid=42;".to_string(),
                n => format!("@msgid=42-{};", n + 1),
            };
            let head = format!("{msgid}+draft/react=x :João!João@charla PRIVMSG #ops :");
            joined.push_str(line.strip_prefix(&head).unwrap_or_else(|| panic!("{line}")));
        }
        assert_eq!(joined, "ñ".repeat(600));
    }

    #[test]
    fn lusers_counts_operators_with_252_only_when_there_are_some() {
        let census = Census {
            users: 3,
            opers: 2,
            peak: 3,
            rooms: 1,
            global_users: 3,
            global_invisible: 0,
            global_peak: 3,
            servers: 1,
        };
        let got = lines(Event::Census(census), None);
        assert_eq!(
            got[0],
            ":charla 251 * :There are 3 users and 0 invisible on 1 servers"
        );
        assert_eq!(got[1], ":charla 252 * 2 :operator(s) online");
        assert_eq!(got[2], ":charla 254 * 1 :channels formed");
        let none = lines(Event::Census(Census { opers: 0, ..census }), None);
        assert!(none.iter().all(|l| !l.contains(" 252 ")), "{none:#?}");
        assert_eq!(none.len(), got.len() - 1);
    }

    #[test]
    fn welcome_is_001_to_005_lusers_then_422_with_honest_tokens() {
        let got = lines(
            Event::Welcome {
                nick: nick("ana"),
                rooms: vec![],
                census: Census {
                    users: 3,
                    opers: 0,
                    peak: 7,
                    rooms: 2,
                    global_users: 10,
                    global_invisible: 4,
                    global_peak: 12,
                    servers: 3,
                },
            },
            None,
        );
        let numbers: Vec<&str> = got.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
        assert_eq!(
            numbers,
            [
                "001", "002", "003", "004", "005", "005", "251", "254", "255", "265", "266", "422"
            ]
        );
        assert_eq!(
            got[3],
            ":charla 004 ana charla charla-0.1.0 io biklmnostv bklov"
                .replace("0.1.0", env!("CARGO_PKG_VERSION"))
        );
        // This node's users, then the cluster's (three nodes).
        assert_eq!(got[9], ":charla 265 ana 3 7 :Current local users 3, max 7");
        assert_eq!(
            got[10],
            ":charla 266 ana 10 12 :Current global users 10, max 12"
        );
        assert_eq!(got[8], ":charla 255 ana :I have 3 clients and 0 servers");
        assert_eq!(
            got[6],
            ":charla 251 ana :There are 6 users and 4 invisible on 3 servers"
        );
        assert_eq!(got[7], ":charla 254 ana 2 :channels formed");
        assert!(
            got.iter()
                .all(|l| l.starts_with(":charla ") && l.split(' ').nth(2) == Some("ana"))
        );
        for line in &got[4..6] {
            let parsed = crate::protocol::irc::message::Message::parse(line).unwrap();
            assert!(parsed.params.len() <= 15, "{line}");
        }
        let isupport = format!("{} {}", got[4], got[5]);
        for token in [
            "CHANTYPES=#",
            "NICKLEN=24",
            "CHANNELLEN=32",
            "CHANLIMIT=#:100",
            "NETWORK=charla",
            "UTF8ONLY",
        ] {
            assert!(
                isupport.split(' ').any(|t| t == token),
                "{token} in {isupport}"
            );
        }
        assert!(!isupport.contains("rfc1459") && !isupport.contains("=ascii"));
    }

    #[test]
    fn errors_are_numerics_naming_the_recipient_and_subject() {
        let error = |code| Event::Error {
            code,
            message: "nobody is called bob".into(),
        };
        assert_eq!(
            lines(error(ErrorCode::NoSuchNick), Some("ana PRIVMSG bob")),
            [":charla 401 ana bob :nobody is called bob"]
        );
        assert!(
            lines(error(ErrorCode::NotInRoom), Some("ana PRIVMSG #x"))[0]
                .starts_with(":charla 404 ana #x :")
        );
        assert!(
            lines(error(ErrorCode::NotInRoom), Some("ana PART #x"))[0]
                .starts_with(":charla 442 ana #x :")
        );
        assert!(
            lines(error(ErrorCode::NickTaken), Some("* NICK bob"))[0]
                .starts_with(":charla 433 * bob :")
        );
        assert_eq!(
            lines(error(ErrorCode::NickRegistered), Some("ana NICK bob")),
            [":charla 433 ana bob :bob is registered; log in with SASL PLAIN to use it"]
        );
        assert_eq!(
            lines(error(ErrorCode::AccountRequired), Some("ana PRIVMSG #x")),
            [
                ":charla NOTICE ana :this server lets only users with an account talk: log in \
                 with SASL PLAIN"
            ]
        );
        assert!(
            lines(error(ErrorCode::TooManyRooms), Some("ana JOIN #x"))[0]
                .starts_with(":charla 405 ana #x :")
        );
        assert!(lines(error(ErrorCode::Flood), None)[0].starts_with(":charla NOTICE * :"));
        assert!(lines(error(ErrorCode::NoSuchNick), Some("ana NOTICE bob")).is_empty());
    }

    #[test]
    fn joins_parts_nicks_and_quits() {
        let joined = Event::Joined {
            room: room("#ops"),
            nick: nick("ana"),
            you: true,
            members: vec![nick("ana"), nick("bob")],
            count: 2,
            account: None,
            // One's own join away says nothing of it (away-notify is of others).
            away: MessageText::new("lunch"),
        };
        assert_eq!(lines(joined, None), [":ana!ana@charla JOIN #ops"]);
        let users = Event::Users {
            room: room("#ops"),
            nicks: vec![nick("ana"), nick("bob")],
            standing: vec![Standing::Member; 2],
            away: vec![false; 2],
            secret: false,
        };
        assert_eq!(
            lines(users, Some("ana JOINED #ops")),
            [
                ":charla 353 ana = #ops :ana bob",
                ":charla 366 ana #ops :End of /NAMES list"
            ]
        );
        let many: Vec<Nick> = (0..200).map(|i| nick(&format!("member{i:03}"))).collect();
        let users = Event::Users {
            room: room("#ops"),
            nicks: many,
            standing: vec![Standing::Member; 200],
            away: vec![false; 200],
            secret: false,
        };
        let got = lines(users, Some("ana NAMES #ops"));
        assert!(got.len() > 3 && got.iter().all(|l| l.len() + 2 <= MAX_OUT_BYTES));
        let named: usize = got
            .iter()
            .filter_map(|l| l.strip_prefix(":charla 353 ana = #ops :"))
            .map(|l| l.split(' ').count())
            .sum();
        assert_eq!(named, 200);
        let left = |reason| Event::Left {
            room: room("#ops"),
            nick: nick("bob"),
            you: false,
            reason,
            told_once: false,
        };
        assert_eq!(
            lines(left(LeaveReason::Left(MessageText::new("bye"))), None),
            [":bob!bob@charla PART #ops :bye"]
        );
        assert_eq!(
            lines(left(LeaveReason::ConnectionLost), None),
            [":bob!bob@charla QUIT :connection lost"]
        );
        let long = "ñ".repeat(2000);
        let got = lines(left(LeaveReason::Quit(MessageText::new(&long))), None);
        assert_eq!(got.len(), 1);
        assert!(got[0].len() + 2 <= MAX_OUT_BYTES && got[0].ends_with('ñ'));
        // A quit told once (`Event::Quit`) is not written again for each room.
        let told = Event::Left {
            room: room("#ops"),
            nick: nick("bob"),
            you: false,
            reason: LeaveReason::ConnectionLost,
            told_once: true,
        };
        assert!(lines(told, None).is_empty());
        let quit = Event::Quit {
            nick: nick("bob"),
            reason: LeaveReason::Quit(MessageText::new("bye")),
        };
        assert_eq!(lines(quit, None), [":bob!bob@charla QUIT :Quit: bye"]);
        let renamed = Event::NickChanged {
            old: nick("bob"),
            new: nick("Bob2"),
            you: false,
        };
        assert_eq!(lines(renamed, None), [":bob!bob@charla NICK :Bob2"]);
    }

    /// Found by the `irc_codec` fuzz target's member-list check (on a hand-made input):
    /// with a nick and a room name of three-byte characters, a 353 line of 400 bytes of
    /// nicks passed 512 bytes with its prefix and was cut, losing the last members.
    #[test]
    fn long_names_in_wide_scripts_name_every_member_whole() {
        let me = nick(&format!("{}a", "中".repeat(23)));
        let wide = room(&format!("#{}", "中".repeat(31)));
        let users = Event::Users {
            room: wide.clone(),
            nicks: vec![me.clone(); 40],
            standing: vec![Standing::Operator; 40],
            away: vec![false; 40],
            secret: false,
        };
        let asked = format!("{me} NAMES {wide}");
        let got = lines(users, Some(&asked));
        let prefix = format!(":charla 353 {me} = {wide} :");
        let mut named = 0;
        for line in &got {
            assert!(line.len() + 2 <= MAX_OUT_BYTES, "{}", line.len());
            if let Some(names) = line.strip_prefix(&prefix) {
                let whole = format!("@{me}");
                assert!(names.split(' ').all(|n| n == whole), "{line}");
                named += names.split(' ').count();
            }
        }
        assert_eq!(named, 40);
    }

    /// A 352 names the member in four places; with nicks and a room name of four-byte
    /// characters at their longest it would pass 512 bytes: it is cut within the bound, on
    /// a character boundary, in the real name (the trailing parameter), and every
    /// parameter before it stays whole.
    #[test]
    fn who_replies_with_four_byte_names_stay_within_the_bound() {
        let wide = nick(&"𞟠".repeat(MAX_NICK_CHARS));
        let place = room(&format!("#{}", "𞟠".repeat(MAX_ROOM_CHARS - 1)));
        let member = crate::hub::WhoEntry {
            nick: wide.clone(),
            standing: Standing::Operator,
            user: None,
            realname: None,
            away: false,
            account: None,
            oper: false,
            invisible: false,
            idle: 0,
        };
        let users = Event::Who {
            room: Some(place.clone()),
            members: vec![member; 3],
        };
        let asked = format!("{wide} WHO {place}");
        let got = lines(users, Some(&asked));
        assert_eq!(got.len(), 4);
        for line in &got[..3] {
            assert!(line.len() + 2 <= MAX_OUT_BYTES, "{}", line.len());
            let reply = crate::protocol::irc::message::Message::parse(line).unwrap();
            assert_eq!(reply.command, "352");
            let whole = [
                wide.as_str(),
                place.as_str(),
                wide.as_str(),
                "charla",
                "charla",
            ];
            assert_eq!(reply.params[..5], whole);
            assert_eq!(reply.params[5], wide.as_str());
            assert_eq!(reply.params[6], "H@");
            assert!(reply.params[7].starts_with("0 𞟠"), "{line}");
            assert!(wide.as_str().starts_with(&reply.params[7][2..]));
        }
    }

    #[test]
    fn feeds_speak_from_a_source_no_nick_can_take() {
        let notice = Notice::new(
            crate::hub::Source::new("check:web").unwrap(),
            PostKind::Alert,
            MessageText::new("web is down").unwrap(),
        );
        let posted = Posted {
            id: 1,
            seq: 1,
            ts: 0,
            room: room("#ops"),
            notice: std::sync::Arc::new(notice),
        };
        let got = lines(Event::Posted(posted), None);
        assert_eq!(
            got,
            [":[check:web]!feed@charla NOTICE #ops :!!! web is down"]
        );
        assert!(Nick::parse("[check:web]").is_err());
    }

    #[test]
    fn topics_kicks_modes_bans_and_invitations_as_irc_lines() {
        let topic = crate::hub::Topic {
            text: MessageText::new("deploys at 15:00").unwrap(),
            by: nick("ana"),
            at: 1_700_000_000_123,
        };
        let shown = Event::Topic {
            room: room("#ops"),
            topic: Some(topic.clone()),
        };
        assert_eq!(
            lines(shown, Some("bob JOIN #ops")),
            [
                ":charla 332 bob #ops :deploys at 15:00",
                ":charla 333 bob #ops ana!ana@charla 1700000000"
            ]
        );
        let none = Event::Topic {
            room: room("#ops"),
            topic: None,
        };
        assert_eq!(
            lines(none, Some("bob TOPIC #ops")),
            [":charla 331 bob #ops :No topic is set"]
        );
        let changed = Event::TopicChanged {
            room: room("#ops"),
            by: nick("ana"),
            topic: None,
        };
        assert_eq!(lines(changed, None), [":ana!ana@charla TOPIC #ops :"]);
        let kicked = Event::Kicked {
            room: room("#ops"),
            nick: nick("bob"),
            by: nick("ana"),
            reason: None,
        };
        assert_eq!(lines(kicked, None), [":ana!ana@charla KICK #ops bob :ana"]);
        let users = Event::Users {
            room: room("#ops"),
            nicks: vec![nick("ana"), nick("bob"), nick("cai")],
            standing: vec![Standing::Operator, Standing::Voiced, Standing::Member],
            away: vec![false, false, true],
            secret: false,
        };
        assert_eq!(
            lines(users.clone(), Some("cai NAMES #ops"))[0],
            ":charla 353 cai = #ops :@ana +bob cai"
        );
        let member = |name: &str, standing, user: Option<&str>, realname: Option<&str>| {
            crate::hub::WhoEntry {
                nick: nick(name),
                standing,
                user: user.map(Box::from),
                realname: realname.and_then(MessageText::new),
                away: user.is_none(),
                account: None,
                oper: false,
                invisible: false,
                idle: 0,
            }
        };
        let who = Event::Who {
            room: Some(room("#ops")),
            members: vec![
                member("ana", Standing::Operator, Some("ana_u"), Some("Ana María")),
                member("bob", Standing::Voiced, None, None),
            ],
        };
        assert_eq!(
            lines(who, Some("cai WHO #OPS")),
            [
                ":charla 352 cai #ops ana_u charla charla ana H@ :0 Ana María",
                ":charla 352 cai #ops bob charla charla bob G+ :0 bob",
                ":charla 315 cai #OPS :End of WHO list",
            ]
        );
        let alone = Event::Who {
            room: None,
            members: vec![member("bob", Standing::Member, None, None)],
        };
        assert_eq!(
            lines(alone, Some("cai WHO Bob"))[0],
            ":charla 352 cai * bob charla charla bob G :0 bob"
        );
        // After a refused JOIN the asker is not a member: no NAMES.
        assert!(lines(users, Some("eve JOINED #ops")).is_empty());
        let errors = [
            (
                ErrorCode::NotOperator,
                "bob KICK #ops,cai",
                "482 bob #ops :",
            ),
            (
                ErrorCode::TargetNotInRoom,
                "bob KICK #ops,cai",
                "441 bob cai #ops :",
            ),
            (ErrorCode::Banned, "bob JOIN #ops", "474 bob #ops :"),
            (ErrorCode::Banned, "bob PRIVMSG #ops", "404 bob #ops :"),
            (ErrorCode::Moderated, "bob PRIVMSG #ops", "404 bob #ops :"),
            (ErrorCode::InviteOnly, "bob JOIN #ops", "473 bob #ops :"),
            (ErrorCode::BadKey, "bob JOIN #ops", "475 bob #ops :"),
            (ErrorCode::RoomFull, "bob JOIN #ops", "471 bob #ops :"),
            (
                ErrorCode::NoSuchNick,
                "bob INVITE #ops,cai",
                "401 bob cai :",
            ),
            (
                ErrorCode::InvalidArgument,
                "bob INVITE #ops,cai",
                "443 bob cai #ops :",
            ),
        ];
        for (code, asked, want) in errors {
            let error = Event::Error {
                code,
                message: "why".into(),
            };
            assert_eq!(
                lines(error, Some(asked)),
                [format!(":charla {want}why")],
                "{code:?}"
            );
        }
    }
}
