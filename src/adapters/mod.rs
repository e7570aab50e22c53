//! Implementations of the ports, and the HTTP/WebSocket adapter that drives the domain.

pub mod argon2;
pub mod bus;
pub mod clock;
pub mod http;
pub mod jwt;
pub mod memory;
pub mod metrics;
pub mod postgres;
pub mod presence;
pub mod redis;
mod sql;
pub mod sqlite;
pub mod throttle;
