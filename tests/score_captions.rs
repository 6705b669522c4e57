//! `driftd score-captions` end to end (issue 3).

mod common;

use common::{driftd, p};

use serde_json::Value;

#[test]
fn json_output_matches_the_shared_fixture() {
    let out = driftd(&[
        "score-captions",
        "--input",
        "tests/fixtures/captions/coco-mini.jsonl",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/captions/coco-mini.expected.json").unwrap(),
    )
    .unwrap();
    for m in ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d"] {
        let (g, w) = (
            got["corpus"][m].as_f64().unwrap(),
            want["corpus"][m].as_f64().unwrap(),
        );
        assert!((g - w).abs() <= 1e-9 * w.abs(), "{m}: {g} vs {w}");
        for (gi, wi) in got["items"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want["items"].as_array().unwrap())
        {
            let (g, w) = (gi[m].as_f64().unwrap(), wi[m].as_f64().unwrap());
            assert!(
                g == w || (g - w).abs() <= 1e-9 * w.abs(),
                "{} {m}: {g} vs {w}",
                wi["id"]
            );
        }
    }
    // Descriptor aggregates are in the corpus and per item.
    assert!(got["corpus"]["distinct_1"].is_f64());
    assert!(got["corpus"]["token_count"]["p50"].is_f64());
    assert_eq!(got["corpus"]["items"], 5);
    assert_eq!(
        got["items"][4]["boilerplate_prefix"], true,
        "img5 is 'a picture of a train'"
    );
}

#[test]
fn reference_metrics_are_absent_without_references_and_clip_score_needs_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"id": "a", "candidate": "A dog on a sofa.", "references": ["a dog lying on a couch"]}"#, "\n",
            r#"{"id": "b", "candidate": "a picture of a cat", "image_embedding": [1, 0], "caption_embedding": [0.6, 0.8]}"#, "\n",
            r#"{"id": 7, "candidate": ""}"#, "\n",
        ),
    )
    .unwrap();
    let out = driftd(&["score-captions", "--input", p(&input)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    assert!(items[0]["bleu_4"].is_f64() && items[0]["cider_d"].is_f64());
    assert!(items[0].get("clip_score").is_none());
    for it in &items[1..] {
        for m in ["bleu_1", "bleu_4", "rouge_l", "cider_d"] {
            assert!(it.get(m).is_none(), "{m} must be absent, not zero: {it}");
        }
    }
    assert!((items[1]["clip_score"].as_f64().unwrap() - 1.5).abs() < 1e-12);
    assert_eq!(items[2]["id"], "7");
    assert_eq!(items[2]["empty"], true);
    assert_eq!(v["corpus"]["items_with_references"], 1);
    assert_eq!(v["corpus"]["empty_rate"].as_f64().unwrap(), 1.0 / 3.0);
}

#[test]
fn bad_lines_are_reported_with_line_numbers_and_skipped_or_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"id": "a", "candidate": "a dog", "references": ["a dog"]}"#,
            "\n",
            "not json\n",
            r#"{"id": "b"}"#,
            "\n",
            "\n",
            r#"{"id": "a", "candidate": "again"}"#,
            "\n",
            r#"{"id": "c", "candidate": "x", "image_embedding": [1, 2], "caption_embedding": [1]}"#,
            "\n",
            r#"{"id": "d", "candidate": "a cat", "references": "a cat"}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = driftd(&["score-captions", "--input", p(&input)]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "line 2:",
        "line 3:",
        "missing field `candidate`",
        "line 5: duplicate id \"a\"",
        "line 6: image_embedding has 2 dimensions",
        "line 7:",
    ] {
        assert!(err.contains(want), "want {want:?} in {err}");
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["corpus"]["skipped_lines"], 5);
    assert_eq!(v["corpus"]["items"], 1);

    let out = driftd(&["score-captions", "--strict", "--input", p(&input)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in.jsonl: line 2:"));
}

#[test]
fn frozen_document_frequencies_round_trip_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let df = dir.path().join("df.json");
    let all = driftd(&[
        "score-captions",
        "--input",
        "tests/fixtures/captions/random300.jsonl",
        "--write-df",
        p(&df),
    ]);
    assert!(all.status.success());
    let window = dir.path().join("window.jsonl");
    let lines: Vec<String> = std::fs::read_to_string("tests/fixtures/captions/random300.jsonl")
        .unwrap()
        .lines()
        .take(25)
        .map(str::to_owned)
        .collect();
    std::fs::write(&window, lines.join("\n")).unwrap();
    let out = driftd(&["score-captions", "--input", p(&window), "--df", p(&df)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a: Value = serde_json::from_slice(&all.stdout).unwrap();
    let w: Value = serde_json::from_slice(&out.stdout).unwrap();
    for i in 0..25 {
        let (x, y) = (
            a["items"][i]["cider_d"].as_f64().unwrap(),
            w["items"][i]["cider_d"].as_f64().unwrap(),
        );
        assert!(
            (x - y).abs() <= 1e-12 * x.abs().max(1.0),
            "item {i}: {x} vs {y}"
        );
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"format\": \"nope\"}").unwrap();
    let out = driftd(&["score-captions", "--input", p(&window), "--df", p(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}

#[test]
fn table_format_lists_items_and_corpus() {
    let out = driftd(&[
        "score-captions",
        "--input",
        "tests/fixtures/captions/coco-mini.jsonl",
        "--format",
        "table",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().next().unwrap().starts_with("id "));
    assert!(text.contains("\ncorpus "));
    assert!(text.contains("img5 "));
    assert!(text.contains("0.7646"), "corpus BLEU-1 0.7646 in\n{text}");
}

#[test]
fn vocabulary_comes_from_the_flag_or_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, r#"{"id": "a", "candidate": "a zorblax on a sofa"}"#).unwrap();
    let oov = |args: &[&str]| -> f64 {
        let mut full = vec!["score-captions", "--input", p(&input)];
        full.extend(args);
        let out = driftd(&full);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["items"][0]["oov_rate"].as_f64().unwrap()
    };
    // Shipped English list: only "zorblax" is unknown.
    assert_eq!(oov(&[]), 0.2);
    std::fs::write(dir.path().join("words.txt"), "# tiny list\na\nzorblax\n").unwrap();
    std::fs::write(
        dir.path().join("driftd.toml"),
        "[quality]\nvocabulary = \"words.txt\"\n",
    )
    .unwrap();
    let config = dir.path().join("driftd.toml");
    // From the config (relative to the config file): "on" and "sofa" unknown.
    assert_eq!(oov(&["--config", p(&config)]), 0.4);
    let flag = dir.path().join("flag.txt");
    std::fs::write(&flag, "a\non\nsofa\n").unwrap();
    // The flag wins over the config.
    assert_eq!(
        oov(&["--config", p(&config), "--vocabulary", p(&flag)]),
        0.2
    );
}
