//! Public behaviour of `tagcast-spec`, one integration binary for the crate.

mod contract;
mod grammar;
mod oracle;
