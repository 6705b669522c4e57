//! `driftd replay`: the streaming pipeline over a file, as fast as it goes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::{load_config, CliError};
use crate::baseline::Profile;
use crate::monitor::engine::{Engine, WindowReport};
use crate::quality::Vocabulary;
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
}

/// Run the replay; returns the engine's counters as JSON for the summary.
pub fn replay(
    args: &ReplayArgs<'_>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let config = load_config(args.config)?;
    let mut profiles = BTreeMap::new();
    for (name, m) in &config.models {
        if let Some(path) = &m.baseline {
            let p = Profile::load(path).map_err(|e| CliError::bad_input(e.to_string()))?;
            profiles.insert(name.clone(), p);
        }
    }
    let vocab = match &config.quality.vocabulary {
        Some(p) => Vocabulary::from_text(
            &std::fs::read_to_string(p)
                .map_err(|e| CliError::bad_input(format!("{}: cannot read: {e}", p.display())))?,
        ),
        None => Vocabulary::english(),
    };
    let mut engine = Engine::new(config, vocab, profiles);
    let mut dead = match args.dead_letter {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| CliError::failure(format!("cannot create {}: {e}", p.display())),
        )?)),
        None => None,
    };
    let reader: Box<dyn std::io::Read> = if args.input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(args.input)
                .map_err(|e| CliError::bad_input(format!("{}: cannot open: {e}", args.input)))?,
        )
    };
    let mut source = LineSource::new(reader);
    let mut out = std::io::BufWriter::new(stdout);
    let write_err = |e: std::io::Error| CliError::failure(format!("cannot write output: {e}"));
    loop {
        let (line_no, bytes) = match source.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                return Err(CliError::bad_input(format!(
                    "{}: cannot read: {e}",
                    args.input
                )))
            }
        };
        match engine.process(bytes) {
            Ok(reports) => {
                for r in reports {
                    emit(&mut out, &r, args.format).map_err(write_err)?;
                }
            }
            Err(rejection) => {
                if let Some(d) = dead.as_mut() {
                    let raw = match std::str::from_utf8(bytes) {
                        Ok(s) => serde_json::json!({"raw": s}),
                        Err(_) => {
                            serde_json::json!({"raw_hex": bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()})
                        }
                    };
                    let mut rec = serde_json::json!({
                        "source": args.input, "line": line_no,
                        "reason": rejection.reason.as_str(), "detail": rejection.detail,
                    });
                    rec.as_object_mut()
                        .expect("object")
                        .extend(raw.as_object().expect("object").clone());
                    writeln!(d, "{rec}").map_err(write_err)?;
                }
            }
        }
    }
    for r in engine.finish() {
        emit(&mut out, &r, args.format).map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    if let Some(mut d) = dead {
        d.flush().map_err(write_err)?;
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
    for (model, version, n) in engine.learning() {
        let _ = writeln!(
            stderr,
            "driftd: {model} {version}: still learning its baseline ({n} events so far, baseline.learn_events needed); no window evaluated"
        );
    }
    Ok(())
}

fn emit(out: &mut dyn Write, r: &WindowReport, format: ReplayFormat) -> std::io::Result<()> {
    match format {
        ReplayFormat::Json => {
            serde_json::to_writer(&mut *out, r).map_err(std::io::Error::other)?;
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
            )
        }
    }
}
