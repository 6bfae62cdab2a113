//! Integration tests: a real server, real sockets, real clients.

mod chat;
mod cli;
mod json;
mod limits;
mod slow;
mod support;
