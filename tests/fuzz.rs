//! A mutation fuzzer on stable Rust (issue 15): valid events, feedback,
//! configs, profiles and HTTP requests, damaged at random (bytes flipped,
//! inserted, deleted, runs repeated, hostile fragments spliced in, lengths
//! blown up), fed to the code that reads them. Every input must give a value
//! or an error, never a panic; the engine must go on after each.
//!
//! The suite runs a short pass. The long one, whose figure is in
//! docs/hardening.md:
//!
//! ```text
//! DRIFTD_FUZZ_CASES=1000000 cargo test --profile fuzz --test fuzz -- --nocapture
//! ```
//!
//! `DRIFTD_FUZZ_SEED` repeats a run; a failure prints the seed and case.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use driftd::config::Config;
use driftd::monitor::Engine;
use driftd::quality::Vocabulary;
use driftd::source::generate::{GenerateSpec, Scenario};
use driftd::testkit::XorShift;

mod common;

/// Cases per target: `DRIFTD_FUZZ_CASES`, else a short pass.
fn cases(short: usize) -> usize {
    std::env::var("DRIFTD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(short)
}

fn seed() -> u64 {
    std::env::var("DRIFTD_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed)
}

/// Fragments an attacker would try: quotes and newlines for labels, markup,
/// control characters, huge and odd numbers, deep nesting, long runs.
const FRAGMENTS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\n",
    b"\"} 1\ndriftd_injected_total{forged=\"yes",
    b"<img src=x onerror=alert(1)>",
    b"\x00",
    b"\x1b[31m",
    b"\xe2\x80\xae",
    b"\xff\xfe",
    b"1e400",
    b"-1e308",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"NaN",
    b"null",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"{\"a\":{\"a\":{\"a\":{\"a\":{",
    b"\"2100-01-01T00:00:00Z\"",
    b"\"0000-01-01T00:00:00+23:59\"",
    b"${HOME}",
    b"$${",
    b"\"\"\"",
    b"'''",
    b"[limits]\nmax_event_bytes = 1\n",
    b"..",
    b"%2F",
];

struct Mutator(XorShift);

impl Mutator {
    fn below(&mut self, n: usize) -> usize {
        ((self.0.uniform() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// `input` damaged one to four times.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(7) {
                0 if !v.is_empty() => {
                    let i = at.min(v.len() - 1);
                    v[i] = self.below(256) as u8;
                }
                1 => v.insert(at, self.below(256) as u8),
                2 if !v.is_empty() => {
                    let end = (at + 1 + self.below(16)).min(v.len());
                    v.drain(at.min(end)..end);
                }
                3 => {
                    let f = FRAGMENTS[self.below(FRAGMENTS.len())];
                    v.splice(at..at, f.iter().copied());
                }
                4 if !v.is_empty() => {
                    // A run repeated: long names, long strings, deep nesting.
                    let start = at.min(v.len() - 1);
                    let end = (start + 1 + self.below(8)).min(v.len());
                    let run = v[start..end].to_vec();
                    let times = [2, 10, 200, 5_000][self.below(4)];
                    for _ in 0..times {
                        v.splice(end..end, run.iter().copied());
                    }
                }
                5 => {
                    // A digit run: numbers beyond every range.
                    let digits = vec![b'9'; 1 + self.below(400)];
                    v.splice(at..at, digits);
                }
                _ => {
                    if let Some(i) = v.iter().position(|&b| b == b'"') {
                        v.insert(i, b'"');
                    }
                }
            }
        }
        v
    }
}

/// Run `f` on each case; a panic fails with the seed and the input.
fn fuzz(name: &str, short: usize, corpus: &[Vec<u8>], mut f: impl FnMut(&[u8])) {
    let n = cases(short);
    let seed = seed();
    let mut m = Mutator(XorShift::new(seed ^ name.len() as u64));
    let started = std::time::Instant::now();
    for case in 0..n {
        let base = &corpus[m.below(corpus.len())];
        let input = m.mutate(base);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&input)));
        if r.is_err() {
            let shown = String::from_utf8_lossy(&input[..input.len().min(2000)]).into_owned();
            panic!("{name}: panic on case {case} (DRIFTD_FUZZ_SEED={seed}):\n{shown}");
        }
    }
    eprintln!("{name}: {n} inputs, no panic, {:?}", started.elapsed());
}

fn generated(scenario: Scenario, n: u64, dims: usize) -> Vec<Vec<u8>> {
    let mut spec = GenerateSpec::new(scenario, n);
    spec.embedding_dims = dims;
    driftd::testkit::lines(&spec)
}

#[test]
fn events_and_feedback() {
    let config = Config::from_toml(
        "[baseline]\nlearn_events = 50\n[windows]\nsize = \"10s\"\n\
         [limits]\nmax_models = 8\nmax_versions_per_model = 4\nmax_state_bytes = 4000000\n\
         [learned]\nenabled = true\nsample_size = 32\npermutations = 20\n\
         [estimator]\nenabled = true\nmin_examples = 20\nretrain_after = 20\n",
        "fuzz",
        &|_| None,
    )
    .unwrap();
    let mut engine = Engine::new(config, Vocabulary::english(), Default::default());
    engine.join_feedback(true);
    let mut corpus = generated(Scenario::QualityDrop, 300, 4);
    corpus.extend(generated(Scenario::Broken, 100, 0));
    let feedback: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            format!(
                r#"{{"event_id":"{i}","timestamp":"2026-11-24T00:00:0{}.000Z","references":["a dog on grass"],"rating":{}}}"#,
                i % 10,
                i % 5
            )
            .into_bytes()
        })
        .collect();
    // Valid events first, so windows are open when the damaged ones come.
    for ev in &corpus {
        let _ = engine.process(ev);
    }
    let mut i = 0u64;
    fuzz("events", 20_000, &corpus, |input| {
        i += 1;
        let _ = engine.process(input);
        if i % 3 == 0 {
            let _ = engine.process_feedback(input);
        }
        if i % 5_000 == 0 {
            // The state stays restorable whatever came in.
            let snap = engine.snapshot();
            engine.restore(&snap).unwrap();
        }
    });
    fuzz("feedback", 5_000, &feedback, |input| {
        let _ = engine.process_feedback(input);
    });
    let _ = engine.finish();
}

#[test]
fn configs() {
    let shipped = std::fs::read("config/driftd.toml").unwrap();
    // Each section of the shipped file alone, and the whole of it.
    let text = String::from_utf8(shipped.clone()).unwrap();
    let mut corpus: Vec<Vec<u8>> = text
        .split("\n[")
        .map(|s| format!("[{s}").into_bytes())
        .collect();
    corpus.push(shipped);
    let env = |k: &str| match k {
        "HOME" => Some("/root\"\n[limits]\nmax_models = 1\n#".to_owned()),
        "DRIFTD_DATASET_DRIFT_SHARE" => Some("0.4".to_owned()),
        _ => None,
    };
    fuzz("configs", 3_000, &corpus, |input| {
        if let Ok(text) = std::str::from_utf8(input) {
            if let Err(e) = Config::from_toml(text, "fuzz.toml", &env) {
                // No problem message carries what came from the environment.
                for p in &e.problems {
                    assert!(!p.message.contains("/root\""), "{p}");
                }
            }
        }
    });
}

#[test]
fn profiles() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("ref.ndjson");
    let lines = generated(Scenario::Stable, 500, 4);
    std::fs::write(&events, lines.join(&b'\n')).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["baseline", "--input"])
        .arg(&events)
        .arg("--out")
        .arg(dir.path().join("p.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let profile = std::fs::read(dir.path().join("p.json")).unwrap();
    let config = Config::from_toml(
        "[baseline]\nlearn_events = 50\n[learned]\nenabled = true\nsample_size = 32\npermutations = 20\n",
        "fuzz",
        &|_| None,
    )
    .unwrap();
    fuzz("profiles", 2_000, &[profile], |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        // A profile that loads must serve: windows against it, end to end.
        if let Ok(p) = driftd::baseline::Profile::parse(text, "fuzz.json") {
            let mut profiles = std::collections::BTreeMap::new();
            profiles.insert("alt-text-captioner".to_owned(), p);
            // A small vocabulary: the profile is what is under test.
            let mut e = Engine::new(config.clone(), Vocabulary::from_text("a\ndog\n"), profiles);
            for ev in &lines[..60] {
                let _ = e.process(ev);
            }
            for w in e.finish() {
                let _ = serde_json::to_string(&w).unwrap();
            }
        }
    });
}

#[test]
fn http_requests() {
    let (addr, _rt, _dir) = common::http_server("token", None);
    // A panic in a handler is caught by the server (the connection ends);
    // count them through the hook.
    let panics = Arc::new(AtomicUsize::new(0));
    {
        let panics = panics.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panics.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    }
    let corpus: Vec<Vec<u8>> = [
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n",
        "GET /api/v1/windows?model=m&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/v1/models/m/windows?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/v1/decisions?model=..&outbox=true HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/v1/deliveries?state=dead HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token\r\n\r\n",
        "POST /api/v1/models/m/candidates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token\r\nContent-Type: application/json\r\nContent-Length: 35\r\n\r\n{\"version\":\"2\",\"metadata\":{\"a\":1}}",
        "POST /api/v1/deliveries/dec_1/retry HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token\r\nContent-Length: 0\r\n\r\n",
        "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /?x=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("http", 1_000, &corpus, |input| {
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(input);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read(&mut [0u8; 1024]);
    });
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a handler panicked");
    // And it still answers.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
