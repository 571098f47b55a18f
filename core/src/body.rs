//! Response bodies: token responses (RFC 6749 §5.1), error responses
//! (RFC 6749 §5.2, RFC 6750 §3, Fentu's `status` member), device
//! authorization responses (RFC 8628 §3.2) and revocation responses
//! (RFC 7009 §2.2).
//!
//! A [`BodyParser`] takes the body in chunks of any size and writes the text
//! members it reads (decoded) into caller storage, one after another, recording
//! where each lies. Nothing else is copied; nothing is allocated. When the
//! body is complete, [`BodyParser::finish`] classifies and validates it and
//! returns an [`Outcome`]: small `Copy` metadata that, together with the
//! storage, gives typed views ([`Response`], [`TokenResponse`],
//! [`ErrorResponse`], [`DeviceAuthorization`]) borrowing from the storage.
//! Device authorization responses need the `device-flow` feature (on by
//! default).
//!
//! [`parse_body`] parses a body that is complete in memory in one call. On
//! 64-bit hosts it leaves plain string values (printable ASCII, no escapes:
//! the usual tokens) in the body instead of copying them, and returns a
//! [`Parsed`] whose views borrow from the body and the storage. The storage
//! it needs, its errors and its views are the same as the streaming
//! parser's on every target.
//!
//! # Rules
//! - Status 200–299 is success (200 and 201 both occur). An `error` member
//!   makes any body an error response, whatever the status.
//! - Duplicate members: fieldauth reads each member at most once. A member it
//!   reads that appears twice is rejected with
//!   [`ResponseError::DuplicateMember`]; duplicates of members it ignores are
//!   ignored. Rejecting is the only rule that cannot be steered by a server
//!   or proxy that adds a second copy.
//! - `null` counts as absent (but still as an occurrence for the duplicate rule).
//! - `expires_in` may be a JSON integer or a string of digits (`"3600"`);
//!   zero, negative, fractional, exponent forms and values over
//!   [`MAX_LIFETIME_SECS`](crate::MAX_LIFETIME_SECS) are
//!   [`ResponseError::InvalidNumber`].
//! - Informational members (`scope`, `error_description`, `error_uri`,
//!   `status`, `message`) of an unexpected type are ignored; the members the
//!   protocol depends on are checked strictly.
//! - An error status whose body is not JSON (an HTML 502 page, an empty body)
//!   or whose JSON is malformed still yields an [`ErrorResponse`] that keeps
//!   the status, with [`ErrorBody`] saying what was wrong with the body.

use core::fmt;

use crate::error::{Error, Member, ResponseError, Result};
use crate::json::{Literal, Number, Scanner, Sink};
use crate::write::same_bytes;

/// A key table: the JSON member names a provider uses, and what they mean.
pub type KeyTable = &'static [(&'static [u8], Member)];

/// Member names of RFC 6749, RFC 6750, RFC 7009, RFC 8628, plus common
/// extensions (`refresh_expires_in`, `verification_url`) and Fentu's `status`.
/// (Without the `device-flow` feature, the RFC 8628 names are left out.)
#[cfg(feature = "device-flow")]
pub const STANDARD_KEYS: KeyTable = &[
    (b"access_token", Member::AccessToken),
    (b"token_type", Member::TokenType),
    (b"expires_in", Member::ExpiresIn),
    (b"refresh_token", Member::RefreshToken),
    (b"scope", Member::Scope),
    (b"error", Member::Error),
    (b"error_description", Member::ErrorDescription),
    (b"error_uri", Member::ErrorUri),
    (b"refresh_token_expires_in", Member::RefreshExpiresIn),
    (b"refresh_expires_in", Member::RefreshExpiresIn),
    (b"status", Member::Status),
    (b"message", Member::Message),
    (b"device_code", Member::DeviceCode),
    (b"user_code", Member::UserCode),
    (b"verification_uri", Member::VerificationUri),
    (b"verification_url", Member::VerificationUri),
    (
        b"verification_uri_complete",
        Member::VerificationUriComplete,
    ),
    (b"interval", Member::Interval),
];

/// Member names of RFC 6749, RFC 6750 and RFC 7009, plus the common extension
/// `refresh_expires_in` and Fentu's `status`. (With the `device-flow`
/// feature, the RFC 8628 names too.)
#[cfg(not(feature = "device-flow"))]
pub const STANDARD_KEYS: KeyTable = &[
    (b"access_token", Member::AccessToken),
    (b"token_type", Member::TokenType),
    (b"expires_in", Member::ExpiresIn),
    (b"refresh_token", Member::RefreshToken),
    (b"scope", Member::Scope),
    (b"error", Member::Error),
    (b"error_description", Member::ErrorDescription),
    (b"error_uri", Member::ErrorUri),
    (b"refresh_token_expires_in", Member::RefreshExpiresIn),
    (b"refresh_expires_in", Member::RefreshExpiresIn),
    (b"status", Member::Status),
    (b"message", Member::Message),
];

/// Patchworks `/fabric/api/login`: the access token is in `token`, with
/// `message` and `expires_in`.
pub const PATCHWORKS_KEYS: KeyTable = &[
    (b"token", Member::AccessToken),
    (b"expires_in", Member::ExpiresIn),
    (b"message", Member::Message),
    (b"token_type", Member::TokenType),
    (b"error", Member::Error),
    (b"error_description", Member::ErrorDescription),
    (b"status", Member::Status),
];

/// What a response body is expected to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// A token response (any grant, including login).
    Token,
    /// A device authorization response (RFC 8628 §3.2). Needs the
    /// `device-flow` feature (on by default).
    #[cfg(feature = "device-flow")]
    DeviceAuthorization,
    /// A revocation response (RFC 7009 §2.2): a 200 body is ignored.
    Revocation,
}

/// Where a text member lies in the storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    start: u16,
    len: u16,
}

impl Span {
    fn bytes<'s>(&self, storage: &'s [u8]) -> Option<&'s [u8]> {
        let end = usize::from(self.start).checked_add(usize::from(self.len))?;
        storage.get(usize::from(self.start)..end)
    }
}

/// The members read from a body: text spans into the storage and numbers.
/// Small and `Copy`; holds no text itself.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fields {
    spans: [Span; Member::COUNT],
    /// Members that carried a non-null value.
    present: u32,
    /// Members whose span lies in the body, not the storage (only
    /// [`parse_body`] borrows, and only plain values, on 64-bit hosts).
    #[cfg(target_pointer_width = "64")]
    borrowed: u32,
    /// End of the text written into the storage.
    used: u16,
    expires_in: u32,
    refresh_expires_in: u32,
    interval: u32,
    status: u16,
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fields")
            .field("present", &format_args!("{:#x}", self.present))
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Fields {
    fn has(&self, m: Member) -> bool {
        self.present & bit(m) != 0
    }

    /// The bytes of `m`: in `body` if borrowed from it, else in `storage`.
    fn bytes<'s>(&self, m: Member, storage: &'s [u8], body: &'s [u8]) -> Option<&'s [u8]> {
        if !self.has(m) {
            return None;
        }
        self.spans
            .get(m as usize)?
            .bytes(self.base(m, storage, body))
    }

    /// The text of `m` within `all`, the validated text region of the
    /// storage (see [`Fields::all`]), or within `body` if borrowed from it.
    fn text<'s>(&self, m: Member, all: &'s str, body: &'s str) -> Option<&'s str> {
        if !self.has(m) {
            return None;
        }
        let span = self.spans.get(m as usize)?;
        let end = usize::from(span.start).checked_add(usize::from(span.len))?;
        self.base(m, all, body).get(usize::from(span.start)..end)
    }

    /// `body` if `m` was borrowed from it, else `own` (the storage). Only
    /// 64-bit hosts borrow; elsewhere this is always `own`.
    #[inline]
    fn base<'s, T: ?Sized>(&self, m: Member, own: &'s T, body: &'s T) -> &'s T {
        #[cfg(target_pointer_width = "64")]
        if self.borrowed & bit(m) != 0 {
            return body;
        }
        let _ = (m, body);
        own
    }

    /// The whole text region as one `&str`: validated once, so the fields
    /// are sub-slices (the scanner already checked UTF-8; this is the safe
    /// conversion, done in one pass instead of one per field).
    fn all<'s>(&self, storage: &'s [u8]) -> &'s str {
        storage
            .get(..usize::from(self.used))
            .and_then(crate::utf8)
            .unwrap_or("")
    }

    fn num(&self, m: Member) -> Option<u32> {
        if !self.has(m) {
            return None;
        }
        match m {
            Member::ExpiresIn => Some(self.expires_in),
            Member::RefreshExpiresIn => Some(self.refresh_expires_in),
            Member::Interval => Some(self.interval),
            Member::Status => Some(u32::from(self.status)),
            _ => None,
        }
    }

    fn set_num(&mut self, m: Member, v: u32) {
        match m {
            Member::ExpiresIn => self.expires_in = v,
            Member::RefreshExpiresIn => self.refresh_expires_in = v,
            Member::Interval => self.interval = v,
            Member::Status => self.status = u16::try_from(v).unwrap_or(u16::MAX),
            _ => return,
        }
        self.present |= bit(m);
    }
}

#[inline]
const fn bit(m: Member) -> u32 {
    1u32 << (m as u32)
}

const fn is_numeric(m: Member) -> bool {
    matches!(
        m,
        Member::ExpiresIn | Member::RefreshExpiresIn | Member::Interval | Member::Status
    )
}

/// Members whose wrong type is ignored rather than rejected.
const fn is_lenient(m: Member) -> bool {
    matches!(
        m,
        Member::Scope
            | Member::ErrorDescription
            | Member::ErrorUri
            | Member::Status
            | Member::Message
    )
}

/// Largest value accepted per numeric member.
const fn num_max(m: Member) -> u32 {
    match m {
        Member::Interval => 86_400,
        Member::Status => 999,
        // Fits: ten years is about 2^28 seconds.
        _ => crate::MAX_LIFETIME_SECS as u32,
    }
}

/// What was wrong with the body of an error response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorBody {
    /// A JSON object (its members are in the [`ErrorResponse`]).
    Json,
    /// Empty body.
    Empty,
    /// Not JSON (e.g. an HTML error page).
    NotJson,
    /// JSON that could not be read; the error says why.
    Malformed(Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Parsing JSON.
    Json,
    /// Error status with an unusable body: the rest is ignored.
    Ignore(ErrorBody),
    /// Revocation success: the body is ignored.
    IgnoreSuccess,
    /// Finished or failed.
    Closed,
}

/// The streaming body parser. See the module documentation.
///
/// Holds only parser state (about 120 bytes); the decoded text goes into the
/// storage passed to every [`feed`](BodyParser::feed) call, which must be the
/// same buffer each time.
#[derive(Clone, Debug)]
pub struct BodyParser {
    scanner: Scanner,
    s: State,
}

/// Everything but the scanner (so both can be borrowed at once).
#[derive(Clone, Debug)]
struct State {
    fields: Fields,
    expect: Expect,
    status: u16,
    mode: Mode,
    /// Member whose value is being read.
    cur: Option<Member>,
    /// The current string value is stored as text (not parsed as a number).
    cur_text: bool,
    /// Members seen (including null), for the duplicate rule.
    seen: u32,
    /// Text members whose value is not plain printable ASCII (needs a check).
    unplain: u32,
    used: u16,
    /// Bytes the text members need in total (may exceed the storage).
    needed: usize,
    num_acc: u32,
    num_ok: bool,
    num_digits: u8,
    /// Plain string values are borrowed from the input, not copied: the
    /// whole body is one chunk that outlives the result ([`parse_body`]).
    #[cfg(target_pointer_width = "64")]
    borrow: bool,
}

/// Storage plus the parser's bookkeeping, as the JSON sink.
struct Into<'p, 's> {
    p: &'p mut State,
    storage: &'s mut [u8],
}

impl BodyParser {
    /// A parser for a body of the given kind, received with HTTP `status`,
    /// using the member names in `keys` (e.g. [`STANDARD_KEYS`]).
    pub const fn new(expect: Expect, status: u16, keys: KeyTable) -> Self {
        let mode = if matches!(expect, Expect::Revocation) && status >= 200 && status <= 299 {
            Mode::IgnoreSuccess
        } else {
            Mode::Json
        };
        BodyParser {
            scanner: Scanner::new(keys),
            s: State {
                fields: Fields {
                    spans: [Span { start: 0, len: 0 }; Member::COUNT],
                    present: 0,
                    #[cfg(target_pointer_width = "64")]
                    borrowed: 0,
                    used: 0,
                    expires_in: 0,
                    refresh_expires_in: 0,
                    interval: 0,
                    status: 0,
                },
                expect,
                status,
                mode,
                cur: None,
                cur_text: false,
                seen: 0,
                unplain: 0,
                used: 0,
                needed: 0,
                num_acc: 0,
                num_ok: false,
                num_digits: 0,
                #[cfg(target_pointer_width = "64")]
                borrow: false,
            },
        }
    }

    /// The HTTP status this parser was created with.
    pub fn status(&self) -> u16 {
        self.s.status
    }

    fn is_success(&self) -> bool {
        (200..=299).contains(&self.s.status)
    }

    /// Feeds the next chunk of the body. `storage` receives the decoded text
    /// members and must be the same buffer on every call and at
    /// [`finish`](Self::finish).
    ///
    /// On error the parser is closed; what it returned stays the error.
    pub fn feed(&mut self, storage: &mut [u8], chunk: &[u8]) -> Result<()> {
        match self.s.mode {
            Mode::Json => {}
            Mode::Ignore(_) | Mode::IgnoreSuccess => return Ok(()),
            Mode::Closed => return Err(Error::WrongState),
        }
        let r = self.scanner.feed(
            chunk,
            &mut Into {
                p: &mut self.s,
                storage,
            },
        );
        if let Err(e) = r {
            self.fail(e)?;
        }
        Ok(())
    }

    /// Handles a parse error: error statuses keep going as an error response
    /// with an unusable body; anything else fails.
    fn fail(&mut self, e: Error) -> Result<()> {
        if self.is_success() || matches!(e, Error::WrongState) {
            self.s.mode = Mode::Closed;
            return Err(e);
        }
        let body = match e {
            Error::Response(ResponseError::NotJson) => {
                if self.scanner.offset() == 0 {
                    ErrorBody::Empty
                } else {
                    ErrorBody::NotJson
                }
            }
            other => ErrorBody::Malformed(other),
        };
        self.s.fields = Fields::default();
        self.s.used = 0;
        self.s.needed = 0;
        self.s.mode = Mode::Ignore(body);
        Ok(())
    }

    /// Ends the body and classifies it. Call once, after the last chunk.
    pub fn finish(&mut self, storage: &[u8]) -> Result<Outcome> {
        self.finish_in(storage, &[])
    }

    /// [`finish`](Self::finish), with the body that borrowed members lie in.
    fn finish_in(&mut self, storage: &[u8], body: &[u8]) -> Result<Outcome> {
        let status = self.s.status;
        let kind = match self.s.mode {
            Mode::Closed => return Err(Error::WrongState),
            Mode::IgnoreSuccess => Kind::Revoked,
            Mode::Ignore(body) => Kind::Error(body),
            Mode::Json => {
                if let Err(e) = self.scanner.finish() {
                    // An empty body at the very start is "empty", not "not JSON".
                    let e = if self.scanner.offset() == 0 {
                        Error::Response(ResponseError::NotJson)
                    } else {
                        e
                    };
                    self.fail(e)?;
                    match self.s.mode {
                        Mode::Ignore(b) => Kind::Error(b),
                        _ => Kind::Error(ErrorBody::NotJson),
                    }
                } else {
                    self.s.mode = Mode::Closed;
                    let kind = self.classify(storage, body)?;
                    return Ok(Outcome {
                        status,
                        kind,
                        fields: self.s.fields,
                    });
                }
            }
        };
        // Not a JSON body that was read: the fields are empty.
        self.s.mode = Mode::Closed;
        Ok(Outcome {
            status,
            kind,
            fields: Fields::default(),
        })
    }

    /// Classifies and validates a complete JSON body.
    fn classify(&mut self, storage: &[u8], body: &[u8]) -> Result<Kind> {
        let capacity = storage.len().min(usize::from(u16::MAX));
        if self.s.needed > capacity {
            return Err(Error::capacity_exceeded(self.s.needed, capacity));
        }
        self.s.fields.used = self.s.used;
        let f = &self.s.fields;
        let unplain = self.s.unplain;
        let status = self.s.status;
        if f.has(Member::Error) || !self.is_success() {
            if !self.is_success() && !(400..=599).contains(&status) && !f.has(Member::Error) {
                return Err(Error::Response(ResponseError::UnexpectedStatus));
            }
            return Ok(Kind::Error(ErrorBody::Json));
        }
        Ok(match self.s.expect {
            Expect::Token => {
                validate_token(f, unplain, storage, body)?;
                Kind::Token
            }
            #[cfg(feature = "device-flow")]
            Expect::DeviceAuthorization => {
                for m in [
                    Member::DeviceCode,
                    Member::UserCode,
                    Member::VerificationUri,
                    Member::ExpiresIn,
                ] {
                    if !f.has(m) {
                        return Err(Error::Response(ResponseError::MissingMember(m)));
                    }
                }
                // Codes and URIs are shown to the user: non-empty
                // printable ASCII (a URI has no other characters).
                for m in [
                    Member::DeviceCode,
                    Member::UserCode,
                    Member::VerificationUri,
                    Member::VerificationUriComplete,
                ] {
                    check_vschar(m, f, unplain, storage, body)?;
                }
                Kind::Device
            }
            Expect::Revocation => Kind::Revoked,
        })
    }
}

/// RFC 6749 Appendix A: tokens and codes are non-empty VSCHAR (0x20–0x7E).
/// Values the scanner saw as plain need no second look.
fn check_vschar(m: Member, f: &Fields, unplain: u32, storage: &[u8], body: &[u8]) -> Result<()> {
    match f.bytes(m, storage, body) {
        Some([]) => Err(Error::Response(ResponseError::MissingMember(m))),
        Some(t) if unplain & bit(m) != 0 && !t.iter().all(|b| (0x20..=0x7e).contains(b)) => {
            Err(Error::Response(ResponseError::InvalidCharacters(m)))
        }
        _ => Ok(()),
    }
}

fn validate_token(f: &Fields, unplain: u32, storage: &[u8], body: &[u8]) -> Result<()> {
    if !f.has(Member::AccessToken) {
        return Err(Error::Response(ResponseError::MissingMember(
            Member::AccessToken,
        )));
    }
    check_vschar(Member::AccessToken, f, unplain, storage, body)?;
    check_vschar(Member::RefreshToken, f, unplain, storage, body)?;
    if let Some(tt) = f.bytes(Member::TokenType, storage, body) {
        if !is_bearer(tt) {
            return Err(Error::Response(ResponseError::UnsupportedTokenType));
        }
    }
    Ok(())
}

/// `tt` is `Bearer` in any ASCII case (RFC 6749 §5.1: case-insensitive), as
/// `eq_ignore_ascii_case` would say, in one word: every byte of `bearer` is a
/// lowercase letter, and `x | 0x20` is a lowercase letter `c` exactly when
/// `x` is `c` or its uppercase form.
fn is_bearer(tt: &[u8]) -> bool {
    let Ok([b0, b1, b2, b3, b4, b5]) = <[u8; 6]>::try_from(tt) else {
        return false;
    };
    u64::from_le_bytes([b0, b1, b2, b3, b4, b5, 0, 0]) | 0x2020_2020_2020
        == u64::from_le_bytes(*b"bearer\0\0")
}

impl Sink for Into<'_, '_> {
    fn member(&mut self, member: Option<Member>) -> Result<bool> {
        let p = &mut *self.p;
        let Some(m) = member else {
            p.cur = None;
            return Ok(false);
        };
        if p.seen & bit(m) != 0 {
            return Err(Error::Response(ResponseError::DuplicateMember(m)));
        }
        p.seen |= bit(m);
        p.cur = Some(m);
        Ok(true)
    }

    fn str_start(&mut self) -> Result<()> {
        let p = &mut *self.p;
        let Some(m) = p.cur else { return Ok(()) };
        if is_numeric(m) {
            p.cur_text = false;
            p.num_acc = 0;
            p.num_ok = true;
            p.num_digits = 0;
        } else {
            p.cur_text = true;
            p.begin_text(m);
        }
        Ok(())
    }

    #[inline]
    fn str_part(&mut self, part: &[u8]) -> Result<()> {
        let p = &mut *self.p;
        if p.cur.is_none() {
            return Ok(());
        }
        if !p.cur_text {
            for &b in part {
                let ok = b.is_ascii_digit() && p.num_digits < 19;
                p.num_ok &= ok;
                if ok {
                    p.num_digits = p.num_digits.saturating_add(1);
                    p.num_acc = p
                        .num_acc
                        .saturating_mul(10)
                        .saturating_add(u32::from(b.wrapping_sub(b'0')));
                }
            }
            return Ok(());
        }
        p.store_text(self.storage, part);
        Ok(())
    }

    fn str_end(&mut self, plain: bool) -> Result<()> {
        let p = &mut *self.p;
        let Some(m) = p.cur.take() else { return Ok(()) };
        if p.cur_text {
            p.end_text(m, plain);
            return Ok(());
        }
        let v = p.num_acc;
        if p.num_ok && p.num_digits > 0 {
            p.number_value(m, false, Some(v))
        } else if is_lenient(m) {
            Ok(())
        } else {
            Err(Error::Response(ResponseError::InvalidNumber(m)))
        }
    }

    /// The common whole value: the text steps of start, part and end
    /// without their dispatch.
    #[cfg(target_pointer_width = "64")]
    fn str_whole(&mut self, value: &[u8], at: usize) -> Result<()> {
        let p = &mut *self.p;
        let Some(m) = p.cur else { return Ok(()) };
        if is_numeric(m) {
            self.str_start()?;
            self.str_part(value)?;
            return self.str_end(true);
        }
        p.cur = None;
        if p.borrow {
            // The value stays where it is in the body. Capacity is counted
            // as if it were copied, so `parse_body` needs the same storage
            // on every target.
            let span = u16::try_from(at).ok().zip(u16::try_from(value.len()).ok());
            if let Some((start, len)) = span.filter(|&(s, l)| s.checked_add(l).is_some()) {
                p.needed = p.needed.saturating_add(value.len());
                if let Some(slot) = p.fields.spans.get_mut(m as usize) {
                    *slot = Span { start, len };
                }
                p.fields.borrowed |= bit(m);
                p.fields.present |= bit(m);
                return Ok(());
            }
        }
        p.begin_text(m);
        p.store_text(self.storage, value);
        p.end_text(m, true);
        Ok(())
    }

    fn number(&mut self, n: Number) -> Result<()> {
        let p = &mut *self.p;
        let Some(m) = p.cur.take() else { return Ok(()) };
        if !is_numeric(m) {
            return wrong_type(m);
        }
        p.number_value(m, n.negative, n.integer)
    }

    fn literal(&mut self, l: Literal) -> Result<()> {
        let p = &mut *self.p;
        let Some(m) = p.cur.take() else { return Ok(()) };
        match l {
            Literal::Null => Ok(()),
            _ => wrong_type(m),
        }
    }

    fn nested(&mut self) -> Result<()> {
        let p = &mut *self.p;
        let Some(m) = p.cur.take() else { return Ok(()) };
        wrong_type(m)
    }
}

fn wrong_type(m: Member) -> Result<()> {
    if is_lenient(m) {
        Ok(())
    } else {
        Err(Error::Response(ResponseError::WrongType(m)))
    }
}

impl State {
    /// A text member's value begins at the end of the text stored so far.
    #[inline]
    fn begin_text(&mut self, m: Member) {
        if let Some(span) = self.fields.spans.get_mut(m as usize) {
            *span = Span {
                start: self.used,
                len: 0,
            };
        }
    }

    /// Appends decoded text to the storage; past its capacity only counts
    /// what would be needed (reported by `finish`).
    #[inline]
    fn store_text(&mut self, storage: &mut [u8], part: &[u8]) {
        self.needed = self.needed.saturating_add(part.len());
        let start = usize::from(self.used);
        let cap = storage.len().min(usize::from(u16::MAX));
        // `used` never exceeds `needed` (borrowed text counts only there).
        if self.needed <= cap {
            if let Some((dst, end)) = start.checked_add(part.len()).and_then(|end| {
                let dst = storage.get_mut(start..end)?;
                Some((dst, u16::try_from(end).ok()?))
            }) {
                crate::write::copy(dst, part);
                self.used = end;
            }
        }
    }

    /// A text member's value ended: its span, and whether it needs the
    /// printable-ASCII check.
    #[inline]
    fn end_text(&mut self, m: Member, plain: bool) {
        if !plain {
            self.unplain |= bit(m);
        }
        if let Some(span) = self.fields.spans.get_mut(m as usize) {
            span.len = self.used.saturating_sub(span.start);
        }
        self.fields.present |= bit(m);
    }

    fn number_value(&mut self, m: Member, negative: bool, v: Option<u32>) -> Result<()> {
        let ok = match v {
            Some(v) if !negative || v == 0 => {
                let min = u32::from(matches!(m, Member::ExpiresIn));
                (v >= min && v <= num_max(m)).then_some(v)
            }
            _ => None,
        };
        match ok {
            // refresh expiry 0: "no expiry known" (Keycloak offline tokens).
            Some(0) if m == Member::RefreshExpiresIn => Ok(()),
            Some(v) => {
                self.fields.set_num(m, v);
                Ok(())
            }
            None if is_lenient(m) => Ok(()),
            None => Err(Error::Response(ResponseError::InvalidNumber(m))),
        }
    }
}

/// What kind of response a body was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Token,
    #[cfg(feature = "device-flow")]
    Device,
    Revoked,
    Error(ErrorBody),
}

/// The result of a finished parse: classification and where the members lie
/// in the storage. `Copy` and small; view it with [`Outcome::view`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    status: u16,
    kind: Kind,
    fields: Fields,
}

impl Outcome {
    /// The HTTP status of the response.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Where the text of `m` lies in the storage: `(offset, length)`, or
    /// `None` if the member was absent. For callers that keep the storage
    /// and want to find a member again later without re-parsing.
    pub fn text_span(&self, m: Member) -> Option<(u16, u16)> {
        if !self.fields.has(m) {
            return None;
        }
        self.fields.spans.get(m as usize).map(|s| (s.start, s.len))
    }

    /// Bytes of the storage the text members occupy (all start below this).
    pub fn text_used(&self) -> u16 {
        self.fields.used
    }

    /// Whether the response is a success (token, device authorization, or
    /// revocation) rather than an error.
    pub fn is_success(&self) -> bool {
        !matches!(self.kind, Kind::Error(_))
    }

    /// Typed view of the response, borrowing text from `storage` (the buffer
    /// the parser wrote into).
    pub fn view<'s>(&self, storage: &'s [u8]) -> Response<'s> {
        // Only `parse_body` borrows, and its outcome is a `Parsed`.
        self.view_in(storage, "")
    }

    /// The view, with `body` the (validated) body that borrowed members lie in.
    fn view_in<'s>(&self, storage: &'s [u8], in_body: &'s str) -> Response<'s> {
        let f = &self.fields;
        let storage = f.all(storage);
        match self.kind {
            Kind::Token => Response::Token(TokenResponse {
                access_token: f.text(Member::AccessToken, storage, in_body).unwrap_or(""),
                token_type: f.text(Member::TokenType, storage, in_body),
                expires_in: f.num(Member::ExpiresIn),
                refresh_token: f.text(Member::RefreshToken, storage, in_body),
                refresh_expires_in: f.num(Member::RefreshExpiresIn),
                scope: f.text(Member::Scope, storage, in_body),
                message: f.text(Member::Message, storage, in_body),
            }),
            #[cfg(feature = "device-flow")]
            Kind::Device => Response::DeviceAuthorization(DeviceAuthorization {
                device_code: f.text(Member::DeviceCode, storage, in_body).unwrap_or(""),
                user_code: f.text(Member::UserCode, storage, in_body).unwrap_or(""),
                verification_uri: f
                    .text(Member::VerificationUri, storage, in_body)
                    .unwrap_or(""),
                verification_uri_complete: f.text(
                    Member::VerificationUriComplete,
                    storage,
                    in_body,
                ),
                expires_in: f.num(Member::ExpiresIn).unwrap_or(0),
                interval: f.num(Member::Interval),
            }),
            Kind::Revoked => Response::Revoked,
            Kind::Error(body) => {
                let error = f.text(Member::Error, storage, in_body);
                Response::Error(ErrorResponse {
                    status: self.status,
                    code: error.map_or(ErrorCode::None, ErrorCode::parse),
                    error,
                    description: f.text(Member::ErrorDescription, storage, in_body),
                    uri: f.text(Member::ErrorUri, storage, in_body),
                    status_member: f.num(Member::Status).and_then(|s| u16::try_from(s).ok()),
                    message: f.text(Member::Message, storage, in_body),
                    body,
                })
            }
        }
    }

    /// The token response, if this is one.
    pub fn token<'s>(&self, storage: &'s [u8]) -> Option<TokenResponse<'s>> {
        self.view(storage).into_token()
    }

    /// The error response, if this is one.
    pub fn error<'s>(&self, storage: &'s [u8]) -> Option<ErrorResponse<'s>> {
        self.view(storage).into_error()
    }
}

/// A classified response body, borrowing its text from the parser storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'s> {
    /// A successful token response.
    Token(TokenResponse<'s>),
    /// A successful device authorization response (`device-flow` feature).
    #[cfg(feature = "device-flow")]
    DeviceAuthorization(DeviceAuthorization<'s>),
    /// A successful revocation (body ignored, RFC 7009 §2.2).
    Revoked,
    /// An error response (any status, or an `error` member in a 2xx body).
    Error(ErrorResponse<'s>),
}

impl<'s> Response<'s> {
    fn into_token(self) -> Option<TokenResponse<'s>> {
        match self {
            Response::Token(t) => Some(t),
            _ => None,
        }
    }

    fn into_error(self) -> Option<ErrorResponse<'s>> {
        match self {
            Response::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// A successful token response (RFC 6749 §5.1).
///
/// `Debug` shows the lengths of the tokens, never the tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenResponse<'s> {
    /// The access token (Patchworks: `token`). Printable ASCII.
    pub access_token: &'s str,
    /// `token_type` as sent (already checked to be `Bearer`, any case), or
    /// `None` when absent (Patchworks sends none; Bearer is assumed).
    pub token_type: Option<&'s str>,
    /// Lifetime in seconds, 1 ..= [`MAX_LIFETIME_SECS`](crate::MAX_LIFETIME_SECS).
    pub expires_in: Option<u32>,
    /// The refresh token, if issued.
    pub refresh_token: Option<&'s str>,
    /// Refresh-token lifetime in seconds, when the server gives one.
    pub refresh_expires_in: Option<u32>,
    /// Granted scope, if the server states it.
    pub scope: Option<&'s str>,
    /// Informational message (Patchworks: "You have successfully logged in.").
    pub message: Option<&'s str>,
}

impl fmt::Debug for TokenResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field(
                "access_token",
                &format_args!("<redacted, {} bytes>", self.access_token.len()),
            )
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.map(|t| Redacted(t.len())),
            )
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scope", &self.scope)
            .field("message", &self.message)
            .finish()
    }
}

/// Debug stand-in for a secret of the given length.
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

/// A device authorization response (RFC 8628 §3.2). Needs the `device-flow`
/// feature (on by default).
#[cfg(feature = "device-flow")]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeviceAuthorization<'s> {
    /// The device verification code (secret; used to poll the token endpoint).
    pub device_code: &'s str,
    /// The code the user enters.
    pub user_code: &'s str,
    /// Where the user enters it. Like the codes, non-empty printable ASCII
    /// (checked: it is shown to the user).
    pub verification_uri: &'s str,
    /// A URI that includes the user code, if given (checked the same way).
    pub verification_uri_complete: Option<&'s str>,
    /// Lifetime of the codes in seconds.
    pub expires_in: u32,
    /// Minimum polling interval in seconds (RFC 8628 default when absent: 5).
    pub interval: Option<u32>,
}

#[cfg(feature = "device-flow")]
impl fmt::Debug for DeviceAuthorization<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &Redacted(self.device_code.len()))
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

/// The `error` codes of RFC 6749 §5.2 and §4.1.2.1, RFC 6750 §3.1, RFC 7009
/// §2.2.1 and RFC 8628 §3.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No `error` member.
    None,
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `invalid_token` (RFC 6750)
    InvalidToken,
    /// `insufficient_scope` (RFC 6750)
    InsufficientScope,
    /// `unsupported_token_type` (RFC 7009)
    UnsupportedTokenType,
    /// `authorization_pending` (RFC 8628)
    AuthorizationPending,
    /// `slow_down` (RFC 8628)
    SlowDown,
    /// `access_denied`
    AccessDenied,
    /// `expired_token` (RFC 8628)
    ExpiredToken,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// Any other code; the text is in [`ErrorResponse::error`].
    Other,
}

/// The codes [`ErrorCode`] names, in declaration order (after `None`), and
/// their texts in [`ERROR_TEXTS`].
const ERROR_CODES: [ErrorCode; 15] = [
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidClient,
    ErrorCode::InvalidGrant,
    ErrorCode::UnauthorizedClient,
    ErrorCode::UnsupportedGrantType,
    ErrorCode::InvalidScope,
    ErrorCode::InvalidToken,
    ErrorCode::InsufficientScope,
    ErrorCode::UnsupportedTokenType,
    ErrorCode::AuthorizationPending,
    ErrorCode::SlowDown,
    ErrorCode::AccessDenied,
    ErrorCode::ExpiredToken,
    ErrorCode::ServerError,
    ErrorCode::TemporarilyUnavailable,
];

/// The texts of [`ERROR_CODES`], in the same order, each followed by a space
/// (one string instead of a table of string references: half the flash).
const ERROR_TEXTS: &str = "invalid_request invalid_client invalid_grant unauthorized_client \
    unsupported_grant_type invalid_scope invalid_token insufficient_scope \
    unsupported_token_type authorization_pending slow_down access_denied expired_token \
    server_error temporarily_unavailable ";

impl ErrorCode {
    /// Maps an `error` value (case-sensitive, as RFC 6749 defines it).
    pub fn parse(s: &str) -> Self {
        let mut rest = ERROR_TEXTS.as_bytes();
        for code in ERROR_CODES {
            let n = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            let (text, tail) = rest.split_at_checked(n).unwrap_or_default();
            if same_bytes(text, s.as_bytes()) {
                return code;
            }
            rest = tail.get(1..).unwrap_or_default();
        }
        ErrorCode::Other
    }

    /// The code as RFC text (`"invalid_grant"`), `""` for `None` and `Other`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::None | ErrorCode::Other => "",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An error response (RFC 6749 §5.2; Fentu adds `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorResponse<'s> {
    /// HTTP status of the response.
    pub status: u16,
    /// The `error` code, mapped.
    pub code: ErrorCode,
    /// The `error` text as sent.
    pub error: Option<&'s str>,
    /// `error_description`.
    pub description: Option<&'s str>,
    /// `error_uri`.
    pub uri: Option<&'s str>,
    /// A `status` member in the body (Fentu), if numeric.
    pub status_member: Option<u16>,
    /// A `message` member (Patchworks and others).
    pub message: Option<&'s str>,
    /// Whether the body was JSON, empty, or unreadable.
    pub body: ErrorBody,
}

/// Parses a complete body in one call.
///
/// The same rules and errors as [`BodyParser`], with one difference in where
/// text lands: plain string values (printable ASCII, no escapes; the usual
/// token) may be borrowed from `body` instead of being copied into
/// `storage`, so the result borrows both. Only values with escapes must be
/// decoded into the storage. The capacity check still counts every text
/// member, so the storage needed is the same whether a value was borrowed or
/// not, on every target (on 64-bit hosts plain values are borrowed, on
/// Cortex-M they are copied).
pub fn parse_body<'b>(
    expect: Expect,
    status: u16,
    keys: KeyTable,
    body: &'b [u8],
    storage: &mut [u8],
) -> Result<Parsed<'b>> {
    let mut p = BodyParser::new(expect, status, keys);
    #[cfg(target_pointer_width = "64")]
    {
        p.s.borrow = true;
    }
    p.feed(storage, body)?;
    let outcome = p.finish_in(storage, body)?;
    #[cfg(not(target_pointer_width = "64"))]
    let body = "";
    #[cfg(target_pointer_width = "64")]
    let body = if outcome.fields.borrowed == 0 {
        ""
    } else {
        // A body the scanner accepted is UTF-8 throughout (strings are
        // checked, everything else is ASCII): this turns it into `&str` for
        // the borrowed views, one validation of the whole body.
        crate::utf8(body).ok_or(Error::Json {
            kind: crate::JsonError::InvalidUtf8,
            offset: 0,
        })?
    };
    Ok(Parsed { outcome, body })
}

/// A body parsed whole by [`parse_body`]: the [`Outcome`], with the text
/// members that were borrowed from the body. View it with
/// [`Parsed::view`], passing the same storage.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'b> {
    outcome: Outcome,
    /// The whole body if any member was borrowed from it, else empty.
    body: &'b str,
}

/// Like [`Outcome`]'s: never the body (it holds the tokens).
impl fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parsed")
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl<'b> Parsed<'b> {
    /// The HTTP status of the response.
    pub fn status(&self) -> u16 {
        self.outcome.status()
    }

    /// Whether the response is a success (token, device authorization, or
    /// revocation) rather than an error.
    pub fn is_success(&self) -> bool {
        self.outcome.is_success()
    }

    /// Typed view of the response, borrowing text from the body and from
    /// `storage` (the buffer passed to [`parse_body`]).
    pub fn view<'s>(&self, storage: &'s [u8]) -> Response<'s>
    where
        'b: 's,
    {
        self.outcome.view_in(storage, self.body)
    }

    /// The token response, if this is one.
    pub fn token<'s>(&self, storage: &'s [u8]) -> Option<TokenResponse<'s>>
    where
        'b: 's,
    {
        self.view(storage).into_token()
    }

    /// The error response, if this is one.
    pub fn error<'s>(&self, storage: &'s [u8]) -> Option<ErrorResponse<'s>>
    where
        'b: 's,
    {
        self.view(storage).into_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_in_any_case_and_nothing_else() {
        extern crate std;
        use std::vec::Vec;
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Every case mix of "bearer".
        for mask in 0..64u32 {
            let t = b"bearer"
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    if mask >> i & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect::<Vec<u8>>();
            cases.push(t);
        }
        // One byte changed to anything, and other lengths.
        for i in 0..6 {
            for b in 0..=255u8 {
                let mut t = b"Bearer".to_vec();
                t[i] = b;
                cases.push(t);
            }
        }
        for t in [
            &b""[..],
            b"bearer ",
            b"bear",
            b" bearer",
            b"bearerx",
            b"BEARER\0",
        ] {
            cases.push(t.to_vec());
        }
        for t in cases {
            assert_eq!(is_bearer(&t), t.eq_ignore_ascii_case(b"bearer"), "{t:?}");
        }
    }

    #[test]
    fn error_codes_round_trip() {
        for code in ERROR_CODES {
            assert_eq!(ErrorCode::parse(code.as_str()), code, "{code:?}");
        }
        assert_eq!(ERROR_TEXTS.split(' ').filter(|t| !t.is_empty()).count(), 15);
        for other in [
            "",
            " ",
            "invalid",
            "invalid_request ",
            "Invalid_request",
            "x",
        ] {
            assert_eq!(ErrorCode::parse(other), ErrorCode::Other, "{other:?}");
        }
        assert_eq!(ErrorCode::None.as_str(), "");
        assert_eq!(ErrorCode::Other.as_str(), "");
    }

    fn parse(status: u16, body: &str) -> Result<(Parsed<'_>, [u8; 512])> {
        let mut storage = [0u8; 512];
        let o = parse_body(
            Expect::Token,
            status,
            STANDARD_KEYS,
            body.as_bytes(),
            &mut storage,
        )?;
        Ok((o, storage))
    }

    /// `parse_body` leaves plain values in the body (on 64-bit hosts) and
    /// decodes the others into the storage; either way the views, the
    /// capacity rule and its error are those of the streaming parser, which
    /// copies everything.
    #[test]
    fn parse_body_borrows_plain_values_and_counts_them() {
        let body = b"\xef\xbb\xbf{\"access_token\":\"abc\\/def\",\"refresh_token\":\"plain-r\",\n\"scope\":\"a b\",\"token_type\":\"bearer\"}";
        // Decoded text: 7 + 7 + 3 + 6 bytes.
        let needed = 23;
        let mut storage = [0u8; 23];
        let parsed = parse_body(Expect::Token, 200, STANDARD_KEYS, body, &mut storage).unwrap();
        let t = parsed.token(&storage).unwrap();
        assert_eq!(t.access_token, "abc/def");
        assert_eq!(t.refresh_token, Some("plain-r"));
        assert_eq!(t.scope, Some("a b"));
        assert_eq!(t.token_type, Some("bearer"));
        let in_storage = |s: &str| storage.as_ptr_range().contains(&s.as_ptr());
        let in_body = |s: &str| body.as_ptr_range().contains(&s.as_ptr());
        assert!(
            in_storage(t.access_token),
            "escaped: decoded into the storage"
        );
        for plain in [t.refresh_token.unwrap(), t.scope.unwrap()] {
            if cfg!(target_pointer_width = "64") {
                assert!(in_body(plain), "{plain:?} borrowed");
            } else {
                assert!(in_storage(plain), "{plain:?} copied");
            }
        }
        // The streaming parser gives the same view from the storage alone.
        let mut copied = [0u8; 23];
        let mut p = BodyParser::new(Expect::Token, 200, STANDARD_KEYS);
        p.feed(&mut copied, body).unwrap();
        let o = p.finish(&copied).unwrap();
        assert_eq!(o.token(&copied), parsed.token(&storage));
        // One byte short: the same error, borrowed text counted as copied.
        let mut short = [0u8; 22];
        let err = Some(Error::capacity_exceeded(needed, 22));
        assert_eq!(
            parse_body(Expect::Token, 200, STANDARD_KEYS, body, &mut short).err(),
            err
        );
        let mut p = BodyParser::new(Expect::Token, 200, STANDARD_KEYS);
        p.feed(&mut short, body).unwrap();
        assert_eq!(p.finish(&short).err(), err);
        // Debug never shows the body (it holds the tokens).
        struct Buf([u8; 512], usize);
        impl fmt::Write for Buf {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let end = self.1 + s.len();
                self.0
                    .get_mut(self.1..end)
                    .ok_or(fmt::Error)?
                    .copy_from_slice(s.as_bytes());
                self.1 = end;
                Ok(())
            }
        }
        let mut out = Buf([0; 512], 0);
        fmt::write(&mut out, format_args!("{parsed:?}")).unwrap();
        let shown = core::str::from_utf8(&out.0[..out.1]).unwrap();
        assert!(shown.starts_with("Parsed"), "{shown}");
        assert!(
            !shown.contains("plain-r") && !shown.contains("abc"),
            "{shown}"
        );
    }

    #[test]
    fn rfc6749_5_1_example() {
        let body = r#"{
       "access_token":"2YotnFZFEjr1zCsicMWpAA",
       "token_type":"example",
       "expires_in":3600,
       "refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA",
       "example_parameter":"example_value"
     }"#;
        // token_type "example" is not Bearer.
        assert_eq!(
            parse(200, body).err(),
            Some(Error::Response(ResponseError::UnsupportedTokenType))
        );
        let body = body.replace("\"example\"", "\"bearer\"");
        let (o, s) = parse(200, &body).unwrap();
        let t = o.token(&s).unwrap();
        assert_eq!(t.access_token, "2YotnFZFEjr1zCsicMWpAA");
        assert_eq!(t.refresh_token, Some("tGzv3JOkF0XG5Qx2TlKWIA"));
        assert_eq!(t.expires_in, Some(3600));
    }
}
