//! No plaintext secret in the database (points 1 and 2 of finding 4): the
//! raw SQLite files and every PostgreSQL row are searched for every token
//! and secret a scenario used; hook tokens are found by their keyed hash
//! only.

use std::sync::Arc;

use tagcast_broker::store::{PostgresStore, SqliteStore, Store};

use super::{assert_absent, key_file, postgres_rows, push, sqlite_bytes, store_every_kind_of_secret};
use crate::support::broker::Broker;
use crate::support::receiver::Receiver;

#[tokio::test]
async fn sqlite_files_hold_no_token_and_no_secret_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = key_file(dir.path(), "broker.key", 0xa1);
    let db = dir.path().join("broker.db");
    let url = format!("sqlite://{}", db.display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_keyed(&url, &keys).await.unwrap());
    let receiver = Receiver::start(&[]).await;
    let used = store_every_kind_of_secret(store.clone(), &receiver).await;
    let bytes = sqlite_bytes(&db);
    assert_absent(&bytes, &used, "the SQLite files");
    // Not vacuous: the values are there, sealed, and the token's keyed hash.
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("tcs1:"), "sealed values are stored");
    let token = used.hook.rsplit('/').next().unwrap();
    let hash = keys.current.token_hash(token);
    assert!(text.contains(&hash), "the hook token's keyed hash is stored");

    // Whoever holds a copy of the database but not the key cannot use the
    // stored hash as a token; the token itself still works.
    let broker = Broker::start(store, |_| {}).await;
    let hook = |token: &str| format!("{}/hooks/distribution/{token}", broker.url);
    assert_eq!(
        push(&broker, &hook(&hash), "ev-hash", "1.1.0-production-201108-195631", 2).await,
        404
    );
    assert_eq!(
        push(&broker, &hook(token), "ev-token", "1.1.0-production-201108-195632", 3).await,
        202
    );
    let got = receiver.wait_for(2).await;
    assert!(super::verifies_with(&got[1], &used.secret));
    assert_eq!(got.len(), 2, "the 404 stored nothing");
    broker.stop().await;
}

#[tokio::test]
#[ignore = "needs postgres"]
async fn postgres_rows_hold_no_token_and_no_secret_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = key_file(dir.path(), "broker.key", 0xa2);
    let schema = crate::support::fresh_schema().await;
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::open_with(crate::support::schema_options(&schema), &keys)
            .await
            .unwrap(),
    );
    let receiver = Receiver::start(&[]).await;
    let used = store_every_kind_of_secret(store, &receiver).await;
    let rows = postgres_rows(&schema).await;
    assert_absent(rows.as_bytes(), &used, "the PostgreSQL rows");
    assert!(rows.contains("tcs1:"), "sealed values are stored");
    let token = used.hook.rsplit('/').next().unwrap();
    assert!(
        rows.contains(&keys.current.token_hash(token)),
        "the keyed hash is stored"
    );
}
