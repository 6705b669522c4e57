//! Issue 15, in the engine: hostile event times, version floods, oversized
//! items and a state at its byte budget. Each test compares with what a clean
//! stream gives, so it fails if the attack changes a window.

use driftd::config::Config;
use driftd::event::RejectReason;
use driftd::monitor::engine::Snapshot;
use driftd::monitor::{Engine, WindowReport};
use driftd::quality::Vocabulary;
use driftd::source::generate::{GenerateSpec, Scenario};

fn events(scenario: Scenario, n: u64, seed: u64) -> Vec<Vec<u8>> {
    let mut spec = GenerateSpec::new(scenario, n);
    spec.seed = seed;
    driftd::testkit::lines(&spec)
}

fn config(text: &str) -> Config {
    Config::from_toml(text, "test.toml", &|_| None).unwrap()
}

fn engine(c: &Config) -> Engine {
    Engine::new(c.clone(), Vocabulary::english(), Default::default())
}

fn run(e: &mut Engine, evs: &[Vec<u8>]) -> Vec<WindowReport> {
    let mut out = Vec::new();
    for ev in evs {
        if let Ok(w) = e.process(ev) {
            out.extend(w);
        }
    }
    out.extend(e.finish());
    out
}

/// The reports as JSON, without the count of held-back events.
fn comparable(ws: &[WindowReport]) -> Vec<serde_json::Value> {
    ws.iter()
        .map(|w| {
            let mut v = serde_json::to_value(w).unwrap();
            v["signals"]["future_events"] = 0.into();
            v
        })
        .collect()
}

/// `ev` with its timestamp replaced.
fn stamped(ev: &[u8], ts: serde_json::Value) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(ev).unwrap();
    v["timestamp"] = ts;
    serde_json::to_vec(&v).unwrap()
}

const WINDOWS: &str =
    "[windows]\nsize = \"20s\"\nallowed_lateness = \"5s\"\n[baseline]\nlearn_events = 700\n";

#[test]
fn events_stamped_far_ahead_do_not_move_the_window_clock() {
    // Regression (issue 15): one event stamped 2100-01-01 made nearly every
    // later event late and single-event windows dataset drift.
    let c = config(WINDOWS);
    let clean = events(Scenario::CovariateShift, 12_000, 3);
    let mut expected = run(&mut engine(&c), &clean);
    assert!(expected.len() > 5);
    // Far-ahead events among the windowed ones (after learning), alone and
    // nine in a row: fewer than ten in a row never move the clock.
    let mut hostile = clean.clone();
    let mut inserted = 0;
    for (at, run_len) in [(1_000, 1), (3_000, 9), (6_000, 1), (9_000, 5)] {
        for k in 0..run_len {
            let ts = serde_json::json!(format!("2100-01-01T00:00:0{}.000Z", k % 10));
            hostile.insert(at + inserted, stamped(&clean[at], ts));
            inserted += 1;
        }
    }
    let mut e = engine(&c);
    let got = run(&mut e, &hostile);
    assert_eq!(e.counters.future_events, inserted as u64);
    assert_eq!(e.counters.late_events, 0, "no event became late");
    let held: u64 = got.iter().map(|w| w.signals.future_events).sum();
    assert_eq!(
        held, inserted as u64,
        "every held-back event is counted in a window"
    );
    // Apart from that count, the windows are the clean stream's.
    for w in &mut expected {
        w.signals.future_events = 0;
    }
    assert_eq!(comparable(&got), comparable(&expected));
}

#[test]
fn traffic_resuming_after_a_gap_still_moves_the_clock() {
    let c = config(WINDOWS);
    let first = events(Scenario::CovariateShift, 3_000, 4);
    // The same traffic two hours later (beyond the one-hour tolerance).
    let later: Vec<Vec<u8>> = events(Scenario::CovariateShift, 3_000, 5)
        .iter()
        .map(|ev| {
            let v: serde_json::Value = serde_json::from_slice(ev).unwrap();
            let ts = driftd::event::parse_timestamp(&v["timestamp"]).unwrap() + 2 * 3_600_000;
            stamped(ev, ts.into())
        })
        .collect();
    let mut e = engine(&c);
    let mut all = first.clone();
    all.extend(later.iter().cloned());
    let got = run(&mut e, &all);
    // Nine events are held back; from the tenth the clock has moved and the
    // later traffic closes its own windows.
    assert_eq!(e.counters.future_events, 9);
    let last_end = got.iter().map(|w| w.window.end.clone()).max().unwrap();
    assert!(last_end.as_str() > "2026-11-24T02:", "{last_end}");
    let late: u64 = got.iter().map(|w| w.signals.late_events).sum();
    assert_eq!(late, 0);
}

#[test]
fn extreme_timestamps_are_refused_not_wrapped() {
    let c = config(WINDOWS);
    let mut e = engine(&c);
    let ev = &events(Scenario::Stable, 1, 1)[0];
    for ts in [
        serde_json::json!(i64::MAX),
        serde_json::json!(i64::MIN),
        serde_json::json!(253_402_300_800_000i64),
    ] {
        let err = e.process(&stamped(ev, ts.clone())).unwrap_err();
        assert_eq!(err.reason, RejectReason::BadTimestamp, "{ts}");
    }
    // A 590 KB timestamp string is refused with a bounded detail.
    let long = "9".repeat(590_000);
    let err = e.process(&stamped(ev, long.into())).unwrap_err();
    assert_eq!(err.reason, RejectReason::BadTimestamp);
    assert!(
        err.detail.len() < 700,
        "{} bytes of detail",
        err.detail.len()
    );
}

#[test]
fn windows_of_too_few_events_are_not_dataset_drift_and_say_so() {
    let rules = "[[rules]]\nname = \"drift\"\naction = \"retrain\"\nmin_samples = 1000\n\
                 when = { metric = \"drift_share\", op = \">=\", value = 0.25 }\n";
    let c = config(&format!(
        "[windows]\nsize = \"5s\"\n[baseline]\nlearn_events = 700\n{rules}"
    ));
    let evs = events(Scenario::CovariateShift, 4_000, 6);
    let got = run(&mut engine(&c), &evs);
    // 5-second windows of 500 events: below min_samples, never dataset drift.
    assert!(got.iter().any(|w| w.drift.dataset.share >= 0.5));
    for w in &got {
        assert!(!w.drift.dataset.drift);
        let too_few = w.drift.dataset.too_few_events.unwrap();
        assert_eq!(
            (too_few.events, too_few.min_samples),
            (w.signals.events, 1000)
        );
    }
    let json = serde_json::to_value(&got[got.len() - 2]).unwrap();
    assert_eq!(
        json["drift"]["dataset"]["too_few_events"]["min_samples"],
        1000
    );
}

/// An event of `model` / `version` at time `ts`.
fn event(model: &str, version: &str, ts: i64, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"event_id":"e{ts}-{version}","timestamp":{ts},"model":"{model}","model_version":"{version}","features":{{"x":{}}}{extra}}}"#,
        ts % 7
    )
    .into_bytes()
}

#[test]
fn a_flood_of_versions_is_capped_and_the_roles_are_kept() {
    let c = config(
        "[limits]\nmax_versions_per_model = 4\n[baseline]\nlearn_events = 10\n[windows]\nsize = \"1m\"\n",
    );
    let mut e = engine(&c);
    e.protect("m", vec!["v0".into()]);
    let t0 = 1_795_478_400_000i64;
    for i in 0..20_000i64 {
        let v = format!("v{}", if i < 50 { i % 2 } else { i });
        assert!(e.process(&event("m", &v, t0 + i, "")).is_ok());
    }
    let versions = e.versions();
    assert!(versions.len() <= 4, "{} versions kept", versions.len());
    assert!(
        versions.iter().any(|v| v.model_version == "v0"),
        "the protected version stays"
    );
    assert!(e.counters.versions_evicted >= 19_000);
    // With every kept version protected, a new one is refused with a reason.
    let kept: Vec<String> = e.versions().into_iter().map(|v| v.model_version).collect();
    e.protect("m", kept);
    let err = e.process(&event("m", "new", t0 + 30_000, "")).unwrap_err();
    assert_eq!(err.reason, RejectReason::TooManyVersions);
}

#[test]
fn numbers_in_a_categorical_feature_stay_within_the_category_cap() {
    // Regression (issue 15): numbers bypassed the cap (100,001 degrees of
    // freedom in one window).
    let c = config(
        "[baseline]\nlearn_events = 2000\n[windows]\nkind = \"count\"\nevents = 20000\n\
         [models.m.features.x]\nkind = \"categorical\"\n",
    );
    let mut e = engine(&c);
    let t0 = 1_795_478_400_000i64;
    let mut reports = Vec::new();
    for i in 0..22_000i64 {
        let ev = format!(
            r#"{{"event_id":"e{i}","timestamp":{},"model":"m","features":{{"x":{i}}}}}"#,
            t0 + i
        );
        reports.extend(e.process(ev.as_bytes()).unwrap());
    }
    let w = serde_json::to_value(&reports[0]).unwrap();
    let chi = &w["drift"]["features"][0]["tests"]["chi_square"];
    let dof = chi["dof"].as_u64().unwrap();
    assert!(dof <= 2 * 512 + 1, "{dof} degrees of freedom: {chi}");
}

#[test]
fn waiting_feedback_is_bounded_by_bytes_and_items_are_cut() {
    let c = config(
        "[baseline]\nlearn_events = 10\n[windows]\nsize = \"1m\"\n\
         [feedback]\nmax_pending_bytes = 1000000\n",
    );
    let mut e = engine(&c);
    e.join_feedback(true);
    let t0 = 1_795_478_400_000i64;
    let caption = "word ".repeat(2_000);
    for i in 0..2_000i64 {
        let extra = format!(r#","prediction":{{"caption":"{caption}"}}"#);
        let id = "i".repeat(300) + &i.to_string();
        let ev = format!(
            r#"{{"event_id":"{id}","timestamp":{},"model":"m","features":{{"x":1}}{extra}}}"#,
            t0 + i
        );
        e.process(ev.as_bytes()).unwrap();
    }
    // Captions and ids were cut for storage, and counted.
    assert!(e.counters.truncated.captions >= 1_990);
    assert!(e.counters.truncated.event_ids >= 1_990);
    let snap = e.snapshot();
    assert!(snap.len() < 2_000_000, "state is {} bytes", snap.len());
    // The newest events still join (their long ids, hashed the same way).
    let id = "i".repeat(300) + "1999";
    let fb = format!(
        r#"{{"event_id":"{id}","timestamp":{},"references":["{}"],"rating":4}}"#,
        t0 + 2_000,
        "ref ".repeat(10_000)
    );
    assert_eq!(
        e.process_feedback(fb.as_bytes()).unwrap(),
        driftd::monitor::engine::FeedbackOutcome::Joined
    );
    assert_eq!(e.counters.truncated.references, 1);
    // An absurd rating is refused with a reason.
    let bad = r#"{"event_id":"x","timestamp":1,"rating":1e308}"#;
    assert_eq!(
        e.process_feedback(bad.as_bytes()).unwrap_err().reason,
        RejectReason::InvalidValue
    );
}

#[test]
fn a_state_at_its_budget_checkpoints_restores_and_continues_identically() {
    const BUDGET: usize = 3 * 1024 * 1024;
    let c = config(&format!(
        "[limits]\nmax_state_bytes = {BUDGET}\n[baseline]\nlearn_events = 300\n\
         [windows]\nsize = \"20s\"\nallowed_lateness = \"5s\"\n\
         [feedback]\nmax_pending_bytes = 100000000\n"
    ));
    let evs = events(Scenario::QualityDrop, 12_000, 8);
    // Long captions keep the feedback join's state growing until the
    // budget sheds it.
    let long: Vec<Vec<u8>> = evs
        .iter()
        .map(|ev| {
            let mut v: serde_json::Value = serde_json::from_slice(ev).unwrap();
            if let Some(c) = v["prediction"]["caption"].as_str() {
                let cap = c.repeat(40);
                v["prediction"]["caption"] = cap.into();
            }
            serde_json::to_vec(&v).unwrap()
        })
        .collect();
    let make = || {
        let mut e = engine(&c);
        e.join_feedback(true);
        e
    };
    let (head, tail) = long.split_at(8_000);
    let mut whole = make();
    let mut expected = Vec::new();
    for ev in head {
        expected.extend(whole.process(ev).unwrap());
    }
    let snap = whole.snapshot();
    assert!(
        snap.len() <= BUDGET,
        "{} bytes over a {BUDGET} budget",
        snap.len()
    );
    assert!(
        whole.counters.shed.pending_feedback > 0,
        "the budget was reached: {} bytes, {:?}",
        snap.len(),
        whole.counters
    );
    expected.extend(whole.take_evicted());
    // Through the store and back, in parts.
    let dir = tempfile::tempdir().unwrap();
    let mut store = driftd::store::Store::open(dir.path()).unwrap();
    let parts: Vec<(&str, &str, &[u8])> = snap
        .versions
        .iter()
        .map(|p| (p.model.as_str(), p.version.as_str(), p.state.as_slice()))
        .collect();
    store
        .checkpoint_parts(
            (&snap.core, &parts),
            &Default::default(),
            &[],
            Default::default(),
            100,
        )
        .unwrap();
    let cp = store.load().unwrap().unwrap();
    let mut second = make();
    second
        .restore(&Snapshot {
            core: cp.engine,
            versions: cp
                .engine_versions
                .into_iter()
                .map(
                    |(model, version, state)| driftd::monitor::engine::VersionPart {
                        model,
                        version,
                        state,
                    },
                )
                .collect(),
        })
        .unwrap();
    let mut got = expected.clone();
    for ev in tail {
        expected.extend(whole.process(ev).unwrap());
        got.extend(second.process(ev).unwrap());
    }
    expected.extend(whole.finish());
    got.extend(second.finish());
    let json = |ws: &[WindowReport]| -> Vec<String> {
        ws.iter()
            .map(|w| serde_json::to_string(w).unwrap())
            .collect()
    };
    assert_eq!(json(&got), json(&expected));
    assert_eq!(second.counters, whole.counters);
}

#[test]
fn reference_metrics_run_off_the_consumer_thread_when_deferred() {
    let c = config("[baseline]\nlearn_events = 10\n[windows]\nsize = \"1m\"\n");
    let mut e = engine(&c);
    e.join_feedback(true);
    e.defer_learned(true);
    let t0 = 1_795_478_400_000i64;
    let mut closed = Vec::new();
    for i in 0..200i64 {
        let ev = format!(
            r#"{{"event_id":"e{i}","timestamp":{},"model":"m","features":{{"x":1}},"prediction":{{"caption":"a dog on a bench"}}}}"#,
            t0 + i * 1000
        );
        closed.extend(e.process(ev.as_bytes()).unwrap());
        if (20..40).contains(&i) {
            let fb = format!(
                r#"{{"event_id":"e{}","timestamp":{},"references":["a dog sitting on a bench"]}}"#,
                i - 5,
                t0 + i * 1000
            );
            e.process_feedback(fb.as_bytes()).unwrap();
        }
    }
    closed.extend(e.finish());
    let mut w = closed
        .into_iter()
        .find(|w| w.captions.references_scored > 0)
        .unwrap();
    // Closed on the consumer's thread without the scores; they come when the
    // deferred work runs (the daemon runs it on its worker thread).
    assert!(w.has_deferred());
    assert!(w.captions.references.is_none());
    w.run_deferred();
    assert!(w.captions.references.unwrap().bleu_4.is_some());
}
