//! Gitea and Forgejo webhooks for `package` events.
//!
//! Source: go-gitea/gitea `routers/api/v1/api.go` (routes and the
//! `AuthorizationHeaderToken` security definition: "API tokens must be
//! prepended with "token" followed by a space"), `modules/structs/hook.go`
//! (`CreateHookOption`: `type` and `config` required, `config.url`,
//! `config.content_type`, `config.secret`, `events`, `active` — **false**
//! by default —, `authorization_header`):
//! - `GET|POST /api/v1/orgs/{org}/hooks` (201 with `id`),
//!   `DELETE /api/v1/orgs/{org}/hooks/{id}` (204);
//! - the same under `/api/v1/user/hooks` for the token's own user.
//!
//! Packages belong to owners (users or organizations) and a repository hook
//! sees a package only if it is linked to the repository, so the broker
//! hooks the owner: the organization, or — when Gitea says there is no such
//! organization — the manage token's user. Forgejo serves the same API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, Ensured, HookSpec, ManageError, Removed, id_text, segment, send, unexpected};
use crate::registries::Credentials;

fn request(api: Api<'_>, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
    let request = api.client.request(method, url);
    match api.credentials {
        Credentials::Bearer(token) => {
            request.header(reqwest::header::AUTHORIZATION, format!("token {}", token.expose()))
        }
        basic => basic.apply(request),
    }
}

fn collections(api: Api<'_>, owner: &str) -> [(String, String); 2] {
    [
        (
            format!("organization {owner}"),
            format!("{}/api/v1/orgs/{}/hooks", api.base, segment(owner)),
        ),
        (
            "the manage token's user".to_owned(),
            format!("{}/api/v1/user/hooks", api.base),
        ),
    ]
}

async fn list(api: Api<'_>, label: &str, url: &str) -> Result<Option<Vec<Value>>, ManageError> {
    let what = format!("listing Gitea webhooks of {label}");
    let answer = send(request(api, reqwest::Method::GET, url.to_owned()), &what).await?;
    match answer.status {
        StatusCode::OK => Ok(Some(answer.body.as_array().cloned().unwrap_or_default())),
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(unexpected(&what, &answer)),
    }
}

fn pointing_at<'a>(hooks: &'a [Value], url: &str) -> Option<&'a Value> {
    hooks.iter().find(|h| h["config"]["url"] == url)
}

/// Creates the owner's `package` webhook unless one points at `spec.url`.
///
/// # Errors
///
/// [`ManageError`] with Gitea's answer.
pub async fn ensure(api: Api<'_>, owner: &str, spec: &HookSpec) -> Result<Ensured, ManageError> {
    for (label, url) in collections(api, owner) {
        let Some(hooks) = list(api, &label, &url).await? else {
            continue;
        };
        if let Some(id) = pointing_at(&hooks, &spec.url).and_then(|h| id_text(&h["id"])) {
            return Ok(Ensured::Existing(id));
        }
        let mut config = json!({"url": spec.url, "content_type": "json"});
        if let Some(secret) = &spec.secret {
            config["secret"] = Value::String(secret.clone());
        }
        let mut body = json!({"type": "gitea", "config": config, "events": ["package"], "active": true});
        if let Some(authorization) = &spec.authorization {
            body["authorization_header"] = Value::String(authorization.clone());
        }
        let what = format!("creating a Gitea webhook on {label}");
        let answer = send(request(api, reqwest::Method::POST, url).json(&body), &what).await?;
        return match answer.status {
            StatusCode::CREATED | StatusCode::OK => Ok(Ensured::Created(
                id_text(&answer.body["id"]).unwrap_or_else(|| "unknown".into()),
            )),
            _ => Err(unexpected(&what, &answer)),
        };
    }
    Err(ManageError::Permanent(format!(
        "Gitea has no organization {owner} and no user for the manage token (404)"
    )))
}

/// Deletes the owner's webhook pointing at `url`.
///
/// # Errors
///
/// [`ManageError`] with Gitea's answer.
pub async fn remove(api: Api<'_>, owner: &str, url: &str) -> Result<Removed, ManageError> {
    for (label, collection) in collections(api, owner) {
        let Some(hooks) = list(api, &label, &collection).await? else {
            continue;
        };
        let Some(id) = pointing_at(&hooks, url).and_then(|h| id_text(&h["id"])) else {
            continue;
        };
        let what = format!("deleting Gitea webhook {id} of {label}");
        let target = format!("{collection}/{}", segment(&id));
        let answer = send(request(api, reqwest::Method::DELETE, target), &what).await?;
        return match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(Removed::Deleted),
            StatusCode::NOT_FOUND => Ok(Removed::Absent),
            _ => Err(unexpected(&what, &answer)),
        };
    }
    Ok(Removed::Absent)
}
