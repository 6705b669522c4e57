//! Summation that reproduces numpy's `np.sum` on a contiguous float64 array.
//!
//! numpy adds with pairwise summation (eight accumulators inside blocks of up to
//! 128 elements, halving above that). Matching its order keeps our sums identical
//! to the reference values scipy produces, not merely close.

/// Block size below which numpy stops splitting (`PW_BLOCKSIZE` in numpy's loops).
const PW_BLOCKSIZE: usize = 128;

/// Sum `values` in numpy's pairwise order.
pub fn pairwise_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        let mut res = 0.0;
        for v in values {
            res += v;
        }
        res
    } else if n <= PW_BLOCKSIZE {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&values[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (k, acc) in r.iter_mut().enumerate() {
                *acc += values[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += values[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&values[..n2]) + pairwise_sum(&values[n2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_plain_sum_on_exact_values() {
        for n in [0usize, 1, 7, 8, 9, 127, 128, 129, 1000] {
            let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
            assert_eq!(
                pairwise_sum(&v),
                (n * n.saturating_sub(1) / 2) as f64,
                "n={n}"
            );
        }
    }

    #[test]
    fn is_more_accurate_than_naive_on_many_small_terms() {
        let v = vec![0.1f64; 1_000_000];
        let naive: f64 = v.iter().sum();
        let pairwise = pairwise_sum(&v);
        assert!((pairwise - 100_000.0).abs() < (naive - 100_000.0).abs());
    }
}
