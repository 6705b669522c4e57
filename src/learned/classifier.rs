//! Domain-classifier drift (issue 6): a linfa logistic regression learns to
//! tell reference rows from current rows; its ROC AUC on held-out folds is
//! the drift score. 0.5 means it cannot tell them apart; drift at
//! `threshold` (0.55 by default) or above.
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
    pub threshold: f64,
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
            threshold: 0.55,
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

/// Train on all folds but one, score the one; per fold.
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
    let labels: Vec<bool> = (0..n + m).map(|i| i >= n).collect();

    // Stratified folds: each class shuffled, then dealt round-robin.
    let mut rng = SplitMix(settings.seed);
    let mut fold = vec![0usize; n + m];
    for range in [0..n, n..n + m] {
        let mut idx: Vec<usize> = range.collect();
        rng.shuffle(&mut idx);
        for (pos, &i) in idx.iter().enumerate() {
            fold[i] = pos % k;
        }
    }

    let mut fold_aucs = Vec::with_capacity(k);
    for f in 0..k {
        let train: Vec<usize> = (0..n + m).filter(|&i| fold[i] != f).collect();
        let test: Vec<usize> = (0..n + m).filter(|&i| fold[i] == f).collect();
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
    let kf = k as f64;
    let auc = fold_aucs.iter().sum::<f64>() / kf;
    let var = fold_aucs.iter().map(|a| (a - auc).powi(2)).sum::<f64>() / (kf - 1.0);
    Ok(DomainDrift {
        auc,
        auc_std_error: (var / kf).sqrt(),
        fold_aucs,
        threshold: settings.threshold,
        drift: auc >= settings.threshold,
        reference_size: n,
        current_size: m,
        inputs: x.ncols(),
    })
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

    /// The false-alarm rate at the defaults (256 rows a side, the default
    /// sample size, 5 independent normal columns with interactions): 6 of 100
    /// null pairs reach AUC 0.55 (README, Learned checks). Bounds 1 to 12 hold
    /// a rate of 2 % to 10 % with room for chance.
    #[test]
    fn false_alarms_at_the_default_threshold_are_a_few_percent() {
        let mut alarms = 0;
        let mut aucs = Vec::new();
        for t in 0..100 {
            let mut rng = XorShift::new(1000 + t);
            let mut rows = || -> Vec<Vec<f64>> {
                (0..256)
                    .map(|_| (0..5).map(|_| rng.normal()).collect())
                    .collect()
            };
            let (a, b) = (rows(), rows());
            let s = ClassifierSettings {
                seed: t,
                ..Default::default()
            };
            let d = domain_classifier(&a, &b, &s).unwrap();
            alarms += usize::from(d.drift);
            aucs.push(d.auc);
        }
        aucs.sort_by(f64::total_cmp);
        eprintln!(
            "false alarms {alarms}/100; AUC median {:.3}, 95th percentile {:.3}",
            aucs[50], aucs[95]
        );
        assert!((1..=12).contains(&alarms), "{alarms} false alarms of 100");
        assert!((aucs[50] - 0.5).abs() < 0.02, "median AUC {}", aucs[50]);
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
