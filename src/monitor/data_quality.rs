//! Data-quality checks of a closed window against the baseline: the share of
//! each feature's values missing, of the wrong type, in a category the
//! reference never had, or outside the reference's range; baseline features
//! absent from every event; features the baseline does not have.
//!
//! A check flags when its share reaches the configured level *and* the count
//! behind it is improbable under the reference's own rate (a one-sided
//! binomial test at `alpha`): a level alone would flag a window of five
//! events for one stray value, a test alone would flag a large window for a
//! change too small to matter. Stable data stays quiet on both counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

use super::tracker::FeatureTracker;
use crate::baseline::FeatureProfile;

/// The out-of-range check's range runs from the reference's 0.1 % quantile to
/// its 99.9 % quantile.
pub const RANGE_TAIL: f64 = 0.001;

/// Names of features the baseline lacks kept per window; more are counted.
pub const MAX_NEW_NAMES: usize = 16;

/// `[data_quality]`: when each check flags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataQualitySettings {
    pub enabled: bool,
    /// Significance of the binomial test behind every flag.
    pub alpha: f64,
    /// Rise of a feature's missing rate over the reference's.
    pub missing_rate_change: f64,
    /// Share of a feature's values of the wrong type.
    pub wrong_type_share: f64,
    /// Share of a categorical feature's values in categories the reference lacks.
    pub unseen_share: f64,
    /// Share of a numeric feature's values outside the reference's range.
    pub out_of_range_share: f64,
    /// Share of events carrying a feature the baseline lacks.
    pub new_feature_share: f64,
}

impl Default for DataQualitySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            alpha: 0.001,
            missing_rate_change: 0.05,
            wrong_type_share: 0.01,
            unseen_share: 0.01,
            out_of_range_share: 0.01,
            new_feature_share: 0.01,
        }
    }
}

/// Windows with fewer events are measured, never flagged: a handful of
/// events says too little about a rate.
pub const MIN_EVENTS: u64 = 30;

/// The rate at which the next value shows what `k` of `n` reference values
/// showed (the rule of succession, (k + 1) / (n + 2)): never 0, so a test
/// against a reference that happened not to show a fault still asks for
/// more than one faulty value.
fn expected(k: u64, n: u64) -> f64 {
    (k as f64 + 1.0) / (n as f64 + 2.0)
}

/// A check that can flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    MissingRate,
    WrongType,
    UnseenCategories,
    OutOfRange,
    Absent,
    NewFeatures,
}

impl Check {
    pub const ALL: [Check; 6] = [
        Check::MissingRate,
        Check::WrongType,
        Check::UnseenCategories,
        Check::OutOfRange,
        Check::Absent,
        Check::NewFeatures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingRate => "missing_rate",
            Self::WrongType => "wrong_type",
            Self::UnseenCategories => "unseen_categories",
            Self::OutOfRange => "out_of_range",
            Self::Absent => "absent",
            Self::NewFeatures => "new_features",
        }
    }
}

/// One baseline feature in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureQuality {
    pub name: String,
    /// Events that had the feature to give (values, nulls, wrong types).
    pub events: u64,
    /// Null, absent or non-finite, over `events` (wrong types not included).
    pub missing_rate: f64,
    pub reference_missing_rate: f64,
    /// `missing_rate - reference_missing_rate`.
    pub missing_rate_change: f64,
    /// A string for a numeric feature, a vector for a categorical one.
    pub wrong_type_share: f64,
    /// Categorical: share of the values in categories the reference lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_share: Option<f64>,
    /// Categorical: the share expected from the reference (its categories
    /// seen once and its count beyond the category cap, over its count: the
    /// Good-Turing estimate of unseen mass, by succession).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_unseen_share: Option<f64>,
    /// Numeric: share of the values outside the reference's range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_range_share: Option<f64>,
    /// Numeric: the reference's own share outside that range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_out_of_range_share: Option<f64>,
    /// No event of the window had a value.
    pub absent: bool,
    /// The checks that flagged.
    pub flagged: Vec<Check>,
}

/// Features the baseline lacks, seen in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewFeatures {
    /// Events with at least one.
    pub events: u64,
    /// Names, at most [`MAX_NEW_NAMES`], with the events carrying each.
    pub names: BTreeMap<String, u64>,
    /// Occurrences of names beyond the cap.
    pub other: u64,
}

impl NewFeatures {
    /// Count a feature of an event that the baseline lacks.
    pub fn name(&mut self, name: &str) {
        if let Some(n) = self.names.get_mut(name) {
            *n += 1;
        } else if self.names.len() < MAX_NEW_NAMES {
            // Names are at most 128 bytes (the decoder's limit).
            self.names.insert(name.to_owned(), 1);
        } else {
            self.other += 1;
        }
    }
}

/// The window's new features, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewFeaturesReport {
    pub events: u64,
    /// Share of the window's events.
    pub share: f64,
    pub names: Vec<String>,
    /// Names not listed (beyond the cap).
    #[serde(skip_serializing_if = "is_zero")]
    pub other: u64,
    pub flagged: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The data-quality section of a window report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataQualityReport {
    /// Flags raised in this window (each feature's checks, and new features).
    pub issues: usize,
    pub features: Vec<FeatureQuality>,
    pub new_features: NewFeaturesReport,
}

impl DataQualityReport {
    /// The largest value of `stat` over the features (0 without features).
    pub fn max_of(&self, stat: fn(&FeatureQuality) -> Option<f64>) -> f64 {
        self.features
            .iter()
            .filter_map(stat)
            .fold(0.0, |m, x| if x > m { x } else { m })
    }

    /// Baseline features absent from every event.
    pub fn absent(&self) -> impl Iterator<Item = &FeatureQuality> {
        self.features.iter().filter(|f| f.absent)
    }
}

/// P(X >= k) for X ~ Binomial(n, p).
pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    Binomial::new(p, n).map_or(1.0, |b| b.sf(k - 1))
}

/// Whether `k` of `n` reaches `level` and is improbable at the reference's
/// rate `p0`.
fn flags(k: u64, n: u64, p0: f64, level: f64, alpha: f64) -> bool {
    n > 0 && k as f64 / n as f64 >= level && binomial_upper_tail(k, n, p0) < alpha
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Check every tracked feature of a window of `events` against its profile.
pub fn assess(
    events: u64,
    trackers: &BTreeMap<String, FeatureTracker>,
    profiles: &BTreeMap<String, FeatureProfile>,
    new: &NewFeatures,
    s: &DataQualitySettings,
) -> DataQualityReport {
    let mut features = Vec::with_capacity(trackers.len());
    let mut issues = 0;
    for (name, t) in trackers {
        let Some(p) = profiles.get(name) else {
            continue;
        };
        let f = feature(name, t, p, s);
        issues += f.flagged.len();
        features.push(f);
    }
    let share = ratio(new.events, events);
    // The reference's events, none of which carried a feature it lacks.
    let reference_events = profiles
        .values()
        .map(|p| p.count() + p.missing())
        .max()
        .unwrap_or(0);
    let flagged = s.enabled
        && events >= MIN_EVENTS
        && flags(
            new.events,
            events,
            expected(0, reference_events),
            s.new_feature_share,
            s.alpha,
        );
    issues += usize::from(flagged);
    DataQualityReport {
        issues,
        features,
        new_features: NewFeaturesReport {
            events: new.events,
            share,
            names: new.names.keys().cloned().collect(),
            other: new.other,
            flagged,
        },
    }
}

fn feature(
    name: &str,
    t: &FeatureTracker,
    p: &FeatureProfile,
    s: &DataQualitySettings,
) -> FeatureQuality {
    let (values, missing) = t.counts();
    let wrong = t.mismatched();
    let nulls = missing.saturating_sub(wrong);
    let n = values + missing;
    let (ref_count, ref_missing) = (p.count(), p.missing());
    let ref_total = ref_count + ref_missing;
    let r0 = ratio(ref_missing, ref_total);
    let missing_rate = ratio(nulls, n);
    let mut flagged = Vec::new();
    let judged = s.enabled && n >= MIN_EVENTS;
    let mut check = |c: Check, on: bool| {
        if judged && on {
            flagged.push(c);
        }
    };
    check(
        Check::MissingRate,
        missing_rate - r0 >= s.missing_rate_change
            && binomial_upper_tail(nulls, n, expected(ref_missing, ref_total)) < s.alpha,
    );
    // The reference's wrong types are not kept (a profile holds values):
    // taken as none.
    check(
        Check::WrongType,
        flags(
            wrong,
            n,
            expected(0, ref_total),
            s.wrong_type_share,
            s.alpha,
        ),
    );
    let (mut unseen_share, mut reference_unseen_share) = (None, None);
    let (mut out_of_range_share, mut reference_out_of_range_share) = (None, None);
    match (t, p) {
        (FeatureTracker::Categorical { counts, .. }, FeatureProfile::Categorical(cp)) => {
            let unseen: u64 = counts
                .0
                .iter()
                .filter(|(k, _)| !cp.categories.0.contains_key(k.as_str()))
                .map(|(_, c)| c)
                .sum();
            // Unseen mass: the categories seen once (Good-Turing), and what
            // the reference counted beyond its category cap (any of those
            // may come again under a name it did not keep).
            let singletons = cp.categories.0.values().filter(|&&c| c == 1).count() as u64;
            let beyond_cap = cp
                .categories
                .0
                .get(super::tracker::OTHER)
                .copied()
                .unwrap_or(0);
            let p0 = expected(singletons + beyond_cap, cp.count);
            check(
                Check::UnseenCategories,
                flags(unseen, values, p0, s.unseen_share, s.alpha),
            );
            unseen_share = Some(ratio(unseen, values));
            reference_unseen_share = Some(p0);
        }
        (
            FeatureTracker::Numeric {
                out_of_range,
                range,
                ..
            },
            FeatureProfile::Numeric(_),
        ) => {
            // A new value falls beyond the k-th of m ordered reference
            // values with probability about k / (m + 1): at least one
            // rank's worth each side, however small the reference.
            let p0 = range.outside.max(2.0 / (ref_count as f64 + 1.0)).min(1.0);
            check(
                Check::OutOfRange,
                flags(*out_of_range, values, p0, s.out_of_range_share, s.alpha),
            );
            out_of_range_share = Some(ratio(*out_of_range, values));
            reference_out_of_range_share = Some(range.outside);
        }
        _ => {}
    }
    // Not in any event (null or missing throughout; a feature sent with the
    // wrong type is there): improbable when the reference's missing rate to
    // the power of the window's events is below alpha.
    let absent = n > 0 && values == 0 && wrong == 0;
    let p_absent = expected(ref_missing, ref_total).powf(n as f64);
    if judged && absent && p_absent < s.alpha {
        // Absent says it all: not also a missing rate.
        flagged.retain(|c| *c != Check::MissingRate);
        flagged.push(Check::Absent);
    }
    FeatureQuality {
        name: name.to_owned(),
        events: n,
        missing_rate,
        reference_missing_rate: r0,
        missing_rate_change: missing_rate - r0,
        wrong_type_share: ratio(wrong, n),
        unseen_share,
        reference_unseen_share,
        out_of_range_share,
        reference_out_of_range_share,
        absent,
        flagged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::FeatureData;
    use crate::config::FeatureKind;
    use crate::event::FeatureValue;
    use crate::sketch::CategoryCounts;
    use crate::testkit::XorShift;

    /// The binomial tail against scipy.stats.binom.sf
    /// (tests/fixtures/stats/binomial.py).
    #[test]
    fn binomial_tail_matches_scipy() {
        let golden: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/stats/binomial.json"
        )))
        .unwrap();
        let cases = golden["cases"].as_array().unwrap();
        assert!(cases.len() > 30);
        for c in cases {
            let (k, n, p, want) = (
                c[0].as_u64().unwrap(),
                c[1].as_u64().unwrap(),
                c[2].as_f64().unwrap(),
                c[3].as_f64().unwrap(),
            );
            let got = binomial_upper_tail(k, n, p);
            let tolerance = 1e-9 * want.max(1e-290);
            assert!(
                (got - want).abs() <= tolerance,
                "P(X >= {k}), n = {n}, p = {p}: {got} vs scipy {want}"
            );
        }
        assert_eq!(binomial_upper_tail(0, 5, 0.3), 1.0);
        assert_eq!(binomial_upper_tail(1, 5, 0.0), 0.0);
        assert_eq!(binomial_upper_tail(6, 5, 0.3), 0.0);
    }

    fn profiles() -> BTreeMap<String, FeatureProfile> {
        let mut rng = XorShift::new(7);
        let mut values: Vec<f64> = (0..5_000).map(|_| rng.normal()).collect();
        values.sort_by(f64::total_cmp);
        let numeric = FeatureData::Numeric {
            values,
            missing: 50,
            source: FeatureKind::Numeric,
        };
        let mut counts = CategoryCounts::default();
        for (c, n) in [
            ("mobile", 3_000),
            ("web", 1_800),
            ("scanner", 199),
            ("fax", 1),
        ] {
            counts.add(c, n);
        }
        let categorical = FeatureData::Categorical { counts, missing: 0 };
        [("brightness", numeric), ("source", categorical)]
            .into_iter()
            .map(|(k, d)| (k.to_owned(), FeatureProfile::from_data(&d).unwrap()))
            .collect()
    }

    /// A window of `n` events: `value(i)` gives each feature's value.
    fn window(
        profiles: &BTreeMap<String, FeatureProfile>,
        n: u64,
        mut value: impl FnMut(&mut XorShift, &str) -> FeatureValue<'static>,
    ) -> BTreeMap<String, FeatureTracker> {
        let mut rng = XorShift::new(11);
        let mut trackers: BTreeMap<String, FeatureTracker> = profiles
            .iter()
            .map(|(k, p)| (k.clone(), FeatureTracker::for_profile(p)))
            .collect();
        for _ in 0..n {
            for (k, t) in trackers.iter_mut() {
                t.observe(&value(&mut rng, k), &profiles[k]);
            }
        }
        trackers
    }

    fn stable(rng: &mut XorShift, feature: &str) -> FeatureValue<'static> {
        match feature {
            "brightness" if rng.uniform() < 0.01 => FeatureValue::Null,
            "brightness" => FeatureValue::Number(rng.normal()),
            _ => {
                let u = rng.uniform();
                let c = if u < 0.6 {
                    "mobile"
                } else if u < 0.96 {
                    "web"
                } else {
                    "scanner"
                };
                FeatureValue::Category(c.into())
            }
        }
    }

    #[test]
    fn stable_windows_of_any_size_raise_no_flag() {
        let p = profiles();
        let s = DataQualitySettings::default();
        for n in [1, 5, 30, 200, 1_500, 20_000] {
            let t = window(&p, n, stable);
            let r = assess(n, &t, &p, &NewFeatures::default(), &s);
            assert_eq!(r.issues, 0, "{n} events: {r:#?}");
            let b = &r.features[0];
            assert_eq!(b.name, "brightness");
            assert!((b.reference_missing_rate - 50.0 / 5_050.0).abs() < 1e-12);
            let range = b.reference_out_of_range_share.unwrap();
            assert!(range > 0.0 && range <= 0.0025, "{range}");
            // Good-Turing: one category seen once in 5,000, by succession.
            assert_eq!(r.features[1].reference_unseen_share, Some(2.0 / 5_002.0));
        }
    }

    #[test]
    fn each_check_flags_its_break() {
        let p = profiles();
        let s = DataQualitySettings::default();
        let n = 1_500;
        let broken = |rng: &mut XorShift, f: &str| -> FeatureValue<'static> {
            let u = rng.uniform();
            match f {
                // 10 % null, 3 % text, 5 % beyond the range.
                "brightness" if u < 0.10 => FeatureValue::Null,
                "brightness" if u < 0.13 => FeatureValue::Category("0.5 lux".into()),
                "brightness" if u < 0.18 => FeatureValue::Number(50.0),
                "source" if u < 0.05 => FeatureValue::Category("tablet".into()),
                _ => stable(rng, f),
            }
        };
        let t = window(&p, n, broken);
        let mut new = NewFeatures::default();
        for _ in 0..n / 2 {
            new.name("exif_orientation");
            new.events += 1;
        }
        let r = assess(n, &t, &p, &new, &s);
        let (b, src) = (&r.features[0], &r.features[1]);
        assert_eq!(
            b.flagged,
            [Check::MissingRate, Check::WrongType, Check::OutOfRange],
            "{b:#?}"
        );
        assert!((b.missing_rate - 0.10).abs() < 0.02, "{b:?}");
        assert!((b.wrong_type_share - 0.03).abs() < 0.01, "{b:?}");
        // 5 % of the values at 50, with the reference's tails (~0.2 %).
        let oor = b.out_of_range_share.unwrap();
        assert!(oor > 0.05 && oor < 0.08, "{oor}");
        assert_eq!(src.flagged, [Check::UnseenCategories], "{src:#?}");
        assert!((src.unseen_share.unwrap() - 0.05).abs() < 0.015);
        assert!(r.new_features.flagged);
        assert_eq!(r.new_features.names, ["exif_orientation"]);
        assert_eq!(r.issues, 5);
        // Off: measured, never flagged.
        let off = DataQualitySettings {
            enabled: false,
            ..s
        };
        let r = assess(n, &t, &p, &new, &off);
        assert_eq!(r.issues, 0);
        assert_eq!(r.features[0].out_of_range_share, Some(oor));
    }

    #[test]
    fn an_absent_feature_flags_only_when_improbable() {
        let s = DataQualitySettings::default();
        let gone = |rng: &mut XorShift, f: &str| match f {
            "brightness" => FeatureValue::Null,
            _ => stable(rng, f),
        };
        // The reference misses 1 % of brightness: a window too small to
        // judge is measured only; 30 events without it are improbable.
        let p = profiles();
        let few = assess(29, &window(&p, 29, gone), &p, &NewFeatures::default(), &s);
        assert!(few.features[0].absent);
        assert!(few.features[0].flagged.is_empty());
        let enough = assess(30, &window(&p, 30, gone), &p, &NewFeatures::default(), &s);
        assert_eq!(enough.features[0].flagged, [Check::Absent]);
        assert_eq!(enough.absent().count(), 1);
        // A reference that misses it 80 % of the time: 30 events without it
        // are ordinary (0.8^30 > 0.001), 40 are not.
        let mut mostly_missing = profiles();
        let values: Vec<f64> = (0..1_000).map(|i| i as f64).collect();
        mostly_missing.insert(
            "brightness".into(),
            FeatureProfile::from_data(&FeatureData::Numeric {
                values,
                missing: 4_000,
                source: FeatureKind::Numeric,
            })
            .unwrap(),
        );
        let p = &mostly_missing;
        let r = assess(30, &window(p, 30, gone), p, &NewFeatures::default(), &s);
        assert!(r.features[0].absent && r.features[0].flagged.is_empty());
        let r = assess(40, &window(p, 40, gone), p, &NewFeatures::default(), &s);
        assert_eq!(r.features[0].flagged, [Check::Absent]);
    }

    /// A small reference (every value kept, so its range is its minimum and
    /// maximum) and a reference that never missed a value: windows of the
    /// same data do not flag for one value beyond them.
    #[test]
    fn small_or_spotless_references_do_not_flag_stable_windows() {
        let mut rng = XorShift::new(3);
        let mut values: Vec<f64> = (0..1_000).map(|_| rng.normal()).collect();
        values.sort_by(f64::total_cmp);
        let mut p = profiles();
        p.insert(
            "brightness".into(),
            FeatureProfile::from_data(&FeatureData::Numeric {
                values,
                missing: 0,
                source: FeatureKind::Numeric,
            })
            .unwrap(),
        );
        let s = DataQualitySettings::default();
        let mut beyond = 0.0;
        for seed in 0..200 {
            let mut rng = XorShift::new(100 + seed);
            let mut t: BTreeMap<String, FeatureTracker> = p
                .iter()
                .map(|(k, pr)| (k.clone(), FeatureTracker::for_profile(pr)))
                .collect();
            for i in 0..50 {
                for (k, tr) in t.iter_mut() {
                    // One null in the window, where the reference had none.
                    let v = match k.as_str() {
                        "brightness" if i == 0 => FeatureValue::Null,
                        "brightness" => FeatureValue::Number(rng.normal()),
                        _ => stable(&mut rng, k),
                    };
                    tr.observe(&v, &p[k]);
                }
            }
            let r = assess(50, &t, &p, &NewFeatures::default(), &s);
            assert_eq!(r.issues, 0, "window {seed}: {r:#?}");
            beyond += r.features[0].out_of_range_share.unwrap();
        }
        // Values beyond the reference's extremes do occur (about 2 in 1,001).
        assert!(beyond > 0.0);
    }

    /// A numeric feature's numbers sent as strings are numbers, as the
    /// baseline reads them (`kind = "numeric"` learns from such strings).
    #[test]
    fn numbers_in_strings_are_values_of_a_numeric_feature() {
        let p = profiles();
        let as_text = |rng: &mut XorShift, f: &str| match f {
            "brightness" => FeatureValue::Category(format!(" {} ", rng.normal()).into()),
            _ => stable(rng, f),
        };
        let t = window(&p, 500, as_text);
        assert_eq!(t["brightness"].counts(), (500, 0));
        assert_eq!(t["brightness"].mismatched(), 0);
        let r = assess(
            500,
            &t,
            &p,
            &NewFeatures::default(),
            &DataQualitySettings::default(),
        );
        assert_eq!(r.issues, 0, "{r:#?}");
    }

    #[test]
    fn new_feature_names_are_capped() {
        let mut new = NewFeatures::default();
        for i in 0..100 {
            new.name(&format!("f{i}"));
            new.name("f0");
        }
        assert_eq!(new.names.len(), MAX_NEW_NAMES);
        assert_eq!(new.names["f0"], 101);
        assert_eq!(new.other, 100 - MAX_NEW_NAMES as u64);
    }
}

#[cfg(test)]
mod engine_tests {
    use crate::config::Config;
    use crate::monitor::Engine;
    use crate::quality::Vocabulary;
    use crate::source::generate::{GenerateSpec, Scenario};

    /// What the engine counts as a new feature: a key with a value that the
    /// baseline neither profiled nor saw while learning.
    #[test]
    fn null_keys_and_unprofiled_features_are_not_new() {
        let config = Config::from_toml(
            "[windows]\nkind = \"count\"\nevents = 500\n[baseline]\nlearn_events = 500\n",
            "t",
            &|_| None,
        )
        .unwrap();
        let mut e = Engine::new(config, Vocabulary::english(), Default::default());
        let lines = crate::testkit::lines(&GenerateSpec::new(Scenario::Stable, 1_500));
        let mut reports = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let mut v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let f = v["features"].as_object_mut().unwrap();
            // Always null: a path the producer does not fill.
            f.insert("latency_path".into(), serde_json::Value::Null);
            // Mixed kinds while learning: left out of the baseline.
            f.insert(
                "mixed".into(),
                if i % 2 == 0 { 1.into() } else { "one".into() },
            );
            // Appears with values after the baseline is learned.
            if i >= 1_000 {
                f.insert("fresh".into(), 7.into());
            }
            reports.extend(e.process(&serde_json::to_vec(&v).unwrap()).unwrap());
        }
        assert_eq!(reports.len(), 2);
        let first = &reports[0].data_quality.new_features;
        assert_eq!((first.events, first.flagged), (0, false), "{first:?}");
        let second = &reports[1].data_quality.new_features;
        assert_eq!(second.names, ["fresh"]);
        assert_eq!(second.events, 500);
        assert!(second.flagged);
    }
}
