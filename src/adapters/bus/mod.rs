//! Event buses. [`LocalBus`] carries events within one process; [`PgBus`] carries them
//! between the Parley instances that share a PostgreSQL database (the Redis bus is with the
//! other Redis adapters, in `adapters::redis`).

mod postgres;
pub(crate) mod wire;

pub use postgres::PgBus;
pub(crate) use postgres::{ID_SLACK, recover as recover_messages};

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::domain::Event;
use crate::domain::error::Result;
use crate::ports::{EventBus, EventStream};

/// An in-process bus over a tokio broadcast channel. A subscriber that falls more than
/// `capacity` events behind loses the oldest ones and is told so in the log; the socket
/// registry, its one subscriber, only moves events into per-socket queues, so it keeps up.
pub struct LocalBus {
    tx: broadcast::Sender<Event>,
}

impl LocalBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self { tx }
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new(8192)
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, event: Event) -> Result<()> {
        // No subscriber is not an error: nobody is connected to hear it.
        let _ = self.tx.send(event);
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        let rx = self.tx.subscribe();
        futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::error!(missed = n, "event subscriber fell behind; events lost");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}
