//! PostgreSQL storage: every repository port over one sqlx pool, with the schema in
//! `migrations/postgres` applied at start-up. Uniqueness and membership are enforced by
//! constraints, so concurrent requests and several Parley instances stay consistent.

mod counters;
mod presence;

use std::time::Duration;

pub use counters::{PgLoginFailures, PgRateWindows};
pub use presence::PgPresence;

use sqlx::postgres::{PgPool, PgPoolOptions};

/// The PostgreSQL adapter.
#[derive(Clone)]
pub struct PgStore {
    read: PgPool,
    write: PgPool,
}

impl PgStore {
    /// Connects to `url` and applies pending migrations.
    ///
    /// # Errors
    /// When the server cannot be reached or a migration fails.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Its one pool (reads and writes share it), by name.
    fn pools(&self) -> Vec<(&'static str, &PgPool)> {
        vec![("postgres", &self.write)]
    }

    /// Wraps an existing pool; call [`PgStore::migrate`] before use.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            read: pool.clone(),
            write: pool,
        }
    }

    /// Applies the migrations in `migrations/postgres`.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.write)
            .await?;
        Ok(())
    }

    /// The pool, for health checks.
    pub fn pool(&self) -> &PgPool {
        &self.write
    }
}

crate::adapters::sql::sql_store!(PgStore, sqlx::Postgres);
