//! Comparing current data with a reference, feature by feature, and the drift
//! decisions of issue 2.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::baseline::{FeatureData, FeatureProfile};
use crate::config::{DriftDefaults, FeatureKind, Method, ModelConfig};
use crate::sketch::quantile::{ks_distance, wasserstein_distance, QuantileFn};
use crate::sketch::CategoryCounts;
use crate::stats::{self, binned, ks, CategoricalTests, NumericTests, WassersteinResult};

/// The reference side: raw data (exact) or a profile.
#[derive(Debug, Clone, Copy)]
pub enum Reference<'a> {
    Data(&'a BTreeMap<String, FeatureData>),
    Profile(&'a BTreeMap<String, FeatureProfile>),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Missing {
    pub reference: u64,
    pub current: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Tests {
    Numeric(NumericTests),
    Categorical(CategoricalTests),
}

/// What the HTML report draws: reference and current proportions per bin.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// Bin labels: `<= e1`, `(e1, e2]`, ..., or category names.
    pub labels: Vec<String>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureReport {
    pub name: String,
    /// `numeric` or `categorical`.
    pub kind: &'static str,
    /// Set when the numbers are derived: `text` (token counts) or `embedding` (norms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<FeatureKind>,
    pub reference_count: u64,
    pub current_count: u64,
    pub missing: Missing,
    pub tests: Tests,
    pub method: Method,
    pub threshold: f64,
    pub score: f64,
    pub drift: bool,
    #[serde(skip)]
    pub histogram: Histogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DatasetVerdict {
    pub drifted: usize,
    pub total: usize,
    pub share: f64,
    pub drift: bool,
    /// The window held fewer events than the `min_samples` of the model's
    /// drift rules: `drift` is false whatever the share (a window of a few
    /// events says little), and this says so. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_few_events: Option<TooFewEvents>,
}

/// Why a window's dataset verdict was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TooFewEvents {
    pub events: u64,
    pub min_samples: u64,
}

impl DatasetVerdict {
    /// Withhold the verdict of a window of `events` when it is below
    /// `min_samples`.
    pub fn require(&mut self, events: u64, min_samples: u64) {
        if events < min_samples {
            self.drift = false;
            self.too_few_events = Some(TooFewEvents {
                events,
                min_samples,
            });
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    pub features: Vec<FeatureReport>,
    pub dataset: DatasetVerdict,
}

/// Compare every feature of `current` with `reference`. Returns every problem
/// (missing columns, kind mismatches, empty features) at once.
pub fn evaluate(
    reference: Reference<'_>,
    current: &BTreeMap<String, FeatureData>,
    model: &ModelConfig,
    drift: &DriftDefaults,
    names: (&str, &str),
) -> Result<DriftReport, Vec<String>> {
    let (ref_name, cur_name) = names;
    let ref_keys: Vec<&String> = match reference {
        Reference::Data(d) => d.keys().collect(),
        Reference::Profile(p) => p.keys().collect(),
    };
    let mut problems = Vec::new();
    for k in &ref_keys {
        if !current.contains_key(*k) {
            problems.push(format!(
                "{cur_name}: column {k:?} is in the reference ({ref_name}) but not here (exclude it with models.<name>.exclude to compare the rest)"
            ));
        }
    }
    for k in current.keys() {
        if !ref_keys.contains(&k) {
            problems.push(format!(
                "{ref_name}: column {k:?} is in the current data ({cur_name}) but not here (exclude it with models.<name>.exclude to compare the rest)"
            ));
        }
    }
    // Features are independent and the exact tests are O(n) each: run them
    // in parallel, then decide in feature order.
    let compared: Vec<(&String, &FeatureData, Result<Comparison, Side>)> = {
        use rayon::prelude::*;
        let pairs: Vec<(&String, &FeatureData)> = current.iter().collect();
        pairs
            .into_par_iter()
            .filter_map(|(name, cur)| {
                let result = match reference {
                    Reference::Data(d) => compare_data(d.get(name)?, cur),
                    Reference::Profile(p) => compare_profile(p.get(name)?, cur),
                };
                Some((name, cur, result))
            })
            .collect()
    };
    let mut features = Vec::new();
    for (name, cur, result) in compared {
        let fc = model.features.get(name).cloned().unwrap_or_default();
        let compared = match result {
            Ok(v) => v,
            Err(Side::Reference(m)) => {
                problems.push(format!("{ref_name}: column {name:?}: {m}"));
                continue;
            }
            Err(Side::Current(m)) => {
                problems.push(format!("{cur_name}: column {name:?}: {m}"));
                continue;
            }
        };
        let derived_from = match cur {
            FeatureData::Numeric { source, .. } if *source != FeatureKind::Numeric => Some(*source),
            _ => None,
        };
        match decide(
            name,
            compared,
            (cur.count(), cur.missing()),
            derived_from,
            &fc,
            drift,
        ) {
            Ok(f) => features.push(f),
            Err(m) => problems.push(m),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(DriftReport::new(features, model.dataset_drift_share))
}

enum Side {
    Reference(String),
    Current(String),
}

/// The tests of one feature and what the reference side contributed.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub tests: Tests,
    pub histogram: Histogram,
    pub reference_count: u64,
    pub reference_missing: u64,
}

impl DriftReport {
    /// Dataset verdict over decided features.
    pub fn new(features: Vec<FeatureReport>, dataset_drift_share: f64) -> Self {
        let drifted = features.iter().filter(|f| f.drift).count();
        let total = features.len();
        let share = if total == 0 {
            0.0
        } else {
            drifted as f64 / total as f64
        };
        let dataset = DatasetVerdict {
            drifted,
            total,
            share,
            drift: total > 0 && share >= dataset_drift_share,
            too_few_events: None,
        };
        Self { features, dataset }
    }
}

/// Apply the feature's method and threshold (or the defaults) to its tests.
/// `current` is (non-null count, missing) of the current side.
pub fn decide(
    name: &str,
    c: Comparison,
    current: (u64, u64),
    derived_from: Option<FeatureKind>,
    fc: &crate::config::FeatureConfig,
    drift: &DriftDefaults,
) -> Result<FeatureReport, String> {
    let numeric = matches!(c.tests, Tests::Numeric(_));
    let method = fc
        .method
        .unwrap_or_else(|| drift.auto_method(numeric, c.reference_count));
    if !method.applies_to(numeric) {
        return Err(format!(
            "column {name:?}: method {} does not apply to a {} feature",
            method.name(),
            if numeric { "numeric" } else { "categorical" }
        ));
    }
    let threshold = fc.threshold.unwrap_or_else(|| drift.threshold_for(method));
    let score = score_of(&c.tests, method);
    let drifted = if method.is_p_value() {
        score < threshold
    } else {
        score >= threshold
    };
    Ok(FeatureReport {
        name: name.to_owned(),
        kind: if numeric { "numeric" } else { "categorical" },
        derived_from,
        reference_count: c.reference_count,
        current_count: current.0,
        missing: Missing {
            reference: c.reference_missing,
            current: current.1,
        },
        tests: c.tests,
        method,
        threshold,
        score,
        drift: drifted,
        histogram: c.histogram,
    })
}

const EMPTY: &str = "no values left after dropping nulls";

fn check_current(cur: &FeatureData) -> Result<(), Side> {
    if cur.count() == 0 {
        return Err(Side::Current(EMPTY.into()));
    }
    Ok(())
}

fn kind_mismatch(r: &str, c: &str) -> Side {
    Side::Current(format!("is {c} here but {r} in the reference"))
}

fn compare_data(r: &FeatureData, cur: &FeatureData) -> Result<Comparison, Side> {
    if r.count() == 0 {
        return Err(Side::Reference(EMPTY.into()));
    }
    check_current(cur)?;
    match (r, cur) {
        (
            FeatureData::Numeric {
                values: rv,
                missing: rm,
                ..
            },
            FeatureData::Numeric { values: cv, .. },
        ) => {
            let tests = stats::numeric_tests_exact(rv, cv);
            let edges = binned::decile_edges(rv);
            let hist = numeric_histogram(&edges, &binned::bin_counts(&edges, rv), cv);
            Ok(Comparison {
                tests: Tests::Numeric(tests),
                histogram: hist,
                reference_count: rv.len() as u64,
                reference_missing: *rm,
            })
        }
        (
            FeatureData::Categorical {
                counts: rc,
                missing: rm,
            },
            FeatureData::Categorical { counts: cc, .. },
        ) => {
            let (tests, hist) = categorical(rc, cc);
            Ok(Comparison {
                tests: Tests::Categorical(tests),
                histogram: hist,
                reference_count: rc.total(),
                reference_missing: *rm,
            })
        }
        (r, c) => Err(kind_mismatch(r.kind_name(), c.kind_name())),
    }
}

fn compare_profile(r: &FeatureProfile, cur: &FeatureData) -> Result<Comparison, Side> {
    check_current(cur)?;
    match (r, cur) {
        (FeatureProfile::Numeric(p), FeatureData::Numeric { values: cv, .. }) => {
            let tests = match &p.quantiles {
                // Small references are stored whole: exactly the raw-data path.
                crate::sketch::QuantileSummary::Exact { values } => {
                    stats::numeric_tests_exact(values, cv)
                }
                summary => {
                    let qr = summary.quantile_fn();
                    let qc = QuantileFn::from_sorted_sample(cv);
                    let d = ks_distance(&qr, &qc);
                    let (psi, jensen_shannon) =
                        stats::binned_tests(&p.bin_counts, &binned::bin_counts(&p.edges, cv));
                    NumericTests {
                        ks: ks::ks_from_statistic(d, p.count as usize, cv.len()),
                        wasserstein: WassersteinResult::new(wasserstein_distance(&qr, &qc), p.std),
                        psi,
                        jensen_shannon,
                    }
                }
            };
            let hist = numeric_histogram(&p.edges, &p.bin_counts, cv);
            Ok(Comparison {
                tests: Tests::Numeric(tests),
                histogram: hist,
                reference_count: p.count,
                reference_missing: p.missing,
            })
        }
        (FeatureProfile::Categorical(p), FeatureData::Categorical { counts: cc, .. }) => {
            let (tests, hist) = categorical(&p.categories, cc);
            Ok(Comparison {
                tests: Tests::Categorical(tests),
                histogram: hist,
                reference_count: p.count,
                reference_missing: p.missing,
            })
        }
        (FeatureProfile::Numeric(_), c) => Err(kind_mismatch("numeric", c.kind_name())),
        (FeatureProfile::Categorical(_), c) => Err(kind_mismatch("categorical", c.kind_name())),
    }
}

fn categorical(rc: &CategoryCounts, cc: &CategoryCounts) -> (CategoricalTests, Histogram) {
    let (labels, a, b) = rc.aligned(cc);
    let tests = stats::categorical_tests(&a, &b);
    let hist = Histogram {
        labels,
        reference: binned::proportions(&a),
        current: binned::proportions(&b),
    };
    (tests, hist)
}

fn numeric_histogram(edges: &[f64], ref_counts: &[u64], current: &[f64]) -> Histogram {
    numeric_histogram_counts(edges, ref_counts, &binned::bin_counts(edges, current))
}

/// Reference and current proportions per decile bin, with readable labels.
pub fn numeric_histogram_counts(
    edges: &[f64],
    ref_counts: &[u64],
    cur_counts: &[u64],
) -> Histogram {
    let fmt = |x: f64| format!("{}", (x * 1e4).round() / 1e4);
    let mut labels = Vec::with_capacity(edges.len() + 1);
    for i in 0..=edges.len() {
        labels.push(match (i.checked_sub(1).map(|j| edges[j]), edges.get(i)) {
            (None, Some(&hi)) => format!("≤ {}", fmt(hi)),
            (Some(lo), Some(&hi)) => format!("({}, {}]", fmt(lo), fmt(hi)),
            (Some(lo), None) => format!("> {}", fmt(lo)),
            (None, None) => "all".to_owned(),
        });
    }
    Histogram {
        labels,
        reference: binned::proportions(ref_counts),
        current: binned::proportions(cur_counts),
    }
}

fn score_of(tests: &Tests, method: Method) -> f64 {
    match (tests, method) {
        (Tests::Numeric(t), Method::Ks) => t.ks.p_value,
        (Tests::Numeric(t), Method::Wasserstein) => t.wasserstein.normalized,
        (Tests::Numeric(t), Method::Psi) => t.psi.value,
        (Tests::Numeric(t), Method::JensenShannon) => t.jensen_shannon.distance,
        (Tests::Categorical(t), Method::ChiSquare) => t.chi_square.p_value,
        (Tests::Categorical(t), Method::Psi) => t.psi.value,
        (Tests::Categorical(t), Method::JensenShannon) => t.jensen_shannon.distance,
        // `evaluate` checks `applies_to` first.
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, FeatureConfig};

    fn numeric(values: Vec<f64>) -> FeatureData {
        FeatureData::Numeric {
            values,
            missing: 0,
            source: FeatureKind::Numeric,
        }
    }

    fn one(name: &str, d: FeatureData) -> BTreeMap<String, FeatureData> {
        BTreeMap::from([(name.to_owned(), d)])
    }

    #[test]
    fn auto_method_switches_on_reference_size() {
        let cfg = Config::default();
        let m = cfg.model("x");
        let small: Vec<f64> = (0..1000).map(f64::from).collect();
        let large: Vec<f64> = (0..1001).map(f64::from).collect();
        let cur: Vec<f64> = (0..500).map(|i| f64::from(i) * 2.0).collect();
        let r = evaluate(
            Reference::Data(&one("f", numeric(small))),
            &one("f", numeric(cur.clone())),
            &m,
            &cfg.drift,
            ("r", "c"),
        )
        .unwrap();
        assert_eq!(
            (r.features[0].method, r.features[0].threshold),
            (Method::Ks, 0.05)
        );
        let r = evaluate(
            Reference::Data(&one("f", numeric(large))),
            &one("f", numeric(cur)),
            &m,
            &cfg.drift,
            ("r", "c"),
        )
        .unwrap();
        assert_eq!(
            (r.features[0].method, r.features[0].threshold),
            (Method::Wasserstein, 0.1)
        );
    }

    #[test]
    fn decisions_follow_direction_of_the_method() {
        let cfg = Config::default();
        let mut m = cfg.model("x");
        let r: Vec<f64> = (0..200).map(f64::from).collect();
        let c: Vec<f64> = (0..200).map(|i| f64::from(i) + 100.0).collect();
        // p-value method: tiny p => drift.
        let rep = evaluate(
            Reference::Data(&one("f", numeric(r.clone()))),
            &one("f", numeric(c.clone())),
            &m,
            &cfg.drift,
            ("r", "c"),
        )
        .unwrap();
        assert!(rep.features[0].drift && rep.features[0].score < 0.05);
        assert!(rep.dataset.drift);
        // distance method with a high threshold: no drift.
        m.features.insert(
            "f".into(),
            FeatureConfig {
                method: Some(Method::Psi),
                threshold: Some(100.0),
                ..Default::default()
            },
        );
        let rep = evaluate(
            Reference::Data(&one("f", numeric(r))),
            &one("f", numeric(c)),
            &m,
            &cfg.drift,
            ("r", "c"),
        )
        .unwrap();
        assert!(!rep.features[0].drift);
        assert_eq!(
            rep.dataset,
            DatasetVerdict {
                drifted: 0,
                total: 1,
                share: 0.0,
                drift: false,
                too_few_events: None,
            }
        );
    }

    #[test]
    fn reports_every_column_problem() {
        let cfg = Config::default();
        let m = cfg.model("x");
        let mut reference = one("only_ref", numeric(vec![1.0]));
        reference.insert("kind".into(), numeric(vec![1.0]));
        reference.insert("empty".into(), numeric(vec![1.0]));
        let mut current = one("only_cur", numeric(vec![1.0]));
        current.insert(
            "kind".into(),
            FeatureData::Categorical {
                counts: CategoryCounts::default(),
                missing: 0,
            },
        );
        current.insert(
            "empty".into(),
            FeatureData::Numeric {
                values: vec![],
                missing: 3,
                source: FeatureKind::Numeric,
            },
        );
        let errs = evaluate(
            Reference::Data(&reference),
            &current,
            &m,
            &cfg.drift,
            ("ref.csv", "cur.csv"),
        )
        .unwrap_err();
        let joined = errs.join("\n");
        for want in [
            "cur.csv: column \"only_ref\" is in the reference",
            "ref.csv: column \"only_cur\" is in the current data",
            "cur.csv: column \"empty\": no values left after dropping nulls",
            "cur.csv: column \"kind\": no values left",
        ] {
            assert!(joined.contains(want), "missing {want:?} in\n{joined}");
        }
    }
}
