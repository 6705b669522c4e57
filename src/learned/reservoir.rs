//! A bounded uniform sample of a stream (Vitter's algorithm R): the learned
//! checks compare window samples of at most `capacity` rows or vectors,
//! whatever the event rate. Seeded, and serializable with its generator's
//! state, so a checkpoint restore continues the same sample.

use serde::{Deserialize, Serialize};

use super::SplitMix;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservoir<T> {
    capacity: usize,
    seen: u64,
    rng: u64,
    items: Vec<T>,
}

impl<T> Reservoir<T> {
    pub fn new(capacity: usize, seed: u64) -> Self {
        Self {
            capacity,
            seen: 0,
            rng: seed,
            items: Vec::new(),
        }
    }

    /// A reservoir that has seen `seen` items and kept `items`, going on
    /// with generator state `seed`.
    pub fn from_items(capacity: usize, seen: u64, mut items: Vec<T>, seed: u64) -> Self {
        items.truncate(capacity);
        Self {
            capacity,
            seen: seen.max(items.len() as u64),
            rng: seed,
            items,
        }
    }

    /// Offer one item: kept with probability `capacity / seen`, replacing a
    /// uniformly chosen one once full.
    pub fn offer(&mut self, item: T) {
        self.offer_with(|| item);
    }

    /// [`Reservoir::offer`], making the item only when it is kept (most
    /// offers of a long stream are not).
    pub fn offer_with(&mut self, item: impl FnOnce() -> T) {
        self.seen += 1;
        if self.items.len() < self.capacity {
            self.items.push(item());
            return;
        }
        let mut g = SplitMix(self.rng);
        let j = g.below_u64(self.seen);
        self.rng = g.0;
        if let Ok(j) = usize::try_from(j) {
            if j < self.capacity {
                self.items[j] = item();
            }
        }
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }

    pub fn into_items(self) -> Vec<T> {
        self.items
    }

    /// Items offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_everything_below_it() {
        let mut r = Reservoir::new(10, 1);
        for i in 0..7 {
            r.offer(i);
        }
        assert_eq!(r.items(), &[0, 1, 2, 3, 4, 5, 6]);
        for i in 7..100_000 {
            r.offer(i);
        }
        assert_eq!(r.items().len(), 10);
        assert_eq!(r.seen(), 100_000);
    }

    /// Every position of a 100-item stream ends in a 10-item sample with
    /// probability 1/10: over 20,000 seeds each is kept 2,000 times on
    /// average (binomial standard deviation 42); all within 5 of them.
    #[test]
    fn every_item_is_equally_likely_to_be_kept() {
        let mut kept = [0u32; 100];
        for seed in 0..20_000 {
            let mut r = Reservoir::new(10, seed);
            for i in 0..100 {
                r.offer(i);
            }
            for &i in r.items() {
                kept[i] += 1;
            }
        }
        for (i, &k) in kept.iter().enumerate() {
            assert!((1790..=2210).contains(&k), "item {i} kept {k} times");
        }
    }

    #[test]
    fn the_same_seed_and_stream_give_the_same_sample_across_a_restore() {
        let mut a = Reservoir::new(5, 42);
        for i in 0..50 {
            a.offer(i);
        }
        let saved = serde_json::to_string(&a).unwrap();
        let mut b: Reservoir<i32> = serde_json::from_str(&saved).unwrap();
        for i in 50..500 {
            a.offer(i);
            b.offer(i);
        }
        assert_eq!(a, b);
    }
}
