//! `tagcast bench`: measures the reference broker (or the deployer) the
//! way an operator would run it, and prints the figures of issue 15 with
//! the targets next to them. The method of every figure is in `--help`
//! ([`METHOD`]) and in BENCHMARKS.md.
//!
//! Modules: [`target`] starts or reaches the broker, [`receiver`] is the CD
//! endpoint that callbacks go to, [`envelope`] builds the Distribution
//! hooks, [`load`] the closed and open loops, [`figures`] and [`deployer`]
//! the measurements, [`report`] the table, the JSON and the targets,
//! [`plot`] the SVG of latency against subscriptions.

mod deployer;
mod envelope;
mod figures;
mod load;
mod plot;
mod receiver;
mod report;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use tagcast_spec::webhook::Secret;

use report::{Figures, Report};

/// How each figure is measured; shown by `--help`.
pub const METHOD: &str = "Method (every load is on loopback, bounded in count and time):
  The broker is this binary's `tagcast broker`, started as a child process on a
  port the kernel picks (--listen 127.0.0.1:0), with --allow-private-callbacks
  and --verify-digests false (the bench registry is never contacted), on a
  SQLite file in a temporary directory unless --database-url is given. With
  --url the bench measures a running broker instead (no memory figures).
  Callbacks go to a receiver in this process that checks each signature and
  timestamp as a CD endpoint must (CB-5, CB-6), parses the CloudEvent, answers
  204 and notes when each tag arrived. Hooks are Distribution notification
  envelopes shaped like the captured docker-registry 2.8 push, each a tagged
  manifest push with a new tag.

  ingest    --connections clients post hooks closed loop (the next when the
            last was acknowledged with 202, i.e. durably stored) for
            --seconds, to one subscriber per client's image, callbacks flowing.
            Then the same clients GET /healthz for as long: the ceiling of the
            same server in the same run. ratio = hooks/s / healthz/s.
  backlog   from the last acknowledgement of that burst until the newest tag
            of every image has reached the receiver.
  latency   hooks at a fixed --rate (open loop, one ticker) for
            --latency-seconds over 64 images; for each tag, from the start of
            its POST to its first callback: p50, p95, p99, max.
  fanout    --fanout services subscribe to one image; one push; from its POST
            to the last of the callbacks.
  scaling   a probe image with one subscriber; at each --subscriptions level,
            services are added (admin API, 8 at a time) over --images other
            images that get no pushes, then --probes hooks are sent one at a
            time (post, wait for its callback): p50 and p99 per level.
  rss       VmRSS of the broker child from /proc/<pid>/status just after start
            and at the last scaling level.
  deployer  (--target deployer) the reference deployer's routes in this
            process with a SQLite state file, no worker: --connections clients
            post valid signed callbacks closed loop for --seconds, one in ten a
            repeat of the previous one (must be 200), the others new tags
            (202, queued); then its /healthz ceiling.

The load generator and receiver share the machine with the broker, as they
would on a small host; on a shared machine figures vary by 20 % or more, so
compare ratios within one run. Targets are shown beside each figure.";

/// Which program is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The reference broker.
    Broker,
    /// The reference deployer's callback path.
    Deployer,
}

/// A figure that can be selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Figure {
    /// Hooks acknowledged per second, the /healthz ceiling, and the backlog.
    Ingest,
    /// End-to-end latency at a fixed rate.
    Latency,
    /// One push to many subscribers.
    Fanout,
    /// Latency as subscriptions grow.
    Scaling,
    /// Broker memory idle and with the most subscriptions.
    Rss,
}

/// `tagcast bench`: measure the broker or the deployer.
#[derive(Debug, Args)]
#[command(after_long_help = METHOD)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value = "broker")]
    target: Target,
    /// The figures to measure, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    figures: Vec<Figure>,
    /// Small sizes for tests and CI: a few seconds in all.
    #[arg(long)]
    quick: bool,
    /// Measure a running broker at this URL instead of starting one (it must
    /// allow private callbacks and not verify digests).
    #[arg(long, value_name = "URL", requires = "admin_token")]
    url: Option<String>,
    /// The admin token of the broker at --url.
    #[arg(long, env = "TAGCAST_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The database of the started broker: postgres://… (or sqlite://…)
    /// [default: a SQLite file in a temporary directory]. A PostgreSQL
    /// broker needs TAGCAST_SECRET_KEY in the environment.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Brokers started on the same PostgreSQL database; hooks alternate
    /// between them.
    #[arg(long, default_value_t = 1, value_name = "N")]
    replicas: usize,
    /// Concurrent clients of the closed loops [default: 8, quick 4].
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Length of the ingest burst and of the deployer run [default: 10, quick 1].
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<f64>,
    /// Hooks per second of the latency figure [default: 500, quick 100].
    #[arg(long, value_name = "N")]
    rate: Option<u32>,
    /// Length of the latency run [default: 10, quick 1].
    #[arg(long, value_name = "SECONDS")]
    latency_seconds: Option<f64>,
    /// Subscribers of the fan-out push [default: 1000, quick 20].
    #[arg(long, value_name = "N")]
    fanout: Option<usize>,
    /// Subscription levels of the scaling figure, comma-separated
    /// [default: 1000,10000,100000, quick 50,200].
    #[arg(long, value_delimiter = ',', value_name = "N,…")]
    subscriptions: Vec<usize>,
    /// Images the scaling subscriptions spread over [default: 10000, quick 100].
    #[arg(long, value_name = "N")]
    images: Option<usize>,
    /// Probe hooks per scaling level [default: 100, quick 10].
    #[arg(long, value_name = "N")]
    probes: Option<usize>,
    /// How long to wait for callbacks after a load [default: 60, quick 30].
    #[arg(long, value_name = "SECONDS")]
    wait: Option<f64>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the plot of latency against subscriptions as SVG here.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Do not measure: read a report written by --json and write --svg from it.
    #[arg(long, value_name = "FILE", requires = "svg")]
    from: Option<PathBuf>,
}

/// The sizes after --quick and the flags.
#[derive(Debug, Clone)]
struct Sizes {
    connections: usize,
    seconds: Duration,
    rate: u32,
    latency_seconds: Duration,
    fanout: usize,
    subscriptions: Vec<usize>,
    images: usize,
    probes: usize,
    wait: Duration,
}

impl BenchArgs {
    fn sizes(&self) -> anyhow::Result<Sizes> {
        let q = self.quick;
        let seconds = |value: Option<f64>, normal: f64, quick: f64, flag: &str| -> anyhow::Result<Duration> {
            let s = value.unwrap_or(if q { quick } else { normal });
            if !(0.1..=600.0).contains(&s) {
                bail!("{flag} {s} must be between 0.1 and 600 seconds");
            }
            Ok(Duration::from_secs_f64(s))
        };
        let sizes = Sizes {
            connections: self.connections.unwrap_or(if q { 4 } else { 8 }),
            seconds: seconds(self.seconds, 10.0, 1.0, "--seconds")?,
            rate: self.rate.unwrap_or(if q { 100 } else { 500 }),
            latency_seconds: seconds(self.latency_seconds, 10.0, 1.0, "--latency-seconds")?,
            fanout: self.fanout.unwrap_or(if q { 20 } else { 1000 }),
            subscriptions: if self.subscriptions.is_empty() {
                if q { vec![50, 200] } else { vec![1_000, 10_000, 100_000] }
            } else {
                self.subscriptions.clone()
            },
            images: self.images.unwrap_or(if q { 100 } else { 10_000 }),
            probes: self.probes.unwrap_or(if q { 10 } else { 100 }),
            wait: seconds(self.wait, 60.0, 30.0, "--wait")?,
        };
        if !(1..=256).contains(&sizes.connections) {
            bail!("--connections {} must be between 1 and 256", sizes.connections);
        }
        if !(1..=20_000).contains(&sizes.rate) {
            bail!("--rate {} must be between 1 and 20000 hooks per second", sizes.rate);
        }
        if sizes.fanout > 100_000 || sizes.subscriptions.iter().any(|&n| n > 1_000_000) {
            bail!("--fanout is at most 100000 and --subscriptions at most 1000000 each");
        }
        if sizes.subscriptions.windows(2).any(|w| w[0] >= w[1]) {
            bail!("--subscriptions must increase, e.g. 1000,10000,100000");
        }
        if !(1..=1_000).contains(&sizes.probes) {
            bail!("--probes {} must be between 1 and 1000", sizes.probes);
        }
        Ok(sizes)
    }

    fn wants(&self, figure: Figure) -> bool {
        self.figures.is_empty() || self.figures.contains(&figure)
    }
}

/// Runs the bench; exit 0 when it measured (whether targets are met is in
/// the report, not the exit code).
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(from) = &args.from {
        let text = std::fs::read_to_string(from).with_context(|| format!("cannot read {}", from.display()))?;
        let report: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a `tagcast bench --json` report", from.display()))?;
        let svg = plot::render(&report).with_context(|| format!("{} has no scaling figure to plot", from.display()))?;
        let out = args.svg.as_ref().expect("clap requires --svg with --from");
        std::fs::write(out, svg).with_context(|| format!("cannot write {}", out.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let sizes = args.sizes()?;
    if args.replicas == 0 || args.replicas > 8 {
        bail!("--replicas {} must be between 1 and 8", args.replicas);
    }
    if args.replicas > 1 && !args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres")) {
        bail!(
            "--replicas {} needs --database-url postgres://…: one process owns a SQLite file",
            args.replicas
        );
    }
    let postgres = args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres"));
    if postgres && args.url.is_none() && std::env::var_os("TAGCAST_SECRET_KEY").is_none() {
        // Said here rather than by each replica's log.
        bail!(
            "a PostgreSQL broker needs TAGCAST_SECRET_KEY (32 bytes as 64 hex digits or base64): its replicas must \
             use the same key"
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(measure(&args, &sizes))?;
    let value = serde_json::to_value(&report)?;
    if let Some(out) = &args.svg {
        if let Some(svg) = plot::render(&value) {
            std::fs::write(out, svg).with_context(|| format!("cannot write {}", out.display()))?;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(args: &BenchArgs, sizes: &Sizes) -> anyhow::Result<Report> {
    let dir = tempfile::Builder::new()
        .prefix("tagcast-bench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let mut figures = Figures::default();
    let database = match args.target {
        Target::Deployer => {
            figures.deployer = Some(deployer::run(sizes.connections, sizes.seconds, dir.path()).await?);
            "sqlite".to_owned()
        }
        Target::Broker => {
            let database_url = args
                .database_url
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("broker.db").display()));
            let broker = match &args.url {
                Some(url) => target::Broker::remote(url, args.admin_token.as_deref().unwrap_or_default()),
                None => {
                    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
                    target::Broker::spawn(&database_url, args.replicas, &token, dir.path()).await?
                }
            };
            measure_broker(args, sizes, broker, &mut figures).await?;
            match &args.url {
                Some(_) => "remote".to_owned(),
                None if database_url.starts_with("postgres") => "postgres".to_owned(),
                None => "sqlite".to_owned(),
            }
        }
    };
    Ok(Report::new(args.target, database, args.replicas, args.quick, figures))
}

async fn measure_broker(
    args: &BenchArgs,
    sizes: &Sizes,
    broker: target::Broker,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let spawned = args.url.is_none();
    if spawned && args.wants(Figure::Rss) {
        // Let the start-up settle before reading its memory.
        tokio::time::sleep(Duration::from_millis(500)).await;
        figures.rss_idle_bytes = broker.rss_bytes();
    }
    let secret = Secret::generate(rand::random());
    let (receiver_url, received) = receiver::start(secret.clone()).await?;
    let bench = figures::Bench::new(broker, received, receiver_url, secret.expose(), sizes.wait)?;
    if args.wants(Figure::Ingest) {
        figures.ingest = Some(figures::ingest(&bench, sizes.connections, sizes.seconds).await?);
    }
    if args.wants(Figure::Latency) {
        figures.latency = Some(figures::latency(&bench, sizes.rate, sizes.latency_seconds).await?);
    }
    if args.wants(Figure::Fanout) {
        figures.fanout = Some(figures::fanout(&bench, sizes.fanout).await?);
    }
    let top = sizes.subscriptions.last().copied().unwrap_or(0);
    if args.wants(Figure::Scaling) {
        let mut rss = None;
        let scaling = figures::scaling(&bench, &sizes.subscriptions, sizes.images, sizes.probes, |level| {
            if level == top {
                rss = bench.broker.rss_bytes();
            }
        })
        .await?;
        figures.scaling = Some(scaling);
        if args.wants(Figure::Rss) {
            figures.rss_loaded = rss.map(|bytes| (top, bytes));
        }
    }
    figures.callbacks_rejected = bench.received.rejected();
    Ok(())
}
