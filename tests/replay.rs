//! `driftd generate` + `driftd replay`: the streaming pipeline over files
//! (issue 4, file source), on generated logs where the truth is known.

mod common;

use common::{driftd, p};

use serde_json::Value;

/// Generate `events` of `scenario` (drift at half way), replay with `config`,
/// return the window reports.
fn windows(
    scenario: &str,
    events: &str,
    extra_generate: &[&str],
    config: Option<&str>,
) -> (Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let logs = common::generate(dir.path(), scenario, events, extra_generate);
    common::replay_json(&logs, config)
}

/// 1-minute windows, 1,000 learned events: 100 events/s gives 6,000 per window.
const SMALL_WINDOWS: &str =
    "[windows]\nsize = \"1m\"\nallowed_lateness = \"5s\"\n[baseline]\nlearn_events = 3000\n";

fn drifted(w: &Value) -> Vec<String> {
    w["drift"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["drift"] == true)
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn stable_logs_raise_no_drift() {
    let (ws, _) = windows("stable", "40000", &[], Some(SMALL_WINDOWS));
    assert!(ws.len() >= 6, "{}", ws.len());
    for w in &ws {
        assert_eq!(w["baseline"], "learned");
        assert!(
            drifted(w).is_empty(),
            "window {}: {:?}",
            w["window"]["index"],
            drifted(w)
        );
        assert!(w["signals"]["error_rate"].as_f64().unwrap() < 0.03);
    }
}

#[test]
fn covariate_shift_is_flagged_only_after_it_starts() {
    // Drift starts at event 20,000 = 200 s of event time.
    let (ws, err) = windows("covariate-shift", "40000", &[], Some(SMALL_WINDOWS));
    assert!(err.contains("replayed 40000 events"), "{err}");
    for w in &ws {
        let start = w["window"]["start"].as_str().unwrap();
        let minute: u32 = start[14..16].parse().unwrap();
        let d = drifted(w);
        if minute >= 4 {
            for f in ["brightness", "source", "width"] {
                assert!(
                    d.contains(&f.to_owned()),
                    "{start}: {f} should drift, got {d:?}"
                );
            }
            assert!(
                !d.contains(&"contrast".to_owned()) && !d.contains(&"height".to_owned()),
                "{start}: {d:?}"
            );
        } else if minute < 3 {
            assert!(d.is_empty(), "{start}: nothing should drift yet, got {d:?}");
        }
    }
}

#[test]
fn quality_drop_shows_in_caption_descriptors_and_clip_score() {
    let (ws, _) = windows(
        "quality-drop",
        "40000",
        &["--embedding-dims", "16"],
        Some(SMALL_WINDOWS),
    );
    let first = &ws[0]["captions"];
    let last = &ws[ws.len() - 1]["captions"];
    assert!(first["boilerplate_prefix_rate"].as_f64().unwrap() < 0.01);
    assert!(
        last["boilerplate_prefix_rate"].as_f64().unwrap() > 0.2,
        "{last}"
    );
    assert!(last["empty_rate"].as_f64().unwrap() > 0.05);
    assert!(last["ends_with_stopword_rate"].as_f64().unwrap() > 0.1);
    let (c0, c1) = (
        first["clip_score_mean"].as_f64().unwrap(),
        last["clip_score_mean"].as_f64().unwrap(),
    );
    assert!(c1 < c0 - 0.3, "CLIPScore {c0} -> {c1}");
}

#[test]
fn broken_component_shows_in_signals() {
    let (ws, _) = windows("broken", "40000", &[], Some(SMALL_WINDOWS));
    let (first, last) = (&ws[0]["signals"], &ws[ws.len() - 1]["signals"]);
    assert!(first["error_rate"].as_f64().unwrap() < 0.03);
    assert!(last["error_rate"].as_f64().unwrap() > 0.2, "{last}");
    assert!(last["empty_caption_rate"].as_f64().unwrap() > 0.1);
    assert!(
        last["latency_ms_p50"].as_f64().unwrap() > 2.0 * first["latency_ms_p50"].as_f64().unwrap()
    );
}

#[test]
fn count_windows_and_no_config_at_all() {
    let (ws, _) = windows(
        "stable",
        "12000",
        &[],
        Some("[windows]\nkind = \"count\"\nevents = 2000\n[baseline]\nlearn_events = 2000\n"),
    );
    assert_eq!(ws.len(), 5);
    for (i, w) in ws.iter().enumerate() {
        assert_eq!(w["window"]["index"], i);
        assert_eq!(w["signals"]["events"], 2000);
    }
    // Defaults: 5-minute windows, 5,000 learned events.
    let (ws, _) = windows("stable", "40000", &[], None);
    assert_eq!(ws[0]["signals"]["events"], 25000);
}

#[test]
fn rejected_events_go_to_the_dead_letter_file_and_late_ones_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs.ndjson");
    assert!(driftd(&["generate", "--events", "3000", "--to", p(&logs)])
        .status
        .success());
    let mut text = std::fs::read_to_string(&logs).unwrap();
    // Bad lines, and an event an hour too early (late: its window has closed).
    text.push_str("not json\n{\"event_id\":\"x\",\"model\":\"m\"}\n");
    let first = text
        .lines()
        .next()
        .unwrap()
        .replace("2026-11-24T00:00:00.000Z", "2026-11-23T23:00:00.000Z");
    text.push_str(&first);
    text.push('\n');
    text.push_str(
        &std::fs::read_to_string(&logs)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .replace("00:00:29.990Z", "00:03:00.000Z"),
    );
    text.push('\n');
    std::fs::write(&logs, text).unwrap();
    let dead = dir.path().join("dead.ndjson");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[windows]\nsize = \"10s\"\nallowed_lateness = \"1s\"\n[baseline]\nlearn_events = 500\n",
    )
    .unwrap();
    let out = driftd(&[
        "replay",
        "--input",
        p(&logs),
        "--config",
        p(&cfg),
        "--dead-letter",
        p(&dead),
        "--format",
        "json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("2 rejected (invalid_json 1, missing_field 1)"),
        "{err}"
    );
    assert!(err.contains("1 late"), "{err}");
    let dead: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 2);
    assert_eq!(
        (
            dead[0]["line"].as_u64(),
            dead[0]["reason"].as_str(),
            dead[0]["raw"].as_str()
        ),
        (Some(3001), Some("invalid_json"), Some("not json"))
    );
    assert_eq!(dead[1]["reason"], "missing_field");
    let reports: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let late: u64 = reports
        .iter()
        .map(|r| r["signals"]["late_events"].as_u64().unwrap())
        .sum();
    assert_eq!(
        late, 1,
        "the late event is reported in a window, not dropped"
    );
}

#[test]
fn a_profile_from_driftd_baseline_is_used_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.ndjson");
    assert!(driftd(&[
        "generate",
        "--events",
        "5000",
        "--seed",
        "9",
        "--to",
        p(&reference)
    ])
    .status
    .success());
    let profile = dir.path().join("ref.profile.json");
    let out = driftd(&["baseline", "--input", p(&reference), "--out", p(&profile)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = format!(
        "[windows]\nsize = \"1m\"\n[models.alt-text-captioner]\nbaseline = \"{}\"\n",
        p(&profile)
    );
    let (ws, err) = windows("covariate-shift", "12000", &[], Some(&config));
    assert!(err.contains("0 learned as baseline"), "{err}");
    assert_eq!(ws[0]["baseline"], "profile");
    assert_eq!(ws[0]["window"]["index"], 0);
    assert_eq!(ws[0]["window"]["start"], "2026-11-24T00:00:00Z");
}

/// Issue 5: replay with rules shows which decisions would have fired and
/// which were suppressed and why, window by window.
#[test]
fn replay_with_rules_shows_fired_and_suppressed_decisions() {
    let rules = format!(
        "{SMALL_WINDOWS}
[[rules]]
name = \"drift-retrain\"
action = \"retrain\"
when = {{ metric = \"drift_share\", op = \">=\", value = 0.3 }}
for_windows = 2
min_samples = 1000

[[rules]]
name = \"captions-rot\"
action = \"notify\"
when = {{ any = [ {{ metric = \"quality.empty_rate\", op = \">\", value = 0.05 }}, {{ metric = \"quality.boilerplate_prefix_rate\", op = \">\", value = 0.2 }} ] }}
"
    );
    // Covariate shift: features drift half way, captions stay fine.
    let (ws, err) = windows("covariate-shift", "60000", &[], Some(&rules));
    let decisions: Vec<&Value> = ws
        .iter()
        .flat_map(|w| w["decisions"].as_array().unwrap())
        .collect();
    let outcomes: Vec<(&str, &str)> = decisions
        .iter()
        .map(|d| (d["rule"].as_str().unwrap(), d["outcome"].as_str().unwrap()))
        .collect();
    let fired: Vec<&Value> = decisions
        .iter()
        .copied()
        .filter(|d| d["outcome"] == "fired")
        .collect();
    assert_eq!(fired.len(), 1, "{outcomes:?}");
    assert_eq!(fired[0]["rule"], "drift-retrain");
    assert_eq!(fired[0]["action"], "retrain");
    assert_eq!(fired[0]["consecutive"], 2);
    assert_eq!(
        outcomes[0],
        ("drift-retrain", "suppressed: pending"),
        "{outcomes:?}"
    );
    assert!(
        outcomes[2..]
            .iter()
            .all(|o| *o == ("drift-retrain", "suppressed: not_rearmed")),
        "{outcomes:?}"
    );
    // The evidence is the window's own drift share.
    let w = ws
        .iter()
        .find(|w| w["decisions"].as_array().unwrap().contains(fired[0]))
        .unwrap();
    assert_eq!(fired[0]["evidence"][0]["metric"], "drift_share");
    assert_eq!(
        fired[0]["evidence"][0]["value"],
        w["drift"]["dataset"]["share"]
    );
    assert!(err.contains("2 rule(s): fired 1"), "{err}");

    // Quality drop: captions rot; the caption rule fires, the drift rule does not.
    let (ws, _) = windows("quality-drop", "60000", &[], Some(&rules));
    let fired: Vec<String> = ws
        .iter()
        .flat_map(|w| w["decisions"].as_array().unwrap())
        .filter(|d| d["outcome"] == "fired")
        .map(|d| d["rule"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fired, ["captions-rot"]);

    // Stable: no window breaches; without rules there is no `decisions` key.
    let (ws, err) = windows("stable", "60000", &[], Some(&rules));
    assert!(ws
        .iter()
        .all(|w| w["decisions"].as_array().unwrap().is_empty()));
    assert!(err.contains("no window breached a rule"), "{err}");
    let (ws, _) = windows("stable", "20000", &[], Some(SMALL_WINDOWS));
    assert!(ws.iter().all(|w| w.get("decisions").is_none()));
}

#[test]
fn replay_judges_a_candidate_named_on_the_command_line() {
    use driftd::source::generate::{generate, GenerateSpec, Scenario};
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs.ndjson");
    // The incumbent's captions have rotted; the candidate's shadow traffic is fine.
    let mut out = Vec::new();
    for (scenario, version, start) in [
        (Scenario::QualityDrop, "v1", 1_795_478_400_000_i64),
        (Scenario::Stable, "v2", 1_795_478_440_000),
    ] {
        let mut spec = GenerateSpec::new(scenario, 4000);
        spec.model_version = version.into();
        spec.drift_at = 0;
        spec.start_ms = start;
        generate(&spec, &mut out).unwrap();
    }
    std::fs::write(&logs, out).unwrap();
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(
        &cfg,
        "[windows]\nkind = \"count\"\nevents = 1000\n[baseline]\nlearn_events = 1000\n\
         [promotion]\nwindows = 3\ncompare = [ { metric = \"quality.boilerplate_prefix_rate\", better = \"lower\", margin = 0.05 } ]\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["replay", "--input", p(&logs), "--config", p(&cfg)];
        args.extend(extra);
        driftd(&args)
    };
    let o = run(&["--candidate", "alt-text-captioner=v2"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("promotion")).collect();
    assert_eq!(
        lines,
        ["  promotion -> redeploy: fired (candidate v2 beat incumbent v1 over 3 windows)"],
        "{text}"
    );
    // JSON: the decision names the versions.
    let o = run(&["--candidate", "alt-text-captioner=v2", "--format", "json"]);
    let decisions: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .flat_map(|w| w["decisions"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["versions"]["deploy"], "v2");
    // Without the candidate nothing is judged; a malformed one is a clear error.
    let o = run(&[]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("promotion"));
    let o = run(&["--candidate", "v2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--candidate must be MODEL=VERSION"));
}

/// Progress goes to stderr only: with `DRIFTD_PROGRESS=always` a replay of a
/// file shows its bar over the file's bytes, and stdout is byte for byte
/// what it is without progress.
#[test]
fn replay_progress_is_a_bar_on_stderr_and_leaves_stdout_alone() {
    let dir = tempfile::tempdir().unwrap();
    let logs = common::generate(dir.path(), "covariate-shift", "20000", &[]);
    let args = ["replay", "--input", p(&logs), "--format", "json"];
    let quiet = driftd(&args);
    assert!(quiet.status.success());
    assert!(
        !common::stderr(&quiet).contains('%'),
        "no bar when stderr is not a terminal and DRIFTD_PROGRESS is unset"
    );
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DRIFTD_CONFIG")
        .env("DRIFTD_PROGRESS", "always")
        .output()
        .unwrap();
    assert!(shown.status.success());
    assert_eq!(shown.stdout, quiet.stdout, "stdout is untouched");
    let err = common::stderr(&shown);
    let name = p(&logs);
    assert!(
        err.contains(&format!("driftd: replaying {name} [")) && err.contains("%"),
        "{err}"
    );
    assert!(err.contains("driftd: closing the last windows"), "{err}");
    // Not a terminal: whole lines, no carriage returns; the summary after
    // the closing line.
    assert!(!err.contains('\r'), "{err:?}");
    let done = err.find("driftd: done in ").expect("a closing line");
    assert!(
        err[done..].contains("driftd: replayed 20000 events"),
        "{err}"
    );
}

/// The flags of each window's data-quality checks, as `feature:check`.
fn data_quality_flags(w: &Value) -> Vec<String> {
    let dq = &w["data_quality"];
    let mut flags: Vec<String> =
        dq["features"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| {
                f["flagged"].as_array().unwrap().iter().map(move |c| {
                    format!("{}:{}", f["name"].as_str().unwrap(), c.as_str().unwrap())
                })
            })
            .collect();
    if dq["new_features"]["flagged"] == true {
        flags.push("new_features".into());
    }
    assert_eq!(dq["issues"].as_u64().unwrap() as usize, flags.len());
    flags
}

#[test]
fn data_quality_checks_flag_an_upstream_change_and_stay_quiet_otherwise() {
    let rule = format!(
        "{SMALL_WINDOWS}
[[rules]]
name = \"upstream-broke\"
action = \"notify\"
when = {{ metric = \"data_quality.issues\", op = \">=\", value = 3 }}
"
    );
    // Before the change (first 200 s: windows 0-2), nothing; after it every
    // break shows as its own check, and a rule on the count fires.
    let (ws, _) = windows("upstream-change", "40000", &[], Some(&rule));
    assert!(ws.len() >= 6, "{}", ws.len());
    for w in &ws[..3] {
        assert!(data_quality_flags(w).is_empty(), "{w}");
    }
    let last = ws.last().unwrap();
    assert_eq!(
        data_quality_flags(last),
        [
            "brightness:out_of_range",
            "contrast:missing_rate",
            "file_size_kb:wrong_type",
            "format:absent",
            "source:unseen_categories",
            "new_features",
        ]
    );
    let dq = &last["data_quality"];
    assert_eq!(
        dq["new_features"]["names"],
        serde_json::json!(["exif_orientation"])
    );
    let source = dq["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "source")
        .unwrap();
    let unseen = source["unseen_share"].as_f64().unwrap();
    assert!((unseen - 0.25).abs() < 0.03, "{source}");
    let fired: Vec<&Value> = ws
        .iter()
        .flat_map(|w| w["decisions"].as_array().unwrap())
        .filter(|d| d["outcome"] == "fired")
        .collect();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0]["rule"], "upstream-broke");
    assert_eq!(fired[0]["evidence"][0]["metric"], "data_quality.issues");

    // The other scenarios change distributions, captions or serving, not the
    // data's shape: no flag in any window (a strong covariate shift moves
    // values beyond the reference's range, which is what that check reports).
    for scenario in ["stable", "quality-drop", "broken", "joint-shift"] {
        let (ws, _) = windows(scenario, "40000", &[], Some(SMALL_WINDOWS));
        for w in &ws {
            assert!(data_quality_flags(w).is_empty(), "{scenario}: {w}");
        }
    }
    let (ws, _) = windows("covariate-shift", "40000", &[], Some(SMALL_WINDOWS));
    let flagged: std::collections::BTreeSet<String> =
        ws.iter().flat_map(data_quality_flags).collect();
    assert_eq!(
        flagged.into_iter().collect::<Vec<_>>(),
        ["brightness:out_of_range", "width:out_of_range"]
    );
}
