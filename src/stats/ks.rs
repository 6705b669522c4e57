//! Two-sample, two-sided Kolmogorov-Smirnov test, as `scipy.stats.ks_2samp`
//! with `method='auto'` (scipy 1.17).
//!
//! scipy chooses the exact null distribution when both samples have at most
//! 10,000 values and the asymptotic one (the one-sample Kolmogorov distribution
//! at `n = round(n1*n2/(n1+n2))`, see [`super::kolmogorov`]) otherwise; it also
//! falls back to the asymptotic one when the exact computation overflows. We
//! switch at the same places, so p-values agree with scipy's to floating-point
//! rounding.
//!
//! Exact methods: Hodges (1958), "The significance probability of the Smirnov
//! two-sample test", with Viehmann's (2021, arXiv:2102.08037) recursion that
//! computes `1 - p` directly for unequal sizes.

use super::kolmogorov::kolmogorov_sf;

/// Above this sample size `method='auto'` uses the asymptotic distribution
/// (`MAX_AUTO_N` in scipy's `ks_2samp`).
pub const MAX_EXACT_N: usize = 10_000;

/// Result of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KsResult {
    /// Largest absolute difference between the two empirical CDFs.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// KS statistic (sup of |F1 - F2|) of two ascending-sorted, NaN-free samples.
///
/// Evaluates both empirical CDFs at every observed value, as scipy does with
/// `searchsorted(side='right') / n`, so the float arithmetic is the same.
pub fn statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut max_pos = f64::NEG_INFINITY;
    let mut max_neg = f64::NEG_INFINITY;
    while i < a.len() || j < b.len() {
        // Next distinct value in the union; advance both past every copy of it.
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!("loop condition"),
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max_pos = max_pos.max(diff);
        max_neg = max_neg.max(-diff);
    }
    // scipy: minS = clip(-min(cddiffs), 0, 1); d = minS if minS > maxS else maxS.
    let min_s = max_neg.clamp(0.0, 1.0);
    if min_s > max_pos {
        min_s
    } else {
        max_pos
    }
}

/// Two-sided KS test on two ascending-sorted, NaN-free, non-empty samples.
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> KsResult {
    let d = statistic_sorted(a, b);
    ks_from_statistic(d, a.len(), b.len())
}

/// p-value (and scipy's snapped statistic) for a KS distance `d` between
/// samples of sizes `n1` and `n2`, choosing the method as scipy's `auto` does.
///
/// In exact mode scipy replaces `d` by the nearest attainable value `h / lcm`;
/// the returned statistic does the same.
pub fn ks_from_statistic(d: f64, n1: usize, n2: usize) -> KsResult {
    debug_assert!(n1 > 0 && n2 > 0);
    let mut d = d;
    if n1.max(n2) <= MAX_EXACT_N {
        let g = gcd(n1, n2);
        let lcm = (n1 / g) as f64 * n2 as f64;
        let h = (d * lcm).round_ties_even();
        d = h / lcm;
        if h == 0.0 {
            return KsResult {
                statistic: d,
                p_value: 1.0,
            };
        }
        let h = h as u64;
        let prob = if n1 == n2 {
            prob_outside_square(n1 as u64, h)
        } else {
            outer_prob_inside(n1 as u64, n2 as u64, g as u64, h)
        };
        if prob.is_finite() && (0.0..=1.0).contains(&prob) {
            return KsResult {
                statistic: d,
                p_value: prob,
            };
        }
        // scipy warns "Exact calculation unsuccessful" and goes on asymptotically.
    }
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = m * n / (m + n);
    let p = kolmogorov_sf(en.round_ties_even() as u64, d).clamp(0.0, 1.0);
    KsResult {
        statistic: d,
        p_value: p,
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// P(D_{n,n} >= h/n) for equal sample sizes: alternating sum of binomial ratios
/// evaluated Horner-style to avoid cancellation (scipy's
/// `_compute_prob_outside_square`).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as f64);
    let mut p = 0.0;
    let mut k = (n / h).floor();
    while k >= 0.0 {
        let mut p1 = 1.0;
        let mut j = 0.0;
        while j < h {
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1.0);
            j += 1.0;
        }
        p = p1 * (1.0 - p);
        k -= 1.0;
    }
    2.0 * p
}

/// Proportion of lattice paths from (0,0) to (m,n) that leave the band
/// |x/m - y/n| < h/lcm(m,n), i.e. the exact two-sided p-value for unequal sizes
/// (scipy's `_compute_outer_prob_inside_method`, Viehmann's recursion). Works
/// column by column on a sliding window, as the reference does.
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize).skip(minj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((ng * i - h).div_euclid(mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let (fi, fj) = (i as f64, j as f64);
            val = (a[(jj + minj - lastminj) as usize] * fi + val * fj) / (fi + fj);
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = (start + (lastlen - curlen) as usize).min(a.len());
            for v in &mut a[start..end] {
                *v = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

/// Ceiling of `a / b` for `b > 0` (`int(np.ceil(a / b))` in the reference).
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistic_of_disjoint_samples_is_one() {
        assert_eq!(statistic_sorted(&[1.0, 2.0], &[3.0, 4.0, 5.0]), 1.0);
    }

    #[test]
    fn statistic_handles_ties_across_samples() {
        // F1 jumps to 1 at 1.0 while F2 is at 2/3 there: D = 1/3.
        let d = statistic_sorted(&[1.0, 1.0], &[1.0, 1.0, 2.0]);
        assert!((d - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn identical_samples_give_zero_and_p_one() {
        let a = [0.5, 1.0, 1.5, 2.0];
        let r = ks_2samp_sorted(&a, &a);
        assert_eq!(
            r,
            KsResult {
                statistic: 0.0,
                p_value: 1.0
            }
        );
    }

    #[test]
    fn ceil_div_rounds_up_for_both_signs() {
        for (a, b, want) in [(7, 2, 4), (6, 2, 3), (-7, 2, -3), (0, 5, 0), (1, 5, 1)] {
            assert_eq!(ceil_div(a, b), want, "{a}/{b}");
        }
    }

    #[test]
    fn equal_size_exact_matches_textbook_value() {
        // n = 2, h = 2: both values of one sample below both of the other;
        // 2 of the C(4,2) = 6 orderings do it.
        assert!((prob_outside_square(2, 2) - 2.0 / 6.0).abs() < 1e-15);
    }
}
