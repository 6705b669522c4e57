//! The learned checks' false-alarm rates on stationary streams, and their
//! detection of a correlation flip and an embedding shift (docs/learned-checks.md).
//!
//! Each stream: a reference of 5,000 events (the default `learn_events`) kept
//! in a reservoir of `reference_size`, then windows of 1,500 events sampled to
//! `sample_size`, every window judged by the same code as the daemon's
//! ([`LearnedJob`]). An event has two numeric features correlated 0.6, a
//! discrete one (0 to 4) and two 16-dimensional embeddings.
//!
//!     cargo run --release --example learned_calibration -- [STREAMS] [WINDOWS] [MODE]
//!
//! MODE `current` (the defaults), `fixed` (one reference sample of
//! `sample_size` compared with every window and the classifier flagging at
//! AUC 0.55, as before the reference pool and the permutation test), or
//! `detect` and `detect-fixed` (the same, every window after a change: the
//! correlation flips from 0.6 to -0.6 and the caption embedding's mean moves
//! by 0.25 sd in every dimension).

use std::collections::BTreeMap;
use std::time::Instant;

use driftd::learned::window::{draw, sample_seed, LearnedJob, LearnedSettings, Sampled};
use driftd::learned::Reservoir;
use driftd::testkit::XorShift;

const DIMS: usize = 16;
const REFERENCE_EVENTS: usize = 5_000;
const WINDOW_EVENTS: usize = 1_500;

/// What changes in the windows of `detect`.
#[derive(Clone, Copy)]
struct Change {
    /// Correlation of the two numeric features.
    rho: f64,
    /// Mean shift of the caption embedding, in its per-dimension sd.
    shift: f64,
}

const STABLE: Change = Change {
    rho: 0.6,
    shift: 0.0,
};

fn event(rng: &mut XorShift, c: Change) -> Sampled {
    let (a, z) = (rng.normal(), rng.normal());
    let b = c.rho * a + (1.0 - c.rho * c.rho).sqrt() * z;
    let k = (rng.uniform() * 5.0).floor();
    // Dimension d has sd 1 / (1 + d / 4): most spread in a few directions.
    let mut vector = |shift: f64| -> Vec<f64> {
        (0..DIMS)
            .map(|d| {
                let sd = 1.0 / (1.0 + d as f64 / 4.0);
                sd * (rng.normal() + shift)
            })
            .collect()
    };
    let image = vector(0.0);
    let caption = vector(c.shift);
    Sampled::new(
        vec![("a".into(), a), ("b".into(), b), ("k".into(), k)],
        vec![("caption".into(), caption), ("image".into(), image)],
    )
}

struct Verdicts {
    classifier: Vec<bool>,
    /// Both embeddings' verdicts.
    mmd: Vec<bool>,
    aucs: Vec<f64>,
    /// Label shuffles the classifier ran.
    shuffles: usize,
    /// Per embedding: verdicts and p-values.
    by_embedding: BTreeMap<String, (Vec<bool>, Vec<f64>)>,
}

/// `fixed_auc`: judge the classifier by this AUC alone (as before its
/// permutation test).
fn stream(
    s: u64,
    windows: u64,
    settings: &LearnedSettings,
    change: Change,
    fixed_auc: Option<f64>,
) -> Verdicts {
    let mut rng = XorShift::new(0xca1 + s);
    let version = format!("stream-{s}");
    let mut pool = Reservoir::new(
        settings.reference_size,
        sample_seed(settings, "m", &version, u64::MAX),
    );
    for _ in 0..REFERENCE_EVENTS {
        pool.offer(event(&mut rng, STABLE));
    }
    let mut v = Verdicts {
        classifier: Vec::new(),
        mmd: Vec::new(),
        aucs: Vec::new(),
        shuffles: 0,
        by_embedding: BTreeMap::new(),
    };
    for w in 0..windows {
        let seed = sample_seed(settings, "m", &version, w);
        let mut current = Reservoir::new(settings.sample_size, seed);
        for _ in 0..WINDOW_EVENTS {
            current.offer(event(&mut rng, change));
        }
        let job = LearnedJob {
            settings: settings.clone(),
            columns: vec!["a".into(), "b".into(), "k".into()],
            reference: draw(pool.items(), settings.sample_size, !seed),
            reference_seen: pool.seen(),
            current_seen: current.seen(),
            current: current.into_items(),
            seed,
        };
        let r = job.run();
        let c = r.classifier.and_then(|c| c.result).expect("a verdict");
        v.classifier.push(fixed_auc.map_or(c.drift, |t| c.auc >= t));
        v.aucs.push(c.auc);
        v.shuffles += c.permutations;
        for (name, e) in &r.embeddings {
            v.mmd.push(e.drift);
            let slot = v.by_embedding.entry(name.clone()).or_default();
            slot.0.push(e.drift);
            slot.1.push(e.mmd.as_ref().map_or(f64::NAN, |m| m.p_value));
        }
    }
    v
}

fn share(xs: &[bool]) -> f64 {
    xs.iter().filter(|&&x| x).count() as f64 / xs.len() as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let streams: u64 = args.get(1).map_or(40, |a| a.parse().expect("STREAMS"));
    let windows: u64 = args.get(2).map_or(60, |a| a.parse().expect("WINDOWS"));
    let mode = args.get(3).map_or("current", String::as_str);
    let mut settings = LearnedSettings {
        enabled: true,
        ..LearnedSettings::default()
    };
    let mut change = STABLE;
    let fixed = mode.ends_with("fixed");
    if fixed {
        settings.reference_size = settings.sample_size;
        // The p-value is not read: stop its permutations at once.
        settings.classifier_alpha = 1e-3;
    }
    match mode {
        "current" | "fixed" => {}
        "detect" | "detect-fixed" => {
            change = Change {
                rho: -0.6,
                shift: 0.25,
            };
        }
        other => panic!("unknown mode {other:?}: current, fixed, detect or detect-fixed"),
    }
    let fixed_auc = fixed.then_some(0.55);
    // The fixed AUC threshold has no level of its own: 5 %, as MMD's.
    let nominal = (0.05, settings.mmd_alpha);
    println!(
        "{streams} streams x {windows} windows of {WINDOW_EVENTS} events, mode {mode}: \
         sample {} of a reference pool of {} (of {REFERENCE_EVENTS} events), {} permutations",
        settings.sample_size, settings.reference_size, settings.permutations
    );
    let started = Instant::now();
    let (mut all_c, mut all_m, mut aucs) = (Vec::new(), Vec::new(), Vec::new());
    let mut by_embedding: BTreeMap<String, (Vec<bool>, Vec<f64>)> = BTreeMap::new();
    let mut shuffles = 0;
    let (mut per_c, mut per_m) = (Vec::new(), Vec::new());
    for s in 0..streams {
        let v = stream(s, windows, &settings, change, fixed_auc);
        per_c.push(share(&v.classifier));
        per_m.push(share(&v.mmd));
        all_c.extend(v.classifier);
        all_m.extend(v.mmd);
        aucs.extend(v.aucs);
        shuffles += v.shuffles;
        for (name, (d, p)) in v.by_embedding {
            let slot = by_embedding.entry(name).or_default();
            slot.0.extend(d);
            slot.1.extend(p);
        }
    }
    let worst = |xs: &[f64]| xs.iter().copied().fold(0.0, f64::max);
    let mut sorted_c = per_c.clone();
    sorted_c.sort_by(f64::total_cmp);
    let mut sorted_m = per_m.clone();
    sorted_m.sort_by(f64::total_cmp);
    println!(
        "classifier: flagged {:.2} % of {} windows; worst stream {:.1} %; \
         per stream {:?}; median AUC {:.3}; {:.1} label shuffles a window",
        100.0 * share(&all_c),
        all_c.len(),
        100.0 * worst(&per_c),
        sorted_c
            .iter()
            .map(|x| (x * windows as f64).round() as u64)
            .collect::<Vec<_>>(),
        median(aucs),
        shuffles as f64 / all_c.len() as f64,
    );
    println!(
        "mmd: flagged {:.2} % of {} embedding-windows; worst stream {:.1} %; \
         per stream (of {}) {:?}",
        100.0 * share(&all_m),
        all_m.len(),
        100.0 * worst(&per_m),
        2 * windows,
        sorted_m
            .iter()
            .map(|x| (x * 2.0 * windows as f64).round() as u64)
            .collect::<Vec<_>>(),
    );
    for (name, (d, p)) in by_embedding {
        println!(
            "  {name}: flagged {:.2} %, median p {:.3}",
            100.0 * share(&d),
            median(p)
        );
    }
    if !mode.starts_with("detect") {
        println!(
            "against nominal (classifier {}, mmd {}): overall {:.2}x and {:.2}x; worst stream {:.2}x and {:.2}x",
            nominal.0,
            nominal.1,
            share(&all_c) / nominal.0,
            share(&all_m) / nominal.1,
            worst(&per_c) / nominal.0,
            worst(&per_m) / nominal.1,
        );
    }
    println!("{:.0} s", started.elapsed().as_secs_f64());
}
