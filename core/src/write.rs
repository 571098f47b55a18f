//! Output into caller buffers, and the byte encodings requests need.
//!
//! [`Writer`] writes into a caller `&mut [u8]` and keeps counting past the end,
//! so a too-small buffer yields [`Error::BufferTooSmall`] with the exact size
//! the whole output needs; callers can also run it over an empty buffer as a
//! pure length calculation. The encoders (form-urlencoding, JSON string
//! escaping, base64, decimal numbers) stream straight into a writer: no
//! intermediate buffers.

use crate::error::{Error, Field, InputError, Result};

/// A cursor over a caller buffer that counts every byte it is asked to write,
/// including those that do not fit.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer that fills `buf` from the start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Bytes written or counted so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether everything written so far fit into the buffer.
    pub fn fits(&self) -> bool {
        self.len <= self.buf.len()
    }

    /// Appends one byte.
    #[inline]
    pub fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
        }
        self.len = self.len.saturating_add(1);
    }

    /// Appends bytes.
    #[inline]
    pub fn bytes(&mut self, s: &[u8]) {
        match self.len.checked_add(s.len()) {
            Some(end) => {
                if let Some(dst) = self.buf.get_mut(self.len..end) {
                    copy(dst, s);
                }
                self.len = end;
            }
            None => self.len = usize::MAX,
        }
    }

    /// Appends a string.
    #[inline]
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Appends `n` in decimal.
    pub fn decimal(&mut self, n: u64) {
        let mut tmp = [0u8; 20];
        let digits = format_decimal(n, &mut tmp);
        self.bytes(digits);
    }

    /// Appends `s` form-urlencoded (`application/x-www-form-urlencoded`, as the
    /// WHATWG URL standard serializes it: `*-._` and alphanumerics kept, space
    /// as `+`, everything else `%XX` with upper-case hex).
    pub fn form(&mut self, s: &[u8]) {
        let worst = s.len().saturating_mul(3);
        let Some(out) = self.buf.get_mut(self.len..).filter(|o| o.len() >= worst) else {
            // Near the end of the buffer: write what fits, count the rest.
            for &b in s {
                if is_form_safe(b) {
                    self.byte(b);
                } else if b == b' ' {
                    self.byte(b'+');
                } else {
                    self.percent(b);
                }
            }
            return;
        };
        // Room for the worst case: encode straight into the buffer.
        let mut o = 0usize;
        for &b in s {
            if is_form_safe(b) {
                if let Some(d) = out.get_mut(o) {
                    *d = b;
                }
                o = o.wrapping_add(1);
            } else if b == b' ' {
                if let Some(d) = out.get_mut(o) {
                    *d = b'+';
                }
                o = o.wrapping_add(1);
            } else {
                if let Some([p, h, l]) = out.get_mut(o..o.wrapping_add(3)) {
                    *p = b'%';
                    *h = hex_upper(b >> 4);
                    *l = hex_upper(b & 0x0f);
                }
                o = o.wrapping_add(3);
            }
        }
        self.len = self.len.saturating_add(o);
    }

    /// Appends `%XX` for one byte.
    pub fn percent(&mut self, b: u8) {
        self.bytes(&[b'%', hex_upper(b >> 4), hex_upper(b & 0x0f)]);
    }

    /// Appends `s` as the contents of a JSON string (without the quotes):
    /// `"` and `\` escaped, control characters as `\n`, `\r`, `\t`, `\b`, `\f`
    /// or `\u00XX`; everything else (including non-ASCII UTF-8) verbatim.
    pub fn json_str_contents(&mut self, s: &str) {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            let run = rest
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .unwrap_or(rest.len());
            let (plain, tail) = rest.split_at(run);
            self.bytes(plain);
            let Some((&b, tail)) = tail.split_first() else {
                break;
            };
            match b {
                b'"' => self.bytes(b"\\\""),
                b'\\' => self.bytes(b"\\\\"),
                b'\n' => self.bytes(b"\\n"),
                b'\r' => self.bytes(b"\\r"),
                b'\t' => self.bytes(b"\\t"),
                0x08 => self.bytes(b"\\b"),
                0x0c => self.bytes(b"\\f"),
                _ => {
                    self.bytes(b"\\u00");
                    self.byte(hex_lower(b >> 4));
                    self.byte(hex_lower(b & 0x0f));
                }
            }
            rest = tail;
        }
    }

    /// Appends `s` as a quoted JSON string.
    pub fn json_str(&mut self, s: &str) {
        self.byte(b'"');
        self.json_str_contents(s);
        self.byte(b'"');
    }

    /// Finishes: the number of bytes written, or
    /// [`Error::BufferTooSmall`] with the number needed.
    pub fn finish(self) -> Result<usize> {
        if self.len <= self.buf.len() {
            Ok(self.len)
        } else {
            Err(Error::buffer_too_small(self.len))
        }
    }
}

/// Copies `min(dst.len(), src.len())` bytes. Unlike `copy_from_slice` it has
/// no length-mismatch panic, which survives optimization at opt-level `z`
/// because the standard library keeps that check out of line.
#[inline]
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Bit `b` set: byte `b` passes through form-urlencoding unchanged
/// (`A-Z a-z 0-9 * - . _`).
/// (Bytes 0x00–0x3F in the first word, 0x40–0x7F in the second; none above.)
const FORM_SAFE: [u64; 2] = [0x03ff_6400_0000_0000, 0x07ff_fffe_87ff_fffe];

/// Whether `b` passes through form-urlencoding unchanged.
#[inline]
pub(crate) const fn is_form_safe(b: u8) -> bool {
    let word = match b >> 6 {
        0 => FORM_SAFE[0],
        1 => FORM_SAFE[1],
        _ => 0,
    };
    (word >> (b & 63)) & 1 == 1
}

#[inline]
const fn hex_upper(n: u8) -> u8 {
    let n = n & 0x0f;
    if n < 10 {
        b'0'.wrapping_add(n)
    } else {
        b'A'.wrapping_add(n.wrapping_sub(10))
    }
}

#[inline]
const fn hex_lower(n: u8) -> u8 {
    let n = n & 0x0f;
    if n < 10 {
        b'0'.wrapping_add(n)
    } else {
        b'a'.wrapping_add(n.wrapping_sub(10))
    }
}

/// Formats `n` in decimal into the end of `tmp`, returning the digits.
pub(crate) fn format_decimal(mut n: u64, tmp: &mut [u8; 20]) -> &[u8] {
    let mut start = tmp.len();
    for slot in tmp.iter_mut().rev() {
        *slot = b'0'.wrapping_add((n % 10) as u8);
        n /= 10;
        start = start.saturating_sub(1);
        if n == 0 {
            break;
        }
    }
    tmp.get(start..).unwrap_or(&[])
}

/// The two base64 alphabets (RFC 4648 §4 and §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alphabet {
    /// `+` and `/`, with `=` padding (HTTP Basic).
    Standard,
    /// `-` and `_`, unpadded (PKCE, `state`).
    UrlSafeNoPad,
}

/// Streaming base64 encoder writing into a [`Writer`]: feed bytes in any
/// pieces, then [`Base64::finish`].
#[derive(Debug)]
pub(crate) struct Base64 {
    acc: u32,
    n: u8,
    alphabet: Alphabet,
}

impl Base64 {
    pub(crate) const fn new(alphabet: Alphabet) -> Self {
        Base64 {
            acc: 0,
            n: 0,
            alphabet,
        }
    }

    fn sym(&self, v: u32) -> u8 {
        let v = (v & 0x3f) as u8;
        match v {
            0..=25 => b'A'.wrapping_add(v),
            26..=51 => b'a'.wrapping_add(v.wrapping_sub(26)),
            52..=61 => b'0'.wrapping_add(v.wrapping_sub(52)),
            62 => match self.alphabet {
                Alphabet::Standard => b'+',
                Alphabet::UrlSafeNoPad => b'-',
            },
            _ => match self.alphabet {
                Alphabet::Standard => b'/',
                Alphabet::UrlSafeNoPad => b'_',
            },
        }
    }

    pub(crate) fn push(&mut self, w: &mut Writer<'_>, b: u8) {
        self.acc = (self.acc << 8) | u32::from(b);
        self.n = self.n.wrapping_add(1);
        if self.n == 3 {
            let a = self.acc;
            w.byte(self.sym(a >> 18));
            w.byte(self.sym(a >> 12));
            w.byte(self.sym(a >> 6));
            w.byte(self.sym(a));
            self.acc = 0;
            self.n = 0;
        }
    }

    pub(crate) fn push_all(&mut self, w: &mut Writer<'_>, s: &[u8]) {
        for &b in s {
            self.push(w, b);
        }
    }

    /// Pushes `s` form-urlencoded (for HTTP Basic credentials, RFC 6749 §2.3.1).
    pub(crate) fn push_form(&mut self, w: &mut Writer<'_>, s: &[u8]) {
        for &b in s {
            if is_form_safe(b) {
                self.push(w, b);
            } else if b == b' ' {
                self.push(w, b'+');
            } else {
                self.push(w, b'%');
                self.push(w, hex_upper(b >> 4));
                self.push(w, hex_upper(b & 0x0f));
            }
        }
    }

    pub(crate) fn finish(self, w: &mut Writer<'_>) {
        let pad = self.alphabet == Alphabet::Standard;
        match self.n {
            1 => {
                let a = self.acc << 16;
                w.byte(self.sym(a >> 18));
                w.byte(self.sym(a >> 12));
                if pad {
                    w.bytes(b"==");
                }
            }
            2 => {
                let a = self.acc << 8;
                w.byte(self.sym(a >> 18));
                w.byte(self.sym(a >> 12));
                w.byte(self.sym(a >> 6));
                if pad {
                    w.byte(b'=');
                }
            }
            _ => {}
        }
    }
}

/// Checks a value that goes into an HTTP header (field-value, RFC 9110 §5.5):
/// no control characters other than horizontal tab, no leading/trailing
/// whitespace, not empty.
pub(crate) fn check_header_value(field: Field, v: &[u8]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::input(field, InputError::Empty));
    }
    if v.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Error::input(field, InputError::ControlCharacter));
    }
    if matches!(v.first(), Some(b' ' | b'\t')) || matches!(v.last(), Some(b' ' | b'\t')) {
        return Err(Error::input(field, InputError::InvalidCharacter));
    }
    Ok(())
}

/// Whether `b` is a `tchar` (RFC 9110 §5.6.2), the characters of header names
/// and auth schemes.
#[inline]
pub(crate) const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Checks a header name or auth scheme: a non-empty `token` (RFC 9110).
pub(crate) fn check_token(field: Field, v: &[u8]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::input(field, InputError::Empty));
    }
    for &b in v {
        if b < 0x20 || b == 0x7f {
            return Err(Error::input(field, InputError::ControlCharacter));
        }
        if !is_tchar(b) {
            return Err(Error::input(field, InputError::InvalidCharacter));
        }
    }
    Ok(())
}

/// Checks a credential or parameter value that goes into a body: not empty,
/// and no control characters (CR/LF/NUL would survive encoding but are never
/// legitimate in credentials and are a sign of injection attempts).
pub(crate) fn check_param(field: Field, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(Error::input(field, InputError::Empty));
    }
    if has_control(v.as_bytes()) {
        return Err(Error::input(field, InputError::ControlCharacter));
    }
    Ok(())
}

/// Whether `s` contains a control character (below 0x20, or DEL), eight
/// bytes at a time.
pub(crate) fn has_control(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    for c in &mut words {
        let Ok(a) = <[u8; 8]>::try_from(c) else {
            return true;
        };
        let v = u64::from_le_bytes(a);
        // Bytes below 0x20 (borrow sets the high bit; `!v` drops bytes that
        // already had it) and 0x7F (+1 makes it exactly 0x80).
        let t = v & !HI;
        if ((v.wrapping_sub(LO.wrapping_mul(0x20)) & !v) | (t.wrapping_add(LO) & !v)) & HI != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == 0x7f)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut Writer<'_>)) -> std::string::String {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        f(&mut w);
        let n = w.finish().unwrap();
        std::string::String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    extern crate std;

    #[test]
    fn counts_past_the_end() {
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.str("hello world");
        assert_eq!(w.finish(), Err(Error::BufferTooSmall { needed: 11 }));
        let mut empty = [0u8; 0];
        let mut w = Writer::new(&mut empty);
        w.form(b"a b&c");
        assert_eq!(w.finish(), Err(Error::BufferTooSmall { needed: 7 }));
    }

    #[test]
    fn has_control_matches_bytewise() {
        for b in 0..=255u8 {
            for pos in 0..17 {
                let mut v = std::vec![b'a'; 17];
                v[pos] = b;
                assert_eq!(has_control(&v), b < 0x20 || b == 0x7f, "{b:#x} at {pos}");
                // Neighbours with the high bit set must not confuse it.
                v.iter_mut().filter(|x| **x == b'a').for_each(|x| *x = 0xc3);
                assert_eq!(
                    has_control(&v),
                    b < 0x20 || b == 0x7f,
                    "{b:#x} at {pos} (high)"
                );
            }
        }
    }

    #[test]
    fn form_safe_table_matches_the_definition() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_');
            assert_eq!(is_form_safe(b), want, "{b:#x}");
        }
    }

    #[test]
    fn form_fast_and_slow_paths_agree() {
        let input = "a b+c%d/é*~".as_bytes();
        let full = run(|w| w.form(input));
        for size in 0..full.len() + 2 {
            let mut buf = std::vec![0u8; size];
            let mut w = Writer::new(&mut buf);
            w.form(input);
            match w.finish() {
                Ok(n) => assert_eq!(&buf[..n], full.as_bytes()),
                Err(e) => assert_eq!(e, Error::buffer_too_small(full.len())),
            }
        }
    }

    #[test]
    fn form_encoding_matches_whatwg() {
        assert_eq!(
            run(|w| w.form(b"read:work-orders write:work-orders")),
            "read%3Awork-orders+write%3Awork-orders"
        );
        assert_eq!(
            run(|w| w.form("a*b-c._~+/=%é".as_bytes())),
            "a*b-c._%7E%2B%2F%3D%25%C3%A9"
        );
    }

    #[test]
    fn json_escaping() {
        assert_eq!(
            run(|w| w.json_str("a\"b\\c\nd\u{1}é/")),
            "\"a\\\"b\\\\c\\nd\\u0001é/\""
        );
    }

    #[test]
    fn decimal() {
        for n in [0u64, 7, 10, 3600, u64::MAX] {
            assert_eq!(run(|w| w.decimal(n)), std::format!("{n}"));
        }
    }

    #[test]
    fn base64_matches_the_base64_crate() {
        use base64::Engine;
        for len in 0..40usize {
            let data: std::vec::Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            let std_ = run(|w| {
                let mut b = Base64::new(Alphabet::Standard);
                b.push_all(w, &data);
                b.finish(w);
            });
            assert_eq!(
                std_,
                base64::engine::general_purpose::STANDARD.encode(&data)
            );
            let url = run(|w| {
                let mut b = Base64::new(Alphabet::UrlSafeNoPad);
                b.push_all(w, &data);
                b.finish(w);
            });
            assert_eq!(
                url,
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&data)
            );
        }
    }

    #[test]
    fn header_checks() {
        assert!(check_header_value(Field::HeaderValue, b"Bearer abc").is_ok());
        for bad in [&b"a\r\nb"[..], b"a\nb", b"a\0b", b"", b" a"] {
            assert!(check_header_value(Field::HeaderValue, bad).is_err());
        }
        assert!(check_token(Field::HeaderName, b"X-Api-Key").is_ok());
        assert!(check_token(Field::HeaderName, b"X Api").is_err());
        assert!(check_token(Field::HeaderName, b"X:Api").is_err());
    }
}
