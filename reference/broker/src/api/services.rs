//! The GA4GH Service Registry (read) and the cloud-registry writes, with
//! the `subscription` extension (DESIGN.md §4).

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::Rng as _;
use serde_json::{Map, Value, json};
use tagcast_spec::error_body::ErrorCode;
use tagcast_spec::service::{RegisteredService, ServiceRegistration, ServiceType};
use tagcast_spec::subscription::{Hook, RegistryKind, SubscriptionRecord, SubscriptionState};
use tagcast_spec::webhook::Secret;

use super::{ApiError, BASE_PATH, is_admin, require_admin};
use crate::AppState;
use crate::inbound::{self, SERVED_KINDS};
use crate::ssrf;
use crate::store::{NewHookSource, NewService, NewSubscription, StoredService, new_id};

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/service-info", get(get_service_info))
        .route("/services", get(list_services).post(create_service))
        .route("/services/types", get(list_service_types))
        .route(
            "/services/{service_id}",
            get(get_service).put(replace_service).delete(delete_service),
        )
}

async fn get_service_info(State(state): State<AppState>) -> Response {
    axum::Json(json!({
        "id": "org.elixir-cloud.tagcast.broker",
        "name": "tagcast broker",
        "type": {"group": "org.ga4gh", "artifact": "service-registry", "version": "1.0.0"},
        "description": "GA4GH Service Registry with the tagcast subscription extension: container registry push webhooks in, signed callbacks to subscribed deployments out.",
        "organization": {"name": "ELIXIR Cloud", "url": "https://elixir-cloud.dcc.sib.swiss"},
        "documentationUrl": "https://github.com/elixir-cloud-aai/tagcast/tree/main/reference/broker",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": {
            "subscription": {
                "version": "1",
                "hookKinds": SERVED_KINDS.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "callbackType": tagcast_spec::event::IMAGE_PUBLISHED_TYPE,
            }
        },
        "url": format!("{}{BASE_PATH}", state.config.public_url),
    }))
    .into_response()
}

/// The largest page of `GET /services`.
pub const MAX_PAGE: i64 = 1000;
/// The page size when only a cursor is given.
pub const DEFAULT_PAGE: i64 = 100;

/// `?limit=&cursor=` of `GET /services`: `None` without either (the whole
/// list, as GA4GH defines it).
fn page(query: Option<&str>) -> Result<Option<(i64, Option<String>)>, ApiError> {
    let mut limit = None;
    let mut cursor = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "limit" => limit = Some(value.into_owned()),
            "cursor" => cursor = Some(value.into_owned()),
            _ => {}
        }
    }
    if limit.is_none() && cursor.is_none() {
        return Ok(None);
    }
    let limit = match limit {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("query parameter limit {text:?} must be an integer from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let after = cursor
        .map(|text| {
            decode_cursor(&text).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("query parameter cursor {text:?} is not a cursor this broker issued (take it from the Link header's rel=\"next\")"),
                )
            })
        })
        .transpose()?;
    Ok(Some((limit, after)))
}

/// A cursor: opaque to clients (base64url of a version and the last id
/// listed), so that its form may change.
fn encode_cursor(last_id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("s1:{last_id}"))
}

fn decode_cursor(text: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("s1:").map(str::to_owned)
}

/// GA4GH `GET /services`: without parameters every service (the plain
/// list, fine for a small registry); with `?limit=` (and the `cursor` of a
/// previous page) one page in id order, the next page's URL in a
/// `Link: <…>; rel="next"` header (RFC 8288), absent on the last page. The
/// body is the same array either way, so GA4GH clients read it unchanged.
async fn list_services(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = page(query.as_deref())?;
    let admin = is_admin(&state, &headers);
    let (stored, next) = match &page {
        None => (state.store.services().await?, None),
        Some((limit, after)) => {
            let mut stored = state.store.services_page(after.as_deref(), limit + 1).await?;
            let more = i64::try_from(stored.len()).unwrap_or(i64::MAX) > *limit;
            stored.truncate(usize::try_from(*limit).unwrap_or(usize::MAX));
            let next = more.then(|| stored.last()).flatten().map(|last| {
                format!(
                    "<{}{BASE_PATH}/services?limit={limit}&cursor={}>; rel=\"next\"",
                    state.config.public_url,
                    encode_cursor(&last.id)
                )
            });
            (stored, next)
        }
    };
    let mut out = Vec::with_capacity(stored.len());
    for stored in &stored {
        out.push(render(&state, stored, admin).await?);
    }
    let mut response = axum::Json(out).into_response();
    if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(axum::http::header::LINK, next);
    }
    Ok(response)
}

async fn list_service_types(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut types = BTreeSet::new();
    for stored in state.store.services().await? {
        let document: Value = serde_json::from_str(&stored.document).unwrap_or(Value::Null);
        if let Ok(t) = serde_json::from_value::<ServiceType>(document["type"].clone()) {
            types.insert(t);
        }
    }
    Ok(axum::Json(types.into_iter().collect::<Vec<_>>()).into_response())
}

async fn get_service(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(service_id): Path<String>,
) -> Result<Response, ApiError> {
    let stored = state
        .store
        .service(&service_id)
        .await?
        .ok_or_else(|| not_found(&service_id))?;
    let admin = is_admin(&state, &headers);
    Ok(axum::Json(render(&state, &stored, admin).await?).into_response())
}

async fn create_service(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_content_type(&headers)?;
    let body = body.map_err(super::body_rejection)?;
    let mut value = parse_json(&body)?;
    if value.get("id").is_none() {
        value["id"] = Value::String(new_id());
    }
    let prepared = prepare(&state, value, None).await?;
    let id = prepared.service.id.clone();
    state.store.insert_service(prepared.service.clone()).await?;
    let answer = answer(&state, &prepared).await?;
    state.manager.wake.notify_one();
    tracing::info!(service = %id, "service registered");
    let location = format!("{}{BASE_PATH}/services/{id}", state.config.public_url);
    let mut response = (StatusCode::CREATED, axum::Json(answer)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

async fn replace_service(
    State(state): State<AppState>,
    Path(service_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_content_type(&headers)?;
    let body = body.map_err(super::body_rejection)?;
    let mut value = parse_json(&body)?;
    match value.get("id") {
        None => value["id"] = Value::String(service_id.clone()),
        Some(Value::String(id)) if *id == service_id => {}
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidSubscription,
                format!("body id {other} differs from the path's service id {service_id:?}"),
            )
            .requirement("API-5"));
        }
    }
    let existing_secret = state.store.subscription_secret(&service_id).await?;
    let prepared = prepare(&state, value, existing_secret).await?;
    let created = state.store.replace_service(prepared.service.clone()).await?;
    prune_hook_sources(&state).await;
    let answer = answer(&state, &prepared).await?;
    state.manager.wake.notify_one();
    tracing::info!(service = %service_id, created, "service replaced");
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(answer)).into_response())
}

async fn delete_service(
    State(state): State<AppState>,
    Path(service_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    if state.store.delete_service(&service_id).await? {
        prune_hook_sources(&state).await;
        state.manager.wake.notify_one();
        tracing::info!(service = %service_id, "service deleted");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(&service_id))
    }
}

/// Removes the hook sources no service uses any more (issue 11, finding 5):
/// their tokens would otherwise stay valid for good. A failure is logged
/// and left to the next write's prune.
pub async fn prune_hook_sources(state: &AppState) {
    match state.store.prune_hook_sources(stored_sources).await {
        Ok(gone) => {
            for (kind, registry) in gone {
                tracing::info!(kind, registry, "hook source removed: no service uses it any more");
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot remove unused hook sources (tried again at the next write)"),
    }
}

/// The hook sources a stored service document needs: [`sources`] of its
/// subscription, the derivation every write uses.
fn stored_sources(document: &str) -> Option<Vec<(String, String)>> {
    let document = serde_json::from_str::<Value>(document).ok()?;
    if !document["subscription"].is_object() {
        return Some(Vec::new());
    }
    Some(
        sources(&document["subscription"])
            .into_iter()
            .map(|(kind, registry)| (kind.as_str().to_owned(), registry))
            .collect(),
    )
}

/// A 404 for a service id.
pub fn not_found(service_id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no service with id {service_id:?}"))
}

/// 415 for a declared content type other than JSON.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("content type {essence:?} is not application/json"),
        ))
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::new(ErrorCode::InvalidRequest, format!("the body is not JSON: {err}")))?;
    if !value.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the body must be a JSON object",
        ));
    }
    Ok(value)
}

/// A validated write, ready to store, with what only its answer shows.
struct Prepared {
    service: NewService,
    registration: ServiceRegistration,
    /// The secret to show once, if this write set or generated it.
    new_secret: Option<String>,
}

/// 422 for a `subscription.registry.kind` this broker has no adapter for,
/// naming the kinds it serves (those `service-info` lists), instead of
/// serde's `unknown variant` at API-5: the kind is a subscription rule (API-9).
fn check_kind(value: &Value) -> Result<(), ApiError> {
    let Some(kind) = value["subscription"]["registry"]["kind"].as_str() else {
        return Ok(());
    };
    if SERVED_KINDS.iter().any(|k| k.as_str() == kind) {
        return Ok(());
    }
    let served = SERVED_KINDS.map(|k| k.as_str()).join(", ");
    Err(ApiError::new(
        ErrorCode::InvalidSubscription,
        format!(
            "invalid subscription: registry.kind {kind:?} is not served by this broker; it serves {served} (API-9)"
        ),
    )
    .requirement("API-9"))
}

async fn prepare(state: &AppState, value: Value, existing_secret: Option<String>) -> Result<Prepared, ApiError> {
    check_kind(&value)?;
    let registration: ServiceRegistration = serde_path_to_error::deserialize(value).map_err(|err| {
        ApiError::new(ErrorCode::InvalidRequest, format!("invalid service: {err}")).requirement("API-5")
    })?;
    let service_type = &registration.service.service.service_type;
    let id = registration.service.service.id.clone();
    if id.is_empty() || id.len() > 256 || id.contains('/') {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("service id {id:?} must be 1 to 256 characters without '/'"),
        ));
    }
    let mut new_secret = None;
    let mut subscription_row = None;
    let mut document = serde_json::to_value(&registration.service).expect("a service serializes");
    if let Some(sub) = &registration.subscription {
        // The requirement is the rule the message cites (API-6, API-7 or API-9).
        let invalid = |err: &tagcast_spec::subscription::SubscriptionError| {
            ApiError::new(ErrorCode::InvalidSubscription, err.to_string()).requirement(err.requirement())
        };
        sub.check().map_err(|e| invalid(&e))?;
        let requirement = sub.requirement(service_type).map_err(|e| invalid(&e))?;
        let policy = state.config.outbound_policy();
        ssrf::check_callback_url(&sub.callback_url, policy, &state.config.hosts)
            .await
            .map_err(|err| match err {
                ssrf::Refused::Http { .. } => {
                    ApiError::new(ErrorCode::InvalidSubscription, format!("callbackUrl {err}")).requirement("API-6")
                }
                err => ApiError::new(ErrorCode::CallbackUrlRefused, format!("callbackUrl {err}")).requirement("CB-16"),
            })?;
        let registry_url = sub.registry.as_ref().and_then(|r| r.url.clone());
        if let Some(url) = &registry_url {
            check_registry_url(state, url).await?;
        }
        let secret = match (&sub.secret, existing_secret) {
            (Some(given), _) => {
                new_secret = Some(given.expose());
                given.expose()
            }
            (None, Some(existing)) => existing,
            (None, None) => {
                let generated = Secret::generate(rand::rng().random()).expose();
                new_secret = Some(generated.clone());
                generated
            }
        };
        let mut public = Map::new();
        public.insert("images".into(), serde_json::to_value(&sub.images).expect("serializes"));
        public.insert("stage".into(), serde_json::to_value(sub.stage).expect("serializes"));
        public.insert("apiVersion".into(), Value::String(requirement.to_string()));
        public.insert("callbackUrl".into(), Value::String(sub.callback_url.clone()));
        if let Some(registry) = &sub.registry {
            public.insert("registry".into(), serde_json::to_value(registry).expect("serializes"));
        }
        document["subscription"] = Value::Object(public);
        subscription_row = Some(NewSubscription {
            stage: sub.stage.as_str().to_owned(),
            api_requirement: requirement.to_string(),
            callback_url: sub.callback_url.clone(),
            secret,
            images: sub.images.iter().map(ToString::to_string).collect(),
            registry_url,
        });
    } else if let Some(map) = document.as_object_mut() {
        map.remove("subscription");
    }
    Ok(Prepared {
        service: NewService {
            id,
            hook_sources: document.get("subscription").map(new_hook_sources).unwrap_or_default(),
            document: document.to_string(),
            subscription: subscription_row,
        },
        registration,
        new_secret,
    })
}

/// `subscription.registry.url` when written (issue 11, finding 3): the
/// broker will send requests there, so it follows the callback URL rule
/// (https, or plain http and loopback or private addresses only as the
/// operator allows; metadata addresses never), and it carries no userinfo
/// (credentials belong in `[[registries]]`), no query and no fragment
/// (a base URL has neither, and a query could carry a secret into reads).
async fn check_registry_url(state: &AppState, url: &str) -> Result<(), ApiError> {
    let invalid = |rule: String| {
        ApiError::new(ErrorCode::InvalidSubscription, format!("registry.url {rule}")).requirement("API-9")
    };
    let parsed = url::Url::parse(url).map_err(|err| invalid(format!("{url:?} is not an absolute URL: {err}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(format!(
            "{:?} carries userinfo; registry credentials belong in the broker's [[registries]] configuration",
            redact_userinfo(url)
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(format!(
            "{:?} has a query or fragment; a registry API base URL has neither",
            parsed.origin().ascii_serialization()
        )));
    }
    ssrf::check_callback_url(url, state.config.outbound_policy(), &state.config.hosts)
        .await
        .map_err(|err| invalid(err.to_string()))
}

/// A URL without its userinfo, for messages and public reads.
fn redact_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The (kind, registry) sources of a stored subscription's images.
fn sources(subscription: &Value) -> Vec<(RegistryKind, String)> {
    let explicit = subscription["registry"]["kind"]
        .as_str()
        .and_then(|k| k.parse::<RegistryKind>().ok());
    let mut out: Vec<(RegistryKind, String)> = Vec::new();
    for image in subscription["images"].as_array().into_iter().flatten() {
        let Some(image) = image.as_str().and_then(|i| tagcast_spec::Repository::parse(i).ok()) else {
            continue;
        };
        let domain = image.domain().to_owned();
        let kind = explicit
            .or_else(|| RegistryKind::from_host(&domain))
            .unwrap_or(RegistryKind::Distribution);
        if !out.iter().any(|(k, r)| *k == kind && *r == domain) {
            out.push((kind, domain));
        }
    }
    out
}

/// The hook sources a subscription's images need, each kind that signs
/// with a secret the broker generates (item 2 of issue 10: the operator
/// pastes it into the registry's webhook form); an existing source keeps
/// its token and secret. `registry.url` stays with the subscription: a
/// source is shared by every subscriber of its registry.
fn new_hook_sources(subscription: &Value) -> Vec<NewHookSource> {
    sources(subscription)
        .into_iter()
        .map(|(kind, registry)| NewHookSource {
            kind: kind.as_str().to_owned(),
            registry,
            secret: inbound::signs(kind).then(|| Secret::generate(rand::rng().random()).expose()),
        })
        .collect()
}

/// The hooks of a stored subscription: every source was created in the
/// transaction of the write that needed it ([`new_hook_sources`]). Every
/// hook carries its URL and, for a signing kind, its secret; [`render`]
/// strips both from public reads.
async fn hooks(state: &AppState, subscription: &Value) -> Result<Vec<Hook>, ApiError> {
    let images: Vec<String> = subscription["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.as_str().map(str::to_owned))
        .collect();
    let mut out = Vec::new();
    for (kind, registry) in sources(subscription) {
        let signs = inbound::signs(kind);
        let Some(source) = state.store.find_hook_source(kind.as_str(), &registry).await? else {
            continue;
        };
        let managed = crate::manage::reconcile::managed_status(state, kind, &registry, &images);
        out.push(Hook {
            kind,
            registry,
            url: Some(format!(
                "{}/hooks/{}/{}",
                state.config.public_url,
                kind.as_str(),
                source.token
            )),
            secret: source
                .secret
                .as_deref()
                .filter(|_| signs)
                .and_then(|s| Secret::parse(s).ok()),
            managed: Some(managed),
        });
    }
    Ok(out)
}

/// A stored service as reads show it (API-3): the stored subscription with
/// its hooks (API-8), never the subscription's secret. The hook URLs carry
/// their tokens and the hook secrets sign the registry's requests, both
/// credentials of the registry: only an `admin` read shows them.
async fn render(state: &AppState, stored: &StoredService, admin: bool) -> Result<Value, ApiError> {
    let mut document: Value = serde_json::from_str(&stored.document).unwrap_or_else(|_| json!({}));
    if document.get("subscription").is_some_and(Value::is_object) {
        let mut hooks = hooks(state, &document["subscription"]).await?;
        if !admin {
            for hook in &mut hooks {
                hook.url = None;
                hook.secret = None;
            }
        }
        let status = state.store.subscription_state(&stored.id).await?;
        let subscription_state = match status {
            Some(s) if !s.enabled => SubscriptionState::Unsubscribed,
            _ => SubscriptionState::Active,
        };
        if !admin {
            public_urls(&mut document["subscription"]);
        }
        document["subscription"]["hooks"] = serde_json::to_value(hooks).expect("serializes");
        document["subscription"]["state"] = serde_json::to_value(subscription_state).expect("serializes");
    }
    // Check the shape against the spec's type in debug builds.
    debug_assert!(serde_json::from_value::<RegisteredService>(document.clone()).is_ok());
    Ok(document)
}

/// What a public read shows of the subscriber's URLs (issue 11, finding 9):
/// the callback URL without userinfo (a CD endpoint's Basic credentials),
/// the registry URL without userinfo, query or fragment (stored before
/// writes refused them; they could carry a token).
fn public_urls(subscription: &mut Value) {
    if let Some(url) = subscription["callbackUrl"].as_str() {
        subscription["callbackUrl"] = Value::String(redact_userinfo(url));
    }
    if let Some(url) = subscription["registry"]["url"].as_str() {
        let shown = match url::Url::parse(&redact_userinfo(url)) {
            Ok(mut parsed) => {
                parsed.set_query(None);
                parsed.set_fragment(None);
                parsed.to_string()
            }
            Err(_) => String::new(),
        };
        subscription["registry"]["url"] = Value::String(shown);
    }
}

/// The answer to a write: the stored service, its hooks, and the secret
/// once if this write set or generated it.
async fn answer(state: &AppState, prepared: &Prepared) -> Result<Value, ApiError> {
    let mut service = serde_json::to_value(&prepared.registration.service).expect("serializes");
    let document: Value = serde_json::from_str(&prepared.service.document).expect("our own JSON");
    if let Some(subscription) = document.get("subscription") {
        let record = SubscriptionRecord {
            images: serde_json::from_value(subscription["images"].clone()).unwrap_or_default(),
            stage: serde_json::from_value(subscription["stage"].clone())
                .map_err(|_| ApiError::new(ErrorCode::Internal, "stored stage"))?,
            api_version: serde_json::from_value(subscription["apiVersion"].clone())
                .map_err(|_| ApiError::new(ErrorCode::Internal, "stored apiVersion"))?,
            callback_url: subscription["callbackUrl"].as_str().unwrap_or_default().to_owned(),
            registry: serde_json::from_value(subscription["registry"].clone()).ok(),
            hooks: hooks(state, subscription).await?,
            state: SubscriptionState::Active,
            secret: prepared.new_secret.as_deref().and_then(|s| Secret::parse(s).ok()),
        };
        service["subscription"] = serde_json::to_value(record).expect("serializes");
    }
    Ok(service)
}
