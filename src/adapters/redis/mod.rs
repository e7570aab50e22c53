//! Redis as the engine that ties Parley instances together, when `PARLEY_REDIS_URL` names
//! one: the event bus ([`RedisBus`], a stream every instance reads), presence
//! ([`RedisPresence`], socket counts under per-instance leases), failed logins
//! ([`RedisLoginFailures`]) and the HTTP rate limits ([`RedisWindows`]). PostgreSQL stays the
//! store; Redis holds nothing that cannot be lost: a Redis that restarts empty costs a few
//! seconds of presence and the counts of the current rate-limit windows.
//!
//! Every key starts with one prefix (`parley` by default), so several deployments can share
//! one Redis.

mod bus;
mod counters;
mod presence;

pub use bus::RedisBus;
pub use counters::{RedisLoginFailures, RedisWindows};
pub use presence::RedisPresence;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::domain::error::Error;

/// A Redis server and the prefix of Parley's keys on it.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: String,
}

/// How long a command may take before it is failed (the engine is then taken as down).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Redis {
    /// Connects to the Redis at `url` (`redis://[:password@]host[:port][/db]`).
    ///
    /// # Errors
    /// When the URL is not one, or the server does not answer.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(1));
        let manager = client.get_connection_manager_with_config(config).await?;
        Ok(Self {
            client,
            manager,
            prefix: prefix.to_owned(),
        })
    }

    /// A connection that reconnects by itself after a failed command; cheap to clone.
    pub(crate) fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// `prefix:name`.
    pub(crate) fn key(&self, name: impl std::fmt::Display) -> String {
        format!("{}:{name}", self.prefix)
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unexpected(e: redis::RedisError) -> Error {
    Error::unexpected(e)
}
