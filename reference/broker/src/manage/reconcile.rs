//! The hook manager: a background task that keeps the registries' hooks in
//! line with the stored subscriptions. Each round it computes the hooks the
//! subscriptions need (one per registry scope, on registries with `manage`
//! credentials and a managed kind), creates the missing ones, re-checks the
//! ones in place every [`RECHECK`] (a Quay notification's failure count is
//! reset then), and deletes the hooks no subscription needs any more.
//! Failures are retried with exponential backoff ([`BACKOFF`]) and shown in
//! the subscription's `hooks[].managed`.
//!
//! Durable state: the subscriptions say which hooks are needed, and the
//! `managed_hooks` table which hooks the broker put in place. After a
//! restart every needed hook is ensured again (finding the existing one by
//! its URL) and every recorded hook no subscription needs any more — its
//! last subscription deleted while the broker was down — is deleted.
//! Backoff state is kept in memory: a restart retries at once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tagcast_spec::Repository;
use tagcast_spec::subscription::{ManagedHook, ManagedState, RegistryKind};
use tokio::sync::{Notify, watch};

use super::{Api, Ensured, HookSpec, ManageError, Removed};
use crate::AppState;
use crate::store::ManagedHookRow;

/// Delays after the 1st, 2nd, … failure of one hook; the last repeats.
pub const BACKOFF: [Duration; 5] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(3600),
];

/// How often a hook in place is checked again.
pub const RECHECK: Duration = Duration::from_secs(600);

/// One hook the broker manages: registry host and scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HookKey {
    /// The registry host.
    pub registry: String,
    /// The scope (Harbor project, Quay repository, GitHub/Gitea owner).
    pub scope: String,
}

/// What the manager knows about one hook.
#[derive(Clone)]
struct Entry {
    kind: RegistryKind,
    /// An image path in the scope (GitHub falls back to its repository).
    path: String,
    url: String,
    status: ManagedHook,
    failures: u32,
    next: Instant,
    /// Still needed by a subscription.
    wanted: bool,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("url", &crate::store::redact_hook_url(&self.url))
            .field("status", &self.status)
            .field("failures", &self.failures)
            .field("wanted", &self.wanted)
            .finish_non_exhaustive()
    }
}

/// The manager's state, shared with the API for `hooks[].managed`.
#[derive(Debug, Default)]
pub struct Manager {
    entries: Mutex<BTreeMap<HookKey, Entry>>,
    /// Wakes the manager (a subscription was written or deleted).
    pub wake: Notify,
}

impl Manager {
    /// A manager with nothing known.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of the hooks of `registry` that `images` need: `failed` if
    /// any failed, else `created` if any was created, else `existing`;
    /// `None` if none is known yet.
    pub fn status(&self, registry: &str, scopes: &[String]) -> Option<ManagedHook> {
        let entries = self.entries.lock().expect("not poisoned");
        let found: Vec<&ManagedHook> = scopes
            .iter()
            .filter_map(|scope| {
                entries.get(&HookKey {
                    registry: registry.to_owned(),
                    scope: scope.clone(),
                })
            })
            .map(|e| &e.status)
            .collect();
        let pick = |state: ManagedState| found.iter().find(|s| s.state == state).map(|s| (*s).clone());
        pick(ManagedState::Failed)
            .or_else(|| pick(ManagedState::Pending))
            .or_else(|| pick(ManagedState::Created))
            .or_else(|| pick(ManagedState::Existing))
    }
}

/// What a subscription's hook on `registry` shows in `hooks[].managed`.
pub fn managed_status(state: &AppState, kind: RegistryKind, registry: &str, images: &[String]) -> ManagedHook {
    let manual = |reason: &str| ManagedHook {
        state: ManagedState::Manual,
        reason: Some(reason.to_owned()),
    };
    let Some(configured) = state.config.registry(registry) else {
        return manual("no [[registries]] entry with manage credentials for this registry");
    };
    if configured.manage.is_none() {
        return manual("no manage credentials configured for this registry");
    }
    let scopes: Vec<String> = images
        .iter()
        .filter_map(|i| Repository::parse(i).ok())
        .filter(|r| r.domain() == registry)
        .filter_map(|r| super::scope(kind, r.path()))
        .collect();
    if scopes.is_empty() {
        return manual(&format!("the broker does not manage {} hooks", kind.as_str()));
    }
    state.manager.status(registry, &scopes).unwrap_or(ManagedHook {
        state: ManagedState::Pending,
        reason: None,
    })
}

/// Runs until `shutdown` turns true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if !state.config.registries.iter().any(|r| r.manage.is_some()) {
        return;
    }
    // Only configured registries are managed: the operator chose their API.
    let client = crate::verify::client(true, &state.config.hosts);
    match state.store.managed_hooks().await {
        Ok(rows) => {
            let mut entries = state.manager.entries.lock().expect("not poisoned");
            for row in rows {
                let Ok(kind) = row.kind.parse::<RegistryKind>() else {
                    continue;
                };
                entries
                    .entry(HookKey {
                        registry: row.registry,
                        scope: row.scope,
                    })
                    .or_insert(Entry {
                        kind,
                        path: row.path,
                        url: row.url,
                        status: ManagedHook {
                            state: ManagedState::Existing,
                            reason: None,
                        },
                        failures: 0,
                        next: Instant::now(),
                        wanted: true,
                    });
            }
        }
        Err(err) => tracing::error!(error = %err, "reading the managed hooks failed"),
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        let next = match round(&state, &client).await {
            Ok(next) => next,
            Err(err) => {
                tracing::error!(error = %err, "managing registry hooks failed");
                Some(Instant::now() + Duration::from_secs(5))
            }
        };
        let wait = next.map_or(RECHECK, |n| n.saturating_duration_since(Instant::now()));
        tokio::select! {
            () = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
            () = state.manager.wake.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The hooks the stored subscriptions need, with an image path of each scope.
async fn wanted(state: &AppState) -> crate::store::StoreResult<BTreeMap<HookKey, (RegistryKind, String, String)>> {
    let mut out = BTreeMap::new();
    for service in state.store.services().await? {
        let Ok(document) = serde_json::from_str::<Value>(&service.document) else {
            continue;
        };
        let subscription = &document["subscription"];
        let explicit = subscription["registry"]["kind"]
            .as_str()
            .and_then(|k| k.parse::<RegistryKind>().ok());
        for image in subscription["images"].as_array().into_iter().flatten() {
            let Some(image) = image.as_str().and_then(|i| Repository::parse(i).ok()) else {
                continue;
            };
            let registry = image.domain().to_owned();
            let Some(configured) = state.config.registry(&registry) else {
                continue;
            };
            if configured.manage.is_none() {
                continue;
            }
            let kind = explicit.unwrap_or(configured.kind);
            let Some(scope) = super::scope(kind, image.path()) else {
                continue;
            };
            let key = HookKey { registry, scope };
            if out.contains_key(&key) {
                continue;
            }
            let Some(source) = state.store.find_hook_source(kind.as_str(), &key.registry).await? else {
                continue;
            };
            let url = format!("{}/hooks/{}/{}", state.config.public_url, kind.as_str(), source.token);
            out.insert(key, (kind, image.path().to_owned(), url));
        }
    }
    Ok(out)
}

/// One round: ensures what is due, removes what is no longer wanted;
/// returns when the next work is due.
async fn round(state: &AppState, client: &reqwest::Client) -> crate::store::StoreResult<Option<Instant>> {
    let wanted = wanted(state).await?;
    let now = Instant::now();
    {
        let mut entries = state.manager.entries.lock().expect("not poisoned");
        for (key, entry) in entries.iter_mut() {
            let still = wanted.contains_key(key);
            if entry.wanted && !still {
                // The last subscription that needed it is gone: remove it now.
                entry.next = now;
                entry.failures = 0;
            }
            entry.wanted = still;
        }
        for (key, (kind, path, url)) in &wanted {
            let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
                kind: *kind,
                path: path.clone(),
                url: url.clone(),
                status: ManagedHook {
                    state: ManagedState::Pending,
                    reason: None,
                },
                failures: 0,
                next: now,
                wanted: true,
            });
            if entry.url != *url {
                entry.url = url.clone();
                entry.next = now;
            }
        }
    }
    let due: Vec<(HookKey, Entry)> = state
        .manager
        .entries
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|(_, e)| e.next <= now)
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    for (key, entry) in due {
        let Some(configured) = state.config.registry(&key.registry) else {
            continue;
        };
        let Some(credentials) = configured.manage.as_ref() else {
            continue;
        };
        let base = configured
            .api
            .clone()
            .unwrap_or_else(|| super::default_api(entry.kind, &key.registry));
        let api = Api {
            client,
            base: &base,
            credentials,
        };
        if entry.wanted {
            let spec = spec(state, entry.kind, &key.registry, &entry.url).await?;
            let result = super::ensure(entry.kind, api, &key.scope, &entry.path, &spec).await;
            if result.is_ok() {
                let row = ManagedHookRow {
                    registry: key.registry.clone(),
                    scope: key.scope.clone(),
                    kind: entry.kind.as_str().to_owned(),
                    path: entry.path.clone(),
                    url: entry.url.clone(),
                };
                state.store.put_managed_hook(&row).await?;
            }
            record(
                state,
                &key,
                result.map(|e| match e {
                    Ensured::Created(id) => (ManagedState::Created, id),
                    Ensured::Existing(id) => (ManagedState::Existing, id),
                }),
            );
        } else {
            let result = super::remove(entry.kind, api, &key.scope, &entry.path, &entry.url).await;
            match result {
                Ok(removed) => {
                    state.store.delete_managed_hook(&key.registry, &key.scope).await?;
                    tracing::info!(registry = %key.registry, scope = %key.scope, deleted = matches!(removed, Removed::Deleted), "registry hook no longer needed: removed");
                    state.manager.entries.lock().expect("not poisoned").remove(&key);
                }
                Err(err) => record(state, &key, Err(err)),
            }
        }
    }
    Ok(state
        .manager
        .entries
        .lock()
        .expect("not poisoned")
        .values()
        .map(|e| e.next)
        .min())
}

/// What the hook must carry: the hook source's signing secret (GitHub,
/// Gitea) and the `--hook-token` as a fixed `Authorization` header (Harbor,
/// Gitea).
async fn spec(state: &AppState, kind: RegistryKind, registry: &str, url: &str) -> crate::store::StoreResult<HookSpec> {
    let source = state.store.find_hook_source(kind.as_str(), registry).await?;
    Ok(HookSpec {
        url: url.to_owned(),
        secret: source.and_then(|s| s.secret),
        authorization: state.config.hook_token.as_ref().map(|t| format!("Bearer {t}")),
    })
}

fn record(state: &AppState, key: &HookKey, result: Result<(ManagedState, String), ManageError>) {
    let mut entries = state.manager.entries.lock().expect("not poisoned");
    let Some(entry) = entries.get_mut(key) else {
        return;
    };
    match result {
        Ok((managed, id)) => {
            if entry.status.state != managed || entry.failures > 0 {
                tracing::info!(registry = %key.registry, scope = %key.scope, hook = %id, state = ?managed, "registry hook in place");
            }
            // A hook found again after it was created stays "created".
            let keep_created = entry.status.state == ManagedState::Created && managed == ManagedState::Existing;
            if !keep_created {
                entry.status = ManagedHook {
                    state: managed,
                    reason: None,
                };
            }
            entry.failures = 0;
            entry.next = Instant::now() + RECHECK;
        }
        Err(err) => {
            let delay = BACKOFF[(entry.failures as usize).min(BACKOFF.len() - 1)];
            entry.failures += 1;
            entry.next = Instant::now() + delay;
            tracing::warn!(registry = %key.registry, scope = %key.scope, error = %err, retry_in = ?delay, retryable = err.retryable(), "managing a registry hook failed");
            entry.status = ManagedHook {
                state: ManagedState::Failed,
                reason: Some(err.to_string()),
            };
        }
    }
}
