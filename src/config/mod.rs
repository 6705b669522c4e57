//! Configuration: TOML with `${VAR:-default}` interpolation, loaded in two
//! stages. [`raw`] mirrors the file; [`Config`] is the validated, typed form.
//! Validation reports every problem at once, each as `key.path: message`.

pub mod raw;
pub mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize as _, Serialize};

use raw::{RawConfig, RawDrift, RawFeature, RawFields, RawModel};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path (`models.captioner.features.brightness.threshold`), or
    /// a location such as `line 3` when the problem is not tied to a key.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in {source_name}:\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<ConfigProblem>,
}

/// What kind of values a feature holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    Categorical,
    /// Free text; compared on its token count.
    Text,
    /// A vector; compared on its Euclidean norm.
    Embedding,
}

impl FeatureKind {
    const NAMES: &'static str = "numeric, categorical, text, embedding";

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "numeric" => Self::Numeric,
            "categorical" => Self::Categorical,
            "text" => Self::Text,
            "embedding" => Self::Embedding,
            _ => return None,
        })
    }

    /// Whether the feature is compared as numbers (text and embeddings are
    /// reduced to a number per value first).
    pub fn is_numeric(self) -> bool {
        !matches!(self, Self::Categorical)
    }
}

/// Statistic that decides drift for a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Ks,
    Wasserstein,
    Psi,
    JensenShannon,
    ChiSquare,
}

impl Method {
    const NAMES: &'static str = "auto, ks, wasserstein, psi, jensen_shannon, chi_square";

    /// `Ok(None)` is `auto`.
    fn parse(s: &str) -> Result<Option<Self>, ()> {
        Ok(Some(match s {
            "auto" => return Ok(None),
            "ks" => Self::Ks,
            "wasserstein" => Self::Wasserstein,
            "psi" => Self::Psi,
            "jensen_shannon" => Self::JensenShannon,
            "chi_square" => Self::ChiSquare,
            _ => return Err(()),
        }))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ks => "ks",
            Self::Wasserstein => "wasserstein",
            Self::Psi => "psi",
            Self::JensenShannon => "jensen_shannon",
            Self::ChiSquare => "chi_square",
        }
    }

    /// p-value methods flag drift below the threshold; distances at or above it.
    pub fn is_p_value(self) -> bool {
        matches!(self, Self::Ks | Self::ChiSquare)
    }

    /// Whether the method applies to numeric (true) or categorical (false) values.
    pub fn applies_to(self, numeric: bool) -> bool {
        match self {
            Self::Ks | Self::Wasserstein => numeric,
            Self::ChiSquare => !numeric,
            Self::Psi | Self::JensenShannon => true,
        }
    }

    /// Valid thresholds, for messages and checks: (low exclusive, high inclusive).
    fn threshold_range(self) -> (f64, f64) {
        match self {
            Self::Ks | Self::ChiSquare | Self::JensenShannon => (0.0, 1.0),
            Self::Wasserstein | Self::Psi => (0.0, f64::INFINITY),
        }
    }
}

/// Default decision settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftDefaults {
    pub small_sample_limit: u64,
    pub p_value_threshold: f64,
    pub wasserstein_threshold: f64,
    pub jensen_shannon_threshold: f64,
    pub psi_threshold: f64,
    pub dataset_drift_share: f64,
}

impl DriftDefaults {
    /// Threshold used for `method` when a feature does not set one.
    pub fn threshold_for(&self, method: Method) -> f64 {
        match method {
            Method::Ks | Method::ChiSquare => self.p_value_threshold,
            Method::Wasserstein => self.wasserstein_threshold,
            Method::JensenShannon => self.jensen_shannon_threshold,
            Method::Psi => self.psi_threshold,
        }
    }

    /// The `auto` choice for a feature whose reference has `reference_count`
    /// non-null values.
    pub fn auto_method(&self, numeric: bool, reference_count: u64) -> Method {
        match (numeric, reference_count <= self.small_sample_limit) {
            (true, true) => Method::Ks,
            (true, false) => Method::Wasserstein,
            (false, true) => Method::ChiSquare,
            (false, false) => Method::JensenShannon,
        }
    }
}

impl Default for DriftDefaults {
    fn default() -> Self {
        let r = RawDrift::default();
        Self {
            small_sample_limit: r.small_sample_limit,
            p_value_threshold: r.p_value_threshold,
            wasserstein_threshold: r.wasserstein_threshold,
            jensen_shannon_threshold: r.jensen_shannon_threshold,
            psi_threshold: r.psi_threshold,
            dataset_drift_share: r.dataset_drift_share,
        }
    }
}

/// JSON pointers to an event's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldPaths {
    pub event_id: String,
    pub timestamp: String,
    pub model_version: String,
    pub features: String,
    pub prediction: String,
    pub embeddings: String,
    pub latency_ms: String,
    pub error: String,
}

impl Default for FieldPaths {
    fn default() -> Self {
        let r = RawFields::default();
        Self {
            event_id: r.event_id,
            timestamp: r.timestamp,
            model_version: r.model_version,
            features: r.features,
            prediction: r.prediction,
            embeddings: r.embeddings,
            latency_ms: r.latency_ms,
            error: r.error,
        }
    }
}

/// Settings of one feature.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FeatureConfig {
    pub kind: Option<FeatureKind>,
    pub path: Option<String>,
    /// `None` is `auto`.
    pub method: Option<Method>,
    pub threshold: Option<f64>,
}

/// Settings of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    pub fields: FieldPaths,
    /// Reference profile for this model (every version), if set.
    pub baseline: Option<PathBuf>,
    pub include_unlisted_features: bool,
    pub exclude: BTreeSet<String>,
    pub features: BTreeMap<String, FeatureConfig>,
    pub dataset_drift_share: f64,
    /// The data-quality checks (`[data_quality]` with this model's overrides).
    pub data_quality: crate::monitor::data_quality::DataQualitySettings,
    /// The learned checks (`[learned]` with this model's overrides).
    pub learned: crate::learned::LearnedSettings,
    /// The caption-quality estimator (`[estimator]` with this model's overrides).
    pub estimator: crate::learned::estimator::EstimatorSettings,
}

impl ModelConfig {
    /// A model with no settings of its own: every feature, inferred kinds,
    /// the global data-quality, learned and estimator settings.
    pub fn defaults(config: &Config) -> Self {
        let drift = &config.drift;
        Self {
            data_quality: config.data_quality.clone(),
            learned: config.learned.clone(),
            estimator: config.estimator.clone(),
            fields: FieldPaths::default(),
            baseline: None,
            include_unlisted_features: true,
            exclude: BTreeSet::new(),
            features: BTreeMap::new(),
            dataset_drift_share: drift.dataset_drift_share,
        }
    }

    /// Whether every feature key is monitored (no exclusions, unlisted
    /// features included): the decoder then skips the per-key check.
    pub fn monitors_all(&self) -> bool {
        self.exclude.is_empty() && self.include_unlisted_features
    }

    /// Whether a column or feature key `name` is monitored.
    pub fn monitors(&self, name: &str) -> bool {
        !self.exclude.contains(name)
            && (self.include_unlisted_features || self.features.contains_key(name))
    }
}

/// How events are grouped into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WindowSpec {
    /// Tumbling windows by event time.
    Time {
        size_ms: i64,
        allowed_lateness_ms: i64,
    },
    /// Every `events` events of a model version.
    Count { events: u64 },
}

impl Default for WindowSpec {
    fn default() -> Self {
        Self::Time {
            size_ms: 5 * 60_000,
            allowed_lateness_ms: 30_000,
        }
    }
}

/// Parse a duration such as "500ms", "30s", "5m", "1h", "1d" into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("must be a duration like 30s, 5m or 1h, got {s:?}"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("must be a duration like 30s, 5m or 1h, got {s:?}")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

/// Caption-quality settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QualityConfig {
    pub vocabulary: Option<PathBuf>,
    pub document_frequencies: Option<PathBuf>,
}

/// Where `driftd run` consumes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    pub topics: Vec<String>,
    pub feedback_topic: Option<String>,
    pub dead_letter_topic: Option<String>,
    /// Largest dead letter produced, in bytes (payload cut beyond it).
    pub dead_letter_max_bytes: usize,
    /// `group.instance.id` (static membership); `None`: dynamic membership.
    pub instance_id: Option<String>,
    /// librdkafka properties passed through as they are.
    pub options: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        let r = raw::RawKafka::default();
        Self {
            brokers: r.brokers,
            group_id: r.group_id,
            topics: r.topics,
            feedback_topic: r.feedback_topic,
            dead_letter_topic: r.dead_letter_topic,
            dead_letter_max_bytes: r.dead_letter_max_bytes as usize,
            instance_id: Some(default_instance_id()),
            options: r.options,
        }
    }
}

/// Largest `kafka.dead_letter_max_bytes`: 100 MiB, librdkafka's own ceiling
/// on a message (`message.max.bytes` tops out at 1,000,000,000) is far beyond
/// any broker's configured limit.
pub const MAX_DEAD_LETTER_BYTES: u64 = 100 * 1024 * 1024;

/// librdkafka properties driftd sets itself: its delivery guarantee rests on
/// them, so `kafka.options` may not change them.
pub const RESERVED_KAFKA_OPTIONS: [&str; 6] = [
    "bootstrap.servers",
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
];

/// The daemon's HTTP server, state store and timing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaemonConfig {
    pub http_listen: String,
    /// Environment variable with the API's bearer token.
    pub api_token_env: String,
    /// Environment variable with the read endpoints' bearer token.
    pub read_token_env: String,
    pub state_dir: PathBuf,
    pub checkpoint_interval_ms: u64,
    pub checkpoint_events: u64,
    pub window_history: u64,
    pub decision_history: u64,
    pub shutdown_timeout_ms: u64,
    pub silence_after_ms: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        let s = raw::RawState::default();
        let ms = |v: &str| parse_duration_ms(v).expect("valid default") as u64;
        Self {
            http_listen: raw::RawHttp::default().listen,
            api_token_env: raw::RawHttp::default().api_token_env,
            read_token_env: raw::RawHttp::default().read_token_env,
            state_dir: PathBuf::from(&s.dir),
            checkpoint_interval_ms: ms(&s.checkpoint_interval),
            checkpoint_events: s.checkpoint_events,
            window_history: s.window_history,
            decision_history: s.decision_history,
            shutdown_timeout_ms: ms(&s.shutdown_timeout),
            silence_after_ms: ms(&raw::RawSignals::default().silence_after),
        }
    }
}

/// Environment variables that override the config file for `driftd run`
/// (the usual knobs of a container deployment), with the key each replaces.
pub const ENV_OVERRIDES: [(&str, &str); 6] = [
    ("DRIFTD_KAFKA_BROKERS", "kafka.brokers"),
    ("DRIFTD_KAFKA_TOPIC", "kafka.topics"),
    ("DRIFTD_KAFKA_GROUP", "kafka.group_id"),
    ("DRIFTD_KAFKA_INSTANCE_ID", "kafka.instance_id"),
    ("DRIFTD_HTTP_LISTEN", "http.listen"),
    ("DRIFTD_STATE_DIR", "state.dir"),
];

/// Feedback join settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FeedbackConfig {
    pub ttl_ms: i64,
    pub max_pending: usize,
    pub max_scored_per_window: usize,
    pub max_pending_bytes: usize,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        let r = raw::RawFeedback::default();
        Self {
            ttl_ms: parse_duration_ms(&r.ttl).expect("valid default"),
            max_pending: r.max_pending as usize,
            max_scored_per_window: r.max_scored_per_window as usize,
            max_pending_bytes: r.max_pending_bytes as usize,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub feedback: FeedbackConfig,
    pub max_event_bytes: usize,
    /// Most models tracked at once.
    pub max_models: usize,
    /// Most features tracked per model version.
    pub max_features: usize,
    /// `limits.max_versions_per_model`.
    pub max_versions_per_model: usize,
    /// `limits.max_state_bytes`.
    pub max_state_bytes: usize,
    pub kafka: KafkaConfig,
    pub daemon: DaemonConfig,
    pub quality: QualityConfig,
    pub windows: WindowSpec,
    /// Events learned as a baseline per model version without a profile.
    pub learn_events: u64,
    pub model_pointer: String,
    pub drift: DriftDefaults,
    /// `[data_quality]`: when the data-quality checks flag.
    pub data_quality: crate::monitor::data_quality::DataQualitySettings,
    /// Learned-check settings of models without a section of their own.
    pub learned: crate::learned::LearnedSettings,
    /// Estimator settings of models without a section of their own.
    pub estimator: crate::learned::estimator::EstimatorSettings,
    pub models: BTreeMap<String, ModelConfig>,
    /// Settings over all rules.
    pub actions: crate::rules::ActionSettings,
    /// Rules, in file order.
    pub rules: Vec<crate::rules::Rule>,
    /// Where fired decisions are sent.
    pub targets: Vec<TargetConfig>,
    /// Timetables of retraining and reports.
    pub schedules: Vec<crate::rules::ScheduleConfig>,
}

/// A delivery target of fired decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    pub actions: Vec<crate::rules::Action>,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

/// How a target is reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TargetKind {
    /// A signed CloudEvents POST (Standard Webhooks).
    Webhook {
        url: String,
        secret: Credential,
        github_signature: bool,
    },
    /// GitLab's pipeline trigger API.
    Gitlab {
        url: String,
        project: String,
        git_ref: String,
        variables: BTreeMap<String, String>,
        token: Credential,
        /// Standard Webhooks secret(s): the pipeline gets the signature of
        /// `DRIFTD_EVENT` in `DRIFTD_WEBHOOK_*` variables to verify.
        secret: Option<Credential>,
    },
    /// GitHub's `repository_dispatch`.
    Github {
        url: String,
        repository: String,
        event_type: Option<String>,
        token: Credential,
        /// Standard Webhooks secret(s): `client_payload.webhook` carries the
        /// signature of `client_payload.event` for the workflow to verify.
        secret: Option<Credential>,
    },
    /// The CloudEvent produced to a Kafka topic (structured mode).
    Kafka {
        brokers: String,
        topic: String,
        options: BTreeMap<String, String>,
    },
}

/// Where a secret or token is read from when the daemon starts or reloads;
/// never logged, never in errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// An environment variable.
    Env(String),
    /// A file (trailing whitespace dropped).
    File(PathBuf),
}

impl Credential {
    /// The value, or an error naming where it should have been.
    pub fn read(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let v = match self {
            Self::Env(k) => env(k).ok_or_else(|| format!("environment variable {k} is not set"))?,
            Self::File(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read {}: {}", p.display(), e.kind()))?,
        };
        let v = v.trim().to_owned();
        if v.is_empty() {
            return Err(match self {
                Self::Env(k) => format!("environment variable {k} is empty"),
                Self::File(p) => format!("{} is empty", p.display()),
            });
        }
        Ok(v)
    }
}

impl TargetKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Gitlab { .. } => "gitlab",
            Self::Github { .. } => "github",
            Self::Kafka { .. } => "kafka",
        }
    }

    /// Whether the receiver deduplicates by event id, so a request whose
    /// outcome is unknown may be sent again. GitLab and GitHub start a
    /// pipeline per request; webhook receivers and Kafka consumers see the
    /// same id again.
    pub fn deduplicates(&self) -> bool {
        !matches!(self, Self::Gitlab { .. } | Self::Github { .. })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_event_bytes: raw::RawLimits::default().max_event_bytes as usize,
            max_models: raw::RawLimits::default().max_models as usize,
            max_features: raw::RawLimits::default().max_features as usize,
            max_versions_per_model: raw::RawLimits::default().max_versions_per_model as usize,
            max_state_bytes: raw::RawLimits::default().max_state_bytes as usize,
            kafka: KafkaConfig::default(),
            daemon: DaemonConfig::default(),
            feedback: FeedbackConfig::default(),
            quality: QualityConfig::default(),
            windows: WindowSpec::default(),
            learn_events: raw::RawBaseline::default().learn_events,
            model_pointer: raw::RawRouting::default().model,
            drift: DriftDefaults::default(),
            data_quality: Default::default(),
            learned: crate::learned::LearnedSettings::default(),
            estimator: crate::learned::estimator::EstimatorSettings::default(),
            models: BTreeMap::new(),
            actions: crate::rules::ActionSettings::default(),
            rules: Vec::new(),
            targets: Vec::new(),
            schedules: Vec::new(),
        }
    }
}

impl Config {
    /// Apply [`ENV_OVERRIDES`] (set and non-empty ones). `DRIFTD_KAFKA_TOPIC`
    /// may list several topics, comma separated.
    pub fn apply_env_overrides(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("DRIFTD_KAFKA_BROKERS") {
            self.kafka.brokers = v;
        }
        if let Some(v) = get("DRIFTD_KAFKA_TOPIC") {
            self.kafka.topics = v.split(',').map(|t| t.trim().to_owned()).collect();
        }
        if let Some(v) = get("DRIFTD_KAFKA_GROUP") {
            self.kafka.group_id = v;
        }
        if let Some(v) = get("DRIFTD_KAFKA_INSTANCE_ID") {
            self.kafka.instance_id = Some(v.trim().to_owned());
        }
        if let Some(v) = get("DRIFTD_HTTP_LISTEN") {
            self.daemon.http_listen = v;
        }
        if let Some(v) = get("DRIFTD_STATE_DIR") {
            self.daemon.state_dir = PathBuf::from(v);
        }
    }

    /// Read, interpolate, parse and validate a config file.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: source_name.clone(),
            problems: vec![ConfigProblem {
                path: source_name.clone(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        // Relative file paths in the config are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml_in(&text, &source_name, base, env)
    }

    /// Parse and validate config text. `source_name` names it in errors;
    /// relative paths are taken from the current directory.
    pub fn from_toml(
        text: &str,
        source_name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_toml_in(text, source_name, Path::new("."), env)
    }

    /// As [`Config::from_toml`], with relative paths taken from `base`.
    pub fn from_toml_in(
        text: &str,
        source_name: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let fail = |problems| ConfigError {
            source_name: source_name.to_owned(),
            problems,
        };
        let interpolated = vars::interpolate(text, env).map_err(|errs| {
            fail(
                errs.into_iter()
                    .map(|e| {
                        let (loc, msg) = e.split_once(": ").unwrap_or(("", &e));
                        ConfigProblem {
                            path: loc.to_owned(),
                            message: msg.to_owned(),
                        }
                    })
                    .collect(),
            )
        })?;
        let text = &interpolated.text;
        // No message may quote what came from the environment (secrets do).
        let clean = |mut problems: Vec<ConfigProblem>| {
            for p in &mut problems {
                p.message = vars::redact(&p.message, &interpolated.values);
                p.path = vars::redact(&p.path, &interpolated.values);
            }
            fail(problems)
        };
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => return Err(clean(vec![toml_problem(text, &e)])),
        };
        // A section that does not deserialize is reported and left out, so
        // the rest is still read and validated: every problem at once.
        let mut problems = Vec::new();
        let mut kept = toml::Table::new();
        for (key, value) in table {
            let mut one = toml::Table::new();
            one.insert(key.clone(), value.clone());
            match RawConfig::deserialize(toml::Value::Table(one)) {
                Ok(_) => {
                    kept.insert(key, value);
                }
                Err(e) => problems.push(ConfigProblem {
                    path: key,
                    message: without_values(e.message().trim()),
                }),
            }
        }
        let mut unknown = Vec::new();
        let raw: RawConfig = match serde_ignored::deserialize(toml::Value::Table(kept), |path| {
            unknown.push(path.to_string())
        }) {
            Ok(raw) => raw,
            Err(e) => {
                problems.push(ConfigProblem {
                    path: "toml".into(),
                    message: without_values(e.message().trim()),
                });
                return Err(clean(problems));
            }
        };
        problems.extend(unknown.into_iter().map(|path| ConfigProblem {
            path,
            message: "unknown key".into(),
        }));
        let config = validate(raw, base, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(clean(problems))
        }
    }

    /// Sections of `new` that differ from this config where a running daemon
    /// cannot take the change over (the consumer, the HTTP listener, the
    /// store, windows and features are built from them): a hot reload that
    /// changes any of them is refused.
    pub fn restart_only_changes(&self, new: &Config) -> Vec<String> {
        let old = self;
        let mut out = Vec::new();
        let mut check = |key: &str, same: bool| {
            if !same {
                out.push(key.to_owned());
            }
        };
        check("kafka", old.kafka == new.kafka);
        check("http / state / signals", old.daemon == new.daemon);
        check("quality", old.quality == new.quality);
        check("windows", old.windows == new.windows);
        check("baseline", old.learn_events == new.learn_events);
        check("routing", old.model_pointer == new.model_pointer);
        check("feedback", old.feedback == new.feedback);
        check("learned", old.learned == new.learned);
        check("estimator", old.estimator == new.estimator);
        check(
            "limits",
            (
                old.max_event_bytes,
                old.max_models,
                old.max_features,
                old.max_versions_per_model,
                old.max_state_bytes,
            ) == (
                new.max_event_bytes,
                new.max_models,
                new.max_features,
                new.max_versions_per_model,
                new.max_state_bytes,
            ),
        );
        // Models: everything but the drift decision (methods, thresholds, the
        // dataset drift share) shapes the trackers. A section that only sets
        // those is the same shape as none.
        let shape = |c: &Config, name: &str| {
            let mut m = c.model(name);
            m.dataset_drift_share = 0.0;
            for f in m.features.values_mut() {
                f.method = None;
                f.threshold = None;
            }
            m.features.retain(|_, f| *f != Default::default());
            m
        };
        let names: std::collections::BTreeSet<&String> =
            old.models.keys().chain(new.models.keys()).collect();
        check(
            "models (other than methods and thresholds)",
            names.iter().all(|n| shape(old, n) == shape(new, n)),
        );
        out
    }

    /// The estimator settings of `model` (without copying its whole section).
    pub fn estimator_for(&self, model: &str) -> &crate::learned::estimator::EstimatorSettings {
        self.models
            .get(model)
            .map_or(&self.estimator, |m| &m.estimator)
    }

    /// Settings for `model`: its own section, or the defaults.
    pub fn model(&self, model: &str) -> ModelConfig {
        self.models
            .get(model)
            .cloned()
            .unwrap_or_else(|| ModelConfig::defaults(self))
    }
}

/// A serde message without the value it found: `invalid type: string
/// "hunter2", expected a boolean` becomes `invalid type: a string, expected a
/// boolean` (the key may hold a secret).
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = [
            ("string \"", '"', "a string"),
            ("integer `", '`', "an integer"),
            ("floating point `", '`', "a float"),
            ("boolean `", '`', "a boolean"),
            ("character `", '`', "a character"),
        ]
        .iter()
        .filter_map(|(open, close, word)| rest.find(open).map(|i| (i, *open, *close, *word)))
        .min_by_key(|(i, ..)| *i);
        let Some((i, open, close, word)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        out.push_str(word);
        let body = &rest[i + open.len()..];
        // The closing quote is the first one not escaped by a backslash.
        let mut end = None;
        let mut escaped = false;
        for (j, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == close {
                end = Some(j);
                break;
            }
        }
        match end {
            Some(j) => rest = &body[j + 1..],
            None => return out,
        }
    }
}

/// `driftd-` and the host name (the kernel's; `HOSTNAME` is a shell variable,
/// not always exported): the same on every start of the same host or pod.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("driftd-{host}")
}

/// Whether an http(s) URL names a loopback host (`localhost`, 127.0.0.0/8,
/// `[::1]`): a request to it does not leave the machine.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn toml_problem(text: &str, e: &toml::de::Error) -> ConfigProblem {
    let location = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}")
        }
        None => "toml".into(),
    };
    ConfigProblem {
        path: location,
        message: without_values(e.message().trim()),
    }
}

fn validate(raw: RawConfig, base: &Path, problems: &mut Vec<ConfigProblem>) -> Config {
    let mut problem =
        |path: String, message: String| problems.push(ConfigProblem { path, message });

    if raw.limits.max_event_bytes == 0 {
        problem(
            "limits.max_event_bytes".into(),
            "must be greater than 0, got 0".into(),
        );
    }
    check_pointer("routing.model", &raw.routing.model, &mut problem);
    // A dead letter carries its headers beside the payload; below 4 KiB the
    // payload would be all but gone. Kafka's own limits stop near 2 GiB.
    if !(4096..=MAX_DEAD_LETTER_BYTES).contains(&raw.kafka.dead_letter_max_bytes) {
        problem(
            "kafka.dead_letter_max_bytes".into(),
            format!(
                "must be from 4096 to {MAX_DEAD_LETTER_BYTES}, got {}",
                raw.kafka.dead_letter_max_bytes
            ),
        );
    }

    let d = &raw.drift;
    for (key, v) in [
        ("p_value_threshold", d.p_value_threshold),
        ("jensen_shannon_threshold", d.jensen_shannon_threshold),
        ("dataset_drift_share", d.dataset_drift_share),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            problem(
                format!("drift.{key}"),
                format!("must be in (0, 1], got {v}"),
            );
        }
    }
    for (key, v) in [
        ("wasserstein_threshold", d.wasserstein_threshold),
        ("psi_threshold", d.psi_threshold),
    ] {
        if !(v > 0.0 && v.is_finite()) {
            problem(
                format!("drift.{key}"),
                format!("must be a finite number greater than 0, got {v}"),
            );
        }
    }
    let drift = DriftDefaults {
        small_sample_limit: d.small_sample_limit,
        p_value_threshold: d.p_value_threshold,
        wasserstein_threshold: d.wasserstein_threshold,
        jensen_shannon_threshold: d.jensen_shannon_threshold,
        psi_threshold: d.psi_threshold,
        dataset_drift_share: d.dataset_drift_share,
    };

    let data_quality = resolve_data_quality(
        &crate::monitor::data_quality::DataQualitySettings::default(),
        &raw.data_quality,
        "data_quality",
        &mut problem,
    );
    let learned = resolve_learned(
        &crate::learned::LearnedSettings::default(),
        &raw.learned,
        "learned",
        &mut problem,
    );
    let estimator = resolve_estimator(
        &crate::learned::estimator::EstimatorSettings::default(),
        &raw.estimator,
        "estimator",
        &mut problem,
    );
    let mut models = BTreeMap::new();
    for (name, m) in raw.models {
        let model = validate_model(
            &name,
            m,
            &drift,
            (&learned, &estimator, &data_quality),
            base,
            &mut problem,
        );
        models.insert(name, model);
    }
    let mut file_key = |key: &str, v: &Option<String>| -> Option<PathBuf> {
        let path = base.join(v.as_ref()?);
        if !path.is_file() {
            problem(
                format!("quality.{key}"),
                format!("no such file: {}", path.display()),
            );
        }
        Some(path)
    };
    let quality = QualityConfig {
        vocabulary: file_key("vocabulary", &raw.quality.vocabulary),
        document_frequencies: file_key("document_frequencies", &raw.quality.document_frequencies),
    };
    let w = &raw.windows;
    let windows = match w.kind.as_str() {
        "time" => {
            // A year: beyond it a window is no longer a window.
            const MAX_WINDOW_MS: i64 = 366 * 86_400_000;
            let mut dur = |key: &str, v: &str| match parse_duration_ms(v) {
                Ok(ms) if ms > MAX_WINDOW_MS => {
                    problem(
                        format!("windows.{key}"),
                        format!("must be at most 366d, got {v:?}"),
                    );
                    1
                }
                Ok(ms) if ms > 0 || key == "allowed_lateness" => ms,
                Ok(ms) => {
                    problem(
                        format!("windows.{key}"),
                        format!("must be longer than 0, got {ms} ms"),
                    );
                    1
                }
                Err(e) => {
                    problem(format!("windows.{key}"), e);
                    1
                }
            };
            WindowSpec::Time {
                size_ms: dur("size", &w.size),
                allowed_lateness_ms: dur("allowed_lateness", &w.allowed_lateness),
            }
        }
        "count" => {
            if w.events == 0 {
                problem(
                    "windows.events".into(),
                    "must be greater than 0, got 0".into(),
                );
            }
            WindowSpec::Count {
                events: w.events.max(1),
            }
        }
        other => {
            problem(
                "windows.kind".into(),
                format!("must be one of time, count, got {other:?}"),
            );
            WindowSpec::default()
        }
    };
    for (key, v) in [
        ("limits.max_models", raw.limits.max_models),
        ("limits.max_features", raw.limits.max_features),
        (
            "limits.max_versions_per_model",
            raw.limits.max_versions_per_model,
        ),
        ("state.checkpoint_events", raw.state.checkpoint_events),
        ("state.window_history", raw.state.window_history),
    ] {
        if v == 0 {
            problem(key.into(), "must be greater than 0, got 0".into());
        }
    }
    // Upper bounds: each of these sizes memory, a loop or a stored table; a
    // value beyond them is a typo, not a setting.
    for (key, v, max) in [
        (
            "limits.max_event_bytes",
            raw.limits.max_event_bytes,
            100 << 20,
        ),
        ("limits.max_models", raw.limits.max_models, 10_000),
        ("limits.max_features", raw.limits.max_features, 10_000),
        (
            "limits.max_versions_per_model",
            raw.limits.max_versions_per_model,
            10_000,
        ),
        // Half of SQLite's largest value (1e9 bytes): one version's state
        // is one value in the store.
        (
            "limits.max_state_bytes",
            raw.limits.max_state_bytes,
            512 << 20,
        ),
        (
            "feedback.max_pending_bytes",
            raw.feedback.max_pending_bytes,
            512 << 20,
        ),
        (
            "baseline.learn_events",
            raw.baseline.learn_events,
            1_000_000,
        ),
        (
            "state.checkpoint_events",
            raw.state.checkpoint_events,
            1_000_000_000,
        ),
        ("state.window_history", raw.state.window_history, 10_000_000),
        (
            "state.decision_history",
            raw.state.decision_history,
            1_000_000_000,
        ),
        ("feedback.max_pending", raw.feedback.max_pending, 10_000_000),
        (
            "feedback.max_scored_per_window",
            raw.feedback.max_scored_per_window,
            100_000,
        ),
        ("windows.events", raw.windows.events, 1_000_000_000),
    ] {
        if v > max {
            problem(key.into(), format!("must be at most {max}, got {v}"));
        }
    }
    let k = &raw.kafka;
    if k.brokers.trim().is_empty() {
        problem("kafka.brokers".into(), "must not be empty".into());
    }
    if k.group_id.trim().is_empty() {
        problem("kafka.group_id".into(), "must not be empty".into());
    }
    if k.topics.is_empty() || k.topics.iter().any(|t| t.trim().is_empty()) {
        problem(
            "kafka.topics".into(),
            format!(
                "must list at least one topic and no empty names, got {:?}",
                k.topics
            ),
        );
    }
    for (key, t) in [
        ("kafka.feedback_topic", &k.feedback_topic),
        ("kafka.dead_letter_topic", &k.dead_letter_topic),
    ] {
        if let Some(t) = t {
            if t.trim().is_empty() {
                problem(key.into(), "must not be empty when set".into());
            } else if k.topics.contains(t) {
                problem(
                    key.into(),
                    format!("{t:?} is also in kafka.topics; it must be a topic of its own"),
                );
            }
        }
    }
    for name in k.options.keys() {
        if RESERVED_KAFKA_OPTIONS.contains(&name.as_str()) {
            problem(
                format!("kafka.options.{name}"),
                "is set by driftd itself (use kafka.brokers / kafka.group_id; offsets are stored and committed only after a checkpoint)".into(),
            );
        }
    }
    let mut dur = |key: &str, v: &str| match parse_duration_ms(v) {
        Ok(ms) if ms > 0 => ms as u64,
        Ok(_) => {
            problem(key.into(), "must be longer than 0".into());
            1
        }
        Err(e) => {
            problem(key.into(), e);
            1
        }
    };
    let st = &raw.state;
    let checkpoint_interval_ms = dur("state.checkpoint_interval", &st.checkpoint_interval);
    let shutdown_timeout_ms = dur("state.shutdown_timeout", &st.shutdown_timeout);
    let silence_after_ms = dur("signals.silence_after", &raw.signals.silence_after);
    let feedback_ttl_ms = dur("feedback.ttl", &raw.feedback.ttl) as i64;
    let retrain_timeout_ms = dur("actions.retrain_timeout", &raw.actions.retrain_timeout) as i64;
    for (key, v) in [
        ("feedback.max_pending", raw.feedback.max_pending),
        (
            "feedback.max_scored_per_window",
            raw.feedback.max_scored_per_window,
        ),
    ] {
        if v == 0 {
            problem(key.into(), "must be greater than 0, got 0".into());
        }
    }
    if st.dir.trim().is_empty() {
        problem("state.dir".into(), "must not be empty".into());
    }
    let daemon = DaemonConfig {
        http_listen: raw.http.listen.clone(),
        api_token_env: raw.http.api_token_env.clone(),
        read_token_env: raw.http.read_token_env.clone(),
        // Relative to the working directory, like a service's data dir.
        state_dir: PathBuf::from(&st.dir),
        checkpoint_interval_ms,
        checkpoint_events: st.checkpoint_events.max(1),
        window_history: st.window_history.max(1),
        decision_history: st.decision_history.max(1),
        shutdown_timeout_ms,
        silence_after_ms,
    };
    if daemon.http_listen.parse::<std::net::SocketAddr>().is_err() {
        problem(
            "http.listen".into(),
            format!(
                "must be an address like 127.0.0.1:9898, got {:?}",
                daemon.http_listen
            ),
        );
    }
    if raw.baseline.learn_events == 0 {
        problem(
            "baseline.learn_events".into(),
            "must be greater than 0, got 0".into(),
        );
    }
    let actions = crate::rules::ActionSettings {
        dry_run: raw.actions.dry_run,
        kill_switch: raw.actions.kill_switch,
        retrain_timeout_ms,
        promotion: raw
            .promotion
            .and_then(|c| validate_comparison(c, "promotion", &mut problem)),
        rollback: raw
            .rollback
            .and_then(|c| validate_comparison(c, "rollback", &mut problem)),
    };
    let rules = validate_rules(raw.rules, &models, &mut problem);
    let targets = validate_targets(raw.targets, &raw.kafka, base, &mut problem);
    let schedules = validate_schedules(raw.schedules, &rules, &mut problem);
    Config {
        max_event_bytes: raw.limits.max_event_bytes as usize,
        max_models: raw.limits.max_models.max(1) as usize,
        max_features: raw.limits.max_features.max(1) as usize,
        max_versions_per_model: raw.limits.max_versions_per_model.max(1) as usize,
        max_state_bytes: raw.limits.max_state_bytes as usize,
        kafka: KafkaConfig {
            brokers: raw.kafka.brokers,
            group_id: raw.kafka.group_id,
            topics: raw.kafka.topics,
            feedback_topic: raw.kafka.feedback_topic,
            dead_letter_topic: raw.kafka.dead_letter_topic,
            dead_letter_max_bytes: raw.kafka.dead_letter_max_bytes as usize,
            instance_id: match raw.kafka.instance_id.as_deref().map(str::trim) {
                Some("") => None,
                Some(id) => Some(id.to_owned()),
                None => Some(default_instance_id()),
            },
            options: raw.kafka.options,
        },
        daemon,
        feedback: FeedbackConfig {
            ttl_ms: feedback_ttl_ms,
            max_pending: raw.feedback.max_pending.max(1) as usize,
            max_scored_per_window: raw.feedback.max_scored_per_window.max(1) as usize,
            max_pending_bytes: raw.feedback.max_pending_bytes as usize,
        },
        quality,
        windows,
        learn_events: raw.baseline.learn_events,
        model_pointer: raw.routing.model,
        drift,
        data_quality,
        learned,
        estimator,
        models,
        actions,
        rules,
        targets,
        schedules,
    }
}

/// Schedules: names unique (among rules too), cron expressions that parse,
/// actions retrain or report.
fn validate_schedules(
    raw: Vec<raw::RawSchedule>,
    rules: &[crate::rules::Rule],
    problem: &mut dyn FnMut(String, String),
) -> Vec<crate::rules::ScheduleConfig> {
    use crate::rules::{Action, ScheduleConfig};
    let mut out = Vec::new();
    let mut seen: std::collections::BTreeSet<String> = rules
        .iter()
        .map(|r| r.name.clone())
        .chain(crate::rules::LOOP_RULE_NAMES.map(String::from))
        .collect();
    for (i, s) in raw.into_iter().enumerate() {
        let path = format!("schedules[{i}]");
        if s.name.trim().is_empty() || !seen.insert(s.name.clone()) {
            problem(
                format!("{path}.name"),
                format!(
                    "must be a non-empty name no other schedule or rule has, got {:?}",
                    s.name
                ),
            );
        }
        if s.model.trim().is_empty() {
            problem(format!("{path}.model"), "must name a model".into());
        }
        let cron_ok = match crate::rules::parse_cron(&s.cron) {
            Ok(_) => true,
            Err(e) => {
                problem(format!("{path}.cron"), e);
                false
            }
        };
        let action = match s.action.as_str() {
            "retrain" => Some(Action::Retrain),
            "report" => Some(Action::Report),
            other => {
                problem(
                    format!("{path}.action"),
                    format!("must be retrain or report, got {other:?}"),
                );
                None
            }
        };
        if let (Some(action), true) = (action, cron_ok) {
            out.push(ScheduleConfig {
                name: s.name,
                model: s.model,
                cron: s.cron,
                action,
            });
        }
    }
    out
}

/// `[promotion]` / `[rollback]`: at least one metric from the catalog, each
/// with a direction.
fn validate_comparison(
    raw: raw::RawComparison,
    path: &str,
    problem: &mut dyn FnMut(String, String),
) -> Option<crate::rules::Comparison> {
    use crate::rules::{Better, Comparison, Criterion, Metric};
    if raw.windows == 0 {
        problem(format!("{path}.windows"), "must be at least 1".into());
    }
    if raw.compare.is_empty() {
        problem(
            format!("{path}.compare"),
            "must list at least one { metric, better } to compare".into(),
        );
    }
    let mut criteria = Vec::new();
    for (i, c) in raw.compare.into_iter().enumerate() {
        let at = format!("{path}.compare[{i}]");
        let metric = Metric::parse(&c.metric)
            .map_err(|e| problem(format!("{at}.metric"), e))
            .ok();
        let better = match c.better.as_str() {
            "higher" => Some(Better::Higher),
            "lower" => Some(Better::Lower),
            other => {
                problem(
                    format!("{at}.better"),
                    format!("must be higher or lower, got {other:?}"),
                );
                None
            }
        };
        if !c.margin.is_finite() {
            problem(format!("{at}.margin"), "must be a finite number".into());
        }
        if let (Some(metric), Some(better)) = (metric, better) {
            criteria.push(Criterion {
                metric,
                better,
                margin: c.margin,
            });
        }
    }
    Some(Comparison {
        windows: raw.windows.max(1),
        min_samples: raw.min_samples,
        criteria,
    })
}

fn validate_targets(
    raw: Vec<raw::RawTarget>,
    kafka: &raw::RawKafka,
    base: &Path,
    problem: &mut dyn FnMut(String, String),
) -> Vec<TargetConfig> {
    use crate::rules::Action;
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in raw.into_iter().enumerate() {
        let path = format!("targets[{i}]");
        if t.name.trim().is_empty() || !seen.insert(t.name.clone()) {
            problem(
                format!("{path}.name"),
                format!("must be a unique non-empty name, got {:?}", t.name),
            );
        }
        let need = |key: &str,
                    v: &Option<String>,
                    what: &str,
                    problem: &mut dyn FnMut(String, String)|
         -> String {
            match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                Some(v) => v.to_owned(),
                None => {
                    problem(
                        format!("{path}.{key}"),
                        format!("a {} target needs {key} ({what})", t.kind),
                    );
                    String::new()
                }
            }
        };
        let credential = |(env_key, env): (&str, &Option<String>),
                          (file_key, file): (&str, &Option<String>),
                          problem: &mut dyn FnMut(String, String)| {
            let set = |v: &Option<String>| {
                v.as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            match (set(env), set(file)) {
                (Some(e), None) => Credential::Env(e),
                (None, Some(f)) => Credential::File(base.join(f)),
                (Some(e), Some(_)) => {
                    problem(
                        format!("{path}.{file_key}"),
                        format!("set {env_key} or {file_key}, not both"),
                    );
                    Credential::Env(e)
                }
                (None, None) => {
                    problem(
                        format!("{path}.{env_key}"),
                        format!(
                            "a {} target needs {env_key} (an environment variable) or {file_key} (a file)",
                            t.kind
                        ),
                    );
                    Credential::Env(String::new())
                }
            }
        };
        // GitLab and GitHub targets sign their events only when a secret is set.
        let signing = |problem: &mut dyn FnMut(String, String)| {
            let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
            (set(&t.secret_env) || set(&t.secret_file)).then(|| {
                credential(
                    ("secret_env", &t.secret_env),
                    ("secret_file", &t.secret_file),
                    problem,
                )
            })
        };
        // Printed without any user:password@ part it may hold.
        let shown = |v: &str| match (v.find("://"), v.find('@')) {
            (Some(s), Some(at)) if at > s => format!("{}://...@{}", &v[..s], &v[at + 1..]),
            _ => v.to_owned(),
        };
        let url_of = |key: &str, v: Option<String>, problem: &mut dyn FnMut(String, String)| {
            let v = v.unwrap_or_default();
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                problem(
                    format!("{path}.{key}"),
                    format!("must be an http:// or https:// URL, got {:?}", shown(&v)),
                );
            }
            v
        };
        // GitLab and GitHub targets send a token with every request.
        let tls_for_token = |v: &str, problem: &mut dyn FnMut(String, String)| {
            if v.starts_with("http://") && !t.allow_http && !is_loopback_url(v) {
                problem(
                    format!("{path}.url"),
                    format!(
                        "sends a token, so it must be https://, got {:?} (allow_http = true allows http:// for a test receiver)",
                        shown(v)
                    ),
                );
            }
        };
        let kind = match t.kind.as_str() {
            "webhook" => Some(TargetKind::Webhook {
                url: url_of("url", t.url.clone(), problem),
                secret: credential(
                    ("secret_env", &t.secret_env),
                    ("secret_file", &t.secret_file),
                    problem,
                ),
                github_signature: t.github_signature,
            }),
            "gitlab" => Some(TargetKind::Gitlab {
                url: {
                    let url = url_of("url", t.url.clone(), problem);
                    tls_for_token(&url, problem);
                    url.trim_end_matches('/').to_owned()
                },
                project: need(
                    "project",
                    &t.project,
                    "the project id or URL-encoded path",
                    problem,
                ),
                git_ref: need("ref", &t.git_ref, "the branch or tag to run", problem),
                variables: t.variables.clone(),
                token: credential(
                    ("token_env", &t.token_env),
                    ("token_file", &t.token_file),
                    problem,
                ),
                secret: signing(problem),
            }),
            "github" => {
                let repository = need("repository", &t.repository, "owner/repo", problem);
                if !repository.is_empty()
                    && (repository.split('/').count() != 2
                        || repository.split('/').any(str::is_empty))
                {
                    problem(
                        format!("{path}.repository"),
                        format!("must be owner/repo, got {repository:?}"),
                    );
                }
                let url = t
                    .url
                    .clone()
                    .unwrap_or_else(|| "https://api.github.com".into());
                tls_for_token(&url, problem);
                Some(TargetKind::Github {
                    url: url_of("url", Some(url), problem)
                        .trim_end_matches('/')
                        .to_owned(),
                    repository,
                    event_type: t.event_type.clone(),
                    token: credential(
                        ("token_env", &t.token_env),
                        ("token_file", &t.token_file),
                        problem,
                    ),
                    secret: signing(problem),
                })
            }
            "kafka" => Some(TargetKind::Kafka {
                brokers: t.brokers.clone().unwrap_or_else(|| kafka.brokers.clone()),
                topic: need("topic", &t.topic, "the topic to produce to", problem),
                // The connection's settings (TLS, SASL); consumer settings
                // would only draw librdkafka's warnings on a producer.
                options: kafka
                    .options
                    .iter()
                    .filter(|(k, _)| {
                        ["security.", "ssl.", "sasl.", "socket.", "client.id"]
                            .iter()
                            .any(|p| k.starts_with(p))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }),
            other => {
                problem(
                    format!("{path}.kind"),
                    format!("must be webhook, gitlab, github or kafka, got {other:?}"),
                );
                None
            }
        };
        let actions = match &t.actions {
            None => Action::ALL.to_vec(),
            Some(names) => names
                .iter()
                .filter_map(|n| {
                    Action::parse(n).or_else(|| {
                        problem(
                            format!("{path}.actions"),
                            format!("must list actions from {}, got {n:?}", Action::TARGET_NAMES),
                        );
                        None
                    })
                })
                .collect(),
        };
        let mut dur = |key: &str, v: &str| match parse_duration_ms(v) {
            Ok(ms) if ms > 0 => ms as u64,
            _ => {
                problem(
                    format!("{path}.{key}"),
                    format!("must be a duration like 500ms, 10s or 5m, got {v:?}"),
                );
                1
            }
        };
        let timeout_ms = dur("timeout", &t.timeout);
        let min_backoff_ms = dur("min_backoff", &t.min_backoff);
        let max_backoff_ms = dur("max_backoff", &t.max_backoff);
        if t.max_attempts == 0 {
            problem(format!("{path}.max_attempts"), "must be at least 1".into());
        }
        let Some(kind) = kind else { continue };
        out.push(TargetConfig {
            name: t.name,
            kind,
            actions,
            timeout_ms,
            max_attempts: t.max_attempts.max(1),
            min_backoff_ms,
            max_backoff_ms: max_backoff_ms.max(min_backoff_ms),
        });
    }
    out
}

/// Rules: names unique, actions and durations valid, every metric in the
/// catalog, and a named feature known to the rule's model when that model
/// lists its features (or excludes it). Every problem is reported.
fn validate_rules(
    raw: Vec<raw::RawRule>,
    models: &BTreeMap<String, ModelConfig>,
    problem: &mut dyn FnMut(String, String),
) -> Vec<crate::rules::Rule> {
    use crate::rules::{Action, Condition, Rule};
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in raw.into_iter().enumerate() {
        let path = format!("rules[{i}]");
        if r.name.trim().is_empty() {
            problem(format!("{path}.name"), "must not be empty".into());
        } else if crate::rules::LOOP_RULE_NAMES.contains(&r.name.as_str()) {
            problem(
                format!("{path}.name"),
                format!("{:?} is the training loop's own decision name", r.name),
            );
        } else if !seen.insert(r.name.clone()) {
            problem(
                format!("{path}.name"),
                format!("{:?} names another rule too; names must be unique", r.name),
            );
        }
        let action = Action::parse(&r.action)
            .filter(|a| !matches!(a, Action::CandidateRejected | Action::Report));
        if action.is_none() {
            problem(
                format!("{path}.action"),
                format!("must be one of {}, got {:?}", Action::NAMES, r.action),
            );
        }
        let when = Condition::from_toml(&r.when, &format!("{path}.when"), problem);
        let rearm = r
            .rearm
            .as_ref()
            .map(|v| Condition::from_toml(v, &format!("{path}.rearm"), problem));
        let cooldown_ms = match parse_duration_ms(&r.cooldown) {
            Ok(ms) => ms,
            Err(e) => {
                problem(format!("{path}.cooldown"), e);
                0
            }
        };
        if r.for_windows == 0 {
            problem(format!("{path}.for_windows"), "must be at least 1".into());
        }
        if r.max_per_day == 0 {
            problem(
                format!("{path}.max_per_day"),
                "must be at least 1 (use actions.kill_switch to stop a rule)".into(),
            );
        }
        let mc = r.model.as_ref().and_then(|m| models.get(m));
        if let (Some(mc), Some(when)) = (mc, &when) {
            let rearm_features = match &rearm {
                Some(Some(c)) => c.features(),
                _ => Vec::new(),
            };
            for f in when.features().into_iter().chain(rearm_features) {
                let unknown = mc.exclude.contains(f)
                    || (!mc.include_unlisted_features && !mc.features.contains_key(f));
                if unknown {
                    problem(
                        format!("{path}.when"),
                        format!(
                            "feature {f:?} is not monitored for model {:?} (not in its features, or excluded)",
                            r.model.as_deref().unwrap_or_default()
                        ),
                    );
                }
            }
        }
        if let (Some(action), Some(when), Some(rearm)) =
            (action, when, rearm.map_or(Some(None), |c| c.map(Some)))
        {
            out.push(Rule {
                name: r.name,
                model: r.model,
                action,
                when,
                min_samples: r.min_samples,
                for_windows: r.for_windows.max(1),
                rearm,
                cooldown_ms,
                max_per_day: r.max_per_day.max(1),
            });
        }
    }
    out
}

/// `raw` applied to `base`, checked; problems under `key`.
fn resolve_data_quality(
    base: &crate::monitor::data_quality::DataQualitySettings,
    raw: &raw::RawDataQuality,
    key: &str,
    problem: &mut dyn FnMut(String, String),
) -> crate::monitor::data_quality::DataQualitySettings {
    let mut s = base.clone();
    if let Some(v) = raw.enabled {
        s.enabled = v;
    }
    for (name, v, into, max) in [
        ("alpha", raw.alpha, &mut s.alpha, 0.5),
        (
            "missing_rate_change",
            raw.missing_rate_change,
            &mut s.missing_rate_change,
            1.0,
        ),
        (
            "wrong_type_share",
            raw.wrong_type_share,
            &mut s.wrong_type_share,
            1.0,
        ),
        ("unseen_share", raw.unseen_share, &mut s.unseen_share, 1.0),
        (
            "out_of_range_share",
            raw.out_of_range_share,
            &mut s.out_of_range_share,
            1.0,
        ),
        (
            "new_feature_share",
            raw.new_feature_share,
            &mut s.new_feature_share,
            1.0,
        ),
    ] {
        if let Some(v) = v {
            if v > 0.0 && v <= max {
                *into = v;
            } else {
                problem(
                    format!("{key}.{name}"),
                    format!("must be greater than 0 and at most {max}, got {v}"),
                );
            }
        }
    }
    s
}

/// `over` applied to `base`, checked; problems under `key`.
fn resolve_learned(
    base: &crate::learned::LearnedSettings,
    over: &raw::RawLearned,
    key: &str,
    problem: &mut dyn FnMut(String, String),
) -> crate::learned::LearnedSettings {
    let mut s = base.clone();
    let mut count = |name: &str, v: Option<u64>, min: u64, max: u64, into: &mut usize| {
        if let Some(v) = v {
            if (min..=max).contains(&v) {
                *into = v as usize;
            } else {
                problem(
                    format!("{key}.{name}"),
                    format!("must be between {min} and {max}, got {v}"),
                );
            }
        }
    };
    // Sample size bounds the work per window (the kernel matrix grows with
    // its square); permutations bound the p-value's resolution.
    count(
        "sample_size",
        over.sample_size,
        20,
        4_096,
        &mut s.sample_size,
    );
    count(
        "reference_size",
        over.reference_size,
        20,
        16_384,
        &mut s.reference_size,
    );
    count(
        "permutations",
        over.permutations,
        0,
        10_000,
        &mut s.permutations,
    );
    count("folds", over.folds, 2, 20, &mut s.folds);
    for (name, v, into) in [
        ("mmd_alpha", over.mmd_alpha, &mut s.mmd_alpha),
        (
            "classifier_alpha",
            over.classifier_alpha,
            &mut s.classifier_alpha,
        ),
        ("auc_threshold", over.auc_threshold, &mut s.auc_threshold),
    ] {
        if let Some(v) = v {
            if v > 0.0 && v < 1.0 {
                *into = v;
            } else {
                problem(
                    format!("{key}.{name}"),
                    format!("must be in (0, 1), got {v}"),
                );
            }
        }
    }
    for (v, into) in [
        (over.enabled, &mut s.enabled),
        (over.classifier, &mut s.classifier),
        (over.embeddings, &mut s.embeddings),
        (over.embedding_classifier, &mut s.embedding_classifier),
    ] {
        if let Some(v) = v {
            *into = v;
        }
    }
    if let Some(seed) = over.seed {
        s.seed = seed;
    }
    // Windows draw their share of the reference from it. An inherited
    // (or default) pool smaller than this section's sample is the sample.
    if s.reference_size < s.sample_size {
        if over.reference_size.is_some() {
            problem(
                format!("{key}.reference_size"),
                format!(
                    "must be at least sample_size ({}), got {}",
                    s.sample_size, s.reference_size
                ),
            );
        } else {
            s.reference_size = s.sample_size;
        }
    }
    // A p-value is at least 1 / (permutations + 1): fewer could never flag.
    // Checked where a key involved is set (inherited values were checked
    // where they were set).
    let involved = over.permutations.is_some()
        || over.mmd_alpha.is_some()
        || over.classifier_alpha.is_some()
        || over.auc_threshold.is_some()
        || over.embeddings.is_some()
        || over.classifier.is_some()
        || over.embedding_classifier.is_some();
    let checks = [
        ("mmd_alpha", s.mmd_alpha, s.embeddings),
        (
            "classifier_alpha",
            s.classifier_alpha,
            s.classifier || s.embedding_classifier,
        ),
    ];
    for (name, alpha, on) in checks {
        if involved && on && s.permutations > 0 && 1.0 / (s.permutations as f64 + 1.0) >= alpha {
            problem(
                format!("{key}.permutations"),
                format!(
                    "must be at least {} for a p-value below {name} = {alpha}, got {}",
                    (1.0 / alpha).floor() as u64,
                    s.permutations
                ),
            );
        }
    }
    if involved
        && s.permutations == 0
        && (s.classifier || s.embedding_classifier)
        && s.auc_threshold <= 0.5
    {
        problem(
            format!("{key}.auc_threshold"),
            format!(
                "with permutations = 0 the classifier is judged by auc_threshold alone and \
                 must be above 0.5 (0.55 flags about 6 % of windows without drift at 256 \
                 rows a side), got {}",
                s.auc_threshold
            ),
        );
    }
    s
}

/// `over` applied to `base`, checked; problems under `key`.
fn resolve_estimator(
    base: &crate::learned::estimator::EstimatorSettings,
    over: &raw::RawEstimator,
    key: &str,
    problem: &mut dyn FnMut(String, String),
) -> crate::learned::estimator::EstimatorSettings {
    let mut s = base.clone();
    if let Some(v) = over.enabled {
        s.enabled = v;
    }
    if let Some(v) = over.retrain_after {
        if v == 0 {
            problem(
                format!("{key}.retrain_after"),
                "must be greater than 0, got 0".into(),
            );
        } else {
            s.retrain_after = v;
        }
    }
    if let Some(c) = &over.schedule {
        match crate::rules::parse_cron(c) {
            Ok(_) => s.schedule = Some(c.clone()),
            Err(e) => problem(format!("{key}.schedule"), e),
        }
    }
    for (name, v, min, into) in [
        ("max_examples", over.max_examples, 20, &mut s.max_examples),
        ("min_examples", over.min_examples, 10, &mut s.min_examples),
    ] {
        if let Some(v) = v {
            if (min..=10_000_000).contains(&v) {
                *into = v as usize;
            } else {
                problem(
                    format!("{key}.{name}"),
                    format!("must be between {min} and 10000000, got {v}"),
                );
            }
        }
    }
    if s.min_examples > s.max_examples {
        problem(
            format!("{key}.min_examples"),
            format!(
                "must not exceed max_examples ({}), got {}",
                s.max_examples, s.min_examples
            ),
        );
    }
    if let Some(v) = over.validation_share {
        if v > 0.0 && v < 0.9 {
            s.validation_share = v;
        } else {
            problem(
                format!("{key}.validation_share"),
                format!("must be in (0, 0.9), got {v}"),
            );
        }
    }
    if let Some(v) = over.penalty {
        // Above 0: the penalty keeps a constant input from making the
        // least-squares problem singular.
        if v > 0.0 && v.is_finite() {
            s.penalty = v;
        } else {
            problem(
                format!("{key}.penalty"),
                format!("must be a finite number > 0, got {v}"),
            );
        }
    }
    s
}

fn validate_model(
    name: &str,
    m: RawModel,
    drift: &DriftDefaults,
    (learned, estimator, data_quality): (
        &crate::learned::LearnedSettings,
        &crate::learned::estimator::EstimatorSettings,
        &crate::monitor::data_quality::DataQualitySettings,
    ),
    base: &Path,
    problem: &mut dyn FnMut(String, String),
) -> ModelConfig {
    let base_key = format!("models.{name}");
    if name.trim().is_empty() {
        problem(base_key.clone(), "model name must not be empty".into());
    }
    let f = &m.fields;
    for (key, ptr) in [
        ("event_id", &f.event_id),
        ("timestamp", &f.timestamp),
        ("model_version", &f.model_version),
        ("features", &f.features),
        ("prediction", &f.prediction),
        ("embeddings", &f.embeddings),
        ("latency_ms", &f.latency_ms),
        ("error", &f.error),
    ] {
        check_pointer(&format!("{base_key}.fields.{key}"), ptr, problem);
    }
    let dataset_drift_share = m.dataset_drift_share.unwrap_or(drift.dataset_drift_share);
    if !(dataset_drift_share > 0.0 && dataset_drift_share <= 1.0) {
        problem(
            format!("{base_key}.dataset_drift_share"),
            format!("must be in (0, 1], got {dataset_drift_share}"),
        );
    }
    let mut features = BTreeMap::new();
    for (fname, rf) in m.features {
        let fc = validate_feature(&format!("{base_key}.features.{fname}"), rf, problem);
        if m.exclude.contains(&fname) {
            problem(
                format!("{base_key}.exclude"),
                format!("`{fname}` is both excluded and configured"),
            );
        }
        features.insert(fname, fc);
    }
    let baseline = m.baseline.as_ref().map(|b| {
        let path = base.join(b);
        if !path.is_file() {
            problem(
                format!("{base_key}.baseline"),
                format!("no such file: {}", path.display()),
            );
        }
        path
    });
    let learned = resolve_learned(learned, &m.learned, &format!("{base_key}.learned"), problem);
    let data_quality = resolve_data_quality(
        data_quality,
        &m.data_quality,
        &format!("{base_key}.data_quality"),
        problem,
    );
    let estimator = resolve_estimator(
        estimator,
        &m.estimator,
        &format!("{base_key}.estimator"),
        problem,
    );
    ModelConfig {
        data_quality,
        learned,
        estimator,
        baseline,
        fields: FieldPaths {
            event_id: m.fields.event_id,
            timestamp: m.fields.timestamp,
            model_version: m.fields.model_version,
            features: m.fields.features,
            prediction: m.fields.prediction,
            embeddings: m.fields.embeddings,
            latency_ms: m.fields.latency_ms,
            error: m.fields.error,
        },
        include_unlisted_features: m.include_unlisted_features.unwrap_or(true),
        exclude: m.exclude.into_iter().collect(),
        features,
        dataset_drift_share,
    }
}

fn validate_feature(
    base: &str,
    rf: RawFeature,
    problem: &mut dyn FnMut(String, String),
) -> FeatureConfig {
    let kind = rf.kind.as_deref().and_then(|k| {
        let parsed = FeatureKind::parse(k);
        if parsed.is_none() {
            problem(
                format!("{base}.kind"),
                format!("must be one of {}, got {k:?}", FeatureKind::NAMES),
            );
        }
        parsed
    });
    let method = match rf.method.as_deref().map(Method::parse) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(m))) => Some(m),
        Some(Err(())) => {
            let got = rf.method.as_deref().unwrap_or_default();
            problem(
                format!("{base}.method"),
                format!("must be one of {}, got {got:?}", Method::NAMES),
            );
            None
        }
    };
    if let (Some(k), Some(m)) = (kind, method) {
        if !m.applies_to(k.is_numeric()) {
            problem(
                format!("{base}.method"),
                format!(
                    "{} does not apply to a {} feature",
                    m.name(),
                    serde_json::to_value(k).unwrap().as_str().unwrap_or("")
                ),
            );
        }
    }
    if let Some(path) = &rf.path {
        check_pointer(&format!("{base}.path"), path, problem);
    }
    if let Some(t) = rf.threshold {
        match method {
            Some(m) => {
                let (lo, hi) = m.threshold_range();
                if !(t > lo && t <= hi && t.is_finite()) {
                    let range = if hi.is_infinite() { "(0, inf)".to_owned() } else { "(0, 1]".to_owned() };
                    problem(format!("{base}.threshold"), format!("must be in {range}, got {t}"));
                }
            }
            None if rf.method.as_deref().is_none_or(|m| m == "auto") => problem(
                format!("{base}.threshold"),
                format!("needs an explicit method (auto switches between p-values and distances), got {t}"),
            ),
            None => {}
        }
    }
    FeatureConfig {
        kind,
        path: rf.path,
        method,
        threshold: rf.threshold,
    }
}

/// A JSON pointer is empty (the whole document) or starts with `/` (RFC 6901).
fn check_pointer(key: &str, ptr: &str, problem: &mut dyn FnMut(String, String)) {
    if !ptr.is_empty() && !ptr.starts_with('/') {
        problem(
            key.to_owned(),
            format!("must be a JSON pointer starting with `/`, got {ptr:?}"),
        );
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn reload_takes_thresholds_rules_and_targets_but_not_what_shapes_the_trackers() {
        let load = |text: &str| Config::from_toml(text, "t", &|_| None).unwrap();
        let base = load("[windows]\nsize = \"1m\"\n");
        // Drift thresholds, a model section that only sets them, rules, actions.
        let hot = load(
            "[windows]\nsize = \"1m\"\n[drift]\npsi_threshold = 0.3\n\
             [models.m]\ndataset_drift_share = 0.2\n[models.m.features.brightness]\nmethod = \"psi\"\nthreshold = 0.4\n\
             [actions]\nkill_switch = true\n\
             [[rules]]\nname = \"r\"\naction = \"notify\"\nwhen = { metric = \"events\", op = \">\", value = 1 }\n",
        );
        assert_eq!(base.restart_only_changes(&hot), Vec::<String>::new());
        let cold = load(
            "[windows]\nsize = \"2m\"\n[kafka]\ngroup_id = \"other\"\n\
             [models.m.features.brightness]\nkind = \"categorical\"\n",
        );
        assert_eq!(
            base.restart_only_changes(&cold),
            [
                "kafka",
                "windows",
                "models (other than methods and thresholds)"
            ]
        );
    }
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text, "test.toml", &no_env) {
            Ok(_) => vec![],
            Err(e) => e.problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn empty_config_is_valid_with_defaults() {
        let c = Config::from_toml("", "t", &no_env).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn reports_every_problem_at_once_with_key_and_value() {
        let text = r#"
            [drift]
            p_value_threshold = 0
            bogus = 1
            [models.captioner]
            dataset_drift_share = 1.5
            [models.captioner.features.brightness]
            method = "ks"
            threshold = 1.7
            [models.captioner.features.source]
            kind = "colour"
            method = "magic"
            [models.captioner.features.width]
            kind = "categorical"
            method = "wasserstein"
        "#;
        let got = problems(text);
        let want = [
            "drift.bogus: unknown key",
            "drift.p_value_threshold: must be in (0, 1], got 0",
            "models.captioner.dataset_drift_share: must be in (0, 1], got 1.5",
            "models.captioner.features.brightness.threshold: must be in (0, 1], got 1.7",
            "models.captioner.features.source.kind: must be one of numeric, categorical, text, embedding, got \"colour\"",
            "models.captioner.features.source.method: must be one of auto, ks, wasserstein, psi, jensen_shannon, chi_square, got \"magic\"",
            "models.captioner.features.width.method: wasserstein does not apply to a categorical feature",
        ];
        for w in want {
            assert!(got.iter().any(|g| g == w), "missing {w:?} in {got:#?}");
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn data_quality_levels_are_checked_and_applied() {
        let got =
            problems("[data_quality]\nalpha = 0\nunseen_share = 1.5\nout_of_range_share = -0.1\n");
        assert_eq!(
            got,
            [
                "data_quality.alpha: must be greater than 0 and at most 0.5, got 0",
                "data_quality.unseen_share: must be greater than 0 and at most 1, got 1.5",
                "data_quality.out_of_range_share: must be greater than 0 and at most 1, got -0.1",
            ]
        );
        let c = Config::from_toml(
            "[data_quality]\nenabled = false\nmissing_rate_change = 0.2\n",
            "t",
            &no_env,
        )
        .unwrap();
        assert!(!c.data_quality.enabled);
        assert_eq!(c.data_quality.missing_rate_change, 0.2);
        assert_eq!(c.data_quality.alpha, 0.001);
        // A model's section overrides the global one, key by key; models
        // without one take the global settings.
        let c = Config::from_toml(
            "[data_quality]\nunseen_share = 0.2\n[models.m.data_quality]\nalpha = 0.01\n",
            "t",
            &no_env,
        )
        .unwrap();
        let m = c.model("m").data_quality;
        assert_eq!((m.alpha, m.unseen_share), (0.01, 0.2));
        let other = c.model("other").data_quality;
        assert_eq!((other.alpha, other.unseen_share), (0.001, 0.2));
        assert_eq!(
            problems("[models.m.data_quality]\nwrong_type_share = 0\n"),
            ["models.m.data_quality.wrong_type_share: must be greater than 0 and at most 1, got 0"]
        );
    }

    #[test]
    fn threshold_without_method_is_rejected() {
        let got = problems("[models.m.features.f]\nthreshold = 0.2\n");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("models.m.features.f.threshold: needs an explicit method"),
            "{got:?}"
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let got = problems("[drift]\np_value_threshold = \n");
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("line 2: "), "{got:?}");
    }

    #[test]
    fn interpolation_feeds_values() {
        let env = |k: &str| (k == "SHARE").then(|| "0.3".to_owned());
        let c = Config::from_toml(
            "[drift]\ndataset_drift_share = ${SHARE}\npsi_threshold = ${PSI:-0.25}\n",
            "t",
            &env,
        )
        .unwrap();
        assert_eq!(c.drift.dataset_drift_share, 0.3);
        assert_eq!(c.drift.psi_threshold, 0.25);
    }

    #[test]
    fn a_value_from_the_environment_is_one_value_and_never_printed() {
        // Regression (issue 15): a secret holding `"` and a newline added
        // [limits] keys; a type error printed the secret.
        let env = |k: &str| match k {
            "EVIL" => Some("x\"\n[limits]\nmax_event_bytes = 1\n#".to_owned()),
            "SECRET" => Some("hunter2-secret".to_owned()),
            _ => None,
        };
        let c = Config::from_toml("[kafka]\nbrokers = \"${EVIL}\"\n", "t", &env).unwrap();
        assert_eq!(c.kafka.brokers, "x\"\n[limits]\nmax_event_bytes = 1\n#");
        assert_eq!(c.max_event_bytes, Config::default().max_event_bytes);
        for text in [
            // A type error on a key holding the secret.
            "[actions]\ndry_run = \"${SECRET}\"\n",
            // A validation problem quoting the value.
            "[kafka]\ngroup_id = \"g\"\ntopics = [\"${SECRET}\", \"\"]\n",
            // The value outside quotes.
            "[drift]\npsi_threshold = ${SECRET}\n",
        ] {
            let err = Config::from_toml(text, "t", &env).unwrap_err();
            let all: String = err.problems.iter().map(|p| p.to_string() + "\n").collect();
            assert!(!all.is_empty());
            assert!(!all.contains("hunter2"), "{text}: {all}");
        }
        // A literal secret in the file is not printed by a type error either.
        let err =
            Config::from_toml("[actions]\ndry_run = \"hunter3\"\n", "t", &no_env).unwrap_err();
        assert!(!err.problems[0].message.contains("hunter3"), "{err:?}");
    }

    #[test]
    fn absurd_values_and_cron_that_never_fires_are_refused_with_the_rest() {
        let got = problems(
            "[baseline]\nlearn_events = 9223372036854775807\n\
             [limits]\nmax_event_bytes = 9223372036854775807\n\
             [windows]\nsize = \"400d\"\n\
             [actions]\ndry_run = \"yes\"\n\
             [drift]\npsi_threshold = -1\n\
             [[schedules]]\nname = \"never\"\nmodel = \"m\"\ncron = \"0 0 0 31 2 *\"\naction = \"report\"\n",
        );
        let has = |key: &str, what: &str| got.iter().any(|p| p.contains(key) && p.contains(what));
        assert!(has("baseline.learn_events", "at most"), "{got:?}");
        assert!(has("limits.max_event_bytes", "at most"), "{got:?}");
        assert!(has("windows.size", "at most 366d"), "{got:?}");
        assert!(has("never fires", ""), "{got:?}");
        // The type error in [actions] does not hide the others.
        assert!(has("actions", "invalid type"), "{got:?}");
        assert!(has("drift.psi_threshold", "greater than 0"), "{got:?}");
    }

    #[test]
    fn token_targets_need_https_except_on_loopback() {
        let target = |url: &str, allow: bool| {
            problems(&format!(
                "[[targets]]\nname = \"t\"\nkind = \"gitlab\"\nurl = \"{url}\"\nproject = \"1\"\nref = \"main\"\ntoken_env = \"T\"\nallow_http = {allow}\n"
            ))
            .into_iter()
            .filter(|p| p.contains("https"))
            .count()
        };
        assert_eq!(target("http://ci.example.com", false), 1);
        assert_eq!(target("http://user:pw@ci.example.com", false), 1);
        assert_eq!(target("http://ci.example.com", true), 0);
        assert_eq!(target("https://ci.example.com", false), 0);
        assert_eq!(target("http://127.0.0.1:8080", false), 0);
        assert_eq!(target("http://[::1]:8080", false), 0);
        assert_eq!(target("http://localhost", false), 0);
        // A URL's password is not printed.
        let got = problems("[[targets]]\nname = \"t\"\nkind = \"webhook\"\nurl = \"ftp://u:pw@h\"\nsecret_env = \"S\"\n");
        assert!(got.iter().all(|p| !p.contains("pw")), "{got:?}");
    }

    #[test]
    fn quality_files_must_exist() {
        let got = problems("[quality]\nvocabulary = \"/nonexistent/words.txt\"\n");
        assert_eq!(
            got,
            ["quality.vocabulary: no such file: /nonexistent/words.txt"]
        );
    }

    #[test]
    fn bad_pointer_is_reported() {
        let got = problems("[models.m.fields]\nfeatures = \"features\"\n");
        assert_eq!(got, ["models.m.fields.features: must be a JSON pointer starting with `/`, got \"features\""]);
    }

    #[test]
    fn daemon_sections_validate_every_key() {
        let got = problems(
            "[kafka]\nbrokers = \"\"\ntopics = []\ndead_letter_topic = \"\"\n\
             [kafka.options]\n\"enable.auto.commit\" = \"true\"\n\
             [http]\nlisten = \"nowhere\"\n\
             [state]\ncheckpoint_interval = \"soon\"\ncheckpoint_events = 0\n\
             [limits]\nmax_models = 0\n",
        );
        let keys: Vec<&str> = got.iter().map(|p| p.split(':').next().unwrap()).collect();
        for key in [
            "kafka.brokers",
            "kafka.topics",
            "kafka.dead_letter_topic",
            "kafka.options.enable.auto.commit",
            "http.listen",
            "state.checkpoint_interval",
            "state.checkpoint_events",
            "limits.max_models",
        ] {
            assert!(keys.contains(&key), "{key} not reported in {got:?}");
        }
        let got = problems("[kafka]\ntopics = [\"logs\"]\nfeedback_topic = \"logs\"\n");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("kafka.feedback_topic: \"logs\" is also in kafka.topics"),
            "{got:?}"
        );
    }

    #[test]
    fn environment_overrides_the_daemon_keys() {
        let mut c = Config::from_toml("[kafka]\nbrokers = \"a:1\"\n", "t", &no_env).unwrap();
        let env = |k: &str| match k {
            "DRIFTD_KAFKA_BROKERS" => Some("b:2,c:3".to_owned()),
            "DRIFTD_KAFKA_TOPIC" => Some("one, two".to_owned()),
            "DRIFTD_KAFKA_GROUP" => Some("g".to_owned()),
            "DRIFTD_HTTP_LISTEN" => Some("0.0.0.0:1".to_owned()),
            "DRIFTD_STATE_DIR" => Some("/var/lib/driftd".to_owned()),
            _ => None,
        };
        c.apply_env_overrides(&env);
        assert_eq!(c.kafka.brokers, "b:2,c:3");
        assert_eq!(c.kafka.topics, ["one", "two"]);
        assert_eq!(c.kafka.group_id, "g");
        assert_eq!(c.daemon.http_listen, "0.0.0.0:1");
        assert_eq!(c.daemon.state_dir, PathBuf::from("/var/lib/driftd"));
        // Empty values leave the file's value.
        let mut c = Config::from_toml("[kafka]\nbrokers = \"a:1\"\n", "t", &no_env).unwrap();
        c.apply_env_overrides(&|_| Some(String::new()));
        assert_eq!(c.kafka.brokers, "a:1");
    }
}
