//! tagcast's own normalized push event (`spec/service-api.md` API-14),
//! signed with the hook's secret exactly like a callback (Standard
//! Webhooks), for registries and CI jobs without a webhook format of their own.

use axum::http::HeaderMap;
use tagcast_spec::generic::{GenericAction, GenericEvent};
use tagcast_spec::subscription::RegistryKind;
use tagcast_spec::webhook::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret};

use super::{Adapter, HookAuth, Push, Rejection};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The `generic` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Generic;

impl Adapter for Generic {
    type Payload = GenericEvent;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Generic
    }

    fn parse(&self, _headers: &HeaderMap, body: &[u8]) -> Result<GenericEvent, String> {
        super::json(body).map_err(|err| format!("not a generic push event: {err}"))
    }

    fn authenticate(
        &self,
        _auth: &HookAuth,
        source: &HookSource,
        headers: &HeaderMap,
        body: &[u8],
        _payload: Option<&GenericEvent>,
    ) -> Result<(), Rejection> {
        let secret = source
            .secret
            .as_deref()
            .and_then(|s| Secret::parse(s).ok())
            .ok_or_else(|| Rejection::Unauthorized("the hook has no signing secret".into()))?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        webhook::verify(
            &[secret],
            header(HEADER_ID),
            header(HEADER_TIMESTAMP),
            header(HEADER_SIGNATURE),
            body,
            chrono::Utc::now().timestamp(),
            webhook::DEFAULT_TOLERANCE,
        )
        .map_err(|err| Rejection::Unauthorized(err.to_string()))
    }

    fn normalize(&self, source: &HookSource, payload: GenericEvent) -> Vec<NewInboundEvent> {
        let action = match payload.action {
            GenericAction::Push => "push",
        };
        // The repository is already normalized; the registry must be the
        // hook's, which the path token was issued for.
        if payload.repository.domain() != source.registry {
            let reason = format!(
                "repository {} is not on the hook's registry {}",
                payload.repository, source.registry
            );
            return vec![NewInboundEvent {
                kind: source.kind.clone(),
                registry: source.registry.clone(),
                source_event_id: Some(payload.id),
                repository: Some(payload.repository.to_string()),
                tag: Some(payload.tag),
                digest: Some(payload.digest.to_string()),
                media_type: payload.media_type,
                is_index: false,
                disposition: Disposition::Ignored(reason),
            }];
        }
        let event = Push {
            event_id: Some(payload.id),
            action: action.to_owned(),
            repository: Some(payload.repository.path().to_owned()),
            tag: Some(payload.tag),
            digest: Some(payload.digest.to_string()),
            media_type: payload.media_type,
        }
        .normalize(source);
        vec![event]
    }
}
