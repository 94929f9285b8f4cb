//! `tagcast deployer …`: the reference CD endpoint (`reference/deployer`),
//! and `hold`, `release`, `status` acting on its state file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use tagcast_deployer::Limits;
use tagcast_deployer::apply::Applier;
use tagcast_deployer::apply::exec::Exec;
use tagcast_deployer::apply::gitops::Gitops;
use tagcast_deployer::apply::kubectl::{Kubectl, WorkloadKind};
use tagcast_deployer::apply::kubernetes::{Access, Kubernetes, Token};
use tagcast_deployer::store::{Outcome, Store};
use tagcast_deployer::{Config, DEFAULT_BODY_LIMIT};
use tagcast_spec::webhook::Secret;
use tagcast_spec::{ApiRequirement, Repository, Stage, Tag, UpdatePolicy};

const SERVE_EXAMPLES: &str = "Examples:
  # Commit digest-pinned updates of the production WES image to a GitOps
  # repository:
  tagcast deployer --listen 0.0.0.0:8080 --secret \"$SECRET\" \\
    --state /var/lib/tagcast/deployer.db \\
    --image elixircloud/cwl-wes --stage production --api-requirement '^1.1' \\
    --apply gitops --repo /srv/deploy \\
    --path overlays/prod/kustomization.yaml --branch main

  # Run the example upgrade script (reference/deploy/upgrade.sh) per update:
  tagcast deployer --secret \"$SECRET\" --state deployer.db \\
    --image elixircloud/cwl-wes --stage demo \\
    --apply exec --command 'reference/deploy/upgrade.sh'

  # kubectl set image + rollout status in the current kubectl context:
  tagcast deployer --secret \"$SECRET\" --state deployer.db \\
    --image elixircloud/cwl-wes --stage staging \\
    --apply kubectl --namespace ga4gh --deployment cwl-wes --container wes

  # Patch the Deployment through the Kubernetes API with the pod's service
  # account:
  TAGCAST_SECRET=\"$SECRET\" TAGCAST_IMAGE=elixircloud/cwl-wes \\
    TAGCAST_STAGE=production TAGCAST_STATE=/var/lib/tagcast/deployer.db \\
    tagcast deployer --apply kubernetes --namespace ga4gh --deployment cwl-wes

  # Try it out, keeping nothing (a replayed callback is applied again after
  # a restart):
  tagcast deployer --ephemeral --secret \"$SECRET\" \\
    --image elixircloud/cwl-wes --stage demo \\
    --apply exec --command 'echo \"$TAGCAST_REFERENCE\"'

  # During an incident, from a shell next to the running deployer:
  tagcast deployer hold --state /var/lib/tagcast/deployer.db --reason 'INC-42'
  tagcast deployer status --state /var/lib/tagcast/deployer.db
  tagcast deployer release --state /var/lib/tagcast/deployer.db

Every flag can also be set by the environment variable named after it
(--kubectl-args <-> TAGCAST_KUBECTL_ARGS). Several secrets (key rotation) are
given by repeating --secret, separated by commas in TAGCAST_SECRET, or one
per line in --secret-file. Secrets are never logged. Logs go to standard
error, as text (coloured only on a terminal) or JSON (--log-format json);
TAGCAST_LOG (e.g. debug) sets the level. GET /healthz and GET /metrics
(Prometheus) are always served; GET /status, POST /hold and POST /release
only with --admin-token, given as Authorization: Bearer.

Exit codes: 0 stopped on SIGINT/SIGTERM, 2 could not run.";

/// `tagcast deployer`: serve, or act on the state file.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true, after_help = SERVE_EXAMPLES)]
pub struct DeployerCommand {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Stop applying updates (they stay queued) until `release`.
    #[command(after_help = "Examples:\n  tagcast deployer hold --state deployer.db --reason 'INC-42: migration'")]
    Hold(HoldArgs),
    /// Apply updates again; the newest queued update per image is applied.
    #[command(after_help = "Examples:\n  tagcast deployer release --state deployer.db")]
    Release(StateArgs),
    /// Queue a failed update again once its cause is fixed (exit 1 when
    /// there is none).
    #[command(
        after_help = "Examples:\n  tagcast deployer retry --state deployer.db    # the newest failed event\n  \
        tagcast deployer retry --state deployer.db --event evt_01JDQ4Z8Y1"
    )]
    Retry(RetryArgs),
    /// Show the hold flag, the applied tag per image and the history.
    #[command(after_help = "Examples:\n  tagcast deployer status --state deployer.db\n  \
        tagcast deployer status --state deployer.db --format json --history 100")]
    Status(StatusArgs),
}

#[derive(Debug, Args)]
struct StateArgs {
    /// The deployer's state file.
    #[arg(long, env = "TAGCAST_STATE", value_name = "PATH")]
    state: PathBuf,
}

#[derive(Debug, Args)]
struct HoldArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Why, for the status and the history.
    #[arg(long, env = "TAGCAST_REASON", value_name = "TEXT")]
    reason: Option<String>,
}

#[derive(Debug, Args)]
struct RetryArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The event to retry; default: the newest failed one.
    #[arg(long, value_name = "ID")]
    event: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// How many history entries to show, newest first.
    #[arg(long, default_value_t = 20, value_name = "N")]
    history: u32,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Lines for people; coloured only when standard error is a terminal.
    Text,
    /// One JSON object per line, never with terminal colour codes.
    Json,
}

/// A command-line value that is a secret: its `Debug` (clap's and ours)
/// never shows it.
#[derive(Clone)]
struct Sensitive(String);

impl std::str::FromStr for Sensitive {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Run --command with TAGCAST_IMAGE, TAGCAST_TAG, … in its environment.
    Exec,
    /// kubectl set image + kubectl rollout status.
    Kubectl,
    /// Rewrite --path in the git repository --repo, commit and push.
    Gitops,
    /// Strategic-merge PATCH through the Kubernetes API.
    Kubernetes,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, env = "TAGCAST_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// A signing secret whsec_…; repeat (or separate by commas) to accept
    /// several during a key rotation.
    #[arg(
        long,
        env = "TAGCAST_SECRET",
        value_delimiter = ',',
        value_name = "WHSEC",
        hide_env_values = true
    )]
    secret: Vec<Sensitive>,
    /// A file with one secret per line (e.g. a mounted Kubernetes Secret).
    #[arg(long, env = "TAGCAST_SECRET_FILE", value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// The state file (SQLite, created 0600): seen ids, queued updates,
    /// applied tags, hold flag, history. Required unless --ephemeral.
    #[arg(long, env = "TAGCAST_STATE", value_name = "PATH")]
    state: Option<PathBuf>,
    /// Keep the state in memory instead of --state: a queued update is
    /// lost on a crash and a captured callback is accepted again after a
    /// restart. For trying things out only.
    #[arg(long, env = "TAGCAST_EPHEMERAL", conflicts_with = "state")]
    ephemeral: bool,
    /// How long a client may take to send a request's headers, in
    /// seconds (also the idle time of a kept-alive connection).
    #[arg(
        long,
        env = "TAGCAST_HEADER_READ_TIMEOUT",
        default_value_t = 10.0,
        value_name = "SECONDS"
    )]
    header_read_timeout: f64,
    /// How long a client may take to send a request's body, in seconds.
    #[arg(
        long,
        env = "TAGCAST_BODY_READ_TIMEOUT",
        default_value_t = 30.0,
        value_name = "SECONDS"
    )]
    body_read_timeout: f64,
    /// How long a request may take from its body to the answer, in seconds.
    #[arg(
        long,
        env = "TAGCAST_REQUEST_TIMEOUT",
        default_value_t = 60.0,
        value_name = "SECONDS"
    )]
    request_timeout: f64,
    /// The most connections open at once; one more is answered 503 and closed.
    #[arg(long, env = "TAGCAST_MAX_CONNECTIONS", default_value_t = tagcast_deployer::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,
    /// Log format.
    #[arg(
        long,
        env = "TAGCAST_LOG_FORMAT",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    log_format: LogFormat,
    /// The path callbacks are POSTed to.
    #[arg(long, env = "TAGCAST_ROUTE", default_value = "/", value_name = "PATH")]
    route: String,
    /// A repository this deployer deploys (Docker Hub names are
    /// normalized); repeat for several.
    #[arg(long, env = "TAGCAST_IMAGE", value_delimiter = ',', value_name = "REPO")]
    image: Vec<String>,
    /// The stage it deploys: production, staging, development or demo.
    #[arg(long, env = "TAGCAST_STAGE")]
    stage: Option<Stage>,
    /// Which api-versions it accepts (Cargo-style, e.g. ^1.1).
    #[arg(long, env = "TAGCAST_API_REQUIREMENT", default_value = "*", value_name = "REQ")]
    api_requirement: String,
    /// The tag deployed now, before the first update (so that an older
    /// one is refused); ignored once the state knows an applied tag.
    #[arg(long, env = "TAGCAST_CURRENT_TAG", value_name = "TAG")]
    current_tag: Option<String>,
    /// Largest accepted body in bytes (413 beyond): 65536 to 1048576, the
    /// bounds of callbacks.md CB-9.
    #[arg(
        long,
        env = "TAGCAST_BODY_LIMIT",
        default_value_t = DEFAULT_BODY_LIMIT,
        value_name = "BYTES",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(65_536..=1_048_576)
    )]
    body_limit: usize,
    /// Largest accepted clock difference of webhook-timestamp, in seconds.
    #[arg(long, env = "TAGCAST_TOLERANCE", default_value_t = 300, value_name = "SECONDS")]
    tolerance: u64,
    /// An origin granted by the CloudEvents validation handshake; repeat
    /// for several. Default: any.
    #[arg(long, env = "TAGCAST_ALLOWED_ORIGIN", value_delimiter = ',', value_name = "HOST")]
    allowed_origin: Vec<String>,
    /// Enables GET /status, POST /hold and POST /release for requests
    /// carrying this token as Authorization: Bearer (never in the URL).
    #[arg(long, env = "TAGCAST_ADMIN_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    admin_token: Option<Sensitive>,
    /// How upgrades are applied.
    #[arg(long, env = "TAGCAST_APPLY", value_enum, value_name = "MODE")]
    apply: Option<Mode>,
    /// exec: the command, run by sh -c.
    #[arg(long, env = "TAGCAST_COMMAND", value_name = "CMD")]
    command: Option<String>,
    /// exec, kubectl, gitops: how long one command may run, in seconds.
    #[arg(long, env = "TAGCAST_TIMEOUT", default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
    /// kubectl, kubernetes: the namespace.
    #[arg(long, env = "TAGCAST_NAMESPACE", value_name = "NS")]
    namespace: Option<String>,
    /// kubectl, kubernetes: the workload's name.
    #[arg(long, env = "TAGCAST_DEPLOYMENT", value_name = "NAME")]
    deployment: Option<String>,
    /// kubectl, kubernetes: the workload's kind.
    #[arg(long, env = "TAGCAST_KIND", default_value = "deployment", value_name = "KIND")]
    kind: String,
    /// kubectl, kubernetes: the container to update. kubectl: default
    /// every container (*); kubernetes: every container running --image.
    #[arg(long, env = "TAGCAST_CONTAINER", value_name = "NAME")]
    container: Option<String>,
    /// kubectl, kubernetes: how long the rollout may take, in seconds
    /// (0: do not wait). kubectl rolls back a rollout that fails.
    #[arg(long, env = "TAGCAST_ROLLOUT_TIMEOUT", default_value_t = 300, value_name = "SECONDS")]
    rollout_timeout: u64,
    /// kubectl: extra arguments for every kubectl call, split at spaces
    /// (e.g. "--context prod", or "--local -f manifest.yaml -o yaml").
    #[arg(long, env = "TAGCAST_KUBECTL_ARGS", allow_hyphen_values = true, value_name = "ARGS")]
    kubectl_args: Option<String>,
    /// kubectl: the kubectl binary.
    #[arg(long, env = "TAGCAST_KUBECTL", default_value = "kubectl", value_name = "PATH")]
    kubectl: PathBuf,
    /// kubernetes: a kubeconfig (default: the pod's service account).
    #[arg(long, env = "TAGCAST_KUBECONFIG", value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// kubernetes: the kubeconfig context (default: its current context).
    #[arg(long, env = "TAGCAST_CONTEXT", value_name = "NAME")]
    context: Option<String>,
    /// kubernetes: the API server URL, instead of a kubeconfig.
    #[arg(long, env = "TAGCAST_KUBE_SERVER", value_name = "URL")]
    kube_server: Option<String>,
    /// kubernetes: a file holding the bearer token for --kube-server.
    #[arg(long, env = "TAGCAST_KUBE_TOKEN_FILE", value_name = "PATH")]
    kube_token_file: Option<PathBuf>,
    /// kubernetes: CA certificates (PEM) for --kube-server.
    #[arg(long, env = "TAGCAST_KUBE_CA", value_name = "PATH")]
    kube_ca: Option<PathBuf>,
    /// gitops: the repository's work tree.
    #[arg(long, env = "TAGCAST_REPO", value_name = "DIR")]
    repo: Option<PathBuf>,
    /// gitops: the manifest or kustomization, relative to --repo.
    #[arg(long, env = "TAGCAST_PATH", value_name = "FILE")]
    path: Option<PathBuf>,
    /// gitops: the branch to commit to (default: the checked-out one).
    #[arg(long, env = "TAGCAST_BRANCH", value_name = "BRANCH")]
    branch: Option<String>,
    /// gitops: the remote to pull from and push to, checked at start
    /// (default: origin, or the only one; none: commit locally, never
    /// fetch or push).
    #[arg(long, env = "TAGCAST_REMOTE", value_name = "NAME")]
    remote: Option<String>,
    /// gitops: the commit author when git has none configured.
    #[arg(
        long,
        env = "TAGCAST_GIT_AUTHOR",
        default_value = "tagcast-deployer <tagcast-deployer@localhost>",
        value_name = "NAME <EMAIL>"
    )]
    git_author: String,
}

pub fn run(command: DeployerCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command.action {
            Some(Action::Hold(args)) => hold(args).await,
            Some(Action::Release(args)) => release(args).await,
            Some(Action::Retry(args)) => retry(args).await,
            Some(Action::Status(args)) => status(args).await,
            None => serve(command.serve).await,
        }
    })
}

async fn open(args: &StateArgs) -> anyhow::Result<Store> {
    if !args.state.exists() {
        bail!(
            "state file {} does not exist (start the deployer with --state first)",
            args.state.display()
        );
    }
    Store::open(&args.state).await.context("cannot open the state file")
}

async fn hold(args: HoldArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.state).await?;
    store.set_hold(true, args.reason.as_deref()).await?;
    store.close().await;
    println!("on hold: updates are queued, not applied, until `tagcast deployer release`");
    Ok(ExitCode::SUCCESS)
}

async fn release(args: StateArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args).await?;
    store.set_hold(false, None).await?;
    let pending = store.status(0).await?.pending;
    store.close().await;
    println!("released: {pending} queued event(s) will be applied (the newest per image)");
    Ok(ExitCode::SUCCESS)
}

async fn retry(args: RetryArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.state).await?;
    let queued = store.retry(args.event.as_deref()).await?;
    store.close().await;
    match queued {
        Some(id) => {
            println!("queued {id} again; the deployer applies it unless something newer was applied meanwhile");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            match &args.event {
                Some(id) => println!("{id} is not a failed update that can be retried"),
                None => println!("no failed update to retry"),
            }
            Ok(ExitCode::from(1))
        }
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.state).await?;
    let status = store.status(args.history).await?;
    store.close().await;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        Format::Text => {
            match (&status.hold.held, &status.hold.reason) {
                (true, Some(reason)) => println!("hold: on hold since {} ({reason})", since(&status.hold.since)),
                (true, None) => println!("hold: on hold since {}", since(&status.hold.since)),
                (false, _) => println!("hold: released"),
            }
            println!("queued: {}", status.pending);
            println!("applied:");
            if status.applied.is_empty() {
                println!("  (nothing yet)");
            }
            for a in &status.applied {
                let digest = if a.digest.is_empty() {
                    String::new()
                } else {
                    format!("@{}", a.digest)
                };
                println!("  {}:{}{digest}  {}", a.image, a.tag, a.applied_at);
            }
            println!("history (newest first):");
            for h in &status.history {
                let outcome = match h.outcome {
                    Outcome::Applied => "applied",
                    Outcome::Refused => "refused",
                    Outcome::Superseded => "superseded",
                    Outcome::Failed => "failed",
                };
                println!(
                    "  {}  {outcome:<10} {}:{}  {}  ({})",
                    h.at, h.image, h.tag, h.reason, h.event_id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn since(at: &Option<String>) -> &str {
    at.as_deref().unwrap_or("?")
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAGCAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // A log collector reads JSON: colour codes would corrupt its fields.
        LogFormat::Json => builder.with_ansi(false).json().try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

fn secrets(args: &ServeArgs) -> anyhow::Result<Vec<Secret>> {
    let mut texts: Vec<String> = args.secret.iter().map(|s| s.0.trim().to_owned()).collect();
    if let Some(file) = &args.secret_file {
        let content = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        texts.extend(
            content
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    texts.retain(|t| !t.is_empty());
    if texts.is_empty() {
        bail!("no secret: give --secret whsec_… (or TAGCAST_SECRET, or --secret-file)");
    }
    texts
        .iter()
        .enumerate()
        // The message names the position, never the value.
        .map(|(i, t)| Secret::parse(t).with_context(|| format!("secret number {}", i + 1)))
        .collect()
}

fn required<'a, T>(value: &'a Option<T>, flag: &str, mode: &str) -> anyhow::Result<&'a T> {
    value.as_ref().with_context(|| format!("--apply {mode} needs {flag}"))
}

fn applier(args: &ServeArgs, mode: Mode) -> anyhow::Result<Applier> {
    let timeout = Duration::from_secs(args.timeout);
    let rollout_timeout = Duration::from_secs(args.rollout_timeout);
    let kind = || args.kind.parse::<WorkloadKind>().map_err(anyhow::Error::msg);
    Ok(match mode {
        Mode::Exec => Applier::Exec(Exec {
            command: required(&args.command, "--command", "exec")?.clone(),
            timeout,
        }),
        Mode::Kubectl => Applier::Kubectl(Kubectl {
            program: args.kubectl.clone().into_os_string(),
            namespace: args.namespace.clone(),
            name: required(&args.deployment, "--deployment", "kubectl")?.clone(),
            kind: kind()?,
            container: args.container.clone(),
            args: args
                .kubectl_args
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            rollout_timeout,
            timeout,
        }),
        Mode::Gitops => {
            let repo = required(&args.repo, "--repo", "gitops")?.clone();
            let path = required(&args.path, "--path", "gitops")?.clone();
            if path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                bail!(
                    "--path {} must be relative to --repo and stay inside it",
                    path.display()
                );
            }
            if !repo.join(&path).is_file() {
                bail!("--path {} is not a file in {}", path.display(), repo.display());
            }
            Applier::Gitops(Gitops {
                repo,
                path,
                branch: args.branch.clone(),
                remote: args.remote.clone(),
                author: args.git_author.clone(),
                timeout,
            })
        }
        Mode::Kubernetes => {
            let access = if let Some(server) = &args.kube_server {
                Access {
                    server: server.trim_end_matches('/').to_owned(),
                    token: args.kube_token_file.clone().map(Token::File),
                    ca_pem: match &args.kube_ca {
                        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
                        None => None,
                    },
                    identity_pem: None,
                    insecure: false,
                }
            } else if let Some(path) = &args.kubeconfig {
                Access::from_kubeconfig(path, args.context.as_deref()).map_err(anyhow::Error::msg)?
            } else {
                Access::in_cluster().map_err(|e| {
                    anyhow::anyhow!(
                        "--apply kubernetes needs --kube-server, --kubeconfig or a pod's service account: {e}"
                    )
                })?
            };
            access.check_transport().map_err(anyhow::Error::msg)?;
            Applier::Kubernetes(Kubernetes {
                access,
                namespace: required(&args.namespace, "--namespace", "kubernetes")?.clone(),
                name: required(&args.deployment, "--deployment", "kubernetes")?.clone(),
                kind: kind()?,
                container: args.container.clone(),
                rollout_timeout,
                timeout,
            })
        }
    })
}

fn config(args: &ServeArgs) -> anyhow::Result<Config> {
    let secrets = secrets(args)?;
    if args.image.is_empty() {
        bail!("no image: give --image REPO (the repository this deployer deploys)");
    }
    let images = args
        .image
        .iter()
        .map(|i| Repository::parse(i.trim()).with_context(|| format!("--image {i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stage = args
        .stage
        .context("no stage: give --stage production|staging|development|demo")?;
    let requirement = ApiRequirement::parse(&args.api_requirement).context("--api-requirement")?;
    let mode = args
        .apply
        .context("no apply mode: give --apply exec|kubectl|gitops|kubernetes")?;
    if !args.route.starts_with('/') {
        bail!("--route {} must start with /", args.route);
    }
    let mut config = Config::new(
        secrets,
        images,
        UpdatePolicy { stage, requirement },
        applier(args, mode)?,
    );
    config.route = args.route.clone();
    config.body_limit = args.body_limit;
    config.tolerance = Duration::from_secs(args.tolerance);
    config.allowed_origins = args.allowed_origin.iter().map(|o| o.trim().to_owned()).collect();
    config.state = match (&args.state, args.ephemeral) {
        (Some(path), _) => Some(path.clone()),
        (None, true) => None,
        (None, false) => bail!(
            "no --state: give --state PATH (a SQLite file, so that queued updates survive a crash and \
             callbacks seen before a restart are not applied again), or --ephemeral to keep the state in memory"
        ),
    };
    config.limits = Limits {
        header_read_timeout: seconds(args.header_read_timeout, "--header-read-timeout")?,
        body_read_timeout: seconds(args.body_read_timeout, "--body-read-timeout")?,
        request_timeout: seconds(args.request_timeout, "--request-timeout")?,
        max_connections: match args.max_connections {
            0 => bail!("--max-connections must be at least 1"),
            n => n,
        },
    };
    config.admin_token = match args.admin_token.as_ref().map(|t| t.0.trim()) {
        Some(t) if t.len() < 16 => bail!("--admin-token must have at least 16 characters"),
        Some(t) => Some(t.to_owned()),
        None => None,
    };
    if let Some(current) = &args.current_tag {
        let tag = Tag::parse(current).context("--current-tag")?;
        if tag.stage() != stage {
            bail!("--current-tag {current} is not of --stage {stage}");
        }
        config.current_tag = Some(tag);
    }
    Ok(config)
}

/// A positive duration in (fractional) seconds, for the timeouts.
fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        bail!("{flag} {value} must be a number of seconds above 0 and at most 86400");
    }
    Ok(Duration::from_secs_f64(value))
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let config = config(&args)?;
    if config.state.is_none() {
        tracing::warn!(
            "--ephemeral: seen ids, queued updates, applied tags and the hold flag are lost at exit, \
             and a callback seen before a restart is accepted again"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("listening on http://{address}{}", config.route);
    tagcast_deployer::serve(listener, config).await?;
    Ok(ExitCode::SUCCESS)
}
