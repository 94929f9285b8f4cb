//! `tagcast broker` end to end: the real binary on a free port, a real CNCF
//! Distribution 2.8 notification envelope, a test receiver that checks the
//! Standard Webhooks signature, and a SIGKILL crash on a SQLite file.
//!
//! The receiver and the client are plain `std::net` HTTP/1.1 so that this
//! test depends on nothing but the binary and `tagcast-spec`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tagcast_spec::webhook::{self, Secret};

use super::support::tagcast;

const TOKEN: &str = "e2e-admin-token-0123456789abcdef";
const REGISTRY: &str = "registry.example.org:5000";
/// The secret key of the PostgreSQL brokers (64 hex digits).
const SECRET_KEY: &str = "e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0";
const EVENTS_V1: &str = "application/vnd.docker.distribution.events.v1+json";

// ---------------------------------------------------------------- HTTP ---

struct Response {
    status: u16,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(authority).expect("connect to the broker");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Response {
        status,
        body: if chunked { dechunk(body) } else { body.to_owned() },
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON callback")
    }
}

/// A CD endpoint stand-in on a free port: records requests, answers the
/// scripted statuses then 200; while `hang` is set it reads a request and
/// never answers.
#[derive(Clone)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    hang: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
}

impl Receiver {
    fn start(script: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let receiver = Receiver {
            url: format!("http://{}/callback", listener.local_addr().unwrap()),
            received: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            hang: Arc::default(),
            delay_ms: Arc::default(),
        };
        let shared = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        receiver
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or(0);
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        self.received.lock().unwrap().push(Received { headers, body });
        if self.hang.load(Ordering::SeqCst) {
            // Hold the connection open without answering, like a stuck endpoint.
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        std::thread::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)));
        let status = self.script.lock().unwrap().pop_front().unwrap_or(200);
        let mut stream = reader.into_inner();
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("expected {n} callbacks, got {}", self.received().len());
    }
}

// -------------------------------------------------------------- broker ---

/// A running `tagcast broker`, killed on drop.
struct Broker {
    child: Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Broker {
    /// Starts the binary with `args` after the listen, URL and test flags;
    /// waits until `/readyz` answers.
    fn start(database_url: &str, extra: &[&str]) -> Self {
        Self::start_logging(None, database_url, extra, None)
    }

    /// Like [`Broker::start`] on `port` (a restart where a broker was).
    fn start_on(port: u16, database_url: &str, extra: &[&str]) -> Self {
        Self::start_logging(Some(port), database_url, extra, None)
    }

    /// The port this broker listens on.
    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Like [`Broker::start`], on `port` or else a free one, with standard
    /// error (the logs) in `log` and `TAGCAST_LOG=debug`. A free port is
    /// found by binding and releasing (the broker takes no listener), so a
    /// parallel test may take it first: the broker then exits at once and
    /// this tries again, on a new port unless `port` was given.
    fn start_logging(port: Option<u16>, database_url: &str, extra: &[&str], log: Option<&Path>) -> Self {
        for _ in 0..5 {
            if let Some(broker) = Self::launch(port.unwrap_or_else(free_port), database_url, extra, log) {
                return broker;
            }
        }
        panic!("the broker exited five times before becoming ready (port taken?)");
    }

    /// One start; `None` when the child exited before it was ready.
    fn launch(port: u16, database_url: &str, extra: &[&str], log: Option<&Path>) -> Option<Self> {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let listen = format!("127.0.0.1:{port}");
        let child = tagcast()
            .args([
                "broker",
                "--listen",
                &listen,
                "--public-url",
                &url,
                "--database-url",
                database_url,
            ])
            .args(["--allow-private-callbacks", "--poll-interval", "50ms"])
            // Tests never resolve external names (the events name REGISTRY).
            .args(["--verify-digests", "false"])
            .args(extra)
            .env_remove("TAGCAST_ADMIN_TOKEN")
            // A PostgreSQL broker has no default key (replicas must share
            // one); a SQLite one makes `<file>.key` beside its database.
            .env_remove("TAGCAST_SECRET_KEY")
            .envs(
                database_url
                    .starts_with("postgres")
                    .then_some(("TAGCAST_SECRET_KEY", SECRET_KEY)),
            )
            .env("TAGCAST_LOG", if log.is_some() { "debug" } else { "info" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("tagcast broker starts");
        let mut broker = Broker { child, url };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if broker.child.try_wait().unwrap().is_some() {
                return None;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && request("GET", &broker.at("/readyz"), &[], "").status == 200
            {
                // Ready, and still running: the answer was this child's.
                return broker.child.try_wait().unwrap().is_none().then_some(broker);
            }
            assert!(Instant::now() < deadline, "the broker did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn api(&self, path: &str) -> String {
        self.at(&format!("/ga4gh/registry/v1{path}"))
    }

    /// Registers a WES that subscribes `images` at `stage`; returns (hook URL, secret).
    fn subscribe(&self, token: &str, id: &str, images: &[String], stage: &str, callback: &str) -> (String, Secret) {
        let body = json!({
            "id": id,
            "name": "cwl-WES",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "organization": {"name": "Example University", "url": "https://www.example.org"},
            "version": "1.1.0",
            "url": "https://wes.example.org/ga4gh/wes/v1",
            "subscription": {"images": images, "stage": stage, "callbackUrl": callback, "registry": {"kind": "distribution"}}
        });
        let auth = format!("Bearer {token}");
        let r = request(
            "POST",
            &self.api("/services"),
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            &body.to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let created = r.json();
        let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
        let secret = Secret::parse(created["subscription"]["secret"].as_str().unwrap()).unwrap();
        (hook, secret)
    }

    fn events(&self, token: &str) -> Vec<Value> {
        let auth = format!("Bearer {token}");
        let r = request(
            "GET",
            &self.at("/hooks/events?limit=1000"),
            &[("Authorization", &auth)],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_array().unwrap().clone()
    }

    /// Waits until no delivery is pending (queue depth 0 in /metrics).
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut idle = 0;
        while Instant::now() < deadline {
            let metrics = request("GET", &self.at("/metrics"), &[], "").body;
            if metrics.lines().any(|l| l == "tagcast_queue_depth 0") {
                idle += 1;
                if idle == 3 {
                    return;
                }
            } else {
                idle = 0;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the outbox did not drain");
    }
}

// ------------------------------------------------- Distribution 2.8 ----

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// The notification envelope `docker-registry` 2.8 sends for `skopeo copy`
/// of a one-layer image by tag: the layer blob, then the tagged manifest
/// (the documented `notifications` format; `actor` is `{}` without auth).
fn pushed(event_id: &str, path: &str, tag: &str, n: u8) -> String {
    let request = json!({
        "id": "3f6a3c5e-8d1b-4f60-9b63-5c7e0a0d2f11",
        "addr": "127.0.0.1:41712",
        "host": REGISTRY,
        "method": "PUT",
        "useragent": "skopeo/1.9.3"
    });
    let source = json!({"addr": "registry-0:5000", "instanceID": "b1b0c9a6-2c41-4a4e-9a3f-2f1e0d9c8b7a"});
    json!({"events": [
        {
            "id": format!("{event_id}-blob"),
            "timestamp": "2020-11-08T19:56:31.514125478Z",
            "action": "push",
            "target": {
                "mediaType": "application/octet-stream",
                "size": 2797612,
                "digest": digest(n.wrapping_add(100)),
                "length": 2797612,
                "repository": path,
                "url": format!("http://{REGISTRY}/v2/{path}/blobs/{}", digest(n.wrapping_add(100)))
            },
            "request": request,
            "actor": {},
            "source": source
        },
        {
            "id": event_id,
            "timestamp": "2020-11-08T19:56:31.798523461Z",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "size": 528,
                "digest": digest(n),
                "length": 528,
                "repository": path,
                "url": format!("http://{REGISTRY}/v2/{path}/manifests/{}", digest(n)),
                "tag": tag
            },
            "request": request,
            "actor": {},
            "source": source
        }
    ]})
    .to_string()
}

fn notify(hook: &str, body: &str) -> Response {
    request("POST", hook, &[("Content-Type", EVENTS_V1)], body)
}

fn tags(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.json()["data"]["tag"].as_str().unwrap_or_default().to_owned())
        .collect()
}

// --------------------------------------------------------------- tests ---

#[test]
fn a_distribution_push_becomes_one_signed_callback() {
    // Without --admin-token the broker generates one and writes it to a
    // file only its owner can read; standard output names the file only.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    let mut broker = Broker::start("sqlite::memory:", &["--admin-token-file", token_file.to_str().unwrap()]);
    let mut line = String::new();
    BufReader::new(broker.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    assert!(
        line.contains("admin token") && line.contains("admin-token") && token.len() >= 32,
        "{line}"
    );
    assert!(!line.contains(&token), "the token is not printed: {line}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is the owner's only");
    }

    let receiver = Receiver::start(&[]);
    let image = format!("{REGISTRY}/team/cwl-wes");
    let (hook, secret) = broker.subscribe(
        &token,
        "wes-prod",
        std::slice::from_ref(&image),
        "production",
        &receiver.url,
    );

    // A wrong token: 404, and nothing is stored.
    let wrong = format!("{}/hooks/distribution/{}", broker.url, "A".repeat(43));
    let before = broker.events(&token).len();
    assert_eq!(
        notify(
            &wrong,
            &pushed("ev-x", "team/cwl-wes", "1.1.0-production-201108-195630", 9)
        )
        .status,
        404
    );
    assert_eq!(broker.events(&token).len(), before, "a wrong token stores nothing");

    // The push: blob + tagged manifest.
    let r = notify(
        &hook,
        &pushed("ev-1", "team/cwl-wes", "1.1.0-production-201108-195630", 1),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let got = receiver.wait_for(1);
    broker.settle();
    assert_eq!(receiver.received().len(), 1, "exactly one callback");
    let cb = &got[0];
    assert_eq!(cb.header("content-type"), "application/cloudevents+json");
    let now = chrono::Utc::now().timestamp();
    webhook::verify(
        std::slice::from_ref(&secret),
        Some(cb.header("webhook-id")),
        Some(cb.header("webhook-timestamp")),
        Some(cb.header("webhook-signature")),
        &cb.body,
        now,
        webhook::DEFAULT_TOLERANCE,
    )
    .expect("a valid Standard Webhooks signature");
    let event = cb.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], cb.header("webhook-id"));
    assert_eq!(event["type"], "org.elixir-cloud.tagcast.image.published.v1");
    let data = &event["data"];
    let reference = format!("{image}:1.1.0-production-201108-195630@{}", digest(1));
    assert_eq!(data["serviceId"], "wes-prod");
    assert_eq!(data["image"], image.as_str());
    assert_eq!(data["tag"], "1.1.0-production-201108-195630");
    assert_eq!(data["digest"], digest(1));
    assert_eq!(data["reference"], reference.as_str());
    assert_eq!(data["apiVersion"], "1.1.0");
    assert_eq!(data["stage"], "production");
    assert_eq!(data["timestamp"], "2020-11-08T19:56:30Z");
    assert!(data.get("previousTag").is_none(), "{data}");

    // A demo tag does not reach a production subscriber.
    assert_eq!(
        notify(&hook, &pushed("ev-2", "team/cwl-wes", "1.1.0-demo-201109-000000", 2)).status,
        202
    );
    // A newer production tag does, with the previous tag.
    assert_eq!(
        notify(
            &hook,
            &pushed("ev-3", "team/cwl-wes", "1.1.0-production-201110-000000", 3)
        )
        .status,
        202
    );
    receiver.wait_for(2);
    broker.settle();
    // An older tag after a newer one is not delivered.
    assert_eq!(
        notify(
            &hook,
            &pushed("ev-4", "team/cwl-wes", "1.1.0-production-201109-120000", 4)
        )
        .status,
        202
    );
    // A duplicate notification (the registry retrying) yields no second delivery.
    assert_eq!(
        notify(
            &hook,
            &pushed("ev-3", "team/cwl-wes", "1.1.0-production-201110-000000", 3)
        )
        .status,
        202
    );
    std::thread::sleep(Duration::from_millis(500));
    broker.settle();
    let got = receiver.received();
    assert_eq!(
        tags(&got),
        ["1.1.0-production-201108-195630", "1.1.0-production-201110-000000"],
        "only the two production updates"
    );
    assert_eq!(got[1].json()["data"]["previousTag"], "1.1.0-production-201108-195630");

    // The event log says why the rest was ignored; blob pushes are traffic,
    // counted and not stored.
    let log = broker.events(&token);
    let reasons: Vec<&str> = log.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(!reasons.iter().any(|r| r.starts_with("blob push")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("duplicate")), "{reasons:?}");

    // Why the older push was not delivered, without debug logs: `tagcast
    // broker explain` prints the decision for each subscriber (issue 14).
    let id_of = |tag: &str| {
        log.iter()
            .find(|e| e["tag"] == tag && e["status"] == "accepted")
            .and_then(|e| e["id"].as_str())
            .unwrap_or_else(|| panic!("no accepted event of {tag}: {log:#?}"))
            .to_owned()
    };
    let explain = |event: &str, format: &str| {
        tagcast()
            .args([
                "broker",
                "explain",
                "--url",
                &broker.url,
                "--event",
                event,
                "--format",
                format,
            ])
            .env("TAGCAST_ADMIN_TOKEN", &token)
            .output()
            .unwrap()
    };
    let out = explain(&id_of("1.1.0-production-201109-120000"), "text");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("wes-prod: notNewer"), "{text}");
    assert!(
        text.contains(
            "1.1.0-production-201109-120000 is not newer than the current tag 1.1.0-production-201110-000000"
        ),
        "{text}"
    );
    let out = explain(&id_of("1.1.0-demo-201109-000000"), "text");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("wes-prod: otherStage"), "{text}");
    let out = explain(&id_of("1.1.0-production-201110-000000"), "json");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let decision = &json["decisions"][0];
    assert_eq!(decision["decision"], "delivered", "{json}");
    assert_eq!(decision["deliveryOutcome"], "delivered", "{json}");
    assert_eq!(
        decision["deliveryId"].as_str(),
        Some(got[1].header("webhook-id")),
        "{json}"
    );
    let out = explain("no-such-event", "text");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no event \"no-such-event\""));
}

#[test]
fn a_failing_receiver_gets_the_event_on_the_third_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    // The config file, with the same names as the flags: a short schedule.
    std::fs::write(
        &config,
        format!("admin-token = \"{TOKEN}\"\nretry-schedule = \"200ms,200ms,200ms\"\nretry-jitter = 0.0\n"),
    )
    .unwrap();
    let broker = Broker::start("sqlite::memory:", &["--config", config.to_str().unwrap()]);
    let receiver = Receiver::start(&[500, 500, 200]);
    let image = format!("{REGISTRY}/team/cwl-wes");
    let (hook, _) = broker.subscribe(TOKEN, "wes", &[image], "production", &receiver.url);
    assert_eq!(
        notify(
            &hook,
            &pushed("ev-1", "team/cwl-wes", "1.1.0-production-201108-195630", 1)
        )
        .status,
        202
    );
    let got = receiver.wait_for(3);
    broker.settle();
    assert_eq!(
        receiver.received().len(),
        3,
        "delivered on the third attempt, then no more"
    );
    let id = got[0].header("webhook-id");
    assert!(!id.is_empty());
    assert!(
        got.iter().all(|r| r.header("webhook-id") == id),
        "one webhook-id for every attempt"
    );
    let auth = format!("Bearer {TOKEN}");
    let log = request(
        "GET",
        &broker.api("/services/wes/deliveries"),
        &[("Authorization", &auth)],
        "",
    )
    .json();
    assert_eq!(log[0]["outcome"], "delivered");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 3);
}

#[test]
fn a_sigkilled_broker_delivers_every_acknowledged_event_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("broker.db").display());
    let args = ["--admin-token", TOKEN, "--delivery-timeout", "60s"];
    let receiver = Receiver::start(&[]);
    // The endpoint hangs: every callback is in flight, none completes.
    receiver.hang.store(true, Ordering::SeqCst);

    let mut broker = Broker::start(&database, &args);
    let port = broker.port();
    let images: Vec<String> = (0..5).map(|i| format!("{REGISTRY}/team/app{i}")).collect();
    let (hook, _) = broker.subscribe(TOKEN, "wes", &images, "production", &receiver.url);
    for i in 0..5u8 {
        let body = pushed(
            &format!("ev-{i}"),
            &format!("team/app{i}"),
            "1.1.0-production-201108-195630",
            i + 1,
        );
        assert_eq!(notify(&hook, &body).status, 202, "acknowledged");
    }
    let in_flight = receiver.wait_for(5);
    let ids: Vec<String> = in_flight.iter().map(|r| r.header("webhook-id").to_owned()).collect();

    // SIGKILL: no graceful shutdown, claims left behind.
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    drop(broker);

    receiver.hang.store(false, Ordering::SeqCst);
    let restarted = Broker::start_on(port, &database, &args);
    let got = receiver.wait_for(10);
    restarted.settle();
    let after: Vec<&Received> = got[5..].iter().collect();
    let mut delivered: Vec<String> = after
        .iter()
        .map(|r| r.json()["data"]["image"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    assert_eq!(
        delivered, images,
        "every acknowledged event is delivered after the restart"
    );
    let mut again: Vec<String> = after.iter().map(|r| r.header("webhook-id").to_owned()).collect();
    let mut first = ids.clone();
    again.sort();
    first.sort();
    assert_eq!(again, first, "the same webhook-ids as before the crash");
    assert_exists(dir.path());
}

#[test]
fn sigterm_finishes_the_callback_in_flight_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("broker.db").display());
    let args = ["--admin-token", TOKEN];
    let receiver = Receiver::start(&[]);
    receiver.delay_ms.store(1500, Ordering::SeqCst);
    let mut broker = Broker::start(&database, &args);
    let port = broker.port();
    let image = format!("{REGISTRY}/team/cwl-wes");
    let (hook, _) = broker.subscribe(TOKEN, "wes", std::slice::from_ref(&image), "production", &receiver.url);
    assert_eq!(
        notify(
            &hook,
            &pushed("ev-1", "team/cwl-wes", "1.1.0-production-201108-195630", 1)
        )
        .status,
        202
    );
    receiver.wait_for(1);

    // SIGTERM while the callback waits for its answer.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &broker.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = broker.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the broker did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");
    drop(broker);

    // The attempt finished and was recorded: a restart sends nothing more.
    receiver.delay_ms.store(0, Ordering::SeqCst);
    let restarted = Broker::start_on(port, &database, &args);
    restarted.settle();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.received().len(), 1, "delivered once, across the shutdown");
    let status = request("GET", &restarted.api("/services/wes/subscription/status"), &[], "").json();
    assert_eq!(status["deliveries"]["delivered"], 1, "{status}");
    assert_eq!(status["images"][0]["deliveredTag"], "1.1.0-production-201108-195630");
}

#[test]
fn json_logs_never_show_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.log");
    let broker = Broker::start_logging(
        None,
        "sqlite::memory:",
        &["--admin-token", TOKEN, "--log-format", "json"],
        Some(&log),
    );
    let receiver = Receiver::start(&[500, 200]);
    let image = format!("{REGISTRY}/team/cwl-wes");
    let (hook, secret) = broker.subscribe(TOKEN, "wes", std::slice::from_ref(&image), "production", &receiver.url);
    assert_eq!(
        notify(
            &hook,
            &pushed("ev-1", "team/cwl-wes", "1.1.0-production-201108-195630", 1)
        )
        .status,
        202
    );
    receiver.wait_for(2);
    broker.settle();
    drop(broker);

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 5, "debug logs were written: {text}");
    for line in &lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(entry.get("level").is_some() && entry.get("fields").is_some(), "{line}");
    }
    assert!(text.contains("callback attempt"), "delivery attempts are logged");
    assert!(!text.contains('\u{1b}'), "JSON logs carry no ANSI escape codes");
    let token = hook.rsplit('/').next().unwrap();
    for (what, value) in [
        ("the admin token", TOKEN.to_owned()),
        ("the subscription secret", secret.expose()),
        ("the hook token", token.to_owned()),
    ] {
        assert!(!text.contains(&value), "{what} appears in the logs");
    }
}

/// Text logs are coloured only on a terminal: written to a file (as a
/// service manager or collector receives them) they carry no ANSI codes.
#[test]
fn text_logs_off_a_terminal_carry_no_ansi_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.log");
    let broker = Broker::start_logging(
        None,
        "sqlite::memory:",
        &["--admin-token", TOKEN, "--log-format", "text"],
        Some(&log),
    );
    let receiver = Receiver::start(&[]);
    let image = format!("{REGISTRY}/team/cwl-wes");
    let (hook, secret) = broker.subscribe(TOKEN, "wes", std::slice::from_ref(&image), "production", &receiver.url);
    let pushed = pushed("ev-1", "team/cwl-wes", "1.1.0-production-201108-195630", 1);
    assert_eq!(notify(&hook, &pushed).status, 202);
    receiver.wait_for(1);
    broker.settle();
    drop(broker);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("callback attempt"), "debug logs were written: {text}");
    assert!(!text.contains('\u{1b}'), "no ANSI escape codes: {text:?}");
    let token = hook.rsplit('/').next().unwrap();
    for (what, value) in [
        ("the admin token", TOKEN.to_owned()),
        ("the subscription secret", secret.expose()),
        ("the hook token", token.to_owned()),
    ] {
        assert!(!text.contains(&value), "{what} appears in the logs");
    }
}

fn assert_exists(dir: &Path) {
    assert!(
        dir.join("broker.db").exists(),
        "the SQLite file is where --database-url says"
    );
}

#[test]
#[ignore = "needs postgres"]
fn two_broker_processes_on_one_postgres_deliver_each_event_once() {
    let base = std::env::var("TAGCAST_TEST_POSTGRES_URL").expect("TAGCAST_TEST_POSTGRES_URL");
    let database = format!("tagcast_e2e_{}", std::process::id());
    let created = std::process::Command::new("psql")
        .args([
            base.as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {database}"),
        ])
        .args(["-c", &format!("CREATE DATABASE {database}")])
        .status()
        .expect("psql runs");
    assert!(created.success(), "a fresh database");
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    let url = format!("{server}/{database}");

    let args = ["--admin-token", TOKEN];
    let a = Broker::start(&url, &args);
    let b = Broker::start(&url, &args);
    let receiver = Receiver::start(&[]);
    let images: Vec<String> = (0..10).map(|i| format!("{REGISTRY}/team/app{i}")).collect();
    let (hook, _) = a.subscribe(TOKEN, "wes", &images, "production", &receiver.url);
    let token = hook.rsplit('/').next().unwrap();
    for i in 0..10u8 {
        // Alternate replicas, as behind a load balancer.
        let broker = if i % 2 == 0 { &a } else { &b };
        let hook = broker.at(&format!("/hooks/distribution/{token}"));
        let body = pushed(
            &format!("ev-{i}"),
            &format!("team/app{i}"),
            "1.1.0-production-201108-195630",
            i + 1,
        );
        assert_eq!(notify(&hook, &body).status, 202);
    }
    receiver.wait_for(10);
    a.settle();
    b.settle();
    std::thread::sleep(Duration::from_millis(500));
    let got = receiver.received();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *per_id.entry(r.header("webhook-id").to_owned()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 10, "one delivery per event");
    assert!(per_id.values().all(|&n| n == 1), "no event delivered twice: {per_id:?}");
    drop((a, b));
    let _ = std::process::Command::new("psql")
        .args([
            base.as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {database}"),
        ])
        .status();
}

#[test]
fn environment_wins_over_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "admin-token = \"file-admin-token-0123456789\"\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    // The port is found by binding and releasing (the listen address comes
    // from the environment), so a parallel test may take it first: the
    // broker then exits at once, and this tries another.
    let broker = (0..5)
        .find_map(|_| {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            let mut child = tagcast()
                .args(["broker", "--config", config.to_str().unwrap()])
                .env("TAGCAST_LISTEN", format!("127.0.0.1:{port}"))
                .env("TAGCAST_PUBLIC_URL", &url)
                .env("TAGCAST_DATABASE_URL", "sqlite::memory:")
                .env("TAGCAST_ADMIN_TOKEN", TOKEN)
                .env("TAGCAST_ALLOW_PRIVATE_CALLBACKS", "true")
                .env("TAGCAST_VERIFY_DIGESTS", "false")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if child.try_wait().unwrap().is_some() {
                    return None;
                }
                assert!(Instant::now() < deadline, "TAGCAST_LISTEN wins over the file's listen");
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(Broker { child, url })
        })
        .expect("the broker exited five times before listening (port taken?)");
    let receiver = Receiver::start(&[]);
    // The environment's admin token is in force, not the file's.
    let image = format!("{REGISTRY}/team/cwl-wes");
    broker.subscribe(TOKEN, "wes", std::slice::from_ref(&image), "production", &receiver.url);
    let r = request(
        "DELETE",
        &broker.api("/services/wes"),
        &[("Authorization", "Bearer file-admin-token-0123456789")],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
}
