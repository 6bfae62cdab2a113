//! IRC clients on the same hub as nc and JSON users, over real sockets: raw TCP speaking
//! IRC lines as a client would.

use charla::limits::Limits;

use crate::support::{Client, QUIET, TestServer};

/// A server with a text listener and an IRC one, flood control off.
pub(crate) async fn server() -> TestServer {
    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    TestServer::on(&["tcp://127.0.0.1:0", "irc://127.0.0.1:0"], limits).await
}

/// An IRC connection; lines are read without their CRLF.
pub(crate) struct Irc(pub(crate) Client);

impl Irc {
    pub(crate) async fn connect(server: &TestServer) -> Irc {
        Irc(Client::tcp(server.irc()).await)
    }

    /// Registers as `nick` the way irssi does, joins #lobby as an autojoin list would (an
    /// IRC session starts in no room), and reads up to the end of its names.
    pub(crate) async fn registered(server: &TestServer, nick: &str) -> Irc {
        let mut irc = Irc::connect(server).await;
        irc.send("CAP LS 302").await;
        irc.send(&format!("NICK {nick}")).await;
        irc.send(&format!("USER {nick} 0 * :{nick} here")).await;
        irc.expect("CAP * LS").await;
        irc.send("CAP END").await;
        irc.expect(" 422 ").await;
        irc.join_lobby(nick).await;
        irc
    }

    /// Asks for `caps`, registers as `nick`, joins #lobby, and reads up to the end of its
    /// names.
    pub(crate) async fn with_caps(server: &TestServer, nick: &str, caps: &str) -> Irc {
        let mut irc = Irc::connect(server).await;
        irc.send(&format!("CAP REQ :{caps}")).await;
        irc.expect(" ACK ").await;
        irc.send(&format!("NICK {nick}")).await;
        irc.send(&format!("USER {nick} 0 * :{nick}")).await;
        irc.send("CAP END").await;
        irc.expect(" 422 ").await;
        irc.join_lobby(nick).await;
        irc
    }

    async fn join_lobby(&mut self, nick: &str) {
        self.send("JOIN #lobby").await;
        self.expect(&format!(" 366 {nick} #lobby ")).await;
    }

    pub(crate) async fn send(&mut self, line: &str) {
        self.0.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    pub(crate) async fn line(&mut self) -> String {
        let line = self.0.line().await;
        line.strip_suffix('\r')
            .unwrap_or_else(|| panic!("{line:?} does not end in CRLF"))
            .to_string()
    }

    /// Lines up to the first containing `needle`, which is returned.
    pub(crate) async fn expect(&mut self, needle: &str) -> String {
        self.0
            .expect(needle)
            .await
            .trim_end_matches('\r')
            .to_string()
    }
}

#[tokio::test]
async fn registration_with_cap_negotiation_gets_001_to_005_422_and_no_room() {
    let server = server().await;
    let mut ana = Irc::connect(&server).await;
    ana.send("CAP LS 302").await;
    assert!(ana.line().await.starts_with(":charla CAP * LS :"));
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    // Registration waits for CAP END: nothing yet.
    ana.0.silent_for(QUIET).await;
    ana.send("CAP END").await;
    let mut numerics = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..12 {
        let line = ana.line().await;
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!((words[0], words[2]), (":charla", "ana"), "{line}");
        numerics.push(words[1].to_string());
        if words[1] == "005" {
            // A line has at most 15 parameters, so ISUPPORT takes two.
            let params =
                words.len() - 2 - (line.split(" :").nth(1).unwrap().split(' ').count() - 1);
            assert!(params <= 15, "{params} parameters in {line}");
            let (middle, _) = line.split_once(" :are supported").unwrap();
            tokens.extend(middle.split(' ').skip(3).map(String::from));
        }
        if words[1] == "004" {
            assert_eq!(
                words[3..],
                ["charla", words[4], "io", "biklmnostv", "bklov"]
            );
        }
        if words[1] == "251" {
            assert_eq!(
                line,
                ":charla 251 ana :There are 1 users and 0 invisible on 1 servers"
            );
        }
        if words[1] == "265" {
            assert_eq!(words[3..5], ["1", "1"], "{line}");
        }
    }
    for token in [
        "CHANTYPES=#",
        "NICKLEN=24",
        "CHANNELLEN=32",
        "CHANLIMIT=#:100",
        "PREFIX=(ov)@+",
        "CHANMODES=b,k,l,imnst",
        "TOPICLEN=390",
        "MAXLIST=b:50",
        "NETWORK=charla",
        "UTF8ONLY",
        "MODES=12",
        "AWAYLEN=200",
    ] {
        assert!(tokens.iter().any(|t| t == token), "{token} in {tokens:?}");
    }
    assert_eq!(
        numerics,
        [
            "001", "002", "003", "004", "005", "005", "251", "254", "255", "265", "266", "422"
        ]
    );
    // An IRC session starts in no room (its client joins its own); a JOIN puts it there.
    ana.0.silent_for(QUIET).await;
    ana.send("WHOIS ana").await;
    ana.expect(" 311 ana ana ").await;
    let rooms = ana.line().await;
    assert!(rooms.starts_with(":charla 312 ana ana "), "no 319: {rooms}");
    ana.send("JOIN #lobby").await;
    ana.expect(":ana!ana@charla JOIN #lobby").await;
    assert_eq!(ana.line().await, ":charla 353 ana = #lobby :ana");
    assert_eq!(
        ana.line().await,
        ":charla 366 ana #lobby :End of /NAMES list"
    );
}

#[tokio::test]
async fn commands_before_registration_get_451_and_a_taken_nick_433() {
    let server = server().await;
    let _bob = server.named("bob").await;
    let mut irc = Irc::connect(&server).await;
    irc.send("JOIN #ops").await;
    assert_eq!(irc.line().await, ":charla 451 * :You have not registered");
    irc.send("PING :early").await;
    assert_eq!(irc.line().await, ":charla PONG charla :early");
    irc.send("NICK BOB").await;
    irc.send("USER b 0 * :B").await;
    let taken = irc.line().await;
    assert!(taken.starts_with(":charla 433 * BOB :"), "{taken}");
    irc.send("NICK roberta").await;
    assert!(irc.line().await.starts_with(":charla 001 roberta :"));
    irc.expect(" 422 roberta ").await;
}

#[tokio::test]
async fn irc_and_nc_users_talk_in_the_lobby_and_in_a_joined_room() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    bob.expect("#lobby *** ana joined").await;

    ana.send("PRIVMSG #lobby :hola \x02bob\x02, ¿qué tal?")
        .await;
    assert_eq!(bob.line().await, "#lobby <ana> hola bob, ¿qué tal?");
    bob.send("olá, ana! 😀").await;
    assert_eq!(
        ana.line().await,
        ":bob!bob@charla PRIVMSG #lobby :olá, ana! 😀"
    );
    ana.send("PRIVMSG #lobby :\x01ACTION waves\x01").await;
    assert_eq!(bob.line().await, "#lobby * ana waves");
    bob.send("/me nods").await;
    assert_eq!(
        ana.line().await,
        ":bob!bob@charla PRIVMSG #lobby :\x01ACTION nods\x01"
    );

    ana.send("JOIN #ops,#dev").await;
    assert_eq!(ana.line().await, ":ana!ana@charla JOIN #ops");
    // The first member of a new room is its operator.
    assert_eq!(ana.line().await, ":charla 353 ana = #ops :@ana");
    assert_eq!(ana.line().await, ":charla 366 ana #ops :End of /NAMES list");
    ana.expect(":charla 366 ana #dev").await;
    bob.send("/join #ops").await;
    bob.expect("you joined").await;
    assert_eq!(ana.line().await, ":bob!bob@charla JOIN #ops");
    ana.send("PRIVMSG #ops :deploy at 11?").await;
    assert_eq!(bob.line().await, "#ops <ana> deploy at 11?");
    ana.send("NAMES #ops").await;
    assert_eq!(ana.line().await, ":charla 353 ana = #ops :@ana bob");
    ana.expect(" 366 ").await;

    bob.send("/leave #ops later").await;
    bob.expect("you left").await;
    assert_eq!(ana.line().await, ":bob!bob@charla PART #ops :later");
    // No such channel (403), not one ana cannot send to (404): #ops exists, ana left it.
    ana.send("PRIVMSG #nowhere :hi").await;
    assert_eq!(
        ana.line().await,
        ":charla 403 ana #nowhere :there is no #nowhere"
    );
    ana.send("PART #ops").await;
    ana.expect("PART #ops").await;
    bob.send("/join #ops").await;
    bob.expect("you joined").await;
    ana.send("PRIVMSG #ops :hi").await;
    assert!(ana.line().await.starts_with(":charla 404 ana #ops :"));
    ana.send("PART #nowhere").await;
    assert!(ana.line().await.starts_with(":charla 442 ana #nowhere :"));
}

/// JOIN of a channel one is in is ignored, as on any IRC server: no second JOIN, topic,
/// NAMES or history for the client, and no join told to the others. Text and JSON users
/// who join again are answered themselves, and the room is told nothing either.
#[tokio::test]
async fn joining_a_room_one_is_in_again_is_not_answered_or_told_again() {
    let server = server().await;
    let mut json = server.json("bot").await;
    let mut bob = server.named("bob").await;
    bob.send("/join #ops").await;
    bob.expect("#ops *** you joined").await;
    bob.send("/topic deploys").await;
    bob.expect("topic").await;
    bob.send("history to replay").await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("JOIN #ops").await;
    ana.expect(":ana!ana@charla JOIN #ops").await;
    ana.send("PING :first").await;
    ana.expect("PONG").await;
    bob.expect("#ops *** ana joined").await;

    ana.send("JOIN #ops,#lobby").await;
    ana.send("JOIN #OPS key").await;
    ana.send("PING :again").await;
    let next = ana.line().await;
    assert!(
        next.contains(" PONG ") && next.ends_with(":again"),
        "{next:?}"
    );

    json.send(r##"{"type":"join","room":"#lobby","ref":1}"##)
        .await;
    let again = loop {
        let v = json.json().await;
        if v["ref"] == 1 {
            break v;
        }
    };
    assert_eq!(again["type"], "join", "{again}");
    assert_eq!(
        (&again["you"], &again["ref"]),
        (&true.into(), &1.into()),
        "{again}"
    );
    bob.send("/join #ops").await;
    bob.expect("#ops *** you joined").await;

    // The next thing each hears is what is said next, not a join.
    bob.send("after").await;
    assert_eq!(ana.line().await, ":bob!bob@charla PRIVMSG #ops :after");
    ana.send("PRIVMSG #lobby :hola").await;
    let mut heard = Vec::new();
    while heard.last().is_none_or(|l| l != "#lobby <ana> hola") {
        heard.push(bob.line().await);
    }
    assert!(heard.iter().all(|l| !l.contains("ana joined")), "{heard:?}");
}

#[tokio::test]
async fn private_messages_cross_protocols_both_ways() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    bob.expect("ana joined").await;
    ana.send("PRIVMSG bob :psst").await;
    assert_eq!(bob.line().await, "(private) <ana> psst");
    bob.send("/msg ana qué pasa").await;
    assert_eq!(ana.line().await, ":bob!bob@charla PRIVMSG ana :qué pasa");
    ana.send("PRIVMSG nobody :hello?").await;
    assert!(ana.line().await.starts_with(":charla 401 ana nobody :"));
    // NOTICE never draws an error back, and stays a notice for its reader.
    ana.send("NOTICE nobody :hello?").await;
    ana.send("NOTICE #nowhere :hello?").await;
    ana.send("NOTICE bob :fyi").await;
    assert_eq!(bob.line().await, "(private) -ana- fyi");
    ana.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn notices_to_a_channel_stay_notices_in_every_protocol() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    let mut cai = Irc::registered(&server, "cai").await;
    bob.expect("cai joined").await;
    ana.expect("cai!cai@charla JOIN #lobby").await;
    ana.send("NOTICE #lobby :deploy done").await;
    assert_eq!(bob.line().await, "#lobby -ana- deploy done");
    assert_eq!(
        cai.line().await,
        ":ana!ana@charla NOTICE #lobby :deploy done"
    );
    // As a PRIVMSG would, a notice comes back in the history, still a notice.
    cai.send("HISTORY #lobby").await;
    let replayed = cai.expect("deploy done").await;
    assert!(
        replayed.starts_with(":ana!ana@charla NOTICE #lobby :"),
        "{replayed}"
    );
    ana.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn whois_names_rooms_away_and_idle_and_ends_with_318() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    bob.send("/join #ops").await;
    bob.expect("you joined").await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("WHOIS bob").await;
    assert_eq!(ana.line().await, ":charla 311 ana bob bob charla * :bob");
    assert_eq!(ana.line().await, ":charla 319 ana bob :#lobby @#ops");
    assert!(ana.line().await.starts_with(":charla 312 ana bob charla :"));
    let idle = ana.line().await;
    assert!(idle.starts_with(":charla 317 ana bob "), "{idle}");
    assert!(idle.ends_with(" :seconds idle, signon time"), "{idle}");
    assert_eq!(ana.line().await, ":charla 318 ana bob :End of /WHOIS list");
    ana.send("WHOIS nobody").await;
    assert!(ana.line().await.starts_with(":charla 401 ana nobody :"));
    assert_eq!(
        ana.line().await,
        ":charla 318 ana nobody :End of /WHOIS list"
    );
    // A name that cannot be a nick is quoted back as one word.
    ana.send("WHOIS :two words").await;
    assert_eq!(ana.line().await, ":charla 401 ana two :No such nick");
    assert_eq!(ana.line().await, ":charla 318 ana two :End of /WHOIS list");
    // Away shows in WHOIS (301) and answers a private message; a notice gets nothing.
    bob.send("/away at lunch").await;
    bob.expect("*** you are marked away: at lunch").await;
    ana.send("WHOIS bob").await;
    assert_eq!(ana.expect(" 301 ").await, ":charla 301 ana bob :at lunch");
    ana.expect(" 318 ").await;
    ana.send("PRIVMSG bob :lunch?").await;
    assert_eq!(ana.line().await, ":charla 301 ana bob :at lunch");
    ana.send("NOTICE bob :fyi").await;
    ana.0.silent_for(QUIET).await;
    bob.send("/away").await;
    bob.expect("you are back").await;
    ana.send("PRIVMSG bob :back?").await;
    ana.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn userhost_names_each_nick_found_and_whether_away() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    bob.send("/away brb").await;
    bob.expect("you are marked away").await;
    ana.send("USERHOST ana bob nobody").await;
    assert_eq!(ana.line().await, ":charla 302 ana :ana=+ana@charla");
    assert_eq!(ana.line().await, ":charla 302 ana :bob=-bob@charla");
    assert_eq!(ana.line().await, ":charla 302 ana :");
    ana.send("USERHOST").await;
    ana.expect(" 461 ana USERHOST :").await;
}

#[tokio::test]
async fn away_lusers_join_0_and_channel_creation_time() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("AWAY :brb").await;
    assert_eq!(
        ana.line().await,
        ":charla 306 ana :You have been marked as being away"
    );
    bob.send("/msg ana hi").await;
    assert_eq!(bob.expect("ana is away").await, "*** ana is away: brb");
    ana.send("AWAY").await;
    assert_eq!(
        ana.expect(" 305 ").await,
        ":charla 305 ana :You are no longer marked as being away"
    );
    ana.send("LUSERS").await;
    assert_eq!(
        ana.line().await,
        ":charla 251 ana :There are 2 users and 0 invisible on 1 servers"
    );
    assert_eq!(ana.line().await, ":charla 254 ana 1 :channels formed");
    assert_eq!(
        ana.line().await,
        ":charla 255 ana :I have 2 clients and 0 servers"
    );
    assert_eq!(
        ana.line().await,
        ":charla 265 ana 2 2 :Current local users 2, max 2"
    );
    assert_eq!(
        ana.line().await,
        ":charla 266 ana 2 2 :Current global users 2, max 2"
    );
    ana.send("JOIN #ops").await;
    ana.expect(" 366 ana #ops ").await;
    ana.send("MODE #ops").await;
    assert_eq!(ana.line().await, ":charla 324 ana #ops +nt");
    let created = ana.line().await;
    let at: u64 = created
        .strip_prefix(":charla 329 ana #ops ")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{created}"));
    assert!(at > 1_700_000_000, "{created}");
    ana.send("JOIN 0").await;
    let mut parted = vec![ana.line().await, ana.line().await];
    parted.sort();
    assert_eq!(
        parted,
        [":ana!ana@charla PART #lobby", ":ana!ana@charla PART #ops"]
    );
    assert_eq!(bob.expect("ana left").await, "#lobby *** ana left (left)");
    ana.send("WHOIS ana").await;
    ana.expect(" 311 ").await;
    assert!(
        ana.line().await.starts_with(":charla 312 "),
        "in no room: no 319"
    );
}

#[tokio::test]
async fn nick_changes_and_quits_are_seen_across_protocols() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    bob.expect("ana joined").await;
    ana.send("NICK bob").await;
    assert!(ana.line().await.starts_with(":charla 433 ana bob :"));
    ana.send("NICK Ana_").await;
    assert_eq!(ana.line().await, ":ana!ana@charla NICK :Ana_");
    assert_eq!(bob.line().await, "*** ana is now known as Ana_");
    // Numerics now name the new nick.
    ana.send("FROB").await;
    assert_eq!(ana.line().await, ":charla 421 Ana_ FROB :Unknown command");
    bob.send("/nick Roberto").await;
    bob.expect("you are now known as Roberto").await;
    assert_eq!(ana.line().await, ":bob!bob@charla NICK :Roberto");
    bob.send("/quit see you").await;
    assert_eq!(
        ana.line().await,
        ":Roberto!Roberto@charla QUIT :Quit: see you"
    );
    ana.send("QUIT :bye all").await;
    let bye = ana.line().await;
    assert!(bye.starts_with("ERROR :Closing link"), "{bye}");
    assert_eq!(ana.0.next().await, None, "closed after the goodbye");
}

/// IRC has one QUIT for every channel: someone who shares two rooms with an IRC client
/// quits once for it, while a text client sharing both still reads each room's line.
#[tokio::test]
async fn a_quit_reaches_an_irc_client_once_however_many_rooms_are_shared() {
    let server = server().await;
    let mut quitter = server.named("quitter").await;
    quitter.send("/join #dev").await;
    quitter.expect("#dev *** you joined").await;
    let mut watcher = server.named("watcher").await;
    watcher.send("/join #dev").await;
    watcher.expect("#dev *** you joined").await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("JOIN #dev").await;
    ana.expect(" 366 ana #dev ").await;
    quitter.close_write().await;
    assert_eq!(
        ana.expect(" QUIT ").await,
        ":quitter!quitter@charla QUIT :connection lost"
    );
    // The text client reads both rooms' lines first, so both leaves were written; then
    // everything up to the PING's answer holds no second QUIT.
    let mut left = vec![
        watcher.expect("quitter left").await,
        watcher.expect("quitter left").await,
    ];
    left.sort();
    assert_eq!(
        left,
        [
            "#dev *** quitter left (connection lost)",
            "#lobby *** quitter left (connection lost)"
        ]
    );
    ana.send("PING :after").await;
    loop {
        let line = ana.line().await;
        assert!(!line.contains(" QUIT "), "a second QUIT: {line}");
        if line == ":charla PONG charla :after" {
            break;
        }
    }
}

/// irssi's notify list asks ISON; TIME and VERSION are the server's own.
#[tokio::test]
async fn ison_time_and_version_are_answered() {
    let server = server().await;
    let _bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    // As parameters or one trailing parameter; a nick nobody holds (or no nick) is left out.
    ana.send("ISON bob nobody ana").await;
    assert_eq!(ana.line().await, ":charla 303 ana :bob ana");
    ana.send("ISON :nobody BOB #room").await;
    assert_eq!(ana.line().await, ":charla 303 ana :BOB");
    ana.send("ISON").await;
    assert!(ana.line().await.starts_with(":charla 461 ana ISON "));
    // A line full of nicks is answered on one line, within 512 bytes.
    let many = vec!["bob"; 120].join(" ");
    ana.send(&format!("ISON :{many}")).await;
    let answer = ana.line().await;
    assert!(answer.starts_with(":charla 303 ana :bob bob "), "{answer}");
    assert!(answer.len() + 2 <= 512, "{}", answer.len());
    ana.send("TIME").await;
    let time = ana.line().await;
    let fields: Vec<&str> = time.splitn(6, ' ').collect();
    assert_eq!(fields[..3], [":charla", "391", "ana"], "{time}");
    assert_eq!(fields[3], "charla");
    assert!(fields[4].parse::<u64>().is_ok(), "{time}");
    assert!(
        fields[5].starts_with("0 :") && fields[5].ends_with(" UTC"),
        "{time}"
    );
    ana.send("VERSION").await;
    assert_eq!(
        ana.line().await,
        format!(
            ":charla 351 ana charla-{}. charla :charla, a chat and live-alert server",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[tokio::test]
async fn ping_is_answered_and_an_overlong_line_is_refused_harming_no_one() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    bob.expect("ana joined").await;
    ana.send("PING :LAG12345").await;
    assert_eq!(ana.line().await, ":charla PONG charla :LAG12345");

    // 513 bytes with its CRLF: one too many.
    let over = format!("PRIVMSG #lobby :{}", "x".repeat(511 - 16));
    assert_eq!(over.len() + 2, 513);
    ana.send(&over).await;
    assert_eq!(ana.line().await, ":charla 417 ana :Input line was too long");
    // Far over, in pieces: refused once, and the next line is served.
    let huge = format!("PRIVMSG #lobby :{}", "y".repeat(20_000));
    ana.0.send_raw(&huge.as_bytes()[..9000]).await;
    ana.0.send_raw(&huge.as_bytes()[9000..]).await;
    ana.send("").await;
    assert_eq!(ana.line().await, ":charla 417 ana :Input line was too long");
    // At the bound as sent but over it with `:ana!ana@charla ` before it, as IRC readers
    // would get it: refused, rather than cut or split for them.
    let at_bound = format!("@label=x PRIVMSG #lobby :{}", "z".repeat(510 - 16));
    ana.send(&at_bound).await;
    assert_eq!(
        ana.line().await,
        ":charla 417 ana :Input line was too long once relayed with your address"
    );
    // At the bound as relayed, it is said; tags have their own allowance.
    let relayed_bound = format!("@label=x PRIVMSG #lobby :{}", "z".repeat(510 - 16 - 16));
    ana.send(&relayed_bound).await;
    let heard = bob.line().await;
    assert_eq!(heard, format!("#lobby <ana> {}", "z".repeat(478)));
    bob.send("still here").await;
    assert_eq!(
        ana.line().await,
        ":bob!bob@charla PRIVMSG #lobby :still here"
    );
}

#[tokio::test]
async fn a_long_line_from_nc_reaches_irc_whole_in_several_lines() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    bob.expect("ana joined").await;
    let long = "ñandú ".repeat(500);
    let long = long.trim_end();
    bob.send(long).await;
    let prefix = ":bob!bob@charla PRIVMSG #lobby :";
    let mut got = String::new();
    while got.len() < long.len() {
        let line = ana.line().await;
        assert!(line.len() + 2 <= 512, "{}", line.len());
        got.push_str(line.strip_prefix(prefix).expect("a part of bob's line"));
    }
    assert_eq!(got, long);
}

#[tokio::test]
async fn history_follows_the_join_it_belongs_to() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    bob.send("earlier words").await;
    bob.send("/me was here").await;
    // Registered: up to #lobby's names; the history comes next, under the JOIN.
    let mut ana = Irc::registered(&server, "ana").await;
    let first = ana.line().await;
    let said = first
        .strip_prefix(":bob!bob@charla PRIVMSG #lobby :[history ")
        .unwrap_or_else(|| panic!("{first}"));
    assert!(said.ends_with(" UTC] earlier words"), "{first}");
    let second = ana.line().await;
    assert!(
        second.starts_with(":bob!bob@charla PRIVMSG #lobby :\x01ACTION [history ")
            && second.ends_with(" UTC] was here\x01"),
        "{second}"
    );
    // And again on asking, the last one only.
    ana.send("HISTORY #lobby 1").await;
    assert!(ana.line().await.ends_with("was here\x01"));
}

#[tokio::test]
async fn feed_notices_and_alerts_come_from_a_source_no_user_can_take() {
    use charla::hub::{Hub, MessageText, Notice, PostKind, RoomName, Source};
    use charla::server::{self, Datagrams, ListenAddr};

    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    let addrs: Vec<ListenAddr> = vec!["irc://127.0.0.1:0".parse().unwrap()];
    let bound = server::bind(&addrs).unwrap();
    let ListenAddr::Irc(addr) = bound[0].local_addr() else {
        panic!("an IRC listener");
    };
    let hub = Hub::new(&limits);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(server::run_with(
        hub.clone(),
        bound,
        Datagrams::default(),
        limits,
        shutdown,
    ));
    let mut ana = Irc(Client::tcp(addr).await);
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    ana.send("JOIN #lobby").await;
    ana.expect(" 366 ").await;

    let post = |kind, text| {
        let source = Source::new("check:web").unwrap();
        let notice = Notice::new(source, kind, MessageText::new(text).unwrap());
        hub.post(&RoomName::lobby(), notice).unwrap();
    };
    post(PostKind::Alert, "web is down: connection refused");
    assert_eq!(
        ana.line().await,
        ":[check:web]!feed@charla NOTICE #lobby :!!! web is down: connection refused"
    );
    post(PostKind::Notice, "web is up again");
    assert_eq!(
        ana.line().await,
        ":[check:web]!feed@charla NOTICE #lobby :web is up again"
    );
    // No one may register the name feeds speak as.
    ana.send("NICK [check:web]").await;
    assert!(
        ana.line()
            .await
            .starts_with(":charla 432 ana [check:web] :")
    );
}

#[tokio::test]
async fn a_join_into_a_crowded_room_names_every_member() {
    let server = server().await;
    let mut others = Vec::new();
    for i in 0..30 {
        others.push(server.named(&format!("m{i:02}")).await);
    }
    let mut ana = Irc::connect(&server).await;
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    ana.send("JOIN #lobby").await;
    ana.expect(":ana!ana@charla JOIN #lobby").await;
    let mut named = Vec::new();
    loop {
        let line = ana.line().await;
        if let Some(names) = line.strip_prefix(":charla 353 ana = #lobby :") {
            named.extend(names.split(' ').map(String::from));
        } else {
            assert_eq!(line, ":charla 366 ana #lobby :End of /NAMES list");
            break;
        }
    }
    assert_eq!(named.len(), 31, "{named:?}");
}

#[tokio::test]
async fn a_full_server_turns_irc_clients_away_with_an_error_line() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let server = TestServer::on(&["irc://127.0.0.1:0"], limits).await;
    let mut first = Irc::connect(&server).await;
    // Admitted before registering: its place is held.
    first.send("PING :here").await;
    assert_eq!(first.line().await, ":charla PONG charla :here");
    let mut second = Irc::connect(&server).await;
    let refusal = second.line().await;
    assert!(refusal.starts_with("ERROR :Closing link: "), "{refusal}");
    assert_eq!(second.0.next().await, None);
}

#[tokio::test]
async fn each_channel_a_join_names_counts_against_flood_control() {
    // Default flood control: a burst of 20 lines.
    let server = TestServer::on(&["irc://127.0.0.1:0"], Limits::default()).await;
    let mut ana = Irc::connect(&server).await;
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    ana.expect(" 422 ana ").await;
    let rooms: Vec<String> = (0..40).map(|i| format!("#r{i}")).collect();
    ana.send(&format!("JOIN {}", rooms.join(","))).await;
    let mut joined = 0;
    let refusal = loop {
        let line = ana.line().await;
        if line.starts_with(":ana!ana@charla JOIN ") {
            joined += 1;
        } else if line.starts_with(":charla NOTICE * :too fast") {
            break line;
        }
    };
    // NICK, USER and the JOIN line, then 17 more of its channels fill the burst.
    assert_eq!(joined, 18, "{refusal}");
    ana.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn a_silent_client_is_pinged_and_dropped_if_it_does_not_answer() {
    let limits = Limits {
        flood_rate: 0,
        ping_interval: std::time::Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::on(&["tcp://127.0.0.1:0", "irc://127.0.0.1:0"], limits).await;
    let mut bob = server.named("bob").await;
    let mut ana = Irc::registered(&server, "ana").await;
    bob.expect("ana joined").await;

    // Answered twice: still here.
    for _ in 0..2 {
        assert_eq!(ana.expect("PING").await, "PING :charla");
        ana.send("PONG :charla").await;
    }
    // Silent after the third: dropped as timed out, and the room is told.
    assert_eq!(ana.expect("PING").await, "PING :charla");
    ana.expect("ERROR").await;
    assert!(ana.0.until_closed().await.is_empty());
    assert_eq!(bob.expect("ana").await, "#lobby *** ana left (timed out)");

    // A connection that never registers is dropped without a PING.
    let mut mute = Irc::connect(&server).await;
    mute.send("NICK mute").await;
    let lines = mute.0.until_closed().await;
    assert!(lines.iter().all(|l| !l.contains("PING")), "{lines:?}");
}

#[tokio::test]
async fn ircv3_caps_are_listed_acked_and_change_what_the_client_reads() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut cai = Irc::registered(&server, "cai").await;
    let mut ana = Irc::connect(&server).await;
    ana.send("CAP LS 302").await;
    assert_eq!(
        ana.line().await,
        ":charla CAP * LS :account-tag away-notify batch draft/chathistory echo-message labeled-response message-tags multi-prefix server-time userhost-in-names sasl=PLAIN"
    );
    ana.send("CAP REQ :server-time draft/multiline").await;
    assert_eq!(
        ana.line().await,
        ":charla CAP * NAK :server-time draft/multiline"
    );
    ana.send("CAP REQ :server-time echo-message multi-prefix away-notify")
        .await;
    assert_eq!(
        ana.line().await,
        ":charla CAP * ACK :server-time echo-message multi-prefix away-notify"
    );
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    ana.send("CAP END").await;
    ana.send("JOIN #lobby").await;
    ana.expect(" 366 ana #lobby ").await;
    ana.send("CAP LIST").await;
    assert_eq!(
        ana.line().await,
        ":charla CAP ana LIST :away-notify echo-message multi-prefix server-time"
    );
    bob.expect("ana joined").await;
    cai.expect("ana!ana@charla JOIN #lobby").await;

    // server-time: the hub's own time of the message, on ana's line only.
    bob.send("hola").await;
    let tagged = ana.line().await;
    let (tag, line) = tagged.split_once(' ').unwrap();
    assert_eq!(line, ":bob!bob@charla PRIVMSG #lobby :hola");
    let time = tag
        .strip_prefix("@time=")
        .unwrap_or_else(|| panic!("{tagged}"));
    assert!(
        time.parse::<jiff::Timestamp>().is_ok() && time.ends_with('Z'),
        "{time}"
    );
    assert_eq!(time.len(), "2026-12-04T10:20:00.000Z".len(), "{time}");
    assert_eq!(cai.line().await, ":bob!bob@charla PRIVMSG #lobby :hola");

    // echo-message: ana's own message comes back to ana, as everyone else got it.
    ana.send("PRIVMSG #lobby :\x01ACTION waves\x01").await;
    assert_eq!(bob.line().await, "#lobby * ana waves");
    assert_eq!(
        cai.line().await,
        ":ana!ana@charla PRIVMSG #lobby :\x01ACTION waves\x01"
    );
    let echoed = ana.line().await;
    assert!(echoed.starts_with("@time="), "{echoed}");
    assert!(
        echoed.ends_with(" :ana!ana@charla PRIVMSG #lobby :\x01ACTION waves\x01"),
        "{echoed}"
    );
    ana.send("NOTICE bob :fyi").await;
    assert_eq!(bob.line().await, "(private) -ana- fyi");
    assert!(
        ana.line()
            .await
            .ends_with(" :ana!ana@charla NOTICE bob :fyi")
    );

    // multi-prefix: an operator who is also voiced shows both to ana, one to cai.
    ana.send("JOIN #ops").await;
    ana.expect(" 366 ana #ops ").await;
    ana.send("MODE #ops +v ana").await;
    ana.expect("MODE #ops +v ana").await;
    ana.send("NAMES #ops").await;
    assert_eq!(ana.line().await, ":charla 353 ana = #ops :@+ana");
    ana.expect(" 366 ").await;
    ana.send("WHO #ops").await;
    assert_eq!(
        ana.line().await,
        ":charla 352 ana #ops ana charla charla ana H@+ :0 Ana"
    );
    cai.send("NAMES #ops").await;
    assert_eq!(cai.line().await, ":charla 353 cai = #ops :@ana");

    // away-notify: cai going away and coming back is told to ana, who shares #lobby.
    cai.send("AWAY :lunch").await;
    cai.expect(" 306 ").await;
    assert_eq!(ana.expect("AWAY").await, ":cai!cai@charla AWAY :lunch");
    cai.send("AWAY").await;
    assert_eq!(ana.line().await, ":cai!cai@charla AWAY");
    bob.silent_for(QUIET).await;
}

/// irctest's testAwayNotifyOnJoin: someone away who joins a room is told away, right after
/// the JOIN, to the members that asked for away-notify; not to those that did not, nor to
/// the joiner.
#[tokio::test]
async fn someone_away_joining_is_told_away_after_the_join_to_away_notify_members() {
    let server = server().await;
    let mut ana = Irc::with_caps(&server, "ana", "away-notify").await;
    let mut cai = Irc::registered(&server, "cai").await;
    let mut bob = Irc::registered(&server, "bob").await;
    ana.expect("cai!cai@charla JOIN #lobby").await;
    ana.expect("bob!bob@charla JOIN #lobby").await;
    cai.expect("bob!bob@charla JOIN #lobby").await;
    bob.send("PART #lobby").await;
    bob.expect("PART #lobby").await;
    bob.send("AWAY :lunch").await;
    bob.expect(" 306 bob ").await;
    bob.send("JOIN #lobby").await;
    bob.expect(" 366 bob #lobby ").await;
    ana.expect("bob!bob@charla PART #lobby").await;
    assert_eq!(ana.line().await, ":bob!bob@charla JOIN #lobby");
    assert_eq!(ana.line().await, ":bob!bob@charla AWAY :lunch");
    cai.expect("bob!bob@charla PART #lobby").await;
    assert_eq!(cai.line().await, ":bob!bob@charla JOIN #lobby");
    bob.send("PING done").await;
    assert!(bob.line().await.ends_with("PONG charla :done"));
    cai.send("PING done").await;
    assert!(cai.line().await.ends_with("PONG charla :done"));
    // Back, a join is the JOIN alone.
    bob.send("AWAY").await;
    bob.expect(" 305 bob ").await;
    assert_eq!(ana.line().await, ":bob!bob@charla AWAY");
    bob.send("JOIN #ops").await;
    bob.expect(" 366 bob #ops ").await;
    ana.send("JOIN #ops").await;
    ana.expect(" 366 ana #ops ").await;
    bob.send("PART #ops").await;
    bob.send("JOIN #ops").await;
    bob.expect(" 366 bob #ops ").await;
    ana.expect("bob!bob@charla PART #ops").await;
    assert_eq!(ana.line().await, ":bob!bob@charla JOIN #ops");
    ana.send("PING done").await;
    assert!(ana.line().await.ends_with("PONG charla :done"));
}

/// Lines up to and including the one that contains `end`.
async fn lines_until(irc: &mut Irc, end: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = irc.line().await;
        let done = line.contains(end);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn chathistory_windows_come_in_a_batch_from_the_room_history() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    bob.send("/join #ops").await;
    bob.expect("you joined").await;
    for n in 1..=5 {
        bob.send(&format!("line {n}")).await;
    }
    // Answered once the lines before it are taken.
    bob.send("/whois bob").await;
    bob.expect("*** bob is in").await;
    let mut ana = Irc::connect(&server).await;
    ana.send("CAP LS 302").await;
    let ls = ana.expect("CAP * LS").await;
    assert!(
        ls.contains(" batch ") && ls.contains(" draft/chathistory "),
        "{ls}"
    );
    ana.send("CAP REQ :batch message-tags draft/chathistory")
        .await;
    ana.expect(" ACK ").await;
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    ana.send("CAP END").await;
    let isupport = ana.expect("CHATHISTORY=").await;
    assert!(
        isupport.contains(" CHATHISTORY=100 MSGREFTYPES=msgid,timestamp "),
        "{isupport}"
    );
    ana.send("JOIN #lobby").await;
    ana.expect(" 366 ana #lobby ").await;
    ana.send("JOIN #ops").await;
    ana.expect(" 366 ana #ops ").await;
    // The join's own replay, not in a batch.
    lines_until(&mut ana, ":[history ").await;
    lines_until(&mut ana, "line 5").await;

    ana.send("CHATHISTORY LATEST #ops * 2").await;
    let got = lines_until(&mut ana, "BATCH -").await;
    assert_eq!(got.len(), 4, "{got:?}");
    // Server lines, with the server's prefix.
    let id = got[0]
        .strip_prefix(":charla BATCH +")
        .and_then(|rest| rest.strip_suffix(" chathistory #ops"))
        .unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(got[3], format!(":charla BATCH -{id}"));
    let msgid = |line: &str| -> u64 {
        let tags = line.split(' ').next().unwrap();
        let found = tags.split(';').find_map(|t| t.strip_prefix("msgid="));
        found.unwrap_or_else(|| panic!("{line}")).parse().unwrap()
    };
    for (line, n) in got[1..3].iter().zip([4, 5]) {
        assert!(line.starts_with(&format!("@batch={id};msgid=")), "{line}");
        let (_, said) = line.split_once(' ').unwrap();
        assert!(
            said.starts_with(":bob!bob@charla PRIVMSG #ops :[history "),
            "{line}"
        );
        assert!(said.ends_with(&format!(" UTC] line {n}")), "{line}");
    }
    let fourth = msgid(&got[1]);
    ana.send(&format!("CHATHISTORY BEFORE #ops msgid={fourth} 2"))
        .await;
    let got = lines_until(&mut ana, "BATCH -").await;
    assert!(
        got[1].ends_with("line 2") && got[2].ends_with("line 3"),
        "{got:?}"
    );
    let second = msgid(&got[1]);
    ana.send(&format!("CHATHISTORY AFTER #ops msgid={second} 1"))
        .await;
    let got = lines_until(&mut ana, "BATCH -").await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[1].ends_with("line 3"), "{got:?}");
    ana.send(&format!(
        "CHATHISTORY BETWEEN #ops msgid={fourth} msgid={second} 10"
    ))
    .await;
    let got = lines_until(&mut ana, "BATCH -").await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[1].ends_with("line 3"), "{got:?}");
    ana.send("CHATHISTORY AFTER #ops timestamp=2000-01-01T00:00:00.000Z 1")
        .await;
    let got = lines_until(&mut ana, "BATCH -").await;
    assert!(got[1].ends_with("line 1"), "{got:?}");
    // A message id not kept: an empty batch.
    ana.send("CHATHISTORY BEFORE #ops msgid=999999 5").await;
    let got = lines_until(&mut ana, "BATCH -").await;
    assert_eq!(got.len(), 2, "{got:?}");

    ana.send("CHATHISTORY LATEST bob * 5").await;
    assert_eq!(
        ana.line().await,
        ":charla FAIL CHATHISTORY INVALID_TARGET LATEST bob :Only rooms keep history"
    );
    ana.send("CHATHISTORY LATEST #nowhere * 5").await;
    let refused = ana.line().await;
    assert!(
        refused.starts_with(":charla FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere :"),
        "{refused}"
    );
    ana.send("CHATHISTORY BEFORE #ops * 5").await;
    assert!(
        ana.line()
            .await
            .contains(" FAIL CHATHISTORY INVALID_PARAMS BEFORE ")
    );
    ana.send("CHATHISTORY TARGETS * * 5").await;
    assert!(
        ana.line()
            .await
            .contains(" FAIL CHATHISTORY INVALID_PARAMS TARGETS ")
    );

    // Without batch, the same lines, unwrapped.
    let mut cai = Irc::registered(&server, "cai").await;
    cai.send("JOIN #ops").await;
    cai.expect(" 366 cai #ops ").await;
    lines_until(&mut cai, "line 5").await;
    cai.send("CHATHISTORY LATEST #ops * 1").await;
    let line = cai.line().await;
    assert!(
        line.starts_with(":bob!bob@charla PRIVMSG #ops :[history "),
        "{line}"
    );
    assert!(line.ends_with("line 5"), "{line}");
}

#[tokio::test]
async fn an_echo_carries_the_client_tags_the_message_had() {
    let server = server().await;
    let mut bob = Irc::registered(&server, "bob").await;
    let mut ana = Irc::connect(&server).await;
    ana.send("CAP REQ :echo-message message-tags").await;
    ana.expect(" ACK ").await;
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    ana.send("CAP END").await;
    ana.send("JOIN #lobby").await;
    ana.expect(" 366 ana #lobby ").await;
    bob.expect(":ana!ana@charla JOIN #lobby").await;

    ana.send("@+draft/reply=5;+draft/react=ok PRIVMSG #lobby :@bob hi")
        .await;
    let echoed = ana.line().await;
    let (tags, line) = echoed.split_once(' ').unwrap();
    assert!(tags.starts_with("@msgid="), "{echoed}");
    assert!(
        tags.ends_with(";+draft/reply=5;+draft/react=ok"),
        "{echoed}"
    );
    assert_eq!(line, ":ana!ana@charla PRIVMSG #lobby :@bob hi");
    assert_eq!(bob.line().await, ":ana!ana@charla PRIVMSG #lobby :@bob hi");

    // To a nick, and a NOTICE; a text that starts with @ and no tags stays text.
    ana.send("@+draft/reply=6 NOTICE bob :psst").await;
    let echoed = ana.line().await;
    assert!(
        echoed.ends_with(";+draft/reply=6 :ana!ana@charla NOTICE bob :psst"),
        "{echoed}"
    );
    ana.send("PRIVMSG bob :@everyone").await;
    let echoed = ana.line().await;
    let (tags, line) = echoed.split_once(' ').unwrap();
    assert!(!tags.contains('+'), "{echoed}");
    assert_eq!(line, ":ana!ana@charla PRIVMSG bob :@everyone");

    // All of 4,094 bytes of tags: the echo and the relay carry them whole, however long
    // the line; a byte more is 417, whichever tags it is in.
    let most = format!("foo=bar;+baz={}", "a".repeat(4081));
    ana.send(&format!("@{most} TAGMSG #lobby")).await;
    let echoed = ana.line().await;
    assert!(
        echoed.ends_with(&format!(
            ";+baz={} :ana!ana@charla TAGMSG #lobby",
            "a".repeat(4081)
        )),
        "{echoed}"
    );
    ana.send(&format!("@{most}a TAGMSG #lobby")).await;
    assert_eq!(
        ana.line().await,
        ":charla 417 ana :Input line was too long (tags)"
    );
}

#[tokio::test]
async fn chathistory_replays_the_account_and_client_tags_kept_across_a_restart() {
    use crate::store::{next_listening, serve_with, stop};
    let data = tempfile::tempdir().unwrap();
    let args = ["--listen", "irc://127.0.0.1:0", "--data"];
    let args = [&args[..], &[data.path().to_str().unwrap()]].concat();
    let (charla, tcp) = serve_with(&args, &[]);
    let irc = next_listening(&charla, "irc");
    let mut ana = crate::support::Client::tcp(tcp).await;
    ana.send("/nick ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;
    ana.send("logged in").await;
    let mut cai = Irc(crate::support::Client::tcp(irc).await);
    cai.send("CAP REQ :message-tags echo-message").await;
    cai.expect(" ACK ").await;
    cai.send("NICK cai").await;
    cai.send("USER cai 0 * :Cai").await;
    cai.send("CAP END").await;
    cai.send("JOIN #lobby").await;
    cai.expect(" 366 cai #lobby ").await;
    cai.send("@+draft/reply=1 PRIVMSG #lobby :tagged").await;
    // The echo comes once the message is committed to the file.
    cai.expect("PRIVMSG #lobby :tagged").await;
    stop(charla);

    let (charla, _) = serve_with(&args, &[]);
    let irc = next_listening(&charla, "irc");
    let mut bob = Irc(crate::support::Client::tcp(irc).await);
    bob.send("CAP REQ :message-tags account-tag batch").await;
    bob.expect(" ACK ").await;
    bob.send("NICK bob").await;
    bob.send("USER bob 0 * :Bob").await;
    bob.send("CAP END").await;
    bob.send("JOIN #lobby").await;
    bob.expect(" 366 bob #lobby ").await;
    bob.send("CHATHISTORY LATEST #lobby * 10").await;
    // The join's replay first, then the batch.
    let got = lines_until(&mut bob, "BATCH -").await;
    let batched = |end: &str| {
        let line = got
            .iter()
            .find(|l| l.starts_with("@batch=") && l.ends_with(end));
        line.unwrap_or_else(|| panic!("{got:?}")).clone()
    };
    let said = batched("] logged in");
    assert!(said.contains(";account=ana "), "{said}");
    let tagged = batched("] tagged");
    let tags = tagged.split(' ').next().unwrap();
    assert!(tags.ends_with(";+draft/reply=1"), "{tagged}");
    assert!(!tags.contains("account="), "{tagged}");
    stop(charla);
}

#[tokio::test]
async fn names_of_no_such_channel_is_its_end_and_an_empty_realname_is_461() {
    let server = server().await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("NAMES #nowhere").await;
    assert_eq!(
        ana.line().await,
        ":charla 366 ana #nowhere :End of /NAMES list"
    );
    ana.send("NAMES invalid").await;
    assert_eq!(
        ana.line().await,
        ":charla 366 ana invalid :End of /NAMES list"
    );

    let mut bob = Irc::connect(&server).await;
    bob.send("NICK bob").await;
    bob.send("USER bob 0 * :").await;
    assert_eq!(
        bob.line().await,
        ":charla 461 * USER :Not enough parameters"
    );
    bob.send("USER bob 0 * :Bob").await;
    bob.expect(" 001 bob ").await;
}

/// LIST gives each room's topic after its member count, as other servers' 322 does, and
/// the JSON `rooms` answer carries it too (a room without one: an empty 322 topic, no
/// `topic` in JSON).
#[tokio::test]
async fn list_shows_each_rooms_topic_and_json_rooms_carries_it() {
    let server = server().await;
    let mut ana = server.named("ana").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    ana.send("/topic deploy at 5 ✓").await;
    ana.expect("set the topic").await;
    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("LIST").await;
    bob.expect(" 321 bob ").await;
    assert_eq!(bob.line().await, ":charla 322 bob #lobby 2 :");
    assert_eq!(bob.line().await, ":charla 322 bob #ops 1 :deploy at 5 ✓");
    assert_eq!(bob.line().await, ":charla 323 bob :End of /LIST");

    let mut cai = crate::store::json_client(server.tcp(), "cai").await;
    cai.send(r#"{"type":"rooms"}"#).await;
    let rooms = cai.expect_json("rooms").await;
    assert_eq!(
        rooms["rooms"],
        serde_json::json!([
            {"name": "#lobby", "members": 3},
            {"name": "#ops", "members": 1, "topic": "deploy at 5 ✓"},
        ])
    );
}
