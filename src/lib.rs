#![forbid(unsafe_code)]
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
//! file / Kafka ─► event ─► baseline::dataset ─► monitor::evaluate ─► report (JSON, HTML)
//!                  │             │                    ▲
//!                  │             └─► baseline::profile ┘   (reference without raw rows)
//!                  └─► rejections (reason + detail)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | TOML loading, `${VAR:-default}` interpolation, validation that reports every problem at once |
//! | [`event`] | the inference-log and feedback contracts, decoding with per-model JSON pointers, rejection reasons |
//! | [`sketch`] | mergeable, serializable summaries: moments, category counts, quantile summaries (and KS / W1 from them) |
//! | [`stats`] | drift statistics matching scipy: KS (exact and asymptotic), Wasserstein, PSI, Jensen-Shannon, chi-square |
//! | [`baseline`] | reading datasets (polars: Parquet, CSV, NDJSON; event logs through [`event`]), reference profiles |
//! | [`monitor`] | comparing current data with a reference and the drift decisions |
//! | [`report`] | rendering a drift report as JSON or self-contained HTML |
//! | [`cli`] | the commands (`report`, `baseline`, `check-config`), exit codes, progress on stderr |
//!
//! Statistics never see files; configuration never sees data. The streaming
//! daemon (a later issue) feeds [`monitor`] from windows instead of files and
//! reuses everything below it.

pub mod baseline;
pub mod cli;
pub mod config;
pub mod event;
pub mod monitor;
pub mod quality;
pub mod report;
pub mod sketch;
pub mod source;
pub mod stats;
#[doc(hidden)]
pub mod testkit;
