//! [`UserRepo`](crate::ports::UserRepo) over SQL: accounts, unique by username and by email
//! without regard to case, as the unique indexes `users_username_key` and `users_email_key`
//! decide.

use chrono::{DateTime, Utc};

use crate::domain::{Email, User, UserId, Username};

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    username: String,
    email: String,
    password_hash: String,
    created_at: DateTime<Utc>,
    last_seen: Option<DateTime<Utc>>,
    disabled: bool,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: UserId(r.id),
            username: Username::from_trusted(r.username),
            email: Email::from_trusted(r.email),
            password_hash: r.password_hash,
            created_at: r.created_at,
            last_seen: r.last_seen,
            disabled: r.disabled,
        }
    }
}

/// The columns of [`UserRow`], as a macro so that queries stay `&'static str` literals built
/// with `concat!`.
macro_rules! user_columns {
    () => {
        "id, username, email, password_hash, created_at, last_seen, disabled"
    };
}
pub(crate) use user_columns;

/// What an update of one user by id did: `UserNotFound` when it touched no row.
pub(crate) fn user_updated(rows: u64) -> crate::domain::error::Result<()> {
    if rows == 0 {
        Err(crate::domain::Error::UserNotFound)
    } else {
        Ok(())
    }
}

/// Implements [`UserRepo`](crate::ports::UserRepo) for `$store` over `$db`.
macro_rules! user_repo {
    ($store:ty, $db:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use chrono::{DateTime, Utc};

            use $crate::adapters::sql::users::{UserRow, user_columns, user_updated};
            use $crate::adapters::sql::{on_unique_violation, only_row};
            use $crate::domain::error::{Error, Result};
            use $crate::domain::{NewUser, User, UserId};
            use $crate::ports::UserRepo;

            #[async_trait]
            impl UserRepo for $store {
                async fn create(&self, user: &NewUser) -> Result<User> {
                    let sql = concat!(
                        "INSERT INTO users (username, email, password_hash, created_at) \
                         VALUES ($1, $2, $3, $4) RETURNING ",
                        user_columns!()
                    );
                    sqlx::query_as::<_, UserRow>(sql)
                        .bind(user.username.as_str())
                        .bind(user.email.as_str())
                        .bind(&user.password_hash)
                        .bind(user.created_at)
                        .fetch_all(&self.write)
                        .await
                        .and_then(only_row)
                        .map(User::from)
                        .map_err(|e| {
                            on_unique_violation::<$db>(e, |constraint| match constraint {
                                "users_username_key" => Some(Error::UsernameTaken),
                                "users_email_key" => Some(Error::EmailTaken),
                                _ => None,
                            })
                        })
                }

                async fn find(&self, id: UserId) -> Result<Option<User>> {
                    let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
                    sqlx::query_as::<_, UserRow>(sql)
                        .bind(id.0)
                        .fetch_optional(&self.read)
                        .await
                        .map(|r| r.map(User::from))
                        .map_err(Error::unexpected)
                }

                async fn find_by_login(&self, login: &str) -> Result<Option<User>> {
                    let sql = concat!(
                        "SELECT ",
                        user_columns!(),
                        " FROM users \
                         WHERE lower(username) = lower($1) OR lower(email) = lower($1) \
                         ORDER BY lower(username) = lower($1) DESC LIMIT 1"
                    );
                    sqlx::query_as::<_, UserRow>(sql)
                        .bind(login)
                        .fetch_optional(&self.read)
                        .await
                        .map(|r| r.map(User::from))
                        .map_err(Error::unexpected)
                }

                async fn list_except(&self, except: UserId) -> Result<Vec<User>> {
                    let sql = concat!(
                        "SELECT ",
                        user_columns!(),
                        " FROM users WHERE id <> $1 ORDER BY lower(username), id"
                    );
                    sqlx::query_as::<_, UserRow>(sql)
                        .bind(except.0)
                        .fetch_all(&self.read)
                        .await
                        .map(|rows| rows.into_iter().map(User::from).collect())
                        .map_err(Error::unexpected)
                }

                async fn list_all(&self) -> Result<Vec<User>> {
                    let sql = concat!(
                        "SELECT ",
                        user_columns!(),
                        " FROM users ORDER BY lower(username), id"
                    );
                    sqlx::query_as::<_, UserRow>(sql)
                        .fetch_all(&self.read)
                        .await
                        .map(|rows| rows.into_iter().map(User::from).collect())
                        .map_err(Error::unexpected)
                }

                async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
                    let sql = "UPDATE users SET password_hash = $1 WHERE id = $2";
                    let done = sqlx::query(sql)
                        .bind(password_hash)
                        .bind(id.0)
                        .execute(&self.write)
                        .await
                        .map_err(Error::unexpected)?;
                    user_updated(done.rows_affected())
                }

                async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
                    let done = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                        .bind(disabled)
                        .bind(id.0)
                        .execute(&self.write)
                        .await
                        .map_err(Error::unexpected)?;
                    user_updated(done.rows_affected())
                }

                async fn touch_last_seen(&self, id: UserId, at: DateTime<Utc>) -> Result<()> {
                    sqlx::query("UPDATE users SET last_seen = $1 WHERE id = $2")
                        .bind(at)
                        .bind(id.0)
                        .execute(&self.write)
                        .await
                        .map(drop)
                        .map_err(Error::unexpected)
                }
            }
        };
    };
}
pub(crate) use user_repo;
