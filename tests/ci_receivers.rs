//! The receiving side of the training loop (`deploy/ci/`): the GitLab CI
//! pipeline and the GitHub Actions workflow, run on the requests a daemon on
//! a real broker sent to its `gitlab` and `github` targets. A small runner
//! here does what GitLab's and GitHub's do with these files: each job or step
//! in order, in a fresh checkout, with the trigger variables or the
//! `repository_dispatch` payload, the project's secrets, `needs` dotenv
//! artifacts and step outputs, `${{ }}` expressions substituted. The pipelines
//! verify the signature with `driftd_ci.py` and register the candidate back
//! with the daemon; a changed event, a wrong secret or a stale one stops them
//! before anything is registered. Both files are also checked against
//! GitLab's and GitHub's published schemas (check-jsonschema's vendored copies).

mod common;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_yaml::Value as Yaml;
use support::broker::*;
use support::daemon::*;

const MODEL: &str = "alt-text-captioner";
const CI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ci");

fn yaml(path: &str) -> Yaml {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fresh checkout of the model's repository: `ci/driftd_ci.py`, as the
/// set-up notes in the pipeline files say.
fn checkout(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("ci")).unwrap();
    std::fs::copy(
        format!("{CI}/driftd_ci.py"),
        dir.join("ci").join("driftd_ci.py"),
    )
    .unwrap();
    dir
}

fn bash(dir: &Path, script: &str, env: &BTreeMap<String, String>) -> (bool, String) {
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(env)
        .output()
        .unwrap();
    (out.status.success(), common::output_text(&out))
}

fn dotenv(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Run `deploy/ci/gitlab-ci.yml` as GitLab runs a triggered pipeline:
/// stages in order, each job's rules against the variables, its script line
/// by line in a fresh checkout, its `needs`' dotenv reports as variables.
/// Returns the jobs that ran and what the failing one said, if one failed.
fn run_gitlab(
    root: &Path,
    trigger: &BTreeMap<String, String>,
    project: &BTreeMap<String, String>,
    pipeline_id: u32,
) -> (Vec<String>, Option<String>) {
    let ci = yaml(&format!("{CI}/gitlab-ci.yml"));
    let stages: Vec<String> = ci["stages"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let mut base = project.clone();
    base.extend(trigger.clone());
    base.insert("CI_PIPELINE_SOURCE".into(), "trigger".into());
    base.insert("CI_PIPELINE_ID".into(), pipeline_id.to_string());
    base.insert(
        "CI_PIPELINE_URL".into(),
        format!("https://gitlab.example.com/acme/captioner/-/pipelines/{pipeline_id}"),
    );
    let mut reports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut ran = Vec::new();
    for stage in &stages {
        for (name, job) in ci.as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            if name.starts_with('.') || job.get("stage").and_then(Yaml::as_str) != Some(stage) {
                continue;
            }
            // The one rule these jobs share, evaluated as GitLab would.
            let template = &ci[job["extends"].as_str().expect("jobs extend a rule")];
            let rule = template["rules"][0]["if"].as_str().unwrap();
            assert_eq!(
                rule,
                r#"$CI_PIPELINE_SOURCE == "trigger" && $DRIFTD_ACTION == "retrain""#
            );
            if base.get("DRIFTD_ACTION").map(String::as_str) != Some("retrain") {
                continue;
            }
            let dir = checkout(root, &format!("gitlab-{pipeline_id}-{name}"));
            let mut env = base.clone();
            for need in job["needs"].as_sequence().into_iter().flatten() {
                env.extend(
                    reports
                        .get(need.as_str().unwrap())
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            ran.push(name.to_owned());
            for line in job["script"].as_sequence().unwrap() {
                let (ok, text) = bash(&dir, line.as_str().unwrap(), &env);
                if !ok {
                    return (ran, Some(text));
                }
            }
            if let Some(file) = job["artifacts"]["reports"]["dotenv"].as_str() {
                reports.insert(name.to_owned(), dotenv(&dir.join(file)));
            }
        }
    }
    (ran, None)
}

/// `${{ ... }}` of the workflow, from the contexts a run has.
fn substitute(text: &str, ctx: &BTreeMap<String, String>, event: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed expression") + start;
        let expr = rest[start + 3..end].trim();
        let value = if let Some(path) = expr.strip_prefix("github.event.") {
            let v = path.split('.').fold(event, |v, k| &v[k]);
            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
        } else {
            ctx.get(expr)
                .unwrap_or_else(|| panic!("the runner has no value for ${{{{ {expr} }}}}"))
                .clone()
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Run `deploy/ci/github-workflow.yml` as GitHub runs it on a
/// `repository_dispatch`: the `types` filter, then each step of each job in
/// order (`uses:` steps are the checkout and Python set-up the runner has),
/// step outputs through `$GITHUB_OUTPUT`.
fn run_github(
    root: &Path,
    dispatch: &serde_json::Value,
    settings: &BTreeMap<String, String>,
    run_id: u32,
) -> (Vec<String>, Option<String>) {
    let wf = yaml(&format!("{CI}/github-workflow.yml"));
    let types = wf["on"]["repository_dispatch"]["types"]
        .as_sequence()
        .unwrap();
    let event_type = dispatch["event_type"].as_str().unwrap();
    if !types.iter().any(|t| t.as_str() == Some(event_type)) {
        return (Vec::new(), None);
    }
    // The webhook payload GitHub gives the workflow (github.event).
    let event = serde_json::json!({
        "action": event_type,
        "branch": "main",
        "client_payload": dispatch["client_payload"],
    });
    let mut ctx = settings.clone();
    ctx.insert("github.run_id".into(), run_id.to_string());
    ctx.insert("github.server_url".into(), "https://github.com".into());
    ctx.insert("github.repository".into(), "acme/captioner".into());
    let mut ran = Vec::new();
    for (job_name, job) in wf["jobs"].as_mapping().unwrap() {
        let dir = checkout(
            root,
            &format!("github-{run_id}-{}", job_name.as_str().unwrap()),
        );
        let event_path = dir.join("event.json");
        std::fs::write(&event_path, event.to_string()).unwrap();
        for (i, step) in job["steps"].as_sequence().unwrap().iter().enumerate() {
            let Some(run) = step["run"].as_str() else {
                let uses = step["uses"].as_str().unwrap();
                assert!(
                    uses.starts_with("actions/checkout@")
                        || uses.starts_with("actions/setup-python@"),
                    "the runner does not know {uses}"
                );
                continue;
            };
            let id = step["id"]
                .as_str()
                .map_or(format!("step{i}"), str::to_owned);
            let output = dir.join(format!("output-{id}"));
            let mut env = BTreeMap::new();
            env.insert(
                "GITHUB_EVENT_PATH".to_owned(),
                event_path.display().to_string(),
            );
            env.insert("GITHUB_OUTPUT".to_owned(), output.display().to_string());
            for (k, v) in step["env"].as_mapping().into_iter().flatten() {
                let v = v
                    .as_str()
                    .map_or_else(|| serde_yaml::to_string(v).unwrap(), str::to_owned);
                env.insert(k.as_str().unwrap().to_owned(), substitute(&v, &ctx, &event));
            }
            ran.push(id.clone());
            let (ok, text) = bash(&dir, &substitute(run, &ctx, &event), &env);
            if !ok {
                return (ran, Some(text));
            }
            for (k, v) in dotenv(&output) {
                ctx.insert(format!("steps.{id}.outputs.{k}"), v);
            }
        }
    }
    (ran, None)
}

fn candidate(http: &str) -> serde_json::Value {
    get_json(http, &format!("/api/v1/models/{MODEL}"))["rules"]["candidate"].clone()
}

/// The daemon's candidate is `version`, registered by the pipeline at
/// `pipeline` for the decision `event`.
fn registered(http: &str, version: &str, event: &str, pipeline: &str) {
    let c = candidate(http);
    assert_eq!(c["version"], version, "{c}");
    assert_eq!(c["metadata"]["driftd_event"], event);
    assert_eq!(c["metadata"]["pipeline"], pipeline);
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_example_pipelines_verify_the_signed_event_and_register_the_candidate() {
    let py = common::python(&["check_jsonschema"]);
    for (schema, file) in [
        ("vendor.gitlab-ci", "gitlab-ci.yml"),
        ("vendor.github-workflows", "github-workflow.yml"),
    ] {
        let out = Command::new(&py)
            .args(["-m", "check_jsonschema", "--builtin-schema", schema])
            .arg(format!("{CI}/{file}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file} against {schema}: {}",
            common::output_text(&out)
        );
    }

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
[[rules]]
name = "drift"
action = "retrain"
when = {{ metric = "drift_share", op = ">=", value = 0.25 }}
[[targets]]
name = "gitlab"
kind = "gitlab"
url = "http://{hook}"
project = "42"
ref = "main"
token_env = "DRIFTD_TEST_GITLAB_TOKEN"
secret_env = "DRIFTD_TEST_WEBHOOK_SECRET"
min_backoff = "100ms"
[[targets]]
name = "github"
kind = "github"
url = "http://{hook}"
repository = "acme/captioner"
token_env = "DRIFTD_TEST_GITHUB_TOKEN"
secret_env = "DRIFTD_TEST_WEBHOOK_SECRET"
min_backoff = "100ms"
"#
        ),
    );
    let state = Arc::new(Mutex::new(receiver::State::default()));
    receiver::start(hook, WEBHOOK_SECRET, state.clone());
    let log = dir.path().join("driftd.log");
    let env = [
        ("DRIFTD_TEST_GITLAB_TOKEN", "glptt-test-trigger"),
        ("DRIFTD_TEST_GITHUB_TOKEN", "ghp_test_token"),
    ];
    let mut daemon = spawn_daemon_env(&config, &log, &[], &env);
    broker.produce(
        "logs",
        None,
        &generated(
            driftd::source::generate::Scenario::CovariateShift,
            6000,
            MODEL,
            3,
        ),
    );
    let minute = Duration::from_secs(60);
    let (gitlab, github) = wait_for(minute, "both targets' requests", || {
        let s = state.lock().unwrap();
        let gl = s.requests.iter().find(|r| r.path.starts_with("/api/v4/"))?;
        let gh = s.requests.iter().find(|r| r.path.starts_with("/repos/"))?;
        Some((gl.clone(), gh.clone()))
    });
    let decision = get_json(&http, "/api/v1/decisions?limit=100")
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["decision"]["outcome"] == "fired")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(candidate(&http).is_null());

    // What GitLab hands the pipeline: the trigger's variables[...].
    let form: BTreeMap<String, String> = form_urlencoded::parse(&gitlab.body)
        .into_owned()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("variables[")?.strip_suffix(']')?.to_owned(),
                v,
            ))
        })
        .collect();
    assert_eq!(form["DRIFTD_WEBHOOK_ID"], decision);
    let project = vars(&[
        ("DRIFTD_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("DRIFTD_API_TOKEN", API_TOKEN),
        ("DRIFTD_URL", &format!("http://{http}")),
    ]);
    let work = dir.path().join("ci");

    // A changed event, a wrong secret, a stale signature: the pipeline stops
    // at verification and nothing is registered.
    let mut forged = form.clone();
    forged.insert(
        "DRIFTD_EVENT".into(),
        form["DRIFTD_EVENT"].replace("\"retrain\"", "\"redeploy\""),
    );
    let mut wrong_secret = project.clone();
    wrong_secret.insert(
        "DRIFTD_WEBHOOK_SECRET".into(),
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
    );
    let mut stale = project.clone();
    stale.insert("DRIFTD_SIGNATURE_TOLERANCE".into(), "-1".into());
    for (trigger, settings, why) in [
        (&forged, &project, "no signature matches"),
        (&form, &wrong_secret, "no signature matches"),
        (&form, &stale, "beyond the -1 s tolerance"),
    ] {
        let (ran, failed) = run_gitlab(&work, trigger, settings, 100);
        assert_eq!(ran, ["driftd-verify"]);
        let failed = failed.expect("verification fails");
        assert!(failed.contains(why), "{failed}");
    }
    assert!(candidate(&http).is_null(), "nothing registered");

    // The event as sent: verified, trained, registered.
    let (ran, failed) = run_gitlab(&work, &form, &project, 101);
    assert_eq!(failed, None);
    assert_eq!(ran, ["driftd-verify", "train", "driftd-register"]);
    registered(
        &http,
        "3.2.0-retrain-101",
        &decision,
        "https://gitlab.example.com/acme/captioner/-/pipelines/101",
    );

    // GitHub: the repository_dispatch body as sent.
    let dispatch: serde_json::Value = serde_json::from_slice(&github.body).unwrap();
    assert!(dispatch["client_payload"].as_object().unwrap().len() <= 10);
    let settings = vars(&[
        ("secrets.DRIFTD_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("secrets.DRIFTD_API_TOKEN", API_TOKEN),
        ("vars.DRIFTD_URL", &format!("http://{http}")),
    ]);
    let mut forged = dispatch.clone();
    let event = forged["client_payload"]["event"]
        .as_str()
        .unwrap()
        .to_owned();
    forged["client_payload"]["event"] = event.replace(MODEL, "other-model").into();
    let (ran, failed) = run_github(&work, &forged, &settings, 200);
    assert_eq!(ran, ["verify"]);
    assert!(failed.unwrap().contains("no signature matches"));
    let (ran, failed) = run_github(&work, &dispatch, &settings, 201);
    assert_eq!(failed, None);
    assert_eq!(ran, ["verify", "train", "step4"]);
    registered(
        &http,
        "3.2.0-retrain-201",
        &decision,
        "https://github.com/acme/captioner/actions/runs/201",
    );

    sigterm(&daemon);
    exit_cleanly(&mut daemon, minute, &log);
}
