//! Integration tests: a real server, real sockets, real clients.

mod accounts;
mod bench;
mod binary;
mod browser;
mod chat;
mod cli;
mod client;
mod client_tty;
mod feeds;
mod feeds_cli;
mod heartbeats;
mod http;
mod irc;
mod irc_clients;
mod json;
mod limits;
mod metrics;
mod ops;
mod port;
mod rooms;
mod slow;
mod store;
mod support;
mod tls;
mod tmux;
mod unicode;
