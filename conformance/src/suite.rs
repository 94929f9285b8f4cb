//! The context a target's checks run in: selection, timing, results.

use std::future::Future;
use std::time::Instant;

use chrono::Utc;

use crate::check::{Check, CheckResult, Verdict};
use crate::config::Config;
use crate::outcome::Outcome;
use crate::report::{Report, Selection};

/// Collects the results of one run.
pub(crate) struct Suite<'a> {
    config: &'a Config,
    started: chrono::DateTime<Utc>,
    results: Vec<CheckResult>,
    /// When the previous result was recorded (or the run began): a verdict
    /// recorded without running anything took the time since then.
    last: Instant,
}

impl<'a> Suite<'a> {
    pub(crate) fn new(config: &'a Config) -> Self {
        Self {
            config,
            started: Utc::now(),
            results: Vec::new(),
            last: Instant::now(),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        self.config
    }

    /// Whether `name` is selected by `--only`/`--skip`.
    pub(crate) fn selects(&self, name: &str) -> bool {
        self.config.selects(name)
    }

    /// Runs `check` unless it is deselected; `None` when it did not run.
    pub(crate) async fn run(&mut self, check: &Check, verdict: impl Future<Output = Verdict>) -> Option<Outcome> {
        self.run_named(check, check.name.to_owned(), verdict).await
    }

    /// Runs a per-input instance of `check` named `name`.
    pub(crate) async fn run_named(
        &mut self,
        check: &Check,
        name: String,
        verdict: impl Future<Output = Verdict>,
    ) -> Option<Outcome> {
        if !self.selects(&name) {
            return None;
        }
        let start = Instant::now();
        let verdict = verdict.await;
        Some(self.push(check, name, verdict, start))
    }

    /// Records a verdict reached without running anything (a skip for a
    /// missing prerequisite, a per-input result computed in bulk).
    pub(crate) fn record(&mut self, check: &Check, name: String, verdict: Verdict) -> Option<Outcome> {
        if !self.selects(&name) {
            return None;
        }
        Some(self.push(check, name, verdict, self.last))
    }

    /// Records a verdict whatever the selection says: for preflight checks
    /// whose failure makes every other check meaningless.
    pub(crate) fn record_always(&mut self, check: &Check, verdict: Verdict, start: Instant) -> Outcome {
        self.push(check, check.name.to_owned(), verdict, start)
    }

    fn push(&mut self, check: &Check, name: String, verdict: Verdict, start: Instant) -> Outcome {
        let now = Instant::now();
        // Nanoseconds as f64 are exact up to 104 days.
        let millis = now.saturating_duration_since(start).as_nanos() as f64 / 1e6;
        self.last = now;
        let result = CheckResult::new(check, name, verdict, millis);
        let outcome = result.outcome;
        self.results.push(result);
        outcome
    }

    pub(crate) fn finish(self, target: &str, subject: String) -> Report {
        let mut report = Report::new(target, subject, self.started, Utc::now(), self.results);
        report.selection = Selection {
            only: self.config.only.clone(),
            skip: self.config.skip.clone(),
            timeout_ms: u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        report
    }
}
