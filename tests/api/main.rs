//! End-to-end tests of the HTTP API and the WebSockets, over real sockets on `127.0.0.1:0`.
//! Every test runs on memory, SQLite and PostgreSQL storage.

#[path = "../support/mod.rs"]
mod support;

mod auth;
