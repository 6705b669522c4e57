//! Running `driftd run` in the integration tests, and a webhook receiver
//! that checks what it is sent.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bearer token of the daemons these tests start.
pub const API_TOKEN: &str = "test-token-0123456789";
/// The Standard Webhooks specification's example secret.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A running daemon; killed when dropped, so a failing test leaves none behind.
pub struct Daemon(Child);

impl std::ops::Deref for Daemon {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl From<Child> for Daemon {
    fn from(c: Child) -> Self {
        Self(c)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn spawn_daemon(config: &Path, log: &Path, extra_args: &[&str]) -> Daemon {
    spawn_daemon_env(config, log, extra_args, &[])
}

/// As [`spawn_daemon`], with more environment variables.
pub fn spawn_daemon_env(
    config: &Path,
    log: &Path,
    extra_args: &[&str],
    env: &[(&str, &str)],
) -> Daemon {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_driftd"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(extra_args)
        .env_remove("DRIFTD_CONFIG")
        .env("DRIFTD_LOG", "info")
        .env("DRIFTD_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("DRIFTD_API_TOKEN", API_TOKEN)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .map(Daemon)
        .expect("driftd starts")
}

pub fn wait_exit(child: &mut Child, timeout: Duration, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "driftd did not exit within {timeout:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for the daemon to exit and require a clean exit, showing its log
/// otherwise: a failed shutdown says why.
pub fn exit_cleanly(child: &mut Child, timeout: Duration, log: &Path) {
    let status = wait_exit(child, timeout, log);
    assert!(
        status.success(),
        "driftd exited with {status}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

pub fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM");
}

pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool (Debian package prometheus) is needed to check /metrics: {e}")
        });
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub mod receiver {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use axum::http::{HeaderMap, StatusCode};
    use base64::Engine as _;
    use hmac::{Hmac, Mac};

    #[derive(Debug, Clone)]
    pub struct Request {
        pub at: Instant,
        pub path: String,
        pub headers: HeaderMap,
        pub body: Vec<u8>,
        pub id: String,
        pub signature_ok: bool,
        /// `X-Hub-Signature-256`, when sent: whether it matches (keyed by
        /// the secret as written).
        pub hub_signature_ok: Option<bool>,
        pub event: serde_json::Value,
        pub content_type: String,
    }

    #[derive(Default)]
    pub struct State {
        /// (status, Retry-After seconds) answered in order; 200 after.
        pub script: VecDeque<(u16, Option<u64>)>,
        /// Answer the first this-many requests only after `slow_ms`.
        pub slow: usize,
        pub slow_ms: u64,
        /// Every request whose path starts with one of these is answered
        /// only after its delay (ms).
        pub slow_paths: Vec<(String, u64)>,
        pub requests: Vec<Request>,
    }

    fn hub_signature(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.", h("webhook-id"), h("webhook-timestamp")).as_bytes());
        mac.update(body);
        let want = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        let fresh = h("webhook-timestamp")
            .parse::<i64>()
            .is_ok_and(|t| (t - time::OffsetDateTime::now_utc().unix_timestamp()).abs() < 300);
        fresh && h("webhook-signature").split(' ').any(|s| s == want)
    }

    /// Serve on `addr` (in a thread of its own) until the test ends.
    pub fn start(addr: String, secret: &'static str, state: Arc<Mutex<State>>) {
        let listener = std::net::TcpListener::bind(&addr).expect("receiver binds");
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                // Every path is answered and logged: the same receiver plays
                // a webhook endpoint, GitLab's trigger API and GitHub's.
                let app = axum::Router::new().fallback(
                    move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                        let state = state.clone();
                        async move {
                            let event: serde_json::Value =
                                serde_json::from_slice(&body).unwrap_or_default();
                            // Logged on arrival: a client that gives up
                            // (timeout) cancels the rest of this handler.
                            let (status, retry_after, delay) = {
                                let mut s = state.lock().unwrap();
                                s.requests.push(Request {
                                    at: Instant::now(),
                                    path: uri.to_string(),
                                    headers: headers.clone(),
                                    body: body.to_vec(),
                                    id: headers
                                        .get("webhook-id")
                                        .and_then(|v| v.to_str().ok())
                                        .unwrap_or_default()
                                        .to_owned(),
                                    signature_ok: verify(secret, &headers, &body),
                                    hub_signature_ok: headers
                                        .get("x-hub-signature-256")
                                        .and_then(|v| v.to_str().ok())
                                        .map(|v| v == hub_signature(secret, &body)),
                                    event,
                                    content_type: headers
                                        .get("content-type")
                                        .and_then(|v| v.to_str().ok())
                                        .unwrap_or_default()
                                        .to_owned(),
                                });
                                let (status, retry_after) =
                                    s.script.pop_front().unwrap_or((200, None));
                                let path = uri.path().to_owned();
                                let delay = if s.slow > 0 {
                                    s.slow -= 1;
                                    s.slow_ms
                                } else {
                                    s.slow_paths
                                        .iter()
                                        .find(|(p, _)| path.starts_with(p.as_str()))
                                        .map_or(0, |(_, ms)| *ms)
                                };
                                (status, retry_after, delay)
                            };
                            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                            let mut h = HeaderMap::new();
                            if let Some(r) = retry_after {
                                h.insert("retry-after", r.to_string().parse().unwrap());
                            }
                            (StatusCode::from_u16(status).unwrap(), h, "")
                        }
                    },
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
    }
}
