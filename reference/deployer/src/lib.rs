//! The reference deployer: a CD endpoint that verifies tagcast callbacks
//! and upgrades one Kubernetes/OpenShift workload (DESIGN.md §6, §8; see
//! `reference/deployer/README.md`).
//!
//! - [`app`] builds the router (`POST /` callbacks, `OPTIONS /` the
//!   CloudEvents validation handshake, `GET /healthz`, `GET /metrics`) for
//!   tests without a socket; [`serve`] runs it on a listener, with
//!   timeouts and a connection cap ([`Limits`]), and with the worker that
//!   applies queued updates; with an admin token also `GET /status`,
//!   `POST /hold`, `POST /release`;
//! - [`store::Store`] keeps seen ids, the applied tag per image, the hold
//!   flag and the history in SQLite, across restarts;
//! - [`apply`] holds the four modes: `exec`, `kubectl`, `gitops`,
//!   `kubernetes`.

mod admin;
pub mod apply;
mod callback;
mod command;
mod config;
mod error;
mod health;
pub mod metrics;
mod server;
pub mod store;
mod worker;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use callback::{ALLOWED_ORIGIN, ALLOWED_RATE, REQUEST_ORIGIN, REQUEST_RATE};
pub use config::{Config, DEFAULT_BODY_LIMIT};
pub use metrics::Metrics;
pub use server::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT, Limits,
};
pub use store::{Store, StoreError};
pub use worker::{run_pending, update_of};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration.
    pub config: Arc<Config>,
    /// The state store.
    pub store: Store,
    /// Wakes the worker when an event was queued.
    pub wake: Arc<Notify>,
    /// What `GET /metrics` shows.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// State over an opened store.
    pub fn new(config: Config, store: Store) -> Self {
        Self {
            config: Arc::new(config),
            store,
            wake: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Opens the configured store (`config.state`, or in memory) and
    /// records `config.current_tag` where no applied tag is known.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the state file cannot be opened.
    pub async fn open(config: Config) -> Result<Self, StoreError> {
        let store = match &config.state {
            Some(path) => Store::open(path).await?,
            None => Store::in_memory().await?,
        };
        if let Some(tag) = &config.current_tag {
            for image in &config.images {
                store.seed_applied(&image.to_string(), &tag.to_string()).await?;
            }
        }
        Ok(Self::new(config, store))
    }
}

/// The deployer's routes. The worker is not started: tests drive it with
/// [`run_pending`]; [`serve`] runs it.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .merge(callback::router(&state))
        .merge(health::router())
        .merge(metrics::router());
    if state.config.admin_token.is_some() {
        router = router.merge(admin::router());
    }
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            server::limit_request,
        ))
        .with_state(state)
}

/// A failure that stops the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The state store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listener failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The apply mode cannot work as configured (e.g. a GitOps remote
    /// that does not exist).
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
}

/// Serves on `listener` until SIGINT or SIGTERM, then stops taking
/// requests, lets the worker finish the upgrade in progress, and returns.
///
/// # Errors
///
/// [`ServeError`] when the store cannot be opened or the listener fails.
pub async fn serve(listener: TcpListener, config: Config) -> Result<(), ServeError> {
    serve_until(listener, config, shutdown_signal()).await
}

/// [`serve`], stopping when `shutdown` completes.
///
/// # Errors
///
/// [`ServeError`] when the store cannot be opened or the listener fails.
pub async fn serve_until(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let address = listener.local_addr()?;
    config.applier.check().await?;
    let state = AppState::open(config).await?;
    log_watch(&state).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(worker::run(state.clone(), stop_rx));
    let store = state.store.clone();
    let limits = state.config.limits;
    tracing::info!(
        %address,
        route = %state.config.route,
        header_read_timeout = ?limits.header_read_timeout,
        body_read_timeout = ?limits.body_read_timeout,
        request_timeout = ?limits.request_timeout,
        max_connections = limits.max_connections,
        "deployer listening"
    );
    tagcast_serve::serve(
        listener,
        app(state),
        limits.connections(),
        server::OVER_CAP_BODY,
        shutdown,
    )
    .await;
    let _ = stop_tx.send(true);
    if let Err(err) = worker.await {
        tracing::error!("worker ended abnormally: {err}");
    }
    store.close().await;
    tracing::info!("deployer stopped");
    Ok(())
}

/// Says at start what this deployer watches and how it applies, one line
/// per image, so that an operator sees a wrong flag before the first push.
async fn log_watch(state: &AppState) -> Result<(), StoreError> {
    let config = &state.config;
    for image in &config.images {
        let current = state.store.applied(&image.to_string()).await?.map(|a| a.tag);
        tracing::info!(
            %image,
            stage = %config.policy.stage,
            requirement = %config.policy.requirement,
            current_tag = current.as_deref().unwrap_or("(none: the first update is applied)"),
            apply = %config.applier.describe(),
            state = %config.state.as_ref().map_or_else(|| "in memory (--ephemeral)".to_owned(), |p| p.display().to_string()),
            "watching"
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
