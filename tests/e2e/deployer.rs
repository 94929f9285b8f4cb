//! `tagcast deployer`: the real binary on a loopback port, sent signed
//! callbacks over HTTP, applying with each mode; hold and dedup across a
//! restart.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tagcast_spec::event::CONTENT_TYPE;
use tagcast_spec::webhook::{Secret, sign};
use tagcast_spec::{CloudEvent, Digest, ImagePublished, Repository, Tag};

use crate::support::tagcast;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const IMAGE: &str = "docker.io/elixircloud/cwl-wes";
const V1: &str = "1.1.0-production-201108-195630";
const V2: &str = "1.1.0-production-201109-000000";
const V3: &str = "1.1.0-production-201110-000000";
const STAGING: &str = "1.1.0-staging-201201-000000";

fn digest_of(tag: &str) -> String {
    let n = tag.bytes().map(u32::from).sum::<u32>() % 256;
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// A callback body for `tag` of `IMAGE`, as a broker sends it.
fn event(id: &str, tag: &str) -> Vec<u8> {
    let data = ImagePublished::new(
        "org.example.cwl-wes.production",
        Repository::parse(IMAGE).unwrap(),
        Tag::parse(tag).unwrap(),
        Digest::parse(&digest_of(tag)).unwrap(),
        None,
    );
    let event = CloudEvent::new(
        id,
        "https://registry.example.org/ga4gh/registry/v1",
        chrono::Utc::now(),
        data,
    );
    serde_json::to_vec(&event).unwrap()
}

/// A running `tagcast deployer`; killed when dropped.
struct Deployer {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

impl Deployer {
    fn start(dir: &Path, args: &[&str]) -> Self {
        let log = dir.join(format!("deployer-{}.log", std::process::id()));
        let mut child = tagcast()
            .args([
                "deployer",
                "--listen",
                "127.0.0.1:0",
                "--secret",
                SECRET,
                "--image",
                "elixircloud/cwl-wes",
            ])
            .args(["--stage", "production", "--api-requirement", "^1.1"])
            .args(args)
            .env("TAGCAST_LOG", "info")
            .env_remove("TAGCAST_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("tagcast deployer starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(url) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            panic!(
                "no address printed: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let address = url.split('/').next().unwrap().parse().unwrap();
        Self { child, address, log }
    }

    /// POSTs a callback signed with `secret` at `timestamp`.
    fn post(&self, id: &str, body: &[u8], secret: &str, timestamp: i64) -> (u16, Value) {
        let signature = sign(&Secret::parse(secret).unwrap(), id, timestamp, body);
        let headers = [
            ("Content-Type", CONTENT_TYPE.to_owned()),
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        http(self.address, "POST", "/", &headers, body)
    }

    fn callback(&self, id: &str, tag: &str) -> (u16, Value) {
        self.post(id, &event(id, tag), SECRET, now())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and wait for the graceful exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful stop exits 0: {status}\n{}", self.log());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("deployer did not stop on SIGTERM");
    }
}

impl Drop for Deployer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One HTTP/1.1 request, `Connection: close`; the status and the JSON body.
fn http(address: SocketAddr, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status line");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Waits until `ready` holds, or fails after 20 s with `what`.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// `tagcast deployer status --format json` of a state file.
fn read_status(state: &Path) -> Value {
    let output = tagcast()
        .args(["deployer", "status", "--format", "json", "--history", "50", "--state"])
        .arg(state)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn history_len(state: &Path) -> usize {
    read_status(state)["history"].as_array().map_or(0, Vec::len)
}

fn hook_runs(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// An exec hook appending its TAGCAST_* environment to `file`.
fn hook(file: &Path) -> String {
    format!(
        "env | grep ^TAGCAST_ | sort | tr '\\n' ' ' >> '{}'; echo >> '{}'",
        file.display(),
        file.display()
    )
}

#[test]
fn exec_mode_sees_every_variable_and_bad_callbacks_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let state = dir.path().join("state.db");
    let deployer = Deployer::start(
        dir.path(),
        &[
            "--state",
            state.to_str().unwrap(),
            "--current-tag",
            V1,
            "--apply",
            "exec",
            "--command",
            &hook(&runs),
        ],
    );

    let (status, body) = deployer.callback("evt_2", V2);
    assert_eq!(status, 202, "{body}");
    wait_for("the hook", || hook_runs(&runs).len() == 1);
    let vars: Vec<String> = hook_runs(&runs)[0].split_whitespace().map(str::to_owned).collect();
    let d = digest_of(V2);
    assert_eq!(
        vars,
        [
            "TAGCAST_API_VERSION=1.1.0".to_owned(),
            format!("TAGCAST_DIGEST={d}"),
            "TAGCAST_EVENT_ID=evt_2".to_owned(),
            format!("TAGCAST_IMAGE={IMAGE}"),
            format!("TAGCAST_PREVIOUS_TAG={V1}"),
            format!("TAGCAST_REFERENCE={IMAGE}:{V2}@{d}"),
            "TAGCAST_STAGE=production".to_owned(),
            format!("TAGCAST_TAG={V2}"),
        ],
        "exactly the contract's variables; no secret"
    );
    wait_for("the history line", || history_len(&state) == 1);

    // Each of these changes nothing; the answers are the contract's.
    let stale = deployer.post("evt_3", &event("evt_3", V3), SECRET, now() - 6 * 60);
    assert_eq!(stale.0, 401, "{}", stale.1);
    let forged = deployer.post(
        "evt_3",
        &event("evt_3", V3),
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        now(),
    );
    assert_eq!(forged.0, 401, "{}", forged.1);
    let (status, body) = deployer.callback("evt_old", V1);
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("refused")),
        "downgrade: {body}"
    );
    let (status, body) = deployer.callback("evt_stage", STAGING);
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("refused")),
        "other stage: {body}"
    );
    let (status, body) = deployer.callback("evt_2", V2);
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")), "{body}");
    let wrong_type = http(
        deployer.address,
        "POST",
        "/",
        &[("Content-Type", "text/plain".into())],
        b"{}",
    );
    assert_eq!(wrong_type.0, 415);
    let health = http(deployer.address, "GET", "/healthz", &[], b"");
    assert_eq!(health.0, 200);

    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hook_runs(&runs).len(), 1, "nothing else was applied");
    let state = read_status(&state);
    assert_eq!(state["applied"][0]["tag"], V2);
    let outcomes: Vec<&str> = state["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["refused", "refused", "applied"]);
    assert!(!deployer.log().contains(&SECRET[6..]), "the secret is never logged");
    deployer.stop();
}

#[test]
fn restart_keeps_dedup_state_and_hold() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let state = dir.path().join("state.db");
    let args = [
        "--state",
        state.to_str().unwrap(),
        "--apply",
        "exec",
        "--command",
        &hook(&runs),
    ];
    let deployer = Deployer::start(dir.path(), &args);
    assert_eq!(deployer.callback("evt_1", V1).0, 202);
    wait_for("the first upgrade", || hook_runs(&runs).len() == 1);

    // Hold from a second process, next to the running deployer.
    let output = tagcast()
        .args(["deployer", "hold", "--reason", "INC-42", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    deployer.stop();

    let deployer = Deployer::start(dir.path(), &args);
    let (status, body) = deployer.callback("evt_1", V1);
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "dedup survives: {body}"
    );
    let (status, body) = deployer.callback("evt_2", V2);
    assert_eq!(status, 202);
    assert_eq!(body["held"], true, "hold survives: {body}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook_runs(&runs).len(), 1, "nothing applied while held");
    let text = tagcast()
        .args(["deployer", "status", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("hold: on hold since") && text.contains("(INC-42)"),
        "{text}"
    );
    assert!(text.contains("queued: 1"), "{text}");

    let output = tagcast()
        .args(["deployer", "release", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(output.status.success());
    wait_for("the held upgrade after release", || hook_runs(&runs).len() == 2);
    assert!(hook_runs(&runs)[1].contains(&format!("TAGCAST_TAG={V2}")));
    deployer.stop();
}

/// Runs git in `dir`; its standard output (the soak's deployer uses it too).
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn commits(repo: &Path) -> usize {
    git(repo, &["rev-list", "--count", "HEAD"]).trim().parse().unwrap()
}

const MANIFEST: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cwl-wes
spec:
  template:
    spec:
      containers:
        # the WES service, updated by tagcast
        - name: wes
          image: elixircloud/cwl-wes:1.1.0-production-201108-195630
        - name: proxy
          image: nginx:1.27 # not ours
";

#[test]
#[ignore = "needs git"]
fn gitops_commits_once_and_refuses_what_is_not_an_update() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("deploy");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    git(&repo, &["config", "user.name", "Operator"]);
    git(&repo, &["config", "user.email", "operator@example.org"]);
    std::fs::write(repo.join("deployment.yaml"), MANIFEST).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "initial"]);
    let state = dir.path().join("state.db");

    let deployer = Deployer::start(
        dir.path(),
        &[
            "--state",
            state.to_str().unwrap(),
            "--current-tag",
            V1,
            "--apply",
            "gitops",
            "--repo",
            repo.to_str().unwrap(),
            "--path",
            "deployment.yaml",
        ],
    );
    assert_eq!(deployer.callback("evt_2", V2).0, 202);
    wait_for("the commit", || commits(&repo) == 2);
    let expected = MANIFEST.replace(
        &format!("elixircloud/cwl-wes:{V1}"),
        &format!("elixircloud/cwl-wes:{V2}@{}", digest_of(V2)),
    );
    assert_eq!(std::fs::read_to_string(repo.join("deployment.yaml")).unwrap(), expected);
    let message = git(&repo, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with(&format!("tagcast: {IMAGE} {V1} -> {V2}")),
        "{message}"
    );
    assert!(message.contains("Event: evt_2"), "{message}");
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        "",
        "the work tree is clean after the commit"
    );

    assert_eq!(deployer.callback("evt_2", V2).1["status"], "duplicate");
    assert_eq!(deployer.post("evt_9", &event("evt_9", V3), SECRET, now() - 400).0, 401);
    let forged = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(deployer.post("evt_9", &event("evt_9", V3), forged, now()).0, 401);
    assert_eq!(deployer.callback("evt_down", V1).1["status"], "refused");
    assert_eq!(deployer.callback("evt_stage", STAGING).1["status"], "refused");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(commits(&repo), 2, "one commit, nothing else");
    assert_eq!(std::fs::read_to_string(repo.join("deployment.yaml")).unwrap(), expected);
    deployer.stop();
}

#[test]
#[ignore = "needs kubectl"]
fn kubectl_mode_updates_the_manifest_locally() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("deployment.yaml");
    std::fs::write(
        &manifest,
        MANIFEST.replace(
            "spec:\n  template:",
            "spec:\n  selector:\n    matchLabels: {app: wes}\n  template:\n    metadata:\n      labels: {app: wes}",
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let kubectl_args = format!("--local -f {} -o yaml", manifest.display());
    let deployer = Deployer::start(
        dir.path(),
        &[
            "--state",
            state.to_str().unwrap(),
            "--apply",
            "kubectl",
            "--deployment",
            "cwl-wes",
            "--container",
            "wes",
            "--kubectl-args",
            &kubectl_args,
        ],
    );
    assert_eq!(deployer.callback("evt_2", V2).0, 202);
    wait_for("the kubectl run", || history_len(&state) == 1);
    let status = read_status(&state);
    assert_eq!(status["history"][0]["outcome"], "applied", "{status}");
    let log = deployer.log();
    assert!(
        log.contains(&format!("image: {IMAGE}:{V2}@{}", digest_of(V2))),
        "kubectl printed the updated manifest:\n{log}"
    );
    assert!(
        log.contains("image: nginx:1.27"),
        "the other container is unchanged:\n{log}"
    );
    deployer.stop();
}

/// A request the stand-in API server received: method, path, headers
/// (names lowercase), body.
type Recorded = (String, String, Vec<(String, String)>, Vec<u8>);

/// A stand-in Kubernetes API server: records each request, answers 200
/// with a Deployment.
struct FakeApi {
    address: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeApi {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                );
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let length = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.lock().unwrap().push((method, path, headers, body));
                let answer = r#"{"kind":"Deployment","metadata":{"name":"cwl-wes","generation":3}}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Self { address, requests }
    }
}

#[test]
fn kubernetes_mode_sends_the_strategic_merge_patch() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApi::start();
    let token = dir.path().join("token");
    std::fs::write(&token, "service-account-token\n").unwrap();
    let state = dir.path().join("state.db");
    let server = format!("http://{}", api.address);
    let deployer = Deployer::start(
        dir.path(),
        &[
            "--state",
            state.to_str().unwrap(),
            "--current-tag",
            V1,
            "--apply",
            "kubernetes",
            "--kube-server",
            &server,
            "--kube-token-file",
            token.to_str().unwrap(),
            "--namespace",
            "ga4gh",
            "--deployment",
            "cwl-wes",
            "--container",
            "wes",
            "--rollout-timeout",
            "0",
        ],
    );
    assert_eq!(deployer.callback("evt_2", V2).0, 202);
    wait_for("the PATCH", || !api.requests.lock().unwrap().is_empty());
    wait_for("the history line", || history_len(&state) == 1);
    let requests = api.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "one request: the container was named");
    let (method, path, headers, body) = &requests[0];
    assert_eq!(method, "PATCH");
    assert_eq!(path, "/apis/apps/v1/namespaces/ga4gh/deployments/cwl-wes");
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("content-type"), Some("application/strategic-merge-patch+json"));
    assert_eq!(header("authorization"), Some("Bearer service-account-token"));
    let patch: Value = serde_json::from_slice(body).unwrap();
    let reference = format!("{IMAGE}:{V2}@{}", digest_of(V2));
    assert_eq!(
        patch,
        serde_json::json!({
            "metadata": {"annotations": {
                "tagcast.elixir-cloud.org/digest": digest_of(V2),
                "tagcast.elixir-cloud.org/tag": V2,
                "tagcast.elixir-cloud.org/event-id": "evt_2",
                "kubernetes.io/change-cause": format!("tagcast: {IMAGE} {V1} -> {V2} (event evt_2)")
            }},
            "spec": {"template": {"spec": {"containers": [{"name": "wes", "image": reference}]}}}
        })
    );
    assert_eq!(read_status(&state)["history"][0]["outcome"], "applied");
    deployer.stop();
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    let output = tagcast()
        .args([
            "deployer",
            "--secret",
            SECRET,
            "--image",
            "elixircloud/cwl-wes",
            "--stage",
            "production",
        ])
        .args(["--apply", "exec"])
        .env_remove("TAGCAST_COMMAND")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: --apply exec needs --command\n"
    );

    let output = tagcast()
        .args([
            "deployer",
            "--secret",
            "whsec_short",
            "--image",
            "x",
            "--stage",
            "demo",
            "--apply",
            "exec",
        ])
        .args(["--command", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: secret number 1: invalid secret"), "{stderr}");
    assert!(!stderr.contains("whsec_short"), "the secret is not echoed: {stderr}");

    let output = tagcast().args(["deployer", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("Examples:") && help.contains("TAGCAST_KUBECTL_ARGS"),
        "{help}"
    );
}

#[test]
fn example_manifests_only_use_variables_the_deployer_reads() {
    let output = tagcast().args(["deployer", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for file in [
        "reference/deploy/kubernetes/deployer.yaml",
        "reference/deploy/openshift/deployer.yaml",
    ] {
        let text = std::fs::read_to_string(crate::support::path(file)).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- name: TAGCAST_"))
            .collect();
        assert!(names.len() >= 10, "{file}: {names:?}");
        for name in names {
            assert!(
                help.contains(&format!("[env: TAGCAST_{name}")),
                "{file}: TAGCAST_{name} is no flag of tagcast deployer"
            );
        }
    }
}

#[test]
fn secret_file_adds_rotation_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let next = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let file = dir.path().join("secrets");
    std::fs::write(&file, format!("\n{next}\n")).unwrap();
    let deployer = Deployer::start(
        dir.path(),
        &[
            "--ephemeral",
            "--secret-file",
            file.to_str().unwrap(),
            "--apply",
            "exec",
            "--command",
            &hook(&runs),
        ],
    );
    let (status, body) = deployer.post("evt_1", &event("evt_1", V1), next, now());
    assert_eq!(status, 202, "signed with the file's secret: {body}");
    // Applied before the next arrives: queued together, V1 would be superseded.
    wait_for("the first upgrade", || hook_runs(&runs).len() == 1);
    let (status, _) = deployer.post("evt_2", &event("evt_2", V2), SECRET, now());
    assert_eq!(status, 202, "and still with --secret");
    wait_for("both upgrades", || hook_runs(&runs).len() == 2);
    deployer.stop();
}

#[test]
fn a_failed_update_is_retried_once_its_cause_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("cluster-reachable");
    let runs = dir.path().join("runs");
    let state = dir.path().join("state.db");
    let command = format!(
        "test -e '{}' || {{ echo 'cluster unreachable' >&2; exit 3; }}; {}",
        ready.display(),
        hook(&runs)
    );
    let deployer = Deployer::start(
        dir.path(),
        &[
            "--state",
            state.to_str().unwrap(),
            "--apply",
            "exec",
            "--command",
            &command,
        ],
    );
    assert_eq!(deployer.callback("evt_1", V1).0, 202);
    wait_for("the failure", || history_len(&state) == 1);
    let status = read_status(&state);
    assert_eq!(status["history"][0]["outcome"], "failed");
    assert_eq!(
        status["history"][0]["reason"],
        "exec command failed (exit status: 3): cluster unreachable"
    );

    let retry = |args: &[&str]| {
        tagcast()
            .args(["deployer", "retry", "--state"])
            .arg(&state)
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(retry(&["--event", "evt_unknown"]).status.code(), Some(1));
    std::fs::write(&ready, "").unwrap();
    let output = retry(&[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("queued evt_1 again"));
    wait_for("the retried upgrade", || hook_runs(&runs).len() == 1);
    wait_for("its history line", || history_len(&state) == 2);
    assert_eq!(read_status(&state)["applied"][0]["tag"], V1);
    assert_eq!(retry(&[]).status.code(), Some(1), "nothing failed any more");
    deployer.stop();
}

/// Issue 11, finding 7: no state file and no explicit `--ephemeral` is a
/// usage error naming both flags; nothing listens.
#[test]
fn without_state_or_ephemeral_the_deployer_refuses_to_start() {
    let output = tagcast()
        .args(["deployer", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .args(["--image", "elixircloud/cwl-wes", "--stage", "production"])
        .args(["--apply", "exec", "--command", "true"])
        .env_remove("TAGCAST_STATE")
        .env_remove("TAGCAST_EPHEMERAL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: no --state: give --state PATH") && stderr.contains("--ephemeral"),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "never listened: {}",
        String::from_utf8_lossy(&output.stdout)
    );

    let output = tagcast()
        .args(["deployer", "--state", "x.db", "--ephemeral", "--secret", SECRET])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "both at once is a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
}

/// Issue 14, item 3: the operator's view of a running deployer — JSON logs
/// without terminal colour codes whose first lines say what it watches,
/// `/metrics` like the broker's, and a camelCase status.
#[test]
fn operator_sees_what_it_watches_metrics_and_a_camel_case_status() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let state = dir.path().join("state.db");
    let admin = "operator-admin-token-0123";
    let deployer = Deployer::start(
        dir.path(),
        &[
            "--state",
            state.to_str().unwrap(),
            "--current-tag",
            V1,
            "--log-format",
            "json",
            "--admin-token",
            admin,
            "--apply",
            "exec",
            "--command",
            &hook(&runs),
        ],
    );
    assert_eq!(deployer.callback("evt_2", V2).0, 202);
    wait_for("the upgrade", || hook_runs(&runs).len() == 1);
    wait_for("the history line", || history_len(&state) == 1);

    let (status, metrics) = http_text(deployer.address, "GET", "/metrics", &[]);
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.contains("tagcast_deployer_callbacks_total{outcome=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tagcast_deployer_updates_total{outcome=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tagcast_deployer_held 0"), "{metrics}");

    let bearer = [("Authorization", format!("Bearer {admin}"))];
    let (status, body) = http(deployer.address, "GET", "/status", &bearer, b"");
    assert_eq!(status, 200, "{body}");
    for (member, value) in [
        ("/applied/0/eventId", "evt_2"),
        ("/history/0/eventId", "evt_2"),
        ("/applied/0/tag", V2),
    ] {
        assert_eq!(
            body.pointer(member).and_then(Value::as_str),
            Some(value),
            "{member}: {body}"
        );
    }
    assert!(body.pointer("/applied/0/appliedAt").is_some(), "{body}");
    let text = body.to_string();
    assert!(!text.contains("event_id") && !text.contains("applied_at"), "{text}");
    assert_eq!(
        read_status(&state)["history"][0]["eventId"],
        "evt_2",
        "status --format json too"
    );

    deployer.stop();
    let log = std::fs::read_to_string(dir.path().join(format!("deployer-{}.log", std::process::id()))).unwrap();
    assert!(!log.contains('\u{1b}'), "no colour codes in JSON logs:\n{log}");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let watching = lines
        .iter()
        .find(|l| l["fields"]["message"] == "watching")
        .unwrap_or_else(|| panic!("no 'watching' line:\n{log}"));
    assert_eq!(watching["level"], "INFO");
    assert_eq!(watching["fields"]["image"], IMAGE);
    assert_eq!(watching["fields"]["stage"], "production");
    assert_eq!(watching["fields"]["requirement"], "^1.1");
    assert_eq!(watching["fields"]["current_tag"], V1);
    assert_eq!(watching["fields"]["apply"], "exec (sh -c --command)");
}

/// One HTTP/1.1 request, `Connection: close`; the status and the body as text.
fn http_text(address: SocketAddr, method: &str, path: &str, headers: &[(&str, String)]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}
