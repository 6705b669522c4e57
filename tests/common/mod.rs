//! Helpers shared by the command-line tests: run the built `driftd` binary
//! from the crate root with no config in the environment.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `driftd ARGS` from the crate root, without `DRIFTD_CONFIG`.
pub fn driftd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DRIFTD_CONFIG")
        .output()
        .expect("driftd runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A finished command's stdout, then its stderr.
pub fn output_text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// `driftd generate --scenario SCENARIO --events EVENTS EXTRA...` into
/// `dir/logs.ndjson`; returns the file.
pub fn generate(dir: &Path, scenario: &str, events: &str, extra: &[&str]) -> std::path::PathBuf {
    let logs = dir.join("logs.ndjson");
    let mut args = vec![
        "generate",
        "--scenario",
        scenario,
        "--events",
        events,
        "--to",
        p(&logs),
    ];
    args.extend(extra);
    let out = driftd(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    logs
}

/// `driftd replay --format json` of `logs`, with `config` (TOML text) when
/// given: the window reports, one per line, and the summary on stderr.
pub fn replay_json(logs: &Path, config: Option<&str>) -> (Vec<serde_json::Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["replay", "--input", p(logs), "--format", "json"];
    let cfg = dir.path().join("driftd.toml");
    if let Some(text) = config {
        std::fs::write(&cfg, text).unwrap();
        args.extend(["--config", p(&cfg)]);
    }
    let out = driftd(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let reports = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (reports, err)
}

/// The Python the suite's Python-side checks run with: `$DRIFTD_TEST_PYTHON`,
/// else the virtual environment `scripts/test.sh` makes. It must import
/// `modules`; a missing one fails the test with how to get it (never a skip).
pub fn python(modules: &[&str]) -> PathBuf {
    let py = std::env::var_os("DRIFTD_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
            Path::new(&home).join(".cache/driftd/venv/bin/python")
        });
    let check = format!("import {}", modules.join(", "));
    let ok = std::process::Command::new(&py)
        .args(["-c", &check])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot `{check}`: run `bash scripts/test.sh`, which makes this virtual \
         environment from tests/requirements.txt, or point DRIFTD_TEST_PYTHON at a \
         Python that has them",
        py.display()
    );
    py
}

/// The daemon's HTTP server alone (no consumer behind it), on a free
/// loopback port, with `write_token` and an optional read token; the
/// runtime and the state directory live as long as the caller keeps them.
pub fn http_server(
    write_token: &str,
    read_token: Option<&str>,
) -> (
    std::net::SocketAddr,
    tokio::runtime::Runtime,
    tempfile::TempDir,
) {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(driftd::http::Shared::new(
        Arc::new(driftd::metrics::Metrics::new()),
        dir.path().to_owned(),
    ));
    let _ = shared.api_token.set(write_token.into());
    if let Some(t) = read_token {
        let _ = shared.read_token.set(t.into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(driftd::http::serve(
        listener,
        driftd::http::router(shared),
        std::future::pending(),
    ));
    (addr, rt, dir)
}
