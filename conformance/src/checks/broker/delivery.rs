//! What a delivery looks like and how the broker retries it: one callback
//! per push, signatures, the event, retries, `Retry-After`, permanent
//! failures and 410 (CB-1, CB-3, CB-10, CB-12 to CB-14, API-15).

use super::sequence::{Observed, RETRY_AFTER_SECONDS};
use super::verdicts::{
    count_of, event_verdict, exactly_one, no_retry, retry_after_verdict, retry_verdict, signature_verdict,
};
use super::{Push, Run};
use crate::check::{Check, Evidence, Verdict};
use crate::outcome::Level;

check!(
    ONE_PER_PUSH,
    "broker/delivery/one-per-push",
    "API-15",
    "a push of a new tag reaches a matching subscriber exactly once"
);

check!(
    SIGNATURE,
    "broker/delivery/signature",
    "CB-3",
    "every callback carries webhook-id, webhook-timestamp and a webhook-signature that verifies with the subscription's secret"
);

check!(
    EVENT,
    "broker/delivery/event",
    "CB-1",
    "every callback is a CloudEvent that validates against image-published.schema.json and names the pushed tag and digest"
);

check!(
    RETRY,
    "broker/delivery/retry",
    "CB-12",
    "a callback answered 500 is retried with the same webhook-id"
);

check!(
    RETRY_AFTER,
    "broker/delivery/retry-after",
    "CB-13",
    "callbacks answered 503 and 429 with Retry-After: 2 are retried with the same webhook-id, not sooner than 2 s later"
);

check!(
    PERMANENT,
    "broker/delivery/permanent",
    "CB-14",
    "a callback answered 400 is not retried: one attempt, while the 500 subscriber's retry arrives"
);

check!(
    GONE,
    "broker/delivery/gone",
    "CB-10",
    "a callback answered 410 unsubscribes: the state reads unsubscribed and nothing more is delivered"
);

impl Run<'_> {
    /// API-15: the first push, one callback to the production subscriber.
    pub(super) fn one_per_push(&self, o: &Observed) -> Verdict {
        match &o.first {
            Err(e) => Verdict::Error(e.clone()),
            Ok(p) => exactly_one(
                &o.prod_after_first,
                &p.tag,
                &format!("a push of {} to {}", p.tag, self.generic_registry),
            ),
        }
    }

    /// CB-3, CB-1: every callback to every subscriber is signed with its
    /// secret and is the event of one of the pushes.
    pub(super) fn signature_and_event(&self, o: &Observed) -> (Verdict, Verdict) {
        let mut all = Vec::new();
        for subscriber in self.subscribers.values() {
            for received in self.receiver.received(subscriber.inbox) {
                all.push((subscriber.clone(), received));
            }
        }
        // Every push, wanted or not: the event check judges the callbacks'
        // form, the matching checks judge which arrived.
        let mut pushes: Vec<Push> = [
            &o.first, &o.older, &o.staging, &o.dist, &o.later, &o.forged, &o.ninth, &o.tenth, &o.future,
        ]
        .into_iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
        pushes.extend(o.wrong.as_ref().ok().map(|(_, _, _, push)| push.clone()));
        (signature_verdict(&all), event_verdict(&all, &pushes))
    }

    /// CB-12: the 500 subscriber's retry.
    pub(super) fn retry(o: &Observed) -> Verdict {
        retry_verdict(&o.retried)
    }

    /// CB-13: the 503 and 429 subscribers' retries, not sooner than asked.
    pub(super) fn retry_after(o: &Observed) -> Verdict {
        retry_after_verdict(&[(503, &o.busy), (429, &o.throttled)], RETRY_AFTER_SECONDS)
    }

    /// CB-14: the 400 subscriber gets one attempt, while the 500
    /// subscriber's retry came.
    pub(super) fn permanent(o: &Observed) -> Verdict {
        match &o.first {
            Err(e) => Verdict::Error(e.clone()),
            Ok(p) if o.retried.len() < 2 => Verdict::Skip(format!(
                "the 500 subscriber got no retry of {} within --timeout, so nothing shows when a retry would have come",
                p.tag
            )),
            Ok(p) => no_retry(
                &o.rejected,
                &format!("a push of {} to a subscriber answering 400", p.tag),
            ),
        }
    }

    /// CB-10: after a 410 the subscription reads unsubscribed and gets
    /// nothing more.
    pub(super) fn gone(&self, o: &Observed) -> Verdict {
        let (state, p) = match (&o.state, &o.later) {
            (_, Err(e)) | (Err(e), _) => return Verdict::Error(e.clone()),
            (Ok(state), Ok(p)) => (state, p),
        };
        let gone = self.receiver.received("gone");
        let after = count_of(&gone, &p.tag);
        if o.gone_first.is_empty() {
            Verdict::fail(
                "the subscriber that answers 410 never got a callback",
                Evidence::new(format!("a push of {}", o.t1), "one callback, answered 410", "none"),
            )
        } else if state != "unsubscribed" || after > 0 {
            Verdict::fail(
                "the subscription stayed active after its endpoint answered 410 Gone",
                Evidence::new(
                    format!("a callback answered 410, then a push of {}", p.tag),
                    "subscription.state unsubscribed and no further callback",
                    format!(
                        "subscription.state {state}; {after} callback(s) of {} after the 410",
                        p.tag
                    ),
                ),
            )
        } else {
            Verdict::pass()
        }
    }
}
