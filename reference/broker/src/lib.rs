//! The reference broker of tagcast (see `reference/broker/README.md`): a
//! GA4GH Service Registry with the `subscription` extension that receives
//! container registries' push webhooks and delivers signed callbacks to
//! subscribed deployments, durably.

pub mod store;
