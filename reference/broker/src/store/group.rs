//! Group commit: the store's single writer of hooks and attempt outcomes.
//!
//! Callers queue their writes and wait; the writer takes everything queued
//! (up to [`MAX_JOBS`]) and writes it in one transaction, then answers each
//! caller once that transaction has committed, so an acknowledged hook is
//! durable (`synchronous = FULL` on SQLite, a committed transaction on
//! PostgreSQL). Hooks that arrive while a transaction commits share the
//! next one: the cost of a commit (an fsync) is paid once per group, not
//! once per hook.
//!
//! When a group's transaction fails, each of its jobs is tried again in a
//! transaction of its own, so one bad write fails only its own caller, who
//! gets the error (a hook answers 5xx, never 2xx).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::backend::Backend;
use super::sql::{finish_batch, record_batch};
use super::{AttemptRecord, Disposition, Millis, NewInboundEvent, StoreError, StoreResult};

/// The most jobs written in one transaction.
const MAX_JOBS: usize = 256;

type Recorded = Vec<(String, Disposition)>;

enum Job {
    Record(Vec<NewInboundEvent>, Millis, oneshot::Sender<StoreResult<Recorded>>),
    Finish(AttemptRecord, oneshot::Sender<StoreResult<()>>),
}

/// The handle callers queue their writes on.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Record(events, _, _) => write!(f, "Record({} events)", events.len()),
            Job::Finish(record, _) => write!(f, "Finish({})", record.delivery_id),
        }
    }
}

impl Writer {
    /// Records a hook's events, deduplicated against the events received
    /// at or after `dedup_since`; returns once they are committed.
    pub(crate) async fn record(&self, events: Vec<NewInboundEvent>, dedup_since: Millis) -> StoreResult<Recorded> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job::Record(events, dedup_since, done))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Records an attempt's outcome; returns once it is committed.
    pub(crate) async fn finish(&self, record: AttemptRecord) -> StoreResult<()> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job::Finish(record, done))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// Starts the writer of `db`; it stops when every [`Writer`] is dropped.
pub(crate) fn spawn<B: Backend>(db: Arc<B>) -> Writer {
    let (jobs, queue) = mpsc::unbounded_channel();
    tokio::spawn(run(db, queue));
    Writer { jobs }
}

async fn run<B: Backend>(db: Arc<B>, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_JOBS);
    while queue.recv_many(&mut jobs, MAX_JOBS).await > 0 {
        let (mut records, mut finishes) = (Vec::new(), Vec::new());
        for job in jobs.drain(..) {
            match job {
                Job::Record(events, since, done) => records.push((events, since, done)),
                Job::Finish(record, done) => finishes.push((record, done)),
            }
        }
        if !records.is_empty() {
            write_records(&*db, records).await;
        }
        if !finishes.is_empty() {
            write_finishes(&*db, finishes).await;
        }
    }
}

async fn write_records<B: Backend>(
    db: &B,
    records: Vec<(Vec<NewInboundEvent>, Millis, oneshot::Sender<StoreResult<Recorded>>)>,
) {
    let hooks: Vec<&[NewInboundEvent]> = records.iter().map(|(events, _, _)| events.as_slice()).collect();
    // One window start for the group: the earliest, so that no hook of it
    // takes for new an event its own window still holds (the starts differ
    // by the moments the hooks arrived at, all from one configuration).
    let since = records.iter().map(|(_, since, _)| *since).min().unwrap_or_default();
    match record_batch(db, &hooks, since).await {
        Ok(results) => {
            for ((_, _, done), result) in records.into_iter().zip(results) {
                let _ = done.send(Ok(result));
            }
        }
        Err(err) if records.len() == 1 => {
            let (_, _, done) = records.into_iter().next().expect("one job");
            let _ = done.send(Err(err));
        }
        Err(err) => {
            tracing::warn!(error = %err, hooks = records.len(), "a group of hooks failed; writing each alone");
            for (events, since, done) in records {
                let result = record_batch(db, &[events.as_slice()], since).await;
                let _ = done.send(result.map(|mut r| r.pop().unwrap_or_default()));
            }
        }
    }
}

async fn write_finishes<B: Backend>(db: &B, finishes: Vec<(AttemptRecord, oneshot::Sender<StoreResult<()>>)>) {
    let records: Vec<&AttemptRecord> = finishes.iter().map(|(r, _)| r).collect();
    match finish_batch(db, &records).await {
        Ok(()) => {
            for (_, done) in finishes {
                let _ = done.send(Ok(()));
            }
        }
        Err(err) if finishes.len() == 1 => {
            let (_, done) = finishes.into_iter().next().expect("one job");
            let _ = done.send(Err(err));
        }
        Err(err) => {
            tracing::warn!(error = %err, attempts = finishes.len(), "a group of attempts failed; writing each alone");
            for (record, done) in finishes {
                let _ = done.send(finish_batch(db, &[&record]).await);
            }
        }
    }
}
