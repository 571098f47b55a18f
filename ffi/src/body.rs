//! `fieldauth_body`: body framing (Content-Length, chunked, close-delimited).

use fieldauth_core::http::BodyReader;

use crate::head::HeadCell;
use crate::ptr::{done, fits, wipe_words, Args, Cell};
use crate::status::{fieldauth_status, status_of};
use crate::types::*;

/// The reader in caller storage.
#[repr(C)]
struct BodyCell {
    magic: u64,
    reader: BodyReader,
}

impl Cell for BodyCell {
    const MAGIC: u64 = 0x4641_424f_4459_0001; // "FABODY" v1
    const STORAGE: usize = FIELDAUTH_BODY_SIZE;
}

const _: () = assert!(fits::<BodyCell, fieldauth_body>());
const _: () = assert!(core::mem::size_of::<fieldauth_body>() == FIELDAUTH_BODY_SIZE);

/// Size of the library's fieldauth_body object: FIELDAUTH_BODY_SIZE. For
/// bindings that allocate storage at run time. Thread-safe.
#[no_mangle]
pub extern "C" fn fieldauth_body_sizeof() -> usize {
    FIELDAUTH_BODY_SIZE
}

/// Initializes `body` to read the body of the response whose complete head
/// is in `head` (204/304: empty; chunked; Content-Length; else until the
/// connection closes). `head` is only read during the call.
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED (head), INVALID_ARGUMENT
/// (overlap); WRONG_STATE if the head is not complete.
///
/// # Safety
/// `body` points to FIELDAUTH_BODY_SIZE writable bytes; `head` is an
/// initialized fieldauth_head; neither is used by another thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_body_init(
    body: *mut fieldauth_body,
    head: *const fieldauth_head,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: contract forwarded to the checked conversion.
        let h = unsafe { a.live::<HeadCell, _>(head) }?;
        let framing = h.complete()?.framing();
        let cell = a.storage::<BodyCell, _>(body)?;
        // SAFETY: checked non-NULL and aligned; FIELDAUTH_BODY_WORDS words
        // of storage (contract).
        unsafe { wipe_words(cell.cast::<u64>(), FIELDAUTH_BODY_WORDS) };
        // SAFETY: the storage fits a BodyCell (compile-time check).
        unsafe {
            cell.write(BodyCell {
                magic: BodyCell::MAGIC,
                reader: BodyReader::new(framing),
            })
        };
        Ok(())
    })())
}

/// Reads body bytes from `input` (what the connection delivered after the
/// head): strips the framing and reports the payload found, one contiguous
/// run per call, as an offset and length inside `input`. Call again with the
/// unconsumed rest until it is empty or `done` is 1; bytes after the end of
/// the body are never consumed (a pipelined response, or garbage).
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED, INVALID_ARGUMENT;
/// FIELDAUTH_ERR_HTTP_CHUNK for malformed chunked framing; WRONG_STATE after
/// an error.
///
/// # Safety
/// `body` is an initialized fieldauth_body used by no other thread; `input`
/// is readable for `input_len` bytes; `out_progress` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_body_read(
    body: *mut fieldauth_body,
    input: *const u8,
    input_len: usize,
    out_progress: *mut fieldauth_body_progress,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: contract forwarded to the checked conversions.
        let cell = unsafe { a.live_mut::<BodyCell, _>(body) }?;
        // SAFETY: as above.
        let data = unsafe { a.bytes(input, input_len) }?;
        let out = a.out(out_progress)?;
        let (consumed, payload) = cell.reader.next(data).map_err(status_of)?;
        // `payload` is a sub-slice of `data`: its offset is the address difference.
        let offset = (payload.as_ptr() as usize).saturating_sub(data.as_ptr() as usize);
        out.put(fieldauth_body_progress {
            consumed,
            data_offset: if payload.is_empty() { 0 } else { offset },
            data_len: payload.len(),
            done: u32::from(cell.reader.is_done()),
        });
        Ok(())
    })())
}

/// The connection closed (or the caller stops reading): FIELDAUTH_OK if the
/// body is complete (a close-delimited body is complete at end of stream).
///
/// Errors: NULL_POINTER, MISALIGNED, NOT_INITIALIZED; FIELDAUTH_ERR_TRANSPORT
/// if the body was cut short.
///
/// # Safety
/// `body` is an initialized fieldauth_body not written by another thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_body_finish(body: *const fieldauth_body) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        // SAFETY: contract forwarded to the checked conversion.
        let cell = unsafe { a.live::<BodyCell, _>(body) }?;
        cell.reader.finish().map_err(status_of)
    })())
}
