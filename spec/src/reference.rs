//! Image references (`spec/tags.md` §3, REF-1 to REF-6): the OCI
//! distribution reference grammar and Docker Hub normalization.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

#[cfg(feature = "schema")]
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ReferenceError;
use crate::tag::Tag;

/// The registry that a reference without a domain points to.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The longest repository name (domain and path) a registry must accept.
pub const MAX_NAME_LENGTH: usize = 255;

macro_rules! domain {
    () => {
        r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
    };
}
macro_rules! path {
    () => {
        r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    };
}

/// An image reference `[host[:port]/]path[:tag][@digest]` as one ECMA-262
/// regular expression. The pattern cannot count, so the 255-character bound
/// of the name (REF-3) is checked by the parser alone.
pub const REFERENCE_PATTERN: &str = concat!(
    "^(?:",
    domain!(),
    "/)?",
    path!(),
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?",
    r"(?:@(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}))?$"
);

/// A repository name `[host[:port]/]path` (REF-1), the same bound as
/// [`REFERENCE_PATTERN`] without tag and digest.
pub const REPOSITORY_PATTERN: &str = concat!("^(?:", domain!(), "/)?", path!(), "$");

/// A content digest `algorithm:encoded` (REF-5). The registered algorithms
/// `sha256` (64 lowercase hex digits) and `sha512` (128) are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: &'static str,
    encoded: String,
}

impl Digest {
    /// Parse a digest.
    ///
    /// # Errors
    ///
    /// [`ReferenceError`] (REF-5) for an unknown algorithm or a wrong length
    /// or alphabet of the hex part.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = tagcast_spec::Digest::parse(&format!("sha256:{}", "a".repeat(64)))?;
    /// assert_eq!(d.algorithm(), "sha256");
    /// # Ok::<(), tagcast_spec::ReferenceError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        parse_digest(input, input, 0)
    }

    /// The algorithm, `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        self.algorithm
    }

    /// The hex-encoded hash.
    pub fn encoded(&self) -> &str {
        &self.encoded
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.encoded)
    }
}

fn parse_digest(whole: &str, digest: &str, offset: usize) -> Result<Digest, ReferenceError> {
    let err = |pos: usize, msg: String| ReferenceError::new(whole, pos, "REF-5", msg);
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(err(
            offset,
            format!("digest {digest:?} at position {offset} has no ':' between algorithm and hex"),
        ));
    };
    let (algorithm, len) = match algorithm {
        "sha256" => ("sha256", 64),
        "sha512" => ("sha512", 128),
        other => {
            return Err(err(
                offset,
                format!("digest algorithm {other:?} at position {offset} is not one of sha256, sha512"),
            ));
        }
    };
    let hex_at = offset + algorithm.len() + 1;
    if let Some(i) = encoded.bytes().position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(err(
            hex_at + i,
            format!(
                "{algorithm} digest at position {} has a character other than lowercase hex 0-9a-f",
                hex_at + i
            ),
        ));
    }
    if encoded.len() != len {
        return Err(err(
            hex_at,
            format!(
                "{algorithm} digest at position {hex_at} has {} hex digits, expected {len}",
                encoded.len()
            ),
        ));
    }
    Ok(Digest {
        algorithm,
        encoded: encoded.to_owned(),
    })
}

/// A normalized repository: `domain/path`, with Docker Hub's defaults
/// applied (REF-6). Subscriptions and events always carry this form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository {
    domain: String,
    path: String,
}

impl Repository {
    /// Parse a repository name and normalize it: `cwl-wes` becomes
    /// `docker.io/library/cwl-wes`, `elixircloud/cwl-wes` becomes
    /// `docker.io/elixircloud/cwl-wes`.
    ///
    /// # Errors
    ///
    /// [`ReferenceError`] for anything that is not a name of the reference
    /// grammar, including a name with a tag or digest (REF-1).
    ///
    /// # Examples
    ///
    /// ```
    /// let repo = tagcast_spec::Repository::parse("elixircloud/cwl-wes")?;
    /// assert_eq!(repo.to_string(), "docker.io/elixircloud/cwl-wes");
    /// # Ok::<(), tagcast_spec::ReferenceError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let reference = ImageReference::parse(input)?;
        if reference.tag.is_some() || reference.digest.is_some() {
            let at = input.rfind(['@', ':']).unwrap_or(0);
            return Err(ReferenceError::new(
                input,
                at,
                "REF-1",
                format!(
                    "a repository has no tag or digest, found {:?} at position {at}",
                    &input[at..]
                ),
            ));
        }
        Ok(reference.repository())
    }

    /// The registry: `host[:port]`, `docker.io` for Docker Hub.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path inside the registry, e.g. `library/cwl-wes`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)
    }
}

impl FromStr for Repository {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An image reference `[host[:port]/]path[:tag][@digest]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    host: Option<String>,
    port: Option<u16>,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    /// Parse a reference.
    ///
    /// # Errors
    ///
    /// [`ReferenceError`] naming the input, the position and the rule
    /// (REF-1 to REF-5).
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::ImageReference;
    ///
    /// let r = ImageReference::parse("elixircloud/cwl-wes:1.1-demo-201108-195630")?;
    /// assert_eq!(r.repository().to_string(), "docker.io/elixircloud/cwl-wes");
    /// assert_eq!(r.tag(), Some("1.1-demo-201108-195630"));
    /// # Ok::<(), tagcast_spec::ReferenceError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |pos: usize, req: &'static str, msg: String| ReferenceError::new(input, pos, req, msg);
        if input.is_empty() {
            return Err(err(
                0,
                "REF-1",
                "empty, expected [host[:port]/]path[:tag][@digest]".to_owned(),
            ));
        }
        if let Some((i, c)) = input.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
            return Err(err(
                i,
                "REF-1",
                format!("character {c:?} at position {i} is not allowed in a reference"),
            ));
        }
        // The digest follows the first '@'.
        let (name_and_tag, digest) = match input.find('@') {
            Some(at) => {
                let digest = &input[at + 1..];
                (&input[..at], Some(parse_digest(input, digest, at + 1)?))
            }
            None => (input, None),
        };
        // The domain is the first component when it looks like a host.
        let (domain, rest, rest_at) = match name_and_tag.find('/') {
            Some(slash) => {
                let first = &name_and_tag[..slash];
                if first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|b| b.is_ascii_uppercase()) {
                    (Some(first), &name_and_tag[slash + 1..], slash + 1)
                } else {
                    (None, name_and_tag, 0)
                }
            }
            None => (None, name_and_tag, 0),
        };
        // The tag follows the last ':' of what remains (after the domain).
        let (path, tag) = match rest.rfind(':') {
            Some(colon) => (&rest[..colon], Some((&rest[colon + 1..], rest_at + colon + 1))),
            None => (rest, None),
        };
        let (host, port) = match domain {
            Some(domain) => {
                let (host, port) = parse_domain(input, domain)?;
                (Some(host), port)
            }
            None => (None, None),
        };
        check_path(input, path, rest_at)?;
        let name_len = domain.map_or(0, |d| d.len() + 1) + path.len();
        if name_len > MAX_NAME_LENGTH {
            return Err(err(
                0,
                "REF-3",
                format!("name is {name_len} characters long, at most {MAX_NAME_LENGTH} are allowed"),
            ));
        }
        // REF-3 holds for the normalized name too, as Distribution checks
        // `docker.io/library/…` after adding the prefix: a short name that
        // fits only as written would not parse again once printed.
        let normalized = normalize(host.as_deref(), port, path);
        let normalized_len = normalized.domain.len() + 1 + normalized.path.len();
        if normalized_len > MAX_NAME_LENGTH {
            return Err(err(
                0,
                "REF-3",
                format!(
                    "name is {normalized_len} characters long once normalized to {}/{}…, at most {MAX_NAME_LENGTH} are allowed",
                    normalized.domain,
                    if normalized.path.len() > path.len() {
                        "library/"
                    } else {
                        ""
                    },
                ),
            ));
        }
        let tag = match tag {
            Some((tag, at)) => {
                check_tag(input, tag, at)?;
                Some(tag.to_owned())
            }
            None => None,
        };
        Ok(Self {
            host,
            port,
            path: path.to_owned(),
            tag,
            digest,
        })
    }

    /// The host as written, if the reference names one.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The port, if the reference names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The path as written (not normalized).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag parsed as a tagcast tag, if the reference has a tag.
    pub fn tagcast_tag(&self) -> Option<Result<Tag, crate::TagError>> {
        self.tag.as_deref().map(Tag::parse)
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The normalized repository (REF-6).
    pub fn repository(&self) -> Repository {
        normalize(self.host.as_deref(), self.port, &self.path)
    }

    /// The normalized form: normalized repository, then tag and digest.
    pub fn normalized(&self) -> String {
        let mut s = self.repository().to_string();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
        s
    }
}

/// REF-6: no host is Docker Hub, `index.docker.io` is `docker.io`, and a
/// one-component path there gets `library/`.
fn normalize(host: Option<&str>, port: Option<u16>, path: &str) -> Repository {
    let domain = match (host, port) {
        (None, _) => DOCKER_HUB.to_owned(),
        (Some(DOCKER_HUB_LEGACY), None) => DOCKER_HUB.to_owned(),
        (Some(host), None) => host.to_owned(),
        (Some(host), Some(port)) => format!("{host}:{port}"),
    };
    let path = if domain == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    Repository { domain, path }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.host {
            f.write_str(host)?;
            if let Some(port) = self.port {
                write!(f, ":{port}")?;
            }
            f.write_str("/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse_domain(input: &str, domain: &str) -> Result<(String, Option<u16>), ReferenceError> {
    let err = |pos: usize, msg: String| ReferenceError::new(input, pos, "REF-7", msg);
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(err(0, "IPv6 host at position 0 has no closing ']'".to_owned()));
        };
        let ip = &rest[..end];
        if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(err(
                1,
                format!("IPv6 host {ip:?} at position 1 is not hex digits and ':'"),
            ));
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(port) => (&domain[..end + 2], Some((port, end + 3))),
            None if after.is_empty() => (domain, None),
            None => {
                return Err(err(
                    end + 2,
                    format!("unexpected {after:?} at position {} after the IPv6 host", end + 2),
                ));
            }
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some((port, host.len() + 1))),
            None => (domain, None),
        }
    };
    if !host.starts_with('[') {
        let mut at = 0;
        for component in host.split('.') {
            let bytes = component.as_bytes();
            let ok = !bytes.is_empty()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-';
            if !ok {
                return Err(err(
                    at,
                    format!("host component {component:?} at position {at} must be letters, digits and inner '-'"),
                ));
            }
            at += component.len() + 1;
        }
    }
    let port = match port {
        Some((digits, at)) => match digits.parse::<u16>() {
            Ok(p) if digits.bytes().all(|b| b.is_ascii_digit()) => Some(p),
            _ => {
                return Err(err(
                    at,
                    format!("port {digits:?} at position {at} is not a number 0-65535"),
                ));
            }
        },
        None => None,
    };
    Ok((host.to_owned(), port))
}

fn check_path(input: &str, path: &str, offset: usize) -> Result<(), ReferenceError> {
    let mut at = offset;
    for component in path.split('/') {
        if !is_path_component(component) {
            let msg = if component.is_empty() {
                format!("empty path component at position {at}")
            } else {
                format!(
                    "path component {component:?} at position {at} must match [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
                )
            };
            return Err(ReferenceError::new(input, at, "REF-2", msg));
        }
        at += component.len() + 1;
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        match &b[sep..i] {
            b"." | b"_" | b"__" => {}
            s if s.iter().all(|&c| c == b'-') => {}
            _ => return false,
        }
    }
}

fn check_tag(input: &str, tag: &str, at: usize) -> Result<(), ReferenceError> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = tag.as_bytes();
    let ok = !b.is_empty() && b.len() <= 128 && word(b[0]) && b.iter().all(|&c| word(c) || c == b'.' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::new(
            input,
            at,
            "REF-4",
            format!("tag {tag:?} at position {at} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"),
        ))
    }
}

macro_rules! string_serde {
    ($ty:ty, $name:literal, $pattern:expr, $description:literal, [$($example:literal),*]) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = Cow::<'de, str>::deserialize(deserializer)?;
                <$ty>::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "schema")]
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": $description,
                    "pattern": $pattern,
                    "examples": [$($example),*]
                })
            }
        }
    };
}

string_serde!(
    ImageReference,
    "ImageReference",
    REFERENCE_PATTERN,
    "An OCI image reference `[host[:port]/]path[:tag][@digest]` (spec/tags.md REF-1): path components `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*` (REF-2), the name (host and path) at most 255 characters (REF-3, not expressible in the pattern), tag `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (REF-4), digest `sha256:` + 64 or `sha512:` + 128 lowercase hex digits (REF-5).",
    [
        "elixircloud/cwl-wes:1.1-demo-201108-195630",
        "docker.io/elixircloud/cwl-wes:1.1.0-production-201108-195630@sha256:0f1d5e1b6b1ae7b1c7e1a4d57e3c0c8f9d2a1b3c4d5e6f708192a3b4c5d6e7f8",
        "localhost:5000/tes/funnel:1.1.0-staging-240229-235959"
    ]
);

string_serde!(
    Repository,
    "Repository",
    REPOSITORY_PATTERN,
    "An image repository `[host[:port]/]path` (spec/tags.md REF-1), stored and sent normalized (REF-6): a name without a host is on `docker.io`, and a one-component path there gets `library/`. The name is at most 255 characters (REF-3).",
    [
        "docker.io/elixircloud/cwl-wes",
        "quay.io/biocontainers/samtools",
        "ghcr.io/elixir-cloud-aai/cloud-registry"
    ]
);

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl JsonSchema for Digest {
    fn schema_name() -> Cow<'static, str> {
        "Digest".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A content digest (spec/tags.md REF-5): `sha256:` + 64 or `sha512:` + 128 lowercase hex digits.",
            "pattern": "^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$",
            "examples": ["sha256:0f1d5e1b6b1ae7b1c7e1a4d57e3c0c8f9d2a1b3c4d5e6f708192a3b4c5d6e7f8"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ImageReference, MAX_NAME_LENGTH, Repository, is_path_component};

    /// Fuzz regression (`fuzz/`, target `image_reference`, 2026-11-28): a
    /// 241-character Docker Hub short name was accepted, printed as
    /// `docker.io/library/…` (259 characters) and then refused.
    #[test]
    fn a_short_name_too_long_once_normalized_is_refused() {
        let input = "doc90doc908--8--erdqdo90--8--8--er0--8--er08--8--erc908--4e-88--r-dqdo90--8--eqdor-dqdo90--8--eqdoc908--8--erdqyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyydo90--8--er08--8--erc90--er0--8--er08--8--erc908--4e-88--r-dqdo90--8--eqdoc908--8--erd8--4--e";
        let err = Repository::parse(input).unwrap_err();
        assert_eq!(err.requirement(), "REF-3", "{err}");
        // The longest short name that fits once normalized still round-trips.
        let fits = "a".repeat(MAX_NAME_LENGTH - "docker.io/library/".len());
        let repository = Repository::parse(&fits).unwrap();
        assert_eq!(Repository::parse(&repository.to_string()).unwrap(), repository);
        assert!(Repository::parse(&format!("{fits}a")).is_err());
        // An image reference is held to the same bound: its repository is
        // what subscriptions and events carry.
        let err = ImageReference::parse(&format!("{fits}a:1.1-demo-201108-195630")).unwrap_err();
        assert_eq!(err.requirement(), "REF-3", "{err}");
        assert!(
            err.to_string().contains("once normalized to docker.io/library/"),
            "{err}"
        );
        let reference = ImageReference::parse(&format!("{fits}:1.1-demo-201108-195630")).unwrap();
        assert_eq!(
            ImageReference::parse(&reference.normalized()).unwrap().repository(),
            reference.repository()
        );
    }

    #[test]
    fn path_components() {
        for ok in ["a", "cwl-wes", "a__b", "a.b", "a---b", "a_b", "0"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a..b", "a___b", "A", "a._b", "a.-b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }
}
