//! `tagcast interop flux|argocd|keel`: every recipe, read the way its tool
//! reads it, against `conformance/vectors/tags_ordering.json`.
//!
//! Each tool's tag selection is reimplemented here from its documentation
//! and source (see `reference/interop/README.md` for the references):
//!
//! - Flux: `filterTags.pattern` (Go regexp, unanchored match), no extract,
//!   `policy.semver`: tags parsed as strict SemVer (`fluxcd/pkg/version`),
//!   kept when the Masterminds constraint admits them, the greatest wins.
//! - Argo CD Image Updater: `allowTags: regexp:` (unanchored match),
//!   `semver` strategy: tags parsed leniently (Masterminds `NewVersion`, so
//!   `1.1` is `1.1.0`), kept when the constraint admits them, sorted by
//!   precedence with ties broken by tag name, the last wins.
//! - Keel: `glob:` policy (`ryanuber/go-glob`: only `*`, anchored); it updates
//!   to the greatest matching tag that is greater than the running tag as a
//!   string (webhook and poll paths alike).
//!
//! Flux and Argo CD write their pick whenever it differs from the running
//! tag; Keel compares with the running tag. A query's `after` is the running
//! tag; `after: null` (no tag of the channel yet) is a running tag that
//! sorts below every candidate.
//!
//! The cases a tool gets wrong are listed in `KNOWN_LIMITS` with the reason;
//! the test fails when any other case disagrees with tagcast's answer and
//! when a listed case starts agreeing.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_norway::Value as Yaml;

use crate::support::{path, run, stderr, stdout};

const IMAGE: &str = "registry.example/ga4gh/wes";

#[derive(Deserialize)]
struct Vectors {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    description: String,
    tags: Vec<String>,
    latest: Vec<Query>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Query {
    stage: String,
    api_version: String,
    after: Option<String>,
    expected: Option<String>,
}

/// A case a tool cannot express: tool, group description, stage,
/// requirement, current tag, and why the tool's answer differs.
struct Limit {
    tool: &'static str,
    group: &'static str,
    stage: &'static str,
    api_version: &'static str,
    after: Option<&'static str>,
    reason: &'static str,
}

const KNOWN_LIMITS: &[Limit] = &[
    Limit {
        tool: "flux",
        group: "equivalent short and long forms keep input order and are not newer than each other",
        stage: "production",
        api_version: "*",
        after: Some("1.1-production-201108-195630"),
        reason: "Flux skips the short form (strict SemVer) and writes the newest canonical tag whatever \
                 runs: the equivalent 1.1.0-production-201108-195630 replaces 1.1-production-201108-195630",
    },
    Limit {
        tool: "argocd",
        group: "equivalent short and long forms keep input order and are not newer than each other",
        stage: "production",
        api_version: "*",
        after: Some("1.1-production-201108-195630"),
        reason: "equal SemVer versions tie-break by name, the canonical form wins, and the updater writes \
                 it because it differs from the running short form",
    },
    Limit {
        tool: "keel",
        group: "mixed stages and versions",
        stage: "production",
        api_version: "~1.0",
        after: None,
        reason: "string order: 1.0.9 sorts above 1.0.10",
    },
    Limit {
        tool: "keel",
        group: "numeric, not lexicographic, version order",
        stage: "staging",
        api_version: "*",
        after: None,
        reason: "string order: 2.0.0 sorts above 10.0.0",
    },
    Limit {
        tool: "keel",
        group: "numeric, not lexicographic, version order",
        stage: "staging",
        api_version: "^1",
        after: None,
        reason: "string order: 1.9.0 sorts above 1.10.0",
    },
    Limit {
        tool: "keel",
        group: "numeric, not lexicographic, version order",
        stage: "staging",
        api_version: "^1.9",
        after: None,
        reason: "string order: 1.9.0 sorts above 1.10.0 (and the glob 1.* is wider than ^1.9)",
    },
    Limit {
        tool: "keel",
        group: "equivalent short and long forms keep input order and are not newer than each other",
        stage: "production",
        api_version: "*",
        after: Some("1.1-production-201108-195630"),
        reason: "string order: 1.1.0-… sorts above the equivalent 1.1-…, so Keel moves to it",
    },
    Limit {
        tool: "keel",
        group: "a current tag of another stage does not block (never compared across stages)",
        stage: "production",
        api_version: "*",
        after: Some("1.2.0-demo-201108-195630"),
        reason: "Keel compares with the running tag whatever its stage: 1.1.0-production-… sorts below \
                 1.2.0-demo-…, so it is never applied",
    },
];

const TOOLS: [&str; 3] = ["flux", "argocd", "keel"];

fn vectors() -> Vectors {
    let text = std::fs::read_to_string(path("conformance/vectors/tags_ordering.json")).expect("vectors");
    serde_json::from_str(&text).expect("tags_ordering.json parses")
}

/// Runs `tagcast interop` and parses every YAML document it prints.
fn recipe(tool: &str, stage: &str, api_version: &str) -> (String, Vec<Yaml>) {
    let out = run(
        &[
            "interop",
            tool,
            "--image",
            IMAGE,
            "--stage",
            stage,
            "--api-version",
            api_version,
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "interop {tool}: {}", stderr(&out));
    let text = stdout(&out);
    let docs = serde_norway::Deserializer::from_str(&text)
        .map(|doc| Yaml::deserialize(doc).unwrap_or_else(|err| panic!("interop {tool} prints YAML: {err}\n{text}")))
        .filter(|doc| !doc.is_null())
        .collect();
    (text, docs)
}

fn doc<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in {docs:?}"))
}

fn string<'a>(value: &'a Yaml, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is a string: {value:?}"))
}

// ---------------------------------------------------------------------------
// Masterminds/semver v3, as far as the recipes use it.

#[derive(Debug, Clone, PartialEq, Eq)]
struct SemVer {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

impl SemVer {
    /// `StrictNewVersion` (Flux: `fluxcd/pkg/version.ParseVersion`, which
    /// also allows a leading `v`): exactly SemVer 2.0.0.
    fn strict(text: &str) -> Option<Self> {
        static RE: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(
                r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$",
            )
            .unwrap()
        });
        Self::from_captures(&RE, text)
    }

    /// `NewVersion` (Argo CD Image Updater): minor and patch may be left
    /// out and count as 0.
    fn lenient(text: &str) -> Option<Self> {
        static RE: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(
                r"^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$",
            )
            .unwrap()
        });
        Self::from_captures(&RE, text)
    }

    fn from_captures(re: &Regex, text: &str) -> Option<Self> {
        let caps = re.captures(text)?;
        let number = |i: usize| caps.get(i).map_or(Some(0), |m| m.as_str().parse::<u64>().ok());
        Some(SemVer {
            major: number(1)?,
            minor: number(2)?,
            patch: number(3)?,
            pre: caps.get(4).map_or(String::new(), |m| m.as_str().to_owned()),
        })
    }

    /// SemVer precedence (Masterminds `Compare`).
    fn compare(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

fn compare_pre(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// A Masterminds constraint of plain comparators joined by AND (spaces or
/// commas). Wildcards, `~`, `^`, ranges and `||` are not emulated: a
/// recipe that used them would make this test panic rather than guess.
struct Constraint(Vec<(String, SemVer)>);

impl Constraint {
    fn parse(text: &str) -> Self {
        static RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(>=|<=|>|<|=)?(v?[0-9][0-9A-Za-z.+-]*)$").unwrap());
        let comparators = text
            .split([' ', ','])
            .filter(|part| !part.is_empty())
            .map(|part| {
                let caps = RE
                    .captures(part)
                    .unwrap_or_else(|| panic!("comparator {part:?} of {text:?} is not emulated"));
                let version = SemVer::strict(&caps[2])
                    .unwrap_or_else(|| panic!("comparator {part:?} of {text:?} names a full version"));
                (caps.get(1).map_or("=", |m| m.as_str()).to_owned(), version)
            })
            .collect();
        Constraint(comparators)
    }

    /// Masterminds: a pre-release version passes a comparator only if the
    /// comparator names a pre-release too.
    fn check(&self, version: &SemVer) -> bool {
        self.0.iter().all(|(op, bound)| {
            if !version.pre.is_empty() && bound.pre.is_empty() {
                return false;
            }
            let order = version.compare(bound);
            match op.as_str() {
                ">=" => order != Ordering::Less,
                ">" => order == Ordering::Greater,
                "<=" => order != Ordering::Greater,
                "<" => order == Ordering::Less,
                _ => order == Ordering::Equal,
            }
        })
    }
}

// ---------------------------------------------------------------------------
// The tools.

/// What a tool does with a repository's tags and the running tag: the tag
/// it moves to (`None`: nothing), or all the tags it may move to when its
/// choice is not determined.
trait Tool {
    fn update(&self, tags: &[String], running: Option<&str>) -> BTreeSet<Option<String>>;
}

struct Flux {
    pattern: Regex,
    range: Constraint,
}

impl Flux {
    fn from_recipe(docs: &[Yaml]) -> Self {
        let repository = doc(docs, "ImageRepository");
        let policy = doc(docs, "ImagePolicy");
        assert_eq!(string(&repository["spec"]["image"], "image"), IMAGE);
        assert_eq!(
            policy["spec"]["imageRepositoryRef"]["name"], repository["metadata"]["name"],
            "the policy reads the repository"
        );
        assert!(
            policy["spec"]["filterTags"].get("extract").is_none(),
            "no extract: the whole tag is compared"
        );
        Flux {
            pattern: Regex::new(string(&policy["spec"]["filterTags"]["pattern"], "pattern")).expect("pattern"),
            range: Constraint::parse(string(&policy["spec"]["policy"]["semver"]["range"], "semver range")),
        }
    }
}

impl Tool for Flux {
    fn update(&self, tags: &[String], running: Option<&str>) -> BTreeSet<Option<String>> {
        let candidates: Vec<(&String, SemVer)> = tags
            .iter()
            .filter(|tag| self.pattern.is_match(tag))
            .filter_map(|tag| SemVer::strict(tag).map(|v| (tag, v)))
            .filter(|(_, v)| self.range.check(v))
            .collect();
        // The filter hands the policy a Go map's keys: among equal versions
        // the first seen wins, and the order is not determined.
        let Some(best) = candidates.iter().map(|(_, v)| v).max_by(|a, b| a.compare(b)) else {
            return BTreeSet::from([None]);
        };
        candidates
            .iter()
            .filter(|(_, v)| v.compare(best) == Ordering::Equal)
            .map(|(tag, _)| (Some(tag.as_str()) != running).then(|| tag.to_string()))
            .collect()
    }
}

struct ArgoCd {
    allow: Regex,
    constraint: Constraint,
}

impl ArgoCd {
    fn from_recipe(docs: &[Yaml]) -> Self {
        let updater = doc(docs, "ImageUpdater");
        let image = &updater["spec"]["applicationRefs"][0]["images"][0];
        let settings = &image["commonUpdateSettings"];
        assert_eq!(string(&settings["updateStrategy"], "updateStrategy"), "semver");
        let name = string(&image["imageName"], "imageName");
        let constraint = name
            .strip_prefix(IMAGE)
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or_else(|| panic!("imageName {name:?} is {IMAGE}:<constraint>"));
        let allow = string(&settings["allowTags"], "allowTags");
        let allow = allow
            .strip_prefix("regexp:")
            .expect("allowTags is a regexp: match function");
        ArgoCd {
            allow: Regex::new(allow).expect("allowTags regexp"),
            constraint: Constraint::parse(constraint),
        }
    }
}

impl Tool for ArgoCd {
    fn update(&self, tags: &[String], running: Option<&str>) -> BTreeSet<Option<String>> {
        let mut candidates: Vec<(&String, SemVer)> = tags
            .iter()
            .filter(|tag| self.allow.is_match(tag))
            .filter_map(|tag| SemVer::lenient(tag).map(|v| (tag, v)))
            .filter(|(_, v)| self.constraint.check(v))
            .collect();
        candidates.sort_by(|(a, va), (b, vb)| va.compare(vb).then_with(|| a.cmp(b)));
        let newest = candidates.last().map(|(tag, _)| tag.as_str());
        BTreeSet::from([newest.filter(|tag| Some(*tag) != running).map(str::to_owned)])
    }
}

struct Keel {
    glob: String,
}

impl Keel {
    fn from_recipe(docs: &[Yaml]) -> Self {
        let workload = doc(docs, "Deployment");
        let annotations = &workload["metadata"]["annotations"];
        let policy = string(&annotations["keel.sh/policy"], "keel.sh/policy");
        let glob = policy.strip_prefix("glob:").expect("a glob: policy");
        assert!(!glob.contains(':'), "Keel splits the policy at ':' and wants two parts");
        Keel { glob: glob.to_owned() }
    }

    /// `ryanuber/go-glob`: `*` matches any run of characters; the first part
    /// is a prefix, the last a suffix, the middle ones are found in order.
    fn matches(&self, subject: &str) -> bool {
        let pattern = self.glob.as_str();
        if pattern.is_empty() {
            return subject.is_empty();
        }
        let parts: Vec<&str> = pattern.split('*').collect();
        if parts.len() == 1 {
            return subject == pattern;
        }
        let leading = pattern.starts_with('*');
        let trailing = pattern.ends_with('*');
        let end = parts.len() - 1;
        let mut rest = subject;
        for (i, part) in parts[..end].iter().enumerate() {
            let Some(at) = rest.find(part) else { return false };
            if i == 0 && !leading && at != 0 {
                return false;
            }
            rest = &rest[at + part.len()..];
        }
        trailing || rest.ends_with(parts[end])
    }
}

impl Tool for Keel {
    fn update(&self, tags: &[String], running: Option<&str>) -> BTreeSet<Option<String>> {
        // Filter: matching tags, sorted descending as strings; the first one
        // that ShouldUpdate accepts (match and greater than the running tag
        // as a string) is applied.
        let running = running.unwrap_or("");
        let mut candidates: Vec<&String> = tags.iter().filter(|tag| self.matches(tag)).collect();
        candidates.sort_by(|a, b| b.cmp(a));
        let pick = candidates.into_iter().find(|tag| tag.as_str() > running);
        BTreeSet::from([pick.cloned()])
    }
}

fn tool(name: &str, docs: &[Yaml]) -> Box<dyn Tool> {
    match name {
        "flux" => Box::new(Flux::from_recipe(docs)),
        "argocd" => Box::new(ArgoCd::from_recipe(docs)),
        _ => Box::new(Keel::from_recipe(docs)),
    }
}

// ---------------------------------------------------------------------------

#[test]
fn recipes_agree_with_tagcast_on_every_vector_except_the_known_limits() {
    let vectors = vectors();
    let mut surprises = Vec::new();
    let mut limits_seen = vec![false; KNOWN_LIMITS.len()];
    let mut checked = 0;
    for name in TOOLS {
        for group in &vectors.groups {
            for query in &group.latest {
                let (_, docs) = recipe(name, &query.stage, &query.api_version);
                let answers = tool(name, &docs).update(&group.tags, query.after.as_deref());
                let agrees = answers == BTreeSet::from([query.expected.clone()]);
                checked += 1;
                let limit = KNOWN_LIMITS.iter().position(|l| {
                    l.tool == name
                        && l.group == group.description
                        && l.stage == query.stage
                        && l.api_version == query.api_version
                        && l.after == query.after.as_deref()
                });
                let case = format!(
                    "{name}: [{}] stage {} api-version {} after {:?}: tool {:?}, tagcast {:?}",
                    group.description, query.stage, query.api_version, query.after, answers, query.expected
                );
                match (limit, agrees) {
                    (None, true) => {}
                    (None, false) => surprises.push(format!("disagrees: {case}")),
                    (Some(i), false) => limits_seen[i] = true,
                    (Some(i), true) => {
                        limits_seen[i] = true;
                        surprises.push(format!(
                            "listed as a known limit ({}) but agrees: {case}",
                            KNOWN_LIMITS[i].reason
                        ));
                    }
                }
            }
        }
    }
    for (limit, seen) in KNOWN_LIMITS.iter().zip(limits_seen) {
        if !seen {
            surprises.push(format!(
                "known limit matches no vector: {} [{}] {} {} {:?}",
                limit.tool, limit.group, limit.stage, limit.api_version, limit.after
            ));
        }
    }
    let queries: usize = vectors.groups.iter().map(|g| g.latest.len()).sum();
    assert!(
        queries > 0 && checked == TOOLS.len() * queries,
        "every query ran for every tool"
    );
    assert!(surprises.is_empty(), "{}", surprises.join("\n"));
}

/// The emulations are not vacuous: each tool model picks tags from the
/// channel and refuses the ones outside it.
#[test]
fn tool_models_can_disagree_with_a_wrong_recipe() {
    let tags: Vec<String> = ["1.1.0-demo-201108-195630", "1.2.0-production-201108-195630"]
        .map(str::to_owned)
        .to_vec();
    // A Flux range without pre-releases admits no tagcast tag at all.
    let flux = Flux {
        pattern: Regex::new("-demo-").unwrap(),
        range: Constraint::parse(">=1.0.0"),
    };
    assert_eq!(flux.update(&tags, None), BTreeSet::from([None]));
    // A Keel glob without the stage crosses stages.
    let keel = Keel { glob: "1.*".to_owned() };
    assert_eq!(
        keel.update(&tags, Some("1.1.0-demo-201108-195630")),
        BTreeSet::from([Some("1.2.0-production-201108-195630".to_owned())])
    );
    // Argo CD without allowTags' stage would too.
    let argo = ArgoCd {
        allow: Regex::new(".").unwrap(),
        constraint: Constraint::parse(">=0.0.0-0"),
    };
    assert_eq!(
        argo.update(&tags, None),
        BTreeSet::from([Some("1.2.0-production-201108-195630".to_owned())])
    );
}

/// Flux's and Argo CD's patterns are the tag grammar with the stage fixed:
/// they accept exactly the valid vectors of `tags.json` of that stage.
#[test]
fn channel_patterns_accept_exactly_the_valid_tags_of_the_stage() {
    #[derive(Deserialize)]
    struct TagVectors {
        groups: Vec<TagGroup>,
    }
    #[derive(Deserialize)]
    struct TagGroup {
        cases: Vec<TagCase>,
    }
    #[derive(Deserialize)]
    struct TagCase {
        input: String,
        valid: bool,
    }
    let text = std::fs::read_to_string(path("conformance/vectors/tags.json")).expect("tags.json");
    let vectors: TagVectors = serde_json::from_str(&text).expect("tags.json parses");
    let (_, flux) = recipe("flux", "staging", "*");
    let (_, argo) = recipe("argocd", "staging", "*");
    let flux = Flux::from_recipe(&flux);
    let argo = ArgoCd::from_recipe(&argo);
    let mut count = 0;
    for case in vectors.groups.iter().flat_map(|g| &g.cases) {
        let expected = case.valid && case.input.contains("-staging-");
        assert_eq!(
            flux.pattern.is_match(&case.input),
            expected,
            "flux pattern on {:?}",
            case.input
        );
        assert_eq!(
            argo.allow.is_match(&case.input),
            expected,
            "argocd allowTags on {:?}",
            case.input
        );
        count += usize::from(expected);
    }
    assert!(count > 0, "some staging vectors exist");
}

#[test]
fn keel_says_when_a_requirement_cannot_be_expressed() {
    let (wide, _) = recipe("keel", "production", "^1.1");
    assert!(
        wide.contains("# - A glob spells only a literal prefix: the api-version requirement ^1.1"),
        "{wide}"
    );
    assert!(wide.contains("keel.sh/policy: 'glob:1.*-production-*'"), "{wide}");
    let (exact, _) = recipe("keel", "production", "=1.1.0");
    assert!(!exact.contains("cannot be expressed"), "{exact}");
    assert!(exact.contains("keel.sh/policy: 'glob:1.1.0-production-*'"), "{exact}");
}

#[test]
fn flux_and_argocd_spell_the_requirement_with_pre_release_bounds() {
    let (_, flux) = recipe("flux", "demo", "~1.0.3");
    assert_eq!(
        string(&doc(&flux, "ImagePolicy")["spec"]["policy"]["semver"]["range"], "range"),
        ">=1.0.3-0 <1.1.0-0"
    );
    let (_, argo) = recipe("argocd", "demo", ">=1.0, <2");
    assert_eq!(
        string(
            &doc(&argo, "ImageUpdater")["spec"]["applicationRefs"][0]["images"][0]["imageName"],
            "imageName"
        ),
        format!("{IMAGE}:>=1.0.0-0 <2.0.0-0")
    );
}

#[test]
fn bad_arguments_exit_2_naming_them() {
    let out = run(&["interop", "flux", "--image", "Not/Valid", "--stage", "demo"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid --image \"Not/Valid\""),
        "{}",
        stderr(&out)
    );
    let out = run(
        &[
            "interop",
            "keel",
            "--image",
            IMAGE,
            "--stage",
            "demo",
            "--api-version",
            ">=2, <1",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("matches no version"), "{}", stderr(&out));
    let out = run(&["interop", "spinnaker", "--image", IMAGE, "--stage", "demo"], "");
    assert_eq!(out.status.code(), Some(2));
}

/// A small deterministic generator (64-bit LCG), so that the generated
/// repositories are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len())]
    }
}

/// Beyond the vectors: on generated repositories of canonical tags with
/// multi-digit numbers, Flux and Argo CD pick exactly tagcast's tag, and
/// Keel does too once the requirement pins one api-version. Argo CD is also
/// given short forms; its pick is then equivalent to tagcast's.
#[test]
fn recipes_agree_with_tagcast_on_generated_repositories() {
    use std::collections::BTreeMap;
    use tagcast_spec::{ApiRequirement, Stage, Tag, UpdatePolicy};

    let stages = ["production", "staging", "development", "demo"];
    let requirements = ["*", "^1", "^1.2", "~1.10", ">=1.9, <10", "^0.2", "=1.10.3"];
    let mut recipes: BTreeMap<(&str, &str, &str), Box<dyn Tool>> = BTreeMap::new();
    for name in TOOLS {
        for stage in stages {
            for req in requirements {
                let (_, docs) = recipe(name, stage, req);
                recipes.insert((name, stage, req), tool(name, &docs));
            }
        }
    }
    let mut random = Lcg(0x7461_6763_6173_7400);
    let mut compared = 0;
    for _ in 0..1500 {
        let short_forms = random.next(2) == 0;
        let tags: Vec<String> = (0..random.next(12) + 1)
            .map(|_| {
                let major = random.pick(&["0", "1", "2", "10"]);
                let minor = random.pick(&["0", "1", "2", "9", "10", "11"]);
                let patch = random.pick(&["0", "1", "3", "10"]);
                // One api-version recurs often, so that the pinned
                // requirement (and Keel with it) meets several of its tags.
                let version = if random.next(4) == 0 {
                    "1.10.3".to_owned()
                } else if short_forms && patch == "0" && random.next(2) == 0 {
                    format!("{major}.{minor}")
                } else {
                    format!("{major}.{minor}.{patch}")
                };
                format!(
                    "{version}-{}-{:02}{:02}{:02}-{:02}{:02}{:02}",
                    random.pick(&stages),
                    random.next(100),
                    random.next(12) + 1,
                    random.next(28) + 1,
                    random.next(24),
                    random.next(60),
                    random.next(60)
                )
            })
            .collect();
        let stage = random.pick(&stages);
        let req = random.pick(&requirements);
        let policy = UpdatePolicy {
            stage: stage.parse::<Stage>().unwrap(),
            requirement: ApiRequirement::parse(req).unwrap(),
        };
        // The running tag: none, one of another stage, or one the
        // subscription accepts. (A running tag outside the requirement, or
        // newer than every listed tag, is the documented downgrade limit of
        // Flux and Argo CD.)
        let pick = &tags[random.next(tags.len())];
        let pick_tag = Tag::parse(pick).unwrap();
        let running = match random.next(3) {
            0 => None,
            _ if pick_tag.stage().as_str() != stage || policy.check(None, &pick_tag).is_ok() => Some(pick.as_str()),
            _ => None,
        };
        let running_in_channel = running.is_some_and(|_| pick_tag.stage().as_str() == stage);
        let current = running.map(|t| Tag::parse(t).unwrap());
        let mut expected: Option<(&String, Tag)> = None;
        for text in &tags {
            let tag = Tag::parse(text).unwrap();
            if policy.check(current.as_ref(), &tag).is_ok()
                && expected
                    .as_ref()
                    .is_none_or(|(_, best)| tag.channel_cmp(best) == Some(Ordering::Greater))
            {
                expected = Some((text, tag));
            }
        }
        let case = format!("stage {stage} api-version {req} running {running:?} tags {tags:?}");
        let argo = recipes[&("argocd", stage, req)].update(&tags, running);
        let [argo] = <[_; 1]>::try_from(argo.into_iter().collect::<Vec<_>>()).expect("argocd decides");
        let equivalent = match (&argo, &expected) {
            (None, None) => true,
            (Some(a), Some((_, e))) => Tag::parse(a).unwrap().is_equivalent(e),
            _ => false,
        };
        // A running short form replaced by its canonical twin is the known
        // limit; anything else must agree.
        let twin = matches!((&argo, &current), (Some(a), Some(c)) if Tag::parse(a).unwrap().is_equivalent(c));
        assert!(
            equivalent || (twin && expected.is_none()),
            "argocd: {argo:?} for {case}"
        );
        if short_forms {
            continue;
        }
        let expected = expected.map(|(text, _)| text.clone());
        let flux = recipes[&("flux", stage, req)].update(&tags, running);
        assert_eq!(flux, BTreeSet::from([expected.clone()]), "flux: {case}");
        // Keel compares with the running tag as a string whatever its stage
        // (a documented limit): only the same channel, or none, is compared.
        if req == "=1.10.3" && (running.is_none() || running_in_channel) {
            let keel = recipes[&("keel", stage, req)].update(&tags, running);
            assert_eq!(keel, BTreeSet::from([expected.clone()]), "keel: {case}");
        }
        compared += 1;
    }
    assert!(
        compared > 400,
        "enough canonical repositories were compared: {compared}"
    );
}
