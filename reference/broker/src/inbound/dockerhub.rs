//! Docker Hub repository webhooks.
//!
//! Documented payload (https://docs.docker.com/docker-hub/repos/manage/webhooks/):
//! `{"callback_url": …, "push_data": {"pushed_at", "pusher", "tag"},
//! "repository": {"repo_name": "namespace/name", …}}`. Every delivery is a
//! push: there is no event field and no event header. There is no digest
//! (the broker resolves it from the registry before delivering) and no
//! event id (the body hash stands in for one, so a redelivery is a
//! duplicate). `callback_url` is a legacy field the docs say is no longer
//! supported: it is ignored.
//!
//! Docker Hub signs nothing and can send no header: the unguessable path
//! token is the only credential, which is why the digest is re-checked.

use axum::http::HeaderMap;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection, body_hash};
use crate::store::{HookSource, NewInboundEvent};

/// The `dockerhub` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Dockerhub;

/// A Docker Hub webhook delivery, with the hash of its body.
#[derive(Debug)]
pub struct Delivery {
    hash: String,
    payload: Payload,
}

#[derive(Debug, Deserialize)]
struct Payload {
    push_data: PushData,
    repository: RepositoryData,
}

#[derive(Debug, Deserialize)]
struct PushData {
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RepositoryData {
    repo_name: String,
}

impl Adapter for Dockerhub {
    type Payload = Delivery;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Dockerhub
    }

    fn parse(&self, _headers: &HeaderMap, body: &[u8]) -> Result<Delivery, String> {
        let payload = super::json(body).map_err(|err| format!("expected push_data and repository.repo_name: {err}"))?;
        Ok(Delivery {
            hash: body_hash(body),
            payload,
        })
    }

    fn authenticate(
        &self,
        _auth: &HookAuth,
        _source: &HookSource,
        _headers: &HeaderMap,
        _body: &[u8],
        _payload: Option<&Delivery>,
    ) -> Result<(), Rejection> {
        // Nothing to check beyond the path token: Docker Hub offers no
        // secret, signature or custom header.
        Ok(())
    }

    fn normalize(&self, source: &HookSource, delivery: Delivery) -> Vec<NewInboundEvent> {
        vec![
            Push {
                event_id: Some(delivery.hash),
                action: "push".into(),
                repository: Some(delivery.payload.repository.repo_name),
                tag: delivery.payload.push_data.tag.filter(|t| !t.is_empty()),
                digest: None,
                media_type: None,
            }
            .normalize(source),
        ]
    }
}
