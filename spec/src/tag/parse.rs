//! The hand-written parser of `spec/tags.md` §2 (ABNF). One pass over the
//! bytes, no allocation on success.

use super::{ApiVersion, Stage, Tag, Timestamp};
use crate::error::{Component, Field, Found, Mistake, TagError, TagErrorKind};

struct Cursor<'a> {
    what: &'static str,
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self, kind: TagErrorKind) -> TagError {
        TagError::new(self.what, self.input, kind)
    }

    fn found_at(&self, pos: usize) -> Found {
        match self.input.get(pos..).and_then(|rest| rest.chars().next()) {
            Some(c) => Found::Char(c),
            None => Found::End,
        }
    }

    fn unexpected_at(&self, pos: usize, expected: &'static str, requirement: &'static str) -> TagError {
        self.error(TagErrorKind::Unexpected {
            found: self.found_at(pos),
            position: pos,
            expected,
            requirement,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, expected: &'static str, requirement: &'static str) -> Result<(), TagError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected_at(self.pos, expected, requirement))
        }
    }

    /// `num-id = "0" / ( %x31-39 *DIGIT )`, fitting in a u64.
    fn num_id(&mut self, component: Component, expected: &'static str) -> Result<u64, TagError> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            // Wraps only past 19 digits, which the length check below rejects
            // before the value is used.
            value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            self.pos += 1;
        }
        // Equal-length digit strings compare like the numbers they denote.
        let overflow = match self.pos - start {
            ..20 => false,
            20 => &self.input[start..self.pos] > "18446744073709551615",
            _ => true,
        };
        let digits = &self.input[start..self.pos];
        if digits.is_empty() {
            // Nothing may come before the api-version (TAG-1).
            let requirement = if start == 0 && self.what == "tag" {
                "TAG-1"
            } else {
                "TAG-2"
            };
            return Err(self.unexpected_at(start, expected, requirement));
        }
        if digits.len() > 1 && digits.starts_with('0') {
            return Err(self.error(TagErrorKind::LeadingZero {
                component,
                digits: digits.to_owned(),
                position: start,
            }));
        }
        if overflow {
            return Err(self.error(TagErrorKind::Overflow {
                component,
                digits: digits.to_owned(),
                position: start,
            }));
        }
        Ok(value)
    }

    fn stage(&mut self) -> Result<Stage, TagError> {
        let start = self.pos;
        let rest = &self.bytes[start..];
        // Dispatch on the first byte; the word must end at '-' or the end.
        let (stage, len) = match rest.first() {
            Some(b'p') if rest.starts_with(b"production") => (Stage::Production, 10),
            Some(b's') if rest.starts_with(b"staging") => (Stage::Staging, 7),
            Some(b'd') if rest.starts_with(b"development") => (Stage::Development, 11),
            Some(b'd') if rest.starts_with(b"demo") => (Stage::Demo, 4),
            _ => (Stage::Demo, usize::MAX),
        };
        if len != usize::MAX && matches!(rest.get(len), None | Some(b'-')) {
            self.pos += len;
            return Ok(stage);
        }
        let word = rest.iter().position(|&b| b == b'-').unwrap_or(rest.len());
        let word = &self.input[start..start + word];
        Err(self
            .error(TagErrorKind::Stage {
                stage: word.to_owned(),
                position: start,
            })
            .with_suggestion(stage_suggestion(word).map(|stage| stage.as_str().to_owned())))
    }

    /// Two ASCII digits as a number.
    fn two_digits(&mut self, expected: &'static str) -> Result<u8, TagError> {
        // One slice pattern instead of two bounds-checked steps: this is the
        // parser's hottest spot (six calls per tag).
        if let Some(&[a @ b'0'..=b'9', b @ b'0'..=b'9']) = self.bytes.get(self.pos..self.pos + 2) {
            self.pos += 2;
            return Ok((a - b'0') * 10 + (b - b'0'));
        }
        let bad = if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos + 1
        } else {
            self.pos
        };
        Err(self.unexpected_at(bad, expected, "TAG-4"))
    }

    fn ranged(&mut self, field: Field, min: u8, max: u8, expected: &'static str) -> Result<u8, TagError> {
        let position = self.pos;
        let value = self.two_digits(expected)?;
        if value < min || value > max {
            return Err(self.error(TagErrorKind::OutOfRange { field, value, position }));
        }
        Ok(value)
    }

    fn timestamp(&mut self) -> Result<Timestamp, TagError> {
        const DATE: &str = "a digit of the date yymmdd";
        const TIME: &str = "a digit of the time hhmmss";
        let yy = self.two_digits(DATE)?;
        let month = self.ranged(Field::Month, 1, 12, DATE)?;
        let day_position = self.pos;
        let day = self.two_digits(DATE)?;
        let year = 2000 + u16::from(yy);
        let max = super::days_in_month(year, month);
        if day == 0 || day > max {
            return Err(self.error(TagErrorKind::Day {
                day,
                max,
                month,
                year,
                position: day_position,
            }));
        }
        self.expect(b'-', "'-' between the date yymmdd and the time hhmmss", "TAG-4")?;
        let hour = self.ranged(Field::Hour, 0, 23, TIME)?;
        let minute = self.ranged(Field::Minute, 0, 59, TIME)?;
        let second = self.ranged(Field::Second, 0, 59, TIME)?;
        Ok(Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }
}

impl Cursor<'_> {
    /// `api-version`, followed by `next` (a byte, or the end for `None`).
    fn api_version(&mut self, next: Option<u8>, after_minor: &'static str) -> Result<ApiVersion, TagError> {
        let major = self.num_id(Component::Major, "a digit of the major version")?;
        self.expect(b'.', "'.' after the major version", "TAG-2")?;
        let minor = self.num_id(Component::Minor, "a digit of the minor version")?;
        let patch = match self.peek() {
            Some(b'.') => {
                self.pos += 1;
                Some(self.num_id(Component::Patch, "a digit of the patch version")?)
            }
            found if found == next => None,
            _ => return Err(self.unexpected_at(self.pos, after_minor, "TAG-2")),
        };
        Ok(ApiVersion { major, minor, patch })
    }
}

pub(super) fn parse_api_version(input: &str) -> Result<ApiVersion, TagError> {
    let mut c = Cursor {
        what: "api-version",
        input,
        bytes: input.as_bytes(),
        pos: 0,
    };
    if input.is_empty() {
        return Err(c.error(TagErrorKind::Empty {
            expected: "MAJOR.MINOR[.PATCH]",
        }));
    }
    let version = c.api_version(None, "'.' or the end after the minor version")?;
    if c.pos != input.len() {
        return Err(c.unexpected_at(c.pos, "end of api-version", "TAG-2"));
    }
    Ok(version)
}

pub(super) fn parse(input: &str) -> Result<Tag, TagError> {
    match accept(input.as_bytes()) {
        Some(tag) => Ok(tag),
        None => parse_explaining(input),
    }
}

/// The fast path: accepts the common valid tag in one branch-light pass and
/// declines everything else — every invalid tag, and valid ones with a
/// 20-digit number — to [`parse_explaining`], which decides and explains.
/// A test checks that both agree on every vector and on arbitrary input.
pub(super) fn accept(b: &[u8]) -> Option<Tag> {
    let mut i = 0;
    let major = fast_num(b, &mut i)?;
    if b.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    let minor = fast_num(b, &mut i)?;
    let patch = match b.get(i)? {
        b'.' => {
            i += 1;
            Some(fast_num(b, &mut i)?)
        }
        _ => None,
    };
    if b.get(i) != Some(&b'-') {
        return None;
    }
    let rest = &b[i + 1..];
    let (stage, len) = match rest.len() {
        // "-" + yymmdd-hhmmss is 14 bytes after the stage.
        24 if rest.starts_with(b"production") => (Stage::Production, 10),
        21 if rest.starts_with(b"staging") => (Stage::Staging, 7),
        25 if rest.starts_with(b"development") => (Stage::Development, 11),
        18 if rest.starts_with(b"demo") => (Stage::Demo, 4),
        _ => return None,
    };
    let t: &[u8; 14] = rest[len..].try_into().ok()?;
    if t[0] != b'-' || t[7] != b'-' {
        return None;
    }
    let d = |k: usize| t[k].wrapping_sub(b'0');
    // Non-short-circuit `|`: one branch for all twelve digits.
    let digits = (d(1) > 9)
        | (d(2) > 9)
        | (d(3) > 9)
        | (d(4) > 9)
        | (d(5) > 9)
        | (d(6) > 9)
        | (d(8) > 9)
        | (d(9) > 9)
        | (d(10) > 9)
        | (d(11) > 9)
        | (d(12) > 9)
        | (d(13) > 9);
    if digits {
        return None;
    }
    let two = |k: usize| d(k) * 10 + d(k + 1);
    let year = 2000 + u16::from(two(1));
    let (month, day, hour, minute, second) = (two(3), two(5), two(8), two(10), two(12));
    if !(1..=12).contains(&month)
        || day == 0
        || day > super::days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(Tag {
        api_version: ApiVersion { major, minor, patch },
        stage,
        timestamp: Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
        },
    })
}

/// A `num-id` of at most 19 digits (which always fits in a u64), no
/// leading zero.
#[inline(always)]
fn fast_num(b: &[u8], i: &mut usize) -> Option<u64> {
    let start = *i;
    let mut value: u64 = 0;
    while let Some(&c) = b.get(*i) {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        if *i - start == 19 {
            return None;
        }
        value = value * 10 + u64::from(digit);
        *i += 1;
    }
    let len = *i - start;
    if len == 0 || (len > 1 && b[start] == b'0') {
        return None;
    }
    Some(value)
}

/// The careful parser: the tag, or an error naming position and rule.
fn parse_explaining(input: &str) -> Result<Tag, TagError> {
    let mut c = Cursor {
        what: "tag",
        input,
        bytes: input.as_bytes(),
        pos: 0,
    };
    if input.is_empty() {
        return Err(c.error(TagErrorKind::Empty {
            expected: "<api-version>-<stage>-<timestamp>",
        }));
    }
    if let [v @ (b'v' | b'V'), b'0'..=b'9', ..] = c.bytes {
        let rest = &input[1..];
        return Err(c
            .error(TagErrorKind::Mistake {
                mistake: Mistake::VPrefix(char::from(*v)),
                position: 0,
            })
            .with_suggestion(parse(rest).is_ok().then(|| rest.to_owned())));
    }
    let api_version = c.api_version(Some(b'-'), "'.' or '-' after the minor version")?;
    // A fourth number is still the api-version's text (the longest prefix of
    // digits and dots), so it breaks the api-version's rule (TAG-2), not TAG-1.
    if c.peek() == Some(b'.') {
        return Err(c.unexpected_at(
            c.pos,
            "'-' after the patch version (an api-version has at most three numbers)",
            "TAG-2",
        ));
    }
    c.expect(b'-', "'-' after the api-version", "TAG-1")?;
    let stage = c.stage()?;
    c.expect(b'-', "'-' after the stage", "TAG-1")?;
    let start = c.pos;
    let timestamp = c
        .timestamp()
        .map_err(|err| timestamp_mistake(input, start).unwrap_or(err))?;
    if c.pos != input.len() {
        return Err(c.unexpected_at(c.pos, "end of tag", "TAG-1"));
    }
    Ok(Tag {
        api_version,
        stage,
        timestamp,
    })
}

/// The stage a person most likely meant by `word`: the same letters in
/// another case, the stage it abbreviates (`prod`, `dev`), or a stage at
/// most two edits away (`prodution`, `stagign`), when exactly one fits.
fn stage_suggestion(word: &str) -> Option<Stage> {
    if let Some(stage) = Stage::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(word)) {
        return Some(stage);
    }
    let lower = word.to_ascii_lowercase();
    let mut abbreviates = Stage::ALL
        .into_iter()
        .filter(|s| lower.len() >= 3 && s.as_str().starts_with(&lower));
    if let (Some(stage), None) = (abbreviates.next(), abbreviates.next()) {
        return Some(stage);
    }
    let mut best: Option<(usize, Stage)> = None;
    let mut tied = false;
    for stage in Stage::ALL {
        let distance = edit_distance(&lower, stage.as_str());
        match best {
            Some((d, _)) if distance > d => {}
            Some((d, _)) if distance == d => tied = true,
            _ => {
                best = Some((distance, stage));
                tied = false;
            }
        }
    }
    match best {
        Some((distance, stage)) if distance <= 2 && !tied => Some(stage),
        _ => None,
    }
}

/// Levenshtein distance over bytes (stages are ASCII; anything else only
/// makes the distance larger).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.as_bytes().iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(x != y));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Explains a timestamp that does not parse when it is one of the common
/// shapes people write instead of `yymmdd-hhmmss` — a four-digit year, a
/// `T` between date and time, `:` in the time, no seconds — with the
/// corrected tag as the suggestion when the rest of it is right. `start` is
/// where the timestamp begins.
fn timestamp_mistake(input: &str, start: usize) -> Option<TagError> {
    let rest = &input[start..];
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Checked on bytes first: slicing `rest` is safe once these are ASCII.
    let bytes = rest.as_bytes();
    let digits_at = |range: std::ops::Range<usize>| bytes.get(range).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    // The date as six digits and what follows it, or the four-digit year.
    let (date, after, year) = if digits_at(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits_at(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits_at(8..10)
    {
        (
            format!("{}{}{}", &rest[2..4], &rest[5..7], &rest[8..10]),
            &rest[10..],
            Some(&rest[..4]),
        )
    } else {
        let run = rest.bytes().take_while(u8::is_ascii_digit).count();
        match run {
            8 => (rest[2..8].to_owned(), &rest[8..], Some(&rest[..4])),
            6 => (rest[..6].to_owned(), &rest[6..], None),
            _ => return None,
        }
    };
    let separator = after.chars().next();
    let time = after.get(1..).unwrap_or("");
    let fixed_time = {
        let plain: String = time.chars().filter(|&c| c != ':').collect();
        match plain.len() {
            _ if !digits(&plain) => None,
            4 => Some(format!("{plain}00")),
            6 => Some(plain),
            _ => None,
        }
    };
    let suggestion = || {
        let candidate = format!("{}{date}-{}", &input[..start], fixed_time.as_deref()?);
        (year.is_none_or(|y| y.starts_with("20")) && accept(candidate.as_bytes()).is_some()).then_some(candidate)
    };
    let (mistake, position) = if let Some(year) = year {
        (Mistake::FourDigitYear(year.to_owned()), start)
    } else if let Some(c @ ('T' | 't' | '_' | ' ' | '.')) = separator {
        (Mistake::DateTimeSeparator(c), start + 6)
    } else if separator == Some('-') && time.contains(':') {
        (Mistake::TimeColons(time.to_owned()), start + 7)
    } else if separator == Some('-') && time.len() == 4 && digits(time) {
        (Mistake::NoSeconds(time.to_owned()), start + 7)
    } else {
        return None;
    };
    Some(TagError::new("tag", input, TagErrorKind::Mistake { mistake, position }).with_suggestion(suggestion()))
}

#[cfg(test)]
mod tests {
    use super::{accept, parse_explaining};

    /// The fast path never accepts what the careful parser rejects, and
    /// accepts every valid vector but those with a 20-digit number.
    #[test]
    fn the_fast_path_agrees_with_the_careful_parser_on_every_vector() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/vectors/tags.json");
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut accepted = 0;
        for group in doc["groups"].as_array().unwrap() {
            for case in group["cases"].as_array().unwrap() {
                let input = case["input"].as_str().unwrap();
                let careful = parse_explaining(input);
                match accept(input.as_bytes()) {
                    Some(tag) => {
                        accepted += 1;
                        assert_eq!(Ok(tag), careful, "{input:?}");
                    }
                    None => {
                        let twenty_digits = input.split(['.', '-']).any(|part| part.len() >= 20);
                        assert!(careful.is_err() || twenty_digits, "the fast path declined {input:?}");
                    }
                }
            }
        }
        assert!(accepted >= 50, "the fast path took {accepted} vectors");
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_never_accepts_what_the_careful_parser_rejects(
            text in "[0-9]{1,3}\\.[0-9]{1,3}(\\.[0-9]{1,3})?-(production|staging|development|demo|demos)-[0-9]{6}-[0-9]{6}[0-9]?"
        ) {
            if let Some(tag) = accept(text.as_bytes()) {
                proptest::prop_assert_eq!(Ok(tag), parse_explaining(&text));
            } else {
                proptest::prop_assert!(parse_explaining(&text).is_err());
            }
        }
    }
}
