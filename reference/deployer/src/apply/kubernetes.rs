//! `--apply kubernetes`: a strategic-merge PATCH of the workload through
//! the Kubernetes API, then waiting for the rollout.
//!
//! The request is the one the API documents (and that `kubectl set image`
//! sends): `PATCH /apis/apps/v1/namespaces/{ns}/{deployments}/{name}` with
//! `Content-Type: application/strategic-merge-patch+json`; containers are
//! merged by `name`. OpenShift serves the same API for its Deployments.
//!
//! Credentials: the pod's service account (in-cluster), a kubeconfig, or an
//! explicit server and token file.
//!
//! Trust (issue 11, finding 8): when a CA is configured (the kubeconfig's
//! `certificate-authority`, `--kube-ca`, the service account's `ca.crt`),
//! it is the only trust anchor — the public roots built into the client are
//! dropped, so a certificate any public CA issued for the API server's name
//! is not enough. A bearer token is never sent over plain `http://`, except
//! to a loopback address (`kubectl proxy`, a test server), where it does not
//! cross a network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::kubectl::WorkloadKind;
use super::{ApplyError, Update};

/// Annotation recording the applied digest on the workload.
pub const DIGEST_ANNOTATION: &str = "tagcast.elixir-cloud.org/digest";
/// Annotation recording the applied tag.
pub const TAG_ANNOTATION: &str = "tagcast.elixir-cloud.org/tag";
/// Annotation recording the event that brought the change.
pub const EVENT_ANNOTATION: &str = "tagcast.elixir-cloud.org/event-id";
/// The media type of a strategic merge patch.
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";

const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How the deployer reaches and authenticates to the API server.
#[derive(Clone)]
pub struct Access {
    /// Base URL of the API server, without a trailing slash.
    pub server: String,
    /// Where the bearer token comes from.
    pub token: Option<Token>,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and key (PEM, concatenated).
    pub identity_pem: Option<Vec<u8>>,
    /// Skip TLS verification (`insecure-skip-tls-verify` of a kubeconfig).
    pub insecure: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("Access")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem.is_some())
            .field("identity_pem", &self.identity_pem.is_some())
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// A bearer token: fixed, or re-read from a file on every request (a
/// projected service-account token rotates).
#[derive(Clone)]
pub enum Token {
    /// The token itself.
    Value(String),
    /// A file that holds it.
    File(PathBuf),
}

impl Access {
    /// The pod's own service account: `KUBERNETES_SERVICE_HOST`/`_PORT`,
    /// the token and CA under `/var/run/secrets/kubernetes.io/serviceaccount`.
    ///
    /// # Errors
    ///
    /// A message when not running in a pod.
    pub fn in_cluster() -> Result<Self, String> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .map_err(|_| "KUBERNETES_SERVICE_HOST is not set: not running in a pod".to_owned())?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".to_owned());
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let dir = Path::new(SERVICE_ACCOUNT_DIR);
        let ca = std::fs::read(dir.join("ca.crt")).map_err(|e| format!("{SERVICE_ACCOUNT_DIR}/ca.crt: {e}"))?;
        Ok(Self {
            server: format!("https://{host}:{port}"),
            token: Some(Token::File(dir.join("token"))),
            ca_pem: Some(ca),
            identity_pem: None,
            insecure: false,
        })
    }

    /// The current (or named) context of a kubeconfig. JSON is read
    /// directly; YAML is turned into JSON by `kubectl config view`.
    /// Exec and auth-provider plugins are not supported: use a token.
    ///
    /// # Errors
    ///
    /// A message naming the file and what is missing.
    pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
        let config: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) => kubeconfig_as_json(path)?,
        };
        Self::from_kubeconfig_value(&config, context, path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| format!("kubeconfig {}: {e}", path.display()))
    }

    fn from_kubeconfig_value(config: &Value, context: Option<&str>, base: &Path) -> Result<Self, String> {
        let context_name = context
            .map(str::to_owned)
            .or_else(|| config["current-context"].as_str().map(str::to_owned))
            .ok_or("no current-context")?;
        let named = |list: &str, name: &str| -> Option<Value> {
            config[list]
                .as_array()?
                .iter()
                .find(|e| e["name"].as_str() == Some(name))
                .cloned()
        };
        let ctx = named("contexts", &context_name).ok_or(format!("no context {context_name:?}"))?;
        let cluster_name = ctx["context"]["cluster"].as_str().ok_or("context has no cluster")?;
        let cluster = named("clusters", cluster_name).ok_or(format!("no cluster {cluster_name:?}"))?;
        let cluster = &cluster["cluster"];
        let user = ctx["context"]["user"]
            .as_str()
            .and_then(|u| named("users", u))
            .map(|u| u["user"].clone())
            .unwrap_or(Value::Null);
        let resolve = |p: &str| {
            if Path::new(p).is_absolute() {
                PathBuf::from(p)
            } else {
                base.join(p)
            }
        };
        let data_or_file = |data: &Value, file: &Value| -> Result<Option<Vec<u8>>, String> {
            if let Some(d) = data.as_str() {
                return STANDARD.decode(d).map(Some).map_err(|e| format!("bad base64: {e}"));
            }
            if let Some(f) = file.as_str() {
                return std::fs::read(resolve(f)).map(Some).map_err(|e| format!("{f}: {e}"));
            }
            Ok(None)
        };
        if user.get("exec").is_some() || user.get("auth-provider").is_some() {
            return Err("exec and auth-provider credentials are not supported; use a service-account token".into());
        }
        let token = match (user["token"].as_str(), user["tokenFile"].as_str()) {
            (Some(t), _) => Some(Token::Value(t.to_owned())),
            (None, Some(f)) => Some(Token::File(resolve(f))),
            _ => None,
        };
        let cert = data_or_file(&user["client-certificate-data"], &user["client-certificate"])?;
        let key = data_or_file(&user["client-key-data"], &user["client-key"])?;
        let identity_pem = match (cert, key) {
            (Some(mut c), Some(k)) => {
                c.push(b'\n');
                c.extend(k);
                Some(c)
            }
            _ => None,
        };
        Ok(Self {
            server: cluster["server"]
                .as_str()
                .ok_or("cluster has no server")?
                .trim_end_matches('/')
                .to_owned(),
            token,
            ca_pem: data_or_file(
                &cluster["certificate-authority-data"],
                &cluster["certificate-authority"],
            )?,
            identity_pem,
            insecure: cluster["insecure-skip-tls-verify"].as_bool().unwrap_or(false),
        })
    }

    /// Whether the public roots built into the client are trusted: only
    /// when no CA is configured.
    pub fn trusts_public_roots(&self) -> bool {
        self.ca_pem.is_none()
    }

    /// Refuses to send a bearer token in the clear: `http://` with a token
    /// is allowed only to a loopback host.
    ///
    /// # Errors
    ///
    /// A message naming the server and the rule.
    pub fn check_transport(&self) -> Result<(), String> {
        let Some(rest) = self.server.strip_prefix("http://") else {
            return Ok(());
        };
        if self.token.is_none() {
            return Ok(());
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
        Err(format!(
            "server {} is plain http:// and a bearer token is configured: refusing to send the token \
             unencrypted; use the API server's https:// URL (plain http is allowed only to a loopback address)",
            self.server
        ))
    }

    fn client(&self, timeout: Duration) -> Result<reqwest::Client, String> {
        self.check_transport()?;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(self.trusts_public_roots());
        if let Some(ca) = &self.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| format!("CA certificate: {e}"))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(identity) = &self.identity_pem {
            builder = builder
                .identity(reqwest::Identity::from_pem(identity).map_err(|e| format!("client certificate: {e}"))?);
        }
        if self.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        builder.build().map_err(|e| format!("HTTP client: {e}"))
    }
}

fn kubeconfig_as_json(path: &Path) -> Result<Value, String> {
    let output = std::process::Command::new("kubectl")
        .args(["config", "view", "--raw", "--output=json", "--kubeconfig"])
        .arg(path)
        .output()
        .map_err(|e| {
            format!(
                "kubeconfig {} is YAML and kubectl cannot run to read it: {e}",
                path.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "kubeconfig {}: kubectl config view failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("kubeconfig {}: {e}", path.display()))
}

/// The kubernetes mode.
#[derive(Debug, Clone)]
pub struct Kubernetes {
    /// Server and credentials.
    pub access: Access,
    /// The namespace.
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// Its kind.
    pub kind: WorkloadKind,
    /// The container; when absent, every container whose image has the
    /// event's repository.
    pub container: Option<String>,
    /// How long the rollout may take; zero: do not wait.
    pub rollout_timeout: Duration,
    /// How long one API request may take.
    pub timeout: Duration,
}

/// The strategic merge patch for an update: the containers' images, and
/// annotations recording what was applied.
pub fn patch_body(update: &Update, containers: &[String]) -> Value {
    let previous = update.previous_tag.as_deref().unwrap_or("(none)");
    json!({
        "metadata": {
            "annotations": {
                DIGEST_ANNOTATION: update.digest.to_string(),
                TAG_ANNOTATION: update.tag_text,
                EVENT_ANNOTATION: update.event_id,
                "kubernetes.io/change-cause": format!(
                    "tagcast: {} {previous} -> {} (event {})",
                    update.image, update.tag_text, update.event_id
                ),
            }
        },
        "spec": {
            "template": {
                "spec": {
                    "containers": containers
                        .iter()
                        .map(|name| json!({"name": name, "image": update.reference}))
                        .collect::<Vec<_>>()
                }
            }
        }
    })
}

impl Kubernetes {
    fn url(&self) -> String {
        format!(
            "{}/apis/apps/v1/namespaces/{}/{}/{}",
            self.access.server,
            self.namespace,
            self.kind.resource(),
            self.name
        )
    }

    fn what(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    async fn request(
        &self,
        client: &reqwest::Client,
        method: Method,
        body: Option<&Value>,
    ) -> Result<Value, ApplyError> {
        let mut request = client
            .request(method.clone(), self.url())
            .header("Accept", "application/json");
        match &self.access.token {
            Some(Token::Value(t)) => request = request.bearer_auth(t),
            Some(Token::File(f)) => {
                let t = tokio::fs::read_to_string(f)
                    .await
                    .map_err(|e| ApplyError::Kubernetes(format!("token file {}: {e}", f.display())))?;
                request = request.bearer_auth(t.trim());
            }
            None => {}
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", STRATEGIC_MERGE_PATCH)
                .body(serde_json::to_vec(body).expect("JSON values serialize"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| ApplyError::Kubernetes(format!("{method} {}: {e}", self.what())))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            // The API's Status object says why in `message`.
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| crate::command::tail(&text));
            let hint = match status {
                StatusCode::UNAUTHORIZED => " (the token was not accepted)",
                StatusCode::FORBIDDEN => " (the service account may not do this: see the Role in reference/deploy/)",
                StatusCode::NOT_FOUND => " (no such workload)",
                _ => "",
            };
            return Err(ApplyError::Kubernetes(format!(
                "{method} {} answered {status}{hint}: {message}",
                self.what()
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| ApplyError::Kubernetes(format!("{method} {}: response is not JSON: {e}", self.what())))
    }

    async fn containers(&self, client: &reqwest::Client, update: &Update) -> Result<Vec<String>, ApplyError> {
        if let Some(name) = &self.container {
            return Ok(vec![name.clone()]);
        }
        let object = self.request(client, Method::GET, None).await?;
        let names: Vec<String> = object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                c["image"]
                    .as_str()
                    .and_then(|i| tagcast_spec::ImageReference::parse(i).ok())
                    .is_some_and(|r| r.repository() == update.image)
            })
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        if names.is_empty() {
            return Err(ApplyError::Kubernetes(format!(
                "no container of {} runs {}; name one with --container",
                self.what(),
                update.image
            )));
        }
        Ok(names)
    }

    pub(crate) async fn apply(&self, update: &Update) -> Result<String, ApplyError> {
        let client = self.access.client(self.timeout).map_err(ApplyError::Kubernetes)?;
        let containers = self.containers(&client, update).await?;
        let patched = self
            .request(&client, Method::PATCH, Some(&patch_body(update, &containers)))
            .await?;
        let done = format!(
            "patched {} ({}) to {}",
            self.what(),
            containers.join(", "),
            update.reference
        );
        if self.rollout_timeout.is_zero() {
            return Ok(done);
        }
        let generation = patched["metadata"]["generation"].as_i64().unwrap_or(0);
        let deadline = tokio::time::Instant::now() + self.rollout_timeout;
        loop {
            let object = self.request(&client, Method::GET, None).await?;
            match rollout_state(self.kind, &object, generation) {
                Rollout::Complete => return Ok(format!("{done}; rollout complete")),
                Rollout::Failed(why) => {
                    return Err(ApplyError::Kubernetes(format!("{done}, but the rollout failed: {why}")));
                }
                Rollout::Progressing(why) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ApplyError::Kubernetes(format!(
                            "{done}, but the rollout did not complete within {:?}: {why}",
                            self.rollout_timeout
                        )));
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(2).min(self.rollout_timeout)).await;
        }
    }
}

/// Where a rollout stands, read from the workload's status as `kubectl
/// rollout status` reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rollout {
    Complete,
    Progressing(String),
    Failed(String),
}

pub(crate) fn rollout_state(kind: WorkloadKind, object: &Value, generation: i64) -> Rollout {
    let status = &object["status"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    if int(&status["observedGeneration"]) < generation {
        return Rollout::Progressing("waiting for the controller to observe the change".into());
    }
    match kind {
        WorkloadKind::Deployment => {
            let failed = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
            if failed {
                return Rollout::Failed("progress deadline exceeded".into());
            }
            let want = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let (updated, replicas, available) = (
                int(&status["updatedReplicas"]),
                int(&status["replicas"]),
                int(&status["availableReplicas"]),
            );
            if updated < want {
                Rollout::Progressing(format!("{updated} of {want} replicas updated"))
            } else if replicas > updated {
                Rollout::Progressing(format!("{} old replicas pending termination", replicas - updated))
            } else if available < updated {
                Rollout::Progressing(format!("{available} of {updated} updated replicas available"))
            } else {
                Rollout::Complete
            }
        }
        WorkloadKind::StatefulSet => {
            let want = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let (updated, ready) = (int(&status["updatedReplicas"]), int(&status["readyReplicas"]));
            if updated < want || ready < want {
                Rollout::Progressing(format!("{updated} of {want} updated, {ready} ready"))
            } else {
                Rollout::Complete
            }
        }
        WorkloadKind::DaemonSet => {
            let want = int(&status["desiredNumberScheduled"]);
            let (updated, available) = (int(&status["updatedNumberScheduled"]), int(&status["numberAvailable"]));
            if updated < want || available < want {
                Rollout::Progressing(format!("{updated} of {want} updated, {available} available"))
            } else {
                Rollout::Complete
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_json_current_context() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "abc\n").unwrap();
        let config = json!({
            "current-context": "prod",
            "contexts": [
                {"name": "dev", "context": {"cluster": "c2", "user": "u2"}},
                {"name": "prod", "context": {"cluster": "c1", "user": "u1"}}
            ],
            "clusters": [
                {"name": "c1", "cluster": {"server": "https://k8s.example:6443/", "insecure-skip-tls-verify": true}},
                {"name": "c2", "cluster": {"server": "https://dev.example"}}
            ],
            "users": [{"name": "u1", "user": {"tokenFile": "token"}}, {"name": "u2", "user": {"token": "t"}}]
        });
        let access = Access::from_kubeconfig_value(&config, None, dir.path()).unwrap();
        assert_eq!(access.server, "https://k8s.example:6443");
        assert!(access.insecure);
        assert!(matches!(&access.token, Some(Token::File(p)) if p == &dir.path().join("token")));
        let dev = Access::from_kubeconfig_value(&config, Some("dev"), dir.path()).unwrap();
        assert_eq!(dev.server, "https://dev.example");
        assert!(matches!(&dev.token, Some(Token::Value(t)) if t == "t"));
        assert!(!format!("{dev:?}").contains("\"t\""), "Debug never prints the token");
        let err = Access::from_kubeconfig_value(&config, Some("nope"), dir.path()).unwrap_err();
        assert_eq!(err, "no context \"nope\"");
    }

    #[test]
    fn exec_plugins_are_refused() {
        let config = json!({
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
            "users": [{"name": "u", "user": {"exec": {"command": "aws"}}}]
        });
        let err = Access::from_kubeconfig_value(&config, None, Path::new(".")).unwrap_err();
        assert!(err.contains("not supported"), "{err}");
    }

    #[test]
    fn rollout_states() {
        let obj = |status: Value| json!({"spec": {"replicas": 2}, "status": status});
        let d = WorkloadKind::Deployment;
        assert!(matches!(
            rollout_state(d, &obj(json!({"observedGeneration": 1})), 2),
            Rollout::Progressing(_)
        ));
        assert_eq!(
            rollout_state(
                d,
                &obj(json!({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2})),
                2
            ),
            Rollout::Complete
        );
        assert_eq!(
            rollout_state(
                d,
                &obj(json!({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 3, "availableReplicas": 2})),
                2
            ),
            Rollout::Progressing("1 old replicas pending termination".into())
        );
        assert_eq!(
            rollout_state(
                d,
                &obj(
                    json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]})
                ),
                2
            ),
            Rollout::Failed("progress deadline exceeded".into())
        );
        assert_eq!(
            rollout_state(
                WorkloadKind::DaemonSet,
                &json!({"status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}}),
                0
            ),
            Rollout::Complete
        );
    }
}
