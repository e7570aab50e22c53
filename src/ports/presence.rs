//! Who is online, counted wherever the sockets are held.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::domain::UserId;
use crate::domain::error::Result;

/// Counts the open sockets of each user, so that a second tab closing does not mark its user
/// offline. The in-process adapter counts this process's sockets; a shared one lets several
/// instances count together.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PresenceTracker: Send + Sync + 'static {
    /// Records a socket of `user` opening; true when it is the user's first.
    ///
    /// # Errors
    /// `Unexpected` when a shared tracker cannot be reached.
    async fn connect(&self, user: UserId) -> Result<bool>;

    /// Records a socket of `user` closing; true when it was the user's last. A close without
    /// an open changes nothing and returns false.
    ///
    /// # Errors
    /// `Unexpected` when a shared tracker cannot be reached.
    async fn disconnect(&self, user: UserId) -> Result<bool>;

    /// Which of `users` have a socket open.
    ///
    /// # Errors
    /// `Unexpected` when a shared tracker cannot be reached.
    async fn online_among(&self, users: &[UserId]) -> Result<HashSet<UserId>>;

    /// Forgets the sockets of instances that stopped without a goodbye (their lease ran out)
    /// and returns the users who held sockets only there: they are offline now. A tracker
    /// that spans one process has nothing to expire; the default returns nobody.
    ///
    /// # Errors
    /// `Unexpected` when a shared tracker cannot be reached.
    async fn expire_dead(&self) -> Result<Vec<UserId>> {
        Ok(Vec::new())
    }
}
