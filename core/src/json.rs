//! A streaming, allocation-free, non-recursive JSON scanner.
//!
//! The scanner validates a complete JSON text whose top level is an object
//! (RFC 8259: UTF-8, every escape, number grammar, nesting) and reports the
//! members of the top-level object to a [`Sink`]. Input arrives in chunks of
//! any size, from one byte to the whole body; results do not depend on where
//! the chunks split. State is a few dozen bytes; nesting is tracked in a
//! 32-bit stack, so deeper input is rejected with [`JsonError::TooDeep`]
//! instead of exhausting a stack.
//!
//! Only members of the top-level object whose (decoded) name appears in the
//! key table are reported; everything else, including nested values, is
//! validated and skipped. String values are delivered decoded (escapes
//! resolved, surrogate pairs joined), as borrowed runs of the input where no
//! escape intervenes.

use crate::error::{Error, JsonError, ResponseError, Result};

/// Maximum nesting depth of arrays and objects (the top-level object is 1).
pub const MAX_DEPTH: u8 = 32;

/// A JSON number delivered to a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Number {
    /// A leading minus sign.
    pub negative: bool,
    /// The integer value if the number is an integer (no fraction or exponent
    /// part) that fits in a `u32` (every number fieldauth reads is far
    /// smaller); `None` otherwise.
    pub integer: Option<u32>,
}

/// A JSON literal delivered to a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Literal {
    True,
    False,
    Null,
}

/// Receiver of the top-level object's members.
pub(crate) trait Sink {
    /// A top-level member's name ended; `member` is what the key table maps
    /// it to, `None` if it is not in the table. Returns whether the value
    /// should be delivered.
    fn member(&mut self, member: Option<crate::error::Member>) -> Result<bool>;
    /// The wanted value is a string; it begins.
    fn str_start(&mut self) -> Result<()>;
    /// A decoded piece of the wanted string value.
    fn str_part(&mut self, part: &[u8]) -> Result<()>;
    /// The wanted string value ended. `plain` is true when every byte of
    /// its decoded value is printable ASCII (0x20–0x7E) and no escape was
    /// used: the common case, detected for free by the scanner's fast path.
    fn str_end(&mut self, plain: bool) -> Result<()>;
    /// The wanted value is a plain string (printable ASCII, no escapes)
    /// read whole from one chunk: the same as `str_start`, `str_part` (if
    /// not empty) and `str_end(true)`, in one call. `at` is where `value`
    /// starts in the whole input (all chunks so far). Used by the member
    /// fast path (64-bit hosts).
    #[cfg(target_pointer_width = "64")]
    fn str_whole(&mut self, value: &[u8], at: usize) -> Result<()> {
        let _ = at;
        self.str_start()?;
        if !value.is_empty() {
            self.str_part(value)?;
        }
        self.str_end(true)
    }
    /// The wanted value is a number.
    fn number(&mut self, n: Number) -> Result<()>;
    /// The wanted value is `true`, `false` or `null`.
    fn literal(&mut self, l: Literal) -> Result<()>;
    /// The wanted value is an object or array (skipped by the scanner).
    fn nested(&mut self) -> Result<()>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Before the top-level value (whitespace, optional BOM).
    Start,
    /// After `{`: a key or `}`.
    ObjOpen,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// A value.
    Value,
    /// After `[`: a value or `]`.
    ArrOpen,
    /// After a value: `,` or the closing bracket.
    After,
    /// Inside a string.
    Str,
    /// After a backslash.
    Esc,
    /// Inside `\uXXXX`.
    Hex,
    /// Inside a number.
    Num,
    /// Inside a fixed sequence ([`SEQUENCES`]): `true`, `false`, `null`, the
    /// byte-order mark, or the `\u` of a low surrogate.
    Lit,
    /// After the top-level object: only whitespace.
    Done,
    /// An error was returned; nothing more is accepted.
    Failed,
}

// Number sub-states.
const N_MINUS: u8 = 0; // after '-'
const N_ZERO: u8 = 1; // after a leading '0'
const N_INT: u8 = 2; // in integer digits
const N_DOT: u8 = 3; // after '.'
const N_FRAC: u8 = 4; // in fraction digits
const N_E: u8 = 5; // after 'e' / 'E'
const N_ESIGN: u8 = 6; // after exponent sign
const N_EXP: u8 = 7; // in exponent digits

/// Fixed byte sequences read one byte at a time in [`St::Lit`]: the three
/// literals, the UTF-8 byte-order mark, and the `\u` that must follow a high
/// surrogate escape.
const SEQUENCES: [&[u8]; 5] = [b"true", b"false", b"null", b"\xef\xbb\xbf", b"\\u"];
const SEQ_BOM: u8 = 3;
const SEQ_LOW_SURROGATE: u8 = 4;

/// The one-character escapes (after `\`) and what they stand for.
const ESCAPES: &[u8; 8] = b"\"\\/bfnrt";
const UNESCAPED: &[u8; 8] = b"\"\\/\x08\x0c\n\r\t";

/// The length marker of the first byte of an `n`-byte UTF-8 sequence.
const UTF8_LEAD: [u8; 5] = [0, 0, 0xc0, 0xe0, 0xf0];

/// Longest member name the key table may contain.
pub(crate) const KEY_MAX: usize = 32;

/// The scanner state. See the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct Scanner {
    keys: &'static [(&'static [u8], crate::error::Member)],
    offset: u32,
    st: St,
    depth: u8,
    /// Bit `d` set: the container at depth `d + 1` is an array.
    stack: u32,
    in_key: bool,
    /// The current top-level member's value is wanted by the sink.
    want: bool,
    /// The current string has been printable ASCII without escapes so far.
    plain: bool,
    /// Length of the current key; `KEY_MAX + 1` once it is too long.
    key_len: u8,
    /// Decoded bytes of the current top-level key (longer keys are unknown).
    key: [u8; KEY_MAX],
    esc_acc: u16,
    esc_n: u8,
    high: u16,
    utf8_need: u8,
    utf8_lo: u8,
    utf8_hi: u8,
    num_st: u8,
    num_neg: bool,
    num_int: bool,
    num_overflow: bool,
    num_acc: u32,
    lit: u8,
    lit_pos: u8,
}

#[inline]
const fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether `b` ends a plain run: not printable ASCII (0x20–0x7E), or `"`/`\`.
///
/// The range test is written as one signed comparison (`b + 1`, wrapping,
/// is below 0x21 as an `i8` exactly for 0x00–0x1F and 0x7F–0xFF): in the
/// vectorized block scan that is `psubb` + `pcmpgtb`, where the unsigned form
/// takes three instructions and two register copies.
#[inline]
const fn is_special(b: u8) -> bool {
    ((b.wrapping_add(1) as i8) < 0x21) | (b == b'"') | (b == b'\\')
}

/// The machine word the SWAR scans use: 8 bytes on 64-bit hosts, 4 on
/// Cortex-M (64-bit arithmetic there would double the code for no speed).
type Word = usize;
/// Bytes per [`Word`].
const W: usize = core::mem::size_of::<Word>();
const LO: Word = Word::MAX / 0xff;
const HI: Word = LO << 7;

/// High bit set in every byte of `v` (little-endian) that is special (see
/// [`is_special`]). Borrows and carries only ever flag bytes *above* a
/// truly special byte, so the lowest flagged byte is exact:
/// - `v - 0x20` flags bytes below 0x20 and at or above 0xA0;
/// - `v + 0x01` flags 0x7F..=0xFE (0xFF is flagged by the line above);
/// - `(v ^ c) - 0x01` flags bytes equal to `c`, and otherwise only bytes at or
///   above 0x80, which the first two lines flag anyway.
#[inline(always)]
const fn special_mask(v: Word) -> Word {
    let q = v ^ LO.wrapping_mul(b'"' as Word);
    let bs = v ^ LO.wrapping_mul(b'\\' as Word);
    (v.wrapping_sub(LO.wrapping_mul(0x20))
        | v.wrapping_add(LO)
        | q.wrapping_sub(LO)
        | bs.wrapping_sub(LO))
        & HI
}

#[inline(always)]
fn word(c: &[u8]) -> Word {
    match <[u8; W]>::try_from(c) {
        Ok(a) => Word::from_le_bytes(a),
        // Not reached for W-byte inputs; a quote makes the caller stop.
        Err(_) => LO.wrapping_mul(Word::from(b'"')),
    }
}

/// Offset of the first special byte in `pair`, two words long, if any.
#[inline(always)]
fn pair_special(pair: &[u8]) -> Option<usize> {
    let (a, b) = pair.split_at(W);
    let (ma, mb) = (special_mask(word(a)), special_mask(word(b)));
    if ma | mb == 0 {
        return None;
    }
    let off = if ma != 0 {
        ma.trailing_zeros() / 8
    } else {
        (mb.trailing_zeros() / 8).wrapping_add(W as u32)
    };
    Some(off as usize)
}

/// Length of the leading run of `s` that is plain string content: printable
/// ASCII (0x20–0x7E) other than `"` and `\`. Two words at a time.
#[inline]
fn swar_run(s: &[u8]) -> usize {
    let mut n = 0usize;
    let mut blocks = s.chunks_exact(2 * W);
    for c in &mut blocks {
        if let Some(off) = pair_special(c) {
            return n.wrapping_add(off);
        }
        n = n.wrapping_add(2 * W);
    }
    for &b in blocks.remainder() {
        if is_special(b) {
            break;
        }
        n = n.wrapping_add(1);
    }
    n
}

/// Length of the leading plain run of `s` (see [`swar_run`]).
///
/// On x86-64 a run that goes past its first 16 bytes (an access or refresh
/// token) continues 32 bytes per test with [`plain_blocks`], which LLVM
/// compiles to SSE2 byte compares and one `pmovmskb`: about half the
/// instructions per byte of the word-wise scan. Keys and short values end
/// in their first 16 bytes and never get there. Elsewhere (Cortex-M) the
/// word-wise scan does everything: the block test would be byte by byte.
#[inline]
fn plain_run(s: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if let Some((head, rest)) = s.split_first_chunk::<{ 2 * W }>() {
        if let Some(off) = pair_special(head) {
            return off;
        }
        let n = plain_blocks(rest);
        // `n` is at most `rest.len()`: no wrap.
        return (2 * W)
            .wrapping_add(n)
            .wrapping_add(swar_run(rest.get(n..).unwrap_or(&[])));
    }
    swar_run(s)
}

/// Bytes in the leading whole 32-byte blocks of `s` that hold no special
/// byte; the scan stops at the first block that does (or at the last whole
/// block), and [`swar_run`] finds the byte.
///
/// Written for the auto-vectorizer, because the core forbids `unsafe` and so
/// `core::arch`: each flag is a byte (the two 16-byte halves ORed), and the
/// test is a comparison of the 16-byte array with zero, which LLVM lowers to
/// byte compares (`psubb`, `pcmpgtb`, `pcmpeqb`) and one `pmovmskb` (an
/// `any()` over the flags becomes a slow horizontal reduction instead).
#[cfg(target_arch = "x86_64")]
#[inline]
fn plain_blocks(s: &[u8]) -> usize {
    let mut n = 0usize;
    let mut rest = s;
    while let Some((block, tail)) = rest.split_first_chunk::<32>() {
        let (lo, hi) = block.split_at(16);
        let mut flags = [0u8; 16];
        for (f, (&x, &y)) in flags.iter_mut().zip(lo.iter().zip(hi)) {
            *f = u8::from(is_special(x) | is_special(y));
        }
        if flags != [0u8; 16] {
            break;
        }
        n = n.wrapping_add(32);
        rest = tail;
    }
    n
}

/// `acc` followed by the ASCII digit `d`, or `None` past `u32::MAX` (the
/// number is then delivered without an integer value).
#[inline(always)]
fn push_digit(acc: u32, d: u8) -> Option<u32> {
    acc.checked_mul(10)?
        .checked_add(u32::from(d.wrapping_sub(b'0')))
}

/// Index of the first byte of `chunk` at or after `i` that is not JSON
/// whitespace (`chunk.len()` if none).
#[inline(always)]
fn skip_ws(chunk: &[u8], mut i: usize) -> usize {
    while chunk.get(i).is_some_and(|&b| is_ws(b)) {
        i = i.wrapping_add(1);
    }
    i
}

/// Finds `key` in the table. Names are short: compared inline, length first.
#[inline]
fn lookup(
    keys: &'static [(&'static [u8], crate::error::Member)],
    key: &[u8],
) -> Option<crate::error::Member> {
    keys.iter()
        .find(|(name, _)| name.len() == key.len() && same(name, key))
        .map(|&(_, m)| m)
}

/// Equality of two equally long short byte strings, a word at a time: the
/// whole words, then the last word (overlapping), so no byte-wise tail.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let Some(last) = a.len().checked_sub(W) else {
        return a.iter().zip(b).all(|(x, y)| x == y);
    };
    let (mut x, mut y) = (a.chunks_exact(W), b.chunks_exact(W));
    for (p, q) in (&mut x).zip(&mut y) {
        if word(p) != word(q) {
            return false;
        }
    }
    let (p, q) = (a.get(last..), b.get(last..));
    word(p.unwrap_or_default()) == word(q.unwrap_or_default())
}

impl Scanner {
    /// A scanner reporting the members named in `keys` (names at most
    /// [`KEY_MAX`] bytes long).
    pub(crate) const fn new(keys: &'static [(&'static [u8], crate::error::Member)]) -> Self {
        Scanner {
            keys,
            offset: 0,
            st: St::Start,
            depth: 0,
            stack: 0,
            in_key: false,
            want: false,
            plain: true,
            key_len: 0,
            key: [0; KEY_MAX],
            esc_acc: 0,
            esc_n: 0,
            high: 0,
            utf8_need: 0,
            utf8_lo: 0,
            utf8_hi: 0,
            num_st: 0,
            num_neg: false,
            num_int: true,
            num_overflow: false,
            num_acc: 0,
            lit: 0,
            lit_pos: 0,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn offset(&self) -> u32 {
        self.offset
    }

    /// Whether the value currently delivered belongs to a wanted top-level member.
    #[inline]
    fn emitting(&self) -> bool {
        self.want && self.depth == 1 && !self.in_key
    }

    #[cold]
    fn err(&mut self, kind: JsonError, at: usize) -> Error {
        self.st = St::Failed;
        Error::Json {
            kind,
            offset: self
                .offset
                .saturating_add(u32::try_from(at).unwrap_or(u32::MAX)),
        }
    }

    /// Ends input: succeeds only if a complete top-level object was read.
    pub(crate) fn finish(&mut self) -> Result<()> {
        match self.st {
            St::Done => Ok(()),
            St::Failed => Err(Error::WrongState),
            St::Start => {
                self.st = St::Failed;
                Err(Error::Response(ResponseError::NotJson))
            }
            _ => Err(self.err(JsonError::Truncated, 0)),
        }
    }

    fn push(&mut self, array: bool, at: usize) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(JsonError::TooDeep, at));
        }
        let bit = 1u32.checked_shl(u32::from(self.depth)).unwrap_or(0);
        if array {
            self.stack |= bit;
        } else {
            self.stack &= !bit;
        }
        self.depth = self.depth.saturating_add(1);
        Ok(())
    }

    #[inline]
    fn in_array(&self) -> bool {
        let d = self.depth.saturating_sub(1);
        (self.stack >> d) & 1 == 1
    }

    /// A value ended; decide what follows.
    #[inline]
    fn value_done(&mut self) {
        if self.depth == 1 {
            self.want = false;
        }
        self.st = if self.depth == 0 { St::Done } else { St::After };
    }

    /// Collects decoded key bytes (top level only).
    #[inline]
    fn key_bytes(&mut self, part: &[u8]) {
        if self.depth != 1 {
            return;
        }
        let pos = usize::from(self.key_len);
        let end = pos.saturating_add(part.len());
        match self.key.get_mut(pos..end) {
            Some(dst) => {
                crate::write::copy(dst, part);
                self.key_len = u8::try_from(end).unwrap_or(u8::MAX);
            }
            // Longer than any name in the table: remember only that.
            None => self.key_len = (KEY_MAX as u8).saturating_add(1),
        }
    }

    /// The key ended; `direct` is the whole key when it lay within one
    /// chunk without escapes (no copy needed), else the collected bytes count.
    fn key_end(&mut self, direct: Option<&[u8]>, sink: &mut impl Sink) -> Result<()> {
        self.in_key = false;
        self.st = St::Colon;
        if self.depth != 1 {
            return Ok(());
        }
        let key = match direct {
            Some(k) => k,
            None => self.key.get(..usize::from(self.key_len)).unwrap_or(&[]),
        };
        let found = lookup(self.keys, key);
        self.want = sink.member(found)?;
        Ok(())
    }

    /// Delivers decoded string bytes to the key collector or the sink.
    #[inline]
    fn str_bytes(&mut self, part: &[u8], sink: &mut impl Sink) -> Result<()> {
        if part.is_empty() {
            return Ok(());
        }
        if self.in_key {
            self.key_bytes(part);
            Ok(())
        } else if self.emitting() {
            sink.str_part(part)
        } else {
            Ok(())
        }
    }

    /// Delivers the UTF-8 encoding of `cp`, a scalar value (surrogate pairs
    /// are joined by the caller, lone surrogates rejected). The string is
    /// already marked as not plain: it used an escape.
    fn emit_char(&mut self, cp: u32, sink: &mut impl Sink) -> Result<()> {
        let n = match cp {
            0..=0x7f => 1,
            0x80..=0x7ff => 2,
            0x800..=0xffff => 3,
            _ => 4,
        };
        let mut tmp = [0u8; 4];
        let mut rest = cp;
        for slot in tmp.iter_mut().take(n).skip(1).rev() {
            *slot = 0x80 | (rest & 0x3f) as u8;
            rest >>= 6;
        }
        if let (Some(first), Some(&lead)) = (tmp.first_mut(), UTF8_LEAD.get(n)) {
            *first = lead | rest as u8;
        }
        self.str_bytes(tmp.get(..n).unwrap_or(&[]), sink)
    }

    fn number_done(&mut self, sink: &mut impl Sink, at: usize) -> Result<()> {
        if !matches!(self.num_st, N_ZERO | N_INT | N_FRAC | N_EXP) {
            return Err(self.err(JsonError::Syntax, at));
        }
        if self.emitting() {
            let integer = if self.num_int && !self.num_overflow {
                Some(self.num_acc)
            } else {
                None
            };
            sink.number(Number {
                negative: self.num_neg,
                integer,
            })?;
        }
        self.value_done();
        Ok(())
    }

    /// Starts a value whose first byte is `b`.
    fn begin_value(&mut self, b: u8, sink: &mut impl Sink, at: usize) -> Result<()> {
        let top = self.depth == 1 && self.want;
        match b {
            b'"' => {
                self.in_key = false;
                self.plain = true;
                self.st = St::Str;
                if top {
                    sink.str_start()?;
                }
            }
            b'{' | b'[' => {
                if top {
                    sink.nested()?;
                    self.want = false;
                }
                let array = b == b'[';
                self.push(array, at)?;
                self.st = if array { St::ArrOpen } else { St::ObjOpen };
            }
            b'-' | b'0'..=b'9' => {
                self.st = St::Num;
                self.num_neg = b == b'-';
                self.num_int = true;
                self.num_overflow = false;
                self.num_acc = 0;
                self.num_st = match b {
                    b'-' => N_MINUS,
                    b'0' => N_ZERO,
                    _ => {
                        self.num_acc = u32::from(b.wrapping_sub(b'0'));
                        N_INT
                    }
                };
            }
            b't' | b'f' | b'n' => {
                self.st = St::Lit;
                self.lit = match b {
                    b't' => 0,
                    b'f' => 1,
                    _ => 2,
                };
                self.lit_pos = 1;
            }
            _ => return Err(self.err(JsonError::Syntax, at)),
        }
        Ok(())
    }

    /// Feeds a chunk of the body.
    pub(crate) fn feed(&mut self, chunk: &[u8], sink: &mut impl Sink) -> Result<()> {
        let r = self.feed_inner(chunk, sink);
        if r.is_err() {
            self.st = St::Failed;
        }
        self.offset = self
            .offset
            .saturating_add(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        r
    }

    /// Scans string content from `i`: returns where the plain/UTF-8 run ends.
    #[inline]
    fn string_run(&mut self, chunk: &[u8], mut i: usize) -> Result<usize> {
        loop {
            if self.utf8_need > 0 {
                let Some(&b) = chunk.get(i) else { break };
                if b < self.utf8_lo || b > self.utf8_hi {
                    return Err(self.err(JsonError::InvalidUtf8, i));
                }
                self.utf8_need = self.utf8_need.saturating_sub(1);
                self.utf8_lo = 0x80;
                self.utf8_hi = 0xbf;
                i = i.wrapping_add(1);
                continue;
            }
            i = i.wrapping_add(plain_run(chunk.get(i..).unwrap_or(&[])));
            let Some(&b) = chunk.get(i) else { break };
            if b < 0x7f {
                break;
            }
            self.plain = false;
            // Continuation bytes needed; DEL (valid JSON, but not
            // printable) needs none.
            self.utf8_need = match b {
                0x7f => 0,
                0xc2..=0xdf => 1,
                0xe0..=0xef => 2,
                0xf0..=0xf4 => 3,
                _ => return Err(self.err(JsonError::InvalidUtf8, i)),
            };
            // The range of the first continuation byte (RFC 3629 §4): no
            // overlong forms, surrogates or code points past U+10FFFF.
            self.utf8_lo = match b {
                0xe0 => 0xa0,
                0xf0 => 0x90,
                _ => 0x80,
            };
            self.utf8_hi = match b {
                0xed => 0x9f,
                0xf4 => 0x8f,
                _ => 0xbf,
            };
            i = i.wrapping_add(1);
        }
        Ok(i)
    }

    #[allow(clippy::too_many_lines)]
    fn feed_inner(&mut self, chunk: &[u8], sink: &mut impl Sink) -> Result<()> {
        let mut i = 0usize;
        loop {
            match self.st {
                St::Str => {
                    #[cfg(target_pointer_width = "64")]
                    if self.in_key && self.key_len == 0 && self.depth == 1 && self.utf8_need == 0 {
                        // At a top-level key: whole members go the fast way.
                        i = self.members(chunk, i, sink)?;
                        if self.st != St::Str {
                            continue;
                        }
                    }
                    // Hot path: a run of string content, then what ended it.
                    let end = self.string_run(chunk, i)?;
                    let run = chunk.get(i..end).unwrap_or(&[]);
                    if self.in_key && self.key_len == 0 && chunk.get(end) == Some(&b'"') {
                        // The whole key is in this chunk: match it in place.
                        i = end.wrapping_add(1);
                        self.key_end(Some(run), sink)?;
                        i = self.fast_lane(chunk, i, sink)?;
                        continue;
                    }
                    self.str_bytes(run, sink)?;
                    i = end;
                    let Some(&b) = chunk.get(i) else {
                        return Ok(());
                    };
                    let at = i;
                    i = i.wrapping_add(1);
                    match b {
                        b'"' => {
                            if self.in_key {
                                self.key_end(None, sink)?;
                            } else {
                                if self.emitting() {
                                    sink.str_end(self.plain)?;
                                }
                                self.value_done();
                                i = self.fast_lane(chunk, i, sink)?;
                            }
                        }
                        b'\\' => {
                            self.plain = false;
                            self.st = St::Esc;
                        }
                        _ => return Err(self.err(JsonError::ControlCharacter, at)),
                    }
                }
                St::Num => {
                    if self.num_st == N_INT {
                        // Integer digits in a tight loop.
                        while let Some(&b) = chunk.get(i) {
                            if !b.is_ascii_digit() {
                                break;
                            }
                            match push_digit(self.num_acc, b) {
                                Some(v) => self.num_acc = v,
                                None => self.num_overflow = true,
                            }
                            i = i.wrapping_add(1);
                        }
                    }
                    let Some(&b) = chunk.get(i) else {
                        return Ok(());
                    };
                    let digit = b.is_ascii_digit();
                    let next = match (self.num_st, b) {
                        (N_MINUS, b'0') => Some(N_ZERO),
                        (N_MINUS, b'1'..=b'9') => {
                            self.num_acc = u32::from(b.wrapping_sub(b'0'));
                            Some(N_INT)
                        }
                        (N_ZERO | N_INT, b'.') => Some(N_DOT),
                        (N_DOT | N_FRAC, _) if digit => Some(N_FRAC),
                        (N_ZERO | N_INT | N_FRAC, b'e' | b'E') => Some(N_E),
                        (N_E, b'+' | b'-') => Some(N_ESIGN),
                        (N_E | N_ESIGN | N_EXP, _) if digit => Some(N_EXP),
                        _ => None,
                    };
                    match next {
                        Some(s) => {
                            if matches!(s, N_DOT | N_E) {
                                self.num_int = false;
                            }
                            self.num_st = s;
                            i = i.wrapping_add(1);
                        }
                        // The number ended at `b`, which belongs to what follows.
                        None => self.number_done(sink, i)?,
                    }
                }
                St::Esc | St::Hex | St::Lit => {
                    let Some(&b) = chunk.get(i) else {
                        return Ok(());
                    };
                    let at = i;
                    i = i.wrapping_add(1);
                    self.escape_or_literal(b, sink, at)?;
                }
                St::Failed => return Err(Error::WrongState),
                _ => {
                    // Structural states: whitespace first.
                    let Some(&b) = chunk.get(i) else {
                        return Ok(());
                    };
                    let at = i;
                    i = i.wrapping_add(1);
                    if is_ws(b) {
                        i = skip_ws(chunk, i);
                        continue;
                    }
                    self.structural(b, sink, at)?;
                }
            }
        }
    }

    /// Fast path over whole top-level members that lie in this chunk, the
    /// usual shape of a token response: `key" ws* : ws* value ws* , ws* "`
    /// with a plain key, a plain string value (printable ASCII, no escapes)
    /// or a non-negative integer, then the next key. Called just after a
    /// top-level key's opening quote. It commits a key only once the first
    /// byte of its value is in the chunk, emits the same events as the
    /// general path, and returns where that path takes over, with the state
    /// set for it: at a key it cannot take whole (escape, non-ASCII, chunk
    /// end), inside a value that is not a plain string or integer, or after
    /// the last member.
    ///
    /// Compiled on 64-bit hosts only: it is about 700 bytes of code, and on a
    /// Cortex-M flash is scarcer than the cycles of one parse per token. The
    /// general path gives the same events (the tests feed inputs whole, where
    /// this path runs, byte by byte, where it cannot, and split at every
    /// position, where it gives up at every point).
    #[cfg(target_pointer_width = "64")]
    #[inline]
    fn members(&mut self, chunk: &[u8], mut i: usize, sink: &mut impl Sink) -> Result<usize> {
        loop {
            let rest = chunk.get(i..).unwrap_or(&[]);
            let klen = plain_run(rest);
            let (Some(key), Some(&b'"')) = (rest.get(..klen), rest.get(klen)) else {
                return Ok(i);
            };
            // Indices stay below `chunk.len()` (or one past it): no wrap.
            let mut j = skip_ws(chunk, i.wrapping_add(klen).wrapping_add(1));
            if chunk.get(j) != Some(&b':') {
                return Ok(i);
            }
            j = skip_ws(chunk, j.wrapping_add(1));
            let Some(&b) = chunk.get(j) else {
                return Ok(i);
            };
            self.key_end(Some(key), sink)?;
            let end = if b == b'"' {
                let start = j.wrapping_add(1);
                let rest = chunk.get(start..).unwrap_or(&[]);
                let vlen = plain_run(rest);
                let value = rest.get(..vlen).unwrap_or(&[]);
                if rest.get(vlen) != Some(&b'"') {
                    // Goes on past this chunk or a special byte: the general
                    // path continues the string.
                    self.begin_value(b, sink, j)?;
                    self.str_bytes(value, sink)?;
                    return Ok(start.wrapping_add(vlen));
                }
                if self.want {
                    let before = usize::try_from(self.offset).unwrap_or(usize::MAX);
                    sink.str_whole(value, before.saturating_add(start))?;
                }
                start.wrapping_add(vlen).wrapping_add(1)
            } else {
                // A non-negative integer that ends in this chunk (`expires_in`).
                let rest = chunk.get(j..).unwrap_or(&[]);
                let digits = rest.iter().take_while(|d| d.is_ascii_digit()).count();
                let whole = digits > 0
                    && (b != b'0' || digits == 1)
                    && rest
                        .get(digits)
                        .is_some_and(|&c| c != b'.' && c != b'e' && c != b'E');
                if !whole {
                    self.begin_value(b, sink, j)?;
                    return Ok(j.wrapping_add(1));
                }
                if self.want {
                    let mut integer = Some(0u32);
                    for &d in rest.get(..digits).unwrap_or(&[]) {
                        integer = integer.and_then(|v| push_digit(v, d));
                    }
                    sink.number(Number {
                        negative: false,
                        integer,
                    })?;
                }
                j.wrapping_add(digits)
            };
            self.want = false;
            self.st = St::After;
            let mut j = skip_ws(chunk, end);
            if chunk.get(j) != Some(&b',') {
                return Ok(j);
            }
            self.st = St::Key;
            j = skip_ws(chunk, j.wrapping_add(1));
            if chunk.get(j) != Some(&b'"') {
                return Ok(j);
            }
            self.st = St::Str;
            self.in_key = true;
            self.key_len = 0;
            i = j.wrapping_add(1);
        }
    }

    /// The common sequences `ws* : ws* <value start>` after a key and
    /// `ws* , ws* "` after a value, handled without going back through the
    /// state dispatch. Stops (with consistent state) at anything else.
    #[inline]
    fn fast_lane(&mut self, chunk: &[u8], mut i: usize, sink: &mut impl Sink) -> Result<usize> {
        loop {
            i = skip_ws(chunk, i);
            let Some(&b) = chunk.get(i) else {
                return Ok(i);
            };
            match (self.st, b) {
                (St::Colon, b':') => self.st = St::Value,
                (St::Value, _) => {
                    self.begin_value(b, sink, i)?;
                    return Ok(i.wrapping_add(1));
                }
                (St::After, b',') if !self.in_array() => self.st = St::Key,
                (St::Key, b'"') => {
                    self.in_key = true;
                    self.st = St::Str;
                    self.key_len = 0;
                    return Ok(i.wrapping_add(1));
                }
                _ => return Ok(i),
            }
            i = i.wrapping_add(1);
        }
    }

    /// One non-whitespace byte in a structural state.
    #[inline]
    fn structural(&mut self, b: u8, sink: &mut impl Sink, at: usize) -> Result<()> {
        match self.st {
            St::Start => match b {
                b'{' => {
                    self.push(false, at)?;
                    self.st = St::ObjOpen;
                }
                0xef if self.offset == 0 && at == 0 => {
                    self.st = St::Lit;
                    self.lit = SEQ_BOM;
                    self.lit_pos = 1;
                }
                b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    return Err(self.err(JsonError::NotAnObject, at))
                }
                _ => {
                    self.st = St::Failed;
                    return Err(Error::Response(ResponseError::NotJson));
                }
            },
            St::ObjOpen | St::Key => match b {
                b'"' => {
                    self.in_key = true;
                    self.st = St::Str;
                    self.key_len = 0;
                }
                b'}' if self.st == St::ObjOpen => {
                    self.depth = self.depth.saturating_sub(1);
                    self.value_done();
                }
                _ => return Err(self.err(JsonError::Syntax, at)),
            },
            St::Colon => match b {
                b':' => self.st = St::Value,
                _ => return Err(self.err(JsonError::Syntax, at)),
            },
            St::Value => self.begin_value(b, sink, at)?,
            St::ArrOpen => match b {
                b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.value_done();
                }
                _ => self.begin_value(b, sink, at)?,
            },
            St::After => match b {
                b',' => {
                    self.st = if self.in_array() { St::Value } else { St::Key };
                }
                b'}' | b']' if (b == b']') == self.in_array() => {
                    self.depth = self.depth.saturating_sub(1);
                    self.value_done();
                }
                _ => return Err(self.err(JsonError::Syntax, at)),
            },
            St::Done => return Err(self.err(JsonError::TrailingData, at)),
            _ => return Err(Error::WrongState),
        }
        Ok(())
    }

    /// One byte of an escape sequence, a literal or a byte-order mark.
    fn escape_or_literal(&mut self, b: u8, sink: &mut impl Sink, at: usize) -> Result<()> {
        match self.st {
            St::Esc => {
                if b == b'u' {
                    self.st = St::Hex;
                    self.esc_acc = 0;
                    self.esc_n = 0;
                    return Ok(());
                }
                let Some(i) = ESCAPES.iter().position(|&e| e == b) else {
                    return Err(self.err(JsonError::InvalidEscape, at));
                };
                let out = UNESCAPED.get(i).copied().unwrap_or(b);
                self.st = St::Str;
                self.str_bytes(&[out], sink)?;
            }
            St::Hex => {
                let d = match b {
                    b'0'..=b'9' => b.wrapping_sub(b'0'),
                    b'a'..=b'f' => b.wrapping_sub(b'a').wrapping_add(10),
                    b'A'..=b'F' => b.wrapping_sub(b'A').wrapping_add(10),
                    _ => return Err(self.err(JsonError::InvalidEscape, at)),
                };
                self.esc_acc = (self.esc_acc << 4) | u16::from(d);
                self.esc_n = self.esc_n.saturating_add(1);
                if self.esc_n == 4 {
                    let u = self.esc_acc;
                    match (self.high, u) {
                        (0, 0xd800..=0xdbff) => {
                            self.high = u;
                            self.st = St::Lit;
                            self.lit = SEQ_LOW_SURROGATE;
                            self.lit_pos = 0;
                        }
                        (0, 0xdc00..=0xdfff) => return Err(self.err(JsonError::InvalidEscape, at)),
                        (0, _) => {
                            self.st = St::Str;
                            self.emit_char(u32::from(u), sink)?;
                        }
                        (h, 0xdc00..=0xdfff) => {
                            let cp = 0x10000u32
                                .wrapping_add(u32::from(h.wrapping_sub(0xd800)) << 10)
                                .wrapping_add(u32::from(u.wrapping_sub(0xdc00)));
                            self.high = 0;
                            self.st = St::Str;
                            self.emit_char(cp, sink)?;
                        }
                        _ => return Err(self.err(JsonError::InvalidEscape, at)),
                    }
                }
            }
            St::Lit => {
                let seq = SEQUENCES.get(usize::from(self.lit)).copied().unwrap_or(b"");
                if seq.get(usize::from(self.lit_pos)) != Some(&b) {
                    return Err(match self.lit {
                        SEQ_BOM => {
                            self.st = St::Failed;
                            Error::Response(ResponseError::NotJson)
                        }
                        SEQ_LOW_SURROGATE => self.err(JsonError::InvalidEscape, at),
                        _ => self.err(JsonError::Syntax, at),
                    });
                }
                self.lit_pos = self.lit_pos.saturating_add(1);
                if usize::from(self.lit_pos) == seq.len() {
                    match self.lit {
                        SEQ_BOM => self.st = St::Start,
                        SEQ_LOW_SURROGATE => {
                            self.st = St::Hex;
                            self.esc_acc = 0;
                            self.esc_n = 0;
                        }
                        lit => {
                            if self.emitting() {
                                sink.literal(match lit {
                                    0 => Literal::True,
                                    1 => Literal::False,
                                    _ => Literal::Null,
                                })?;
                            }
                            self.value_done();
                        }
                    }
                }
            }
            _ => return Err(Error::WrongState),
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    extern crate std;
    use super::*;
    use crate::error::Member;
    use std::string::String;
    use std::vec::Vec;

    const KEYS: &[(&[u8], Member)] = &[
        (b"access_token", Member::AccessToken),
        (b"token", Member::Message),
        (b"expires_in", Member::ExpiresIn),
    ];

    #[derive(Default, Debug, PartialEq)]
    struct Rec {
        events: Vec<String>,
        cur: Vec<u8>,
    }

    impl Sink for Rec {
        fn member(&mut self, m: Option<Member>) -> Result<bool> {
            self.events.push(std::format!("key {m:?}"));
            Ok(m.is_some())
        }
        fn str_start(&mut self) -> Result<()> {
            self.cur.clear();
            Ok(())
        }
        fn str_part(&mut self, part: &[u8]) -> Result<()> {
            self.cur.extend_from_slice(part);
            Ok(())
        }
        fn str_end(&mut self, _plain: bool) -> Result<()> {
            self.events.push(std::format!(
                "str {}",
                String::from_utf8(self.cur.clone()).unwrap()
            ));
            Ok(())
        }
        fn number(&mut self, n: Number) -> Result<()> {
            self.events.push(std::format!("num {n:?}"));
            Ok(())
        }
        fn literal(&mut self, l: Literal) -> Result<()> {
            self.events.push(std::format!("lit {l:?}"));
            Ok(())
        }
        fn nested(&mut self) -> Result<()> {
            self.events.push("nested".into());
            Ok(())
        }
    }

    fn scan(input: &[u8], chunk: usize) -> Result<Vec<String>> {
        let mut s = Scanner::new(KEYS);
        let mut r = Rec::default();
        for c in input.chunks(chunk.max(1)) {
            s.feed(c, &mut r)?;
        }
        s.finish()?;
        Ok(r.events)
    }

    fn scan_all(input: &[u8]) -> Result<Vec<String>> {
        let whole = scan(input, input.len().max(1));
        for n in 1..input.len().min(16) {
            assert_eq!(scan(input, n), whole, "chunk size {n} differs");
        }
        whole
    }

    #[test]
    fn members_and_escapes() {
        let ev = scan_all(
            br#" {"acc\u0065ss_token" : "ab\/cd\"\u00e9\ud83d\ude00x", "other": {"access_token": [1, 2.5e-3, "x"]},
                "expires_in": 3600, "token": null, "z": true} "#,
        )
        .unwrap();
        assert_eq!(
            ev,
            [
                "key Some(AccessToken)",
                "str ab/cd\"é😀x",
                "key None",
                "key Some(ExpiresIn)",
                "num Number { negative: false, integer: Some(3600) }",
                "key Some(Message)",
                "lit Null",
                "key None",
            ]
        );
    }

    /// Feeds `input` in two chunks split at every position, so the
    /// whole-member fast path (64-bit hosts) gives up at every point it can;
    /// every split must give what the whole input gives.
    fn scan_splits(input: &[u8]) -> Result<Vec<String>> {
        let whole = scan(input, input.len().max(1));
        // Under Miri (tests/miri.sh) every 13th split and the last.
        for k in (0..=input.len()).filter(|&k| !cfg!(miri) || k % 13 == 0 || k == input.len()) {
            let mut s = Scanner::new(KEYS);
            let mut r = Rec::default();
            let got = s
                .feed(&input[..k], &mut r)
                .and_then(|()| s.feed(&input[k..], &mut r))
                .and_then(|()| s.finish())
                .map(|()| r.events);
            assert_eq!(
                got,
                whole,
                "split at {k}: {:?}",
                String::from_utf8_lossy(input)
            );
        }
        // (Not under Miri, tests/miri.sh: the splits above cover it there.)
        if !cfg!(miri) {
            assert_eq!(scan(input, 1), whole);
        }
        whole
    }

    #[test]
    fn fast_path_exits_match_the_general_path() {
        let ok: &[&[u8]] = &[
            br#"{"access_token":"abc","expires_in":3600,"token":"x"}"#,
            b"{ \"access_token\" :\t\"abc\" ,\r\n \"expires_in\" : 0 , \"z\" : \"\" }",
            br#"{"access_token":"","expires_in":4294967296,"token":"ab\/c"}"#,
            br#"{"acc\u0065ss_token":"a","expires_in":36.5,"token":-1}"#,
            br#"{"access_token":"caf\u00e9 \ud83d\ude00","expires_in":1e3,"x":[1,{"a":"b"}]}"#,
            "{\"access_token\":\"é\",\"é\":\"x\",\"expires_in\":00012}".as_bytes(),
            br#"{"z":null,"y":true,"x":false,"w":{},"access_token":"t","v":[]}"#,
            br#"{"expires_in":"3600","access_token":"abcdefghijklmnopqrstuvwxyz0123456789"}"#,
            // Duplicates are the sink's business (`body` rejects them).
            br#"{"access_token":"a","access_token":"b"}"#,
        ];
        for input in ok {
            let _ = scan_splits(input);
        }
        let bad: &[&[u8]] = &[
            br#"{"access_token" "a"}"#,
            br#"{"access_token":"a" "expires_in":1}"#,
            br#"{"access_token":"a",}"#,
            br#"{"expires_in":012}"#,
            br#"{"expires_in":12x}"#,
            br#"{"expires_in":1,"access_token":"a"]"#,
            b"{\"access_token\":\"a\x01b\"}",
            b"{\"access_token\":\"a\xffb\"}",
        ];
        for input in bad {
            assert!(
                scan_splits(input).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn numbers() {
        let ev = scan_all(br#"{"expires_in": -0}"#).unwrap();
        assert_eq!(ev[1], "num Number { negative: true, integer: Some(0) }");
        let ev = scan_all(br#"{"expires_in": 1e400}"#).unwrap();
        assert_eq!(ev[1], "num Number { negative: false, integer: None }");
        let ev = scan_all(br#"{"expires_in": 99999999999999999999999}"#).unwrap();
        assert_eq!(ev[1], "num Number { negative: false, integer: None }");
        for bad in [
            &br#"{"a": 01}"#[..],
            br#"{"a": 1.}"#,
            br#"{"a": -}"#,
            br#"{"a": 1e}"#,
            br#"{"a": .5}"#,
            br#"{"a": +1}"#,
        ] {
            assert!(
                matches!(
                    scan(bad, 100),
                    Err(Error::Json {
                        kind: JsonError::Syntax,
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_input() {
        let cases: &[(&[u8], JsonError)] = &[
            (br#"{"a": "x"#, JsonError::Truncated),
            (br#"{"a" "x"}"#, JsonError::Syntax),
            (br#"{"a": "x",}"#, JsonError::Syntax),
            (br#"{"a": [1,]}"#, JsonError::Syntax),
            (br#"{"a": [1}"#, JsonError::Syntax),
            (br#"{"a": tru}"#, JsonError::Syntax),
            (br#"{"a": "\x"}"#, JsonError::InvalidEscape),
            (br#"{"a": "\ud800"}"#, JsonError::InvalidEscape),
            (br#"{"a": "\udc00"}"#, JsonError::InvalidEscape),
            (br#"{"a": "\ud800\u0041"}"#, JsonError::InvalidEscape),
            (b"{\"a\": \"\x01\"}", JsonError::ControlCharacter),
            (b"{\"a\": \"\xff\"}", JsonError::InvalidUtf8),
            (b"{\"a\": \"\xc3\"}", JsonError::InvalidUtf8),
            (b"{\"a\": \"\xed\xa0\x80\"}", JsonError::InvalidUtf8),
            (b"{\"a\": \"\xc0\xaf\"}", JsonError::InvalidUtf8),
            (br#"{} x"#, JsonError::TrailingData),
            (br#"[1]"#, JsonError::NotAnObject),
        ];
        for (input, kind) in cases {
            // Under Miri (tests/miri.sh) every fifth chunk size.
            for n in (1..=input.len()).step_by(if cfg!(miri) { 5 } else { 1 }) {
                match scan(input, n) {
                    Err(Error::Json { kind: k, .. }) => {
                        assert_eq!(k, *kind, "{:?}", String::from_utf8_lossy(input))
                    }
                    other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
                }
            }
        }
        assert_eq!(
            scan(b"<html>", 3),
            Err(Error::Response(ResponseError::NotJson))
        );
        assert_eq!(scan(b"  ", 3), Err(Error::Response(ResponseError::NotJson)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut input = Vec::from(&b"{\"a\":"[..]);
        input.extend(core::iter::repeat_n(b'[', 10_000));
        assert!(matches!(
            scan(&input, 7),
            Err(Error::Json {
                kind: JsonError::TooDeep,
                ..
            })
        ));
        let mut ok = Vec::from(&b"{\"a\":"[..]);
        ok.extend(core::iter::repeat_n(b'[', 30));
        ok.extend(core::iter::repeat_n(b']', 30));
        ok.push(b'}');
        assert!(scan(&ok, 5).is_ok());
    }

    #[test]
    fn utf8_validation_matches_core() {
        // Every pair of leading bytes, completed with continuation bytes.
        // Under Miri (tests/miri.sh) a sample of the pairs.
        for a in (0x80..=0xffu8).step_by(if cfg!(miri) { 13 } else { 1 }) {
            for b in (0..=0xffu8).step_by(if cfg!(miri) { 37 } else { 1 }) {
                for tail in [&[][..], &[0x80], &[0x80, 0xbf]] {
                    let mut text = std::vec![a, b];
                    text.extend_from_slice(tail);
                    let mut input = Vec::from(&br#"{"access_token":""#[..]);
                    input.extend_from_slice(&text);
                    input.extend_from_slice(br#""}"#);
                    let want = core::str::from_utf8(&text).is_ok();
                    let got = scan(&input, input.len());
                    assert_eq!(got.is_ok(), want, "{text:x?}");
                    if !want {
                        assert!(
                            matches!(
                                got,
                                Err(Error::Json {
                                    kind: JsonError::InvalidUtf8 | JsonError::ControlCharacter,
                                    ..
                                })
                            ) || b == b'"'
                                || b == b'\\',
                            "{text:x?}: {got:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_simple_escape() {
        let ev = scan_all(br#"{"access_token": "\"\\\/\b\f\n\r\t"}"#).unwrap();
        assert_eq!(ev[1], "str \"\\/\u{8}\u{c}\n\r\t");
    }

    #[test]
    fn unicode_escapes_encode_every_length() {
        let ev = scan_all(
            br#"{"access_token": "\u0000\u007f\u0080\u07ff\u0800\u20ac\uffff\ud800\udc00\udbff\udfff"}"#,
        )
        .unwrap();
        let want: String = [
            '\0',
            '\u{7f}',
            '\u{80}',
            '\u{7ff}',
            '\u{800}',
            '€',
            '\u{ffff}',
            '\u{10000}',
            '\u{10ffff}',
        ]
        .iter()
        .collect();
        assert_eq!(ev[1], std::format!("str {want}"));
    }

    #[test]
    fn bom_is_skipped() {
        assert!(scan(b"\xef\xbb\xbf{}", 1).is_ok());
    }

    #[test]
    fn is_special_is_the_plain_byte_rule() {
        for b in 0..=255u8 {
            let plain = (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\';
            assert_eq!(is_special(b), !plain, "{b:#x}");
        }
    }

    #[test]
    fn plain_run_matches_bytewise() {
        let samples: [&[u8]; 7] = [
            b"abcdefghijklmnop\"",
            b"abc\\",
            b"0123456789abcdef\x01",
            "éabc".as_bytes(),
            b"abcdefgh",
            b"abcdefghij\x7fk",
            b"abcdefghij\xffk",
        ];
        for s in samples {
            for start in 0..s.len() {
                let s = &s[start..];
                let expect = s.iter().position(|&b| is_special(b)).unwrap_or(s.len());
                assert_eq!(plain_run(s), expect);
            }
        }
        // Every length through three 32-byte blocks past the first 16 bytes,
        // each special byte at every position (and none), over a filler of
        // the plain bytes next to the special ones: the word, block and tail
        // scans must all stop exactly there.
        let filler = b" !#[]~0Az";
        // Under Miri (tests/miri.sh) a sample of the lengths and positions.
        for len in (0..=120usize).step_by(if cfg!(miri) { 11 } else { 1 }) {
            let base: Vec<u8> = (0..len).map(|k| filler[k % filler.len()]).collect();
            assert_eq!(plain_run(&base), len, "plain, len {len}");
            for special in [0x00, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xc3, 0xff] {
                for at in (0..len).step_by(if cfg!(miri) { 9 } else { 1 }) {
                    let mut s = base.clone();
                    s[at] = special;
                    // A second special later must not move the answer.
                    if at + 5 < len {
                        s[at + 5] = b'"';
                    }
                    assert_eq!(plain_run(&s), at, "len {len}, {special:#x} at {at}");
                }
            }
        }
    }
}
