//! Invariants of the drift statistics (issue 2), checked on random inputs.

use driftd::stats::{self, binned, ks};
use proptest::prelude::*;

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Samples with plenty of ties: values on a coarse grid.
fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-40i32..40).prop_map(|v| f64::from(v) / 4.0), 1..120)
}

fn counts() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
    (1usize..12).prop_flat_map(|k| {
        (
            prop::collection::vec(0u64..500, k),
            prop::collection::vec(0u64..500, k),
        )
            .prop_map(|(mut a, mut b)| {
                // Every category needs a count on at least one side, and each side a total.
                for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                    if *x + *y == 0 {
                        *x = 1;
                    }
                }
                if b.iter().sum::<u64>() == 0 {
                    b[0] = 1;
                }
                if a.iter().sum::<u64>() == 0 {
                    a[0] = 1;
                }
                (a, b)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn numeric_bounds_and_symmetry(a in sample(), b in sample()) {
        let (a, b) = (sorted(a), sorted(b));
        let t = stats::numeric_tests_exact(&a, &b);
        prop_assert!(t.psi.value >= 0.0, "psi {}", t.psi.value);
        prop_assert!((0.0..=1.0).contains(&t.jensen_shannon.distance));
        prop_assert!((0.0..=1.0).contains(&t.ks.statistic));
        prop_assert!((0.0..=1.0).contains(&t.ks.p_value));
        prop_assert!(t.wasserstein.distance >= 0.0 && t.wasserstein.normalized >= 0.0);
        // KS (statistic and p-value) and W1 are symmetric in the two samples.
        let r = ks::ks_2samp_sorted(&b, &a);
        prop_assert_eq!(r.statistic, t.ks.statistic);
        prop_assert!((r.p_value - t.ks.p_value).abs() <= 1e-12);
        let w = stats::wasserstein::wasserstein_sorted(&b, &a);
        prop_assert!((w - t.wasserstein.distance).abs() <= 1e-12 * w.max(1.0));
        // JS is symmetric in the two proportion vectors.
        let edges = binned::decile_edges(&a);
        let (pa, pb) = (binned::proportions(&binned::bin_counts(&edges, &a)), binned::proportions(&binned::bin_counts(&edges, &b)));
        prop_assert!((binned::jensen_shannon(&pa, &pb) - binned::jensen_shannon(&pb, &pa)).abs() <= 1e-15);
        prop_assert!((binned::psi(&pa, &pb) - binned::psi(&pb, &pa)).abs() <= 1e-12);
    }

    #[test]
    fn identical_samples_show_no_drift(a in sample()) {
        let a = sorted(a);
        let t = stats::numeric_tests_exact(&a, &a);
        prop_assert_eq!(t.ks.statistic, 0.0);
        prop_assert_eq!(t.ks.p_value, 1.0);
        prop_assert_eq!(t.wasserstein.distance, 0.0);
        prop_assert_eq!(t.psi.value, 0.0);
        prop_assert_eq!(t.jensen_shannon.distance, 0.0);
    }

    #[test]
    fn categorical_bounds_and_symmetry((a, b) in counts()) {
        let t = stats::categorical_tests(&a, &b);
        prop_assert!(t.chi_square.statistic >= 0.0);
        prop_assert!((0.0..=1.0).contains(&t.chi_square.p_value));
        prop_assert!(t.psi.value >= 0.0);
        prop_assert!((0.0..=1.0).contains(&t.jensen_shannon.distance));
        let r = stats::categorical_tests(&b, &a);
        prop_assert!((r.chi_square.statistic - t.chi_square.statistic).abs() <= 1e-9 * t.chi_square.statistic.max(1.0));
        prop_assert_eq!(r.chi_square.dof, t.chi_square.dof);
        prop_assert!((r.jensen_shannon.distance - t.jensen_shannon.distance).abs() <= 1e-15);
    }

    #[test]
    fn identical_counts_show_no_drift(a in prop::collection::vec(1u64..1000, 1..20)) {
        let t = stats::categorical_tests(&a, &a);
        prop_assert_eq!(t.chi_square.statistic, 0.0);
        prop_assert_eq!(t.chi_square.p_value, 1.0);
        prop_assert_eq!(t.psi.value, 0.0);
        prop_assert_eq!(t.jensen_shannon.distance, 0.0);
    }

    #[test]
    fn exact_ks_p_value_is_monotone_in_d(n1 in 1usize..300, n2 in 1usize..300) {
        // Larger distances are never more likely under the null.
        let mut last = 1.0;
        for i in 0..=20 {
            let p = ks::ks_from_statistic(i as f64 / 20.0, n1, n2).p_value;
            prop_assert!(p <= last + 1e-12, "n1={} n2={} d={} p={} last={}", n1, n2, i as f64 / 20.0, p, last);
            last = p;
        }
    }
}
