//! The HTTP server of `driftd run` (axum): `/metrics`, `/healthz`,
//! `/readyz` and the JSON API. It holds no state of its own: it reads the
//! daemon's [`Shared`] view and the state store.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

mod page;
mod serve;

pub use serve::{serve, MAX_CONNECTIONS};

use crate::metrics::Metrics;
use crate::store::{DeliveryTarget, Store};

/// What the daemon publishes for the HTTP server.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub status: RwLock<Status>,
    pub config_loaded: AtomicBool,
    pub store_open: AtomicBool,
    pub partitions_assigned: AtomicUsize,
    pub state_dir: PathBuf,
    /// Bearer token of the write endpoints; unset: they answer 403.
    pub api_token: std::sync::OnceLock<String>,
    /// Bearer token the read endpoints (`/api/...`) require, when set (the
    /// write token is accepted too). `/metrics`, `/healthz`, `/readyz` and
    /// the page itself never need one.
    pub read_token: std::sync::OnceLock<String>,
    /// Requests the consumer thread must carry out (it owns the rules).
    pub commands: std::sync::OnceLock<std::sync::mpsc::Sender<Command>>,
    /// What the consumer knows of its Kafka side beyond the assignment.
    pub kafka: RwLock<KafkaHealth>,
}

/// The Kafka side's problems that do not stop consumption, for `/readyz`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KafkaHealth {
    /// The dead-letter topic, if one is configured.
    pub dead_letter_topic: Option<String>,
    /// `present`, `missing` (rejected events are counted and logged only) or
    /// `unknown` (the broker has not said yet).
    pub dead_letter_topic_state: Option<&'static str>,
    /// What is wrong, in words, one line each.
    pub problems: Vec<String>,
}

/// A request for the consumer thread, answered on `reply`.
pub enum Command {
    /// `POST /api/v1/models/{model}/candidates`.
    RegisterCandidate {
        model: String,
        version: String,
        metadata: serde_json::Value,
        reply: tokio::sync::oneshot::Sender<Result<serde_json::Value, (u16, String)>>,
    },
    /// `POST /api/v1/reload` (and SIGHUP, and a change of the config file).
    Reload {
        reply: Option<tokio::sync::oneshot::Sender<Result<serde_json::Value, Vec<String>>>>,
    },
}

impl Shared {
    pub fn new(metrics: Arc<Metrics>, state_dir: PathBuf) -> Self {
        Self {
            metrics,
            status: RwLock::new(Status::default()),
            config_loaded: AtomicBool::new(false),
            store_open: AtomicBool::new(false),
            partitions_assigned: AtomicUsize::new(0),
            state_dir,
            api_token: std::sync::OnceLock::new(),
            read_token: std::sync::OnceLock::new(),
            commands: std::sync::OnceLock::new(),
            kafka: RwLock::new(KafkaHealth::default()),
        }
    }
}

/// `/api/v1/models`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub models: Vec<ModelStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub model: String,
    /// No events for `signals.silence_after` (wall clock).
    pub silent: bool,
    /// Seconds since this daemon last consumed an event of the model.
    pub seconds_since_last_event: f64,
    pub versions: Vec<crate::monitor::VersionStatus>,
    /// Where the rules stand for the model (absent without rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesStatus>,
    /// The caption-quality estimator (absent when off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimator: Option<EstimatorStatus>,
}

/// The caption-quality estimator of a model: every version kept (the last
/// 50), each with its validation error, and which one is current.
#[derive(Debug, Clone, Serialize)]
pub struct EstimatorStatus {
    pub current: Option<u32>,
    /// Rated captions kept for training.
    pub labelled: usize,
    pub versions: Vec<crate::learned::estimator::EstimatorVersion>,
}

/// The rules' view of a model.
#[derive(Debug, Clone, Serialize)]
pub struct RulesStatus {
    /// The version in production (first seen, or as redeploys and
    /// rollbacks left it).
    pub incumbent: Option<String>,
    /// A registered candidate under comparison.
    pub candidate: Option<CandidateStatus>,
    /// The version the incumbent replaced.
    pub previous: Option<String>,
    /// Judged windows of the incumbent on probation after its redeploy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probation_windows: Option<usize>,
    /// A retrain was decided and no candidate has landed nor has
    /// `actions.retrain_timeout` passed (in the model's event time).
    pub retrain_in_flight: bool,
    /// Event time until which that retrain counts as in flight, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrain_in_flight_until: Option<String>,
}

/// A registered candidate.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateStatus {
    pub version: String,
    pub registered_at: String,
    pub metadata: serde_json::Value,
    /// Its windows judged so far, and how many the promotion rule needs.
    pub windows_judged: usize,
    pub windows_needed: Option<u32>,
}

/// Most windows one API call returns.
pub const MAX_WINDOWS_LIMIT: usize = 1000;

/// Largest request body (a candidate registration is the largest one).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(shared: Arc<Shared>) -> Router {
    // Reads of the store and the status: behind the read token when one is set.
    let reads = Router::new()
        .route("/api/v1/models", get(models))
        .route("/api/v1/models/{model}/windows", get(windows))
        .route("/api/v1/decisions", get(decisions))
        .route("/api/v1/models/{model}", get(model))
        // The same two with the name as a query parameter: a name such as
        // `..` or `a/b` cannot be a path segment (browsers resolve dot
        // segments, `%2e%2e` included, before sending).
        .route("/api/v1/model", get(model_by_query))
        .route("/api/v1/windows", get(windows_by_query))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            require_read_token,
        ));
    Router::new()
        .route("/", get(page::index))
        .route("/ui/app.js", get(page::script))
        .route("/ui/app.css", get(page::style))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(reads)
        .route(
            "/api/v1/models/{model}/candidates",
            axum::routing::post(register_candidate),
        )
        .route("/api/v1/reload", axum::routing::post(reload))
        .route("/api/v1/deliveries", get(deliveries))
        .route(
            "/api/v1/deliveries/{id}/retry",
            axum::routing::post(retry_delivery),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// With a read token configured, the read endpoints need it (or the write
/// token) as a bearer token.
async fn require_read_token(
    State(s): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(read) = s.read_token.get() {
        let given = bearer(req.headers());
        let write = s.api_token.get().map(String::as_str);
        if !(same_secret(given, read) || write.is_some_and(|w| same_secret(given, w))) {
            return error(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (http.read_token_env)".into(),
            );
        }
    }
    next.run(req).await
}

/// The request's bearer token, or "".
fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

/// Constant time: the comparison does not tell how much of it matched.
fn same_secret(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn error(code: StatusCode, message: String) -> Response {
    (code, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            s.metrics.render_openmetrics(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            s.metrics.render_text(),
        )
            .into_response()
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    let config = s.config_loaded.load(Ordering::Relaxed);
    let store = s.store_open.load(Ordering::Relaxed);
    let partitions = s.partitions_assigned.load(Ordering::Relaxed);
    let ready = config && store && partitions > 0;
    let kafka = s.kafka.read().map(|k| k.clone()).unwrap_or_default();
    let body = serde_json::json!({
        "ready": ready,
        "config_loaded": config,
        "state_store_open": store,
        "partitions_assigned": partitions,
        "dead_letter_topic": kafka.dead_letter_topic,
        "dead_letter_topic_state": kafka.dead_letter_topic_state,
        "problems": kafka.problems,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn models(State(s): State<Arc<Shared>>) -> Response {
    let status = s.status.read().map(|g| g.clone()).unwrap_or_default();
    Json(status).into_response()
}

/// The `limit` query parameter: 1 to [`MAX_WINDOWS_LIMIT`], `default` when
/// absent; the error is the response's message.
fn limit(q: &std::collections::HashMap<String, String>, default: usize) -> Result<usize, String> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_WINDOWS_LIMIT).contains(&n) => Ok(n),
            _ => Err(format!(
                "limit must be an integer from 1 to {MAX_WINDOWS_LIMIT}, got {v:?}"
            )),
        },
    }
}

/// The `model` query parameter, if given.
fn model_param(q: &std::collections::HashMap<String, String>) -> Option<String> {
    q.get("model").cloned()
}

fn no_model_param() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "the model query parameter is required".into(),
    )
}

/// `GET /api/v1/windows?model=M&limit=N`: as `/api/v1/models/{model}/windows`.
async fn windows_by_query(
    state: State<Arc<Shared>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    match model_param(&q) {
        Some(model) => windows(state, Path(model), Query(q)).await,
        None => no_model_param(),
    }
}

/// `GET /api/v1/model?model=M`: as `/api/v1/models/{model}`.
async fn model_by_query(
    state: State<Arc<Shared>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    match model_param(&q) {
        Some(m) => model(state, Path(m)).await,
        None => no_model_param(),
    }
}

async fn windows(
    State(s): State<Arc<Shared>>,
    Path(model): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let limit = match limit(&q, 20) {
        Ok(n) => n,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let known = s
        .status
        .read()
        .map(|g| g.models.iter().any(|m| m.model == model))
        .unwrap_or(false);
    let m = model.clone();
    let rows = match read_store(&s, move |st| st.windows(Some(&m), limit)).await {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    if rows.is_empty() && !known {
        return error(StatusCode::NOT_FOUND, format!("no model named {model:?}"));
    }
    // The stored reports are JSON already: splice them into an array.
    let mut body =
        String::with_capacity(rows.iter().map(|r| r.report_json.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&r.report_json);
    }
    body.push(']');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /api/v1/decisions?model=M&outbox=true&limit=N`: the rules' decisions,
/// newest first; `outbox=true` lists only fired decisions not yet delivered.
async fn decisions(
    State(s): State<Arc<Shared>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let limit = match limit(&q, 100) {
        Ok(n) => n,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let outbox = match q.get("outbox").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("outbox must be true or false, got {v:?}"),
            )
        }
    };
    let model = q.get("model").cloned();
    let rows = match read_store(&s, move |st| {
        with_deliveries(st, st.decisions(model.as_deref(), outbox, limit)?)
    })
    .await
    {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    Json(rows.into_iter().map(decision_item).collect::<Vec<_>>()).into_response()
}

/// `GET /api/v1/models/{model}`: the model's versions, silence, the rules'
/// view (retrain in flight) and its last decision, with the evidence.
async fn model(State(s): State<Arc<Shared>>, Path(model): Path<String>) -> Response {
    let status = s
        .status
        .read()
        .ok()
        .and_then(|g| g.models.iter().find(|m| m.model == model).cloned());
    let Some(status) = status else {
        return error(StatusCode::NOT_FOUND, format!("no model named {model:?}"));
    };
    let m = model.clone();
    let last = match read_store(&s, move |st| {
        with_deliveries(st, st.decisions(Some(&m), false, 1)?)
    })
    .await
    {
        Ok(rows) => rows.into_iter().next(),
        Err(r) => return r,
    };
    let mut body = serde_json::to_value(&status).unwrap_or_default();
    body["last_decision"] = last.map_or(serde_json::Value::Null, decision_item);
    Json(body).into_response()
}

/// `None` when the request carries the configured bearer token; else the
/// answer (401 without or with a wrong token, 403 when none is configured).
fn unauthorized(s: &Shared, headers: &axum::http::HeaderMap) -> Option<Response> {
    let Some(token) = s.api_token.get() else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "no API token is configured (http.api_token_env)".into(),
        ));
    };
    (!same_secret(bearer(headers), token)).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required".into(),
        )
    })
}

/// `GET /api/v1/deliveries?state=dead|unknown|pending|sending|delivered&limit=N`
/// (bearer token).
async fn deliveries(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let state = q.get("state").map_or("dead", String::as_str).to_owned();
    if !matches!(
        state.as_str(),
        "dead" | "unknown" | "pending" | "sending" | "delivered"
    ) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("state must be dead, unknown, pending, sending or delivered, got {state:?}"),
        );
    }
    let limit = match limit(&q, 100) {
        Ok(n) => n,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let rows = match read_store(&s, move |st| st.deliveries(&state, limit)).await {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.decision_id,
                "target": r.target,
                "state": r.state,
                "attempts": r.attempts,
                "last_status": r.last_status,
                "last_error": r.last_error,
                "decision": serde_json::from_str::<serde_json::Value>(&r.decision_json)
                    .unwrap_or(serde_json::Value::Null),
            })
        })
        .collect();
    Json(items).into_response()
}

/// `POST /api/v1/deliveries/{id}/retry` (bearer token): a decision's dead
/// and unknown-outcome deliveries are sent again (their targets enabled again).
async fn retry_delivery(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let dir = s.state_dir.clone();
    let i = id.clone();
    let n =
        tokio::task::spawn_blocking(move || Store::open(&dir).and_then(|mut st| st.retry_dead(&i)))
            .await;
    match n {
        Ok(Ok(0)) => error(
            StatusCode::NOT_FOUND,
            format!("no dead or unknown delivery of decision {id:?}"),
        ),
        Ok(Ok(n)) => Json(serde_json::json!({"id": id, "retried": n})).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Hand `make(reply)` to the consumer thread and wait for its answer.
async fn ask<T>(
    s: &Shared,
    make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
) -> Result<T, Response> {
    let Some(tx) = s.commands.get() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is starting".into(),
        ));
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if tx.send(make(reply)).is_err() {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        ));
    }
    answer.await.map_err(|_| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon stopped before answering".into(),
        )
    })
}

/// `POST /api/v1/models/{model}/candidates` (bearer token), body
/// `{"version": "...", "metadata": {...}}`: CI registers a retrained model.
/// The answer comes once the registration is in a durable checkpoint.
async fn register_candidate(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Path(model): Path<String>,
    body: axum::body::Body,
) -> Response {
    // The token first: an unauthenticated body is never read.
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body must be at most {MAX_BODY_BYTES} bytes"),
            )
        }
    };
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be JSON {{\"version\": ..., \"metadata\": {{...}}}}: {e}"),
            )
        }
    };
    let Some(version) = v
        .get("version")
        .and_then(|x| x.as_str())
        .filter(|x| !x.trim().is_empty() && x.len() <= 256)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "\"version\" must be a non-empty string of at most 256 bytes".into(),
        );
    };
    let metadata = v
        .get("metadata")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    if !(metadata.is_null() || metadata.is_object()) {
        return error(
            StatusCode::BAD_REQUEST,
            "\"metadata\" must be an object".into(),
        );
    }
    if metadata.to_string().len() > 16 * 1024 {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "\"metadata\" must be at most 16 KiB of JSON".into(),
        );
    }
    let version = version.to_owned();
    match ask(&s, |reply| Command::RegisterCandidate {
        model,
        version,
        metadata,
        reply,
    })
    .await
    {
        Ok(Ok(body)) => (StatusCode::CREATED, Json(body)).into_response(),
        Ok(Err((code, message))) => error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        ),
        Err(r) => r,
    }
}

/// `POST /api/v1/reload` (bearer token): read the config file again; the
/// answer lists the problems when it is refused.
async fn reload(State(s): State<Arc<Shared>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    match ask(&s, |reply| Command::Reload { reply: Some(reply) }).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(problems)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({
                "error": "the new config is invalid; the running config stays",
                "problems": problems,
            })),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// Run `f` on the store opened read-only, off the async threads; a failure
/// is the response to give (503 for the store, 500 for the task).
async fn read_store<T: Send + 'static>(
    s: &Shared,
    f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let dir = s.state_dir.clone();
    match tokio::task::spawn_blocking(move || Store::open_read_only(&dir).and_then(|st| f(&st)))
        .await
    {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// Each decision with where its deliveries stand, by target.
fn with_deliveries(
    st: &Store,
    rows: Vec<crate::store::StoredDecision>,
) -> Result<Vec<(crate::store::StoredDecision, Vec<DeliveryTarget>)>, crate::store::StoreError> {
    rows.into_iter()
        .map(|r| {
            let targets = st.delivery_targets(&r.id)?;
            Ok((r, targets))
        })
        .collect()
}

/// A stored decision as the API shows it: id, delivery state (overall and
/// per target), the decision.
fn decision_item(
    (r, targets): (crate::store::StoredDecision, Vec<DeliveryTarget>),
) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "delivery": r.delivery,
        "deliveries": targets,
        "decision": serde_json::from_str::<serde_json::Value>(&r.decision_json)
            .unwrap_or(serde_json::Value::Null),
    })
}
