//! `tagcast conformance …` end to end: exit codes, report files, and the
//! runner against deliberately broken CD endpoints.

use std::net::SocketAddr;

use serde_json::Value;
use tagcast_conformance::peers;
use tagcast_conformance::peers::cd::{Flaw, SECRET};

use crate::support::{run, stderr, stdout};

/// A test CD endpoint with `flaw`, served by a runtime that lives as long as
/// the returned handle.
fn cd_peer(flaw: Flaw) -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let addr = runtime.block_on(peers::cd::start(flaw));
    (addr, runtime)
}

fn conformance_cd(addr: SocketAddr, extra: &[&str]) -> std::process::Output {
    let url = format!("http://{addr}/");
    let status = format!("http://{addr}/status");
    let mut args = vec![
        "conformance",
        "cd",
        "--url",
        &url,
        "--secret",
        SECRET,
        "--status-url",
        &status,
    ];
    args.extend_from_slice(extra);
    run(&args, "")
}

#[test]
fn cd_against_a_conforming_endpoint_exits_0() {
    let (addr, _runtime) = cd_peer(Flaw::None);
    let out = conformance_cd(addr, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("PASS  CB-6   cd/signature/stale\n"), "{text}");
    assert!(
        text.contains("conforms to tagcast contract 1.0, profile cd-endpoint\n"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with(&format!("cd: pass ({0} checks: {0} pass,", cd_checks())),
        "{text}"
    );
}

#[test]
fn cd_against_each_broken_endpoint_exits_1_naming_the_failed_check() {
    let cases = [
        (Flaw::SkipsSignature, "cd/signature/bad"),
        (Flaw::IgnoresTimestamp, "cd/signature/stale"),
        (Flaw::FailsOnMalformedJson, "cd/body/malformed"),
        (Flaw::ChecksFirstSignatureOnly, "cd/signature/rotation"),
        (Flaw::ReappliesDuplicates, "cd/delivery/idempotent"),
        (Flaw::SkipsSchema, "cd/body/schema"),
        (Flaw::IgnoresContentType, "cd/body/content-type"),
        (Flaw::AcceptsHugeBodies, "cd/body/too-large"),
    ];
    for (flaw, check) in cases {
        let (addr, _runtime) = cd_peer(flaw);
        let out = conformance_cd(addr, &[]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{flaw:?}: {text}{}", stderr(&out));
        assert!(
            text.lines()
                .any(|l| l.starts_with("FAIL") && l.contains(&format!(" {check}: "))),
            "{flaw:?} should fail {check}:\n{text}"
        );
    }
}

#[test]
fn cd_against_an_unreachable_url_exits_2() {
    // Port 1 is privileged and never handed out for port 0, so nothing a
    // parallel test binds can be listening there: the connection is refused.
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let out = conformance_cd(addr, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("ERROR CB-9  cd/reachable: cannot reach the endpoint"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_arguments_exit_2() {
    let out = run(
        &[
            "conformance",
            "cd",
            "--url",
            "http://127.0.0.1:1/",
            "--secret",
            "hunter2",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid --secret"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"), "the secret is never printed");

    let out = run(
        &["conformance", "tags", "--format", "html", "1.0.0-demo-201108-195630"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown report format \"html\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn junit_and_json_reports_are_written_to_the_output_file() {
    let (addr, _runtime) = cd_peer(Flaw::IgnoresTimestamp);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("cd.xml");
    let out = conformance_cd(addr, &["--format", "junit", "--output", junit.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  CB-6   cd/signature/future"),
        "the text report still goes to stdout"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("JUnit XML parses");
    assert_eq!(doc.root_element().tag_name().name(), "testsuites");
    assert_eq!(doc.root_element().attribute("failures"), Some("2"));
    let failed: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase") && n.children().any(|c| c.has_tag_name("failure")))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["cd/signature/stale", "cd/signature/future"]);

    let json = dir.path().join("cd.json");
    let out = conformance_cd(addr, &["--format", "json", "--output", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::path("schemas/conformance-report.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(&report).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(report["outcome"], "fail");
}

#[test]
fn tags_pass_fail_and_read_standard_input() {
    let out = run(
        &[
            "conformance",
            "tags",
            "1.1.0-production-201108-195630",
            "--stage",
            "production",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = run(
        &["conformance", "tags", "--file", "-"],
        "1.1-demo-201108-195630\n1.1.0-demo-201108-195630\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("FAIL  TAG-7  tags/ambiguity: 1 pair(s) of equivalent tags"),
        "{}",
        stdout(&out)
    );

    let out = run(&["conformance", "tags", "--only", "tags/grammar", "latest"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  TAG-1  tags/grammar/latest: not a tag of the grammar (TAG-1)"),
        "{}",
        stdout(&out)
    );

    let out = run(&["conformance", "tags"], "");
    assert_eq!(out.status.code(), Some(2), "no tags at all: the runner could not run");
}

fn deployer() -> crate::support::Deployer {
    crate::support::Deployer::start(
        &[
            "--secret",
            SECRET,
            "--image",
            "docker.io/tagcast/conformance",
            "--stage",
            "production",
            "--apply",
            "exec",
            "--command",
            "true",
            "--admin-token",
            "conformance-admin",
            "--ephemeral",
        ],
        std::process::Stdio::null(),
    )
}

#[test]
fn cd_against_the_reference_deployer_exits_0() {
    let deployer = deployer();
    let base = deployer.url.trim_end_matches('/');
    let status = format!("{base}/status");
    let out = run(
        &[
            "conformance",
            "cd",
            "--url",
            &deployer.url,
            "--secret",
            SECRET,
            "--status-url",
            &status,
            "--status-token",
            "conformance-admin",
            "--status-pointer",
            "/applied",
        ],
        "",
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("PASS  CB-7   cd/delivery/idempotent\n"), "{text}");
    assert!(text.contains("PASS  CB-8   cd/delivery/downgrade\n"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with(&format!("cd: pass ({0} checks: {0} pass,", cd_checks())),
        "every check passes: {text}"
    );
}

/// `tagcast broker` on a free port with an in-memory database, private
/// callbacks allowed (the runner's receiver is on loopback) and a short
/// retry schedule; killed when dropped.
struct Broker {
    child: std::process::Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference broker on a free port. The port is found by binding and
/// releasing (the binary takes no listener), so a parallel test may take it
/// first: then the child exits at once and another port is tried.
fn broker() -> Broker {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = crate::support::tagcast()
            .args([
                "broker",
                "--listen",
                &listen,
                "--database-url",
                "sqlite::memory:",
                "--admin-token",
                "conformance-admin",
                "--allow-private-callbacks",
                "--retry-schedule",
                "1s,1s,1s",
                "--retry-jitter",
                "0",
                "--poll-interval",
                "200ms",
                // Digest re-checks stay on: the suite points them at its
                // own loopback registry API (broker/hooks/recheck).
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tagcast broker starts");
        let mut broker = Broker {
            child,
            url: format!("http://{listen}/ga4gh/registry/v1"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if broker.child.try_wait().unwrap().is_some() {
                break;
            }
            if std::net::TcpStream::connect(&listen).is_ok() {
                // Listening, and still running: the listener is this child's.
                if broker.child.try_wait().unwrap().is_none() {
                    return broker;
                }
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tagcast broker did not start listening"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    panic!("tagcast broker exited five times before listening (port taken?)");
}

#[test]
fn broker_against_the_reference_broker_exits_0() {
    let broker = broker();
    let out = run(
        &[
            "conformance",
            "broker",
            "--url",
            &broker.url,
            "--admin-token",
            "conformance-admin",
        ],
        "",
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for check in [
        "broker/delivery/one-per-push",
        "broker/matching/downgrade",
        "broker/delivery/retry",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with("PASS") && l.ends_with(check)),
            "{check}: {text}"
        );
    }
}

#[test]
fn broker_against_each_broken_broker_exits_1_naming_the_failed_check() {
    use tagcast_conformance::peers::broker::{ADMIN_TOKEN, Flaw};
    let cases = [
        (Flaw::DeliversDowngrades, "broker/matching/downgrade"),
        (Flaw::DeliversCrossStage, "broker/matching/stage"),
        (Flaw::ReturnsSecret, "broker/registration/read-back"),
        (Flaw::NoRetry, "broker/delivery/retry"),
    ];
    for (flaw, check) in cases {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let addr = runtime.block_on(peers::broker::start(flaw));
        let url = format!("http://{addr}/ga4gh/registry/v1");
        let out = run(
            &[
                "conformance",
                "broker",
                "--url",
                &url,
                "--admin-token",
                ADMIN_TOKEN,
                "--timeout",
                "5s",
            ],
            "",
        );
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{flaw:?}: {text}{}", stderr(&out));
        assert!(
            text.lines()
                .any(|l| l.starts_with("FAIL") && l.contains(&format!(" {check}: "))),
            "{flaw:?} should fail {check}:\n{text}"
        );
    }
}

/// `tagcast conformance registry --push --notifications` against the real
/// CNCF Distribution (Debian's `docker-registry`), run by `.ci/run`.
#[test]
#[ignore = "needs docker-registry"]
fn registry_against_the_real_docker_registry_exits_0() {
    // Held until the registry runs, so that it cannot get the same port.
    let listen_guard = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = listen_guard.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let registry = crate::support::DockerRegistry::start(dir.path(), |registry_addr| {
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {registry_addr}\nnotifications:\n  endpoints:\n    - name: conformance\n      url: http://{listen}/notifications\n      timeout: 2s\n      threshold: 5\n      backoff: 1s\n",
            data.display()
        )
    });
    let registry_addr = registry.addr;
    drop(listen_guard);
    let url = format!("http://{registry_addr}");
    let listen = listen.to_string();
    let out = run(
        &[
            "conformance",
            "registry",
            "--url",
            &url,
            "--repository",
            "elixircloud/cwl-wes",
            "--push",
            "--notifications",
            "--listen",
            &listen,
        ],
        "",
    );
    drop(registry);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for check in [
        "registry/push/digest",
        "registry/notifications/push",
        "registry/push/delete",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with("PASS") && l.ends_with(check)),
            "{check}: {text}"
        );
    }
}

/// How many checks the `cd` target has.
fn cd_checks() -> usize {
    tagcast_conformance::catalogue()
        .iter()
        .filter(|c| c.name.starts_with("cd/"))
        .count()
}
