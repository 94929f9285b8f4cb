//! Argo CD Image Updater (v1): an `ImageUpdater` resource with the `semver`
//! strategy, the requirement as the constraint and the channel as
//! `allowTags`.
//!
//! The `semver` strategy parses tags leniently (Masterminds `NewVersion`), so
//! short-form tags count as their canonical form, and sorts by SemVer
//! precedence: the channel order (TAG-9).

use super::{Channel, header, quote};

pub fn recipe(channel: &Channel) -> String {
    let name = format!("{}-{}", channel.name, channel.stage);
    // Aliases should be alphanumeric (the alias names annotation keys).
    let alias: String = channel.name.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut out = header("Argo CD Image Updater", channel);
    out.push_str(
        "#\n\
         # allowTags is the tag grammar with the stage fixed: tags of other stages\n\
         # and non-tagcast tags are never candidates. The semver strategy orders\n\
         # the rest by SemVer precedence, which is tagcast's channel order. Both\n\
         # bounds of the constraint name the pre-release -0: Masterminds/semver\n\
         # skips a pre-release version unless the constraint names one, and every\n\
         # tagcast tag is a pre-release in its SemVer view (spec/tags.md TAG-8).\n\
         #\n\
         # Limits:\n\
         # - The updater writes the newest tag of the channel whatever the\n\
         #   application runs: one on a newer tag that has left the registry is\n\
         #   downgraded, one on the short form of the newest tag is moved to its\n\
         #   equivalent canonical form (ties are broken by name).\n\
         # - Set namePattern to your Argo CD Application(s); the resource lives in\n\
         #   their namespace.\n",
    );
    out.push_str(&format!(
        "---\n\
         apiVersion: argocd-image-updater.argoproj.io/v1alpha1\n\
         kind: ImageUpdater\n\
         metadata:\n  \
           name: {name}\n  \
           namespace: argocd\n\
         spec:\n  \
           applicationRefs:\n    \
             - namePattern: {app}\n      \
               images:\n        \
                 - alias: {alias}\n          \
                   imageName: {image}\n          \
                   commonUpdateSettings:\n            \
                     updateStrategy: semver\n            \
                     allowTags: {allow}\n",
        app = quote(&name),
        alias = if alias.is_empty() { "image".to_owned() } else { alias },
        image = quote(&format!("{}:{}", channel.image, channel.range.masterminds())),
        allow = quote(&format!("regexp:{}", channel.pattern())),
    ));
    out
}
