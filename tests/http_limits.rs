//! Issue 15: the HTTP surface is safe to expose. Connections that send
//! nothing are closed, connections beyond the limit wait instead of piling
//! up, an unauthenticated body is never read, and a read token guards the
//! API (never `/metrics` or the probes).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod common;

/// A server on a free loopback port, with an optional read token.
fn server(read_token: Option<&str>) -> (SocketAddr, tokio::runtime::Runtime, tempfile::TempDir) {
    common::http_server("write-token", read_token)
}

/// Send `request` and read the answer's status line (or `None` when the
/// server closes or says nothing within `wait`).
fn ask(addr: SocketAddr, request: &str, wait: Duration) -> Option<String> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().map(str::to_owned)
}

#[test]
fn a_connection_that_sends_nothing_is_closed() {
    // Regression (issue 15): 2,000 half-open connections were held 75 s.
    let (addr, _rt, _dir) = server(None);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let n = s.read(&mut [0u8; 64]).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "closed without an answer");
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "closed after {waited:?}"
    );
}

#[test]
fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let (addr, _rt, _dir) = server(None);
    let idle: Vec<TcpStream> = (0..driftd::http::MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    // Not served while every slot is held...
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(s.read(&mut [0u8; 64]).is_err(), "answered beyond the limit");
    // ...and served once the silent ones time out.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() < Duration::from_secs(25));
    drop(idle);
}

#[test]
fn an_unauthenticated_body_is_never_read() {
    let (addr, _rt, _dir) = server(None);
    // 50 MB announced, not one byte sent: the answer comes at once.
    let status = ask(
        addr,
        "POST /api/v1/models/m/candidates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status.as_deref(), Some("HTTP/1.1 401 Unauthorized"));
    // With the token, a body beyond the limit is refused, not buffered.
    let big = "x".repeat(driftd::http::MAX_BODY_BYTES + 10);
    let status = ask(
        addr,
        &format!(
            "POST /api/v1/models/m/candidates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer write-token\r\nContent-Length: {}\r\n\r\n{big}",
            big.len()
        ),
        Duration::from_secs(5),
    );
    assert_eq!(status.as_deref(), Some("HTTP/1.1 413 Payload Too Large"));
}

#[test]
fn a_read_token_guards_the_api_but_not_metrics_or_probes() {
    let (addr, _rt, _dir) = server(Some("read-token"));
    let get = |path: &str, token: Option<&str>| {
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        ask(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
            Duration::from_secs(5),
        )
        .unwrap()
    };
    for path in [
        "/api/v1/models",
        "/api/v1/windows?model=m",
        "/api/v1/decisions",
    ] {
        assert_eq!(get(path, None), "HTTP/1.1 401 Unauthorized", "{path}");
        assert_eq!(
            get(path, Some("wrong")),
            "HTTP/1.1 401 Unauthorized",
            "{path}"
        );
    }
    assert_eq!(get("/api/v1/models", Some("read-token")), "HTTP/1.1 200 OK");
    assert_eq!(
        get("/api/v1/models", Some("write-token")),
        "HTTP/1.1 200 OK"
    );
    for path in ["/metrics", "/healthz", "/"] {
        assert_eq!(get(path, None), "HTTP/1.1 200 OK", "{path}");
    }
    // Without a read token the API is open, as before.
    let (addr, _rt, _dir) = server(None);
    let status = ask(
        addr,
        "GET /api/v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
}
