//! What the fuzz targets share: feeding one registry adapter an arbitrary
//! request. The input is split at its first NUL byte into header lines
//! (`name: value`) and the body, so that header parsing (signatures,
//! event-type headers) is fuzzed along with the payload.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use tagcast_broker::inbound::{HookAuth, adapter};
use tagcast_broker::store::HookSource;

/// Splits `data` into headers and body.
pub fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    let (head, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    (headers, body)
}

/// Parses, authenticates and normalizes `data` as a `kind` hook; a kind
/// this broker does not serve (yet) is skipped. Must never panic.
pub fn adapter_receives(kind: &str, data: &[u8]) {
    let Some(adapter) = adapter(kind) else { return };
    let source = HookSource {
        token: "t".repeat(32),
        kind: kind.to_owned(),
        registry: "registry.example.org".to_owned(),
        secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
    };
    let (headers, body) = request(data);
    let _ = adapter.receive(&HookAuth::default(), &source, &headers, body);
}
