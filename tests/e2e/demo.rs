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

#[test]
fn the_demo_refuses_a_non_empty_keep_directory() {
    let keep = tempfile::tempdir().unwrap();
    std::fs::write(keep.path().join("something"), "").unwrap();
    let out = run(&["demo", "--keep", keep.path().to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
}
