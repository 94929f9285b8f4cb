//! The text report: one line per check; evidence under each that did not
//! pass; a summary line.

use std::fmt::Write;

use super::Report;
use crate::outcome::Outcome;

/// The report as text for a terminal or a CI log.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let id_width = report.checks.iter().map(|c| c.requirement.len()).max().unwrap_or(0);
    for check in &report.checks {
        let _ = write!(
            out,
            "{:<5} {:<id_width$}  {}",
            check.outcome.as_str().to_uppercase(),
            check.requirement,
            check.name
        );
        match &check.message {
            Some(message) if check.outcome != Outcome::Pass => {
                // A message of several lines (an error and its causes, a
                // peer's answer) stays under its check, indented like the
                // evidence, so that every check still starts a line.
                let mut lines = message.lines();
                let _ = writeln!(out, ": {}", lines.next().unwrap_or(""));
                for line in lines {
                    let _ = writeln!(out, "      {line}");
                }
            }
            _ => out.push('\n'),
        }
        if check.outcome != Outcome::Pass {
            for (label, value) in [
                ("sent", &check.evidence.sent),
                ("expected", &check.evidence.expected),
                ("received", &check.evidence.received),
            ] {
                if let Some(value) = value {
                    let mut lines = value.lines();
                    let _ = writeln!(out, "      {label:<9}{}", lines.next().unwrap_or(""));
                    for line in lines {
                        let _ = writeln!(out, "      {:<9}{line}", "");
                    }
                }
            }
        }
    }
    if report.selection.is_full() && report.exit_code() == 0 && report.summary.total > 0 {
        let _ = writeln!(
            out,
            "conforms to tagcast contract {}, profile {}",
            report.contract_version, report.profile
        );
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{}: {} ({} checks: {} pass, {} warn, {} skip, {} fail, {} error) against {}",
        report.target, report.outcome, s.total, s.pass, s.warn, s.skip, s.fail, s.error, report.subject
    );
    if !report.selection.is_full() {
        let _ = writeln!(
            out,
            "partial run (--only {:?}, --skip {:?}): it does not certify conformance",
            report.selection.only, report.selection.skip
        );
    }
    out
}
