//! How a failed command is told on stderr: the error and its causes, each said once.

/// `e` and its causes joined by `: `, as `{e:#}` does, less the causes already said.
///
/// Many errors put their cause in their own text and also hand it on as their source
/// (`cannot open …: Permission denied` with the `io::Error` behind it), and some causes
/// restate the one before with a code (rusqlite's `Error code 26: file is not a
/// database`): printed in full, the chain would say each twice.
pub fn explain(e: &anyhow::Error) -> String {
    let mut said = e.to_string();
    let mut last = said.clone();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !said.contains(&text) && !text.contains(&last) {
            said.push_str(": ");
            said.push_str(&text);
        }
        last = text;
    }
    said
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the file: {source}")]
    struct Open {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_in_the_errors_own_text_is_said_once() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = anyhow::Error::new(Open { source: denied });
        assert_eq!(explain(&e), "cannot open the file: permission denied");
    }

    #[test]
    fn a_sqlite_error_and_its_code_are_said_once() {
        let ffi = rusqlite::ffi::Error::new(26);
        let e = rusqlite::Error::SqliteFailure(ffi, Some("file is not a database".into()));
        let e = anyhow::Error::new(e).context("cannot use the history database");
        assert_eq!(
            explain(&e),
            "cannot use the history database: file is not a database"
        );
    }

    #[test]
    fn causes_not_said_yet_are_added() {
        let e = anyhow::anyhow!("connection refused")
            .context("cannot reach the server")
            .context("cannot send");
        assert_eq!(
            explain(&e),
            "cannot send: cannot reach the server: connection refused"
        );
    }
}
