//! Quantile summary of a numeric sample, and KS / Wasserstein computed from it.
//!
//! A summary is either the whole sorted sample (when it is small enough, so the
//! tests computed from it are exact) or the sample's quantiles at i/K for
//! i = 0..=K (numpy `linear` method), read as a piecewise-linear quantile
//! function. Both are turned into a [`QuantileFn`]: knots (u, x) with u and x
//! non-decreasing, u from 0 to 1; a vertical step (two knots with the same u) is
//! an atom of probability mass.
//!
//! Accuracy of the interpolated form: the CDF it implies differs from the
//! sample's empirical CDF by at most 1/K at every x, so KS is off by at most 1/K
//! (1/2000 with the default) and W1 by at most (max - min)/K. The tests in
//! `tests/baseline_accuracy.rs` measure both against the exact values.

use serde::{Deserialize, Serialize};

use crate::stats::binned::quantile_sorted;

/// Samples up to this size are stored whole, so tests from the profile are exact.
pub const DEFAULT_EXACT_LIMIT: usize = 2001;
/// Intervals of the interpolated summary for larger samples.
pub const DEFAULT_INTERVALS: usize = 2000;

/// Quantile summary of a non-empty sample, serializable into a baseline profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuantileSummary {
    /// Every value, ascending.
    Exact { values: Vec<f64> },
    /// Values at the quantile levels i / (len - 1), ascending.
    Interpolated { count: u64, quantiles: Vec<f64> },
}

impl QuantileSummary {
    /// Summarize an ascending-sorted, NaN-free, non-empty sample.
    pub fn from_sorted(sorted: &[f64], exact_limit: usize, intervals: usize) -> Self {
        if sorted.len() <= exact_limit {
            return Self::Exact {
                values: sorted.to_vec(),
            };
        }
        let k = intervals.max(1);
        let quantiles = (0..=k)
            .map(|i| quantile_sorted(sorted, i as f64 / k as f64))
            .collect();
        Self::Interpolated {
            count: sorted.len() as u64,
            quantiles,
        }
    }

    /// Number of values summarized.
    pub fn count(&self) -> u64 {
        match self {
            Self::Exact { values } => values.len() as u64,
            Self::Interpolated { count, .. } => *count,
        }
    }

    /// Whether tests computed from this summary are exact.
    pub fn is_exact(&self) -> bool {
        matches!(self, Self::Exact { .. })
    }

    /// The quantile function this summary stands for.
    pub fn quantile_fn(&self) -> QuantileFn {
        match self {
            Self::Exact { values } => QuantileFn::from_sorted_sample(values),
            Self::Interpolated { quantiles, .. } => {
                let k = (quantiles.len() - 1).max(1) as f64;
                QuantileFn {
                    knots: quantiles
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| (i as f64 / k, x))
                        .collect(),
                }
            }
        }
    }

    /// Structural checks for a summary read from a file.
    pub fn validate(&self) -> Result<(), String> {
        let values = match self {
            Self::Exact { values } => values,
            Self::Interpolated { quantiles, count } => {
                if quantiles.len() < 2 {
                    return Err("interpolated summary needs at least 2 quantiles".into());
                }
                if (*count as usize) < quantiles.len() {
                    return Err(format!("count {count} is below the number of quantiles"));
                }
                quantiles
            }
        };
        if values.is_empty() {
            return Err("summary is empty".into());
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err("summary holds a non-finite value".into());
        }
        if values.windows(2).any(|w| w[0] > w[1]) {
            return Err("summary values are not ascending".into());
        }
        Ok(())
    }
}

/// A distribution given by its quantile function: piecewise linear between
/// knots (u, x), with vertical steps where two knots share u.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileFn {
    knots: Vec<(f64, f64)>,
}

impl QuantileFn {
    /// The empirical distribution of an ascending-sorted non-empty sample: a
    /// step function with mass 1/n at each value.
    pub fn from_sorted_sample(sorted: &[f64]) -> Self {
        let n = sorted.len() as f64;
        let mut knots = Vec::with_capacity(2 * sorted.len());
        for (i, &x) in sorted.iter().enumerate() {
            knots.push((i as f64 / n, x));
            knots.push(((i + 1) as f64 / n, x));
        }
        Self { knots }
    }

    /// P(X <= x).
    fn cdf(&self, x: f64) -> f64 {
        let k = &self.knots;
        let after = k.partition_point(|&(_, kx)| kx <= x);
        if after == 0 {
            return 0.0;
        }
        if after == k.len() {
            return 1.0;
        }
        let (u0, x0) = k[after - 1];
        let (u1, x1) = k[after];
        if u1 == u0 {
            u0
        } else {
            u0 + (x - x0) / (x1 - x0) * (u1 - u0)
        }
    }

    /// P(X < x).
    fn cdf_left(&self, x: f64) -> f64 {
        let k = &self.knots;
        let at = k.partition_point(|&(_, kx)| kx < x);
        if at == 0 {
            return 0.0;
        }
        if at == k.len() {
            return 1.0;
        }
        let (u0, x0) = k[at - 1];
        let (u1, x1) = k[at];
        if u1 == u0 {
            u1
        } else {
            u0 + (x - x0) / (x1 - x0) * (u1 - u0)
        }
    }

    /// Linear pieces (u0, u1, x0, x1) with u1 > u0.
    fn pieces(&self) -> impl Iterator<Item = (f64, f64, f64, f64)> + '_ {
        self.knots
            .windows(2)
            .filter(|w| w[1].0 > w[0].0)
            .map(|w| (w[0].0, w[1].0, w[0].1, w[1].1))
    }
}

/// sup over x of |F_a(x) - F_b(x)|.
///
/// Both CDFs are linear between consecutive knot x-values of either, so the
/// supremum is attained at a knot, from the left or the right.
pub fn ks_distance(a: &QuantileFn, b: &QuantileFn) -> f64 {
    let mut d = 0.0f64;
    for &(_, x) in a.knots.iter().chain(&b.knots) {
        d = d.max((a.cdf(x) - b.cdf(x)).abs());
        d = d.max((a.cdf_left(x) - b.cdf_left(x)).abs());
    }
    d
}

/// W1 = integral over u in [0, 1] of |Q_a(u) - Q_b(u)|, exact for these
/// piecewise-linear quantile functions.
pub fn wasserstein_distance(a: &QuantileFn, b: &QuantileFn) -> f64 {
    let pa: Vec<_> = a.pieces().collect();
    let pb: Vec<_> = b.pieces().collect();
    let (mut i, mut j) = (0, 0);
    let mut terms = Vec::with_capacity(pa.len() + pb.len());
    while i < pa.len() && j < pb.len() {
        let (a0, a1, ax0, ax1) = pa[i];
        let (b0, b1, bx0, bx1) = pb[j];
        let lo = a0.max(b0);
        let hi = a1.min(b1);
        if hi > lo {
            let at =
                |u0: f64, u1: f64, x0: f64, x1: f64, u: f64| x0 + (x1 - x0) * (u - u0) / (u1 - u0);
            let d0 = at(a0, a1, ax0, ax1, lo) - at(b0, b1, bx0, bx1, lo);
            let d1 = at(a0, a1, ax0, ax1, hi) - at(b0, b1, bx0, bx1, hi);
            terms.push(abs_linear_integral(d0, d1) * (hi - lo));
        }
        if a1 <= b1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    crate::stats::numeric_sum::pairwise_sum(&terms)
}

/// Integral over t in [0, 1] of |d0 + (d1 - d0) t|.
fn abs_linear_integral(d0: f64, d1: f64) -> f64 {
    if d0 * d1 >= 0.0 {
        (d0.abs() + d1.abs()) / 2.0
    } else {
        (d0 * d0 + d1 * d1) / (2.0 * (d1 - d0).abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ks::statistic_sorted, wasserstein::wasserstein_sorted};
    use proptest::prelude::*;

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    proptest! {
        // On exact summaries the general algorithms agree with the direct ones.
        #[test]
        fn exact_summary_reproduces_direct_ks(
            a in prop::collection::vec(-50i32..50, 1..80),
            b in prop::collection::vec(-50i32..50, 1..80),
        ) {
            let a = sorted(a.into_iter().map(|v| v as f64 / 4.0).collect());
            let b = sorted(b.into_iter().map(|v| v as f64 / 4.0).collect());
            let qa = QuantileFn::from_sorted_sample(&a);
            let qb = QuantileFn::from_sorted_sample(&b);
            prop_assert_eq!(ks_distance(&qa, &qb), statistic_sorted(&a, &b));
            let w = wasserstein_distance(&qa, &qb);
            let direct = wasserstein_sorted(&a, &b);
            prop_assert!((w - direct).abs() <= 1e-12 * direct.max(1.0), "{} vs {}", w, direct);
        }

        #[test]
        fn distances_are_symmetric_and_zero_on_self(
            a in prop::collection::vec(-1e3f64..1e3, 1..60),
            b in prop::collection::vec(-1e3f64..1e3, 1..60),
        ) {
            let qa = QuantileFn::from_sorted_sample(&sorted(a));
            let qb = QuantileFn::from_sorted_sample(&sorted(b));
            prop_assert_eq!(ks_distance(&qa, &qb), ks_distance(&qb, &qa));
            prop_assert_eq!(ks_distance(&qa, &qa), 0.0);
            prop_assert_eq!(wasserstein_distance(&qa, &qa), 0.0);
            let d = ks_distance(&qa, &qb);
            prop_assert!((0.0..=1.0).contains(&d));
        }

        #[test]
        fn summary_round_trips_through_json(v in prop::collection::vec(-1e6f64..1e6, 1..3000)) {
            let s = QuantileSummary::from_sorted(&sorted(v), 100, 64);
            let back: QuantileSummary = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            prop_assert_eq!(&back, &s);
            prop_assert!(back.validate().is_ok());
        }
    }

    #[test]
    fn interpolated_ks_error_is_bounded_by_one_over_k() {
        let a: Vec<f64> = (0..50_000).map(|i| ((i * 7919) % 50_000) as f64).collect();
        let a = sorted(a);
        let b: Vec<f64> = (0..3000).map(|i| i as f64 * 13.7).collect();
        let exact = statistic_sorted(&a, &b);
        let s = QuantileSummary::from_sorted(&a, 10, 500);
        let approx = ks_distance(&s.quantile_fn(), &QuantileFn::from_sorted_sample(&b));
        assert!(
            (approx - exact).abs() <= 1.0 / 500.0 + 1e-12,
            "{approx} vs {exact}"
        );
    }

    #[test]
    fn abs_linear_integral_cases() {
        assert_eq!(abs_linear_integral(1.0, 3.0), 2.0);
        assert_eq!(abs_linear_integral(-1.0, 1.0), 0.5);
        assert_eq!(abs_linear_integral(0.0, 0.0), 0.0);
    }
}
