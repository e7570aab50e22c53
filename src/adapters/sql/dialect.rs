//! Where PostgreSQL and SQLite differ, for the queries of this module: so far only in how
//! they name a broken unique constraint. The SQL itself is written in what both understand.

use sqlx::error::DatabaseError;
use sqlx::{Postgres, Sqlite};

/// A database the SQL adapters run on.
pub(crate) trait Dialect: sqlx::Database {
    /// The name of the unique constraint or index that `e` reports broken, exactly as the
    /// migrations name it; `None` when `e` is not a unique violation.
    fn unique_violation(e: &dyn DatabaseError) -> Option<&str>;
}

impl Dialect for Postgres {
    fn unique_violation(e: &dyn DatabaseError) -> Option<&str> {
        e.is_unique_violation().then(|| e.constraint()).flatten()
    }
}

impl Dialect for Sqlite {
    /// SQLite names no constraint in the error, only in its message:
    /// `UNIQUE constraint failed: index 'users_username_key'` for a unique index on an
    /// expression, and `UNIQUE constraint failed: chat_members.chat_id, chat_members.user_id`
    /// for one on plain columns (a constraint declared in `CREATE TABLE` or an index), which
    /// [`SQLITE_COLUMN_CONSTRAINTS`] names.
    fn unique_violation(e: &dyn DatabaseError) -> Option<&str> {
        if !e.is_unique_violation() {
            return None;
        }
        let failed = e.message().strip_prefix("UNIQUE constraint failed: ")?;
        if let Some(index) = failed
            .strip_prefix("index '")
            .and_then(|rest| rest.strip_suffix('\''))
        {
            return Some(index);
        }
        SQLITE_COLUMN_CONSTRAINTS
            .iter()
            .find(|(columns, _)| *columns == failed)
            .map(|(_, name)| *name)
    }
}

/// The unique constraints and indexes of `migrations/sqlite` on plain columns, as SQLite reports
/// them (by their columns), with the name they have in both migrations.
const SQLITE_COLUMN_CONSTRAINTS: &[(&str, &str)] = &[
    (
        "chats.direct_low, chats.direct_high",
        "chats_direct_pair_key",
    ),
    (
        "chat_members.chat_id, chat_members.user_id",
        "chat_members_pkey",
    ),
    ("messages.chat_id, messages.seq", "messages_chat_seq_key"),
    (
        "messages.chat_id, messages.sender_id, messages.client_id",
        "messages_client_id_key",
    ),
];

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};

    use super::*;

    /// A statement's error as SQLite reports it, on the migrated schema.
    async fn violation(pool: &SqlitePool, sql: &'static str) -> Option<String> {
        match sqlx::query(sql).execute(pool).await {
            Err(sqlx::Error::Database(db)) => Sqlite::unique_violation(db.as_ref()).map(Into::into),
            other => panic!("{sql}: expected a database error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn sqlite_unique_violations_carry_the_names_of_the_migrations() {
        // One connection: each would have a database of its own. Foreign keys are on.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO users (username, email, password_hash, created_at) \
             VALUES ('ann', 'ann@example.com', 'h', 't'), ('bob', 'bob@example.com', 'h', 't'); \
             INSERT INTO chats (kind, visibility, direct_low, direct_high, created_at) \
             VALUES ('direct', 'private', 1, 2, 't'); \
             INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (1, 1, 't'); \
             INSERT INTO messages (chat_id, seq, sender_id, body, created_at, client_id) \
             VALUES (1, 1, 1, 'hi', 't', 'c1')",
        )
        .execute(&pool)
        .await
        .unwrap();

        let cases = [
            (
                "INSERT INTO users (username, email, password_hash, created_at) \
                 VALUES ('ANN', 'other@example.com', 'h', 't')",
                Some("users_username_key"),
            ),
            (
                "INSERT INTO users (username, email, password_hash, created_at) \
                 VALUES ('annie', 'ANN@example.com', 'h', 't')",
                Some("users_email_key"),
            ),
            (
                "INSERT INTO chats (kind, visibility, direct_low, direct_high, created_at) \
                 VALUES ('direct', 'private', 1, 2, 't')",
                Some("chats_direct_pair_key"),
            ),
            (
                "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (1, 1, 't')",
                Some("chat_members_pkey"),
            ),
            (
                "INSERT INTO messages (chat_id, seq, sender_id, body, created_at) \
                 VALUES (1, 1, 2, 'again', 't')",
                Some("messages_chat_seq_key"),
            ),
            (
                "INSERT INTO messages (chat_id, seq, sender_id, body, created_at, client_id) \
                 VALUES (1, 2, 1, 'again', 't', 'c1')",
                Some("messages_client_id_key"),
            ),
            (
                "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (1, 99, 't')",
                None,
            ),
        ];
        for (sql, name) in cases {
            assert_eq!(violation(&pool, sql).await.as_deref(), name, "{sql}");
        }
    }
}
