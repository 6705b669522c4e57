//! The config file as written: serde structs with named defaults and a doc line
//! on every field (these become the operator's documentation in
//! `config/driftd.toml`). Enumerations stay strings here so validation can
//! report every bad value at once with the value in the message.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    /// Limits applied to every incoming event.
    pub limits: RawLimits,
    /// Where the fields shared by all models live in an event.
    pub routing: RawRouting,
    /// Default drift decisions; each model and feature may override them.
    pub drift: RawDrift,
    /// Caption-quality settings.
    pub quality: RawQuality,
    /// How events are grouped into windows.
    pub windows: RawWindows,
    /// Where each model version's baseline comes from when no profile is set.
    pub baseline: RawBaseline,
    /// Per-model settings, keyed by the model name found in events.
    pub models: BTreeMap<String, RawModel>,
    /// Where `driftd run` reads events from.
    pub kafka: RawKafka,
    /// The HTTP server of `driftd run` (metrics, health, JSON API).
    pub http: RawHttp,
    /// The embedded state store and its checkpoints.
    pub state: RawState,
    /// Broken-component signals that do not wait for a window to close.
    pub signals: RawSignals,
    /// Joining feedback events (references, ratings) to inference events.
    pub feedback: RawFeedback,
    /// Settings over all rules.
    pub actions: RawActions,
    /// Rules: conditions over window reports that decide actions.
    pub rules: Vec<RawRule>,
    /// Where fired decisions are sent.
    pub targets: Vec<RawTarget>,
    /// How a registered candidate is compared with the incumbent before a redeploy.
    pub promotion: Option<RawComparison>,
    /// How a redeployed version is compared with the one it replaced.
    pub rollback: Option<RawComparison>,
    /// Timetables: retraining whatever the drift, and evaluation reports.
    pub schedules: Vec<RawSchedule>,
    /// Data-quality checks of every window against the baseline: missing,
    /// wrong-typed, unseen and out-of-range values, absent and new features.
    pub data_quality: RawDataQuality,
    /// Learned checks (domain classifier, embedding MMD) for every model;
    /// `[models.<name>.learned]` overrides any of these keys.
    pub learned: RawLearned,
    /// The caption-quality estimator trained on joined feedback ratings;
    /// `[models.<name>.estimator]` overrides any of these keys.
    pub estimator: RawEstimator,
}

/// `[data_quality]`. A check flags when its share reaches the level below
/// and the count behind it is improbable at the reference's own rate; a
/// model's `[models.<name>.data_quality]` overrides any of these keys.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawDataQuality {
    /// Run the checks (default true).
    pub enabled: Option<bool>,
    /// Significance of the binomial test behind every flag (default 0.001).
    pub alpha: Option<f64>,
    /// Rise of a feature's missing rate over the reference's (default 0.05).
    pub missing_rate_change: Option<f64>,
    /// Share of a feature's values of the wrong type (default 0.01).
    pub wrong_type_share: Option<f64>,
    /// Share of a categorical feature's values in categories the reference
    /// lacks (default 0.01).
    pub unseen_share: Option<f64>,
    /// Share of a numeric feature's values outside the reference's 0.1 % and
    /// 99.9 % quantiles (default 0.01).
    pub out_of_range_share: Option<f64>,
    /// Share of events carrying a feature the baseline lacks (default 0.01).
    pub new_feature_share: Option<f64>,
}

/// The caption-quality estimator; every key optional (a model's section
/// overrides the global one, which overrides the defaults).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawEstimator {
    /// Train a regression from caption descriptors, CLIPScore and confidence
    /// to feedback ratings, and predict each window's quality (default false).
    pub enabled: Option<bool>,
    /// Train again after this many new rated captions (default 500).
    pub retrain_after: Option<u64>,
    /// Also train on this cron schedule (with seconds, UTC, event time) when
    /// new ratings came in (default none).
    pub schedule: Option<String>,
    /// Most recent rated captions kept for training (default 10000).
    pub max_examples: Option<u64>,
    /// Rated captions needed before the first training (default 200).
    pub min_examples: Option<u64>,
    /// Share of the rated captions, the newest, held out to measure each
    /// version's error and compare it with the current one (default 0.2).
    pub validation_share: Option<f64>,
    /// Ridge penalty on standardized inputs (default 0.001).
    pub penalty: Option<f64>,
}

/// Learned drift checks on bounded samples; every key optional (a model's
/// section overrides the global one, which overrides the defaults).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawLearned {
    /// Run the learned checks when a window closes (default false: they
    /// cost milliseconds per window, see the README).
    pub enabled: Option<bool>,
    /// Most events sampled per window, and drawn per window from the
    /// reference (default 256).
    pub sample_size: Option<u64>,
    /// Most events kept of the reference (default 2048, at least `sample_size`).
    pub reference_size: Option<u64>,
    /// Domain classifier on the numeric features (default true).
    pub classifier: Option<bool>,
    /// MMD with a permutation test on each embedding (default true).
    pub embeddings: Option<bool>,
    /// Domain classifier on each embedding as well (default false).
    pub embedding_classifier: Option<bool>,
    /// Permutations of the MMD and classifier p-values (default 100).
    pub permutations: Option<u64>,
    /// An embedding drifts when its MMD p-value is below this (default 0.05).
    pub mmd_alpha: Option<f64>,
    /// The classifier flags drift when its permutation p-value is below this
    /// (default 0.05)...
    pub classifier_alpha: Option<f64>,
    /// ...and its held-out ROC AUC is at least this (default 0.5: no floor).
    pub auc_threshold: Option<f64>,
    /// Cross-validation folds of the classifier (default 5).
    pub folds: Option<u64>,
    /// Seed of the samples, permutations and folds (default 0).
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct RawSchedule {
    /// Unique name among schedules and rules (decisions and logs use it).
    pub name: String,
    /// The model it is for.
    pub model: String,
    /// A cron expression with seconds, in UTC: `sec min hour day-of-month
    /// month day-of-week [year]`, e.g. "0 0 3 * * *" for 03:00 every day.
    pub cron: String,
    /// `retrain` (continuous training on a timetable) or `report` (an
    /// evaluation report event with the model's latest windows).
    pub action: String,
}

#[derive(Debug, Deserialize)]
pub struct RawComparison {
    /// Judged windows of the version under test before the verdict.
    #[serde(default = "three")]
    pub windows: u32,
    /// Windows with fewer events do not count (on either side).
    #[serde(default)]
    pub min_samples: u64,
    /// Metrics compared by their mean over the windows.
    pub compare: Vec<RawCriterion>,
}

#[derive(Debug, Deserialize)]
pub struct RawCriterion {
    /// A window metric, as in rules.
    pub metric: String,
    /// `higher` or `lower`: which way the metric is better.
    pub better: String,
    /// Promotion: how much better the candidate must be (negative: how much
    /// worse it may be). Rollback: how much worse the new version may be.
    #[serde(default)]
    pub margin: f64,
}

fn three() -> u32 {
    3
}

#[derive(Debug, Deserialize)]
pub struct RawTarget {
    /// Unique name (deliveries and metrics use it).
    pub name: String,
    /// `webhook` (a signed CloudEvents POST, Standard Webhooks), `gitlab` (a
    /// pipeline trigger), `github` (a `repository_dispatch`) or `kafka` (the
    /// CloudEvent produced to a topic).
    #[serde(default = "webhook")]
    pub kind: String,
    /// webhook: where to POST. gitlab: the instance, e.g.
    /// https://gitlab.example.com. github: the API, https://api.github.com
    /// when absent.
    pub url: Option<String>,
    /// Actions sent to this target; all of them when absent.
    pub actions: Option<Vec<String>>,
    /// webhook: environment variable holding the `whsec_...` secret (several,
    /// space-separated, during a rotation). Never logged.
    pub secret_env: Option<String>,
    /// webhook: a file holding the secret(s) instead (e.g. a mounted
    /// Kubernetes Secret), relative to the config file.
    pub secret_file: Option<String>,
    /// webhook: also send GitHub's `X-Hub-Signature-256` (keyed by the
    /// first secret as written).
    #[serde(default)]
    pub github_signature: bool,
    /// gitlab: the project id or its URL-encoded path.
    pub project: Option<String>,
    /// gitlab: the branch or tag the pipeline runs on.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// gitlab: extra pipeline variables (driftd adds DRIFTD_* ones).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// github: `owner/repo`.
    pub repository: Option<String>,
    /// github: the dispatch's event_type; `driftd-<action>` when absent.
    pub event_type: Option<String>,
    /// gitlab, github: environment variable holding the trigger token or the
    /// GitHub token. Never logged.
    pub token_env: Option<String>,
    /// gitlab, github: a file holding the token instead, relative to the
    /// config file.
    pub token_file: Option<String>,
    /// kafka: the topic; the brokers and options are `[kafka]`'s unless set here.
    pub topic: Option<String>,
    /// kafka: brokers, when not `[kafka]`'s.
    pub brokers: Option<String>,
    /// gitlab, github: allow an http:// URL to a host other than loopback.
    /// These targets send a token with every request, so they need https://
    /// unless this is set (for a test receiver).
    #[serde(default)]
    pub allow_http: bool,
    /// Per-request timeout.
    #[serde(default = "ten_seconds")]
    pub timeout: String,
    /// Attempts before a delivery is dead.
    #[serde(default = "eight")]
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt (full jitter), up to `max_backoff`.
    #[serde(default = "one_second")]
    pub min_backoff: String,
    #[serde(default = "five_minutes")]
    pub max_backoff: String,
}

fn webhook() -> String {
    "webhook".into()
}

fn ten_seconds() -> String {
    "10s".into()
}

fn one_second() -> String {
    "1s".into()
}

fn five_minutes() -> String {
    "5m".into()
}

fn eight() -> u32 {
    8
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawActions {
    /// Decide and record, but send nothing.
    pub dry_run: bool,
    /// Decide nothing: every firing is suppressed (and counted).
    pub kill_switch: bool,
    /// How long (event time) a retrain counts as in flight when no candidate
    /// is registered; no second retrain of the model meanwhile.
    pub retrain_timeout: String,
}

impl Default for RawActions {
    fn default() -> Self {
        Self {
            dry_run: false,
            kill_switch: false,
            retrain_timeout: "6h".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RawRule {
    /// Unique name (metrics, decisions and logs use it).
    pub name: String,
    /// The model the rule watches; every model when absent.
    pub model: Option<String>,
    /// retrain, redeploy, rollback or notify.
    pub action: String,
    /// `{ metric, op, value }`, `{ all = [...] }` or `{ any = [...] }`.
    pub when: toml::Value,
    /// Windows with fewer events are not judged.
    #[serde(default)]
    pub min_samples: u64,
    /// Consecutive breaching windows before the rule fires.
    #[serde(default = "one")]
    pub for_windows: u32,
    /// After firing, re-arm only in a window where this holds (default: a
    /// window where `when` does not).
    pub rearm: Option<toml::Value>,
    /// Event time after a firing during which the rule does not fire again.
    #[serde(default = "zero_duration")]
    pub cooldown: String,
    /// Firings per model per 24 hours of event time.
    #[serde(default = "ten")]
    pub max_per_day: u32,
}

fn one() -> u32 {
    1
}

fn ten() -> u32 {
    10
}

fn zero_duration() -> String {
    "0s".into()
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawFeedback {
    /// How long (event time) an inference event waits for its feedback.
    pub ttl: String,
    /// Most inference events waiting for feedback; the oldest go first.
    pub max_pending: u64,
    /// Most joined captions scored with BLEU, ROUGE-L and CIDEr-D per window.
    pub max_scored_per_window: u64,
    /// Bytes the inference events waiting for feedback may hold (their
    /// captions, at most 2 KiB each, and ids); the oldest are dropped first.
    pub max_pending_bytes: u64,
}

impl Default for RawFeedback {
    fn default() -> Self {
        Self {
            ttl: "1h".into(),
            max_pending: 100_000,
            max_scored_per_window: 2_000,
            max_pending_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawKafka {
    /// Bootstrap servers, comma separated (librdkafka `bootstrap.servers`).
    pub brokers: String,
    /// Consumer group; replicas with the same group share the partitions.
    pub group_id: String,
    /// Topics carrying inference-log events.
    pub topics: Vec<String>,
    /// Topic carrying feedback events (references, ratings); none when unset.
    pub feedback_topic: Option<String>,
    /// Topic that receives every rejected event with its reason; rejected
    /// events are only counted and logged when unset.
    pub dead_letter_topic: Option<String>,
    /// Static group membership (librdkafka `group.instance.id`): a restarted
    /// driftd with the same id takes its partitions back at once instead of
    /// waiting for the group to time the old process out. Unique per replica
    /// (the pod name of a StatefulSet, say). Unset: `driftd-` and the host
    /// name; empty: none (dynamic membership).
    pub instance_id: Option<String>,
    /// Largest dead letter, in bytes: a rejected event's bytes beyond it are
    /// cut (header `driftd-truncated` gives the original length), so one
    /// refused by the broker's own limit never blocks the partition.
    pub dead_letter_max_bytes: u64,
    /// Any other librdkafka property, passed through as is (TLS, SASL, ...).
    pub options: BTreeMap<String, String>,
}

impl Default for RawKafka {
    fn default() -> Self {
        Self {
            brokers: "localhost:9092".into(),
            group_id: "driftd".into(),
            topics: vec!["inference-logs".into()],
            feedback_topic: None,
            dead_letter_topic: Some("driftd-dead-letter".into()),
            instance_id: None,
            // Kafka's and librdkafka's default record size limit.
            dead_letter_max_bytes: 1_000_000,
            options: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawHttp {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Environment variable holding the bearer token of the API's write and
    /// delivery endpoints; unset: those endpoints answer 403.
    pub api_token_env: String,
    /// Environment variable holding a bearer token that the read endpoints
    /// (`/api/v1/...`) then require; unset or empty: they are open, as
    /// `/metrics`, `/healthz` and `/readyz` always are.
    pub read_token_env: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9898".into(),
            api_token_env: "DRIFTD_API_TOKEN".into(),
            read_token_env: "DRIFTD_API_READ_TOKEN".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawState {
    /// Directory of the state store (created when missing).
    pub dir: String,
    /// Longest time between checkpoints while events flow.
    pub checkpoint_interval: String,
    /// Most events between checkpoints.
    pub checkpoint_events: u64,
    /// Closed windows kept per model version in the store.
    pub window_history: u64,
    /// Decisions kept in the store; the oldest settled ones (suppressed,
    /// delivered, no target) beyond it are pruned. Pending, dead and
    /// unknown-outcome deliveries are always kept.
    pub decision_history: u64,
    /// How long shutdown may take (finish, checkpoint, commit) before driftd
    /// exits with an error.
    pub shutdown_timeout: String,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            dir: "driftd-state".into(),
            checkpoint_interval: "5s".into(),
            checkpoint_events: 100_000,
            window_history: 10_000,
            decision_history: 100_000,
            shutdown_timeout: "30s".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawSignals {
    /// A model that sent events before and none for this long (wall clock) is
    /// reported silent.
    pub silence_after: String,
}

impl Default for RawSignals {
    fn default() -> Self {
        Self {
            silence_after: "5m".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawWindows {
    /// `time` (tumbling windows by event time) or `count` (every N events).
    pub kind: String,
    /// Window length for `time` windows, e.g. "5m", "30s", "1h".
    pub size: String,
    /// How long after a window's end its events may still arrive, e.g. "30s".
    /// Later events are counted as late, never dropped silently.
    pub allowed_lateness: String,
    /// Events per window for `count` windows.
    pub events: u64,
}

impl Default for RawWindows {
    fn default() -> Self {
        Self {
            kind: "time".into(),
            size: "5m".into(),
            allowed_lateness: "30s".into(),
            events: 10_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawBaseline {
    /// Events of each model version learned as its baseline when the model has
    /// no `baseline` profile; windows start after them.
    pub learn_events: u64,
}

impl Default for RawBaseline {
    fn default() -> Self {
        Self {
            learn_events: 5_000,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawQuality {
    /// Word list (one per line, `#` comments) for the out-of-vocabulary rate;
    /// the shipped English list when unset.
    pub vocabulary: Option<String>,
    /// Frozen CIDEr-D document frequencies (written by
    /// `driftd score-captions --write-df`); the scored set's own references when unset.
    pub document_frequencies: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawLimits {
    /// Largest accepted event, in bytes; larger ones are rejected as `too_large`.
    pub max_event_bytes: u64,
    /// Most models tracked at once; events of further models are rejected as
    /// `too_many_models` (this bounds memory and metric label values).
    pub max_models: u64,
    /// Most features tracked per model version; further keys are ignored.
    pub max_features: u64,
    /// Most versions tracked per model. A new version beyond it replaces
    /// the version seen least recently that is neither incumbent, candidate
    /// nor previous (its open windows close early; its history stays);
    /// when every version holds a role, the event is rejected as
    /// `too_many_versions`.
    pub max_versions_per_model: u64,
    /// Bytes the whole window state may take (as checkpointed). Beyond it,
    /// driftd sheds, in this order: feedback waiting for its join (oldest
    /// first), joined captions waiting to be scored, the learned checks'
    /// samples of open windows, then whole idle versions (as above); each
    /// counted in driftd_state_shed_total.
    pub max_state_bytes: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        // 1 MiB: Kafka's default message.max.bytes is about this size.
        Self {
            max_event_bytes: 1024 * 1024,
            max_models: 64,
            max_features: 256,
            max_versions_per_model: 16,
            max_state_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawRouting {
    /// JSON pointer to the model name, used to pick the model's settings.
    pub model: String,
}

impl Default for RawRouting {
    fn default() -> Self {
        Self {
            model: "/model".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawDrift {
    /// Reference non-null count at or below which the p-value tests (KS,
    /// chi-square) decide drift; above it the distances do.
    pub small_sample_limit: u64,
    /// Drift when a p-value (ks, chi_square) is below this.
    pub p_value_threshold: f64,
    /// Drift when normalized Wasserstein is at or above this.
    pub wasserstein_threshold: f64,
    /// Drift when the Jensen-Shannon distance is at or above this.
    pub jensen_shannon_threshold: f64,
    /// Drift when PSI is at or above this (only when a feature selects `psi`).
    pub psi_threshold: f64,
    /// Dataset drift when the share of drifted features is at or above this.
    pub dataset_drift_share: f64,
}

impl Default for RawDrift {
    fn default() -> Self {
        // The defaults of issue 2 (the same as Evidently's data-drift preset);
        // PSI 0.2 is the customary "significant shift" level.
        Self {
            small_sample_limit: 1000,
            p_value_threshold: 0.05,
            wasserstein_threshold: 0.1,
            jensen_shannon_threshold: 0.1,
            psi_threshold: 0.2,
            dataset_drift_share: 0.5,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawModel {
    /// JSON pointers to the event's fields for this model.
    pub fields: RawFields,
    /// Monitor every key of the features object, not only those listed below.
    pub include_unlisted_features: Option<bool>,
    /// Keys of the features object never monitored.
    pub exclude: Vec<String>,
    /// Per-feature settings, keyed by feature name.
    pub features: BTreeMap<String, RawFeature>,
    /// Overrides `drift.dataset_drift_share` for this model.
    pub dataset_drift_share: Option<f64>,
    /// Reference profile (written by `driftd baseline`) for this model; its
    /// versions learn a baseline from their first events when unset.
    pub baseline: Option<String>,
    /// Overrides of `[data_quality]` for this model.
    pub data_quality: RawDataQuality,
    /// Overrides of `[learned]` for this model.
    pub learned: RawLearned,
    /// Overrides of `[estimator]` for this model.
    pub estimator: RawEstimator,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawFields {
    /// JSON pointer to the event id (required in events).
    pub event_id: String,
    /// JSON pointer to the event time, RFC 3339 or epoch milliseconds (required).
    pub timestamp: String,
    /// JSON pointer to the model version.
    pub model_version: String,
    /// JSON pointer to the object of input features.
    pub features: String,
    /// JSON pointer to the object of prediction outputs.
    pub prediction: String,
    /// JSON pointer to the object of named embedding vectors.
    pub embeddings: String,
    /// JSON pointer to the serving latency in milliseconds.
    pub latency_ms: String,
    /// JSON pointer to the serving error (null when the call succeeded).
    pub error: String,
}

impl Default for RawFields {
    fn default() -> Self {
        Self {
            event_id: "/event_id".into(),
            timestamp: "/timestamp".into(),
            model_version: "/model_version".into(),
            features: "/features".into(),
            prediction: "/prediction".into(),
            embeddings: "/embeddings".into(),
            latency_ms: "/latency_ms".into(),
            error: "/error".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawFeature {
    /// numeric, categorical, text or embedding; inferred from values when unset.
    pub kind: Option<String>,
    /// JSON pointer to the value when it is not `<features>/<name>`.
    pub path: Option<String>,
    /// auto, ks, wasserstein, psi, jensen_shannon or chi_square.
    pub method: Option<String>,
    /// Decision threshold of `method` (p-value below it, or distance at or above it).
    pub threshold: Option<f64>,
}
