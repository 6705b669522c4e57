//! `driftd demo`: the whole daemon on an embedded default, no Kafka to
//! install. librdkafka's in-process mock cluster stands in for the broker;
//! the generator feeds it a captioning service's logs whose inputs drift half
//! way; `driftd run` consumes them with the example config, checkpoints to a
//! state directory and serves `/metrics` and the JSON API, which the demo
//! then reads like an operator would and prints.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;

use super::CliError;
use crate::source::generate::{generate, GenerateSpec, Scenario};
use crate::source::kafka::LineProducer;

/// What `driftd demo` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoFormat {
    /// The windows and gauges, for a person.
    Text,
    /// One JSON object: events, seconds, the windows (oldest first, as the
    /// API gives them) and the gauges read from /metrics. The progress lines
    /// go to stderr.
    Json,
}

pub struct DemoArgs<'a> {
    pub config: Option<&'a Path>,
    pub format: DemoFormat,
    pub events: u64,
    pub http_listen: &'a str,
    /// Keep serving after the summary until ctrl-c.
    pub serve: bool,
    pub state_dir: &'a Path,
}

const TOPIC: &str = "inference-logs";
/// Events produced at a time (about 2 MB).
const CHUNK: usize = 5000;

fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_owned())
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

pub fn demo(args: &DemoArgs<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| CliError::failure(format!("{what}: {e}"));
    let mut config = super::load_config(args.config)?;
    let cluster = MockCluster::new(1).map_err(|e| fail("starting the mock Kafka cluster", &e))?;
    cluster
        .create_topic(TOPIC, 1, 1)
        .map_err(|e| fail("creating the demo topic", &e))?;
    let brokers = cluster.bootstrap_servers();
    config.kafka.brokers = brokers.clone();
    config.kafka.topics = vec![TOPIC.into()];
    config.kafka.group_id = "driftd-demo".into();
    config.kafka.feedback_topic = None;
    config.kafka.dead_letter_topic = None;
    config.daemon.http_listen = args.http_listen.to_owned();
    config.daemon.state_dir = args.state_dir.to_owned();
    // A fresh start every time: the mock cluster forgets its topics on exit.
    if args.state_dir.join(crate::store::FILE_NAME).exists() {
        std::fs::remove_dir_all(args.state_dir)
            .map_err(|e| fail(&format!("clearing {}", args.state_dir.display()), &e))?;
    }
    let model = "alt-text-captioner";
    let spec = {
        let mut s = GenerateSpec::new(Scenario::CovariateShift, args.events);
        s.model = model.into();
        // 50 events/s of event time: 200,000 events span 13 five-minute windows.
        s.rate = 50.0;
        s
    };
    let profiles = super::load_profiles(&config)?;
    let vocab = super::load_vocabulary(config.quality.vocabulary.as_deref())?;
    let stop = Arc::new(AtomicBool::new(false));
    let addr = args.http_listen.to_owned();
    let events = args.events;
    let serve = args.serve;
    let format = args.format;
    // In JSON, stdout holds the result alone; what the demo is doing goes to stderr.
    let say = |out: &mut dyn Write, line: String| {
        if format == DemoFormat::Json {
            eprintln!("{line}");
        } else {
            writeln!(out, "{line}").ok();
        }
    };
    say(
        out,
        format!(
            "driftd demo: mock Kafka at {brokers}, {events} events of {model} (inputs drift from event {}), HTTP on http://{addr}",
            spec.drift_at
        ),
    );
    let daemon = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            crate::daemon::run(
                config,
                vocab,
                profiles,
                crate::daemon::RunOptions {
                    config_path: None,
                    exit_when_idle: None,
                    stop: Some(stop),
                },
            )
        })
    };
    let watched = watch(&brokers, &spec, &addr, events, format, out);
    if watched.is_err() || !serve {
        stop.store(true, Ordering::SeqCst);
    } else {
        say(
            out,
            format!("\nserving http://{addr}/ (the live page), /metrics and /api/v1/models until ctrl-c"),
        );
        out.flush().ok();
    }
    let run = daemon
        .join()
        .map_err(|_| CliError::failure("the daemon thread panicked"))?;
    run.map_err(|e| CliError::failure(format!("{e:#}")))?;
    watched.map_err(CliError::failure)?;
    drop(cluster);
    Ok(())
}

/// Produce the events, wait until the daemon has consumed them all, then
/// print what its API and metrics say.
fn watch(
    brokers: &str,
    spec: &GenerateSpec,
    addr: &str,
    events: u64,
    format: DemoFormat,
    out: &mut dyn Write,
) -> Result<(), String> {
    let model = spec.model.as_str();
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(addr, "/readyz").is_none() {
        if Instant::now() > deadline {
            return Err("the daemon was not ready (partitions assigned) within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let consumed = || {
        get(addr, "/metrics")
            .and_then(|m| metric(&m, "driftd_events_consumed_total"))
            .unwrap_or(0.0) as u64
    };
    // The mock cluster keeps only the newest 5 MB of a partition, so the
    // events go out in chunks no further ahead of the consumer than that.
    let started = Instant::now();
    let mut p = LineProducer::new(brokers, TOPIC, model).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    generate(spec, &mut lines).map_err(|e| e.to_string())?;
    let mut sent = 0u64;
    for chunk in lines
        .split_inclusive(|&b| b == b'\n')
        .collect::<Vec<_>>()
        .chunks(CHUNK)
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        while sent >= CHUNK as u64 && consumed() + (CHUNK as u64) < sent {
            if Instant::now() > deadline {
                return Err(format!(
                    "the daemon consumed {} of {sent} events sent",
                    consumed()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for line in chunk {
            p.write_all(line).map_err(|e| e.to_string())?;
        }
        p.flush_queue(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        sent += chunk.len() as u64;
    }
    p.finish(Duration::from_secs(60))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while consumed() < events {
        if Instant::now() > deadline {
            return Err(format!(
                "the daemon consumed {} of {events} events",
                consumed()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let consumed_in = started.elapsed();
    // Windows reach the API and the gauges with the checkpoint that makes
    // them durable: wait for one written after the last event (one comes
    // within state.checkpoint_interval, sooner when windows are pending).
    let checkpoints = || {
        get(addr, "/metrics")
            .and_then(|m| metric(&m, "driftd_checkpoints_total"))
            .unwrap_or(0.0)
    };
    let before = checkpoints();
    let deadline = Instant::now() + Duration::from_secs(6);
    while checkpoints() <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = get(addr, "/metrics").unwrap_or_default();
    let windows = get(addr, &format!("/api/v1/models/{model}/windows?limit=1000"))
        .unwrap_or_else(|| "[]".into());
    let mut ws: Vec<serde_json::Value> = serde_json::from_str(&windows).unwrap_or_default();
    let shown = |l: &&str| {
        l.starts_with("driftd_feature_drift{")
            || l.starts_with("driftd_dataset_drift")
            || l.starts_with("driftd_events_consumed_total")
            || l.starts_with("driftd_windows_closed_total")
    };
    if format == DemoFormat::Json {
        ws.reverse();
        let gauges: serde_json::Map<String, serde_json::Value> = metrics
            .lines()
            .filter(shown)
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse::<f64>().ok()?.into()))
            })
            .collect();
        let body = serde_json::json!({
            "events": events,
            "seconds": consumed_in.as_secs_f64(),
            "model": model,
            "http": format!("http://{addr}"),
            "windows": ws,
            "gauges": gauges,
        });
        writeln!(out, "{body}").map_err(|e| e.to_string())?;
        return out.flush().map_err(|e| e.to_string());
    }
    let mut text = format!(
        "{events} events produced, consumed and evaluated in {:.1}s\n\nGET /api/v1/models/{model}/windows: {} closed windows, oldest first\n",
        consumed_in.as_secs_f64(),
        ws.len()
    );
    for w in ws.iter().rev() {
        let drifted: Vec<&str> = w["drift"]["features"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .filter(|f| f["drift"] == true)
                    .filter_map(|f| f["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "  window {:>2}  {} .. {}  {:>6} events  drift share {:.2}{}  {}\n",
            w["window"]["index"].as_u64().unwrap_or(0),
            w["window"]["start"].as_str().unwrap_or(""),
            w["window"]["end"].as_str().unwrap_or(""),
            w["signals"]["events"].as_u64().unwrap_or(0),
            w["drift"]["dataset"]["share"].as_f64().unwrap_or(0.0),
            if w["drift"]["dataset"]["drift"] == true {
                "  DATASET DRIFT"
            } else {
                ""
            },
            drifted.join(", "),
        ));
    }
    text.push_str("\nGET /metrics (newest window):\n");
    for l in metrics.lines().filter(shown) {
        text.push_str("  ");
        text.push_str(l);
        text.push('\n');
    }
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}
