//! The learned checks in windows (issue 6), through `driftd generate` and
//! `driftd replay`, on logs where the truth is known: a joint shift no
//! per-feature test sees, a caption-embedding change, and rules that act on
//! the learned figures.

mod common;

use common::{driftd, p};

use serde_json::Value;

/// 1-minute windows of 6,000 events (100 events/s), a baseline learned from
/// the first 3,000 events, learned checks on.
const LEARNED: &str = "[windows]\nsize = \"1m\"\nallowed_lateness = \"5s\"\n\
[baseline]\nlearn_events = 3000\n[learned]\nenabled = true\n";

fn replay(scenario: &str, extra_generate: &[&str], config: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let logs = common::generate(dir.path(), scenario, "24000", extra_generate);
    replay_logs(&logs, config)
}

/// `driftd replay --format json` of `logs` with `config`: the window reports.
fn replay_logs(logs: &std::path::Path, config: &str) -> Vec<Value> {
    common::replay_json(logs, Some(config)).0
}

/// Minute of the window's start (the logs start at 00:00:00).
fn minute(w: &Value) -> u32 {
    w["window"]["start"].as_str().unwrap()[14..16]
        .parse()
        .unwrap()
}

fn feature_drift(w: &Value, name: &str) -> bool {
    w["drift"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .map(|f| f["drift"] == true)
        .unwrap()
}

/// The correlation of brightness and contrast flips at event 12,000 (the
/// start of minute 2); their marginals stay the same. No per-feature test
/// flags either column in any window; the domain classifier flags every
/// window after the flip and none before.
#[test]
fn a_joint_shift_is_flagged_by_the_classifier_and_by_no_feature_test() {
    let ws = replay("joint-shift", &[], LEARNED);
    assert_eq!(ws.len(), 4, "windows of minutes 0 to 3");
    for w in &ws {
        let l = &w["learned"];
        let c = &l["classifier"];
        assert_eq!(
            c["columns"],
            serde_json::json!(["brightness", "contrast", "file_size_kb", "height", "width"])
        );
        assert_eq!(l["reference_sample"], 256);
        assert_eq!(l["reference_events"], 3000);
        assert_eq!(l["current_sample"], 256);
        let auc = c["auc"].as_f64().unwrap();
        for f in ["brightness", "contrast"] {
            assert!(!feature_drift(w, f), "minute {}: {f} flagged", minute(w));
        }
        if minute(w) >= 2 {
            assert!(auc > 0.75, "minute {}: AUC {auc}", minute(w));
            assert_eq!(c["drift"], true);
            assert_eq!(l["drift"], true);
        } else {
            assert!(auc < 0.55, "minute {}: AUC {auc}", minute(w));
            assert_eq!(c["drift"], false);
            assert_eq!(l["drift"], false);
        }
        assert!(c["auc_std_error"].as_f64().unwrap() < 0.05);
    }
}

/// Captions stop agreeing with their images at event 12,000: the caption
/// embedding drifts by MMD, the image embedding does not.
#[test]
fn a_caption_embedding_change_is_flagged_by_mmd() {
    let ws = replay("quality-drop", &["--embedding-dims", "16"], LEARNED);
    assert_eq!(ws.len(), 4);
    for w in &ws {
        let e = &w["learned"]["embeddings"];
        let (image, caption) = (&e["image"], &e["caption"]);
        assert_eq!(caption["mmd"]["dimensions"], 16);
        assert_eq!(caption["mmd"]["permutations"], 100);
        let p_image = image["mmd"]["p_value"].as_f64().unwrap();
        assert!(p_image > 0.05, "minute {}: image p {p_image}", minute(w));
        assert_eq!(image["drift"], false);
        let p_caption = caption["mmd"]["p_value"].as_f64().unwrap();
        if minute(w) >= 2 {
            assert!(
                p_caption < 0.01,
                "minute {}: caption p {p_caption}",
                minute(w)
            );
            assert_eq!(caption["drift"], true);
            assert!(caption["mmd"]["mean_shift"].as_f64().unwrap() > 0.2);
        } else {
            assert!(
                p_caption > 0.05,
                "minute {}: caption p {p_caption}",
                minute(w)
            );
            assert_eq!(caption["drift"], false);
        }
    }
}

/// The checks are off unless configured, and a model's own section
/// overrides the global one.
#[test]
fn learned_checks_are_configured_per_model() {
    let off =
        "[windows]\nsize = \"1m\"\nallowed_lateness = \"5s\"\n[baseline]\nlearn_events = 3000\n";
    let ws = replay("joint-shift", &[], off);
    assert!(ws.iter().all(|w| w.get("learned").is_none()));
    let model_only = format!(
        "{off}[learned]\nenabled = false\n[models.alt-text-captioner.learned]\nenabled = true\n\
         sample_size = 100\nclassifier = false\n"
    );
    let ws = replay("joint-shift", &["--embedding-dims", "8"], &model_only);
    for w in &ws {
        let l = &w["learned"];
        assert_eq!(l["current_sample"], 100);
        assert!(l.get("classifier").is_none(), "{l}");
        assert!(l["embeddings"]["image"]["mmd"]["p_value"].is_f64());
    }
}

/// A rule on the classifier's AUC fires on the joint shift after two
/// windows; the evidence is the window's AUC.
#[test]
fn rules_act_on_learned_figures() {
    let config = format!(
        "{LEARNED}[[rules]]\nname = \"joint-drift\"\naction = \"retrain\"\n\
         when = {{ metric = \"learned.classifier_auc\", op = \">=\", value = 0.7 }}\n\
         for_windows = 2\n\n\
         [[rules]]\nname = \"caption-space\"\naction = \"notify\"\n\
         when = {{ metric = \"embedding.caption.p_value\", op = \"<\", value = 0.01 }}\n"
    );
    let ws = replay("joint-shift", &[], &config);
    let fired: Vec<(u32, &Value)> = ws
        .iter()
        .flat_map(|w| {
            w["decisions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["outcome"] == "fired")
                .map(move |d| (minute(w), d))
        })
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    let (m, d) = fired[0];
    assert_eq!((m, d["rule"].as_str().unwrap()), (3, "joint-drift"));
    let w = ws.iter().find(|w| minute(w) == 3).unwrap();
    assert_eq!(d["evidence"][0]["metric"], "learned.classifier_auc");
    assert_eq!(d["evidence"][0]["value"], w["learned"]["classifier"]["auc"]);

    // A learned metric that does not exist is a config error naming what does.
    let bad = format!(
        "{LEARNED}[[rules]]\nname = \"x\"\naction = \"notify\"\n\
         when = {{ metric = \"embedding.caption.auc\", op = \">\", value = 0.5 }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(&cfg, bad).unwrap();
    let out = driftd(&["check-config", "--config", p(&cfg)]);
    let err = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("unknown embedding statistic \"auc\"")
            && err.contains("mmd2, p_value, mean_shift"),
        "{err}"
    );
}

/// Bad learned settings are config errors with the key and the bound.
#[test]
fn learned_settings_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(
        &cfg,
        "[learned]\nsample_size = 5\nmmd_alpha = 1.5\nclassifier_alpha = 0\n\
         [models.m.learned]\nfolds = 1\nsample_size = 512\nreference_size = 300\n\
         [models.few.learned]\npermutations = 10\n\
         [models.none.learned]\npermutations = 0\n\
         [models.none-floor.learned]\npermutations = 0\nauc_threshold = 0.55\n\
         [models.wide.learned]\nsample_size = 4096\n",
    )
    .unwrap();
    let out = driftd(&["check-config", "--config", p(&cfg)]);
    let err = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    for needle in [
        "learned.sample_size: must be between 20 and 4096, got 5",
        "learned.mmd_alpha: must be in (0, 1), got 1.5",
        "models.m.learned.folds: must be between 2 and 20, got 1",
        "learned.classifier_alpha: must be in (0, 1), got 0",
        "models.m.learned.reference_size: must be at least sample_size (512), got 300",
        // A p-value of 10 shuffles is at least 1/11: never below 0.05.
        "models.few.learned.permutations: must be at least 20 for a p-value below mmd_alpha = 0.05, got 10",
        "models.few.learned.permutations: must be at least 20 for a p-value below classifier_alpha = 0.05, got 10",
        "models.none.learned.auc_threshold: with permutations = 0 the classifier is judged by auc_threshold alone",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    // A larger sample than the inherited pool makes the pool the sample;
    // a threshold above 0.5 makes permutations = 0 valid.
    for quiet in ["models.wide", "models.none-floor"] {
        assert!(!err.contains(quiet), "{quiet:?} in {err}");
    }
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `driftd report --learned` on two files (event logs, CSV) and on a profile:
/// the classifier tells a flipped correlation from the reference and not an
/// unchanged one; the per-feature tests see neither.
#[test]
fn report_runs_the_learned_checks_on_files_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let gen = |name: &str, drift_at: &str, seed: &str| {
        let path = dir.path().join(name);
        let out = driftd(&[
            "generate",
            "--scenario",
            "joint-shift",
            "--events",
            "6000",
            "--drift-at",
            drift_at,
            "--seed",
            seed,
            "--to",
            p(&path),
        ]);
        assert!(out.status.success());
        path
    };
    let reference = gen("reference.ndjson", "6000", "1");
    let flipped = gen("flipped.ndjson", "0", "2");
    let same = gen("same.ndjson", "6000", "3");
    let report = |reference: &[&str], current: &std::path::Path| {
        let mut args = vec!["report"];
        args.extend(reference);
        args.extend(["--current", p(current), "--learned"]);
        json_of(&driftd(&args))
    };
    let auc = |r: &Value| r["learned"]["classifier"]["auc"].as_f64().unwrap();
    let unflagged = |r: &Value| {
        r["drift"]["features"]
            .as_array()
            .or(r["features"].as_array())
            .unwrap()
            .iter()
            .filter(|f| f["name"] == "brightness" || f["name"] == "contrast")
            .all(|f| f["drift"] == false)
    };
    let r = report(&["--reference", p(&reference)], &flipped);
    assert!(auc(&r) > 0.75, "{}", r["learned"]);
    assert_eq!(r["learned"]["drift"], true);
    assert_eq!(r["learned"]["reference_events"], 6000);
    assert!(unflagged(&r), "a per-feature test flagged the joint shift");
    assert_eq!(r["learned"]["reference_sample"], 256);
    assert_eq!(r["learned"]["classifier"]["p_value"], 1.0 / 101.0);
    // Unchanged data: AUC near 0.5 and a p-value of no note (a single
    // verdict is drift with probability 5 %; this one is not).
    let r = report(&["--reference", p(&reference)], &same);
    assert!(auc(&r) < 0.6, "{}", r["learned"]);
    assert!(
        r["learned"]["classifier"]["p_value"].as_f64().unwrap() >= 0.05,
        "{}",
        r["learned"]
    );

    // A profile keeps the reference sample.
    let profile = dir.path().join("profile.json");
    let out = driftd(&["baseline", "--input", p(&reference), "--out", p(&profile)]);
    assert!(out.status.success());
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(saved["sample"]["seen"], 6000);
    // The reference pool: `reference_size` rows, of which each comparison
    // draws `sample_size`.
    assert_eq!(saved["sample"]["events"].as_array().unwrap().len(), 2048);
    let r = report(&["--baseline", p(&profile)], &flipped);
    assert!(auc(&r) > 0.75, "{}", r["learned"]);

    // Flat CSV tables: rows are sampled from the frame.
    let csv = |name: &str, rho: f64, seed: u64| {
        let mut rng = driftd::testkit::XorShift::new(seed);
        let rows = driftd::testkit::correlated_rows(&mut rng, 3000, rho);
        let mut text = String::from("x,y\n");
        for r in rows {
            text.push_str(&format!("{},{}\n", r[0], r[1]));
        }
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (a, b) = (csv("a.csv", 0.8, 1), csv("b.csv", -0.8, 2));
    let r = report(&["--reference", p(&a)], &b);
    assert_eq!(
        r["learned"]["classifier"]["columns"],
        serde_json::json!(["x", "y"])
    );
    assert_eq!(r["learned"]["current_events"], 3000);
    assert!(auc(&r) > 0.75, "{}", r["learned"]);

    // Without --learned (and not enabled in the config) the report has none;
    // the HTML page shows the checks when they ran.
    let plain = json_of(&driftd(&[
        "report",
        "--reference",
        p(&a),
        "--current",
        p(&b),
    ]));
    assert!(plain.get("learned").is_none());
    let html = driftd(&[
        "report",
        "--reference",
        p(&a),
        "--current",
        p(&b),
        "--learned",
        "--format",
        "html",
    ]);
    let page = String::from_utf8_lossy(&html.stdout);
    assert!(page.contains("<h2>Learned checks</h2>") && page.contains("domain classifier"));
}

/// With a reference profile as the baseline, the profile's sample is the
/// learned checks' reference; a profile without one (an older driftd's)
/// gives windows whose checks say why they were skipped.
#[test]
fn a_profile_baseline_brings_its_reference_sample() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.ndjson");
    let logs = dir.path().join("logs.ndjson");
    for (path, drift_at, seed) in [(&reference, "12000", "1"), (&logs, "6000", "2")] {
        let out = driftd(&[
            "generate",
            "--scenario",
            "joint-shift",
            "--events",
            "12000",
            "--drift-at",
            drift_at,
            "--seed",
            seed,
            "--to",
            p(path),
        ]);
        assert!(out.status.success());
    }
    let profile = dir.path().join("profile.json");
    assert!(
        driftd(&["baseline", "--input", p(&reference), "--out", p(&profile)])
            .status
            .success()
    );
    let replay_with = |profile: &std::path::Path| -> Vec<Value> {
        replay_logs(
            &logs,
            &format!(
                "[windows]\nsize = \"30s\"\nallowed_lateness = \"5s\"\n[learned]\nenabled = true\n\
                 [models.alt-text-captioner]\nbaseline = \"{}\"\n",
                profile.display()
            ),
        )
    };
    let ws = replay_with(&profile);
    assert_eq!(ws.len(), 4, "two minutes of 30 s windows");
    for (i, w) in ws.iter().enumerate() {
        assert_eq!(w["baseline"], "profile");
        let l = &w["learned"];
        assert_eq!(l["reference_events"], 12000);
        let auc = l["classifier"]["auc"].as_f64().unwrap();
        // Event 6,000 (minute 1) is where the correlation flips.
        assert_eq!(auc > 0.75, i >= 2, "window {i}: AUC {auc}");
    }
    let mut old: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("sample");
    let old_profile = dir.path().join("old-profile.json");
    std::fs::write(&old_profile, old.to_string()).unwrap();
    for w in replay_with(&old_profile) {
        let skipped = w["learned"]["classifier"]["skipped"].as_str().unwrap();
        assert!(skipped.contains("(reference 0, window 256)"), "{skipped}");
        assert_eq!(w["learned"]["drift"], false);
    }
}

/// Each window is compared with its own draw of `sample_size` events from a
/// reference pool of `reference_size`: a learned baseline of 3,000 events
/// keeps 2,048 of them, and no two windows get the same draw.
#[test]
fn every_window_draws_its_own_reference_from_a_larger_pool() {
    use driftd::monitor::Engine;
    use driftd::quality::Vocabulary;
    use driftd::source::generate::{GenerateSpec, Scenario};

    let config = driftd::config::Config::from_toml(
        &format!("{LEARNED}sample_size = 64\n"),
        "test.toml",
        &|_| None,
    )
    .unwrap();
    let mut engine = Engine::new(config, Vocabulary::english(), Default::default());
    engine.defer_learned(true);
    let mut spec = GenerateSpec::new(Scenario::Stable, 24_000);
    spec.embedding_dims = 4;
    let mut jobs = Vec::new();
    for line in driftd::testkit::lines(&spec) {
        for w in engine.process(&line).unwrap() {
            jobs.push(w.learned_job.expect("learned checks are on"));
        }
    }
    assert!(jobs.len() >= 3, "{} windows", jobs.len());
    let key = |e: &driftd::learned::window::Sampled| format!("{:?}", e.numbers);
    let draws: Vec<std::collections::BTreeSet<String>> = jobs
        .iter()
        .map(|j| j.reference.iter().map(key).collect())
        .collect();
    for (j, d) in jobs.iter().zip(&draws) {
        assert_eq!(j.reference.len(), 64);
        assert_eq!(d.len(), 64, "drawn without replacement");
        assert_eq!(j.reference_seen, 3000);
    }
    let pool: std::collections::BTreeSet<&String> = draws.iter().flatten().collect();
    assert!(
        pool.len() > 64 * 2,
        "{} distinct reference events",
        pool.len()
    );
    for a in 0..draws.len() {
        for b in a + 1..draws.len() {
            assert_ne!(draws[a], draws[b], "windows {a} and {b}");
        }
    }
}
