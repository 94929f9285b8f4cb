//! The Service API extension and the callback contract: signatures, events,
//! resources, schemas and the examples of `spec/service-api.md` and
//! `spec/callbacks.md`.

mod event;
mod examples;
mod openapi;
mod python;
mod schemas;
mod service;
mod vectors;
mod webhook;
