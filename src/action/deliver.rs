//! The delivery worker: sends the outbox (fired decisions, one delivery per
//! target) and records every attempt in the store.
//!
//! - `webhook`: a CloudEvents 1.0 structured-mode POST whose `id` is the
//!   decision id, signed per Standard Webhooks; `webhook-id` is the same id
//!   on every retry, so receivers deduplicate.
//! - `gitlab`: GitLab's pipeline trigger (`POST
//!   /api/v4/projects/:id/trigger/pipeline` with token, ref and variables).
//! - `github`: `POST /repos/:owner/:repo/dispatches` (`repository_dispatch`)
//!   with a bearer token; `client_payload` has at most 10 top-level keys.
//! - `kafka`: the CloudEvent produced to a topic, keyed by model.
//! - 2xx: delivered. 408, 429, 5xx, connection errors and timeouts: retried
//!   with exponential backoff and full jitter, never sooner than a
//!   `Retry-After` of seconds. 410 Gone: the target is disabled and its
//!   pending deliveries are dead. Other 4xx, and `max_attempts` exhausted:
//!   dead.
//! - GitLab and GitHub start a pipeline per request and do not deduplicate.
//!   Before a request to them the delivery is marked `sending` in the store;
//!   a timeout after the request went out, or a stop before its answer was
//!   recorded, leaves it `unknown`: never sent again on its own, listed by
//!   `GET /api/v1/deliveries?state=unknown`, and sent again only by `POST
//!   /api/v1/deliveries/{id}/retry`.
//! - The outbox is in the state store, so deliveries survive restarts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::event::{Action as EventAction, CloudEvent, CONTENT_TYPE};
use super::sign::{github_signature, signature_header, Secret};
use crate::config::{TargetConfig, TargetKind};
use crate::metrics::Metrics;
use crate::rules::Action;
use crate::store::{Attempt, DueDelivery, Store};

/// A target with its credentials read.
pub struct Target {
    pub config: TargetConfig,
    auth: Auth,
}

enum Auth {
    /// Standard Webhooks secrets, and the first one as written (GitHub-style
    /// signatures are keyed by it).
    Secrets(Vec<Secret>, String),
    /// A GitLab or GitHub token, and the secrets that sign the event inside
    /// the request (none: unsigned).
    Token(String, Vec<Secret>),
    Producer(FutureProducer),
}

/// Standard Webhooks secrets from their text (several, space-separated,
/// during a rotation), and the first one as written.
fn parse_secrets(text: &str) -> Result<(Vec<Secret>, String), super::sign::SecretError> {
    let secrets = text
        .split_whitespace()
        .map(Secret::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let first = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((secrets, first))
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.config.name)
            .field("kind", &self.config.kind.name())
            .finish_non_exhaustive()
    }
}

/// The targets the worker sends to; replaced whole on a config reload.
pub type TargetSet = Arc<RwLock<Vec<Arc<Target>>>>;

/// Read each target's credentials from its environment variable (webhook
/// secrets: several, space-separated, during a rotation) and create Kafka
/// producers. A missing or malformed credential is an error naming the
/// variable, never its value.
pub fn resolve_targets(
    targets: &[TargetConfig],
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<Arc<Target>>> {
    targets
        .iter()
        .map(|t| {
            let read = |c: &crate::config::Credential, what: &str| {
                c.read(env)
                    .map_err(|e| anyhow::anyhow!("targets {:?}: {what}: {e}", t.name))
            };
            let signing = |c: &crate::config::Credential| {
                parse_secrets(&read(c, "its webhook secret")?)
                    .map_err(|e| anyhow::anyhow!("targets {:?}: its webhook secret: {e}", t.name))
            };
            let auth = match &t.kind {
                TargetKind::Webhook { secret, .. } => {
                    let (secrets, first) = signing(secret)?;
                    Auth::Secrets(secrets, first)
                }
                TargetKind::Gitlab { token, secret, .. } => Auth::Token(
                    read(token, "its pipeline trigger token")?,
                    match secret {
                        Some(s) => signing(s)?.0,
                        None => Vec::new(),
                    },
                ),
                TargetKind::Github { token, secret, .. } => Auth::Token(
                    read(token, "its GitHub token")?,
                    match secret {
                        Some(s) => signing(s)?.0,
                        None => Vec::new(),
                    },
                ),
                TargetKind::Kafka {
                    brokers, options, ..
                } => {
                    let mut c = rdkafka::ClientConfig::new();
                    for (k, v) in options {
                        c.set(k, v);
                    }
                    c.set("bootstrap.servers", brokers)
                        .set("message.timeout.ms", t.timeout_ms.to_string());
                    Auth::Producer(c.create().map_err(|e| {
                        anyhow::anyhow!("targets {:?}: creating the Kafka producer: {e}", t.name)
                    })?)
                }
            };
            Ok(Arc::new(Target {
                config: t.clone(),
                auth,
            }))
        })
        .collect()
}

fn event_action(a: Action) -> EventAction {
    match a {
        Action::Retrain => EventAction::Retrain,
        Action::Redeploy => EventAction::Redeploy,
        Action::Rollback => EventAction::Rollback,
        Action::Notify => EventAction::Notify,
        Action::CandidateRejected => EventAction::CandidateRejected,
        Action::Report => EventAction::Report,
    }
}

/// The CloudEvent for a stored decision (its JSON as `data`).
pub fn event_for(
    decision_id: &str,
    decision_json: &str,
    source: &str,
) -> anyhow::Result<CloudEvent> {
    let data: serde_json::Value = serde_json::from_str(decision_json)?;
    let action: Action = serde_json::from_value(data["action"].clone())?;
    let model = data["model"].as_str().unwrap_or_default().to_owned();
    let end = data["window_end"].as_str().unwrap_or_default();
    let time_ms = crate::event::parse_timestamp_str(end).unwrap_or(0);
    Ok(CloudEvent::new(
        decision_id,
        source,
        event_action(action),
        model,
        time_ms,
        data,
    ))
}

/// Longest `Retry-After` honoured, in seconds: a receiver cannot park a
/// delivery for longer than a day.
const MAX_RETRY_AFTER_S: u64 = 86_400;

/// Full-jitter exponential backoff: uniform in [0, min(max, min * 2^n)),
/// never under a `Retry-After`.
fn backoff_ms(t: &TargetConfig, attempts: u32, retry_after_ms: Option<u64>, rng: &mut u64) -> u64 {
    let cap = t
        .min_backoff_ms
        .saturating_mul(1u64 << attempts.min(30))
        .min(t.max_backoff_ms)
        .max(1);
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let jittered = *rng % cap;
    jittered.max(retry_after_ms.unwrap_or(0))
}

/// What a request to a target came to, before retry policy.
enum Sent {
    Status {
        status: u16,
        retry_after_ms: Option<u64>,
    },
    /// Nothing reached the receiver (connection refused, DNS, TLS...).
    Unsent(String),
    /// The request may have reached it: timeout or broken connection after
    /// sending.
    Unclear(String),
}

/// How an event carried inside a GitLab or GitHub request is signed: the
/// Standard Webhooks signature of `{id}.{timestamp}.{body}`, where `body` is
/// the CloudEvent exactly as sent (`DRIFTD_EVENT`, `client_payload.event`).
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    pub id: String,
    pub timestamp: i64,
    /// `v1,<base64>`, one per secret, space-separated.
    pub signature: String,
}

impl Signed {
    /// `body` signed now with every secret (a webhook's headers).
    fn new(secrets: &[Secret], id: &str, body: &[u8]) -> Self {
        let timestamp = crate::event::wall_clock_ms() / 1000;
        Self {
            id: id.to_owned(),
            timestamp,
            signature: signature_header(secrets, id, timestamp, body),
        }
    }

    /// As [`Signed::new`] when the target has secrets; GitLab and GitHub
    /// targets without one send unsigned.
    fn if_any(secrets: &[Secret], id: &str, body: &[u8]) -> Option<Self> {
        (!secrets.is_empty()).then(|| Self::new(secrets, id, body))
    }
}

/// The body of a `repository_dispatch`. GitHub allows at most 10 top-level
/// keys in `client_payload`: the fields a workflow branches on, the
/// decision, the CloudEvent as sent (`event`, a string, so its signature can
/// be checked byte for byte) and, when the target has a secret, `webhook`
/// (`id`, `timestamp`, `signature`). The CloudEvent's `source` and `time`
/// are in `event`.
pub fn github_dispatch(
    event: &CloudEvent,
    body: &[u8],
    event_type: Option<&str>,
    signed: Option<&Signed>,
) -> serde_json::Value {
    let d = &event.data;
    let mut payload = serde_json::json!({
        "id": event.id,
        "type": event.event_type,
        "model": d["model"],
        "model_version": d["model_version"],
        "action": d["action"],
        "versions": d.get("versions").cloned().unwrap_or(serde_json::Value::Null),
        "reason": d["reason"],
        "decision": d,
        "event": String::from_utf8_lossy(body),
    });
    if let Some(s) = signed {
        payload["webhook"] = serde_json::json!({
            "id": s.id,
            "timestamp": s.timestamp,
            "signature": s.signature,
        });
    }
    serde_json::json!({
        "event_type": event_type.unwrap_or(&event.event_type),
        "client_payload": payload,
    })
}

/// GitLab pipeline variables: `DRIFTD_*` from the event (with
/// `DRIFTD_WEBHOOK_ID`, `_TIMESTAMP` and `_SIGNATURE` when signed), then the
/// target's own.
pub fn gitlab_variables(
    event: &CloudEvent,
    body: &[u8],
    signed: Option<&Signed>,
    extra: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let d = &event.data;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut vars = vec![
        ("DRIFTD_EVENT_ID".to_owned(), event.id.clone()),
        ("DRIFTD_EVENT_TYPE".to_owned(), event.event_type.clone()),
        ("DRIFTD_ACTION".to_owned(), s(&d["action"])),
        ("DRIFTD_MODEL".to_owned(), s(&d["model"])),
        ("DRIFTD_MODEL_VERSION".to_owned(), s(&d["model_version"])),
        ("DRIFTD_RULE".to_owned(), s(&d["rule"])),
        ("DRIFTD_REASON".to_owned(), s(&d["reason"])),
        (
            "DRIFTD_DEPLOY_VERSION".to_owned(),
            s(&d["versions"]["deploy"]),
        ),
        (
            "DRIFTD_EVENT".to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        ),
    ];
    if let Some(s) = signed {
        vars.extend([
            ("DRIFTD_WEBHOOK_ID".to_owned(), s.id.clone()),
            (
                "DRIFTD_WEBHOOK_TIMESTAMP".to_owned(),
                s.timestamp.to_string(),
            ),
            ("DRIFTD_WEBHOOK_SIGNATURE".to_owned(), s.signature.clone()),
        ]);
    }
    vars.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

/// The client deliveries use. Redirects are not followed: a 307 or 308 would
/// send the body, with a GitLab trigger token in it, to whatever host the
/// answer names.
fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

async fn send_http(req: reqwest::RequestBuilder) -> Sent {
    match req.send().await {
        Ok(resp) => Sent::Status {
            status: resp.status().as_u16(),
            retry_after_ms: resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| s.min(MAX_RETRY_AFTER_S).saturating_mul(1000)),
        },
        Err(e) if e.is_connect() || e.is_builder() => Sent::Unsent(error_chain(&e)),
        Err(e) => Sent::Unclear(error_chain(&e)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// One attempt: send, and say what became of it.
async fn attempt(
    client: &reqwest::Client,
    target: &Target,
    d: &DueDelivery,
    source: &str,
    rng: &mut u64,
) -> Attempt {
    let event = match event_for(&d.decision_id, &d.decision_json, source) {
        Ok(e) => e,
        Err(e) => {
            return Attempt::Dead {
                status: None,
                error: format!("stored decision unreadable: {e}"),
            }
        }
    };
    let body = event.to_body();
    let t = &target.config;
    let timeout = Duration::from_millis(t.timeout_ms);
    let user_agent = concat!("driftd/", env!("CARGO_PKG_VERSION"));
    let sent = match (&t.kind, &target.auth) {
        (
            TargetKind::Webhook {
                url,
                github_signature: hub,
                ..
            },
            Auth::Secrets(secrets, first),
        ) => {
            let signed = Signed::new(secrets, &d.decision_id, &body);
            let mut req = client
                .post(url)
                .timeout(timeout)
                .header(reqwest::header::USER_AGENT, user_agent)
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .header("webhook-id", signed.id)
                .header("webhook-timestamp", signed.timestamp.to_string())
                .header("webhook-signature", signed.signature);
            if *hub {
                req = req.header(
                    "x-hub-signature-256",
                    github_signature(first.as_bytes(), &body),
                );
            }
            send_http(req.body(body)).await
        }
        (
            TargetKind::Gitlab {
                url,
                project,
                git_ref,
                variables,
                ..
            },
            Auth::Token(token, secrets),
        ) => {
            let mut form = vec![
                ("token".to_owned(), token.clone()),
                ("ref".to_owned(), git_ref.clone()),
            ];
            let signed = Signed::if_any(secrets, &d.decision_id, &body);
            form.extend(
                gitlab_variables(&event, &body, signed.as_ref(), variables)
                    .into_iter()
                    .map(|(k, v)| (format!("variables[{k}]"), v)),
            );
            let encoded: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let req = client
                .post(format!("{url}/api/v4/projects/{project}/trigger/pipeline"))
                .timeout(timeout)
                .header(reqwest::header::USER_AGENT, user_agent)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(encoded);
            send_http(req).await
        }
        (
            TargetKind::Github {
                url,
                repository,
                event_type,
                ..
            },
            Auth::Token(token, secrets),
        ) => {
            let signed = Signed::if_any(secrets, &d.decision_id, &body);
            let payload = github_dispatch(&event, &body, event_type.as_deref(), signed.as_ref());
            let req = client
                .post(format!("{url}/repos/{repository}/dispatches"))
                .timeout(timeout)
                .header(reqwest::header::USER_AGENT, user_agent)
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
                .header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&payload).expect("JSON serializes"));
            send_http(req).await
        }
        (TargetKind::Kafka { topic, .. }, Auth::Producer(producer)) => {
            let model = event.subject.clone();
            let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                key: "content-type",
                value: Some(CONTENT_TYPE),
            });
            let record = FutureRecord::to(topic)
                .key(&model)
                .payload(&body)
                .headers(headers);
            match producer.send(record, timeout).await {
                Ok(_) => Sent::Status {
                    status: 200,
                    retry_after_ms: None,
                },
                // Consumers see the same CloudEvents id again: safe to retry.
                Err((e, _)) => Sent::Unclear(format!("Kafka: {e}")),
            }
        }
        _ => {
            return Attempt::Dead {
                status: None,
                error: "target credentials do not match its kind".into(),
            }
        }
    };
    let retry = |status: Option<u16>, error: String, retry_after: Option<u64>, rng: &mut u64| {
        if d.attempts + 1 >= t.max_attempts {
            Attempt::Dead {
                status,
                error: format!("gave up after {} attempts: {error}", d.attempts + 1),
            }
        } else {
            Attempt::Retry {
                status,
                error,
                next_attempt_ms: crate::event::wall_clock_ms().saturating_add(
                    i64::try_from(backoff_ms(t, d.attempts, retry_after, rng)).unwrap_or(i64::MAX),
                ),
            }
        }
    };
    match sent {
        Sent::Status {
            status,
            retry_after_ms,
        } => match status {
            200..=299 => Attempt::Delivered { status },
            408 | 429 | 500..=599 => {
                retry(Some(status), format!("HTTP {status}"), retry_after_ms, rng)
            }
            300..=399 => Attempt::Dead {
                status: Some(status),
                error: format!("HTTP {status}: redirects are not followed (set the target's url to where it points)"),
            },
            _ => Attempt::Dead {
                status: Some(status),
                error: format!("HTTP {status}"),
            },
        },
        Sent::Unsent(e) => retry(None, e, None, rng),
        // The receiver deduplicates by id: sending again is safe.
        Sent::Unclear(e) if t.kind.deduplicates() => retry(None, e, None, rng),
        Sent::Unclear(e) => Attempt::Unknown {
            error: format!(
                "no answer after the request was sent ({e}); {} does not deduplicate, so it is not sent again without an operator's retry",
                t.kind.name()
            ),
        },
    }
}

/// Send due deliveries until `stop`; polls the outbox every `poll`.
pub fn run(
    state_dir: std::path::PathBuf,
    targets: TargetSet,
    source: String,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    poll: Duration,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut store = Store::open(&state_dir)?;
    let interrupted = store.interrupted_sends()?;
    if interrupted > 0 {
        tracing::error!(
            deliveries = interrupted,
            "requests to targets that do not deduplicate were cut off by the last stop; their outcome is unknown (GET /api/v1/deliveries?state=unknown)"
        );
    }
    let client = http_client()?;
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15 ^ crate::event::wall_clock_ms() as u64;
    while !stop.load(Ordering::Relaxed) {
        let due = match store.due_deliveries(crate::event::wall_clock_ms(), 64) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "reading the outbox failed; retrying");
                Vec::new()
            }
        };
        let current: Vec<Arc<Target>> = targets.read().map(|t| t.clone()).unwrap_or_default();
        let mut attempted = 0;
        for d in &due {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Some(target) = current.iter().find(|t| t.config.name == d.target) else {
                // A target removed from the config: its deliveries wait.
                continue;
            };
            attempted += 1;
            if !target.config.kind.deduplicates() {
                if let Err(e) = store.begin_send(&d.decision_id, &d.target) {
                    tracing::error!(error = %e, id = %d.decision_id, "cannot mark the delivery as sending; not sending");
                    continue;
                }
            }
            let result = rt.block_on(attempt(&client, target, d, &source, &mut rng));
            let outcome = match &result {
                Attempt::Delivered { .. } => "delivered",
                Attempt::Retry { .. } => "retry",
                Attempt::Dead {
                    status: Some(410), ..
                } => "gone",
                Attempt::Dead { .. } => "dead",
                Attempt::Unknown { .. } => "unknown",
            };
            metrics
                .delivery_attempts
                .get_or_create(&crate::labels![
                    ("target", d.target.clone()),
                    ("outcome", outcome.to_owned()),
                ])
                .inc();
            match &result {
                Attempt::Delivered { status } => tracing::info!(
                    id = %d.decision_id, target = %d.target, status, attempt = d.attempts + 1, "delivered"),
                Attempt::Retry { error, .. } => tracing::warn!(
                    id = %d.decision_id, target = %d.target, error = %error, attempt = d.attempts + 1, "delivery failed; will retry"),
                Attempt::Dead { error, .. } => tracing::error!(
                    id = %d.decision_id, target = %d.target, error = %error, attempt = d.attempts + 1, "delivery dead"),
                Attempt::Unknown { error } => tracing::error!(
                    id = %d.decision_id, target = %d.target, error = %error, attempt = d.attempts + 1, "delivery outcome unknown"),
            }
            let recorded = if outcome == "gone" {
                store
                    .record_attempt(&d.decision_id, &d.target, &result)
                    .and_then(|()| store.disable_target(&d.target, "the target answered 410 Gone"))
            } else {
                store.record_attempt(&d.decision_id, &d.target, &result)
            };
            if let Err(e) = recorded {
                tracing::error!(error = %e, id = %d.decision_id, "recording a delivery attempt failed");
            }
        }
        if let Ok((pending, oldest)) = store.pending_deliveries() {
            metrics.deliveries_pending.set(pending as f64);
            let age = oldest.map_or(0.0, |t| {
                ((crate::event::wall_clock_ms() - t).max(0)) as f64 / 1000.0
            });
            metrics.deliveries_oldest_pending_age.set(age);
        }
        if attempted == 0 {
            std::thread::sleep(poll);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn load(dir: &std::path::Path, targets: &str) -> Result<Config, String> {
        let path = dir.join("driftd.toml");
        std::fs::write(&path, targets).unwrap();
        Config::load(&path, &|k| {
            (k == "GH_TOKEN").then(|| "ghp_from_env".to_owned())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn credentials_come_from_files_or_the_environment_and_errors_never_show_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hook.secret"), format!("{SECRET}\n")).unwrap();
        std::fs::write(dir.path().join("gl.token"), "glptt-secret-value\n").unwrap();
        let c = load(
            dir.path(),
            r#"
            [[targets]]
            name = "hook"
            url = "https://ci.example.com/hook"
            secret_file = "hook.secret"
            [[targets]]
            name = "gl"
            kind = "gitlab"
            url = "https://gitlab.example.com/"
            project = "7"
            ref = "main"
            token_file = "gl.token"
            [[targets]]
            name = "gh"
            kind = "github"
            repository = "acme/captioner"
            token_env = "GH_TOKEN"
            "#,
        )
        .unwrap();
        let env = |k: &str| (k == "GH_TOKEN").then(|| "ghp_from_env".to_owned());
        let targets = resolve_targets(&c.targets, &env).unwrap();
        assert_eq!(targets.len(), 3);
        assert!(
            matches!(&targets[1].auth, Auth::Token(t, s) if t == "glptt-secret-value" && s.is_empty())
        );
        assert!(
            matches!(&targets[2].auth, Auth::Token(t, s) if t == "ghp_from_env" && s.is_empty())
        );
        let debug = format!("{targets:?}");
        assert!(!debug.contains("glptt") && !debug.contains("whsec_") && !debug.contains("ghp_"));
        // The GitLab URL lost its trailing slash; GitHub's defaults to the public API.
        assert!(
            matches!(&c.targets[1].kind, TargetKind::Gitlab { url, .. } if url == "https://gitlab.example.com")
        );
        assert!(
            matches!(&c.targets[2].kind, TargetKind::Github { url, .. } if url == "https://api.github.com")
        );

        // A malformed secret in the file: the error names the target, not the value.
        std::fs::write(dir.path().join("hook.secret"), "whsec_not-base64!").unwrap();
        let err = resolve_targets(&c.targets[..1], &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"hook\"") && !err.contains("not-base64"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("gl.token")).unwrap();
        let err = resolve_targets(&c.targets[1..2], &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gl.token") && err.contains("cannot read"),
            "{err}"
        );

        let err = load(
            dir.path(),
            r#"
            [[targets]]
            name = "a"
            url = "https://x"
            secret_env = "S"
            secret_file = "s"
            [[targets]]
            name = "b"
            kind = "github"
            repository = "acme"
            [[targets]]
            name = "c"
            kind = "gitlab"
            url = "gitlab.example.com"
            token_env = "T"
            [[targets]]
            name = "d"
            kind = "kafka"
            [[targets]]
            name = "e"
            kind = "sqs"
            "#,
        )
        .unwrap_err();
        for needle in [
            "targets[0].secret_file: set secret_env or secret_file, not both",
            "targets[1].token_env: a github target needs token_env (an environment variable) or token_file (a file)",
            "targets[1].repository: must be owner/repo, got \"acme\"",
            "targets[2].project: a gitlab target needs project",
            "targets[2].ref: a gitlab target needs ref",
            "targets[2].url: must be an http:// or https:// URL",
            "targets[3].topic: a kafka target needs topic",
            "targets[4].kind: must be webhook, gitlab, github or kafka, got \"sqs\"",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
    }

    #[test]
    fn redirects_are_not_followed_and_retry_after_is_capped() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let elsewhere = Arc::new(AtomicUsize::new(0));
        let (redirecting, parking) = rt.block_on(async {
            let hits = elsewhere.clone();
            let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let other_addr = other.local_addr().unwrap();
            tokio::spawn(async move {
                let app = axum::Router::new().fallback(move || {
                    hits.fetch_add(1, Ordering::SeqCst);
                    async { "got it" }
                });
                axum::serve(other, app).await.unwrap();
            });
            let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let first_addr = first.local_addr().unwrap();
            tokio::spawn(async move {
                let app = axum::Router::new()
                    .route(
                        "/hook",
                        axum::routing::post(move || async move {
                            (
                                axum::http::StatusCode::TEMPORARY_REDIRECT,
                                [("location", format!("http://{other_addr}/steal"))],
                            )
                        }),
                    )
                    .route(
                        "/busy",
                        axum::routing::post(|| async {
                            (
                                axum::http::StatusCode::TOO_MANY_REQUESTS,
                                [("retry-after", "99999999999999")],
                            )
                        }),
                    );
                axum::serve(first, app).await.unwrap();
            });
            let client = http_client().unwrap();
            let redirecting = send_http(
                client
                    .post(format!("http://{first_addr}/hook"))
                    .body("token=secret"),
            )
            .await;
            let parking = send_http(client.post(format!("http://{first_addr}/busy"))).await;
            (redirecting, parking)
        });
        assert!(
            matches!(redirecting, Sent::Status { status: 307, .. }),
            "the 307 is the answer"
        );
        assert_eq!(
            elsewhere.load(Ordering::SeqCst),
            0,
            "nothing went to the other host"
        );
        match parking {
            Sent::Status {
                status: 429,
                retry_after_ms,
            } => assert_eq!(retry_after_ms, Some(MAX_RETRY_AFTER_S * 1000)),
            _ => panic!("429 expected"),
        }
    }

    #[test]
    fn github_payload_keeps_to_ten_keys_and_gitlab_variables_carry_the_event() {
        let decision = serde_json::json!({
            "rule": "promotion", "action": "redeploy", "model": "m", "model_version": "v2",
            "window_index": 4, "window_end": "2026-11-24T00:00:00Z", "samples": 1000,
            "outcome": "fired", "consecutive": 3, "evidence": [], "reason": "candidate v2 beat incumbent v1",
            "versions": {"incumbent": "v1", "candidate": "v2", "deploy": "v2"}
        });
        let e = event_for("dec_1", &decision.to_string(), "/driftd/test").unwrap();
        assert_eq!(e.event_type, "io.driftd.model.redeploy.requested");
        let sent = e.to_body();
        let secrets = vec![Secret::parse(SECRET).unwrap()];
        let signed = Signed::new(&secrets, "dec_1", &sent);
        let now = crate::event::wall_clock_ms() / 1000;
        let verifies = |event: &str, s: &Signed| {
            let key = Secret::parse(SECRET).unwrap();
            super::super::sign::verify(
                &key,
                &s.signature,
                &s.id,
                s.timestamp,
                event.as_bytes(),
                now,
                300,
            )
        };

        // GitHub: at most 10 keys, signed or not; the event as sent verifies.
        for signed in [None, Some(&signed)] {
            let body = github_dispatch(&e, &sent, None, signed);
            let payload = body["client_payload"].as_object().unwrap();
            assert!(payload.len() <= 10, "{payload:?}");
            assert_eq!(payload.contains_key("webhook"), signed.is_some());
        }
        let body = github_dispatch(&e, &sent, None, Some(&signed));
        let payload = &body["client_payload"];
        assert_eq!(body["event_type"], "io.driftd.model.redeploy.requested");
        assert_eq!(payload["versions"]["deploy"], "v2");
        assert_eq!(payload["decision"]["rule"], "promotion");
        let w = &payload["webhook"];
        let back = Signed {
            id: w["id"].as_str().unwrap().to_owned(),
            timestamp: w["timestamp"].as_i64().unwrap(),
            signature: w["signature"].as_str().unwrap().to_owned(),
        };
        assert_eq!(verifies(payload["event"].as_str().unwrap(), &back), Ok(()));
        let forged = payload["event"].as_str().unwrap().replace("v2", "v9");
        assert!(verifies(&forged, &back).is_err(), "a changed event fails");
        assert_eq!(
            github_dispatch(&e, &sent, Some("driftd"), None)["event_type"],
            "driftd"
        );

        // GitLab: DRIFTD_* variables, the signature of DRIFTD_EVENT when signed.
        let extra = [("ENV".to_owned(), "prod".to_owned())]
            .into_iter()
            .collect();
        let vars: std::collections::BTreeMap<String, String> =
            gitlab_variables(&e, &sent, Some(&signed), &extra)
                .into_iter()
                .collect();
        assert_eq!(vars["DRIFTD_EVENT_ID"], "dec_1");
        assert_eq!(vars["DRIFTD_DEPLOY_VERSION"], "v2");
        assert_eq!(vars["DRIFTD_ACTION"], "redeploy");
        assert_eq!(vars["ENV"], "prod");
        let back: CloudEvent = serde_json::from_str(&vars["DRIFTD_EVENT"]).unwrap();
        assert_eq!(back, e);
        let from_vars = Signed {
            id: vars["DRIFTD_WEBHOOK_ID"].clone(),
            timestamp: vars["DRIFTD_WEBHOOK_TIMESTAMP"].parse().unwrap(),
            signature: vars["DRIFTD_WEBHOOK_SIGNATURE"].clone(),
        };
        assert_eq!(verifies(&vars["DRIFTD_EVENT"], &from_vars), Ok(()));
        let unsigned: std::collections::BTreeMap<String, String> =
            gitlab_variables(&e, &sent, None, &extra)
                .into_iter()
                .collect();
        assert!(!unsigned.contains_key("DRIFTD_WEBHOOK_SIGNATURE"));
    }
}
