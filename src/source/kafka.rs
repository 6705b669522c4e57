//! The Kafka source: a consumer-group member (librdkafka through rdkafka)
//! that never stores or commits offsets on its own. The daemon commits the
//! offsets of a checkpoint only after the state store holds it, and skips
//! events it sees again after a restart by offset, so every event counts
//! exactly once in the window results. Rejected events go to a dead-letter
//! topic with their original bytes and the reason in headers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::metrics::Metrics;
use crate::store::Offsets;

/// A message as the daemon sees it.
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// `None` for a tombstone (no value).
    pub payload: Option<&'a [u8]>,
}

/// A rejected event on its way to the dead-letter topic.
pub struct DeadLetter<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub reason: &'static str,
    pub detail: &'a str,
    pub payload: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error(transparent)]
    Client(#[from] KafkaError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0} messages were not acknowledged by the broker")]
    Undelivered(u64),
}

/// Count a client error under its librdkafka error code (a closed set, so a
/// bounded label).
fn count_error(metrics: &Metrics, e: &KafkaError) {
    let code = e
        .rdkafka_error_code()
        .map(|c| format!("{c:?}"))
        .unwrap_or_else(|| "other".into());
    metrics
        .kafka_errors
        .get_or_create(&crate::labels![("code", code)])
        .inc();
}

/// Consumer callbacks: lag from librdkafka's statistics, assignment count
/// for readiness, client errors counted by code.
pub struct Context {
    metrics: Arc<Metrics>,
    assigned: Arc<AtomicUsize>,
}

impl ClientContext for Context {
    fn stats(&self, s: Statistics) {
        for (topic, t) in &s.topics {
            for (partition, p) in &t.partitions {
                // librdkafka lists an internal partition -1; lag is -1 when unknown.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&crate::labels![
                            ("topic", topic.clone()),
                            ("partition", partition.to_string()),
                        ])
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        count_error(&self.metrics, &error);
        tracing::warn!(%error, reason, "kafka client error");
    }
}

impl ConsumerContext for Context {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
        let n = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.assigned.store(n, Ordering::Relaxed);
        self.metrics.partitions_assigned.set(n as f64);
    }
}

/// The consumer and its dead-letter producer.
pub struct KafkaSource {
    consumer: BaseConsumer<Context>,
    dead_letter: Option<DeadLetterSink>,
    assigned: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    /// Subscribed topics (inference logs, then feedback).
    topics: Vec<String>,
    group: String,
    /// Since when no partition has been assigned (while subscribed).
    empty_since: Option<std::time::Instant>,
    /// What the last assignment check found wrong, in words.
    assignment_problem: Option<String>,
}

/// How long an empty assignment is taken as the group settling before it
/// is looked into.
const EMPTY_ASSIGNMENT_GRACE: Duration = Duration::from_secs(30);

/// librdkafka `session.timeout.ms` unless `kafka.options` sets it: a static
/// member that restarts takes its partitions back at once whatever this is,
/// so it only bounds how long a dead replica's partitions wait (librdkafka's
/// default is 45 s).
const SESSION_TIMEOUT_MS: &str = "30000";

/// How often librdkafka reports statistics (consumer lag).
const STATS_INTERVAL_MS: &str = "5000";

/// How long a dead letter may wait for the broker before it counts as failed
/// (librdkafka `message.timeout.ms`; its default, 5 minutes, would hold every
/// checkpoint that long while the dead-letter topic is unusable).
const DEAD_LETTER_TIMEOUT_MS: &str = "30000";

/// How long a dead letter may wait for room in the producer's queue before
/// it counts as failed (`queue_full`) and the consumer moves on.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(200);

/// How often the dead-letter topic's existence is checked again.
const TOPIC_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// Room kept in a dead letter for its key, headers and record framing: the
/// payload is cut to `kafka.dead_letter_max_bytes` minus this.
const DEAD_LETTER_OVERHEAD: usize = 2048;

/// Why a dead letter was not delivered: the label of
/// `driftd_dead_letter_failures_total` (a closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadLetterFailure {
    /// The topic does not exist (or this client may not see it).
    UnknownTopic,
    /// The broker refused the record as too large.
    TooLarge,
    /// Not authorized to write to the topic.
    NotAuthorized,
    /// Not acknowledged within `message.timeout.ms`.
    Timeout,
    /// The producer's queue stayed full.
    QueueFull,
    /// Anything else the client or the broker reported.
    Other,
}

impl DeadLetterFailure {
    pub const ALL: [Self; 6] = [
        Self::UnknownTopic,
        Self::TooLarge,
        Self::NotAuthorized,
        Self::Timeout,
        Self::QueueFull,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownTopic => "unknown_topic",
            Self::TooLarge => "too_large",
            Self::NotAuthorized => "not_authorized",
            Self::Timeout => "timeout",
            Self::QueueFull => "queue_full",
            Self::Other => "other",
        }
    }

    fn of(e: &KafkaError) -> Self {
        use rdkafka::types::RDKafkaErrorCode as C;
        match e.rdkafka_error_code() {
            Some(C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition) => {
                Self::UnknownTopic
            }
            Some(C::MessageSizeTooLarge | C::InvalidMessageSize) => Self::TooLarge,
            Some(C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed) => {
                Self::NotAuthorized
            }
            Some(C::MessageTimedOut | C::RequestTimedOut) => Self::Timeout,
            Some(C::QueueFull) => Self::QueueFull,
            _ => Self::Other,
        }
    }
}

/// Where the dead-letter topic stands, as `/readyz` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicState {
    /// Not known yet (the broker has not answered).
    Unknown,
    Present,
    /// The broker says it does not exist: rejected events are counted and
    /// logged only, until it appears (checked every 30 s).
    Missing,
}

/// The dead-letter producer, with what it knows of its topic.
struct DeadLetterSink {
    topic: String,
    producer: Arc<ThreadedProducer<DeliveryCounter>>,
    /// Largest record (payload, key and headers).
    max_bytes: usize,
    /// Failures already counted, per reason, from the delivery reports.
    counted: [u64; DeadLetterFailure::ALL.len()],
    state: Arc<std::sync::Mutex<TopicState>>,
    log: RateLimitedLog,
}

/// One log line per reason and interval: a flood of bad input, or a topic
/// that stays missing, must not become a flood of log lines.
struct RateLimitedLog {
    every: Duration,
    last: std::collections::HashMap<&'static str, (std::time::Instant, u64)>,
}

impl RateLimitedLog {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: Default::default(),
        }
    }

    /// Whether to log now for `key`, and how many were left unlogged since
    /// the last line.
    fn admit(&mut self, key: &'static str) -> Option<u64> {
        let now = std::time::Instant::now();
        match self.last.get_mut(key) {
            Some((at, quiet)) if now.duration_since(*at) < self.every => {
                *quiet += 1;
                None
            }
            Some((at, quiet)) => {
                *at = now;
                Some(std::mem::take(quiet))
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

impl KafkaSource {
    /// Connect and subscribe to the configured topics (and the feedback topic).
    pub fn new(cfg: &KafkaConfig, metrics: Arc<Metrics>) -> Result<Self, KafkaSourceError> {
        let assigned = Arc::new(AtomicUsize::new(0));
        let mut cc = ClientConfig::new();
        cc.set("statistics.interval.ms", STATS_INTERVAL_MS)
            .set("session.timeout.ms", SESSION_TIMEOUT_MS);
        for (k, v) in &cfg.options {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", &cfg.brokers)
            .set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        if let Some(id) = &cfg.instance_id {
            cc.set("group.instance.id", id);
        }
        let consumer: BaseConsumer<Context> = cc.create_with_context(Context {
            metrics: metrics.clone(),
            assigned: assigned.clone(),
        })?;
        let mut topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        if let Some(f) = &cfg.feedback_topic {
            topics.push(f);
        }
        consumer.subscribe(&topics)?;
        let dead_letter = match &cfg.dead_letter_topic {
            None => None,
            Some(topic) => {
                let mut pc = ClientConfig::new();
                for (k, v) in &cfg.options {
                    // Consumer-only properties would make the producer warn.
                    const CONSUMER_ONLY: [&str; 8] = [
                        "fetch.",
                        "session.",
                        "heartbeat.",
                        "group.",
                        "max.poll.",
                        "partition.assignment",
                        "isolation.level",
                        "auto.commit",
                    ];
                    if !CONSUMER_ONLY.iter().any(|p| k.starts_with(p)) {
                        pc.set(k, v);
                    }
                }
                // The producer's own limit is the record's, plus room for
                // the batch framing around it: a record within
                // `dead_letter_max_bytes` is never refused by the client.
                let max_bytes = cfg.dead_letter_max_bytes;
                pc.set("bootstrap.servers", &cfg.brokers)
                    .set("enable.idempotence", "true")
                    .set("acks", "all")
                    .set("message.timeout.ms", DEAD_LETTER_TIMEOUT_MS)
                    .set("message.max.bytes", (max_bytes + 64 * 1024).to_string());
                let producer: Arc<ThreadedProducer<DeliveryCounter>> =
                    Arc::new(pc.create_with_context(DeliveryCounter::default())?);
                let state = Arc::new(std::sync::Mutex::new(TopicState::Unknown));
                watch_topic(producer.clone(), topic.clone(), state.clone());
                for r in DeadLetterFailure::ALL {
                    metrics
                        .dead_letter_failures
                        .get_or_create(&crate::labels![("reason", r.as_str())])
                        .inc_by(0);
                }
                Some(DeadLetterSink {
                    topic: topic.clone(),
                    producer,
                    max_bytes,
                    counted: [0; DeadLetterFailure::ALL.len()],
                    state,
                    log: RateLimitedLog::new(Duration::from_secs(60)),
                })
            }
        };
        Ok(Self {
            consumer,
            dead_letter,
            assigned,
            metrics,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            group: cfg.group_id.clone(),
            empty_since: None,
            assignment_problem: None,
        })
    }

    /// Look into an assignment that stays empty (call it about once a
    /// second). Empty for [`EMPTY_ASSIGNMENT_GRACE`] while the subscribed
    /// topics have partitions and the group has no more members than
    /// partitions is wrong: it is logged, kept for `/readyz`, counted, and
    /// the consumer leaves and rejoins the group. Returns the problem, if any.
    pub fn check_assignment(&mut self) -> Option<&str> {
        let now = std::time::Instant::now();
        if self.assigned() > 0 {
            self.empty_since = None;
            self.assignment_problem = None;
            return None;
        }
        let since = *self.empty_since.get_or_insert(now);
        if now.duration_since(since) < EMPTY_ASSIGNMENT_GRACE {
            return self.assignment_problem.as_deref();
        }
        self.empty_since = Some(now);
        let wait = Duration::from_secs(2);
        let mut partitions = 0usize;
        for t in &self.topics {
            if let Ok(md) = self.consumer.fetch_metadata(Some(t), wait) {
                partitions += md
                    .topics()
                    .iter()
                    .filter(|m| m.name() == t && m.error().is_none())
                    .map(|m| m.partitions().len())
                    .sum::<usize>();
            }
        }
        let members = self
            .consumer
            .fetch_group_list(Some(&self.group), wait)
            .ok()
            .and_then(|l| l.groups().first().map(|g| g.members().len()));
        if partitions == 0 {
            self.assignment_problem = Some(format!(
                "the subscribed topics {:?} have no partitions (or the broker does not answer)",
                self.topics
            ));
            return self.assignment_problem.as_deref();
        }
        if members.is_some_and(|m| m > partitions) {
            // More replicas than partitions: some are idle, as they should be.
            self.assignment_problem = None;
            return None;
        }
        let waited = EMPTY_ASSIGNMENT_GRACE.as_secs();
        let problem = format!(
            "no partition assigned for {waited} s or more while the subscribed topics have {partitions} partition(s) and the group {} member(s); rejoining the group",
            members.map_or("unknown".to_owned(), |m| m.to_string())
        );
        tracing::warn!(group = %self.group, partitions, members = ?members, "{problem}");
        self.metrics.kafka_rejoins.inc();
        // Leaving makes the group rebalance; a consumer that only rejoins
        // with its member id may be handed the same empty assignment.
        if let Err(e) = self.rejoin() {
            tracing::warn!(error = %e, "rejoining the group failed; trying again later");
        }
        self.assignment_problem = Some(problem);
        self.assignment_problem.as_deref()
    }

    /// Leave the group and join it again.
    fn rejoin(&mut self) -> Result<(), KafkaError> {
        self.consumer.unsubscribe();
        // The revocation is carried out by polls.
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < until {
            if let Some(Err(e)) = self.consumer.poll(Duration::from_millis(100)) {
                count_error(&self.metrics, &e);
            }
            if self.consumer.subscription().is_ok_and(|s| s.count() == 0) {
                break;
            }
        }
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        self.consumer.subscribe(&topics)
    }

    /// Partitions assigned to this member now.
    pub fn assigned(&self) -> usize {
        self.assigned.load(Ordering::Relaxed)
    }

    /// The dead-letter topic and where it stands (`None` without one).
    pub fn dead_letter_topic(&self) -> Option<(&str, TopicState)> {
        self.dead_letter.as_ref().map(|d| {
            let state = d.state.lock().map_or(TopicState::Unknown, |s| *s);
            (d.topic.as_str(), state)
        })
    }

    /// Wait up to `timeout` for the next message and hand it to `f`. Client
    /// errors are counted and logged; the consumer carries on.
    pub fn poll<T>(&mut self, timeout: Duration, f: impl FnOnce(Record<'_>) -> T) -> Option<T> {
        match self.consumer.poll(timeout)? {
            Ok(m) => Some(f(Record {
                topic: m.topic(),
                partition: m.partition(),
                offset: m.offset(),
                payload: m.payload(),
            })),
            Err(e) => {
                count_error(&self.metrics, &e);
                tracing::warn!(error = %e, "consume error");
                None
            }
        }
    }

    /// Queue a rejected event for the dead-letter topic (delivered by
    /// [`KafkaSource::flush`] at the latest). Never fails: a dead letter that
    /// cannot be written is counted in `driftd_dead_letter_failures_total`
    /// and logged (once a minute per reason), and the consumer moves on.
    /// Without a dead-letter topic the event is only logged.
    pub fn dead_letter(&mut self, d: &DeadLetter<'_>) {
        let Some(sink) = &mut self.dead_letter else {
            tracing::warn!(
                topic = d.topic,
                partition = d.partition,
                offset = d.offset,
                reason = d.reason,
                detail = d.detail,
                "rejected event (no dead-letter topic configured)"
            );
            return;
        };
        let missing = sink.state.lock().is_ok_and(|s| *s == TopicState::Missing);
        let result = if missing {
            Err(DeadLetterFailure::UnknownTopic)
        } else {
            sink.send(d)
        };
        match result {
            Ok(()) => {
                self.metrics.dead_letters.inc();
            }
            Err(why) => {
                self.metrics
                    .dead_letter_failures
                    .get_or_create(&crate::labels![("reason", why.as_str())])
                    .inc();
                if let Some(quiet) = sink.log.admit(why.as_str()) {
                    tracing::error!(
                        dead_letter_topic = %sink.topic, reason = why.as_str(),
                        source_topic = d.topic, partition = d.partition, offset = d.offset,
                        rejected_because = d.reason, not_logged_since_last = quiet,
                        "a dead letter could not be written; the event stays counted as rejected"
                    );
                }
            }
        }
    }

    /// Wait until every queued dead letter is acknowledged or refused by the
    /// broker (refused ones count in `driftd_dead_letter_failures_total`).
    /// Fails only when some are still in flight after `timeout`: the broker
    /// is unreachable, and the caller holds back the offsets meanwhile.
    pub fn flush(&mut self, timeout: Duration) -> Result<(), KafkaSourceError> {
        let Some(sink) = &mut self.dead_letter else {
            return Ok(());
        };
        let flushed = sink.producer.flush(timeout);
        let failed = sink.producer.context().failed_by_reason();
        for (i, why) in DeadLetterFailure::ALL.iter().enumerate() {
            let n = failed[i] - sink.counted[i];
            if n == 0 {
                continue;
            }
            sink.counted[i] = failed[i];
            self.metrics
                .dead_letter_failures
                .get_or_create(&crate::labels![("reason", why.as_str())])
                .inc_by(n);
            if let Some(quiet) = sink.log.admit(why.as_str()) {
                tracing::error!(topic = %sink.topic, reason = why.as_str(), count = n,
                    not_logged_since_last = quiet,
                    "dead letters were not delivered; the events stay counted as rejected");
            }
        }
        flushed?;
        Ok(())
    }

    /// Commit `offsets` (the next offset to read, per partition) to the group.
    /// Only partitions assigned to this member are committed.
    pub fn commit(&mut self, offsets: &Offsets, mode: CommitMode) -> Result<(), KafkaSourceError> {
        let assignment = self.consumer.assignment()?;
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in offsets {
            if assignment.find_partition(topic, *partition).is_some() {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
            }
        }
        if tpl.count() > 0 {
            self.consumer.commit(&tpl, mode)?;
        }
        Ok(())
    }

    /// Leave the group, waiting at most `timeout` for the broker. A consumer
    /// that cannot leave in time is abandoned (the group times it out), so
    /// shutdown never hangs on an unreachable broker.
    pub fn close(self, timeout: Duration) {
        let Self {
            consumer,
            dead_letter,
            assigned,
            metrics,
            ..
        } = self;
        drop(dead_letter);
        let deadline = std::time::Instant::now() + timeout;
        let closing = consumer.close_queue();
        if closing.is_ok() {
            while !consumer.closed() && std::time::Instant::now() < deadline {
                let _ = consumer.poll(Duration::from_millis(50));
            }
        }
        assigned.store(0, Ordering::Relaxed);
        metrics.partitions_assigned.set(0.0);
        if !(closing.is_ok() && consumer.closed()) {
            tracing::warn!(
                ?timeout,
                "the consumer did not leave its group in time; the group will time it out"
            );
        }
        // rdkafka's drop closes the consumer again, without a time limit
        // (and logs an error when it was closed already). The handle is
        // released with the process.
        std::mem::forget(consumer);
    }
}

impl DeadLetterSink {
    /// Queue one dead letter, cut to the size limit; waits at most
    /// [`QUEUE_FULL_WAIT`] for room in the queue.
    fn send(&mut self, d: &DeadLetter<'_>) -> Result<(), DeadLetterFailure> {
        let partition = d.partition.to_string();
        let offset = d.offset.to_string();
        let room = self.max_bytes.saturating_sub(
            DEAD_LETTER_OVERHEAD + d.detail.len() + 2 * d.topic.len() + d.reason.len(),
        );
        let cut = d.payload.len() > room;
        let original = d.payload.len().to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "driftd-reason",
                value: Some(d.reason),
            })
            .insert(Header {
                key: "driftd-detail",
                value: Some(d.detail),
            })
            .insert(Header {
                key: "driftd-source-topic",
                value: Some(d.topic),
            })
            .insert(Header {
                key: "driftd-source-partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "driftd-source-offset",
                value: Some(&offset),
            });
        if cut {
            // The original is still in the source topic at that offset.
            headers = headers.insert(Header {
                key: "driftd-truncated",
                value: Some(&original),
            });
        }
        let payload = &d.payload[..d.payload.len().min(room)];
        let key = format!("{}/{}/{}", d.topic, d.partition, d.offset);
        let mut record = BaseRecord::to(&self.topic)
            .key(&key)
            .payload(payload)
            .headers(headers);
        let deadline = std::time::Instant::now() + QUEUE_FULL_WAIT;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) if std::time::Instant::now() < deadline => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    let why = DeadLetterFailure::of(&e);
                    if why == DeadLetterFailure::UnknownTopic {
                        if let Ok(mut s) = self.state.lock() {
                            *s = TopicState::Missing;
                        }
                    }
                    return Err(why);
                }
            }
        }
    }
}

/// Check now and every [`TOPIC_CHECK_INTERVAL`] whether the dead-letter
/// topic exists, on a thread of its own (a metadata request waits for the
/// broker). A missing topic is logged when it is found missing.
fn watch_topic(
    producer: Arc<ThreadedProducer<DeliveryCounter>>,
    topic: String,
    state: Arc<std::sync::Mutex<TopicState>>,
) {
    let weak = Arc::downgrade(&producer);
    drop(producer);
    let spawned = std::thread::Builder::new()
        .name("driftd-dlq-watch".into())
        .spawn(move || loop {
            // The producer is gone once the source is closed.
            let Some(producer) = weak.upgrade() else {
                return;
            };
            let found = producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(10));
            drop(producer);
            let now = match found {
                Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                        Some(TopicState::Present)
                    }
                    Some(_) | None => Some(TopicState::Missing),
                },
                // The broker did not answer: nothing new is known.
                Err(_) => None,
            };
            if let (Some(now), Ok(mut s)) = (now, state.lock()) {
                if *s != now {
                    match now {
                        TopicState::Missing => tracing::error!(
                            topic = %topic,
                            "the dead-letter topic does not exist: rejected events are counted and logged but not kept until it is created (kafka.dead_letter_topic)"
                        ),
                        _ => tracing::info!(topic = %topic, "the dead-letter topic is present"),
                    }
                    *s = now;
                }
            }
            std::thread::sleep(TOPIC_CHECK_INTERVAL);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the dead-letter topic check");
    }
}

/// Counts messages the broker did not acknowledge, by why.
#[derive(Default)]
pub struct DeliveryCounter {
    failed: [std::sync::atomic::AtomicU64; DeadLetterFailure::ALL.len()],
}

impl DeliveryCounter {
    fn total(&self) -> u64 {
        self.failed_by_reason().iter().sum()
    }

    fn failed_by_reason(&self) -> [u64; DeadLetterFailure::ALL.len()] {
        std::array::from_fn(|i| self.failed[i].load(Ordering::Relaxed))
    }
}

impl ClientContext for DeliveryCounter {}

impl rdkafka::producer::ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let why = DeadLetterFailure::of(e);
            let i = DeadLetterFailure::ALL
                .iter()
                .position(|w| *w == why)
                .unwrap_or(DeadLetterFailure::ALL.len() - 1);
            self.failed[i].fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, "message not delivered");
        }
    }
}

/// A `Write` that produces each line written to it as one Kafka message,
/// keyed by `key` (so one model's events stay in one partition, in order).
pub struct LineProducer {
    producer: ThreadedProducer<DeliveryCounter>,
    topic: String,
    key: String,
    buf: Vec<u8>,
    /// Messages produced.
    pub sent: u64,
}

impl LineProducer {
    pub fn new(brokers: &str, topic: &str, key: &str) -> Result<Self, KafkaSourceError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "20")
            .set("queue.buffering.max.messages", "1000000")
            .create_with_context(DeliveryCounter::default())?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            key: key.to_owned(),
            buf: Vec::with_capacity(4096),
            sent: 0,
        })
    }

    fn send(&mut self, line: &[u8]) -> std::io::Result<()> {
        let mut record = BaseRecord::to(&self.topic).key(&self.key).payload(line);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(std::io::Error::other(e)),
            }
        }
        self.sent += 1;
        Ok(())
    }

    /// Wait until every message queued so far is acknowledged.
    pub fn flush_queue(&mut self, timeout: Duration) -> Result<(), KafkaSourceError> {
        self.producer.flush(timeout)?;
        Ok(())
    }

    /// Deliver everything queued; fails unless the broker acknowledged every
    /// message. Returns the number of messages.
    pub fn finish(mut self, timeout: Duration) -> Result<u64, KafkaSourceError> {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.send(&line)?;
        }
        self.producer.flush(timeout)?;
        let failed = self.producer.context().total();
        if failed > 0 {
            return Err(KafkaSourceError::Undelivered(failed));
        }
        Ok(self.sent)
    }
}

impl std::io::Write for LineProducer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if self.buf.is_empty() {
                if nl > 0 {
                    self.send(&rest[..nl])?;
                }
            } else {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(&rest[..nl]);
                self.send(&line)?;
                line.clear();
                self.buf = line;
            }
            rest = &rest[nl + 1..];
        }
        self.buf.extend_from_slice(rest);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
