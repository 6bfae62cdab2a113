//! `charla serve --config charla.toml`: the server's options in one TOML file, read by
//! [`charla::config`]; here, where the file is found and that its example stays true.

use std::ffi::OsString;
use std::path::Path;

use clap::{ArgMatches, CommandFactory};

use super::Cli;

/// The arguments `path` adds to `charla serve`'s (`matches`): `--NAME=VALUE` for each of
/// its keys that the command line and environment left unset.
pub fn arguments(path: &Path, matches: &ArgMatches) -> Result<Vec<OsString>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let cli = Cli::command();
    let serve = cli
        .find_subcommand("serve")
        .expect("charla has a serve command");
    charla::config::arguments_from(&text, serve, matches).map_err(|e| format!("{shown}:{e}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::CliCommand;

    /// `charla serve ARGS` with `file` applied, as the binary does it.
    fn serve_with(file: &str, args: &[&str]) -> Result<crate::cli::Serve, String> {
        let argv: Vec<OsString> = ["charla", "serve"]
            .iter()
            .chain(args)
            .map(OsString::from)
            .collect();
        let matches = Cli::command().get_matches_from(argv.clone());
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        let serve_matches = matches.subcommand_matches("serve").unwrap();
        let extra = charla::config::arguments_from(file, serve, serve_matches)?;
        let cli = Cli::try_parse_from(argv.into_iter().chain(extra)).map_err(|e| e.to_string())?;
        match cli.command {
            CliCommand::Serve(serve) => Ok(serve),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_documented_example_loads() {
        let example = include_str!("../../docs/charla.example.toml");
        let serve = serve_with(example, &[]).expect("the example is a valid configuration");
        assert_eq!(serve.check.len(), 3);
        assert_eq!(serve.check[0].name, "db");
        assert_eq!(serve.heartbeat.len(), 2);
        assert_eq!(serve.watch.len(), 1);
        assert_eq!(serve.listen.len(), 3);
        assert_eq!(serve.max_line, 4096);
        assert_eq!(serve.check_retries, 2);
        assert!(serve.check_remind.is_some());
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let file = "max-line = 2000\nhistory = 10\ncheck = [\"a=tcp://127.0.0.1:1\"]\n";
        let serve = serve_with(file, &["--max-line", "3000", "--check", "b=tcp://h:2"]).unwrap();
        assert_eq!(serve.max_line, 3000);
        assert_eq!(serve.history, 10);
        assert_eq!(serve.check.len(), 1);
        assert_eq!(serve.check[0].name, "b");
        let serve = serve_with("require_account = true\n", &[]).unwrap();
        assert!(serve.require_account);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_their_line() {
        let error = |file: &str| serve_with(file, &[]).err().expect("refused");
        let e = error("history = 10\nmax_lines = 20\n");
        assert!(e.starts_with("2: unknown key `max_lines`"), "{e}");
        let e = error("\n\ncheck-interval = \"soon\"\n");
        assert!(e.starts_with("3: `check-interval`: "), "{e}");
        let e = error("check = [\"db=tcp://h:1\",\n  \"web=ftp://x\"]\n");
        assert!(e.starts_with("1: `check`: "), "{e}");
        let e = error("max-line = \"lots\"\n");
        assert!(e.starts_with("1: `max-line`: "), "{e}");
        let e = error("max-line = 1.5\n");
        assert!(
            e.starts_with("1: `max-line` takes a string or a number"),
            "{e}"
        );
        let e = error("require-account = \"yes\"\n");
        assert!(e.starts_with("1: `require-account` is a switch"), "{e}");
        let e = error("history = 10\nhistory = 11\n");
        assert!(e.starts_with("2: "), "{e}");
        let e = error("[limits]\nmax-line = 5\n");
        assert!(e.starts_with("1: unknown key `limits`"), "{e}");
    }
}
