//! Text encodings the providers use: `application/x-www-form-urlencoded`
//! (bodies and query strings), base64url (PKCE, token text) and small JSON
//! bodies written in the member order the provider documents show.

use std::fmt::Write as _;

/// Why a form body or query string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    /// A `%` not followed by two hexadecimal digits.
    BadPercent,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// A byte that may not appear unencoded (control characters, space, `#`,
    /// or any byte outside printable ASCII).
    BadByte(u8),
    /// A parameter with an empty name (`=x` or `&&`).
    EmptyName,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormError::BadPercent => f.write_str("invalid percent-encoding"),
            FormError::NotUtf8 => f.write_str("percent-decoded text is not UTF-8"),
            FormError::BadByte(b) => write!(f, "byte 0x{b:02x} must be percent-encoded"),
            FormError::EmptyName => f.write_str("parameter with an empty name"),
        }
    }
}

/// Decoded `name=value` pairs, in order, duplicates kept (so the providers
/// can refuse them: RFC 6749 §3.1 says a parameter must not repeat).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// The pairs as decoded.
    pub pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `a=1&b=2` (a form body or a query string). `+` is a space;
    /// `%XX` is a byte; a name without `=` has an empty value. An empty input
    /// has no parameters.
    pub fn parse(input: &str) -> Result<Params, FormError> {
        let mut pairs = Vec::new();
        if input.is_empty() {
            return Ok(Params { pairs });
        }
        for part in input.split('&') {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n, v),
                None => (part, ""),
            };
            if name.is_empty() {
                return Err(FormError::EmptyName);
            }
            pairs.push((decode_component(name)?, decode_component(value)?));
        }
        Ok(Params { pairs })
    }

    /// The value of `name` if it appears exactly once; `Err(())` if it
    /// appears more than once; `Ok(None)` if absent.
    #[allow(clippy::result_unit_err)]
    pub fn unique(&self, name: &str) -> Result<Option<&str>, ()> {
        let mut found = None;
        for (n, v) in &self.pairs {
            if n == name {
                if found.is_some() {
                    return Err(());
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// The first name that appears more than once, if any.
    pub fn first_duplicate(&self) -> Option<&str> {
        for (i, (n, _)) in self.pairs.iter().enumerate() {
            if self.pairs[..i].iter().any(|(m, _)| m == n) {
                return Some(n);
            }
        }
        None
    }
}

/// Decodes one form component (`+` → space, `%XX` → byte), checking that
/// every literal byte is one a conforming encoder would leave unencoded.
pub fn decode_component(input: &str) -> Result<String, FormError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| hex_value(*c));
                let lo = bytes.get(i + 2).and_then(|c| hex_value(*c));
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h * 16 + l),
                    _ => return Err(FormError::BadPercent),
                }
                i += 2;
            }
            0x21..=0x7e if b != b'#' => out.push(b),
            _ => return Err(FormError::BadByte(b)),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Form-encodes one component: unreserved characters (RFC 3986) stay, space
/// becomes `+`, everything else `%XX`.
pub fn encode_component(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Form-encodes pairs as `a=1&b=2`.
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode_component(n), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5), as PKCE and JWTs use it.
pub fn base64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..chars {
            let idx = (n >> (18 - 6 * k)) & 63;
            out.push(B64URL[idx as usize] as char);
        }
    }
    out
}

/// Decodes standard base64 with padding (RFC 4648 §4), as HTTP Basic uses it.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, quad) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = quad.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v = STD.iter().position(|s| *s == c)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// Lower-case hexadecimal.
pub fn hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A JSON value for [`json_object`]: just what the emulator's bodies need.
#[derive(Clone, Debug, PartialEq)]
pub enum J<'a> {
    /// A string (escaped on output).
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// `true` / `false`.
    Bool(bool),
    /// Already-serialized JSON, inserted verbatim.
    Raw(&'a str),
}

/// A compact JSON object with members in the given order (documents show
/// `access_token`, `token_type`, `expires_in`; a sorted map would not).
pub fn json_object(members: &[(&str, J<'_>)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(name));
        out.push(':');
        match value {
            J::Str(s) => out.push_str(&json_string(s)),
            J::Int(n) => {
                let _ = write!(out, "{n}");
            }
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Raw(raw) => out.push_str(raw),
        }
    }
    out.push('}');
    out
}

/// A JSON string literal (serde_json's escaping).
pub fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_round_trip_and_strictness() {
        let p = Params::parse("grant_type=refresh_token&scope=read%3Awork-orders+write%3Aassets&x")
            .unwrap();
        assert_eq!(p.unique("grant_type"), Ok(Some("refresh_token")));
        assert_eq!(p.unique("scope"), Ok(Some("read:work-orders write:assets")));
        assert_eq!(p.unique("x"), Ok(Some("")));
        assert_eq!(p.unique("missing"), Ok(None));
        assert_eq!(Params::parse("a=1&a=2").unwrap().unique("a"), Err(()));
        assert_eq!(Params::parse("a=%zz"), Err(FormError::BadPercent));
        assert_eq!(Params::parse("a=%4"), Err(FormError::BadPercent));
        assert_eq!(Params::parse("a=%ff"), Err(FormError::NotUtf8));
        assert_eq!(Params::parse("a=b c"), Err(FormError::BadByte(b' ')));
        assert_eq!(Params::parse("a=1&\nb=2"), Err(FormError::BadByte(b'\n')));
        assert_eq!(Params::parse("=1"), Err(FormError::EmptyName));
        assert_eq!(Params::parse("").unwrap().pairs.len(), 0);
        assert_eq!(
            encode_form(&[("redirect_uri", "http://x/cb?a=1"), ("s", "a b")]),
            "redirect_uri=http%3A%2F%2Fx%2Fcb%3Fa%3D1&s=a+b"
        );
    }

    #[test]
    fn base64url_rfc4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64_decode("Zm9vYmE=").unwrap(), b"fooba");
        assert_eq!(base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9"), None);
        assert_eq!(base64_decode("Z==="), None);
        assert_eq!(base64_decode("Zg==Zg=="), None);
        assert_eq!(base64_decode("Z!=="), None);
    }

    #[test]
    fn json_object_keeps_order_and_escapes() {
        assert_eq!(
            json_object(&[
                ("access_token", J::Str("a\"b")),
                ("token_type", J::Str("Bearer")),
                ("expires_in", J::Int(3600)),
                ("ok", J::Bool(true)),
                ("raw", J::Raw("[1]")),
            ]),
            r#"{"access_token":"a\"b","token_type":"Bearer","expires_in":3600,"ok":true,"raw":[1]}"#
        );
    }
}
