//! `cargo run -p fieldauth-demo`: every provider preset through a whole
//! credential lifecycle against the in-process emulator, over real loopback
//! sockets with fieldauth's blocking driver — fetch, use, proactive refresh,
//! recovery from a server-side revocation (401), and rate-limit backoff
//! (429) — printed as a timeline. No network, no account, a few seconds.
//!
//! Time: token lifetimes are short (60 s) and the demo fast-forwards the
//! session's clock and the emulator's together instead of sleeping; every
//! fast-forward is printed (⏩). Timestamps are session time since the
//! preset started (real time plus fast-forwards). Secrets are never printed.
//!
//! Exit status 0 when every preset completes its lifecycle, 1 otherwise.

mod rig;

use std::process::ExitCode;

use fieldauth::preset::{self, Profile};
use fieldauth::session::{Action, ApiVerdict, Event, NEVER};
use fieldauth_emulator::EmulatorConfig;

use rig::{Call, Rig, Step, World};

/// Access-token lifetime on the emulator, seconds.
const LIFETIME_S: u32 = 60;

/// Faults in force throughout: token responses use chunked encoding, API
/// responses are written 64 bytes per `write`.
const BASE_FAULTS: [&str; 2] = ["all:token:chunked=16", "all:api:pieces=64"];

/// The driver's buffer: a handheld's receive buffer.
const BUF: usize = 128;

/// Prints timeline lines in session time since the preset started.
struct Timeline<'w> {
    world: &'w World,
    start: u64,
}

impl Timeline<'_> {
    fn at(&self, t: u64, what: &str) {
        let dt = t.saturating_sub(self.start);
        println!("  t+{:>9.3}s  {what}", dt as f64 / 1000.0);
    }

    fn line(&self, what: &str) {
        self.at(self.world.now(), what);
    }

    fn fast_forward(&self, skipped: u64, why: &str) {
        if skipped > 0 {
            println!("  ⏩ {:>9}   {why}", format!("+{}", secs(skipped)));
        }
    }

    fn step(&self, step: &Step) {
        match step {
            Step::Exchanged { at, kind, result } => {
                let what = outcome(result, *at);
                self.at(*at, &format!("poll → SendTokenRequest({kind:?}) → {what}"));
            }
            Step::Waited { from, until } => self.fast_forward(
                until.saturating_sub(*from),
                "poll → Wait: nothing usable yet (fast-forwarded)",
            ),
            Step::Browser { at, note } => self.at(
                *at,
                &format!("poll → NeedAuthorizationCode → browser step: {note}"),
            ),
        }
    }
}

/// `12.345 s`, or `24 h` for long spans.
fn secs(ms: u64) -> String {
    if ms >= 3_600_000 {
        format!("{:.1} h", ms as f64 / 3_600_000.0)
    } else {
        format!("{}.{:03} s", ms / 1000, ms % 1000)
    }
}

/// A token exchange's outcome in a few words (`now`: when it went out).
fn outcome(r: &Result<Event, fieldauth::Error>, now: u64) -> String {
    match r {
        Ok(ev) => event(ev, now),
        Err(e) => format!("Err({e:?}): the exchange failed; a retry is scheduled"),
    }
}

/// A session event in a few words (`now`: the time of the exchange).
fn event(ev: &Event, now: u64) -> String {
    match ev {
        Event::TokenIssued {
            kind,
            lifetime_s,
            refreshable,
        } => format!(
            "TokenIssued ({kind:?}, {lifetime_s} s{})",
            if *refreshable {
                ", + refresh token"
            } else {
                ""
            }
        ),
        Event::Retrying { status, at } => format!(
            "Retrying (HTTP {status}) in {}",
            secs(at.saturating_sub(now))
        ),
        other => format!("{other:?}"),
    }
}

/// Waits shorter than this are client-side pacing (Autotask's 600 API
/// requests per minute): the demo really waits, and says so.
const PACING_MS: u64 = 1_000;

/// One API call, printed; returns what happened.
fn call(rig: &mut Rig<'_>, tl: &Timeline<'_>) -> Result<Call, String> {
    let path = rig::api_path(rig.provider);
    let at = tl.world.now();
    let mut c = rig.get_api().map_err(|e| format!("GET {path}: {e}"))?;
    let mut paced = String::new();
    if let Call::Wait(until) = c {
        let ms = until.saturating_sub(tl.world.now());
        if ms < PACING_MS {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            paced = format!(" (after waiting {ms} ms: client-side budget)");
            c = rig.get_api().map_err(|e| format!("GET {path}: {e}"))?;
        }
    }
    tl.at(at, &describe(path, &c, at, &paced));
    Ok(c)
}

/// `GET path → status verdict, size`.
fn describe(path: &str, c: &Call, at: u64, note: &str) -> String {
    match c {
        Call::Response {
            status,
            verdict: ApiVerdict::RateLimited { until },
            ..
        } => format!(
            "GET {path} → {status} RateLimited: API blocked for {}{note}",
            secs(until.saturating_sub(at))
        ),
        Call::Response {
            status,
            verdict,
            body,
        } => format!("GET {path} → {status} {verdict:?}, {} B{note}", body.len()),
        Call::Wait(until) => format!(
            "GET {path} → not sent: authorize says Wait {}",
            secs(until.saturating_sub(at))
        ),
        Call::NoCredential => format!("GET {path} → not sent: no credential"),
    }
}

fn expect_ok(c: &Call) -> Result<(), String> {
    match c {
        Call::Response {
            status: 200..=299,
            verdict: ApiVerdict::Ok,
            ..
        } => Ok(()),
        other => Err(format!("expected a successful API call, got {other:?}")),
    }
}

/// Sets the base faults plus `extra`, and says so.
fn faults(world: &World, tl: &Timeline<'_>, extra: &[String], why: &str) {
    let mut all: Vec<&str> = BASE_FAULTS.to_vec();
    all.extend(extra.iter().map(String::as_str));
    world.set_faults(&all);
    if !extra.is_empty() {
        tl.line(&format!("emulator: fault {} — {why}", extra.join(", ")));
    }
}

/// Proactive refresh: fast-forward to the session's refresh time (the token
/// is still valid) with a fault on the token endpoint, and let the session
/// get a new token, using the old one meanwhile.
fn refresh(rig: &mut Rig<'_>, tl: &Timeline<'_>, fault: &str, why: &str) -> Result<(), String> {
    let Action::Ready { next } = rig.poll() else {
        return Err("not ready before the refresh".into());
    };
    let expires = rig.session.status().expires_at;
    let skipped = tl.world.advance_to(next);
    tl.fast_forward(
        skipped,
        &format!(
            "to the planned refresh; the token is valid {} more",
            secs(expires.saturating_sub(next))
        ),
    );
    let name = rig.provider.name();
    faults(
        tl.world,
        tl,
        &[format!("{name}:token:{fault}:first=1")],
        why,
    );
    for _ in 0..6 {
        match rig.poll() {
            Action::SendTokenRequest(kind) => {
                let at = tl.world.now();
                let r = rig.exchange();
                tl.at(
                    at,
                    &format!("poll → SendTokenRequest({kind:?}) → {}", outcome(&r, at)),
                );
                if let Ok(Event::TokenIssued { .. }) = r {
                    faults(tl.world, tl, &[], "");
                    return Ok(());
                }
            }
            Action::Ready { next } => {
                tl.line("poll → Ready: the old token is still valid and used meanwhile");
                expect_ok(&call(rig, tl)?)?;
                let skipped = tl.world.advance_to(next);
                tl.fast_forward(skipped, "to the retry time the session chose");
            }
            Action::Wait { until } => {
                let skipped = tl.world.advance_to(until);
                tl.fast_forward(skipped, "poll → Wait");
            }
            other => return Err(format!("refresh: unexpected {other:?}")),
        }
    }
    Err("no new token after 6 tries".into())
}

/// Server-side revocation: the emulator kills tokens after one API call;
/// the session drops the rejected token, fetches a new one, and the request
/// is retried once.
fn recover_from_401(rig: &mut Rig<'_>, tl: &Timeline<'_>) -> Result<(), String> {
    let name = rig.provider.name();
    faults(
        tl.world,
        tl,
        &[format!("{name}:api:revoke-after=1")],
        "tokens revoked after 1 API call",
    );
    for _ in 0..3 {
        if let Call::Response {
            verdict: ApiVerdict::RetryWithNewToken,
            ..
        } = call(rig, tl)?
        {
            rig.until_ready(|_, s| tl.step(s))?;
            expect_ok(&call(rig, tl)?)?;
            faults(tl.world, tl, &[], "");
            return Ok(());
        }
    }
    Err("the revoked token was never rejected".into())
}

/// An API key cannot be refreshed: a revoked one is a permanent failure.
fn revoked_key(
    world: &World,
    profile: &'static Profile<'static>,
    tl: &Timeline<'_>,
) -> Result<(), String> {
    let mut bad =
        Rig::new(world, profile, Some("revoked-key"), BUF, 9).map_err(|e| e.to_string())?;
    let at = world.now();
    let c = bad.get_api().map_err(|e| e.to_string())?;
    let action = bad.poll();
    let path = rig::api_path(bad.provider);
    tl.at(
        at,
        &format!(
            "another device, revoked key: {} → poll → {action:?} (permanent: no retries)",
            describe(path, &c, at, "")
        ),
    );
    match c {
        Call::Response {
            status: 401,
            verdict: ApiVerdict::InvalidKey,
            ..
        } if bad.failure().is_some() => Ok(()),
        other => Err(format!("revoked key: {other:?}")),
    }
}

/// Rate limiting: a 429 with `Retry-After: 2` blocks API requests (nothing
/// is sent meanwhile) until the time it gave.
fn backoff_on_429(rig: &mut Rig<'_>, tl: &Timeline<'_>) -> Result<(), String> {
    let name = rig.provider.name();
    faults(
        tl.world,
        tl,
        &[format!("{name}:api:429=2:first=1")],
        "429 with Retry-After: 2",
    );
    let Call::Response {
        verdict: ApiVerdict::RateLimited { until },
        ..
    } = call(rig, tl)?
    else {
        return Err("the 429 was not reported as a rate limit".into());
    };
    let before = tl.world.requests();
    let Call::Wait(_) = call(rig, tl)? else {
        return Err("a request went out while rate limited".into());
    };
    if tl.world.requests() != before {
        return Err("the emulator saw a request while rate limited".into());
    }
    let skipped = tl.world.advance_to(until);
    tl.fast_forward(skipped, "to the end of the rate limit");
    expect_ok(&call(rig, tl)?)?;
    faults(tl.world, tl, &[], "");
    Ok(())
}

/// Fetch, use, proactive refresh, 401 recovery, 429 backoff for one preset.
fn lifecycle(world: &World, profile: &'static Profile<'static>, seed: u64) -> Result<(), String> {
    let tl = Timeline {
        world,
        start: world.now(),
    };
    let mut rig = Rig::new(world, profile, None, BUF, seed).map_err(|e| format!("config: {e}"))?;
    println!(
        "\n▶ {} — {}",
        profile.name,
        world.server.base_url(rig.provider)
    );
    faults(world, &tl, &[], "");
    // Fetch.
    if rig::is_api_key(profile) {
        if let Action::Ready { next: NEVER } = rig.poll() {
            tl.line("poll → Ready (next: never): an API key is usable at once");
        }
    }
    rig.until_ready(|_, s| tl.step(s))?;
    // Use.
    expect_ok(&call(&mut rig, &tl)?)?;
    expect_ok(&call(&mut rig, &tl)?)?;
    // Refresh, and recovery from a revocation.
    if rig::is_api_key(profile) {
        let skipped = world.advance_to(world.now() + 24 * 3_600_000);
        tl.fast_forward(
            skipped,
            "a day later: keys never expire, nothing to refresh",
        );
        expect_ok(&call(&mut rig, &tl)?)?;
        revoked_key(world, profile, &tl)?;
    } else {
        let (fault, why) = match rig.provider {
            fieldauth_emulator::Provider::Fentu => ("503=3", "503 with Retry-After: 3"),
            fieldauth_emulator::Provider::FieldNation => ("truncate=10", "connection cut mid-body"),
            fieldauth_emulator::Provider::Autotask => ("429=5", "429 with Retry-After: 5"),
            fieldauth_emulator::Provider::Patchworks => {
                ("pieces=1", "response written 1 byte per write")
            }
        };
        refresh(&mut rig, &tl, fault, why)?;
        expect_ok(&call(&mut rig, &tl)?)?;
        recover_from_401(&mut rig, &tl)?;
    }
    // Rate limit.
    backoff_on_429(&mut rig, &tl)?;
    Ok(())
}

fn main() -> ExitCode {
    let config = EmulatorConfig::default().with_token_lifetime(LIFETIME_S);
    let server = match fieldauth_emulator::spawn(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the emulator on 127.0.0.1: {e}");
            return ExitCode::FAILURE;
        }
    };
    let world = World::new(server);
    println!(
        "fieldauth demo: the provider emulator on {} (tokens live {LIFETIME_S} s; faults {})",
        world.server.addr(),
        BASE_FAULTS.join(", ")
    );
    println!(
        "Each preset drives a fieldauth Session with the blocking driver over a TCP socket, \
         through a {BUF}-byte buffer."
    );
    println!(
        "Times are session time since the preset started; ⏩ marks a fast-forward of both clocks."
    );
    let mut failed = Vec::new();
    for (i, profile) in preset::ALL.into_iter().enumerate() {
        match lifecycle(&world, profile, 0x5eed + i as u64) {
            Ok(()) => println!("  ✔ lifecycle complete"),
            Err(e) => {
                println!("  ✘ {e}");
                failed.push(profile.name);
            }
        }
    }
    println!(
        "\n{} of {} presets completed their lifecycle in {:.2} s of real time \
         ({} fast-forwarded); {} requests answered by the emulator.",
        preset::ALL.len() - failed.len(),
        preset::ALL.len(),
        world.real().as_secs_f64(),
        secs(world.skipped()),
        world.requests()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
