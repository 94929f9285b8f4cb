//! A CD endpoint after DESIGN.md §6, with switches that break one rule each.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tagcast_spec::event::{CloudEvent, ImagePublished};
use tagcast_spec::webhook::{self, Secret};

/// The secret every test endpoint holds.
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// The rule a broken endpoint breaks; `None` keeps them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Flaw {
    None,
    /// Accepts any signature, or none.
    SkipsSignature,
    /// Accepts any timestamp.
    IgnoresTimestamp,
    /// Answers 500 to a body that is not JSON.
    FailsOnMalformedJson,
    /// Verifies only the first entry of `webhook-signature`.
    ChecksFirstSignatureOnly,
    /// Applies every callback, duplicates included.
    ReappliesDuplicates,
    /// Answers 409 to a duplicate.
    RejectsDuplicates,
    /// Accepts any JSON body, event or not.
    SkipsSchema,
    /// Validates the body against the schema only: members the schema
    /// cannot relate (derived members, `subject`, `previousTag`) go
    /// unchecked.
    SchemaOnly,
    /// Accepts any content type.
    IgnoresContentType,
    /// Has no body limit.
    AcceptsHugeBodies,
    /// Does not answer the validation handshake.
    NoHandshake,
    /// Answers 500 to everything it should accept.
    RejectsValid,
    /// Reads `webhook-timestamp` as a decimal number, fractions included.
    LenientTimestamp,
    /// Applies a tag older than the one it runs (CB-8).
    AppliesDowngrades,
    /// Takes a callback without `webhook-signature` as unsigned and
    /// accepts it; verifies those that carry one.
    AcceptsUnsigned,
    /// Also accepts an HMAC of the body alone (GitHub's style) under its
    /// secret.
    AcceptsBodyOnly,
    /// Checks that each signature is a well-formed `v1,` entry of an
    /// HMAC-SHA256's length but not that it is right; it refuses the
    /// body-only HMAC it has learned to spot.
    AcceptsForeignSignatures,
    /// Refuses timestamps ahead of its clock but not old ones.
    AcceptsStale,
    /// Refuses old timestamps but not those ahead of its clock.
    AcceptsFuture,
    /// Applies the first callback before answering, and answers after
    /// more than 10 s (CB-9 asks for an answer within 10 s).
    AnswersLate,
}

#[derive(Clone)]
struct Peer {
    flaw: Flaw,
    secret: Secret,
    seen: Arc<Mutex<HashSet<String>>>,
    applied: Arc<Mutex<u64>>,
    /// The tag it runs: only a newer one is applied (CB-8).
    current: Arc<Mutex<Option<tagcast_spec::Tag>>>,
}

/// Starts the endpoint; `POST /`, `OPTIONS /`, status at `GET /status`.
pub async fn start(flaw: Flaw) -> SocketAddr {
    let peer = Peer {
        flaw,
        secret: Secret::parse(SECRET).expect("a valid secret"),
        seen: Arc::default(),
        applied: Arc::default(),
        current: Arc::default(),
    };
    let limit = if flaw == Flaw::AcceptsHugeBodies {
        64 << 20
    } else {
        1 << 20
    };
    let app = Router::new()
        .route(
            "/",
            post(callback)
                .options(handshake)
                .get(|| async { StatusCode::METHOD_NOT_ALLOWED }),
        )
        .route("/status", get(status))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(peer);
    super::serve(app).await
}

async fn status(State(peer): State<Peer>) -> Json<serde_json::Value> {
    Json(json!({ "applied": *peer.applied.lock().unwrap() }))
}

async fn handshake(State(peer): State<Peer>, headers: HeaderMap) -> Response {
    if peer.flaw == Flaw::NoHandshake {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let origin = headers
        .get("webhook-request-origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*")
        .to_owned();
    (
        StatusCode::OK,
        [
            ("WebHook-Allowed-Origin", origin),
            ("WebHook-Allowed-Rate", "*".to_owned()),
            ("Allow", "POST, OPTIONS".to_owned()),
        ],
    )
        .into_response()
}

async fn callback(State(peer): State<Peer>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if peer.flaw != Flaw::IgnoresContentType
        && !header("content-type").is_some_and(|t| t.starts_with("application/cloudevents+json"))
    {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let unsigned = header(webhook::HEADER_SIGNATURE).is_none() && peer.flaw == Flaw::AcceptsUnsigned;
    if peer.flaw == Flaw::LenientTimestamp {
        if !lenient_verify(&peer.secret, &headers, &body) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    } else if peer.flaw == Flaw::AcceptsForeignSignatures {
        if !well_formed_only(&peer.secret, &headers, &body) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    } else if peer.flaw == Flaw::AcceptsBodyOnly && body_only(&peer.secret, header(webhook::HEADER_SIGNATURE), &body) {
        // Taken as authentic: the flaw.
    } else if peer.flaw != Flaw::SkipsSignature && !unsigned {
        let signature = match peer.flaw {
            Flaw::ChecksFirstSignatureOnly => header(webhook::HEADER_SIGNATURE).and_then(|s| s.split(' ').next()),
            _ => header(webhook::HEADER_SIGNATURE),
        };
        let tolerance = if peer.flaw == Flaw::IgnoresTimestamp {
            Duration::from_secs(u32::MAX.into())
        } else {
            webhook::DEFAULT_TOLERANCE
        };
        // A one-sided check: the verifier's clock is moved to the sent
        // timestamp when that is on the side the flaw ignores.
        let sent = header(webhook::HEADER_TIMESTAMP).and_then(|t| t.parse::<i64>().ok());
        let now = match (peer.flaw, sent) {
            (Flaw::AcceptsStale, Some(sent)) => chrono::Utc::now().timestamp().min(sent),
            (Flaw::AcceptsFuture, Some(sent)) => chrono::Utc::now().timestamp().max(sent),
            _ => chrono::Utc::now().timestamp(),
        };
        if webhook::verify(
            std::slice::from_ref(&peer.secret),
            header(webhook::HEADER_ID),
            header(webhook::HEADER_TIMESTAMP),
            signature,
            &body,
            now,
            tolerance,
        )
        .is_err()
        {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(_) if peer.flaw == Flaw::FailsOnMalformedJson => {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    if peer.flaw == Flaw::SchemaOnly && !crate::contract::validator(crate::contract::IMAGE_PUBLISHED).is_valid(&json) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let event = serde_json::from_value::<CloudEvent<ImagePublished>>(json).ok();
    if ![Flaw::SkipsSchema, Flaw::SchemaOnly].contains(&peer.flaw) && event.is_none() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    if peer.flaw == Flaw::RejectsValid {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let id = header(webhook::HEADER_ID).unwrap_or_default().to_owned();
    let first = peer.seen.lock().unwrap().is_empty();
    if first && peer.flaw == Flaw::AnswersLate {
        tokio::time::sleep(crate::checks::cd::ANSWER_WITHIN + Duration::from_millis(500)).await;
    }
    let fresh = peer.seen.lock().unwrap().insert(id);
    if !fresh && peer.flaw == Flaw::RejectsDuplicates {
        return StatusCode::CONFLICT.into_response();
    }
    let newer = {
        let mut current = peer.current.lock().unwrap();
        let tag = event.as_ref().map(|e| e.data.tag);
        let newer = match (&*current, tag) {
            (Some(running), Some(tag)) => tag.channel_cmp(running) == Some(std::cmp::Ordering::Greater),
            _ => true,
        };
        if fresh && (newer || peer.flaw == Flaw::AppliesDowngrades) {
            if let Some(tag) = tag {
                *current = Some(tag);
            }
        }
        newer
    };
    if (fresh && (newer || peer.flaw == Flaw::AppliesDowngrades)) || (!fresh && peer.flaw == Flaw::ReappliesDuplicates)
    {
        // Applied asynchronously, as the contract asks: the answer does not
        // wait for the upgrade.
        let applied = peer.applied.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            *applied.lock().unwrap() += 1;
        });
    }
    StatusCode::ACCEPTED.into_response()
}

/// Whether `signature` is an HMAC-SHA256 of the body alone under `secret`.
fn body_only(secret: &Secret, signature: Option<&str>, body: &[u8]) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    signature.is_some_and(|s| s.split(' ').any(|s| s == expected))
}

/// The verification of an endpoint that checks the form of the signatures
/// and the timestamp, not the MAC: right for every check but the one that
/// signs with another secret.
fn well_formed_only(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> bool {
    use base64::Engine as _;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signature) = header(webhook::HEADER_SIGNATURE) else {
        return false;
    };
    let Some(Ok(sent)) = header(webhook::HEADER_TIMESTAMP).map(str::parse::<i64>) else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - sent).abs() > 300 || body_only(secret, Some(signature), body) {
        return false;
    }
    signature.split(' ').any(|entry| {
        entry.strip_prefix("v1,").is_some_and(|mac| {
            base64::engine::general_purpose::STANDARD
                .decode(mac)
                .is_ok_and(|mac| mac.len() == 32)
        })
    })
}

/// The verification of an endpoint that parses the timestamp as a float and
/// signs over the header text: right signatures, wrong timestamp rule.
fn lenient_verify(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (id, timestamp) = (header(webhook::HEADER_ID), header(webhook::HEADER_TIMESTAMP));
    let Ok(seconds) = timestamp.parse::<f64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() as f64 - seconds).abs() > 300.0 {
        return false;
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    header(webhook::HEADER_SIGNATURE).split(' ').any(|s| s == expected)
}
