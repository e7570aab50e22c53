//! Failed logins counted, and password hashes admitted, in this process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

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

/// Hashes admitted in this process: a count per address and one in all. A hash that finds no
/// place waits for one to be given back, up to the wait it was allowed.
#[derive(Debug, Default, Clone)]
pub struct LocalHashAdmission {
    held: Arc<Mutex<Held>>,
    freed: Arc<Notify>,
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

    fn try_admit(&self, address: IpAddr, per_address: usize, total: usize) -> Option<HashPermit> {
        let mut held = self.held();
        let mine = held.by_address.get(&address).copied().unwrap_or(0);
        if (per_address > 0 && mine >= per_address) || (total > 0 && held.total >= total) {
            return None;
        }
        held.total += 1;
        *held.by_address.entry(address).or_default() += 1;
        Some(HashPermit::new(Place {
            held: self.held.clone(),
            freed: self.freed.clone(),
            address,
        }))
    }
}

/// Gives back its place when dropped, and wakes whoever waits for one.
struct Place {
    held: Arc<Mutex<Held>>,
    freed: Arc<Notify>,
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
        drop(held);
        self.freed.notify_waiters();
    }
}

#[async_trait]
impl HashAdmission for LocalHashAdmission {
    async fn admit(
        &self,
        address: IpAddr,
        per_address: usize,
        total: usize,
        wait: std::time::Duration,
    ) -> Option<HashPermit> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so that a place given back in between still wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(permit) = self.try_admit(address, per_address, total) {
                return Some(permit);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT_ONCE: std::time::Duration = std::time::Duration::ZERO;

    #[tokio::test]
    async fn admission_caps_each_address_and_the_total_and_frees_places_on_drop() {
        let gate = LocalHashAdmission::new();
        let a = IpAddr::from([127, 0, 0, 2]);
        let b = IpAddr::from([127, 0, 0, 3]);
        let c = IpAddr::from([127, 0, 0, 4]);
        let admit = |address, per, total| gate.admit(address, per, total, AT_ONCE);
        let first = admit(a, 2, 3).await.expect("a's first");
        let second = admit(a, 2, 3).await.expect("a's second");
        assert!(admit(a, 2, 3).await.is_none(), "a holds its two");
        let third = admit(b, 2, 3).await.expect("b is another address");
        assert!(admit(c, 2, 3).await.is_none(), "three in all");
        drop(first);
        assert!(admit(c, 2, 3).await.is_some(), "a place was freed");
        drop((second, third));
        let mut many = Vec::new();
        for _ in 0..50 {
            many.push(admit(a, 0, 0).await.expect("0 is no limit"));
        }
    }

    #[tokio::test]
    async fn a_hash_waits_for_a_place_up_to_its_wait_and_no_longer() {
        let gate = LocalHashAdmission::new();
        let a = IpAddr::from([127, 0, 0, 2]);
        let wait = std::time::Duration::from_millis(300);
        let held = gate.admit(a, 1, 0, AT_ONCE).await.expect("the first");
        let started = Instant::now();
        assert!(gate.admit(a, 1, 0, wait).await.is_none(), "no place freed");
        assert!(started.elapsed() >= wait, "it waited the whole wait");
        let long = std::time::Duration::from_secs(30);
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit(a, 1, 0, long).await.map(|_| Instant::now()) }
        });
        tokio::time::sleep(wait).await;
        let freed_at = Instant::now();
        drop(held);
        let admitted_at = waiting
            .await
            .unwrap()
            .expect("admitted when the place was given back");
        assert!(
            admitted_at.duration_since(freed_at) < long / 10,
            "at once, not at the end of its wait"
        );
    }
}
