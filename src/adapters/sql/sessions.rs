//! [`SessionRepo`](crate::ports::SessionRepo) over SQL: revoked sessions, kept until their
//! tokens expire.

/// Implements [`SessionRepo`](crate::ports::SessionRepo) for `$store` over `$db`.
macro_rules! session_repo {
    ($store:ty, $db:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use chrono::{DateTime, Utc};

            use $crate::domain::SessionId;
            use $crate::domain::error::{Error, Result};
            use $crate::ports::SessionRepo;

            #[async_trait]
            impl SessionRepo for $store {
                async fn revoke(
                    &self,
                    session: &SessionId,
                    expires_at: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> Result<()> {
                    let mut tx = self.write.begin().await.map_err(Error::unexpected)?;
                    sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < $1")
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::unexpected)?;
                    // Revoked twice, a session stays revoked until the later of the two expiries.
                    sqlx::query(
                        "INSERT INTO revoked_sessions (jti, expires_at) VALUES ($1, $2) \
                         ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
                         WHERE excluded.expires_at > revoked_sessions.expires_at",
                    )
                    .bind(&session.0)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::unexpected)?;
                    tx.commit().await.map_err(Error::unexpected)
                }

                async fn is_revoked(&self, session: &SessionId) -> Result<bool> {
                    sqlx::query_scalar::<_, String>(
                        "SELECT jti FROM revoked_sessions WHERE jti = $1",
                    )
                    .bind(&session.0)
                    .fetch_optional(&self.read)
                    .await
                    .map(|r| r.is_some())
                    .map_err(Error::unexpected)
                }
            }
        };
    };
}
pub(crate) use session_repo;
