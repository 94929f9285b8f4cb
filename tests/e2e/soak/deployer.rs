//! The soak's `tagcast deployer` (gitops mode): a subscriber of one image
//! whose callbacks go through an in-process proxy at a fixed URL to the
//! deployer process, which the proxy SIGKILLs within 60 ms after some of its
//! 202 answers — between accepting an update and committing it — and restarts
//! on the same `--state` (on a new port; the proxy follows it). While it is
//! down the proxy answers 502, which the broker retries.
//!
//! The proof reads the git repository: the commits name each applied tag
//! once, in increasing channel order, ending on the newest acknowledged tag.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rand::Rng as _;
use tagcast_spec::Tag;

use crate::deployer::git;
use crate::support::tagcast;

/// The subscription's signing secret, which the deployer verifies.
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// The deployer process and what it needs to start again.
struct Process {
    child: Option<Child>,
    address: Option<SocketAddr>,
    args: Vec<String>,
    log: PathBuf,
}

impl Process {
    fn start(&mut self) {
        let mut child = tagcast()
            .args(["deployer", "--listen", "127.0.0.1:0"])
            .args(&self.args)
            .env("TAGCAST_LOG", "info")
            .env_remove("TAGCAST_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            )
            .spawn()
            .expect("tagcast deployer starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|url| url.split('/').next())
            .and_then(|a| a.parse().ok());
        assert!(
            address.is_some(),
            "the deployer printed no address: {line:?}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        self.address = address;
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.address = None;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The proxy in front of the deployer, and the deployer.
#[derive(Clone)]
pub struct Deployer {
    process: Arc<tokio::sync::Mutex<Process>>,
    client: reqwest::Client,
    pub kills: Arc<AtomicUsize>,
    pub repo: PathBuf,
}

async fn forward(State(d): State<Deployer>, headers: HeaderMap, body: Bytes) -> Response {
    let mut process = d.process.lock().await;
    if process.child.is_none() {
        tokio::task::block_in_place(|| process.start());
    }
    let address = process.address.unwrap();
    let mut request = d.client.post(format!("http://{address}/")).body(body);
    for name in ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let text = answer.bytes().await.unwrap_or_default();
    // The fault: SIGKILL within 60 ms after a 202 — before the queued
    // update is applied, while its manifest is written and committed, or
    // after — then a restart on the same state.
    if status == StatusCode::ACCEPTED && rand::rng().random_range(0..100u32) < 40 {
        let delay = rand::rng().random_range(0..60u64);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        process.kill();
        d.kills.fetch_add(1, Ordering::Relaxed);
        tokio::task::block_in_place(|| process.start());
    }
    (status, text).into_response()
}

impl Deployer {
    /// A git repository whose manifest pins `image` at `first`, a deployer
    /// on it, and the proxy's URL.
    pub async fn start(dir: &Path, image: &str, first: &str) -> (Self, String) {
        let repo = dir.join("deploy");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "--quiet", "--initial-branch=main"]);
        git(&repo, &["config", "user.name", "Operator"]);
        git(&repo, &["config", "user.email", "operator@example.org"]);
        std::fs::write(
            repo.join("deployment.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}:{first}\n"
            ),
        )
        .unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "--quiet", "-m", "initial"]);
        let state = dir.join("deployer.db");
        let args = [
            "--secret",
            SECRET,
            "--image",
            image,
            "--stage",
            "production",
            "--current-tag",
            first,
            "--state",
            state.to_str().unwrap(),
            "--apply",
            "gitops",
            "--repo",
            repo.to_str().unwrap(),
            "--path",
            "deployment.yaml",
        ]
        .map(str::to_owned)
        .to_vec();
        let mut process = Process {
            child: None,
            address: None,
            args,
            log: dir.join("deployer.log"),
        };
        process.start();
        let deployer = Self {
            process: Arc::new(tokio::sync::Mutex::new(process)),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            kills: Arc::default(),
            repo,
        };
        let app = Router::new()
            .route("/callback", post(forward))
            .with_state(deployer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (deployer, url)
    }

    /// The tags committed, oldest first (the `-> TAG` of each commit subject).
    pub fn applied(&self) -> Vec<String> {
        git(&self.repo, &["log", "--reverse", "--format=%s"])
            .lines()
            .filter_map(|subject| subject.strip_prefix("tagcast: "))
            .filter_map(|rest| rest.rsplit(" -> ").next())
            .map(str::to_owned)
            .collect()
    }

    /// Waits (bounded) until the deployer committed `newest`, keeping it
    /// running; then stops it. Panics with its log if it does not.
    pub async fn settle(&self, newest: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            {
                let mut process = self.process.lock().await;
                if process.child.is_none() {
                    tokio::task::block_in_place(|| process.start());
                }
            }
            if self.applied().last().map(String::as_str) == Some(newest) {
                break;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.process.lock().await.log.clone()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                panic!(
                    "the deployer did not commit {newest}: commits {:?}\nlog (newest first):\n{}",
                    self.applied(),
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.process.lock().await.kill();
    }

    /// What breaks "each update applied exactly once, never an older one":
    /// a tag committed twice or a commit not newer than the one before.
    pub fn violations(&self) -> Vec<String> {
        let applied = self.applied();
        let mut out = Vec::new();
        for pair in applied.windows(2) {
            let (a, b) = (Tag::parse(&pair[0]), Tag::parse(&pair[1]));
            match (a, b) {
                (Ok(a), Ok(b)) if b.channel_cmp(&a) == Some(std::cmp::Ordering::Greater) => {}
                _ => out.push(format!("commit {} after {}", pair[1], pair[0])),
            }
        }
        let dirty = git(&self.repo, &["status", "--porcelain"]);
        if !dirty.trim().is_empty() {
            out.push(format!("the work tree is not clean: {dirty}"));
        }
        out
    }
}
