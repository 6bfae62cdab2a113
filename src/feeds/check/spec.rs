//! What `--check NAME=PROBE [OPTION=VALUE…]` says: the probe and its own options.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::http::HttpProbe;
use crate::feeds::http::Priority;
use crate::limits::MAX_CHECK_RETRIES;

/// Longest check name, in characters.
pub const MAX_CHECK_NAME: usize = 32;

/// What a check tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Connect to `HOST:PORT` (resolved at every try); up when a connection is made.
    Tcp(String),
    /// Run `sh -c COMMAND`; up when it exits with status 0.
    Exec(String),
    /// `GET` the URL; up when it answers as expected.
    Http(HttpProbe),
    /// A TLS handshake with `HOST:PORT`, verified against `ca` or the system's roots; up
    /// when it succeeds. Its certificate's expiry is watched.
    Tls {
        target: String,
        ca: Option<std::path::PathBuf>,
    },
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Tcp(target) => write!(f, "tcp://{target}"),
            Probe::Exec(command) => write!(f, "exec:{command}"),
            Probe::Http(http) => write!(f, "{http}"),
            Probe::Tls { target, .. } => write!(f, "tls://{target}"),
        }
    }
}

/// A check's own options, given after its target (`retries=3 priority=5`); each one unset
/// takes the server's (`--check-retries`, `--check-timeout`) or the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Failed checks in a row before it is DOWN; the ones before are PENDING.
    pub retries: Option<u32>,
    /// Time one try may take.
    pub timeout: Option<Duration>,
    /// How loud its alerts are ([`Priority::High`] unless given).
    pub priority: Option<Priority>,
}

/// One `--check NAME=PROBE [OPTION=VALUE…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// 1 to [`MAX_CHECK_NAME`] ASCII letters, digits, `-`, `_` or `.`.
    pub name: String,
    pub probe: Probe,
    pub options: CheckOptions,
}

/// Whether `name` may name a check (or a heartbeat).
pub fn valid_name(name: &str) -> bool {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !name.is_empty() && name.chars().count() <= MAX_CHECK_NAME && name.chars().all(valid)
}

/// What a name must be, for an error message.
pub fn name_rule() -> String {
    format!("a name has 1 to {MAX_CHECK_NAME} ASCII letters, digits, '-', '_' or '.'")
}

impl FromStr for CheckSpec {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let usage = "expected NAME=tcp://HOST:PORT, NAME=tls://HOST:PORT, NAME=http(s)://URL \
                     (each with OPTION=VALUE… after it) or NAME=exec:COMMAND";
        let (name, probe) = input
            .split_once('=')
            .ok_or_else(|| format!("{input:?}: {usage}"))?;
        if !valid_name(name) {
            return Err(format!("{input:?}: {}", name_rule()));
        }
        let mut options = CheckOptions::default();
        let scheme = ["tcp://", "tls://"]
            .into_iter()
            .find(|s| probe.starts_with(s));
        let probe = if let Some(scheme) = scheme {
            let words = words(&probe[scheme.len()..]).map_err(|e| format!("{input:?}: {e}"))?;
            let mut words = words.iter().map(String::as_str);
            let target = words.next().unwrap_or_default();
            match target.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => return Err(format!("{input:?}: expected {scheme}HOST:PORT")),
            }
            let mut ca = None;
            for word in words {
                match word.strip_prefix("ca=") {
                    Some(path) if scheme == "tls://" && !path.is_empty() => {
                        ca = Some(std::path::PathBuf::from(path));
                    }
                    _ => {
                        let own: &[&str] = if scheme == "tls://" { &["ca"] } else { &[] };
                        options
                            .take(word, own)
                            .map_err(|e| format!("{input:?}: {e}"))?
                    }
                }
            }
            match scheme {
                "tls://" => Probe::Tls {
                    target: target.to_string(),
                    ca,
                },
                _ => Probe::Tcp(target.to_string()),
            }
        } else if probe.starts_with("http://") || probe.starts_with("https://") {
            let words = words(probe).map_err(|e| format!("{input:?}: {e}"))?;
            let mut words = words.iter().map(String::as_str);
            let url = words.next().unwrap_or_default();
            let mut http = HttpProbe::parse(url)
                .ok_or_else(|| format!("{input:?}: {url:?} is not an http:// or https:// URL"))?;
            for word in words {
                let (key, value) = word.split_once('=').unwrap_or((word, ""));
                let taken = http
                    .take(key, value)
                    .map_err(|e| format!("{input:?}: {e}"))?;
                if !taken {
                    options
                        .take(word, HttpProbe::OPTIONS)
                        .map_err(|e| format!("{input:?}: {e}"))?;
                }
            }
            Probe::Http(http)
        } else if let Some(command) = probe.strip_prefix("exec:") {
            // The whole rest is the command: options cannot be told from its arguments.
            if command.trim().is_empty() {
                return Err(format!("{input:?}: exec: needs a command"));
            }
            Probe::Exec(command.to_string())
        } else {
            return Err(format!("{input:?}: {usage}"));
        };
        Ok(CheckSpec {
            name: name.to_string(),
            probe,
            options,
        })
    }
}

/// A target and its options, split at spaces as a shell splits words, so a value may hold
/// spaces when quoted: `keyword="all good"`, `keyword='all good'`.
fn words(text: &str) -> Result<Vec<String>, String> {
    shlex::split(text).ok_or_else(|| "a quote is not closed".to_string())
}

impl CheckOptions {
    /// Takes one `OPTION=VALUE` every kind of check knows. `own` names the options the
    /// check's kind takes besides, for the error that lists what may be given.
    pub fn take(&mut self, word: &str, own: &[&str]) -> Result<(), String> {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?}: expected OPTION=VALUE"))?;
        match key {
            "retries" => match value.parse::<u32>() {
                Ok(n @ 1..=MAX_CHECK_RETRIES) => self.retries = Some(n),
                _ => return Err(format!("retries is 1 to {MAX_CHECK_RETRIES}")),
            },
            "timeout" => match humantime::parse_duration(value) {
                Ok(d) if !d.is_zero() => self.timeout = Some(d),
                _ => return Err(format!("timeout={value}: expected a duration such as 5s")),
            },
            "priority" => {
                self.priority = Some(Priority::parse(value).ok_or_else(|| {
                    "priority is 1 to 5, or min, low, default, high or urgent".to_string()
                })?);
            }
            _ => {
                let known: Vec<&str> = own
                    .iter()
                    .copied()
                    .chain(["retries", "timeout", "priority"])
                    .collect();
                return Err(format!("{key}: no such option ({})", known.join(", ")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> CheckSpec {
        s.parse().unwrap()
    }

    #[test]
    fn specs_parse_both_probes() {
        assert_eq!(
            spec("web=tcp://127.0.0.1:8080"),
            CheckSpec {
                name: "web".into(),
                probe: Probe::Tcp("127.0.0.1:8080".into()),
                options: CheckOptions::default(),
            }
        );
        assert_eq!(
            spec("disk=exec:test $(df --output=pcent / | tail -1 | tr -dc 0-9) -lt 90").probe,
            Probe::Exec("test $(df --output=pcent / | tail -1 | tr -dc 0-9) -lt 90".into())
        );
        assert_eq!(
            spec("v6=tcp://[::1]:22").probe,
            Probe::Tcp("[::1]:22".into())
        );
        for bad in [
            "web",
            "=tcp://a:1",
            "we b=tcp://a:1",
            "web=ftp://a:1",
            "web=http://",
            "web=http://a/ status=999",
            "web=http://a/ keyword=",
            "web=tcp://a",
            "web=tcp://:80",
            "web=exec:  ",
        ] {
            assert!(bad.parse::<CheckSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn options_follow_the_target() {
        let db = spec("db=tcp://db:5432 retries=3 timeout=2s priority=urgent");
        assert_eq!(db.probe, Probe::Tcp("db:5432".into()));
        assert_eq!(
            db.options,
            CheckOptions {
                retries: Some(3),
                timeout: Some(Duration::from_secs(2)),
                priority: Some(Priority::Urgent),
            }
        );
        let web = spec("web=https://example.org/health status=204 keyword=ok retries=2");
        let Probe::Http(http) = &web.probe else {
            panic!("{web:?}");
        };
        assert_eq!(http.url.to_string(), "https://example.org/health");
        assert_eq!(
            (http.status, http.keyword.as_deref()),
            (Some(204), Some("ok"))
        );
        assert_eq!(web.options.retries, Some(2));
        let quoted = spec(r#"web=http://a/ keyword="all good" retries=2"#);
        let Probe::Http(http) = &quoted.probe else {
            panic!("{quoted:?}");
        };
        assert_eq!(http.keyword.as_deref(), Some("all good"));
        assert_eq!(quoted.options.retries, Some(2));
        let single = spec("web=http://a/ keyword='say \"hi\" now'");
        let Probe::Http(http) = &single.probe else {
            panic!("{single:?}");
        };
        assert_eq!(http.keyword.as_deref(), Some("say \"hi\" now"));
        assert!(
            r#"web=http://a/ keyword="all good"#
                .parse::<CheckSpec>()
                .unwrap_err()
                .contains("a quote is not closed")
        );
        assert_eq!(web.probe.to_string(), "https://example.org/health");
        // An exec command keeps its words: they are its arguments.
        assert_eq!(
            spec("x=exec:echo retries=3").probe,
            Probe::Exec("echo retries=3".into())
        );
        for bad in [
            "db=tcp://db:1 retries=0",
            "db=tcp://db:1 retries=many",
            "db=tcp://db:1 timeout=0s",
            "db=tcp://db:1 priority=loud",
            "db=tcp://db:1 colour=red",
            "db=tcp://db:1 retries",
        ] {
            assert!(bad.parse::<CheckSpec>().is_err(), "{bad}");
        }
    }
}
