//! Target `broker` against a conforming test broker and against one broken
//! broker per rule: each check fails against the broker that breaks it.

use tagcast_conformance::peers::broker::{ADMIN_TOKEN, Flaw};
use tagcast_conformance::{BrokerTarget, Config, Format, Outcome, Report, Target, peers, run};

async fn check(flaw: Flaw) -> Report {
    let addr = peers::broker::start(flaw).await;
    let target = BrokerTarget::new(format!("http://{addr}/ga4gh/registry/v1").parse().unwrap(), ADMIN_TOKEN);
    let config = Config {
        timeout: std::time::Duration::from_secs(5),
        ..Config::default()
    };
    run(&Target::Broker(target), &config).await
}

async fn fails_exactly(flaw: Flaw, names: &[&str]) {
    let report = check(flaw).await;
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, names, "{flaw:?}:\n{}", report.render(Format::Text));
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn a_conforming_broker_passes_every_check() {
    let report = check(Flaw::None).await;
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.render(Format::Text));
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    let expected: Vec<&str> = tagcast_conformance::catalogue()
        .into_iter()
        .filter(|c| c.name.starts_with("broker/"))
        .map(|c| c.name)
        .collect();
    let mut sorted_names = names.clone();
    sorted_names.sort_unstable();
    let mut sorted_expected = expected.clone();
    sorted_expected.sort_unstable();
    assert_eq!(sorted_names, sorted_expected, "every broker check ran");
}

#[tokio::test]
async fn no_auth_fails_auth() {
    fails_exactly(Flaw::NoAuth, &["broker/registration/auth"]).await;
}

#[tokio::test]
async fn a_wrong_token_answered_401_fails_auth() {
    fails_exactly(Flaw::WrongTokenIs401, &["broker/registration/auth"]).await;
}

#[tokio::test]
async fn ordering_by_timestamp_fails_version_order() {
    fails_exactly(Flaw::OrdersByTimestamp, &["broker/matching/version-order"]).await;
}

#[tokio::test]
async fn ordering_by_string_fails_version_order() {
    fails_exactly(Flaw::OrdersByString, &["broker/matching/version-order"]).await;
}

#[tokio::test]
async fn retrying_a_400_fails_permanent() {
    fails_exactly(Flaw::RetriesPermanent, &["broker/delivery/permanent"]).await;
}

#[tokio::test]
async fn omitting_the_secret_fails_create() {
    fails_exactly(Flaw::OmitsSecret, &["broker/registration/create"]).await;
}

#[tokio::test]
async fn returning_the_secret_on_read_fails_read_back() {
    fails_exactly(Flaw::ReturnsSecret, &["broker/registration/read-back"]).await;
}

#[tokio::test]
async fn showing_hook_urls_in_public_reads_fails_read_back() {
    fails_exactly(Flaw::ShowsHookUrls, &["broker/registration/read-back"]).await;
}

#[tokio::test]
async fn accepting_a_metadata_callback_fails_ssrf() {
    // Judged only when the runner's receiver is public: a broker that must
    // reach a loopback receiver has private callbacks allowed (CB-16).
    let addr = peers::broker::start(Flaw::NoSsrf).await;
    let mut target = BrokerTarget::new(format!("http://{addr}/ga4gh/registry/v1").parse().unwrap(), ADMIN_TOKEN);
    target.callback_base = Some("http://receiver.tagcast-conformance.example:9".into());
    let config = Config {
        only: vec!["broker/registration".into()],
        ..Config::default()
    };
    let report = run(&Target::Broker(target.clone()), &config).await;
    assert_eq!(
        report.check("broker/registration/ssrf").unwrap().outcome,
        Outcome::Fail,
        "{}",
        report.render(Format::Text)
    );
    assert_eq!(report.outcome_of("broker/registration/create"), Some(Outcome::Pass));
    assert_eq!(report.exit_code(), 1);

    // With a loopback receiver the same broker is not judged.
    target.callback_base = None;
    let report = run(&Target::Broker(target), &config).await;
    let ssrf = report.check("broker/registration/ssrf").unwrap();
    assert_eq!(ssrf.outcome, Outcome::Skip);
    assert!(ssrf.message.as_deref().unwrap().contains("public --callback-base"));
}

#[tokio::test]
async fn delivering_twice_fails_every_count() {
    fails_exactly(
        Flaw::DeliversTwice,
        // Two events per push: every count is off, and the "retry" is
        // another event. Dedup judges only what a repeated request adds.
        &[
            "broker/delivery/one-per-push",
            "broker/matching/stage",
            "broker/hooks/distribution",
            "broker/delivery/retry",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_bad_signature_fails_signature() {
    fails_exactly(Flaw::BadSignature, &["broker/delivery/signature"]).await;
}

#[tokio::test]
async fn a_wrong_content_type_fails_event() {
    fails_exactly(Flaw::WrongContentType, &["broker/delivery/event"]).await;
}

#[tokio::test]
async fn no_retry_fails_retry() {
    // No retry at all breaks both retry rules (CB-12, CB-13).
    fails_exactly(Flaw::NoRetry, &["broker/delivery/retry", "broker/delivery/retry-after"]).await;
}

#[tokio::test]
async fn ignoring_410_fails_gone() {
    fails_exactly(Flaw::IgnoresGone, &["broker/delivery/gone"]).await;
}

#[tokio::test]
async fn delivering_cross_stage_fails_stage() {
    fails_exactly(Flaw::DeliversCrossStage, &["broker/matching/stage"]).await;
}

#[tokio::test]
async fn ignoring_the_api_requirement_fails_api_version() {
    fails_exactly(Flaw::IgnoresApiVersion, &["broker/matching/api-version"]).await;
}

#[tokio::test]
async fn delivering_downgrades_fails_downgrade() {
    fails_exactly(Flaw::DeliversDowngrades, &["broker/matching/downgrade"]).await;
}

#[tokio::test]
async fn no_dedup_fails_dedup() {
    fails_exactly(Flaw::NoDedup, &["broker/hooks/dedup"]).await;
}

#[tokio::test]
async fn accepting_any_token_fails_wrong_token() {
    fails_exactly(Flaw::AcceptsAnyToken, &["broker/hooks/wrong-token"]).await;
}

#[tokio::test]
async fn ignoring_distribution_fails_distribution() {
    fails_exactly(Flaw::IgnoresDistribution, &["broker/hooks/distribution"]).await;
}

#[tokio::test]
async fn not_rechecking_fails_recheck() {
    fails_exactly(Flaw::NoRecheck, &["broker/hooks/recheck"]).await;
}

#[tokio::test]
async fn keeping_services_fails_cleanup() {
    fails_exactly(Flaw::KeepsServices, &["broker/cleanup"]).await;
}

#[tokio::test]
async fn an_unreachable_broker_is_an_error() {
    let addr = peers::unreachable().await;
    let target = BrokerTarget::new(format!("http://{addr}/ga4gh/registry/v1").parse().unwrap(), ADMIN_TOKEN);
    let report = run(&Target::Broker(target), &Config::default()).await;
    assert_eq!(report.checks.len(), 1);
    assert_eq!(report.check("broker/reachable").unwrap().outcome, Outcome::Error);
    assert_eq!(report.exit_code(), 2);
}

#[tokio::test]
async fn reports_never_carry_the_admin_token() {
    // A broker that refuses the create shows the request in the report.
    let report = check(Flaw::OmitsSecret).await;
    let json = report.render(Format::Json);
    assert!(json.contains("authorization: Bearer <redacted>"), "{json}");
    assert!(!json.contains(ADMIN_TOKEN));
    let target = BrokerTarget::new("http://127.0.0.1:1/".parse().unwrap(), ADMIN_TOKEN);
    assert!(!format!("{target:?}").contains(ADMIN_TOKEN));
}

/// Every rule alone (issue 13, item 10): two events per push to one
/// subscriber fail one-per-push and nothing else.
#[tokio::test]
async fn delivering_twice_to_one_subscriber_fails_one_per_push_alone() {
    fails_exactly(Flaw::DeliversTwiceToTheFirst, &["broker/delivery/one-per-push"]).await;
}

/// The runner's own receiver cannot listen: an error of the run, not a
/// failure of the broker, and nothing else is judged.
#[tokio::test]
async fn a_receiver_that_cannot_listen_is_an_error_alone() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = peers::broker::start(Flaw::None).await;
    let mut target = BrokerTarget::new(format!("http://{addr}/ga4gh/registry/v1").parse().unwrap(), ADMIN_TOKEN);
    target.listen = taken.local_addr().unwrap();
    let report = run(&Target::Broker(target), &Config::default()).await;
    let outcomes: Vec<(&str, Outcome)> = report.checks.iter().map(|c| (c.name.as_str(), c.outcome)).collect();
    assert_eq!(
        outcomes,
        [("broker/reachable", Outcome::Pass), ("broker/receiver", Outcome::Error)],
        "{}",
        report.render(Format::Text)
    );
    assert_eq!(report.exit_code(), 2);
}

#[tokio::test]
async fn ignoring_retry_after_fails_retry_after_alone() {
    fails_exactly(Flaw::IgnoresRetryAfter, &["broker/delivery/retry-after"]).await;
}

#[tokio::test]
async fn delivering_a_future_dated_tag_fails_future_alone() {
    fails_exactly(Flaw::DeliversFuture, &["broker/matching/future"]).await;
}

#[tokio::test]
async fn delivering_late_fails_future() {
    // Later than the fixed window the runner waited before it asked the
    // broker's status (API-10) whether anything was still pending.
    fails_exactly(Flaw::DeliversLate, &["broker/matching/future"]).await;
}
