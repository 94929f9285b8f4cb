//! `tagcast demo`: the whole pub/sub chain on this machine, in one command.
//!
//! A broker (in-memory SQLite) and a deployer (gitops mode, on a temporary
//! git repository holding a Kubernetes Deployment) run in this process on
//! loopback ports. The demo registers a WES with a subscription, then plays
//! a container registry: it sends the Distribution notifications of a
//! sequence of pushes and shows what the broker accepted or ignored, which
//! callbacks reached the deployer, and how the manifest changed. What should
//! happen is computed from the contract (`tagcast_spec::UpdatePolicy`), not
//! written down, and compared with what did happen. It ends with the
//! conformance runner against both services.

mod registry;
mod timeline;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use tagcast_spec::webhook::Secret;
use tagcast_spec::{ApiRequirement, Repository, Stage, Tag, UpdatePolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;

use self::timeline::Timeline;

/// The registry the demo plays, and the image the WES runs.
const REGISTRY: &str = "localhost:5000";
const REPOSITORY: &str = "elixircloud/cwl-wes";
const MANIFEST: &str = "deploy/cwl-wes.yaml";
/// What the deployment runs before the demo.
const INITIAL_TAG: &str = "1.1.0-production-201001-000000";
const SERVICE_ID: &str = "org.example.node1.cwl-wes";
/// How long the demo waits for the broker or the deployer to act.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long the demo watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    tagcast demo\n  \
    tagcast demo --keep tagcast-demo   # keep the git repository and databases\n  \
    tagcast demo --json | jq '.steps[] | {action, ok}'")]
pub struct DemoArgs {
    /// Keep the git repository and the databases in DIR (created; must be
    /// empty or absent) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Print the timeline as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(args))
}

/// One push the demo makes, and why.
struct Push {
    tag: &'static str,
    why: &'static str,
}

const PUSHES: [Push; 5] = [
    Push {
        tag: "1.1.0-demo-201108-195630",
        why: "a demo build: not for a production subscriber",
    },
    Push {
        tag: "1.1.0-production-201109-080000",
        why: "a production build, newer than what runs",
    },
    Push {
        tag: "1.1.1-production-201201-120000",
        why: "a newer production build",
    },
    Push {
        tag: "1.1.0-production-201110-000000",
        why: "an older production build, pushed late: never a downgrade",
    },
    Push {
        tag: "2.0.0-production-210101-000000",
        why: "WES API 2.0: outside the subscription's ^1.1",
    },
];

async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (dir, _temp) = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            if std::fs::read_dir(dir)?.next().is_some() {
                bail!("--keep {}: the directory is not empty", dir.display());
            }
            (dir.clone(), None)
        }
        None => {
            let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let mut timeline = Timeline::new(!args.json);
    let (stop, stopped) = watch::channel(false);

    // The CD side: a git repository with the Deployment, and the deployer.
    let repo = dir.join("gitops");
    init_repo(&repo).await?;
    let secret = Secret::generate(rand::random());
    let deployer_admin = random_token();
    let deployer_url = start_deployer(&repo, &dir, &args, &secret, &deployer_admin, stopped.clone()).await?;

    // The registry's API, which the broker asks before delivering.
    let tags = registry::Tags::default();
    let registry_listener = TcpListener::bind("127.0.0.1:0").await?;
    let registry_api = format!("http://{}", registry_listener.local_addr()?);
    let mut registry_stopped = stopped.clone();
    let registry_app = registry::api(tags.clone());
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = registry_stopped.wait_for(|s| *s).await;
        };
        let _ = axum::serve(registry_listener, registry_app)
            .with_graceful_shutdown(shutdown)
            .await;
    });

    // The broker.
    let broker_admin = random_token();
    let broker_url = start_broker(&dir, &args, &broker_admin, stopped.clone()).await?;
    if !args.json {
        println!(
            "tagcast demo: broker {broker_url}, deployer {deployer_url}, repository {}",
            repo.display()
        );
        println!();
    }

    let http = reqwest::Client::builder().timeout(PATIENCE).build()?;
    let mut chain = Chain {
        http,
        broker: broker_url.clone(),
        broker_admin: broker_admin.clone(),
        deployer: deployer_url.clone(),
        deployer_admin,
        repo: repo.clone(),
        hook_url: String::new(),
        current: Some(Tag::parse(INITIAL_TAG)?),
        tags,
    };

    chain
        .register(&mut timeline, &secret, &deployer_url, &registry_api)
        .await?;
    let policy = UpdatePolicy {
        stage: Stage::Production,
        requirement: ApiRequirement::parse("^1.1")?,
    };
    // The notifications of the last push that was delivered, to repeat.
    let mut last_delivered = None;
    for push in &PUSHES {
        let before = chain.current;
        let sent = chain.push(&mut timeline, &policy, push).await?;
        if chain.current != before {
            last_delivered = Some(sent);
        }
    }
    if let Some(envelopes) = last_delivered {
        chain.repeat(&mut timeline, &envelopes).await?;
    }
    chain.non_conformant(&mut timeline).await?;
    chain.stale(&mut timeline).await?;
    chain.forged(&mut timeline).await?;
    chain.diff(&mut timeline).await?;
    let conformance = chain.conformance(&mut timeline, &secret).await?;

    let _ = stop.send(true);
    let ok = timeline.all_ok();
    if args.json {
        let out = json!({
            "broker": broker_url,
            "deployer": deployer_url,
            // Without --keep the repository is deleted on exit: no path to it.
            "repository": args.keep.as_ref().map(|_| &repo),
            "ok": ok,
            "steps": timeline.steps,
            "conformance": conformance,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        let failed = timeline.steps.iter().filter(|s| !s.ok).count();
        println!(
            "{} steps in {} ms, {} as the contract says{}",
            timeline.steps.len(),
            timeline.elapsed_ms(),
            timeline.steps.len() - failed,
            if failed == 0 {
                String::new()
            } else {
                format!(", {failed} UNEXPECTED")
            }
        );
        if let Some(dir) = &args.keep {
            println!("kept: {}", dir.display());
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .await
        .context("cannot run git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn init_repo(repo: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(repo.join("deploy"))?;
    git(repo, &["init", "-q", "-b", "main"]).await?;
    git(repo, &["config", "user.name", "tagcast demo"]).await?;
    git(repo, &["config", "user.email", "demo@tagcast.invalid"]).await?;
    let manifest = format!(
        "# The WES of node 1, kept up to date by tagcast deployer (gitops mode).\n\
         apiVersion: apps/v1\n\
         kind: Deployment\n\
         metadata:\n  name: cwl-wes\n  namespace: wes\n\
         spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: cwl-wes\n\
         \x20 template:\n    metadata:\n      labels:\n        app: cwl-wes\n\
         \x20   spec:\n      containers:\n\
         \x20       - name: wes\n          image: {REGISTRY}/{REPOSITORY}:{INITIAL_TAG}  # updated by tagcast\n\
         \x20         ports:\n            - containerPort: 8080\n\
         \x20       - name: proxy\n          image: docker.io/library/nginx:1.25\n"
    );
    std::fs::write(repo.join(MANIFEST), manifest)?;
    git(repo, &["add", MANIFEST]).await?;
    git(repo, &["commit", "-q", "-m", "cwl-wes as deployed before the demo"]).await?;
    Ok(())
}

async fn start_deployer(
    repo: &Path,
    dir: &Path,
    args: &DemoArgs,
    secret: &Secret,
    admin_token: &str,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    use tagcast_deployer::apply::{Applier, gitops::Gitops};
    let mut config = tagcast_deployer::Config::new(
        vec![secret.clone()],
        vec![Repository::parse(&format!("{REGISTRY}/{REPOSITORY}"))?],
        UpdatePolicy {
            stage: Stage::Production,
            requirement: ApiRequirement::parse("^1.1")?,
        },
        Applier::Gitops(Gitops {
            repo: repo.to_path_buf(),
            path: PathBuf::from(MANIFEST),
            branch: None,
            remote: None,
            author: "tagcast demo <demo@tagcast.invalid>".to_owned(),
            timeout: PATIENCE,
        }),
    );
    config.admin_token = Some(admin_token.to_owned());
    config.current_tag = Some(Tag::parse(INITIAL_TAG)?);
    config.state = args.keep.as_ref().map(|_| dir.join("deployer.sqlite"));
    config.poll_interval = Duration::from_millis(100);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(err) = tagcast_deployer::serve_until(listener, config, shutdown).await {
            eprintln!("tagcast demo: the deployer stopped: {err}");
        }
    });
    Ok(url)
}

async fn start_broker(
    dir: &Path,
    args: &DemoArgs,
    admin_token: &str,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    use tagcast_broker::config::{Config, Settings};
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let database_url = match &args.keep {
        Some(_) => format!("sqlite://{}", dir.join("broker.sqlite").display()),
        None => "sqlite::memory:".to_owned(),
    };
    let config = Config::from_settings(Settings {
        listen: Some(address.to_string()),
        database_url: Some(database_url.clone()),
        admin_token: Some(admin_token.to_owned()),
        public_url: Some(format!("http://{address}")),
        // The deployer listens on loopback: allowed for the demo only.
        allow_private_callbacks: Some(true),
        allow_http_callbacks: Some(true),
        retry_schedule: Some("1s,2s".to_owned()),
        poll_interval: Some("50ms".to_owned()),
        // A registry may notify before it links the tag; the demo's registry
        // links first, so a disagreement is final after a second.
        verify_grace: Some("1s".to_owned()),
        ..Settings::default()
    })?;
    let (keys, _) = config.keys()?;
    let store = tagcast_broker::store::open(&database_url, &keys).await?;
    let started = tagcast_broker::start(store, config).await?;
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(err) = tagcast_broker::run(listener, started.state, shutdown).await {
            eprintln!("tagcast demo: the broker stopped: {err}");
        }
    });
    Ok(format!("http://{address}"))
}

/// "no delivery", "1 delivery", "2 deliveries": the spec's word for one
/// callback to one subscriber (its HTTP tries are attempts).
fn deliveries_text(count: i64) -> String {
    match count {
        0 => "no delivery".to_owned(),
        1 => "1 delivery".to_owned(),
        n => format!("{n} deliveries"),
    }
}

/// What the broker did with a matched event, with its reason when it
/// gives one (a "matched" without a delivery would say nothing).
fn event_outcome(event: &Value, deliveries: i64) -> String {
    let status = event["status"].as_str().unwrap_or("?");
    match event["reason"].as_str() {
        Some(reason) if deliveries == 0 => format!("{status}, {}: {reason}", deliveries_text(deliveries)),
        _ => format!("{status}, {}", deliveries_text(deliveries)),
    }
}

/// The running chain, as the demo talks to it: over HTTP, like anyone else.
struct Chain {
    http: reqwest::Client,
    broker: String,
    broker_admin: String,
    deployer: String,
    deployer_admin: String,
    repo: PathBuf,
    hook_url: String,
    /// What the contract says the deployment runs now.
    current: Option<Tag>,
    /// The played registry's tags.
    tags: registry::Tags,
}

impl Chain {
    async fn register(
        &mut self,
        timeline: &mut Timeline,
        secret: &Secret,
        callback: &str,
        registry_api: &str,
    ) -> anyhow::Result<()> {
        let began = timeline.elapsed_ms();
        let body = json!({
            "id": SERVICE_ID,
            "name": "cwl-WES (node 1, production)",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "organization": {"name": "Example University", "url": "https://www.example.org"},
            "version": "1.0.0",
            "url": "https://wes.node1.example.org/ga4gh/wes/v1",
            "environment": "prod",
            "subscription": {
                "images": [format!("{REGISTRY}/{REPOSITORY}")],
                "stage": "production",
                "apiVersion": "^1.1",
                "callbackUrl": callback,
                "secret": secret.expose(),
                "registry": {"kind": "distribution", "url": registry_api},
            }
        });
        let response = self
            .http
            .post(format!("{}/ga4gh/registry/v1/services", self.broker))
            .bearer_auth(&self.broker_admin)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let hook = answer
            .pointer("/subscription/hooks/0/url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let read_back: Value = self
            .http
            .get(format!("{}/ga4gh/registry/v1/services/{SERVICE_ID}", self.broker))
            .send()
            .await?
            .json()
            .await
            .unwrap_or(Value::Null);
        let secret_hidden = read_back.pointer("/subscription/secret").is_none();
        let ok = status == 201 && !hook.is_empty() && secret_hidden;
        timeline.record(
            began,
            format!("register {SERVICE_ID} (WES 1.1.0) subscribed to {REGISTRY}/{REPOSITORY}, stage production, ^1.1"),
            "201 Created with the hook URL the registry must call; a read never shows the secret".to_owned(),
            vec![
                format!("broker: {status}, hook {}", redact_token(&hook)),
                format!(
                    "read back: secret {}",
                    if secret_hidden { "not shown" } else { "SHOWN" }
                ),
            ],
            ok,
        );
        self.hook_url = hook;
        Ok(())
    }

    /// Sends a push's notifications; returns them for a repeat.
    async fn push(
        &mut self,
        timeline: &mut Timeline,
        policy: &UpdatePolicy,
        push: &Push,
    ) -> anyhow::Result<Vec<Value>> {
        let began = timeline.elapsed_ms();
        let sent = registry::push(REGISTRY, REPOSITORY, push.tag);
        let candidate = Tag::parse(push.tag)?;
        let verdict = policy.check(self.current.as_ref(), &candidate);
        let expected = match &verdict {
            Ok(()) => "one signed callback; the deployer commits the new tag, pinned to its digest".to_owned(),
            Err(why) => format!("no callback ({why})"),
        };
        let commits_before = self.commits().await?;
        let mut observed = Vec::new();
        let mut hook_ok = true;
        // A registry stores the tag, then notifies.
        self.tags.set(REPOSITORY, push.tag, &sent.digest);
        for envelope in &sent.envelopes {
            let (status, answer) = self.post_hook(&self.hook_url, envelope).await?;
            hook_ok &= status == 202 || status == 200;
            let statuses: Vec<String> = answer["events"]
                .as_array()
                .map(|events| {
                    events
                        .iter()
                        .map(|e| match e["reason"].as_str() {
                            Some(reason) => format!("{} ({reason})", e["status"].as_str().unwrap_or("?")),
                            None => e["status"].as_str().unwrap_or("?").to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            observed.push(format!("broker: {status} {}", statuses.join(", ")));
        }
        let manifest_event_id = sent.envelopes[2]["events"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let matched = self.wait_matched(&manifest_event_id).await?;
        let deliveries = matched["deliveries"].as_i64().unwrap_or(0);
        observed.push(format!("broker: {}", event_outcome(&matched, deliveries)));
        let ok = if verdict.is_ok() {
            let applied = self.wait_applied(push.tag).await?;
            let commits_after = self.commits().await?;
            let pinned = format!("{REGISTRY}/{REPOSITORY}:{}@{}", push.tag, sent.digest);
            let manifest = std::fs::read_to_string(self.repo.join(MANIFEST))?;
            observed.push(format!(
                "deployer: {}; {} new commit(s)",
                applied.as_deref().unwrap_or("nothing applied"),
                commits_after - commits_before
            ));
            let pinned_ok = manifest.contains(&pinned);
            observed.push(format!(
                "manifest pins {pinned}: {}",
                if pinned_ok { "yes" } else { "NO" }
            ));
            if pinned_ok {
                self.current = Some(candidate);
            }
            deliveries == 1 && commits_after == commits_before + 1 && pinned_ok
        } else {
            tokio::time::sleep(QUIET).await;
            let commits_after = self.commits().await?;
            observed.push(format!("deployer: {} new commit(s)", commits_after - commits_before));
            deliveries == 0 && commits_after == commits_before
        };
        timeline.record(
            began,
            format!("push {REGISTRY}/{REPOSITORY}:{} — {}", push.tag, push.why),
            expected,
            observed,
            hook_ok && ok,
        );
        Ok(sent.envelopes)
    }

    async fn repeat(&mut self, timeline: &mut Timeline, envelopes: &[Value]) -> anyhow::Result<()> {
        let began = timeline.elapsed_ms();
        let commits_before = self.commits().await?;
        let mut observed = Vec::new();
        let mut ok = true;
        let before = self.events().await?.len();
        for envelope in envelopes {
            let (status, answer) = self.post_hook(&self.hook_url, envelope).await?;
            ok &= status == 202 || status == 200;
            observed.push(format!("broker: {status} {}", answer["events"]));
        }
        tokio::time::sleep(QUIET).await;
        let commits_after = self.commits().await?;
        let after = self.events().await?.len();
        observed.push(format!("broker: {} new event(s) stored", after - before));
        observed.push(format!("deployer: {} new commit(s)", commits_after - commits_before));
        timeline.record(
            began,
            "the registry repeats the last delivered push's notifications (as Distribution does after a timeout)"
                .to_owned(),
            "acknowledged, deduplicated by event id: no second callback".to_owned(),
            observed,
            ok && commits_after == commits_before,
        );
        Ok(())
    }

    async fn non_conformant(&mut self, timeline: &mut Timeline) -> anyhow::Result<()> {
        let began = timeline.elapsed_ms();
        let sent = registry::push(REGISTRY, REPOSITORY, "latest");
        self.tags.set(REPOSITORY, "latest", &sent.digest);
        let commits_before = self.commits().await?;
        let (status, answer) = self.post_hook(&self.hook_url, &sent.envelopes[2]).await?;
        let event = &answer["events"][0];
        tokio::time::sleep(QUIET).await;
        let commits_after = self.commits().await?;
        let ignored = event["status"] == "ignored";
        timeline.record(
            began,
            format!("push {REGISTRY}/{REPOSITORY}:latest — a tag outside the grammar"),
            "acknowledged and ignored, with the reason in the event log (TAG-1)".to_owned(),
            vec![
                format!("broker: {status} {event}"),
                format!("deployer: {} new commit(s)", commits_after - commits_before),
            ],
            (status == 202 || status == 200) && ignored && commits_after == commits_before,
        );
        Ok(())
    }

    /// A notification that the registry contradicts: the tag points at
    /// another digest now (a stale or forged webhook on the real hook URL).
    async fn stale(&mut self, timeline: &mut Timeline) -> anyhow::Result<()> {
        let began = timeline.elapsed_ms();
        let tag = "1.1.2-production-201215-000000";
        let sent = registry::push(REGISTRY, REPOSITORY, tag);
        let other = registry::push(REGISTRY, REPOSITORY, "1.1.2-production-201215-000001");
        self.tags.set(REPOSITORY, tag, &other.digest);
        let commits_before = self.commits().await?;
        let (status, _) = self.post_hook(&self.hook_url, &sent.envelopes[2]).await?;
        let manifest_event_id = sent.envelopes[2]["events"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let matched = self.wait_matched(&manifest_event_id).await?;
        tokio::time::sleep(QUIET).await;
        let commits_after = self.commits().await?;
        let deliveries = matched["deliveries"].as_i64().unwrap_or(0);
        let reason = matched["reason"].as_str().unwrap_or("");
        timeline.record(
            began,
            format!("a notification for {tag} whose digest the registry contradicts (a stale or forged webhook)"),
            "acknowledged, re-checked with HEAD /v2/…/manifests/<tag>, dropped: no callback (API-15)".to_owned(),
            vec![
                format!(
                    "broker: {status}, then {}: {reason}",
                    matched["status"].as_str().unwrap_or("?")
                ),
                format!("broker: {}", deliveries_text(deliveries)),
                format!("deployer: {} new commit(s)", commits_after - commits_before),
            ],
            (status == 202 || status == 200) && deliveries == 0 && commits_after == commits_before,
        );
        Ok(())
    }

    async fn forged(&mut self, timeline: &mut Timeline) -> anyhow::Result<()> {
        let began = timeline.elapsed_ms();
        let sent = registry::push(REGISTRY, REPOSITORY, "9.9.9-production-991231-235959");
        let forged_url = format!("{}/hooks/distribution/{}", self.broker, random_token());
        let before = self.events().await?.len();
        let (status, _) = self.post_hook(&forged_url, &sent.envelopes[2]).await?;
        let after = self.events().await?.len();
        timeline.record(
            began,
            "a forged notification for 9.9.9-production-991231-235959 to a guessed hook URL".to_owned(),
            "404, nothing stored, nothing delivered".to_owned(),
            vec![format!("broker: {status}, {} new event(s) stored", after - before)],
            status == 404 && after == before,
        );
        Ok(())
    }

    async fn diff(&mut self, timeline: &mut Timeline) -> anyhow::Result<()> {
        let began = timeline.elapsed_ms();
        let log = git(&self.repo, &["log", "--reverse", "--format=%h %s", "--", MANIFEST]).await?;
        let diff = git(&self.repo, &["diff", "HEAD~2", "HEAD", "--", MANIFEST])
            .await
            .unwrap_or_default();
        let mut observed: Vec<String> = log.lines().map(|l| format!("commit {l}")).collect();
        observed.extend(
            diff.lines()
                .filter(|l| l.starts_with(['+', '-']))
                .map(|l| format!("  {l}")),
        );
        let ok = log.lines().count() == 3;
        timeline.record(
            began,
            format!("git log -p {MANIFEST}"),
            "the deployment's history: the initial commit and one commit per delivered update".to_owned(),
            observed,
            ok,
        );
        Ok(())
    }

    async fn conformance(&mut self, timeline: &mut Timeline, secret: &Secret) -> anyhow::Result<Value> {
        use tagcast_conformance::{BrokerTarget, CdTarget, Config, StatusToken, Target};
        // Half the runner's default watch for unwanted deliveries: the
        // broker here is local and quick, and the demo should end within
        // seconds.
        let config = Config {
            quiet: Duration::from_millis(700),
            ..Config::default()
        };
        let mut summaries = Vec::new();
        let mut all = json!({});
        let began = timeline.elapsed_ms();
        // The CD checks read the deployer's status (what it applied), so
        // that none is skipped: a duplicate must not change it, nor an
        // older tag. Their events are for the runner's own image, which
        // the deployer does not follow: the demo's repository keeps only
        // the demo's updates.
        let mut cd = CdTarget::new(self.deployer.parse()?, secret.clone());
        cd.status_url = Some(format!("{}status", self.deployer).parse()?);
        cd.status_pointer = Some("/applied".to_owned());
        cd.status_token = Some(StatusToken(self.deployer_admin.clone()));
        let cd = Target::Cd(cd);
        let broker = Target::Broker(BrokerTarget::new(
            format!("{}/ga4gh/registry/v1", self.broker).parse()?,
            self.broker_admin.clone(),
        ));
        let mut ok = true;
        for target in [cd, broker] {
            let report = tagcast_conformance::run(&target, &config).await;
            let counts = serde_json::to_value(report.summary)?;
            let passed = report.exit_code() == 0;
            ok &= passed;
            summaries.push(format!("{}: {} — {counts}", target.name(), report.outcome));
            for check in report
                .checks
                .iter()
                .filter(|c| c.outcome >= tagcast_conformance::Outcome::Fail)
            {
                summaries.push(format!(
                    "  {} {} ({}): {}",
                    check.outcome,
                    check.name,
                    check.requirement,
                    check.message.as_deref().unwrap_or("")
                ));
            }
            all[target.name()] = serde_json::to_value(&report)?;
        }
        timeline.record(
            began,
            "tagcast conformance cd and broker against the two running services".to_owned(),
            "every required check passes".to_owned(),
            summaries,
            ok,
        );
        Ok(all)
    }

    async fn post_hook(&self, url: &str, envelope: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(url)
            .header("content-type", registry::ENVELOPE_MEDIA_TYPE)
            .body(serde_json::to_vec(envelope)?)
            .send()
            .await
            .context("cannot reach the broker")?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn events(&self) -> anyhow::Result<Vec<Value>> {
        let events: Value = self
            .http
            .get(format!("{}/hooks/events?limit=1000", self.broker))
            .bearer_auth(&self.broker_admin)
            .send()
            .await?
            .json()
            .await?;
        Ok(events.as_array().cloned().unwrap_or_default())
    }

    /// Waits until the broker has matched the event with this registry id.
    async fn wait_matched(&self, registry_event_id: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let events = self.events().await?;
            if let Some(event) = events.iter().find(|e| e["registryEventId"] == registry_event_id) {
                if !event["matchedAt"].is_null() || event["status"] != "accepted" {
                    return Ok(event.clone());
                }
            }
            if Instant::now() > deadline {
                bail!("the broker did not match event {registry_event_id} within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the deployer's history decides on `tag`; returns what it did.
    async fn wait_applied(&self, tag: &str) -> anyhow::Result<Option<String>> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status: Value = self
                .http
                .get(format!("{}status", self.deployer))
                .bearer_auth(&self.deployer_admin)
                .send()
                .await?
                .json()
                .await?;
            let entry = status["history"]
                .as_array()
                .and_then(|h| h.iter().find(|e| e["tag"] == tag).cloned());
            if let Some(entry) = entry {
                return Ok(Some(format!(
                    "{} {} ({})",
                    entry["outcome"].as_str().unwrap_or("?"),
                    tag,
                    entry["reason"].as_str().unwrap_or("")
                )));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn commits(&self) -> anyhow::Result<usize> {
        Ok(git(&self.repo, &["rev-list", "--count", "HEAD"])
            .await?
            .trim()
            .parse()?)
    }
}

/// A hook URL with its secret token shortened, for printing.
fn redact_token(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, token)) if token.len() > 8 => format!("{base}/{}…", &token[..6]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod wording {
    use serde_json::json;

    use super::event_outcome;

    #[test]
    fn an_event_without_delivery_says_so_and_why() {
        assert_eq!(
            event_outcome(&json!({"status": "accepted", "reason": null}), 1),
            "accepted, 1 delivery"
        );
        assert_eq!(
            event_outcome(&json!({"status": "accepted", "reason": null}), 2),
            "accepted, 2 deliveries"
        );
        assert_eq!(
            event_outcome(
                &json!({"status": "accepted", "reason": "not newer than 1.1.1-production-201201-120000"}),
                0
            ),
            "accepted, no delivery: not newer than 1.1.1-production-201201-120000"
        );
    }
}
