//! `GET /metrics`: Prometheus metrics in the OpenMetrics text format, like
//! the broker's, so that one scrape configuration covers both services.
//! Public, as the broker's: counts and the hold flag only, no names,
//! tags or secrets.

use std::sync::atomic::AtomicI64;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::store::Outcome;

/// The label of both counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// The deployer's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    callbacks: Family<OutcomeLabel, Counter>,
    updates: Family<OutcomeLabel, Counter>,
    queued: Gauge<i64, AtomicI64>,
    held: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the prefix `tagcast_deployer`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tagcast_deployer");
        let callbacks = Family::<OutcomeLabel, Counter>::default();
        let updates = Family::<OutcomeLabel, Counter>::default();
        let queued = Gauge::<i64, AtomicI64>::default();
        let held = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "callbacks",
            "Callback requests by answer: accepted, duplicate, refused, unauthorized, invalid, unsupported_media_type",
            callbacks.clone(),
        );
        registry.register(
            "updates",
            "Queued updates closed by the worker, by outcome: applied, failed, superseded, refused",
            updates.clone(),
        );
        registry.register("queued", "Accepted updates waiting to be applied", queued.clone());
        registry.register(
            "held",
            "1 while updates are held back (tagcast deployer hold)",
            held.clone(),
        );
        Self {
            registry,
            callbacks,
            updates,
            queued,
            held,
        }
    }

    /// Counts a callback answered with `outcome`.
    pub(crate) fn callback(&self, outcome: &str) {
        self.callbacks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts an update the worker closed.
    pub(crate) fn update(&self, outcome: Outcome) {
        self.updates
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(get_metrics))
}

async fn get_metrics(State(state): State<AppState>) -> Response {
    // The gauges are read from the store, which other processes change too
    // (`tagcast deployer hold`).
    if let Ok(status) = state.store.status(0).await {
        state.metrics.queued.set(status.pending);
        state.metrics.held.set(i64::from(status.hold.held));
    }
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}
