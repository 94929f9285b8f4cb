//! Fresh stores for tests: a new SQLite database or a new PostgreSQL schema each time.

#![allow(dead_code)]

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use tagcast_broker::store::{PostgresStore, SqliteStore, Store};

/// The PostgreSQL server of `.ci/start-parts`.
pub fn postgres_url() -> String {
    std::env::var("TAGCAST_TEST_POSTGRES_URL").expect("TAGCAST_TEST_POSTGRES_URL names a PostgreSQL server")
}

/// A new, empty schema on the test server; its name.
pub async fn fresh_schema() -> String {
    use sqlx::Connection as _;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&postgres_url())
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    schema
}

/// Options that put every connection in `schema`.
pub fn schema_options(schema: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(&postgres_url())
        .expect("a PostgreSQL URL")
        .options([("search_path", schema)])
}

/// A store on a new PostgreSQL schema.
pub async fn postgres() -> Arc<dyn Store> {
    let schema = fresh_schema().await;
    Arc::new(
        PostgresStore::open_with(schema_options(&schema))
            .await
            .expect("open PostgreSQL store"),
    )
}

/// A store on a new in-memory SQLite database.
pub async fn sqlite() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open("sqlite::memory:").await.expect("open SQLite store"))
}

/// Runs one async test case against a fresh SQLite store and, when
/// ignored tests run, a fresh PostgreSQL schema.
#[macro_export]
macro_rules! store_cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::support::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs postgres"]
                async fn $case() {
                    super::$case($crate::support::postgres().await).await;
                }
            )*
        }
    };
}
