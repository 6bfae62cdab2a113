//! A configuration file in TOML whose keys are a command's options: `charla serve
//! --config charla.toml`.
//!
//! Each key is an option's long name (`check-interval = "10s"`, or `check_interval`), its
//! value what the option takes: a string, a number, `true` for a switch, an array for a
//! repeatable option. The file becomes arguments after the command line's, for every option
//! the command line and its variable left unset, so they win over the file; clap checks
//! each value as it checks a flag's. An unknown key or a bad value is an error naming the
//! file's line.

use std::collections::BTreeMap;
use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::Spanned;

/// The arguments the file `text` adds to `command`'s (`matches`, as parsed from the command
/// line and environment): `--NAME=VALUE` for each of its keys those left unset. Errors
/// start with the line (`3: …`).
pub fn arguments_from(
    text: &str,
    command: &Command,
    matches: &ArgMatches,
) -> Result<Vec<OsString>, String> {
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(1, |s| line(s.start));
            format!("{at}: {}", e.message().trim_end())
        })?;
    // `max-line` and `max_line` are one option: given both ways, it would reach clap twice.
    let mut keys: Vec<(usize, &str)> = table
        .keys()
        .map(|key| (line(key.span().start), key.get_ref().as_str()))
        .collect();
    keys.sort_unstable();
    let mut seen = std::collections::HashMap::new();
    for (at, key) in keys {
        let name = key.replace('_', "-");
        if let Some(first) = seen.insert(name.clone(), at) {
            return Err(format!(
                "{at}: `{key}` is `{name}` again, given on line {first} already"
            ));
        }
    }
    let mut args = Vec::new();
    for (key, value) in &table {
        let at = line(key.span().start);
        let name = key.get_ref().replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && name != "config" && name != "help")
            .ok_or_else(|| {
                format!(
                    "{at}: unknown key `{}`: keys are the options of `charla {}` (--help lists them)",
                    key.get_ref(),
                    command.get_name()
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
    use super::*;

    fn command() -> Command {
        Command::new("serve")
            .arg(
                Arg::new("history")
                    .long("history")
                    .value_parser(clap::value_parser!(u32))
                    .default_value("5"),
            )
            .arg(Arg::new("check").long("check").action(ArgAction::Append))
            .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue))
    }

    #[test]
    fn keys_become_the_options_left_unset() {
        let command = command();
        let matches = command
            .clone()
            .get_matches_from(["serve", "--history", "7"]);
        let args = arguments_from(
            "history = 9\ncheck = [\"a\", \"b\"]\nquiet = true\n",
            &command,
            &matches,
        )
        .unwrap();
        assert_eq!(args, ["--check=a", "--check=b", "--quiet"]);
        let e = arguments_from(
            "\nhistory = -1\n",
            &command,
            &command.clone().get_matches_from(["serve"]),
        )
        .unwrap_err();
        assert!(e.starts_with("2: `history`: invalid value '-1'"), "{e}");
    }
}
