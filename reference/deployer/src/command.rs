//! Running an external program (the exec hook, `kubectl`, `git`) with a
//! timeout, its output captured — at most [`CAPTURE`] bytes of each stream,
//! the end kept — and logged.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;

use crate::apply::ApplyError;

/// How much of a program's output is kept in an error (the rest is in the log).
const KEEP: usize = 2000;

/// How much of each of a program's output streams is kept in memory and
/// logged: the last 64 KiB. A hook that prints without end cannot make the
/// deployer's memory or log grow without end; what was dropped is counted.
pub(crate) const CAPTURE: usize = 64 * 1024;

/// At which level a program's output lines are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chatter {
    /// The operator's own hook and kubectl: their output is the story.
    Info,
    /// git: progress and hints are noise at the default level.
    Debug,
}

/// What a finished program printed.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Reads `reader` to its end, keeping the last [`CAPTURE`] bytes; returns
/// them and how many bytes were dropped before them.
async fn capture(reader: Option<impl AsyncRead + Unpin>) -> std::io::Result<(Vec<u8>, u64)> {
    let Some(mut reader) = reader else {
        return Ok((Vec::new(), 0));
    };
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut buffer = [0u8; 8192];
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        // Trim in batches, not on every read.
        if kept.len() > 2 * CAPTURE {
            let cut = kept.len() - CAPTURE;
            kept.drain(..cut);
            dropped += cut as u64;
        }
    }
    if kept.len() > CAPTURE {
        let cut = kept.len() - CAPTURE;
        kept.drain(..cut);
        dropped += cut as u64;
    }
    Ok((kept, dropped))
}

fn log_lines(what: &str, stream: &str, text: &str, dropped: u64, chatter: Chatter) {
    if dropped > 0 {
        tracing::warn!(
            program = what,
            "{stream}: {dropped} earlier bytes dropped (output capped)"
        );
    }
    for line in text.lines() {
        match chatter {
            Chatter::Info => tracing::info!(program = what, "{stream}: {line}"),
            Chatter::Debug => tracing::debug!(program = what, "{stream}: {line}"),
        }
    }
}

/// Runs `command` to completion or until `timeout`, logging its output
/// line by line at the level `chatter` says. A program that outlives the
/// timeout is killed.
pub(crate) async fn run(
    mut command: Command,
    what: &str,
    timeout: Duration,
    chatter: Chatter,
) -> Result<Output, ApplyError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawn_error = |source| ApplyError::Spawn {
        program: what.to_owned(),
        source,
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let finished = async {
        let (out, err, status) = tokio::join!(capture(out), capture(err), child.wait());
        Ok::<_, std::io::Error>((out?, err?, status?))
    };
    // On timeout the child is dropped, and killed (`kill_on_drop`).
    let ((stdout, out_dropped), (stderr, err_dropped), status) = match tokio::time::timeout(timeout, finished).await {
        Ok(result) => result.map_err(spawn_error)?,
        Err(_) => {
            return Err(ApplyError::Timeout {
                program: what.to_owned(),
                after: timeout,
            });
        }
    };
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    log_lines(what, "stdout", &stdout, out_dropped, chatter);
    log_lines(what, "stderr", &stderr, err_dropped, chatter);
    match chatter {
        Chatter::Info => tracing::info!(program = what, %status, "finished"),
        Chatter::Debug => tracing::debug!(program = what, %status, "finished"),
    }
    Ok(Output { status, stdout, stderr })
}

/// Like [`run`], but a non-zero exit is an error carrying the end of stderr.
pub(crate) async fn run_ok(
    command: Command,
    what: &str,
    timeout: Duration,
    chatter: Chatter,
) -> Result<Output, ApplyError> {
    let output = run(command, what, timeout, chatter).await?;
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
        let err = run(cmd, "sleeper", Duration::from_millis(200), Chatter::Info)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "sleeper did not finish within 200ms");
    }

    #[tokio::test]
    async fn failure_carries_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo broken >&2; exit 3"]);
        let err = run_ok(cmd, "hook", Duration::from_secs(5), Chatter::Info)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "hook failed (exit status: 3): broken");
    }

    /// Issue 11, finding 9: a hook printing 4 MiB is kept to the last
    /// `CAPTURE` bytes of each stream (its end, where the error usually is).
    #[tokio::test]
    async fn endless_output_is_capped_to_its_end() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "head -c 4194304 /dev/zero | tr '\\0' x; echo END; head -c 300000 /dev/zero >&2",
        ]);
        let output = run(cmd, "chatty", Duration::from_secs(30), Chatter::Debug)
            .await
            .unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout.len(), CAPTURE, "stdout kept to the cap");
        assert!(output.stdout.ends_with("xEND\n"), "the end is kept");
        assert_eq!(output.stderr.len(), CAPTURE, "stderr kept to the cap");
    }

    #[test]
    fn tail_keeps_the_end() {
        let long = "é".repeat(3000);
        let t = tail(&long);
        assert!(t.starts_with('…'));
        assert!(t.len() <= KEEP + '…'.len_utf8() + 1);
    }
}
