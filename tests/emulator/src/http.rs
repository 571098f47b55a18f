//! HTTP/1.1 as the emulator needs it: a strict request parser (Content-Length
//! and chunked bodies), the [`Request`] and [`Response`] types, the response
//! serializer (Content-Length or chunked), and IMF-fixdate `Date` values.
//!
//! Everything here is sans-IO: bytes in, values out.

use std::fmt::Write as _;

/// The HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`: the connection closes after the response unless the
    /// request asked for keep-alive.
    Http10,
    /// `HTTP/1.1`: keep-alive unless `Connection: close`; `Host` required.
    Http11,
}

/// A parsed HTTP/1.x request: what [`Emulator::handle`](crate::Emulator::handle)
/// answers. Build one by hand in tests with [`Request::get`] / [`Request::post`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `POST` (case-sensitive, as HTTP says).
    pub method: String,
    /// The request target in origin form, e.g. `/fentu/v1/work-orders?page=1`.
    pub target: String,
    /// The protocol version.
    pub version: Version,
    /// Header fields in arrival order (names as sent; look them up with
    /// [`Request::header`], which ignores case).
    pub headers: Vec<(String, String)>,
    /// The body with any chunked framing removed.
    pub body: Vec<u8>,
}

impl Request {
    /// A `GET` of `target` with `Host: 127.0.0.1` (HTTP/1.1).
    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    /// A `POST` to `target` with `Host: 127.0.0.1` and no body yet.
    pub fn post(target: &str) -> Request {
        Request::new("POST", target)
    }

    /// A request with the given method and target and a `Host` header.
    pub fn new(method: &str, target: &str) -> Request {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            version: Version::Http11,
            headers: vec![("Host".to_owned(), "127.0.0.1".to_owned())],
            body: Vec::new(),
        }
    }

    /// Adds a header field (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes every header field called `name` (builder style).
    pub fn without_header(mut self, name: &str) -> Request {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Sets the body and a matching `Content-Length` (builder style).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-length"));
        self.headers
            .push(("Content-Length".to_owned(), self.body.len().to_string()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target (before `?`).
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p)
    }

    /// The query part of the target (after `?`), if there is one.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// Whether the connection should close after the response
    /// (`Connection: close`, or HTTP/1.0 without `keep-alive`).
    pub fn wants_close(&self) -> bool {
        let tokens = |wanted: &str| {
            self.headers_named("connection")
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(wanted))
        };
        match self.version {
            Version::Http11 => tokens("close"),
            Version::Http10 => !tokens("keep-alive"),
        }
    }

    /// The request as HTTP/1.1 bytes (Content-Length framing as given by the
    /// headers): for tests that talk to the server over a socket.
    pub fn to_bytes(&self) -> Vec<u8> {
        let version = match self.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        let mut head = format!("{} {} {}\r\n", self.method, self.target, version);
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Why bytes were not accepted as a request. Each maps to a status code
/// ([`ParseError::status`]); the connection is closed after answering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Malformed syntax (request line, header line, framing, CRLF): `400`.
    BadRequest(String),
    /// The head is larger than the limit: `431`.
    HeadTooLarge,
    /// The body is larger than the limit: `413`.
    BodyTooLarge,
    /// A `Transfer-Encoding` other than `chunked`: `501`.
    UnsupportedTransferEncoding(String),
    /// An HTTP version other than 1.0 / 1.1: `505`.
    UnsupportedVersion(String),
    /// An `Expect` other than `100-continue`: `417`.
    UnsupportedExpectation(String),
}

impl ParseError {
    /// The status code that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadRequest(_) => 400,
            ParseError::HeadTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::UnsupportedTransferEncoding(_) => 501,
            ParseError::UnsupportedVersion(_) => 505,
            ParseError::UnsupportedExpectation(_) => 417,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::BadRequest(why) => write!(f, "malformed HTTP request: {why}"),
            ParseError::HeadTooLarge => f.write_str("request head too large"),
            ParseError::BodyTooLarge => f.write_str("request body too large"),
            ParseError::UnsupportedTransferEncoding(te) => {
                write!(f, "unsupported Transfer-Encoding: {te}")
            }
            ParseError::UnsupportedVersion(v) => write!(f, "unsupported HTTP version: {v}"),
            ParseError::UnsupportedExpectation(e) => write!(f, "unsupported Expect: {e}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The result of [`parse_request`] on the bytes received so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request, and how many bytes of the input it used (the rest
    /// belongs to the next, pipelined request).
    Complete(Request, usize),
    /// More bytes are needed. `expects_continue` is true once the head is
    /// complete and carried `Expect: 100-continue` (the server then sends
    /// `100 Continue` before reading the body).
    Incomplete {
        /// The head is complete and asked for `100 Continue`.
        expects_continue: bool,
    },
}

/// Size limits for [`parse_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line + header fields), bytes.
    pub max_head: usize,
    /// Largest request body after de-chunking, bytes.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 16 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

fn bad(why: impl Into<String>) -> ParseError {
    ParseError::BadRequest(why.into())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses one request from the start of `input` strictly (RFC 9112): CRLF
/// line ends only, no whitespace before a header colon, no obsolete line
/// folding, `Host` exactly once in HTTP/1.1, no `Content-Length` together
/// with `Transfer-Encoding`, consistent `Content-Length` values, valid chunk
/// framing. Call again with more bytes after [`Parsed::Incomplete`].
pub fn parse_request(input: &[u8], limits: Limits) -> Result<Parsed, ParseError> {
    let incomplete = Ok(Parsed::Incomplete {
        expects_continue: false,
    });
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
    // the request line.
    let mut start = 0;
    while input[start..].starts_with(b"\r\n") {
        start += 2;
    }
    let Some(head_end) = find(&input[start..], b"\r\n\r\n").map(|i| start + i) else {
        if input.len() - start > limits.max_head {
            return Err(ParseError::HeadTooLarge);
        }
        // A bare LF anywhere in what we have can never become valid.
        if let Some(pos) = input[start..].iter().position(|&b| b == b'\n') {
            if pos == 0 || input[start + pos - 1] != b'\r' {
                return Err(bad("line ends in LF without CR"));
            }
        }
        return incomplete;
    };
    if head_end - start > limits.max_head {
        return Err(ParseError::HeadTooLarge);
    }
    let head = &input[start..head_end];
    let mut lines = Vec::new();
    let mut rest = head;
    loop {
        match find(rest, b"\r\n") {
            Some(i) => {
                lines.push(&rest[..i]);
                rest = &rest[i + 2..];
            }
            None => {
                lines.push(rest);
                break;
            }
        }
    }
    for line in &lines {
        if line.contains(&b'\n') || line.contains(&b'\r') {
            return Err(bad("bare CR or LF inside the head"));
        }
    }
    let request_line =
        std::str::from_utf8(lines[0]).map_err(|_| bad("request line is not ASCII"))?;
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(bad("request line must be `METHOD SP target SP HTTP/1.1`"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(bad("invalid method"));
    }
    if !target.starts_with('/') {
        return Err(bad(
            "request target must be in origin form (start with `/`)",
        ));
    }
    if !target.bytes().all(|b| (0x21..0x7f).contains(&b)) || target.contains('#') {
        return Err(bad(
            "request target contains a byte that must be percent-encoded",
        ));
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        v if v.starts_with("HTTP/") => return Err(ParseError::UnsupportedVersion(v.to_owned())),
        _ => return Err(bad("invalid HTTP version")),
    };
    let mut headers = Vec::new();
    for line in &lines[1..] {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(bad("obsolete line folding"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad("header line without a colon"))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad("invalid header name (or whitespace before the colon)"));
        }
        let value = &line[colon + 1..];
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(bad("control character in a header value"));
        }
        let value =
            String::from_utf8(value.to_vec()).map_err(|_| bad("header value is not UTF-8"))?;
        let value = value.trim_matches(|c| c == ' ' || c == '\t').to_owned();
        let name = String::from_utf8(name.to_vec()).map_err(|_| bad("header name"))?;
        headers.push((name, value));
    }
    let named = |n: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(h, _)| h.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let hosts = named("host");
    if version == Version::Http11 && hosts.is_empty() {
        return Err(bad("HTTP/1.1 request without a Host header"));
    }
    if hosts.len() > 1 {
        return Err(bad("more than one Host header"));
    }
    let expects = named("expect");
    let mut expects_continue = false;
    for e in &expects {
        if e.eq_ignore_ascii_case("100-continue") {
            expects_continue = true;
        } else {
            return Err(ParseError::UnsupportedExpectation((*e).to_owned()));
        }
    }
    let transfer_encodings = named("transfer-encoding");
    let lengths = named("content-length");
    let body_start = head_end + 4;
    let body = &input[body_start..];
    let make = |body: Vec<u8>| Request {
        method: method.to_owned(),
        target: target.to_owned(),
        version,
        headers: headers.clone(),
        body,
    };
    if !transfer_encodings.is_empty() {
        if !lengths.is_empty() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if version == Version::Http10 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings: Vec<String> = transfer_encodings
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        if codings.len() != 1 || codings[0] != "chunked" {
            return Err(ParseError::UnsupportedTransferEncoding(
                transfer_encodings.join(", "),
            ));
        }
        return match dechunk(body, limits.max_body)? {
            Some((decoded, used)) => Ok(Parsed::Complete(make(decoded), body_start + used)),
            None => Ok(Parsed::Incomplete { expects_continue }),
        };
    }
    let mut length: Option<usize> = None;
    for value in lengths.iter().flat_map(|v| v.split(',')) {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 12 {
            return Err(bad("invalid Content-Length"));
        }
        let n: usize = value.parse().map_err(|_| bad("invalid Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(bad("conflicting Content-Length values"));
        }
        length = Some(n);
    }
    let length = length.unwrap_or(0);
    if length > limits.max_body {
        return Err(ParseError::BodyTooLarge);
    }
    if body.len() < length {
        return Ok(Parsed::Incomplete { expects_continue });
    }
    Ok(Parsed::Complete(
        make(body[..length].to_vec()),
        body_start + length,
    ))
}

/// Decodes a chunked body; `Ok(None)` if incomplete, else the payload and
/// the number of framed bytes used (trailer fields are read and dropped).
fn dechunk(input: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_len) = find(&input[pos..], b"\r\n") else {
            if input[pos..].contains(&b'\n') {
                return Err(bad("chunk-size line ends in LF without CR"));
            }
            if input.len() - pos > 1024 {
                return Err(bad("chunk-size line too long"));
            }
            return Ok(None);
        };
        let line = &input[pos..pos + line_len];
        let size_text = match line.iter().position(|&b| b == b';') {
            Some(i) => &line[..i],
            None => line,
        };
        if size_text.is_empty()
            || size_text.len() > 8
            || !size_text.iter().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad("invalid chunk size"));
        }
        let size_text = std::str::from_utf8(size_text).map_err(|_| bad("invalid chunk size"))?;
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("invalid chunk size"))?;
        pos += line_len + 2;
        if size == 0 {
            // Trailer section: header lines, then an empty line.
            loop {
                let Some(len) = find(&input[pos..], b"\r\n") else {
                    return Ok(None);
                };
                let trailer = &input[pos..pos + len];
                pos += len + 2;
                if trailer.is_empty() {
                    return Ok(Some((out, pos)));
                }
                if !trailer.contains(&b':') || trailer.contains(&b'\n') {
                    return Err(bad("invalid trailer field"));
                }
            }
        }
        if out.len() + size > max_body {
            return Err(ParseError::BodyTooLarge);
        }
        if input.len() < pos + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&input[pos..pos + size]);
        pos += size;
        if &input[pos..pos + 2] != b"\r\n" {
            return Err(bad("chunk data not followed by CRLF"));
        }
        pos += 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How the server writes a response: the fault-injection knobs that live
/// below HTTP semantics. [`Emulator::handle`](crate::Emulator::handle) sets
/// them; [`serve`](crate::serve) obeys them, so `handle` stays deterministic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    /// Send the body with `Transfer-Encoding: chunked`, in chunks of at most
    /// this many bytes (instead of `Content-Length`).
    pub chunked: Option<usize>,
    /// Write the serialized response in pieces of at most this many bytes
    /// (separate `write` calls, so the client sees them as separate reads).
    pub piece_bytes: Option<usize>,
    /// Sleep this long before every piece after the first.
    pub piece_delay_ms: u64,
    /// Close the connection after this many bytes of the *framed* body (the
    /// head is always written whole), leaving the response incomplete.
    pub truncate_body_after: Option<usize>,
    /// Close the connection after the response (`Connection: close` is sent).
    pub close: bool,
}

/// A response: status, header fields, body and [`Transport`] directives.
/// `Content-Length` / `Transfer-Encoding` and `Connection: close` are added
/// by [`Response::serialize`], not stored in `headers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields in order (excluding framing fields).
    pub headers: Vec<(String, String)>,
    /// The body (unframed).
    pub body: Vec<u8>,
    /// How the server writes it.
    pub transport: Transport,
}

/// A serialized response: the bytes as they go on the wire and where the
/// head ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    /// Head and framed body.
    pub bytes: Vec<u8>,
    /// Length of the head including the blank line.
    pub head_len: usize,
}

impl Wire {
    /// The bytes the server actually writes: cut short by
    /// [`Transport::truncate_body_after`] (at most the whole body minus one
    /// byte, so the response is always incomplete when truncation applies).
    pub fn to_send(&self, transport: &Transport) -> &[u8] {
        match transport.truncate_body_after {
            Some(n) => {
                let body_len = self.bytes.len() - self.head_len;
                let keep = n.min(body_len.saturating_sub(1));
                &self.bytes[..self.head_len + keep]
            }
            None => &self.bytes,
        }
    }
}

impl Response {
    /// An empty response with the given status.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            transport: Transport::default(),
        }
    }

    /// A response with a JSON body and `Content-Type: application/json`.
    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_header("Content-Type", "application/json")
            .with_body(body.into().into_bytes())
    }

    /// Adds a header field (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the body (builder style).
    pub fn with_body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }

    /// Adds a header field in place.
    pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_owned(), value.into()));
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The status line, header fields, framing and body as wire bytes.
    pub fn serialize(&self) -> Wire {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        let no_body = self.status < 200 || self.status == 204 || self.status == 304;
        let mut body = Vec::new();
        if !no_body {
            match self.transport.chunked {
                Some(size) => {
                    head.push_str("Transfer-Encoding: chunked\r\n");
                    for chunk in self.body.chunks(size.max(1)) {
                        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                        body.extend_from_slice(chunk);
                        body.extend_from_slice(b"\r\n");
                    }
                    body.extend_from_slice(b"0\r\n\r\n");
                }
                None => {
                    let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
                    body.extend_from_slice(&self.body);
                }
            }
        }
        if self.transport.close || self.transport.truncate_body_after.is_some() {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let head_len = head.len();
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        Wire { bytes, head_len }
    }

    /// [`Response::serialize`]'s bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.serialize().bytes
    }
}

/// The reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(epoch_s: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch_s / 86_400;
    let secs = epoch_s % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// An RFC 3339 UTC timestamp with milliseconds, e.g. `2022-01-01T00:00:00.000Z`.
pub fn rfc3339_ms(epoch_ms: u64) -> String {
    let s = epoch_ms / 1000;
    let (y, m, d) = civil_from_days((s / 86_400) as i64);
    let t = s % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3600,
        t / 60 % 60,
        t % 60,
        epoch_ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31)
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Parsed, ParseError> {
        parse_request(bytes, Limits::default())
    }

    fn complete(bytes: &[u8]) -> (Request, usize) {
        match parse(bytes) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn content_length_request_and_pipelining() {
        let raw = b"POST /x?a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let (r, used) = complete(raw);
        assert_eq!(r.method, "POST");
        assert_eq!(r.path(), "/x");
        assert_eq!(r.query(), Some("a=1"));
        assert_eq!(r.body, b"abc");
        assert_eq!(r.header("content-length"), Some("3"));
        let (r2, used2) = complete(&raw[used..]);
        assert_eq!(r2.method, "GET");
        assert_eq!(used + used2, raw.len());
    }

    #[test]
    fn incomplete_until_whole() {
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..raw.len() {
            assert!(
                matches!(parse(&raw[..cut]), Ok(Parsed::Incomplete { .. })),
                "cut {cut}"
            );
        }
        assert!(matches!(parse(raw), Ok(Parsed::Complete(..))));
    }

    #[test]
    fn chunked_request_body() {
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
        let (r, used) = complete(raw);
        assert_eq!(r.body, b"Wikipedia");
        assert_eq!(used, raw.len());
        for cut in 0..raw.len() {
            assert!(matches!(parse(&raw[..cut]), Ok(Parsed::Incomplete { .. })));
        }
    }

    #[test]
    fn expect_continue_reported_once_head_is_in() {
        let raw =
            b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            parse(raw),
            Ok(Parsed::Incomplete {
                expects_continue: true
            })
        );
        let raw = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n";
        assert_eq!(parse(raw).unwrap_err().status(), 417);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", 400),                           // no Host
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),     // two Hosts
            (b"GET / HTTP/1.1\nHost: a\n\n", 400),                      // bare LF
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),               // double space
            (b"GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),        // absolute form
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET / FOO\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),               // space before colon
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),     // obs-fold
            (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", 413),
        ];
        for (raw, status) in cases {
            let err = parse(raw).expect_err(&String::from_utf8_lossy(raw));
            assert_eq!(err.status(), *status, "{}", String::from_utf8_lossy(raw));
        }
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(20_000));
        assert_eq!(parse(huge.as_bytes()).unwrap_err().status(), 431);
    }

    #[test]
    fn http10_without_host_is_fine_and_closes() {
        let (r, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(r.wants_close());
        let (r, _) =
            complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(r.wants_close());
    }

    #[test]
    fn serializes_content_length_and_chunked() {
        let mut resp = Response::json(200, "{\"a\":1}").with_header("Date", "x");
        assert_eq!(
            resp.to_bytes(),
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
        resp.transport.chunked = Some(3);
        assert_eq!(
            String::from_utf8(resp.to_bytes()).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n"
        );
        resp.transport.chunked = None;
        resp.transport.truncate_body_after = Some(2);
        let wire = resp.serialize();
        let sent = wire.to_send(&resp.transport);
        assert!(String::from_utf8_lossy(sent).contains("Connection: close\r\n"));
        assert!(sent.ends_with(b"\r\n\r\n{\""));
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_640_995_200), "Sat, 01 Jan 2022 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(rfc3339_ms(1_640_995_200_123), "2022-01-01T00:00:00.123Z");
    }
}
