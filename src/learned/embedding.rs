//! Embedding drift between two bounded samples of vectors (issue 6): how far
//! the mean embedding moved, and the maximum mean discrepancy with an RBF
//! kernel and a permutation p-value.
//!
//! Definitions (checked against NumPy in `tests/fixtures/learned/`):
//! - `mean_shift`: `||mean(current) - mean(reference)||` divided by the
//!   reference's root-mean-square distance to its own mean, so 1.0 means the
//!   means are one typical spread apart, whatever the embedding's scale;
//! - bandwidth by the median heuristic on the pooled sample:
//!   `sigma^2 = median(squared distances between distinct pooled points) / 2`,
//!   kernel `k(x, y) = exp(-||x - y||^2 / (2 sigma^2))`;
//! - `mmd2`: the unbiased estimate (diagonals left out),
//!   `sum_{i!=j} k(x_i, x_j) / (n (n - 1)) + sum_{i!=j} k(y_i, y_j) / (m (m - 1))
//!   - 2 sum k(x_i, y_j) / (n m)`;
//! - `p_value`: `(1 + #{permutations with mmd2 >= observed}) / (1 + permutations)`,
//!   each permutation a random split of the *pooled* sample into groups of
//!   `n` and `m`. Drawing the null from the reference alone (as some tools do)
//!   ignores the current sample's own variance and flags drift far above the
//!   nominal rate; pooling is what makes the test exact under no drift.

use serde::{Deserialize, Serialize};

use super::{columns, Shape, SplitMix};

/// What the two samples said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingDrift {
    pub reference_size: usize,
    pub current_size: usize,
    pub dimensions: usize,
    pub mean_shift: f64,
    pub mmd2: f64,
    /// The RBF kernel's sigma.
    pub bandwidth: f64,
    pub p_value: f64,
    pub permutations: usize,
}

/// Why the samples cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbeddingError {
    #[error("each sample needs at least 2 vectors (reference {reference}, current {current})")]
    TooFew { reference: usize, current: usize },
    #[error("vectors must all have the same positive length (found {0} and {1})")]
    Dimensions(usize, usize),
    #[error("embedding values must be finite")]
    NotFinite,
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn mean(vectors: &[&[f64]], dims: usize) -> Vec<f64> {
    let mut m = vec![0.0; dims];
    for v in vectors {
        for (s, x) in m.iter_mut().zip(v.iter()) {
            *s += x;
        }
    }
    let n = vectors.len() as f64;
    m.iter_mut().for_each(|s| *s /= n);
    m
}

/// MMD^2 (unbiased) of the split of the pooled kernel matrix `k` (`total` x
/// `total`, row-major, ones on the diagonal) given by the 0/1 weights `w`
/// (1 for the first group, of size `n`). `row_sums` and `sum` are `k`'s.
/// Branch-free: with `r = K w`, the first group's block sums to `w.r`, the
/// cross block to `w.row_sums - w.r`, the rest follows from the total.
fn mmd2_of_split(k: &[f64], w: &[f64], row_sums: &[f64], sum: f64, n: usize, m: usize) -> f64 {
    let total = w.len();
    let mut xx = 0.0;
    let mut x_all = 0.0;
    for (i, (&wi, &si)) in w.iter().zip(row_sums).enumerate() {
        if wi != 0.0 {
            let row = &k[i * total..(i + 1) * total];
            xx += row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
            x_all += si;
        }
    }
    let xy = x_all - xx;
    let yy = sum - 2.0 * xy - xx;
    let (n, m) = (n as f64, m as f64);
    (xx - n) / (n * (n - 1.0)) + (yy - m) / (m * (m - 1.0)) - 2.0 * xy / (n * m)
}

/// Compare `current` with `reference`. `permutations` = 0 skips the p-value
/// (reported as NaN).
pub fn embedding_drift(
    reference: &[Vec<f64>],
    current: &[Vec<f64>],
    permutations: usize,
    seed: u64,
) -> Result<EmbeddingDrift, EmbeddingError> {
    let (n, m) = (reference.len(), current.len());
    if n < 2 || m < 2 {
        return Err(EmbeddingError::TooFew {
            reference: n,
            current: m,
        });
    }
    let dims = columns(reference, current).map_err(|e| match e {
        Shape::Columns(a, b) => EmbeddingError::Dimensions(a, b),
        Shape::NotFinite => EmbeddingError::NotFinite,
    })?;
    let pooled: Vec<&[f64]> = reference.iter().chain(current).map(Vec::as_slice).collect();
    let total = n + m;

    let mean_ref = mean(&pooled[..n], dims);
    let mean_cur = mean(&pooled[n..], dims);
    let spread = (pooled[..n]
        .iter()
        .map(|v| squared_distance(v, &mean_ref))
        .sum::<f64>()
        / n as f64)
        .sqrt();
    let shift = squared_distance(&mean_ref, &mean_cur).sqrt();
    let mean_shift = if spread > 0.0 {
        shift / spread
    } else if shift > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };

    // Squared distances of the pooled sample, then the kernel in place.
    let mut k = vec![0.0; total * total];
    let mut upper = Vec::with_capacity(total * (total - 1) / 2);
    for i in 0..total {
        for j in (i + 1)..total {
            let d = squared_distance(pooled[i], pooled[j]);
            k[i * total + j] = d;
            k[j * total + i] = d;
            upper.push(d);
        }
    }
    upper.sort_by(f64::total_cmp);
    let len = upper.len();
    let median = if len % 2 == 1 {
        upper[len / 2]
    } else {
        (upper[len / 2 - 1] + upper[len / 2]) / 2.0
    };
    // All points equal: any bandwidth gives a zero statistic; take 1.
    let sigma2 = if median > 0.0 { median / 2.0 } else { 0.5 };
    for d in k.iter_mut() {
        *d = (-*d / (2.0 * sigma2)).exp();
    }

    let row_sums: Vec<f64> = k.chunks(total).map(|r| r.iter().sum()).collect();
    let sum: f64 = row_sums.iter().sum();
    let mut w: Vec<f64> = (0..total).map(|i| f64::from(u8::from(i < n))).collect();
    let mmd2 = mmd2_of_split(&k, &w, &row_sums, sum, n, m);
    let p_value = if permutations == 0 {
        f64::NAN
    } else {
        let mut rng = SplitMix(seed);
        let mut at_least = 0usize;
        for _ in 0..permutations {
            rng.shuffle(&mut w);
            if mmd2_of_split(&k, &w, &row_sums, sum, n, m) >= mmd2 {
                at_least += 1;
            }
        }
        (1 + at_least) as f64 / (1 + permutations) as f64
    };
    Ok(EmbeddingDrift {
        reference_size: n,
        current_size: m,
        dimensions: dims,
        mean_shift,
        mmd2,
        bandwidth: sigma2.sqrt(),
        p_value,
        permutations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::XorShift;

    fn sample(rng: &mut XorShift, n: usize, dims: usize, shift: f64) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| (0..dims).map(|_| rng.normal() + shift).collect())
            .collect()
    }

    /// The branch-free block sums give the pairwise definition for any split.
    #[test]
    fn split_statistic_is_the_pairwise_definition() {
        let mut rng = XorShift::new(5);
        let total = 23;
        let mut k = vec![1.0; total * total];
        for i in 0..total {
            for j in (i + 1)..total {
                let v = rng.uniform();
                k[i * total + j] = v;
                k[j * total + i] = v;
            }
        }
        let row_sums: Vec<f64> = k.chunks(total).map(|r| r.iter().sum()).collect();
        let sum: f64 = row_sums.iter().sum();
        let mut w: Vec<f64> = (0..total).map(|i| f64::from(u8::from(i < 9))).collect();
        let mut g = SplitMix(1);
        for _ in 0..20 {
            g.shuffle(&mut w);
            let (n, m) = (9.0, 14.0);
            let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
            for i in 0..total {
                for j in 0..total {
                    let v = k[i * total + j];
                    match (w[i] == 1.0, w[j] == 1.0, i == j) {
                        (_, _, true) => {}
                        (true, true, _) => xx += v,
                        (false, false, _) => yy += v,
                        (true, false, _) => xy += v,
                        (false, true, _) => {}
                    }
                }
            }
            let want = xx / (n * (n - 1.0)) + yy / (m * (m - 1.0)) - 2.0 * xy / (n * m);
            let got = mmd2_of_split(&k, &w, &row_sums, sum, 9, 14);
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn bad_samples_are_refused_with_a_reason() {
        let one = vec![vec![1.0, 2.0]];
        let two = vec![vec![1.0, 2.0], vec![0.0, 1.0]];
        assert!(matches!(
            embedding_drift(&one, &two, 0, 1),
            Err(EmbeddingError::TooFew { .. })
        ));
        let ragged = vec![vec![1.0, 2.0], vec![0.0]];
        assert_eq!(
            embedding_drift(&two, &ragged, 0, 1),
            Err(EmbeddingError::Dimensions(2, 1))
        );
        let nan = vec![vec![1.0, f64::NAN], vec![0.0, 1.0]];
        assert_eq!(
            embedding_drift(&two, &nan, 0, 1),
            Err(EmbeddingError::NotFinite)
        );
    }

    #[test]
    fn a_shifted_sample_is_flagged_and_the_same_seed_repeats_the_verdict() {
        let mut rng = XorShift::new(3);
        let r = sample(&mut rng, 100, 8, 0.0);
        let c = sample(&mut rng, 100, 8, 0.5);
        let a = embedding_drift(&r, &c, 200, 9).unwrap();
        assert!(a.p_value < 0.01, "{a:?}");
        assert!(a.mean_shift > 0.4, "{a:?}");
        assert_eq!(a, embedding_drift(&r, &c, 200, 9).unwrap());
    }

    /// Under no drift the permutation test's false alarms stay near the
    /// nominal 5 %: 2,000 pairs of samples from one distribution (binomial
    /// standard error about 0.5 points at 5 %; the bounds are 3 of them).
    #[test]
    fn false_alarms_on_identical_distributions_are_near_nominal() {
        let mut rng = XorShift::new(11);
        let trials = 2000;
        let mut alarms = 0;
        for t in 0..trials {
            let r = sample(&mut rng, 30, 3, 0.0);
            let c = sample(&mut rng, 25, 3, 0.0);
            let d = embedding_drift(&r, &c, 99, t).unwrap();
            alarms += usize::from(d.p_value <= 0.05);
        }
        let rate = alarms as f64 / trials as f64;
        println!("false-alarm rate at 5 %: {rate}");
        assert!((0.035..=0.065).contains(&rate), "false-alarm rate {rate}");
    }
}
