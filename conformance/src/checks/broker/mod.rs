//! Target `broker`: a live broker, end to end (`spec/service-api.md`,
//! `spec/callbacks.md`, DESIGN.md §4-§6).
//!
//! The runner registers test services whose callbacks go to its own
//! receiver, plays the container registry (the `generic` and
//! `distribution` hooks), and checks what arrives — then deletes what it
//! created.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use tagcast_spec::webhook::Secret;
use tagcast_spec::{ApiVersion, Stage, Tag};
use url::Url;

use crate::check::{Check, Evidence, Verdict};
use crate::exchange::{Request, client};
use crate::outcome::Level;
use crate::receiver::{Answer, Receiver};
use crate::suite::Suite;

mod pushes;
mod verdicts;

use verdicts::{
    count_is, count_of, created_id, event_verdict, exactly_one, has_key, no_retry, private_receiver,
    repeat_adds_nothing, retry_after_verdict, retry_verdict, signature_verdict, tag_of,
};

/// The `Retry-After` the busy and throttled subscribers answer first.
const RETRY_AFTER_SECONDS: u64 = 2;

macro_rules! check {
    ($id:ident, $name:literal, $req:literal, $desc:literal) => {
        const $id: Check = Check {
            name: $name,
            requirement: $req,
            level: Level::Must,
            description: $desc,
        };
    };
}

check!(
    REACHABLE,
    "broker/reachable",
    "API-1",
    "GET {url}/service-info answers 2xx"
);
check!(
    RECEIVER,
    "broker/receiver",
    "API-1",
    "the runner's callback receiver listens on --listen"
);
check!(
    AUTH,
    "broker/registration/auth",
    "API-5",
    "a write without the admin token is answered 401, with a wrong one 403"
);
check!(
    CREATE,
    "broker/registration/create",
    "API-8",
    "POST /services with a subscription is answered 201 with the secret once and a hook per registry"
);
check!(
    READ_BACK,
    "broker/registration/read-back",
    "API-6",
    "GET /services/{id} and GET /services show the subscription and never its secret or, without the admin token, its hook tokens"
);
check!(
    SSRF,
    "broker/registration/ssrf",
    "CB-16",
    "a subscription whose callbackUrl is the cloud metadata address 169.254.169.254 is refused (judged only when the runner's receiver is not itself private)"
);
check!(
    ONE_PER_PUSH,
    "broker/delivery/one-per-push",
    "API-15",
    "a push of a new tag reaches a matching subscriber exactly once"
);
check!(
    SIGNATURE,
    "broker/delivery/signature",
    "CB-3",
    "every callback carries webhook-id, webhook-timestamp and a webhook-signature that verifies with the subscription's secret"
);
check!(
    EVENT,
    "broker/delivery/event",
    "CB-1",
    "every callback is a CloudEvent that validates against image-published.schema.json and names the pushed tag and digest"
);
check!(
    RETRY,
    "broker/delivery/retry",
    "CB-12",
    "a callback answered 500 is retried with the same webhook-id"
);
check!(
    RETRY_AFTER,
    "broker/delivery/retry-after",
    "CB-13",
    "callbacks answered 503 and 429 with Retry-After: 2 are retried with the same webhook-id, not sooner than 2 s later"
);
check!(
    PERMANENT,
    "broker/delivery/permanent",
    "CB-14",
    "a callback answered 400 is not retried: one attempt, while the 500 subscriber's retry arrives"
);
check!(
    GONE,
    "broker/delivery/gone",
    "CB-10",
    "a callback answered 410 unsubscribes: the state reads unsubscribed and nothing more is delivered"
);
check!(
    STAGE,
    "broker/matching/stage",
    "TAG-11",
    "a tag is delivered only to subscribers of its stage (no cross-stage delivery)"
);
check!(
    API_VERSION,
    "broker/matching/api-version",
    "TAG-10",
    "a tag whose api-version does not match the subscription's requirement is not delivered"
);
check!(
    FUTURE,
    "broker/matching/future",
    "CB-18",
    "a tag dated an hour after the broker's clock is not delivered, also not late (judged once API-10 counts nothing pending)"
);
check!(
    DOWNGRADE,
    "broker/matching/downgrade",
    "CB-15",
    "a tag older than the last one delivered is not delivered (no downgrade)"
);
check!(
    VERSION_ORDER,
    "broker/matching/version-order",
    "TAG-9",
    "channel order is by version, then timestamp: 1.0.9 then 1.0.10 with an older timestamp are both delivered (a broker ordering by timestamp or by string refuses the second)"
);
check!(
    DEDUP,
    "broker/hooks/dedup",
    "API-15",
    "the same hook request again (same event id) yields no second delivery"
);
check!(
    WRONG_TOKEN,
    "broker/hooks/wrong-token",
    "API-14",
    "a hook request with an unknown token is answered 404 and delivers nothing"
);
check!(
    DISTRIBUTION,
    "broker/hooks/distribution",
    "API-14",
    "a Distribution notification (blob pushes, then the tagged manifest) yields one delivery of the tag"
);
check!(
    RECHECK,
    "broker/hooks/recheck",
    "API-15",
    "a signed push whose digest the registry API (served by the runner) contradicts is not delivered"
);
check!(
    CLEANUP,
    "broker/cleanup",
    "API-5",
    "DELETE /services/{id} removes each service the runner created (then 404)"
);

/// The checks of this target.
pub(crate) const CHECKS: &[&Check] = &[
    &REACHABLE,
    &RECEIVER,
    &AUTH,
    &CREATE,
    &READ_BACK,
    &SSRF,
    &ONE_PER_PUSH,
    &SIGNATURE,
    &EVENT,
    &RETRY,
    &RETRY_AFTER,
    &PERMANENT,
    &GONE,
    &STAGE,
    &API_VERSION,
    &DOWNGRADE,
    &FUTURE,
    &VERSION_ORDER,
    &DEDUP,
    &WRONG_TOKEN,
    &DISTRIBUTION,
    &RECHECK,
    &CLEANUP,
];

/// The checks that need the runner to push as the registry.
const PUSH_CHECKS: &[&Check] = &[
    &ONE_PER_PUSH,
    &SIGNATURE,
    &EVENT,
    &RETRY,
    &RETRY_AFTER,
    &PERMANENT,
    &GONE,
    &STAGE,
    &API_VERSION,
    &DOWNGRADE,
    &VERSION_ORDER,
    &DEDUP,
    &WRONG_TOKEN,
    &DISTRIBUTION,
    &RECHECK,
];

/// A live broker to check. `Debug` never shows the admin token.
#[derive(Clone)]
pub struct BrokerTarget {
    /// The Service Registry base URL, e.g. `https://registry.example.org/ga4gh/registry/v1`.
    pub url: Url,
    /// The admin token for writes.
    pub admin_token: String,
    /// Where the runner's callback receiver listens.
    pub listen: SocketAddr,
    /// The receiver's URL as the broker reaches it, when not
    /// `http://<listen>` (behind NAT, in a container).
    pub callback_base: Option<String>,
}

impl std::fmt::Debug for BrokerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerTarget")
            .field("url", &self.url.as_str())
            .field("admin_token", &"<redacted>")
            .field("listen", &self.listen)
            .field("callback_base", &self.callback_base)
            .finish()
    }
}

impl BrokerTarget {
    /// The broker at `url` with `admin_token`; the receiver on a free
    /// loopback port.
    pub fn new(url: Url, admin_token: impl Into<String>) -> Self {
        Self {
            url,
            admin_token: admin_token.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            callback_base: None,
        }
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        let joined = format!("{}/{}", url.path().trim_end_matches('/'), path.trim_start_matches('/'));
        url.set_path(&joined);
        url
    }
}

/// A service the runner registered.
#[derive(Debug, Clone)]
struct Subscriber {
    inbox: &'static str,
    id: String,
    secret: Option<Secret>,
}

/// One push the runner made as the registry.
#[derive(Debug, Clone)]
struct Push {
    tag: Tag,
    digest: String,
}

struct Run<'a> {
    target: &'a BrokerTarget,
    client: Client,
    receiver: Receiver,
    run: String,
    generic_registry: String,
    /// A registry of its own for the auth and SSRF probes, so that a broker
    /// that wrongly accepts one does not spend the generic hook's one-time
    /// secret on it.
    probe_registry: String,
    distribution_registry: String,
    created: Vec<String>,
    subscribers: BTreeMap<&'static str, Subscriber>,
    generic_hook: Option<(String, Secret)>,
    distribution_hook: Option<String>,
    timeout: Duration,
    /// How long to wait for a delivery that must not come (`Config::quiet`).
    quiet: Duration,
}

pub(crate) async fn run(target: &BrokerTarget, suite: &mut Suite<'_>) -> String {
    let subject = target.url.to_string();
    let client = client(suite.config().timeout);
    let start = std::time::Instant::now();
    let info = Request::new(Method::GET, target.endpoint("service-info"));
    match info.send(&client).await {
        Err(e) => {
            suite.record_always(
                &REACHABLE,
                Verdict::Error(format!("cannot reach the broker: {e}")),
                start,
            );
            return subject;
        }
        Ok(r) if !r.status.is_success() => {
            suite.record_always(
                &REACHABLE,
                Verdict::Error(format!(
                    "GET service-info answered {}: is --url the registry's base URL?",
                    r.status
                )),
                start,
            );
            return subject;
        }
        Ok(_) => {
            suite.record(&REACHABLE, REACHABLE.name.to_owned(), Verdict::pass());
        }
    }
    let receiver = match Receiver::start(target.listen, target.callback_base.as_deref()).await {
        Ok(receiver) => {
            suite.record(&RECEIVER, RECEIVER.name.to_owned(), Verdict::pass());
            receiver
        }
        Err(e) => {
            suite.record_always(&RECEIVER, Verdict::Error(e), start);
            return subject;
        }
    };
    let run_id = format!("{:08x}", rand::random::<u32>());
    let mut run = Run {
        target,
        client,
        receiver,
        generic_registry: format!("tc{run_id}.conformance.example"),
        probe_registry: format!("tc{run_id}p.conformance.example"),
        distribution_registry: format!("tc{run_id}d.conformance.example"),
        run: run_id,
        created: Vec::new(),
        subscribers: BTreeMap::new(),
        generic_hook: None,
        distribution_hook: None,
        timeout: suite.config().timeout,
        quiet: suite.config().quiet,
    };
    run.checks(suite).await;
    let cleanup = run.cleanup().await;
    suite.record(&CLEANUP, CLEANUP.name.to_owned(), cleanup);
    subject
}

impl Run<'_> {
    fn registration(
        &self,
        inbox: &'static str,
        stage: Stage,
        api: Option<&str>,
        kind: &str,
        registry: &str,
        callback: &str,
    ) -> Value {
        let mut subscription = json!({
            "images": [format!("{registry}/tagcast/app")],
            "stage": stage.as_str(),
            "callbackUrl": callback,
            "registry": { "kind": kind },
        });
        // The runner is the generic registry's API too, so that the broker
        // can re-check a tag there (API-15).
        if registry == self.generic_registry {
            subscription["registry"]["url"] = Value::String(self.receiver.base().to_owned());
        }
        if let Some(api) = api {
            subscription["apiVersion"] = Value::String(api.to_owned());
        }
        json!({
            "id": format!("tagcast-conformance-{}-{inbox}", self.run),
            "name": format!("tagcast conformance {} {inbox}", self.run),
            "type": { "group": "org.ga4gh", "artifact": "wes", "version": "1.0.0" },
            "organization": { "name": "tagcast conformance", "url": "https://tagcast-conformance.invalid" },
            "version": "1.0.0",
            "url": format!("https://tagcast-conformance.invalid/{}/{inbox}", self.run),
            "subscription": subscription,
        })
    }

    fn write(&self, method: Method, url: Url, token: Option<&str>, body: &Value) -> Request {
        let mut request = Request::new(method, url).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(serde_json::to_vec(body).expect("JSON serializes"))
    }

    /// Registers a service; its id (for cleanup) if the broker created one.
    async fn register(&mut self, body: &Value) -> Result<(Value, Request), (String, Evidence)> {
        let request = self.write(
            Method::POST,
            self.target.endpoint("services"),
            Some(&self.target.admin_token),
            body,
        );
        let response = request.send(&self.client).await.map_err(|e| {
            (
                format!("no answer: {e}"),
                Evidence::new(request.describe(), "201", "no HTTP answer"),
            )
        })?;
        let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if let Some(id) = json.get("id").and_then(Value::as_str) {
            if response.status.is_success() {
                self.created.push(id.to_owned());
            }
        }
        if response.status.as_u16() != 201 {
            return Err((
                format!("POST /services was answered {}", response.status.as_u16()),
                Evidence::new(request.describe(), "201 Created", response.describe()),
            ));
        }
        Ok((json, request))
    }

    async fn checks(&mut self, suite: &mut Suite<'_>) {
        let timeout = self.timeout;
        // Writes need the admin token.
        let body = self.registration(
            "unauthorized",
            Stage::Production,
            None,
            "generic",
            &self.probe_registry.clone(),
            "https://tagcast-conformance.invalid/cb",
        );
        if suite.selects(AUTH.name) {
            let verdict = self.auth(&body).await;
            suite.record(&AUTH, AUTH.name.to_owned(), verdict);
        }
        if suite.selects(SSRF.name) {
            let body = self.registration(
                "ssrf",
                Stage::Production,
                None,
                "generic",
                &self.probe_registry.clone(),
                "http://169.254.169.254/latest/meta-data/",
            );
            let verdict = self.ssrf(&body).await;
            suite.record(&SSRF, SSRF.name.to_owned(), verdict);
        }

        // The subscribers.
        let plan: [(&'static str, Stage, Option<&str>, Answer, bool); 9] = [
            ("prod", Stage::Production, None, Answer::Accept, false),
            ("staging", Stage::Staging, None, Answer::Accept, false),
            ("v2", Stage::Production, Some("^2.0"), Answer::Accept, false),
            ("retry", Stage::Production, None, Answer::FailFirst(1), false),
            (
                "busy",
                Stage::Production,
                None,
                Answer::Throttle(503, RETRY_AFTER_SECONDS),
                false,
            ),
            (
                "throttled",
                Stage::Production,
                None,
                Answer::Throttle(429, RETRY_AFTER_SECONDS),
                false,
            ),
            ("reject", Stage::Production, None, Answer::Always(400), false),
            ("gone", Stage::Production, None, Answer::Gone, false),
            ("dist", Stage::Production, None, Answer::Accept, true),
        ];
        let mut create_problem: Option<(String, Evidence)> = None;
        for (inbox, stage, api, answer, distribution) in plan {
            let callback = self.receiver.inbox(inbox, answer);
            let (kind, registry) = if distribution {
                ("distribution", self.distribution_registry.clone())
            } else {
                ("generic", self.generic_registry.clone())
            };
            let body = self.registration(inbox, stage, api, kind, &registry, &callback);
            match self.register(&body).await {
                Err(problem) => {
                    create_problem.get_or_insert(problem);
                }
                Ok((answer, request)) => {
                    let id = answer.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                    let secret = answer
                        .pointer("/subscription/secret")
                        .and_then(Value::as_str)
                        .and_then(|s| Secret::parse(s).ok());
                    if secret.is_none() {
                        create_problem.get_or_insert((
                            "the answer to the write has no subscription.secret whsec_…".into(),
                            Evidence::new(
                                request.describe(),
                                "201 with subscription.secret",
                                crate::exchange::excerpt(&answer.to_string()),
                            ),
                        ));
                    }
                    let hook = answer
                        .pointer("/subscription/hooks")
                        .and_then(Value::as_array)
                        .and_then(|hooks| {
                            hooks
                                .iter()
                                .find(|h| h.get("kind").and_then(Value::as_str) == Some(kind))
                                .cloned()
                        });
                    match hook {
                        None => {
                            create_problem.get_or_insert((
                                format!("the answer has no {kind} hook for {registry}"),
                                Evidence::new(
                                    request.describe(),
                                    format!("subscription.hooks[] with kind {kind}"),
                                    crate::exchange::excerpt(&answer.to_string()),
                                ),
                            ));
                        }
                        Some(hook) => {
                            let url = hook.get("url").and_then(Value::as_str).unwrap_or_default().to_owned();
                            if distribution {
                                self.distribution_hook.get_or_insert(url);
                            } else if self.generic_hook.is_none() {
                                if let Some(secret) = hook
                                    .get("secret")
                                    .and_then(Value::as_str)
                                    .and_then(|s| Secret::parse(s).ok())
                                {
                                    self.generic_hook = Some((url, secret));
                                }
                            }
                        }
                    }
                    self.subscribers.insert(inbox, Subscriber { inbox, id, secret });
                }
            }
        }
        if self.generic_hook.is_none() && create_problem.is_none() {
            create_problem = Some((
                "no answer carried the generic hook's signing secret (subscription.hooks[].secret)".into(),
                Evidence::default(),
            ));
        }
        let created = match create_problem {
            None => Verdict::pass(),
            Some((message, evidence)) => Verdict::fail(message, evidence),
        };
        let created_ok = matches!(created, Verdict::Pass(_));
        suite.record(&CREATE, CREATE.name.to_owned(), created);
        if !created_ok || !self.subscribers.contains_key("prod") {
            for check in std::iter::once(&&READ_BACK).chain(PUSH_CHECKS) {
                {
                    suite.record(
                        check,
                        check.name.to_owned(),
                        Verdict::Skip("the test services could not be registered".into()),
                    );
                }
            }
            return;
        }
        let verdict = self.read_back().await;
        suite.record(&READ_BACK, READ_BACK.name.to_owned(), verdict);
        let pushes_needed = PUSH_CHECKS.iter().any(|c| suite.selects(c.name));
        if !pushes_needed {
            return;
        }

        // Pushes, in an order that makes each check observable.
        let now = Utc::now();
        let v1 = ApiVersion::new(1, 0, 0);
        let tag = |stage, minutes: i64| {
            Tag::new(v1, stage, now - chrono::Duration::minutes(minutes)).expect("now is in range")
        };
        let t1 = tag(Stage::Production, 30);
        let t0 = tag(Stage::Production, 120);
        let t_staging = tag(Stage::Staging, 25);
        let t_wrong = tag(Stage::Production, 20);
        let t2 = Tag::new(
            ApiVersion::new(1, 0, 1),
            Stage::Production,
            now - chrono::Duration::minutes(15),
        )
        .expect("in range");
        let t3 = tag(Stage::Production, 10);

        let first = self.push_generic("g1", &t1).await;
        let prod_first = self.receiver.wait_for("prod", 1, timeout).await;
        let gone_first = self.receiver.wait_for("gone", 1, timeout).await;
        tokio::time::sleep(self.quiet).await;
        let prod_after_first = self.receiver.received("prod");
        let one = match &first {
            Err(e) => Verdict::Error(e.clone()),
            Ok(p) => exactly_one(
                &prod_after_first,
                &p.tag,
                &format!("a push of {} to {}", p.tag, self.generic_registry),
            ),
        };
        suite.record(&ONE_PER_PUSH, ONE_PER_PUSH.name.to_owned(), one);
        let _ = prod_first;

        // The same hook request again, an older tag, a staging tag.
        let again = self.push_generic("g1", &t1).await;
        let older = self.push_generic("g0", &t0).await;
        let staging = self.push_generic("gs", &t_staging).await;
        self.receiver.wait_for("staging", 1, timeout).await;
        // A wrong token.
        let wrong = self.push_wrong_token("gw", &t_wrong).await;
        let wrong_push = wrong.as_ref().ok().map(|(_, _, _, push)| push.clone());
        // Distribution.
        let dist = self.push_distribution(&t2).await;
        self.receiver.wait_for("dist", 1, timeout).await;
        // Retry and 410 take their time.
        let retried = self.receiver.wait_for("retry", 2, timeout).await;
        let busy = self.receiver.wait_for_retry("busy", timeout).await;
        let throttled = self.receiver.wait_for_retry("throttled", timeout).await;
        tokio::time::sleep(self.quiet).await;
        // The 500 subscriber's first retry came, so a broker that retried
        // a 400 would have by now (both answered the same push first).
        let rejected = self.receiver.received("reject");
        let state = self.subscription_state("gone").await;
        let later = self.push_generic("g3", &t3).await;
        self.receiver.wait_for("prod", 2, timeout).await;
        tokio::time::sleep(self.quiet).await;
        // A forged push: the hook says one digest, the registry another.
        let asked_before = self.receiver.registry_requests();
        let forged = self.push_generic_as("gf", &tag(Stage::Production, 5), true).await;
        self.receiver.wait_for("prod", 3, self.quiet * 2).await;
        let asked = self.receiver.registry_requests() > asked_before;

        // Channel order is by version first: 1.0.10 is newer than 1.0.9
        // although its timestamp is older and it sorts lower as a string.
        let v9 = Tag::new(
            ApiVersion::new(1, 0, 9),
            Stage::Production,
            now - chrono::Duration::minutes(8),
        )
        .expect("in range");
        let v10 = Tag::new(
            ApiVersion::new(1, 0, 10),
            Stage::Production,
            now - chrono::Duration::minutes(50),
        )
        .expect("in range");
        let ninth = self.push_generic("g9", &v9).await;
        self.receiver.wait_for_tag("prod", &v9, timeout).await;
        let tenth = self.push_generic("g10", &v10).await;
        self.receiver.wait_for_tag("prod", &v10, timeout).await;
        tokio::time::sleep(self.quiet).await;

        let prod = self.receiver.received("prod");
        // Last, since a broker that delivers it has its channel blocked
        // until that time: a future-dated tag (CB-18), newer in every way.
        let ahead = Tag::new(
            ApiVersion::new(1, 0, 11),
            Stage::Production,
            now + chrono::Duration::hours(1),
        )
        .expect("in range");
        let future = self.push_generic("gfuture", &ahead).await;
        self.receiver.wait_for_tag("prod", &ahead, self.quiet * 2).await;
        // What must not come may come late: wait until the broker reports
        // nothing pending for these subscribers (API-10), not only a fixed
        // window, before judging what did not come.
        let drained = self.drained(&["prod", "staging", "v2", "dist"]).await;
        suite.record(
            &FUTURE,
            FUTURE.name.to_owned(),
            match &future {
                Err(e) => Verdict::Error(e.clone()),
                Ok(p) => match (
                    count_is(
                        &self.receiver.received("prod"),
                        &p.tag,
                        0,
                        &format!("a push of {} (an hour ahead of the runner's clock)", p.tag),
                    ),
                    &drained,
                ) {
                    (Verdict::Pass(evidence), Err(why)) => Verdict::Warn(
                        format!(
                            "{why}: judged after a fixed {:?}, so a late delivery would be missed",
                            self.quiet * 2
                        ),
                        evidence,
                    ),
                    (verdict, _) => verdict,
                },
            },
        );
        suite.record(
            &VERSION_ORDER,
            VERSION_ORDER.name.to_owned(),
            match (&ninth, &tenth) {
                (Ok(_), Ok(_)) => {
                    // Whether each arrived; how often is one-per-push's business.
                    let got: Vec<String> = prod.iter().filter_map(tag_of).collect();
                    let missing: Vec<String> = [v9, v10]
                        .iter()
                        .map(Tag::to_string)
                        .filter(|t| !got.contains(t))
                        .collect();
                    if missing.is_empty() {
                        Verdict::pass()
                    } else {
                        Verdict::fail(
                            format!("{} not delivered", missing.join(" and ")),
                            Evidence::new(
                                format!(
                                    "a push of {v9}, then of {v10} (newer version, older timestamp, lower as a string)"
                                ),
                                "both delivered: channel order is (major, minor, patch, timestamp)",
                                format!("delivered: {}", got.join(", ")),
                            ),
                        )
                    }
                }
                (Err(e), _) | (_, Err(e)) => Verdict::Error(e.clone()),
            },
        );
        suite.record(
            &PERMANENT,
            PERMANENT.name.to_owned(),
            match &first {
                Err(e) => Verdict::Error(e.clone()),
                Ok(p) if retried.len() < 2 => Verdict::Skip(format!(
                    "the 500 subscriber got no retry of {} within --timeout, so nothing shows when a retry would have come",
                    p.tag
                )),
                Ok(p) => no_retry(&rejected, &format!("a push of {} to a subscriber answering 400", p.tag)),
            },
        );
        suite.record(
            &DEDUP,
            DEDUP.name.to_owned(),
            match (&first, &again) {
                (Ok(p), Ok(_)) => repeat_adds_nothing(&prod_after_first, &prod, &p.tag),
                (Err(e), _) | (_, Err(e)) => Verdict::Error(e.clone()),
            },
        );
        suite.record(
            &DOWNGRADE,
            DOWNGRADE.name.to_owned(),
            match &older {
                Ok(p) => count_is(&prod, &p.tag, 0, &format!("{} after {t1} was delivered", p.tag)),
                Err(e) => Verdict::Error(e.clone()),
            },
        );
        let staging_inbox = self.receiver.received("staging");
        suite.record(
            &STAGE,
            STAGE.name.to_owned(),
            match &staging {
                Ok(p) => {
                    let leaked: Vec<String> = prod
                        .iter()
                        .chain(self.receiver.received("v2").iter())
                        .filter_map(tag_of)
                        .filter(|t| t.contains("-staging-"))
                        .collect();
                    let wrong_way: Vec<String> = staging_inbox
                        .iter()
                        .filter_map(tag_of)
                        .filter(|t| !t.contains("-staging-"))
                        .collect();
                    if !leaked.is_empty() || !wrong_way.is_empty() {
                        Verdict::fail(
                            "a tag was delivered to a subscriber of another stage",
                            Evidence::new(
                                format!("pushes of production tags and of {}", p.tag),
                                "staging tags only to the staging subscriber, production tags only to production ones",
                                format!("production subscriber got {leaked:?}; staging subscriber got {wrong_way:?}"),
                            ),
                        )
                    } else {
                        count_is(&staging_inbox, &p.tag, 1, &format!("a push of {}", p.tag))
                    }
                }
                Err(e) => Verdict::Error(e.clone()),
            },
        );
        let v2 = self.receiver.received("v2");
        suite.record(
            &API_VERSION,
            API_VERSION.name.to_owned(),
            if v2.is_empty() {
                Verdict::pass()
            } else {
                Verdict::fail(
                    "a subscriber requiring ^2.0 received 1.x tags",
                    Evidence::new(
                        "pushes of 1.0.x tags",
                        "no callback to the ^2.0 subscriber",
                        v2.iter().filter_map(tag_of).collect::<Vec<_>>().join(", "),
                    ),
                )
            },
        );
        suite.record(
            &WRONG_TOKEN,
            WRONG_TOKEN.name.to_owned(),
            match wrong {
                Err(e) => Verdict::Error(e),
                Ok((request, status, body, _)) => {
                    let delivered = prod.iter().filter_map(tag_of).any(|t| t == t_wrong.to_string());
                    if status != 404 || delivered {
                        Verdict::fail(
                            if delivered {
                                "a hook request with an unknown token was delivered".to_owned()
                            } else {
                                format!("answered {status} instead of 404")
                            },
                            Evidence::new(
                                request,
                                "404 and no delivery",
                                format!("{status} {body}; delivered: {delivered}"),
                            ),
                        )
                    } else {
                        Verdict::pass()
                    }
                }
            },
        );
        let dist_inbox = self.receiver.received("dist");
        suite.record(
            &DISTRIBUTION,
            DISTRIBUTION.name.to_owned(),
            match &dist {
                Ok(p) => exactly_one(
                    &dist_inbox,
                    &p.tag,
                    &format!("Distribution notifications for {}", p.tag),
                ),
                Err(e) => Verdict::Error(e.clone()),
            },
        );
        suite.record(&RETRY, RETRY.name.to_owned(), retry_verdict(&retried));
        suite.record(
            &RETRY_AFTER,
            RETRY_AFTER.name.to_owned(),
            retry_after_verdict(&[(503, &busy), (429, &throttled)], RETRY_AFTER_SECONDS),
        );
        let recheck = match &forged {
            Err(e) => Verdict::Error(e.clone()),
            Ok(p) => {
                let delivered = prod.iter().filter_map(tag_of).any(|t| t == p.tag.to_string());
                if delivered {
                    Verdict::fail(
                        format!("{} was delivered although the registry says it points elsewhere", p.tag),
                        Evidence::new(
                            format!(
                                "a signed generic push of {} with digest {}; the registry API at {} answers another digest",
                                p.tag,
                                p.digest,
                                self.receiver.base()
                            ),
                            "no delivery: the broker re-checks tag -> digest and drops the event",
                            format!(
                                "delivered to the production subscriber; the registry API was {}asked",
                                if asked { "" } else { "never " }
                            ),
                        ),
                    )
                } else if !asked {
                    Verdict::Skip(format!(
                        "the broker never asked the registry API the runner serves at {}: nothing to judge",
                        self.receiver.base()
                    ))
                } else {
                    Verdict::pass()
                }
            }
        };
        suite.record(&RECHECK, RECHECK.name.to_owned(), recheck);
        suite.record(
            &GONE,
            GONE.name.to_owned(),
            match (&state, &later) {
                (_, Err(e)) => Verdict::Error(e.clone()),
                (Err(e), _) => Verdict::Error(e.clone()),
                (Ok(state), Ok(p)) => {
                    let gone = self.receiver.received("gone");
                    let after = count_of(&gone, &p.tag);
                    if gone_first.is_empty() {
                        Verdict::fail(
                            "the subscriber that answers 410 never got a callback",
                            Evidence::new(format!("a push of {t1}"), "one callback, answered 410", "none"),
                        )
                    } else if state != "unsubscribed" || after > 0 {
                        Verdict::fail(
                            "the subscription stayed active after its endpoint answered 410 Gone",
                            Evidence::new(
                                format!("a callback answered 410, then a push of {}", p.tag),
                                "subscription.state unsubscribed and no further callback",
                                format!(
                                    "subscription.state {state}; {after} callback(s) of {} after the 410",
                                    p.tag
                                ),
                            ),
                        )
                    } else {
                        Verdict::pass()
                    }
                }
            },
        );

        // Every callback, every subscriber: signature and event.
        let mut all = Vec::new();
        for subscriber in self.subscribers.values() {
            for received in self.receiver.received(subscriber.inbox) {
                all.push((subscriber.clone(), received));
            }
        }
        // Every push, wanted or not: the event check judges the callbacks'
        // form, the matching checks judge which arrived.
        let mut pushes: Vec<Push> = [
            &first, &older, &staging, &dist, &later, &forged, &ninth, &tenth, &future,
        ]
        .into_iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
        pushes.extend(wrong_push);
        suite.record(&SIGNATURE, SIGNATURE.name.to_owned(), signature_verdict(&all));
        suite.record(&EVENT, EVENT.name.to_owned(), event_verdict(&all, &pushes));
    }

    async fn auth(&mut self, body: &Value) -> Verdict {
        let url = self.target.endpoint("services");
        // API-5: 401 when the token is missing, 403 when it is present but wrong.
        let wrong = Some(format!("wrong-{}", self.run));
        for (token, expected) in [(None, &[401u16][..]), (wrong, &[403][..])] {
            let request = self.write(Method::POST, url.clone(), token.as_deref(), body);
            match request.send(&self.client).await {
                Err(e) => {
                    return Verdict::fail(
                        format!("no answer: {e}"),
                        Evidence::new(request.describe(), "401", "no HTTP answer"),
                    );
                }
                Ok(r) if expected.contains(&r.status.as_u16()) => {}
                Ok(r) => {
                    if let Some(id) = created_id(&r.body) {
                        self.created.push(id);
                    }
                    return Verdict::fail(
                        format!(
                            "a write {} was answered {}",
                            if token.is_some() {
                                "with a wrong token"
                            } else {
                                "without a token"
                            },
                            r.status.as_u16()
                        ),
                        Evidence::new(
                            request.describe(),
                            expected.iter().map(u16::to_string).collect::<Vec<_>>().join(" or "),
                            r.describe(),
                        ),
                    );
                }
            }
        }
        Verdict::pass()
    }

    async fn ssrf(&mut self, body: &Value) -> Verdict {
        let request = self.write(
            Method::POST,
            self.target.endpoint("services"),
            Some(&self.target.admin_token),
            body,
        );
        match request.send(&self.client).await {
            Err(e) => Verdict::fail(
                format!("no answer: {e}"),
                Evidence::new(request.describe(), "4xx", "no HTTP answer"),
            ),
            Ok(r) if r.status.is_client_error() => Verdict::pass(),
            Ok(r) => {
                if let Some(id) = created_id(&r.body) {
                    self.created.push(id);
                }
                if private_receiver(self.receiver.base()) {
                    return Verdict::Skip(format!(
                        "the broker accepted a metadata-address callback, which CB-16 allows when its operator \
                         allowed private callbacks, as a broker that must reach the runner's receiver at {} has \
                         to; give a public --callback-base to judge this check",
                        self.receiver.base()
                    ));
                }
                Verdict::fail(
                    format!("a metadata-address callback was answered {}", r.status.as_u16()),
                    Evidence::new(request.describe(), "4xx: the callback URL is refused", r.describe()),
                )
            }
        }
    }

    async fn read_back(&self) -> Verdict {
        let prod = &self.subscribers["prod"];
        let secrets: Vec<String> = self
            .subscribers
            .values()
            .filter_map(|s| s.secret.as_ref().map(Secret::expose))
            .collect();
        for url in [
            self.target.endpoint(&format!("services/{}", prod.id)),
            self.target.endpoint("services"),
        ] {
            let request = Request::new(Method::GET, url);
            let response = match request.send(&self.client).await {
                Ok(r) => r,
                Err(e) => {
                    return Verdict::fail(
                        format!("no answer: {e}"),
                        Evidence::new(request.describe(), "200", "no HTTP answer"),
                    );
                }
            };
            let text = String::from_utf8_lossy(&response.body).into_owned();
            if !response.status.is_success() {
                return Verdict::fail(
                    format!("answered {}", response.status.as_u16()),
                    Evidence::new(request.describe(), "200", response.describe()),
                );
            }
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let leaked = secrets.iter().any(|s| text.contains(s.as_str())) || has_key(&json, "secret");
            if leaked {
                return Verdict::fail(
                    "a read returned a subscription secret",
                    Evidence::new(request.describe(), "no secret in any read", response.describe()),
                );
            }
            // A hook URL's token is the registry's credential: a public read
            // must not carry it (API-3).
            let hook_tokens = self
                .generic_hook
                .iter()
                .map(|(url, _)| url.as_str())
                .chain(self.distribution_hook.as_deref())
                .filter_map(|url| url.rsplit('/').next())
                .filter(|token| !token.is_empty());
            for token in hook_tokens {
                if text.contains(token) {
                    return Verdict::fail(
                        "a public read returned a hook URL with its token",
                        Evidence::new(
                            request.describe(),
                            "no hook token in a read without the admin token",
                            response.describe(),
                        ),
                    );
                }
            }
            let found = if json.is_array() {
                json.as_array()
                    .into_iter()
                    .flatten()
                    .find(|s| s.get("id").and_then(Value::as_str) == Some(prod.id.as_str()))
                    .cloned()
            } else {
                Some(json.clone())
            };
            let stage = found
                .as_ref()
                .and_then(|s| s.pointer("/subscription/stage"))
                .and_then(Value::as_str);
            if stage != Some("production") {
                return Verdict::fail(
                    format!("service {} does not read back with its subscription", prod.id),
                    Evidence::new(
                        request.describe(),
                        "the service with subscription.stage production",
                        response.describe(),
                    ),
                );
            }
        }
        Verdict::pass()
    }

    /// Waits, at most the timeout, until the broker's status (API-10)
    /// reports no pending delivery for each of `inboxes`; why it could not
    /// tell otherwise.
    async fn drained(&self, inboxes: &[&str]) -> Result<(), String> {
        let deadline = std::time::Instant::now() + self.timeout;
        for inbox in inboxes {
            let Some(subscriber) = self.subscribers.get(inbox) else {
                continue;
            };
            let url = self
                .target
                .endpoint(&format!("services/{}/subscription/status", subscriber.id));
            loop {
                let response = Request::new(Method::GET, url.clone()).send(&self.client).await?;
                let pending = serde_json::from_slice::<Value>(&response.body)
                    .ok()
                    .filter(|_| response.status.is_success())
                    .and_then(|json| json.pointer("/deliveries/pending").and_then(Value::as_u64))
                    .ok_or_else(|| {
                        format!(
                            "GET {url} answered {} without deliveries.pending (API-10)",
                            response.status
                        )
                    })?;
                if pending == 0 {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(format!(
                        "{pending} deliveries to {inbox} still pending after {:?} (API-10)",
                        self.timeout
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn subscription_state(&self, inbox: &str) -> Result<String, String> {
        let id = &self.subscribers.get(inbox).ok_or("not registered")?.id;
        let response = Request::new(Method::GET, self.target.endpoint(&format!("services/{id}")))
            .send(&self.client)
            .await?;
        let json: Value = serde_json::from_slice(&response.body).map_err(|e| format!("GET services/{id}: {e}"))?;
        Ok(json
            .pointer("/subscription/state")
            .and_then(Value::as_str)
            .unwrap_or("(absent)")
            .to_owned())
    }

    async fn cleanup(&mut self) -> Verdict {
        let mut problems = Vec::new();
        for id in std::mem::take(&mut self.created) {
            let url = self.target.endpoint(&format!("services/{id}"));
            let request = Request::new(Method::DELETE, url.clone())
                .header("authorization", format!("Bearer {}", self.target.admin_token));
            match request.send(&self.client).await {
                Ok(r) if r.status.is_success() => {}
                Ok(r) => problems.push(format!("DELETE {url}: {}", r.status)),
                Err(e) => problems.push(format!("DELETE {url}: {e}")),
            }
            match Request::new(Method::GET, url.clone()).send(&self.client).await {
                Ok(r) if r.status.as_u16() == 404 => {}
                Ok(r) => problems.push(format!("GET {url} after DELETE: {}", r.status)),
                Err(e) => problems.push(format!("GET {url} after DELETE: {e}")),
            }
        }
        if problems.is_empty() {
            Verdict::pass()
        } else {
            Verdict::fail(
                "services the runner created are still there",
                Evidence::new(
                    "DELETE then GET of each service the runner created",
                    "2xx, then 404",
                    problems.join("\n"),
                ),
            )
        }
    }
}
