//! The gitops mode against real git repositories (ignored: needs git).

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
    let work = dir.path().join("work");
    let bare = dir.path().join("remote.git");
    std::fs::create_dir(&work).unwrap();
    repo(&work);
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);

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
