//! Settling the database with the broker's secret key at open, in one
//! transaction (issue 11, finding 4):
//!
//! - a database without a key check value gets the key's; one with the
//!   check value of another key is refused ([`StoreError::WrongKey`]),
//!   unless it is the previous key's (`--previous-secret-key-file`): then
//!   every sealed value is opened with the previous key and sealed again
//!   with the new one, every hook token hash is computed again, and the
//!   check value is replaced (rotation);
//! - plaintext left by a broker from before sealing (subscription and hook
//!   secrets, hook tokens, managed hook URLs) is sealed, and each hook
//!   token replaced by its keyed hash.

use super::super::backend::{Backend, RowRef};
use super::super::{StoreError, StoreResult};
use crate::keys::{
    self, CHECK_SETTING, Keyring, Keys, hook_secret_context, hook_token_context, managed_hook_context,
    subscription_context,
};

/// What settling did, for the start's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Plaintext values sealed (and hook tokens hashed).
    pub sealed: usize,
    /// Whether the database was moved from the previous key to the current one.
    pub rekeyed: bool,
}

fn open_with(ring: &Keyring, row: &RowRef<'_>, column: &str, context: &str, sealed: &str) -> StoreResult<String> {
    ring.open(context, sealed).map_err(|err| StoreError::Corrupt {
        table: "(sealed value)",
        row: context.to_owned(),
        column: column.to_owned(),
        error: format!("{err} [{row:?}]"),
    })
}

/// The value sealed under `current`, or `None` if it is sealed under
/// `current` already (no rekey).
fn reseal(
    keys: &Keys,
    rekey: bool,
    row: &RowRef<'_>,
    column: &str,
    context: &str,
    value: &str,
) -> StoreResult<Option<String>> {
    if !keys::is_sealed(value) {
        return Ok(Some(keys.current.seal(context, value)));
    }
    if !rekey {
        return Ok(None);
    }
    let previous = keys.previous.as_ref().expect("a rekey has a previous key");
    let plain = open_with(previous, row, column, context, value)?;
    Ok(Some(keys.current.seal(context, &plain)))
}

pub(in super::super) async fn settle<B: Backend>(db: &B, keys: &Keys) -> StoreResult<Settled> {
    let mut tx = db.begin().await?;
    B::execute(
        &mut tx,
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[CHECK_SETTING.into(), keys.current.check_value().into()],
    )
    .await?;
    let sql = format!("SELECT key, value FROM settings WHERE key = $1{}", B::ROW_LOCK);
    let rows = B::fetch(&mut tx, &sql, &[CHECK_SETTING.into()]).await?;
    let stored = rows
        .first("settings")
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?
        .string("value")?;
    let rekey = if keys.current.checks(&stored) {
        false
    } else if keys.previous.as_ref().is_some_and(|p| p.checks(&stored)) {
        true
    } else {
        return Err(StoreError::WrongKey {
            source_name: keys.current.source().to_string(),
            previous: keys.previous.as_ref().map(|p| p.source().to_string()),
        });
    };
    let mut settled = Settled {
        sealed: 0,
        rekeyed: rekey,
    };

    let rows = B::fetch(
        &mut tx,
        "SELECT service_id, secret, previous_secret FROM subscriptions",
        &[],
    )
    .await?;
    for row in rows.iter("subscriptions") {
        let id = row.text("service_id")?;
        let context = subscription_context(id);
        for column in ["secret", "previous_secret"] {
            let Some(secret) = row.opt_text(column)? else {
                continue;
            };
            settled.sealed += usize::from(!keys::is_sealed(secret));
            if let Some(new) = reseal(keys, rekey, &row, column, &context, secret)? {
                B::execute(
                    &mut tx,
                    &format!("UPDATE subscriptions SET {column} = $2 WHERE service_id = $1"),
                    &[id.into(), new.as_str().into()],
                )
                .await?;
            }
        }
    }

    let rows = B::fetch(
        &mut tx,
        "SELECT kind, registry, token_hash, token_sealed, secret, previous_token_sealed FROM hook_sources",
        &[],
    )
    .await?;
    for row in rows.iter("hook_sources") {
        let (kind, registry) = (row.text("kind")?, row.text("registry")?);
        let token_context = hook_token_context(kind, registry);
        let token = match row.opt_text("token_sealed")? {
            // Before sealing, the column now named token_hash held the token.
            None => {
                settled.sealed += 1;
                Some(row.string("token_hash")?)
            }
            Some(sealed) if rekey => Some(open_with(
                keys.previous.as_ref().expect("a rekey has a previous key"),
                &row,
                "token_sealed",
                &token_context,
                sealed,
            )?),
            Some(_) => None,
        };
        if let Some(token) = token {
            B::execute(
                &mut tx,
                "UPDATE hook_sources SET token_hash = $3, token_sealed = $4 WHERE kind = $1 AND registry = $2",
                &[
                    kind.into(),
                    registry.into(),
                    keys.current.token_hash(&token).as_str().into(),
                    keys.current.seal(&token_context, &token).as_str().into(),
                ],
            )
            .await?;
        }
        if let (Some(sealed), true) = (row.opt_text("previous_token_sealed")?, rekey) {
            let previous = keys.previous.as_ref().expect("a rekey has a previous key");
            let token = open_with(previous, &row, "previous_token_sealed", &token_context, sealed)?;
            B::execute(
                &mut tx,
                "UPDATE hook_sources SET previous_token_hash = $3, previous_token_sealed = $4 \
                 WHERE kind = $1 AND registry = $2",
                &[
                    kind.into(),
                    registry.into(),
                    keys.current.token_hash(&token).as_str().into(),
                    keys.current.seal(&token_context, &token).as_str().into(),
                ],
            )
            .await?;
        }
        if let Some(secret) = row.opt_text("secret")? {
            settled.sealed += usize::from(!keys::is_sealed(secret));
            let context = hook_secret_context(kind, registry);
            if let Some(new) = reseal(keys, rekey, &row, "secret", &context, secret)? {
                B::execute(
                    &mut tx,
                    "UPDATE hook_sources SET secret = $3 WHERE kind = $1 AND registry = $2",
                    &[kind.into(), registry.into(), new.as_str().into()],
                )
                .await?;
            }
        }
    }

    let rows = B::fetch(&mut tx, "SELECT registry, scope, url FROM managed_hooks", &[]).await?;
    for row in rows.iter("managed_hooks") {
        let (registry, scope, url) = (row.text("registry")?, row.text("scope")?, row.text("url")?);
        settled.sealed += usize::from(!keys::is_sealed(url));
        let context = managed_hook_context(registry, scope);
        if let Some(new) = reseal(keys, rekey, &row, "url", &context, url)? {
            B::execute(
                &mut tx,
                "UPDATE managed_hooks SET url = $3 WHERE registry = $1 AND scope = $2",
                &[registry.into(), scope.into(), new.as_str().into()],
            )
            .await?;
        }
    }

    if rekey {
        B::execute(
            &mut tx,
            "UPDATE settings SET value = $2 WHERE key = $1",
            &[CHECK_SETTING.into(), keys.current.check_value().into()],
        )
        .await?;
    }
    B::commit(tx).await?;
    Ok(settled)
}
