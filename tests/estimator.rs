//! The caption-quality estimator (issue 6) through `driftd replay --feedback`:
//! ratings planted as a known function of what driftd sees of each caption
//! (descriptors, CLIPScore, confidence) plus noise; the estimator, trained
//! in the engine on the joined ratings, must recover the function, and each
//! window's predicted quality must match the planted truth.

mod common;

use common::{driftd, p};
use driftd::quality::{clip::clip_score, CaptionFacts, Vocabulary};
use serde_json::Value;

/// The planted rating function (no noise).
fn planted(facts: &CaptionFacts, clip: f64, confidence: f64) -> f64 {
    let d = &facts.descriptors;
    1.0 + 1.2 * clip - 1.5 * f64::from(u8::from(d.boilerplate_prefix))
        + 2.0 * d.type_token_ratio
        + 2.0 * confidence
}

/// Noise on each rating: standard deviation 0.1.
const NOISE: f64 = 0.1;

struct Logged {
    minute: i64,
    truth: f64,
}

#[test]
fn the_estimator_recovers_a_planted_rating_function() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs.ndjson");
    let out = driftd(&[
        "generate",
        "--scenario",
        "quality-drop",
        "--events",
        "30000",
        "--embedding-dims",
        "16",
        // Degraded captions of every kind from the start (boilerplate,
        // repetition, truncation, empty, and sound ones): every version is
        // trained on the whole mix. (A version trained before a kind of
        // caption first appears cannot know what it is worth.)
        "--drift-at",
        "0",
        "--to",
        p(&logs),
    ]);
    assert!(out.status.success());
    // Every other successful event is rated 5 s after it was served.
    let vocab = Vocabulary::english();
    let mut rng = driftd::testkit::XorShift::new(9);
    let mut feedback = String::new();
    let mut logged = Vec::new();
    let mut rated_while_learning = 0;
    for (i, line) in std::fs::read_to_string(&logs).unwrap().lines().enumerate() {
        let e: Value = serde_json::from_str(line).unwrap();
        let Some(caption) = e["prediction"]["caption"].as_str() else {
            continue;
        };
        let vec = |k: &str| -> Vec<f64> {
            e["embeddings"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let clip = clip_score(&vec("image"), &vec("caption")).unwrap();
        let confidence = e["prediction"]["confidence"].as_f64().unwrap();
        let truth = planted(&CaptionFacts::of(caption, &vocab), clip, confidence);
        let ts = e["timestamp"].as_str().unwrap();
        let minute: i64 = ts[14..16].parse().unwrap();
        logged.push(Logged { minute, truth });
        if i % 2 == 0 {
            rated_while_learning += usize::from(i < 3000);
            let ms = 1_795_478_400_000i64 + i as i64 * 10 + 5_000;
            feedback.push_str(
                &serde_json::json!({
                    "event_id": e["event_id"], "timestamp": ms,
                    "rating": truth + NOISE * rng.normal(),
                })
                .to_string(),
            );
            feedback.push('\n');
        }
    }
    let fb = dir.path().join("feedback.ndjson");
    std::fs::write(&fb, feedback).unwrap();
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(
        &cfg,
        "[windows]\nsize = \"1m\"\nallowed_lateness = \"10s\"\n[baseline]\nlearn_events = 3000\n\
         [feedback]\nttl = \"1m\"\n\
         [estimator]\nenabled = true\nmin_examples = 1000\nretrain_after = 3000\n",
    )
    .unwrap();
    let replay = |format: &str| {
        driftd(&[
            "replay",
            "--input",
            p(&logs),
            "--feedback",
            p(&fb),
            "--format",
            format,
            "--config",
            p(&cfg),
        ])
    };
    let out = replay("json");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Events seen while the baseline is learned wait for no feedback: their
    // ratings are unmatched.
    assert!(
        err.contains(&format!(
            "joined, 0 late, {rated_while_learning} unmatched, 0 rejected"
        )),
        "{err}"
    );
    let ws: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ws.len(), 5);

    // Versions: trained after 1,000 ratings, then every 3,000; each has its
    // validation error, and the first is accepted.
    let trained: Vec<&Value> = ws
        .iter()
        .flat_map(|w| w["estimator"]["trained"].as_array().unwrap())
        .collect();
    assert!(trained.len() >= 3, "{} versions", trained.len());
    assert_eq!(trained[0]["version"], 1);
    assert_eq!(trained[0]["accepted"], true);
    assert_eq!(trained[0]["training_samples"], 800);
    for v in &trained {
        let rmse = v["validation_rmse"].as_f64().unwrap();
        eprintln!(
            "version {}: {} samples, validation RMSE {rmse:.4}, incumbent {}, accepted {}",
            v["version"], v["training_samples"], v["incumbent_rmse"], v["accepted"]
        );
        // The noise's own standard deviation is the floor.
        assert!((NOISE * 0.8..NOISE * 1.3).contains(&rmse), "{v}");
    }
    // The function recovered: weights on the raw inputs within 0.1 of the
    // planted ones, the rest near 0.
    let last = &ws[ws.len() - 1]["estimator"];
    let version = last["version"].as_u64().unwrap();
    let current = trained
        .iter()
        .find(|v| v["version"] == version)
        .expect("the current version was reported");
    let model = &current["model"];
    let raw =
        |i: usize| model["weights"][i].as_f64().unwrap() / model["scale"][i].as_f64().unwrap();
    let names = driftd::learned::estimator::INPUTS;
    let index = |n: &str| names.iter().position(|x| *x == n).unwrap();
    for (name, want) in [
        ("clip_score", 1.2),
        ("boilerplate_prefix", -1.5),
        ("type_token_ratio", 2.0),
        ("confidence", 2.0),
    ] {
        let got = raw(index(name));
        eprintln!("{name}: recovered {got:.4}, planted {want}");
        assert!((got - want).abs() < 0.1, "{name}: {got} (planted {want})");
    }
    for name in ["token_count", "oov_rate", "ends_with_stopword"] {
        assert!(raw(index(name)).abs() < 0.1, "{name}: {}", raw(index(name)));
    }
    assert!(last["validation_rmse"].as_f64().unwrap() < NOISE * 1.3);

    // Each window's predicted quality: within 0.03 of the planted truth's
    // mean over the window's captions, wherever a version was current for
    // the whole window.
    let mut compared = 0;
    for w in &ws {
        let minute: i64 = w["window"]["start"].as_str().unwrap()[14..16]
            .parse()
            .unwrap();
        let truths: Vec<f64> = logged
            .iter()
            .filter(|l| l.minute == minute)
            .map(|l| l.truth)
            .collect();
        let e = &w["estimator"];
        if e["predicted_captions"].as_u64().unwrap() as usize != truths.len() {
            continue;
        }
        let truth = truths.iter().sum::<f64>() / truths.len() as f64;
        let predicted = e["predicted_mean"].as_f64().unwrap();
        eprintln!("minute {minute}: predicted {predicted:.4}, planted {truth:.4}");
        assert!(
            (predicted - truth).abs() < 0.03,
            "minute {minute}: predicted {predicted}, planted {truth}"
        );
        compared += 1;
    }
    assert!(compared >= 3, "only {compared} windows fully predicted");

    // The text report says the same, a line per window.
    let out = replay("text");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  estimator: predicted rating ")
            && text.contains("trained version 1 on 800 (labels): RMSE")
            && text.contains(", accepted"),
        "{text}"
    );
}
