//! Transport drivers: the I/O loop around a [`Session`], over
//! [`embedded_io`] streams (feature `embedded-io`), `embedded_io_async`
//! streams (feature `embedded-io-async`), or any `std::io` stream through
//! `FromStd` (feature `std`).
//!
//! | Function | Does |
//! | --- | --- |
//! | [`exchange_token`] | one whole token exchange for [`Action::SendTokenRequest`]: the request out window by window, the response head and body in; returns the session's [`Event`] |
//! | [`api_get`] | one authorized `GET`: [`Session::authorize`], the request head with the credential applied, the response head reported to [`Session::on_api_response`]; returns the [`ApiVerdict`] and where the body starts |
//! | [`read_body`] | the rest of an [`api_get`] response body, to a callback |
//!
//! With `embedded-io-async`, `exchange_token_async`, `api_get_async` and
//! `read_body_async` do the same over async streams. Both flavours run the
//! same state machines; only the `read`/`write`/`flush` calls differ.
//!
//! The stream is the caller's: connect it (TLS and all) before, and close or
//! keep it after. A token exchange reads exactly one response; after a
//! `Content-Length` or chunked body the connection can be reused.
//!
//! # Failures
//! Every transport problem is [`Error::Transport`], never a panic: an I/O
//! error from `read`, `write` or `flush`, a `write` that returns `Ok(0)`
//! (embedded-io's `write_all` would panic there, so it is not used), and a
//! `read` of 0 (end of stream) anywhere but the end of a close-delimited
//! body. A malformed response head is [`Error::Http`] (or
//! [`Error::CapacityExceeded`] for a field value larger than
//! [`HEAD_CAPACITY`]); a malformed body is the session's error. In every case
//! of [`exchange_token`] the session has been told — the driver calls
//! [`Session::on_transport_error`] for what the session did not see itself —
//! so the exchange counts as failed, a retry is scheduled and a still-valid
//! token stays valid: poll the session again. The only exceptions are
//! errors before anything was sent ([`Error::WrongState`] when no token
//! request is due, an empty buffer, configuration errors), which change
//! nothing.
//!
//! The driver does not time out: give the stream read and write timeouts
//! (its reads and writes then fail with an error, which becomes
//! [`Error::Transport`]).
//!
//! # Memory
//! Nothing is allocated. The caller's `buf` carries the request out and the
//! response in; any size from 1 byte works, 128 bytes or more is sensible.
//! The driver's state lives on its stack (in the future, for the async
//! functions): about 0.5 KB, most of it a [`HeadParser`]`<`[`HEAD_CAPACITY`]`>`
//! (424 bytes). Measured on Cortex-M4 (`tests/firmware`, opt-level z), the
//! deepest call chain of a token exchange or an API request peaks at about
//! 1.5 KB of stack: that state, about 0.3 KB of driver frames, and the frames
//! of the parser and session methods it calls (`HeadParser::feed` alone
//! takes about 0.6 KB, as it does for any caller). Sending a request window
//! peaks at about 0.7 KB.
//!
//! # Example
//! ```
//! use fieldauth::driver::{self, embedded_io};
//! use fieldauth::preset;
//! use fieldauth::session::{Action, Config, Event, Session};
//!
//! # struct Duplex { rx: &'static [u8], sent: usize }
//! # impl embedded_io::ErrorType for Duplex { type Error = embedded_io::ErrorKind; }
//! # impl embedded_io::Read for Duplex {
//! #     fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
//! #         let n = buf.len().min(self.rx.len());
//! #         buf[..n].copy_from_slice(&self.rx[..n]);
//! #         self.rx = &self.rx[n..];
//! #         Ok(n)
//! #     }
//! # }
//! # impl embedded_io::Write for Duplex {
//! #     fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { self.sent += buf.len(); Ok(buf.len()) }
//! #     fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! let config = Config {
//!     base_url: "http://127.0.0.1:8080/autotask",
//!     client_id: "demo-client",
//!     client_secret: "demo-secret",
//!     ..Config::default()
//! };
//! let mut session: Session = Session::new(&preset::AUTOTASK, &config, 0x5eed)?;
//! // Any embedded_io::Read + Write stream (here a scripted one).
//! let mut stream = Duplex {
//!     rx: b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n\
//!           {\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}",
//!     sent: 0,
//! };
//! let mut buf = [0u8; 128];
//! let now = 1_000;
//! if let Action::SendTokenRequest(_) = session.poll(now) {
//!     let exchanged = driver::exchange_token(&mut session, now, &mut stream, &mut buf)?;
//!     assert!(matches!(exchanged.event, Event::TokenIssued { lifetime_s: 3600, .. }));
//!     // No `Connection: close`: the stream may carry the next request.
//!     assert!(exchanged.reusable);
//! }
//! assert!(session.status().usable);
//! # Ok::<(), fieldauth::Error>(())
//! ```

use core::ops::Range;

use crate::error::{Error, Result};
#[cfg(doc)]
use crate::http::HeadParser;
use crate::http::{BearerChallenge, Challenge, ResponseHead};
#[cfg(doc)]
use crate::session::Action;
use crate::session::{ApiVerdict, Authorization, Event, Session};
use crate::url::Url;

mod machine;
#[cfg(feature = "std")]
mod std_io;
#[cfg(test)]
mod tests;

use machine::{BodyDrain, Did, Machine, ReadApi, SendApi, Step, TokenExchange};

pub use embedded_io;
#[cfg(feature = "embedded-io-async")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-io-async")))]
pub use embedded_io_async;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use std_io::FromStd;

/// Capacity of the driver's [`HeadParser`]: the longest header value it
/// reads (`Date`, `Retry-After`, rate-limit fields, the `Bearer` challenge of
/// `WWW-Authenticate` with its description). Values of fields the driver
/// does not read may be of any length.
pub const HEAD_CAPACITY: usize = 256;

/// The answer to an API request, head read and reported to the session.
///
/// `head.status` is the HTTP status, `verdict` what it means for the
/// credential (retry with a new token, rate limited...), and `leftover` the
/// part of the body that arrived with the head, in the buffer given to
/// [`api_get`]. The body itself is the caller's: [`read_body`] delivers it
/// (starting with the leftover bytes), or decode it yourself.
///
/// ```
/// use fieldauth::driver::{self, embedded_io, ApiResponse};
/// use fieldauth::http::BodyReader;
/// use fieldauth::session::ApiVerdict;
///
/// /// The body of a successful answer, through `buf` (the buffer the answer
/// /// was read into, unchanged since).
/// fn body<T: embedded_io::Read>(
///     stream: &mut T,
///     response: &ApiResponse,
///     buf: &mut [u8],
/// ) -> Result<Option<Vec<u8>>, fieldauth::Error> {
///     let mut body = Vec::new();
///     // Read the body in any case: the connection is then ready for the next request.
///     driver::read_body(stream, response, buf, |piece| body.extend_from_slice(piece))?;
///     Ok((response.verdict == ApiVerdict::Ok && response.head.status == 200).then_some(body))
/// }
///
/// /// Or, without reading more: the payload that came with the head.
/// fn payload_so_far(response: &ApiResponse, buf: &[u8]) -> Result<Vec<u8>, fieldauth::Error> {
///     let mut framed = buf.get(response.leftover.clone()).ok_or(fieldauth::Error::WrongState)?;
///     // Still framed (Content-Length, chunked or close-delimited): unframe it.
///     let mut reader = BodyReader::new(response.head.framing());
///     let mut payload = Vec::new();
///     while !framed.is_empty() {
///         let (used, data) = reader.next(framed)?;
///         if used == 0 {
///             break; // the body ended before these bytes
///         }
///         payload.extend_from_slice(data);
///         framed = &framed[used..];
///     }
///     Ok(payload)
/// }
/// ```
///
/// [`api_get`] has a complete example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// The response head (status, framing, rate-limit fields...).
    pub head: ResponseHead,
    /// What the session made of it ([`Session::on_api_response`]).
    pub verdict: ApiVerdict,
    /// The bytes of the caller's buffer after the head that were already
    /// received: the start of the body, still framed. Pass the same buffer,
    /// unchanged, to [`read_body`]; or decode them yourself with a
    /// [`BodyReader`](crate::http::BodyReader) for `head.framing()`.
    ///
    /// For a `400` the driver reads ahead into the buffer (as much of a
    /// `Content-Length` or chunked body as fits) before reporting it, so that
    /// a provider's "expired token" phrase is recognised.
    pub leftover: Range<usize>,
    /// The `Bearer` challenge of `WWW-Authenticate` with its texts
    /// (`error_description`, the `scope` the resource needs, `realm`), if
    /// the response had one: [`ApiResponse::bearer`].
    pub challenge: Challenge<HEAD_CAPACITY>,
}

impl ApiResponse {
    /// The `Bearer` challenge, if the response had one: why a token was
    /// rejected (`invalid_token`, `insufficient_scope` with the `scope`
    /// needed) in the server's words.
    pub fn bearer(&self) -> Option<BearerChallenge<'_>> {
        self.challenge.bearer()
    }
}

/// What [`api_get`] did.
///
/// Only [`ApiOutcome::Response`] sent anything; the other two say when to
/// try again. A typical caller:
///
/// ```
/// use fieldauth::driver::ApiOutcome;
/// use fieldauth::session::ApiVerdict;
///
/// /// When to send the request (again), or `None` when it is done.
/// fn next_attempt(outcome: &ApiOutcome, now: u64) -> Option<u64> {
///     match outcome {
///         ApiOutcome::Response(response) => match response.verdict {
///             // Done: a success, or an error that is not about the credential
///             // (check `response.head.status`).
///             ApiVerdict::Ok => None,
///             // The token was rejected and dropped: poll the session (it
///             // fetches a new one) and send the request again, once.
///             ApiVerdict::RetryWithNewToken => Some(now),
///             // The server or the client-side budget says wait.
///             ApiVerdict::RateLimited { until } => Some(until),
///             // Not retried: a second rejection, a rejected API key, a 403.
///             ApiVerdict::Unauthorized | ApiVerdict::InvalidKey | ApiVerdict::Forbidden => None,
///         },
///         // Nothing was sent: a rate limit applies until `until`.
///         ApiOutcome::Wait { until } => Some(*until),
///         // Nothing was sent: poll the session, which says what it needs.
///         ApiOutcome::NoCredential => Some(now),
///     }
/// }
/// # assert_eq!(next_attempt(&ApiOutcome::Wait { until: 7 }, 1), Some(7));
/// ```
// The response (with its challenge texts, ~300 bytes) is the common case and
// is returned by value; there is no heap to box it into.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiOutcome {
    /// The request went out and this is the answer.
    Response(ApiResponse),
    /// Nothing was sent: a rate limit applies until `until`
    /// ([`Authorization::Wait`]).
    Wait {
        /// Monotonic time (ms) when a request may go out.
        until: u64,
    },
    /// Nothing was sent: no usable credential; poll the session
    /// ([`Authorization::NoCredential`]).
    NoCredential,
}

/// Runs a [`Machine`] over a stream: the body of [`run`] and [`run_read`]
/// (`drive!(io, machine, buf)`), and of their async twins
/// (`drive!(io, machine, buf, await)`: the only difference is the `.await`
/// after each I/O call). `read_only:` drives a machine that never writes,
/// over a stream that only reads.
macro_rules! drive {
    (@write yes, $io:ident, $bytes:expr $(, $aw:tt)?) => { $io.write($bytes)$(.$aw)?.ok() };
    (@write no, $io:ident, $bytes:expr $(, $aw:tt)?) => {{
        let _ = $bytes;
        None
    }};
    (@flush yes, $io:ident $(, $aw:tt)?) => { $io.flush()$(.$aw)?.is_ok() };
    (@flush no, $io:ident $(, $aw:tt)?) => { false };
    (@run $w:ident, $io:expr, $machine:expr, $buf:expr $(, $aw:tt)?) => {{
        let (io, machine, buf) = ($io, $machine, $buf);
        let mut did = Did::Start;
        loop {
            did = match machine.resume(did, buf) {
                Step::Write(r) => {
                    Did::Wrote(drive!(@write $w, io, buf.get(r).unwrap_or_default() $(, $aw)?))
                }
                Step::Flush => Did::Flushed(drive!(@flush $w, io $(, $aw)?)),
                Step::Read(r) => Did::Read(io.read(buf.get_mut(r).unwrap_or_default())$(.$aw)?.ok()),
                Step::Done => break,
            };
        }
    }};
    (read_only: $io:expr, $machine:expr, $buf:expr $(, $aw:tt)?) => {
        drive!(@run no, $io, $machine, $buf $(, $aw)?)
    };
    ($io:expr, $machine:expr, $buf:expr $(, $aw:tt)?) => {
        drive!(@run yes, $io, $machine, $buf $(, $aw)?)
    };
}

/// Runs `machine` to its end over `io`. One instance per stream type, for
/// every machine.
fn run<T>(io: &mut T, machine: &mut dyn Machine, buf: &mut [u8])
where
    T: embedded_io::Read + embedded_io::Write + ?Sized,
{
    drive!(io, machine, buf)
}

/// [`run`] for a machine that only reads.
fn run_read<T>(io: &mut T, machine: &mut dyn Machine, buf: &mut [u8])
where
    T: embedded_io::Read + ?Sized,
{
    drive!(read_only: io, machine, buf)
}

#[cfg(feature = "embedded-io-async")]
mod asynch;
#[cfg(feature = "embedded-io-async")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-io-async")))]
pub use asynch::{api_get_async, api_get_permitted_async, exchange_token_async, read_body_async};

/// Performs one token exchange on `io`: writes the token request the session
/// wants (see [`Action::SendTokenRequest`]) window by window through `buf`,
/// flushes, reads the response head and body, and returns what the session
/// made of it, with what the response said about the connection
/// ([`Exchanged::reusable`]: close the stream when it is `false`).
///
/// `now` is the monotonic time in milliseconds for the whole exchange.
///
/// Errors: [`Error::WrongState`] if no token request is due (poll first) —
/// nothing was sent; [`Error::BufferTooSmall`] for an empty `buf`;
/// [`Error::Transport`], [`Error::Http`] and the session's body errors after
/// the request went out, with a retry scheduled (see the [module
/// documentation](self)). After an error, do not reuse the stream.
pub fn exchange_token<T, const N: usize>(
    session: &mut Session<N>,
    now: u64,
    io: &mut T,
    buf: &mut [u8],
) -> Result<Exchanged>
where
    T: embedded_io::Read + embedded_io::Write + ?Sized,
{
    let mut m = TokenExchange::new(session, now);
    run(io, &mut m, buf);
    m.finish()
}

/// A finished token exchange ([`exchange_token`]): the session's event and
/// what the response head said about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchanged {
    /// What the session made of the response.
    pub event: Event,
    /// Whether the connection may carry the next request: `false` when the
    /// server sent `Connection: close`, answered HTTP/1.0 without
    /// keep-alive, or delimited the body by closing the connection. Then
    /// close the stream and connect again for the next request (sending
    /// into it would fail, and count as a failed attempt).
    pub reusable: bool,
    /// The response's `Date` (Unix seconds), if it sent one: the server's
    /// clock, for [`Session::set_wall_clock`] on a device that has no
    /// better one.
    pub date: Option<u64>,
}

impl Exchanged {
    /// From the event and the response head.
    pub(crate) fn new(event: Event, head: Option<&ResponseHead>) -> Self {
        Exchanged {
            event,
            reusable: head.is_some_and(|h| {
                !h.connection_close && h.framing() != crate::http::BodyFraming::Close
            }),
            date: head.and_then(|h| h.date),
        }
    }
}

/// Sends one authorized `GET url` on `io` and reads the response head.
///
/// Asks [`Session::authorize`] first: when it says wait or has no
/// credential, nothing is sent and the [`ApiOutcome`] says so. Otherwise
/// writes `GET <target> HTTP/1.1` with `Host`, the credential (a header line,
/// or the query parameter in the target) and `Accept: application/json`,
/// window by window through `buf`; reads the response head; reports it with
/// [`Session::on_api_response`] and returns the verdict and the start of the
/// body (read it with [`read_body`] before the next request on the same
/// connection).
///
/// `url` is the API URL, e.g. `Url::parse(base)?.join("/v1/work-orders")`.
///
/// Errors: the credential's [`ApiCredential::validate`](crate::apply::ApiCredential::validate)
/// errors; [`Error::BufferTooSmall`] for an empty `buf`; [`Error::Transport`]
/// and [`Error::Http`]. A failed API request does not concern the token
/// endpoint: the session is not told.
///
/// # Example
/// ```
/// use fieldauth::driver::{self, embedded_io, ApiOutcome};
/// use fieldauth::preset;
/// use fieldauth::session::{ApiVerdict, Config, Session};
/// use fieldauth::url::Url;
///
/// # /// A scripted stream: what the server sends, and what was written to it.
/// # struct Scripted { rx: &'static [u8], sent: Vec<u8> }
/// # impl embedded_io::ErrorType for Scripted { type Error = embedded_io::ErrorKind; }
/// # impl embedded_io::Read for Scripted {
/// #     fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
/// #         let n = buf.len().min(self.rx.len());
/// #         buf[..n].copy_from_slice(&self.rx[..n]);
/// #         self.rx = &self.rx[n..];
/// #         Ok(n)
/// #     }
/// # }
/// # impl embedded_io::Write for Scripted {
/// #     fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
/// #         self.sent.extend_from_slice(buf);
/// #         Ok(buf.len())
/// #     }
/// #     fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # fn connect(rx: &'static [u8]) -> Scripted { Scripted { rx, sent: Vec::new() } }
/// let config = Config {
///     base_url: "https://webservices.autotask.net",
///     client_id: "YOUR_CLIENT_ID",
///     client_secret: "YOUR_CLIENT_SECRET",
///     ..Config::default()
/// };
/// let mut session: Session = Session::new(&preset::AUTOTASK, &config, 0x5eed)?;
/// let mut buf = [0u8; 128];
///
/// // A token first (any connected stream; here scripted answers).
/// let mut token_stream = connect(b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n\
///     {\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}");
/// driver::exchange_token(&mut session, 1_000, &mut token_stream, &mut buf)?;
///
/// // Then the API request, on a connection to the API host.
/// let mut stream = connect(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
///     Transfer-Encoding: chunked\r\n\r\n\
///     10\r\n{\"items\":[{\"id\":\r\n9\r\n29683616}\r\n2\r\n]}\r\n0\r\n\r\n");
/// let url = Url::parse(config.base_url)?.join("/ATServicesRest/V1.0/Companies")?;
/// let outcome = driver::api_get(&mut session, 2_000, &mut stream, url, &mut buf)?;
/// # assert!(stream.sent.starts_with(b"GET /ATServicesRest/V1.0/Companies HTTP/1.1\r\n"));
/// # assert!(stream.sent.windows(27).any(|w| w == b"Authorization: Bearer tok\r\n"));
/// let ApiOutcome::Response(response) = outcome else {
///     unreachable!("a fresh token, and the budget is not spent: the request went out");
/// };
/// assert_eq!(response.head.status, 200);
/// assert_eq!(response.verdict, ApiVerdict::Ok);
/// // `buf[response.leftover]` holds what of the body came with the head (still
/// // chunked); read_body starts there and unframes the rest as it arrives.
/// assert!(buf[response.leftover.clone()].starts_with(b"10\r\n{"));
/// let mut body = Vec::new();
/// let len = driver::read_body(&mut stream, &response, &mut buf, |piece| {
///     body.extend_from_slice(piece)
/// })?;
/// assert_eq!(body, br#"{"items":[{"id":29683616}]}"#);
/// assert_eq!(len, 27);
/// # Ok::<(), fieldauth::Error>(())
/// ```
pub fn api_get<T, const N: usize>(
    session: &mut Session<N>,
    now: u64,
    io: &mut T,
    url: Url<'_>,
    buf: &mut [u8],
) -> Result<ApiOutcome>
where
    T: embedded_io::Read + embedded_io::Write + ?Sized,
{
    check_buf(buf)?;
    match api_permit(session, now) {
        Ok(permit) => api_get_permitted(session, permit, now, io, url, buf),
        Err(not) => Ok(not.into()),
    }
}

/// Permission for one API request, from [`api_permit`]: the session has
/// counted the request against its API budget. Spend it on
/// [`api_get_permitted`] (or its async twin); it cannot be copied.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiPermit {
    _counted: (),
}

/// Why [`api_permit`] gave no permit (nothing is to be sent); converts into
/// the [`ApiOutcome`] of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotPermitted {
    /// A rate limit applies until `until` (monotonic ms).
    Wait {
        /// When to ask again.
        until: u64,
    },
    /// No usable credential: poll the session, which says what it needs.
    NoCredential,
}

impl From<NotPermitted> for ApiOutcome {
    fn from(n: NotPermitted) -> Self {
        match n {
            NotPermitted::Wait { until } => ApiOutcome::Wait { until },
            NotPermitted::NoCredential => ApiOutcome::NoCredential,
        }
    }
}

/// Asks the session whether an API request may go out now, before any
/// connection exists ([`Session::authorize`]): a permit, or the
/// [`NotPermitted::Wait`] / [`NotPermitted::NoCredential`] that says when to
/// ask again, so that a host opens a socket only when it will be used.
///
/// ```
/// use fieldauth::driver::{self, NotPermitted};
/// use fieldauth::preset;
/// use fieldauth::session::{Config, Session};
///
/// let config = Config {
///     base_url: "https://webservices.autotask.net",
///     client_id: "id",
///     client_secret: "secret",
///     ..Config::default()
/// };
/// let mut session: Session = Session::new(&preset::AUTOTASK, &config, 1)?;
/// // No token yet: no permit, and no connection was opened for nothing.
/// assert_eq!(driver::api_permit(&mut session, 0), Err(NotPermitted::NoCredential));
/// // With a permit: connect, then `driver::api_get_permitted(&mut session,
/// // permit, now, &mut stream, url, &mut buf)`.
/// # Ok::<(), fieldauth::Error>(())
/// ```
pub fn api_permit<const N: usize>(
    session: &mut Session<N>,
    now: u64,
) -> core::result::Result<ApiPermit, NotPermitted> {
    match session.authorize(now) {
        Authorization::Send(_) => Ok(ApiPermit { _counted: () }),
        Authorization::Wait { until } => Err(NotPermitted::Wait { until }),
        _ => Err(NotPermitted::NoCredential),
    }
}

/// [`api_get`] for a request [`api_permit`] already allowed: sends it on
/// `io` (connected after the permit) with the session's current credential,
/// reads the response head and reports it. The budget is not counted again.
/// [`ApiOutcome::NoCredential`] (nothing sent) if the credential was
/// dropped since the permit (another request's 401).
///
/// Errors: as [`api_get`].
pub fn api_get_permitted<T, const N: usize>(
    session: &mut Session<N>,
    permit: ApiPermit,
    now: u64,
    io: &mut T,
    url: Url<'_>,
    buf: &mut [u8],
) -> Result<ApiOutcome>
where
    T: embedded_io::Read + embedded_io::Write + ?Sized,
{
    let _ = permit;
    check_buf(buf)?;
    let token = session.token_id();
    let Some(cred) = session.credential() else {
        return Ok(ApiOutcome::NoCredential);
    };
    let mut send = SendApi::new(cred, url);
    run(io, &mut send, buf);
    finish(send.out)?;
    let mut read = ReadApi::new(session, now, token);
    run(io, &mut read, buf);
    finish(read.out).map(ApiOutcome::Response)
}

/// Reads the rest of the body of `response` (the answer of [`api_get`]) from
/// `io`, starting with its leftover bytes in `buf` (pass the same buffer,
/// unchanged), and hands the payload, unframed, to `sink` piece by piece.
/// Returns the payload length.
///
/// Errors: [`Error::Transport`] if the stream fails or ends before the body
/// does (a close-delimited body ends with the stream); [`Error::Http`] for
/// malformed chunked framing; [`Error::WrongState`] if the leftover range
/// is not within `buf`.
pub fn read_body<T>(
    io: &mut T,
    response: &ApiResponse,
    buf: &mut [u8],
    sink: impl FnMut(&[u8]),
) -> Result<u64>
where
    T: embedded_io::Read + ?Sized,
{
    let mut m = BodyDrain::new(response.head.framing(), response.leftover.clone(), sink);
    run_read(io, &mut m, buf);
    finish(m.out)
}

/// A finished machine's result (`WrongState` if it never finished, which
/// the loop rules out).
fn finish<R>(out: Option<Result<R>>) -> Result<R> {
    out.unwrap_or(Err(Error::WrongState))
}

/// An empty buffer cannot carry a request.
fn check_buf(buf: &[u8]) -> Result<()> {
    if buf.is_empty() {
        return Err(Error::buffer_too_small(1));
    }
    Ok(())
}
