//! The `driftd` command: parse arguments, run the command from the library,
//! exit 0 on success, 2 on bad input (config, files, arguments), 1 otherwise.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the replay and daemon paths allocate on one thread and free on
/// another, which glibc's allocator handles poorly (measured: 3.4 s of system
/// time per million events, against 0.2 s with mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use driftd::cli::{
    self, CaptionFormat, CheckFormat, CliError, ExportArgs, ExportFormat, ExportTable, Progress,
    ReplayArgs, ReplayFormat, ReportArgs, ReportFormat, ScoreCaptionsArgs,
};
use driftd::source::generate::{GenerateSpec, Scenario};

#[derive(Parser)]
#[command(
    name = "driftd",
    version,
    about = "Drift and caption-quality monitor for ML models in production",
    after_help = "Exit codes: 0 success; 2 bad input (config, files, arguments), one line per \
problem naming the file, column or key; 1 anything else (e.g. cannot write the output, \
the broker is unreachable). Results go to stdout (--format json where a command prints \
one), progress and logs to stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file and print every problem at once.
    ///
    /// Exit 0 when valid, 2 when not.
    ///
    /// Example: driftd check-config --config config/driftd.toml
    CheckConfig {
        /// Config file (TOML).
        #[arg(long, env = "DRIFTD_CONFIG", default_value = "config/driftd.toml")]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
    },
    /// Compare a current dataset with a reference (file or profile).
    ///
    /// Files are Parquet, CSV or NDJSON by extension: flat tables, or
    /// inference-log events. JSON goes to stdout unless --out is given.
    ///
    /// Example: driftd report --reference samples/reference.csv --current samples/current.csv
    Report {
        /// Reference dataset.
        #[arg(
            long,
            conflicts_with = "baseline",
            required_unless_present = "baseline"
        )]
        reference: Option<PathBuf>,
        /// Reference profile written by `driftd baseline`.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Current dataset.
        #[arg(long)]
        current: PathBuf,
        /// Config file (TOML); built-in defaults when absent.
        #[arg(long, env = "DRIFTD_CONFIG")]
        config: Option<PathBuf>,
        /// Model whose settings (and, in event logs, events) to use.
        #[arg(long)]
        model: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
        /// Write the report here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run the learned checks (domain classifier, embedding MMD) on
        /// samples of both files, whatever `learned.enabled` says.
        #[arg(long)]
        learned: bool,
    },
    /// Score captions: BLEU-1..4, ROUGE-L and CIDEr-D (as pycocoevalcap 1.2)
    /// where references are given, reference-free descriptors always, CLIPScore
    /// where embeddings are given.
    ///
    /// Each input line is {"id", "candidate", "references"?, "image_embedding"?,
    /// "caption_embedding"?, "reference_embeddings"?}. Bad lines are reported
    /// with their line number and skipped (fatal with --strict).
    ///
    /// Example: driftd score-captions --input captions.jsonl --format table
    ScoreCaptions {
        /// Captions, one JSON object per line.
        #[arg(long)]
        input: PathBuf,
        /// Config file; its [quality] section sets the vocabulary and document
        /// frequencies unless the flags below do.
        #[arg(long, env = "DRIFTD_CONFIG")]
        config: Option<PathBuf>,
        /// Frozen CIDEr-D document frequencies (from --write-df) instead of the
        /// references of this file.
        #[arg(long)]
        df: Option<PathBuf>,
        /// Write the document frequencies used, to freeze them for later runs.
        #[arg(long)]
        write_df: Option<PathBuf>,
        /// Vocabulary for the out-of-vocabulary rate, one word per line
        /// (default: the shipped English list).
        #[arg(long)]
        vocabulary: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = CaptionFormat::Json)]
        format: CaptionFormat,
        /// Stop at the first bad line (exit 2) instead of skipping it.
        #[arg(long)]
        strict: bool,
        /// Write the result here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the streaming pipeline over a file of inference-log events.
    ///
    /// Prints a report per window as windows close (one JSON object per line
    /// with --format json) and a summary on stderr. Needs no config: each model
    /// version learns a baseline from its first events and default thresholds
    /// apply.
    ///
    /// Example: driftd replay --input logs.ndjson --format json
    Replay {
        /// NDJSON events, or - for stdin.
        #[arg(long)]
        input: String,
        #[arg(long, env = "DRIFTD_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = ReplayFormat::Text)]
        format: ReplayFormat,
        /// Write rejected events here (JSON lines with reason and raw bytes).
        #[arg(long)]
        dead_letter: Option<PathBuf>,
        /// MODEL=VERSION: judge VERSION's windows in the log as a registered
        /// candidate under [promotion] (repeatable).
        #[arg(long, value_name = "MODEL=VERSION")]
        candidate: Vec<String>,
        /// NDJSON feedback events (references, ratings), in time order,
        /// joined to the log's events by id as the daemon joins its feedback
        /// topic: each is fed once the log reaches its timestamp.
        #[arg(long)]
        feedback: Option<PathBuf>,
    },
    /// Run the daemon: consume inference logs from Kafka, evaluate windows,
    /// checkpoint to the state store, serve /metrics, /healthz, /readyz and
    /// the JSON API.
    ///
    /// Environment overrides: DRIFTD_KAFKA_BROKERS, DRIFTD_KAFKA_TOPIC,
    /// DRIFTD_KAFKA_GROUP, DRIFTD_HTTP_LISTEN, DRIFTD_STATE_DIR. Logs go to
    /// stderr (DRIFTD_LOG sets the filter, DRIFTD_LOG_FORMAT=json for JSON).
    ///
    /// Example: driftd run --config config/driftd.toml
    Run {
        #[arg(long, env = "DRIFTD_CONFIG")]
        config: Option<PathBuf>,
        /// Stop cleanly (checkpoint, commit, exit 0) after this long without
        /// events, e.g. 30s: for batch jobs and tests.
        #[arg(long)]
        exit_when_idle: Option<String>,
    },
    /// The whole daemon on an embedded default, no Kafka to install.
    ///
    /// Starts librdkafka's in-process mock cluster, feeds it synthetic logs
    /// whose inputs drift half way, runs `driftd run` against it and prints
    /// the closed windows from the JSON API and the drift gauges from
    /// /metrics.
    ///
    /// Example: driftd demo --serve   (then curl localhost:9898/metrics)
    Demo {
        /// Config file (its [kafka] section is replaced by the mock cluster).
        #[arg(long, default_value = "config/driftd.toml")]
        config: PathBuf,
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        #[arg(long, default_value = "127.0.0.1:9898")]
        http_listen: String,
        /// Checkpoints go here (cleared at the start).
        #[arg(long, default_value = "driftd-demo-state")]
        state_dir: PathBuf,
        /// Keep serving after the summary until ctrl-c.
        #[arg(long)]
        serve: bool,
        #[arg(long, value_enum, default_value_t = cli::DemoFormat::Text)]
        format: cli::DemoFormat,
    },
    /// Write synthetic inference logs of a captioning service (NDJSON).
    ///
    /// Deterministic for a seed; the scenario's change starts at --drift-at
    /// (default: half way).
    ///
    /// Example: driftd generate --scenario quality-drop --events 100000 --to logs.ndjson
    Generate {
        #[arg(long, value_enum, default_value_t = Scenario::Stable)]
        scenario: Scenario,
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Events per second of event time.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First changed event (default: events / 2).
        #[arg(long)]
        drift_at: Option<u64>,
        /// Dimensions of image and caption embeddings (0: none).
        #[arg(long, default_value_t = 0)]
        embedding_dims: usize,
        /// Model name in the events.
        #[arg(long, default_value = "alt-text-captioner")]
        model: String,
        /// FILE, - for stdout, or kafka://BROKERS/TOPIC (keyed by model).
        #[arg(long, default_value = "-")]
        to: String,
    },
    /// Build a reference profile from one or more datasets.
    ///
    /// Example: driftd baseline --input samples/reference.csv --out reference.profile.json
    Baseline {
        /// Reference dataset(s); all must have the same columns.
        #[arg(long = "input", required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        #[arg(long, env = "DRIFTD_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        model: Option<String>,
        /// Where to write the profile (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Export the state store's history as a Parquet or CSV table, for
    /// notebooks: windows (drift, quality, signals, learned checks, predicted
    /// quality), per-feature drift, or rule decisions. Reads the store
    /// without locking out a running daemon.
    ///
    /// Example: driftd export --config config/driftd.toml --table windows --out windows.parquet
    ///
    /// Example: driftd export --state /var/lib/driftd --table decisions --format csv --out decisions.csv --since 2026-11-01T00:00:00Z
    Export {
        /// Config file: its state.dir is the store (unless --state).
        #[arg(long, env = "DRIFTD_CONFIG")]
        config: Option<PathBuf>,
        /// The state directory (overrides the config's state.dir).
        #[arg(long)]
        state: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = ExportTable::Windows)]
        table: ExportTable,
        #[arg(long, value_enum, default_value_t = ExportFormat::Parquet)]
        format: ExportFormat,
        /// Only windows (and decisions) ending at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a shell completion script for driftd's commands and options.
    ///
    /// Example: driftd completions bash > /etc/bash_completion.d/driftd
    ///
    /// Example: driftd completions zsh > "${fpath[1]}/_driftd"
    ///
    /// Example: driftd completions fish > ~/.config/fish/completions/driftd.fish
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon says what it does (info); one-shot commands only warn.
    let default_level = if matches!(cli.command, Command::Run { .. }) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRIFTD_LOG")
        .unwrap_or_else(|_| default_level.into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if std::env::var("DRIFTD_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A message may quote input (a column name, a line of a file):
            // control characters are shown escaped, never sent to the terminal.
            for line in e.message.split('\n') {
                eprintln!("driftd: {}", driftd::event::printable(line, 64 * 1024));
            }
            ExitCode::from(e.code)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let mut stdout = std::io::stdout().lock();
    // Progress only where a person is watching, or when explicitly asked for.
    let progress_on =
        std::io::stderr().is_terminal() || std::env::var_os("DRIFTD_PROGRESS").is_some();
    match cli.command {
        Command::CheckConfig { config, format } => {
            let ok = cli::check_config(&config, format, &mut stdout)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(cli::EXIT_BAD_INPUT)
            })
        }
        Command::Report {
            reference,
            baseline,
            current,
            config,
            model,
            format,
            out,
            learned,
        } => {
            let progress = Progress::start(progress_on);
            let args = ReportArgs {
                learned,
                reference: reference.as_deref(),
                baseline: baseline.as_deref(),
                current: &current,
                config: config.as_deref(),
                model: model.as_deref(),
                format,
                out: out.as_deref(),
            };
            cli::report(&args, &progress, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ScoreCaptions {
            input,
            config,
            df,
            write_df,
            vocabulary,
            format,
            strict,
            out,
        } => {
            let args = ScoreCaptionsArgs {
                input: &input,
                config: config.as_deref(),
                df: df.as_deref(),
                write_df: write_df.as_deref(),
                vocabulary: vocabulary.as_deref(),
                format,
                strict,
                out: out.as_deref(),
            };
            cli::score_captions(&args, &mut stdout, &mut std::io::stderr())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            input,
            config,
            format,
            dead_letter,
            candidate,
            feedback,
        } => {
            let progress = Progress::start(progress_on);
            let args = ReplayArgs {
                progress: Some(&progress),
                feedback: feedback.as_deref(),
                input: &input,
                config: config.as_deref(),
                format,
                dead_letter: dead_letter.as_deref(),
                candidates: &candidate,
            };
            cli::replay(&args, &mut stdout, &mut std::io::stderr())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "driftd", &mut stdout);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            config,
            state,
            table,
            format,
            since,
            out,
        } => {
            let state = match state {
                Some(s) => s,
                None => cli::load_config(config.as_deref())?.daemon.state_dir,
            };
            let progress = Progress::start(progress_on);
            let done = cli::export(&ExportArgs {
                state: &state,
                table,
                format,
                out: &out,
                since: since.as_deref(),
                progress: &progress,
            })?;
            progress.finish();
            eprintln!(
                "driftd: wrote {} rows of {} ({} columns) to {}",
                done.rows,
                done.table,
                done.columns.len(),
                done.path
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            exit_when_idle,
        } => {
            let exit_when_idle = match exit_when_idle {
                None => None,
                Some(v) => Some(std::time::Duration::from_millis(
                    driftd::config::parse_duration_ms(&v)
                        .map_err(|e| CliError::bad_input(format!("--exit-when-idle: {e}")))?
                        as u64,
                )),
            };
            cli::run(
                config.as_deref(),
                driftd::daemon::RunOptions {
                    exit_when_idle,
                    stop: None,
                    config_path: config.clone(),
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            config,
            events,
            http_listen,
            state_dir,
            serve,
            format,
        } => {
            cli::demo(
                &cli::DemoArgs {
                    config: Some(&config),
                    format,
                    events,
                    http_listen: &http_listen,
                    serve,
                    state_dir: &state_dir,
                },
                &mut stdout,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate {
            scenario,
            events,
            rate,
            seed,
            drift_at,
            embedding_dims,
            model,
            to,
        } => {
            let mut spec = GenerateSpec::new(scenario, events);
            spec.model = model;
            spec.rate = rate;
            spec.seed = seed;
            spec.drift_at = drift_at.unwrap_or(events / 2);
            spec.embedding_dims = embedding_dims;
            cli::generate(&spec, &to, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Baseline {
            inputs,
            config,
            model,
            out,
        } => {
            let progress = Progress::start(progress_on);
            let p = cli::baseline(
                &inputs,
                config.as_deref(),
                model.as_deref(),
                &out,
                &progress,
            )?;
            drop(progress);
            eprintln!(
                "driftd: wrote {} ({} features, {} rows)",
                out.display(),
                p.features.len(),
                p.rows
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
