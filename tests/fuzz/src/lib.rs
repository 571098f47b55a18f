//! Oracles and set-up shared by the fuzz targets in `fuzz_targets/`.
//!
//! Nothing here is part of fieldauth: these are the references the targets
//! compare fieldauth's answers with (chunk splitting, a strict reference
//! decoder of the chunked transfer coding, a session that holds a token).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fieldauth::body::Response;
use fieldauth::http::{HeadParser, ResponseHead};
use fieldauth::preset::{self, Profile};
use fieldauth::session::{Config, Event, Session, TokenBody};

/// SplitMix64: chunk sizes and other choices derived from a fuzzer byte.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `1..=max` (`max` ≥ 1).
    pub fn size(&mut self, max: usize) -> usize {
        1 + (self.next() % max.max(1) as u64) as usize
    }
}

/// Splits `data` into pieces as `mode` says: 0 one byte at a time, 1 whole,
/// otherwise random sizes of 1 ..= `mode` (seeded with `mode` and the
/// length, so an input always splits the same way).
pub fn split(data: &[u8], mode: u8) -> Vec<&[u8]> {
    match mode {
        0 => data.chunks(1).collect(),
        1 => vec![data],
        m => {
            let mut rng = Rng(u64::from(m) << 32 ^ data.len() as u64);
            let mut out = Vec::new();
            let mut rest = data;
            while !rest.is_empty() {
                let n = rng.size(usize::from(m)).min(rest.len());
                let (a, b) = rest.split_at(n);
                out.push(a);
                rest = b;
            }
            out
        }
    }
}

/// Everything in a response view, secrets included (the `Debug` of the
/// views redacts tokens; a crash report needs them).
pub fn dump(r: &Response<'_>) -> String {
    match r {
        Response::Token(t) => format!(
            "Token {{ access_token: {:?}, token_type: {:?}, expires_in: {:?}, refresh_token: {:?}, refresh_expires_in: {:?}, scope: {:?}, message: {:?} }}",
            t.access_token, t.token_type, t.expires_in, t.refresh_token, t.refresh_expires_in, t.scope, t.message
        ),
        Response::DeviceAuthorization(d) => format!(
            "Device {{ device_code: {:?}, user_code: {:?}, uri: {:?}, complete: {:?}, expires_in: {}, interval: {:?} }}",
            d.device_code, d.user_code, d.verification_uri, d.verification_uri_complete, d.expires_in, d.interval
        ),
        Response::Revoked => "Revoked".into(),
        Response::Error(e) => format!("{e:?}"),
    }
}

/// What a strict reading of RFC 9112 §7.1 (as fieldauth's `BodyReader`
/// documents it: CRLF everywhere, no control characters in extensions or
/// trailers, sizes fitting 64 bits) makes of a chunked body.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunked {
    /// The body ended after `consumed` bytes of the input.
    Done { payload: Vec<u8>, consumed: usize },
    /// The input ended inside the body.
    Truncated { payload: Vec<u8> },
    /// Malformed framing, found at this byte.
    Bad { at: usize },
}

fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// The reference decoder of the chunked transfer coding: written from the
/// grammar, one construct at a time, not as a state machine.
pub fn reference_chunked(input: &[u8]) -> Chunked {
    let mut payload = Vec::new();
    let mut i = 0usize;
    let at = |i: usize| input.get(i).copied();
    macro_rules! need {
        ($cond:expr) => {
            match at(i) {
                None => return Chunked::Truncated { payload },
                Some(b) if $cond(b) => {}
                Some(_) => return Chunked::Bad { at: i },
            }
        };
    }
    loop {
        // chunk-size: 1*HEXDIG, fitting 64 bits.
        let mut size: u64 = 0;
        let mut digits = 0usize;
        loop {
            match at(i) {
                None => return Chunked::Truncated { payload },
                Some(b) if b.is_ascii_hexdigit() => {
                    let d = u64::from((b as char).to_digit(16).unwrap());
                    size = match size.checked_mul(16).and_then(|s| s.checked_add(d)) {
                        Some(s) => s,
                        None => return Chunked::Bad { at: i },
                    };
                    digits += 1;
                    i += 1;
                }
                Some(_) if digits == 0 => return Chunked::Bad { at: i },
                Some(_) => break,
            }
        }
        // BWS, then `;` extensions up to CR, or CR.
        while matches!(at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        match at(i) {
            None => return Chunked::Truncated { payload },
            Some(b';') => {
                i += 1;
                loop {
                    match at(i) {
                        None => return Chunked::Truncated { payload },
                        Some(b'\r') => break,
                        Some(b) if !is_ctl(b) => i += 1,
                        Some(_) => return Chunked::Bad { at: i },
                    }
                }
            }
            Some(b'\r') => {}
            Some(_) => return Chunked::Bad { at: i },
        }
        i += 1; // the CR
        need!(|b| b == b'\n');
        i += 1;
        if size == 0 {
            break;
        }
        // chunk-data CRLF
        let avail = (input.len() - i) as u64;
        if avail < size {
            payload.extend_from_slice(&input[i..]);
            return Chunked::Truncated { payload };
        }
        let end = i + size as usize;
        payload.extend_from_slice(&input[i..end]);
        i = end;
        need!(|b| b == b'\r');
        i += 1;
        need!(|b| b == b'\n');
        i += 1;
    }
    // trailer-section CRLF
    loop {
        match at(i) {
            None => return Chunked::Truncated { payload },
            Some(b'\r') => {
                i += 1;
                need!(|b| b == b'\n');
                return Chunked::Done {
                    payload,
                    consumed: i + 1,
                };
            }
            Some(_) => loop {
                match at(i) {
                    None => return Chunked::Truncated { payload },
                    Some(b'\r') => {
                        i += 1;
                        need!(|b| b == b'\n');
                        i += 1;
                        break;
                    }
                    Some(b) if !is_ctl(b) => i += 1,
                    Some(_) => return Chunked::Bad { at: i },
                }
            },
        }
    }
}

/// The session type of the C ABI and the bindings.
pub type Sess = Session<3072>;

/// Presets whose sessions fetch a token without a browser step, with a
/// configuration for each.
pub fn token_presets() -> [(&'static Profile<'static>, Config<'static>); 4] {
    let cc = Config {
        base_url: "https://api.example.com",
        client_id: "demo-client",
        client_secret: "demo-secret",
        ..Config::default()
    };
    let login = Config {
        base_url: "https://api.example.com",
        username: "tech@example.com",
        password: "pw",
        ..Config::default()
    };
    [
        (&preset::FIELD_NATION, cc),
        (&preset::AUTOTASK, cc),
        (&preset::PATCHWORKS_LOGIN, login),
        (
            &preset::FENTU_API_KEY,
            Config {
                base_url: "https://api.example.com",
                api_key: "key-123",
                ..Config::default()
            },
        ),
    ]
}

/// A canned HTTP response carrying `body` as JSON.
pub fn json_response(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Runs the token exchange `s` asks for at `now`, answered with `raw`.
pub fn exchange(s: &mut Sess, now: u64, raw: &str) -> Option<Event> {
    let mut buf = [0u8; 2048];
    s.write_token_request(now, &mut buf).ok()?;
    let mut p: HeadParser<256> = HeadParser::new();
    let n = p.feed(raw.as_bytes()).ok()??;
    let head: ResponseHead = *p.head()?;
    let mut tb = TokenBody::new();
    s.on_token_head(now, &head, &mut tb).ok()?;
    let progress = s.on_token_body(now, &mut tb, &raw.as_bytes()[n..]).ok()?;
    progress.event
}

/// The members of a top-level JSON object in order, duplicates kept
/// (serde_json's own maps keep one copy).
pub struct Members(pub Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, serde_json::Value>()? {
                    v.push((k, val));
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// A configured string for the request targets: usually a plausible value,
/// often with the characters that matter (CR, LF, NUL, TAB, DEL, space,
/// `&=+%?#:@/"\`, non-ASCII), sometimes empty.
pub fn gen_str(u: &mut libfuzzer_sys::arbitrary::Unstructured<'_>) -> String {
    const SPECIAL: [char; 24] = [
        '\r', '\n', '\0', '\t', '\u{7f}', '\u{1}', ' ', '&', '=', '+', '%', '?', '#', ':', '@',
        '/', '"', '\\', 'é', '€', '😀', '*', '~', ';',
    ];
    let len = u.int_in_range(0..=24usize).unwrap_or(0);
    let mut s = String::new();
    for _ in 0..len {
        let c = match u.int_in_range(0..=7u8).unwrap_or(0) {
            0..=4 => char::from(u.int_in_range(0x21..=0x7eu8).unwrap_or(b'a')),
            5 | 6 => *u.choose(&SPECIAL).unwrap_or(&'a'),
            _ => u.arbitrary::<char>().unwrap_or('a'),
        };
        s.push(c);
    }
    s
}

/// A control character: what fieldauth refuses in parameters (below 0x20,
/// or DEL).
pub fn has_ctl(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

/// fieldauth's header-value rule (RFC 9110 §5.5): not empty, no control
/// character but HTAB, no leading or trailing SP / HTAB.
pub fn header_value_ok(v: &str) -> bool {
    !v.is_empty()
        && !v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
        && !v.starts_with([' ', '\t'])
        && !v.ends_with([' ', '\t'])
}

/// RFC 9110 `token`.
pub fn is_token(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A form-urlencoded value as the WHATWG URL standard serializes it (what
/// fieldauth documents its encoding to be).
pub fn form(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
