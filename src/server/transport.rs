//! What the connection task needs from a stream socket.
//!
//! Readiness first, bytes second: the task waits for readiness holding no buffer, then
//! reads into a short-lived one. An idle connection therefore costs its task and queue
//! handle, not a read buffer. Readiness is polled, not awaited, so the connection's
//! hand-written future waits for input and for room to write without storing a future for
//! each (see `connection::Converse`). Reads and writes take `&self`, so one task can do
//! both without splitting the socket.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::task::{Context, Poll};

use tokio::net::{TcpStream, UnixStream};

pub trait Transport: Send + Sync + 'static {
    /// Ready once input (or end of stream) may be read; registers `cx` to be woken.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Ready once the socket may accept bytes; registers `cx` to be woken.
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Sends FIN: the peer reads what was written, then end of stream.
    fn shutdown_write(&self) -> io::Result<()>;

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        poll_fn(move |cx| self.poll_read_ready(cx))
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        poll_fn(move |cx| self.poll_write_ready(cx))
    }
}

macro_rules! socket_transport {
    ($t:ty) => {
        impl Transport for $t {
            fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_read_ready(self, cx)
            }
            fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_write_ready(self, cx)
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
