//! A bus across Parley instances sharing one PostgreSQL database: events go out with
//! `NOTIFY` and come back to every instance, this one included, through one `LISTEN`
//! connection, so all instances deliver the same events in the same order. A payload too large
//! for a notification travels through the `bus_payloads` table.
//!
//! The bus knows whether its listening connection is up, for the readiness check. While it is
//! down, the listener reconnects on its own but says nothing until a notification arrives, so a
//! heartbeat (an empty notification, which every instance ignores) is sent each second until
//! this instance hears one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};

use super::LocalBus;
use super::wire;
use crate::domain::Event;
use crate::domain::error::{Error, Result};
use crate::ports::{EventBus, EventStream};

const CHANNEL: &str = "parley_events";
/// NOTIFY payloads must stay under 8000 bytes.
const MAX_INLINE: usize = 7000;
/// A reference to a stored payload starts with this byte, which no JSON object does.
const REF_PREFIX: char = '#';

/// The PostgreSQL bus.
pub struct PgBus {
    pool: PgPool,
    local: Arc<LocalBus>,
    published: AtomicU64,
    connected: Arc<AtomicBool>,
}

/// How often a disconnected bus sends a heartbeat to learn that it listens again.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

impl PgBus {
    /// Starts listening, then returns the bus; events published from then on are delivered.
    ///
    /// # Errors
    /// When the listening connection cannot be opened.
    pub async fn start(pool: PgPool) -> anyhow::Result<Self> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let local = Arc::new(LocalBus::default());
        let connected = Arc::new(AtomicBool::new(true));
        let relay = local.clone();
        let reader = pool.clone();
        let up = connected.clone();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        up.store(true, Ordering::Relaxed);
                        if n.payload().is_empty() {
                            continue; // a heartbeat
                        }
                        match resolve(&reader, n.payload()).await {
                            Ok(event) => {
                                let _ = relay.publish(event).await;
                            }
                            Err(e) => tracing::error!(error = ?e, "undecodable bus event"),
                        }
                    }
                    Ok(None) => {
                        // Lost, and already reconnected before returning.
                        tracing::warn!(
                            "event bus connection lost; reconnected (events sent meanwhile are missed)"
                        );
                    }
                    Err(e) => {
                        if up.swap(false, Ordering::Relaxed) {
                            tracing::error!(error = %e, "event bus listener failed; retrying");
                        }
                        tokio::time::sleep(HEARTBEAT_EVERY).await;
                    }
                }
            }
        });
        let beating = pool.clone();
        let up = connected.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                tick.tick().await;
                if !up.load(Ordering::Relaxed) {
                    let _ = sqlx::query("SELECT pg_notify($1, '')")
                        .bind(CHANNEL)
                        .execute(&beating)
                        .await;
                }
            }
        });
        Ok(Self {
            pool,
            local,
            published: AtomicU64::new(0),
            connected,
        })
    }
}

/// The event a notification carries, fetching it from `bus_payloads` when it was too large.
async fn resolve(pool: &PgPool, payload: &str) -> anyhow::Result<Event> {
    let json = match payload.strip_prefix(REF_PREFIX) {
        Some(id) => {
            sqlx::query_scalar::<_, String>("SELECT payload FROM bus_payloads WHERE id = $1")
                .bind(id.parse::<i64>()?)
                .fetch_one(pool)
                .await?
        }
        None => payload.to_owned(),
    };
    Ok(wire::decode(&json)?)
}

#[async_trait]
impl EventBus for PgBus {
    async fn publish(&self, event: Event) -> Result<()> {
        let json = wire::encode(&event);
        let payload = if json.len() <= MAX_INLINE {
            json
        } else {
            // Now and then, forget payloads every instance has long since read.
            if self
                .published
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(100)
            {
                sqlx::query(
                    "DELETE FROM bus_payloads WHERE created_at < now() - interval '1 minute'",
                )
                .execute(&self.pool)
                .await
                .map_err(Error::unexpected)?;
            }
            let id: i64 =
                sqlx::query_scalar("INSERT INTO bus_payloads (payload) VALUES ($1) RETURNING id")
                    .bind(&json)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(Error::unexpected)?;
            format!("{REF_PREFIX}{id}")
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(Error::unexpected)?;
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        self.local.subscribe()
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}
