//! The streaming monitor: events in, window reports out. One engine serves
//! `replay` (a file) and, later, `run` (Kafka): decode, route to the model
//! version's state, learn or load its baseline, track the open windows, and
//! evaluate each window against the baseline when it closes.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

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
    pub feedback_events: u64,
    pub feedback_joined: u64,
    pub feedback_late: u64,
    pub feedback_unmatched: u64,
    pub feedback_rejected: u64,
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
    /// Events routed to this version (learning ones included).
    seen: u64,
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
const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: u32,
    states: Vec<&'a VersionState>,
    counters: &'a Counters,
    pending: &'a FxHashMap<String, Pending>,
    expired: &'a std::collections::VecDeque<String>,
    estimators: &'a BTreeMap<String, Estimator>,
}

#[derive(Deserialize)]
struct SnapshotOwned {
    states: Vec<VersionState>,
    counters: Counters,
    #[serde(default)]
    pending: FxHashMap<String, Pending>,
    #[serde(default)]
    expired: std::collections::VecDeque<String>,
    #[serde(default)]
    estimators: BTreeMap<String, Estimator>,
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
    vocab: Vocabulary,
    profiles: BTreeMap<String, Profile>,
    states: BTreeMap<(String, String), VersionState>,
    pub counters: Counters,
    /// Inference events awaiting feedback, by event id.
    pending: FxHashMap<String, Pending>,
    /// Ids dropped unjoined (bounded), oldest first, and as a set.
    expired: std::collections::VecDeque<String>,
    expired_set: rustc_hash::FxHashSet<String>,
    /// Frozen CIDEr-D document frequencies (JSON), if configured.
    document_frequencies: Option<String>,
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
            vocab,
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
        self.document_frequencies = Some(json);
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
        let Some(p) = self.pending.remove(&fb.event_id) else {
            return Ok(if self.expired_set.contains(&fb.event_id) {
                self.counters.feedback_late += 1;
                FeedbackOutcome::Late
            } else {
                self.counters.feedback_unmatched += 1;
                FeedbackOutcome::Unmatched
            });
        };
        self.counters.feedback_joined += 1;
        let max_scored = self.config.feedback.max_scored_per_window;
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
            if !fb.references.is_empty() {
                t.with_references += 1;
                if t.scored.len() < max_scored {
                    t.scored.push((caption, fb.references));
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
        if self.pending.contains_key(&id) {
            return;
        }
        state.awaiting.push_back((ts, id.clone()));
        self.pending.insert(
            id,
            Pending {
                model: key.0.clone(),
                version: key.1.clone(),
                caption,
                clip,
                confidence,
            },
        );
        let horizon = state.newest_ms.saturating_sub(fc.ttl_ms);
        while let Some((front_ts, _)) = state.awaiting.front() {
            let over = state.awaiting.len() > fc.max_pending || self.pending.len() > fc.max_pending;
            if !(over || *front_ts < horizon) {
                break;
            }
            let (_, old) = state.awaiting.pop_front().expect("front exists");
            if self.pending.remove(&old).is_some() {
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
            Ok(e) => Ok(self.observe(e)),
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
    /// tracked: memory and metric labels stay bounded.
    fn admit<'a>(&self, e: InferenceEvent<'a>) -> Result<InferenceEvent<'a>, Rejection> {
        let known = |m: &str| self.states.keys().any(|(k, _)| k == m);
        if self.states.len() < self.config.max_models || known(&e.model) {
            return Ok(e);
        }
        let models: std::collections::BTreeSet<&str> =
            self.states.keys().map(|(m, _)| m.as_str()).collect();
        if models.len() < self.config.max_models {
            return Ok(e);
        }
        Err(Rejection::new(
            RejectReason::TooManyModels,
            format!(
                "model {:?} would be model {} of at most {} (limits.max_models)",
                e.model,
                models.len() + 1,
                self.config.max_models
            ),
        ))
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
                    Some(s) => EventSample::from_dataset(s, seed),
                    None => EventSample::new(0, seed),
                }),
                None => Some(EventSample::new(learned.sample_size, seed)),
            };
            let baseline = match self.profiles.get(&key.0) {
                Some(p) => Baseline::Ready {
                    features: p.features.clone(),
                    source: BaselineSource::Profile,
                },
                None => Baseline::Learning {
                    collectors: BTreeMap::new(),
                    events: 0,
                },
            };
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
                    seen: 0,
                    newest_ms: i64::MIN,
                    awaiting: Default::default(),
                    carry: FeedbackTracker::default(),
                    reference,
                },
            );
        }
        let learn_events = self.config.learn_events;
        let state = self.states.get_mut(key).expect("inserted above");
        state.seen += 1;
        state.newest_ms = state.newest_ms.max(event.timestamp_ms);
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
                for (name, c) in std::mem::take(collectors) {
                    // A feature with no usable value in the learning events
                    // (or mixed kinds) cannot be monitored; it is left out.
                    if let Some(p) = c.finish().ok().as_ref().and_then(FeatureProfile::from_data) {
                        features.insert(name, p);
                    }
                }
                state.baseline = Baseline::Ready {
                    features,
                    source: BaselineSource::Learned,
                };
            }
            return Vec::new();
        }
        let window_spec = self.config.windows;
        let ts = event.timestamp_ms;
        // Which window the event belongs to, or late.
        let start = match window_spec {
            WindowSpec::Time { size_ms, .. } => ts.div_euclid(size_ms) * size_ms,
            WindowSpec::Count { .. } => state.open.keys().next().copied().unwrap_or(ts),
        };
        let mut closed = Vec::new();
        let mut tracked_clip = None;
        if matches!(window_spec, WindowSpec::Time { .. }) && start <= state.closed_through_ms {
            state.late_pending += 1;
            self.counters.late_events += 1;
        } else {
            let Baseline::Ready { features, .. } = &state.baseline else {
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
                        WindowSpec::Time { size_ms, .. } => start + size_ms,
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
                };
                *next_index += 1;
                w
            });
            let estimate = match self.estimating {
                true => self.estimators.get(&key.0).and_then(Estimator::model),
                false => None,
            };
            tracked_clip = Some(track(window, &event, features, &self.vocab, estimate));
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
        if let WindowSpec::Time {
            allowed_lateness_ms,
            ..
        } = window_spec
        {
            let watermark = state.max_event_ms.saturating_sub(allowed_lateness_ms);
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
        let state = self.states.get_mut(key).expect("state exists");
        w.signals.late_events += std::mem::take(&mut state.late_pending);
        let (features, source) = match &state.baseline {
            Baseline::Ready { features, source } => (features, *source),
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
        let learned_job = match (&state.reference, w.sample.take()) {
            (Some(reference), Some(current)) => Some(Box::new(LearnedJob {
                seed: sample_seed(&mc.learned, model, &state.version, w.index),
                settings: mc.learned.clone(),
                columns: features
                    .iter()
                    .filter(|(_, p)| p.is_plain_number())
                    .map(|(k, _)| k.clone())
                    .collect(),
                reference: reference.events().to_vec(),
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
            drift: DriftReport::new(reports, mc.dataset_drift_share),
            captions: {
                let mut c = w.captions.report();
                let f = &w.feedback;
                c.feedback_joined = f.joined;
                c.rating_mean = (f.rating.count > 0).then_some(f.rating.mean);
                c.references_scored = f.scored.len() as u64;
                c.references_unscored = f.with_references - f.scored.len() as u64;
                if !f.scored.is_empty() {
                    let inputs: Vec<crate::quality::CaptionInput> = f
                        .scored
                        .iter()
                        .enumerate()
                        .map(|(i, (cand, refs))| crate::quality::CaptionInput {
                            id: i.to_string(),
                            candidate: cand.clone(),
                            references: refs.clone(),
                            ..Default::default()
                        })
                        .collect();
                    let df = match &self.document_frequencies {
                        Some(j) => crate::quality::DfSource::Frozen(j),
                        None => crate::quality::DfSource::ScoredSet,
                    };
                    // The frozen table was checked when it was set.
                    if let Ok(scores) = crate::quality::score_set(&inputs, &self.vocab, df) {
                        c.references = Some(scores.corpus.reference);
                    }
                }
                c
            },
            signals: w.signals.report(),
            learned: None,
            estimator,
            learned_job,
        };
        if !self.defer_learned {
            report.run_learned();
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
    /// counters) as bytes, for a checkpoint. Restoring it with
    /// [`Engine::restore`] and feeding the same events gives the same windows
    /// as if the engine had never stopped. CBOR keeps every `f64` bit for bit
    /// (NaN and infinities included), which JSON cannot.
    pub fn snapshot(&self) -> Vec<u8> {
        let snap = SnapshotRef {
            format: SNAPSHOT_FORMAT,
            states: self.states.values().collect(),
            counters: &self.counters,
            pending: &self.pending,
            expired: &self.expired,
            estimators: &self.estimators,
        };
        let mut out = Vec::with_capacity(64 * 1024);
        ciborium::into_writer(&snap, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Replace the engine's state with a [`Engine::snapshot`].
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        // The format first: a snapshot of another layout is refused by name
        // rather than with whatever field it lacks.
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head =
            ciborium::from_reader(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        if head.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format(head.format));
        }
        let snap: SnapshotOwned =
            ciborium::from_reader(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        self.states = snap
            .states
            .into_iter()
            .map(|s| ((s.model.clone(), s.version.clone()), s))
            .collect();
        self.counters = snap.counters;
        self.pending = snap.pending;
        self.expired_set = snap.expired.iter().cloned().collect();
        self.expired = snap.expired;
        self.estimators = snap.estimators;
        Ok(())
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
    baseline: &BTreeMap<String, FeatureProfile>,
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
    let mut values = e.features.iter().peekable();
    for ((name, t), p) in w.features.iter_mut().zip(baseline.values()) {
        while values
            .next_if(|(n, _)| crate::event::cmp_short(n, name).is_lt())
            .is_some()
        {}
        match values.next_if(|(n, _)| crate::event::eq_short(n, name)) {
            Some((_, v)) => t.observe(v, p),
            None => t.observe(&FeatureValue::Null, p),
        }
    }
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
