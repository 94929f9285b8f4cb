//! The tag grammar and image references against the language-neutral
//! vectors of `conformance/vectors/`, the generated JSON Schemas, pinned
//! error messages and properties.

use std::cmp::Ordering;
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;
use tagcast_spec::{ApiRequirement, ApiVersion, ImageReference, Stage, Tag, UpdatePolicy};

fn vectors(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every case of a vector file, with its group's description.
fn cases(doc: &Value) -> Vec<(String, Value)> {
    doc["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| {
            let name = group["description"].as_str().expect("group description").to_owned();
            group["cases"]
                .as_array()
                .expect("cases")
                .iter()
                .map(move |case| (name.clone(), case.clone()))
        })
        .collect()
}

fn schema_validator(file_name: &str) -> jsonschema::Validator {
    let document = tagcast_spec::schema::documents()
        .into_iter()
        .find(|d| d.file_name == file_name)
        .unwrap_or_else(|| panic!("no generated schema {file_name}"));
    jsonschema::validator_for(&document.schema).expect("the generated schema compiles")
}

/// Fails with every mismatch listed, not just the first.
fn report(failures: Vec<String>, checked: usize) {
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What a parser made of a vector's input: the parse, spelled as the vector
/// spells it, and the value displayed again; or the requirement it says is
/// broken, and its message.
type Outcome = Result<(Value, String), (&'static str, String)>;

/// Compares an outcome with the vector, adding every disagreement.
fn judge(what: &str, case: &Value, input: &str, outcome: Outcome, failures: &mut Vec<String>) {
    match (outcome, case["valid"].as_bool().unwrap()) {
        (Ok((parse, display)), true) => {
            let expected = &case["expected"];
            if &parse != expected {
                failures.push(format!("{what}: parsed as {parse}, expected {expected}"));
            }
            if display != input {
                failures.push(format!("{what}: displays as {display}"));
            }
        }
        (Err((requirement, message)), false) => {
            let expected = case["requirement"].as_str().unwrap();
            if requirement != expected {
                failures.push(format!("{what}: breaks {requirement} ({message}), expected {expected}"));
            }
        }
        (Ok(_), false) => failures.push(format!("{what}: accepted, expected invalid")),
        (Err((_, message)), true) => failures.push(format!("{what}: rejected ({message}), expected valid")),
    }
}

#[test]
fn tag_vectors_hold_for_the_parser() {
    let cases = cases(&vectors("tags.json"));
    assert!(cases.len() >= 200, "at least 200 tag vectors, found {}", cases.len());
    let mut failures = Vec::new();
    for (group, case) in &cases {
        let input = case["input"].as_str().unwrap();
        let what = format!("[{group}] {}: {input:?}", case["description"].as_str().unwrap());
        let outcome = Tag::parse(input)
            .map(|tag| {
                let parse = serde_json::json!({
                    "apiVersion": tag.api_version().canonical().to_string(),
                    "stage": tag.stage().as_str(),
                    "timestamp": tag.timestamp().to_datetime().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "canonical": tag.canonical().to_string(),
                    "semver": tag.to_semver().to_string(),
                });
                (parse, tag.to_string())
            })
            .map_err(|err| (err.requirement(), err.to_string()));
        judge(&what, case, input, outcome, &mut failures);
    }
    report(failures, cases.len());
}

#[test]
fn tag_vectors_hold_for_the_schema_pattern() {
    let validator = schema_validator("tag.schema.json");
    let cases = cases(&vectors("tags.json"));
    let mut failures = Vec::new();
    for (group, case) in &cases {
        let input = &case["input"];
        let parser = Tag::parse(input.as_str().unwrap()).is_ok();
        let schema = validator.is_valid(input);
        if schema != case["valid"].as_bool().unwrap() || schema != parser {
            failures.push(format!(
                "[{group}] {input}: schema says {schema}, parser says {parser}, vector says {}",
                case["valid"]
            ));
        }
    }
    report(failures, cases.len());
}

#[test]
fn ordering_vectors_hold() {
    let doc = vectors("tags_ordering.json");
    let mut failures = Vec::new();
    let mut checked = 0;
    for group in doc["groups"].as_array().unwrap() {
        let name = group["description"].as_str().unwrap();
        let tags: Vec<(String, Tag)> = group["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let t = t.as_str().unwrap();
                (t.to_owned(), Tag::parse(t).unwrap())
            })
            .collect();
        for stage in Stage::ALL {
            checked += 1;
            let mut channel: Vec<&(String, Tag)> = tags.iter().filter(|(_, t)| t.stage() == stage).collect();
            channel.sort_by(|a, b| a.1.channel_cmp(&b.1).expect("same stage"));
            let actual: Vec<&str> = channel.iter().map(|(s, _)| s.as_str()).collect();
            let expected: Vec<&str> = group["sorted"]
                .get(stage.as_str())
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
                .unwrap_or_default();
            if actual != expected {
                failures.push(format!("[{name}] {stage}: sorted {actual:?}, expected {expected:?}"));
            }
        }
        for query in group["latest"].as_array().unwrap() {
            checked += 1;
            let policy = UpdatePolicy {
                stage: query["stage"].as_str().unwrap().parse().unwrap(),
                requirement: ApiRequirement::parse(query["apiVersion"].as_str().unwrap()).unwrap(),
            };
            let after = query["after"].as_str().map(|t| Tag::parse(t).unwrap());
            let mut best: Option<&(String, Tag)> = None;
            for candidate in &tags {
                if policy.check(after.as_ref(), &candidate.1).is_ok()
                    && best.is_none_or(|b| candidate.1.channel_cmp(&b.1) == Some(Ordering::Greater))
                {
                    best = Some(candidate);
                }
            }
            let actual = best.map(|(s, _)| s.as_str());
            if actual != query["expected"].as_str() {
                failures.push(format!("[{name}] {query}: got {actual:?}"));
            }
        }
    }
    report(failures, checked);
}

#[test]
fn reference_vectors_hold_for_parser_and_schema() {
    let validator = schema_validator("image-reference.schema.json");
    let cases = cases(&vectors("references.json"));
    let mut failures = Vec::new();
    for (group, case) in &cases {
        let input = case["input"].as_str().unwrap();
        let what = format!("[{group}] {}: {input:?}", case["description"].as_str().unwrap());
        let valid = case["valid"].as_bool().unwrap();
        let outcome = ImageReference::parse(input)
            .map(|r| {
                let parse = serde_json::json!({
                    "repository": r.repository().to_string(),
                    "tag": r.tag(),
                    "digest": r.digest().map(ToString::to_string),
                });
                (parse, r.to_string())
            })
            .map_err(|err| (err.requirement(), err.to_string()));
        judge(&what, case, input, outcome, &mut failures);
        let schema_expected = valid || case["schemaValid"].as_bool().unwrap_or(false);
        if validator.is_valid(&case["input"]) != schema_expected {
            failures.push(format!("{what}: schema pattern says {}", !schema_expected));
        }
    }
    report(failures, cases.len());
}

/// Every error message, pinned: the message is part of the interface that
/// CI logs show to developers.
#[test]
fn tag_error_messages_are_pinned() {
    let table: &[(&str, &str)] = &[
        (
            "",
            r#"invalid tag "": empty, expected <api-version>-<stage>-<timestamp>"#,
        ),
        (
            "v1.1-demo-201108-195630",
            r#"invalid tag "v1.1-demo-201108-195630": prefix 'v' at position 0: a tag starts with the digits of the api-version, no prefix"#,
        ),
        (
            "1-demo-201108-195630",
            r#"invalid tag "1-demo-201108-195630": unexpected character '-' at position 1, expected '.' after the major version"#,
        ),
        (
            "1.x-demo-201108-195630",
            r#"invalid tag "1.x-demo-201108-195630": unexpected character 'x' at position 2, expected a digit of the minor version"#,
        ),
        (
            "1.1.-demo-201108-195630",
            r#"invalid tag "1.1.-demo-201108-195630": unexpected character '-' at position 4, expected a digit of the patch version"#,
        ),
        (
            "1.1",
            r#"invalid tag "1.1": unexpected end of input at position 3, expected '.' or '-' after the minor version"#,
        ),
        (
            "1.1.0.0-demo-201108-195630",
            r#"invalid tag "1.1.0.0-demo-201108-195630": unexpected character '.' at position 5, expected '-' after the patch version (an api-version has at most three numbers)"#,
        ),
        (
            "01.1-demo-201108-195630",
            r#"invalid tag "01.1-demo-201108-195630": major version "01" at position 0 has a leading zero"#,
        ),
        (
            "1.1.18446744073709551616-demo-201108-195630",
            r#"invalid tag "1.1.18446744073709551616-demo-201108-195630": patch version "18446744073709551616" at position 4 does not fit in 64 bits"#,
        ),
        (
            "1.1-Demo-201108-195630",
            r#"invalid tag "1.1-Demo-201108-195630": stage "Demo" at position 4 is not one of production, staging, development, demo"#,
        ),
        (
            "1.1-demo",
            r#"invalid tag "1.1-demo": unexpected end of input at position 8, expected '-' after the stage"#,
        ),
        (
            "1.1-demo-201330-195630",
            r#"invalid tag "1.1-demo-201330-195630": month 13 at position 11 is out of range 01-12"#,
        ),
        (
            "1.1-demo-200230-000000",
            r#"invalid tag "1.1-demo-200230-000000": day 30 at position 13 is out of range 01-29 for February 2020"#,
        ),
        (
            "1.1-demo-210431-000000",
            r#"invalid tag "1.1-demo-210431-000000": day 31 at position 13 is out of range 01-30 for April 2021"#,
        ),
        (
            "1.1-demo-201108-240000",
            r#"invalid tag "1.1-demo-201108-240000": hour 24 at position 16 is out of range 00-23"#,
        ),
        (
            "1.1-demo-201108-196030",
            r#"invalid tag "1.1-demo-201108-196030": minute 60 at position 18 is out of range 00-59"#,
        ),
        (
            "1.1-demo-201108-195660",
            r#"invalid tag "1.1-demo-201108-195660": second 60 at position 20 is out of range 00-59"#,
        ),
        (
            "1.1-demo-2011a8-195630",
            r#"invalid tag "1.1-demo-2011a8-195630": unexpected character 'a' at position 13, expected a digit of the date yymmdd"#,
        ),
        (
            "1.1-demo-201108.195630",
            r#"invalid tag "1.1-demo-201108.195630": character '.' at position 15 separates the date and the time, expected '-' (the timestamp is yymmdd-hhmmss)"#,
        ),
        (
            "1.1-demo-201108-19563",
            r#"invalid tag "1.1-demo-201108-19563": unexpected end of input at position 21, expected a digit of the time hhmmss"#,
        ),
        (
            "1.1-demo-201108-195630 ",
            r#"invalid tag "1.1-demo-201108-195630 ": unexpected character ' ' (U+0020) at position 22, expected end of tag"#,
        ),
        (
            "1.\u{661}-demo-201108-195630",
            "invalid tag \"1.\u{661}-demo-201108-195630\": unexpected character '\u{661}' (U+0661) at position 2, expected a digit of the minor version",
        ),
    ];
    let mut failures = Vec::new();
    for (input, expected) in table {
        match Tag::parse(input) {
            Ok(tag) => failures.push(format!("{input:?} parsed as {tag}")),
            Err(err) if err.to_string() != *expected => {
                failures.push(format!("{input:?}:\n  got  {err}\n  want {expected}"))
            }
            Err(_) => {}
        }
    }
    report(failures, table.len());
}

/// The mistakes people make most often get the diagnosis a person would
/// give, the rule they break, and the tag they meant.
#[test]
fn common_mistakes_are_diagnosed_with_a_suggestion() {
    let table: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "1.1.0-production-2011-08-09-195630",
            r#"year "2011" at position 17 must be two digits, YY (the timestamp is yymmdd-hhmmss)"#,
            "TAG-4",
            Some("1.1.0-production-110809-195630"),
        ),
        (
            "1.1.0-production-20110809-195630",
            r#"year "2011" at position 17 must be two digits, YY (the timestamp is yymmdd-hhmmss)"#,
            "TAG-4",
            Some("1.1.0-production-110809-195630"),
        ),
        (
            "1.1.0-production-19990809-195630",
            r#"year "1999" at position 17 must be two digits, YY (the timestamp is yymmdd-hhmmss)"#,
            "TAG-4",
            None,
        ),
        (
            "1.1-demo-201108T195630",
            "character 'T' at position 15 separates the date and the time, expected '-' (the timestamp is yymmdd-hhmmss)",
            "TAG-4",
            Some("1.1-demo-201108-195630"),
        ),
        (
            "1.1-demo-201108-19:56:30",
            r#"time "19:56:30" at position 16 has ':' separators, expected six digits hhmmss"#,
            "TAG-4",
            Some("1.1-demo-201108-195630"),
        ),
        (
            "1.1-demo-201108-1956",
            r#"time "1956" at position 16 has no seconds, expected six digits hhmmss"#,
            "TAG-4",
            Some("1.1-demo-201108-195600"),
        ),
        (
            "v1.1.0-demo-201108-195630",
            "prefix 'v' at position 0: a tag starts with the digits of the api-version, no prefix",
            "TAG-1",
            Some("1.1.0-demo-201108-195630"),
        ),
        (
            "1.1-Production-201108-195630",
            r#"stage "Production" at position 4 is not one of production, staging, development, demo"#,
            "TAG-3",
            Some("production"),
        ),
        (
            "1.1-prodution-201108-195630",
            r#"stage "prodution" at position 4 is not one of production, staging, development, demo"#,
            "TAG-3",
            Some("production"),
        ),
        (
            "1.1-DEMO-201108-195630",
            r#"stage "DEMO" at position 4 is not one of production, staging, development, demo"#,
            "TAG-3",
            Some("demo"),
        ),
        (
            "1.1-prod-201108-195630",
            r#"stage "prod" at position 4 is not one of production, staging, development, demo"#,
            "TAG-3",
            Some("production"),
        ),
        (
            "1.1-rc1-201108-195630",
            r#"stage "rc1" at position 4 is not one of production, staging, development, demo"#,
            "TAG-3",
            None,
        ),
    ];
    let mut failures = Vec::new();
    for &(input, message, requirement, suggestion) in table {
        let err = match Tag::parse(input) {
            Ok(tag) => {
                failures.push(format!("{input:?} parsed as {tag}"));
                continue;
            }
            Err(err) => err,
        };
        let want = format!("invalid tag {input:?}: {message}");
        if err.to_string() != want || err.requirement() != requirement || err.suggestion() != suggestion {
            failures.push(format!(
                "{input:?}:\n  got  {err} ({}, suggests {:?})\n  want {want} ({requirement}, suggests {suggestion:?})",
                err.requirement(),
                err.suggestion()
            ));
        }
    }
    report(failures, table.len());
}

#[test]
fn other_error_messages_are_pinned() {
    assert_eq!(
        ApiVersion::parse("1.1-").unwrap_err().to_string(),
        r#"invalid api-version "1.1-": unexpected character '-' at position 3, expected '.' or the end after the minor version"#
    );
    assert_eq!(
        ApiRequirement::parse("^x").unwrap_err().to_string(),
        r#"invalid api-version requirement "^x": unexpected character 'x' at position 1, expected a major version (TAG-10)"#
    );
    assert_eq!(
        "prod".parse::<Stage>().unwrap_err().to_string(),
        r#"invalid stage "prod": not one of production, staging, development, demo"#
    );
    let table: &[(&str, &str)] = &[
        (
            "",
            r#"invalid image reference "": empty, expected [host[:port]/]path[:tag][@digest]"#,
        ),
        (
            "elixircloud/CWL-wes",
            r#"invalid image reference "elixircloud/CWL-wes": path component "CWL-wes" at position 12 must match [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"#,
        ),
        (
            "a//b",
            r#"invalid image reference "a//b": empty path component at position 2"#,
        ),
        (
            "wes:-x",
            r#"invalid image reference "wes:-x": tag "-x" at position 4 must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"#,
        ),
        (
            "wes@sha256:abc",
            r#"invalid image reference "wes@sha256:abc": sha256 digest at position 11 has 3 hex digits, expected 64"#,
        ),
        (
            "wes@md5:abc",
            r#"invalid image reference "wes@md5:abc": digest algorithm "md5" at position 4 is not one of sha256, sha512"#,
        ),
        (
            "localhost:x/wes",
            r#"invalid image reference "localhost:x/wes": port "x" at position 10 is not a number 0-65535"#,
        ),
        (
            "wes latest",
            r#"invalid image reference "wes latest": character ' ' at position 3 is not allowed in a reference"#,
        ),
    ];
    let mut failures = Vec::new();
    for (input, expected) in table {
        match ImageReference::parse(input) {
            Ok(r) => failures.push(format!("{input:?} parsed as {r}")),
            Err(err) if err.to_string() != *expected => {
                failures.push(format!("{input:?}:\n  got  {err}\n  want {expected}"))
            }
            Err(_) => {}
        }
    }
    report(failures, table.len());
}

#[test]
fn requirements_ignore_the_pre_release() {
    let tag = Tag::parse("1.1.0-production-201108-195630").unwrap();
    assert!(ApiRequirement::parse("^1.1").unwrap().matches(&tag.api_version()));
    assert!(ApiRequirement::parse("=1.1.0").unwrap().matches(&tag.api_version()));
    assert!(!ApiRequirement::parse(">1.1.0").unwrap().matches(&tag.api_version()));
    let caret = ApiRequirement::caret(&semver::Version::new(1, 1, 0));
    assert_eq!(caret.to_string(), "^1.1.0");
    assert!(!caret.matches(&ApiVersion::new(2, 0, 0)));
}

#[test]
fn update_rule_refusals_say_why() {
    let policy = UpdatePolicy {
        stage: Stage::Production,
        requirement: ApiRequirement::parse("^1.1").unwrap(),
    };
    let t = |s: &str| Tag::parse(s).unwrap();
    assert_eq!(
        policy
            .check(None, &t("1.1-demo-201108-195630"))
            .unwrap_err()
            .to_string(),
        "stage demo is not the subscribed stage production"
    );
    assert_eq!(
        policy
            .check(None, &t("2.0-production-201108-195630"))
            .unwrap_err()
            .to_string(),
        "api-version 2.0.0 does not match the requirement"
    );
    assert_eq!(
        policy
            .check(
                Some(&t("1.1.0-production-201108-195630")),
                &t("1.1-production-201108-195630")
            )
            .unwrap_err()
            .to_string(),
        "1.1-production-201108-195630 is not newer than the current tag 1.1.0-production-201108-195630"
    );
    assert!(
        policy
            .check(
                Some(&t("1.1.0-production-201108-195630")),
                &t("1.1.1-production-200101-000000")
            )
            .is_ok()
    );
}

#[test]
fn serde_uses_the_string_form() {
    let tag: Tag = serde_json::from_str(r#""1.1-demo-201108-195630""#).unwrap();
    assert_eq!(serde_json::to_string(&tag).unwrap(), r#""1.1-demo-201108-195630""#);
    let err = serde_json::from_str::<Tag>(r#""1.1-demo-201108-19563""#).unwrap_err();
    assert!(err.to_string().contains("expected a digit of the time hhmmss"), "{err}");
}

fn stage() -> impl Strategy<Value = Stage> {
    prop::sample::select(Stage::ALL.to_vec())
}

prop_compose! {
    fn valid_tag()(
        major in any::<u64>(), minor in any::<u64>(), patch in prop::option::of(any::<u64>()),
        stage in stage(),
        secs in 946_684_800i64..4_102_444_800i64,
    ) -> (String, Tag) {
        let version = match patch {
            Some(p) => ApiVersion::new(major, minor, p),
            None => ApiVersion::short(major, minor),
        };
        let at = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        let tag = Tag::new(version, stage, at).unwrap();
        let yy = at.format("%y%m%d-%H%M%S");
        let api = match patch { Some(p) => format!("{major}.{minor}.{p}"), None => format!("{major}.{minor}") };
        (format!("{api}-{stage}-{yy}"), tag)
    }
}

proptest! {
    #[test]
    fn valid_tags_parse_and_display_back((text, tag) in valid_tag()) {
        let parsed = Tag::parse(&text).unwrap();
        prop_assert_eq!(parsed, tag);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn valid_tags_round_trip_through_semver((text, tag) in valid_tag()) {
        let version = tag.to_semver();
        let reparsed = semver::Version::parse(&version.to_string()).unwrap();
        prop_assert_eq!(&reparsed, &version);
        let back = Tag::from_semver(&reparsed).unwrap();
        prop_assert_eq!(back, tag.canonical());
        prop_assert!(back.is_equivalent(&Tag::parse(&text).unwrap()));
    }

    #[test]
    fn channel_order_is_semver_precedence((_, a) in valid_tag(), (_, b) in valid_tag()) {
        let b = Tag::new(b.api_version(), a.stage(), b.timestamp().to_datetime()).unwrap();
        prop_assert_eq!(a.channel_cmp(&b), Some(a.to_semver().cmp_precedence(&b.to_semver())));
    }

    #[test]
    fn tags_of_different_stages_are_not_compared((_, a) in valid_tag(), (_, b) in valid_tag()) {
        prop_assert_eq!(a.channel_cmp(&b).is_none(), a.stage() != b.stage());
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(err) = Tag::parse(&text) {
            prop_assert!(err.position() <= text.len());
        }
    }

    #[test]
    fn the_parser_never_panics_on_near_misses(text in "[0-9.]{1,6}-(production|staging|development|demo|x)-[0-9]{5,7}-[0-9]{5,7}") {
        let _ = Tag::parse(&text);
    }

    #[test]
    fn the_reference_parser_never_panics(text in "\\PC{0,40}") {
        let _ = ImageReference::parse(&text);
    }
}

/// TAG-10: every requirement vector against `ApiRequirement` (valid or
/// not, and the versions each admits and refuses) and against the
/// schema's pattern, so that the grammar, the table and the type agree.
#[test]
fn requirement_vectors_agree_with_the_type_and_the_schema() {
    let doc = vectors("requirements.json");
    let pattern = regex::Regex::new(tagcast_spec::REQUIREMENT_PATTERN).expect("the pattern compiles");
    let mut failures = Vec::new();
    let all = cases(&doc);
    for (group, case) in &all {
        let input = case["input"].as_str().unwrap();
        let what = format!("{group} / {} ({input:?})", case["description"].as_str().unwrap());
        let valid = case["valid"].as_bool().unwrap();
        let schema_valid = case["schemaValid"].as_bool().unwrap_or(valid);
        // The ECMA-262 `$` matches only at the very end; the Rust crate's `$` too.
        if pattern.is_match(input) != schema_valid {
            failures.push(format!(
                "{what}: pattern says {}, expected {schema_valid}",
                !schema_valid
            ));
        }
        match (ApiRequirement::parse(input), valid) {
            (Ok(req), true) => {
                for (key, expected) in [("admits", true), ("refuses", false)] {
                    for version in case[key].as_array().unwrap() {
                        let text = version.as_str().unwrap();
                        let version = ApiVersion::parse(text).unwrap();
                        if req.matches(&version) != expected {
                            failures.push(format!("{what}: {key} {text}, but matches() is {}", !expected));
                        }
                    }
                }
            }
            (Err(err), false) => {
                if err.requirement() != case["requirement"].as_str().unwrap() {
                    failures.push(format!("{what}: breaks {}", err.requirement()));
                }
                let message = err.to_string();
                if !message.contains(&format!("{input:?}")) || !message.contains("TAG-10") {
                    failures.push(format!(
                        "{what}: the message does not name the input and the rule: {message}"
                    ));
                }
            }
            (Ok(_), false) => failures.push(format!("{what}: accepted, expected invalid")),
            (Err(err), true) => failures.push(format!("{what}: rejected ({err}), expected valid")),
        }
    }
    report(failures, all.len());
}

#[test]
fn requirement_errors_name_the_position_and_suggest_the_comma_form() {
    let err = ApiRequirement::parse(">=1.1 <2").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid api-version requirement ">=1.1 <2": unexpected character '<' at position 6, expected ',' between comparators, or the end (separate comparators with a comma: `>=1.1, <2`) (TAG-10)"#
    );
    assert_eq!(err.position(), Some(6));
    let err = ApiRequirement::parse("^1.1 <2").unwrap_err();
    assert!(err.to_string().contains("comma: `^1.1, <2`"), "{err}");
    let err = ApiRequirement::parse(">=1.1 && <2").unwrap_err();
    assert!(err.to_string().contains("comma: `>=1.1, <2`"), "{err}");
    assert!(
        std::error::Error::source(&err).is_none(),
        "the message holds the cause; a source would print it twice"
    );
    let err = ApiRequirement::parse(">=1.1.0-production").unwrap_err();
    assert!(err.to_string().contains("no pre-release"), "{err}");
}
