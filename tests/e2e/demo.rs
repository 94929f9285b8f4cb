//! `tagcast demo`: the README's main command must work and must say
//! whether the chain behaved.

use serde_json::Value;

use crate::support::{run, stderr, stdout};

#[test]
fn the_demo_shows_every_step_behaving_and_keeps_its_repository() {
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().join("demo");
    let out = run(&["demo", "--json", "--keep", dir.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    let timeline: Value = serde_json::from_str(&stdout(&out)).expect("--json prints one JSON document");
    assert_eq!(timeline["ok"], true);
    let steps = timeline["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12, "{steps:#?}");
    let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] != true).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    for field in ["number", "atMs", "durationMs", "action", "expected", "observed"] {
        assert!(steps[0].get(field).is_some(), "a step has {field}");
    }
    for target in ["cd", "broker"] {
        assert_eq!(
            timeline["conformance"][target]["outcome"]
                .as_str()
                .map(|o| o != "fail" && o != "error"),
            Some(true)
        );
    }

    // The conformance step skips nothing and times every check.
    for target in ["cd", "broker"] {
        let checks = timeline["conformance"][target]["checks"].as_array().unwrap();
        let skipped: Vec<&Value> = checks.iter().filter(|c| c["outcome"] == "skip").collect();
        assert!(skipped.is_empty(), "{target}: {skipped:#?}");
        let untimed: Vec<&Value> = checks
            .iter()
            .filter(|c| c["duration_ms"].as_f64().is_none_or(|ms| ms <= 0.0))
            .collect();
        assert!(untimed.is_empty(), "{target}: {untimed:#?}");
        // The checks account for the run: a verdict drawn from a shared
        // exchange carries the time since the previous one, not zero.
        let report = &timeline["conformance"][target];
        let wall = chrono::DateTime::parse_from_rfc3339(report["finished"].as_str().unwrap()).unwrap()
            - chrono::DateTime::parse_from_rfc3339(report["started"].as_str().unwrap()).unwrap();
        let summed: f64 = checks.iter().map(|c| c["duration_ms"].as_f64().unwrap()).sum();
        assert!(
            summed >= wall.num_milliseconds() as f64 / 2.0,
            "{target}: checks took {summed} ms of a {} ms run",
            wall.num_milliseconds()
        );
    }
    assert_eq!(timeline["repository"], dir.join("gitops").to_str().unwrap());

    // One word for a callback to a subscriber, as the spec says: a
    // delivery (its HTTP tries are attempts); never "delivery(ies)".
    let broker_lines: Vec<&str> = steps
        .iter()
        .flat_map(|s| s["observed"].as_array().unwrap())
        .filter_map(|o| o.as_str())
        .filter(|o| o.starts_with("broker: ") && o.contains("deliver"))
        .collect();
    assert!(
        broker_lines.contains(&"broker: accepted, 1 delivery"),
        "{broker_lines:#?}"
    );
    assert!(
        broker_lines.contains(&"broker: accepted, no delivery"),
        "{broker_lines:#?}"
    );
    assert!(broker_lines.contains(&"broker: no delivery"), "{broker_lines:#?}");
    let other: Vec<&&str> = broker_lines
        .iter()
        .filter(|o| {
            !(o.ends_with("no delivery")
                || o.ends_with(" 1 delivery")
                || o.ends_with(" deliveries")
                || o.contains("no delivery: "))
        })
        .collect();
    assert!(other.is_empty(), "outcomes outside the vocabulary: {other:#?}");

    // The kept repository holds the two delivered updates, pinned to digests.
    let repo = dir.join("gitops");
    let log = std::process::Command::new("git")
        .args(["-C", repo.to_str().unwrap(), "log", "--format=%s"])
        .output()
        .unwrap();
    let log = String::from_utf8(log.stdout).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    let manifest = std::fs::read_to_string(repo.join("deploy/cwl-wes.yaml")).unwrap();
    assert!(
        manifest.contains("localhost:5000/elixircloud/cwl-wes:1.1.1-production-201201-120000@sha256:"),
        "{manifest}"
    );
    assert!(dir.join("broker.sqlite").exists() && dir.join("deployer.sqlite").exists());
}

/// Every string of the timeline, for the paths among them.
fn strings(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) => found.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, found)),
        Value::Object(map) => map.values().for_each(|v| strings(v, found)),
        _ => {}
    }
}

/// Without `--keep` the demo works in a temporary directory that is gone
/// when it exits: `--json` must not send anyone there.
#[test]
fn the_demo_without_keep_points_at_no_deleted_path() {
    let out = run(&["demo", "--json"], "");
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    let timeline: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(timeline["repository"], Value::Null);
    let mut found = Vec::new();
    strings(&timeline, &mut found);
    let temp = std::env::temp_dir();
    let gone: Vec<&String> = found
        .iter()
        .filter(|s| s.starts_with(temp.to_str().unwrap()) && !std::path::Path::new(s.as_str()).exists())
        .collect();
    assert!(gone.is_empty(), "paths that no longer exist: {gone:?}");
}

#[test]
fn the_demo_refuses_a_non_empty_keep_directory() {
    let keep = tempfile::tempdir().unwrap();
    std::fs::write(keep.path().join("something"), "").unwrap();
    let out = run(&["demo", "--keep", keep.path().to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
}
