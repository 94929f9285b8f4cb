//! `Tag::parse` against what a CI author would write without tagcast: a
//! `regex` full match of the shape plus a `chrono` check of the date and
//! time. Run with `cargo bench -p tagcast-spec --bench parse`.

use std::hint::black_box;

use chrono::NaiveDateTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use regex::Regex;
use tagcast_spec::Tag;

const VALID: [&str; 5] = [
    "1.1-demo-201108-195630",
    "1.1.0-production-201108-195630",
    "2.0.1-staging-240229-000000",
    "1.5.0-development-251231-235959",
    "10.20.300-production-991231-235959",
];

const INVALID: [&str; 3] = [
    "1.1-demo-200230-000000",
    "v1.1-demo-201108-195630",
    "1.1.0-production-201108-1956301",
];

/// The baseline: shape by regex, calendar by chrono.
struct Baseline {
    shape: Regex,
}

impl Baseline {
    fn new() -> Self {
        let shape = Regex::new(
            r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?-(production|staging|development|demo)-([0-9]{6}-[0-9]{6})$",
        )
        .unwrap();
        Self { shape }
    }

    fn check(&self, tag: &str) -> bool {
        let Some(caps) = self.shape.captures(tag) else {
            return false;
        };
        let numbers_fit = (1..=3).all(|i| caps.get(i).is_none_or(|m| m.as_str().parse::<u64>().is_ok()));
        let time = format!("20{}", &caps[5]);
        numbers_fit && NaiveDateTime::parse_from_str(&time, "%Y%m%d-%H%M%S").is_ok()
    }
}

fn bench(c: &mut Criterion) {
    let baseline = Baseline::new();
    // Both must agree on the inputs, or the comparison means nothing.
    for tag in VALID {
        assert!(Tag::parse(tag).is_ok() && baseline.check(tag), "{tag}");
    }
    for tag in INVALID {
        assert!(Tag::parse(tag).is_err() && !baseline.check(tag), "{tag}");
    }
    for (name, tags) in [("valid", &VALID[..]), ("invalid", &INVALID[..])] {
        let mut group = c.benchmark_group(format!("parse/{name}"));
        group.throughput(Throughput::Elements(tags.len() as u64));
        group.bench_function("tagcast Tag::parse", |b| {
            b.iter(|| {
                for tag in tags {
                    black_box(Tag::parse(black_box(tag)).is_ok());
                }
            })
        });
        group.bench_function("regex + chrono baseline", |b| {
            b.iter(|| {
                for tag in tags {
                    black_box(baseline.check(black_box(tag)));
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
