//! The report of a run and its three renderings: text for people, JSON for
//! tools (schema `schemas/conformance-report.schema.json`), JUnit XML for CI.

mod json;
mod junit;
mod text;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::CheckResult;
use crate::outcome::Outcome;

pub use json::render as render_json;
pub use junit::render as render_junit;
pub use text::render as render_text;

/// The version of the report format; a tool reading reports checks it.
pub const REPORT_VERSION: &str = "1";

/// The result of one run of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "tagcast conformance report")]
pub struct Report {
    /// Version of this report format.
    pub report_version: String,
    /// The tool that wrote the report, `tagcast-conformance`.
    pub tool: String,
    /// The tool's version.
    pub tool_version: String,
    /// The target: `tags`, `registry`, `broker` or `cd`.
    pub target: String,
    /// The contract version the checks implement (`spec/README.md`,
    /// Versioning).
    #[serde(default = "contract_version")]
    pub contract_version: String,
    /// The certification profile of the target (`conformance/README.md`,
    /// Profiles): `ci-output`, `registry`, `broker` or `cd-endpoint`.
    #[serde(default)]
    pub profile: String,
    /// What was checked: a URL, a file, a list of tags. Credentials are
    /// never included.
    pub subject: String,
    /// When the run started (RFC 3339, UTC).
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub started: DateTime<Utc>,
    /// When the run ended (RFC 3339, UTC).
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub finished: DateTime<Utc>,
    /// Which checks were asked for, so that a reader can tell a partial
    /// run from a full one (only a full run certifies).
    #[serde(default)]
    pub selection: Selection,
    /// The worst outcome of all checks (`pass` when none ran).
    pub outcome: Outcome,
    /// How many checks ended with each outcome.
    pub summary: Summary,
    /// Every check that ran, in the order it ran.
    pub checks: Vec<CheckResult>,
}

/// The options that chose and timed the checks (`--only`, `--skip`,
/// `--timeout`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    /// `--only` prefixes; empty: every check.
    pub only: Vec<String>,
    /// `--skip` prefixes.
    pub skip: Vec<String>,
    /// `--timeout` in milliseconds.
    pub timeout_ms: u64,
}

impl Selection {
    /// Whether every check was asked for (no `--only`, no `--skip`).
    pub fn is_full(&self) -> bool {
        self.only.is_empty() && self.skip.is_empty()
    }
}

/// How many checks ended with each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// All checks.
    pub total: usize,
    /// Checks that passed.
    pub pass: usize,
    /// Checks that warned.
    pub warn: usize,
    /// Checks that were skipped.
    pub skip: usize,
    /// Checks that failed.
    pub fail: usize,
    /// Checks the runner could not do.
    pub error: usize,
}

impl Summary {
    fn of(checks: &[CheckResult]) -> Self {
        let mut summary = Summary {
            total: checks.len(),
            ..Summary::default()
        };
        for check in checks {
            *summary.count_mut(check.outcome) += 1;
        }
        summary
    }

    /// How many checks ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        match outcome {
            Outcome::Pass => self.pass,
            Outcome::Warn => self.warn,
            Outcome::Skip => self.skip,
            Outcome::Fail => self.fail,
            Outcome::Error => self.error,
        }
    }

    fn count_mut(&mut self, outcome: Outcome) -> &mut usize {
        match outcome {
            Outcome::Pass => &mut self.pass,
            Outcome::Warn => &mut self.warn,
            Outcome::Skip => &mut self.skip,
            Outcome::Fail => &mut self.fail,
            Outcome::Error => &mut self.error,
        }
    }
}

/// The contract version these checks implement.
pub const CONTRACT_VERSION: &str = "1.0";

fn contract_version() -> String {
    CONTRACT_VERSION.to_owned()
}

/// The profile a target certifies: who runs the checks against what.
pub fn profile(target: &str) -> &'static str {
    match target {
        "tags" => "ci-output",
        "registry" => "registry",
        "broker" => "broker",
        "cd" => "cd-endpoint",
        _ => "",
    }
}

impl Report {
    /// A report of `checks`, with outcome and summary computed.
    pub fn new(
        target: &str,
        subject: String,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        checks: Vec<CheckResult>,
    ) -> Self {
        Self {
            report_version: REPORT_VERSION.to_owned(),
            tool: env!("CARGO_PKG_NAME").to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            target: target.to_owned(),
            contract_version: contract_version(),
            profile: profile(target).to_owned(),
            subject,
            started,
            finished,
            selection: Selection::default(),
            outcome: Outcome::worst(checks.iter().map(|c| c.outcome)),
            summary: Summary::of(&checks),
            checks,
        }
    }

    /// The process exit code the report stands for: 0 when no required
    /// check failed (pass, warn and skip only), 1 when one failed, 2 when
    /// the runner could not do its work (an `error`).
    pub fn exit_code(&self) -> u8 {
        match self.outcome {
            Outcome::Pass | Outcome::Warn | Outcome::Skip => 0,
            Outcome::Fail => 1,
            Outcome::Error => 2,
        }
    }

    /// The result of the check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The outcome of every group (every proper prefix of a check name,
    /// `cd`, `cd/signature`, …): its worst child.
    pub fn groups(&self) -> BTreeMap<String, Outcome> {
        let mut groups = BTreeMap::new();
        for check in &self.checks {
            let mut end = 0;
            while let Some(slash) = check.name[end..].find('/') {
                end += slash;
                let entry = groups.entry(check.name[..end].to_owned()).or_insert(Outcome::Pass);
                *entry = (*entry).max(check.outcome);
                end += 1;
            }
        }
        groups
    }

    /// The outcome of the group or check named `prefix` (segment-wise),
    /// `None` if nothing under it ran.
    pub fn outcome_of(&self, prefix: &str) -> Option<Outcome> {
        self.checks
            .iter()
            .filter(|c| c.name == prefix || c.name.strip_prefix(prefix).is_some_and(|r| r.starts_with('/')))
            .map(|c| c.outcome)
            .max()
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => render_text(self),
            Format::Json => render_json(self),
            Format::Junit => render_junit(self),
        }
    }
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per check, evidence under each check that did not pass.
    Text,
    /// The [`Report`] as JSON.
    Json,
    /// JUnit XML, one test suite per check group.
    Junit,
}

/// A format name other than `text`, `json` or `junit`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: expected text, json or junit")]
pub struct FormatError(String);

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "junit" => Ok(Format::Junit),
            _ => Err(FormatError(s.to_owned())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Junit => "junit",
        })
    }
}
