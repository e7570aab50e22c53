//! What the PostgreSQL and SQLite adapters share: every storage port written once, in the SQL
//! both databases understand, over a schema that is the same in `migrations/postgres` and
//! `migrations/sqlite`, so the two adapters cannot drift apart.
//!
//! Where things go:
//! - a query goes in the module of the port it serves ([`users`], [`chats`], [`messages`],
//!   [`sessions`]), next to the row types that read its result;
//! - a place where the two databases differ goes in [`dialect`], and nowhere else;
//! - how a failed statement becomes a domain error is below, in this module.
//!
//! Each port module implements its port with a macro, instantiated by [`sql_store!`] for
//! `PgStore` and `SqliteStore`: the same code compiled against each concrete sqlx database.
//! Written generic over `sqlx::Database` instead, every function would have to repeat the
//! executor and encoding bounds of each type it binds or reads, which would hide the queries.
//!
//! Reads go to the store's `read` pool; every statement that writes goes to `write`, which
//! SQLite keeps to a single connection so that writers queue instead of failing with
//! `database is locked`.

pub(crate) mod chats;
mod dialect;
pub(crate) mod messages;
pub(crate) mod sessions;
pub(crate) mod users;

pub(crate) use dialect::Dialect;

use crate::domain::error::Error;

/// The one row of an autocommit write with `RETURNING`, which must be run with `fetch_all`.
///
/// On SQLite such a statement stopped after its first row (as `fetch_one` stops it) commits
/// only when it is reset, and a commit made by a reset never calls the write-ahead log's hook:
/// the automatic checkpoint never runs and the log grows by every write, without bound. Run to
/// its end, the statement commits inside its last step, where the hook is called.
pub(crate) fn only_row<T>(rows: Vec<T>) -> Result<T, sqlx::Error> {
    rows.into_iter().next().ok_or(sqlx::Error::RowNotFound)
}

/// A failed statement in the domain's terms: when it broke a unique constraint or index that
/// `taken` maps, by the exact name the migrations give it, that domain error; anything else is
/// unexpected.
pub(crate) fn on_unique_violation<DB: Dialect>(
    e: sqlx::Error,
    taken: impl FnOnce(&str) -> Option<Error>,
) -> Error {
    let mapped = match &e {
        sqlx::Error::Database(db) => DB::unique_violation(db.as_ref()).and_then(taken),
        _ => None,
    };
    mapped.unwrap_or_else(|| Error::unexpected(e))
}

/// Whether a statement failed because a row it names does not exist. Neither database says
/// which row in a way both share (SQLite names no foreign key), so the caller decides from
/// what the statement refers to.
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// A failed statement whose foreign keys all refer to one kind of row: `missing` when one of
/// them was broken, anything else unexpected.
pub(crate) fn on_foreign_key(e: sqlx::Error, missing: Error) -> Error {
    if is_foreign_key_violation(&e) {
        missing
    } else {
        Error::unexpected(e)
    }
}

/// Implements every storage port for `$store`, which has `read` and `write` pools of `$db`
/// and names its distinct pools in `fn pools(&self) -> Vec<(&'static str, &Pool<$db>)>`.
macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        $crate::adapters::sql::users::user_repo!($store, $db);
        $crate::adapters::sql::chats::chat_repo!($store, $db);
        $crate::adapters::sql::messages::message_repo!($store, $db);
        $crate::adapters::sql::sessions::session_repo!($store, $db);

        const _: () = {
            use async_trait::async_trait;

            use $crate::domain::error::{Error, Result};
            use $crate::ports::{PoolUsage, StorageProbe};

            #[async_trait]
            impl StorageProbe for $store {
                async fn ping(&self) -> Result<()> {
                    sqlx::query("SELECT 1")
                        .execute(&self.read)
                        .await
                        .map(drop)
                        .map_err(Error::unexpected)
                }

                fn connections(&self) -> Vec<PoolUsage> {
                    self.pools()
                        .into_iter()
                        .map(|(pool, p)| {
                            let idle = u32::try_from(p.num_idle()).unwrap_or(u32::MAX);
                            PoolUsage {
                                pool,
                                in_use: p.size().saturating_sub(idle),
                                idle,
                                max: p.options().get_max_connections(),
                            }
                        })
                        .collect()
                }
            }
        };

        // What more than one port needs.
        const _: () = {
            use $crate::domain::error::Error;
            use $crate::domain::{ChatId, UserId};

            impl $store {
                /// What a foreign-key violation on a row naming `chat` and `user` was about,
                /// told by looking: SQLite does not name the key that failed, and when both
                /// are missing the ports report the chat.
                async fn missing_chat_or_user(&self, chat: ChatId, user: UserId) -> Error {
                    let found = sqlx::query_as::<_, (bool, bool)>(
                        "SELECT EXISTS (SELECT 1 FROM chats WHERE id = $1), \
                                EXISTS (SELECT 1 FROM users WHERE id = $2)",
                    )
                    .bind(chat.0)
                    .bind(user.0)
                    .fetch_one(&self.write)
                    .await;
                    match found {
                        Ok((false, _)) => Error::ChatNotFound,
                        Ok((true, false)) => Error::UserNotFound,
                        Ok((true, true)) => Error::unexpected(anyhow::anyhow!(
                            "foreign key violation, yet chat {chat} and user {user} exist"
                        )),
                        Err(e) => Error::unexpected(e),
                    }
                }
            }
        };
    };
}

pub(crate) use sql_store;
