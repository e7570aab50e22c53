//! Rate limits on the HTTP surface, on salvo's rate limiter: requests per address and per
//! user, registrations per address, and one budget per user for what they send (socket
//! frames and messages posted over HTTP alike). A refusal is 429 `rate_limited` with
//! `Retry-After` (or, on a socket, an `error` event with that code). How many is
//! configuration; each limit set to 0 is off.
//!
//! With Redis configured, the windows of requests and registrations are counted there, so
//! that a limit holds across every instance; otherwise each instance counts its own. The
//! send budget is always counted per instance: a frame must not wait on a round trip.

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
/// key `issue` gives a request; counted where every instance counts when `shared` is there,
/// else in this process.
fn limiter<K, I>(
    name: &'static str,
    shared: Option<&Arc<dyn RateWindows>>,
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

/// Windows of one limit counted where every instance counts the same requests.
struct SharedWindows<K> {
    name: &'static str,
    windows: Arc<dyn RateWindows>,
    key: PhantomData<fn() -> K>,
}

impl<K> SharedWindows<K> {
    fn new(name: &'static str, windows: Arc<dyn RateWindows>) -> Self {
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

    /// Counts the request in the shared windows. When they cannot be reached the request
    /// passes: a limit that cannot be counted is not worth refusing everyone for.
    async fn verify_guard(
        &self,
        key: K,
        _: &SharedWindow,
        quota: &BasicQuota,
    ) -> Result<RateLimitState<SharedWindow>, Infallible> {
        let period =
            Duration::from_millis(u64::try_from(quota.period.whole_milliseconds()).unwrap_or(0));
        Ok(
            match self.windows.hit(self.name, &key.to_string(), period).await {
                Ok(window) => RateLimitState {
                    allowed: window.count <= quota.limit as u64,
                    guard: SharedWindow(Some(window)),
                },
                Err(e) => {
                    tracing::warn!(error = ?e, limit = self.name, "rate limit not counted");
                    RateLimitState {
                        allowed: true,
                        guard: SharedWindow(None),
                    }
                }
            },
        )
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

/// A window as it was counted, for the limiter's headers; `None` when it was not counted.
#[derive(Debug, Clone, Default)]
struct SharedWindow(Option<Window>);

impl RateGuard for SharedWindow {
    type Quota = BasicQuota;

    /// Counting happens in the store; nothing is left to verify here.
    async fn verify(&mut self, _: &BasicQuota) -> bool {
        true
    }

    async fn remaining(&self, quota: &BasicQuota) -> usize {
        let used = self
            .0
            .map_or(0, |w| usize::try_from(w.count).unwrap_or(usize::MAX));
        quota.limit.saturating_sub(used)
    }

    async fn reset(&self, quota: &BasicQuota) -> i64 {
        self.0.map_or_else(
            || chrono::Utc::now().timestamp() + quota.period.whole_seconds(),
            |w| w.reset,
        )
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
