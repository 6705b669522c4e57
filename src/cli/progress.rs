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
    /// Progress on stderr when `enabled`.
    pub fn start(enabled: bool) -> Self {
        Self::start_to(enabled, Box::new(std::io::stderr()))
    }

    /// Progress written to `out` when `enabled`.
    pub fn start_to(enabled: bool, mut out: Box<dyn Write + Send>) -> Self {
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
                        out,
                        "driftd: {stage} ({:.1}s)",
                        start.elapsed().as_secs_f64()
                    );
                    printed = Some((stage.clone(), Instant::now()));
                }
            }
            if printed.is_some() {
                let _ = writeln!(out, "driftd: done in {:.1}s", start.elapsed().as_secs_f64());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(s: &Shared) -> String {
        String::from_utf8(s.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn quick_work_prints_nothing() {
        let out = Shared::default();
        let p = Progress::start_to(true, Box::new(out.clone()));
        p.stage("reading a.csv");
        drop(p);
        assert_eq!(text(&out), "");
    }

    #[test]
    fn slow_work_reports_its_stage_then_done() {
        let out = Shared::default();
        let p = Progress::start_to(true, Box::new(out.clone()));
        p.stage("reading big.parquet");
        std::thread::sleep(Duration::from_millis(1500));
        drop(p);
        let t = text(&out);
        assert!(t.starts_with("driftd: reading big.parquet ("), "{t}");
        assert!(
            t.lines().last().unwrap().starts_with("driftd: done in "),
            "{t}"
        );
    }

    #[test]
    fn disabled_progress_never_prints() {
        let out = Shared::default();
        let p = Progress::start_to(false, Box::new(out.clone()));
        p.stage("x");
        std::thread::sleep(Duration::from_millis(1200));
        drop(p);
        assert_eq!(text(&out), "");
    }
}
