//! `fieldauth_worker` and `fieldauth_store` (issue #21): one worker of a
//! fleet sharing a credential, over a store the C application implements
//! with callbacks. The rules are the core's `shared::Worker`; this file
//! adapts the callbacks to its `Store` trait and checks the pointers.

use core::ffi::{c_char, c_void};

use fieldauth_core::preset::Budget;
use fieldauth_core::session::Adopted;
use fieldauth_core::shared::{
    BudgetKind, Charge, Lease, Loaded, Notice, Saved, Store, StoreError, Turn, Worker,
};

use crate::cell::SessionCell;
use crate::ptr::{done, fits, Args, Cell, R};
use crate::status::*;
use crate::types::*;

// ------------------------------------------------------------------ C types

/// Bytes of a fieldauth_worker.
pub const FIELDAUTH_WORKER_SIZE: usize = 64;
/// Alignment a fieldauth_worker needs.
pub const FIELDAUTH_WORKER_ALIGN: usize = 8;
/// uint64_t words of a fieldauth_worker.
pub const FIELDAUTH_WORKER_WORDS: usize = FIELDAUTH_WORKER_SIZE / 8;

/// Storage for one worker of a fleet that shares one credential through a
/// store (fieldauth_store): its lease holder id, whether the store answers,
/// and its own budget shares for when it does not. Holds no secret.
/// Opaque: caller-allocated (FIELDAUTH_WORKER_SIZE bytes, 8-byte aligned),
/// initialized by fieldauth_worker_init(); one per session, used with that
/// session only, by one thread at a time.
#[repr(C)]
pub struct fieldauth_worker {
    opaque: [u64; FIELDAUTH_WORKER_WORDS],
}

/// A store callback's answer: done.
pub const FIELDAUTH_STORE_OK: i32 = 0;
/// A store callback's answer (load only): the state is longer than the
/// buffer; `*out_len` is its length. The worker returns
/// FIELDAUTH_ERR_BUFFER_TOO_SMALL with that length.
pub const FIELDAUTH_STORE_BUFFER_TOO_SMALL: i32 = 1;
/// A store callback's answer: the store failed (any value other than the
/// two above means the same). The worker keeps serving the token it holds,
/// falls back to its share of the budgets and asks the store again after
/// FIELDAUTH_STORE_RETRY_MS.
pub const FIELDAUTH_STORE_FAILED: i32 = -1;

/// save(): the state was stored; `*out_generation` is its generation
/// (expected + 1).
pub const FIELDAUTH_SAVED_STORED: u32 = 0;
/// save(): the caller holds no live lease; nothing was stored.
pub const FIELDAUTH_SAVED_NOT_HOLDER: u32 = 1;
/// save(): the stored generation is not the expected one (a peer saved
/// meanwhile); nothing was stored; `*out_generation` is the stored one.
pub const FIELDAUTH_SAVED_STALE: u32 = 2;

/// A store shared by the workers of a fleet, as callbacks over the C
/// application's own shared storage (shared memory, a file, SQLite, its
/// Redis client). The library calls them from fieldauth_worker_* functions
/// only, on the calling thread, and keeps no pointer to this struct, `ctx`
/// or its buffers after the call. A callback must not call fieldauth
/// functions on the worker or session it serves, and must not unwind or
/// longjmp through the library. Every output is preset by the library (0),
/// so a callback that fails may leave them unwritten.
///
/// The contract every store keeps (the core's `fieldauth::shared::Store`):
///
/// - Atomicity: each callback is one atomic step over the whole store with
///   respect to every other callback of every worker on every host.
/// - Durability: what a callback reported done is seen by every later
///   callback; a store that loses its content comes back empty (generation
///   0, no lease, full budgets), never older.
/// - One clock: every time is the store's clock in Unix milliseconds, read
///   once inside each atomic step (shared by all hosts: one server's clock).
/// - Failure: return FIELDAUTH_STORE_FAILED (or any value other than
///   FIELDAUTH_STORE_OK and, for load, FIELDAUTH_STORE_BUFFER_TOO_SMALL).
///   A failed callback may have taken effect (a broken connection); the
///   worker relies only on later answers. Never store or return half an
///   image.
/// - Secrets: the state image holds tokens; store it where only the
///   application's own user can read it, and never log it.
///
/// The callbacks (all required):
///
/// - `load(ctx, buf, buf_len, out_len, out_generation)`: copy the newest
///   state into `buf`, its length to `*out_len` and its generation (1 or
///   more) to `*out_generation`; an empty store: OK with generation 0. A
///   state longer than `buf_len`: FIELDAUTH_STORE_BUFFER_TOO_SMALL with the
///   length in `*out_len`, nothing copied.
/// - `lease(ctx, holder, ttl_ms, out_held, out_until_ms)`: if nobody holds
///   a live lease, or `holder` does, give it to `holder` until now +
///   `ttl_ms`: `*out_held` = 1 and that end in `*out_until_ms`. Otherwise
///   change nothing: `*out_held` = 0 and the holder's end. A lease past its
///   end is nobody's.
/// - `save(ctx, holder, expected_generation, state, state_len, out_result,
///   out_generation)`: compare-and-set: unless `holder` holds a live lease,
///   FIELDAUTH_SAVED_NOT_HOLDER; else unless the stored generation is
///   `expected_generation` (0: empty), FIELDAUTH_SAVED_STALE with the stored
///   one; else store the state as `expected_generation + 1`:
///   FIELDAUTH_SAVED_STORED with it. The lease stays held.
/// - `release(ctx, holder)`: end the lease if `holder` holds it; otherwise
///   nothing.
/// - `charge(ctx, budget_id, requests, window_s, burst, out_wait_until_ms)`:
///   charge one request to the fleet's budget `budget_id` (a NUL-terminated
///   name, "token" or "api", at most 32 bytes): a GCRA cell of never more
///   than `requests` in any sliding window of `window_s` seconds with a
///   burst of `burst` (the C store's twin of the core's
///   `fieldauth::shared::charge_cell`: keep one 64-bit theoretical arrival
///   time per name). Granted: `*out_wait_until_ms` = 0. Otherwise nothing
///   is charged and `*out_wait_until_ms` is the earliest store time it
///   would be granted.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_store {
    /// Passed to every callback.
    pub ctx: *mut c_void,
    /// Copies the newest state out; see above.
    pub load: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            buf: *mut u8,
            buf_len: usize,
            out_len: *mut usize,
            out_generation: *mut u64,
        ) -> i32,
    >,
    /// Takes or renews the lease; see above.
    pub lease: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            holder: u64,
            ttl_ms: u32,
            out_held: *mut u32,
            out_until_ms: *mut u64,
        ) -> i32,
    >,
    /// Compare-and-set of the state; see above.
    pub save: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            holder: u64,
            expected_generation: u64,
            state: *const u8,
            state_len: usize,
            out_result: *mut u32,
            out_generation: *mut u64,
        ) -> i32,
    >,
    /// Ends the holder's lease; see above.
    pub release: Option<unsafe extern "C" fn(ctx: *mut c_void, holder: u64) -> i32>,
    /// Charges one request to a fleet budget; see above.
    pub charge: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            budget_id: *const c_char,
            requests: u32,
            window_s: u32,
            burst: u32,
            out_wait_until_ms: *mut u64,
        ) -> i32,
    >,
}

/// Worker turn (fieldauth_worker_token_turn()): this worker holds the lease
/// and its token budget was charged: run the token exchange now, then call
/// fieldauth_worker_exchanged().
pub const FIELDAUTH_TURN_LEAD: u32 = 1;
/// Worker turn: the store is not answering: run the token exchange on this
/// worker's own (its budget share was charged), then call
/// fieldauth_worker_exchanged().
pub const FIELDAUTH_TURN_SOLO: u32 = 2;
/// Worker turn: another worker is fetching and this session's token is
/// still valid: authorize API requests with it.
pub const FIELDAUTH_TURN_USE: u32 = 3;
/// Worker turn: a newer shared state was adopted: poll the session again.
pub const FIELDAUTH_TURN_POLL: u32 = 4;
/// Worker turn: nothing to do before `*out_until_ms` (the session's
/// monotonic clock): the lease holder's token is awaited or a budget is
/// spent.
pub const FIELDAUTH_TURN_WAIT: u32 = 5;

/// fieldauth_worker_charge(): the token endpoint's budget ("token").
pub const FIELDAUTH_BUDGET_TOKEN: u32 = 0;
/// fieldauth_worker_charge(): the API budget ("api").
pub const FIELDAUTH_BUDGET_API: u32 = 1;

/// fieldauth_worker_take_notice(): nothing new.
pub const FIELDAUTH_NOTICE_NONE: u32 = 0;
/// fieldauth_worker_take_notice(): the store failed; the worker keeps its
/// token and a 1/fleet_size share of the budgets until it answers.
pub const FIELDAUTH_NOTICE_STORE_DOWN: u32 = 1;
/// fieldauth_worker_take_notice(): the store answers again; the worker
/// rejoins the fleet.
pub const FIELDAUTH_NOTICE_STORE_BACK: u32 = 2;
/// fieldauth_worker_take_notice(): the store holds a state this session
/// cannot adopt (another configuration or storage size): are all workers
/// configured alike? The session keeps its own state.
pub const FIELDAUTH_NOTICE_FOREIGN_STATE: u32 = 3;

/// fieldauth_worker_sync() / _exchanged(): no state was adopted (the store
/// is empty, failed, or holds nothing newer to adopt).
pub const FIELDAUTH_ADOPTED_NONE: u32 = 0;

/// How long a worker whose store failed works alone before asking again.
pub const FIELDAUTH_STORE_RETRY_MS: u64 = 1_000;
/// A good lease time-to-live: longer than a token exchange with retries.
pub const FIELDAUTH_DEFAULT_LEASE_TTL_MS: u32 = 45_000;

// Literals for cbindgen; the core's values.
const _: () = assert!(FIELDAUTH_STORE_RETRY_MS == fieldauth_core::shared::STORE_RETRY_MS);
const _: () =
    assert!(FIELDAUTH_DEFAULT_LEASE_TTL_MS == fieldauth_core::shared::DEFAULT_LEASE_TTL_MS);

// ------------------------------------------------------------------ cell

#[repr(C)]
struct WorkerCell {
    magic: u64,
    worker: Worker,
}

impl Cell for WorkerCell {
    const MAGIC: u64 = 0x4641_574F_524B_0001; // "FAWORK" v1
    const STORAGE: usize = FIELDAUTH_WORKER_SIZE;
}

const _: () = assert!(fits::<WorkerCell, fieldauth_worker>());
const _: () = assert!(core::mem::size_of::<fieldauth_worker>() == FIELDAUTH_WORKER_SIZE);

// ------------------------------------------------------------------ the store adapter

/// Why a callback failed: only a too-small load buffer is told apart.
#[derive(Debug)]
struct CStoreError {
    needed: Option<usize>,
}

impl core::fmt::Display for CStoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the C store failed")
    }
}

impl StoreError for CStoreError {
    fn needed_len(&self) -> Option<usize> {
        self.needed
    }
}

const FAILED: CStoreError = CStoreError { needed: None };

/// The caller's callbacks (checked non-NULL) as a [`Store`].
struct CStore {
    ctx: *mut c_void,
    load: unsafe extern "C" fn(*mut c_void, *mut u8, usize, *mut usize, *mut u64) -> i32,
    lease: unsafe extern "C" fn(*mut c_void, u64, u32, *mut u32, *mut u64) -> i32,
    save: unsafe extern "C" fn(*mut c_void, u64, u64, *const u8, usize, *mut u32, *mut u64) -> i32,
    release: unsafe extern "C" fn(*mut c_void, u64) -> i32,
    charge: unsafe extern "C" fn(*mut c_void, *const c_char, u32, u32, u32, *mut u64) -> i32,
}

impl CStore {
    fn new(s: &fieldauth_store) -> R<Self> {
        match (s.load, s.lease, s.save, s.release, s.charge) {
            (Some(load), Some(lease), Some(save), Some(release), Some(charge)) => Ok(CStore {
                ctx: s.ctx,
                load,
                lease,
                save,
                release,
                charge,
            }),
            _ => Err(FIELDAUTH_ERR_NULL_POINTER),
        }
    }
}

impl Store for CStore {
    type Error = CStoreError;

    fn load(&mut self, buf: &mut [u8]) -> Result<Option<Loaded>, CStoreError> {
        let (mut len, mut generation) = (0usize, 0u64);
        // SAFETY: the callback's contract (fieldauth_store): `buf` is
        // writable for its length, the two outputs are valid locals.
        let rc = unsafe {
            (self.load)(
                self.ctx,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                &mut generation,
            )
        };
        match rc {
            FIELDAUTH_STORE_OK if generation == 0 => Ok(None),
            FIELDAUTH_STORE_OK if len <= buf.len() => Ok(Some(Loaded { generation, len })),
            FIELDAUTH_STORE_BUFFER_TOO_SMALL if len > buf.len() => {
                Err(CStoreError { needed: Some(len) })
            }
            _ => Err(FAILED),
        }
    }

    fn lease(&mut self, holder: u64, ttl_ms: u32) -> Result<Lease, CStoreError> {
        let (mut held, mut until_ms) = (0u32, 0u64);
        // SAFETY: the callback's contract; valid local outputs.
        let rc = unsafe { (self.lease)(self.ctx, holder, ttl_ms, &mut held, &mut until_ms) };
        match (rc, held) {
            (FIELDAUTH_STORE_OK, 0) => Ok(Lease::Busy { until_ms }),
            (FIELDAUTH_STORE_OK, _) => Ok(Lease::Held { until_ms }),
            _ => Err(FAILED),
        }
    }

    fn save(&mut self, holder: u64, expected: u64, state: &[u8]) -> Result<Saved, CStoreError> {
        let (mut result, mut generation) = (u32::MAX, 0u64);
        // SAFETY: the callback's contract: `state` is readable for its
        // length during the call; valid local outputs.
        let rc = unsafe {
            (self.save)(
                self.ctx,
                holder,
                expected,
                state.as_ptr(),
                state.len(),
                &mut result,
                &mut generation,
            )
        };
        match (rc, result) {
            (FIELDAUTH_STORE_OK, FIELDAUTH_SAVED_STORED) => Ok(Saved::Stored { generation }),
            (FIELDAUTH_STORE_OK, FIELDAUTH_SAVED_NOT_HOLDER) => Ok(Saved::NotHolder),
            (FIELDAUTH_STORE_OK, FIELDAUTH_SAVED_STALE) => Ok(Saved::Stale { generation }),
            _ => Err(FAILED),
        }
    }

    fn release(&mut self, holder: u64) -> Result<(), CStoreError> {
        // SAFETY: the callback's contract.
        match unsafe { (self.release)(self.ctx, holder) } {
            FIELDAUTH_STORE_OK => Ok(()),
            _ => Err(FAILED),
        }
    }

    fn charge(&mut self, budget_id: &str, budget: Budget) -> Result<Charge, CStoreError> {
        // The name, NUL-terminated ("token" and "api" are all the worker
        // passes; longer names are cut off at 32 bytes, the contract's limit).
        let mut id = [0u8; fieldauth_core::shared::MAX_BUDGET_ID_LEN + 1];
        for (d, s) in id.iter_mut().zip(budget_id.bytes().take(32)) {
            *d = s;
        }
        let mut until = 0u64;
        // SAFETY: the callback's contract; `id` is NUL-terminated (its last
        // byte is never written above), `until` a valid local.
        let rc = unsafe {
            (self.charge)(
                self.ctx,
                id.as_ptr().cast::<c_char>(),
                budget.requests,
                budget.window_s,
                budget.burst,
                &mut until,
            )
        };
        match (rc, until) {
            (FIELDAUTH_STORE_OK, 0) => Ok(Charge::Granted),
            (FIELDAUTH_STORE_OK, unix_ms) => Ok(Charge::WaitUntil { unix_ms }),
            _ => Err(FAILED),
        }
    }
}

// ------------------------------------------------------------------ functions

/// Size of the library's fieldauth_worker object: FIELDAUTH_WORKER_SIZE.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn fieldauth_worker_sizeof() -> usize {
    FIELDAUTH_WORKER_SIZE
}

/// One step of the GCRA a store's `charge` callback keeps per budget name,
/// the same the library's own stores use (the core's
/// `fieldauth::shared::charge_cell`): call it with the name's stored cell
/// `tat` (its theoretical arrival time; 0 for a name never charged) and the
/// store's clock `now_ms` (Unix ms, the same clock for every worker: the
/// store's own, not each worker's), under the store's lock, then store
/// `*out_tat` and answer with `*out_wait_until_ms`. Never more than
/// `requests` grants in any sliding window of `window_s` seconds, `burst` of
/// them (clamped to 1..=requests) back to back.
///
/// Granted: `*out_wait_until_ms` = 0 and `*out_tat` is the cell's new value.
/// Otherwise nothing is charged: `*out_tat` = `tat` and `*out_wait_until_ms`
/// is the earliest store time the charge would be granted. Thread-safe (no
/// state of its own).
///
/// Errors: INVALID_ARGUMENT (`requests` or `window_s` is 0, or the two
/// outputs overlap; the outputs are untouched); NULL_POINTER, MISALIGNED.
///
/// # Safety
/// `out_tat` and `out_wait_until_ms` are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_store_charge_cell(
    tat: u64,
    now_ms: u64,
    requests: u32,
    window_s: u32,
    burst: u32,
    out_tat: *mut u64,
    out_wait_until_ms: *mut u64,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        let new_tat = a.out(out_tat)?;
        let wait = a.out(out_wait_until_ms)?;
        if requests == 0 || window_s == 0 {
            return Err(FIELDAUTH_ERR_INVALID_ARGUMENT);
        }
        let budget = Budget {
            requests,
            window_s,
            burst,
        };
        let (answer, cell) = fieldauth_core::shared::charge_cell(tat, now_ms, budget);
        new_tat.put(cell);
        wait.put(match answer {
            Charge::Granted => 0,
            Charge::WaitUntil { unix_ms } => unix_ms,
        });
        Ok(())
    })())
}

/// Initializes `worker` for one session of a fleet: `holder` is its lease
/// holder id (random, chosen once per worker process or thread, not 0: two
/// workers with one id would both pass as the lease holder), `fleet_size`
/// the number of workers sharing the credential (each one's budget share
/// when the store fails; 0 counts as 1), `lease_ttl_ms` how long its lease
/// lasts unless released (FIELDAUTH_DEFAULT_LEASE_TTL_MS: a worker killed
/// mid-refresh blocks the others for at most that long). `solo_refresh`
/// (0 or 1): whether the worker may refresh on its own while the store is down (only
/// for refresh tokens that do not rotate: two workers spending one rotating
/// refresh token lose the grant); false keeps using the valid token and
/// waits for the store.
///
/// The worker's loop, the session's own calls in between:
/// 1. fieldauth_session_poll(); on FIELDAUTH_ACTION_SEND_TOKEN_REQUEST ask
///    fieldauth_worker_token_turn(): LEAD or SOLO: run the exchange
///    (fieldauth_session_exchange()), then fieldauth_worker_exchanged();
///    POLL: poll again; WAIT: wait; USE: go on;
/// 2. with a usable token, right before the API request goes out,
///    fieldauth_worker_charge(FIELDAUTH_BUDGET_API); a wait: wait, then
///    start over;
/// 3. fieldauth_session_authorize() and send the API request.
///
/// Errors: NULL_POINTER, MISALIGNED.
///
/// # Safety
/// `worker` is NULL or points to FIELDAUTH_WORKER_SIZE writable bytes not in
/// use by another thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_worker_init(
    worker: *mut fieldauth_worker,
    holder: u64,
    fleet_size: u32,
    lease_ttl_ms: u32,
    solo_refresh: u32,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        let cell = a.storage::<WorkerCell, _>(worker)?;
        let w = Worker::new(holder, fleet_size, lease_ttl_ms).with_solo_refresh(solo_refresh != 0);
        // SAFETY: checked non-NULL and aligned; FIELDAUTH_WORKER_SIZE bytes
        // (contract) hold a WorkerCell (compile-time check). The old
        // contents, if any, hold no resources to drop.
        unsafe {
            core::ptr::addr_of_mut!((*cell).worker).write(w);
            core::ptr::addr_of_mut!((*cell).magic).write(WorkerCell::MAGIC);
        }
        Ok(())
    })())
}

/// The checked arguments every worker call shares.
struct Parts<'a> {
    worker: &'a mut Worker,
    session: &'a mut SessionCell,
    store: CStore,
    /// The image buffer.
    buf: &'a mut [u8],
}

/// Checks the worker, the session (and its storage), the store and the
/// image buffer (`(NULL, 0)` for none).
///
/// # Safety
/// The contract of the calling function.
unsafe fn parts<'a>(
    a: &mut Args,
    worker: *mut fieldauth_worker,
    session: *mut fieldauth_session,
    store: *const fieldauth_store,
    buf: *mut u8,
    buf_len: usize,
) -> R<Parts<'a>> {
    // SAFETY: the caller's contract, checked by `Args`.
    let w = unsafe { a.live_mut::<WorkerCell, _>(worker) }?;
    // SAFETY: as above.
    let s = unsafe { a.live_mut::<SessionCell, _>(session) }?;
    a.region(s.storage, s.storage_len, true)?;
    // SAFETY: as above.
    let st = CStore::new(unsafe { a.input(store) }?)?;
    // SAFETY: as above.
    let b = unsafe { a.buf(buf, buf_len) }?;
    Ok(Parts {
        worker: &mut w.worker,
        session: s,
        store: st,
        buf: b,
    })
}

fn adopted_code(a: Option<Adopted>) -> u32 {
    match a {
        None => FIELDAUTH_ADOPTED_NONE,
        Some(Adopted::Newer) => FIELDAUTH_ADOPTED_NEWER,
        Some(Adopted::NotNewer) => FIELDAUTH_ADOPTED_NOT_NEWER,
        Some(_) => FIELDAUTH_ADOPTED_NOTHING_USABLE,
    }
}

/// Loads the newest shared state into `buf` and adopts it into `session` if
/// it is newer than the one the session holds (fieldauth_session_adopt()).
/// `*out_adopted`: FIELDAUTH_ADOPTED_NONE (the store is empty, failed or
/// resting after a failure, the session's own token request is in flight,
/// or the state is foreign: see fieldauth_worker_take_notice()), or an
/// FIELDAUTH_ADOPTED_* value. `buf` carries the image (at least
/// fieldauth_session_snapshot_len() bytes) and is wiped after use.
///
/// Errors: BUFFER_TOO_SMALL (the store's state is longer than `buf`);
/// NULL_POINTER (including a NULL callback), MISALIGNED, NOT_INITIALIZED,
/// INVALID_ARGUMENT (overlaps). A failing store is not an error.
///
/// # Safety
/// `worker` and `session` are initialized and used by no other thread;
/// `store` points to a valid fieldauth_store whose callbacks honour its
/// contract; `buf` is writable for `buf_len` bytes; `out_adopted` writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_worker_sync(
    worker: *mut fieldauth_worker,
    session: *mut fieldauth_session,
    store: *const fieldauth_store,
    now_ms: u64,
    unix_ms: u64,
    buf: *mut u8,
    buf_len: usize,
    out_adopted: *mut u32,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: the contract, checked by `Args`.
        let mut p = unsafe { parts(&mut a, worker, session, store, buf, buf_len) }?;
        let out = a.out(out_adopted)?;
        let r = p
            .worker
            .sync(&mut p.store, &mut p.session.inner, now_ms, unix_ms, p.buf)
            .map_err(status_of)?;
        out.put(adopted_code(r));
        Ok(())
    })())
}

/// What to do with the token request the session wants (after
/// fieldauth_session_poll() said FIELDAUTH_ACTION_SEND_TOKEN_REQUEST):
/// `*out_turn` is FIELDAUTH_TURN_LEAD (this worker took the lease and its
/// token budget was charged), _SOLO (the store is down: on its own, its
/// share charged), _USE (a peer is fetching; the session's token is still
/// valid), _POLL (a peer's newer state was adopted) or _WAIT with
/// `*out_until_ms` (session clock; 0 for the other turns). After LEAD or
/// SOLO, call fieldauth_worker_exchanged() once the exchange is over,
/// whatever its outcome (also after an exchange error), so that the lease
/// is released. `buf` as for fieldauth_worker_sync().
///
/// Errors: as fieldauth_worker_sync().
///
/// # Safety
/// As fieldauth_worker_sync(); `out_turn` and `out_until_ms` are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_worker_token_turn(
    worker: *mut fieldauth_worker,
    session: *mut fieldauth_session,
    store: *const fieldauth_store,
    now_ms: u64,
    unix_ms: u64,
    buf: *mut u8,
    buf_len: usize,
    out_turn: *mut u32,
    out_until_ms: *mut u64,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: the contract, checked by `Args`.
        let mut p = unsafe { parts(&mut a, worker, session, store, buf, buf_len) }?;
        let turn_out = a.out(out_turn)?;
        let until_out = a.out(out_until_ms)?;
        let turn = p
            .worker
            .token_turn(&mut p.store, &mut p.session.inner, now_ms, unix_ms, p.buf)
            .map_err(status_of)?;
        let (code, until) = match turn {
            Turn::Lead => (FIELDAUTH_TURN_LEAD, 0),
            Turn::Solo => (FIELDAUTH_TURN_SOLO, 0),
            Turn::Use => (FIELDAUTH_TURN_USE, 0),
            Turn::Poll => (FIELDAUTH_TURN_POLL, 0),
            Turn::WaitUntil(t) => (FIELDAUTH_TURN_WAIT, t),
        };
        turn_out.put(code);
        until_out.put(until);
        Ok(())
    })())
}

/// After the token exchange of a LEAD or SOLO turn is over: `token_issued`
/// is 1 if it ended in FIELDAUTH_EVENT_TOKEN_ISSUED, else 0. A lead worker's new
/// token is saved for the fleet (compare-and-set; the session records the
/// new generation) and its lease released. If the store fails at the save,
/// the worker keeps the lease (peers wait rather than refresh with the
/// refresh token this one replaced) and saves the token first thing at its
/// next store contact (sync, token turn or charge). After any other outcome (a
/// rejected refresh token among them: a peer may have rotated it) the
/// newest shared state is loaded and adopted if newer; the rejected refresh
/// token is never sent again either way. `*out_adopted` as for
/// fieldauth_worker_sync() (FIELDAUTH_ADOPTED_NONE after a new token).
///
/// Errors: as fieldauth_worker_sync(); BUFFER_TOO_SMALL (`buf` shorter than
/// fieldauth_session_snapshot_len(): nothing saved, the lease released);
/// WRONG_STATE if the session's exchange is still in progress (call after
/// it returned anything but FIELDAUTH_ERR_WOULD_BLOCK). After either error
/// the lease is released: ask fieldauth_worker_token_turn() again.
///
/// # Safety
/// As fieldauth_worker_sync().
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_worker_exchanged(
    worker: *mut fieldauth_worker,
    session: *mut fieldauth_session,
    store: *const fieldauth_store,
    now_ms: u64,
    unix_ms: u64,
    token_issued: u32,
    buf: *mut u8,
    buf_len: usize,
    out_adopted: *mut u32,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: the contract, checked by `Args`.
        let mut p = unsafe { parts(&mut a, worker, session, store, buf, buf_len) }?;
        let out = a.out(out_adopted)?;
        let issued = token_issued != 0;
        let r = p
            .worker
            .exchanged(
                &mut p.store,
                &mut p.session.inner,
                now_ms,
                unix_ms,
                issued,
                p.buf,
            )
            .map_err(status_of)?;
        out.put(adopted_code(r));
        Ok(())
    })())
}

/// Charges one request to the fleet's `budget` (FIELDAUTH_BUDGET_API before
/// each API request; the token budget is charged by
/// fieldauth_worker_token_turn()): `*out_until_ms` is 0 to send now, or the
/// session time not to send before (nothing was charged). A session without
/// that budget is never held back. The store is charged one request under
/// the limit (a request granted just inside a window can reach the server
/// after a later one); while it is down, the worker charges its 1/fleet_size
/// share itself. First, a token this worker fetched as the lead that the
/// store did not take (it failed at the save) is saved: `buf` carries its
/// image, as for fieldauth_worker_sync().
///
/// Errors: UNKNOWN_ENUM; BUFFER_TOO_SMALL; NULL_POINTER (including a NULL
/// callback), MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// As fieldauth_worker_sync(); `out_until_ms` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_worker_charge(
    worker: *mut fieldauth_worker,
    session: *mut fieldauth_session,
    store: *const fieldauth_store,
    budget: u32,
    now_ms: u64,
    unix_ms: u64,
    buf: *mut u8,
    buf_len: usize,
    out_until_ms: *mut u64,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: the contract, checked by `Args`.
        let mut p = unsafe { parts(&mut a, worker, session, store, buf, buf_len) }?;
        let out = a.out(out_until_ms)?;
        let kind = match budget {
            FIELDAUTH_BUDGET_TOKEN => BudgetKind::Token,
            FIELDAUTH_BUDGET_API => BudgetKind::Api,
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        };
        let r = p
            .worker
            .charge(
                &mut p.store,
                &mut p.session.inner,
                kind,
                now_ms,
                unix_ms,
                p.buf,
            )
            .map_err(status_of)?;
        out.put(r.unwrap_or(0));
        Ok(())
    })())
}

/// The last change worth a log line, once: FIELDAUTH_NOTICE_STORE_DOWN,
/// _STORE_BACK, _FOREIGN_STATE, or _NONE. Call after each worker call (or
/// now and then) and log what it says.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED.
///
/// # Safety
/// `worker` is initialized and used by no other thread; `out_notice` is
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_worker_take_notice(
    worker: *mut fieldauth_worker,
    out_notice: *mut u32,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: the contract, checked by `Args`.
        let w = unsafe { a.live_mut::<WorkerCell, _>(worker) }?;
        let out = a.out(out_notice)?;
        out.put(match w.worker.take_notice() {
            None => FIELDAUTH_NOTICE_NONE,
            Some(Notice::StoreDown) => FIELDAUTH_NOTICE_STORE_DOWN,
            Some(Notice::StoreBack) => FIELDAUTH_NOTICE_STORE_BACK,
            Some(_) => FIELDAUTH_NOTICE_FOREIGN_STATE,
        });
        Ok(())
    })())
}
