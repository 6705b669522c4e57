//! Gathering one feature's values from a file into a [`FeatureData`], with the
//! kind inferred from the values unless the config fixes it.

use std::collections::HashMap;

use crate::config::FeatureKind;
use crate::monitor::tracker::{MAX_CATEGORIES, OTHER};
use crate::sketch::CategoryCounts;

/// All values of one feature in one dataset, ready for exact tests.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureData {
    Numeric {
        /// Non-null, finite values, ascending.
        values: Vec<f64>,
        /// Nulls and NaNs.
        missing: u64,
        /// What the numbers stand for: the value itself, a text's token count
        /// or an embedding's norm.
        source: FeatureKind,
    },
    Categorical {
        counts: CategoryCounts,
        missing: u64,
    },
}

impl FeatureData {
    pub fn is_numeric(&self) -> bool {
        matches!(self, Self::Numeric { .. })
    }
    /// See [`super::FeatureProfile::is_plain_number`].
    pub fn is_plain_number(&self) -> bool {
        matches!(self, Self::Numeric { source, .. } if *source == FeatureKind::Numeric)
    }
    pub fn count(&self) -> u64 {
        match self {
            Self::Numeric { values, .. } => values.len() as u64,
            Self::Categorical { counts, .. } => counts.total(),
        }
    }
    pub fn missing(&self) -> u64 {
        match self {
            Self::Numeric { missing, .. } | Self::Categorical { missing, .. } => *missing,
        }
    }
    pub fn kind_name(&self) -> &'static str {
        if self.is_numeric() {
            "numeric"
        } else {
            "categorical"
        }
    }
    /// Fold another part of the same feature (e.g. a second input file) in.
    pub fn merge(&mut self, other: FeatureData) -> Result<(), String> {
        match (self, other) {
            (
                Self::Numeric {
                    values, missing, ..
                },
                Self::Numeric {
                    values: v2,
                    missing: m2,
                    ..
                },
            ) => {
                values.extend(v2);
                values.sort_by(f64::total_cmp);
                *missing += m2;
                Ok(())
            }
            (
                Self::Categorical { counts, missing },
                Self::Categorical {
                    counts: c2,
                    missing: m2,
                },
            ) => {
                counts.merge(&c2);
                *missing += m2;
                Ok(())
            }
            (a, b) => Err(format!(
                "is {} in one input and {} in another",
                a.kind_name(),
                b.kind_name()
            )),
        }
    }
}

/// Accumulates values of one feature as they are read.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Collector {
    numbers: Vec<f64>,
    categories: HashMap<String, u64>,
    category_total: u64,
    /// Strings among the categories that parse as numbers (for the mixed-type check).
    numeric_strings: u64,
    /// Token counts of text values (the text itself is not kept: learning
    /// events may carry captions of up to `limits.max_event_bytes`).
    #[serde(default)]
    text_lengths: Vec<f64>,
    norms: Vec<f64>,
    missing: u64,
    kind: Option<FeatureKind>,
}

impl Collector {
    /// A collector for a feature whose kind the config fixes (or `None`).
    pub fn new(kind: Option<FeatureKind>) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    /// Values pushed so far, nulls included.
    pub fn len(&self) -> u64 {
        self.numbers.len() as u64
            + self.category_total
            + self.text_lengths.len() as u64
            + self.norms.len() as u64
            + self.missing
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push_null(&mut self) {
        self.missing += 1;
    }

    pub fn push_number(&mut self, x: f64) {
        match self.kind {
            Some(FeatureKind::Categorical) => self.push_category(&format_number(x)),
            _ if x.is_nan() => self.missing += 1,
            _ => self.numbers.push(x),
        }
    }

    pub fn push_category(&mut self, s: &str) {
        if self.kind == Some(FeatureKind::Text) {
            self.text_lengths.push(s.split_whitespace().count() as f64);
            return;
        }
        if self.kind == Some(FeatureKind::Numeric) {
            // Forced numeric: strings must parse; keep them aside for the error.
            match s.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => self.numbers.push(x),
                _ => self.bump_category(s),
            }
            return;
        }
        if self.kind.is_none() && s.trim().parse::<f64>().is_ok_and(f64::is_finite) {
            self.numeric_strings += 1;
        }
        self.bump_category(s);
    }

    /// Counted under its name while fewer than [`MAX_CATEGORIES`] are known,
    /// else under [`OTHER`], as the window trackers count them.
    fn bump_category(&mut self, s: &str) {
        self.category_total += 1;
        if let Some(c) = self.categories.get_mut(s) {
            *c += 1;
        } else if self.categories.len() < MAX_CATEGORIES {
            self.categories.insert(s.to_owned(), 1);
        } else {
            *self.categories.entry(OTHER.to_owned()).or_default() += 1;
        }
    }

    pub fn push_vector(&mut self, v: &[f64]) {
        self.norms.push(v.iter().map(|x| x * x).sum::<f64>().sqrt());
    }

    /// Finish into feature data, or say what is wrong with the values.
    pub fn finish(self) -> Result<FeatureData, String> {
        let Collector {
            mut numbers,
            categories,
            category_total,
            numeric_strings,
            text_lengths,
            norms,
            missing,
            kind,
        } = self;
        let kinds_seen = [
            !numbers.is_empty(),
            category_total > 0,
            !text_lengths.is_empty(),
            !norms.is_empty(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if kinds_seen > 1 {
            return Err(format!(
                "mixed types: {} numbers, {} strings or booleans, {} vectors (set `kind` for this feature in the config)",
                numbers.len(),
                category_total + text_lengths.len() as u64,
                norms.len()
            ));
        }
        let data = if !norms.is_empty() || kind == Some(FeatureKind::Embedding) {
            let mut values = norms;
            values.sort_by(f64::total_cmp);
            FeatureData::Numeric {
                values,
                missing,
                source: FeatureKind::Embedding,
            }
        } else if !text_lengths.is_empty() || kind == Some(FeatureKind::Text) {
            let mut values = text_lengths;
            values.sort_by(f64::total_cmp);
            FeatureData::Numeric {
                values,
                missing,
                source: FeatureKind::Text,
            }
        } else if category_total > 0 {
            if kind == Some(FeatureKind::Numeric) {
                let example = categories.keys().next().cloned().unwrap_or_default();
                return Err(format!("configured numeric but {category_total} value(s) are not numbers, e.g. {example:?}"));
            }
            if numeric_strings > 0 && numeric_strings < category_total {
                return Err(format!(
                    "mixed types: {numeric_strings} of {category_total} strings are numbers (set `kind` for this feature in the config)"
                ));
            }
            let mut counts = CategoryCounts::default();
            for (k, v) in categories {
                counts.add(&k, v);
            }
            FeatureData::Categorical { counts, missing }
        } else if kind == Some(FeatureKind::Categorical) {
            FeatureData::Categorical {
                counts: CategoryCounts::default(),
                missing,
            }
        } else {
            numbers.sort_by(f64::total_cmp);
            FeatureData::Numeric {
                values: numbers,
                missing,
                source: FeatureKind::Numeric,
            }
        };
        Ok(data)
    }
}

/// Numbers used as categories print without a trailing `.0` when integral.
fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_numeric_and_counts_nan_as_missing() {
        let mut c = Collector::new(None);
        for x in [3.0, f64::NAN, 1.0] {
            c.push_number(x);
        }
        c.push_null();
        assert_eq!(
            c.finish().unwrap(),
            FeatureData::Numeric {
                values: vec![1.0, 3.0],
                missing: 2,
                source: FeatureKind::Numeric
            }
        );
    }

    #[test]
    fn mixed_numbers_and_strings_is_an_error() {
        let mut c = Collector::new(None);
        c.push_number(1.0);
        c.push_category("a");
        assert!(c.finish().unwrap_err().starts_with("mixed types"));
        let mut c = Collector::new(None);
        c.push_category("12");
        c.push_category("abc");
        assert!(c
            .finish()
            .unwrap_err()
            .contains("1 of 2 strings are numbers"));
    }

    #[test]
    fn configured_kind_coerces() {
        let mut c = Collector::new(Some(FeatureKind::Categorical));
        c.push_number(2.0);
        c.push_category("x");
        let FeatureData::Categorical { counts, .. } = c.finish().unwrap() else {
            panic!()
        };
        assert_eq!(counts.0.keys().collect::<Vec<_>>(), ["2", "x"]);

        let mut c = Collector::new(Some(FeatureKind::Text));
        c.push_category("a dog on a sofa");
        let FeatureData::Numeric { values, source, .. } = c.finish().unwrap() else {
            panic!()
        };
        assert_eq!((values, source), (vec![5.0], FeatureKind::Text));
    }
}
