//! Every example in every `--help` page: never wrapped inside a command on
//! an 80-column terminal, and each one run against the built binary.
//!
//! The pages are found by following the `Commands:` lists from `tagcast
//! --help`, so a new subcommand's examples are covered without listing it.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{Deployer, stderr, stdout, tagcast};

/// `tagcast PATH… --help` on a terminal of `columns` columns (clap reads
/// `COLUMNS` when standard output is not a terminal).
fn help(path: &[String], columns: usize) -> String {
    let out = tagcast()
        .args(path)
        .arg("--help")
        .env("COLUMNS", columns.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{path:?} --help: {}", stderr(&out));
    stdout(&out)
}

/// Every help page: the path of subcommands leading to it.
fn pages() -> Vec<Vec<String>> {
    let mut pages = vec![Vec::new()];
    let mut next = 0;
    while next < pages.len() {
        let path = pages[next].clone();
        next += 1;
        let text = help(&path, 400);
        let commands = text
            .lines()
            .skip_while(|line| *line != "Commands:")
            .skip(1)
            .take_while(|line| line.starts_with("  "));
        for line in commands {
            let name = line.split_whitespace().next().unwrap();
            if name != "help" {
                pages.push([path.clone(), vec![name.to_owned()]].concat());
            }
        }
    }
    pages
}

/// The lines of the `Example:`/`Examples:` block, as rendered: indented
/// lines and blank lines up to the first line that is neither.
fn example_block(help: &str) -> Vec<&str> {
    help.lines()
        .skip_while(|line| !matches!(*line, "Example:" | "Examples:"))
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with("  "))
        .collect()
}

/// The commands of an example block: comment lines dropped, `\`
/// continuations joined.
fn commands(block: &[&str]) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "a continuation ends the block: {current}");
    commands
}

/// Clap wraps `after_help` at the terminal's width; an example line that
/// is too long is broken in the middle of a command, which then does not
/// run when pasted. At 80 columns the blocks must be as at 400.
#[test]
fn help_examples_are_not_wrapped_at_80_columns() {
    let mut failures = Vec::new();
    let mut seen = 0;
    for path in pages() {
        let (narrow, wide) = (help(&path, 80), help(&path, 400));
        let (narrow, wide) = (example_block(&narrow), example_block(&wide));
        seen += wide.len();
        if narrow != wide {
            failures.push(format!(
                "tagcast {} --help wraps an example at 80 columns:\n{}",
                path.join(" "),
                narrow.join("\n")
            ));
        }
        for line in wide.iter().filter(|line| line.len() > 80) {
            failures.push(format!("tagcast {}: {} columns: {line}", path.join(" "), line.len()));
        }
    }
    assert!(seen > 40, "found only {seen} example lines");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Examples that need a peer this test cannot provide: they are only
/// checked to be accepted by the argument parser (`… --help` exits 0), and
/// each says why it is not run.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "tagcast broker --",
        "a long-running server, some with PostgreSQL or files in /etc",
    ),
    ("TAGCAST_ADMIN_TOKEN=", "a server with PostgreSQL at db"),
    ("HUB_TOKEN=", "a long-running server"),
    ("tagcast deployer --", "a long-running server"),
    ("TAGCAST_SECRET=", "a server in a Kubernetes pod"),
    ("tagcast deployer hold --state /var/lib", "a system path"),
    ("tagcast deployer status --state /var/lib", "a system path"),
    ("tagcast deployer release --state /var/lib", "a system path"),
    ("tagcast conformance cd", "a live CD endpoint at a placeholder host"),
    ("tagcast conformance broker", "a live broker"),
    ("tagcast broker explain", "a live broker (tests/e2e/broker.rs runs it)"),
    (
        "tagcast conformance registry",
        "a live registry that sends notifications",
    ),
];

/// Examples that end with another exit code than 0 on purpose.
const EXIT: &[(&str, i32)] = &[
    // An example of an invalid tag (February 30).
    (
        "tagcast tag check --format json 1.1.0-production-201108-195630 1.1-demo-200230-000000",
        1,
    ),
    // The state has no failed event to retry.
    ("tagcast deployer retry --state deployer.db", 1),
];

/// A directory with what the examples read: tag lists, `API_VERSION`, a
/// buildx metadata file, a git repository with a tag, and on `PATH` the
/// built `tagcast` and a `skopeo` that lists tags as `skopeo list-tags`
/// does (`{"Repository": …, "Tags": […]}`).
fn workspace(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tagcast"), bin.join("tagcast")).unwrap();
    let skopeo = bin.join("skopeo");
    std::fs::write(
        &skopeo,
        "#!/bin/sh\necho '{\"Repository\": \"docker.io/elixircloud/cwl-wes\", \"Tags\": \
         [\"1.1.0-production-201108-195630\", \"1.1.0-demo-201108-195630\"]}'\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&skopeo).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&skopeo, permissions).unwrap();
    std::fs::write(
        dir.join("tags.txt"),
        "1.1.0-production-201108-195630\n1.2.0-production-210101-000000\n1.1.0-demo-201108-195630\n",
    )
    .unwrap();
    std::fs::write(dir.join("API_VERSION"), "1.1.0\n").unwrap();
    std::fs::write(
        dir.join("metadata.json"),
        r#"{"image.name": "docker.io/elixircloud/cwl-wes:1.1.0-production-261128-101500",
            "containerimage.digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}"#,
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "first"]);
    git(&["tag", "1.1.0-production-261128-101500"]);
}

#[test]
fn every_help_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    // The deployer's state file, for `deployer hold|status|release|retry`.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let state = dir.path().join("deployer.db");
    let _deployer = Deployer::start(
        &[
            "--secret",
            secret,
            "--state",
            state.to_str().unwrap(),
            "--image",
            "elixircloud/cwl-wes",
            "--stage",
            "demo",
            "--apply",
            "exec",
            "--command",
            "true",
        ],
        Stdio::null(),
    );
    let path = format!(
        "{}:{}",
        dir.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut not_run_used = vec![false; NOT_RUN.len()];
    for page in pages() {
        for command in commands(&example_block(&help(&page, 400))) {
            let not_run = NOT_RUN.iter().position(|(prefix, _)| command.starts_with(prefix));
            if let Some(i) = not_run {
                not_run_used[i] = true;
            }
            let script = match not_run {
                Some(_) => format!("{command} --help"),
                None => command.clone(),
            };
            let out = Command::new("bash")
                .args(["-o", "pipefail", "-c", &script])
                .current_dir(dir.path())
                .env("PATH", &path)
                .env("SECRET", secret)
                .env("WHSEC", secret)
                .env("TOKEN", "example-admin-token")
                .env("HOOK_TOKEN", "0123456789abcdef0123456789abcdef")
                .env_remove("TAGCAST_SECRET")
                .stdin(std::fs::File::open(dir.path().join("tags.txt")).unwrap())
                .output()
                .unwrap();
            let want = match not_run {
                Some(_) => 0,
                None => EXIT
                    .iter()
                    .find(|(prefix, _)| command.starts_with(prefix))
                    .map_or(0, |(_, code)| *code),
            };
            if not_run.is_none() {
                ran += 1;
            }
            if out.status.code() != Some(want) || (not_run.is_some() && !stdout(&out).contains("Usage: tagcast")) {
                failures.push(format!(
                    "{script}\n  exit {:?}, expected {want}\n  stdout: {}\n  stderr: {}",
                    out.status.code(),
                    stdout(&out).lines().take(5).collect::<Vec<_>>().join("\n          "),
                    stderr(&out).trim_end()
                ));
            }
        }
    }
    let stale: Vec<_> = NOT_RUN.iter().zip(not_run_used).filter(|(_, used)| !used).collect();
    assert!(stale.is_empty(), "NOT_RUN entries that match no example: {stale:?}");
    assert!(ran >= 25, "ran only {ran} examples");
    assert!(
        failures.is_empty(),
        "{} examples failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
