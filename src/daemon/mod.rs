//! `driftd run`: Kafka in, windows evaluated, checkpoints in the state store,
//! offsets committed after them, metrics and the JSON API over HTTP.
//!
//! One thread consumes and evaluates (the engine is single-threaded and the
//! broker, not the engine, limits the rate); a small tokio runtime serves
//! HTTP and waits for SIGTERM / ctrl-c.
//!
//! Delivery: the engine's state, the next offsets and the windows closed
//! since the last checkpoint are written in one SQLite transaction; dead
//! letters are flushed to the broker before it, and offsets are committed to
//! the group after it. After a crash the consumer resumes at the group's
//! committed offsets, which never run ahead of the checkpoint, and skips
//! events the checkpoint already holds, so every window result equals an
//! uninterrupted run's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::CommitMode;

use crate::baseline::Profile;
use crate::config::Config;
use crate::http::{Command, ModelStatus, Shared, Status};
use crate::metrics::Metrics;
use crate::monitor::engine::FeedbackOutcome;
use crate::monitor::{Engine, WindowReport};
use crate::quality::Vocabulary;
use crate::source::kafka::{DeadLetter, KafkaSource};
use crate::store::{DecisionBatch, Offsets, Store, StoredDecision, StoredWindow};

mod worker;

/// Options of `driftd run` beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Shut down (checkpoint, commit, exit 0) once partitions are assigned and
    /// no event has arrived for this long: for batch jobs and tests.
    pub exit_when_idle: Option<Duration>,
    /// Set from outside to stop as on SIGTERM (the demo uses it).
    pub stop: Option<Arc<AtomicBool>>,
    /// The config file: reloaded on SIGHUP, on `POST /api/v1/reload` and
    /// when it changes. Without it there is nothing to reload.
    pub config_path: Option<std::path::PathBuf>,
}

/// How often the config file is checked for a change.
const CONFIG_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Longest wait between a window closing and the checkpoint that publishes it.
const WINDOW_PUBLISH_DELAY: Duration = Duration::from_secs(1);

/// Wait after a failed checkpoint before the next try.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(1);

/// Tries of the checkpoint at shutdown before driftd exits with an error.
const FINAL_CHECKPOINT_TRIES: u32 = 3;

/// How long one poll waits; bounds the latency of shutdown and the clock.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Run until SIGTERM / ctrl-c (or idle, with `exit_when_idle`).
pub fn run(
    config: Config,
    vocab: Vocabulary,
    profiles: BTreeMap<String, Profile>,
    opts: RunOptions,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let shared = Arc::new(Shared::new(
        metrics.clone(),
        config.daemon.state_dir.clone(),
    ));
    shared.config_loaded.store(true, Ordering::Relaxed);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("driftd-http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let stop = opts.stop.clone().unwrap_or_default();
    {
        let stop = stop.clone();
        rt.spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            stop.store(true, Ordering::SeqCst);
        });
    }
    let (commands, inbox) = std::sync::mpsc::channel::<Command>();
    let _ = shared.commands.set(commands.clone());
    #[cfg(unix)]
    {
        let commands = commands.clone();
        rt.spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the config");
                if commands.send(Command::Reload { reply: None }).is_err() {
                    break;
                }
            }
        });
    }
    metrics.config_last_reload_successful.set(1.0);
    metrics.config_last_reload_success_time.set(wall_seconds());
    let addr: SocketAddr = config
        .daemon
        .http_listen
        .parse()
        .with_context(|| format!("http.listen {:?}", config.daemon.http_listen))?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(%local, "HTTP server listening");
    {
        let app = crate::http::router(shared.clone());
        // The runtime's shutdown at exit ends it.
        rt.spawn(crate::http::serve(listener, app, std::future::pending()));
    }

    let mut store = Store::open(&config.daemon.state_dir)?;
    let mut engine = Engine::new(config.clone(), vocab, profiles);
    engine.join_feedback(config.kafka.feedback_topic.is_some());
    // Learned checks run on their own thread, never on the consumer's.
    engine.defer_learned(true);
    let learned = {
        let m = metrics.clone();
        worker::Worker::start("driftd-learned", move |mut w: WindowReport| {
            // The reference metrics first (cheap but unbounded by the
            // learned checks' settings), then the learned checks.
            w.run_scoring();
            if let Some(job) = w.learned_job.take() {
                let started = Instant::now();
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run())) {
                    Ok(r) => w.learned = Some(r),
                    Err(_) => {
                        m.learned_failures.inc();
                        tracing::error!(model = %w.model, version = %w.model_version,
                            window = w.window.index,
                            "the learned checks failed; the window is reported without them");
                    }
                }
                m.learned_duration.observe(started.elapsed().as_secs_f64());
            }
            w
        })
        .context("starting the learned-checks thread")?
    };
    if let Some(path) = &config.quality.document_frequencies {
        let json = std::fs::read_to_string(path)
            .with_context(|| format!("quality.document_frequencies {}", path.display()))?;
        engine
            .set_document_frequencies(json)
            .map_err(|e| anyhow::anyhow!("quality.document_frequencies {}: {e}", path.display()))?;
    }
    let mut offsets = Offsets::new();
    if let Some(cp) = store.load()? {
        let restored = if cp.engine_versions.is_empty() {
            // A checkpoint of the format before parts, or an empty engine.
            engine.restore_bytes(&cp.engine)
        } else {
            engine.restore(&crate::monitor::engine::Snapshot {
                core: cp.engine,
                versions: cp
                    .engine_versions
                    .into_iter()
                    .map(
                        |(model, version, state)| crate::monitor::engine::VersionPart {
                            model,
                            version,
                            state,
                        },
                    )
                    .collect(),
            })
        };
        restored.with_context(|| {
            format!(
                "restoring the checkpoint in {} (move the state directory away to start afresh)",
                store.path().display()
            )
        })?;
        tracing::info!(
            checkpoint = cp.sequence,
            events = engine.counters.events,
            partitions = cp.offsets.len(),
            "resumed from checkpoint"
        );
        offsets = cp.offsets;
    }
    let mut decider = crate::rules::Decider::new(config.rules.clone(), config.actions.clone());
    if let Some(json) = store.decider_state()? {
        let state = serde_json::from_str(&json).with_context(|| {
            format!("restoring the rules' state from {}", store.path().display())
        })?;
        decider.restore(state);
        // Rules removed from the config since take their state with them.
        decider.reconfigure(config.rules.clone(), config.actions.clone());
    }
    // The delivery worker sends the outbox; it has its own store connection.
    let deliveries_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let targets: crate::action::deliver::TargetSet = Arc::new(std::sync::RwLock::new(
        crate::action::deliver::resolve_targets(&config.targets, &|k| std::env::var(k).ok())?,
    ));
    let worker = {
        let (dir, source, m, stop, targets) = (
            config.daemon.state_dir.clone(),
            format!("/driftd/{}", config.kafka.group_id),
            metrics.clone(),
            deliveries_stop.clone(),
            targets.clone(),
        );
        std::thread::spawn(move || {
            if let Err(e) = crate::action::deliver::run(
                dir,
                targets,
                source,
                m,
                stop,
                Duration::from_millis(200),
            ) {
                tracing::error!(error = %e, "the delivery worker stopped");
            }
        })
    };
    if let Ok(token) = std::env::var(&config.daemon.api_token_env) {
        if !token.trim().is_empty() {
            let _ = shared.api_token.set(token.trim().to_owned());
        }
    }
    if let Ok(token) = std::env::var(&config.daemon.read_token_env) {
        if !token.trim().is_empty() {
            let _ = shared.read_token.set(token.trim().to_owned());
        }
    }
    shared.store_open.store(true, Ordering::Relaxed);
    let mut source =
        KafkaSource::new(&config.kafka, metrics.clone()).context("creating the Kafka consumer")?;
    tracing::info!(brokers = %config.kafka.brokers, group = %config.kafka.group_id,
        topics = ?config.kafka.topics, "consuming");

    // The metrics count what happens in this process, from here on.
    let counted_at_start = engine.counters.clone();
    let mut d = Daemon {
        config: config.clone(),
        config_path: opts.config_path.clone(),
        targets,
        roles: BTreeMap::new(),
        engine,
        learned,
        positions: Positions::from_offsets(offsets),
        dirty: false,
        pending: Vec::new(),
        decider,
        pending_decisions: Vec::new(),
        since_checkpoint: 0,
        last_checkpoint: Instant::now(),
        checkpoint_retry_at: Instant::now(),
        metrics: &metrics,
        shared: &shared,
        seen: BTreeMap::new(),
        counted: counted_at_start,
        started: Instant::now(),
    };
    let mut last_event = Instant::now();
    let mut last_tick = Instant::now();
    let mut last_watch = Instant::now();
    let mut watched = opts.config_path.as_deref().map(file_stamp);
    let checkpoint_every = Duration::from_millis(config.daemon.checkpoint_interval_ms);
    d.publish_status();
    while !stop.load(Ordering::SeqCst) {
        while let Ok(cmd) = inbox.try_recv() {
            d.command(cmd, &mut source, &mut store);
        }
        if let Some(path) = opts.config_path.as_deref() {
            if last_watch.elapsed() >= CONFIG_WATCH_INTERVAL {
                last_watch = Instant::now();
                let stamp = file_stamp(path);
                if watched.as_ref() != Some(&stamp) {
                    watched = Some(stamp);
                    tracing::info!(path = %path.display(), "the config file changed; reloading");
                    let _ = d.reload();
                }
            }
        }
        let got = d.poll_one(&mut source)?;
        if got {
            last_event = Instant::now();
        }
        d.collect_learned(false);
        shared
            .partitions_assigned
            .store(source.assigned(), Ordering::Relaxed);
        // Closed windows reach the API and the gauges with the checkpoint that
        // makes them durable, so one is written within a second of a close.
        // A checkpoint holds no window still at the learned-checks thread;
        // one due meanwhile waits for it, up to twice its interval (then the
        // consumer waits for the checks).
        let since = d.last_checkpoint.elapsed();
        let due = d.since_checkpoint >= config.daemon.checkpoint_events
            || (d.dirty && since >= checkpoint_every)
            || (!d.pending.is_empty() && since >= WINDOW_PUBLISH_DELAY.min(checkpoint_every));
        if due
            && (d.learned.in_flight() == 0 || since >= 2 * checkpoint_every)
            && Instant::now() >= d.checkpoint_retry_at
        {
            d.checkpoint(&mut source, &mut store, CommitMode::Async);
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            let assignment = source.check_assignment().map(str::to_owned);
            publish_kafka_health(&shared, &source, assignment);
            d.count_engine();
            d.run_schedules(&store);
            d.publish_status();
        }
        if let Some(idle) = opts.exit_when_idle {
            if source.assigned() == 0 {
                last_event = last_event.max(Instant::now() - Duration::from_millis(1));
            }
            if source.assigned() > 0 && last_event.elapsed() >= idle {
                tracing::info!(?idle, "no events for the idle limit; stopping");
                break;
            }
        }
    }

    // Shutdown: finish what was consumed, checkpoint, commit, leave.
    // A watchdog ends the process if shutdown overruns its deadline; it
    // stands down when shutdown finishes (dropping `done` disconnects it).
    let deadline = Duration::from_millis(config.daemon.shutdown_timeout_ms);
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = watchdog.recv_timeout(deadline) {
            eprintln!(
                "driftd: shutdown did not finish within state.shutdown_timeout ({deadline:?}); exiting"
            );
            std::process::exit(1);
        }
    });
    d.dirty = true;
    // A passing failure (the broker slow to acknowledge dead letters, the
    // disk briefly full) gets two more tries within the shutdown deadline.
    let mut tries = 1;
    while !d.checkpoint(&mut source, &mut store, CommitMode::Sync) {
        if tries == FINAL_CHECKPOINT_TRIES {
            anyhow::bail!(
                "the final checkpoint failed {tries} times; the next start resumes from the previous one"
            );
        }
        tries += 1;
        std::thread::sleep(CHECKPOINT_RETRY);
    }
    source.close(Duration::from_secs(5));
    // A delivery in flight finishes (or is retried after the restart: the
    // receiver deduplicates by webhook-id).
    deliveries_stop.store(true, Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(2);
    while !worker.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(done);
    tracing::info!(
        events = d.engine.counters.events,
        skipped_replayed = metrics.events_skipped_replayed.get(),
        "stopped"
    );
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// The dead-letter topic's state (and later other Kafka problems that do
/// not stop consumption) for `/readyz`.
fn publish_kafka_health(shared: &Shared, source: &KafkaSource, assignment: Option<String>) {
    use crate::source::kafka::TopicState;
    let mut health = crate::http::KafkaHealth::default();
    health.problems.extend(assignment);
    if let Some((topic, state)) = source.dead_letter_topic() {
        health.dead_letter_topic = Some(topic.to_owned());
        health.dead_letter_topic_state = Some(match state {
            TopicState::Unknown => "unknown",
            TopicState::Present => "present",
            TopicState::Missing => "missing",
        });
        if state == TopicState::Missing {
            health.problems.push(format!(
                "the dead-letter topic {topic:?} does not exist: rejected events are counted and logged, not kept"
            ));
        }
    }
    if let Ok(mut k) = shared.kafka.write() {
        if *k != health {
            *k = health;
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

struct Daemon<'a> {
    config: Config,
    config_path: Option<std::path::PathBuf>,
    /// The delivery worker's targets (a reload replaces them).
    targets: crate::action::deliver::TargetSet,
    /// Per model: the (version, role) series of `driftd_model_version_role` set last.
    roles: BTreeMap<String, Vec<(String, &'static str)>>,
    engine: Engine,
    /// Closed windows whose learned checks are running, in close order.
    learned: worker::Worker<WindowReport>,
    positions: Positions,
    /// Events consumed since the last checkpoint (so one is due).
    dirty: bool,
    pending: Vec<WindowReport>,
    /// The rules and the training loop.
    decider: crate::rules::Decider,
    /// Decisions since the last checkpoint (written with it).
    pending_decisions: Vec<StoredDecision>,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// No periodic checkpoint before this (one failed just before).
    checkpoint_retry_at: Instant,
    metrics: &'a Metrics,
    shared: &'a Shared,
    /// Per model: events seen at the last status tick, and when that changed.
    seen: BTreeMap<String, (u64, Instant)>,
    /// The engine's counters as the metrics last took them.
    counted: crate::monitor::engine::Counters,
    started: Instant,
}

/// The next offset of every partition consumed, as a short list: the hot path
/// finds its partition without allocating a key.
struct Positions(Vec<(String, i32, i64)>);

impl Positions {
    fn from_offsets(offsets: Offsets) -> Self {
        Self(offsets.into_iter().map(|((t, p), n)| (t, p, n)).collect())
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.0
            .iter()
            .position(|(t, p, _)| *p == partition && t == topic)
    }

    fn next(&self, slot: usize) -> i64 {
        self.0[slot].2
    }

    fn topic(&self, slot: usize) -> &str {
        &self.0[slot].0
    }

    fn add(&mut self, topic: String, partition: i32, next: i64) -> usize {
        self.0.push((topic, partition, next));
        self.0.len() - 1
    }

    fn set_next(&mut self, slot: usize, next: i64) {
        self.0[slot].2 = next;
    }

    fn to_offsets(&self) -> Offsets {
        self.0
            .iter()
            .map(|(t, p, n)| ((t.clone(), *p), *n))
            .collect()
    }
}

enum Outcome {
    Skipped,
    Feedback(FeedbackOutcome),
    Accepted(Vec<WindowReport>),
    Rejected {
        reason: &'static str,
        detail: String,
        payload: Vec<u8>,
        /// From the feedback topic.
        feedback: bool,
    },
}

impl Daemon<'_> {
    /// Consume at most one message. Returns whether one arrived.
    fn poll_one(&mut self, source: &mut KafkaSource) -> anyhow::Result<bool> {
        let engine = &mut self.engine;
        let positions = &self.positions;
        let feedback = self.config.kafka.feedback_topic.as_deref();
        let started = Instant::now();
        let got = source.poll(POLL_TIMEOUT, |rec| {
            let slot = positions.find(rec.topic, rec.partition);
            let outcome = if slot.is_some_and(|i| rec.offset < positions.next(i)) {
                Outcome::Skipped
            } else if Some(rec.topic) == feedback {
                let payload = rec.payload.unwrap_or_default();
                match engine.process_feedback(payload) {
                    Ok(o) => Outcome::Feedback(o),
                    Err(r) => Outcome::Rejected {
                        reason: r.reason.as_str(),
                        detail: r.detail,
                        payload: payload.to_vec(),
                        feedback: true,
                    },
                }
            } else {
                let payload = rec.payload.unwrap_or_default();
                match engine.process(payload) {
                    Ok(ws) => Outcome::Accepted(ws),
                    Err(r) => Outcome::Rejected {
                        reason: r.reason.as_str(),
                        detail: r.detail,
                        payload: payload.to_vec(),
                        feedback: false,
                    },
                }
            };
            // The topic is copied only for a partition seen for the first time.
            let slot = slot.ok_or_else(|| rec.topic.to_owned());
            (slot, rec.partition, rec.offset, outcome)
        });
        let Some((slot, partition, offset, outcome)) = got else {
            return Ok(false);
        };
        let slot = match slot {
            Ok(i) => i,
            Err(topic) => {
                tracing::info!(topic, partition, offset, "first message of partition");
                self.positions.add(topic, partition, offset)
            }
        };
        let topic = self.positions.topic(slot);
        match outcome {
            Outcome::Skipped => {
                self.metrics.events_skipped_replayed.inc();
                return Ok(true);
            }
            Outcome::Feedback(o) => {
                self.metrics.feedback_consumed.inc();
                let outcome = match o {
                    FeedbackOutcome::Joined => "joined",
                    FeedbackOutcome::Late => "late",
                    FeedbackOutcome::Unmatched => "unmatched",
                };
                self.metrics
                    .feedback
                    .get_or_create(&crate::labels![("outcome", outcome.to_owned())])
                    .inc();
            }
            Outcome::Accepted(ws) => {
                self.metrics.events_consumed.inc();
                for w in ws {
                    // Behind a window at the worker, a window waits its turn.
                    if !w.has_deferred() && self.learned.in_flight() == 0 {
                        self.decide(w);
                    } else {
                        self.learned.submit(w);
                    }
                }
            }
            Outcome::Rejected {
                reason,
                detail,
                payload,
                feedback,
            } => {
                if feedback {
                    self.metrics.feedback_consumed.inc();
                    self.metrics
                        .feedback
                        .get_or_create(&crate::labels![("outcome", "rejected".to_owned())])
                        .inc();
                } else {
                    self.metrics.events_consumed.inc();
                    self.metrics
                        .events_rejected
                        .get_or_create(&crate::labels![("reason", reason.to_owned())])
                        .inc();
                }
                source.dead_letter(&DeadLetter {
                    topic,
                    partition,
                    offset,
                    reason,
                    detail: &detail,
                    payload: &payload,
                });
            }
        }
        self.metrics
            .processing
            .observe(started.elapsed().as_secs_f64());
        self.positions.set_next(slot, offset + 1);
        self.dirty = true;
        self.since_checkpoint += 1;
        Ok(true)
    }

    /// A closed window, complete: the rules see it, the next checkpoint
    /// stores it.
    fn decide(&mut self, w: WindowReport) {
        for d in self.decider.decide(&w) {
            self.pending_decisions.push(stored_decision(
                &d,
                &self.config.targets,
                &self.config.kafka.group_id,
            ));
        }
        self.pending.push(w);
    }

    /// Take back the windows whose learned checks are done (all of them,
    /// waiting, with `wait`), in close order.
    fn collect_learned(&mut self, wait: bool) {
        let done = if wait {
            self.learned.wait_all()
        } else {
            self.learned.ready()
        };
        for w in done {
            self.decide(w);
        }
    }

    /// Write a checkpoint when anything changed, then commit its offsets.
    /// Returns false when it could not be written (it is retried later;
    /// nothing is committed meanwhile).
    fn checkpoint(
        &mut self,
        source: &mut KafkaSource,
        store: &mut Store,
        mode: CommitMode,
    ) -> bool {
        // The engine no longer holds the windows at the worker: they are
        // stored with this checkpoint or the offsets must not move past them.
        self.collect_learned(true);
        self.dirty |= !self.pending.is_empty();
        if !self.dirty {
            return true;
        }
        let started = Instant::now();
        // Dead letters first: once the offsets move past an event, its dead
        // letter must be on the broker.
        // A periodic checkpoint waits briefly and is tried again a second
        // later (the consumer goes on meanwhile); the final one waits longer.
        let wait = match mode {
            CommitMode::Sync => Duration::from_secs(10),
            CommitMode::Async => Duration::from_secs(1),
        };
        if let Err(e) = source.flush(wait) {
            tracing::warn!(error = %e, "dead letters not yet acknowledged by the broker; checkpoint postponed");
            self.checkpoint_retry_at = Instant::now() + CHECKPOINT_RETRY;
            return false;
        }
        let snapshot = self.engine.snapshot();
        // Versions evicted to keep within the state budget closed windows.
        for w in self.engine.take_evicted() {
            self.decide(w);
        }
        let windows: Vec<StoredWindow> = self
            .pending
            .iter()
            .map(|w| StoredWindow {
                model: w.model.clone(),
                model_version: w.model_version.clone(),
                index: w.window.index,
                report_json: serde_json::to_string(w).expect("window reports serialize"),
            })
            .collect();
        let offsets = self.positions.to_offsets();
        let decider_state =
            serde_json::to_string(&self.decider.state()).expect("decider state serializes");
        let estimator_versions: Vec<crate::store::StoredEstimatorVersion> = self
            .pending
            .iter()
            .filter_map(|w| Some((&w.model, w.estimator.as_ref()?)))
            .flat_map(|(model, e)| {
                e.trained
                    .iter()
                    .map(move |v| crate::store::StoredEstimatorVersion {
                        model: model.clone(),
                        version: v.version,
                        trained_at: v.trained_at.clone(),
                        trigger: v.trigger.clone(),
                        training_samples: v.training_samples as u64,
                        validation_rmse: v.validation_rmse,
                        incumbent_rmse: v.incumbent_rmse,
                        accepted: v.accepted,
                        record_json: serde_json::to_string(v).expect("versions serialize"),
                    })
            })
            .collect();
        let batch = DecisionBatch {
            estimator_versions: &estimator_versions,
            decisions: &self.pending_decisions,
            decider_state: Some(&decider_state),
            keep: self.config.daemon.decision_history,
        };
        let parts: Vec<(&str, &str, &[u8])> = snapshot
            .versions
            .iter()
            .map(|p| (p.model.as_str(), p.version.as_str(), p.state.as_slice()))
            .collect();
        if let Err(e) = store.checkpoint_parts(
            (&snapshot.core, &parts),
            &offsets,
            &windows,
            batch,
            self.config.daemon.window_history,
        ) {
            self.metrics.checkpoint_failures.inc();
            tracing::error!(error = %e, "checkpoint failed; retrying later");
            self.checkpoint_retry_at = Instant::now() + CHECKPOINT_RETRY;
            return false;
        }
        self.metrics.checkpoints.inc();
        self.metrics
            .checkpoint_duration
            .observe(started.elapsed().as_secs_f64());
        // The models' page shows the loop as the decisions it now lists left it.
        let decided = !self.pending_decisions.is_empty();
        for d in self.pending_decisions.drain(..) {
            let outcome = match d.outcome.strip_prefix("suppressed: ") {
                Some(reason) => format!("suppressed_{reason}"),
                None => d.outcome.clone(),
            };
            self.metrics
                .decisions
                .get_or_create(&crate::labels![
                    ("model", d.model.clone()),
                    ("rule", d.rule.clone()),
                    ("action", d.action.clone()),
                    ("outcome", outcome),
                ])
                .inc();
            if d.delivery.is_some() {
                tracing::warn!(
                    id = %d.id, model = %d.model, version = %d.model_version, rule = %d.rule,
                    action = %d.action, window = d.window_index, "rule fired; decision in the outbox"
                );
            }
        }
        for w in self.pending.drain(..) {
            tracing::info!(
                model = %w.model, version = %w.model_version, window = w.window.index,
                start = %w.window.start, end = %w.window.end,
                dataset_drift = w.drift.dataset.drift, drift_share = w.drift.dataset.share,
                "window closed"
            );
            self.metrics.record_window(&w);
        }
        if let Err(e) = source.commit(&offsets, mode) {
            // The checkpoint holds the offsets; a later commit catches up.
            tracing::warn!(error = %e, "offset commit failed");
        }
        self.dirty = false;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        if decided {
            self.publish_status();
        }
        true
    }

    /// Bring the counters of what the engine kept short, shed, held back or
    /// evicted up to the engine's own.
    fn count_engine(&mut self) {
        let now = &self.engine.counters;
        let was = &self.counted;
        crate::metrics::count_up(
            &self.metrics.truncated,
            &now.truncated.items(),
            &was.truncated.items(),
        );
        crate::metrics::count_up(
            &self.metrics.state_shed,
            &now.shed.items(),
            &was.shed.items(),
        );
        self.metrics
            .future_events
            .inc_by(now.future_events.saturating_sub(was.future_events));
        let evicted = |c: &crate::monitor::engine::Counters| c.versions_evicted + c.shed.versions;
        self.metrics
            .versions_evicted
            .inc_by(evicted(now).saturating_sub(evicted(was)));
        self.counted = now.clone();
    }

    /// Refresh the model status for the API and the per-model gauges.
    fn publish_status(&mut self) {
        let now = Instant::now();
        let silence = Duration::from_millis(self.config.daemon.silence_after_ms);
        let mut by_model: BTreeMap<String, Vec<crate::monitor::VersionStatus>> = BTreeMap::new();
        for v in self.engine.versions() {
            by_model.entry(v.model.clone()).or_default().push(v);
        }
        let wall_now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9;
        let mut models = Vec::new();
        for (model, versions) in by_model {
            let events: u64 = versions.iter().map(|v| v.events).sum();
            let entry = self
                .seen
                .entry(model.clone())
                .or_insert((events, self.started));
            if entry.0 != events {
                *entry = (events, now);
            }
            let since = now.duration_since(entry.1);
            let silent = since >= silence;
            let labels = crate::labels![("model", model.clone())];
            self.metrics
                .silent
                .get_or_create(&labels)
                .set(f64::from(u8::from(silent)));
            self.metrics
                .last_event_received
                .get_or_create(&labels)
                .set(wall_now - since.as_secs_f64());
            if let Some(ms) = versions.iter().filter_map(|v| v.newest_event_ms).max() {
                self.metrics
                    .last_event_time
                    .get_or_create(&labels)
                    .set(ms as f64 / 1000.0);
            }
            for v in &versions {
                self.metrics
                    .baseline_ready
                    .get_or_create(&crate::labels![
                        ("model", model.clone()),
                        ("model_version", v.model_version.clone()),
                    ])
                    .set(f64::from(u8::from(v.baseline != "learning")));
            }
            let rules = {
                let d = &self.decider;
                let until = d.retrain_until(&model);
                let newest = versions.iter().filter_map(|v| v.newest_event_ms).max();
                let in_flight = until.is_some_and(|u| newest.is_some_and(|n| n < u));
                self.metrics
                    .retrain_in_flight
                    .get_or_create(&labels)
                    .set(f64::from(u8::from(in_flight)));
                let life = d.lifecycle(&model).cloned().unwrap_or_default();
                self.publish_roles(&model, &life);
                Some(crate::http::RulesStatus {
                    incumbent: life.incumbent.clone(),
                    candidate: life
                        .candidate
                        .as_ref()
                        .map(|c| crate::http::CandidateStatus {
                            version: c.version.clone(),
                            registered_at: c.registered_at.clone(),
                            metadata: c.metadata.clone(),
                            windows_judged: c.windows_judged(),
                            windows_needed: self
                                .config
                                .actions
                                .promotion
                                .as_ref()
                                .map(|p| p.windows),
                        }),
                    previous: life.previous.clone(),
                    probation_windows: life.probation_windows(),
                    retrain_in_flight: in_flight,
                    retrain_in_flight_until: until.map(crate::monitor::engine::rfc3339),
                })
            };
            let estimator = self.config.estimator_for(&model).enabled.then(|| {
                let e = self.engine.estimator(&model);
                crate::http::EstimatorStatus {
                    current: e.and_then(|e| e.current_version()),
                    labelled: e.map_or(0, |e| e.labelled()),
                    versions: e.map(|e| e.versions().to_vec()).unwrap_or_default(),
                }
            });
            models.push(ModelStatus {
                model,
                silent,
                seconds_since_last_event: since.as_secs_f64(),
                versions,
                rules,
                estimator,
            });
        }
        if let Ok(mut s) = self.shared.status.write() {
            *s = Status { models };
        }
    }
}

impl Daemon<'_> {
    /// Carry out a request from the HTTP server or a signal.
    fn command(&mut self, cmd: Command, source: &mut KafkaSource, store: &mut Store) {
        match cmd {
            Command::Reload { reply } => {
                let r = self.reload();
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            Command::RegisterCandidate {
                model,
                version,
                metadata,
                reply,
            } => {
                let r = self.register(source, store, &model, &version, metadata);
                let _ = reply.send(r);
            }
        }
    }

    /// Decide every scheduled run that is due (wall clock); the decisions go
    /// out with the next checkpoint like the rules'.
    fn run_schedules(&mut self, store: &Store) {
        let now = crate::event::wall_clock_ms();
        let (due, changed) = self.decider.due_schedules(&self.config.schedules, now);
        if changed {
            self.dirty = true;
        }
        for (s, at) in due {
            let newest = self
                .engine
                .versions()
                .iter()
                .filter(|v| v.model == s.model)
                .filter_map(|v| v.newest_event_ms)
                .max();
            let report =
                (s.action == crate::rules::Action::Report).then(|| latest_windows(store, &s.model));
            let d = self.decider.scheduled_decision(&s, at, newest, report);
            tracing::info!(schedule = %s.name, model = %s.model, outcome = %d.outcome.describe(), "scheduled run");
            self.pending_decisions.push(stored_decision(
                &d,
                &self.config.targets,
                &self.config.kafka.group_id,
            ));
        }
    }

    /// Register a candidate; answered once a checkpoint holds it.
    fn register(
        &mut self,
        source: &mut KafkaSource,
        store: &mut Store,
        model: &str,
        version: &str,
        metadata: serde_json::Value,
    ) -> Result<serde_json::Value, (u16, String)> {
        let known = self.config.models.contains_key(model)
            || self.engine.versions().iter().any(|v| v.model == model);
        if !known {
            return Err((
                404,
                format!("no model named {model:?} (not in the config, no events seen)"),
            ));
        }
        // Windows closed before the registration meet the rules first.
        self.collect_learned(true);
        let registered_at = crate::monitor::engine::rfc3339(crate::event::wall_clock_ms());
        let outcome = self
            .decider
            .register_candidate(model, version, registered_at, metadata)
            .map_err(|e| (409, e))?;
        self.dirty = true;
        if !self.checkpoint(source, store, CommitMode::Async) {
            return Err((
                503,
                "registered, but the checkpoint holding it failed; send the registration again"
                    .into(),
            ));
        }
        if outcome != crate::rules::Registered::Unchanged {
            self.metrics
                .candidates_registered
                .get_or_create(&crate::labels![("model", model.to_owned())])
                .inc();
            tracing::info!(model, version, ?outcome, "candidate registered");
        }
        self.publish_status();
        let life = self.decider.lifecycle(model).cloned().unwrap_or_default();
        Ok(serde_json::json!({
            "model": model,
            "outcome": outcome,
            "incumbent": life.incumbent,
            "candidate": life.candidate,
            "promotion": self.config.actions.promotion,
        }))
    }

    /// Read the config file again and apply it if it is valid and changes
    /// only what can change while running. Errors are logged and returned.
    fn reload(&mut self) -> Result<serde_json::Value, Vec<String>> {
        let result = self.try_reload();
        let outcome = if result.is_ok() { "applied" } else { "invalid" };
        self.metrics
            .config_reloads
            .get_or_create(&crate::labels![("outcome", outcome.to_owned())])
            .inc();
        match &result {
            Ok(v) => {
                self.metrics.config_last_reload_successful.set(1.0);
                self.metrics
                    .config_last_reload_success_time
                    .set(wall_seconds());
                tracing::info!(summary = %v, "config reloaded");
            }
            Err(problems) => {
                self.metrics.config_last_reload_successful.set(0.0);
                for p in problems {
                    tracing::error!(problem = %p, "config reload refused; the running config stays");
                }
            }
        }
        result
    }

    fn try_reload(&mut self) -> Result<serde_json::Value, Vec<String>> {
        let Some(path) = self.config_path.clone() else {
            return Err(vec![
                "driftd was started without a config file: nothing to reload".into(),
            ]);
        };
        let env = |k: &str| std::env::var(k).ok();
        let mut new = Config::load(&path, &env).map_err(|e| {
            e.problems
                .iter()
                .map(|p| format!("{}: {}: {}", e.source_name, p.path, p.message))
                .collect::<Vec<_>>()
        })?;
        new.apply_env_overrides(&env);
        let fixed = self.config.restart_only_changes(&new);
        if !fixed.is_empty() {
            return Err(fixed
                .into_iter()
                .map(|k| format!("{k}: changes only on a restart (hot reload applies rules, actions, promotion, rollback, targets and drift thresholds)"))
                .collect());
        }
        let targets = crate::action::deliver::resolve_targets(&new.targets, &env)
            .map_err(|e| vec![format!("{e:#}")])?;
        let summary = serde_json::json!({
            "reloaded": true,
            "rules": new.rules.len(),
            "targets": new.targets.len(),
            "dry_run": new.actions.dry_run,
            "kill_switch": new.actions.kill_switch,
        });
        self.decider
            .reconfigure(new.rules.clone(), new.actions.clone());
        self.engine.reconfigure(new.clone());
        if let Ok(mut t) = self.targets.write() {
            *t = targets;
        }
        self.config = new;
        Ok(summary)
    }

    /// `driftd_model_version_role`: one series per role a version holds;
    /// series of roles it no longer holds are removed.
    fn publish_roles(&mut self, model: &str, life: &crate::rules::ModelLifecycle) {
        let mut now: Vec<(String, &'static str)> = Vec::new();
        if let Some(v) = &life.incumbent {
            now.push((v.clone(), "incumbent"));
        }
        if let Some(c) = &life.candidate {
            now.push((c.version.clone(), "candidate"));
        }
        if let Some(v) = &life.previous {
            now.push((v.clone(), "previous"));
        }
        let labels = |(v, role): &(String, &'static str)| {
            crate::labels![("model", model), ("model_version", v), ("role", *role)]
        };
        // Versions with a role are never evicted from the engine.
        self.engine
            .protect(model, now.iter().map(|(v, _)| v.clone()).collect());
        let before = self.roles.insert(model.to_owned(), now.clone());
        for old in before.unwrap_or_default() {
            if !now.contains(&old) {
                self.metrics.model_version_role.remove(&labels(&old));
            }
        }
        for r in &now {
            self.metrics
                .model_version_role
                .get_or_create(&labels(r))
                .set(1.0);
        }
        self.metrics
            .candidate_windows
            .get_or_create(&crate::labels![("model", model.to_owned())])
            .set(
                life.candidate
                    .as_ref()
                    .map_or(0.0, |c| c.windows_judged() as f64),
            );
    }
}

/// A scheduled report's body: the newest closed window of each version of
/// `model` in the store, in brief.
fn latest_windows(store: &Store, model: &str) -> serde_json::Value {
    let rows = store.windows(Some(model), 200).unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    let mut versions = Vec::new();
    for r in rows {
        if !seen.insert(r.model_version.clone()) {
            continue;
        }
        let w: serde_json::Value = serde_json::from_str(&r.report_json).unwrap_or_default();
        versions.push(serde_json::json!({
            "model_version": r.model_version,
            "window": w["window"],
            "drift": {
                "dataset": w["drift"]["dataset"],
            },
            "signals": w["signals"],
            "captions": {
                "clip_score_mean": w["captions"]["clip_score_mean"],
                "empty_rate": w["captions"]["empty_rate"],
                "boilerplate_prefix_rate": w["captions"]["boilerplate_prefix_rate"],
                "references": w["captions"]["references"],
            },
        }));
    }
    serde_json::json!({ "model": model, "latest_windows": versions })
}

/// Modification time and length of a file (a change of either is a change).
fn file_stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn wall_seconds() -> f64 {
    crate::event::wall_clock_ms() as f64 / 1000.0
}

/// A decision as the store keeps it. The id is derived from the deployment
/// (the consumer group), model, version, window and rule, so judging a
/// window again after a crash stores nothing new, while staging and
/// production (two groups) never share an id; it becomes the webhook and
/// CloudEvents id, by which receivers deduplicate.
fn stored_decision(
    d: &crate::rules::Decision,
    targets: &[crate::config::TargetConfig],
    namespace: &str,
) -> StoredDecision {
    use sha2::Digest;
    let key = format!(
        "{namespace}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        d.model, d.model_version, d.window_index, d.rule
    );
    let digest = sha2::Sha256::digest(key.as_bytes());
    let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let fired = matches!(d.outcome, crate::rules::Outcome::Fired);
    let targets: Vec<String> = targets
        .iter()
        .filter(|t| t.actions.contains(&d.action))
        .map(|t| t.name.clone())
        .collect();
    // Fired with nowhere to go is said, not left pending forever.
    let delivery = match (fired, targets.is_empty()) {
        (false, _) => None,
        (true, false) => Some("pending".to_owned()),
        (true, true) => Some("no_target".to_owned()),
    };
    StoredDecision {
        id: format!("dec_{id}"),
        model: d.model.clone(),
        model_version: d.model_version.clone(),
        window_index: d.window_index,
        rule: d.rule.clone(),
        action: d.action.as_str().to_owned(),
        outcome: d.outcome.describe(),
        window_end: d.window_end.clone(),
        delivery,
        decision_json: serde_json::to_string(d).expect("decisions serialize"),
        targets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_ids_differ_by_deployment_and_stay_stable() {
        // Regression (issue 15): staging and production made the same ids,
        // so a receiver deduplicating by webhook-id dropped real decisions.
        let d = crate::rules::Decision {
            rule: "drift".into(),
            action: crate::rules::Action::Retrain,
            model: "m".into(),
            model_version: "1".into(),
            window_index: 7,
            window_end: "2026-11-24T00:05:00Z".into(),
            samples: 1000,
            outcome: crate::rules::Outcome::Fired,
            consecutive: 1,
            evidence: Vec::new(),
            reason: "drifted".into(),
            versions: None,
            report: None,
        };
        let staging = stored_decision(&d, &[], "driftd-staging");
        let production = stored_decision(&d, &[], "driftd-production");
        assert_ne!(staging.id, production.id);
        // The same deployment judging the same window again (after a crash,
        // a restart) makes the same id: stored once, deduplicated by receivers.
        assert_eq!(stored_decision(&d, &[], "driftd-staging").id, staging.id);
        let mut other = d.clone();
        other.window_index = 8;
        assert_ne!(
            stored_decision(&other, &[], "driftd-staging").id,
            staging.id
        );
    }
}
