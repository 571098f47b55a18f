//! `fieldauth_session_exchange`: one token exchange over caller transport
//! callbacks, resumable after "would block".

use fieldauth_core::session::{Action, Event};
use fieldauth_core::write::Window;
use fieldauth_core::Error;

use crate::cell::{Exchange, SessionCell, Stage};
use crate::event::event;
use crate::head::HeadCell;
use crate::ptr::{Args, R};
use crate::status::*;
use crate::types::*;

/// How one exchange call ends.
enum End {
    /// The response is complete.
    Done(Event),
    /// Failed; the session was told (a retry is scheduled).
    Failed(fieldauth_status),
    /// The transport would block; the state is kept.
    WouldBlock,
}

type SendFn = unsafe extern "C" fn(*mut core::ffi::c_void, *const u8, usize) -> isize;
type RecvFn = unsafe extern "C" fn(*mut core::ffi::c_void, *mut u8, usize) -> isize;

/// Runs (or resumes) one token exchange over `transport`: if poll says a
/// token request is due, writes it through `buf` window by window with
/// `send`, then reads the response into `buf` with `recv`, parses its head
/// in `head` and feeds the body to the session; on FIELDAUTH_OK the response
/// is complete and `*out_event` says what the session made of it. Any buffer
/// of at least 1 byte works; 128 bytes is plenty (larger means fewer
/// callback calls). Connect the transport first; one request and one response
/// travel over it (bytes after the response are discarded).
///
/// The connection afterwards: on FIELDAUTH_OK, `head` holds the response
/// head. When fieldauth_head_get_info() shows FIELDAUTH_HEAD_CONNECTION_CLOSE
/// (the server sent `Connection: close` or answered HTTP/1.0 without
/// keep-alive) or FIELDAUTH_FRAMING_CLOSE, close the transport and connect
/// again before the next request: sending into it would fail and count as a
/// failed attempt. Its `date` (FIELDAUTH_HEAD_DATE) is the server's clock.
/// After an error, do not reuse the connection.
///
/// Would-block: when a callback returns 0, the exchange returns
/// FIELDAUTH_ERR_WOULD_BLOCK and keeps its place (request bytes sent, head
/// parsed so far, in the session and in `head`); call again with the same
/// session, head and connection when the transport is ready. `buf` may be
/// reused in between. A blocking transport never returns 0, so one call
/// does the whole exchange. If the session gives up meanwhile (no response
/// within its 20 s limit, or a manual feed/report call) the next call
/// returns FIELDAUTH_ERR_TRANSPORT and the exchange is over.
///
/// Errors (the session has already scheduled a retry for all but the
/// argument errors and WRONG_STATE): WRONG_STATE if no token request is due
/// (poll first: the action must be FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
/// TRANSPORT for a callback error, a connection closed before the response
/// was complete, a callback returning more than asked, or a timeout;
/// FIELDAUTH_ERR_HTTP_*, _JSON_*, _RESPONSE_*, CAPACITY_EXCEEDED for a bad
/// response; WOULD_BLOCK (see above); FIELDAUTH_ERR_INPUT_* for a bad
/// configuration; NULL_POINTER (including a NULL callback), MISALIGNED,
/// NOT_INITIALIZED, INVALID_ARGUMENT (`buf_len` 0, overlaps).
///
/// # Safety
/// `session` is an initialized session and `head` FIELDAUTH_HEAD_SIZE bytes
/// of storage (initialized or not: the exchange initializes it), neither used
/// by another thread; `transport` points to a valid fieldauth_transport whose
/// callbacks honour their contract; `buf` is writable for `buf_len` bytes;
/// `out_event` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_session_exchange(
    session: *mut fieldauth_session,
    head: *mut fieldauth_head,
    now_ms: u64,
    transport: *const fieldauth_transport,
    buf: *mut u8,
    buf_len: usize,
    out_event: *mut fieldauth_event,
) -> fieldauth_status {
    let mut a = Args::new();
    let r = (|| -> R<()> {
        // SAFETY (all conversions): the caller's contract, checked by `Args`.
        let s = unsafe { a.live_mut::<SessionCell, _>(session) }?;
        let head_storage = a.storage::<HeadCell, _>(head)?;
        // SAFETY: as above.
        let t = *unsafe { a.input(transport) }?;
        // SAFETY: as above.
        let b = unsafe { a.buf(buf, buf_len) }?;
        let out = a.out(out_event)?;
        let (Some(send), Some(recv)) = (t.send, t.recv) else {
            return Err(FIELDAUTH_ERR_NULL_POINTER);
        };
        if b.is_empty() {
            return Err(FIELDAUTH_ERR_INVALID_ARGUMENT);
        }
        if s.xchg.stage == Stage::Idle {
            // A new exchange: fails with WrongState unless a request is due;
            // marks it in flight.
            let mut first = [0u8; 1];
            s.inner
                .write_token_request_window(now_ms, 0, &mut first)
                .map_err(status_of)?;
            // SAFETY: checked storage of FIELDAUTH_HEAD_SIZE bytes; a fresh
            // parser replaces whatever it held.
            unsafe { HeadCell::init_in(head_storage) };
            s.xchg = Exchange {
                stage: Stage::Sending,
                sent: 0,
                first: first[0],
            };
        } else if s.inner.poll(now_ms) != Action::AwaitResponse {
            // The session gave up on this exchange (timeout) meanwhile.
            s.xchg = Exchange::IDLE;
            return Err(FIELDAUTH_ERR_TRANSPORT);
        }
        // SAFETY: the head storage holds a HeadCell: written above for a new
        // exchange, and by an earlier call of the same exchange otherwise (the
        // contract: the same head across calls). Checked by its magic.
        let h = unsafe { a_live_head(head_storage) }?;
        let end = run(s, h, now_ms, &t, send, recv, b);
        match end {
            End::Done(e) => {
                s.xchg = Exchange::IDLE;
                out.put(event(Some(e)));
                Ok(())
            }
            End::Failed(st) => {
                s.xchg = Exchange::IDLE;
                Err(st)
            }
            End::WouldBlock => Err(FIELDAUTH_ERR_WOULD_BLOCK),
        }
    })();
    crate::ptr::done(r)
}

/// The head cell of a resumed exchange, checked by its magic.
///
/// # Safety
/// `p` is checked storage of FIELDAUTH_HEAD_SIZE bytes used only by this call.
unsafe fn a_live_head<'a>(p: *mut HeadCell) -> R<&'a mut HeadCell> {
    // The storage was claimed by the caller's `Args`; a fresh checker only
    // verifies the magic.
    let mut a = Args::new();
    // SAFETY: forwarded contract.
    unsafe { a.live_mut::<HeadCell, HeadCell>(p) }
}

/// Fails the exchange: tells the session (a retry is scheduled).
fn transport_failed(s: &mut SessionCell, now: u64) -> End {
    let _ = s.inner.on_transport_error(now);
    End::Failed(FIELDAUTH_ERR_TRANSPORT)
}

fn run(
    s: &mut SessionCell,
    h: &mut HeadCell,
    now: u64,
    t: &fieldauth_transport,
    send: SendFn,
    recv: RecvFn,
    buf: &mut [u8],
) -> End {
    // Send the request, window by window.
    while s.xchg.stage == Stage::Sending {
        let w = if s.xchg.sent == 0 {
            // The first byte, then the window at offset 1 (`buf` is not
            // empty: checked by the caller).
            let (head_byte, rest) = match buf.split_first_mut() {
                Some(x) => x,
                None => return transport_failed(s, now),
            };
            *head_byte = s.xchg.first;
            s.inner
                .write_token_request_window(now, 1, rest)
                .map(|w| Window {
                    written: w.written.saturating_add(1),
                    total: w.total,
                })
        } else {
            s.inner.write_token_request_window(now, s.xchg.sent, buf)
        };
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                let _ = s.inner.on_transport_error(now);
                return End::Failed(status_of(e));
            }
        };
        if w.written == 0 || s.xchg.sent >= w.total {
            s.xchg.stage = Stage::Head;
            break;
        }
        let window = buf.get(..w.written).unwrap_or(&[]);
        // SAFETY: the callback's contract: it reads at most `len` bytes of
        // the valid buffer we pass and does not keep the pointer.
        let n = unsafe { send(t.ctx, window.as_ptr(), window.len()) };
        match usize::try_from(n) {
            Ok(0) => return End::WouldBlock,
            Ok(n) if n <= window.len() => {
                s.xchg.sent = s.xchg.sent.saturating_add(n);
                if s.xchg.sent >= w.total {
                    s.xchg.stage = Stage::Head;
                }
            }
            // More than asked, or an error.
            _ => return transport_failed(s, now),
        }
    }
    // Receive the response.
    loop {
        // SAFETY: the callback's contract: it writes at most `len` bytes into
        // the valid buffer we pass and does not keep the pointer.
        let n = unsafe { recv(t.ctx, buf.as_mut_ptr(), buf.len()) };
        let n = match usize::try_from(n) {
            Ok(0) => return End::WouldBlock,
            Ok(n) if n <= buf.len() => n,
            Ok(_) => return transport_failed(s, now),
            Err(_) if n == FIELDAUTH_TRANSPORT_CLOSED && s.xchg.stage == Stage::Body => {
                return match s.inner.on_token_eof(now, &mut s.body) {
                    Ok(e) => End::Done(e),
                    Err(e) => End::Failed(status_of(e)),
                };
            }
            Err(_) => return transport_failed(s, now),
        };
        let mut data: &[u8] = buf.get(..n).unwrap_or(&[]);
        if s.xchg.stage == Stage::Head {
            match h.parser.feed(data) {
                Ok(None) => continue,
                Ok(Some(k)) => {
                    data = data.get(k..).unwrap_or(&[]);
                    let head = match h.parser.head() {
                        Some(head) => *head,
                        None => return transport_failed(s, now),
                    };
                    if let Err(e) = s.inner.on_token_head(now, &head, &mut s.body) {
                        return fail_with(s, now, e);
                    }
                    s.xchg.stage = Stage::Body;
                }
                Err(e) => return fail_with(s, now, e),
            }
        }
        // Body (an empty rest still completes an empty body).
        match s.inner.on_token_body(now, &mut s.body, data) {
            Ok(p) => {
                if let Some(e) = p.event {
                    return End::Done(e);
                }
            }
            // The session counted the failure already.
            Err(e) => return End::Failed(status_of(e)),
        }
    }
}

/// A head error: the session is told the exchange failed.
fn fail_with(s: &mut SessionCell, now: u64, e: Error) -> End {
    let _ = s.inner.on_transport_error(now);
    End::Failed(status_of(e))
}
