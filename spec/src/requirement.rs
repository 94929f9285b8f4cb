//! API requirements (TAG-10) and the update rule (TAG-11).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

#[cfg(feature = "schema")]
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{RequirementError, RequirementErrorKind};
use crate::tag::{ApiVersion, Stage, Tag};

/// The grammar of TAG-10 as a JSON Schema pattern (ECMA-262). It checks
/// everything but the 64-bit bound of each number.
pub const REQUIREMENT_PATTERN: &str = concat!(
    r"^ *(?:\*|",
    r"(?:(?:[=~^]|[<>]=?) *)?(?:0|[1-9][0-9]*)(?:\.(?:[*xX]|(?:0|[1-9][0-9]*)(?:\.(?:[*xX]|0|[1-9][0-9]*))?))?",
    r"(?: *, *",
    r"(?:(?:[=~^]|[<>]=?) *)?(?:0|[1-9][0-9]*)(?:\.(?:[*xX]|(?:0|[1-9][0-9]*)(?:\.(?:[*xX]|0|[1-9][0-9]*))?))?",
    r")*) *$"
);

/// Which api-versions a subscriber accepts: a Cargo-style
/// `semver::VersionReq` (`^1.1`, `~1.1.0`, `>=1.0, <2`, `=1.1.0`, `*`)
/// matched against the tag's api-version as a plain version (TAG-10).
///
/// "The pre-release is ignored for matching": the requirement is checked
/// against `MAJOR.MINOR.PATCH` alone, so `^1.1` matches
/// `1.1.0-production-201108-195630` even though `semver` on its own never
/// matches a pre-release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequirement {
    req: semver::VersionReq,
    text: String,
}

impl ApiRequirement {
    /// Parse a requirement.
    ///
    /// # Errors
    ///
    /// [`RequirementError`] naming the input, the position and what was
    /// expected there, when the input is not of the grammar of TAG-10.
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::{ApiRequirement, Tag};
    ///
    /// let req = ApiRequirement::parse("^1.1")?;
    /// assert!(req.matches(&Tag::parse("1.2-production-201108-195630").unwrap().api_version()));
    /// assert!(!req.matches(&Tag::parse("2.0.0-production-201108-195630").unwrap().api_version()));
    /// # Ok::<(), tagcast_spec::RequirementError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, RequirementError> {
        let error = |kind| RequirementError {
            input: input.to_owned(),
            kind,
        };
        grammar::check(input).map_err(error)?;
        let req = semver::VersionReq::parse(input).map_err(|e| error(RequirementErrorKind::Semver(e)))?;
        Ok(Self {
            req,
            text: input.trim().to_owned(),
        })
    }

    /// The default requirement for a service of this `type.version`:
    /// `^` + the version (TAG-10).
    pub fn caret(version: &semver::Version) -> Self {
        let text = format!("^{}.{}.{}", version.major, version.minor, version.patch);
        Self {
            req: semver::VersionReq::parse(&text).expect("a caret requirement of a version is valid"),
            text,
        }
    }

    /// Every version (`*`).
    pub fn any() -> Self {
        Self {
            req: semver::VersionReq::STAR,
            text: "*".to_owned(),
        }
    }

    /// Whether the api-version satisfies the requirement.
    pub fn matches(&self, version: &ApiVersion) -> bool {
        self.req.matches(&version.to_semver())
    }
}

impl fmt::Display for ApiRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for ApiRequirement {
    type Err = RequirementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ApiRequirement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ApiRequirement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl JsonSchema for ApiRequirement {
    fn schema_name() -> Cow<'static, str> {
        "ApiRequirement".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "pattern": REQUIREMENT_PATTERN,
            "description": concat!(
                "A requirement on the tag's api-version (`^1.1`, `~1.1.0`, `>=1.0, <2`, `=1.1.0`, `*`), ",
                "matched against it as a plain version, the pre-release ignored; grammar and bounds ",
                "in spec/tags.md TAG-10. The pattern cannot bound numbers to 64 bits."
            ),
            "examples": ["^1.1", "~1.0.3", ">=1.0, <2", "*"]
        })
    }
}

/// Why a candidate tag is not an update for a subscriber (TAG-11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAnUpdate {
    /// The candidate is of another stage than the subscription's.
    #[error("stage {candidate} is not the subscribed stage {subscribed}")]
    OtherStage {
        /// The candidate's stage.
        candidate: Stage,
        /// The subscriber's stage.
        subscribed: Stage,
    },
    /// The candidate's api-version does not satisfy the requirement.
    #[error("api-version {version} does not match the requirement")]
    ApiVersion {
        /// The candidate's api-version, canonical.
        version: ApiVersion,
    },
    /// The candidate is not newer than the current tag.
    #[error("{candidate} is not newer than the current tag {current}")]
    NotNewer {
        /// The candidate.
        candidate: Tag,
        /// What the subscriber has.
        current: Tag,
    },
}

/// What a subscriber accepts: one stage and an API requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// The subscribed stage.
    pub stage: Stage,
    /// The accepted api-versions.
    pub requirement: ApiRequirement,
}

impl UpdatePolicy {
    /// The update rule (TAG-11): a subscriber at tag `current` receives
    /// `candidate` iff it has the subscribed stage, its api-version matches
    /// the requirement, and it is newer than `current` (or `current` is
    /// unknown). A `current` of another stage cannot be compared (TAG-9) and
    /// counts as unknown.
    ///
    /// # Errors
    ///
    /// [`NotAnUpdate`] saying which condition failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::{ApiRequirement, Stage, Tag, UpdatePolicy};
    ///
    /// let policy = UpdatePolicy { stage: Stage::Production, requirement: ApiRequirement::parse("^1.1")? };
    /// let old = Tag::parse("1.1.0-production-201108-195630").unwrap();
    /// let new = Tag::parse("1.1.0-production-201109-000000").unwrap();
    /// assert!(policy.check(Some(&old), &new).is_ok());
    /// assert!(policy.check(Some(&new), &old).is_err()); // never a downgrade
    /// # Ok::<(), tagcast_spec::RequirementError>(())
    /// ```
    pub fn check(&self, current: Option<&Tag>, candidate: &Tag) -> Result<(), NotAnUpdate> {
        if candidate.stage() != self.stage {
            return Err(NotAnUpdate::OtherStage {
                candidate: candidate.stage(),
                subscribed: self.stage,
            });
        }
        if !self.requirement.matches(&candidate.api_version()) {
            return Err(NotAnUpdate::ApiVersion {
                version: candidate.api_version().canonical(),
            });
        }
        if let Some(current) = current {
            if candidate.channel_cmp(current).is_some_and(|o| o != Ordering::Greater) {
                return Err(NotAnUpdate::NotNewer {
                    candidate: *candidate,
                    current: *current,
                });
            }
        }
        Ok(())
    }
}

/// The update rule (TAG-11) as a predicate; see [`UpdatePolicy::check`].
pub fn is_update(current: Option<&Tag>, candidate: &Tag, stage: Stage, requirement: &ApiRequirement) -> bool {
    UpdatePolicy {
        stage,
        requirement: requirement.clone(),
    }
    .check(current, candidate)
    .is_ok()
}

/// The grammar of TAG-10, checked by hand so that an error names the
/// position and what was expected there.
mod grammar {
    use crate::error::RequirementErrorKind;

    const BETWEEN: &str = "',' between comparators, or the end";

    /// The hint for comparators without a comma, showing the input as it
    /// should have been written.
    fn comma_hint(fixed: &str) -> String {
        format!(" (separate comparators with a comma: `{fixed}`)")
    }

    struct Cursor<'a> {
        bytes: &'a [u8],
        input: &'a str,
        pos: usize,
    }

    impl Cursor<'_> {
        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.pos).copied()
        }

        fn spaces(&mut self) {
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
        }

        /// The error at the current position, with a hint for the mistakes
        /// people make most often.
        fn fail(&self, expected: &'static str) -> RequirementErrorKind {
            let rest = &self.input[self.pos..];
            let hint = if rest.starts_with("&&") {
                let parts: Vec<&str> = self.input.split("&&").map(str::trim).collect();
                comma_hint(&parts.join(", "))
            } else if rest.starts_with('-') || rest.starts_with('+') {
                " (a requirement names plain versions; no pre-release or build metadata)".into()
            } else if rest.starts_with('v') || rest.starts_with('V') {
                " (no `v` prefix)".into()
            } else {
                "".into()
            };
            self.fail_with(expected, hint)
        }

        fn fail_with(&self, expected: &'static str, hint: String) -> RequirementErrorKind {
            let found = match self.input[self.pos..].chars().next() {
                Some(c) => format!("unexpected character {c:?}"),
                None => "unexpected end".to_owned(),
            };
            RequirementErrorKind::Grammar {
                found,
                position: self.pos,
                expected,
                hint,
            }
        }

        /// `num-id`: `0` or no leading zero, fitting in 64 bits.
        fn number(&mut self, expected: &'static str) -> Result<(), RequirementErrorKind> {
            let start = self.pos;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
            let digits = &self.input[start..self.pos];
            if digits.is_empty() {
                return Err(self.fail(expected));
            }
            if digits.len() > 1 && digits.starts_with('0') {
                self.pos = start;
                return Err(self.fail("a number without a leading zero"));
            }
            if digits.parse::<u64>().is_err() {
                self.pos = start;
                return Err(self.fail("a number of at most 18446744073709551615"));
            }
            Ok(())
        }

        fn wildcard(&mut self) -> bool {
            if matches!(self.peek(), Some(b'*' | b'x' | b'X')) {
                self.pos += 1;
                true
            } else {
                false
            }
        }

        /// `[ op OWS ] partial`
        fn comparator(&mut self) -> Result<(), RequirementErrorKind> {
            let expected = match self.peek() {
                Some(b'>' | b'<') => {
                    self.pos += 1;
                    if self.peek() == Some(b'=') {
                        self.pos += 1;
                    }
                    self.spaces();
                    "a major version"
                }
                Some(b'=' | b'~' | b'^') => {
                    self.pos += 1;
                    self.spaces();
                    "a major version"
                }
                _ => "an operator (= > >= < <= ~ ^), a major version or `*`",
            };
            self.number(expected)?;
            if self.peek() != Some(b'.') {
                return Ok(());
            }
            self.pos += 1;
            if self.wildcard() {
                return Ok(());
            }
            self.number("a minor version or a wildcard (* x X)")?;
            if self.peek() != Some(b'.') {
                return Ok(());
            }
            self.pos += 1;
            if self.wildcard() {
                return Ok(());
            }
            self.number("a patch version or a wildcard (* x X)")
        }
    }

    pub(super) fn check(input: &str) -> Result<(), RequirementErrorKind> {
        let mut c = Cursor {
            bytes: input.as_bytes(),
            input,
            pos: 0,
        };
        c.spaces();
        if c.peek() == Some(b'*') {
            c.pos += 1;
            c.spaces();
            return match c.peek() {
                None => Ok(()),
                Some(_) => Err(c.fail("the end after `*` (it admits every version and stands alone)")),
            };
        }
        loop {
            c.comparator()?;
            c.spaces();
            match c.peek() {
                None => return Ok(()),
                Some(b',') => {
                    c.pos += 1;
                    c.spaces();
                }
                // `>=1.1 <2`: npm's and Python's spelling of a range.
                Some(b'<' | b'>' | b'=') => {
                    let fixed = format!("{}, {}", input[..c.pos].trim_end(), &input[c.pos..]);
                    return Err(c.fail_with(BETWEEN, comma_hint(&fixed)));
                }
                Some(_) => return Err(c.fail(BETWEEN)),
            }
        }
    }
}
