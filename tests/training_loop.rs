//! The continuous-training loop against a real broker (tansu on loopback)
//! and a real HTTP receiver that checks signatures: retrain on sustained
//! caption rot, a candidate registered by "CI", its promotion, a rollback of
//! a redeployed version that does worse, a rejected candidate; GitLab,
//! GitHub and Kafka targets, with unknown outcomes never repeated on their
//! own; hot reload.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftd::source::generate::{GenerateSpec, Scenario};
use support::broker::*;
use support::daemon::*;

const MODEL: &str = "alt-text-captioner";
/// 2026-11-24T00:00:00Z.
const T0: i64 = 1_795_478_400_000;

/// `n` events of `version` starting at `start_ms` (100 events/s).
fn events(scenario: Scenario, n: u64, version: &str, seed: u64, start_ms: i64) -> Vec<Vec<u8>> {
    let mut spec = GenerateSpec::new(scenario, n);
    spec.model = MODEL.into();
    spec.model_version = version.into();
    spec.seed = seed;
    spec.start_ms = start_ms;
    spec.drift_at = 0;
    lines_of(&spec)
}

/// Closed windows of `version` the API lists.
fn windows_of(addr: &str, version: &str) -> usize {
    let (status, body) =
        http_get(addr, &format!("/api/v1/models/{MODEL}/windows?limit=1000")).unwrap_or_default();
    if status != 200 {
        return 0;
    }
    let ws: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    ws.iter().filter(|w| w["model_version"] == version).count()
}

/// Decisions (newest first) as `rule:action:outcome`.
fn decisions(addr: &str) -> Vec<String> {
    get_json(addr, "/api/v1/decisions?limit=1000")
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let d = &d["decision"];
            format!(
                "{}:{}:{}",
                d["rule"].as_str().unwrap(),
                d["action"].as_str().unwrap(),
                d["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

const LOOP_RULES: &str = r#"
[windows]
kind = "count"
events = 1000
[baseline]
learn_events = 1000
[[rules]]
name = "captions-rot"
action = "retrain"
when = { metric = "quality.boilerplate_prefix_rate", op = ">", value = 0.15 }
for_windows = 2
[promotion]
windows = 3
min_samples = 500
compare = [ { metric = "quality.boilerplate_prefix_rate", better = "lower", margin = 0.05 },
            { metric = "signals.error_rate", better = "lower", margin = -0.01 } ]
[rollback]
windows = 2
compare = [ { metric = "signals.error_rate", better = "lower", margin = 0.05 } ]
"#;

#[test]
fn retrain_candidate_redeploy_rollback_and_rejection_end_to_end() {
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
            "{LOOP_RULES}\n[[targets]]\nname = \"ci\"\nurl = \"http://{hook}/hook\"\n\
             secret_env = \"DRIFTD_TEST_WEBHOOK_SECRET\"\nmin_backoff = \"100ms\"\n"
        ),
    );
    let log = dir.path().join("driftd.log");
    let state = Arc::new(Mutex::new(receiver::State::default()));
    receiver::start(hook.clone(), WEBHOOK_SECRET, state.clone());
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let minute = Duration::from_secs(60);
    let mut t = T0;
    let mut produce = |scenario, n: u64, version: &str, seed| {
        broker.produce("logs", None, &events(scenario, n, version, seed, t));
        t += n as i64 * 10;
    };

    // A stable stream: windows, no decision.
    produce(Scenario::Stable, 3000, "v1", 1);
    wait_for(minute, "two windows of v1", || {
        (windows_of(&http, "v1") == 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(decisions(&http).is_empty(), "{:?}", decisions(&http));

    // Captions rot: after two consecutive breaching windows, one retrain.
    produce(Scenario::QualityDrop, 3000, "v1", 2);
    wait_for(minute, "five windows of v1", || {
        (windows_of(&http, "v1") == 5).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        decisions(&http),
        [
            "captions-rot:retrain:suppressed: not_rearmed",
            "captions-rot:retrain:fired",
            "captions-rot:retrain:suppressed: pending"
        ]
    );
    let page = get_json(&http, &format!("/api/v1/models/{MODEL}"));
    assert_eq!(page["rules"]["incumbent"], "v1");
    assert_eq!(page["rules"]["retrain_in_flight"], true, "{page}");

    // CI registers the retrained model (bearer token; bad requests are refused).
    let path = format!("/api/v1/models/{MODEL}/candidates");
    let body = r#"{"version": "v2", "metadata": {"mlflow_model_uri": "models:/captioner/2"}}"#;
    assert_eq!(http_send(&http, "POST", &path, None, body).unwrap().0, 401);
    assert_eq!(
        http_send(&http, "POST", &path, Some(API_TOKEN), "{\"metadata\": {}}")
            .unwrap()
            .0,
        400
    );
    assert_eq!(
        http_send(
            &http,
            "POST",
            "/api/v1/models/no-such-model/candidates",
            Some(API_TOKEN),
            body
        )
        .unwrap()
        .0,
        404
    );
    let (status, reply) = http_send(&http, "POST", &path, Some(API_TOKEN), body).unwrap();
    assert_eq!(status, 201, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["outcome"], "created");
    assert_eq!(reply["candidate"]["version"], "v2");
    // The registration is durable when answered: kill -9 and restart.
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let mut daemon = spawn_daemon(&config, &log, &[]);
    wait_for(minute, "/readyz after kill -9", || {
        http_get(&http, "/readyz").filter(|(s, _)| *s == 200)
    });
    let page = get_json(&http, &format!("/api/v1/models/{MODEL}"));
    assert_eq!(page["rules"]["candidate"]["version"], "v2", "{page}");
    assert_eq!(
        page["rules"]["candidate"]["metadata"]["mlflow_model_uri"],
        "models:/captioner/2"
    );
    assert_eq!(
        page["rules"]["retrain_in_flight"], false,
        "the retrain landed"
    );
    // The same registration again changes nothing.
    let (status, reply) = http_send(&http, "POST", &path, Some(API_TOKEN), body).unwrap();
    assert_eq!(status, 201);
    assert!(reply.contains("\"outcome\":\"unchanged\""), "{reply}");

    // The candidate's shadow traffic is good: after three windows, a redeploy.
    produce(Scenario::Stable, 4000, "v2", 3);
    wait_for(minute, "the redeploy", || {
        decisions(&http)
            .first()
            .filter(|d| *d == "promotion:redeploy:fired")
            .cloned()
    });
    let page = get_json(&http, &format!("/api/v1/models/{MODEL}"));
    assert_eq!(page["rules"]["incumbent"], "v2", "{page}");
    assert_eq!(page["rules"]["previous"], "v1");
    assert_eq!(page["rules"]["probation_windows"], 0);
    assert_eq!(page["last_decision"]["decision"]["action"], "redeploy");

    // Deployed, v2 breaks: errors far above v1's, so it is rolled back to v1.
    produce(Scenario::Broken, 2000, "v2", 4);
    wait_for(minute, "the rollback", || {
        decisions(&http)
            .first()
            .filter(|d| *d == "rollback:rollback:fired")
            .cloned()
    });
    let page = get_json(&http, &format!("/api/v1/models/{MODEL}"));
    assert_eq!(page["rules"]["incumbent"], "v1", "{page}");
    assert_eq!(page["rules"]["previous"], "v2");

    // v1 serves again; a worse candidate v3 is rejected.
    produce(Scenario::Stable, 2000, "v1", 5);
    wait_for(minute, "v1's windows after the rollback", || {
        (windows_of(&http, "v1") == 7).then_some(())
    });
    let body3 = r#"{"version": "v3"}"#;
    let (status, _) = http_send(&http, "POST", &path, Some(API_TOKEN), body3).unwrap();
    assert_eq!(status, 201);
    produce(Scenario::Broken, 4000, "v3", 6);
    wait_for(minute, "the rejection", || {
        decisions(&http)
            .first()
            .filter(|d| *d == "promotion:candidate_rejected:fired")
            .cloned()
    });
    wait_for(minute, "four deliveries", || {
        (state.lock().unwrap().requests.len() >= 4).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1000));
    let requests = state.lock().unwrap().requests.clone();
    let types: Vec<&str> = requests
        .iter()
        .map(|r| r.event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "io.driftd.model.retrain.requested",
            "io.driftd.model.redeploy.requested",
            "io.driftd.model.rollback.requested",
            "io.driftd.model.candidate.rejected"
        ]
    );
    for r in &requests {
        assert!(r.signature_ok, "{r:?}");
        assert_eq!(r.event["subject"], MODEL);
        assert!(r.event["data"]["reason"].as_str().unwrap().len() > 10);
    }
    let data = |i: usize| requests[i].event["data"].clone();
    assert_eq!(data(1)["versions"]["incumbent"], "v1");
    assert_eq!(data(1)["versions"]["deploy"], "v2");
    assert_eq!(data(1)["rule"], "promotion");
    assert_eq!(data(2)["versions"]["deploy"], "v1");
    assert_eq!(data(2)["evidence"][0]["metric"], "signals.error_rate");
    assert!(data(2)["evidence"][0]["value"].as_f64().unwrap() > 0.2);
    assert_eq!(data(3)["versions"]["candidate"], "v3");
    assert!(data(3)["reason"]
        .as_str()
        .unwrap()
        .contains("signals.error_rate"));

    let (_, m) = http_get(&http, "/metrics").unwrap();
    let role = |v: &str, role: &str| {
        metric(
            &m,
            &format!(
                "driftd_model_version_role{{model=\"{MODEL}\",model_version=\"{v}\",role=\"{role}\"}}"
            ),
        )
    };
    assert_eq!(role("v1", "incumbent"), Some(1.0), "{m}");
    assert_eq!(role("v2", "previous"), Some(1.0));
    assert_eq!(
        role("v3", "candidate"),
        None,
        "a rejected candidate's series is gone"
    );
    assert_eq!(
        metric(
            &m,
            &format!("driftd_candidates_registered_total{{model=\"{MODEL}\"}}")
        ),
        Some(1.0),
        "v2 counted before the kill was lost with the process; v3 after it"
    );
    assert_eq!(
        metric(&m, "driftd_deliveries_oldest_pending_age_seconds"),
        Some(0.0)
    );
    promtool_check(&m);
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}

#[test]
fn gitlab_github_and_kafka_targets_and_unknown_outcomes_are_not_sent_twice() {
    let Rig {
        broker,
        dir,
        http,
        hook,
    } = Rig::start();
    broker.create_topic("driftd-events", 1);
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
[[rules]]
name = "drift"
action = "retrain"
when = {{ metric = "drift_share", op = ">=", value = 0.25 }}
[[targets]]
name = "a-gitlab"
kind = "gitlab"
url = "http://{hook}"
project = "42"
ref = "main"
token_env = "DRIFTD_TEST_GITLAB_TOKEN"
variables = {{ DEPLOY_ENV = "staging" }}
timeout = "1s"
min_backoff = "100ms"
[[targets]]
name = "b-github"
kind = "github"
url = "http://{hook}"
repository = "acme/captioner"
token_env = "DRIFTD_TEST_GITHUB_TOKEN"
timeout = "30s"
min_backoff = "100ms"
[[targets]]
name = "c-kafka"
kind = "kafka"
topic = "driftd-events"
min_backoff = "100ms"
"#
        ),
    );
    let log = dir.path().join("driftd.log");
    let env = [
        ("DRIFTD_TEST_GITLAB_TOKEN", "glptt-test-trigger"),
        ("DRIFTD_TEST_GITHUB_TOKEN", "ghp_test_token"),
    ];
    // GitLab answers after the 1 s timeout; GitHub after 30 s (the daemon is
    // killed while it waits).
    let state = Arc::new(Mutex::new(receiver::State::default()));
    state.lock().unwrap().slow_paths = vec![("/api/v4/".into(), 2500), ("/repos/".into(), 30_000)];
    receiver::start(hook.clone(), WEBHOOK_SECRET, state.clone());
    let mut daemon = spawn_daemon_env(&config, &log, &[], &env);
    broker.produce(
        "logs",
        None,
        &generated(Scenario::CovariateShift, 6000, MODEL, 3),
    );
    let minute = Duration::from_secs(60);
    let count = |prefix: &str| {
        state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    };
    let unknown = |http: &str| -> Vec<serde_json::Value> {
        let (_, body) = http_request(
            http,
            "GET",
            "/api/v1/deliveries?state=unknown",
            Some(API_TOKEN),
        )
        .unwrap_or_default();
        serde_json::from_str(&body).unwrap_or_default()
    };
    // GitLab timed out after sending: unknown. GitHub's request is in flight.
    wait_for(minute, "GitLab unknown and GitHub in flight", || {
        (unknown(&http).len() == 1 && count("/repos/") == 1).then_some(())
    });
    let first = unknown(&http);
    assert_eq!(first[0]["target"], "a-gitlab");
    assert!(first[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("does not deduplicate"));
    let id = first[0]["id"].as_str().unwrap().to_owned();
    // kill -9 while GitHub has the request: after the restart its outcome is
    // unknown too, and it is not sent again on its own.
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let mut daemon = spawn_daemon_env(&config, &log, &[], &env);
    let events = read_topic(&broker.addr, "driftd-events", 1);
    assert_eq!(events.len(), 1, "the Kafka target got the event");
    assert_eq!(events[0].key, MODEL.as_bytes());
    let ce: serde_json::Value = serde_json::from_slice(&events[0].payload).unwrap();
    assert_eq!(ce["id"], id.as_str());
    assert_eq!(ce["type"], "io.driftd.model.retrain.requested");
    assert_eq!(
        events[0].header("content-type"),
        Some("application/cloudevents+json")
    );
    wait_for(minute, "both unknown", || {
        (unknown(&http).len() == 2).then_some(())
    });
    let both = unknown(&http);
    assert_eq!(both[1]["target"], "b-github", "{both:?}");
    assert!(both[1]["last_error"]
        .as_str()
        .unwrap()
        .contains("driftd stopped"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        (count("/api/v4/"), count("/repos/")),
        (1, 1),
        "nothing fired twice"
    );
    let (_, m) = http_get(&http, "/metrics").unwrap();
    assert_eq!(
        metric(
            &m,
            "driftd_delivery_attempts_total{target=\"a-gitlab\",outcome=\"unknown\"}"
        ),
        None,
        "the process that counted it was killed"
    );
    let delivery = |http: &str| {
        get_json(http, "/api/v1/decisions")
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id.as_str())
            .map(|d| d["delivery"].clone())
            .unwrap()
    };
    assert_eq!(delivery(&http), "unknown");

    // The operator checked CI and asks for them again.
    state.lock().unwrap().slow_paths.clear();
    let (status, body) = http_request(
        &http,
        "POST",
        &format!("/api/v1/deliveries/{id}/retry"),
        Some(API_TOKEN),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"retried\":2"), "{body}");
    wait_for(minute, "delivered", || {
        (delivery(&http) == "delivered").then_some(())
    });
    assert_eq!((count("/api/v4/"), count("/repos/")), (2, 2));
    let requests = state.lock().unwrap().requests.clone();

    // GitLab: the trigger API, form-encoded token, ref and variables.
    let gl = requests
        .iter()
        .find(|r| r.path.starts_with("/api/v4/"))
        .unwrap();
    assert_eq!(gl.path, "/api/v4/projects/42/trigger/pipeline");
    let form: std::collections::BTreeMap<String, String> =
        form_urlencoded::parse(&gl.body).into_owned().collect();
    assert_eq!(form["token"], "glptt-test-trigger");
    assert_eq!(form["ref"], "main");
    assert_eq!(form["variables[DRIFTD_EVENT_ID]"], id);
    assert_eq!(form["variables[DRIFTD_ACTION]"], "retrain");
    assert_eq!(form["variables[DRIFTD_MODEL]"], MODEL);
    assert_eq!(form["variables[DEPLOY_ENV]"], "staging");
    let ce: serde_json::Value = serde_json::from_str(&form["variables[DRIFTD_EVENT]"]).unwrap();
    assert_eq!(ce["id"], id.as_str());

    // GitHub: repository_dispatch with a bearer token, at most 10 payload keys.
    let gh = requests
        .iter()
        .find(|r| r.path.starts_with("/repos/"))
        .unwrap();
    assert_eq!(gh.path, "/repos/acme/captioner/dispatches");
    let h = |k: &str| gh.headers.get(k).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("authorization"), "Bearer ghp_test_token");
    assert_eq!(h("accept"), "application/vnd.github+json");
    assert_eq!(h("x-github-api-version"), "2022-11-28");
    assert!(h("user-agent").starts_with("driftd/"));
    let body: serde_json::Value = serde_json::from_slice(&gh.body).unwrap();
    assert_eq!(body["event_type"], "io.driftd.model.retrain.requested");
    let payload = body["client_payload"].as_object().unwrap();
    assert!(payload.len() <= 10, "{payload:?}");
    assert_eq!(payload["id"], id.as_str());
    assert_eq!(payload["decision"]["rule"], "drift");
    let (_, m) = http_get(&http, "/metrics").unwrap();
    promtool_check(&m);
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}

#[test]
fn write_endpoints_answer_403_without_a_configured_token() {
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("driftd.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"127.0.0.1:{}\"\ntopics = [\"logs\"]\n[http]\nlisten = \"{http}\"\n\
             api_token_env = \"DRIFTD_TEST_NO_SUCH_TOKEN\"\n[state]\ndir = \"{}\"\n",
            free_port(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    wait_for(Duration::from_secs(30), "/healthz", || {
        http_get(&http, "/healthz").filter(|(s, _)| *s == 200)
    });
    for (method, path) in [
        ("GET", "/api/v1/deliveries?state=dead"),
        ("POST", "/api/v1/deliveries/dec_x/retry"),
        ("POST", "/api/v1/reload"),
        ("POST", "/api/v1/models/m/candidates"),
    ] {
        let (status, body) = http_request(&http, method, path, Some(API_TOKEN)).unwrap();
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(body.contains("no API token is configured"), "{body}");
    }
    sigterm(&daemon);
    exit_cleanly(&mut daemon, Duration::from_secs(30), &log);
}

#[test]
fn reload_applies_rules_and_thresholds_from_the_next_window_and_refuses_bad_configs() {
    let Rig {
        broker, dir, http, ..
    } = Rig::start();
    let base = "[windows]\nkind = \"count\"\nevents = 1000\n[baseline]\nlearn_events = 1000\n";
    let flag_rule = "[[rules]]\nname = \"drift-flag\"\naction = \"notify\"\n\
                     when = { metric = \"dataset_drift\", op = \"==\", value = 1 }\n";
    let write = |extra: &str| daemon_config(dir.path(), &broker.addr, &http, extra);
    let config = write(&format!(
        "[drift]\ndataset_drift_share = 0.9\n{base}{flag_rule}"
    ));
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let minute = Duration::from_secs(60);
    let version = "3.2.0";
    let mut t = T0;
    let mut produce = |scenario, n: u64, seed| {
        broker.produce("logs", None, &events(scenario, n, version, seed, t));
        t += n as i64 * 10;
    };
    produce(Scenario::Stable, 3000, 1);
    // Shifted inputs, but 3 of 8 features drift: under the 0.9 share.
    produce(Scenario::CovariateShift, 1000, 2);
    wait_for(minute, "three windows", || {
        (windows_of(&http, version) == 3).then_some(())
    });
    let metrics = || http_get(&http, "/metrics").unwrap().1;
    let reloads = |outcome: &str| {
        metric(
            &metrics(),
            &format!("driftd_config_reloads_total{{outcome=\"{outcome}\"}}"),
        )
        .unwrap_or(0.0)
    };
    std::thread::sleep(Duration::from_millis(1200));
    assert!(decisions(&http).is_empty());

    // An invalid file: picked up by the watcher, refused, the running config stays.
    write(&format!(
        "{base}[[rules]]\nname = \"x\"\naction = \"notify\"\nwhen = {{ metric = \"drift_shar\", op = \">\", value = 0 }}\n"
    ));
    wait_for(minute, "the invalid reload counted", || {
        (reloads("invalid") >= 1.0).then_some(())
    });
    assert_eq!(
        metric(&metrics(), "driftd_config_last_reload_successful"),
        Some(0.0)
    );
    let (status, body) = http_request(&http, "POST", "/api/v1/reload", Some(API_TOKEN)).unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("unknown metric \\\"drift_shar\\\""), "{body}");
    assert!(body.contains("the running config stays"), "{body}");
    // A change only a restart can make is refused too.
    write(&format!(
        "[drift]\ndataset_drift_share = 0.25\n{}{flag_rule}",
        base.replace("events = 1000", "events = 500")
    ));
    std::thread::sleep(Duration::from_millis(1500));
    let (status, body) = http_request(&http, "POST", "/api/v1/reload", Some(API_TOKEN)).unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("windows: changes only on a restart"),
        "{body}"
    );
    assert_eq!(reloads("applied"), 0.0);

    // A valid file: a lower dataset-drift share and a second rule.
    write(&format!(
        "[drift]\ndataset_drift_share = 0.25\n{base}{flag_rule}[[rules]]\nname = \"share\"\n\
         action = \"notify\"\nwhen = {{ metric = \"drift_share\", op = \">=\", value = 0.25 }}\n"
    ));
    wait_for(minute, "the reload applied", || {
        (reloads("applied") >= 1.0).then_some(())
    });
    // SIGHUP reloads as well.
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &daemon.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    wait_for(minute, "the SIGHUP reload", || {
        (reloads("applied") >= 2.0).then_some(())
    });
    assert_eq!(
        metric(&metrics(), "driftd_config_last_reload_successful"),
        Some(1.0)
    );
    let (status, body) = http_request(&http, "POST", "/api/v1/reload", Some(API_TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"rules\":2"), "{body}");

    // The next window is judged by the new rules and threshold; window
    // state went on (no baseline learned again, indices continue).
    produce(Scenario::CovariateShift, 1000, 3);
    wait_for(minute, "the fourth window's decisions", || {
        (decisions(&http).len() == 2).then_some(())
    });
    let mut ds = decisions(&http);
    ds.sort();
    assert_eq!(ds, ["drift-flag:notify:fired", "share:notify:fired"]);
    assert_eq!(windows_of(&http, version), 4);
    let page = get_json(&http, &format!("/api/v1/models/{MODEL}"));
    assert_eq!(page["versions"][0]["events"], 5000, "{page}");
    promtool_check(&metrics());
    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}

#[test]
fn schedules_send_retrain_and_report_events_on_their_timetable() {
    // No broker needed: schedules run on the wall clock.
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let hook = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("driftd.toml");
    std::fs::write(
        &config,
        format!(
            r#"[kafka]
brokers = "127.0.0.1:{}"
topics = ["logs"]
[http]
listen = "{http}"
[state]
dir = "{}"
[[schedules]]
name = "every-2s"
model = "{MODEL}"
cron = "*/2 * * * * *"
action = "retrain"
[[schedules]]
name = "report-3s"
model = "{MODEL}"
cron = "*/3 * * * * *"
action = "report"
[[targets]]
name = "ci"
url = "http://{hook}/hook"
secret_env = "DRIFTD_TEST_WEBHOOK_SECRET"
"#,
            free_port(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let state = Arc::new(Mutex::new(receiver::State::default()));
    receiver::start(hook, WEBHOOK_SECRET, state.clone());
    let log = dir.path().join("driftd.log");
    let mut daemon = spawn_daemon(&config, &log, &[]);
    let of = |t: &str| {
        state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.event["type"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_for(Duration::from_secs(30), "two retrains and a report", || {
        (of("io.driftd.model.retrain.requested").len() >= 2
            && !of("io.driftd.model.report.scheduled").is_empty())
        .then_some(())
    });
    let retrains = of("io.driftd.model.retrain.requested");
    assert_ne!(retrains[0].id, retrains[1].id);
    for r in &retrains {
        assert!(r.signature_ok);
        assert_eq!(r.event["data"]["rule"], "every-2s");
        // Scheduled on even seconds.
        let end = r.event["data"]["window_end"].as_str().unwrap();
        let secs: u32 = end[17..19].parse().unwrap();
        assert_eq!(secs % 2, 0, "{end}");
    }
    let report = &of("io.driftd.model.report.scheduled")[0];
    assert_eq!(report.event["data"]["report"]["model"], MODEL);
    assert!(report.event["data"]["report"]["latest_windows"].is_array());
    sigterm(&daemon);
    exit_cleanly(&mut daemon, Duration::from_secs(30), &log);
}
