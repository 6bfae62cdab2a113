//! What the connection task needs from a stream socket.
//!
//! Readiness first, bytes second: the task waits for `readable()` holding no buffer, then
//! reads into a short-lived one. An idle connection therefore costs its task and queue
//! handle, not a read buffer. Reads and writes take `&self`, so one task can wait for input
//! and for room to write at the same time without splitting the socket.

use std::io::{self, IoSlice};
use std::net::Shutdown;

use tokio::net::{TcpStream, UnixStream};

pub trait Transport: Send + Sync + 'static {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Sends FIN: the peer reads what was written, then end of stream.
    fn shutdown_write(&self) -> io::Result<()>;
}

macro_rules! socket_transport {
    ($t:ty) => {
        impl Transport for $t {
            async fn readable(&self) -> io::Result<()> {
                <$t>::readable(self).await
            }
            async fn writable(&self) -> io::Result<()> {
                <$t>::writable(self).await
            }
            fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                <$t>::try_read(self, buf)
            }
            fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                <$t>::try_write_vectored(self, bufs)
            }
            fn shutdown_write(&self) -> io::Result<()> {
                socket2::SockRef::from(self).shutdown(Shutdown::Write)
            }
        }
    };
}

socket_transport!(TcpStream);
socket_transport!(UnixStream);
