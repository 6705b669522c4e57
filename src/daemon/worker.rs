//! A first-in, first-out worker thread: the consumer hands it closed windows
//! whose learned checks are still to run and takes them back, in the order
//! given, when they are done. The consumer never waits for a check; it waits
//! only when it must (a checkpoint holds no window still at the worker).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

pub struct Worker<T: Send + 'static> {
    tx: Option<Sender<T>>,
    rx: Receiver<T>,
    in_flight: usize,
    handle: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Worker<T> {
    /// Start a thread named `name` that applies `work` to each item.
    pub fn start(name: &str, work: impl Fn(T) -> T + Send + 'static) -> std::io::Result<Self> {
        let (tx, inbox) = channel::<T>();
        let (done, rx) = channel::<T>();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for item in inbox {
                    if done.send(work(item)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            rx,
            in_flight: 0,
            handle: Some(handle),
        })
    }

    /// Queue an item; returns at once.
    pub fn submit(&mut self, item: T) {
        let tx = self.tx.as_ref().expect("submit before shutdown");
        // The thread only stops when `tx` is dropped (or `work` panicked,
        // which the caller's `work` must not let happen).
        if tx.send(item).is_ok() {
            self.in_flight += 1;
        }
    }

    /// Items submitted and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The items done so far, in submission order, without waiting.
    pub fn ready(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        while let Ok(item) = self.rx.try_recv() {
            out.push(item);
        }
        self.in_flight -= out.len();
        out
    }

    /// Every item still in flight, waiting for each.
    pub fn wait_all(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.in_flight);
        while self.in_flight > 0 {
            match self.rx.recv() {
                Ok(item) => {
                    out.push(item);
                    self.in_flight -= 1;
                }
                Err(_) => {
                    self.in_flight = 0;
                }
            }
        }
        out
    }
}

impl<T: Send + 'static> Drop for Worker<T> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    /// Submitting never waits for the work: with the worker held at a
    /// barrier, three submissions return, nothing is ready, and once the
    /// barrier opens the items come back in the order given.
    #[test]
    fn submitting_does_not_wait_and_results_keep_their_order() {
        let gate = Arc::new(Barrier::new(2));
        let g = gate.clone();
        let mut w = Worker::start("test-worker", move |i: u32| {
            if i == 0 {
                g.wait();
            }
            i * 10
        })
        .unwrap();
        for i in 0..3 {
            w.submit(i);
        }
        assert_eq!(w.in_flight(), 3);
        assert!(
            w.ready().is_empty(),
            "the first item is held at the barrier"
        );
        gate.wait();
        assert_eq!(w.wait_all(), vec![0, 10, 20]);
        assert_eq!(w.in_flight(), 0);
        w.submit(7);
        assert_eq!(w.wait_all(), vec![70]);
    }
}
