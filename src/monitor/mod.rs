//! Per-model evaluation against a baseline. For now the offline path
//! ([`evaluate`]): one reference, one current dataset, one report. The
//! streaming daemon's windows call the same per-feature evaluation.

pub mod engine;
pub mod evaluate;
pub mod tracker;

pub use evaluate::{evaluate, DatasetVerdict, DriftReport, FeatureReport, Reference};
