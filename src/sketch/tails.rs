//! The exact smallest and largest values of a stream, bounded. Quantile
//! sketches lose most detail in the tails, which is where the Wasserstein
//! distance is most sensitive; keeping a few hundred extreme values exactly
//! makes W1 from a sketch accurate (see `tests/window_accuracy.rs`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

/// Values kept at each end.
pub const DEFAULT_TAIL: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Total(f64);

impl Eq for Total {}
impl PartialOrd for Total {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Total {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// The `n` smallest and `n` largest values seen.
#[derive(Debug, Clone, Default)]
pub struct Tails {
    n: usize,
    /// Max-heap of the smallest values (the top is the largest of them).
    low: BinaryHeap<Total>,
    /// Max-heap of negated largest values (the top is the smallest of them).
    high: BinaryHeap<std::cmp::Reverse<Total>>,
}

impl Tails {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            low: BinaryHeap::with_capacity(n + 1),
            high: BinaryHeap::with_capacity(n + 1),
        }
    }

    pub fn push(&mut self, x: f64) {
        if self.n == 0 {
            return;
        }
        if self.low.len() < self.n {
            self.low.push(Total(x));
        } else if x < self.low.peek().expect("full").0 {
            self.low.pop();
            self.low.push(Total(x));
        }
        if self.high.len() < self.n {
            self.high.push(std::cmp::Reverse(Total(x)));
        } else if x > self.high.peek().expect("full").0 .0 {
            self.high.pop();
            self.high.push(std::cmp::Reverse(Total(x)));
        }
    }

    /// The kept smallest values, ascending.
    pub fn low(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.low.iter().map(|t| t.0).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The kept largest values, ascending.
    pub fn high(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.high.iter().map(|t| t.0 .0).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn memory_bytes(&self) -> usize {
        (self.low.capacity() + self.high.capacity()) * 8
    }
}

/// Serialized as the two sorted lists.
#[derive(Serialize, Deserialize)]
struct TailsRepr {
    n: usize,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl Serialize for Tails {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TailsRepr {
            n: self.n,
            low: self.low(),
            high: self.high(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tails {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = TailsRepr::deserialize(d)?;
        let mut t = Tails::new(r.n);
        t.low = r.low.into_iter().map(Total).collect();
        t.high = r
            .high
            .into_iter()
            .map(|x| std::cmp::Reverse(Total(x)))
            .collect();
        Ok(t)
    }
}

impl PartialEq for Tails {
    fn eq(&self, o: &Self) -> bool {
        self.n == o.n && self.low() == o.low() && self.high() == o.high()
    }
}

/// Replace the sketch's lowest and highest `low.len()` / `high.len()` units of
/// weight by the exact values. `weighted` is ascending (value, weight) with
/// total weight `count`; the tails were kept over the same stream.
pub fn with_exact_tails(
    weighted: &[(f64, u64)],
    count: u64,
    low: &[f64],
    high: &[f64],
) -> Vec<(f64, u64)> {
    let (tl, th) = (low.len() as u64, high.len() as u64);
    // Small streams: every weight is 1 and the sketch is exact already.
    if weighted.iter().all(|&(_, w)| w == 1) || count <= tl + th {
        return weighted.to_vec();
    }
    let mut out: Vec<(f64, u64)> = low.iter().map(|&x| (x, 1)).collect();
    let mut skip_low = tl;
    let mut middle: Vec<(f64, u64)> = Vec::with_capacity(weighted.len());
    for &(x, w) in weighted {
        let cut = skip_low.min(w);
        skip_low -= cut;
        if w > cut {
            middle.push((x, w - cut));
        }
    }
    let mut skip_high = th;
    for item in middle.iter_mut().rev() {
        let cut = skip_high.min(item.1);
        skip_high -= cut;
        item.1 -= cut;
        if skip_high == 0 {
            break;
        }
    }
    out.extend(middle.into_iter().filter(|&(_, w)| w > 0));
    out.extend(high.iter().map(|&x| (x, 1)));
    // Exact tail values and sketch items interleave near the cut: keep order.
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_extremes() {
        let mut t = Tails::new(3);
        for x in [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0] {
            t.push(x);
        }
        assert_eq!(t.low(), [1.0, 2.0, 3.0]);
        assert_eq!(t.high(), [7.0, 8.0, 9.0]);
        let back: Tails = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn replacing_tails_conserves_weight() {
        let weighted = [(0.0, 4), (1.0, 4), (2.0, 4), (3.0, 4)];
        let out = with_exact_tails(&weighted, 16, &[-1.0, -0.5], &[3.5, 9.0, 10.0]);
        assert_eq!(out.iter().map(|(_, w)| w).sum::<u64>(), 16);
        assert_eq!(out.first(), Some(&(-1.0, 1)));
        assert_eq!(out.last(), Some(&(10.0, 1)));
    }
}
