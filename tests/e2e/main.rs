//! End-to-end tests of the `tagcast` binary, one module per role. One test
//! binary keeps link time down.

mod bench;
mod broker;
mod ci;
mod conformance;
mod contract;
mod demo;
mod deployer;
mod help;
mod interop;
mod links;
mod registry;
mod registry_config;
mod security;
mod soak;
mod support;
mod tag;
