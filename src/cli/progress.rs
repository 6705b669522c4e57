//! Progress on stderr for offline work that takes more than about a second.
//! Quick runs print nothing; stdout is never touched. Work of a known size
//! (a replayed file's bytes) shows a bar: redrawn in place on a terminal,
//! a line every few seconds otherwise (`DRIFTD_PROGRESS=1` in a CI log).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Delay before the first line: quick commands stay silent.
const QUIET_FOR: Duration = Duration::from_millis(1000);
/// How often a long stage is reported again on a line of its own.
const REPEAT_EVERY: Duration = Duration::from_secs(5);
/// How often the bar is redrawn in place.
const REDRAW_EVERY: Duration = Duration::from_millis(200);
const BAR_WIDTH: usize = 30;

/// How far a piece of work of known size has come: shared with the threads
/// doing it.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    done: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

impl Counter {
    /// Set the amount `done` (out of the total the stage announced).
    pub fn set(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }

    fn fraction(&self) -> Option<f64> {
        let total = self.total.load(Ordering::Relaxed);
        (total > 0).then(|| (self.done.load(Ordering::Relaxed) as f64 / total as f64).min(1.0))
    }
}

pub struct Progress {
    tx: Mutex<Option<Sender<String>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    counter: Counter,
}

/// `[#########.....]  45%`.
fn bar(fraction: f64) -> String {
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled.min(BAR_WIDTH)),
        fraction * 100.0
    )
}

impl Progress {
    /// Progress on stderr when `enabled`, redrawn in place when stderr is a
    /// terminal.
    /// `DRIFTD_PROGRESS=always` shows it from the start, however quick.
    pub fn start(enabled: bool) -> Self {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        let always = std::env::var("DRIFTD_PROGRESS").is_ok_and(|v| v == "always");
        let quiet = if always { Duration::ZERO } else { QUIET_FOR };
        Self::start_with(enabled, tty, quiet, Box::new(std::io::stderr()))
    }

    /// Progress written to `out` when `enabled`; `in_place`: a terminal.
    pub fn start_to(enabled: bool, in_place: bool, out: Box<dyn Write + Send>) -> Self {
        Self::start_with(enabled, in_place, QUIET_FOR, out)
    }

    /// As [`Progress::start_to`], silent for `quiet` first.
    pub fn start_with(
        enabled: bool,
        in_place: bool,
        quiet: Duration,
        mut out: Box<dyn Write + Send>,
    ) -> Self {
        let counter = Counter::default();
        if !enabled {
            return Self {
                tx: Mutex::new(None),
                worker: Mutex::new(None),
                counter,
            };
        }
        let (tx, rx) = mpsc::channel::<String>();
        let shared = counter.clone();
        let worker = std::thread::spawn(move || {
            let start = Instant::now();
            let mut stage = String::from("starting");
            let mut printed: Option<(String, Instant)> = None;
            let mut open_line = false;
            loop {
                match rx.recv_timeout(REDRAW_EVERY) {
                    Ok(s) => stage = s,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if start.elapsed() < quiet {
                    continue;
                }
                let fraction = shared.fraction();
                let elapsed = start.elapsed().as_secs_f64();
                let line = match fraction {
                    Some(f) => format!("driftd: {stage} {} ({elapsed:.1}s)", bar(f)),
                    None => format!("driftd: {stage} ({elapsed:.1}s)"),
                };
                if in_place {
                    // One line, rewritten: carriage return, the line, clear to its end.
                    let _ = write!(out, "\r{line}\x1b[K");
                    let _ = out.flush();
                    open_line = true;
                    printed = Some((stage.clone(), Instant::now()));
                    continue;
                }
                let due = match &printed {
                    Some((s, at)) => *s != stage || at.elapsed() >= REPEAT_EVERY,
                    None => true,
                };
                if due {
                    let _ = writeln!(out, "{line}");
                    printed = Some((stage.clone(), Instant::now()));
                }
            }
            if open_line {
                let _ = write!(out, "\r\x1b[K");
            }
            if printed.is_some() {
                let _ = writeln!(out, "driftd: done in {:.1}s", start.elapsed().as_secs_f64());
            }
        });
        Self {
            tx: Mutex::new(Some(tx)),
            worker: Mutex::new(Some(worker)),
            counter,
        }
    }

    pub fn stage(&self, what: impl Into<String>) {
        if let Some(tx) = self.tx.lock().ok().as_deref().and_then(Option::as_ref) {
            let _ = tx.send(what.into());
        }
    }

    /// Stop: the bar's line is cleared and, if anything was shown, the
    /// closing line written; later stages are not shown. Dropping does the
    /// same.
    pub fn finish(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = worker {
            let _ = w.join();
        }
    }

    /// A stage of known size: the bar follows what the returned counter is
    /// set to, out of `total`.
    pub fn measured(&self, what: impl Into<String>, total: u64) -> Counter {
        self.counter.set(0);
        self.counter.total.store(total, Ordering::Relaxed);
        self.stage(what);
        self.counter.clone()
    }

    /// Back to stages without a bar.
    pub fn unmeasured(&self, what: impl Into<String>) {
        self.counter.total.store(0, Ordering::Relaxed);
        self.stage(what);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
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
        let p = Progress::start_to(true, false, Box::new(out.clone()));
        p.stage("reading a.csv");
        drop(p);
        assert_eq!(text(&out), "");
    }

    #[test]
    fn slow_work_reports_its_stage_then_done() {
        let out = Shared::default();
        let p = Progress::start_to(true, false, Box::new(out.clone()));
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
        let p = Progress::start_to(false, false, Box::new(out.clone()));
        p.stage("x");
        std::thread::sleep(Duration::from_millis(1200));
        drop(p);
        assert_eq!(text(&out), "");
    }

    #[test]
    fn measured_work_shows_a_bar_redrawn_in_place_on_a_terminal() {
        let out = Shared::default();
        let p = Progress::start_to(true, true, Box::new(out.clone()));
        let c = p.measured("replaying logs.ndjson", 200);
        c.set(50);
        std::thread::sleep(Duration::from_millis(1300));
        c.set(150);
        std::thread::sleep(Duration::from_millis(500));
        drop(p);
        let t = text(&out);
        assert!(
            t.contains("\rdriftd: replaying logs.ndjson [########......................]  25% ("),
            "{t:?}"
        );
        assert!(
            t.contains(&format!("[{}{}]  75%", "#".repeat(23), ".".repeat(7))),
            "{t:?}"
        );
        // Every draw returns to the line's start and none ends a line; the
        // last is cleared before the closing line.
        assert!(!t.contains("%\n") && !t.contains(")\n"), "{t:?}");
        assert!(t.contains("\r\x1b[Kdriftd: done in "), "{t:?}");
        assert!(
            t.lines().last().unwrap().contains("driftd: done in "),
            "{t:?}"
        );
    }

    #[test]
    fn measured_work_in_a_log_gets_lines_with_the_bar() {
        let out = Shared::default();
        let p = Progress::start_to(true, false, Box::new(out.clone()));
        let c = p.measured("replaying logs.ndjson", 4);
        c.set(1);
        std::thread::sleep(Duration::from_millis(1300));
        drop(p);
        let t = text(&out);
        assert!(!t.contains('\r'), "{t:?}");
        assert!(
            t.starts_with("driftd: replaying logs.ndjson [########......................]  25% ("),
            "{t:?}"
        );
    }
}
