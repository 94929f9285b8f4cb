//! Target `tags`: tag lists, buildx metadata files and OCI layouts, each
//! check shown passing on good CI output and failing on bad.

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use tagcast_conformance::{Config, Outcome, Report, TagsTarget, Target, run};
use tagcast_spec::Stage;

fn target_of(tags: &[&str]) -> TagsTarget {
    target(tags)
}

fn target(tags: &[&str]) -> TagsTarget {
    TagsTarget {
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        now: Some(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()),
        ..TagsTarget::default()
    }
}

async fn check(target: TagsTarget) -> Report {
    run(&Target::Tags(target), &Config::default()).await
}

fn outcome(report: &Report, name: &str) -> Outcome {
    report
        .check(name)
        .unwrap_or_else(|| panic!("no {name} in\n{}", report.render(tagcast_conformance::Format::Text)))
        .outcome
}

#[tokio::test]
async fn good_tags_pass() {
    let mut t = target(&["1.1.0-production-261128-115500", "1.1-demo-201108-195630"]);
    t.api_version = Some("^1.1".parse().unwrap());
    let report = check(t).await;
    assert_eq!(
        report.outcome,
        Outcome::Pass,
        "{}",
        report.render(tagcast_conformance::Format::Text)
    );
    assert_eq!(outcome(&report, "tags/grammar/1.1-demo-201108-195630"), Outcome::Pass);
    assert_eq!(outcome(&report, "tags/ambiguity"), Outcome::Pass);
    assert_eq!(
        outcome(&report, "tags/api-version/1.1-demo-201108-195630"),
        Outcome::Pass
    );
}

#[tokio::test]
async fn a_tag_outside_the_grammar_fails_naming_the_rule() {
    let report = check(target(&["1.1-demo-200230-000000", "v1.1.0-production-201108-195630"])).await;
    let check = report.check("tags/grammar/1.1-demo-200230-000000").unwrap();
    assert_eq!(check.outcome, Outcome::Fail);
    assert_eq!(check.message.as_deref(), Some("not a tag of the grammar (TAG-4)"));
    assert!(
        check
            .evidence
            .received
            .as_deref()
            .unwrap()
            .contains("day 30 at position 13")
    );
    assert_eq!(
        outcome(&report, "tags/grammar/v1.1.0-production-201108-195630"),
        Outcome::Fail
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn equivalent_tags_are_ambiguous() {
    let report = check(target(&[
        "1.1-demo-201108-195630",
        "1.1.0-demo-201108-195630",
        "1.1.0-production-201108-195630",
    ]))
    .await;
    let check = report.check("tags/ambiguity").unwrap();
    assert_eq!(check.outcome, Outcome::Fail);
    assert_eq!(
        check.evidence.received.as_deref(),
        Some("1.1-demo-201108-195630 and 1.1.0-demo-201108-195630")
    );
}

#[tokio::test]
async fn an_unexpected_stage_or_api_version_fails() {
    let mut t = target(&["1.1.0-demo-201108-195630"]);
    t.stage = Some(Stage::Production);
    t.api_version = Some("1.2".parse().unwrap());
    let report = check(t).await;
    assert_eq!(outcome(&report, "tags/stage/1.1.0-demo-201108-195630"), Outcome::Fail);
    assert_eq!(
        outcome(&report, "tags/api-version/1.1.0-demo-201108-195630"),
        Outcome::Fail
    );

    let mut t = target(&["1.2-production-201108-195630"]);
    t.stage = Some(Stage::Production);
    t.api_version = Some("1.2.0".parse().unwrap());
    let report = check(t).await;
    assert_eq!(report.outcome, Outcome::Pass, "1.2 and 1.2.0 are the same api-version");
}

#[tokio::test]
async fn a_timestamp_in_the_future_beyond_the_skew_fails() {
    // now is 2026-11-28 12:00:00; skew 5 minutes.
    let report = check(target(&[
        "1.0.0-production-261128-120400",
        "1.0.0-staging-261128-120600",
    ]))
    .await;
    assert_eq!(
        outcome(&report, "tags/time/1.0.0-production-261128-120400"),
        Outcome::Pass
    );
    let late = report.check("tags/time/1.0.0-staging-261128-120600").unwrap();
    assert_eq!(late.outcome, Outcome::Fail);
    assert_eq!(late.message.as_deref(), Some("the tag's time is 6m00s ahead of now"));

    let mut t = target(&["1.0.0-staging-261128-120600"]);
    t.max_skew = Duration::from_secs(600);
    assert_eq!(check(t).await.outcome, Outcome::Pass);
}

#[tokio::test]
async fn a_tag_file_is_read_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tags.txt");
    std::fs::write(
        &path,
        "# built by CI\n1.0.0-production-201108-195630\n\n1.0.0-production-201108-19563\n",
    )
    .unwrap();
    let mut t = target(&[]);
    t.files.push(path.clone());
    let report = check(t).await;
    let bad = report.check("tags/grammar/1.0.0-production-201108-19563").unwrap();
    assert_eq!(bad.outcome, Outcome::Fail);
    assert!(bad.evidence.sent.as_deref().unwrap().ends_with("tags.txt line 4)"));
    assert_eq!(
        report.summary.total,
        1 + 2 + 1 + 1,
        "input, 2 grammar, 1 time, ambiguity"
    );
}

#[tokio::test]
async fn no_input_or_an_unreadable_file_is_an_error() {
    let report = check(target(&[])).await;
    assert_eq!(outcome(&report, "tags/input"), Outcome::Error);
    assert_eq!(report.exit_code(), 2);

    let mut t = target(&[]);
    t.metadata_files.push("/nonexistent/metadata.json".into());
    let report = check(t).await;
    assert_eq!(outcome(&report, "tags/input"), Outcome::Error);
}

fn metadata(dir: &Path, names: &str, created: &str, version: &str) -> std::path::PathBuf {
    let path = dir.join("metadata.json");
    let digest = format!("sha256:{}", "a".repeat(64));
    let value = json!({
        "buildx.build.ref": "builder/builder0/abc",
        "containerimage.config.digest": digest,
        "containerimage.descriptor": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": 506,
            "annotations": {
                "org.opencontainers.image.created": created,
                "org.opencontainers.image.version": version
            }
        },
        "containerimage.digest": digest,
        "image.name": names
    });
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn buildx_metadata_agreeing_with_the_tag_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(&[]);
    t.metadata_files.push(metadata(
        dir.path(),
        "docker.io/elixircloud/cwl-wes:1.1.0-production-261128-115500,docker.io/elixircloud/cwl-wes:latest",
        "2026-11-28T11:57:03Z",
        "1.1.0-production-261128-115500",
    ));
    let report = check(t).await;
    let tag = "1.1.0-production-261128-115500";
    assert_eq!(outcome(&report, &format!("tags/created/{tag}")), Outcome::Pass);
    assert_eq!(outcome(&report, &format!("tags/version/{tag}")), Outcome::Pass);
    assert_eq!(
        outcome(&report, "tags/grammar/latest"),
        Outcome::Warn,
        "latest beside a tag is usual"
    );
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test]
async fn buildx_metadata_disagreeing_with_the_tag_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(&[]);
    t.metadata_files.push(metadata(
        dir.path(),
        "docker.io/elixircloud/cwl-wes:1.1.0-production-261128-115500",
        "2026-11-28T10:00:00Z",
        "1.1.0-production-261128-100000",
    ));
    let report = check(t).await;
    let tag = "1.1.0-production-261128-115500";
    let created = report.check(&format!("tags/created/{tag}")).unwrap();
    assert_eq!(created.outcome, Outcome::Fail);
    assert_eq!(
        created.message.as_deref(),
        Some("the tag's time and org.opencontainers.image.created are 1h55m00s apart")
    );
    let version = report.check(&format!("tags/version/{tag}")).unwrap();
    assert_eq!(version.outcome, Outcome::Fail);
    assert_eq!(
        version.message.as_deref(),
        Some("org.opencontainers.image.version names another tag, 1.1.0-production-261128-100000")
    );
}

/// Writes `bytes` as a blob of the layout and returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let hex = format!("{:x}", Sha256::digest(bytes));
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    json!({ "mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len() })
}

fn layout(dir: &Path, ref_name: &str, labels: serde_json::Value) {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": [] }
    }))
    .unwrap();
    let config = blob(dir, "application/vnd.oci.image.config.v1+json", &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": []
    }))
    .unwrap();
    let mut manifest = blob(dir, "application/vnd.oci.image.manifest.v1+json", &manifest);
    manifest["annotations"] = json!({ "org.opencontainers.image.ref.name": ref_name });
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [manifest] })).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn an_oci_layout_is_checked_through_its_config_labels() {
    let tag = "1.1-staging-261128-115500";
    let good = tempfile::tempdir().unwrap();
    layout(
        good.path(),
        tag,
        json!({ "org.opencontainers.image.created": "2026-11-28T11:56:00Z", "org.opencontainers.image.version": "1.1.0" }),
    );
    let mut t = target(&[]);
    t.oci_layouts.push(good.path().to_owned());
    let report = check(t).await;
    assert_eq!(
        report.outcome,
        Outcome::Pass,
        "{}",
        report.render(tagcast_conformance::Format::Text)
    );
    assert_eq!(outcome(&report, &format!("tags/version/{tag}")), Outcome::Pass);

    let bad = tempfile::tempdir().unwrap();
    layout(
        bad.path(),
        &format!("ghcr.io/elixir-cloud-aai/cwl-wes:{tag}"),
        json!({ "org.opencontainers.image.created": "yesterday", "org.opencontainers.image.version": "1.2.0" }),
    );
    let mut t = target(&[]);
    t.oci_layouts.push(bad.path().to_owned());
    let report = check(t).await;
    let created = report.check(&format!("tags/created/{tag}")).unwrap();
    assert_eq!(created.outcome, Outcome::Fail);
    assert!(
        created
            .message
            .as_deref()
            .unwrap()
            .contains("not an RFC 3339 date-time")
    );
    assert_eq!(
        outcome(&report, &format!("tags/version/{tag}")),
        Outcome::Warn,
        "1.2.0 may be the service's own version (TAG-5)"
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn a_bake_metadata_file_is_read_target_by_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bake.json");
    let digest = format!("sha256:{}", "b".repeat(64));
    let target = |name: &str, created: &str| {
        json!({
            "containerimage.descriptor": {
                "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": 1,
                "annotations": { "org.opencontainers.image.created": created }
            },
            "containerimage.digest": digest,
            "image.name": name
        })
    };
    let bake = json!({
        "wes": target("docker.io/elixircloud/cwl-wes:1.1.0-demo-261128-115500", "2026-11-28T11:56:00Z"),
        "tes": target("docker.io/elixircloud/tesk:1.1.0-demo-261128-115500", "2026-11-28T09:00:00Z"),
        "buildx.build.warnings": []
    });
    std::fs::write(&path, serde_json::to_string(&bake).unwrap()).unwrap();
    let mut t = target_of(&[]);
    t.metadata_files.push(path);
    let report = check(t).await;
    // The same tag in two repositories is not ambiguous; each is checked,
    // and the tesk target's created time is three hours off.
    assert_eq!(outcome(&report, "tags/ambiguity"), Outcome::Pass);
    let tag = "1.1.0-demo-261128-115500";
    assert_eq!(
        outcome(&report, &format!("tags/created/docker.io/elixircloud/cwl-wes:{tag}")),
        Outcome::Pass
    );
    assert_eq!(
        outcome(&report, &format!("tags/created/docker.io/elixircloud/tesk:{tag}")),
        Outcome::Fail
    );
    assert_eq!(
        report.summary.total,
        1 + 2 * 3 + 1,
        "{}",
        report.render(tagcast_conformance::Format::Text)
    );
}
