//! Target `broker`: a live broker, end to end (`spec/service-api.md`,
//! `spec/callbacks.md`, DESIGN.md §4-§6).
//!
//! The runner registers test services whose callbacks go to its own
//! receiver, plays the container registry (the `generic` and
//! `distribution` hooks), and checks what arrives — then deletes what it
//! created. One module per spec area holds its checks, one function each:
//! `registration`, `matching`, `delivery`, `hooks`; `sequence` makes the
//! pushes they judge.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Client, Method};
use serde_json::{Value, json};
use tagcast_spec::webhook::Secret;
use tagcast_spec::{Stage, Tag};
use url::Url;

use crate::check::{Check, Evidence, Verdict};
use crate::exchange::{Request, client};
use crate::outcome::Level;
use crate::receiver::Receiver;
use crate::suite::Suite;

macro_rules! check {
    ($id:ident, $name:literal, $req:literal, $desc:literal) => {
        pub(super) const $id: Check = Check {
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

mod delivery;
mod hooks;
mod matching;
mod pushes;
mod registration;
mod sequence;
mod verdicts;

use delivery::{EVENT, GONE, ONE_PER_PUSH, PERMANENT, RETRY, RETRY_AFTER, SIGNATURE};
use hooks::{DEDUP, DISTRIBUTION, RECHECK, WRONG_TOKEN};
use matching::{API_VERSION, DOWNGRADE, FUTURE, STAGE, VERSION_ORDER};
use registration::{AUTH, CLEANUP, CREATE, READ_BACK, SSRF};

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

        let created = self.subscribe().await;
        let created_ok = matches!(created, Verdict::Pass(_));
        suite.record(&CREATE, CREATE.name.to_owned(), created);
        if !created_ok || !self.subscribers.contains_key("prod") {
            for check in std::iter::once(&&READ_BACK).chain(PUSH_CHECKS) {
                suite.record(
                    check,
                    check.name.to_owned(),
                    Verdict::Skip("the test services could not be registered".into()),
                );
            }
            return;
        }
        let verdict = self.read_back().await;
        suite.record(&READ_BACK, READ_BACK.name.to_owned(), verdict);
        if !PUSH_CHECKS.iter().any(|c| suite.selects(c.name)) {
            return;
        }

        let o = self.push_sequence().await;
        let (signature, event) = self.signature_and_event(&o);
        let verdicts = [
            (&ONE_PER_PUSH, self.one_per_push(&o)),
            (&FUTURE, self.future(&o)),
            (&VERSION_ORDER, Self::version_order(&o)),
            (&PERMANENT, Self::permanent(&o)),
            (&DEDUP, Self::dedup(&o)),
            (&DOWNGRADE, Self::downgrade(&o)),
            (&STAGE, self.stage(&o)),
            (&API_VERSION, self.api_version()),
            (&WRONG_TOKEN, Self::wrong_token(&o)),
            (&DISTRIBUTION, self.distribution(&o)),
            (&RETRY, Self::retry(&o)),
            (&RETRY_AFTER, Self::retry_after(&o)),
            (&RECHECK, self.recheck(&o)),
            (&GONE, self.gone(&o)),
            (&SIGNATURE, signature),
            (&EVENT, event),
        ];
        for (check, verdict) in verdicts {
            suite.record(check, check.name.to_owned(), verdict);
        }
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
}
