//! Which pushes reach which subscriber: stage, api-version, channel
//! order and the clock (TAG-9 to TAG-11, CB-15, CB-18).

use tagcast_spec::Tag;

use super::Run;
use super::sequence::Observed;
use super::verdicts::{count_is, tag_of};
use crate::check::{Check, Evidence, Verdict};
use crate::outcome::Level;

check!(
    STAGE,
    "broker/matching/stage",
    "TAG-11",
    "a tag is delivered only to subscribers of its stage (no cross-stage delivery)"
);

check!(
    API_VERSION,
    "broker/matching/api-version",
    "TAG-10",
    "a tag whose api-version does not match the subscription's requirement is not delivered"
);

check!(
    FUTURE,
    "broker/matching/future",
    "CB-18",
    "a tag dated an hour after the broker's clock is not delivered, also not late (judged once API-10 counts nothing pending)"
);

check!(
    DOWNGRADE,
    "broker/matching/downgrade",
    "CB-15",
    "a tag older than the last one delivered is not delivered (no downgrade)"
);

check!(
    VERSION_ORDER,
    "broker/matching/version-order",
    "TAG-9",
    "channel order is by version, then timestamp: 1.0.9 then 1.0.10 with an older timestamp are both delivered (a broker ordering by timestamp or by string refuses the second)"
);

impl Run<'_> {
    /// TAG-11: the staging tag only to the staging subscriber, production
    /// tags only to production ones.
    pub(super) fn stage(&self, o: &Observed) -> Verdict {
        let p = match &o.staging {
            Ok(p) => p,
            Err(e) => return Verdict::Error(e.clone()),
        };
        let staging_inbox = self.receiver.received("staging");
        let leaked: Vec<String> = o
            .prod
            .iter()
            .chain(self.receiver.received("v2").iter())
            .filter_map(tag_of)
            .filter(|t| t.contains("-staging-"))
            .collect();
        let wrong_way: Vec<String> = staging_inbox
            .iter()
            .filter_map(tag_of)
            .filter(|t| !t.contains("-staging-"))
            .collect();
        if !leaked.is_empty() || !wrong_way.is_empty() {
            Verdict::fail(
                "a tag was delivered to a subscriber of another stage",
                Evidence::new(
                    format!("pushes of production tags and of {}", p.tag),
                    "staging tags only to the staging subscriber, production tags only to production ones",
                    format!("production subscriber got {leaked:?}; staging subscriber got {wrong_way:?}"),
                ),
            )
        } else {
            count_is(&staging_inbox, &p.tag, 1, &format!("a push of {}", p.tag))
        }
    }

    /// TAG-10: the `^2.0` subscriber gets none of the 1.0.x pushes.
    pub(super) fn api_version(&self) -> Verdict {
        let v2 = self.receiver.received("v2");
        if v2.is_empty() {
            Verdict::pass()
        } else {
            Verdict::fail(
                "a subscriber requiring ^2.0 received 1.x tags",
                Evidence::new(
                    "pushes of 1.0.x tags",
                    "no callback to the ^2.0 subscriber",
                    v2.iter().filter_map(tag_of).collect::<Vec<_>>().join(", "),
                ),
            )
        }
    }

    /// CB-18: the future-dated push is not delivered, also not late: judged
    /// once the broker's status counted nothing pending (a warning when it
    /// could not tell).
    pub(super) fn future(&self, o: &Observed) -> Verdict {
        let p = match &o.future {
            Ok(p) => p,
            Err(e) => return Verdict::Error(e.clone()),
        };
        let verdict = count_is(
            &self.receiver.received("prod"),
            &p.tag,
            0,
            &format!("a push of {} (an hour ahead of the runner's clock)", p.tag),
        );
        match (verdict, &o.drained) {
            (Verdict::Pass(evidence), Err(why)) => Verdict::Warn(
                format!(
                    "{why}: judged after a fixed {:?}, so a late delivery would be missed",
                    o.future_window
                ),
                evidence,
            ),
            (verdict, _) => verdict,
        }
    }

    /// CB-15: the older tag after the first was delivered is not.
    pub(super) fn downgrade(o: &Observed) -> Verdict {
        match &o.older {
            Ok(p) => count_is(&o.prod, &p.tag, 0, &format!("{} after {} was delivered", p.tag, o.t1)),
            Err(e) => Verdict::Error(e.clone()),
        }
    }

    /// TAG-9: 1.0.9, then 1.0.10 with an older timestamp; both arrive.
    pub(super) fn version_order(o: &Observed) -> Verdict {
        match (&o.ninth, &o.tenth) {
            (Ok(_), Ok(_)) => {
                // Whether each arrived; how often is one-per-push's business.
                let got: Vec<String> = o.prod.iter().filter_map(tag_of).collect();
                let missing: Vec<String> = [o.v9, o.v10]
                    .iter()
                    .map(Tag::to_string)
                    .filter(|t| !got.contains(t))
                    .collect();
                if missing.is_empty() {
                    Verdict::pass()
                } else {
                    let (v9, v10) = (o.v9, o.v10);
                    Verdict::fail(
                        format!("{} not delivered", missing.join(" and ")),
                        Evidence::new(
                            format!(
                                "a push of {v9}, then of {v10} (newer version, older timestamp, lower as a string)"
                            ),
                            "both delivered: channel order is (major, minor, patch, timestamp)",
                            format!("delivered: {}", got.join(", ")),
                        ),
                    )
                }
            }
            (Err(e), _) | (_, Err(e)) => Verdict::Error(e.clone()),
        }
    }
}
