//! The OIDC token of a Pub/Sub push (the `gar` kind), checked when the
//! registry's `[[registries]]` entry sets `oidc-audience`.
//!
//! A push subscription with authentication sends `Authorization: Bearer
//! <JWT>`, a Google-signed OpenID Connect token (header `alg: RS256`, `kid`;
//! claims `aud` — the audience configured on the subscription —, `iss`
//! `https://accounts.google.com`, `exp`, `iat`, `email` of the service
//! account, `email_verified`), and the subscriber verifies the signature
//! and the claims ("Authentication for push subscriptions",
//! <https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions>).
//! Google's signing keys are published as a JWKS at
//! <https://www.googleapis.com/oauth2/v3/certs> (the `jwks_uri` of
//! <https://accounts.google.com/.well-known/openid-configuration>), which is
//! the default key source; `jwks` names another URL or a file. Google also
//! issues ID tokens with `iss: accounts.google.com` ("Authenticate with a
//! backend server", <https://developers.google.com/identity/sign-in/web/backend-auth>),
//! so both spellings are accepted.
//!
//! Any Google service account can mint a token for any audience, so the
//! audience and the signature alone say "some Google account"; set
//! `oidc-email` to the subscription's service account to say "this one".
//! The path token stays the first check either way.

use std::sync::RwLock;

use axum::http::HeaderMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use tokio::sync::Notify;

use super::Rejection;

/// Google's published signing keys.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// The issuers of Google-signed ID tokens.
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Where the signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jwks {
    /// Fetched from this URL at start and refreshed (hourly, and when a
    /// token names a key not in the set: Google rotates its keys).
    Url(String),
    /// Read from a file when the configuration was loaded.
    Keys(JwkSet),
}

/// What a registry's pushes must carry, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAuth {
    /// The `aud` claim required.
    pub audience: String,
    /// The `email` claim required (the subscription's service account), if set.
    pub email: Option<String>,
    /// The signing keys.
    pub jwks: Jwks,
}

/// A registry's push check at run time: the configuration and the keys
/// currently known.
pub struct PushTokens {
    auth: PushAuth,
    keys: RwLock<JwkSet>,
    /// Wakes the refresher: a token named a key not in the set.
    pub stale: Notify,
}

impl std::fmt::Debug for PushTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTokens")
            .field("audience", &self.auth.audience)
            .field("email", &self.auth.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

/// Why a JWKS could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The request failed or was answered with an error status.
    #[error("cannot fetch the JWKS from {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The document is not a JWKS.
    #[error("the JWKS from {from} is not a JSON Web Key Set: {reason}")]
    Parse {
        /// The URL or file.
        from: String,
        /// Why.
        reason: String,
    },
}

/// Parses a JWKS document; `from` names its source in the error.
///
/// # Errors
///
/// [`JwksError::Parse`].
pub fn parse_jwks(from: &str, text: &[u8]) -> Result<JwkSet, JwksError> {
    serde_json::from_slice(text).map_err(|err| JwksError::Parse {
        from: from.to_owned(),
        reason: err.to_string(),
    })
}

impl PushTokens {
    /// The run-time check of `auth`: its file's keys, or none until the
    /// first fetch.
    pub fn new(auth: PushAuth) -> Self {
        let keys = match &auth.jwks {
            Jwks::Keys(keys) => keys.clone(),
            Jwks::Url(_) => JwkSet { keys: Vec::new() },
        };
        Self {
            auth,
            keys: RwLock::new(keys),
            stale: Notify::new(),
        }
    }

    /// The URL the keys are fetched from, if they are.
    pub fn jwks_url(&self) -> Option<&str> {
        match &self.auth.jwks {
            Jwks::Url(url) => Some(url),
            Jwks::Keys(_) => None,
        }
    }

    /// Fetches the keys from the URL and replaces the known ones; returns
    /// how many there are.
    ///
    /// # Errors
    ///
    /// [`JwksError`]: the known keys are kept.
    pub async fn refresh(&self, client: &reqwest::Client) -> Result<usize, JwksError> {
        let Some(url) = self.jwks_url() else {
            return Ok(self.keys.read().map_or(0, |k| k.keys.len()));
        };
        let fetch = |reason: String| JwksError::Fetch {
            url: url.to_owned(),
            reason,
        };
        let response = client.get(url).send().await.map_err(|e| fetch(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fetch(format!("answered {}", response.status())));
        }
        let body = response.bytes().await.map_err(|e| fetch(e.to_string()))?;
        let keys = parse_jwks(url, &body)?;
        let n = keys.keys.len();
        if let Ok(mut known) = self.keys.write() {
            *known = keys;
        }
        Ok(n)
    }

    /// Checks the request's `Authorization: Bearer <JWT>`: RS256 signature
    /// under a known key, `iss`, `aud`, `exp` (with a minute of leeway for
    /// clock skew), and `email` if configured.
    ///
    /// # Errors
    ///
    /// [`Rejection::Unauthorized`] saying which check failed (never echoing the token).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let unauthorized = |why: String| Rejection::Unauthorized(format!("the Pub/Sub push token {why}"));
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                Rejection::Unauthorized(
                    "this hook needs Authorization: Bearer <Pub/Sub OIDC token> (the subscription's push authentication)"
                        .into(),
                )
            })?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauthorized("is not a JWT".into()))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthorized(format!("is signed with {:?}, not RS256", header.alg)));
        }
        let key = {
            let keys = self.keys.read().map_err(|_| unauthorized("cannot be checked".into()))?;
            let jwk = match header.kid.as_deref() {
                Some(kid) => keys.find(kid),
                None if keys.keys.len() == 1 => keys.keys.first(),
                None => None,
            };
            let Some(jwk) = jwk else {
                self.stale.notify_one();
                return Err(unauthorized(format!(
                    "names the key {:?}, which is not in the JWKS",
                    header.kid.as_deref().unwrap_or_default()
                )));
            };
            DecodingKey::from_jwk(jwk).map_err(|err| unauthorized(format!("names an unusable key: {err}")))?
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.auth.audience]);
        validation.set_issuer(&GOOGLE_ISSUERS);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|err| {
            unauthorized(match err.kind() {
                ErrorKind::ExpiredSignature => "has expired".to_owned(),
                ErrorKind::InvalidAudience => format!("is not for the audience {:?}", self.auth.audience),
                ErrorKind::InvalidIssuer => "is not issued by https://accounts.google.com".to_owned(),
                ErrorKind::InvalidSignature => "has a signature that does not verify".to_owned(),
                ErrorKind::MissingRequiredClaim(claim) => format!("has no {claim} claim"),
                other => format!("is invalid: {other:?}"),
            })
        })?;
        if let Some(email) = &self.auth.email {
            let claims = data.claims;
            if claims.email.as_deref() != Some(email.as_str()) || claims.email_verified != Some(true) {
                return Err(unauthorized(format!("is not from the service account {email}")));
            }
        }
        Ok(())
    }
}

/// How often fetched keys are refreshed; Google publishes a new key well
/// before it signs with it.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The least time between two fetches, so that tokens naming unknown keys
/// cannot make the broker hammer the key server.
const REFRESH_AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps the fetched keys of `host`'s push check fresh until shutdown:
/// at once, hourly, and when a token names an unknown key. A failed fetch
/// is logged and retried; the known keys stay in use meanwhile.
pub async fn refresh(
    host: String,
    tokens: std::sync::Arc<PushTokens>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // The URL is the operator's (never a payload's), so no address checks.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("tagcast-broker/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default();
    loop {
        match tokens.refresh(&client).await {
            Ok(keys) => tracing::debug!(registry = %host, keys, "Pub/Sub token keys fetched"),
            Err(err) => tracing::warn!(registry = %host, error = %err, "Pub/Sub token keys not fetched; retrying"),
        }
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => return,
            () = tokio::time::sleep(REFRESH_AT_MOST_EVERY) => {}
        }
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => return,
            () = tokio::time::sleep(REFRESH_EVERY - REFRESH_AT_MOST_EVERY) => {}
            () = tokens.stale.notified() => {}
        }
    }
}
