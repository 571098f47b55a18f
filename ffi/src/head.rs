//! `fieldauth_head`: the streaming HTTP/1.1 response-head parser.

use fieldauth_core::http::{BodyFraming, HeadParser, ResponseHead, RetryAfter};

use crate::ptr::{done, fits, wipe_words, Args, Cell};
use crate::status::fieldauth_status;
use crate::types::*;

/// The parser in caller storage.
#[repr(C)]
pub(crate) struct HeadCell {
    magic: u64,
    pub(crate) parser: HeadParser<256>,
}

impl Cell for HeadCell {
    const MAGIC: u64 = 0x4641_4845_4144_0001; // "FAHEAD" v1
    const STORAGE: usize = FIELDAUTH_HEAD_SIZE;
}

const _: () = assert!(fits::<HeadCell, fieldauth_head>());
const _: () = assert!(core::mem::size_of::<fieldauth_head>() == FIELDAUTH_HEAD_SIZE);

impl HeadCell {
    /// Writes a fresh parser into `cell`, field by field: building a
    /// `HeadCell` by value and moving it in would put a 432-byte temporary
    /// on the caller's stack.
    ///
    /// # Safety
    /// `cell` is non-NULL, aligned, and points to FIELDAUTH_HEAD_SIZE
    /// writable bytes (a `HeadCell` fits: compile-time check) that nothing
    /// else uses during the call. The old contents are not dropped.
    pub(crate) unsafe fn init_in(cell: *mut HeadCell) {
        const FRESH: HeadParser<256> = HeadParser::new();
        // SAFETY: the contract; field pointers stay inside the cell.
        unsafe {
            core::ptr::addr_of_mut!((*cell).parser).write(FRESH);
            core::ptr::addr_of_mut!((*cell).magic).write(Self::MAGIC);
        }
    }

    /// The complete head, or `WrongState`.
    pub(crate) fn complete(&self) -> Result<&ResponseHead, fieldauth_status> {
        self.parser
            .head()
            .ok_or(crate::status::FIELDAUTH_ERR_WRONG_STATE)
    }
}

/// Size of the library's fieldauth_head object: FIELDAUTH_HEAD_SIZE. For
/// bindings that allocate storage at run time. Thread-safe.
#[no_mangle]
pub extern "C" fn fieldauth_head_sizeof() -> usize {
    FIELDAUTH_HEAD_SIZE
}

/// Initializes (or resets) `head` for a new response; any storage of the
/// right size and alignment will do, initialized or not. Holds no secrets.
///
/// Errors: NULL_POINTER, MISALIGNED.
///
/// # Safety
/// `head` is NULL or points to FIELDAUTH_HEAD_SIZE writable bytes not in use
/// by another thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_head_init(head: *mut fieldauth_head) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        let cell = a.storage::<HeadCell, _>(head)?;
        // SAFETY: checked non-NULL and aligned; FIELDAUTH_HEAD_SIZE bytes
        // (contract), so FIELDAUTH_HEAD_WORDS u64 words.
        unsafe { wipe_words(cell.cast::<u64>(), FIELDAUTH_HEAD_WORDS) };
        // SAFETY: checked storage of FIELDAUTH_HEAD_SIZE bytes, aligned.
        unsafe { HeadCell::init_in(cell) };
        Ok(())
    })())
}

/// Feeds the next bytes received from the connection to the head parser.
/// On success `*out_complete` is 1 when the head ended inside this chunk and
/// `*out_consumed` is how many bytes of the chunk belonged to it (the rest is
/// the start of the body); otherwise `*out_complete` is 0 and the whole chunk
/// was consumed. `chunk` may be (NULL, 0). The parser copies what it keeps.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT;
/// FIELDAUTH_ERR_HTTP_* for a malformed head; WRONG_STATE once the head is
/// complete or after an error (fieldauth_head_init() starts over).
///
/// # Safety
/// `head` is an initialized fieldauth_head used by no other thread; `chunk`
/// is readable for `chunk_len` bytes; the out pointers are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_head_feed(
    head: *mut fieldauth_head,
    chunk: *const u8,
    chunk_len: usize,
    out_consumed: *mut usize,
    out_complete: *mut u32,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: contract forwarded to the checked conversions.
        let cell = unsafe { a.live_mut::<HeadCell, _>(head) }?;
        // SAFETY: as above.
        let data = unsafe { a.bytes(chunk, chunk_len) }?;
        let consumed = a.out(out_consumed)?;
        let complete = a.out(out_complete)?;
        let r = cell.parser.feed(data).map_err(crate::status::status_of)?;
        match r {
            Some(n) => {
                consumed.put(n);
                complete.put(1);
            }
            None => {
                consumed.put(data.len());
                complete.put(0);
            }
        }
        Ok(())
    })())
}

/// What the complete response head says: status, framing, Date,
/// Retry-After, X-RateLimit-* and flags.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED; WRONG_STATE before the
/// head is complete.
///
/// # Safety
/// `head` is an initialized fieldauth_head not written by another thread
/// during the call; `out_info` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_head_get_info(
    head: *const fieldauth_head,
    out_info: *mut fieldauth_response_info,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: contract forwarded to the checked conversion.
        let cell = unsafe { a.live::<HeadCell, _>(head) }?;
        let out = a.out(out_info)?;
        out.put(info(cell.complete()?));
        Ok(())
    })())
}

/// The `Bearer` challenge of the complete head's `WWW-Authenticate`, with its
/// texts (`error`, `error_description`, `scope`, `realm`, `error_uri`)
/// copied into `buf` (each NUL-terminated; an absent one is empty) and
/// described in `*out_challenge`, which lives as long as `buf`. `*out_len`
/// receives the bytes used (BUFFER_TOO_SMALL: the bytes needed).
///
/// Errors: WRONG_STATE before the head is complete, or when it had no
/// Bearer challenge (FIELDAUTH_HEAD_BEARER_CHALLENGE unset);
/// BUFFER_TOO_SMALL; NULL_POINTER, MISALIGNED, NOT_INITIALIZED,
/// INVALID_ARGUMENT.
///
/// # Safety
/// `head` is an initialized fieldauth_head not written by another thread
/// during the call; `buf` is writable for `buf_len` bytes; the out pointers
/// are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_head_get_bearer(
    head: *const fieldauth_head,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    out_challenge: *mut fieldauth_bearer_challenge,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: contract forwarded to the checked conversion.
        let cell = unsafe { a.live::<HeadCell, _>(head) }?;
        // SAFETY: forwarded contract.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let len = a.out(out_len)?;
        let out = a.out(out_challenge)?;
        cell.complete()?;
        let c = cell
            .parser
            .bearer()
            .ok_or(crate::status::FIELDAUTH_ERR_WRONG_STATE)?;
        let texts = [
            c.error.unwrap_or(""),
            c.error_description.unwrap_or(""),
            c.scope.unwrap_or(""),
            c.realm.unwrap_or(""),
            c.error_uri.unwrap_or(""),
        ];
        let [error, error_description, scope, realm, error_uri] =
            crate::session::copy_texts_out(b, texts, len)?;
        out.put(fieldauth_bearer_challenge {
            error,
            error_description,
            scope,
            realm,
            error_uri,
        });
        Ok(())
    })())
}

fn info(h: &ResponseHead) -> fieldauth_response_info {
    let mut flags = 0;
    let mut set = |on: bool, f: u32| {
        if on {
            flags |= f;
        }
    };
    set(h.content_length.is_some(), FIELDAUTH_HEAD_CONTENT_LENGTH);
    set(h.chunked, FIELDAUTH_HEAD_CHUNKED);
    set(h.connection_close, FIELDAUTH_HEAD_CONNECTION_CLOSE);
    set(h.content_type_json, FIELDAUTH_HEAD_CONTENT_TYPE_JSON);
    set(h.date.is_some(), FIELDAUTH_HEAD_DATE);
    set(
        matches!(h.retry_after, Some(RetryAfter::Delay(_))),
        FIELDAUTH_HEAD_RETRY_AFTER_DELAY,
    );
    set(
        matches!(h.retry_after, Some(RetryAfter::At(_))),
        FIELDAUTH_HEAD_RETRY_AFTER_DATE,
    );
    let x = h.x_rate_limit;
    set(x.limit.is_some(), FIELDAUTH_HEAD_X_RATE_LIMIT_LIMIT);
    set(x.remaining.is_some(), FIELDAUTH_HEAD_X_RATE_LIMIT_REMAINING);
    set(x.reset.is_some(), FIELDAUTH_HEAD_X_RATE_LIMIT_RESET);
    set(h.bearer.is_some(), FIELDAUTH_HEAD_BEARER_CHALLENGE);
    let (framing, length) = match h.framing() {
        BodyFraming::Length(n) => (FIELDAUTH_FRAMING_LENGTH, n),
        BodyFraming::Chunked => (FIELDAUTH_FRAMING_CHUNKED, 0),
        BodyFraming::Close => (FIELDAUTH_FRAMING_CLOSE, 0),
    };
    fieldauth_response_info {
        content_length: if framing == FIELDAUTH_FRAMING_LENGTH {
            length
        } else {
            h.content_length.unwrap_or(0)
        },
        date: h.date.unwrap_or(0),
        retry_after: match h.retry_after {
            Some(RetryAfter::Delay(s)) => u64::from(s),
            Some(RetryAfter::At(t)) => t,
            None => 0,
        },
        x_rate_limit_reset: x.reset.unwrap_or(0),
        status: u32::from(h.status),
        flags,
        framing,
        x_rate_limit_limit: x.limit.unwrap_or(0),
        x_rate_limit_remaining: x.remaining.unwrap_or(0),
        malformed: u32::from(h.malformed),
    }
}
