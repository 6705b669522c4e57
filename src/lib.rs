#![forbid(unsafe_code)]
//! driftd (work in progress skeleton)
pub mod config;
pub mod sketch;
pub mod stats;
