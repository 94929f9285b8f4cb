//! The reference broker (see `reference/broker/README.md`); built by the broker issue.
