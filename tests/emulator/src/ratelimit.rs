//! Server-side rate limiting: fixed (epoch-aligned) or sliding windows,
//! counted per key (an API key, a client, a token).

use std::collections::{HashMap, VecDeque};

use crate::config::{RateLimit, RateWindow};

/// The outcome of one [`Limiter::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The request may proceed (it was counted).
    pub allowed: bool,
    /// The limit in force (`X-RateLimit-Limit`).
    pub limit: u32,
    /// Requests left in the window after this one (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// When the window resets, epoch seconds (`X-RateLimit-Reset`).
    pub reset_epoch_s: u64,
    /// Seconds until a request would be allowed again (`Retry-After`; at
    /// least 1 when refused, 0 when allowed).
    pub retry_after_s: u64,
}

#[derive(Debug)]
enum State {
    Fixed { window: u64, count: u32 },
    Sliding(VecDeque<u64>),
}

/// Request counters per key.
#[derive(Debug, Default)]
pub struct Limiter {
    states: HashMap<String, State>,
}

impl Limiter {
    /// A limiter with no history.
    pub fn new() -> Limiter {
        Limiter::default()
    }

    /// Counts a request by `key` at `epoch_ms` against `limit`; refused
    /// requests are not counted.
    pub fn check(
        &mut self,
        key: &str,
        limit: RateLimit,
        mode: RateWindow,
        epoch_ms: u64,
    ) -> Decision {
        let window_ms = u64::from(limit.window_s.max(1)) * 1000;
        match mode {
            RateWindow::Fixed => {
                let window = epoch_ms / window_ms;
                let state = self
                    .states
                    .entry(key.to_owned())
                    .or_insert(State::Fixed { window, count: 0 });
                if !matches!(state, State::Fixed { window: w, .. } if *w == window) {
                    *state = State::Fixed { window, count: 0 };
                }
                let State::Fixed { count, .. } = state else {
                    unreachable!("just set")
                };
                let reset_ms = (window + 1) * window_ms;
                let allowed = *count < limit.requests;
                if allowed {
                    *count += 1;
                }
                Decision {
                    allowed,
                    limit: limit.requests,
                    remaining: limit.requests.saturating_sub(*count),
                    reset_epoch_s: reset_ms / 1000,
                    retry_after_s: if allowed {
                        0
                    } else {
                        (reset_ms - epoch_ms).div_ceil(1000).max(1)
                    },
                }
            }
            RateWindow::Sliding => {
                let state = self
                    .states
                    .entry(key.to_owned())
                    .or_insert_with(|| State::Sliding(VecDeque::new()));
                if !matches!(state, State::Sliding(_)) {
                    *state = State::Sliding(VecDeque::new());
                }
                let State::Sliding(times) = state else {
                    unreachable!("just set")
                };
                while times.front().is_some_and(|t| *t + window_ms <= epoch_ms) {
                    times.pop_front();
                }
                let allowed = (times.len() as u64) < u64::from(limit.requests);
                if allowed {
                    times.push_back(epoch_ms);
                }
                let oldest = times.front().copied().unwrap_or(epoch_ms);
                let free_at = oldest + window_ms;
                Decision {
                    allowed,
                    limit: limit.requests,
                    remaining: limit.requests.saturating_sub(times.len() as u32),
                    reset_epoch_s: free_at.div_ceil(1000),
                    retry_after_s: if allowed {
                        0
                    } else {
                        (free_at - epoch_ms).div_ceil(1000).max(1)
                    },
                }
            }
        }
    }

    /// Forgets every counter.
    pub fn clear(&mut self) {
        self.states.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_resets_on_the_boundary() {
        let mut l = Limiter::new();
        let limit = RateLimit::new(2, 3600);
        let t0 = 1_640_991_600_000; // 23:00:00
        let d = l.check("k", limit, RateWindow::Fixed, t0);
        assert_eq!(
            (d.allowed, d.remaining, d.reset_epoch_s),
            (true, 1, 1_640_995_200)
        );
        assert!(l.check("k", limit, RateWindow::Fixed, t0 + 1).allowed);
        let d = l.check("k", limit, RateWindow::Fixed, t0 + 1_800_000);
        assert_eq!((d.allowed, d.remaining, d.retry_after_s), (false, 0, 1800));
        assert!(l.check("other", limit, RateWindow::Fixed, t0).allowed);
        let d = l.check("k", limit, RateWindow::Fixed, 1_640_995_200_000);
        assert_eq!((d.allowed, d.remaining), (true, 1));
    }

    #[test]
    fn sliding_window_counts_any_interval() {
        let mut l = Limiter::new();
        let limit = RateLimit::new(3, 60);
        for t in [0, 10_000, 20_000] {
            assert!(l.check("k", limit, RateWindow::Sliding, t).allowed);
        }
        let d = l.check("k", limit, RateWindow::Sliding, 59_999);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_s, 1);
        let d = l.check("k", limit, RateWindow::Sliding, 30_000);
        assert_eq!(d.retry_after_s, 30);
        assert!(l.check("k", limit, RateWindow::Sliding, 60_000).allowed);
        assert!(!l.check("k", limit, RateWindow::Sliding, 60_001).allowed);
    }
}
