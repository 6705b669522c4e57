//! Learned and multivariate checks (issue 6): embedding drift by MMD with a
//! permutation test. Built in increments; see the note for what is
//! wired into windows so far.

pub mod embedding;

pub use embedding::{embedding_drift, EmbeddingDrift, EmbeddingError};
