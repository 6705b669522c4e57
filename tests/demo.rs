//! The README's first command: `driftd demo` runs the daemon against the
//! in-process mock cluster and shows drift in the JSON API and the metrics.

mod common;

use common::{driftd, p, stderr, stdout};

#[test]
fn demo_shows_drift_through_the_api_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    // Below Linux's ephemeral range, so the demo's own Kafka connections
    // cannot take it before its HTTP server binds.
    let port = (0..2000)
        .map(|i| 20_000 + (std::process::id() % 10_000) as u16 + i)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
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
