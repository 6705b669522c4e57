use super::*;
use crate::config::Config;
use crate::monitor::engine::Engine;
use crate::quality::Vocabulary;
use crate::source::generate::{generate, GenerateSpec, Scenario};

/// A real window report (the engine's), to vary.
fn report() -> WindowReport {
    let mut spec = GenerateSpec::new(Scenario::Stable, 12_000);
    spec.seed = 3;
    let mut out = Vec::new();
    generate(&spec, &mut out).unwrap();
    let mut e = Engine::new(Config::default(), Vocabulary::english(), Default::default());
    let mut reports = Vec::new();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        reports.extend(e.process(line).unwrap());
    }
    reports.extend(e.finish());
    reports.into_iter().next().expect("a window")
}

/// The report as window `i`, ending i hours after the epoch hour, with
/// `share` as its drift share and `events` events.
fn window(base: &WindowReport, i: u64, share: f64, events: u64) -> WindowReport {
    let mut r = base.clone();
    r.window.index = i;
    r.window.end = format!("2026-11-24T{:02}:00:00Z", i);
    r.drift.dataset.share = share;
    r.signals.events = events;
    r
}

fn rules(toml: &str) -> Config {
    Config::from_toml(toml, "t", &|_| None).unwrap()
}

fn outcomes(d: &mut Decider, windows: &[WindowReport]) -> Vec<String> {
    windows
        .iter()
        .map(|w| {
            let ds = d.decide(w);
            assert!(ds.len() <= 1);
            ds.first().map_or("-".into(), |d| d.outcome.describe())
        })
        .collect()
}

#[test]
fn config_errors_are_listed_together() {
    let toml = r#"
        [models.cap]
        include_unlisted_features = false
        [models.cap.features.brightness]
        kind = "numeric"

        [[rules]]
        name = "a"
        action = "retrain"
        when = { metric = "drift_shar", op = ">", value = 0.3 }

        [[rules]]
        name = "a"
        action = "explode"
        when = { all = [ { metric = "feature.brightness.kss", op = ">", value = 1 }, { metric = "events", op = "=>", value = 1 } ] }

        [[rules]]
        name = "c"
        model = "cap"
        action = "notify"
        when = { any = [ { metric = "feature.contrast.psi", op = ">", value = 0.2 }, { metric = "feature.brightness.psi", op = ">", value = 0.2 } ] }
        cooldown = "soon"
        for_windows = 0
    "#;
    let err = Config::from_toml(toml, "t", &|_| None).unwrap_err();
    let text = err.to_string();
    for needle in [
        "rules[0].when.metric: unknown metric \"drift_shar\"",
        "rules[1].name: \"a\" names another rule too",
        "rules[1].action: must be one of retrain, redeploy, rollback, notify, got \"explode\"",
        "rules[1].when.all[0].metric: unknown feature statistic \"kss\"",
        "rules[1].when.all[1].op: unknown operator \"=>\"",
        "rules[2].when: feature \"contrast\" is not monitored for model \"cap\"",
        "rules[2].cooldown: must be a duration",
        "rules[2].for_windows: must be at least 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(err.problems.len(), 8, "{text}");
}

#[test]
fn guardrails_consecutive_rearm_and_cooldown() {
    let c = rules(
        r#"
        [[rules]]
        name = "drift"
        action = "notify"
        when = { metric = "drift_share", op = ">=", value = 0.5 }
        for_windows = 2
        rearm = { metric = "drift_share", op = "<", value = 0.2 }
        cooldown = "8h"
        min_samples = 100
    "#,
    );
    let mut d = Decider::new(c.rules, c.actions);
    let base = report();
    let shares = [
        0.6, 0.1, 0.6, 0.7, 0.8, 0.3, 0.6, 0.6, 0.1, 0.6, 0.6, 0.6, 0.6,
    ];
    let mut ws: Vec<WindowReport> = shares
        .iter()
        .enumerate()
        .map(|(i, &s)| window(&base, i as u64, s, 1000))
        .collect();
    ws[12].signals.events = 50;
    assert_eq!(
        outcomes(&mut d, &ws),
        [
            "suppressed: pending",     // 00:00 first breach of a run of 2
            "-",                       // 01:00 below: the run is broken
            "suppressed: pending",     // 02:00
            "fired",                   // 03:00 second breach in a row
            "suppressed: not_rearmed", // 04:00
            "-",                       // 05:00 0.3 is not below the re-arm level
            "suppressed: pending",     // 06:00 a new run starts
            "suppressed: not_rearmed", // 07:00 run complete, still not re-armed
            "-",                       // 08:00 0.1 re-arms
            "suppressed: pending",     // 09:00
            "suppressed: cooldown",    // 10:00 within 8 h of 03:00
            "fired",                   // 11:00 cooldown over
            "suppressed: min_samples", // 12:00 50 events < 100
        ][..]
    );
    assert_eq!(d.counts.get("fired"), Some(&2));
    assert_eq!(d.counts.get("suppressed: pending"), Some(&4));
}

#[test]
fn daily_limit_in_flight_kill_switch_and_dry_run() {
    let toml = |extra: &str| {
        format!(
            r#"
            {extra}
            [[rules]]
            name = "often"
            action = "notify"
            when = {{ metric = "drift_share", op = ">", value = 0.5 }}
            max_per_day = 2
            rearm = {{ metric = "drift_share", op = ">", value = 0.0 }}

            [[rules]]
            name = "retrain"
            action = "retrain"
            when = {{ metric = "drift_share", op = ">", value = 0.5 }}
            rearm = {{ metric = "drift_share", op = ">", value = 0.0 }}
        "#
        )
    };
    let base = report();
    let ws: Vec<WindowReport> = (0..4).map(|i| window(&base, i, 0.9, 1000)).collect();
    let run = |extra: &str, landed_after: Option<usize>| {
        let c = rules(&toml(extra));
        let mut d = Decider::new(c.rules, c.actions);
        let mut out = Vec::new();
        for (i, w) in ws.iter().enumerate() {
            for dec in d.decide(w) {
                out.push(format!("{} {}", dec.rule, dec.outcome.describe()));
            }
            if landed_after == Some(i) {
                d.retrain_landed(&w.model);
            }
        }
        out
    };
    // The re-arm condition always holds here, so only the other guards act.
    assert_eq!(
        run("[actions]\nretrain_timeout = \"2h\"", None),
        [
            "often fired",
            "retrain fired",
            "often fired",
            "retrain suppressed: retrain_in_flight",
            "often suppressed: daily_limit",
            "retrain fired", // 02:00: the first retrain timed out after 2 h
            "often suppressed: daily_limit",
            "retrain suppressed: retrain_in_flight",
        ]
    );
    // A registered candidate ends the retrain in flight.
    let landed = run("", Some(0));
    assert_eq!(landed[3], "retrain fired", "{landed:?}");
    let killed = run("[actions]\nkill_switch = true", None);
    assert!(
        killed
            .iter()
            .all(|o| o.ends_with("suppressed: kill_switch")),
        "{killed:?}"
    );
    let dry = run("[actions]\ndry_run = true", None);
    assert_eq!(&dry[..2], ["often dry_run", "retrain dry_run"]);
}

#[test]
fn evidence_names_every_comparison_and_missing_data_never_breaches() {
    let c = rules(
        r#"
        [[rules]]
        name = "any"
        action = "notify"
        when = { any = [
            { metric = "quality.clip_score_mean", op = "<", value = 0.3 },
            { all = [ { metric = "feature.brightness.psi", op = ">=", value = 0.0 }, { metric = "signals.error_rate", op = "<=", value = 1 } ] },
        ] }
    "#,
    );
    let mut d = Decider::new(c.rules, c.actions);
    let base = report();
    let ds = d.decide(&window(&base, 0, 0.0, 1000));
    assert_eq!(ds.len(), 1);
    let ev = &ds[0].evidence;
    let names: Vec<&str> = ev.iter().map(|e| e.metric.as_str()).collect();
    assert_eq!(
        names,
        [
            "quality.clip_score_mean",
            "feature.brightness.psi",
            "signals.error_rate"
        ]
    );
    // No embeddings in the generated events: no CLIPScore, and no breach from it.
    assert_eq!((ev[0].value, ev[0].holds), (None, false));
    let psi = base
        .drift
        .features
        .iter()
        .find(|f| f.name == "brightness")
        .unwrap();
    let Tests::Numeric(t) = &psi.tests else {
        panic!("numeric")
    };
    assert_eq!(ev[1].value, Some(t.psi.value));
    assert!(ev[1].holds && ev[2].holds);
    // A feature the window does not have is no data either.
    let c = rules(
        r#"
        [[rules]]
        name = "ghost"
        action = "notify"
        when = { metric = "feature.ghost.score", op = ">=", value = 0 }
    "#,
    );
    assert!(Decider::new(c.rules, c.actions).decide(&base).is_empty());
}

#[test]
fn state_round_trips_and_reload_keeps_surviving_rules() {
    let c = rules(
        r#"
        [[rules]]
        name = "r"
        action = "notify"
        when = { metric = "drift_share", op = ">", value = 0.5 }
        for_windows = 3
    "#,
    );
    let base = report();
    let mut d = Decider::new(c.rules.clone(), c.actions.clone());
    d.decide(&window(&base, 0, 0.9, 1000));
    d.decide(&window(&base, 1, 0.9, 1000));
    let saved = serde_json::to_string(&d.state()).unwrap();
    let mut restored = Decider::new(c.rules.clone(), c.actions.clone());
    restored.restore(serde_json::from_str(&saved).unwrap());
    let a = d.decide(&window(&base, 2, 0.9, 1000));
    let b = restored.decide(&window(&base, 2, 0.9, 1000));
    assert_eq!(a, b);
    assert_eq!(a[0].outcome, Outcome::Fired);
    // A reload that keeps the rule keeps its state; one that drops it, drops it.
    d.reconfigure(c.rules.clone(), c.actions.clone());
    assert_eq!(d.decide(&window(&base, 3, 0.9, 1000))[0].consecutive, 4);
    d.reconfigure(Vec::new(), c.actions.clone());
    d.reconfigure(c.rules, c.actions);
    assert_eq!(d.decide(&window(&base, 4, 0.9, 1000))[0].consecutive, 1);
}
