//! The gitops mode against real git repositories (ignored: needs git).

use std::path::PathBuf;
use std::process::Command;

use crate::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn repo(dir: &Path) {
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    git(dir, &["config", "user.name", "Test"]);
    git(dir, &["config", "user.email", "test@example.org"]);
    std::fs::write(
        dir.join("deployment.yaml"),
        format!("spec:\n  containers:\n    - name: wes\n      image: elixircloud/cwl-wes:{V1}  # pinned by tagcast\n"),
    )
    .unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "--quiet", "-m", "initial"]);
}

/// A repository at `<dir>/work`, so that `dir` has room for files outside it.
fn work_tree(dir: &Path) -> PathBuf {
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    repo(&work);
    work
}

fn mode(dir: &Path) -> Applier {
    Applier::Gitops(Gitops {
        repo: dir.to_owned(),
        path: "deployment.yaml".into(),
        branch: None,
        remote: None,
        author: "tagcast-deployer <tagcast@localhost>".into(),
        timeout: Duration::from_secs(20),
    })
}

#[tokio::test]
#[ignore = "needs git"]
async fn commits_once_and_pushes_to_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = repo_with_origin(dir.path());

    let state = state_with(mode(&work)).await;
    send(&state, callback("evt_2", V2)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Applied, "{}", history[0].reason);

    let message = git(&bare, &["log", "-1", "--format=%B", "main"]);
    assert!(
        message.starts_with(&format!("tagcast: {IMAGE} {V1} -> {V2}")),
        "{message}"
    );
    assert!(message.contains("Event: evt_2"), "{message}");
    let manifest = git(&bare, &["show", "main:deployment.yaml"]);
    assert!(
        manifest.contains(&format!(
            "image: elixircloud/cwl-wes:{V2}@{}  # pinned by tagcast",
            digest(V2.len() as u8)
        )),
        "{manifest}"
    );
    assert_eq!(git(&work, &["rev-list", "--count", "HEAD"]).trim(), "2");
}

#[tokio::test]
#[ignore = "needs git"]
async fn dirty_repository_is_an_error_not_an_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    std::fs::write(dir.path().join("deployment.yaml"), "hand edit\n").unwrap();
    let state = state_with(mode(dir.path())).await;
    send(&state, callback("evt_1", V2)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(
        history[0].reason.contains("work tree is not clean"),
        "{}",
        history[0].reason
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("deployment.yaml")).unwrap(),
        "hand edit\n"
    );
    assert_eq!(git(dir.path(), &["rev-list", "--count", "HEAD"]).trim(), "1");
}

/// What a deployer SIGKILLed between writing the manifest and committing
/// it leaves: the marker naming the text it wrote, that text staged, and
/// the write's temporary sibling of another attempt.
fn interrupted(dir: &Path, text: &str, marked: &str) {
    use sha2::Digest as _;
    std::fs::write(dir.join("deployment.yaml"), text).unwrap();
    git(dir, &["add", "deployment.yaml"]);
    std::fs::write(dir.join(".tagcast-Xy12ab.tmp"), "half a manif").unwrap();
    std::fs::write(
        dir.join(".git/tagcast-apply"),
        format!("{:x}", sha2::Sha256::digest(marked.as_bytes())),
    )
    .unwrap();
}

#[tokio::test]
#[ignore = "needs git"]
async fn an_apply_interrupted_before_its_commit_is_undone_and_done_again() {
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let written = format!("spec:\n  containers:\n    - name: wes\n      image: elixircloud/cwl-wes:{V2}\n");
    interrupted(dir.path(), &written, &written);
    let state = state_with(mode(dir.path())).await;
    send(&state, callback("evt_3", V3)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Applied, "{}", history[0].reason);
    assert_eq!(git(dir.path(), &["rev-list", "--count", "HEAD"]).trim(), "2");
    let message = git(dir.path(), &["log", "-1", "--format=%s"]);
    assert!(
        message.starts_with(&format!("tagcast: {IMAGE} {V1} -> {V3}")),
        "{message}"
    );
    assert_eq!(
        git(dir.path(), &["status", "--porcelain", "-uall"]),
        "",
        "clean, the temporary file gone"
    );
    assert!(!dir.path().join(".git/tagcast-apply").exists(), "the marker is removed");
}

#[tokio::test]
#[ignore = "needs git"]
async fn a_change_the_marker_does_not_name_is_not_undone() {
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    // The operator edited the manifest after the interrupted apply.
    interrupted(dir.path(), "hand edit\n", "what the deployer wrote\n");
    let state = state_with(mode(dir.path())).await;
    send(&state, callback("evt_3", V3)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(
        history[0].reason.contains("work tree is not clean"),
        "{}",
        history[0].reason
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("deployment.yaml")).unwrap(),
        "hand edit\n"
    );
    assert!(dir.path().join(".tagcast-Xy12ab.tmp").exists(), "nothing removed");
    assert_eq!(git(dir.path(), &["rev-list", "--count", "HEAD"]).trim(), "1");
}

fn mode_at(dir: &Path, path: &str) -> Applier {
    let Applier::Gitops(mut gitops) = mode(dir) else {
        unreachable!()
    };
    gitops.path = path.into();
    Applier::Gitops(gitops)
}

/// The commits in `dir`, to show that a refused update committed nothing.
fn commits(dir: &Path) -> String {
    git(dir, &["rev-list", "--count", "HEAD"]).trim().to_owned()
}

#[cfg(unix)]
#[tokio::test]
#[ignore = "needs git"]
async fn a_committed_symlink_at_a_temporary_name_cannot_redirect_the_write() {
    // Whoever can push to the branch commits `deployment.tagcast-tmp` (the
    // name the deployer once used for its temporary file) as a symlink to a
    // file outside the repository, such as a git hook or authorized_keys.
    let dir = tempfile::tempdir().unwrap();
    let work = work_tree(dir.path());
    let victim = dir.path().join("authorized_keys");
    std::fs::write(&victim, "ssh-ed25519 AAAA operator\n").unwrap();
    let planted = ["deployment.tagcast-tmp", ".tagcast-tmp", "deployment.yaml.tmp"];
    for name in planted {
        std::os::unix::fs::symlink(&victim, work.join(name)).unwrap();
    }
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "plant symlinks"]);

    let state = state_with(mode(&work)).await;
    send(&state, callback("evt_2", V2)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Applied, "{}", history[0].reason);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "ssh-ed25519 AAAA operator\n");
    assert!(
        std::fs::read_to_string(work.join("deployment.yaml"))
            .unwrap()
            .contains(V2),
        "the manifest itself is still updated"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tagcast-") && !planted.contains(&name.as_str()))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

#[cfg(unix)]
#[tokio::test]
#[ignore = "needs git"]
async fn a_manifest_that_is_a_symlink_out_of_the_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = work_tree(dir.path());
    let outside = dir.path().join("outside.yaml");
    let secret_text = format!("image: elixircloud/cwl-wes:{V1}\n# a file the deployer must not read or write\n");
    std::fs::write(&outside, &secret_text).unwrap();
    std::fs::remove_file(work.join("deployment.yaml")).unwrap();
    std::os::unix::fs::symlink(&outside, work.join("deployment.yaml")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "--quiet", "-m", "manifest becomes a symlink"]);

    let state = state_with(mode(&work)).await;
    send(&state, callback("evt_2", V2)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(history[0].reason.contains("symlink"), "{}", history[0].reason);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), secret_text);
    assert!(
        std::fs::symlink_metadata(work.join("deployment.yaml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(commits(&work), "2", "nothing committed");
}

#[cfg(unix)]
#[tokio::test]
#[ignore = "needs git"]
async fn a_parent_directory_that_is_a_symlink_out_of_the_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = work_tree(dir.path());
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let original = format!("image: elixircloud/cwl-wes:{V1}\n");
    std::fs::write(elsewhere.join("deployment.yaml"), &original).unwrap();
    std::os::unix::fs::symlink(&elsewhere, work.join("k8s")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "--quiet", "-m", "k8s becomes a symlink"]);

    let state = state_with(mode_at(&work, "k8s/deployment.yaml")).await;
    send(&state, callback("evt_2", V2)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(history[0].reason.contains("symlink"), "{}", history[0].reason);
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("deployment.yaml")).unwrap(),
        original
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        1,
        "no temporary file outside"
    );
    assert_eq!(commits(&work), "2", "nothing committed");
}

#[tokio::test]
#[ignore = "needs git"]
async fn a_manifest_path_that_climbs_out_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = work_tree(dir.path());
    let outside = dir.path().join("deployment.yaml");
    let original = format!("image: elixircloud/cwl-wes:{V1}\n");
    std::fs::write(&outside, &original).unwrap();

    let state = state_with(mode_at(&work, "../deployment.yaml")).await;
    send(&state, callback("evt_2", V2)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(history[0].reason.contains(".."), "{}", history[0].reason);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), original);
    assert_eq!(commits(&work), "1", "nothing committed");
}

/// A work tree with `origin`, a bare clone of it.
fn repo_with_origin(dir: &Path) -> (PathBuf, PathBuf) {
    let work = work_tree(dir);
    let bare = dir.join("remote.git");
    git(
        dir,
        &[
            "clone",
            "--quiet",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    (work, bare)
}

fn with_remote(dir: &Path, remote: &str) -> Applier {
    match mode(dir) {
        Applier::Gitops(mut gitops) => {
            gitops.remote = Some(remote.to_owned());
            Applier::Gitops(gitops)
        }
        _ => unreachable!(),
    }
}

/// Issue 14, item 3: `--remote none` commits locally, even when the
/// repository has a remote; nothing is fetched or pushed.
#[tokio::test]
#[ignore = "needs git"]
async fn remote_none_commits_locally_and_pushes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = repo_with_origin(dir.path());
    let remote_before = git(&bare, &["rev-parse", "main"]);
    let applier = with_remote(&work, "none");
    applier.check().await.unwrap();
    let state = state_with(applier).await;
    send(&state, callback("evt_2", V2)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Applied, "{}", history[0].reason);
    assert!(history[0].reason.ends_with(" on main"), "{}", history[0].reason);
    assert_eq!(git(&bare, &["rev-parse", "main"]), remote_before, "nothing pushed");
    assert!(git(&work, &["log", "-1", "--format=%B"]).contains("Event: evt_2"));
}

/// Issue 14, item 3: a `--remote` the repository does not have is an
/// error at start, naming the remotes it has; nothing is committed.
#[tokio::test]
#[ignore = "needs git"]
async fn a_remote_the_repository_lacks_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (work, _bare) = repo_with_origin(dir.path());
    let head = git(&work, &["rev-parse", "HEAD"]);
    let err = with_remote(&work, "upstream").check().await.unwrap_err().to_string();
    assert!(
        err.contains("--remote upstream is not a remote of the repository (its remotes: origin)")
            && err.contains("--remote none"),
        "{err}"
    );
    let err = tagcast_deployer::serve_until(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        {
            let mut config = Config::new(
                vec![secret()],
                vec![Repository::parse(IMAGE).unwrap()],
                policy(),
                with_remote(&work, "upstream"),
            );
            config.state = None;
            config
        },
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("--remote upstream"),
        "the server does not start: {err}"
    );
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head, "nothing committed");
}

/// Issue 14, item 3: git's own output and "finished" lines are debug
/// chatter; at the default level the log says what was applied, not how
/// git got there.
#[tokio::test]
#[ignore = "needs git"]
async fn git_chatter_is_logged_at_debug_only() {
    // A capture is a thread-local subscriber; tracing caches each call
    // site's interest process-wide, and the other tests of this binary
    // register and drop subscribers in parallel, so a capture now and then
    // misses events (see `attacks::logs_never_carry_a_secret_token_or_signature`).
    // Every INFO capture must be free of git's output; the DEBUG one is
    // taken again, up to five times, until it is complete.
    let mut attempt = 0;
    let debug = loop {
        attempt += 1;
        let (info, debug) = apply_twice_capturing().await;
        assert!(!info.contains("program=\"git"), "git chatter at INFO:\n{info}");
        let complete = info.contains("applied: committed") && debug.contains("applied: committed");
        if (complete && debug.contains("program=\"git")) || attempt == 5 {
            assert!(info.contains("applied: committed"), "{info}");
            break debug;
        }
    };
    assert!(
        debug.contains("program=\"git"),
        "git's output missing at DEBUG:\n{debug}"
    );
}

/// Two updates through gitops: the first with the log captured at INFO,
/// the second at DEBUG.
async fn apply_twice_capturing() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (work, _bare) = repo_with_origin(dir.path());
    let state = state_with(mode(&work)).await;
    let (info, guard) = capture_logs(tracing::Level::INFO);
    send(&state, callback("evt_2", V2)).await;
    run_pending(&state).await.unwrap();
    drop(guard);
    let (debug, guard) = capture_logs(tracing::Level::DEBUG);
    send(&state, callback("evt_3", V3)).await;
    run_pending(&state).await.unwrap();
    drop(guard);
    (info.text(), debug.text())
}
