//! The learned checks on windows: a bounded sample of events kept while a
//! window is open (and while a baseline is learned), and the checks run on
//! the reference and window samples when the window closes.
//!
//! What is sampled is what the checks read: an event's numeric features and
//! its embedding vectors. A window keeps at most `sample_size` events
//! (reservoir sampling, seeded per model version and window, so a replay
//! draws the same sample), whatever its rate.
//!
//! The reference keeps more, `reference_size` events, and each window is
//! compared with its own `sample_size` of them, drawn with the window's seed.
//! A test's false-alarm rate holds on average over reference draws; with one
//! fixed reference sample, an unlucky draw (its mean or correlation off by
//! chance) raised the rate of every window compared with it, for as long as
//! the baseline lived (24 % of windows on the worst of 40 stationary streams
//! at a 5 % level). Redrawn per window from a pool eight times larger, what is
//! fixed is the pool's own error, an eighth of the sample's in variance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    domain_classifier, embedding_drift, ClassifierSettings, DomainDrift, EmbeddingDrift, Reservoir,
};
use crate::event::{FeatureValue, InferenceEvent};

/// Most embedding names compared per model version (the first in name order
/// of the reference sample); bounds work per window and metric labels.
pub const MAX_EMBEDDINGS: usize = 4;

/// Fewest vectors (or rows) per side below which a check is skipped.
pub const MIN_SAMPLE: usize = 20;

/// Per-model settings of the learned checks (`[learned]`, overridden by
/// `[models.<name>.learned]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnedSettings {
    pub enabled: bool,
    /// Most events sampled per window, and drawn from the reference per window.
    pub sample_size: usize,
    /// Most events kept of the reference (at least `sample_size`).
    pub reference_size: usize,
    /// Domain classifier on the numeric features.
    pub classifier: bool,
    /// MMD on each embedding.
    pub embeddings: bool,
    /// Domain classifier on each embedding too (linear above 32 dimensions).
    pub embedding_classifier: bool,
    /// Permutations of each p-value (MMD and classifier).
    pub permutations: usize,
    /// An embedding drifts when the MMD permutation p-value is below this.
    pub mmd_alpha: f64,
    /// The classifier flags drift when its permutation p-value is below this...
    pub classifier_alpha: f64,
    /// ...and its held-out ROC AUC is at least this.
    pub auc_threshold: f64,
    pub folds: usize,
    pub seed: u64,
}

impl Default for LearnedSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            sample_size: 256,
            reference_size: 2048,
            classifier: true,
            embeddings: true,
            embedding_classifier: false,
            permutations: 100,
            mmd_alpha: 0.05,
            classifier_alpha: 0.05,
            auc_threshold: 0.5,
            folds: 5,
            seed: 0,
        }
    }
}

/// What is kept of a sampled event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampled {
    /// Numeric feature values, in name order.
    pub numbers: Vec<(String, f64)>,
    /// Embedding vectors, in name order.
    pub embeddings: Vec<(String, Vec<f64>)>,
}

impl Sampled {
    /// Numbers and embeddings, each sorted by name.
    pub fn new(mut numbers: Vec<(String, f64)>, mut embeddings: Vec<(String, Vec<f64>)>) -> Self {
        numbers.sort_by(|a, b| a.0.cmp(&b.0));
        embeddings.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            numbers,
            embeddings,
        }
    }

    fn of(e: &InferenceEvent<'_>) -> Self {
        Self::new(
            e.features
                .iter()
                .filter_map(|(k, v)| match v {
                    FeatureValue::Number(x) => Some((k.to_string(), *x)),
                    _ => None,
                })
                .collect(),
            e.embeddings
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn number(&self, name: &str) -> Option<f64> {
        self.numbers
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.numbers[i].1)
    }

    fn embedding(&self, name: &str) -> Option<&[f64]> {
        self.embeddings
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// A bounded uniform sample of a window's (or a baseline's) events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSample(Reservoir<Sampled>);

impl EventSample {
    pub fn new(capacity: usize, seed: u64) -> Self {
        Self(Reservoir::new(capacity, seed))
    }

    /// Offer an event; its values are copied only when it is kept.
    pub fn observe(&mut self, e: &InferenceEvent<'_>) {
        self.0.offer_with(|| Sampled::of(e));
    }

    pub fn events(&self) -> &[Sampled] {
        self.0.items()
    }

    /// Events offered so far.
    pub fn seen(&self) -> u64 {
        self.0.seen()
    }

    pub fn into_events(self) -> Vec<Sampled> {
        self.0.into_items()
    }

    /// `n` of the kept events drawn with `seed` ([`draw`]): a window's share
    /// of the reference.
    pub fn draw(&self, n: usize, seed: u64) -> Vec<Sampled> {
        draw(self.events(), n, seed)
    }

    /// The sample as kept in a profile or dataset.
    pub fn to_dataset(&self) -> DatasetSample {
        DatasetSample {
            seen: self.seen(),
            events: self.events().to_vec(),
        }
    }

    /// Continue from a stored sample (a profile's reference), at most
    /// `capacity` of its events (drawn with `seed` when it has more).
    pub fn from_dataset(d: &DatasetSample, capacity: usize, seed: u64) -> Self {
        let events = draw(&d.events, capacity, seed);
        Self(Reservoir::from_items(
            events.len().max(1),
            d.seen,
            events,
            seed,
        ))
    }
}

/// A uniform sample of a whole dataset, as kept in a reference profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetSample {
    /// Rows or events the sample was drawn from.
    pub seen: u64,
    pub events: Vec<Sampled>,
}

impl DatasetSample {
    /// One sample of at most `capacity` from two samples of disjoint parts
    /// (two input files): each kept item stands for `seen / kept` rows of its
    /// part, and weighted sampling without replacement (Efraimidis-Spirakis)
    /// keeps every row of the union equally likely.
    pub fn merge(self, other: Self, capacity: usize, seed: u64) -> Self {
        let seen = self.seen + other.seen;
        let weight = |d: &Self| {
            if d.events.is_empty() {
                0.0
            } else {
                d.seen as f64 / d.events.len() as f64
            }
        };
        let (wa, wb) = (weight(&self), weight(&other));
        let mut g = super::SplitMix(seed);
        let mut keyed: Vec<(f64, Sampled)> = self
            .events
            .into_iter()
            .map(|e| (wa, e))
            .chain(other.events.into_iter().map(|e| (wb, e)))
            .map(|(w, e)| {
                // u^(1/w), compared by its logarithm: ln(u) / w.
                let u = ((g.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                (u.ln() / w, e)
            })
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
        keyed.truncate(capacity);
        Self {
            seen,
            events: keyed.into_iter().map(|(_, e)| e).collect(),
        }
    }
}

/// `n` of `items` drawn without replacement with `seed` (all of them, in
/// their order, when there are no more than `n`).
pub fn draw(items: &[Sampled], n: usize, seed: u64) -> Vec<Sampled> {
    if items.len() <= n {
        return items.to_vec();
    }
    // A partial Fisher-Yates shuffle of the indices.
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let mut g = super::SplitMix(seed);
    for i in 0..n {
        let j = i + g.below(items.len() - i);
        idx.swap(i, j);
    }
    idx[..n].iter().map(|&i| items[i].clone()).collect()
}

/// A deterministic seed for one sample: the settings' seed mixed with the
/// model, version and window index (`u64::MAX` for the reference).
pub fn sample_seed(settings: &LearnedSettings, model: &str, version: &str, window: u64) -> u64 {
    // FNV-1a over the names, then splitmix: stable across builds and runs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in model.bytes().chain([0]).chain(version.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut g = super::SplitMix(h ^ settings.seed ^ window.rotate_left(17));
    g.next()
}

/// The work of the learned checks for one closed window: both samples and
/// the settings. Built by the engine; run where it costs the consumer
/// nothing ([`LearnedJob::run`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedJob {
    pub settings: LearnedSettings,
    /// Numeric features of the baseline: the classifier's columns.
    pub columns: Vec<String>,
    /// This window's draw of `sample_size` from the reference pool.
    pub reference: Vec<Sampled>,
    /// Events the reference sample was drawn from.
    pub reference_seen: u64,
    pub current: Vec<Sampled>,
    pub current_seen: u64,
    pub seed: u64,
}

/// What the learned checks said about a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnedReport {
    /// Any check flagged drift.
    pub drift: bool,
    /// Sampled events: reference and window.
    pub reference_sample: usize,
    pub current_sample: usize,
    /// Events the samples were drawn from.
    pub reference_events: u64,
    pub current_events: u64,
    /// The domain classifier on the numeric features (absent when off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierCheck>,
    /// Per embedding name.
    pub embeddings: BTreeMap<String, EmbeddingCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifierCheck {
    pub columns: Vec<String>,
    /// Why no verdict (too few rows, no numeric feature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(flatten)]
    pub result: Option<DomainDrift>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingCheck {
    /// MMD p-value below `alpha`, or the classifier's drift.
    pub drift: bool,
    pub alpha: f64,
    /// Sampled vectors of another length than the reference's, left out.
    pub mismatched: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mmd: Option<EmbeddingDrift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<DomainDrift>,
}

impl LearnedJob {
    /// Run every configured check. Pure: the same job gives the same report.
    pub fn run(&self) -> LearnedReport {
        let s = &self.settings;
        let classifier = s.classifier.then(|| self.tabular());
        let mut embeddings = BTreeMap::new();
        if s.embeddings || s.embedding_classifier {
            let mut names: Vec<&str> = self
                .reference
                .iter()
                .flat_map(|e| e.embeddings.iter().map(|(k, _)| k.as_str()))
                .collect();
            names.sort_unstable();
            names.dedup();
            for name in names.into_iter().take(MAX_EMBEDDINGS) {
                embeddings.insert(name.to_owned(), self.embedding(name));
            }
        }
        let drift = classifier
            .as_ref()
            .and_then(|c| c.result.as_ref())
            .is_some_and(|r| r.drift)
            || embeddings.values().any(|e| e.drift);
        LearnedReport {
            drift,
            reference_sample: self.reference.len(),
            current_sample: self.current.len(),
            reference_events: self.reference_seen,
            current_events: self.current_seen,
            classifier,
            embeddings,
        }
    }

    fn classifier_settings(&self) -> ClassifierSettings {
        ClassifierSettings {
            folds: self.settings.folds,
            threshold: self.settings.auc_threshold,
            level: self.settings.classifier_alpha,
            permutations: self.settings.permutations,
            seed: self.seed,
            ..ClassifierSettings::default()
        }
    }

    /// Rows of the numeric features; a missing value takes its column's mean
    /// over both samples (missingness has its own per-feature test), and a
    /// column with no value at all is left out.
    fn tabular(&self) -> ClassifierCheck {
        let rows = |events: &[Sampled]| -> Vec<Vec<f64>> {
            events
                .iter()
                .map(|e| {
                    self.columns
                        .iter()
                        .map(|c| e.number(c).filter(|x| x.is_finite()).unwrap_or(f64::NAN))
                        .collect()
                })
                .collect()
        };
        let (mut reference, mut current) = (rows(&self.reference), rows(&self.current));
        let mut keep = Vec::new();
        for c in 0..self.columns.len() {
            let (sum, n) = reference
                .iter()
                .chain(&current)
                .map(|r| r[c])
                .filter(|x| !x.is_nan())
                .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            if n == 0 {
                continue;
            }
            let mean = sum / n as f64;
            for r in reference.iter_mut().chain(current.iter_mut()) {
                if r[c].is_nan() {
                    r[c] = mean;
                }
            }
            keep.push(c);
        }
        let columns: Vec<String> = keep.iter().map(|&c| self.columns[c].clone()).collect();
        if keep.is_empty() {
            return ClassifierCheck {
                columns,
                skipped: Some("no numeric feature has a value in the samples".into()),
                result: None,
            };
        }
        let select = |rows: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            rows.into_iter()
                .map(|r| keep.iter().map(|&c| r[c]).collect())
                .collect()
        };
        let (reference, current) = (select(reference), select(current));
        match self.classify(&reference, &current) {
            Ok(r) => ClassifierCheck {
                columns,
                skipped: None,
                result: Some(r),
            },
            Err(why) => ClassifierCheck {
                columns,
                skipped: Some(why),
                result: None,
            },
        }
    }

    fn classify(
        &self,
        reference: &[Vec<f64>],
        current: &[Vec<f64>],
    ) -> Result<DomainDrift, String> {
        let needed = MIN_SAMPLE.max(2 * self.settings.folds);
        if reference.len() < needed || current.len() < needed {
            return Err(format!(
                "needs {needed} sampled rows a side (reference {}, window {})",
                reference.len(),
                current.len()
            ));
        }
        domain_classifier(reference, current, &self.classifier_settings())
            .map_err(|e| e.to_string())
    }

    fn embedding(&self, name: &str) -> EmbeddingCheck {
        let s = &self.settings;
        let mut check = EmbeddingCheck {
            drift: false,
            alpha: s.mmd_alpha,
            mismatched: 0,
            skipped: None,
            mmd: None,
            classifier: None,
        };
        let reference: Vec<&[f64]> = self
            .reference
            .iter()
            .filter_map(|e| e.embedding(name))
            .collect();
        // The reference's most common length is the embedding's.
        let mut lengths: BTreeMap<usize, usize> = BTreeMap::new();
        for v in &reference {
            *lengths.entry(v.len()).or_default() += 1;
        }
        let Some((&dims, _)) = lengths
            .iter()
            .max_by_key(|(l, n)| (**n, std::cmp::Reverse(**l)))
        else {
            check.skipped = Some("not in the reference sample".into());
            return check;
        };
        let mut take = |vs: Vec<&[f64]>| -> Vec<Vec<f64>> {
            vs.into_iter()
                .filter(|v| {
                    let ok = v.len() == dims && dims > 0 && v.iter().all(|x| x.is_finite());
                    if !ok {
                        check.mismatched += 1;
                    }
                    ok
                })
                .map(<[f64]>::to_vec)
                .collect()
        };
        let reference = take(reference);
        let current = take(
            self.current
                .iter()
                .filter_map(|e| e.embedding(name))
                .collect(),
        );
        if reference.len() < MIN_SAMPLE || current.len() < MIN_SAMPLE {
            check.skipped = Some(format!(
                "needs {MIN_SAMPLE} sampled vectors a side (reference {}, window {})",
                reference.len(),
                current.len()
            ));
            return check;
        }
        if s.embeddings {
            match embedding_drift(&reference, &current, s.permutations, self.seed) {
                Ok(d) => {
                    check.drift |= d.p_value < s.mmd_alpha;
                    check.mmd = Some(d);
                }
                Err(e) => check.skipped = Some(e.to_string()),
            }
        }
        if s.embedding_classifier {
            match self.classify(&reference, &current) {
                Ok(d) => {
                    check.drift |= d.drift;
                    check.classifier = Some(d);
                }
                Err(e) => check.skipped = Some(e),
            }
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Sampled> {
        (0..n)
            .map(|i| Sampled::new(vec![("x".into(), i as f64)], Vec::new()))
            .collect()
    }

    fn xs(sample: &[Sampled]) -> Vec<usize> {
        sample.iter().map(|e| e.numbers[0].1 as usize).collect()
    }

    #[test]
    fn a_draw_is_seeded_and_without_replacement() {
        let pool = items(100);
        let a = xs(&draw(&pool, 30, 7));
        assert_eq!(a, xs(&draw(&pool, 30, 7)));
        assert_ne!(a, xs(&draw(&pool, 30, 8)));
        let mut unique = a.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 30);
        // No more than asked for: all, in order.
        assert_eq!(xs(&draw(&pool[..20], 30, 7)), (0..20).collect::<Vec<_>>());
    }

    /// Each of 100 pool items is drawn into a 10-item share with probability
    /// 1/10: 2,000 times in 20,000 draws (sd 42); all within 5 sd.
    #[test]
    fn every_reference_event_is_equally_likely_to_be_drawn() {
        let pool = items(100);
        let mut drawn = [0u32; 100];
        for seed in 0..20_000 {
            for i in xs(&draw(&pool, 10, seed)) {
                drawn[i] += 1;
            }
        }
        for (i, &k) in drawn.iter().enumerate() {
            assert!((1790..=2210).contains(&k), "item {i} drawn {k} times");
        }
    }
}
