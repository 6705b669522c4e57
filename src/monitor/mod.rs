//! Per-model evaluation against a baseline: [`evaluate()`] compares two
//! datasets (the offline report) and owns the drift decision; [`engine`] keeps
//! per-model-version windows of bounded [`tracker`]s over a stream and
//! evaluates each closed window with the same decision.

pub mod bounds;
pub mod clock;
pub mod data_quality;
pub mod engine;
pub mod evaluate;
pub mod tracker;

pub use engine::{BaselineSource, Engine, SnapshotError, VersionStatus, WindowReport};
pub use evaluate::{evaluate, DatasetVerdict, DriftReport, FeatureReport, Reference};
