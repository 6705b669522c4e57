//! Every Prometheus metric driftd exposes, defined once. Names start with
//! `driftd_`, use base units (seconds, ratios) and counters end in `_total`.
//! Label values are bounded: model names (capped by `limits.max_models`),
//! feature names (capped by `limits.max_features` per model), test names,
//! reject reasons (a closed set), topics from the config and partition
//! numbers. Never an event id or a raw error message.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::event::RejectReason;
use crate::monitor::evaluate::Tests;
use crate::monitor::WindowReport;

type Labels = Vec<(&'static str, LabelValue)>;

/// A label value, escaped as the text formats require when it is written
/// (`\\`, `\"` and `\n`; prometheus-client writes values verbatim). Model,
/// version and feature names come from events: unescaped, a `"` would end the
/// value early and a newline would start a forged sample.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelValue(String);

impl LabelValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for LabelValue {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for LabelValue {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<&String> for LabelValue {
    fn from(s: &String) -> Self {
        Self(s.clone())
    }
}

impl prometheus_client::encoding::EncodeLabelValue for LabelValue {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        let s = self.0.as_str();
        let mut rest = s;
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            encoder.write_str(&rest[..i])?;
            encoder.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        encoder.write_str(rest)
    }
}

/// A metric's label set: `labels![("model", name), ("feature", f)]`, each
/// value turned into an escaped [`LabelValue`].
#[macro_export]
macro_rules! labels {
    ($(($k:expr, $v:expr)),* $(,)?) => {
        vec![$(($k, $crate::metrics::LabelValue::from($v))),*]
    };
}
type FGauge = Gauge<f64, AtomicU64>;

/// The metric set of one daemon.
pub struct Metrics {
    registry: Registry,
    pub events_consumed: Counter,
    pub events_rejected: Family<Labels, Counter>,
    pub events_skipped_replayed: Counter,
    pub dead_letters: Counter,
    pub dead_letter_failures: Family<Labels, Counter>,
    pub feedback_consumed: Counter,
    pub feedback: Family<Labels, Counter>,
    pub windows_closed: Family<Labels, Counter>,
    pub decisions: Family<Labels, Counter>,
    pub retrain_in_flight: Family<Labels, FGauge>,
    pub delivery_attempts: Family<Labels, Counter>,
    pub deliveries_pending: FGauge,
    pub deliveries_oldest_pending_age: FGauge,
    pub model_version_role: Family<Labels, FGauge>,
    pub candidate_windows: Family<Labels, FGauge>,
    pub candidates_registered: Family<Labels, Counter>,
    pub config_reloads: Family<Labels, Counter>,
    pub config_last_reload_successful: FGauge,
    pub config_last_reload_success_time: FGauge,
    pub window_events: Family<Labels, FGauge>,
    pub late_events: Family<Labels, Counter>,
    pub baseline_ready: Family<Labels, FGauge>,
    pub drift_score: Family<Labels, FGauge>,
    pub feature_drift: Family<Labels, FGauge>,
    pub dataset_drift_share: Family<Labels, FGauge>,
    pub dataset_drift: Family<Labels, FGauge>,
    pub data_quality_issues: Family<Labels, FGauge>,
    pub data_quality_ratio: Family<Labels, FGauge>,
    pub data_quality_flagged: Family<Labels, FGauge>,
    pub caption_quality: Family<Labels, FGauge>,
    pub error_ratio: Family<Labels, FGauge>,
    pub empty_caption_ratio: Family<Labels, FGauge>,
    pub latency: Family<Labels, FGauge>,
    pub silent: Family<Labels, FGauge>,
    pub last_event_time: Family<Labels, FGauge>,
    pub last_event_received: Family<Labels, FGauge>,
    pub consumer_lag: Family<Labels, FGauge>,
    pub processing: Histogram,
    pub checkpoint_duration: Histogram,
    pub learned_duration: Histogram,
    pub learned_failures: Counter,
    pub learned_drift: Family<Labels, FGauge>,
    pub learned_classifier_auc: Family<Labels, FGauge>,
    pub learned_classifier_p_value: Family<Labels, FGauge>,
    pub learned_embedding: Family<Labels, FGauge>,
    pub estimator_version: Family<Labels, FGauge>,
    pub estimator_training_samples: Family<Labels, FGauge>,
    pub estimator_validation_rmse: Family<Labels, FGauge>,
    pub estimator_trainings: Family<Labels, Counter>,
    pub checkpoints: Counter,
    pub kafka_errors: Family<Labels, Counter>,
    pub partitions_assigned: FGauge,
    pub kafka_rejoins: Counter,
    pub checkpoint_failures: Counter,
    pub truncated: Family<Labels, Counter>,
    pub state_shed: Family<Labels, Counter>,
    pub future_events: Counter,
    pub versions_evicted: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("driftd");
        // A gauge rather than an OpenMetrics `info`: the classic text parser
        // (promtool check metrics, older Prometheus) rejects the info type.
        let build: Family<Labels, FGauge> = Family::default();
        build
            .get_or_create(&crate::labels![(
                "version",
                env!("CARGO_PKG_VERSION").to_owned()
            )])
            .set(1.0);
        r.register("build_info", "driftd build information (always 1)", build);
        macro_rules! reg {
            ($name:literal, $help:literal, $m:expr) => {{
                let m = $m;
                r.register($name, $help, m.clone());
                m
            }};
        }
        let events_rejected: Family<Labels, Counter> = reg!(
            "events_rejected",
            "Events rejected, by reason",
            Family::default()
        );
        // Every reason is present from the start, so rate() works at once.
        for reason in RejectReason::ALL {
            events_rejected
                .get_or_create(&crate::labels![("reason", reason.as_str().to_owned())])
                .inc_by(0);
        }
        Self {
            events_consumed: reg!(
                "events_consumed",
                "Inference-log events consumed (accepted or rejected)",
                Counter::default()
            ),
            events_rejected,
            events_skipped_replayed: reg!(
                "events_skipped_replayed",
                "Events delivered again after a restart that the checkpointed state already held, skipped",
                Counter::default()
            ),
            dead_letters: reg!(
                "dead_letters",
                "Rejected events written to the dead-letter topic or file",
                Counter::default()
            ),
            dead_letter_failures: reg!(
                "dead_letter_failures",
                "Dead letters not written, by reason: unknown_topic, too_large, not_authorized, timeout, queue_full, other (the events stay counted as rejected)",
                Family::default()
            ),
            feedback_consumed: reg!(
                "feedback_consumed",
                "Feedback events consumed",
                Counter::default()
            ),
            feedback: {
                let f: Family<Labels, Counter> = reg!(
                    "feedback_events",
                    "Feedback events by outcome: joined, late (its event waited longer than feedback.ttl), unmatched, rejected",
                    Family::default()
                );
                for o in ["joined", "late", "unmatched", "rejected"] {
                    f.get_or_create(&crate::labels![("outcome", o.to_owned())]).inc_by(0);
                }
                f
            },
            windows_closed: reg!(
                "windows_closed",
                "Windows closed and evaluated, by model",
                Family::default()
            ),
            delivery_attempts: reg!(
                "delivery_attempts",
                "Delivery attempts of fired decisions by target and outcome: delivered, retry, dead, gone (410: target disabled)",
                Family::default()
            ),
            deliveries_pending: reg!(
                "deliveries_pending",
                "Deliveries in the outbox not yet delivered or dead",
                FGauge::default()
            ),
            deliveries_oldest_pending_age: reg!(
                "deliveries_oldest_pending_age_seconds",
                "Age of the oldest delivery in the outbox not yet delivered or dead (0 when none)",
                FGauge::default()
            ),
            model_version_role: reg!(
                "model_version_role",
                "1 for each model version with a role in the training loop: incumbent, candidate or previous",
                Family::default()
            ),
            candidate_windows: reg!(
                "candidate_windows_judged",
                "Windows of the model's registered candidate judged so far (0 without a candidate)",
                Family::default()
            ),
            candidates_registered: reg!(
                "candidates_registered",
                "Candidate registrations accepted, by model",
                Family::default()
            ),
            config_reloads: reg!(
                "config_reloads",
                "Config reloads by outcome: applied, invalid",
                Family::default()
            ),
            config_last_reload_successful: reg!(
                "config_last_reload_successful",
                "1 when the last config reload was applied (or none was tried), 0 when it was refused",
                FGauge::default()
            ),
            config_last_reload_success_time: reg!(
                "config_last_reload_success_timestamp_seconds",
                "When the running config was loaded or last reloaded",
                FGauge::default()
            ),
            retrain_in_flight: reg!(
                "retrain_in_flight",
                "1 while a retrain decided for the model has no candidate yet and has not timed out (actions.retrain_timeout, event time)",
                Family::default()
            ),
            decisions: reg!(
                "rule_decisions",
                "Rule decisions on breaching windows, by model, rule, action and outcome (fired, dry_run, or suppressed_<reason>)",
                Family::default()
            ),
            window_events: reg!(
                "window_events",
                "Events in the model's last closed window",
                Family::default()
            ),
            late_events: reg!(
                "late_events",
                "Events that arrived after their window closed, by model",
                Family::default()
            ),
            baseline_ready: reg!(
                "baseline_ready",
                "1 when the model version's baseline is ready, 0 while it is being learned",
                Family::default()
            ),
            drift_score: reg!(
                "drift_score",
                "Drift statistic of the model's last closed window, by feature and test",
                Family::default()
            ),
            feature_drift: reg!(
                "feature_drift",
                "1 when the feature drifted in the model's last closed window",
                Family::default()
            ),
            dataset_drift_share: reg!(
                "dataset_drift_share_ratio",
                "Share of monitored features that drifted in the model's last closed window",
                Family::default()
            ),
            dataset_drift: reg!(
                "dataset_drift",
                "1 when the model's last closed window drifted as a whole",
                Family::default()
            ),
            data_quality_issues: reg!(
                "data_quality_issues",
                "Data-quality flags raised in the model's last closed window",
                Family::default()
            ),
            data_quality_ratio: reg!(
                "data_quality_ratio",
                "A feature's missing, wrong-type, unseen or out-of-range share in the model's last closed window (new_feature: the events with features the baseline lacks)",
                Family::default()
            ),
            data_quality_flagged: reg!(
                "data_quality_flagged",
                "1 when the data-quality check flagged the feature in the model's last closed window",
                Family::default()
            ),
            caption_quality: reg!(
                "caption_quality",
                "Caption-quality aggregate of the model's last closed window, by metric",
                Family::default()
            ),
            error_ratio: reg!(
                "serving_error_ratio",
                "Share of events with a serving error in the model's last closed window",
                Family::default()
            ),
            empty_caption_ratio: reg!(
                "empty_caption_ratio",
                "Share of successful events with an empty caption in the model's last closed window",
                Family::default()
            ),
            latency: reg!(
                "serving_latency_seconds",
                "Serving latency percentiles (p50, p90, p99) of the model's last closed window",
                Family::default()
            ),
            silent: reg!(
                "model_silent",
                "1 when a model that sent events has sent none for signals.silence_after",
                Family::default()
            ),
            last_event_time: reg!(
                "last_event_timestamp_seconds",
                "Event time of the model's newest event, Unix seconds",
                Family::default()
            ),
            last_event_received: reg!(
                "last_event_received_timestamp_seconds",
                "Wall-clock time the model's newest event was consumed, Unix seconds",
                Family::default()
            ),
            consumer_lag: reg!(
                "consumer_lag_messages",
                "Messages between the consumer's position and the end of the partition",
                Family::default()
            ),
            processing: reg!(
                "event_processing_duration_seconds",
                "Time to decode, route and track one event",
                Histogram::new(exponential_buckets(1e-6, 4.0, 10))
            ),
            checkpoint_duration: reg!(
                "checkpoint_duration_seconds",
                "Time to write one checkpoint to the state store",
                Histogram::new(exponential_buckets(1e-4, 4.0, 10))
            ),
            learned_duration: reg!(
                "learned_checks_duration_seconds",
                "Time to run one closed window's learned checks (domain classifier, embedding MMD) on the worker thread",
                Histogram::new(exponential_buckets(1e-3, 2.0, 14))
            ),
            learned_failures: reg!(
                "learned_check_failures",
                "Windows whose learned checks failed unexpectedly (reported without them; see the log)",
                Counter::default()
            ),
            learned_drift: reg!(
                "learned_drift",
                "1 when a learned check (domain classifier or embedding MMD) flagged the model's last closed window",
                Family::default()
            ),
            learned_classifier_auc: reg!(
                "learned_classifier_auc",
                "Held-out ROC AUC of the domain classifier telling the reference sample from the model's last closed window (0.5: indistinguishable)",
                Family::default()
            ),
            learned_classifier_p_value: reg!(
                "learned_classifier_p_value",
                "Permutation p-value of the domain classifier's AUC on the model's last closed window (drift below learned.classifier_alpha)",
                Family::default()
            ),
            learned_embedding: reg!(
                "learned_embedding_drift",
                "Embedding drift of the model's last closed window, by embedding and statistic (mmd2, p_value, mean_shift, classifier_auc, classifier_p_value)",
                Family::default()
            ),
            estimator_version: reg!(
                "quality_estimator_version",
                "Current version of the model's caption-quality estimator (absent before the first)",
                Family::default()
            ),
            estimator_training_samples: reg!(
                "quality_estimator_training_samples",
                "Rated captions the current caption-quality estimator was trained on",
                Family::default()
            ),
            estimator_validation_rmse: reg!(
                "quality_estimator_validation_rmse",
                "Root mean squared error of the current caption-quality estimator on its held-out ratings",
                Family::default()
            ),
            estimator_trainings: reg!(
                "quality_estimator_trainings",
                "Caption-quality estimator trainings, by outcome (accepted, or rejected when not better than the current version)",
                Family::default()
            ),
            checkpoints: reg!(
                "checkpoints",
                "Checkpoints written to the state store",
                Counter::default()
            ),
            kafka_errors: reg!(
                "kafka_errors",
                "Errors reported by the Kafka client, by error code",
                Family::default()
            ),
            partitions_assigned: reg!(
                "partitions_assigned",
                "Partitions currently assigned to this consumer",
                FGauge::default()
            ),
            checkpoint_failures: reg!(
                "checkpoint_failures",
                "Checkpoints that could not be written (disk full, say; see the log); the last one written holds and offsets wait",
                Counter::default()
            ),
            kafka_rejoins: reg!(
                "kafka_group_rejoins",
                "Times the consumer left and rejoined its group after its assignment stayed empty while the topics had partitions",
                Counter::default()
            ),
            truncated: {
                let f: Family<Labels, Counter> = reg!(
                    "state_truncations",
                    "Items kept shorter than they came, by item: event_id (hashed beyond 128 bytes), caption, reference (2 KiB each, 16 references)",
                    Family::default()
                );
                for item in ["event_id", "caption", "reference"] {
                    f.get_or_create(&crate::labels![("item", item)]).inc_by(0);
                }
                f
            },
            state_shed: {
                let f: Family<Labels, Counter> = reg!(
                    "state_shed",
                    "State dropped to stay within limits.max_state_bytes, by item: pending_feedback, scored_caption, learned_sample, version",
                    Family::default()
                );
                for item in ["pending_feedback", "scored_caption", "learned_sample", "version"] {
                    f.get_or_create(&crate::labels![("item", item)]).inc_by(0);
                }
                f
            },
            future_events: reg!(
                "events_future",
                "Events stamped far ahead of their model version's clock, counted in a window and not tracked (ten in a row move the clock)",
                Counter::default()
            ),
            versions_evicted: reg!(
                "model_versions_evicted",
                "Model versions dropped for a newer one beyond limits.max_versions_per_model, or to keep within limits.max_state_bytes (their stored history stays)",
                Counter::default()
            ),
            registry: r,
        }
    }

    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): what
    /// `promtool check metrics` and scrapers without OpenMetrics read. The
    /// OpenMetrics text differs only in counter family names (`_total` there
    /// only on samples) and the closing `# EOF`.
    pub fn render_text(&self) -> String {
        let om = self.render_openmetrics();
        let mut counters = std::collections::HashSet::new();
        for line in om.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                if let Some(name) = rest.strip_suffix(" counter") {
                    counters.insert(name.to_owned());
                }
            }
        }
        let mut out = String::with_capacity(om.len() + 64);
        for line in om.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let meta = ["# HELP ", "# TYPE "]
                .iter()
                .find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
            match meta {
                Some((prefix, rest)) => {
                    let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                    out.push_str(prefix);
                    out.push_str(name);
                    if counters.contains(name) {
                        out.push_str("_total");
                    }
                    out.push(' ');
                    out.push_str(tail);
                }
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }

    /// Set the gauges of a model from its newest closed window.
    /// The data-quality checks of a closed window: per feature and check,
    /// its share and whether it flagged (label values bounded by the
    /// model's features and the fixed checks).
    fn record_data_quality(&self, w: &WindowReport) {
        use crate::monitor::data_quality::Check;
        let dq = &w.data_quality;
        self.data_quality_issues
            .get_or_create(&crate::labels![("model", w.model.clone())])
            .set(dq.issues as f64);
        let labels = |feature: &str, check: &str| {
            crate::labels![
                ("model", w.model.clone()),
                ("feature", feature.to_owned()),
                ("check", check.to_owned()),
            ]
        };
        for f in &dq.features {
            let shares = [
                ("missing_rate", Some(f.missing_rate)),
                ("wrong_type", Some(f.wrong_type_share)),
                ("unseen_categories", f.unseen_share),
                ("out_of_range", f.out_of_range_share),
            ];
            for (check, share) in shares {
                if let Some(v) = share {
                    self.data_quality_ratio
                        .get_or_create(&labels(&f.name, check))
                        .set(v);
                }
            }
            for c in Check::ALL {
                let applies = match c {
                    Check::UnseenCategories => f.unseen_share.is_some(),
                    Check::OutOfRange => f.out_of_range_share.is_some(),
                    Check::NewFeatures => false,
                    _ => true,
                };
                if applies {
                    self.data_quality_flagged
                        .get_or_create(&labels(&f.name, c.as_str()))
                        .set(f64::from(u8::from(f.flagged.contains(&c))));
                }
            }
        }
        let all = crate::labels![
            ("model", w.model.clone()),
            ("check", "new_features".to_owned())
        ];
        self.data_quality_ratio
            .get_or_create(&all)
            .set(dq.new_features.share);
        self.data_quality_flagged
            .get_or_create(&all)
            .set(f64::from(u8::from(dq.new_features.flagged)));
    }

    pub fn record_window(&self, w: &WindowReport) {
        let model = || crate::labels![("model", w.model.clone())];
        self.windows_closed.get_or_create(&model()).inc();
        self.window_events
            .get_or_create(&model())
            .set(w.signals.events as f64);
        if w.signals.late_events > 0 {
            self.late_events
                .get_or_create(&model())
                .inc_by(w.signals.late_events);
        }
        for f in &w.drift.features {
            let fl = |test: &str| {
                crate::labels![
                    ("model", w.model.clone()),
                    ("feature", f.name.clone()),
                    ("test", test.to_owned()),
                ]
            };
            for (test, value) in test_values(&f.tests) {
                self.drift_score.get_or_create(&fl(test)).set(value);
            }
            self.feature_drift
                .get_or_create(&crate::labels![
                    ("model", w.model.clone()),
                    ("feature", f.name.clone()),
                ])
                .set(f64::from(u8::from(f.drift)));
        }
        self.dataset_drift_share
            .get_or_create(&model())
            .set(w.drift.dataset.share);
        self.record_data_quality(w);
        self.dataset_drift
            .get_or_create(&model())
            .set(f64::from(u8::from(w.drift.dataset.drift)));
        let c = &w.captions;
        let mut quality = vec![
            ("empty_rate", c.empty_rate),
            ("boilerplate_prefix_rate", c.boilerplate_prefix_rate),
            ("ends_with_stopword_rate", c.ends_with_stopword_rate),
            ("token_count_mean", c.token_count_mean),
            ("type_token_ratio_mean", c.type_token_ratio_mean),
            ("oov_rate_mean", c.oov_rate_mean),
            ("repeated_2gram_rate_mean", c.repeated_2gram_rate_mean),
            ("duplicate_caption_share", c.duplicate_caption_share),
            ("top_caption_share", c.top_caption_share),
        ];
        if let Some(s) = c.clip_score_mean {
            quality.push(("clip_score_mean", s));
        }
        if let Some(r) = c.rating_mean {
            quality.push(("rating_mean", r));
        }
        if let Some(r) = &c.references {
            for (name, v) in [
                ("bleu_4", r.bleu_4),
                ("rouge_l", r.rouge_l),
                ("cider_d", r.cider_d),
            ] {
                if let Some(v) = v {
                    quality.push((name, v));
                }
            }
        }
        for (metric, v) in quality {
            self.caption_quality
                .get_or_create(&crate::labels![
                    ("model", w.model.clone()),
                    ("metric", metric.to_owned()),
                ])
                .set(v);
        }
        if let Some(e) = &w.estimator {
            if let Some(p) = e.predicted_mean {
                self.caption_quality
                    .get_or_create(&crate::labels![
                        ("model", w.model.clone()),
                        ("metric", "predicted_mean".to_owned()),
                    ])
                    .set(p);
            }
            if let (Some(v), Some(n), Some(rmse)) =
                (e.version, e.training_samples, e.validation_rmse)
            {
                self.estimator_version
                    .get_or_create(&model())
                    .set(f64::from(v));
                self.estimator_training_samples
                    .get_or_create(&model())
                    .set(n as f64);
                self.estimator_validation_rmse
                    .get_or_create(&model())
                    .set(rmse);
            }
            for t in &e.trained {
                let outcome = if t.accepted { "accepted" } else { "rejected" };
                self.estimator_trainings
                    .get_or_create(&crate::labels![
                        ("model", w.model.clone()),
                        ("outcome", outcome.to_owned()),
                    ])
                    .inc();
            }
        }
        if let Some(l) = &w.learned {
            self.learned_drift
                .get_or_create(&model())
                .set(f64::from(u8::from(l.drift)));
            if let Some(r) = l.classifier.as_ref().and_then(|c| c.result.as_ref()) {
                self.learned_classifier_auc
                    .get_or_create(&model())
                    .set(r.auc);
                if !r.p_value.is_nan() {
                    self.learned_classifier_p_value
                        .get_or_create(&model())
                        .set(r.p_value);
                }
            }
            // Embedding names are bounded (learned::window::MAX_EMBEDDINGS).
            for (name, e) in &l.embeddings {
                let mut stats = Vec::new();
                if let Some(m) = &e.mmd {
                    stats.extend([
                        ("mmd2", m.mmd2),
                        ("p_value", m.p_value),
                        ("mean_shift", m.mean_shift),
                    ]);
                }
                if let Some(c) = &e.classifier {
                    stats.push(("classifier_auc", c.auc));
                    if !c.p_value.is_nan() {
                        stats.push(("classifier_p_value", c.p_value));
                    }
                }
                for (stat, v) in stats {
                    self.learned_embedding
                        .get_or_create(&crate::labels![
                            ("model", w.model.clone()),
                            ("embedding", name.clone()),
                            ("statistic", stat.to_owned()),
                        ])
                        .set(v);
                }
            }
        }
        let s = &w.signals;
        self.error_ratio.get_or_create(&model()).set(s.error_rate);
        self.empty_caption_ratio
            .get_or_create(&model())
            .set(s.empty_caption_rate);
        for (q, v) in [
            ("p50", s.latency_ms_p50),
            ("p90", s.latency_ms_p90),
            ("p99", s.latency_ms_p99),
        ] {
            if let Some(v) = v {
                self.latency
                    // Not `quantile`: that label belongs to summaries.
                    .get_or_create(&crate::labels![
                        ("model", w.model.clone()),
                        ("percentile", q)
                    ])
                    .set(v / 1000.0);
            }
        }
    }
}

/// Bring a counter family labelled by `item` up from the counts `was` to the
/// counts `now` (both in the same item order).
pub fn count_up(
    family: &Family<Labels, Counter>,
    now: &[(&'static str, u64)],
    was: &[(&'static str, u64)],
) {
    for ((item, n), (_, before)) in now.iter().zip(was) {
        if n > before {
            family
                .get_or_create(&crate::labels![("item", *item)])
                .inc_by(n - before);
        }
    }
}

/// The statistics a feature's tests produced, named as in the JSON report.
fn test_values(t: &Tests) -> Vec<(&'static str, f64)> {
    match t {
        Tests::Numeric(n) => vec![
            ("ks_statistic", n.ks.statistic),
            ("ks_p_value", n.ks.p_value),
            ("wasserstein_normalized", n.wasserstein.normalized),
            ("psi", n.psi.value),
            ("jensen_shannon", n.jensen_shannon.distance),
        ],
        Tests::Categorical(c) => vec![
            ("chi_square_statistic", c.chi_square.statistic),
            ("chi_square_p_value", c.chi_square.p_value),
            ("psi", c.psi.value),
            ("jensen_shannon", c.jensen_shannon.distance),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_s_data_quality_checks_become_series() {
        use crate::source::generate::{generate, GenerateSpec, Scenario};
        let mut spec = GenerateSpec::new(Scenario::UpstreamChange, 12_000);
        spec.drift_at = 1_000;
        let mut out = Vec::new();
        generate(&spec, &mut out).unwrap();
        let config = crate::config::Config::from_toml(
            "[windows]\nkind = \"count\"\nevents = 2000\n[baseline]\nlearn_events = 1000\n",
            "t",
            &|_| None,
        )
        .unwrap();
        let mut e = crate::monitor::Engine::new(
            config,
            crate::quality::Vocabulary::english(),
            Default::default(),
        );
        let mut last = None;
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            last = e.process(line).unwrap().pop().or(last);
        }
        let m = Metrics::new();
        m.record_window(&last.unwrap());
        let text = m.render_text();
        for want in [
            r#"driftd_data_quality_issues{model="alt-text-captioner"} 6.0"#,
            r#"driftd_data_quality_flagged{model="alt-text-captioner",feature="format",check="absent"} 1.0"#,
            r#"driftd_data_quality_flagged{model="alt-text-captioner",feature="format",check="missing_rate"} 0.0"#,
            r#"driftd_data_quality_flagged{model="alt-text-captioner",feature="file_size_kb",check="wrong_type"} 1.0"#,
            r#"driftd_data_quality_flagged{model="alt-text-captioner",feature="height",check="out_of_range"} 0.0"#,
            r#"driftd_data_quality_flagged{model="alt-text-captioner",check="new_features"} 1.0"#,
            r#"driftd_data_quality_ratio{model="alt-text-captioner",check="new_features"} 1.0"#,
        ] {
            assert!(text.lines().any(|l| l == want), "no {want} in\n{text}");
        }
        let brightness = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    r#"driftd_data_quality_ratio{model="alt-text-captioner",feature="brightness",check="out_of_range"} "#,
                )
            })
            .and_then(|v| v.parse::<f64>().ok());
        assert!(brightness.is_some_and(|v| v > 0.99), "{brightness:?}");
        // Checks that do not apply to a feature's kind have no series.
        assert!(!text.contains(r#"feature="brightness",check="unseen_categories""#));
    }

    #[test]
    fn hostile_label_values_cannot_forge_a_series() {
        // Regression (issue 15): a model name ending a label value and
        // starting a line injected a series.
        let m = Metrics::new();
        let evil = "evil\"} 1\ndriftd_injected_total{forged=\"yes";
        m.silent
            .get_or_create(&crate::labels![("model", evil)])
            .set(1.0);
        m.silent
            .get_or_create(&crate::labels![("model", "back\\slash")])
            .set(0.0);
        for text in [m.render_text(), m.render_openmetrics()] {
            assert!(
                !text.lines().any(|l| l.starts_with("driftd_injected")),
                "{text}"
            );
            assert!(
                text.contains(
                    r#"driftd_model_silent{model="evil\"} 1\ndriftd_injected_total{forged=\"yes"}"#
                ),
                "{text}"
            );
            assert!(text.contains(r#"model="back\\slash""#), "{text}");
        }
    }
}
