//! Presence across every instance sharing one Redis. Each user has a hash of socket counts by
//! instance; each instance a set of the users it counts and a lease, its expiry time in one
//! sorted set, renewed a few times per lease. A user is online while an instance with a live
//! lease counts a socket of theirs. Every change and look runs as one script, so two
//! instances never both see themselves first or last, and times are Redis's own clock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{Redis, unexpected};
use crate::adapters::presence::{Lease, keep_renewing};
use crate::domain::UserId;
use crate::domain::error::Result;
use crate::ports::PresenceTracker;

/// Redis's time in milliseconds, inside a script.
const NOW: &str = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) ";

/// The sockets of the user whose hash is `KEYS[1]` on instances with a live lease in `KEYS[2]`.
const TOTAL: &str = "
local function total(sockets, leases, now)
  local n = 0
  local counts = redis.call('HGETALL', sockets)
  for i = 1, #counts, 2 do
    local lease = tonumber(redis.call('ZSCORE', leases, counts[i]) or '0')
    if lease > now then n = n + tonumber(counts[i + 1]) end
  end
  return n
end
";

/// KEYS: the user's sockets, the instance's users, the leases. ARGV: instance, user.
/// Returns 1 when this is the user's first live socket anywhere.
const CONNECT: &str = "
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
if total(KEYS[1], KEYS[3], now) == 1 then return 1 else return 0 end
";

/// As [`CONNECT`]; returns 1 when this was the user's last live socket anywhere, 0 when not
/// or when this instance counted no socket of theirs.
const DISCONNECT: &str = "
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if n <= 0 then return 0 end
if n == 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
else
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
end
if total(KEYS[1], KEYS[3], now) == 0 then return 1 else return 0 end
";

/// KEYS: the leases. ARGV: the key prefix, then user ids. Returns those with a live socket.
const ONLINE: &str = "
local online = {}
for i = 2, #ARGV do
  if total(ARGV[1] .. ':presence:user:' .. ARGV[i], KEYS[1], now) > 0 then
    table.insert(online, ARGV[i])
  end
end
return online
";

/// KEYS: the leases. ARGV: instance, lease in ms. Extends the lease; returns 1 when it had
/// lapsed and been swept (this instance stalled, or Redis restarted empty), so that the
/// counts must be written back with [`RESTORE`].
const RENEW: &str = "
local lost = redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if lost then return 1 else return 0 end
";

/// KEYS: this instance's users. ARGV: instance, then triples of user, count and the user's
/// key. Writes this instance's counts back.
const RESTORE: &str = "
for i = 2, #ARGV, 3 do
  redis.call('HSET', ARGV[i + 2], ARGV[1], ARGV[i + 1])
  redis.call('SADD', KEYS[1], ARGV[i])
end
return 0
";

/// KEYS: the leases. ARGV: the key prefix. Forgets every instance whose lease ran out, and
/// returns the users left with no live socket.
const EXPIRE: &str = "
local offline = {}
for _, instance in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local users = ARGV[1] .. ':presence:instance:' .. instance
  for _, user in ipairs(redis.call('SMEMBERS', users)) do
    local sockets = ARGV[1] .. ':presence:user:' .. user
    redis.call('HDEL', sockets, instance)
    if total(sockets, KEYS[1], now) == 0 then table.insert(offline, user) end
  end
  redis.call('DEL', users)
  redis.call('ZREM', KEYS[1], instance)
end
return offline
";

fn script(body: &str) -> Script {
    Script::new(&format!("{NOW}{TOTAL}{body}"))
}

/// Cluster-wide presence over Redis.
pub struct RedisPresence {
    redis: Redis,
    instance: String,
    lease: Duration,
    connect: Script,
    disconnect: Script,
    online: Script,
    renew: Script,
    restore: Script,
    expire: Script,
    /// This instance's own counts, to write back should others have expired it.
    mine: Mutex<HashMap<UserId, i64>>,
}

impl RedisPresence {
    /// Takes a lease for this instance and keeps renewing it while the tracker lives.
    ///
    /// # Errors
    /// When Redis does not answer.
    pub async fn start(redis: &Redis, lease: Duration) -> anyhow::Result<Arc<Self>> {
        let presence = Arc::new(Self {
            redis: redis.clone(),
            instance: uuid::Uuid::new_v4().to_string(),
            lease,
            connect: script(CONNECT),
            disconnect: script(DISCONNECT),
            online: script(ONLINE),
            renew: script(RENEW),
            restore: Script::new(RESTORE),
            expire: script(EXPIRE),
            mine: Mutex::new(HashMap::new()),
        });
        presence.renew().await?;
        tokio::spawn(keep_renewing(Arc::downgrade(&presence), lease / 3));
        Ok(presence)
    }

    fn user_key(&self, user: UserId) -> String {
        self.redis.key(format_args!("presence:user:{}", user.0))
    }

    fn instance_key(&self) -> String {
        self.redis
            .key(format_args!("presence:instance:{}", self.instance))
    }

    fn leases_key(&self) -> String {
        self.redis.key("presence:leases")
    }

    /// Runs [`CONNECT`] or [`DISCONNECT`] for `user` on this instance: whether the socket was
    /// the user's first, or last, anywhere.
    async fn count(&self, script: &Script, user: UserId) -> Result<bool> {
        let mut conn = self.redis.manager();
        let told: i64 = script
            .key(self.user_key(user))
            .key(self.instance_key())
            .key(self.leases_key())
            .arg(&self.instance)
            .arg(user.0)
            .invoke_async(&mut conn)
            .await
            .map_err(unexpected)?;
        Ok(told == 1)
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, i64>> {
        self.mine.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Lease for RedisPresence {
    /// Extends the lease, and only when it had been lost sends this instance's counts.
    async fn renew(&self) -> Result<()> {
        let mut conn = self.redis.manager();
        let lost: i64 = self
            .renew
            .key(self.leases_key())
            .arg(&self.instance)
            .arg(u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut conn)
            .await
            .map_err(unexpected)?;
        let counts: Vec<(UserId, i64)> = self.mine().iter().map(|(u, n)| (*u, *n)).collect();
        if lost == 0 || counts.is_empty() {
            return Ok(());
        }
        let mut restore = self.restore.prepare_invoke();
        restore.key(self.instance_key()).arg(&self.instance);
        for (user, count) in counts {
            restore.arg(user.0).arg(count).arg(self.user_key(user));
        }
        restore
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unexpected)?;
        tracing::warn!("this instance's presence lease had lapsed; its sockets are counted again");
        Ok(())
    }
}

#[async_trait]
impl PresenceTracker for RedisPresence {
    async fn connect(&self, user: UserId) -> Result<bool> {
        let first = self.count(&self.connect, user).await?;
        *self.mine().entry(user).or_insert(0) += 1;
        Ok(first)
    }

    async fn disconnect(&self, user: UserId) -> Result<bool> {
        let last = self.count(&self.disconnect, user).await?;
        let mut mine = self.mine();
        if let Some(n) = mine.get_mut(&user) {
            *n -= 1;
            if *n <= 0 {
                mine.remove(&user);
            }
        }
        Ok(last)
    }

    async fn online_among(&self, users: &[UserId]) -> Result<HashSet<UserId>> {
        if users.is_empty() {
            return Ok(HashSet::new());
        }
        let mut invocation = self.online.prepare_invoke();
        invocation.key(self.leases_key()).arg(&self.redis.prefix);
        for user in users {
            invocation.arg(user.0);
        }
        let mut conn = self.redis.manager();
        let online: Vec<i64> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unexpected)?;
        Ok(online.into_iter().map(UserId).collect())
    }

    async fn expire_dead(&self) -> Result<Vec<UserId>> {
        let mut conn = self.redis.manager();
        let offline: Vec<i64> = self
            .expire
            .key(self.leases_key())
            .arg(&self.redis.prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(unexpected)?;
        Ok(offline.into_iter().map(UserId).collect())
    }
}
