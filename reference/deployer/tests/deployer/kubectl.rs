//! The kubectl mode against a stand-in kubectl.

use std::process::Command;

use tagcast_deployer::apply::kubectl::Kubectl;

use crate::*;

/// A kubectl stand-in logging its arguments; `rollout status` exits
/// with `status`.
fn fake(dir: &Path, status: u8) -> std::path::PathBuf {
    let path = dir.join("kubectl");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *'rollout status'*) exit {status};; esac\nexit 0\n",
            dir.join("calls").display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path
}

fn mode(program: &Path, args: &[&str]) -> Applier {
    Applier::Kubectl(Kubectl {
        program: program.as_os_str().to_owned(),
        namespace: Some("ga4gh".into()),
        name: "cwl-wes".into(),
        kind: WorkloadKind::StatefulSet,
        container: Some("wes".into()),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        rollout_timeout: Duration::from_secs(120),
        timeout: Duration::from_secs(10),
    })
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn set_image_then_rollout_status() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(mode(&fake(dir.path(), 0), &["--context", "prod"])).await;
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    let d = digest(V1.len() as u8);
    assert_eq!(
        calls(dir.path()),
        [
            format!("--namespace ga4gh set image statefulset/cwl-wes --context prod wes={IMAGE}:{V1}@{d}"),
            "--namespace ga4gh rollout status statefulset/cwl-wes --context prod --timeout=120s".to_owned(),
        ]
    );
    assert_eq!(state.store.history(1).await.unwrap()[0].outcome, Outcome::Applied);
}

#[tokio::test]
async fn failed_rollout_is_undone_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(mode(&fake(dir.path(), 1), &[])).await;
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    let calls = calls(dir.path());
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2], "--namespace ga4gh rollout undo statefulset/cwl-wes");
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(
        history[0].reason.starts_with("kubectl rollout failed (rolled back)"),
        "{}",
        history[0].reason
    );
    assert!(state.store.applied(IMAGE).await.unwrap().is_none());
}

#[tokio::test]
async fn with_a_file_the_objects_come_from_it_and_local_skips_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(mode(&fake(dir.path(), 1), &["--local", "-f", "m.yaml", "-o", "yaml"])).await;
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    let d = digest(V1.len() as u8);
    assert_eq!(
        calls(dir.path()),
        [format!(
            "--namespace ga4gh set image --local -f m.yaml -o yaml wes={IMAGE}:{V1}@{d}"
        )]
    );
    assert_eq!(state.store.history(1).await.unwrap()[0].outcome, Outcome::Applied);
}
