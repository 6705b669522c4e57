//! The `driftd` command end to end: report, baseline and check-config, on the
//! shipped samples and on deliberately bad input (issue 2).

mod common;

use common::{driftd, p, stderr, stdout};

use std::path::{Path, PathBuf};
use std::process::Command;

use polars::prelude::*;
use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const SAMPLE_ARGS: [&str; 8] = [
    "report",
    "--config",
    "config/driftd.toml",
    "--reference",
    "samples/reference.ndjson",
    "--current",
    "samples/current.ndjson",
    "--format=json",
];

#[test]
fn report_json_has_the_contract_shape() {
    let out = driftd(&SAMPLE_ARGS);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).expect("stdout is clean JSON");
    let features = r["features"].as_array().unwrap();
    assert_eq!(features.len(), 8);
    for f in features {
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "name",
            "kind",
            "reference_count",
            "current_count",
            "missing",
            "tests",
            "method",
            "threshold",
            "score",
            "drift",
        ] {
            assert!(keys.contains(&k), "{k} missing in {f}");
        }
        // serde_json's map sorts keys.
        let tests: Vec<&str> = f["tests"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        match f["kind"].as_str().unwrap() {
            "numeric" => {
                assert_eq!(tests, ["jensen_shannon", "ks", "psi", "wasserstein"]);
                assert!(
                    f["tests"]["ks"]["p_value"].is_f64()
                        && f["tests"]["wasserstein"]["normalized"].is_f64()
                );
            }
            "categorical" => {
                assert_eq!(tests, ["chi_square", "jensen_shannon", "psi"]);
                assert!(f["tests"]["chi_square"]["dof"].is_u64());
            }
            k => panic!("kind {k}"),
        }
    }
    // Planted drift in the samples: brightness, width, source and confidence
    // drift; height, is_photo and latency do not.
    let drift: Vec<(&str, bool)> = features
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["drift"].as_bool().unwrap()))
        .collect();
    for (name, want) in [
        ("brightness", true),
        ("width", true),
        ("source", true),
        ("confidence", true),
        ("height", false),
        ("is_photo", false),
        ("latency", false),
    ] {
        assert!(
            drift.contains(&(name, want)),
            "{name} should have drift={want}: {drift:?}"
        );
    }
    // Config overrides were applied (method and threshold from config/driftd.toml).
    let brightness = features.iter().find(|f| f["name"] == "brightness").unwrap();
    assert_eq!(
        (
            brightness["method"].as_str(),
            brightness["threshold"].as_f64()
        ),
        (Some("ks"), Some(0.01))
    );
    assert_eq!(r["dataset"]["total"], 8);
    assert_eq!(r["dataset"]["drifted"], 4);
    assert_eq!(r["dataset"]["drift"], true);
}

#[test]
fn report_from_profile_equals_report_from_raw_reference() {
    // The sample reference has 2,000 rows: the profile stores every value, so
    // every statistic must come out identical, not merely close.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("ref.profile.json");
    let out = driftd(&[
        "baseline",
        "--config",
        "config/driftd.toml",
        "--input",
        "samples/reference.ndjson",
        "--out",
        p(&profile),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let raw = driftd(&SAMPLE_ARGS);
    let from_profile = driftd(&[
        "report",
        "--config",
        "config/driftd.toml",
        "--baseline",
        p(&profile),
        "--current",
        "samples/current.ndjson",
    ]);
    assert!(from_profile.status.success(), "{}", stderr(&from_profile));
    assert_eq!(stdout(&raw), stdout(&from_profile));
    let prof: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(prof["format"], "driftd.profile");
    assert_eq!(prof["version"], 1);
    assert_eq!(prof["model"], "alt-text-captioner");
    assert_eq!(prof["features"]["brightness"]["quantiles"]["kind"], "exact");
}

#[test]
fn reads_parquet_and_csv_flat_tables() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    let mut reference = df!(
        "x" => (0..n).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>(),
        "city" => (0..n).map(|i| ["paris", "lima", "oslo"][i % 3]).collect::<Vec<_>>(),
        "flag" => (0..n).map(|i| i % 4 == 0).collect::<Vec<_>>(),
    )
    .unwrap();
    let mut current = df!(
        "x" => (0..n).map(|i| (i as f64 * 0.37).sin() + 0.5).collect::<Vec<_>>(),
        "city" => (0..n).map(|i| ["paris", "lima", "oslo", "rome"][i % 4]).collect::<Vec<_>>(),
        "flag" => (0..n).map(|i| i % 4 == 0).collect::<Vec<_>>(),
    )
    .unwrap();
    let rp = dir.path().join("ref.parquet");
    ParquetWriter::new(std::fs::File::create(&rp).unwrap())
        .finish(&mut reference)
        .unwrap();
    let cc = dir.path().join("cur.csv");
    CsvWriter::new(std::fs::File::create(&cc).unwrap())
        .finish(&mut current)
        .unwrap();
    let out = driftd(&["report", "--reference", p(&rp), "--current", p(&cc)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let by_name = |n: &str| {
        r["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("x")["kind"], "numeric");
    assert_eq!(by_name("x")["drift"], true);
    assert_eq!(by_name("city")["kind"], "categorical");
    assert_eq!(by_name("city")["tests"]["chi_square"]["dof"], 3);
    assert_eq!(by_name("flag")["drift"], false);
    assert_eq!(by_name("flag")["tests"]["jensen_shannon"]["distance"], 0.0);
}

#[test]
fn bad_input_gets_a_clear_message_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = write(d, "ok.csv", "a,b\n1,x\n2,y\n3,x\n");
    let extra = write(d, "extra.csv", "a,b,c\n1,x,5\n2,y,6\n");
    let nulls = write(d, "nulls.csv", "a,b\n,x\n,y\n");
    let mixed = write(d, "mixed.csv", "a,b\n1,x\n2,y\nthree,x\n");
    let unknown = write(d, "data.xlsx", "whatever");
    let bad_event = write(
        d,
        "events.ndjson",
        "{\"event_id\":\"1\",\"timestamp\":1,\"model\":\"m\",\"features\":{\"a\":1}}\n{\"event_id\":\"2\",\"timestamp\":\"noon\",\"model\":\"m\",\"features\":{\"a\":2}}\n",
    );
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--reference", "nope.csv", "--current", p(&ok)],
            vec!["nope.csv", "cannot open"],
        ),
        (
            vec!["--reference", p(&unknown), "--current", p(&ok)],
            vec!["data.xlsx", "unknown format"],
        ),
        (
            vec!["--reference", p(&ok), "--current", p(&extra)],
            vec!["ok.csv", "column \"c\"", "not here"],
        ),
        (
            vec!["--reference", p(&ok), "--current", p(&nulls)],
            vec![
                "nulls.csv",
                "column \"a\"",
                "no values left after dropping nulls",
            ],
        ),
        (
            vec!["--reference", p(&ok), "--current", p(&mixed)],
            vec!["mixed.csv", "column \"a\"", "mixed types"],
        ),
        (
            vec!["--reference", p(&bad_event), "--current", p(&ok)],
            vec!["events.ndjson", "line 2", "bad_timestamp"],
        ),
        (
            vec!["--baseline", p(&ok), "--current", p(&ok)],
            vec!["ok.csv", "not a driftd profile"],
        ),
    ];
    for (args, wants) in cases {
        let mut full = vec!["report"];
        full.extend(&args);
        let out = driftd(&full);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}: stdout must stay clean");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        for w in wants {
            assert!(err.contains(w), "{args:?}: want {w:?} in {err}");
        }
    }
}

#[test]
fn hostile_offline_input_fails_clearly_or_is_skipped_and_counted() {
    // Issue 15: each of these aborted a process, used memory without bound
    // or stopped a command on one line.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = write(d, "ok.csv", "a,b\n1,x\n2,y\n3,x\n");
    // NDJSON nested 2,000 deep (polars recursed until the stack overflowed).
    let deep = write(
        d,
        "deep.ndjson",
        &format!(
            "{{\"a\":1}}\n{{\"a\":{}1{}}}\n",
            "[".repeat(2000),
            "]".repeat(2000)
        ),
    );
    for cmd in [
        vec!["report", "--reference", p(&deep), "--current", p(&ok)],
        vec!["baseline", "--input", p(&deep), "--out", "/dev/null"],
    ] {
        let out = driftd(&cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("deep.ndjson") && err.contains("line 2") && err.contains("nested"),
            "{err}"
        );
    }
    // A profile whose counts were tampered to wrap around is refused.
    let profile = d.join("p.json");
    let values: String = (1..=20).map(|i| format!("{i}\n")).collect();
    let reference = write(d, "ref.csv", &format!("a\n{values}"));
    assert!(
        driftd(&["baseline", "--input", p(&reference), "--out", p(&profile)])
            .status
            .success()
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let bins = v["features"]["a"]["bin_counts"].as_array_mut().unwrap();
    assert!(bins.len() >= 2);
    // u64::MAX + 21 wraps to 20, the count.
    for (i, b) in bins.iter_mut().enumerate() {
        *b = match i {
            0 => u64::MAX.into(),
            1 => 21.into(),
            _ => 0.into(),
        };
    }
    std::fs::write(&profile, v.to_string()).unwrap();
    let out = driftd(&[
        "report",
        "--baseline",
        p(&profile),
        "--current",
        p(&reference),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bin counts do not add up"), "{err}");
    // score-captions skips and counts a line that is not UTF-8.
    let captions = d.join("captions.jsonl");
    let mut bytes =
        b"{\"id\":\"1\",\"candidate\":\"a dog\",\"references\":[\"a dog runs\"]}\n".to_vec();
    bytes.extend(b"{\"id\":\"2\",\"candidate\":\"a \xff\xfe cat\"}\n");
    bytes.extend(b"{\"id\":\"3\",\"candidate\":\"a cat\",\"references\":[\"a cat sits\"]}\n");
    std::fs::write(&captions, bytes).unwrap();
    let out = driftd(&["score-captions", "--input", p(&captions)]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("line 2") && err.contains("not UTF-8") && err.contains("skipped"),
        "{err}"
    );
}

#[test]
fn replay_reads_a_long_line_within_the_event_limit() {
    // Regression (issue 15): a 50 MB line was read whole (244 MB of memory).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let logs = common::generate(d, "stable", "3000", &[]);
    let mut text = std::fs::read_to_string(&logs).unwrap();
    let long = format!(
        "{{\"event_id\":\"big\",\"pad\":\"{}\"}}\n",
        "x".repeat(50_000_000)
    );
    text.insert_str(text.find('\n').unwrap() + 1, &long);
    std::fs::write(&logs, text).unwrap();
    let dead = d.join("dead.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args([
            "replay",
            "--input",
            p(&logs),
            "--format",
            "json",
            "--dead-letter",
            p(&dead),
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 rejected (too_large 1)"), "{err}");
    let dead = std::fs::read_to_string(&dead).unwrap();
    let rec: Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(rec["reason"], "too_large");
    assert!(rec["detail"].as_str().unwrap().contains("50000"), "{rec}");
    // The dead letter keeps the first max_event_bytes, not 50 MB.
    assert!(dead.len() < 3 << 20, "{} bytes", dead.len());
}

#[test]
fn quick_runs_print_nothing_on_stderr_even_with_progress_on() {
    let out = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(SAMPLE_ARGS)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRIFTD_PROGRESS", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = stderr(&out);
    // Progress starts only after about a second; a quick run stays silent.
    assert!(
        err.is_empty() || err.lines().all(|l| l.starts_with("driftd: ")),
        "{err}"
    );
}

#[test]
fn baseline_and_report_name_the_model_and_file_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nulls = write(dir.path(), "nulls.csv", "a,b\n,x\n,y\n");
    let out = driftd(&[
        "baseline",
        "--input",
        p(&nulls),
        "--out",
        p(&dir.path().join("p.json")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nulls.csv: feature \"a\" has no non-null values"),
        "{}",
        stderr(&out)
    );
    let out = driftd(&[
        "report",
        "--model",
        "other",
        "--reference",
        "samples/reference.ndjson",
        "--current",
        "samples/current.ndjson",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no events of model \"other\" (models present: alt-text-captioner)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn html_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let mut args = SAMPLE_ARGS.to_vec();
    args.pop();
    args.extend(["--format", "html", "--out", p(&html)]);
    let out = driftd(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    for forbidden in ["<script", "<link", "src=", "url(", "https://", "@import"] {
        assert!(
            !page.contains(forbidden),
            "page must not load anything: found {forbidden}"
        );
    }
    // The only URL is the SVG namespace, which is never fetched.
    assert_eq!(
        page.matches("http://").count(),
        page.matches("http://www.w3.org/2000/svg").count()
    );
    assert_eq!(page.matches("<svg").count(), 8, "one picture per feature");
    for name in [
        "brightness",
        "caption_length",
        "confidence",
        "source",
        "width",
    ] {
        assert!(
            page.contains(&format!("id=\"f-{name}\"")),
            "section for {name}"
        );
    }
    assert!(page.contains("Dataset drift detected: 4 of 8 features drifted"));
}

#[test]
fn check_config_lists_every_problem() {
    let out = driftd(&["check-config", "--config", "config/driftd.toml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the shipped example must validate: {}",
        stdout(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.toml",
        "[drift]\nwasserstein_threshold = -1\n[models.captioner.features.brightness]\nmethod = \"ks\"\nthreshold = 1.7\n[models.captioner]\ncolour = \"red\"\n",
    );
    let out = driftd(&["check-config", "--config", p(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    for want in [
        "models.captioner.features.brightness.threshold: must be in (0, 1], got 1.7",
        "drift.wasserstein_threshold: must be a finite number greater than 0, got -1",
        "models.captioner.colour: unknown key",
        "3 problem(s)",
    ] {
        assert!(text.contains(want), "want {want:?} in\n{text}");
    }
    let out = driftd(&["check-config", "--config", p(&bad), "--format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 3);
}

/// The subcommands `driftd --help` lists.
fn subcommands() -> Vec<String> {
    let out = driftd(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let listed = text
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .split("Options:")
        .next()
        .unwrap();
    listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command's `--help` says what it does and shows an example of it.
#[test]
fn every_command_has_help_with_an_example() {
    let commands = subcommands();
    assert!(commands.len() >= 10, "{commands:?}");
    for c in &commands {
        let out = driftd(&[c, "--help"]);
        assert!(out.status.success(), "{c} --help");
        let text = stdout(&out);
        assert!(
            text.contains(&format!("Example: driftd {c}")),
            "`driftd {c} --help` has no example:\n{text}"
        );
    }
}

/// Shell completions: the bash script parses (`bash -n`) and completes every
/// command; zsh and fish get scripts of their own.
#[test]
fn shell_completions_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = driftd(&["completions", "bash"]);
    assert!(out.status.success());
    let script = stdout(&out);
    for c in subcommands() {
        assert!(script.contains(&c), "bash completion lacks {c}");
    }
    let path = dir.path().join("driftd.bash");
    std::fs::write(&path, &script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout(&driftd(&["completions", "zsh"])).starts_with("#compdef driftd"));
    assert!(stdout(&driftd(&["completions", "fish"])).contains("complete -c driftd"));
    let bad = driftd(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}
