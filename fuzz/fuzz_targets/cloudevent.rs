//! The callback body as a deployer reads it: JSON into
//! `CloudEvent<ImagePublished>`, then the contract's checks. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagcast_spec::{CloudEvent, ImagePublished};

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<CloudEvent<ImagePublished>>(data) {
        let _ = event.check();
        let _ = event.subject();
    }
});
