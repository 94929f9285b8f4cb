//! Callback signatures: the Standard Webhooks 1.0.0 symmetric scheme
//! (`spec/callbacks.md` CB-3 to CB-6).
//!
//! "The broker signs every callback attempt with the subscription's secret:
//! `webhook-signature` is a space-separated list of `v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">` entries, one per active secret" (CB-3). A CD endpoint
//! verifies with [`verify`]: any secret and any `v1` entry may match, so keys
//! can be rotated without downtime (CB-5).
//!
//! These are pure functions over bytes and strings so that the broker, the
//! deployer and the conformance runner share one implementation; the caller
//! reads the headers and the clock.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
#[cfg(feature = "schema")]
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the event id, "the same on every attempt of one event"
/// (CB-3); the CD endpoint's deduplication key (CB-7).
pub const HEADER_ID: &str = "webhook-id";

/// Header carrying the attempt's time in integer seconds since the Unix
/// epoch, "set anew on every attempt" (CB-3).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";

/// Header carrying the space-separated signatures (CB-3).
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The prefix of a serialized secret: `whsec_<base64>` (CB-4).
pub const SECRET_PREFIX: &str = "whsec_";

/// The signature scheme identifier of HMAC-SHA256 (CB-3).
pub const SIGNATURE_VERSION: &str = "v1";

/// "A CD endpoint MUST reject a `webhook-timestamp` more than 5 minutes
/// before or after its own clock" (CB-6).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Fewest key bytes a secret may have (CB-4, as Standard Webhooks: 24 to 64).
pub const MIN_SECRET_BYTES: usize = 24;

/// Most key bytes a secret may have (CB-4).
pub const MAX_SECRET_BYTES: usize = 64;

/// The pattern of a serialized secret: `whsec_` and the standard base64 of
/// 24 to 64 bytes (CB-4). Length is checked by [`Secret::parse`]; the JSON
/// Schema bounds it with `minLength`/`maxLength`.
pub const SECRET_PATTERN: &str = "^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";

type HmacSha256 = Hmac<Sha256>;

/// A subscription's signing secret, `whsec_<base64 of 24 to 64 random bytes>`
/// (CB-4).
///
/// The key never appears in `Debug` output and `Secret` has no `Display`:
/// the only ways to get the key out are [`Secret::expose`] and `Serialize`,
/// which the broker uses exactly once, in the answer to the write that
/// created the secret.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl Secret {
    /// Parse `whsec_<base64>`.
    ///
    /// # Errors
    ///
    /// [`SecretError`] when the prefix is missing, the rest is not standard
    /// base64, or the key is not 24 to 64 bytes long (CB-4). The message
    /// never contains the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::webhook::Secret;
    ///
    /// let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")?;
    /// assert_eq!(secret.as_bytes().len(), 24);
    /// assert_eq!(format!("{secret:?}"), "Secret(whsec_<redacted>)");
    /// # Ok::<(), tagcast_spec::webhook::SecretError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, SecretError> {
        let encoded = input.strip_prefix(SECRET_PREFIX).ok_or(SecretError::Prefix)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::Base64)?;
        Self::from_bytes(&key)
    }

    /// A secret with this key.
    ///
    /// # Errors
    ///
    /// [`SecretError::Length`] unless the key is 24 to 64 bytes long (CB-4).
    pub fn from_bytes(key: &[u8]) -> Result<Self, SecretError> {
        if (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            Ok(Self { key: key.to_vec() })
        } else {
            Err(SecretError::Length { bytes: key.len() })
        }
    }

    /// A new secret from 32 random bytes that the caller draws from a
    /// cryptographically secure generator ("generated if absent", API-6).
    /// This crate has no random number generator of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::webhook::Secret;
    ///
    /// let secret = Secret::generate([7; 32]);
    /// assert!(secret.expose().starts_with("whsec_"));
    /// ```
    pub fn generate(random: [u8; 32]) -> Self {
        Self { key: random.to_vec() }
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.key
    }

    /// The serialized secret `whsec_<base64>`; named so that every place that
    /// reveals a key is easy to find.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_<redacted>)")
    }
}

/// Constant-time: comparing secrets must not reveal how much of a key matches.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.key.ct_eq(&other.key).into()
    }
}

impl Eq for Secret {}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A signing secret `whsec_<base64>` of 24 to 64 random bytes (spec/callbacks.md CB-4). The broker returns it once, in the answer to the write that set or generated it, and never in a read (API-6).",
            "pattern": SECRET_PATTERN,
            "minLength": 38,
            "maxLength": 94,
            "examples": ["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]
        })
    }
}

/// A string is not a secret of the form `whsec_<base64 of 24 to 64 bytes>`
/// (CB-4). Messages never contain the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The `whsec_` prefix is missing.
    #[error("invalid secret: it must start with \"whsec_\" (CB-4)")]
    Prefix,
    /// The part after the prefix is not standard base64.
    #[error("invalid secret: the part after \"whsec_\" must be standard base64 with padding (CB-4)")]
    Base64,
    /// The key is too short or too long.
    #[error("invalid secret: the key has {bytes} bytes, it must have 24 to 64 (CB-4)")]
    Length {
        /// The decoded key's length.
        bytes: usize,
    },
}

/// The `webhook-signature` entry for one secret: `v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">` (CB-3). `body` is the exact bytes sent.
///
/// # Examples
///
/// The published Standard Webhooks test vector:
///
/// ```
/// use tagcast_spec::webhook::{Secret, sign};
///
/// let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")?;
/// let body = br#"{"email":"test@example.com","username":"test_user"}"#;
/// assert_eq!(
///     sign(&secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
///     "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
/// );
/// # Ok::<(), tagcast_spec::webhook::SecretError>(())
/// ```
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = secret.mac(id, &timestamp.to_string(), body);
    format!("{SIGNATURE_VERSION},{}", BASE64.encode(mac))
}

/// How long a broker keeps signing with a subscription's previous secret
/// after the secret was replaced (CB-5): a day, for the operator to give
/// the CD endpoint the new one.
pub const PREVIOUS_SECRET_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The whole `webhook-signature` header value: one [`sign`] entry per secret,
/// separated by single spaces, for sending during a key rotation (CB-5).
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verify a callback as a CD endpoint must (CB-5, CB-6).
///
/// `id`, `timestamp` and `signature` are the values of [`HEADER_ID`],
/// [`HEADER_TIMESTAMP`] and [`HEADER_SIGNATURE`] (`None` or empty when the
/// header is absent); `body` the exact bytes received; `now` the verifier's
/// clock in seconds since the Unix epoch.
///
/// "The callback is authentic iff some `v1` entry of `webhook-signature`
/// equals the signature computed with some secret the endpoint holds,
/// compared in constant time" (CB-5), and "its `webhook-timestamp` is at most
/// `tolerance` before or after `now`" (CB-6). Entries of other schemes
/// (`v1a`, ...) are ignored.
///
/// # Errors
///
/// [`VerifyError`] saying which rule failed; all of them mean 401.
///
/// # Examples
///
/// ```
/// use tagcast_spec::webhook::{DEFAULT_TOLERANCE, Secret, sign, verify};
///
/// let old = Secret::generate([1; 32]);
/// let new = Secret::generate([2; 32]);
/// let body = b"{}";
/// let header = format!("{} {}", sign(&new, "evt_1", 1_700_000_000, body), sign(&old, "evt_1", 1_700_000_000, body));
/// // An endpoint that only knows the old secret still accepts.
/// verify(&[old], Some("evt_1"), Some("1700000000"), Some(&header), body, 1_700_000_030, DEFAULT_TOLERANCE)?;
/// # Ok::<(), tagcast_spec::webhook::VerifyError>(())
/// ```
pub fn verify(
    secrets: &[Secret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let id = present(id, HEADER_ID)?;
    let timestamp_text = present(timestamp, HEADER_TIMESTAMP)?;
    let signature = present(signature, HEADER_SIGNATURE)?;

    let timestamp = parse_timestamp(timestamp_text)?;
    let tolerance_secs = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age = i128::from(now) - i128::from(timestamp);
    if age > i128::from(tolerance_secs) {
        return Err(VerifyError::TooOld {
            timestamp,
            now,
            tolerance: tolerance.as_secs(),
        });
    }
    if -age > i128::from(tolerance_secs) {
        return Err(VerifyError::TooNew {
            timestamp,
            now,
            tolerance: tolerance.as_secs(),
        });
    }

    let candidates: Vec<Vec<u8>> = signature
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == SIGNATURE_VERSION)
        .filter_map(|(_, encoded)| BASE64.decode(encoded).ok())
        .collect();
    // Every secret is tried against every candidate so that the time taken
    // does not depend on which pair matched.
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        // The header text is signed as received, so that "0123" and "123"
        // are not interchangeable.
        let expected = secret.mac(id, timestamp_text.trim(), body);
        for candidate in &candidates {
            matched |= expected.as_slice().ct_eq(candidate.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature {
            signatures: candidates.len(),
            secrets: secrets.len(),
        })
    }
}

fn present<'a>(value: Option<&'a str>, header: &'static str) -> Result<&'a str, VerifyError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(VerifyError::MissingHeader { header }),
    }
}

fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    let text = text.trim();
    let malformed = || VerifyError::MalformedTimestamp { value: text.to_owned() };
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    text.parse().map_err(|_| malformed())
}

/// Why a callback failed verification (CB-5, CB-6). Every kind means the CD
/// endpoint answers 401 (CB-9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent or empty.
    #[error("missing header {header} (CB-3)")]
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// `webhook-timestamp` is not an integer count of seconds.
    #[error("malformed header webhook-timestamp {value:?}: it must be integer seconds since the unix epoch (CB-3)")]
    MalformedTimestamp {
        /// The header's value.
        value: String,
    },
    /// The timestamp is further in the past than the tolerance allows.
    #[error(
        "stale header webhook-timestamp {timestamp}: more than {tolerance} s before the verifier's clock {now} (CB-6)"
    )]
    TooOld {
        /// The header's value.
        timestamp: i64,
        /// The verifier's clock.
        now: i64,
        /// The tolerance in seconds.
        tolerance: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error(
        "future header webhook-timestamp {timestamp}: more than {tolerance} s after the verifier's clock {now} (CB-6)"
    )]
    TooNew {
        /// The header's value.
        timestamp: i64,
        /// The verifier's clock.
        now: i64,
        /// The tolerance in seconds.
        tolerance: u64,
    },
    /// No `v1` entry matches under any secret.
    #[error(
        "no matching signature: none of the {signatures} v1 entries of webhook-signature matches the body under any of {secrets} secrets (CB-5)"
    )]
    NoMatchingSignature {
        /// How many well-formed `v1` entries the header had.
        signatures: usize,
        /// How many secrets were tried.
        secrets: usize,
    },
}

impl VerifyError {
    /// The requirement ID of `spec/callbacks.md` that the request breaks.
    pub fn requirement(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader { .. } | VerifyError::MalformedTimestamp { .. } => "CB-3",
            VerifyError::TooOld { .. } | VerifyError::TooNew { .. } => "CB-6",
            VerifyError::NoMatchingSignature { .. } => "CB-5",
        }
    }
}
