//! Issue 15: faults on a real broker, each ending with the windows of an
//! uninterrupted run and every decision delivered once. The broker stopped
//! for a minute and started again on its own files; the webhook receiver
//! down for a long outage; the state directory's disk full and freed again;
//! a consumer left with an empty assignment rejoining its group.

mod common;
mod support;

use std::path::Path;
use std::time::Duration;

use driftd::source::generate::Scenario;
use support::broker::*;
use support::daemon::*;

const MODEL: &str = "alt-text-captioner";
const WINDOWS: &str =
    "[windows]\nkind = \"count\"\nevents = 1000\n[baseline]\nlearn_events = 1000\n";

fn consumed(http: &str) -> Option<f64> {
    let (_, m) = http_get(http, "/metrics")?;
    metric(&m, "driftd_events_consumed_total")
}

/// The windows `driftd replay` gives for `events` with `config`.
fn replayed(dir: &Path, events: &[Vec<u8>], config: &str) -> Vec<serde_json::Value> {
    let file = dir.join("events.ndjson");
    std::fs::write(&file, events.join(&b'\n')).unwrap();
    common::replay_json(&file, Some(config)).0
}

/// The daemon's stored windows, oldest first, as JSON.
fn stored(http: &str) -> Vec<serde_json::Value> {
    let mut w: Vec<serde_json::Value> =
        get_json(http, &format!("/api/v1/windows?model={MODEL}&limit=1000"))
            .as_array()
            .unwrap()
            .clone();
    w.reverse();
    w
}

#[test]
fn the_broker_down_for_a_minute_and_back_loses_and_repeats_nothing() {
    let mut broker = Broker::start_sqlite();
    broker.create_topic("logs", 1);
    broker.create_topic("dead-letters", 1);
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let config = daemon_config(dir.path(), &broker.addr, &http, WINDOWS);
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let events = generated(Scenario::CovariateShift, 6000, MODEL, 31);
    broker.produce("logs", None, &events[..3000]);
    let minute = Duration::from_secs(60);
    wait_for(2 * minute, "the first half", || {
        (consumed(&http)? == 3000.0).then_some(())
    });
    // Down for 60 s: the daemon keeps running and says it cannot reach it.
    broker.stop();
    std::thread::sleep(minute);
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is running"
    );
    broker.start_again();
    broker.produce("logs", None, &events[3000..]);
    wait_for(3 * minute, "the second half", || {
        (consumed(&http)? == 6000.0).then_some(())
    });
    // Nothing twice, nothing lost: replay's windows (count windows: every
    // one closed in both).
    let expected = replayed(dir.path(), &events, WINDOWS);
    wait_for(minute, "every window stored", || {
        (stored(&http).len() == expected.len()).then_some(())
    });
    let got = stored(&http);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}

#[test]
fn a_long_receiver_outage_and_a_restart_still_deliver_each_decision_once() {
    // Time-compressed: the backoff tops out at 1 s instead of 5 minutes, so
    // 40 s of outage is some forty failed attempts at the cap, as hours are
    // with the shipped backoff; a restart in the middle of it must not lose
    // or repeat the delivery.
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
            "{WINDOWS}[[rules]]\nname = \"drift\"\naction = \"retrain\"\nwhen = {{ metric = \"drift_share\", op = \">=\", value = 0.25 }}\n\
             [[targets]]\nname = \"ci\"\nurl = \"http://{hook}/hook\"\nsecret_env = \"DRIFTD_TEST_WEBHOOK_SECRET\"\n\
             timeout = \"2s\"\nmin_backoff = \"100ms\"\nmax_backoff = \"1s\"\nmax_attempts = 1000\n"
        ),
    );
    let log = dir.path().join("driftd.log");
    broker.produce(
        "logs",
        None,
        &generated(Scenario::CovariateShift, 6000, MODEL, 3),
    );
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let retries = |http: &str| {
        let (_, m) = http_get(http, "/metrics")?;
        metric(
            &m,
            "driftd_delivery_attempts_total{target=\"ci\",outcome=\"retry\"}",
        )
    };
    let minute = Duration::from_secs(60);
    wait_for(minute, "attempts failing", || {
        (retries(&http)? >= 10.0).then_some(())
    });
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
    let mut daemon = spawn_daemon(&config, &log, &[]);
    wait_for(minute, "attempts failing after the restart", || {
        (retries(&http)? >= 20.0).then_some(())
    });
    let state = std::sync::Arc::new(std::sync::Mutex::new(receiver::State::default()));
    receiver::start(hook, WEBHOOK_SECRET, state.clone());
    wait_for(minute, "the decision delivered", || {
        let (_, body) = http_get(&http, "/api/v1/decisions")?;
        body.contains("\"delivery\":\"delivered\"").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let requests = state.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 1, "delivered once: {requests:?}");
    assert!(requests[0].signature_ok);
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}

/// Whether this machine lets a process mount a tmpfs in a mount namespace of
/// its own (root, or unprivileged user namespaces).
fn private_mounts_work() -> Result<(), String> {
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg("d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs \"$d\" && umount \"$d\"")
        .output()
        .map_err(|e| format!("unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn a_full_disk_stops_checkpoints_not_the_daemon_and_they_resume() {
    // The state directory is a 24 MiB tmpfs in a mount namespace of the
    // daemon's own; the test fills it through /proc/<pid>/root.
    if let Err(e) = private_mounts_work() {
        panic!("this test needs `unshare --user --map-root-user --mount` with tmpfs (util-linux; root or unprivileged user namespaces): {e}");
    }
    let Rig {
        broker,
        dir,
        http,
        hook: _,
    } = Rig::start();
    let config = daemon_config(dir.path(), &broker.addr, &http, WINDOWS);
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let log = dir.path().join("driftd.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut daemon = Daemon::from(
        std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size=24m tmpfs '{}' && exec '{}' run --config '{}'",
                state.display(),
                env!("CARGO_BIN_EXE_driftd"),
                config.display()
            ))
            .env_remove("DRIFTD_CONFIG")
            .env("DRIFTD_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap(),
    );
    let inside = Path::new("/proc")
        .join(daemon.id().to_string())
        .join("root")
        .join(state.strip_prefix("/").unwrap());
    let events = generated(Scenario::CovariateShift, 9000, MODEL, 41);
    broker.produce("logs", None, &events[..3000]);
    let minute = Duration::from_secs(60);
    wait_for(minute, "the first part", || {
        (consumed(&http)? == 3000.0).then_some(())
    });
    let checkpoints = |http: &str| {
        let (_, m) = http_get(http, "/metrics")?;
        metric(&m, "driftd_checkpoints_total")
    };
    // Fill the disk.
    let filler = inside.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 1 << 16];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    broker.produce("logs", None, &events[3000..6000]);
    wait_for(minute, "the second part consumed", || {
        (consumed(&http)? == 6000.0).then_some(())
    });
    let failures = wait_for(minute, "checkpoints failing", || {
        let (_, m) = http_get(&http, "/metrics")?;
        let n = metric(&m, "driftd_checkpoint_failures_total")?;
        (n >= 2.0).then_some(n)
    });
    assert!(failures >= 2.0);
    let stuck = checkpoints(&http).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        checkpoints(&http).unwrap(),
        stuck,
        "no checkpoint while the disk is full"
    );
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is running"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("full"), "the log says why: {text}");
    // Space again: checkpoints resume, nothing lost.
    std::fs::remove_file(&filler).unwrap();
    broker.produce("logs", None, &events[6000..]);
    wait_for(minute, "every event consumed", || {
        (consumed(&http)? == 9000.0).then_some(())
    });
    wait_for(minute, "checkpoints again", || {
        (checkpoints(&http)? > stuck).then_some(())
    });
    let expected = replayed(dir.path(), &events, WINDOWS);
    let mut seen = 0;
    let all = (0..600).any(|_| {
        seen = stored(&http).len();
        std::thread::sleep(Duration::from_millis(100));
        seen == expected.len()
    });
    assert!(all, "{seen} windows stored, {} expected", expected.len());
    for (g, e) in stored(&http).iter().zip(&expected) {
        assert_eq!(g, e);
    }
    // No corruption: SQLite's own check, on a copy of the store (the tmpfs
    // goes with the daemon's mount namespace), taken once it is idle.
    std::thread::sleep(Duration::from_secs(2));
    let copy = tempfile::tempdir().unwrap();
    for f in ["driftd.sqlite", "driftd.sqlite-wal"] {
        if inside.join(f).exists() {
            std::fs::copy(inside.join(f), copy.path().join(f)).unwrap();
        }
    }
    let store = rusqlite::Connection::open(copy.path().join("driftd.sqlite")).unwrap();
    let ok: String = store
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(store);
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}

#[test]
fn an_empty_assignment_is_detected_reported_and_rejoined() {
    // A group whose leader is a static member that died without leaving
    // (tansu 0.6.0 never times static members out) hands a new member no
    // partition, for good. tansu can also leave a restarted dynamic member
    // with an empty assignment by a race (its SyncGroup takes a follower's
    // empty assignments once a dead leader expires); this reproduces the
    // outcome deterministically.
    let Rig {
        broker,
        dir,
        http,
        hook: _,
    } = Rig::start();
    broker.create_topic("two", 2);
    {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let ghost: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .set("group.id", "driftd")
            .set("group.instance.id", "ghost")
            .create()
            .unwrap();
        ghost.subscribe(&["two"]).unwrap();
        wait_for(Duration::from_secs(60), "the ghost's partitions", || {
            let _ = ghost.poll(Duration::from_millis(100));
            (ghost.assignment().ok()?.count() == 2).then_some(())
        });
        // Closed: a static member does not leave its group.
    }
    let config = daemon_config(dir.path(), &broker.addr, &http, WINDOWS);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[kafka]\n", "[kafka]\ninstance_id = \"\"\n")
        .replace("topics = [\"logs\"]", "topics = [\"two\"]");
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let minute = Duration::from_secs(60);
    let ready = wait_for(2 * minute, "the empty assignment reported", || {
        let (_, body) = http_get(&http, "/readyz")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (!v["problems"].as_array()?.is_empty()).then_some(v)
    });
    assert_eq!(ready["ready"], false, "{ready}");
    let problem = ready["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("no partition assigned") && problem.contains("2 partition(s)"),
        "{problem}"
    );
    let (_, m) = http_get(&http, "/metrics").unwrap();
    assert!(metric(&m, "driftd_kafka_group_rejoins_total").unwrap() >= 1.0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("rejoining the group"), "{text}");
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is running"
    );
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}
