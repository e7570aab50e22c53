//! Shared helpers for the integration tests.
pub mod app;
pub mod postgres;
pub mod redis;
