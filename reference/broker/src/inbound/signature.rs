//! The signatures of registries that sign with a shared secret: a hex
//! HMAC-SHA256 of the raw body (GitHub `X-Hub-Signature-256: sha256=<hex>`,
//! Gitea/Forgejo `X-Gitea-Signature: <hex>`, Artifactory
//! `X-JFrog-Event-Auth: <hex>`), or the secret itself (Artifactory without
//! `use_secret_for_signing`).
//!
//! The key is the hook secret exactly as the broker showed it (`whsec_…`,
//! all of it): that string is what the operator pastes into the registry's
//! webhook form, and those registries key their HMAC with its bytes.
//! Every comparison is constant-time.

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::Rejection;
use crate::store::HookSource;

/// The hook source's secret, or a rejection naming the reason.
///
/// # Errors
///
/// [`Rejection::Unauthorized`] when the source has no secret (a source
/// created before its kind signed): nothing it receives can be trusted.
pub fn secret(source: &HookSource) -> Result<&str, Rejection> {
    source
        .secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejection::Unauthorized("the hook has no signing secret".into()))
}

/// Whether `given` is the lowercase or uppercase hex HMAC-SHA256 of `body` under `secret`.
pub fn hmac_hex_matches(secret: &str, body: &[u8], given: &str) -> bool {
    let Some(given) = decode_hex(given.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    given.len() == expected.len() && bool::from(expected.as_slice().ct_eq(&given))
}

/// Whether `given` is `secret`, compared in constant time (through their
/// hashes, so that the length of the secret does not leak either).
pub fn plain_matches(secret: &str, given: &str) -> bool {
    let expected = Sha256::digest(secret.as_bytes());
    let given = Sha256::digest(given.as_bytes());
    bool::from(expected.ct_eq(&given))
}

/// The hex HMAC-SHA256 of `body` under `secret`, as the registries send it
/// (tests and the fixture signer use it).
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some(u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).expect("two hex digits fit a byte"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_test_vector() {
        // docs.github.com, "Validating webhook deliveries", "Testing the webhook payload validation".
        let secret = "It's a Secret to Everybody";
        let body = b"Hello, World!";
        let expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(hmac_hex(secret, body), expected);
        assert!(hmac_hex_matches(secret, body, expected));
        assert!(hmac_hex_matches(secret, body, &expected.to_uppercase()));
        assert!(!hmac_hex_matches(secret, b"Hello, World?", expected));
        assert!(!hmac_hex_matches("another secret", body, expected));
        assert!(!hmac_hex_matches(secret, body, &expected[..62]));
        assert!(!hmac_hex_matches(secret, body, "zz"));
        assert!(!hmac_hex_matches(secret, body, ""));
    }

    #[test]
    fn plain() {
        assert!(plain_matches("s3cret", "s3cret"));
        assert!(!plain_matches("s3cret", "s3cre"));
        assert!(!plain_matches("s3cret", ""));
    }
}
