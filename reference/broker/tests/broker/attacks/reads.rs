//! What reads, `Debug` output and error answers show (finding 9): never a
//! subscription secret, hook token or hook secret on a public read, never
//! a callback URL's userinfo or a registry URL's query, and no struct that
//! holds a secret prints it.

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::Connection as _;
use tagcast_broker::config::{Config, Settings};
use tagcast_broker::inbound::HookAuth;
use tagcast_broker::manage::HookSpec;
use tagcast_broker::registries::{Credentials, SecretString};
use tagcast_broker::store::{
    DueDelivery, HookSource, ManagedHookRow, NewHookSource, NewService, NewSubscription, SqliteStore,
};
use tagcast_spec::{Digest, Repository, Tag};

use crate::support::broker::{Broker, TOKEN};
use crate::support::registration;

const CD_PASSWORD: &str = "cd-pa55word-9f3b";
const REGISTRY_QUERY_TOKEN: &str = "s3cr3t-registry-query-7c1d";

async fn get(broker: &Broker, url: &str) -> (u16, String) {
    let r = broker.client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn public_reads_never_show_a_secret_a_callback_password_or_a_registry_query() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("broker.db").display());
    let store = SqliteStore::open_keyed(&url, &crate::support::keys()).await.unwrap();
    let mut side = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let broker = Broker::start(Arc::new(store), |_| {}).await;
    let body = registration(
        "svc",
        json!({
            "images": ["registry.example.org:5000/team/app"],
            "stage": "production",
            "callbackUrl": "http://127.0.0.1:9/hook",
            "registry": {"kind": "generic", "url": "http://127.0.0.1:5000"}
        }),
    );
    let r = broker.register(&body).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let hook = created["subscription"]["hooks"][0].clone();
    let hook_url = hook["url"].as_str().unwrap().to_owned();
    let hook_token = hook_url.rsplit('/').next().unwrap().to_owned();
    let hook_secret = hook["secret"]
        .as_str()
        .expect("generic signs: a hook secret")
        .to_owned();
    let secret = created["subscription"]["secret"].as_str().unwrap().to_owned();
    // A row written before registry.url was validated (a query with a
    // token), and a callback URL with Basic credentials in its userinfo.
    sqlx::query(
        "UPDATE services SET document = json_set(document, '$.subscription.registry.url', \
         'http://127.0.0.1:5000/?token=' || ?, '$.subscription.callbackUrl', \
         'http://deployer:' || ? || '@127.0.0.1:9/hook') WHERE id = 'svc'",
    )
    .bind(REGISTRY_QUERY_TOKEN)
    .bind(CD_PASSWORD)
    .execute(&mut side)
    .await
    .unwrap();

    let secrets = [
        ("the admin token", TOKEN.to_owned()),
        ("the subscription secret", secret.clone()),
        (
            "the subscription secret's key",
            secret.trim_start_matches("whsec_").to_owned(),
        ),
        ("the hook token", hook_token.clone()),
        ("the hook secret", hook_secret.trim_start_matches("whsec_").to_owned()),
        ("the callback password", CD_PASSWORD.to_owned()),
        ("the registry URL's query token", REGISTRY_QUERY_TOKEN.to_owned()),
    ];
    let mut reads = Vec::new();
    for path in [
        "/services",
        "/services/svc",
        "/services/types",
        "/service-info",
        "/services/svc/subscription/status",
        "/services/svc/deliveries",
        "/services/nope",
        "/hooks/events",
    ] {
        let at = if path.starts_with("/hooks") {
            format!("{}{path}", broker.url)
        } else {
            broker.api(path)
        };
        reads.push((path.to_owned(), get(&broker, &at).await));
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        reads.push((path.to_owned(), get(&broker, &format!("{}{path}", broker.url)).await));
    }
    // Hooks with a wrong and a truncated token: their 404 bodies.
    for token in ["wrong", &hook_token[..hook_token.len() / 2]] {
        let r = broker
            .client
            .post(format!("{}/hooks/generic/{token}", broker.url))
            .body("{}")
            .send()
            .await
            .unwrap();
        reads.push((format!("hook {token}"), (r.status().as_u16(), r.text().await.unwrap())));
    }
    for (path, (status, text)) in &reads {
        for (what, value) in &secrets {
            assert!(!text.contains(value.as_str()), "{path} ({status}) shows {what}: {text}");
        }
    }
    let (status, one) = get(&broker, &broker.api("/services/svc")).await;
    assert_eq!(status, 200);
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["subscription"]["callbackUrl"], "http://127.0.0.1:9/hook", "{one}");
    assert_eq!(
        one["subscription"]["registry"]["url"], "http://127.0.0.1:5000/",
        "{one}"
    );
    assert!(one["subscription"]["hooks"][0].get("url").is_none(), "{one}");
    broker.stop().await;
}

#[test]
fn debug_output_of_every_struct_holding_a_secret_is_redacted() {
    const S: &str = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
    const T: &str = "hooktoken0123456789abcdefghijklmnopq";
    const P: &str = "db-pa55word";
    let mut config = Config::for_tests();
    config.admin_token = Some("admin-0123456789abcdef".into());
    config.hook_token = Some("bearer-0123456789abcdef".into());
    config.database_url = format!("postgres://broker:{P}@db.example.org/broker");
    let settings = Settings {
        admin_token: Some("admin-0123456789abcdef".into()),
        hook_token: Some("bearer-0123456789abcdef".into()),
        database_url: Some(format!("postgres://broker:{P}@db.example.org/broker")),
        ..Settings::default()
    };
    let subscription = NewSubscription {
        stage: "production".into(),
        api_requirement: "^1.1".into(),
        callback_url: format!("https://cd:{P}@cd.example.org/hook"),
        secret: S.into(),
        images: vec!["registry.example.org/team/app".into()],
        registry_url: None,
    };
    let service = NewService {
        id: "svc".into(),
        document: "{}".into(),
        subscription: Some(subscription.clone()),
        hook_sources: vec![NewHookSource {
            kind: "generic".into(),
            registry: "registry.example.org".into(),
            secret: Some(S.into()),
        }],
    };
    let source = HookSource {
        token: T.into(),
        kind: "generic".into(),
        registry: "registry.example.org".into(),
        secret: Some(S.into()),
    };
    let due = DueDelivery {
        id: "d".into(),
        service_id: "svc".into(),
        repository: Repository::parse("registry.example.org/team/app").unwrap(),
        tag: Tag::parse("1.1.0-production-201108-195630").unwrap(),
        digest: Digest::parse("sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
        payload: "{}".into(),
        attempts: 0,
        schedule_offset: 0,
        manual: false,
        created_at: 0,
        callback_url: format!("https://cd:{P}@cd.example.org/hook"),
        secret: S.into(),
        previous_secret: Some(S.into()),
        enabled: true,
        last_tag: None,
        last_status: None,
        newer_pending: None,
    };
    let row = ManagedHookRow {
        registry: "harbor.example.org".into(),
        scope: "team".into(),
        kind: "harbor".into(),
        path: "team/app".into(),
        url: format!("https://broker.example.org/hooks/harbor/{T}"),
    };
    let spec = HookSpec {
        url: format!("https://broker.example.org/hooks/harbor/{T}"),
        secret: Some(S.into()),
        authorization: Some("Bearer bearer-0123456789abcdef".into()),
    };
    let auth = HookAuth {
        bearer: Some("bearer-0123456789abcdef".into()),
        ..HookAuth::default()
    };
    let credentials = [
        Credentials::Basic {
            username: "bot".into(),
            password: SecretString::new(P),
        },
        Credentials::Bearer(SecretString::new(P)),
    ];
    let printed = [
        format!("{config:?} {config:#?}"),
        format!("{settings:?} {settings:#?}"),
        format!("{subscription:?} {service:#?}"),
        format!("{source:?} {source:#?}"),
        format!("{due:?} {due:#?}"),
        format!("{row:?} {spec:?} {auth:?} {credentials:?}"),
    ];
    for text in &printed {
        for secret in [
            S,
            T,
            P,
            "admin-0123456789abcdef",
            "bearer-0123456789abcdef",
            "c2VjcmV0c2VjcmV0",
        ] {
            assert!(!text.contains(secret), "Debug shows {secret:?}: {text}");
        }
        assert!(text.contains("<redacted>") || text.contains("redacted"), "{text}");
    }
}
