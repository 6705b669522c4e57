//! Bounded per-window trackers: one per feature, one for captions, one for
//! serving signals. Memory per tracker does not grow with the event rate: a
//! numeric tracker holds a KLL sketch (at most about 3,100 values), the bin
//! counts over the baseline's edges and moments; a categorical tracker at most
//! [`MAX_CATEGORIES`] categories.

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::data_quality::RANGE_TAIL;
use super::evaluate::{numeric_histogram_counts, Comparison, Histogram, Tests};
use crate::baseline::FeatureProfile;
use crate::config::FeatureKind;
use crate::event::FeatureValue;
use crate::quality::{self, Vocabulary};
use crate::sketch::quantile::QuantileFn;
use crate::sketch::quantile::{ks_distance, wasserstein_distance, Range};
use crate::sketch::tails::{with_exact_tails, DEFAULT_TAIL};
use crate::sketch::{CategoryCounts, Kll, Moments, Tails};
use crate::stats::{self, binned, ks, NumericTests, WassersteinResult};

/// Distinct categories tracked per feature and window; the rest are counted
/// under [`OTHER`], so a high-cardinality field cannot grow memory.
pub const MAX_CATEGORIES: usize = 512;
/// Bucket for categories beyond the cap.
pub const OTHER: &str = "__other__";
/// Distinct captions remembered per window for the duplicate share.
const MAX_CAPTIONS: usize = 4096;

fn all_values() -> Range {
    Range::ALL
}

/// Values of one feature in one window.
// Most features are numeric and every event touches every tracker: the
// numeric variant stays inline rather than behind a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub enum FeatureTracker {
    Numeric {
        source: FeatureKind,
        sketch: Kll,
        /// The window's extreme values, exact (the sketch blurs tails).
        tails: Tails,
        bins: Vec<u64>,
        moments: Moments,
        missing: u64,
        mismatched: u64,
        /// The reference's central range, and the values outside it.
        #[serde(default = "all_values")]
        range: Range,
        #[serde(default)]
        out_of_range: u64,
    },
    Categorical {
        counts: CategoryCounts,
        missing: u64,
        mismatched: u64,
    },
}

impl FeatureTracker {
    /// An empty tracker shaped by the baseline's profile of the feature.
    pub fn for_profile(p: &FeatureProfile) -> Self {
        match p {
            FeatureProfile::Numeric(n) => Self::Numeric {
                source: n.source,
                sketch: Kll::default(),
                tails: Tails::new(DEFAULT_TAIL),
                bins: vec![0; n.edges.len() + 1],
                moments: Moments::default(),
                missing: 0,
                mismatched: 0,
                range: n.quantiles.range(RANGE_TAIL),
                out_of_range: 0,
            },
            FeatureProfile::Categorical(_) => Self::Categorical {
                counts: CategoryCounts::default(),
                missing: 0,
                mismatched: 0,
            },
        }
    }

    /// Add one value. A value of the wrong kind (a string for a numeric
    /// feature) is counted as missing and as mismatched.
    pub fn observe(&mut self, v: &FeatureValue, profile: &FeatureProfile) {
        match (self, profile) {
            (
                Self::Numeric {
                    source,
                    sketch,
                    tails,
                    bins,
                    moments,
                    missing,
                    mismatched,
                    range,
                    out_of_range,
                },
                FeatureProfile::Numeric(p),
            ) => {
                let x = match (v, *source) {
                    (FeatureValue::Null, _) => None,
                    (FeatureValue::Number(x), FeatureKind::Numeric) => Some(*x),
                    (FeatureValue::Category(s), FeatureKind::Text) => {
                        Some(s.split_whitespace().count() as f64)
                    }
                    (FeatureValue::Vector(v), FeatureKind::Embedding) => {
                        Some(v.iter().map(|x| x * x).sum::<f64>().sqrt())
                    }
                    // As the baseline reads a numeric feature: a string that
                    // is a finite number is that number.
                    (FeatureValue::Category(s), FeatureKind::Numeric) => {
                        match s.trim().parse::<f64>() {
                            Ok(x) if x.is_finite() => Some(x),
                            _ => {
                                *mismatched += 1;
                                None
                            }
                        }
                    }
                    _ => {
                        *mismatched += 1;
                        None
                    }
                };
                match x {
                    Some(x) if x.is_finite() => {
                        sketch.push(x);
                        tails.push(x);
                        bins[binned::bin_index(&p.edges, x)] += 1;
                        moments.push(x);
                        *out_of_range += u64::from(!range.contains(x));
                    }
                    _ => *missing += 1,
                }
            }
            (
                Self::Categorical {
                    counts,
                    missing,
                    mismatched,
                },
                FeatureProfile::Categorical(p),
            ) => match v {
                FeatureValue::Null => *missing += 1,
                FeatureValue::Category(s) => count_category(counts, &p.categories, s),
                // A number in a categorical feature counts under its text,
                // within the same cap as any category.
                FeatureValue::Number(x) => count_category(counts, &p.categories, &format!("{x}")),
                FeatureValue::Vector(_) => {
                    *mismatched += 1;
                    *missing += 1;
                }
            },
            // The profile decides the tracker's shape, so the pair always matches.
            _ => {}
        }
    }
}

/// Count one value of a categorical feature: under its own name while fewer
/// than [`MAX_CATEGORIES`] are known (or the baseline knows it), else under
/// [`OTHER`].
#[inline]
fn count_category(counts: &mut CategoryCounts, baseline: &CategoryCounts, s: &str) {
    // One lookup for a category seen before in the window; for the usual
    // handful of categories a scan with a short comparison beats the tree's
    // search (a libc memcmp per node key).
    let seen = if counts.0.len() <= 16 {
        counts
            .0
            .iter_mut()
            .find(|(k, _)| crate::event::eq_short(k, s))
            .map(|(_, c)| c)
    } else {
        counts.0.get_mut(s)
    };
    if let Some(c) = seen {
        *c += 1;
    } else {
        let room = counts.0.len() < MAX_CATEGORIES;
        let key = if room || baseline.0.contains_key(s) {
            s
        } else {
            OTHER
        };
        counts.add(key, 1);
    }
}

impl FeatureTracker {
    /// Heap bytes held (sketch items, bins, category names and counts): the
    /// state the 32 KiB per-feature budget is about.
    pub fn memory_bytes(&self) -> usize {
        match self {
            Self::Numeric {
                sketch,
                tails,
                bins,
                ..
            } => sketch.memory_bytes() + tails.memory_bytes() + bins.len() * 8,
            // A BTreeMap entry: the key's bytes plus the String header and count.
            Self::Categorical { counts, .. } => counts.0.keys().map(|k| k.len() + 24 + 8).sum(),
        }
    }

    /// Values of the wrong kind (counted as missing too).
    pub fn mismatched(&self) -> u64 {
        match self {
            Self::Numeric { mismatched, .. } | Self::Categorical { mismatched, .. } => *mismatched,
        }
    }

    /// Values seen (non-null) and missing.
    pub fn counts(&self) -> (u64, u64) {
        match self {
            Self::Numeric {
                sketch, missing, ..
            } => (sketch.count(), *missing),
            Self::Categorical {
                counts, missing, ..
            } => (counts.total(), *missing),
        }
    }

    /// The tests of issue 2 against the baseline: PSI, JS and chi-square
    /// exactly on the baseline's bins; KS and Wasserstein from the sketch and
    /// the profile's quantile summary. `None` when the window has no value.
    pub fn compare(&self, profile: &FeatureProfile) -> Option<Comparison> {
        match (self, profile) {
            (
                Self::Numeric {
                    sketch,
                    tails,
                    bins,
                    moments,
                    ..
                },
                FeatureProfile::Numeric(p),
            ) => {
                if sketch.is_empty() {
                    return None;
                }
                let qr = p.quantiles.quantile_fn();
                let items = with_exact_tails(
                    &sketch.weighted(),
                    sketch.count(),
                    &tails.low(),
                    &tails.high(),
                );
                // KS from the items as they are (shifting them would move
                // atoms of tied values across a tie); W1 from recentred items.
                let qc = QuantileFn::from_weighted(&items);
                let mut centred = items;
                recentre(&mut centred, moments.mean);
                let qw = QuantileFn::from_weighted(&centred);
                let (psi, jensen_shannon) = stats::binned_tests(&p.bin_counts, bins);
                let tests = NumericTests {
                    ks: ks::ks_from_statistic(
                        ks_distance(&qr, &qc),
                        p.count as usize,
                        sketch.count() as usize,
                    ),
                    wasserstein: WassersteinResult::new(wasserstein_distance(&qr, &qw), p.std),
                    psi,
                    jensen_shannon,
                };
                Some(Comparison {
                    tests: Tests::Numeric(tests),
                    histogram: numeric_histogram_counts(&p.edges, &p.bin_counts, bins),
                    reference_count: p.count,
                    reference_missing: p.missing,
                })
            }
            (Self::Categorical { counts, .. }, FeatureProfile::Categorical(p)) => {
                if counts.total() == 0 {
                    return None;
                }
                let (labels, a, b) = p.categories.aligned(counts);
                Some(Comparison {
                    tests: Tests::Categorical(stats::categorical_tests(&a, &b)),
                    histogram: Histogram {
                        labels,
                        reference: binned::proportions(&a),
                        current: binned::proportions(&b),
                    },
                    reference_count: p.count,
                    reference_missing: p.missing,
                })
            }
            _ => None,
        }
    }
}

/// Shift a sketch's items so their weighted mean is the window's exact mean.
/// A compacted sketch carries a small location error of its own, and the
/// Wasserstein distance of nearby distributions is mostly a location
/// difference; the exact mean is known from the window's moments, so the
/// error can be removed (`tests/window_accuracy.rs` measures the effect).
/// Small windows, held exactly, need and get no change.
fn recentre(items: &mut [(f64, u64)], exact_mean: f64) {
    let total: u64 = items.iter().map(|(_, w)| w).sum();
    if total == 0 || items.iter().all(|&(_, w)| w == 1) {
        return;
    }
    let mean = items.iter().map(|&(x, w)| x * w as f64).sum::<f64>() / total as f64;
    let delta = exact_mean - mean;
    if delta.is_finite() {
        for (x, _) in items.iter_mut() {
            *x += delta;
        }
    }
}

/// Caption descriptors over a window.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct CaptionTracker {
    captions: u64,
    empty: u64,
    boilerplate: u64,
    ends_with_stopword: u64,
    token_count: Moments,
    type_token_ratio: Moments,
    oov_rate: Moments,
    repeated: [Moments; 4],
    longest_repeat_run: Moments,
    clip_score: Moments,
    /// Caption hash -> count, for the duplicate and top-caption shares.
    seen: FxHashMap<u64, u32>,
    /// Captions not remembered because `seen` was full.
    unremembered: u64,
}

/// What a window says about its captions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptionWindow {
    pub captions: u64,
    pub empty_rate: f64,
    pub boilerplate_prefix_rate: f64,
    pub ends_with_stopword_rate: f64,
    pub token_count_mean: f64,
    pub type_token_ratio_mean: f64,
    pub oov_rate_mean: f64,
    pub repeated_1gram_rate_mean: f64,
    pub repeated_2gram_rate_mean: f64,
    pub repeated_3gram_rate_mean: f64,
    pub repeated_4gram_rate_mean: f64,
    pub longest_repeat_run_mean: f64,
    /// Mean CLIPScore over captions with image and caption embeddings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_score_mean: Option<f64>,
    pub duplicate_caption_share: f64,
    pub top_caption_share: f64,
    /// Feedback events joined (by `event_id`) while the window was open.
    #[serde(skip_serializing_if = "is_zero")]
    pub feedback_joined: u64,
    /// Mean rating of the joined feedback that carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating_mean: Option<f64>,
    /// Joined captions with references scored below, and those beyond
    /// `feedback.max_scored_per_window` left unscored.
    #[serde(skip_serializing_if = "is_zero")]
    pub references_scored: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub references_unscored: u64,
    /// BLEU-1..4, ROUGE-L and CIDEr-D of the joined captions against their
    /// references, as pycocoevalcap computes them over that set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<quality::ReferenceScores>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CaptionTracker {
    pub fn observe(&mut self, caption: &str, clip: Option<f64>, vocab: &Vocabulary) {
        self.observe_facts(&quality::CaptionFacts::of(caption, vocab), clip);
    }

    /// As [`CaptionTracker::observe`], with the caption described already.
    pub fn observe_facts(&mut self, facts: &quality::CaptionFacts, clip: Option<f64>) {
        let d = &facts.descriptors;
        self.captions += 1;
        self.empty += u64::from(d.empty);
        self.boilerplate += u64::from(d.boilerplate_prefix);
        self.ends_with_stopword += u64::from(d.ends_with_stopword);
        self.token_count.push(d.token_count as f64);
        self.type_token_ratio.push(d.type_token_ratio);
        self.oov_rate.push(d.oov_rate);
        for (m, r) in self.repeated.iter_mut().zip([
            d.repeated_1gram_rate,
            d.repeated_2gram_rate,
            d.repeated_3gram_rate,
            d.repeated_4gram_rate,
        ]) {
            m.push(r);
        }
        self.longest_repeat_run.push(d.longest_repeat_run as f64);
        if let Some(c) = clip {
            self.clip_score.push(c);
        }
        let h = facts.hash;
        if let Some(c) = self.seen.get_mut(&h) {
            *c += 1;
        } else if self.seen.len() < MAX_CAPTIONS {
            self.seen.insert(h, 1);
        } else {
            self.unremembered += 1;
        }
    }

    pub fn report(&self) -> CaptionWindow {
        let n = self.captions.max(1) as f64;
        let mean = |m: &Moments| if m.count == 0 { 0.0 } else { m.mean };
        let remembered: u64 = self.seen.values().map(|&c| u64::from(c)).sum();
        // Unremembered captions are counted as distinct: the shares are lower bounds.
        let distinct = self.seen.len() as u64 + self.unremembered;
        CaptionWindow {
            captions: self.captions,
            empty_rate: self.empty as f64 / n,
            boilerplate_prefix_rate: self.boilerplate as f64 / n,
            ends_with_stopword_rate: self.ends_with_stopword as f64 / n,
            token_count_mean: mean(&self.token_count),
            type_token_ratio_mean: mean(&self.type_token_ratio),
            oov_rate_mean: mean(&self.oov_rate),
            repeated_1gram_rate_mean: mean(&self.repeated[0]),
            repeated_2gram_rate_mean: mean(&self.repeated[1]),
            repeated_3gram_rate_mean: mean(&self.repeated[2]),
            repeated_4gram_rate_mean: mean(&self.repeated[3]),
            longest_repeat_run_mean: mean(&self.longest_repeat_run),
            clip_score_mean: (self.clip_score.count > 0).then_some(self.clip_score.mean),
            duplicate_caption_share: if self.captions == 0 {
                0.0
            } else {
                1.0 - distinct as f64 / n
            },
            top_caption_share: if remembered == 0 {
                0.0
            } else {
                self.seen.values().copied().max().unwrap_or(0) as f64 / n
            },
            feedback_joined: 0,
            rating_mean: None,
            references_scored: 0,
            references_unscored: 0,
            references: None,
        }
    }
}

/// Broken-component signals over a window.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct SignalTracker {
    pub events: u64,
    pub errors: u64,
    pub empty_captions: u64,
    pub latency: Kll,
    pub late_events: u64,
    /// Events stamped far ahead of the version's clock, held back
    /// (`monitor::clock`).
    #[serde(default)]
    pub future_events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalWindow {
    pub events: u64,
    /// Share of events whose serving call failed (`error` not null).
    pub error_rate: f64,
    /// Share of successful events with an empty caption.
    pub empty_caption_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_p90: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_p99: Option<f64>,
    /// Events that arrived after their window had closed (counted here, in the
    /// window open when they arrived).
    pub late_events: u64,
    /// Events stamped far ahead of the model version's clock, counted here
    /// and not tracked (a few such events cannot close windows early; ten in
    /// a row, as when traffic resumes after a gap, move the clock).
    pub future_events: u64,
}

impl SignalTracker {
    pub fn report(&self) -> SignalWindow {
        let ok = self.events.saturating_sub(self.errors);
        SignalWindow {
            events: self.events,
            error_rate: if self.events == 0 {
                0.0
            } else {
                self.errors as f64 / self.events as f64
            },
            empty_caption_rate: if ok == 0 {
                0.0
            } else {
                self.empty_captions as f64 / ok as f64
            },
            latency_ms_p50: self.latency.quantile(0.5),
            latency_ms_p90: self.latency.quantile(0.9),
            latency_ms_p99: self.latency.quantile(0.99),
            late_events: self.late_events,
            future_events: self.future_events,
        }
    }
}
