//! `--apply exec --command CMD`: run a command (through `sh -c`) with the
//! update in its environment, for example `reference/deploy/upgrade.sh`.

use std::time::Duration;

use tokio::process::Command;

use super::{ApplyError, Update};
use crate::command;

/// The exec mode.
#[derive(Debug, Clone)]
pub struct Exec {
    /// The command line, run by `sh -c`.
    pub command: String,
    /// How long it may run before it is killed.
    pub timeout: Duration,
}

/// The variables a hook receives, in a fixed order (DESIGN.md §8).
pub fn environment(update: &Update) -> Vec<(&'static str, String)> {
    vec![
        ("TAGCAST_IMAGE", update.image.to_string()),
        ("TAGCAST_TAG", update.tag_text.clone()),
        ("TAGCAST_DIGEST", update.digest.to_string()),
        ("TAGCAST_REFERENCE", update.reference.clone()),
        ("TAGCAST_STAGE", update.stage.to_string()),
        ("TAGCAST_API_VERSION", update.api_version.to_string()),
        ("TAGCAST_PREVIOUS_TAG", update.previous_tag.clone().unwrap_or_default()),
        ("TAGCAST_EVENT_ID", update.event_id.clone()),
    ]
}

impl Exec {
    pub(crate) async fn apply(&self, update: &Update) -> Result<String, ApplyError> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&self.command);
        // The deployer's own TAGCAST_* configuration (its secrets among
        // them) is not the hook's business: it sees exactly the variables
        // of the contract.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TAGCAST_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(environment(update));
        let output = command::run_ok(cmd, "exec command", self.timeout, command::Chatter::Info).await?;
        Ok(format!("exec command exited with {}", output.status))
    }
}
