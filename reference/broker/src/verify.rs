//! Re-checking tag → digest against the registry before delivering
//! (`spec/service-api.md` API-15, DESIGN.md §5): "where the registry's API is
//! reachable, re-check that the tag still points to the digest
//! (`HEAD /v2/<name>/manifests/<tag>`) and drop the event if not", so that a
//! forged or stale webhook cannot move a deployment.
//!
//! A registry that cannot answer (unreachable, needs credentials, no
//! `Docker-Content-Digest`) leaves the event as the hook reported it.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::ACCEPT;

use crate::inbound::MANIFEST_MEDIA_TYPES;

/// What the registry says about a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The tag points to the digest.
    Verified,
    /// The tag points elsewhere or does not exist: the reason.
    Mismatch(String),
    /// The registry could not tell: the reason.
    Unverifiable(String),
}

/// The HTTP client of registry checks.
///
/// # Panics
///
/// If the TLS backend cannot be initialized.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .user_agent(concat!("tagcast-broker/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds")
}

/// The registry API base URL of a registry host: `api_url` if the
/// subscription named one, Docker Hub's API host for `docker.io`, else
/// `https://<host>`.
pub fn api_base(registry: &str, api_url: Option<&str>) -> String {
    match api_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if registry == tagcast_spec::DOCKER_HUB => "https://registry-1.docker.io".to_owned(),
        None => format!("https://{registry}"),
    }
}

/// `HEAD <base>/v2/<path>/manifests/<tag>` and compare the digest.
pub async fn check(client: &reqwest::Client, base: &str, path: &str, tag: &str, digest: &str) -> Check {
    let url = format!("{base}/v2/{path}/manifests/{tag}");
    let response = match client
        .head(&url)
        .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "))
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) => return Check::Unverifiable(format!("the registry API at {base} did not answer: {err}")),
    };
    match response.status() {
        StatusCode::NOT_FOUND => Check::Mismatch(format!("the registry says {path}:{tag} does not exist")),
        status if status.is_success() => {
            match response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
            {
                Some(found) if found == digest => Check::Verified,
                Some(found) => Check::Mismatch(format!(
                    "the registry says {path}:{tag} points to {found}, not {digest}"
                )),
                None => Check::Unverifiable("the registry sent no Docker-Content-Digest".into()),
            }
        }
        status => Check::Unverifiable(format!("the registry answered {}", status.as_u16())),
    }
}
