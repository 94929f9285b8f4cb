//! What a check is (its static definition) and what it found (its result).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::outcome::{Level, Outcome};

/// The static definition of a check: a hierarchical name, the requirement
/// of `spec/` it verifies, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Hierarchical name, `/`-separated: `cd/signature/stale`. Checks that
    /// run once per input append the input (`tags/grammar/<tag>`).
    pub name: &'static str,
    /// The requirement ID of `spec/` (`TAG-4`, `API-7`, `CB-2`).
    pub requirement: &'static str,
    /// MUST or SHOULD.
    pub level: Level,
    /// One sentence: what the runner does and what it expects.
    pub description: &'static str,
}

/// What was sent, what was expected and what came back: the evidence that
/// a report shows for a check that did not pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// What the runner sent (request line, relevant headers, a body excerpt)
    /// or read (a file, a tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// What the requirement asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the peer answered or what the input contained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
}

impl Evidence {
    /// Evidence with all three parts.
    pub fn new(sent: impl Into<String>, expected: impl Into<String>, received: impl Into<String>) -> Self {
        Self {
            sent: Some(sent.into()),
            expected: Some(expected.into()),
            received: Some(received.into()),
        }
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.sent.is_none() && self.expected.is_none() && self.received.is_none()
    }
}

/// What a check concluded, before its level is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The requirement holds.
    Pass(Evidence),
    /// Worth noting, not forbidden.
    Warn(String, Evidence),
    /// The requirement is broken: why, and the evidence.
    Fail(String, Evidence),
    /// The check did not run, and why.
    Skip(String),
    /// The runner could not do its work, and why.
    Error(String),
}

impl Verdict {
    /// A pass without evidence.
    pub fn pass() -> Self {
        Verdict::Pass(Evidence::default())
    }

    /// A failure with evidence.
    pub fn fail(message: impl Into<String>, evidence: Evidence) -> Self {
        Verdict::Fail(message.into(), evidence)
    }
}

/// The result of one check, as every report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    /// Hierarchical name, e.g. `cd/signature/stale`.
    pub name: String,
    /// Requirement ID of `spec/`, e.g. `CB-5`.
    pub requirement: String,
    /// MUST or SHOULD.
    pub level: Level,
    /// What the check does.
    pub description: String,
    /// Its outcome; a broken SHOULD is `warn`, never `fail`.
    pub outcome: Outcome,
    /// Why it did not pass (absent on a pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What was sent, expected and received.
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
    /// Wall-clock time the check took, in milliseconds, to the nanosecond
    /// (a check of a tag takes well under one millisecond). For a verdict
    /// drawn from an exchange shared by several checks, the time since the
    /// previous check was recorded.
    pub duration_ms: f64,
}

impl CheckResult {
    /// The result of `check` (named `name`, which extends `check.name` for
    /// per-input checks) from its verdict.
    pub fn new(check: &Check, name: String, verdict: Verdict, duration_ms: f64) -> Self {
        let (outcome, message, evidence) = match verdict {
            Verdict::Pass(evidence) => (Outcome::Pass, None, evidence),
            Verdict::Warn(message, evidence) => (Outcome::Warn, Some(message), evidence),
            Verdict::Fail(message, evidence) => match check.level {
                Level::Must => (Outcome::Fail, Some(message), evidence),
                Level::Should => (Outcome::Warn, Some(message), evidence),
            },
            Verdict::Skip(message) => (Outcome::Skip, Some(message), Evidence::default()),
            Verdict::Error(message) => (Outcome::Error, Some(message), Evidence::default()),
        };
        Self {
            name,
            requirement: check.requirement.to_owned(),
            level: check.level,
            description: check.description.to_owned(),
            outcome,
            message,
            evidence,
            duration_ms,
        }
    }
}
