//! Tag → digest from a registry's OCI Distribution API, with the registry's
//! `pull` credentials: `HEAD /v2/<name>/manifests/<tag>` with the index and
//! manifest media types in `Accept`, answered by `Docker-Content-Digest`.
//!
//! Authentication follows what registries answer with `401`:
//! - `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (Docker Hub,
//!   GHCR, Quay, Harbor, Gitea): `GET <realm>?service=…&scope=…`, with HTTP
//!   Basic when credentials are configured, anonymously otherwise; the answer
//!   is JSON with `token` or `access_token` (either may appear; `expires_in`
//!   defaults to 60 s); the request is retried with `Authorization: Bearer`.
//!   Source: the Distribution token authentication specification,
//!   distribution/distribution `docs/content/spec/auth/token.md` ("How to
//!   authenticate", "Requesting a Token", "Token Response Fields"); the
//!   challenge syntax is RFC 6750 §3.
//! - `WWW-Authenticate: Basic …` (a registry behind HTTP Basic): retried
//!   with the configured user name and password.
//!
//! Tokens are cached per realm, service and scope until shortly before they
//! expire. A `token-file`/`token-env` pull credential is sent as a bearer
//! token on the registry request itself, for registries that accept static
//! tokens. Credentials are never sent to a plain-http realm of an https
//! registry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use serde::Deserialize;

use crate::inbound::MANIFEST_MEDIA_TYPES;
use crate::registries::Credentials;
use crate::ssrf;

/// What the registry says a tag points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The manifest digest the tag points to now.
    Digest(String),
    /// The registry says the tag (or repository) does not exist: the reason.
    NotFound(String),
    /// The registry could not tell (unreachable, refused, no digest): the reason.
    Unresolved(String),
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic`, lower case.
    pub scheme: String,
    /// The auth-params, names lower case.
    pub params: HashMap<String, String>,
}

/// Parses one challenge: `Scheme k="v",k2=v2`. Quoted values may contain
/// commas (`scope="repository:a/b:pull,push"`) and `\`-escapes.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        params.insert(name.trim().to_ascii_lowercase(), value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// A token service's answer (token.md, "Token Response Fields"); no
/// `Debug`: it holds the token.
#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// The default lifetime of a token without `expires_in` (token.md).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// How long before its expiry a cached token is no longer used.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// Resolves tags with a cache of bearer tokens.
#[derive(Debug, Default)]
pub struct Resolver {
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Resolver {
    /// A resolver with an empty token cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// What `<base>/v2/<path>/manifests/<tag>` points to, and whether the
    /// registry answered at all (`false`: unreachable). With a `policy`
    /// (a subscriber chose `base`), the manifest URL and a token realm must
    /// pass the callback URL rule before they are requested: the client's
    /// resolver checks names, this checks literal addresses and schemes.
    pub async fn resolve(
        &self,
        client: &reqwest::Client,
        policy: Option<ssrf::Policy>,
        base: &str,
        path: &str,
        tag: &str,
        credentials: Option<&Credentials>,
    ) -> (Resolution, bool) {
        let url = format!("{base}/v2/{path}/manifests/{tag}");
        if let Some(Err(refused)) = policy.map(|p| ssrf::check_url(&url, p)) {
            return (Resolution::Unresolved(format!("registry {refused}")), true);
        }
        let head = |authorization: Option<String>| {
            let mut request = client.head(&url).header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
            if let Some(value) = authorization {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            request.send()
        };
        let first = match credentials {
            Some(Credentials::Bearer(token)) => Some(format!("Bearer {}", token.expose())),
            _ => None,
        };
        let sent_token = first.is_some();
        let mut response = match head(first).await {
            Ok(response) => response,
            Err(err) => return (unreachable(base, &err), false),
        };
        if response.status() == StatusCode::UNAUTHORIZED && !sent_token {
            let challenge = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(parse_challenge)
                .find(|c| c.scheme == "bearer" || c.scheme == "basic");
            let authorization = match challenge {
                Some(c) if c.scheme == "bearer" => {
                    match self.token(client, policy, base, path, &c, credentials).await {
                        Ok(token) => format!("Bearer {token}"),
                        Err(why) => return (Resolution::Unresolved(why), true),
                    }
                }
                Some(_) => match credentials {
                    Some(Credentials::Basic { username, password }) => basic(username, password.expose()),
                    _ => {
                        let why =
                            format!("the registry at {base} needs credentials (Basic); configure [[registries]] pull");
                        return (Resolution::Unresolved(why), true);
                    }
                },
                None => {
                    let why = format!("the registry at {base} answered 401 without a Bearer or Basic challenge");
                    return (Resolution::Unresolved(why), true);
                }
            };
            response = match head(Some(authorization)).await {
                Ok(response) => response,
                Err(err) => return (unreachable(base, &err), false),
            };
        }
        let resolution = match response.status() {
            StatusCode::NOT_FOUND => Resolution::NotFound(format!("the registry says {path}:{tag} does not exist")),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Resolution::Unresolved(format!(
                "the registry at {base} refused to read {path}:{tag} ({}){}",
                response.status().as_u16(),
                if credentials.is_some() {
                    ""
                } else {
                    "; configure [[registries]] pull credentials"
                }
            )),
            status if status.is_success() => match response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| tagcast_spec::Digest::parse(v).ok())
            {
                Some(digest) => Resolution::Digest(digest.to_string()),
                None => Resolution::Unresolved("the registry sent no valid Docker-Content-Digest".into()),
            },
            status => Resolution::Unresolved(format!("the registry at {base} answered {}", status.as_u16())),
        };
        (resolution, true)
    }

    /// A bearer token for the challenge, from the cache or the realm.
    async fn token(
        &self,
        client: &reqwest::Client,
        policy: Option<ssrf::Policy>,
        base: &str,
        path: &str,
        challenge: &Challenge,
        credentials: Option<&Credentials>,
    ) -> Result<String, String> {
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| format!("the registry at {base} sent a Bearer challenge without a realm"))?;
        let realm_url = url::Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| format!("the registry at {base} sent a realm that is not an http(s) URL"))?;
        if let Some(Err(refused)) = policy.map(|p| ssrf::check_url(realm_url.as_str(), p)) {
            return Err(format!(
                "the registry at {base} sent a token realm that is refused: {refused}"
            ));
        }
        let scope = challenge
            .params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{path}:pull"));
        let service = challenge.params.get("service").cloned();
        let key = format!("{realm}\n{}\n{scope}", service.as_deref().unwrap_or_default());
        {
            let mut cache = self.tokens.lock().expect("not poisoned");
            cache.retain(|_, (_, until)| *until > Instant::now());
            if let Some((token, _)) = cache.get(&key) {
                return Ok(token.clone());
            }
        }
        let mut request = client.get(realm_url.clone());
        let mut query: Vec<(&str, &str)> = vec![("scope", scope.as_str())];
        if let Some(service) = &service {
            query.insert(0, ("service", service.as_str()));
        }
        request = request.query(&query);
        if let Some(Credentials::Basic { username, password }) = credentials {
            if realm_url.scheme() == "http" && base.starts_with("https:") {
                return Err(format!(
                    "the registry at {base} sent a plain-http realm; credentials are not sent there"
                ));
            }
            request = request.basic_auth(username, Some(password.expose()));
        }
        let response = request.send().await.map_err(|err| {
            format!(
                "the token service of {base} did not answer: {}",
                crate::delivery::describe(&err)
            )
        })?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(format!(
                    "the token service of {base} refused the {} ({})",
                    if credentials.is_some() {
                        "configured pull credentials"
                    } else {
                        "anonymous request; configure [[registries]] pull credentials"
                    },
                    response.status().as_u16()
                ));
            }
            status => {
                return Err(format!("the token service of {base} answered {}", status.as_u16()));
            }
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|_| format!("the token service of {base} sent no token JSON"))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("the token service of {base} sent neither token nor access_token"))?;
        let lifetime = answer
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
            .saturating_sub(TOKEN_MARGIN);
        if !lifetime.is_zero() {
            self.tokens
                .lock()
                .expect("not poisoned")
                .insert(key, (token.clone(), Instant::now() + lifetime));
        }
        Ok(token)
    }
}

fn basic(username: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

fn unreachable(base: &str, err: &reqwest::Error) -> Resolution {
    Resolution::Unresolved(format!(
        "the registry API at {base} did not answer: {}",
        crate::delivery::describe(err)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        // The example of token.md.
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:samalba/my-app:pull,push");
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
        let c = parse_challenge(r#"bearer realm=https://x/token, error="insufficient_scope""#).unwrap();
        assert_eq!(c.params["realm"], "https://x/token");
        assert_eq!(c.params["error"], "insufficient_scope");
        assert_eq!(parse_challenge("  "), None);
    }
}
