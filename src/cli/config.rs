//! `charla serve --config charla.toml`: the server's options in one TOML file.
//!
//! Each key is a `charla serve` option's long name (`check-interval = "10s"`, or
//! `check_interval`), its value what the option takes: a string, a number, `true` for a
//! switch, an array for a repeatable option. The file becomes arguments after the command
//! line's, for every option the command line and its `CHARLA_*` variable left unset, so
//! they win over the file; clap checks each value as it checks a flag's. An unknown key or
//! a bad value is an error naming the file's line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory};
use toml::Spanned;

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
    arguments_from(&text, serve, matches).map_err(|e| format!("{shown}:{e}"))
}

/// [`arguments`] from the file's text; errors start with the line (`3: …`).
pub fn arguments_from(
    text: &str,
    serve: &Command,
    matches: &ArgMatches,
) -> Result<Vec<OsString>, String> {
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(1, |s| line(s.start));
            format!("{at}: {}", e.message().trim_end())
        })?;
    let mut args = Vec::new();
    for (key, value) in &table {
        let at = line(key.span().start);
        let name = key.get_ref().replace('_', "-");
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && name != "config" && name != "help")
            .ok_or_else(|| {
                format!(
                    "{at}: unknown key `{}`: keys are `charla serve` options (charla serve --help)",
                    key.get_ref()
                )
            })?;
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let at = line(value.span().start);
        let values = values_of(arg, value.get_ref()).map_err(|e| format!("{at}: `{name}` {e}"))?;
        for v in values {
            match v {
                Given::Switch(true) => args.push(format!("--{name}").into()),
                Given::Switch(false) => {}
                Given::Value(v) => {
                    check(arg, &v).map_err(|e| format!("{at}: `{name}`: {e}"))?;
                    args.push(format!("--{name}={v}").into());
                }
            }
        }
    }
    Ok(args)
}

/// A key's value as the option takes it.
enum Given {
    Switch(bool),
    Value(String),
}

fn values_of(arg: &Arg, value: &toml::Value) -> Result<Vec<Given>, String> {
    let switch = matches!(arg.get_action(), ArgAction::SetTrue);
    let repeatable = matches!(arg.get_action(), ArgAction::Append);
    match value {
        toml::Value::Boolean(b) if switch => Ok(vec![Given::Switch(*b)]),
        _ if switch => Err("is a switch: true or false".into()),
        toml::Value::Array(items) if repeatable => items.iter().map(one).collect(),
        toml::Value::Array(_) => Err("takes one value, not an array".into()),
        other => Ok(vec![one(other)?]),
    }
}

fn one(value: &toml::Value) -> Result<Given, String> {
    match value {
        toml::Value::String(s) => Ok(Given::Value(s.clone())),
        toml::Value::Integer(n) => Ok(Given::Value(n.to_string())),
        other => Err(format!(
            "takes a string or a number, not {}",
            other.type_str()
        )),
    }
}

/// Whether `arg` takes `value`, as clap would judge it on the command line: parsed by a
/// command that has only this option, so the error is about the value alone.
fn check(arg: &Arg, value: &str) -> Result<(), String> {
    let alone = arg
        .clone()
        .requires(clap::builder::Resettable::Reset)
        .env(None::<&str>)
        .required(false);
    let long = arg.get_long().unwrap_or_default();
    Command::new("charla-config")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from([format!("--{long}={value}")])
        .map(|_| ())
        .map_err(|e| {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        })
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
        let extra = arguments_from(file, serve, serve_matches)?;
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
