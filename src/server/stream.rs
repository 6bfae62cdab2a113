//! What a connection can be served over: any byte stream.
//!
//! TCP and Unix sockets, a TLS stream, a WebSocket adapted to bytes: whatever reads and
//! writes with tokio's traits. The connection task polls it from its own hand-written
//! future, handing it a read buffer that lives only during the poll, so an idle connection
//! holds none whatever the stream (`connection::Converse`).

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream a connection can be served over.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ByteStream for T {}
