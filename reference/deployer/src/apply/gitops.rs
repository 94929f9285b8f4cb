//! `--apply gitops --repo DIR --path FILE [--branch B]`: pin the image in a
//! manifest (or kustomization) of a git repository, commit, and push when
//! the repository has a remote. Uses the `git` command line, so that the
//! operator's git configuration (credentials, SSH keys, signing) applies.

use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::{ApplyError, Update, manifest};
use crate::command;

/// The `--remote` value that means "commit locally, never fetch or push".
pub const LOCAL_ONLY: &str = "none";

/// The GitOps mode.
#[derive(Debug, Clone)]
pub struct Gitops {
    /// The work tree of the repository.
    pub repo: PathBuf,
    /// The manifest, relative to the repository.
    pub path: PathBuf,
    /// The branch to commit to; the checked-out branch when absent.
    pub branch: Option<String>,
    /// The remote to pull from and push to; the first remote (`origin`
    /// preferred) when absent. [`LOCAL_ONLY`] (`--remote none`), or a
    /// repository without remotes: commit locally only.
    pub remote: Option<String>,
    /// The commit author (`Name <email>`) when git has none configured.
    pub author: String,
    /// How long one git call may take.
    pub timeout: Duration,
}

impl Gitops {
    fn git(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.repo)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C");
        cmd
    }

    async fn git_out(&self, args: &[&str]) -> Result<String, ApplyError> {
        let mut cmd = self.git();
        cmd.args(args);
        let what = format!("git {}", args.first().copied().unwrap_or_default());
        // git's progress and hints are chatter at the default level.
        Ok(command::run_ok(cmd, &what, self.timeout, command::Chatter::Debug)
            .await?
            .stdout)
    }

    /// Whether a git call succeeds (for probes such as "is there an upstream").
    async fn git_ok(&self, args: &[&str]) -> Result<bool, ApplyError> {
        let mut cmd = self.git();
        cmd.args(args);
        Ok(command::run(cmd, "git", self.timeout, command::Chatter::Debug)
            .await?
            .status
            .success())
    }

    fn repo_err(&self, reason: impl Into<String>) -> ApplyError {
        ApplyError::Repository {
            repo: self.repo.display().to_string(),
            reason: reason.into(),
        }
    }

    /// Refuses a repository with changes, conflicts or an operation in progress.
    async fn check_clean(&self) -> Result<(), ApplyError> {
        let status = self.git_out(&["status", "--porcelain=v1"]).await?;
        if !status.trim().is_empty() {
            let first: Vec<&str> = status.lines().take(5).collect();
            return Err(self.repo_err(format!(
                "work tree is not clean (uncommitted, untracked or conflicted files: {}); refusing to overwrite",
                first.join(", ")
            )));
        }
        for marker in ["MERGE_HEAD", "REBASE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD"] {
            if self.git_ok(&["rev-parse", "-q", "--verify", marker]).await? {
                return Err(self.repo_err(format!("{marker} exists: finish or abort that operation first")));
            }
        }
        Ok(())
    }

    async fn remote(&self) -> Result<Option<String>, ApplyError> {
        match self.remote.as_deref() {
            Some(LOCAL_ONLY) => return Ok(None),
            Some(remote) => return Ok(Some(remote.to_owned())),
            None => {}
        }
        let remotes = self.git_out(&["remote"]).await?;
        let remotes: Vec<&str> = remotes.lines().map(str::trim).filter(|r| !r.is_empty()).collect();
        Ok(remotes
            .iter()
            .find(|r| **r == "origin")
            .or(remotes.first())
            .map(|r| (*r).to_owned()))
    }

    async fn author_args(&self) -> Result<Vec<String>, ApplyError> {
        let has_name = self.git_ok(&["config", "user.name"]).await?;
        let has_email = self.git_ok(&["config", "user.email"]).await?;
        let (name, email) = match self.author.split_once('<') {
            Some((name, email)) => (name.trim().to_owned(), email.trim_end_matches('>').trim().to_owned()),
            None => (self.author.trim().to_owned(), "tagcast-deployer@localhost".to_owned()),
        };
        let mut args = Vec::new();
        if !has_name {
            args.extend(["-c".to_owned(), format!("user.name={name}")]);
        }
        if !has_email {
            args.extend(["-c".to_owned(), format!("user.email={email}")]);
        }
        Ok(args)
    }

    /// At start: the work tree is a git repository and the named remote
    /// exists, so that a typo in `--remote` is an error now rather than a
    /// failed update later. Returns where updates go, in words.
    pub(crate) async fn check(&self) -> Result<String, ApplyError> {
        if !self.git_ok(&["rev-parse", "--is-inside-work-tree"]).await? {
            return Err(self.repo_err("not a git work tree (--repo)"));
        }
        let remotes = self.git_out(&["remote"]).await?;
        let remotes: Vec<&str> = remotes.lines().map(str::trim).filter(|r| !r.is_empty()).collect();
        if let Some(named) = self.remote.as_deref().filter(|r| *r != LOCAL_ONLY) {
            if !remotes.contains(&named) {
                let known = if remotes.is_empty() {
                    "it has none".to_owned()
                } else {
                    format!("its remotes: {}", remotes.join(", "))
                };
                return Err(self.repo_err(format!(
                    "--remote {named} is not a remote of the repository ({known}); \
                     name one of them, or give --remote {LOCAL_ONLY} to commit locally"
                )));
            }
        }
        Ok(match self.remote().await? {
            Some(remote) => format!("commit and push to {remote}"),
            None => "commit locally (no remote)".to_owned(),
        })
    }

    /// The marker of an apply in progress: `<git dir>/tagcast-apply` holds
    /// the SHA-256 of the manifest text about to be written, from before
    /// the write until the commit.
    async fn marker(&self) -> Result<PathBuf, ApplyError> {
        let git_dir = PathBuf::from(self.git_out(&["rev-parse", "--git-dir"]).await?.trim());
        Ok(self.repo.join(git_dir).join("tagcast-apply"))
    }

    /// Undoes what a deployer killed in the middle of an apply left: the
    /// manifest written (staged or not) but not committed, or the write's
    /// temporary sibling. Only when every change in the work tree is that
    /// — the manifest's text is the one the marker names — so an
    /// operator's edit is never discarded (`check_clean` refuses it). The
    /// update is applied again from the deployer's queue afterwards.
    async fn recover_interrupted(&self) -> Result<(), ApplyError> {
        let marker = self.marker().await?;
        let Ok(expected) = tokio::fs::read_to_string(&marker).await else {
            return Ok(());
        };
        let status = self.git_out(&["status", "--porcelain=v1", "-uall"]).await?;
        let manifest = self.path.to_string_lossy();
        let folder = self.path.parent().unwrap_or(Path::new(""));
        let mut temporaries = Vec::new();
        let mut manifest_changed = false;
        for line in status.lines() {
            let (code, entry) = (line.get(..2).unwrap_or_default(), line.get(3..).unwrap_or_default());
            let entry_path = Path::new(entry);
            let is_temporary = code == "??"
                && entry_path.parent().unwrap_or(Path::new("")) == folder
                && entry_path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".tagcast-") && n.ends_with(".tmp"));
            if is_temporary {
                temporaries.push(self.repo.join(entry_path));
            } else if entry == manifest && code != "??" && !code.contains('U') {
                manifest_changed = true;
            } else {
                // Someone else's change: leave everything to check_clean.
                return Ok(());
            }
        }
        if manifest_changed {
            let text = tokio::fs::read(self.repo.join(&self.path)).await.unwrap_or_default();
            if sha256_hex(&text) != expected.trim() {
                return Ok(());
            }
            self.git_out(&["reset", "--quiet", "--", &manifest]).await?;
            self.git_out(&["checkout", "--quiet", "--", &manifest]).await?;
        }
        for temporary in &temporaries {
            let _ = tokio::fs::remove_file(temporary).await;
        }
        if manifest_changed || !temporaries.is_empty() {
            tracing::warn!(
                repo = %self.repo.display(),
                path = %self.path.display(),
                "undid an apply interrupted before its commit (the deployer was stopped); applying again"
            );
        }
        let _ = tokio::fs::remove_file(&marker).await;
        Ok(())
    }

    pub(crate) async fn apply(&self, update: &Update) -> Result<String, ApplyError> {
        self.recover_interrupted().await?;
        self.check_clean().await?;
        let current = self
            .git_out(&["rev-parse", "--abbrev-ref", "HEAD"])
            .await?
            .trim()
            .to_owned();
        let branch = self.branch.clone().unwrap_or_else(|| current.clone());
        if branch != current {
            self.git_out(&["checkout", "--quiet", &branch]).await?;
        }
        let remote = self.remote().await?;
        if let Some(remote) = &remote {
            self.git_out(&["fetch", "--quiet", remote, &branch]).await?;
            // Only fast-forwards: a diverged branch is the operator's to resolve.
            self.git_out(&["merge", "--ff-only", "--quiet", "FETCH_HEAD"])
                .await
                .map_err(|e| self.repo_err(format!("cannot fast-forward {branch} to {remote}/{branch}: {e}")))?;
        }

        let manifest_err = |reason: String| ApplyError::Manifest {
            path: self.path.display().to_string(),
            reason,
        };
        // After the fetch: whoever can push to the branch decides what the
        // work tree holds, symlinks included.
        let file = contained(&self.repo, &self.path).map_err(manifest_err)?;
        let text = tokio::fs::read_to_string(&file)
            .await
            .map_err(|e| manifest_err(format!("cannot read: {e}")))?;
        let rewrite = manifest::rewrite(&text, &update.image, &update.tag_text, &update.digest);
        if rewrite.matched == 0 {
            return Err(manifest_err(format!(
                "no container or images entry uses {}",
                update.image
            )));
        }
        if rewrite.changes.is_empty() {
            return Ok(format!(
                "{} already pins {}; nothing to commit",
                self.path.display(),
                update.reference
            ));
        }
        let marker = self.marker().await?;
        tokio::fs::write(&marker, sha256_hex(rewrite.text.as_bytes()))
            .await
            .map_err(|e| self.repo_err(format!("cannot write {}: {e}", marker.display())))?;
        write_atomically(&file, &rewrite.text)
            .await
            .map_err(|e| manifest_err(format!("cannot write: {e}")))?;

        let old = rewrite
            .old_tags
            .first()
            .cloned()
            .or_else(|| update.previous_tag.clone())
            .unwrap_or_else(|| "(none)".to_owned());
        let message = format!(
            "tagcast: {} {old} -> {}\n\nImage: {}\nEvent: {}\n",
            update.image, update.tag_text, update.reference, update.event_id
        );
        let path = self.path.to_string_lossy().into_owned();
        self.git_out(&["add", "--", &path]).await?;
        let mut commit_args = self.author_args().await?;
        commit_args.extend(["commit", "--quiet", "--no-verify", "-m", &message, "--", &path].map(str::to_owned));
        let commit_args: Vec<&str> = commit_args.iter().map(String::as_str).collect();
        self.git_out(&commit_args).await?;
        let commit = self.git_out(&["rev-parse", "--short", "HEAD"]).await?.trim().to_owned();
        let _ = tokio::fs::remove_file(&marker).await;

        match &remote {
            Some(remote) => {
                let refspec = format!("HEAD:refs/heads/{branch}");
                self.git_out(&["push", "--quiet", remote, &refspec]).await?;
                Ok(format!(
                    "committed {commit} ({old} -> {}) and pushed to {remote}/{branch}",
                    update.tag_text
                ))
            }
            None => Ok(format!("committed {commit} ({old} -> {}) on {branch}", update.tag_text)),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// The manifest `path` inside the work tree `repo`, refusing a path that
/// is absolute, climbs out with `..`, passes through a symlink (the file
/// itself or any directory above it) or resolves outside the work tree.
fn contained(repo: &Path, path: &Path) -> Result<PathBuf, String> {
    let mut file = repo.to_owned();
    for component in path.components() {
        match component {
            Component::Normal(part) => file.push(part),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "must be a relative path inside the work tree without `..` (found {component:?})"
                ));
            }
        }
        let meta = std::fs::symlink_metadata(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        if meta.file_type().is_symlink() {
            return Err(format!(
                "{} is a symlink; refusing to follow it (a symlink committed to the branch could point anywhere)",
                file.display()
            ));
        }
    }
    let root = repo
        .canonicalize()
        .map_err(|e| format!("cannot resolve the work tree {}: {e}", repo.display()))?;
    let resolved = file.canonicalize().map_err(|e| format!("cannot resolve: {e}"))?;
    if !resolved.starts_with(&root) || resolved == root {
        return Err(format!(
            "resolves to {}, outside the work tree {}",
            resolved.display(),
            root.display()
        ));
    }
    Ok(resolved)
}

/// Replaces a file through a temporary sibling, so that a crash never
/// leaves half a manifest. The sibling gets a random name and is created
/// exclusively (`O_EXCL`, mode 0600 until the original's mode is copied),
/// so that nothing committed to the branch, such as a symlink at a
/// predictable name, can redirect the write.
async fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let path = path.to_owned();
    let text = text.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".tagcast-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.as_file().sync_all()?;
        if let Ok(meta) = std::fs::metadata(&path) {
            tmp.as_file().set_permissions(meta.permissions())?;
        }
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}
