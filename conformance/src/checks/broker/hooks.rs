//! The hook endpoint: deduplication, unknown tokens, Distribution
//! notifications and the registry re-check (API-14, API-15).

use super::Run;
use super::sequence::Observed;
use super::verdicts::{exactly_one, repeat_adds_nothing, tag_of};
use crate::check::{Check, Evidence, Verdict};
use crate::outcome::Level;

check!(
    DEDUP,
    "broker/hooks/dedup",
    "API-15",
    "the same hook request again (same event id) yields no second delivery"
);

check!(
    WRONG_TOKEN,
    "broker/hooks/wrong-token",
    "API-14",
    "a hook request with an unknown token is answered 404 and delivers nothing"
);

check!(
    DISTRIBUTION,
    "broker/hooks/distribution",
    "API-14",
    "a Distribution notification (blob pushes, then the tagged manifest) yields one delivery of the tag"
);

check!(
    RECHECK,
    "broker/hooks/recheck",
    "API-15",
    "a signed push whose digest the registry API (served by the runner) contradicts is not delivered"
);

impl Run<'_> {
    /// API-15: the first push's request again adds no callback.
    pub(super) fn dedup(o: &Observed) -> Verdict {
        match (&o.first, &o.again) {
            (Ok(p), Ok(_)) => repeat_adds_nothing(&o.prod_after_first, &o.prod, &p.tag),
            (Err(e), _) | (_, Err(e)) => Verdict::Error(e.clone()),
        }
    }

    /// API-14: an unknown token is answered 404 and delivers nothing.
    pub(super) fn wrong_token(o: &Observed) -> Verdict {
        match &o.wrong {
            Err(e) => Verdict::Error(e.clone()),
            Ok((request, status, body, _)) => {
                let delivered = o.prod.iter().filter_map(tag_of).any(|t| t == o.t_wrong.to_string());
                if *status != 404 || delivered {
                    Verdict::fail(
                        if delivered {
                            "a hook request with an unknown token was delivered".to_owned()
                        } else {
                            format!("answered {status} instead of 404")
                        },
                        Evidence::new(
                            request.clone(),
                            "404 and no delivery",
                            format!("{status} {body}; delivered: {delivered}"),
                        ),
                    )
                } else {
                    Verdict::pass()
                }
            }
        }
    }

    /// API-14: blob pushes, then the tagged manifest: one delivery.
    pub(super) fn distribution(&self, o: &Observed) -> Verdict {
        match &o.dist {
            Ok(p) => exactly_one(
                &self.receiver.received("dist"),
                &p.tag,
                &format!("Distribution notifications for {}", p.tag),
            ),
            Err(e) => Verdict::Error(e.clone()),
        }
    }

    /// API-15: a push the registry API contradicts is not delivered.
    pub(super) fn recheck(&self, o: &Observed) -> Verdict {
        let p = match &o.forged {
            Err(e) => return Verdict::Error(e.clone()),
            Ok(p) => p,
        };
        let delivered = o.prod.iter().filter_map(tag_of).any(|t| t == p.tag.to_string());
        if delivered {
            Verdict::fail(
                format!("{} was delivered although the registry says it points elsewhere", p.tag),
                Evidence::new(
                    format!(
                        "a signed generic push of {} with digest {}; the registry API at {} answers another digest",
                        p.tag,
                        p.digest,
                        self.receiver.base()
                    ),
                    "no delivery: the broker re-checks tag -> digest and drops the event",
                    format!(
                        "delivered to the production subscriber; the registry API was {}asked",
                        if o.asked { "" } else { "never " }
                    ),
                ),
            )
        } else if !o.asked {
            Verdict::Skip(format!(
                "the broker never asked the registry API the runner serves at {}: nothing to judge",
                self.receiver.base()
            ))
        } else {
            Verdict::pass()
        }
    }
}
