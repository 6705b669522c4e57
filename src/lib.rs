// One measured hot path reads ASCII bytes as text unchecked
// (`event::fast`); everything else is safe code.
#![deny(unsafe_code)]
//! # driftd
//!
//! Watches the inference logs of deployed ML models, measures drift and
//! caption quality window by window, and asks CI to retrain and redeploy when
//! an operator's thresholds are crossed. This crate is the library behind the
//! `driftd` binary; `main.rs` only parses arguments.
//!
//! ## Layout, following the data flow of `DESIGN.md`
//!
//! ```text
//! offline:   file ─► baseline::dataset ─► monitor::evaluate ─► report (JSON, HTML)
//!                         │                      ▲
//!                         └─► baseline::profile ─┘   (reference without raw rows)
//! streaming: source (Kafka, file, generator) ─► event ─► monitor::engine
//!              windows of monitor::tracker (sketch, quality, signals) ─► window reports
//!              feedback (Kafka) ─► joined by event_id ─► reference metrics per window
//!              rejections (reason + detail) ─► dead-letter (topic or file)
//! daemon:    engine snapshot + offsets + closed windows ─► store (one transaction)
//!              ─► offsets committed to the group ─► metrics, http (JSON API)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | TOML loading, `${VAR:-default}` interpolation, validation that reports every problem at once |
//! | [`event`] | the inference-log and feedback contracts, decoding with per-model JSON pointers (and a fast path for the default layout), rejection reasons |
//! | [`source`] | where events come from: the Kafka consumer (offsets, dead-letter topic), NDJSON files or stdin, synthetic logs (`generate`) |
//! | [`sketch`] | mergeable, serializable summaries: moments, category counts, quantile summaries, KLL, exact tails (and KS / W1 from them) |
//! | [`stats`] | drift statistics matching scipy: KS (exact and asymptotic), Wasserstein, PSI, Jensen-Shannon, chi-square |
//! | [`baseline`] | reading datasets (polars: Parquet, CSV, NDJSON; event logs through [`event`]), reference profiles |
//! | [`monitor`] | comparing current data with a reference, the drift decisions, the streaming engine and its window trackers |
//! | [`quality`] | caption tokenizer, BLEU / ROUGE-L / CIDEr-D as pycocoevalcap, descriptors, CLIPScore |
//! | [`report`] | rendering a drift report as JSON or self-contained HTML |
//! | [`store`] | the embedded SQLite state store: checkpoints (engine state, offsets), closed windows |
//! | [`metrics`] | every Prometheus metric, defined once; text and OpenMetrics exposition |
//! | [`http`] | the axum server: `/metrics`, `/healthz`, `/readyz`, the JSON API |
//! | [`daemon`] | `driftd run`: the consume, checkpoint, commit loop, shutdown |
//! | [`action`] | delivering decisions to CI: Standard Webhooks and GitHub signatures (the outbox and delivery follow in issue 5) |
//! | [`cli`] | the commands (`report`, `baseline`, `check-config`, `score-captions`, `generate`, `replay`, `run`, `demo`), exit codes, progress on stderr |
//!
//! Statistics never see files; configuration never sees data; the engine
//! never sees Kafka or HTTP. `replay`, `run` and `demo` feed the same
//! [`monitor::engine`].

pub mod action;
pub mod baseline;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod event;
pub mod http;
pub mod learned;
pub mod metrics;
pub mod monitor;
pub mod quality;
pub mod report;
pub mod rules;
pub mod sketch;
pub mod source;
pub mod stats;
pub mod store;
#[doc(hidden)]
pub mod testkit;
