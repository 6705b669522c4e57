//! First Wasserstein distance between two empirical distributions, as
//! `scipy.stats.wasserstein_distance(u, v)`: the integral of |U(x) - V(x)| over x,
//! evaluated between consecutive observed values.

use super::numeric_sum::pairwise_sum;

/// W1 between two ascending-sorted, NaN-free, non-empty samples.
pub fn wasserstein_sorted(u: &[f64], v: &[f64]) -> f64 {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let total = u.len() + v.len();
    let mut terms = Vec::with_capacity(total.saturating_sub(1));
    let (mut i, mut j) = (0usize, 0usize);
    // Walk the merged sorted values; between value k and k+1 both CDFs are
    // constant at (#u <= value_k) / nu and (#v <= value_k) / nv.
    let mut prev: Option<f64> = None;
    while i < u.len() || j < v.len() {
        let take_u = j >= v.len() || (i < u.len() && u[i] <= v[j]);
        let x = if take_u { u[i] } else { v[j] };
        if let Some(p) = prev {
            // CDFs at p, counting every copy of p (searchsorted side='right').
            let diff = (i as f64 / nu - j as f64 / nv).abs();
            terms.push(diff * (x - p));
        }
        if take_u {
            i += 1;
        } else {
            j += 1;
        }
        prev = Some(x);
    }
    pairwise_sum(&terms)
}

/// Population standard deviation (ddof 0) of a sample, two-pass for accuracy.
pub fn population_std(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let mean = pairwise_sum(values) / n;
    let sq: Vec<f64> = values.iter().map(|v| (v - mean) * (v - mean)).collect();
    (pairwise_sum(&sq) / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_of_point_masses() {
        assert!((wasserstein_sorted(&[0.0], &[3.0]) - 3.0).abs() < 1e-15);
        // scipy docs: wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        assert!((wasserstein_sorted(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]) - 5.0).abs() < 1e-12);
    }

    #[test]
    fn ties_inside_and_across_samples() {
        // scipy: wasserstein_distance([1, 1, 2], [1, 2, 2]) == 1/3
        let d = wasserstein_sorted(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]);
        assert!((d - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn population_std_is_ddof_zero() {
        assert!((population_std(&[1.0, 3.0]) - 1.0).abs() < 1e-15);
    }
}
