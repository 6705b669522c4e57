//! The delivery worker: sends the outbox (fired decisions, one delivery per
//! target) as signed CloudEvents, and records every attempt in the store.
//!
//! - The body is a CloudEvents 1.0 structured-mode event whose `id` is the
//!   decision id; the Standard Webhooks `webhook-id` is the same id on every
//!   retry, so receivers deduplicate.
//! - 2xx: delivered. 408, 429, 5xx, connection errors and timeouts: retried
//!   with exponential backoff and full jitter, never sooner than a
//!   `Retry-After` of seconds. 410 Gone: the target is disabled and its
//!   pending deliveries are dead. Other 4xx, and `max_attempts` exhausted:
//!   dead.
//! - The outbox is in the state store, so deliveries survive restarts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::event::{Action as EventAction, CloudEvent, CONTENT_TYPE};
use super::sign::{signature_header, Secret};
use crate::config::TargetConfig;
use crate::metrics::Metrics;
use crate::rules::Action;
use crate::store::{Attempt, DueDelivery, Store};

/// A target with its secrets read.
pub struct Target {
    pub config: TargetConfig,
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.config.name)
            .field("url", &self.config.url)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Read each target's secrets from its environment variable (several,
/// space-separated, during a rotation). A missing or malformed secret is an
/// error naming the variable, never its value.
pub fn resolve_targets(
    targets: &[TargetConfig],
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<Target>> {
    targets
        .iter()
        .map(|t| {
            let text = env(&t.secret_env)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "targets {:?}: environment variable {} (its webhook secret) is not set",
                        t.name,
                        t.secret_env
                    )
                })?;
            let secrets = text
                .split_whitespace()
                .map(Secret::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("targets {:?}: {}: {e}", t.name, t.secret_env))?;
            Ok(Target {
                config: t.clone(),
                secrets,
            })
        })
        .collect()
}

fn event_action(a: Action) -> EventAction {
    match a {
        Action::Retrain => EventAction::Retrain,
        Action::Redeploy => EventAction::Redeploy,
        Action::Rollback => EventAction::Rollback,
        Action::Notify => EventAction::Notify,
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

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
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
    let ts = now_ms() / 1000;
    let signature = signature_header(&target.secrets, &d.decision_id, ts, &body);
    let t = &target.config;
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
                next_attempt_ms: now_ms() + backoff_ms(t, d.attempts, retry_after, rng) as i64,
            }
        }
    };
    let sent = client
        .post(&t.url)
        .timeout(Duration::from_millis(t.timeout_ms))
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header("webhook-id", &d.decision_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| s.saturating_mul(1000));
            match status {
                200..=299 => Attempt::Delivered { status },
                408 | 429 | 500..=599 => {
                    retry(Some(status), format!("HTTP {status}"), retry_after, rng)
                }
                _ => Attempt::Dead {
                    status: Some(status),
                    error: format!("HTTP {status}"),
                },
            }
        }
        // No answer: connect errors, timeouts (the receiver deduplicates by
        // webhook-id, so sending again is safe for webhook targets).
        Err(e) => retry(None, format!("{e}"), None, rng),
    }
}

/// Send due deliveries until `stop`; polls the outbox every `poll`.
pub fn run(
    state_dir: std::path::PathBuf,
    targets: Vec<Target>,
    source: String,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    poll: Duration,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut store = Store::open(&state_dir)?;
    let client = reqwest::Client::builder().build()?;
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15 ^ now_ms() as u64;
    while !stop.load(Ordering::Relaxed) {
        let due = match store.due_deliveries(now_ms(), 64) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "reading the outbox failed; retrying");
                Vec::new()
            }
        };
        let mut attempted = 0;
        for d in &due {
            let Some(target) = targets.iter().find(|t| t.config.name == d.target) else {
                // A target removed from the config: its deliveries wait.
                continue;
            };
            attempted += 1;
            let result = rt.block_on(attempt(&client, target, d, &source, &mut rng));
            let outcome = match &result {
                Attempt::Delivered { .. } => "delivered",
                Attempt::Retry { .. } => "retry",
                Attempt::Dead {
                    status: Some(410), ..
                } => "gone",
                Attempt::Dead { .. } => "dead",
            };
            metrics
                .delivery_attempts
                .get_or_create(&vec![
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
        if let Ok((pending, _)) = store.pending_deliveries() {
            metrics.deliveries_pending.set(pending as f64);
        }
        if attempted == 0 {
            std::thread::sleep(poll);
        }
    }
    Ok(())
}
