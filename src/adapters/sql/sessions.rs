//! [`SessionRepo`](crate::ports::SessionRepo) over SQL: the `sessions` table, one row per
//! login, read together with its owner's username so that a request is authenticated in one
//! read.

use chrono::{DateTime, Utc};

use crate::domain::error::{Error, Result};
use crate::domain::{Client, RefreshState, Session, SessionId, UserId, Username};

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: String,
    user_id: i64,
    username: String,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    user_agent: Option<String>,
    address: String,
    refresh_digest: String,
    previous_refresh_digest: Option<String>,
    refreshed_at: Option<DateTime<Utc>>,
}

impl TryFrom<SessionRow> for Session {
    type Error = Error;

    fn try_from(r: SessionRow) -> Result<Self> {
        Ok(Self {
            id: SessionId(r.id),
            user_id: UserId(r.user_id),
            username: Username::from_trusted(r.username),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            client: Client {
                address: r.address.parse().map_err(Error::unexpected)?,
                user_agent: r.user_agent,
            },
            refresh: RefreshState {
                current: r.refresh_digest,
                previous: r.previous_refresh_digest,
                rotated_at: r.refreshed_at,
            },
        })
    }
}

/// The columns of [`SessionRow`] from `sessions s JOIN users u`, as a macro so that queries
/// stay `&'static str` literals built with `concat!`.
macro_rules! session_columns {
    () => {
        "s.id, s.user_id, u.username, s.created_at, s.last_used_at, s.expires_at, \
         s.user_agent, s.address, s.refresh_digest, s.previous_refresh_digest, s.refreshed_at"
    };
}
pub(crate) use session_columns;

/// Implements [`SessionRepo`](crate::ports::SessionRepo) for `$store` over `$db`.
macro_rules! session_repo {
    ($store:ty, $db:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use chrono::{DateTime, Utc};

            use $crate::adapters::sql::on_foreign_key;
            use $crate::adapters::sql::sessions::{SessionRow, session_columns};
            use $crate::domain::error::{Error, Result};
            use $crate::domain::{NewSession, Session, SessionId, UserId};
            use $crate::ports::SessionRepo;

            #[async_trait]
            impl SessionRepo for $store {
                async fn create_session(&self, session: &NewSession) -> Result<()> {
                    let mut tx = self.write.begin().await.map_err(Error::unexpected)?;
                    sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                        .bind(session.created_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::unexpected)?;
                    sqlx::query(
                        "INSERT INTO sessions (id, user_id, created_at, last_used_at, \
                         expires_at, user_agent, address, refresh_digest) \
                         VALUES ($1, $2, $3, $3, $4, $5, $6, $7)",
                    )
                    .bind(&session.id.0)
                    .bind(session.user_id.0)
                    .bind(session.created_at)
                    .bind(session.expires_at)
                    .bind(session.client.user_agent.as_deref())
                    .bind(session.client.address.to_string())
                    .bind(&session.refresh_digest)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| on_foreign_key(e, Error::UserNotFound))?;
                    tx.commit().await.map_err(Error::unexpected)
                }

                async fn find_session(&self, id: &SessionId) -> Result<Option<Session>> {
                    let sql = concat!(
                        "SELECT ",
                        session_columns!(),
                        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
                    );
                    sqlx::query_as::<_, SessionRow>(sql)
                        .bind(&id.0)
                        .fetch_optional(&self.read)
                        .await
                        .map_err(Error::unexpected)?
                        .map(Session::try_from)
                        .transpose()
                }

                async fn touch_session(
                    &self,
                    id: &SessionId,
                    at: DateTime<Utc>,
                    expires_at: DateTime<Utc>,
                ) -> Result<bool> {
                    sqlx::query(
                        "UPDATE sessions SET last_used_at = $2, expires_at = $3 \
                         WHERE id = $1 AND expires_at > $2",
                    )
                    .bind(&id.0)
                    .bind(at)
                    .bind(expires_at)
                    .execute(&self.write)
                    .await
                    .map(|done| done.rows_affected() == 1)
                    .map_err(Error::unexpected)
                }

                async fn rotate_refresh(
                    &self,
                    id: &SessionId,
                    current: &str,
                    next: &str,
                    at: DateTime<Utc>,
                    expires_at: DateTime<Utc>,
                ) -> Result<bool> {
                    // Compare-and-set: of two rotations of one token, one wins.
                    sqlx::query(
                        "UPDATE sessions SET refresh_digest = $3, \
                         previous_refresh_digest = refresh_digest, refreshed_at = $4, \
                         last_used_at = $4, expires_at = $5 \
                         WHERE id = $1 AND refresh_digest = $2",
                    )
                    .bind(&id.0)
                    .bind(current)
                    .bind(next)
                    .bind(at)
                    .bind(expires_at)
                    .execute(&self.write)
                    .await
                    .map(|done| done.rows_affected() == 1)
                    .map_err(Error::unexpected)
                }

                async fn list_sessions(
                    &self,
                    user: UserId,
                    now: DateTime<Utc>,
                ) -> Result<Vec<Session>> {
                    let sql = concat!(
                        "SELECT ",
                        session_columns!(),
                        " FROM sessions s JOIN users u ON u.id = s.user_id \
                         WHERE s.user_id = $1 AND s.expires_at > $2 \
                         ORDER BY s.last_used_at DESC, s.id"
                    );
                    sqlx::query_as::<_, SessionRow>(sql)
                        .bind(user.0)
                        .bind(now)
                        .fetch_all(&self.read)
                        .await
                        .map_err(Error::unexpected)?
                        .into_iter()
                        .map(Session::try_from)
                        .collect()
                }

                async fn end_session(&self, user: UserId, id: &SessionId) -> Result<bool> {
                    sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                        .bind(&id.0)
                        .bind(user.0)
                        .execute(&self.write)
                        .await
                        .map(|done| done.rows_affected() == 1)
                        .map_err(Error::unexpected)
                }

                async fn end_sessions_except(
                    &self,
                    user: UserId,
                    keep: Option<SessionId>,
                ) -> Result<Vec<SessionId>> {
                    sqlx::query_scalar::<_, String>(
                        "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id",
                    )
                    .bind(user.0)
                    // No session has an empty id.
                    .bind(keep.map(|k| k.0).unwrap_or_default())
                    .fetch_all(&self.write)
                    .await
                    .map(|ids| ids.into_iter().map(SessionId).collect())
                    .map_err(Error::unexpected)
                }
            }
        };
    };
}
pub(crate) use session_repo;
