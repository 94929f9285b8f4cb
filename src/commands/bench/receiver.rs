//! The callback receiver: answers callbacks as a CD endpoint would, after
//! checking the `webhook-*` headers against the subscription secret
//! (`tagcast_spec::webhook::verify`, CB-5/CB-6) and parsing the body as the
//! contract's `CloudEvent<ImagePublished>`; then records when each tag
//! arrived. Bad signatures get 401 and are counted, never recorded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tagcast_spec::webhook::{self, DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret};
use tagcast_spec::{CloudEvent, ImagePublished};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// When the callbacks of one tag arrived.
#[derive(Debug, Clone, Copy)]
pub struct Arrivals {
    /// How many callbacks carried the tag (one per subscriber).
    pub count: u64,
    /// The first one.
    pub first: Instant,
    /// The last one.
    pub last: Instant,
}

/// What the receiver saw; shared with the figures.
#[derive(Debug)]
pub struct Received {
    secret: Secret,
    by_tag: Mutex<HashMap<String, Arrivals>>,
    accepted: AtomicU64,
    rejected: AtomicU64,
    changed: Notify,
}

impl Received {
    /// Callbacks accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Callbacks refused (bad signature or body) so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The arrivals of `tag`, if any.
    pub fn arrivals(&self, tag: &str) -> Option<Arrivals> {
        self.by_tag.lock().expect("not poisoned").get(tag).copied()
    }

    /// Waits until `done` holds for the arrivals seen, or `deadline`;
    /// returns whether `done` held.
    pub async fn wait_until(&self, deadline: Instant, mut done: impl FnMut(&Self) -> bool) -> bool {
        loop {
            let notified = self.changed.notified();
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Woken on every arrival; the timeout only bounds the wait.
            let _ = tokio::time::timeout((deadline - now).min(Duration::from_millis(200)), notified).await;
        }
    }

    fn record(&self, tag: String, at: Instant) {
        let mut map = self.by_tag.lock().expect("not poisoned");
        let entry = map.entry(tag).or_insert(Arrivals {
            count: 0,
            first: at,
            last: at,
        });
        entry.count += 1;
        entry.last = entry.last.max(at);
        drop(map);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }
}

/// Starts the receiver on a loopback port; returns its base URL
/// (`http://127.0.0.1:PORT`, callbacks go to `/cb/<anything>`).
pub async fn start(secret: Secret) -> anyhow::Result<(String, Arc<Received>)> {
    let received = Arc::new(Received {
        secret,
        by_tag: Mutex::new(HashMap::new()),
        accepted: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        changed: Notify::new(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/cb/{name}", post(callback))
        .with_state(received.clone());
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("bench: the callback receiver stopped: {err}");
        }
    });
    Ok((url, received))
}

async fn callback(State(received): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let verified = webhook::verify(
        std::slice::from_ref(&received.secret),
        header(HEADER_ID),
        header(HEADER_TIMESTAMP),
        header(HEADER_SIGNATURE),
        &body,
        now,
        DEFAULT_TOLERANCE,
    );
    if verified.is_err() {
        received.rejected.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<CloudEvent<ImagePublished>>(&body) {
        Ok(event) => {
            received.record(event.data.tag.to_string(), at);
            StatusCode::NO_CONTENT
        }
        Err(_) => {
            received.rejected.fetch_add(1, Ordering::Relaxed);
            StatusCode::BAD_REQUEST
        }
    }
}
