//! Client-side request budgets in fixed memory.

use crate::preset::Budget;

/// A GCRA (generic cell rate algorithm) limiter: 8 bytes per budget.
///
/// For a [`Budget`] of `r` requests per `w` seconds it allows a burst of `r`
/// requests, then one every `w / r`: the smooth equivalent of "at most `r` in
/// any window of `w`" without storing timestamps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Gcra {
    /// Theoretical arrival time of the next request (monotonic ms).
    tat: u64,
}

impl Gcra {
    /// A limiter with its full burst available.
    pub const fn new() -> Self {
        Gcra { tat: 0 }
    }

    /// The emission interval and burst tolerance in ms (32-bit division:
    /// Cortex-M4 has no 64-bit divide; windows are capped at 49 days).
    fn params(b: Budget) -> (u64, u64) {
        let window = b.window_s.saturating_mul(1000);
        let requests = b.requests.max(1);
        // Rounded up: rounded down, a window that is not a multiple of the
        // count would let `requests + 1` through (3 per second: 0, 333, 666
        // and 999 ms).
        let t = window
            .saturating_add(requests.saturating_sub(1))
            .checked_div(requests)
            .unwrap_or(window);
        let burst = b.burst.clamp(1, requests);
        (
            u64::from(t),
            u64::from(t).saturating_mul(u64::from(burst.saturating_sub(1))),
        )
    }

    /// The earliest time (monotonic ms) a request may be sent; `<= now` means now.
    pub fn ready_at(&self, now: u64, b: Budget) -> u64 {
        let (_, tau) = Self::params(b);
        let at = self.tat.saturating_sub(tau);
        if at <= now {
            now
        } else {
            at
        }
    }

    /// Records a request sent at `now`.
    pub fn take(&mut self, now: u64, b: Budget) {
        let (t, _) = Self::params(b);
        self.tat = self.tat.max(now).saturating_add(t);
    }

    /// The theoretical arrival time, for snapshots.
    pub(crate) fn tat(&self) -> u64 {
        self.tat
    }

    /// Restores a theoretical arrival time.
    pub(crate) fn with_tat(tat: u64) -> Self {
        Gcra { tat }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// Largest number of `times` inside any half-open window of `w` ms.
    fn max_in_window(times: &[u64], w: u64) -> usize {
        times
            .iter()
            .enumerate()
            .map(|(i, &t)| times[i..].iter().take_while(|&&u| u < t + w).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn burst_one_never_exceeds_a_sliding_window() {
        let b = Budget {
            requests: 10,
            window_s: 60,
            burst: 1,
        };
        let mut g = Gcra::new();
        let mut times = std::vec::Vec::new();
        // A greedy client asking every 10 ms for ten minutes.
        let mut now = 5_000;
        while now < 605_000 {
            if g.ready_at(now, b) <= now {
                g.take(now, b);
                times.push(now);
            }
            now += 10;
        }
        assert_eq!(max_in_window(&times, 60_000), 10);
        assert_eq!(times.len(), 100);
    }

    #[test]
    fn bursts_then_steady() {
        let b = Budget {
            requests: 10,
            window_s: 60,
            burst: 10,
        };
        let mut g = Gcra::new();
        let t0 = 1_000_000;
        for _ in 0..10 {
            assert_eq!(g.ready_at(t0, b), t0);
            g.take(t0, b);
        }
        // The 11th waits one interval (6 s).
        assert_eq!(g.ready_at(t0, b), t0 + 6_000);
        // In any 60 s window, at most 10 + the window's share.
        let mut sent = 10;
        let mut now = t0;
        while now < t0 + 60_000 {
            if g.ready_at(now, b) <= now {
                g.take(now, b);
                sent += 1;
            }
            now += 100;
        }
        assert_eq!(sent, 19); // 10 burst + one per 6 s for 54 s
    }

    #[test]
    fn idle_time_refills_the_burst() {
        let b = Budget {
            requests: 3,
            window_s: 3,
            burst: 3,
        };
        let mut g = Gcra::new();
        for _ in 0..3 {
            g.take(0, b);
        }
        assert!(g.ready_at(0, b) > 0);
        // After a long idle period (or a clock jump) the full burst is back.
        let later = 10 * 24 * 3_600_000;
        for _ in 0..3 {
            assert_eq!(g.ready_at(later, b), later);
            g.take(later, b);
        }
        assert!(g.ready_at(later, b) > later);
    }
}
