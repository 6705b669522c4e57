//! Command implementations. `main.rs` parses arguments and maps a
//! [`CliError`] to an exit code; everything else is here.

mod captions;
mod demo;
mod export;
mod progress;
mod replay;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::baseline::{read_dataset, Dataset, Profile};
use crate::config::Config;
use crate::learned::window::{draw, DatasetSample};
use crate::learned::LearnedJob;
use crate::monitor::{evaluate, Reference};
use crate::report::{render_html, render_json, HtmlContext};
pub use captions::{score_captions, CaptionFormat, ScoreCaptionsArgs};
pub use demo::{demo, DemoArgs, DemoFormat};
pub use export::{export, ExportArgs, ExportFormat, ExportTable, Exported};
pub use progress::Progress;
pub use replay::{replay, ReplayArgs, ReplayFormat};

/// Exit code for bad input: config, files, arguments.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for failures that are not the input's fault (e.g. cannot write output).
pub const EXIT_FAILURE: u8 = 1;

/// A command failure: what to print and how to exit.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_BAD_INPUT,
            message: message.into(),
        }
    }
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

/// Read the config at `path`, or the built-in defaults when there is none.
pub fn load_config(path: Option<&Path>) -> Result<Config, CliError> {
    match path {
        None => Ok(Config::default()),
        Some(p) => Config::load(p, &|k| std::env::var(k).ok())
            .map_err(|e| CliError::bad_input(e.to_string())),
    }
}

/// The vocabulary file at `path`, or the shipped English list.
pub(crate) fn load_vocabulary(path: Option<&Path>) -> Result<crate::quality::Vocabulary, CliError> {
    match path {
        None => Ok(crate::quality::Vocabulary::english()),
        Some(p) => std::fs::read_to_string(p)
            .map(|t| crate::quality::Vocabulary::from_text(&t))
            .map_err(|e| CliError::bad_input(format!("{}: cannot read: {e}", p.display()))),
    }
}

/// `driftd check-config`: prints every problem; Ok(true) when valid.
pub fn check_config(
    path: &Path,
    format: CheckFormat,
    out: &mut dyn Write,
) -> Result<bool, CliError> {
    let result = Config::load(path, &|k| std::env::var(k).ok());
    let write_err = |e: std::io::Error| CliError::failure(format!("cannot write output: {e}"));
    match (format, &result) {
        (CheckFormat::Json, _) => {
            let problems: Vec<serde_json::Value> = match &result {
                Ok(_) => vec![],
                Err(e) => e
                    .problems
                    .iter()
                    .map(|p| serde_json::json!({"path": p.path, "message": p.message}))
                    .collect(),
            };
            let body = serde_json::json!({"config": path.display().to_string(), "valid": result.is_ok(), "problems": problems});
            writeln!(out, "{body}").map_err(write_err)?;
        }
        (CheckFormat::Text, Ok(c)) => {
            let names: Vec<&str> = c.models.keys().map(String::as_str).collect();
            writeln!(
                out,
                "{}: valid ({} model(s){}{})",
                path.display(),
                names.len(),
                if names.is_empty() { "" } else { ": " },
                names.join(", ")
            )
            .map_err(write_err)?;
        }
        (CheckFormat::Text, Err(e)) => {
            for p in &e.problems {
                writeln!(out, "{p}").map_err(write_err)?;
            }
            writeln!(out, "{}: {} problem(s)", path.display(), e.problems.len())
                .map_err(write_err)?;
        }
    }
    Ok(result.is_ok())
}

pub struct ReportArgs<'a> {
    pub reference: Option<&'a Path>,
    pub baseline: Option<&'a Path>,
    pub current: &'a Path,
    pub config: Option<&'a Path>,
    pub model: Option<&'a str>,
    pub format: ReportFormat,
    pub out: Option<&'a Path>,
    /// Run the learned checks whatever the config says.
    pub learned: bool,
}

/// `driftd report`.
pub fn report(
    args: &ReportArgs<'_>,
    progress: &Progress,
    stdout: &mut dyn Write,
) -> Result<(), CliError> {
    let config = load_config(args.config)?;
    // Settings of the model named on the command line, else of the model the
    // current file's events belong to.
    let model_of =
        |ds: &Dataset| config.model(args.model.or(ds.model.as_deref()).unwrap_or_default());
    let read = |path: &Path| -> Result<Dataset, CliError> {
        progress.stage(format!("reading {}", path.display()));
        read_dataset(path, &config, args.model).map_err(|e| CliError::bad_input(e.to_string()))
    };
    /// The reference as loaded: a dataset or a profile.
    enum Loaded {
        Data(Dataset),
        Profile(Profile),
    }
    let (reference_path, loaded, current) = match (args.reference, args.baseline) {
        (Some(r), None) => {
            // Read both files at once: parsing dominates and they are independent.
            let (reference, current) = std::thread::scope(|s| {
                let h = s.spawn(|| read(r));
                let c = read(args.current);
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(CliError::failure("reader thread panicked")));
                (r, c)
            });
            (r, Loaded::Data(reference?), current?)
        }
        (None, Some(b)) => {
            progress.stage(format!("reading profile {}", b.display()));
            let profile = Profile::load(b).map_err(|e| CliError::bad_input(e.to_string()))?;
            (b, Loaded::Profile(profile), read(args.current)?)
        }
        _ => {
            return Err(CliError::bad_input(
                "give exactly one of --reference FILE or --baseline PROFILE",
            ))
        }
    };
    let reference = match &loaded {
        Loaded::Data(d) => Reference::Data(&d.features),
        Loaded::Profile(p) => Reference::Profile(&p.features),
    };
    let reference_name = reference_path.display().to_string();
    let current_name = args.current.display().to_string();
    progress.stage("computing drift statistics");
    let report = evaluate(
        reference,
        &current.features,
        &model_of(&current),
        &config.drift,
        (&reference_name, &current_name),
    )
    .map_err(|problems| CliError::bad_input(problems.join("\n")))?;
    let mut settings = model_of(&current).learned;
    settings.enabled |= args.learned;
    let learned = settings.enabled.then(|| {
        progress.stage("running the learned checks");
        let (sample, numeric): (Option<&DatasetSample>, Vec<&String>) = match &loaded {
            Loaded::Data(d) => (
                Some(&d.sample),
                d.features
                    .iter()
                    .filter(|(_, f)| f.is_plain_number())
                    .map(|(k, _)| k)
                    .collect(),
            ),
            Loaded::Profile(p) => (
                p.sample.as_ref(),
                p.features
                    .iter()
                    .filter(|(_, f)| f.is_plain_number())
                    .map(|(k, _)| k)
                    .collect(),
            ),
        };
        let empty = DatasetSample::default();
        let reference = sample.unwrap_or(&empty);
        // The files' samples hold up to `reference_size` rows; the checks
        // compare `sample_size` of each.
        let n = settings.sample_size;
        LearnedJob {
            seed: settings.seed,
            columns: numeric
                .into_iter()
                .filter(|k| current.features.contains_key(*k))
                .cloned()
                .collect(),
            reference: draw(&reference.events, n, !settings.seed),
            reference_seen: reference.seen,
            current: draw(
                &current.sample.events,
                n,
                settings.seed ^ 0x6375_7272_656e_7400,
            ),
            current_seen: current.sample.seen,
            settings,
        }
        .run()
    });
    let body = match args.format {
        ReportFormat::Json => render_json(&report, learned.as_ref()),
        ReportFormat::Html => render_html(
            &report,
            &HtmlContext {
                reference: &reference_name,
                current: &current_name,
                model: args.model,
                learned: learned.as_ref(),
            },
        ),
    };
    emit(args.out, &body, stdout)
}

/// `driftd baseline`: build a profile from one or more files of one model.
pub fn baseline(
    inputs: &[PathBuf],
    config: Option<&Path>,
    model: Option<&str>,
    out: &Path,
    progress: &Progress,
) -> Result<Profile, CliError> {
    let config = load_config(config)?;
    if inputs.is_empty() {
        return Err(CliError::bad_input("give at least one --input FILE"));
    }
    let mut merged: Option<BTreeMap<String, crate::baseline::FeatureData>> = None;
    let mut rows = 0;
    let mut first_name = String::new();
    let mut model_seen: Option<String> = None;
    let mut sample: Option<crate::learned::window::DatasetSample> = None;
    let learned = config.model(model.unwrap_or_default()).learned;
    for path in inputs {
        progress.stage(format!("reading {}", path.display()));
        let ds =
            read_dataset(path, &config, model).map_err(|e| CliError::bad_input(e.to_string()))?;
        rows += ds.rows;
        model_seen = model_seen.or(ds.model.clone());
        sample = Some(match sample.take() {
            None => ds.sample.clone(),
            Some(acc) => acc.merge(
                ds.sample.clone(),
                learned.reference_size,
                rows ^ learned.seed,
            ),
        });
        match &mut merged {
            None => {
                first_name = path.display().to_string();
                merged = Some(ds.features);
            }
            Some(acc) => {
                let this = path.display().to_string();
                let mut problems = Vec::new();
                for k in acc.keys() {
                    if !ds.features.contains_key(k) {
                        problems.push(format!(
                            "{this}: column {k:?} is in {first_name} but not here"
                        ));
                    }
                }
                for k in ds.features.keys() {
                    if !acc.contains_key(k) {
                        problems.push(format!(
                            "{first_name}: column {k:?} is in {this} but not here"
                        ));
                    }
                }
                if !problems.is_empty() {
                    return Err(CliError::bad_input(problems.join("\n")));
                }
                for (k, v) in ds.features {
                    if let Some(a) = acc.get_mut(&k) {
                        a.merge(v).map_err(|m| {
                            CliError::bad_input(format!("{this}: column {k:?} {m}"))
                        })?;
                    }
                }
            }
        }
    }
    progress.stage("summarizing");
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let joined = names.join(", ");
    let mut profile = Profile::build(
        model.or(model_seen.as_deref()),
        names,
        rows,
        &merged.unwrap_or_default(),
    )
    .map_err(|m| CliError::bad_input(format!("{joined}: {m}")))?;
    profile.sample = sample.filter(|s| !s.events.is_empty());
    std::fs::write(out, profile.to_json())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", out.display())))?;
    Ok(profile)
}

pub(crate) fn emit(out: Option<&Path>, body: &str, stdout: &mut dyn Write) -> Result<(), CliError> {
    match out {
        Some(p) => std::fs::write(p, body)
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", p.display()))),
        None => stdout
            .write_all(body.as_bytes())
            .and_then(|_| stdout.flush())
            .map_err(|e| CliError::failure(format!("cannot write to stdout: {e}"))),
    }
}

/// `driftd generate`: synthetic logs to a file or stdout.
pub fn generate(
    spec: &crate::source::generate::GenerateSpec,
    to: &str,
    stdout: &mut dyn Write,
) -> Result<(), CliError> {
    if !(spec.rate.is_finite() && spec.rate > 0.0) {
        return Err(CliError::bad_input(format!(
            "--rate must be a positive number, got {}",
            spec.rate
        )));
    }
    if let Some(rest) = to.strip_prefix("kafka://") {
        let (brokers, topic) = rest
            .split_once('/')
            .filter(|(b, t)| !b.is_empty() && !t.is_empty() && !t.contains('/'))
            .ok_or_else(|| {
                CliError::bad_input(format!(
                    "{to}: expected kafka://BROKERS/TOPIC, e.g. kafka://localhost:9092/inference-logs"
                ))
            })?;
        let mut p = crate::source::kafka::LineProducer::new(brokers, topic, &spec.model)
            .map_err(|e| CliError::failure(format!("{to}: {e}")))?;
        crate::source::generate::generate(spec, &mut p)
            .map_err(|e| CliError::failure(format!("{to}: {e}")))?;
        let n = p
            .finish(std::time::Duration::from_secs(60))
            .map_err(|e| CliError::failure(format!("{to}: {e}")))?;
        eprintln!("driftd: produced {n} events to {topic} at {brokers}");
        return Ok(());
    }
    let result = if to == "-" {
        crate::source::generate::generate(spec, stdout)
    } else {
        let file = std::fs::File::create(to)
            .map_err(|e| CliError::failure(format!("cannot create {to}: {e}")))?;
        crate::source::generate::generate(spec, &mut std::io::BufWriter::new(file))
    };
    result.map_err(|e| CliError::failure(format!("cannot write {to}: {e}")))
}

/// Reference profiles named by the config (`models.<name>.baseline`).
pub fn load_profiles(
    config: &Config,
) -> Result<std::collections::BTreeMap<String, crate::baseline::Profile>, CliError> {
    let mut profiles = std::collections::BTreeMap::new();
    for (name, m) in &config.models {
        if let Some(path) = &m.baseline {
            let p = crate::baseline::Profile::load(path)
                .map_err(|e| CliError::bad_input(e.to_string()))?;
            profiles.insert(name.clone(), p);
        }
    }
    Ok(profiles)
}

/// `driftd run`: load the config (with the environment overrides), then
/// hand over to the daemon.
pub fn run(config: Option<&Path>, options: crate::daemon::RunOptions) -> Result<(), CliError> {
    let mut config = load_config(config)?;
    config.apply_env_overrides(&|k| std::env::var(k).ok());
    let profiles = load_profiles(&config)?;
    let vocab = load_vocabulary(config.quality.vocabulary.as_deref())?;
    crate::daemon::run(config, vocab, profiles, options)
        .map_err(|e| CliError::failure(format!("{e:#}")))
}
