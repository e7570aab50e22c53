//! The event bus over a Redis stream. Every event (or batch of events) is one stream entry;
//! every instance, this one included, reads the stream from where it last was, so all
//! instances deliver the same events in the same order. Unlike `NOTIFY`, an entry has no
//! size limit and stays in the stream after it is read: an instance whose connection drops
//! reads on from its last entry when it is back, and loses nothing, typing and presence
//! included. Only when it was away so long that the stream was trimmed past its last entry
//! does it fall back on the messages table, as the PostgreSQL bus does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use redis::Value;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use sqlx::PgPool;

use super::{Redis, unexpected};
use crate::adapters::bus::{ID_SLACK, LocalBus, recover_messages, wire};
use crate::domain::Event;
use crate::domain::error::Result;
use crate::ports::{EventBus, EventStream};

/// Entries kept in the stream (trimmed approximately): the history an instance that lost its
/// connection can read on from. One entry holds one event, or one batch of messages.
const MAX_ENTRIES: u64 = 100_000;
/// How long one read waits for new entries before asking again.
const BLOCK: Duration = Duration::from_millis(1000);
/// The most entries one read takes.
const READ_COUNT: usize = 512;
/// Slack for clocks and commits when falling back on the messages table.
const RECOVERY_SLACK: chrono::Duration = chrono::Duration::seconds(10);
const MAX_RECOVERY: chrono::Duration = chrono::Duration::minutes(5);

/// The Redis bus.
pub struct RedisBus {
    conn: ConnectionManager,
    stream: String,
    local: Arc<LocalBus>,
    connected: Arc<AtomicBool>,
}

/// A stream entry id, `milliseconds-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EntryId(u64, u64);

impl EntryId {
    fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-')?;
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }

    fn time(self) -> DateTime<Utc> {
        i64::try_from(self.0)
            .ok()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or_else(Utc::now)
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

impl RedisBus {
    /// Starts reading the stream from its current end, then returns the bus: events
    /// published from then on are delivered. `store` is where messages are recovered from
    /// after an absence longer than the stream keeps.
    ///
    /// # Errors
    /// When Redis does not answer.
    pub async fn start(redis: &Redis, store: PgPool) -> anyhow::Result<Self> {
        let stream = redis.key("events");
        let mut conn = redis.manager();
        let last = newest_entry(&mut conn, &stream).await?;
        let local = Arc::new(LocalBus::default());
        let connected = Arc::new(AtomicBool::new(true));
        let newest_message: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM messages")
            .fetch_one(&store)
            .await?;
        tokio::spawn(
            Reader {
                client: redis.client.clone(),
                stream: stream.clone(),
                last,
                local: local.clone(),
                connected: connected.clone(),
                store,
                newest_message,
            }
            .run(),
        );
        Ok(Self {
            conn,
            stream,
            local,
            connected,
        })
    }

    /// Appends one entry. A connection found dropped is reconnected and the entry sent once
    /// more: a message already stored must not miss its live delivery for a stale connection.
    async fn add(&self, payload: String) -> Result<()> {
        let mut xadd = redis::cmd("XADD");
        xadd.arg(&self.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(MAX_ENTRIES)
            .arg("*")
            .arg("e")
            .arg(payload);
        let mut conn = self.conn.clone();
        match xadd.query_async::<String>(&mut conn).await {
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                tracing::warn!(error = %e, "event bus publishing again on a new connection");
                xadd.query_async::<String>(&mut conn)
                    .await
                    .map_err(unexpected)?;
            }
            other => {
                other.map_err(unexpected)?;
            }
        }
        Ok(())
    }
}

/// The id of the stream's newest entry, or `0-0` when it has none.
async fn newest_entry(conn: &mut ConnectionManager, stream: &str) -> redis::RedisResult<EntryId> {
    let newest: Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(entries(newest)
        .into_iter()
        .next()
        .map_or(EntryId(0, 0), |(id, _)| id))
}

/// The oldest entry the stream still holds.
async fn oldest_entry(
    conn: &mut MultiplexedConnection,
    stream: &str,
) -> redis::RedisResult<Option<EntryId>> {
    let oldest: Value = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(entries(oldest).into_iter().next().map(|(id, _)| id))
}

/// The `(id, payload)` of each entry in an `XRANGE`-shaped reply.
fn entries(reply: Value) -> Vec<(EntryId, Option<String>)> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut parts) = item else {
                return None;
            };
            if parts.len() != 2 {
                return None;
            }
            let fields = parts.pop()?;
            let id = EntryId::parse(&text(parts.pop()?)?)?;
            let payload = match fields {
                // Field, value, field, value...: the one field is the payload.
                Value::Array(fields) => fields.into_iter().nth(1).and_then(text),
                _ => None,
            };
            Some((id, payload))
        })
        .collect()
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// The entries of an `XREAD` reply on one stream (none when it timed out).
fn read_entries(reply: Value) -> Vec<(EntryId, Option<String>)> {
    match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                Value::Array(mut parts) if parts.len() == 2 => parts.pop(),
                _ => None,
            })
            .flat_map(entries)
            .collect(),
        Value::Map(streams) => streams.into_iter().flat_map(|(_, e)| entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// Reads the stream for as long as the process runs and relays every entry to this
/// process's subscribers.
struct Reader {
    client: redis::Client,
    stream: String,
    last: EntryId,
    local: Arc<LocalBus>,
    connected: Arc<AtomicBool>,
    store: PgPool,
    newest_message: i64,
}

impl Reader {
    async fn run(mut self) {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(BLOCK + Duration::from_secs(2)));
        let mut conn: Option<MultiplexedConnection> = None;
        loop {
            if conn.is_none() {
                let connected = self
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await;
                match connected {
                    Ok(mut c) => match self.catch_up(&mut c).await {
                        Ok(()) => conn = Some(c),
                        Err(e) => {
                            self.lost(&e).await;
                            continue;
                        }
                    },
                    Err(e) => {
                        self.lost(&e).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else {
                continue;
            };
            let reply = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(self.last.to_string())
                .query_async::<Value>(c)
                .await;
            match reply {
                Ok(reply) => {
                    self.connected.store(true, Ordering::Relaxed);
                    for (id, payload) in read_entries(reply) {
                        self.last = id;
                        if let Some(payload) = payload {
                            self.relay(&payload).await;
                        }
                    }
                }
                Err(e) => {
                    conn = None;
                    self.lost(&e).await;
                }
            }
        }
    }

    async fn lost(&self, e: &redis::RedisError) {
        if self.connected.swap(false, Ordering::Relaxed) {
            tracing::error!(error = %e, "event bus lost its Redis connection; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    /// Back after an absence: when the stream no longer holds the entry after the last one
    /// read, what was trimmed is gone from it, so the messages stored meanwhile are read from
    /// the messages table and relayed (sockets drop those they already have, by `seq`).
    async fn catch_up(&mut self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let oldest = oldest_entry(conn, &self.stream).await?;
        let trimmed = self.last != EntryId(0, 0) && oldest.is_some_and(|o| o > self.last);
        if trimmed {
            let since = self.last.time().max(Utc::now() - MAX_RECOVERY) - RECOVERY_SLACK;
            let above = self.newest_message - ID_SLACK;
            match recover_messages(&self.store, since, above).await {
                Ok(messages) => {
                    tracing::warn!(
                        messages = messages.len(),
                        "event bus was away longer than the stream keeps; relayed the \
                         messages stored meanwhile"
                    );
                    for message in messages {
                        self.newest_message = self.newest_message.max(message.id.0);
                        let _ = self.local.publish(Event::MessagePosted(message)).await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot recover missed messages"),
            }
        } else if !self.connected.load(Ordering::Relaxed) {
            tracing::info!("event bus reading its Redis stream again, from where it was");
        }
        Ok(())
    }

    async fn relay(&mut self, payload: &str) {
        match wire::decode_all(payload) {
            Ok(events) => {
                for event in events {
                    if let Event::MessagePosted(m) = &event {
                        self.newest_message = self.newest_message.max(m.id.0);
                        metrics::histogram!("parley_bus_lag_seconds")
                            .record(crate::adapters::metrics::seconds_since(m.created_at));
                    }
                    let _ = self.local.publish(event).await;
                }
            }
            Err(e) => tracing::error!(error = ?e, "undecodable bus event"),
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: Event) -> Result<()> {
        self.add(wire::encode(&event)).await
    }

    /// One stream entry for the whole batch, so it arrives together and in order.
    async fn publish_all(&self, events: Vec<Event>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let encoded: Vec<String> = events.iter().map(wire::encode).collect();
        self.add(wire::encode_array(encoded.iter().map(String::as_str)))
            .await
    }

    fn subscribe(&self) -> EventStream {
        self.local.subscribe()
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_order_by_time_then_sequence() {
        let a = EntryId::parse("1700000000000-5").unwrap();
        let b = EntryId::parse("1700000000001-0").unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "1700000000000-5");
        assert_eq!(a.time().timestamp_millis(), 1_700_000_000_000);
        assert_eq!(EntryId::parse("nonsense"), None);
    }

    #[test]
    fn an_xread_reply_gives_each_entry_and_its_payload() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let entry = |id: &str, payload: &str| {
            Value::Array(vec![bulk(id), Value::Array(vec![bulk("e"), bulk(payload)])])
        };
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("parley:events"),
            Value::Array(vec![entry("1-0", "{\"a\":1}"), entry("1-1", "[]")]),
        ])]);
        let got = read_entries(reply);
        assert_eq!(
            got,
            vec![
                (EntryId(1, 0), Some("{\"a\":1}".to_owned())),
                (EntryId(1, 1), Some("[]".to_owned()))
            ]
        );
        assert!(read_entries(Value::Nil).is_empty(), "a read that timed out");
    }
}
