//! Settings, services with their subscriptions, and hook sources.

use super::super::backend::{Backend, RowRef};
use super::super::{
    HookSource, ImageState, Millis, NewService, StoreError, StoreResult, StoredService, SubscriptionState, now_ms,
    random_token,
};
use crate::keys::{Keyring, hook_secret_context, hook_token_context, subscription_context};

fn service_from(row: RowRef<'_>) -> StoreResult<StoredService> {
    Ok(StoredService {
        id: row.string("id")?,
        document: row.string("document")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

/// A hook source row as stored: `token` and `secret` still sealed (the
/// store opens them, `sql/mod.rs`).
fn hook_source_from(row: RowRef<'_>) -> StoreResult<HookSource> {
    Ok(HookSource {
        token: row.string("token_sealed")?,
        kind: row.string("kind")?,
        registry: row.string("registry")?,
        secret: row.opt_string("secret")?,
    })
}

pub(super) async fn setting<B: Backend>(db: &B, key: &str) -> StoreResult<Option<String>> {
    let rows = db
        .read("SELECT key, value FROM settings WHERE key = $1", &[key.into()])
        .await?;
    rows.first("settings").map(|r| r.string("value")).transpose()
}

pub(super) async fn init_setting<B: Backend>(db: &B, key: &str, value: &str) -> StoreResult<String> {
    let mut tx = db.begin().await?;
    B::execute(
        &mut tx,
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[key.into(), value.into()],
    )
    .await?;
    let rows = B::fetch(&mut tx, "SELECT key, value FROM settings WHERE key = $1", &[key.into()]).await?;
    B::commit(tx).await?;
    rows.first("settings")
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?
        .string("value")
}

/// Whether the subscription's stored (sealed) secret is `secret`; `None`
/// if there is no subscription. Compared in constant time.
async fn stored_secret_is<B: Backend>(
    tx: &mut B::Tx,
    keys: &Keyring,
    id: &str,
    secret: &str,
) -> StoreResult<Option<bool>> {
    use subtle::ConstantTimeEq as _;
    let sql = format!("SELECT secret FROM subscriptions WHERE service_id = $1{}", B::ROW_LOCK);
    let rows = B::fetch(tx, &sql, &[id.into()]).await?;
    let Some(row) = rows.first("subscriptions") else {
        return Ok(None);
    };
    let stored = keys
        .open(&subscription_context(id), row.text("secret")?)
        .map_err(|err| StoreError::Corrupt {
            table: "subscriptions",
            row: id.to_owned(),
            column: "secret".to_owned(),
            error: err.to_string(),
        })?;
    Ok(Some(stored.as_bytes().ct_eq(secret.as_bytes()).into()))
}

/// Writes the subscription of a service, its secret sealed under `keys`.
async fn write_subscription<B: Backend>(
    tx: &mut B::Tx,
    keys: &Keyring,
    service: &NewService,
    now: Millis,
    replace: bool,
) -> StoreResult<()> {
    let id = service.id.as_str();
    let Some(sub) = &service.subscription else {
        B::execute(tx, "DELETE FROM subscriptions WHERE service_id = $1", &[id.into()]).await?;
        return Ok(());
    };
    let sealed = keys.seal(&subscription_context(id), &sub.secret);
    let args = [
        id.into(),
        sub.stage.as_str().into(),
        sub.api_requirement.as_str().into(),
        sub.callback_url.as_str().into(),
        sealed.as_str().into(),
        now.into(),
        sub.registry_url.as_deref().into(),
    ];
    // A sealed value differs at every seal (a fresh nonce), so whether the
    // secret changed is decided on the opened value, not in SQL.
    let unchanged = if replace {
        stored_secret_is::<B>(tx, keys, id, &sub.secret).await?
    } else {
        None
    };
    if let Some(unchanged) = unchanged {
        // A replaced secret keeps signing beside the new one for a grace
        // period (CB-5); SET reads the row as it was before the update. An
        // unchanged secret keeps its sealed value and its previous one.
        if unchanged {
            B::execute(
                tx,
                "UPDATE subscriptions SET stage = $2, api_requirement = $3, callback_url = $4, \
                 enabled = 1, disabled_reason = NULL, updated_at = $5, registry_url = $6 WHERE service_id = $1",
                &[
                    id.into(),
                    sub.stage.as_str().into(),
                    sub.api_requirement.as_str().into(),
                    sub.callback_url.as_str().into(),
                    now.into(),
                    sub.registry_url.as_deref().into(),
                ],
            )
            .await?;
        } else {
            let grace = i64::try_from(tagcast_spec::webhook::PREVIOUS_SECRET_GRACE.as_millis()).unwrap_or(i64::MAX);
            let mut update = args.to_vec();
            update.push(now.saturating_add(grace).into());
            B::execute(
                tx,
                "UPDATE subscriptions SET stage = $2, api_requirement = $3, callback_url = $4, secret = $5, \
                 previous_secret = secret, previous_secret_until = $8, \
                 enabled = 1, disabled_reason = NULL, updated_at = $6, registry_url = $7 WHERE service_id = $1",
                &update,
            )
            .await?;
        }
    }
    B::execute(
        tx,
        "INSERT INTO subscriptions (service_id, stage, api_requirement, callback_url, secret, enabled, \
         updated_at, registry_url) VALUES ($1, $2, $3, $4, $5, 1, $6, $7) ON CONFLICT (service_id) DO NOTHING",
        &args,
    )
    .await?;
    let existing = B::fetch(
        tx,
        "SELECT repository FROM subscription_images WHERE service_id = $1",
        &[id.into()],
    )
    .await?;
    let existing = existing
        .iter("subscription_images")
        .map(|r| r.string("repository"))
        .collect::<StoreResult<Vec<_>>>()?;
    for gone in existing.iter().filter(|r| !sub.images.contains(r)) {
        B::execute(
            tx,
            "DELETE FROM subscription_images WHERE service_id = $1 AND repository = $2",
            &[id.into(), gone.into()],
        )
        .await?;
    }
    for image in &sub.images {
        B::execute(
            tx,
            "INSERT INTO subscription_images (service_id, repository) VALUES ($1, $2) \
             ON CONFLICT (service_id, repository) DO NOTHING",
            &[id.into(), image.into()],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn insert_service<B: Backend>(db: &B, keys: &Keyring, service: &NewService) -> StoreResult<()> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let inserted = B::execute(
        &mut tx,
        "INSERT INTO services (id, document, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (id) DO NOTHING",
        &[(&service.id).into(), (&service.document).into(), now.into()],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("service {:?}", service.id)));
    }
    write_subscription::<B>(&mut tx, keys, service, now, false).await?;
    for source in &service.hook_sources {
        upsert_hook_source::<B>(&mut tx, keys, &source.kind, &source.registry, source.secret.as_deref()).await?;
    }
    B::commit(tx).await
}

pub(super) async fn replace_service<B: Backend>(db: &B, keys: &Keyring, service: &NewService) -> StoreResult<bool> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let args = [(&service.id).into(), (&service.document).into(), now.into()];
    let inserted = B::execute(
        &mut tx,
        "INSERT INTO services (id, document, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (id) DO NOTHING",
        &args,
    )
    .await?;
    if inserted == 0 {
        B::execute(
            &mut tx,
            "UPDATE services SET document = $2, updated_at = $3 WHERE id = $1",
            &args,
        )
        .await?;
    }
    write_subscription::<B>(&mut tx, keys, service, now, inserted == 0).await?;
    for source in &service.hook_sources {
        upsert_hook_source::<B>(&mut tx, keys, &source.kind, &source.registry, source.secret.as_deref()).await?;
    }
    B::commit(tx).await?;
    Ok(inserted == 1)
}

pub(super) async fn delete_service<B: Backend>(db: &B, id: &str) -> StoreResult<bool> {
    let mut tx = db.begin().await?;
    for sql in [
        "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE service_id = $1)",
        "DELETE FROM deliveries WHERE service_id = $1",
        "DELETE FROM subscription_images WHERE service_id = $1",
        "DELETE FROM subscriptions WHERE service_id = $1",
    ] {
        B::execute(&mut tx, sql, &[id.into()]).await?;
    }
    let deleted = B::execute(&mut tx, "DELETE FROM services WHERE id = $1", &[id.into()]).await?;
    B::commit(tx).await?;
    Ok(deleted > 0)
}

pub(super) async fn service<B: Backend>(db: &B, id: &str) -> StoreResult<Option<StoredService>> {
    let rows = db
        .read(
            "SELECT id, document, created_at, updated_at FROM services WHERE id = $1",
            &[id.into()],
        )
        .await?;
    rows.first("services").map(service_from).transpose()
}

pub(super) async fn services<B: Backend>(db: &B) -> StoreResult<Vec<StoredService>> {
    let rows = db
        .read(
            "SELECT id, document, created_at, updated_at FROM services ORDER BY id",
            &[],
        )
        .await?;
    rows.iter("services").map(service_from).collect()
}

pub(super) async fn services_page<B: Backend>(
    db: &B,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<StoredService>> {
    let rows = db
        .read(
            "SELECT id, document, created_at, updated_at FROM services WHERE id > $1 ORDER BY id LIMIT $2",
            &[after.unwrap_or_default().into(), limit.into()],
        )
        .await?;
    rows.iter("services").map(service_from).collect()
}

const HOOK_SOURCE_COLUMNS: &str = "token_sealed, kind, registry, secret";

/// A new hook token as stored: its keyed hash and the token sealed; the
/// token itself is only ever in the answer that creates or rotates it.
pub(super) struct StoredToken {
    pub(super) hash: String,
    pub(super) sealed: String,
}

impl StoredToken {
    /// A fresh random token for the hook source of `kind` at `registry`.
    pub(super) fn mint(keys: &Keyring, kind: &str, registry: &str) -> Self {
        let token = random_token();
        Self {
            hash: keys.token_hash(&token),
            sealed: keys.seal(&hook_token_context(kind, registry), &token),
        }
    }
}

/// Creates the hook source of a kind at a registry with a fresh token if
/// there is none; fills its secret if it has none; its row, still sealed.
async fn upsert_hook_source<B: Backend>(
    tx: &mut B::Tx,
    keys: &Keyring,
    kind: &str,
    registry: &str,
    secret: Option<&str>,
) -> StoreResult<HookSource> {
    let token = StoredToken::mint(keys, kind, registry);
    let secret = secret.map(|s| keys.seal(&hook_secret_context(kind, registry), s));
    B::execute(
        tx,
        "INSERT INTO hook_sources (token_hash, token_sealed, kind, registry, secret, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (kind, registry) DO UPDATE SET secret = COALESCE(hook_sources.secret, excluded.secret)",
        &[
            token.hash.as_str().into(),
            token.sealed.as_str().into(),
            kind.into(),
            registry.into(),
            secret.as_deref().into(),
            now_ms().into(),
        ],
    )
    .await?;
    let sql = format!("SELECT {HOOK_SOURCE_COLUMNS} FROM hook_sources WHERE kind = $1 AND registry = $2");
    let rows = B::fetch(tx, &sql, &[kind.into(), registry.into()]).await?;
    rows.first("hook_sources")
        .map(hook_source_from)
        .transpose()?
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
}

pub(super) async fn hook_source<B: Backend>(
    db: &B,
    keys: &Keyring,
    kind: &str,
    registry: &str,
    secret: Option<&str>,
) -> StoreResult<HookSource> {
    let mut tx = db.begin().await?;
    let source = upsert_hook_source::<B>(&mut tx, keys, kind, registry, secret).await?;
    B::commit(tx).await?;
    Ok(source)
}

pub(super) async fn find_hook_source<B: Backend>(
    db: &B,
    kind: &str,
    registry: &str,
) -> StoreResult<Option<HookSource>> {
    let sql = format!("SELECT {HOOK_SOURCE_COLUMNS} FROM hook_sources WHERE kind = $1 AND registry = $2");
    let rows = db.read(&sql, &[kind.into(), registry.into()]).await?;
    rows.first("hook_sources").map(hook_source_from).transpose()
}

/// The hook source whose token, or whose previous token until its grace
/// period ends, has this keyed hash; with the matching stored hash, for the
/// caller's constant-time check.
pub(super) async fn hook_source_by_token_hash<B: Backend>(
    db: &B,
    hash: &str,
    now: Millis,
) -> StoreResult<Option<(HookSource, String)>> {
    let sql = format!(
        "SELECT {HOOK_SOURCE_COLUMNS}, CASE WHEN token_hash = $1 THEN token_hash ELSE previous_token_hash END \
         AS matched_hash FROM hook_sources \
         WHERE token_hash = $1 OR (previous_token_hash = $1 AND previous_until > $2)"
    );
    let rows = db.read(&sql, &[hash.into(), now.into()]).await?;
    rows.first("hook_sources")
        .map(|row| Ok((hook_source_from(row)?, row.string("matched_hash")?)))
        .transpose()
}

/// Gives a hook source a new token (finding 5 of issue 11). With
/// `previous_until`, the current token stays valid until then (a token
/// still in an earlier grace period is dropped: one previous token at a
/// time); without, it is invalid at once (revocation). False if there is
/// no such source.
pub(super) async fn rotate_hook_token<B: Backend>(
    db: &B,
    kind: &str,
    registry: &str,
    token: &StoredToken,
    previous_until: Option<Millis>,
) -> StoreResult<bool> {
    let mut tx = db.begin().await?;
    let changed = if previous_until.is_some() {
        B::execute(
            &mut tx,
            "UPDATE hook_sources SET previous_token_hash = token_hash, previous_token_sealed = token_sealed, \
             previous_until = $5, token_hash = $3, token_sealed = $4 WHERE kind = $1 AND registry = $2",
            &[
                kind.into(),
                registry.into(),
                token.hash.as_str().into(),
                token.sealed.as_str().into(),
                previous_until.into(),
            ],
        )
        .await?
    } else {
        B::execute(
            &mut tx,
            "UPDATE hook_sources SET previous_token_hash = NULL, previous_token_sealed = NULL, \
             previous_until = NULL, token_hash = $3, token_sealed = $4 WHERE kind = $1 AND registry = $2",
            &[
                kind.into(),
                registry.into(),
                token.hash.as_str().into(),
                token.sealed.as_str().into(),
            ],
        )
        .await?
    };
    B::commit(tx).await?;
    Ok(changed > 0)
}

/// Deletes the hook sources that no stored service document needs. The
/// sources are locked first (PostgreSQL: `FOR UPDATE`; SQLite has one
/// writer), then the documents are read: a concurrent write that reuses a
/// source either committed before the lock (its document is read here) or
/// waits for this transaction and then creates the source afresh.
pub(super) async fn prune_hook_sources<B: Backend>(
    db: &B,
    in_use: super::super::SourcesOf,
) -> StoreResult<Vec<(String, String)>> {
    let mut tx = db.begin().await?;
    let sql = format!("SELECT kind, registry FROM hook_sources{}", B::ROW_LOCK);
    let rows = B::fetch(&mut tx, &sql, &[]).await?;
    let mut sources = Vec::new();
    for row in rows.iter("hook_sources") {
        sources.push((row.string("kind")?, row.string("registry")?));
    }
    let documents = B::fetch(&mut tx, "SELECT document FROM services", &[]).await?;
    let mut used = std::collections::HashSet::new();
    for row in documents.iter("services") {
        let Some(sources) = in_use(row.text("document")?) else {
            // A document that does not parse may need any source.
            return Ok(Vec::new());
        };
        used.extend(sources);
    }
    let gone: Vec<_> = sources.into_iter().filter(|s| !used.contains(s)).collect();
    for (kind, registry) in &gone {
        B::execute(
            &mut tx,
            "DELETE FROM hook_sources WHERE kind = $1 AND registry = $2",
            &[kind.into(), registry.into()],
        )
        .await?;
    }
    B::commit(tx).await?;
    Ok(gone)
}

pub(super) async fn subscription_secret<B: Backend>(db: &B, service_id: &str) -> StoreResult<Option<String>> {
    let rows = db
        .read(
            "SELECT service_id, secret FROM subscriptions WHERE service_id = $1",
            &[service_id.into()],
        )
        .await?;
    rows.first("subscriptions").map(|r| r.string("secret")).transpose()
}

pub(super) async fn subscription_state<B: Backend>(db: &B, service_id: &str) -> StoreResult<Option<SubscriptionState>> {
    let rows = db
        .read(
            "SELECT service_id, enabled, disabled_reason FROM subscriptions WHERE service_id = $1",
            &[service_id.into()],
        )
        .await?;
    let Some(row) = rows.first("subscriptions") else {
        return Ok(None);
    };
    let images = db
        .read(
            "SELECT repository, last_tag, last_digest, last_delivered_at FROM subscription_images \
             WHERE service_id = $1 ORDER BY repository",
            &[service_id.into()],
        )
        .await?;
    let mut images = images
        .iter("subscription_images")
        .map(|r| {
            Ok(ImageState {
                repository: r.string("repository")?,
                last_tag: r.opt_string("last_tag")?,
                last_digest: r.opt_string("last_digest")?,
                last_delivered_at: r.opt_int("last_delivered_at")?,
                last_decision: None,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    for image in &mut images {
        image.last_decision = super::decisions::latest(db, service_id, &image.repository).await?;
    }
    let counts = db
        .read(
            "SELECT state, COUNT(*) AS n FROM deliveries WHERE service_id = $1 GROUP BY state ORDER BY state",
            &[service_id.into()],
        )
        .await?;
    let counts = counts
        .iter("deliveries")
        .map(|r| Ok((r.string("state")?, r.int("n")?)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(SubscriptionState {
        enabled: row.flag("enabled")?,
        disabled_reason: row.opt_string("disabled_reason")?,
        images,
        counts,
    }))
}
