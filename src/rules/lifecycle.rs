//! The model lifecycle behind the continuous-training loop: which version is
//! the incumbent, which is a registered candidate, and which was deployed
//! before the current one.
//!
//! - A retrain fires; CI trains and registers the new version as a
//!   candidate. The candidate's own windows (shadow or canary traffic tagged
//!   with its version) are compared with the incumbent's latest windows under
//!   `[promotion]`: once it has `windows` judged windows, it wins (a
//!   `redeploy`) or loses (`candidate_rejected`).
//! - After a redeploy the new incumbent is on probation: its first
//!   `windows` judged windows are compared with the windows its predecessor
//!   had when it was replaced, under `[rollback]`; worse means a `rollback`
//!   naming the predecessor.
//!
//! Everything is keyed by window order, so a replay gives the same
//! transitions as the daemon, and the state is checkpointed with the rules'.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{Evidence, Metric};
use crate::monitor::engine::WindowReport;

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// One metric of a comparison between two versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    pub metric: Metric,
    pub better: Better,
    /// Promotion: how much better the candidate's mean must be (negative:
    /// how much worse it may be). Rollback: how much worse the new version's
    /// mean may be before it is rolled back.
    pub margin: f64,
}

/// A comparison of two versions over their windows' means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Judged windows of the version under test before the verdict.
    pub windows: u32,
    /// Windows with fewer events do not count.
    pub min_samples: u64,
    pub criteria: Vec<Criterion>,
}

/// A registered candidate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub version: String,
    /// Wall-clock time of registration, RFC 3339.
    pub registered_at: String,
    /// What CI sent with it (an MLflow model URI, a commit, ...).
    pub metadata: serde_json::Value,
    /// Its judged windows so far (metric -> value), newest last.
    #[serde(default)]
    windows: VecDeque<BTreeMap<String, f64>>,
}

impl Candidate {
    pub fn windows_judged(&self) -> usize {
        self.windows.len()
    }
}

/// A version on probation after a redeploy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Probation {
    /// The version it replaced, and that version's last windows.
    previous: String,
    previous_windows: VecDeque<BTreeMap<String, f64>>,
    windows: VecDeque<BTreeMap<String, f64>>,
}

/// One model's place in the loop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelLifecycle {
    /// The version serving production: the first version whose window
    /// closed, then whatever a redeploy or rollback made it.
    pub incumbent: Option<String>,
    pub candidate: Option<Candidate>,
    /// The version the incumbent replaced (a rollback's destination).
    pub previous: Option<String>,
    /// The incumbent's latest judged windows.
    incumbent_windows: VecDeque<BTreeMap<String, f64>>,
    probation: Option<Probation>,
}

impl ModelLifecycle {
    /// Judged windows of the incumbent on probation, if it is.
    pub fn probation_windows(&self) -> Option<usize> {
        self.probation.as_ref().map(|p| p.windows.len())
    }
}

/// Versions a loop decision is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Versions {
    /// The version in production when the decision was made.
    pub incumbent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// Redeploy: the version to deploy. Rollback: the version to go back to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<String>,
}

/// What the loop concluded on a window (the decider turns it into a decision).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub kind: VerdictKind,
    pub versions: Versions,
    pub evidence: Vec<Evidence>,
    pub reason: String,
    /// Windows compared on the side under test.
    pub windows: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictKind {
    Promote,
    Reject,
    Rollback,
}

/// What registering a candidate did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registered {
    /// A new candidate.
    Created,
    /// The same version was already the candidate: nothing changed.
    Unchanged,
    /// It replaced another candidate (named).
    Replaced(String),
}

fn mean(ws: &VecDeque<BTreeMap<String, f64>>, metric: &str) -> Option<f64> {
    let xs: Vec<f64> = ws.iter().filter_map(|w| w.get(metric).copied()).collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The values of every metric the comparisons name, as a window has them.
fn sample(r: &WindowReport, comparisons: &[&Comparison]) -> BTreeMap<String, f64> {
    comparisons
        .iter()
        .flat_map(|c| &c.criteria)
        .filter_map(|c| Some((c.metric.name(), c.metric.value(r)?)))
        .collect()
}

fn push(ws: &mut VecDeque<BTreeMap<String, f64>>, w: BTreeMap<String, f64>, keep: usize) {
    ws.push_back(w);
    while ws.len() > keep.max(1) {
        ws.pop_front();
    }
}

impl ModelLifecycle {
    /// Register `version` as the candidate.
    pub fn register(
        &mut self,
        version: &str,
        registered_at: String,
        metadata: serde_json::Value,
    ) -> Result<Registered, String> {
        if self.incumbent.as_deref() == Some(version) {
            return Err(format!(
                "version {version:?} is the incumbent; a candidate must be a new version"
            ));
        }
        let outcome = match &self.candidate {
            Some(c) if c.version == version => return Ok(Registered::Unchanged),
            Some(c) => Registered::Replaced(c.version.clone()),
            None => Registered::Created,
        };
        self.candidate = Some(Candidate {
            version: version.to_owned(),
            registered_at,
            metadata,
            windows: VecDeque::new(),
        });
        Ok(outcome)
    }

    /// Whether rules judge windows of `version` (not a candidate's: its
    /// shadow traffic is the promotion comparison's business).
    pub fn rules_apply(&self, version: &str) -> bool {
        self.candidate.as_ref().is_none_or(|c| c.version != version)
    }

    /// Feed a closed window. `apply` false (kill switch): a verdict is
    /// reported but the state does not move, so it is reached again.
    pub fn observe(
        &mut self,
        r: &WindowReport,
        promotion: Option<&Comparison>,
        rollback: Option<&Comparison>,
        apply: bool,
    ) -> Option<Verdict> {
        let version = r.model_version.as_str();
        // The first version whose window closes serves production, unless
        // it is a candidate registered before any window closed.
        if self.incumbent.is_none() && self.rules_apply(version) {
            self.incumbent = Some(version.to_owned());
        }
        let comparisons: Vec<&Comparison> = promotion.into_iter().chain(rollback).collect();
        let keep = comparisons
            .iter()
            .map(|c| c.windows as usize)
            .max()
            .unwrap_or(1);
        let judged = |c: Option<&Comparison>| c.is_some_and(|c| r.signals.events >= c.min_samples);
        if self.incumbent.as_deref() == Some(version) {
            if !comparisons
                .iter()
                .any(|c| r.signals.events >= c.min_samples)
            {
                return None;
            }
            let w = sample(r, &comparisons);
            push(&mut self.incumbent_windows, w.clone(), keep);
            let (Some(rb), Some(p)) = (rollback, self.probation.as_mut()) else {
                return None;
            };
            if !judged(Some(rb)) {
                return None;
            }
            push(&mut p.windows, w, rb.windows as usize);
            if p.windows.len() < rb.windows as usize {
                return None;
            }
            let (evidence, worse) = judge_rollback(rb, &p.windows, &p.previous_windows);
            let incumbent = version.to_owned();
            let previous = p.previous.clone();
            let n = p.windows.len();
            let verdict = if worse.is_empty() {
                if apply {
                    self.probation = None;
                }
                return None;
            } else {
                Verdict {
                    kind: VerdictKind::Rollback,
                    reason: format!(
                        "version {incumbent} did worse than {previous} over its first {n} windows on {}",
                        worse.join(", ")
                    ),
                    versions: Versions {
                        incumbent: incumbent.clone(),
                        candidate: None,
                        deploy: Some(previous.clone()),
                    },
                    evidence,
                    windows: n,
                }
            };
            if apply {
                self.incumbent = Some(previous);
                self.previous = Some(incumbent);
                self.probation = None;
                self.incumbent_windows.clear();
            }
            return Some(verdict);
        }
        let promotion = promotion?;
        let cand = self.candidate.as_mut().filter(|c| c.version == version)?;
        if !judged(Some(promotion)) {
            return None;
        }
        push(
            &mut cand.windows,
            sample(r, &comparisons),
            promotion.windows as usize,
        );
        // Judged once it has its windows and the incumbent has some to
        // compare with (until then its newest windows keep sliding).
        if cand.windows.len() < promotion.windows as usize || self.incumbent_windows.is_empty() {
            return None;
        }
        let incumbent = self.incumbent.clone().unwrap_or_default();
        let (evidence, lost) = judge_promotion(promotion, &cand.windows, &self.incumbent_windows);
        let n = cand.windows.len();
        let candidate = cand.version.clone();
        let win = lost.is_empty();
        let verdict = Verdict {
            kind: if win {
                VerdictKind::Promote
            } else {
                VerdictKind::Reject
            },
            reason: if win {
                format!("candidate {candidate} beat incumbent {incumbent} over {n} windows")
            } else {
                format!(
                    "candidate {candidate} did not beat incumbent {incumbent} over {n} windows on {}",
                    lost.join(", ")
                )
            },
            versions: Versions {
                incumbent: incumbent.clone(),
                candidate: Some(candidate.clone()),
                deploy: win.then(|| candidate.clone()),
            },
            evidence,
            windows: n,
        };
        if apply {
            let cand = self.candidate.take().unwrap_or_default();
            if win {
                let previous_windows = std::mem::take(&mut self.incumbent_windows);
                // Without `[rollback]` there is nothing to be on probation for.
                self.probation = rollback.map(|_| Probation {
                    previous: incumbent.clone(),
                    previous_windows,
                    windows: VecDeque::new(),
                });
                self.previous = Some(incumbent);
                self.incumbent = Some(candidate);
                // The candidate's windows are the new incumbent's history.
                self.incumbent_windows = cand.windows;
            }
        }
        Some(verdict)
    }
}

/// Candidate against incumbent: every criterion must hold. Returns the
/// evidence and the metrics it lost on (no data on either side loses).
fn judge_promotion(
    c: &Comparison,
    candidate: &VecDeque<BTreeMap<String, f64>>,
    incumbent: &VecDeque<BTreeMap<String, f64>>,
) -> (Vec<Evidence>, Vec<String>) {
    let mut evidence = Vec::new();
    let mut lost = Vec::new();
    for k in &c.criteria {
        let name = k.metric.name();
        let (cm, im) = (mean(candidate, &name), mean(incumbent, &name));
        let (op, threshold) = match (k.better, im) {
            (Better::Higher, Some(i)) => (">=", i + k.margin),
            (Better::Lower, Some(i)) => ("<=", i - k.margin),
            (Better::Higher, None) => (">=", f64::NAN),
            (Better::Lower, None) => ("<=", f64::NAN),
        };
        let holds = match (cm, im) {
            (Some(x), Some(_)) if op == ">=" => x >= threshold,
            (Some(x), Some(_)) => x <= threshold,
            _ => false,
        };
        if !holds {
            lost.push(name.clone());
        }
        evidence.push(Evidence {
            metric: name,
            value: cm,
            op,
            threshold,
            holds,
        });
    }
    (evidence, lost)
}

/// New version against its predecessor: any criterion worse by more than
/// its margin means a rollback. No data on either side is not worse.
fn judge_rollback(
    c: &Comparison,
    new: &VecDeque<BTreeMap<String, f64>>,
    previous: &VecDeque<BTreeMap<String, f64>>,
) -> (Vec<Evidence>, Vec<String>) {
    let mut evidence = Vec::new();
    let mut worse = Vec::new();
    for k in &c.criteria {
        let name = k.metric.name();
        let (nm, pm) = (mean(new, &name), mean(previous, &name));
        let (op, threshold) = match k.better {
            Better::Higher => ("<", pm.map_or(f64::NAN, |p| p - k.margin)),
            Better::Lower => (">", pm.map_or(f64::NAN, |p| p + k.margin)),
        };
        let holds = match nm {
            Some(x) if pm.is_some() && op == "<" => x < threshold,
            Some(x) if pm.is_some() => x > threshold,
            _ => false,
        };
        if holds {
            worse.push(name.clone());
        }
        evidence.push(Evidence {
            metric: name,
            value: nm,
            op,
            threshold,
            holds,
        });
    }
    (evidence, worse)
}
