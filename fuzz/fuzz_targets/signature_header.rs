//! `webhook::verify` with arbitrary `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` headers: never panics, and never accepts a header
//! that is not a signature made with the secret.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tagcast_spec::webhook::{Secret, sign, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(4, '\n');
    let (id, timestamp, signature, body) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or(""));
    let secret = Secret::generate([7; 32]);
    let now = 1_700_000_000;
    let accepted = verify(
        std::slice::from_ref(&secret),
        id,
        timestamp,
        signature,
        body.as_bytes(),
        now,
        Duration::from_secs(300),
    )
    .is_ok();
    if accepted {
        // Only a genuine signature of this id, timestamp and body passes.
        let (id, timestamp) = (id.unwrap_or_default(), timestamp.unwrap_or_default());
        if let Ok(seconds) = timestamp.trim().parse::<i64>() {
            let genuine = sign(&secret, id, seconds, body.as_bytes());
            assert!(signature.unwrap_or_default().split(' ').any(|s| s == genuine), "{text:?}");
        }
    }
});
