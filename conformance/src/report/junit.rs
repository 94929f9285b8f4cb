//! The JUnit XML report, as CI systems (GitHub Actions test reporters,
//! GitLab `artifacts:reports:junit`, Jenkins) read it.
//!
//! One `<testsuite>` per group of the first two name segments
//! (`cd/signature`), one `<testcase>` per check. `fail` is `<failure>`,
//! `error` is `<error>`, `skip` is `<skipped>`; `warn` passes with its
//! message in `<system-out>`, since JUnit has no warning.

use std::fmt::Write;

use super::Report;
use crate::check::CheckResult;
use crate::outcome::Outcome;

/// The report as JUnit XML.
pub fn render(report: &Report) -> String {
    let mut suites: Vec<(String, Vec<&CheckResult>)> = Vec::new();
    for check in &report.checks {
        let suite = suite_name(&check.name);
        match suites.iter_mut().find(|(name, _)| *name == suite) {
            Some((_, checks)) => checks.push(check),
            None => suites.push((suite, vec![check])),
        }
    }
    let s = &report.summary;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"tagcast conformance {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
        escape(&report.target),
        s.total,
        s.fail,
        s.error,
        s.skip,
        seconds(report.checks.iter().map(|c| c.duration_ms).sum())
    );
    for (name, checks) in &suites {
        let count = |o: Outcome| checks.iter().filter(|c| c.outcome == o).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
            escape(name),
            checks.len(),
            count(Outcome::Fail),
            count(Outcome::Error),
            count(Outcome::Skip),
            seconds(checks.iter().map(|c| c.duration_ms).sum()),
            report.started.format("%Y-%m-%dT%H:%M:%S")
        );
        let _ = writeln!(
            out,
            "    <properties><property name=\"subject\" value=\"{}\"/></properties>",
            escape(&report.subject)
        );
        for check in checks {
            testcase(&mut out, name, check);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, suite: &str, check: &CheckResult) {
    let _ = writeln!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
        escape(&check.name),
        escape(&suite.replace('/', ".")),
        seconds(check.duration_ms)
    );
    let message = check.message.as_deref().unwrap_or("");
    let mut detail = String::new();
    for (label, value) in [
        ("sent", &check.evidence.sent),
        ("expected", &check.evidence.expected),
        ("received", &check.evidence.received),
    ] {
        if let Some(value) = value {
            let _ = writeln!(detail, "{label}: {value}");
        }
    }
    match check.outcome {
        Outcome::Pass => {}
        Outcome::Warn => {}
        Outcome::Skip => {
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(message));
        }
        Outcome::Fail => {
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                escape(message),
                escape(&check.requirement),
                escape_text(&detail)
            );
        }
        Outcome::Error => {
            let _ = writeln!(
                out,
                "      <error message=\"{}\" type=\"runner\">{}</error>",
                escape(message),
                escape_text(&detail)
            );
        }
    }
    let mut system_out = format!(
        "{} {} {}: {}\n",
        check.requirement, check.level, check.outcome, check.description
    );
    if check.outcome == Outcome::Warn {
        let _ = writeln!(system_out, "warning: {message}");
        system_out.push_str(&detail);
    }
    let _ = writeln!(out, "      <system-out>{}</system-out>", escape_text(&system_out));
    out.push_str("    </testcase>\n");
}

/// The first two segments of a check name: `cd/signature/stale` →
/// `cd/signature`.
fn suite_name(name: &str) -> String {
    let mut parts = name.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(first), Some(second)) => format!("{first}/{second}"),
        (Some(first), None) => first.to_owned(),
        _ => name.to_owned(),
    }
}

fn seconds(millis: f64) -> String {
    format!("{:.6}", millis / 1000.0)
}

/// Escapes text for an XML attribute or element; characters XML 1.0 cannot
/// carry at all (most control characters) become U+FFFD, because evidence
/// may quote arbitrary bytes a peer sent.
fn escape(text: &str) -> String {
    escape_with(text, true)
}

/// Escapes element content, where line breaks may stay as they are.
fn escape_text(text: &str) -> String {
    escape_with(text, false)
}

fn escape_with(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' if !attribute => out.push(c),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;\u{FFFD}");
    }

    #[test]
    fn suites_are_the_first_two_segments() {
        assert_eq!(suite_name("cd/signature/stale"), "cd/signature");
        assert_eq!(suite_name("tags/grammar/1.1-demo-201108-195630"), "tags/grammar");
        assert_eq!(suite_name("cd"), "cd");
    }
}
