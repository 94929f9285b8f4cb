//! The PostgreSQL backend, for several broker replicas on one database:
//! claims take rows with `FOR UPDATE SKIP LOCKED`, so no two replicas work
//! on the same delivery. Readers have their own pool, so a read never waits
//! for a connection behind the writers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};

use super::StoreResult;
use super::backend::{Backend, Rows, Value, to_rows};
use super::sql::{SqlStore, migrator};
use crate::keys::Keys;

/// The PostgreSQL backend of [`SqlStore`].
#[derive(Debug, Clone)]
pub struct Postgres {
    writer: PgPool,
    reader: PgPool,
}

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to, migrates and settles with the secret keys the database
    /// of a `postgres://…` URL.
    ///
    /// # Errors
    ///
    /// The database's error, a failed migration, or
    /// [`super::StoreError::WrongKey`].
    pub async fn open_keyed(url: &str, keys: &Keys) -> StoreResult<Self> {
        Self::open_with(PgConnectOptions::from_str(url)?, keys).await
    }

    /// Connects with options (tests put each store in its own schema with
    /// `options([("search_path", …)])`), migrates and settles.
    ///
    /// # Errors
    ///
    /// The database's error, a failed migration, or
    /// [`super::StoreError::WrongKey`].
    pub async fn open_with(options: PgConnectOptions, keys: &Keys) -> StoreResult<Self> {
        let writer = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
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
            (
                4,
                "fair claims",
                include_str!("../../migrations/postgres/0004_fair_claims.sql"),
            ),
            (
                5,
                "managed hooks",
                include_str!("../../migrations/postgres/0005_managed_hooks.sql"),
            ),
            (
                6,
                "subscription registry url",
                include_str!("../../migrations/postgres/0006_subscription_registry_url.sql"),
            ),
            (
                9,
                "previous secret",
                include_str!("../../migrations/postgres/0009_previous_secret.sql"),
            ),
            (
                10,
                "sealed secrets",
                include_str!("../../migrations/postgres/0010_sealed_secrets.sql"),
            ),
            (
                12,
                "decisions",
                include_str!("../../migrations/postgres/0012_decisions.sql"),
            ),
        ])
        .run(&writer)
        .await?;
        let reader = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        SqlStore::settled(Postgres { writer, reader }, keys).await
    }
}

fn query<'q>(sql: &'q str, args: &'q [Value<'q>]) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match *arg {
            Value::Int(i) => query.bind(i),
            Value::Text(s) => query.bind(s),
        };
    }
    query
}

impl Backend for Postgres {
    type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

    const NAME: &'static str = "postgres";
    const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";
    const ROW_LOCK: &'static str = " FOR UPDATE";

    async fn begin(&self) -> StoreResult<Self::Tx> {
        Ok(self.writer.begin().await?)
    }

    async fn commit(tx: Self::Tx) -> StoreResult<()> {
        Ok(tx.commit().await?)
    }

    async fn execute<'a>(tx: &'a mut Self::Tx, sql: &'a str, args: &'a [Value<'a>]) -> StoreResult<u64> {
        Ok(query(sql, args).execute(&mut **tx).await?.rows_affected())
    }

    async fn fetch<'a>(tx: &'a mut Self::Tx, sql: &'a str, args: &'a [Value<'a>]) -> StoreResult<Rows> {
        to_rows(&query(sql, args).fetch_all(&mut **tx).await?)
    }

    async fn read<'a>(&'a self, sql: &'a str, args: &'a [Value<'a>]) -> StoreResult<Rows> {
        to_rows(&query(sql, args).fetch_all(&self.reader).await?)
    }
}
