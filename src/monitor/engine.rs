//! The streaming monitor: events in, window reports out. One engine serves
//! `replay` (a file) and, later, `run` (Kafka): decode, route to the model
//! version's state, learn or load its baseline, track the open windows, and
//! evaluate each window against the baseline when it closes.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::bounds::{self, Shed, Truncations};
use super::clock::{self, Admit, EventClock};
use super::data_quality::{DataQualityReport, NewFeatures};
use super::evaluate::{decide, DriftReport};
use super::tracker::{CaptionTracker, CaptionWindow, FeatureTracker, SignalTracker, SignalWindow};
use crate::baseline::{Collector, FeatureProfile, Profile};
use crate::config::{Config, WindowSpec};
use crate::event::{Decoder, FeatureValue, InferenceEvent, RejectReason, Rejection};
use crate::learned::estimator::{self, Estimator, EstimatorVersion, LinearModel};
use crate::learned::window::sample_seed;
use crate::learned::{EventSample, LearnedJob, LearnedReport};
use crate::quality::{clip, Vocabulary};

/// Model version used when events carry none.
pub const UNVERSIONED: &str = "unversioned";

/// A window's position: event-time bounds or its index in a count-based series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowBounds {
    /// 0-based index of the window in its model version's series.
    pub index: u64,
    /// Event time of the window's start (time windows) or first event (count windows), RFC 3339.
    pub start: String,
    /// Event time of the window's end (exclusive) or last event, RFC 3339.
    pub end: String,
}

/// Everything driftd says about one closed window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowReport {
    pub model: String,
    pub model_version: String,
    pub window: WindowBounds,
    /// `profile` or `learned` (from the version's first events).
    pub baseline: &'static str,
    pub drift: DriftReport,
    pub captions: CaptionWindow,
    pub signals: SignalWindow,
    /// Missing, wrong-typed, unseen and out-of-range values, absent and new
    /// features (`[data_quality]`).
    pub data_quality: DataQualityReport,
    /// The learned checks, when the model has them on (`[learned]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<LearnedReport>,
    /// The caption-quality estimator, when the model has it on (`[estimator]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimator: Option<EstimatorWindow>,
    /// The learned checks still to run, when the engine defers them
    /// ([`Engine::defer_learned`]); [`WindowReport::run_learned`] runs them.
    #[serde(skip)]
    pub learned_job: Option<Box<LearnedJob>>,
    /// The joined captions' reference metrics still to compute, deferred
    /// with the learned checks; [`WindowReport::run_deferred`] runs both.
    #[serde(skip)]
    pub scoring_job: Option<Box<ScoringJob>>,
}

/// Scoring a window's joined captions against their references, as
/// pycocoevalcap does over that set.
#[derive(Debug, Clone)]
pub struct ScoringJob {
    captions: Vec<(String, Vec<String>)>,
    vocab: std::sync::Arc<Vocabulary>,
    document_frequencies: Option<std::sync::Arc<str>>,
}

impl PartialEq for ScoringJob {
    fn eq(&self, other: &Self) -> bool {
        self.captions == other.captions && self.document_frequencies == other.document_frequencies
    }
}

impl ScoringJob {
    pub fn run(self) -> Option<crate::quality::ReferenceScores> {
        let inputs: Vec<crate::quality::CaptionInput> = self
            .captions
            .into_iter()
            .enumerate()
            .map(
                |(i, (candidate, references))| crate::quality::CaptionInput {
                    id: i.to_string(),
                    candidate,
                    references,
                    ..Default::default()
                },
            )
            .collect();
        let df = match &self.document_frequencies {
            Some(j) => crate::quality::DfSource::Frozen(j),
            None => crate::quality::DfSource::ScoredSet,
        };
        // The frozen table was checked when it was set.
        crate::quality::score_set(&inputs, &self.vocab, df)
            .ok()
            .map(|s| s.corpus.reference)
    }
}

/// The caption-quality estimator in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimatorWindow {
    /// The current version when the window closed (none before the first).
    pub version: Option<u32>,
    pub training_samples: Option<usize>,
    /// The current version's RMSE on its held-out ratings.
    pub validation_rmse: Option<f64>,
    /// Rated captions kept for training.
    pub labelled: usize,
    /// Mean predicted rating of the window's captions (successful calls),
    /// by the version current as each was seen.
    pub predicted_mean: Option<f64>,
    pub predicted_captions: u64,
    /// Versions trained since the model's previous window closed, accepted
    /// or not, with their validation error.
    pub trained: Vec<EstimatorVersion>,
}

impl WindowReport {
    /// Run the deferred learned checks, if any, filling `learned`.
    pub fn run_learned(&mut self) {
        if let Some(job) = self.learned_job.take() {
            self.learned = Some(job.run());
        }
    }

    /// Run the deferred reference metrics, if any, filling
    /// `captions.references`.
    pub fn run_scoring(&mut self) {
        if let Some(job) = self.scoring_job.take() {
            self.captions.references = job.run();
        }
    }

    /// Run everything deferred.
    pub fn run_deferred(&mut self) {
        self.run_scoring();
        self.run_learned();
    }

    /// Whether work is still to run ([`WindowReport::run_deferred`]).
    pub fn has_deferred(&self) -> bool {
        self.learned_job.is_some() || self.scoring_job.is_some()
    }
}

/// Counters over the engine's life.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub events: u64,
    /// Rejected events by [`RejectReason`] name.
    pub rejected: BTreeMap<String, u64>,
    pub learned: u64,
    pub windows: u64,
    pub late_events: u64,
    /// Events held back by a version's clock (stamped far ahead of it).
    #[serde(default)]
    pub future_events: u64,
    pub feedback_events: u64,
    pub feedback_joined: u64,
    pub feedback_late: u64,
    pub feedback_unmatched: u64,
    pub feedback_rejected: u64,
    /// Items kept shorter than they came.
    #[serde(default)]
    pub truncated: Truncations,
    /// State dropped to stay within `limits.max_state_bytes`.
    #[serde(default)]
    pub shed: Shed,
    /// Versions replaced by newer ones beyond `limits.max_versions_per_model`.
    #[serde(default)]
    pub versions_evicted: u64,
}

#[derive(Serialize, Deserialize)]
struct Window {
    index: u64,
    start_ms: i64,
    end_ms: i64,
    features: BTreeMap<String, FeatureTracker>,
    captions: CaptionTracker,
    signals: SignalTracker,
    feedback: FeedbackTracker,
    /// Events sampled for the learned checks (when on).
    #[serde(default)]
    sample: Option<EventSample>,
    /// The estimator's predicted rating of each caption (when on).
    #[serde(default)]
    predicted: crate::sketch::Moments,
    /// Features of the events that the baseline lacks.
    #[serde(default)]
    new_features: NewFeatures,
}

/// Feedback joined while a window was open.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FeedbackTracker {
    joined: u64,
    rating: crate::sketch::Moments,
    /// Captions with references, scored when the window closes (at most
    /// `feedback.max_scored_per_window`).
    scored: Vec<(String, Vec<String>)>,
    with_references: u64,
}

/// An inference event waiting for its feedback.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    model: String,
    version: String,
    caption: String,
    /// What the quality estimator learns from besides the caption.
    #[serde(default)]
    clip: Option<f64>,
    #[serde(default)]
    confidence: Option<f64>,
}

/// What became of a feedback event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackOutcome {
    /// Joined to its inference event.
    Joined,
    /// Its inference event waited longer than `feedback.ttl` and was dropped.
    Late,
    /// No inference event with its id is known (never seen, or too long ago).
    Unmatched,
}

/// Ids of inference events dropped unjoined, remembered to tell late feedback
/// from unmatched feedback.
const EXPIRED_MEMORY: usize = 65_536;

#[derive(Serialize, Deserialize)]
enum Baseline {
    Learning {
        collectors: BTreeMap<String, Collector>,
        events: u64,
    },
    Ready {
        features: BTreeMap<String, FeatureProfile>,
        source: BaselineSource,
        /// Features the learning events had but could not be profiled (no
        /// usable value, or mixed kinds): known, so never "new".
        #[serde(default)]
        unprofiled: BTreeSet<String>,
    },
}

/// Where a model version's baseline came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    /// A reference profile file (`models.<name>.baseline`).
    Profile,
    /// The version's first `baseline.learn_events` events.
    Learned,
}

impl BaselineSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Learned => "learned",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct VersionState {
    model: String,
    version: String,
    baseline: Baseline,
    /// Open windows by start (time) or the single open window (count).
    open: BTreeMap<i64, Window>,
    next_index: u64,
    max_event_ms: i64,
    /// Start of the newest window already closed: earlier events are late.
    closed_through_ms: i64,
    late_pending: u64,
    /// The event-time clock whose watermark closes time windows.
    #[serde(default)]
    clock: EventClock,
    /// Events held back by the clock since the last window closed.
    #[serde(default)]
    future_pending: u64,
    /// Events routed to this version (learning ones included).
    seen: u64,
    /// The engine's event sequence number at this version's last event.
    #[serde(default)]
    last_seq: u64,
    /// Event time of the newest of them.
    newest_ms: i64,
    /// Inference events awaiting feedback, oldest first: (event time, id).
    awaiting: std::collections::VecDeque<(i64, String)>,
    /// Feedback joined while no window was open; goes to the next window.
    carry: FeedbackTracker,
    /// The learned checks' reference: events sampled while the baseline was
    /// learned (when they are on).
    #[serde(default)]
    reference: Option<EventSample>,
}

/// Where one model version stands (for the status API).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionStatus {
    pub model: String,
    pub model_version: String,
    /// `profile`, `learned` or `learning`.
    pub baseline: &'static str,
    /// Events learned so far while `learning`.
    pub learned_events: u64,
    /// Events routed to this version.
    pub events: u64,
    pub open_windows: usize,
    /// Event time of the newest event, RFC 3339.
    pub newest_event_time: Option<String>,
    #[serde(skip)]
    pub newest_event_ms: Option<i64>,
}

/// Version of the snapshot layout; bumped when it changes incompatibly.
/// Format 1 held every version in one value; format 2 holds one part per
/// version beside the rest. Format 1 is still read.
const SNAPSHOT_FORMAT: u32 = 2;

/// What the core part of a snapshot holds (format 2): everything but the
/// versions.
#[derive(Serialize)]
struct CoreRef<'a> {
    format: u32,
    counters: &'a Counters,
    pending: &'a FxHashMap<String, Pending>,
    expired: &'a std::collections::VecDeque<String>,
    estimators: &'a BTreeMap<String, Estimator>,
}

#[derive(Deserialize)]
struct CoreOwned {
    #[serde(default)]
    states: Vec<VersionState>,
    counters: Counters,
    #[serde(default)]
    pending: FxHashMap<String, Pending>,
    #[serde(default)]
    expired: std::collections::VecDeque<String>,
    #[serde(default)]
    estimators: BTreeMap<String, Estimator>,
}

/// The engine's state for a checkpoint, in parts: one per model version (its
/// baseline, open windows and clock) and the rest. No part holds more than
/// `limits.max_state_bytes`, far below the store's largest value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub core: Vec<u8>,
    pub versions: Vec<VersionPart>,
}

/// One model version's part of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionPart {
    pub model: String,
    pub version: String,
    pub state: Vec<u8>,
}

impl Snapshot {
    /// All parts as one value (for tests and single-file copies).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(&(&self.core, &self.versions), &mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// The parts of [`Snapshot::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let (core, versions): (Vec<u8>, Vec<VersionPart>) =
            ciborium::from_reader(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        Ok(Self { core, versions })
    }

    /// Bytes in all parts.
    pub fn len(&self) -> usize {
        self.core.len() + self.versions.iter().map(|v| v.state.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A checkpointed engine state that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("engine snapshot is unreadable: {0}")]
    Decode(String),
    #[error("engine snapshot has format {0}; this driftd reads format {SNAPSHOT_FORMAT}")]
    Format(u32),
}

/// The streaming monitor.
pub struct Engine {
    config: Config,
    decoder: Decoder,
    vocab: std::sync::Arc<Vocabulary>,
    profiles: BTreeMap<String, Profile>,
    states: BTreeMap<(String, String), VersionState>,
    pub counters: Counters,
    /// Inference events awaiting feedback, by event id.
    pending: FxHashMap<String, Pending>,
    /// Ids dropped unjoined (bounded), oldest first, and as a set.
    expired: std::collections::VecDeque<String>,
    expired_set: rustc_hash::FxHashSet<String>,
    /// Frozen CIDEr-D document frequencies (JSON), if configured.
    document_frequencies: Option<std::sync::Arc<str>>,
    /// The last event's (model, version), kept to route the next one
    /// without allocating.
    hot_key: Option<(String, String)>,
    /// Remember inference events for the feedback join (off unless there
    /// is feedback to join: the pending set costs memory).
    join_feedback: bool,
    /// Leave the learned checks to the caller ([`WindowReport::run_learned`]).
    defer_learned: bool,
    /// Caption-quality estimators by model.
    estimators: BTreeMap<String, Estimator>,
    /// Some model has the estimator on (else no caption is predicted).
    estimating: bool,
    /// Bytes held by `pending` (as [`pending_cost`] counts them).
    pending_bytes: usize,
    /// Versions with state, per model: routing an event asks this, never
    /// the states themselves (a model may have thousands of versions).
    versions_of: FxHashMap<String, usize>,
    /// Versions per model that hold a role in the training loop (incumbent,
    /// candidate, previous): never evicted.
    protected: FxHashMap<String, Vec<String>>,
    /// Events routed so far: a version's last one tells how idle it is.
    seq: u64,
    /// Windows closed early by an eviction, handed out with the next result.
    evicted: Vec<WindowReport>,
}

/// Bytes an inference event waiting for feedback holds: its strings and
/// the map's and queue's share of it.
fn pending_cost(id: &str, p: &Pending) -> usize {
    2 * id.len() + p.caption.len() + p.model.len() + p.version.len() + 128
}

/// Epoch milliseconds as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

impl Engine {
    /// `profiles`: reference profiles by model name (from `models.<name>.baseline`).
    /// Take a reloaded config. Only settings read when a window closes
    /// (drift methods and thresholds, the dataset drift share) may differ
    /// from the running ones; the daemon refuses a reload that changes
    /// anything else. Window state is kept.
    pub fn reconfigure(&mut self, config: Config) {
        self.estimating = estimating(&config);
        self.config = config;
    }

    pub fn new(config: Config, vocab: Vocabulary, profiles: BTreeMap<String, Profile>) -> Self {
        let decoder = Decoder::new(&config);
        let estimating = estimating(&config);
        for (model, p) in &profiles {
            if p.sample.is_none() && config.model(model).learned.enabled {
                tracing::warn!(model = %model,
                    "the model's profile has no reference sample: its learned checks are skipped; rebuild it with `driftd baseline`");
            }
        }
        Self {
            config,
            decoder,
            vocab: std::sync::Arc::new(vocab),
            profiles,
            states: BTreeMap::new(),
            counters: Counters::default(),
            pending: FxHashMap::default(),
            expired: Default::default(),
            expired_set: Default::default(),
            document_frequencies: None,
            join_feedback: false,
            hot_key: None,
            defer_learned: false,
            estimators: BTreeMap::new(),
            estimating,
            pending_bytes: 0,
            versions_of: FxHashMap::default(),
            protected: FxHashMap::default(),
            seq: 0,
            evicted: Vec::new(),
        }
    }

    /// The versions of `model` holding a role in the training loop; they
    /// are never evicted to make room for a new version.
    pub fn protect(&mut self, model: &str, versions: Vec<String>) {
        if versions.is_empty() {
            self.protected.remove(model);
        } else {
            self.protected.insert(model.to_owned(), versions);
        }
    }

    /// Return closed windows with their learned checks still to run
    /// ([`WindowReport::learned_job`]) instead of running them in
    /// [`Engine::process`]: the daemon runs them on a worker thread so the
    /// consumer never waits for them.
    pub fn defer_learned(&mut self, on: bool) {
        self.defer_learned = on;
    }

    /// Keep inference events for the feedback join (`kafka.feedback_topic`).
    pub fn join_feedback(&mut self, on: bool) {
        self.join_feedback = on;
    }

    /// Score joined captions' CIDEr-D with these frozen document frequencies
    /// (the JSON of `driftd score-captions --write-df`) instead of each
    /// window's own references.
    pub fn set_document_frequencies(&mut self, json: String) -> Result<(), String> {
        crate::quality::score_set(&[], &self.vocab, crate::quality::DfSource::Frozen(&json))?;
        self.document_frequencies = Some(json.into());
        Ok(())
    }

    /// Feed one feedback event: join it to its inference event by id. The
    /// scores land in the model version's newest open window.
    pub fn process_feedback(&mut self, bytes: &[u8]) -> Result<FeedbackOutcome, Rejection> {
        let fb = match self.decoder.decode_feedback(bytes) {
            Ok(f) => f,
            Err(r) => {
                self.counters.feedback_rejected += 1;
                return Err(r);
            }
        };
        self.counters.feedback_events += 1;
        let id = bounds::storage_id(&fb.event_id);
        let Some(p) = self.pending.remove(id.as_ref()) else {
            return Ok(if self.expired_set.contains(id.as_ref()) {
                self.counters.feedback_late += 1;
                FeedbackOutcome::Late
            } else {
                self.counters.feedback_unmatched += 1;
                FeedbackOutcome::Unmatched
            });
        };
        self.pending_bytes = self
            .pending_bytes
            .saturating_sub(pending_cost(id.as_ref(), &p));
        self.counters.feedback_joined += 1;
        let max_scored = self.config.feedback.max_scored_per_window;
        let mut references = fb.references;
        if references.len() > bounds::MAX_REFERENCES {
            self.counters.truncated.references +=
                (references.len() - bounds::MAX_REFERENCES) as u64;
            references.truncate(bounds::MAX_REFERENCES);
        }
        for r in &mut references {
            if bounds::cut_text(r) {
                self.counters.truncated.references += 1;
            }
        }
        let Pending {
            model,
            version,
            caption,
            clip,
            confidence,
        } = p;
        let key = (model, version);
        let rating = fb.rating.filter(|r| r.is_finite());
        let es = self.config.estimator_for(&key.0);
        if let (true, Some(rating)) = (es.enabled, rating) {
            let facts = crate::quality::CaptionFacts::of(&caption, &self.vocab);
            let x = estimator::inputs(&facts.descriptors, clip, confidence);
            let now = self.states.get(&key).map_or(0, |s| s.newest_ms);
            let e = self.estimators.entry(key.0.clone()).or_default();
            if let Some(v) = e.add(
                estimator::Example {
                    x: x.to_vec(),
                    rating,
                },
                now,
                es,
            ) {
                tracing::info!(model = %key.0, version = v.version, accepted = v.accepted,
                    validation_rmse = v.validation_rmse, samples = v.training_samples,
                    "quality estimator trained");
            }
        }
        if let Some(state) = self.states.get_mut(&key) {
            let t = match state.open.values_mut().next_back() {
                Some(w) => &mut w.feedback,
                None => &mut state.carry,
            };
            t.joined += 1;
            if let Some(r) = rating {
                t.rating.push(r);
            }
            if !references.is_empty() {
                t.with_references += 1;
                if t.scored.len() < max_scored {
                    t.scored.push((caption, references));
                }
            }
        }
        Ok(FeedbackOutcome::Joined)
    }

    /// Remember an inference event for the feedback join, dropping the
    /// version's events older than the TTL or beyond the cap.
    fn await_feedback(
        &mut self,
        key: &(String, String),
        id: String,
        ts: i64,
        (caption, clip, confidence): (String, Option<f64>, Option<f64>),
    ) {
        let fc = self.config.feedback;
        let Some(state) = self.states.get_mut(key) else {
            return;
        };
        let id = match bounds::storage_id(&id) {
            std::borrow::Cow::Borrowed(_) => id,
            std::borrow::Cow::Owned(short) => {
                self.counters.truncated.event_ids += 1;
                short
            }
        };
        if self.pending.contains_key(&id) {
            return;
        }
        let mut caption = caption;
        if bounds::cut_text(&mut caption) {
            self.counters.truncated.captions += 1;
        }
        let p = Pending {
            model: key.0.clone(),
            version: key.1.clone(),
            caption,
            clip,
            confidence,
        };
        self.pending_bytes += pending_cost(&id, &p);
        state.awaiting.push_back((ts, id.clone()));
        self.pending.insert(id, p);
        let horizon = state.newest_ms.saturating_sub(fc.ttl_ms);
        while let Some((front_ts, _)) = state.awaiting.front() {
            let over = state.awaiting.len() > fc.max_pending
                || self.pending.len() > fc.max_pending
                || self.pending_bytes > fc.max_pending_bytes;
            if !(over || *front_ts < horizon) {
                break;
            }
            let (_, old) = state.awaiting.pop_front().expect("front exists");
            if let Some(gone) = self.pending.remove(&old) {
                self.pending_bytes = self.pending_bytes.saturating_sub(pending_cost(&old, &gone));
                if self.expired.len() >= EXPIRED_MEMORY {
                    if let Some(gone) = self.expired.pop_front() {
                        self.expired_set.remove(&gone);
                    }
                }
                self.expired_set.insert(old.clone());
                self.expired.push_back(old);
            }
        }
    }

    /// Feed one raw event. Returns the windows it closed (time windows close as
    /// the watermark passes them; count windows when full).
    pub fn process(&mut self, bytes: &[u8]) -> Result<Vec<WindowReport>, Rejection> {
        let decoded = self.decoder.decode_inference(bytes);
        self.process_decoded(decoded)
    }

    /// The decoder this engine uses. Decoding is pure, so callers may decode
    /// on other threads and hand the results to [`Engine::process_decoded`]
    /// in order.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Feed one event decoded (or rejected) by [`Engine::decoder`].
    pub fn process_decoded(
        &mut self,
        decoded: Result<InferenceEvent<'_>, Rejection>,
    ) -> Result<Vec<WindowReport>, Rejection> {
        self.counters.events += 1;
        let decoded = decoded.and_then(|e| self.admit(e));
        match decoded {
            Ok(e) => {
                let mut closed = self.observe(e);
                if !self.evicted.is_empty() {
                    let mut early = std::mem::take(&mut self.evicted);
                    early.append(&mut closed);
                    closed = early;
                }
                Ok(closed)
            }
            Err(r) => {
                *self
                    .counters
                    .rejected
                    .entry(r.reason.as_str().to_owned())
                    .or_default() += 1;
                Err(r)
            }
        }
    }

    /// Refuse an event of a new model once `limits.max_models` models are
    /// tracked: memory and metric labels stay bounded. A new version beyond
    /// `limits.max_versions_per_model` takes the place of the model's
    /// version seen least recently that holds no role; with none to replace,
    /// the event is refused. Constant time whatever the number of versions.
    fn admit<'a>(&mut self, e: InferenceEvent<'a>) -> Result<InferenceEvent<'a>, Rejection> {
        let version = e.model_version.as_deref().unwrap_or(UNVERSIONED);
        let hot = self
            .hot_key
            .as_ref()
            .is_some_and(|k| k.0 == e.model && k.1 == version);
        if hot {
            return Ok(e);
        }
        let Some(&versions) = self.versions_of.get(e.model.as_ref()) else {
            if self.versions_of.len() < self.config.max_models {
                return Ok(e);
            }
            return Err(Rejection::new(
                RejectReason::TooManyModels,
                format!(
                    "model {:?} would be model {} of at most {} (limits.max_models)",
                    e.model,
                    self.versions_of.len() + 1,
                    self.config.max_models
                ),
            ));
        };
        let cap = self.config.max_versions_per_model;
        if versions < cap
            || self
                .states
                .contains_key(&(e.model.to_string(), version.to_owned()))
        {
            return Ok(e);
        }
        match self.idlest_unprotected(&e.model) {
            Some(v) => {
                let key = (e.model.to_string(), v);
                tracing::info!(model = %key.0, evicted = %key.1, new = %version,
                    "version cap reached: the version seen least recently gives way (limits.max_versions_per_model)");
                self.counters.versions_evicted += 1;
                let reports = self.evict(&key);
                self.evicted.extend(reports);
                Ok(e)
            }
            None => Err(Rejection::new(
                RejectReason::TooManyVersions,
                format!(
                    "model {:?} has {versions} versions (limits.max_versions_per_model), each an incumbent, candidate or previous version; version {:?} is refused",
                    e.model, version
                ),
            )),
        }
    }

    /// The version of `model` seen least recently that holds no role.
    fn idlest_unprotected(&self, model: &str) -> Option<String> {
        let protected = self.protected.get(model);
        self.states
            .range((model.to_owned(), String::new())..)
            .take_while(|((m, _), _)| m == model)
            .filter(|((_, v), _)| !protected.is_some_and(|p| p.contains(v)))
            .min_by_key(|(_, s)| s.last_seq)
            .map(|((_, v), _)| v.clone())
    }

    /// Drop a version's state, closing its open windows (reported as they
    /// stand). Its stored history is the store's and stays.
    fn evict(&mut self, key: &(String, String)) -> Vec<WindowReport> {
        let Some(state) = self.states.get_mut(key) else {
            return Vec::new();
        };
        let windows: Vec<Window> = std::mem::take(&mut state.open).into_values().collect();
        let model = key.0.clone();
        let reports: Vec<WindowReport> = windows
            .into_iter()
            .map(|w| self.report(key, &model, w))
            .collect();
        if let Some(state) = self.states.remove(key) {
            for (_, id) in state.awaiting {
                if let Some(p) = self.pending.remove(&id) {
                    self.pending_bytes = self.pending_bytes.saturating_sub(pending_cost(&id, &p));
                }
            }
        }
        if let Some(n) = self.versions_of.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.versions_of.remove(&key.0);
            }
        }
        if self.hot_key.as_ref() == Some(key) {
            self.hot_key = None;
        }
        reports
    }

    /// Count a rejection found before decoding (e.g. by the source).
    pub fn reject(&mut self, reason: RejectReason) {
        self.counters.events += 1;
        *self
            .counters
            .rejected
            .entry(reason.as_str().to_owned())
            .or_default() += 1;
    }

    fn observe(&mut self, event: InferenceEvent<'_>) -> Vec<WindowReport> {
        let version = event.model_version.as_deref().unwrap_or(UNVERSIONED);
        // The previous event's key, reused without allocating when this event
        // has the same model and version (the common case).
        let key = match self.hot_key.take() {
            Some(k) if k.0 == event.model && k.1 == version => k,
            _ => (event.model.to_string(), version.to_owned()),
        };
        let closed = self.observe_keyed(&key, event);
        self.hot_key = Some(key);
        closed
    }

    fn observe_keyed(
        &mut self,
        key: &(String, String),
        event: InferenceEvent<'_>,
    ) -> Vec<WindowReport> {
        if !self.states.contains_key(key) {
            // The learned checks' reference: the profile's sample, or the
            // events the baseline is learned from.
            let learned = self.config.model(&key.0).learned;
            let seed = sample_seed(&learned, &key.0, &key.1, u64::MAX);
            let reference = match self.profiles.get(&key.0) {
                _ if !learned.enabled => None,
                // A profile without one (written before driftd 0.1's learned
                // checks) gives an empty reference: the checks say so.
                Some(p) => Some(match &p.sample {
                    Some(s) => EventSample::from_dataset(s, learned.reference_size, seed),
                    None => EventSample::new(0, seed),
                }),
                None => Some(EventSample::new(learned.reference_size, seed)),
            };
            let baseline = match self.profiles.get(&key.0) {
                Some(p) => Baseline::Ready {
                    features: p.features.clone(),
                    source: BaselineSource::Profile,
                    unprofiled: BTreeSet::new(),
                },
                None => Baseline::Learning {
                    collectors: BTreeMap::new(),
                    events: 0,
                },
            };
            *self.versions_of.entry(key.0.clone()).or_default() += 1;
            self.states.insert(
                key.clone(),
                VersionState {
                    model: key.0.clone(),
                    version: key.1.clone(),
                    baseline,
                    open: BTreeMap::new(),
                    next_index: 0,
                    max_event_ms: i64::MIN,
                    closed_through_ms: i64::MIN,
                    late_pending: 0,
                    clock: EventClock::default(),
                    future_pending: 0,
                    seen: 0,
                    last_seq: 0,
                    newest_ms: i64::MIN,
                    awaiting: Default::default(),
                    carry: FeedbackTracker::default(),
                    reference,
                },
            );
        }
        let learn_events = self.config.learn_events;
        let window_spec = self.config.windows;
        let tolerance = match window_spec {
            WindowSpec::Time { size_ms, .. } => clock::tolerance_ms(size_ms),
            WindowSpec::Count { .. } => clock::MIN_TOLERANCE_MS,
        };
        let state = self.states.get_mut(key).expect("inserted above");
        state.seen += 1;
        self.seq += 1;
        state.last_seq = self.seq;
        let admitted = state.clock.admit(event.timestamp_ms, tolerance);
        state.newest_ms = state.clock.newest().unwrap_or(i64::MIN);
        if let Baseline::Learning { collectors, events } = &mut state.baseline {
            if let Some(r) = &mut state.reference {
                r.observe(&event);
            }
            let mc = self.config.model(&state.model);
            let max_features = self.config.max_features;
            for (name, value) in &event.features {
                let name: &str = name;
                if collectors.len() >= max_features && !collectors.contains_key(name) {
                    continue;
                }
                let kind = mc.features.get(name).and_then(|f| f.kind);
                let c = collectors.entry(name.to_owned()).or_insert_with(|| {
                    // A feature first seen late was missing in the events before.
                    let mut c = Collector::new(kind);
                    for _ in 0..*events {
                        c.push_null();
                    }
                    c
                });
                match value {
                    FeatureValue::Number(x) => c.push_number(*x),
                    FeatureValue::Category(s) => c.push_category(s),
                    FeatureValue::Vector(v) => c.push_vector(v),
                    FeatureValue::Null => c.push_null(),
                }
            }
            *events += 1;
            for c in collectors.values_mut() {
                while c.len() < *events {
                    c.push_null();
                }
            }
            self.counters.learned += 1;
            if *events >= learn_events {
                let mut features = BTreeMap::new();
                let mut unprofiled = BTreeSet::new();
                for (name, c) in std::mem::take(collectors) {
                    // A feature with no usable value in the learning events
                    // (or mixed kinds) cannot be monitored; it is left out.
                    match c.finish().ok().as_ref().and_then(FeatureProfile::from_data) {
                        Some(p) => {
                            features.insert(name, p);
                        }
                        None => {
                            unprofiled.insert(name);
                        }
                    }
                }
                state.baseline = Baseline::Ready {
                    features,
                    source: BaselineSource::Learned,
                    unprofiled,
                };
            }
            return Vec::new();
        }
        let ts = event.timestamp_ms;
        if let (Admit::Ahead, WindowSpec::Time { .. }) = (admitted, window_spec) {
            // Held back: counted in the window open now, never tracked.
            state.future_pending += 1;
            self.counters.future_events += 1;
            return Vec::new();
        }
        // Which window the event belongs to, or late.
        let start = match window_spec {
            WindowSpec::Time { size_ms, .. } => ts.div_euclid(size_ms).saturating_mul(size_ms),
            WindowSpec::Count { .. } => state.open.keys().next().copied().unwrap_or(ts),
        };
        let mut closed = Vec::new();
        let mut tracked_clip = None;
        if matches!(window_spec, WindowSpec::Time { .. }) && start <= state.closed_through_ms {
            state.late_pending += 1;
            self.counters.late_events += 1;
        } else {
            let Baseline::Ready {
                features,
                unprofiled,
                ..
            } = &state.baseline
            else {
                unreachable!("learning returned above")
            };
            let next_index = &mut state.next_index;
            let carry = &mut state.carry;
            let sampled = state.reference.is_some();
            let config = &self.config;
            let window = state.open.entry(start).or_insert_with(|| {
                let sample = sampled.then(|| {
                    let l = config.model(&key.0).learned;
                    let seed = sample_seed(&l, &key.0, &key.1, *next_index);
                    EventSample::new(l.sample_size, seed)
                });
                let w = Window {
                    index: *next_index,
                    start_ms: start,
                    end_ms: match window_spec {
                        WindowSpec::Time { size_ms, .. } => start.saturating_add(size_ms),
                        WindowSpec::Count { .. } => ts,
                    },
                    features: features
                        .iter()
                        .map(|(k, p)| (k.clone(), FeatureTracker::for_profile(p)))
                        .collect(),
                    captions: CaptionTracker::default(),
                    signals: SignalTracker::default(),
                    feedback: std::mem::take(carry),
                    sample,
                    predicted: Default::default(),
                    new_features: NewFeatures::default(),
                };
                *next_index += 1;
                w
            });
            let estimate = match self.estimating {
                true => self.estimators.get(&key.0).and_then(Estimator::model),
                false => None,
            };
            let baseline = (features, unprofiled);
            tracked_clip = Some(track(window, &event, baseline, &self.vocab, estimate));
            if let Some(s) = &mut window.sample {
                s.observe(&event);
            }
            if let WindowSpec::Count { .. } = window_spec {
                window.end_ms = window.end_ms.max(ts);
            }
            if let WindowSpec::Count { events } = window_spec {
                if window.signals.events >= events {
                    let w = state.open.remove(&start).expect("present");
                    closed.push(w);
                }
            }
        }
        state.max_event_ms = state.max_event_ms.max(ts);
        if let (
            WindowSpec::Time {
                allowed_lateness_ms,
                ..
            },
            Some(now),
        ) = (window_spec, state.clock.now())
        {
            if admitted == Admit::Settled {
                // Windows opened by the first events before the clock was
                // set, far ahead of where it now stands, were premature:
                // their events are counted as held back.
                let limit = now.saturating_add(tolerance);
                let premature: Vec<i64> = state
                    .open
                    .range(limit.saturating_add(1)..)
                    .map(|(&s, _)| s)
                    .collect();
                for s in premature {
                    if let Some(w) = state.open.remove(&s) {
                        state.future_pending += w.signals.events;
                        self.counters.future_events += w.signals.events;
                    }
                }
            }
            let watermark = now.saturating_sub(allowed_lateness_ms);
            let due: Vec<i64> = state
                .open
                .iter()
                .filter(|(_, w)| w.end_ms <= watermark)
                .map(|(&s, _)| s)
                .collect();
            for s in due {
                closed.push(state.open.remove(&s).expect("present"));
                state.closed_through_ms = state.closed_through_ms.max(s);
            }
        }
        if self.join_feedback && event.error.is_none() && !event.event_id.is_empty() {
            if let Some(caption) = caption_of(&event).map(str::to_owned) {
                // The CLIPScore as tracked (late events were not).
                let clip = tracked_clip.unwrap_or_else(|| clip_of(&event));
                let facts = (caption, clip, confidence_of(&event));
                self.await_feedback(key, event.event_id.into_owned(), ts, facts);
            }
        }
        closed
            .into_iter()
            .map(|w| self.report(key, &key.0, w))
            .collect()
    }

    fn report(&mut self, key: &(String, String), model: &str, mut w: Window) -> WindowReport {
        // Kept here: the window's captions move into the scoring job below.
        let scored_captions = std::mem::take(&mut w.feedback.scored);
        let state = self.states.get_mut(key).expect("state exists");
        w.signals.late_events += std::mem::take(&mut state.late_pending);
        w.signals.future_events += std::mem::take(&mut state.future_pending);
        let (features, source) = match &state.baseline {
            Baseline::Ready {
                features, source, ..
            } => (features, *source),
            Baseline::Learning { .. } => {
                unreachable!("windows open only after the baseline is ready")
            }
        };
        let mc = self.config.model(model);
        let mut reports = Vec::new();
        for (name, tracker) in &w.features {
            let Some(profile) = features.get(name) else {
                continue;
            };
            let Some(comparison) = tracker.compare(profile) else {
                continue;
            };
            let derived = match profile {
                FeatureProfile::Numeric(p) if p.source != crate::config::FeatureKind::Numeric => {
                    Some(p.source)
                }
                _ => None,
            };
            let fc = mc.features.get(name).cloned().unwrap_or_default();
            if let Ok(r) = decide(
                name,
                comparison,
                tracker.counts(),
                derived,
                &fc,
                &self.config.drift,
            ) {
                reports.push(r);
            }
        }
        self.counters.windows += 1;
        let estimator = mc.estimator.enabled.then(|| {
            let e = self.estimators.entry(model.to_owned()).or_default();
            if let Some(v) = e.tick(w.end_ms, &mc.estimator) {
                tracing::info!(
                    model,
                    version = v.version,
                    accepted = v.accepted,
                    validation_rmse = v.validation_rmse,
                    "quality estimator trained on schedule"
                );
            }
            let current = e.current();
            EstimatorWindow {
                version: current.map(|v| v.version),
                training_samples: current.map(|v| v.training_samples),
                validation_rmse: current.map(|v| v.validation_rmse),
                labelled: e.labelled(),
                predicted_mean: (w.predicted.count > 0).then_some(w.predicted.mean),
                predicted_captions: w.predicted.count,
                trained: e.take_fresh(),
            }
        });
        let seed = sample_seed(&mc.learned, model, &state.version, w.index);
        let learned_job = match (&state.reference, w.sample.take()) {
            (Some(reference), Some(current)) => Some(Box::new(LearnedJob {
                seed,
                // The window's draw of the reference, on a stream of its own.
                reference: reference.draw(mc.learned.sample_size, !seed),
                settings: mc.learned.clone(),
                columns: features
                    .iter()
                    .filter(|(_, p)| p.is_plain_number())
                    .map(|(k, _)| k.clone())
                    .collect(),
                reference_seen: reference.seen(),
                current_seen: current.seen(),
                current: current.into_events(),
            })),
            _ => None,
        };
        let mut report = WindowReport {
            model: state.model.clone(),
            model_version: state.version.clone(),
            window: WindowBounds {
                index: w.index,
                start: rfc3339(w.start_ms),
                end: rfc3339(w.end_ms),
            },
            baseline: source.as_str(),
            drift: {
                let mut d = DriftReport::new(reports, mc.dataset_drift_share);
                // The largest `min_samples` of the rules that read drift
                // verdicts for this model (none: every window is judged).
                let min_samples = self
                    .config
                    .rules
                    .iter()
                    .filter(|r| r.model.as_deref().is_none_or(|m| m == model))
                    .filter(|r| r.when.reads_drift())
                    .map(|r| r.min_samples)
                    .max()
                    .unwrap_or(0);
                d.dataset.require(w.signals.events, min_samples);
                d
            },
            captions: {
                let mut c = w.captions.report();
                let f = &w.feedback;
                c.feedback_joined = f.joined;
                c.rating_mean = (f.rating.count > 0).then_some(f.rating.mean);
                c.references_scored = scored_captions.len() as u64;
                c.references_unscored = f
                    .with_references
                    .saturating_sub(scored_captions.len() as u64);
                c
            },
            data_quality: super::data_quality::assess(
                w.signals.events,
                &w.features,
                features,
                &w.new_features,
                &mc.data_quality,
            ),
            signals: w.signals.report(),
            learned: None,
            estimator,
            learned_job,
            // BLEU, ROUGE-L and CIDEr-D of the joined captions: up to
            // `feedback.max_scored_per_window` of them, so off the
            // consumer's thread when the learned checks are.
            scoring_job: (!scored_captions.is_empty()).then(|| {
                Box::new(ScoringJob {
                    captions: scored_captions,
                    vocab: self.vocab.clone(),
                    document_frequencies: self.document_frequencies.clone(),
                })
            }),
        };
        if !self.defer_learned {
            report.run_deferred();
        }
        report
    }

    /// Close every open window (end of input or shutdown), oldest first.
    pub fn finish(&mut self) -> Vec<WindowReport> {
        let mut out = Vec::new();
        let keys: Vec<(String, String)> = self.states.keys().cloned().collect();
        for key in keys {
            let state = self.states.get_mut(&key).expect("listed");
            let windows: Vec<Window> = std::mem::take(&mut state.open).into_values().collect();
            let model = state.model.clone();
            for w in windows {
                out.push(self.report(&key, &model, w));
            }
        }
        out
    }

    /// The engine's whole state (open windows, baselines, learning buffers,
    /// counters) for a checkpoint. Restoring it with [`Engine::restore`] and
    /// feeding the same events gives the same windows as if the engine had
    /// never stopped. CBOR keeps every `f64` bit for bit (NaN and infinities
    /// included), which JSON cannot. When the state is beyond
    /// `limits.max_state_bytes`, state is shed first (see [`Shed`]).
    pub fn snapshot(&mut self) -> Snapshot {
        let mut snap = self.encode();
        let budget = self.config.max_state_bytes;
        // What is shed is measured in memory, the budget in encoded bytes:
        // shed with a margin, and again while it is not enough.
        for _ in 0..8 {
            if snap.len() <= budget {
                break;
            }
            self.shed(snap.len() - budget + budget / 16, &snap);
            snap = self.encode();
        }
        snap
    }

    fn encode(&self) -> Snapshot {
        let core = CoreRef {
            format: SNAPSHOT_FORMAT,
            counters: &self.counters,
            pending: &self.pending,
            expired: &self.expired,
            estimators: &self.estimators,
        };
        let mut out = Vec::with_capacity(16 * 1024);
        ciborium::into_writer(&core, &mut out).expect("writing to a Vec cannot fail");
        let versions = self
            .states
            .values()
            .map(|st| {
                let mut state = Vec::with_capacity(16 * 1024);
                ciborium::into_writer(st, &mut state).expect("writing to a Vec cannot fail");
                VersionPart {
                    model: st.model.clone(),
                    version: st.version.clone(),
                    state,
                }
            })
            .collect();
        Snapshot {
            core: out,
            versions,
        }
    }

    /// Drop state worth `excess` bytes, in the order [`Shed`] lists.
    fn shed(&mut self, excess: usize, snap: &Snapshot) {
        tracing::warn!(
            state_bytes = snap.len(),
            budget = self.config.max_state_bytes,
            "the window state is beyond limits.max_state_bytes; shedding"
        );
        let mut freed = 0usize;
        // Feedback waiting for its join, oldest first in each version.
        let keys: Vec<(String, String)> = self.states.keys().cloned().collect();
        'pending: for key in &keys {
            while let Some((_, id)) = self
                .states
                .get_mut(key)
                .and_then(|s| s.awaiting.pop_front())
            {
                if let Some(p) = self.pending.remove(&id) {
                    freed += pending_cost(&id, &p);
                    self.pending_bytes = self.pending_bytes.saturating_sub(pending_cost(&id, &p));
                    self.counters.shed.pending_feedback += 1;
                }
                if freed >= excess {
                    break 'pending;
                }
            }
        }
        if freed >= excess {
            return;
        }
        // Joined captions waiting to be scored, then the learned samples.
        for st in self.states.values_mut() {
            for t in st
                .open
                .values_mut()
                .map(|w| &mut w.feedback)
                .chain([&mut st.carry])
            {
                let n = t.scored.len();
                freed += t
                    .scored
                    .iter()
                    .map(|(c, r)| c.len() + r.iter().map(String::len).sum::<usize>())
                    .sum::<usize>();
                self.counters.shed.scored_captions += n as u64;
                t.scored.clear();
            }
        }
        if freed >= excess {
            return;
        }
        for st in self.states.values_mut() {
            for w in st.open.values_mut() {
                if w.sample.take().is_some() {
                    self.counters.shed.learned_samples += 1;
                }
            }
        }
        // Whole versions, the idlest first, never one with a role.
        let mut sizes: Vec<(u64, (String, String), usize)> = snap
            .versions
            .iter()
            .filter_map(|p| {
                let key = (p.model.clone(), p.version.clone());
                let st = self.states.get(&key)?;
                let protected = self
                    .protected
                    .get(&p.model)
                    .is_some_and(|v| v.contains(&p.version));
                (!protected).then_some((st.last_seq, key, p.state.len()))
            })
            .collect();
        sizes.sort_by_key(|(seq, ..)| *seq);
        let total: usize = self.encode().len();
        let budget = self.config.max_state_bytes;
        let mut now = total;
        for (_, key, size) in sizes {
            if now <= budget {
                break;
            }
            let reports = self.evict(&key);
            self.evicted.extend(reports);
            self.counters.shed.versions += 1;
            now = now.saturating_sub(size);
        }
    }

    /// Windows closed early by versions shed from the state since the last
    /// call (they come out of [`Engine::process`] otherwise).
    pub fn take_evicted(&mut self) -> Vec<WindowReport> {
        std::mem::take(&mut self.evicted)
    }

    /// Replace the engine's state with a [`Engine::snapshot`].
    pub fn restore(&mut self, snap: &Snapshot) -> Result<(), SnapshotError> {
        // The format first: a snapshot of another layout is refused by name
        // rather than with whatever field it lacks.
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head = ciborium::from_reader(snap.core.as_slice())
            .map_err(|e| SnapshotError::Decode(e.to_string()))?;
        if head.format != SNAPSHOT_FORMAT && head.format != 1 {
            return Err(SnapshotError::Format(head.format));
        }
        let core: CoreOwned = ciborium::from_reader(snap.core.as_slice())
            .map_err(|e| SnapshotError::Decode(e.to_string()))?;
        let mut states = core.states;
        for part in &snap.versions {
            let st: VersionState = ciborium::from_reader(part.state.as_slice()).map_err(|e| {
                SnapshotError::Decode(format!(
                    "version {:?} of model {:?}: {e}",
                    part.version, part.model
                ))
            })?;
            states.push(st);
        }
        self.states = states
            .into_iter()
            .map(|s| ((s.model.clone(), s.version.clone()), s))
            .collect();
        self.versions_of.clear();
        for (m, _) in self.states.keys() {
            *self.versions_of.entry(m.clone()).or_default() += 1;
        }
        self.seq = self.states.values().map(|s| s.last_seq).max().unwrap_or(0);
        self.counters = core.counters;
        self.pending_bytes = core.pending.iter().map(|(id, p)| pending_cost(id, p)).sum();
        self.pending = core.pending;
        self.expired_set = core.expired.iter().cloned().collect();
        self.expired = core.expired;
        self.estimators = core.estimators;
        self.hot_key = None;
        Ok(())
    }

    /// [`Engine::restore`] from a format-1 snapshot (one value) or the
    /// bytes of [`Snapshot::to_bytes`].
    pub fn restore_bytes(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        // A format-1 value is the core itself.
        if let Ok(head) = ciborium::from_reader::<Head, _>(bytes) {
            if head.format != 1 {
                return Err(SnapshotError::Format(head.format));
            }
            return self.restore(&Snapshot {
                core: bytes.to_vec(),
                versions: Vec::new(),
            });
        }
        self.restore(&Snapshot::from_bytes(bytes)?)
    }

    /// Every model version with state, in (model, version) order.
    pub fn versions(&self) -> Vec<VersionStatus> {
        self.states
            .values()
            .map(|s| {
                let (baseline, learned_events) = match &s.baseline {
                    Baseline::Learning { events, .. } => ("learning", *events),
                    Baseline::Ready { source, .. } => (source.as_str(), 0),
                };
                VersionStatus {
                    model: s.model.clone(),
                    model_version: s.version.clone(),
                    baseline,
                    learned_events,
                    events: s.seen,
                    open_windows: s.open.len(),
                    newest_event_time: (s.newest_ms != i64::MIN).then(|| rfc3339(s.newest_ms)),
                    newest_event_ms: (s.newest_ms != i64::MIN).then_some(s.newest_ms),
                }
            })
            .collect()
    }

    /// The caption-quality estimator of `model`, once it has a rating.
    pub fn estimator(&self, model: &str) -> Option<&Estimator> {
        self.estimators.get(model)
    }

    /// Model versions still learning their baseline, with events learned so far.
    pub fn learning(&self) -> Vec<(String, String, u64)> {
        self.states
            .values()
            .filter_map(|s| match &s.baseline {
                Baseline::Learning { events, .. } => {
                    Some((s.model.clone(), s.version.clone(), *events))
                }
                Baseline::Ready { .. } => None,
            })
            .collect()
    }
}

/// Whether any model has the caption-quality estimator on.
fn estimating(config: &Config) -> bool {
    config.estimator.enabled || config.models.values().any(|m| m.estimator.enabled)
}

/// CLIPScore of an event's `image` and `caption` embeddings, if both exist.
fn clip_of(e: &InferenceEvent<'_>) -> Option<f64> {
    let emb = |name: &str| {
        e.embeddings
            .iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_slice())
    };
    clip::clip_score(emb("image")?, emb("caption")?)
}

/// The model's confidence: `prediction.confidence`, if a number.
fn confidence_of(e: &InferenceEvent<'_>) -> Option<f64> {
    e.prediction
        .iter()
        .find(|(k, _)| k == "confidence")
        .and_then(|(_, v)| match v {
            FeatureValue::Number(x) => Some(*x),
            _ => None,
        })
}

/// The caption of an event: its `prediction.caption` string, if any.
fn caption_of<'e>(e: &'e InferenceEvent<'_>) -> Option<&'e str> {
    e.prediction
        .iter()
        .find(|(k, _)| k == "caption")
        .and_then(|(_, v)| match v {
            FeatureValue::Category(s) => Some(s.as_ref()),
            _ => None,
        })
}

/// Describe the event's caption ahead of [`Engine::process_decoded`], on
/// another thread: the engine then only adds the figures up. The caption is
/// the one the engine would describe (`prediction.caption` of a successful
/// call), so the window reports are the same either way.
pub fn prepare(e: &mut InferenceEvent<'_>, vocab: &Vocabulary) {
    if e.error.is_some() {
        return;
    }
    if let Some(c) = caption_of(e) {
        e.caption_facts = Some(crate::quality::CaptionFacts::of(c, vocab));
    }
}

fn track(
    w: &mut Window,
    e: &InferenceEvent<'_>,
    (baseline, unprofiled): (&BTreeMap<String, FeatureProfile>, &BTreeSet<String>),
    vocab: &Vocabulary,
    estimate: Option<&LinearModel>,
) -> Option<f64> {
    w.signals.events += 1;
    if e.error.is_some() {
        w.signals.errors += 1;
    }
    if let Some(l) = e.latency_ms {
        w.signals.latency.push(l);
    }
    // Trackers were made from the baseline, so both maps have the same keys in
    // the same order, and the event's features are sorted by name too: one
    // merge pass matches them (a baseline feature the event lacks is missing).
    // Features the baseline lacks are passed over, and counted when they
    // have a value (a configured path the event lacks comes as null).
    let mut values = e.features.iter().peekable();
    let new = &mut w.new_features;
    let mut any_new = false;
    let mut note = |n: &str, v: &FeatureValue<'_>| {
        if !matches!(v, FeatureValue::Null) && !unprofiled.contains(n) {
            new.name(n);
            any_new = true;
        }
    };
    for ((name, t), p) in w.features.iter_mut().zip(baseline.values()) {
        while let Some((n, v)) = values.next_if(|(n, _)| crate::event::cmp_short(n, name).is_lt()) {
            note(n, v);
        }
        match values.next_if(|(n, _)| crate::event::eq_short(n, name)) {
            Some((_, v)) => t.observe(v, p),
            None => t.observe(&FeatureValue::Null, p),
        }
    }
    for (n, v) in values {
        note(n, v);
    }
    new.events += u64::from(any_new);
    if e.error.is_none() {
        let caption = caption_of(e);
        let clip = clip_of(e);
        match caption {
            Some(c) => {
                if c.trim().is_empty() {
                    w.signals.empty_captions += 1;
                }
                let owned;
                let facts = match &e.caption_facts {
                    Some(f) => f,
                    None => {
                        owned = crate::quality::CaptionFacts::of(c, vocab);
                        &owned
                    }
                };
                w.captions.observe_facts(facts, clip);
                if let Some(m) = estimate {
                    let x = estimator::inputs(&facts.descriptors, clip, confidence_of(e));
                    w.predicted.push(m.predict(&x));
                }
            }
            None => w.signals.empty_captions += 1,
        }
        return clip;
    }
    None
}
