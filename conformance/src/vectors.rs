//! The language-neutral vectors of `conformance/vectors/`, embedded so that
//! the runner and other Rust tests use exactly the checked-in data.
