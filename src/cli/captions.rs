//! `driftd score-captions`: caption metrics for a JSONL file of
//! `{"id", "candidate", "references"?, "image_embedding"?, "caption_embedding"?,
//! "reference_embeddings"?}` lines.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use serde::Deserialize;

use super::{emit, CliError};

/// Longest line read, in bytes (a caption with its references); longer
/// lines are skipped and counted.
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
use crate::quality::{self, CaptionInput, DfSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptionFormat {
    Json,
    Table,
}

pub struct ScoreCaptionsArgs<'a> {
    pub input: &'a Path,
    /// Config whose `[quality]` section gives defaults for the two files below.
    pub config: Option<&'a Path>,
    pub df: Option<&'a Path>,
    pub write_df: Option<&'a Path>,
    pub vocabulary: Option<&'a Path>,
    pub format: CaptionFormat,
    pub strict: bool,
    pub out: Option<&'a Path>,
}

#[derive(Deserialize)]
struct Line {
    id: serde_json::Value,
    candidate: String,
    #[serde(default)]
    references: Option<Vec<String>>,
    #[serde(default)]
    image_embedding: Option<Vec<f64>>,
    #[serde(default)]
    caption_embedding: Option<Vec<f64>>,
    #[serde(default)]
    reference_embeddings: Option<Vec<Vec<f64>>>,
}

/// Parse one input line into a caption, or say what is wrong with it.
fn parse_line(text: &str) -> Result<CaptionInput, String> {
    let l: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let id = match l.id {
        serde_json::Value::String(s) if !s.is_empty() => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => {
            return Err(format!(
                "`id` must be a non-empty string or a number, got {other}"
            ))
        }
    };
    let dims = |v: &Option<Vec<f64>>| v.as_ref().map(Vec::len);
    if let (Some(a), Some(b)) = (dims(&l.image_embedding), dims(&l.caption_embedding)) {
        if a != b {
            return Err(format!(
                "image_embedding has {a} dimensions but caption_embedding has {b}"
            ));
        }
    }
    let reference_embeddings = l.reference_embeddings.unwrap_or_default();
    if let Some(c) = dims(&l.caption_embedding) {
        if let Some(r) = reference_embeddings.iter().find(|r| r.len() != c) {
            return Err(format!(
                "a reference embedding has {} dimensions but caption_embedding has {c}",
                r.len()
            ));
        }
    }
    Ok(CaptionInput {
        id,
        candidate: l.candidate,
        references: l.references.unwrap_or_default(),
        image_embedding: l.image_embedding,
        caption_embedding: l.caption_embedding,
        reference_embeddings,
    })
}

/// Run the command; returns the number of skipped lines.
pub fn score_captions(
    args: &ScoreCaptionsArgs<'_>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<usize, CliError> {
    let name = args.input.display().to_string();
    let file = std::fs::File::open(args.input)
        .map_err(|e| CliError::bad_input(format!("{name}: cannot open: {e}")))?;
    let config = super::load_config(args.config)?;
    let vocabulary = args.vocabulary.or(config.quality.vocabulary.as_deref());
    let df_path = args.df.or(config.quality.document_frequencies.as_deref());
    let vocab = super::load_vocabulary(vocabulary)?;
    let df_text = match df_path {
        None => None,
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| CliError::bad_input(format!("{}: cannot read: {e}", p.display())))?,
        ),
    };
    let mut inputs = Vec::new();
    let mut seen = HashSet::new();
    let mut skipped = 0usize;
    // A line may be anything: too long or not UTF-8, it is skipped and
    // counted like any other bad line (an error with --strict).
    let mut lines = crate::source::file::LineSource::new(file, MAX_LINE_BYTES);
    loop {
        let line = lines
            .next_line()
            .map_err(|e| CliError::bad_input(format!("{name}: cannot read: {e}")))?;
        let Some(line) = line else { break };
        let line_no = line.no;
        let text = match (line.cut_from, std::str::from_utf8(line.bytes)) {
            (Some(len), _) => Err(format!(
                "line is {len} bytes, at most {MAX_LINE_BYTES} are read"
            )),
            (None, Ok(t)) => Ok(t),
            (None, Err(e)) => Err(format!("not UTF-8 text ({e})")),
        };
        let parsed = text.and_then(parse_line).and_then(|c| {
            if seen.insert(c.id.clone()) {
                Ok(c)
            } else {
                Err(format!("duplicate id {:?}", c.id))
            }
        });
        match parsed {
            Ok(c) => inputs.push(c),
            Err(e) if args.strict => {
                return Err(CliError::bad_input(format!("{name}: line {line_no}: {e}")))
            }
            Err(e) => {
                skipped += 1;
                let e = crate::event::printable(&e, 512);
                let _ = writeln!(stderr, "driftd: {name}: line {line_no}: {e} (skipped)");
            }
        }
    }
    if inputs.is_empty() {
        return Err(CliError::bad_input(format!("{name}: no valid lines")));
    }
    let df = match &df_text {
        None => DfSource::ScoredSet,
        Some(t) => DfSource::Frozen(t),
    };
    let scores = quality::score_set(&inputs, &vocab, df).map_err(|e| {
        CliError::bad_input(format!(
            "{}: {e}",
            args.df.map(|p| p.display().to_string()).unwrap_or_default()
        ))
    })?;
    if let Some(p) = args.write_df {
        std::fs::write(p, &scores.df_json)
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", p.display())))?;
    }
    let body = match args.format {
        CaptionFormat::Json => {
            let mut corpus = serde_json::to_value(&scores.corpus).expect("scores serialize");
            corpus["items"] = inputs.len().into();
            corpus["skipped_lines"] = skipped.into();
            let v = serde_json::json!({"corpus": corpus, "items": scores.items});
            let mut s = serde_json::to_string_pretty(&v).expect("json");
            s.push('\n');
            s
        }
        CaptionFormat::Table => table(&scores, skipped),
    };
    emit(args.out, &body, stdout)?;
    Ok(skipped)
}

fn table(scores: &quality::SetScores, skipped: usize) -> String {
    use std::fmt::Write as _;
    let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.4}"));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6}",
        "id", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d", "clip", "tokens", "oov"
    );
    for it in &scores.items {
        let id: String = it.id.chars().take(24).collect();
        let _ = writeln!(
            s,
            "{:<24} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6.3}",
            id,
            f(it.reference.bleu_1),
            f(it.reference.bleu_2),
            f(it.reference.bleu_3),
            f(it.reference.bleu_4),
            f(it.reference.rouge_l),
            f(it.reference.cider_d),
            f(it.clip_score),
            it.descriptors.token_count,
            it.descriptors.oov_rate
        );
    }
    let c = &scores.corpus;
    let _ = writeln!(
        s,
        "{:<24} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "corpus",
        f(c.reference.bleu_1),
        f(c.reference.bleu_2),
        f(c.reference.bleu_3),
        f(c.reference.bleu_4),
        f(c.reference.rouge_l),
        f(c.reference.cider_d),
        f(c.clip_score.map(|s| s.mean))
    );
    let d = &c.descriptors;
    let _ = writeln!(
        s,
        "{} captions ({} with references, {} lines skipped); empty {:.1}%, boilerplate {:.1}%, ends on stopword {:.1}%, distinct-1 {:.3}, distinct-2 {:.3}, duplicates {:.1}%",
        d.captions,
        c.items_with_references,
        skipped,
        d.empty_rate * 100.0,
        d.boilerplate_prefix_rate * 100.0,
        d.ends_with_stopword_rate * 100.0,
        d.distinct_1,
        d.distinct_2,
        d.duplicate_caption_share * 100.0
    );
    s
}
