//! WHO and WHOIS show what USER gave and who is away, over real sockets.

use crate::irc::{Irc, server};

#[tokio::test]
async fn who_and_whois_show_the_user_name_real_name_and_away_state() {
    let server = server().await;
    let mut ana = Irc::connect(&server).await;
    ana.send("NICK ana").await;
    ana.send("USER an!a@x 0 * :Ana María Pérez").await;
    ana.expect(" 422 ana ").await;
    ana.send("JOIN #ops").await;
    ana.expect(" 366 ana #ops ").await;
    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("JOIN #ops").await;
    bob.expect(" 366 bob #ops ").await;
    // `!` and `@` are dropped from the user name (`anax`). An nc user has given no user name or real name: the nick stands for both.
    let mut cai = server.named("cai").await;
    cai.send("/join #ops").await;
    cai.expect("#ops *** you joined").await;
    bob.send("AWAY :lunch").await;
    bob.expect(" 306 bob ").await;

    bob.send("WHO #OPS").await;
    assert_eq!(
        bob.line().await,
        ":charla 352 bob #ops anax charla charla ana H@ :0 Ana María Pérez"
    );
    assert_eq!(
        bob.line().await,
        ":charla 352 bob #ops bob charla charla bob G :0 bob here"
    );
    assert_eq!(
        bob.line().await,
        ":charla 352 bob #ops cai charla charla cai H :0 cai"
    );
    assert_eq!(bob.line().await, ":charla 315 bob #OPS :End of WHO list");

    ana.send("WHO Bob").await;
    // After bob's and cai's JOINs.
    assert_eq!(
        ana.expect(" 352 ").await,
        ":charla 352 ana * bob charla charla bob G :0 bob here"
    );
    assert_eq!(ana.line().await, ":charla 315 ana Bob :End of WHO list");
    // WHO takes one mask (modern.ircdocs.horse): a list is a mask no address matches.
    ana.send("WHO nobody,#nowhere").await;
    assert_eq!(
        ana.line().await,
        ":charla 315 ana nobody,#nowhere :End of WHO list"
    );
    ana.send("WHO").await;
    ana.expect(" 461 ana WHO ").await;

    bob.send("WHOIS ana").await;
    assert_eq!(
        bob.line().await,
        ":charla 311 bob ana anax charla * :Ana María Pérez"
    );
}
