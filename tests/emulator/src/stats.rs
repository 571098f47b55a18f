//! Counters for tests that watch a client, or a fleet of client processes,
//! from outside: per provider, how many token and API requests arrived and
//! how they ended, how many rotated-out refresh tokens were replayed, how
//! many grants were revoked, and the largest number of token requests and of
//! API requests seen in any sliding window of the configured lengths.
//!
//! Read them in-process with [`Emulator::stats`](crate::Emulator::stats) (or
//! [`RunningEmulator::stats`](crate::RunningEmulator::stats)), from any
//! process with `GET /_stats` ([`Stats::to_json`] is the body), and zero them
//! with [`Emulator::reset_stats`](crate::Emulator::reset_stats) or
//! `POST /_stats/reset` (which answer with the counters as they were).
//!
//! ## What is counted
//!
//! Requests routed to a provider's token or API endpoint (a request the
//! emulator could not parse, without exactly one `Host`, or to an unknown
//! path is not counted). Injected faults count like any answer: an injected
//! `429` on the token endpoint is a token request that was rate limited.
//!
//! - `token_requests`: every request to the token endpoint (Fentu
//!   `/oauth/token`, Field Nation `/authentication/api/oauth/token`, Autotask
//!   `/ATServicesRest/oauth/token`, Patchworks `/fabric/api/login`), good or
//!   bad; `token_succeeded`: those answered `2xx` (a token was issued);
//!   `token_rate_limited`: those answered `429`.
//! - `refresh_replays`: refresh requests carrying a refresh token that
//!   rotation had retired (Fentu with rotation on; the only provider with
//!   refresh tokens). Each one revokes its grant.
//! - `grants_revoked`: grants (an authorization code and every token
//!   descended from it) revoked whole: by a refresh-token replay, an
//!   authorization-code replay, or `POST /oauth/revoke` of a refresh token.
//!   A grant is counted once, however often it is hit again.
//!   [`Emulator::revoke_all_tokens`](crate::Emulator::revoke_all_tokens) is
//!   not counted.
//! - `api_requests`: every request to an API endpoint, `api_authorized`
//!   those whose credential (access token or API key) was accepted,
//!   `api_rejected` the rest (missing, unknown, expired or revoked
//!   credential, an injected fault that answered first), so
//!   `api_requests = api_authorized + api_rejected`; `api_rate_limited`:
//!   API requests answered `429` (an authorized request over the rate limit,
//!   or an injected 429).
//!
//! ## How the max-in-window is computed
//!
//! Time is the emulator's own clock, the one behind `Date`, token expiry
//! and the rate limiters: the `now_ms` a request is handled at (the server:
//! milliseconds since it started) plus
//! [`Emulator::advance_clock`](crate::Emulator::advance_clock), so virtual
//! time moves the windows too. A window of `W` seconds is any half-open interval
//! `[s, s + W*1000)` at millisecond resolution, the reading of the emulator's
//! own sliding rate limiter (requests 60 s apart are not in one 60 s
//! window). The busiest window always ends at a request, so when a request
//! arrives at `t` the counter counts the requests in `(t - W*1000, t]`,
//! itself included, and keeps the largest count seen: the maximum over every
//! window, not only over windows aligned to the clock.
//!
//! - `token_requests_max`: token requests in the busiest window.
//! - `api_requests_max`: API requests in the busiest window, all credentials
//!   of the provider together.
//! - `api_requests_max_per_credential`: authorized API requests with *one*
//!   credential (access token or API key) in the busiest window: the
//!   quantity a per-token limit such as Autotask's 600/minute is about, when
//!   tokens are renewed faster than the window.
//!
//! Memory is bounded: each counter keeps only the timestamps (8 bytes each)
//! of requests still inside the longest window, oldest first, and a shorter
//! window's count is a binary search in them; per credential, a credential
//! whose newest request left the longest window is forgotten. No deque holds
//! more than `cap` timestamps ([`EmulatorConfig::stats_cap`](crate::EmulatorConfig::stats_cap),
//! default [`DEFAULT_CAP`]). If the cap pushes out a timestamp that is still
//! inside a window, that window's maxima are lower bounds from then on and
//! its `exact` is `false`. A request time earlier than the one before it
//! (only possible when a sans-IO caller feeds times out of order) counts as
//! the one before.

use std::collections::{HashMap, VecDeque};

use crate::config::{EndpointKind, Provider};
use crate::encoding::{json_object, J};

/// The windows counted by default, seconds: 60 (Autotask's 10 token requests
/// and 600 API requests per minute) and 3,600 (Fentu's hourly tiers).
pub const DEFAULT_WINDOWS_S: [u32; 2] = [60, 3_600];

/// The default most timestamps one counter keeps (800 kB).
pub const DEFAULT_CAP: usize = 100_000;

/// The maxima of one window length for one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowStats {
    /// The window length, seconds.
    pub window_s: u32,
    /// The most token requests in any window of this length.
    pub token_requests_max: u64,
    /// The most API requests in any window of this length.
    pub api_requests_max: u64,
    /// The most authorized API requests with one credential in any window
    /// of this length.
    pub api_requests_max_per_credential: u64,
    /// `false` once the timestamp cap made the maxima lower bounds.
    pub exact: bool,
}

impl WindowStats {
    fn new(window_s: u32) -> WindowStats {
        WindowStats {
            window_s,
            token_requests_max: 0,
            api_requests_max: 0,
            api_requests_max_per_credential: 0,
            exact: true,
        }
    }

    fn to_json(&self) -> String {
        json_object(&[
            ("token_requests_max", J::Int(self.token_requests_max as i64)),
            ("api_requests_max", J::Int(self.api_requests_max as i64)),
            (
                "api_requests_max_per_credential",
                J::Int(self.api_requests_max_per_credential as i64),
            ),
            ("exact", J::Bool(self.exact)),
        ])
    }
}

/// The counters of one provider (see the [module](self) for their meaning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderStats {
    /// Which provider.
    pub provider: Provider,
    /// Requests to the token endpoint.
    pub token_requests: u64,
    /// ... answered `2xx`.
    pub token_succeeded: u64,
    /// ... answered `429`.
    pub token_rate_limited: u64,
    /// Retired (rotated-out) refresh tokens presented again.
    pub refresh_replays: u64,
    /// Grants revoked whole.
    pub grants_revoked: u64,
    /// Requests to an API endpoint.
    pub api_requests: u64,
    /// ... whose credential was accepted.
    pub api_authorized: u64,
    /// ... whose credential was not accepted (`api_requests - api_authorized`).
    pub api_rejected: u64,
    /// ... answered `429`.
    pub api_rate_limited: u64,
    /// The sliding-window maxima, one per configured window, shortest first.
    pub windows: Vec<WindowStats>,
}

impl ProviderStats {
    fn new(provider: Provider, windows_s: &[u32]) -> ProviderStats {
        ProviderStats {
            provider,
            token_requests: 0,
            token_succeeded: 0,
            token_rate_limited: 0,
            refresh_replays: 0,
            grants_revoked: 0,
            api_requests: 0,
            api_authorized: 0,
            api_rejected: 0,
            api_rate_limited: 0,
            windows: windows_s.iter().map(|w| WindowStats::new(*w)).collect(),
        }
    }

    /// The maxima for windows of `window_s` seconds, if that length is
    /// counted.
    pub fn window(&self, window_s: u32) -> Option<&WindowStats> {
        self.windows.iter().find(|w| w.window_s == window_s)
    }

    /// This provider's member of the `/_stats` body.
    pub fn to_json(&self) -> String {
        let windows = self
            .windows
            .iter()
            .map(|w| (w.window_s.to_string(), w.to_json()))
            .collect::<Vec<_>>();
        let windows = json_object(
            &windows
                .iter()
                .map(|(k, v)| (k.as_str(), J::Raw(v)))
                .collect::<Vec<_>>(),
        );
        let n = |v: u64| J::Int(v as i64);
        json_object(&[
            ("token_requests", n(self.token_requests)),
            ("token_succeeded", n(self.token_succeeded)),
            ("token_rate_limited", n(self.token_rate_limited)),
            ("refresh_replays", n(self.refresh_replays)),
            ("grants_revoked", n(self.grants_revoked)),
            ("api_requests", n(self.api_requests)),
            ("api_authorized", n(self.api_authorized)),
            ("api_rejected", n(self.api_rejected)),
            ("api_rate_limited", n(self.api_rate_limited)),
            ("windows", J::Raw(&windows)),
        ])
    }
}

/// A snapshot of every provider's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// The window lengths counted, seconds, shortest first.
    pub windows_s: Vec<u32>,
    /// One entry per provider, in [`Provider::ALL`] order.
    pub providers: Vec<ProviderStats>,
}

impl Stats {
    /// The counters of `provider`.
    pub fn provider(&self, provider: Provider) -> &ProviderStats {
        &self.providers[index(provider)]
    }

    /// The body of `GET /_stats`:
    ///
    /// ```json
    /// {"windows_s":[60,3600],
    ///  "providers":{"fentu":{"token_requests":0,"token_succeeded":0,"token_rate_limited":0,
    ///                        "refresh_replays":0,"grants_revoked":0,
    ///                        "api_requests":0,"api_authorized":0,"api_rejected":0,"api_rate_limited":0,
    ///                        "windows":{"60":{"token_requests_max":0,"api_requests_max":0,
    ///                                         "api_requests_max_per_credential":0,"exact":true},
    ///                                   "3600":{...}}},
    ///               "fieldnation":{...},"autotask":{...},"patchworks":{...}}}
    /// ```
    pub fn to_json(&self) -> String {
        let windows = format!(
            "[{}]",
            self.windows_s
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let providers = self
            .providers
            .iter()
            .map(|p| (p.provider.name(), p.to_json()))
            .collect::<Vec<_>>();
        let providers = json_object(
            &providers
                .iter()
                .map(|(k, v)| (*k, J::Raw(v)))
                .collect::<Vec<_>>(),
        );
        json_object(&[
            ("windows_s", J::Raw(&windows)),
            ("providers", J::Raw(&providers)),
        ])
    }
}

fn index(provider: Provider) -> usize {
    Provider::ALL
        .iter()
        .position(|p| *p == provider)
        .unwrap_or_default()
}

/// What one answered request contributes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Observed<'a> {
    pub provider: Provider,
    pub endpoint: EndpointKind,
    pub status: u16,
    /// The credential an API request was authorized with.
    pub credential: Option<&'a str>,
    pub refresh_replay: bool,
    pub grant_revoked: bool,
}

/// Timestamps of the requests inside the longest window, oldest first, at
/// most `cap` of them.
#[derive(Debug, Default)]
struct Recent {
    times: VecDeque<u64>,
    /// The latest time recorded (times never go back).
    last: u64,
    /// The newest timestamp the cap pushed out.
    dropped: Option<u64>,
}

impl Recent {
    /// Records a request at `t` (or at the latest time recorded, if that is
    /// later); returns the time used.
    fn push(&mut self, t: u64, longest_ms: u64, cap: usize) -> u64 {
        let t = t.max(self.last);
        self.last = t;
        while self.times.front().is_some_and(|s| s + longest_ms <= t) {
            self.times.pop_front();
        }
        while self.times.len() >= cap.max(1) {
            self.dropped = self.times.pop_front();
        }
        self.times.push_back(t);
        t
    }

    /// The requests in `(t - window_ms, t]` and whether that count is exact.
    fn count(&self, t: u64, window_ms: u64) -> (u64, bool) {
        let first = self.times.partition_point(|s| s + window_ms <= t);
        let exact = self.dropped.is_none_or(|d| d + window_ms <= t);
        ((self.times.len() - first) as u64, exact)
    }
}

/// One provider's running counters.
#[derive(Debug)]
struct Counters {
    totals: ProviderStats,
    token: Recent,
    api: Recent,
    per_credential: HashMap<String, Recent>,
    /// Forget idle credentials when the map grows past this.
    prune_at: usize,
}

/// The counters of all four providers.
#[derive(Debug)]
pub(crate) struct Recorder {
    windows_s: Vec<u32>,
    longest_ms: u64,
    cap: usize,
    providers: Vec<Counters>,
}

const PRUNE_MIN: usize = 64;

impl Recorder {
    /// Empty counters for `windows_s` (sorted, duplicates and zeros dropped)
    /// keeping at most `cap` timestamps per counter.
    pub fn new(windows_s: &[u32], cap: usize) -> Recorder {
        let mut windows_s: Vec<u32> = windows_s.iter().copied().filter(|w| *w > 0).collect();
        windows_s.sort_unstable();
        windows_s.dedup();
        Recorder {
            longest_ms: windows_s.last().map_or(0, |w| u64::from(*w) * 1000),
            cap: cap.max(1),
            providers: Provider::ALL
                .into_iter()
                .map(|p| Counters {
                    totals: ProviderStats::new(p, &windows_s),
                    token: Recent::default(),
                    api: Recent::default(),
                    per_credential: HashMap::new(),
                    prune_at: PRUNE_MIN,
                })
                .collect(),
            windows_s,
        }
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> Stats {
        Stats {
            windows_s: self.windows_s.clone(),
            providers: self.providers.iter().map(|c| c.totals.clone()).collect(),
        }
    }

    /// Counts one answered request at `at_ms` (the emulator's clock).
    pub fn record(&mut self, at_ms: u64, seen: &Observed<'_>) {
        let (longest_ms, cap) = (self.longest_ms, self.cap);
        let c = &mut self.providers[index(seen.provider)];
        let totals = &mut c.totals;
        let ok = (200..300).contains(&seen.status);
        let limited = seen.status == 429;
        match seen.endpoint {
            EndpointKind::Token => {
                totals.token_requests += 1;
                totals.token_succeeded += u64::from(ok);
                totals.token_rate_limited += u64::from(limited);
                let t = c.token.push(at_ms, longest_ms, cap);
                for w in &mut totals.windows {
                    let (n, exact) = c.token.count(t, u64::from(w.window_s) * 1000);
                    w.token_requests_max = w.token_requests_max.max(n);
                    w.exact &= exact;
                }
            }
            EndpointKind::Api => {
                totals.api_requests += 1;
                totals.api_rate_limited += u64::from(limited);
                let t = c.api.push(at_ms, longest_ms, cap);
                for w in &mut totals.windows {
                    let (n, exact) = c.api.count(t, u64::from(w.window_s) * 1000);
                    w.api_requests_max = w.api_requests_max.max(n);
                    w.exact &= exact;
                }
                match seen.credential {
                    Some(credential) => {
                        totals.api_authorized += 1;
                        let recent = c.per_credential.entry(credential.to_owned()).or_default();
                        let t = recent.push(at_ms, longest_ms, cap);
                        for w in &mut totals.windows {
                            let (n, exact) = recent.count(t, u64::from(w.window_s) * 1000);
                            w.api_requests_max_per_credential =
                                w.api_requests_max_per_credential.max(n);
                            w.exact &= exact;
                        }
                        if c.per_credential.len() > c.prune_at {
                            c.per_credential.retain(|_, r| r.last + longest_ms > t);
                            c.prune_at = PRUNE_MIN.max(2 * c.per_credential.len());
                        }
                    }
                    None => totals.api_rejected += 1,
                }
            }
            EndpointKind::Authorize | EndpointKind::Revoke => {}
        }
        totals.refresh_replays += u64::from(seen.refresh_replay);
        totals.grants_revoked += u64::from(seen.grant_revoked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(recorder: &mut Recorder, at_ms: u64, credential: &str) {
        recorder.record(
            at_ms,
            &Observed {
                provider: Provider::Autotask,
                endpoint: EndpointKind::Api,
                status: 200,
                credential: Some(credential),
                refresh_replay: false,
                grant_revoked: false,
            },
        );
    }

    #[test]
    fn windows_are_sorted_and_deduplicated() {
        let r = Recorder::new(&[3_600, 0, 60, 60], 10);
        assert_eq!(r.snapshot().windows_s, vec![60, 3_600]);
        assert_eq!(r.longest_ms, 3_600_000);
    }

    #[test]
    fn the_busiest_window_is_found_wherever_it_lies() {
        let mut r = Recorder::new(&[10], 100);
        // Three requests in each half of [0, 20 s): clock-aligned 10 s
        // windows hold 3 each, but (4 s, 14 s] holds all 6.
        for t in [5_000, 6_000, 7_000, 12_000, 13_000, 14_000] {
            api(&mut r, t, "k");
        }
        let w = r.snapshot().provider(Provider::Autotask).windows[0].clone();
        assert_eq!(
            (w.api_requests_max, w.api_requests_max_per_credential),
            (6, 6)
        );
        assert!(w.exact);
        // Exactly one window length apart is not in one window.
        let mut r = Recorder::new(&[10], 100);
        api(&mut r, 0, "k");
        api(&mut r, 10_000, "k");
        let w = r.snapshot().provider(Provider::Autotask).windows[0].clone();
        assert_eq!(w.api_requests_max, 1);
        api(&mut r, 19_999, "k");
        let w = r.snapshot().provider(Provider::Autotask).windows[0].clone();
        assert_eq!(w.api_requests_max, 2);
    }

    #[test]
    fn per_credential_is_per_credential_and_idle_ones_are_forgotten() {
        let mut r = Recorder::new(&[60], 1_000);
        for i in 0..200u64 {
            // A new credential every 10 requests, 100 ms apart.
            api(&mut r, i * 100, &format!("token-{}", i / 10));
        }
        let s = r.snapshot();
        let w = &s.provider(Provider::Autotask).windows[0];
        assert_eq!(w.api_requests_max, 200);
        assert_eq!(w.api_requests_max_per_credential, 10);
        // Far later, one more request: the 20 old credentials are pruned
        // once the map passes its threshold.
        for i in 0..100u64 {
            api(&mut r, 1_000_000 + i, &format!("late-{i}"));
        }
        let kept = &r.providers[index(Provider::Autotask)].per_credential;
        assert!(kept.keys().all(|k| k.starts_with("late-")), "{kept:?}");
    }

    #[test]
    fn the_cap_makes_a_window_inexact_only_while_it_matters() {
        let mut r = Recorder::new(&[1, 60], 5);
        for i in 0..10u64 {
            api(&mut r, i * 100, "k");
        }
        let s = r.snapshot();
        let p = s.provider(Provider::Autotask);
        // Ten requests within one second, but only five timestamps kept.
        assert_eq!(p.windows[0].api_requests_max, 5);
        assert!(!p.windows[0].exact && !p.windows[1].exact);
        assert_eq!(r.providers[index(Provider::Autotask)].api.times.len(), 5);
    }

    #[test]
    fn time_never_goes_back() {
        let mut r = Recorder::new(&[60], 100);
        api(&mut r, 100_000, "k");
        api(&mut r, 0, "k"); // counted at 100 s
        api(&mut r, 159_999, "k");
        let s = r.snapshot();
        assert_eq!(
            s.provider(Provider::Autotask).windows[0].api_requests_max,
            3
        );
    }
}
