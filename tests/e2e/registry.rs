//! The whole chain with a real container registry: Debian's
//! `docker-registry` (CNCF Distribution 2.8) sends its notifications to
//! `tagcast broker`, which calls `tagcast deployer` in gitops mode; images
//! are built with `umoci` and pushed with `skopeo`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{Deployer, tagcast};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ADMIN: &str = "registry-test-admin-token-0123456789";
const REPOSITORY: &str = "elixircloud/cwl-wes";
const INITIAL: &str = "1.1.0-production-201001-000000";
const FIRST: &str = "1.1.0-production-201108-195630";
const MULTI: &str = "1.1.1-production-201201-120000";
const OLDER: &str = "1.1.0-production-201109-000000";
const PATIENCE: Duration = Duration::from_secs(30);

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git(repo: &Path, args: &[&str]) -> String {
    run("git", args, repo)
}

fn commits(repo: &Path) -> usize {
    git(repo, &["rev-list", "--count", "HEAD"]).trim().parse().unwrap()
}

/// Polls `ready` every 100 ms until it holds or PATIENCE runs out.
async fn wait_for(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An OCI image layout with images built by umoci.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(work: &Path) -> Self {
        let dir = work.join("oci");
        run("umoci", &["init", "--layout", dir.to_str().unwrap()], work);
        Self { dir }
    }

    fn image(&self) -> String {
        self.dir.to_str().unwrap().to_owned()
    }

    /// A one-layer image `name` whose file `/hello` holds `content`.
    fn build(&self, work: &Path, name: &str, content: &str) {
        let image = format!("{}:{name}", self.image());
        let bundle = work.join(format!("bundle-{name}"));
        run("umoci", &["new", "--image", &image], work);
        run(
            "umoci",
            &["unpack", "--rootless", "--image", &image, bundle.to_str().unwrap()],
            work,
        );
        std::fs::write(bundle.join("rootfs/hello"), content).unwrap();
        run("umoci", &["repack", "--image", &image, bundle.to_str().unwrap()], work);
    }

    /// An image index `name` over the images `amd64` and `arm64`.
    fn index(&self, name: &str) {
        let path = self.dir.join("index.json");
        let mut index: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let descriptor = |arch: &str| {
            let mut d = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == arch)
                .unwrap_or_else(|| panic!("no image {arch} in the layout"))
                .clone();
            d.as_object_mut().unwrap().remove("annotations");
            d["platform"] = json!({"architecture": arch, "os": "linux"});
            d
        };
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [descriptor("amd64"), descriptor("arm64")],
        }))
        .unwrap();
        let hex: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), &body).unwrap();
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": body.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
        std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// `docker-registry serve` on a loopback port, notifying `hook`.
fn start_registry(work: &Path, reserved: TcpListener, hook: &str) -> Running {
    let port = reserved.local_addr().unwrap().port();
    let config = work.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\n\
             log:\n  level: warn\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n\
             notifications:\n  endpoints:\n    - name: tagcast\n      url: {hook}\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n",
            work.join("registry-data").display()
        ),
    )
    .unwrap();
    // The port stayed bound since the test chose it, so that no other test
    // could take it; let it go just before the registry binds it.
    drop(reserved);
    let child = Command::new("docker-registry")
        .args(["serve", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("registry.log")).unwrap())
        .spawn()
        .expect("docker-registry starts (Debian package docker-registry)");
    Running(child)
}

/// `tagcast broker` on a free loopback port, ready. The port is found by
/// binding and releasing (the broker takes no listener), so a parallel test
/// may take it first: the broker then exits at once and this tries again.
async fn start_broker(work: &Path) -> (Running, String) {
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let broker_port = free_port();
        let broker_url = format!("http://127.0.0.1:{broker_port}");
        let mut broker = Running(
            tagcast()
                .args([
                    "broker",
                    "--listen",
                    &format!("127.0.0.1:{broker_port}"),
                    "--public-url",
                    &broker_url,
                ])
                .args([
                    "--database-url",
                    &format!("sqlite://{}", work.join("broker.sqlite").display()),
                ])
                .args([
                    "--admin-token",
                    ADMIN,
                    "--allow-private-callbacks",
                    "--poll-interval",
                    "50ms",
                ])
                .args(["--retry-schedule", "1s,1s,1s", "--verify-grace", "1s"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work.join("broker.log")).unwrap())
                .spawn()
                .expect("tagcast broker starts"),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if broker.0.try_wait().unwrap().is_some() {
                break;
            }
            let ready = http.get(format!("{broker_url}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return (broker, broker_url);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    panic!("the broker did not become ready on any of five ports (see broker.log)");
}

fn push(work: &Path, layout: &Layout, image: &str, registry: &str, tag: &str, all: bool) {
    let source = format!("oci:{}:{image}", layout.image());
    let destination = format!("docker://{registry}/{REPOSITORY}:{tag}");
    let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
    if all {
        args.push("--all");
    }
    args.extend([source.as_str(), destination.as_str()]);
    run("skopeo", &args, work);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker-registry, skopeo, umoci and git (installed by .ci/install-parts)"]
async fn pushes_to_a_real_registry_reach_the_deployment_pinned_to_their_digest() {
    let temp = tempfile::tempdir().unwrap();
    let work = temp.path();
    let registry_port = TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = registry_port.local_addr().unwrap().to_string();
    let image = format!("{registry}/{REPOSITORY}");

    // The deployment's git repository.
    let repo = work.join("gitops");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "tagcast test"]);
    git(&repo, &["config", "user.email", "test@tagcast.invalid"]);
    std::fs::write(
        repo.join("deploy.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cwl-wes\nspec:\n  template:\n    spec:\n      containers:\n        - name: wes\n          image: {image}:{INITIAL}\n"
        ),
    )
    .unwrap();
    git(&repo, &["add", "deploy.yaml"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);

    // The deployer, on a port it picks and prints.
    let state = work.join("deployer.sqlite");
    let deployer = Deployer::start(
        &[
            "--secret",
            SECRET,
            "--image",
            &image,
            "--stage",
            "production",
            "--api-requirement",
            "^1.1",
            "--current-tag",
            INITIAL,
            "--apply",
            "gitops",
            "--repo",
            repo.to_str().unwrap(),
            "--path",
            "deploy.yaml",
            "--state",
            state.to_str().unwrap(),
        ],
        std::fs::File::create(work.join("deployer.log")).unwrap().into(),
    );
    let callback = deployer.url.clone();

    // The broker.
    let (_broker, broker_url) = start_broker(work).await;
    let http = reqwest::Client::new();

    // Subscribe the deployment.
    let created: Value = http
        .post(format!("{broker_url}/ga4gh/registry/v1/services"))
        .bearer_auth(ADMIN)
        .json(&json!({
            "id": "org.example.cwl-wes",
            "name": "cwl-WES",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "organization": {"name": "Example University", "url": "https://www.example.org"},
            "version": "1.0.0",
            "url": "https://wes.example.org/ga4gh/wes/v1",
            "subscription": {
                "images": [image],
                "stage": "production",
                "callbackUrl": callback,
                "secret": SECRET,
                // The broker re-checks each tag's digest here before delivering.
                "registry": {"kind": "distribution", "url": format!("http://{registry}")}
            }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook = created["subscription"]["hooks"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no hook in {created}"))
        .to_owned();

    // The registry, notifying the broker.
    let mut registry_process = start_registry(work, registry_port, &hook);
    wait_for("docker-registry", async || {
        http.get(format!("http://{registry}/v2/"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(
        registry_process.0.try_wait().unwrap().is_none(),
        "docker-registry exited; another process answered on its port"
    );

    let layout = Layout::new(work);
    let manifest_digest = async |tag: &str| -> String {
        let response = http
            .head(format!("http://{registry}/v2/{REPOSITORY}/manifests/{tag}"))
            .header(
                "Accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            )
            .send()
            .await
            .unwrap();
        response.headers()["docker-content-digest"].to_str().unwrap().to_owned()
    };
    let manifest = || std::fs::read_to_string(repo.join("deploy.yaml")).unwrap();
    let broker_events = async || -> Value {
        let response = http
            .get(format!("{broker_url}/hooks/events?limit=1000"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    };

    // 1. A conformant push: the deployment pins it to the registry's digest.
    layout.build(work, "amd64", "hello from amd64\n");
    push(work, &layout, "amd64", &registry, FIRST, false);
    let digest = manifest_digest(FIRST).await;
    let pinned = format!("image: {image}:{FIRST}@{digest}");
    // The deployer writes the manifest, then commits: wait for both.
    wait_for("the first update", async || {
        manifest().contains(&pinned) && commits(&repo) >= 2
    })
    .await;
    assert_eq!(commits(&repo), 2, "one commit for one push");

    // 2. A multi-arch push (two platform manifests and an index): one update,
    //    pinned to the index.
    layout.build(work, "arm64", "hello from arm64\n");
    layout.index("multi");
    push(work, &layout, "multi", &registry, MULTI, true);
    let index_digest = manifest_digest(MULTI).await;
    let pinned = format!("image: {image}:{MULTI}@{index_digest}");
    wait_for("the multi-arch update", async || {
        manifest().contains(&pinned) && commits(&repo) >= 3
    })
    .await;

    // 3. A tag outside the grammar and an older tag: no update.
    push(work, &layout, "amd64", &registry, "latest", false);
    push(work, &layout, "amd64", &registry, OLDER, false);
    wait_for("the broker to have seen both", async || {
        let events = broker_events().await;
        let seen = |tag: &str| {
            events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["tag"] == tag && (e["status"] == "ignored" || !e["matchedAt"].is_null()))
        };
        seen("latest") && seen(OLDER)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        manifest().contains(&pinned),
        "still at the multi-arch update:\n{}",
        manifest()
    );
    assert_eq!(commits(&repo), 3, "exactly one commit per conformant, newer push");

    // 4. A forged notification on the real hook URL for a tag the registry
    //    does not have: the broker asks the registry and drops it.
    let forged_tag = "1.1.2-production-201215-000000";
    let forged = json!({"events": [{
        "id": "forged-0000-0000-0000-000000000000",
        "timestamp": "2026-11-28T00:00:00Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 345,
            "digest": format!("sha256:{}", "ab".repeat(32)),
            "length": 345,
            "repository": REPOSITORY,
            "url": format!("http://{registry}/v2/{REPOSITORY}/manifests/{forged_tag}"),
            "tag": forged_tag
        },
        "request": {"id": "r", "addr": "127.0.0.1:1", "host": registry, "method": "PUT", "useragent": "forger"},
        "actor": {},
        "source": {"addr": "forger:5000", "instanceID": "i"}
    }]});
    let status = http
        .post(&hook)
        .header("content-type", "application/vnd.docker.distribution.events.v1+json")
        .body(forged.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202, "the hook acknowledges what it stored");
    wait_for("the broker to drop the forged event", async || {
        let events = broker_events().await;
        events.as_array().unwrap().iter().any(|e| {
            e["tag"] == forged_tag
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("dropped: the registry"))
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        commits(&repo),
        3,
        "a forged notification moves nothing:\n{}",
        manifest()
    );
}
