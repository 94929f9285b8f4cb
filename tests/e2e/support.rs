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

/// A `docker-registry serve` (CNCF Distribution) on a loopback port;
/// killed when dropped.
pub struct DockerRegistry {
    child: std::process::Child,
    /// Where it listens, `127.0.0.1:PORT`.
    pub addr: std::net::SocketAddr,
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DockerRegistry {
    /// Starts `docker-registry serve` with the configuration `config(addr)`
    /// written into `dir`, and waits until *it* answers `GET /v2/` with 200.
    /// Tests run in parallel and pick free ports by binding and releasing
    /// one, so another test may take the port first: then the registry
    /// exits and this tries a new port.
    pub fn start(dir: &Path, config: impl Fn(std::net::SocketAddr) -> String) -> Self {
        use std::io::Read as _;
        for _ in 0..5 {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let path = dir.join("registry.yml");
            std::fs::write(&path, config(addr)).unwrap();
            let child = std::process::Command::new("docker-registry")
                .arg("serve")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("docker-registry starts (Debian package docker-registry)");
            let mut registry = Self { child, addr };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                if registry.child.try_wait().unwrap().is_some() {
                    break; // the port was taken: try another
                }
                let answered = std::net::TcpStream::connect(addr).is_ok_and(|mut stream| {
                    let mut status = [0u8; 12];
                    stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok()
                        && stream.read_exact(&mut status).is_ok()
                        && status.ends_with(b" 200")
                });
                if answered && registry.child.try_wait().unwrap().is_none() {
                    return registry;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        panic!("docker-registry did not start on a free port in five tries");
    }
}
