//! The two ways of loading a server: closed loop (`connections` clients,
//! each sends its next request when the previous one was answered, for a
//! fixed time: "as fast as acknowledged") and the percentiles of a sample.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a closed-loop run did.
#[derive(Debug, Clone, Copy)]
pub struct Loop {
    /// Requests answered as expected.
    pub ok: u64,
    /// Requests answered otherwise, or not at all.
    pub failed: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// When the last answer came.
    pub ended: Instant,
}

impl Loop {
    /// Expected answers per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `connections` loops for `duration`; `request(connection, n)` sends
/// one request and says whether its answer was the expected one.
pub async fn closed_loop<F, Fut>(connections: usize, duration: Duration, request: F) -> Loop
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stop = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let request = request.clone();
        let ok = ok.clone();
        let failed = failed.clone();
        tasks.spawn(async move {
            let mut n = 0;
            while Instant::now() < stop {
                if request(connection, n).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(err) = done {
            if err.is_panic() {
                std::panic::resume_unwind(err.into_panic());
            }
        }
    }
    let ended = Instant::now();
    Loop {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: ended - started,
        ended,
    }
}

/// Runs `count` jobs with at most `workers` at once; stops at the first error.
pub async fn bounded<F, Fut>(count: usize, workers: usize, job: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks: tokio::task::JoinSet<anyhow::Result<()>> = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let job = job.clone();
        let next = next.clone();
        tasks.spawn(async move {
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                if i >= count {
                    return Ok(());
                }
                job(i).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// p50, p95, p99 and max of a sample, in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// `None` for an empty sample.
    pub fn of(mut sample: Vec<Duration>) -> Option<Self> {
        if sample.is_empty() {
            return None;
        }
        sample.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * sample.len() as f64).ceil() as usize).clamp(1, sample.len()) - 1;
            ms(sample[index])
        };
        Some(Self {
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            max_ms: ms(sample[sample.len() - 1]),
        })
    }
}

/// A duration in milliseconds, to 0.001.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sample: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(sample).unwrap();
        assert_eq!((p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms), (50.0, 95.0, 99.0, 100.0));
        assert!(Percentiles::of(Vec::new()).is_none());
    }
}
