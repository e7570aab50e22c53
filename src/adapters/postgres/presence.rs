//! Presence across every instance sharing one PostgreSQL database: each instance counts its
//! sockets per user in `presence` under a lease in `presence_instances`, which it renews a few
//! times per lease. A user is online while any instance with a live lease holds a socket of
//! theirs. An instance that stops renewing (killed, cut off from the database) is expired by
//! whichever instance sweeps first, which learns the users that left with it.
//!
//! Changes to one user's count and the look at their total run under a transaction-scoped
//! advisory lock on that user, so two instances never both see themselves first or last.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use crate::adapters::presence::{Lease, keep_renewing};
use crate::domain::UserId;
use crate::domain::error::{Error, Result};
use crate::ports::PresenceTracker;

/// Advisory lock keys of presence: this prefix plus the user id, apart from other users of
/// advisory locks.
const LOCK_SPACE: i64 = 0x7072_6573_0000_0000;

/// Cluster-wide presence over PostgreSQL.
pub struct PgPresence {
    pool: PgPool,
    instance: String,
    lease: Duration,
    /// This instance's own counts, to restore its rows should others have expired it.
    mine: Mutex<HashMap<UserId, i32>>,
}

impl PgPresence {
    /// Takes a lease for this instance and keeps renewing it while the tracker lives.
    ///
    /// # Errors
    /// When the lease cannot be written.
    pub async fn start(pool: PgPool, lease: Duration) -> anyhow::Result<Arc<Self>> {
        let presence = Arc::new(Self {
            pool,
            instance: uuid::Uuid::new_v4().to_string(),
            lease,
            mine: Mutex::new(HashMap::new()),
        });
        presence.renew().await?;
        tokio::spawn(keep_renewing(Arc::downgrade(&presence), lease / 3));
        Ok(presence)
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, i32>> {
        self.mine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A transaction holding `user`'s presence lock.
    async fn locked(&self, user: UserId) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(Error::unexpected)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOCK_SPACE + user.0)
            .execute(&mut *tx)
            .await
            .map_err(Error::unexpected)?;
        Ok(tx)
    }

    /// The sockets of `user` on every instance with a live lease.
    async fn total(tx: &mut Transaction<'static, Postgres>, user: UserId) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COALESCE(sum(p.sockets), 0)::BIGINT FROM presence p \
             JOIN presence_instances i ON i.id = p.instance \
             WHERE p.user_id = $1 AND i.expires_at > now()",
        )
        .bind(user.0)
        .fetch_one(&mut **tx)
        .await
        .map_err(Error::unexpected)
    }
}

#[async_trait]
impl Lease for PgPresence {
    async fn renew(&self) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(Error::unexpected)?;
        let renewed =
            sqlx::query("UPDATE presence_instances SET expires_at = now() + $2 WHERE id = $1")
                .bind(&self.instance)
                .bind(self.lease)
                .execute(&mut *tx)
                .await
                .map_err(Error::unexpected)?
                .rows_affected();
        if renewed == 0 {
            sqlx::query("INSERT INTO presence_instances (id, expires_at) VALUES ($1, now() + $2)")
                .bind(&self.instance)
                .bind(self.lease)
                .execute(&mut *tx)
                .await
                .map_err(Error::unexpected)?;
            let mine: Vec<(i64, i32)> = self
                .mine()
                .iter()
                .map(|(user, sockets)| (user.0, *sockets))
                .collect();
            for (user, sockets) in mine {
                sqlx::query(
                    "INSERT INTO presence (instance, user_id, sockets) VALUES ($1, $2, $3)",
                )
                .bind(&self.instance)
                .bind(user)
                .bind(sockets)
                .execute(&mut *tx)
                .await
                .map_err(Error::unexpected)?;
            }
        }
        tx.commit().await.map_err(Error::unexpected)
    }
}

#[async_trait]
impl PresenceTracker for PgPresence {
    async fn connect(&self, user: UserId) -> Result<bool> {
        let mut tx = self.locked(user).await?;
        sqlx::query(
            "INSERT INTO presence (instance, user_id, sockets) VALUES ($1, $2, 1) \
             ON CONFLICT (instance, user_id) DO UPDATE SET sockets = presence.sockets + 1",
        )
        .bind(&self.instance)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(Error::unexpected)?;
        let total = Self::total(&mut tx, user).await?;
        tx.commit().await.map_err(Error::unexpected)?;
        *self.mine().entry(user).or_insert(0) += 1;
        Ok(total == 1)
    }

    async fn disconnect(&self, user: UserId) -> Result<bool> {
        let mut tx = self.locked(user).await?;
        let left: Option<i32> = sqlx::query_scalar(
            "UPDATE presence SET sockets = sockets - 1 \
             WHERE instance = $1 AND user_id = $2 AND sockets > 1 RETURNING sockets",
        )
        .bind(&self.instance)
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::unexpected)?;
        let removed = if left.is_none() {
            sqlx::query("DELETE FROM presence WHERE instance = $1 AND user_id = $2")
                .bind(&self.instance)
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(Error::unexpected)?
                .rows_affected()
        } else {
            0
        };
        if left.is_none() && removed == 0 {
            // Not counted here: nothing changes.
            return Ok(false);
        }
        let total = Self::total(&mut tx, user).await?;
        tx.commit().await.map_err(Error::unexpected)?;
        let mut mine = self.mine();
        if let Some(n) = mine.get_mut(&user) {
            *n -= 1;
            if *n <= 0 {
                mine.remove(&user);
            }
        }
        Ok(total == 0)
    }

    async fn online_among(&self, users: &[UserId]) -> Result<HashSet<UserId>> {
        let ids: Vec<i64> = users.iter().map(|u| u.0).collect();
        let online: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT p.user_id FROM presence p \
             JOIN presence_instances i ON i.id = p.instance \
             WHERE p.user_id = ANY($1) AND i.expires_at > now()",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::unexpected)?;
        Ok(online.into_iter().map(UserId).collect())
    }

    async fn expire_dead(&self) -> Result<Vec<UserId>> {
        let left: Vec<i64> = sqlx::query_scalar(
            "WITH dead AS (DELETE FROM presence_instances WHERE expires_at < now() RETURNING id) \
             SELECT DISTINCT p.user_id FROM presence p JOIN dead ON dead.id = p.instance",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Error::unexpected)?;
        let mut offline = Vec::new();
        for user in left.into_iter().map(UserId) {
            let mut tx = self.locked(user).await?;
            if Self::total(&mut tx, user).await? == 0 {
                offline.push(user);
            }
            tx.commit().await.map_err(Error::unexpected)?;
        }
        Ok(offline)
    }
}
