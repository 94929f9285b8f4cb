//! Where the key comes from, and a database written under another key
//! refused (point 3 of finding 4).

use std::sync::Arc;

use tagcast_broker::config::{Config, ConfigError, KeySetting, Settings};
use tagcast_broker::store::{PostgresStore, SqliteStore, Store, StoreError};

use super::{key_file, store_every_kind_of_secret};
use crate::support::receiver::Receiver;

fn config(database_url: &str, env_key: Option<&str>) -> Result<Config, ConfigError> {
    let settings = Settings {
        database_url: Some(database_url.to_owned()),
        ..Settings::default()
    };
    Config::from_settings_with_env(settings, &|var| {
        (var == "TAGCAST_SECRET_KEY")
            .then(|| env_key.map(str::to_owned))
            .flatten()
    })
}

#[test]
fn without_a_configured_key_sqlite_files_get_a_key_file_and_postgres_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("broker.db");
    let sqlite = config(&format!("sqlite://{}", db.display()), None).unwrap();
    let file = dir.path().join("broker.db.key");
    assert_eq!(sqlite.secret_key, KeySetting::Generated(file.clone()));
    let (keys, generated) = sqlite.keys().unwrap();
    assert_eq!(generated.as_deref(), Some(file.as_path()), "created at first start");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (again, generated) = sqlite.keys().unwrap();
    assert_eq!(generated, None, "read, not replaced, afterwards");
    assert_eq!(again.current.check_value(), keys.current.check_value());
    assert!(keys.current.source().to_string().contains("broker.db.key"));

    for memory in ["sqlite::memory:", "sqlite://:memory:"] {
        assert_eq!(config_key(memory), KeySetting::Ephemeral, "{memory}");
    }

    let err = config("postgres://tagcast@127.0.0.1/tagcast", None).unwrap_err();
    assert!(matches!(err, ConfigError::KeyRequired), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("a PostgreSQL broker needs TAGCAST_SECRET_KEY or --secret-key-file")
            && message.contains("every replica must use the same key"),
        "{message}"
    );
    let hex = "ab".repeat(32);
    let given = config("postgres://tagcast@127.0.0.1/tagcast", Some(&hex)).unwrap();
    assert!(matches!(given.secret_key, KeySetting::Env(_)));
    let err = config("postgres://tagcast@127.0.0.1/tagcast", Some("not-a-key")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("TAGCAST_SECRET_KEY") && message.contains("64 hex digits"),
        "{message}"
    );
    assert!(
        !message.contains("not-a-key"),
        "the key's text is never shown: {message}"
    );
    assert!(!format!("{given:?}").contains(&hex), "Debug shows no key");
}

fn config_key(url: &str) -> KeySetting {
    config(url, None).unwrap().secret_key
}

#[tokio::test]
async fn a_sqlite_database_written_under_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = key_file(dir.path(), "a.key", 0xa1);
    let (b, _) = key_file(dir.path(), "b.key", 0xb2);
    let db = dir.path().join("broker.db");
    let url = format!("sqlite://{}", db.display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_keyed(&url, &a).await.unwrap());
    let receiver = Receiver::start(&[]).await;
    let used = store_every_kind_of_secret(store.clone(), &receiver).await;
    drop(store);
    let before = super::sqlite_rows(&url).await;

    let err = SqliteStore::open_keyed(&url, &b).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("another secret key") && message.contains("b.key"),
        "names the key's source: {message}"
    );
    assert_eq!(
        super::sqlite_rows(&url).await,
        before,
        "nothing written under the wrong key"
    );

    // The right key still opens every secret.
    let store = SqliteStore::open_keyed(&url, &a).await.unwrap();
    assert_eq!(
        store.subscription_secret("svc-d").await.unwrap(),
        Some(used.secret.expose())
    );
}

#[tokio::test]
#[ignore = "needs postgres"]
async fn a_postgres_database_written_under_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = key_file(dir.path(), "a.key", 0xa1);
    let (b, _) = key_file(dir.path(), "b.key", 0xb2);
    let schema = crate::support::fresh_schema().await;
    let options = crate::support::schema_options(&schema);
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open_with(options.clone(), &a).await.unwrap());
    let receiver = Receiver::start(&[]).await;
    let used = store_every_kind_of_secret(store.clone(), &receiver).await;
    drop(store);
    let before = super::postgres_rows(&schema).await;

    let err = PostgresStore::open_with(options.clone(), &b).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains("b.key"), "names the key's source: {err}");
    assert_eq!(
        super::postgres_rows(&schema).await,
        before,
        "nothing written under the wrong key"
    );

    let store = PostgresStore::open_with(options, &a).await.unwrap();
    assert_eq!(
        store.subscription_secret("svc-d").await.unwrap(),
        Some(used.secret.expose())
    );
}
