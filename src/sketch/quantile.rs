//! Quantile summary of a numeric sample, and KS / Wasserstein computed from it.
//!
//! A summary keeps some of the sample's order statistics: all of them when the
//! sample is small (tests from it are then exact), otherwise a subset chosen so
//! that
//! - no gap between kept ranks holds more than n/K values (K = 2000 intervals),
//!   which bounds the CDF error, hence the KS error, by 1/K;
//! - no gap covers more than a small area (value range x probability mass,
//!   std / (20 K)): heavy tails and outliers are kept value by value, since a
//!   single interpolated gap there would dominate the Wasserstein error.
//!
//! A kept order statistic x_(r) (0-based) stands for its own mass, the step
//! [r/n, (r+1)/n] of the empirical quantile function; between kept ranks the
//! quantile function is interpolated linearly. Keeping every rank gives back
//! the empirical distribution exactly. Both forms become a [`QuantileFn`]:
//! knots (u, x) with u and x non-decreasing, u from 0 to 1, where a vertical
//! step (two knots with the same u) is a jump between atoms.
//!
//! `tests/baseline_accuracy.rs` measures KS and normalized Wasserstein from a
//! summary against the exact values on normal, lognormal, uniform and tied data.

use serde::{Deserialize, Serialize};

use crate::stats::wasserstein::population_std;

/// Samples up to this size are stored whole, so tests from the profile are exact.
pub const DEFAULT_EXACT_LIMIT: usize = 2001;
/// Largest number of values between two kept ranks is n / this.
pub const DEFAULT_INTERVALS: usize = 2000;
/// A gap may cover at most std / (AREA_DIVISOR * intervals) of value x mass.
const AREA_DIVISOR: f64 = 20.0;

/// Quantile summary of a non-empty sample, serializable into a baseline profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuantileSummary {
    /// Every value, ascending.
    Exact { values: Vec<f64> },
    /// Selected order statistics: `values[i]` is the value of 0-based rank
    /// `ranks[i]` in a sample of `count`; ranks start at 0 and end at count - 1.
    Sampled {
        count: u64,
        ranks: Vec<u64>,
        values: Vec<f64>,
    },
}

impl QuantileSummary {
    /// Summarize an ascending-sorted, NaN-free, non-empty sample.
    pub fn from_sorted(sorted: &[f64], exact_limit: usize, intervals: usize) -> Self {
        let n = sorted.len();
        if n <= exact_limit || n < 3 {
            return Self::Exact {
                values: sorted.to_vec(),
            };
        }
        let cap = (n / intervals.max(1)).max(1);
        let nf = n as f64;
        let delta = population_std(sorted) / (AREA_DIVISOR * intervals.max(1) as f64);
        let mut ranks = vec![0usize];
        let mut last = 0usize;
        for i in 1..n {
            let span = i - last;
            let area = (sorted[i] - sorted[last]) * span as f64 / nf;
            if span >= cap || area > delta {
                // An area overflow comes from the jump to x_(i): keep both ends
                // of that jump so it is represented exactly.
                if area > delta && span > 1 {
                    ranks.push(i - 1);
                }
                ranks.push(i);
                last = i;
            }
        }
        if last != n - 1 {
            ranks.push(n - 1);
        }
        let values = ranks.iter().map(|&r| sorted[r]).collect();
        Self::Sampled {
            count: n as u64,
            ranks: ranks.into_iter().map(|r| r as u64).collect(),
            values,
        }
    }

    /// Number of values summarized.
    pub fn count(&self) -> u64 {
        match self {
            Self::Exact { values } => values.len() as u64,
            Self::Sampled { count, .. } => *count,
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
            Self::Sampled {
                count,
                ranks,
                values,
            } => {
                let n = *count as f64;
                let mut knots = Vec::with_capacity(2 * ranks.len());
                for (&r, &x) in ranks.iter().zip(values) {
                    knots.push((r as f64 / n, x));
                    knots.push(((r + 1) as f64 / n, x));
                }
                QuantileFn { knots }
            }
        }
    }

    /// The reference's range for the out-of-range check: the values at the
    /// `tail` and `1 - tail` quantiles (ranks `floor(tail * (n - 1))` and
    /// `ceil((1 - tail) * (n - 1))`), and the share of the sample strictly
    /// outside them. A sampled summary uses its nearest kept ranks outward
    /// (the range is never narrower) and counts every value below (above) the
    /// kept rank as outside: an upper bound of the share, so a test against
    /// it errs towards quiet.
    pub fn range(&self, tail: f64) -> Range {
        let n = self.count();
        let last = n.saturating_sub(1);
        let lo_rank = ((tail * last as f64).floor() as u64).min(last);
        let hi_rank = (((1.0 - tail) * last as f64).ceil() as u64).clamp(lo_rank, last);
        match self {
            Self::Exact { values } => {
                let (low, high) = (values[lo_rank as usize], values[hi_rank as usize]);
                let below = values.partition_point(|&x| x < low);
                let above = values.len() - values.partition_point(|&x| x <= high);
                Range {
                    low,
                    high,
                    outside: (below + above) as f64 / values.len().max(1) as f64,
                }
            }
            Self::Sampled { ranks, values, .. } => {
                // Kept ranks at or below lo_rank / at or above hi_rank.
                let i = ranks.partition_point(|&r| r <= lo_rank).saturating_sub(1);
                let j = ranks.partition_point(|&r| r < hi_rank).min(ranks.len() - 1);
                let (low, high) = (values[i], values[j]);
                // Values tied with an end are inside. Below the first kept
                // rank holding `low` every value may be smaller, above the
                // last holding `high` every value may be larger.
                let first_low = values.partition_point(|&x| x < low);
                let last_high = values.partition_point(|&x| x <= high) - 1;
                let below = ranks[first_low];
                let above = last - ranks[last_high];
                Range {
                    low,
                    high,
                    outside: (below + above) as f64 / n.max(1) as f64,
                }
            }
        }
    }

    /// Structural checks for a summary read from a file.
    pub fn validate(&self) -> Result<(), String> {
        let values = match self {
            Self::Exact { values } => values,
            Self::Sampled {
                count,
                ranks,
                values,
            } => {
                if ranks.len() != values.len() || ranks.len() < 2 {
                    return Err("sampled summary needs at least 2 ranks, one value per rank".into());
                }
                if ranks[0] != 0 || ranks[ranks.len() - 1] + 1 != *count {
                    return Err(format!(
                        "ranks must run from 0 to count - 1 = {}",
                        count.saturating_sub(1)
                    ));
                }
                if ranks.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("ranks are not strictly ascending".into());
                }
                values
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

/// The central range of a reference sample (see [`QuantileSummary::range`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub low: f64,
    pub high: f64,
    /// Share of the reference strictly outside `[low, high]`.
    pub outside: f64,
}

impl Range {
    /// Every value is inside.
    pub const ALL: Self = Self {
        low: f64::NEG_INFINITY,
        high: f64::INFINITY,
        outside: 0.0,
    };

    pub fn contains(&self, x: f64) -> bool {
        x >= self.low && x <= self.high
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

    /// A weighted sample, ascending by value: each item is an atom of mass
    /// weight / total weight.
    pub fn from_weighted(items: &[(f64, u64)]) -> Self {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let t = total.max(1) as f64;
        let mut knots = Vec::with_capacity(2 * items.len());
        let mut cum = 0u64;
        for &(x, w) in items {
            knots.push((cum as f64 / t, x));
            cum += w;
            knots.push((cum as f64 / t, x));
        }
        Self { knots }
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
    // The knots' x-values of both in increasing order, each function's
    // position among its own knots advanced as x grows: one pass instead of
    // four binary searches per knot. Every CDF value is the one `cdf` and
    // `cdf_left` compute at that x.
    let (mut ca, mut cb) = (Cursor::new(a), Cursor::new(b));
    let (ka, kb) = (&a.knots, &b.knots);
    let (mut i, mut j) = (0, 0);
    let mut d = 0.0f64;
    while i < ka.len() || j < kb.len() {
        let x = match (ka.get(i), kb.get(j)) {
            (Some(&(_, xa)), Some(&(_, xb))) if xa <= xb => {
                i += 1;
                xa
            }
            (Some(&(_, xa)), None) => {
                i += 1;
                xa
            }
            (_, Some(&(_, xb))) => {
                j += 1;
                xb
            }
            (None, None) => unreachable!("loop condition"),
        };
        d = d.max((ca.cdf(x) - cb.cdf(x)).abs());
        d = d.max((ca.cdf_left(x) - cb.cdf_left(x)).abs());
    }
    d
}

/// The CDF at `x`, given how many knots lie at or below x (`left` false)
/// or below x (`left` true): linear between knots; on a vertical step (an
/// atom) the value below it from the right, above it from the left.
fn cdf_at(k: &[(f64, f64)], at: usize, x: f64, left: bool) -> f64 {
    if at == 0 {
        return 0.0;
    }
    if at == k.len() {
        return 1.0;
    }
    let (u0, x0) = k[at - 1];
    let (u1, x1) = k[at];
    if u1 == u0 {
        if left {
            u1
        } else {
            u0
        }
    } else {
        u0 + (x - x0) / (x1 - x0) * (u1 - u0)
    }
}

/// `QuantileFn::cdf` and `cdf_left` for non-decreasing x.
struct Cursor<'a> {
    f: &'a QuantileFn,
    /// Knots with x <= the last x asked (`cdf`).
    le: usize,
    /// Knots with x < the last x asked (`cdf_left`).
    lt: usize,
}

impl<'a> Cursor<'a> {
    fn new(f: &'a QuantileFn) -> Self {
        Self { f, le: 0, lt: 0 }
    }

    fn cdf(&mut self, x: f64) -> f64 {
        let k = &self.f.knots;
        while self.le < k.len() && k[self.le].1 <= x {
            self.le += 1;
        }
        cdf_at(k, self.le, x, false)
    }

    fn cdf_left(&mut self, x: f64) -> f64 {
        let k = &self.f.knots;
        while self.lt < k.len() && k[self.lt].1 < x {
            self.lt += 1;
        }
        cdf_at(k, self.lt, x, true)
    }
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

/// The CDFs at a single point, by binary search: the definition the
/// one-pass [`ks_distance`] is tested against.
#[cfg(test)]
impl QuantileFn {
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
        // The exact range is the sample's; a sampled summary's is never
        // narrower and its outside share never below the true one.
        #[test]
        fn ranges_bound_the_sample(
            v in prop::collection::vec(-200i32..200, 30..400),
            tail in prop::sample::select(vec![0.001, 0.01, 0.1]),
        ) {
            let v = sorted(v.into_iter().map(|x| x as f64 / 8.0).collect());
            let outside = |r: &Range| {
                v.iter().filter(|&&x| !r.contains(x)).count() as f64 / v.len() as f64
            };
            let exact = QuantileSummary::Exact { values: v.clone() }.range(tail);
            let last = (v.len() - 1) as f64;
            prop_assert_eq!(exact.low, v[(tail * last).floor() as usize]);
            prop_assert_eq!(exact.high, v[((1.0 - tail) * last).ceil() as usize]);
            prop_assert!((exact.outside - outside(&exact)).abs() < 1e-12);
            let sampled = QuantileSummary::from_sorted(&v, 10, 8);
            prop_assert!(!sampled.is_exact());
            let r = sampled.range(tail);
            prop_assert!(r.low <= exact.low && r.high >= exact.high, "{:?} vs {:?}", r, exact);
            prop_assert!(r.outside >= outside(&r) - 1e-12, "{:?}: {}", r, outside(&r));
        }
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

        // The one-pass KS is the knot-by-knot definition, bit for bit, on
        // interpolated summaries with ties and atoms as well as on samples.
        #[test]
        fn one_pass_ks_is_the_knotwise_supremum(
            a in prop::collection::vec(-20i32..20, 1..300),
            b in prop::collection::vec(-1e2f64..1e2, 1..300),
            k in 4usize..40,
        ) {
            let a = sorted(a.into_iter().map(f64::from).collect());
            let b = sorted(b);
            let fns = [
                QuantileFn::from_sorted_sample(&a),
                QuantileFn::from_sorted_sample(&b),
                QuantileSummary::from_sorted(&a, 8, k).quantile_fn(),
                QuantileSummary::from_sorted(&b, 8, k).quantile_fn(),
            ];
            for p in &fns {
                for q in &fns {
                    let mut d = 0.0f64;
                    for &(_, x) in p.knots.iter().chain(&q.knots) {
                        d = d.max((p.cdf(x) - q.cdf(x)).abs());
                        d = d.max((p.cdf_left(x) - q.cdf_left(x)).abs());
                    }
                    prop_assert_eq!(ks_distance(p, q).to_bits(), d.to_bits());
                }
            }
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

    proptest! {
        // Keeping every rank reproduces the empirical distribution exactly.
        #[test]
        fn sampled_summary_ks_error_is_bounded_by_one_over_k(
            a in prop::collection::vec(-1e3f64..1e3, 50..400),
            b in prop::collection::vec(-1e3f64..1e3, 1..100),
        ) {
            let (a, b) = (sorted(a), sorted(b));
            let s = QuantileSummary::from_sorted(&a, 10, 8);
            prop_assert!(s.validate().is_ok());
            let approx = ks_distance(&s.quantile_fn(), &QuantileFn::from_sorted_sample(&b));
            let exact = statistic_sorted(&a, &b);
            let cap = (a.len() / 8) as f64 / a.len() as f64;
            prop_assert!((approx - exact).abs() <= cap + 1e-12, "{} vs {}", approx, exact);
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
