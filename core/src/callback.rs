//! The redirect back from the authorization server: the authorization
//! response of the code flow (RFC 6749 §4.1.2, §4.1.2.1) with its `iss`
//! (RFC 9207).
//!
//! [`parse`] reads the query of the URL the browser was sent to (`code`,
//! `state`, `iss`, `error`, `error_description`), decodes it into a buffer
//! of the caller's and refuses what a client must refuse: a parameter given
//! twice, malformed percent-escapes, control characters, invalid UTF-8, a
//! missing `code` or `state`. [`Callback::check`] compares `state` (in
//! constant time) and, where the server advertises RFC 9207
//! (`authorization_response_iss_parameter_supported`) or sends one, `iss`.
//!
//! A session in authorization-code mode does all of it in one call:
//! [`Session::on_authorization_callback`](crate::session::SessionIn::on_authorization_callback).
//!
//! Feature `redirect` (default on). A device that gets `code` and `state`
//! some other way leaves it out and passes them to
//! [`Session::set_authorization_code`](crate::session::SessionIn::set_authorization_code).
//!
//! ```
//! use fieldauth::callback::{self, Callback};
//!
//! let url = "https://app.example/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz&iss=https%3A%2F%2Fas.example";
//! let mut buf = [0u8; 128];
//! let cb = callback::parse(url, &mut buf)?;
//! cb.check("xyz", Some("https://as.example"))?;
//! let Callback::Code { code, .. } = cb else { unreachable!() };
//! assert_eq!(code, "SplxlOBeZQQYbYS6WxSbIA");
//!
//! // The user declined: a typed error, with the server's description.
//! let mut buf = [0u8; 128];
//! let cb = callback::parse("/cb?error=access_denied&error_description=no+thanks&state=xyz", &mut buf)?;
//! assert!(matches!(cb, Callback::Denied { error_description: Some("no thanks"), .. }));
//! assert_eq!(
//!     cb.check("xyz", None),
//!     Err(fieldauth::Error::Response(fieldauth::ResponseError::AuthorizationDenied(
//!         fieldauth::body::ErrorCode::AccessDenied
//!     )))
//! );
//! # Ok::<(), fieldauth::Error>(())
//! ```

use core::ops::Range;

use crate::body::ErrorCode;
use crate::error::{Error, Field, InputError, ResponseError, Result};
use crate::write::same_secret;

/// What the redirect brought, decoded (the texts live in the buffer given to
/// [`parse`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Callback<'b> {
    /// The authorization code: exchange it (after [`Callback::check`]).
    Code {
        /// `code`.
        code: &'b str,
        /// `state`, to compare with the one the login started with.
        state: &'b str,
        /// `iss` (RFC 9207), if the server sent it.
        iss: Option<&'b str>,
    },
    /// The server refused: `error` (and its description) instead of a code.
    Denied {
        /// `error`, classified.
        error: ErrorCode,
        /// `error` as sent (for codes [`ErrorCode`] does not name).
        error_text: &'b str,
        /// `error_description`, if sent.
        error_description: Option<&'b str>,
        /// `state`, if sent.
        state: Option<&'b str>,
        /// `iss`, if sent.
        iss: Option<&'b str>,
    },
}

impl core::fmt::Debug for Callback<'_> {
    /// The code is a credential: never shown.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Callback::Code { iss, .. } => f
                .debug_struct("Code")
                .field("code", &"<redacted>")
                .field("state", &"<redacted>")
                .field("iss", iss)
                .finish(),
            Callback::Denied {
                error,
                error_description,
                iss,
                ..
            } => f
                .debug_struct("Denied")
                .field("error", error)
                .field("error_description", error_description)
                .field("iss", iss)
                .finish(),
        }
    }
}

impl<'b> Callback<'b> {
    /// Checks the response against the login it answers: `state` must equal
    /// `expected_state` (constant-time comparison), and `iss` must equal
    /// `expected_issuer` when one is given (the server advertises RFC 9207:
    /// a missing `iss` is then refused too). With `expected_issuer` `None`,
    /// `iss` is not checked.
    ///
    /// Errors, in this order: `InvalidInput { State, Mismatch }`,
    /// `InvalidInput { Issuer, Missing | Mismatch }` (a response that fails
    /// these is not from the login the client started: ignore it), then
    /// `Response(AuthorizationDenied(code))` for a [`Callback::Denied`]
    /// that passed them.
    pub fn check(&self, expected_state: &str, expected_issuer: Option<&str>) -> Result<()> {
        let (state, iss) = match *self {
            Callback::Code { state, iss, .. } => (Some(state), iss),
            Callback::Denied { state, iss, .. } => (state, iss),
        };
        if !same_secret(state.unwrap_or(""), expected_state) || state.is_none() {
            return Err(Error::input(Field::State, InputError::Mismatch));
        }
        if let Some(expected) = expected_issuer {
            match iss {
                None => return Err(Error::input(Field::Issuer, InputError::Missing)),
                Some(i) if i != expected => {
                    return Err(Error::input(Field::Issuer, InputError::Mismatch))
                }
                Some(_) => {}
            }
        }
        match *self {
            Callback::Code { .. } => Ok(()),
            Callback::Denied { error, .. } => {
                Err(Error::Response(ResponseError::AuthorizationDenied(error)))
            }
        }
    }
}

/// The parameters [`parse`] reads, in [`Spans`] order.
const NAMES: [&str; 5] = ["code", "state", "iss", "error", "error_description"];
const FIELDS: [Field; 5] = [
    Field::Code,
    Field::State,
    Field::Issuer,
    Field::Callback,
    Field::Callback,
];
/// The bit of each parameter in [`parse_spans`]'s `wanted`.
const BITS: [usize; 5] = [1, 2, 4, 8, 16];
pub(crate) const P_CODE: usize = 0;
pub(crate) const P_STATE: usize = 1;
pub(crate) const P_ISS: usize = 2;
pub(crate) const P_ERROR: usize = 3;
const P_DESCRIPTION: usize = 4;

/// Where each parameter's decoded text lies in the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spans {
    pub(crate) at: [Option<(usize, usize)>; 5],
}

impl Spans {
    pub(crate) fn range(&self, i: usize) -> Option<Range<usize>> {
        let (s, l) = (*self.at.get(i)?)?;
        Some(s..s.checked_add(l)?)
    }
}

/// Parses the redirect: a whole URL (`https://app/cb?code=…`), a target
/// (`/cb?code=…`) or a bare query (`code=…&state=…`). A fragment (`#…`) is
/// ignored; parameters other than the five it reads are skipped. Values are
/// form-decoded (`%XX`, `+` as space) into `buf`.
///
/// Errors: [`Error::BufferTooSmall`] with the bytes the decoded values need;
/// `InvalidInput { field, Duplicate }` for a parameter given twice;
/// `InvalidInput { field, InvalidCharacter }` for a malformed escape or
/// invalid UTF-8, `ControlCharacter` for a decoded control character;
/// `InvalidInput { Code | State, Missing }` when neither `code` and
/// `state` nor `error` were sent, and `Empty` for an empty code.
pub fn parse<'b>(url_or_query: &str, buf: &'b mut [u8]) -> Result<Callback<'b>> {
    let spans = parse_spans(url_or_query, buf, usize::MAX)?;
    spans.callback(buf)
}

impl Spans {
    /// The callback the parameters decoded into `buf` make (a parameter
    /// not decoded reads as absent).
    pub(crate) fn callback<'b>(&self, buf: &'b [u8]) -> Result<Callback<'b>> {
        let text = |i: usize| -> Option<&'b str> {
            let r = self.range(i)?;
            core::str::from_utf8(buf.get(r)?).ok()
        };
        if let Some(error_text) = text(P_ERROR) {
            return Ok(Callback::Denied {
                error: ErrorCode::parse(error_text),
                error_text,
                error_description: text(P_DESCRIPTION),
                state: text(P_STATE),
                iss: text(P_ISS),
            });
        }
        match (text(P_CODE), text(P_STATE)) {
            (Some(code), Some(state)) => Ok(Callback::Code {
                code,
                state,
                iss: text(P_ISS),
            }),
            (None, _) => Err(Error::input(Field::Code, InputError::Missing)),
            (Some(_), None) => Err(Error::input(Field::State, InputError::Missing)),
        }
    }
}

/// The first position of `b` in `s` (byte search: `str::find` with a
/// `char` pattern keeps a panic path).
fn find(s: &[u8], b: u8) -> Option<usize> {
    s.iter().position(|&x| x == b)
}

/// The query of `url_or_query`, without a fragment.
fn query_of(s: &[u8]) -> &[u8] {
    let s = match find(s, b'#') {
        Some(i) => s.get(..i).unwrap_or_default(),
        None => s,
    };
    match find(s, b'?') {
        Some(i) => s.get(i.saturating_add(1)..).unwrap_or_default(),
        // No '?': a bare query, unless it looks like a URL or path.
        None if s.first() == Some(&b'/') || s.windows(3).any(|w| w == b"://") => &[],
        None => s,
    }
}

/// Decodes the parameters named in [`NAMES`] whose bit is set in `wanted`
/// into `buf`, one after the other in the order they appear, and returns
/// where each lies. Every parameter is checked (duplicates, escapes) even
/// when not stored.
pub(crate) fn parse_spans(url_or_query: &str, buf: &mut [u8], wanted: usize) -> Result<Spans> {
    let mut spans = Spans::default();
    let mut seen = 0usize;
    let mut used = 0usize;
    let mut overflow = false;
    for (name, value) in crate::params::pairs(query_of(url_or_query.as_bytes())) {
        let Some(i) = NAMES
            .iter()
            .position(|n| crate::write::same_bytes(n.as_bytes(), name))
        else {
            continue;
        };
        let field = FIELDS.get(i).copied().unwrap_or(Field::Callback);
        let bit = BITS.get(i).copied().unwrap_or(0);
        if seen & bit != 0 {
            return Err(Error::input(field, InputError::Duplicate));
        }
        seen |= bit;
        let start = used;
        let store = wanted & bit != 0 && !overflow;
        // Decoded (and checked: escapes, controls, UTF-8) into the buffer
        // when stored, else only checked.
        let mut out = if store { buf.get_mut(start..) } else { None };
        let mut k = 0usize;
        let n = crate::params::decoded(field, value, &mut |b| {
            if let Some(slot) = out.as_deref_mut().and_then(|o| o.get_mut(k)) {
                *slot = b;
            }
            k = k.saturating_add(1);
        })?;
        if wanted & bit == 0 {
            continue;
        }
        used = used.saturating_add(n);
        if used > buf.len() {
            overflow = true;
            continue;
        }
        if let Some(slot) = spans.at.get_mut(i) {
            *slot = Some((start, n));
        }
    }
    if overflow {
        return Err(Error::buffer_too_small(used));
    }
    if spans
        .at
        .get(P_CODE)
        .copied()
        .flatten()
        .is_some_and(|(_, l)| l == 0)
        && seen & (1 << P_ERROR) == 0
    {
        return Err(Error::input(Field::Code, InputError::Empty));
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// `parse(q)` into a buffer `b` of the caller's (Miri checks for leaks).
    macro_rules! parsed {
        ($b:ident, $q:expr) => {{
            $b = [0u8; 256];
            parse($q, &mut $b)
        }};
    }

    #[test]
    fn code_state_iss_in_every_form() {
        for q in [
            "https://app.example/cb?code=a%2Bb+c&state=s1&iss=https%3A%2F%2Fas",
            "/cb?state=s1&code=a%2Bb+c&iss=https%3A%2F%2Fas#frag",
            "code=a%2Bb+c&state=s1&x=1&iss=https%3A%2F%2Fas",
            "?code=a%2Bb+c&&state=s1&iss=https%3A%2F%2Fas&session_state=z",
        ] {
            let mut b: [u8; 256];
            let cb = parsed!(b, q).unwrap();
            assert_eq!(
                cb,
                Callback::Code {
                    code: "a+b c",
                    state: "s1",
                    iss: Some("https://as")
                },
                "{q}"
            );
            assert_eq!(cb.check("s1", Some("https://as")), Ok(()));
            assert_eq!(cb.check("s1", None), Ok(()));
            assert_eq!(
                cb.check("s2", None),
                Err(Error::input(Field::State, InputError::Mismatch))
            );
            assert_eq!(
                cb.check("s1", Some("https://evil")),
                Err(Error::input(Field::Issuer, InputError::Mismatch))
            );
        }
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, Error)] = &[
            (
                "code=a&code=b&state=s",
                Error::input(Field::Code, InputError::Duplicate),
            ),
            (
                "code=a&state=s&state=s",
                Error::input(Field::State, InputError::Duplicate),
            ),
            (
                "code=a%zz&state=s",
                Error::input(Field::Code, InputError::InvalidCharacter),
            ),
            (
                "code=a%2&state=s",
                Error::input(Field::Code, InputError::InvalidCharacter),
            ),
            (
                "code=a%0D%0AX&state=s",
                Error::input(Field::Code, InputError::ControlCharacter),
            ),
            (
                "code=%FF&state=s",
                Error::input(Field::Code, InputError::InvalidCharacter),
            ),
            ("state=s", Error::input(Field::Code, InputError::Missing)),
            ("code=a", Error::input(Field::State, InputError::Missing)),
            (
                "code=&state=s",
                Error::input(Field::Code, InputError::Empty),
            ),
            (
                "https://app/cb",
                Error::input(Field::Code, InputError::Missing),
            ),
        ];
        for (q, e) in cases {
            assert_eq!(parse(q, &mut [0u8; 256]).map(|_| ()), Err(*e), "{q}");
        }
        let mut b: [u8; 256];
        let cb = parsed!(b, "code=a&state=s").unwrap();
        assert_eq!(
            cb.check("s", Some("https://as")),
            Err(Error::input(Field::Issuer, InputError::Missing))
        );
    }

    #[test]
    fn denied() {
        let mut b: [u8; 256];
        let cb = parsed!(
            b,
            "error=access_denied&error_description=User+said+no&state=s&iss=i"
        )
        .unwrap();
        assert_eq!(
            cb,
            Callback::Denied {
                error: ErrorCode::AccessDenied,
                error_text: "access_denied",
                error_description: Some("User said no"),
                state: Some("s"),
                iss: Some("i"),
            }
        );
        assert_eq!(
            cb.check("s", Some("i")),
            Err(Error::Response(ResponseError::AuthorizationDenied(
                ErrorCode::AccessDenied
            )))
        );
        // A denial for another login is a mismatch first.
        assert_eq!(
            cb.check("t", None),
            Err(Error::input(Field::State, InputError::Mismatch))
        );
        let mut b: [u8; 256];
        let cb = parsed!(b, "error=consent_required").unwrap();
        assert!(matches!(
            cb,
            Callback::Denied {
                error: ErrorCode::Other,
                error_text: "consent_required",
                state: None,
                ..
            }
        ));
        assert_eq!(
            cb.check("s", None),
            Err(Error::input(Field::State, InputError::Mismatch))
        );
    }

    #[test]
    fn buffer_sizes() {
        let q = "code=abcdef&state=0123456789&iss=x";
        for len in 0..17 {
            let mut buf = std::vec![0u8; len];
            assert_eq!(
                parse(q, &mut buf).map(|_| ()),
                Err(Error::buffer_too_small(17)),
                "{len}"
            );
        }
        let mut buf = [0u8; 17];
        assert!(parse(q, &mut buf).is_ok());
    }

    #[test]
    fn debug_hides_code_and_state() {
        let mut b: [u8; 256];
        let cb = parsed!(b, "code=SECRETCODE&state=SECRETSTATE").unwrap();
        let d = std::format!("{cb:?}");
        assert!(!d.contains("SECRET"), "{d}");
    }
}
