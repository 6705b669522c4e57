//! `driftd export`: the state store's history as a table for notebooks and
//! BI tools (polars, Parquet or CSV): one row per window, per window and
//! feature, or per decision.

use std::path::Path;

use polars::prelude::*;
use serde_json::Value;

use super::CliError;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportTable {
    /// One row per closed window: drift, quality, signals, learned checks,
    /// the estimator's prediction.
    Windows,
    /// One row per window and monitored feature: method, score, threshold,
    /// drift.
    Features,
    /// One row per rule decision: rule, action, outcome, delivery.
    Decisions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Parquet,
    Csv,
}

pub struct ExportArgs<'a> {
    /// The state directory (`state.dir`).
    pub state: &'a Path,
    pub table: ExportTable,
    pub format: ExportFormat,
    pub out: &'a Path,
    /// Only windows (and their decisions) ending at or after this time.
    pub since: Option<&'a str>,
    pub progress: &'a super::Progress,
}

/// What was written, for the summary.
#[derive(Debug, serde::Serialize)]
pub struct Exported {
    pub table: &'static str,
    pub rows: usize,
    pub columns: Vec<String>,
    pub path: String,
}

/// Window-level figures: (column, JSON pointer into the window report).
const WINDOW_COLUMNS: &[(&str, &str)] = &[
    ("baseline", "/baseline"),
    ("events", "/signals/events"),
    ("dataset_drift", "/drift/dataset/drift"),
    ("drift_share", "/drift/dataset/share"),
    ("drifted_features", "/drift/dataset/drifted"),
    ("error_rate", "/signals/error_rate"),
    ("empty_caption_rate", "/signals/empty_caption_rate"),
    ("latency_ms_p50", "/signals/latency_ms_p50"),
    ("latency_ms_p90", "/signals/latency_ms_p90"),
    ("latency_ms_p99", "/signals/latency_ms_p99"),
    ("late_events", "/signals/late_events"),
    ("empty_rate", "/captions/empty_rate"),
    (
        "boilerplate_prefix_rate",
        "/captions/boilerplate_prefix_rate",
    ),
    (
        "ends_with_stopword_rate",
        "/captions/ends_with_stopword_rate",
    ),
    ("token_count_mean", "/captions/token_count_mean"),
    ("oov_rate_mean", "/captions/oov_rate_mean"),
    (
        "duplicate_caption_share",
        "/captions/duplicate_caption_share",
    ),
    ("clip_score_mean", "/captions/clip_score_mean"),
    ("rating_mean", "/captions/rating_mean"),
    ("feedback_joined", "/captions/feedback_joined"),
    ("bleu_4", "/captions/references/bleu_4"),
    ("rouge_l", "/captions/references/rouge_l"),
    ("cider_d", "/captions/references/cider_d"),
    ("data_quality_issues", "/data_quality/issues"),
    ("new_feature_share", "/data_quality/new_features/share"),
    ("learned_drift", "/learned/drift"),
    ("classifier_auc", "/learned/classifier/auc"),
    (
        "classifier_auc_std_error",
        "/learned/classifier/auc_std_error",
    ),
    ("classifier_p_value", "/learned/classifier/p_value"),
    ("predicted_quality", "/estimator/predicted_mean"),
    ("estimator_version", "/estimator/version"),
];

/// Milliseconds of an RFC 3339 time (for `--since` and window ends).
fn millis(t: &str) -> Option<i64> {
    crate::event::parse_timestamp_str(t).ok()
}

impl ExportTable {
    fn name(self) -> &'static str {
        match self {
            ExportTable::Windows => "windows",
            ExportTable::Features => "features",
            ExportTable::Decisions => "decisions",
        }
    }
}

pub fn export(args: &ExportArgs<'_>) -> Result<Exported, CliError> {
    let since = match args.since {
        Some(s) => Some(millis(s).ok_or_else(|| {
            CliError::bad_input(format!(
                "--since {s:?}: not an RFC 3339 time (e.g. 2026-11-24T00:00:00Z)"
            ))
        })?),
        None => None,
    };
    let store = Store::open_read_only(args.state).map_err(|e| {
        CliError::bad_input(format!(
            "{}: cannot open the state store: {e}",
            args.state.display()
        ))
    })?;
    let keep = |end: &str| since.is_none_or(|s| millis(end).is_some_and(|e| e >= s));
    args.progress.stage(format!(
        "reading {} from the state store",
        args.table.name()
    ));
    let mut df = match args.table {
        ExportTable::Decisions => {
            let rows: Vec<_> = store
                .decisions(None, false, usize::MAX >> 1)
                .map_err(|e| CliError::failure(e.to_string()))?
                .into_iter()
                .filter(|d| keep(&d.window_end))
                .rev()
                .collect();
            let col = |name: &str, f: &dyn Fn(&crate::store::StoredDecision) -> String| {
                Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>())
            };
            DataFrame::new(
                rows.len(),
                vec![
                    col("id", &|d| d.id.clone()),
                    col("model", &|d| d.model.clone()),
                    col("model_version", &|d| d.model_version.clone()),
                    Column::new(
                        "window_index".into(),
                        rows.iter().map(|d| d.window_index).collect::<Vec<u64>>(),
                    ),
                    col("window_end", &|d| d.window_end.clone()),
                    col("rule", &|d| d.rule.clone()),
                    col("action", &|d| d.action.clone()),
                    col("outcome", &|d| d.outcome.clone()),
                    Column::new(
                        "delivery".into(),
                        rows.iter()
                            .map(|d| d.delivery.clone())
                            .collect::<Vec<Option<String>>>(),
                    ),
                ],
            )
        }
        ExportTable::Windows | ExportTable::Features => {
            let reports: Vec<Value> = store
                .all_windows()
                .map_err(|e| CliError::failure(e.to_string()))?
                .into_iter()
                .filter_map(|w| serde_json::from_str::<Value>(&w.report_json).ok())
                .filter(|r| keep(r["window"]["end"].as_str().unwrap_or_default()))
                .collect();
            if args.table == ExportTable::Windows {
                windows_frame(&reports)
            } else {
                features_frame(&reports)
            }
        }
    }
    .map_err(|e| CliError::failure(format!("building the table: {e}")))?;
    args.progress.stage(format!(
        "writing {} rows to {}",
        df.height(),
        args.out.display()
    ));
    let file = std::fs::File::create(args.out)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", args.out.display())))?;
    let written = match args.format {
        ExportFormat::Parquet => ParquetWriter::new(file).finish(&mut df).map(|_| ()),
        ExportFormat::Csv => CsvWriter::new(file).include_header(true).finish(&mut df),
    };
    written.map_err(|e| CliError::failure(format!("writing {}: {e}", args.out.display())))?;
    Ok(Exported {
        table: args.table.name(),
        rows: df.height(),
        columns: df
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect(),
        path: args.out.display().to_string(),
    })
}

/// The key columns of a window: model, version, index, start, end.
fn key_columns(reports: &[&Value]) -> Vec<Column> {
    let text = |name: &str, ptr: &str| {
        Column::new(
            name.into(),
            reports
                .iter()
                .map(|r| r.pointer(ptr).and_then(Value::as_str).map(str::to_owned))
                .collect::<Vec<Option<String>>>(),
        )
    };
    vec![
        text("model", "/model"),
        text("model_version", "/model_version"),
        Column::new(
            "window_index".into(),
            reports
                .iter()
                .map(|r| r["window"]["index"].as_u64())
                .collect::<Vec<Option<u64>>>(),
        ),
        text("window_start", "/window/start"),
        text("window_end", "/window/end"),
    ]
}

fn windows_frame(reports: &[Value]) -> PolarsResult<DataFrame> {
    let refs: Vec<&Value> = reports.iter().collect();
    let mut cols = key_columns(&refs);
    for (name, ptr) in WINDOW_COLUMNS {
        let values: Vec<Option<&Value>> = reports.iter().map(|r| r.pointer(ptr)).collect();
        let col = if values.iter().flatten().any(|v| v.is_string()) {
            Column::new(
                (*name).into(),
                values
                    .iter()
                    .map(|v| v.and_then(Value::as_str).map(str::to_owned))
                    .collect::<Vec<Option<String>>>(),
            )
        } else if values.iter().flatten().any(|v| v.is_boolean()) {
            Column::new(
                (*name).into(),
                values
                    .iter()
                    .map(|v| v.and_then(Value::as_bool))
                    .collect::<Vec<Option<bool>>>(),
            )
        } else {
            Column::new(
                (*name).into(),
                values
                    .iter()
                    .map(|v| v.and_then(Value::as_f64))
                    .collect::<Vec<Option<f64>>>(),
            )
        };
        cols.push(col);
    }
    DataFrame::new(reports.len(), cols)
}

fn features_frame(reports: &[Value]) -> PolarsResult<DataFrame> {
    let mut owners = Vec::new();
    let mut features: Vec<&Value> = Vec::new();
    // Each feature's data-quality checks, beside its drift figures.
    let mut checks: Vec<Option<&Value>> = Vec::new();
    for r in reports {
        for f in r["drift"]["features"].as_array().into_iter().flatten() {
            owners.push(r);
            features.push(f);
            checks.push(
                r["data_quality"]["features"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|q| q["name"] == f["name"]),
            );
        }
    }
    let check = |name: &str| {
        Column::new(
            name.into(),
            checks
                .iter()
                .map(|q| q.and_then(|q| q[name].as_f64()))
                .collect::<Vec<Option<f64>>>(),
        )
    };
    let mut cols = key_columns(&owners);
    let text = |name: &str, key: &str| {
        Column::new(
            name.into(),
            features
                .iter()
                .map(|f| f[key].as_str().map(str::to_owned))
                .collect::<Vec<Option<String>>>(),
        )
    };
    let number = |name: &str, key: &str| {
        Column::new(
            name.into(),
            features
                .iter()
                .map(|f| f[key].as_f64())
                .collect::<Vec<Option<f64>>>(),
        )
    };
    cols.extend([
        text("feature", "name"),
        text("kind", "kind"),
        text("method", "method"),
        number("score", "score"),
        number("threshold", "threshold"),
        Column::new(
            "drift".into(),
            features
                .iter()
                .map(|f| f["drift"].as_bool())
                .collect::<Vec<Option<bool>>>(),
        ),
        number("reference_count", "reference_count"),
        number("current_count", "current_count"),
        check("missing_rate"),
        check("wrong_type_share"),
        check("unseen_share"),
        check("out_of_range_share"),
        Column::new(
            "data_quality_flags".into(),
            checks
                .iter()
                .map(|q| {
                    let flags = (*q)?["flagged"].as_array()?;
                    Some(
                        flags
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                })
                .collect::<Vec<Option<String>>>(),
        ),
    ]);
    DataFrame::new(features.len(), cols)
}
