//! The reference broker of tagcast (see `reference/broker/README.md`): a
//! GA4GH Service Registry with the `subscription` extension that receives
//! container registries' push webhooks and delivers signed callbacks to
//! subscribed deployments, durably.
//!
//! - [`app`] builds the router from an [`AppState`], so tests can drive it
//!   without a socket; [`serve`] runs it on a listener with the matcher and
//!   the delivery worker, until SIGTERM or SIGINT.
//! - [`store`]: one trait, SQLite and PostgreSQL.
//! - [`inbound`]: one adapter per registry kind.
//! - [`matching`] and [`delivery`]: the durable outbox.

pub mod api;
pub mod config;
pub mod delivery;
pub mod inbound;
pub mod keys;
pub mod manage;
pub mod matching;
pub mod metrics;
pub mod ratelimit;
pub mod registries;
pub mod resolve;
pub mod retention;
pub mod server;
pub mod ssrf;
pub mod store;
pub mod verify;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use config::{Config, Settings};

use crate::store::Store;

/// What every handler and background task shares.
pub struct Shared {
    /// The durable state.
    pub store: Arc<dyn Store>,
    /// The configuration.
    pub config: Config,
    /// The metrics.
    pub metrics: metrics::Metrics,
    /// SHA-256 of the admin token.
    pub admin_token_hash: [u8; 32],
    /// This process's worker id, for delivery claims.
    pub worker_id: String,
    /// Wakes the delivery worker (new deliveries, redelivery).
    pub wake_worker: Notify,
    /// Wakes the matcher (a hook was stored).
    pub wake_matcher: Notify,
    /// Turns true when the broker shuts down.
    pub shutting_down: watch::Sender<bool>,
    /// What inbound hooks must carry on top of their path token.
    pub hook_auth: inbound::HookAuth,
    /// The hooks the broker manages in registries.
    pub manager: manage::reconcile::Manager,
    /// Requests per client address.
    pub client_limiter: ratelimit::Limiter<std::net::IpAddr>,
    /// Requests per hook token (keyed by the token's SHA-256).
    pub hook_limiter: ratelimit::Limiter<[u8; 32]>,
}

/// The state of the app.
pub type AppState = Arc<Shared>;

/// A broker that could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The database failed.
    #[error("cannot open the database")]
    Store(#[from] store::StoreError),
    /// The secret key cannot be loaded.
    #[error("cannot load the secret key")]
    Key(#[from] keys::KeyError),
    /// The listener failed.
    #[error("the HTTP server failed")]
    Io(#[from] std::io::Error),
    /// The generated admin token could not be written.
    #[error("cannot write the generated admin token to {path}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The state of a started broker, and the admin token if this start
/// generated it (to be shown once).
pub struct Started {
    /// The app state.
    pub state: AppState,
    /// A generated admin token, present only on the first start without one.
    pub generated_admin_token: Option<String>,
}

/// Builds the state: settles the admin token. Without a configured token,
/// the first start generates one and stores its hash; later starts use the
/// stored hash.
///
/// # Errors
///
/// The store's error.
pub async fn start(store: Arc<dyn Store>, config: Config) -> Result<Started, BrokerError> {
    let (admin_token_hash, generated_admin_token) = match &config.admin_token {
        Some(token) => (api::token_hash(token), None),
        None => {
            let generated = store::random_token();
            let hash = api::token_hash(&generated);
            let stored = store.init_setting("admin_token_sha256", &hex(&hash)).await?;
            if stored == hex(&hash) {
                (hash, Some(generated))
            } else {
                (unhex(&stored).unwrap_or([0; 32]), None)
            }
        }
    };
    let (shutting_down, _) = watch::channel(false);
    let config_rates = (config.client_rate_limit, config.hook_rate_limit);
    let hook_auth = inbound::HookAuth {
        bearer: config.hook_token.clone(),
        push_tokens: config
            .registries
            .iter()
            .filter_map(|r| {
                let auth = r.push_auth.clone()?;
                Some((r.host.clone(), Arc::new(inbound::oidc::PushTokens::new(auth))))
            })
            .collect(),
    };
    let state = Arc::new(Shared {
        store,
        config,
        metrics: metrics::Metrics::new(),
        admin_token_hash,
        worker_id: format!("broker-{}", uuid::Uuid::new_v4().simple()),
        wake_worker: Notify::new(),
        wake_matcher: Notify::new(),
        shutting_down,
        hook_auth,
        manager: manage::reconcile::Manager::new(),
        client_limiter: ratelimit::Limiter::new(config_rates.0),
        hook_limiter: ratelimit::Limiter::new(config_rates.1),
    });
    Ok(Started {
        state,
        generated_admin_token,
    })
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The router: the registry API under [`api::BASE_PATH`], inbound hooks,
/// operations.
pub fn app(state: AppState) -> Router {
    let limit = state.config.body_limit;
    Router::new()
        .nest(
            api::BASE_PATH,
            api::services::router()
                .merge(api::deliveries::router())
                .layer(axum::extract::DefaultBodyLimit::max(limit)),
        )
        .merge(api::hooks::router(limit))
        .merge(api::hook_sources::router())
        .merge(api::deliveries::events_router())
        .merge(api::ops::router())
        .fallback(api::fallback)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            server::limit_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit_clients,
        ))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// Logs each request by its route pattern, never its URI: hook URLs carry
/// tokens.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        route,
        status = response.status().as_u16(),
        millis = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Opens the database, starts, writes a generated admin token to its file
/// (mode 0600), and serves until SIGTERM or SIGINT.
///
/// # Errors
///
/// The database or the listener failed, or the token file cannot be written.
pub async fn serve(listener: TcpListener, config: Config) -> Result<(), BrokerError> {
    let (keys, generated_key) = config.keys()?;
    // The source only, never the key.
    if let Some(path) = &generated_key {
        tracing::info!(
            file = %path.display(),
            "generated the secret key that seals the database's secrets (mode 0600); back it up with the \
             database: without it the database's secrets cannot be opened"
        );
    } else {
        tracing::info!(key = %keys.current.source(), "the database's secrets are sealed with the secret key from here");
    }
    let store = store::open(&config.database_url, &keys).await?;
    let token_file = config.admin_token_file.clone();
    let started = start(store, config).await?;
    if let Some(token) = &started.generated_admin_token {
        // Never on standard output or in a log, where terminals, CI logs and
        // log shippers keep it: in a file only its owner can read.
        write_secret_file(&token_file, token).map_err(|source| BrokerError::TokenFile {
            path: token_file.display().to_string(),
            source,
        })?;
        println!(
            "tagcast broker: generated admin token written to {} (mode 0600)",
            token_file.display()
        );
    }
    run(listener, started.state, shutdown_signal()).await
}

/// Writes `secret` to a new file at `path` that only its owner can read:
/// an existing file (or a symlink planted there) is removed first, and the
/// file is created exclusively with mode 0600.
///
/// # Errors
///
/// The file cannot be removed, created or written.
pub fn write_secret_file(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}

/// Serves `state` on `listener` with the matcher and the delivery worker
/// until `shutdown` completes; then finishes in-flight requests and
/// callback attempts. Everything acknowledged is in the store already, so
/// nothing is lost.
///
/// # Errors
///
/// The listener failed.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BrokerError> {
    if state.store.backend() == "sqlite" {
        // One process owns a SQLite file: claims left by a crashed run are void.
        state.store.release_claims(None).await?;
    }
    let matcher = tokio::spawn(matching::run(state.clone(), state.shutting_down.subscribe()));
    let worker = tokio::spawn(delivery::run(state.clone(), state.shutting_down.subscribe()));
    let manager = tokio::spawn(manage::reconcile::run(state.clone(), state.shutting_down.subscribe()));
    let pruner = tokio::spawn(retention::run(state.clone(), state.shutting_down.subscribe()));
    for (host, tokens) in &state.hook_auth.push_tokens {
        if tokens.jwks_url().is_some() {
            tokio::spawn(inbound::oidc::refresh(
                host.clone(),
                tokens.clone(),
                state.shutting_down.subscribe(),
            ));
        }
    }
    tracing::info!(
        listen = %listener.local_addr()?,
        public_url = %state.config.public_url,
        database = state.store.backend(),
        "tagcast broker listening"
    );
    if !state.config.verify_digests {
        tracing::warn!(
            "digest re-checks are off (verify-digests = false): an event's digest is trusted as sent, except for \
             registries that require the re-check; each decision's reason says so"
        );
    }
    let signal_state = state.clone();
    tagcast_serve::serve(
        listener,
        app(state.clone()),
        state.config.server_limits(),
        server::REFUSED_BODY,
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            signal_state.shutting_down.send_replace(true);
        },
    )
    .await;
    state.shutting_down.send_replace(true);
    let _ = matcher.await;
    let _ = worker.await;
    let _ = manager.await;
    let _ = pruner.await;
    tracing::info!("tagcast broker stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
