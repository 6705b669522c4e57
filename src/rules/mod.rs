//! Rules: window reports become decisions (issue 5).
//!
//! A rule is a condition over a window report, an action and guardrails. The
//! [`Decider`] is fed every closed window in order and says, per rule that
//! applies to the window's model, whether the rule fired, or why it did not
//! (every suppressed decision has a reason, so operators can tune). Time is
//! the window's event time, so a replay of a log gives the decisions the
//! daemon would have made on it.
//!
//! Conditions name metrics from a fixed catalog ([`WINDOW_METRICS`],
//! `feature.<name>.<stat>` with [`FEATURE_STATS`]); a name outside it is a
//! config error at load time. A metric a window does not have (CLIPScore
//! without embeddings, a feature the window did not see) makes a comparison
//! false: no data is never a breach.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::monitor::data_quality::FeatureQuality;
use crate::monitor::engine::WindowReport;
use crate::monitor::evaluate::{FeatureReport, Tests};

pub mod lifecycle;

pub use lifecycle::{
    Better, Candidate, Comparison, Criterion, ModelLifecycle, Registered, Versions,
};

/// Decision names the training loop uses; no rule or schedule may take them.
pub const LOOP_RULE_NAMES: [&str; 2] = ["promotion", "rollback"];

/// What a rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Retrain,
    Redeploy,
    Rollback,
    Notify,
    /// A registered candidate lost its comparison with the incumbent (the
    /// loop decides it; no rule names it).
    CandidateRejected,
    /// A scheduled evaluation report (`[[schedules]]` only).
    Report,
}

impl Action {
    /// What a rule may ask for.
    pub const NAMES: &'static str = "retrain, redeploy, rollback, notify";
    /// What a target may be sent.
    pub const TARGET_NAMES: &'static str =
        "retrain, redeploy, rollback, notify, candidate_rejected, report";
    pub const ALL: [Action; 6] = [
        Self::Retrain,
        Self::Redeploy,
        Self::Rollback,
        Self::Notify,
        Self::CandidateRejected,
        Self::Report,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "retrain" => Self::Retrain,
            "redeploy" => Self::Redeploy,
            "rollback" => Self::Rollback,
            "notify" => Self::Notify,
            "candidate_rejected" => Self::CandidateRejected,
            "report" => Self::Report,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retrain => "retrain",
            Self::Redeploy => "redeploy",
            Self::Rollback => "rollback",
            Self::Notify => "notify",
            Self::CandidateRejected => "candidate_rejected",
            Self::Report => "report",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    const NAMES: &'static str = ">, >=, <, <=, ==, !=";

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "<" => Self::Lt,
            "<=" => Self::Le,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    fn holds(self, x: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => x > threshold,
            Self::Ge => x >= threshold,
            Self::Lt => x < threshold,
            Self::Le => x <= threshold,
            Self::Eq => x == threshold,
            Self::Ne => x != threshold,
        }
    }
}

type WindowFn = fn(&WindowReport) -> Option<f64>;
type FeatureFn = fn(&FeatureReport) -> Option<f64>;

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Window-level metrics a condition may name.
pub const WINDOW_METRICS: &[(&str, WindowFn)] = &[
    ("drift_share", |r| Some(r.drift.dataset.share)),
    ("drifted_features", |r| Some(r.drift.dataset.drifted as f64)),
    ("dataset_drift", |r| Some(flag(r.drift.dataset.drift))),
    ("events", |r| Some(r.signals.events as f64)),
    ("signals.error_rate", |r| Some(r.signals.error_rate)),
    ("signals.empty_caption_rate", |r| {
        Some(r.signals.empty_caption_rate)
    }),
    ("signals.latency_ms_p50", |r| r.signals.latency_ms_p50),
    ("signals.latency_ms_p90", |r| r.signals.latency_ms_p90),
    ("signals.latency_ms_p99", |r| r.signals.latency_ms_p99),
    ("signals.late_events", |r| {
        Some(r.signals.late_events as f64)
    }),
    ("quality.empty_rate", |r| Some(r.captions.empty_rate)),
    ("quality.boilerplate_prefix_rate", |r| {
        Some(r.captions.boilerplate_prefix_rate)
    }),
    ("quality.ends_with_stopword_rate", |r| {
        Some(r.captions.ends_with_stopword_rate)
    }),
    ("quality.token_count_mean", |r| {
        Some(r.captions.token_count_mean)
    }),
    ("quality.type_token_ratio_mean", |r| {
        Some(r.captions.type_token_ratio_mean)
    }),
    ("quality.oov_rate_mean", |r| Some(r.captions.oov_rate_mean)),
    ("quality.repeated_1gram_rate_mean", |r| {
        Some(r.captions.repeated_1gram_rate_mean)
    }),
    ("quality.repeated_2gram_rate_mean", |r| {
        Some(r.captions.repeated_2gram_rate_mean)
    }),
    ("quality.repeated_3gram_rate_mean", |r| {
        Some(r.captions.repeated_3gram_rate_mean)
    }),
    ("quality.repeated_4gram_rate_mean", |r| {
        Some(r.captions.repeated_4gram_rate_mean)
    }),
    ("quality.longest_repeat_run_mean", |r| {
        Some(r.captions.longest_repeat_run_mean)
    }),
    ("quality.duplicate_caption_share", |r| {
        Some(r.captions.duplicate_caption_share)
    }),
    ("quality.top_caption_share", |r| {
        Some(r.captions.top_caption_share)
    }),
    ("quality.clip_score_mean", |r| r.captions.clip_score_mean),
    ("quality.rating_mean", |r| r.captions.rating_mean),
    ("quality.feedback_joined", |r| {
        Some(r.captions.feedback_joined as f64)
    }),
    ("quality.bleu_1", |r| r.captions.references.as_ref()?.bleu_1),
    ("quality.bleu_2", |r| r.captions.references.as_ref()?.bleu_2),
    ("quality.bleu_3", |r| r.captions.references.as_ref()?.bleu_3),
    ("quality.bleu_4", |r| r.captions.references.as_ref()?.bleu_4),
    ("quality.rouge_l", |r| {
        r.captions.references.as_ref()?.rouge_l
    }),
    ("quality.cider_d", |r| {
        r.captions.references.as_ref()?.cider_d
    }),
    ("quality.predicted_mean", |r| {
        r.estimator.as_ref()?.predicted_mean
    }),
    ("quality.estimator_validation_rmse", |r| {
        r.estimator.as_ref()?.validation_rmse
    }),
    ("data_quality.issues", |r| {
        Some(r.data_quality.issues as f64)
    }),
    ("data_quality.missing_rate_change_max", |r| {
        Some(r.data_quality.max_of(|f| Some(f.missing_rate_change)))
    }),
    ("data_quality.wrong_type_share_max", |r| {
        Some(r.data_quality.max_of(|f| Some(f.wrong_type_share)))
    }),
    ("data_quality.unseen_share_max", |r| {
        Some(r.data_quality.max_of(|f| f.unseen_share))
    }),
    ("data_quality.out_of_range_share_max", |r| {
        Some(r.data_quality.max_of(|f| f.out_of_range_share))
    }),
    ("data_quality.absent_features", |r| {
        Some(r.data_quality.absent().count() as f64)
    }),
    ("data_quality.new_feature_share", |r| {
        Some(r.data_quality.new_features.share)
    }),
    ("learned.drift", |r| Some(flag(r.learned.as_ref()?.drift))),
    ("learned.classifier_auc", |r| {
        Some(learned_classifier(r)?.auc)
    }),
    ("learned.classifier_auc_std_error", |r| {
        Some(learned_classifier(r)?.auc_std_error)
    }),
    ("learned.classifier_drift", |r| {
        Some(flag(learned_classifier(r)?.drift))
    }),
    ("learned.classifier_p_value", |r| {
        Some(learned_classifier(r)?.p_value).filter(|p| !p.is_nan())
    }),
];

fn learned_classifier(r: &WindowReport) -> Option<&crate::learned::DomainDrift> {
    r.learned.as_ref()?.classifier.as_ref()?.result.as_ref()
}

type QualityFn = fn(&FeatureQuality) -> Option<f64>;

/// What `feature.<name>.<stat>` may name of the feature's data-quality
/// checks (present for every baseline feature, with or without values).
pub const QUALITY_STATS: &[(&str, QualityFn)] = &[
    ("missing_rate", |f| Some(f.missing_rate)),
    ("missing_rate_change", |f| Some(f.missing_rate_change)),
    ("wrong_type_share", |f| Some(f.wrong_type_share)),
    ("unseen_share", |f| f.unseen_share),
    ("out_of_range_share", |f| f.out_of_range_share),
    ("absent", |f| Some(flag(f.absent))),
    ("data_quality_issues", |f| Some(f.flagged.len() as f64)),
];

type EmbeddingFn = fn(&crate::learned::window::EmbeddingCheck) -> Option<f64>;

/// What `embedding.<name>.<stat>` may name: the learned checks' figures for
/// one embedding.
pub const EMBEDDING_STATS: &[(&str, EmbeddingFn)] = &[
    ("drift", |e| Some(flag(e.drift))),
    ("mmd2", |e| Some(e.mmd.as_ref()?.mmd2)),
    ("p_value", |e| Some(e.mmd.as_ref()?.p_value)),
    ("mean_shift", |e| Some(e.mmd.as_ref()?.mean_shift)),
    ("classifier_auc", |e| Some(e.classifier.as_ref()?.auc)),
    ("classifier_p_value", |e| {
        Some(e.classifier.as_ref()?.p_value).filter(|p| !p.is_nan())
    }),
];

/// What `feature.<name>.<stat>` may name: the feature's score and drift flag
/// (as the drift decision made them) and each test's figures.
pub const FEATURE_STATS: &[(&str, FeatureFn)] = &[
    ("score", |f| Some(f.score)),
    ("drift", |f| Some(flag(f.drift))),
    ("current_count", |f| Some(f.current_count as f64)),
    ("psi", |f| {
        Some(match &f.tests {
            Tests::Numeric(t) => t.psi.value,
            Tests::Categorical(t) => t.psi.value,
        })
    }),
    ("jensen_shannon", |f| {
        Some(match &f.tests {
            Tests::Numeric(t) => t.jensen_shannon.distance,
            Tests::Categorical(t) => t.jensen_shannon.distance,
        })
    }),
    ("ks_statistic", |f| match &f.tests {
        Tests::Numeric(t) => Some(t.ks.statistic),
        Tests::Categorical(_) => None,
    }),
    ("ks_p_value", |f| match &f.tests {
        Tests::Numeric(t) => Some(t.ks.p_value),
        Tests::Categorical(_) => None,
    }),
    ("wasserstein", |f| match &f.tests {
        Tests::Numeric(t) => Some(t.wasserstein.distance),
        Tests::Categorical(_) => None,
    }),
    ("wasserstein_normalized", |f| match &f.tests {
        Tests::Numeric(t) => Some(t.wasserstein.normalized),
        Tests::Categorical(_) => None,
    }),
    ("chi_square_statistic", |f| match &f.tests {
        Tests::Categorical(t) => Some(t.chi_square.statistic),
        Tests::Numeric(_) => None,
    }),
    ("chi_square_p_value", |f| match &f.tests {
        Tests::Categorical(t) => Some(t.chi_square.p_value),
        Tests::Numeric(_) => None,
    }),
];

impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A metric of a window report.
#[derive(Debug, Clone)]
pub enum Metric {
    Window {
        name: &'static str,
        get: WindowFn,
    },
    Feature {
        feature: String,
        stat: &'static str,
        get: FeatureFn,
    },
    Embedding {
        embedding: String,
        stat: &'static str,
        get: EmbeddingFn,
    },
    Quality {
        feature: String,
        stat: &'static str,
        get: QualityFn,
    },
}

impl Metric {
    /// Look a metric up in the catalog; the error says what exists.
    pub fn parse(name: &str) -> Result<Self, String> {
        if let Some((n, get)) = WINDOW_METRICS.iter().find(|(n, _)| *n == name) {
            return Ok(Self::Window { name: n, get: *get });
        }
        if let Some(rest) = name.strip_prefix("feature.") {
            let Some((feature, stat)) = rest.rsplit_once('.') else {
                return Err(format!(
                    "unknown metric {name:?}: a feature metric is feature.<name>.<stat>"
                ));
            };
            if feature.is_empty() {
                return Err(format!("metric {name:?} names no feature"));
            }
            if let Some((s, get)) = QUALITY_STATS.iter().find(|(s, _)| *s == stat) {
                return Ok(Self::Quality {
                    feature: feature.to_owned(),
                    stat: s,
                    get: *get,
                });
            }
            let Some((s, get)) = FEATURE_STATS.iter().find(|(s, _)| *s == stat) else {
                let stats: Vec<&str> = FEATURE_STATS
                    .iter()
                    .map(|(s, _)| *s)
                    .chain(QUALITY_STATS.iter().map(|(s, _)| *s))
                    .collect();
                return Err(format!(
                    "unknown feature statistic {stat:?} in {name:?}; one of: {}",
                    stats.join(", ")
                ));
            };
            return Ok(Self::Feature {
                feature: feature.to_owned(),
                stat: s,
                get: *get,
            });
        }
        if let Some(rest) = name.strip_prefix("embedding.") {
            let stats = || {
                EMBEDDING_STATS
                    .iter()
                    .map(|(s, _)| *s)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let Some((embedding, stat)) = rest.rsplit_once('.') else {
                return Err(format!(
                    "unknown metric {name:?}: an embedding metric is embedding.<name>.<stat>, stat one of: {}",
                    stats()
                ));
            };
            let Some((s, get)) = EMBEDDING_STATS.iter().find(|(s, _)| *s == stat) else {
                return Err(format!(
                    "unknown embedding statistic {stat:?} in {name:?}; one of: {}",
                    stats()
                ));
            };
            if embedding.is_empty() {
                return Err(format!("metric {name:?} names no embedding"));
            }
            return Ok(Self::Embedding {
                embedding: embedding.to_owned(),
                stat: s,
                get: *get,
            });
        }
        Err(format!(
            "unknown metric {name:?}; window metrics are {}, feature.<name>.<stat> and embedding.<name>.<stat>",
            WINDOW_METRICS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    pub fn name(&self) -> String {
        match self {
            Self::Window { name, .. } => (*name).to_owned(),
            Self::Feature { feature, stat, .. } => format!("feature.{feature}.{stat}"),
            Self::Embedding {
                embedding, stat, ..
            } => format!("embedding.{embedding}.{stat}"),
            Self::Quality { feature, stat, .. } => format!("feature.{feature}.{stat}"),
        }
    }

    /// The metric's value in a window; `None` when the window lacks it.
    pub fn value(&self, r: &WindowReport) -> Option<f64> {
        match self {
            Self::Window { get, .. } => get(r),
            Self::Feature { feature, get, .. } => {
                get(r.drift.features.iter().find(|f| f.name == *feature)?)
            }
            Self::Embedding { embedding, get, .. } => {
                get(r.learned.as_ref()?.embeddings.get(embedding)?)
            }
            Self::Quality { feature, get, .. } => get(r
                .data_quality
                .features
                .iter()
                .find(|f| f.name == *feature)?),
        }
        .filter(|x| !x.is_nan())
    }
}

impl PartialEq for Metric {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// A comparison, or `all` / `any` of conditions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Compare { metric: Metric, op: Op, value: f64 },
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

/// A comparison as evaluated on one window: the evidence of a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub metric: String,
    /// `None`: the window does not have this metric.
    pub value: Option<f64>,
    pub op: &'static str,
    pub threshold: f64,
    pub holds: bool,
}

impl Condition {
    /// Whether any comparison reads the window's drift verdicts
    /// (`dataset_drift`, `drift_share`, `drifted_features`, `feature.*`).
    pub fn reads_drift(&self) -> bool {
        match self {
            Self::Compare { metric, .. } => match metric {
                Metric::Window { name, .. } => {
                    matches!(*name, "dataset_drift" | "drift_share" | "drifted_features")
                }
                Metric::Feature { .. } => true,
                Metric::Embedding { .. } | Metric::Quality { .. } => false,
            },
            Self::All(cs) | Self::Any(cs) => cs.iter().any(Condition::reads_drift),
        }
    }

    /// Whether the condition holds, with every comparison's evidence.
    pub fn eval(&self, r: &WindowReport, evidence: &mut Vec<Evidence>) -> bool {
        match self {
            Self::Compare { metric, op, value } => {
                let v = metric.value(r);
                let holds = v.is_some_and(|x| op.holds(x, *value));
                evidence.push(Evidence {
                    metric: metric.name(),
                    value: v,
                    op: op.as_str(),
                    threshold: *value,
                    holds,
                });
                holds
            }
            // Every branch is evaluated (no short cut) so the evidence is whole.
            Self::All(cs) => cs.iter().fold(true, |acc, c| c.eval(r, evidence) & acc),
            Self::Any(cs) => cs.iter().fold(false, |acc, c| c.eval(r, evidence) | acc),
        }
    }

    /// Features the condition names.
    pub fn features(&self) -> Vec<&str> {
        match self {
            Self::Compare {
                metric: Metric::Feature { feature, .. } | Metric::Quality { feature, .. },
                ..
            } => vec![feature.as_str()],
            Self::Compare { .. } => Vec::new(),
            Self::All(cs) | Self::Any(cs) => cs.iter().flat_map(Condition::features).collect(),
        }
    }

    /// Parse a condition from the config (`{ metric, op, value }`,
    /// `{ all = [...] }` or `{ any = [...] }`); every problem is reported
    /// with its path.
    pub fn from_toml(
        v: &toml::Value,
        path: &str,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<Self> {
        let Some(t) = v.as_table() else {
            problem(
                path.to_owned(),
                "must be a table: { metric, op, value }, { all = [...] } or { any = [...] }".into(),
            );
            return None;
        };
        for key in ["all", "any"] {
            if let Some(list) = t.get(key) {
                if t.len() != 1 {
                    problem(
                        path.to_owned(),
                        format!("`{key}` must stand alone in its table"),
                    );
                    return None;
                }
                let Some(items) = list.as_array().filter(|a| !a.is_empty()) else {
                    problem(
                        format!("{path}.{key}"),
                        "must be a non-empty array of conditions".into(),
                    );
                    return None;
                };
                let parsed: Vec<Option<Condition>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Self::from_toml(c, &format!("{path}.{key}[{i}]"), problem))
                    .collect();
                let parsed: Option<Vec<Condition>> = parsed.into_iter().collect();
                return parsed.map(|cs| {
                    if key == "all" {
                        Self::All(cs)
                    } else {
                        Self::Any(cs)
                    }
                });
            }
        }
        for k in t.keys() {
            if !matches!(k.as_str(), "metric" | "op" | "value") {
                problem(format!("{path}.{k}"), "unknown key".into());
            }
        }
        let metric = match t.get("metric").and_then(toml::Value::as_str) {
            Some(m) => Metric::parse(m)
                .map_err(|e| problem(format!("{path}.metric"), e))
                .ok(),
            None => {
                problem(format!("{path}.metric"), "missing (a metric name)".into());
                None
            }
        };
        let op = match t.get("op").and_then(toml::Value::as_str) {
            Some(o) => Op::parse(o).or_else(|| {
                problem(
                    format!("{path}.op"),
                    format!("unknown operator {o:?}; one of: {}", Op::NAMES),
                );
                None
            }),
            None => {
                problem(
                    format!("{path}.op"),
                    format!("missing (one of: {})", Op::NAMES),
                );
                None
            }
        };
        let value = match t.get("value") {
            Some(toml::Value::Float(x)) if x.is_finite() => Some(*x),
            Some(toml::Value::Integer(n)) => Some(*n as f64),
            Some(toml::Value::Boolean(b)) => Some(flag(*b)),
            _ => {
                problem(format!("{path}.value"), "must be a finite number".into());
                None
            }
        };
        Some(Self::Compare {
            metric: metric?,
            op: op?,
            value: value?,
        })
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub name: String,
    /// `None`: every model.
    pub model: Option<String>,
    pub action: Action,
    pub when: Condition,
    /// Windows with fewer events are not judged.
    pub min_samples: u64,
    /// Consecutive breaching windows before the rule fires.
    pub for_windows: u32,
    /// After firing, the rule re-arms only in a window where this holds (by
    /// default: a window where `when` does not).
    pub rearm: Option<Condition>,
    /// Event time after a firing during which the rule does not fire again.
    pub cooldown_ms: i64,
    /// Firings of this rule's action per model per 24 hours of event time.
    pub max_per_day: u32,
}

/// Settings over all rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionSettings {
    /// Decide and record, but mark every decision as not sent.
    pub dry_run: bool,
    /// Decide nothing: every firing is suppressed.
    pub kill_switch: bool,
    /// A retrain counts as in flight for this long (event time) unless a
    /// candidate is registered first; no second retrain of the model meanwhile.
    pub retrain_timeout_ms: i64,
    /// How a registered candidate is compared with the incumbent
    /// (`[promotion]`); without it candidates are recorded but not judged.
    pub promotion: Option<Comparison>,
    /// How a freshly redeployed version is compared with the one it
    /// replaced (`[rollback]`); without it there is no probation.
    pub rollback: Option<Comparison>,
}

impl Default for ActionSettings {
    fn default() -> Self {
        Self {
            dry_run: false,
            kill_switch: false,
            retrain_timeout_ms: 6 * 3_600_000,
            promotion: None,
            rollback: None,
        }
    }
}

/// What became of a rule on a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action is decided.
    Fired,
    /// Decided, but `actions.dry_run` is on: nothing will be sent.
    DryRun,
    /// Breached, and suppressed for a reason.
    Suppressed(Suppression),
}

/// Why a breaching window did not fire its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// Fewer events in the window than `min_samples`.
    MinSamples,
    /// Breaching, but for fewer consecutive windows than `for_windows`.
    Pending,
    /// Fired before, and not yet back below its re-arm level.
    NotRearmed,
    /// Within `cooldown` of the last firing.
    Cooldown,
    /// `max_per_day` reached.
    DailyLimit,
    /// A retrain of the model is already in flight.
    RetrainInFlight,
    /// `actions.kill_switch` is on.
    KillSwitch,
}

impl Suppression {
    pub const ALL: [Suppression; 7] = [
        Self::MinSamples,
        Self::Pending,
        Self::NotRearmed,
        Self::Cooldown,
        Self::DailyLimit,
        Self::RetrainInFlight,
        Self::KillSwitch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MinSamples => "min_samples",
            Self::Pending => "pending",
            Self::NotRearmed => "not_rearmed",
            Self::Cooldown => "cooldown",
            Self::DailyLimit => "daily_limit",
            Self::RetrainInFlight => "retrain_in_flight",
            Self::KillSwitch => "kill_switch",
        }
    }
}

/// One rule's verdict on one window where it breached (decisions are made
/// only on breaching windows; quiet windows give none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub rule: String,
    pub action: Action,
    pub model: String,
    pub model_version: String,
    pub window_index: u64,
    pub window_end: String,
    pub samples: u64,
    #[serde(serialize_with = "outcome_str")]
    pub outcome: Outcome,
    /// Consecutive breaching windows, this one included (loop decisions:
    /// the windows compared).
    pub consecutive: u32,
    pub evidence: Vec<Evidence>,
    /// Why, in a sentence.
    pub reason: String,
    /// The versions in play: the incumbent, a candidate, and for a
    /// promotion or rollback the version to deploy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Versions>,
    /// A scheduled report: the model's latest window per version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
}

fn outcome_str<S: serde::Serializer>(o: &Outcome, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&o.describe())
}

impl Outcome {
    /// `fired`, `dry_run`, or `suppressed: <reason>`.
    pub fn describe(&self) -> String {
        match self {
            Self::Fired => "fired".into(),
            Self::DryRun => "dry_run".into(),
            Self::Suppressed(s) => format!("suppressed: {}", s.as_str()),
        }
    }
}

/// Guardrail state of one rule for one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RuleState {
    consecutive: u32,
    armed_off: bool,
    last_fired_ms: Option<i64>,
    /// Window-end times of firings within the last 24 hours.
    fired_recently: VecDeque<i64>,
}

/// Turns window reports into decisions. Its state is plain data
/// ([`Decider::state`]) so it can be checkpointed with the windows.
#[derive(Debug, Clone)]
pub struct Decider {
    rules: Vec<Rule>,
    settings: ActionSettings,
    /// (rule name, model) -> state.
    states: BTreeMap<(String, String), RuleState>,
    /// model -> event time until which a retrain is in flight.
    retrain_until: BTreeMap<String, i64>,
    /// model -> incumbent, candidate, probation.
    models: BTreeMap<String, ModelLifecycle>,
    /// schedule name -> the scheduled time (epoch ms) it last ran for.
    schedules_last: BTreeMap<String, i64>,
    /// Decisions so far by outcome.
    pub counts: BTreeMap<String, u64>,
}

const DAY_MS: i64 = 86_400_000;

impl Decider {
    pub fn new(rules: Vec<Rule>, settings: ActionSettings) -> Self {
        Self {
            rules,
            settings,
            states: BTreeMap::new(),
            retrain_until: BTreeMap::new(),
            models: BTreeMap::new(),
            schedules_last: BTreeMap::new(),
            counts: BTreeMap::new(),
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Replace rules and settings (a config reload); guardrail state of
    /// rules that keep their name stays.
    pub fn reconfigure(&mut self, rules: Vec<Rule>, settings: ActionSettings) {
        self.states
            .retain(|(name, _), _| rules.iter().any(|r| r.name == *name));
        self.rules = rules;
        self.settings = settings;
    }

    /// Judge a closed window: a decision for every applicable rule whose
    /// condition breaches (fired or suppressed), in rule order.
    pub fn decide(&mut self, r: &WindowReport) -> Vec<Decision> {
        let Some(now) = crate::event::parse_timestamp_str(&r.window.end).ok() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let lifecycle = self.models.entry(r.model.clone()).or_default();
        let rules_apply = lifecycle.rules_apply(&r.model_version);
        // Every decision names the versions in play.
        let versions = Versions {
            incumbent: lifecycle
                .incumbent
                .clone()
                .unwrap_or_else(|| r.model_version.clone()),
            candidate: lifecycle.candidate.as_ref().map(|c| c.version.clone()),
            deploy: None,
        };
        for rule in &self.rules {
            if !rules_apply || rule.model.as_ref().is_some_and(|m| *m != r.model) {
                continue;
            }
            let key = (rule.name.clone(), r.model.clone());
            let state = self.states.entry(key).or_default();
            let mut evidence = Vec::new();
            let breach = rule.when.eval(r, &mut evidence);
            let samples = r.signals.events;
            // Too small to judge: neither counts towards nor breaks a run.
            let judged = samples >= rule.min_samples;
            // Re-arming: a judged window where `rearm` holds, or by default
            // one that does not breach.
            if judged && state.armed_off {
                let rearmed = match &rule.rearm {
                    Some(c) => c.eval(r, &mut Vec::new()),
                    None => !breach,
                };
                state.armed_off = !rearmed;
            }
            if judged && !breach {
                state.consecutive = 0;
                continue;
            }
            if !breach {
                continue;
            }
            let outcome = if !judged {
                Outcome::Suppressed(Suppression::MinSamples)
            } else {
                state.consecutive += 1;
                while state
                    .fired_recently
                    .front()
                    .is_some_and(|&t| t <= now - DAY_MS)
                {
                    state.fired_recently.pop_front();
                }
                let in_flight = rule.action == Action::Retrain
                    && self.retrain_until.get(&r.model).is_some_and(|&t| now < t);
                if state.consecutive < rule.for_windows {
                    Outcome::Suppressed(Suppression::Pending)
                } else if state.armed_off {
                    Outcome::Suppressed(Suppression::NotRearmed)
                } else if state
                    .last_fired_ms
                    .is_some_and(|t| now < t.saturating_add(rule.cooldown_ms))
                {
                    Outcome::Suppressed(Suppression::Cooldown)
                } else if state.fired_recently.len() >= rule.max_per_day as usize {
                    Outcome::Suppressed(Suppression::DailyLimit)
                } else if in_flight {
                    Outcome::Suppressed(Suppression::RetrainInFlight)
                } else if self.settings.kill_switch {
                    Outcome::Suppressed(Suppression::KillSwitch)
                } else {
                    state.armed_off = true;
                    state.last_fired_ms = Some(now);
                    state.fired_recently.push_back(now);
                    if rule.action == Action::Retrain {
                        self.retrain_until.insert(
                            r.model.clone(),
                            now.saturating_add(self.settings.retrain_timeout_ms),
                        );
                    }
                    if self.settings.dry_run {
                        Outcome::DryRun
                    } else {
                        Outcome::Fired
                    }
                }
            };
            *self.counts.entry(outcome.describe()).or_default() += 1;
            let held: Vec<String> = evidence
                .iter()
                .filter(|e| e.holds)
                .map(|e| {
                    format!(
                        "{} {} {} {}",
                        e.metric,
                        e.value.map_or("-".into(), |v| format!("{v:.4}")),
                        e.op,
                        e.threshold
                    )
                })
                .collect();
            out.push(Decision {
                rule: rule.name.clone(),
                action: rule.action,
                model: r.model.clone(),
                model_version: r.model_version.clone(),
                window_index: r.window.index,
                window_end: r.window.end.clone(),
                samples,
                outcome,
                consecutive: state.consecutive,
                reason: format!(
                    "rule {}: {} ({} consecutive windows)",
                    rule.name,
                    held.join(", "),
                    state.consecutive
                ),
                evidence,
                versions: Some(versions.clone()),
                report: None,
            });
        }
        let apply = !self.settings.kill_switch;
        let lifecycle = self.models.entry(r.model.clone()).or_default();
        if let Some(v) = lifecycle.observe(
            r,
            self.settings.promotion.as_ref(),
            self.settings.rollback.as_ref(),
            apply,
        ) {
            use lifecycle::VerdictKind;
            let (rule, action) = match v.kind {
                VerdictKind::Promote => ("promotion", Action::Redeploy),
                VerdictKind::Reject => ("promotion", Action::CandidateRejected),
                VerdictKind::Rollback => ("rollback", Action::Rollback),
            };
            let outcome = if !apply {
                Outcome::Suppressed(Suppression::KillSwitch)
            } else if self.settings.dry_run {
                Outcome::DryRun
            } else {
                Outcome::Fired
            };
            *self.counts.entry(outcome.describe()).or_default() += 1;
            out.push(Decision {
                rule: rule.into(),
                action,
                model: r.model.clone(),
                model_version: r.model_version.clone(),
                window_index: r.window.index,
                window_end: r.window.end.clone(),
                samples: r.signals.events,
                outcome,
                consecutive: v.windows as u32,
                evidence: v.evidence,
                reason: v.reason,
                versions: Some(v.versions),
                report: None,
            });
        }
        out
    }

    /// Scheduled runs due at `now_ms` (wall clock), each with its scheduled
    /// time: at most one per schedule, so runs missed while driftd was
    /// stopped collapse into one. A schedule seen for the first time starts
    /// counting from `now_ms`. The second value says whether the schedules'
    /// state changed (so a checkpoint is due).
    pub fn due_schedules(
        &mut self,
        schedules: &[ScheduleConfig],
        now_ms: i64,
    ) -> (Vec<(ScheduleConfig, i64)>, bool) {
        let mut due = Vec::new();
        let mut changed = false;
        self.schedules_last
            .retain(|name, _| schedules.iter().any(|s| s.name == *name));
        for s in schedules {
            let Some(&last) = self.schedules_last.get(&s.name) else {
                self.schedules_last.insert(s.name.clone(), now_ms);
                changed = true;
                continue;
            };
            let Ok(cron) = parse_cron(&s.cron) else {
                continue;
            };
            let Some(after) = chrono::DateTime::from_timestamp_millis(last) else {
                continue;
            };
            let latest = cron
                .after(&after)
                .map(|t| t.timestamp_millis())
                .take_while(|&t| t <= now_ms)
                .take(100_000)
                .last();
            if let Some(at) = latest {
                self.schedules_last.insert(s.name.clone(), at);
                changed = true;
                due.push((s.clone(), at));
            }
        }
        (due, changed)
    }

    /// The decision of a scheduled run at `at_ms`. A retrain is suppressed
    /// while one is in flight (by the model's newest event time) and by the
    /// kill switch; a report only by the kill switch.
    pub fn scheduled_decision(
        &mut self,
        s: &ScheduleConfig,
        at_ms: i64,
        newest_event_ms: Option<i64>,
        report: Option<serde_json::Value>,
    ) -> Decision {
        let in_flight = s.action == Action::Retrain
            && newest_event_ms
                .is_some_and(|n| self.retrain_until.get(&s.model).is_some_and(|&u| n < u));
        let outcome = if self.settings.kill_switch {
            Outcome::Suppressed(Suppression::KillSwitch)
        } else if in_flight {
            Outcome::Suppressed(Suppression::RetrainInFlight)
        } else {
            if s.action == Action::Retrain {
                if let Some(n) = newest_event_ms {
                    self.retrain_until.insert(
                        s.model.clone(),
                        n.saturating_add(self.settings.retrain_timeout_ms),
                    );
                }
            }
            if self.settings.dry_run {
                Outcome::DryRun
            } else {
                Outcome::Fired
            }
        };
        *self.counts.entry(outcome.describe()).or_default() += 1;
        let version = self
            .models
            .get(&s.model)
            .and_then(|m| m.incumbent.clone())
            .unwrap_or_default();
        Decision {
            rule: s.name.clone(),
            action: s.action,
            model: s.model.clone(),
            model_version: version,
            window_index: (at_ms / 1000).max(0) as u64,
            window_end: crate::monitor::engine::rfc3339(at_ms),
            samples: 0,
            outcome,
            consecutive: 0,
            evidence: Vec::new(),
            reason: format!(
                "schedule {} ({}): {}",
                s.name,
                s.cron,
                if s.action == Action::Retrain {
                    "retraining on a timetable"
                } else {
                    "evaluation report"
                }
            ),
            versions: None,
            report,
        }
    }

    /// A model's place in the loop.
    pub fn lifecycle(&self, model: &str) -> Option<&ModelLifecycle> {
        self.models.get(model)
    }

    /// Register a candidate for `model` (its retrain, if in flight, has landed).
    pub fn register_candidate(
        &mut self,
        model: &str,
        version: &str,
        registered_at: String,
        metadata: serde_json::Value,
    ) -> Result<Registered, String> {
        let r = self.models.entry(model.to_owned()).or_default().register(
            version,
            registered_at,
            metadata,
        )?;
        self.retrain_landed(model);
        Ok(r)
    }

    /// Event time (epoch ms) until which a retrain of `model` is in flight.
    pub fn retrain_until(&self, model: &str) -> Option<i64> {
        self.retrain_until.get(model).copied()
    }

    /// A candidate was registered for `model`: its retrain is no longer in flight.
    pub fn retrain_landed(&mut self, model: &str) {
        self.retrain_until.remove(model);
    }

    /// Guardrail state as bytes-friendly data, for checkpoints.
    pub fn state(&self) -> DeciderState {
        DeciderState {
            rules: self
                .states
                .iter()
                .map(|((rule, model), s)| (rule.clone(), model.clone(), s.clone()))
                .collect(),
            retrain_until: self.retrain_until.clone(),
            models: self.models.clone(),
            schedules_last: self.schedules_last.clone(),
            counts: self.counts.clone(),
        }
    }

    pub fn restore(&mut self, s: DeciderState) {
        self.states = s
            .rules
            .into_iter()
            .map(|(rule, model, st)| ((rule, model), st))
            .collect();
        self.retrain_until = s.retrain_until;
        self.models = s.models;
        self.schedules_last = s.schedules_last;
        self.counts = s.counts;
    }
}

/// A timetable from `[[schedules]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleConfig {
    pub name: String,
    pub model: String,
    /// A cron expression with seconds, UTC (validated at load).
    pub cron: String,
    /// Retrain or Report.
    pub action: Action,
}

/// Parse a cron expression (`sec min hour day-of-month month day-of-week
/// [year]`); the error says what was wrong.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    use std::str::FromStr;
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(format!(
            "must have 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), got {fields} in {expr:?}"
        ));
    }
    let schedule = cron::Schedule::from_str(expr)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
    // `0 0 0 31 2 *` (the 31st of February) or a year gone by parse, and
    // never come.
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err(format!("cron expression {expr:?} never fires"));
    }
    Ok(schedule)
}

/// [`Decider`] state for a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeciderState {
    rules: Vec<(String, String, RuleState)>,
    retrain_until: BTreeMap<String, i64>,
    #[serde(default)]
    models: BTreeMap<String, ModelLifecycle>,
    #[serde(default)]
    schedules_last: BTreeMap<String, i64>,
    counts: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests;
