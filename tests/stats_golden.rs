//! Drift statistics against scipy golden values (issue 2).
//! Regenerate with `python3 tests/fixtures/stats/generate.py` (from that directory).

use driftd::stats::{self, kolmogorov};
use serde_json::Value;

fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stats/golden.json"
    ))
    .expect("golden.json present");
    serde_json::from_str(&text).expect("golden.json parses")
}

/// Relative tolerance of the issue: 1e-9, with an absolute floor for values
/// that are exactly zero in one implementation and 1e-300 in the other.
fn close(got: f64, want: f64) -> bool {
    if got == want {
        return true;
    }
    let scale = want.abs().max(got.abs());
    (got - want).abs() <= 1e-9 * scale || (got - want).abs() < 1e-300
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("missing {path}"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn numeric_tests_match_scipy() {
    let g = golden();
    let mut failures = Vec::new();
    for case in g["numeric"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut r = floats(&case["reference"]);
        let mut c = floats(&case["current"]);
        r.sort_by(f64::total_cmp);
        c.sort_by(f64::total_cmp);
        let got = stats::numeric_tests_exact(&r, &c);
        let e = &case["expected"];
        let checks = [
            ("ks.statistic", got.ks.statistic, f(e, "/ks/statistic")),
            ("ks.p_value", got.ks.p_value, f(e, "/ks/p_value")),
            (
                "wasserstein.distance",
                got.wasserstein.distance,
                f(e, "/wasserstein/distance"),
            ),
            (
                "wasserstein.normalized",
                got.wasserstein.normalized,
                f(e, "/wasserstein/normalized"),
            ),
            ("psi", got.psi.value, f(e, "/psi/value")),
            (
                "jensen_shannon",
                got.jensen_shannon.distance,
                f(e, "/jensen_shannon/distance"),
            ),
        ];
        for (what, got, want) in checks {
            if !close(got, want) {
                failures.push(format!("{name}: {what} got {got:e} want {want:e}"));
            }
        }
        let edges = stats::binned::decile_edges(&r);
        if edges != floats(&e["edges"]) {
            failures.push(format!("{name}: edges {edges:?} != {:?}", e["edges"]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn categorical_tests_match_scipy() {
    let g = golden();
    let mut failures = Vec::new();
    for case in g["categorical"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ints = |v: &Value| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect::<Vec<_>>()
        };
        let got = stats::categorical_tests(&ints(&case["reference"]), &ints(&case["current"]));
        let e = &case["expected"];
        let checks = [
            (
                "chi_square.statistic",
                got.chi_square.statistic,
                f(e, "/chi_square/statistic"),
            ),
            (
                "chi_square.p_value",
                got.chi_square.p_value,
                f(e, "/chi_square/p_value"),
            ),
            (
                "chi_square.dof",
                got.chi_square.dof as f64,
                f(e, "/chi_square/dof"),
            ),
            ("psi", got.psi.value, f(e, "/psi/value")),
            (
                "jensen_shannon",
                got.jensen_shannon.distance,
                f(e, "/jensen_shannon/distance"),
            ),
        ];
        for (what, got, want) in checks {
            if !close(got, want) {
                failures.push(format!("{name}: {what} got {got:e} want {want:e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn kolmogorov_sf_matches_scipy_kstwo() {
    let g = golden();
    let mut failures = Vec::new();
    for case in g["kstwo_sf"].as_array().unwrap() {
        let (n, x, want) = (case["n"].as_u64().unwrap(), f(case, "/x"), f(case, "/sf"));
        let got = kolmogorov::kolmogorov_sf(n, x);
        if !close(got, want) {
            failures.push(format!("kstwo.sf(x={x}, n={n}): got {got:e} want {want:e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn smirnov_sf_matches_scipy() {
    let g = golden();
    let mut failures = Vec::new();
    for case in g["smirnov_sf"].as_array().unwrap() {
        let (n, x, want) = (case["n"].as_u64().unwrap(), f(case, "/x"), f(case, "/sf"));
        let got = kolmogorov::smirnov_sf(n, x);
        if !close(got, want) {
            failures.push(format!("smirnov(n={n}, x={x}): got {got:e} want {want:e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
