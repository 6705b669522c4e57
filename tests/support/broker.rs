//! A real Kafka-protocol broker for the integration tests: tansu 0.6.0 with
//! in-memory storage on a free loopback port, one per test, stopped on drop.
//! No broker means a failed test with the reason, never a skip.
//!
//! tansu 0.6.0's memory storage cannot serve a fetch that starts inside a
//! record batch: it returns the next batch, skipping the rest (measured: a
//! fetch at offset 8711 of 20,000 events produced with librdkafka's default
//! batching first returned offset 9360). A consumer resuming from a committed
//! offset would lose events through no fault of its own, so these tests
//! produce one record per batch (`batch.num.messages=1`); with that, a fetch
//! from every offset tried returned every later record.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

pub const TANSU_INSTALL: &str =
    "cargo install tansu --version 0.6.0 --locked --features dynostore,libsql";

/// Client options tansu 0.6.0 needs for SASL: it answers no request before
/// authentication, not even ApiVersions, so the client must not ask and
/// assume a broker version instead.
pub const SASL_CLIENT_WORKAROUND: [(&str, &str); 2] = [
    ("api.version.request", "false"),
    ("broker.version.fallback", "2.8.0"),
];

pub struct Broker {
    child: Child,
    pub addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    /// How it was started (for [`Broker::start_again`]).
    args: Vec<String>,
}

/// tansu reads a relative SQLite URL from its working directory, the
/// broker's own.
fn broker_cwd(log: &Path) -> &Path {
    log.parent().unwrap()
}

/// A loopback port no other caller in this process gets. Ports come from
/// below Linux's ephemeral range (32768 and up), so an outgoing connection
/// cannot take one between this check and the listener binding it, and
/// each process starts at its own offset.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 10_000) as u16;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::SeqCst) % 2_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The tansu binary: `$TANSU`, then `tansu` on PATH, then `~/.cargo/bin/tansu`.
fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tansu"))
            .find(|p| p.is_file())
    });
    if let Some(p) = on_path {
        return p;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let p = home.join(".cargo/bin/tansu");
    if p.is_file() {
        return p;
    }
    panic!(
        "the Kafka-protocol broker tansu is not installed, so the broker-backed tests cannot run. \
         `bash scripts/test.sh` installs it; by hand: {TANSU_INSTALL}"
    );
}

impl Broker {
    pub fn start() -> Self {
        Self::start_advertising(None)
    }

    /// A broker that tells clients to connect to `advertised` (a port on
    /// 127.0.0.1, e.g. a TLS proxy in front of it) instead of its own port.
    pub fn start_advertising(advertised: Option<u16>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let url = format!("tcp://{addr}");
        let advertised_url = advertised.map_or(url.clone(), |p| format!("tcp://127.0.0.1:{p}"));
        let log = dir.path().join("tansu.log");
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised_url,
            "--storage-engine",
            "memory://tansu/",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Self::spawn_with(dir, addr, log, args)
    }

    /// A broker on SQLite storage in its own directory: stopped and started
    /// again ([`Broker::stop`], [`Broker::start_again`]), it keeps its topics,
    /// records and groups.
    pub fn start_sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let url = format!("tcp://{addr}");
        let db = "sqlite://tansu.db".to_owned();
        let log = dir.path().join("tansu.log");
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            &db,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Self::spawn_with(dir, addr, log, args)
    }

    /// Kill the broker and wait until its port is free.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&self.addr).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start a stopped broker again, as it was started.
    pub fn start_again(&mut self) {
        self.child = Self::spawn_child(&self.args, &self.log);
        self.wait_listening();
    }

    fn spawn_child(args: &[String], log: &Path) -> Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(tansu())
            .args(args)
            .current_dir(broker_cwd(log))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu: {e}"))
    }

    fn spawn_with(dir: tempfile::TempDir, addr: String, log: PathBuf, args: Vec<String>) -> Self {
        let child = Self::spawn_child(&args, &log);
        let mut b = Self {
            child,
            addr,
            log,
            _dir: dir,
            args,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&b.addr).is_err() {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!(
                    "tansu exited ({status}) before listening:\n{}",
                    b.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within 30 s:\n{}",
                b.addr,
                b.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    /// A broker that requires SASL/SCRAM-SHA-256 with `user` and
    /// `password`, with `topics` created. tansu keeps SCRAM credentials only
    /// in its SQL storage, and with `--authentication` refuses every request
    /// before SASL (so it cannot be given a user): it is started on SQLite
    /// without authentication, given the user and topics, and started again
    /// on the same file with authentication. tansu also refuses the
    /// ApiVersions request a client sends before authenticating, so clients
    /// need `api.version.request=false` ([`SASL_CLIENT_WORKAROUND`]).
    pub fn start_sasl(user: &str, password: &str, topics: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = dir.path().join("tansu.log");
        let cwd = dir.path().to_owned();
        let spawn = |auth: bool| {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            let mut c = Command::new(tansu());
            c.args(["broker", "--listener-url", &format!("tcp://{addr}")])
                .args(["--advertised-listener-url", &format!("tcp://{addr}")])
                .args(["--storage-engine", "sqlite://tansu.db"])
                .current_dir(&cwd)
                .stdout(out.try_clone().unwrap())
                .stderr(out);
            if auth {
                c.arg("--authentication");
            }
            c.spawn()
                .unwrap_or_else(|e| panic!("cannot start tansu: {e}"))
        };
        let mut open = Self {
            child: spawn(false),
            addr: addr.clone(),
            log: log.clone(),
            _dir: dir,
            args: Vec::new(),
        };
        open.wait_listening();
        let out = Command::new(tansu())
            .args(["user", "create", "--broker", &format!("tcp://{addr}")])
            .args([user, password, "--mechanism", "scram256"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "creating the SASL user: {}{}",
            String::from_utf8_lossy(&out.stderr),
            open.log_text()
        );
        for t in topics {
            open.create_topic(t, 1);
        }
        let _ = open.child.kill();
        let _ = open.child.wait();
        // Its port is free again once the process is gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        open.child = spawn(true);
        open.wait_listening();
        open
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&self.addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tansu exited ({status}) before listening:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within 30 s:\n{}",
                self.addr,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu())
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://{}", self.addr),
            ])
            .args(["--partitions", &partitions.to_string(), name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "creating topic {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A handle on a running broker at `addr` that can only produce (for a
    /// producer on another thread).
    pub fn connect(addr: &str) -> Producing {
        Producing(addr.to_owned())
    }

    /// Produce `lines` to `topic` (to `partition` when given), one record per
    /// batch (see the module doc), and wait for every acknowledgement.
    pub fn produce(&self, topic: &str, partition: Option<i32>, lines: &[Vec<u8>]) {
        self.produce_with(&self.addr, &[], topic, partition, lines)
    }

    /// As [`Broker::produce`], through `bootstrap` with extra client options.
    pub fn produce_with(
        &self,
        bootstrap: &str,
        options: &[(&str, &str)],
        topic: &str,
        partition: Option<i32>,
        lines: &[Vec<u8>],
    ) {
        produce_to(bootstrap, options, topic, partition, lines)
    }
}

/// Produce `lines` through `bootstrap`, one record per batch.
fn produce_to(
    bootstrap: &str,
    options: &[(&str, &str)],
    topic: &str,
    partition: Option<i32>,
    lines: &[Vec<u8>],
) {
    {
        let mut cc = ClientConfig::new();
        for (k, v) in options {
            cc.set(*k, *v);
        }
        let p: ThreadedProducer<DefaultProducerContext> = cc
            .set("bootstrap.servers", bootstrap)
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .set("acks", "all")
            .create()
            .unwrap();
        for line in lines {
            let mut r = BaseRecord::<(), [u8]>::to(topic).payload(line);
            if let Some(part) = partition {
                r = r.partition(part);
            }
            loop {
                match p.send(r) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        r = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        p.flush(Duration::from_secs(60))
            .expect("every event acknowledged");
    }
}

/// See [`Broker::connect`].
pub struct Producing(String);

impl Producing {
    pub fn produce(&self, topic: &str, partition: Option<i32>, lines: &[Vec<u8>]) {
        produce_to(&self.0, &[], topic, partition, lines)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Synthetic events, one per element.
pub fn generated(
    scenario: driftd::source::generate::Scenario,
    n: u64,
    model: &str,
    seed: u64,
) -> Vec<Vec<u8>> {
    let mut spec = driftd::source::generate::GenerateSpec::new(scenario, n);
    spec.model = model.into();
    spec.seed = seed;
    lines_of(&spec)
}

/// The events `spec` generates, one per element.
pub fn lines_of(spec: &driftd::source::generate::GenerateSpec) -> Vec<Vec<u8>> {
    driftd::testkit::lines(spec)
}

/// A record read back from a topic.
pub struct Record {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    /// Header values as text (lossy).
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every record of `topic`/0 from the start, waiting up to 30 s for `expect`.
pub fn read_topic(broker: &str, topic: &str, expect: usize) -> Vec<Record> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::{Message, Offset, TopicPartitionList};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expect && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Record {
                key: m.key().unwrap_or_default().to_vec(),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
    }
    out
}

/// `GET path` on `addr`: (status, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    http_request(addr, "GET", path, None)
}

/// `method path` on `addr`, with a bearer token if given: (status, body).
/// `GET path`, which must answer 200 with JSON.
pub fn get_json(addr: &str, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path).unwrap_or_else(|| panic!("GET {path}"));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Option<(u16, String)> {
    http_send(addr, method, path, token, "")
}

/// `method path` on `addr` with a JSON `body`, and a bearer token if given.
pub fn http_send(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Wait until `f` returns `Some`, or panic with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A sample's value in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// What most daemon tests start from: a broker with the `logs` and
/// `dead-letters` topics, a state directory, and free loopback addresses for
/// the daemon's HTTP server and for a receiver.
pub struct Rig {
    pub broker: Broker,
    pub dir: tempfile::TempDir,
    pub http: String,
    pub hook: String,
}

impl Rig {
    pub fn start() -> Self {
        let broker = Broker::start();
        broker.create_topic("logs", 1);
        broker.create_topic("dead-letters", 1);
        Self {
            broker,
            dir: tempfile::tempdir().unwrap(),
            http: format!("127.0.0.1:{}", free_port()),
            hook: format!("127.0.0.1:{}", free_port()),
        }
    }
}

/// A daemon config for the tests: given broker, topics and state directory.
pub fn daemon_config(dir: &Path, broker: &str, http: &str, extra: &str) -> PathBuf {
    let path = dir.join("driftd.toml");
    std::fs::write(
        &path,
        format!(
            r#"[kafka]
brokers = "{broker}"
topics = ["logs"]
dead_letter_topic = "dead-letters"
# The shipped consumer settings: tests add only what their point needs.
[kafka.options]
[http]
listen = "{http}"
[state]
dir = "{state}"
checkpoint_interval = "100ms"
checkpoint_events = 500
shutdown_timeout = "20s"
{extra}
"#,
            state = dir.join("state").display()
        ),
    )
    .unwrap();
    path
}
