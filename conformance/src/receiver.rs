//! The runner's own HTTP receiver: it stands in for CD endpoints (target
//! `broker`) and for a registry's notification endpoint (target
//! `registry`), records everything it is sent, and answers as told.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `data.tag` of a callback, if the body is one.
    pub(crate) fn tag(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        json.pointer("/data/tag")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    }
}

/// How an inbox answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 202 to everything.
    Accept,
    /// 500 to the first `n` requests, then 202.
    FailFirst(usize),
    /// 410 Gone to everything.
    Gone,
    /// This status to everything (a permanent failure such as 400).
    Always(u16),
    /// This status (429 or 503) with `Retry-After: <seconds>` to the first
    /// request, then 202.
    Throttle(u16, u64),
}

#[derive(Default)]
struct Inboxes {
    answers: HashMap<String, Answer>,
    received: HashMap<String, Vec<Received>>,
}

/// The receiver: `POST /{inbox}` is recorded in that inbox. Dropping it
/// stops the server and frees its port.
pub(crate) struct Receiver {
    shared: Shared,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// What the server and the runner share.
#[derive(Clone)]
pub(crate) struct Shared {
    inboxes: Arc<Mutex<Inboxes>>,
    /// What the receiver, as a registry API, says each tag points to:
    /// (repository path, tag) → digest.
    manifests: Arc<Mutex<HashMap<(String, String), String>>>,
    registry_requests: Arc<Mutex<usize>>,
    arrived: Arc<Notify>,
    base: String,
}

impl std::ops::Deref for Receiver {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Receiver {
    /// Binds `listen` and serves; callers reach it at `public_base` (or at
    /// the bound address).
    pub(crate) async fn start(listen: SocketAddr, public_base: Option<&str>) -> Result<Self, String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = Shared {
            inboxes: Arc::default(),
            manifests: Arc::default(),
            registry_requests: Arc::default(),
            arrived: Arc::default(),
            base: public_base.map_or_else(|| format!("http://{addr}"), |b| b.trim_end_matches('/').to_owned()),
        };
        let app = Router::new()
            .route("/{inbox}", post(receive))
            .route("/v2/{*path}", any(registry_api))
            .layer(DefaultBodyLimit::max(4 << 20))
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self { shared, _stop: stop })
    }
}

impl Shared {
    /// The receiver's base URL, as the peer reaches it.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Makes the receiver's registry API say `path:tag` points to `digest`.
    pub(crate) fn set_manifest(&self, path: &str, tag: &str, digest: &str) {
        self.manifests
            .lock()
            .expect("not poisoned")
            .insert((path.to_owned(), tag.to_owned()), digest.to_owned());
    }

    /// How many requests the registry API got.
    pub(crate) fn registry_requests(&self) -> usize {
        *self.registry_requests.lock().expect("not poisoned")
    }

    /// The URL of `inbox`, answering with `answer`.
    pub(crate) fn inbox(&self, inbox: &str, answer: Answer) -> String {
        self.inboxes
            .lock()
            .expect("not poisoned")
            .answers
            .insert(inbox.to_owned(), answer);
        format!("{}/{inbox}", self.base)
    }

    /// What `inbox` got so far.
    pub(crate) fn received(&self, inbox: &str) -> Vec<Received> {
        self.inboxes
            .lock()
            .expect("not poisoned")
            .received
            .get(inbox)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `inbox` has at least `count` requests or `timeout`
    /// passes; returns what it has.
    pub(crate) async fn wait_for(&self, inbox: &str, count: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(inbox, timeout, |got| got.len() >= count).await
    }

    /// Waits until `inbox` holds a callback whose `data.tag` is `tag`, or
    /// `timeout` passes; returns what it has.
    pub(crate) async fn wait_for_tag(&self, inbox: &str, tag: &tagcast_spec::Tag, timeout: Duration) -> Vec<Received> {
        let tag = tag.to_string();
        self.wait_until(inbox, timeout, |got| {
            got.iter().any(|r| r.tag().as_deref() == Some(&tag))
        })
        .await
    }

    /// Waits until the first request `inbox` got arrives again (the same
    /// `webhook-id`), or `timeout` passes; returns what it has.
    pub(crate) async fn wait_for_retry(&self, inbox: &str, timeout: Duration) -> Vec<Received> {
        self.wait_until(inbox, timeout, |got| {
            got.split_first().is_some_and(|(first, rest)| {
                let id = first.header(tagcast_spec::webhook::HEADER_ID);
                rest.iter().any(|r| r.header(tagcast_spec::webhook::HEADER_ID) == id)
            })
        })
        .await
    }

    async fn wait_until(&self, inbox: &str, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let got = self.received(inbox);
            if done(&got) || Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), notified).await;
        }
    }
}

/// `GET`/`HEAD /v2/<path>/manifests/<tag>`: what a broker asks to re-check
/// a tag (API-15); 404 for anything the runner did not push.
async fn registry_api(State(receiver): State<Shared>, Path(path): Path<String>) -> Response {
    *receiver.registry_requests.lock().expect("not poisoned") += 1;
    let found = path.rsplit_once("/manifests/").and_then(|(name, tag)| {
        receiver
            .manifests
            .lock()
            .expect("not poisoned")
            .get(&(name.to_owned(), tag.to_owned()))
            .cloned()
    });
    match found {
        Some(digest) => (
            StatusCode::OK,
            [
                ("docker-content-digest", digest),
                ("content-type", "application/vnd.oci.image.manifest.v1+json".to_owned()),
            ],
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn receive(
    State(receiver): State<Shared>,
    Path(inbox): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut inboxes = receiver.inboxes.lock().expect("not poisoned");
        let answer = inboxes.answers.get(&inbox).copied().unwrap_or(Answer::Accept);
        let list = inboxes.received.entry(inbox).or_default();
        list.push(Received {
            headers,
            body: body.to_vec(),
            at: Instant::now(),
        });
        let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
        match answer {
            Answer::Accept => StatusCode::ACCEPTED.into_response(),
            Answer::FailFirst(n) if list.len() <= n => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            Answer::FailFirst(_) => StatusCode::ACCEPTED.into_response(),
            Answer::Gone => StatusCode::GONE.into_response(),
            Answer::Always(code) => status(code).into_response(),
            Answer::Throttle(code, seconds) if list.len() == 1 => {
                (status(code), [("retry-after", seconds.to_string())]).into_response()
            }
            Answer::Throttle(..) => StatusCode::ACCEPTED.into_response(),
        }
    };
    receiver.arrived.notify_waiters();
    answer
}
