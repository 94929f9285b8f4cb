//! Webhook management on the subscriber's behalf: when a subscription names
//! an image on a registry whose `[[registries]]` entry has `manage`
//! credentials, the broker creates the registry's hook pointing at the
//! subscription's hook URL, once per scope the registry hooks at (a Harbor
//! project, a Quay repository, a GitHub or Gitea owner), reusing a hook that
//! already points at the same URL; and deletes it when the last
//! subscription that needs it goes away ([`reconcile`]).
//!
//! One module per registry, each written from the registry's documented API
//! (sources in each module): [`harbor`], [`quay`], [`github`], [`gitea`].
//! Not managed, and why:
//! - Distribution: hooks live only in the registry's configuration file
//!   (`tagcast broker hook-config --kind distribution`).
//! - Docker Hub: its API reference has no webhook endpoints (the
//!   `webhook_pipeline` paths some tools use are undocumented and clients
//!   disagree on them): manual steps from `hook-config --kind dockerhub`.
//! - Azure: webhooks are ARM resources (`PUT …/subscriptions/{sub}/
//!   resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/
//!   {registry}/webhooks/{name}`) that need the subscription id, resource
//!   group, region and an Azure AD token, none of which follow from the image
//!   reference; shown as `manual`.
//! - Artifactory, ECR, Google Artifact Registry: event subscriptions,
//!   EventBridge rules and Pub/Sub subscriptions are account-wide cloud
//!   resources an operator sets up once, not per image; shown as `manual`.

pub mod gitea;
pub mod github;
pub mod harbor;
pub mod quay;
pub mod reconcile;

use reqwest::StatusCode;
use serde_json::Value;
use tagcast_spec::subscription::RegistryKind;

use crate::registries::Credentials;

/// What the registry's hook must do.
#[derive(Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// The broker's inbound URL (`…/hooks/{kind}/{token}`).
    pub url: String,
    /// The signing secret, for registries that sign (GitHub, Gitea).
    pub secret: Option<String>,
    /// A fixed `Authorization` header value, for registries that send one (Harbor, Gitea).
    pub authorization: Option<String>,
}

impl std::fmt::Debug for HookSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = crate::store::REDACTED;
        f.debug_struct("HookSpec")
            .field("url", &crate::store::redact_hook_url(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| redacted))
            .field("authorization", &self.authorization.as_ref().map(|_| redacted))
            .finish()
    }
}

/// Where to manage: the registry's API and the credentials.
#[derive(Debug, Clone, Copy)]
pub struct Api<'a> {
    /// The HTTP client (no redirects, no proxy).
    pub client: &'a reqwest::Client,
    /// The API base URL, without a trailing slash.
    pub base: &'a str,
    /// The `manage` credentials.
    pub credentials: &'a Credentials,
}

/// A hook in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// Created now: the registry's id of the hook.
    Created(String),
    /// One pointing at the same URL was there already: its id.
    Existing(String),
}

/// A hook gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// Deleted now.
    Deleted,
    /// No hook pointed at the URL.
    Absent,
}

/// Why managing a hook failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    /// Worth retrying (network, 429, 5xx): the reason.
    #[error("{0}")]
    Retry(String),
    /// Not without a change of configuration (401, 403, 404, 422): the reason.
    #[error("{0}")]
    Permanent(String),
}

impl ManageError {
    /// Whether a retry may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, ManageError::Retry(_))
    }
}

/// The scope a registry hooks at for an image path, if the broker manages
/// hooks of that kind: the Harbor project, the Quay repository, the GitHub
/// or Gitea owner.
pub fn scope(kind: RegistryKind, path: &str) -> Option<String> {
    let owner = path.split('/').next().filter(|o| !o.is_empty())?;
    match kind {
        RegistryKind::Harbor | RegistryKind::Ghcr | RegistryKind::Gitea => Some(owner.to_owned()),
        RegistryKind::Quay => path.contains('/').then(|| path.to_owned()),
        _ => None,
    }
}

/// The API base of a registry whose `api` is not configured: GitHub's REST
/// API for `ghcr.io`, else `https://<host>`.
pub fn default_api(kind: RegistryKind, host: &str) -> String {
    match kind {
        RegistryKind::Ghcr => "https://api.github.com".to_owned(),
        _ => format!("https://{host}"),
    }
}

/// Creates the hook at `scope` if none points at `spec.url`; `path` is an
/// image path in the scope.
///
/// # Errors
///
/// [`ManageError`] with the registry's answer.
pub async fn ensure(
    kind: RegistryKind,
    api: Api<'_>,
    scope: &str,
    path: &str,
    spec: &HookSpec,
) -> Result<Ensured, ManageError> {
    match kind {
        RegistryKind::Harbor => harbor::ensure(api, scope, spec).await,
        RegistryKind::Quay => quay::ensure(api, scope, spec).await,
        RegistryKind::Ghcr => github::ensure(api, scope, path, spec).await,
        RegistryKind::Gitea => gitea::ensure(api, scope, spec).await,
        other => Err(ManageError::Permanent(format!(
            "{} hooks are not managed",
            other.as_str()
        ))),
    }
}

/// Deletes the hook at `scope` that points at `url`, if any.
///
/// # Errors
///
/// [`ManageError`] with the registry's answer.
pub async fn remove(
    kind: RegistryKind,
    api: Api<'_>,
    scope: &str,
    path: &str,
    url: &str,
) -> Result<Removed, ManageError> {
    match kind {
        RegistryKind::Harbor => harbor::remove(api, scope, url).await,
        RegistryKind::Quay => quay::remove(api, scope, url).await,
        RegistryKind::Ghcr => github::remove(api, scope, path, url).await,
        RegistryKind::Gitea => gitea::remove(api, scope, url).await,
        other => Err(ManageError::Permanent(format!(
            "{} hooks are not managed",
            other.as_str()
        ))),
    }
}

/// An answer: its status and JSON body (`Null` when empty or not JSON).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub location: Option<String>,
}

/// Sends a request; network errors are retryable.
pub(crate) async fn send(request: reqwest::RequestBuilder, what: &str) -> Result<Answer, ManageError> {
    let response = request
        .send()
        .await
        .map_err(|err| ManageError::Retry(format!("{what}: {}", crate::delivery::describe(&err))))?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer { status, body, location })
}

/// The error of an unexpected answer: 429 and 5xx are retryable, the rest
/// needs a change of configuration. The registry's message, if it sent one,
/// is included (short); never a credential.
pub(crate) fn unexpected(what: &str, answer: &Answer) -> ManageError {
    let message = message(&answer.body);
    let reason = match answer.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(
            "{what}: the registry refused the manage credentials ({}){message}",
            answer.status.as_u16()
        ),
        status => format!("{what}: the registry answered {}{message}", status.as_u16()),
    };
    if answer.status == StatusCode::TOO_MANY_REQUESTS || answer.status.is_server_error() {
        ManageError::Retry(reason)
    } else {
        ManageError::Permanent(reason)
    }
}

/// The message of a registry's error body: Harbor `errors[].message`,
/// GitHub and Gitea `message`, Quay `detail`/`error_message`.
fn message(body: &Value) -> String {
    let text = body["errors"][0]["message"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .or_else(|| body["detail"].as_str())
        .or_else(|| body["error_message"].as_str());
    match text {
        Some(text) => {
            let short: String = text.chars().take(200).collect();
            format!(": {short}")
        }
        None => String::new(),
    }
}

/// Percent-encodes one path segment.
pub(crate) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A JSON id (number or string) as text.
pub(crate) fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(scope(RegistryKind::Harbor, "library/app/sub"), Some("library".into()));
        assert_eq!(scope(RegistryKind::Quay, "org/app"), Some("org/app".into()));
        assert_eq!(scope(RegistryKind::Ghcr, "org/app"), Some("org".into()));
        assert_eq!(scope(RegistryKind::Distribution, "org/app"), None);
        assert_eq!(scope(RegistryKind::Dockerhub, "org/app"), None);
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
