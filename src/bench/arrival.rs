//! Reads that also tell when their data reached the client's socket.
//!
//! The generator shares this machine with the server and is busy itself at high rates, so
//! the moment it gets round to reading a line is later than the moment the server's write
//! put it in the client's socket. The kernel stamps every segment as it arrives
//! (`SO_TIMESTAMPNS`); latency up to that stamp is what the server is answerable for, and
//! latency up to the read is what a client as busy as the generator would see. The
//! benchmark reports both.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Room for one `SCM_TIMESTAMPNS` control message (a 16-byte header and a 16-byte time).
const CONTROL_BYTES: usize = 64;

/// Bytes read at a time.
const READ_BYTES: usize = 64 * 1024;

thread_local! {
    /// One read buffer per thread, shared by every receiver on it: a buffer per receiver
    /// was 640 MB at 10,000 clients, faulted in during the first step (it slowed the
    /// generator for seconds), and a cache miss on every read.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BYTES]);
}

/// Asks the kernel to stamp what arrives on `stream` from now on.
pub fn enable(stream: &TcpStream) -> io::Result<()> {
    setsockopt(stream, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// Waits for `stream` to have something, reads it and hands `with` the bytes (empty at the
/// end of the stream) and when the newest of them reached the socket (wall-clock time, as
/// the kernel stamps it). A read that spans several segments carries the last one's
/// stamp — TCP even merges segments queued unread under the newest stamp — which can only
/// overstate the latency of the lines that came before it.
pub async fn read<T>(
    stream: &TcpStream,
    mut with: impl FnMut(&[u8], Option<SystemTime>) -> T,
) -> io::Result<T> {
    loop {
        stream.readable().await?;
        let read = BUFFER.with_borrow_mut(|buf| {
            stream
                .try_io(Interest::READABLE, || read_now(stream, buf))
                .map(|(n, arrived)| with(&buf[..n], arrived))
        });
        match read {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

fn read_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    let mut control = [0u8; CONTROL_BYTES];
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )?;
    let arrived = message.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmTimestampns(at) => {
                let since_epoch =
                    Duration::new(at.tv_sec().try_into().ok()?, at.tv_nsec().try_into().ok()?);
                Some(UNIX_EPOCH + since_epoch)
            }
            _ => None,
        })
    });
    Ok((message.bytes, arrived))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// The stamp is when the bytes arrived, not when they were read.
    #[tokio::test]
    async fn stamps_arrival_not_the_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (receiver, _) = listener.accept().await.unwrap();
        enable(&receiver).unwrap();
        // The kernel turns stamping on for the first socket that asks a moment later (from
        // a work queue): the first segments may come unstamped.
        for _ in 0..20 {
            let sent = SystemTime::now();
            sender.write_all(b"hello\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let reading = SystemTime::now();
            let (bytes, arrived) = read(&receiver, |bytes, arrived| (bytes.to_vec(), arrived))
                .await
                .unwrap();
            assert_eq!(bytes, b"hello\n");
            if let Some(arrived) = arrived {
                assert!(sent <= arrived, "stamped before it was sent");
                assert!(arrived < reading, "stamped when read, not when it arrived");
                return;
            }
        }
        panic!("no segment was ever stamped");
    }
}
