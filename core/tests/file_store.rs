//! Issue #21: the shared store's contract, on `FileStore` (feature `std`):
//! the lease and compare-and-set rules, the fleet-wide budget, threads and
//! processes sharing one file, a holder killed while it holds the lease,
//! file modes, corruption, and no secret in any error or `Debug` text.
#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout
)]

use std::cell::Cell;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fieldauth::preset::Budget;
use fieldauth::shared::{
    Charge, FileStore, FileStoreError, Lease, Loaded, Saved, Store, StoreError, MAX_BUDGET_ID_LEN,
};

/// The environment variable that makes `child_worker` a worker process.
const CHILD: &str = "FIELDAUTH_FILE_STORE_CHILD";

/// The fleet budget of the concurrency tests: 10 a second, a burst of 3.
const FLEET: Budget = Budget {
    requests: 10,
    window_s: 1,
    burst: 3,
};

thread_local! {
    /// The fake clock of this test's thread (Unix ms).
    static NOW: Cell<u64> = const { Cell::new(1_700_000_000_000) };
    /// The last time the recording clock gave this thread.
    static LAST: Cell<u64> = const { Cell::new(0) };
}

fn fake_clock() -> u64 {
    NOW.with(Cell::get)
}

fn set_now(t: u64) {
    NOW.with(|n| n.set(t));
}

fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The host clock, remembering what it said (the store reads it once per
/// operation, with the lock held): the store time of this thread's last
/// operation.
fn recording_clock() -> u64 {
    let t = system_ms();
    LAST.with(|l| l.set(t));
    t
}

fn last_store_time() -> u64 {
    LAST.with(Cell::get)
}

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("file_store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn store_path(name: &str) -> PathBuf {
    dir(name).join("fleet.store")
}

/// Largest number of `times` (sorted) inside any half-open window of `w` ms.
fn max_in_window(times: &[u64], w: u64) -> usize {
    (0..times.len())
        .map(|i| times[i..].iter().take_while(|&&u| u < times[i] + w).count())
        .max()
        .unwrap_or(0)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn an_empty_store_loads_nothing() {
    let path = store_path("empty");
    let mut store = FileStore::with_clock(&path, fake_clock).unwrap();
    assert!(path.exists(), "open creates the file");
    assert!(PathBuf::from(format!("{}.lock", path.display())).exists());
    assert_eq!(store.load(&mut [0u8; 16]).unwrap(), None);
    assert_eq!(
        store.load(&mut []).unwrap(),
        None,
        "no buffer needed for nothing"
    );
    // A second worker opening it finds the same empty store.
    let mut other = FileStore::with_clock(&path, fake_clock).unwrap();
    assert_eq!(other.load(&mut [0u8; 16]).unwrap(), None);
}

#[test]
fn the_lease_is_one_holders_and_ends_by_itself() {
    let path = store_path("lease");
    let mut a = FileStore::with_clock(&path, fake_clock).unwrap();
    let mut b = FileStore::with_clock(&path, fake_clock).unwrap();
    let t = 1_700_000_000_000;
    set_now(t);
    assert_eq!(
        a.lease(1, 1_000).unwrap(),
        Lease::Held {
            until_ms: t + 1_000
        }
    );
    // A second holder is told whose lease runs until when.
    assert_eq!(
        b.lease(2, 5_000).unwrap(),
        Lease::Busy {
            until_ms: t + 1_000
        }
    );
    // The holder renews it.
    set_now(t + 500);
    assert_eq!(
        a.lease(1, 1_000).unwrap(),
        Lease::Held {
            until_ms: t + 1_500
        }
    );
    set_now(t + 1_499);
    assert_eq!(
        b.lease(2, 5_000).unwrap(),
        Lease::Busy {
            until_ms: t + 1_500
        }
    );
    // At its end it is nobody's: the next caller takes it over.
    set_now(t + 1_500);
    assert_eq!(
        b.lease(2, 5_000).unwrap(),
        Lease::Held {
            until_ms: t + 6_500
        }
    );
    assert_eq!(
        a.lease(1, 1_000).unwrap(),
        Lease::Busy {
            until_ms: t + 6_500
        }
    );
    // Releasing someone else's lease does nothing; the holder's own ends it.
    a.release(1).unwrap();
    assert_eq!(
        a.lease(1, 1_000).unwrap(),
        Lease::Busy {
            until_ms: t + 6_500
        }
    );
    b.release(2).unwrap();
    assert_eq!(
        a.lease(1, 1_000).unwrap(),
        Lease::Held {
            until_ms: t + 2_500
        }
    );
    // Releasing twice, or without a lease, is no error.
    a.release(1).unwrap();
    a.release(1).unwrap();
    b.release(2).unwrap();
}

#[test]
fn save_is_a_compare_and_set_for_the_lease_holder() {
    let path = store_path("cas");
    let mut a = FileStore::with_clock(&path, fake_clock).unwrap();
    let mut b = FileStore::with_clock(&path, fake_clock).unwrap();
    let t = 1_700_000_000_000;
    set_now(t);
    let mut buf = [0u8; 64];

    // Without a lease: nothing is stored.
    assert_eq!(a.save(1, 0, b"first").unwrap(), Saved::NotHolder);
    assert_eq!(a.load(&mut buf).unwrap(), None);

    assert!(matches!(a.lease(1, 10_000).unwrap(), Lease::Held { .. }));
    // Over a generation the store does not hold: stale.
    assert_eq!(
        a.save(1, 3, b"first").unwrap(),
        Saved::Stale { generation: 0 }
    );
    // Another worker without the lease cannot save either.
    assert_eq!(b.save(2, 0, b"theirs").unwrap(), Saved::NotHolder);
    assert_eq!(
        a.save(1, 0, b"first").unwrap(),
        Saved::Stored { generation: 1 }
    );
    assert_eq!(
        b.load(&mut buf).unwrap(),
        Some(Loaded {
            generation: 1,
            len: 5
        })
    );
    assert_eq!(&buf[..5], b"first");
    // The lease stays held after a save; the old generation is stale now.
    assert_eq!(
        a.save(1, 0, b"again").unwrap(),
        Saved::Stale { generation: 1 }
    );
    assert_eq!(
        a.save(1, 1, b"second").unwrap(),
        Saved::Stored { generation: 2 }
    );

    // Once the lease has expired, its old holder cannot save ...
    set_now(t + 10_000);
    assert_eq!(a.save(1, 2, b"late").unwrap(), Saved::NotHolder);
    // ... and the worker that took it over saves over what it loaded.
    assert!(matches!(b.lease(2, 10_000).unwrap(), Lease::Held { .. }));
    let loaded = b.load(&mut buf).unwrap().unwrap();
    assert_eq!((loaded.generation, &buf[..loaded.len]), (2, &b"second"[..]));
    assert_eq!(a.save(1, 2, b"late").unwrap(), Saved::NotHolder);
    assert_eq!(b.save(2, 2, b"").unwrap(), Saved::Stored { generation: 3 });
    assert_eq!(
        a.load(&mut buf).unwrap(),
        Some(Loaded {
            generation: 3,
            len: 0
        }),
        "an empty state is a state"
    );
    // A release ends the lease: saving needs it again.
    b.release(2).unwrap();
    assert_eq!(b.save(2, 3, b"x").unwrap(), Saved::NotHolder);
}

#[test]
fn a_short_buffer_is_an_error_that_says_how_much_is_needed() {
    let path = store_path("short");
    let mut store = FileStore::with_clock(&path, fake_clock).unwrap();
    store.lease(7, 1_000).unwrap();
    let state: Vec<u8> = (0..100).collect();
    assert_eq!(
        store.save(7, 0, &state).unwrap(),
        Saved::Stored { generation: 1 }
    );
    let mut buf = [0u8; 99];
    let err = store.load(&mut buf).unwrap_err();
    assert!(
        matches!(err, FileStoreError::BufferTooSmall { needed: 100 }),
        "{err:?}"
    );
    assert_eq!(err.needed_len(), Some(100));
    assert_eq!(buf, [0u8; 99], "nothing was copied: never truncated");
    let mut buf = [0u8; 100];
    assert_eq!(
        store.load(&mut buf).unwrap(),
        Some(Loaded {
            generation: 1,
            len: 100
        })
    );
    assert_eq!(&buf[..], &state[..]);
}

#[test]
fn charge_is_the_governors_gcra_on_the_store_clock() {
    let path = store_path("charge");
    let mut a = FileStore::with_clock(&path, fake_clock).unwrap();
    let mut b = FileStore::with_clock(&path, fake_clock).unwrap();
    let budget = Budget {
        requests: 4,
        window_s: 2,
        burst: 2,
    };
    let t = 1_700_000_000_000;
    set_now(t);
    // The burst, shared by both workers.
    assert_eq!(a.charge("api", budget).unwrap(), Charge::Granted);
    assert_eq!(b.charge("api", budget).unwrap(), Charge::Granted);
    // Then one every 2 s / (4 - 2 + 1) = 667 ms.
    let wait = a.charge("api", budget).unwrap();
    assert_eq!(wait, Charge::WaitUntil { unix_ms: t + 667 });
    // Asking again charges nothing.
    assert_eq!(b.charge("api", budget).unwrap(), wait);
    // Another name is another budget.
    assert_eq!(b.charge("token", budget).unwrap(), Charge::Granted);
    set_now(t + 667);
    assert_eq!(b.charge("api", budget).unwrap(), Charge::Granted);
    assert_eq!(
        a.charge("api", budget).unwrap(),
        Charge::WaitUntil { unix_ms: t + 1_334 }
    );
    // A long pause refills the burst.
    set_now(t + 60_000);
    assert_eq!(a.charge("api", budget).unwrap(), Charge::Granted);
    assert_eq!(a.charge("api", budget).unwrap(), Charge::Granted);
    assert!(matches!(
        a.charge("api", budget).unwrap(),
        Charge::WaitUntil { .. }
    ));

    // Names: 1 to 32 bytes; at most MAX_BUDGETS of them.
    assert!(matches!(
        a.charge("", budget),
        Err(FileStoreError::BudgetId { len: 0 })
    ));
    let long = "n".repeat(MAX_BUDGET_ID_LEN + 1);
    assert!(matches!(
        a.charge(&long, budget),
        Err(FileStoreError::BudgetId { len: 33 })
    ));
    assert_eq!(
        a.charge(&long[..MAX_BUDGET_ID_LEN], budget).unwrap(),
        Charge::Granted
    );
    for k in 3..FileStore::MAX_BUDGETS {
        assert_eq!(a.charge(&format!("b{k}"), budget).unwrap(), Charge::Granted);
    }
    assert!(matches!(
        a.charge("one-too-many", budget),
        Err(FileStoreError::TooManyBudgets)
    ));
    // The known names still work, and the state was never touched.
    assert!(matches!(
        a.charge("api", budget).unwrap(),
        Charge::WaitUntil { .. }
    ));
    assert_eq!(a.load(&mut []).unwrap(), None);
}

/// What one worker saw: the generations it stored and the store times of
/// the charges granted to it.
#[derive(Default)]
struct Seen {
    stored: Vec<u64>,
    granted: Vec<u64>,
    busy: usize,
}

/// One worker's loop for `run`: lease, load, save over what it loaded,
/// release; charge the fleet budget; again. The state it saves names its
/// generation, so a later load can check it got the state of that
/// generation.
fn work(path: &Path, holder: u64, run: Duration) -> Seen {
    let mut store = FileStore::with_clock(path, recording_clock).unwrap();
    let mut seen = Seen::default();
    let mut buf = [0u8; 64];
    let end = Instant::now() + run;
    while Instant::now() < end {
        match store.lease(holder, 2_000).unwrap() {
            Lease::Held { .. } => {
                let generation = match store.load(&mut buf).unwrap() {
                    Some(loaded) => {
                        let text = std::str::from_utf8(&buf[..loaded.len]).unwrap();
                        assert_eq!(text, format!("state {}", loaded.generation));
                        loaded.generation
                    }
                    None => 0,
                };
                let state = format!("state {}", generation + 1);
                match store.save(holder, generation, state.as_bytes()).unwrap() {
                    Saved::Stored { generation: g } => {
                        assert_eq!(g, generation + 1);
                        seen.stored.push(g);
                    }
                    other => panic!("holder {holder}: {other:?} over generation {generation}"),
                }
                store.release(holder).unwrap();
            }
            Lease::Busy { .. } => seen.busy += 1,
        }
        if store.charge("api", FLEET).unwrap() == Charge::Granted {
            seen.granted.push(last_store_time());
        }
    }
    seen
}

/// What the whole fleet saw must be one history: every generation from 1 to
/// the last stored exactly once (none lost, none twice), the file holds the
/// last one, and no sliding second holds more than the budget's grants.
fn check_fleet(path: &Path, seen: Vec<Seen>) {
    let mut stored: Vec<u64> = seen.iter().flat_map(|s| s.stored.iter().copied()).collect();
    let mut granted: Vec<u64> = seen
        .iter()
        .flat_map(|s| s.granted.iter().copied())
        .collect();
    let busy: usize = seen.iter().map(|s| s.busy).sum();
    stored.sort_unstable();
    granted.sort_unstable();
    let n = stored.len() as u64;
    assert!(n >= 8, "only {n} saves");
    assert_eq!(
        stored,
        (1..=n).collect::<Vec<_>>(),
        "generations 1..={n}, each once"
    );
    let mut buf = [0u8; 64];
    let mut store = FileStore::open(path).unwrap();
    let last = store.load(&mut buf).unwrap().unwrap();
    assert_eq!(last.generation, n);
    assert_eq!(&buf[..last.len], format!("state {n}").as_bytes());
    let w = u64::from(FLEET.window_s) * 1000;
    let most = max_in_window(&granted, w);
    assert!(
        most <= FLEET.requests as usize,
        "{most} grants in one window"
    );
    assert!(
        most >= FLEET.requests as usize / 2,
        "{most} grants at most in a window: the budget is not used"
    );
    println!(
        "{} saves, {busy} busy answers, {} grants, at most {most} in a {w} ms window",
        n,
        granted.len()
    );
}

#[test]
fn threads_share_one_file_without_a_lost_update() {
    let path = Arc::new(store_path("threads"));
    FileStore::open(&*path).unwrap();
    let workers: Vec<_> = (0..8u64)
        .map(|k| {
            let path = Arc::clone(&path);
            thread::spawn(move || work(&path, 0x1000 + k, Duration::from_millis(2_500)))
        })
        .collect();
    let seen = workers.into_iter().map(|w| w.join().unwrap()).collect();
    check_fleet(&path, seen);
}

/// Starts this test binary as a worker process running `child_worker`.
fn spawn_child(mode: &str, path: &Path, holder: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_worker", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{mode} {holder} {}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// A worker process (started by the tests below with `CHILD` set; returns
/// at once in a normal test run). `hammer`: two threads run `work` for 2.5 s
/// and print what they saw. `hold`: take the lease, say so, and hang until
/// killed.
#[test]
fn child_worker() {
    let Ok(how) = std::env::var(CHILD) else {
        return;
    };
    let mut parts = how.splitn(3, ' ');
    let (mode, holder, path) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        PathBuf::from(parts.next().unwrap()),
    );
    let mut out = std::io::stdout().lock();
    // The harness may have written part of a line ("test child_worker ... ").
    writeln!(out).unwrap();
    match mode {
        "hammer" => {
            let threads: Vec<_> = (0..2u64)
                .map(|k| {
                    let path = path.clone();
                    thread::spawn(move || work(&path, holder + k, Duration::from_millis(2_500)))
                })
                .collect();
            for t in threads {
                let seen = t.join().unwrap();
                for g in seen.stored {
                    writeln!(out, "STORED {g}").unwrap();
                }
                for t in seen.granted {
                    writeln!(out, "GRANTED {t}").unwrap();
                }
                writeln!(out, "BUSY {}", seen.busy).unwrap();
            }
        }
        "hold" => {
            let mut store = FileStore::open(&path).unwrap();
            let Lease::Held { until_ms } = store.lease(holder, 1_500).unwrap() else {
                panic!("the lease was not free");
            };
            writeln!(out, "HELD {until_ms}").unwrap();
            out.flush().unwrap();
            thread::sleep(Duration::from_secs(120));
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn processes_share_one_file_without_a_lost_update() {
    let path = store_path("processes");
    FileStore::open(&path).unwrap();
    let children: Vec<_> = (0..4u64)
        .map(|k| spawn_child("hammer", &path, 0x2000 + 16 * k))
        .collect();
    let mut seen = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{:?}", output.status);
        let mut s = Seen::default();
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            let mut words = line.split(' ');
            match (words.next(), words.next().map(|w| w.parse::<u64>())) {
                (Some("STORED"), Some(Ok(g))) => s.stored.push(g),
                (Some("GRANTED"), Some(Ok(t))) => s.granted.push(t),
                (Some("BUSY"), Some(Ok(b))) => s.busy += b as usize,
                _ => {} // the test harness's own lines
            }
        }
        seen.push(s);
    }
    assert_eq!(seen.len(), 4);
    check_fleet(&path, seen);
}

#[test]
fn a_killed_holder_blocks_the_others_at_most_its_ttl() {
    let path = store_path("killed");
    FileStore::open(&path).unwrap();
    let mut child = spawn_child("hold", &path, 0xdead);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let until: u64 = loop {
        let line = lines.next().expect("the child said nothing").unwrap();
        if let Some(at) = line.find("HELD ") {
            break line[at + 5..].trim().parse().unwrap();
        }
    };
    child.kill().unwrap(); // SIGKILL: no release, no clean-up
    child.wait().unwrap();
    let killed = Instant::now();

    let mut store = FileStore::with_clock(&path, recording_clock).unwrap();
    let taken_at = loop {
        match store.lease(0xbeef, 1_500).unwrap() {
            Lease::Held { .. } => break last_store_time(),
            Lease::Busy { until_ms } => assert_eq!(until_ms, until, "the dead holder's lease"),
        }
        thread::sleep(Duration::from_millis(5));
    };
    let waited = killed.elapsed();
    assert!(
        taken_at >= until,
        "taken at {taken_at}, before the lease's end {until}"
    );
    // Taken over as soon as it ended (5 ms polls, on a loaded machine): the
    // others were blocked for at most the TTL (the lease began before the
    // kill), plus how long it took to notice.
    assert!(
        taken_at < until + 500,
        "taken {} ms after the end",
        taken_at - until
    );
    assert!(
        waited < Duration::from_millis(1_500 + 500),
        "blocked for {waited:?}"
    );
    println!(
        "lease taken over {} ms after its end, {waited:?} after the kill",
        taken_at - until
    );
}

#[cfg(unix)]
#[test]
fn files_are_0600_and_loose_ones_are_refused() {
    let path = store_path("modes");
    let lock = PathBuf::from(format!("{}.lock", path.display()));
    let mut store = FileStore::open(&path).unwrap();
    store.lease(1, 60_000).unwrap();
    store.save(1, 0, b"secret").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&lock), 0o600);

    // Someone made the file readable by others: every operation refuses it.
    chmod(&path, 0o644);
    let err = store.load(&mut [0u8; 16]).unwrap_err();
    match &err {
        FileStoreError::Permissions { path: p, mode } => {
            assert_eq!((p.as_path(), *mode), (path.as_path(), 0o644));
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("mode 644") && text.contains("fleet.store"),
        "{text}"
    );
    assert!(matches!(
        store.lease(1, 1),
        Err(FileStoreError::Permissions { .. })
    ));
    assert!(matches!(
        store.save(1, 1, b"x"),
        Err(FileStoreError::Permissions { .. })
    ));
    assert!(matches!(
        store.charge("api", FLEET),
        Err(FileStoreError::Permissions { .. })
    ));
    assert!(matches!(
        FileStore::open(&path),
        Err(FileStoreError::Permissions { .. })
    ));
    chmod(&path, 0o660); // group-writable is refused too
    assert!(matches!(
        store.release(1),
        Err(FileStoreError::Permissions { .. })
    ));
    chmod(&path, 0o600);
    assert_eq!(store.load(&mut [0u8; 16]).unwrap().unwrap().generation, 1);

    // The lock file too.
    chmod(&lock, 0o604);
    match store.load(&mut [0u8; 16]).unwrap_err() {
        FileStoreError::Permissions { path: p, mode } => {
            assert_eq!((p, mode), (lock.clone(), 0o604));
        }
        other => panic!("{other:?}"),
    }
    chmod(&lock, 0o600);

    // A file someone created before the first worker, readable by all.
    let other = store_path("modes-precreated");
    std::fs::write(&other, b"").unwrap();
    chmod(&other, 0o644);
    assert!(matches!(
        FileStore::open(&other),
        Err(FileStoreError::Permissions { .. })
    ));
}

#[test]
fn a_corrupt_file_is_a_typed_error() {
    let path = store_path("corrupt");
    let mut store = FileStore::with_clock(&path, fake_clock).unwrap();
    store.lease(1, 60_000).unwrap();
    store.save(1, 0, b"some state bytes").unwrap();
    store.charge("api", FLEET).unwrap();
    let good = std::fs::read(&path).unwrap();
    let mut corrupt = |bytes: &[u8], reason: &str| {
        std::fs::write(&path, bytes).unwrap(); // keeps the file's 0600
                                               // Every operation of an open store fails the same way, and so does
                                               // opening the file.
        let errors = [
            store.load(&mut [0u8; 64]).map(drop),
            store.lease(2, 1_000).map(drop),
            store.save(1, 1, b"x").map(drop),
            store.release(1),
            store.charge("api", FLEET).map(drop),
            FileStore::with_clock(&path, fake_clock).map(drop),
        ];
        for err in errors {
            match err {
                Err(FileStoreError::Corrupt { reason: r }) => assert_eq!(r, reason),
                other => panic!("{reason}: {other:?}"),
            }
        }
        // Nothing was written over it.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    };
    let mut flipped = good.clone();
    let at = flipped.len() - 8; // inside the state bytes
    flipped[at] ^= 1;
    corrupt(&flipped, "checksum mismatch");
    corrupt(&good[..good.len() - 1], "checksum mismatch");
    corrupt(b"", "too short");
    corrupt(&[0u8; 64], "not a fieldauth store file");
    let mut version = good.clone();
    version[4] = 2;
    corrupt(&version, "unknown format version");

    // The remedy: delete the file; the next operation starts an empty store.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(store.load(&mut [0u8; 64]).unwrap(), None);
    store.lease(1, 60_000).unwrap();
    assert_eq!(
        store.save(1, 0, b"anew").unwrap(),
        Saved::Stored { generation: 1 }
    );
}

#[test]
fn the_file_format_is_as_documented() {
    let path = store_path("format");
    let mut store = FileStore::with_clock(&path, fake_clock).unwrap();
    let t = 1_700_000_000_000;
    set_now(t);
    store.lease(0x0102_0304_0506_0708, 1_000).unwrap();
    store.save(0x0102_0304_0506_0708, 0, b"abc").unwrap();
    store.charge("api", FLEET).unwrap();
    let b = std::fs::read(&path).unwrap();
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    assert_eq!(&b[..4], b"FAst");
    assert_eq!(u16::from_le_bytes([b[4], b[5]]), 1, "version");
    assert_eq!(u16::from_le_bytes([b[6], b[7]]), 1, "budgets");
    assert_eq!(u64_at(8), 1, "generation");
    assert_eq!(u64_at(16), 0x0102_0304_0506_0708, "holder");
    assert_eq!(u64_at(24), t + 1_000, "lease end");
    assert_eq!(
        u32::from_le_bytes(b[32..36].try_into().unwrap()),
        3,
        "state length"
    );
    assert_eq!(b[36], 3);
    assert_eq!(&b[37..40], b"api");
    // One request paced at 1 s / (10 - 3 + 1) = 125 ms.
    assert_eq!(u64_at(40), t + 125, "GCRA cell");
    assert_eq!(&b[48..51], b"abc");
    assert_eq!(b.len(), 55, "and the CRC-32");
}

#[test]
fn no_state_byte_in_errors_or_debug() {
    const SECRET: &str = "eyJSECRET-access-token-4711";
    let path = store_path("secrets");
    let mut store = FileStore::with_clock(&path, fake_clock).unwrap();
    store.lease(9, 60_000).unwrap();
    store.save(9, 0, SECRET.as_bytes()).unwrap();
    let mut texts = vec![format!("{store:?}")];
    let mut buf = [0u8; 64];
    let loaded = store.load(&mut buf).unwrap();
    texts.push(format!("{loaded:?}"));
    let short = store.load(&mut [0u8; 4]).unwrap_err();
    texts.push(format!("{short:?} {short}"));
    // A corrupt file whose bytes are mostly the secret.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let corrupt = store.load(&mut buf).unwrap_err();
    texts.push(format!("{corrupt:?} {corrupt}"));
    #[cfg(unix)]
    {
        chmod(&path, 0o640);
        let loose = store.load(&mut buf).unwrap_err();
        texts.push(format!("{loose:?} {loose}"));
    }
    for text in &texts {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!text.contains("4711"), "{text}");
    }
    // Every store error answers `needed_len`: only the short buffer has one.
    assert_eq!(corrupt.needed_len(), None);
}

/// The golden file every implementation of the format is checked against
/// (this test, and `bindings/python/tests/test_stores.py`, which runs the
/// same operations with the Python `FileStore` and reads the file back).
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/file-store-v1.bin"
);

/// Set to `1` to write the golden file anew from this Rust run, instead of
/// comparing with it (only when the format changes on purpose: then bump
/// its version, and the Python store follows):
/// `FIELDAUTH_REGENERATE_FIXTURES=1 cargo test -p fieldauth --features std --test file_store golden`.
const REGENERATE: &str = "FIELDAUTH_REGENERATE_FIXTURES";

#[test]
fn golden_file_of_a_fixed_sequence() {
    const T: u64 = 1_700_000_000_000;
    const A: u64 = 0x0102_0304_0506_0708;
    const B: u64 = 0x1122_3344_5566_7788;
    let token = Budget {
        requests: 10,
        window_s: 60,
        burst: 1,
    };
    let api = Budget {
        requests: 40,
        window_s: 10,
        burst: 4,
    };
    let tenant = Budget {
        requests: 3,
        window_s: 1,
        burst: 2,
    };
    let path = store_path("golden");
    set_now(T);
    let mut a = FileStore::with_clock(&path, fake_clock).unwrap();
    let mut b = FileStore::with_clock(&path, fake_clock).unwrap();
    assert_eq!(
        a.lease(A, 30_000).unwrap(),
        Lease::Held {
            until_ms: T + 30_000
        }
    );
    assert_eq!(
        a.save(A, 0, b"state one").unwrap(),
        Saved::Stored { generation: 1 }
    );
    assert_eq!(a.charge("token", token).unwrap(), Charge::Granted);
    set_now(T + 1);
    for _ in 0..4 {
        assert_eq!(a.charge("api", api).unwrap(), Charge::Granted);
    }
    // 10 s / (40 - 4 + 1) = 271 ms a request, 3 × 271 ms of tolerance.
    assert_eq!(
        a.charge("api", api).unwrap(),
        Charge::WaitUntil {
            unix_ms: T + 1 + 271
        }
    );
    set_now(T + 1_000);
    assert_eq!(
        b.lease(B, 5_000).unwrap(),
        Lease::Busy {
            until_ms: T + 30_000
        }
    );
    set_now(T + 2_000);
    a.release(A).unwrap();
    assert_eq!(
        b.lease(B, 5_000).unwrap(),
        Lease::Held {
            until_ms: T + 7_000
        }
    );
    assert_eq!(b.save(B, 0, b"x").unwrap(), Saved::Stale { generation: 1 });
    let two: &[u8] = b"state two \x00\x01\xfe\xff";
    assert_eq!(b.save(B, 1, two).unwrap(), Saved::Stored { generation: 2 });
    assert_eq!(a.save(A, 2, b"x").unwrap(), Saved::NotHolder);
    set_now(T + 3_000);
    assert_eq!(b.charge("api:tenant-42", tenant).unwrap(), Charge::Granted);
    assert_eq!(
        b.charge("token", token).unwrap(),
        Charge::WaitUntil { unix_ms: T + 6_000 }
    );
    let bytes = std::fs::read(&path).unwrap();
    if std::env::var(REGENERATE).as_deref() == Ok("1") {
        std::fs::create_dir_all(Path::new(GOLDEN).parent().unwrap()).unwrap();
        std::fs::write(GOLDEN, &bytes).unwrap();
        println!("wrote {GOLDEN}");
    }
    let golden = std::fs::read(GOLDEN)
        .unwrap_or_else(|e| panic!("{GOLDEN}: {e} (set {REGENERATE}=1 to write it)"));
    assert_eq!(bytes, golden, "the file differs from {GOLDEN}");

    // And the golden file reads back as what was stored.
    let copy = store_path("golden-read");
    std::fs::copy(GOLDEN, &copy).unwrap();
    #[cfg(unix)]
    chmod(&copy, 0o600);
    // Back at T + 1 (the fake clock may go back), where each answer shows a cell.
    set_now(T + 1);
    let mut store = FileStore::with_clock(&copy, fake_clock).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        store.load(&mut buf).unwrap(),
        Some(Loaded {
            generation: 2,
            len: two.len()
        })
    );
    assert_eq!(&buf[..two.len()], two);
    assert_eq!(
        store.lease(A, 1_000).unwrap(),
        Lease::Busy {
            until_ms: T + 7_000
        }
    );
    assert_eq!(
        store.charge("token", token).unwrap(),
        Charge::WaitUntil { unix_ms: T + 6_000 }
    );
    // api: 4 granted at T + 1, so its cell is T + 1 + 4 × 271, less 3 × 271
    // of tolerance.
    assert_eq!(
        store.charge("api", api).unwrap(),
        Charge::WaitUntil {
            unix_ms: T + 1 + 271
        }
    );
}
