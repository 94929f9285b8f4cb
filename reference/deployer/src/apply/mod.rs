//! The ways to apply an upgrade, one module each (DESIGN.md §8): run a
//! command, `kubectl set image`, a commit to a GitOps repository, or a
//! strategic-merge PATCH through the Kubernetes API.

pub mod exec;
pub mod gitops;
pub mod kubectl;
pub mod kubernetes;
pub mod manifest;

use std::time::Duration;

use tagcast_spec::{ApiVersion, Digest, Repository, Stage, Tag};

/// A verified, valid update: what the apply modes need of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The event id, equal to the `webhook-id`.
    pub event_id: String,
    /// The normalized repository.
    pub image: Repository,
    /// The tag, parsed.
    pub tag: Tag,
    /// The tag as pushed (short form kept).
    pub tag_text: String,
    /// The manifest (or index) digest the tag pointed to.
    pub digest: Digest,
    /// `image:tag@digest`.
    pub reference: String,
    /// The tag's stage.
    pub stage: Stage,
    /// The tag's api-version, canonical.
    pub api_version: ApiVersion,
    /// What was deployed before: the deployer's own applied tag, else the
    /// broker's `previousTag`.
    pub previous_tag: Option<String>,
}

/// An apply mode, configured.
#[derive(Debug, Clone)]
pub enum Applier {
    /// Run a command with the update in its environment.
    Exec(exec::Exec),
    /// `kubectl set image` + `kubectl rollout status`.
    Kubectl(kubectl::Kubectl),
    /// Rewrite a manifest in a git repository and commit.
    Gitops(gitops::Gitops),
    /// PATCH a workload through the Kubernetes API.
    Kubernetes(kubernetes::Kubernetes),
}

impl Applier {
    /// Apply the update; the result says what was done, in words.
    ///
    /// # Errors
    ///
    /// [`ApplyError`] when the upgrade could not be applied; the history
    /// records its message.
    pub async fn apply(&self, update: &Update) -> Result<String, ApplyError> {
        match self {
            Self::Exec(mode) => mode.apply(update).await,
            Self::Kubectl(mode) => mode.apply(update).await,
            Self::Gitops(mode) => mode.apply(update).await,
            Self::Kubernetes(mode) => mode.apply(update).await,
        }
    }

    /// Checks at start what can be checked without applying anything
    /// (the GitOps repository and its remote).
    ///
    /// # Errors
    ///
    /// [`ApplyError`] naming what is wrong.
    pub async fn check(&self) -> Result<(), ApplyError> {
        if let Self::Gitops(mode) = self {
            let target = mode.check().await?;
            tracing::info!(repo = %mode.repo.display(), "gitops: {target}");
        }
        Ok(())
    }

    /// The mode and its target in words, for the log at start (no
    /// command line, which might carry credentials).
    pub fn describe(&self) -> String {
        match self {
            Self::Exec(_) => "exec (sh -c --command)".to_owned(),
            Self::Kubectl(mode) => format!(
                "kubectl {} {}/{}",
                mode.kind,
                mode.namespace.as_deref().unwrap_or("(context namespace)"),
                mode.name
            ),
            Self::Gitops(mode) => format!(
                "gitops {} in {} (branch {}, remote {})",
                mode.path.display(),
                mode.repo.display(),
                mode.branch.as_deref().unwrap_or("checked out"),
                mode.remote.as_deref().unwrap_or("origin or the only one")
            ),
            Self::Kubernetes(mode) => format!(
                "kubernetes {} {}/{} at {}",
                mode.kind, mode.namespace, mode.name, mode.access.server
            ),
        }
    }

    /// The mode's name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Exec(_) => "exec",
            Self::Kubectl(_) => "kubectl",
            Self::Gitops(_) => "gitops",
            Self::Kubernetes(_) => "kubernetes",
        }
    }
}

/// Why an upgrade could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A program could not be started.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// What was run.
        program: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A program ran longer than allowed and was killed.
    #[error("{program} did not finish within {after:?}")]
    Timeout {
        /// What was run.
        program: String,
        /// The timeout.
        after: Duration,
    },
    /// A program exited unsuccessfully.
    #[error("{program} failed ({status}): {output}")]
    Failed {
        /// What was run.
        program: String,
        /// The exit status, in words.
        status: String,
        /// The end of its error output.
        output: String,
    },
    /// The GitOps repository is not in a state to commit to.
    #[error("repository {repo}: {reason}")]
    Repository {
        /// The repository directory.
        repo: String,
        /// What is wrong.
        reason: String,
    },
    /// The manifest could not be read, rewritten or written.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The Kubernetes API refused or failed.
    #[error("kubernetes API: {0}")]
    Kubernetes(String),
}
