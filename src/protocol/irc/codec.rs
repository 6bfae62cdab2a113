//! The IRC codec: framing, the registration handshake, and each command as hub requests
//! or answers of its own.

use std::time::Duration;

use bytes::Bytes;

use super::labeled::{self, Labeling};
use super::message::{MAX_FRAME_BYTES, MAX_LINE_BYTES, Malformed, Message};
use super::numeric::*;
use super::{Asked, Caps, IrcFormat, USER_HOST, WHOX_FIELDS, sasl};
use crate::accounts::{AccountRequest, Secret, ServerPassword};
use crate::feeds::check::{name_rule, valid_name};
use crate::hub::{
    ClientTags, Command, Encode, ErrorCode, MessageText, Nick, NoticeTarget, Request, RoomName,
    TagsTooLong, WhoMask, WhoOf, Window,
};
use crate::limits::{Limits, MAX_CLIENT_TAGS_BYTES};
use crate::protocol::framing::{Frame, Framer};
use crate::protocol::modes::ModeRequest;
use crate::protocol::not_http::{NOT_HTTP_IRC, is_http_request};
use crate::protocol::{Codec, Incoming, SaslAttempt, Sink};

/// One IRC connection's codec. It holds registration until the client has sent NICK and
/// USER and ended any CAP negotiation, then registers under that nick; it keeps its
/// nick to write its own numerics.
pub struct IrcCodec {
    framer: Framer,
    client: IrcClient,
    /// Silence after which the client is PINGed (`Limits::ping_interval`).
    keepalive: Duration,
}

/// Where the handshake stands, and who the client is.
struct IrcClient {
    format: &'static IrcFormat,
    /// The nick asked for before registration; the session's own after.
    nick: Option<Nick>,
    registered: bool,
    /// USER was sent.
    user: bool,
    /// CAP LS or REQ was sent and CAP END not yet: registration waits for it.
    negotiating: bool,
    /// A PING was sent for the client's silence, and nothing came since.
    pinged: bool,
    /// The IRCv3 capabilities asked for; `format` writes them.
    caps: Caps,
    /// `sasl` was asked for (it changes no wire format, so it is not in `caps`).
    sasl_asked: bool,
    sasl: sasl::Exchange,
    /// What USER and PASS gave, kept until registration; boxed, as a registered
    /// connection keeps nothing of it.
    handshake: Option<Box<Handshake>>,
    /// A PASS is being checked: registration waits for its outcome ([`Codec::settle`]).
    checking: bool,
}

/// What the client gave before registering, beside its nick.
#[derive(Default)]
struct Handshake {
    /// USER's user name and real name, shown by WHO and WHOIS.
    user: Option<Box<str>>,
    realname: Option<MessageText>,
    /// PASS: the server password when one is set, else the password of the account
    /// named like the nick.
    password: Option<Secret>,
    /// The server password PASS must give (`--irc-password`), until it has.
    gate: Option<ServerPassword>,
}

impl IrcCodec {
    pub fn new(limits: &Limits) -> IrcCodec {
        IrcCodec {
            framer: Framer::new(MAX_FRAME_BYTES),
            client: IrcClient {
                format: IrcFormat::for_limits(limits),
                nick: None,
                registered: false,
                user: false,
                negotiating: false,
                pinged: false,
                caps: Caps::default(),
                sasl_asked: false,
                sasl: sasl::Exchange::Idle,
                // A gated listener's handshake starts holding the password to check.
                handshake: limits.irc_password.clone().map(|gate| {
                    Box::new(Handshake {
                        gate: Some(gate),
                        ..Handshake::default()
                    })
                }),
                checking: false,
            },
            keepalive: limits.ping_interval,
        }
    }
}

impl Codec for IrcCodec {
    fn decode(&mut self, bytes: &[u8], sink: &mut impl Sink) {
        let IrcCodec { framer, client, .. } = self;
        client.pinged = false;
        framer.feed(bytes, |frame| client.frame(frame, sink));
    }

    fn finish(&mut self, sink: &mut impl Sink) {
        let IrcCodec { framer, client, .. } = self;
        framer.finish(|frame| client.frame(frame, sink));
    }

    fn format(&self) -> &'static dyn Encode {
        self.client.format
    }

    fn registers_at_once(&self) -> bool {
        false
    }

    /// A PASS checked: registered when it proved the account, else its 464 has said so
    /// and the client may try again.
    fn settle(&mut self, sink: &mut impl Sink) {
        let client = &mut self.client;
        if !client.checking {
            return;
        }
        client.checking = false;
        if sink.proved() {
            client.register(sink);
        }
    }

    fn keepalive(&self) -> Option<Duration> {
        (!self.keepalive.is_zero()).then_some(self.keepalive)
    }

    /// A PING, once; nothing for a client that has not registered in that time, or did not
    /// answer the PING: it is dropped.
    fn probe(&mut self) -> Option<Bytes> {
        let client = &mut self.client;
        if client.pinged || !client.registered {
            return None;
        }
        client.pinged = true;
        let server = client.server();
        Some(Bytes::from(format!("PING :{server}\r\n")))
    }
}

impl IrcClient {
    fn frame(&mut self, frame: Frame<'_>, sink: &mut impl Sink) {
        let Frame::Line(line) = frame else {
            return self.numeric(sink, ERR_INPUTTOOLONG, ":Input line was too long");
        };
        let Ok(line) = std::str::from_utf8(line) else {
            let server = self.server();
            let fail =
                format!(":{server} FAIL * INVALID_UTF8 :That line is not UTF-8 and was dropped");
            return answer(sink, &fail);
        };
        if line.trim().is_empty() || !sink.admit() {
            return;
        }
        if !self.registered && is_http_request(line) {
            // A browser's form posted here could register and talk: nothing of it is.
            return sink.incoming(Incoming::Close(Bytes::from_static(NOT_HTTP_IRC)));
        }
        match Message::parse(line) {
            Ok(message) => match labeled::label_of(message.tags) {
                // Labels are honoured once registered: before, what answers a line
                // (registration's burst) is not the line's alone.
                Some(label) if self.registered && self.caps.has(Caps::LABELED_RESPONSE) => {
                    let mut labeling = Labeling::new(sink, self.server(), label);
                    self.message(&message, &mut labeling);
                    labeling.finish();
                }
                _ => self.message(&message, sink),
            },
            Err(Malformed::TooLong) => {
                self.numeric(sink, ERR_INPUTTOOLONG, ":Input line was too long")
            }
            Err(Malformed::NoCommand) => {}
        }
    }

    fn message(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let verb = m.command.to_ascii_uppercase();
        match verb.as_str() {
            "PING" => self.ping(m, sink),
            "PONG" => {}
            "CAP" => self.cap(m, sink),
            "NICK" => self.nick(m, sink),
            "USER" => self.user(m, sink),
            "PASS" => self.pass(m, sink),
            "QUIT" => self.quit(m, sink),
            "AUTHENTICATE" => {
                let me = self.given().to_string();
                let server = self.server();
                sasl::authenticate(&mut self.sasl, (server, &me), m, sink);
            }
            _ if !self.registered => {
                self.numeric(sink, ERR_NOTREGISTERED, ":You have not registered")
            }
            "JOIN" => self.join(m, sink),
            "PART" => self.part(m, sink),
            "PRIVMSG" | "NOTICE" => self.privmsg(&verb, m, sink),
            "TAGMSG" if self.caps.has(Caps::MESSAGE_TAGS) => self.tagmsg(m, sink),
            "NAMES" => self.names(m, sink),
            "WHO" => self.who(m, sink),
            "LIST" => self.ask(sink, "LIST", "*", Command::Rooms),
            "MODE" => self.mode(m, sink),
            "TOPIC" => self.topic(m, sink),
            "KICK" => self.kick(m, sink),
            "INVITE" => self.invite(m, sink),
            "MOTD" => self.numeric(sink, ERR_NOMOTD, ":MOTD File is missing"),
            "WHOIS" => self.whois(m, sink),
            "USERHOST" => self.userhost(m, sink),
            "ISON" => self.ison(m, sink),
            "TIME" => self.time(sink),
            "VERSION" => self.version(sink),
            "INFO" => self.info(sink),
            "AWAY" => {
                let message = m.param(0).and_then(MessageText::new);
                self.ask(sink, "AWAY", "*", Command::Away(message));
            }
            "LUSERS" => self.ask(sink, "LUSERS", "*", Command::Census),
            "OPER" => self.oper(m, sink),
            "HISTORY" => self.history(m, sink),
            "CHATHISTORY" => self.chathistory(m, sink),
            "ACK" | "SILENCE" | "UNSILENCE" => self.alert(&verb, m, sink),
            _ => self.numeric(
                sink,
                ERR_UNKNOWNCOMMAND,
                &format!("{} :Unknown command", m.command),
            ),
        }
    }

    fn ping(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(token) = m.param(0) else {
            return self.need_more(sink, "PING");
        };
        let server = self.server();
        answer(sink, &format!(":{server} PONG {server} :{token}"));
    }

    /// CAP: LS names the capabilities charla implements ([`Caps::ALL`]) and `sasl` (`sasl.rs`), LIST those
    /// asked for; REQ takes a list whole (`-cap` to drop one) or refuses it whole (NAK)
    /// when it names one charla lacks, and the format changes to write what was asked for.
    /// LS or REQ before registration holds it until END (IRCv3).
    fn cap(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let me = self.me().to_string();
        let sub = m.param(0).unwrap_or("").to_ascii_uppercase();
        let reply = match sub.as_str() {
            "LS" => {
                self.negotiating |= !self.registered;
                let all = Caps::ALL.iter().map(|(name, _)| *name);
                // Values (`=PLAIN`) are for clients of version 302 on (IRCv3).
                let versioned = m.param(1).and_then(|v| v.parse::<u32>().ok());
                let sasl = match versioned {
                    Some(version) if version >= 302 => sasl::CAPS,
                    _ => sasl::NAME,
                };
                let all = all.chain([sasl]);
                format!("CAP {me} LS :{}", all.collect::<Vec<_>>().join(" "))
            }
            "LIST" => {
                let mut names = self.caps.names();
                if self.sasl_asked {
                    names = format!("{names} {}", sasl::NAME).trim_start().to_string();
                }
                format!("CAP {me} LIST :{names}")
            }
            "REQ" => {
                self.negotiating |= !self.registered;
                let asked = m.param(1).unwrap_or("");
                match requested(self.caps, self.sasl_asked, asked) {
                    Some((caps, sasl_asked)) => {
                        self.caps = caps;
                        self.sasl_asked = sasl_asked;
                        self.format = self.format.with_caps(caps.wire());
                        sink.speak(self.format);
                        format!("CAP {me} ACK :{asked}")
                    }
                    None => format!("CAP {me} NAK :{asked}"),
                }
            }
            "END" => {
                self.negotiating = false;
                return self.try_register(sink);
            }
            _ => {
                return self.numeric(
                    sink,
                    ERR_INVALIDCAPCMD,
                    &format!("{} :Invalid CAP command", word(m.param(0).unwrap_or(""))),
                );
            }
        };
        answer(sink, &format!(":{} {reply}", self.server()));
    }

    fn nick(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(wanted) = m.param(0) else {
            return self.numeric(sink, ERR_NONICKNAMEGIVEN, ":No nickname given");
        };
        let nick = match Nick::parse(wanted) {
            Ok(nick) => nick,
            Err(e) => {
                return self.numeric(
                    sink,
                    ERR_ERRONEUSNICKNAME,
                    &format!("{} :Erroneous nickname: {e}", word(wanted)),
                );
            }
        };
        if !self.registered {
            self.nick = Some(nick);
            return self.try_register(sink);
        }
        // The nick one has, spelled the same, is no change: nothing is said to anyone (a
        // change of case is a change, and goes to the hub).
        if sink.nick().is_some_and(|now| now.as_str() == nick.as_str()) {
            return;
        }
        self.ask(sink, "NICK", nick.as_str(), Command::Nick(nick.clone()));
        // The hub has answered by now: the session's nick is the new one or still the old.
        if let Some(now) = sink.nick() {
            self.nick = Some(now);
        }
    }

    fn user(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        if self.registered {
            return self.numeric(sink, ERR_ALREADYREGISTERED, ":You may not reregister");
        }
        // An empty user name or real name is as good as none (RFC 2812's grammar).
        if m.params.len() < 4 || m.param(0).is_none() || m.param(3).is_none() {
            return self.need_more(sink, "USER");
        }
        self.user = true;
        let handshake = self.handshake.get_or_insert_default();
        handshake.user = m.param(0).and_then(user_name);
        handshake.realname = m.param(3).and_then(MessageText::new);
        self.try_register(sink);
    }

    /// PASS before registering: the server password when one is set (`--irc-password`),
    /// else the password of the account named like the nick, checked as a SASL PLAIN
    /// proof when NICK and USER are in; registration waits for it.
    fn pass(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        if self.registered {
            return self.numeric(sink, ERR_ALREADYREGISTERED, ":You may not reregister");
        }
        let Some(password) = m.param(0) else {
            return self.need_more(sink, "PASS");
        };
        self.handshake.get_or_insert_default().password = Some(Secret::new(password));
        self.try_register(sink);
    }

    fn try_register(&mut self, sink: &mut impl Sink) {
        if self.registered || self.negotiating || self.checking || !self.user {
            return;
        }
        let Some(nick) = self.nick.clone() else {
            return;
        };
        let handshake = self.handshake.as_deref_mut();
        if let Some(Handshake {
            gate: gate @ Some(_),
            password,
            ..
        }) = handshake
        {
            let given = password.take();
            if !given.is_some_and(|given| gate.as_ref().is_some_and(|g| g.admits(&given))) {
                // modern.ircdocs.horse: 464, then ERROR, and the connection closed.
                self.numeric(sink, ERR_PASSWDMISMATCH, ":Password incorrect");
                let bye = Bytes::from_static(b"ERROR :Closing link: bad password\r\n");
                return sink.incoming(Incoming::Close(bye));
            }
            *gate = None;
            return self.register(sink);
        }
        let password = self.handshake.as_mut().and_then(|h| h.password.take());
        if let Some(password) = password {
            self.checking = true;
            return sink.incoming(Incoming::Sasl(SaslAttempt {
                account: nick,
                password,
                me: self.given().to_string(),
                server: self.server(),
                reference: None,
                label: None,
                answer: sasl::pass_outcome,
            }));
        }
        self.register(sink);
    }

    /// Makes the connection a session under the nick asked for, if it is free.
    fn register(&mut self, sink: &mut impl Sink) {
        let Some(nick) = self.nick.clone() else {
            return;
        };
        let reference = Asked::new(None, "NICK", nick.as_str()).reference();
        sink.incoming(Incoming::Register {
            nick: Some(nick),
            reference,
            lobby: false,
        });
        // A taken nick was answered with 433; the client may send another.
        self.nick = sink.nick();
        if self.nick.is_some() {
            self.registered = true;
            if let Some(Handshake { user, realname, .. }) = self.handshake.take().map(|h| *h) {
                if user.is_some() || realname.is_some() {
                    self.ask(sink, "USER", "*", Command::User { user, realname });
                }
            }
        }
    }

    fn quit(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        if !self.registered {
            // Not a session yet: nothing to leave; the connection closes after saying so.
            let bye = Bytes::from_static(b"ERROR :Closing link: quit\r\n");
            return sink.incoming(Incoming::Close(bye));
        }
        let message = m.param(0).and_then(MessageText::new);
        self.ask(sink, "QUIT", "*", Command::Quit { message });
    }

    /// JOIN #a,#b k1,k2: each room joined in turn, with its key if one is given, then its
    /// history asked for, so it comes after the JOIN the client shows it under. A room the
    /// client is in already is passed over silently, as IRC servers do: answering it again
    /// (JOIN, topic, NAMES, history) would show it all a second time.
    fn join(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(list) = m.param(0) else {
            return self.need_more(sink, "JOIN");
        };
        if list == "0" {
            // `JOIN 0` leaves every channel (RFC 2812).
            return self.ask(sink, "PART", "*", Command::LeaveAll { message: None });
        }
        let mut keys = m.param(1).unwrap_or("").split(',');
        for (i, name) in targets(list, "JOIN") {
            let key = keys.next().filter(|k| !k.is_empty());
            if !another(i, sink) {
                break;
            }
            let Some(room) = self.channel(name, sink) else {
                continue;
            };
            if sink.is_in(&room) {
                continue;
            }
            let join = match key {
                Some(key) => Command::JoinWithKey {
                    room: room.clone(),
                    key: key.to_string(),
                },
                None => Command::Join(room.clone()),
            };
            self.ask(sink, "JOIN", room.as_str(), join);
            self.after_join(sink, room);
        }
    }

    /// TOPIC #room asks; TOPIC #room :text sets it, and an empty text clears it.
    fn topic(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(name) = m.param(0) else {
            return self.need_more(sink, "TOPIC");
        };
        let Some(room) = self.channel(name, sink) else {
            return;
        };
        // `TOPIC #room :` (an empty parameter) clears it; only a missing one asks.
        let command = match m.params.get(1).copied() {
            None => Command::Topic {
                room: Some(room.clone()),
            },
            Some(text) => Command::SetTopic {
                room: Some(room.clone()),
                text: MessageText::new(text),
            },
        };
        self.ask(sink, "TOPIC", room.as_str(), command);
    }

    /// KICK #room nick[,nick…] [:reason]. The subject of each request is `#room,nick`,
    /// so a refusal can name both.
    fn kick(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let (Some(name), Some(list)) = (m.param(0), m.param(1)) else {
            return self.need_more(sink, "KICK");
        };
        let Some(room) = self.channel(name, sink) else {
            return;
        };
        let reason = m.param(2).and_then(MessageText::new);
        for (i, target) in targets(list, "KICK") {
            if !another(i, sink) {
                break;
            }
            let Ok(nick) = Nick::parse(target) else {
                self.numeric(
                    sink,
                    ERR_USERNOTINCHANNEL,
                    &format!("{} {room} :They aren't on that channel", word(target)),
                );
                continue;
            };
            let subject = format!("{room},{nick}");
            let kick = Command::Kick {
                room: Some(room.clone()),
                nick,
                reason: reason.clone(),
            };
            self.ask(sink, "KICK", &subject, kick);
        }
    }

    /// INVITE nick #room; the subject is `#room,nick`, as for KICK.
    fn invite(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let (Some(target), Some(name)) = (m.param(0), m.param(1)) else {
            return self.need_more(sink, "INVITE");
        };
        let Some(room) = self.channel(name, sink) else {
            return;
        };
        let Ok(nick) = Nick::parse(target) else {
            return self.numeric(
                sink,
                ERR_NOSUCHNICK,
                &format!("{} :No such nick/channel", word(target)),
            );
        };
        let subject = format!("{room},{nick}");
        let invite = Command::Invite {
            room: Some(room.clone()),
            nick,
        };
        self.ask(sink, "INVITE", &subject, invite);
    }

    /// What a client expects after its JOIN: every member (`353`, `366`; the hub's join
    /// names only the first few), then the room's history, which the hub sends before
    /// the join, where an IRC client has no channel to show it in.
    fn after_join(&mut self, sink: &mut impl Sink, room: RoomName) {
        let users = Command::Users {
            room: Some(room.clone()),
        };
        self.ask(sink, "JOINED", room.as_str(), users);
        let history = Command::History {
            room: Some(room.clone()),
            limit: None,
        };
        self.ask(sink, "HISTORY", room.as_str(), history);
    }

    fn part(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(list) = m.param(0) else {
            return self.need_more(sink, "PART");
        };
        let message = m.param(1).and_then(MessageText::new);
        for (i, name) in targets(list, "PART") {
            if !another(i, sink) {
                break;
            }
            if let Some(room) = self.channel(name, sink) {
                let leave = Command::Leave {
                    room: Some(room.clone()),
                    message: message.clone(),
                };
                self.ask(sink, "PART", room.as_str(), leave);
            }
        }
    }

    /// PRIVMSG and NOTICE, to rooms and nicks alike; CTCP ACTION is `/me` in a PRIVMSG.
    /// A NOTICE stays a notice for its readers, and is never answered with an error (RFC
    /// 2812).
    fn privmsg(&mut self, verb: &str, m: &Message<'_>, sink: &mut impl Sink) {
        let notice = verb == "NOTICE";
        let Some(targets) = m.param(0) else {
            if !notice {
                self.numeric(
                    sink,
                    ERR_NORECIPIENT,
                    &format!(":No recipient given ({verb})"),
                );
            }
            return;
        };
        let raw = m.param(1).unwrap_or("");
        let (body, action) = match ctcp(raw) {
            Some(Ctcp::Action(body)) if !notice => (body, true),
            // Other CTCP queries (VERSION, PING…) and replies (in NOTICEs) are between
            // clients, and charla removes the \x01 that frames them from every message:
            // dropped.
            Some(_) => return,
            None => (raw, false),
        };
        let Some(text) = MessageText::new(body) else {
            if !notice {
                self.numeric(sink, ERR_NOTEXTTOSEND, ":No text to send");
            }
            return;
        };
        let Ok(tags) = self.client_tags(m, sink) else {
            return;
        };
        for (i, target) in self::targets(targets, verb) {
            if !another(i, sink) {
                break;
            }
            if !notice && relayed_bytes(self.me(), target, raw) > MAX_LINE_BYTES {
                // Within the bound as sent, but not with the sender's address before it:
                // refused, as a line too long, rather than cut or split for IRC readers.
                self.numeric(
                    sink,
                    ERR_INPUTTOOLONG,
                    ":Input line was too long once relayed with your address",
                );
                continue;
            }
            if target.starts_with('#') {
                let Ok(room) = RoomName::parse(target) else {
                    if !notice {
                        self.no_such_channel(sink, target);
                    }
                    continue;
                };
                // The subject is the name as parsed, not as sent: parsing trims what
                // `str::trim` does (a tab, a form feed, U+0085, U+2028), which the reply's
                // numeric would otherwise carry to the client.
                let subject = room.as_str().to_owned();
                let echo = self.echo(sink, &text, action, tags.as_ref());
                let say = if notice {
                    Command::Notice {
                        to: NoticeTarget::Room(room),
                        text: text.clone(),
                    }
                } else {
                    Command::Say {
                        room: Some(room),
                        text: text.clone(),
                        action,
                    }
                };
                self.ask_echoed(sink, verb, &subject, &echo, tagged(&tags, say));
            } else {
                let Ok(to) = Nick::parse(target) else {
                    if !notice {
                        self.numeric(
                            sink,
                            ERR_NOSUCHNICK,
                            &format!("{} :No such nick/channel", word(target)),
                        );
                    }
                    continue;
                };
                let echo = self.echo(sink, &text, action, tags.as_ref());
                // A private message has no action form: it reads as one.
                let text = if action {
                    MessageText::new(&format!("* {} {body}", self.me()))
                        .unwrap_or_else(|| text.clone())
                } else {
                    text.clone()
                };
                let subject = to.as_str().to_owned();
                let msg = if notice {
                    Command::Notice {
                        to: NoticeTarget::Nick(to),
                        text,
                    }
                } else {
                    Command::Msg { to, text }
                };
                self.ask_echoed(sink, verb, &subject, &echo, tagged(&tags, msg));
            }
        }
    }

    /// TAGMSG target[,target…] with client-only tags (message-tags): the tags alone, to
    /// each room or nick as a message would go; nothing to send without any.
    fn tagmsg(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(list) = m.param(0) else {
            return self.numeric(sink, ERR_NORECIPIENT, ":No recipient given (TAGMSG)");
        };
        let Ok(Some(tags)) = self.client_tags(m, sink) else {
            return;
        };
        let echo = if self.caps.has(Caps::ECHO_MESSAGE) {
            format!("t{} {}", self.echoed_account(sink), tags.as_str())
        } else {
            String::new()
        };
        for (i, target) in targets(list, "PRIVMSG") {
            if !another(i, sink) {
                break;
            }
            let to = if target.starts_with('#') {
                let Some(room) = self.channel(target, sink) else {
                    continue;
                };
                NoticeTarget::Room(room)
            } else {
                let Ok(nick) = Nick::parse(target) else {
                    let line = format!("{} :No such nick/channel", word(target));
                    self.numeric(sink, ERR_NOSUCHNICK, &line);
                    continue;
                };
                NoticeTarget::Nick(nick)
            };
            let subject = match &to {
                NoticeTarget::Room(room) => room.as_str().to_owned(),
                NoticeTarget::Nick(nick) => nick.as_str().to_owned(),
            };
            let tags = tags.clone();
            self.ask_echoed(
                sink,
                "TAGMSG",
                &subject,
                &echo,
                Command::TagsOnly { to, tags },
            );
        }
    }

    /// The client-only tags a line carries for other clients: only from a client with
    /// message-tags (others are not meant to send any). `Err` once answered 417: more
    /// than the spec allows.
    fn client_tags(
        &mut self,
        m: &Message<'_>,
        sink: &mut impl Sink,
    ) -> Result<Option<ClientTags>, TagsTooLong> {
        let section = m.tags.filter(|_| self.caps.has(Caps::MESSAGE_TAGS));
        let Some(section) = section else {
            return Ok(None);
        };
        // The spec bounds all the tags a client sends, not only those relayed.
        let kept = if section.len() > MAX_CLIENT_TAGS_BYTES {
            Err(TagsTooLong)
        } else {
            ClientTags::from_section(section)
        };
        kept.inspect_err(|_| {
            self.numeric(sink, ERR_INPUTTOOLONG, ":Input line was too long (tags)")
        })
    }

    /// WHOIS [server] nick: the last parameter names whom; of a list, the first only.
    fn whois(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(wanted) = m.params.iter().rev().find(|p| !p.is_empty()) else {
            return self.numeric(sink, ERR_NONICKNAMEGIVEN, ":No nickname given");
        };
        let wanted = wanted.split(',').next().unwrap_or(wanted);
        match Nick::parse(wanted) {
            Ok(nick) => {
                let subject = nick.as_str().to_owned();
                self.ask(sink, "WHOIS", &subject, Command::Whois(nick));
            }
            Err(_) => {
                let word = word(wanted);
                self.numeric(sink, ERR_NOSUCHNICK, &format!("{word} :No such nick"));
                self.numeric(sink, RPL_ENDOFWHOIS, &format!("{word} :End of /WHOIS list"));
            }
        }
    }

    /// USERHOST nick…: each nick found as `nick=+nick@charla` (`-` when away) in a 302.
    fn userhost(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        if m.param(0).is_none() {
            return self.need_more(sink, "USERHOST");
        }
        let nicks = m.params.iter().take(MAX_USERHOST_NICKS);
        for (i, wanted) in nicks.enumerate() {
            if !another(i, sink) {
                break;
            }
            match Nick::parse(wanted) {
                Ok(nick) => {
                    let subject = nick.as_str().to_owned();
                    self.ask(sink, "USERHOST", &subject, Command::Whois(nick));
                }
                Err(_) => self.numeric(sink, RPL_USERHOST, ":"),
            }
        }
    }

    /// ISON nick…: those someone holds, in one 303 (irssi's notify list asks so). The nicks
    /// may come as parameters or as one trailing parameter; those past
    /// [`MAX_ISON_BYTES`] are dropped, and one that is no nick is not held.
    fn ison(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        if m.param(0).is_none() {
            return self.need_more(sink, "ISON");
        }
        let mut bytes = 0;
        let nicks = m
            .params
            .iter()
            .flat_map(|p| p.split_ascii_whitespace())
            .take_while(|nick| {
                bytes += nick.len() + 1;
                bytes <= MAX_ISON_BYTES
            })
            .filter_map(|nick| Nick::parse(nick).ok())
            .collect();
        self.ask(sink, "ISON", "*", Command::Online(nicks));
    }

    /// TIME: the server's time, in UTC, as a 391 (RFC 2812; modern.ircdocs.horse's
    /// `<timestamp> <TS offset>` form, with the time spelled out for people).
    fn time(&mut self, sink: &mut impl Sink) {
        let now = jiff::Timestamp::now();
        let server = self.server().to_string();
        let rest = format!(
            "{server} {} 0 :{}",
            now.as_second(),
            now.strftime("%A %B %-d %Y -- %H:%M:%S UTC")
        );
        self.numeric(sink, RPL_TIME, &rest);
    }

    /// VERSION: `351 you charla-VERSION. SERVER :…`, the version 004 names.
    fn version(&mut self, sink: &mut impl Sink) {
        let server = self.server().to_string();
        let version = env!("CARGO_PKG_VERSION");
        let rest = format!("charla-{version}. {server} :charla, a chat and live-alert server");
        self.numeric(sink, RPL_VERSION, &rest);
    }

    /// INFO: what the server is, as 371s, then 374 (a target server, as RFC 1459 allows,
    /// is this one: there is no other to ask).
    fn info(&mut self, sink: &mut impl Sink) {
        let version = env!("CARGO_PKG_VERSION");
        let what = env!("CARGO_PKG_DESCRIPTION");
        self.numeric(sink, RPL_INFO, &format!(":charla {version}: {what}"));
        self.numeric(sink, RPL_ENDOFINFO, ":End of INFO list");
    }

    /// NAMES of rooms (the room talked in when none is named).
    fn names(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(list) = m.param(0) else {
            return self.ask(sink, "NAMES", "*", Command::Users { room: None });
        };
        for (i, name) in targets(list, "NAMES") {
            if !another(i, sink) {
                break;
            }
            // NAMES of no such channel is its end alone (RFC 2812, modern.ircdocs.horse).
            let room = name.starts_with('#').then(|| RoomName::parse(name).ok());
            let Some(room) = room.flatten() else {
                let end = format!("{} :End of /NAMES list", word(name));
                self.numeric(sink, RPL_ENDOFNAMES, &end);
                continue;
            };
            let users = Command::Users {
                room: Some(room.clone()),
            };
            self.ask(sink, "NAMES", room.as_str(), users);
        }
    }

    /// WHO mask [o | [filter]%fields[,token]] (modern.ircdocs.horse, IRCv3 WHOX): of a
    /// channel, its members; of a nick, its holder; of anything else a mask (`*`, `0`,
    /// `ana*`, `*!bob@*`) matched against every user's `nick!user@host`. `o` keeps server
    /// operators alone. WHOX's fields and token ride in the reference, for the format to
    /// write `354`s with them.
    fn who(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(mask) = m.param(0) else {
            return self.need_more(sink, "WHO");
        };
        let (filter, whox) = match m.param(1) {
            Some(option) => match option.split_once('%') {
                Some((filter, fields)) => (filter, whox_fields(fields)),
                None => (option, String::new()),
            },
            None => ("", String::new()),
        };
        let opers_only = filter.contains('o');
        let of = if mask.starts_with('#') {
            let Some(room) = self.channel(mask, sink) else {
                return;
            };
            WhoOf::Room(room)
        } else if let Some(nick) = Nick::parse(mask)
            .ok()
            .filter(|_| !mask.contains(['*', '?']))
        {
            WhoOf::Nick(nick)
        } else {
            // A mask too long, one whose host part cannot be charla's, or one holding what
            // no name holds and no reader may get (a control character, a bidi control),
            // matches nobody: the answer here is cleaned, the hub's would quote it as sent.
            let clean = crate::hub::sanitize(mask) == mask;
            match WhoMask::parse(mask).filter(|m| clean && m.host_matches(USER_HOST)) {
                Some(mask) => WhoOf::Mask(mask),
                None => {
                    let end = format!("{} :End of WHO list", word(mask));
                    return self.numeric(sink, RPL_ENDOFWHO, &end);
                }
            }
        };
        // A name is asked as parsed (trimmed), as PRIVMSG's target is: the `315` ending the
        // answer quotes the subject.
        let subject = match &of {
            WhoOf::Room(room) => room.as_str().to_owned(),
            WhoOf::Nick(nick) => nick.as_str().to_owned(),
            WhoOf::Mask(_) => word(mask).to_owned(),
        };
        self.ask_echoed(
            sink,
            "WHO",
            &subject,
            &whox,
            Command::Who { of, opers_only },
        );
    }

    /// MODE of a room: a query (324), the ban list (`+b`: 367, 368) or changes, parsed as
    /// every protocol parses them; of oneself, no user mode exists, so `+` and changes
    /// refused.
    fn mode(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(target) = m.param(0) else {
            return self.need_more(sink, "MODE");
        };
        let change = m.param(1);
        if target.starts_with('#') {
            let Some(room) = self.channel(target, sink) else {
                return;
            };
            let letters = change.unwrap_or("");
            // An empty argument is one (`MODE #ops +k :`), refused as a bad key or limit
            // (696), not as missing (461).
            let args = m.params.get(2..).unwrap_or_default();
            let command = match crate::protocol::modes::parse(letters, args) {
                Ok(ModeRequest::Query) => Command::Mode {
                    room: Some(room.clone()),
                    changes: Vec::new(),
                },
                Ok(ModeRequest::Bans) => Command::Bans {
                    room: Some(room.clone()),
                },
                Ok(ModeRequest::Change(changes)) => Command::Mode {
                    room: Some(room.clone()),
                    changes,
                },
                Err(refused) if refused.refusal.code == ErrorCode::UnknownMode => {
                    let letter = letters
                        .chars()
                        .find(|c| !"+-bklimnstov".contains(*c))
                        .unwrap_or('?')
                        .to_string();
                    return self.numeric(
                        sink,
                        ERR_UNKNOWNMODE,
                        &format!("{} :is unknown mode char to me", word(&letter)),
                    );
                }
                Err(refused) if refused.refusal.code == ErrorCode::MissingArgument => {
                    return self.need_more(sink, "MODE");
                }
                // 696 names the letter alone, as modern.ircdocs.horse has it.
                Err(refused) => {
                    let letter = refused.letter.map(String::from);
                    return self.numeric(
                        sink,
                        ERR_INVALIDMODEPARAM,
                        &format!(
                            "{room} {} * :{}",
                            word(letter.as_deref().unwrap_or(letters)),
                            refused.refusal.message
                        ),
                    );
                }
            };
            self.ask(sink, "MODE", room.as_str(), command);
        } else if Nick::parse(target).ok() != self.nick {
            self.numeric(
                sink,
                ERR_USERSDONTMATCH,
                ":Can't change mode for other users",
            );
        } else {
            self.user_mode(change, sink);
        }
    }

    /// MODE of oneself: a query (221), or `+i`/`-i` (invisible to WHO masks), the one
    /// user mode charla has; any other letter is refused whole (501).
    fn user_mode(&mut self, change: Option<&str>, sink: &mut impl Sink) {
        let Some(letters) = change else {
            let query = Command::UserModes {
                invisible: None,
                oper: None,
            };
            return self.ask(sink, "MODE", "*", query);
        };
        let mut on = true;
        let (mut invisible, mut oper) = (None, None);
        for letter in letters.chars() {
            match letter {
                '+' => on = true,
                '-' => on = false,
                'i' => invisible = Some(on),
                // Only OPER gives `+o`: asking for it is ignored, as servers do.
                'o' => oper = Some(on).filter(|on| !on),
                _ => return self.numeric(sink, ERR_UMODEUNKNOWNFLAG, ":Unknown MODE flag"),
            }
        }
        if invisible.is_some() || oper.is_some() {
            let modes = Command::UserModes { invisible, oper };
            self.ask(sink, "UMODE", "*", modes);
        }
    }

    /// OPER name password: becomes a server operator (`--oper`), the password checked off
    /// the connection's task as a login is; 381 and `MODE nick +o`, or 464 (491 on a
    /// server with none).
    fn oper(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let (Some(name), Some(password)) = (m.param(0), m.param(1)) else {
            return self.need_more(sink, "OPER");
        };
        let Ok(name) = Nick::parse(name) else {
            return self.numeric(sink, ERR_PASSWDMISMATCH, ":Password incorrect");
        };
        let reference = Asked::new(Some(self.me()), "OPER", name.as_str()).reference();
        let request = AccountRequest::Oper {
            name,
            password: Secret::new(password),
        };
        sink.incoming(Incoming::Account { request, reference });
    }

    /// HISTORY #room [N], as Ergo spells it: the room's recent lines again.
    fn history(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(name) = m.param(0) else {
            return self.need_more(sink, "HISTORY");
        };
        let Some(room) = self.channel(name, sink) else {
            return;
        };
        let limit = m.param(1).and_then(|n| n.parse().ok());
        let command = Command::History {
            room: Some(room.clone()),
            limit,
        };
        self.ask(sink, "HISTORY", room.as_str(), command);
    }

    /// CHATHISTORY LATEST|BEFORE|AFTER|AROUND #room mark limit, and BETWEEN #room mark
    /// mark limit (IRCv3 draft/chathistory): a mark is `msgid=ID`, `timestamp=ISO-8601`,
    /// or `*` for LATEST; the entries come in a `chathistory` batch. Only rooms keep
    /// history here.
    fn chathistory(&mut self, m: &Message<'_>, sink: &mut impl Sink) {
        let sub = m.param(0).unwrap_or("").to_ascii_uppercase();
        let marks = match sub.as_str() {
            "LATEST" | "BEFORE" | "AFTER" | "AROUND" => 1,
            "BETWEEN" => 2,
            "" => return self.need_more(sink, "CHATHISTORY"),
            other => {
                let rest = format!("{} :Unknown subcommand", word(other));
                return fail(sink, self.server(), "INVALID_PARAMS", &rest);
            }
        };
        let (Some(target), Some(limit)) = (m.param(1), m.param(2 + marks)) else {
            return fail(
                sink,
                self.server(),
                "INVALID_PARAMS",
                &format!("{sub} :Not enough parameters"),
            );
        };
        let room = target
            .starts_with('#')
            .then(|| RoomName::parse(target).ok())
            .flatten();
        let Some(room) = room else {
            let rest = format!("{sub} {} :Only rooms keep history", word(target));
            return fail(sink, self.server(), "INVALID_TARGET", &rest);
        };
        let first = mark(m.param(2).unwrap_or(""));
        let second = mark(m.param(3).unwrap_or(""));
        let window = match (sub.as_str(), first, second) {
            ("LATEST", Some(Mark::Latest), _) => Window::Latest(None),
            ("LATEST", Some(Mark::At(at)), _) => Window::Latest(Some(at)),
            ("BEFORE", Some(Mark::At(at)), _) => Window::Before(at),
            ("AFTER", Some(Mark::At(at)), _) => Window::After(at),
            ("AROUND", Some(Mark::At(at)), _) => Window::Around(at),
            ("BETWEEN", Some(Mark::At(a)), Some(Mark::At(b))) => Window::Between(a, b),
            _ => {
                let rest = format!("{sub} :Invalid message reference");
                return fail(sink, self.server(), "INVALID_PARAMS", &rest);
            }
        };
        let Ok(limit) = limit.parse::<usize>() else {
            return fail(
                sink,
                self.server(),
                "INVALID_PARAMS",
                &format!("{sub} :Invalid limit"),
            );
        };
        let command = Command::HistoryWindow {
            room: Some(room.clone()),
            window,
            limit,
        };
        // The subcommand rides after the room, for a FAIL to name both.
        self.ask_echoed(sink, "CHATHISTORY", room.as_str(), &sub, command);
    }

    /// A channel name as a room, or `None` after answering 403.
    /// `ACK NAME [note]`, `SILENCE NAME DURATION [reason]`, `UNSILENCE NAME`: the text
    /// protocol's `/ack`, `/silence` and `/unsilence` of a check or heartbeat, as server
    /// commands (IRC clients send a `/command` they do not know as one, or with `/quote`).
    fn alert(&mut self, verb: &str, m: &Message<'_>, sink: &mut impl Sink) {
        let Some(name) = m.param(0) else {
            return self.need_more(sink, verb);
        };
        // The name becomes the request's subject, which replies quote: only a name a check
        // or heartbeat could have goes on.
        if !valid_name(name) {
            let line = format!(
                ":{} NOTICE {} :no check or heartbeat is called that: {}",
                self.server(),
                self.me(),
                name_rule()
            );
            return answer(sink, &line);
        }
        let line = format!("/{} {}", verb.to_ascii_lowercase(), m.params.join(" "));
        match crate::protocol::text::parse(&line) {
            Ok(Incoming::Request(Request { command, .. })) => {
                let name = name.to_owned();
                self.ask(sink, verb, &name, command);
            }
            Err(refusal) if refusal.code == ErrorCode::MissingArgument => {
                self.need_more(sink, verb);
            }
            // The refusal may quote what was typed, control characters and all.
            Err(refusal) => {
                let message = crate::hub::sanitize(&refusal.message);
                let line = format!(":{} NOTICE {} :{message}", self.server(), self.me());
                answer(sink, &line);
            }
            Ok(_) => {}
        }
    }

    fn channel(&mut self, name: &str, sink: &mut impl Sink) -> Option<RoomName> {
        let room = name
            .starts_with('#')
            .then(|| RoomName::parse(name).ok())
            .flatten();
        if room.is_none() {
            self.no_such_channel(sink, name);
        }
        room
    }

    fn no_such_channel(&mut self, sink: &mut impl Sink, name: &str) {
        let name = word(name);
        self.numeric(sink, ERR_NOSUCHCHANNEL, &format!("{name} :No such channel"));
    }

    fn need_more(&mut self, sink: &mut impl Sink, verb: &str) {
        self.numeric(
            sink,
            ERR_NEEDMOREPARAMS,
            &format!("{verb} :Not enough parameters"),
        );
    }

    /// Hands the hub `command`, tagged with what was asked so its reply can be written.
    fn ask(&mut self, sink: &mut impl Sink, verb: &str, subject: &str, command: Command) {
        self.ask_echoed(sink, verb, subject, "", command);
    }

    /// [`Self::ask`], the reference also carrying `echo` (from [`Self::echo`]) for the
    /// acknowledgement to be written as the message itself.
    fn ask_echoed(
        &mut self,
        sink: &mut impl Sink,
        verb: &str,
        subject: &str,
        echo: &str,
        command: Command,
    ) {
        let asked = Asked {
            rest: echo,
            ..Asked::new(Some(self.me()), verb, subject)
        };
        self.send(sink, command, asked.reference());
    }

    /// What a message's acknowledgement must echo, for a client with echo-message: `a`
    /// (an action) or `p`, the sender's account after `~` (see [`Self::echoed_account`]),
    /// `@` and the client tags it carries if any, then a space and the text as the hub
    /// keeps it; nothing for other clients.
    fn echo(
        &self,
        sink: &impl Sink,
        text: &MessageText,
        action: bool,
        tags: Option<&ClientTags>,
    ) -> String {
        if !self.caps.has(Caps::ECHO_MESSAGE) {
            return String::new();
        }
        let kind = if action { 'a' } else { 'p' };
        let account = self.echoed_account(sink);
        match tags {
            Some(tags) => format!("{kind}{account}@{} {}", tags.as_str(), text.as_str()),
            None => format!("{kind}{account} {}", text.as_str()),
        }
    }

    /// `~` and the account the session is logged in to, for a client with account-tag,
    /// whose echo must carry the `account` tag the others get; else nothing. A nick (an
    /// account's name) never holds `~`, `@` or a space, so the format finds where it ends.
    fn echoed_account(&self, sink: &impl Sink) -> String {
        if !self.caps.has(Caps::ACCOUNT_TAG) {
            return String::new();
        }
        sink.account()
            .map_or_else(String::new, |account| format!("~{account}"))
    }

    fn send(&mut self, sink: &mut impl Sink, command: Command, reference: Option<String>) {
        sink.incoming(Incoming::Request(Request { command, reference }));
    }

    /// The server's name, which its own lines start with (`--server-name`).
    fn server(&self) -> &'static str {
        let format: &'static IrcFormat = self.format;
        &format.server
    }

    /// The nick numerics are addressed to: `*` before registration.
    /// The nick given, registered or not (`*` before any): what SASL's answers name, 900's
    /// mask included, as other servers' do once NICK was sent.
    fn given(&self) -> &str {
        self.nick.as_ref().map_or("*", Nick::as_str)
    }

    fn me(&self) -> &str {
        match (&self.nick, self.registered) {
            (Some(nick), true) => nick.as_str(),
            _ => "*",
        }
    }

    /// Answers with a numeric of the codec's own.
    fn numeric(&mut self, sink: &mut impl Sink, number: &str, rest: &str) {
        answer(
            sink,
            &format!(":{} {number} {} {rest}", self.server(), self.me()),
        );
    }
}

/// USER's user name as kept: its ASCII letters, digits, `-`, `_` and `.`, cut to
/// [`USERLEN`](crate::limits::USERLEN) bytes; `None` when nothing is left. It goes where a
/// host name's neighbours would be read as separators (`nick!user@host`, WHO's fields).
pub fn user_name(given: &str) -> Option<Box<str>> {
    let kept: String = given
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(crate::limits::USERLEN)
        .collect();
    (!kept.is_empty()).then(|| kept.into_boxed_str())
}

/// Writes a line of the codec's own. It may quote what the client sent (a command
/// word, a nick, a PING token), so control characters are removed, as text refusals do,
/// even a lone CR inside a line, which would end it early on the client's side; and it is
/// cut, on a character boundary, to the 512 bytes every client accepts.
fn answer(sink: &mut impl Sink, line: &str) {
    let mut line = crate::hub::sanitize(line);
    let mut end = line.len().min(super::message::MAX_LINE_BYTES - 2);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    line.push_str("\r\n");
    sink.incoming(Incoming::Answer(Bytes::from(line)));
}

/// `caps` and whether `sasl` is on, changed as a `CAP REQ` list asks (`name` on, `-name`
/// off), or `None` when it names a capability charla lacks or nothing at all: the whole
/// request is then refused.
fn requested(caps: Caps, sasl_asked: bool, list: &str) -> Option<(Caps, bool)> {
    let (mut changed, mut sasl) = (caps, sasl_asked);
    let mut any = false;
    for word in list.split(' ').filter(|w| !w.is_empty()) {
        let (on, name) = match word.strip_prefix('-') {
            Some(name) => (false, name),
            None => (true, word),
        };
        // SASL changes no wire format: AUTHENTICATE works whether or not it was asked for.
        if name.eq_ignore_ascii_case(sasl::NAME) {
            sasl = on;
        } else {
            changed = changed.with(Caps::named(name)?, on);
        }
        any = true;
    }
    any.then_some((changed, sasl))
}

/// What a client sent, quoted as one middle parameter of a numeric: up to its first space
/// or what [`answer`] turns into one (a tab, U+2028, U+2029), and `*` when that
/// leaves nothing or a word starting with `:`, which would begin the trailing parameter.
/// A target sent as a trailing parameter (`JOIN :#a b`) may hold spaces.
fn word(sent: &str) -> &str {
    let first = sent
        .split([' ', '\t', '\u{2028}', '\u{2029}'])
        .next()
        .unwrap_or("");
    if first.is_empty() || first.starts_with(':') {
        "*"
    } else {
        first
    }
}

/// WHOX's `fields[,token]` as the reference carries them: `%`, the field letters charla
/// writes (`tcuihsnfdlaor`, each once, in that order, as the spec orders the reply), then
/// `,` and the token, up to three digits (`0` when none or another is given).
fn whox_fields(given: &str) -> String {
    let (letters, token) = given.split_once(',').unwrap_or((given, "0"));
    let fields: String = WHOX_FIELDS
        .chars()
        .filter(|&field| letters.contains(field))
        .collect();
    let token = if (1..=3).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_digit()) {
        token
    } else {
        "0"
    };
    format!("%{fields},{token}")
}

/// Bytes of the line an IRC reader gets for `text` said by `nick` to `target`, CRLF
/// included: the sender's address and the command before it.
fn relayed_bytes(nick: &str, target: &str, text: &str) -> usize {
    format!(":{nick}!{nick}@{USER_HOST} PRIVMSG {target} :{text}\r\n").len()
}

/// A CHATHISTORY refusal, as IRCv3 standard replies write it.
fn fail(sink: &mut impl Sink, server: &str, code: &str, rest: &str) {
    answer(sink, &format!(":{server} FAIL CHATHISTORY {code} {rest}"));
}

/// A CHATHISTORY message reference as sent.
enum Mark {
    /// `*`: LATEST's "from the newest".
    Latest,
    At(crate::hub::Mark),
}

/// `*`, `msgid=ID` (or `ID-N`) or `timestamp=2026-12-04T10:20:00.123Z`; `None` for
/// anything else.
fn mark(sent: &str) -> Option<Mark> {
    if sent == "*" {
        return Some(Mark::Latest);
    }
    let (kind, value) = sent.split_once('=')?;
    let at = match kind {
        // A part of a message split for IRC is `ID-N` ([`super::encode`]): its message's.
        "msgid" => {
            let id = value.split_once('-').map_or(value, |(id, _)| id);
            crate::hub::Mark::Message(id.parse().ok()?)
        }
        "timestamp" => {
            let at: jiff::Timestamp = value.parse().ok()?;
            crate::hub::Mark::Time(u64::try_from(at.as_millisecond()).ok()?)
        }
        _ => return None,
    };
    Some(Mark::At(at))
}

/// `command` carrying `tags` to its readers, if there are any.
fn tagged(tags: &Option<ClientTags>, command: Command) -> Command {
    match tags {
        Some(tags) => Command::Tagged {
            tags: tags.clone(),
            command: Box::new(command),
        },
        None => command,
    }
}

/// Nicks one USERHOST asks about, as RFC 2812 has it; further ones are dropped.
const MAX_USERHOST_NICKS: usize = 5;

/// Bytes of nicks (each with its separator) one ISON asks about: as many as the 303 that
/// answers can name on one line within 512 bytes with its prefix. Further nicks are
/// dropped.
const MAX_ISON_BYTES: usize = 400;

/// Targets of one PRIVMSG or NOTICE at most, as ISUPPORT's TARGMAX says.
pub const MAX_MESSAGE_TARGETS: usize = 4;

/// The comma-separated targets of `list`; a PRIVMSG or NOTICE takes at most
/// [`MAX_MESSAGE_TARGETS`]. Each after the first must pass [`another`] before it is acted
/// on.
fn targets<'a>(list: &'a str, verb: &str) -> impl Iterator<Item = (usize, &'a str)> {
    let most = if matches!(verb, "PRIVMSG" | "NOTICE") {
        MAX_MESSAGE_TARGETS
    } else {
        usize::MAX
    };
    list.split(',')
        .filter(|t| !t.is_empty())
        .take(most)
        .enumerate()
}

/// Whether the `i`th target of a list may be acted on: each after the first counts
/// against flood control as a line of its own, so `JOIN #a,#b,…` joins no faster than as
/// many JOIN lines would. Once refused, the rest of the list is dropped (flood control has
/// answered why).
fn another(i: usize, sink: &mut impl Sink) -> bool {
    i == 0 || sink.admit()
}

/// A CTCP message (`\x01VERB text\x01`, the closing `\x01` optional as clients send it).
enum Ctcp<'a> {
    Action(&'a str),
    Other,
}

fn ctcp(text: &str) -> Option<Ctcp<'_>> {
    let inner = text.strip_prefix('\x01')?;
    let inner = inner.strip_suffix('\x01').unwrap_or(inner);
    match inner.split_once(' ') {
        Some((verb, body)) if verb.eq_ignore_ascii_case("ACTION") => Some(Ctcp::Action(body)),
        _ => Some(Ctcp::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Encode;
    use crate::protocol::Refusal;

    /// A connection as far as a codec sees it: registration succeeds unless the nick is
    /// `taken`, and everything handed over is recorded as words.
    #[derive(Default)]
    struct IrcRecord {
        seen: Vec<String>,
        session: Option<Nick>,
    }

    impl Sink for IrcRecord {
        fn admit(&mut self) -> bool {
            true
        }
        fn incoming(&mut self, incoming: Incoming) {
            let word = match incoming {
                Incoming::Answer(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
                Incoming::Register {
                    nick, reference, ..
                } => {
                    let nick = nick.unwrap();
                    if nick.as_str() != "taken" {
                        self.session = Some(nick.clone());
                    }
                    format!("register {nick} {reference:?}")
                }
                Incoming::Request(Request { command, reference }) => {
                    format!("{command:?} {}", reference.unwrap_or_default())
                }
                other => format!("{other:?}"),
            };
            self.seen.push(word);
        }
        fn refuse(&mut self, refusal: Refusal) {
            self.seen.push(refusal.code.as_str().into());
        }
        fn speak(&mut self, _: &'static dyn Encode) {}
        fn nick(&self) -> Option<Nick> {
            self.session.clone()
        }
    }

    fn run(codec: &mut IrcCodec, input: &str) -> Vec<String> {
        let mut sink = IrcRecord {
            session: codec
                .client
                .nick
                .clone()
                .filter(|_| codec.client.registered),
            ..IrcRecord::default()
        };
        codec.decode(input.as_bytes(), &mut sink);
        sink.seen
    }

    #[test]
    fn a_msgid_mark_finds_the_message_of_a_part_too() {
        let message = |sent| match mark(sent) {
            Some(Mark::At(crate::hub::Mark::Message(id))) => Some(id),
            _ => None,
        };
        assert_eq!(message("msgid=42"), Some(42));
        assert_eq!(message("msgid=42-3"), Some(42));
        assert_eq!(message("msgid=-3"), None);
        assert_eq!(message("msgid=x-3"), None);
    }

    #[test]
    fn registration_waits_for_cap_end_and_retries_a_taken_nick() {
        let mut codec = IrcCodec::new(&Limits::default());
        let mut sink = IrcRecord::default();
        codec.decode(b"CAP LS 302\r\nNICK taken\r\nUSER a 0 * :A\r\n", &mut sink);
        assert_eq!(
            sink.seen,
            [
                ":charla CAP * LS :account-tag away-notify batch draft/chathistory echo-message labeled-response message-tags multi-prefix server-time userhost-in-names sasl=PLAIN\r\n"
            ]
        );
        codec.decode(b"JOIN #ops\r\nCAP END\r\n", &mut sink);
        assert_eq!(sink.seen[1], ":charla 451 * :You have not registered\r\n");
        assert_eq!(sink.seen[2], "register taken Some(\"* NICK taken\")");
        assert_eq!(sink.seen.len(), 3, "not registered: {:?}", sink.seen);
        codec.decode(b"NICK ana\n", &mut sink);
        assert_eq!(sink.seen[3], "register ana Some(\"* NICK ana\")");
        assert_eq!(
            sink.seen[4],
            "User { user: Some(\"a\"), realname: Some(\"A\") } ana USER *"
        );
        // Registered in no room: nothing is asked of #lobby.
        assert_eq!(sink.seen.len(), 5, "{:?}", sink.seen);
        codec.decode(b"PING :x y\r\nUSER b 0 * :B\r\n", &mut sink);
        assert_eq!(sink.seen[5], ":charla PONG charla :x y\r\n");
        assert_eq!(sink.seen[6], ":charla 462 ana :You may not reregister\r\n");
    }

    #[test]
    fn a_user_name_keeps_what_fits_between_bang_and_at() {
        assert_eq!(user_name("myusernam").as_deref(), Some("myusernam"));
        assert_eq!(user_name("a!b@c d:é\x01_-.").as_deref(), Some("abcd_-."));
        assert_eq!(
            user_name(&"x".repeat(40)).map(|u| u.len()),
            Some(crate::limits::USERLEN)
        );
        assert_eq!(user_name("@@ é"), None);
    }

    #[test]
    fn commands_become_requests_tagged_with_what_was_asked() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        assert!(codec.client.registered);
        let got = run(
            &mut codec,
            "JOIN #ops,bad\r\nPRIVMSG #ops,bob :\x01ACTION waves\x01\r\nPRIVMSG bob :\x01VERSION\x01\r\n",
        );
        assert!(
            got[0].starts_with("Join(\"#ops\") ana JOIN #ops"),
            "{got:?}"
        );
        assert!(got[1].starts_with("Users") && got[1].ends_with("ana JOINED #ops"));
        assert!(got[2].starts_with("History") && got[2].ends_with("ana HISTORY #ops"));
        assert_eq!(got[3], ":charla 403 ana bad :No such channel\r\n");
        assert!(got[4].contains("action: true") && got[4].ends_with("ana PRIVMSG #ops"));
        assert!(got[5].starts_with("Msg") && got[5].contains("\"* ana waves\""));
        assert_eq!(got.len(), 6, "other CTCP is dropped: {got:?}");
        let got = run(
            &mut codec,
            "FOO\r\nPRIVMSG\r\nNOTICE\r\nPART\r\nMODE #ops\r\n",
        );
        assert_eq!(
            got,
            [
                ":charla 421 ana FOO :Unknown command\r\n",
                ":charla 411 ana :No recipient given (PRIVMSG)\r\n",
                ":charla 461 ana PART :Not enough parameters\r\n",
                "Mode { room: Some(\"#ops\"), changes: [] } ana MODE #ops",
            ]
        );
    }

    /// Whatever arrives, the codec's own lines are single lines of at most 512 bytes,
    /// with no control character but their CRLF.
    #[test]
    fn answers_to_any_input_are_bounded_clean_lines() {
        let mut seed: u64 = 0x5eed_1dea;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let words: [&[u8]; 12] = [
            b"PING ",
            b"CAP ",
            b"NICK ",
            b"USER a 0 * :",
            b"JOIN #",
            b"PRIVMSG ",
            b"MODE ",
            b"\r",
            b"\x07\x1b[2J",
            b":",
            b",",
            "ñ😀".as_bytes(),
        ];
        for round in 0..300 {
            let mut codec = IrcCodec::new(&Limits::default());
            let mut sink = IrcRecord::default();
            let mut input = Vec::new();
            for _ in 0..(next() % 40) {
                match next() % 4 {
                    0 => input.extend_from_slice(words[(next() % 12) as usize]),
                    1 => input.extend((0..next() % 600).map(|_| b'a' + (next() % 26) as u8)),
                    2 => input.push((next() % 256) as u8),
                    _ => input.extend_from_slice(b"\r\n"),
                }
            }
            if round % 2 == 0 {
                input.splice(0..0, b"NICK ana\r\nUSER a 0 * :A\r\n".iter().copied());
            }
            codec.decode(&input, &mut sink);
            codec.finish(&mut sink);
            for seen in sink
                .seen
                .iter()
                .filter(|s| s.starts_with(':') || s.starts_with("ERROR"))
            {
                let line = seen.strip_suffix("\r\n").expect("ends in CRLF");
                assert!(seen.len() <= 512, "{} bytes", seen.len());
                assert!(!line.chars().any(char::is_control), "{line:?}");
            }
        }
    }

    /// Caught by the `irc_codec` fuzz target's checks (on a hand-made input, found reading
    /// this codec while writing the target): `PRIVMSG bob\t :hi` reached the hub asked as
    /// `ana PRIVMSG bob\t`, the target as sent, which `Nick::parse` had trimmed; an error
    /// reply (`401 ana bob\t :…`) then wrote the tab to the client. The same went for a
    /// form feed, U+0085 and U+2028 after a nick or a room.
    #[test]
    fn a_message_is_asked_by_the_target_as_parsed_not_as_sent() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        let got = run(
            &mut codec,
            "PRIVMSG bob\t :hi\r\nNOTICE #ops\u{c},bob\u{85} :hi\r\nPRIVMSG bob\u{2028} :hi\r\n",
        );
        assert_eq!(got.len(), 4, "{got:?}");
        for (seen, asked) in got.iter().zip([
            "ana PRIVMSG bob",
            "ana NOTICE #ops",
            "ana NOTICE bob",
            "ana PRIVMSG bob",
        ]) {
            assert!(seen.ends_with(&format!(" {asked}")), "{seen:?}");
        }
        let refused = crate::hub::Event::Error {
            code: crate::hub::ErrorCode::NoSuchNick,
            message: "nobody is called bob".into(),
        };
        let asked: Vec<&str> = got[0].rsplitn(4, ' ').take(3).collect();
        let reference = Some(format!("{} {} {}", asked[2], asked[1], asked[0]));
        let line = codec
            .format()
            .encode(&crate::hub::Outgoing::reply(refused, reference));
        assert_eq!(&line[..], b":charla 401 ana bob :nobody is called bob\r\n");
    }

    /// A labeled call to a check, which another node may answer later, is not
    /// acknowledged now: its reference carries the label, and its answer is labeled
    /// whenever it comes. Another labeled request is labeled here, as ever.
    #[test]
    fn a_labeled_call_carries_its_label_to_its_answer() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(
            &mut codec,
            "CAP REQ :labeled-response\r\nNICK ana\r\nUSER a 0 * :A\r\nCAP END\r\n",
        );
        let got = run(&mut codec, "@label=q7 ACK db on it\r\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].ends_with(" @q7 ana ACK db"), "{got:?}");
        let notice = crate::hub::Notice::new(
            crate::hub::Source::new("check:db").unwrap(),
            crate::hub::PostKind::Notice,
            MessageText::new("db is down").unwrap(),
        );
        let status = crate::hub::Event::Status {
            room: RoomName::parse("#alerts").unwrap(),
            items: vec![notice],
        };
        let answer = codec.format().encode(&crate::hub::Outgoing::reply(
            status,
            Some("@q7 ana ACK db".into()),
        ));
        assert_eq!(
            &answer[..],
            b"@label=q7 :[check:db]!feed@charla NOTICE #alerts :--- db is down\r\n"
        );
        // In a cluster, the node that runs it, as text says it.
        let remote = crate::hub::Notice::new(
            crate::hub::Source::new("check:db").unwrap(),
            crate::hub::PostKind::Notice,
            MessageText::new("db is down").unwrap(),
        )
        .with("node", "n2");
        let status = crate::hub::Event::Status {
            room: RoomName::parse("#alerts").unwrap(),
            items: vec![remote],
        };
        let answer = codec
            .format()
            .encode(&crate::hub::Outgoing::reply(status, None));
        assert_eq!(
            &answer[..],
            b":[check:db]!feed@charla NOTICE #alerts :--- db is down (on n2)\r\n"
        );

        let got = run(&mut codec, "@label=q8 PART #ops\r\n");
        assert!(got[0].ends_with(" ana PART #ops"), "{got:?}");
        assert_eq!(got[1], "@label=q8 :charla ACK\r\n", "{got:?}");
    }

    #[test]
    fn a_refused_ack_quotes_no_control_character() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        let got = run(&mut codec, "ACK SEN0\u{4}\r\nSILENCE db\u{1b}[2J 1h\r\n");
        assert_eq!(got.len(), 2, "{got:?}");
        for line in &got {
            assert!(line.starts_with(":charla NOTICE ana :"), "{line:?}");
            let body = line.strip_suffix("\r\n").unwrap();
            assert!(!body.chars().any(char::is_control), "{line:?}");
        }
    }

    #[test]
    fn a_message_too_long_once_relayed_gets_417_and_one_that_fits_goes() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        // 512 bytes as sent; `:ana!ana@charla ` before it would make 528.
        let sent = format!("PRIVMSG #ops :{}\r\n", "x".repeat(512 - 16));
        assert_eq!(sent.len(), 512);
        let got = run(&mut codec, &sent);
        assert_eq!(
            got,
            [":charla 417 ana :Input line was too long once relayed with your address\r\n"]
        );
        let fits = format!("PRIVMSG #ops :{}\r\n", "x".repeat(512 - 16 - 16));
        let got = run(&mut codec, &fits);
        assert!(got[0].starts_with("Say"), "{got:?}");
        // A NOTICE is never answered: it goes, and IRC readers get it split.
        let got = run(&mut codec, &sent.replacen("PRIVMSG", "NOTICE ", 1));
        assert!(got[0].starts_with("Notice"), "{got:?}");
    }

    /// Every numeric that quotes what was sent quotes one word: a target sent as a
    /// trailing parameter with spaces, or with a tab (which becomes a space), or starting
    /// with `:`, must not add parameters to the reply.
    #[test]
    fn numerics_quoting_a_spaced_target_keep_their_shape() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        let cases = [
            ("JOIN :#a b", "403", 3),
            ("WHO :x y", "315", 3),
            ("KICK #ops :bo b", "441", 4),
            ("INVITE bo\tb #ops", "401", 3),
            ("PRIVMSG bo\u{b}b :hi", "401", 3),
            ("CAP :a b", "410", 3),
            ("WHOIS ::x", "401", 3),
            ("MODE #ops :+m x", "472", 3),
            ("TOPIC :#a\u{2028}b", "403", 3),
            ("NICK :a b", "432", 3),
            ("PART ::#x", "403", 3),
        ];
        for (input, number, params) in cases {
            let got = run(&mut codec, &format!("{input}\r\n"));
            let line = got[0].trim_end_matches("\r\n");
            let reply = Message::parse(line).unwrap();
            assert_eq!(reply.command, number, "{input:?}: {line:?}");
            assert_eq!(reply.params.len(), params, "{input:?}: {line:?}");
            assert!(!reply.params[1].contains(' '), "{input:?}: {line:?}");
        }
    }

    /// Found by the fuzz target irc_codec: a WHO mask went on as the request's subject as
    /// sent, so the end of the hub's answer (`315 ana MASK :End of WHO list`) wrote its
    /// control characters to the client. No name holds one, so such a mask matches
    /// nobody, and the codec's own 315 answers it, cleaned.
    #[test]
    fn a_who_mask_with_a_control_character_is_answered_cleanly() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        for mask in ["an*u\0ha", "a*\u{7}", "*!b\u{1b}[2J@*", "a*\u{202e}b"] {
            let got = run(&mut codec, &format!("WHO {mask}\r\n"));
            assert_eq!(got.len(), 1, "{mask:?}: {got:?}");
            let line = got[0]
                .strip_suffix("\r\n")
                .unwrap_or_else(|| panic!("{mask:?} was asked of the hub: {got:?}"));
            assert!(line.starts_with(":charla 315 ana "), "{mask:?}: {line:?}");
            assert_eq!(line, crate::hub::sanitize(line), "{mask:?}");
        }
    }

    /// Found by the fuzz target irc_codec: `WHO \x0cbob\x0c` asked about the nick `bob`
    /// (a name is parsed trimmed) by the mask as sent, and the hub's `315` quoted the form
    /// feeds to the client. WHO, like PRIVMSG, asks by the name as parsed.
    #[test]
    fn a_who_of_a_name_is_asked_by_the_name_as_parsed() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        let got = run(&mut codec, "WHO \u{c}bob\u{c}\r\nWHO #ops\u{85}\r\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with(" ana WHO bob"), "{:?}", got[0]);
        assert!(got[1].ends_with(" ana WHO #ops"), "{:?}", got[1]);
    }

    #[test]
    fn overlong_lines_get_417_and_the_next_line_is_served() {
        let mut codec = IrcCodec::new(&Limits::default());
        let long = format!("PRIVMSG #a :{}\r\nPING :ok\r\n", "x".repeat(600));
        let got = run(&mut codec, &long);
        assert_eq!(
            got,
            [
                ":charla 417 * :Input line was too long\r\n",
                ":charla PONG charla :ok\r\n"
            ]
        );
        let huge = format!("{}\r\nPING :ok\r\n", "x".repeat(MAX_FRAME_BYTES + 10));
        assert_eq!(run(&mut codec, &huge), got);
        // An echo of what was sent is cut to the bound and loses its controls.
        let got = run(&mut codec, &format!("PING :{}\r\n", "ñ".repeat(252)));
        assert_eq!(got[0].len(), 511, "{:?}", got[0]);
        assert!(got[0].ends_with("ñ\r\n"));
        let got = run(&mut codec, "NICK F\x1b[2J\rOO\r\n");
        assert!(
            got[0].starts_with(":charla 432 * FOO :Erroneous nickname"),
            "{got:?}"
        );
    }

    /// irctest's testCaseChanges: NICK to the nick one has, spelled the same, is no change
    /// and answered by nothing; spelled in another case, it is a change.
    #[test]
    fn nick_to_the_same_spelling_is_no_change() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        assert_eq!(run(&mut codec, "NICK ana\r\n"), Vec::<String>::new());
        let got = run(&mut codec, "NICK Ana\r\n");
        assert!(got[0].starts_with("Nick(\"Ana\")"), "{got:?}");
    }

    /// irctest's testKeyValidation and testLimitInvalidValues: a key or limit that could
    /// never be set, an empty one included, is 696 naming its letter alone; no argument at
    /// all is 461.
    #[test]
    fn a_bad_key_or_limit_is_696_naming_its_letter() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        for (change, letter) in [
            ("+l 0", 'l'),
            ("+l -1", 'l'),
            ("+l abc", 'l'),
            ("+l :", 'l'),
            ("+k :", 'k'),
            ("+k :a b", 'k'),
            ("+k :  ", 'k'),
            ("+mk :\u{1b}[2J", 'k'),
        ] {
            let got = run(&mut codec, &format!("MODE #ops {change}\r\n"));
            assert_eq!(got.len(), 1, "{change}: {got:?}");
            let start = format!(":charla 696 ana #ops {letter} * :");
            assert!(got[0].starts_with(&start), "{change}: {got:?}");
        }
        let got = run(&mut codec, "MODE #ops +l\r\n");
        assert_eq!(got, [":charla 461 ana MODE :Not enough parameters\r\n"]);
        let got = run(&mut codec, "MODE #ops +lk 5 :sesame\r\n");
        assert!(got[0].contains("Limit(5)") && got[0].contains("Key(\"sesame\")"));
    }

    /// irctest's testInfo: INFO is answered with 371s and ends with 374.
    #[test]
    fn info_is_371s_then_374() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        let got = run(&mut codec, "INFO\r\n");
        let (last, info) = got.split_last().unwrap();
        assert_eq!(last, ":charla 374 ana :End of INFO list\r\n");
        assert!(!info.is_empty(), "{got:?}");
        assert!(
            info.iter().all(|l| l.starts_with(":charla 371 ana :")),
            "{got:?}"
        );
    }

    #[test]
    fn topic_kick_invite_and_mode_become_hub_requests() {
        let mut codec = IrcCodec::new(&Limits::default());
        let _ = run(&mut codec, "NICK ana\r\nUSER a 0 * :A\r\n");
        let got = run(
            &mut codec,
            "TOPIC #ops\r\nTOPIC #ops :\r\nKICK #ops bob,cai :bye\r\nINVITE bob #ops\r\n\
             MODE #ops +b\r\nMODE #ops +ok bob key\r\nMODE #ops +x\r\nMODE #ops +k\r\n\
             JOIN #a,#b k1\r\n",
        );
        assert!(got[0].starts_with("Topic { room: Some(\"#ops\") } ana TOPIC #ops"));
        assert!(got[1].starts_with("SetTopic { room: Some(\"#ops\"), text: None }"));
        assert!(got[2].starts_with("Kick") && got[2].ends_with("ana KICK #ops,bob"));
        assert!(got[3].contains("\"bye\"") && got[3].ends_with("ana KICK #ops,cai"));
        assert!(got[4].starts_with("Invite") && got[4].ends_with("ana INVITE #ops,bob"));
        assert!(got[5].starts_with("Bans { room: Some(\"#ops\") }"));
        assert!(got[6].starts_with("Mode") && got[6].contains("Op(\"bob\")"));
        assert!(got[6].contains("Key(\"key\")"));
        assert_eq!(got[7], ":charla 472 ana x :is unknown mode char to me\r\n");
        assert_eq!(got[8], ":charla 461 ana MODE :Not enough parameters\r\n");
        assert!(got[9].starts_with("JoinWithKey { room: \"#a\", key: \"k1\" }"));
        assert!(got[12].starts_with("Join(\"#b\")"), "{got:?}");
    }
}
