//! The `gar` registry adapter: parse, authenticate and normalize an
//! arbitrary request without panicking (skipped while not served).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tagcast_fuzz::adapter_receives("gar", data));
