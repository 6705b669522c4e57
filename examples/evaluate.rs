//! How driftd's detectors do on generated streams where the truth is known
//! (docs/evaluation.md): per scenario and detector, false alarms per 1,000
//! windows without a change and the delay, in windows, to the first alarm
//! after one.
//!
//!     cargo run --release --example evaluate -- [SEEDS] [SCENARIO...]
//!
//! Each stream runs through the engine and the rules with the shipped
//! `config/driftd.toml` and the learned checks on: 5 events a second, 5-minute
//! windows of 1,500 events, a baseline learned from the first 5,000 events
//! (for `daily-cycle`, from a whole day), then 30 windows before the change
//! and 30 after (`stable` and `daily-cycle`: 60 and 576 windows, no change).

use std::time::Instant;

use driftd::config::Config;
use driftd::monitor::{Engine, WindowReport};
use driftd::quality::Vocabulary;
use driftd::rules::{Decider, Outcome};
use driftd::source::generate::{GenerateSpec, Scenario};

const RATE: f64 = 5.0;
const WINDOW_EVENTS: u64 = 1_500;
const LEARN_EVENTS: u64 = 5_000;
const DAY_EVENTS: u64 = 432_000;

/// What flags a window.
const DETECTORS: [&str; 7] = [
    "feature test (any)",
    "dataset drift share",
    "domain classifier",
    "embedding MMD",
    "data quality",
    "rule drift-retrain",
    "rule captions-rot",
];

fn flags(w: &WindowReport, fired: &[String]) -> [bool; 7] {
    let learned = w.learned.as_ref();
    [
        w.drift.features.iter().any(|f| f.drift),
        w.drift.dataset.drift,
        learned
            .and_then(|l| l.classifier.as_ref())
            .and_then(|c| c.result.as_ref())
            .is_some_and(|r| r.drift),
        learned.is_some_and(|l| l.embeddings.values().any(|e| e.drift)),
        w.data_quality.issues > 0,
        fired.iter().any(|r| r == "drift-retrain"),
        fired.iter().any(|r| r == "captions-rot"),
    ]
}

struct Plan {
    scenario: Scenario,
    /// Events learned as the baseline.
    learn: u64,
    /// Windows before the change and after it (0 after: no change).
    before: u64,
    after: u64,
}

fn plan(scenario: Scenario) -> Plan {
    match scenario {
        Scenario::Stable => Plan {
            scenario,
            learn: LEARN_EVENTS,
            before: 60,
            after: 0,
        },
        Scenario::DailyCycle => Plan {
            scenario,
            learn: DAY_EVENTS,
            before: 576,
            after: 0,
        },
        _ => Plan {
            scenario,
            learn: LEARN_EVENTS,
            before: 30,
            after: 30,
        },
    }
}

/// The shipped config with the learned checks on.
fn config() -> Config {
    let text = std::fs::read_to_string("config/driftd.toml").expect("run from the repository");
    let env = |name: &str| std::env::var(name).ok();
    let mut config =
        Config::from_toml(&text, "config/driftd.toml", &env).expect("the shipped config is valid");
    config.learned.enabled = true;
    for m in config.models.values_mut() {
        m.learned.enabled = true;
    }
    config
}

/// Per detector: windows judged and flagged before the change, and the
/// delay to the first flag after it (None: never flagged).
struct Tally {
    quiet: u64,
    false_alarms: [u64; 7],
    /// Windows after the change, and those flagged.
    changed: u64,
    flagged: [u64; 7],
    delay: [Option<u64>; 7],
}

fn run(config: &Config, plan: &Plan, seed: u64) -> Tally {
    let learn = plan.learn;
    let events = learn + (plan.before + plan.after) * WINDOW_EVENTS;
    let mut spec = GenerateSpec::new(plan.scenario, events);
    spec.seed = seed;
    spec.rate = RATE;
    spec.embedding_dims = 16;
    spec.drift_at = if plan.after == 0 {
        events
    } else {
        learn + plan.before * WINDOW_EVENTS
    };
    // Windows are aligned to the clock: a window ending after the first
    // changed event's time holds changed events.
    let change_ms = spec.start_ms + (spec.drift_at as f64 * 1000.0 / RATE) as i64;
    let mut engine = Engine::new(config.clone(), Vocabulary::english(), Default::default());
    let mut decider = Decider::new(config.rules.clone(), config.actions.clone());
    let mut out = Tally {
        quiet: 0,
        false_alarms: [0; 7],
        changed: 0,
        flagged: [0; 7],
        delay: [None; 7],
    };
    let mut first_after: Option<u64> = None;
    let mut judge = |w: WindowReport| {
        let fired: Vec<String> = decider
            .decide(&w)
            .into_iter()
            .filter(|d| matches!(d.outcome, Outcome::Fired | Outcome::DryRun))
            .map(|d| d.rule)
            .collect();
        let f = flags(&w, &fired);
        let end = time::OffsetDateTime::parse(
            &w.window.end,
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339");
        let end_ms = (end.unix_timestamp_nanos() / 1_000_000) as i64;
        if end_ms <= change_ms {
            out.quiet += 1;
            for (n, &x) in out.false_alarms.iter_mut().zip(&f) {
                *n += u64::from(x);
            }
        } else {
            let first = *first_after.get_or_insert(w.window.index);
            out.changed += 1;
            for (n, &x) in out.flagged.iter_mut().zip(&f) {
                *n += u64::from(x);
            }
            for (d, &x) in out.delay.iter_mut().zip(&f) {
                if x && d.is_none() {
                    *d = Some(w.window.index - first);
                }
            }
        }
    };
    // Streamed line by line: a day of events is too much to hold.
    let mut feed = Lines {
        partial: Vec::new(),
        each: |line: &[u8]| {
            if let Ok(closed) = engine.process(line) {
                closed.into_iter().for_each(&mut judge);
            }
        },
    };
    driftd::source::generate::generate(&spec, &mut feed).expect("feeding cannot fail");
    out
}

/// A writer that hands each complete line to `each`.
struct Lines<F> {
    partial: Vec<u8>,
    each: F,
}

impl<F: FnMut(&[u8])> std::io::Write for Lines<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        let mut start = 0;
        while let Some(n) = self.partial[start..].iter().position(|&b| b == b'\n') {
            (self.each)(&self.partial[start..start + n]);
            start += n + 1;
        }
        self.partial.drain(..start);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args.first().map_or(10, |a| a.parse().expect("SEEDS"));
    let all = [
        Scenario::Stable,
        Scenario::DailyCycle,
        Scenario::CovariateShift,
        Scenario::SmallShift,
        Scenario::GradualRamp,
        Scenario::JointShift,
        Scenario::EmbeddingShift,
        Scenario::SegmentShift,
    ];
    let chosen: Vec<Scenario> = if args.len() > 1 {
        args[1..]
            .iter()
            .map(|a| {
                <Scenario as clap::ValueEnum>::from_str(a, true)
                    .unwrap_or_else(|e| panic!("scenario {a}: {e}"))
            })
            .collect()
    } else {
        all.to_vec()
    };
    let config = config();
    println!(
        "| scenario | detector | false alarms / 1,000 windows | flagged / 1,000 windows after the change | detected | median delay (windows) |"
    );
    println!("|---|---|---|---|---|---|");
    for scenario in chosen {
        let p = plan(scenario);
        let started = Instant::now();
        // A day's reference is long to learn: fewer seeds.
        let n = if scenario == Scenario::DailyCycle {
            seeds.div_ceil(5)
        } else {
            seeds
        };
        let mut config = config.clone();
        config.learn_events = p.learn;
        let runs: Vec<Tally> = (0..n).map(|s| run(&config, &p, 100 + s)).collect();
        let quiet: u64 = runs.iter().map(|r| r.quiet).sum();
        let changed: u64 = runs.iter().map(|r| r.changed).sum();
        let name = <Scenario as clap::ValueEnum>::to_possible_value(&scenario)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        for (d, detector) in DETECTORS.iter().enumerate() {
            let alarms: u64 = runs.iter().map(|r| r.false_alarms[d]).sum();
            let per_1000 = 1000.0 * alarms as f64 / quiet.max(1) as f64;
            let after = if changed == 0 {
                "-".to_owned()
            } else {
                let flagged: u64 = runs.iter().map(|r| r.flagged[d]).sum();
                format!("{:.0}", 1000.0 * flagged as f64 / changed as f64)
            };
            let (detected, median) = if p.after == 0 {
                ("-".to_owned(), "-".to_owned())
            } else {
                let mut delays: Vec<u64> = runs.iter().filter_map(|r| r.delay[d]).collect();
                delays.sort_unstable();
                (
                    format!("{}/{n}", delays.len()),
                    delays
                        .get(delays.len() / 2)
                        .map_or("-".to_owned(), u64::to_string),
                )
            };
            println!("| {name} | {detector} | {per_1000:.0} | {after} | {detected} | {median} |");
        }
        eprintln!(
            "{name}: {n} streams, {quiet} windows without a change, {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
}
