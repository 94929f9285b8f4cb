//! `tagcast broker`: the reference broker (`reference/broker`), a GA4GH
//! Service Registry with subscriptions that turns registry push webhooks
//! into signed callbacks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tagcast_broker::config::LogFormat;
use tagcast_broker::registries::RegistrySettings;
use tagcast_broker::{Config, Settings};

const EXAMPLES: &str = "Examples:
  # A first try: in-memory database, the admin token printed at start:
  tagcast broker --database-url sqlite::memory:

  # Production behind a TLS proxy, state in PostgreSQL, JSON logs:
  TAGCAST_ADMIN_TOKEN=\"$(cat /run/secrets/admin-token)\" tagcast broker \\
    --listen 0.0.0.0:8080 --public-url https://registry.example.org \\
    --database-url postgres://tagcast@db/tagcast --log-format json \\
    --secret-key-file /run/secrets/tagcast-key

  # Everything from a file (same names as the flags):
  tagcast broker --config /etc/tagcast/broker.toml

  # Docker Hub digests read with a token from the environment:
  HUB_TOKEN=... tagcast broker \\
    --registry host=docker.io,pull-username=bot,pull-password-env=HUB_TOKEN

Every flag can also be set by the environment variable named after it
(--database-url <-> TAGCAST_DATABASE_URL) and by the key of the same name in
the --config file; flags and environment win over the file. Secrets are never
logged. Logs go to standard error; TAGCAST_LOG (e.g. debug) sets the level.

Exit codes: 0 stopped on SIGINT/SIGTERM, 2 could not run.";

/// `tagcast broker`: serve the registry, the hooks and the delivery worker.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct BrokerArgs {
    /// Instead of serving: print registry-side configuration.
    #[command(subcommand)]
    command: Option<BrokerCommand>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TAGCAST_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// sqlite://PATH, sqlite::memory: or postgres://… [default: sqlite://tagcast-broker.db].
    #[arg(long, env = "TAGCAST_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Bearer token of write requests; generated and printed once if absent.
    #[arg(long, env = "TAGCAST_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The broker's URL as registries and subscribers reach it [default: http://LISTEN].
    #[arg(long, env = "TAGCAST_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Allow callback and registry URLs on loopback and private addresses, and
    /// plain http to literal such addresses (never link-local or cloud metadata ones).
    #[arg(long, env = "TAGCAST_ALLOW_PRIVATE_CALLBACKS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    allow_private_callbacks: Option<bool>,
    /// A TOML file with the same keys as these flags (database-url = "…").
    #[arg(long, env = "TAGCAST_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "TAGCAST_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Delays between callback attempts, then dead-letter [default: 5s,5m,30m,2h,5h,10h,10h].
    #[arg(long, env = "TAGCAST_RETRY_SCHEDULE", value_name = "DELAYS")]
    retry_schedule: Option<String>,
    /// Relative jitter of each retry delay, 0 to 1 [default: 0.2].
    #[arg(long, env = "TAGCAST_RETRY_JITTER", value_name = "FRACTION")]
    retry_jitter: Option<f64>,
    /// Largest inbound hook body in bytes; larger ones get 413 [default: 1048576].
    #[arg(long, env = "TAGCAST_BODY_LIMIT", value_name = "BYTES")]
    body_limit: Option<usize>,
    /// Timeout of one callback attempt [default: 10s].
    #[arg(long, env = "TAGCAST_DELIVERY_TIMEOUT", value_name = "DURATION")]
    delivery_timeout: Option<String>,
    /// Callbacks in flight at once [default: 16].
    #[arg(long, env = "TAGCAST_DELIVERY_CONCURRENCY", value_name = "N")]
    delivery_concurrency: Option<usize>,
    /// Callbacks in flight at once to one subscriber, so that a stalled one cannot hold them all [default: 8].
    #[arg(long, env = "TAGCAST_DELIVERY_PER_SUBSCRIBER", value_name = "N")]
    delivery_per_subscriber: Option<usize>,
    /// How often the outbox is polled for due work [default: 1s].
    #[arg(long, env = "TAGCAST_POLL_INTERVAL", value_name = "DURATION")]
    poll_interval: Option<String>,
    /// How long shutdown waits for in-flight callbacks [default: 30s].
    #[arg(long, env = "TAGCAST_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    shutdown_timeout: Option<String>,
    /// Re-check tag -> digest against the registry API before delivering [default: true].
    #[arg(long, env = "TAGCAST_VERIFY_DIGESTS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    verify_digests: Option<bool>,
    /// How long the registry may disagree before a pushed tag is dropped [default: 60s].
    #[arg(long, env = "TAGCAST_VERIFY_GRACE", value_name = "DURATION")]
    verify_grace: Option<String>,
    /// How long a registry's event id (or a body's hash) makes a redelivered hook a duplicate [default: 24h].
    #[arg(long, env = "TAGCAST_DEDUP_WINDOW", value_name = "DURATION")]
    dedup_window: Option<String>,
    /// How long settled inbound events are kept; 0 keeps them for good [default: 30d].
    #[arg(long, env = "TAGCAST_RETAIN_EVENTS", value_name = "DURATION")]
    retain_events: Option<String>,
    /// How long finished deliveries and their attempts are kept; 0 keeps them for good [default: 30d].
    #[arg(long, env = "TAGCAST_RETAIN_DELIVERIES", value_name = "DURATION")]
    retain_deliveries: Option<String>,
    /// A bearer token that distribution hooks must carry in Authorization, on
    /// top of their path token (set it in the registry's endpoint headers).
    #[arg(long, env = "TAGCAST_HOOK_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    hook_token: Option<String>,
    /// Allow plain http callback and registry URLs to any host.
    #[arg(long, env = "TAGCAST_ALLOW_HTTP_CALLBACKS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    allow_http_callbacks: Option<bool>,
    /// How long a client may take to send a request's headers, or stay idle between requests [default: 10s].
    #[arg(long, env = "TAGCAST_HEADER_READ_TIMEOUT", value_name = "DURATION")]
    header_read_timeout: Option<String>,
    /// How long a client may take to send a request's body; then 408 [default: 30s].
    #[arg(long, env = "TAGCAST_BODY_READ_TIMEOUT", value_name = "DURATION")]
    body_read_timeout: Option<String>,
    /// How long one request may take, body and answer; then 503 [default: 60s].
    #[arg(long, env = "TAGCAST_REQUEST_TIMEOUT", value_name = "DURATION")]
    request_timeout: Option<String>,
    /// Client connections open at once; more are answered 503 and closed [default: 1024].
    #[arg(long, env = "TAGCAST_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Events one inbound hook may carry; more get 413 [default: 100].
    #[arg(long, env = "TAGCAST_MAX_EVENTS_PER_HOOK", value_name = "N")]
    max_events_per_hook: Option<usize>,
    /// Requests per hook token, N/s, N/m or N/h, 0 for none; more get 429 [default: 1000/s].
    #[arg(long, env = "TAGCAST_HOOK_RATE_LIMIT", value_name = "RATE")]
    hook_rate_limit: Option<String>,
    /// Requests per client address, N/s, N/m or N/h, 0 for none; more get 429 [default: 1000/s].
    #[arg(long, env = "TAGCAST_CLIENT_RATE_LIMIT", value_name = "RATE")]
    client_rate_limit: Option<String>,
    /// Where a generated admin token is written, mode 0600 [default: tagcast-broker.admin-token].
    #[arg(long, env = "TAGCAST_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<String>,
    /// The file of the key that seals secrets in the database: 32 bytes as
    /// 64 hex digits or base64 (TAGCAST_SECRET_KEY holds the key itself
    /// instead) [default: SQLite file: <database file>.key, created mode
    /// 0600 at first start; in-memory SQLite: a random key; PostgreSQL:
    /// none, this or TAGCAST_SECRET_KEY is required, the same for every
    /// replica].
    #[arg(long, env = "TAGCAST_SECRET_KEY_FILE", value_name = "FILE")]
    secret_key_file: Option<String>,
    /// The key file the database was sealed under before a rotation: at
    /// start every secret is sealed again and every hook token hashed again
    /// under the current key, in one transaction; afterwards the previous
    /// key opens nothing.
    #[arg(long, env = "TAGCAST_PREVIOUS_SECRET_KEY_FILE", value_name = "FILE")]
    previous_secret_key_file: Option<String>,
    /// How long a rotated hook token stays valid [default: 24h].
    #[arg(long, env = "TAGCAST_HOOK_TOKEN_GRACE", value_name = "DURATION")]
    hook_token_grace: Option<String>,
    /// A registry the broker talks to, as key=value pairs (repeatable; in the
    /// environment separated by ';'): host=, kind=, api=, verify-required=,
    /// oidc-audience=, oidc-email=, jwks= (gar push tokens),
    /// and pull-/manage- credentials (username=, password-file=,
    /// password-env=, token-file=, token-env=). Replaces the file's
    /// [[registries]] when given.
    #[arg(long = "registry", env = "TAGCAST_REGISTRY", value_name = "SPEC", value_delimiter = ';', value_parser = parse_registry)]
    registries: Vec<RegistrySettings>,
}

/// `tagcast broker …` subcommands.
#[derive(Debug, clap::Subcommand)]
enum BrokerCommand {
    /// Print the registry-side configuration of a hook the broker cannot
    /// create itself: Distribution's notifications YAML, the manual steps
    /// for Docker Hub and ECR.
    HookConfig(super::hook_config::HookConfigArgs),
    /// Print why a push was (not) delivered: the broker's decision for each
    /// subscriber of one event (delivered, not newer than …, other stage, …).
    Explain(super::explain::ExplainArgs),
}

fn parse_registry(text: &str) -> Result<RegistrySettings, String> {
    RegistrySettings::from_flag(text)
}

impl BrokerArgs {
    fn settings(&self) -> Settings {
        Settings {
            listen: self.listen.clone(),
            database_url: self.database_url.clone(),
            admin_token: self.admin_token.clone(),
            public_url: self.public_url.clone(),
            allow_private_callbacks: self.allow_private_callbacks,
            log_format: self.log_format.clone(),
            retry_schedule: self.retry_schedule.clone(),
            retry_jitter: self.retry_jitter,
            body_limit: self.body_limit,
            delivery_timeout: self.delivery_timeout.clone(),
            delivery_concurrency: self.delivery_concurrency,
            delivery_per_subscriber: self.delivery_per_subscriber,
            poll_interval: self.poll_interval.clone(),
            shutdown_timeout: self.shutdown_timeout.clone(),
            verify_digests: self.verify_digests,
            verify_grace: self.verify_grace.clone(),
            dedup_window: self.dedup_window.clone(),
            retain_events: self.retain_events.clone(),
            retain_deliveries: self.retain_deliveries.clone(),
            hook_token: self.hook_token.clone(),
            registries: (!self.registries.is_empty()).then(|| self.registries.clone()),
            allow_http_callbacks: self.allow_http_callbacks,
            header_read_timeout: self.header_read_timeout.clone(),
            body_read_timeout: self.body_read_timeout.clone(),
            request_timeout: self.request_timeout.clone(),
            max_connections: self.max_connections,
            max_events_per_hook: self.max_events_per_hook,
            hook_rate_limit: self.hook_rate_limit.clone(),
            client_rate_limit: self.client_rate_limit.clone(),
            admin_token_file: self.admin_token_file.clone(),
            secret_key_file: self.secret_key_file.clone(),
            previous_secret_key_file: self.previous_secret_key_file.clone(),
            hook_token_grace: self.hook_token_grace.clone(),
        }
    }
}

/// Runs the broker until SIGINT or SIGTERM.
pub fn run(args: BrokerArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(BrokerCommand::HookConfig(hook)) => return super::hook_config::run(hook),
        Some(BrokerCommand::Explain(explain)) => return super::explain::run(explain),
        None => {}
    }
    let file = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    let config = Config::from_settings(args.settings().or(file))?;
    init_logging(config.log_format);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        tagcast_broker::serve(listener, config)
            .await
            .context("the broker failed")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr. Colours only in text logs on a terminal: JSON logs and
/// text logs to a file or a collector carry no ANSI escape codes, which
/// would corrupt what log pipelines parse and search.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAGCAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}
