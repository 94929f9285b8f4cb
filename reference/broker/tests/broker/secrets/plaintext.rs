//! A database from before sealing (point 5 of finding 4): rows written in
//! plaintext through the schema of migrations 0001-0009 are sealed at the
//! first start with a key, and the hook and the callback still work.

use std::borrow::Cow;

use serde_json::json;
use sqlx::Connection as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use tagcast_spec::webhook::Secret;

use super::{Db, REPO, key_file, push, verifies_with};
use crate::support::broker::Broker;
use crate::support::receiver::Receiver;

/// The SQLite migrations before sealing, as an older broker ran them.
fn before_sealing() -> Migrator {
    let migration = |version, sql: &'static str| {
        Migration::new(
            version,
            Cow::Borrowed("before sealing"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )
    };
    Migrator {
        migrations: Cow::Owned(vec![
            migration(1, include_str!("../../../migrations/sqlite/0001_initial.sql")),
            migration(2, include_str!("../../../migrations/sqlite/0002_registry_api.sql")),
            migration(3, include_str!("../../../migrations/sqlite/0003_matching_index.sql")),
            migration(4, include_str!("../../../migrations/sqlite/0004_fair_claims.sql")),
            migration(5, include_str!("../../../migrations/sqlite/0005_managed_hooks.sql")),
            migration(
                6,
                include_str!("../../../migrations/sqlite/0006_subscription_registry_url.sql"),
            ),
            migration(9, include_str!("../../../migrations/sqlite/0009_previous_secret.sql")),
        ]),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

#[tokio::test]
async fn plaintext_rows_of_an_older_broker_are_sealed_at_start_and_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let Db::Sqlite(url) = &db else { unreachable!() };
    let receiver = Receiver::start(&[]).await;
    let secret = Secret::generate(rand::random());
    let previous = Secret::generate(rand::random());
    let token = "plaintext-hook-token-0123456789abcdef";
    let hook_secret = Secret::generate(rand::random()).expose();
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        before_sealing().run(&mut conn).await.unwrap();
        let document = crate::support::registration(
            "svc",
            json!({
                "images": [REPO],
                "stage": "production",
                "apiVersion": "^1.1",
                "callbackUrl": receiver.url,
                "registry": {"kind": "distribution"}
            }),
        );
        let far = chrono::Utc::now().timestamp_millis() + 3_600_000;
        for (sql, args) in [
            (
                "INSERT INTO services (id, document, created_at, updated_at) VALUES ('svc', ?, 0, 0)",
                vec![document.to_string()],
            ),
            (
                "INSERT INTO subscriptions (service_id, stage, api_requirement, callback_url, secret, updated_at, \
                 previous_secret, previous_secret_until) VALUES ('svc', 'production', '^1.1', ?, ?, 0, ?, ?)",
                vec![
                    receiver.url.clone(),
                    secret.expose(),
                    previous.expose(),
                    far.to_string(),
                ],
            ),
            (
                "INSERT INTO subscription_images (service_id, repository) VALUES ('svc', ?)",
                vec![REPO.to_owned()],
            ),
            (
                "INSERT INTO hook_sources (token, kind, registry, secret, created_at) \
                 VALUES (?, 'distribution', 'registry.example.org:5000', NULL, 0)",
                vec![token.to_owned()],
            ),
            (
                "INSERT INTO hook_sources (token, kind, registry, secret, created_at) \
                 VALUES ('generic-plaintext-token-0123456789', 'generic', 'other.example.org', ?, 0)",
                vec![hook_secret.clone()],
            ),
            (
                "INSERT INTO managed_hooks (registry, scope, kind, path, url, updated_at) \
                 VALUES ('harbor.example.org', 'team', 'harbor', 'team/app', ?, 0)",
                vec![format!("https://broker.example.org/hooks/harbor/{token}")],
            ),
        ] {
            let mut query = sqlx::query(sql);
            for arg in args {
                query = query.bind(arg);
            }
            query.execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    }
    let old_rows = db.rows().await;
    assert!(
        old_rows.contains(token) && old_rows.contains(&secret.expose()),
        "the test wrote plaintext"
    );

    let (keys, _) = key_file(dir.path(), "broker.key", 0xc3);
    let store = db.open(&keys).await.unwrap();
    let rows = db.rows().await;
    let key = |s: &str| s.trim_start_matches("whsec_").to_owned();
    for (what, value) in [
        ("the hook token", token.to_owned()),
        ("the other hook token", "generic-plaintext-token-0123456789".to_owned()),
        ("the subscription secret", key(&secret.expose())),
        ("the previous secret", key(&previous.expose())),
        ("the hook secret", key(&hook_secret)),
    ] {
        assert!(!rows.contains(&value), "{what} is still in plaintext: {rows}");
    }
    assert!(
        rows.contains(&keys.current.token_hash(token)),
        "looked up by its keyed hash now"
    );
    // Nor in the file's bytes: no freed cell, page or WAL frame keeps them.
    let bytes = super::sqlite_bytes(std::path::Path::new(url.trim_start_matches("sqlite://")));
    for value in [token, "generic-plaintext-token-0123456789"] {
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "{value} is still in the SQLite files"
        );
    }
    for secret in [&secret, &previous] {
        let value = key(&secret.expose());
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "a subscription secret is still in the SQLite files"
        );
    }
    let source = store
        .find_hook_source("generic", "other.example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(source.secret.as_deref(), Some(hook_secret.as_str()));
    assert!(store.managed_hooks().await.unwrap()[0].url.ends_with(token));

    let broker = Broker::start(store, |_| {}).await;
    let hook = format!("{}/hooks/distribution/{token}", broker.url);
    assert_eq!(
        push(&broker, &hook, "ev-old", "1.1.0-production-201108-195650", 5).await,
        202
    );
    let got = receiver.wait_for(1).await;
    assert!(verifies_with(&got[0], &secret) && verifies_with(&got[0], &previous));
    broker.stop().await;

    // Sealed once: the next start seals nothing more and opens the same.
    let store = db.open(&keys).await.unwrap();
    assert_eq!(store.subscription_secret("svc").await.unwrap(), Some(secret.expose()));
}
