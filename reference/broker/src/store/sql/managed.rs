//! Hooks the broker manages in registries (API-18).

use super::super::backend::Backend;
use super::super::{ManagedHookRow, StoreResult, now_ms};

pub(super) async fn managed_hooks<B: Backend>(db: &B) -> StoreResult<Vec<ManagedHookRow>> {
    let rows = db
        .read(
            "SELECT registry, scope, kind, path, url FROM managed_hooks ORDER BY registry, scope",
            &[],
        )
        .await?;
    rows.iter("managed_hooks")
        .map(|r| {
            Ok(ManagedHookRow {
                registry: r.string("registry")?,
                scope: r.string("scope")?,
                kind: r.string("kind")?,
                path: r.string("path")?,
                url: r.string("url")?,
            })
        })
        .collect()
}

pub(super) async fn put_managed_hook<B: Backend>(db: &B, hook: &ManagedHookRow) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    B::execute(
        &mut tx,
        "INSERT INTO managed_hooks (registry, scope, kind, path, url, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (registry, scope) DO UPDATE SET kind = excluded.kind, path = excluded.path, \
         url = excluded.url, updated_at = excluded.updated_at",
        &[
            (&hook.registry).into(),
            (&hook.scope).into(),
            (&hook.kind).into(),
            (&hook.path).into(),
            (&hook.url).into(),
            now_ms().into(),
        ],
    )
    .await?;
    B::commit(tx).await
}

pub(super) async fn delete_managed_hook<B: Backend>(db: &B, registry: &str, scope: &str) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    B::execute(
        &mut tx,
        "DELETE FROM managed_hooks WHERE registry = $1 AND scope = $2",
        &[registry.into(), scope.into()],
    )
    .await?;
    B::commit(tx).await
}
