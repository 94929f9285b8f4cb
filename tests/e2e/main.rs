//! End-to-end tests of the `tagcast` binary, one module per role. One test
//! binary keeps link time down.

mod support;
mod tag;
