//! Finding 4 of issue 11: the broker's secrets at rest. Subscription and
//! hook secrets, hook tokens and managed hook URLs are sealed under the
//! broker's secret key; hook tokens are looked up by a keyed hash; a
//! database written under another key is refused; keys rotate; plaintext
//! left by an older broker is sealed at start.

mod hook_tokens;
mod keys;
mod plaintext;
mod rotation;
mod sealed;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tagcast_broker::keys::{KeySource, Keyring, Keys, SecretKey};
use tagcast_broker::store::{ManagedHookRow, Store};
use tagcast_spec::webhook::{self, Secret};

use crate::support::broker::{Broker, TOKEN};
use crate::support::distribution::{MEDIA_TYPE_V1, blob_push, envelope, manifest_push};
use crate::support::receiver::{Received, Receiver};

pub const REPO: &str = "registry.example.org:5000/team/app";

/// A key of 32 bytes `byte`, written to `<dir>/<name>` as 64 hex digits;
/// the keys of a store opened with it, named by that file.
pub fn key_file(dir: &Path, name: &str, byte: u8) -> (Keys, PathBuf) {
    let text = format!("{byte:02x}").repeat(32);
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    let key = SecretKey::parse(&text).unwrap();
    (Keys::new(Keyring::new(&key, KeySource::File(path.clone()))), path)
}

/// The keys of `current` with `previous` as the key before a rotation.
pub fn rotating(current: &Keys, previous: &Keys) -> Keys {
    Keys {
        current: current.current.clone(),
        previous: Some(previous.current.clone()),
    }
}

/// A database a test opens more than once, with various keys.
#[derive(Clone)]
pub enum Db {
    Sqlite(String),
    Postgres(String),
}

impl Db {
    /// A SQLite file in `dir`.
    pub fn sqlite(dir: &Path) -> Self {
        Self::Sqlite(format!("sqlite://{}", dir.join("broker.db").display()))
    }

    /// A fresh PostgreSQL schema.
    pub async fn postgres() -> Self {
        Self::Postgres(crate::support::fresh_schema().await)
    }

    pub async fn open(&self, keys: &Keys) -> Result<Arc<dyn Store>, tagcast_broker::store::StoreError> {
        use tagcast_broker::store::{PostgresStore, SqliteStore};
        Ok(match self {
            Self::Sqlite(url) => Arc::new(SqliteStore::open_keyed(url, keys).await?),
            Self::Postgres(schema) => {
                Arc::new(PostgresStore::open_with(crate::support::schema_options(schema), keys).await?)
            }
        })
    }

    /// Every row, as text.
    pub async fn rows(&self) -> String {
        match self {
            Self::Sqlite(url) => sqlite_rows(url).await,
            Self::Postgres(schema) => postgres_rows(schema).await,
        }
    }
}

/// What a scenario stored: every secret it used, by name.
pub struct Used {
    pub secrets: Vec<(&'static str, String)>,
    /// The distribution hook URL (its token is in `secrets`).
    pub hook: String,
    /// The subscription secret of `svc-d` now (after its replacement).
    pub secret: Secret,
    /// The generic hook source's token and secret.
    pub generic_token: String,
    pub generic_secret: String,
}

/// Registers a distribution subscriber `svc-d` (then replaces its secret,
/// so a previous secret is stored too) and a generic one `svc-g` (a hook
/// secret), records a managed hook whose URL carries the token, and pushes
/// one tag through the hook: the callback is signed with both secrets.
/// Every secret the broker was given or gave is returned.
pub async fn store_every_kind_of_secret(store: Arc<dyn Store>, receiver: &Receiver) -> Used {
    let broker = Broker::start(store.clone(), |_| {}).await;
    let created = broker.subscribe("svc-d", &[REPO], "production", &receiver.url).await;
    let first = created["subscription"]["secret"].as_str().unwrap().to_owned();
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let token = hook.rsplit('/').next().unwrap().to_owned();
    let second = Secret::generate(rand::random());
    let body = crate::support::registration(
        "svc-d",
        json!({
            "images": [REPO],
            "stage": "production",
            "callbackUrl": receiver.url,
            "secret": second.expose(),
            "registry": {"kind": "distribution"}
        }),
    );
    let r = broker
        .client
        .put(broker.api("/services/svc-d"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let body = crate::support::registration(
        "svc-g",
        json!({
            "images": ["other.example.org/team/app"],
            "stage": "production",
            "callbackUrl": receiver.url,
            "registry": {"kind": "generic"}
        }),
    );
    let r = broker.register(&body).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let generic = &created["subscription"]["hooks"][0];
    let generic_token = generic["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let hook_secret = generic["secret"].as_str().expect("generic signs").to_owned();
    let generic_secret = created["subscription"]["secret"].as_str().unwrap().to_owned();
    store
        .put_managed_hook(&ManagedHookRow {
            registry: "harbor.example.org".into(),
            scope: "team".into(),
            kind: "harbor".into(),
            path: "team/app".into(),
            url: format!("{}/hooks/harbor/{generic_token}", broker.url),
        })
        .await
        .unwrap();

    push(&broker, &hook, "ev-sealed-1", "1.1.0-production-201108-195630", 1).await;
    let got = receiver.wait_for(1).await;
    let previous = Secret::parse(&first).unwrap();
    assert!(verifies_with(&got[0], &second) && verifies_with(&got[0], &previous));
    broker.stop().await;

    // Secrets as they may appear: whole, and the key without its prefix.
    let key = |s: &str| s.trim_start_matches("whsec_").to_owned();
    Used {
        secrets: vec![
            ("the first subscription secret", key(&first)),
            ("the replacing subscription secret", key(&second.expose())),
            ("the generic subscription secret", key(&generic_secret)),
            ("the distribution hook token", token),
            ("the generic hook token", generic_token.clone()),
            ("the generic hook secret", key(&hook_secret)),
        ],
        hook,
        secret: second,
        generic_token,
        generic_secret: hook_secret,
    }
}

/// Posts one tagged push to a distribution hook URL; its status.
pub async fn push(broker: &Broker, hook: &str, id: &str, tag: &str, n: u8) -> u16 {
    let body = envelope(vec![
        blob_push("team/app", n),
        manifest_push(id, "team/app", Some(tag), n),
    ]);
    broker
        .client
        .post(hook)
        .header("content-type", MEDIA_TYPE_V1)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Whether a callback's signature verifies with `secret`.
pub fn verifies_with(cb: &Received, secret: &Secret) -> bool {
    webhook::verify(
        std::slice::from_ref(secret),
        Some(cb.header("webhook-id")),
        Some(cb.header("webhook-timestamp")),
        Some(cb.header("webhook-signature")),
        &cb.body,
        chrono::Utc::now().timestamp(),
        webhook::DEFAULT_TOLERANCE,
    )
    .is_ok()
}

/// The bytes of a SQLite database and its `-wal` and `-shm` files.
pub fn sqlite_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(more) = std::fs::read(format!("{}{suffix}", db.display())) {
            bytes.extend(more);
        }
    }
    assert!(!bytes.is_empty(), "the database files exist");
    bytes
}

/// Every row of every table of a SQLite database, as text (through a
/// connection of its own, so a comparison sees rows, not pages).
pub async fn sqlite_rows(url: &str) -> String {
    use sqlx::{Connection as _, Row as _};
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut text = String::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let sql = format!(
            "SELECT {} AS row FROM \"{table}\" ORDER BY rowid",
            columns
                .iter()
                .map(|c| format!("quote(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" || ',' || ")
        );
        for row in sqlx::query(&sql).fetch_all(&mut conn).await.unwrap() {
            text.push_str(&table);
            text.push_str(&row.get::<String, _>("row"));
            text.push('\n');
        }
    }
    text
}

/// Every row of every table of a PostgreSQL schema, as text.
pub async fn postgres_rows(schema: &str) -> String {
    use sqlx::{Connection as _, Row as _};
    let mut conn = sqlx::PgConnection::connect_with(&crate::support::schema_options(schema))
        .await
        .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1")
            .bind(schema)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(tables.iter().any(|t| t == "hook_sources"), "{tables:?}");
    let mut text = String::new();
    for table in tables {
        for row in sqlx::query(&format!("SELECT t::text AS row FROM {table} t ORDER BY t::text"))
            .fetch_all(&mut conn)
            .await
            .unwrap()
        {
            text.push_str(&row.get::<String, _>("row"));
            text.push('\n');
        }
    }
    text
}

/// Panics naming the first secret found in `haystack`.
pub fn assert_absent(haystack: &[u8], used: &Used, r#where: &str) {
    for (what, value) in &used.secrets {
        assert!(
            !haystack.windows(value.len()).any(|w| w == value.as_bytes()),
            "{what} is in {where} in plaintext"
        );
    }
}
