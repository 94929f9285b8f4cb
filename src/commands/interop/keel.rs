//! Keel: annotations on the workload with a `glob:` policy.
//!
//! Keel has no tag filter besides the policy, and its SemVer policies cannot
//! keep stages apart: with `keel.sh/matchPreRelease` on (the default) they
//! never update, because every build has a new pre-release, and with it off
//! (or `all`) they compare pre-releases across stages. `regexp:` applies any
//! matching tag a webhook names, older ones too. `glob:` matches the stage
//! and updates only to a tag that is greater as a string, on webhooks and
//! when polling: the one policy that never crosses stages and never goes
//! back in string order. String order is channel order only while the
//! api-versions compared have the same number of digits.

use super::range::Pinned;
use super::{Channel, header, quote};

pub fn recipe(channel: &Channel) -> String {
    let lo = &channel.range.lo;
    let (pinned, exact) = channel.range.pinned();
    let prefix = match pinned {
        Pinned::Nothing => "*".to_owned(),
        Pinned::Major => format!("{}.*", lo.major),
        Pinned::Minor => format!("{}.{}.*", lo.major, lo.minor),
        Pinned::Patch => format!("{}.{}.{}", lo.major, lo.minor, lo.patch),
    };
    let policy = format!("glob:{prefix}-{}-*", channel.stage);
    let mut out = header("Keel", channel);
    out.push_str(
        "#\n\
         # Merge into the Deployment (StatefulSet, DaemonSet, CronJob) that runs the\n\
         # image. The glob policy keeps the stage; Keel updates, on a webhook or when\n\
         # polling, to a matching tag that is greater than the running one as a\n\
         # string. SemVer policies cannot keep stages apart (matchPreRelease on:\n\
         # never updates; off: crosses stages) and regexp: applies older tags.\n\
         #\n\
         # Limits:\n\
         # - Tags compare as strings: 1.10.0 < 1.9.0 and 10.0.0 < 2.0.0, and a short\n\
         #   form sorts below every canonical tag of its version. Exact only while\n\
         #   the api-versions of the channel have the same number of digits, for\n\
         #   example with one api-version pinned by --api-version '=X.Y.Z'.\n\
         # - The running tag is compared as a string too, whatever its stage: a\n\
         #   workload on latest or on a tag of another stage that sorts higher is\n\
         #   never updated.\n\
         # - A glob checks no grammar: any tag containing the stage between hyphens\n\
         #   matches.\n",
    );
    if !exact {
        out.push_str(&format!(
            "# - A glob spells only a literal prefix: the api-version requirement {req}\n\
             #   cannot be expressed; this policy admits every api-version {prefix}\n\
             #   (wider than {range}).\n",
            req = channel.requirement,
            range = channel.range,
        ));
    }
    if matches!(pinned, Pinned::Minor | Pinned::Patch) {
        out.push_str(&format!(
            "# - Short-form tags ({}.{}-{}-...) do not match the prefix.\n",
            lo.major, lo.minor, channel.stage
        ));
    }
    out.push_str(&format!(
        "---\n\
         apiVersion: apps/v1\n\
         kind: Deployment\n\
         metadata:\n  \
           name: {name}\n  \
           annotations:\n    \
             keel.sh/policy: {policy}\n    \
             keel.sh/trigger: poll\n    \
             keel.sh/pollSchedule: '@every 5m'\n",
        name = channel.name,
        policy = quote(&policy),
    ));
    out
}
