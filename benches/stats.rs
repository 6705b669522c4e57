//! Criterion benchmarks of the drift-statistics kernels (issue 2).
//!
//!     cargo bench --bench stats
//!
//! Inputs are deterministic pseudo-random normal samples, sorted as the
//! report path sorts them; times include everything after sorting.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftd::sketch::quantile::{ks_distance, wasserstein_distance, QuantileFn};
use driftd::sketch::QuantileSummary;
use driftd::stats::{self, binned, kolmogorov, ks, wasserstein};
use driftd::testkit::XorShift;

/// Deterministic normal sample, sorted.
fn sample(n: usize, seed: u64, shift: f64) -> Vec<f64> {
    let mut rng = XorShift::new(seed);
    let mut v: Vec<f64> = (0..n).map(|_| rng.normal() + shift).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn bench_ks(c: &mut Criterion) {
    let mut g = c.benchmark_group("ks_2samp");
    for &(n1, n2) in &[
        (1_000usize, 800usize),
        (10_000, 7_000),
        (1_000_000, 1_000_000),
    ] {
        let a = sample(n1, 1, 0.0);
        let b = sample(n2, 2, 0.05);
        g.throughput(Throughput::Elements((n1 + n2) as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{n1}x{n2}")),
            &(a, b),
            |bench, (a, b)| bench.iter(|| ks::ks_2samp_sorted(a, b)),
        );
    }
    g.finish();
    let mut g = c.benchmark_group("ks_p_value");
    g.bench_function("exact_equal_n=5000", |b| {
        b.iter(|| ks::ks_from_statistic(0.03, 5000, 5000))
    });
    g.bench_function("exact_unequal_10000x7001", |b| {
        b.iter(|| ks::ks_from_statistic(0.02, 10_000, 7_001))
    });
    g.bench_function("kstwo_sf_n=500000_smirnov", |b| {
        b.iter(|| kolmogorov::kolmogorov_sf(500_000, 0.004))
    });
    g.bench_function("kstwo_sf_n=50000_durbin", |b| {
        b.iter(|| kolmogorov::kolmogorov_sf(50_000, 0.004))
    });
    g.finish();
}

fn bench_distances(c: &mut Criterion) {
    let a = sample(1_000_000, 3, 0.0);
    let b = sample(1_000_000, 4, 0.1);
    let mut g = c.benchmark_group("numeric_1M_vs_1M");
    g.sample_size(10);
    g.throughput(Throughput::Elements(2_000_000));
    g.bench_function("wasserstein", |bench| {
        bench.iter(|| wasserstein::wasserstein_sorted(&a, &b))
    });
    g.bench_function("decile_psi_js", |bench| {
        bench.iter(|| {
            let edges = binned::decile_edges(&a);
            stats::binned_tests(
                &binned::bin_counts(&edges, &a),
                &binned::bin_counts(&edges, &b),
            )
        })
    });
    g.bench_function("all_numeric_tests", |bench| {
        bench.iter(|| stats::numeric_tests_exact(&a, &b))
    });
    g.finish();

    let summary = QuantileSummary::from_sorted(&a, 2001, 2000);
    let cur = sample(100_000, 5, 0.1);
    let mut g = c.benchmark_group("from_profile_2000q_vs_100k");
    g.bench_function("ks_and_wasserstein", |bench| {
        bench.iter(|| {
            let qr = summary.quantile_fn();
            let qc = QuantileFn::from_sorted_sample(&cur);
            (ks_distance(&qr, &qc), wasserstein_distance(&qr, &qc))
        })
    });
    g.finish();
}

fn bench_categorical(c: &mut Criterion) {
    let reference: Vec<u64> = (0..50).map(|i| 1000 + (i * 37) % 500).collect();
    let current: Vec<u64> = (0..50).map(|i| 900 + (i * 53) % 700).collect();
    c.bench_function("categorical_tests_50_categories", |b| {
        b.iter(|| stats::categorical_tests(&reference, &current))
    });
}

criterion_group!(benches, bench_ks, bench_distances, bench_categorical);
criterion_main!(benches);
