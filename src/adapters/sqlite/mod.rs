//! SQLite storage, the embedded default: the same schema and queries as PostgreSQL over a file
//! in WAL mode. Readers share a pool; all writes go through a single connection, so writers
//! queue in the pool instead of failing with `database is locked`.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How SQLite syncs its write-ahead log, traded between speed and what a power loss can take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// Syncs at checkpoints, not at every commit. A crash of Parley loses nothing; a power loss
    /// or an operating-system crash may lose the last commits before it, acknowledged ones
    /// included, but never corrupts the database.
    #[default]
    Normal,
    /// Syncs the log at every commit: an acknowledged message survives a power loss too, at
    /// the cost of one disk flush per write.
    Full,
}

/// The SQLite adapter.
#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// Keeps the log folded into the main file; stops with the last clone of the store.
    checkpointer: Option<Arc<Checkpointer>>,
}

impl SqliteStore {
    /// Its pools by name: readers and the one writer (one pool when the database is in
    /// memory).
    fn pools(&self) -> Vec<(&'static str, &SqlitePool)> {
        if self.checkpointer.is_none() {
            return vec![("sqlite_write", &self.write)];
        }
        vec![("sqlite_read", &self.read), ("sqlite_write", &self.write)]
    }

    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and applies pending migrations.
    ///
    /// # Errors
    /// When the file cannot be opened or a migration fails.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, SqliteSync::Normal).await
    }

    /// [`SqliteStore::connect`] with the given durability of a commit.
    ///
    /// # Errors
    /// When the file cannot be opened or a migration fails.
    pub async fn connect_with(url: &str, sync: SqliteSync) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                SqliteSync::Normal => SqliteSynchronous::Normal,
                SqliteSync::Full => SqliteSynchronous::Full,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Whenever the log restarts, it is cut back to this size.
            .pragma("journal_size_limit", WAL_LIMIT.to_string())
            // The text of a deleted message is overwritten with zeros in the file, not left
            // behind in a free page.
            .pragma("secure_delete", "ON");
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        if in_memory {
            // A private in-memory database exists on one connection only, so readers share it;
            // it has no log on disk.
            return Ok(Self {
                read: write.clone(),
                write,
                checkpointer: None,
            });
        }
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().read_only(true))
            .await?;
        let mut wal = options.get_filename().as_os_str().to_owned();
        wal.push("-wal");
        let checkpointer = Checkpointer::start(write.clone(), PathBuf::from(wal));
        Ok(Self {
            read,
            write,
            checkpointer: Some(Arc::new(checkpointer)),
        })
    }

    /// Writes a consistent, compacted copy of the database at `url` to `dest` with
    /// `VACUUM INTO`, which reads it in one transaction: servers may keep writing meanwhile,
    /// and the copy is the database as of one instant. Nothing is migrated or written in the
    /// source.
    ///
    /// # Errors
    /// When `dest` exists (it is never overwritten), the database does not exist, or the copy
    /// fails.
    pub async fn backup(url: &str, dest: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context as _;
        use sqlx::Connection as _;

        if dest.exists() {
            anyhow::bail!("{} already exists; choose a new file", dest.display());
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        let source = options.get_filename().display().to_string();
        let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&options)
            .await
            .with_context(|| format!("cannot open the SQLite database {source}"))?;
        let dest_str = dest
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", dest.display()))?;
        let copied = sqlx::query("VACUUM INTO $1")
            .bind(dest_str)
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot copy {source} to {}", dest.display()));
        let _ = conn.close().await;
        copied.map(drop)
    }

    /// Folds the log into the main file and closes every connection, so that the database is
    /// one file again. Call it when the server stops; the store is unusable afterwards.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.task.abort();
        }
        self.read.close().await;
        // With the readers gone the last connection folds the whole log in and deletes it.
        if let Err(e) = checkpoint(&self.write, "TRUNCATE").await {
            tracing::warn!(error = %e, "final SQLite checkpoint failed");
        }
        self.write.close().await;
    }
}

/// The log size past which a restart of the log is forced, and to which it is cut back.
const WAL_LIMIT: u64 = 16 * 1024 * 1024;
/// How often the log is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long without writes before the log is folded in and emptied.
const IDLE_AFTER: Duration = Duration::from_secs(10);

/// Runs `PRAGMA wal_checkpoint(mode)` on the writer; SQLite's answer says whether readers kept
/// it from finishing.
async fn checkpoint(write: &SqlitePool, mode: &str) -> Result<bool, sqlx::Error> {
    let (busy, _frames, _copied): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "PRAGMA wal_checkpoint({mode})"
    )))
    .fetch_one(write)
    .await?;
    Ok(busy == 0)
}

/// A background task that bounds the log.
///
/// SQLite's own automatic checkpoint runs on the committing connection once the log holds
/// 1000 pages, and it copies what it can into the main file, but it never waits for readers:
/// the log can only start over from its beginning at an instant when no reader is still
/// reading through it, and with a pool of readers busy under steady load that instant may
/// never come, so the log grows by every commit. When it passes [`WAL_LIMIT`] this task runs
/// a `TRUNCATE` checkpoint, which waits for the readers of the moment to finish (new ones read
/// the main file meanwhile), then restarts and empties the log. When no write has come for
/// [`IDLE_AFTER`], it empties the log too, returning the space.
struct Checkpointer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Checkpointer {
    fn start(write: SqlitePool, wal: PathBuf) -> Self {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Ok(meta) = std::fs::metadata(&wal) else {
                    continue;
                };
                let idle = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|e| e >= IDLE_AFTER);
                if meta.len() > WAL_LIMIT || (idle && meta.len() > 0) {
                    match checkpoint(&write, "TRUNCATE").await {
                        Ok(true) => {}
                        Ok(false) => tracing::debug!("SQLite checkpoint waited out by readers"),
                        Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
                    }
                }
            }
        });
        Self { task }
    }
}

crate::adapters::sql::sql_store!(SqliteStore, sqlx::Sqlite);
