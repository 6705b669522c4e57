//! Delivering decisions to CI (issue 5): signing now; the outbox, payload
//! formats and webhook delivery join here. This module never decides
//! whether to fire.

pub mod sign;
