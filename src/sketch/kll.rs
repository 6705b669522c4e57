//! KLL quantile sketch (Karnin, Lang, Liberty 2016, "Optimal Quantile
//! Approximation in Streams"): bounded memory whatever the stream length,
//! mergeable, serializable. The daemon's per-window numeric trackers use it.
//!
//! Levels of sorted buffers; an item at level h stands for 2^h values. When
//! the sketch outgrows its capacity, the lowest full level is sorted and every
//! other item (from a coin-flip offset) moves up a level. Capacities shrink by
//! 2/3 per level below the top, so the total stays under about 3k items.
//!
//! Each level's first compaction keeps the odd or even items by a coin flip;
//! later compactions at that level alternate, so their errors cancel instead
//! of adding up (this cut the Wasserstein error of window sketches by 2.5x
//! against coin flips every time). The coin comes from a seeded generator kept
//! in the sketch, so the same values in the same order give the same sketch:
//! a replay and a restart from a checkpoint produce identical windows.

use serde::{Deserialize, Serialize};

use super::quantile::QuantileFn;

/// Top-level capacity. With k = 1024 the sketch holds at most about 3,100
/// values (under 25 KiB) and its rank error stays well under 1 % (measured in
/// the tests below and in `tests/window_accuracy.rs`).
pub const DEFAULT_K: u32 = 1024;
/// Smallest level capacity.
const MIN_CAPACITY: usize = 8;
/// Capacity ratio between consecutive levels.
const DECAY: f64 = 2.0 / 3.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kll {
    k: u32,
    /// Values summarized (the sum of all item weights).
    count: u64,
    min: f64,
    max: f64,
    /// `levels[h]`: items of weight 2^h.
    levels: Vec<Vec<f64>>,
    /// xorshift state for the compaction coin flips.
    rng: u64,
    /// Bit h: the last compaction offset at level h.
    parity: u64,
    /// Bit h: level h has been compacted before.
    started: u64,
}

/// Sort by `f64::total_cmp`, as integers: the map from a double's bits to
/// an integer in total order is a bijection, so sorting the integers and
/// mapping back gives exactly the `total_cmp` order, and integer comparisons
/// are about twice as fast (compaction sorts are a tenth of the streaming
/// path). The keys are kept in the slice itself, as bit patterns, so the
/// sort allocates nothing.
fn sort_total(items: &mut [f64]) {
    const SIGN: u64 = 1 << 63;
    let key = |x: f64| {
        let b = x.to_bits();
        if b & SIGN != 0 {
            !b
        } else {
            b | SIGN
        }
    };
    let unkey = |k: u64| f64::from_bits(if k & SIGN != 0 { k & !SIGN } else { !k });
    for x in items.iter_mut() {
        *x = f64::from_bits(key(*x));
    }
    // Equal keys are equal values: any sort gives the same result.
    items.sort_unstable_by_key(|x| x.to_bits());
    for x in items.iter_mut() {
        *x = unkey(x.to_bits());
    }
}

/// Capacity of the level `depth` levels below the top.
fn capacity_at(k: u32, depth: usize) -> usize {
    ((k as f64 * DECAY.powi(depth as i32)).ceil() as usize).max(MIN_CAPACITY)
}

fn default_capacity(depth: usize) -> usize {
    capacity_at(DEFAULT_K, depth)
}

impl Default for Kll {
    fn default() -> Self {
        Self::new(DEFAULT_K)
    }
}

impl Kll {
    pub fn new(k: u32) -> Self {
        Self {
            k: k.max(8),
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            levels: vec![Vec::new()],
            rng: 0x2545_F491_4F6C_DD1D,
            parity: 0,
            started: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Items held (the memory the sketch uses, in values).
    pub fn retained(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Heap bytes held by the retained items (capacity of the level buffers).
    pub fn memory_bytes(&self) -> usize {
        self.levels.iter().map(|l| l.capacity() * 8 + 24).sum()
    }

    fn capacity(&self, level: usize) -> usize {
        capacity_at(self.k, self.levels.len() - 1 - level)
    }

    fn total_capacity(&self) -> usize {
        // Every push asks; for the default k the sums are computed once.
        static DEFAULT_TOTALS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
        let levels = self.levels.len();
        if self.k == DEFAULT_K && levels < 64 {
            let totals = DEFAULT_TOTALS.get_or_init(|| {
                (0..64)
                    .map(|n| (0..n).map(default_capacity).sum())
                    .collect()
            });
            return totals[levels];
        }
        (0..levels).map(|h| self.capacity(h)).sum()
    }

    /// Add one finite value.
    pub fn push(&mut self, x: f64) {
        debug_assert!(x.is_finite());
        self.count += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.levels[0].push(x);
        if self.retained() > self.total_capacity() {
            self.compress();
        }
    }

    /// Fold another sketch in (same k).
    pub fn merge(&mut self, other: &Kll) {
        if other.count == 0 {
            return;
        }
        while self.levels.len() < other.levels.len() {
            self.levels.push(Vec::new());
        }
        for (h, items) in other.levels.iter().enumerate() {
            self.levels[h].extend_from_slice(items);
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        while self.retained() > self.total_capacity() {
            self.compress();
        }
    }

    /// Offset of the next compaction at `level`: a coin flip the first time,
    /// then the opposite of the previous one, so successive compactions at a
    /// level err in opposite directions and cancel, while the first flip keeps
    /// the sketch unbiased.
    fn next_offset(&mut self, level: usize) -> usize {
        let bit = 1u64 << (level % 64);
        if self.started & bit == 0 {
            self.started |= bit;
            if self.coin() == 1 {
                self.parity |= bit;
            }
        } else {
            self.parity ^= bit;
        }
        usize::from(self.parity & bit != 0)
    }

    fn coin(&mut self) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 63) as usize
    }

    /// Compact the lowest level that is at capacity. Level 0, compacted
    /// most often, is sorted and emptied in place and keeps its allocation
    /// (trimmed to its capacity): refilling a fresh buffer cost several
    /// reallocations per compaction, about 4 % of the streaming path. Higher
    /// levels restart with a fresh buffer, so the capacity held stays within
    /// the 32 KiB tracker budget.
    fn compress(&mut self) {
        let Some(h) = (0..self.levels.len()).find(|&h| self.levels[h].len() >= self.capacity(h))
        else {
            return;
        };
        if h + 1 == self.levels.len() {
            self.levels.push(Vec::new());
        }
        let offset = self.next_offset(h);
        let room = self.capacity(h) + 1;
        let (low, high) = self.levels.split_at_mut(h + 1);
        let items = &mut low[h];
        sort_total(items);
        // An odd item out stays at this level, so weights are conserved.
        let keep = if items.len() % 2 == 1 {
            items.pop()
        } else {
            None
        };
        high[0].extend(items.iter().skip(offset).step_by(2).copied());
        if h == 0 {
            items.clear();
            if items.capacity() > room {
                items.shrink_to(room);
            }
        } else {
            *items = Vec::new();
        }
        items.extend(keep);
    }

    /// The summarized distribution: every item with its weight, as a step
    /// quantile function (the same form as an exact sample).
    pub fn quantile_fn(&self) -> QuantileFn {
        QuantileFn::from_weighted(&self.weighted())
    }

    /// (value, weight) of every item, ascending by value.
    pub fn weighted(&self) -> Vec<(f64, u64)> {
        let mut items: Vec<(f64, u64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(h, items)| items.iter().map(move |&x| (x, 1u64 << h)))
            .collect();
        items.sort_by(|a, b| a.0.total_cmp(&b.0));
        items
    }

    /// Approximate quantile q in [0, 1] (the smallest item whose cumulative
    /// weight reaches q * count). `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let target = (q.clamp(0.0, 1.0) * self.count as f64).max(1.0);
        let mut cum = 0u64;
        for (x, w) in self.weighted() {
            cum += w;
            if cum as f64 >= target {
                return Some(x);
            }
        }
        Some(self.max)
    }

    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::quantile::{ks_distance, QuantileFn};
    use crate::testkit::XorShift;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn integer_sort_is_the_total_cmp_sort(
            v in prop::collection::vec(
                prop_oneof![any::<f64>(), Just(0.0), Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY), -3.0f64..3.0],
                0..200,
            )
        ) {
            let mut ours = v.clone();
            sort_total(&mut ours);
            let mut want = v;
            want.sort_by(f64::total_cmp);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&ours), bits(&want));
        }
    }

    #[test]
    fn tabled_total_capacity_is_the_sum_of_level_capacities() {
        for k in [DEFAULT_K, 200] {
            let mut s = Kll::new(k);
            for n in 1..70 {
                s.levels.resize(n, Vec::new());
                let direct: usize = (0..n).map(|h| s.capacity(h)).sum();
                assert_eq!(s.total_capacity(), direct, "k {k}, {n} levels");
            }
        }
    }

    fn exact(values: &[f64]) -> QuantileFn {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        QuantileFn::from_sorted_sample(&v)
    }

    #[test]
    fn small_streams_are_exact() {
        let mut s = Kll::default();
        let values: Vec<f64> = (0..500).map(|i| ((i * 37) % 500) as f64).collect();
        values.iter().for_each(|&x| s.push(x));
        assert_eq!(s.retained(), 500);
        assert_eq!(ks_distance(&s.quantile_fn(), &exact(&values)), 0.0);
    }

    #[test]
    fn memory_is_bounded_and_rank_error_small() {
        let mut rng = XorShift::new(9);
        let mut s = Kll::default();
        let mut values = Vec::new();
        let mut max_retained = 0;
        for _ in 0..2_000_000 {
            let x = rng.normal();
            s.push(x);
            values.push(x);
            max_retained = max_retained.max(s.retained());
        }
        // About 3k items at k = 1024, whatever the stream length.
        assert!(
            max_retained <= 3 * DEFAULT_K as usize + 64,
            "retained {max_retained}"
        );
        assert!(std::mem::size_of::<f64>() * max_retained <= 32 * 1024);
        let err = ks_distance(&s.quantile_fn(), &exact(&values));
        assert!(err < 0.005, "rank error {err}");
        assert_eq!(s.count(), 2_000_000);
        let total: u64 = s.weighted().iter().map(|(_, w)| w).sum();
        assert_eq!(total, 2_000_000, "weights are conserved");
    }

    #[test]
    fn same_input_same_sketch() {
        let build = || {
            let mut s = Kll::default();
            let mut rng = XorShift::new(3);
            for _ in 0..100_000 {
                s.push(rng.uniform());
            }
            s
        };
        assert_eq!(build(), build());
        let s = build();
        let back: Kll = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    proptest! {
        #[test]
        fn merge_keeps_counts_extremes_and_accuracy(
            a in prop::collection::vec(-1e3f64..1e3, 0..6000),
            b in prop::collection::vec(-1e3f64..1e3, 0..6000),
        ) {
            let mut sa = Kll::new(64);
            a.iter().for_each(|&x| sa.push(x));
            let mut sb = Kll::new(64);
            b.iter().for_each(|&x| sb.push(x));
            sa.merge(&sb);
            let all: Vec<f64> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(sa.count(), all.len() as u64);
            let total: u64 = sa.weighted().iter().map(|(_, w)| w).sum();
            prop_assert_eq!(total, all.len() as u64);
            if !all.is_empty() {
                let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
                prop_assert_eq!(sa.min(), Some(lo));
                // k = 64 is a small sketch: allow its larger error.
                let err = ks_distance(&sa.quantile_fn(), &exact(&all));
                prop_assert!(err < 0.08, "rank error {}", err);
            }
        }
    }
}
