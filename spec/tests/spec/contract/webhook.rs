//! Standard Webhooks signing and verification (CB-3 to CB-6).

use std::time::Duration;

use tagcast_spec::webhook::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret, SecretError, VerifyError, sign,
    signature_header, verify,
};

// The published Standard Webhooks test vector (the reference library's tests).
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const TIMESTAMP: i64 = 1649367553;
const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

fn secret() -> Secret {
    Secret::parse(SECRET).unwrap()
}

fn check(secrets: &[Secret], signature: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
    verify(
        secrets,
        Some(ID),
        Some(&TIMESTAMP.to_string()),
        Some(signature),
        body,
        now,
        DEFAULT_TOLERANCE,
    )
}

#[test]
fn header_names_are_the_standard_ones() {
    assert_eq!(
        [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE],
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    );
    assert_eq!(DEFAULT_TOLERANCE, Duration::from_secs(300));
}

#[test]
fn sign_reproduces_the_published_vector() {
    assert_eq!(sign(&secret(), ID, TIMESTAMP, BODY), SIGNATURE);
}

#[test]
fn verify_accepts_the_published_vector() {
    check(&[secret()], SIGNATURE, BODY, TIMESTAMP).unwrap();
    check(&[secret()], SIGNATURE, BODY, TIMESTAMP + 300).unwrap();
    check(&[secret()], SIGNATURE, BODY, TIMESTAMP - 300).unwrap();
}

#[test]
fn verify_rejects_a_tampered_body() {
    let tampered = br#"{"email":"test@example.com","username":"test_user2"}"#;
    assert_eq!(
        check(&[secret()], SIGNATURE, tampered, TIMESTAMP).unwrap_err(),
        VerifyError::NoMatchingSignature {
            signatures: 1,
            secrets: 1
        }
    );
}

#[test]
fn verify_rejects_a_wrong_secret() {
    let err = check(&[Secret::generate([9; 32])], SIGNATURE, BODY, TIMESTAMP).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no matching signature: none of the 1 v1 entries of webhook-signature matches the body under any of 1 secrets (CB-5)"
    );
    assert_eq!(err.requirement(), "CB-5");
}

#[test]
fn verify_rejects_a_timestamp_six_minutes_old() {
    let err = check(&[secret()], SIGNATURE, BODY, TIMESTAMP + 360).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stale header webhook-timestamp 1649367553: more than 300 s before the verifier's clock 1649367913 (CB-6)"
    );
    assert_eq!(err.requirement(), "CB-6");
    // One second past the tolerance is already too old, in both directions.
    assert!(matches!(
        check(&[secret()], SIGNATURE, BODY, TIMESTAMP + 301),
        Err(VerifyError::TooOld { .. })
    ));
    let err = check(&[secret()], SIGNATURE, BODY, TIMESTAMP - 301).unwrap_err();
    assert_eq!(
        err.to_string(),
        "future header webhook-timestamp 1649367553: more than 300 s after the verifier's clock 1649367252 (CB-6)"
    );
}

#[test]
fn verify_accepts_any_secret_and_any_signature_for_key_rotation() {
    let old = secret();
    let new = Secret::generate([3; 32]);
    let both = signature_header(&[new.clone(), old.clone()], ID, TIMESTAMP, BODY);
    assert_eq!(both.split(' ').count(), 2);
    assert!(both.ends_with(SIGNATURE));
    // Sender rotated: one receiver knows only the old key, one only the new.
    check(std::slice::from_ref(&old), &both, BODY, TIMESTAMP).unwrap();
    check(std::slice::from_ref(&new), &both, BODY, TIMESTAMP).unwrap();
    // Receiver rotated: the sender still signs with the old key alone.
    check(&[new, old], SIGNATURE, BODY, TIMESTAMP).unwrap();
}

#[test]
fn verify_ignores_other_schemes_and_broken_entries() {
    let header = format!("v1a,{} v1, v1,not-base64!! {SIGNATURE}", &SIGNATURE[3..]);
    check(&[secret()], &header, BODY, TIMESTAMP).unwrap();
    // The same signature labelled with another scheme does not count.
    let err = check(&[secret()], &format!("v2,{}", &SIGNATURE[3..]), BODY, TIMESTAMP).unwrap_err();
    assert_eq!(
        err,
        VerifyError::NoMatchingSignature {
            signatures: 0,
            secrets: 1
        }
    );
    // A truncated signature does not match.
    let truncated = &SIGNATURE[..SIGNATURE.len() - 4];
    assert!(check(&[secret()], truncated, BODY, TIMESTAMP).is_err());
}

#[test]
fn verify_names_missing_and_malformed_headers() {
    let ts = TIMESTAMP.to_string();
    // (webhook-id, webhook-timestamp, webhook-signature, message)
    type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);
    let cases: [Case<'_>; 5] = [
        (None, Some(&ts), Some(SIGNATURE), "missing header webhook-id (CB-3)"),
        (
            Some(ID),
            None,
            Some(SIGNATURE),
            "missing header webhook-timestamp (CB-3)",
        ),
        (
            Some(ID),
            Some(&ts),
            Some(" "),
            "missing header webhook-signature (CB-3)",
        ),
        (
            Some(ID),
            Some("1649367553.5"),
            Some(SIGNATURE),
            "malformed header webhook-timestamp \"1649367553.5\": it must be integer seconds since the unix epoch (CB-3)",
        ),
        (
            Some(ID),
            Some("+1649367553"),
            Some(SIGNATURE),
            "malformed header webhook-timestamp \"+1649367553\": it must be integer seconds since the unix epoch (CB-3)",
        ),
    ];
    for (id, timestamp, signature, message) in cases {
        let err = verify(
            &[secret()],
            id,
            timestamp,
            signature,
            BODY,
            TIMESTAMP,
            DEFAULT_TOLERANCE,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn verify_binds_the_id_and_the_timestamp() {
    let ts = TIMESTAMP.to_string();
    let other_id = verify(
        &[secret()],
        Some("msg_other"),
        Some(&ts),
        Some(SIGNATURE),
        BODY,
        TIMESTAMP,
        DEFAULT_TOLERANCE,
    );
    assert!(other_id.is_err());
    let other_ts = (TIMESTAMP + 1).to_string();
    let moved = verify(
        &[secret()],
        Some(ID),
        Some(&other_ts),
        Some(SIGNATURE),
        BODY,
        TIMESTAMP,
        DEFAULT_TOLERANCE,
    );
    assert!(moved.is_err());
}

#[test]
fn secrets_parse_strictly_and_never_show_their_key() {
    let s = secret();
    assert_eq!(s.expose(), SECRET);
    assert_eq!(format!("{s:?}"), "Secret(whsec_<redacted>)");
    assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{SECRET}\""));
    assert_eq!(serde_json::from_str::<Secret>(&format!("\"{SECRET}\"")).unwrap(), s);

    let cases = [
        (
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            SecretError::Prefix,
            "invalid secret: it must start with \"whsec_\" (CB-4)",
        ),
        (
            "whsec_C2FVsBQIhrscChlQ%%%",
            SecretError::Base64,
            "invalid secret: the part after \"whsec_\" must be standard base64 with padding (CB-4)",
        ),
        (
            "whsec_AAAA",
            SecretError::Length { bytes: 3 },
            "invalid secret: the key has 3 bytes, it must have 24 to 64 (CB-4)",
        ),
    ];
    for (input, kind, message) in cases {
        let err = Secret::parse(input).unwrap_err();
        assert_eq!(err, kind);
        assert_eq!(err.to_string(), message);
    }
    assert!(Secret::from_bytes(&[0; 64]).is_ok());
    assert_eq!(
        Secret::from_bytes(&[0; 65]).unwrap_err(),
        SecretError::Length { bytes: 65 }
    );
    let generated = Secret::generate([0xAB; 32]);
    assert_eq!(Secret::parse(&generated.expose()).unwrap(), generated);
    assert_ne!(generated, secret());
}

proptest::proptest! {
    /// Whatever is signed verifies, and changing any one byte of the body
    /// breaks it.
    #[test]
    fn sign_then_verify(
        key in proptest::collection::vec(proptest::num::u8::ANY, 24..=64),
        id in "[A-Za-z0-9_-]{1,64}",
        ts in 0i64..4_000_000_000,
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        flip in proptest::num::usize::ANY,
    ) {
        let secret = Secret::from_bytes(&key).unwrap();
        let signature = sign(&secret, &id, ts, &body);
        let text = ts.to_string();
        proptest::prop_assert!(
            verify(std::slice::from_ref(&secret), Some(&id), Some(&text), Some(&signature), &body, ts, DEFAULT_TOLERANCE).is_ok()
        );
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip % body.len()] ^= 1;
            proptest::prop_assert!(
                verify(&[secret], Some(&id), Some(&text), Some(&signature), &changed, ts, DEFAULT_TOLERANCE).is_err()
            );
        }
    }
}
