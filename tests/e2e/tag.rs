//! `tagcast tag …`, `tagcast reference …` and `tagcast schema export`.

use serde_json::Value;

use crate::support::{bless, path, run, stderr, stdout};

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

#[test]
fn check_accepts_the_proposal_example() {
    let out = run(&["tag", "check", "1.1-demo-201108-195630"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 checked, 1 valid, 0 invalid\n");
}

#[test]
fn check_rejects_february_30_naming_the_day() {
    let out = run(&["tag", "check", "1.1-demo-200230-000000"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "argv[3]: invalid tag \"1.1-demo-200230-000000\": day 30 at position 13 is out of range 01-29 for February 2020 (TAG-4)\n\
         1 checked, 0 valid, 1 invalid\n"
    );
}

#[test]
fn check_json_has_exactly_the_documented_fields() {
    let out = run(
        &[
            "tag",
            "check",
            "--format",
            "json",
            "1.1-demo-201108-195630",
            "1.1-demo-200230-000000",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let records = json_lines(&stdout(&out));
    assert_eq!(
        records[0],
        serde_json::json!({
            "tag": "1.1-demo-201108-195630",
            "valid": true,
            "canonical": "1.1.0-demo-201108-195630",
            "semver": "1.1.0-demo-201108-195630",
            "apiVersion": "1.1.0",
            "stage": "demo",
            "timestamp": "2020-11-08T19:56:30Z",
            "errors": []
        })
    );
    assert_eq!(
        records[1],
        serde_json::json!({
            "tag": "1.1-demo-200230-000000",
            "valid": false,
            "canonical": null,
            "semver": null,
            "apiVersion": null,
            "stage": null,
            "timestamp": null,
            "errors": [{
                "source": "argv[6]",
                "line": null,
                "position": 13,
                "requirement": "TAG-4",
                "message": "invalid tag \"1.1-demo-200230-000000\": day 30 at position 13 is out of range 01-29 for February 2020",
                "suggestion": null
            }]
        })
    );
}

/// Each error names where the tag came from (argv index, file and line,
/// standard input and line) and the rule, and suggests what was meant.
#[test]
fn check_errors_name_the_source_the_rule_and_a_suggestion() {
    let out = run(
        &["tag", "check", "1.1-demo-201108-195630", "1.1-Production-201108-195630"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "argv[4]: invalid tag \"1.1-Production-201108-195630\": stage \"Production\" at position 4 is not one of \
         production, staging, development, demo (TAG-3); did you mean `production`?\n\
         2 checked, 1 valid, 1 invalid\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tags.txt");
    std::fs::write(&file, "1.1-demo-201108-195630\n\n1.1.0-production-2011-08-09-195630\n").unwrap();
    let out = run(&["tag", "check", "--file", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!(
            "{}:3: invalid tag \"1.1.0-production-2011-08-09-195630\": year \"2011\" at position 17 must be two \
             digits, YY (the timestamp is yymmdd-hhmmss) (TAG-4); did you mean `1.1.0-production-110809-195630`?\n\
             2 checked, 1 valid, 1 invalid\n",
            file.display()
        )
    );

    let out = run(&["tag", "check"], "1.1-demo-201108-195630\nv1.1.0-demo-201108-1956\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "stdin:2: invalid tag \"v1.1.0-demo-201108-1956\": prefix 'v' at position 0: a tag starts with the digits \
         of the api-version, no prefix (TAG-1)\n\
         2 checked, 1 valid, 1 invalid\n"
    );
    assert_eq!(stderr(&out), "", "a pipe is not told that standard input is read");
}

/// On a terminal (a pseudo-terminal from `script`, util-linux), `tag
/// check` without tags says that it reads standard input instead of
/// seeming to hang; `^D` ends the input. (`timeout` only guards against a
/// hang; nothing here is timed.)
#[test]
fn check_on_a_terminal_says_it_reads_standard_input() {
    use std::io::Write as _;
    let command = format!("{} tag check", env!("CARGO_BIN_EXE_tagcast"));
    let mut child = std::process::Command::new("timeout")
        .args(["60", "script", "-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"1.1-demo-201108-195630\n\x04")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("reading tags from standard input, one per line; end with Ctrl-D"),
        "{text}"
    );
    assert!(text.contains("1 checked, 1 valid, 0 invalid"), "{text}");
}

#[test]
fn check_json_errors_are_objects_with_source_line_and_suggestion() {
    let out = run(
        &["tag", "check", "--format", "json"],
        "1.1-demo-201108-19:56:30\n1.1-prodution-201108-195630\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let errors: Vec<Value> = json_lines(&stdout(&out))
        .iter()
        .map(|r| r["errors"][0].clone())
        .collect();
    assert_eq!(
        errors,
        [
            serde_json::json!({
                "source": "stdin",
                "line": 1,
                "position": 16,
                "requirement": "TAG-4",
                "message": "invalid tag \"1.1-demo-201108-19:56:30\": time \"19:56:30\" at position 16 has ':' separators, expected six digits hhmmss",
                "suggestion": "1.1-demo-201108-195630"
            }),
            serde_json::json!({
                "source": "stdin",
                "line": 2,
                "position": 4,
                "requirement": "TAG-3",
                "message": "invalid tag \"1.1-prodution-201108-195630\": stage \"prodution\" at position 4 is not one of production, staging, development, demo",
                "suggestion": "production"
            })
        ]
    );
}

/// No tags at all is an error naming the source (a failed `skopeo` before
/// the pipe must not pass as "all valid"), unless `--allow-empty`.
#[test]
fn empty_input_is_an_error_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let empty = empty.to_str().unwrap();
    for command in [
        &["tag", "check"][..],
        &["tag", "check", "--format", "json"],
        &["tag", "sort"],
        &["tag", "normalize"],
        &["tag", "latest", "--stage", "demo"],
    ] {
        let out = run(command, "");
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        assert_eq!(stdout(&out), "", "{command:?}");
        assert!(
            stderr(&out).starts_with("error: no tags in standard input"),
            "{command:?}: {}",
            stderr(&out)
        );
        let out = run(&[command, &["--file", empty]].concat(), "");
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        assert!(
            stderr(&out).starts_with(&format!("error: no tags in {empty}")),
            "{command:?}: {}",
            stderr(&out)
        );
    }
    let out = run(&["tag", "check", "--allow-empty"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0 checked, 0 valid, 0 invalid\n");
    let out = run(&["tag", "sort", "--allow-empty", "--file", empty], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn normalize_reads_a_file_or_standard_input_like_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tags.txt");
    std::fs::write(&file, "1.1-demo-201108-195630\n1.1-Demo-201108-195630\n").unwrap();
    let out = run(&["tag", "normalize", "--file", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "1.1.0-demo-201108-195630\n");
    assert!(
        stderr(&out).starts_with(&format!("{}:2: invalid tag", file.display())),
        "{}",
        stderr(&out)
    );
    let out = run(&["tag", "normalize"], "2.0-staging-240229-000000\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2.0.0-staging-240229-000000\n");
}

#[test]
fn new_explains_an_impossible_date_and_shows_the_format() {
    let out = run(
        &[
            "tag",
            "new",
            "--api-version",
            "1.1",
            "--stage",
            "demo",
            "--at",
            "2021-02-29T12:00:00Z",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: invalid --at \"2021-02-29T12:00:00Z\": day 29 at position 8 is out of range 01-28 for February 2021; \
         expected RFC 3339, YYYY-MM-DDThh:mm:ss and Z or an offset, e.g. 2020-11-08T19:56:30Z\n"
    );
}

/// The requirement grammar's message is printed once (not again as its
/// cause) and shows the input with the comma it lacks.
#[test]
fn requirement_errors_are_printed_once_with_the_comma_form() {
    let out = run(&["tag", "latest", "--stage", "demo", "--api-version", "^1.1 <2"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: invalid api-version requirement \"^1.1 <2\": unexpected character '<' at position 5, expected ',' \
         between comparators, or the end (separate comparators with a comma: `^1.1, <2`) (TAG-10)\n"
    );
}

#[test]
fn check_reads_a_file_from_standard_input_in_order() {
    let input = "1.0.0-production-200101-000000\r\nlatest\n\n2.0-staging-991231-235959\n";
    let out = run(&["tag", "check", "--format", "json", "--file", "-"], input);
    assert_eq!(out.status.code(), Some(1));
    let tags: Vec<_> = json_lines(&stdout(&out))
        .iter()
        .map(|r| (r["tag"].as_str().unwrap().to_owned(), r["valid"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        tags,
        [
            ("1.0.0-production-200101-000000".to_owned(), true),
            ("latest".to_owned(), false),
            ("2.0-staging-991231-235959".to_owned(), true)
        ]
    );
}

#[test]
fn check_reports_an_unreadable_file_with_exit_2() {
    let out = run(&["tag", "check", "--file", "/nonexistent/tags.txt"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot open /nonexistent/tags.txt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn new_formats_the_given_time_in_utc() {
    let out = run(
        &[
            "tag",
            "new",
            "--api-version",
            "1.1.0",
            "--stage",
            "demo",
            "--at",
            "2020-11-08T20:56:30+01:00",
            "--image",
            "elixircloud/cwl-wes",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "elixircloud/cwl-wes:1.1.0-demo-201108-195630\n");
}

#[test]
fn new_now_produces_a_valid_tag() {
    let out = run(&["tag", "new", "--api-version", "2.0.1", "--stage", "staging"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tag = stdout(&out);
    let tag = tagcast_spec::Tag::parse(tag.trim_end()).expect("tag new prints a valid tag");
    let age = chrono::Utc::now() - tag.timestamp().to_datetime();
    assert!(age.num_seconds().abs() < 120, "the tag's time is now: {tag}");
}

#[test]
fn new_rejects_a_bad_api_version_with_exit_2() {
    let out = run(&["tag", "new", "--api-version", "1.01", "--stage", "demo"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: invalid api-version \"1.01\": minor version \"01\" at position 2 has a leading zero\n"
    );
}

#[test]
fn new_rejects_an_unknown_stage_as_a_usage_error() {
    let out = run(&["tag", "new", "--api-version", "1.1", "--stage", "prod"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid stage \"prod\""), "{}", stderr(&out));
}

#[test]
fn sort_groups_by_stage_and_orders_oldest_first() {
    let input = "1.1.0-production-201108-195630\n1.0.9-demo-211231-000000\n1.1-production-201108-195629\n\
                 1.0.10-production-190101-000000\n1.1.0-demo-201108-195630\n";
    let out = run(&["tag", "sort", "--file", "-"], input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "1.0.10-production-190101-000000\n1.1-production-201108-195629\n1.1.0-production-201108-195630\n\
         1.0.9-demo-211231-000000\n1.1.0-demo-201108-195630\n"
    );
}

#[test]
fn latest_applies_the_update_rule() {
    let input = "1.1.0-production-201108-195630\n2.0.0-production-210101-000000\n1.2.0-production-200101-000000\n\
                 1.9.0-demo-250101-000000\nlatest\n";
    let out = run(
        &[
            "tag",
            "latest",
            "--stage",
            "production",
            "--api-version",
            "^1.1",
            "--file",
            "-",
        ],
        input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1.2.0-production-200101-000000\n");

    let out = run(
        &[
            "tag",
            "latest",
            "--stage",
            "production",
            "--api-version",
            "^1.1",
            "--after",
            "1.2.0-production-200101-000000",
            "--file",
            "-",
        ],
        input,
    );
    assert_eq!(out.status.code(), Some(1), "nothing newer than the newest");
    assert_eq!(stdout(&out), "");
}

#[test]
fn normalize_prints_canonical_forms() {
    let out = run(
        &[
            "tag",
            "normalize",
            "1.1-demo-201108-195630",
            "2.0.1-staging-240229-000000",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "1.1.0-demo-201108-195630\n2.0.1-staging-240229-000000\n");
}

#[test]
fn reference_parse_normalizes_docker_hub_names() {
    let out = run(
        &[
            "reference",
            "parse",
            "--format",
            "json",
            "cwl-wes:1.1-demo-201108-195630",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["repository"], "docker.io/library/cwl-wes");
    assert_eq!(v["tag"], "1.1-demo-201108-195630");
    assert_eq!(v["tagcastTag"], true);

    assert_eq!(v["registry"], "docker.io");

    let out = run(&["reference", "parse", "elixircloud/cwl-wes"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("registry    docker.io (Docker Hub: the first component is no host"),
        "{}",
        stdout(&out)
    );
    assert_eq!(stderr(&out), "");

    let out = run(&["reference", "parse", "Elixircloud/cwl-wes"], "");
    assert_eq!(out.status.code(), Some(0), "an upper-case first component is a host");
    assert_eq!(
        stdout(&out),
        "registry    Elixircloud (the first component has an upper-case letter)\n\
         repository  Elixircloud/cwl-wes\nnormalized  Elixircloud/cwl-wes\n"
    );
    assert_eq!(
        stderr(&out),
        "warning: \"Elixircloud\" is taken as the registry host because it has an upper-case letter (REF-6); \
         a Docker Hub namespace is lower case: did you mean `elixircloud/cwl-wes`?\n"
    );
    let out = run(&["reference", "parse", "--format", "json", "Elixircloud/cwl-wes"], "");
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["registry"], "Elixircloud");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
    let out = run(&["reference", "parse", "elixircloud/CWL-wes"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("path component \"CWL-wes\" at position 12"),
        "{}",
        stderr(&out)
    );
}

/// The checked-in `schemas/` equal what `tagcast schema export` writes;
/// `TAGCAST_BLESS=1 cargo test` rewrites them.
#[test]
fn schemas_do_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let out = run(&["schema", "export", "--out", out_dir], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut drifted = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let generated = std::fs::read_to_string(entry.path()).unwrap();
        let checked_in = path("schemas").join(entry.file_name());
        if bless() {
            std::fs::write(&checked_in, &generated).unwrap();
        } else if std::fs::read_to_string(&checked_in).ok().as_deref() != Some(generated.as_str()) {
            drifted.push(checked_in.display().to_string());
        }
    }
    assert!(
        drifted.is_empty(),
        "generated schemas differ from the checked-in ones (run `TAGCAST_BLESS=1 cargo test` or \
         `cargo run -- schema export`): {drifted:?}"
    );
}

fn vector_cases(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path("conformance/vectors").join(name)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["cases"].as_array().unwrap().clone())
        .collect()
}

/// Every tag vector against the three readers of the grammar at once: the
/// parser (`Tag::parse`), the JSON Schema (`schemas/tag.schema.json`, as
/// checked in) and the CLI (`tagcast tag check --format json`: validity
/// and, for valid tags, the parse the vector expects). Every failure is
/// listed. (A NUL byte cannot be a command-line argument; those cases go
/// through standard input.)
#[test]
fn tag_vectors_hold_for_parser_schema_and_cli() {
    let cases = vector_cases("tags.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path("schemas/tag.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("tag.schema.json compiles");
    let (args, piped): (Vec<&Value>, Vec<&Value>) =
        cases.iter().partition(|c| !c["input"].as_str().unwrap().contains('\0'));
    let mut command = vec!["tag", "check", "--format", "json", "--"];
    command.extend(args.iter().map(|c| c["input"].as_str().unwrap()));
    let out = run(&command, "");
    assert_eq!(out.status.code(), Some(1), "some vectors are invalid");
    let mut records = json_lines(&stdout(&out));
    for case in &piped {
        let out = run(
            &["tag", "check", "--format", "json", "--file", "-"],
            case["input"].as_str().unwrap(),
        );
        records.extend(json_lines(&stdout(&out)));
    }
    let mut failures = Vec::new();
    for (case, record) in args.iter().chain(&piped).zip(&records) {
        let input = &case["input"];
        let valid = case["valid"].as_bool().unwrap();
        if tagcast_spec::Tag::parse(input.as_str().unwrap()).is_ok() != valid {
            failures.push(format!("{input}: the parser disagrees with the vector"));
        }
        if validator.is_valid(input) != valid {
            failures.push(format!("{input}: the schema disagrees with the vector"));
        }
        if &record["tag"] != input || record["valid"] != case["valid"] {
            failures.push(format!("{input}: CLI says {record}"));
            continue;
        }
        if case["valid"] == true {
            for field in ["apiVersion", "stage", "timestamp", "canonical", "semver"] {
                if record[field] != case["expected"][field] {
                    failures.push(format!(
                        "{input}: {field} is {}, expected {}",
                        record[field], case["expected"][field]
                    ));
                }
            }
        } else if record["errors"].as_array().is_none_or(|e| e.len() != 1) {
            failures.push(format!("{input}: an invalid tag has one error message: {record}"));
        } else if record["errors"][0]["requirement"] != case["requirement"] {
            failures.push(format!(
                "{input}: the error names {}, expected {}",
                record["errors"][0]["requirement"], case["requirement"]
            ));
        }
    }
    assert_eq!(records.len(), cases.len(), "one record per input");
    assert!(
        failures.is_empty(),
        "{} vector failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every reference vector through `tagcast reference parse --format json`.
#[test]
fn reference_vectors_hold_for_the_cli() {
    let mut failures = Vec::new();
    for case in vector_cases("references.json") {
        let input = case["input"].as_str().unwrap();
        let out = run(&["reference", "parse", "--format", "json", "--", input], "");
        let record: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let valid = case["valid"].as_bool().unwrap();
        let code_ok = out.status.code() == Some(if valid { 0 } else { 1 });
        let fields_ok = !valid
            || (record["repository"] == case["expected"]["repository"]
                && record["tag"] == case["expected"]["tag"]
                && record["digest"] == case["expected"]["digest"]);
        if !code_ok || record["valid"] != valid || !fields_ok {
            failures.push(format!("{input:?}: exit {:?}, {record}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
