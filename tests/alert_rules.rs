//! `config/prometheus/alerts.yml` (issue 7): the rules load (`promtool check
//! rules`), each behaves as its unit tests in `alerts_test.yml` say
//! (`promtool test rules`), and every driftd metric they name is one driftd
//! exports, so a renamed metric cannot silently disarm an alert.

use std::collections::BTreeSet;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/prometheus");

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(DIR)
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

#[test]
fn every_metric_the_rules_name_is_exported() {
    let exported = exported();
    assert!(
        exported.contains("driftd_events_consumed") && exported.len() > 40,
        "{exported:?}"
    );
    let rules = std::fs::read_to_string(format!("{DIR}/alerts.yml")).unwrap();
    let mut named = BTreeSet::new();
    for (i, _) in rules.match_indices("driftd_") {
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        named.insert(name);
    }
    assert!(named.len() >= 8, "{named:?}");
    let unknown: Vec<&String> = named
        .iter()
        .filter(|n| !exported.contains(*n) && !exported.contains(family(n)))
        .collect();
    assert!(
        unknown.is_empty(),
        "alerts.yml names metrics driftd does not export: {unknown:?}"
    );
}
