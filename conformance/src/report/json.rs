//! The JSON report: the [`Report`] serialized, pretty, newline-terminated.

use super::Report;

/// The report as JSON (valid against `schemas/conformance-report.schema.json`).
pub fn render(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report serializes");
    text.push('\n');
    text
}
