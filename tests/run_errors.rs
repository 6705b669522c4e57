//! `driftd run` refuses bad setups with one clear line and the right exit
//! code, before consuming anything.

mod common;

use common::{driftd, p, stderr};

fn config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("driftd.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"127.0.0.1:1\"\n{extra}\n[http]\nlisten = \"127.0.0.1:0\"\n[state]\ndir = \"{}\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn unknown_librdkafka_property_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "[kafka.options]\n\"no.such.property\" = \"x\"");
    let out = driftd(&["run", "--config", p(&cfg)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("creating the Kafka consumer: Client config error: No such configuration property: \"no.such.property\""),
        "{err}"
    );
}

#[test]
fn reserved_kafka_options_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "[kafka.options]\n\"enable.auto.commit\" = \"true\"",
    );
    let out = driftd(&["run", "--config", p(&cfg)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("kafka.options.enable.auto.commit: is set by driftd itself"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unusable_state_directory_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let state = blocker.join("state");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["run", "--config", p(&cfg)])
        .env("DRIFTD_STATE_DIR", &state)
        .env_remove("DRIFTD_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = err.lines().last().unwrap();
    assert!(
        line.starts_with(&format!("driftd: state directory {}:", state.display())),
        "{err}"
    );
    assert_eq!(line.matches("Not a directory").count(), 1, "{line}");
}
