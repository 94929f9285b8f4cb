//! The checks, one module per target (and spec category).

pub mod broker;
pub mod cd;
pub mod registry;
pub mod tags;

use crate::check::Check;

/// Every check the runner knows, target by target: the list the README's
/// tables are written from, and that tests walk to prove each check can fail.
pub fn catalogue() -> Vec<&'static Check> {
    tags::CHECKS
        .iter()
        .chain(cd::CHECKS)
        .chain(broker::CHECKS)
        .chain(registry::CHECKS)
        .copied()
        .collect()
}
