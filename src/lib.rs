//! Parley: a real-time chat server.
//!
//! The crate is layered the hexagonal way. [`domain`] holds the entities, the values that
//! validate themselves and the use-case services; [`ports`] holds the traits the domain needs
//! from the outside world; [`adapters`] implements them (PostgreSQL, SQLite, memory, JWT,
//! argon2, event buses) and drives the domain over HTTP and WebSocket. [`App::build`] wires
//! one configuration into a running server, which is all the `parley` binary does.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod ports;
pub mod services;

pub use app::App;
pub use config::Config;
