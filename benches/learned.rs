//! Criterion benchmarks of the learned checks (issue 6): cost per window at
//! the default sample sizes.
//!
//!     cargo bench --bench learned

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use driftd::learned::{domain_classifier, embedding_drift, ClassifierSettings};
use driftd::testkit::XorShift;

fn vectors(n: usize, dims: usize, seed: u64, shift: f64) -> Vec<Vec<f64>> {
    let mut rng = XorShift::new(seed);
    (0..n)
        .map(|_| (0..dims).map(|_| rng.normal() + shift).collect())
        .collect()
}

fn bench_embedding(c: &mut Criterion) {
    let mut g = c.benchmark_group("embedding_drift");
    g.sample_size(10);
    // 200 reference and 200 current vectors, 100 permutations; 64 and 512
    // dimensions (CLIP's ViT-B/32 has 512).
    for dims in [64, 512] {
        let r = vectors(200, dims, 1, 0.0);
        let cur = vectors(200, dims, 2, 0.1);
        g.bench_with_input(
            BenchmarkId::new("200_vs_200_100_perms", dims),
            &dims,
            |b, _| b.iter(|| embedding_drift(&r, &cur, 100, 7).expect("valid")),
        );
    }
    g.finish();
}

fn bench_classifier(c: &mut Criterion) {
    let mut g = c.benchmark_group("domain_classifier");
    g.sample_size(10);
    // Tabular: 500 vs 500 rows of 8 features, interactions on (44 inputs),
    // 5 folds. Embeddings: 200 vs 200 vectors of 512, linear, 5 folds.
    let r = vectors(500, 8, 3, 0.0);
    let cur = vectors(500, 8, 4, 0.1);
    g.bench_function("500_vs_500_8_features_interactions", |b| {
        b.iter(|| domain_classifier(&r, &cur, &ClassifierSettings::default()).expect("valid"))
    });
    let r = vectors(200, 512, 5, 0.0);
    let cur = vectors(200, 512, 6, 0.1);
    let linear = ClassifierSettings {
        interactions: false,
        ..Default::default()
    };
    g.bench_function("200_vs_200_512_dims_linear", |b| {
        b.iter(|| domain_classifier(&r, &cur, &linear).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, bench_embedding, bench_classifier);
criterion_main!(benches);
