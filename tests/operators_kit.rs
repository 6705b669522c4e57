//! The operators' kit (issue 7), checked with the tools operators use:
//! - `config/prometheus/alerts.yml`: the rules load (`promtool check rules`),
//!   each behaves as its unit tests in `alerts_test.yml` say (`promtool test
//!   rules`), and every driftd metric they name is one driftd exports, so a
//!   renamed metric cannot silently disarm an alert;
//! - `config/grafana/driftd.json`: valid JSON of a Grafana dashboard whose
//!   every query is valid PromQL (promtool) over metrics driftd exports.

use std::collections::BTreeSet;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/prometheus");
const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/grafana/driftd.json");

fn promtool(args: &[&str]) -> String {
    promtool_in(DIR, args)
}

fn promtool_in(dir: &str, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool (Debian package prometheus) is needed for the alert rules: {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_alert_rules_load_and_pass_their_unit_tests() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS: 10 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has at least one test that expects it to fire.
    let rules = std::fs::read_to_string(format!("{DIR}/alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(format!("{DIR}/alerts_test.yml")).unwrap();
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tests.contains(&format!(
                    "alertname: {name}\n        exp_alerts:\n          - "
                )),
                "no test expects {name} to fire"
            );
        }
    }
}

/// The metric names driftd registers: every metric is defined once, with
/// `reg!("name", ...)`, in `src/metrics/mod.rs` (labelled families print
/// nothing before their first series, so a fresh registry's text would not
/// list them).
fn exported() -> BTreeSet<String> {
    let source = include_str!("../src/metrics/mod.rs");
    let mut names = BTreeSet::new();
    for (i, _) in source.match_indices("reg!(") {
        let rest = &source[i..];
        let Some(start) = rest.find('"') else {
            continue;
        };
        let Some(len) = rest[start + 1..].find('"') else {
            continue;
        };
        names.insert(format!("driftd_{}", &rest[start + 1..start + 1 + len]));
    }
    names
}

/// A sample name without the suffix its type adds.
fn family(name: &str) -> &str {
    ["_total", "_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The `driftd_*` names in `text`.
fn named_metrics(text: &str) -> BTreeSet<String> {
    text.match_indices("driftd_")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Names in `named` that driftd does not register.
fn unknown(named: &BTreeSet<String>) -> Vec<String> {
    let exported = exported();
    named
        .iter()
        .filter(|n| !exported.contains(*n) && !exported.contains(family(n)))
        .cloned()
        .collect()
}

#[test]
fn every_metric_the_rules_name_is_exported() {
    let exported = exported();
    assert!(
        exported.contains("driftd_events_consumed") && exported.len() > 40,
        "{exported:?}"
    );
    let rules = std::fs::read_to_string(format!("{DIR}/alerts.yml")).unwrap();
    let named = named_metrics(&rules);
    assert!(named.len() >= 8, "{named:?}");
    let unknown = unknown(&named);
    assert!(
        unknown.is_empty(),
        "alerts.yml names metrics driftd does not export: {unknown:?}"
    );
}

/// Every PromQL expression of the dashboard: panels' targets, the template
/// variable's query and the annotations.
fn dashboard_queries(d: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().unwrap_or_default().to_owned());
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        out.push(a["expr"].as_str().unwrap_or_default().to_owned());
    }
    out
}

#[test]
fn the_dashboard_is_valid_and_queries_what_driftd_exports() {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(d["uid"], "driftd");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        let g = &p["gridPos"];
        let (x, w, h) = (
            g["x"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(w > 0 && h > 0 && x + w <= 24, "{}: gridPos {g}", p["title"]);
        if p["type"] != "row" {
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{} has no query", p["title"]);
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
                assert!(!t["expr"].as_str().unwrap().trim().is_empty());
            }
        }
    }
    let queries = dashboard_queries(&d);
    let all = queries.join("\n");
    // What the issue asks the dashboard to show.
    for metric in [
        "driftd_drift_score",
        "driftd_feature_drift",
        "driftd_caption_quality",
        "driftd_rule_decisions_total",
        "driftd_delivery_attempts_total",
        "driftd_consumer_lag_messages",
        "driftd_learned_classifier_auc",
    ] {
        assert!(all.contains(metric), "no panel shows {metric}");
    }
    let mut named = named_metrics(&all);
    named.extend(named_metrics(
        d["templating"]["list"][1]["definition"].as_str().unwrap(),
    ));
    let unknown = unknown(&named);
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics driftd does not export: {unknown:?}"
    );
    // Every query is valid PromQL: promtool checks them as recording rules,
    // with Grafana's variables given values.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let q = q.replace("$__rate_interval", "5m").replace("$model", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&q).unwrap()
        ));
    }
    std::fs::write(dir.path().join("queries.yml"), rules).unwrap();
    let checked = promtool_in(
        dir.path().to_str().unwrap(),
        &["check", "rules", "queries.yml"],
    );
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{checked}"
    );
}
