//! `driftd export` (issue 7): the state store's windows, per-feature drift
//! and decisions as Parquet and CSV, read back with polars. The store is
//! filled as the daemon fills it (`Store::checkpoint_with`) with the windows
//! and decisions of a replayed covariate shift.

mod common;

use common::{driftd, p};
use driftd::store::{DecisionBatch, Offsets, Store, StoredDecision, StoredWindow};
use polars::prelude::*;
use serde_json::Value;

/// A state directory holding the windows and decisions of a replay of a
/// covariate shift (drift from minute 2 on) with a drift rule.
fn store_of_a_replay(dir: &std::path::Path) -> Vec<Value> {
    let logs = common::generate(dir, "covariate-shift", "30000", &[]);
    let (reports, _) = common::replay_json(
        &logs,
        Some(
            "[windows]\nsize = \"1m\"\nallowed_lateness = \"5s\"\n[baseline]\nlearn_events = 3000\n\
             [[rules]]\nname = \"drift-retrain\"\naction = \"retrain\"\n\
             when = { metric = \"drift_share\", op = \">=\", value = 0.3 }\n",
        ),
    );
    let windows: Vec<StoredWindow> = reports
        .iter()
        .map(|r| {
            let mut w = r.clone();
            w.as_object_mut().unwrap().remove("decisions");
            StoredWindow {
                model: r["model"].as_str().unwrap().into(),
                model_version: r["model_version"].as_str().unwrap().into(),
                index: r["window"]["index"].as_u64().unwrap(),
                report_json: w.to_string(),
            }
        })
        .collect();
    let decisions: Vec<StoredDecision> = reports
        .iter()
        .flat_map(|r| r["decisions"].as_array().unwrap().clone())
        .map(|d| StoredDecision {
            id: format!("dec_{}_{}", d["window_index"], d["rule"].as_str().unwrap()),
            model: d["model"].as_str().unwrap().into(),
            model_version: d["model_version"].as_str().unwrap().into(),
            window_index: d["window_index"].as_u64().unwrap(),
            rule: d["rule"].as_str().unwrap().into(),
            action: d["action"].as_str().unwrap().into(),
            outcome: d["outcome"].as_str().unwrap().into(),
            window_end: d["window_end"].as_str().unwrap().into(),
            delivery: (d["outcome"] == "fired").then(|| "no_target".to_owned()),
            decision_json: d.to_string(),
            targets: Vec::new(),
        })
        .collect();
    let mut store = Store::open(&dir.join("state")).unwrap();
    store
        .checkpoint_with(
            b"-",
            &Offsets::new(),
            &windows,
            DecisionBatch {
                decisions: &decisions,
                decider_state: None,
                keep: 0,
                estimator_versions: &[],
            },
            1000,
        )
        .unwrap();
    reports
}

fn read(path: &std::path::Path) -> DataFrame {
    let file = std::fs::File::open(path).unwrap();
    if path.extension().unwrap() == "parquet" {
        ParquetReader::new(file).finish().unwrap()
    } else {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .unwrap()
            .finish()
            .unwrap()
    }
}

#[test]
fn export_writes_windows_features_and_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let reports = store_of_a_replay(dir.path());
    assert_eq!(reports.len(), 5);
    let state = dir.path().join("state");
    let export = |table: &str, format: &str, extra: &[&str]| {
        let out = dir.path().join(format!("{table}.{format}"));
        let mut args = vec![
            "export",
            "--state",
            p(&state),
            "--table",
            table,
            "--format",
            format,
            "--out",
            p(&out),
        ];
        args.extend(extra);
        let o = driftd(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        (read(&out), err)
    };

    // Windows: one row each, the report's figures in their columns.
    let (w, err) = export("windows", "parquet", &[]);
    assert!(err.contains("wrote 5 rows of windows"), "{err}");
    assert_eq!(w.height(), 5);
    let share = w.column("drift_share").unwrap().f64().unwrap().clone();
    let drift = w.column("dataset_drift").unwrap().bool().unwrap().clone();
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(share.get(i), r["drift"]["dataset"]["share"].as_f64());
        assert_eq!(drift.get(i), r["drift"]["dataset"]["drift"].as_bool());
    }
    assert_eq!(
        w.column("window_end").unwrap().str().unwrap().get(4),
        Some("2026-11-24T00:05:00Z")
    );

    // --since keeps the windows ending at or after it.
    let (w, _) = export("windows", "csv", &["--since", "2026-11-24T00:03:00Z"]);
    assert_eq!(w.height(), 3);

    // Features: one row per window and feature, with the drift decision.
    let (f, _) = export("features", "parquet", &[]);
    assert_eq!(f.height(), 5 * 8);
    let drift = f.column("drift").unwrap().bool().unwrap().clone();
    let feature = f.column("feature").unwrap().str().unwrap().clone();
    let names: std::collections::BTreeSet<&str> = (0..f.height())
        .filter(|&i| drift.get(i) == Some(true))
        .filter_map(|i| feature.get(i))
        .collect();
    assert_eq!(
        names,
        ["brightness", "source", "width"].into_iter().collect(),
        "the covariate shift's features"
    );

    // Progress, when asked for, names each stage on stderr.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["export", "--state", p(&state), "--out"])
        .arg(dir.path().join("again.parquet"))
        .env_remove("DRIFTD_CONFIG")
        .env("DRIFTD_PROGRESS", "always")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(o.stdout.is_empty());
    assert!(
        err.contains("driftd: reading windows from the state store")
            && err.contains("driftd: writing 5 rows to ")
            && err.contains("driftd: wrote 5 rows of windows"),
        "{err}"
    );

    // Decisions: the rule's, with the fired one.
    let (d, _) = export("decisions", "csv", &[]);
    assert!(d.height() >= 3);
    let outcome = d.column("outcome").unwrap().str().unwrap().clone();
    let fired = (0..d.height())
        .filter(|&i| outcome.get(i) == Some("fired"))
        .count();
    assert_eq!(fired, 1);

    // A bad --since is a clear error.
    let out = driftd(&[
        "export",
        "--state",
        p(&state),
        "--out",
        p(&dir.path().join("x.parquet")),
        "--since",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--since \"yesterday\": not an RFC 3339 time"));
}

/// `notebooks/`: each notebook runs headless (nbconvert, a real Jupyter
/// kernel) on an export of a replayed covariate shift, without an error, and
/// plots and prints what the export holds.
#[test]
fn the_notebooks_run_headless_on_an_export() {
    let py = common::python(&[
        "nbconvert",
        "nbclient",
        "ipykernel",
        "pandas",
        "matplotlib",
        "pyarrow",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let reports = store_of_a_replay(dir.path());
    let state = dir.path().join("state");
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    for table in ["windows", "features", "decisions"] {
        let out = export.join(format!("{table}.parquet"));
        let o = driftd(&[
            "export",
            "--state",
            p(&state),
            "--table",
            table,
            "--out",
            p(&out),
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
    }
    let notebooks = concat!(env!("CARGO_MANIFEST_DIR"), "/notebooks");
    let executed = dir.path().join("executed");
    let o = std::process::Command::new(&py)
        .args([
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
        ])
        .arg("--ExecutePreprocessor.timeout=300")
        .arg(format!("{notebooks}/drift_over_time.ipynb"))
        .arg(format!("{notebooks}/quality_and_decisions.ipynb"))
        .arg("--output-dir")
        .arg(&executed)
        .env("DRIFTD_EXPORT_DIR", &export)
        .env("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        .env("JUPYTER_PLATFORM_DIRS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "nbconvert: {}", common::stderr(&o));

    // What each executed notebook printed, and how many figures it drew.
    let outputs = |name: &str| -> (String, usize) {
        let nb: Value =
            serde_json::from_slice(&std::fs::read(executed.join(name)).unwrap()).unwrap();
        let (mut text, mut images) = (String::new(), 0);
        for cell in nb["cells"].as_array().unwrap() {
            for out in cell["outputs"].as_array().into_iter().flatten() {
                assert_ne!(out["output_type"], "error", "{name}: {out}");
                match &out["text"] {
                    Value::Array(lines) => lines
                        .iter()
                        .for_each(|l| text.push_str(l.as_str().unwrap())),
                    Value::String(s) => text.push_str(s),
                    _ => {}
                }
                if out["data"]["image/png"].is_string() {
                    images += 1;
                }
            }
        }
        (text, images)
    };
    let mut drifted: Vec<&str> = reports
        .iter()
        .flat_map(|r| r["drift"]["features"].as_array().unwrap())
        .filter(|f| f["drift"] == true)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    drifted.sort();
    drifted.dedup();
    let (text, images) = outputs("drift_over_time.ipynb");
    assert!(
        text.contains(&format!("{} windows of 1 model(s)", reports.len())),
        "{text}"
    );
    assert!(
        text.contains(&format!("drifted features: {}", drifted.join(", "))),
        "{text}"
    );
    // The drift share, the per-feature grid and one score plot per drifted feature.
    assert_eq!(images, 2 + drifted.len());

    let decisions: Vec<&Value> = reports
        .iter()
        .flat_map(|r| r["decisions"].as_array().unwrap())
        .collect();
    let fired = decisions.iter().filter(|d| d["outcome"] == "fired").count();
    let (text, images) = outputs("quality_and_decisions.ipynb");
    assert!(
        text.contains(&format!(
            "{} decisions, {fired} fired: retrain by drift-retrain",
            decisions.len()
        )),
        "{text}"
    );
    // The quality panels and the decisions timeline.
    assert_eq!(images, 2);
}
