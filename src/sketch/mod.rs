//! Mergeable, serializable summaries of one feature's values. They know
//! nothing about models or windows; `baseline` stores them in profiles and
//! `monitor` compares them.

pub mod kll;
pub mod quantile;
pub mod tails;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use kll::Kll;
pub use quantile::{QuantileFn, QuantileSummary};
pub use tails::Tails;

/// Count, mean, variance (population), min and max, by Welford's update with
/// Chan et al.'s parallel merge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Self {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.mean += delta * other.count as f64 / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Population standard deviation (ddof 0).
    pub fn std(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            (self.m2 / self.count as f64).max(0.0).sqrt()
        }
    }
}

/// Counts per category value (strings; booleans as "true"/"false").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CategoryCounts(pub BTreeMap<String, u64>);

impl CategoryCounts {
    pub fn add(&mut self, value: &str, n: u64) {
        if let Some(c) = self.0.get_mut(value) {
            *c += n;
        } else {
            self.0.insert(value.to_owned(), n);
        }
    }

    pub fn merge(&mut self, other: &CategoryCounts) {
        for (k, &v) in &other.0 {
            self.add(k, v);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Both count vectors over the union of categories with a positive count
    /// in either, in category order.
    pub fn aligned(&self, other: &CategoryCounts) -> (Vec<String>, Vec<u64>, Vec<u64>) {
        let mut names: Vec<&String> = self.0.keys().chain(other.0.keys()).collect();
        names.sort();
        names.dedup();
        let mut out = (Vec::new(), Vec::new(), Vec::new());
        for name in names {
            let a = self.0.get(name).copied().unwrap_or(0);
            let b = other.0.get(name).copied().unwrap_or(0);
            if a + b > 0 {
                out.0.push(name.clone());
                out.1.push(a);
                out.2.push(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn moments(v: &[f64]) -> Moments {
        let mut m = Moments::default();
        v.iter().for_each(|&x| m.push(x));
        m
    }

    proptest! {
        #[test]
        fn moments_merge_equals_sequential(
            a in prop::collection::vec(-1e3f64..1e3, 0..50),
            b in prop::collection::vec(-1e3f64..1e3, 0..50),
            c in prop::collection::vec(-1e3f64..1e3, 0..50),
        ) {
            let all: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
            let seq = moments(&all);
            // (a + b) + c and a + (b + c): associative up to rounding.
            let mut left = moments(&a);
            left.merge(&moments(&b));
            left.merge(&moments(&c));
            let mut bc = moments(&b);
            bc.merge(&moments(&c));
            let mut right = moments(&a);
            right.merge(&bc);
            for m in [left, right] {
                prop_assert_eq!(m.count, seq.count);
                if seq.count > 0 {
                    prop_assert!((m.mean - seq.mean).abs() < 1e-9);
                    prop_assert!((m.std() - seq.std()).abs() < 1e-7);
                    prop_assert_eq!(m.min, seq.min);
                    prop_assert_eq!(m.max, seq.max);
                }
            }
        }

        #[test]
        fn category_counts_merge_is_commutative(
            a in prop::collection::vec("[a-d]", 0..30),
            b in prop::collection::vec("[a-d]", 0..30),
        ) {
            let count = |v: &[String]| { let mut c = CategoryCounts::default(); v.iter().for_each(|s| c.add(s, 1)); c };
            let mut ab = count(&a);
            ab.merge(&count(&b));
            let mut ba = count(&b);
            ba.merge(&count(&a));
            prop_assert_eq!(&ab, &ba);
            prop_assert_eq!(ab.total(), (a.len() + b.len()) as u64);
        }
    }

    #[test]
    fn aligned_covers_union_without_empty_categories() {
        let mut a = CategoryCounts::default();
        a.add("x", 2);
        a.add("z", 0);
        let mut b = CategoryCounts::default();
        b.add("y", 3);
        let (names, ca, cb) = a.aligned(&b);
        assert_eq!(names, ["x", "y"]);
        assert_eq!((ca, cb), (vec![2, 0], vec![0, 3]));
    }
}
