//! `fieldauth_session`: the token state machine.

use core::mem::MaybeUninit;
use fieldauth_core::apply::ApiCredential;
use fieldauth_core::body::ErrorCode;
use fieldauth_core::session::{
    Action, Adopted, ApiVerdict, Authorization, Config, Revocation, SessionIn, TokenBody, TokenId,
};
use fieldauth_core::{Error, ResponseError};
#[cfg(not(feature = "redirect"))]
use fieldauth_core::{Field, InputError};

use crate::cell::{Exchange, SessionCell, Storage};
use crate::event::{event, failure, request_kind};
use crate::head::HeadCell;
use crate::preset::{config_from_c, preset, profile_from_c};
use crate::ptr::{done, wipe_bytes, wipe_words, Args, Cell, Out, R};
use crate::status::*;
use crate::types::*;

/// A core error as a status, storing the needed size for `BufferTooSmall`.
pub(crate) fn fail_len(e: Error, out_len: Out<usize>) -> fieldauth_status {
    if let Error::BufferTooSmall { needed } = e {
        out_len.put(usize::try_from(needed).unwrap_or(usize::MAX));
    }
    status_of(e)
}

/// Stores a written length in `out_len`, or the status of the failure (with
/// the size needed for `BufferTooSmall`).
fn put_len(r: Result<usize, Error>, out_len: Out<usize>) -> R<()> {
    match r {
        Ok(n) => {
            out_len.put(n);
            Ok(())
        }
        Err(e) => Err(fail_len(e, out_len)),
    }
}

fn action(a: Action) -> fieldauth_action {
    let base = fieldauth_action {
        at_ms: 0,
        kind: 0,
        request_kind: FIELDAUTH_REQUEST_NONE,
        failure: FIELDAUTH_FAILURE_NONE,
        reserved: 0,
    };
    match a {
        Action::SendTokenRequest(k) => fieldauth_action {
            kind: FIELDAUTH_ACTION_SEND_TOKEN_REQUEST,
            request_kind: request_kind(k),
            ..base
        },
        Action::AwaitResponse => fieldauth_action {
            kind: FIELDAUTH_ACTION_AWAIT_RESPONSE,
            ..base
        },
        Action::Ready { next } => fieldauth_action {
            at_ms: next,
            kind: FIELDAUTH_ACTION_READY,
            ..base
        },
        Action::Wait { until } => fieldauth_action {
            at_ms: until,
            kind: FIELDAUTH_ACTION_WAIT,
            ..base
        },
        Action::NeedAuthorizationCode => fieldauth_action {
            kind: FIELDAUTH_ACTION_NEED_AUTHORIZATION_CODE,
            ..base
        },
        Action::Failed(f) => fieldauth_action {
            kind: FIELDAUTH_ACTION_FAILED,
            failure: failure(Some(f)),
            ..base
        },
    }
}

/// [`copy_texts`] for an out-parameter call: `*len` gets the bytes used,
/// or on BUFFER_TOO_SMALL the bytes needed.
pub(crate) fn copy_texts_out<const K: usize>(
    buf: &mut [u8],
    texts: [&str; K],
    len: Out<usize>,
) -> R<[fieldauth_str; K]> {
    match copy_texts(buf, texts) {
        Ok(t) => {
            len.put(
                texts
                    .iter()
                    .fold(0usize, |n, t| n.saturating_add(t.len()).saturating_add(1)),
            );
            Ok(t)
        }
        Err(e) => Err(fail_len(e, len)),
    }
}

/// Copies NUL-terminated texts one after another into `buf`; returns where
/// each went, or `BufferTooSmall` with the total size needed.
fn copy_texts<const K: usize>(
    buf: &mut [u8],
    texts: [&str; K],
) -> Result<[fieldauth_str; K], Error> {
    let needed = texts
        .iter()
        .fold(0usize, |n, t| n.saturating_add(t.len()).saturating_add(1));
    if buf.len() < needed {
        return Err(Error::buffer_too_small(needed));
    }
    let mut out = [fieldauth_str::EMPTY; K];
    let mut at = 0usize;
    for (o, t) in out.iter_mut().zip(texts) {
        let end = at.saturating_add(t.len());
        if let Some(d) = buf.get_mut(at..end) {
            // Element-wise: `copy_from_slice` has a length-mismatch panic path.
            for (x, y) in d.iter_mut().zip(t.bytes()) {
                *x = y;
            }
            *o = fieldauth_str {
                ptr: d.as_ptr(),
                len: t.len(),
            };
        }
        if let Some(z) = buf.get_mut(end) {
            *z = 0;
        }
        at = end.saturating_add(1);
    }
    Ok(out)
}

/// Runs `f` on an initialized session (mutably) with the argument checker;
/// the session's token storage is claimed too (no argument may overlap it).
///
/// # Safety
/// `session` is NULL or an initialized session's storage (at least
/// FIELDAUTH_SESSION_HEADER_SIZE bytes, its token storage alive) used by no
/// other thread during the call.
unsafe fn with_mut(
    session: *mut fieldauth_session,
    f: impl FnOnce(&mut Args, &mut SessionCell) -> R<()>,
) -> fieldauth_status {
    let mut a = Args::new();
    // SAFETY: forwarded contract.
    match unsafe { a.live_mut::<SessionCell, _>(session) } {
        Ok(cell) => done(
            a.region(cell.storage, cell.storage_len, true)
                .and_then(|()| f(&mut a, cell)),
        ),
        Err(s) => s,
    }
}

/// Runs `f` on an initialized session (shared).
///
/// # Safety
/// As [`with_mut`], except that the storage may be shared with readers.
unsafe fn with_ref(
    session: *const fieldauth_session,
    f: impl FnOnce(&mut Args, &SessionCell) -> R<()>,
) -> fieldauth_status {
    let mut a = Args::new();
    // SAFETY: forwarded contract.
    match unsafe { a.live::<SessionCell, _>(session) } {
        Ok(cell) => done(
            a.region(cell.storage, cell.storage_len, false)
                .and_then(|()| f(&mut a, cell)),
        ),
        Err(s) => s,
    }
}

// ------------------------------------------------------------------ lifecycle

/// Size of the library's fieldauth_session object: FIELDAUTH_SESSION_SIZE.
/// For bindings that allocate storage at run time (compare with the header's
/// constant). Thread-safe.
#[no_mangle]
pub extern "C" fn fieldauth_session_sizeof() -> usize {
    FIELDAUTH_SESSION_SIZE
}

/// Initializes `session` for `profile` with `config`, seeding the retry and
/// refresh jitter from `seed` (any random 64 bits; devices should differ).
/// The session keeps its tokens in the FIELDAUTH_SESSION_INLINE_STORAGE
/// bytes inside `session` (two token slots of about 1.4 KB; for larger
/// tokens see fieldauth_session_init_with_storage()). The storage is wiped
/// first (whatever it held, including an earlier session); on failure it
/// stays wiped and not initialized. The strings of `profile` and `config`
/// are copied: they need only live for this call.
///
/// Errors: NULL_POINTER, MISALIGNED, INVALID_UTF8, UNKNOWN_ENUM (an enum
/// field), INVALID_ARGUMENT (a number out of range, a boolean not 0/1, a
/// budget with window_s or burst 0 or burst > requests, overlapping
/// arguments), FIELDAUTH_ERR_INPUT_* (invalid or insecure base URL, a
/// credential the mode needs is missing, control characters, an empty
/// placement_name for HEADER/QUERY), CAPACITY_EXCEEDED (the strings leave
/// less than two 256-byte token slots in the 3072-byte storage).
///
/// # Safety
/// `session` points to FIELDAUTH_SESSION_SIZE writable bytes used by no
/// other thread; `profile` and `config` point to valid structs whose strings
/// are readable for their lengths.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_init(
    session: *mut fieldauth_session,
    profile: *const fieldauth_profile,
    config: *const fieldauth_config,
    seed: u64,
) -> fieldauth_status {
    // SAFETY: forwarded contract.
    unsafe { init_profile(session, None, profile, config, seed) }
}

/// Initializes `session` for preset `preset_id` (FIELDAUTH_PRESET_*) with
/// `config`: fieldauth_profile_preset() followed by fieldauth_session_init().
///
/// Errors: those of fieldauth_session_init(); UNKNOWN_ENUM for an unknown id.
///
/// # Safety
/// As fieldauth_session_init().
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_init_preset(
    session: *mut fieldauth_session,
    preset_id: u32,
    config: *const fieldauth_config,
    seed: u64,
) -> fieldauth_status {
    // SAFETY: forwarded contract.
    unsafe { init_preset(session, None, preset_id, config, seed) }
}

/// Like fieldauth_session_init(), but the session keeps its configuration
/// strings and tokens in `storage` (`storage_len` bytes), which the caller
/// sizes for the tokens its provider issues: fieldauth_session_storage_size()
/// computes it (per slot: the longest access token + refresh token + scope
/// the session must hold; a 4 KB JWT with a 1 KB refresh token needs slots
/// of about 5.4 KB). `session` then needs only FIELDAUTH_SESSION_HEADER_SIZE
/// bytes (a fieldauth_session_header cast to fieldauth_session *).
///
/// Ownership: `storage` is lent to the session from this call until
/// fieldauth_session_clear(): keep it alive and unmoved, and do not read or
/// write it meanwhile (it holds the secrets and tokens). It is wiped here
/// and by fieldauth_session_clear(); after clear it is the caller's again.
///
/// Errors: those of fieldauth_session_init(); CAPACITY_EXCEEDED if
/// `storage_len` is below what the configuration needs (strings plus two
/// 256-byte slots) or above FIELDAUTH_SESSION_MAX_STORAGE; NULL_POINTER for
/// a NULL `storage`; INVALID_ARGUMENT if `storage` overlaps `session` or an
/// input.
///
/// # Safety
/// `session` points to FIELDAUTH_SESSION_HEADER_SIZE writable bytes and
/// `storage` to `storage_len` writable bytes, both used by no other thread,
/// `storage` for as long as the session lives; `profile` and `config` as for
/// fieldauth_session_init().
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_init_with_storage(
    session: *mut fieldauth_session,
    storage: *mut u8,
    storage_len: usize,
    profile: *const fieldauth_profile,
    config: *const fieldauth_config,
    seed: u64,
) -> fieldauth_status {
    let store = Some((storage, storage_len));
    // SAFETY: forwarded contract.
    unsafe { init_profile(session, store, profile, config, seed) }
}

/// fieldauth_session_init_with_storage() for preset `preset_id`.
///
/// Errors: those of fieldauth_session_init_with_storage(); UNKNOWN_ENUM for
/// an unknown id.
///
/// # Safety
/// As fieldauth_session_init_with_storage().
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_init_preset_with_storage(
    session: *mut fieldauth_session,
    storage: *mut u8,
    storage_len: usize,
    preset_id: u32,
    config: *const fieldauth_config,
    seed: u64,
) -> fieldauth_status {
    let store = Some((storage, storage_len));
    // SAFETY: forwarded contract.
    unsafe { init_preset(session, store, preset_id, config, seed) }
}

/// The token storage a session for `profile` and `config` needs so that
/// each of its two token slots holds `slot_bytes` (the longest access token,
/// refresh token and scope it must keep, decoded; at least 256): what to
/// pass to fieldauth_session_init_with_storage() as `storage_len`.
/// Thread-safe.
///
/// Errors: NULL_POINTER, MISALIGNED, INVALID_UTF8, UNKNOWN_ENUM,
/// INVALID_ARGUMENT (as for fieldauth_session_init()); CAPACITY_EXCEEDED if
/// the result is above FIELDAUTH_SESSION_MAX_STORAGE (`*out_size` still
/// says how much it would be).
///
/// # Safety
/// `profile` and `config` point to valid structs whose strings are readable
/// for their lengths; `out_size` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_storage_size(
    profile: *const fieldauth_profile,
    config: *const fieldauth_config,
    slot_bytes: usize,
    out_size: *mut usize,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        let out = a.out(out_size)?;
        // SAFETY: forwarded contract.
        let p = unsafe { a.input(profile) }?;
        // SAFETY: forwarded contract.
        let c = unsafe { a.input(config) }?;
        let mut prof = fieldauth_core::preset::custom();
        // SAFETY: forwarded contract (strings of `p`).
        unsafe { profile_from_c(&mut a, p, &mut prof) }?;
        let p = &prof;
        let mut conf = Config::default();
        // SAFETY: forwarded contract (strings of `c`).
        unsafe { config_from_c(&mut a, c, &mut conf) }?;
        let n = SessionIn::<Storage>::storage_needed(p, &conf, slot_bytes);
        out.put(n);
        if n > FIELDAUTH_SESSION_MAX_STORAGE {
            return Err(FIELDAUTH_ERR_CAPACITY_EXCEEDED);
        }
        Ok(())
    })())
}

/// The init functions with a profile: the session and its storage, then the
/// inputs. (Separate from [`init_preset`] so that a program using presets
/// only does not link the profile conversion.)
///
/// # Safety
/// As the init functions.
unsafe fn init_profile(
    session: *mut fieldauth_session,
    store: Option<(*mut u8, usize)>,
    profile: *const fieldauth_profile,
    config: *const fieldauth_config,
    seed: u64,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: forwarded contract.
        let (cell, storage) = unsafe { claim_session(&mut a, session, store) }?;
        // SAFETY: forwarded contract.
        let raw = unsafe { a.input(config) }?;
        let mut c = Config::default();
        // SAFETY: forwarded contract (strings of `raw`).
        unsafe { config_from_c(&mut a, raw, &mut c) }?;
        // SAFETY: forwarded contract.
        let p = unsafe { a.input(profile) }?;
        let mut prof = fieldauth_core::preset::custom();
        // SAFETY: forwarded contract (strings of `p`).
        unsafe { profile_from_c(&mut a, p, &mut prof) }?;
        let p = &prof;
        init(cell, storage, p, &c, seed)
    })())
}

/// The init functions with a preset id.
///
/// # Safety
/// As the init functions.
unsafe fn init_preset(
    session: *mut fieldauth_session,
    store: Option<(*mut u8, usize)>,
    preset_id: u32,
    config: *const fieldauth_config,
    seed: u64,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: forwarded contract.
        let (cell, storage) = unsafe { claim_session(&mut a, session, store) }?;
        // SAFETY: forwarded contract.
        let raw = unsafe { a.input(config) }?;
        let mut c = Config::default();
        // SAFETY: forwarded contract (strings of `raw`).
        unsafe { config_from_c(&mut a, raw, &mut c) }?;
        init(cell, storage, preset(preset_id)?, &c, seed)
    })())
}

/// Claims the session's header and its token storage (inline after the
/// header, or the caller's), writable regions first (see `Args`).
///
/// # Safety
/// As the init functions.
unsafe fn claim_session(
    a: &mut Args,
    session: *mut fieldauth_session,
    store: Option<(*mut u8, usize)>,
) -> R<(*mut SessionCell, Storage)> {
    let cell = a.storage::<SessionCell, _>(session)?;
    let storage = match store {
        // SAFETY: forwarded contract (FIELDAUTH_SESSION_SIZE bytes at
        // `session`: the inline storage follows the header).
        None => unsafe {
            let p = cell.cast::<u8>().add(FIELDAUTH_SESSION_HEADER_SIZE);
            a.region(p, FIELDAUTH_SESSION_INLINE_STORAGE, true)?;
            Storage {
                ptr: p,
                len: FIELDAUTH_SESSION_INLINE_STORAGE,
            }
        },
        Some((ptr, len)) => {
            // SAFETY: forwarded contract.
            let b = unsafe { a.buf(ptr, len) }?;
            if b.is_empty() {
                return Err(FIELDAUTH_ERR_CAPACITY_EXCEEDED);
            }
            Storage {
                ptr: b.as_mut_ptr(),
                len: b.len(),
            }
        }
    };
    Ok((cell, storage))
}

/// A blank token body (a constant, so writing it copies from flash).
const BLANK_BODY: TokenBody = TokenBody::new();

/// Wipes the header, then builds the session in it over `storage` (which
/// `SessionIn::with_storage` wipes). The magic word is written last, so the
/// storage counts as initialized only on success.
fn init(
    cell: *mut SessionCell,
    storage: Storage,
    p: &fieldauth_core::preset::Profile<'_>,
    c: &fieldauth_core::session::Config<'_>,
    seed: u64,
) -> R<()> {
    // SAFETY: `cell` was checked (non-NULL, 8-aligned,
    // FIELDAUTH_SESSION_HEADER_SIZE bytes claimed for this call, disjoint
    // from the inputs).
    unsafe { wipe_words(cell.cast::<u64>(), FIELDAUTH_SESSION_HEADER_WORDS) };
    let (ptr, len) = (storage.ptr, storage.len);
    // Built in place (`with_storage_in`): by value, the session and its
    // `Result` went through the stack twice (QEMU peak 2.2 KB).
    // SAFETY: the header fits a SessionCell (compile-time check), is aligned
    // and wiped; the field pointers stay inside it. `MaybeUninit<T>` has
    // `T`'s layout, and writing through it drops nothing.
    let inner: &mut MaybeUninit<SessionIn<Storage>> =
        unsafe { &mut *core::ptr::addr_of_mut!((*cell).inner).cast() };
    SessionIn::with_storage_in(inner, storage, p, c, seed).map_err(status_of)?;
    // SAFETY: as above.
    unsafe {
        core::ptr::addr_of_mut!((*cell).storage).write(ptr);
        core::ptr::addr_of_mut!((*cell).storage_len).write(len);
        core::ptr::addr_of_mut!((*cell).xchg).write(Exchange::IDLE);
        // From a constant: copied from flash, not built on the stack first.
        core::ptr::addr_of_mut!((*cell).body).write(BLANK_BODY);
        core::ptr::addr_of_mut!((*cell).magic).write(SessionCell::MAGIC);
    }
    Ok(())
}

/// Wipes every secret and token: the session's token storage (inside it, or
/// the caller's from fieldauth_session_init_with_storage()) and its
/// FIELDAUTH_SESSION_HEADER_SIZE bytes of state are overwritten with zeros
/// (volatile writes the compiler cannot drop), and the session is no longer
/// initialized (later calls give NOT_INITIALIZED; init it again to reuse
/// it). Caller storage is the caller's again afterwards. Safe to call on
/// storage that is not initialized (its first FIELDAUTH_SESSION_HEADER_SIZE
/// bytes are wiped), and more than once.
///
/// Errors: NULL_POINTER, MISALIGNED.
///
/// # Safety
/// `session` points to at least FIELDAUTH_SESSION_HEADER_SIZE writable bytes
/// (an initialized session's storage, or any storage) used by no other
/// thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_clear(
    session: *mut fieldauth_session,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        let cell = a.storage::<SessionCell, _>(session)?;
        // SAFETY: `cell` was checked (non-NULL, aligned, header-sized); the
        // storage is initialized memory (the header's storage contract).
        let magic = unsafe { core::ptr::read_volatile(cell.cast::<u64>()) };
        if magic == SessionCell::MAGIC {
            // SAFETY: the magic says `init` wrote these fields; the token
            // storage is still lent to the session (ownership rules).
            let (ptr, len) = unsafe { ((*cell).storage, (*cell).storage_len) };
            a.region(ptr, len, true)?;
            // SAFETY: `len` bytes at `ptr`, 8-aligned inline storage or any
            // caller storage: wiped byte by byte through volatile writes.
            unsafe { wipe_bytes(ptr, len) };
        }
        // SAFETY: as above.
        unsafe { wipe_words(cell.cast::<u64>(), FIELDAUTH_SESSION_HEADER_WORDS) };
        Ok(())
    })())
}

// ------------------------------------------------------------------ poll

/// What to do next, at monotonic time `now_ms`. Call it whenever time passes
/// or a response completes, and do what `*out_action` says (see
/// FIELDAUTH_ACTION_*).
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread;
/// `out_action` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_poll(
    session: *mut fieldauth_session,
    now_ms: u64,
    out_action: *mut fieldauth_action,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        let out = a.out(out_action)?;
        out.put(action(s.inner.poll(now_ms)));
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

// ------------------------------------------------------------------ token requests

/// Writes the token request that poll asked for (FIELDAUTH_ACTION_SEND_TOKEN_REQUEST)
/// as complete HTTP/1.1 bytes into `buf`, stores its length in `*out_len`,
/// and marks it in flight (send it, then feed the response). Not
/// NUL-terminated.
///
/// Errors: WRONG_STATE if no request is due (poll first) or one is in
/// flight; BUFFER_TOO_SMALL with the size needed in `*out_len` (nothing is
/// marked in flight); FIELDAUTH_ERR_INPUT_*; NULL_POINTER, MISALIGNED,
/// NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `buf` is
/// writable for `buf_len` bytes; `out_len` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_write_token_request(
    session: *mut fieldauth_session,
    now_ms: u64,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let out = a.out(out_len)?;
        s.xchg = Exchange::IDLE;
        put_len(s.inner.write_token_request(now_ms, b), out)
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Writes the token request window by window, for a buffer smaller than the
/// request (128 bytes is enough): call with `offset` 0 (which checks that a
/// request is due and marks it in flight), send `*out_written` bytes, and
/// call again with `offset += *out_written` until `offset` reaches
/// `*out_total`. Every window is cut from the same request. Not
/// NUL-terminated.
///
/// Errors: WRONG_STATE if `offset` is 0 and no request is due, or `offset`
/// is not 0 and no request is in flight; INVALID_ARGUMENT if `buf_len` is 0
/// or `offset` is past the end; FIELDAUTH_ERR_INPUT_*; NULL_POINTER,
/// MISALIGNED, NOT_INITIALIZED.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `buf` is
/// writable for `buf_len` bytes; the out pointers are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_write_token_request_window(
    session: *mut fieldauth_session,
    now_ms: u64,
    offset: usize,
    buf: *mut u8,
    buf_len: usize,
    out_written: *mut usize,
    out_total: *mut usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let written = a.out(out_written)?;
        let total = a.out(out_total)?;
        if b.is_empty() {
            return Err(FIELDAUTH_ERR_INVALID_ARGUMENT);
        }
        s.xchg = Exchange::IDLE;
        let w = s
            .inner
            .write_token_request_window(now_ms, offset, b)
            .map_err(status_of)?;
        if offset > w.total {
            return Err(FIELDAUTH_ERR_INVALID_ARGUMENT);
        }
        written.put(w.written);
        total.put(w.total);
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

fn str_of(s: &str) -> fieldauth_str {
    fieldauth_str::of(s)
}

/// Like fieldauth_session_write_token_request(), but also returns the
/// request as parts for hosts whose HTTP client takes a method, target,
/// headers and body: every string in `*out_parts` points into `buf` (valid as
/// long as `buf` is unchanged). `*out_len` is the length of the raw request.
/// Send it to fieldauth_session_token_request_url().
///
/// Errors: as fieldauth_session_write_token_request().
///
/// # Safety
/// As fieldauth_session_write_token_request(); `out_parts` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_write_token_request_parts(
    session: *mut fieldauth_session,
    now_ms: u64,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    out_parts: *mut fieldauth_request_parts,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let len = a.out(out_len)?;
        let parts_out = a.out(out_parts)?;
        s.xchg = Exchange::IDLE;
        let p = match s.inner.write_token_request_parts(now_ms, b) {
            Ok(p) => p,
            Err(e) => return Err(fail_len(e, len)),
        };
        len.put(p.raw.len());
        // Filled in place, field by field: built on the stack and copied,
        // the 240-byte struct and its header table took two frames' worth
        // of stack (issue #13).
        let out = parts_out.as_ptr();
        if p.header_count > FIELDAUTH_MAX_HEADERS {
            // Not reached: the core writes at most MAX_HEADERS.
            return Err(FIELDAUTH_ERR_CAPACITY_EXCEEDED);
        }
        let mut used = p.headers();
        // SAFETY: `out` was checked by `Args::out` (non-NULL, aligned,
        // disjoint from the other arguments) and the caller promised it is
        // writable for a fieldauth_request_parts; `addr_of_mut!` and `write`
        // create no reference to the (maybe uninitialized) struct, every
        // field is written, and `i` stays below FIELDAUTH_MAX_HEADERS.
        unsafe {
            core::ptr::addr_of_mut!((*out).method).write(str_of(p.method));
            core::ptr::addr_of_mut!((*out).target).write(str_of(p.target));
            let headers = core::ptr::addr_of_mut!((*out).headers).cast::<fieldauth_header>();
            for i in 0..FIELDAUTH_MAX_HEADERS {
                headers.add(i).write(match used.next() {
                    Some((n, v)) => fieldauth_header {
                        name: str_of(n),
                        value: str_of(v),
                    },
                    None => fieldauth_header {
                        name: fieldauth_str::EMPTY,
                        value: fieldauth_str::EMPTY,
                    },
                });
            }
            core::ptr::addr_of_mut!((*out).header_count).write(p.header_count);
            core::ptr::addr_of_mut!((*out).body).write(fieldauth_str {
                ptr: p.body.as_ptr(),
                len: p.body.len(),
            });
            core::ptr::addr_of_mut!((*out).raw).write(fieldauth_str {
                ptr: p.raw.as_ptr(),
                len: p.raw.len(),
            });
        }
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Writes the absolute URL the current or next token request goes to (for
/// hosts that use fieldauth_session_write_token_request_parts()). Not
/// NUL-terminated.
///
/// Errors: BUFFER_TOO_SMALL with the size needed in `*out_len`;
/// NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session not written by another thread; `buf`
/// is writable for `buf_len` bytes; `out_len` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_token_request_url(
    session: *const fieldauth_session,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let out = a.out(out_len)?;
        put_len(s.inner.token_request_url(b), out)
    };
    // SAFETY: forwarded contract.
    unsafe { with_ref(session, f) }
}

// ------------------------------------------------------------------ token responses

/// The response head of the token request in flight is complete in `head`
/// (parsed with fieldauth_head_feed()); `head` is only read during the call.
/// Then feed the body with fieldauth_session_feed_token_body().
///
/// Errors: WRONG_STATE if no token request waits for its head or `head` is
/// not complete; NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session and `head` an initialized
/// fieldauth_head, neither used by another thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_feed_token_head(
    session: *mut fieldauth_session,
    now_ms: u64,
    head: *const fieldauth_head,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let h = unsafe { a.live::<HeadCell, _>(head) }?;
        let h = *h.complete()?;
        s.xchg = Exchange::IDLE;
        s.inner
            .on_token_head(now_ms, &h, &mut s.body)
            .map_err(status_of)
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Feeds a piece of the token response body (after the head). `*out_consumed`
/// is how many bytes belonged to the body (the rest is the next response on a
/// kept-alive connection). When the body is complete the session acts on it
/// and `*out_event` says what happened; until then its kind is
/// FIELDAUTH_EVENT_NONE. `chunk` may be (NULL, 0) (an empty body completes
/// that way).
///
/// Errors: WRONG_STATE outside a body; FIELDAUTH_ERR_HTTP_CHUNK,
/// FIELDAUTH_ERR_JSON_*, FIELDAUTH_ERR_RESPONSE_* and CAPACITY_EXCEEDED for a
/// bad body — the exchange then counts as failed (a retry is scheduled; a
/// valid token stays valid); NULL_POINTER, MISALIGNED, NOT_INITIALIZED,
/// INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `chunk` is
/// readable for `chunk_len` bytes; the out pointers are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_feed_token_body(
    session: *mut fieldauth_session,
    now_ms: u64,
    chunk: *const u8,
    chunk_len: usize,
    out_consumed: *mut usize,
    out_event: *mut fieldauth_event,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let data = unsafe { a.bytes(chunk, chunk_len) }?;
        let consumed = a.out(out_consumed)?;
        let ev = a.out(out_event)?;
        s.xchg = Exchange::IDLE;
        let p = s
            .inner
            .on_token_body(now_ms, &mut s.body, data)
            .map_err(status_of)?;
        consumed.put(p.consumed);
        ev.put(event(p.event));
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// The connection closed while a token response was expected: completes a
/// close-delimited body (`*out_event` says what the session made of it);
/// anything else in flight counts as a failed exchange (FIELDAUTH_ERR_TRANSPORT,
/// a retry is scheduled).
///
/// Errors: WRONG_STATE if no token request is in flight; TRANSPORT; the body
/// errors of fieldauth_session_feed_token_body(); NULL_POINTER, MISALIGNED,
/// NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `out_event`
/// is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_feed_token_eof(
    session: *mut fieldauth_session,
    now_ms: u64,
    out_event: *mut fieldauth_event,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        let ev = a.out(out_event)?;
        s.xchg = Exchange::IDLE;
        let e = s
            .inner
            .on_token_eof(now_ms, &mut s.body)
            .map_err(status_of)?;
        ev.put(event(Some(e)));
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// The token request failed at the transport (connect, TLS, write, read,
/// your own timeout): the session schedules a retry (`*out_event` is
/// FIELDAUTH_EVENT_RETRYING with the time); a valid token stays valid.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `out_event`
/// is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_report_transport_error(
    session: *mut fieldauth_session,
    now_ms: u64,
    out_event: *mut fieldauth_event,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        let ev = a.out(out_event)?;
        s.xchg = Exchange::IDLE;
        ev.put(event(Some(s.inner.on_transport_error(now_ms))));
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

// ------------------------------------------------------------------ API requests

/// Writes what a credential adds to a request: a header line, or the target
/// with a query parameter. Returns (length, form, header-name length).
fn write_credential(
    c: &ApiCredential<'_>,
    target: &str,
    buf: &mut [u8],
) -> Result<(usize, u32, usize), Error> {
    match c.header_name() {
        Some(name) => Ok((
            c.write_header_line(buf)?,
            FIELDAUTH_CREDENTIAL_HEADER,
            name.len(),
        )),
        None => Ok((c.write_target(target, buf)?, FIELDAUTH_CREDENTIAL_QUERY, 0)),
    }
}

/// Permission and credential for one API request at `now_ms` (counted
/// against the client-side API budget when granted).
///
/// `*out_authorization` says: SEND — `buf` holds, per `credential`, either a
/// header line `Name: value\r\n` to add to the request
/// (FIELDAUTH_CREDENTIAL_HEADER; the request goes to `target` unchanged) or
/// the request target with the credential appended as a query parameter
/// (FIELDAUTH_CREDENTIAL_QUERY; send the request to that target), and
/// `*out_len` is its length (not NUL-terminated; it contains the secret:
/// wipe it after use); WAIT — a rate limit applies until `until_ms`
/// (`*out_len` is 0); NO_CREDENTIAL — poll the session (`*out_len` is 0).
/// `target` is the origin-form target of the API request
/// (`/path?query`), or an absolute URL; it is only used for query
/// credentials, and may be (NULL, 0) for header credentials.
///
/// Errors: BUFFER_TOO_SMALL with the size needed in `*out_len` (nothing is
/// counted against the budget); FIELDAUTH_ERR_INPUT_* for a bad target;
/// INVALID_UTF8; NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `target` is
/// readable for `target_len` bytes; `buf` is writable for `buf_len` bytes;
/// the out pointers are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_authorize(
    session: *mut fieldauth_session,
    now_ms: u64,
    target: *const u8,
    target_len: usize,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    out_authorization: *mut fieldauth_authorization,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let t = unsafe { a.text(target, target_len) }?;
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let len = a.out(out_len)?;
        let auth = a.out(out_authorization)?;
        // Size and validate first, without counting a request, so a short
        // buffer or a bad target costs no budget.
        if let Some(c) = s.inner.credential() {
            if let Err(e) = write_credential(&c, t, b) {
                return Err(fail_len(e, len));
            }
        }
        let base = fieldauth_authorization {
            until_ms: 0,
            kind: 0,
            credential: 0,
            header_name_len: 0,
            token_id: 0,
            reserved: 0,
        };
        let token_id = s.inner.token_id().get();
        let (n, result) = match s.inner.authorize(now_ms) {
            Authorization::Send(c) => match write_credential(&c, t, b) {
                Ok((n, form, name_len)) => (
                    n,
                    fieldauth_authorization {
                        kind: FIELDAUTH_AUTHORIZATION_SEND,
                        credential: form,
                        header_name_len: name_len,
                        token_id,
                        ..base
                    },
                ),
                Err(e) => return Err(fail_len(e, len)),
            },
            Authorization::Wait { until } => (
                0,
                fieldauth_authorization {
                    until_ms: until,
                    kind: FIELDAUTH_AUTHORIZATION_WAIT,
                    ..base
                },
            ),
            Authorization::NoCredential => (
                0,
                fieldauth_authorization {
                    kind: FIELDAUTH_AUTHORIZATION_NO_CREDENTIAL,
                    ..base
                },
            ),
        };
        if n == 0 {
            // The sizing pass may have written the secret: wipe it.
            zeroize::Zeroize::zeroize(b);
        }
        len.put(n);
        auth.put(result);
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Reports the response to an API request: its complete head (`head`, only
/// read during the call) and, optionally, the first bytes of its body (used
/// only to recognise a provider's "expired token" phrase; (NULL, 0) is fine).
/// The session learns rate limits and token rejection; `*out_verdict` says
/// whether to retry (FIELDAUTH_VERDICT_*). A rejection is taken to be of the
/// current token: with several requests in flight, prefer
/// fieldauth_session_report_api_response_for().
///
/// Errors: WRONG_STATE if `head` is not complete; NULL_POINTER, MISALIGNED,
/// NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session and `head` an initialized
/// fieldauth_head, neither used by another thread; `body_prefix` is readable
/// for `body_prefix_len` bytes; `out_verdict` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_report_api_response(
    session: *mut fieldauth_session,
    now_ms: u64,
    head: *const fieldauth_head,
    body_prefix: *const u8,
    body_prefix_len: usize,
    out_verdict: *mut fieldauth_verdict,
) -> fieldauth_status {
    // SAFETY: forwarded contract.
    unsafe {
        report_api(
            session,
            now_ms,
            head,
            body_prefix,
            body_prefix_len,
            None,
            out_verdict,
        )
    }
}

/// Like fieldauth_session_report_api_response(), for a request sent with
/// the token `token_id` (the `token_id` of the fieldauth_authorization it was
/// sent with). A rejection (401, the provider's expired-token phrase) of a
/// token that is no longer the current one drops nothing: the verdict is
/// RETRY_WITH_NEW_TOKEN (send it again with the current token), and it does
/// not use up the current token's one retry.
///
/// Errors and safety: as fieldauth_session_report_api_response().
///
/// # Safety
/// As fieldauth_session_report_api_response().
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_report_api_response_for(
    session: *mut fieldauth_session,
    now_ms: u64,
    head: *const fieldauth_head,
    body_prefix: *const u8,
    body_prefix_len: usize,
    token_id: u32,
    out_verdict: *mut fieldauth_verdict,
) -> fieldauth_status {
    // SAFETY: forwarded contract.
    unsafe {
        report_api(
            session,
            now_ms,
            head,
            body_prefix,
            body_prefix_len,
            Some(token_id),
            out_verdict,
        )
    }
}

/// The two API-response reports.
///
/// # Safety
/// As fieldauth_session_report_api_response().
unsafe fn report_api(
    session: *mut fieldauth_session,
    now_ms: u64,
    head: *const fieldauth_head,
    body_prefix: *const u8,
    body_prefix_len: usize,
    token_id: Option<u32>,
    out_verdict: *mut fieldauth_verdict,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let h = unsafe { a.live::<HeadCell, _>(head) }?;
        let h = *h.complete()?;
        // SAFETY: forwarded contract.
        let prefix = unsafe { a.bytes(body_prefix, body_prefix_len) }?;
        let out = a.out(out_verdict)?;
        let verdict = match token_id {
            Some(id) => s
                .inner
                .on_api_response_for(now_ms, &h, prefix, TokenId::from_u32(id)),
            None => s.inner.on_api_response(now_ms, &h, prefix),
        };
        let (kind, until_ms) = match verdict {
            ApiVerdict::Ok => (FIELDAUTH_VERDICT_OK, 0),
            ApiVerdict::RetryWithNewToken => (FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN, 0),
            ApiVerdict::Unauthorized => (FIELDAUTH_VERDICT_UNAUTHORIZED, 0),
            ApiVerdict::InvalidKey => (FIELDAUTH_VERDICT_INVALID_KEY, 0),
            ApiVerdict::Forbidden => (FIELDAUTH_VERDICT_FORBIDDEN, 0),
            ApiVerdict::RateLimited { until } => (FIELDAUTH_VERDICT_RATE_LIMITED, until),
        };
        out.put(fieldauth_verdict {
            until_ms,
            kind,
            reserved: 0,
        });
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

// ------------------------------------------------------------------ persistence

/// The size of this session's snapshot image (fixed for a given
/// configuration).
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session not written by another thread;
/// `out_len` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_snapshot_len(
    session: *const fieldauth_session,
    out_len: *mut usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &SessionCell| -> R<()> {
        a.out(out_len)?.put(s.inner.snapshot_len());
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_ref(session, f) }
}

/// Writes a versioned, checksummed image of the token and rate-limit state
/// into `buf` (at least fieldauth_session_snapshot_len() bytes), so a reboot
/// does not cost a token request; `unix_ms` is the wall clock at monotonic
/// `now_ms`. The image contains the tokens: store it where the device keeps
/// secrets.
///
/// Errors: BUFFER_TOO_SMALL with the size needed in `*out_len`; WRONG_STATE
/// while a token request is in flight; NULL_POINTER, MISALIGNED,
/// NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session not written by another thread; `buf`
/// is writable for `buf_len` bytes; `out_len` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_snapshot(
    session: *const fieldauth_session,
    now_ms: u64,
    unix_ms: u64,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let out = a.out(out_len)?;
        put_len(s.inner.snapshot(now_ms, unix_ms, b), out)
    };
    // SAFETY: forwarded contract.
    unsafe { with_ref(session, f) }
}

/// Restores the state from an image written by fieldauth_session_snapshot()
/// of a session with the same configuration; `unix_ms` is the wall clock at
/// monotonic `now_ms`. On error the session is left as it was.
///
/// Errors: FIELDAUTH_ERR_SNAPSHOT_* (length, corrupt, version, foreign,
/// expired); WRONG_STATE while a token request is in flight; NULL_POINTER,
/// MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `image` is
/// readable for `image_len` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_restore(
    session: *mut fieldauth_session,
    now_ms: u64,
    unix_ms: u64,
    image: *const u8,
    image_len: usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let img = unsafe { a.bytes(image, image_len) }?;
        s.inner.restore(now_ms, unix_ms, img).map_err(status_of)
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

// ------------------------------------------------------------------ shared state

/// The generation of the shared state this session holds (issue #21: a
/// fleet of workers sharing one credential through a store): the number the
/// store gave the image the session adopted (fieldauth_session_adopt()) or
/// saved last (fieldauth_session_set_shared_generation()); 0 for none.
/// Snapshots carry it and restore brings it back. Pass it to the store as the
/// generation a save builds on (compare-and-set).
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session not written by another thread;
/// `out_generation` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_shared_generation(
    session: *const fieldauth_session,
    out_generation: *mut u64,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &SessionCell| -> R<()> {
        a.out(out_generation)?.put(s.inner.shared_generation());
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_ref(session, f) }
}

/// Records that a store saved this session's snapshot as `generation`.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED.
///
/// # Safety
/// `session` is an initialized session used by no other thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_set_shared_generation(
    session: *mut fieldauth_session,
    generation: u64,
) -> fieldauth_status {
    let f = |_: &mut Args, s: &mut SessionCell| -> R<()> {
        s.inner.set_shared_generation(generation);
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Adopts a shared state: `image` is a snapshot another session with the
/// same configuration wrote (fieldauth_session_snapshot()), as the store
/// returned it with its `generation`. Only a generation newer than
/// fieldauth_session_shared_generation() is taken, as
/// fieldauth_session_restore() takes an image; the session keeps its random
/// stream and configuration. `*out_adopted` is FIELDAUTH_ADOPTED_NEWER,
/// _NOT_NEWER (nothing changed) or _NOTHING_USABLE (its tokens expired: the
/// generation is recorded, the session keeps its own state). Call it after
/// loading the store, before deciding to fetch or refresh, and after a
/// rejected refresh (a peer may have rotated the refresh token).
///
/// Errors (the session left as it was): FIELDAUTH_ERR_SNAPSHOT_LENGTH,
/// _CORRUPT, _VERSION, _FOREIGN; WRONG_STATE while this session's own token
/// request is in flight (adopt after it completes); NULL_POINTER,
/// MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `image` is
/// readable for `image_len` bytes; `out_adopted` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_adopt(
    session: *mut fieldauth_session,
    now_ms: u64,
    unix_ms: u64,
    image: *const u8,
    image_len: usize,
    generation: u64,
    out_adopted: *mut u32,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        let out = a.out(out_adopted)?;
        // SAFETY: forwarded contract.
        let img = unsafe { a.bytes(image, image_len) }?;
        let r = s
            .inner
            .adopt(now_ms, unix_ms, img, generation)
            .map_err(status_of)?;
        out.put(match r {
            Adopted::Newer => FIELDAUTH_ADOPTED_NEWER,
            Adopted::NotNewer => FIELDAUTH_ADOPTED_NOT_NEWER,
            _ => FIELDAUTH_ADOPTED_NOTHING_USABLE,
        });
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

// ------------------------------------------------------------------ flows

/// Device flow (after FIELDAUTH_EVENT_USER_CODE): copies what the user needs
/// to see into `buf` — user code, verification URI and the complete URI
/// (empty if the server sent none), each NUL-terminated — and points the
/// strings of `*out_display` at them. `*out_len` is the number of bytes used.
///
/// Errors: WRONG_STATE if no device code is active; BUFFER_TOO_SMALL with the
/// size needed in `*out_len`; NULL_POINTER, MISALIGNED, NOT_INITIALIZED,
/// INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session not written by another thread; `buf`
/// is writable for `buf_len` bytes; the out pointers are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_device_display(
    session: *const fieldauth_session,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    out_display: *mut fieldauth_device_display,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let len = a.out(out_len)?;
        let out = a.out(out_display)?;
        let d = s.inner.device_display().ok_or(FIELDAUTH_ERR_WRONG_STATE)?;
        let texts = [
            d.user_code,
            d.verification_uri,
            d.verification_uri_complete.unwrap_or(""),
        ];
        let [user_code, verification_uri, verification_uri_complete] =
            copy_texts_out(b, texts, len)?;
        out.put(fieldauth_device_display {
            expires_at_ms: d.expires_at,
            user_code,
            verification_uri,
            verification_uri_complete,
        });
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_ref(session, f) }
}

/// Authorization-code mode: writes the URL to open in a browser into `buf`
/// (not NUL-terminated), with a `state` made from `state_random` (16–48
/// random bytes) and a PKCE S256 verifier made from `verifier_random` (32–96
/// random bytes); the session keeps both for
/// fieldauth_session_set_authorization_code().
///
/// Errors: WRONG_STATE outside authorization-code mode or while a request is
/// in flight; FIELDAUTH_ERR_INPUT_TOO_SHORT / _TOO_LONG for the random
/// inputs; BUFFER_TOO_SMALL with the size needed in `*out_len`;
/// NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; the random
/// inputs are readable for their lengths; `buf` is writable for `buf_len`
/// bytes; `out_len` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_authorization_url(
    session: *mut fieldauth_session,
    verifier_random: *const u8,
    verifier_random_len: usize,
    state_random: *const u8,
    state_random_len: usize,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let v = unsafe { a.bytes(verifier_random, verifier_random_len) }?;
        // SAFETY: forwarded contract.
        let st = unsafe { a.bytes(state_random, state_random_len) }?;
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let out = a.out(out_len)?;
        put_len(s.inner.authorization_url(v, st, b), out)
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Authorization-code mode: the redirect back from the authorization server,
/// as the URL the browser was sent to, or its query (UTF-8, not
/// NUL-terminated). Reads `code`, `state`, `iss` and `error`, checks `state`
/// against the one fieldauth_session_authorization_url() created (constant
/// time) and, when `issuer` is given (`issuer_len` > 0: the server
/// advertises RFC 9207 `authorization_response_iss_parameter_supported`;
/// pass its issuer identifier), that `iss` is present and equal. Then keeps
/// the code: the code exchange is the next token request.
///
/// `out_denied` (may be NULL) receives FIELDAUTH_FAILURE_ACCESS_DENIED,
/// _INVALID_SCOPE, _UNAUTHORIZED_CLIENT or _REJECTED (any other code) when
/// the server sent `error=` (status RESPONSE_AUTHORIZATION_DENIED), else
/// FIELDAUTH_FAILURE_NONE. The `error_description` is in the query.
///
/// Errors (the session keeps its login: a genuine redirect may still follow
/// a forged one): WRONG_STATE outside code mode, before
/// fieldauth_session_authorization_url(), while an exchange runs or a code
/// already waits; INPUT_MISMATCH (state or iss differ), INPUT_MISSING (no
/// code, no state, or no iss when `issuer` is given), INPUT_DUPLICATE,
/// INPUT_INVALID_CHARACTER (bad escape or UTF-8), INPUT_CONTROL_CHARACTER,
/// INPUT_EMPTY (empty code); RESPONSE_AUTHORIZATION_DENIED; CAPACITY_EXCEEDED
/// when the decoded values do not fit a token slot; INVALID_UTF8;
/// NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
/// INPUT_UNSUPPORTED for every redirect when the library is built without
/// the redirect parser (cargo feature `redirect`, default on; a device build
/// `--no-default-features` leaves it out): pass code and state to
/// fieldauth_session_set_authorization_code() instead.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `url` and
/// `issuer` are readable for their lengths; `out_denied` is NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_on_authorization_callback(
    session: *mut fieldauth_session,
    url: *const u8,
    url_len: usize,
    issuer: *const u8,
    issuer_len: usize,
    out_denied: *mut u32,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let u = unsafe { a.text(url, url_len) }?;
        // SAFETY: forwarded contract.
        let i = unsafe { a.text(issuer, issuer_len) }?;
        let denied = if out_denied.is_null() {
            None
        } else {
            Some(a.out(out_denied)?)
        };
        #[cfg(feature = "redirect")]
        let r = s
            .inner
            .on_authorization_callback(u, (!i.is_empty()).then_some(i));
        // Built without the redirect parser: refused (INPUT_UNSUPPORTED).
        #[cfg(not(feature = "redirect"))]
        let r = {
            let _ = (s, u, i);
            Err(Error::input(Field::Callback, InputError::Unsupported))
        };
        if let Some(d) = denied {
            d.put(match r {
                Err(Error::Response(ResponseError::AuthorizationDenied(code))) => match code {
                    ErrorCode::AccessDenied => FIELDAUTH_FAILURE_ACCESS_DENIED,
                    ErrorCode::InvalidScope => FIELDAUTH_FAILURE_INVALID_SCOPE,
                    ErrorCode::UnauthorizedClient => FIELDAUTH_FAILURE_UNAUTHORIZED_CLIENT,
                    _ => FIELDAUTH_FAILURE_REJECTED,
                },
                _ => FIELDAUTH_FAILURE_NONE,
            });
        }
        r.map_err(status_of)
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Authorization-code mode: the `code` and `state` the redirect brought
/// (UTF-8). `state` must match the one fieldauth_session_authorization_url()
/// created (compared in constant time). The code exchange is the next token
/// request.
///
/// Errors: WRONG_STATE without a pending authorization URL;
/// FIELDAUTH_ERR_INPUT_INVALID_CHARACTER for a state mismatch or a bad code;
/// CAPACITY_EXCEEDED for an oversized code; INVALID_UTF8; NULL_POINTER,
/// MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session used by no other thread; `code` and
/// `state` are readable for their lengths.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_set_authorization_code(
    session: *mut fieldauth_session,
    code: *const u8,
    code_len: usize,
    state: *const u8,
    state_len: usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &mut SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let c = unsafe { a.text(code, code_len) }?;
        // SAFETY: forwarded contract.
        let st = unsafe { a.text(state, state_len) }?;
        s.inner.set_authorization_code(c, st).map_err(status_of)
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

// ------------------------------------------------------------------ misc

/// Records the wall clock: `unix_ms` is the Unix time in milliseconds at
/// monotonic `now_ms` (used for epoch-based rate-limit resets when a response
/// has no Date).
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED.
///
/// # Safety
/// `session` is an initialized session used by no other thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_set_wall_clock(
    session: *mut fieldauth_session,
    now_ms: u64,
    unix_ms: u64,
) -> fieldauth_status {
    let f = |_: &mut Args, s: &mut SessionCell| -> R<()> {
        s.inner.set_wall_clock(now_ms, unix_ms);
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Mixes new randomness into the session's jitter generator.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED.
///
/// # Safety
/// `session` is an initialized session used by no other thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_reseed(
    session: *mut fieldauth_session,
    seed: u64,
) -> fieldauth_status {
    let f = |_: &mut Args, s: &mut SessionCell| -> R<()> {
        s.inner.reseed(seed);
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Asks the session to revoke its tokens (the next token request, of kind
/// FIELDAUTH_REQUEST_REVOKE); afterwards it reports
/// FIELDAUTH_FAILURE_REVOKED until fieldauth_session_restart(). Without a
/// revocation endpoint the tokens are just wiped.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED.
///
/// # Safety
/// `session` is an initialized session used by no other thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_revoke(
    session: *mut fieldauth_session,
) -> fieldauth_status {
    let f = |_: &mut Args, s: &mut SessionCell| -> R<()> {
        s.inner.revoke();
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Asks the session to revoke `which` tokens (FIELDAUTH_REVOCATION_*): the next
/// token requests are the revocations (kind FIELDAUTH_REQUEST_REVOKE, one
/// per token), each token forgotten once its request is answered.
/// FIELDAUTH_REVOCATION_GRANT is fieldauth_session_revoke();
/// FIELDAUTH_REVOCATION_ACCESS revokes the access token only and the session
/// goes on (its refresh token, or the primary grant, gets a new one);
/// FIELDAUTH_REVOCATION_BOTH revokes the refresh token, then the access token,
/// and the session then reports FIELDAUTH_FAILURE_REVOKED.
///
/// Errors: UNKNOWN_ENUM for another `which`; NULL_POINTER, MISALIGNED,
/// NOT_INITIALIZED.
///
/// # Safety
/// `session` is an initialized session used by no other thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_revoke_tokens(
    session: *mut fieldauth_session,
    which: u32,
) -> fieldauth_status {
    let f = |_: &mut Args, s: &mut SessionCell| -> R<()> {
        let which = match which {
            FIELDAUTH_REVOCATION_GRANT => Revocation::Grant,
            FIELDAUTH_REVOCATION_ACCESS => Revocation::Access,
            FIELDAUTH_REVOCATION_BOTH => Revocation::Both,
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        };
        s.inner.revoke_tokens(which);
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// Leaves a permanent failure (after its cause was fixed, or to log in again
/// after a revocation) and resets the retry counter.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED.
///
/// # Safety
/// `session` is an initialized session used by no other thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_restart(
    session: *mut fieldauth_session,
) -> fieldauth_status {
    let f = |_: &mut Args, s: &mut SessionCell| -> R<()> {
        s.inner.restart();
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_mut(session, f) }
}

/// The session's state for display and logs (no secrets).
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session not written by another thread;
/// `out_info` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_get_info(
    session: *const fieldauth_session,
    out_info: *mut fieldauth_session_info,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &SessionCell| -> R<()> {
        let out = a.out(out_info)?;
        let st = s.inner.status();
        out.put(fieldauth_session_info {
            expires_at_ms: st.expires_at,
            refresh_at_ms: st.refresh_at,
            api_blocked_until_ms: st.api_blocked_until,
            token_blocked_until_ms: st.token_blocked_until,
            usable: u32::from(st.usable),
            refreshable: u32::from(st.refreshable),
            failed_attempts: u32::from(st.failed_attempts),
            failure: failure(st.failure),
            last_http_status: u32::from(st.last_http_status),
            last_content_json: u32::from(st.last_content_json),
            slot_needed: st.slot_needed,
            slot_capacity: st.slot_capacity,
        });
        Ok(())
    };
    // SAFETY: forwarded contract.
    unsafe { with_ref(session, f) }
}

/// Copies one optional session text, NUL-terminated.
fn copy_text(text: Option<&str>, b: &mut [u8], len: Out<usize>) -> R<()> {
    let t = text.unwrap_or("");
    put_len(copy_texts(b, [t]).map(|_| t.len()), len)
}

/// Copies the server's error_description for the last token error into `buf`
/// (NUL-terminated; `*out_len` is its length, 0 if the server sent none).
///
/// Errors: BUFFER_TOO_SMALL with the size needed (length + 1) in `*out_len`;
/// NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session not written by another thread; `buf`
/// is writable for `buf_len` bytes; `out_len` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_failure_description(
    session: *const fieldauth_session,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let len = a.out(out_len)?;
        copy_text(s.inner.failure_description(), b, len)
    };
    // SAFETY: forwarded contract.
    unsafe { with_ref(session, f) }
}

/// Copies the scope the server granted with the active token into `buf`
/// (NUL-terminated; `*out_len` is its length, 0 if it said none).
///
/// Errors: BUFFER_TOO_SMALL with the size needed (length + 1) in `*out_len`;
/// NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT.
///
/// # Safety
/// `session` is an initialized session not written by another thread; `buf`
/// is writable for `buf_len` bytes; `out_len` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_granted_scope(
    session: *const fieldauth_session,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> fieldauth_status {
    let f = |a: &mut Args, s: &SessionCell| -> R<()> {
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let len = a.out(out_len)?;
        copy_text(s.inner.granted_scope(), b, len)
    };
    // SAFETY: forwarded contract.
    unsafe { with_ref(session, f) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;

    fn blank_action() -> fieldauth_action {
        fieldauth_action {
            at_ms: 0,
            kind: 0,
            request_kind: 0,
            failure: 0,
            reserved: 0,
        }
    }

    /// The storage contract the header states, as Miri checks it: init and
    /// clear take storage never written (`MaybeUninit`), every other call
    /// takes initialized memory of any content and reads its magic word.
    #[test]
    fn storage_contract() {
        let config = fieldauth_config {
            base_url: fieldauth_str::of("https://api.example.com"),
            client_id: fieldauth_str::EMPTY,
            client_secret: fieldauth_str::EMPTY,
            username: fieldauth_str::EMPTY,
            password: fieldauth_str::EMPTY,
            api_key: fieldauth_str::of("k"),
            scope: fieldauth_str::EMPTY,
            redirect_uri: fieldauth_str::EMPTY,
            allow_insecure: 0,
            max_wait_s: 0,
            resource: fieldauth_str::EMPTY,
            audience: fieldauth_str::EMPTY,
            token_params: fieldauth_str::EMPTY,
            authorize_params: fieldauth_str::EMPTY,
        };
        let mut action = blank_action();
        // Zeroed (initialized, never a session): refused, not read beyond
        // the magic word.
        let mut zeroed = MaybeUninit::<fieldauth_session>::zeroed();
        let p = zeroed.as_mut_ptr();
        // SAFETY: `p` is FIELDAUTH_SESSION_SIZE bytes of initialized storage.
        let st = unsafe { fieldauth_session_poll(p, 0, &mut action) };
        assert_eq!(st, FIELDAUTH_ERR_NOT_INITIALIZED);
        // Never written: init builds the session without reading it.
        let mut fresh = MaybeUninit::<fieldauth_session>::uninit();
        let p = fresh.as_mut_ptr();
        // SAFETY: writable storage of the right size; init reads none of it.
        let st = unsafe {
            fieldauth_session_init_preset(p, FIELDAUTH_PRESET_PATCHWORKS_API_KEY, &config, 1)
        };
        assert_eq!(st, FIELDAUTH_OK);
        // SAFETY: initialized by the call above.
        let st = unsafe { fieldauth_session_poll(p, 0, &mut action) };
        assert_eq!(st, FIELDAUTH_OK);
        assert_eq!(action.kind, FIELDAUTH_ACTION_READY);
        // SAFETY: as above; clear wipes it, after which it is refused again.
        assert_eq!(unsafe { fieldauth_session_clear(p) }, FIELDAUTH_OK);
        // SAFETY: cleared storage is initialized memory (all zero).
        let st = unsafe { fieldauth_session_poll(p, 0, &mut action) };
        assert_eq!(st, FIELDAUTH_ERR_NOT_INITIALIZED);
    }

    /// The redirect parser is cargo feature `redirect`: without it
    /// fieldauth_session_on_authorization_callback() stays and refuses every
    /// redirect with INPUT_UNSUPPORTED (and no denial), while code and state
    /// passed in through fieldauth_session_set_authorization_code() work in
    /// every build. CI runs this crate's unit tests both ways.
    #[test]
    fn the_redirect_parser_is_feature_redirect() {
        let config = fieldauth_config {
            base_url: fieldauth_str::of("https://api.fentu.example"),
            client_id: fieldauth_str::of("demo-client"),
            client_secret: fieldauth_str::of("demo-secret"),
            username: fieldauth_str::EMPTY,
            password: fieldauth_str::EMPTY,
            api_key: fieldauth_str::EMPTY,
            scope: fieldauth_str::EMPTY,
            redirect_uri: fieldauth_str::of("https://app.example/cb"),
            allow_insecure: 0,
            max_wait_s: 0,
            resource: fieldauth_str::EMPTY,
            audience: fieldauth_str::EMPTY,
            token_params: fieldauth_str::EMPTY,
            authorize_params: fieldauth_str::EMPTY,
        };
        let mut storage = MaybeUninit::<fieldauth_session>::uninit();
        let p = storage.as_mut_ptr();
        // SAFETY: writable storage of the right size; init reads none of it.
        let st =
            unsafe { fieldauth_session_init_preset(p, FIELDAUTH_PRESET_FENTU_OAUTH, &config, 5) };
        assert_eq!(st, FIELDAUTH_OK);
        let rnd: [u8; 64] = core::array::from_fn(|i| (i * 13 + 5) as u8);
        let mut url = [0u8; 1024];
        let mut n = 0usize;
        // SAFETY: initialized above; the buffers are valid for their lengths.
        let st = unsafe {
            fieldauth_session_authorization_url(
                p,
                rnd.as_ptr(),
                32,
                rnd[32..].as_ptr(),
                16,
                url.as_mut_ptr(),
                url.len(),
                &mut n,
            )
        };
        assert_eq!(st, FIELDAUTH_OK);
        let url = core::str::from_utf8(&url[..n]).unwrap();
        let state = url
            .split(['?', '&'])
            .find_map(|q| q.strip_prefix("state="))
            .unwrap();
        let redirect = std::format!("https://app.example/cb?code=c0de&state={state}");
        let mut denied = 99u32;
        // SAFETY: as above.
        let st = unsafe {
            fieldauth_session_on_authorization_callback(
                p,
                redirect.as_ptr(),
                redirect.len(),
                core::ptr::null(),
                0,
                &mut denied,
            )
        };
        assert_eq!(denied, FIELDAUTH_FAILURE_NONE);
        let mut action = blank_action();
        if cfg!(feature = "redirect") {
            assert_eq!(st, FIELDAUTH_OK);
        } else {
            assert_eq!(st, FIELDAUTH_ERR_INPUT_UNSUPPORTED);
            // SAFETY: as above.
            assert_eq!(
                unsafe { fieldauth_session_poll(p, 10, &mut action) },
                FIELDAUTH_OK
            );
            assert_eq!(action.kind, FIELDAUTH_ACTION_NEED_AUTHORIZATION_CODE);
            // The headless path: code and state passed in.
            // SAFETY: as above.
            let st = unsafe {
                fieldauth_session_set_authorization_code(
                    p,
                    "c0de".as_ptr(),
                    4,
                    state.as_ptr(),
                    state.len(),
                )
            };
            assert_eq!(st, FIELDAUTH_OK);
        }
        // SAFETY: as above.
        assert_eq!(
            unsafe { fieldauth_session_poll(p, 10, &mut action) },
            FIELDAUTH_OK
        );
        assert_eq!(action.kind, FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
        // SAFETY: as above.
        assert_eq!(unsafe { fieldauth_session_clear(p) }, FIELDAUTH_OK);
    }
}
