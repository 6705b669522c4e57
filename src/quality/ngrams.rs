//! Tokens as integer ids and n-gram counts (n = 1..4), the common input of
//! BLEU and CIDEr-D. N-grams keep first-occurrence order, as the reference
//! implementation's Python dicts do, so sums run in the same order.

use rustc_hash::FxHashMap;

/// Longest n-gram used by BLEU and CIDEr-D.
pub const MAX_N: usize = 4;

/// An n-gram of up to four token ids; unused slots hold `u32::MAX`.
pub type Ngram = [u32; MAX_N];

/// Maps token text to ids. One interner serves a whole scored set.
#[derive(Debug, Default)]
pub struct Interner {
    ids: FxHashMap<String, u32>,
}

impl Interner {
    /// Ids of the whitespace-separated tokens of `text`.
    pub fn ids(&mut self, text: &str) -> Vec<u32> {
        text.split_whitespace()
            .map(|t| match self.ids.get(t) {
                Some(&id) => id,
                None => {
                    let id = self.ids.len() as u32;
                    self.ids.insert(t.to_owned(), id);
                    id
                }
            })
            .collect()
    }

    /// Token text by id.
    pub fn names(&self) -> Vec<&str> {
        let mut names = vec![""; self.ids.len()];
        for (t, &id) in &self.ids {
            names[id as usize] = t;
        }
        names
    }
}

/// Number of tokens in an n-gram.
pub fn order(g: &Ngram) -> usize {
    g.iter().take_while(|&&t| t != u32::MAX).count()
}

/// Counts of every n-gram of order 1..=4, in first-occurrence order (by order,
/// then position), like pycocoevalcap's `precook`.
#[derive(Debug, Clone, Default)]
pub struct NgramCounts {
    pub grams: Vec<(Ngram, u32)>,
    index: FxHashMap<Ngram, usize>,
    /// Number of tokens.
    pub len: usize,
}

impl NgramCounts {
    pub fn new(ids: &[u32]) -> Self {
        let mut c = NgramCounts {
            grams: Vec::new(),
            index: FxHashMap::default(),
            len: ids.len(),
        };
        for k in 1..=MAX_N {
            for w in ids.windows(k) {
                let mut g = [u32::MAX; MAX_N];
                g[..k].copy_from_slice(w);
                match c.index.get(&g) {
                    Some(&i) => c.grams[i].1 += 1,
                    None => {
                        c.index.insert(g, c.grams.len());
                        c.grams.push((g, 1));
                    }
                }
            }
        }
        c
    }

    pub fn get(&self, g: &Ngram) -> u32 {
        self.index.get(g).map_or(0, |&i| self.grams[i].1)
    }
}
