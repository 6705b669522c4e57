//! The live page at `/`, in headless Chromium (Debian's, driven by
//! Playwright) against a running daemon that consumes a real broker: it
//! renders the model's versions (incumbent and candidate), its latest
//! windows, drift per feature over time, quality trends and the rules'
//! decisions with their deliveries, with no console error and no request
//! beyond the daemon.

mod common;
mod support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftd::source::generate::{GenerateSpec, Scenario};
use support::broker::*;
use support::daemon::*;

const MODEL: &str = "alt-text-captioner";
/// A model whose upstream pipeline changes.
const UPSTREAM: &str = "upstream-changed";
/// 2026-11-24T00:00:00Z.
const T0: i64 = 1_795_478_400_000;

fn events(scenario: Scenario, n: u64, version: &str, drift_at: u64, start_ms: i64) -> Vec<Vec<u8>> {
    let mut spec = GenerateSpec::new(scenario, n);
    spec.model = MODEL.into();
    spec.model_version = version.into();
    spec.drift_at = drift_at;
    spec.start_ms = start_ms;
    lines_of(&spec)
}

/// A JSON array of strings.
fn strs(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn the_live_page_renders_a_running_daemon_in_headless_chromium() {
    let py = common::python(&["playwright"]);
    let Rig {
        broker,
        dir,
        http,
        hook,
    } = Rig::start();
    let config = daemon_config(
        dir.path(),
        &broker.addr,
        &http,
        &format!(
            r#"[windows]
kind = "count"
events = 1000
[baseline]
learn_events = 1000
[learned]
enabled = true
sample_size = 64
embeddings = false
[[rules]]
name = "inputs-drift"
action = "retrain"
when = {{ metric = "drift_share", op = ">=", value = 0.25 }}
[promotion]
windows = 5
compare = [ {{ metric = "signals.error_rate", better = "lower", margin = 0.05 }} ]
[[targets]]
name = "ci"
url = "http://{hook}/hook"
secret_env = "DRIFTD_TEST_WEBHOOK_SECRET"
min_backoff = "100ms"
"#
        ),
    );
    let state = Arc::new(Mutex::new(receiver::State::default()));
    receiver::start(hook, WEBHOOK_SECRET, state.clone());
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let minute = Duration::from_secs(60);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-page.png");
    let browse = |extra: &[&str]| -> serde_json::Value {
        let out = Command::new(&py)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/browser/live_page.py"
            ))
            .arg(format!("http://{http}/"))
            .arg(&shot)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the browser check failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Loaded from the daemon alone, with nothing said on the console.
    let clean = |page: &serde_json::Value| {
        assert_eq!(page["status"], 200);
        assert!(page["csp"].as_str().unwrap().contains("default-src 'none'"));
        for key in [
            "console",
            "page_errors",
            "failed",
            "foreign_requests",
            "dialogs",
        ] {
            assert_eq!(page[key], serde_json::json!([]), "{key}: {page}");
        }
    };

    // Before any event: the page says so, and nothing fails.
    wait_for(minute, "the HTTP server", || http_get(&http, "/healthz"));
    let page = browse(&[]);
    clean(&page);
    assert_eq!(page["models"], serde_json::json!([]));
    assert!(
        page["main_text"]
            .as_str()
            .unwrap()
            .contains("No model has sent events yet."),
        "{page}"
    );

    // v1's inputs drift half way: a retrain is fired and delivered.
    broker.produce(
        "logs",
        None,
        &events(Scenario::CovariateShift, 6000, "v1", 3000, T0),
    );
    wait_for(minute, "a delivered retrain", || {
        let ds = get_json(&http, &format!("/api/v1/decisions?model={MODEL}"));
        ds.as_array()?
            .iter()
            .find(|d| d["delivery"] == "delivered")
            .cloned()
    });
    assert!(state
        .lock()
        .unwrap()
        .requests
        .iter()
        .all(|r| r.signature_ok));
    // CI registers v2, whose shadow traffic is judged window by window.
    let body = r#"{"version": "v2", "metadata": {"pipeline": "https://ci.example/p/7"}}"#;
    let path = format!("/api/v1/models/{MODEL}/candidates");
    let (status, reply) = http_send(&http, "POST", &path, Some(API_TOKEN), body).unwrap();
    assert_eq!(status, 201, "{reply}");
    broker.produce(
        "logs",
        None,
        &events(Scenario::Stable, 3000, "v2", 3000, T0 + 60_000),
    );
    // The windows come from the store; the versions and roles from the
    // model's status, refreshed every second: wait for both.
    let windows = wait_for(
        minute,
        "two windows of v2, in the store and the status",
        || {
            let ws = get_json(&http, &format!("/api/v1/models/{MODEL}/windows?limit=1000"));
            let ws = ws.as_array()?.clone();
            let status = get_json(&http, &format!("/api/v1/models/{MODEL}"));
            let judged = status["rules"]["candidate"]["windows_judged"].as_u64()?;
            let v2 = status["versions"]
                .as_array()?
                .iter()
                .any(|v| v["model_version"] == "v2" && v["events"] == 3000);
            (ws.iter().filter(|w| w["model_version"] == "v2").count() >= 2
                && ws.iter().all(|w| w.get("learned").is_some())
                && judged >= 2
                && v2)
                .then_some(ws)
        },
    );
    let features: Vec<String> = windows[0]["drift"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();

    // A second model whose name is markup, as any producer may send: the
    // page shows it as text (an injected handler would open a dialog, or
    // be refused by the CSP with a console error).
    // Then names a browser would resolve as a path, or encode, or that
    // are long or not ASCII (issue 15: a model named `..` blanked the page
    // for every model): each drawn on its own, under its name.
    let hostile = r#"<img src=x onerror="alert(1)">&amp;"#;
    let long = format!("{}é", "n".repeat(126));
    let odd: Vec<&str> = vec![hostile, "..", ".", "%2F", "a/b", &long, "模型-ünïcode"];
    for (i, name) in odd.iter().enumerate() {
        broker.produce(
            "logs",
            None,
            &generated(Scenario::Stable, 2500, name, 9 + i as u64),
        );
    }
    // A model whose upstream pipeline changes after its baseline (1,000
    // events learned, the change from the first window on): the page shows
    // the checks that flagged, as the API reports them.
    let mut spec = GenerateSpec::new(Scenario::UpstreamChange, 2000);
    spec.model = UPSTREAM.into();
    spec.drift_at = 1000;
    broker.produce("logs", None, &lines_of(&spec));
    for name in odd.iter().chain([&UPSTREAM]) {
        let encoded: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
        wait_for(minute, &format!("a window of model {name:?}"), || {
            let (status, body) = http_get(&http, &format!("/api/v1/windows?model={encoded}"))?;
            (status == 200 && body.len() > 2).then_some(())
        });
    }
    let page = browse(&["--refresh"]);
    eprintln!("screenshot: {}", shot.display());
    clean(&page);
    assert_eq!(page["refreshed_same"], true, "{page}");
    assert!(page["status_line"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{} models", 2 + odd.len())));
    let models = page["models"].as_array().unwrap();
    assert_eq!(models.len(), 2 + odd.len(), "{page}");
    let upstream = models.iter().find(|m| m["model"] == UPSTREAM).unwrap();
    let api = get_json(&http, &format!("/api/v1/windows?model={UPSTREAM}"));
    let dq = &api.as_array().unwrap().last().unwrap()["data_quality"];
    let flagged: Vec<(String, Vec<String>)> = dq["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let checks = strs(&f["flagged"])
                .iter()
                .map(|c| c.replace('_', " "))
                .collect();
            (f["name"].as_str().unwrap().to_owned(), checks)
        })
        .collect();
    let shown: Vec<(String, Vec<String>)> = upstream["data_quality"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let checks = strs(&r["flagged"]).iter().map(|c| c.to_string()).collect();
            (r["feature"].as_str().unwrap().to_owned(), checks)
        })
        .collect();
    assert_eq!(shown, flagged, "{upstream}");
    assert!(
        flagged.iter().filter(|(_, c)| !c.is_empty()).count() >= 4,
        "{flagged:?}"
    );
    assert!(upstream["heading"]
        .as_str()
        .unwrap()
        .contains("data quality"));
    assert!(
        upstream["new_features"]
            .as_str()
            .unwrap()
            .contains("exif_orientation"),
        "{upstream}"
    );
    for name in &odd {
        let other = models
            .iter()
            .find(|m| m["model"] == *name)
            .unwrap_or_else(|| panic!("model {name:?} is not on the page: {page}"));
        assert!(
            other["heading"].as_str().unwrap().starts_with(name),
            "{other}"
        );
        assert_eq!(other["failed"], false, "{other}");
        assert_eq!(other["windows"], 1, "{other}");
    }
    let m = models.iter().find(|m| m["model"] == MODEL).unwrap();

    // Versions: v1 the incumbent, v2 the candidate judged against it.
    let versions = strs(&m["versions"]);
    assert!(
        versions.iter().any(|v| v.starts_with("v1 incumbent")),
        "{versions:?}"
    );
    assert!(
        versions.iter().any(|v| v.starts_with("v2 candidate")),
        "{versions:?}"
    );
    let candidate = m["candidate"].as_str().unwrap();
    assert!(
        candidate.contains("v2") && candidate.contains("incumbent v1"),
        "{candidate}"
    );

    // Latest windows and drift per feature over time: a cell per feature
    // and window, the drifted inputs red from the shift on.
    let shown = windows.len().min(48);
    assert_eq!(m["windows"], shown.min(10) as u64);
    let mut heat = strs(&m["heatmap_features"]);
    heat.sort();
    let mut want: Vec<&str> = features.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(heat, want);
    assert_eq!(m["heatmap_cells"], (shown * features.len()) as u64);
    let red = strs(&m["heatmap_drift_cells"]);
    let api_red = windows
        .iter()
        .flat_map(|w| w["drift"]["features"].as_array().unwrap())
        .filter(|f| f["drift"] == true)
        .count();
    assert_eq!(red.len(), api_red);
    assert!(red.contains(&"brightness"), "{red:?}");

    // Quality trends: one point per window on each series.
    let charts = m["charts"].as_array().unwrap();
    let chart = |title: &str| {
        charts
            .iter()
            .find(|c| c["title"] == title)
            .unwrap_or_else(|| panic!("no chart {title}: {charts:?}"))
    };
    assert_eq!(chart("Dataset drift share")["points"], shown as u64);
    assert_eq!(chart("Caption defects")["points"], 3 * shown as u64);
    assert_eq!(chart("Serving errors")["lines"], 1);
    assert_eq!(chart("Domain classifier AUC")["points"], shown as u64);

    // Decisions, with the fired retrain delivered to the webhook target.
    let decisions = strs(&m["decisions"]);
    assert!(
        decisions
            .iter()
            .any(|d| d.contains("inputs-drift retrain fired") && d.contains("delivered ci")),
        "{decisions:?}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{}",
        png.len()
    );

    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}
