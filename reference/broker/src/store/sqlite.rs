//! The SQLite backend: one file (WAL, `synchronous = FULL`) or an in-memory
//! database. One writer connection serializes writes, so a claim needs no
//! row lock and a hook is durable when its transaction commits; a file
//! database has a pool of read-only connections beside it, which WAL lets
//! read while the writer writes.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::backend::{Backend, Rows, Value, to_rows};
use super::sql::{SqlStore, migrator};
use super::{StoreError, StoreResult};
use crate::keys::Keys;

/// How many read-only connections a file database gets.
const READERS: u32 = 4;

/// The SQLite backend of [`SqlStore`].
#[derive(Debug, Clone)]
pub struct Sqlite {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Opens a throw-away database (tests, tools) with a random secret
    /// key: [`Self::open_keyed`] with [`Keys::ephemeral`]. A file opened so
    /// is refused by every later open.
    ///
    /// # Errors
    ///
    /// As [`Self::open_keyed`].
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_keyed(url, &Keys::ephemeral()).await
    }

    /// Opens (creating if missing) and migrates the database of a
    /// `sqlite://PATH` or `sqlite::memory:` URL, and settles it with the
    /// secret keys.
    ///
    /// # Errors
    ///
    /// The database's error, a failed migration, or
    /// [`super::StoreError::WrongKey`].
    pub async fn open_keyed(url: &str, keys: &Keys) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // A secret replaced or sealed leaves no copy in a freed cell or
            // page of the file (finding 4 of issue 11).
            .pragma("secure_delete", "on");
        let in_memory = options.get_filename().as_os_str() == ":memory:" || url.contains(":memory:");
        if !in_memory {
            restrict_files(options.get_filename())?;
        }
        // One writer: SQLite has one anyway, and an in-memory database
        // lives exactly as long as its connection.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
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
            (
                4,
                "fair claims",
                include_str!("../../migrations/sqlite/0004_fair_claims.sql"),
            ),
            (
                5,
                "managed hooks",
                include_str!("../../migrations/sqlite/0005_managed_hooks.sql"),
            ),
            (
                6,
                "subscription registry url",
                include_str!("../../migrations/sqlite/0006_subscription_registry_url.sql"),
            ),
            (
                9,
                "previous secret",
                include_str!("../../migrations/sqlite/0009_previous_secret.sql"),
            ),
            (
                10,
                "sealed secrets",
                include_str!("../../migrations/sqlite/0010_sealed_secrets.sql"),
            ),
            (
                12,
                "decisions",
                include_str!("../../migrations/sqlite/0012_decisions.sql"),
            ),
        ])
        .run(&writer)
        .await?;
        if !in_memory {
            // Again: SQLite sets an empty database file it opens to its
            // default mode (0644, `robust_open` in its Unix VFS), so the
            // file made above may have been widened before the first
            // migration wrote to it; a file with content is left as it is.
            restrict_files(options.get_filename())?;
        }
        let reader = if in_memory {
            // Another connection would open another, empty database.
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READERS)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.read_only(true))
                .await?
        };
        let checkpoint = writer.clone();
        let store = SqlStore::settled(Sqlite { writer, reader }, keys).await?;
        if !in_memory {
            // Plaintext an older broker wrote, just sealed, may still be in
            // WAL frames: copy them into the file and empty the WAL.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&checkpoint)
                .await?;
        }
        Ok(store)
    }
}

/// Creates the database file with mode 0600 if it is missing, and takes
/// group and other access away from it and from its `-wal` and `-shm`
/// files: they hold sealed secrets and hook token hashes. SQLite creates
/// `-wal` and `-shm` with the permissions of the database file
/// (`findCreateFileMode` in its Unix VFS), so once the main file is 0600
/// they are too; an umask is not involved.
fn restrict_files(path: &std::path::Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let io = |source: std::io::Error| StoreError::File {
            path: path.display().to_string(),
            source,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            let Ok(meta) = std::fs::metadata(&file) else { continue };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn query<'q>(sql: &'q str, args: &'q [Value<'q>]) -> sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments<'q>> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match *arg {
            Value::Int(i) => query.bind(i),
            Value::Text(s) => query.bind(s),
        };
    }
    query
}

impl Backend for Sqlite {
    type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

    const NAME: &'static str = "sqlite";
    const CLAIM_LOCK: &'static str = "";
    const ROW_LOCK: &'static str = "";

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
