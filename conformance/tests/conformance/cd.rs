//! Target `cd` against a conforming endpoint and against one broken
//! endpoint per rule: each check fails against its broken peer.

use tagcast_conformance::{CdTarget, Config, Outcome, Report, Target, run};

use tagcast_conformance::peers;
use tagcast_conformance::peers::cd::{Flaw, SECRET};

async fn check(flaw: Flaw) -> Report {
    let addr = peers::cd::start(flaw).await;
    let mut target = CdTarget::new(format!("http://{addr}/").parse().unwrap(), SECRET.parse().unwrap());
    target.status_url = Some(format!("http://{addr}/status").parse().unwrap());
    run(&Target::Cd(target), &Config::default()).await
}

fn outcome(report: &Report, name: &str) -> Outcome {
    report
        .check(name)
        .unwrap_or_else(|| {
            panic!(
                "no check {name} in\n{}",
                report.render(tagcast_conformance::Format::Text)
            )
        })
        .outcome
}

/// Every check named passes against the conforming endpoint, and fails
/// against the endpoint with `flaw`, which makes the run exit 1.
async fn fails_only_against(flaw: Flaw, names: &[&str]) {
    let broken = check(flaw).await;
    for name in names {
        assert_eq!(
            outcome(&broken, name),
            Outcome::Fail,
            "{name} against {flaw:?}:\n{}",
            broken.render(tagcast_conformance::Format::Text)
        );
    }
    assert_eq!(broken.exit_code(), 1);
    let failed: Vec<&str> = broken
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, names, "only the broken rule fails");
}

#[tokio::test]
async fn a_conforming_endpoint_passes_every_check() {
    let report = check(Flaw::None).await;
    let text = report.render(tagcast_conformance::Format::Text);
    assert_eq!(report.outcome, Outcome::Pass, "{text}");
    assert_eq!(report.exit_code(), 0);
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    let expected: Vec<&str> = tagcast_conformance::catalogue()
        .into_iter()
        .filter(|c| c.name.starts_with("cd/"))
        .map(|c| c.name)
        .collect();
    assert_eq!(names, expected, "every cd check ran");
}

#[tokio::test]
async fn skipping_signature_checks_fails_the_signature_checks() {
    fails_only_against(
        Flaw::SkipsSignature,
        // Without a signature check there is no timestamp check either: the
        // timestamp is only trustworthy as part of the signed content.
        &[
            "cd/signature/bad",
            "cd/signature/missing",
            "cd/signature/body-only",
            "cd/signature/stale",
            "cd/signature/future",
            "cd/signature/timestamp-format",
        ],
    )
    .await;
}

#[tokio::test]
async fn ignoring_the_timestamp_fails_stale_and_future() {
    fails_only_against(Flaw::IgnoresTimestamp, &["cd/signature/stale", "cd/signature/future"]).await;
}

#[tokio::test]
async fn a_lenient_timestamp_parser_fails_timestamp_format() {
    fails_only_against(Flaw::LenientTimestamp, &["cd/signature/timestamp-format"]).await;
}

#[tokio::test]
async fn answering_500_to_malformed_json_fails_malformed() {
    fails_only_against(Flaw::FailsOnMalformedJson, &["cd/body/malformed"]).await;
}

#[tokio::test]
async fn checking_only_the_first_signature_fails_rotation() {
    fails_only_against(Flaw::ChecksFirstSignatureOnly, &["cd/signature/rotation"]).await;
}

#[tokio::test]
async fn reapplying_duplicates_fails_idempotency() {
    fails_only_against(Flaw::ReappliesDuplicates, &["cd/delivery/idempotent"]).await;
}

#[tokio::test]
async fn rejecting_duplicates_fails_duplicate() {
    fails_only_against(Flaw::RejectsDuplicates, &["cd/delivery/duplicate"]).await;
}

#[tokio::test]
async fn accepting_any_json_fails_schema() {
    // Accepting any JSON breaks the contract's rules beyond the schema too.
    fails_only_against(Flaw::SkipsSchema, &["cd/body/schema", "cd/body/semantics"]).await;
}

#[tokio::test]
async fn ignoring_the_content_type_fails_content_type() {
    fails_only_against(Flaw::IgnoresContentType, &["cd/body/content-type"]).await;
}

#[tokio::test]
async fn accepting_huge_bodies_fails_too_large() {
    fails_only_against(Flaw::AcceptsHugeBodies, &["cd/body/too-large"]).await;
}

/// The handshake is a SHOULD (CB-17): not answering it is a warning, and
/// the run still exits 0.
#[tokio::test]
async fn no_handshake_warns_on_handshake() {
    let report = check(Flaw::NoHandshake).await;
    let handshake = report.check("cd/handshake").unwrap();
    assert_eq!(handshake.outcome, Outcome::Warn);
    assert!(handshake.message.as_deref().unwrap().contains("answered 405"));
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test]
async fn rejecting_valid_callbacks_fails_valid_and_rotation() {
    let report = check(Flaw::RejectsValid).await;
    assert_eq!(outcome(&report, "cd/delivery/valid"), Outcome::Fail);
    assert_eq!(outcome(&report, "cd/signature/rotation"), Outcome::Fail);
    assert_eq!(outcome(&report, "cd/delivery/duplicate"), Outcome::Skip);
    assert_eq!(report.exit_code(), 1);
    let valid = report.check("cd/delivery/valid").unwrap();
    assert!(
        valid
            .evidence
            .sent
            .as_deref()
            .unwrap()
            .contains("webhook-signature: v1,")
    );
    assert_eq!(valid.evidence.expected.as_deref(), Some("2xx"));
    assert!(valid.evidence.received.as_deref().unwrap().starts_with("500"));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error_not_a_failure() {
    let addr = peers::unreachable().await;
    let target = CdTarget::new(format!("http://{addr}/").parse().unwrap(), SECRET.parse().unwrap());
    let report = run(&Target::Cd(target), &Config::default()).await;
    assert_eq!(report.checks.len(), 1, "nothing else runs");
    assert_eq!(outcome(&report, "cd/reachable"), Outcome::Error);
    assert!(report.checks[0].message.as_deref().unwrap().contains("cannot reach"));
    assert_eq!(report.exit_code(), 2);
}

#[tokio::test]
async fn without_a_status_url_idempotency_is_skipped() {
    let addr = peers::cd::start(Flaw::ReappliesDuplicates).await;
    let target = CdTarget::new(format!("http://{addr}/").parse().unwrap(), SECRET.parse().unwrap());
    let report = run(&Target::Cd(target), &Config::default()).await;
    assert_eq!(outcome(&report, "cd/delivery/idempotent"), Outcome::Skip);
    assert_eq!(report.exit_code(), 0, "a skip is not a failure");
}

#[tokio::test]
async fn only_and_skip_select_checks_by_prefix() {
    let addr = peers::cd::start(Flaw::IgnoresTimestamp).await;
    let target = Target::Cd(CdTarget::new(
        format!("http://{addr}/").parse().unwrap(),
        SECRET.parse().unwrap(),
    ));
    let config = Config {
        only: vec!["cd/signature".into()],
        skip: vec!["cd/signature/stale".into()],
        ..Config::default()
    };
    let report = run(&target, &config).await;
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cd/signature/bad",
            "cd/signature/missing",
            "cd/signature/body-only",
            "cd/signature/future",
            "cd/signature/timestamp-format",
            "cd/signature/rotation"
        ]
    );
    assert_eq!(outcome(&report, "cd/signature/future"), Outcome::Fail);
    assert_eq!(report.groups()["cd/signature"], Outcome::Fail);
    assert_eq!(report.groups()["cd"], Outcome::Fail);
    assert_eq!(report.selection.only, ["cd/signature"]);
    assert!(!report.selection.is_full());
    assert!(report.render(tagcast_conformance::Format::Text).ends_with(
        "partial run (--only [\"cd/signature\"], --skip [\"cd/signature/stale\"]): it does not certify conformance\n"
    ));
}

#[tokio::test]
async fn applying_a_downgrade_fails_downgrade() {
    fails_only_against(Flaw::AppliesDowngrades, &["cd/delivery/downgrade"]).await;
}

// Every rule alone (issue 13, item 10): one endpoint per check that breaks
// only that check's rule, so that a weakened check cannot still pass.

#[tokio::test]
async fn accepting_an_unsigned_callback_fails_missing_alone() {
    fails_only_against(Flaw::AcceptsUnsigned, &["cd/signature/missing"]).await;
}

#[tokio::test]
async fn accepting_a_body_only_hmac_fails_body_only_alone() {
    fails_only_against(Flaw::AcceptsBodyOnly, &["cd/signature/body-only"]).await;
}

#[tokio::test]
async fn not_checking_the_mac_fails_bad_alone() {
    fails_only_against(Flaw::AcceptsForeignSignatures, &["cd/signature/bad"]).await;
}

#[tokio::test]
async fn accepting_old_timestamps_fails_stale_alone() {
    fails_only_against(Flaw::AcceptsStale, &["cd/signature/stale"]).await;
}

#[tokio::test]
async fn accepting_timestamps_ahead_fails_future_alone() {
    fails_only_against(Flaw::AcceptsFuture, &["cd/signature/future"]).await;
}

/// The endpoint answers the first callback after more than 10 s; the
/// later ones in time.
#[tokio::test]
async fn answering_late_fails_valid_alone() {
    fails_only_against(Flaw::AnswersLate, &["cd/delivery/valid"]).await;
}

/// Issue 13, item 11: an endpoint that trusts the schema alone accepts
/// events whose members disagree with the tag.
#[tokio::test]
async fn validating_by_the_schema_alone_fails_semantics_alone() {
    fails_only_against(Flaw::SchemaOnly, &["cd/body/semantics"]).await;
}
