//! Finding 4 of issue 11: secrets at rest. The SQLite files are readable
//! by their owner only.

use tagcast_broker::store::{SqliteStore, Store as _};

/// The mode bits of a file.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A new database, its `-wal` and its `-shm` are created 0600 whatever
/// the umask, and an existing world-readable database is tightened.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_created_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("broker.db");
    let url = format!("sqlite://{}", db.display());
    let store = SqliteStore::open_keyed(&url, &crate::support::keys()).await.unwrap();
    // A write, so that the WAL and its index exist while the store is open.
    store.init_setting("probe", "1").await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(store);

    // A database left world-readable by an older broker.
    use std::os::unix::fs::PermissionsExt as _;
    let old = dir.path().join("old.db");
    std::fs::write(&old, b"").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open_keyed(&format!("sqlite://{}", old.display()), &crate::support::keys())
        .await
        .unwrap();
    store.init_setting("probe", "1").await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", old.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
