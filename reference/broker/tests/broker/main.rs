//! The broker's tests, one binary: the store suite (SQLite and PostgreSQL),
//! the HTTP API, inbound hooks, delivery, replicas.

mod support;

mod api;
mod at_rest;
mod attacks;
mod delivery;
mod diagnostics;
mod durability;
mod fairness;
mod fixtures;
mod hooks;
mod manage;
mod ordering;
mod pubsub;
mod replicas;
mod resolve;
mod retention;
mod secrets;
mod signing_kinds;
mod store;
mod verify;
