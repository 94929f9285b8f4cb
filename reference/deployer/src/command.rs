//! Running an external program (the exec hook, `kubectl`, `git`) with a
//! timeout, its output captured and logged.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::Command;

use crate::apply::ApplyError;

/// How much of a program's output is kept in an error (the rest is in the log).
const KEEP: usize = 2000;

/// What a finished program printed.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to completion or until `timeout`, logging its output
/// line by line. A program that outlives the timeout is killed.
pub(crate) async fn run(mut command: Command, what: &str, timeout: Duration) -> Result<Output, ApplyError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|source| ApplyError::Spawn {
        program: what.to_owned(),
        source,
    })?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(result) => result.map_err(|source| ApplyError::Spawn {
            program: what.to_owned(),
            source,
        })?,
        Err(_) => {
            return Err(ApplyError::Timeout {
                program: what.to_owned(),
                after: timeout,
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    for line in stdout.lines() {
        tracing::info!(program = what, "stdout: {line}");
    }
    for line in stderr.lines() {
        tracing::info!(program = what, "stderr: {line}");
    }
    tracing::info!(program = what, status = %output.status, "finished");
    Ok(Output {
        status: output.status,
        stdout,
        stderr,
    })
}

/// Like [`run`], but a non-zero exit is an error carrying the end of stderr.
pub(crate) async fn run_ok(command: Command, what: &str, timeout: Duration) -> Result<Output, ApplyError> {
    let output = run(command, what, timeout).await?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ApplyError::Failed {
            program: what.to_owned(),
            status: output.status.to_string(),
            output: tail(if output.stderr.trim().is_empty() {
                &output.stdout
            } else {
                &output.stderr
            }),
        })
    }
}

/// The last [`KEEP`] bytes of a program's output, trimmed, on a char boundary.
pub(crate) fn tail(text: &str) -> String {
    let text = text.trim();
    if text.len() <= KEEP {
        return text.to_owned();
    }
    let mut start = text.len() - KEEP;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_kills_and_reports() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 5"]);
        let err = run(cmd, "sleeper", Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(err.to_string(), "sleeper did not finish within 200ms");
    }

    #[tokio::test]
    async fn failure_carries_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo broken >&2; exit 3"]);
        let err = run_ok(cmd, "hook", Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(err.to_string(), "hook failed (exit status: 3): broken");
    }

    #[test]
    fn tail_keeps_the_end() {
        let long = "é".repeat(3000);
        let t = tail(&long);
        assert!(t.starts_with('…'));
        assert!(t.len() <= KEEP + '…'.len_utf8() + 1);
    }
}
