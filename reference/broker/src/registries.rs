//! `[[registries]]`: what the operator tells the broker about each container
//! registry it talks to: its kind, where its API is, whether events must be
//! verified against it, and the credentials for reading tags (`pull`, digest
//! resolution) and for managing webhooks (`manage`).
//!
//! Secrets are never written in the configuration itself: each is read from
//! a file (`password-file`, `token-file`) or an environment variable
//! (`password-env`, `token-env`) when the configuration is loaded, held in a
//! [`SecretString`] whose `Debug` is redacted, and never echoed in errors.
//!
//! The same entries can be given as repeated `--registry` flags or in
//! `TAGCAST_REGISTRY` (entries separated by `;`), each a comma-separated list
//! of `key=value` with the keys of the file, the credential keys prefixed by
//! `pull-` or `manage-`: `host=docker.io,pull-username=bot,pull-password-env=HUB_TOKEN`.

use std::path::PathBuf;

use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use crate::config::ConfigError;

/// One `[[registries]]` entry as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RegistrySettings {
    /// `host`: the registry host as in image references (`docker.io`, `ghcr.io`, `harbor.example.org:8443`).
    pub host: String,
    /// `kind`: the registry software; derived from well-known hosts when absent.
    pub kind: Option<String>,
    /// `api`: the base URL of its API, when not `https://<host>` (a mirror, a test registry).
    pub api: Option<String>,
    /// `verify-required`: drop events that cannot be verified against the registry.
    pub verify_required: Option<bool>,
    /// `pull`: credentials for reading tags.
    pub pull: Option<CredentialSettings>,
    /// `manage`: credentials for creating and deleting webhooks.
    pub manage: Option<CredentialSettings>,
    /// `oidc-audience` (`gar`): the audience of the Pub/Sub push
    /// subscription's OIDC token, which pushes must then carry.
    pub oidc_audience: Option<String>,
    /// `oidc-email` (`gar`): the service account the token must be for.
    pub oidc_email: Option<String>,
    /// `jwks` (`gar`): the token's signing keys, a URL or a file;
    /// Google's keys by default.
    pub jwks: Option<String>,
}

/// Credentials as written: a user name with a password, or a token; the
/// secret from a file or an environment variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CredentialSettings {
    /// `username`: for HTTP Basic (and registry token services).
    pub username: Option<String>,
    /// `password-file`: a file holding the password.
    pub password_file: Option<PathBuf>,
    /// `password-env`: an environment variable holding the password.
    pub password_env: Option<String>,
    /// `token-file`: a file holding a bearer token.
    pub token_file: Option<PathBuf>,
    /// `token-env`: an environment variable holding a bearer token.
    pub token_env: Option<String>,
}

impl RegistrySettings {
    /// Parses one `--registry` value: `key=value` pairs separated by commas.
    ///
    /// # Errors
    ///
    /// A message naming the unknown key or the malformed pair.
    pub fn from_flag(text: &str) -> Result<Self, String> {
        let mut out = RegistrySettings::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("--registry: expected key=value, got {pair:?}"))?;
            let value = value.trim().to_owned();
            let credential = |slot: &mut Option<CredentialSettings>, field: &str| -> Result<(), String> {
                let c = slot.get_or_insert_with(CredentialSettings::default);
                match field {
                    "username" => c.username = Some(value.clone()),
                    "password-file" => c.password_file = Some(PathBuf::from(&value)),
                    "password-env" => c.password_env = Some(value.clone()),
                    "token-file" => c.token_file = Some(PathBuf::from(&value)),
                    "token-env" => c.token_env = Some(value.clone()),
                    _ => return Err(format!("--registry: unknown key {key:?}")),
                }
                Ok(())
            };
            match key.trim() {
                "host" => out.host = value,
                "kind" => out.kind = Some(value),
                "api" => out.api = Some(value),
                "oidc-audience" => out.oidc_audience = Some(value),
                "oidc-email" => out.oidc_email = Some(value),
                "jwks" => out.jwks = Some(value),
                "verify-required" => {
                    out.verify_required =
                        Some(value.parse().map_err(|_| {
                            format!("--registry: verify-required must be true or false, got {value:?}")
                        })?);
                }
                other => {
                    if let Some(field) = other.strip_prefix("pull-") {
                        credential(&mut out.pull, field)?;
                    } else if let Some(field) = other.strip_prefix("manage-") {
                        credential(&mut out.manage, field)?;
                    } else {
                        return Err(format!("--registry: unknown key {other:?}"));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A secret read from a file or the environment. `Debug` prints
/// `<redacted>`; the value is reachable only through [`SecretString::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials, loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP Basic; also what registry token services accept.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// A bearer token (GitHub, Gitea, Quay OAuth, Artifactory access tokens).
    Bearer(SecretString),
}

impl Credentials {
    /// Adds these credentials to a request.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::Basic { username, password } => request.basic_auth(username, Some(password.expose())),
            Credentials::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }
}

/// One registry, loaded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The host as in image references.
    pub host: String,
    /// The registry software.
    pub kind: RegistryKind,
    /// Its API base URL, without a trailing slash, if configured.
    pub api: Option<String>,
    /// Whether events that cannot be verified are dropped.
    pub verify_required: bool,
    /// Credentials for reading tags.
    pub pull: Option<Credentials>,
    /// Credentials for managing webhooks.
    pub manage: Option<Credentials>,
    /// The OIDC token its Pub/Sub pushes must carry (`gar`), if configured.
    pub push_auth: Option<crate::inbound::oidc::PushAuth>,
}

/// Whether events of `kind` must be verified against the registry unless
/// configured otherwise: on for the kinds whose events carry no digest
/// (Docker Hub, Quay, Gitea tag events) — the broker must ask the registry
/// anyway — which are also the kinds with the weakest authentication
/// (Docker Hub and Quay send none).
pub fn verify_required_by_default(kind: RegistryKind) -> bool {
    matches!(kind, RegistryKind::Dockerhub | RegistryKind::Quay | RegistryKind::Gitea)
}

fn invalid(key: &'static str, host: &str, rule: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: host.to_owned(),
        rule: rule.into(),
    }
}

/// Loads and checks the entries: one per host, known kinds, absolute API
/// URLs, and every secret readable.
///
/// # Errors
///
/// [`ConfigError::Invalid`] naming the entry's host, the key and the rule;
/// never the secret.
pub fn load(
    entries: Vec<RegistrySettings>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Registry>, ConfigError> {
    let mut out: Vec<Registry> = Vec::new();
    for entry in entries {
        let host = entry.host.trim().to_ascii_lowercase();
        if host.is_empty() || host.contains(['/', '@', ' ']) || host.contains("://") {
            return Err(invalid(
                "registries.host",
                &entry.host,
                "expected a registry host as in image references, e.g. ghcr.io or registry.example.org:5000",
            ));
        }
        if out.iter().any(|r| r.host == host) {
            return Err(invalid("registries.host", &host, "configured twice"));
        }
        let kind = match entry.kind.as_deref() {
            Some(text) => text.parse::<RegistryKind>().map_err(|_| {
                invalid(
                    "registries.kind",
                    &host,
                    format!("unknown kind {text:?}; expected one of {}", kind_names()),
                )
            })?,
            None => RegistryKind::from_host(&host).ok_or_else(|| {
                invalid(
                    "registries.kind",
                    &host,
                    format!(
                        "the kind of this host cannot be derived; set kind = one of {}",
                        kind_names()
                    ),
                )
            })?,
        };
        let api = match entry.api {
            Some(api) => Some(check_api(&host, &api)?),
            None => None,
        };
        let pull = entry
            .pull
            .map(|c| credentials("registries.pull", &host, c, env))
            .transpose()?;
        let manage = entry
            .manage
            .map(|c| credentials("registries.manage", &host, c, env))
            .transpose()?;
        let push_auth = push_auth(&host, kind, entry.oidc_audience, entry.oidc_email, entry.jwks)?;
        out.push(Registry {
            push_auth,
            verify_required: entry.verify_required.unwrap_or(verify_required_by_default(kind)),
            host,
            kind,
            api,
            pull,
            manage,
        });
    }
    Ok(out)
}

/// The push token check of a `gar` registry, if `oidc-audience` is set.
fn push_auth(
    host: &str,
    kind: RegistryKind,
    audience: Option<String>,
    email: Option<String>,
    jwks: Option<String>,
) -> Result<Option<crate::inbound::oidc::PushAuth>, ConfigError> {
    use crate::inbound::oidc::{GOOGLE_JWKS_URL, Jwks, PushAuth, parse_jwks};
    let Some(audience) = audience.filter(|a| !a.trim().is_empty()) else {
        if email.is_some() || jwks.is_some() {
            return Err(invalid(
                "registries.oidc-audience",
                host,
                "oidc-email and jwks need oidc-audience (the push subscription's audience)",
            ));
        }
        return Ok(None);
    };
    if kind != RegistryKind::Gar {
        return Err(invalid(
            "registries.oidc-audience",
            host,
            format!("only gar registries send OIDC tokens, this one is {kind}"),
        ));
    }
    let jwks = match jwks {
        None => Jwks::Url(GOOGLE_JWKS_URL.to_owned()),
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Jwks::Url(check_api(host, &url).map_err(|_| {
                invalid(
                    "registries.jwks",
                    host,
                    "expected an absolute http(s) URL without user, query or fragment, or a file",
                )
            })?)
        }
        Some(path) => {
            let text = std::fs::read(&path)
                .map_err(|err| invalid("registries.jwks", host, format!("cannot read {path}: {err}")))?;
            Jwks::Keys(parse_jwks(&path, &text).map_err(|err| invalid("registries.jwks", host, err.to_string()))?)
        }
    };
    Ok(Some(PushAuth { audience, email, jwks }))
}

fn kind_names() -> String {
    RegistryKind::ALL.map(RegistryKind::as_str).join(", ")
}

fn check_api(host: &str, api: &str) -> Result<String, ConfigError> {
    let rule = "expected an absolute http(s) URL without user, query or fragment, e.g. https://registry.example.org";
    let parsed = url::Url::parse(api).map_err(|_| invalid("registries.api", host, rule))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(invalid("registries.api", host, rule));
    }
    Ok(api.trim_end_matches('/').to_owned())
}

fn credentials(
    key: &'static str,
    host: &str,
    settings: CredentialSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, ConfigError> {
    let read = |file: Option<PathBuf>, var: Option<String>, what: &str| -> Result<Option<SecretString>, ConfigError> {
        match (file, var) {
            (Some(_), Some(_)) => Err(invalid(
                key,
                host,
                format!("set either {what}-file or {what}-env, not both"),
            )),
            (Some(path), None) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|err| invalid(key, host, format!("cannot read {what}-file {}: {err}", path.display())))?;
                let secret = text.trim_end_matches(['\r', '\n']).to_owned();
                if secret.is_empty() {
                    return Err(invalid(key, host, format!("{what}-file {} is empty", path.display())));
                }
                Ok(Some(SecretString(secret)))
            }
            (None, Some(var)) => match env(&var) {
                Some(value) if !value.is_empty() => Ok(Some(SecretString(value))),
                _ => Err(invalid(
                    key,
                    host,
                    format!("{what}-env names {var}, which is not set or empty"),
                )),
            },
            (None, None) => Ok(None),
        }
    };
    let password = read(settings.password_file, settings.password_env, "password")?;
    let token = read(settings.token_file, settings.token_env, "token")?;
    match (settings.username, password, token) {
        (Some(username), Some(password), None) if !username.is_empty() => Ok(Credentials::Basic { username, password }),
        (None, None, Some(token)) => Ok(Credentials::Bearer(token)),
        _ => Err(invalid(
            key,
            host,
            "expected username with password-file or password-env, or token-file or token-env alone",
        )),
    }
}

/// The configured registry of `host`, if any.
pub fn find<'a>(registries: &'a [Registry], host: &str) -> Option<&'a Registry> {
    registries.iter().find(|r| r.host.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        (var == "HUB_TOKEN").then(|| "hunter2-secret".to_owned())
    }

    #[test]
    fn loads_from_toml_with_secrets_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("harbor");
        std::fs::write(&file, "harbor-pass\n").unwrap();
        let text = format!(
            "[[registries]]\nhost = \"docker.io\"\npull = {{ username = \"bot\", password-env = \"HUB_TOKEN\" }}\n\
             [[registries]]\nhost = \"harbor.example.org\"\nkind = \"harbor\"\napi = \"http://127.0.0.1:5000/\"\n\
             manage = {{ username = \"admin\", password-file = \"{}\" }}\n",
            file.display()
        );
        #[derive(Deserialize)]
        struct File {
            registries: Vec<RegistrySettings>,
        }
        let parsed: File = toml::from_str(&text).unwrap();
        let loaded = load(parsed.registries, &env).unwrap();
        assert_eq!(loaded[0].kind, RegistryKind::Dockerhub, "derived from the host");
        assert!(loaded[0].verify_required, "on by default for Docker Hub");
        assert_eq!(
            loaded[0].pull,
            Some(Credentials::Basic {
                username: "bot".into(),
                password: SecretString::new("hunter2-secret")
            })
        );
        assert_eq!(loaded[1].api.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(!loaded[1].verify_required, "off by default for Harbor");
        assert_eq!(
            loaded[1].manage,
            Some(Credentials::Basic {
                username: "admin".into(),
                password: SecretString::new("harbor-pass")
            }),
            "the trailing newline of the file is not part of the secret"
        );
        let debug = format!("{loaded:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("harbor-pass"), "{debug}");
    }

    #[test]
    fn flags_have_the_same_keys() {
        let entry = RegistrySettings::from_flag(
            "host=ghcr.io,verify-required=false,pull-username=me,pull-password-env=HUB_TOKEN,manage-token-env=HUB_TOKEN",
        )
        .unwrap();
        let loaded = load(vec![entry], &env).unwrap();
        assert_eq!(loaded[0].kind, RegistryKind::Ghcr);
        assert!(!loaded[0].verify_required);
        assert_eq!(
            loaded[0].manage,
            Some(Credentials::Bearer(SecretString::new("hunter2-secret")))
        );
        assert!(
            RegistrySettings::from_flag("host=x,password=inline")
                .unwrap_err()
                .contains("unknown key \"password\""),
            "no inline secrets"
        );
    }

    #[test]
    fn errors_name_the_host_and_rule_never_the_secret() {
        let err = |text: &str| {
            load(vec![RegistrySettings::from_flag(text).unwrap()], &env)
                .unwrap_err()
                .to_string()
        };
        let unknown = err("host=registry.example.org");
        assert!(
            unknown.starts_with("invalid registries.kind \"registry.example.org\": the kind of this host cannot be derived; set kind = one of distribution, dockerhub,"),
            "{unknown}"
        );
        assert!(err("host=docker.io,pull-username=bot,pull-password-env=NOPE").contains("NOPE, which is not set"));
        assert!(err("host=docker.io,pull-token-env=HUB_TOKEN,pull-username=bot").contains("expected username with"));
        assert!(err("host=docker.io,api=http://u:p@x").contains("without user"));
        assert!(err("host=https://docker.io").contains("registries.host"));
        let twice = load(
            vec![
                RegistrySettings::from_flag("host=docker.io").unwrap(),
                RegistrySettings::from_flag("host=Docker.io").unwrap(),
            ],
            &env,
        )
        .unwrap_err();
        assert!(twice.to_string().contains("configured twice"));
        let leaked = err("host=docker.io,pull-username=,pull-password-env=HUB_TOKEN");
        assert!(!leaked.contains("hunter2"), "{leaked}");
    }
}
