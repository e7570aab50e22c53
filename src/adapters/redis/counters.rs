//! Counters every instance shares: failed logins, and fixed windows of requests for the HTTP
//! rate limits. Each is a key that expires with its window, so Redis forgets them by itself.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use redis::Script;

use super::{Redis, unexpected};
use crate::domain::error::Result;
use crate::ports::{FailureKey, Failures, LoginFailures, RateWindows, Window};

/// Failed logins counted in Redis: a hash of count, last and until (milliseconds) per key,
/// expiring when its window closes.
pub struct RedisLoginFailures {
    redis: Redis,
    add: Script,
}

/// KEYS: the counter. ARGV: now and the window's end, in ms. One more failure in the open
/// window, or the first of a new one.
const ADD: &str = "
local now = tonumber(ARGV[1])
local until_ = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if until_ > now then
  redis.call('HINCRBY', KEYS[1], 'count', 1)
  redis.call('HSET', KEYS[1], 'last', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'count', 1, 'last', ARGV[1], 'until', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 0
";

impl RedisLoginFailures {
    pub fn new(redis: &Redis) -> Self {
        Self {
            redis: redis.clone(),
            add: Script::new(ADD),
        }
    }

    fn key(&self, key: &FailureKey) -> String {
        self.redis.key(format_args!("failures:{key}"))
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[async_trait]
impl LoginFailures for RedisLoginFailures {
    async fn get(&self, key: &FailureKey, now: DateTime<Utc>) -> Result<Option<Failures>> {
        let mut conn = self.redis.manager();
        let (count, last, until): (Option<u32>, Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.key(key))
            .arg("count")
            .arg("last")
            .arg("until")
            .query_async(&mut conn)
            .await
            .map_err(unexpected)?;
        Ok(match (count, last, until) {
            (Some(count), Some(last), Some(until)) if now < at(until) => Some(Failures {
                count,
                last: at(last),
                until: at(until),
            }),
            _ => None,
        })
    }

    async fn add(
        &self,
        key: &FailureKey,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<()> {
        let mut conn = self.redis.manager();
        self.add
            .key(self.key(key))
            .arg(now.timestamp_millis())
            .arg((now + window).timestamp_millis())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unexpected)?;
        Ok(())
    }

    async fn clear(&self, key: &FailureKey) -> Result<()> {
        let mut conn = self.redis.manager();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<i64>(&mut conn)
            .await
            .map_err(unexpected)?;
        Ok(())
    }
}

/// Fixed windows of requests counted in Redis, for rate limits that hold across instances:
/// a counter per (limit, key) that expires when its window closes.
pub struct RedisWindows {
    redis: Redis,
    count: Script,
}

/// KEYS: the counter. ARGV: the window in ms, the requests to count. Returns the count in
/// this window and the milliseconds left of it.
const COUNT: &str = "
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if n == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}
";

impl RedisWindows {
    pub fn new(redis: &Redis) -> Self {
        Self {
            redis: redis.clone(),
            count: Script::new(COUNT),
        }
    }
}

#[async_trait]
impl RateWindows for RedisWindows {
    async fn add(&self, limit: &str, key: &str, n: u64, period: Duration) -> Result<Window> {
        let counter = self.redis.key(format!("rate:{limit}:{key}"));
        let mut conn = self.redis.manager();
        let (count, left): (u64, i64) = self
            .count
            .key(counter)
            .arg(u64::try_from(period.as_millis()).unwrap_or(u64::MAX))
            .arg(n)
            .invoke_async(&mut conn)
            .await
            .map_err(unexpected)?;
        let now = Utc::now().timestamp_millis();
        Ok(Window {
            count,
            reset: (now + left.max(0) + 999) / 1000,
        })
    }
}
