//! Flux image automation: an `ImageRepository` that scans the repository and
//! an `ImagePolicy` that picks the channel's newest tag.
//!
//! `filterTags.pattern` keeps the channel's tags only; `policy.semver` then
//! orders them by SemVer precedence of the tag itself, which is the channel
//! order (TAG-8, TAG-9). The requirement becomes the semver range, each bound
//! with the pre-release `-0` so that Masterminds/semver admits tags at all.

use super::{Channel, header, quote};

pub fn recipe(channel: &Channel) -> String {
    let policy = format!("{}-{}", channel.name, channel.stage);
    let mut out = header("Flux image automation", channel);
    out.push_str(&format!(
        "#\n\
         # filterTags.pattern is the tag grammar with the stage fixed: tags of\n\
         # other stages and non-tagcast tags are never candidates. policy.semver\n\
         # orders the rest by SemVer precedence, which is tagcast's channel order.\n\
         # Both bounds of the range name the pre-release -0: Flux skips a\n\
         # pre-release version unless the range names one, and every tagcast tag\n\
         # is a pre-release in its SemVer view (spec/tags.md TAG-8).\n\
         #\n\
         # Limits:\n\
         # - Short-form tags (1.1-{stage}-...) match the pattern but Flux parses\n\
         #   tags as strict SemVer and skips them: push canonical tags (TAG-6).\n\
         # - Flux writes the newest tag of the channel whatever the workload runs:\n\
         #   a workload on a newer tag that has left the registry is downgraded,\n\
         #   one on the short form of the newest tag is moved to its canonical form.\n\
         #\n\
         # Mark the image in your manifests with the setter\n\
         #   image: {image}:<tag> # {{\"$imagepolicy\": \"flux-system:{policy}\"}}\n\
         # and let an ImageUpdateAutomation commit the updates.\n",
        stage = channel.stage,
        image = channel.image,
    ));
    out.push_str(&format!(
        "---\n\
         apiVersion: image.toolkit.fluxcd.io/v1\n\
         kind: ImageRepository\n\
         metadata:\n  \
           name: {name}\n  \
           namespace: flux-system\n\
         spec:\n  \
           image: {image}\n  \
           interval: 5m\n\
         ---\n\
         apiVersion: image.toolkit.fluxcd.io/v1\n\
         kind: ImagePolicy\n\
         metadata:\n  \
           name: {policy}\n  \
           namespace: flux-system\n\
         spec:\n  \
           imageRepositoryRef:\n    \
             name: {name}\n  \
           filterTags:\n    \
             pattern: {pattern}\n  \
           policy:\n    \
             semver:\n      \
               range: {range}\n",
        name = channel.name,
        image = channel.image,
        pattern = quote(&channel.pattern()),
        range = quote(&channel.range.masterminds()),
    ));
    out
}
