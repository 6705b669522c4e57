//! Issue 15 through `driftd run` on a real broker: a producer that mixes
//! valid events with every attack the issue names never stops the daemon,
//! never forges or breaks `/metrics`, and leaves the valid model's windows
//! as a clean stream's; a dead-letter topic that is missing or refuses a
//! record costs a count, never consumption.

mod common;
mod support;

use std::time::Duration;

use driftd::source::generate::Scenario;
use support::broker::*;
use support::daemon::*;

const MODEL: &str = "alt-text-captioner";
const WINDOWS: &str =
    "[windows]\nsize = \"20s\"\nallowed_lateness = \"5s\"\n[baseline]\nlearn_events = 1000\n";

/// The attacks, each with the reason it is rejected for (`None`: accepted
/// but held back or otherwise harmless).
fn attacks() -> Vec<(Vec<u8>, Option<&'static str>)> {
    let valid = |model: &str, ts: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({
            "event_id": "x", "timestamp": ts, "model": model, "model_version": "3.2.0",
            "features": {"brightness": 0.5, "source": "mobile"},
            "prediction": {"caption": "a dog", "confidence": 0.9},
        }))
        .unwrap()
    };
    let padded = |len: usize| {
        let head = format!(r#"{{"model":"{MODEL}","pad":""#);
        format!("{head}{}\"}}", "x".repeat(len - head.len() - 2)).into_bytes()
    };
    vec![
        // 1,000,100 bytes: within max_event_bytes (1 MiB), beyond librdkafka's
        // default producer limit of 1,000,000 (its dead letter made the
        // daemon exit); its dead letter is cut to fit.
        (padded(1_000_100), Some("missing_field")),
        // Beyond max_event_bytes.
        (padded(1_100_000), Some("too_large")),
        // A 590 KB timestamp (the detail used to repeat it into a header).
        (
            valid(MODEL, "9".repeat(590_000).into()),
            Some("bad_timestamp"),
        ),
        (valid(MODEL, i64::MAX.into()), Some("bad_timestamp")),
        // Names that would forge a series, break the exposition or a log.
        (
            valid("evil\"} 1\ndriftd_injected_total{forged=\"yes", 1.into()),
            Some("invalid_name"),
        ),
        (valid("a \"quoted\" name", 1.into()), None),
        (valid("bell\u{7}", 1.into()), Some("invalid_name")),
        (valid(&"n".repeat(200), 1.into()), Some("invalid_name")),
        // Bytes that are not JSON, or not UTF-8, or nothing.
        (vec![0xff, 0xfe, 0x00], Some("invalid_json")),
        (Vec::new(), Some("invalid_json")),
        // A valid event stamped far ahead: held back, not a window closer.
        (valid(MODEL, "2100-01-01T00:00:00Z".into()), None),
    ]
}

#[test]
fn a_hostile_producer_costs_counts_never_availability_or_output() {
    let Rig {
        broker,
        dir,
        http,
        hook: _,
    } = Rig::start();
    let config = daemon_config(dir.path(), &broker.addr, &http, WINDOWS);
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let clean = generated(Scenario::CovariateShift, 12_000, MODEL, 4);
    let attacks = attacks();
    // The attacks among the valid events, after the baseline is learned.
    let mut stream = clean[..1500].to_vec();
    stream.extend(attacks.iter().map(|(a, _)| a.clone()));
    stream.extend(clean[1500..6000].iter().cloned());
    stream.extend(attacks.iter().map(|(a, _)| a.clone()));
    stream.extend(clean[6000..].iter().cloned());
    broker.produce_with(
        &broker.addr,
        &[("message.max.bytes", "4000000")],
        "logs",
        None,
        &stream,
    );
    let minute = Duration::from_secs(60);
    let mut last = String::new();
    let deadline = std::time::Instant::now() + 2 * minute;
    loop {
        if let Some((_, m)) = http_get(&http, "/metrics") {
            let consumed = metric(&m, "driftd_events_consumed_total");
            // Held-back events are counted once a second.
            let held = metric(&m, "driftd_events_future_total");
            if consumed == Some(stream.len() as f64) && held == Some(2.0) {
                break;
            }
            last = format!("consumed {consumed:?} of {}, held {held:?}", stream.len());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every message consumed: {last}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is running"
    );
    let (_, text) = http_get(&http, "/metrics").unwrap();
    promtool_check(&text);
    assert!(
        !text.lines().any(|l| l.starts_with("driftd_injected")),
        "a forged series:\n{text}"
    );
    let rejected = |reason: &str| {
        metric(
            &text,
            &format!("driftd_events_rejected_total{{reason=\"{reason}\"}}"),
        )
        .unwrap()
    };
    for reason in [
        "missing_field",
        "too_large",
        "bad_timestamp",
        "invalid_name",
        "invalid_json",
    ] {
        let want = 2 * attacks.iter().filter(|(_, r)| *r == Some(reason)).count();
        assert_eq!(rejected(reason), want as f64, "{reason}");
    }
    // The dead letters: one per rejection, details bounded, the oversized
    // one cut with its length in a header.
    let n = 2 * attacks.iter().filter(|(_, r)| r.is_some()).count();
    let dead = read_topic(&broker.addr, "dead-letters", n);
    assert_eq!(dead.len(), n);
    for d in &dead {
        assert!(
            d.header("driftd-detail").unwrap().len() <= 600,
            "{:?}",
            d.headers
        );
        assert!(d.payload.len() <= 1_000_000);
    }
    let cut: Vec<_> = dead
        .iter()
        .filter(|d| d.header("driftd-truncated").is_some())
        .collect();
    assert_eq!(cut.len(), 4);
    assert_eq!(cut[0].header("driftd-reason"), Some("missing_field"));
    assert_eq!(cut[0].header("driftd-truncated"), Some("1000100"));
    assert_eq!(cut[1].header("driftd-reason"), Some("too_large"));
    assert_eq!(cut[1].header("driftd-truncated"), Some("1100000"));
    assert!(cut[0]
        .payload
        .starts_with(format!(r#"{{"model":"{MODEL}""#).as_bytes()));
    // The valid model's windows are the clean stream's (but for the count
    // of held-back events).
    let got: Vec<serde_json::Value> =
        get_json(&http, &format!("/api/v1/windows?model={MODEL}&limit=100"))
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|w| {
                let mut w = w.clone();
                w["signals"]["future_events"] = 0.into();
                w
            })
            .collect();
    let file = dir.path().join("clean.ndjson");
    std::fs::write(&file, clean.join(&b'\n')).unwrap();
    let (expected, _) = common::replay_json(&file, Some(WINDOWS));
    // Replay closes the last, partial window at the end; the daemon keeps it open.
    assert_eq!(got.len(), expected.len() - 1);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}

#[test]
fn a_missing_dead_letter_topic_is_reported_and_never_stops_consumption() {
    // Regression (issue 15): the daemon exited after about 30 s, and again
    // on every restart.
    let Rig {
        broker,
        dir,
        http,
        hook: _,
    } = Rig::start();
    let config = daemon_config(dir.path(), &broker.addr, &http, WINDOWS);
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace(
            "dead_letter_topic = \"dead-letters\"",
            "dead_letter_topic = \"no-such-topic\"",
        ),
    )
    .unwrap();
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let minute = Duration::from_secs(60);
    let ready = wait_for(minute, "the topic reported missing", || {
        let (_, body) = http_get(&http, "/readyz")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["dead_letter_topic_state"] == "missing").then_some(v)
    });
    assert!(
        ready["problems"][0]
            .as_str()
            .unwrap()
            .contains("no-such-topic"),
        "{ready}"
    );
    let mut stream = generated(Scenario::Stable, 2000, MODEL, 5);
    for i in 0..50 {
        stream.insert(100 + 30 * i, b"not json".to_vec());
    }
    broker.produce("logs", None, &stream);
    // Past librdkafka's 30 s wait for a missing topic's metadata too.
    std::thread::sleep(Duration::from_secs(35));
    wait_for(minute, "every message consumed", || {
        let (_, m) = http_get(&http, "/metrics")?;
        (metric(&m, "driftd_events_consumed_total")? == stream.len() as f64).then_some(())
    });
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is running"
    );
    let (_, text) = http_get(&http, "/metrics").unwrap();
    assert_eq!(
        metric(
            &text,
            "driftd_dead_letter_failures_total{reason=\"unknown_topic\"}"
        ),
        Some(50.0)
    );
    // Logged once, not fifty times.
    let logged = std::fs::read_to_string(&log)
        .unwrap()
        .matches("a dead letter could not be written")
        .count();
    assert_eq!(logged, 1);
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}
