//! `charla watch FILE…`: the net-watcher of the seed notes. A server (every `charla serve`
//! option applies) that watches FILEs and posts each change to the room people land in
//! with `nc`, so `nc localhost 6030` shows a "now watching" line and then one line per
//! change.

use std::path::PathBuf;

use clap::Args;

use charla::feeds::WatchSpec;
use charla::hub::RoomName;

use super::Serve;

#[derive(Args)]
pub struct Watch {
    /// Files (or directories) to watch; each must exist.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Room the notices go to. Everyone starts in #lobby, so that is where nc users see
    /// them at once.
    #[arg(long, default_value = "#lobby", value_parser = room)]
    pub room: RoomName,

    #[command(flatten)]
    pub serve: Serve,
}

fn room(input: &str) -> Result<RoomName, String> {
    RoomName::parse(input).map_err(|e| e.to_string())
}

impl Watch {
    /// The same server as `charla serve --watch FILE=#room …`.
    pub fn into_serve(self) -> Serve {
        let mut serve = self.serve;
        serve
            .watch
            .extend(self.files.into_iter().map(|path| WatchSpec {
                path,
                room: self.room.clone(),
            }));
        serve
    }
}
