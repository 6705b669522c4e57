//! The container image and the Kubernetes manifests (`Dockerfile`,
//! `deploy/kubernetes/`), checked as far as the tools here allow: no Docker
//! engine runs on this machine, so the image is not built; instead the build
//! stage's context (only what the Dockerfile copies) is checked to compile,
//! and the Dockerfile's shape is asserted. The manifests pass
//! kubernetes-validate's strict schemas of Kubernetes 1.33 (the core kinds),
//! and what ties them together is checked: probes on `/healthz` and
//! `/readyz`, ports, names, the non-root user the image has, the ConfigMap's
//! config (which `driftd check-config` accepts) and the Secret holding every
//! credential that config names.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_yaml::Value as Yaml;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const K8S: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

fn manifest(name: &str) -> Yaml {
    serde_yaml::from_str(&std::fs::read_to_string(format!("{K8S}/{name}")).unwrap()).unwrap()
}

fn s(v: &Yaml) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

fn labels(v: &Yaml) -> BTreeMap<String, String> {
    v.as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (s(k).to_owned(), s(v).to_owned()))
        .collect()
}

fn subset(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.iter().all(|(k, v)| b.get(k) == Some(v))
}

#[test]
fn the_manifests_pass_kubernetes_schemas_and_fit_together() {
    let py = common::python(&["kubernetes_validate"]);
    let files: Vec<String> = std::fs::read_dir(K8S)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    let kustomization = manifest("kustomization.yaml");
    let listed: BTreeSet<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    let present: BTreeSet<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| *f != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");

    // Strict schemas (unknown fields are errors) for every core kind; the
    // Prometheus Operator's ServiceMonitor and PrometheusRule (CRDs) and the
    // Kustomization have none there and are checked by hand below.
    let operator = ["servicemonitor.yaml", "prometheusrule.yaml"];
    let core: Vec<&str> = present
        .iter()
        .copied()
        .filter(|f| !operator.contains(f))
        .collect();
    let out = Command::new(&py)
        .args([
            "-c",
            "import sys; from kubernetes_validate.__main__ import main; sys.exit(main())",
            "--strict",
            "-k",
            "1.33.0",
        ])
        .args(core.iter().map(|f| format!("{K8S}/{f}")))
        .output()
        .unwrap();
    let text = common::output_text(&out);
    assert!(out.status.success(), "{text}");
    for f in &core {
        assert!(
            text.contains(&format!("{f} passed")),
            "{f} was not validated:\n{text}"
        );
    }

    let deployment = manifest("deployment.yaml");
    let service = manifest("service.yaml");
    let monitor = manifest("servicemonitor.yaml");
    let config_map = manifest("configmap.yaml");
    let secret = manifest("secret.yaml");
    let claim = manifest("persistentvolumeclaim.yaml");

    // The Deployment: one replica, replaced (not rolled) so two pods never
    // share the state volume; probes on the daemon's own endpoints.
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"]["type"], "Recreate");
    let pod = &spec["template"]["spec"];
    let pod_labels = labels(&spec["template"]["metadata"]["labels"]);
    assert!(subset(
        &labels(&spec["selector"]["matchLabels"]),
        &pod_labels
    ));
    let c = &pod["containers"][0];
    let port = c["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "http")
        .expect("a port named http");
    assert_eq!(port["containerPort"], 9898);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
    // Non-root, as the image's USER.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert_ne!(uid, 0);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("\nUSER {uid}:{uid}\n")),
        "the image runs as uid {uid}"
    );
    // The config from the ConfigMap, at the path the args name.
    let args: Vec<&str> = c["args"].as_sequence().unwrap().iter().map(s).collect();
    assert_eq!(args[0], "run");
    let config_path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let volumes = pod["volumes"].as_sequence().unwrap();
    let mount = |name: &str| {
        c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| s(&m["mountPath"]).to_owned())
            .unwrap_or_else(|| panic!("no mount of {name}"))
    };
    let volume = |name: &str| volumes.iter().find(|v| v["name"] == name).unwrap();
    assert_eq!(
        volume("config")["configMap"]["name"],
        config_map["metadata"]["name"]
    );
    assert_eq!(config_path, format!("{}/driftd.toml", mount("config")));
    assert_eq!(
        volume("state")["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );
    assert_eq!(
        c["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );

    // The Service selects the pods; the ServiceMonitor the Service, by its
    // port name, on /metrics; the job label (the Service's name) is the one
    // the alert rules select.
    assert!(subset(&labels(&service["spec"]["selector"]), &pod_labels));
    let sport = &service["spec"]["ports"][0];
    assert_eq!(sport["targetPort"], "http");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert!(subset(
        &labels(&monitor["spec"]["selector"]["matchLabels"]),
        &labels(&service["metadata"]["labels"])
    ));
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], sport["name"]);
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let alerts = std::fs::read_to_string(format!("{ROOT}/config/prometheus/alerts.yml")).unwrap();
    assert!(alerts.contains(&format!("job=\"{}\"", s(&service["metadata"]["name"]))));
    // The PrometheusRule carries alerts.yml's groups unchanged (promtool
    // checks and unit-tests those: tests/operators_kit.rs).
    let rule = manifest("prometheusrule.yaml");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    let alerts: Yaml = serde_yaml::from_str(&alerts).unwrap();
    assert_eq!(rule["spec"]["groups"], alerts["groups"]);

    // The ConfigMap's config: listens on the container port, keeps state on
    // the volume, stops within the grace period, and driftd accepts it with
    // the Secret's variables set.
    let toml_text = s(&config_map["data"]["driftd.toml"]);
    let config: toml::Value = toml::from_str(toml_text).unwrap();
    assert_eq!(config["http"]["listen"].as_str(), Some("0.0.0.0:9898"));
    assert!(config["state"]["dir"]
        .as_str()
        .unwrap()
        .starts_with(&mount("state")));
    let shutdown = config["state"]["shutdown_timeout"].as_str().unwrap();
    let shutdown: u64 = shutdown.strip_suffix('s').unwrap().parse().unwrap();
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > shutdown);
    let secret_keys: BTreeSet<String> = secret["stringData"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| s(k).to_owned())
        .collect();
    // Every credential the config reads: *_env keys and ${VAR} without a default.
    let mut needed = BTreeSet::new();
    for t in config["targets"].as_array().unwrap() {
        for key in ["token_env", "secret_env"] {
            if let Some(v) = t.get(key) {
                needed.insert(v.as_str().unwrap().to_owned());
            }
        }
    }
    needed.insert(config["http"]["api_token_env"].as_str().unwrap().to_owned());
    let mut rest = toml_text;
    while let Some(i) = rest.find("${") {
        let end = rest[i..].find('}').unwrap() + i;
        let var = &rest[i + 2..end];
        if !var.contains(":-") {
            needed.insert(var.to_owned());
        }
        rest = &rest[end..];
    }
    let missing: Vec<&String> = needed.difference(&secret_keys).collect();
    assert!(missing.is_empty(), "not in the Secret: {missing:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("driftd.toml");
    std::fs::write(&file, toml_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["check-config", "--config"])
        .arg(&file)
        .env_remove("DRIFTD_CONFIG")
        .envs(secret_keys.iter().map(|k| (k, "test-value")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Dockerfile: a build stage and a slim runtime stage running driftd as
/// a non-root user, and a build context (only what it copies) that compiles.
#[test]
fn the_dockerfile_is_multi_stage_non_root_and_its_context_builds() {
    let text = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    // Instructions, with continuation lines joined.
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].starts_with("FROM rust:") && froms[0].ends_with(" AS build"));
    assert!(
        froms[1].starts_with("FROM debian:") && froms[1].contains("-slim"),
        "{}",
        froms[1]
    );
    let runtime_start = lines.iter().position(|l| *l == froms[1]).unwrap();
    let runtime = &lines[runtime_start..];
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(
        user.split(':')
            .all(|id| id.parse::<u32>().is_ok_and(|n| n >= 1000)),
        "a numeric non-root user: {user}"
    );
    assert!(runtime.iter().any(|l| l.starts_with("COPY --from=build ")));
    assert!(runtime.contains(&"EXPOSE 9898"));
    assert!(runtime.contains(&r#"ENTRYPOINT ["/usr/local/bin/driftd"]"#));
    assert!(runtime.contains(&r#"CMD ["run"]"#));
    assert!(lines
        .iter()
        .any(|l| l.contains("cargo build --release --locked --bin driftd")));

    // The build stage's context: exactly what its COPY lines bring in.
    let context = tempfile::tempdir().unwrap();
    for l in &lines[..runtime_start] {
        let Some(args) = l.strip_prefix("COPY ") else {
            continue;
        };
        let parts: Vec<&str> = args.split_whitespace().collect();
        let (sources, _dest) = parts.split_at(parts.len() - 1);
        for src in sources {
            copy(&Path::new(ROOT).join(src), &context.path().join(src));
        }
    }
    for l in runtime
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
    {
        let src = l.split_whitespace().nth(1).unwrap();
        assert!(
            Path::new(ROOT).join(src).exists(),
            "{src} is in the repository"
        );
    }
    // Its own target directory (a build holding the suite's would wait on
    // the running `cargo test`), kept between runs.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docker-context-target");
    let out = Command::new(env!("CARGO"))
        .args(["check", "--locked", "--offline", "--bin", "driftd"])
        .current_dir(context.path())
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_TERM_COLOR", "never")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the build stage's context does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}
