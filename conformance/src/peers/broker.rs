//! A broker after DESIGN.md §4-§6, reduced to what the `broker` target
//! exercises, with switches that break one rule each. In memory, one
//! process, no persistence: a test peer, not a reference.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tagcast_spec::event::{CloudEvent, ImagePublished};
use tagcast_spec::webhook::{self, Secret};
use tagcast_spec::{ApiRequirement, Digest, Repository, Stage, Tag};

/// The admin token of every test broker.
pub const ADMIN_TOKEN: &str = "conformance-admin-token";

/// The rule a broken broker breaks; `None` keeps them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Flaw {
    None,
    /// Writes need no token.
    NoAuth,
    /// A wrong admin token is answered 401, as a missing one (API-5 wants 403).
    WrongTokenIs401,
    /// The answer to a create has no secret.
    OmitsSecret,
    /// Reads return the subscription secret.
    ReturnsSecret,
    /// Accepts any callback URL.
    NoSsrf,
    /// Delivers every callback twice, as two events.
    DeliversTwice,
    /// Delivers a tag dated after its clock (CB-18).
    DeliversFuture,
    /// Retries a 429 or 503 on its own schedule, whatever `Retry-After`
    /// says.
    IgnoresRetryAfter,
    /// Delivers every push twice, as two events, to the first subscription
    /// registered only.
    DeliversTwiceToTheFirst,
    /// Signs callbacks with a secret of its own.
    BadSignature,
    /// Sends callbacks as `application/json`.
    WrongContentType,
    /// Never retries.
    NoRetry,
    /// Keeps delivering after a 410.
    IgnoresGone,
    /// Delivers tags of every stage to every subscriber.
    DeliversCrossStage,
    /// Ignores the api-version requirement.
    IgnoresApiVersion,
    /// Delivers older tags too.
    DeliversDowngrades,
    /// Orders a channel by timestamp alone.
    OrdersByTimestamp,
    /// Orders a channel by the tags' strings.
    OrdersByString,
    /// Retries every failure, a 400 included.
    RetriesPermanent,
    /// Does not deduplicate hook requests, and delivers a tag equal to the
    /// last one again (so the repeated request shows).
    NoDedup,
    /// Accepts hook requests with any token.
    AcceptsAnyToken,
    /// Acknowledges Distribution notifications and does nothing.
    IgnoresDistribution,
    /// Answers DELETE but keeps the service.
    KeepsServices,
    /// Delivers what a hook says without asking the registry API.
    NoRecheck,
    /// Public reads list the hook URLs, tokens included.
    ShowsHookUrls,
    /// Delivers a tag dated after its clock (CB-18), but only
    /// [`LATE_BY`] after the push: later than a runner that waits a fixed
    /// window looks, while its status (API-10) counts it pending.
    DeliversLate,
}

/// How long [`Flaw::DeliversLate`] holds a delivery back.
pub const LATE_BY: Duration = Duration::from_secs(4);

struct Subscription {
    /// The hook as the answer to the write showed it.
    hook: Value,
    images: Vec<String>,
    stage: Stage,
    requirement: ApiRequirement,
    callback: String,
    secret: Secret,
    active: bool,
    last: Option<Tag>,
    /// Deliveries not finished yet (API-10's `pending`).
    pending: Arc<AtomicUsize>,
}

struct Service {
    document: Value,
    subscription: Option<Subscription>,
}

struct HookSource {
    kind: String,
    registry: String,
    secret: Secret,
    api_url: Option<String>,
}

#[derive(Default)]
struct Store {
    services: Vec<(String, Service)>,
    hooks: HashMap<String, HookSource>,
    seen: HashSet<String>,
}

#[derive(Clone)]
struct Broker {
    flaw: Flaw,
    base: Arc<Mutex<String>>,
    store: Arc<Mutex<Store>>,
    client: reqwest::Client,
}

/// Starts a broker; its Service Registry base URL is
/// `http://{addr}/ga4gh/registry/v1`.
pub async fn start(flaw: Flaw) -> SocketAddr {
    let broker = Broker {
        flaw,
        base: Arc::default(),
        store: Arc::default(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a client"),
    };
    let api = Router::new()
        .route(
            "/service-info",
            get(|| async { Json(json!({ "id": "org.example.test-broker" })) }),
        )
        .route("/services", get(list_services).post(create_service))
        .route("/services/{id}", get(get_service).delete(delete_service))
        .route("/services/{id}/subscription/status", get(subscription_status));
    let app = Router::new()
        .nest("/ga4gh/registry/v1", api)
        .route("/hooks/{kind}/{token}", post(receive_hook))
        .with_state(broker.clone());
    let addr = super::serve(app).await;
    *broker.base.lock().unwrap() = format!("http://{addr}");
    addr
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "code": status.as_u16(), "message": message }))).into_response()
}

/// API-5: `None` when the admin token is right; else 401 without one, 403 with a wrong one.
fn refuse_write(broker: &Broker, headers: &HeaderMap) -> Option<Response> {
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if broker.flaw == Flaw::NoAuth || given == Some(&format!("Bearer {ADMIN_TOKEN}")) {
        return None;
    }
    Some(match given {
        Some(_) if broker.flaw != Flaw::WrongTokenIs401 => error(StatusCode::FORBIDDEN, "wrong admin token"),
        _ => error(StatusCode::UNAUTHORIZED, "admin token required"),
    })
}

fn public(broker: &Broker, service: &Service) -> Value {
    let mut document = service.document.clone();
    if let Some(sub) = &service.subscription {
        let mut record = json!({
            "images": sub.images, "stage": sub.stage.as_str(), "apiVersion": sub.requirement.to_string(),
            "callbackUrl": sub.callback, "hooks": [], "state": if sub.active { "active" } else { "unsubscribed" },
        });
        if broker.flaw == Flaw::ShowsHookUrls {
            record["hooks"] = json!([sub.hook.get("url").map(|url| json!({"url": url}))]);
        }
        if broker.flaw == Flaw::ReturnsSecret {
            record["secret"] = Value::String(sub.secret.expose());
        }
        document["subscription"] = record;
    }
    document
}

async fn list_services(State(broker): State<Broker>) -> Json<Value> {
    let store = broker.store.lock().unwrap();
    Json(Value::Array(
        store.services.iter().map(|(_, s)| public(&broker, s)).collect(),
    ))
}

async fn get_service(State(broker): State<Broker>, Path(id): Path<String>) -> Response {
    let store = broker.store.lock().unwrap();
    match store.services.iter().find(|(i, _)| *i == id) {
        Some((_, service)) => Json(public(&broker, service)).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such service"),
    }
}

/// API-10, reduced to the state and the pending count.
async fn subscription_status(State(broker): State<Broker>, Path(id): Path<String>) -> Response {
    let store = broker.store.lock().unwrap();
    let Some(sub) = store
        .services
        .iter()
        .find(|(i, _)| *i == id)
        .and_then(|(_, s)| s.subscription.as_ref())
    else {
        return error(StatusCode::NOT_FOUND, "no such subscription");
    };
    Json(json!({
        "serviceId": id,
        "state": if sub.active { "active" } else { "unsubscribed" },
        "images": [],
        "deliveries": { "pending": sub.pending.load(Ordering::SeqCst), "delivered": 0, "failed": 0, "dead": 0 },
    }))
    .into_response()
}

async fn delete_service(State(broker): State<Broker>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_write(&broker, &headers) {
        return refusal;
    }
    let mut store = broker.store.lock().unwrap();
    if broker.flaw != Flaw::KeepsServices {
        store.services.retain(|(i, _)| *i != id);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn create_service(State(broker): State<Broker>, headers: HeaderMap, Json(mut body): Json<Value>) -> Response {
    if let Some(refusal) = refuse_write(&broker, &headers) {
        return refusal;
    }
    let id = body.get("id").and_then(Value::as_str).unwrap_or("service").to_owned();
    let Some(sub) = body.as_object_mut().and_then(|o| o.remove("subscription")) else {
        return error(StatusCode::BAD_REQUEST, "this test broker wants a subscription");
    };
    let callback = sub["callbackUrl"].as_str().unwrap_or_default().to_owned();
    if broker.flaw != Flaw::NoSsrf && callback.contains("169.254.169.254") {
        return error(
            StatusCode::BAD_REQUEST,
            "callback URL refused: a cloud metadata address",
        );
    }
    let images: Vec<String> = sub["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let Some(stage) = sub["stage"].as_str().and_then(|s| s.parse::<Stage>().ok()) else {
        return error(StatusCode::BAD_REQUEST, "bad stage");
    };
    let requirement = ApiRequirement::parse(sub["apiVersion"].as_str().unwrap_or("^1.0.0")).expect("a requirement");
    let kind = sub
        .pointer("/registry/kind")
        .and_then(Value::as_str)
        .unwrap_or("generic")
        .to_owned();
    let registry = images
        .first()
        .and_then(|i| Repository::parse(i).ok())
        .map(|r| r.domain().to_owned())
        .unwrap_or_default();
    let secret = Secret::generate(rand::random());
    let base = broker.base.lock().unwrap().clone();
    let mut store = broker.store.lock().unwrap();
    let existing = store
        .hooks
        .iter()
        .find(|(_, h)| h.kind == kind && h.registry == registry)
        .map(|(t, _)| t.clone());
    let mut hook = json!({ "kind": kind, "registry": registry });
    let token = match existing {
        Some(token) => token,
        None => {
            let token = format!("{:032x}", rand::random::<u128>());
            let hook_secret = Secret::generate(rand::random());
            if kind == "generic" {
                hook["secret"] = Value::String(hook_secret.expose());
            }
            store.hooks.insert(
                token.clone(),
                HookSource {
                    kind: kind.clone(),
                    registry,
                    secret: hook_secret,
                    api_url: sub.pointer("/registry/url").and_then(Value::as_str).map(str::to_owned),
                },
            );
            token
        }
    };
    hook["url"] = Value::String(format!("{base}/hooks/{kind}/{token}"));
    let service = Service {
        document: body,
        subscription: Some(Subscription {
            hook: json!({"url": hook["url"].clone()}),
            images,
            stage,
            requirement,
            callback,
            secret: secret.clone(),
            active: true,
            last: None,
            pending: Arc::default(),
        }),
    };
    let mut answer = public(&broker, &service);
    answer["subscription"]["hooks"] = json!([hook]);
    if broker.flaw != Flaw::OmitsSecret {
        answer["subscription"]["secret"] = Value::String(secret.expose());
    }
    store.services.retain(|(i, _)| *i != id);
    store.services.push((id, service));
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn receive_hook(
    State(broker): State<Broker>,
    Path((kind, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (registry, secret, api_url) = {
        let store = broker.store.lock().unwrap();
        let source = store.hooks.get(&token).filter(|h| h.kind == kind).or_else(|| {
            (broker.flaw == Flaw::AcceptsAnyToken)
                .then(|| store.hooks.values().find(|h| h.kind == kind))
                .flatten()
        });
        match source {
            Some(source) => (source.registry.clone(), source.secret.clone(), source.api_url.clone()),
            None => return error(StatusCode::NOT_FOUND, "no such hook"),
        }
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut pushes = Vec::new();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if kind == "generic" {
        let now = chrono::Utc::now().timestamp();
        let verified = webhook::verify(
            std::slice::from_ref(&secret),
            header(webhook::HEADER_ID),
            header(webhook::HEADER_TIMESTAMP),
            header(webhook::HEADER_SIGNATURE),
            &body,
            now,
            webhook::DEFAULT_TOLERANCE,
        );
        if verified.is_err() {
            return error(StatusCode::UNAUTHORIZED, "bad signature");
        }
        let id = json["id"].as_str().unwrap_or_default().to_owned();
        let fresh = broker.store.lock().unwrap().seen.insert(id);
        if fresh || broker.flaw == Flaw::NoDedup {
            pushes.push((
                json["repository"].as_str().unwrap_or_default().to_owned(),
                json["tag"].as_str().unwrap_or_default().to_owned(),
                json["digest"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    } else if kind == "distribution" && broker.flaw != Flaw::IgnoresDistribution {
        for event in json["events"].as_array().into_iter().flatten() {
            let target = &event["target"];
            if event["action"] == "push" && target["tag"].is_string() {
                pushes.push((
                    format!("{registry}/{}", target["repository"].as_str().unwrap_or_default()),
                    target["tag"].as_str().unwrap_or_default().to_owned(),
                    target["digest"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    for (repository, tag, digest) in pushes {
        if let Some(api) = api_url.as_deref().filter(|_| broker.flaw != Flaw::NoRecheck) {
            let path = repository.strip_prefix(&format!("{registry}/")).unwrap_or(&repository);
            let answer = broker
                .client
                .head(format!("{api}/v2/{path}/manifests/{tag}"))
                .send()
                .await;
            let confirmed = answer.is_ok_and(|r| {
                r.status().is_success()
                    && r.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()) == Some(digest.as_str())
            });
            if !confirmed {
                continue;
            }
        }
        deliver_push(&broker, &repository, &tag, &digest);
    }
    StatusCode::ACCEPTED.into_response()
}

fn deliver_push(broker: &Broker, repository: &str, tag: &str, digest: &str) {
    let (Ok(tag), Ok(digest), Ok(image)) = (Tag::parse(tag), Digest::parse(digest), Repository::parse(repository))
    else {
        return;
    };
    let flaw = broker.flaw;
    // CB-18: more than 15 minutes ahead of the clock is not delivered.
    let future = tag.timestamp().to_datetime() > chrono::Utc::now() + chrono::Duration::minutes(15);
    if future && !matches!(flaw, Flaw::DeliversFuture | Flaw::DeliversLate) {
        return;
    }
    let delay = if future && flaw == Flaw::DeliversLate {
        LATE_BY
    } else {
        Duration::ZERO
    };
    let mut store = broker.store.lock().unwrap();
    for (position, (id, service)) in store.services.iter_mut().enumerate() {
        let Some(sub) = service.subscription.as_mut() else {
            continue;
        };
        let order = match (flaw, &sub.last) {
            (Flaw::OrdersByTimestamp, Some(last)) if last.stage() == tag.stage() => {
                Some(tag.timestamp().cmp(&last.timestamp()))
            }
            (Flaw::OrdersByString, Some(last)) if last.stage() == tag.stage() => {
                Some(tag.to_string().cmp(&last.to_string()))
            }
            _ => tag.channel_cmp(sub.last.as_ref().unwrap_or(&tag)),
        };
        let newer = match (&sub.last, order) {
            (None, _) => true,
            (Some(_), Some(order)) => order.is_gt() || (flaw == Flaw::NoDedup && order.is_eq()),
            (Some(_), None) => true,
        };
        let matches = sub.images.iter().any(|i| i == repository)
            && (sub.active || flaw == Flaw::IgnoresGone)
            && (tag.stage() == sub.stage || flaw == Flaw::DeliversCrossStage)
            && (sub.requirement.matches(&tag.api_version()) || flaw == Flaw::IgnoresApiVersion)
            && (newer || flaw == Flaw::DeliversDowngrades);
        if !matches {
            continue;
        }
        let previous = sub.last.filter(|l| tag.channel_cmp(l).is_some_and(|o| o.is_gt()));
        sub.last = Some(tag);
        let data = ImagePublished::new(id.clone(), image.clone(), tag, digest.clone(), previous);
        let copies = match flaw {
            Flaw::DeliversTwice => 2,
            Flaw::DeliversTwiceToTheFirst if position == 0 => 2,
            _ => 1,
        };
        for _ in 0..copies {
            let event_id = format!("evt_{:032x}", rand::random::<u128>());
            let event = CloudEvent::new(
                event_id.clone(),
                "http://test-broker.invalid/",
                chrono::Utc::now(),
                data.clone(),
            );
            let body = serde_json::to_vec(&event).expect("an event serializes");
            let secret = if flaw == Flaw::BadSignature {
                Secret::generate(rand::random())
            } else {
                sub.secret.clone()
            };
            let pending = sub.pending.clone();
            pending.fetch_add(1, Ordering::SeqCst);
            let send = send(broker.clone(), id.clone(), sub.callback.clone(), secret, event_id, body);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                send.await;
                pending.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }
}

async fn send(broker: Broker, service: String, url: String, secret: Secret, id: String, body: Vec<u8>) {
    let content_type = if broker.flaw == Flaw::WrongContentType {
        "application/json"
    } else {
        tagcast_spec::event::CONTENT_TYPE
    };
    for attempt in 0..4 {
        let timestamp = chrono::Utc::now().timestamp();
        let response = broker
            .client
            .post(&url)
            .header("content-type", content_type)
            .header(webhook::HEADER_ID, &id)
            .header(webhook::HEADER_TIMESTAMP, timestamp.to_string())
            .header(webhook::HEADER_SIGNATURE, webhook::sign(&secret, &id, timestamp, &body))
            .body(body.clone())
            .send()
            .await;
        // CB-13: a 429 or 503 with Retry-After (seconds) sets the earliest
        // next attempt.
        let retry_after = response.as_ref().ok().and_then(|r| {
            matches!(r.status().as_u16(), 429 | 503)
                .then(|| r.headers().get("retry-after")?.to_str().ok()?.parse::<u64>().ok())
                .flatten()
        });
        let wait = Duration::from_millis(500 * (attempt + 1));
        let wait = match retry_after {
            Some(seconds) if broker.flaw != Flaw::IgnoresRetryAfter => wait.max(Duration::from_secs(seconds)),
            _ => wait,
        };
        match response.map(|r| r.status().as_u16()) {
            Ok(200..=299) => return,
            Ok(410) => {
                let mut store = broker.store.lock().unwrap();
                if let Some((_, s)) = store.services.iter_mut().find(|(i, _)| *i == service) {
                    if let Some(sub) = s.subscription.as_mut() {
                        sub.active = false;
                    }
                }
                return;
            }
            _ if broker.flaw == Flaw::NoRetry => return,
            // CB-14: a 4xx other than 401, 408, 409 and 429 is permanent.
            Ok(code @ 400..=499) if ![401, 408, 409, 429].contains(&code) && broker.flaw != Flaw::RetriesPermanent => {
                return;
            }
            _ => tokio::time::sleep(wait).await,
        }
    }
}
