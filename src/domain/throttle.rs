//! Login throttling: after too many failed attempts on one login name within a window, further
//! attempts are refused until the window has passed, so passwords cannot be guessed at speed.
//! Counted in this process, keyed by the login as typed (case-folded).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Failed-login counts per login name.
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, DateTime<Utc>)>>,
}

impl Default for LoginThrottle {
    /// Ten failures in fifteen minutes.
    fn default() -> Self {
        Self::new(10, Duration::minutes(15))
    }
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(login: &str) -> String {
        login.trim().to_lowercase()
    }

    /// When `login` may be tried again, if it is locked now.
    pub fn locked_until(&self, login: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .get(&Self::key(login))
            .filter(|(n, first)| *n >= self.max_failures && now < *first + self.window)
            .map(|(_, first)| *first + self.window)
    }

    /// Counts a failed attempt; also forgets windows that have passed.
    pub fn failed(&self, login: &str, now: DateTime<Utc>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.retain(|_, (_, first)| now < *first + self.window);
        failures
            .entry(Self::key(login))
            .and_modify(|(n, _)| *n += 1)
            .or_insert((1, now));
    }

    /// Clears the count after a successful login.
    pub fn succeeded(&self, login: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&Self::key(login));
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_login_locks_after_too_many_failures_until_the_window_passes() {
        let t = LoginThrottle::new(3, Duration::minutes(15));
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        for _ in 0..2 {
            t.failed("Ann", start);
        }
        assert_eq!(
            t.locked_until("ann", start),
            None,
            "two failures are allowed"
        );
        t.failed(" ANN ", start);
        assert_eq!(
            t.locked_until("ann", start),
            Some(start + Duration::minutes(15))
        );
        assert_eq!(
            t.locked_until("bob", start),
            None,
            "other logins are not affected"
        );
        assert_eq!(t.locked_until("ann", start + Duration::minutes(15)), None);
    }

    #[test]
    fn a_success_clears_the_count() {
        let t = LoginThrottle::new(2, Duration::minutes(15));
        let now = Utc::now();
        t.failed("ann", now);
        t.succeeded("ann");
        t.failed("ann", now);
        assert_eq!(t.locked_until("ann", now), None);
    }
}
