//! Re-checking tag → digest against the registry before delivering
//! (`spec/service-api.md` API-15, DESIGN.md §5): "where the registry's API is
//! reachable, re-check that the tag still points to the digest
//! (`HEAD /v2/<name>/manifests/<tag>`) and drop the event if not", so that a
//! forged or stale webhook cannot move a deployment.
//!
//! A registry that cannot answer (unreachable, needs credentials, no
//! `Docker-Content-Digest`) leaves the event as the hook reported it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a registry API that did not answer is left alone, so that an
/// unreachable registry costs one timeout per minute, not one per event.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(60);

/// Re-checks with a memory of registries that did not answer.
#[derive(Debug)]
pub struct Verifier {
    client: reqwest::Client,
    unreachable: Mutex<HashMap<String, Instant>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier with its own HTTP client.
    pub fn new() -> Self {
        Self {
            client: client(),
            unreachable: Mutex::new(HashMap::new()),
        }
    }

    /// [`check`], skipped for a registry API that did not answer within
    /// the last [`UNREACHABLE_FOR`].
    pub async fn check(&self, base: &str, path: &str, tag: &str, digest: &str) -> Check {
        {
            let mut unreachable = self.unreachable.lock().expect("not poisoned");
            unreachable.retain(|_, since| since.elapsed() < UNREACHABLE_FOR);
            if unreachable.contains_key(base) {
                return Check::Unverifiable(format!("the registry API at {base} did not answer recently"));
            }
        }
        let (check, answered) = check_once(&self.client, base, path, tag, digest).await;
        if !answered {
            self.unreachable
                .lock()
                .expect("not poisoned")
                .insert(base.to_owned(), Instant::now());
        }
        check
    }
}

/// `HEAD <base>/v2/<path>/manifests/<tag>` and compare the digest.
pub async fn check(client: &reqwest::Client, base: &str, path: &str, tag: &str, digest: &str) -> Check {
    check_once(client, base, path, tag, digest).await.0
}

/// The check, and whether the registry answered at all.
async fn check_once(client: &reqwest::Client, base: &str, path: &str, tag: &str, digest: &str) -> (Check, bool) {
    let url = format!("{base}/v2/{path}/manifests/{tag}");
    let response = match client
        .head(&url)
        .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "))
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) => {
            let check = Check::Unverifiable(format!("the registry API at {base} did not answer: {err}"));
            return (check, false);
        }
    };
    let check = match response.status() {
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
    };
    (check, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_registry_is_left_alone_for_a_while() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let verifier = Verifier::new();
        let first = verifier.check(&base, "team/app", "t", "sha256:x").await;
        assert!(
            matches!(&first, Check::Unverifiable(why) if why.contains("did not answer:")),
            "{first:?}"
        );
        let second = verifier.check(&base, "team/app", "t", "sha256:x").await;
        assert!(
            matches!(&second, Check::Unverifiable(why) if why.contains("recently")),
            "{second:?}"
        );
    }

    #[test]
    fn api_bases() {
        assert_eq!(api_base("docker.io", None), "https://registry-1.docker.io");
        assert_eq!(
            api_base("registry.example.org:5000", None),
            "https://registry.example.org:5000"
        );
        assert_eq!(api_base("x", Some("http://127.0.0.1:5000/")), "http://127.0.0.1:5000");
    }
}
