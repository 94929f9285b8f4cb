//! The pushes of the broker target, in an order that makes each check
//! observable, and what the runner saw of them. The checks judge it
//! afterwards (`matching`, `delivery`, `hooks`).

use std::time::Duration;

use chrono::Utc;
use tagcast_spec::{ApiVersion, Stage, Tag};

use super::{Push, Run};
use crate::receiver::Received;

/// The `Retry-After` the busy and throttled subscribers answer first.
pub(super) const RETRY_AFTER_SECONDS: u64 = 2;

/// Everything the push sequence sent and saw.
pub(super) struct Observed {
    /// The first production tag, pushed first and again.
    pub t1: Tag,
    /// The production tag pushed with a wrong token.
    pub t_wrong: Tag,
    /// 1.0.9 and 1.0.10: version order against timestamp order.
    pub v9: Tag,
    pub v10: Tag,
    pub first: Result<Push, String>,
    /// The first push's hook request again.
    pub again: Result<Push, String>,
    /// Older than the first.
    pub older: Result<Push, String>,
    pub staging: Result<Push, String>,
    /// (request, status, body, push) of the wrong-token push.
    pub wrong: Result<(String, u16, String, Push), String>,
    pub dist: Result<Push, String>,
    /// After the 410 subscriber answered.
    pub later: Result<Push, String>,
    /// A push whose digest the registry API contradicts.
    pub forged: Result<Push, String>,
    pub ninth: Result<Push, String>,
    pub tenth: Result<Push, String>,
    /// Dated an hour after the runner's clock, pushed last.
    pub future: Result<Push, String>,
    /// The production inbox after the first push, and before the future one.
    pub prod_after_first: Vec<Received>,
    pub prod: Vec<Received>,
    pub gone_first: Vec<Received>,
    pub retried: Vec<Received>,
    pub busy: Vec<Received>,
    pub throttled: Vec<Received>,
    pub rejected: Vec<Received>,
    /// The 410 subscriber's `subscription.state` before `later`.
    pub state: Result<String, String>,
    /// Whether the broker asked the runner's registry API about `forged`.
    pub asked: bool,
    /// Whether the broker's status (API-10) counted nothing pending at the end.
    pub drained: Result<(), String>,
    /// How long the runner waited for the future push before asking.
    pub future_window: Duration,
}

impl Run<'_> {
    pub(super) async fn push_sequence(&mut self) -> Observed {
        let timeout = self.timeout;
        let now = Utc::now();
        let v1 = ApiVersion::new(1, 0, 0);
        let tag = |stage, minutes: i64| {
            Tag::new(v1, stage, now - chrono::Duration::minutes(minutes)).expect("now is in range")
        };
        let t1 = tag(Stage::Production, 30);
        let t0 = tag(Stage::Production, 120);
        let t_staging = tag(Stage::Staging, 25);
        let t_wrong = tag(Stage::Production, 20);
        let t2 = Tag::new(
            ApiVersion::new(1, 0, 1),
            Stage::Production,
            now - chrono::Duration::minutes(15),
        )
        .expect("in range");
        let t3 = tag(Stage::Production, 10);

        let first = self.push_generic("g1", &t1).await;
        self.receiver.wait_for("prod", 1, timeout).await;
        let gone_first = self.receiver.wait_for("gone", 1, timeout).await;
        tokio::time::sleep(self.quiet).await;
        let prod_after_first = self.receiver.received("prod");

        // The same hook request again, an older tag, a staging tag.
        let again = self.push_generic("g1", &t1).await;
        let older = self.push_generic("g0", &t0).await;
        let staging = self.push_generic("gs", &t_staging).await;
        self.receiver.wait_for("staging", 1, timeout).await;
        // A wrong token.
        let wrong = self.push_wrong_token("gw", &t_wrong).await;
        // Distribution.
        let dist = self.push_distribution(&t2).await;
        self.receiver.wait_for("dist", 1, timeout).await;
        // Retry and 410 take their time.
        let retried = self.receiver.wait_for("retry", 2, timeout).await;
        let busy = self.receiver.wait_for_retry("busy", timeout).await;
        let throttled = self.receiver.wait_for_retry("throttled", timeout).await;
        tokio::time::sleep(self.quiet).await;
        // The 500 subscriber's first retry came, so a broker that retried
        // a 400 would have by now (both answered the same push first).
        let rejected = self.receiver.received("reject");
        let state = self.subscription_state("gone").await;
        let later = self.push_generic("g3", &t3).await;
        self.receiver.wait_for("prod", 2, timeout).await;
        tokio::time::sleep(self.quiet).await;
        // A forged push: the hook says one digest, the registry another.
        let asked_before = self.receiver.registry_requests();
        let forged = self.push_generic_as("gf", &tag(Stage::Production, 5), true).await;
        self.receiver.wait_for("prod", 3, self.quiet * 2).await;
        let asked = self.receiver.registry_requests() > asked_before;

        // Channel order is by version first: 1.0.10 is newer than 1.0.9
        // although its timestamp is older and it sorts lower as a string.
        let v9 = Tag::new(
            ApiVersion::new(1, 0, 9),
            Stage::Production,
            now - chrono::Duration::minutes(8),
        )
        .expect("in range");
        let v10 = Tag::new(
            ApiVersion::new(1, 0, 10),
            Stage::Production,
            now - chrono::Duration::minutes(50),
        )
        .expect("in range");
        let ninth = self.push_generic("g9", &v9).await;
        self.receiver.wait_for_tag("prod", &v9, timeout).await;
        let tenth = self.push_generic("g10", &v10).await;
        self.receiver.wait_for_tag("prod", &v10, timeout).await;
        tokio::time::sleep(self.quiet).await;

        let prod = self.receiver.received("prod");
        // Last, since a broker that delivers it has its channel blocked
        // until that time: a future-dated tag (CB-18), newer in every way.
        let ahead = Tag::new(
            ApiVersion::new(1, 0, 11),
            Stage::Production,
            now + chrono::Duration::hours(1),
        )
        .expect("in range");
        let future = self.push_generic("gfuture", &ahead).await;
        self.receiver.wait_for_tag("prod", &ahead, self.quiet * 2).await;
        // What must not come may come late: wait until the broker reports
        // nothing pending for these subscribers (API-10), not only a fixed
        // window, before judging what did not come.
        let drained = self.drained(&["prod", "staging", "v2", "dist"]).await;
        Observed {
            t1,
            t_wrong,
            v9,
            v10,
            first,
            again,
            older,
            staging,
            wrong,
            dist,
            later,
            forged,
            ninth,
            tenth,
            future,
            prod_after_first,
            prod,
            gone_first,
            retried,
            busy,
            throttled,
            rejected,
            state,
            asked,
            drained,
            future_window: self.quiet * 2,
        }
    }
}
