//! A Rust fleet (issue #21): worker threads, each with its own `Session`,
//! `shared::Worker` and `shared::FileStore` handle on one file, calling
//! Autotask's API on the emulator (5 s tokens) over real sockets with the
//! blocking driver. The emulator's counters must show one token request per
//! token for the whole fleet and the fleet's API budget kept in every
//! sliding window; every worker is served.
//!
//! Needs the `std` and `embedded-io` features (`cargo test -p fieldauth
//! --all-features --test fleet`).
#![cfg(all(feature = "std", feature = "embedded-io"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    // The fleet's figures, for the record.
    clippy::print_stderr
)]

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fieldauth::driver::{self, ApiOutcome, FromStd};
use fieldauth::preset::{self, Budget, Profile};
use fieldauth::session::{Action, ApiVerdict, Config, Event, Session};
use fieldauth::shared::{BudgetKind, FileStore, Turn, Worker};
use fieldauth::url::Url;
use fieldauth_emulator::{EmulatorConfig, Provider};

const WORKERS: usize = 6;
const SECONDS: u64 = 8;
const WINDOW_S: u32 = 10;
/// The fleet's API budget: 30 requests in any 10 s, 3 back to back.
const API: Budget = Budget {
    requests: 30,
    window_s: WINDOW_S,
    burst: 3,
};

static PROFILE: Profile<'static> = Profile {
    api_budget: Some(API),
    api_budget_per_token: false,
    ..preset::AUTOTASK
};

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

struct Clock(Instant);

impl Clock {
    fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64 + 1
    }
    fn sleep_until(&self, t: u64) {
        let now = self.now();
        if t > now {
            std::thread::sleep(Duration::from_millis((t - now).min(1_000)));
        }
    }
}

/// One worker's run: (API calls answered 200, failures).
fn work(addr: SocketAddr, store: &Path, holder: u64, deadline: Instant) -> (u32, u32) {
    let base = format!("http://{addr}/autotask");
    let target = format!("http://{addr}/autotask/ATServicesRest/V1.0/Companies");
    let config = Config {
        base_url: &base,
        client_id: "demo-client",
        client_secret: "demo-secret",
        ..Config::default()
    };
    let clock = Clock(Instant::now());
    let mut session: Session = Session::new(&PROFILE, &config, holder).unwrap();
    session.set_wall_clock(clock.now(), unix_ms());
    let mut worker = Worker::new(holder, WORKERS as u32, 5_000);
    let mut store = FileStore::open(store).unwrap();
    let mut image = vec![0u8; session.snapshot_len()];
    let mut buf = [0u8; 512];
    let (mut ok, mut failed) = (0, 0);
    while Instant::now() < deadline {
        // Poll and take token turns until the session can send.
        let mut rounds = 0;
        let ready = loop {
            rounds += 1;
            if rounds > 50 {
                break false;
            }
            let now = clock.now();
            match session.poll(now) {
                Action::Ready { .. } => break true,
                Action::Wait { until } => clock.sleep_until(until),
                Action::SendTokenRequest(_) => {
                    match worker
                        .token_turn(&mut store, &mut session, now, unix_ms(), &mut image)
                        .unwrap()
                    {
                        Turn::Lead | Turn::Solo => {
                            let issued = match TcpStream::connect(addr) {
                                Ok(s) => matches!(
                                    driver::exchange_token(
                                        &mut session,
                                        clock.now(),
                                        &mut FromStd::new(s),
                                        &mut buf
                                    ),
                                    Ok(driver::Exchanged {
                                        event: Event::TokenIssued { .. },
                                        ..
                                    })
                                ),
                                Err(_) => {
                                    session.on_transport_error(clock.now());
                                    false
                                }
                            };
                            worker
                                .exchanged(
                                    &mut store,
                                    &mut session,
                                    clock.now(),
                                    unix_ms(),
                                    issued,
                                    &mut image,
                                )
                                .unwrap();
                        }
                        Turn::Use => break true,
                        Turn::Poll => {}
                        Turn::WaitUntil(t) => clock.sleep_until(t),
                    }
                }
                other => panic!("worker {holder:x}: {other:?}"),
            }
        };
        if !ready {
            failed += 1;
            continue;
        }
        // The fleet's API budget, charged right before the request goes out.
        let now = clock.now();
        if let Some(t) = worker
            .charge(
                &mut store,
                &mut session,
                BudgetKind::Api,
                now,
                unix_ms(),
                &mut image,
            )
            .unwrap()
        {
            clock.sleep_until(t);
            continue;
        }
        let stream = FromStd::new(TcpStream::connect(addr).unwrap());
        let url = Url::parse(&target).unwrap();
        match driver::api_get(&mut session, clock.now(), &mut { stream }, url, &mut buf) {
            Ok(ApiOutcome::Response(r)) if r.head.status == 200 => {
                assert_eq!(r.verdict, ApiVerdict::Ok);
                ok += 1;
            }
            Ok(ApiOutcome::Wait { until }) => clock.sleep_until(until),
            Ok(ApiOutcome::NoCredential) => {}
            other => {
                failed += 1;
                let _ = other;
            }
        }
    }
    (ok, failed)
}

#[test]
fn rust_workers_share_one_token_and_one_budget_through_a_file_store() {
    let emu = fieldauth_emulator::spawn(
        EmulatorConfig::default()
            .with_wall_clock()
            .with_token_lifetime(5)
            .with_stats_windows(&[WINDOW_S]),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("fieldauth-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("autotask.store");
    let addr = emu.addr();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let results: Vec<(u32, u32)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|i| {
                let store = store.as_path();
                s.spawn(move || work(addr, store, 0x5eed_0000 + i as u64 * 7919, deadline))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats = emu.stats();
    let autotask = stats
        .providers
        .iter()
        .find(|p| p.provider == Provider::Autotask)
        .unwrap();
    let window = autotask
        .windows
        .iter()
        .find(|w| w.window_s == WINDOW_S)
        .unwrap();
    let report = format!("{elapsed:.1} s, workers (ok, failed): {results:?}\n{autotask:#?}");
    eprintln!("Rust fleet: {report}");
    // Every worker served, nothing failed.
    assert!(
        results.iter().all(|&(ok, failed)| ok > 0 && failed == 0),
        "{report}"
    );
    // One token request per token for the fleet (a 5 s token is replaced 2
    // to 3 s into its life), not one per worker.
    assert!(autotask.token_requests >= 1, "{report}");
    assert!(
        autotask.token_requests as f64 <= elapsed / 2.0 + 2.0,
        "{report}"
    );
    // The fleet's budget in every sliding window (one kept as the margin).
    assert!(window.exact, "{report}");
    assert!(
        window.api_requests_max <= u64::from(API.requests),
        "{report}"
    );
    assert_eq!(autotask.api_rejected, 0, "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}
