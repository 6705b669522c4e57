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
        .get_or_create(&vec![("code", code)])
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
                        .get_or_create(&vec![
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
    dead_letter: Option<(String, ThreadedProducer<DeliveryCounter>)>,
    /// Dead letters the broker refused, as of the last flush.
    dead_letter_failed: u64,
    assigned: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

/// How often librdkafka reports statistics (consumer lag).
const STATS_INTERVAL_MS: &str = "5000";

impl KafkaSource {
    /// Connect and subscribe to the configured topics (and the feedback topic).
    pub fn new(cfg: &KafkaConfig, metrics: Arc<Metrics>) -> Result<Self, KafkaSourceError> {
        let assigned = Arc::new(AtomicUsize::new(0));
        let mut cc = ClientConfig::new();
        cc.set("statistics.interval.ms", STATS_INTERVAL_MS);
        for (k, v) in &cfg.options {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", &cfg.brokers)
            .set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
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
                pc.set("bootstrap.servers", &cfg.brokers)
                    .set("enable.idempotence", "true")
                    .set("acks", "all");
                Some((
                    topic.clone(),
                    pc.create_with_context(DeliveryCounter::default())?,
                ))
            }
        };
        Ok(Self {
            consumer,
            dead_letter,
            dead_letter_failed: 0,
            assigned,
            metrics,
        })
    }

    /// Partitions assigned to this member now.
    pub fn assigned(&self) -> usize {
        self.assigned.load(Ordering::Relaxed)
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
    /// [`KafkaSource::flush`] at the latest). Without a dead-letter topic the
    /// event is only logged.
    pub fn dead_letter(&mut self, d: &DeadLetter<'_>) -> Result<(), KafkaSourceError> {
        let Some((topic, producer)) = &self.dead_letter else {
            tracing::warn!(
                topic = d.topic,
                partition = d.partition,
                offset = d.offset,
                reason = d.reason,
                detail = d.detail,
                "rejected event (no dead-letter topic configured)"
            );
            return Ok(());
        };
        let partition = d.partition.to_string();
        let offset = d.offset.to_string();
        let headers = OwnedHeaders::new()
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
        let key = format!("{}/{}/{}", d.topic, d.partition, d.offset);
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload(d.payload)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        self.metrics.dead_letters.inc();
        Ok(())
    }

    /// Wait until every queued dead letter is acknowledged or refused by the
    /// broker. Refused ones (a missing topic, say) are counted in
    /// `driftd_dead_letter_failures_total` and logged; the events themselves
    /// stay counted as rejected.
    pub fn flush(&mut self, timeout: Duration) -> Result<(), KafkaSourceError> {
        if let Some((topic, p)) = &self.dead_letter {
            p.flush(timeout)?;
            let failed = p.context().failed.load(Ordering::Relaxed);
            if failed > self.dead_letter_failed {
                let n = failed - self.dead_letter_failed;
                self.metrics.dead_letter_failures.inc_by(n);
                tracing::error!(topic, count = n, "dead letters were not delivered");
                self.dead_letter_failed = failed;
            }
        }
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

/// Counts messages the broker did not acknowledge.
#[derive(Default)]
pub struct DeliveryCounter {
    failed: std::sync::atomic::AtomicU64,
}

impl ClientContext for DeliveryCounter {}

impl rdkafka::producer::ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "message not delivered");
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
        let failed = self.producer.context().failed.load(Ordering::Relaxed);
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
