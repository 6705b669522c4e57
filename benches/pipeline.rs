//! Criterion benchmarks of the streaming path (issue 4): decode, track and
//! caption descriptors for the default generated event (8 features, one
//! caption, no embeddings), on one core.
//!
//!     cargo bench --bench pipeline

use std::collections::BTreeMap;

/// The binary's allocator, so the figures are the daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use driftd::config::Config;
use driftd::event::Decoder;
use driftd::monitor::engine::Engine;
use driftd::quality::Vocabulary;
use driftd::source::generate::{generate, GenerateSpec, Scenario};

fn events(n: u64, seed: u64) -> Vec<Vec<u8>> {
    let mut spec = GenerateSpec::new(Scenario::Stable, n);
    spec.seed = seed;
    let mut out = Vec::new();
    generate(&spec, &mut out).expect("in memory");
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = events(100_000, 1);
    let config = Config::default();
    let mut g = c.benchmark_group("pipeline_100k_events");
    g.sample_size(10);
    g.throughput(Throughput::Elements(lines.len() as u64));
    let decoder = Decoder::new(&config);
    g.bench_function("decode", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| decoder.decode_inference(l).is_ok())
                .count()
        })
    });
    // The caption part of the path on its own: tokenize and describe.
    let vocab = Vocabulary::english();
    let captions: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let e = decoder.decode_inference(l).ok()?;
            e.prediction
                .iter()
                .find(|(k, _)| k == "caption")
                .and_then(|(_, v)| match v {
                    driftd::event::FeatureValue::Category(c) => Some(c.to_string()),
                    _ => None,
                })
        })
        .collect();
    g.bench_function("caption_facts", |b| {
        b.iter(|| {
            captions
                .iter()
                .map(|c| {
                    driftd::quality::CaptionFacts::of(c, &vocab)
                        .descriptors
                        .token_count
                })
                .sum::<usize>()
        })
    });
    g.bench_function("decode_track_describe", |b| {
        b.iter_batched(
            || {
                // An engine whose baseline is learned already (5,000 events).
                let mut e = Engine::new(config.clone(), Vocabulary::english(), BTreeMap::new());
                for l in events(5_000, 2).iter() {
                    let _ = e.process(l);
                }
                e
            },
            |mut e| {
                let mut windows = 0;
                for l in &lines {
                    windows += e.process(l).map(|w| w.len()).unwrap_or(0);
                }
                windows
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
