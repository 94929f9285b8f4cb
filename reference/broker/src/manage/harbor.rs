//! Harbor v2 project webhook policies.
//!
//! Source: goharbor/harbor `api/v2.0/swagger.yaml` (basePath `/api/v2.0`,
//! HTTP Basic): `GET|POST /projects/{project_name_or_id}/webhook/policies`,
//! `DELETE …/webhook/policies/{webhook_policy_id}`; `X-Is-Resource-Name:
//! true` makes the path parameter a project name; create answers `201` with
//! `Location: …/webhook/policies/{id}` and no body; `(name, project_id)` is
//! unique (`make/migrations/postgresql/0040_2.1.0_schema.up.sql`), so a
//! second create with the same name is `409 Conflict`. Body `WebhookPolicy`:
//! `name`, `enabled`, `event_types: ["PUSH_ARTIFACT"]`, `targets[]` of
//! `type: "http"`, `address`, `auth_header` (sent verbatim as
//! `Authorization`), `skip_cert_verify`, `payload_format: "Default"`
//! (`src/server/v2.0/handler/webhook.go`). Webhooks are project-scoped.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, Ensured, HookSpec, ManageError, Removed, id_text, segment, send, unexpected};

/// The policy name: unique per broker hook URL, so that several brokers (or
/// hook URLs) can share a project.
pub fn policy_name(url: &str) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(url.as_bytes());
    let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("tagcast-{short}")
}

fn policies(api: Api<'_>, project: &str) -> String {
    format!("{}/api/v2.0/projects/{}/webhook/policies", api.base, segment(project))
}

/// The id of the project's policy whose target is `url`.
async fn find(api: Api<'_>, project: &str, url: &str) -> Result<Option<String>, ManageError> {
    let what = format!("listing Harbor webhook policies of project {project}");
    let request = api
        .credentials
        .apply(api.client.get(policies(api, project)))
        .header("X-Is-Resource-Name", "true")
        .query(&[("page_size", "100")]);
    let answer = send(request, &what).await?;
    if answer.status != StatusCode::OK {
        return Err(unexpected(&what, &answer));
    }
    Ok(answer
        .body
        .as_array()
        .into_iter()
        .flatten()
        .find(|policy| {
            policy["targets"]
                .as_array()
                .is_some_and(|targets| targets.iter().any(|t| t["address"] == url))
        })
        .and_then(|policy| id_text(&policy["id"])))
}

/// Creates the project's policy unless one targets `spec.url`.
///
/// # Errors
///
/// [`ManageError`] with Harbor's answer.
pub async fn ensure(api: Api<'_>, project: &str, spec: &HookSpec) -> Result<Ensured, ManageError> {
    if let Some(id) = find(api, project, &spec.url).await? {
        return Ok(Ensured::Existing(id));
    }
    let mut target = json!({
        "type": "http",
        "address": spec.url,
        "skip_cert_verify": false,
        "payload_format": "Default",
    });
    if let Some(authorization) = &spec.authorization {
        target["auth_header"] = Value::String(authorization.clone());
    }
    let body = json!({
        "name": policy_name(&spec.url),
        "description": "tagcast broker: pushes of this project, for its subscriptions",
        "enabled": true,
        "event_types": ["PUSH_ARTIFACT"],
        "targets": [target],
    });
    let what = format!("creating a Harbor webhook policy in project {project}");
    let request = api
        .credentials
        .apply(api.client.post(policies(api, project)))
        .header("X-Is-Resource-Name", "true")
        .json(&body);
    let answer = send(request, &what).await?;
    match answer.status {
        StatusCode::CREATED => {
            let id = answer
                .location
                .as_deref()
                .and_then(|l| l.rsplit('/').next())
                .filter(|id| !id.is_empty())
                .unwrap_or("unknown")
                .to_owned();
            Ok(Ensured::Created(id))
        }
        // Created meanwhile (by another replica): the name is taken.
        StatusCode::CONFLICT => match find(api, project, &spec.url).await? {
            Some(id) => Ok(Ensured::Existing(id)),
            None => Err(ManageError::Permanent(format!(
                "{what}: the policy name {} is taken by a policy with another address",
                policy_name(&spec.url)
            ))),
        },
        _ => Err(unexpected(&what, &answer)),
    }
}

/// Deletes the project's policy targeting `url`.
///
/// # Errors
///
/// [`ManageError`] with Harbor's answer.
pub async fn remove(api: Api<'_>, project: &str, url: &str) -> Result<Removed, ManageError> {
    let Some(id) = find(api, project, url).await? else {
        return Ok(Removed::Absent);
    };
    let what = format!("deleting Harbor webhook policy {id} of project {project}");
    let request = api
        .credentials
        .apply(
            api.client
                .delete(format!("{}/{}", policies(api, project), segment(&id))),
        )
        .header("X-Is-Resource-Name", "true");
    let answer = send(request, &what).await?;
    match answer.status {
        StatusCode::OK | StatusCode::NO_CONTENT => Ok(Removed::Deleted),
        StatusCode::NOT_FOUND => Ok(Removed::Absent),
        _ => Err(unexpected(&what, &answer)),
    }
}
