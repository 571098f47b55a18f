//! The drivers over scripted in-memory streams: every chunking, tiny
//! buffers, every framing, and every way a stream can fail.

extern crate std;

use std::format;
use std::string::String;
use std::vec::Vec;

use super::*;
use crate::body::ErrorCode;
use crate::error::{HttpError, JsonError, ResponseError};
use crate::http::HeadParser;
use crate::preset;
use crate::session::{Action, Config, RequestKind};

const S: u64 = 1000;
const T0: u64 = 5_000_000;

// ------------------------------------------------------------------ scripted stream

/// How the scripted stream fails once it reaches a byte offset.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cut {
    /// `read` returns 0 / `write` returns `Ok(0)`.
    Zero,
    /// An I/O error.
    Fail,
}

/// A duplex stream: reads come from `rx` at most `piece` bytes at a time;
/// writes land in `tx`, at most `write_max` bytes per call.
struct Script {
    rx: Vec<u8>,
    pos: usize,
    piece: usize,
    /// At this offset of `rx`, reads fail this way (default: the end, 0).
    read_cut: Option<(usize, Cut)>,
    tx: Vec<u8>,
    write_max: usize,
    /// Once this many bytes are written, writes fail this way.
    write_cut: Option<(usize, Cut)>,
    flush_fails: bool,
    flushes: usize,
}

impl Script {
    fn new(rx: &[u8]) -> Self {
        Script {
            rx: rx.to_vec(),
            pos: 0,
            piece: usize::MAX,
            read_cut: None,
            tx: Vec::new(),
            write_max: usize::MAX,
            write_cut: None,
            flush_fails: false,
            flushes: 0,
        }
    }

    fn pieces(mut self, piece: usize) -> Self {
        self.piece = piece;
        self
    }

    fn read_cut(mut self, at: usize, cut: Cut) -> Self {
        self.read_cut = Some((at, cut));
        self
    }

    fn write_cut(mut self, at: usize, cut: Cut) -> Self {
        self.write_cut = Some((at, cut));
        self
    }

    fn sent(&self) -> String {
        String::from_utf8(self.tx.clone()).unwrap()
    }

    fn read_some(&mut self, buf: &mut [u8]) -> core::result::Result<usize, embedded_io::ErrorKind> {
        let end = match self.read_cut {
            Some((at, cut)) if self.pos >= at => {
                return match cut {
                    Cut::Zero => Ok(0),
                    Cut::Fail => Err(embedded_io::ErrorKind::ConnectionReset),
                }
            }
            Some((at, _)) => at.min(self.rx.len()),
            None => self.rx.len(),
        };
        let n = buf.len().min(self.piece).min(end - self.pos);
        buf[..n].copy_from_slice(&self.rx[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    fn write_some(&mut self, buf: &[u8]) -> core::result::Result<usize, embedded_io::ErrorKind> {
        let room = match self.write_cut {
            Some((at, cut)) if self.tx.len() >= at => {
                return match cut {
                    Cut::Zero => Ok(0),
                    Cut::Fail => Err(embedded_io::ErrorKind::BrokenPipe),
                }
            }
            Some((at, _)) => at - self.tx.len(),
            None => usize::MAX,
        };
        let n = buf.len().min(self.write_max).min(room);
        self.tx.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush_now(&mut self) -> core::result::Result<(), embedded_io::ErrorKind> {
        self.flushes += 1;
        if self.flush_fails {
            Err(embedded_io::ErrorKind::TimedOut)
        } else {
            Ok(())
        }
    }
}

impl embedded_io::ErrorType for Script {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> core::result::Result<usize, Self::Error> {
        self.read_some(buf)
    }
}

impl embedded_io::Write for Script {
    fn write(&mut self, buf: &[u8]) -> core::result::Result<usize, Self::Error> {
        self.write_some(buf)
    }

    fn flush(&mut self) -> core::result::Result<(), Self::Error> {
        self.flush_now()
    }
}

// ------------------------------------------------------------------ fixtures

/// Under Miri (tests/miri.sh) a 1 KiB arena: the session wipes its whole
/// arena when dropped, byte by byte (zeroize's volatile writes), and the
/// 3 KiB one made that the larger part of each test's time there. These
/// tests' tokens are short; both sizes hold them.
const ARENA: usize = if cfg!(miri) { 1024 } else { 3072 };
type Sess = Session<ARENA>;

fn autotask() -> Sess {
    let config = Config {
        base_url: "http://127.0.0.1:9/autotask",
        client_id: "demo-client",
        client_secret: "demo-secret",
        ..Config::default()
    };
    Session::new(&preset::AUTOTASK, &config, 42).unwrap()
}

fn field_nation() -> Sess {
    let config = Config {
        base_url: "http://127.0.0.1:9/fieldnation",
        client_id: "demo-client",
        client_secret: "demo-secret",
        ..Config::default()
    };
    Session::new(&preset::FIELD_NATION, &config, 7).unwrap()
}

fn patchworks_key() -> Sess {
    let config = Config {
        base_url: "http://127.0.0.1:9/patchworks",
        api_key: "pw-demo-key",
        ..Config::default()
    };
    Session::new(&preset::PATCHWORKS_API_KEY, &config, 1).unwrap()
}

/// What `write_token_request` writes for a fresh session from `mk`.
fn reference_request(mk: fn() -> Sess, now: u64) -> Vec<u8> {
    let mut s = mk();
    let mut buf = [0u8; 4096];
    let n = s.write_token_request(now, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn token_body(token: &str, expires_in: u32) -> String {
    format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in}}}"#)
}

fn with_length(status: u16, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked(status: u16, body: &str, size: usize) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    for c in body.as_bytes().chunks(size) {
        out += &format!(
            "{:x};ext=1\r\n{}\r\n",
            c.len(),
            std::str::from_utf8(c).unwrap()
        );
    }
    out += "0\r\nTrailer: x\r\n\r\n";
    out.into_bytes()
}

fn close_delimited(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{body}")
        .into_bytes()
}

fn issued(lifetime_s: u32) -> Event {
    Event::TokenIssued {
        kind: RequestKind::Fetch,
        lifetime_s,
        refreshable: false,
    }
}

/// The header line the session's credential gives now.
fn bearer<const N: usize>(s: &mut Session<N>, now: u64) -> Option<String> {
    match s.authorize(now) {
        Authorization::Send(c) => {
            let mut buf = [0u8; 512];
            let n = c.write_header_line(&mut buf).unwrap();
            Some(String::from_utf8(buf[..n].to_vec()).unwrap())
        }
        _ => None,
    }
}

/// A session holding a valid 100 s token ("good") whose refresh is due.
fn due_for_refresh() -> (Sess, u64) {
    let mut s = autotask();
    let mut io = Script::new(&with_length(200, "", &token_body("good", 100)));
    let ev = exchange_token(&mut s, T0, &mut io, &mut [0u8; 256])
        .unwrap()
        .event;
    assert_eq!(ev, issued(100));
    let Action::Ready { next } = s.poll(T0) else {
        panic!()
    };
    assert_eq!(
        s.poll(next),
        Action::SendTokenRequest(RequestKind::Fetch),
        "refresh due"
    );
    (s, next)
}

/// After a failed exchange at `now`: one failed attempt, a retry scheduled
/// (not before `now`), nothing in flight, and the token as `token` says.
fn assert_retry_scheduled(s: &mut Sess, now: u64, token: Option<&str>) {
    let st = s.status();
    assert_eq!(st.failed_attempts, 1, "{st:?}");
    assert_eq!(st.failure, None);
    match token {
        Some(t) => {
            assert_eq!(
                bearer(s, now).as_deref(),
                Some(&*format!("Authorization: Bearer {t}\r\n"))
            );
            assert!(matches!(
                s.poll(now),
                Action::Ready { .. } | Action::SendTokenRequest(_)
            ));
        }
        None => {
            assert_eq!(bearer(s, now), None);
            assert!(matches!(
                s.poll(now),
                Action::Wait { .. } | Action::SendTokenRequest(_)
            ));
        }
    }
    // Nothing in flight: once the backoff has passed, a request is due.
    assert!(matches!(
        s.poll(now + 120 * S),
        Action::SendTokenRequest(RequestKind::Fetch)
    ));
}

// ------------------------------------------------------------------ token exchange

#[test]
fn every_chunking_and_buffer_gives_the_same_exchange() {
    let reference = reference_request(autotask, T0);
    let response = with_length(200, "", &token_body("tok-1", 3600));
    // Under Miri (tests/miri.sh) two exchanges: byte by byte into the big
    // buffer, and pieces of 98 bytes into the 7-byte one (a 1-byte buffer
    // renders the request once per byte: ~12 M instructions natively, 20 s
    // there).
    for piece in (1..=response.len()).step_by(if cfg!(miri) { 97 } else { 1 }) {
        for buf_len in [1, 7, 128, 4096] {
            if cfg!(miri) && (piece, buf_len) != (1, 4096) && (piece, buf_len) != (98, 7) {
                continue;
            }
            let mut s = autotask();
            let mut io = Script::new(&response).pieces(piece);
            io.write_max = piece;
            let mut buf = std::vec![0u8; buf_len];
            let ev = exchange_token(&mut s, T0, &mut io, &mut buf).unwrap().event;
            assert_eq!(ev, issued(3600), "piece {piece}, buffer {buf_len}");
            assert_eq!(io.tx, reference, "piece {piece}, buffer {buf_len}");
            assert_eq!(io.pos, response.len(), "the whole response is read");
            assert!(io.flushes >= 1);
            assert_eq!(
                bearer(&mut s, T0).as_deref(),
                Some("Authorization: Bearer tok-1\r\n")
            );
        }
    }
}

#[test]
fn a_128_byte_buffer_sends_a_longer_request() {
    let reference = reference_request(field_nation, T0);
    assert!(reference.len() > 128, "{}", reference.len());
    let mut s = field_nation();
    let mut io = Script::new(&with_length(200, "", &token_body("fn-tok", 3600)));
    let ev = exchange_token(&mut s, T0, &mut io, &mut [0u8; 128])
        .unwrap()
        .event;
    assert_eq!(ev, issued(3600));
    assert_eq!(io.tx, reference);
    assert_eq!(io.flushes, 1);
}

#[test]
fn chunked_and_close_delimited_bodies() {
    let body = token_body("tok-c", 1800);
    for raw in [
        chunked(200, &body, 1),
        chunked(200, &body, 7),
        chunked(200, &body, 500),
        close_delimited(&body),
    ] {
        // Under Miri (tests/miri.sh) pieces of 5 bytes for the chunked
        // bodies, whole for the close-delimited one.
        let pieces: &[usize] = if cfg!(miri) {
            if raw.ends_with(b"\r\n\r\n") {
                &[5]
            } else {
                &[usize::MAX]
            }
        } else {
            &[1, 2, 5, 64, usize::MAX]
        };
        for &piece in pieces {
            let mut s = autotask();
            let mut io = Script::new(&raw).pieces(piece);
            let ev = exchange_token(&mut s, T0, &mut io, &mut [0u8; 128])
                .unwrap()
                .event;
            assert_eq!(ev, issued(1800), "piece {piece}");
            assert_eq!(
                bearer(&mut s, T0).as_deref(),
                Some("Authorization: Bearer tok-c\r\n")
            );
        }
    }
}

#[test]
fn extra_bytes_after_the_body_are_left_alone() {
    let mut raw = with_length(200, "", &token_body("t", 60));
    raw.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    let mut s = autotask();
    let mut io = Script::new(&raw);
    assert_eq!(
        exchange_token(&mut s, T0, &mut io, &mut [0u8; 4096]).map(|x| x.event),
        Ok(issued(60))
    );
}

#[test]
fn end_of_stream_anywhere_before_the_end_is_a_transport_failure() {
    let raw = with_length(200, "", &token_body("new", 3600));
    let close = close_delimited(&token_body("new", 3600));
    for (raw, last) in [(&raw, raw.len()), (&close, close.len() - 1)] {
        // Under Miri (tests/miri.sh) every 97th cut and the last, each
        // with one of the two kinds of end, taking turns.
        for cut in (0..last).filter(|&c| !cfg!(miri) || c % 97 == 0 || c + 1 == last) {
            for (k, cut_kind) in [Cut::Zero, Cut::Fail].into_iter().enumerate() {
                if cfg!(miri) && (cut / 97 + k) % 2 == 1 {
                    continue;
                }
                // Without a token, and with a valid one being refreshed.
                let mut s = autotask();
                let mut io = Script::new(raw).read_cut(cut, cut_kind).pieces(3);
                let r = exchange_token(&mut s, T0, &mut io, &mut [0u8; 128]);
                // A close-delimited body cut short is a JSON error (or
                // no JSON at all).
                assert!(
                    matches!(
                        r,
                        Err(Error::Transport
                            | Error::Json {
                                kind: JsonError::Truncated,
                                ..
                            }
                            | Error::Response(ResponseError::NotJson))
                    ),
                    "cut {cut}: {r:?}"
                );
                assert_retry_scheduled(&mut s, T0, None);

                // Under Miri (tests/miri.sh) the refresh for every other cut.
                if cfg!(miri) && (cut / 97) % 2 == 1 {
                    continue;
                }
                let (mut s, now) = due_for_refresh();
                let mut io = Script::new(raw).read_cut(cut, cut_kind).pieces(3);
                assert!(exchange_token(&mut s, now, &mut io, &mut [0u8; 128]).is_err());
                assert_retry_scheduled(&mut s, now, Some("good"));
            }
        }
    }
}

#[test]
fn write_failures_and_zero_writes_are_transport_failures() {
    let reference = reference_request(autotask, T0);
    let raw = with_length(200, "", &token_body("new", 3600));
    for (i, at) in [0, 1, 100, reference.len() - 1].into_iter().enumerate() {
        for (k, cut) in [Cut::Zero, Cut::Fail].into_iter().enumerate() {
            // Under Miri (tests/miri.sh) one kind of failure per offset,
            // taking turns, and not offset 1.
            if cfg!(miri) && (at == 1 || (i + k) % 2 == 1) {
                continue;
            }
            let mut s = autotask();
            let mut io = Script::new(&raw).write_cut(at, cut);
            let r = exchange_token(&mut s, T0, &mut io, &mut [0u8; 128]);
            assert_eq!(r, Err(Error::Transport), "at {at} {cut:?}");
            assert_eq!(io.tx.len(), at);
            assert_retry_scheduled(&mut s, T0, None);

            let (mut s, now) = due_for_refresh();
            let mut io = Script::new(&raw).write_cut(at, cut);
            assert_eq!(
                exchange_token(&mut s, now, &mut io, &mut [0u8; 128]),
                Err(Error::Transport)
            );
            assert_retry_scheduled(&mut s, now, Some("good"));
        }
    }
    // A failing flush.
    let (mut s, now) = due_for_refresh();
    let mut io = Script::new(&raw);
    io.flush_fails = true;
    assert_eq!(
        exchange_token(&mut s, now, &mut io, &mut [0u8; 128]),
        Err(Error::Transport)
    );
    assert_eq!(io.pos, 0, "nothing read after a failed flush");
    assert_retry_scheduled(&mut s, now, Some("good"));
}

#[test]
fn malformed_responses_count_once() {
    for (raw, want) in [
        (
            b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n".to_vec(),
            Error::Http(HttpError::HeaderLine),
        ),
        (
            b"HTTP/2 200\r\n\r\n".to_vec(),
            Error::Http(HttpError::StatusLine),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            Error::Http(HttpError::Chunk),
        ),
        (
            with_length(200, "", r#"{"access_token":"x""#),
            Error::Json {
                kind: JsonError::Truncated,
                offset: 19,
            },
        ),
    ] {
        let (mut s, now) = due_for_refresh();
        let mut io = Script::new(&raw).pieces(4);
        let r = exchange_token(&mut s, now, &mut io, &mut [0u8; 128]);
        assert_eq!(r, Err(want));
        // Told exactly once, whether the driver or the session noticed.
        assert_retry_scheduled(&mut s, now, Some("good"));
    }
    // A header value larger than the driver's head buffer.
    let long = format!(
        "WWW-Authenticate: Bearer error_description=\"{}\"\r\n",
        "x".repeat(300)
    );
    let (mut s, now) = due_for_refresh();
    let mut io = Script::new(&with_length(401, &long, "{}"));
    let r = exchange_token(&mut s, now, &mut io, &mut [0u8; 128]);
    assert!(matches!(r, Err(Error::CapacityExceeded { .. })), "{r:?}");
    assert_retry_scheduled(&mut s, now, Some("good"));
}

#[test]
fn error_statuses_are_session_events() {
    let (mut s, now) = due_for_refresh();
    let raw = with_length(
        503,
        "Retry-After: 7\r\n",
        r#"{"error":"temporarily_unavailable"}"#,
    );
    let ev = exchange_token(&mut s, now, &mut Script::new(&raw), &mut [0u8; 64])
        .unwrap()
        .event;
    let Event::Retrying { status: 503, at } = ev else {
        panic!("{ev:?}")
    };
    assert!(at >= now + 7 * S);
    assert_eq!(
        bearer(&mut s, now).as_deref(),
        Some("Authorization: Bearer good\r\n")
    );
}

#[test]
fn nothing_is_sent_when_nothing_is_due_or_the_buffer_is_empty() {
    let (mut s, now) = due_for_refresh();
    let before = s.status();
    let mut io = Script::new(b"");
    assert_eq!(
        exchange_token(&mut s, now, &mut io, &mut []),
        Err(Error::buffer_too_small(1))
    );
    assert_eq!(s.status(), before);
    // An API key session never sends token requests.
    let mut k = patchworks_key();
    assert_eq!(
        exchange_token(&mut k, T0, &mut io, &mut [0u8; 64]),
        Err(Error::WrongState)
    );
    assert!(io.tx.is_empty());
    assert_eq!(k.status().failed_attempts, 0);
}

// ------------------------------------------------------------------ API requests

fn api_url(base: &'static str, path: &'static str) -> Url<'static> {
    Url::parse(base).unwrap().join(path).unwrap()
}

/// `api_get` with a tiny buffer; returns the request text, the response
/// and the body read with `read_body`.
fn get<const N: usize>(
    s: &mut Session<N>,
    now: u64,
    url: Url<'_>,
    raw: &[u8],
    piece: usize,
    buf_len: usize,
) -> (String, ApiOutcome, Result<Vec<u8>>) {
    let mut io = Script::new(raw).pieces(piece);
    let mut buf = std::vec![0u8; buf_len];
    let outcome = api_get(s, now, &mut io, url, &mut buf).unwrap();
    let body = match &outcome {
        ApiOutcome::Response(r) => {
            let mut body = Vec::new();
            read_body(&mut io, r, &mut buf, |d| body.extend_from_slice(d)).map(|n| {
                assert_eq!(n, body.len() as u64);
                body
            })
        }
        _ => Ok(Vec::new()),
    };
    (io.sent(), outcome, body)
}

fn verdict(o: &ApiOutcome) -> ApiVerdict {
    match o {
        ApiOutcome::Response(r) => r.verdict,
        other => panic!("{other:?}"),
    }
}

#[test]
fn api_requests_carry_the_credential_through_any_buffer() {
    let payload = r#"{"data":[{"id":1},{"id":2}]}"#;
    let raws = [
        with_length(200, "", payload),
        chunked(200, payload, 5),
        close_delimited(payload),
    ];
    for (i, raw) in raws.iter().enumerate() {
        for piece in [1, 3, 17, usize::MAX] {
            for buf_len in [1, 16, 128, 1024] {
                // Under Miri (tests/miri.sh) one combination for the length
                // and the close-delimited framing, (3, 1) and (17, 16); the
                // chunked one is read in the async and read-ahead tests.
                let miri_pick = [Some((3, 1)), None, Some((17, 16))][i];
                if cfg!(miri) && Some((piece, buf_len)) != miri_pick {
                    continue;
                }
                // A raw API key in Authorization.
                let mut s = patchworks_key();
                let url = api_url("http://127.0.0.1:9/patchworks", "/core/v1/flows");
                let (req, out, body) = get(&mut s, T0, url, raw, piece, buf_len);
                assert_eq!(
                    req,
                    "GET /patchworks/core/v1/flows HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\
                     Authorization: pw-demo-key\r\nAccept: application/json\r\n\r\n"
                );
                assert_eq!(verdict(&out), ApiVerdict::Ok);
                assert_eq!(
                    body.unwrap(),
                    payload.as_bytes(),
                    "piece {piece} buffer {buf_len}"
                );

                // A token in the query.
                let mut s = field_nation();
                let tok = with_length(200, "", &token_body("a/b+c", 3600));
                exchange_token(&mut s, T0, &mut Script::new(&tok), &mut [0u8; 64]).unwrap();
                let url = api_url(
                    "http://127.0.0.1:9/fieldnation",
                    "/api/rest/v2/workorders?page=2",
                );
                let (req, out, body) = get(&mut s, T0, url, raw, piece, buf_len);
                assert_eq!(
                    req,
                    "GET /fieldnation/api/rest/v2/workorders?page=2&access_token=a%2Fb%2Bc HTTP/1.1\r\n\
                     Host: 127.0.0.1:9\r\nAccept: application/json\r\n\r\n"
                );
                assert_eq!(verdict(&out), ApiVerdict::Ok);
                assert_eq!(body.unwrap(), payload.as_bytes());
            }
        }
    }
}

#[test]
fn api_401_drops_the_token_and_429_blocks() {
    let (mut s, _) = due_for_refresh();
    let url = api_url(
        "http://127.0.0.1:9/autotask",
        "/ATServicesRest/V1.0/Companies",
    );
    let raw = with_length(
        401,
        "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n",
        "{}",
    );
    let (req, out, _) = get(&mut s, T0, url, &raw, 2, 32);
    assert!(req.contains("\r\nAuthorization: Bearer good\r\n"), "{req}");
    assert_eq!(verdict(&out), ApiVerdict::RetryWithNewToken);
    assert_eq!(s.poll(T0), Action::SendTokenRequest(RequestKind::Fetch));

    let mut s = patchworks_key();
    let url = api_url("http://127.0.0.1:9/patchworks", "/core/v1/flows");
    let raw = with_length(429, "Retry-After: 3\r\n", "{}");
    let (_, out, _) = get(&mut s, T0, url, &raw, 5, 64);
    assert_eq!(verdict(&out), ApiVerdict::RateLimited { until: T0 + 3 * S });
    // Until then nothing is sent.
    let (req, out, _) = get(&mut s, T0 + S, url, b"", 5, 64);
    assert_eq!(out, ApiOutcome::Wait { until: T0 + 3 * S });
    assert!(req.is_empty());
    // Without a credential, nothing is sent either.
    let mut s = autotask();
    let (req, out, _) = get(&mut s, T0, url, b"", 5, 64);
    assert_eq!((req.as_str(), out), ("", ApiOutcome::NoCredential));
}

#[test]
fn the_bearer_challenge_texts_come_with_the_response() {
    // Issue #14 §2.4: the driver's response carried the error code only.
    let url = api_url(
        "http://127.0.0.1:9/autotask",
        "/ATServicesRest/V1.0/Companies",
    );
    let raw = with_length(
        401,
        "WWW-Authenticate: Bearer realm=\"api\", error=\"invalid_token\", \
         error_description=\"The access token expired\", scope=\"read write\"\r\n",
        "{}",
    );
    for (piece, buf_len) in [(1, 1), (3, 16), (usize::MAX, 1024)] {
        // Under Miri (tests/miri.sh) the middle one.
        if cfg!(miri) && piece != 3 {
            continue;
        }
        let (mut s, _) = due_for_refresh();
        let (_, out, _) = get(&mut s, T0, url, &raw, piece, buf_len);
        let ApiOutcome::Response(r) = out else {
            panic!("{out:?}")
        };
        let b = r.bearer().expect("a challenge");
        assert_eq!(b.code, ErrorCode::InvalidToken);
        assert_eq!(b.error, Some("invalid_token"));
        assert_eq!(b.error_description, Some("The access token expired"));
        assert_eq!(b.scope, Some("read write"));
        assert_eq!(b.realm, Some("api"));
        assert!(format!("{r:?}").contains("The access token expired"));
    }
    // insufficient_scope: the scope the resource needs.
    let raw = with_length(
        403,
        "WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"admin\"\r\n",
        "{}",
    );
    let (mut s, _) = due_for_refresh();
    let (_, out, _) = get(&mut s, T0, url, &raw, 7, 64);
    let ApiOutcome::Response(r) = out else {
        panic!("{out:?}")
    };
    assert_eq!(r.verdict, ApiVerdict::Forbidden);
    let b = r.bearer().unwrap();
    assert_eq!(
        (b.code, b.scope, b.error_description),
        (ErrorCode::InsufficientScope, Some("admin"), None)
    );
    // No challenge: none.
    let (mut s, _) = due_for_refresh();
    let (_, out, _) = get(&mut s, T0, url, &with_length(200, "", "{}"), 7, 64);
    let ApiOutcome::Response(r) = out else {
        panic!("{out:?}")
    };
    assert!(r.bearer().is_none());
}

#[test]
fn the_exchange_says_whether_the_connection_goes_on() {
    // Issue #14 §2.2: `Connection: close` on a token response was invisible,
    // so a host reused a closed connection and the session counted a
    // failed attempt.
    let body = token_body("tok", 3600);
    let cases: [(Vec<u8>, bool); 5] = [
        (with_length(200, "", &body), true),
        (with_length(200, "Connection: close\r\n", &body), false),
        (
            with_length(200, "Connection: keep-alive, Close\r\n", &body),
            false,
        ),
        (chunked(200, &body, 7), true),
        (close_delimited(&body), false),
    ];
    // Under Miri (tests/miri.sh) every other case.
    for (raw, reusable) in cases.into_iter().step_by(if cfg!(miri) { 2 } else { 1 }) {
        let mut s = autotask();
        let x = exchange_token(&mut s, T0, &mut Script::new(&raw), &mut [0u8; 64]).unwrap();
        assert_eq!(x.event, issued(3600));
        assert_eq!(x.reusable, reusable, "{}", String::from_utf8_lossy(&raw));
        assert_eq!(x.date, None);
    }
    // HTTP/1.0 without keep-alive, and a Date.
    let raw = format!(
        "HTTP/1.0 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut s = autotask();
    let x = exchange_token(&mut s, T0, &mut Script::new(raw.as_bytes()), &mut [0u8; 64]).unwrap();
    assert_eq!((x.reusable, x.date), (false, Some(784_111_777)));
}

#[test]
fn the_host_asks_before_it_connects() {
    // Issue #14 §2.5: api_get needed a connected stream before it knew
    // whether a request could go out.
    let url = api_url(
        "http://127.0.0.1:9/autotask",
        "/ATServicesRest/V1.0/Companies",
    );
    let mut s = autotask();
    assert_eq!(api_permit(&mut s, T0), Err(NotPermitted::NoCredential));
    let tok = with_length(200, "", &token_body("good", 3600));
    exchange_token(&mut s, T0, &mut Script::new(&tok), &mut [0u8; 64]).unwrap();
    // A permit, then the connection, then the request.
    let permit = api_permit(&mut s, T0).unwrap();
    let mut io = Script::new(&with_length(429, "Retry-After: 3\r\n", "{}"));
    let out = api_get_permitted(&mut s, permit, T0, &mut io, url, &mut [0u8; 16]).unwrap();
    assert!(
        io.sent().contains("\r\nAuthorization: Bearer good\r\n"),
        "{}",
        io.sent()
    );
    assert_eq!(verdict(&out), ApiVerdict::RateLimited { until: T0 + 3 * S });
    // Rate limited: no permit (and no connection) until then.
    assert_eq!(
        api_permit(&mut s, T0 + S),
        Err(NotPermitted::Wait { until: T0 + 3 * S })
    );
    // A permit whose token is dropped before the request goes out: nothing
    // is sent.
    let permit = api_permit(&mut s, T0 + 3 * S).unwrap();
    let mut h: HeadParser = HeadParser::new();
    h.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    s.on_api_response(T0 + 3 * S, h.head().unwrap(), b"");
    let mut io = Script::new(b"");
    let out = api_get_permitted(&mut s, permit, T0 + 3 * S, &mut io, url, &mut [0u8; 16]).unwrap();
    assert_eq!(out, ApiOutcome::NoCredential);
    assert!(io.sent().is_empty());
}

#[test]
fn a_permit_counts_the_budget_once() {
    // Autotask's API budget allows a burst; count how many requests go out
    // before the client-side budget says wait, with permits and with
    // api_get: the same.
    let url = api_url(
        "http://127.0.0.1:9/autotask",
        "/ATServicesRest/V1.0/Companies",
    );
    let ok = with_length(200, "", "{}");
    let tok = with_length(200, "", &token_body("good", 3600));
    let count = |permits: bool| {
        let mut s = autotask();
        exchange_token(&mut s, T0, &mut Script::new(&tok), &mut [0u8; 64]).unwrap();
        let mut sent = 0;
        // One simulated minute, an attempt every 10 ms (under Miri,
        // tests/miri.sh: 0.3 seconds).
        for k in 0..if cfg!(miri) { 30u64 } else { 6_000 } {
            let now = T0 + k * 10;
            let mut io = Script::new(&ok);
            let out = if permits {
                match api_permit(&mut s, now) {
                    Ok(p) => {
                        api_get_permitted(&mut s, p, now, &mut io, url, &mut [0u8; 64]).unwrap()
                    }
                    Err(o) => o.into(),
                }
            } else {
                api_get(&mut s, now, &mut io, url, &mut [0u8; 64]).unwrap()
            };
            match out {
                ApiOutcome::Response(_) => sent += 1,
                ApiOutcome::Wait { .. } => {}
                ApiOutcome::NoCredential => panic!("no credential"),
            }
        }
        sent
    };
    let (a, b) = (count(true), count(false));
    assert_eq!(a, b);
    // Autotask: at most 600 a minute (the budget spaces them out).
    if !cfg!(miri) {
        assert!((500..=600).contains(&a), "{a}");
    }
    assert!(a > 1, "{a}");
}

#[test]
fn an_expired_token_phrase_after_the_head_is_read_ahead() {
    let body = r#"{"error":"invalid_request","error_description":"Expired token"}"#;
    // (Under Miri, tests/miri.sh, the chunked one only: the padded case
    // below has a length.)
    let mut raws = if cfg!(miri) {
        Vec::new()
    } else {
        std::vec![with_length(400, "", body)]
    };
    // Chunks cut the phrase anywhere: what the session sees is the payload.
    // (Under Miri, tests/miri.sh: chunks of 5 bytes, read in pieces of 7;
    // the driver checks the chunked body read so far after each read, so
    // 1-byte chunks in pieces of 7 are ~7 M instructions natively.)
    let (sizes, pieces): (&[usize], &[usize]) = if cfg!(miri) {
        (&[5], &[7])
    } else {
        (&[1, 2, 3, 5, 9, 13, 64], &[1, 7, usize::MAX])
    };
    raws.extend(sizes.iter().map(|&size| chunked(400, body, size)));
    for raw in raws {
        for &piece in pieces {
            let mut s = field_nation();
            let tok = with_length(200, "", &token_body("old", 3600));
            exchange_token(&mut s, T0, &mut Script::new(&tok), &mut [0u8; 64]).unwrap();
            let url = api_url("http://127.0.0.1:9/fieldnation", "/api/rest/v2/workorders");
            let (_, out, read) = get(&mut s, T0, url, &raw, piece, 2048);
            assert_eq!(
                verdict(&out),
                ApiVerdict::RetryWithNewToken,
                "piece {piece}"
            );
            assert_eq!(read.unwrap(), body.as_bytes());
            assert_eq!(s.poll(T0), Action::SendTokenRequest(RequestKind::Fetch));
        }
    }
    // A head that nearly fills a 128-byte buffer: the body read so far moves
    // to the front, so the whole buffer is room for reading ahead.
    let padding = format!("X-Padding: {}\r\n", "p".repeat(90));
    let raw = with_length(400, &padding, body);
    // Under Miri (tests/miri.sh) a sample of the piece sizes.
    for piece in (1..=raw.len()).step_by(if cfg!(miri) { 200 } else { 1 }) {
        let mut s = field_nation();
        let tok = with_length(200, "", &token_body("old", 3600));
        exchange_token(&mut s, T0, &mut Script::new(&tok), &mut [0u8; 64]).unwrap();
        let url = api_url("http://127.0.0.1:9/fieldnation", "/api/rest/v2/workorders");
        let (_, out, read) = get(&mut s, T0, url, &raw, piece, 128);
        assert_eq!(
            verdict(&out),
            ApiVerdict::RetryWithNewToken,
            "piece {piece}"
        );
        assert_eq!(read.unwrap(), body.as_bytes());
    }
    // A 400 without the phrase is just a 400.
    let mut s = field_nation();
    let tok = with_length(200, "", &token_body("old", 3600));
    exchange_token(&mut s, T0, &mut Script::new(&tok), &mut [0u8; 64]).unwrap();
    let url = api_url("http://127.0.0.1:9/fieldnation", "/api/rest/v2/workorders");
    let (_, out, _) = get(&mut s, T0, url, &with_length(400, "", "{}"), 1, 512);
    assert_eq!(verdict(&out), ApiVerdict::Ok);
}

#[test]
fn api_transport_failures_leave_the_session_alone() {
    let url = api_url("http://127.0.0.1:9/patchworks", "/core/v1/flows");
    let raw = with_length(200, "", r#"{"data":[]}"#);
    let head_len = raw.len() - 11;
    for cut in [0, 5, head_len - 1] {
        for kind in [Cut::Zero, Cut::Fail] {
            let mut s = patchworks_key();
            let mut io = Script::new(&raw).read_cut(cut, kind);
            let r = api_get(&mut s, T0, &mut io, url, &mut [0u8; 32]);
            assert_eq!(r, Err(Error::Transport));
            assert_eq!(s.status().failed_attempts, 0);
            assert!(s.status().usable);
        }
    }
    for kind in [Cut::Zero, Cut::Fail] {
        let mut s = patchworks_key();
        let mut io = Script::new(&raw).write_cut(10, kind);
        assert_eq!(
            api_get(&mut s, T0, &mut io, url, &mut [0u8; 32]),
            Err(Error::Transport)
        );
    }
    // A body cut short.
    for cut in [head_len, head_len + 4] {
        let mut s = patchworks_key();
        let mut io = Script::new(&raw).read_cut(cut, Cut::Zero).pieces(3);
        let mut buf = [0u8; 32];
        let Ok(ApiOutcome::Response(r)) = api_get(&mut s, T0, &mut io, url, &mut buf) else {
            panic!()
        };
        assert_eq!(
            read_body(&mut io, &r, &mut buf, |_| {}),
            Err(Error::Transport)
        );
    }
    // A leftover that is not in the buffer.
    let mut s = patchworks_key();
    let mut io = Script::new(&raw);
    let mut buf = [0u8; 512];
    let Ok(ApiOutcome::Response(mut r)) = api_get(&mut s, T0, &mut io, url, &mut buf) else {
        panic!()
    };
    r.leftover = 600..700;
    assert_eq!(
        read_body(&mut io, &r, &mut buf, |_| {}),
        Err(Error::WrongState)
    );
}

#[test]
fn invalid_api_credentials_are_refused_before_sending() {
    use crate::apply::ApiCredential;
    let url = api_url(
        "http://127.0.0.1:9/autotask",
        "/ATServicesRest/V1.0/Companies",
    );
    for cred in [
        ApiCredential::Header {
            name: "Host",
            value: "evil",
        },
        ApiCredential::Bearer("tok\r\nX-Injected: 1"),
        ApiCredential::QueryParam {
            name: "",
            value: "v",
        },
    ] {
        let mut io = Script::new(b"");
        let mut m = SendApi::new(cred, url);
        run(&mut io, &mut m, &mut [0u8; 64]);
        assert!(
            matches!(m.out, Some(Err(Error::InvalidInput { .. }))),
            "{cred:?}"
        );
        assert!(io.tx.is_empty());
    }
}

// ------------------------------------------------------------------ async

#[cfg(feature = "embedded-io-async")]
mod asynchronous {
    use super::*;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    impl embedded_io_async::Read for Script {
        async fn read(&mut self, buf: &mut [u8]) -> core::result::Result<usize, Self::Error> {
            self.read_some(buf)
        }
    }

    impl embedded_io_async::Write for Script {
        async fn write(&mut self, buf: &[u8]) -> core::result::Result<usize, Self::Error> {
            self.write_some(buf)
        }

        async fn flush(&mut self) -> core::result::Result<(), Self::Error> {
            self.flush_now()
        }
    }

    /// Polls `f` to completion (the scripted stream is always ready).
    fn block_on<F: Future>(f: F) -> F::Output {
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut f = pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn async_drivers_match_the_blocking_ones() {
        let reference = reference_request(autotask, T0);
        let response = with_length(200, "", &token_body("tok-a", 3600));
        // Under Miri (tests/miri.sh) byte by byte and whole.
        let pieces: &[usize] = if cfg!(miri) {
            &[1, usize::MAX]
        } else {
            &[1, 2, 9, usize::MAX]
        };
        for &piece in pieces {
            let mut s = autotask();
            let mut io = Script::new(&response).pieces(piece);
            io.write_max = piece;
            let ev = block_on(exchange_token_async(&mut s, T0, &mut io, &mut [0u8; 128]))
                .map(|x| x.event);
            assert_eq!(ev, Ok(issued(3600)));
            assert_eq!(io.tx, reference);

            let payload = r#"{"items":[1,2,3]}"#;
            let url = api_url(
                "http://127.0.0.1:9/autotask",
                "/ATServicesRest/V1.0/Tickets",
            );
            let mut io = Script::new(&chunked(200, payload, 4)).pieces(piece);
            let mut buf = [0u8; 16];
            let out = block_on(api_get_async(&mut s, T0, &mut io, url, &mut buf)).unwrap();
            let ApiOutcome::Response(r) = out else {
                panic!()
            };
            assert_eq!(r.verdict, ApiVerdict::Ok);
            assert!(io.sent().contains("Authorization: Bearer tok-a\r\n"));
            let mut body = Vec::new();
            let n = block_on(read_body_async(&mut io, &r, &mut buf, |d| {
                body.extend_from_slice(d)
            }));
            assert_eq!(n, Ok(payload.len() as u64));
            assert_eq!(body, payload.as_bytes());
        }
        // Failures are handled the same way.
        let (mut s, now) = due_for_refresh();
        let mut io = Script::new(&response).read_cut(20, Cut::Fail);
        let r = block_on(exchange_token_async(&mut s, now, &mut io, &mut [0u8; 128]));
        assert_eq!(r, Err(Error::Transport));
        assert_retry_scheduled(&mut s, now, Some("good"));
    }
}

// ------------------------------------------------------------------ std

#[cfg(feature = "std")]
#[test]
fn from_std_retries_interrupted_calls() {
    use std::io;

    /// A std stream that is interrupted before every call succeeds.
    struct Flaky {
        rx: io::Cursor<Vec<u8>>,
        tx: Vec<u8>,
        interrupt: bool,
    }
    impl Flaky {
        fn tick(&mut self) -> io::Result<()> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                Err(io::ErrorKind::Interrupted.into())
            } else {
                Ok(())
            }
        }
    }
    impl io::Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.tick()?;
            let n = buf.len().min(5);
            self.rx.read(&mut buf[..n])
        }
    }
    impl io::Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.tick()?;
            self.tx.write(&buf[..buf.len().min(5)])
        }
        fn flush(&mut self) -> io::Result<()> {
            self.tick()
        }
    }

    let response = with_length(200, "", &token_body("std", 60));
    let mut io = FromStd::new(Flaky {
        rx: io::Cursor::new(response.clone()),
        tx: Vec::new(),
        interrupt: false,
    });
    let mut s = autotask();
    assert_eq!(
        exchange_token(&mut s, T0, &mut io, &mut [0u8; 128]).map(|x| x.event),
        Ok(issued(60))
    );
    assert_eq!(io.inner().tx, reference_request(autotask, T0));
    assert_eq!(io.into_inner().rx.position(), response.len() as u64);
}
