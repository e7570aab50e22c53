//! Presence counted in this process: right for one instance, or for several that do not need
//! to agree on who is online.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::UserId;
use crate::domain::error::Result;
use crate::ports::PresenceTracker;

/// A tracker shared by instances holds a lease for its own, which it must renew.
#[async_trait]
pub(crate) trait Lease: Send + Sync + 'static {
    /// Extends this instance's lease, taking a new one (and counting its sockets again) when
    /// the others had expired it.
    async fn renew(&self) -> Result<()>;
}

/// Renews `tracker`'s lease every `every`, for as long as the tracker lives.
pub(crate) async fn keep_renewing<T: Lease>(tracker: Weak<T>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(tracker) = tracker.upgrade() else {
            return;
        };
        if let Err(e) = tracker.renew().await {
            tracing::error!(error = ?e, "cannot renew this instance's presence lease");
        }
    }
}

/// Counts the open sockets of each user in this process.
#[derive(Debug, Default)]
pub struct LocalPresence {
    sockets: Mutex<HashMap<UserId, usize>>,
}

impl LocalPresence {
    pub fn new() -> Self {
        Self::default()
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, usize>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl PresenceTracker for LocalPresence {
    async fn connect(&self, user: UserId) -> Result<bool> {
        let mut sockets = self.sockets();
        let n = sockets.entry(user).or_insert(0);
        *n += 1;
        Ok(*n == 1)
    }

    async fn disconnect(&self, user: UserId) -> Result<bool> {
        let mut sockets = self.sockets();
        Ok(match sockets.get_mut(&user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                sockets.remove(&user);
                true
            }
            None => false,
        })
    }

    async fn online_among(&self, users: &[UserId]) -> Result<HashSet<UserId>> {
        let sockets = self.sockets();
        Ok(users
            .iter()
            .copied()
            .filter(|u| sockets.contains_key(u))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_tab_keeps_the_user_online() {
        let p = LocalPresence::new();
        let (ann, bob) = (UserId(1), UserId(2));
        assert!(p.connect(ann).await.unwrap());
        assert!(!p.connect(ann).await.unwrap());
        assert!(!p.disconnect(ann).await.unwrap());
        assert_eq!(
            p.online_among(&[ann, bob]).await.unwrap(),
            HashSet::from([ann])
        );
        assert!(p.disconnect(ann).await.unwrap());
        assert!(p.online_among(&[ann]).await.unwrap().is_empty());
        assert!(
            !p.disconnect(ann).await.unwrap(),
            "an unknown disconnect changes nothing"
        );
    }
}
