//! The CI examples of `reference/ci/`: every configuration parses and calls
//! the one script, and `tag.sh` does for every branch what the README's
//! table says, run with the binary under test and a stub `docker`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use chrono::SecondsFormat;
use serde_norway::Value as Yaml;
use tagcast_spec::Tag;

use crate::support::{path, stderr, stdout};

const IMAGE: &str = "registry.example/ga4gh/wes";
const CREATED: &str = "org.opencontainers.image.created";
const VERSION: &str = "org.opencontainers.image.version";

/// A `docker` that records each call (one argument per line, then
/// `--END--`) and, like `buildx build --metadata-file`, writes the image
/// names and manifest annotations it was given.
const STUB_DOCKER: &str = r#"#!/bin/sh
for arg in "$@"; do printf '%s\n' "$arg"; done >>"$DOCKER_LOG"
echo "--END--" >>"$DOCKER_LOG"
if [ -n "${DOCKER_STUB_FAIL:-}" ]; then exit 1; fi
meta= names= annotations=
while [ $# -gt 0 ]; do
    case "$1" in
        --metadata-file) meta=$2; shift ;;
        --tag|-t) names=${names:+$names,}$2; shift ;;
        --annotation)
            a=$2
            case "${a%%=*}" in *:*) a=${a#*:} ;; esac
            annotations="${annotations:+$annotations,}\"${a%%=*}\":\"${a#*=}\""
            shift ;;
    esac
    shift
done
if [ -n "$meta" ]; then
    printf '{"image.name":"%s","containerimage.descriptor":{"annotations":{%s}}}\n' "$names" "$annotations" >"$meta"
fi
"#;

/// A repository checkout with an `API_VERSION` file and a `PATH` holding the
/// stub `docker` and the `tagcast` under test.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(api_version: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        fs::write(bin.join("docker"), STUB_DOCKER).unwrap();
        fs::set_permissions(bin.join("docker"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tagcast"), bin.join("tagcast")).unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        fs::write(dir.path().join("work/API_VERSION"), api_version).unwrap();
        Sandbox { dir }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn run(&self, branch: &str, env: &[(&str, &str)]) -> Output {
        let path_var = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("sh");
        command
            .arg(path("reference/ci/tag.sh"))
            .current_dir(self.work())
            .env("PATH", path_var)
            .env("BRANCH", branch)
            .env("IMAGE", IMAGE)
            .env("DOCKER_LOG", self.dir.path().join("docker.log"));
        for var in [
            "SOURCE_DATE_EPOCH",
            "SERVICE_VERSION",
            "GITHUB_OUTPUT",
            "API_VERSION_FILE",
            "CONTEXT",
        ] {
            command.env_remove(var);
        }
        command.envs(env.iter().copied());
        command.output().expect("sh runs tag.sh")
    }

    /// Each recorded `docker` call as its arguments.
    fn docker_calls(&self) -> Vec<Vec<String>> {
        let log = fs::read_to_string(self.dir.path().join("docker.log")).unwrap_or_default();
        let mut calls = Vec::new();
        let mut call = Vec::new();
        for line in log.lines() {
            if line == "--END--" {
                calls.push(std::mem::take(&mut call));
            } else {
                call.push(line.to_owned());
            }
        }
        calls
    }

    fn env_file(&self) -> Option<BTreeMap<String, String>> {
        let text = fs::read_to_string(self.work().join("tagcast.env")).ok()?;
        Some(
            text.lines()
                .map(|line| {
                    let (key, value) = line.split_once('=').expect("KEY=value");
                    (key.to_owned(), value.to_owned())
                })
                .collect(),
        )
    }
}

/// The values that follow every occurrence of `flag` in a call.
fn values<'a>(call: &'a [String], flag: &str) -> Vec<&'a str> {
    call.windows(2)
        .filter(|pair| pair[0] == flag)
        .map(|pair| pair[1].as_str())
        .collect()
}

/// The branch table of `reference/ci/README.md`: each named branch with its
/// stage, and whether a row says what happens to any other branch.
fn readme_table() -> (Vec<(String, String)>, bool) {
    let text = fs::read_to_string(path("reference/ci/README.md")).expect("README");
    let mut rows = text
        .lines()
        .skip_while(|line| !line.starts_with("| Branch | Stage |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'));
    let mut named = Vec::new();
    let mut others = false;
    for row in rows.by_ref() {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let unquote = |cell: &str| {
            cell.strip_prefix('`')
                .and_then(|c| c.strip_suffix('`'))
                .map(str::to_owned)
        };
        match (unquote(cells[0]), unquote(cells[1])) {
            (Some(branch), Some(stage)) => named.push((branch, stage)),
            (None, None) if cells[0] == "any other" && cells[1] == "none" => others = true,
            _ => panic!("unexpected row in the README's branch table: {row}"),
        }
    }
    (named, others)
}

fn tag_time(tag: &Tag) -> String {
    tag.timestamp().to_datetime().to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[test]
fn every_example_parses_and_calls_tag_sh_with_its_branch() {
    let examples = [
        ("github-actions.yml", "${{ github.ref_name }}"),
        ("gitlab-ci.yml", "$CI_COMMIT_BRANCH"),
        ("travis.yml", "$TRAVIS_BRANCH"),
    ];
    for (file, branch) in examples {
        let text = fs::read_to_string(path(&format!("reference/ci/{file}"))).expect("example");
        let yaml: Yaml = serde_norway::from_str(&text).unwrap_or_else(|err| panic!("{file} is YAML: {err}"));
        let mut strings = Vec::new();
        collect_strings(&yaml, &mut strings);
        assert!(
            strings.iter().any(|s| s.contains("reference/ci/tag.sh")),
            "{file} calls reference/ci/tag.sh"
        );
        assert!(
            strings.iter().any(|s| s.contains(branch)),
            "{file} hands the branch ({branch}) to tag.sh"
        );
        assert!(
            strings
                .iter()
                .any(|s| s.contains("cargo install --locked --path .tagcast")),
            "{file} installs tagcast"
        );
        assert!(
            !strings.iter().any(|s| s.contains("production")),
            "{file} keeps no branch-to-stage mapping of its own"
        );
    }
    let script = fs::read_to_string(path("reference/ci/tag.sh")).unwrap();
    assert!(script.contains("tagcast conformance tags --metadata-file \"$METADATA_FILE\""));
    let mode = fs::metadata(path("reference/ci/tag.sh")).unwrap().permissions().mode();
    assert_ne!(mode & 0o111, 0, "the examples run tag.sh directly: it is executable");
}

fn collect_strings(value: &Yaml, out: &mut Vec<String>) {
    match value {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Sequence(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Yaml::Mapping(map) => map.iter().for_each(|(k, v)| {
            collect_strings(k, out);
            collect_strings(v, out);
        }),
        Yaml::Tagged(tagged) => collect_strings(&tagged.value, out),
        _ => {}
    }
}

#[test]
fn tag_sh_maps_each_branch_as_the_readme_says_and_pushes_a_conformant_tag() {
    let (named, others) = readme_table();
    assert_eq!(named.len(), 4, "four branches have a stage: {named:?}");
    assert!(others, "the table says what happens to other branches");
    for (branch, stage) in named {
        let sandbox = Sandbox::new("1.1.0\n");
        let out = sandbox.run(&branch, &[]);
        assert_eq!(out.status.code(), Some(0), "{branch}: {}", stderr(&out));
        let printed = stdout(&out);
        let text = printed.trim_end_matches('\n');
        assert_eq!(
            printed,
            format!("{text}\n"),
            "{branch}: only the tag on standard output"
        );
        let tag = Tag::parse(text).unwrap_or_else(|err| panic!("{branch}: {err}"));
        assert_eq!(tag.stage().as_str(), stage, "{branch}");
        assert_eq!(tag.api_version().to_string(), "1.1.0", "{branch}");
        let created = tag_time(&tag);

        let calls = sandbox.docker_calls();
        assert_eq!(calls.len(), 1, "{branch}: one docker call, {calls:?}");
        let call = &calls[0];
        assert_eq!(&call[..2], ["buildx", "build"], "{branch}");
        assert!(call.iter().any(|a| a == "--push"), "{branch}: pushes");
        assert_eq!(values(call, "--tag"), [format!("{IMAGE}:{tag}")], "{branch}");
        assert_eq!(
            values(call, "--label"),
            [format!("{CREATED}={created}"), format!("{VERSION}={tag}")],
            "{branch}: labels"
        );
        assert_eq!(
            values(call, "--annotation"),
            [
                format!("manifest:{CREATED}={created}"),
                format!("manifest:{VERSION}={tag}")
            ],
            "{branch}: annotations"
        );
        assert_eq!(values(call, "--metadata-file"), ["tagcast-metadata.json"], "{branch}");
        assert_eq!(call.last().map(String::as_str), Some("."), "{branch}: the context");

        // The conformance step saw the annotation and agreed with it.
        assert!(
            stderr(&out)
                .lines()
                .any(|line| line.starts_with("PASS") && line.contains(&format!("tags/created/{tag}"))),
            "{branch}: {}",
            stderr(&out)
        );

        let env = sandbox.env_file().expect("tagcast.env is written");
        assert_eq!(env["TAGCAST_STAGE"], stage);
        assert_eq!(env["TAGCAST_TAG"], tag.to_string());
        assert_eq!(env["TAGCAST_IMAGE"], format!("{IMAGE}:{tag}"));
        assert_eq!(env["TAGCAST_CREATED"], created);
    }
    for branch in ["feature/login", "master", "production", "Main", "refs/heads/feature"] {
        let sandbox = Sandbox::new("1.1.0\n");
        let out = sandbox.run(branch, &[]);
        assert_eq!(out.status.code(), Some(0), "{branch}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{branch}: no tag");
        assert!(stderr(&out).contains("nothing is built or pushed"), "{branch}");
        assert!(sandbox.docker_calls().is_empty(), "{branch}: docker is not called");
        assert!(sandbox.env_file().is_none(), "{branch}");
    }
}

#[test]
fn source_date_epoch_fixes_tag_and_created_time() {
    let sandbox = Sandbox::new("1.1\n");
    let out = sandbox.run("refs/heads/demo", &[("SOURCE_DATE_EPOCH", "1604865390")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1.1-demo-201108-195630\n");
    let calls = sandbox.docker_calls();
    assert!(values(&calls[0], "--label").contains(&format!("{CREATED}=2020-11-08T19:56:30Z").as_str()));
}

#[test]
fn an_api_version_outside_the_grammar_stops_before_docker() {
    let sandbox = Sandbox::new("v1.1\n");
    let out = sandbox.run("main", &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("v1.1"), "{}", stderr(&out));
    assert!(sandbox.docker_calls().is_empty());
}

#[test]
fn a_failed_push_fails_the_job() {
    let sandbox = Sandbox::new("1.1.0\n");
    let out = sandbox.run("staging", &[("DOCKER_STUB_FAIL", "1")]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(sandbox.docker_calls().len(), 1);
    assert!(sandbox.env_file().is_none(), "no results for a failed push");
}

/// The conformance step really runs: a version annotation naming another
/// tag is a failure it reports, and the job fails.
#[test]
fn a_non_conformant_result_fails_the_job() {
    let sandbox = Sandbox::new("1.1.0\n");
    let out = sandbox.run("develop", &[("SERVICE_VERSION", "2.0.0-development-200101-000000")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("tags/version"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "no tag is announced");
    assert!(sandbox.env_file().is_none());
}

#[test]
fn github_step_outputs_name_the_tag() {
    let sandbox = Sandbox::new("1.1.0\n");
    let outputs = sandbox.work().join("github-output");
    let outputs_path = outputs.display().to_string();
    let out = sandbox.run(
        "main",
        &[("SOURCE_DATE_EPOCH", "1604865390"), ("GITHUB_OUTPUT", &outputs_path)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&outputs).expect("outputs written"),
        format!(
            "stage=production\ntag=1.1.0-production-201108-195630\n\
             image={IMAGE}:1.1.0-production-201108-195630\ncreated=2020-11-08T19:56:30Z\n"
        )
    );
}
