//! An API requirement (TAG-10) as the interval of plain versions it admits,
//! and the spellings of that interval that the CD tools understand.
//!
//! Every comparator of a Cargo-style requirement admits an interval
//! `[lo, hi)` of plain `MAJOR.MINOR.PATCH` versions, and a requirement is the
//! intersection of its comparators, so it is one interval too. Tools that
//! cannot read Cargo's operators can still be given the two bounds.

use std::fmt;

use anyhow::bail;
use semver::{Comparator, Op, Version, VersionReq};

/// The plain versions `lo <= v < hi` that a requirement admits; no `hi`
/// means no upper bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    pub lo: Version,
    pub hi: Option<Version>,
}

/// How much of a version a range pins: what a prefix pattern can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinned {
    /// Every version.
    Nothing,
    /// One major version: `X.*`.
    Major,
    /// One minor version: `X.Y.*`.
    Minor,
    /// One version: `X.Y.Z`.
    Patch,
}

impl VersionRange {
    /// The interval that `text` admits when matched against plain versions,
    /// as `semver::VersionReq::matches` does for them.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let req = VersionReq::parse(text)?;
        let mut range = VersionRange {
            lo: Version::new(0, 0, 0),
            hi: None,
        };
        for comparator in &req.comparators {
            if !comparator.pre.is_empty() {
                bail!("api-version requirement {text:?} names a pre-release: api-versions have none (TAG-10)");
            }
            let (lo, hi) = interval(comparator)
                .ok_or_else(|| anyhow::anyhow!("api-version requirement {text:?} matches no version"))?;
            range.lo = range.lo.max(lo);
            range.hi = match (range.hi, hi) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if range.hi.as_ref().is_some_and(|hi| *hi <= range.lo) {
            bail!("api-version requirement {text:?} matches no version");
        }
        Ok(range)
    }

    /// Whether a plain version is inside.
    #[cfg(test)]
    pub fn contains(&self, version: &Version) -> bool {
        *version >= self.lo && self.hi.as_ref().is_none_or(|hi| version < hi)
    }

    /// The range for Masterminds/semver (Flux, Argo CD Image Updater):
    /// `>=LO-0 <HI-0`. Masterminds skips a pre-release version unless every
    /// comparator of the constraint names a pre-release, and every tagcast
    /// tag is a pre-release in its SemVer view (TAG-8); `X.Y.Z-0` is the
    /// lowest pre-release of `X.Y.Z`, so `>=LO-0` admits every tag of
    /// api-version LO and `<HI-0` none of api-version HI.
    pub fn masterminds(&self) -> String {
        let mut out = format!(">={}-0", self.lo);
        if let Some(hi) = &self.hi {
            out.push_str(&format!(" <{hi}-0"));
        }
        out
    }

    /// The narrowest prefix (`X.`, `X.Y.`, `X.Y.Z`) that holds every version
    /// of the range, and whether it holds nothing else.
    pub fn pinned(&self) -> (Pinned, bool) {
        let lo = &self.lo;
        let Some(hi) = &self.hi else {
            return (Pinned::Nothing, *lo == Version::new(0, 0, 0));
        };
        let exact = |end: Option<Version>| end.as_ref() == Some(hi);
        let within = |end: Option<Version>| end.as_ref().is_none_or(|end| hi <= end);
        if within(next_patch(lo.major, lo.minor, lo.patch)) {
            return (Pinned::Patch, true);
        }
        if within(next_minor(lo.major, lo.minor)) {
            return (Pinned::Minor, lo.patch == 0 && exact(next_minor(lo.major, lo.minor)));
        }
        if within(next_major(lo.major)) {
            return (
                Pinned::Major,
                lo.minor == 0 && lo.patch == 0 && exact(next_major(lo.major)),
            );
        }
        (Pinned::Nothing, false)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hi {
            Some(hi) => write!(f, ">={}, <{}", self.lo, hi),
            None => write!(f, ">={}", self.lo),
        }
    }
}

/// The smallest version above every `X.Y.Z`; `None` above the largest.
fn next_patch(major: u64, minor: u64, patch: u64) -> Option<Version> {
    match patch.checked_add(1) {
        Some(patch) => Some(Version::new(major, minor, patch)),
        None => next_minor(major, minor),
    }
}

/// The smallest version above every `X.Y.*`.
fn next_minor(major: u64, minor: u64) -> Option<Version> {
    match minor.checked_add(1) {
        Some(minor) => Some(Version::new(major, minor, 0)),
        None => next_major(major),
    }
}

/// The smallest version above every `X.*`.
fn next_major(major: u64) -> Option<Version> {
    major.checked_add(1).map(|major| Version::new(major, 0, 0))
}

/// `[lo, hi)` of one comparator, following the `semver` crate's matching of
/// plain versions (Cargo's rules); `None` when it admits nothing.
fn interval(c: &Comparator) -> Option<(Version, Option<Version>)> {
    let zero = Version::new(0, 0, 0);
    let (major, minor, patch) = (c.major, c.minor, c.patch);
    // Which versions share the comparator's written prefix: `first..end`.
    let first = Version::new(major, minor.unwrap_or(0), patch.unwrap_or(0));
    let end = match (minor, patch) {
        (Some(minor), Some(patch)) => next_patch(major, minor, patch),
        (Some(minor), None) => next_minor(major, minor),
        _ => next_major(major),
    };
    let range = match c.op {
        Op::Exact | Op::Wildcard => (first, end),
        Op::Greater => (end?, None),
        Op::GreaterEq => (first, None),
        Op::Less => (zero, Some(first)),
        Op::LessEq => (zero, end),
        Op::Tilde => match minor {
            Some(minor) => (first, next_minor(major, minor)),
            None => (first, next_major(major)),
        },
        Op::Caret => match (minor, patch) {
            (None, _) => (first, next_major(major)),
            (Some(_), _) if major > 0 => (first, next_major(major)),
            (Some(minor), None) => (first, next_minor(0, minor)),
            (Some(minor), Some(_)) if minor > 0 => (first, next_minor(0, minor)),
            (Some(_), Some(patch)) => (first, next_patch(0, 0, patch)),
        },
        // `Op` is non-exhaustive: an operator added to `semver` later must
        // be taught here rather than guessed.
        _ => return None,
    };
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interval agrees with `semver`'s own matching of plain versions on
    /// a grid around every bound, including the u64 edge.
    #[test]
    fn interval_matches_semver_on_a_grid() {
        let reqs = [
            "*",
            "^1.1",
            "^1",
            "^0.1",
            "^0.0.3",
            "^0.0",
            "^0",
            "~1.0",
            "~1",
            "~0.1.2",
            "=1.1.0",
            "=1.1",
            "=1",
            "1.1.*",
            "1.*",
            ">1.1.0",
            ">1.1",
            ">1",
            ">=1.0, <2",
            "<=1.1",
            "<=1.1.1",
            "<1",
            ">=0.9, <1.10.3",
            "1.2.3",
        ];
        let values = [0, 1, 2, 3, 9, 10, 11];
        let mut grid: Vec<Version> = Vec::new();
        for major in values {
            for minor in values {
                for patch in values {
                    grid.push(Version::new(major, minor, patch));
                }
            }
        }
        grid.push(Version::new(u64::MAX, u64::MAX, u64::MAX));
        for text in reqs {
            let req = VersionReq::parse(text).unwrap();
            let range = VersionRange::parse(text).unwrap();
            for version in &grid {
                assert_eq!(
                    range.contains(version),
                    req.matches(version),
                    "{text} on {version}: range {range}"
                );
            }
        }
    }

    #[test]
    fn bounds_at_the_u64_edge_are_open() {
        let range = VersionRange::parse(">=1.18446744073709551615.18446744073709551615").unwrap();
        assert_eq!(range.hi, None);
        let range = VersionRange::parse("=1.18446744073709551615.18446744073709551615").unwrap();
        assert_eq!(range.hi, Some(Version::new(2, 0, 0)));
        assert!(VersionRange::parse(">18446744073709551615").is_err());
        assert_eq!(
            VersionRange::parse(">18446744073709551615.0").unwrap().lo,
            Version::new(u64::MAX, 1, 0)
        );
    }

    #[test]
    fn an_empty_requirement_is_refused() {
        let err = VersionRange::parse(">=2, <1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "api-version requirement \">=2, <1\" matches no version"
        );
    }

    #[test]
    fn masterminds_ranges_carry_the_lowest_pre_release() {
        assert_eq!(VersionRange::parse("^1.1").unwrap().masterminds(), ">=1.1.0-0 <2.0.0-0");
        assert_eq!(VersionRange::parse("*").unwrap().masterminds(), ">=0.0.0-0");
        assert_eq!(
            VersionRange::parse("^0.0.3").unwrap().masterminds(),
            ">=0.0.3-0 <0.0.4-0"
        );
    }

    #[test]
    fn pinned_prefixes() {
        let pinned = |text: &str| VersionRange::parse(text).unwrap().pinned();
        assert_eq!(pinned("*"), (Pinned::Nothing, true));
        assert_eq!(pinned(">=1.0"), (Pinned::Nothing, false));
        assert_eq!(pinned("^1"), (Pinned::Major, true));
        assert_eq!(pinned(">=1.0, <2"), (Pinned::Major, true));
        assert_eq!(pinned("^1.1"), (Pinned::Major, false));
        assert_eq!(pinned("~1.0"), (Pinned::Minor, true));
        assert_eq!(pinned("~0.1.2"), (Pinned::Minor, false));
        assert_eq!(pinned("=1.1.0"), (Pinned::Patch, true));
        assert_eq!(pinned("^0.0.3"), (Pinned::Patch, true));
    }
}
