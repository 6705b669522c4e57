//! CIDEr-D exactly as pycocoevalcap 1.2's `CiderScorer` (n = 1..4, sigma = 6):
//! tf-idf vectors per n-gram order with idf from document frequencies over the
//! references of the scored set (one count per image), clipped cosine
//! similarity (min of candidate and reference weights), a Gaussian length
//! penalty on the difference in bigram counts (word count minus one), averaged
//! over orders and references, times 10. Corpus score = mean over images.
//!
//! For streaming, where the scored set is a window, the document frequencies
//! can instead come from a frozen table ([`DocumentFrequency::from_json`]).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::ngrams::{order, Interner, Ngram, NgramCounts, MAX_N};

/// Gaussian length-penalty width (CIDEr-D's sigma).
pub const SIGMA: f64 = 6.0;

/// Document frequencies: in how many images' reference sets each n-gram occurs.
#[derive(Debug, Clone, Default)]
pub struct DocumentFrequency {
    /// Number of images the frequencies were counted over (idf uses ln of it).
    pub images: usize,
    df: FxHashMap<Ngram, f64>,
}

/// On-disk form of a frozen document-frequency table.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DfFile {
    /// Always `driftd.cider-df`.
    format: String,
    version: u32,
    /// Images counted.
    images: usize,
    /// N-gram (tokens joined by single spaces) -> number of images.
    df: std::collections::BTreeMap<String, f64>,
}

const DF_FORMAT: &str = "driftd.cider-df";

impl DocumentFrequency {
    /// Count over the reference sets of a scored set.
    pub fn from_references<'a>(references: impl IntoIterator<Item = &'a [NgramCounts]>) -> Self {
        let mut df: FxHashMap<Ngram, f64> = FxHashMap::default();
        let mut images = 0;
        let mut seen: FxHashMap<Ngram, usize> = FxHashMap::default();
        for refs in references {
            images += 1;
            for r in refs {
                for (g, _) in &r.grams {
                    // Count each n-gram once per image.
                    if seen.insert(*g, images) != Some(images) {
                        *df.entry(*g).or_insert(0.0) += 1.0;
                    }
                }
            }
        }
        Self { images, df }
    }

    fn log_df(&self, g: &Ngram) -> f64 {
        self.df.get(g).copied().unwrap_or(0.0).max(1.0).ln()
    }

    /// Read a frozen table, interning its n-grams.
    pub fn from_json(text: &str, interner: &mut Interner) -> Result<Self, String> {
        let f: DfFile = serde_json::from_str(text)
            .map_err(|e| format!("not a document-frequency table: {e}"))?;
        if f.format != DF_FORMAT || f.version != 1 {
            return Err(format!(
                "format {:?} version {} is not {DF_FORMAT:?} version 1",
                f.format, f.version
            ));
        }
        if f.images == 0 {
            return Err("images must be at least 1".into());
        }
        let mut df = FxHashMap::default();
        for (text, count) in f.df {
            let ids = interner.ids(&text);
            if ids.is_empty() || ids.len() > MAX_N || !(count.is_finite() && count >= 0.0) {
                return Err(format!("bad entry {text:?}: {count}"));
            }
            let mut g = [u32::MAX; MAX_N];
            g[..ids.len()].copy_from_slice(&ids);
            df.insert(g, count);
        }
        Ok(Self {
            images: f.images,
            df,
        })
    }

    /// Write the table for later use as a frozen one.
    pub fn to_json(&self, interner: &Interner) -> String {
        let names = interner.names();
        let df = self
            .df
            .iter()
            .map(|(g, &c)| {
                let text: Vec<&str> = g[..order(g)].iter().map(|&id| names[id as usize]).collect();
                (text.join(" "), c)
            })
            .collect();
        let f = DfFile {
            format: DF_FORMAT.into(),
            version: 1,
            images: self.images,
            df,
        };
        serde_json::to_string(&f).expect("df table serializes")
    }
}

/// tf-idf weights of one caption, by order, in first-occurrence order.
struct TfIdf {
    weights: FxHashMap<Ngram, f64>,
    order_of: Vec<(Ngram, usize)>,
    norm: [f64; MAX_N],
    /// Number of bigrams (the reference's "length").
    length: f64,
}

fn tf_idf(c: &NgramCounts, df: &DocumentFrequency, ref_len: f64) -> TfIdf {
    let mut weights = FxHashMap::default();
    let mut order_of = Vec::with_capacity(c.grams.len());
    let mut norm = [0.0f64; MAX_N];
    let mut length = 0.0;
    for &(g, tf) in &c.grams {
        let n = order(&g) - 1;
        let w = tf as f64 * (ref_len - df.log_df(&g));
        weights.insert(g, w);
        order_of.push((g, n));
        norm[n] += w.powi(2);
        if n == 1 {
            length += tf as f64;
        }
    }
    for v in &mut norm {
        *v = v.sqrt();
    }
    TfIdf {
        weights,
        order_of,
        norm,
        length,
    }
}

/// CIDEr-D of one candidate against its references.
pub fn cider_d(candidate: &NgramCounts, references: &[NgramCounts], df: &DocumentFrequency) -> f64 {
    if references.is_empty() {
        return 0.0;
    }
    let ref_len = (df.images as f64).ln();
    let hyp = tf_idf(candidate, df, ref_len);
    let mut score = [0.0f64; MAX_N];
    for r in references {
        let rv = tf_idf(r, df, ref_len);
        let delta = hyp.length - rv.length;
        let mut val = [0.0f64; MAX_N];
        for (g, n) in &hyp.order_of {
            let h = hyp.weights[g];
            let rw = rv.weights.get(g).copied().unwrap_or(0.0);
            val[*n] += h.min(rw) * rw;
        }
        for n in 0..MAX_N {
            if hyp.norm[n] != 0.0 && rv.norm[n] != 0.0 {
                val[n] /= hyp.norm[n] * rv.norm[n];
            }
            // np.e ** x, not exp(x): the two may differ in the last bit.
            val[n] *= std::f64::consts::E.powf(-(delta.powi(2)) / (2.0 * SIGMA.powi(2)));
            score[n] += val[n];
        }
    }
    let mean = (score[0] + score[1] + score[2] + score[3]) / MAX_N as f64;
    mean / references.len() as f64 * 10.0
}
