//! Reference-free descriptors of one caption, and their aggregates over a set
//! (a file or a window): what flags a rotten captioner when nobody labels
//! anything.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::stats::binned::quantile_sorted;

/// Prefixes that add words but no description ("a picture of a dog").
pub const BOILERPLATE_PREFIXES: [&str; 14] = [
    "a picture of",
    "a photo of",
    "a photograph of",
    "an image of",
    "an illustration of",
    "image of",
    "picture of",
    "photo of",
    "this is",
    "there is",
    "there are",
    "this image shows",
    "the image shows",
    "in this image",
];

/// Words a finished English caption rarely ends on; ending on one suggests
/// truncation ("a man riding a").
pub const TRAILING_STOPWORDS: [&str; 38] = [
    "a", "an", "the", "of", "on", "in", "with", "and", "or", "to", "at", "for", "by", "from", "is",
    "are", "was", "were", "its", "his", "her", "their", "this", "that", "these", "those", "as",
    "into", "onto", "over", "under", "near", "next", "some", "while", "my", "your", "our",
];

/// Above this many tokens repeated n-grams are counted with a hash set
/// instead of pairwise comparison (bounded cost on degenerate captions).
const PAIRWISE_LIMIT: usize = 64;

/// A vocabulary for the out-of-vocabulary rate.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    words: FxHashSet<String>,
}

impl Vocabulary {
    /// One word per line; blank lines and `#` comments ignored; lowercased.
    pub fn from_text(text: &str) -> Self {
        let words = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect();
        Self { words }
    }

    /// The shipped English vocabulary: SCOWL size 50 (about 73,000 words) plus
    /// the PTB clitics.
    pub fn english() -> Self {
        Self::from_text(include_str!("english-words.txt"))
    }

    pub fn contains(&self, word: &str) -> bool {
        self.words.contains(word)
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// Descriptors of one tokenized caption.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Descriptors {
    pub token_count: usize,
    pub empty: bool,
    /// Distinct tokens / tokens (0 for an empty caption).
    pub type_token_ratio: f64,
    /// Share of n-grams that repeat an earlier n-gram of the same caption, n = 1..4.
    pub repeated_1gram_rate: f64,
    pub repeated_2gram_rate: f64,
    pub repeated_3gram_rate: f64,
    pub repeated_4gram_rate: f64,
    /// Longest run of one token repeated back to back ("a a a" is 3).
    pub longest_repeat_run: usize,
    pub boilerplate_prefix: bool,
    /// Ends on a stopword (likely truncated).
    pub ends_with_stopword: bool,
    /// Share of tokens not in the vocabulary.
    pub oov_rate: f64,
}

/// Describe a caption given as tokens.
pub fn describe(tokens: &[&str], vocab: &Vocabulary) -> Descriptors {
    let n = tokens.len();
    let rates: [f64; 4] = std::array::from_fn(|k| repeated_rate(tokens, k + 1));
    let distinct = n as f64 * (1.0 - rates[0]);
    let mut longest = 0;
    let mut run = 0;
    for (i, t) in tokens.iter().enumerate() {
        run = if i > 0 && tokens[i - 1] == *t {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
    }
    let oov = tokens.iter().filter(|t| !vocab.contains(t)).count();
    Descriptors {
        token_count: n,
        empty: n == 0,
        type_token_ratio: if n == 0 {
            0.0
        } else {
            (distinct / n as f64).clamp(0.0, 1.0)
        },
        repeated_1gram_rate: rates[0],
        repeated_2gram_rate: rates[1],
        repeated_3gram_rate: rates[2],
        repeated_4gram_rate: rates[3],
        longest_repeat_run: longest,
        boilerplate_prefix: BOILERPLATE_PREFIXES
            .iter()
            .any(|p| starts_with_words(tokens, p)),
        ends_with_stopword: tokens
            .last()
            .is_some_and(|t| TRAILING_STOPWORDS.contains(t)),
        oov_rate: if n == 0 { 0.0 } else { oov as f64 / n as f64 },
    }
}

fn starts_with_words(tokens: &[&str], prefix: &str) -> bool {
    prefix
        .split(' ')
        .enumerate()
        .all(|(i, w)| tokens.get(i) == Some(&w))
}

/// Share of the caption's n-grams that occurred earlier in it.
fn repeated_rate(tokens: &[&str], n: usize) -> f64 {
    if tokens.len() < n {
        return 0.0;
    }
    let total = tokens.len() - n + 1;
    let repeats = if tokens.len() <= PAIRWISE_LIMIT {
        (0..total)
            .filter(|&i| (0..i).any(|j| tokens[j..j + n] == tokens[i..i + n]))
            .count()
    } else {
        let mut seen: FxHashSet<&[&str]> = FxHashSet::default();
        tokens.windows(n).filter(|w| !seen.insert(w)).count()
    };
    repeats as f64 / total as f64
}

/// Mean and quantiles of one descriptor over a set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

impl Summary {
    /// `None` for an empty set.
    pub fn of(values: &mut [f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mean = crate::stats::numeric_sum::pairwise_sum(values) / values.len() as f64;
        Some(Self {
            mean,
            p10: quantile_sorted(values, 0.1),
            p50: quantile_sorted(values, 0.5),
            p90: quantile_sorted(values, 0.9),
        })
    }
}

/// Descriptor aggregates over a set of captions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetDescriptors {
    pub captions: usize,
    pub token_count: Option<Summary>,
    pub type_token_ratio: Option<Summary>,
    pub repeated_1gram_rate: Option<Summary>,
    pub repeated_2gram_rate: Option<Summary>,
    pub repeated_3gram_rate: Option<Summary>,
    pub repeated_4gram_rate: Option<Summary>,
    pub longest_repeat_run: Option<Summary>,
    pub oov_rate: Option<Summary>,
    /// Shares of captions with each flag.
    pub empty_rate: f64,
    pub boilerplate_prefix_rate: f64,
    pub ends_with_stopword_rate: f64,
    /// Distinct unigrams / unigrams over the whole set.
    pub distinct_1: f64,
    /// Distinct bigrams / bigrams over the whole set.
    pub distinct_2: f64,
    /// 1 - distinct captions / captions: how much the set repeats itself.
    pub duplicate_caption_share: f64,
    /// Share of the single most frequent caption (mode collapse).
    pub top_caption_share: f64,
}

/// Aggregate per-caption descriptors and the tokenized captions themselves.
pub fn summarize(items: &[Descriptors], captions: &[&str]) -> SetDescriptors {
    let m = items.len();
    let col =
        |f: fn(&Descriptors) -> f64| Summary::of(&mut items.iter().map(f).collect::<Vec<_>>());
    let rate = |f: fn(&Descriptors) -> bool| {
        if m == 0 {
            0.0
        } else {
            items.iter().filter(|d| f(d)).count() as f64 / m as f64
        }
    };
    let mut unigrams: FxHashSet<&str> = FxHashSet::default();
    let mut bigrams: FxHashSet<(&str, &str)> = FxHashSet::default();
    let (mut n1, mut n2) = (0usize, 0usize);
    let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
    for c in captions {
        let toks: Vec<&str> = c.split_whitespace().collect();
        n1 += toks.len();
        n2 += toks.len().saturating_sub(1);
        unigrams.extend(toks.iter().copied());
        bigrams.extend(toks.windows(2).map(|w| (w[0], w[1])));
        *counts.entry(c).or_default() += 1;
    }
    let share = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    SetDescriptors {
        captions: m,
        token_count: col(|d| d.token_count as f64),
        type_token_ratio: col(|d| d.type_token_ratio),
        repeated_1gram_rate: col(|d| d.repeated_1gram_rate),
        repeated_2gram_rate: col(|d| d.repeated_2gram_rate),
        repeated_3gram_rate: col(|d| d.repeated_3gram_rate),
        repeated_4gram_rate: col(|d| d.repeated_4gram_rate),
        longest_repeat_run: col(|d| d.longest_repeat_run as f64),
        oov_rate: col(|d| d.oov_rate),
        empty_rate: rate(|d| d.empty),
        boilerplate_prefix_rate: rate(|d| d.boilerplate_prefix),
        ends_with_stopword_rate: rate(|d| d.ends_with_stopword),
        distinct_1: share(unigrams.len(), n1),
        distinct_2: share(bigrams.len(), n2),
        duplicate_caption_share: if captions.is_empty() {
            0.0
        } else {
            1.0 - share(counts.len(), captions.len())
        },
        top_caption_share: share(counts.values().copied().max().unwrap_or(0), captions.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    #[test]
    fn table() {
        let v = Vocabulary::from_text("a\nman\nriding\nbike\npicture\nof\ndog");
        let d = describe(&toks("a man riding a bike"), &v);
        assert_eq!(
            (d.token_count, d.empty, d.longest_repeat_run),
            (5, false, 1)
        );
        assert!((d.type_token_ratio - 0.8).abs() < 1e-15);
        assert!((d.repeated_1gram_rate - 0.2).abs() < 1e-15);
        assert_eq!(d.repeated_2gram_rate, 0.0);
        assert!(!d.boilerplate_prefix && !d.ends_with_stopword);
        assert_eq!(d.oov_rate, 0.0);

        let d = describe(&toks("a picture of a dog dog dog on a"), &v);
        assert!(d.boilerplate_prefix && d.ends_with_stopword);
        assert_eq!(d.longest_repeat_run, 3);
        assert!((d.oov_rate - 1.0 / 9.0).abs() < 1e-15);
        // bigrams: "a picture","picture of","of a","a dog","dog dog","dog dog"(rep),"dog on","on a": 1 of 8
        assert!((d.repeated_2gram_rate - 1.0 / 8.0).abs() < 1e-15);

        let d = describe(&[], &v);
        assert!(d.empty && !d.ends_with_stopword);
        assert_eq!(
            (d.token_count, d.longest_repeat_run, d.type_token_ratio),
            (0, 0, 0.0)
        );
    }

    #[test]
    fn long_captions_use_the_hash_path_with_the_same_answer() {
        let words: Vec<String> = (0..200).map(|i| format!("w{}", i % 37)).collect();
        let t: Vec<&str> = words.iter().map(String::as_str).collect();
        for n in 1..=4 {
            let total = t.len() - n + 1;
            let distinct: FxHashSet<&[&str]> = t.windows(n).collect();
            let want = (total - distinct.len()) as f64 / total as f64;
            assert!((repeated_rate(&t, n) - want).abs() < 1e-15);
            assert!(
                (repeated_rate(&t[..60], n) - {
                    let d: FxHashSet<&[&str]> = t[..60].windows(n).collect();
                    (61 - n - d.len()) as f64 / (61 - n) as f64
                })
                .abs()
                    < 1e-15
            );
        }
    }

    #[test]
    fn set_aggregates() {
        let v = Vocabulary::english();
        assert!(v.len() > 70_000 && v.contains("bicycle") && v.contains("n't"));
        let caps = ["a dog on a sofa", "a dog on a sofa", "a cat", ""];
        let items: Vec<Descriptors> = caps.iter().map(|c| describe(&toks(c), &v)).collect();
        let s = summarize(&items, &caps);
        assert_eq!(s.captions, 4);
        assert_eq!(s.empty_rate, 0.25);
        assert_eq!(s.duplicate_caption_share, 0.25);
        assert_eq!(s.top_caption_share, 0.5);
        // unigrams: 5 + 5 + 2 = 12 tokens; distinct: a dog on sofa cat = 5
        assert!((s.distinct_1 - 5.0 / 12.0).abs() < 1e-15);
        assert_eq!(s.token_count.unwrap().p50, 3.5);
    }
}

/// What the per-window caption tracker needs of one caption: its descriptors
/// and a hash of its tokenized form (for the duplicate shares). A pure
/// function of the caption, so it can be computed off the tracking thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaptionFacts {
    pub descriptors: Descriptors,
    pub hash: u64,
}

impl CaptionFacts {
    pub fn of(caption: &str, vocab: &Vocabulary) -> Self {
        use std::hash::{Hash, Hasher};
        let tokenized = super::tokenize(caption);
        let tokens: Vec<&str> = tokenized.split_whitespace().collect();
        let descriptors = describe(&tokens, vocab);
        let mut h = rustc_hash::FxHasher::default();
        tokenized.hash(&mut h);
        Self {
            descriptors,
            hash: h.finish(),
        }
    }
}
