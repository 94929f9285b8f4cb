//! Key rotation (point 4 of finding 4): a start with a new key and the old
//! one as `--previous-secret-key-file` seals every secret again and hashes
//! every token again; the same secrets and hook URLs keep working, and the
//! old key alone is refused afterwards.

use tagcast_broker::store::StoreError;

use super::{Db, key_file, push, rotating, store_every_kind_of_secret, verifies_with};
use crate::support::broker::Broker;
use crate::support::receiver::Receiver;

async fn rotation_keeps_every_secret_and_token(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = key_file(dir.path(), "a.key", 0xa1);
    let (b, _) = key_file(dir.path(), "b.key", 0xb2);
    let receiver = Receiver::start(&[]).await;
    let used = store_every_kind_of_secret(db.open(&a).await.unwrap(), &receiver).await;
    let under_a = db.rows().await;

    let store = db.open(&rotating(&b, &a)).await.unwrap();
    let under_b = db.rows().await;
    let token = used.hook.rsplit('/').next().unwrap();
    assert!(under_a.contains(&a.current.token_hash(token)));
    assert!(
        under_b.contains(&b.current.token_hash(token)) && !under_b.contains(&a.current.token_hash(token)),
        "every token hashed again under the new key"
    );
    let source = store
        .find_hook_source("generic", "other.example.org")
        .await
        .unwrap()
        .expect("the generic hook source");
    assert_eq!(source.token, used.generic_token, "the same token");
    assert_eq!(
        source.secret.as_deref(),
        Some(used.generic_secret.as_str()),
        "the same hook secret"
    );
    let managed = store.managed_hooks().await.unwrap();
    assert!(
        managed[0].url.ends_with(&used.generic_token),
        "the managed hook URL opens"
    );

    let broker = Broker::start(store, |_| {}).await;
    let hook = format!("{}/hooks/distribution/{token}", broker.url);
    assert_eq!(
        push(&broker, &hook, "ev-rotated", "1.1.0-production-201108-195640", 4).await,
        202
    );
    let got = receiver.wait_for(2).await;
    assert!(
        verifies_with(&got[1], &used.secret),
        "signed with the same subscription secret"
    );
    broker.stop().await;

    let err = db.open(&a).await.map(|_| ()).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains("a.key"), "{err}");
    // The new key alone opens it; a second start with both changes nothing.
    let store = db.open(&rotating(&b, &a)).await.unwrap();
    drop(store);
    let store = db.open(&b).await.unwrap();
    assert_eq!(
        store.subscription_secret("svc-d").await.unwrap(),
        Some(used.secret.expose())
    );
}

#[tokio::test]
async fn sqlite_rotation_keeps_every_secret_and_token() {
    let dir = tempfile::tempdir().unwrap();
    rotation_keeps_every_secret_and_token(Db::sqlite(dir.path())).await;
}

#[tokio::test]
#[ignore = "needs postgres"]
async fn postgres_rotation_keeps_every_secret_and_token() {
    rotation_keeps_every_secret_and_token(Db::postgres().await).await;
}

/// The log of a rotation and of a refused key names the keys' files, never
/// a key or a secret (point 6 of finding 4).
#[tokio::test]
async fn the_log_of_sealing_and_rotating_holds_no_key_and_no_secret() {
    crate::support::logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path());
    let (a, a_file) = key_file(dir.path(), "a.key", 0x3a);
    let (b, b_file) = key_file(dir.path(), "b.key", 0x3b);
    let receiver = Receiver::start(&[]).await;
    let used = store_every_kind_of_secret(db.open(&a).await.unwrap(), &receiver).await;
    let store = db.open(&rotating(&b, &a)).await.unwrap();
    let broker = Broker::start(store, |_| {}).await;
    let token = used.hook.rsplit('/').next().unwrap();
    let hook = format!("{}/hooks/distribution/{token}", broker.url);
    assert_eq!(
        push(&broker, &hook, "ev-logged", "1.1.0-production-201108-195641", 5).await,
        202
    );
    receiver.wait_for(2).await;
    // A wrong token: its 404 is logged (without the token).
    let wrong = format!("{}/hooks/distribution/{}", broker.url, "0".repeat(token.len()));
    assert_eq!(
        push(&broker, &wrong, "ev-wrong", "1.1.0-production-201108-195642", 6).await,
        404
    );
    broker.stop().await;
    let _ = db.open(&a).await.map(|_| ()).unwrap_err();

    let b_path = b_file.display().to_string();
    let moved = crate::support::logs::lines_with(&["moved every sealed secret", &b_path]);
    assert_eq!(moved.len(), 1, "the rotation is logged, naming the key file");
    let text = crate::support::logs::text();
    let mut secrets = used.secrets.clone();
    for file in [&a_file, &b_file] {
        secrets.push(("a key", std::fs::read_to_string(file).unwrap().trim().to_owned()));
    }
    for (what, value) in &secrets {
        assert!(!text.contains(value.as_str()), "{what} is in the log");
    }
}
