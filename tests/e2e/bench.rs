//! `tagcast bench`: the quick run prints every figure, each present and
//! positive, with a target verdict beside it. Speeds are never asserted
//! here: on a shared machine they say nothing; BENCHMARKS.md has them.

use serde_json::Value;

use crate::support::{run, stderr, stdout, tagcast};

fn positive(report: &Value, pointer: &str) -> f64 {
    let value = report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is missing in {report:#}"));
    assert!(value > 0.0, "{pointer} is {value}, not positive, in {report:#}");
    value
}

fn bench(args: &[&str]) -> Value {
    let output = run(args, "");
    assert!(output.status.success(), "{args:?} failed: {}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&output)))
}

fn check_broker_report(report: &Value, database: &str, replicas: u64) {
    assert_eq!(report["tool"], "tagcast bench");
    assert_eq!(report["target"], "broker");
    assert_eq!(report["database"], database);
    assert_eq!(report["replicas"], replicas);
    assert_eq!(report["quick"], true);
    positive(report, "/machine/nproc");
    for pointer in [
        "/figures/ingest/hooks_acknowledged",
        "/figures/ingest/hooks_per_second",
        "/figures/ingest/healthz_per_second",
        "/figures/ingest/ratio_to_ceiling",
        "/figures/latency/hooks_sent",
        "/figures/latency/callbacks_received",
        "/figures/latency/p50_ms",
        "/figures/latency/p95_ms",
        "/figures/latency/p99_ms",
        "/figures/latency/max_ms",
        "/figures/fanout/seconds",
        "/figures/scaling/p50_growth",
        "/figures/rss/idle_mb",
        "/figures/rss/with_subscriptions_mb",
    ] {
        positive(report, pointer);
    }
    // The backlog may be ~0 when the callbacks kept up: present, not negative.
    let backlog = report["figures"]["ingest"]["backlog_seconds"]
        .as_f64()
        .expect("the backlog was measured");
    assert!(backlog >= 0.0);
    assert_eq!(report["figures"]["ingest"]["hooks_failed"], 0);
    assert_eq!(report["figures"]["latency"]["hooks_failed"], 0);
    // Every callback was signed with the subscription's secret and parsed.
    assert_eq!(report["figures"]["callbacks_rejected"], 0, "{report:#}");
    // Every image ends on its newest tag; older tags overtaken before
    // their first attempt are superseded (CB-15), so not every hook has a
    // callback of its own.
    let latency = &report["figures"]["latency"];
    let pushed_images = latency["hooks_sent"]
        .as_u64()
        .unwrap()
        .min(latency["images"].as_u64().unwrap());
    assert_eq!(latency["newest_received"], pushed_images, "{latency:#}");
    assert!(latency["callbacks_received"].as_u64() <= latency["hooks_sent"].as_u64());
    let fanout = &report["figures"]["fanout"];
    assert_eq!(fanout["callbacks_received"], fanout["subscribers"]);
    let levels = report["figures"]["scaling"]["levels"].as_array().expect("levels");
    assert_eq!(
        levels
            .iter()
            .map(|l| l["subscriptions"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [50, 200]
    );
    for level in levels {
        positive(level, "/p50_ms");
        assert_eq!(level["probes_received"], 10, "{level}");
    }
    assert_eq!(report["figures"]["rss"]["subscriptions"], 200);
    let targets = report["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 8, "one verdict per target: {targets:#?}");
    assert!(targets.iter().all(|t| t["met"].is_boolean()), "{targets:#?}");
}

#[test]
fn quick_bench_reports_every_broker_figure_and_its_plot() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("scaling.svg");
    let report = bench(&["bench", "--quick", "--json", "--svg", svg.to_str().unwrap()]);
    check_broker_report(&report, "sqlite", 1);

    // The plot has both series at both levels, and renders again from the JSON.
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(drawn.matches("<circle").count(), 4, "{drawn}");
    let json = dir.path().join("report.json");
    std::fs::write(&json, report.to_string()).unwrap();
    let again = dir.path().join("again.svg");
    let output = run(
        &[
            "bench",
            "--from",
            json.to_str().unwrap(),
            "--svg",
            again.to_str().unwrap(),
        ],
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), drawn);
}

#[test]
fn quick_bench_of_the_deployer() {
    let report = bench(&["bench", "--target", "deployer", "--quick", "--json"]);
    assert_eq!(report["target"], "deployer");
    for pointer in [
        "/figures/deployer/callbacks_per_second",
        "/figures/deployer/queued",
        "/figures/deployer/duplicates",
        "/figures/deployer/healthz_per_second",
        "/figures/deployer/ratio_to_ceiling",
    ] {
        positive(&report, pointer);
    }
    assert_eq!(report["figures"]["deployer"]["failed"], 0, "{report:#}");
    assert!(report.pointer("/figures/ingest").is_none());
    assert_eq!(report["targets"][0]["figure"], "deployer callbacks");
}

#[test]
fn bench_refuses_replicas_on_sqlite_and_bad_sizes() {
    let output = run(&["bench", "--quick", "--replicas", "2"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--replicas 2 needs --database-url postgres"),
        "{}",
        stderr(&output)
    );
    let output = run(&["bench", "--quick", "--subscriptions", "10000,1000"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--subscriptions must increase"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "nothing measured: {}", stdout(&output));
}

#[test]
#[ignore = "needs PostgreSQL (TAGCAST_TEST_POSTGRES_URL)"]
fn quick_bench_on_postgres_with_two_replicas() {
    let url = std::env::var("TAGCAST_TEST_POSTGRES_URL").expect("TAGCAST_TEST_POSTGRES_URL");
    let args = ["bench", "--quick", "--json", "--database-url", &url, "--replicas", "2"];
    // A PostgreSQL broker needs its secret key given; the replicas share it.
    let output = tagcast()
        .args(args)
        .env(
            "TAGCAST_SECRET_KEY",
            "be4cbe4cbe4cbe4cbe4cbe4cbe4cbe4cbe4cbe4cbe4cbe4cbe4cbe4cbe4cbe4c",
        )
        .output()
        .expect("tagcast starts");
    assert!(output.status.success(), "{args:?} failed: {}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    check_broker_report(&report, "postgres", 2);
}
