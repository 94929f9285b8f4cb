//! Callback URLs an attacker would register to make the broker call inside
//! the operator's network (findings 3 and 9): each is refused at subscribe
//! time with the rule named, and nothing is stored.

use serde_json::{Value, json};

use crate::support::broker::Broker;
use crate::support::registration;
use crate::support::sqlite;

fn wes(callback: &str) -> Value {
    registration(
        "wes-attack",
        json!({
            "images": ["registry.example.org/team/app"],
            "stage": "production",
            "callbackUrl": callback,
            "registry": {"kind": "distribution"}
        }),
    )
}

/// Subscribes with `callback`; asserts a 422 with `code` and that no
/// service was stored.
async fn assert_refused(broker: &Broker, callback: &str, code: &str) -> Value {
    let r = broker.register(&wes(callback)).await;
    assert_eq!(r.status(), 422, "{callback}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{callback}: {body}");
    assert!(
        broker.state.store.services().await.unwrap().is_empty(),
        "{callback}: nothing stored"
    );
    body
}

async fn strict() -> Broker {
    Broker::start(sqlite().await, |c| {
        c.allow_private_callbacks = false;
        c.allow_http_callbacks = false;
    })
    .await
}

#[tokio::test]
async fn loopback_private_and_link_local_callbacks_are_refused() {
    let broker = strict().await;
    for url in [
        "https://127.0.0.1/hook",
        "https://127.1.2.3/hook",
        "https://10.0.0.7/hook",
        "https://172.16.5.4/hook",
        "https://192.168.0.1/hook",
        "https://100.64.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/hook",
        "https://[::1]/hook",
        "https://[fd12:3456::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::127.0.0.1]/hook",
        "https://[64:ff9b::a00:7]/hook",
        "https://[2002:7f00:1::]/hook",
    ] {
        let body = assert_refused(&broker, url, "callback_url_refused").await;
        assert!(body["detail"].as_str().unwrap().contains("resolves to"), "{body}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn decimal_octal_and_hex_ipv4_spellings_are_refused() {
    let broker = strict().await;
    // 127.0.0.1 and 169.254.169.254 as URL parsers (and curl) read them.
    for url in [
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://0177.0.0.1/hook",
        "https://0x7f.1/hook",
        "https://127.1/hook",
        "https://2852039166/latest/meta-data/",
        "https://0xA9FEA9FE/latest/meta-data/",
        "https://0251.0376.0251.0376/latest/meta-data/",
    ] {
        assert_refused(&broker, url, "callback_url_refused").await;
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused() {
    let broker = strict().await;
    // `localhost` resolves to loopback through the system resolver.
    assert_refused(&broker, "https://localhost:8443/hook", "callback_url_refused").await;
    broker.stop().await;
}

#[tokio::test]
async fn metadata_and_link_local_stay_refused_with_private_callbacks_allowed() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    assert!(broker.state.config.allow_private_callbacks);
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://169.254.0.1/",
        "http://168.63.129.16/machine",
        "http://100.100.100.200/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fd00:ec2::23]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::169.254.169.254]/",
        "http://[::ffff:0:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://2852039166/",
    ] {
        assert_refused(&broker, url, "callback_url_refused").await;
    }
    broker.stop().await;
}

#[tokio::test]
async fn plain_http_to_a_public_name_needs_allow_http_callbacks() {
    let broker = Broker::start(sqlite().await, |c| c.allow_http_callbacks = false).await;
    let body = assert_refused(&broker, "http://cd.example.org/hook", "invalid_subscription").await;
    assert!(
        body["detail"].as_str().unwrap().contains("--allow-http-callbacks"),
        "{body}"
    );
    broker.stop().await;
}
