//! `tests/c/oidc_e2e.c`, the C ABI end to end against an independent OAuth
//! 2.0 server, panva's oidc-provider (`tests/oidc/server.mjs`, issue #14):
//! built with `-Wall -Wextra -Werror -pedantic` and AddressSanitizer +
//! UndefinedBehaviorSanitizer against the shipped `no_std` release
//! `libfieldauth.a`, and run against a server started here on 127.0.0.1.
//! The C program does client_credentials with Basic (a special-character
//! id and secret) and post, a wrong secret, proactive refresh of 5 s tokens
//! in real time, a 401 at `/api/me` and the recovery, revocation (of the
//! access token alone, then of the grant), and the device flow to completion
//! (its user-code, login and consent pages driven over HTTP by the C
//! program) with three rotated refreshes and a replayed refresh token that
//! revokes the grant; each token exchange through
//! `fieldauth_session_exchange` with socket callbacks.
//!
//! Node.js and `tests/oidc/node_modules` as in `core/tests/oidc.rs`: `npm
//! ci` on first use (under the same lock directory); without `node` the test
//! passes after a loud SKIPPED banner unless `FIELDAUTH_REQUIRE_OIDC=1`
//! (set by `.ci/run`), which makes that a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stderr
)]
#![cfg(not(miri))]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::*;

fn oidc_dir() -> PathBuf {
    root().join("tests/oidc")
}

fn node_present() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn installed(dir: &Path) -> bool {
    let mtime = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        mtime(dir.join("node_modules/.package-lock.json")),
        mtime(dir.join("package-lock.json")),
    ) {
        (Some(done), Some(lock)) => done >= lock,
        _ => false,
    }
}

/// `npm ci` when `node_modules` is missing or older than the lock file,
/// under the lock directory `core/tests/oidc.rs` uses too.
fn ensure_installed() {
    let dir = oidc_dir();
    if installed(&dir) {
        return;
    }
    let lock = dir.join(".install.lock");
    let started = Instant::now();
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let age = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|a| a > Duration::from_secs(600)) {
                    let _ = std::fs::remove_dir(&lock);
                } else {
                    assert!(
                        started.elapsed() < Duration::from_secs(300),
                        "{} is held for 5 minutes",
                        lock.display()
                    );
                }
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create {}: {e}", lock.display()),
        }
    }
    let out = if installed(&dir) {
        None
    } else {
        eprintln!("tests/oidc: npm ci (installing oidc-provider from package-lock.json)");
        Some(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .output(),
        )
    };
    let _ = std::fs::remove_dir(&lock);
    match out {
        None | Some(Ok(_)) if installed(&dir) => {}
        Some(Ok(o)) => panic!(
            "npm ci failed ({}):\n{}{}",
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        ),
        Some(Err(e)) => panic!("node is installed but npm cannot run ({e})"),
        None => panic!("tests/oidc: node_modules vanished during the install check"),
    }
}

/// A running `server.mjs`, killed on drop; its stderr is printed if the test
/// fails.
struct Oidc {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Oidc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- oidc-provider stderr ----\n{}",
                text(&self.log.lock().unwrap())
            );
        }
    }
}

/// Starts oidc-provider (5 s access tokens), or `None` after a loud banner
/// when Node.js is not installed.
fn server() -> Option<Oidc> {
    if !node_present() {
        let banner = "!!!!!!!!!! OIDC-PROVIDER C TESTS SKIPPED: `node` is not on the PATH, so \
                      the C ABI was NOT tested against oidc-provider (Debian: apt-get install \
                      nodejs npm; `bash .ci/run` installs them) !!!!!!!!!!";
        let required = std::env::var("FIELDAUTH_REQUIRE_OIDC").is_ok_and(|v| v == "1");
        assert!(!required, "{banner} (FIELDAUTH_REQUIRE_OIDC=1)");
        let _ = writeln!(std::io::stderr(), "\n{banner}\n");
        return None;
    }
    ensure_installed();
    let mut child = Command::new("node")
        .arg(oidc_dir().join("server.mjs"))
        .env("OIDC_PORT", "0")
        .env("OIDC_ACCESS_TTL_S", "5")
        .env("OIDC_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node tests/oidc/server.mjs");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    thread::spawn(move || {
        let mut piece = [0u8; 1024];
        while let Ok(n @ 1..) = stderr.read(&mut piece) {
            sink.lock().unwrap().extend_from_slice(&piece[..n]);
        }
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut srv = Oidc {
        child,
        _stdin: stdin,
        port: 0,
        log,
    };
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    srv.port = line.trim().parse().unwrap_or_else(|_| {
        panic!(
            "server.mjs printed no port (first stdout line {line:?}); stderr:\n{}",
            text(&srv.log.lock().unwrap())
        )
    });
    Some(srv)
}

#[test]
fn c_abi_end_to_end_against_oidc_provider() {
    let Some(srv) = server() else { return };
    let dir = scratch("oidc_c");
    let exe = dir.join("oidc_e2e");
    run(Command::new(cc())
        .args(["-std=c11", "-g", "-O1"])
        .args(STRICT)
        .args([
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ])
        .arg("-I")
        .arg(include_dir())
        .arg(root().join("tests/c/oidc_e2e.c"))
        .arg(static_lib())
        .arg("-o")
        .arg(&exe));
    let started = Instant::now();
    let out = run_any(
        Command::new(&exe)
            .arg(srv.port.to_string())
            .env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
            .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!(
        "oidc_e2e ({:.1} s):\n{stdout}{stderr}",
        started.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "oidc_e2e failed ({})", out.status);
    assert!(!stderr.contains("ERROR: AddressSanitizer"), "{stderr}");
    assert!(!stderr.contains("runtime error:"), "{stderr}");
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.ends_with(" failed"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    let passed: u32 = line.split(' ').next().unwrap().parse().unwrap();
    assert!(line.ends_with(", 0 failed"), "C checks failed: {line}");
    // Every section ran (about 355 checks, the device flow about 110 of
    // them; the refresh loop adds some).
    assert!(passed >= 320, "too few C checks ran: {line}");
    drop(srv);
}
