//! What slows down password guessing: failed logins, counted wherever logins are served, and
//! the admission of password hashes, which cost real CPU time each.

use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::UserId;
use crate::domain::error::Result;

/// The account a login tries: the user it names, whether by username or email, or, when it
/// names nobody, the login name itself, case-folded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Account {
    User(UserId),
    Unknown(String),
}

/// What failed logins are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureKey {
    /// One address trying one account.
    Attempt { address: IpAddr, account: Account },
    /// One address, whichever accounts it tries.
    Address(IpAddr),
}

/// The key as text, the same on every instance, for a counter kept outside the process:
/// `198.51.100.7` for an address, `198.51.100.7:u:42` for an address trying user 42 and
/// `198.51.100.7:n:name` for one trying a name that is nobody's. An address never holds an
/// `n` or a `u`, so no two keys read alike.
impl std::fmt::Display for FailureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(address) => write!(f, "{address}"),
            Self::Attempt {
                address,
                account: Account::User(user),
            } => write!(f, "{address}:u:{}", user.0),
            Self::Attempt {
                address,
                account: Account::Unknown(name),
            } => write!(f, "{address}:n:{name}"),
        }
    }
}

/// The failures counted under one key within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// How many attempts failed since the window opened.
    pub count: u32,
    /// When the latest of them failed.
    pub last: DateTime<Utc>,
    /// When the window closes and the count is forgotten.
    pub until: DateTime<Utc>,
}

/// Counts failed logins per key over a window that opens at the first failure. The service
/// decides how many are too many and how long an address waits; this only counts. A shared
/// store (Redis, say) implements it with a counter, a timestamp and an expiry per key, so
/// that every instance counts the same failures.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LoginFailures: Send + Sync + 'static {
    /// The failures under `key` whose window is still open at `now`, if any.
    ///
    /// # Errors
    /// `Unexpected` when a shared counter cannot be reached.
    async fn get(&self, key: &FailureKey, now: DateTime<Utc>) -> Result<Option<Failures>>;

    /// Counts one more failure under `key` at `now`; a window of `window` opens with the
    /// first failure after the last one closed. Windows already closed may be forgotten.
    ///
    /// # Errors
    /// `Unexpected` when a shared counter cannot be reached.
    async fn add(&self, key: &FailureKey, now: DateTime<Utc>, window: Duration) -> Result<()>;

    /// Forgets the failures under `key`.
    ///
    /// # Errors
    /// `Unexpected` when a shared counter cannot be reached.
    async fn clear(&self, key: &FailureKey) -> Result<()>;
}

/// One window of a rate limit, after a request was counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Requests counted in this window, the latest included.
    pub count: u64,
    /// When the window closes, as a Unix time in whole seconds (rounded up).
    pub reset: i64,
}

/// Counts requests in fixed windows, per limit and key, where every instance counts them: the
/// HTTP rate limits hold across instances when one is given. The limiter decides what is too
/// many; this only counts. Instances count locally and add their counts here in batches, so
/// this is called a few times a second per busy key, not once per request.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateWindows: Send + Sync + 'static {
    /// Counts `n` more requests of `key` against the limit named `limit`, in windows of
    /// `period` that open at the first request after the last one closed; returns the window
    /// with every instance's count in it.
    ///
    /// # Errors
    /// `Unexpected` when the shared counter cannot be reached.
    async fn add(
        &self,
        limit: &str,
        key: &str,
        n: u64,
        period: std::time::Duration,
    ) -> Result<Window>;
}

/// A place among the password hashes admitted; the place is free again when this is dropped.
pub struct HashPermit(#[allow(dead_code)] Box<dyn Send + Sync>);

impl HashPermit {
    /// A permit whose place is freed when `guard` is dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self(Box::new(guard))
    }
}

impl std::fmt::Debug for HashPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashPermit")
    }
}

/// Admits password hashes (each tens of milliseconds of CPU) so that one address cannot fill
/// the queue for everyone: a hash waits a bounded time for a place, or is refused, never left
/// to wait behind an unbounded queue. Admission is about this process's CPU, so it is counted
/// per process.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HashAdmission: Send + Sync + 'static {
    /// A permit to hash a password for `address`, once `address` holds fewer than
    /// `per_address` permits and fewer than `total` are held over all addresses; `None` when
    /// no such place frees up within `wait` (at once when `wait` is zero). A limit of 0 is
    /// none.
    async fn admit(
        &self,
        address: IpAddr,
        per_address: usize,
        total: usize,
        wait: std::time::Duration,
    ) -> Option<HashPermit>;
}
