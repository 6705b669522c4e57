//! Engine snapshots (issue 4): restoring a checkpoint taken at any event and
//! feeding the rest gives exactly the window reports of an uninterrupted run:
//! nothing counted twice, nothing lost, sketches bit-identical.

use driftd::config::Config;
use driftd::monitor::{Engine, WindowReport};
use driftd::quality::Vocabulary;
use driftd::source::generate::{GenerateSpec, Scenario};

fn events(scenario: Scenario, n: u64, dims: usize) -> Vec<Vec<u8>> {
    let mut spec = GenerateSpec::new(scenario, n);
    spec.embedding_dims = dims;
    spec.seed = 11;
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
    out
}

fn json(ws: &[WindowReport]) -> Vec<String> {
    ws.iter()
        .map(|w| serde_json::to_string(w).unwrap())
        .collect()
}

#[test]
fn restored_engine_matches_uninterrupted_run() {
    // Cut points: during learning, right at its end, inside windows and
    // right after a window closed.
    let cuts = [1, 350, 699, 700, 701, 4_321, 9_999, 15_000, 19_999];
    let cases = [
        (
            "time windows, learned baseline, quality drop with embeddings",
            "[windows]\nsize = \"20s\"\nallowed_lateness = \"5s\"\n[baseline]\nlearn_events = 700\n",
            events(Scenario::QualityDrop, 20_000, 8),
            &cuts[..],
        ),
        (
            "count windows, covariate shift",
            "[windows]\nkind = \"count\"\nevents = 1500\n[baseline]\nlearn_events = 1000\n",
            events(Scenario::CovariateShift, 20_000, 0),
            &cuts[..],
        ),
        // The learned checks' samples (reference and window reservoirs, with
        // their generators) are in the snapshot: the same events sampled,
        // the same verdicts.
        (
            "learned checks, joint shift with embeddings",
            "[windows]\nsize = \"20s\"\nallowed_lateness = \"5s\"\n[baseline]\nlearn_events = 700\n\
             [learned]\nenabled = true\nsample_size = 64\npermutations = 20\n",
            events(Scenario::JointShift, 10_000, 8),
            &[350, 700, 2_345, 6_001][..],
        ),
    ];
    for (name, toml, evs, cuts) in cases {
        let c = config(toml);
        let mut whole = engine(&c);
        let mut expected = run(&mut whole, &evs);
        expected.extend(whole.finish());
        assert!(
            expected.len() >= 5,
            "{name}: only {} windows",
            expected.len()
        );
        if name.starts_with("learned") {
            assert!(
                expected.iter().all(|w| {
                    let l = w.learned.as_ref().unwrap();
                    l.classifier.as_ref().unwrap().result.is_some()
                        && l.embeddings["image"].mmd.is_some()
                }),
                "{name}: every window has both verdicts"
            );
        }
        for &cut in cuts {
            let mut first = engine(&c);
            let mut got = run(&mut first, &evs[..cut]);
            let snap = first.snapshot();
            drop(first);
            let mut second = engine(&c);
            second.restore(&snap).unwrap();
            got.extend(run(&mut second, &evs[cut..]));
            got.extend(second.finish());
            assert_eq!(json(&got), json(&expected), "{name}: cut at {cut}");
            assert_eq!(second.counters, whole.counters, "{name}: cut at {cut}");
        }
    }
}

#[test]
fn unreadable_snapshot_is_a_clear_error() {
    let c = config("");
    let mut e = engine(&c);
    let err = e.restore_bytes(b"not cbor at all").unwrap_err().to_string();
    assert!(err.contains("unreadable"), "{err}");
    // A snapshot of another format version is refused by name.
    let mut bytes = Vec::new();
    ciborium::into_writer(
        &serde_json::json!({"format": 99, "states": [], "counters": {"events": 0, "rejected": {}, "learned": 0, "windows": 0, "late_events": 0}}),
        &mut bytes,
    )
    .unwrap();
    let err = e.restore_bytes(&bytes).unwrap_err().to_string();
    assert!(err.contains("format 99"), "{err}");
}

#[test]
fn captions_described_ahead_give_the_same_windows() {
    let c = config("[windows]\nsize = \"20s\"\n[baseline]\nlearn_events = 700\n");
    let evs = events(Scenario::QualityDrop, 8_000, 4);
    let mut plain = engine(&c);
    let mut want = run(&mut plain, &evs);
    want.extend(plain.finish());
    let mut ahead = engine(&c);
    let vocab = Vocabulary::english();
    let mut got = Vec::new();
    for ev in &evs {
        let decoded = ahead.decoder().decode_inference(ev).map(|mut e| {
            driftd::monitor::engine::prepare(&mut e, &vocab);
            assert!(e.error.is_some() || e.caption_facts.is_some() || e.prediction.is_empty());
            e
        });
        if let Ok(w) = ahead.process_decoded(decoded) {
            got.extend(w);
        }
    }
    got.extend(ahead.finish());
    assert!(want.len() >= 3, "{} windows", want.len());
    assert_eq!(json(&got), json(&want));
}
