//! SASL PLAIN (IRCv3 `sasl` capability) and how account news is written for IRC.
//!
//! `AUTHENTICATE PLAIN`, answered `AUTHENTICATE +`, then one line of base64
//! `authzid NUL authcid NUL password`: the credentials go to the server as an
//! [`Incoming::Sasl`], checked off the connection's task, and answered 900 and 903, or
//! 904. A registered client may authenticate too; then its session logs in at once.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use super::encode::Lines;
use super::encode::{numeric, writeln_crlf};
use super::message::Message;
use super::numeric::*;
use super::{Asked, USER_HOST};
use crate::accounts::Secret;
use crate::hub::{AccountNews, Nick};
use crate::protocol::{Incoming, SaslAttempt, SaslOutcome, Sink};

/// The capabilities this file serves, as CAP LS lists them.
pub const CAPS: &str = "sasl=PLAIN";

/// The capability's name, as `CAP REQ` asks for it.
pub const NAME: &str = "sasl";

/// Longest AUTHENTICATE payload line (IRCv3): one of exactly this length would mean more
/// follows, which charla does not take; credentials fit in one.
const CHUNK_BYTES: usize = 400;

/// Where a client is in an exchange.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    #[default]
    Idle,
    /// `AUTHENTICATE PLAIN` was accepted; the credentials come next.
    Plain,
}

/// One AUTHENTICATE line from the client `me` (its nick, or `*`).
pub fn authenticate(
    exchange: &mut Exchange,
    (server, me): (&'static str, &str),
    m: &Message<'_>,
    sink: &mut impl Sink,
) {
    let Some(param) = m.param(0) else {
        return line(
            sink,
            server,
            me,
            ERR_NEEDMOREPARAMS,
            "AUTHENTICATE :Not enough parameters",
        );
    };
    match (*exchange, param) {
        (_, "*") => {
            *exchange = Exchange::Idle;
            line(
                sink,
                server,
                me,
                ERR_SASLABORTED,
                ":SASL authentication aborted",
            );
        }
        (Exchange::Idle, mechanism) if mechanism.eq_ignore_ascii_case("PLAIN") => {
            *exchange = Exchange::Plain;
            sink.incoming(Incoming::Answer(Bytes::from_static(b"AUTHENTICATE +\r\n")));
        }
        (Exchange::Idle, _) => {
            line(
                sink,
                server,
                me,
                RPL_SASLMECHS,
                "PLAIN :are available SASL mechanisms",
            );
            line(
                sink,
                server,
                me,
                ERR_SASLFAIL,
                ":SASL authentication failed",
            );
        }
        (Exchange::Plain, payload) => {
            *exchange = Exchange::Idle;
            if payload.len() >= CHUNK_BYTES {
                return line(sink, server, me, ERR_SASLTOOLONG, ":SASL message too long");
            }
            match plain(payload) {
                Some((account, password)) => sink.incoming(Incoming::Sasl(SaslAttempt {
                    account,
                    password,
                    me: me.to_string(),
                    server,
                    reference: Asked::new(Some(me), "AUTHENTICATE", "*").reference(),
                    label: None,
                    answer: outcome,
                })),
                None => line(
                    sink,
                    server,
                    me,
                    ERR_SASLFAIL,
                    ":SASL authentication failed",
                ),
            }
        }
    }
}

fn line(sink: &mut impl Sink, server: &str, me: &str, number: &str, rest: &str) {
    let line = format!(":{server} {number} {me} {rest}\r\n");
    sink.incoming(Incoming::Answer(Bytes::from(line)));
}

/// The account and password of a PLAIN payload; an authorization identity other than the
/// account itself is not supported (nobody acts for another here).
fn plain(payload: &str) -> Option<(Nick, Secret)> {
    let decoded = STANDARD.decode(payload).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let account = Nick::parse(authcid).ok()?;
    if !authzid.is_empty() && Nick::parse(authzid).ok()? != account {
        return None;
    }
    Some((account, Secret::new(password)))
}

/// 900 and 903 when the account was proved before registration, 903 alone when a
/// session was logged in (the hub's news wrote its 900), else 904.
fn outcome(server: &str, me: &str, label: Option<&str>, outcome: SaslOutcome<'_>) -> Bytes {
    let success = format!(":{server} {RPL_SASLSUCCESS} {me} :SASL authentication successful\r\n");
    let line = match outcome {
        SaslOutcome::Proved(account) => format!("{}{success}", logged_in(server, me, account)),
        SaslOutcome::LoggedIn => success,
        SaslOutcome::Failed => {
            format!(":{server} {ERR_SASLFAIL} {me} :SASL authentication failed\r\n")
        }
    };
    match label {
        Some(label) => super::labeled::wrap(server, label, &[line.as_bytes()]),
        None => Bytes::from(line),
    }
}

/// A PASS's outcome: 900 when it proved the account, `464` when not (registration then
/// waits for another PASS or nick). PASS comes before registration, and so unlabeled.
pub fn pass_outcome(
    server: &str,
    me: &str,
    _label: Option<&str>,
    outcome: SaslOutcome<'_>,
) -> Bytes {
    match outcome {
        SaslOutcome::Proved(account) => Bytes::from(logged_in(server, me, account)),
        // PASS is refused once registered: a session is never logged in by one.
        SaslOutcome::LoggedIn => Bytes::new(),
        SaslOutcome::Failed => Bytes::from(format!(
            ":{server} {ERR_PASSWDMISMATCH} {me} :Password incorrect\r\n"
        )),
    }
}

/// The 900 that tells `me` it is logged in to `account`.
pub fn logged_in(server: &str, me: &str, account: &Nick) -> String {
    format!(
        ":{server} {RPL_LOGGEDIN} {me} {me}!{me}@{USER_HOST} {account} :You are now \
         logged in as {account}\r\n"
    )
}

/// An account request's outcome for IRC: logging in and out as their numerics, the rest
/// as a notice from the server.
pub fn write_news(s: &mut Lines<'_>, news: &AccountNews, nick: &str) -> std::fmt::Result {
    let server = s.server;
    match news {
        AccountNews::LoggedIn(account) | AccountNews::Registered(account) => {
            s.push_str(&logged_in(server, nick, account));
            Ok(())
        }
        AccountNews::LoggedOut => numeric(
            s,
            RPL_LOGGEDOUT,
            nick,
            &format!("{nick}!{nick}@{USER_HOST} :You are now logged out"),
        ),
        AccountNews::Oper(_) => {
            numeric(s, RPL_YOUREOPER, nick, ":You are now an IRC operator")?;
            writeln_crlf(s, &format!(":{nick}!{nick}@{USER_HOST} MODE {nick} :+o"))
        }
        other => writeln_crlf(s, &format!(":{server} NOTICE {nick} :{other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_payloads_decode_to_the_account_and_password() {
        let payload = STANDARD.encode("\0ana\0s3cret pw");
        let (account, password) = plain(&payload).unwrap();
        assert_eq!(account.as_str(), "ana");
        assert_eq!(password.expose(), "s3cret pw");
        let same = STANDARD.encode("Ana\0ana\0pw");
        assert!(plain(&same).is_some(), "authzid the account itself");
        assert!(plain(&STANDARD.encode("bob\0ana\0pw")).is_none());
        assert!(plain(&STANDARD.encode("ana\0pw")).is_none());
        assert!(plain("not base64!").is_none());
    }

    #[test]
    fn outcomes_are_the_sasl_numerics() {
        let ana = Nick::parse("ana").unwrap();
        let ok = outcome("charla", "*", None, SaslOutcome::Proved(&ana));
        let ok = std::str::from_utf8(&ok).unwrap();
        assert!(ok.starts_with(":charla 900 * *!*@charla ana :"), "{ok}");
        assert!(ok.contains("\r\n:charla 903 * :"), "{ok}");
        assert_eq!(
            &outcome("charla", "bob", None, SaslOutcome::LoggedIn)[..],
            b":charla 903 bob :SASL authentication successful\r\n"
        );
        assert_eq!(
            &outcome("charla", "ana", None, SaslOutcome::Failed)[..],
            b":charla 904 ana :SASL authentication failed\r\n"
        );
    }
}
