//! Reference data: reading datasets (polars) into per-feature values, and
//! reference profiles that keep what the tests need without the raw data.

pub mod collect;
pub mod dataset;
pub mod profile;

pub use collect::{Collector, FeatureData};
pub use dataset::{read_dataset, Dataset, DatasetError};
pub use profile::{FeatureProfile, Profile, ProfileError};
