//! `ImageReference::parse` and `Repository::parse`: never panic; what they
//! accept prints to a form that parses again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagcast_spec::{ImageReference, Repository};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(reference) = ImageReference::parse(text) {
        let printed = reference.to_string();
        assert_eq!(ImageReference::parse(&printed).ok(), Some(reference), "{text:?} -> {printed:?}");
    }
    if let Ok(repository) = Repository::parse(text) {
        let printed = repository.to_string();
        assert_eq!(Repository::parse(&printed).ok(), Some(repository), "{text:?} -> {printed:?}");
    }
});
