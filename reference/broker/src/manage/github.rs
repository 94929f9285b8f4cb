//! GitHub webhooks for GHCR `package` events.
//!
//! Source: GitHub REST API docs, "Organization webhooks"
//! (docs.github.com/en/rest/orgs/webhooks) and "Repository webhooks"
//! (docs.github.com/en/rest/repos/webhooks); github/docs
//! `content/rest/orgs/webhooks.md`, `content/rest/repos/webhooks.md`:
//! - `GET /orgs/{org}/hooks`, `POST /orgs/{org}/hooks` (201 with `id`),
//!   `DELETE /orgs/{org}/hooks/{hook_id}` (204); the same under
//!   `/repos/{owner}/{repo}/hooks`;
//! - create body: `name: "web"`, `active`, `events` (default `["push"]`,
//!   so `["package"]` is required), `config.url`, `config.content_type`
//!   (`form` by default: `json` asked), `config.secret`, `config.insecure_ssl: "0"`;
//! - a hook with the same URL and events is `422` "Hook already exists";
//!   `404` for an unknown organization or a token without the scope
//!   (`admin:org_hook` / `admin:repo_hook`).
//!
//! Headers: `Accept: application/vnd.github+json`,
//! `X-GitHub-Api-Version: 2022-11-28`, a `User-Agent` (required by the API).
//!
//! GHCR packages belong to an owner: an organization hook sees every
//! package's events. A user-owned package only reaches a repository hook of
//! a repository it is connected to; the broker then uses the repository of
//! the image's name (`ghcr.io/{owner}/{name}` → `/repos/{owner}/{name}`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, Ensured, HookSpec, ManageError, Removed, id_text, segment, send, unexpected};

/// The REST API version the requests are written for.
pub const API_VERSION: &str = "2022-11-28";

fn request(api: Api<'_>, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
    api.credentials
        .apply(api.client.request(method, url))
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", API_VERSION)
}

/// The hooks collections to try: the owner's organization, then the repository of the image's name.
fn collections(api: Api<'_>, owner: &str, path: &str) -> Vec<(String, String)> {
    let mut out = vec![(
        format!("organization {owner}"),
        format!("{}/orgs/{}/hooks", api.base, segment(owner)),
    )];
    if let Some(name) = path.split('/').nth(1) {
        out.push((
            format!("repository {owner}/{name}"),
            format!("{}/repos/{}/{}/hooks", api.base, segment(owner), segment(name)),
        ));
    }
    out
}

/// The hooks of a collection; `None` if GitHub says it does not exist (404).
async fn list(api: Api<'_>, label: &str, url: &str) -> Result<Option<Vec<Value>>, ManageError> {
    let what = format!("listing GitHub webhooks of {label}");
    let answer = send(
        request(api, reqwest::Method::GET, url.to_owned()).query(&[("per_page", "100")]),
        &what,
    )
    .await?;
    match answer.status {
        StatusCode::OK => Ok(Some(answer.body.as_array().cloned().unwrap_or_default())),
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(unexpected(&what, &answer)),
    }
}

fn pointing_at<'a>(hooks: &'a [Value], url: &str) -> Option<&'a Value> {
    hooks.iter().find(|h| h["config"]["url"] == url)
}

/// Creates the `package` webhook of the owner's organization (or the
/// image's repository) unless one points at `spec.url`.
///
/// # Errors
///
/// [`ManageError`] with GitHub's answer.
pub async fn ensure(api: Api<'_>, owner: &str, path: &str, spec: &HookSpec) -> Result<Ensured, ManageError> {
    for (label, url) in collections(api, owner, path) {
        let Some(hooks) = list(api, &label, &url).await? else {
            continue;
        };
        if let Some(id) = pointing_at(&hooks, &spec.url).and_then(|h| id_text(&h["id"])) {
            return Ok(Ensured::Existing(id));
        }
        let mut config = json!({"url": spec.url, "content_type": "json", "insecure_ssl": "0"});
        if let Some(secret) = &spec.secret {
            config["secret"] = Value::String(secret.clone());
        }
        let body = json!({"name": "web", "active": true, "events": ["package"], "config": config});
        let what = format!("creating a GitHub webhook on {label}");
        let answer = send(request(api, reqwest::Method::POST, url.clone()).json(&body), &what).await?;
        return match answer.status {
            StatusCode::CREATED => Ok(Ensured::Created(
                id_text(&answer.body["id"]).unwrap_or_else(|| "unknown".into()),
            )),
            // "Hook already exists": created meanwhile.
            StatusCode::UNPROCESSABLE_ENTITY => {
                let hooks = list(api, &label, &url).await?.unwrap_or_default();
                match pointing_at(&hooks, &spec.url).and_then(|h| id_text(&h["id"])) {
                    Some(id) => Ok(Ensured::Existing(id)),
                    None => Err(unexpected(&what, &answer)),
                }
            }
            _ => Err(unexpected(&what, &answer)),
        };
    }
    Err(ManageError::Permanent(format!(
        "GitHub has neither an organization {owner} nor a repository of the image's name the manage token can see (404)"
    )))
}

/// Deletes the webhook pointing at `url` from the owner's organization or
/// the image's repository.
///
/// # Errors
///
/// [`ManageError`] with GitHub's answer.
pub async fn remove(api: Api<'_>, owner: &str, path: &str, url: &str) -> Result<Removed, ManageError> {
    for (label, collection) in collections(api, owner, path) {
        let Some(hooks) = list(api, &label, &collection).await? else {
            continue;
        };
        let Some(id) = pointing_at(&hooks, url).and_then(|h| id_text(&h["id"])) else {
            continue;
        };
        let what = format!("deleting GitHub webhook {id} of {label}");
        let target = format!("{collection}/{}", segment(&id));
        let answer = send(request(api, reqwest::Method::DELETE, target), &what).await?;
        return match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => {
                Ok(if answer.status == StatusCode::NOT_FOUND {
                    Removed::Absent
                } else {
                    Removed::Deleted
                })
            }
            _ => Err(unexpected(&what, &answer)),
        };
    }
    Ok(Removed::Absent)
}
