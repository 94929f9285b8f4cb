//! What every end-to-end test needs: the binary and the repository root.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `tagcast` binary under test.
pub fn tagcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tagcast"))
}

/// The workspace root (where `schemas/`, `spec/` and `conformance/` are).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A path below the workspace root.
pub fn path(relative: &str) -> PathBuf {
    root().join(relative)
}

/// Runs `tagcast` with arguments and standard input, returning its output.
pub fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = tagcast()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tagcast starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("tagcast finishes")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Whether `TAGCAST_BLESS=1` asks to rewrite generated files instead of
/// comparing them.
pub fn bless() -> bool {
    std::env::var_os("TAGCAST_BLESS").is_some_and(|v| v == "1")
}

/// A `tagcast deployer` on a port it picks itself; killed when dropped.
pub struct Deployer {
    child: std::process::Child,
    /// The callback URL it printed, `http://127.0.0.1:PORT/`.
    pub url: String,
}

impl Drop for Deployer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Deployer {
    /// Starts `tagcast deployer --listen 127.0.0.1:0 ARGS…`, its standard
    /// error in `log`, and waits for the address it prints.
    pub fn start(args: &[&str], log: Stdio) -> Self {
        use std::io::BufRead;
        let mut child = tagcast()
            .args(["deployer", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("TAGCAST_SECRET")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("tagcast deployer starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the deployer prints its address");
        let Some(url) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.kill();
            panic!("the deployer printed {line:?} instead of its address");
        };
        Self { child, url }
    }
}
