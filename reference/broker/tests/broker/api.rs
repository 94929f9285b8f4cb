//! The registry API over real HTTP: auth, validation, secrets, hooks.

use serde_json::{Value, json};

use crate::support::broker::{Broker, TOKEN};
use crate::support::sqlite;

fn wes(id: Option<&str>, callback: &str) -> Value {
    let mut body = json!({
        "name": "WES",
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "organization": {"name": "Example", "url": "https://example.org"},
        "version": "1.0.0",
        "url": "https://wes.example.org/ga4gh/wes/v1",
        "subscription": {
            "images": ["registry.example.org:5000/team/app"],
            "stage": "production",
            "callbackUrl": callback,
            "registry": {"kind": "distribution"}
        }
    });
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    body
}

#[tokio::test]
async fn writes_need_the_admin_token() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let c = &broker.client;
    let r = c
        .post(broker.api("/services"))
        .json(&wes(None, "https://cd.example.org"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["status"].as_u64(), body["code"].as_str()),
        (Some(401), Some("unauthorized"))
    );
    let r = c
        .post(broker.api("/services"))
        .bearer_auth("not-the-admin-token-at-all")
        .json(&wes(None, "https://cd.example.org"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c.delete(broker.api("/services/x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    broker.stop().await;
}

#[tokio::test]
async fn create_read_replace_delete() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let c = &broker.client;
    let r = c
        .post(broker.api("/services"))
        .bearer_auth(TOKEN)
        .json(&wes(None, "https://cd.example.org/hook"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        location.ends_with(&format!("/ga4gh/registry/v1/services/{id}")),
        "{location}"
    );
    let secret = created["subscription"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        created["subscription"]["apiVersion"], "^1.1.0",
        "default ^ + type.version"
    );
    let hooks = created["subscription"]["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["kind"], "distribution");
    assert_eq!(hooks[0]["registry"], "registry.example.org:5000");
    let hook_url = hooks[0]["url"].as_str().unwrap();
    assert!(
        hook_url.starts_with(&format!("{}/hooks/distribution/", broker.url)),
        "{hook_url}"
    );
    assert!(hook_url.rsplit('/').next().unwrap().len() >= 22, "token ≥ 128 bits");

    // Reads are public and show the stored subscription with its hooks
    // (API-3, API-8), never the secret, and the hook URL (a credential) only
    // to the admin token.
    let read: Value = c
        .get(broker.api(&format!("/services/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(read["subscription"].get("secret").is_none(), "{read}");
    assert_eq!(
        read["subscription"]["hooks"][0]["registry"],
        "registry.example.org:5000"
    );
    assert!(read["subscription"]["hooks"][0].get("url").is_none(), "{read}");
    assert!(!read.to_string().contains(hook_url.rsplit('/').next().unwrap()));
    let admin_read: Value = c
        .get(broker.api(&format!("/services/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        admin_read["subscription"]["hooks"][0]["url"], hook_url,
        "the same token across reads"
    );
    assert!(admin_read["subscription"].get("secret").is_none(), "{admin_read}");
    assert_eq!(read["subscription"]["state"], "active");
    assert!(!read.to_string().contains(&secret));

    let list: Value = c
        .get(broker.api("/services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let types: Value = c
        .get(broker.api("/services/types"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        types,
        json!([{"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"}])
    );

    // PUT without a secret keeps the secret (and does not show it again).
    let mut replaced = wes(Some(&id), "https://cd.example.org/other");
    replaced["name"] = json!("WES 2");
    let r = c
        .put(broker.api(&format!("/services/{id}")))
        .bearer_auth(TOKEN)
        .json(&replaced)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert!(answer["subscription"].get("secret").is_none(), "{answer}");
    assert_eq!(
        broker.state.store.subscription_secret(&id).await.unwrap().as_deref(),
        Some(secret.as_str())
    );
    // A PUT whose body names another id is refused.
    let r = c
        .put(broker.api(&format!("/services/{id}")))
        .bearer_auth(TOKEN)
        .json(&wes(Some("other"), "https://cd.example.org"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "API-5");

    let r = c
        .delete(broker.api(&format!("/services/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get(broker.api(&format!("/services/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    broker.stop().await;
}

#[tokio::test]
async fn invalid_bodies_are_refused_with_the_error_body() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let c = &broker.client;
    let post = |body: Value| c.post(broker.api("/services")).bearer_auth(TOKEN).json(&body).send();
    let r = post(json!({"name": "no type"})).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_request");
    let mut bad_stage = wes(None, "https://cd.example.org");
    bad_stage["subscription"]["stage"] = json!("prod");
    assert_eq!(post(bad_stage).await.unwrap().status(), 400);
    let mut no_images = wes(None, "https://cd.example.org");
    no_images["subscription"]["images"] = json!([]);
    let r = post(no_images).await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_subscription");
    // The requirement is the rule the detail cites (issue 14 item 4): no
    // apiVersion and a type.version that is no version breaks API-7, not API-6.
    let mut no_default = wes(None, "https://cd.example.org");
    no_default["type"]["version"] = json!("v1.0");
    let r = post(no_default).await.unwrap();
    assert_eq!(r.status(), 422);
    let body = r.json::<Value>().await.unwrap();
    assert_eq!(body["requirement"], "API-7", "{body}");
    assert!(body["detail"].as_str().unwrap().ends_with("(API-7)"), "{body}");
    let r = c
        .post(broker.api("/services"))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let created = post(wes(Some("dup"), "https://cd.example.org")).await.unwrap();
    assert_eq!(created.status(), 201);
    let r = post(wes(Some("dup"), "https://cd.example.org")).await.unwrap();
    assert_eq!(r.status(), 409);
    broker.stop().await;
}

#[tokio::test]
async fn private_callbacks_are_refused_unless_allowed() {
    let broker = Broker::start(sqlite().await, |c| {
        c.allow_private_callbacks = false;
        c.allow_http_callbacks = false;
    })
    .await;
    for url in [
        "https://127.0.0.1:8080/hook",
        "https://10.0.0.7/tagcast",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
    ] {
        let r = broker.register(&wes(None, url)).await;
        assert_eq!(r.status(), 422, "{url}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "callback_url_refused", "{url}");
        assert!(
            body["detail"].as_str().unwrap().contains("--allow-private-callbacks"),
            "{body}"
        );
    }
    // Plain http is for operators who allow it.
    let r = broker.register(&wes(None, "http://cd.example.org/hook")).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_subscription");
    assert!(broker.state.store.services().await.unwrap().is_empty());
    broker.stop().await;

    // Allowing private callbacks never allows the metadata endpoint.
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let r = broker
        .register(&wes(None, "http://169.254.169.254/latest/meta-data/"))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "callback_url_refused");
    broker.stop().await;
}

#[tokio::test]
async fn operations_endpoints() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let c = &broker.client;
    assert_eq!(
        c.get(format!("{}/healthz", broker.url)).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(format!("{}/readyz", broker.url)).send().await.unwrap().status(),
        200
    );
    let info: Value = c
        .get(broker.api("/service-info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["type"]["artifact"], "service-registry");
    assert!(
        info["extensions"]["subscription"]["hookKinds"]
            .as_array()
            .unwrap()
            .contains(&json!("distribution"))
    );
    let metrics = broker.metrics().await;
    assert!(metrics.contains("tagcast_queue_depth"), "{metrics}");
    assert!(metrics.contains("# EOF"), "{metrics}");
    broker.stop().await;
}

#[tokio::test]
async fn extra_properties_are_kept_and_images_normalized() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let body = json!({
        "id": "org.example.wes.cwl",
        "name": "cwl-WES",
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "organization": {"name": "Example University", "url": "https://www.example.org"},
        "version": "1.1.0-production-240229-235959",
        "url": "https://wes.example.org/ga4gh/wes/v1",
        "supported_wes_versions": ["1.0.0", "1.1.0"],
        "workflow_type_versions": {"CWL": {"workflow_type_version": ["v1.2"]}},
        "subscription": {
            "images": ["elixircloud/cwl-wes"],
            "stage": "production",
            "apiVersion": "^1.1",
            "callbackUrl": "https://cd.example.org/tagcast"
        }
    });
    let r = broker.register(&body).await;
    assert_eq!(r.status(), 201);
    let read: Value = broker
        .client
        .get(broker.api("/services/org.example.wes.cwl"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["supported_wes_versions"], body["supported_wes_versions"]);
    assert_eq!(read["workflow_type_versions"], body["workflow_type_versions"]);
    assert_eq!(read["subscription"]["images"], json!(["docker.io/elixircloud/cwl-wes"]));
    assert_eq!(read["subscription"]["apiVersion"], "^1.1");
    // docker.io implies the dockerhub kind.
    assert_eq!(read["subscription"]["hooks"][0]["kind"], "dockerhub");
    assert_eq!(read["subscription"]["hooks"][0]["registry"], "docker.io");
    broker.stop().await;
}

/// Issue 11, finding 6: `GET /services` pages with `?limit=&cursor=` and a
/// `Link: rel="next"` header; without parameters it is the plain list.
#[tokio::test]
async fn services_are_listed_in_pages_with_a_next_link() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let receiver = crate::support::receiver::Receiver::start(&[]).await;
    for id in ["a", "b", "c", "d", "e"] {
        broker
            .subscribe(id, &["registry.example.org/team/app"], "production", &receiver.url)
            .await;
    }
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = broker.client.get(broker.api("/services")).send().await.unwrap();
    assert!(all.headers().get("link").is_none());
    assert_eq!(ids(&all.json().await.unwrap()), ["a", "b", "c", "d", "e"]);

    let mut url = broker.api("/services?limit=2");
    let mut pages = Vec::new();
    loop {
        let r = broker.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let link = r.headers().get("link").map(|l| l.to_str().unwrap().to_owned());
        pages.push(ids(&r.json().await.unwrap()));
        let Some(link) = link else { break };
        assert!(link.ends_with(r#">; rel="next""#), "{link}");
        url = link[1..link.find('>').unwrap()].to_owned();
        assert!(url.starts_with(&broker.api("/services?limit=2&cursor=")), "{url}");
    }
    assert_eq!(pages, [vec!["a", "b"], vec!["c", "d"], vec!["e"]]);

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=two", "limit"),
        ("limit=2&cursor=not-a-cursor", "cursor"),
        ("cursor=YQ", "cursor"),
    ] {
        let r = broker
            .client
            .get(broker.api(&format!("/services?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "invalid_request", "{query}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("query parameter {parameter} ")),
            "{query}: {body}"
        );
    }
    assert_eq!(broker.state.store.services().await.unwrap().len(), 5, "nothing changed");
    broker.stop().await;
}
