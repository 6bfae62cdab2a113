//! Who holds a port: the socket tables and process fd lists under /proc.
//!
//! A bare "address already in use" leaves the user to reach for `ss -ltnp` or
//! `lsof`; naming the holder turns that into one obvious next step. The lookup
//! is also the engine behind `charla port PORT`, so it reports every socket on
//! the port, not only the listener that blocked a bind.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;

use procfs::ProcError;
use procfs::net::{TcpNetEntry, TcpState, UdpNetEntry, UdpState};
use procfs::process::FDTarget;

mod kill;

pub use kill::{Ended, Ending, end_processes, is_running};

/// Transport of a socket entry.
///
/// TCP and UDP ports are separate namespaces, so a holder is only meaningful
/// together with its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// One socket bound to the port, and the process holding it when /proc lets us see it.
///
/// A socket shared by several processes (inherited across fork) yields one
/// `Holder` per process, because each of them must go before the port is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub transport: Transport,
    pub local: SocketAddr,
    /// Kernel state in `netstat` spelling, so it reads like the tools users
    /// already know: `LISTEN`, `ESTABLISHED`, `TIME_WAIT`, ... for TCP. UDP is
    /// connectionless, so it is `UNCONN` for a merely bound socket and
    /// `ESTABLISHED` for one that called `connect`.
    pub state: String,
    /// `None` when the owning process is not visible: it belongs to another
    /// user (its fd list needs privileges), lives in another PID namespace, or
    /// the socket has no owner left (e.g. `TIME_WAIT`).
    pub process: Option<Process>,
}

/// A process holding a socket: enough to tell the user what to `kill`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Process {
    pub pid: i32,
    /// The kernel's `comm` (at most 15 bytes), the name `ps` and `ss` show;
    /// the executable's file name only when `comm` cannot be read.
    pub program: String,
}

/// Failure to read the tables the lookup depends on.
///
/// Per-process failures (a process exiting mid-scan, or one we may not
/// inspect) are not errors: they only make that holder invisible.
#[derive(thiserror::Error, Debug)]
pub enum PortError {
    #[error("cannot read the socket table {table}")]
    SocketTable {
        table: &'static str,
        #[source]
        source: ProcError,
    },
    #[error("cannot list the processes in /proc")]
    Processes(#[source] ProcError),
}

/// A socket table entry on the wanted port, before the owner is known.
struct Socket {
    transport: Transport,
    local: SocketAddr,
    state: &'static str,
    inode: u64,
}

/// Every socket whose local port is `port`, TCP and UDP, IPv4 and IPv6, de-duplicated.
///
/// Sorted by pid (invisible owners last), then address, so output and tests
/// are stable across runs.
pub fn holders(port: u16) -> Result<Vec<Holder>, PortError> {
    let mut sockets = Vec::new();
    for (table, entries) in [
        ("/proc/net/tcp", procfs::net::tcp()),
        ("/proc/net/tcp6", procfs::net::tcp6()),
    ] {
        sockets.extend(
            table_entries(table, entries)?
                .iter()
                .filter(|e| e.local_address.port() == port)
                .map(tcp_socket),
        );
    }
    for (table, entries) in [
        ("/proc/net/udp", procfs::net::udp()),
        ("/proc/net/udp6", procfs::net::udp6()),
    ] {
        sockets.extend(
            table_entries(table, entries)?
                .iter()
                .filter(|e| e.local_address.port() == port)
                .map(udp_socket),
        );
    }

    let owners = owners(
        sockets
            .iter()
            .map(|s| s.inode)
            .filter(|&i| i != 0)
            .collect(),
    )?;

    let mut found = Vec::new();
    for socket in sockets {
        let holder = |process| Holder {
            transport: socket.transport,
            local: socket.local,
            state: socket.state.to_owned(),
            process,
        };
        match owners.get(&socket.inode) {
            Some(processes) => found.extend(processes.iter().cloned().map(Some).map(holder)),
            None => found.push(holder(None)),
        }
    }
    found.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    found.dedup();
    Ok(found)
}

/// The sentence `charla serve` prints when binding `addr` failed because it is in use:
/// names the holder(s) (pid and program) that LISTEN on that port, and says how
/// to free it: `kill PID`, or `charla port PORT --kill`, or pick another port with `--listen`.
/// When no holder is visible, says so plainly (e.g. it may belong to another user; try `sudo charla port PORT`).
///
/// Only TCP listeners count, because `serve` binds TCP and nothing else on the
/// port can make that bind fail. Never fails: a lookup error still leaves the
/// user a useful sentence.
pub fn in_use_message(addr: SocketAddr) -> String {
    in_use_message_for(Transport::Tcp, addr)
}

/// [`in_use_message`] for a bind of `transport`: TCP counts the listeners on the port,
/// UDP every UDP socket bound to it (UDP has no listening state).
pub fn in_use_message_for(transport: Transport, addr: SocketAddr) -> String {
    match holders(addr.port()) {
        Ok(all) => {
            let listeners: Vec<&Holder> = all
                .iter()
                .filter(|h| {
                    h.transport == transport && (transport == Transport::Udp || h.state == "LISTEN")
                })
                .collect();
            let message = message_for(addr, &listeners);
            match transport {
                Transport::Tcp => message,
                Transport::Udp => format!("udp://{message}"),
            }
        }
        Err(e) => format!(
            "{addr} is already in use (could not look up the holder: {}). \
             Try `charla port {port}`, or choose another port with --listen.",
            error_chain(&e),
            port = addr.port(),
        ),
    }
}

/// The wording of [`in_use_message`], kept apart from /proc so every shape of
/// it can be tested.
fn message_for(addr: SocketAddr, listeners: &[&Holder]) -> String {
    let port = addr.port();
    let mut visible: Vec<&Process> = Vec::new();
    for process in listeners.iter().filter_map(|h| h.process.as_ref()) {
        // One program listening on both 0.0.0.0 and [::] is still one process.
        if !visible.iter().any(|p| p.pid == process.pid) {
            visible.push(process);
        }
    }
    if visible.is_empty() {
        return format!(
            "{addr} is already in use, but the process holding it is not visible \
             (it may belong to another user). Try `sudo charla port {port}`, \
             or choose another port with --listen."
        );
    }
    let names: Vec<String> = visible
        .iter()
        .map(|p| format!("pid {} ({})", p.pid, p.program))
        .collect();
    let pids: Vec<String> = visible.iter().map(|p| p.pid.to_string()).collect();
    let hidden = if listeners.iter().any(|h| h.process.is_none()) {
        " and a process not visible to this user"
    } else {
        ""
    };
    format!(
        "{addr} is already in use by {}{hidden}. Free it with `kill {}` or \
         `charla port {port} --kill`, or choose another port with --listen.",
        names.join(", "),
        pids.join(" "),
    )
}

/// A missing table means that address family is absent from the kernel
/// (e.g. IPv6 disabled), which simply holds no sockets.
fn table_entries<T>(
    table: &'static str,
    entries: Result<Vec<T>, ProcError>,
) -> Result<Vec<T>, PortError> {
    match entries {
        Ok(entries) => Ok(entries),
        Err(ProcError::NotFound(_)) => Ok(Vec::new()),
        Err(source) => Err(PortError::SocketTable { table, source }),
    }
}

fn tcp_socket(e: &TcpNetEntry) -> Socket {
    let state = match e.state {
        TcpState::Established => "ESTABLISHED",
        TcpState::SynSent => "SYN_SENT",
        TcpState::SynRecv => "SYN_RECV",
        TcpState::FinWait1 => "FIN_WAIT1",
        TcpState::FinWait2 => "FIN_WAIT2",
        TcpState::TimeWait => "TIME_WAIT",
        TcpState::Close => "CLOSE",
        TcpState::CloseWait => "CLOSE_WAIT",
        TcpState::LastAck => "LAST_ACK",
        TcpState::Listen => "LISTEN",
        TcpState::Closing => "CLOSING",
        TcpState::NewSynRecv => "NEW_SYN_RECV",
    };
    Socket {
        transport: Transport::Tcp,
        local: e.local_address,
        state,
        inode: e.inode,
    }
}

fn udp_socket(e: &UdpNetEntry) -> Socket {
    let state = match e.state {
        UdpState::Established => "ESTABLISHED",
        UdpState::Close => "UNCONN",
    };
    Socket {
        transport: Transport::Udp,
        local: e.local_address,
        state,
        inode: e.inode,
    }
}

/// Maps each wanted socket inode to the processes with an fd on it.
///
/// Processes that exit mid-scan or refuse access (other users, without
/// privileges) are skipped: their sockets just stay ownerless.
fn owners(wanted: HashSet<u64>) -> Result<HashMap<u64, Vec<Process>>, PortError> {
    let mut owners: HashMap<u64, Vec<Process>> = HashMap::new();
    if wanted.is_empty() {
        // Nothing to match: spare the walk over every process's fds.
        return Ok(owners);
    }
    for proc in procfs::process::all_processes()
        .map_err(PortError::Processes)?
        .flatten()
    {
        let Ok(fds) = proc.fd() else { continue };
        let mut inodes: Vec<u64> = fds
            .flatten()
            .filter_map(|fd| match fd.target {
                FDTarget::Socket(inode) if wanted.contains(&inode) => Some(inode),
                _ => None,
            })
            .collect();
        if inodes.is_empty() {
            continue;
        }
        inodes.sort_unstable();
        inodes.dedup();
        let program = match proc.stat() {
            Ok(stat) => stat.comm,
            Err(_) => proc
                .exe()
                .ok()
                .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "?".to_owned()),
        };
        let process = Process {
            pid: proc.pid(),
            program,
        };
        for inode in inodes {
            owners.entry(inode).or_default().push(process.clone());
        }
    }
    Ok(owners)
}

fn sort_key(h: &Holder) -> impl Ord {
    let pid = h.process.as_ref().map(|p| p.pid);
    let program = h.process.as_ref().map(|p| p.program.as_str());
    (
        pid.is_none(),
        pid,
        h.local,
        h.transport,
        h.state.as_str(),
        program,
    )
}

/// Display of an error and its sources, since `PortError` keeps the procfs
/// cause out of its own message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};

    fn my_pid() -> i32 {
        i32::try_from(std::process::id()).expect("pid fits in i32")
    }

    fn my_program() -> String {
        procfs::process::Process::myself()
            .and_then(|p| p.stat())
            .expect("own /proc/self/stat")
            .comm
    }

    fn mine(holders: &[Holder], transport: Transport, local: SocketAddr) -> Vec<&Holder> {
        holders
            .iter()
            .filter(|h| {
                h.transport == transport
                    && h.local == local
                    && h.process.as_ref().is_some_and(|p| p.pid == my_pid())
            })
            .collect()
    }

    #[test]
    fn finds_own_tcp_listener_v4() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let found = holders(local.port()).unwrap();
        let entries = mine(&found, Transport::Tcp, local);
        assert_eq!(entries.len(), 1, "{found:?}");
        assert_eq!(entries[0].state, "LISTEN");
        assert_eq!(entries[0].process.as_ref().unwrap().program, my_program());
    }

    #[test]
    fn finds_own_tcp_listener_v6() {
        // Hosts without IPv6 cannot bind [::1]; there is nothing to look up then.
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            return;
        };
        let local = listener.local_addr().unwrap();
        assert_eq!(local.ip(), Ipv6Addr::LOCALHOST);
        let found = holders(local.port()).unwrap();
        let entries = mine(&found, Transport::Tcp, local);
        assert_eq!(entries.len(), 1, "{found:?}");
        assert_eq!(entries[0].state, "LISTEN");
    }

    #[test]
    fn finds_own_udp_socket() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = socket.local_addr().unwrap();
        let found = holders(local.port()).unwrap();
        let entries = mine(&found, Transport::Udp, local);
        assert_eq!(entries.len(), 1, "{found:?}");
        assert_eq!(entries[0].state, "UNCONN");
        assert!(
            mine(&found, Transport::Tcp, local).is_empty(),
            "a UDP socket must not show up as TCP: {found:?}"
        );
    }

    #[test]
    fn reports_accepted_connections_and_sorts() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let _client = TcpStream::connect(local).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let found = holders(local.port()).unwrap();
        let states: Vec<&str> = mine(&found, Transport::Tcp, local)
            .iter()
            .map(|h| h.state.as_str())
            .collect();
        assert!(states.contains(&"LISTEN"), "{found:?}");
        assert!(states.contains(&"ESTABLISHED"), "{found:?}");
        let mut sorted = found.clone();
        sorted.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        assert_eq!(found, sorted);
    }

    #[test]
    fn free_port_has_no_holders() {
        // The kernel may hand a just-released port to someone else before we
        // look, so one clean attempt out of several proves the point.
        let clean = (0..20).any(|_| {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            holders(port).unwrap().is_empty()
        });
        assert!(clean, "every released port still had holders");
    }

    #[test]
    fn in_use_message_names_pid_and_program() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let msg = in_use_message(local);
        let pid = my_pid();
        let port = local.port();
        assert!(
            msg.starts_with(&format!("{local} is already in use")),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("pid {pid} ({})", my_program())),
            "{msg}"
        );
        assert!(msg.contains(&format!("`kill {pid}`")), "{msg}");
        assert!(
            msg.contains(&format!("`charla port {port} --kill`")),
            "{msg}"
        );
        assert!(msg.contains("--listen"), "{msg}");
        assert!(!msg.ends_with('\n'));
    }

    #[test]
    fn in_use_message_ignores_udp() {
        // A UDP socket on the port cannot block a TCP bind, so it is not named.
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = socket.local_addr().unwrap();
        let msg = in_use_message(local);
        assert!(!msg.contains(&format!("pid {}", my_pid())), "{msg}");
    }

    fn listener(pid: Option<i32>, program: &str, local: &str) -> Holder {
        Holder {
            transport: Transport::Tcp,
            local: local.parse().unwrap(),
            state: "LISTEN".to_owned(),
            process: pid.map(|pid| Process {
                pid,
                program: program.to_owned(),
            }),
        }
    }

    #[test]
    fn message_when_nothing_is_visible() {
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6030));
        let hidden = listener(None, "", "0.0.0.0:6030");
        for listeners in [vec![], vec![&hidden]] {
            let msg = message_for(addr, &listeners);
            assert_eq!(
                msg,
                "127.0.0.1:6030 is already in use, but the process holding it is not visible \
                 (it may belong to another user). Try `sudo charla port 6030`, \
                 or choose another port with --listen."
            );
        }
    }

    #[test]
    fn message_names_each_process_once() {
        let addr = "127.0.0.1:6030".parse().unwrap();
        let v4 = listener(Some(4242), "charla", "0.0.0.0:6030");
        let v6 = listener(Some(4242), "charla", "[::]:6030");
        let other = listener(Some(77), "nc", "127.0.0.1:6030");
        assert_eq!(
            message_for(addr, &[&v4, &v6]),
            "127.0.0.1:6030 is already in use by pid 4242 (charla). Free it with `kill 4242` \
             or `charla port 6030 --kill`, or choose another port with --listen."
        );
        let hidden = listener(None, "", "[::]:6030");
        assert_eq!(
            message_for(addr, &[&other, &v4, &hidden]),
            "127.0.0.1:6030 is already in use by pid 77 (nc), pid 4242 (charla) and a process \
             not visible to this user. Free it with `kill 77 4242` \
             or `charla port 6030 --kill`, or choose another port with --listen."
        );
    }

    #[test]
    fn transport_displays_lowercase() {
        assert_eq!(Transport::Tcp.to_string(), "tcp");
        assert_eq!(Transport::Udp.to_string(), "udp");
    }
}
