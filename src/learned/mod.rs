//! Learned and multivariate checks (issue 6): embedding drift by MMD with a
//! permutation test, and domain-classifier drift with a linfa logistic
//! regression, run on bounded samples of each window against a reference
//! sample ([`window`]); and the caption-quality estimator trained on joined
//! feedback ([`estimator`]).

pub mod classifier;
pub mod embedding;
pub mod estimator;
pub mod reservoir;
pub mod window;

pub use classifier::{domain_classifier, ClassifierError, ClassifierSettings, DomainDrift};
pub use embedding::{embedding_drift, EmbeddingDrift, EmbeddingError};
pub use reservoir::Reservoir;
pub use window::{EventSample, LearnedJob, LearnedReport, LearnedSettings};

/// splitmix64: the seeded generator of the permutations and folds (the same
/// inputs and seed give the same verdict, so a replay repeats a window's).
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias for the sample
    /// sizes here is below 2^-40).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.below_u64(n as u64) as usize
    }

    /// Uniform in `0..n` for a 64-bit `n`.
    pub(crate) fn below_u64(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Shuffle in place (Fisher-Yates).
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Per-column mean and population standard deviation of `rows` (all of one
/// length, at least one row), the standard deviation 1 for a column constant
/// to within rounding: how both learned models standardize their inputs.
pub(crate) fn standardization<'a>(
    rows: impl Iterator<Item = &'a [f64]> + Clone,
) -> (Vec<f64>, Vec<f64>) {
    let mut n = 0usize;
    let mut mean: Vec<f64> = Vec::new();
    for r in rows.clone() {
        if mean.is_empty() {
            mean = vec![0.0; r.len()];
        }
        for (m, x) in mean.iter_mut().zip(r) {
            *m += x;
        }
        n += 1;
    }
    let n = n as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    let mut scale = vec![0.0; mean.len()];
    for r in rows {
        for ((s, x), m) in scale.iter_mut().zip(r).zip(&mean) {
            *s += (x - m) * (x - m);
        }
    }
    for s in &mut scale {
        let variance = *s / n;
        *s = if variance > 1e-12 {
            variance.sqrt()
        } else {
            1.0
        };
    }
    (mean, scale)
}

/// What is wrong with two samples of rows, whatever the check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Shape {
    /// Lengths `.0` and `.1` differ, or are zero.
    Columns(usize, usize),
    NotFinite,
}

/// The common row length of both samples (both non-empty).
pub(crate) fn columns(reference: &[Vec<f64>], current: &[Vec<f64>]) -> Result<usize, Shape> {
    let cols = reference[0].len();
    if let Some(r) = reference.iter().chain(current).find(|r| r.len() != cols) {
        return Err(Shape::Columns(cols, r.len()));
    }
    if cols == 0 {
        return Err(Shape::Columns(0, 0));
    }
    if reference
        .iter()
        .chain(current)
        .flatten()
        .any(|x| !x.is_finite())
    {
        return Err(Shape::NotFinite);
    }
    Ok(cols)
}
