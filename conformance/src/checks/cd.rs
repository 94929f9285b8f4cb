//! Target `cd`: a live CD endpoint (`spec/callbacks.md`, DESIGN.md §6).
//!
//! The runner plays the broker: it signs callbacks with the endpoint's
//! secret and sends valid, duplicate, forged, stale, malformed and oversized
//! ones, and checks each answer.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use hmac::{Hmac, Mac};
use reqwest::{Client, Method};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tagcast_spec::event::{CONTENT_TYPE, CloudEvent, ImagePublished};
use tagcast_spec::webhook::{self, Secret};
use tagcast_spec::{ApiVersion, Digest, Repository, Stage, Tag};
use url::Url;

use crate::check::{Check, Evidence, Verdict};
use crate::exchange::{Request, Response, client};
use crate::outcome::Level;
use crate::suite::Suite;

/// "Answer 2xx within 10 s and upgrade asynchronously" (DESIGN.md §6).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How far off the stale and future timestamps are: one minute beyond the
/// 5-minute tolerance.
pub const SKEWED_BY: i64 = 6 * 60;

/// The size of the oversized body: twice the 1 MiB a CD endpoint needs to
/// accept.
pub const OVERSIZED_BYTES: usize = 2 * 1024 * 1024;

const REACHABLE: Check = Check {
    name: "cd/reachable",
    requirement: "CB-9",
    level: Level::Must,
    description: "the endpoint answers HTTP at the URL given",
};
const VALID: Check = Check {
    name: "cd/delivery/valid",
    requirement: "CB-9",
    level: Level::Must,
    description: "a valid signed callback is answered 2xx within 10 s",
};
const DUPLICATE: Check = Check {
    name: "cd/delivery/duplicate",
    requirement: "CB-7",
    level: Level::Must,
    description: "the same event again (same webhook-id and body, fresh timestamp and signature) is answered 2xx",
};
const IDEMPOTENT: Check = Check {
    name: "cd/delivery/idempotent",
    requirement: "CB-7",
    level: Level::Must,
    description: "the duplicate changes nothing the endpoint's status (--status-url) shows",
};
const DOWNGRADE: Check = Check {
    name: "cd/delivery/downgrade",
    requirement: "CB-8",
    level: Level::Must,
    description: "an authentic callback of a tag older than the one applied changes nothing the endpoint's status (--status-url) shows",
};
const BAD_SIGNATURE: Check = Check {
    name: "cd/signature/bad",
    requirement: "CB-5",
    level: Level::Must,
    description: "a callback signed with another secret is answered 401",
};
const MISSING_SIGNATURE: Check = Check {
    name: "cd/signature/missing",
    requirement: "CB-9",
    level: Level::Must,
    description: "a callback without webhook-signature is answered 401",
};
const BODY_ONLY: Check = Check {
    name: "cd/signature/body-only",
    requirement: "CB-5",
    level: Level::Must,
    description: "a callback whose signature is an HMAC of the body alone (GitHub style) is answered 401",
};
const STALE: Check = Check {
    name: "cd/signature/stale",
    requirement: "CB-6",
    level: Level::Must,
    description: "a correctly signed callback whose webhook-timestamp is 6 minutes old is answered 401",
};
const FUTURE: Check = Check {
    name: "cd/signature/future",
    requirement: "CB-6",
    level: Level::Must,
    description: "a correctly signed callback whose webhook-timestamp is 6 minutes ahead is answered 401",
};
const TIMESTAMP_FORMAT: Check = Check {
    name: "cd/signature/timestamp-format",
    requirement: "CB-6",
    level: Level::Must,
    description: "a callback whose webhook-timestamp is not an integer (<now>.5), signed over that text, is answered 401",
};
const ROTATION: Check = Check {
    name: "cd/signature/rotation",
    requirement: "CB-5",
    level: Level::Must,
    description: "a callback whose second signature is right and first is not (key rotation) is answered 2xx",
};
const MALFORMED: Check = Check {
    name: "cd/body/malformed",
    requirement: "CB-9",
    level: Level::Must,
    description: "a correctly signed body that is not JSON is answered 400",
};
const SCHEMA: Check = Check {
    name: "cd/body/schema",
    requirement: "CB-9",
    level: Level::Must,
    description: "each schema-invalid event of conformance/vectors/events, correctly signed, is answered 400",
};
const SEMANTICS: Check = Check {
    name: "cd/body/semantics",
    requirement: "CB-2",
    level: Level::Must,
    description: "each event of conformance/vectors/events that the schema accepts but the contract does not (derived members that disagree with the tag, a subject other than data.reference, a previousTag of another stage or newer), correctly signed, is answered 400",
};
const CONTENT_TYPE_CHECK: Check = Check {
    name: "cd/body/content-type",
    requirement: "CB-9",
    level: Level::Must,
    description: "a correctly signed event sent as text/plain is answered 415",
};
const TOO_LARGE: Check = Check {
    name: "cd/body/too-large",
    requirement: "CB-9",
    level: Level::Must,
    description: "a correctly signed 2 MiB body is answered 413",
};
const HANDSHAKE: Check = Check {
    name: "cd/handshake",
    requirement: "CB-17",
    level: Level::Should,
    description: "OPTIONS with WebHook-Request-Origin is answered 2xx with WebHook-Allowed-Origin and WebHook-Allowed-Rate",
};

/// The checks of this target.
pub(crate) const CHECKS: &[&Check] = &[
    &REACHABLE,
    &VALID,
    &DUPLICATE,
    &IDEMPOTENT,
    &DOWNGRADE,
    &BAD_SIGNATURE,
    &MISSING_SIGNATURE,
    &BODY_ONLY,
    &STALE,
    &FUTURE,
    &TIMESTAMP_FORMAT,
    &ROTATION,
    &MALFORMED,
    &SCHEMA,
    &SEMANTICS,
    &CONTENT_TYPE_CHECK,
    &TOO_LARGE,
    &HANDSHAKE,
];

/// A bearer token for `--status-url`; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusToken(pub String);

impl std::fmt::Debug for StatusToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusToken(<redacted>)")
    }
}

/// A live CD endpoint to check.
#[derive(Debug, Clone)]
pub struct CdTarget {
    /// Where callbacks are POSTed.
    pub url: Url,
    /// The endpoint's secret, `whsec_…`.
    pub secret: Secret,
    /// The repository the test events name.
    pub image: Repository,
    /// The stage of the test events' tags.
    pub stage: Stage,
    /// The api-version of the test events' tags.
    pub api_version: ApiVersion,
    /// The `serviceId` of the test events.
    pub service_id: String,
    /// A URL whose JSON answer shows what the endpoint applied; a duplicate
    /// must not change it. Without it, idempotency is skipped.
    pub status_url: Option<Url>,
    /// A JSON pointer into the status answer to compare instead of the whole
    /// answer (for statuses with clocks or counters of requests).
    pub status_pointer: Option<String>,
    /// Sent as `Authorization: Bearer` with the status request (the
    /// reference deployer's `--admin-token`, which it accepts only there).
    pub status_token: Option<StatusToken>,
    /// The `WebHook-Request-Origin` of the handshake.
    pub origin: String,
}

impl CdTarget {
    /// The endpoint at `url` with `secret`, test events for
    /// `docker.io/tagcast/conformance` `1.0.0` `production`.
    pub fn new(url: Url, secret: Secret) -> Self {
        Self {
            url,
            secret,
            image: Repository::parse("docker.io/tagcast/conformance").expect("a valid repository"),
            stage: Stage::Production,
            api_version: ApiVersion::new(1, 0, 0),
            service_id: "tagcast-conformance".into(),
            status_url: None,
            status_pointer: None,
            status_token: None,
            origin: "tagcast-conformance.invalid".into(),
        }
    }

    /// A new, signed-ready event with a fresh id and the current time as
    /// the tag's time.
    fn event(&self) -> (String, Vec<u8>) {
        self.event_built(Utc::now())
    }

    /// An event like [`Self::event`] whose tag was built at `built`.
    fn event_built(&self, built: chrono::DateTime<Utc>) -> (String, Vec<u8>) {
        let id = format!("conformance-{}", uuid::Uuid::new_v4().simple());
        let now = Utc::now();
        let tag = Tag::new(self.api_version, self.stage, built).expect("within 2000-2099");
        let digest = Digest::parse(&format!("sha256:{:x}", Sha256::digest(id.as_bytes()))).expect("a sha256 digest");
        let data = ImagePublished::new(self.service_id.clone(), self.image.clone(), tag, digest, None);
        let event = CloudEvent::new(id.clone(), "https://tagcast-conformance.invalid/", now, data);
        (id, serde_json::to_vec(&event).expect("an event serializes"))
    }
}

/// A callback request: the body, signed (or not) as the case needs.
struct Callback<'a> {
    target: &'a CdTarget,
    id: String,
    timestamp: i64,
    /// A `webhook-timestamp` sent as this text instead of `timestamp`.
    raw_timestamp: Option<String>,
    body: Vec<u8>,
    content_type: &'static str,
    signature: Option<String>,
}

impl<'a> Callback<'a> {
    fn new(target: &'a CdTarget, id: String, body: Vec<u8>) -> Self {
        let timestamp = Utc::now().timestamp();
        let signature = Some(webhook::sign(&target.secret, &id, timestamp, &body));
        Self {
            target,
            id,
            timestamp,
            raw_timestamp: None,
            body,
            content_type: CONTENT_TYPE,
            signature,
        }
    }

    fn valid(target: &'a CdTarget) -> Self {
        let (id, body) = target.event();
        Self::new(target, id, body)
    }

    /// Re-signs for another timestamp.
    fn at(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self.signature = Some(webhook::sign(&self.target.secret, &self.id, timestamp, &self.body));
        self
    }

    fn request(&self) -> Request {
        let mut request = Request::new(Method::POST, self.target.url.clone())
            .header("content-type", self.content_type)
            .header(webhook::HEADER_ID, self.id.clone())
            .header(
                webhook::HEADER_TIMESTAMP,
                self.raw_timestamp.clone().unwrap_or_else(|| self.timestamp.to_string()),
            );
        if let Some(signature) = &self.signature {
            request = request.header(webhook::HEADER_SIGNATURE, signature.clone());
        }
        request.body(self.body.clone())
    }
}

/// Sends `request` and compares the status with `expected` (a status code
/// or a class such as 200..=299).
async fn expect_status(
    client: &Client,
    request: &Request,
    expected: std::ops::RangeInclusive<u16>,
    what: &str,
) -> (Verdict, Option<Response>) {
    let expected_text = if expected.start() == expected.end() {
        expected.start().to_string()
    } else {
        "2xx".to_owned()
    };
    match request.send(client).await {
        Err(e) => (
            Verdict::fail(
                format!("no answer: {e}"),
                Evidence::new(request.describe(), &expected_text, "no HTTP answer"),
            ),
            None,
        ),
        Ok(response) if expected.contains(&response.status.as_u16()) => (Verdict::pass(), Some(response)),
        Ok(response) => (
            Verdict::fail(
                format!(
                    "{what} was answered {} instead of {expected_text}",
                    response.status.as_u16()
                ),
                Evidence::new(request.describe(), expected_text, response.describe()),
            ),
            Some(response),
        ),
    }
}

const SUCCESS: std::ops::RangeInclusive<u16> = 200..=299;

pub(crate) async fn run(target: &CdTarget, suite: &mut Suite<'_>) -> String {
    let subject = target.url.to_string();
    let client = client(suite.config().timeout);

    let start = Instant::now();
    let probe = Request::new(Method::GET, target.url.clone());
    if let Err(e) = probe.send(&client).await {
        suite.record_always(
            &REACHABLE,
            Verdict::Error(format!("cannot reach the endpoint: {e}")),
            start,
        );
        return subject;
    }
    suite.record(&REACHABLE, REACHABLE.name.to_owned(), Verdict::pass());

    let status_before = match &target.status_url {
        Some(_) if suite.selects(IDEMPOTENT.name) => Some(read_status(&client, target).await),
        _ => None,
    };

    // The valid callback, then the same event again.
    let first = Callback::valid(target);
    let outcome = suite
        .run(&VALID, async {
            let request = first.request();
            match expect_status(&client, &request, SUCCESS, "a valid callback").await {
                (Verdict::Pass(_), Some(response)) if response.elapsed > ANSWER_WITHIN => Verdict::fail(
                    format!("answered after {} ms, more than 10 s", response.elapsed.as_millis()),
                    Evidence::new(request.describe(), "2xx within 10 s", response.describe()),
                ),
                (verdict, _) => verdict,
            }
        })
        .await;
    let first_passed = outcome.is_none_or(|o| o == crate::Outcome::Pass);

    let status_after_first = match status_before {
        Some(_) => Some(settled_status(&client, target, suite.config().timeout).await),
        None => None,
    };
    let duplicate = Callback::new(target, first.id.clone(), first.body.clone());
    if first_passed {
        suite
            .run(&DUPLICATE, async {
                expect_status(&client, &duplicate.request(), SUCCESS, "a duplicate callback")
                    .await
                    .0
            })
            .await;
    } else {
        suite.record(
            &DUPLICATE,
            DUPLICATE.name.to_owned(),
            Verdict::Skip("the valid callback was not accepted".into()),
        );
    }
    let idempotency = match (&target.status_url, status_after_first) {
        (None, _) | (_, None) => Verdict::Skip("no --status-url to observe what the endpoint applied".into()),
        (Some(_), _) if !first_passed => Verdict::Skip("the valid callback was not accepted".into()),
        (Some(url), Some(Err(e))) => Verdict::Error(format!("cannot read the status at {url}: {e}")),
        (Some(url), Some(Ok(before))) => match settled_status(&client, target, suite.config().timeout).await {
            Err(e) => Verdict::Error(format!("cannot read the status at {url}: {e}")),
            Ok(after) if after == before => Verdict::pass(),
            Ok(after) => Verdict::fail(
                "the duplicate changed the endpoint's status: it was applied twice",
                Evidence::new(
                    format!(
                        "{}\n(webhook-id {} a second time)",
                        duplicate.request().describe(),
                        duplicate.id
                    ),
                    format!("status unchanged: {before}"),
                    format!("status now: {after}"),
                ),
            ),
        },
    };
    suite.record(&IDEMPOTENT, IDEMPOTENT.name.to_owned(), idempotency);

    // CB-8: a tag older than the one applied is not applied.
    let downgrade = match &target.status_url {
        None => Verdict::Skip("no --status-url to observe what the endpoint applied".into()),
        Some(_) if !first_passed => Verdict::Skip("the valid callback was not accepted".into()),
        Some(url) => match settled_status(&client, target, suite.config().timeout).await {
            Err(e) => Verdict::Error(format!("cannot read the status at {url}: {e}")),
            Ok(before) => {
                let (id, body) = target.event_built(Utc::now() - chrono::Duration::days(1));
                let older = Callback::new(target, id, body);
                let request = older.request();
                match request.send(&client).await {
                    Err(e) => Verdict::fail(
                        format!("no answer: {e}"),
                        Evidence::new(request.describe(), "an answer", "no HTTP answer"),
                    ),
                    Ok(_) => match settled_status(&client, target, suite.config().timeout).await {
                        Err(e) => Verdict::Error(format!("cannot read the status at {url}: {e}")),
                        Ok(after) if after == before => Verdict::pass(),
                        Ok(after) => Verdict::fail(
                            "a tag older than the applied one was applied: a downgrade",
                            Evidence::new(
                                format!("{}\n(a tag built a day before the applied one)", request.describe()),
                                format!("status unchanged: {before}"),
                                format!("status now: {after}"),
                            ),
                        ),
                    },
                }
            }
        },
    };
    suite.record(&DOWNGRADE, DOWNGRADE.name.to_owned(), downgrade);

    // Forged and replayed signatures.
    suite
        .run(&BAD_SIGNATURE, async {
            let mut callback = Callback::valid(target);
            let other = Secret::generate(rand::random());
            callback.signature = Some(webhook::sign(&other, &callback.id, callback.timestamp, &callback.body));
            expect_status(
                &client,
                &callback.request(),
                401..=401,
                "a callback signed with another secret",
            )
            .await
            .0
        })
        .await;
    suite
        .run(&MISSING_SIGNATURE, async {
            let mut callback = Callback::valid(target);
            callback.signature = None;
            expect_status(&client, &callback.request(), 401..=401, "a callback without signature")
                .await
                .0
        })
        .await;
    suite
        .run(&BODY_ONLY, async {
            let mut callback = Callback::valid(target);
            let mut mac = Hmac::<Sha256>::new_from_slice(target.secret.as_bytes()).expect("HMAC takes any key");
            mac.update(&callback.body);
            callback.signature = Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())));
            expect_status(&client, &callback.request(), 401..=401, "a body-only HMAC signature")
                .await
                .0
        })
        .await;
    suite
        .run(&STALE, async {
            let callback = Callback::valid(target).at(Utc::now().timestamp() - SKEWED_BY);
            expect_status(&client, &callback.request(), 401..=401, "a timestamp 6 minutes old")
                .await
                .0
        })
        .await;
    suite
        .run(&FUTURE, async {
            let callback = Callback::valid(target).at(Utc::now().timestamp() + SKEWED_BY);
            expect_status(&client, &callback.request(), 401..=401, "a timestamp 6 minutes ahead")
                .await
                .0
        })
        .await;
    suite
        .run(&TIMESTAMP_FORMAT, async {
            // Signed over the exact text sent, so that only the format is wrong.
            let mut callback = Callback::valid(target);
            let text = format!("{}.5", Utc::now().timestamp());
            let mut mac = Hmac::<Sha256>::new_from_slice(target.secret.as_bytes()).expect("HMAC takes any key");
            mac.update(format!("{}.{text}.", callback.id).as_bytes());
            mac.update(&callback.body);
            callback.signature = Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())));
            callback.raw_timestamp = Some(text);
            expect_status(
                &client,
                &callback.request(),
                401..=401,
                "a fractional webhook-timestamp",
            )
            .await
            .0
        })
        .await;
    suite
        .run(&ROTATION, async {
            let mut callback = Callback::valid(target);
            let old = Secret::generate(rand::random());
            callback.signature = Some(format!(
                "{} {}",
                webhook::sign(&old, &callback.id, callback.timestamp, &callback.body),
                webhook::sign(&target.secret, &callback.id, callback.timestamp, &callback.body)
            ));
            expect_status(&client, &callback.request(), SUCCESS, "a rotation signature list")
                .await
                .0
        })
        .await;

    // Bodies.
    suite
        .run(&MALFORMED, async {
            let (id, body) = target.event();
            let cut = body.len() / 2;
            let callback = Callback::new(target, id, body[..cut].to_vec());
            expect_status(&client, &callback.request(), 400..=400, "a body that is not JSON")
                .await
                .0
        })
        .await;
    suite.run(&SCHEMA, invalid_events(&client, target, false)).await;
    suite.run(&SEMANTICS, invalid_events(&client, target, true)).await;
    suite
        .run(&CONTENT_TYPE_CHECK, async {
            let mut callback = Callback::valid(target);
            callback.content_type = "text/plain";
            expect_status(&client, &callback.request(), 415..=415, "a text/plain callback")
                .await
                .0
        })
        .await;
    suite
        .run(&TOO_LARGE, async {
            let (id, _) = target.event();
            let mut body = Vec::with_capacity(OVERSIZED_BYTES);
            body.extend_from_slice(b"{\"padding\":\"");
            body.resize(OVERSIZED_BYTES - 2, b'x');
            body.extend_from_slice(b"\"}");
            let callback = Callback::new(target, id, body);
            // An endpoint may answer 413 before reading the body and then
            // close the connection: do not leave it in the pool for the
            // next check.
            let request = callback.request().header("connection", "close");
            expect_status(&client, &request, 413..=413, "a 2 MiB body").await.0
        })
        .await;

    suite.run(&HANDSHAKE, handshake(&client, target)).await;
    subject
}

/// Sends every event vector that the schema rejects, signed, and expects
/// 400 for each.
/// Sends each invalid event vector that the schema accepts (`schema_valid`)
/// or refuses, correctly signed; each must be answered 400.
async fn invalid_events(client: &Client, target: &CdTarget, schema_valid: bool) -> Verdict {
    let mut wrong = Vec::new();
    let mut sent = 0;
    let kind = if schema_valid {
        "schema-valid but invalid"
    } else {
        "schema-invalid"
    };
    for (file, vector) in crate::vectors::events() {
        if vector.valid || vector.schema_valid != schema_valid {
            continue;
        }
        sent += 1;
        // The event's own id is the webhook-id where it is a valid one, so
        // that only the body is at fault.
        let id = vector
            .event
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .map_or_else(
                || format!("conformance-{}", uuid::Uuid::new_v4().simple()),
                str::to_owned,
            );
        let body = serde_json::to_vec(&vector.event).expect("JSON serializes");
        let callback = Callback::new(target, id, body);
        let request = callback.request();
        match expect_status(client, &request, 400..=400, &vector.description).await {
            (Verdict::Pass(_), _) => {}
            (_, Some(response)) => wrong.push((file, vector.description, request, response.describe())),
            (_, None) => wrong.push((file, vector.description, request, "no HTTP answer".to_owned())),
        }
    }
    match wrong.first() {
        None => Verdict::pass(),
        Some((_, _, request, _)) => {
            let received = wrong
                .iter()
                .map(|(file, description, _, answer)| {
                    format!("{file} ({description}): {}", answer.lines().next().unwrap_or(""))
                })
                .collect::<Vec<_>>()
                .join("\n");
            Verdict::fail(
                format!("{} of {sent} {kind} events were not answered 400", wrong.len()),
                Evidence::new(
                    format!("(first of them)\n{}", request.describe()),
                    "400 for each",
                    received,
                ),
            )
        }
    }
}

/// The CloudEvents webhook validation handshake.
async fn handshake(client: &Client, target: &CdTarget) -> Verdict {
    let request = Request::new(Method::OPTIONS, target.url.clone())
        .header("WebHook-Request-Origin", target.origin.clone())
        .header("WebHook-Request-Rate", "120");
    let expected = format!(
        "2xx with WebHook-Allowed-Origin: {} (or *) and WebHook-Allowed-Rate",
        target.origin
    );
    let response = match request.send(client).await {
        Ok(response) => response,
        Err(e) => {
            return Verdict::fail(
                format!("no answer: {e}"),
                Evidence::new(request.describe(), expected, "no HTTP answer"),
            );
        }
    };
    let origin = response.header("WebHook-Allowed-Origin");
    let rate = response.header("WebHook-Allowed-Rate");
    let problem = if !response.status.is_success() {
        Some(format!("the handshake was answered {}", response.status.as_u16()))
    } else if !origin.is_some_and(|o| o == target.origin || o == "*") {
        Some(format!("WebHook-Allowed-Origin is {origin:?}"))
    } else if !rate.is_some_and(|r| r == "*" || r.parse::<u32>().is_ok()) {
        Some(format!("a rate was requested but WebHook-Allowed-Rate is {rate:?}"))
    } else {
        None
    };
    match problem {
        None => Verdict::pass(),
        Some(problem) => {
            let received = format!(
                "{}\nWebHook-Allowed-Origin: {}\nWebHook-Allowed-Rate: {}",
                response.describe(),
                origin.unwrap_or("(absent)"),
                rate.unwrap_or("(absent)")
            );
            Verdict::fail(problem, Evidence::new(request.describe(), expected, received))
        }
    }
}

async fn read_status(client: &Client, target: &CdTarget) -> Result<Value, String> {
    let url = target.status_url.clone().expect("called with a status URL");
    let mut request = Request::new(Method::GET, url);
    if let Some(token) = &target.status_token {
        request = request.header("Authorization", format!("Bearer {}", token.0));
    }
    let response = request.send(client).await?;
    if !response.status.is_success() {
        return Err(format!("answered {}", response.status));
    }
    let value: Value = serde_json::from_slice(&response.body).map_err(|e| format!("not JSON: {e}"))?;
    match &target.status_pointer {
        None => Ok(value),
        Some(pointer) => value
            .pointer(pointer)
            .cloned()
            .ok_or_else(|| format!("no {pointer} in the status")),
    }
}

/// The status once the endpoint's asynchronous work has settled: the same
/// answer twice, 500 ms apart (or the last answer when `timeout` runs out).
async fn settled_status(client: &Client, target: &CdTarget, timeout: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    let mut last = read_status(client, target).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let next = read_status(client, target).await?;
        if next == last || Instant::now() >= deadline {
            return Ok(next);
        }
        last = next;
    }
}
