//! Delivering decisions to CI (issue 5): the CloudEvents envelope, signing,
//! and the delivery worker that sends the store's outbox to webhook targets.
//! Target presets (GitLab, GitHub, Kafka) join here. This module never
//! decides whether to fire.

pub mod deliver;
pub mod event;
pub mod sign;
