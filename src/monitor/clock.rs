//! A model version's event-time clock, robust to a few events stamped far
//! ahead. The watermark that closes time windows follows the newest event
//! time; one event stamped 2100-01-01 would close every window up to 2100 and
//! make every later event late. Here an event more than the tolerance ahead
//! of the clock is held back (counted as `future_events`, not tracked) unless
//! [`CONFIRM`] such events arrive in a row, close to each other, as when
//! traffic resumes after a gap; then the clock jumps. The first [`CONFIRM`]
//! events of a version set the clock by their median, so a far-ahead first
//! event cannot set it either.

use serde::{Deserialize, Serialize};

/// Events in a row, far ahead of the clock and within the tolerance of each
/// other, that move the clock to them; also the events whose median starts it.
pub const CONFIRM: usize = 10;

/// Least tolerance: an event up to an hour ahead of the clock is taken as it
/// is (a tolerance of two windows when windows are longer).
pub const MIN_TOLERANCE_MS: i64 = 3_600_000;

/// What the clock made of an event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// At or behind the clock, or not far ahead of it: an event as any other.
    Normal,
    /// Far ahead of the clock, not (yet) confirmed: held back.
    Ahead,
    /// This event completed the first [`CONFIRM`] events and the clock now
    /// stands at their median: events ahead of it by more than the tolerance
    /// among those already taken were premature.
    Settled,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventClock {
    /// The newest event time taken, once the clock is set.
    max_ms: Option<i64>,
    /// Until then, the version's first event times.
    first: Vec<i64>,
    /// Events in a row ahead of the clock, and the time of the first of them.
    ahead_run: u32,
    ahead_first: i64,
}

impl EventClock {
    /// Take one event time. `tolerance_ms` > 0.
    pub fn admit(&mut self, ts: i64, tolerance_ms: i64) -> Admit {
        let Some(max) = self.max_ms else {
            self.first.push(ts);
            if self.first.len() < CONFIRM {
                return Admit::Normal;
            }
            let mut sorted = std::mem::take(&mut self.first);
            sorted.sort_unstable();
            let median = sorted[sorted.len() / 2];
            let limit = median.saturating_add(tolerance_ms);
            self.max_ms = sorted.iter().copied().filter(|&t| t <= limit).max();
            return Admit::Settled;
        };
        if ts <= max.saturating_add(tolerance_ms) {
            self.ahead_run = 0;
            self.max_ms = Some(max.max(ts));
            return Admit::Normal;
        }
        let consistent = self.ahead_run > 0 && ts.abs_diff(self.ahead_first) <= tolerance_ms as u64;
        if consistent {
            self.ahead_run += 1;
        } else {
            self.ahead_run = 1;
            self.ahead_first = ts;
        }
        if self.ahead_run as usize >= CONFIRM {
            self.ahead_run = 0;
            self.max_ms = Some(ts.max(self.ahead_first));
            Admit::Normal
        } else {
            Admit::Ahead
        }
    }

    /// The clock: the newest event time taken, once set.
    pub fn now(&self) -> Option<i64> {
        self.max_ms
    }

    /// The newest event time to show and to age pending feedback by: the
    /// clock, or before it is set the median of the first events.
    pub fn newest(&self) -> Option<i64> {
        self.max_ms.or_else(|| {
            let mut v = self.first.clone();
            v.sort_unstable();
            v.get(v.len() / 2).copied()
        })
    }
}

/// The tolerance for windows of `size_ms` (0 for count windows).
pub fn tolerance_ms(size_ms: i64) -> i64 {
    MIN_TOLERANCE_MS.max(size_ms.saturating_mul(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: i64 = MIN_TOLERANCE_MS;
    const START: i64 = 1_795_478_400_000;

    fn settled(at: i64) -> EventClock {
        let mut c = EventClock::default();
        for i in 0..CONFIRM as i64 {
            c.admit(at + i, TOL);
        }
        c
    }

    #[test]
    fn the_median_of_the_first_events_sets_it() {
        let mut c = EventClock::default();
        // A far-ahead first event (the year 2100), then ordinary ones.
        assert_eq!(c.admit(4_102_444_800_000, TOL), Admit::Normal);
        for i in 1..CONFIRM as i64 - 1 {
            assert_eq!(c.admit(START + i * 1000, TOL), Admit::Normal);
            assert!(c.now().is_none());
        }
        assert_eq!(c.admit(START + 20_000, TOL), Admit::Settled);
        assert_eq!(c.now(), Some(START + 20_000));
    }

    #[test]
    fn a_few_events_far_ahead_do_not_move_it() {
        let mut c = settled(START);
        let t = START + 10;
        for k in 0..(CONFIRM - 1) {
            // Interleaved with ordinary events: never CONFIRM in a row.
            assert_eq!(c.admit(4_102_444_800_000 + k as i64, TOL), Admit::Ahead);
            assert_eq!(c.admit(t + k as i64, TOL), Admit::Normal);
        }
        assert_eq!(c.now(), Some(t + CONFIRM as i64 - 2));
        // CONFIRM - 1 in a row are still held back.
        for _ in 0..CONFIRM - 1 {
            assert_eq!(c.admit(4_102_444_800_000, TOL), Admit::Ahead);
        }
        assert_eq!(c.now(), Some(t + CONFIRM as i64 - 2));
    }

    #[test]
    fn traffic_resuming_after_a_gap_moves_it() {
        let mut c = settled(START);
        let resumed = START + 6 * TOL;
        for k in 0..CONFIRM - 1 {
            assert_eq!(c.admit(resumed + k as i64 * 100, TOL), Admit::Ahead);
        }
        assert_eq!(c.admit(resumed + 5_000, TOL), Admit::Normal);
        assert_eq!(c.now(), Some(resumed + 5_000));
        assert_eq!(c.admit(resumed + 6_000, TOL), Admit::Normal);
    }

    #[test]
    fn events_ahead_that_disagree_do_not_confirm_each_other() {
        let mut c = settled(START);
        for k in 0..3 * CONFIRM as i64 {
            // Each far from the last: a scatter, not a resumed stream.
            assert_eq!(c.admit(START + (k + 2) * 10 * TOL, TOL), Admit::Ahead);
        }
        assert_eq!(c.now(), Some(START + CONFIRM as i64 - 1));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let mut c = settled(i64::MAX - 20);
        assert_eq!(c.admit(i64::MAX, TOL), Admit::Normal);
        assert_eq!(c.admit(i64::MIN, TOL), Admit::Normal);
        let mut c = settled(i64::MIN);
        assert_eq!(c.admit(i64::MAX, TOL), Admit::Ahead);
        assert_eq!(tolerance_ms(i64::MAX), i64::MAX);
    }
}
