//! Target `tags`: CI outputs — tag lists, `docker buildx --metadata-file`
//! JSON, OCI image layouts (`spec/tags.md`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tagcast_spec::{ApiRequirement, ApiVersion, ImageReference, Stage, Tag};

use crate::check::{Check, Evidence, Verdict};
use crate::outcome::Level;
use crate::suite::Suite;

/// The OCI annotation (and label) with the image's build time.
pub const CREATED: &str = "org.opencontainers.image.created";
/// The OCI annotation (and label) with the packaged software's version.
pub const VERSION: &str = "org.opencontainers.image.version";
/// The OCI image layout annotation naming a manifest (a tag or a reference).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const INPUT: Check = Check {
    name: "tags/input",
    requirement: "TAG-1",
    level: Level::Must,
    description: "the tag lists, metadata files and OCI layouts given can be read and contain at least one tag",
};
const GRAMMAR: Check = Check {
    name: "tags/grammar",
    requirement: "TAG-1",
    level: Level::Must,
    description: "the tag is exactly `<api-version>-<stage>-<yymmdd>-<hhmmss>` (TAG-1 to TAG-4)",
};
const AMBIGUITY: Check = Check {
    name: "tags/ambiguity",
    requirement: "TAG-7",
    level: Level::Must,
    description: "no two tags of one repository are equivalent (`1.1` and `1.1.0`, same stage and time)",
};
const STAGE: Check = Check {
    name: "tags/stage",
    requirement: "TAG-3",
    level: Level::Must,
    description: "the tag's stage is the one given with --stage",
};
const API_VERSION: Check = Check {
    name: "tags/api-version",
    requirement: "TAG-2",
    level: Level::Must,
    description: "the tag's api-version is (or matches) the one given with --api-version",
};
const TIME: Check = Check {
    name: "tags/time",
    requirement: "TAG-4",
    level: Level::Must,
    description: "the tag's timestamp is the build time in UTC: not later than now plus --max-skew",
};
const CREATED_AGREES: Check = Check {
    name: "tags/created",
    requirement: "TAG-4",
    level: Level::Must,
    description: "the tag's time agrees with org.opencontainers.image.created within --max-skew",
};
const VERSION_AGREES: Check = Check {
    name: "tags/version",
    requirement: "TAG-5",
    level: Level::Must,
    description: "org.opencontainers.image.version, when present, does not contradict the tag: a tag there is \
                  equivalent to it; a version other than the api-version is only worth a warning (it may be the \
                  service's own version, TAG-5)",
};

/// The checks of this target.
pub(crate) const CHECKS: &[&Check] = &[
    &INPUT,
    &GRAMMAR,
    &AMBIGUITY,
    &STAGE,
    &API_VERSION,
    &TIME,
    &CREATED_AGREES,
    &VERSION_AGREES,
];

/// What `--api-version` expects of every tag: an exact api-version (`1.1`
/// and `1.1.0` are the same) or a requirement (`^1.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiExpectation {
    /// Equivalent to this api-version.
    Version(ApiVersion),
    /// Matching this requirement.
    Requirement(ApiRequirement),
}

impl ApiExpectation {
    fn accepts(&self, version: &ApiVersion) -> bool {
        match self {
            ApiExpectation::Version(expected) => expected.is_equivalent(version),
            ApiExpectation::Requirement(requirement) => requirement.matches(version),
        }
    }
}

impl FromStr for ApiExpectation {
    type Err = tagcast_spec::RequirementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match ApiVersion::parse(s) {
            Ok(version) => Ok(ApiExpectation::Version(version)),
            Err(_) => ApiRequirement::parse(s).map(ApiExpectation::Requirement),
        }
    }
}

impl fmt::Display for ApiExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiExpectation::Version(v) => write!(f, "{v}"),
            ApiExpectation::Requirement(r) => write!(f, "{r}"),
        }
    }
}

/// CI outputs to check.
#[derive(Debug, Clone)]
pub struct TagsTarget {
    /// Tags given directly.
    pub tags: Vec<String>,
    /// Files with one tag per line (blank lines and `#` comments ignored).
    pub files: Vec<PathBuf>,
    /// `docker buildx build --metadata-file` (or `bake`) JSON files.
    pub metadata_files: Vec<PathBuf>,
    /// OCI image layout directories (`index.json`, `blobs/`).
    pub oci_layouts: Vec<PathBuf>,
    /// The stage every tag must have.
    pub stage: Option<Stage>,
    /// The api-version every tag must have.
    pub api_version: Option<ApiExpectation>,
    /// How far a tag's time may be ahead of now, and how far it may be from
    /// `org.opencontainers.image.created`.
    pub max_skew: Duration,
    /// The clock to compare with; the system clock when `None`.
    pub now: Option<DateTime<Utc>>,
}

impl Default for TagsTarget {
    fn default() -> Self {
        Self {
            tags: Vec::new(),
            files: Vec::new(),
            metadata_files: Vec::new(),
            oci_layouts: Vec::new(),
            stage: None,
            api_version: None,
            max_skew: Duration::from_secs(5 * 60),
            now: None,
        }
    }
}

/// One tag found in the inputs, with what its source says about the image.
#[derive(Debug, Clone)]
struct Candidate {
    tag: String,
    /// The repository, when the source names one (ambiguity is per repository).
    repository: String,
    origin: String,
    created: Option<String>,
    version: Option<String>,
    /// Found next to other names (`latest`) in a build output, where a tag
    /// outside the grammar is usual and only worth a warning.
    among_others: bool,
}

pub(crate) async fn run(target: &TagsTarget, suite: &mut Suite<'_>) -> String {
    let mut subject = Vec::new();
    let mut candidates = Vec::new();
    let mut problems = Vec::new();
    for tag in &target.tags {
        candidates.push(Candidate {
            tag: tag.clone(),
            repository: String::new(),
            origin: "argument".into(),
            created: None,
            version: None,
            among_others: false,
        });
    }
    if !target.tags.is_empty() {
        subject.push(format!("{} tags", target.tags.len()));
    }
    for path in &target.files {
        subject.push(path.display().to_string());
        match std::fs::read_to_string(path) {
            Ok(text) => candidates.extend(tag_list(&text, path)),
            Err(e) => problems.push(format!("cannot read {}: {e}", path.display())),
        }
    }
    for path in &target.metadata_files {
        subject.push(path.display().to_string());
        match metadata_file(path) {
            Ok(found) => candidates.extend(found),
            Err(e) => problems.push(e),
        }
    }
    for dir in &target.oci_layouts {
        subject.push(dir.display().to_string());
        match oci_layout(dir) {
            Ok(found) => candidates.extend(found),
            Err(e) => problems.push(e),
        }
    }
    let subject = if subject.is_empty() {
        "no input".to_owned()
    } else {
        subject.join(", ")
    };

    let input = if !problems.is_empty() {
        Verdict::Error(problems.join("; "))
    } else if candidates.is_empty() {
        Verdict::Error("no tags: give tags, --file, --metadata-file or --oci-layout".into())
    } else {
        Verdict::pass()
    };
    let input_failed = !matches!(input, Verdict::Pass(_));
    suite.record_always(&INPUT, input, std::time::Instant::now());
    if input_failed {
        return subject;
    }

    let now = target.now.unwrap_or_else(Utc::now);
    let skew = chrono::Duration::from_std(target.max_skew).unwrap_or(chrono::Duration::MAX);
    let mut parsed: Vec<(Tag, &Candidate)> = Vec::new();
    let mut seen = BTreeMap::new();
    for candidate in &candidates {
        // The same tag of the same repository from two sources is checked
        // once (with the annotations of whichever source had them).
        if seen
            .insert((candidate.repository.clone(), candidate.tag.clone()), ())
            .is_some()
        {
            continue;
        }
        // Per-input names: the tag, or `repository:tag` when one build
        // gave the same tag to several repositories.
        let shared = candidates
            .iter()
            .any(|c| c.tag == candidate.tag && c.repository != candidate.repository);
        let label = if shared {
            format!("{}:{}", candidate.repository, candidate.tag)
        } else {
            candidate.tag.clone()
        };
        let name = |check: &Check| format!("{}/{label}", check.name);
        let tag = match Tag::parse(&candidate.tag) {
            Ok(tag) => {
                suite.record(&GRAMMAR, name(&GRAMMAR), Verdict::pass());
                tag
            }
            Err(e) => {
                let evidence = Evidence::new(
                    format!("{} (from {})", candidate.tag, candidate.origin),
                    "<api-version>-<stage>-<yymmdd>-<hhmmss>",
                    e.to_string(),
                );
                let message = format!("not a tag of the grammar ({})", e.requirement());
                let verdict = if candidate.among_others {
                    Verdict::Warn(format!("{message}; brokers ignore it"), evidence)
                } else {
                    Verdict::fail(message, evidence)
                };
                suite.record(&GRAMMAR, name(&GRAMMAR), verdict);
                continue;
            }
        };
        let annotated = candidates
            .iter()
            .filter(|c| c.tag == candidate.tag && c.repository == candidate.repository)
            .find(|c| c.created.is_some() || c.version.is_some())
            .unwrap_or(candidate);
        if let Some(stage) = target.stage {
            let verdict = if tag.stage() == stage {
                Verdict::pass()
            } else {
                Verdict::fail(
                    format!("stage {} where {stage} is expected", tag.stage()),
                    Evidence::new(
                        &candidate.tag,
                        format!("stage {stage}"),
                        format!("stage {}", tag.stage()),
                    ),
                )
            };
            suite.record(&STAGE, name(&STAGE), verdict);
        }
        if let Some(expected) = &target.api_version {
            let verdict = if expected.accepts(&tag.api_version()) {
                Verdict::pass()
            } else {
                Verdict::fail(
                    format!("api-version {} where {expected} is expected", tag.api_version()),
                    Evidence::new(
                        &candidate.tag,
                        format!("api-version {expected}"),
                        format!("api-version {}", tag.api_version()),
                    ),
                )
            };
            suite.record(&API_VERSION, name(&API_VERSION), verdict);
        }
        let time = tag.timestamp().to_datetime();
        let verdict = if time > now + skew {
            Verdict::fail(
                format!("the tag's time is {} ahead of now", human(time - now)),
                Evidence::new(
                    &candidate.tag,
                    format!("at most {} (now plus {})", rfc3339(now + skew), human(skew)),
                    rfc3339(time),
                ),
            )
        } else {
            Verdict::pass()
        };
        suite.record(&TIME, name(&TIME), verdict);
        if let Some(created) = &annotated.created {
            suite.record(
                &CREATED_AGREES,
                name(&CREATED_AGREES),
                created_agrees(&tag, created, skew, &annotated.origin),
            );
        }
        if let Some(version) = &annotated.version {
            suite.record(
                &VERSION_AGREES,
                name(&VERSION_AGREES),
                version_agrees(&tag, version, &annotated.origin),
            );
        }
        parsed.push((tag, candidate));
    }
    suite.record(&AMBIGUITY, AMBIGUITY.name.to_owned(), ambiguity(&parsed));
    subject
}

fn created_agrees(tag: &Tag, created: &str, skew: chrono::Duration, origin: &str) -> Verdict {
    let time = tag.timestamp().to_datetime();
    let sent = format!("{tag} ({CREATED} from {origin})");
    match DateTime::parse_from_rfc3339(created) {
        Err(e) => Verdict::fail(
            format!("{CREATED} is not an RFC 3339 date-time: {e}"),
            Evidence::new(sent, "an RFC 3339 date-time", created),
        ),
        Ok(built) => {
            let built = built.with_timezone(&Utc);
            let gap = (built - time).abs();
            if gap > skew {
                Verdict::fail(
                    format!("the tag's time and {CREATED} are {} apart", human(gap)),
                    Evidence::new(sent, format!("{} ± {}", rfc3339(time), human(skew)), created),
                )
            } else {
                Verdict::pass()
            }
        }
    }
}

fn version_agrees(tag: &Tag, version: &str, origin: &str) -> Verdict {
    let evidence = || {
        Evidence::new(
            format!("{tag} ({VERSION} from {origin})"),
            format!("{tag}, an equivalent tag, or {}", tag.api_version().canonical()),
            version,
        )
    };
    match Tag::parse(version) {
        Ok(other) if other.is_equivalent(tag) => Verdict::pass(),
        Ok(_) => Verdict::fail(format!("{VERSION} names another tag, {version}"), evidence()),
        Err(_) if ApiVersion::parse(version).is_ok_and(|v| v.is_equivalent(&tag.api_version())) => Verdict::pass(),
        Err(_) => Verdict::Warn(
            format!(
                "{VERSION} {version:?} is neither the tag nor its api-version; fine if it is the service's own \
                 version (TAG-5)"
            ),
            evidence(),
        ),
    }
}

fn ambiguity(parsed: &[(Tag, &Candidate)]) -> Verdict {
    let mut pairs = Vec::new();
    for (i, (a, ca)) in parsed.iter().enumerate() {
        for (b, cb) in &parsed[i + 1..] {
            if ca.repository == cb.repository && a.is_equivalent(b) {
                let repo = if ca.repository.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", ca.repository)
                };
                pairs.push(format!("{} and {}{repo}", ca.tag, cb.tag));
            }
        }
    }
    if pairs.is_empty() {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!(
                "{} pair(s) of equivalent tags: a subscriber cannot tell which is meant",
                pairs.len()
            ),
            Evidence {
                sent: Some(format!("{} tags", parsed.len())),
                expected: Some("no two tags with the same canonical form in one repository".into()),
                received: Some(pairs.join("\n")),
            },
        )
    }
}

fn tag_list(text: &str, path: &Path) -> Vec<Candidate> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| Candidate {
            tag: line.to_owned(),
            repository: String::new(),
            origin: format!("{} line {}", path.display(), i + 1),
            created: None,
            version: None,
            among_others: false,
        })
        .collect()
}

/// `docker buildx build --metadata-file`: one object with `image.name`
/// (comma-separated references) and `containerimage.descriptor.annotations`;
/// `docker buildx bake --metadata-file`: a map of such objects by target.
fn metadata_file(path: &Path) -> Result<Vec<Candidate>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let objects: Vec<(String, &Value)> = if value.get("image.name").is_some() {
        vec![(path.display().to_string(), &value)]
    } else {
        value
            .as_object()
            .map(|map| {
                map.iter()
                    .filter(|(_, v)| v.get("image.name").is_some())
                    .map(|(k, v)| (format!("{} target {k}", path.display()), v))
                    .collect()
            })
            .unwrap_or_default()
    };
    if objects.is_empty() {
        return Err(format!(
            "{} has no \"image.name\": is it a docker buildx --metadata-file output of a build that named its image?",
            path.display()
        ));
    }
    let mut found = Vec::new();
    for (origin, object) in objects {
        let annotations = object.pointer("/containerimage.descriptor/annotations");
        let annotation = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let names = object.get("image.name").and_then(Value::as_str).unwrap_or("");
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let (repository, tag) = split_reference(name);
            let Some(tag) = tag else { continue };
            found.push(Candidate {
                tag,
                repository,
                origin: origin.clone(),
                created: annotation(CREATED),
                version: annotation(VERSION),
                among_others: true,
            });
        }
    }
    Ok(found)
}

/// A reference's repository and tag; a bare tag has no repository.
fn split_reference(name: &str) -> (String, Option<String>) {
    if !name.contains([':', '/']) {
        return (String::new(), Some(name.to_owned()));
    }
    match ImageReference::parse(name) {
        Ok(reference) => (reference.repository().to_string(), reference.tag().map(str::to_owned)),
        // Keep what follows the last colon after the last slash, so that a
        // malformed name still has its tag checked.
        Err(_) => {
            let last = name.rsplit('/').next().unwrap_or(name);
            let repository = name[..name.len() - last.len()].trim_end_matches('/').to_owned();
            match last.split_once(':') {
                Some((image, tag)) => (format!("{repository}/{image}"), Some(tag.to_owned())),
                None => (name.to_owned(), None),
            }
        }
    }
}

/// An OCI image layout: tags from `org.opencontainers.image.ref.name` in
/// `index.json`; created and version from the manifest's (or index's)
/// annotations, else from the image config's labels.
fn oci_layout(dir: &Path) -> Result<Vec<Candidate>, String> {
    let index = read_json(&dir.join("index.json"))?;
    let mut found = Vec::new();
    for (i, descriptor) in index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}/index.json has no \"manifests\" array", dir.display()))?
        .iter()
        .enumerate()
    {
        let Some(ref_name) = descriptor.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1"))) else {
            continue;
        };
        let ref_name = ref_name.as_str().unwrap_or_default();
        let (repository, tag) = split_reference(ref_name);
        let Some(tag) = tag else { continue };
        let origin = format!("{} manifest {i}", dir.display());
        let (created, version) = layout_annotations(dir, descriptor)?;
        found.push(Candidate {
            tag,
            repository,
            origin,
            created,
            version,
            among_others: true,
        });
    }
    Ok(found)
}

fn layout_annotations(dir: &Path, descriptor: &Value) -> Result<(Option<String>, Option<String>), String> {
    let mut created = None;
    let mut version = None;
    let mut take = |map: Option<&Value>| {
        if let Some(map) = map {
            if created.is_none() {
                created = map.get(CREATED).and_then(Value::as_str).map(str::to_owned);
            }
            if version.is_none() {
                version = map.get(VERSION).and_then(Value::as_str).map(str::to_owned);
            }
        }
    };
    take(descriptor.get("annotations"));
    let mut manifest = read_blob(dir, descriptor)?;
    take(manifest.get("annotations"));
    // An index (multi-platform image): its first manifest stands for all.
    if let Some(first) = manifest.get("manifests").and_then(|m| m.get(0)).cloned() {
        take(first.get("annotations"));
        manifest = read_blob(dir, &first)?;
        take(manifest.get("annotations"));
    }
    if let Some(config) = manifest.get("config") {
        let config = read_blob(dir, config)?;
        take(config.pointer("/config/Labels"));
    }
    Ok((created, version))
}

fn read_blob(dir: &Path, descriptor: &Value) -> Result<Value, String> {
    let digest = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("a descriptor in {} has no digest", dir.display()))?;
    let (algorithm, encoded) = digest
        .split_once(':')
        .filter(|(a, e)| !a.is_empty() && !e.is_empty() && !a.contains(['/', '.']) && !e.contains(['/', '.']))
        .ok_or_else(|| format!("malformed digest {digest:?} in {}", dir.display()))?;
    read_json(&dir.join("blobs").join(algorithm).join(encoded))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn human(duration: chrono::Duration) -> String {
    let secs = duration.num_seconds().abs();
    match secs {
        s if s >= 3600 => format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}
