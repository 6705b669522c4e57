//! `driftd replay`: the streaming pipeline over a file, as fast as it goes.

use std::io::Write;
use std::path::Path;

use super::{load_config, CliError};
use crate::monitor::engine::{Engine, WindowReport};
use crate::source::file::LineSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// One line per window for people.
    Text,
    /// One JSON window report per line.
    Json,
}

pub struct ReplayArgs<'a> {
    /// A file, or `-` for stdin.
    pub input: &'a str,
    pub config: Option<&'a Path>,
    pub format: ReplayFormat,
    /// Rejected events go here as JSON lines (reason, detail, line, raw bytes).
    pub dead_letter: Option<&'a Path>,
    /// `MODEL=VERSION`: candidates registered before the first event, so the
    /// log's shadow traffic is judged under `[promotion]`.
    pub candidates: &'a [String],
    /// Feedback events to join, in time order.
    pub feedback: Option<&'a Path>,
    /// A bar over the input file's bytes (none for stdin).
    pub progress: Option<&'a super::Progress>,
}

/// The feedback file, read one event ahead: each is fed to the engine once
/// the log's event time reaches its timestamp.
struct FeedbackFeed {
    name: String,
    lines: LineSource<Box<dyn std::io::Read + Send>>,
    /// The next line and its timestamp (`i64::MIN` when it has none: fed at once).
    next: Option<(u64, Vec<u8>, i64)>,
    /// Reads the timestamps (the engine decodes the events themselves).
    decoder: crate::event::Decoder,
}

impl FeedbackFeed {
    fn open(
        path: &Path,
        decoder: &crate::event::Decoder,
        max_bytes: usize,
    ) -> Result<Self, CliError> {
        let file = std::fs::File::open(path)
            .map_err(|e| CliError::bad_input(format!("{}: cannot open: {e}", path.display())))?;
        let mut feed = Self {
            name: path.display().to_string(),
            lines: LineSource::new(Box::new(file), max_bytes),
            next: None,
            decoder: decoder.clone(),
        };
        feed.advance()?;
        Ok(feed)
    }

    fn advance(&mut self) -> Result<(), CliError> {
        self.next = match self.lines.next_line() {
            // A line cut for length is handed on as it is: the decoder
            // refuses it (too large or not JSON) and it is counted.
            Ok(Some(line)) => {
                let ts = self
                    .decoder
                    .decode_feedback(line.bytes)
                    .map_or(i64::MIN, |f| f.timestamp_ms);
                Some((line.no, line.bytes.to_vec(), ts))
            }
            Ok(None) => None,
            Err(e) => {
                return Err(CliError::bad_input(format!(
                    "{}: cannot read: {e}",
                    self.name
                )))
            }
        };
        Ok(())
    }

    /// Feed every feedback event up to event time `until`.
    fn feed_until(
        &mut self,
        until: i64,
        engine: &mut Engine,
        dead: &mut Option<std::io::BufWriter<std::fs::File>>,
    ) -> Result<(), CliError> {
        while let Some((line_no, bytes, ts)) = self.next.take() {
            if ts > until {
                self.next = Some((line_no, bytes, ts));
                break;
            }
            if let Err(r) = engine.process_feedback(&bytes) {
                if let Some(f) = dead.as_mut() {
                    dead_letter(f, &self.name, line_no, &bytes, &r)
                        .map_err(|e| CliError::failure(format!("cannot write output: {e}")))?;
                }
            }
            self.advance()?;
        }
        Ok(())
    }
}

/// Run the replay; returns the engine's counters as JSON for the summary.
pub fn replay(
    args: &ReplayArgs<'_>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let config = load_config(args.config)?;
    let profiles = super::load_profiles(&config)?;
    let vocab = super::load_vocabulary(config.quality.vocabulary.as_deref())?;
    let reader_vocab = vocab.clone();
    let max_bytes = config.max_event_bytes;
    // With rules configured, every window is also judged: what would have
    // fired, and what was suppressed and why.
    let judging = !config.rules.is_empty()
        || config.actions.promotion.is_some()
        || config.actions.rollback.is_some()
        || !args.candidates.is_empty();
    let mut decider =
        judging.then(|| crate::rules::Decider::new(config.rules.clone(), config.actions.clone()));
    for c in args.candidates {
        let Some((model, version)) = c
            .split_once('=')
            .filter(|(m, v)| !m.is_empty() && !v.is_empty())
        else {
            return Err(CliError::bad_input(format!(
                "--candidate must be MODEL=VERSION, got {c:?}"
            )));
        };
        if let Some(d) = decider.as_mut() {
            d.register_candidate(model, version, "replay".into(), serde_json::Value::Null)
                .map_err(|e| CliError::bad_input(format!("--candidate {c}: {e}")))?;
        }
    }
    let mut engine = Engine::new(config, vocab, profiles);
    engine.join_feedback(args.feedback.is_some());
    let mut feedback = match args.feedback {
        Some(p) => Some(FeedbackFeed::open(p, engine.decoder(), max_bytes)?),
        None => None,
    };
    let mut dead = match args.dead_letter {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| CliError::failure(format!("cannot create {}: {e}", p.display())),
        )?)),
        None => None,
    };
    let mut read_so_far = None;
    let reader: Box<dyn std::io::Read + Send> = if args.input == "-" {
        Box::new(std::io::stdin())
    } else {
        let file = std::fs::File::open(args.input)
            .map_err(|e| CliError::bad_input(format!("{}: cannot open: {e}", args.input)))?;
        if let (Some(p), Ok(meta)) = (args.progress, file.metadata()) {
            read_so_far = Some(p.measured(format!("replaying {}", args.input), meta.len()));
        }
        Box::new(file)
    };
    let mut out = std::io::BufWriter::new(stdout);
    let write_err = |e: std::io::Error| CliError::failure(format!("cannot write output: {e}"));
    // Decoding is pure and costs about as much as tracking: one thread reads
    // and decodes batches of lines while this one feeds the engine, in file
    // order (results are identical to a one-line-at-a-time run).
    let decoder = engine.decoder().clone();
    let input_name = args.input.to_owned();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Decoded>, String>>(4);
    let reader_thread = std::thread::spawn(move || {
        use rayon::prelude::*;
        let mut source = LineSource::new(reader, max_bytes);
        loop {
            // Read a batch of lines (cheap), then decode and describe them
            // on rayon's threads: on two cores the reading side was the
            // bottleneck with one decoding thread.
            let mut lines: Vec<(u64, Vec<u8>, Option<u64>)> = Vec::with_capacity(BATCH_LINES);
            let mut failed = None;
            while lines.len() < BATCH_LINES {
                match source.next_line() {
                    Ok(Some(line)) => lines.push((line.no, line.bytes.to_vec(), line.cut_from)),
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(format!("{input_name}: cannot read: {e}"));
                        break;
                    }
                }
            }
            if let Some(c) = &read_so_far {
                c.set(source.bytes());
            }
            let done = lines.len() < BATCH_LINES;
            let batch: Vec<Decoded> = lines
                .into_par_iter()
                .with_min_len(256)
                .map(|(line_no, bytes, cut_from)| {
                    // Owned: the events outlive their batch of lines.
                    let result = match cut_from {
                        Some(len) => Err(crate::event::Rejection::new(
                            crate::event::RejectReason::TooLarge,
                            format!("line is {len} bytes, limit is {max_bytes} (limits.max_event_bytes)"),
                        )),
                        None => decoder.decode_inference(&bytes).map(|e| {
                            let mut e = e.into_owned();
                            crate::monitor::engine::prepare(&mut e, &reader_vocab);
                            e
                        }),
                    };
                    // Keep the raw bytes only where the dead-letter file needs them.
                    let raw = if result.is_err() { bytes } else { Vec::new() };
                    Decoded {
                        line_no,
                        raw,
                        result,
                    }
                })
                .collect();
            if !batch.is_empty() && tx.send(Ok(batch)).is_err() {
                return;
            }
            if let Some(e) = failed {
                let _ = tx.send(Err(e));
                return;
            }
            if done {
                return;
            }
        }
    });
    for batch in rx {
        let batch = batch.map_err(CliError::bad_input)?;
        for d in batch {
            if let (Some(f), Ok(e)) = (feedback.as_mut(), &d.result) {
                f.feed_until(e.timestamp_ms, &mut engine, &mut dead)?;
            }
            match engine.process_decoded(d.result) {
                Ok(reports) => {
                    for r in reports {
                        emit(&mut out, &r, args.format, decider.as_mut()).map_err(write_err)?;
                    }
                }
                Err(rejection) => {
                    if let Some(f) = dead.as_mut() {
                        dead_letter(f, args.input, d.line_no, &d.raw, &rejection)
                            .map_err(write_err)?;
                    }
                }
            }
        }
    }
    reader_thread
        .join()
        .map_err(|_| CliError::failure("reader thread panicked"))?;
    if let Some(p) = args.progress {
        p.unmeasured("closing the last windows");
    }
    if let Some(f) = feedback.as_mut() {
        f.feed_until(i64::MAX, &mut engine, &mut dead)?;
    }
    for r in engine.finish() {
        emit(&mut out, &r, args.format, decider.as_mut()).map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    if let Some(mut d) = dead {
        d.flush().map_err(write_err)?;
    }
    // The bar's line is done before the summary goes to the same stderr.
    if let Some(p) = args.progress {
        p.finish();
    }
    let c = &engine.counters;
    let secs = started.elapsed().as_secs_f64();
    let rejected: u64 = c.rejected.values().sum();
    let reasons: Vec<String> = c.rejected.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        stderr,
        "driftd: replayed {} events in {secs:.2}s ({:.0} events/s): {} windows, {} learned as baseline, {} late, {rejected} rejected{}",
        c.events,
        c.events as f64 / secs.max(1e-9),
        c.windows,
        c.learned,
        c.late_events,
        if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) },
    );
    if args.feedback.is_some() {
        let _ = writeln!(
            stderr,
            "driftd: {} feedback events: {} joined, {} late, {} unmatched, {} rejected",
            c.feedback_events + c.feedback_rejected,
            c.feedback_joined,
            c.feedback_late,
            c.feedback_unmatched,
            c.feedback_rejected
        );
    }
    if let Some(d) = &decider {
        let counts: Vec<String> = d.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            stderr,
            "driftd: {} rule(s): {}",
            d.rules().len(),
            if counts.is_empty() {
                "no window breached a rule".to_owned()
            } else {
                counts.join(", ")
            }
        );
    }
    for (model, version, n) in engine.learning() {
        let _ = writeln!(
            stderr,
            "driftd: {model} {version}: still learning its baseline ({n} events so far, baseline.learn_events needed); no window evaluated"
        );
    }
    Ok(())
}

/// A window report with the rules' decisions on it.
#[derive(serde::Serialize)]
struct Judged<'a> {
    #[serde(flatten)]
    report: &'a WindowReport,
    decisions: &'a [crate::rules::Decision],
}

/// The flagged data-quality checks of a window, with their shares.
fn data_quality_summary(dq: &crate::monitor::data_quality::DataQualityReport) -> String {
    use crate::monitor::data_quality::Check;
    let mut parts: Vec<String> = Vec::new();
    for f in &dq.features {
        for c in &f.flagged {
            let share = match c {
                Check::MissingRate => Some(f.missing_rate),
                Check::WrongType => Some(f.wrong_type_share),
                Check::UnseenCategories => f.unseen_share,
                Check::OutOfRange => f.out_of_range_share,
                Check::Absent | Check::NewFeatures => None,
            };
            parts.push(match share {
                Some(v) => format!("{} {} {:.1}%", f.name, c.as_str(), v * 100.0),
                None => format!("{} {}", f.name, c.as_str()),
            });
        }
    }
    let new = &dq.new_features;
    if new.flagged {
        parts.push(format!(
            "new features in {:.1}% of events ({})",
            new.share * 100.0,
            new.names.join(", ")
        ));
    }
    parts.join(", ")
}

fn emit(
    out: &mut dyn Write,
    r: &WindowReport,
    format: ReplayFormat,
    decider: Option<&mut crate::rules::Decider>,
) -> std::io::Result<()> {
    let decisions = decider.map(|d| d.decide(r));
    match format {
        ReplayFormat::Json => {
            match &decisions {
                Some(decisions) => serde_json::to_writer(
                    &mut *out,
                    &Judged {
                        report: r,
                        decisions,
                    },
                ),
                None => serde_json::to_writer(&mut *out, r),
            }
            .map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        }
        ReplayFormat::Text => {
            let drifted: Vec<&str> = r
                .drift
                .features
                .iter()
                .filter(|f| f.drift)
                .map(|f| f.name.as_str())
                .collect();
            writeln!(
                out,
                "{} {} #{} {} .. {}: {} events, drift {}/{} features{}{}; errors {:.1}%, empty captions {:.1}%, boilerplate {:.1}%{}",
                r.model,
                r.model_version,
                r.window.index,
                r.window.start,
                r.window.end,
                r.signals.events,
                r.drift.dataset.drifted,
                r.drift.dataset.total,
                if drifted.is_empty() { String::new() } else { format!(" ({})", drifted.join(", ")) },
                if r.drift.dataset.drift { " DATASET DRIFT" } else { "" },
                r.signals.error_rate * 100.0,
                r.signals.empty_caption_rate * 100.0,
                r.captions.boilerplate_prefix_rate * 100.0,
                r.captions.clip_score_mean.map(|c| format!(", CLIPScore {c:.3}")).unwrap_or_default(),
            )?;
            if r.data_quality.issues > 0 {
                writeln!(
                    out,
                    "  data quality: {}",
                    data_quality_summary(&r.data_quality)
                )?;
            }
            if let Some(l) = &r.learned {
                writeln!(out, "  learned: {}", learned_summary(l))?;
            }
            if let Some(e) = &r.estimator {
                writeln!(out, "  estimator: {}", estimator_summary(e))?;
            }
            for d in decisions.iter().flatten() {
                if crate::rules::LOOP_RULE_NAMES.contains(&d.rule.as_str()) {
                    writeln!(
                        out,
                        "  {} -> {}: {} ({})",
                        d.rule,
                        d.action.as_str(),
                        d.outcome.describe(),
                        d.reason
                    )?;
                    continue;
                }
                let evidence: Vec<String> = d
                    .evidence
                    .iter()
                    .map(|e| match e.value {
                        Some(v) => format!("{} {v:.4} {} {}", e.metric, e.op, e.threshold),
                        None => format!("{} (no data) {} {}", e.metric, e.op, e.threshold),
                    })
                    .collect();
                writeln!(
                    out,
                    "  rule {} -> {}: {} (breach {} in a row; {})",
                    d.rule,
                    d.action.as_str(),
                    d.outcome.describe(),
                    d.consecutive,
                    evidence.join(", ")
                )?;
            }
            Ok(())
        }
    }
}

/// Lines handed from the reader thread at a time.
const BATCH_LINES: usize = 4096;

/// A line after decoding.
struct Decoded {
    line_no: u64,
    /// The line's bytes when it was rejected (for the dead-letter file).
    raw: Vec<u8>,
    result: Result<crate::event::InferenceEvent<'static>, crate::event::Rejection>,
}

/// One rejected event as a JSON line: where it came from, why, and its bytes.
fn dead_letter(
    out: &mut dyn Write,
    source: &str,
    line_no: u64,
    bytes: &[u8],
    rejection: &crate::event::Rejection,
) -> std::io::Result<()> {
    let mut rec = serde_json::json!({
        "source": source, "line": line_no,
        "reason": rejection.reason.as_str(), "detail": rejection.detail,
    });
    match std::str::from_utf8(bytes) {
        Ok(s) => rec["raw"] = s.into(),
        Err(_) => {
            rec["raw_hex"] = bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into()
        }
    }
    writeln!(out, "{rec}")
}

/// One line of the estimator's figures in a window.
fn estimator_summary(e: &crate::monitor::engine::EstimatorWindow) -> String {
    let mut s = match (e.version, e.validation_rmse, e.predicted_mean) {
        (Some(v), Some(rmse), Some(p)) => format!(
            "predicted rating {p:.3} over {} captions (version {v}, validation RMSE {rmse:.3})",
            e.predicted_captions
        ),
        (Some(v), Some(rmse), None) => {
            format!("no caption predicted (version {v}, validation RMSE {rmse:.3})")
        }
        _ => format!("no version yet ({} rated captions)", e.labelled),
    };
    for t in &e.trained {
        s.push_str(&format!(
            "; trained version {} on {} ({}): RMSE {:.3}{}",
            t.version,
            t.training_samples,
            t.trigger,
            t.validation_rmse,
            match (t.accepted, t.incumbent_rmse) {
                (true, Some(i)) => format!(", accepted (current {i:.3})"),
                (true, None) => ", accepted".to_owned(),
                (false, Some(i)) => format!(", rejected (current {i:.3})"),
                (false, None) => ", rejected".to_owned(),
            }
        ));
    }
    s
}

/// `, p 0.123`, or nothing without a p-value.
fn p_value(p: f64) -> String {
    if p.is_nan() {
        String::new()
    } else {
        format!(", p {p:.3}")
    }
}

/// One line of the learned checks' verdicts.
fn learned_summary(l: &crate::learned::LearnedReport) -> String {
    let flag = |d: bool| if d { " DRIFT" } else { "" };
    let mut parts = Vec::new();
    if let Some(c) = &l.classifier {
        parts.push(match (&c.result, &c.skipped) {
            (Some(r), _) => format!(
                "classifier AUC {:.3} \u{b1} {:.3}{}{}",
                r.auc,
                r.auc_std_error,
                p_value(r.p_value),
                flag(r.drift)
            ),
            (None, why) => format!("classifier skipped ({})", why.as_deref().unwrap_or("")),
        });
    }
    for (name, e) in &l.embeddings {
        let mut s = format!("{name}:");
        if let Some(m) = &e.mmd {
            s.push_str(&format!(
                " MMD p {:.3}, mean shift {:.3}",
                m.p_value, m.mean_shift
            ));
        }
        if let Some(c) = &e.classifier {
            s.push_str(&format!(" AUC {:.3}{}", c.auc, p_value(c.p_value)));
        }
        if let Some(why) = &e.skipped {
            s.push_str(&format!(" skipped ({why})"));
        }
        s.push_str(flag(e.drift));
        parts.push(s);
    }
    format!(
        "{} (samples {} of {} reference, {} of {} window)",
        parts.join("; "),
        l.reference_sample,
        l.reference_events,
        l.current_sample,
        l.current_events
    )
}
