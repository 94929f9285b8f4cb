//! The broker's tests, one binary: the store suite (SQLite and PostgreSQL),
//! the inbound adapters, delivery, the HTTP API.

mod support;

mod store;
