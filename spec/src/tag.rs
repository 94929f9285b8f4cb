//! The tag grammar (`spec/tags.md`): `<api-version>-<stage>-<timestamp>`.

mod parse;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
#[cfg(feature = "schema")]
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{TagError, TimestampRangeError};

// The pieces of the pattern are macros so that `concat!` can build one
// literal from them; each is written out in full so that a JSON Schema
// validator rejects exactly what the parser rejects.

/// One `num-id` of the api-version: `"0" / ( %x31-39 *DIGIT )`, at most
/// 18446744073709551615 (u64).
macro_rules! num_id {
    () => {
        "(?:0|[1-9][0-9]{0,18}|1(?:[0-7][0-9]{18}|8(?:[0-3][0-9]{17}|4(?:[0-3][0-9]{16}|4(?:[0-5][0-9]{15}|6(?:[0-6][0-9]{14}|7(?:[0-3][0-9]{13}|4(?:[0-3][0-9]{12}|40(?:[0-6][0-9]{10}|7(?:[0-2][0-9]{9}|3(?:[0-6][0-9]{8}|70(?:[0-8][0-9]{6}|9(?:[0-4][0-9]{5}|5(?:[0-4][0-9]{4}|5(?:0[0-9]{3}|1(?:[0-5][0-9]{2}|6(?:0[0-9]{1}|1[0-5])))))))))))))))))"
    };
}

/// `yymmdd`: a real calendar date of the years 2000-2099 (February 29 in
/// years divisible by 4, which in this window are exactly the leap years).
macro_rules! date {
    () => {
        "(?:[0-9]{2}(?:(?:0[13578]|1[02])(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)(?:0[1-9]|[12][0-9]|30)|02(?:0[1-9]|1[0-9]|2[0-8]))|(?:[02468][048]|[13579][26])0229)"
    };
}

/// `hhmmss`: hour 00-23, minute 00-59, second 00-59.
macro_rules! time {
    () => {
        "(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"
    };
}

/// The length of the longest tag of the grammar: three 20-digit numbers
/// (`u64::MAX`), two dots, `-development-` and the 13-character timestamp
/// (`spec/tags.md`: 3 × 20 + 2 + 1 + 11 + 1 + 13). The schema's `maxLength`.
#[cfg(feature = "schema")]
pub(crate) const MAX_TAG_LENGTH: usize = 88;

/// The tag grammar as one ECMA-262 regular expression (JSON Schema `pattern`).
///
/// It accepts exactly the strings that [`Tag::parse`] accepts: calendar
/// dates, leap years and the u64 bound of each number are spelled out in it.
/// A test proves the two agree on every vector of
/// `conformance/vectors/tags.json`.
pub const TAG_PATTERN: &str = concat!(
    "^",
    num_id!(),
    "\\.",
    num_id!(),
    "(?:\\.",
    num_id!(),
    ")?-(?:production|staging|development|demo)-",
    date!(),
    "-",
    time!(),
    "$"
);

/// The deployment stage a tag is meant for (TAG-3). Tags of different stages
/// are never compared (TAG-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// `production`: what a production deployment runs.
    Production,
    /// `staging`: release candidates, tried before production.
    Staging,
    /// `development`: builds of the development branch.
    Development,
    /// `demo`: deployments that show a service to users.
    Demo,
}

impl Stage {
    /// Every stage, in the order the grammar lists them.
    pub const ALL: [Stage; 4] = [Stage::Production, Stage::Staging, Stage::Development, Stage::Demo];

    /// The stage as it is written in a tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Production => "production",
            Stage::Staging => "staging",
            Stage::Development => "development",
            Stage::Demo => "demo",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string is not one of the four stages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stage {0:?}: not one of production, staging, development, demo")]
pub struct StageError(String);

impl FromStr for Stage {
    type Err = StageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| StageError(s.to_owned()))
    }
}

/// `MAJOR.MINOR[.PATCH]`: the version of the GA4GH API the service
/// implements, as in its service-info `type.version` (TAG-2, TAG-5).
///
/// The two-part short form is equivalent to the three-part form with patch
/// 0 (TAG-6); [`ApiVersion::canonical`] turns one into the other. Equality
/// (`==`) compares the form as written; [`ApiVersion::is_equivalent`] and
/// [`ApiVersion::cmp_precedence`] compare the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiVersion {
    major: u64,
    minor: u64,
    patch: Option<u64>,
}

impl ApiVersion {
    /// The three-part version `major.minor.patch`.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch: Some(patch),
        }
    }

    /// The two-part short form `major.minor`.
    pub fn short(major: u64, minor: u64) -> Self {
        Self {
            major,
            minor,
            patch: None,
        }
    }

    /// Parse `MAJOR.MINOR[.PATCH]` (TAG-2).
    ///
    /// # Errors
    ///
    /// [`TagError`] naming the input, the position and the rule.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = tagcast_spec::ApiVersion::parse("1.1")?;
    /// assert_eq!(v.canonical().to_string(), "1.1.0");
    /// assert!(tagcast_spec::ApiVersion::parse("01.1").is_err());
    /// # Ok::<(), tagcast_spec::TagError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, TagError> {
        parse::parse_api_version(input)
    }

    /// The major version.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor version.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch version; 0 for the short form.
    pub fn patch(&self) -> u64 {
        self.patch.unwrap_or(0)
    }

    /// Whether it was written in the two-part short form.
    pub fn is_short(&self) -> bool {
        self.patch.is_none()
    }

    /// The canonical three-part form.
    pub fn canonical(&self) -> Self {
        Self::new(self.major, self.minor, self.patch())
    }

    /// The version as a plain SemVer version (no pre-release).
    pub fn to_semver(&self) -> semver::Version {
        semver::Version::new(self.major, self.minor, self.patch())
    }

    /// Whether both denote the same version (`1.1` and `1.1.0` do).
    pub fn is_equivalent(&self, other: &Self) -> bool {
        self.cmp_precedence(other) == Ordering::Equal
    }

    /// Order by (major, minor, patch), the short form counting as patch 0.
    pub fn cmp_precedence(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch()).cmp(&(other.major, other.minor, other.patch()))
    }
}

impl FromStr for ApiVersion {
    type Err = TagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(patch) => write!(f, "{}.{}.{}", self.major, self.minor, patch),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

/// `yymmdd-hhmmss`, UTC: the time the image was built (TAG-4). The year is
/// 2000 + YY; the date is a real calendar date; there is no leap second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    // Field order is chronological, so the derived order is time order.
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl Timestamp {
    /// The timestamp of a point in time, truncated to the second.
    ///
    /// # Errors
    ///
    /// [`TimestampRangeError`] when the year is outside 2000-2099.
    pub fn from_datetime(time: DateTime<Utc>) -> Result<Self, TimestampRangeError> {
        let year = time.year();
        if !(2000..=2099).contains(&year) {
            return Err(TimestampRangeError { year });
        }
        // Chrono represents a leap second as second 59 with nanoseconds past
        // one billion; `second()` is then 59, which is what we want.
        Ok(Self {
            year: year as u16,
            month: time.month() as u8,
            day: time.day() as u8,
            hour: time.hour() as u8,
            minute: time.minute() as u8,
            second: time.second() as u8,
        })
    }

    /// The point in time, in UTC.
    pub fn to_datetime(&self) -> DateTime<Utc> {
        let date = NaiveDate::from_ymd_opt(self.year.into(), self.month.into(), self.day.into())
            .and_then(|d| d.and_hms_opt(self.hour.into(), self.minute.into(), self.second.into()))
            .expect("a parsed timestamp is a valid date and time");
        Utc.from_utc_datetime(&date)
    }

    /// The year, 2000-2099.
    pub fn year(&self) -> u16 {
        self.year
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}{:02}{:02}-{:02}{:02}{:02}",
            self.year - 2000,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        )
    }
}

pub(crate) fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A tag of the grammar `<api-version>-<stage>-<timestamp>` (TAG-1).
///
/// `Display` writes the tag as it was parsed (short form kept);
/// [`Tag::canonical`] gives the three-part form. `==` compares the form as
/// written; [`Tag::is_equivalent`] compares meaning. Tags are ordered only
/// within a stage, by [`Tag::channel_cmp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    api_version: ApiVersion,
    stage: Stage,
    timestamp: Timestamp,
}

impl Tag {
    /// Parse a tag.
    ///
    /// # Errors
    ///
    /// [`TagError`] naming the input, the byte position and the rule broken,
    /// for anything that is not exactly a tag of the grammar (no prefix, no
    /// whitespace, ASCII, case-sensitive).
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::{Stage, Tag};
    ///
    /// let tag = Tag::parse("1.1-demo-201108-195630")?;
    /// assert_eq!(tag.stage(), Stage::Demo);
    /// assert_eq!(tag.canonical().to_string(), "1.1.0-demo-201108-195630");
    ///
    /// let err = Tag::parse("1.1-demo-201330-195630").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"invalid tag "1.1-demo-201330-195630": month 13 at position 11 is out of range 01-12"#
    /// );
    /// # Ok::<(), tagcast_spec::TagError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, TagError> {
        parse::parse(input)
    }

    /// The tag for an api-version, a stage and a build time (truncated to
    /// the second).
    ///
    /// # Errors
    ///
    /// [`TimestampRangeError`] when the time is outside the years 2000-2099.
    ///
    /// # Examples
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use tagcast_spec::{ApiVersion, Stage, Tag};
    ///
    /// let at = Utc.with_ymd_and_hms(2020, 11, 8, 19, 56, 30).unwrap();
    /// let tag = Tag::new(ApiVersion::new(1, 1, 0), Stage::Production, at)?;
    /// assert_eq!(tag.to_string(), "1.1.0-production-201108-195630");
    /// # Ok::<(), tagcast_spec::TimestampRangeError>(())
    /// ```
    pub fn new(api_version: ApiVersion, stage: Stage, time: DateTime<Utc>) -> Result<Self, TimestampRangeError> {
        Ok(Self {
            api_version,
            stage,
            timestamp: Timestamp::from_datetime(time)?,
        })
    }

    /// The api-version, as written.
    pub fn api_version(&self) -> ApiVersion {
        self.api_version
    }

    /// The stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The timestamp.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The canonical form: the api-version in three parts (TAG-6).
    pub fn canonical(&self) -> Self {
        Self {
            api_version: self.api_version.canonical(),
            ..*self
        }
    }

    /// Whether both tags mean the same: same stage, same time, equivalent
    /// api-versions (TAG-6). Two such tags in one repository are ambiguous
    /// (TAG-7).
    pub fn is_equivalent(&self, other: &Self) -> bool {
        self.channel_cmp(other) == Some(Ordering::Equal)
    }

    /// The SemVer view (TAG-8): the canonical form as a SemVer 2.0.0
    /// version, with the pre-release `<stage>-<yymmdd>-<hhmmss>`.
    pub fn to_semver(&self) -> semver::Version {
        let mut version = self.api_version.to_semver();
        version.pre = semver::Prerelease::new(&format!("{}-{}", self.stage, self.timestamp))
            .expect("stage and timestamp form one valid pre-release identifier");
        version
    }

    /// The tag whose canonical form is this SemVer version.
    ///
    /// # Errors
    ///
    /// [`TagError`] when the version is not the SemVer view of a tag (for
    /// example it has build metadata or a pre-release of another shape).
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::Tag;
    ///
    /// let version = semver::Version::parse("1.1.0-demo-201108-195630").unwrap();
    /// let tag = Tag::from_semver(&version)?;
    /// assert_eq!(tag.to_semver(), version);
    /// # Ok::<(), tagcast_spec::TagError>(())
    /// ```
    pub fn from_semver(version: &semver::Version) -> Result<Self, TagError> {
        Self::parse(&version.to_string())
    }

    /// Order within a channel (TAG-9): `None` across stages, otherwise by
    /// (major, minor, patch, timestamp), which is SemVer precedence of the
    /// canonical forms.
    pub fn channel_cmp(&self, other: &Self) -> Option<Ordering> {
        if self.stage != other.stage {
            return None;
        }
        Some(
            self.api_version
                .cmp_precedence(&other.api_version)
                .then_with(|| self.timestamp.cmp(&other.timestamp)),
        )
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.api_version, self.stage, self.timestamp)
    }
}

impl FromStr for Tag {
    type Err = TagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        Tag::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl JsonSchema for Tag {
    fn schema_name() -> Cow<'static, str> {
        "Tag".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "tagcast_spec::Tag".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "title": "tagcast image tag",
            "description": concat!(
                "A container image tag of the tagcast grammar `<api-version>-<stage>-<timestamp>` ",
                "(spec/tags.md TAG-1): api-version `MAJOR.MINOR[.PATCH]` without leading zeros, each ",
                "number at most 18446744073709551615 (TAG-2); stage one of `production`, `staging`, ",
                "`development`, `demo` (TAG-3); timestamp `yymmdd-hhmmss` in UTC, year 2000 + YY, a real ",
                "calendar date with leap years honoured, hour 00-23, minute 00-59, second 00-59 (TAG-4). ",
                "The short form `1.1-…` is equivalent to `1.1.0-…` (TAG-6). The pattern encodes all of ",
                "these rules, calendar and number bounds included."
            ),
            "pattern": TAG_PATTERN,
            "maxLength": MAX_TAG_LENGTH,
            "examples": ["1.1.0-production-201108-195630", "1.1-demo-201108-195630", "2.0.1-staging-240229-000000"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_in_month_knows_leap_years() {
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2021, 4), 30);
        assert_eq!(days_in_month(2021, 12), 31);
    }
}
