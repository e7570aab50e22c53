//! Parley: a real-time chat server.
//!
//! The crate is layered the hexagonal way. [`domain`] holds the entities, the values that
//! validate themselves and the use-case services; [`ports`] holds the traits the domain needs
//! from the outside world; [`adapters`] implements them (PostgreSQL, SQLite, memory, JWT,
//! argon2, event buses) and drives the domain over HTTP and WebSocket. [`App::build`] wires
//! one configuration into a running server, which is all the `parley` binary does.

#[cfg(feature = "server")]
pub mod adapters;
#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod config;
pub mod domain;
pub mod ports;
pub mod services;

#[cfg(feature = "server")]
pub use app::{App, AppBuilder, Backing, Services, Stopper, Storage};
/// The attribute every port implementation needs: `#[parley::async_trait]`.
pub use async_trait::async_trait;
#[cfg(feature = "server")]
pub use config::Config;
pub use domain::error::{Error, Result};
