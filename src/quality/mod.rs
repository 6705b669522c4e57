//! Caption quality: COCO tokenization, the reference-based metrics of
//! pycocoevalcap 1.2 (BLEU-1..4, ROUGE-L, CIDEr-D) reproduced exactly,
//! reference-free descriptors and CLIPScore. No I/O: callers hand in captions
//! and get scores back, per caption and per set (a file or a window).

pub mod bleu;
pub mod cider;
pub mod clip;
pub mod descriptors;
pub mod ngrams;
pub mod rouge;
pub mod tokenize;

use serde::Serialize;

pub use cider::DocumentFrequency;
pub use descriptors::{
    describe, summarize, CaptionFacts, Descriptors, SetDescriptors, Summary, Vocabulary,
};
use ngrams::{Interner, NgramCounts};
pub use tokenize::tokenize;

/// One caption to score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptionInput {
    pub id: String,
    pub candidate: String,
    /// Reference captions; reference metrics need at least one.
    pub references: Vec<String>,
    pub image_embedding: Option<Vec<f64>>,
    pub caption_embedding: Option<Vec<f64>>,
    /// Embeddings of the reference captions (for RefCLIPScore).
    pub reference_embeddings: Vec<Vec<f64>>,
}

/// BLEU-1..4, ROUGE-L and CIDEr-D of a caption or a set; absent (not zero)
/// without references.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReferenceScores {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bleu_1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bleu_2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bleu_3: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bleu_4: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rouge_l: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cider_d: Option<f64>,
}

impl ReferenceScores {
    fn new(bleu: Option<[f64; 4]>, rouge_l: Option<f64>, cider_d: Option<f64>) -> Self {
        Self {
            bleu_1: bleu.map(|b| b[0]),
            bleu_2: bleu.map(|b| b[1]),
            bleu_3: bleu.map(|b| b[2]),
            bleu_4: bleu.map(|b| b[3]),
            rouge_l,
            cider_d,
        }
    }
}

/// Scores of one caption. Reference metrics are absent without references.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemScores {
    pub id: String,
    #[serde(flatten)]
    pub reference: ReferenceScores,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ref_clip_score: Option<f64>,
    #[serde(flatten)]
    pub descriptors: Descriptors,
}

/// Scores of a whole set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorpusScores {
    /// Captions with at least one reference (the reference metrics cover these).
    pub items_with_references: usize,
    #[serde(flatten)]
    pub reference: ReferenceScores,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_score: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ref_clip_score: Option<Summary>,
    #[serde(flatten)]
    pub descriptors: SetDescriptors,
}

/// Where CIDEr-D's document frequencies come from.
pub enum DfSource<'a> {
    /// The references of the scored set (pycocoevalcap's behaviour).
    ScoredSet,
    /// A frozen table in the JSON format of [`DocumentFrequency::to_json`].
    Frozen(&'a str),
}

/// Everything `score_set` produces.
pub struct SetScores {
    pub corpus: CorpusScores,
    pub items: Vec<ItemScores>,
    /// The document frequencies used, as JSON (to freeze them for streaming).
    pub df_json: String,
}

/// Tokens of a caption or reference that the reference metrics read: ROUGE-L
/// costs the product of two lengths, so a caption of 40,000 tokens took
/// seconds. Captions are tens of tokens (COCO's average about ten), far below
/// this; descriptors (token counts, vocabulary) read every token.
pub const MAX_SCORED_TOKENS: usize = 128;

/// The first [`MAX_SCORED_TOKENS`] tokens of tokenized text.
fn capped(tokens: String) -> String {
    match tokens.split(' ').nth(MAX_SCORED_TOKENS) {
        None => tokens,
        Some(_) => tokens
            .split(' ')
            .take(MAX_SCORED_TOKENS)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Score a set of captions.
pub fn score_set(
    inputs: &[CaptionInput],
    vocab: &Vocabulary,
    df: DfSource<'_>,
) -> Result<SetScores, String> {
    let mut interner = Interner::default();
    let frozen = match df {
        DfSource::ScoredSet => None,
        DfSource::Frozen(text) => Some(DocumentFrequency::from_json(text, &mut interner)?),
    };
    let candidates: Vec<String> = inputs
        .iter()
        .map(|i| tokenize(&i.candidate).into_owned())
        .collect();
    let references: Vec<Vec<String>> = inputs
        .iter()
        .map(|i| {
            i.references
                .iter()
                .map(|r| capped(tokenize(r).into_owned()))
                .collect()
        })
        .collect();
    // What the reference metrics read of each candidate.
    let scored: Vec<String> = candidates.iter().map(|c| capped(c.clone())).collect();
    let cand_counts: Vec<NgramCounts> = scored
        .iter()
        .map(|c| NgramCounts::new(&interner.ids(c)))
        .collect();
    let ref_counts: Vec<Vec<NgramCounts>> = references
        .iter()
        .map(|rs| {
            rs.iter()
                .map(|r| NgramCounts::new(&interner.ids(r)))
                .collect()
        })
        .collect();
    let with_refs: Vec<usize> = (0..inputs.len())
        .filter(|&i| !ref_counts[i].is_empty())
        .collect();
    let df = frozen.unwrap_or_else(|| {
        DocumentFrequency::from_references(with_refs.iter().map(|&i| ref_counts[i].as_slice()))
    });

    let mut items = Vec::with_capacity(inputs.len());
    let mut bleu_stats = Vec::with_capacity(with_refs.len());
    let mut rouges = Vec::with_capacity(with_refs.len());
    let mut ciders = Vec::with_capacity(with_refs.len());
    let mut descs = Vec::with_capacity(inputs.len());
    let mut clips = Vec::new();
    let mut ref_clips = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let tokens: Vec<&str> = candidates[i].split_whitespace().collect();
        let d = describe(&tokens, vocab);
        descs.push(d);
        let (mut b, mut rl, mut cd) = (None, None, None);
        if !ref_counts[i].is_empty() {
            let s = bleu::bleu_stats(&cand_counts[i], &ref_counts[i]);
            b = Some(bleu::item_bleu(&s));
            bleu_stats.push(s);
            let refs: Vec<&str> = references[i].iter().map(String::as_str).collect();
            let r = rouge::rouge_l(&scored[i], &refs);
            rouges.push(r);
            rl = Some(r);
            let c = cider::cider_d(&cand_counts[i], &ref_counts[i], &df);
            ciders.push(c);
            cd = Some(c);
        }
        let clip = match (&input.image_embedding, &input.caption_embedding) {
            (Some(img), Some(cap)) => clip::clip_score(img, cap),
            _ => None,
        };
        let ref_clip = match (&input.image_embedding, &input.caption_embedding) {
            (Some(img), Some(cap)) if !input.reference_embeddings.is_empty() => {
                clip::ref_clip_score(img, cap, &input.reference_embeddings)
            }
            _ => None,
        };
        clips.extend(clip);
        ref_clips.extend(ref_clip);
        items.push(ItemScores {
            id: input.id.clone(),
            reference: ReferenceScores::new(b, rl, cd),
            clip_score: clip,
            ref_clip_score: ref_clip,
            descriptors: d,
        });
    }
    let corpus_bleu = (!bleu_stats.is_empty()).then(|| bleu::corpus_bleu(&bleu_stats));
    let mean = |v: &[f64]| {
        (!v.is_empty()).then(|| crate::stats::numeric_sum::pairwise_sum(v) / v.len() as f64)
    };
    let caption_refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let corpus = CorpusScores {
        items_with_references: with_refs.len(),
        reference: ReferenceScores::new(corpus_bleu, mean(&rouges), mean(&ciders)),
        clip_score: Summary::of(&mut clips),
        ref_clip_score: Summary::of(&mut ref_clips),
        descriptors: summarize(&descs, &caption_refs),
    };
    Ok(SetScores {
        corpus,
        items,
        df_json: df.to_json(&interner),
    })
}
