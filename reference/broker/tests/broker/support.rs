//! Fresh stores for tests: a new SQLite database or a new PostgreSQL schema each time.

#![allow(dead_code)]

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use tagcast_broker::store::{PostgresStore, SqliteStore, Store};

/// The PostgreSQL server of `.ci/start-parts`.
pub fn postgres_url() -> String {
    std::env::var("TAGCAST_TEST_POSTGRES_URL").expect("TAGCAST_TEST_POSTGRES_URL names a PostgreSQL server")
}

/// A new, empty schema on the test server; its name.
pub async fn fresh_schema() -> String {
    use sqlx::Connection as _;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&postgres_url())
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    schema
}

/// Options that put every connection in `schema`.
pub fn schema_options(schema: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(&postgres_url())
        .expect("a PostgreSQL URL")
        .options([("search_path", schema)])
}

/// The secret keys of the tests' stores: one fixed key, so that a store
/// reopened on the same database (restarts, replicas) opens its secrets.
pub fn keys() -> tagcast_broker::keys::Keys {
    use tagcast_broker::keys::{KeySource, Keyring, Keys, SecretKey};
    Keys::new(Keyring::new(
        &SecretKey::parse(&"5e".repeat(32)).expect("a valid key"),
        KeySource::Given,
    ))
}

/// A store on a new PostgreSQL schema.
pub async fn postgres() -> Arc<dyn Store> {
    let schema = fresh_schema().await;
    Arc::new(
        PostgresStore::open_with(schema_options(&schema), &crate::support::keys())
            .await
            .expect("open PostgreSQL store"),
    )
}

/// A store on a new in-memory SQLite database.
pub async fn sqlite() -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open_keyed("sqlite::memory:", &crate::support::keys())
            .await
            .expect("open SQLite store"),
    )
}

/// Runs one async test case against a fresh SQLite store and, when
/// ignored tests run, a fresh PostgreSQL schema.
#[macro_export]
macro_rules! store_cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::support::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs postgres"]
                async fn $case() {
                    super::$case($crate::support::postgres().await).await;
                }
            )*
        }
    };
}

/// A test receiver: records every request and answers with scripted
/// statuses (then 200).
/// A GA4GH service registration of a WES with the subscription
/// `subscription` (API-5, API-6): the envelope every test registers.
pub fn registration(id: impl serde::Serialize, subscription: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "name": "WES",
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "organization": {"name": "Example", "url": "https://example.org"},
        "version": "1.0.0",
        "url": "https://wes.example.org/ga4gh/wes/v1",
        "subscription": subscription,
    })
}

pub mod receiver {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    /// One received request.
    #[derive(Debug, Clone)]
    pub struct Received {
        pub headers: HeaderMap,
        pub body: Bytes,
        pub at: std::time::Instant,
    }

    impl Received {
        pub fn header(&self, name: &str) -> &str {
            self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
        }

        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).expect("a JSON body")
        }
    }

    #[derive(Default)]
    struct Inner {
        received: Vec<Received>,
        script: VecDeque<u16>,
    }

    /// A running receiver.
    #[derive(Clone)]
    pub struct Receiver {
        inner: Arc<Mutex<Inner>>,
        pub url: String,
    }

    impl Receiver {
        /// Starts on a free loopback port; answers `script` in order, then 200.
        pub async fn start(script: &[u16]) -> Self {
            let inner = Arc::new(Mutex::new(Inner {
                received: Vec::new(),
                script: script.iter().copied().collect(),
            }));
            let app = Router::new()
                .route("/callback", post(receive))
                .with_state(inner.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/callback", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Self { inner, url }
        }

        pub fn received(&self) -> Vec<Received> {
            self.inner.lock().unwrap().received.clone()
        }

        /// Waits until at least `n` requests arrived (or panics after 10 s).
        pub async fn wait_for(&self, n: usize) -> Vec<Received> {
            for _ in 0..200 {
                let got = self.received();
                if got.len() >= n {
                    return got;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("expected {n} callbacks, got {}", self.received().len());
        }
    }

    /// Answers the next scripted status; 429 and 503 come with `Retry-After: 1`.
    async fn receive(
        State(inner): State<Arc<Mutex<Inner>>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        let mut inner = inner.lock().unwrap();
        inner.received.push(Received {
            headers,
            body,
            at: std::time::Instant::now(),
        });
        let code = StatusCode::from_u16(inner.script.pop_front().unwrap_or(200)).unwrap();
        if code == StatusCode::TOO_MANY_REQUESTS || code == StatusCode::SERVICE_UNAVAILABLE {
            (code, [("retry-after", "1")]).into_response()
        } else {
            code.into_response()
        }
    }
}

/// A broker on a free loopback port.
pub mod broker {
    use std::sync::Arc;

    use tagcast_broker::store::Store;
    use tagcast_broker::{AppState, Config};
    use tokio::sync::oneshot;

    pub const TOKEN: &str = "test-admin-token-0123456789";

    pub struct Broker {
        pub url: String,
        pub state: AppState,
        pub client: reqwest::Client,
        stop: Option<oneshot::Sender<()>>,
        task: Option<tokio::task::JoinHandle<()>>,
    }

    impl Broker {
        /// Starts a broker on `store` with the test defaults changed by `tweak`.
        pub async fn start(store: Arc<dyn Store>, tweak: impl FnOnce(&mut Config)) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut config = Config::for_tests();
            config.listen = addr;
            config.public_url = format!("http://{addr}");
            config.retry_schedule = vec![std::time::Duration::from_millis(100); 3];
            config.retry_jitter = 0.0;
            tweak(&mut config);
            let started = tagcast_broker::start(store, config).await.unwrap();
            let state = started.state.clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                tagcast_broker::run(listener, started.state, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
            Self {
                url: format!("http://{addr}"),
                state,
                client: reqwest::Client::new(),
                stop: Some(stop),
                task: Some(task),
            }
        }

        pub fn api(&self, path: &str) -> String {
            format!("{}/ga4gh/registry/v1{path}", self.url)
        }

        /// `POST /services` with the admin token.
        pub async fn register(&self, body: &serde_json::Value) -> reqwest::Response {
            self.client
                .post(self.api("/services"))
                .bearer_auth(TOKEN)
                .json(body)
                .send()
                .await
                .unwrap()
        }

        /// `GET url` with the admin token, as JSON.
        pub async fn admin_json(&self, url: &str) -> serde_json::Value {
            self.client
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        }

        /// `GET /metrics`, the OpenMetrics text.
        pub async fn metrics(&self) -> String {
            self.client
                .get(format!("{}/metrics", self.url))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }

        /// The event log, `GET /hooks/events` with the admin token, newest first.
        pub async fn events(&self) -> Vec<serde_json::Value> {
            self.client
                .get(format!("{}/hooks/events", self.url))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        }

        /// Registers a WES service subscribed to `images` at `stage`; returns the create answer.
        pub async fn subscribe(&self, id: &str, images: &[&str], stage: &str, callback: &str) -> serde_json::Value {
            let body = super::registration(
                id,
                serde_json::json!({
                    "images": images,
                    "stage": stage,
                    "callbackUrl": callback,
                    "registry": {"kind": "distribution"}
                }),
            );
            let response = self.register(&body).await;
            assert_eq!(response.status(), 201, "{:?}", response.text().await);
            response.json().await.unwrap()
        }

        pub async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(task) = self.task.take() {
                task.await.unwrap();
            }
        }
    }
}

/// A CNCF Distribution 2.8 notification envelope: the documented shape.
pub mod distribution {
    use serde_json::{Value, json};

    pub const MEDIA_TYPE_V1: &str = "application/vnd.docker.distribution.events.v1+json";

    pub fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    /// A blob push event.
    pub fn blob_push(repository: &str, n: u8) -> Value {
        json!({
            "id": format!("blob-{repository}-{n}"),
            "timestamp": "2020-11-08T19:56:31.123456789Z",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 2797612,
                "digest": digest(n),
                "length": 2797612,
                "repository": repository,
                "url": format!("http://registry.example.org:5000/v2/{repository}/blobs/{}", digest(n))
            },
            "request": {
                "id": "4b0fe0c2-f8f4-4b4c-8f1c-0f6a5c0a9d11",
                "addr": "10.0.0.5:53412",
                "host": "registry.example.org:5000",
                "method": "PUT",
                "useragent": "skopeo/1.9.3"
            },
            "actor": {},
            "source": {"addr": "registry-0:5000", "instanceID": "8e2a4c4e-0c6a-4d2e-9f3b-1b2c3d4e5f60"}
        })
    }

    /// A manifest push event, tagged if `tag` is given.
    pub fn manifest_push(id: &str, repository: &str, tag: Option<&str>, n: u8) -> Value {
        let mut target = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 1609,
            "digest": digest(n),
            "length": 1609,
            "repository": repository,
            "url": format!("http://registry.example.org:5000/v2/{repository}/manifests/{}", digest(n))
        });
        if let Some(tag) = tag {
            target["tag"] = json!(tag);
        }
        json!({
            "id": id,
            "timestamp": "2020-11-08T19:56:32.123456789Z",
            "action": "push",
            "target": target,
            "request": {
                "id": "5c1fe0c2-f8f4-4b4c-8f1c-0f6a5c0a9d12",
                "addr": "10.0.0.5:53412",
                "host": "registry.example.org:5000",
                "method": "PUT",
                "useragent": "skopeo/1.9.3"
            },
            "actor": {},
            "source": {"addr": "registry-0:5000", "instanceID": "8e2a4c4e-0c6a-4d2e-9f3b-1b2c3d4e5f60"}
        })
    }

    pub fn envelope(events: Vec<Value>) -> String {
        json!({ "events": events }).to_string()
    }
}

/// The broker's log lines at INFO and above, captured for the whole test
/// binary (one global subscriber; tests run in parallel, so each searches
/// for its own unique values: an event id, a token).
pub mod logs {
    use std::sync::{Mutex, OnceLock};

    static LINES: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

    struct Sink;

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            LINES
                .get_or_init(Default::default)
                .lock()
                .unwrap()
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Starts capturing (idempotent): text lines, no ANSI codes, INFO and up,
    /// as an operator sees them at the default level.
    pub fn capture() {
        LINES.get_or_init(Default::default);
        let _ = tracing_subscriber::fmt()
            .with_writer(|| Sink)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .try_init();
    }

    /// Everything captured so far.
    pub fn text() -> String {
        String::from_utf8_lossy(&LINES.get_or_init(Default::default).lock().unwrap()).into_owned()
    }

    /// The captured lines that contain every one of `needles`.
    pub fn lines_with(needles: &[&str]) -> Vec<String> {
        text()
            .lines()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .map(str::to_owned)
            .collect()
    }
}
