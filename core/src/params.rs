//! Extra request parameters given as `application/x-www-form-urlencoded`
//! text (`prompt=consent&login_hint=a%40b.example`): checked once, sent as
//! they are in form bodies and URLs, decoded into JSON bodies. Names are
//! plain (`A-Z a-z 0-9 - . _ ~`); values may use escapes.
//!
//! The extra parameters themselves are feature `extra-params` (default on):
//! without it [`check`] refuses any non-empty text with
//! [`InputError::Unsupported`] and nothing is emitted. [`pairs`] and
//! [`decoded`] stay while the authorization-response parser (feature
//! `redirect`) uses them.

use crate::error::{Error, Field, InputError, Result};
use crate::write::Writer;
#[cfg(feature = "extra-params")]
use crate::write::{byte_set, in_set, same_bytes, ByteSet};

#[cfg(feature = "extra-params")]
/// What extra-parameter text may carry unencoded (RFC 3986 `query` without
/// `#`; `+` for a space).
const TEXT: ByteSet = byte_set(b"-._~!$'()*,;:@/?%+=&");
#[cfg(feature = "extra-params")]
/// What a parameter name may be made of.
const NAME: ByteSet = byte_set(b"-._~");

#[cfg(feature = "extra-params")]
/// Parameter names the requests set themselves: an extra parameter may not
/// repeat (and so override) one of them.
const RESERVED: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "audience",
    "refresh_token",
    "code",
    "code_verifier",
    "redirect_uri",
    "username",
    "password",
    "device_code",
    "token",
    "token_type_hint",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
];

#[cfg(any(feature = "extra-params", feature = "redirect"))]
/// The non-empty `name=value` pairs of `text` (still encoded).
pub(crate) fn pairs(text: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    text.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (
                p.get(..i).unwrap_or_default(),
                p.get(i.saturating_add(1)..).unwrap_or_default(),
            ),
            None => (p, &[][..]),
        })
}

/// Without feature `extra-params`: only empty text is accepted.
#[cfg(not(feature = "extra-params"))]
pub(crate) fn check(field: Field, text: &str) -> Result<()> {
    if text.is_empty() {
        Ok(())
    } else {
        Err(Error::input(field, InputError::Unsupported))
    }
}

/// Checks extra parameters: characters a query may carry as they are
/// (RFC 3986 `query` without `#`; spaces as `+` or `%20`), valid
/// percent-escapes, names that are not empty and not set by fieldauth
/// itself, decoded texts that are UTF-8 without control characters.
#[cfg(feature = "extra-params")]
pub(crate) fn check(field: Field, text: &str) -> Result<()> {
    for &b in text.as_bytes() {
        if !in_set(&TEXT, b) {
            let kind = if b < 0x20 || b == 0x7f {
                InputError::ControlCharacter
            } else {
                InputError::InvalidCharacter
            };
            return Err(Error::input(field, kind));
        }
    }
    for (name, value) in pairs(text.as_bytes()) {
        // Names are plain (letters, digits, `-._~`), so a reserved one
        // cannot hide behind an escape.
        if name.is_empty() {
            return Err(Error::input(field, InputError::Empty));
        }
        if !name.iter().all(|&b| in_set(&NAME, b)) {
            return Err(Error::input(field, InputError::InvalidCharacter));
        }
        if RESERVED.iter().any(|n| same_bytes(n.as_bytes(), name)) {
            return Err(Error::input(field, InputError::Reserved));
        }
        decoded(field, value, &mut |_| {})?;
    }
    Ok(())
}

#[cfg(any(feature = "extra-params", feature = "redirect"))]
/// Form-decodes `encoded` byte by byte into `out` and returns the decoded
/// length; refuses bad escapes, control characters and invalid UTF-8.
/// `out` is a trait object: one copy of the decoder serves the check, the
/// redirect and the JSON bodies (flash, issue #13).
pub(crate) fn decoded(field: Field, encoded: &[u8], out: &mut dyn FnMut(u8)) -> Result<usize> {
    let mut i = 0usize;
    let mut n = 0usize;
    let mut utf8 = Utf8::default();
    while let Some(&b) = encoded.get(i) {
        let (byte, step) = match b {
            b'%' => {
                let hi = encoded.get(i.saturating_add(1)).copied().and_then(unhex);
                let lo = encoded.get(i.saturating_add(2)).copied().and_then(unhex);
                match (hi, lo) {
                    (Some(h), Some(l)) => ((h << 4) | l, 3),
                    _ => return Err(Error::input(field, InputError::InvalidCharacter)),
                }
            }
            b'+' => (b' ', 1),
            _ => (b, 1),
        };
        if byte < 0x20 || byte == 0x7f {
            return Err(Error::input(field, InputError::ControlCharacter));
        }
        if !utf8.next(byte) {
            return Err(Error::input(field, InputError::InvalidCharacter));
        }
        out(byte);
        n = n.saturating_add(1);
        i = i.saturating_add(step);
    }
    if !utf8.done() {
        return Err(Error::input(field, InputError::InvalidCharacter));
    }
    Ok(n)
}

#[cfg(any(feature = "extra-params", feature = "redirect"))]
fn unhex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(b.wrapping_sub(b'a' - 10)),
        b'A'..=b'F' => Some(b.wrapping_sub(b'A' - 10)),
        _ => None,
    }
}

#[cfg(any(feature = "extra-params", feature = "redirect"))]
/// An incremental UTF-8 validator (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF).
#[derive(Default)]
struct Utf8 {
    /// Continuation bytes still expected.
    need: u8,
    /// The range the next continuation byte must lie in.
    lo: u8,
    hi: u8,
}

#[cfg(any(feature = "extra-params", feature = "redirect"))]
impl Utf8 {
    fn next(&mut self, b: u8) -> bool {
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                return false;
            }
            self.need = self.need.saturating_sub(1);
            (self.lo, self.hi) = (0x80, 0xbf);
            return true;
        }
        let (need, lo, hi) = match b {
            0x00..=0x7f => return true,
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return false,
        };
        (self.need, self.lo, self.hi) = (need, lo, hi);
        true
    }

    fn done(&self) -> bool {
        self.need == 0
    }
}

/// Appends the pairs to a form body or a query: `&name=value` each (as
/// given: they are already encoded). `first`: no `&` before the first pair.
#[cfg(feature = "extra-params")]
pub(crate) fn emit_form(w: &mut Writer<'_>, text: &str, mut first: bool) {
    for (name, value) in pairs(text.as_bytes()) {
        if !first {
            w.byte(b'&');
        }
        first = false;
        w.bytes(name);
        w.byte(b'=');
        w.bytes(value);
    }
}

/// Appends the pairs to a JSON object as string members, decoded: `,"name":"value"`
/// each (`{` before the first when `first`). Returns whether the object is
/// still empty.
#[cfg(feature = "extra-params")]
pub(crate) fn emit_json(w: &mut Writer<'_>, text: &str, mut first: bool) -> bool {
    for (name, value) in pairs(text.as_bytes()) {
        w.byte(if first { b'{' } else { b',' });
        first = false;
        json_decoded(w, name);
        w.byte(b':');
        json_decoded(w, value);
    }
    first
}

/// A JSON string of the decoded text (checked: UTF-8 without control
/// characters, so only `"` and `\` need escaping).
#[cfg(feature = "extra-params")]
fn json_decoded(w: &mut Writer<'_>, encoded: &[u8]) {
    w.byte(b'"');
    let _ = decoded(Field::ParamName, encoded, &mut |b| match b {
        b'"' => w.bytes(b"\\\""),
        b'\\' => w.bytes(b"\\\\"),
        _ => w.byte(b),
    });
    w.byte(b'"');
}

/// Without feature `extra-params` [`check`] accepted only empty text:
/// nothing to append.
#[cfg(not(feature = "extra-params"))]
pub(crate) fn emit_form(_: &mut Writer<'_>, _: &str, _: bool) {}

/// Without feature `extra-params`: nothing to append (see [`emit_form`]).
#[cfg(not(feature = "extra-params"))]
pub(crate) fn emit_json(_: &mut Writer<'_>, _: &str, first: bool) -> bool {
    first
}

#[cfg(test)]
#[cfg(feature = "extra-params")]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn form(text: &str) -> String {
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        emit_form(&mut w, text, false);
        let n = w.len();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn json(text: &str) -> String {
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        let empty = emit_json(&mut w, text, true);
        if empty {
            w.byte(b'{');
        }
        w.byte(b'}');
        let n = w.len();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn accepted_and_written() {
        let t = "prompt=consent&&login_hint=a%40b.example&nonce=n+1&ui_locales=fr%C3%A9&flag";
        assert_eq!(check(Field::Url, t), Ok(()));
        assert_eq!(
            form(t),
            "&prompt=consent&login_hint=a%40b.example&nonce=n+1&ui_locales=fr%C3%A9&flag="
        );
        let j = json(t);
        assert_eq!(
            j,
            r#"{"prompt":"consent","login_hint":"a@b.example","nonce":"n 1","ui_locales":"fré","flag":""}"#
        );
        let v: serde_json::Value = serde_json::from_str(&json("q=%22%5C")).unwrap();
        assert_eq!(v["q"], "\"\\");
        assert_eq!(json(""), "{}");
        assert_eq!(form(""), "");
    }

    #[test]
    fn refused() {
        let f = Field::Url;
        let cases = [
            ("a=b c", InputError::InvalidCharacter),
            ("a=b#c", InputError::InvalidCharacter),
            ("a=\u{e9}", InputError::InvalidCharacter),
            ("a=b\r\nHost: x", InputError::ControlCharacter),
            ("a=%0d%0a", InputError::ControlCharacter),
            ("a=%zz", InputError::InvalidCharacter),
            ("a=%2", InputError::InvalidCharacter),
            ("a=%C3", InputError::InvalidCharacter),
            ("a=%ED%A0%80", InputError::InvalidCharacter),
            ("=b", InputError::Empty),
            ("grant_type=password", InputError::Reserved),
            ("client_%73ecret=x", InputError::InvalidCharacter),
            ("a+b=1", InputError::InvalidCharacter),
            ("x=1&state=2", InputError::Reserved),
        ];
        for (t, kind) in cases {
            assert_eq!(check(f, t), Err(Error::input(f, kind)), "{t}");
        }
        // Names that merely start like reserved ones are fine.
        assert_eq!(check(f, "codes=1&scopes=2&tokens=3"), Ok(()));
    }

    #[test]
    fn utf8_matches_core() {
        // Under Miri (tests/miri.sh) every third lead byte.
        for a in (0x80..=0xffu8).step_by(if cfg!(miri) { 3 } else { 1 }) {
            for b in [0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0] {
                for tail in [&[][..], &[0x80], &[0x80, 0x80]] {
                    let mut bytes = std::vec![a, b];
                    bytes.extend_from_slice(tail);
                    let mut u = Utf8::default();
                    let ok = bytes.iter().all(|&x| u.next(x)) && u.done();
                    assert_eq!(ok, core::str::from_utf8(&bytes).is_ok(), "{bytes:02x?}");
                }
            }
        }
    }
}
