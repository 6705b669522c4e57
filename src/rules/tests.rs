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

/// The problems `toml` is refused for, checked to include each of `needles`.
fn refused(toml: &str, needles: &[&str]) -> crate::config::ConfigError {
    let err = Config::from_toml(toml, "t", &|_| None).unwrap_err();
    let text = err.to_string();
    for needle in needles {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    err
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
    let err = refused(
        toml,
        &[
            "rules[0].when.metric: unknown metric \"drift_shar\"",
            "rules[1].name: \"a\" names another rule too",
            "rules[1].action: must be one of retrain, redeploy, rollback, notify, got \"explode\"",
            "rules[1].when.all[0].metric: unknown feature statistic \"kss\"",
            "rules[1].when.all[1].op: unknown operator \"=>\"",
            "rules[2].when: feature \"contrast\" is not monitored for model \"cap\"",
            "rules[2].cooldown: must be a duration",
            "rules[2].for_windows: must be at least 1",
        ],
    );
    assert_eq!(err.problems.len(), 8, "{err}");
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

/// A window of `version` with a CLIPScore mean and an error rate.
fn versioned(base: &WindowReport, version: &str, i: u64, clip: f64, errors: f64) -> WindowReport {
    let mut r = window(base, i, 0.0, 1000);
    r.model_version = version.into();
    r.captions.clip_score_mean = Some(clip);
    r.signals.error_rate = errors;
    r
}

const LOOP: &str = r#"
    [promotion]
    windows = 2
    min_samples = 500
    compare = [ { metric = "quality.clip_score_mean", better = "higher", margin = 0.01 },
                { metric = "signals.error_rate", better = "lower", margin = -0.005 } ]
    [rollback]
    windows = 2
    min_samples = 500
    compare = [ { metric = "signals.error_rate", better = "lower", margin = 0.02 } ]
"#;

/// CI registers `version` as the captioner's candidate (no metadata).
fn register(d: &mut Decider, version: &str) {
    d.register_candidate(
        "alt-text-captioner",
        version,
        "t".into(),
        serde_json::Value::Null,
    )
    .unwrap();
}

fn kinds(ds: &[Decision]) -> Vec<String> {
    ds.iter()
        .map(|d| format!("{}:{}:{}", d.rule, d.action.as_str(), d.outcome.describe()))
        .collect()
}

#[test]
fn a_better_candidate_is_redeployed_and_a_worse_version_rolled_back() {
    let c = rules(LOOP);
    let mut d = Decider::new(c.rules, c.actions);
    let base = report();
    // v1 is the incumbent: the first version whose window closed.
    for i in 0..3 {
        assert!(d.decide(&versioned(&base, "v1", i, 0.70, 0.01)).is_empty());
    }
    assert_eq!(
        d.lifecycle("alt-text-captioner")
            .unwrap()
            .incumbent
            .as_deref(),
        Some("v1")
    );
    let reg = d.register_candidate(
        "alt-text-captioner",
        "v2",
        "t".into(),
        serde_json::json!({"uri": "models:/cap/2"}),
    );
    assert_eq!(reg, Ok(Registered::Created));
    // Registering the same version again changes nothing; the incumbent cannot be a candidate.
    assert_eq!(
        d.register_candidate(
            "alt-text-captioner",
            "v2",
            "t".into(),
            serde_json::Value::Null
        ),
        Ok(Registered::Unchanged)
    );
    assert!(d
        .register_candidate(
            "alt-text-captioner",
            "v1",
            "t".into(),
            serde_json::Value::Null
        )
        .is_err());
    // A small window of the candidate does not count; one judged window is not enough.
    let mut small = versioned(&base, "v2", 3, 0.9, 0.0);
    small.signals.events = 10;
    assert!(d.decide(&small).is_empty());
    assert!(d.decide(&versioned(&base, "v2", 3, 0.74, 0.012)).is_empty());
    let ds = d.decide(&versioned(&base, "v2", 4, 0.76, 0.012));
    assert_eq!(kinds(&ds), ["promotion:redeploy:fired"]);
    let v = ds[0].versions.as_ref().unwrap();
    assert_eq!(
        (
            v.incumbent.as_str(),
            v.candidate.as_deref(),
            v.deploy.as_deref()
        ),
        ("v1", Some("v2"), Some("v2"))
    );
    // Candidate mean 0.75 against the incumbent's last two windows (0.70) + 0.01.
    assert_eq!(ds[0].evidence[0].value, Some(0.75));
    assert!((ds[0].evidence[0].threshold - 0.71).abs() < 1e-12);
    assert!(
        ds[0].reason.contains("beat incumbent v1 over 2 windows"),
        "{}",
        ds[0].reason
    );
    let l = d.lifecycle("alt-text-captioner").unwrap();
    assert_eq!(
        (l.incumbent.as_deref(), l.previous.as_deref()),
        (Some("v2"), Some("v1"))
    );
    assert!(l.candidate.is_none());
    assert_eq!(l.probation_windows(), Some(0));
    // On probation, v2's error rate rises past v1's (0.01) + 0.02: rolled back to v1.
    assert!(d.decide(&versioned(&base, "v2", 5, 0.75, 0.05)).is_empty());
    let ds = d.decide(&versioned(&base, "v2", 6, 0.75, 0.04));
    assert_eq!(kinds(&ds), ["rollback:rollback:fired"]);
    assert_eq!(
        ds[0].versions.as_ref().unwrap().deploy.as_deref(),
        Some("v1")
    );
    let l = d.lifecycle("alt-text-captioner").unwrap();
    assert_eq!(
        (l.incumbent.as_deref(), l.previous.as_deref()),
        (Some("v1"), Some("v2"))
    );
    assert_eq!(l.probation_windows(), None);
}

#[test]
fn a_worse_candidate_is_rejected_and_a_good_probation_ends_quietly() {
    let c = rules(LOOP);
    let mut d = Decider::new(c.rules.clone(), c.actions.clone());
    let base = report();
    for i in 0..2 {
        d.decide(&versioned(&base, "v1", i, 0.70, 0.01));
    }
    register(&mut d, "v2");
    // Better CLIPScore, but its error rate is over v1's + 0.005.
    d.decide(&versioned(&base, "v2", 2, 0.80, 0.02));
    let ds = d.decide(&versioned(&base, "v2", 3, 0.80, 0.02));
    assert_eq!(kinds(&ds), ["promotion:candidate_rejected:fired"]);
    assert!(
        ds[0].reason.contains("signals.error_rate"),
        "{}",
        ds[0].reason
    );
    assert!(!ds[0].evidence[1].holds && ds[0].evidence[0].holds);
    let l = d.lifecycle("alt-text-captioner").unwrap();
    assert_eq!(l.incumbent.as_deref(), Some("v1"));
    assert!(l.candidate.is_none());
    // Rejected: later v2 windows are nobody's business.
    assert!(d.decide(&versioned(&base, "v2", 4, 0.9, 0.0)).is_empty());

    // A winner whose first windows are fine leaves probation without a decision,
    // and the state survives a checkpoint round trip.
    register(&mut d, "v3");
    d.decide(&versioned(&base, "v3", 5, 0.75, 0.01));
    let mut restored = Decider::new(c.rules.clone(), c.actions.clone());
    restored.restore(serde_json::from_str(&serde_json::to_string(&d.state()).unwrap()).unwrap());
    assert_eq!(restored.state(), d.state());
    let mut d = restored;
    assert_eq!(
        kinds(&d.decide(&versioned(&base, "v3", 6, 0.75, 0.01))),
        ["promotion:redeploy:fired"]
    );
    assert!(d.decide(&versioned(&base, "v3", 7, 0.75, 0.015)).is_empty());
    assert!(d.decide(&versioned(&base, "v3", 8, 0.75, 0.015)).is_empty());
    assert_eq!(
        d.lifecycle("alt-text-captioner")
            .unwrap()
            .probation_windows(),
        None
    );
    assert!(d.decide(&versioned(&base, "v3", 9, 0.75, 0.9)).is_empty());
}

#[test]
fn rules_do_not_judge_a_candidates_shadow_traffic_and_the_kill_switch_holds_the_loop() {
    let c = rules(&format!(
        r#"
        [actions]
        kill_switch = true
        [[rules]]
        name = "drift"
        action = "retrain"
        when = {{ metric = "drift_share", op = ">=", value = 0.5 }}
        {LOOP}
    "#
    ));
    let mut d = Decider::new(c.rules, c.actions);
    let base = report();
    let mut w = versioned(&base, "v1", 0, 0.7, 0.01);
    w.drift.dataset.share = 0.9;
    assert_eq!(
        kinds(&d.decide(&w)),
        ["drift:retrain:suppressed: kill_switch"]
    );
    d.decide(&versioned(&base, "v1", 1, 0.7, 0.01));
    register(&mut d, "v2");
    let mut shadow = versioned(&base, "v2", 2, 0.8, 0.0);
    shadow.drift.dataset.share = 0.9;
    assert!(
        d.decide(&shadow).is_empty(),
        "the candidate's drift is not the incumbent's"
    );
    // The verdict is reached but held: the candidate stays, and is judged again.
    let ds = d.decide(&versioned(&base, "v2", 3, 0.8, 0.0));
    assert_eq!(kinds(&ds), ["promotion:redeploy:suppressed: kill_switch"]);
    assert_eq!(
        d.lifecycle("alt-text-captioner")
            .unwrap()
            .incumbent
            .as_deref(),
        Some("v1")
    );
    assert!(d
        .lifecycle("alt-text-captioner")
        .unwrap()
        .candidate
        .is_some());
    let ds = d.decide(&versioned(&base, "v2", 4, 0.8, 0.0));
    assert_eq!(kinds(&ds), ["promotion:redeploy:suppressed: kill_switch"]);
}

#[test]
fn loop_config_errors_are_listed() {
    refused(
        r#"
        [promotion]
        windows = 0
        compare = [ { metric = "quality.clip", better = "up" } ]
        [rollback]
        compare = []
        [[rules]]
        name = "x"
        action = "candidate_rejected"
        when = { metric = "events", op = ">", value = 1 }
        [[rules]]
        name = "promotion"
        action = "notify"
        when = { metric = "events", op = ">", value = 1 }
    "#,
        &[
            "promotion.windows: must be at least 1",
            "promotion.compare[0].metric: unknown metric \"quality.clip\"",
            "promotion.compare[0].better: must be higher or lower, got \"up\"",
            "rollback.compare: must list at least one",
            "rules[0].action: must be one of retrain, redeploy, rollback, notify",
            "rules[1].name: \"promotion\" is the training loop's own decision name",
        ],
    );
}

#[test]
fn schedules_fire_once_per_due_time_and_missed_runs_collapse() {
    let c = rules(
        r#"
        [[schedules]]
        name = "nightly"
        model = "alt-text-captioner"
        cron = "0 0 3 * * *"
        action = "retrain"
        [[schedules]]
        name = "hourly-report"
        model = "alt-text-captioner"
        cron = "0 0 * * * *"
        action = "report"
    "#,
    );
    let mut d = Decider::new(c.rules.clone(), c.actions.clone());
    let h = 3_600_000;
    // 2026-11-24T00:30:00Z: first sight starts the clocks, nothing due.
    let t0 = T0_MS + h / 2;
    let (due, changed) = d.due_schedules(&c.schedules, t0);
    assert!(due.is_empty() && changed);
    assert!(d.due_schedules(&c.schedules, t0 + 1000).0.is_empty());
    // 01:00:00: the hourly report, at exactly its time.
    let (due, _) = d.due_schedules(&c.schedules, T0_MS + h);
    let names: Vec<(&str, i64)> = due.iter().map(|(s, t)| (s.name.as_str(), *t)).collect();
    assert_eq!(names, [("hourly-report", T0_MS + h)]);
    assert!(d.due_schedules(&c.schedules, T0_MS + h + 500).0.is_empty());
    // Stopped from 01:00 to 05:10: one nightly (03:00) and one report (05:00).
    let (due, _) = d.due_schedules(&c.schedules, T0_MS + 5 * h + 600_000);
    let names: Vec<(&str, i64)> = due.iter().map(|(s, t)| (s.name.as_str(), *t)).collect();
    assert_eq!(
        names,
        [("nightly", T0_MS + 3 * h), ("hourly-report", T0_MS + 5 * h)]
    );
    // A retrain with no events of the model is not in flight; the next one
    // (with events) is, until a candidate lands.
    let s = &c.schedules[0];
    let first = d.scheduled_decision(s, T0_MS + 3 * h, Some(T0_MS), None);
    assert_eq!(first.outcome, Outcome::Fired);
    assert_eq!(first.action, Action::Retrain);
    assert!(first.reason.contains("nightly (0 0 3 * * *)"));
    let second = d.scheduled_decision(s, T0_MS + 27 * h, Some(T0_MS + h), None);
    assert_eq!(
        second.outcome,
        Outcome::Suppressed(Suppression::RetrainInFlight)
    );
    register(&mut d, "v9");
    let third = d.scheduled_decision(s, T0_MS + 51 * h, Some(T0_MS + 2 * h), None);
    assert_eq!(third.outcome, Outcome::Fired);
    // The state survives a checkpoint; a schedule removed from the config is forgotten.
    let mut restored = Decider::new(c.rules.clone(), c.actions.clone());
    restored.restore(serde_json::from_str(&serde_json::to_string(&d.state()).unwrap()).unwrap());
    assert_eq!(restored.state(), d.state());
    assert!(restored
        .due_schedules(&c.schedules[1..], T0_MS + 5 * h + 700_000)
        .0
        .is_empty());
    assert!(serde_json::to_string(&restored.state())
        .unwrap()
        .contains("hourly-report"));
    assert!(!serde_json::to_string(&restored.state())
        .unwrap()
        .contains("nightly"));
}

/// 2026-11-24T00:00:00Z.
const T0_MS: i64 = 1_795_478_400_000;

#[test]
fn schedule_config_errors_are_listed() {
    refused(
        r#"
        [[rules]]
        name = "dup"
        action = "notify"
        when = { metric = "events", op = ">", value = 1 }
        [[schedules]]
        name = "dup"
        model = "m"
        cron = "0 0 3 * *"
        action = "retrain"
        [[schedules]]
        name = "b"
        model = "m"
        cron = "0 61 3 * * *"
        action = "redeploy"
        [[rules]]
        name = "r"
        action = "report"
        when = { metric = "events", op = ">", value = 1 }
    "#,
        &[
        "schedules[0].name: must be a non-empty name no other schedule or rule has, got \"dup\"",
        "schedules[0].cron: must have 6 or 7 fields",
        "schedules[1].cron: invalid cron expression \"0 61 3 * * *\"",
        "schedules[1].action: must be retrain or report, got \"redeploy\"",
        "rules[1].action: must be one of retrain, redeploy, rollback, notify, got \"report\"",
        ],
    );
}

#[test]
fn a_candidate_registered_before_any_window_is_not_taken_for_the_incumbent() {
    // Promotion only: a redeployed version is not put on probation.
    let c = rules(
        r#"
        [promotion]
        windows = 1
        compare = [ { metric = "quality.clip_score_mean", better = "higher" } ]
    "#,
    );
    let mut d = Decider::new(c.rules, c.actions);
    let base = report();
    register(&mut d, "v2");
    // The candidate's shadow window closes first: v2 stays the candidate.
    assert!(d.decide(&versioned(&base, "v2", 0, 0.8, 0.0)).is_empty());
    let l = d.lifecycle("alt-text-captioner").unwrap();
    assert_eq!(l.incumbent, None);
    assert_eq!(l.candidate.as_ref().unwrap().version, "v2");
    // v1's window makes it the incumbent; v2's next window wins against it.
    assert!(d.decide(&versioned(&base, "v1", 1, 0.7, 0.0)).is_empty());
    let ds = d.decide(&versioned(&base, "v2", 2, 0.8, 0.0));
    assert_eq!(kinds(&ds), ["promotion:redeploy:fired"]);
    let l = d.lifecycle("alt-text-captioner").unwrap();
    assert_eq!(l.incumbent.as_deref(), Some("v2"));
    assert_eq!(l.probation_windows(), None, "no [rollback], no probation");
}

#[test]
fn data_quality_metrics_read_the_window_and_each_feature() {
    let mut r = report();
    let name = |m: &str| Metric::parse(m).unwrap();
    // A stable window: every feature present, nothing flagged.
    assert_eq!(name("data_quality.issues").value(&r), Some(0.0));
    assert_eq!(name("feature.source.unseen_share").value(&r), Some(0.0));
    assert_eq!(name("feature.brightness.unseen_share").value(&r), None);
    assert!(name("feature.brightness.out_of_range_share")
        .value(&r)
        .is_some_and(|v| v < 0.01));
    assert_eq!(name("feature.nope.missing_rate").value(&r), None);
    // Quality metrics never read drift verdicts (`min_samples` does not
    // withhold them).
    let c = Condition::Compare {
        metric: name("feature.source.absent"),
        op: Op::Gt,
        value: 0.0,
    };
    assert!(!c.reads_drift());
    let source = r
        .data_quality
        .features
        .iter_mut()
        .find(|f| f.name == "source")
        .unwrap();
    source.unseen_share = Some(0.3);
    source.flagged = vec![crate::monitor::data_quality::Check::UnseenCategories];
    r.data_quality.issues = 1;
    assert_eq!(name("data_quality.unseen_share_max").value(&r), Some(0.3));
    assert_eq!(
        name("feature.source.data_quality_issues").value(&r),
        Some(1.0)
    );
    assert_eq!(name("data_quality.issues").name(), "data_quality.issues");
    assert_eq!(
        name("feature.source.unseen_share").name(),
        "feature.source.unseen_share"
    );
    let err = Metric::parse("feature.source.unseen").unwrap_err();
    assert!(err.contains("unseen_share") && err.contains("psi"), "{err}");
}
