//! The delivery worker: claims due deliveries from the outbox, sends each as
//! a signed CloudEvent (DESIGN.md §6) and records the outcome: success,
//! retry on the schedule with jitter (honouring `Retry-After`), permanent
//! failure, 410 Gone (the subscription is disabled), or dead-letter when the
//! schedule is exhausted.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tagcast_spec::delivery::{AttemptOutcome, classify_after};
use tagcast_spec::webhook::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::AppState;
use crate::ssrf;
use crate::store::{AttemptRecord, Claim, DeliveryState, DueDelivery, Millis, now_ms};

/// The HTTP client of callbacks: no redirects, no proxy, a timeout, and a
/// resolver that drops forbidden addresses (the connect-time SSRF check;
/// with private callbacks allowed, only metadata addresses).
///
/// # Panics
///
/// If the TLS backend cannot be initialized.
pub fn client(timeout: Duration, allow_private: bool, hosts: &ssrf::Hosts) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("tagcast-broker/", env!("CARGO_PKG_VERSION")));
    let builder = builder.dns_resolver(Arc::new(ssrf::FilteringResolver {
        allow_private,
        hosts: hosts.clone(),
    }));
    builder.build().expect("the HTTP client builds")
}

/// Runs the worker until `shutdown` turns true, then lets in-flight
/// attempts finish (up to the shutdown timeout) and releases its claims.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let config = &state.config;
    let client = client(config.delivery_timeout, config.allow_private_callbacks, &config.hosts);
    let permits = Arc::new(Semaphore::new(config.delivery_concurrency));
    let mut tasks = JoinSet::new();
    // A claim outlives the attempt's timeout with room to record the outcome.
    let lease = config.delivery_timeout + Duration::from_secs(30);
    loop {
        if *shutdown.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        let free = permits.available_permits();
        let mut claimed = 0;
        if free > 0 {
            let now = now_ms();
            let claim = Claim {
                worker: &state.worker_id,
                now,
                lease_until: now + millis(lease),
                limit: free as i64,
                per_subscriber: config.delivery_per_subscriber as i64,
            };
            match state.store.claim_deliveries(claim).await {
                Ok(due) => {
                    claimed = due.len();
                    for delivery in due {
                        let permit = permits
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("the semaphore is never closed");
                        let state = state.clone();
                        let client = client.clone();
                        tasks.spawn(async move {
                            attempt(&state, &client, delivery).await;
                            drop(permit);
                        });
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, source = ?std::error::Error::source(&err), "claiming deliveries failed")
                }
            }
        }
        if claimed == 0 || permits.available_permits() == 0 {
            tokio::select! {
                () = tokio::time::sleep(config.poll_interval) => {}
                () = state.wake_worker.notified() => {}
                _ = shutdown.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(config.shutdown_timeout, drain).await.is_err() {
        tracing::warn!("shutdown timeout: abandoning in-flight callbacks; they stay pending and are retried");
        tasks.abort_all();
    }
    if let Err(err) = state.store.release_claims(Some(&state.worker_id)).await {
        tracing::warn!(error = %err, "releasing claims failed; they expire with their lease");
    }
}

/// How long after a newer delivery's outcome may change an older one held
/// back by it looks again (not at once: that would spin on the claim).
const HOLD_BACK_STEP: Duration = Duration::from_secs(1);

fn millis(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether a delivery may still be sent: never a tag that is not newer
/// than what the subscriber last received for this image; a manual
/// redelivery may repeat the same tag.
fn superseded(delivery: &DueDelivery) -> Option<String> {
    let current = delivery.last_tag.as_ref()?;
    match delivery.tag.channel_cmp(current) {
        Some(Ordering::Less) => Some(format!("{} is older than the delivered {current}", delivery.tag)),
        Some(Ordering::Equal) if !delivery.manual => {
            Some(format!("{} is not newer than the delivered {current}", delivery.tag))
        }
        _ => None,
    }
}

async fn attempt(state: &AppState, client: &reqwest::Client, delivery: DueDelivery) {
    let started_at = now_ms();
    let mut record = AttemptRecord {
        delivery_id: delivery.id.clone(),
        worker: state.worker_id.clone(),
        attempted: false,
        started_at,
        duration_ms: 0,
        status: None,
        error: None,
        state: DeliveryState::Failed,
        next_attempt_at: None,
        disable_subscription: None,
    };
    let decided = if !delivery.enabled {
        Some((
            DeliveryState::Failed,
            "the subscription is disabled".to_owned(),
            "failed",
        ))
    } else if let Some(reason) = superseded(&delivery) {
        Some((DeliveryState::Skipped, reason, "skipped"))
    } else {
        ssrf::check_url(&delivery.callback_url, state.config.outbound_policy())
            .err()
            .map(|err| (DeliveryState::Failed, format!("callbackUrl {err}"), "refused"))
    };
    if decided.is_none()
        && let Some(newer) = &delivery.newer_pending
    {
        // Not sent, not failed: the newer tag may already be applied (a
        // broker killed between sending it and recording the 2xx leaves it
        // pending). Once its outcome is recorded this one is superseded, or
        // sent if the newer one failed for good.
        let reason = format!("waiting for the outcome of the newer {} of the same image", newer.tag);
        tracing::info!(delivery = %delivery.id, service = %delivery.service_id, tag = %delivery.tag, %reason, "delivery held back");
        record.state = DeliveryState::Pending;
        record.status = delivery.last_status;
        record.error = Some(reason);
        record.next_attempt_at = Some(newer.settles_at.max(started_at) + millis(HOLD_BACK_STEP));
        state.metrics.delivery("held", None);
        finish(state, record).await;
        return;
    }
    if let Some((next, reason, outcome)) = decided {
        tracing::info!(delivery = %delivery.id, service = %delivery.service_id, tag = %delivery.tag, %reason, "delivery not sent");
        record.state = next;
        record.error = Some(reason);
        state.metrics.delivery(outcome, None);
        finish(state, record).await;
        return;
    }

    let timestamp = chrono::Utc::now().timestamp();
    // The current secret, and the one it replaced while its grace period
    // lasts: one `v1` entry each (CB-5).
    let secrets = std::iter::once(&delivery.secret)
        .chain(&delivery.previous_secret)
        .map(|s| Secret::parse(s))
        .collect::<Result<Vec<_>, _>>();
    let signature = match secrets {
        Ok(secrets) => webhook::signature_header(&secrets, &delivery.id, timestamp, delivery.payload.as_bytes()),
        Err(err) => {
            record.error = Some(format!("the subscription's secret is unusable: {err}"));
            state.metrics.delivery("failed", None);
            finish(state, record).await;
            return;
        }
    };
    let clock = Instant::now();
    let response = client
        .post(&delivery.callback_url)
        .header(CONTENT_TYPE, tagcast_spec::event::CONTENT_TYPE)
        .header(HEADER_ID, &delivery.id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    let elapsed = clock.elapsed();
    record.attempted = true;
    record.duration_ms = millis(elapsed);
    let failed = delivery.attempts + 1 - delivery.schedule_offset;

    let (outcome, retry_after) = match response {
        Ok(response) => {
            let status = response.status();
            record.status = Some(i64::from(status.as_u16()));
            let retry_after = match status {
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => retry_after(response.headers()),
                _ => None,
            };
            if !status.is_success() {
                record.error = Some(format!("HTTP {}", status.as_u16()));
            }
            (
                classify_after(
                    status.as_u16(),
                    delivery.last_status.and_then(|s| u16::try_from(s).ok()),
                ),
                retry_after,
            )
        }
        Err(err) => {
            record.error = Some(describe(&err));
            (AttemptOutcome::Retry, None)
        }
    };
    let label = match outcome {
        AttemptOutcome::Success => {
            record.state = DeliveryState::Succeeded;
            state
                .metrics
                .delivered_after(((now_ms() - delivery.created_at).max(0) as f64) / 1000.0);
            "delivered"
        }
        AttemptOutcome::Gone => {
            record.state = DeliveryState::Failed;
            record.disable_subscription = Some("the callback URL answered 410 Gone".into());
            "gone"
        }
        AttemptOutcome::Permanent | AttemptOutcome::Refused => {
            record.state = DeliveryState::Failed;
            "failed"
        }
        AttemptOutcome::Retry => match next_delay(
            &state.config.retry_schedule,
            state.config.retry_jitter,
            failed,
            retry_after,
        ) {
            Some(delay) => {
                record.state = DeliveryState::Pending;
                record.next_attempt_at = Some(now_ms() + millis(delay));
                "retry"
            }
            None => {
                record.state = DeliveryState::Dead;
                "dead"
            }
        },
    };
    tracing::info!(
        delivery = %delivery.id,
        service = %delivery.service_id,
        image = %delivery.repository,
        tag = %delivery.tag,
        attempt = delivery.attempts + 1,
        status = record.status,
        error = record.error.as_deref(),
        outcome = label,
        "callback attempt"
    );
    state.metrics.delivery(label, Some(elapsed.as_secs_f64()));
    finish(state, record).await;
}

async fn finish(state: &AppState, record: AttemptRecord) {
    let id = record.delivery_id.clone();
    if let Err(err) = state.store.finish_attempt(record).await {
        // The claim expires with its lease and another attempt follows:
        // at-least-once, same webhook-id.
        tracing::error!(delivery = %id, error = %err, "recording a delivery attempt failed");
    }
}

/// An error of the HTTP client, without the URL's query (which may carry a token).
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_request() {
        "request failed"
    } else {
        "error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let seconds = (date.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(seconds.unsigned_abs()))
}

/// The delay after the `failed`-th failed attempt: the schedule's entry with
/// ±`jitter` uniform jitter, at least `Retry-After` (capped at 10 hours,
/// CB-13, not at the schedule's longest entry: a short test schedule must
/// not shorten a receiver's `Retry-After`); `None` when the schedule is
/// exhausted (dead-letter).
pub fn next_delay(schedule: &[Duration], jitter: f64, failed: i64, retry_after: Option<Duration>) -> Option<Duration> {
    let index = usize::try_from(failed.checked_sub(1)?).ok()?;
    let base = *schedule.get(index)?;
    let factor = if jitter > 0.0 {
        1.0 + rand::rng().random_range(-jitter..=jitter)
    } else {
        1.0
    };
    let delay = base.mul_f64(factor);
    Some(match retry_after {
        Some(after) => delay.max(after.min(tagcast_spec::delivery::RETRY_AFTER_CAP)),
        None => delay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_with_jitter_and_retry_after() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(300)];
        for _ in 0..100 {
            let d = next_delay(&schedule, 0.2, 1, None).unwrap();
            assert!((4.0..=6.0).contains(&d.as_secs_f64()), "{d:?}");
        }
        assert_eq!(next_delay(&schedule, 0.0, 2, None), Some(Duration::from_secs(300)));
        assert_eq!(
            next_delay(&schedule, 0.0, 3, None),
            None,
            "dead-letter after the schedule"
        );
        assert_eq!(
            next_delay(&schedule, 0.0, 1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            next_delay(&schedule, 0.0, 1, Some(Duration::from_secs(99_999))),
            Some(Duration::from_secs(10 * 3600)),
            "Retry-After is capped at 10 hours (CB-13)"
        );
        assert_eq!(
            next_delay(&[Duration::from_secs(1)], 0.0, 1, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2)),
            "a schedule shorter than Retry-After does not shorten it"
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        headers.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
