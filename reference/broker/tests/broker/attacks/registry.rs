//! Registry URLs an attacker would make the broker call (finding 3): the
//! registry re-check follows the callback client's rule — no redirects,
//! no proxy, the filtering resolver — for every URL a subscriber chose
//! (`registry.url` or an image's host), and `registry.url` belongs to its
//! subscription only. Names are pinned with [`tagcast_broker::ssrf::Hosts`]
//! (the resolver override), never with the machine's DNS.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tagcast_broker::resolve::Resolution;
use tagcast_broker::ssrf::{Hosts, Policy};
use tagcast_broker::verify::{Origin, Verifier};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::assert_no_event;
use crate::support::broker::Broker;
use crate::support::distribution::{MEDIA_TYPE_V1, digest, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::registration;
use crate::support::sqlite;

const TAG: &str = "1.1.0-production-201108-195630";
const MANIFEST: &str = "/v2/team/app/manifests/1.1.0-production-201108-195630";

fn wes(id: &str, callback: &str, registry_url: &str) -> Value {
    registration(
        id,
        json!({
            "images": ["registry.example.org:5000/team/app"],
            "stage": "production",
            "callbackUrl": callback,
            "registry": {"kind": "distribution", "url": registry_url}
        }),
    )
}

async fn post_service(broker: &Broker, body: &Value) -> (u16, Value) {
    let r = broker.register(body).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A registry that says the tag points to `digest(n)`.
async fn registry_saying(n: u8) -> MockServer {
    let registry = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", digest(n).as_str()))
        .mount(&registry)
        .await;
    registry
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test]
async fn registry_urls_at_private_addresses_with_userinfo_or_a_query_are_refused_at_subscribe_time() {
    let broker = Broker::start(sqlite().await, |c| {
        c.allow_private_callbacks = false;
        c.allow_http_callbacks = false;
    })
    .await;
    broker
        .state
        .config
        .hosts
        .set("registry.rebind.test", vec![ip("127.0.0.1")]);
    for (url, rule) in [
        ("http://127.0.0.1:5000", "plain http"),
        ("https://127.0.0.1:5000", "loopback"),
        ("https://10.1.2.3", "private"),
        ("https://[::1]:5000", "loopback"),
        ("https://169.254.169.254", "metadata"),
        ("https://2130706433", "loopback"),
        ("https://registry.rebind.test", "loopback"),
        ("https://bot:hunter2@registry.example.org", "userinfo"),
        ("https://registry.example.org/?token=s3cr3t", "query"),
        ("https://registry.example.org/#frag", "fragment"),
        ("ftp://registry.example.org", "not an absolute http or https URL"),
    ] {
        let (status, body) = post_service(&broker, &wes("svc", "https://cd.example.org/hook", url)).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["code"], "invalid_subscription", "{url}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with("registry.url "), "{url}: names the field: {detail}");
        assert!(detail.contains(rule), "{url}: names the rule ({rule}): {detail}");
        assert!(!detail.contains("hunter2") && !detail.contains("s3cr3t"), "{detail}");
        assert!(
            broker.state.store.services().await.unwrap().is_empty(),
            "{url}: nothing stored"
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn local_registry_urls_are_allowed_with_private_callbacks_but_metadata_never() {
    let broker = Broker::start(sqlite().await, |c| c.allow_http_callbacks = false).await;
    let (status, body) = post_service(
        &broker,
        &wes("local", "http://127.0.0.1:9/hook", "http://127.0.0.1:5000"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_service(
        &broker,
        &wes("meta", "http://127.0.0.1:9/hook", "http://169.254.169.254"),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("metadata"), "{body}");
    assert!(broker.state.store.service("meta").await.unwrap().is_none());
    broker.stop().await;
}

/// Waits until the hook's event is settled: delivered to `wanted`
/// receivers or dropped.
async fn settled(broker: &Broker) -> Value {
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let log: Vec<Value> = broker.events().await;
        if log.first().is_some_and(|e| e["status"] != "pending") {
            return log[0].clone();
        }
    }
    panic!("the event was never settled");
}

#[tokio::test]
async fn one_subscribers_registry_url_does_not_decide_anothers_deliveries() {
    let honest = registry_saying(1).await;
    let forged = registry_saying(2).await;
    let broker = Broker::start(sqlite().await, |c| {
        c.verify_digests = true;
        c.verify_grace = Duration::from_millis(400);
    })
    .await;
    let victim = Receiver::start(&[]).await;
    let attacker = Receiver::start(&[]).await;
    let (status, created) = post_service(&broker, &wes("victim", &victim.url, &honest.uri())).await;
    assert_eq!(status, 201, "{created}");
    // Written last: on a shared hook source its URL would be the one asked.
    let (status, _) = post_service(&broker, &wes("attacker", &attacker.url, &forged.uri())).await;
    assert_eq!(status, 201);
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap();
    let r = broker
        .client
        .post(hook)
        .header("content-type", MEDIA_TYPE_V1)
        .body(envelope(vec![manifest_push("ev-1", "team/app", Some(TAG), 1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let got = victim.wait_for(1).await;
    assert_eq!(
        got[0].json()["data"]["digest"],
        digest(1),
        "checked at its own registry"
    );
    settled(&broker).await;
    assert!(
        attacker.received().is_empty(),
        "its registry disagrees: nothing for it: {:?}",
        attacker.received().iter().map(|r| r.json()).collect::<Vec<_>>()
    );
    assert!(
        !honest.received_requests().await.unwrap().is_empty() && !forged.received_requests().await.unwrap().is_empty(),
        "each subscriber's registry was asked"
    );
    let deliveries = broker.state.store.deliveries("attacker", 10).await.unwrap();
    assert!(deliveries.is_empty(), "{deliveries:?}");
    broker.stop().await;
}

#[tokio::test]
async fn a_registry_redirect_to_a_private_address_is_not_followed() {
    let private = registry_saying(9).await;
    let registry = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST))
        .respond_with(ResponseTemplate::new(307).insert_header("location", format!("{}{MANIFEST}", private.uri())))
        .mount(&registry)
        .await;
    for origin in [Origin::Operator, Origin::Subscriber] {
        let verifier = Verifier::with_policy(
            Policy {
                allow_private: true,
                allow_http: true,
            },
            &Hosts::default(),
        );
        let got = verifier
            .resolve_from(origin, &registry.uri(), "team/app", TAG, None)
            .await;
        assert!(
            matches!(&got, Resolution::Unresolved(why) if why.contains("307")),
            "{origin:?}: {got:?}"
        );
    }
    assert!(
        private.received_requests().await.unwrap().is_empty(),
        "the redirect's target was never asked"
    );
}

#[tokio::test]
async fn a_registry_name_rebound_to_loopback_is_refused_at_connect_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hosts = Hosts::default();
    hosts.set("registry.rebind.test", vec![ip("127.0.0.1")]);
    let verifier = Verifier::with_policy(Policy::default(), &hosts);
    let got = verifier
        .resolve_from(
            Origin::Subscriber,
            &format!("https://registry.rebind.test:{port}"),
            "team/app",
            TAG,
            None,
        )
        .await;
    assert!(
        matches!(&got, Resolution::Unresolved(why) if why.contains("did not answer")),
        "{got:?}"
    );
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "nothing connected to the loopback listener");
    // The literal spelling never reaches a resolver: checked before the request.
    let got = verifier
        .resolve_from(
            Origin::Subscriber,
            &format!("https://127.0.0.1:{port}"),
            "team/app",
            TAG,
            None,
        )
        .await;
    assert!(
        matches!(&got, Resolution::Unresolved(why) if why.contains("loopback")),
        "{got:?}"
    );
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "nothing connected to the loopback listener");
}

#[tokio::test]
async fn a_token_realm_at_a_metadata_address_is_not_asked() {
    let registry = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            r#"Bearer realm="http://169.254.169.254/token",service="x""#,
        ))
        .mount(&registry)
        .await;
    let verifier = Verifier::with_policy(
        Policy {
            allow_private: true,
            allow_http: true,
        },
        &Hosts::default(),
    );
    let got = verifier
        .resolve_from(Origin::Subscriber, &registry.uri(), "team/app", TAG, None)
        .await;
    assert!(
        matches!(&got, Resolution::Unresolved(why) if why.contains("token realm that is refused") && why.contains("metadata")),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_callback_name_resolving_to_loopback_is_refused_at_subscribe_and_at_connect_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = Broker::start(sqlite().await, |c| {
        c.allow_private_callbacks = false;
        c.allow_http_callbacks = false;
    })
    .await;
    let hosts = &broker.state.config.hosts;
    let callback = format!("https://cd.rebind.test:{port}/hook");
    // Subscribe time: the name resolves to loopback.
    hosts.set("cd.rebind.test", vec![ip("127.0.0.1")]);
    let mut body = wes("svc", &callback, "https://registry.example.org:5000");
    body["subscription"]["registry"] = json!({"kind": "distribution"});
    let (status, answer) = post_service(&broker, &body).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["code"], "callback_url_refused");
    assert!(broker.state.store.services().await.unwrap().is_empty());
    // Connect time: public when subscribing, loopback when called (rebinding).
    hosts.set("cd.rebind.test", vec![ip("93.184.215.14")]);
    let (status, created) = post_service(&broker, &body).await;
    assert_eq!(status, 201, "{created}");
    hosts.set("cd.rebind.test", vec![ip("127.0.0.1")]);
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap();
    let r = broker
        .client
        .post(hook)
        .header("content-type", MEDIA_TYPE_V1)
        .body(envelope(vec![manifest_push("ev-1", "team/app", Some(TAG), 1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut error = None;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let log = broker.state.store.deliveries("svc", 10).await.unwrap();
        if let Some(e) = log.first().and_then(|d| d.last_error.clone()) {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("the attempt was recorded");
    assert!(error.contains("127.0.0.1") && error.contains("loopback"), "{error}");
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "nothing connected to the loopback listener");
    let _ = assert_no_event;
    broker.stop().await;
}
