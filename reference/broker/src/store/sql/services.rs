//! Settings, services with their subscriptions, and hook sources.

use super::super::backend::{Backend, RowRef};
use super::super::{
    HookSource, ImageState, Millis, NewService, StoreError, StoreResult, StoredService, SubscriptionState, now_ms,
    random_token,
};

fn service_from(row: RowRef<'_>) -> StoreResult<StoredService> {
    Ok(StoredService {
        id: row.string("id")?,
        document: row.string("document")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

fn hook_source_from(row: RowRef<'_>) -> StoreResult<HookSource> {
    Ok(HookSource {
        token: row.string("token")?,
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

async fn write_subscription<B: Backend>(
    tx: &mut B::Tx,
    service: &NewService,
    now: Millis,
    replace: bool,
) -> StoreResult<()> {
    let id = service.id.as_str();
    let Some(sub) = &service.subscription else {
        B::execute(tx, "DELETE FROM subscriptions WHERE service_id = $1", &[id.into()]).await?;
        return Ok(());
    };
    let args = [
        id.into(),
        sub.stage.as_str().into(),
        sub.api_requirement.as_str().into(),
        sub.callback_url.as_str().into(),
        sub.secret.as_str().into(),
        now.into(),
        sub.registry_url.as_deref().into(),
    ];
    if replace {
        // A replaced secret keeps signing beside the new one for a grace
        // period (CB-5); SET reads the row as it was before the update.
        let grace = i64::try_from(tagcast_spec::webhook::PREVIOUS_SECRET_GRACE.as_millis()).unwrap_or(i64::MAX);
        let mut update = args.to_vec();
        update.push(now.saturating_add(grace).into());
        B::execute(
            tx,
            "UPDATE subscriptions SET stage = $2, api_requirement = $3, callback_url = $4, secret = $5, \
             previous_secret = CASE WHEN secret <> $5 THEN secret ELSE previous_secret END, \
             previous_secret_until = CASE WHEN secret <> $5 THEN $8 ELSE previous_secret_until END, \
             enabled = 1, disabled_reason = NULL, updated_at = $6, registry_url = $7 WHERE service_id = $1",
            &update,
        )
        .await?;
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

pub(super) async fn insert_service<B: Backend>(db: &B, service: &NewService) -> StoreResult<()> {
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
    write_subscription::<B>(&mut tx, service, now, false).await?;
    for source in &service.hook_sources {
        upsert_hook_source::<B>(&mut tx, &source.kind, &source.registry, source.secret.as_deref()).await?;
    }
    B::commit(tx).await
}

pub(super) async fn replace_service<B: Backend>(db: &B, service: &NewService) -> StoreResult<bool> {
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
    write_subscription::<B>(&mut tx, service, now, inserted == 0).await?;
    for source in &service.hook_sources {
        upsert_hook_source::<B>(&mut tx, &source.kind, &source.registry, source.secret.as_deref()).await?;
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

const HOOK_SOURCE_COLUMNS: &str = "token, kind, registry, secret";

/// Creates the hook source of a kind at a registry with a fresh token if
/// there is none; fills its secret if it has none; its row.
async fn upsert_hook_source<B: Backend>(
    tx: &mut B::Tx,
    kind: &str,
    registry: &str,
    secret: Option<&str>,
) -> StoreResult<HookSource> {
    let token = random_token();
    B::execute(
        tx,
        "INSERT INTO hook_sources (token, kind, registry, secret, created_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (kind, registry) DO UPDATE SET secret = COALESCE(hook_sources.secret, excluded.secret)",
        &[
            token.as_str().into(),
            kind.into(),
            registry.into(),
            secret.into(),
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
    kind: &str,
    registry: &str,
    secret: Option<&str>,
) -> StoreResult<HookSource> {
    let mut tx = db.begin().await?;
    let source = upsert_hook_source::<B>(&mut tx, kind, registry, secret).await?;
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

pub(super) async fn hook_source_by_token<B: Backend>(db: &B, token: &str) -> StoreResult<Option<HookSource>> {
    let sql = format!("SELECT {HOOK_SOURCE_COLUMNS} FROM hook_sources WHERE token = $1");
    let rows = db.read(&sql, &[token.into()]).await?;
    rows.first("hook_sources").map(hook_source_from).transpose()
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
    let images = images
        .iter("subscription_images")
        .map(|r| {
            Ok(ImageState {
                repository: r.string("repository")?,
                last_tag: r.opt_string("last_tag")?,
                last_digest: r.opt_string("last_digest")?,
                last_delivered_at: r.opt_int("last_delivered_at")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
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
