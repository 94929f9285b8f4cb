//! `SECURITY.md`'s attack catalogue names real tests: every
//! `path::test_name` of its tables is a function of that file, so the table
//! cannot drift from the tests it cites.

use crate::support::path;

#[test]
fn every_test_the_attack_catalogue_names_exists() {
    let text = std::fs::read_to_string(path("SECURITY.md")).unwrap();
    let mut named = 0;
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let Some(cell) = line.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        let cell = cell.trim().trim_matches('`');
        let Some((file, test)) = cell.split_once("::") else {
            continue;
        };
        let source = std::fs::read_to_string(path(file))
            .unwrap_or_else(|e| panic!("SECURITY.md names {file}, which cannot be read: {e}"));
        assert!(
            source.contains(&format!("fn {test}(")),
            "SECURITY.md names {file}::{test}, which is no function of that file"
        );
        named += 1;
    }
    assert!(named >= 20, "the deployer's rows at least: {named}");
}
