//! Delivering decisions to CI (issue 5): the CloudEvents envelope and
//! signing now; the outbox, target presets and webhook delivery join here.
//! This module never decides whether to fire.

pub mod event;
pub mod sign;
