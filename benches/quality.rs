//! Criterion benchmarks of the caption-quality kernels (issue 3).
//!
//!     cargo bench --bench quality
//!
//! Captions come from a template grammar (deterministic); ten words each for
//! the descriptor benchmark, 5,000 images x 5 references for the corpus metrics.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use driftd::quality::ngrams::{Interner, NgramCounts};
use driftd::quality::{
    bleu, cider, describe, rouge, score_set, tokenize, CaptionInput, DfSource, DocumentFrequency,
    Vocabulary,
};
use driftd::testkit::XorShift;

const SUBJECTS: [&str; 8] = [
    "a man", "a woman", "a dog", "two dogs", "a cat", "a child", "a train", "a bus",
];
const VERBS: [&str; 6] = [
    "riding",
    "sitting on",
    "standing near",
    "looking at",
    "walking past",
    "playing with",
];
const OBJECTS: [&str; 8] = [
    "a bike",
    "a bench",
    "a red car",
    "a ball",
    "a table",
    "a tall building",
    "the beach",
    "a busy street",
];
const EXTRAS: [&str; 6] = [
    "in the park",
    "on a sunny day",
    "at night",
    "in the snow",
    "near the water",
    "with friends",
];

fn pick<'a>(rng: &mut XorShift, xs: &[&'a str]) -> &'a str {
    xs[((rng.uniform() * xs.len() as f64) as usize).min(xs.len() - 1)]
}

fn caption(rng: &mut XorShift) -> String {
    format!(
        "{} {} {} {}",
        pick(rng, &SUBJECTS),
        pick(rng, &VERBS),
        pick(rng, &OBJECTS),
        pick(rng, &EXTRAS)
    )
}

/// Exactly ten tokens.
fn ten_words(rng: &mut XorShift) -> String {
    let mut words: Vec<String> = caption(rng).split(' ').map(str::to_owned).collect();
    while words.len() < 10 {
        words.push(pick(rng, &["small", "old", "big", "happy"]).to_owned());
    }
    words.truncate(10);
    words.join(" ")
}

fn corpus(rng: &mut XorShift) -> Vec<CaptionInput> {
    (0..5000)
        .map(|i| CaptionInput {
            id: i.to_string(),
            candidate: caption(rng),
            references: (0..5).map(|_| caption(rng)).collect(),
            ..Default::default()
        })
        .collect()
}

fn bench_descriptors(c: &mut Criterion) {
    let mut rng = XorShift::new(1);
    let captions: Vec<String> = (0..10_000).map(|_| ten_words(&mut rng)).collect();
    let vocab = Vocabulary::english();
    let mut g = c.benchmark_group("descriptors");
    g.throughput(Throughput::Elements(captions.len() as u64));
    g.bench_function("tokenize_and_describe_10_word_captions", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for cap in &captions {
                let t = tokenize(cap);
                let tokens: Vec<&str> = t.split(' ').collect();
                sum += describe(&tokens, &vocab).token_count;
            }
            sum
        })
    });
    g.finish();
}

fn bench_corpus(c: &mut Criterion) {
    let mut rng = XorShift::new(2);
    let items = corpus(&mut rng);
    let mut g = c.benchmark_group("corpus_5000x5");
    g.sample_size(10);
    g.bench_function("cider_d_with_document_frequencies", |b| {
        b.iter(|| {
            let mut interner = Interner::default();
            let cands: Vec<NgramCounts> = items
                .iter()
                .map(|i| NgramCounts::new(&interner.ids(&tokenize(&i.candidate))))
                .collect();
            let refs: Vec<Vec<NgramCounts>> = items
                .iter()
                .map(|i| {
                    i.references
                        .iter()
                        .map(|r| NgramCounts::new(&interner.ids(&tokenize(r))))
                        .collect()
                })
                .collect();
            let df = DocumentFrequency::from_references(refs.iter().map(Vec::as_slice));
            cands
                .iter()
                .zip(&refs)
                .map(|(c, r)| cider::cider_d(c, r, &df))
                .sum::<f64>()
        })
    });
    g.bench_function("bleu_1_to_4", |b| {
        b.iter(|| {
            let mut interner = Interner::default();
            let stats: Vec<_> = items
                .iter()
                .map(|i| {
                    let c = NgramCounts::new(&interner.ids(&tokenize(&i.candidate)));
                    let r: Vec<NgramCounts> = i
                        .references
                        .iter()
                        .map(|r| NgramCounts::new(&interner.ids(&tokenize(r))))
                        .collect();
                    bleu::bleu_stats(&c, &r)
                })
                .collect();
            bleu::corpus_bleu(&stats)
        })
    });
    g.bench_function("rouge_l", |b| {
        b.iter(|| {
            items
                .iter()
                .map(|i| {
                    let refs: Vec<String> = i
                        .references
                        .iter()
                        .map(|r| tokenize(r).into_owned())
                        .collect();
                    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
                    rouge::rouge_l(&tokenize(&i.candidate), &refs)
                })
                .sum::<f64>()
        })
    });
    let vocab = Vocabulary::english();
    g.bench_function("score_set_everything", |b| {
        b.iter(|| {
            score_set(&items, &vocab, DfSource::ScoredSet)
                .unwrap()
                .corpus
                .reference
                .cider_d
        })
    });
    g.finish();
}

criterion_group!(benches, bench_descriptors, bench_corpus);
criterion_main!(benches);
