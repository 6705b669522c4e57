//! Progress lines on stderr for offline work that takes more than about a
//! second. Quick runs print nothing; stdout is never touched.

use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Delay before the first line: quick commands stay silent.
const QUIET_FOR: Duration = Duration::from_millis(1000);
/// How often a long stage is reported again.
const REPEAT_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    tx: Option<Sender<String>>,
    worker: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(enabled: bool) -> Self {
        if !enabled {
            return Self {
                tx: None,
                worker: None,
            };
        }
        let (tx, rx) = mpsc::channel::<String>();
        let worker = std::thread::spawn(move || {
            let start = Instant::now();
            let mut stage = String::from("starting");
            let mut printed: Option<(String, Instant)> = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(s) => stage = s,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if start.elapsed() < QUIET_FOR {
                    continue;
                }
                let due = match &printed {
                    Some((s, at)) => *s != stage || at.elapsed() >= REPEAT_EVERY,
                    None => true,
                };
                if due {
                    let _ = writeln!(
                        std::io::stderr(),
                        "driftd: {stage} ({:.1}s)",
                        start.elapsed().as_secs_f64()
                    );
                    printed = Some((stage.clone(), Instant::now()));
                }
            }
            if printed.is_some() {
                let _ = writeln!(
                    std::io::stderr(),
                    "driftd: done in {:.1}s",
                    start.elapsed().as_secs_f64()
                );
            }
        });
        Self {
            tx: Some(tx),
            worker: Some(worker),
        }
    }

    pub fn stage(&self, what: impl Into<String>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(what.into());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
