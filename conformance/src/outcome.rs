//! Outcomes and requirement levels.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The outcome of one check, or of a group of checks.
///
/// The order is from best to worst, so that a group's outcome is the
/// maximum of its children's: a group with one failure has failed, whatever
/// else passed.
///
/// - `pass`: the peer did what the requirement asks;
/// - `warn`: the peer broke a SHOULD (a recommendation), or the runner saw
///   something worth reporting that the contract does not forbid;
/// - `skip`: the check did not run (a prerequisite failed, or an optional
///   input was not given); it proves nothing either way;
/// - `fail`: the peer broke a MUST;
/// - `error`: the runner itself could not do its work (peer unreachable,
///   a port could not be bound); the peer's conformance is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The requirement holds.
    Pass,
    /// A recommendation (SHOULD) is broken.
    Warn,
    /// The check did not run.
    Skip,
    /// A requirement (MUST) is broken.
    Fail,
    /// The runner could not do its work.
    Error,
}

impl Outcome {
    /// All outcomes, best first.
    pub const ALL: [Outcome; 5] = [
        Outcome::Pass,
        Outcome::Warn,
        Outcome::Skip,
        Outcome::Fail,
        Outcome::Error,
    ];

    /// The lowercase name used in every report.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Skip => "skip",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }

    /// The outcome of a group: its worst child, `pass` when it has none.
    pub fn worst(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        outcomes.into_iter().max().unwrap_or(Outcome::Pass)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How strongly the contract asks for what a check verifies (RFC 2119).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// MUST: a violation is `fail` and makes the run exit 1.
    Must,
    /// SHOULD: a violation is `warn`; the run still exits 0.
    Should,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        })
    }
}
