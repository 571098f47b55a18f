//! The HTTP response-head parser and the body framing (Content-Length,
//! chunked, close) on arbitrary bytes with arbitrary chunk splits.
//!
//! Input: 2 split bytes (head, body), then a raw response. Checks:
//! - `HeadParser` gives the same head, `Bearer` challenge, error and end
//!   offset whole, split and byte by byte;
//! - a larger value buffer only cures `CapacityExceeded`; otherwise it
//!   answers the same;
//! - the documented invariants of `ResponseHead` (status 200–599, never a
//!   length together with chunked);
//! - where httparse also reads the head as a final response, the status
//!   and a single plain `Content-Length` agree;
//! - `BodyReader` gives the same payload, consumed count and end state
//!   whole, split and byte by byte; for chunked bodies it agrees with a
//!   reference decoder written from the grammar.
#![no_main]

use fieldauth::http::{BodyFraming, BodyReader, HeadParser, ResponseHead};
use fieldauth::{Error, HttpError};
use fieldauth_fuzz::{reference_chunked, split, Chunked};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
struct HeadResult {
    end: Result<usize, Error>,
    head: Option<ResponseHead>,
    bearer: Option<String>,
}

fn parse_head<const N: usize>(pieces: &[&[u8]]) -> HeadResult {
    let mut p: HeadParser<N> = HeadParser::new();
    let mut offset = 0usize;
    let mut end = Err(Error::Transport); // input ended inside the head
    for piece in pieces {
        match p.feed(piece) {
            Ok(Some(n)) => {
                assert!(n >= 1 && n <= piece.len());
                end = Ok(offset + n);
                break;
            }
            Ok(None) => {
                assert!(p.head().is_none());
                offset += piece.len();
            }
            Err(e) => {
                end = Err(e);
                // Failed parsers stay failed.
                assert_eq!(p.feed(b"\r\n"), Err(Error::WrongState));
                break;
            }
        }
    }
    if end.is_ok() {
        assert_eq!(p.feed(b"x"), Err(Error::WrongState));
    }
    HeadResult {
        end,
        head: p.head().copied(),
        bearer: p.bearer().map(|b| format!("{b:?}")),
    }
}

#[derive(Debug, PartialEq)]
struct BodyResult {
    payload: Vec<u8>,
    consumed: usize,
    done: bool,
    error: Option<Error>,
    finish: Result<(), Error>,
}

fn read_body(framing: BodyFraming, pieces: &[&[u8]]) -> BodyResult {
    let mut r = BodyReader::new(framing);
    let mut out = BodyResult {
        payload: Vec::new(),
        consumed: 0,
        done: r.is_done(),
        error: None,
        finish: Ok(()),
    };
    'pieces: for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() {
            match r.next(rest) {
                Ok((n, data)) => {
                    assert!(n <= rest.len() && data.len() <= n);
                    // The payload is a subslice of what was consumed.
                    let start = data.as_ptr() as usize;
                    let base = rest.as_ptr() as usize;
                    assert!(data.is_empty() || (start >= base && start + data.len() <= base + n));
                    out.payload.extend_from_slice(data);
                    out.consumed += n;
                    rest = &rest[n..];
                    if n == 0 {
                        assert!(
                            r.is_done(),
                            "consumed 0 of a non-empty input before the end"
                        );
                        break 'pieces;
                    }
                }
                Err(e) => {
                    out.error = Some(e);
                    assert_eq!(r.next(b"0\r\n\r\n"), Err(Error::WrongState));
                    break 'pieces;
                }
            }
        }
        if r.is_done() {
            assert_eq!(r.next(rest), Ok((0, &[][..])));
            break;
        }
    }
    out.done = r.is_done();
    out.finish = r.finish();
    if out.error.is_some() {
        // A failing call reports no count: what was consumed before the
        // error depends on where the pieces split (the payload does not).
        out.consumed = 0;
    }
    out
}

fn check_head(h: &ResponseHead) {
    assert!((200..=599).contains(&h.status), "status {}", h.status);
    assert!(
        !(h.chunked && h.content_length.is_some()),
        "length and chunked: {h:?}"
    );
}

/// httparse's reading of the same head, where it has one: (status, the
/// value of a single all-digit Content-Length, a single `chunked`).
fn httparse_view(input: &[u8]) -> Option<(u16, Option<u64>, bool)> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(input) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let code = resp.code?;
    let mut lengths = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"));
    let length = match (lengths.next(), lengths.next()) {
        (Some(h), None) if !h.value.is_empty() && h.value.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(h.value).ok()?.parse().ok()
        }
        (None, None) => None,
        _ => return None,
    };
    let mut te = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    let chunked = match (te.next(), te.next()) {
        (Some(h), None) => h.value.eq_ignore_ascii_case(b"chunked"),
        (None, None) => false,
        _ => return None,
    };
    Some((code, length, chunked))
}

fuzz_target!(|data: &[u8]| {
    let [head_mode, body_mode, input @ ..] = data else {
        return;
    };
    let whole = parse_head::<256>(&[input]);
    let pieces = split(input, *head_mode);
    let got = parse_head::<256>(&pieces);
    assert_eq!(
        got,
        whole,
        "split head differs from whole: {:?}",
        String::from_utf8_lossy(input)
    );
    if input.len() <= 2048 && *head_mode != 0 {
        let got = parse_head::<256>(&split(input, 0));
        assert_eq!(
            got,
            whole,
            "byte-by-byte head differs: {:?}",
            String::from_utf8_lossy(input)
        );
    }
    // A larger value buffer changes nothing but capacity errors.
    let big = parse_head::<2048>(&[input]);
    // (`needed` is what the value that failed needs; past it, a larger
    // buffer reads on and may stop at anything later in the head.)
    match whole.end {
        Err(Error::CapacityExceeded { needed, capacity }) => {
            assert_eq!(capacity, 256);
            assert!(needed > 256);
        }
        _ => assert_eq!(big, whole, "a larger buffer changed the head"),
    }
    let Ok(end) = whole.end else {
        return;
    };
    let head = whole.head.expect("head after Some");
    check_head(&head);
    if head.status >= 200 {
        if let Some((status, length, chunked)) = httparse_view(&input[..end]) {
            if status >= 200 {
                assert_eq!(status, head.status, "httparse reads another status");
                if let Some(n) = length {
                    assert_eq!(
                        head.content_length,
                        Some(n),
                        "httparse reads another Content-Length"
                    );
                }
                if chunked && head.content_length.is_none() {
                    assert!(head.chunked, "httparse sees Transfer-Encoding: chunked");
                }
            }
        }
    }

    // The body.
    let body = &input[end..];
    let framing = head.framing();
    let reference = read_body(framing, &[body]);
    let got = read_body(framing, &split(body, *body_mode));
    assert_eq!(
        got,
        reference,
        "split body differs ({framing:?}): {:?}",
        String::from_utf8_lossy(body)
    );
    if body.len() <= 2048 && *body_mode != 0 {
        let got = read_body(framing, &split(body, 0));
        assert_eq!(got, reference, "byte-by-byte body differs ({framing:?})");
    }
    match framing {
        BodyFraming::Length(n) => {
            let take = body.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            assert_eq!(reference.payload, &body[..take]);
            assert_eq!(reference.done, take as u64 == n);
            assert_eq!(reference.finish.is_ok(), reference.done);
        }
        BodyFraming::Close => {
            assert_eq!(reference.payload, body);
            assert_eq!(reference.finish, Ok(()));
        }
        BodyFraming::Chunked => match reference_chunked(body) {
            Chunked::Done { payload, consumed } => {
                assert_eq!(
                    reference.error,
                    None,
                    "reference accepts: {:?}",
                    String::from_utf8_lossy(body)
                );
                assert!(reference.done);
                assert_eq!(reference.payload, payload);
                assert_eq!(reference.consumed, consumed);
            }
            Chunked::Truncated { payload } => {
                assert_eq!(
                    reference.error,
                    None,
                    "reference reads a truncated body: {:?}",
                    String::from_utf8_lossy(body)
                );
                assert!(!reference.done);
                assert_eq!(reference.payload, payload);
                assert_eq!(reference.finish, Err(Error::Transport));
            }
            Chunked::Bad { .. } => {
                assert_eq!(
                    reference.error,
                    Some(Error::Http(HttpError::Chunk)),
                    "reference rejects: {:?}",
                    String::from_utf8_lossy(body)
                );
                assert_eq!(reference.finish, Err(Error::WrongState));
            }
        },
    }
});
