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
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgListener, PgPool};

use super::LocalBus;
use super::wire;
use crate::adapters::sql::messages::{MessageRow, message_select};
use crate::domain::error::{Error, Result};
use crate::domain::{Event, Message};
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
        let newest: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM messages")
            .fetch_one(&pool)
            .await?;
        tokio::spawn(relay_notifications(
            listener,
            reader,
            relay,
            newest,
            connected.clone(),
        ));
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

/// How far back, at most, an instance that lost its listening connection looks for messages.
const MAX_RECOVERY: chrono::Duration = chrono::Duration::minutes(5);
/// Slack for clocks and commit delays: messages stamped this much before the connection was
/// last known good are looked at again (the sockets drop those they already have).
const RECOVERY_SLACK: chrono::Duration = chrono::Duration::seconds(10);
/// Messages may commit out of id order by this many ids (concurrent batches of instances).
pub(crate) const ID_SLACK: i64 = 1000;
/// The most messages one recovery relays.
const MAX_RECOVERED: i64 = 10_000;

/// Relays every notification to this process's subscribers, for as long as the process runs.
///
/// When the listening connection drops, notifications sent until it is back are lost to this
/// instance. Once listening again, it reads the messages stored meanwhile from the `messages`
/// table and relays them: every socket drops the ones it already has (by `seq`), so none is
/// lost or doubled for a client. Typing, presence and read events of the gap are not kept
/// anywhere and stay lost.
async fn relay_notifications(
    mut listener: PgListener,
    pool: PgPool,
    relay: Arc<LocalBus>,
    mut newest: i64,
    connected: Arc<AtomicBool>,
) {
    let mut heard_at = Utc::now();
    let mut gap: Option<DateTime<Utc>> = None;
    loop {
        if let Some(since) = gap {
            // Listening again before reading what was missed, so nothing falls in between.
            let recovered = match sqlx::query("SELECT 1").execute(&mut listener).await {
                Ok(_) => recover(&pool, since, newest - ID_SLACK).await,
                Err(e) => Err(e),
            };
            match recovered {
                Ok(messages) => {
                    tracing::info!(
                        messages = messages.len(),
                        "event bus listening again; relayed the messages stored meanwhile"
                    );
                    for message in messages {
                        newest = newest.max(message.id.0);
                        let _ = relay.publish(Event::MessagePosted(message)).await;
                    }
                    gap = None;
                    connected.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    connected.store(false, Ordering::Relaxed);
                    tracing::debug!(error = %e, "event bus cannot reconnect yet; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        match listener.try_recv().await {
            Ok(Some(n)) => {
                heard_at = Utc::now();
                if gap.is_none() {
                    connected.store(true, Ordering::Relaxed);
                }
                if n.payload().is_empty() {
                    continue; // a heartbeat
                }
                match resolve(&pool, n.payload()).await {
                    Ok(events) => {
                        for event in events {
                            if let Event::MessagePosted(m) = &event {
                                newest = newest.max(m.id.0);
                                metrics::histogram!("parley_bus_lag_seconds")
                                    .record(crate::adapters::metrics::seconds_since(m.created_at));
                            }
                            let _ = relay.publish(event).await;
                        }
                    }
                    Err(e) => tracing::error!(error = ?e, "undecodable bus event"),
                }
            }
            Ok(None) => {
                tracing::warn!("event bus connection lost; reconnecting");
                gap = Some(heard_at.max(Utc::now() - MAX_RECOVERY) - RECOVERY_SLACK);
            }
            Err(e) => {
                if connected.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "event bus listener failed; retrying");
                }
                gap.get_or_insert(heard_at.max(Utc::now() - MAX_RECOVERY) - RECOVERY_SLACK);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// The messages stored since `since` with an id above `above`, each chat's in `seq` order.
pub(crate) async fn recover(
    pool: &PgPool,
    since: DateTime<Utc>,
    above: i64,
) -> std::result::Result<Vec<Message>, sqlx::Error> {
    let sql = concat!(
        message_select!(),
        "WHERE m.id > $1 AND m.created_at >= $2 ORDER BY m.chat_id, m.seq LIMIT $3"
    );
    let rows = sqlx::query_as::<_, MessageRow>(sql)
        .bind(above)
        .bind(since)
        .bind(MAX_RECOVERED)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Message::from).collect())
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

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}
