//! End-to-end tests of the HTTP API and the WebSockets, over real sockets on `127.0.0.1:0`.
//! Every test runs on memory, SQLite and PostgreSQL storage.

#[path = "../support/mod.rs"]
mod support;

/// Instantiates each listed test `async fn name(backend: Backend)` once per storage backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::app::Backend::Memory).await })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::app::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::app::Backend::Postgres).await })*
        }
    };
}

/// [`on_every_backend!`] for the backends that keep data across a restart.
macro_rules! on_every_backend_but_memory {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name($crate::support::app::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name($crate::support::app::Backend::Postgres).await })*
        }
    };
}

mod abuse;
mod actions;
mod auth;
mod chats;
mod cluster;
mod cookies;
mod delivery;
mod faults;
mod groups;
mod hygiene;
mod library;
mod lifecycle;
mod metrics;
mod openapi;
mod operate;
mod sessions;
mod sockets;
mod sqlite_wal;
mod user_socket;
