//! Endpoint URLs: a strict, borrowed `http(s)://host[:port][/path[?query]]`.
//!
//! [`Url::parse`] accepts only what a token or API endpoint needs and rejects
//! everything that could smuggle bytes into a request line or `Host` header:
//! userinfo (`@` in the authority), fragments (`#`), spaces, control
//! characters, non-ASCII bytes, and characters outside RFC 3986 `pchar` /
//! `query`. Percent-escapes are passed through as written (not decoded or
//! checked for hex digits). A URL with a query but no path
//! (`https://host?x=1`) is rejected: write `https://host/?x=1`.
//!
//! Nothing is copied: a [`Url`] borrows the string it was parsed from.
//! [`Url::join`] appends a path to a base URL (for provider presets whose host
//! varies, such as `https://webservices2.autotask.net/ATServicesRest` +
//! `/oauth/token`) without allocating: the joined URL keeps the two borrowed
//! pieces, and [`Url::target_parts`] returns them in order.

use crate::error::{Error, Field, InputError, Result};
use crate::write::{
    byte_set, byte_set_of, check_chars, decimal, has_control, in_set, ByteSet, Writer,
};

/// The URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain `http` (default port 80).
    Http,
    /// `https` (default port 443).
    Https,
}

impl Scheme {
    /// The scheme name in lower case (`"http"` / `"https"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The default port: 80 or 443.
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed, validated `http`/`https` URL borrowing its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Url<'a> {
    scheme: Scheme,
    /// Host as written (IPv6 literals keep their brackets).
    host: &'a str,
    /// `host[:port]` as written.
    authority: &'a str,
    port: Option<u16>,
    /// Base path of a joined URL (no trailing `/`), else empty.
    prefix: &'a str,
    /// Path and query; `/` when the URL has no path.
    path: &'a str,
}

fn url_err(kind: InputError) -> Error {
    Error::input(Field::Url, kind)
}

/// RFC 3986 `pchar`, `/`, `?` (and `%`, passed through unchecked).
const TARGET_CHARS: ByteSet = byte_set(b"-._~!$&'()*+,;=:@/?%");

/// Host name characters: letters, digits, `-`, `.`, `_`.
const HOST_CHARS: ByteSet = byte_set(b"-._");

/// The characters inside the brackets of an IPv6 literal: hex digits, `:`
/// and `.` (an embedded IPv4 address).
const IPV6_CHARS: ByteSet = byte_set_of(b"0123456789abcdefABCDEF:.");

/// Checks a request target or URL path: no control characters (ControlCharacter),
/// only RFC 3986 path/query characters (InvalidCharacter; this rejects spaces,
/// `#` fragments and non-ASCII bytes).
pub(crate) fn check_target(field: Field, s: &str) -> Result<()> {
    check_chars(field, s.as_bytes(), &TARGET_CHARS)
}

/// Writes the separator that starts a new query parameter after `target`:
/// `?` when it has no query, nothing when its query is empty (the first
/// `?` is the last byte) or ends in `&`, else `&`. A query that ends in a
/// `?` of its own (`?q=why?`) gets `&`: `?` is an ordinary query
/// character, and appending directly would glue the parameter to the
/// previous one.
pub(crate) fn query_sep(w: &mut Writer<'_>, target: &str) {
    match target.bytes().position(|b| b == b'?') {
        None => w.byte(b'?'),
        Some(q) if Some(q) == target.len().checked_sub(1) => {}
        Some(_) if target.as_bytes().last() == Some(&b'&') => {}
        Some(_) => w.byte(b'&'),
    }
}

/// Splits `s` around the first `c`: the text before and after it.
/// (Byte search: `str` pattern searchers keep panic paths in the binary.)
pub(crate) fn split_once_byte(s: &str, c: u8) -> Option<(&str, &str)> {
    let i = find(s, c, c)?;
    Some((s.get(..i)?, s.get(i.checked_add(1)?..)?))
}

/// The position of the first `a` or `b` in `s`: one out-of-line search for
/// all of this module's (flash: each inlined `position` is a loop of its own).
#[inline(never)]
fn find(s: &str, a: u8, b: u8) -> Option<usize> {
    s.bytes().position(|x| x == a || x == b)
}

fn parse_port(p: &str) -> Option<u16> {
    // At most five digits: `00443` is accepted, `000443` is not.
    match decimal(p.as_bytes()).map(u16::try_from) {
        Some(Ok(port)) if port != 0 && p.len() <= 5 => Some(port),
        _ => None,
    }
}

/// `scheme://authority/path`: the scheme (`http` or `https`, any case), the
/// authority and the path with query; `None` for any other shape.
fn split_url(s: &str) -> Option<(Scheme, &str, &str)> {
    let (scheme, rest) = split_once_byte(s, b':')?;
    let rest = match rest.as_bytes() {
        [b'/', b'/', ..] => rest.get(2..)?,
        _ => return None,
    };
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else {
        return None;
    };
    let end = find(rest, b'/', b'?').unwrap_or(rest.len());
    let (authority, path) = rest.split_at_checked(end)?;
    Some((scheme, authority, path))
}

/// `host[:port]`: whether the host is an IPv6 literal, the host and the
/// port; `None` for a malformed literal or port, or an empty host.
fn split_authority(authority: &str) -> Option<(bool, &str, Option<u16>)> {
    // The host ends at the `]` of an IPv6 literal, else at a `:`.
    let v6 = authority.as_bytes().first() == Some(&b'[');
    let host_len = if v6 {
        let close = find(authority, b']', b']')?;
        let inner = authority.get(1..close).unwrap_or_default();
        if inner.is_empty()
            || find(inner, b':', b':').is_none()
            || !inner.bytes().all(|b| in_set(&IPV6_CHARS, b))
        {
            return None;
        }
        close.saturating_add(1)
    } else {
        find(authority, b':', b':').unwrap_or(authority.len())
    };
    let (host, after) = authority.split_at_checked(host_len)?;
    let port = match after.as_bytes().first() {
        None => None,
        Some(b':') => Some(parse_port(after.get(1..).unwrap_or_default())?),
        Some(_) => return None,
    };
    if !v6 && host.is_empty() {
        return None;
    }
    Some((v6, host, port))
}

/// Whether `h` is a dotted-quad IPv4 address in 127.0.0.0/8.
fn is_ipv4_loopback(h: &str) -> bool {
    let (mut parts, mut digits, mut v) = (0u8, 0u8, 0u16);
    for b in h.bytes().chain(core::iter::once(b'.')) {
        if b == b'.' {
            if digits == 0 || v > 255 || (parts == 0 && v != 127) {
                return false;
            }
            parts = parts.wrapping_add(1);
            (digits, v) = (0, 0);
        } else if b.is_ascii_digit() && digits < 3 {
            v = v
                .wrapping_mul(10)
                .wrapping_add(u16::from(b.wrapping_sub(b'0')));
            digits = digits.wrapping_add(1);
        } else {
            return false;
        }
    }
    parts == 4
}

impl<'a> Url<'a> {
    /// Parses and validates `s`.
    ///
    /// Errors (all with [`Field::Url`]): [`InputError::ControlCharacter`] for
    /// CR, LF, NUL and other control characters; [`InputError::InvalidCharacter`]
    /// for userinfo (`@`), fragments (`#`), spaces, non-ASCII bytes and other
    /// characters not allowed in a host or request target;
    /// [`InputError::InvalidUrl`] for a scheme other than `http`/`https`
    /// (case-insensitive), an empty or malformed host, a port outside
    /// 1–65535, or a query without a path.
    pub fn parse(s: &'a str) -> Result<Self> {
        if has_control(s.as_bytes()) {
            return Err(url_err(InputError::ControlCharacter));
        }
        // Every malformed shape is `InvalidUrl`: the steps that find one
        // answer `None`, and one place turns it into the error (flash,
        // issue #13). The other errors keep their order around them.
        let invalid = url_err(InputError::InvalidUrl);
        let (scheme, authority, path) = split_url(s).ok_or(invalid)?;
        if find(authority, b'@', b'@').is_some() {
            return Err(url_err(InputError::InvalidCharacter));
        }
        let (v6, host, port) = split_authority(authority).ok_or(invalid)?;
        if !v6 {
            check_chars(Field::Url, host.as_bytes(), &HOST_CHARS)?;
        }
        if path.as_bytes().first() == Some(&b'?') {
            return Err(invalid);
        }
        check_target(Field::Url, path)?;
        Ok(Url {
            scheme,
            host,
            authority,
            port,
            prefix: "",
            path: if path.is_empty() { "/" } else { path },
        })
    }

    /// This URL with `path` appended to its path: `https://h/base` joined with
    /// `/oauth/token` is `https://h/base/oauth/token` (one `/` between them).
    ///
    /// `path` must start with `/` and may carry a query. The base must not
    /// have a query, nor be the result of joining onto a non-root base
    /// ([`InputError::InvalidUrl`]); `path` is checked like a parsed path.
    pub fn join(self, path: &'a str) -> Result<Self> {
        if !self.prefix.is_empty()
            || find(self.path, b'?', b'?').is_some()
            || path.as_bytes().first() != Some(&b'/')
        {
            return Err(url_err(InputError::InvalidUrl));
        }
        check_target(Field::Url, path)?;
        // The base path without its trailing slashes.
        let keep = self
            .path
            .bytes()
            .rposition(|b| b != b'/')
            .map_or(0, |i| i.saturating_add(1));
        let prefix = self.path.get(..keep).unwrap_or_default();
        Ok(Url {
            prefix,
            path,
            ..self
        })
    }

    /// The scheme.
    pub const fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as written; IPv6 literals include their brackets (`[::1]`).
    pub const fn host(&self) -> &'a str {
        self.host
    }

    /// The effective port: the explicit one, else 443 for https, 80 for http.
    pub const fn port(&self) -> u16 {
        match self.port {
            Some(p) => p,
            None => self.scheme.default_port(),
        }
    }

    /// The `Host` header value: the host, plus `:port` only when the port is
    /// explicit and not the scheme's default.
    pub fn host_header(&self) -> &'a str {
        match self.port {
            Some(p) if p != self.scheme.default_port() => self.authority,
            _ => self.host,
        }
    }

    /// The request target (origin-form path and query) as two pieces to be
    /// written one after the other. The first is empty unless the URL was
    /// built with [`Url::join`]; the second always starts with `/`.
    pub const fn target_parts(&self) -> (&'a str, &'a str) {
        (self.prefix, self.path)
    }

    /// Length of the request target in bytes.
    pub const fn target_len(&self) -> usize {
        self.prefix.len().saturating_add(self.path.len())
    }

    /// Whether the host is loopback: `localhost` (any case), an IPv4 address
    /// in 127.0.0.0/8 written as a dotted quad, or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            // (No letters: equality without case folding.)
            || self.host.eq_ignore_ascii_case("[::1]")
            || self.host.eq_ignore_ascii_case("[0:0:0:0:0:0:0:1]")
            || is_ipv4_loopback(self.host)
    }

    /// Refuses plain `http` to a non-loopback host unless `allow_insecure` is
    /// set: [`InputError::InsecureScheme`] with [`Field::Url`].
    pub fn check_transport(&self, allow_insecure: bool) -> Result<()> {
        if self.scheme == Scheme::Http && !allow_insecure && !self.is_loopback() {
            return Err(url_err(InputError::InsecureScheme));
        }
        Ok(())
    }

    /// Writes the request target.
    pub(crate) fn write_target(&self, w: &mut Writer<'_>) {
        w.str(self.prefix);
        w.str(self.path);
    }

    /// Writes the whole URL (lower-case scheme, `Host` form of the authority).
    pub(crate) fn write_url(&self, w: &mut Writer<'_>) {
        w.str(self.scheme.as_str());
        w.str("://");
        w.str(self.host_header());
        self.write_target(w);
    }

    /// Writes the URL into `buf` (for hosts whose HTTP client takes a URL):
    /// `scheme://host[:port]/path[?query]`, the scheme in lower case and a
    /// default port omitted. Returns the length, or
    /// [`Error::BufferTooSmall`].
    pub fn write(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        self.write_url(&mut w);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn full(u: &Url<'_>) -> String {
        let mut buf = [0u8; 256];
        let n = u.write(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn err(s: &str) -> InputError {
        match Url::parse(s) {
            Err(Error::InvalidInput {
                field: Field::Url,
                kind,
            }) => kind,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn parses_components() {
        let u = Url::parse("HTTPS://api.fentu.io/oauth/token").unwrap();
        assert_eq!(u.scheme(), Scheme::Https);
        assert_eq!(u.host(), "api.fentu.io");
        assert_eq!(u.port(), 443);
        assert_eq!(u.host_header(), "api.fentu.io");
        assert_eq!(u.target_parts(), ("", "/oauth/token"));
        assert_eq!(full(&u), "https://api.fentu.io/oauth/token");

        let u = Url::parse("http://example.com").unwrap();
        assert_eq!(u.port(), 80);
        assert_eq!(u.target_parts(), ("", "/"));
        assert_eq!(u.target_len(), 1);

        let u = Url::parse("https://h.example:8443/a/b?x=1&y=%2F").unwrap();
        assert_eq!(u.port(), 8443);
        assert_eq!(u.host_header(), "h.example:8443");
        assert_eq!(u.target_parts(), ("", "/a/b?x=1&y=%2F"));

        // An explicit default port is dropped from the Host header.
        let u = Url::parse("https://h.example:443/x").unwrap();
        assert_eq!(u.host_header(), "h.example");
        assert_eq!(full(&u), "https://h.example/x");

        let u = Url::parse("http://[::1]:8080/cb").unwrap();
        assert_eq!(u.host(), "[::1]");
        assert_eq!(u.host_header(), "[::1]:8080");
        assert_eq!(u.port(), 8080);
        assert!(u.is_loopback());

        let u = Url::parse("https://[2001:db8::1]/t").unwrap();
        assert_eq!(u.host(), "[2001:db8::1]");
        assert_eq!(u.port(), 443);
    }

    #[test]
    fn rejects_bad_urls() {
        use InputError::*;
        for (s, k) in [
            ("", InvalidUrl),
            ("api.fentu.io/oauth/token", InvalidUrl),
            ("ftp://h/x", InvalidUrl),
            ("https:///x", InvalidUrl),
            ("https://", InvalidUrl),
            ("https://:443/x", InvalidUrl),
            ("https://h:/x", InvalidUrl),
            ("https://h:0/x", InvalidUrl),
            ("https://h:65536/x", InvalidUrl),
            ("https://h:123456/x", InvalidUrl),
            ("https://h:8a/x", InvalidUrl),
            ("https://h?x=1", InvalidUrl),
            ("https://[]/x", InvalidUrl),
            ("https://[::1/x", InvalidUrl),
            ("https://[::1]x/x", InvalidUrl),
            ("https://[zz::1]/x", InvalidUrl),
            ("https://user:pw@h/x", InvalidCharacter),
            ("https://h@evil/x", InvalidCharacter),
            ("https://h/x#frag", InvalidCharacter),
            ("https://h/a b", InvalidCharacter),
            ("https://h b/x", InvalidCharacter),
            ("https://hé/x", InvalidCharacter),
            ("https://h/é", InvalidCharacter),
            ("https://h/a\"b", InvalidCharacter),
            ("https://h/a<b>", InvalidCharacter),
            ("https://h\\x/", InvalidCharacter),
            ("https://h/x\r\nHost: evil", ControlCharacter),
            ("https://h/x\n", ControlCharacter),
            ("https://h\0/x", ControlCharacter),
            ("https://h/\x7f", ControlCharacter),
            ("https://h/\t", ControlCharacter),
        ] {
            assert_eq!(err(s), k, "{s:?}");
        }
    }

    #[test]
    fn loopback_and_transport() {
        for s in [
            "http://localhost/cb",
            "http://LocalHost:8080/cb",
            "http://127.0.0.1/x",
            "http://127.255.0.9:1/x",
            "http://[::1]/x",
        ] {
            let u = Url::parse(s).unwrap();
            assert!(u.is_loopback(), "{s}");
            assert_eq!(u.check_transport(false), Ok(()));
        }
        for s in [
            "http://example.com/x",
            "http://127.0.0.1.evil.com/x",
            "http://localhost.evil.com/x",
            "http://128.0.0.1/x",
            "http://127.0.0/x",
            "http://127.0.0.256/x",
            "http://127.0.0.1.5/x",
            "http://[::2]/x",
        ] {
            let u = Url::parse(s).unwrap();
            assert!(!u.is_loopback(), "{s}");
            assert_eq!(
                u.check_transport(false),
                Err(Error::input(Field::Url, InputError::InsecureScheme))
            );
            assert_eq!(u.check_transport(true), Ok(()));
        }
        let u = Url::parse("https://example.com/x").unwrap();
        assert_eq!(u.check_transport(false), Ok(()));
    }

    #[test]
    fn join() {
        let base = Url::parse("https://webservices2.autotask.net/ATServicesRest/").unwrap();
        let u = base.join("/oauth/token").unwrap();
        assert_eq!(u.target_parts(), ("/ATServicesRest", "/oauth/token"));
        assert_eq!(
            full(&u),
            "https://webservices2.autotask.net/ATServicesRest/oauth/token"
        );
        let u = Url::parse("https://api.fieldnation.com")
            .unwrap()
            .join("/authentication/api/oauth/token")
            .unwrap();
        assert_eq!(
            full(&u),
            "https://api.fieldnation.com/authentication/api/oauth/token"
        );
        assert_eq!(u.target_len(), "/authentication/api/oauth/token".len());
        let bad = Error::input(Field::Url, InputError::InvalidUrl);
        assert_eq!(base.join("oauth/token"), Err(bad));
        // Joining onto a root URL leaves one piece, so it can be joined again.
        let again = u.join("/again").unwrap();
        assert_eq!(
            full(&again),
            "https://api.fieldnation.com/authentication/api/oauth/token/again"
        );
        assert_eq!(base.join("/a").unwrap().join("/b"), Err(bad));
        assert_eq!(Url::parse("https://h/x?q=1").unwrap().join("/y"), Err(bad));
        assert_eq!(
            base.join("/a b"),
            Err(Error::input(Field::Url, InputError::InvalidCharacter))
        );
        assert_eq!(
            base.join("/a\r\n"),
            Err(Error::input(Field::Url, InputError::ControlCharacter))
        );
    }

    #[test]
    fn write_reports_needed_size() {
        let u = Url::parse("https://api.fentu.io:8443/oauth/authorize?a=b").unwrap();
        let want = "https://api.fentu.io:8443/oauth/authorize?a=b";
        for n in 0..want.len() {
            let mut buf = std::vec![0u8; n];
            assert_eq!(u.write(&mut buf), Err(Error::buffer_too_small(want.len())));
        }
        assert_eq!(full(&u), want);
    }

    #[test]
    fn query_separator() {
        for (t, want) in [
            ("/a", "?"),
            ("/a?", ""),
            ("/a?x=1", "&"),
            ("/a?x=1&", ""),
            ("/a?limit=", "&"),
            ("/a?q=why?", "&"),
            ("/a??", "&"),
            ("/a?&", ""),
        ] {
            let mut buf = [0u8; 4];
            let mut w = Writer::new(&mut buf);
            query_sep(&mut w, t);
            let n = w.finish().unwrap();
            assert_eq!(&buf[..n], want.as_bytes(), "{t}");
        }
    }
}
