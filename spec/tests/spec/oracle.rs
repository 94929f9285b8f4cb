//! `Tag::parse` against an independent oracle (issue 12, item 4): a plain
//! regular expression for the shape plus chrono's calendar and `u64` for
//! the bounds, none of it shared with the parser or `TAG_PATTERN`. They
//! must agree on near-misses of valid tags (one edit away, impossible
//! dates and times, leading zeros, numbers past `u64`) and on random input.

use std::sync::LazyLock;

use chrono::NaiveDate;
use proptest::prelude::*;
use regex::Regex;
use tagcast_spec::Tag;

static SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?-(production|staging|development|demo)-([0-9]{2})([0-9]{2})([0-9]{2})-([0-9]{2})([0-9]{2})([0-9]{2})$",
    )
    .unwrap()
});

/// Whether `text` is a tag according to `spec/tags.md`, decided without the parser.
fn oracle(text: &str) -> bool {
    let Some(c) = SHAPE.captures(text) else { return false };
    let number_ok = |m: Option<regex::Match<'_>>| {
        m.is_none_or(|m| {
            let s = m.as_str();
            (s == "0" || !s.starts_with('0')) && s.parse::<u64>().is_ok()
        })
    };
    let n = |i: usize| c[i].parse::<u32>().unwrap();
    number_ok(c.get(1))
        && number_ok(c.get(2))
        && number_ok(c.get(3))
        && NaiveDate::from_ymd_opt(2000 + n(5) as i32, n(6), n(7)).is_some()
        && n(8) < 24
        && n(9) < 60
        && n(10) < 60
}

/// A valid tag, printed.
fn valid() -> impl Strategy<Value = String> {
    (
        any::<u64>(),
        0u64..20,
        prop::option::of(0u64..1000),
        prop::sample::select(vec!["production", "staging", "development", "demo"]),
        946_684_800i64..4_102_444_800i64,
    )
        .prop_map(|(major, minor, patch, stage, secs)| {
            let at = chrono::DateTime::from_timestamp(secs, 0)
                .unwrap()
                .format("%y%m%d-%H%M%S");
            match patch {
                Some(p) => format!("{major}.{minor}.{p}-{stage}-{at}"),
                None => format!("{major}.{minor}-{stage}-{at}"),
            }
        })
}

/// Characters that make near-misses: the grammar's own and a few it forbids.
const ALPHABET: &[char] = &[
    '0', '1', '2', '3', '9', '.', '-', '+', '_', ' ', 'a', 'P', 'z', 'é', '\n', '٣',
];

/// One edit of a valid tag: a character deleted, replaced or inserted, a
/// piece doubled, or a date or time field set to an edge value.
fn near_miss() -> impl Strategy<Value = String> {
    (valid(), 0usize..64, prop::sample::select(ALPHABET), 0u8..6, 0usize..40).prop_map(|(tag, at, ch, edit, edge)| {
        let chars: Vec<char> = tag.chars().collect();
        let i = at % (chars.len() + 1);
        let mut out = chars.clone();
        match edit {
            0 if i < chars.len() => {
                out.remove(i);
            }
            1 if i < chars.len() => out[i] = ch,
            2 => out.insert(i, ch),
            3 => {
                // Double a piece: "1.1.1.1-…", "…-demo-demo-…".
                let piece: Vec<char> = chars[..i].to_vec();
                out.splice(0..0, piece);
            }
            _ => {
                // An edge value in the yymmdd-hhmmss fields: month 00/13,
                // day 00/29/30/31/32 of each month, hour 24, minute 60.
                const EDGES: [&str; 20] = [
                    "00", "13", "00", "29", "30", "31", "32", "24", "60", "99", "02", "04", "06", "09", "11", "12",
                    "23", "59", "01", "28",
                ];
                let value: Vec<char> = EDGES[edge % EDGES.len()].chars().collect();
                let len = chars.len();
                // The fields start 13, 11, 9, 6, 4 and 2 characters from the end.
                let start = len - [13, 11, 9, 6, 4, 2][usize::from(edit) % 6];
                out.splice(start..start + 2, value);
            }
        }
        out.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn the_parser_agrees_with_the_oracle_on_near_misses(text in near_miss()) {
        prop_assert_eq!(Tag::parse(&text).is_ok(), oracle(&text), "{:?}", text);
    }

    #[test]
    fn the_parser_agrees_with_the_oracle_on_valid_tags(text in valid()) {
        prop_assert!(oracle(&text), "{:?}", text);
        prop_assert!(Tag::parse(&text).is_ok(), "{:?}", text);
    }

    #[test]
    fn the_parser_agrees_with_the_oracle_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert_eq!(Tag::parse(&text).is_ok(), oracle(&text), "{:?}", text);
    }

    #[test]
    fn the_parser_agrees_with_the_oracle_on_tag_shaped_strings(
        text in r"[0-9]{1,21}\.[0-9]{1,3}(\.[0-9]{1,3})?-(production|staging|demo|prod)-[0-9]{6}-[0-9]{6}"
    ) {
        prop_assert_eq!(Tag::parse(&text).is_ok(), oracle(&text), "{:?}", text);
    }
}
