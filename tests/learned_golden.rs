//! Embedding drift against NumPy golden values (issue 6).
//! Regenerate with `python3 tests/fixtures/learned/generate.py >
//! tests/fixtures/learned/embedding.json`.

use driftd::learned::embedding_drift;
use serde_json::Value;

fn vectors(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .expect("array of vectors")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("vector")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        })
        .collect()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-10 * want.abs().max(got.abs()).max(1e-12)
}

#[test]
fn mean_shift_bandwidth_and_mmd2_match_numpy() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/learned/embedding.json"
    ))
    .expect("embedding.json present");
    let golden: Value = serde_json::from_str(&text).expect("embedding.json parses");
    let cases = golden["cases"].as_array().expect("cases");
    assert!(cases.len() >= 4);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let got = embedding_drift(
            &vectors(&case["reference"]),
            &vectors(&case["current"]),
            0,
            1,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (what, g, w) in [
            ("mean_shift", got.mean_shift, &case["mean_shift"]),
            ("bandwidth", got.bandwidth, &case["bandwidth"]),
            ("mmd2", got.mmd2, &case["mmd2"]),
        ] {
            let w = w.as_f64().expect("number");
            assert!(close(g, w), "{name} {what}: got {g}, numpy {w}");
        }
    }
}
