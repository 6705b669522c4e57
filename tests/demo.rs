//! The README's first command: `driftd demo` runs the daemon against the
//! in-process mock cluster and shows drift in the JSON API and the metrics.

mod common;

use common::{driftd, p, stderr, stdout};

/// A port below Linux's ephemeral range, so the demo's own Kafka
/// connections cannot take it before its HTTP server binds.
fn demo_port(offset: u16) -> String {
    let port = (0..2000)
        .map(|i| 20_000 + (std::process::id() % 10_000) as u16 + offset + i)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port");
    format!("127.0.0.1:{port}")
}

#[test]
fn demo_shows_drift_through_the_api_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let listen = demo_port(0);
    let state = dir.path().join("state");
    let out = driftd(&[
        "demo",
        "--events",
        "60000",
        "--http-listen",
        &listen,
        "--state-dir",
        p(&state),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("60000 events produced, consumed and evaluated"),
        "{text}"
    );
    // 5,000 learned, then five-minute windows of 15,000 events at 50 events/s.
    assert!(text.contains("3 closed windows"), "{text}");
    assert!(
        text.contains("driftd_events_consumed_total 60000"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"driftd_feature_drift{model="alt-text-captioner",feature="brightness"} 1.0"#
        ),
        "{text}"
    );
    // The shift starts at event 30,000: window 2 holds it, windows 0 and 1 do not.
    let line = |i: u32| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("window {i:>2}")))
            .unwrap_or_else(|| panic!("no window {i} in {text}"))
            .to_owned()
    };
    assert!(line(0).contains("drift share 0.00"), "{}", line(0));
    assert!(line(1).contains("drift share 0.00"), "{}", line(1));
    assert!(line(2).contains("brightness"), "{}", line(2));
    assert!(state.join("driftd.sqlite").is_file());
}

/// `--format json`: stdout is one JSON object (the windows as the API gives
/// them, oldest first, and the gauges); what the demo is doing goes to stderr.
#[test]
fn demo_json_is_one_object_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let listen = demo_port(3000);
    let out = driftd(&[
        "demo",
        "--events",
        "35000",
        "--format",
        "json",
        "--http-listen",
        &listen,
        "--state-dir",
        p(&dir.path().join("state")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("driftd demo: mock Kafka at "));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["events"], 35000);
    assert_eq!(v["http"], format!("http://{listen}"));
    // 5,000 learned, then two windows of 15,000; the shift starts at 17,500.
    let windows = v["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0]["window"]["index"], 0);
    let drifted = |w: &serde_json::Value| {
        w["drift"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["drift"] == true)
            .count()
    };
    assert!(drifted(&windows[1]) > drifted(&windows[0]));
    assert_eq!(v["gauges"]["driftd_events_consumed_total"], 35000.0);
}
