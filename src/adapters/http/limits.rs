//! Rate limits on the HTTP surface, on salvo's rate limiter: requests per address and per
//! user, registrations per address, and one budget per user for what they send (socket
//! frames and messages posted over HTTP alike). A refusal is 429 `rate_limited` with
//! `Retry-After` (or, on a socket, an `error` event with that code). How many is
//! configuration; each limit set to 0 is off.
//!
//! When instances share a store of windows (Redis, or PostgreSQL), the windows of requests
//! and registrations are counted with every instance: each counts here and adds its counts
//! there five times a second ([`SyncedWindows`]), so a limit holds across instances, give or
//! take what the others counted in the last 200 ms, and no request waits on a round trip.
//! Otherwise (SQLite, memory) the one instance counts alone. The send budget is always
//! counted per instance.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt::Display;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use salvo::http::HeaderMap;
use salvo::prelude::*;
use salvo::rate_limiter::{
    BasicQuota, FixedGuard, MokaStore, RateGuard, RateIssuer, RateLimitState, RateLimiter,
    RateStore,
};

use super::HttpState;
use super::auth::{client, token};
use crate::domain::UserId;
use crate::ports::{RateWindows, Window};

/// What the limits are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpLimits {
    /// Requests one user (by the token they carry) may make per minute; 0 for no limit.
    pub requests_per_minute_per_user: u32,
    /// Requests one client address may make per minute; 0 for no limit.
    pub requests_per_minute_per_address: u32,
    /// `POST /auth/register` requests one address may make per hour; 0 for no limit.
    pub registrations_per_address_per_hour: u32,
    /// Frames and HTTP message posts one user may send per second, together, with bursts of
    /// three times as many; 0 for no limit.
    pub sends_per_second_per_user: u32,
}

/// Forgets a limiter's count of a key idle this long (a count past its window is worth
/// nothing anyway); and never holds more keys than this.
const IDLE: Duration = Duration::from_secs(60 * 60);
const MAX_KEYS: u64 = 100_000;

/// The seconds a client refused by one of salvo's limiters is to wait: until the window it
/// is counted in resets, as the limiter's `X-RateLimit-Reset` (a Unix time) says.
pub fn retry_after(headers: &HeaderMap) -> u64 {
    let reset = headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let now = chrono::Utc::now().timestamp();
    reset.map_or(1, |r| u64::try_from(r - now).unwrap_or(0).max(1))
}

/// A fixed-window limiter, named `name`, of `limit` requests per `quota`'s period for the
/// key `issue` gives a request; counted with every instance when `shared` is there, else in
/// this process.
fn limiter<K, I>(
    name: &'static str,
    shared: Option<&Arc<SyncedWindows>>,
    limit: u32,
    quota: fn(usize) -> BasicQuota,
    issue: I,
    skip: impl Fn(&mut Request, &Depot) -> bool + Send + Sync + 'static,
) -> Arc<dyn Handler>
where
    K: Hash + Eq + Display + Send + Sync + Clone + 'static,
    I: RateIssuer<Key = K>,
{
    let quota = quota(limit as usize);
    match shared {
        Some(windows) => Arc::new(
            RateLimiter::new(
                SharedWindow::default(),
                SharedWindows::<K>::new(name, windows.clone()),
                issue,
                quota,
            )
            .add_headers(true)
            .skipper(skip),
        ),
        None => Arc::new(
            RateLimiter::new(
                FixedGuard::new(),
                MokaStore::<K, FixedGuard>::with_capacity_and_time_to_idle(MAX_KEYS, IDLE),
                issue,
                quota,
            )
            .add_headers(true)
            .skipper(skip),
        ),
    }
}

/// How often the counts of this instance are added to the shared windows, and the others'
/// learned: how far behind the others an instance's view of a window may be.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Windows counted here first and added to the shared windows in batches, so that a request
/// never waits on a round trip: an instance decides on its own count plus every instance's
/// count as of its last flush, at most [`FLUSH_EVERY`] old. Every request counts, refused
/// ones too.
pub struct SyncedWindows {
    shared: Arc<dyn RateWindows>,
    counts: std::sync::Mutex<std::collections::HashMap<(&'static str, String), Count>>,
}

/// One window of one key, as this instance knows it.
#[derive(Debug, Clone, Copy)]
struct Count {
    period: Duration,
    /// The limit's quota: a window past half of it is refreshed at every flush even with
    /// nothing to add, so that an instance learns when the others spend the rest.
    quota: u64,
    /// Every instance's count at the last flush, this instance's flushed requests included.
    shared: u64,
    /// Requests counted here and being added now.
    in_flight: u64,
    /// Requests counted here since.
    pending: u64,
    /// When the window closes, here and as a Unix time in whole seconds.
    closes: Instant,
    reset: i64,
}

impl Count {
    fn open(now: Instant, period: Duration, quota: u64) -> Self {
        Self {
            period,
            quota,
            shared: 0,
            in_flight: 0,
            pending: 0,
            closes: now + period,
            reset: chrono::Utc::now().timestamp() + i64::try_from(period.as_secs()).unwrap_or(0),
        }
    }

    fn seen(&self) -> u64 {
        self.shared + self.in_flight + self.pending
    }
}

impl SyncedWindows {
    /// Counts over `shared`, flushing every [`FLUSH_EVERY`] while the returned value lives.
    pub fn start(shared: Arc<dyn RateWindows>) -> Arc<Self> {
        let windows = Arc::new(Self {
            shared,
            counts: std::sync::Mutex::default(),
        });
        let flushing = Arc::downgrade(&windows);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                let Some(windows) = flushing.upgrade() else {
                    return;
                };
                windows.flush().await;
            }
        });
        windows
    }

    fn counts(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(&'static str, String), Count>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one request of `key` against `limit`, of `quota` requests per `period`: the
    /// window with every count known.
    fn count(&self, limit: &'static str, key: String, period: Duration, quota: u64) -> Window {
        let now = Instant::now();
        let mut counts = self.counts();
        let count = counts
            .entry((limit, key))
            .or_insert_with(|| Count::open(now, period, quota));
        if now >= count.closes {
            // The shared window has closed too; what is pending opens the next one.
            let pending = count.pending + count.in_flight;
            *count = Count {
                pending,
                ..Count::open(now, period, quota)
            };
        }
        count.pending += 1;
        Window {
            count: count.seen(),
            reset: count.reset,
        }
    }

    /// Adds what was counted here since the last flush to the shared windows, and learns
    /// every instance's counts of those windows and of the ones past half their quota;
    /// forgets windows that closed with nothing left to add.
    pub async fn flush(&self) {
        let now = Instant::now();
        let batch: Vec<((&'static str, String), u64, Duration)> = {
            let mut counts = self.counts();
            counts.retain(|_, c| c.pending > 0 || c.in_flight > 0 || now < c.closes);
            counts
                .iter_mut()
                .filter(|(_, c)| c.pending > 0 || (c.in_flight == 0 && c.seen() * 2 >= c.quota))
                .map(|(key, c)| {
                    c.in_flight += c.pending;
                    let n = std::mem::take(&mut c.pending);
                    (key.clone(), n, c.period)
                })
                .collect()
        };
        let added = futures_util::future::join_all(batch.into_iter().map(|(key, n, period)| {
            let shared = self.shared.clone();
            async move {
                let window = shared.add(key.0, &key.1, n, period).await;
                (key, n, window)
            }
        }))
        .await;
        let mut counts = self.counts();
        for (key, n, window) in added {
            let Some(count) = counts.get_mut(&key) else {
                continue;
            };
            count.in_flight -= n.min(count.in_flight);
            match window {
                Ok(window) => {
                    count.shared = window.count;
                    count.reset = window.reset;
                    let left_ms = window.reset * 1000 - chrono::Utc::now().timestamp_millis();
                    count.closes =
                        Instant::now() + Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
                }
                Err(e) => {
                    // Counted again at the next flush.
                    count.pending += n;
                    tracing::warn!(error = ?e, limit = key.0, "rate limit counts not shared");
                }
            }
        }
    }
}

/// Windows of one limit counted with every instance.
struct SharedWindows<K> {
    name: &'static str,
    windows: Arc<SyncedWindows>,
    key: PhantomData<fn() -> K>,
}

impl<K> SharedWindows<K> {
    fn new(name: &'static str, windows: Arc<SyncedWindows>) -> Self {
        Self {
            name,
            windows,
            key: PhantomData,
        }
    }
}

impl<K> RateStore for SharedWindows<K>
where
    K: Hash + Eq + Display + Send + Sync + Clone + 'static,
{
    type Error = Infallible;
    type Key = K;
    type Guard = SharedWindow;

    /// Counts the request here, against every instance's count as last flushed.
    async fn verify_guard(
        &self,
        key: K,
        _: &SharedWindow,
        quota: &BasicQuota,
    ) -> Result<RateLimitState<SharedWindow>, Infallible> {
        let period =
            Duration::from_millis(u64::try_from(quota.period.whole_milliseconds()).unwrap_or(0));
        let window = self
            .windows
            .count(self.name, key.to_string(), period, quota.limit as u64);
        Ok(RateLimitState {
            allowed: window.count <= quota.limit as u64,
            guard: SharedWindow(window),
        })
    }

    async fn load_guard<Q>(&self, _: &Q, refer: &SharedWindow) -> Result<SharedWindow, Infallible>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Sync,
    {
        Ok(refer.clone())
    }

    async fn save_guard(&self, _: K, _: SharedWindow) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A window as it was counted, for the limiter's headers (the limiter's prototype is empty).
#[derive(Debug, Clone)]
struct SharedWindow(Window);

impl Default for SharedWindow {
    fn default() -> Self {
        Self(Window { count: 0, reset: 0 })
    }
}

impl RateGuard for SharedWindow {
    type Quota = BasicQuota;

    /// Counting happens in the store; nothing is left to verify here.
    async fn verify(&mut self, _: &BasicQuota) -> bool {
        true
    }

    async fn remaining(&self, quota: &BasicQuota) -> usize {
        let used = usize::try_from(self.0.count).unwrap_or(usize::MAX);
        quota.limit.saturating_sub(used)
    }

    async fn reset(&self, _: &BasicQuota) -> i64 {
        self.0.reset
    }

    async fn limit(&self, quota: &BasicQuota) -> usize {
        quota.limit
    }
}

/// The limiters every request passes: per address, then per user for requests carrying one
/// of our tokens. `/health` is exempt, so that a load balancer's checks are never refused.
pub fn request_limiters(state: &Arc<HttpState>) -> Vec<Arc<dyn Handler>> {
    let limits = state.limits;
    let shared = state.shared_windows.as_ref();
    let mut hoops: Vec<Arc<dyn Handler>> = Vec::new();
    if limits.requests_per_minute_per_address > 0 {
        let state = state.clone();
        hoops.push(limiter(
            "address",
            shared,
            limits.requests_per_minute_per_address,
            BasicQuota::per_minute,
            move |req: &mut Request, _: &Depot| Some(client(&state, req).address),
            |req: &mut Request, _: &Depot| is_health(req),
        ));
    }
    if limits.requests_per_minute_per_user > 0 {
        let user = {
            let state = state.clone();
            move |req: &mut Request| -> Option<UserId> {
                let (token, _) = token(req, true)?;
                state.auth.claimed_user(&token)
            }
        };
        let anonymous = {
            let user = user.clone();
            move |req: &mut Request, _: &Depot| is_health(req) || user(req).is_none()
        };
        hoops.push(limiter(
            "user",
            shared,
            limits.requests_per_minute_per_user,
            BasicQuota::per_minute,
            move |req: &mut Request, _: &Depot| user(req),
            anonymous,
        ));
    }
    hoops
}

fn is_health(req: &Request) -> bool {
    req.uri().path() == "/health"
}

/// The limiter of `POST /auth/register` per address, when there is one. Every attempt
/// counts, refused ones too, so that probing which names and emails are taken is as slow as
/// registering.
pub fn registration_limiter(state: &Arc<HttpState>) -> Option<Arc<dyn Handler>> {
    let per_hour = state.limits.registrations_per_address_per_hour;
    (per_hour > 0).then(|| {
        let shared = state.shared_windows.clone();
        let state = state.clone();
        limiter(
            "registrations",
            shared.as_ref(),
            per_hour,
            BasicQuota::per_hour,
            move |req: &mut Request, _: &Depot| Some(client(&state, req).address),
            |_: &mut Request, _: &Depot| false,
        )
    })
}

/// One budget per user for everything they send, whichever way it arrives: each frame on
/// any of their sockets and each message posted over HTTP takes one unit. Units come back at
/// the configured rate, and a full budget holds three seconds' worth.
pub struct SendBudget {
    quota: Option<BucketQuota>,
    store: MokaStore<UserId, TokenBucket>,
}

impl SendBudget {
    /// `per_second` units a second per user; 0 for no limit.
    pub fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second);
        Self {
            quota: (per_second > 0).then_some(BucketQuota {
                rate,
                burst: rate * 3.0,
            }),
            // A bucket idle for its three seconds is full again: forgetting it loses nothing.
            store: MokaStore::with_capacity_and_time_to_idle(MAX_KEYS, Duration::from_secs(60)),
        }
    }

    /// Takes one unit of `user`'s budget, or says in how many seconds one will be there.
    ///
    /// # Errors
    /// The seconds to wait, at least one, when the budget is spent.
    pub async fn take(&self, user: UserId) -> Result<(), u64> {
        let Some(quota) = &self.quota else {
            return Ok(());
        };
        let Ok(state) = self
            .store
            .verify_guard(user, &TokenBucket::default(), quota)
            .await;
        if state.allowed {
            Ok(())
        } else {
            let now = chrono::Utc::now().timestamp();
            let reset = state.guard.reset(quota).await;
            Err(u64::try_from(reset - now).unwrap_or(0).max(1))
        }
    }
}

/// The quota of a [`TokenBucket`]: `rate` units a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketQuota {
    rate: f64,
    burst: f64,
}

/// A token bucket as a guard of salvo's rate limiter: a request takes a token; tokens come
/// back continuously at the quota's rate. Unlike a window, a client that pauses briefly is
/// served again at once, and refused requests cost nothing.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens left; `None` until the first request, when the bucket starts full.
    tokens: Option<f64>,
    last: Instant,
}

impl Default for TokenBucket {
    fn default() -> Self {
        Self {
            tokens: None,
            last: Instant::now(),
        }
    }
}

impl TokenBucket {
    /// The tokens there are now.
    fn refill(&self, quota: &BucketQuota, now: Instant) -> f64 {
        let saved = self.tokens.unwrap_or(quota.burst);
        let earned = now.duration_since(self.last).as_secs_f64() * quota.rate;
        (saved + earned).min(quota.burst)
    }
}

impl RateGuard for TokenBucket {
    type Quota = BucketQuota;

    async fn verify(&mut self, quota: &BucketQuota) -> bool {
        let now = Instant::now();
        let tokens = self.refill(quota, now);
        self.last = now;
        let allowed = tokens >= 1.0;
        self.tokens = Some(if allowed { tokens - 1.0 } else { tokens });
        allowed
    }

    async fn remaining(&self, quota: &BucketQuota) -> usize {
        self.refill(quota, Instant::now()) as usize
    }

    /// When the next token is there, as a Unix time in whole seconds (rounded up).
    async fn reset(&self, quota: &BucketQuota) -> i64 {
        let missing = (1.0 - self.refill(quota, Instant::now())).max(0.0);
        let wait = (missing / quota.rate).ceil() as i64;
        chrono::Utc::now().timestamp() + wait
    }

    async fn limit(&self, quota: &BucketQuota) -> usize {
        quota.burst as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_budget_holds_three_seconds_worth_per_user_and_refills() {
        let budget = SendBudget::new(2);
        for _ in 0..6 {
            assert_eq!(budget.take(UserId(1)).await, Ok(()));
        }
        assert_eq!(budget.take(UserId(1)).await, Err(1), "spent: wait a second");
        assert_eq!(budget.take(UserId(2)).await, Ok(()), "per user");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(budget.take(UserId(1)).await, Ok(()), "refilled");
    }

    fn synced(shared: crate::ports::MockRateWindows) -> SyncedWindows {
        SyncedWindows {
            shared: Arc::new(shared),
            counts: std::sync::Mutex::default(),
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn synced_windows_count_here_and_learn_every_instances_count_at_each_flush() {
        let mut shared = crate::ports::MockRateWindows::new();
        let reset = chrono::Utc::now().timestamp() + 60;
        // Three requests counted here go out as one addition; seven came from elsewhere.
        shared
            .expect_add()
            .withf(|limit, key, n, period| (limit, key, *n, *period) == ("user", "7", 3, MINUTE))
            .times(1)
            .returning(move |_, _, _, _| Ok(Window { count: 10, reset }));
        let windows = synced(shared);
        for n in 1..=3 {
            let window = windows.count("user", "7".into(), MINUTE, 100);
            assert_eq!(window.count, n, "counted here, with no round trip");
        }
        windows.flush().await;
        let window = windows.count("user", "7".into(), MINUTE, 100);
        assert_eq!(
            window,
            Window { count: 11, reset },
            "every instance's count, and one more"
        );
        let other = windows.count("user", "8".into(), MINUTE, 100);
        assert_eq!(other.count, 1, "per key");
    }

    #[tokio::test]
    async fn a_window_past_half_its_quota_is_read_again_with_nothing_to_add() {
        let mut shared = crate::ports::MockRateWindows::new();
        let reset = chrono::Utc::now().timestamp() + 60;
        let mut seq = mockall::Sequence::new();
        shared
            .expect_add()
            .withf(|_, key, n, _| (key, *n) == ("9", 2))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _, _| Ok(Window { count: 2, reset }));
        // The others spent the rest meanwhile.
        shared
            .expect_add()
            .withf(|_, key, n, _| (key, *n) == ("9", 0))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _, _| Ok(Window { count: 4, reset }));
        let windows = synced(shared);
        for _ in 0..2 {
            windows.count("user", "9".into(), MINUTE, 4);
        }
        windows.flush().await;
        windows.flush().await;
        assert_eq!(
            windows.count("user", "9".into(), MINUTE, 4).count,
            5,
            "over quota"
        );
    }

    #[tokio::test]
    async fn a_budget_of_zero_is_no_limit() {
        let budget = SendBudget::new(0);
        for _ in 0..1000 {
            assert_eq!(budget.take(UserId(1)).await, Ok(()));
        }
    }

    #[test]
    fn retry_after_counts_to_the_reset_and_is_never_zero() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), 1);
        let reset = chrono::Utc::now().timestamp() + 42;
        headers.insert("x-ratelimit-reset", reset.into());
        assert!((41..=42).contains(&retry_after(&headers)));
        headers.insert("x-ratelimit-reset", 5.into());
        assert_eq!(retry_after(&headers), 1);
    }
}
