//! BLEU-1..4 exactly as pycocoevalcap 1.2's `BleuScorer` with
//! `option='closest'`: clipped n-gram counts against the per-n-gram maximum
//! over references, the reference length closest to the candidate's (ties to
//! the shorter), the `1e-15` / `1e-9` guards instead of smoothing, a brevity
//! penalty per caption for item scores and on pooled lengths for the corpus.

use rustc_hash::FxHashMap;

use super::ngrams::{order, Ngram, NgramCounts, MAX_N};

/// Added to every numerator ("so that if guess is 0 still return 0").
const TINY: f64 = 1e-15;
/// Added to every denominator.
const SMALL: f64 = 1e-9;

/// What one candidate contributes to BLEU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BleuStats {
    pub testlen: usize,
    pub reflen: usize,
    pub guess: [usize; MAX_N],
    pub correct: [usize; MAX_N],
}

/// Counts for one candidate against its references (token ids).
pub fn bleu_stats(candidate: &NgramCounts, references: &[NgramCounts]) -> BleuStats {
    let mut max_ref: FxHashMap<Ngram, u32> = FxHashMap::default();
    for r in references {
        for &(g, c) in &r.grams {
            let e = max_ref.entry(g).or_insert(0);
            *e = (*e).max(c);
        }
    }
    let testlen = candidate.len;
    // min over (|l - testlen|, l): the closest length, the shorter on a tie.
    let reflen = references
        .iter()
        .map(|r| (r.len.abs_diff(testlen), r.len))
        .min()
        .map_or(0, |(_, l)| l);
    let mut guess = [0usize; MAX_N];
    for (k, g) in guess.iter_mut().enumerate() {
        *g = (testlen + 1).saturating_sub(k + 1);
    }
    let mut correct = [0usize; MAX_N];
    for &(g, c) in &candidate.grams {
        correct[order(&g) - 1] += c.min(max_ref.get(&g).copied().unwrap_or(0)) as usize;
    }
    BleuStats {
        testlen,
        reflen,
        guess,
        correct,
    }
}

/// BLEU-1..4 from (possibly pooled) counts and lengths.
fn score(
    testlen: f64,
    reflen: f64,
    guess: &[usize; MAX_N],
    correct: &[usize; MAX_N],
) -> [f64; MAX_N] {
    let mut out = [0.0; MAX_N];
    let mut bleu = 1.0f64;
    for k in 0..MAX_N {
        bleu *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        out[k] = bleu.powf(1.0 / (k as f64 + 1.0));
    }
    let ratio = (testlen + TINY) / (reflen + SMALL);
    if ratio < 1.0 {
        for v in &mut out {
            *v *= (1.0 - 1.0 / ratio).exp();
        }
    }
    out
}

/// BLEU-1..4 of one caption with its own brevity penalty.
pub fn item_bleu(s: &BleuStats) -> [f64; MAX_N] {
    score(s.testlen as f64, s.reflen as f64, &s.guess, &s.correct)
}

/// Corpus BLEU-1..4 from pooled counts and lengths.
pub fn corpus_bleu(items: &[BleuStats]) -> [f64; MAX_N] {
    let mut guess = [0usize; MAX_N];
    let mut correct = [0usize; MAX_N];
    let (mut testlen, mut reflen) = (0usize, 0usize);
    for s in items {
        testlen += s.testlen;
        reflen += s.reflen;
        for k in 0..MAX_N {
            guess[k] += s.guess[k];
            correct[k] += s.correct[k];
        }
    }
    score(testlen as f64, reflen as f64, &guess, &correct)
}
