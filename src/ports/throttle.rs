//! Failed logins, counted wherever logins are served.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::error::Result;

/// The failures counted for one login name within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// How many attempts failed since the window opened.
    pub count: u32,
    /// When the window closes and the count is forgotten.
    pub until: DateTime<Utc>,
}

/// Counts failed logins per login name over a window that opens at the first failure. The
/// service decides how many are too many; this only counts. Keys arrive already normalized.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LoginFailures: Send + Sync + 'static {
    /// The failures of `login` whose window is still open at `now`, if any.
    ///
    /// # Errors
    /// `Unexpected` when a shared counter cannot be reached.
    async fn get(&self, login: &str, now: DateTime<Utc>) -> Result<Option<Failures>>;

    /// Counts one more failure of `login` at `now`; a window of `window` opens with the first
    /// failure after the last one closed. Windows already closed may be forgotten.
    ///
    /// # Errors
    /// `Unexpected` when a shared counter cannot be reached.
    async fn add(&self, login: &str, now: DateTime<Utc>, window: Duration) -> Result<()>;

    /// Forgets the failures of `login`.
    ///
    /// # Errors
    /// `Unexpected` when a shared counter cannot be reached.
    async fn clear(&self, login: &str) -> Result<()>;
}
