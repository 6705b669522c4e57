//! The feedback join (issue 4): feedback events join their inference events
//! by `event_id` within `feedback.ttl`; each window carries the joined count,
//! the mean rating and BLEU, ROUGE-L and CIDEr-D of exactly the joined
//! captions (the same scorer as `score-captions`, identical to
//! pycocoevalcap); late and unmatched feedback are counted; the join state
//! survives a snapshot.

use driftd::config::Config;
use driftd::monitor::engine::FeedbackOutcome;
use driftd::monitor::{Engine, WindowReport};
use driftd::quality::{score_set, CaptionInput, DfSource, Vocabulary};
use driftd::source::generate::{generate, GenerateSpec, Scenario};

const CONFIG: &str = "[windows]\nkind = \"count\"\nevents = 500\n[baseline]\nlearn_events = 500\n\
[feedback]\nttl = \"2s\"\nmax_scored_per_window = 60\n";

struct Ev {
    bytes: Vec<u8>,
    id: String,
    caption: String,
    /// A successful call with a caption: it waits for feedback.
    awaits: bool,
}

fn events() -> Vec<Ev> {
    let mut spec = GenerateSpec::new(Scenario::QualityDrop, 3000);
    spec.seed = 9;
    let mut out = Vec::new();
    generate(&spec, &mut out).unwrap();
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            Ev {
                bytes: l.to_vec(),
                id: v["event_id"].as_str().unwrap().to_owned(),
                caption: v["prediction"]["caption"].as_str().unwrap_or("").to_owned(),
                awaits: v["error"].is_null() && v["prediction"]["caption"].is_string(),
            }
        })
        .collect()
}

fn reference(i: usize) -> String {
    [
        "a photo of a dog on the grass",
        "a man riding a bike down a street",
        "two cups of coffee on a wooden table",
    ][i % 3]
        .to_owned()
}

fn feedback(id: &str, i: usize) -> Vec<u8> {
    serde_json::json!({
        "event_id": id, "timestamp": "2026-11-24T01:00:00Z",
        "references": [reference(i), "a picture"], "rating": (i % 5) as f64
    })
    .to_string()
    .into_bytes()
}

/// Events in order; feedback for event i right after event i + 10, except
/// event 600, whose feedback comes 300 events (3 s of event time) later.
fn run(
    engine: &mut Engine,
    evs: &[Ev],
    from: usize,
    to: usize,
    outcomes: &mut Vec<(usize, FeedbackOutcome)>,
) -> Vec<WindowReport> {
    let mut windows = Vec::new();
    for j in from..to {
        if let Ok(w) = engine.process(&evs[j].bytes) {
            windows.extend(w);
        }
        let mut send = |i: usize| {
            let o = engine.process_feedback(&feedback(&evs[i].id, i)).unwrap();
            outcomes.push((i, o));
        };
        if j >= 10 && j - 10 != 600 {
            send(j - 10);
        }
        if j == 900 {
            send(600);
        }
    }
    windows
}

fn engine() -> Engine {
    let c = Config::from_toml(CONFIG, "t", &|_| None).unwrap();
    let mut e = Engine::new(c, Vocabulary::english(), Default::default());
    e.join_feedback(true);
    e
}

#[test]
fn joined_feedback_scores_each_window_exactly() {
    let evs = events();
    let mut e = engine();
    let mut outcomes = Vec::new();
    let windows = run(&mut e, &evs, 0, evs.len(), &mut outcomes);
    assert_eq!(windows.len(), 5);

    // Learning events wait for no feedback: unmatched. Event 600 is late.
    for &(i, o) in &outcomes {
        let want = if i < 500 || !evs[i].awaits {
            FeedbackOutcome::Unmatched
        } else if i == 600 {
            FeedbackOutcome::Late
        } else {
            FeedbackOutcome::Joined
        };
        assert_eq!(o, want, "feedback for event {i}");
    }
    let bogus =
        serde_json::json!({"event_id": "never-seen", "timestamp": 0, "rating": 1.0}).to_string();
    assert_eq!(
        e.process_feedback(bogus.as_bytes()).unwrap(),
        FeedbackOutcome::Unmatched
    );
    assert!(e.process_feedback(b"{not json").is_err());
    assert_eq!(e.counters.feedback_late, 1);
    assert_eq!(e.counters.feedback_rejected, 1);

    // Feedback for event i is sent once event i + 10 is in: it lands in that
    // event's window, or in the next when event i + 10 closed its window.
    for w in &windows {
        let k = w.window.index as usize;
        let joined: Vec<usize> = outcomes
            .iter()
            .filter(|(i, o)| *o == FeedbackOutcome::Joined && (i + 11 - 500) / 500 == k)
            .map(|(i, _)| *i)
            .collect();
        let c = &w.captions;
        assert_eq!(c.feedback_joined, joined.len() as u64, "window {k}");
        let ratings: Vec<f64> = joined.iter().map(|i| (i % 5) as f64).collect();
        let mean = ratings.iter().sum::<f64>() / ratings.len() as f64;
        assert!((c.rating_mean.unwrap() - mean).abs() < 1e-12, "window {k}");
        assert_eq!(c.references_scored, 60.min(joined.len()) as u64);
        assert_eq!(
            c.references_unscored,
            joined.len().saturating_sub(60) as u64
        );
        let inputs: Vec<CaptionInput> = joined
            .iter()
            .take(60)
            .map(|&i| CaptionInput {
                id: i.to_string(),
                candidate: evs[i].caption.clone(),
                references: vec![reference(i), "a picture".into()],
                ..Default::default()
            })
            .collect();
        let want = score_set(&inputs, &Vocabulary::english(), DfSource::ScoredSet).unwrap();
        assert_eq!(c.references, Some(want.corpus.reference), "window {k}");
        assert!(c.references.unwrap().cider_d.unwrap() >= 0.0);
    }
}

#[test]
fn without_a_feedback_topic_nothing_waits() {
    let evs = events();
    let c = Config::from_toml(CONFIG, "t", &|_| None).unwrap();
    let mut e = Engine::new(c, Vocabulary::english(), Default::default());
    let mut outcomes = Vec::new();
    run(&mut e, &evs, 0, evs.len(), &mut outcomes);
    assert!(outcomes
        .iter()
        .all(|(_, o)| *o == FeedbackOutcome::Unmatched));
}

#[test]
fn join_state_survives_a_snapshot() {
    let evs = events();
    let mut whole = engine();
    let mut o1 = Vec::new();
    let expected = run(&mut whole, &evs, 0, evs.len(), &mut o1);
    for cut in [505, 750, 905, 1999] {
        let mut first = engine();
        let mut o2 = Vec::new();
        let mut got = run(&mut first, &evs, 0, cut, &mut o2);
        let snap = first.snapshot();
        let mut second = engine();
        second.restore(&snap).unwrap();
        got.extend(run(&mut second, &evs, cut, evs.len(), &mut o2));
        assert_eq!(o2, o1, "cut {cut}");
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&expected).unwrap(),
            "cut {cut}"
        );
    }
}
