//! The broker under measure: one or more child processes of this binary
//! (`tagcast broker`, so that its memory can be read from
//! `/proc/<pid>/status`), or a running broker at `--url`. And the admin API
//! calls the bench makes to it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::envelope::REGISTRY;

/// A broker the bench talks to.
pub struct Broker {
    /// The base URL of each replica.
    pub urls: Vec<String>,
    /// The admin token.
    pub token: String,
    /// The children, when the bench started them (killed on drop).
    children: Vec<Child>,
    client: reqwest::Client,
}

impl Broker {
    /// Starts `replicas` brokers on `database_url`, each on a loopback port
    /// the kernel picks, read back from its start-up log line.
    pub async fn spawn(database_url: &str, replicas: usize, token: &str, dir: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this executable to start the broker")?;
        let mut urls = Vec::new();
        let mut children = Vec::new();
        for replica in 0..replicas {
            let log = dir.join(format!("broker-{replica}.log"));
            let file = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
            let child = Command::new(&exe)
                .args(["broker", "--listen", "127.0.0.1:0", "--log-format", "json"])
                .args(["--allow-private-callbacks", "--verify-digests", "false"])
                // All load comes from one address and one hook token.
                .args(["--hook-rate-limit", "0", "--client-rate-limit", "0"])
                .env("TAGCAST_DATABASE_URL", database_url)
                .env("TAGCAST_ADMIN_TOKEN", token)
                .env_remove("TAGCAST_CONFIG")
                .env_remove("TAGCAST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(file))
                .kill_on_drop(true)
                .spawn()
                .context("cannot start `tagcast broker`")?;
            children.push(child);
            let address = listening_address(&log, children.last_mut().expect("just pushed")).await?;
            urls.push(format!("http://{address}"));
        }
        Ok(Self {
            urls,
            token: token.to_owned(),
            children,
            client: client(),
        })
    }

    /// A broker that runs elsewhere.
    pub fn remote(url: &str, token: &str) -> Self {
        Self {
            urls: vec![url.trim_end_matches('/').to_owned()],
            token: token.to_owned(),
            children: Vec::new(),
            client: client(),
        }
    }

    /// The resident set size of the first child in bytes, if the bench
    /// started it (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> Option<u64> {
        let pid = self.children.first()?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Registers service `id` subscribed to `images` (paths on the bench
    /// registry) with callbacks to `callback`, signed with `secret`; returns
    /// the path (with its token) of the registry's hook.
    pub async fn subscribe(&self, id: &str, images: &[String], callback: &str, secret: &str) -> anyhow::Result<String> {
        let images: Vec<String> = images.iter().map(|i| format!("{REGISTRY}/{i}")).collect();
        let body = json!({
            "id": id,
            "name": id,
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "organization": {"name": "bench", "url": "https://example.org"},
            "version": "1",
            "url": "https://wes.example.org",
            "subscription": {
                "images": images,
                "stage": "production",
                "callbackUrl": callback,
                "secret": secret,
                "registry": {"kind": "distribution"}
            }
        });
        let response = self
            .client
            .post(format!("{}/ga4gh/registry/v1/services", self.urls[0]))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .context("cannot reach the broker's admin API")?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("registering service {id} answered {status}: {answer}");
        }
        let hook = answer["subscription"]["hooks"][0]["url"]
            .as_str()
            .context("the registration's answer has no hook URL")?;
        let path = url::Url::parse(hook).map_or_else(|_| hook.to_owned(), |u| u.path().to_owned());
        Ok(path)
    }
}

/// The HTTP client of the admin calls and the load: keeps connections.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client with rustls builds")
}

/// Waits (at most 60 s) for the child's "listening" log line and returns
/// the address in it.
async fn listening_address(log: &Path, child: &mut Child) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if entry["fields"]["message"] == "tagcast broker listening" {
                if let Some(address) = entry["fields"]["listen"].as_str() {
                    return Ok(address.to_owned());
                }
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("`tagcast broker` exited ({status}) before listening:\n{}", tail(&text));
        }
        if Instant::now() > deadline {
            bail!("`tagcast broker` did not start listening within 60 s:\n{}", tail(&text));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
