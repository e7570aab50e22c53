//! Failed logins counted in this process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::error::Result;
use crate::ports::{Failures, LoginFailures};

/// Failure counts per login name, kept in memory; windows that have closed are forgotten as
/// new failures come in, so the map holds only logins failing now.
#[derive(Debug, Default)]
pub struct LocalLoginFailures {
    failures: Mutex<HashMap<String, Failures>>,
}

impl LocalLoginFailures {
    pub fn new() -> Self {
        Self::default()
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl LoginFailures for LocalLoginFailures {
    async fn get(&self, login: &str, now: DateTime<Utc>) -> Result<Option<Failures>> {
        Ok(self
            .failures()
            .get(login)
            .copied()
            .filter(|f| now < f.until))
    }

    async fn add(&self, login: &str, now: DateTime<Utc>, window: Duration) -> Result<()> {
        let mut failures = self.failures();
        failures.retain(|_, f| now < f.until);
        failures
            .entry(login.to_owned())
            .and_modify(|f| f.count += 1)
            .or_insert(Failures {
                count: 1,
                until: now + window,
            });
        Ok(())
    }

    async fn clear(&self, login: &str) -> Result<()> {
        self.failures().remove(login);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[tokio::test]
    async fn failures_count_within_their_window_and_are_forgotten_after_it() {
        let f = LocalLoginFailures::new();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let window = Duration::minutes(15);
        assert_eq!(f.get("ann", start).await.unwrap(), None);
        f.add("ann", start, window).await.unwrap();
        f.add("ann", start + Duration::minutes(5), window)
            .await
            .unwrap();
        let until = start + window;
        assert_eq!(
            f.get("ann", start + Duration::minutes(6)).await.unwrap(),
            Some(Failures { count: 2, until }),
            "the window opens at the first failure"
        );
        assert_eq!(f.get("bob", start).await.unwrap(), None, "per login");
        assert_eq!(f.get("ann", until).await.unwrap(), None, "closed");
        f.add("ann", until, window).await.unwrap();
        assert_eq!(
            f.get("ann", until).await.unwrap(),
            Some(Failures {
                count: 1,
                until: until + window
            }),
            "a new window after the last one closed"
        );
        f.clear("ann").await.unwrap();
        assert_eq!(f.get("ann", until).await.unwrap(), None);
    }
}
