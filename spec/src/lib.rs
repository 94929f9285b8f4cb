//! The tagcast contract as Rust types.
//!
//! - [`Tag`]: the tag grammar `<api-version>-<stage>-<timestamp>` of
//!   `spec/tags.md`, with its SemVer view and channel order;
//! - [`ApiRequirement`] and [`UpdatePolicy`]: which tags a subscriber
//!   receives;
//! - [`ImageReference`], [`Repository`], [`Digest`]: OCI image references
//!   and Docker Hub normalization;
//! - [`service`], [`subscription`], [`delivery`], [`error_body`],
//!   [`generic`]: the Service API extension of `spec/service-api.md`;
//! - [`event`]: the callback event, [`ImagePublished`] in a [`CloudEvent`];
//! - [`webhook`]: Standard Webhooks signing and verification of callbacks;
//! - `schema`: the JSON Schemas generated from these types, and
//!   `openapi`: the broker's OpenAPI 3.1 document — both behind the
//!   `schema` feature (on by default), which brings schemars.
//!
//! This crate is small and dependency-light so that brokers, CD endpoints
//! and CI tools can embed it: serde, semver and chrono (schemars with the
//! `schema` feature), no async runtime.
#![deny(missing_docs)]

pub mod delivery;
mod error;
pub mod error_body;
pub mod event;
pub mod generic;
#[cfg(feature = "schema")]
pub mod openapi;
mod reference;
mod requirement;
#[cfg(feature = "schema")]
pub mod schema;
pub mod service;
pub mod subscription;
mod tag;
pub mod webhook;

pub use error::{ReferenceError, RequirementError, TagError, TimestampRangeError};
pub use event::{CloudEvent, ImagePublished};
pub use reference::{
    DOCKER_HUB, Digest, ImageReference, MAX_NAME_LENGTH, REFERENCE_PATTERN, REPOSITORY_PATTERN, Repository,
};
pub use requirement::{ApiRequirement, NotAnUpdate, REQUIREMENT_PATTERN, UpdatePolicy, is_update};
pub use tag::{ApiVersion, Stage, StageError, TAG_PATTERN, Tag, Timestamp};
