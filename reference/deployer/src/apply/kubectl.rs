//! `--apply kubectl`: `kubectl set image` pinned to `image:tag@digest`,
//! then `kubectl rollout status`, and `kubectl rollout undo` when the
//! rollout does not complete.

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::process::Command;

use super::{ApplyError, Update};
use crate::command;

/// The workload kinds that `set image` and `rollout` handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment (also OpenShift's).
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
}

impl WorkloadKind {
    /// The lowercase singular, as kubectl writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::StatefulSet => "statefulset",
            Self::DaemonSet => "daemonset",
        }
    }

    /// The resource (plural) in API paths.
    pub fn resource(self) -> &'static str {
        match self {
            Self::Deployment => "deployments",
            Self::StatefulSet => "statefulsets",
            Self::DaemonSet => "daemonsets",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkloadKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Ok(Self::Deployment),
            "statefulset" | "statefulsets" | "sts" => Ok(Self::StatefulSet),
            "daemonset" | "daemonsets" | "ds" => Ok(Self::DaemonSet),
            _ => Err(format!(
                "unknown workload kind {s:?}, expected deployment, statefulset or daemonset"
            )),
        }
    }
}

/// The kubectl mode.
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// The kubectl binary.
    pub program: OsString,
    /// The namespace.
    pub namespace: Option<String>,
    /// The workload's name.
    pub name: String,
    /// Its kind.
    pub kind: WorkloadKind,
    /// The container to update; `*` (every container) when absent.
    pub container: Option<String>,
    /// Extra arguments given to every kubectl call (`--context`,
    /// `--kubeconfig`, or `--local -f FILE -o yaml` for an offline try).
    pub args: Vec<String>,
    /// How long the rollout may take; zero skips `rollout status`.
    pub rollout_timeout: Duration,
    /// How long one kubectl call may take, apart from `rollout status`.
    pub timeout: Duration,
}

impl Kubectl {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(ns) = &self.namespace {
            cmd.arg("--namespace").arg(ns);
        }
        cmd
    }

    fn has_arg(&self, names: &[&str]) -> bool {
        self.args
            .iter()
            .any(|a| names.iter().any(|n| a == n || a.starts_with(&format!("{n}="))))
    }

    fn workload(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// The `set image` arguments (without the binary and namespace).
    pub fn set_image_args(&self, update: &Update) -> Vec<String> {
        let mut args = vec!["set".to_owned(), "image".to_owned()];
        // With -f the objects come from the file, not from TYPE/NAME.
        if !self.has_arg(&["-f", "--filename"]) {
            args.push(self.workload());
        }
        args.extend(self.args.iter().cloned());
        let container = self.container.as_deref().unwrap_or("*");
        args.push(format!("{container}={}", update.reference));
        args
    }

    pub(crate) async fn apply(&self, update: &Update) -> Result<String, ApplyError> {
        let mut set = self.command();
        set.args(self.set_image_args(update));
        let output = command::run_ok(set, "kubectl set image", self.timeout, command::Chatter::Info).await?;
        let local = self.has_arg(&["--local", "--dry-run"]);
        if local || self.rollout_timeout.is_zero() {
            return Ok(format!(
                "kubectl set image {} to {}{}",
                self.workload(),
                update.reference,
                if local { " (local, no rollout)" } else { "" }
            ))
            .inspect(|_| tracing::debug!(output = %output.stdout, "kubectl output"));
        }
        let mut status = self.command();
        status
            .args(["rollout", "status", &self.workload()])
            .args(&self.args)
            .arg(format!("--timeout={}s", self.rollout_timeout.as_secs().max(1)));
        match command::run_ok(
            status,
            "kubectl rollout status",
            self.rollout_timeout + self.timeout,
            command::Chatter::Info,
        )
        .await
        {
            Ok(_) => Ok(format!(
                "kubectl rolled out {} with {}",
                self.workload(),
                update.reference
            )),
            Err(err) => {
                let mut undo = self.command();
                undo.args(["rollout", "undo", &self.workload()]).args(&self.args);
                let undone =
                    match command::run_ok(undo, "kubectl rollout undo", self.timeout, command::Chatter::Info).await {
                        Ok(_) => "rolled back".to_owned(),
                        Err(undo_err) => format!("rollback failed too: {undo_err}"),
                    };
                Err(ApplyError::Failed {
                    program: "kubectl rollout".to_owned(),
                    status: undone,
                    output: err.to_string(),
                })
            }
        }
    }
}
