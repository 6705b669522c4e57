//! Domain-classifier drift: a linfa logistic regression learns to tell
//! reference rows from current rows; its ROC AUC on held-out folds is the
//! drift score (0.5: it cannot tell them apart). Drift when a permutation
//! test finds that AUC improbable without drift (p-value below `level`) and
//! it is at least `threshold`.
//!
//! The permutation null: the same cross-validated AUC with the labels
//! shuffled (the pooled rows split at random into groups of the two sizes).
//! Without drift the rows are exchangeable, so the observed AUC is one draw
//! of that null and the p-value `(1 + #{shuffles with AUC >= observed}) /
//! (1 + shuffles)` is exact. A fixed AUC threshold is not: the folds share
//! training rows, so their AUCs are correlated (about 0.2 at 256 rows a side)
//! and the mean's null spread depends on the sizes, the columns and the model.
//! The shuffles stop as soon as their count of AUCs at or above the observed
//! one rules drift out (a window without drift needs about 20 on average,
//! half of them 10 or fewer), so a quiet window costs a few fits more, and a
//! drifted one `permutations` times more. An AUC below `threshold` needs none.
//!
//! Rows are standardized with the pooled mean and deviation (labels are not
//! used, so the folds do not leak). With `interactions`, every pairwise
//! product and square of the standardized columns is added: a linear model
//! on the raw columns cannot see a change in correlation or in spread (a
//! flipped correlation keeps both marginals and both means), while the
//! product of the two columns changes its mean. Folds are stratified and
//! drawn with a seed; the AUC is the mean of the folds' AUCs and its
//! uncertainty their standard error.

use linfa::traits::Fit;
use linfa::Dataset;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::{columns, Shape, SplitMix};

/// How the classifier is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierSettings {
    pub folds: usize,
    /// Least AUC that can be drift (an effect-size floor; 0.5 is none).
    pub threshold: f64,
    /// Drift when the permutation p-value is below this.
    pub level: f64,
    /// Label shuffles of the p-value; 0 judges by `threshold` alone.
    pub permutations: usize,
    /// Add pairwise products and squares of the columns (up to
    /// `MAX_INTERACTION_COLUMNS` columns; wider inputs stay linear).
    pub interactions: bool,
    /// L2 penalty of the logistic regression.
    pub alpha: f64,
    pub max_iterations: u64,
    pub seed: u64,
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        Self {
            folds: 5,
            threshold: 0.5,
            level: 0.05,
            permutations: 100,
            interactions: true,
            alpha: 1.0,
            max_iterations: 100,
            seed: 0x5eed,
        }
    }
}

/// Columns beyond which no interaction terms are added (their number grows
/// with the square of the columns).
pub const MAX_INTERACTION_COLUMNS: usize = 32;

/// The classifier's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainDrift {
    pub auc: f64,
    /// Standard error of the mean over folds.
    pub auc_std_error: f64,
    pub fold_aucs: Vec<f64>,
    pub threshold: f64,
    /// Permutation p-value (NaN without permutations, or with the AUC below
    /// `threshold`: no p-value could make that drift).
    #[serde(default = "nan")]
    pub p_value: f64,
    #[serde(default)]
    pub level: f64,
    /// Label shuffles run (fewer than configured when they ruled drift out early).
    #[serde(default)]
    pub permutations: usize,
    pub drift: bool,
    pub reference_size: usize,
    pub current_size: usize,
    /// Inputs the model saw (columns, plus interaction terms).
    pub inputs: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassifierError {
    #[error("each sample needs at least {needed} rows for {folds} folds (reference {reference}, current {current})")]
    TooFew {
        needed: usize,
        folds: usize,
        reference: usize,
        current: usize,
    },
    #[error("rows must all have the same positive length (found {0} and {1})")]
    Columns(usize, usize),
    #[error("values must be finite")]
    NotFinite,
    #[error("folds must be at least 2, got {0}")]
    Folds(usize),
    #[error("training failed: {0}")]
    Training(String),
}

fn nan() -> f64 {
    f64::NAN
}

/// ROC AUC of `scores` for positives against negatives (Mann-Whitney, ties
/// counted half).
pub fn roc_auc(positives: &[f64], negatives: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = positives
        .iter()
        .map(|&s| (s, true))
        .chain(negatives.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' mid-ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0;
        rank_sum += mid * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (p, n) = (positives.len() as f64, negatives.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// The model's inputs: standardized columns, then (with interactions)
/// products of every pair and squares.
fn design(rows: &[&[f64]], interactions: bool) -> Array2<f64> {
    let cols = rows[0].len();
    let (mean, sd) = super::standardization(rows.iter().copied());
    let pairs = interactions && cols <= MAX_INTERACTION_COLUMNS;
    let width = if pairs {
        cols + cols * (cols + 1) / 2
    } else {
        cols
    };
    let mut x = Array2::zeros((rows.len(), width));
    for (i, r) in rows.iter().enumerate() {
        let z: Vec<f64> = (0..cols).map(|c| (r[c] - mean[c]) / sd[c]).collect();
        let mut k = 0;
        for &v in &z {
            x[[i, k]] = v;
            k += 1;
        }
        if pairs {
            for a in 0..cols {
                for b in a..cols {
                    x[[i, k]] = z[a] * z[b];
                    k += 1;
                }
            }
        }
    }
    x
}

/// The cross-validated AUC of telling `current` from `reference`, and its
/// permutation p-value.
pub fn domain_classifier(
    reference: &[Vec<f64>],
    current: &[Vec<f64>],
    settings: &ClassifierSettings,
) -> Result<DomainDrift, ClassifierError> {
    let k = settings.folds;
    if k < 2 {
        return Err(ClassifierError::Folds(k));
    }
    let (n, m) = (reference.len(), current.len());
    if n < 2 * k || m < 2 * k {
        return Err(ClassifierError::TooFew {
            needed: 2 * k,
            folds: k,
            reference: n,
            current: m,
        });
    }
    columns(reference, current).map_err(|e| match e {
        Shape::Columns(a, b) => ClassifierError::Columns(a, b),
        Shape::NotFinite => ClassifierError::NotFinite,
    })?;
    let rows: Vec<&[f64]> = reference.iter().chain(current).map(Vec::as_slice).collect();
    let x = design(&rows, settings.interactions);
    let mut labels: Vec<bool> = (0..n + m).map(|i| i >= n).collect();
    let fold_aucs = held_out_aucs(&x, &labels, settings)?;
    let kf = k as f64;
    let auc = fold_aucs.iter().sum::<f64>() / kf;
    let var = fold_aucs.iter().map(|a| (a - auc).powi(2)).sum::<f64>() / (kf - 1.0);

    // The permutation null. The design is label-free (pooled
    // standardization), so a shuffle only moves labels.
    let mut rng = SplitMix(settings.seed ^ 0x7065_726d_7574_6521);
    let (mut run, mut at_least) = (0usize, 0usize);
    // Below the floor no p-value makes it drift: no shuffles (p NaN).
    let shuffles = if auc >= settings.threshold {
        settings.permutations
    } else {
        0
    };
    while run < shuffles {
        rng.shuffle(&mut labels);
        let null = held_out_aucs(&x, &labels, settings)?;
        run += 1;
        if null.iter().sum::<f64>() / kf >= auc {
            at_least += 1;
            // The p-value can no longer fall below the level.
            if (1 + at_least) as f64 >= settings.level * (1 + settings.permutations) as f64 {
                break;
            }
        }
    }
    let p_value = if run == 0 {
        f64::NAN
    } else {
        (1 + at_least) as f64 / (1 + run) as f64
    };
    let significant = settings.permutations == 0 || p_value < settings.level;
    Ok(DomainDrift {
        auc,
        auc_std_error: (var / kf).sqrt(),
        fold_aucs,
        threshold: settings.threshold,
        p_value,
        level: settings.level,
        permutations: run,
        drift: significant && auc >= settings.threshold,
        reference_size: n,
        current_size: m,
        inputs: x.ncols(),
    })
}

/// The held-out ROC AUC of each fold: `labels` (true: current) split into
/// stratified folds (each class shuffled by the settings' seed, then dealt
/// round-robin); a model trained on all folds but one scores the one.
fn held_out_aucs(
    x: &Array2<f64>,
    labels: &[bool],
    settings: &ClassifierSettings,
) -> Result<Vec<f64>, ClassifierError> {
    let k = settings.folds;
    let total = labels.len();
    let mut rng = SplitMix(settings.seed);
    let mut fold = vec![0usize; total];
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..total).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut idx);
        for (pos, &i) in idx.iter().enumerate() {
            fold[i] = pos % k;
        }
    }
    let mut fold_aucs = Vec::with_capacity(k);
    for f in 0..k {
        let train: Vec<usize> = (0..total).filter(|&i| fold[i] != f).collect();
        let test: Vec<usize> = (0..total).filter(|&i| fold[i] == f).collect();
        let xt = x.select(ndarray::Axis(0), &train);
        let yt: Array1<bool> = train.iter().map(|&i| labels[i]).collect();
        let model = LogisticRegression::default()
            .alpha(settings.alpha)
            .max_iterations(settings.max_iterations)
            .fit(&Dataset::new(xt, yt))
            .map_err(|e| ClassifierError::Training(e.to_string()))?;
        let p = model.predict_probabilities(&x.select(ndarray::Axis(0), &test));
        // linfa gives the probability of its "positive" class, the more
        // frequent one in training (the first seen on a tie): turn it into
        // the probability of "current".
        let current_is_positive = model.labels().pos.class;
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for (&i, &q) in test.iter().zip(p.iter()) {
            let s = if current_is_positive { q } else { 1.0 - q };
            if labels[i] {
                pos.push(s);
            } else {
                neg.push(s);
            }
        }
        fold_aucs.push(roc_auc(&pos, &neg));
    }
    Ok(fold_aucs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{correlated_rows as correlated, XorShift};

    #[test]
    fn auc_is_mann_whitney_with_ties_counted_half() {
        assert_eq!(roc_auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(roc_auc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        assert_eq!(roc_auc(&[1.0], &[1.0]), 0.5);
        // 0.5 vs {0.1, 0.5, 0.9}: one win, one tie, one loss.
        assert_eq!(roc_auc(&[0.5], &[0.1, 0.5, 0.9]), 0.5);
        assert!((roc_auc(&[0.8, 0.4], &[0.1, 0.5, 0.9]) - 3.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn bad_inputs_are_refused_with_a_reason() {
        let s = ClassifierSettings::default();
        let few = vec![vec![1.0]; 3];
        let many = vec![vec![1.0]; 20];
        assert!(matches!(
            domain_classifier(&few, &many, &s),
            Err(ClassifierError::TooFew { .. })
        ));
        let mut nan = many.clone();
        nan[3] = vec![f64::NAN];
        assert_eq!(
            domain_classifier(&many, &nan, &s),
            Err(ClassifierError::NotFinite)
        );
        let one_fold = ClassifierSettings { folds: 1, ..s };
        assert_eq!(
            domain_classifier(&many, &many, &one_fold),
            Err(ClassifierError::Folds(1))
        );
    }

    #[test]
    fn identical_distributions_give_no_drift() {
        let mut rng = XorShift::new(21);
        let r = correlated(&mut rng, 500, 0.8);
        let c = correlated(&mut rng, 500, 0.8);
        let d = domain_classifier(&r, &c, &ClassifierSettings::default()).unwrap();
        assert!(!d.drift && (d.auc - 0.5).abs() < 0.05, "{d:?}");
    }

    /// The permutation p-value is exact: over 100 pairs of samples of one
    /// distribution (60 rows a side, 3 independent normal columns with
    /// interactions) it is below 0.05 about 5 times (binomial: 1 to 11 holds
    /// 99.6 % of outcomes). A permutation test is exact for any statistic, so
    /// small samples, 2 folds and a short fit keep a debug build quick; the
    /// defaults are measured in `examples/learned_calibration.rs`.
    #[test]
    fn false_alarms_are_at_the_level() {
        let mut alarms = 0;
        let mut run = 0;
        for t in 0..100 {
            let mut rng = XorShift::new(1000 + t);
            let mut rows = || -> Vec<Vec<f64>> {
                (0..60)
                    .map(|_| (0..3).map(|_| rng.normal()).collect())
                    .collect()
            };
            let (a, b) = (rows(), rows());
            let s = ClassifierSettings {
                seed: t,
                folds: 2,
                max_iterations: 20,
                ..Default::default()
            };
            let d = domain_classifier(&a, &b, &s).unwrap();
            assert_eq!(d.drift, d.p_value < 0.05, "{d:?}");
            alarms += usize::from(d.drift);
            run += d.permutations;
        }
        eprintln!("false alarms {alarms}/100, {run} permutations in all");
        assert!((1..=11).contains(&alarms), "{alarms} false alarms of 100");
        // Stopping early: most null pairs need far fewer than 100 shuffles.
        assert!(run < 100 * 40, "{run} permutations for 100 null pairs");
    }

    #[test]
    fn a_clear_drift_runs_every_permutation_and_reaches_the_floor() {
        let mut rng = XorShift::new(23);
        let r = correlated(&mut rng, 200, 0.8);
        let c = correlated(&mut rng, 200, -0.8);
        let s = ClassifierSettings {
            permutations: 40,
            ..Default::default()
        };
        let d = domain_classifier(&r, &c, &s).unwrap();
        assert!(d.drift && d.auc > 0.8, "{d:?}");
        assert_eq!(d.permutations, 40);
        assert!((d.p_value - 1.0 / 41.0).abs() < 1e-15, "{d:?}");
        // Without permutations the threshold alone judges.
        let fixed = ClassifierSettings {
            permutations: 0,
            threshold: 0.9,
            ..s
        };
        let d = domain_classifier(&r, &c, &fixed).unwrap();
        assert!(d.p_value.is_nan() && d.drift == (d.auc >= 0.9), "{d:?}");
    }

    /// The threshold is a floor on the effect: a significant AUC below it
    /// is not drift.
    #[test]
    fn the_auc_threshold_is_an_effect_size_floor() {
        let mut rng = XorShift::new(24);
        let r = correlated(&mut rng, 400, 0.0);
        let c: Vec<Vec<f64>> = correlated(&mut rng, 400, 0.0)
            .into_iter()
            .map(|mut v| {
                v[0] += 0.3;
                v
            })
            .collect();
        let s = ClassifierSettings {
            permutations: 30,
            ..Default::default()
        };
        let d = domain_classifier(&r, &c, &s).unwrap();
        assert!(d.drift && d.p_value < 0.05 && d.auc < 0.7, "{d:?}");
        let floor = ClassifierSettings {
            threshold: 0.7,
            ..s
        };
        let f = domain_classifier(&r, &c, &floor).unwrap();
        // Below the floor no shuffle is run.
        assert!(
            !f.drift && f.p_value.is_nan() && f.permutations == 0,
            "{f:?}"
        );
    }

    #[test]
    fn a_mean_shift_is_found_by_the_linear_model_too() {
        let mut rng = XorShift::new(22);
        let r = correlated(&mut rng, 500, 0.0);
        let c: Vec<Vec<f64>> = correlated(&mut rng, 500, 0.0)
            .into_iter()
            .map(|mut v| {
                v[2] += 0.5;
                v
            })
            .collect();
        let linear = ClassifierSettings {
            interactions: false,
            ..Default::default()
        };
        let d = domain_classifier(&r, &c, &linear).unwrap();
        assert!(d.drift && d.auc > 0.6, "{d:?}");
    }
}
