//! Integration tests: a real server, real sockets, real clients.

mod support;
mod chat;
mod json;
mod limits;
mod slow;
mod cli;
