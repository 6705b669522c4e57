//! Binned comparisons: PSI and Jensen-Shannon distance over decile bins of the
//! reference (numeric features) or over categories (categorical features).
//!
//! Definitions (issue 2):
//! - edges: reference quantiles at 0.1..0.9, numpy's default `linear` method,
//!   duplicates removed; a value's bin is the number of edges strictly below it,
//!   so bins are (-inf, e1], (e1, e2], ..., (ek, +inf);
//! - proportions: count / non-null count;
//! - PSI = sum (p_cur - p_ref) ln(p_cur / p_ref), zero proportions replaced by
//!   [`PSI_EPSILON`] first;
//! - JS: `scipy.spatial.distance.jensenshannon` (natural log) of the raw
//!   proportions.

use super::numeric_sum::pairwise_sum;

/// Replacement for an empty bin in PSI, so the logarithm stays finite.
pub const PSI_EPSILON: f64 = 0.0001;

/// The quantile levels that define the decile bin edges.
pub fn decile_levels() -> [f64; 9] {
    // i / 10 in floating point, as numpy's `np.arange(1, 10) / 10`.
    std::array::from_fn(|i| (i + 1) as f64 / 10.0)
}

/// Quantile `q` of an ascending-sorted non-empty sample, as
/// `numpy.quantile(x, q)` with the default `linear` method, including numpy's
/// two-sided interpolation formula.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    debug_assert!(n > 0);
    let v = (n - 1) as f64 * q;
    if v >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    if v < 0.0 {
        return sorted[0];
    }
    let lo = v.floor();
    let t = v - lo;
    let lo = lo as usize;
    let (a, b) = (sorted[lo], sorted[lo + 1]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Decile edges of an ascending-sorted, non-empty reference, duplicates removed.
pub fn decile_edges(sorted_reference: &[f64]) -> Vec<f64> {
    let mut edges: Vec<f64> = decile_levels()
        .iter()
        .map(|&q| quantile_sorted(sorted_reference, q))
        .collect();
    edges.dedup();
    edges
}

/// Bin index of `x`: the number of edges strictly below it.
pub fn bin_index(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|&e| e < x)
}

/// Counts per bin (`edges.len() + 1` bins) of a sample.
pub fn bin_counts<'a>(edges: &[f64], values: impl IntoIterator<Item = &'a f64>) -> Vec<u64> {
    let mut counts = vec![0u64; edges.len() + 1];
    for &x in values {
        counts[bin_index(edges, x)] += 1;
    }
    counts
}

/// Proportions `count / total`; all zero when `total` is zero.
pub fn proportions(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return vec![0.0; counts.len()];
    }
    let t = total as f64;
    counts.iter().map(|&c| c as f64 / t).collect()
}

/// Population stability index of two proportion vectors over the same bins.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    debug_assert_eq!(reference.len(), current.len());
    let terms: Vec<f64> = reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let r = if r == 0.0 { PSI_EPSILON } else { r };
            let c = if c == 0.0 { PSI_EPSILON } else { c };
            (c - r) * (c / r).ln()
        })
        .collect();
    pairwise_sum(&terms)
}

/// `scipy.special.rel_entr(x, y)`.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Jensen-Shannon distance (natural log) between two non-negative weight
/// vectors, normalised to sum 1 first, as `scipy.spatial.distance.jensenshannon`.
/// Returns 0 when either vector is all zero.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    debug_assert_eq!(p.len(), q.len());
    let (sp, sq) = (pairwise_sum(p), pairwise_sum(q));
    if sp <= 0.0 || sq <= 0.0 {
        return 0.0;
    }
    let p: Vec<f64> = p.iter().map(|v| v / sp).collect();
    let q: Vec<f64> = q.iter().map(|v| v / sq).collect();
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    let left: Vec<f64> = p.iter().zip(&m).map(|(&a, &b)| rel_entr(a, b)).collect();
    let right: Vec<f64> = q.iter().zip(&m).map(|(&a, &b)| rel_entr(a, b)).collect();
    let js = pairwise_sum(&left) + pairwise_sum(&right);
    // Rounding can leave a tiny negative for identical inputs; scipy would give NaN.
    (js / 2.0).max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_numpy_examples() {
        // np.quantile([1, 2, 3, 4], [0.1, 0.5, 0.9]) == [1.3, 2.5, 3.7]
        let x = [1.0, 2.0, 3.0, 4.0];
        let want = [1.3, 2.5, 3.7];
        for (q, w) in [0.1, 0.5, 0.9].into_iter().zip(want) {
            assert!((quantile_sorted(&x, q) - w).abs() < 1e-15, "q={q}");
        }
        assert_eq!(quantile_sorted(&[5.0], 0.3), 5.0);
    }

    #[test]
    fn bins_are_right_closed() {
        let edges = [1.0, 2.0];
        let cases = [(0.5, 0), (1.0, 0), (1.5, 1), (2.0, 1), (2.5, 2)];
        for (x, want) in cases {
            assert_eq!(bin_index(&edges, x), want, "x={x}");
        }
    }

    #[test]
    fn duplicate_edges_collapse() {
        let x = vec![0.0; 50]
            .into_iter()
            .chain((1..=50).map(f64::from))
            .collect::<Vec<_>>();
        let edges = decile_edges(&x);
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        assert!(edges.len() < 9);
    }

    #[test]
    fn psi_of_identical_proportions_is_zero_and_positive_otherwise() {
        let p = [0.25, 0.25, 0.5];
        assert_eq!(psi(&p, &p), 0.0);
        assert!(psi(&p, &[0.5, 0.25, 0.25]) > 0.0);
        assert!(psi(&[0.0, 1.0], &[1.0, 0.0]).is_finite());
    }

    #[test]
    fn js_disjoint_is_sqrt_ln2() {
        let d = jensen_shannon(&[1.0, 0.0], &[0.0, 1.0]);
        assert!((d - std::f64::consts::LN_2.sqrt()).abs() < 1e-15);
    }
}
