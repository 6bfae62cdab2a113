//! The TOML configuration file (`charla serve --config`, `charla::config`): arbitrary text
//! against a command with options of each kind (a number with a range, a duration, a
//! switch, a repeatable option, one with a default). It is refused with a reason that names
//! a line of the text, or it becomes arguments that the command itself accepts.
#![no_main]

use charla::config::arguments_from;
use clap::{Arg, ArgAction, Command, value_parser};
use libfuzzer_sys::fuzz_target;

fn command() -> Command {
    Command::new("serve")
        .arg(
            Arg::new("history")
                .long("history")
                .value_parser(value_parser!(u32).range(1..1000))
                .default_value("5"),
        )
        .arg(
            Arg::new("check-interval")
                .long("check-interval")
                .value_parser(|v: &str| v.parse::<humantime::Duration>()),
        )
        .arg(Arg::new("check").long("check").action(ArgAction::Append))
        .arg(
            Arg::new("listen")
                .long("listen")
                .action(ArgAction::Append)
                .value_delimiter(','),
        )
        .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let command = command();
    let given = command
        .clone()
        .get_matches_from(["serve", "--history", "7"]);
    match arguments_from(text, &command, &given) {
        Ok(args) => {
            assert!(args.iter().all(|a| a.to_string_lossy().starts_with("--")));
            assert!(
                !args
                    .iter()
                    .any(|a| a.to_string_lossy().starts_with("--history"))
            );
            let argv = ["serve".into(), "--history".into(), "7".into()];
            let all = argv.into_iter().chain(args);
            if let Err(e) = command.clone().try_get_matches_from(all) {
                panic!("the file's arguments were refused: {e}");
            }
        }
        Err(reason) => {
            let (line, _) = reason.split_once(": ").expect("a line first");
            let line: usize = line.parse().expect("a line number");
            assert!(line >= 1 && line <= text.lines().count() + 1, "{reason}");
        }
    }
});
