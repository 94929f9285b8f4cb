//! Just enough of the OCI distribution API for the `registry` target: the
//! bearer-token challenge, tag listing with `Link` pagination, a monolithic
//! push of a tiny image built in memory, `HEAD` and `DELETE` of manifests.

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::exchange::{Request, Response};

/// The OCI image manifest media type.
pub(crate) const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// How the runner authenticates to a registry. `Debug` never shows the
/// password or token.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum RegistryAuth {
    /// Anonymous (a bearer challenge is still answered, anonymously).
    #[default]
    Anonymous,
    /// A user name and password: Basic, or the credentials for the token
    /// endpoint of a bearer challenge.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A bearer token obtained elsewhere.
    Token(String),
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAuth::Anonymous => f.write_str("Anonymous"),
            RegistryAuth::Basic { username, .. } => write!(f, "Basic({username}:<redacted>)"),
            RegistryAuth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// What happened on the way to an answer: whether a challenge was met.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthTrace {
    /// The `WWW-Authenticate` challenge, if the registry sent one.
    pub challenge: Option<String>,
    /// The token endpoint request and its answer, if one was made.
    pub token_exchange: Option<(String, String)>,
    /// Why the challenge could not be met.
    pub problem: Option<String>,
}

/// A registry client.
pub(crate) struct Registry {
    client: Client,
    base: Url,
    auth: RegistryAuth,
    token: Mutex<Option<String>>,
    pub trace: Mutex<AuthTrace>,
}

impl Registry {
    pub(crate) fn new(client: Client, base: Url, auth: RegistryAuth) -> Self {
        let token = match &auth {
            RegistryAuth::Token(t) => Some(t.clone()),
            _ => None,
        };
        Self {
            client,
            base,
            auth,
            token: Mutex::new(token),
            trace: Mutex::default(),
        }
    }

    /// The absolute URL of `path` (which may carry a query), or of a `Link`
    /// target relative to the registry.
    pub(crate) fn url(&self, path: &str) -> Result<Url, String> {
        self.base.join(path).map_err(|e| format!("bad URL {path:?}: {e}"))
    }

    fn authorize(&self, request: Request) -> Request {
        let token = self.token.lock().expect("not poisoned").clone();
        match (&token, &self.auth) {
            (Some(token), _) => request.header("authorization", format!("Bearer {token}")),
            (None, RegistryAuth::Basic { username, password }) => request.header(
                "authorization",
                format!("Basic {}", BASE64.encode(format!("{username}:{password}"))),
            ),
            _ => request,
        }
    }

    /// Sends `request`, meeting one bearer challenge on the way.
    pub(crate) async fn send(&self, request: Request) -> Result<(Request, Response), String> {
        let sent = self.authorize(request.clone());
        let response = sent.send(&self.client).await?;
        if response.status.as_u16() != 401 {
            return Ok((sent, response));
        }
        let Some(challenge) = response.header("www-authenticate").map(str::to_owned) else {
            return Ok((sent, response));
        };
        self.trace.lock().expect("not poisoned").challenge = Some(challenge.clone());
        if !challenge.to_ascii_lowercase().starts_with("bearer ") {
            return Ok((sent, response));
        }
        match self.fetch_token(&challenge).await {
            Ok(token) => *self.token.lock().expect("not poisoned") = Some(token),
            Err(problem) => {
                self.trace.lock().expect("not poisoned").problem = Some(problem);
                return Ok((sent, response));
            }
        }
        let sent = self.authorize(request);
        let response = sent.send(&self.client).await?;
        Ok((sent, response))
    }

    async fn fetch_token(&self, challenge: &str) -> Result<String, String> {
        let params = challenge_params(challenge);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("the bearer challenge {challenge:?} has no realm"))?;
        let mut url = Url::parse(&realm).map_err(|e| format!("the realm {realm:?} is not a URL: {e}"))?;
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in &params {
                if key == "service" || key == "scope" {
                    query.append_pair(key, value);
                }
            }
        }
        let mut request = Request::new(Method::GET, url);
        if let RegistryAuth::Basic { username, password } = &self.auth {
            request = request.header(
                "authorization",
                format!("Basic {}", BASE64.encode(format!("{username}:{password}"))),
            );
        }
        let response = request.send(&self.client).await?;
        // The answer's body is the token: only its status goes into reports.
        self.trace.lock().expect("not poisoned").token_exchange = Some((
            request.describe(),
            format!("{} after {} ms", response.status, response.elapsed.as_millis()),
        ));
        if !response.status.is_success() {
            return Err(format!("the token endpoint answered {}", response.status));
        }
        let json: Value =
            serde_json::from_slice(&response.body).map_err(|e| format!("the token answer is not JSON: {e}"))?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "the token answer has neither token nor access_token".to_owned())
    }
}

/// The `key="value"` parameters of a challenge, after its scheme.
pub(crate) fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.split_once(' ').map_or("", |(_, rest)| rest);
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            value
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        params.push((key.trim().to_ascii_lowercase(), value));
    }
    params
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "").eq_ignore_ascii_case("rel=\"next\"") || p.trim() == "rel=next");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

/// A tiny image: one empty layer, a config with the created and version
/// labels, a manifest with the same annotations.
pub(crate) struct TinyImage {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl TinyImage {
    pub(crate) fn new(created: DateTime<Utc>, version: &str) -> Self {
        // An empty tar archive: two zero blocks.
        let layer = vec![0u8; 1024];
        let created = created.to_rfc3339_opts(SecondsFormat::Secs, true);
        let labels = json!({
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.title": "tagcast conformance",
        });
        let config = serde_json::to_vec(&json!({
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": { "Labels": labels },
            "rootfs": { "type": "layers", "diff_ids": [digest(&layer)] },
            "history": [{ "created": created, "created_by": "tagcast conformance registry --push" }]
        }))
        .expect("JSON serializes");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len() }],
            "annotations": labels,
        }))
        .expect("JSON serializes");
        Self {
            layer,
            config,
            manifest,
        }
    }

    pub(crate) fn digest(&self) -> String {
        digest(&self.manifest)
    }
}

pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Pushes a blob with a monolithic upload (`POST`, then one `PUT`).
pub(crate) async fn push_blob(registry: &Registry, repository: &str, blob: &[u8]) -> Result<(), String> {
    let start = Request::new(Method::POST, registry.url(&format!("/v2/{repository}/blobs/uploads/"))?);
    let (sent, response) = registry.send(start).await?;
    if response.status.as_u16() != 202 {
        return Err(format!(
            "starting an upload was answered {}\n{}\n{}",
            response.status,
            sent.describe(),
            response.describe()
        ));
    }
    let location = response
        .header("location")
        .ok_or_else(|| "the upload answer has no Location".to_owned())?;
    let mut url = registry.url(location)?;
    url.query_pairs_mut().append_pair("digest", &digest(blob));
    let put = Request::new(Method::PUT, url)
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec());
    let (sent, response) = registry.send(put).await?;
    if response.status.as_u16() != 201 {
        return Err(format!(
            "completing an upload was answered {}\n{}\n{}",
            response.status,
            sent.describe(),
            response.describe()
        ));
    }
    Ok(())
}

/// Pushes `image` under `tag`; the digest the registry reports.
pub(crate) async fn push_image(
    registry: &Registry,
    repository: &str,
    tag: &str,
    image: &TinyImage,
) -> Result<Option<String>, String> {
    push_blob(registry, repository, &image.layer).await?;
    push_blob(registry, repository, &image.config).await?;
    let put = Request::new(Method::PUT, registry.url(&format!("/v2/{repository}/manifests/{tag}"))?)
        .header("content-type", MANIFEST)
        .body(image.manifest.clone());
    let (sent, response) = registry.send(put).await?;
    if response.status.as_u16() != 201 {
        return Err(format!(
            "pushing the manifest was answered {}\n{}\n{}",
            response.status,
            sent.describe(),
            response.describe()
        ));
    }
    Ok(response.header("docker-content-digest").map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_quotes_and_commas() {
        let params = challenge_params(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            params,
            [
                ("realm".to_owned(), "https://auth.example/token".to_owned()),
                ("service".to_owned(), "registry.example".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull,push".to_owned()),
            ]
        );
    }

    #[test]
    fn next_links_are_found() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
