//! Webhook management clients against wiremock registries that answer as
//! the registries document (sources in each client module of
//! `src/manage/`): Harbor webhook policies, Quay repository notifications,
//! GitHub organization/repository hooks, Gitea organization/user hooks; and
//! the manager creating a hook for the first subscription of a scope and
//! deleting it with the last.

use std::time::Duration;

use serde_json::{Value, json};
use tagcast_broker::manage::{self, Api, Ensured, HookSpec, ManageError, Removed};
use tagcast_broker::registries::{Credentials, Registry, SecretString};
use tagcast_spec::subscription::RegistryKind;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::broker::{Broker, TOKEN};
use crate::support::registration;
use crate::support::sqlite;

const HOOK: &str = "https://broker.example.org/hooks/harbor/tok";

fn basic() -> Credentials {
    Credentials::Basic {
        username: "admin".into(),
        password: SecretString::new("hunter2"),
    }
}

fn bearer() -> Credentials {
    Credentials::Bearer(SecretString::new("s3cr3t-token"))
}

fn spec() -> HookSpec {
    HookSpec {
        url: HOOK.into(),
        secret: Some("whsec-signing".into()),
        authorization: Some("Bearer hook-token-0123456789".into()),
    }
}

async fn ensure(
    kind: RegistryKind,
    server: &MockServer,
    credentials: &Credentials,
    scope: &str,
    path: &str,
) -> Result<Ensured, ManageError> {
    let client = reqwest::Client::new();
    let base = server.uri();
    let api = Api {
        client: &client,
        base: &base,
        credentials,
    };
    manage::ensure(kind, api, scope, path, &spec()).await
}

async fn remove(
    kind: RegistryKind,
    server: &MockServer,
    credentials: &Credentials,
    scope: &str,
    path: &str,
) -> Result<Removed, ManageError> {
    let client = reqwest::Client::new();
    let base = server.uri();
    let api = Api {
        client: &client,
        base: &base,
        credentials,
    };
    manage::remove(kind, api, scope, path, HOOK).await
}

mod harbor {
    use super::*;

    const POLICIES: &str = "/api/v2.0/projects/proj/webhook/policies";
    /// `admin:hunter2`.
    const AUTH: &str = "Basic YWRtaW46aHVudGVyMg==";

    fn policy(id: u64) -> Value {
        json!({"id": id, "name": "someone-else", "enabled": true, "event_types": ["PUSH_ARTIFACT"],
               "targets": [{"type": "http", "address": HOOK, "payload_format": "Default"}]})
    }

    #[tokio::test]
    async fn creates_a_policy_with_a_unique_name_and_the_auth_header() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(POLICIES))
            .and(header("authorization", AUTH))
            .and(header("x-is-resource-name", "true"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(POLICIES))
            .and(header("authorization", AUTH))
            .and(body_partial_json(json!({
                "enabled": true,
                "event_types": ["PUSH_ARTIFACT"],
                "targets": [{"type": "http", "address": HOOK, "auth_header": "Bearer hook-token-0123456789", "payload_format": "Default"}]
            })))
            .respond_with(ResponseTemplate::new(201).insert_header("location", "/api/v2.0/projects/proj/webhook/policies/7"))
            .expect(1)
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Harbor, &server, &basic(), "proj", "proj/app").await;
        assert_eq!(got, Ok(Ensured::Created("7".into())));
        let posted: Value = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .find(|r| r.method.as_str() == "POST")
            .unwrap()
            .body_json()
            .unwrap();
        assert_eq!(posted["name"], manage::harbor::policy_name(HOOK));
        assert!(posted["name"].as_str().unwrap().starts_with("tagcast-"));
    }

    #[tokio::test]
    async fn reuses_a_policy_pointing_at_the_same_url() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(POLICIES))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([policy(3)])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .expect(0)
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Harbor, &server, &basic(), "proj", "proj/app").await;
        assert_eq!(got, Ok(Ensured::Existing("3".into())));
    }

    #[tokio::test]
    async fn a_409_name_conflict_finds_the_policy_created_meanwhile() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(POLICIES))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(POLICIES))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([policy(9)])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(POLICIES))
            .respond_with(
                ResponseTemplate::new(409)
                    .set_body_json(json!({"errors": [{"code": "CONFLICT", "message": "name already exists"}]})),
            )
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Harbor, &server, &basic(), "proj", "proj/app").await;
        assert_eq!(got, Ok(Ensured::Existing("9".into())));
    }

    #[tokio::test]
    async fn refused_credentials_and_a_missing_project_are_permanent() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(POLICIES))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]})),
            )
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Harbor, &server, &basic(), "proj", "proj/app").await;
        let Err(ManageError::Permanent(why)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            why,
            "listing Harbor webhook policies of project proj: the registry refused the manage credentials (401): unauthorized"
        );
        assert!(!why.contains("hunter2"));
        let missing = ensure(RegistryKind::Harbor, &server, &basic(), "nope", "nope/app").await;
        assert!(
            matches!(&missing, Err(ManageError::Permanent(why)) if why.contains("answered 404")),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn a_5xx_is_retryable_and_the_retry_creates() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(POLICIES))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(POLICIES))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(POLICIES))
            .respond_with(
                ResponseTemplate::new(201).insert_header("location", "/api/v2.0/projects/proj/webhook/policies/8"),
            )
            .mount(&server)
            .await;
        let first = ensure(RegistryKind::Harbor, &server, &basic(), "proj", "proj/app").await;
        assert!(matches!(&first, Err(e) if e.retryable()), "{first:?}");
        let second = ensure(RegistryKind::Harbor, &server, &basic(), "proj", "proj/app").await;
        assert_eq!(second, Ok(Ensured::Created("8".into())));
    }

    #[tokio::test]
    async fn deletes_the_policy_pointing_at_the_url() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(POLICIES))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([policy(3)])))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(format!("{POLICIES}/3")))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            remove(RegistryKind::Harbor, &server, &basic(), "proj", "proj/app").await,
            Ok(Removed::Deleted)
        );
    }
}

mod quay {
    use super::*;

    const LIST: &str = "/api/v1/repository/org/app/notification/";

    fn notification(uuid: &str, failures: u64) -> Value {
        json!({"uuid": uuid, "title": "x", "event": "repo_push", "method": "webhook",
               "config": {"url": HOOK}, "event_config": {}, "number_of_failures": failures})
    }

    #[tokio::test]
    async fn creates_a_repo_push_webhook_notification() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(header("authorization", "Bearer s3cr3t-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"notifications": []})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(LIST))
            .and(body_partial_json(json!({
                "event": "repo_push", "method": "webhook", "config": {"url": HOOK}, "eventConfig": {}
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(notification("u1", 0)))
            .expect(1)
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Quay, &server, &bearer(), "org/app", "org/app").await;
        assert_eq!(got, Ok(Ensured::Created("u1".into())));
    }

    #[tokio::test]
    async fn an_existing_notification_that_failed_is_reset() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"notifications": [notification("u2", 3)]})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("{LIST}u2")))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(LIST))
            .respond_with(ResponseTemplate::new(201))
            .expect(0)
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Quay, &server, &bearer(), "org/app", "org/app").await;
        assert_eq!(got, Ok(Ensured::Existing("u2".into())));
    }

    #[tokio::test]
    async fn deletes_and_a_missing_repository_is_permanent() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"notifications": [notification("u2", 0)]})))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(format!("{LIST}u2")))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            remove(RegistryKind::Quay, &server, &bearer(), "org/app", "org/app").await,
            Ok(Removed::Deleted)
        );
        let missing = ensure(RegistryKind::Quay, &server, &bearer(), "org/gone", "org/gone").await;
        assert!(
            matches!(&missing, Err(ManageError::Permanent(why)) if why.contains("answered 404")),
            "{missing:?}"
        );
    }
}

mod github {
    use super::*;

    fn hook(id: u64) -> Value {
        json!({"id": id, "name": "web", "active": true, "events": ["package"],
               "config": {"url": HOOK, "content_type": "json", "insecure_ssl": "0"}})
    }

    #[tokio::test]
    async fn creates_an_organization_package_hook_with_json_and_the_secret() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/orgs/org/hooks"))
            .and(header("authorization", "Bearer s3cr3t-token"))
            .and(header("accept", "application/vnd.github+json"))
            .and(header("x-github-api-version", "2022-11-28"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/orgs/org/hooks"))
            .and(body_partial_json(json!({
                "name": "web", "active": true, "events": ["package"],
                "config": {"url": HOOK, "content_type": "json", "secret": "whsec-signing", "insecure_ssl": "0"}
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(hook(11)))
            .expect(1)
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Ghcr, &server, &bearer(), "org", "org/app").await;
        assert_eq!(got, Ok(Ensured::Created("11".into())));
    }

    #[tokio::test]
    async fn a_422_hook_already_exists_is_reused() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/orgs/org/hooks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/orgs/org/hooks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([hook(12)])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/orgs/org/hooks"))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({
                "message": "Validation Failed",
                "errors": [{"resource": "Hook", "code": "custom", "message": "Hook already exists on this organization"}]
            })))
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Ghcr, &server, &bearer(), "org", "org/app").await;
        assert_eq!(got, Ok(Ensured::Existing("12".into())));
    }

    #[tokio::test]
    async fn a_user_owner_gets_a_repository_hook() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/orgs/someone/hooks"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/someone/app/hooks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/someone/app/hooks"))
            .respond_with(ResponseTemplate::new(201).set_body_json(hook(13)))
            .expect(1)
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Ghcr, &server, &bearer(), "someone", "someone/app").await;
        assert_eq!(got, Ok(Ensured::Created("13".into())));
    }

    #[tokio::test]
    async fn deletes_on_unsubscribe_and_401_is_permanent() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/orgs/org/hooks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([hook(11)])))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/orgs/org/hooks/11"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            remove(RegistryKind::Ghcr, &server, &bearer(), "org", "org/app").await,
            Ok(Removed::Deleted)
        );
        let denied = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})))
            .mount(&denied)
            .await;
        let got = ensure(RegistryKind::Ghcr, &denied, &bearer(), "org", "org/app").await;
        assert_eq!(
            got,
            Err(ManageError::Permanent(
                "listing GitHub webhooks of organization org: the registry refused the manage credentials (401): Bad credentials"
                    .into()
            ))
        );
    }
}

mod gitea {
    use super::*;

    fn hook(id: u64) -> Value {
        json!({"id": id, "type": "gitea", "active": true, "events": ["package"],
               "config": {"url": HOOK, "content_type": "json"}})
    }

    #[tokio::test]
    async fn creates_an_active_organization_package_hook() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/orgs/org/hooks"))
            .and(header("authorization", "token s3cr3t-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/orgs/org/hooks"))
            .and(body_partial_json(json!({
                "type": "gitea", "active": true, "events": ["package"],
                "config": {"url": HOOK, "content_type": "json", "secret": "whsec-signing"},
                "authorization_header": "Bearer hook-token-0123456789"
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(hook(5)))
            .expect(1)
            .mount(&server)
            .await;
        let got = ensure(RegistryKind::Gitea, &server, &bearer(), "org", "org/app").await;
        assert_eq!(got, Ok(Ensured::Created("5".into())));
    }

    #[tokio::test]
    async fn a_user_owner_gets_a_user_hook_and_5xx_is_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/orgs/me/hooks"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/user/hooks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/user/hooks"))
            .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "boom"})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/user/hooks"))
            .respond_with(ResponseTemplate::new(201).set_body_json(hook(6)))
            .mount(&server)
            .await;
        let first = ensure(RegistryKind::Gitea, &server, &bearer(), "me", "me/app").await;
        assert_eq!(
            first,
            Err(ManageError::Retry(
                "creating a Gitea webhook on the manage token's user: the registry answered 500: boom".into()
            ))
        );
        let second = ensure(RegistryKind::Gitea, &server, &bearer(), "me", "me/app").await;
        assert_eq!(second, Ok(Ensured::Created("6".into())));
    }

    #[tokio::test]
    async fn deletes_on_unsubscribe() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/orgs/org/hooks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([hook(5)])))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/api/v1/orgs/org/hooks/5"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            remove(RegistryKind::Gitea, &server, &bearer(), "org", "org/app").await,
            Ok(Removed::Deleted)
        );
    }
}

/// The manager: the first subscription of a Harbor project creates the
/// policy, a second one reuses it, the hook is deleted with the last.
#[tokio::test]
async fn the_manager_creates_the_hook_once_and_deletes_it_with_the_last_subscription() {
    let harbor = MockServer::start().await;
    let policies = "/api/v2.0/projects/proj/webhook/policies";
    // The registry's state: no policy until the broker creates one.
    Mock::given(method("GET"))
        .and(path(policies))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&harbor)
        .await;
    Mock::given(method("POST"))
        .and(path(policies))
        .respond_with(ResponseTemplate::new(201).insert_header("location", format!("{policies}/4")))
        .expect(1)
        .mount(&harbor)
        .await;
    let api = harbor.uri();
    let broker = Broker::start(sqlite().await, move |c| {
        c.registries = vec![Registry {
            host: "harbor.example.org".into(),
            kind: RegistryKind::Harbor,
            api: Some(api),
            verify_required: false,
            pull: None,
            manage: Some(basic()),
            push_auth: None,
        }];
    })
    .await;
    let subscribe = |id: &'static str, image: &'static str| {
        let broker = &broker;
        async move {
            let answer: Value = broker
                .client
                .put(broker.api(&format!("/services/{id}")))
                .bearer_auth(TOKEN)
                .json(&registration(id, json!({"images": [image], "stage": "production", "callbackUrl": "https://cd.example.org/hook", "registry": {"kind": "harbor"}})))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer
        }
    };
    let managed = |id: &'static str| {
        let broker = &broker;
        async move {
            let read: Value = broker
                .client
                .get(broker.api(&format!("/services/{id}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            read["subscription"]["hooks"][0]["managed"].clone()
        }
    };
    let first = subscribe("svc-a", "harbor.example.org/proj/app").await;
    let hook_url = first["subscription"]["hooks"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let mut state = Value::Null;
    for _ in 0..100 {
        state = managed("svc-a").await;
        if state["state"] == "created" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, json!({"state": "created"}), "shown in public reads");
    // From now on the registry lists the policy.
    Mock::given(method("GET"))
        .and(path(policies))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 4, "name": "tagcast-x", "targets": [{"type": "http", "address": hook_url}]}
        ])))
        .mount(&harbor)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{policies}/4")))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&harbor)
        .await;
    subscribe("svc-b", "harbor.example.org/proj/other").await;
    // Unsubscribing one of two leaves the hook; the last one removes it.
    let deleted = broker
        .client
        .delete(broker.api("/services/svc-a"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deletes = |requests: &[wiremock::Request]| requests.iter().filter(|r| r.method.as_str() == "DELETE").count();
    assert_eq!(
        deletes(&harbor.received_requests().await.unwrap()),
        0,
        "svc-b still needs it"
    );
    let deleted = broker
        .client
        .delete(broker.api("/services/svc-b"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    for _ in 0..100 {
        if deletes(&harbor.received_requests().await.unwrap()) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        deletes(&harbor.received_requests().await.unwrap()),
        1,
        "deleted with the last subscription"
    );
    let posts = harbor
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(posts, 1, "one hook for the project");
    broker.stop().await;
}

/// A registry without manage credentials shows `manual`.
#[tokio::test]
async fn hooks_without_manage_credentials_are_manual() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let answer: Value = broker.register(&registration("svc", json!({"images": ["docker.io/team/app"], "stage": "production", "callbackUrl": "https://cd.example.org/hook"}))).await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["subscription"]["hooks"][0]["managed"]["state"], "manual");
    broker.stop().await;
}

/// A hook whose last subscription was deleted while the broker was down is
/// deleted by the next broker, which finds it in the store.
#[tokio::test]
async fn a_hook_orphaned_while_the_broker_was_down_is_deleted_after_the_restart() {
    let harbor = MockServer::start().await;
    let policies = "/api/v2.0/projects/proj/webhook/policies";
    Mock::given(method("GET"))
        .and(path(policies))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&harbor)
        .await;
    Mock::given(method("POST"))
        .and(path(policies))
        .respond_with(ResponseTemplate::new(201).insert_header("location", format!("{policies}/4")))
        .expect(1)
        .mount(&harbor)
        .await;
    let api = harbor.uri();
    let config = move |c: &mut tagcast_broker::Config| {
        c.registries = vec![Registry {
            host: "harbor.example.org".into(),
            kind: RegistryKind::Harbor,
            api: Some(api.clone()),
            verify_required: false,
            pull: None,
            manage: Some(basic()),
            push_auth: None,
        }];
    };
    let store = sqlite().await;
    let broker = Broker::start(store.clone(), config.clone()).await;
    let created: Value = broker
        .register(&registration(
            "svc",
            json!({"images": ["harbor.example.org/proj/app"], "stage": "production",
                             "callbackUrl": "https://cd.example.org/hook", "registry": {"kind": "harbor"}}),
        ))
        .await
        .json()
        .await
        .unwrap();
    let hook_url = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        if !store.managed_hooks().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.managed_hooks().await.unwrap().len(), 1, "the hook is recorded");
    broker.stop().await;

    // Deleted while no broker runs.
    assert!(store.delete_service("svc").await.unwrap());
    Mock::given(method("GET"))
        .and(path(policies))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 4, "name": "tagcast-x", "targets": [{"type": "http", "address": hook_url}]}
        ])))
        .mount(&harbor)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{policies}/4")))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&harbor)
        .await;
    let broker = Broker::start(store.clone(), config).await;
    for _ in 0..100 {
        if store.managed_hooks().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.managed_hooks().await.unwrap().is_empty(), "deleted and forgotten");
    broker.stop().await;
}

/// The `managed_hooks` table on both databases: put, replace, list, delete.
async fn managed_hooks_round_trip(store: std::sync::Arc<dyn tagcast_broker::store::Store>) {
    use tagcast_broker::store::ManagedHookRow;
    let row = |scope: &str, url: &str| ManagedHookRow {
        registry: "harbor.example.org".into(),
        scope: scope.into(),
        kind: "harbor".into(),
        path: format!("{scope}/app"),
        url: url.into(),
    };
    assert!(store.managed_hooks().await.unwrap().is_empty());
    store.put_managed_hook(&row("b", "https://x/1")).await.unwrap();
    store.put_managed_hook(&row("a", "https://x/1")).await.unwrap();
    store.put_managed_hook(&row("b", "https://x/2")).await.unwrap();
    assert_eq!(
        store.managed_hooks().await.unwrap(),
        vec![row("a", "https://x/1"), row("b", "https://x/2")],
        "one row per scope, the last write wins, ordered"
    );
    store.delete_managed_hook("harbor.example.org", "a").await.unwrap();
    assert_eq!(store.managed_hooks().await.unwrap(), vec![row("b", "https://x/2")]);
}

crate::store_cases!(managed_hooks_round_trip);
