//! `Tag::parse`: never panics; what it accepts prints back to itself and
//! parses again to the same tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagcast_spec::Tag;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(tag) = Tag::parse(text) {
        let printed = tag.to_string();
        assert_eq!(Tag::parse(&printed).ok(), Some(tag), "{text:?} -> {printed:?}");
    }
});
