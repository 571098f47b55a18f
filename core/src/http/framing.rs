//! Body framing (RFC 9112 §6.3) and the chunked transfer coding (§7.1).

use super::ResponseHead;
use crate::error::{Error, HttpError, Result};

/// How a response body is delimited (RFC 9112 §6.3), from
/// [`ResponseHead::framing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyFraming {
    /// Exactly this many bytes (`Content-Length`; `0` for 204 and 304).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    Close,
}

impl ResponseHead {
    /// How the body of this response is delimited. fieldauth only sends GET
    /// and POST, so the HEAD-request rule does not apply: 204 and 304 have no
    /// body, then `Transfer-Encoding: chunked`, then `Content-Length`, else
    /// the body runs until the connection closes. (The head parser already
    /// rejected Content-Length together with Transfer-Encoding.)
    pub fn framing(&self) -> BodyFraming {
        if matches!(self.status, 204 | 304) || self.status < 200 {
            BodyFraming::Length(0)
        } else if self.chunked {
            BodyFraming::Chunked
        } else if let Some(n) = self.content_length {
            BodyFraming::Length(n)
        } else {
            BodyFraming::Close
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bs {
    /// Inside payload data; `remaining` bytes to go.
    Data,
    /// Close-delimited: everything is payload.
    Close,
    /// Chunk-size hex digits.
    Size,
    /// Whitespace after the size: `;` or CR.
    SizeWs,
    /// Inside chunk extensions, up to CR.
    Ext,
    /// CR of the chunk-size line seen: LF.
    SizeLf,
    /// After chunk data: CR.
    DataCr,
    /// After chunk data and CR: LF.
    DataLf,
    /// Start of a trailer line (or the final CRLF).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// CR of a trailer line seen: LF.
    TrailerLf,
    /// CR of the final empty line seen: LF.
    EndLf,
    /// The body is complete.
    Done,
    /// An error was returned.
    Failed,
}

/// Streaming body reader: strips the framing and hands out the payload as
/// slices of the caller's input, one contiguous run per call.
///
/// - Works with input split anywhere, down to one byte per call.
/// - Chunk sizes are hex with overflow checks; chunk extensions and trailer
///   fields are validated (no control characters) and skipped; every line of
///   the chunked framing must end in CRLF (bare LF or CR is
///   [`HttpError::Chunk`]: lenient chunk parsing is a request-smuggling
///   vector).
/// - **Data after the end** of a `Content-Length` or chunked body is never
///   consumed: [`next`](Self::next) returns `(0, &[])` once
///   [`is_done`](Self::is_done), and the caller decides what the extra bytes
///   mean (a pipelined response, or garbage that should close the
///   connection). The reader itself never returns
///   [`HttpError::TrailingData`].
///
/// State is 16 bytes.
#[derive(Clone, Debug)]
pub struct BodyReader {
    remaining: u64,
    st: Bs,
    chunked: bool,
    digits: u8,
}

#[inline]
const fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

impl BodyReader {
    /// A reader for a body with the given framing.
    #[inline(never)]
    pub const fn new(framing: BodyFraming) -> Self {
        let (st, remaining, chunked) = match framing {
            BodyFraming::Length(0) => (Bs::Done, 0, false),
            BodyFraming::Length(n) => (Bs::Data, n, false),
            BodyFraming::Chunked => (Bs::Size, 0, true),
            BodyFraming::Close => (Bs::Close, 0, false),
        };
        BodyReader {
            remaining,
            st,
            chunked,
            digits: 0,
        }
    }

    /// Whether the whole body has been read (never true for a
    /// close-delimited body: see [`finish`](Self::finish)).
    pub fn is_done(&self) -> bool {
        self.st == Bs::Done
    }

    /// Reads from `input`: returns how many bytes of it were consumed and the
    /// payload found among them (a subslice of `input`, possibly empty).
    ///
    /// Call again with the unconsumed rest until it is empty or
    /// [`is_done`](Self::is_done). The consumed count is 0 only for empty
    /// input or a finished body (the rest is not part of this body). After an
    /// error, further calls return [`Error::WrongState`].
    pub fn next<'a>(&mut self, input: &'a [u8]) -> Result<(usize, &'a [u8])> {
        let mut used = 0usize;
        let mut rest = input;
        loop {
            match self.st {
                Bs::Failed => return Err(Error::WrongState),
                Bs::Done => return Ok((used, &[])),
                Bs::Close => return Ok((used.wrapping_add(rest.len()), rest)),
                Bs::Data => {
                    let n = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let (data, _) = rest.split_at_checked(n).unwrap_or((rest, &[]));
                    self.remaining = self.remaining.saturating_sub(data.len() as u64);
                    if self.remaining == 0 {
                        self.st = if self.chunked { Bs::DataCr } else { Bs::Done };
                    }
                    return Ok((used.wrapping_add(data.len()), data));
                }
                _ => {}
            }
            let Some((&b, tail)) = rest.split_first() else {
                return Ok((used, &[]));
            };
            match self.step(b) {
                Some(st) => self.st = st,
                None => {
                    self.st = Bs::Failed;
                    return Err(Error::Http(HttpError::Chunk));
                }
            }
            // `used` counts bytes of `input`, so it cannot overflow.
            used = used.wrapping_add(1);
            rest = tail;
        }
    }

    /// One byte of chunked framing: the next state, or `None` if malformed.
    fn step(&mut self, b: u8) -> Option<Bs> {
        Some(match self.st {
            Bs::Size => {
                if let Some(d) = (b as char).to_digit(16) {
                    // `remaining * 16 + d` unless it overflows: the top four
                    // bits must be clear (shift and OR, no 64-bit multiply).
                    if self.remaining >> 60 != 0 {
                        return None;
                    }
                    self.remaining = (self.remaining << 4) | u64::from(d);
                    self.digits = 1;
                    Bs::Size
                } else if self.digits == 0 {
                    return None;
                } else {
                    self.after_size(b)?
                }
            }
            Bs::SizeWs => self.after_size(b)?,
            Bs::Ext if b == b'\r' => Bs::SizeLf,
            Bs::Ext if !is_ctl(b) => Bs::Ext,
            Bs::SizeLf if b == b'\n' => {
                self.digits = 0;
                if self.remaining == 0 {
                    Bs::TrailerStart
                } else {
                    Bs::Data
                }
            }
            Bs::DataCr if b == b'\r' => Bs::DataLf,
            Bs::DataLf if b == b'\n' => Bs::Size,
            Bs::TrailerStart if b == b'\r' => Bs::EndLf,
            Bs::TrailerStart | Bs::Trailer if b == b'\r' => Bs::TrailerLf,
            Bs::TrailerStart | Bs::Trailer if !is_ctl(b) => Bs::Trailer,
            Bs::TrailerLf if b == b'\n' => Bs::TrailerStart,
            Bs::EndLf if b == b'\n' => Bs::Done,
            _ => return None,
        })
    }

    /// After the size digits: optional whitespace, then `;` (extensions) or
    /// CR.
    fn after_size(&self, b: u8) -> Option<Bs> {
        match b {
            b' ' | b'\t' => Some(Bs::SizeWs),
            b';' => Some(Bs::Ext),
            b'\r' => Some(Bs::SizeLf),
            _ => None,
        }
    }

    /// The connection closed (end of input). `Ok` if the body is complete
    /// (or close-delimited, where the close is the end);
    /// [`Error::Transport`] if it was cut short; [`Error::WrongState`] after
    /// an error.
    pub fn finish(&self) -> Result<()> {
        match self.st {
            Bs::Done | Bs::Close => Ok(()),
            Bs::Failed => Err(Error::WrongState),
            _ => Err(Error::Transport),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// Decodes `input` fed in pieces of `step` bytes: payload, bytes consumed.
    fn decode(framing: BodyFraming, input: &[u8], step: usize) -> Result<(Vec<u8>, usize)> {
        let mut r = BodyReader::new(framing);
        let mut out = Vec::new();
        let mut total = 0;
        for piece in input.chunks(step.max(1)) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (n, data) = r.next(rest)?;
                assert!(n <= rest.len());
                assert!(data.len() <= n);
                out.extend_from_slice(data);
                total += n;
                rest = &rest[n..];
                if n == 0 {
                    assert!(r.is_done());
                    break;
                }
            }
            if r.is_done() {
                // Nothing more is consumed after the end.
                assert_eq!(r.next(rest).unwrap(), (0, &[][..]));
                break;
            }
        }
        r.finish()?;
        Ok((out, total))
    }

    /// Decodes at every piece size; all must agree.
    fn decode_all(framing: BodyFraming, input: &[u8]) -> Result<(Vec<u8>, usize)> {
        let whole = decode(framing, input, input.len());
        // Under Miri (tests/miri.sh) a sample of the piece sizes and splits.
        let miri_step = if cfg!(miri) { 7 } else { 1 };
        for step in (1..input.len()).step_by(miri_step) {
            assert_eq!(decode(framing, input, step), whole, "step {step}");
        }
        // Every two-piece split, too.
        for at in (0..=input.len()).step_by(miri_step) {
            let mut r = BodyReader::new(framing);
            let mut out = Vec::new();
            let mut total = 0;
            let mut res = Ok(());
            for piece in [&input[..at], &input[at..]] {
                let mut rest = piece;
                while !rest.is_empty() {
                    match r.next(rest) {
                        Ok((0, _)) => break,
                        Ok((n, d)) => {
                            out.extend_from_slice(d);
                            total += n;
                            rest = &rest[n..];
                        }
                        Err(e) => {
                            res = Err(e);
                            break;
                        }
                    }
                }
                if res.is_err() {
                    break;
                }
            }
            let got = res.and_then(|()| r.finish()).map(|()| (out, total));
            assert_eq!(got, whole, "split {at}");
        }
        whole
    }

    #[test]
    fn http_chunked_basic() {
        let body = b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
        let (out, n) = decode_all(BodyFraming::Chunked, body).unwrap();
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(n, body.len());
    }

    #[test]
    fn http_chunked_extensions_trailers_and_leftover() {
        let body = b"a;name=\"v;x\" ; other\r\n0123456789\r\n000 \r\n\
            Expires: never\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 200 OK\r\n";
        let (out, n) = decode_all(BodyFraming::Chunked, body).unwrap();
        assert_eq!(out, b"0123456789");
        // The next response after the body is left unconsumed.
        assert_eq!(&body[n..], b"HTTP/1.1 200 OK\r\n");
        let (out, _) = decode_all(BodyFraming::Chunked, b"1\t;x\r\nA\r\n0\r\n\r\n").unwrap();
        assert_eq!(out, b"A");
        let (out, _) = decode_all(BodyFraming::Chunked, b"0\r\n\r\n").unwrap();
        assert!(out.is_empty());
        let (out, _) = decode_all(
            BodyFraming::Chunked,
            b"00000000000000000000001\r\nZ\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(out, b"Z");
    }

    #[test]
    fn http_chunked_rejects() {
        let chunk = Err(Error::Http(HttpError::Chunk));
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b";ext\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\rX",
            b"5\r\nhello\r\n0\n\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"5\r\nhello\r\n0\r\nTrailer: x\n\r\n",
            b"5\r\nhello\r\n0\r\nTrailer: \x01\r\n\r\n",
            b"5\rX",
            b"5 x\r\n",
            b"5;a\x00\r\n",
            b"5;a\nhello",
            b"10000000000000000\r\n",
            b"fffffffffffffffff\r\n",
            b"-5\r\n",
            b"0x5\r\n",
        ] {
            assert_eq!(decode_all(BodyFraming::Chunked, bad), chunk, "{bad:?}");
        }
        // After an error, the reader stays failed.
        let mut r = BodyReader::new(BodyFraming::Chunked);
        assert!(r.next(b"x").is_err());
        assert_eq!(r.next(b"0\r\n\r\n"), Err(Error::WrongState));
        assert_eq!(r.finish(), Err(Error::WrongState));
    }

    #[test]
    fn http_chunked_largest_size_and_truncation() {
        let mut r = BodyReader::new(BodyFraming::Chunked);
        assert_eq!(r.next(b"ffffffffffffffff\r\nab").unwrap(), (20, &b"ab"[..]));
        assert_eq!(r.remaining, u64::MAX - 2);
        assert_eq!(r.finish(), Err(Error::Transport));
        for cut in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"5\r\nhello\r\n0\r\n",
            b"",
        ] {
            assert_eq!(decode(BodyFraming::Chunked, cut, 1), Err(Error::Transport));
        }
    }

    #[test]
    fn http_length_and_close_framing() {
        let (out, n) = decode_all(BodyFraming::Length(5), b"hello world").unwrap();
        assert_eq!((out.as_slice(), n), (&b"hello"[..], 5));
        let (out, n) = decode_all(BodyFraming::Length(0), b"extra").unwrap();
        assert_eq!((out.len(), n), (0, 0));
        assert_eq!(
            decode(BodyFraming::Length(5), b"hel", 1),
            Err(Error::Transport)
        );
        let (out, n) = decode_all(BodyFraming::Close, b"anything\r\n0\r\n").unwrap();
        assert_eq!((out.as_slice(), n), (&b"anything\r\n0\r\n"[..], 13));
        let r = BodyReader::new(BodyFraming::Close);
        assert!(!r.is_done());
        assert_eq!(r.finish(), Ok(()));
        assert!(BodyReader::new(BodyFraming::Length(0)).is_done());
    }

    #[test]
    fn http_framing_from_head() {
        let mut h = super::super::EMPTY_HEAD;
        h.status = 200;
        assert_eq!(h.framing(), BodyFraming::Close);
        h.content_length = Some(7);
        assert_eq!(h.framing(), BodyFraming::Length(7));
        h.content_length = None;
        h.chunked = true;
        assert_eq!(h.framing(), BodyFraming::Chunked);
        for s in [204, 304] {
            h.status = s;
            assert_eq!(h.framing(), BodyFraming::Length(0));
        }
    }
}
