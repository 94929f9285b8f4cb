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

/// Shortens a peer's answer for a report: reports stay readable when a peer
/// answers with a megabyte of HTML.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 500;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}
