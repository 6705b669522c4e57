//! KS and normalized Wasserstein computed from a reference profile's quantile
//! summary against the exact values from the raw reference (issue 2: within
//! 0.01 and 2 %).
//!
//! References have 50,000 values, so profiles hold the interpolated summary
//! (2,001 quantiles), not the raw sample.

use driftd::baseline::{FeatureData, FeatureProfile};
use driftd::config::FeatureKind;
use driftd::sketch::quantile::{ks_distance, wasserstein_distance, QuantileFn};
use driftd::stats::{self, WassersteinResult};
use driftd::testkit::XorShift as Rng;

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

type Gen = fn(&mut Rng, f64) -> f64;

#[test]
fn profile_statistics_are_within_issue_tolerances() {
    let families: [(&str, Gen); 6] = [
        ("normal", |r, s| r.normal() + s),
        ("scaled_normal", |r, s| r.normal() * (1.0 + s)),
        ("lognormal", |r, s| (r.normal() * 1.2 + s).exp()),
        ("uniform", |r, s| r.uniform() * 10.0 + s * 10.0),
        ("integers_with_ties", |r, s| {
            (r.uniform() * (10.0 + 20.0 * s)).floor()
        }),
        ("cauchy", |r, s| {
            (std::f64::consts::PI * (r.uniform() - 0.5)).tan() + s
        }),
    ];
    let shifts = [0.0, 0.02, 0.1, 0.3, 1.0];
    let mut worst_ks = 0.0f64;
    let mut worst_w_rel = 0.0f64;
    let mut report = Vec::new();
    for (fi, (family, gen)) in families.iter().enumerate() {
        let mut rng = Rng::new(0x5EED + fi as u64);
        let reference = sorted((0..50_000).map(|_| gen(&mut rng, 0.0)).collect());
        let data = FeatureData::Numeric {
            values: reference.clone(),
            missing: 0,
            source: FeatureKind::Numeric,
        };
        let Some(FeatureProfile::Numeric(profile)) = FeatureProfile::from_data(&data) else {
            panic!()
        };
        assert!(!profile.quantiles.is_exact());
        let size = serde_json::to_string(&profile).unwrap().len();
        report.push(format!("{family:>18}: profile {size} bytes of JSON"));
        // Bounded size: at most a few thousand kept ranks for 50,000 values.
        assert!(size < 300_000, "{family}: profile is {size} bytes");
        for &shift in &shifts {
            let current = sorted((0..20_000).map(|_| gen(&mut rng, shift)).collect());
            let exact = stats::numeric_tests_exact(&reference, &current);
            let qr = profile.quantiles.quantile_fn();
            let qc = QuantileFn::from_sorted_sample(&current);
            let ks = ks_distance(&qr, &qc);
            let w = WassersteinResult::new(wasserstein_distance(&qr, &qc), profile.std);
            let ks_err = (ks - exact.ks.statistic).abs();
            let w_rel =
                (w.normalized - exact.wasserstein.normalized).abs() / exact.wasserstein.normalized;
            worst_ks = worst_ks.max(ks_err);
            worst_w_rel = worst_w_rel.max(w_rel);
            report.push(format!(
                "{family:>18} shift {shift:<4}: KS {:.5} vs {:.5} (err {ks_err:.2e}); W_norm {:.5} vs {:.5} (rel err {:.3}%)",
                ks,
                exact.ks.statistic,
                w.normalized,
                exact.wasserstein.normalized,
                w_rel * 100.0
            ));
        }
    }
    println!("{}", report.join("\n"));
    println!(
        "worst KS abs error {worst_ks:.2e}; worst normalized-Wasserstein rel error {:.3}%",
        worst_w_rel * 100.0
    );
    assert!(
        worst_ks <= 0.01,
        "KS error {worst_ks}\n{}",
        report.join("\n")
    );
    assert!(
        worst_w_rel <= 0.02,
        "Wasserstein rel error {worst_w_rel}\n{}",
        report.join("\n")
    );
}
