//! `driftd run` against a real Kafka-protocol broker (tansu on loopback):
//! consuming, the HTTP endpoints (metrics checked with promtool), the
//! dead-letter topic, graceful shutdown on SIGTERM, committed-offset resume,
//! and kill -9 mid-stream giving exactly an uninterrupted run's windows.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use driftd::source::generate::Scenario;
use driftd::store::Store;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::broker::*;
use support::daemon::*;

const MODEL: &str = "alt-text-captioner";
fn committed(broker: &str, group: &str, topic: &str, partition: i32) -> Option<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).ok()?;
    match got.find_partition(topic, partition)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

#[test]
fn daemon_consumes_serves_dead_letters_and_resumes() {
    let Rig {
        broker, dir, http, ..
    } = Rig::start();
    let config = daemon_config(
        dir.path(),
        &broker.addr,
        &http,
        "[windows]\nkind = \"count\"\nevents = 1000\n[baseline]\nlearn_events = 1000\n[signals]\nsilence_after = \"3s\"\n\
         [[rules]]\nname = \"drift\"\naction = \"retrain\"\nwhen = { metric = \"drift_share\", op = \">=\", value = 0.25 }\n",
    );
    with_feedback_topic(&config);
    broker.create_topic("feedback", 1);
    let log = dir.path().join("driftd.log");
    let mut events = generated(Scenario::CovariateShift, 6000, MODEL, 3);
    let bad: [&[u8]; 2] = [b"this is not json", br#"{"event_id":"e1","model":"m"}"#];
    events.insert(100, bad[0].to_vec());
    events.insert(3000, bad[1].to_vec());
    broker.produce("logs", None, &events);

    let mut daemon = spawn_daemon(&config, &log, &[]);
    let get = |path: &str| http_get(&http, path);
    wait_for(Duration::from_secs(60), "/readyz to answer 200", || {
        get("/readyz").filter(|(s, _)| *s == 200)
    });
    assert_eq!(get("/healthz").unwrap().0, 200);
    let metrics = wait_for(
        Duration::from_secs(60),
        "6002 events consumed and windows published",
        || {
            let (_, m) = get("/metrics")?;
            (metric(&m, "driftd_events_consumed_total") == Some(6002.0)
                && metric(
                    &m,
                    &format!("driftd_windows_closed_total{{model=\"{MODEL}\"}}"),
                ) == Some(5.0))
            .then_some(m)
        },
    );
    // The silence gauge appears with the next status refresh (every second)
    // and reads 0 while the last event is recent (silence_after is 3 s).
    let silent = format!("driftd_model_silent{{model=\"{MODEL}\"}}");
    let fresh = wait_for(Duration::from_secs(2), "the silence gauge", || {
        let (_, m) = get("/metrics")?;
        metric(&m, &silent)
    });
    assert_eq!(fresh, 0.0, "not silent right after its events");
    promtool_check(&metrics);
    // The drift rule fired once (the shift is half way), and its decision
    // waits in the outbox, written with the window that made it.
    let fired = format!(
        "driftd_rule_decisions_total{{model=\"{MODEL}\",rule=\"drift\",action=\"retrain\",outcome=\"fired\"}}"
    );
    assert_eq!(metric(&metrics, &fired), Some(1.0), "{metrics}");
    // No target is configured: the fired decision says so (nothing waits).
    assert_eq!(get("/api/v1/decisions?outbox=true").unwrap().1.trim(), "[]");
    let (status, body) = get("/api/v1/decisions").unwrap();
    assert_eq!(status, 200, "{body}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let outbox: Vec<&serde_json::Value> = all
        .iter()
        .filter(|d| d["decision"]["outcome"] == "fired")
        .collect();
    assert_eq!(outbox.len(), 1, "{body}");
    assert_eq!(outbox[0]["delivery"], "no_target");
    assert_eq!(outbox[0]["decision"]["rule"], "drift");
    assert_eq!(outbox[0]["decision"]["action"], "retrain");
    assert_eq!(outbox[0]["decision"]["model"], MODEL);
    assert!(outbox[0]["id"].as_str().unwrap().starts_with("dec_"));
    assert_eq!(get("/api/v1/decisions?outbox=maybe").unwrap().0, 400);
    // The model's page: the retrain is in flight, and the last decision with
    // its evidence (the status refreshes every second).
    let page: serde_json::Value = wait_for(Duration::from_secs(5), "the model page", || {
        let (status, body) = get(&format!("/api/v1/models/{MODEL}"))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v["rules"]["retrain_in_flight"] == true).then_some(v)
    });
    assert_eq!(page["model"], MODEL);
    assert_eq!(page["last_decision"]["decision"]["rule"], "drift");
    assert_eq!(
        page["last_decision"]["decision"]["evidence"][0]["metric"],
        "drift_share"
    );
    assert!(
        page["rules"]["retrain_in_flight_until"].is_string(),
        "{page}"
    );
    let (_, m) = get("/metrics").unwrap();
    assert_eq!(
        metric(
            &m,
            &format!("driftd_retrain_in_flight{{model=\"{MODEL}\"}}")
        ),
        Some(1.0)
    );
    promtool_check(&m);
    assert_eq!(get("/api/v1/models/nobody").unwrap().0, 404);
    assert_eq!(
        get("/api/v1/decisions?model=nobody").unwrap().1.trim(),
        "[]"
    );
    assert_eq!(
        metric(
            &metrics,
            r#"driftd_events_rejected_total{reason="invalid_json"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            r#"driftd_events_rejected_total{reason="missing_field"}"#
        ),
        Some(1.0)
    );
    assert_eq!(metric(&metrics, "driftd_dead_letters_total"), Some(2.0));
    assert_eq!(metric(&metrics, "driftd_partitions_assigned"), Some(2.0)); // logs and feedback
                                                                           // The covariate shift starts half way: in the newest window brightness
                                                                           // (among others) has drifted.
    assert_eq!(
        metric(
            &metrics,
            &format!("driftd_feature_drift{{model=\"{MODEL}\",feature=\"brightness\"}}")
        ),
        Some(1.0)
    );
    let share = metric(
        &metrics,
        &format!("driftd_dataset_drift_share_ratio{{model=\"{MODEL}\"}}"),
    )
    .unwrap();
    assert!(share > 0.2, "drift share {share}");
    let ks = metric(
        &metrics,
        &format!(
            "driftd_drift_score{{model=\"{MODEL}\",feature=\"brightness\",test=\"ks_statistic\"}}"
        ),
    )
    .expect("KS of brightness exported");
    assert!(ks > 0.1, "KS {ks}");
    assert!(metrics.contains("driftd_build_info{version="));
    assert!(metrics.contains(&format!(
        "driftd_serving_latency_seconds{{model=\"{MODEL}\",percentile=\"p50\"}}"
    )));

    // The status refreshes every second.
    let models: serde_json::Value = wait_for(Duration::from_secs(10), "the model status", || {
        let (status, body) = get("/api/v1/models")?;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (v["models"][0]["versions"][0]["events"] == 6000).then_some(v)
    });
    assert_eq!(models["models"][0]["model"], MODEL);
    assert_eq!(models["models"][0]["versions"][0]["baseline"], "learned");
    assert_eq!(models["models"][0]["versions"][0]["events"], 6000);
    let (status, body) = get(&format!("/api/v1/models/{MODEL}/windows?limit=2")).unwrap();
    assert_eq!(status, 200, "{body}");
    let windows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0]["window"]["index"], 4, "newest first");
    assert_eq!(windows[1]["window"]["index"], 3);
    assert_eq!(windows[0]["drift"]["dataset"]["share"], share);
    assert_eq!(
        get(&format!("/api/v1/models/{MODEL}/windows?limit=0"))
            .unwrap()
            .0,
        400
    );
    assert_eq!(get("/api/v1/models/nobody/windows").unwrap().0, 404);

    // Consumer lag per partition, from librdkafka's statistics (every 5 s).
    // tansu's high watermarks trail the true end of a partition, so only
    // presence and sign are checked, not the value.
    let lag = wait_for(Duration::from_secs(15), "the consumer-lag gauge", || {
        let (_, m) = get("/metrics")?;
        metric(
            &m,
            r#"driftd_consumer_lag_messages{topic="logs",partition="0"}"#,
        )
    });
    assert!(lag >= 0.0, "lag {lag}");

    // No more events: the model turns silent after signals.silence_after
    // (wall clock), though no window closes.
    wait_for(
        Duration::from_secs(15),
        "the model to be reported silent",
        || {
            let (_, m) = get("/metrics")?;
            (metric(&m, &silent) == Some(1.0)).then_some(())
        },
    );
    let (_, body) = get("/api/v1/models").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["models"][0]["silent"], true);
    assert!(v["models"][0]["seconds_since_last_event"].as_f64().unwrap() >= 3.0);

    // The dead letters carry the original bytes and the reason.
    let dead = read_topic(&broker.addr, "dead-letters", 2);
    assert_eq!(dead.len(), 2, "dead letters on the topic");
    for (record, (raw, reason)) in dead
        .iter()
        .zip([(bad[0], "invalid_json"), (bad[1], "missing_field")])
    {
        assert_eq!(record.payload.as_slice(), raw);
        assert_eq!(record.header("driftd-reason"), Some(reason));
        assert_eq!(record.header("driftd-source-topic"), Some("logs"));
    }

    // Feedback for 100 events joins by event_id; every window is closed, so
    // it waits for the next one.
    let feedback: Vec<Vec<u8>> = events[5000..5100]
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_slice(e).unwrap();
            serde_json::json!({"event_id": v["event_id"], "timestamp": v["timestamp"],
                "references": ["a photo of a street", "a picture"], "rating": 4.0})
            .to_string()
            .into_bytes()
        })
        .collect();
    broker.produce("feedback", None, &feedback);
    let joined = wait_for(Duration::from_secs(30), "100 feedback events", || {
        let (_, m) = get("/metrics")?;
        let n = |o: &str| {
            metric(
                &m,
                &format!("driftd_feedback_events_total{{outcome=\"{o}\"}}"),
            )
        };
        (n("joined")? + n("unmatched")? == 100.0).then(|| n("joined").unwrap())
    });
    assert!(joined >= 80.0, "joined {joined} of 100");

    // SIGTERM: checkpoint, commit, exit 0.
    sigterm(&daemon);
    let status = wait_exit(&mut daemon, Duration::from_secs(30), &log);
    assert!(status.success(), "exit status {status}");
    assert_eq!(committed(&broker.addr, "driftd", "logs", 0), Some(6002));

    // Restart: resumes at the committed offsets with its state, counts only new events.
    broker.produce("logs", None, &generated(Scenario::Stable, 1000, MODEL, 4));
    let mut daemon = spawn_daemon(&config, &log, &["--exit-when-idle", "2s"]);
    let status = wait_exit(&mut daemon, Duration::from_secs(60), &log);
    assert!(status.success(), "exit status {status}");
    let store = Store::open_read_only(&dir.path().join("state")).unwrap();
    let stored = store.all_windows().unwrap();
    assert_eq!(stored.len(), 6, "one more window of 1000 events");
    // The feedback joined before the restart went into that window.
    let last: serde_json::Value = serde_json::from_str(&stored[5].report_json).unwrap();
    assert_eq!(last["captions"]["feedback_joined"].as_f64(), Some(joined));
    assert_eq!(last["captions"]["rating_mean"], 4.0);
    assert!(
        last["captions"]["references"]["bleu_4"].is_number(),
        "{last}"
    );
    let cp = store.load().unwrap().unwrap();
    assert_eq!(cp.offsets[&("logs".to_string(), 0)], 7002);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("resumed from checkpoint"), "{text}");
    assert!(text.contains("skipped_replayed=0"), "{text}");
}

/// Stored windows as (model, version, index, report) tuples.
fn windows(state: &Path) -> Vec<(String, String, u64, String)> {
    Store::open_read_only(state)
        .unwrap()
        .all_windows()
        .unwrap()
        .into_iter()
        .map(|w| (w.model, w.model_version, w.index, w.report_json))
        .collect()
}

fn consumed(state: &Path) -> i64 {
    Store::open_read_only(state)
        .ok()
        .and_then(|s| s.load().ok().flatten())
        .map(|cp| cp.offsets.values().sum())
        .unwrap_or(0)
}

/// Stored rule decisions: (outcome, delivery, decision JSON), sorted. The
/// ids are left out: they include the consumer group (issue 15), and the
/// runs compared use two groups; that each is stored once is checked here.
fn decisions(state: &Path) -> Vec<(String, Option<String>, String)> {
    let rows = Store::open_read_only(state)
        .unwrap()
        .decisions(None, false, 1000)
        .unwrap();
    let ids: std::collections::BTreeSet<&String> = rows.iter().map(|d| &d.id).collect();
    assert_eq!(ids.len(), rows.len(), "a decision stored twice");
    let mut d: Vec<_> = rows
        .into_iter()
        .map(|d| (d.outcome, d.delivery, d.decision_json))
        .collect();
    d.sort();
    d
}

/// Rules for the kill -9 test: decisions are checkpointed with the windows
/// that produced them, so they too must equal the uninterrupted run's.
const KILL_TEST_RULES: &str = r#"
[[rules]]
name = "drift-retrain"
model = "captioner-a"
action = "retrain"
when = { metric = "drift_share", op = ">=", value = 0.25 }
for_windows = 2

[[rules]]
name = "captions-rot"
model = "captioner-b"
action = "notify"
when = { metric = "quality.boilerplate_prefix_rate", op = ">", value = 0.1 }
"#;

#[test]
fn kill_9_at_fifty_random_points_gives_the_uninterrupted_windows() {
    // On the shipped consumer settings (static membership, the default
    // session timeout): a daemon killed with SIGKILL takes its partitions
    // back at once when it starts again (issue 15).
    let broker = Broker::start();
    broker.create_topic("logs", 2);
    broker.create_topic("dead-letters", 1);
    // Two models, one partition each (keyed by model, as the generator does):
    // each model's events stay in order whatever the interleaving.
    let a = generated(Scenario::CovariateShift, 25_000, "captioner-a", 5);
    let mut b = generated(Scenario::QualityDrop, 25_000, "captioner-b", 6);
    b.insert(777, b"{broken".to_vec());
    let total = (a.len() + b.len()) as i64;
    let windows_toml = format!(
        "[windows]\nsize = \"20s\"\nallowed_lateness = \"2s\"\n[baseline]\nlearn_events = 2000\n{KILL_TEST_RULES}"
    );
    let windows_toml = windows_toml.as_str();
    // Live traffic: the events arrive over the kills, in parts.
    let parts = 25;
    let producer = {
        let addr = broker.addr.clone();
        let (a, b) = (a.clone(), b.clone());
        std::thread::spawn(move || {
            let p = Broker::connect(&addr);
            for i in 0..parts {
                let part = |v: &Vec<Vec<u8>>| {
                    let n = v.len().div_ceil(parts);
                    v[(i * n).min(v.len())..((i + 1) * n).min(v.len())].to_vec()
                };
                p.produce("logs", Some(0), &part(&a));
                p.produce("logs", Some(1), &part(&b));
                std::thread::sleep(Duration::from_secs(8));
            }
        })
    };

    // Killed with SIGKILL at random moments again and again: starting,
    // restoring, joining the group, consuming, checkpointing.
    let dir = tempfile::tempdir().unwrap();
    let cfg = daemon_config(
        dir.path(),
        &broker.addr,
        &format!("127.0.0.1:{}", free_port()),
        windows_toml,
    );
    let state = dir.path().join("state");
    let log = dir.path().join("driftd.log");
    let mut rng = driftd::testkit::XorShift::new(42);
    let mut kills_mid_stream = 0;
    for round in 0..50 {
        let mut d = spawn_daemon(&cfg, &log, &[]);
        std::thread::sleep(Duration::from_millis(
            500 + (rng.uniform() * 8_000.0) as u64,
        ));
        let at = consumed(&state);
        d.kill().unwrap();
        d.wait().unwrap();
        if at > 0 && at < total {
            kills_mid_stream += 1;
        }
        eprintln!("round {round}: killed at {at} of {total} events checkpointed");
    }
    producer.join().unwrap();
    assert!(
        kills_mid_stream >= 20,
        "only {kills_mid_stream} kills landed mid-stream"
    );
    let mut d = spawn_daemon(&cfg, &log, &["--exit-when-idle", "3s"]);
    exit_cleanly(&mut d, Duration::from_secs(180), &log);
    assert_eq!(consumed(&state), total);

    // The uninterrupted run over the same events.
    let ref_dir = tempfile::tempdir().unwrap();
    let ref_cfg = daemon_config(
        ref_dir.path(),
        &broker.addr,
        &format!("127.0.0.1:{}", free_port()),
        windows_toml,
    );
    let ref_log = ref_dir.path().join("driftd.log");
    std::fs::write(
        &ref_cfg,
        std::fs::read_to_string(&ref_cfg)
            .unwrap()
            .replace("[kafka]\n", "[kafka]\ngroup_id = \"uninterrupted\"\n"),
    )
    .unwrap();
    let mut d = spawn_daemon(&ref_cfg, &ref_log, &["--exit-when-idle", "3s"]);
    exit_cleanly(&mut d, Duration::from_secs(180), &ref_log);
    let expected = windows(&ref_dir.path().join("state"));
    assert_eq!(consumed(&ref_dir.path().join("state")), total);
    assert!(expected.len() >= 20, "{} windows", expected.len());
    let expected_decisions = decisions(&ref_dir.path().join("state"));
    let fired: Vec<&(String, Option<String>, String)> = expected_decisions
        .iter()
        .filter(|d| d.0 == "fired")
        .collect();
    assert_eq!(
        fired.len(),
        2,
        "one firing per rule: {expected_decisions:?}"
    );
    assert!(fired.iter().all(|d| d.1.as_deref() == Some("no_target")));

    let got = windows(&state);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "window {} {} {} differs after kills", e.0, e.1, e.2);
    }
    // Every decision once, the same as without kills: none lost, none twice.
    assert_eq!(decisions(&state), expected_decisions);
    // No start waited for the group to time the killed process out.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("rejoining the group"), "{text}");
}

#[test]
fn example_config_runs_with_environment_overrides() {
    let broker = Broker::start();
    broker.create_topic("custom-logs", 1);
    broker.create_topic("driftd-dead-letter", 1);
    // `driftd generate --to kafka://` keys every event by its model.
    let out = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["generate", "--events", "300", "--seed", "8", "--to"])
        .arg(format!("kafka://{}/custom-logs", broker.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("produced 300 events"));

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state-from-env");
    let http = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("driftd.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["run", "--config", "config/driftd.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DRIFTD_CONFIG")
        .env("DRIFTD_KAFKA_BROKERS", &broker.addr)
        .env("DRIFTD_KAFKA_TOPIC", "custom-logs")
        .env("DRIFTD_KAFKA_GROUP", "group-from-env")
        .env("DRIFTD_HTTP_LISTEN", &http)
        .env("DRIFTD_STATE_DIR", &state)
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(60), "300 events consumed", || {
        let (_, m) = http_get(&http, "/metrics")?;
        (metric(&m, "driftd_events_consumed_total")? == 300.0).then_some(())
    });
    // ctrl-c (SIGINT) shuts down as cleanly as SIGTERM.
    let ok = Command::new("kill")
        .args(["-INT", &daemon.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = wait_exit(&mut daemon, Duration::from_secs(30), &log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert!(text.contains("shutdown requested"), "{text}");
    assert!(
        text.contains(&format!("HTTP server listening local={http}")),
        "{text}"
    );
    let cp = Store::open_read_only(&state)
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(cp.offsets[&("custom-logs".to_string(), 0)], 300);
    assert_eq!(
        committed(&broker.addr, "group-from-env", "custom-logs", 0),
        Some(300)
    );
}

/// A TLS listener in front of the broker: `socat` terminates TLS on `port`
/// with a fresh self-signed certificate and forwards to the broker (tansu
/// 0.6.0's own TLS flags do not combine: `--cert` refuses `--key`).
struct TlsProxy {
    child: Child,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsProxy {
    fn start(port: u16, upstream: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("tls.key");
        let crt = dir.path().join("tls.crt");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .unwrap_or_else(|e| panic!("openssl is needed for the TLS test: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = dir.path().join("tls.pem");
        let both = [std::fs::read(&crt).unwrap(), std::fs::read(&key).unwrap()].concat();
        std::fs::write(&pem, both).unwrap();
        let child = Command::new("socat")
            .arg(format!(
                "openssl-listen:{port},bind=127.0.0.1,reuseaddr,fork,cert={},verify=0",
                pem.display()
            ))
            .arg(format!("tcp:{upstream}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("socat is needed for the TLS test: {e}"));
        wait_for(Duration::from_secs(10), "the TLS proxy", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Self {
            child,
            ca: crt,
            _dir: dir,
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn consumes_over_tls_with_options_passed_through() {
    let tls_port = free_port();
    let broker = Broker::start_advertising(Some(tls_port));
    let proxy = TlsProxy::start(tls_port, &broker.addr);
    broker.create_topic("logs", 1);
    broker.create_topic("dead-letters", 1);
    let tls_addr = format!("127.0.0.1:{tls_port}");
    let ca = proxy.ca.display().to_string();
    let tls = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca.as_str()),
    ];
    let events = generated(Scenario::Stable, 500, MODEL, 12);
    broker.produce_with(&tls_addr, &tls, "logs", None, &events);

    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let config = daemon_config(dir.path(), &tls_addr, &http, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[kafka.options]\n",
        &format!(
            "[kafka.options]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{ca}\"\n"
        ),
    );
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    // Every client reached the broker through the TLS port only (the broker
    // advertises nothing else), and the checkpoint holds all 500.
    consume_all_and_stop(&mut daemon, &http, dir.path(), &log, "500 events over TLS");
}

/// Wait for the daemon to consume the 500 events of `logs`, stop it with
/// SIGTERM, and check that its checkpoint holds them all.
fn consume_all_and_stop(daemon: &mut Daemon, http: &str, dir: &Path, log: &Path, what: &str) {
    wait_for(Duration::from_secs(60), what, || {
        let (_, m) = http_get(http, "/metrics")?;
        (metric(&m, "driftd_events_consumed_total")? == 500.0).then_some(())
    });
    sigterm(daemon);
    exit_cleanly(daemon, Duration::from_secs(30), log);
    let cp = Store::open_read_only(&dir.join("state"))
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(cp.offsets[&("logs".to_string(), 0)], 500);
}

#[test]
fn consumes_over_sasl_scram_with_options_passed_through() {
    let broker = Broker::start_sasl("driftd", "s3cret-pw", &["logs", "dead-letters"]);
    let mut sasl: Vec<(&str, &str)> = vec![
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "driftd"),
        ("sasl.password", "s3cret-pw"),
    ];
    sasl.extend(SASL_CLIENT_WORKAROUND);
    let events = generated(Scenario::Stable, 500, MODEL, 13);
    broker.produce_with(&broker.addr, &sasl, "logs", None, &events);

    let options = |password: &str| {
        sasl.iter()
            .map(|(k, v)| {
                let v = if *k == "sasl.password" { password } else { v };
                format!("\"{k}\" = \"{v}\"\n")
            })
            .collect::<String>()
    };
    let run = |password: &str| {
        let dir = tempfile::tempdir().unwrap();
        let http = format!("127.0.0.1:{}", free_port());
        let config = daemon_config(dir.path(), &broker.addr, &http, "");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "[kafka.options]\n",
            &format!("[kafka.options]\n{}", options(password)),
        );
        std::fs::write(&config, text).unwrap();
        let log = dir.path().join("driftd.log");
        (spawn_daemon(&config, &log, &[]), dir, http, log)
    };
    // A wrong password: the broker refuses it, nothing is consumed.
    let (mut daemon, _dir, http, log) = run("wrong");
    wait_for(
        Duration::from_secs(30),
        "the authentication failure logged",
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("SASL authentication error")
                .then_some(())
        },
    );
    let (_, m) = http_get(&http, "/metrics").unwrap();
    assert_eq!(metric(&m, "driftd_events_consumed_total"), Some(0.0));
    sigterm(&daemon);
    let _ = wait_exit(&mut daemon, Duration::from_secs(30), &log);

    // The right one: every event, through the SASL listener.
    let (mut daemon, dir, http, log) = run("s3cret-pw");
    consume_all_and_stop(&mut daemon, &http, dir.path(), &log, "500 events over SASL");
    // The options are never logged with the password.
    assert!(!std::fs::read_to_string(&log).unwrap().contains("s3cret-pw"));
}

/// A real HTTP receiver on loopback, as a CI system would run one: it checks
/// each request's Standard Webhooks signature (computed here with `hmac`,
/// not with driftd's code) and CloudEvents shape, answers from a script, and
/// logs every request.
fn delivery_config(dir: &Path, broker: &str, http: &str, hook: &str) -> std::path::PathBuf {
    daemon_config(
        dir,
        broker,
        http,
        &format!(
            "[windows]\nkind = \"count\"\nevents = 1000\n[baseline]\nlearn_events = 1000\n\
             [[rules]]\nname = \"drift\"\naction = \"retrain\"\nwhen = {{ metric = \"drift_share\", op = \">=\", value = 0.25 }}\n\
             [[targets]]\nname = \"ci\"\nurl = \"http://{hook}/hook\"\nsecret_env = \"DRIFTD_TEST_WEBHOOK_SECRET\"\n\
             github_signature = true\ntimeout = \"2s\"\nmin_backoff = \"100ms\"\nmax_backoff = \"400ms\"\nmax_attempts = 50\n"
        ),
    )
}

/// A broker with a covariate-shift stream (one retrain decision), and the
/// daemon's config with a webhook target on a port of its own.
struct DeliverySetup {
    _broker: Broker,
    dir: tempfile::TempDir,
    http: String,
    hook: String,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
}

fn delivery_setup() -> DeliverySetup {
    let Rig {
        broker,
        dir,
        http,
        hook,
    } = Rig::start();
    let config = delivery_config(dir.path(), &broker.addr, &http, &hook);
    let log = dir.path().join("driftd.log");
    broker.produce(
        "logs",
        None,
        &generated(Scenario::CovariateShift, 6000, MODEL, 3),
    );
    DeliverySetup {
        _broker: broker,
        dir,
        http,
        hook,
        config,
        log,
    }
}

#[test]
fn decisions_are_delivered_signed_once_through_a_down_receiver_500s_and_429() {
    // Bound, not `..`: the broker and the directory live to the end of the test.
    let DeliverySetup {
        _broker,
        dir: _dir,
        http,
        hook,
        config,
        log,
    } = delivery_setup();
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let get = |path: &str| http_get(&http, path);

    // The receiver is down: the decision waits in the outbox, retried.
    wait_for(
        Duration::from_secs(60),
        "failed attempts while the receiver is down",
        || {
            let (_, m) = get("/metrics")?;
            (metric(
                &m,
                "driftd_delivery_attempts_total{target=\"ci\",outcome=\"retry\"}",
            )? >= 2.0)
                .then_some(())
        },
    );
    let (_, body) = get("/api/v1/decisions?outbox=true").unwrap();
    let outbox: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(outbox.len(), 1, "{body}");
    // The outbox's age shows while the receiver is down.
    wait_for(Duration::from_secs(10), "the oldest pending age", || {
        let (_, m) = get("/metrics")?;
        (metric(&m, "driftd_deliveries_oldest_pending_age_seconds")? > 0.0).then_some(())
    });
    assert_eq!(
        metric(&get("/metrics").unwrap().1, "driftd_deliveries_pending"),
        Some(1.0)
    );
    let id = outbox[0]["id"].as_str().unwrap().to_owned();

    // Up, answering 503, then 429 with Retry-After: 1, then 200.
    let state = std::sync::Arc::new(std::sync::Mutex::new(receiver::State::default()));
    state.lock().unwrap().script = [(503, None), (429, Some(1))].into_iter().collect();
    receiver::start(hook.clone(), WEBHOOK_SECRET, state.clone());
    wait_for(Duration::from_secs(30), "the decision delivered", || {
        let (_, body) = get("/api/v1/decisions")?;
        body.contains("\"delivery\":\"delivered\"").then_some(())
    });
    std::thread::sleep(Duration::from_millis(800));
    let requests = state.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for r in &requests {
        assert_eq!(r.id, id, "webhook-id is the decision id on every retry");
        assert!(r.signature_ok, "signature verifies: {r:?}");
        assert_eq!(
            r.hub_signature_ok,
            Some(true),
            "X-Hub-Signature-256 verifies"
        );
        assert_eq!(r.content_type, "application/cloudevents+json");
        assert_eq!(r.event["specversion"], "1.0");
        assert_eq!(r.event["id"], id.as_str());
        assert_eq!(r.event["type"], "io.driftd.model.retrain.requested");
        assert_eq!(r.event["subject"], MODEL);
        assert_eq!(r.event["data"]["rule"], "drift");
        assert_eq!(r.event["data"]["evidence"][0]["metric"], "drift_share");
    }
    assert!(
        requests[2].at.duration_since(requests[1].at) >= Duration::from_millis(1000),
        "Retry-After: 1 honoured"
    );
    let (_, m) = get("/metrics").unwrap();
    assert_eq!(
        metric(
            &m,
            "driftd_delivery_attempts_total{target=\"ci\",outcome=\"delivered\"}"
        ),
        Some(1.0)
    );
    promtool_check(&m);
    assert!(get("/api/v1/decisions?outbox=true").unwrap().1.trim() == "[]");
    sigterm(&daemon);
    exit_cleanly(&mut daemon, Duration::from_secs(30), &log);
    // Nothing is sent again after a restart: the delivery is recorded.
    let mut daemon = spawn_daemon(&config, &log, &[]);
    wait_for(Duration::from_secs(60), "/readyz after the restart", || {
        get("/readyz").filter(|(s, _)| *s == 200)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state.lock().unwrap().requests.len(), 3);
    sigterm(&daemon);
    exit_cleanly(&mut daemon, Duration::from_secs(30), &log);
}

#[test]
fn a_410_disables_the_target_and_the_delivery_is_dead() {
    // Bound, not `..`: the broker and the directory live to the end of the test.
    let DeliverySetup {
        _broker,
        dir: _dir,
        http,
        hook,
        config,
        log,
    } = delivery_setup();
    let state = std::sync::Arc::new(std::sync::Mutex::new(receiver::State::default()));
    state.lock().unwrap().script = [(410, None)].into_iter().collect();
    receiver::start(hook.clone(), WEBHOOK_SECRET, state.clone());
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let get = |path: &str| http_get(&http, path);
    wait_for(Duration::from_secs(60), "the delivery dead", || {
        let (_, body) = get("/api/v1/decisions")?;
        body.contains("\"delivery\":\"dead\"").then_some(())
    });
    let (_, m) = get("/metrics").unwrap();
    assert_eq!(
        metric(
            &m,
            "driftd_delivery_attempts_total{target=\"ci\",outcome=\"gone\"}"
        ),
        Some(1.0)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        state.lock().unwrap().requests.len(),
        1,
        "no retry after 410"
    );

    // The dead-deliveries list and an operator's retry need the bearer token.
    let dead_path = "/api/v1/deliveries?state=dead";
    assert_eq!(http_request(&http, "GET", dead_path, None).unwrap().0, 401);
    assert_eq!(
        http_request(&http, "GET", dead_path, Some("wrong-token-0123456789"))
            .unwrap()
            .0,
        401
    );
    let (status, body) = http_request(&http, "GET", dead_path, Some(API_TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    let dead: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(dead.len(), 1, "{body}");
    assert_eq!(
        (dead[0]["target"].as_str(), dead[0]["last_status"].as_u64()),
        (Some("ci"), Some(410))
    );
    let id = dead[0]["id"].as_str().unwrap().to_owned();
    let retry = format!("/api/v1/deliveries/{id}/retry");
    assert_eq!(http_request(&http, "POST", &retry, None).unwrap().0, 401);
    let (status, body) = http_request(&http, "POST", &retry, Some(API_TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    // The receiver answers 200 now: delivered, with the same id.
    wait_for(
        Duration::from_secs(30),
        "the retried delivery delivered",
        || {
            let (_, body) = get("/api/v1/decisions")?;
            body.contains("\"delivery\":\"delivered\"").then_some(())
        },
    );
    let requests = state.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.id == id && r.signature_ok));
    assert_eq!(
        http_request(&http, "POST", &retry, Some(API_TOKEN))
            .unwrap()
            .0,
        404
    );
    sigterm(&daemon);
    exit_cleanly(&mut daemon, Duration::from_secs(30), &log);
}

#[test]
fn a_decision_killed_before_delivery_and_a_slow_receiver_still_deliver_one_id() {
    let DeliverySetup {
        _broker,
        dir: _dir,
        http,
        hook,
        config,
        log,
    } = delivery_setup();
    let get = |path: &str| http_get(&http, path);
    // The receiver is down: the decision is checkpointed in the outbox and
    // retried; the daemon is killed before any delivery succeeds.
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let id = wait_for(Duration::from_secs(60), "a decision in the outbox", || {
        let (_, body) = get("/api/v1/decisions?outbox=true")?;
        let v: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        v.first().and_then(|d| d["id"].as_str().map(str::to_owned))
    });
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    // Up, but the first answer takes longer than the target's 2 s timeout:
    // driftd cannot know it arrived, and sends it again with the same id.
    let state = std::sync::Arc::new(std::sync::Mutex::new(receiver::State {
        slow: 1,
        slow_ms: 3_000,
        ..Default::default()
    }));
    receiver::start(hook.clone(), WEBHOOK_SECRET, state.clone());
    let mut daemon = spawn_daemon(&config, &log, &[]);
    wait_for(
        Duration::from_secs(60),
        "the decision delivered after the restart",
        || {
            let (_, body) = get("/api/v1/decisions")?;
            body.contains("\"delivery\":\"delivered\"").then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(3_500));
    let requests = state.lock().unwrap().requests.clone();
    assert!(
        requests.len() >= 2,
        "the timed-out request was sent again: {requests:?}"
    );
    assert!(
        requests.iter().all(|r| r.id == id && r.signature_ok),
        "{requests:?}"
    );
    // One decision, one id: a receiver that deduplicates by webhook-id acts once.
    let ids: std::collections::BTreeSet<&str> = requests.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 1);
    let (_, m) = get("/metrics").unwrap();
    assert_eq!(
        metric(
            &m,
            "driftd_delivery_attempts_total{target=\"ci\",outcome=\"delivered\"}"
        ),
        Some(1.0)
    );
    sigterm(&daemon);
    exit_cleanly(&mut daemon, Duration::from_secs(30), &log);
}

/// Make the test config consume the `feedback` topic too.
fn with_feedback_topic(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(
        config,
        text.replace("[kafka]\n", "[kafka]\nfeedback_topic = \"feedback\"\n"),
    )
    .unwrap();
}

/// Sum of `series` bucket counts by `le`, as (le, count), in order.
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix("_bucket{le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The learned checks in `driftd run`: a joint shift with embeddings, the
/// checks on their own thread. The windows the daemon stores carry the
/// classifier's and MMD's verdicts; the gauges say them (promtool clean);
/// and no event waited for a check: the slowest event took less time than
/// the fastest learned check.
#[test]
fn learned_checks_run_in_the_daemon_off_the_consumer() {
    let broker = Broker::start();
    broker.create_topic("logs", 1);
    broker.create_topic("dead-letters", 1);
    let mut spec = driftd::source::generate::GenerateSpec::new(Scenario::JointShift, 24_000);
    spec.embedding_dims = 16;
    spec.model = MODEL.into();
    broker.produce("logs", None, &lines_of(&spec));
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let config = daemon_config(
        dir.path(),
        &broker.addr,
        &http,
        // 20 permutations (the fewest a 5 % level allows): each drifted
        // window refits every classifier that many times, and a debug build
        // fits 30 times slower than a release one; what is tested here is
        // where the checks run, not their resolution.
        "[windows]\nsize = \"1m\"\nallowed_lateness = \"5s\"\n[baseline]\nlearn_events = 3000\n\
         [learned]\nenabled = true\nembedding_classifier = true\npermutations = 20\n",
    );
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    // Minutes 0, 1 and 2 close (the last stays open: nothing passes it).
    let m = wait_for(Duration::from_secs(300), "three windows published", || {
        let (_, m) = http_get(&http, "/metrics")?;
        (metric(&m, "driftd_events_consumed_total") == Some(24_000.0)
            && metric(
                &m,
                &format!("driftd_windows_closed_total{{model=\"{MODEL}\"}}"),
            ) == Some(3.0))
        .then_some(m)
    });
    promtool_check(&m);
    assert_eq!(
        metric(&m, "driftd_learned_checks_duration_seconds_count"),
        Some(3.0)
    );
    assert_eq!(metric(&m, "driftd_learned_check_failures_total"), Some(0.0));
    let auc = metric(
        &m,
        &format!("driftd_learned_classifier_auc{{model=\"{MODEL}\"}}"),
    )
    .unwrap();
    assert!(
        auc > 0.75,
        "the last closed window is after the flip: AUC {auc}"
    );
    assert_eq!(
        metric(&m, &format!("driftd_learned_drift{{model=\"{MODEL}\"}}")),
        Some(1.0)
    );
    // Every one of the 20 label shuffles scored below the observed AUC.
    assert_eq!(
        metric(
            &m,
            &format!("driftd_learned_classifier_p_value{{model=\"{MODEL}\"}}")
        ),
        Some(1.0 / 21.0)
    );
    let caption_auc = format!(
        "driftd_learned_embedding_drift{{model=\"{MODEL}\",embedding=\"caption\",statistic=\"classifier_auc\"}}"
    );
    assert!(metric(&m, &caption_auc).is_some(), "{m}");
    // Every event took less time than the fastest learned check.
    let processing = buckets(&m, "driftd_event_processing_duration_seconds");
    let learned = buckets(&m, "driftd_learned_checks_duration_seconds");
    let total = processing.last().unwrap().1;
    let slowest_event = processing.iter().find(|(_, c)| *c == total).unwrap().0;
    let fastest_check = learned
        .iter()
        .take_while(|(_, c)| *c == 0.0)
        .last()
        .map_or(0.0, |(le, _)| *le);
    eprintln!("slowest event <= {slowest_event} s; fastest learned check > {fastest_check} s");
    assert!(
        slowest_event <= fastest_check,
        "an event took up to {slowest_event} s, a learned check at least {fastest_check} s:\n{processing:?}\n{learned:?}"
    );
    sigterm(&daemon);
    exit_cleanly(&mut daemon, Duration::from_secs(30), &log);
    let stored = windows(&dir.path().join("state"));
    assert_eq!(stored.len(), 3);
    for (i, (_, _, index, json)) in stored.iter().enumerate() {
        let w: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(*index, i as u64);
        let auc = w["learned"]["classifier"]["auc"].as_f64().unwrap();
        assert_eq!(auc > 0.75, i == 2, "window {i}: AUC {auc}");
        assert!(w["learned"]["embeddings"]["image"]["mmd"]["p_value"].is_f64());
    }
}

/// The caption-quality estimator in `driftd run`: ratings on the feedback
/// topic (planted: twice the model's confidence, plus noise) train it in the
/// daemon; the next windows carry its predicted quality, matching the
/// planted truth; the gauges give its version, training samples and
/// validation error (promtool clean); the versions are in the stored windows.
#[test]
fn the_quality_estimator_trains_on_the_feedback_topic() {
    let broker = Broker::start();
    for t in ["logs", "feedback", "dead-letters"] {
        broker.create_topic(t, 1);
    }
    let mut spec = driftd::source::generate::GenerateSpec::new(Scenario::QualityDrop, 12_000);
    spec.model = MODEL.into();
    spec.drift_at = 0;
    spec.embedding_dims = 8;
    let events = lines_of(&spec);
    let parsed: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap())
        .collect();
    let truth = |v: &serde_json::Value| v["prediction"]["confidence"].as_f64().map(|c| 2.0 * c);
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let config = daemon_config(
        dir.path(),
        &broker.addr,
        &http,
        "[windows]\nkind = \"count\"\nevents = 2000\n[baseline]\nlearn_events = 1000\n\
         [estimator]\nenabled = true\nmin_examples = 500\nretrain_after = 2000\n",
    );
    with_feedback_topic(&config);
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let get = |path: &str| http_get(&http, path);
    let consumed = |n: f64| {
        let (_, m) = get("/metrics")?;
        (metric(&m, "driftd_events_consumed_total")? == n).then_some(())
    };
    // The first 7,000 events: the baseline and three windows, no estimator yet.
    broker.produce("logs", None, &events[..7000]);
    wait_for(Duration::from_secs(60), "7000 events", || consumed(7000.0));
    // Every other successful event after the baseline is rated.
    let mut rng = driftd::testkit::XorShift::new(3);
    let feedback: Vec<Vec<u8>> = parsed[1000..7000]
        .iter()
        .step_by(2)
        .filter_map(|v| {
            let rating = truth(v)? + 0.1 * rng.normal();
            Some(
                serde_json::json!({"event_id": v["event_id"], "timestamp": v["timestamp"],
                    "rating": rating})
                .to_string()
                .into_bytes(),
            )
        })
        .collect();
    broker.produce("feedback", None, &feedback);
    wait_for(Duration::from_secs(60), "the feedback joined", || {
        let (_, m) = get("/metrics")?;
        let joined = metric(&m, "driftd_feedback_events_total{outcome=\"joined\"}")?;
        (joined == feedback.len() as f64).then_some(())
    });
    // The rest: windows 4 and 5 (events 9,000 and 11,000) close with the
    // estimator's predictions.
    broker.produce("logs", None, &events[7000..]);
    wait_for(Duration::from_secs(60), "12000 events", || {
        consumed(12_000.0)
    });
    let m = wait_for(Duration::from_secs(10), "the windows published", || {
        let (_, m) = get("/metrics")?;
        (metric(
            &m,
            &format!("driftd_windows_closed_total{{model=\"{MODEL}\"}}"),
        )? == 5.0)
            .then_some(m)
    });
    promtool_check(&m);
    let gauge = |name: &str| metric(&m, &format!("driftd_{name}{{model=\"{MODEL}\"}}"));
    assert!(gauge("quality_estimator_version").unwrap() >= 1.0, "{m}");
    assert!(gauge("quality_estimator_training_samples").unwrap() >= 400.0);
    let rmse = gauge("quality_estimator_validation_rmse").unwrap();
    assert!((0.08..0.13).contains(&rmse), "validation RMSE {rmse}");
    // The model's page lists every version with its validation error; it is
    // refreshed every second, so it may show an older current version first.
    let current = gauge("quality_estimator_version").unwrap() as u64;
    let page: serde_json::Value = wait_for(Duration::from_secs(5), "the model page", || {
        let (_, body) = get(&format!("/api/v1/models/{MODEL}"))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["estimator"]["current"] == current).then_some(v)
    });
    let versions = page["estimator"]["versions"].as_array().unwrap();
    assert!(versions.len() as u64 >= current);
    assert!(versions.iter().all(|v| v["validation_rmse"].is_f64()));
    sigterm(&daemon);
    exit_cleanly(&mut daemon, Duration::from_secs(30), &log);

    let stored = windows(&dir.path().join("state"));
    assert_eq!(stored.len(), 5);
    let reports: Vec<serde_json::Value> = stored
        .iter()
        .map(|w| serde_json::from_str(&w.3).unwrap())
        .collect();
    let trained: usize = reports
        .iter()
        .map(|r| r["estimator"]["trained"].as_array().unwrap().len())
        .sum();
    assert!(trained >= 1, "the versions are stored with the windows");
    // ...and in a table of their own, each with its validation error.
    let versions = Store::open_read_only(&dir.path().join("state"))
        .unwrap()
        .estimator_versions(Some(MODEL))
        .unwrap();
    assert_eq!(versions.len(), trained);
    assert_eq!(versions[0].version, 1);
    assert!(versions[0].accepted);
    assert!(versions
        .iter()
        .all(|v| (0.05..0.2).contains(&v.validation_rmse)));
    for (k, r) in reports.iter().enumerate().skip(3) {
        // Window k holds events 1000 + 2000 k .. 1000 + 2000 (k + 1).
        let truths: Vec<f64> = parsed[1000 + 2000 * k..1000 + 2000 * (k + 1)]
            .iter()
            .filter_map(truth)
            .collect();
        let e = &r["estimator"];
        assert_eq!(e["predicted_captions"], truths.len());
        let want = truths.iter().sum::<f64>() / truths.len() as f64;
        let got = e["predicted_mean"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 0.02,
            "window {k}: predicted {got}, planted {want}"
        );
    }
}
