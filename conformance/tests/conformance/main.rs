//! The conformance runner's own tests: the framework, the vectors, and each
//! target against a conforming peer and against deliberately broken ones.
//! One integration binary keeps link time down.

mod broker;
mod cd;
mod framework;
mod registry;
mod tags;
mod vectors;
