//! The report: the figures, the machine they were measured on, and each
//! target of issue 15 against what was measured; as a table or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::Target;
use super::deployer::Deployer;
use super::figures::{Fanout, Ingest, Latency, Scaling};

/// What was measured; absent figures were not selected.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest: Option<Ingest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<Fanout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    #[serde(skip)]
    pub rss_idle_bytes: Option<u64>,
    #[serde(skip)]
    pub rss_loaded: Option<(usize, u64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss: Option<Rss>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployer: Option<Deployer>,
    /// Callbacks the receiver refused (bad signature or event): must be 0.
    pub callbacks_rejected: u64,
}

#[derive(Debug, Serialize)]
pub struct Rss {
    pub idle_mb: Option<f64>,
    pub subscriptions: Option<usize>,
    pub with_subscriptions_mb: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub memory_mb: Option<u64>,
}

/// One target of issue 15 and what was measured.
#[derive(Debug, Serialize)]
pub struct Check {
    pub figure: &'static str,
    pub target: String,
    pub measured: Option<f64>,
    pub unit: &'static str,
    pub met: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub target: &'static str,
    pub database: String,
    pub replicas: usize,
    pub quick: bool,
    pub machine: Machine,
    pub figures: Figures,
    pub targets: Vec<Check>,
}

fn mb(bytes: u64) -> f64 {
    (bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0
}

impl Report {
    pub fn new(target: Target, database: String, replicas: usize, quick: bool, mut figures: Figures) -> Self {
        if figures.rss_idle_bytes.is_some() || figures.rss_loaded.is_some() {
            figures.rss = Some(Rss {
                idle_mb: figures.rss_idle_bytes.map(mb),
                subscriptions: figures.rss_loaded.map(|(n, _)| n),
                with_subscriptions_mb: figures.rss_loaded.map(|(_, b)| mb(b)),
            });
        }
        let targets = checks(&figures);
        Self {
            tool: "tagcast bench",
            version: env!("CARGO_PKG_VERSION"),
            target: match target {
                Target::Broker => "broker",
                Target::Deployer => "deployer",
            },
            database,
            replicas,
            quick,
            machine: machine(),
            figures,
            targets,
        }
    }

    /// The human-readable form.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "tagcast bench: {} on {} ({} replica(s)){}; {} CPUs ({}), {} MB memory",
            self.target,
            self.database,
            self.replicas,
            if self.quick { ", quick sizes" } else { "" },
            m.nproc,
            m.cpu,
            m.memory_mb.map_or_else(|| "?".into(), |v| v.to_string())
        );
        let f = &self.figures;
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<44} {value}");
        };
        if let Some(i) = &f.ingest {
            row(
                &format!("ingest, {} clients, {:.1} s", i.connections, i.seconds),
                format!(
                    "{:.0} hooks/s ({} acknowledged, {} failed)",
                    i.hooks_per_second, i.hooks_acknowledged, i.hooks_failed
                ),
            );
            row(
                "  callbacks received during the burst",
                i.callbacks_during_burst.to_string(),
            );
            row(
                "  /healthz ceiling, same clients",
                format!("{:.0} requests/s", i.healthz_per_second),
            );
            row("  ingest / ceiling", format!("{:.1} %", i.ratio_to_ceiling * 100.0));
            row("backlog after the burst", opt(i.backlog_seconds, "s", 3));
        }
        if let Some(l) = &f.latency {
            let p = l.percentiles;
            row(
                &format!(
                    "latency hook -> callback at {}/s, {:.1} s",
                    l.rate_per_second, l.seconds
                ),
                p.map_or_else(
                    || "no callback".to_owned(),
                    |p| {
                        format!(
                            "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
                            p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms
                        )
                    },
                ),
            );
            row(
                "  hooks sent / callbacks received",
                format!(
                    "{} / {} ({} failed; the rest superseded, CB-15); {} of {} images on their newest tag",
                    l.hooks_sent, l.callbacks_received, l.hooks_failed, l.newest_received, l.images
                ),
            );
        }
        if let Some(fo) = &f.fanout {
            row(
                &format!("fan-out to {} subscribers", fo.subscribers),
                format!("{} ({} callbacks)", opt(fo.seconds, "s", 3), fo.callbacks_received),
            );
        }
        if let Some(s) = &f.scaling {
            for level in &s.levels {
                row(
                    &format!("p50 with {} subscriptions ({} images)", level.subscriptions, s.images),
                    level.percentiles.map_or_else(
                        || "no callback".to_owned(),
                        |p| {
                            format!(
                                "{} ms (p99 {} ms, {} probes; seeded {:.0}/s)",
                                p.p50_ms, p.p99_ms, level.probes_received, level.seed_per_second
                            )
                        },
                    ),
                );
            }
        }
        if let Some(r) = &f.rss {
            row("broker RSS idle", opt(r.idle_mb, "MB", 1));
            if let Some(n) = r.subscriptions {
                row(
                    &format!("broker RSS with {n} subscriptions"),
                    opt(r.with_subscriptions_mb, "MB", 1),
                );
            }
        }
        if let Some(d) = &f.deployer {
            row(
                &format!("deployer, {} clients, {:.1} s", d.connections, d.seconds),
                format!(
                    "{:.0} valid callbacks/s ({} queued, {} duplicates, {} not newer, {} failed)",
                    d.callbacks_per_second, d.queued, d.duplicates, d.refused_not_newer, d.failed
                ),
            );
            row(
                "  /healthz ceiling",
                format!(
                    "{:.0} requests/s ({:.1} %)",
                    d.healthz_per_second,
                    d.ratio_to_ceiling * 100.0
                ),
            );
        }
        if f.deployer.is_none() {
            row("callbacks refused by the receiver", f.callbacks_rejected.to_string());
        }
        let _ = writeln!(out, "targets (issue 15):");
        for c in &self.targets {
            let verdict = match c.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "not measured",
            };
            let measured = c
                .measured
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.3} {}", c.unit));
            let _ = writeln!(out, "  {:<44} {:<14} {:<16} {verdict}", c.figure, c.target, measured);
        }
        out
    }
}

fn opt(value: Option<f64>, unit: &str, decimals: usize) -> String {
    value.map_or_else(
        || "not reached within --wait".to_owned(),
        |v| format!("{v:.decimals$} {unit}"),
    )
}

fn check(
    figure: &'static str,
    target: &str,
    measured: Option<f64>,
    unit: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Check {
    Check {
        figure,
        target: target.to_owned(),
        measured,
        unit,
        met: measured.map(ok),
    }
}

fn checks(f: &Figures) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(i) = &f.ingest {
        out.push(check("ingest", ">= 5000", Some(i.hooks_per_second), "hooks/s", |v| {
            v >= 5000.0
        }));
        out.push(check(
            "ingest / healthz ceiling",
            ">= 0.10",
            Some(i.ratio_to_ceiling),
            "",
            |v| v >= 0.10,
        ));
        out.push(check("backlog of the burst", "<= 2", i.backlog_seconds, "s", |v| {
            v <= 2.0
        }));
    }
    if let Some(l) = &f.latency {
        let name = if l.rate_per_second == 500 {
            "latency p99 at 500/s"
        } else {
            "latency p99 (rate not 500/s)"
        };
        out.push(check(name, "<= 50", l.percentiles.map(|p| p.p99_ms), "ms", |v| {
            v <= 50.0
        }));
    }
    if let Some(fo) = &f.fanout {
        out.push(check("fan-out", "<= 2", fo.seconds, "s", |v| v <= 2.0));
    }
    if let Some(s) = &f.scaling {
        out.push(check(
            "p50 growth, most / fewest subscriptions",
            "<= 2",
            s.p50_growth,
            "x",
            |v| v <= 2.0,
        ));
    }
    if let Some(r) = &f.rss {
        out.push(check("RSS idle", "<= 30", r.idle_mb, "MB", |v| v <= 30.0));
        if r.subscriptions.is_some() {
            out.push(check(
                "RSS with the most subscriptions",
                "<= 200",
                r.with_subscriptions_mb,
                "MB",
                |v| v <= 200.0,
            ));
        }
    }
    if let Some(d) = &f.deployer {
        out.push(check(
            "deployer callbacks",
            ">= 10000",
            Some(d.callbacks_per_second),
            "callbacks/s",
            |v| v >= 10_000.0,
        ));
    }
    out
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_mb = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024);
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        cpu,
        memory_mb,
    }
}
