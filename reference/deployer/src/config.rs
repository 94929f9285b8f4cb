//! What the deployer is configured with (the command line builds it).

use std::path::PathBuf;
use std::time::Duration;

use tagcast_spec::webhook::{DEFAULT_TOLERANCE, Secret};
use tagcast_spec::{Repository, Tag, UpdatePolicy};

use crate::apply::Applier;
use crate::server::Limits;

/// Default body limit: 1 MiB (a callback is well under 64 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The deployer's configuration. `Debug` shows no secret or token.
#[derive(Clone)]
pub struct Config {
    /// The secrets any of which may sign a callback (several during a key
    /// rotation).
    pub secrets: Vec<Secret>,
    /// The path callbacks are `POST`ed to (default `/`).
    pub route: String,
    /// Largest accepted body in bytes; larger ones get 413.
    pub body_limit: usize,
    /// Largest accepted difference between `webhook-timestamp` and the
    /// deployer's clock.
    pub tolerance: Duration,
    /// The repositories this deployer deploys (normalized).
    pub images: Vec<Repository>,
    /// Which tags are updates: the stage and api-version requirement.
    pub policy: UpdatePolicy,
    /// Origins allowed by the CloudEvents validation handshake; empty: any.
    pub allowed_origins: Vec<String>,
    /// How upgrades are applied.
    pub applier: Applier,
    /// The token of `GET /status`, `POST /hold`, `POST /release`, accepted
    /// only as `Authorization: Bearer`; `None`: those routes do not exist.
    pub admin_token: Option<String>,
    /// Timeouts and the connection cap of the server.
    pub limits: Limits,
    /// The state file; `None`: in memory (lost at exit).
    pub state: Option<PathBuf>,
    /// The tag deployed before the first update, recorded for every image
    /// unless the state knows an applied tag already (`--current-tag`).
    pub current_tag: Option<Tag>,
    /// How often the worker looks for a release of the hold made by
    /// another process (`tagcast deployer release`).
    pub poll_interval: Duration,
}

impl Config {
    /// A configuration with the defaults for everything but the essentials.
    pub fn new(secrets: Vec<Secret>, images: Vec<Repository>, policy: UpdatePolicy, applier: Applier) -> Self {
        Self {
            secrets,
            route: "/".to_owned(),
            body_limit: DEFAULT_BODY_LIMIT,
            tolerance: DEFAULT_TOLERANCE,
            images,
            policy,
            allowed_origins: Vec::new(),
            applier,
            admin_token: None,
            limits: Limits::default(),
            state: None,
            current_tag: None,
            poll_interval: Duration::from_secs(2),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("secrets", &self.secrets)
            .field("route", &self.route)
            .field("body_limit", &self.body_limit)
            .field("tolerance", &self.tolerance)
            .field("images", &self.images)
            .field("policy", &self.policy)
            .field("allowed_origins", &self.allowed_origins)
            .field("applier", &self.applier)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("limits", &self.limits)
            .field("state", &self.state)
            .field("current_tag", &self.current_tag)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}
