//! The reference deployer, a CD endpoint (see `reference/deployer/README.md`); built by the deployer issue.
