//! The table-driven fixture test: every `tests/fixtures/<kind>/cases.json`
//! is played against a real broker (over HTTP), one broker per kind, the
//! cases in order, and each answer and each recorded event is checked.
//!
//! A `cases.json` names the kind, the subscribed image, and the cases:
//! `body` (a file beside it, sent as the registry sends it; with `form`,
//! wrapped as `payload=<url-encoded file>`), `contentType`, `headers`, the
//! expected `status`, and for 202 the expected `events` (`status`, and
//! `image`, `tag`, `digest` for accepted ones or a `reason` substring for
//! ignored ones). Header values may hold `{hmac}` (hex HMAC-SHA256 under
//! the hook's secret, over the body sent — or over the file itself with
//! `"signed": "payload"`), `{forged}` (the same under another secret) and
//! `{secret}` (the hook's secret itself), `{hook_token}` (the broker's
//! `--hook-token`, set when the table says `"hookToken": true`; with
//! `"verifyDigests": false` no registry is asked about digests), and the
//! Pub/Sub OIDC tokens of [`crate::pubsub`] (`{gar_token}`, `{gar_forged}`,
//! …, checked when the table says `"oidc": true`). A rejected case (401, 400) must
//! store nothing. The sources of each fixture are in the folder's README.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tagcast_broker::inbound::signature::hmac_hex;

use crate::support::broker::{Broker, TOKEN};
use crate::support::registration;
use crate::support::sqlite;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Registers a service subscribed to `image` on a registry of `kind`;
/// returns its hook (`url`, `secret`).
async fn hook(broker: &Broker, kind: &str, image: &str) -> Value {
    let created: Value = broker
        .register(&registration(
            format!("svc-{kind}"),
            json!({
                "images": [image],
                "stage": "production",
                "callbackUrl": "http://127.0.0.1:9/unused",
                "registry": {"kind": kind}
            }),
        ))
        .await
        .json()
        .await
        .unwrap();
    let hook = created["subscription"]["hooks"][0].clone();
    assert_eq!(hook["kind"], kind, "{created}");
    hook
}

pub async fn event_log(broker: &Broker) -> Vec<Value> {
    broker
        .client
        .get(format!("{}/hooks/events?limit=1000", broker.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `--hook-token` of brokers whose table says `"hookToken": true`.
pub const HOOK_TOKEN: &str = "fixture-hook-token-0123456789";

fn fill(template: &str, secret: &str, signed: &[u8]) -> String {
    template
        .replace("{hook_token}", HOOK_TOKEN)
        .replace("{hmac}", &hmac_hex(secret, signed))
        .replace("{forged}", &hmac_hex("whsec_not-the-hook-secret", signed))
        .replace("{secret}", secret)
        .replace("{gar_token}", &crate::pubsub::token(crate::pubsub::Claims::valid()))
        .replace("{gar_forged}", &crate::pubsub::forged(crate::pubsub::Claims::valid()))
        .replace(
            "{gar_expired}",
            &crate::pubsub::token(crate::pubsub::Claims::valid().expired()),
        )
        .replace(
            "{gar_wrong_audience}",
            &crate::pubsub::token(crate::pubsub::Claims::valid().audience("https://elsewhere.example.org/push")),
        )
        .replace(
            "{gar_other_account}",
            &crate::pubsub::token(
                crate::pubsub::Claims::valid().email("intruder@other-project.iam.gserviceaccount.com"),
            ),
        )
        .replace(
            "{gar_wrong_issuer}",
            &crate::pubsub::token(crate::pubsub::Claims::valid().issuer("https://issuer.example.org")),
        )
}

/// The `cases.json` of a kind.
pub fn table(kind: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(kind).join("cases.json")).unwrap()).unwrap()
}

/// Sends one case to the hook at `url` signed with `secret`, as the
/// registry would; returns the answer's status and body.
pub async fn send(broker: &Broker, kind: &str, url: &str, secret: &str, case: &Value) -> (u16, Value) {
    let file = std::fs::read(fixtures().join(kind).join(case["body"].as_str().unwrap())).unwrap();
    let body = if case["form"] == true {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", std::str::from_utf8(&file).unwrap())
            .finish()
            .into_bytes()
    } else {
        file.clone()
    };
    let signed = if case["signed"] == "payload" { &file } else { &body };
    let mut request = broker
        .client
        .post(url)
        .header("content-type", case["contentType"].as_str().unwrap());
    for (header, value) in case["headers"].as_object().unwrap() {
        request = request.header(header, fill(value.as_str().unwrap(), secret, signed));
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Plays the cases of one kind; returns how many were played.
async fn play(kind: &str) -> usize {
    let table = table(kind);
    assert_eq!(table["kind"], kind);
    let broker = Broker::start(sqlite().await, |config| {
        if table["hookToken"] == true {
            config.hook_token = Some(HOOK_TOKEN.into());
        }
        if table["verifyDigests"] == false {
            config.verify_digests = false;
        }
        if table["oidc"] == true {
            let host = table["image"].as_str().unwrap().split('/').next().unwrap();
            config.registries = vec![crate::pubsub::registry(host, crate::pubsub::jwks_keys())];
        }
    })
    .await;
    let hook = hook(&broker, kind, table["image"].as_str().unwrap()).await;
    let url = hook["url"].as_str().unwrap();
    let secret = hook["secret"].as_str().unwrap_or_default();
    let cases = table["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let before = event_log(&broker).await.len();
        let (status, answer) = send(&broker, kind, url, secret, case).await;
        assert_eq!(status, case["status"], "{kind}: {name}: {answer}");
        let log = event_log(&broker).await;
        if status != 202 {
            assert_eq!(log.len(), before, "{kind}: {name}: a refused request stores nothing");
            assert!(answer["code"].is_string(), "{kind}: {name}: the error body: {answer}");
            continue;
        }
        let events = answer["events"].as_array().unwrap();
        let expected = case["events"].as_array().unwrap();
        assert_eq!(events.len(), expected.len(), "{kind}: {name}: {answer}");
        for (got, want) in events.iter().zip(expected) {
            assert_eq!(got["status"], want["status"], "{kind}: {name}: {got}");
            let stored = log
                .iter()
                .find(|e| e["id"] == got["id"])
                .unwrap_or_else(|| panic!("{kind}: {name}: event {} is in the log", got["id"]));
            if want["status"] == "accepted" {
                for field in ["image", "tag", "digest"] {
                    assert_eq!(stored[field], want[field], "{kind}: {name}: {field} of {stored}");
                }
            } else {
                let reason = got["reason"].as_str().unwrap_or_default();
                let wanted = want["reason"].as_str().unwrap();
                assert!(reason.contains(wanted), "{kind}: {name}: {reason:?} says {wanted:?}");
            }
        }
    }
    broker.stop().await;
    cases.len()
}

#[tokio::test]
async fn ghcr_fixtures() {
    assert!(play("ghcr").await >= 10);
}

#[tokio::test]
async fn gitea_fixtures() {
    assert!(play("gitea").await >= 10);
}

#[tokio::test]
async fn artifactory_fixtures() {
    assert!(play("artifactory").await >= 8);
}

#[tokio::test]
async fn dockerhub_fixtures() {
    assert!(play("dockerhub").await >= 8);
}

#[tokio::test]
async fn harbor_fixtures() {
    assert!(play("harbor").await >= 12);
}

#[tokio::test]
async fn quay_fixtures() {
    assert!(play("quay").await >= 7);
}

#[tokio::test]
async fn acr_fixtures() {
    assert!(play("acr").await >= 10);
}

#[tokio::test]
async fn gar_fixtures() {
    assert!(play("gar").await >= 13);
}

#[tokio::test]
async fn ecr_fixtures() {
    assert!(play("ecr").await >= 11);
}
