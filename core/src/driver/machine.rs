//! The drivers' logic as sans-IO state machines: each says which I/O
//! operation it needs next ([`Step`]) and is told what that operation did
//! ([`Did`]). The blocking and async front ends only perform the operations
//! (the `drive!` loop), so both share every decision made here.

use core::ops::Range;

use super::{ApiResponse, HEAD_CAPACITY};
use crate::apply::ApiCredential;
use crate::error::{Error, Result};
use crate::http::{BodyFraming, BodyReader, HeadParser, ResponseHead};
use crate::session::{Event, Progress, Session, TokenBody, TokenId};
use crate::url::Url;
use crate::write::{Window, Writer};

/// The I/O operation a machine needs next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Write `buf[range]` (one `write` call; the machine loops).
    Write(Range<usize>),
    /// Flush the stream.
    Flush,
    /// Read into `buf[range]` (one `read` call).
    Read(Range<usize>),
    /// Finished: the machine holds its result.
    Done,
}

/// What the last operation did. Errors are not kept: every transport failure
/// becomes [`Error::Transport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Did {
    /// Nothing yet: the first call.
    Start,
    /// `write` returned `Some(n)`, or failed.
    Wrote(Option<usize>),
    /// `flush` succeeded or failed.
    Flushed(bool),
    /// `read` returned `Some(n)`, or failed.
    Read(Option<usize>),
}

/// A state machine the `drive!` loop runs over one stream and one buffer.
/// Machines keep their result (the loop is the same for all of them, so a
/// firmware image holds one loop per stream type).
pub(super) trait Machine {
    /// Takes the result of the last operation; returns the next one.
    fn resume(&mut self, did: Did, buf: &mut [u8]) -> Step;
}

fn read_all(buf: &[u8]) -> Step {
    Step::Read(0..buf.len())
}

// ------------------------------------------------------------------ sending

/// Sends a request window by window through the buffer, then flushes. The
/// request is produced by a `fill(offset, buf)` function; every window is
/// written with as many `write` calls as the stream needs (`Ok(0)` is a
/// transport failure, never a panic).
#[derive(Clone, Copy, Debug, Default)]
struct Sender {
    /// Offset of the window in the buffer within the whole request.
    offset: usize,
    /// Length of the whole request (0 until the first window is filled).
    total: usize,
    /// Bytes of the window already written.
    pos: usize,
    /// Length of the window.
    len: usize,
    flushing: bool,
}

impl Sender {
    /// Whether the first window was produced (for a token request: the
    /// session marked it in flight).
    fn started(&self) -> bool {
        self.total > 0
    }

    /// [`Step::Done`] once everything is written and flushed.
    fn resume(
        &mut self,
        did: Did,
        buf: &mut [u8],
        fill: impl FnOnce(usize, &mut [u8]) -> Result<Window>,
    ) -> Result<Step> {
        match did {
            Did::Start => self.fill(0, buf, fill),
            Did::Wrote(Some(n)) if n > 0 && !self.flushing => {
                // A stream that claims more than it was given is clamped.
                self.pos = self.pos.saturating_add(n).min(self.len);
                if self.pos < self.len {
                    return Ok(Step::Write(self.pos..self.len));
                }
                self.offset = self.offset.saturating_add(self.len);
                if self.offset < self.total {
                    self.fill(self.offset, buf, fill)
                } else {
                    self.flushing = true;
                    Ok(Step::Flush)
                }
            }
            Did::Flushed(true) if self.flushing => Ok(Step::Done),
            _ => Err(Error::Transport),
        }
    }

    fn fill(
        &mut self,
        offset: usize,
        buf: &mut [u8],
        fill: impl FnOnce(usize, &mut [u8]) -> Result<Window>,
    ) -> Result<Step> {
        let w = fill(offset, buf)?;
        if w.written == 0 {
            // Only an empty buffer makes an empty window before the end.
            return Err(Error::buffer_too_small(1));
        }
        self.total = w.total;
        self.len = w.written;
        self.pos = 0;
        Ok(Step::Write(0..w.written))
    }
}

/// Feeds `buf[..n]` to the head parser: `Ok(Some((head, body start)))` once
/// the head is complete.
fn feed_head(
    parser: &mut HeadParser<HEAD_CAPACITY>,
    buf: &[u8],
    n: usize,
) -> Result<Option<(ResponseHead, usize)>> {
    let chunk = buf.get(..n).ok_or(Error::Transport)?;
    match parser.feed(chunk)? {
        None => Ok(None),
        Some(k) => {
            let head = parser.head().copied().ok_or(Error::WrongState)?;
            Ok(Some((head, k)))
        }
    }
}

// ------------------------------------------------------------------ token exchange

/// One whole token exchange: request out, response head and body in.
pub(super) struct TokenExchange<'s, const N: usize> {
    session: &'s mut Session<N>,
    now: u64,
    sender: Sender,
    /// The request is out; reading the head (`body` false) or the body.
    reading: bool,
    body: bool,
    /// The result, once done.
    pub(super) out: Option<Result<Event>>,
    head: HeadParser<HEAD_CAPACITY>,
    /// The response body's state (the session's [`TokenBody`]).
    token_body: TokenBody,
}

impl<'s, const N: usize> TokenExchange<'s, N> {
    pub(super) fn new(session: &'s mut Session<N>, now: u64) -> Self {
        TokenExchange {
            session,
            now,
            sender: Sender::default(),
            reading: false,
            body: false,
            out: None,
            head: HeadParser::new(),
            token_body: TokenBody::new(),
        }
    }

    /// The exchange's result, with what the head said about the connection.
    pub(super) fn finish(&self) -> Result<super::Exchanged> {
        let event = super::finish(self.out)?;
        Ok(super::Exchanged::new(event, self.head.head()))
    }

    /// Ends with `r`.
    fn done(&mut self, r: Result<Event>) -> Step {
        self.out = Some(r);
        Step::Done
    }

    /// A failure the session has not seen: tell it (if a request is in
    /// flight), so it schedules a retry.
    fn fail(&mut self, e: Error) -> Step {
        if self.sender.started() {
            self.session.on_transport_error(self.now);
        }
        self.done(Err(e))
    }

    /// Body bytes for the session (which handles its own failures).
    fn body_bytes(&mut self, chunk: &[u8], cap: usize) -> Step {
        match self
            .session
            .on_token_body(self.now, &mut self.token_body, chunk)
        {
            Ok(Progress {
                event: Some(ev), ..
            }) => self.done(Ok(ev)),
            Ok(_) => Step::Read(0..cap),
            Err(e) => self.done(Err(e)),
        }
    }

    fn head_bytes(&mut self, n: usize, buf: &[u8]) -> Step {
        match feed_head(&mut self.head, buf, n) {
            Ok(None) => read_all(buf),
            Ok(Some((head, k))) => {
                if let Err(e) = self
                    .session
                    .on_token_head(self.now, &head, &mut self.token_body)
                {
                    return self.fail(e);
                }
                self.body = true;
                self.body_bytes(buf.get(k..n).unwrap_or_default(), buf.len())
            }
            Err(e) => self.fail(e),
        }
    }
}

impl<const N: usize> Machine for TokenExchange<'_, N> {
    fn resume(&mut self, did: Did, buf: &mut [u8]) -> Step {
        if self.out.is_some() {
            return Step::Done;
        }
        if !self.reading {
            if did == Did::Start && buf.is_empty() {
                // Checked before the session marks anything in flight.
                return self.done(Err(Error::buffer_too_small(1)));
            }
            let (session, now) = (&mut *self.session, self.now);
            let fill = |offset, b: &mut [u8]| session.write_token_request_window(now, offset, b);
            return match self.sender.resume(did, buf, fill) {
                Ok(Step::Done) => {
                    self.reading = true;
                    read_all(buf)
                }
                Ok(step) => step,
                Err(e) => self.fail(e),
            };
        }
        match did {
            Did::Read(Some(n)) if n > 0 && !self.body => self.head_bytes(n, buf),
            Did::Read(Some(n)) if n > 0 => match buf.get(..n) {
                Some(chunk) => self.body_bytes(chunk, buf.len()),
                None => self.fail(Error::Transport),
            },
            // End of stream in the body: the session completes a
            // close-delimited body or fails the exchange itself.
            Did::Read(Some(_)) if self.body => {
                let r = self.session.on_token_eof(self.now, &mut self.token_body);
                self.done(r)
            }
            _ => self.fail(Error::Transport),
        }
    }
}

// ------------------------------------------------------------------ API requests

/// Sends `GET target HTTP/1.1` with `Host`, the credential and
/// `Accept: application/json`.
pub(super) struct SendApi<'c, 'u> {
    cred: ApiCredential<'c>,
    url: Url<'u>,
    sender: Sender,
    /// The result, once done.
    pub(super) out: Option<Result<()>>,
}

impl<'c, 'u> SendApi<'c, 'u> {
    pub(super) fn new(cred: ApiCredential<'c>, url: Url<'u>) -> Self {
        SendApi {
            cred,
            url,
            sender: Sender::default(),
            out: None,
        }
    }
}

/// Writes the API request head.
fn emit_api(cred: &ApiCredential<'_>, url: &Url<'_>, w: &mut Writer<'_>) {
    let (prefix, path) = url.target_parts();
    w.str("GET ");
    w.str(prefix);
    w.str(path);
    cred.emit_query(w, path);
    w.str(" HTTP/1.1\r\nHost: ");
    w.str(url.host_header());
    w.str("\r\n");
    cred.emit_header_line(w);
    w.str("Accept: application/json\r\n\r\n");
}

impl Machine for SendApi<'_, '_> {
    fn resume(&mut self, did: Did, buf: &mut [u8]) -> Step {
        if self.out.is_some() {
            return Step::Done;
        }
        let check = if did == Did::Start {
            self.cred.validate()
        } else {
            Ok(())
        };
        let (cred, url) = (&self.cred, &self.url);
        let fill = |offset, b: &mut [u8]| {
            let mut w = Writer::window(b, offset);
            emit_api(cred, url, &mut w);
            Ok(w.finish_window())
        };
        match check.and_then(|()| self.sender.resume(did, buf, fill)) {
            Ok(Step::Done) => self.out = Some(Ok(())),
            Ok(step) => return step,
            Err(e) => self.out = Some(Err(e)),
        }
        Step::Done
    }
}

/// Reads an API response head and reports it to the session.
pub(super) struct ReadApi<'s, const N: usize> {
    session: &'s mut Session<N>,
    now: u64,
    /// The token the request was sent with.
    token: TokenId,
    head: HeadParser<HEAD_CAPACITY>,
    /// Head complete; body bytes `start..end` of the buffer are kept while
    /// a 400 body is read ahead.
    got: Option<(ResponseHead, usize, usize)>,
    /// The result, once done.
    pub(super) out: Option<Result<ApiResponse>>,
}

impl<'s, const N: usize> ReadApi<'s, N> {
    pub(super) fn new(session: &'s mut Session<N>, now: u64, token: TokenId) -> Self {
        ReadApi {
            session,
            now,
            token,
            head: HeadParser::new(),
            got: None,
            out: None,
        }
    }

    /// Reads ahead into the buffer, or reports the response.
    fn next(&mut self, head: ResponseHead, start: usize, end: usize, buf: &mut [u8]) -> Step {
        // A chunked body is decoded into the second half of the space left
        // (its payload is never longer than its raw bytes).
        let limit = if head.chunked {
            start.saturating_add(buf.len().saturating_sub(start) / 2)
        } else {
            buf.len()
        };
        if end < limit && head.status == 400 && !body_in(&head, buf.get(start..end)) {
            self.got = Some((head, start, end));
            return Step::Read(end..limit);
        }
        self.report(head, start, end, buf)
    }

    /// Reports the response with the body bytes `start..end` of the buffer.
    fn report(&mut self, head: ResponseHead, start: usize, end: usize, buf: &mut [u8]) -> Step {
        // What the session sees is the payload: a provider's phrase must not
        // depend on where the chunks were cut.
        let prefix = if head.chunked {
            end..unchunk(buf, start, end)
        } else {
            start..end
        };
        let prefix = buf.get(prefix).unwrap_or_default();
        let verdict = self
            .session
            .on_api_response_for(self.now, &head, prefix, self.token);
        self.out = Some(Ok(ApiResponse {
            head,
            verdict,
            leftover: start..end,
            challenge: self.head.challenge(),
        }));
        Step::Done
    }
}

/// Moves `buf[from..to]` to the start of `buf`; returns its length.
fn to_front(buf: &mut [u8], from: usize, to: usize) -> usize {
    let len = to.saturating_sub(from);
    for i in 0..len {
        // `from + i` is ahead of `i`: each byte is read before it is
        // overwritten.
        if let Some(b) = buf.get(from.saturating_add(i)).copied() {
            if let Some(d) = buf.get_mut(i) {
                *d = b;
            }
        }
    }
    len
}

/// Copies the payload of the chunked bytes `buf[start..end]` to `buf[end..]`
/// (as much as fits) and returns where it ends. The raw bytes stay.
fn unchunk(buf: &mut [u8], start: usize, end: usize) -> usize {
    let mut r = BodyReader::new(BodyFraming::Chunked);
    let (mut pos, mut out) = (start, end);
    while pos < end {
        // The payload of one call is the last `len` of the `n` bytes it
        // consumed.
        let Some(Ok((n, len))) = buf
            .get(pos..end)
            .map(|raw| r.next(raw).map(|(n, d)| (n, d.len())))
        else {
            break;
        };
        if n == 0 {
            break;
        }
        let from = pos.saturating_add(n).saturating_sub(len);
        for i in 0..len {
            let b = buf.get(from.saturating_add(i)).copied();
            match (b, buf.get_mut(out)) {
                (Some(b), Some(d)) => *d = b,
                _ => return out,
            }
            out = out.saturating_add(1);
        }
        pos = pos.saturating_add(n);
    }
    out
}

/// Whether `bytes` hold the whole body of `head` (a close-delimited body
/// counts as whole: it is not read ahead).
fn body_in(head: &ResponseHead, bytes: Option<&[u8]>) -> bool {
    let bytes = bytes.unwrap_or_default();
    match head.framing() {
        BodyFraming::Length(n) => u64::try_from(bytes.len()).map_or(true, |l| l >= n),
        BodyFraming::Chunked => {
            let mut r = BodyReader::new(BodyFraming::Chunked);
            let mut rest = bytes;
            loop {
                match r.next(rest) {
                    Ok((n, _)) if n > 0 => rest = rest.get(n..).unwrap_or_default(),
                    Ok(_) => break r.is_done(),
                    // Malformed: reading ahead would not help.
                    Err(_) => break true,
                }
            }
        }
        BodyFraming::Close => true,
    }
}

impl<const N: usize> Machine for ReadApi<'_, N> {
    fn resume(&mut self, did: Did, buf: &mut [u8]) -> Step {
        if self.out.is_some() {
            return Step::Done;
        }
        let r = match (did, self.got) {
            (Did::Start, _) => return read_all(buf),
            (Did::Read(Some(n)), None) if n > 0 => match feed_head(&mut self.head, buf, n) {
                Ok(None) => return read_all(buf),
                Ok(Some((head, k))) => {
                    // The body so far goes to the front: all of the buffer
                    // is room for reading ahead.
                    let len = to_front(buf, k, n);
                    return self.next(head, 0, len, buf);
                }
                Err(e) => e,
            },
            (Did::Read(Some(n)), Some((head, start, end))) => {
                let end = end.saturating_add(n).min(buf.len());
                return if n > 0 {
                    self.next(head, start, end, buf)
                } else {
                    // The stream ended inside the body: report what there
                    // is (reading the body will fail).
                    self.report(head, start, end, buf)
                };
            }
            _ => Error::Transport,
        };
        self.out = Some(Err(r));
        Step::Done
    }
}

// ------------------------------------------------------------------ bodies

/// Reads a response body to its end, handing the payload to `sink`.
pub(super) struct BodyDrain<F> {
    reader: BodyReader,
    leftover: Range<usize>,
    total: u64,
    sink: F,
    /// The result (payload length), once done.
    pub(super) out: Option<Result<u64>>,
}

impl<F: FnMut(&[u8])> BodyDrain<F> {
    pub(super) fn new(framing: BodyFraming, leftover: Range<usize>, sink: F) -> Self {
        BodyDrain {
            reader: BodyReader::new(framing),
            leftover,
            total: 0,
            sink,
            out: None,
        }
    }

    fn feed(&mut self, mut rest: &[u8], cap: usize) -> Step {
        while !rest.is_empty() && !self.reader.is_done() {
            match self.reader.next(rest) {
                Ok((0, _)) => break,
                Ok((n, data)) => {
                    self.total = self.total.saturating_add(data.len() as u64);
                    (self.sink)(data);
                    rest = rest.get(n..).unwrap_or_default();
                }
                Err(e) => {
                    self.out = Some(Err(e));
                    return Step::Done;
                }
            }
        }
        if self.reader.is_done() {
            self.out = Some(Ok(self.total));
            Step::Done
        } else {
            Step::Read(0..cap)
        }
    }
}

impl<F: FnMut(&[u8])> Machine for BodyDrain<F> {
    fn resume(&mut self, did: Did, buf: &mut [u8]) -> Step {
        if self.out.is_some() {
            return Step::Done;
        }
        let chunk = match did {
            Did::Start => self.leftover.clone(),
            Did::Read(Some(n)) if n > 0 => 0..n,
            Did::Read(Some(_)) => {
                self.out = Some(self.reader.finish().map(|()| self.total));
                return Step::Done;
            }
            _ => {
                self.out = Some(Err(Error::Transport));
                return Step::Done;
            }
        };
        match buf.get(chunk) {
            Some(bytes) => self.feed(bytes, buf.len()),
            None => {
                // A leftover outside the buffer: not the one `api_get` filled.
                let e = if did == Did::Start {
                    Error::WrongState
                } else {
                    Error::Transport
                };
                self.out = Some(Err(e));
                Step::Done
            }
        }
    }
}
