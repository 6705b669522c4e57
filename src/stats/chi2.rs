//! Pearson chi-square test of homogeneity on a 2 x k contingency table, as
//! `scipy.stats.chi2_contingency(table, correction=False)`.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::numeric_sum::pairwise_sum;

/// Result of the chi-square test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChiSquareResult {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: u64,
}

/// Test whether two count vectors over the same categories come from one
/// distribution. Categories with zero count in both rows must be left out by
/// the caller (scipy rejects a zero expected frequency).
pub fn chi2_homogeneity(reference: &[u64], current: &[u64]) -> ChiSquareResult {
    debug_assert_eq!(reference.len(), current.len());
    let k = reference.len();
    let dof = k.saturating_sub(1) as u64;
    if dof == 0 {
        // scipy: a table with one column has dof 0, statistic 0 and p-value 1.
        return ChiSquareResult {
            statistic: 0.0,
            p_value: 1.0,
            dof,
        };
    }
    let row_totals = [
        reference.iter().sum::<u64>() as f64,
        current.iter().sum::<u64>() as f64,
    ];
    let total = row_totals[0] + row_totals[1];
    // Row-major over the 2 x k table, like scipy's flattened sum.
    let mut terms = Vec::with_capacity(2 * k);
    for (row, counts) in [reference, current].into_iter().enumerate() {
        for (j, &obs) in counts.iter().enumerate() {
            let col = (reference[j] + current[j]) as f64;
            let expected = row_totals[row] * col / total;
            let d = obs as f64 - expected;
            terms.push(d * d / expected);
        }
    }
    let statistic = pairwise_sum(&terms);
    ChiSquareResult {
        statistic,
        p_value: chi2_sf(statistic, dof),
        dof,
    }
}

/// Upper tail of the chi-square distribution with `dof` degrees of freedom.
pub fn chi2_sf(x: f64, dof: u64) -> f64 {
    match ChiSquared::new(dof as f64) {
        Ok(dist) => dist.sf(x),
        Err(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_two_by_two() {
        // scipy.stats.chi2_contingency([[10, 20], [20, 10]], correction=False)
        // -> statistic 6.666666666666667, p 0.009823274507519247, dof 1
        let r = chi2_homogeneity(&[10, 20], &[20, 10]);
        assert!((r.statistic - 20.0 / 3.0).abs() < 1e-12);
        assert!((r.p_value - 0.009823274507519247).abs() < 1e-12);
        assert_eq!(r.dof, 1);
    }

    #[test]
    fn single_category_has_no_evidence() {
        let r = chi2_homogeneity(&[7], &[3]);
        assert_eq!((r.statistic, r.p_value, r.dof), (0.0, 1.0, 0));
    }
}
