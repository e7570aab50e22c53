//! Counters every instance sharing one PostgreSQL database counts together, when there is no
//! Redis: failed logins, and fixed windows of requests for the HTTP rate limits. Both tables
//! are unlogged; rows whose window closed are deleted now and then.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;

use crate::domain::error::{Error, Result};
use crate::ports::{FailureKey, Failures, LoginFailures, RateWindows, Window};

/// How many counts between two sweeps of closed windows.
const SWEEP_EVERY: u64 = 1000;

/// Failed logins in the `login_failures` table.
pub struct PgLoginFailures {
    pool: PgPool,
    added: AtomicU64,
}

impl PgLoginFailures {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            added: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl LoginFailures for PgLoginFailures {
    async fn get(&self, key: &FailureKey, now: DateTime<Utc>) -> Result<Option<Failures>> {
        let row: Option<(i32, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT count, last_at, until FROM login_failures WHERE key = $1 AND until > $2",
        )
        .bind(key.to_string())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::unexpected)?;
        Ok(row.map(|(count, last, until)| Failures {
            count: u32::try_from(count).unwrap_or(0),
            last,
            until,
        }))
    }

    async fn add(
        &self,
        key: &FailureKey,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<()> {
        if self
            .added
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            sqlx::query("DELETE FROM login_failures WHERE until <= $1")
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(Error::unexpected)?;
        }
        sqlx::query(
            "INSERT INTO login_failures (key, count, last_at, until) VALUES ($1, 1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN login_failures.until > $2 THEN login_failures.count + 1 ELSE 1 END, \
               until = CASE WHEN login_failures.until > $2 THEN login_failures.until ELSE $3 END, \
               last_at = $2",
        )
        .bind(key.to_string())
        .bind(now)
        .bind(now + window)
        .execute(&self.pool)
        .await
        .map_err(Error::unexpected)?;
        Ok(())
    }

    async fn clear(&self, key: &FailureKey) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key.to_string())
            .execute(&self.pool)
            .await
            .map_err(Error::unexpected)?;
        Ok(())
    }
}

/// Windows of the rate limits in the `rate_windows` table, on the database's clock.
pub struct PgRateWindows {
    pool: PgPool,
    adds: AtomicU64,
}

impl PgRateWindows {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            adds: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl RateWindows for PgRateWindows {
    async fn add(&self, limit: &str, key: &str, n: u64, period: Duration) -> Result<Window> {
        if self
            .adds
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            sqlx::query("DELETE FROM rate_windows WHERE until <= now()")
                .execute(&self.pool)
                .await
                .map_err(Error::unexpected)?;
        }
        let (count, until): (i64, DateTime<Utc>) = sqlx::query_as(
            "INSERT INTO rate_windows (key, count, until) VALUES ($1, $3, now() + $2) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN rate_windows.until > now() THEN rate_windows.count + $3 ELSE $3 END, \
               until = CASE WHEN rate_windows.until > now() THEN rate_windows.until ELSE now() + $2 END \
             RETURNING count, until",
        )
        .bind(format!("{limit}:{key}"))
        .bind(period)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await
        .map_err(Error::unexpected)?;
        let reset_ms = until.timestamp_millis();
        Ok(Window {
            count: u64::try_from(count).unwrap_or(0),
            reset: (reset_ms + 999).div_euclid(1000),
        })
    }
}
