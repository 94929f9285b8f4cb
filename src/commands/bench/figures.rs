//! The broker's figures. Each registers its own services and images
//! (named after the run, so a reused database does not mix runs) and
//! counts only the callbacks of its own tags.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::time::MissedTickBehavior;

use super::envelope::{CONTENT_TYPE, Envelopes, Tags};
use super::load::{self, Percentiles};
use super::receiver::Received;
use super::target::{Broker, client};

/// Everything a figure needs.
pub struct Bench {
    pub broker: Broker,
    pub received: Arc<Received>,
    pub receiver_url: String,
    pub secret: String,
    pub envelopes: Envelopes,
    pub tags: Arc<Tags>,
    /// A short id of this run, in every service id and image path.
    pub run: String,
    /// How long to wait for callbacks after a load ends.
    pub wait: Duration,
    client: reqwest::Client,
}

impl Bench {
    pub fn new(
        broker: Broker,
        received: Arc<Received>,
        receiver_url: String,
        secret: String,
        wait: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            broker,
            received,
            receiver_url,
            secret,
            envelopes: Envelopes::new()?,
            tags: Arc::new(Tags::new()),
            run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            wait,
            client: client(),
        })
    }

    async fn subscribe(&self, name: &str, images: &[String]) -> anyhow::Result<String> {
        let id = format!("bench-{}-{name}", self.run);
        let callback = format!("{}/cb/{name}", self.receiver_url);
        self.broker.subscribe(&id, images, &callback, &self.secret).await
    }

    /// The hook URLs, one per replica.
    fn hooks(&self, path: &str) -> Vec<String> {
        self.broker.urls.iter().map(|u| format!("{u}{path}")).collect()
    }
}

/// Posts one envelope; true on 202.
async fn post_hook(client: &reqwest::Client, hook: &str, body: String) -> bool {
    matches!(
        client.post(hook).header("content-type", CONTENT_TYPE).body(body).send().await,
        Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED
    )
}

/// Ingest, the `/healthz` ceiling and the backlog of the burst.
#[derive(Debug, Serialize)]
pub struct Ingest {
    pub connections: usize,
    pub seconds: f64,
    pub hooks_acknowledged: u64,
    pub hooks_failed: u64,
    pub hooks_per_second: f64,
    pub callbacks_during_burst: u64,
    pub healthz_per_second: f64,
    pub ratio_to_ceiling: f64,
    /// From the last acknowledgement until the newest tag of every image
    /// arrived; `None` if it did not within the wait.
    pub backlog_seconds: Option<f64>,
}

pub async fn ingest(bench: &Bench, connections: usize, duration: Duration) -> anyhow::Result<Ingest> {
    let images: Vec<String> = (0..connections)
        .map(|k| format!("bench/{}/ingest-{k}", bench.run))
        .collect();
    let path = bench.subscribe("ingest", &images).await?;
    let hooks = Arc::new(bench.hooks(&path));
    let last_tags = Arc::new(std::sync::Mutex::new(vec![String::new(); connections]));
    let before = bench.received.accepted();
    let (client, envelopes, tags, images2, last) = (
        bench.client.clone(),
        bench.envelopes.clone(),
        bench.tags.clone(),
        Arc::new(images),
        last_tags.clone(),
    );
    let burst = load::closed_loop(connections, duration, move |k, n| {
        let tag = tags.next();
        let body = envelopes.manifest_push(&images2[k], &tag);
        let hook = hooks[(k + usize::try_from(n).unwrap_or(0)) % hooks.len()].clone();
        let (client, last) = (client.clone(), last.clone());
        async move {
            let ok = post_hook(&client, &hook, body).await;
            if ok {
                last.lock().expect("not poisoned")[k] = tag;
            }
            ok
        }
    })
    .await;
    let during = bench.received.accepted() - before;
    if burst.ok == 0 {
        bail!("no hook was acknowledged ({} failed)", burst.failed);
    }
    let last: Vec<String> = last_tags.lock().expect("not poisoned").clone();
    let received = bench.received.clone();
    let drained = received
        .wait_until(burst.ended + bench.wait, |r| {
            last.iter().filter(|t| !t.is_empty()).all(|t| r.arrivals(t).is_some())
        })
        .await;
    let backlog_seconds = drained.then(|| {
        let newest = last
            .iter()
            .filter_map(|t| bench.received.arrivals(t))
            .map(|a| a.first)
            .max()
            .unwrap_or(burst.ended);
        newest.saturating_duration_since(burst.ended).as_secs_f64()
    });

    let ceiling = healthz(&bench.client, &bench.broker.urls, connections, duration).await;
    let hooks_per_second = burst.per_second();
    Ok(Ingest {
        connections,
        seconds: burst.elapsed.as_secs_f64(),
        hooks_acknowledged: burst.ok,
        hooks_failed: burst.failed,
        hooks_per_second,
        callbacks_during_burst: during,
        healthz_per_second: ceiling,
        ratio_to_ceiling: hooks_per_second / ceiling.max(1e-9),
        backlog_seconds,
    })
}

/// `GET /healthz` answered per second by the same server, closed loop.
pub async fn healthz(client: &reqwest::Client, urls: &[String], connections: usize, duration: Duration) -> f64 {
    let urls: Arc<Vec<String>> = Arc::new(urls.iter().map(|u| format!("{u}/healthz")).collect());
    let client = client.clone();
    load::closed_loop(connections, duration, move |k, n| {
        let url = urls[(k + usize::try_from(n).unwrap_or(0)) % urls.len()].clone();
        let client = client.clone();
        async move {
            match client.get(url).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await
    .per_second()
}

/// End-to-end latency at a fixed rate.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub rate_per_second: u32,
    pub seconds: f64,
    pub images: usize,
    pub hooks_sent: u64,
    pub hooks_failed: u64,
    /// Tags that got a callback: fewer than the hooks when a newer tag of
    /// an image was queued before an older one's first attempt, which is
    /// then superseded and never sent (CB-15).
    pub callbacks_received: u64,
    /// Images whose newest tag got its callback: all of them, or a push
    /// was lost.
    pub newest_received: usize,
    #[serde(flatten)]
    pub percentiles: Option<Percentiles>,
}

pub async fn latency(bench: &Bench, rate: u32, duration: Duration) -> anyhow::Result<Latency> {
    const IMAGES: usize = 64;
    let images: Vec<String> = (0..IMAGES)
        .map(|k| format!("bench/{}/latency-{k}", bench.run))
        .collect();
    let path = bench.subscribe("latency", &images).await?;
    let hooks = bench.hooks(&path);
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sent = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut last = vec![String::new(); IMAGES];
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let k = usize::try_from(i).unwrap_or(0) % IMAGES;
        let tag = bench.tags.next();
        let body = bench.envelopes.manifest_push(&images[k], &tag);
        let hook = hooks[k % hooks.len()].clone();
        let client = bench.client.clone();
        sent.push((tag.clone(), Instant::now()));
        last[k] = tag;
        tasks.spawn(async move { post_hook(&client, &hook, body).await });
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut failed = 0;
    while let Some(ok) = tasks.join_next().await {
        if !matches!(ok, Ok(true)) {
            failed += 1;
        }
    }
    let received = bench.received.clone();
    received
        .wait_until(Instant::now() + bench.wait, |r| {
            last.iter().filter(|t| !t.is_empty()).all(|t| r.arrivals(t).is_some())
        })
        .await;
    let newest_received = last
        .iter()
        .filter(|t| !t.is_empty() && bench.received.arrivals(t).is_some())
        .count();
    let sample: Vec<Duration> = sent
        .iter()
        .filter_map(|(tag, at)| Some(bench.received.arrivals(tag)?.first.saturating_duration_since(*at)))
        .collect();
    Ok(Latency {
        rate_per_second: rate,
        seconds,
        images: IMAGES,
        hooks_sent: total,
        hooks_failed: failed,
        callbacks_received: sample.len() as u64,
        newest_received,
        percentiles: Percentiles::of(sample),
    })
}

/// One push to many subscribers.
#[derive(Debug, Serialize)]
pub struct Fanout {
    pub subscribers: usize,
    pub callbacks_received: u64,
    /// From the hook's POST to the last callback; `None` if not all came.
    pub seconds: Option<f64>,
    pub seed_seconds: f64,
}

pub async fn fanout(bench: &Bench, subscribers: usize) -> anyhow::Result<Fanout> {
    let image = format!("bench/{}/fanout", bench.run);
    let seeding = Instant::now();
    let path = seed(bench, "fan", 0, subscribers, move |_| image.clone()).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let Some(path) = path else {
        bail!("no subscriber to fan out to")
    };
    let tag = bench.tags.next();
    let body = bench
        .envelopes
        .manifest_push(&format!("bench/{}/fanout", bench.run), &tag);
    let hook = bench.hooks(&path)[0].clone();
    let posted = Instant::now();
    if !post_hook(&bench.client, &hook, body).await {
        bail!("the fan-out hook was not acknowledged");
    }
    let want = subscribers as u64;
    let all = bench
        .received
        .wait_until(Instant::now() + bench.wait, |r| {
            r.arrivals(&tag).is_some_and(|a| a.count >= want)
        })
        .await;
    let arrivals = bench.received.arrivals(&tag);
    Ok(Fanout {
        subscribers,
        callbacks_received: arrivals.map_or(0, |a| a.count),
        seconds: all.then(|| arrivals.map_or(0.0, |a| a.last.saturating_duration_since(posted).as_secs_f64())),
        seed_seconds,
    })
}

/// Registers services `name-from` .. `name-to`, each subscribed to
/// `image(i)`, eight at a time; returns the hook path (the same for all:
/// one registry).
async fn seed(
    bench: &Bench,
    name: &str,
    from: usize,
    to: usize,
    image: impl Fn(usize) -> String + Send + Sync + 'static,
) -> anyhow::Result<Option<String>> {
    if to <= from {
        return Ok(None);
    }
    let hook = Arc::new(std::sync::Mutex::new(None));
    let callback = format!("{}/cb/{name}", bench.receiver_url);
    let broker = Arc::new(super::target::Broker::remote(
        &bench.broker.urls[0],
        &bench.broker.token,
    ));
    let (secret, run, name, found) = (bench.secret.clone(), bench.run.clone(), name.to_owned(), hook.clone());
    load::bounded(to - from, 8, move |i| {
        let i = from + i;
        let (broker, callback, secret, found) = (broker.clone(), callback.clone(), secret.clone(), found.clone());
        let id = format!("bench-{run}-{name}-{i}");
        let images = vec![image(i)];
        async move {
            let path = broker.subscribe(&id, &images, &callback, &secret).await?;
            *found.lock().expect("not poisoned") = Some(path);
            Ok(())
        }
    })
    .await
    .context("seeding subscriptions")?;
    let path = hook.lock().expect("not poisoned").clone();
    Ok(path)
}

/// Latency with more and more subscriptions.
#[derive(Debug, Serialize)]
pub struct Scaling {
    pub images: usize,
    pub probes: usize,
    pub levels: Vec<Level>,
    /// p50 at the largest level over p50 at the smallest.
    pub p50_growth: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Level {
    pub subscriptions: usize,
    pub seed_per_second: f64,
    pub probes_received: usize,
    #[serde(flatten)]
    pub percentiles: Option<Percentiles>,
}

/// The probe image has one subscriber; the other subscriptions spread over
/// `images` images that get no pushes. Probes go one at a time: post, wait
/// for the callback, next — latency without queueing.
pub async fn scaling(
    bench: &Bench,
    levels: &[usize],
    images: usize,
    probes: usize,
    mut at_level: impl FnMut(usize),
) -> anyhow::Result<Scaling> {
    let probe = format!("bench/{}/probe", bench.run);
    let path = bench.subscribe("probe", std::slice::from_ref(&probe)).await?;
    let hook = bench.hooks(&path)[0].clone();
    let mut seeded = 0;
    let mut out = Vec::new();
    for &level in levels {
        let started = Instant::now();
        let run = bench.run.clone();
        let count = images.max(1);
        seed(bench, "bg", seeded, level, move |i| {
            format!("bench/{run}/img-{}", i % count)
        })
        .await?;
        let seed_per_second = (level.saturating_sub(seeded)) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        seeded = seeded.max(level);
        at_level(level);
        let mut sample = Vec::new();
        for _ in 0..probes {
            let tag = bench.tags.next();
            let body = bench.envelopes.manifest_push(&probe, &tag);
            let posted = Instant::now();
            if !post_hook(&bench.client, &hook, body).await {
                continue;
            }
            let wait = Instant::now() + bench.wait.min(Duration::from_secs(30));
            if bench.received.wait_until(wait, |r| r.arrivals(&tag).is_some()).await {
                if let Some(a) = bench.received.arrivals(&tag) {
                    sample.push(a.first.saturating_duration_since(posted));
                }
            }
        }
        out.push(Level {
            subscriptions: level,
            seed_per_second,
            probes_received: sample.len(),
            percentiles: Percentiles::of(sample),
        });
    }
    let p50 = |l: Option<&Level>| l.and_then(|l| l.percentiles).map(|p| p.p50_ms);
    let p50_growth = match (p50(out.first()), p50(out.last())) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    };
    Ok(Scaling {
        images,
        probes,
        levels: out,
        p50_growth,
    })
}
