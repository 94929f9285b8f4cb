//! Configuration: the same names as flags (`--database-url`), environment
//! variables (`TAGCAST_DATABASE_URL`) and keys of the TOML file
//! (`database-url = "…"`). The command line fills a [`Settings`] from flags
//! and environment, [`Settings::or`] fills the gaps from the file, and
//! [`Config::from_settings`] applies the defaults and checks values.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::registries::{Registry, RegistrySettings};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tagcast-broker.db";
/// The default retry schedule (DESIGN.md §6): the delays after the first,
/// second, … failed attempt; then the delivery is dead-lettered.
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";
/// The default inbound body limit, 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Every setting, each optional: what one source (flags and environment, or
/// the file) gives.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// `listen`: the address to listen on.
    pub listen: Option<String>,
    /// `database-url`: `sqlite://PATH`, `sqlite::memory:` or `postgres://…`.
    pub database_url: Option<String>,
    /// `admin-token`: the bearer token of write requests.
    pub admin_token: Option<String>,
    /// `public-url`: the broker's URL as registries and subscribers reach it.
    pub public_url: Option<String>,
    /// `allow-private-callbacks`: allow callbacks to loopback, private and link-local addresses.
    pub allow_private_callbacks: Option<bool>,
    /// `log-format`: `text` or `json`.
    pub log_format: Option<String>,
    /// `retry-schedule`: comma-separated delays, e.g. `5s,5m,30m,2h,5h,10h,10h`.
    pub retry_schedule: Option<String>,
    /// `retry-jitter`: the relative jitter of each delay, 0 to 1 (default 0.2).
    pub retry_jitter: Option<f64>,
    /// `body-limit`: the largest inbound hook body in bytes.
    pub body_limit: Option<usize>,
    /// `delivery-timeout`: how long one callback attempt may take.
    pub delivery_timeout: Option<String>,
    /// `delivery-concurrency`: how many callbacks are in flight at once.
    pub delivery_concurrency: Option<usize>,
    /// `delivery-per-subscriber`: how many callbacks one subscriber may have in flight.
    pub delivery_per_subscriber: Option<usize>,
    /// `poll-interval`: how often the outbox is polled for due work.
    pub poll_interval: Option<String>,
    /// `shutdown-timeout`: how long shutdown waits for in-flight work.
    pub shutdown_timeout: Option<String>,
    /// `verify-digests`: re-check tag -> digest against the registry API before delivering.
    pub verify_digests: Option<bool>,
    /// `verify-grace`: how long a tag may disagree with the registry before its event is dropped.
    pub verify_grace: Option<String>,
    /// `hook-token`: a bearer token that `distribution` hooks must also carry.
    pub hook_token: Option<String>,
    /// `[[registries]]` (`--registry`): per registry host, its kind, API and credentials.
    pub registries: Option<Vec<RegistrySettings>>,
}

impl Settings {
    /// Reads a TOML configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file for an unreadable file, a syntax
    /// error or an unknown key.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.display().to_string(),
            message: err.to_string(),
        })
    }

    /// These settings, with gaps filled from `lower`.
    #[must_use]
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            database_url: self.database_url.or(lower.database_url),
            admin_token: self.admin_token.or(lower.admin_token),
            public_url: self.public_url.or(lower.public_url),
            allow_private_callbacks: self.allow_private_callbacks.or(lower.allow_private_callbacks),
            log_format: self.log_format.or(lower.log_format),
            retry_schedule: self.retry_schedule.or(lower.retry_schedule),
            retry_jitter: self.retry_jitter.or(lower.retry_jitter),
            body_limit: self.body_limit.or(lower.body_limit),
            delivery_timeout: self.delivery_timeout.or(lower.delivery_timeout),
            delivery_concurrency: self.delivery_concurrency.or(lower.delivery_concurrency),
            delivery_per_subscriber: self.delivery_per_subscriber.or(lower.delivery_per_subscriber),
            poll_interval: self.poll_interval.or(lower.poll_interval),
            shutdown_timeout: self.shutdown_timeout.or(lower.shutdown_timeout),
            verify_digests: self.verify_digests.or(lower.verify_digests),
            verify_grace: self.verify_grace.or(lower.verify_grace),
            hook_token: self.hook_token.or(lower.hook_token),
            registries: self.registries.or(lower.registries),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The broker's configuration, defaults applied.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The database URL.
    pub database_url: String,
    /// The admin token, if configured; otherwise one is generated at first start.
    pub admin_token: Option<String>,
    /// The broker's public URL, without a trailing slash; `http://{listen}` by default.
    pub public_url: String,
    /// Whether callbacks to private addresses are allowed.
    pub allow_private_callbacks: bool,
    /// The log format.
    pub log_format: LogFormat,
    /// The delays between attempts.
    pub retry_schedule: Vec<Duration>,
    /// The relative jitter of each delay.
    pub retry_jitter: f64,
    /// The largest inbound hook body.
    pub body_limit: usize,
    /// The timeout of one callback attempt.
    pub delivery_timeout: Duration,
    /// Callbacks in flight at once.
    pub delivery_concurrency: usize,
    /// Callbacks in flight at once to one subscriber, so that one that
    /// stalls holds at most this many of the `delivery_concurrency`.
    pub delivery_per_subscriber: usize,
    /// How often the outbox is polled.
    pub poll_interval: Duration,
    /// How long shutdown waits for in-flight work.
    pub shutdown_timeout: Duration,
    /// Whether tag -> digest is re-checked against the registry API.
    pub verify_digests: bool,
    /// How long a disagreeing registry is asked again before the event is
    /// dropped (a registry may notify before it links the tag).
    pub verify_grace: Duration,
    /// A bearer token that `distribution` hooks must carry on top of their path token.
    pub hook_token: Option<String>,
    /// The configured registries, secrets loaded.
    pub registries: Vec<Registry>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the admin token or database credentials.
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("public_url", &self.public_url)
            .field("allow_private_callbacks", &self.allow_private_callbacks)
            .field("log_format", &self.log_format)
            .field("retry_schedule", &self.retry_schedule)
            .field("retry_jitter", &self.retry_jitter)
            .field("body_limit", &self.body_limit)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("delivery_concurrency", &self.delivery_concurrency)
            .field("delivery_per_subscriber", &self.delivery_per_subscriber)
            .field("poll_interval", &self.poll_interval)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("verify_digests", &self.verify_digests)
            .field("verify_grace", &self.verify_grace)
            .field("hook_token", &self.hook_token.as_ref().map(|_| "<redacted>"))
            .field("registries", &self.registries)
            .finish()
    }
}

/// A database URL with its password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// The configured registry of `host`, if any.
    pub fn registry(&self, host: &str) -> Option<&Registry> {
        crate::registries::find(&self.registries, host)
    }

    /// Applies defaults and checks every value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting, the value and the rule.
    pub fn from_settings(settings: Settings) -> Result<Self, ConfigError> {
        Self::from_settings_with_env(settings, &|var| std::env::var(var).ok())
    }

    /// [`Config::from_settings`], reading `*-env` secrets through `env`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting, the value and the rule.
    pub fn from_settings_with_env(
        settings: Settings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let invalid = |key: &'static str, value: &str, rule: &str| ConfigError::Invalid {
            key,
            value: value.to_owned(),
            rule: rule.to_owned(),
        };
        let listen_text = settings.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| invalid("listen", &listen_text, "expected IP:PORT, e.g. 0.0.0.0:8080"))?;
        let database_url = settings.database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database-url",
                &redact_url(&database_url),
                "expected sqlite://PATH, sqlite::memory: or postgres://...",
            ));
        }
        if let Some(token) = &settings.admin_token {
            if token.len() < 16 {
                return Err(invalid("admin-token", "<redacted>", "must be at least 16 characters"));
            }
        }
        if let Some(token) = &settings.hook_token {
            if token.len() < 16 || token.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "hook-token",
                    "<redacted>",
                    "must be at least 16 characters without whitespace",
                ));
            }
        }
        let public_url = match settings.public_url {
            Some(url) => {
                let parsed = url::Url::parse(&url)
                    .map_err(|_| invalid("public-url", &url, "expected an absolute http(s) URL"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid("public-url", &url, "expected an absolute http(s) URL"));
                }
                url.trim_end_matches('/').to_owned()
            }
            None => format!("http://{listen}"),
        };
        let log_format = match settings.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("log-format", other, "expected text or json")),
        };
        let schedule_text = settings
            .retry_schedule
            .unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE.to_owned());
        let retry_schedule = if schedule_text.trim().is_empty() {
            Vec::new()
        } else {
            schedule_text
                .split(',')
                .map(|d| parse_duration(d.trim()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("retry-schedule", &schedule_text, "expected durations like 5s,5m,2h"))?
        };
        let retry_jitter = settings.retry_jitter.unwrap_or(0.2);
        if !(0.0..=1.0).contains(&retry_jitter) {
            return Err(invalid("retry-jitter", &retry_jitter.to_string(), "expected 0 to 1"));
        }
        let body_limit = settings.body_limit.unwrap_or(DEFAULT_BODY_LIMIT);
        if body_limit == 0 {
            return Err(invalid("body-limit", "0", "expected a positive number of bytes"));
        }
        let duration = |key: &'static str, value: Option<String>, default: Duration| match value {
            None => Ok(default),
            Some(text) => parse_duration(&text)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| invalid(key, &text, "expected a positive duration like 500ms, 10s or 2m")),
        };
        let delivery_concurrency = settings.delivery_concurrency.unwrap_or(16);
        if delivery_concurrency == 0 {
            return Err(invalid("delivery-concurrency", "0", "expected at least 1"));
        }
        let delivery_per_subscriber = settings
            .delivery_per_subscriber
            .unwrap_or(crate::store::DEFAULT_IN_FLIGHT_PER_SUBSCRIBER as usize);
        if delivery_per_subscriber == 0 {
            return Err(invalid("delivery-per-subscriber", "0", "expected at least 1"));
        }
        Ok(Self {
            listen,
            database_url,
            admin_token: settings.admin_token,
            public_url,
            allow_private_callbacks: settings.allow_private_callbacks.unwrap_or(false),
            log_format,
            retry_schedule,
            retry_jitter,
            body_limit,
            delivery_timeout: duration("delivery-timeout", settings.delivery_timeout, Duration::from_secs(10))?,
            delivery_concurrency,
            delivery_per_subscriber,
            poll_interval: duration("poll-interval", settings.poll_interval, Duration::from_secs(1))?,
            shutdown_timeout: duration("shutdown-timeout", settings.shutdown_timeout, Duration::from_secs(30))?,
            verify_digests: settings.verify_digests.unwrap_or(true),
            verify_grace: duration("verify-grace", settings.verify_grace, Duration::from_secs(60))?,
            hook_token: settings.hook_token,
            registries: crate::registries::load(settings.registries.unwrap_or_default(), env)?,
        })
    }

    /// The defaults, for tests: an in-memory database, private callbacks
    /// allowed, and no digest re-checks, so that a test never resolves an
    /// external registry's name (a test that wants re-checks turns them on
    /// against a local registry).
    pub fn for_tests() -> Self {
        let mut config = Self::from_settings(Settings {
            database_url: Some("sqlite::memory:".into()),
            allow_private_callbacks: Some(true),
            verify_digests: Some(false),
            poll_interval: Some("50ms".into()),
            ..Settings::default()
        })
        .expect("test defaults are valid");
        config.admin_token = Some("test-admin-token-0123456789".into());
        config
    }
}

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(seconds).map(Duration::from_secs)
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the known keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The TOML parser's message.
        message: String,
    },
    /// A value breaks a rule.
    #[error("invalid {key} {value:?}: {rule}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// The value (redacted for secrets).
        value: String,
        /// The rule.
        rule: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn defaults_and_precedence() {
        let config = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(config.retry_schedule.len(), 7);
        assert_eq!(config.retry_schedule[6], Duration::from_secs(36_000));
        assert_eq!(config.public_url, "http://127.0.0.1:8080");

        let flags = Settings {
            listen: Some("0.0.0.0:9000".into()),
            ..Settings::default()
        };
        let file: Settings = toml::from_str(
            "listen = \"127.0.0.1:1\"\ndatabase-url = \"sqlite::memory:\"\nretry-schedule = \"1s,2s\"\n",
        )
        .unwrap();
        let config = Config::from_settings(flags.or(file)).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000", "flags win over the file");
        assert_eq!(config.database_url, "sqlite::memory:");
        assert_eq!(config.retry_schedule, [Duration::from_secs(1), Duration::from_secs(2)]);
    }

    #[test]
    fn errors_name_the_key() {
        let err = Config::from_settings(Settings {
            database_url: Some("mysql://x".into()),
            ..Settings::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid database-url \"mysql://x\": expected sqlite://PATH, sqlite::memory: or postgres://..."
        );
        assert!(toml::from_str::<Settings>("unknown = 1").is_err());
        let err = Config::from_settings(Settings {
            admin_token: Some("short".into()),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(!err.to_string().contains("short"), "secrets are not echoed: {err}");
    }

    #[test]
    fn debug_redacts() {
        let mut config = Config::for_tests();
        config.database_url = "postgres://u:hunter2@db/x".into();
        let text = format!("{config:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("test-admin-token"),
            "{text}"
        );
    }
}
