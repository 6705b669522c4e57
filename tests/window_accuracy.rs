//! Window trackers against exact statistics on the same data (issue 4): KS
//! and normalized Wasserstein from the reference profile and the window's
//! bounded sketch within 0.01 and 2 % of the exact values (normal, lognormal,
//! uniform and tied-integer data, shifts from 0.05 sd, scale changes); PSI, JS
//! and chi-square identical to the exact values; tracker memory flat and under
//! 32 KiB.

use std::collections::BTreeMap;

use driftd::baseline::{FeatureData, FeatureProfile};
use driftd::config::FeatureKind;
use driftd::event::FeatureValue;
use driftd::monitor::evaluate::Tests;
use driftd::monitor::tracker::FeatureTracker;
use driftd::sketch::CategoryCounts;
use driftd::stats;
use driftd::testkit::XorShift;

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

type Gen = fn(&mut XorShift, f64, f64) -> f64;

#[test]
fn numeric_window_statistics_are_within_tolerance() {
    let families: [(&str, Gen); 4] = [
        ("normal", |r, shift, scale| r.normal() * scale + shift),
        ("lognormal", |r, shift, scale| {
            (r.normal() * 0.8 * scale + shift).exp()
        }),
        ("uniform", |r, shift, scale| {
            r.uniform() * 10.0 * scale + 10.0 * shift
        }),
        ("integers", |r, shift, scale| {
            (r.uniform() * 20.0 * scale + 20.0 * shift).floor()
        }),
    ];
    let mut worst_ks = 0.0f64;
    let mut worst_w = 0.0f64;
    let mut lines = Vec::new();
    for (fi, (family, gen)) in families.iter().enumerate() {
        let mut rng = XorShift::new(77 + fi as u64);
        let reference = sorted((0..50_000).map(|_| gen(&mut rng, 0.0, 1.0)).collect());
        let data = FeatureData::Numeric {
            values: reference.clone(),
            missing: 0,
            source: FeatureKind::Numeric,
        };
        let profile = FeatureProfile::from_data(&data).unwrap();
        for (shift, scale) in [
            (0.05, 1.0),
            (0.1, 1.0),
            (0.3, 1.0),
            (1.0, 1.0),
            (0.0, 1.5),
            (0.2, 0.8),
        ] {
            let window: Vec<f64> = (0..200_000).map(|_| gen(&mut rng, shift, scale)).collect();
            let mut t = FeatureTracker::for_profile(&profile);
            for &x in &window {
                t.observe(&FeatureValue::Number(x), &profile);
            }
            let Tests::Numeric(got) = t.compare(&profile).unwrap().tests else {
                panic!()
            };
            let exact = stats::numeric_tests_exact(&reference, &sorted(window));
            let ks_err = (got.ks.statistic - exact.ks.statistic).abs();
            let w_rel = (got.wasserstein.normalized - exact.wasserstein.normalized).abs()
                / exact.wasserstein.normalized;
            worst_ks = worst_ks.max(ks_err);
            worst_w = worst_w.max(w_rel);
            lines.push(format!(
                "{family:>9} shift {shift} scale {scale}: KS {:.5} vs {:.5}; W {:.5} vs {:.5} ({:.3} %)",
                got.ks.statistic, exact.ks.statistic, got.wasserstein.normalized, exact.wasserstein.normalized, w_rel * 100.0
            ));
            // Binned tests use the baseline's bins exactly.
            assert!((got.psi.value - exact.psi.value).abs() <= 1e-12 * exact.psi.value.max(1.0));
            assert!((got.jensen_shannon.distance - exact.jensen_shannon.distance).abs() <= 1e-12);
        }
    }
    println!(
        "{}\nworst KS error {worst_ks:.2e}, worst W error {:.3} %",
        lines.join("\n"),
        worst_w * 100.0
    );
    assert!(worst_ks <= 0.01, "{}", lines.join("\n"));
    assert!(worst_w <= 0.02, "{}", lines.join("\n"));
}

#[test]
fn categorical_window_statistics_are_exact() {
    let mut reference = CategoryCounts::default();
    for (k, n) in [("mobile", 550), ("web", 350), ("scanner", 100)] {
        reference.add(k, n);
    }
    let profile = FeatureProfile::from_data(&FeatureData::Categorical {
        counts: reference.clone(),
        missing: 0,
    })
    .unwrap();
    let mut t = FeatureTracker::for_profile(&profile);
    let mut current = CategoryCounts::default();
    for (k, n) in [
        ("mobile", 300),
        ("web", 300),
        ("scanner", 400),
        ("tablet", 5),
    ] {
        for _ in 0..n {
            t.observe(&FeatureValue::Category(k.into()), &profile);
        }
        current.add(k, n);
    }
    let Tests::Categorical(got) = t.compare(&profile).unwrap().tests else {
        panic!()
    };
    let (_, a, b) = reference.aligned(&current);
    assert_eq!(got, stats::categorical_tests(&a, &b));
}

#[test]
fn tracker_memory_is_flat_and_bounded() {
    let mut rng = XorShift::new(5);
    let reference = sorted((0..10_000).map(|_| rng.normal()).collect());
    let profile = FeatureProfile::from_data(&FeatureData::Numeric {
        values: reference,
        missing: 0,
        source: FeatureKind::Numeric,
    })
    .unwrap();
    let mut t = FeatureTracker::for_profile(&profile);
    let mut sizes = BTreeMap::new();
    for i in 1..=10_000_000u64 {
        t.observe(&FeatureValue::Number(rng.normal()), &profile);
        if i == 1_000_000 || i == 10_000_000 {
            sizes.insert(i, t.memory_bytes());
        }
    }
    let (m1, m10) = (sizes[&1_000_000], sizes[&10_000_000]);
    println!("tracker memory after 1M values: {m1} B, after 10M: {m10} B");
    assert!(m10 <= 32 * 1024, "{m10} bytes");
    assert!((m10 as f64) <= 1.1 * m1 as f64, "{m1} -> {m10}");

    // A high-cardinality categorical feature is capped too.
    let mut counts = CategoryCounts::default();
    counts.add("a", 1);
    let cat = FeatureProfile::from_data(&FeatureData::Categorical { counts, missing: 0 }).unwrap();
    let mut t = FeatureTracker::for_profile(&cat);
    for i in 0..100_000 {
        t.observe(&FeatureValue::Category(format!("user-{i}").into()), &cat);
    }
    assert!(t.memory_bytes() <= 32 * 1024, "{} bytes", t.memory_bytes());
    assert_eq!(
        t.counts().0,
        100_000,
        "nothing is dropped: the overflow is counted under __other__"
    );
}
