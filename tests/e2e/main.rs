//! End-to-end tests of the `tagcast` binary, one module per role. One test
//! binary keeps link time down.

mod ci;
mod broker;
mod conformance;
mod contract;
mod deployer;
mod interop;
mod support;
mod tag;
