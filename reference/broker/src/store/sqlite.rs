//! The SQLite store: one file (WAL, `synchronous = FULL`) or an in-memory
//! database. One connection serializes writers, so a claim needs no row lock
//! and a hook is durable when its transaction commits.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::queries::{impl_store, migrator};

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database of a
    /// `sqlite://PATH` or `sqlite::memory:` URL.
    ///
    /// # Errors
    ///
    /// The database's error, or a failed migration.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // One connection: SQLite has one writer anyway, and an in-memory
        // database lives exactly as long as its connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        migrator(&[
            (1, "initial", include_str!("../../migrations/sqlite/0001_initial.sql")),
            (
                2,
                "registry api",
                include_str!("../../migrations/sqlite/0002_registry_api.sql"),
            ),
            (
                3,
                "matching index",
                include_str!("../../migrations/sqlite/0003_matching_index.sql"),
            ),
        ])
        .run(&pool)
        .await?;
        Ok(Self { pool })
    }
}

impl_store!(
    SqliteStore,
    sqlx::Sqlite,
    backend = "sqlite",
    claim_lock = "",
    row_lock = ""
);
