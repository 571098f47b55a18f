//! Output into caller buffers, and the byte encodings requests need.
//!
//! [`Writer`] writes into a caller `&mut [u8]` and keeps counting past the end,
//! so a too-small buffer yields [`Error::BufferTooSmall`] with the exact size
//! the whole output needs; callers can also run it over an empty buffer as a
//! pure length calculation. The encoders (form-urlencoding, JSON string
//! escaping, base64, decimal numbers) stream straight into a writer: no
//! intermediate buffers.

use core::num::{NonZeroU16, NonZeroU32};

use crate::error::{Error, Field, InputError, Result};

/// A cursor over a caller buffer that counts every byte it is asked to write,
/// including those that do not fit.
///
/// A *window* writer ([`Writer::window`]) stores only the bytes from `skip`
/// to `skip + buf.len()` of the output: a device with a 128-byte buffer sends
/// a long request window by window.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    /// Output bytes before this offset are counted but not stored.
    skip: usize,
}

/// The result of a window write: how many bytes were stored, and the length
/// of the whole output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Bytes stored in the buffer (the window's length).
    pub written: usize,
    /// Length of the complete output; the last window ends here.
    pub total: usize,
}

/// The bytes JSON strings escape with a letter, and the letters.
const JSON_SHORT: &[u8; 7] = b"\"\\\n\r\t\x08\x0c";
const JSON_SHORT_AS: &[u8; 7] = b"\"\\nrtbf";

impl<'a> Writer<'a> {
    /// A writer that fills `buf` from the start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer {
            buf,
            len: 0,
            skip: 0,
        }
    }

    /// A writer that stores output bytes `skip .. skip + buf.len()` into
    /// `buf` and counts all of them; finish with [`Writer::finish_window`].
    pub fn window(buf: &'a mut [u8], skip: usize) -> Self {
        Writer { buf, len: 0, skip }
    }

    /// Finishes a window write.
    pub fn finish_window(self) -> Window {
        Window {
            written: self.len.saturating_sub(self.skip).min(self.buf.len()),
            total: self.len,
        }
    }

    /// Bytes written or counted so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether everything written so far fit into the buffer (for window
    /// writers: whether the window is not yet full).
    pub fn fits(&self) -> bool {
        self.len <= self.skip.saturating_add(self.buf.len())
    }

    /// Appends one byte.
    #[inline(never)]
    pub fn byte(&mut self, b: u8) {
        if let Some(slot) = self
            .len
            .checked_sub(self.skip)
            .and_then(|i| self.buf.get_mut(i))
        {
            *slot = b;
        }
        self.len = self.len.saturating_add(1);
    }

    /// Appends bytes.
    #[inline(never)]
    pub fn bytes(&mut self, s: &[u8]) {
        let start = self.len;
        let end = start.saturating_add(s.len());
        // Store the part of [start, end) inside the window.
        let lo = start.max(self.skip);
        let hi = end.min(self.skip.saturating_add(self.buf.len()));
        if lo < hi {
            let dst = self
                .buf
                .get_mut(lo.saturating_sub(self.skip)..hi.saturating_sub(self.skip));
            let src = s.get(lo.saturating_sub(start)..hi.saturating_sub(start));
            if let (Some(d), Some(src)) = (dst, src) {
                copy(d, src);
            }
        }
        self.len = end;
    }

    /// Appends a string.
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
        #[cfg(target_pointer_width = "64")]
        if self.form_direct(s) {
            return;
        }
        for &b in s {
            if is_form_safe(b) {
                self.byte(b);
            } else if b == b' ' {
                self.byte(b'+');
            } else {
                self.percent(b);
            }
        }
    }

    /// [`form`](Self::form)'s fast path, for hosts (the form-body benchmark):
    /// with room for the worst case, encodes straight into the buffer and
    /// returns `true`; near the end of the buffer (or counting only) `false`,
    /// writing nothing. Cortex-M encodes its few short values byte by byte
    /// and keeps the flash.
    #[cfg(target_pointer_width = "64")]
    fn form_direct(&mut self, s: &[u8]) -> bool {
        let worst = s.len().saturating_mul(3);
        let Some(out) = self
            .len
            .checked_sub(self.skip)
            .and_then(|i| self.buf.get_mut(i..))
            .filter(|o| o.len() >= worst)
        else {
            return false;
        };
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
                    *h = hex(b >> 4);
                    *l = hex(b);
                }
                o = o.wrapping_add(3);
            }
        }
        self.len = self.len.saturating_add(o);
        true
    }

    /// Appends `%XX` for one byte.
    pub fn percent(&mut self, b: u8) {
        self.bytes(&[b'%', hex(b >> 4), hex(b)]);
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
            // One table for the short escapes (flash, issue #13).
            self.byte(b'\\');
            match JSON_SHORT.iter().position(|&c| c == b) {
                Some(i) => self.byte(JSON_SHORT_AS.get(i).copied().unwrap_or(b'u')),
                None => {
                    self.bytes(b"u00");
                    self.byte(hex(b >> 4));
                    self.byte(hex(b));
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

    /// [`finish`](Self::finish), zeroing the whole buffer on error so that no
    /// partial output (or secret) is left in it.
    #[inline(never)]
    pub(crate) fn finish_or_wipe(self) -> Result<usize> {
        if self.len <= self.buf.len() {
            Ok(self.len)
        } else {
            self.buf.fill(0);
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

/// A set of ASCII bytes as a 128-bit bitmap (bytes 0x80 and above are never
/// members). One table and one lookup serve every byte class of the crate.
pub(crate) type ByteSet = [u32; 4];

/// The set of the bytes of `chars` (ASCII only; others are ignored).
pub(crate) const fn byte_set_of(chars: &[u8]) -> ByteSet {
    set_from(0, chars)
}

/// The set of the ASCII letters and digits plus the bytes of `extra`.
pub(crate) const fn byte_set(extra: &[u8]) -> ByteSet {
    const ALNUM: u128 = (0x3ff << 48) | (0x07ff_fffe << 64) | (0x07ff_fffe << 96);
    set_from(ALNUM, extra)
}

const fn set_from(mut m: u128, mut chars: &[u8]) -> ByteSet {
    while let [b, rest @ ..] = chars {
        if *b < 128 {
            m |= 1u128.wrapping_shl(*b as u32);
        }
        chars = rest;
    }
    [
        m as u32,
        m.wrapping_shr(32) as u32,
        m.wrapping_shr(64) as u32,
        m.wrapping_shr(96) as u32,
    ]
}

/// Whether `b` is in `set`.
#[inline]
pub(crate) fn in_set(set: &ByteSet, b: u8) -> bool {
    set.get(usize::from(b >> 5))
        .is_some_and(|w| w.wrapping_shr(u32::from(b)) & 1 != 0)
}

/// Bytes that pass through form-urlencoding unchanged (`A-Z a-z 0-9 * - . _`).
pub(crate) const FORM_SAFE: ByteSet = byte_set(b"*-._");

/// `tchar` (RFC 9110 §5.6.2): the characters of header names and auth schemes.
pub(crate) const TCHAR: ByteSet = byte_set(b"!#$%&'*+-.^_`|~");

/// Whether `b` passes through form-urlencoding unchanged.
#[inline]
pub(crate) fn is_form_safe(b: u8) -> bool {
    in_set(&FORM_SAFE, b)
}

/// Upper-case hexadecimal digits.
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The upper-case hex digit of the low four bits of `n`.
#[inline]
fn hex(n: u8) -> u8 {
    HEX.get(usize::from(n & 0x0f)).copied().unwrap_or(b'0')
}

/// Byte-wise equality. (Slice and `str` equality call `memcmp`, which would
/// pull the compiler's generic version into firmware for a few short
/// comparisons.)
#[inline(never)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Constant-time equality of two texts (the length is not hidden): the
/// `state` of an authorization response.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (x, y) in a.bytes().zip(b.bytes()) {
        diff |= x ^ y;
    }
    diff == 0
}

/// [`same_bytes`] ignoring ASCII case (`<[u8]>::eq_ignore_ascii_case`),
/// out of line: one loop for the header words, URL schemes and names
/// instead of one inlined per comparison (flash, issue #13).
#[inline(never)]
pub(crate) fn same_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A whole string of decimal digits (at least one) as a number fitting 64
/// bits.
#[inline(never)]
pub(crate) fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// `(n / d, n % d)` in 32-bit steps over 16-bit limbs: Cortex-M has no
/// 64-bit divide, and the compiler's software one costs almost a kilobyte.
pub(crate) fn div_small(n: u64, d: NonZeroU16) -> (u64, u32) {
    let d = NonZeroU32::from(d);
    let (mut q, mut r) = (0u64, 0u32);
    for shift in [48u32, 32, 16, 0] {
        // r < d < 2^16, so this fits 32 bits.
        let cur = (r << 16) | (n.wrapping_shr(shift) as u32 & 0xffff);
        q = (q << 16) | u64::from(cur / d);
        r = cur % d;
    }
    (q, r)
}

/// Formats `n` in decimal into the end of `tmp`, returning the digits.
pub(crate) fn format_decimal(mut n: u64, tmp: &mut [u8; 20]) -> &[u8] {
    const TEN: NonZeroU16 = match NonZeroU16::new(10) {
        Some(t) => t,
        None => NonZeroU16::MIN,
    };
    let mut start = tmp.len();
    for slot in tmp.iter_mut().rev() {
        let (q, r) = match u32::try_from(n) {
            Ok(m) => (u64::from(m / 10), m % 10),
            Err(_) => div_small(n, TEN),
        };
        *slot = b'0'.wrapping_add(r as u8);
        n = q;
        start = start.saturating_sub(1);
        if n == 0 {
            break;
        }
    }
    tmp.get(start..).unwrap_or(&[])
}

/// The base64url alphabet (RFC 4648 §5); the standard one (§4) differs in
/// the last two symbols, `+` and `/`.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The two base64 alphabets (RFC 4648 §4 and §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alphabet {
    /// `+` and `/`, with `=` padding (HTTP Basic).
    #[cfg(feature = "basic-auth")]
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

    /// The symbol for the low six bits of `v`.
    fn sym(&self, v: u32) -> u8 {
        let c = BASE64URL.get((v & 0x3f) as usize).copied().unwrap_or(b'A');
        match (self.alphabet, c) {
            #[cfg(feature = "basic-auth")]
            (Alphabet::Standard, b'-') => b'+',
            #[cfg(feature = "basic-auth")]
            (Alphabet::Standard, b'_') => b'/',
            _ => c,
        }
    }

    pub(crate) fn push(&mut self, w: &mut Writer<'_>, b: u8) {
        self.acc = (self.acc << 8) | u32::from(b);
        self.n = self.n.wrapping_add(1);
        if self.n == 3 {
            self.flush(w);
        }
    }

    /// Writes the symbols for the `n` (1 to 3) bytes held, padded with `=`
    /// to four for the standard alphabet, and empties the group.
    fn flush(&mut self, w: &mut Writer<'_>) {
        let n = u32::from(self.n);
        // The held bytes, left-aligned in 24 bits.
        let a = self
            .acc
            .wrapping_shl(8u32.wrapping_mul(3u32.wrapping_sub(n)));
        for i in 0..=n {
            w.byte(self.sym(a.wrapping_shr(18u32.wrapping_sub(6u32.wrapping_mul(i)))));
        }
        #[cfg(feature = "basic-auth")]
        if self.alphabet == Alphabet::Standard {
            for _ in n..3 {
                w.byte(b'=');
            }
        }
        self.acc = 0;
        self.n = 0;
    }

    pub(crate) fn push_all(&mut self, w: &mut Writer<'_>, s: &[u8]) {
        for &b in s {
            self.push(w, b);
        }
    }

    /// Pushes `s` form-urlencoded (for HTTP Basic credentials, RFC 6749 §2.3.1).
    #[cfg(feature = "basic-auth")]
    pub(crate) fn push_form(&mut self, w: &mut Writer<'_>, s: &[u8]) {
        for &b in s {
            if is_form_safe(b) {
                self.push(w, b);
            } else if b == b' ' {
                self.push(w, b'+');
            } else {
                self.push(w, b'%');
                self.push(w, hex(b >> 4));
                self.push(w, hex(b));
            }
        }
    }

    pub(crate) fn finish(mut self, w: &mut Writer<'_>) {
        if self.n != 0 {
            self.flush(w);
        }
    }
}

/// Checks a value that goes into an HTTP header (field-value, RFC 9110 §5.5):
/// no control characters other than horizontal tab, no leading/trailing
/// whitespace, not empty.
pub(crate) fn check_header_value(field: Field, v: &[u8]) -> Result<()> {
    let kind = if v.is_empty() {
        InputError::Empty
    } else if v.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        InputError::ControlCharacter
    } else if matches!(v.first(), Some(b' ' | b'\t')) || matches!(v.last(), Some(b' ' | b'\t')) {
        InputError::InvalidCharacter
    } else {
        return Ok(());
    };
    Err(Error::input(field, kind))
}

/// Whether `b` is a `tchar` (RFC 9110 §5.6.2), the characters of header names
/// and auth schemes.
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    in_set(&TCHAR, b)
}

/// Checks that every byte of `v` is in `set`: a control character is
/// [`InputError::ControlCharacter`], any other byte outside the set
/// [`InputError::InvalidCharacter`] (the first offending byte decides).
#[inline(never)]
pub(crate) fn check_chars(field: Field, v: &[u8], set: &ByteSet) -> Result<()> {
    for &b in v {
        if !in_set(set, b) {
            let kind = if b < 0x20 || b == 0x7f {
                InputError::ControlCharacter
            } else {
                InputError::InvalidCharacter
            };
            return Err(Error::input(field, kind));
        }
    }
    Ok(())
}

/// Checks a header name or auth scheme: a non-empty `token` (RFC 9110).
pub(crate) fn check_token(field: Field, v: &[u8]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::input(field, InputError::Empty));
    }
    check_chars(field, v, &TCHAR)
}

/// Checks a credential or parameter value that goes into a body: not empty,
/// and no control characters (CR/LF/NUL would survive encoding but are never
/// legitimate in credentials and are a sign of injection attempts).
pub(crate) fn check_param(field: Field, v: &str) -> Result<()> {
    let kind = if v.is_empty() {
        InputError::Empty
    } else if has_control(v.as_bytes()) {
        InputError::ControlCharacter
    } else {
        return Ok(());
    };
    Err(Error::input(field, kind))
}

/// Whether `s` contains a control character (below 0x20, or DEL), a
/// machine word at a time (8 bytes on 64-bit hosts, 4 on Cortex-M).
pub(crate) fn has_control(s: &[u8]) -> bool {
    const W: usize = core::mem::size_of::<usize>();
    const LO: usize = usize::MAX / 0xff;
    const HI: usize = LO << 7;
    let mut words = s.chunks_exact(W);
    for c in &mut words {
        let Ok(a) = <[u8; W]>::try_from(c) else {
            return true;
        };
        let v = usize::from_le_bytes(a);
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
        // Under Miri (tests/miri.sh) every 7th byte value (and 0x7f), at
        // every 4th position.
        for b in (0..=255u8).filter(|&b| !cfg!(miri) || b % 7 == 0 || b == 0x7f) {
            for pos in (0..17).step_by(if cfg!(miri) { 4 } else { 1 }) {
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
    fn byte_sets_match_their_definitions() {
        let tchar = b"!#$%&'*+-.^_`|~";
        let ipv6 = byte_set_of(b"0123456789abcdefABCDEF:.");
        for b in 0..=255u8 {
            assert_eq!(
                is_tchar(b),
                b.is_ascii_alphanumeric() || tchar.contains(&b),
                "{b:#x}"
            );
            assert_eq!(
                in_set(&ipv6, b),
                b.is_ascii_hexdigit() || b == b':' || b == b'.',
                "{b:#x}"
            );
        }
        assert_eq!(
            check_chars(Field::Url, b"ab\x01c d", &FORM_SAFE),
            Err(Error::input(Field::Url, InputError::ControlCharacter))
        );
        assert_eq!(
            check_chars(Field::Url, b"a d\x01", &FORM_SAFE),
            Err(Error::input(Field::Url, InputError::InvalidCharacter))
        );
        assert_eq!(check_chars(Field::Url, b"a-d", &FORM_SAFE), Ok(()));
    }

    #[test]
    fn decimal_parsing_and_equality() {
        use super::decimal as parse;
        assert_eq!(parse(b"0"), Some(0));
        assert_eq!(parse(b"007"), Some(7));
        assert_eq!(parse(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"1a",
            b" 1",
            b"-1",
            b"1.0",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert!(same_bytes(b"", b""));
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
        for n in [0u64, 9, 10, 65_535, 1 << 32, u64::MAX - 1] {
            let (q, r) = div_small(n, NonZeroU16::new(10).unwrap());
            assert_eq!((q, u64::from(r)), (n / 10, n % 10));
            let (q, r) = div_small(n, NonZeroU16::MAX);
            assert_eq!((q, u64::from(r)), (n / 65_535, n % 65_535));
        }
    }

    #[test]
    fn windows_reassemble_the_output() {
        let emit = |w: &mut Writer<'_>| {
            w.str("POST /oauth/token HTTP/1.1\r\n");
            w.form("client secret: a+b/c%d é".as_bytes());
            w.json_str("quote \" and \\ and \n");
            w.decimal(1_234_567);
            w.byte(b'!');
        };
        let full = run(emit);
        // Under Miri (tests/miri.sh) every 5th window size and the sizes
        // around the whole output.
        let sizes =
            (1..=full.len() + 3).filter(|&n| !cfg!(miri) || n % 5 == 1 || n + 3 >= full.len());
        for size in sizes {
            let mut out = std::vec::Vec::new();
            let mut offset = 0;
            loop {
                let mut buf = std::vec![0u8; size];
                let mut w = Writer::window(&mut buf, offset);
                emit(&mut w);
                let win = w.finish_window();
                assert_eq!(win.total, full.len());
                out.extend_from_slice(&buf[..win.written]);
                offset += win.written;
                if offset >= win.total {
                    break;
                }
                assert!(win.written > 0);
            }
            assert_eq!(
                std::string::String::from_utf8(out).unwrap(),
                full,
                "window {size}"
            );
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
            #[cfg(feature = "basic-auth")]
            {
                let std_ = run(|w| {
                    let mut b = Base64::new(Alphabet::Standard);
                    b.push_all(w, &data);
                    b.finish(w);
                });
                assert_eq!(
                    std_,
                    base64::engine::general_purpose::STANDARD.encode(&data)
                );
            }
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
