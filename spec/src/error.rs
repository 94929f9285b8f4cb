//! Errors of the tag and image-reference parsers.
//!
//! Every message names the input, the byte position (counting from 0) and the
//! rule that was broken, and every error carries the requirement ID of
//! `spec/tags.md` that the input violates.

use std::fmt;

/// A string is not a tag (or an api-version) of the tagcast grammar
/// (`spec/tags.md`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {} {:?}: {}", .0.what, .0.input, .0.kind)]
pub struct TagError(Box<TagErrorInner>);

// Boxed so that `Result<Tag, TagError>` stays small on the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TagErrorInner {
    what: &'static str,
    input: String,
    kind: TagErrorKind,
    suggestion: Option<String>,
}

impl TagError {
    pub(crate) fn new(what: &'static str, input: &str, kind: TagErrorKind) -> Self {
        Self(Box::new(TagErrorInner {
            what,
            input: input.to_owned(),
            kind,
            suggestion: None,
        }))
    }

    pub(crate) fn with_suggestion(mut self, suggestion: Option<String>) -> Self {
        self.0.suggestion = suggestion;
        self
    }

    /// The rejected input, as given.
    pub fn input(&self) -> &str {
        &self.0.input
    }

    /// Byte offset (from 0) in the input where the broken rule applies.
    pub fn position(&self) -> usize {
        self.0.kind.position()
    }

    /// The requirement ID of `spec/tags.md` that the input breaks, e.g. `TAG-4`.
    pub fn requirement(&self) -> &'static str {
        self.0.kind.requirement()
    }

    /// What the person most likely meant, when the parser can tell: the
    /// stage for a misspelt or wrongly cased stage (`production` for
    /// `Production` or `prodution`), otherwise the whole corrected tag
    /// (`1.1.0-production-110809-195630` for a four-digit year). Never
    /// part of the message, so that a tool can print it as a hint.
    pub fn suggestion(&self) -> Option<&str> {
        self.0.suggestion.as_deref()
    }
}

/// A mistake people often make, which the parser names the way a person
/// would instead of reporting the first character it could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mistake {
    /// `v1.1.0-…`: a version prefix.
    VPrefix(char),
    /// `2011-08-09` or `20110809`: the year written with four digits.
    FourDigitYear(String),
    /// `201108T195630`: the date and time joined by something else than `-`.
    DateTimeSeparator(char),
    /// `19:56:30`: separators inside the time.
    TimeColons(String),
    /// `1956`: hours and minutes only.
    NoSeconds(String),
}

impl Mistake {
    fn requirement(&self) -> &'static str {
        match self {
            Mistake::VPrefix(_) => "TAG-1",
            _ => "TAG-4",
        }
    }
}

/// Which part of the api-version a number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component {
    Major,
    Minor,
    Patch,
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Component::Major => "major version",
            Component::Minor => "minor version",
            Component::Patch => "patch version",
        })
    }
}

/// A field of the timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Month,
    Hour,
    Minute,
    Second,
}

impl Field {
    pub(crate) fn range(self) -> &'static str {
        match self {
            Field::Month => "01-12",
            Field::Hour => "00-23",
            Field::Minute | Field::Second => "00-59",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Month => "month",
            Field::Hour => "hour",
            Field::Minute => "minute",
            Field::Second => "second",
        })
    }
}

/// What the parser found where it expected something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    Char(char),
    End,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Found::End => f.write_str("end of input"),
            Found::Char(c) if c.is_ascii_graphic() => write!(f, "character '{c}'"),
            Found::Char(c) => write!(f, "character {c:?} (U+{:04X})", c as u32),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TagErrorKind {
    Empty {
        expected: &'static str,
    },
    Unexpected {
        found: Found,
        position: usize,
        expected: &'static str,
        requirement: &'static str,
    },
    LeadingZero {
        component: Component,
        digits: String,
        position: usize,
    },
    Overflow {
        component: Component,
        digits: String,
        position: usize,
    },
    Stage {
        stage: String,
        position: usize,
    },
    OutOfRange {
        field: Field,
        value: u8,
        position: usize,
    },
    Day {
        day: u8,
        max: u8,
        month: u8,
        year: u16,
        position: usize,
    },
    Mistake {
        mistake: Mistake,
        position: usize,
    },
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl TagErrorKind {
    fn position(&self) -> usize {
        match *self {
            TagErrorKind::Empty { .. } => 0,
            TagErrorKind::Unexpected { position, .. }
            | TagErrorKind::LeadingZero { position, .. }
            | TagErrorKind::Overflow { position, .. }
            | TagErrorKind::Stage { position, .. }
            | TagErrorKind::OutOfRange { position, .. }
            | TagErrorKind::Day { position, .. }
            | TagErrorKind::Mistake { position, .. } => position,
        }
    }

    fn requirement(&self) -> &'static str {
        match self {
            TagErrorKind::Empty { .. } => "TAG-1",
            TagErrorKind::Unexpected { requirement, .. } => requirement,
            TagErrorKind::LeadingZero { .. } | TagErrorKind::Overflow { .. } => "TAG-2",
            TagErrorKind::Stage { .. } => "TAG-3",
            TagErrorKind::OutOfRange { .. } | TagErrorKind::Day { .. } => "TAG-4",
            TagErrorKind::Mistake { mistake, .. } => mistake.requirement(),
        }
    }
}

impl fmt::Display for TagErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagErrorKind::Empty { expected } => write!(f, "empty, expected {expected}"),
            TagErrorKind::Unexpected {
                found,
                position,
                expected,
                ..
            } => write!(f, "unexpected {found} at position {position}, expected {expected}"),
            TagErrorKind::LeadingZero {
                component,
                digits,
                position,
            } => write!(f, "{component} {digits:?} at position {position} has a leading zero"),
            TagErrorKind::Overflow {
                component,
                digits,
                position,
            } => write!(
                f,
                "{component} {digits:?} at position {position} does not fit in 64 bits"
            ),
            TagErrorKind::Stage { stage, position } => write!(
                f,
                "stage {stage:?} at position {position} is not one of production, staging, development, demo"
            ),
            TagErrorKind::OutOfRange { field, value, position } => write!(
                f,
                "{field} {value:02} at position {position} is out of range {}",
                field.range()
            ),
            TagErrorKind::Day {
                day,
                max,
                month,
                year,
                position,
            } => write!(
                f,
                "day {day:02} at position {position} is out of range 01-{max} for {} {year}",
                MONTH_NAMES[usize::from(*month) - 1]
            ),
            TagErrorKind::Mistake { mistake, position } => match mistake {
                Mistake::VPrefix(v) => write!(
                    f,
                    "prefix '{v}' at position {position}: a tag starts with the digits of the api-version, no prefix"
                ),
                Mistake::FourDigitYear(year) => write!(
                    f,
                    "year {year:?} at position {position} must be two digits, YY (the timestamp is yymmdd-hhmmss)"
                ),
                Mistake::DateTimeSeparator(c) => write!(
                    f,
                    "{} at position {position} separates the date and the time, expected '-' (the timestamp is yymmdd-hhmmss)",
                    Found::Char(*c)
                ),
                Mistake::TimeColons(time) => write!(
                    f,
                    "time {time:?} at position {position} has ':' separators, expected six digits hhmmss"
                ),
                Mistake::NoSeconds(time) => write!(
                    f,
                    "time {time:?} at position {position} has no seconds, expected six digits hhmmss"
                ),
            },
        }
    }
}

/// A `chrono::DateTime<Utc>` outside the years the timestamp can express
/// (2000-2099, `spec/tags.md` TAG-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("time {year} is outside the tag's year window 2000-2099")]
pub struct TimestampRangeError {
    pub(crate) year: i32,
}

/// A string is not an API requirement (`spec/tags.md` TAG-10).
///
/// The message says everything, the cause included, so the error has no
/// `source()`: a caller that prints the chain (`anyhow`'s `{:#}`) would
/// otherwise print the cause twice.
#[derive(Debug, thiserror::Error)]
#[error("invalid api-version requirement {input:?}: {kind} (TAG-10)")]
pub struct RequirementError {
    pub(crate) input: String,
    pub(crate) kind: RequirementErrorKind,
}

impl RequirementError {
    /// The rejected input, as given.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The byte position of the first character that breaks the grammar,
    /// counting from 0, when the grammar is what failed.
    pub fn position(&self) -> Option<usize> {
        match &self.kind {
            RequirementErrorKind::Grammar { position, .. } => Some(*position),
            RequirementErrorKind::Semver(_) => None,
        }
    }

    /// The ID of the rule broken: always `TAG-10`.
    pub fn requirement(&self) -> &'static str {
        "TAG-10"
    }
}

/// What is wrong with a requirement.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequirementErrorKind {
    /// The text is not of the grammar of TAG-10.
    #[error("{found} at position {position}, expected {expected}{hint}")]
    Grammar {
        found: String,
        position: usize,
        expected: &'static str,
        hint: String,
    },
    /// The grammar holds but `semver` refuses the requirement.
    #[error("{0}")]
    Semver(semver::Error),
}

/// A string is not an OCI image reference (`spec/tags.md` REF-1 to REF-6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {message}")]
pub struct ReferenceError {
    input: String,
    message: String,
    position: usize,
    requirement: &'static str,
}

impl ReferenceError {
    pub(crate) fn new(input: &str, position: usize, requirement: &'static str, message: String) -> Self {
        Self {
            input: input.to_owned(),
            message,
            position,
            requirement,
        }
    }

    /// The rejected input, as given.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Byte offset (from 0) in the input where the broken rule applies.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The requirement ID of `spec/tags.md` that the input breaks, e.g. `REF-2`.
    pub fn requirement(&self) -> &'static str {
        self.requirement
    }
}
