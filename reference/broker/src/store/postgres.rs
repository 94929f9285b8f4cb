//! The PostgreSQL store, for several broker replicas on one database:
//! claims take rows with `FOR UPDATE SKIP LOCKED`, so no two replicas work
//! on the same delivery.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::queries::{impl_store, migrator};

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to and migrates the database of a `postgres://…` URL.
    ///
    /// # Errors
    ///
    /// The database's error, or a failed migration.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with options (tests put each store in its own schema with
    /// `options([("search_path", …)])`) and migrates.
    ///
    /// # Errors
    ///
    /// The database's error, or a failed migration.
    pub async fn open_with(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        migrator(&[
            (1, "initial", include_str!("../../migrations/postgres/0001_initial.sql")),
            (
                2,
                "registry api",
                include_str!("../../migrations/postgres/0002_registry_api.sql"),
            ),
            (
                3,
                "matching index",
                include_str!("../../migrations/postgres/0003_matching_index.sql"),
            ),
        ])
        .run(&pool)
        .await?;
        Ok(Self { pool })
    }
}

impl_store!(
    PostgresStore,
    sqlx::Postgres,
    backend = "postgres",
    claim_lock = " FOR UPDATE SKIP LOCKED",
    row_lock = " FOR UPDATE"
);
