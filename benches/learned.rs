//! Criterion benchmarks of the learned checks (issue 6): cost per window at
//! the default sample size (256 events a side), check by check and as the
//! whole job a window close hands to the worker thread.
//!
//!     cargo bench --bench learned

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use driftd::learned::window::Sampled;
use driftd::learned::{
    domain_classifier, embedding_drift, ClassifierSettings, LearnedJob, LearnedSettings,
};
use driftd::testkit::XorShift;

/// The default `learned.sample_size`.
const N: usize = 256;

fn vectors(n: usize, dims: usize, seed: u64, shift: f64) -> Vec<Vec<f64>> {
    let mut rng = XorShift::new(seed);
    (0..n)
        .map(|_| (0..dims).map(|_| rng.normal() + shift).collect())
        .collect()
}

fn bench_embedding(c: &mut Criterion) {
    let mut g = c.benchmark_group("embedding_drift");
    g.sample_size(10);
    // 256 reference and 256 current vectors, 100 permutations; 64 and 512
    // dimensions (CLIP's ViT-B/32 has 512).
    for dims in [64, 512] {
        let r = vectors(N, dims, 1, 0.0);
        let cur = vectors(N, dims, 2, 0.1);
        g.bench_with_input(
            BenchmarkId::new("256_vs_256_100_perms", dims),
            &dims,
            |b, _| b.iter(|| embedding_drift(&r, &cur, 100, 7).expect("valid")),
        );
    }
    g.finish();
}

fn bench_classifier(c: &mut Criterion) {
    let mut g = c.benchmark_group("domain_classifier");
    g.sample_size(10);
    // Tabular: 256 vs 256 rows of 8 features, interactions on (44 inputs),
    // 5 folds: the AUC alone (no permutations); with its permutation test on
    // a window without drift (the shuffles stop once drift is ruled out) and
    // on one with drift (all 100 run). Embeddings: 256 vs 256 vectors of
    // 512, linear, 5 folds, the AUC alone.
    let r = vectors(N, 8, 3, 0.0);
    let same = vectors(N, 8, 4, 0.0);
    let shifted = vectors(N, 8, 4, 0.3);
    let auc_only = ClassifierSettings {
        permutations: 0,
        ..Default::default()
    };
    g.bench_function("256_vs_256_8_features_interactions_auc_only", |b| {
        b.iter(|| domain_classifier(&r, &same, &auc_only).expect("valid"))
    });
    g.bench_function("256_vs_256_8_features_interactions_no_drift", |b| {
        b.iter(|| domain_classifier(&r, &same, &ClassifierSettings::default()).expect("valid"))
    });
    g.bench_function("256_vs_256_8_features_interactions_drift", |b| {
        b.iter(|| domain_classifier(&r, &shifted, &ClassifierSettings::default()).expect("valid"))
    });
    let r = vectors(N, 512, 5, 0.0);
    let cur = vectors(N, 512, 6, 0.1);
    let linear = ClassifierSettings {
        interactions: false,
        ..auc_only
    };
    g.bench_function("256_vs_256_512_dims_linear_auc_only", |b| {
        b.iter(|| domain_classifier(&r, &cur, &linear).expect("valid"))
    });
    g.finish();
}

/// Sampled events like the captioning service's: 8 numeric features, image
/// and caption embeddings of `dims`.
fn events(seed: u64, dims: usize) -> Vec<Sampled> {
    let mut rng = XorShift::new(seed);
    (0..N)
        .map(|_| {
            let numbers = (0..8).map(|i| (format!("f{i}"), rng.normal())).collect();
            let embeddings = ["caption", "image"]
                .iter()
                .map(|k| (k.to_string(), (0..dims).map(|_| rng.normal()).collect()))
                .collect();
            Sampled::new(numbers, embeddings)
        })
        .collect()
}

fn bench_window(c: &mut Criterion) {
    let mut g = c.benchmark_group("learned_window");
    g.sample_size(10);
    // What one window close costs the worker thread with the defaults: the
    // classifier on 8 features and MMD on two embeddings; then with the
    // embedding classifier on as well.
    for (name, embedding_classifier) in [("defaults", false), ("with_embedding_classifier", true)] {
        let job = LearnedJob {
            settings: LearnedSettings {
                enabled: true,
                embedding_classifier,
                ..Default::default()
            },
            columns: (0..8).map(|i| format!("f{i}")).collect(),
            reference: events(1, 512),
            reference_seen: 5000,
            current: events(2, 512),
            current_seen: 6000,
            seed: 3,
        };
        g.bench_function(format!("{name}_8_features_2x512_dims"), |b| {
            b.iter(|| job.run())
        });
    }
    g.finish();
}

/// One estimator training: 10,000 rated captions (the default
/// `max_examples`) of 14 inputs, 8,000 trained on, 2,000 held out.
fn bench_estimator(c: &mut Criterion) {
    use driftd::learned::estimator::{Estimator, EstimatorSettings, Example};
    let mut rng = XorShift::new(7);
    let s = EstimatorSettings {
        enabled: true,
        retrain_after: u64::MAX,
        ..Default::default()
    };
    let mut e = Estimator::default();
    for _ in 0..10_000 {
        let x: Vec<f64> = (0..14).map(|_| rng.uniform()).collect();
        let rating = 1.0 + 2.0 * x[0] - x[3] + 0.1 * rng.normal();
        e.add(Example { x, rating }, 0, &s);
    }
    let mut g = c.benchmark_group("quality_estimator");
    g.sample_size(20);
    g.bench_function("train_10000_ratings_14_inputs", |b| {
        b.iter(|| e.train(0, "bench", &s).map(|v| v.validation_rmse))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_embedding,
    bench_classifier,
    bench_window,
    bench_estimator
);
criterion_main!(benches);
