//! The framework: outcome order, selection, exit codes, the three report
//! formats and the report schema.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use tagcast_conformance::report::Report;
use tagcast_conformance::{Check, CheckResult, Evidence, Format, Level, Outcome, Verdict, parse_duration};

fn result(name: &str, outcome: Outcome) -> CheckResult {
    let check = Check {
        name: "x",
        requirement: "CB-5",
        level: Level::Must,
        description: "a check <with> \"markup\" & more",
    };
    let verdict = match outcome {
        Outcome::Pass => Verdict::pass(),
        Outcome::Warn => Verdict::Warn("worth a look".into(), Evidence::default()),
        Outcome::Skip => Verdict::Skip("no input".into()),
        Outcome::Fail => Verdict::fail(
            "answered 202 instead of 401",
            Evidence::new(
                "POST http://127.0.0.1/\nwebhook-timestamp: 1\n\n{\"a\":\"<b>\u{1}\"}",
                "401",
                "202 Accepted",
            ),
        ),
        Outcome::Error => Verdict::Error("cannot reach the endpoint".into()),
    };
    CheckResult::new(&check, name.into(), verdict, 12.0)
}

fn report(outcomes: &[(&str, Outcome)]) -> Report {
    Report::new(
        "cd",
        "http://127.0.0.1:1/".into(),
        Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 1).unwrap(),
        outcomes.iter().map(|(n, o)| result(n, *o)).collect(),
    )
}

fn every_outcome() -> Report {
    report(&[
        ("cd/delivery/valid", Outcome::Pass),
        ("cd/handshake", Outcome::Warn),
        ("cd/delivery/idempotent", Outcome::Skip),
        ("cd/signature/stale", Outcome::Fail),
        ("cd/signature/bad", Outcome::Pass),
        ("cd/body/too-large", Outcome::Error),
    ])
}

#[test]
fn outcomes_are_ordered_from_best_to_worst() {
    assert!(Outcome::Pass < Outcome::Warn);
    assert!(Outcome::Warn < Outcome::Skip);
    assert!(Outcome::Skip < Outcome::Fail);
    assert!(Outcome::Fail < Outcome::Error);
    assert_eq!(
        Outcome::worst([Outcome::Pass, Outcome::Fail, Outcome::Warn]),
        Outcome::Fail
    );
    assert_eq!(Outcome::worst([]), Outcome::Pass);
}

#[test]
fn a_group_is_its_worst_child() {
    let report = every_outcome();
    let groups = report.groups();
    assert_eq!(groups["cd"], Outcome::Error);
    assert_eq!(groups["cd/signature"], Outcome::Fail);
    assert_eq!(groups["cd/delivery"], Outcome::Skip);
    assert_eq!(report.outcome_of("cd/signature/bad"), Some(Outcome::Pass));
    assert_eq!(report.outcome_of("cd/sig"), None, "prefixes match whole segments");
}

#[test]
fn exit_codes_follow_the_worst_outcome() {
    assert_eq!(
        report(&[("a/b", Outcome::Pass), ("a/c", Outcome::Warn), ("a/d", Outcome::Skip)]).exit_code(),
        0
    );
    assert_eq!(report(&[("a/b", Outcome::Pass), ("a/c", Outcome::Fail)]).exit_code(), 1);
    assert_eq!(
        report(&[("a/b", Outcome::Fail), ("a/c", Outcome::Error)]).exit_code(),
        2
    );
    assert_eq!(report(&[]).exit_code(), 0);
}

#[test]
fn a_broken_should_is_a_warning() {
    let check = Check {
        name: "cd/x",
        requirement: "CB-1",
        level: Level::Should,
        description: "d",
    };
    let result = CheckResult::new(&check, "cd/x".into(), Verdict::fail("m", Evidence::default()), 0.0);
    assert_eq!(result.outcome, Outcome::Warn);
}

#[test]
fn text_shows_id_outcome_and_evidence_of_failures() {
    let text = every_outcome().render(Format::Text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "PASS  CB-5  cd/delivery/valid");
    assert!(text.contains("FAIL  CB-5  cd/signature/stale: answered 202 instead of 401\n"));
    assert!(text.contains("      sent     POST http://127.0.0.1/\n"));
    assert!(text.contains("      expected 401\n"));
    assert!(text.contains("      received 202 Accepted\n"));
    assert!(text.contains("ERROR CB-5  cd/body/too-large: cannot reach the endpoint\n"));
    assert_eq!(
        lines.last().unwrap(),
        &"cd: error (6 checks: 2 pass, 1 warn, 1 skip, 1 fail, 1 error) against http://127.0.0.1:1/"
    );
}

/// A message of several lines does not break the table: every line that
/// does not start a check is indented under the one it belongs to.
#[test]
fn text_keeps_a_multi_line_message_under_its_check() {
    let check = Check {
        name: "cd/x",
        requirement: "CB-1",
        level: Level::Must,
        description: "d",
    };
    let verdict = Verdict::Error("cannot reach the endpoint\ncaused by: connection refused\n".into());
    let mut report = every_outcome();
    report
        .checks
        .insert(1, CheckResult::new(&check, "cd/x".into(), verdict, 1.0));
    let text = report.render(Format::Text);
    assert!(
        text.contains("ERROR CB-1  cd/x: cannot reach the endpoint\n      caused by: connection refused\nWARN  CB-5"),
        "{text}"
    );
    let outcomes = ["PASS ", "WARN ", "SKIP ", "FAIL ", "ERROR"];
    for line in text.lines().take_while(|l| !l.starts_with("cd: ")) {
        assert!(
            line.starts_with("      ") || outcomes.iter().any(|o| line.starts_with(o)),
            "a line outside the table: {line:?}\n{text}"
        );
    }
}

#[test]
fn junit_parses_as_xml_with_one_testcase_per_check() {
    let xml = every_outcome().render(Format::Junit);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("6"));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("errors"), Some("1"));
    assert_eq!(root.attribute("skipped"), Some("1"));
    let suites: Vec<&str> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    assert_eq!(suites, ["cd/delivery", "cd/handshake", "cd/signature", "cd/body"]);
    let cases: Vec<roxmltree::Node<'_, '_>> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 6);
    let stale = cases
        .iter()
        .find(|n| n.attribute("name") == Some("cd/signature/stale"))
        .unwrap();
    let failure = stale.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("message"), Some("answered 202 instead of 401"));
    assert_eq!(failure.attribute("type"), Some("CB-5"));
    assert!(failure.text().unwrap().contains("received: 202 Accepted"));
    assert!(
        failure.text().unwrap().contains("{\"a\":\"<b>\u{FFFD}\"}"),
        "markup round-trips, control characters do not"
    );
    let skipped = cases
        .iter()
        .find(|n| n.attribute("name") == Some("cd/delivery/idempotent"))
        .unwrap();
    assert!(skipped.children().any(|n| n.has_tag_name("skipped")));
    let errored = cases
        .iter()
        .find(|n| n.attribute("name") == Some("cd/body/too-large"))
        .unwrap();
    assert!(errored.children().any(|n| n.has_tag_name("error")));
}

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/conformance-report.schema.json")
}

fn report_schema() -> Value {
    tagcast_conformance::schema::documents()
        .into_iter()
        .find(|d| d.file_name == "conformance-report.schema.json")
        .expect("the report schema")
        .schema
}

#[test]
fn json_validates_against_the_report_schema() {
    let validator = jsonschema::validator_for(&report_schema()).expect("the schema compiles");
    let json: Value = serde_json::from_str(&every_outcome().render(Format::Json)).unwrap();
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(json["checks"][3]["outcome"], "fail");
    assert_eq!(json["checks"][3]["evidence"]["expected"], "401");
    assert_eq!(json["summary"]["fail"], 1);

    // The schema can fail: an unknown outcome is rejected.
    let mut broken = json.clone();
    broken["checks"][0]["outcome"] = "maybe".into();
    assert!(!validator.is_valid(&broken));
}

#[test]
fn json_round_trips() {
    let report = every_outcome();
    let back: Report = serde_json::from_str(&report.render(Format::Json)).unwrap();
    assert_eq!(back, report);
}

/// The checked-in schema is what the code generates; `TAGCAST_BLESS=1`
/// rewrites it (as does `tagcast schema export`).
#[test]
fn the_report_schema_has_not_drifted() {
    let document = tagcast_conformance::schema::documents().remove(0);
    let generated = tagcast_spec::schema::render(&document);
    let path = schema_path();
    if std::env::var_os("TAGCAST_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write the schema");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} differs from the generated schema; run `TAGCAST_BLESS=1 cargo test` or `tagcast schema export`",
        path.display()
    );
}

#[test]
fn durations_take_a_unit() {
    assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
    for bad in ["", "m", "5 m", "-5s", "5d", "1.5s"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn formats_have_names() {
    for format in [Format::Text, Format::Json, Format::Junit] {
        assert_eq!(format.to_string().parse::<Format>().unwrap(), format);
    }
    assert!("html".parse::<Format>().is_err());
}

#[test]
fn every_check_has_a_unique_name_and_a_requirement_id() {
    let catalogue = tagcast_conformance::catalogue();
    let mut names: Vec<&str> = catalogue.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), catalogue.len(), "names are unique");
    for check in catalogue {
        let (prefix, number) = check.requirement.split_once('-').expect("an ID like CB-5");
        assert!(["TAG", "REF", "API", "CB", "REG"].contains(&prefix), "{}", check.name);
        assert!(number.parse::<u32>().is_ok(), "{}", check.name);
    }
}

/// Every requirement ID a check names is defined in the prose of `spec/`
/// (an `<a id="…">` anchor), so that a report's IDs lead somewhere.
#[test]
fn every_requirement_id_named_by_a_check_is_defined_in_the_spec() {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec");
    let prose: String = ["tags.md", "service-api.md", "callbacks.md"]
        .iter()
        .map(|file| std::fs::read_to_string(spec.join(file)).unwrap())
        .collect();
    let undefined: Vec<String> = tagcast_conformance::catalogue()
        .iter()
        .filter(|check| !prose.contains(&format!("<a id=\"{}\"></a>", check.requirement)))
        .map(|check| format!("{} names {}", check.name, check.requirement))
        .collect();
    assert!(undefined.is_empty(), "IDs missing from spec/: {undefined:?}");
}

/// The README's profiles table lists exactly the SHOULD checks as optional.
#[test]
fn the_readme_profiles_list_exactly_the_optional_checks() {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let profiles = readme
        .split("## Profiles")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Profiles section");
    let mut listed: Vec<String> = profiles
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| line.trim_end_matches('|').rsplit('|').next().map(str::to_owned))
        .flat_map(|cell| {
            cell.split(',')
                .map(|name| name.trim().trim_matches('`').to_owned())
                .filter(|name| !name.is_empty() && name != "none")
                .collect::<Vec<_>>()
        })
        .collect();
    listed.sort();
    let mut optional: Vec<String> = tagcast_conformance::catalogue()
        .iter()
        .filter(|check| check.level == tagcast_conformance::Level::Should)
        .map(|check| check.name.to_owned())
        .collect();
    optional.sort();
    assert_eq!(listed, optional);
}

/// The README documents every check under its name and ID.
#[test]
fn the_readme_lists_every_check_with_its_id() {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for check in tagcast_conformance::catalogue() {
        let per_input = [
            "tags/grammar",
            "tags/stage",
            "tags/api-version",
            "tags/time",
            "tags/created",
            "tags/version",
            "registry/tags/grammar",
        ];
        let shown = if per_input.contains(&check.name) {
            format!("`{}/<tag>`", check.name)
        } else {
            format!("`{}`", check.name)
        };
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| {shown} |")))
            .unwrap_or_else(|| panic!("README has no row for {shown}"));
        assert!(
            row.contains(check.requirement),
            "README row of {} lacks {}",
            check.name,
            check.requirement
        );
    }
}

/// The README's coverage table names every API-, CB- and REG- requirement
/// of `spec/` (with a check, or why there is none), and each check named
/// in it exists.
#[test]
fn the_readme_coverage_table_names_every_requirement() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let table = readme
        .split("## What the suite covers")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a coverage section");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    let covered = |id: &str| {
        rows.iter().any(|row| {
            let first = row.split('|').nth(1).unwrap_or_default();
            first.split([',', ' ']).any(|cell| cell == id) || in_range(first, id)
        })
    };
    let mut missing = Vec::new();
    for file in ["service-api.md", "callbacks.md"] {
        let prose = std::fs::read_to_string(root.join("../spec").join(file)).unwrap();
        for id in prose
            .split("<a id=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
        {
            if ["API-", "CB-", "REG-"].iter().any(|p| id.starts_with(p)) && !covered(id) {
                missing.push(id.to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "not in the coverage table: {missing:?}");
    let names: Vec<&str> = tagcast_conformance::catalogue().iter().map(|c| c.name).collect();
    for named in table.split('`').skip(1).step_by(2) {
        let named = named.trim_end_matches("/*");
        if named.starts_with("broker/") || named.starts_with("cd/") {
            assert!(
                names.iter().any(|n| *n == named || n.starts_with(&format!("{named}/"))),
                "the coverage table names {named}, which is no check"
            );
        }
    }
}

/// Whether `cell` is a range `X-a to X-b` holding `id`.
fn in_range(cell: &str, id: &str) -> bool {
    let Some((from, to)) = cell.trim().split_once(" to ") else {
        return false;
    };
    let split = |s: &str| {
        s.trim()
            .rsplit_once('-')
            .map(|(p, n)| (p.to_owned(), n.parse::<u32>().ok()))
    };
    match (split(from), split(to), split(id)) {
        (Some((p, Some(a))), Some((q, Some(b))), Some((r, Some(n)))) => p == q && q == r && (a..=b).contains(&n),
        _ => false,
    }
}
