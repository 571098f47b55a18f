//! The C fleet (issue #21): `tests/c/fleet.c`, built with plain `cc` from the
//! header and `libfieldauth.a`, runs processes of worker threads that share
//! one Fentu grant through a C store of callbacks (`fieldauth_store` over a
//! shared mapped file), against the emulator with 5 s tokens and rotating
//! refresh tokens with reuse detection. The emulator's counters must show:
//!
//! - one token request per token for the whole fleet (the session replaces a
//!   5 s token 2 to 3 s into its life), not one per worker;
//! - no replayed refresh token and no revoked grant;
//! - API requests within the fleet's budget (40 in any 10 s) in every
//!   sliding window, none rejected;
//! - every worker working the whole run; in a second run the store is down
//!   for 3 s (every callback fails): every worker keeps working, logs it
//!   once and rejoins.
//!
//! Sizes: FIELDAUTH_FLEET_PROCS (4), FIELDAUTH_FLEET_THREADS (2),
//! FIELDAUTH_FLEET_SECONDS (12); the full run is
//! `FIELDAUTH_FLEET_PROCS=8 FIELDAUTH_FLEET_THREADS=4 FIELDAUTH_FLEET_SECONDS=120`.
// Test code: panicking on failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    // The fleet's figures are printed for the record (BENCHMARKS.md).
    clippy::print_stderr
)]

mod common;

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fieldauth_emulator::server::spawn;
use fieldauth_emulator::stats::{ProviderStats, Stats};
use fieldauth_emulator::{EmulatorConfig, Provider};

const LIFETIME_S: u32 = 5;
/// The shortest time a 5 s token is used before the session replaces it:
/// 5 s less 2 s of early refresh less at most 1 s of jitter.
const SHORTEST_TOKEN_USE_S: f64 = 2.0;
const WINDOW_S: u32 = 10;
const API_BUDGET: u64 = 40;

fn size(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one `fleet run` printed.
struct Run {
    elapsed: f64,
    /// Per worker: API calls that got 200, calls that failed, the longest
    /// gap between two successes (ms).
    workers: Vec<(u64, u64, u64)>,
    stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.1} s, workers (ok, failed, max gap ms): {:?}",
            self.elapsed, self.workers
        )
    }
}

impl Run {
    fn check_workers(&self, count: u64, report: &str) {
        assert_eq!(self.workers.len() as u64, count, "{report}");
        // Every worker kept working, and nothing failed.
        assert!(self.workers.iter().all(|w| w.0 > 0 && w.1 == 0), "{report}");
        // No secret in a log line.
        assert!(
            !self.stderr.contains("Bearer") && !self.stderr.contains("refresh_token"),
            "{}",
            self.stderr
        );
    }
}

/// Runs the fleet; `outage`: the store fails from `.0` s for `.1` s.
fn fleet(
    exe: &Path,
    port: &str,
    store: &Path,
    procs: u64,
    threads: u64,
    seconds: u64,
    outage: Option<(u64, u64)>,
) -> Run {
    let down = store.with_extension("store.down");
    let started = Instant::now();
    let child = Command::new(exe)
        .args([
            port,
            store.to_str().unwrap(),
            "run",
            &procs.to_string(),
            &threads.to_string(),
            &seconds.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some((at, length)) = outage {
        std::thread::sleep(Duration::from_secs(at));
        std::fs::write(&down, b"").unwrap();
        std::thread::sleep(Duration::from_secs(length));
        std::fs::remove_file(&down).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "fleet failed:\n{stdout}\n{stderr}");
    let workers = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("worker "))
        .map(|l| {
            let v: Vec<u64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect();
    Run {
        elapsed,
        workers,
        stderr,
    }
}

fn fentu_of(stats: &Stats) -> &ProviderStats {
    stats
        .providers
        .iter()
        .find(|p| p.provider == Provider::Fentu)
        .unwrap()
}

/// The grant survives and the token endpoint sees one request per token
/// for the whole fleet, not one per worker: the session replaces a 5 s token
/// 2 to 3 s into its life (it refreshes a short-lived token 2 s early, plus
/// up to 1 s of jitter, so that the token is still usable while the next
/// one is fetched), so at most one request per 2 s.
fn check_grant(fentu: &ProviderStats, elapsed: f64, report: &str) {
    assert_eq!(fentu.refresh_replays, 0, "{report}");
    assert_eq!(fentu.grants_revoked, 0, "{report}");
    let per_lifetime = elapsed / SHORTEST_TOKEN_USE_S + 2.0;
    assert!(fentu.token_requests >= 1, "{report}");
    assert!(fentu.token_requests as f64 <= per_lifetime, "{report}");
    assert_eq!(fentu.token_requests, fentu.token_succeeded, "{report}");
    assert!(fentu.api_authorized > 0, "{report}");
}

#[test]
fn c_workers_share_one_grant_through_a_callback_store() {
    let procs = size("FIELDAUTH_FLEET_PROCS", 4);
    let threads = size("FIELDAUTH_FLEET_THREADS", 2);
    let seconds = size("FIELDAUTH_FLEET_SECONDS", 12);

    let dir = scratch("fleet_c");
    let exe = dir.join("fleet");
    run(Command::new(cc())
        .args(["-std=c11", "-O1", "-g", "-pthread"])
        .args(STRICT)
        .arg("-I")
        .arg(include_dir())
        .arg(root().join("tests/c/fleet.c"))
        .arg(static_lib())
        .arg("-o")
        .arg(&exe));

    let emu = spawn(
        EmulatorConfig::default()
            .with_wall_clock()
            .with_token_lifetime(LIFETIME_S)
            .with_refresh_token_rotation(true)
            .with_stats_windows(&[WINDOW_S]),
    )
    .unwrap();
    let port = emu.addr().port().to_string();
    let store = dir.join("fentu.store");
    let down = dir.join("fentu.store.down");
    let _ = std::fs::remove_file(&store);
    let _ = std::fs::remove_file(&down);

    // A person logs in once; the grant goes into the store as generation 1.
    let out = run(Command::new(&exe).args([&port, store.to_str().unwrap(), "bootstrap"]));
    assert!(text(&out.stdout).contains("bootstrap generation 1"));
    let mode = std::fs::metadata(&store).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the store file holds tokens");
    emu.reset_stats();

    // The fleet's run: the budgets and the token requests.
    let run1 = fleet(&exe, &port, &store, procs, threads, seconds, None);
    let stats = emu.reset_stats();
    let fentu = fentu_of(&stats);
    let window = fentu
        .windows
        .iter()
        .find(|w| w.window_s == WINDOW_S)
        .unwrap();
    let report = format!("{run1}\n{fentu:#?}");
    eprintln!("C fleet: {report}");
    run1.check_workers(procs * threads, &report);
    check_grant(fentu, run1.elapsed, &report);
    // The fleet's API budget in every sliding window; none rejected.
    assert!(window.exact, "{report}");
    assert!(window.api_requests_max <= API_BUDGET, "{report}");
    assert_eq!(fentu.api_rejected, 0, "{report}");

    // The store goes down for 3 s, 2 s into a second run: every worker
    // keeps working on its token and its share, logs it once, and rejoins.
    let run2 = fleet(&exe, &port, &store, procs, threads, 8, Some((2, 3)));
    let stats = emu.reset_stats();
    let fentu = fentu_of(&stats);
    let report = format!("{run2}\n{fentu:#?}");
    eprintln!("C fleet, store down for 3 s: {report}");
    run2.check_workers(procs * threads, &report);
    check_grant(fentu, run2.elapsed, &report);
    let down = run2.stderr.matches("the store failed").count() as u64;
    let back = run2.stderr.matches("rejoined the fleet").count() as u64;
    assert!(down >= 1 && back >= 1, "{report}\n{}", run2.stderr);
    assert!(
        down <= procs * threads * 2,
        "logged once per outage: {down}"
    );
    emu.stop().unwrap();
}
