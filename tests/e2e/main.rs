//! End-to-end tests of the `tagcast` binary, one module per role. One test
//! binary keeps link time down.

mod conformance;
mod support;
mod tag;
