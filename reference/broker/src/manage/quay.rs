//! Quay repository notifications.
//!
//! Source: quay/quay `endpoints/api/repositorynotification.py` (OAuth
//! bearer token with `repo:admin`, `require_repo_admin`):
//! - `GET /api/v1/repository/{namespace}/{name}/notification/` →
//!   `{"notifications": [{"uuid", "event", "method", "config", "number_of_failures", …}]}`;
//! - `POST` the same path with `event`, `method`, `config`, `eventConfig`
//!   (required) and `title` → `201` with the notification (`uuid`);
//! - `DELETE …/notification/{uuid}` → `204`; an unknown uuid is `400`
//!   ("No repository notification found");
//! - `POST …/notification/{uuid}` resets `number_of_failures` to 0 → `204`.
//!
//! Quay stops sending a notification once it has failed 3 times
//! (`data/model/notification.py`, `get_enabled_notification`), so an
//! existing notification that has failed is reset. Quay has no uniqueness
//! rule: the list is read first so that a URL is hooked once.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, Ensured, HookSpec, ManageError, Removed, segment, send, unexpected};

fn notifications(api: Api<'_>, repository: &str) -> String {
    let path: Vec<String> = repository.split('/').map(segment).collect();
    format!("{}/api/v1/repository/{}/notification/", api.base, path.join("/"))
}

/// The repository's webhook notification on `repo_push` to `url`.
async fn find(api: Api<'_>, repository: &str, url: &str) -> Result<Option<Value>, ManageError> {
    let what = format!("listing Quay notifications of {repository}");
    let answer = send(
        api.credentials.apply(api.client.get(notifications(api, repository))),
        &what,
    )
    .await?;
    if answer.status != StatusCode::OK {
        return Err(unexpected(&what, &answer));
    }
    Ok(answer.body["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["event"] == "repo_push" && n["method"] == "webhook" && n["config"]["url"] == url)
        .cloned())
}

/// Creates the repository's `repo_push` webhook notification unless one
/// sends to `spec.url`; resets the failure count of an existing one.
///
/// # Errors
///
/// [`ManageError`] with Quay's answer.
pub async fn ensure(api: Api<'_>, repository: &str, spec: &HookSpec) -> Result<Ensured, ManageError> {
    if let Some(existing) = find(api, repository, &spec.url).await? {
        let uuid = existing["uuid"].as_str().unwrap_or_default().to_owned();
        if existing["number_of_failures"].as_i64().unwrap_or(0) > 0 {
            let what = format!("resetting the failures of Quay notification {uuid} of {repository}");
            let url = format!("{}{}", notifications(api, repository), segment(&uuid));
            let answer = send(api.credentials.apply(api.client.post(url)), &what).await?;
            if !answer.status.is_success() {
                return Err(unexpected(&what, &answer));
            }
        }
        return Ok(Ensured::Existing(uuid));
    }
    let body = json!({
        "event": "repo_push",
        "method": "webhook",
        "config": {"url": spec.url},
        "eventConfig": {},
        "title": "tagcast broker",
    });
    let what = format!("creating a Quay notification on {repository}");
    let answer = send(
        api.credentials
            .apply(api.client.post(notifications(api, repository)))
            .json(&body),
        &what,
    )
    .await?;
    match answer.status {
        StatusCode::CREATED | StatusCode::OK => Ok(Ensured::Created(
            answer.body["uuid"].as_str().unwrap_or("unknown").to_owned(),
        )),
        _ => Err(unexpected(&what, &answer)),
    }
}

/// Deletes the repository's notification sending to `url`.
///
/// # Errors
///
/// [`ManageError`] with Quay's answer.
pub async fn remove(api: Api<'_>, repository: &str, url: &str) -> Result<Removed, ManageError> {
    let Some(existing) = find(api, repository, url).await? else {
        return Ok(Removed::Absent);
    };
    let uuid = existing["uuid"].as_str().unwrap_or_default();
    let what = format!("deleting Quay notification {uuid} of {repository}");
    let target = format!("{}{}", notifications(api, repository), segment(uuid));
    let answer = send(api.credentials.apply(api.client.delete(target)), &what).await?;
    match answer.status {
        StatusCode::NO_CONTENT | StatusCode::OK => Ok(Removed::Deleted),
        // "No repository notification found": deleted meanwhile.
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => Ok(Removed::Absent),
        _ => Err(unexpected(&what, &answer)),
    }
}
