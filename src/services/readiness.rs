//! Whether this instance should be sent traffic: its storage answers and its event bus is
//! connected. Liveness (`/health`) asks nothing of either.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::{EventBus, StorageProbe};

/// The longest a readiness check waits for the storage.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an instance is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The storage did not answer within two seconds, or answered with an error.
    Storage,
    /// The event bus has lost its connection, so events from other instances are missed.
    Bus,
}

/// The readiness check.
#[derive(Clone)]
pub struct Readiness {
    storage: Arc<dyn StorageProbe>,
    bus: Arc<dyn EventBus>,
}

impl Readiness {
    pub fn new(storage: Arc<dyn StorageProbe>, bus: Arc<dyn EventBus>) -> Self {
        Self { storage, bus }
    }

    /// Pings the storage and asks the bus.
    ///
    /// # Errors
    /// What is down, the storage first.
    pub async fn check(&self) -> Result<(), NotReady> {
        match tokio::time::timeout(PING_TIMEOUT, self.storage.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: storage does not answer");
                return Err(NotReady::Storage);
            }
            Err(_) => {
                tracing::warn!("readiness: storage ping timed out");
                return Err(NotReady::Storage);
            }
        }
        if self.bus.is_connected() {
            Ok(())
        } else {
            Err(NotReady::Bus)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Error;
    use crate::ports::{MockEventBus, MockStorageProbe};

    fn readiness(ping_ok: bool, bus_connected: bool) -> Readiness {
        let mut storage = MockStorageProbe::new();
        storage.expect_ping().returning(move || {
            if ping_ok {
                Ok(())
            } else {
                Err(Error::unexpected(anyhow::anyhow!("connection refused")))
            }
        });
        let mut bus = MockEventBus::new();
        bus.expect_is_connected().returning(move || bus_connected);
        Readiness::new(Arc::new(storage), Arc::new(bus))
    }

    #[tokio::test]
    async fn ready_when_storage_answers_and_bus_is_connected() {
        assert_eq!(readiness(true, true).check().await, Ok(()));
    }

    #[tokio::test]
    async fn not_ready_when_storage_fails_or_bus_is_down() {
        assert_eq!(readiness(false, true).check().await, Err(NotReady::Storage));
        assert_eq!(readiness(true, false).check().await, Err(NotReady::Bus));
    }
}
