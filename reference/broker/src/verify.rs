//! Re-checking tag → digest against the registry before delivering
//! (`spec/service-api.md` API-15, DESIGN.md §5): "where the registry's API is
//! reachable, re-check that the tag still points to the digest
//! (`HEAD /v2/<name>/manifests/<tag>`) and drop the event if not", so that a
//! forged or stale webhook cannot move a deployment.
//!
//! A registry that cannot answer (unreachable, refuses the credentials, no
//! `Docker-Content-Digest`) leaves the event as the hook reported it, unless
//! the registry is `verify-required` (`[[registries]]`): then the event
//! waits for the grace period and is dropped. Events without a digest
//! (Docker Hub, Quay, Gitea) are resolved here before they can be delivered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::registries::Credentials;
use crate::resolve::{Resolution, Resolver};
use crate::ssrf;

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

/// Who chose a registry API URL, which decides the rule its requests follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The operator (`[[registries]]`): loopback and private addresses are
    /// allowed, the operator chose them; metadata addresses never are.
    Operator,
    /// A subscriber (an image's host or `subscription.registry.url`): the
    /// callback rule ([`ssrf::Policy`]), so a subscription cannot make the
    /// broker probe its own network or the cloud's metadata service.
    Subscriber,
}

/// The HTTP client of registry requests: the callback client's policy — no
/// redirects (a redirect could lead anywhere the URL rule forbids), no
/// proxy (the addresses checked are the ones connected to) and a resolver
/// that drops forbidden addresses (metadata ones always; loopback and
/// private ones unless `allow_private`).
///
/// # Panics
///
/// If the TLS backend cannot be initialized.
pub fn client(allow_private: bool, hosts: &ssrf::Hosts) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(ssrf::FilteringResolver {
            allow_private,
            hosts: hosts.clone(),
        }))
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

/// Re-checks with a memory of registries that did not answer and a cache
/// of registry tokens ([`crate::resolve`]).
#[derive(Debug)]
pub struct Verifier {
    operator: reqwest::Client,
    subscriber: reqwest::Client,
    policy: ssrf::Policy,
    resolver: Resolver,
    unreachable: Mutex<HashMap<String, Instant>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier whose subscriber-chosen URLs follow the strictest rule
    /// (public https only).
    pub fn new() -> Self {
        Self::with_policy(ssrf::Policy::default(), &ssrf::Hosts::default())
    }

    /// A verifier whose subscriber-chosen URLs follow `policy` (the
    /// broker's callback rule).
    pub fn with_policy(policy: ssrf::Policy, hosts: &ssrf::Hosts) -> Self {
        Self {
            operator: client(true, hosts),
            subscriber: client(policy.allow_private, hosts),
            policy,
            resolver: Resolver::new(),
            unreachable: Mutex::new(HashMap::new()),
        }
    }

    /// [`Verifier::resolve_from`] an operator-configured registry.
    pub async fn resolve(&self, base: &str, path: &str, tag: &str, credentials: Option<&Credentials>) -> Resolution {
        self.resolve_from(Origin::Operator, base, path, tag, credentials).await
    }

    /// Where the tag points now, with the registry's pull credentials,
    /// under the rule of whoever chose `base`; skipped for a registry API
    /// that did not answer within the last [`UNREACHABLE_FOR`].
    pub async fn resolve_from(
        &self,
        origin: Origin,
        base: &str,
        path: &str,
        tag: &str,
        credentials: Option<&Credentials>,
    ) -> Resolution {
        {
            let mut unreachable = self.unreachable.lock().expect("not poisoned");
            unreachable.retain(|_, since| since.elapsed() < UNREACHABLE_FOR);
            if unreachable.contains_key(base) {
                return Resolution::Unresolved(format!("the registry API at {base} did not answer recently"));
            }
        }
        let (client, policy) = match origin {
            Origin::Operator => (&self.operator, None),
            Origin::Subscriber => (&self.subscriber, Some(self.policy)),
        };
        let (resolution, answered) = self
            .resolver
            .resolve(client, policy, base, path, tag, credentials)
            .await;
        if !answered {
            self.unreachable
                .lock()
                .expect("not poisoned")
                .insert(base.to_owned(), Instant::now());
        }
        resolution
    }

    /// Whether the tag points to `digest` now.
    pub async fn check(
        &self,
        base: &str,
        path: &str,
        tag: &str,
        digest: &str,
        credentials: Option<&Credentials>,
    ) -> Check {
        match self.resolve(base, path, tag, credentials).await {
            Resolution::Digest(found) if found == digest => Check::Verified,
            Resolution::Digest(found) => Check::Mismatch(format!(
                "the registry says {path}:{tag} points to {found}, not {digest}"
            )),
            Resolution::NotFound(why) => Check::Mismatch(why),
            Resolution::Unresolved(why) => Check::Unverifiable(why),
        }
    }
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
        let first = verifier.check(&base, "team/app", "t", "sha256:x", None).await;
        assert!(
            matches!(&first, Check::Unverifiable(why) if why.contains("did not answer:")),
            "{first:?}"
        );
        let second = verifier.check(&base, "team/app", "t", "sha256:x", None).await;
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
