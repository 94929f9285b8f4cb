//! Target `registry`: a live OCI registry — its tags (TAG-1, TAG-7), the
//! API a broker relies on to re-check a tag (API-15: listing with `Link`
//! pagination, the bearer-token challenge, `HEAD` of a manifest) and the
//! push notifications it sends to a hook (API-14).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tagcast_spec::{ApiVersion, Stage, Tag};
use url::Url;

use crate::check::{Check, Evidence, Verdict};
use crate::exchange::{Request, client};
use crate::oci::{self, MANIFEST, Registry, RegistryAuth, TinyImage};
use crate::outcome::Level;
use crate::receiver::{Answer, Receiver};
use crate::suite::Suite;

const fn must(name: &'static str, requirement: &'static str, description: &'static str) -> Check {
    Check {
        name,
        requirement,
        level: Level::Must,
        description,
    }
}

const REACHABLE: Check = must(
    "registry/reachable",
    "API-15",
    "GET /v2/ answers 200, or 401 with a challenge",
);
const AUTH: Check = must(
    "registry/auth",
    "API-15",
    "a 401 carries a WWW-Authenticate challenge the runner can meet (Basic, or Bearer via the realm's token endpoint)",
);
const LIST: Check = must(
    "registry/tags/list",
    "API-15",
    "GET /v2/<name>/tags/list answers 200 with {\"name\": <name>, \"tags\": [...]}",
);
const PAGINATION: Check = must(
    "registry/tags/pagination",
    "API-15",
    "with ?n=N each page has at most N tags and Link rel=\"next\" leads through all of them (a registry that \
     ignores n and sends every tag at once, as Distribution 2.x does, only warns)",
);
const GRAMMAR: Check = must(
    "registry/tags/grammar",
    "TAG-1",
    "each tag meant as one (a dotted version, `-`, then a stage or a timestamp) is of the grammar; other tags (`latest`) only warn",
);
const AMBIGUITY: Check = must(
    "registry/tags/ambiguity",
    "TAG-7",
    "the repository holds no two equivalent tags",
);
const IMMUTABLE: Check = must(
    "registry/tags/immutable",
    "TAG-12",
    "no tag of the grammar (nor an equivalent one) moves to another digest: against the digests an earlier run \
     recorded in --known-digests, and among the push notifications seen during the run",
);
const PUSH: Check = must(
    "registry/push/upload",
    "API-14",
    "a tiny OCI image built in-process is pushed under a fresh conformant tag (blobs, then the manifest)",
);
const LISTED: Check = must("registry/push/listed", "API-15", "the pushed tag is listed");
const DIGEST: Check = must(
    "registry/push/digest",
    "API-15",
    "HEAD /v2/<name>/manifests/<tag> answers 200 with the pushed manifest's Docker-Content-Digest",
);
const DELETE: Check = Check {
    name: "registry/push/delete",
    requirement: "API-15",
    level: Level::Should,
    description: "DELETE /v2/<name>/manifests/<digest> removes the pushed image (skipped when the registry disallows deletes)",
};
const NOTIFIED: Check = must(
    "registry/notifications/push",
    "API-14",
    "a notification of the push arrives at the receiver: action push, the tag, the manifest digest, the repository",
);
const ENVELOPE: Check = must(
    "registry/notifications/envelope",
    "API-14",
    "every notification is a Distribution envelope {\"events\": [...]} sent as …events.v1+json or …events.v2+json",
);

/// The checks of this target.
pub(crate) const CHECKS: &[&Check] = &[
    &REACHABLE,
    &AUTH,
    &LIST,
    &PAGINATION,
    &GRAMMAR,
    &AMBIGUITY,
    &IMMUTABLE,
    &PUSH,
    &LISTED,
    &DIGEST,
    &DELETE,
    &NOTIFIED,
    &ENVELOPE,
];

/// The envelope media types of CNCF Distribution 2.x and 3.x.
pub const ENVELOPE_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json",
];

/// A live registry to check.
#[derive(Debug, Clone)]
pub struct RegistryTarget {
    /// The registry's base URL, e.g. `http://127.0.0.1:5000`.
    pub url: Url,
    /// The repository (`elixircloud/cwl-wes`).
    pub repository: String,
    /// How to authenticate.
    pub auth: RegistryAuth,
    /// Push a tiny image under a fresh tag (and delete it after).
    pub push: bool,
    /// Receive the registry's notifications on `listen` (at `/notifications`).
    pub notifications: bool,
    /// Where the notification receiver listens; the registry must be
    /// configured to send there.
    pub listen: SocketAddr,
    /// The stage of the pushed tag.
    pub stage: Stage,
    /// The api-version of the pushed tag.
    pub api_version: ApiVersion,
    /// The page size for the pagination check.
    pub page_size: usize,
    /// A file of the digests earlier runs saw for the repository's tags
    /// (trust on first use, like `known_hosts`): each listed tag of the
    /// grammar is compared with it, and new tags are added to it.
    pub known_digests: Option<PathBuf>,
}

impl RegistryTarget {
    /// The registry at `url`, repository `repository`, anonymous, read-only.
    pub fn new(url: Url, repository: impl Into<String>) -> Self {
        Self {
            url,
            repository: repository.into(),
            auth: RegistryAuth::Anonymous,
            push: false,
            notifications: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 5055)),
            stage: Stage::Development,
            api_version: ApiVersion::new(1, 0, 0),
            page_size: 2,
            known_digests: None,
        }
    }
}

pub(crate) async fn run(target: &RegistryTarget, suite: &mut Suite<'_>) -> String {
    let subject = format!("{}{}", target.url, target.repository);
    let timeout = suite.config().timeout;
    let registry = Registry::new(client(timeout), target.url.clone(), target.auth.clone());
    let start = std::time::Instant::now();

    // The API root and the challenge.
    let root = match registry.url("/v2/") {
        Ok(url) => url,
        Err(e) => {
            suite.record_always(&REACHABLE, Verdict::Error(e), start);
            return subject;
        }
    };
    let (sent, response) = match registry.send(Request::new(Method::GET, root)).await {
        Ok(answer) => answer,
        Err(e) => {
            suite.record_always(
                &REACHABLE,
                Verdict::Error(format!("cannot reach the registry: {e}")),
                start,
            );
            return subject;
        }
    };
    suite.record(&REACHABLE, REACHABLE.name.to_owned(), Verdict::pass());
    let trace = registry.trace.lock().expect("not poisoned").clone();
    let auth = if response.status.is_success() {
        Verdict::pass()
    } else if response.status.as_u16() == 401 {
        let received = format!(
            "{}\nchallenge: {}\ntoken exchange: {}",
            response.describe(),
            trace.challenge.as_deref().unwrap_or("(none)"),
            trace
                .token_exchange
                .as_ref()
                .map_or("(none)".to_owned(), |(req, resp)| format!("{req}\n→ {resp}"))
        );
        let message = match (&trace.challenge, &trace.problem) {
            (None, _) => "401 without a WWW-Authenticate challenge".to_owned(),
            (Some(_), Some(problem)) => format!("the bearer challenge could not be met: {problem}"),
            (Some(_), None) => "still 401 after meeting the challenge: are the credentials right?".to_owned(),
        };
        Verdict::fail(
            message,
            Evidence::new(sent.describe(), "200 once the challenge is met", received),
        )
    } else {
        Verdict::fail(
            format!("GET /v2/ answered {}", response.status.as_u16()),
            Evidence::new(sent.describe(), "200 or 401", response.describe()),
        )
    };
    let auth_ok = matches!(auth, Verdict::Pass(_));
    suite.record(&AUTH, AUTH.name.to_owned(), auth);
    if !auth_ok {
        return subject;
    }

    let receiver = if target.notifications {
        match Receiver::start(target.listen, None).await {
            Ok(receiver) => {
                receiver.inbox("notifications", Answer::Accept);
                Some(receiver)
            }
            Err(e) => {
                suite.record_always(&NOTIFIED, Verdict::Error(e), start);
                return subject;
            }
        }
    } else {
        None
    };

    // The push, first, so that the listing has at least one tag.
    let mut pushed: Option<(Tag, String)> = None;
    if target.push {
        let now = Utc::now();
        let tag = Tag::new(target.api_version, target.stage, now).expect("now is within 2000-2099");
        let image = TinyImage::new(now, &tag.to_string());
        let verdict = match oci::push_image(&registry, &target.repository, &tag.to_string(), &image).await {
            Ok(_) => {
                pushed = Some((tag, image.digest()));
                Verdict::pass()
            }
            Err(e) => Verdict::fail(
                format!("the push of {tag} failed"),
                Evidence::new(
                    format!("a push of {tag} ({})", image.digest()),
                    "201 for each blob and the manifest",
                    e,
                ),
            ),
        };
        suite.record(&PUSH, PUSH.name.to_owned(), verdict);
    }

    // The listing, whole and in pages.
    let tags = match list(&registry, &target.repository, None).await {
        Ok(listing) => {
            let verdict = match listing.misnamed {
                None => Verdict::pass(),
                Some((message, evidence)) => Verdict::fail(message, evidence),
            };
            suite.record(&LIST, LIST.name.to_owned(), verdict);
            listing.tags
        }
        Err((message, evidence)) => {
            suite.record(&LIST, LIST.name.to_owned(), Verdict::fail(message, evidence));
            Vec::new()
        }
    };
    let pagination = if tags.len() <= target.page_size {
        Verdict::Skip(format!(
            "{} tag(s), not more than a page of {}: nothing to page through",
            tags.len(),
            target.page_size
        ))
    } else {
        let sorted = |mut list: Vec<String>| {
            list.sort();
            list
        };
        match list(&registry, &target.repository, Some(target.page_size)).await {
            // CNCF Distribution 2.x ignores `n` for tag lists: all tags in
            // one answer is usable, only not paged.
            Err((message, evidence)) if message.starts_with(IGNORES_N) => Verdict::Warn(message, evidence),
            Err((message, evidence)) => Verdict::fail(message, evidence),
            Ok(Listing { tags: paged, .. }) if sorted(paged.clone()) == sorted(tags.clone()) => Verdict::pass(),
            Ok(Listing { tags: paged, .. }) => Verdict::fail(
                "the pages do not add up to the whole list",
                Evidence::new(
                    format!(
                        "GET /v2/{}/tags/list?n={}, then each Link rel=\"next\"",
                        target.repository, target.page_size
                    ),
                    tags.join(", "),
                    paged.join(", "),
                ),
            ),
        }
    };
    suite.record(&PAGINATION, PAGINATION.name.to_owned(), pagination);

    // The tags themselves.
    let mut parsed: Vec<(Tag, &str)> = Vec::new();
    for tag in &tags {
        let verdict = match Tag::parse(tag) {
            Ok(t) => {
                parsed.push((t, tag));
                Verdict::pass()
            }
            Err(e) if meant_as_a_tag(tag) => Verdict::fail(
                format!(
                    "an almost-tag ({}): brokers ignore it, so the push it names never reaches a deployment",
                    e.requirement()
                ),
                Evidence::new(tag, "<api-version>-<stage>-<yymmdd>-<hhmmss>", e.to_string()),
            ),
            Err(e) => Verdict::Warn(
                format!("not a tag of the grammar ({}); brokers ignore it", e.requirement()),
                Evidence::new(tag, "<api-version>-<stage>-<yymmdd>-<hhmmss>", e.to_string()),
            ),
        };
        suite.record(&GRAMMAR, format!("{}/{tag}", GRAMMAR.name), verdict);
    }
    let mut pairs = Vec::new();
    for (i, (a, ta)) in parsed.iter().enumerate() {
        for (b, tb) in &parsed[i + 1..] {
            if a.is_equivalent(b) {
                pairs.push(format!("{ta} and {tb}"));
            }
        }
    }
    let ambiguity = if pairs.is_empty() {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!("{} pair(s) of equivalent tags in {}", pairs.len(), target.repository),
            Evidence::new(
                format!("GET /v2/{}/tags/list", target.repository),
                "no two tags with the same canonical form",
                pairs.join("\n"),
            ),
        )
    };
    suite.record(&AMBIGUITY, AMBIGUITY.name.to_owned(), ambiguity);

    // TAG-12 across runs: the digests recorded by earlier runs.
    let mut moved = Vec::new();
    let mut immutable_sources = Vec::new();
    let mut immutable_error = None;
    if let Some(path) = target
        .known_digests
        .as_deref()
        .filter(|_| suite.selects(IMMUTABLE.name))
    {
        match compare_known(&registry, &target.repository, &parsed, path).await {
            Ok(found) => {
                immutable_sources.push(found.summary);
                moved.extend(found.moved);
            }
            Err(e) => immutable_error = Some(e),
        }
    }

    if let Some((tag, digest)) = &pushed {
        let listed = if tags.contains(&tag.to_string()) {
            Verdict::pass()
        } else {
            Verdict::fail(
                format!("{tag} is not listed after its push"),
                Evidence::new(
                    format!("GET /v2/{}/tags/list", target.repository),
                    tag.to_string(),
                    tags.join(", "),
                ),
            )
        };
        suite.record(&LISTED, LISTED.name.to_owned(), listed);
        let head = head_digest(&registry, &target.repository, &tag.to_string(), digest).await;
        suite.record(&DIGEST, DIGEST.name.to_owned(), head);
    }

    if let (Some(receiver), Some((tag, digest))) = (&receiver, &pushed) {
        let (notified, envelope) = notifications(receiver, target, tag, digest, timeout).await;
        suite.record(&NOTIFIED, NOTIFIED.name.to_owned(), notified);
        suite.record(&ENVELOPE, ENVELOPE.name.to_owned(), envelope);
        let (seen, notified_moves) = moved_in_notifications(receiver, &target.repository);
        immutable_sources.push(format!("{seen} push notification(s) of tags of the grammar"));
        moved.extend(notified_moves);
    } else if receiver.is_some() {
        suite.record(
            &NOTIFIED,
            NOTIFIED.name.to_owned(),
            Verdict::Skip("--notifications needs --push: the runner waits for the notification of its own push".into()),
        );
    }

    let immutable = if let Some(e) = immutable_error {
        Verdict::Error(e)
    } else if immutable_sources.is_empty() {
        Verdict::Skip(
            "nothing to compare: pass --known-digests FILE (digests recorded across runs), or --push \
             --notifications (the registry's push notifications during the run)"
                .into(),
        )
    } else if moved.is_empty() {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!("{} moved tag(s) in {} (TAG-12)", moved.len(), target.repository),
            Evidence::new(
                immutable_sources.join("; "),
                "each tag keeps the digest it was first published with",
                moved.join("\n"),
            ),
        )
    };
    suite.record(&IMMUTABLE, IMMUTABLE.name.to_owned(), immutable);

    // Skipping the check keeps the image (a side effect, not only a report line).
    if let Some((tag, digest)) = pushed.as_ref().filter(|_| suite.selects(DELETE.name)) {
        let verdict = delete(&registry, &target.repository, tag, digest).await;
        suite.record(&DELETE, DELETE.name.to_owned(), verdict);
    }
    subject
}

/// How many tags of the grammar a run reads the digest of for
/// `--known-digests`: the newest ones, one `HEAD` each.
pub const KNOWN_DIGESTS_PER_RUN: usize = 200;

/// The `--known-digests` file: the digest each tag of the grammar had when
/// a run first saw it.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownDigests {
    /// The repository the digests belong to.
    repository: String,
    /// Tag → digest.
    digests: BTreeMap<String, String>,
}

/// What a comparison with the known digests found.
struct Known {
    summary: String,
    moved: Vec<String>,
}

/// Reads the digests of the newest tags of the grammar, compares them with
/// `path` (a tag or an equivalent one recorded with another digest has
/// moved), then adds the tags not yet recorded. A recorded digest is never
/// replaced, so a moved tag fails every later run too.
async fn compare_known(
    registry: &Registry,
    repository: &str,
    parsed: &[(Tag, &str)],
    path: &Path,
) -> Result<Known, String> {
    let shown = path.display();
    let mut known = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<KnownDigests>(&bytes).map_err(|e| {
            format!(
                "--known-digests {shown}: not a digests file ({{\"repository\": …, \"digests\": {{tag: digest}}}}): {e}"
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => KnownDigests {
            repository: repository.to_owned(),
            digests: BTreeMap::new(),
        },
        Err(e) => return Err(format!("--known-digests {shown}: {e}")),
    };
    if known.repository != repository {
        return Err(format!(
            "--known-digests {shown} holds the digests of {:?}, not of {repository:?}: use one file per repository",
            known.repository
        ));
    }
    let recorded: Vec<(Tag, String, String)> = known
        .digests
        .iter()
        .filter_map(|(tag, digest)| Tag::parse(tag).ok().map(|t| (t, tag.clone(), digest.clone())))
        .collect();
    let mut newest: Vec<&(Tag, &str)> = parsed.iter().collect();
    newest.sort_by_key(|(tag, _)| std::cmp::Reverse(tag.timestamp()));
    newest.truncate(KNOWN_DIGESTS_PER_RUN);
    let mut moved = Vec::new();
    let mut added = 0;
    for (tag, text) in newest {
        let digest = manifest_digest(registry, repository, text).await?;
        for (_, was_text, was) in recorded.iter().filter(|(t, _, _)| t.is_equivalent(tag)) {
            if *was != digest {
                let same = if was_text == text {
                    String::new()
                } else {
                    format!(" (as {was_text})")
                };
                moved.push(format!("{text}: recorded{same} as {was}, now {digest}"));
            }
        }
        if !known.digests.contains_key(*text) && !recorded.iter().any(|(t, _, _)| t.is_equivalent(tag)) {
            known.digests.insert((*text).to_owned(), digest);
            added += 1;
        }
    }
    let mut text = serde_json::to_string_pretty(&known).expect("a map of strings serializes");
    text.push('\n');
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("--known-digests {shown}: cannot write it: {e}"))?;
    Ok(Known {
        summary: format!(
            "the digests of {} tag(s) recorded in {shown} ({added} added by this run)",
            recorded.len()
        ),
        moved,
    })
}

/// The digest `HEAD /v2/<name>/manifests/<tag>` answers.
async fn manifest_digest(registry: &Registry, repository: &str, tag: &str) -> Result<String, String> {
    let url = registry.url(&format!("/v2/{repository}/manifests/{tag}"))?;
    let request = Request::new(Method::HEAD, url).header("accept", MANIFEST);
    let (_, response) = registry
        .send(request)
        .await
        .map_err(|e| format!("HEAD of {tag}: no answer: {e}"))?;
    match response.header("docker-content-digest") {
        Some(digest) if response.status.is_success() => Ok(digest.to_owned()),
        _ => Err(format!(
            "HEAD of {tag} answered {} without a Docker-Content-Digest",
            response.status.as_u16()
        )),
    }
}

/// The tags of the grammar that push notifications of `repository` named
/// with two or more digests (equivalent tags count as one), and how many
/// such notifications arrived.
fn moved_in_notifications(receiver: &Receiver, repository: &str) -> (usize, Vec<String>) {
    let mut seen: Vec<(Tag, String, String)> = Vec::new();
    let mut moved = Vec::new();
    for received in receiver.received("notifications") {
        let Ok(json) = serde_json::from_slice::<Value>(&received.body) else {
            continue;
        };
        let events = json.get("events").and_then(Value::as_array).into_iter().flatten();
        for event in events {
            let target = &event["target"];
            if event["action"] != "push" || target["repository"] != repository {
                continue;
            }
            let (Some(text), Some(digest)) = (target["tag"].as_str(), target["digest"].as_str()) else {
                continue;
            };
            let Ok(tag) = Tag::parse(text) else { continue };
            if let Some((_, was_text, was)) = seen.iter().find(|(t, _, d)| t.is_equivalent(&tag) && d != digest) {
                moved.push(format!("{text}: notified as {was_text} with {was}, then with {digest}"));
            }
            seen.push((tag, text.to_owned(), digest.to_owned()));
        }
    }
    (seen.len(), moved)
}

const IGNORES_N: &str = "the registry ignores ?n=";

/// The whole tag list, in pages of `page` when given (following `Link`).
/// Whether a tag that breaks the grammar was meant as one (spec/tags.md,
/// section 7: an almost-right tag is a CI bug): after an optional `v`, a
/// dotted version, a `-`, then a stage in any case or a component of six
/// digits (`v1.1-demo-…`, `1.1-Demo-…`, `1.1.0-prod-201108-195630`).
/// Other tags (`latest`, `sha-4f3c2a1`, `1.25`) are not tagcast's business.
fn meant_as_a_tag(tag: &str) -> bool {
    let tag = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    let mut parts = tag.splitn(3, '-');
    let (Some(version), Some(second)) = (parts.next(), parts.next()) else {
        return false;
    };
    let dotted = version.starts_with(|c: char| c.is_ascii_digit())
        && version.contains('.')
        && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    let stage = Stage::ALL.iter().any(|s| s.as_str().eq_ignore_ascii_case(second));
    let stamp = parts
        .next()
        .is_some_and(|rest| rest.len() >= 6 && rest.bytes().take(6).all(|b| b.is_ascii_digit()));
    dotted && (stage || stamp)
}

/// A repository's tags, read through every page.
struct Listing {
    tags: Vec<String>,
    /// The first page whose `name` was not the repository's: the listing
    /// check's business, not the checks that read the tags.
    misnamed: Option<(String, Evidence)>,
}

async fn list(registry: &Registry, repository: &str, page: Option<usize>) -> Result<Listing, (String, Evidence)> {
    let first = match page {
        Some(n) => format!("/v2/{repository}/tags/list?n={n}"),
        None => format!("/v2/{repository}/tags/list"),
    };
    let mut next = Some(first);
    let mut tags = Vec::new();
    let mut misnamed = None;
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        if pages > 10_000 {
            return Err((
                "more than 10000 pages: the Link headers go round in circles".into(),
                Evidence::default(),
            ));
        }
        let url = registry.url(&path).map_err(|e| (e, Evidence::default()))?;
        let (sent, response) = registry
            .send(Request::new(Method::GET, url))
            .await
            .map_err(|e| (format!("no answer: {e}"), Evidence::default()))?;
        let evidence = |expected: &str| Evidence::new(sent.describe(), expected, response.describe());
        if !response.status.is_success() {
            return Err((
                format!("the tag list was answered {}", response.status.as_u16()),
                evidence("200"),
            ));
        }
        let json: Value = serde_json::from_slice(&response.body)
            .map_err(|e| (format!("the tag list is not JSON: {e}"), evidence("JSON")))?;
        if json.get("name").and_then(Value::as_str) != Some(repository) && misnamed.is_none() {
            misnamed = Some((
                format!("the tag list names {:?}", json.get("name")),
                evidence(&format!("\"name\": \"{repository}\"")),
            ));
        }
        let page_tags: Vec<String> = match json.get("tags") {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(("\"tags\" is not an array".into(), evidence("\"tags\": [...]"))),
        };
        if let Some(n) = page {
            if page_tags.len() > n {
                return Err((
                    format!("{IGNORES_N}: a page asked for at most {n} tags has {}", page_tags.len()),
                    evidence(&format!("at most {n} tags, and a Link header to the rest")),
                ));
            }
        }
        tags.extend(page_tags);
        next = response.header("link").and_then(oci::next_link);
    }
    Ok(Listing { tags, misnamed })
}

async fn head_digest(registry: &Registry, repository: &str, tag: &str, digest: &str) -> Verdict {
    let url = match registry.url(&format!("/v2/{repository}/manifests/{tag}")) {
        Ok(url) => url,
        Err(e) => return Verdict::Error(e),
    };
    let request = Request::new(Method::HEAD, url).header("accept", MANIFEST);
    match registry.send(request).await {
        Err(e) => Verdict::fail(format!("no answer: {e}"), Evidence::default()),
        Ok((sent, response)) => {
            let got = response.header("docker-content-digest");
            if response.status.is_success() && got == Some(digest) {
                Verdict::pass()
            } else {
                Verdict::fail(
                    format!(
                        "HEAD answered {} with Docker-Content-Digest {got:?}",
                        response.status.as_u16()
                    ),
                    Evidence::new(
                        sent.describe(),
                        format!("200 with Docker-Content-Digest: {digest}"),
                        response.describe(),
                    ),
                )
            }
        }
    }
}

async fn delete(registry: &Registry, repository: &str, tag: &Tag, digest: &str) -> Verdict {
    let url = match registry.url(&format!("/v2/{repository}/manifests/{digest}")) {
        Ok(url) => url,
        Err(e) => return Verdict::Error(e),
    };
    match registry.send(Request::new(Method::DELETE, url)).await {
        Err(e) => Verdict::fail(format!("no answer: {e}"), Evidence::default()),
        Ok((_, response)) if response.status.is_success() => Verdict::pass(),
        Ok((_, response)) if matches!(response.status.as_u16(), 400 | 405) => Verdict::Skip(format!(
            "the registry does not allow deletes ({}); {tag} stays",
            response.status.as_u16()
        )),
        Ok((sent, response)) => Verdict::fail(
            format!("DELETE answered {}", response.status.as_u16()),
            Evidence::new(sent.describe(), "202", response.describe()),
        ),
    }
}

/// Waits for the notification of the push; then judges every envelope.
async fn notifications(
    receiver: &Receiver,
    target: &RegistryTarget,
    tag: &Tag,
    digest: &str,
    timeout: Duration,
) -> (Verdict, Verdict) {
    let deadline = std::time::Instant::now() + timeout;
    let matches = |received: &crate::receiver::Received| -> bool {
        let Ok(json) = serde_json::from_slice::<Value>(&received.body) else {
            return false;
        };
        json.get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|event| {
                let target_json = &event["target"];
                event["action"] == "push"
                    && target_json["tag"] == tag.to_string()
                    && target_json["digest"] == digest
                    && target_json["repository"] == target.repository.as_str()
            })
    };
    let mut got = Vec::new();
    while std::time::Instant::now() < deadline {
        got = receiver
            .wait_for(
                "notifications",
                got.len() + 1,
                deadline.saturating_duration_since(std::time::Instant::now()),
            )
            .await;
        if got.iter().any(matches) {
            break;
        }
    }
    let notified = if got.iter().any(matches) {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!(
                "no notification of the push of {tag} arrived within {} s",
                timeout.as_secs()
            ),
            Evidence::new(
                format!(
                    "a push of {}:{tag} ({digest}); the receiver at {}/notifications",
                    target.repository,
                    receiver.base()
                ),
                format!("an envelope with action push, target.tag {tag}, target.digest {digest}"),
                format!("{} request(s)", got.len()),
            ),
        )
    };
    let mut problems = Vec::new();
    for (i, received) in got.iter().enumerate() {
        let content_type = received.header("content-type").unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !ENVELOPE_TYPES.contains(&essence) {
            problems.push(format!("request {i}: content-type {content_type:?}"));
            continue;
        }
        let envelope = serde_json::from_slice::<Value>(&received.body)
            .is_ok_and(|json| json.get("events").is_some_and(Value::is_array));
        if !envelope {
            problems.push(format!("request {i}: not an envelope {{\"events\": [...]}}"));
        }
    }
    let envelope = if got.is_empty() {
        Verdict::Skip("no notification arrived".into())
    } else if problems.is_empty() {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!(
                "{} of {} notifications are not Distribution envelopes",
                problems.len(),
                got.len()
            ),
            Evidence::new(
                "notifications to the receiver",
                ENVELOPE_TYPES.join(" or "),
                problems.join("\n"),
            ),
        )
    };
    (notified, envelope)
}
