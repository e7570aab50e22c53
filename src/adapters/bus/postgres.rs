//! A bus across Parley instances sharing one PostgreSQL database: events go out with
//! `NOTIFY` and come back to every instance, this one included, through one `LISTEN`
//! connection, so all instances deliver the same events in the same order. A payload too large
//! for a notification travels through the `bus_payloads` table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl PgBus {
    /// Starts listening, then returns the bus; events published from then on are delivered.
    ///
    /// # Errors
    /// When the listening connection cannot be opened.
    pub async fn start(pool: PgPool) -> anyhow::Result<Self> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let local = Arc::new(LocalBus::default());
        let relay = local.clone();
        let reader = pool.clone();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => match resolve(&reader, n.payload()).await {
                        Ok(events) => {
                            for event in events {
                                let _ = relay.publish(event).await;
                            }
                        }
                        Err(e) => tracing::error!(error = ?e, "undecodable bus event"),
                    },
                    Ok(None) => {
                        tracing::warn!(
                            "event bus connection lost; reconnecting (events sent meanwhile are missed)"
                        );
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "event bus listener failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self {
            pool,
            local,
            published: AtomicU64::new(0),
        })
    }
}

/// The events a notification carries, fetching them from `bus_payloads` when they were too
/// large.
async fn resolve(pool: &PgPool, payload: &str) -> anyhow::Result<Vec<Event>> {
    let json = match payload.strip_prefix(REF_PREFIX) {
        Some(id) => {
            sqlx::query_scalar::<_, String>("SELECT payload FROM bus_payloads WHERE id = $1")
                .bind(id.parse::<i64>()?)
                .fetch_one(pool)
                .await?
        }
        None => payload.to_owned(),
    };
    Ok(wire::decode_all(&json)?)
}

impl PgBus {
    /// What to notify for an event encoded as `json`: the JSON itself, or a reference to it
    /// stored in `bus_payloads` when it is too large for a notification.
    async fn payload(&self, json: String) -> Result<String> {
        if json.len() <= MAX_INLINE {
            return Ok(json);
        }
        // Now and then, forget payloads every instance has long since read.
        if self
            .published
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(100)
        {
            sqlx::query("DELETE FROM bus_payloads WHERE created_at < now() - interval '1 minute'")
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
        Ok(format!("{REF_PREFIX}{id}"))
    }
}

#[async_trait]
impl EventBus for PgBus {
    async fn publish(&self, event: Event) -> Result<()> {
        let payload = self.payload(wire::encode(&event)).await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(Error::unexpected)?;
        Ok(())
    }

    /// Sends the events as few notifications as fit them, each a JSON array of as many events
    /// as stay under the payload limit, all in one statement.
    async fn publish_all(&self, events: Vec<Event>) -> Result<()> {
        let mut payloads = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        let mut pending_len = 0;
        for event in &events {
            let json = wire::encode(event);
            // Brackets and commas take one byte per event, and one more.
            if !pending.is_empty() && pending_len + json.len() + pending.len() + 2 > MAX_INLINE {
                payloads.push(wire::encode_array(pending.iter().map(String::as_str)));
                pending.clear();
                pending_len = 0;
            }
            if json.len() + 2 > MAX_INLINE {
                payloads.push(self.payload(json).await?);
            } else {
                pending_len += json.len();
                pending.push(json);
            }
        }
        if !pending.is_empty() {
            payloads.push(wire::encode_array(pending.iter().map(String::as_str)));
        }
        // Notifications of one statement arrive in the order they were sent.
        sqlx::query(
            "SELECT pg_notify($1, p) \
             FROM (SELECT p FROM unnest($2::text[]) WITH ORDINALITY AS t (p, n) ORDER BY n) o",
        )
        .bind(CHANNEL)
        .bind(payloads)
        .execute(&self.pool)
        .await
        .map_err(Error::unexpected)?;
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        self.local.subscribe()
    }
}
