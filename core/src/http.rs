//! HTTP/1.1 responses: a streaming parser for the response head that reads
//! the header fields an auth client needs, and body framing.
//!
//! [`HeadParser`] takes the head in chunks of any size (one byte at a time
//! gives the same result as the whole head at once) and produces a
//! [`ResponseHead`]: status, framing (`Content-Length`, chunked, close),
//! `Content-Type` JSON-ness, `Date`, `Retry-After`, rate-limit fields, and
//! the `Bearer` challenge of `WWW-Authenticate`, whose text stays readable
//! through [`HeadParser::bearer`]. [`BodyReader`] then strips the body's
//! framing.
//!
//! The IETF rate-limit fields (`RateLimit`, `RateLimit-Policy`,
//! `RateLimit-*`) are read with the `ietf-ratelimit` feature, and the obsolete
//! HTTP-date formats with `obsolete-dates` (both on by default); without them
//! those fields are ignored like any other unknown field, and such dates are
//! malformed.
//!
//! # Rules
//! - Status line `HTTP/1.0` or `HTTP/1.1`, a status 100–599, an optional
//!   reason phrase; otherwise [`HttpError::StatusLine`]. Interim 1xx heads
//!   (100 Continue, 102, 103) are skipped without reading their fields; the
//!   parser starts over with the next head. 101 Switching Protocols is
//!   [`ResponseError::UnexpectedStatus`]: fieldauth never asks to upgrade.
//! - Lines end in CRLF; a bare LF is accepted as a line end (RFC 9112 §2.2),
//!   a bare CR is not. Field names are tokens followed directly by `:`;
//!   obs-fold (a line starting with SP or HTAB), an empty name, a missing
//!   colon, NUL or any control character other than HTAB are
//!   [`HttpError::HeaderLine`] (in the status line, [`HttpError::StatusLine`]).
//! - At most [`MAX_HEADER_LINES`] field lines per head and
//!   [`MAX_HEAD_BYTES`] bytes in all heads together (interim ones included);
//!   more is [`HttpError::TooManyHeaders`].
//! - Field values fieldauth reads are buffered in the parser's `[u8; N]`
//!   (one at a time, plus the retained `Bearer` challenge text). A value that
//!   does not fit is [`Error::CapacityExceeded`] with `needed` = the bytes
//!   the buffer must hold (retained text plus the whole value, counted to the
//!   end of its line) and `capacity` = `N`. Fields fieldauth does not read
//!   (`Set-Cookie`, ...) are checked byte by byte and never buffered,
//!   whatever their length. Once a `Bearer` challenge was found, further
//!   `WWW-Authenticate` lines are not buffered.
//! - Framing fields are strict: `Content-Length` must be decimal digits
//!   ([`HttpError::ContentLength`]; a list of identical values such as
//!   `42, 42` is accepted as RFC 9112 §6.3 allows); differing values, in one
//!   line or several, or `Content-Length` together with `Transfer-Encoding`
//!   are [`HttpError::ConflictingLength`]. `Transfer-Encoding` must be exactly
//!   one `chunked` coding (in one or several lines); anything else
//!   ([`HttpError::TransferEncoding`]) would leave a body fieldauth cannot
//!   decode: it never sends `TE`, so a server may not apply other codings.
//! - Informational fields (`Date`, `Retry-After`, rate-limit fields,
//!   `WWW-Authenticate`) never fail the head: a malformed value (including an
//!   absurd number) is treated as absent and flagged in
//!   [`ResponseHead::malformed`]. When such a field is repeated, the last
//!   line wins, except for the IETF `RateLimit` / `RateLimit-Policy` lists,
//!   where the most restrictive item of all lines wins, and
//!   `WWW-Authenticate`, where the first `Bearer` challenge wins. The
//!   numeric rate-limit fields (`X-RateLimit-*`, `RateLimit-Limit` ...) take
//!   the first value of a list (`100, 100;w=60` is 100).
//! - `TooManyHeaders` covers both limits above (lines and bytes).

mod date;
mod framing;

pub use date::parse_http_date;
pub use framing::{BodyFraming, BodyReader};

use core::fmt;

use crate::body::ErrorCode;
use crate::error::{Error, HttpError, ResponseError, Result};
use crate::write::{decimal as dec, is_tchar, same_ignore_case};

/// Most field lines accepted in one response head.
pub const MAX_HEADER_LINES: u8 = 100;

/// Most bytes accepted for the response head(s) of one response, interim 1xx
/// heads included: 64 KiB.
pub const MAX_HEAD_BYTES: u32 = 64 * 1024;

/// `Retry-After` (RFC 9110 §10.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryAfter {
    /// Seconds to wait (delta-seconds).
    Delay(u32),
    /// Retry at or after this time (an HTTP-date, as Unix seconds).
    At(u64),
}

impl RetryAfter {
    /// Seconds to wait counted from `now` (Unix seconds). For a device without
    /// a clock, pass the response's [`ResponseHead::date`]: that also cancels
    /// out any skew between the server's clock and the device's.
    pub fn delay_from(self, now: u64) -> u64 {
        match self {
            RetryAfter::Delay(d) => u64::from(d),
            RetryAfter::At(t) => t.saturating_sub(now),
        }
    }
}

/// How to read the raw value of `X-RateLimit-Reset`, which providers disagree
/// on.
///
/// Fentu and GitHub send epoch seconds (`X-RateLimit-Reset: 1640995200`),
/// others send seconds until the reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResetMode {
    /// Guess from the magnitude: values ≥ 10^12 are epoch milliseconds,
    /// values ≥ 10^9 (2001-09-09) are epoch seconds, smaller values are
    /// delta seconds (no quota window is 31 years long, and no server sends a
    /// reset before 2001).
    #[default]
    Auto,
    /// Unix time in seconds (Fentu, GitHub).
    EpochSeconds,
    /// Seconds from the time of the response.
    DeltaSeconds,
}

impl ResetMode {
    /// The reset as Unix seconds. `now` is the time of the response in Unix
    /// seconds (the response's [`ResponseHead::date`], or the caller's clock);
    /// it is only used for delta values. `None` if the result would be past
    /// the year 9999.
    pub fn resolve(self, raw: u64, now: u64) -> Option<u64> {
        let t = match self {
            ResetMode::Auto if raw >= 1_000_000_000_000 => div1000(raw)?,
            ResetMode::Auto if raw >= 1_000_000_000 => raw,
            ResetMode::EpochSeconds => raw,
            ResetMode::Auto | ResetMode::DeltaSeconds => now.checked_add(raw)?,
        };
        (t <= date::MAX_TIME).then_some(t)
    }

    /// Seconds from the response until the reset: `now` is as for
    /// [`ResetMode::resolve`], or `None` when the caller knows no "now" (no
    /// `Date` header, no wall clock); then only a delta value can be
    /// resolved and an absolute one gives `None`.
    pub fn delay(self, raw: u64, now: Option<u64>) -> Option<u64> {
        let absolute = match self {
            ResetMode::Auto => raw >= 1_000_000_000,
            ResetMode::EpochSeconds => true,
            ResetMode::DeltaSeconds => false,
        };
        match now {
            Some(u) => Some(self.resolve(raw, u)?.saturating_sub(u)),
            None if absolute => None,
            None => Some(raw),
        }
    }
}

/// `ms / 1000` for any `ms` below 2^48 (later than the year 9999 in
/// milliseconds: `None`), in 32-bit steps: Cortex-M has no 64-bit divide.
pub(crate) fn div1000(ms: u64) -> Option<u64> {
    if ms >> 48 != 0 {
        return None;
    }
    let hi = (ms >> 16) as u32;
    // r < 1000, so `r << 16 | low 16 bits` fits 32 bits.
    let lo = ((hi % 1000) << 16) | (ms as u32 & 0xffff);
    Some((u64::from(hi / 1000) << 16) | u64::from(lo / 1000))
}

/// The de-facto `X-RateLimit-*` fields (also spelled `X-Rate-Limit-*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct XRateLimit {
    /// `X-RateLimit-Limit`: requests allowed in the window.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining`: requests left in the window.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset` as sent (epoch seconds, epoch milliseconds or
    /// delta seconds depending on the provider); see [`Self::reset_at`].
    pub reset: Option<u64>,
}

impl XRateLimit {
    /// The reset as Unix seconds, reading the raw value as `mode` says; `now`
    /// is the time of the response (see [`ResetMode::resolve`]).
    pub fn reset_at(&self, mode: ResetMode, now: u64) -> Option<u64> {
        mode.resolve(self.reset?, now)
    }
}

/// The IETF rate-limit fields (draft-ietf-httpapi-ratelimit-headers), with
/// the `ietf-ratelimit` feature (on by default): the
/// structured `RateLimit` and `RateLimit-Policy` fields, or the older draft's
/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
///
/// Of several `RateLimit` items the one with the smallest `r` counts (its `t`
/// is the reset); of several `RateLimit-Policy` items the one with the
/// smallest `q` (its `w` is the window). Values from the structured fields
/// take precedence over the older separate fields.
#[cfg(feature = "ietf-ratelimit")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Quota: `q` of `RateLimit-Policy`, or `RateLimit-Limit` (first value).
    pub limit: Option<u32>,
    /// Remaining quota: `r` of `RateLimit`, or `RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// Seconds until the quota resets: `t` of `RateLimit`, or
    /// `RateLimit-Reset`.
    pub reset: Option<u32>,
    /// Window of the quota policy in seconds: `w` of `RateLimit-Policy`.
    pub window: Option<u32>,
}

/// What fieldauth reads from a response head. Small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResponseHead {
    /// The status code, 200–599 (interim 1xx heads are skipped).
    pub status: u16,
    /// `Content-Length`, if present.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The server closes the connection after this response: `Connection:
    /// close`, or an HTTP/1.0 response without `Connection: keep-alive` or
    /// with a `Transfer-Encoding`.
    pub connection_close: bool,
    /// The media type of `Content-Type` is `application/json` (or any
    /// `type/json`) or has a `+json` suffix such as
    /// `application/problem+json` (case-insensitive; parameters ignored).
    pub content_type_json: bool,
    /// `Date` as Unix seconds.
    pub date: Option<u64>,
    /// `Retry-After` (429, 503, ...).
    pub retry_after: Option<RetryAfter>,
    /// `X-RateLimit-*` / `X-Rate-Limit-*`.
    pub x_rate_limit: XRateLimit,
    /// IETF `RateLimit`, `RateLimit-Policy` and `RateLimit-*` (feature
    /// `ietf-ratelimit`).
    #[cfg(feature = "ietf-ratelimit")]
    pub rate_limit: RateLimit,
    /// A `Bearer` challenge in `WWW-Authenticate` (RFC 6750 §3): its `error`
    /// code, [`ErrorCode::None`] when the challenge has no `error` (a 401
    /// that means "no credentials"). The texts are in [`HeadParser::bearer`].
    pub bearer: Option<ErrorCode>,
    /// Informational fields that were present but malformed and are reported
    /// as absent: a bitwise OR of the `MALFORMED_*` constants.
    pub malformed: u8,
}

impl ResponseHead {
    /// `Date` is not a valid HTTP-date.
    pub const MALFORMED_DATE: u8 = 1;
    /// `Retry-After` is neither delta-seconds (fitting 32 bits) nor an
    /// HTTP-date.
    pub const MALFORMED_RETRY_AFTER: u8 = 2;
    /// An `X-RateLimit-*` value is not a decimal number in range (32 bits for
    /// limit and remaining, 64 bits for reset).
    pub const MALFORMED_X_RATE_LIMIT: u8 = 4;
    /// An IETF rate-limit field is not a valid structured-field list, or one
    /// of its numbers is not a non-negative integer fitting 32 bits (feature
    /// `ietf-ratelimit`).
    #[cfg(feature = "ietf-ratelimit")]
    pub const MALFORMED_RATE_LIMIT: u8 = 8;
    /// `WWW-Authenticate` does not follow the challenge grammar (the part
    /// before the problem, including a `Bearer` challenge, is still used), or
    /// a `Bearer` parameter is repeated (the first counts).
    pub const MALFORMED_WWW_AUTHENTICATE: u8 = 16;

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..=299).contains(&self.status)
    }
}

/// The head before anything was read.
const EMPTY_HEAD: ResponseHead = ResponseHead {
    status: 0,
    content_length: None,
    chunked: false,
    connection_close: false,
    content_type_json: false,
    date: None,
    retry_after: None,
    x_rate_limit: XRateLimit {
        limit: None,
        remaining: None,
        reset: None,
    },
    #[cfg(feature = "ietf-ratelimit")]
    rate_limit: RateLimit {
        limit: None,
        remaining: None,
        reset: None,
        window: None,
    },
    bearer: None,
    malformed: 0,
};

/// The `Bearer` challenge of `WWW-Authenticate` (RFC 6750 §3), borrowing its
/// texts from the [`HeadParser`]. Quoted-string values are unescaped; a value
/// that is not UTF-8 reads as `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BearerChallenge<'a> {
    /// `error` mapped ([`ErrorCode::None`] when absent: no credentials were
    /// sent, or they were not recognised).
    pub code: ErrorCode,
    /// `error` as sent.
    pub error: Option<&'a str>,
    /// `error_description`.
    pub error_description: Option<&'a str>,
    /// `error_uri`.
    pub error_uri: Option<&'a str>,
    /// `scope`: the scope the resource requires (space-separated).
    pub scope: Option<&'a str>,
    /// `realm`.
    pub realm: Option<&'a str>,
}

// Header fields read, lower case. Indices are the `H_*` constants; the
// numeric rate-limit fields come in groups of limit, remaining, reset.
const NAMES: &[&[u8]] = &[
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"content-type",
    b"date",
    b"retry-after",
    b"www-authenticate",
    b"x-ratelimit-limit",
    b"x-ratelimit-remaining",
    b"x-ratelimit-reset",
    b"x-rate-limit-limit",
    b"x-rate-limit-remaining",
    b"x-rate-limit-reset",
    #[cfg(feature = "ietf-ratelimit")]
    b"ratelimit-limit",
    #[cfg(feature = "ietf-ratelimit")]
    b"ratelimit-remaining",
    #[cfg(feature = "ietf-ratelimit")]
    b"ratelimit-reset",
    #[cfg(feature = "ietf-ratelimit")]
    b"ratelimit",
    #[cfg(feature = "ietf-ratelimit")]
    b"ratelimit-policy",
];
const H_CONTENT_LENGTH: u8 = 0;
const H_TRANSFER_ENCODING: u8 = 1;
const H_CONNECTION: u8 = 2;
const H_CONTENT_TYPE: u8 = 3;
const H_DATE: u8 = 4;
const H_RETRY_AFTER: u8 = 5;
const H_WWW_AUTHENTICATE: u8 = 6;
const H_X_RATELIMIT_LIMIT: u8 = 7;
#[cfg(feature = "ietf-ratelimit")]
const H_RATELIMIT_LIMIT: u8 = 13;
#[cfg(feature = "ietf-ratelimit")]
const H_RATELIMIT: u8 = 16;
#[cfg(feature = "ietf-ratelimit")]
const H_RATELIMIT_POLICY: u8 = 17;
const H_NONE: u8 = u8::MAX;
const ALL_NAMES: u32 = (1 << NAMES.len()) - 1;

/// [`NAMES`] as the parser reads them: their lengths, and all their bytes in
/// one string (flash: no table of slices; `NAMES` itself is used only at
/// compile time).
const NAME_LENS: [u8; NAMES.len()] = {
    let mut out = [0u8; NAMES.len()];
    let (mut dst, mut names): (&mut [u8], _) = (&mut out, NAMES);
    while let ([d, dst_rest @ ..], [n, rest @ ..]) = (dst, names) {
        // Every name is shorter than 256 bytes.
        *d = n.len() as u8;
        (dst, names) = (dst_rest, rest);
    }
    out
};
const NAME_BYTES: [u8; names_total()] = {
    let mut out = [0u8; names_total()];
    let (mut dst, mut names, mut src): (&mut [u8], _, &[u8]) = (&mut out, NAMES, &[]);
    loop {
        if let [b, src_rest @ ..] = src {
            let [d, dst_rest @ ..] = dst else { break };
            *d = *b;
            (dst, src) = (dst_rest, src_rest);
        } else if let [n, rest @ ..] = names {
            (src, names) = (n, rest);
        } else {
            break;
        }
    }
    out
};

/// The bytes of all [`NAMES`] together.
const fn names_total() -> usize {
    let (mut names, mut n) = (NAMES, 0usize);
    while let [first, rest @ ..] = names {
        n = n.wrapping_add(first.len());
        names = rest;
    }
    n
}

/// `Bearer` auth-params kept, in [`HeadParser`]'s span order.
const PARAMS: [&[u8]; 5] = [
    b"realm",
    b"scope",
    b"error",
    b"error_description",
    b"error_uri",
];
const P_ERROR: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Status,
    LineStart,
    Name,
    Value,
    Done,
    Failed,
}

/// Streaming parser for an HTTP/1.1 response head. See the module
/// documentation for the rules.
///
/// `N` is the buffer for the field values it reads (default 256 bytes; the
/// `Bearer` challenge texts stay in it after the head is complete). State is
/// `N` plus 168 bytes on 32- and 64-bit targets (424 bytes for `N = 256`;
/// 32 bytes less without the `ietf-ratelimit` feature), fixed.
///
/// ```
/// use fieldauth::http::{BodyReader, HeadParser};
///
/// let mut p: HeadParser = HeadParser::new();
/// let input = b"HTTP/1.1 401 Unauthorized\r\n\
///     WWW-Authenticate: Bearer error=\"invalid_token\"\r\n\
///     Content-Length: 2\r\n\r\n{}";
/// let n = p.feed(input)?.unwrap();
/// let head = *p.head().unwrap();
/// assert_eq!(head.status, 401);
/// assert_eq!(p.bearer().unwrap().error, Some("invalid_token"));
/// let mut body = BodyReader::new(head.framing());
/// let (_, payload) = body.next(&input[n..])?;
/// assert_eq!(payload, b"{}");
/// # Ok::<(), fieldauth::Error>(())
/// ```
#[derive(Clone)]
pub struct HeadParser<const N: usize = 256> {
    buf: [u8; N],
    head: ResponseHead,
    /// `Bearer` parameter texts in `buf`: (start, length), [`PARAMS`] order.
    spans: [(u16, u16); 5],
    total: u32,
    /// Bytes of the current value (counted past the buffer's end).
    vlen: u32,
    /// Names in [`NAMES`] the current field name still matches.
    mask: u32,
    /// Position in the status line or the field name.
    pos: u16,
    /// Bytes of `buf` holding the `Bearer` texts.
    retained: u16,
    st: St,
    /// [`NAMES`] index of the current field, or [`H_NONE`].
    cur: u8,
    lines: u8,
    /// Bit `i`: `PARAMS[i]` was present.
    present: u8,
    /// A CR was read; LF must follow.
    cr: bool,
    /// The current head is a 1xx interim response.
    interim: bool,
    http10: bool,
    keep_alive: bool,
    /// A `Transfer-Encoding` line was seen.
    te: bool,
    /// `remaining`/`reset` came from the structured `RateLimit` field.
    #[cfg(feature = "ietf-ratelimit")]
    sf_remaining: bool,
    /// `limit`/`window` came from the structured `RateLimit-Policy` field.
    #[cfg(feature = "ietf-ratelimit")]
    sf_limit: bool,
}

impl<const N: usize> fmt::Debug for HeadParser<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeadParser")
            .field("state", &self.st)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl<const N: usize> Default for HeadParser<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> HeadParser<N> {
    /// The usable buffer (spans are 16-bit).
    const CAP: usize = if N < 0xffff { N } else { 0xffff };

    /// A parser waiting for the status line.
    pub const fn new() -> Self {
        HeadParser {
            buf: [0; N],
            head: EMPTY_HEAD,
            spans: [(0, 0); 5],
            total: 0,
            vlen: 0,
            mask: 0,
            pos: 0,
            retained: 0,
            st: St::Status,
            cur: H_NONE,
            lines: 0,
            present: 0,
            cr: false,
            interim: false,
            http10: false,
            keep_alive: false,
            te: false,
            #[cfg(feature = "ietf-ratelimit")]
            sf_remaining: false,
            #[cfg(feature = "ietf-ratelimit")]
            sf_limit: false,
        }
    }

    /// After an interim (1xx) head: the state of [`HeadParser::new`] but the
    /// byte count, set field by field (`*self = Self::new()` built a whole
    /// parser, buffer included, on the stack: 476 bytes of a Cortex-M4
    /// frame, issue #13). The pattern names every field, so a new one
    /// cannot be forgotten here.
    fn start_over(&mut self) {
        let HeadParser {
            buf,
            head,
            spans,
            total: _,
            vlen,
            mask,
            pos,
            retained,
            st,
            cur,
            lines,
            present,
            cr,
            interim,
            http10,
            keep_alive,
            te,
            #[cfg(feature = "ietf-ratelimit")]
            sf_remaining,
            #[cfg(feature = "ietf-ratelimit")]
            sf_limit,
        } = self;
        buf.fill(0);
        *head = EMPTY_HEAD;
        *spans = [(0, 0); 5];
        (*vlen, *mask, *pos, *retained) = (0, 0, 0, 0);
        (*st, *cur, *lines, *present) = (St::Status, H_NONE, 0, 0);
        (*cr, *interim, *http10, *keep_alive, *te) = (false, false, false, false, false);
        #[cfg(feature = "ietf-ratelimit")]
        {
            (*sf_remaining, *sf_limit) = (false, false);
        }
    }

    /// Feeds the next bytes from the connection.
    ///
    /// `Ok(Some(n))`: the head ended after the first `n` bytes of `chunk`; the
    /// rest of `chunk` is the start of the body. `Ok(None)`: all of `chunk` was
    /// consumed and the head is not complete yet. After an error, or once the
    /// head is complete, further calls return [`Error::WrongState`].
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<usize>> {
        if matches!(self.st, St::Done | St::Failed) {
            return Err(Error::WrongState);
        }
        for (i, &b) in chunk.iter().enumerate() {
            match self.byte(b) {
                Ok(false) => {}
                // `i` indexes `chunk`, so `i + 1` cannot overflow.
                Ok(true) => return Ok(Some(i.wrapping_add(1))),
                Err(e) => {
                    self.st = St::Failed;
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// The parsed head, once [`feed`](Self::feed) returned `Some`.
    pub fn head(&self) -> Option<&ResponseHead> {
        (self.st == St::Done).then_some(&self.head)
    }

    /// The `Bearer` challenge of `WWW-Authenticate`, once the head is
    /// complete and if it had one.
    pub fn bearer(&self) -> Option<BearerChallenge<'_>> {
        let code = self.head()?.bearer?;
        Some(BearerChallenge {
            code,
            realm: self.text(0),
            scope: self.text(1),
            error: self.text(P_ERROR),
            error_description: self.text(3),
            error_uri: self.text(4),
        })
    }

    fn text(&self, i: usize) -> Option<&str> {
        param_text(&self.buf, &self.spans, self.present, i)
    }

    /// The `Bearer` challenge's texts copied out of the parser, for a
    /// result that outlives it (the driver's
    /// [`ApiResponse`](crate::driver::ApiResponse) carries one). Empty when
    /// the head is incomplete or had no challenge.
    pub fn challenge(&self) -> Challenge<N> {
        let mut c = Challenge {
            buf: [0; N],
            spans: [(0, 0); 5],
            present: 0,
            code: None,
        };
        if let Some(code) = self.head().and_then(|h| h.bearer) {
            let kept = usize::from(self.retained);
            for (d, s) in c.buf.iter_mut().zip(self.buf.iter()).take(kept) {
                *d = *s;
            }
            c.spans = self.spans;
            c.present = self.present;
            c.code = Some(code);
        }
        c
    }
}

/// Parameter `i` of a challenge: `spans[i]` of `buf`, if `present` says so.
fn param_text<'a>(
    buf: &'a [u8],
    spans: &[(u16, u16); 5],
    present: u8,
    i: usize,
) -> Option<&'a str> {
    if present & bit8(i) == 0 {
        return None;
    }
    let &(s, l) = spans.get(i)?;
    let s = usize::from(s);
    let bytes = buf.get(s..s.checked_add(usize::from(l))?)?;
    core::str::from_utf8(bytes).ok()
}

/// A response's `Bearer` challenge with its texts, owned
/// ([`HeadParser::challenge`]): what `WWW-Authenticate` said about a
/// rejected token (`error_description`, the `scope` the resource needs, the
/// `realm`). `N` is the parser's buffer size.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge<const N: usize = 256> {
    buf: [u8; N],
    spans: [(u16, u16); 5],
    present: u8,
    code: Option<ErrorCode>,
}

impl<const N: usize> Challenge<N> {
    /// The challenge, if the response had one.
    pub fn bearer(&self) -> Option<BearerChallenge<'_>> {
        let text = |i| param_text(&self.buf, &self.spans, self.present, i);
        Some(BearerChallenge {
            code: self.code?,
            realm: text(0),
            scope: text(1),
            error: text(P_ERROR),
            error_description: text(3),
            error_uri: text(4),
        })
    }
}

impl<const N: usize> fmt::Debug for Challenge<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.bearer(), f)
    }
}

impl<const N: usize> HeadParser<N> {
    /// One byte of the head; `Ok(true)` when it completed the head.
    fn byte(&mut self, b: u8) -> Result<bool> {
        self.total = self.total.saturating_add(1);
        if self.total > MAX_HEAD_BYTES {
            return Err(Error::Http(HttpError::TooManyHeaders));
        }
        let bad = Error::Http(if self.st == St::Status {
            HttpError::StatusLine
        } else {
            HttpError::HeaderLine
        });
        let eol = if self.cr {
            if b != b'\n' {
                return Err(bad);
            }
            self.cr = false;
            true
        } else if b == b'\r' {
            self.cr = true;
            return Ok(false);
        } else if b == b'\n' {
            true
        } else if (b < 0x20 && b != b'\t') || b == 0x7f {
            return Err(bad);
        } else {
            false
        };
        match self.st {
            St::Status => self.status_byte(b, eol).map(|()| false),
            St::LineStart if eol => self.end_of_head(),
            St::LineStart => {
                self.lines = self.lines.saturating_add(1);
                if self.lines > MAX_HEADER_LINES {
                    return Err(Error::Http(HttpError::TooManyHeaders));
                }
                self.mask = if self.interim { 0 } else { ALL_NAMES };
                self.pos = 0;
                self.st = St::Name;
                self.name_byte(b).ok_or(bad).map(|()| false)
            }
            St::Name if eol => Err(bad),
            St::Name => self.name_byte(b).ok_or(bad).map(|()| false),
            St::Value if eol => {
                self.st = St::LineStart;
                self.end_of_value().map(|()| false)
            }
            St::Value => {
                if self.vlen == 0 && (b == b' ' || b == b'\t') {
                    return Ok(false);
                }
                if self.cur != H_NONE {
                    let i = usize::from(self.retained).saturating_add(self.vlen as usize);
                    if i < Self::CAP {
                        if let Some(slot) = self.buf.get_mut(i) {
                            *slot = b;
                        }
                    }
                }
                self.vlen = self.vlen.saturating_add(1);
                Ok(false)
            }
            St::Done | St::Failed => Err(Error::WrongState),
        }
    }

    /// One byte of the status line.
    fn status_byte(&mut self, b: u8, eol: bool) -> Result<()> {
        let bad = Err(Error::Http(HttpError::StatusLine));
        let pos = self.pos;
        self.pos = pos.saturating_add(1);
        if eol {
            let s = self.head.status;
            if pos < 12 || !(100..=599).contains(&s) {
                return bad;
            }
            if s == 101 {
                return Err(Error::Response(ResponseError::UnexpectedStatus));
            }
            self.interim = s < 200;
            self.st = St::LineStart;
            return Ok(());
        }
        let ok = match pos {
            0..=6 => b"HTTP/1.".get(usize::from(pos)) == Some(&b),
            7 => {
                self.http10 = b == b'0';
                matches!(b, b'0' | b'1')
            }
            8 | 12 => b == b' ',
            9..=11 => {
                let d = b.wrapping_sub(b'0');
                // At most three digits: no overflow.
                self.head.status = self.head.status.wrapping_mul(10).wrapping_add(u16::from(d));
                d < 10
            }
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            bad
        }
    }

    /// One byte of a field name (`None`: malformed).
    fn name_byte(&mut self, b: u8) -> Option<()> {
        if is_tchar(b) {
            let lb = b.to_ascii_lowercase();
            let pos = usize::from(self.pos);
            let mut start = 0usize;
            for (i, &len) in NAME_LENS.iter().enumerate() {
                let len = usize::from(len);
                if pos >= len || NAME_BYTES.get(start.wrapping_add(pos)) != Some(&lb) {
                    self.mask &= !bit32(i);
                }
                // At most the length of `NAME_BYTES`.
                start = start.wrapping_add(len);
            }
            self.pos = self.pos.saturating_add(1);
            return Some(());
        }
        if b != b':' || self.pos == 0 {
            return None;
        }
        let mut cur = H_NONE;
        for (i, &len) in NAME_LENS.iter().enumerate() {
            if self.mask & bit32(i) != 0 && usize::from(len) == usize::from(self.pos) {
                cur = i as u8;
            }
        }
        if cur == H_WWW_AUTHENTICATE && self.head.bearer.is_some() {
            cur = H_NONE;
        }
        self.cur = cur;
        self.vlen = 0;
        self.st = St::Value;
        Some(())
    }

    /// The empty line: the head is complete (`Ok(true)`), or an interim head
    /// ended (`Ok(false)`, start over).
    fn end_of_head(&mut self) -> Result<bool> {
        if self.interim {
            self.start_over();
            return Ok(false);
        }
        if self.te {
            if self.head.content_length.is_some() {
                return Err(Error::Http(HttpError::ConflictingLength));
            }
            if !self.head.chunked {
                return Err(Error::Http(HttpError::TransferEncoding));
            }
        }
        self.head.connection_close |= self.http10 && (!self.keep_alive || self.te);
        if self.head.bearer.is_some() {
            let code = match (self.present & bit8(P_ERROR) != 0, self.text(P_ERROR)) {
                (false, _) => ErrorCode::None,
                (true, Some(e)) => ErrorCode::parse(e),
                // Not UTF-8: not a code RFC 6750 defines.
                (true, None) => ErrorCode::Other,
            };
            self.head.bearer = Some(code);
        }
        self.st = St::Done;
        Ok(true)
    }

    /// A field line ended: reads the value if the field is wanted.
    #[inline(never)]
    fn end_of_value(&mut self) -> Result<()> {
        let h = self.cur;
        if h == H_NONE {
            return Ok(());
        }
        let start = usize::from(self.retained);
        let needed = start.saturating_add(self.vlen as usize);
        if needed > Self::CAP {
            return Err(Error::capacity_exceeded(needed, Self::CAP));
        }
        let v = trim(self.buf.get(start..needed).unwrap_or_default());
        let head = &mut self.head;
        let mut flag = 0;
        match h {
            H_CONTENT_LENGTH | H_TRANSFER_ENCODING | H_CONNECTION => {
                for item in v.split(|&b| b == b',').map(trim) {
                    if h == H_CONTENT_LENGTH {
                        // Every item, of every line, must be the same number.
                        let n = dec(item).ok_or(Error::Http(HttpError::ContentLength))?;
                        if head.content_length.is_some_and(|p| p != n) {
                            return Err(Error::Http(HttpError::ConflictingLength));
                        }
                        head.content_length = Some(n);
                    } else if h == H_CONNECTION {
                        head.connection_close |= same_ignore_case(item, b"close");
                        self.keep_alive |= same_ignore_case(item, b"keep-alive");
                    } else if !item.is_empty() {
                        // Exactly one coding, `chunked` (checked at the end).
                        if head.chunked || !same_ignore_case(item, b"chunked") {
                            return Err(Error::Http(HttpError::TransferEncoding));
                        }
                        head.chunked = true;
                    }
                }
                self.te |= h == H_TRANSFER_ENCODING;
            }
            H_CONTENT_TYPE => {
                // `type/json` or `type/subtype+json`, parameters ignored.
                let mt = trim(v.split(|&b| b == b';').next().unwrap_or_default());
                let (ty, sub) = mt
                    .split_at_checked(mt.len().wrapping_sub(5))
                    .unwrap_or_default();
                head.content_type_json = matches!(sub.first(), Some(b'/' | b'+'))
                    && same_ignore_case(sub.get(1..).unwrap_or_default(), b"json")
                    && !ty.is_empty();
            }
            H_DATE => {
                head.date = parse_http_date(v);
                if head.date.is_none() {
                    flag = ResponseHead::MALFORMED_DATE;
                }
            }
            H_RETRY_AFTER => {
                head.retry_after = match dec(v) {
                    Some(n) => u32::try_from(n).ok().map(RetryAfter::Delay),
                    None => parse_http_date(v).map(RetryAfter::At),
                };
                if head.retry_after.is_none() {
                    flag = ResponseHead::MALFORMED_RETRY_AFTER;
                }
            }
            H_WWW_AUTHENTICATE => self.www_authenticate(start, start.saturating_add(v.len())),
            #[cfg(feature = "ietf-ratelimit")]
            H_RATELIMIT | H_RATELIMIT_POLICY => {
                let rl = &mut head.rate_limit;
                let (keys, seen, a, b) = if h == H_RATELIMIT {
                    (
                        *b"rt",
                        &mut self.sf_remaining,
                        &mut rl.remaining,
                        &mut rl.reset,
                    )
                } else {
                    (*b"qw", &mut self.sf_limit, &mut rl.limit, &mut rl.window)
                };
                // Earlier lines of the same field are part of the same list.
                let mut best = if *seen { a.map(|a| (a, *b)) } else { None };
                if sf_min(v, keys, &mut best) {
                    if let Some((x, y)) = best {
                        (*a, *b, *seen) = (Some(x), y, true);
                    }
                } else {
                    flag = ResponseHead::MALFORMED_RATE_LIMIT;
                }
            }
            _ => {
                // Numeric rate-limit fields: the first value of a list (the
                // older draft's `RateLimit-Limit: 100, 100;w=60`).
                let first = v.split(|&b| b == b',' || b == b';').next();
                let n = dec(trim(first.unwrap_or_default()));
                let n32 = n.and_then(|n| u32::try_from(n).ok());
                // 0: limit, 1: remaining, 2: reset.
                let which = h.wrapping_sub(H_X_RATELIMIT_LIMIT) % 3;
                #[cfg(feature = "ietf-ratelimit")]
                if h >= H_RATELIMIT_LIMIT {
                    // Structured-field values take precedence over these.
                    let rl = &mut head.rate_limit;
                    let slot = match which {
                        0 if !self.sf_limit => Some(&mut rl.limit),
                        1 if !self.sf_remaining => Some(&mut rl.remaining),
                        2 if !self.sf_remaining => Some(&mut rl.reset),
                        _ => None,
                    };
                    if let Some(slot) = slot {
                        *slot = n32;
                    }
                    if n32.is_none() {
                        self.head.malformed |= ResponseHead::MALFORMED_RATE_LIMIT;
                    }
                    return Ok(());
                }
                let x = &mut head.x_rate_limit;
                let ok = match which {
                    0 => {
                        x.limit = n32;
                        n32.is_some()
                    }
                    1 => {
                        x.remaining = n32;
                        n32.is_some()
                    }
                    _ => {
                        x.reset = n;
                        n.is_some()
                    }
                };
                if !ok {
                    flag = ResponseHead::MALFORMED_X_RATE_LIMIT;
                }
            }
        }
        self.head.malformed |= flag;
        Ok(())
    }

    /// Reads a `WWW-Authenticate` value in `buf[start..end]` (RFC 9110
    /// §11.6.1: `1#challenge`, each `auth-scheme [ 1*SP ( token68 /
    /// #auth-param ) ]`) for the first `Bearer` challenge; if there is one,
    /// unescapes its parameters in place and retains them.
    ///
    /// A token followed by `=` is a parameter of the current challenge; a
    /// token directly after a scheme not followed by `=` is a token68; any
    /// other token starts a new challenge.
    #[inline(never)]
    fn www_authenticate(&mut self, start: usize, end: usize) {
        let v = self.buf.get(start..end).unwrap_or_default();
        let mut c = Cur(v);
        let mut in_bearer = false;
        let mut after_scheme = false;
        let mut bad = false;
        loop {
            loop {
                match c.peek() {
                    Some(b' ' | b'\t') => {}
                    Some(b',') => after_scheme = false,
                    _ => break,
                }
                c.bump();
            }
            if c.0.is_empty() {
                break;
            }
            let tok = c.take_while(is_tchar);
            c.ows();
            if !tok.is_empty() && c.eat(b'=') {
                c.ows();
                let quoted = c.eat(b'"');
                let at = start.wrapping_add(v.len().wrapping_sub(c.0.len()));
                let len = if quoted {
                    let before = c.0.len();
                    c.skip_quoted()
                        .then(|| before.wrapping_sub(c.0.len()).wrapping_sub(1))
                } else {
                    Some(c.take_while(is_tchar).len()).filter(|&n| n > 0)
                };
                let Some(len) = len else {
                    // An unterminated quote or garbage, unless it is
                    // `token68=` padding right after a scheme.
                    bad |= quoted || !after_scheme;
                    c.skip_item();
                    continue;
                };
                after_scheme = false;
                let i = PARAMS.iter().position(|p| same_ignore_case(p, tok));
                if let (true, Some(i)) = (in_bearer, i) {
                    if self.present & bit8(i) != 0 {
                        bad = true;
                    } else if let Some(span) = self.spans.get_mut(i) {
                        self.present |= bit8(i);
                        // Positions are below `CAP`, which fits 16 bits.
                        *span = (at as u16, len as u16);
                    }
                }
                c.ows();
                if !c.0.is_empty() && c.peek() != Some(b',') {
                    bad = true;
                    c.skip_item();
                }
            } else if tok.is_empty() || after_scheme {
                // A token68 after a scheme, or garbage.
                bad |= !after_scheme;
                c.skip_item();
            } else if self.head.bearer.is_some() {
                break;
            } else {
                in_bearer = same_ignore_case(tok, b"bearer");
                if in_bearer {
                    self.head.bearer = Some(ErrorCode::None);
                }
                after_scheme = true;
            }
        }
        if bad {
            self.head.malformed |= ResponseHead::MALFORMED_WWW_AUTHENTICATE;
        }
        if self.head.bearer.is_none() {
            return;
        }
        // Unescape the kept values in place and retain up to the last one.
        let mut keep = start;
        for (i, span) in self.spans.iter_mut().enumerate() {
            if self.present & bit8(i) != 0 {
                let s = usize::from(span.0);
                let e = s.wrapping_add(usize::from(span.1));
                span.1 = self.buf.get_mut(s..e).map_or(0, unescape) as u16;
                keep = keep.max(e);
            }
        }
        self.retained = keep as u16;
    }
}

#[inline]
const fn bit32(i: usize) -> u32 {
    1u32.wrapping_shl(i as u32)
}

#[inline]
const fn bit8(i: usize) -> u8 {
    1u8.wrapping_shl(i as u32)
}

#[inline]
const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing SP / HTAB.
fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(0, |e| e.saturating_add(1));
    s.get(start..end).unwrap_or_default()
}

#[cfg(feature = "ietf-ratelimit")]
fn dec32(s: &[u8]) -> Option<u32> {
    u32::try_from(dec(s)?).ok()
}

/// Removes quoted-pair backslashes in place; returns the new length.
fn unescape(s: &mut [u8]) -> usize {
    let mut w = 0usize;
    let mut esc = false;
    for r in 0..s.len() {
        let Some(&b) = s.get(r) else { break };
        if !esc && b == b'\\' {
            esc = true;
            continue;
        }
        esc = false;
        if let Some(d) = s.get_mut(w) {
            *d = b;
        }
        // w <= r < s.len()
        w = w.wrapping_add(1);
    }
    w
}

/// A read cursor over a byte string.
#[derive(Clone, Copy)]
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.bump();
        }
        hit
    }

    fn take_while(&mut self, f: fn(u8) -> bool) -> &'a [u8] {
        let n = self.0.iter().position(|&b| !f(b)).unwrap_or(self.0.len());
        let (a, rest) = self.0.split_at_checked(n).unwrap_or((self.0, &[]));
        self.0 = rest;
        a
    }

    fn ows(&mut self) {
        self.take_while(is_ows);
    }

    /// Skips to the next `,` (not consuming it).
    fn skip_item(&mut self) {
        self.take_while(|b| b != b',');
    }

    /// After an opening `"`: skips the quoted-string up to and including the
    /// closing quote. `false` if unterminated.
    fn skip_quoted(&mut self) -> bool {
        loop {
            match self.bump() {
                None => return false,
                Some(b'"') => return true,
                Some(b'\\') if self.bump().is_none() => return false,
                Some(_) => {}
            }
        }
    }
}

#[cfg(feature = "ietf-ratelimit")]
/// Reads a structured-field list (RFC 8941) of items with parameters, such as
/// `"default";r=50;t=30, "burst";r=5;t=1`: of the items whose parameter
/// `keys[0]` is an integer, keeps in `best` the one with the smallest (if
/// smaller than what `best` holds), with its parameter `keys[1]`. `false` if
/// malformed (not a list of items with parameters, or one of the two
/// parameters not a non-negative integer fitting 32 bits). Other bare items
/// and parameters are skipped without checking their syntax in detail.
fn sf_min(v: &[u8], keys: [u8; 2], best: &mut Option<(u32, Option<u32>)>) -> bool {
    /// Bytes of tokens, keys, numbers, booleans and byte sequences.
    fn plain(b: u8) -> bool {
        b > b' ' && !matches!(b, b'"' | b',' | b';' | b'=' | b'(' | b')' | 0x7f..)
    }
    /// A string or a plain run: the run (a string reads as `"`, not a number).
    fn bare<'a>(c: &mut Cur<'a>) -> Option<&'a [u8]> {
        if c.eat(b'"') {
            c.skip_quoted().then_some(&b"\""[..])
        } else {
            Some(c.take_while(plain)).filter(|t| !t.is_empty())
        }
    }
    let mut c = Cur(v);
    while !c.0.is_empty() {
        if bare(&mut c).is_none() {
            return false;
        }
        let mut found = [None; 2];
        while c.eat(b';') {
            c.take_while(|b| b == b' ');
            let Some(k) = Some(c.take_while(plain)).filter(|k| !k.is_empty()) else {
                return false;
            };
            let val = if c.eat(b'=') {
                bare(&mut c)
            } else {
                Some(&b"?1"[..])
            };
            if let Some(i) = keys.iter().position(|&x| k == [x]) {
                let Some(n) = val.and_then(dec32) else {
                    return false;
                };
                if let Some(slot) = found.get_mut(i) {
                    *slot = Some(n);
                }
            } else if val.is_none() {
                return false;
            }
        }
        if let [Some(a), b] = found {
            if best.is_none_or(|(x, _)| a < x) {
                *best = Some((a, b));
            }
        }
        c.ows();
        if c.0.is_empty() {
            break;
        }
        if !c.eat(b',') {
            return false;
        }
        c.ows();
        if c.0.is_empty() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
