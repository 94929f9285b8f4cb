//! The tagcast conformance runner and its language-neutral vectors
//! (`conformance/vectors/`).
//!
//! A *target* is one part of the delivery chain that a third party may
//! implement — CI outputs ([`TagsTarget`]), a container registry
//! ([`RegistryTarget`]), a broker ([`BrokerTarget`]), a CD endpoint
//! ([`CdTarget`]). [`run`] checks one against the contract and returns a
//! [`Report`]: one [`CheckResult`] per check, each with the requirement ID of
//! `spec/` it verifies and an [`Outcome`].
//!
//! ```no_run
//! use tagcast_conformance::{CdTarget, Config, Target, run};
//!
//! # async fn example() {
//! let target = Target::Cd(CdTarget::new("http://127.0.0.1:8080/".parse().unwrap(), "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse().unwrap()));
//! let report = run(&target, &Config::default()).await;
//! assert_eq!(report.exit_code(), 0, "{}", report.render(tagcast_conformance::Format::Text));
//! # }
//! ```

mod check;
mod checks;
mod config;
mod contract;
mod exchange;
mod oci;
mod outcome;
#[cfg(feature = "peers")]
pub mod peers;
mod receiver;
pub mod report;
pub mod schema;
mod suite;
pub mod vectors;

pub use check::{Check, CheckResult, Evidence, Verdict};
pub use checks::broker::BrokerTarget;
pub use checks::catalogue;
pub use checks::cd::{CdTarget, StatusToken};
pub use checks::registry::RegistryTarget;
pub use checks::tags::{ApiExpectation, TagsTarget};
pub use config::{Config, DurationError, parse_duration};
pub use oci::RegistryAuth;
pub use outcome::{Level, Outcome};
pub use report::{Format, Report, Selection, Summary};
pub use url::Url;

/// One part of the delivery chain to check.
#[derive(Debug, Clone)]
pub enum Target {
    /// CI outputs: tag lists, `docker buildx` metadata files, OCI layouts.
    Tags(TagsTarget),
    /// A live OCI registry.
    Registry(RegistryTarget),
    /// A live broker, end to end.
    Broker(BrokerTarget),
    /// A live CD endpoint.
    Cd(CdTarget),
}

impl Target {
    /// The target's name as reports and check names use it.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Tags(_) => "tags",
            Target::Registry(_) => "registry",
            Target::Broker(_) => "broker",
            Target::Cd(_) => "cd",
        }
    }
}

/// Check `target` against the contract.
///
/// Never fails: what goes wrong is in the report, as `fail` (the peer broke
/// the contract) or `error` (the runner could not do its work; for example
/// the peer is unreachable).
pub async fn run(target: &Target, config: &Config) -> Report {
    let mut suite = suite::Suite::new(config);
    let subject = match target {
        Target::Tags(t) => checks::tags::run(t, &mut suite).await,
        Target::Registry(t) => checks::registry::run(t, &mut suite).await,
        Target::Broker(t) => checks::broker::run(t, &mut suite).await,
        Target::Cd(t) => checks::cd::run(t, &mut suite).await,
    };
    suite.finish(target.name(), subject)
}
