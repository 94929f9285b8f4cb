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

/// How long settled events and finished deliveries are kept by default:
/// a month of history to look back at (`GET /hooks/events`, the delivery
/// log), bounded so that a busy registry cannot grow the database forever.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// The default dedupe window: 24 hours, the longest retry period among the
/// registries (EventBridge retries an API destination for up to 24 hours;
/// Distribution's retries last as long as the broker fails, Harbor's and
/// Quay's a few minutes), so a redelivery within it is never recorded
/// twice, while a body a registry sends again a day later for a new push
/// (Quay's carries no timestamp or digest) is not taken for a duplicate.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tagcast-broker.db";
/// The default retry schedule (DESIGN.md §6): the delays after the first,
/// second, … failed attempt; then the delivery is dead-lettered.
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";
/// The default inbound body limit, 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The default cap on open client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default cap on events per inbound hook. CNCF Distribution sends one
/// envelope per event queue flush; 100 is far above what one push makes.
pub const DEFAULT_MAX_EVENTS_PER_HOOK: usize = 100;
/// The default rate limit, per hook token and per client address: far above
/// what a registry or an operator sends, far below a flood.
pub const DEFAULT_RATE_LIMIT: &str = "1000/s";
/// Where a generated admin token is written by default when the database
/// is not a SQLite file (else beside it, `<file>.admin-token`).
pub const DEFAULT_ADMIN_TOKEN_FILE: &str = "tagcast-broker.admin-token";

/// `<file>.admin-token` beside a SQLite database file, else
/// [`DEFAULT_ADMIN_TOKEN_FILE`] in the working directory.
fn default_admin_token_file(database_url: &str) -> std::path::PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|path| !path.is_empty() && !path.starts_with(':'));
    match file {
        Some(path) => format!("{path}.admin-token").into(),
        None => DEFAULT_ADMIN_TOKEN_FILE.into(),
    }
}

/// Every setting, each optional: what one source (flags and environment, or
/// the file) gives.
#[derive(Clone, Default, PartialEq, Deserialize)]
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
    /// `dedup-window`: how long a registry's event id (or body hash) makes a redelivery a duplicate.
    pub dedup_window: Option<String>,
    /// `hook-token`: a bearer token that `distribution` hooks must also carry.
    pub hook_token: Option<String>,
    /// `retain-events`: how long settled inbound events are kept (`0`: for good).
    pub retain_events: Option<String>,
    /// `retain-deliveries`: how long finished deliveries and their attempts are kept (`0`: for good).
    pub retain_deliveries: Option<String>,
    /// `[[registries]]` (`--registry`): per registry host, its kind, API and credentials.
    pub registries: Option<Vec<RegistrySettings>>,
    /// `allow-http-callbacks`: allow plain `http://` callback and registry URLs.
    pub allow_http_callbacks: Option<bool>,
    /// `header-read-timeout`: how long a client may take to send a request's headers.
    pub header_read_timeout: Option<String>,
    /// `body-read-timeout`: how long a client may take to send a request's body.
    pub body_read_timeout: Option<String>,
    /// `request-timeout`: how long one request may take, body and answer.
    pub request_timeout: Option<String>,
    /// `max-connections`: the most client connections open at once.
    pub max_connections: Option<usize>,
    /// `max-events-per-hook`: the most events one inbound hook may carry.
    pub max_events_per_hook: Option<usize>,
    /// `hook-rate-limit`: requests per hook token, e.g. `1000/s`; `0` disables.
    pub hook_rate_limit: Option<String>,
    /// `client-rate-limit`: requests per client address, e.g. `1000/s`; `0` disables.
    pub client_rate_limit: Option<String>,
    /// `admin-token-file`: where a generated admin token is written (mode 0600).
    pub admin_token_file: Option<String>,
    /// `secret-key-file`: the key that seals secrets in the database (32
    /// bytes as 64 hex digits or base64); `TAGCAST_SECRET_KEY` instead
    /// holds the key itself.
    pub secret_key_file: Option<String>,
    /// `previous-secret-key-file`: the key the database was sealed under
    /// before a rotation; the database is moved to the current key at start.
    pub previous_secret_key_file: Option<String>,
    /// `hook-token-grace`: how long a rotated hook token stays valid.
    pub hook_token_grace: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the admin token, the hook token or database credentials.
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url.as_deref().map(redact_url))
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
            .field("dedup_window", &self.dedup_window)
            .field("retain_events", &self.retain_events)
            .field("retain_deliveries", &self.retain_deliveries)
            .field("hook_token", &self.hook_token.as_ref().map(|_| "<redacted>"))
            .field("registries", &self.registries)
            .field("allow_http_callbacks", &self.allow_http_callbacks)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_events_per_hook", &self.max_events_per_hook)
            .field("hook_rate_limit", &self.hook_rate_limit)
            .field("client_rate_limit", &self.client_rate_limit)
            .field("admin_token_file", &self.admin_token_file)
            .field("secret_key_file", &self.secret_key_file)
            .field("previous_secret_key_file", &self.previous_secret_key_file)
            .field("hook_token_grace", &self.hook_token_grace)
            .finish()
    }
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
            dedup_window: self.dedup_window.or(lower.dedup_window),
            retain_events: self.retain_events.or(lower.retain_events),
            retain_deliveries: self.retain_deliveries.or(lower.retain_deliveries),
            hook_token: self.hook_token.or(lower.hook_token),
            registries: self.registries.or(lower.registries),
            allow_http_callbacks: self.allow_http_callbacks.or(lower.allow_http_callbacks),
            header_read_timeout: self.header_read_timeout.or(lower.header_read_timeout),
            body_read_timeout: self.body_read_timeout.or(lower.body_read_timeout),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            max_connections: self.max_connections.or(lower.max_connections),
            max_events_per_hook: self.max_events_per_hook.or(lower.max_events_per_hook),
            hook_rate_limit: self.hook_rate_limit.or(lower.hook_rate_limit),
            client_rate_limit: self.client_rate_limit.or(lower.client_rate_limit),
            admin_token_file: self.admin_token_file.or(lower.admin_token_file),
            secret_key_file: self.secret_key_file.or(lower.secret_key_file),
            previous_secret_key_file: self.previous_secret_key_file.or(lower.previous_secret_key_file),
            hook_token_grace: self.hook_token_grace.or(lower.hook_token_grace),
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
    /// How long a registry's event id, or the hash of a body that carries
    /// none, makes a later hook with the same one a duplicate (redelivery);
    /// after it, the same body is a new event (Quay's push body, for one,
    /// is the same for every push of a tag).
    pub dedup_window: Duration,
    /// How long settled inbound events are kept; `None`: for good.
    pub retain_events: Option<Duration>,
    /// How long finished deliveries and their attempts are kept; `None`: for good.
    pub retain_deliveries: Option<Duration>,
    /// A bearer token that `distribution` hooks must carry on top of their path token.
    pub hook_token: Option<String>,
    /// The configured registries, secrets loaded.
    pub registries: Vec<Registry>,
    /// Whether plain `http://` callback and registry URLs are allowed.
    pub allow_http_callbacks: bool,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_read_timeout: Duration,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// The most client connections open at once.
    pub max_connections: usize,
    /// The most events one inbound hook may carry.
    pub max_events_per_hook: usize,
    /// Requests per hook token; `None`: unlimited.
    pub hook_rate_limit: Option<Rate>,
    /// Requests per client address; `None`: unlimited.
    pub client_rate_limit: Option<Rate>,
    /// Where a generated admin token is written.
    pub admin_token_file: std::path::PathBuf,
    /// Where the secret key comes from.
    pub secret_key: KeySetting,
    /// The key of the database before a rotation.
    pub previous_secret_key_file: Option<std::path::PathBuf>,
    /// How long a rotated hook token stays valid.
    pub hook_token_grace: Duration,
    /// Fixed answers for host names, consulted before DNS by every
    /// outbound check (tests; no flag sets it).
    pub hosts: crate::ssrf::Hosts,
}

/// Where the secret key that seals the database's secrets comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySetting {
    /// `TAGCAST_SECRET_KEY`, parsed.
    Env(crate::keys::SecretKey),
    /// `secret-key-file`.
    File(std::path::PathBuf),
    /// The default for a SQLite file: `<file>.key` beside it, created
    /// (exclusively, mode 0600) at first start and read afterwards.
    Generated(std::path::PathBuf),
    /// An in-memory database: a random key, as short-lived as the data.
    Ephemeral,
}

/// The default hook token grace period after a rotation: a day, time to
/// paste the new URL into the registry.
pub const DEFAULT_HOOK_TOKEN_GRACE: &str = "24h";

/// The key when neither `TAGCAST_SECRET_KEY` nor `secret-key-file` is
/// given: `<file>.key` beside a SQLite database file (generated at first
/// start), a random key for an in-memory database, and none for
/// PostgreSQL: its replicas must share one key, which a file generated by
/// one of them cannot give the others.
fn default_key_setting(database_url: &str) -> Result<KeySetting, ConfigError> {
    if !database_url.starts_with("sqlite:") {
        return Err(ConfigError::KeyRequired);
    }
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|path| !path.is_empty() && !path.starts_with(':'));
    Ok(match file {
        Some(path) if !database_url.contains("mode=memory") => KeySetting::Generated(format!("{path}.key").into()),
        _ => KeySetting::Ephemeral,
    })
}

/// A rate limit: `count` requests per `per`, in bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per period (and the largest burst).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// Parses `N/s`, `N/m` or `N/h`; `0` means no limit.
    ///
    /// # Errors
    ///
    /// The rule broken, for [`ConfigError::Invalid`].
    pub fn parse(text: &str) -> Result<Option<Self>, &'static str> {
        const RULE: &str = "expected N/s, N/m or N/h with N at least 1, or 0 for no limit";
        let text = text.trim();
        if text == "0" {
            return Ok(None);
        }
        let (count, unit) = text.split_once('/').ok_or(RULE)?;
        let count: u32 = count.trim().parse().map_err(|_| RULE)?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(RULE),
        };
        if count == 0 {
            return Err(RULE);
        }
        Ok(Some(Self { count, per }))
    }
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
            .field("dedup_window", &self.dedup_window)
            .field("retain_events", &self.retain_events)
            .field("retain_deliveries", &self.retain_deliveries)
            .field("hook_token", &self.hook_token.as_ref().map(|_| "<redacted>"))
            .field("registries", &self.registries)
            .field("allow_http_callbacks", &self.allow_http_callbacks)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_events_per_hook", &self.max_events_per_hook)
            .field("hook_rate_limit", &self.hook_rate_limit)
            .field("client_rate_limit", &self.client_rate_limit)
            .field("admin_token_file", &self.admin_token_file)
            .field("hosts", &self.hosts)
            .field("secret_key", &self.secret_key)
            .field("previous_secret_key_file", &self.previous_secret_key_file)
            .field("hook_token_grace", &self.hook_token_grace)
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
        let retention = |key: &'static str, value: Option<String>| match value {
            None => Ok(Some(DEFAULT_RETENTION)),
            Some(text) if text.trim() == "0" => Ok(None),
            Some(text) => parse_duration(&text)
                .filter(|d| !d.is_zero())
                .map(Some)
                .ok_or_else(|| invalid(key, &text, "expected a duration like 30d or 12h, or 0 to keep for good")),
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
        let max_connections = settings.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(invalid("max-connections", "0", "expected at least 1"));
        }
        let max_events_per_hook = settings.max_events_per_hook.unwrap_or(DEFAULT_MAX_EVENTS_PER_HOOK);
        if max_events_per_hook == 0 {
            return Err(invalid("max-events-per-hook", "0", "expected at least 1"));
        }
        let secret_key = match (env(crate::keys::KEY_ENV), settings.secret_key_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "secret-key-file",
                    "<redacted>",
                    "give the secret key either in TAGCAST_SECRET_KEY or in a file, not both",
                ));
            }
            (Some(text), None) => KeySetting::Env(
                crate::keys::SecretKey::parse(&text)
                    .map_err(|rule| invalid("TAGCAST_SECRET_KEY", "<redacted>", rule))?,
            ),
            (None, Some(file)) => KeySetting::File(file.into()),
            (None, None) => default_key_setting(&database_url)?,
        };
        let rate = |key: &'static str, value: Option<String>| match value {
            None => Rate::parse(DEFAULT_RATE_LIMIT).map_err(|rule| invalid(key, DEFAULT_RATE_LIMIT, rule)),
            Some(text) => Rate::parse(&text).map_err(|rule| invalid(key, &text, rule)),
        };
        Ok(Self {
            listen,
            database_url: database_url.clone(),
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
            dedup_window: duration("dedup-window", settings.dedup_window, DEFAULT_DEDUP_WINDOW)?,
            retain_events: retention("retain-events", settings.retain_events)?,
            retain_deliveries: retention("retain-deliveries", settings.retain_deliveries)?,
            hook_token: settings.hook_token,
            registries: crate::registries::load(settings.registries.unwrap_or_default(), env)?,
            allow_http_callbacks: settings.allow_http_callbacks.unwrap_or(false),
            header_read_timeout: duration(
                "header-read-timeout",
                settings.header_read_timeout,
                Duration::from_secs(10),
            )?,
            body_read_timeout: duration("body-read-timeout", settings.body_read_timeout, Duration::from_secs(30))?,
            request_timeout: duration("request-timeout", settings.request_timeout, Duration::from_secs(60))?,
            max_connections,
            max_events_per_hook,
            hook_rate_limit: rate("hook-rate-limit", settings.hook_rate_limit)?,
            client_rate_limit: rate("client-rate-limit", settings.client_rate_limit)?,
            admin_token_file: settings
                .admin_token_file
                .map(Into::into)
                .unwrap_or_else(|| default_admin_token_file(&database_url)),
            hosts: crate::ssrf::Hosts::default(),
            secret_key,
            previous_secret_key_file: settings.previous_secret_key_file.map(Into::into),
            hook_token_grace: match settings.hook_token_grace {
                None => parse_duration(DEFAULT_HOOK_TOKEN_GRACE).expect("a valid default"),
                Some(text) => parse_duration(&text)
                    .ok_or_else(|| invalid("hook-token-grace", &text, "expected a duration like 0s, 10m or 24h"))?,
            },
        })
    }

    /// Loads the secret keys: reads the key files, or generates the default
    /// key file (mode 0600) at first start. Returns the keys and, when it
    /// generated one, the file it wrote.
    ///
    /// # Errors
    ///
    /// A key file cannot be read or written, or holds no key.
    pub fn keys(&self) -> Result<(crate::keys::Keys, Option<std::path::PathBuf>), crate::keys::KeyError> {
        use crate::keys::{KeySource, Keyring, Keys, SecretKey, load_or_generate, read_key_file};
        let (current, generated) = match &self.secret_key {
            KeySetting::Env(key) => (Keyring::new(key, KeySource::Env), None),
            KeySetting::File(path) => (Keyring::new(&read_key_file(path)?, KeySource::File(path.clone())), None),
            KeySetting::Generated(path) => {
                let (key, fresh) = load_or_generate(path)?;
                (
                    Keyring::new(&key, KeySource::Generated(path.clone())),
                    fresh.then(|| path.clone()),
                )
            }
            KeySetting::Ephemeral => (Keyring::new(&SecretKey::generate(), KeySource::Given), None),
        };
        let previous = match &self.previous_secret_key_file {
            Some(path) => Some(Keyring::new(&read_key_file(path)?, KeySource::File(path.clone()))),
            None => None,
        };
        Ok((Keys { current, previous }, generated))
    }

    /// Which outbound URLs are allowed beyond public `https`.
    pub fn outbound_policy(&self) -> crate::ssrf::Policy {
        crate::ssrf::Policy {
            allow_private: self.allow_private_callbacks,
            allow_http: self.allow_http_callbacks,
        }
    }

    /// The limits of the server loop.
    pub fn server_limits(&self) -> crate::server::Limits {
        crate::server::Limits {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
        }
    }

    /// The limits of one request.
    pub fn request_limits(&self) -> crate::server::RequestLimits {
        crate::server::RequestLimits {
            body_read_timeout: self.body_read_timeout,
            request_timeout: self.request_timeout,
            body_limit: self.body_limit,
        }
    }

    /// The defaults, for tests: an in-memory database, private and http
    /// callbacks allowed, and no digest re-checks, so that a test never
    /// resolves an external registry's name (a test that wants re-checks
    /// turns them on against a local registry).
    pub fn for_tests() -> Self {
        let mut config = Self::from_settings(Settings {
            database_url: Some("sqlite::memory:".into()),
            allow_private_callbacks: Some(true),
            verify_digests: Some(false),
            allow_http_callbacks: Some(true),
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
    /// A PostgreSQL broker was given no secret key.
    #[error(
        "a PostgreSQL broker needs TAGCAST_SECRET_KEY or --secret-key-file: every replica must use the same key \
         (32 bytes as 64 hex digits or base64)"
    )]
    KeyRequired,
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
