//! Client-side request budgets in fixed memory.

use crate::preset::Budget;

/// A GCRA (generic cell rate algorithm) limiter: 8 bytes per budget.
///
/// For a [`Budget`] of `r` requests per `w` seconds with a burst of `b` it
/// allows `b` requests at once, then one every `w / (r - b + 1)`: never more
/// than `r` in any sliding window of `w`, without storing timestamps.
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
    ///
    /// A burst of `b` plus `k` paced requests fit a window when
    /// `b + k - 1 <= r` (the window holds the burst and the `k` requests
    /// after it, the first of which coincides with the burst's end), so the
    /// interval is `w / (r - b + 1)`: with `b = r` a whole window's worth at
    /// once and then nothing for `w`; with `b = 1`, one every `w / r`.
    fn params(b: Budget) -> (u64, u64) {
        let window = b.window_s.saturating_mul(1000);
        let requests = b.requests.max(1);
        let burst = b.burst.clamp(1, requests);
        // Paced requests per window besides the burst (at least 1).
        let paced = requests.saturating_sub(burst).saturating_add(1);
        // Rounded up: rounded down, a window that is not a multiple of the
        // count would let one more through (3 per second: 0, 333, 666 and
        // 999 ms).
        let t = window
            .saturating_add(paced.saturating_sub(1))
            .checked_div(paced)
            .unwrap_or(window);
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
        // A greedy client asking every 10 ms for ten minutes (under Miri,
        // tests/miri.sh: every 100 ms).
        let mut now = 5_000;
        while now < 605_000 {
            if g.ready_at(now, b) <= now {
                g.take(now, b);
                times.push(now);
            }
            now += if cfg!(miri) { 100 } else { 10 };
        }
        assert_eq!(max_in_window(&times, 60_000), 10);
        assert_eq!(times.len(), 100);
    }

    /// Fentu's published limit, 1,000 an hour, with its burst of 100: a
    /// greedy client never has more than 1,000 in any sliding hour (it had
    /// 1,099 when the burst came on top of the rate).
    #[test]
    fn a_burst_never_takes_a_window_over_its_count() {
        // Under Miri (tests/miri.sh) the two small budgets only: Fentu's
        // hour-long window is 216,000 steps of 50 ms.
        let fentu = if cfg!(miri) {
            None
        } else {
            Some(Budget::FENTU_STANDARD)
        };
        for b in fentu.into_iter().chain([
            Budget {
                requests: 10,
                window_s: 60,
                burst: 10,
            },
            Budget {
                requests: 7,
                window_s: 3,
                burst: 3,
            },
        ]) {
            let mut g = Gcra::new();
            let mut times = std::vec::Vec::new();
            let step = 50;
            let mut now = 1_000;
            while now < 1_000 + 3 * u64::from(b.window_s) * 1000 {
                if g.ready_at(now, b) <= now {
                    g.take(now, b);
                    times.push(now);
                }
                now += step;
            }
            let w = u64::from(b.window_s) * 1000;
            assert!(
                max_in_window(&times, w) <= b.requests as usize,
                "{b:?}: {} in one window",
                max_in_window(&times, w)
            );
            // ...and it is not needlessly slow: close to the count.
            assert!(max_in_window(&times, w) + 2 >= b.requests as usize, "{b:?}");
        }
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
        // The 11th waits a whole window: the burst used it up.
        assert_eq!(g.ready_at(t0, b), t0 + 60_000);
        // In the 60 s window from the burst on, nothing more.
        let mut sent = 10;
        let mut now = t0;
        while now < t0 + 60_000 {
            if g.ready_at(now, b) <= now {
                g.take(now, b);
                sent += 1;
            }
            now += 100;
        }
        assert_eq!(sent, 10); // the burst was the window's whole budget
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
