//! charla: a chat and live-alert server over plain sockets.
//!
//! The one data path: socket bytes → [`protocol::framing`] → [`protocol::parse`] →
//! [`hub::Command`] → [`hub::Hub::apply`] → [`hub::Event`] encoded once per format →
//! each connection's bounded queue → coalesced writes. See ../shared/ARCHITECTURE.md.

// Fuzzing runs without AddressSanitizer on the strength of this (docs/fuzzing.md).
#![forbid(unsafe_code)]

pub mod accounts;
pub mod bench;
pub mod client;
pub mod cluster;
pub mod fanout;
pub mod feeds;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod port;
pub mod protocol;
pub mod server;
pub mod store;
