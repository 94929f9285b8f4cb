//! Durable state: seen webhook ids, the queue of accepted events, the tag
//! applied per image, the hold flag and the history of decisions.
//!
//! One SQLite file (`--state PATH`), or an in-memory database for tests and
//! demos. Several processes may open the same file: the server and the
//! `tagcast deployer hold|release|status` commands; WAL mode and a busy
//! timeout keep them from tripping over each other.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, Transaction};

/// The schema, applied idempotently at open. `user_version` says which
/// version a file has, for the migrations of later versions.
const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    image       TEXT NOT NULL,
    tag         TEXT NOT NULL,
    body        BLOB NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'done'))
);
CREATE INDEX IF NOT EXISTS events_pending ON events (status, seq);
CREATE TABLE IF NOT EXISTS applied (
    image      TEXT PRIMARY KEY,
    tag        TEXT NOT NULL,
    digest     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hold (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    held   INTEGER NOT NULL,
    reason TEXT,
    since  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    event_id TEXT NOT NULL,
    image    TEXT NOT NULL,
    tag      TEXT NOT NULL,
    digest   TEXT,
    outcome  TEXT NOT NULL,
    reason   TEXT NOT NULL
);
PRAGMA user_version = 1;
";

/// A failure of the state store.
#[derive(Debug, thiserror::Error)]
#[error("state store {location}: {source}")]
pub struct StoreError {
    location: String,
    #[source]
    source: sqlx::Error,
}

/// What happened to an event, as recorded in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The upgrade was applied.
    Applied,
    /// The event is not an update for what is deployed (another image,
    /// another stage, an api-version outside the requirement, not newer).
    Refused,
    /// A newer update for the same image arrived before this one was
    /// applied (for example during a hold); only the newest is applied.
    Superseded,
    /// Applying failed; the reason says how.
    Failed,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Refused => "refused",
            Self::Superseded => "superseded",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "applied" => Self::Applied,
            "superseded" => Self::Superseded,
            "failed" => Self::Failed,
            _ => Self::Refused,
        }
    }
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When the decision was taken.
    pub at: String,
    /// The event id (= `webhook-id`).
    pub event_id: String,
    /// The normalized repository.
    pub image: String,
    /// The tag, as pushed.
    pub tag: String,
    /// The digest, when the event had a valid one.
    pub digest: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// Why, in words.
    pub reason: String,
}

/// The tag that is deployed for an image, as far as this deployer knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The normalized repository.
    pub image: String,
    /// The tag, as pushed.
    pub tag: String,
    /// The digest it was pinned to.
    pub digest: String,
    /// The event that brought it.
    pub event_id: String,
    /// When it was applied.
    pub applied_at: String,
}

/// The hold flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    /// Whether updates are held back.
    pub held: bool,
    /// Why, as the operator said.
    pub reason: Option<String>,
    /// Since when the flag has its value.
    pub since: Option<String>,
}

/// An accepted event waiting to be applied.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// The `webhook-id`.
    pub webhook_id: String,
    /// The exact body as received (the signed bytes).
    pub body: Vec<u8>,
}

/// Everything `tagcast deployer status` shows; in JSON (`GET /status`,
/// `status --format json`) with camelCase members like every other API.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The hold flag.
    pub hold: Hold,
    /// The applied tag per image.
    pub applied: Vec<Applied>,
    /// How many accepted events wait to be applied.
    pub pending: i64,
    /// The newest history entries, newest first.
    pub history: Vec<HistoryEntry>,
}

/// The state store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// The one writer connection.
    pool: SqlitePool,
    /// Read-only connections (the writer itself for an in-memory store).
    reader: SqlitePool,
    location: String,
}

/// How many read-only connections a state file gets.
const READERS: u32 = 4;

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Creates the state file readable and writable by its owner only (0600)
/// before SQLite opens it, and takes group and other access away from an
/// existing one and its `-wal` and `-shm` files: they hold the applied
/// tags, the history and the bodies of queued callbacks. SQLite creates
/// `-wal` and `-shm` with the mode of the database file.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let mut name = path.as_os_str().to_owned();
        let base = name.clone();
        for suffix in ["", "-wal", "-shm"] {
            name.clone_from(&base);
            name.push(suffix);
            match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Store {
    /// Open (and create if missing) the SQLite file at `path`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the file cannot be opened or is not a state file.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        owner_only(path).map_err(|e| StoreError {
            location: location.clone(),
            source: sqlx::Error::Io(e),
        })?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|source| StoreError {
                location: location.clone(),
                source,
            })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // One writer: SQLite takes one at a time anyway, and writers that
        // contend inside SQLite wait in its busy handler, which sleeps
        // (1 ms, 2 ms, 5 ms, …); queued on the pool they are woken in turn.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError {
                location: location.clone(),
                source,
            })?;
        let mut store = Self::init(pool, location.clone()).await?;
        // Readers beside it: WAL lets them read while it writes.
        store.reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.read_only(true))
            .await
            .map_err(|source| StoreError { location, source })?;
        Ok(store)
    }

    /// A fresh in-memory store: nothing survives the process (`tagcast
    /// deployer --ephemeral`).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if SQLite cannot start.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let location = ":memory:".to_owned();
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(|source| StoreError {
            location: location.clone(),
            source,
        })?;
        // One connection: each in-memory connection would be its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| StoreError {
                location: location.clone(),
                source,
            })?;
        Self::init(pool, location).await
    }

    async fn init(pool: SqlitePool, location: String) -> Result<Self, StoreError> {
        let store = Self {
            reader: pool.clone(),
            pool,
            location,
        };
        sqlx::raw_sql(SCHEMA)
            .execute(&store.pool)
            .await
            .map_err(|e| store.err(e))?;
        Ok(store)
    }

    fn err(&self, source: sqlx::Error) -> StoreError {
        StoreError {
            location: self.location.clone(),
            source,
        }
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin().await.map_err(|e| self.err(e))
    }

    /// Remember an accepted event for the worker. Returns `false` when the
    /// `webhook-id` was seen before (the delivery is a duplicate).
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn enqueue(&self, webhook_id: &str, image: &str, tag: &str, body: &[u8]) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT OR IGNORE INTO events (webhook_id, received_at, image, tag, body, status) \
             VALUES (?, ?, ?, ?, ?, 'pending')",
        )
        .bind(webhook_id)
        .bind(now())
        .bind(image)
        .bind(tag)
        .bind(body)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(result.rows_affected() == 1)
    }

    /// Remember an event that is decided at once (refused), with its history
    /// line. Returns `false` when the `webhook-id` was seen before.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn record_refused(&self, webhook_id: &str, entry: &HistoryEntry) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let result = sqlx::query(
            "INSERT OR IGNORE INTO events (webhook_id, received_at, image, tag, body, status) \
             VALUES (?, ?, ?, ?, x'', 'done')",
        )
        .bind(webhook_id)
        .bind(now())
        .bind(&entry.image)
        .bind(&entry.tag)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        insert_history(&mut tx, entry).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Whether a `webhook-id` was seen before.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn seen(&self, webhook_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM events WHERE webhook_id = ?")
            .bind(webhook_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.is_some())
    }

    /// The accepted events not yet applied, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn pending(&self) -> Result<Vec<PendingEvent>, StoreError> {
        let rows = sqlx::query("SELECT webhook_id, body FROM events WHERE status = 'pending' ORDER BY seq")
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|row| PendingEvent {
                webhook_id: row.get(0),
                body: row.get(1),
            })
            .collect())
    }

    /// Close a pending event with its history line; for an applied one,
    /// also move the image's applied tag. One transaction, so that a crash
    /// never leaves an applied upgrade unrecorded as applied and pending.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn finish(&self, entry: &HistoryEntry) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE events SET status = 'done' WHERE webhook_id = ?")
            .bind(&entry.event_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if entry.outcome == Outcome::Applied {
            sqlx::query(
                "INSERT INTO applied (image, tag, digest, event_id, applied_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (image) DO UPDATE SET tag = excluded.tag, digest = excluded.digest, \
                 event_id = excluded.event_id, applied_at = excluded.applied_at",
            )
            .bind(&entry.image)
            .bind(&entry.tag)
            .bind(entry.digest.as_deref().unwrap_or_default())
            .bind(&entry.event_id)
            .bind(&entry.at)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        insert_history(&mut tx, entry).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Queue a failed event again (after its cause was fixed): the event
    /// `event_id`, or the newest failed one. Returns the id queued, or
    /// `None` when there is no such failed event. The worker re-checks the
    /// update rule, so an event overtaken meanwhile is refused then.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn retry(&self, event_id: Option<&str>) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin().await?;
        // The event's latest history line must say failed; only events
        // that were queued (and so kept their body) can be queued again.
        let row = sqlx::query(
            "SELECT h.event_id FROM history h JOIN events e ON e.webhook_id = h.event_id \
             WHERE h.outcome = 'failed' AND e.status = 'done' AND length(e.body) > 0 \
             AND h.seq = (SELECT MAX(seq) FROM history WHERE event_id = h.event_id) \
             AND (?1 IS NULL OR h.event_id = ?1) \
             ORDER BY h.seq DESC LIMIT 1",
        )
        .bind(event_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.get(0);
        sqlx::query("UPDATE events SET status = 'pending' WHERE webhook_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Some(id))
    }

    /// The applied tag of an image, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn applied(&self, image: &str) -> Result<Option<Applied>, StoreError> {
        let row = sqlx::query("SELECT image, tag, digest, event_id, applied_at FROM applied WHERE image = ?")
            .bind(image)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(applied_from_row))
    }

    /// Record the tag that is deployed before the deployer's first update
    /// (`--current-tag`), unless an applied tag is known already.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn seed_applied(&self, image: &str, tag: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR IGNORE INTO applied (image, tag, digest, event_id, applied_at) VALUES (?, ?, '', '', ?)",
        )
        .bind(image)
        .bind(tag)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Put updates on hold (`held = true`) or release them.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn set_hold(&self, held: bool, reason: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hold (id, held, reason, since) VALUES (1, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET held = excluded.held, reason = excluded.reason, since = excluded.since",
        )
        .bind(held)
        .bind(reason)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The hold flag.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn hold(&self) -> Result<Hold, StoreError> {
        let row = sqlx::query("SELECT held, reason, since FROM hold WHERE id = 1")
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        Ok(match row {
            Some(row) => Hold {
                held: row.get(0),
                reason: row.get(1),
                since: row.get(2),
            },
            None => Hold {
                held: false,
                reason: None,
                since: None,
            },
        })
    }

    /// The newest `limit` history entries, newest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn history(&self, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, event_id, image, tag, digest, outcome, reason FROM history ORDER BY seq DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|row| HistoryEntry {
                at: row.get(0),
                event_id: row.get(1),
                image: row.get(2),
                tag: row.get(3),
                digest: row.get(4),
                outcome: Outcome::parse(row.get::<&str, _>(5)),
                reason: row.get(6),
            })
            .collect())
    }

    /// Hold flag, applied tags, queue length and the newest history.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on database failure.
    pub async fn status(&self, history: u32) -> Result<Status, StoreError> {
        let applied = sqlx::query("SELECT image, tag, digest, event_id, applied_at FROM applied ORDER BY image")
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(applied_from_row)
            .collect();
        let pending: i64 = sqlx::query("SELECT COUNT(*) FROM events WHERE status = 'pending'")
            .fetch_one(&self.reader)
            .await
            .map_err(|e| self.err(e))?
            .get(0);
        Ok(Status {
            hold: self.hold().await?,
            applied,
            pending,
            history: self.history(history).await?,
        })
    }

    /// Close the pool, flushing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.pool.close().await;
    }
}

fn applied_from_row(row: sqlx::sqlite::SqliteRow) -> Applied {
    Applied {
        image: row.get(0),
        tag: row.get(1),
        digest: row.get(2),
        event_id: row.get(3),
        applied_at: row.get(4),
    }
}

async fn insert_history(tx: &mut Transaction<'static, Sqlite>, entry: &HistoryEntry) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO history (at, event_id, image, tag, digest, outcome, reason) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(&entry.at)
        .bind(&entry.event_id)
        .bind(&entry.image)
        .bind(&entry.tag)
        .bind(entry.digest.as_deref())
        .bind(entry.outcome.as_str())
        .bind(&entry.reason)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A history entry stamped now.
pub(crate) fn entry(
    event_id: &str,
    image: &str,
    tag: &str,
    digest: Option<&str>,
    outcome: Outcome,
    reason: impl Into<String>,
) -> HistoryEntry {
    HistoryEntry {
        at: now(),
        event_id: event_id.to_owned(),
        image: image.to_owned(),
        tag: tag.to_owned(),
        digest: digest.map(str::to_owned),
        outcome,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedup_hold_and_history_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let store = Store::open(&path).await.unwrap();
            assert!(
                store
                    .enqueue("msg_1", "docker.io/a/b", "1.0.0-demo-200101-000000", b"{}")
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .enqueue("msg_1", "docker.io/a/b", "1.0.0-demo-200101-000000", b"{}")
                    .await
                    .unwrap()
            );
            store.set_hold(true, Some("incident 42")).await.unwrap();
            let e = entry(
                "msg_1",
                "docker.io/a/b",
                "1.0.0-demo-200101-000000",
                Some("sha256:00"),
                Outcome::Applied,
                "ok",
            );
            store.finish(&e).await.unwrap();
            store.close().await;
        }
        let store = Store::open(&path).await.unwrap();
        assert!(store.seen("msg_1").await.unwrap());
        assert!(!store.seen("msg_2").await.unwrap());
        let hold = store.hold().await.unwrap();
        assert!(hold.held);
        assert_eq!(hold.reason.as_deref(), Some("incident 42"));
        assert_eq!(
            store.applied("docker.io/a/b").await.unwrap().unwrap().tag,
            "1.0.0-demo-200101-000000"
        );
        assert!(store.pending().await.unwrap().is_empty());
        let history = store.history(10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].outcome, Outcome::Applied);
    }

    #[tokio::test]
    async fn refused_events_are_seen_and_in_history() {
        let store = Store::in_memory().await.unwrap();
        let e = entry("msg_9", "docker.io/a/b", "t", None, Outcome::Refused, "other stage");
        assert!(store.record_refused("msg_9", &e).await.unwrap());
        assert!(!store.record_refused("msg_9", &e).await.unwrap());
        assert!(store.seen("msg_9").await.unwrap());
        let status = store.status(5).await.unwrap();
        assert_eq!(status.history.len(), 1);
        assert_eq!(status.history[0].reason, "other stage");
        assert_eq!(status.pending, 0);
    }

    #[tokio::test]
    async fn only_failed_queued_events_can_be_retried() {
        let store = Store::in_memory().await.unwrap();
        assert_eq!(store.retry(None).await.unwrap(), None);
        for id in ["msg_1", "msg_2", "msg_3"] {
            store.enqueue(id, "docker.io/a/b", "t", b"{}").await.unwrap();
        }
        store
            .finish(&entry(
                "msg_1",
                "docker.io/a/b",
                "t",
                None,
                Outcome::Failed,
                "push failed",
            ))
            .await
            .unwrap();
        store
            .finish(&entry("msg_2", "docker.io/a/b", "t", None, Outcome::Failed, "dirty"))
            .await
            .unwrap();
        store
            .finish(&entry("msg_3", "docker.io/a/b", "t", None, Outcome::Applied, "ok"))
            .await
            .unwrap();
        let refused = entry("msg_4", "docker.io/a/b", "t", None, Outcome::Failed, "x");
        store.record_refused("msg_4", &refused).await.unwrap();

        assert_eq!(store.retry(Some("msg_3")).await.unwrap(), None, "applied");
        assert_eq!(store.retry(Some("msg_4")).await.unwrap(), None, "no body kept");
        assert_eq!(
            store.retry(None).await.unwrap().as_deref(),
            Some("msg_2"),
            "the newest failed"
        );
        assert_eq!(store.retry(None).await.unwrap().as_deref(), Some("msg_1"));
        assert_eq!(store.retry(None).await.unwrap(), None, "both are pending now");
        let pending: Vec<String> = store
            .pending()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.webhook_id)
            .collect();
        assert_eq!(pending, ["msg_1", "msg_2"]);
    }

    #[tokio::test]
    async fn seed_does_not_overwrite_an_applied_tag() {
        let store = Store::in_memory().await.unwrap();
        store
            .seed_applied("docker.io/a/b", "1.0.0-demo-200101-000000")
            .await
            .unwrap();
        store
            .seed_applied("docker.io/a/b", "0.9.0-demo-200101-000000")
            .await
            .unwrap();
        assert_eq!(
            store.applied("docker.io/a/b").await.unwrap().unwrap().tag,
            "1.0.0-demo-200101-000000"
        );
    }
}
