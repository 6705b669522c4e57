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
///
/// Words of up to 15 bytes (all but about a hundred) are held inline as
/// 128-bit keys (the bytes and the length), so a lookup touches one table
/// slot instead of following a pointer to a heap string: it runs for every
/// token of every caption.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    short: FxHashSet<u128>,
    long: FxHashSet<String>,
}

/// `word` as an inline key, if it fits.
#[inline]
fn inline_key(word: &str) -> Option<u128> {
    let b = word.as_bytes();
    if b.len() > 15 {
        return None;
    }
    // Built in a register: through a byte array and memcpy, the wide load
    // after the narrow stores stalled (a third of the caption path).
    let mut key = (b.len() as u128) << 120;
    for (i, &c) in b.iter().enumerate() {
        key |= u128::from(c) << (8 * i);
    }
    Some(key)
}

/// No inline key: a word of more than 15 bytes (a real key's top byte is its
/// length, at most 15).
const LONG: u128 = u128::MAX;

/// [`inline_key`] at compile time, for the word lists below.
const fn const_key(word: &str) -> u128 {
    let b = word.as_bytes();
    assert!(b.len() <= 15);
    let mut key = (b.len() as u128) << 120;
    let mut i = 0;
    while i < b.len() {
        key |= (b[i] as u128) << (8 * i);
        i += 1;
    }
    key
}

/// [`TRAILING_STOPWORDS`] as keys.
const STOPWORD_KEYS: [u128; TRAILING_STOPWORDS.len()] = {
    let mut k = [0; TRAILING_STOPWORDS.len()];
    let mut i = 0;
    while i < k.len() {
        k[i] = const_key(TRAILING_STOPWORDS[i]);
        i += 1;
    }
    k
};

/// [`BOILERPLATE_TOKENS`] as keys, padded with [`LONG`] (which no short
/// token has), and their lengths.
const BOILERPLATE_KEYS: [([u128; 3], usize); BOILERPLATE_TOKENS.len()] = {
    let mut k = [([LONG; 3], 0); BOILERPLATE_TOKENS.len()];
    let mut i = 0;
    while i < k.len() {
        let words = BOILERPLATE_TOKENS[i];
        let mut j = 0;
        while j < words.len() {
            k[i].0[j] = const_key(words[j]);
            j += 1;
        }
        k[i].1 = words.len();
        i += 1;
    }
    k
};

/// Whether a caption whose first tokens have `first` keys (as many as it has
/// tokens, up to three) opens with boilerplate, and whether one whose last
/// token has key `last` ends on a stopword.
fn prefix_flags(first: &[u128], last: Option<u128>) -> (bool, bool) {
    let boilerplate = BOILERPLATE_KEYS
        .iter()
        // Compared key by key: `==` on the slices calls libc's memcmp.
        .any(|(words, len)| {
            *len <= first.len() && words[..*len].iter().zip(first).all(|(a, b)| a == b)
        });
    let stopword = last.is_some_and(|k| k != LONG && STOPWORD_KEYS.contains(&k));
    (boilerplate, stopword)
}

/// Keys of a token list's first three and last tokens, for [`prefix_flags`].
fn end_keys(tokens: &[&str]) -> ([u128; 3], usize, Option<u128>) {
    let mut first = [LONG; 3];
    let m = tokens.len().min(3);
    for (k, t) in first.iter_mut().zip(tokens) {
        *k = inline_key(t).unwrap_or(LONG);
    }
    let last = tokens.last().map(|t| inline_key(t).unwrap_or(LONG));
    (first, m, last)
}

impl Vocabulary {
    /// One word per line; blank lines and `#` comments ignored; lowercased.
    pub fn from_text(text: &str) -> Self {
        let mut v = Self {
            short: FxHashSet::default(),
            long: FxHashSet::default(),
        };
        for w in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
        {
            match inline_key(&w) {
                Some(k) => v.short.insert(k),
                None => v.long.insert(w),
            };
        }
        v
    }

    /// The shipped English vocabulary: SCOWL size 50 (about 73,000 words) plus
    /// the PTB clitics.
    pub fn english() -> Self {
        Self::from_text(include_str!("english-words.txt"))
    }

    /// [`Vocabulary::contains`] given the word's inline key (or [`LONG`]).
    #[inline]
    fn contains_keyed(&self, key: u128, word: &str) -> bool {
        if key == LONG {
            self.long.contains(word)
        } else {
            self.short.contains(&key)
        }
    }

    pub fn contains(&self, word: &str) -> bool {
        match inline_key(word) {
            Some(k) => self.short.contains(&k),
            None => self.long.contains(word),
        }
    }

    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

/// [`BOILERPLATE_PREFIXES`] as tokens.
const BOILERPLATE_TOKENS: [&[&str]; 14] = [
    &["a", "picture", "of"],
    &["a", "photo", "of"],
    &["a", "photograph", "of"],
    &["an", "image", "of"],
    &["an", "illustration", "of"],
    &["image", "of"],
    &["picture", "of"],
    &["photo", "of"],
    &["this", "is"],
    &["there", "is"],
    &["there", "are"],
    &["this", "image", "shows"],
    &["the", "image", "shows"],
    &["in", "this", "image"],
];

/// Describe a caption given as tokens.
///
/// Up to [`PAIRWISE_LIMIT`] tokens (every real caption), each token is
/// numbered by its first occurrence, so the n-gram comparisons are between
/// small integers, and an n-gram is only compared when its (n-1)-gram
/// repeats. Longer token lists take a hash-set path with the same results.
pub fn describe(tokens: &[&str], vocab: &Vocabulary) -> Descriptors {
    let n = tokens.len();
    if n > PAIRWISE_LIMIT {
        return describe_long(tokens, vocab);
    }
    // ids[i]: index of the first token equal to tokens[i]. Tokens of up to
    // 15 bytes are compared by their inline keys (equal keys, equal tokens),
    // which also look them up in the vocabulary; longer ones as strings.
    let mut keys = [LONG; PAIRWISE_LIMIT];
    let mut ids = [0u8; PAIRWISE_LIMIT];
    let mut known = [false; PAIRWISE_LIMIT];
    let mut oov = 0;
    for (i, t) in tokens.iter().enumerate() {
        let k = inline_key(t).unwrap_or(LONG);
        keys[i] = k;
        let first = if k == LONG {
            (0..i).find(|&j| keys[j] == LONG && tokens[j] == *t)
        } else {
            (0..i).find(|&j| keys[j] == k)
        }
        .unwrap_or(i);
        ids[i] = first as u8;
        if first == i {
            known[i] = vocab.contains_keyed(k, t);
        }
        oov += usize::from(!known[first]);
    }
    let ids = &ids[..n];
    let mut rates = [0.0; 4];
    // repeats[i]: the current n-gram at i repeats an earlier one.
    let mut repeats = [false; PAIRWISE_LIMIT];
    for (k, rate) in rates.iter_mut().enumerate() {
        let len = k + 1;
        if n < len {
            break;
        }
        let total = n - len + 1;
        let mut count = 0;
        for i in 0..total {
            let r = if len == 1 {
                ids[i] as usize != i
            } else {
                repeats[i] && (0..i).any(|j| ids[j..j + len] == ids[i..i + len])
            };
            repeats[i] = r;
            count += usize::from(r);
        }
        *rate = count as f64 / total as f64;
    }
    let mut longest = 0;
    let mut run = 0;
    for i in 0..n {
        run = if i > 0 && ids[i - 1] == ids[i] {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
    }
    let m = n.min(3);
    let flags = prefix_flags(&keys[..m], n.checked_sub(1).map(|l| keys[l]));
    assemble(n, rates, longest, oov, flags)
}

/// The descriptors from their parts (the same arithmetic on both paths):
/// `n` tokens, and [`prefix_flags`].
fn assemble(
    n: usize,
    rates: [f64; 4],
    longest: usize,
    oov: usize,
    (boilerplate_prefix, ends_with_stopword): (bool, bool),
) -> Descriptors {
    let distinct = n as f64 * (1.0 - rates[0]);
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
        boilerplate_prefix,
        ends_with_stopword,
        oov_rate: if n == 0 { 0.0 } else { oov as f64 / n as f64 },
    }
}

/// [`describe`] for token lists beyond [`PAIRWISE_LIMIT`]: bounded cost on
/// degenerate captions.
fn describe_long(tokens: &[&str], vocab: &Vocabulary) -> Descriptors {
    let rates: [f64; 4] = std::array::from_fn(|k| repeated_rate(tokens, k + 1));
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
    let (first, m, last) = end_keys(tokens);
    assemble(
        tokens.len(),
        rates,
        longest,
        oov,
        prefix_flags(&first[..m], last),
    )
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

    /// The definitions, written plainly: what `describe` must compute.
    fn describe_plainly(tokens: &[&str], vocab: &Vocabulary) -> Descriptors {
        let n = tokens.len();
        let rates: [f64; 4] = std::array::from_fn(|k| {
            let len = k + 1;
            if n < len {
                return 0.0;
            }
            let total = n - len + 1;
            let repeats = (0..total)
                .filter(|&i| (0..i).any(|j| tokens[j..j + len] == tokens[i..i + len]))
                .count();
            repeats as f64 / total as f64
        });
        let longest = (0..n)
            .map(|i| tokens[i..].iter().take_while(|t| **t == tokens[i]).count())
            .max()
            .unwrap_or(0);
        let oov = tokens.iter().filter(|t| !vocab.contains(t)).count();
        let prefix = BOILERPLATE_PREFIXES.iter().any(|p| {
            let words: Vec<&str> = p.split(' ').collect();
            tokens.starts_with(&words)
        });
        let stopword = tokens
            .last()
            .is_some_and(|t| TRAILING_STOPWORDS.contains(t));
        assemble(n, rates, longest, oov, (prefix, stopword))
    }

    #[test]
    fn vocabulary_holds_short_and_long_words_exactly() {
        let v = Vocabulary::from_text(
            "a\nFifteen-letters\nfifteen-letter\nsixteen-letters!\n# note\n\n  dog  ",
        );
        assert_eq!(v.len(), 5);
        for w in [
            "a",
            "dog",
            "fifteen-letters",
            "fifteen-letter",
            "sixteen-letters!",
        ] {
            assert!(v.contains(w), "{w}");
        }
        // Prefixes, padding and a NUL byte are other words.
        for w in [
            "",
            "do",
            "dogs",
            "a\0",
            "fifteen-lette",
            "sixteen-letters",
            "sixteen-letters!!",
            "# note",
        ] {
            assert!(!v.contains(w), "{w:?}");
        }
    }

    proptest::proptest! {
        // The caption path's shortcuts (one pass for tokenized text, stack
        // buffer, long captions) give what tokenize + describe give.
        #[test]
        fn caption_facts_are_tokenize_then_describe(
            words in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "dog", "Dog", "the", "picture", "of", "gonna", "can't", "x-", "3.5", "", " ", "  ", ",", "dog's", "élan", "a.",
                ]),
                0..90,
            ),
            sep in proptest::sample::select(vec![" ", "  ", "\t"]),
        ) {
            use std::hash::{Hash, Hasher};
            let v = Vocabulary::english();
            let caption = words.join(sep);
            let tokenized = crate::quality::tokenize(&caption);
            let tokens: Vec<&str> = tokenized.split_whitespace().collect();
            let mut h = rustc_hash::FxHasher::default();
            tokenized.hash(&mut h);
            let want = CaptionFacts { descriptors: describe(&tokens, &v), hash: h.finish() };
            proptest::prop_assert_eq!(CaptionFacts::of(&caption, &v), want, "{:?}", caption);
        }
    }

    #[test]
    fn boilerplate_tokens_are_the_prefixes() {
        let joined: Vec<String> = BOILERPLATE_TOKENS.iter().map(|t| t.join(" ")).collect();
        assert_eq!(joined, BOILERPLATE_PREFIXES);
    }

    proptest::proptest! {
        #[test]
        fn describe_matches_the_plain_definitions(
            words in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "dog", "the", "of", "picture", "image", "zzq", "n't", "this", "is", "on",
                    "there", "shows", "an", "in", "fifteen-letters", "sixteen-letters!",
                    "not-in-the-vocabulary",
                ]),
                0..80,
            )
        ) {
            let v = Vocabulary::from_text(
                "a\ndog\nthe\nof\npicture\nimage\nthis\nis\non\nshows\nsixteen-letters!",
            );
            proptest::prop_assert_eq!(describe(&words, &v), describe_plainly(&words, &v));
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
        let hash = |tokenized: &str| {
            let mut h = rustc_hash::FxHasher::default();
            tokenized.hash(&mut h);
            h.finish()
        };
        // Tokens go to a buffer on the stack. Most captions are tokenized
        // already (lowercase words, single spaces): one pass checks and
        // splits them.
        let mut buf = [""; PAIRWISE_LIMIT];
        let mut n = 0;
        let simple = super::tokenize::walk_tokenized(caption, |t| {
            let room = n < PAIRWISE_LIMIT;
            if room {
                buf[n] = t;
                n += 1;
            }
            room
        });
        if simple {
            return Self {
                descriptors: describe(&buf[..n], vocab),
                hash: hash(caption),
            };
        }
        let tokenized = super::tokenize(caption);
        let mut n = 0;
        let mut fits = true;
        for t in SpaceSplit(&tokenized) {
            if n == PAIRWISE_LIMIT {
                fits = false;
                break;
            }
            buf[n] = t;
            n += 1;
        }
        let descriptors = if fits {
            describe(&buf[..n], vocab)
        } else {
            let tokens: Vec<&str> = SpaceSplit(&tokenized).collect();
            describe(&tokens, vocab)
        };
        Self {
            descriptors,
            hash: hash(&tokenized),
        }
    }
}

/// The non-empty pieces of a string between ASCII spaces (a byte loop:
/// `str::split(' ')` goes through a general char searcher).
struct SpaceSplit<'a>(&'a str);

impl<'a> Iterator for SpaceSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.0.trim_start_matches(' ');
        if s.is_empty() {
            self.0 = s;
            return None;
        }
        let end = s.bytes().position(|b| b == b' ').unwrap_or(s.len());
        // A space is ASCII, so `end` is a char boundary.
        let (token, rest) = s.split_at(end);
        self.0 = rest;
        Some(token)
    }
}
