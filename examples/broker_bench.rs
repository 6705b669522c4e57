//! End-to-end benchmark against a real broker (issue 4): `driftd run` beside
//! a bare rdkafka consumer that only counts messages, same topic, same run.
//!
//!   cargo run --release --example broker_bench -- [EVENTS] [ROUNDS]
//!
//! Starts tansu on loopback (as the tests do), produces EVENTS generated
//! events (default 300,000) to a one-partition topic, then in each round reads
//! the whole topic once with the bare consumer and once with `driftd run`
//! (release binary, its own consumer group and state directory, checkpoints
//! as configured by default). Each rate is events / (time of the last event -
//! time of the first), so start-up and group joins are left out; driftd's
//! clock is read from its /metrics every 20 ms.

#[path = "../tests/support/broker.rs"]
mod broker;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker::{free_port, http_get, metric, Broker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

fn bare(brokers: &str, group: &str, n: u64) -> f64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&["logs"]).unwrap();
    let mut seen = 0u64;
    let mut first = None;
    while seen < n {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            seen += 1;
        }
    }
    n as f64 / first.unwrap().elapsed().as_secs_f64()
}

fn driftd(bin: &str, brokers: &str, round: usize, n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\ntopics = [\"logs\"]\ngroup_id = \"driftd-{round}\"\n\
             [http]\nlisten = \"{http}\"\n[state]\ndir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("DRIFTD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = None;
    let last;
    let mut marks: Vec<u64> = [1_000_000u64, 2_000_000, 5_000_000, 10_000_000]
        .into_iter()
        .filter(|&m| m <= n)
        .collect();
    loop {
        let consumed = http_get(&http, "/metrics")
            .and_then(|(_, m)| metric(&m, "driftd_events_consumed_total"))
            .unwrap_or(0.0) as u64;
        let now = Instant::now();
        if marks.first().is_some_and(|&m| consumed >= m) {
            let m = marks.remove(0);
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
            let rss = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .unwrap_or("VmRSS: ?");
            println!("  driftd after {m} events ({consumed} consumed): {rss}");
        }
        if consumed > 0 && first.is_none() {
            first = Some(now);
        }
        if consumed >= n {
            last = now;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    n as f64 / (last - first.unwrap()).as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map_or(300_000, |a| a.parse().unwrap());
    let rounds: usize = args.get(2).map_or(3, |a| a.parse().unwrap());
    let bin = std::env::var("DRIFTD_BIN").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        format!("{target}/release/driftd")
    });
    let broker = Broker::start();
    broker.create_topic("logs", 1);
    let events = broker::generated(
        driftd::source::generate::Scenario::CovariateShift,
        n,
        "alt-text-captioner",
        1,
    );
    let bytes: usize = events.iter().map(Vec::len).sum();
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let t = Instant::now();
    for e in &events {
        let mut r = BaseRecord::<(), [u8]>::to("logs").payload(e);
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
    println!(
        "produced {n} events ({} bytes each on average) in {:.1} s",
        bytes / n as usize,
        t.elapsed().as_secs_f64()
    );
    for round in 0..rounds {
        let b = bare(&broker.addr, &format!("bare-{round}"), n);
        let d = driftd(&bin, &broker.addr, round, n);
        println!(
            "round {round}: bare consumer {b:.0} events/s, driftd run {d:.0} events/s ({:.0} %)",
            d / b * 100.0
        );
    }
}
