//! Helpers shared by the integration tests: request builders for each
//! provider's documented calls and a tiny blocking HTTP/1.1 client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fieldauth_emulator::{Emulator, EmulatorConfig, Request, Response};

pub const DEMO_ID: &str = "demo-client";
pub const DEMO_SECRET: &str = "demo-secret";
pub const REDIRECT: &str = "http://127.0.0.1:8976/callback";

/// `application/x-www-form-urlencoded` POST.
pub fn form_post(target: &str, body: &str) -> Request {
    Request::post(target)
        .with_header("Content-Type", "application/x-www-form-urlencoded")
        .with_body(body)
}

/// `application/json` POST.
pub fn json_post(target: &str, body: &str) -> Request {
    Request::post(target)
        .with_header("Content-Type", "application/json")
        .with_body(body)
}

pub fn bearer(req: Request, token: &str) -> Request {
    req.with_header("Authorization", &format!("Bearer {token}"))
}

pub fn json(resp: &Response) -> serde_json::Value {
    resp.body_json()
        .unwrap_or_else(|| panic!("not JSON: {}", resp.body_text()))
}

pub fn field(resp: &Response, name: &str) -> String {
    json(resp)[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{name}` in {}", resp.body_text()))
        .to_owned()
}

pub fn fieldnation_token(emu: &mut Emulator, now_ms: u64) -> String {
    let resp = emu.handle(
        now_ms,
        &json_post(
            "/fieldnation/authentication/api/oauth/token",
            r#"{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"demo-secret","scope":"api"}"#,
        ),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    field(&resp, "access_token")
}

pub fn autotask_token(emu: &mut Emulator, now_ms: u64) -> String {
    let resp = emu.handle(
        now_ms,
        &form_post(
            "/autotask/ATServicesRest/oauth/token",
            "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
        ),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    field(&resp, "access_token")
}

pub fn patchworks_login(emu: &mut Emulator, now_ms: u64) -> String {
    let resp = emu.handle(
        now_ms,
        &json_post(
            "/patchworks/fabric/api/login",
            r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#,
        )
        .with_header("Accept", "application/json"),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    field(&resp, "token")
}

/// Runs Fentu's authorization-code flow (no PKCE) for `scope`; returns the
/// token response.
pub fn fentu_login(emu: &mut Emulator, now_ms: u64, scope: &str) -> Response {
    let code = fentu_code(emu, now_ms, scope, "");
    let resp = emu.handle(
        now_ms,
        &form_post(
            "/fentu/oauth/token",
            &fieldauth_emulator::encoding::encode_form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", DEMO_ID),
                ("client_secret", DEMO_SECRET),
            ]),
        ),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    resp
}

/// Asks `/fentu/oauth/authorize` for a code; `extra` is appended to the query.
pub fn fentu_code(emu: &mut Emulator, now_ms: u64, scope: &str, extra: &str) -> String {
    let target = format!(
        "/fentu/oauth/authorize?client_id={DEMO_ID}&redirect_uri={}&scope={}&response_type=code&state=xyz{extra}",
        fieldauth_emulator::encoding::encode_component(REDIRECT),
        fieldauth_emulator::encoding::encode_component(scope),
    );
    let resp = emu.handle(now_ms, &Request::get(&target));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let location = resp.header("Location").unwrap();
    let query = location.split_once('?').unwrap().1;
    let params = fieldauth_emulator::encoding::Params::parse(query).unwrap();
    assert_eq!(params.unique("state"), Ok(Some("xyz")));
    params.unique("code").unwrap().unwrap().to_owned()
}

pub fn emulator() -> Emulator {
    Emulator::new(EmulatorConfig::default())
}

/// A response as a client read it off a socket.
#[derive(Debug)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body arrived whole (per Content-Length or the last chunk).
    pub complete: bool,
    /// How many `read` calls returned data for this response.
    pub reads: usize,
}

impl ClientResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A connection with a read buffer (responses may be pipelined).
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    reads: usize,
}

impl Client {
    pub fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
            reads: 0,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads more; `false` on EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.reads += 1;
                true
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }

    fn find(&self, from: usize, needle: &[u8]) -> Option<usize> {
        self.buf[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    }

    /// Reads one response (skipping `100 Continue`).
    pub fn read_response(&mut self) -> ClientResponse {
        self.reads = 0;
        loop {
            let head_end = loop {
                if let Some(i) = self.find(0, b"\r\n\r\n") {
                    break i;
                }
                assert!(self.fill(), "EOF inside the head");
            };
            let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
            self.buf.drain(..head_end + 4);
            let mut lines = head.split("\r\n");
            let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap();
                    (n.to_owned(), v.trim().to_owned())
                })
                .collect();
            if status == 100 {
                continue;
            }
            let get = |n: &str| {
                headers
                    .iter()
                    .find(|(h, _)| h.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.clone())
            };
            let (body, complete) = if get("transfer-encoding").as_deref() == Some("chunked") {
                self.read_chunked()
            } else {
                let len: usize = get("content-length").map_or(0, |v| v.parse().unwrap());
                while self.buf.len() < len {
                    if !self.fill() {
                        break;
                    }
                }
                let n = len.min(self.buf.len());
                let complete = n == len;
                (self.buf.drain(..n).collect(), complete)
            };
            return ClientResponse {
                status,
                headers,
                body,
                complete,
                reads: self.reads,
            };
        }
    }

    fn read_chunked(&mut self) -> (Vec<u8>, bool) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.find(0, b"\r\n") {
                    break i;
                }
                if !self.fill() {
                    return (body, false);
                }
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&self.buf[..line_end]).unwrap(), 16)
                    .unwrap();
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                if !self.fill() {
                    body.append(&mut self.buf);
                    return (body, false);
                }
            }
            if size == 0 {
                self.buf.drain(..2);
                return (body, true);
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }

    /// Whether the server closed the connection (reads EOF).
    pub fn at_eof(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }
}
