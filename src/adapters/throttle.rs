//! Failed logins counted, and password hashes admitted, in this process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::error::Result;
use crate::ports::{FailureKey, Failures, HashAdmission, HashPermit, LoginFailures};

/// Failure counts per key, kept in memory; windows that have closed are forgotten as new
/// failures come in, so the map holds only keys failing now.
#[derive(Debug, Default)]
pub struct LocalLoginFailures {
    failures: Mutex<HashMap<FailureKey, Failures>>,
}

impl LocalLoginFailures {
    pub fn new() -> Self {
        Self::default()
    }

    fn failures(&self) -> MutexGuard<'_, HashMap<FailureKey, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl LoginFailures for LocalLoginFailures {
    async fn get(&self, key: &FailureKey, now: DateTime<Utc>) -> Result<Option<Failures>> {
        Ok(self.failures().get(key).copied().filter(|f| now < f.until))
    }

    async fn add(&self, key: &FailureKey, now: DateTime<Utc>, window: Duration) -> Result<()> {
        let mut failures = self.failures();
        failures.retain(|_, f| now < f.until);
        failures
            .entry(key.clone())
            .and_modify(|f| {
                f.count += 1;
                f.last = now;
            })
            .or_insert(Failures {
                count: 1,
                last: now,
                until: now + window,
            });
        Ok(())
    }

    async fn clear(&self, key: &FailureKey) -> Result<()> {
        self.failures().remove(key);
        Ok(())
    }
}

/// Hashes admitted in this process: a count per address and one in all.
#[derive(Debug, Default, Clone)]
pub struct LocalHashAdmission {
    held: Arc<Mutex<Held>>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl LocalHashAdmission {
    pub fn new() -> Self {
        Self::default()
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Gives back its place when dropped.
struct Place {
    held: Arc<Mutex<Held>>,
    address: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total -= 1;
        if let Some(n) = held.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&self.address);
            }
        }
    }
}

impl HashAdmission for LocalHashAdmission {
    fn admit(&self, address: IpAddr, per_address: usize, total: usize) -> Option<HashPermit> {
        let mut held = self.held();
        let mine = held.by_address.get(&address).copied().unwrap_or(0);
        if (per_address > 0 && mine >= per_address) || (total > 0 && held.total >= total) {
            return None;
        }
        held.total += 1;
        *held.by_address.entry(address).or_default() += 1;
        Some(HashPermit::new(Place {
            held: self.held.clone(),
            address,
        }))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ports::Account;

    fn ann_from(last: u8) -> FailureKey {
        FailureKey::Attempt {
            address: IpAddr::from([127, 0, 0, last]),
            account: Account::Unknown("ann".into()),
        }
    }

    #[tokio::test]
    async fn failures_count_within_their_window_and_are_forgotten_after_it() {
        let f = LocalLoginFailures::new();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let window = Duration::minutes(15);
        let ann = ann_from(2);
        assert_eq!(f.get(&ann, start).await.unwrap(), None);
        f.add(&ann, start, window).await.unwrap();
        let second = start + Duration::minutes(5);
        f.add(&ann, second, window).await.unwrap();
        let until = start + window;
        assert_eq!(
            f.get(&ann, start + Duration::minutes(6)).await.unwrap(),
            Some(Failures {
                count: 2,
                last: second,
                until
            }),
            "the window opens at the first failure"
        );
        assert_eq!(f.get(&ann_from(3), start).await.unwrap(), None, "per key");
        let address = FailureKey::Address(IpAddr::from([127, 0, 0, 2]));
        assert_eq!(f.get(&address, start).await.unwrap(), None, "per key");
        assert_eq!(f.get(&ann, until).await.unwrap(), None, "closed");
        f.add(&ann, until, window).await.unwrap();
        assert_eq!(
            f.get(&ann, until).await.unwrap(),
            Some(Failures {
                count: 1,
                last: until,
                until: until + window
            }),
            "a new window after the last one closed"
        );
        f.clear(&ann).await.unwrap();
        assert_eq!(f.get(&ann, until).await.unwrap(), None);
    }

    #[test]
    fn admission_caps_each_address_and_the_total_and_frees_places_on_drop() {
        let gate = LocalHashAdmission::new();
        let a = IpAddr::from([127, 0, 0, 2]);
        let b = IpAddr::from([127, 0, 0, 3]);
        let c = IpAddr::from([127, 0, 0, 4]);
        let first = gate.admit(a, 2, 3).expect("a's first");
        let second = gate.admit(a, 2, 3).expect("a's second");
        assert!(gate.admit(a, 2, 3).is_none(), "a holds its two");
        let third = gate.admit(b, 2, 3).expect("b is another address");
        assert!(gate.admit(c, 2, 3).is_none(), "three in all");
        drop(first);
        assert!(gate.admit(c, 2, 3).is_some(), "a place was freed");
        drop((second, third));
        let many: Vec<_> = (0..50).map(|_| gate.admit(a, 0, 0)).collect();
        assert!(many.iter().all(Option::is_some), "0 is no limit");
    }
}
