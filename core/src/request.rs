//! Token-endpoint requests (RFC 6749, RFC 7009, RFC 8628, provider logins),
//! written into a caller buffer.
//!
//! A [`Client`] holds the borrowed configuration; [`Client::request`] pairs it
//! with a [`Grant`] (what to ask for) into a [`Request`], which writes either
//! a complete HTTP/1.1 request ([`Request::write_http`]) or the same request
//! as separate pieces for hosts with their own HTTP client
//! ([`Request::write_parts`]).
//!
//! # Wire format
//! Request line `POST <target> HTTP/1.1`, then these headers in this order:
//! `Host`, `Content-Type` (when there is a body), `Content-Length`,
//! `Accept: application/json`, `Authorization` (client_secret_basic, or the
//! token of [`Grant::RevokeBearer`]), the configured extra headers, and
//! `User-Agent` when configured.
//!
//! Body parameters, in this order: `grant_type`; the grant's own parameters;
//! `client_id` and `client_secret` (per [`ClientAuth`]; never for
//! [`Grant::Login`]); then `scope`, `resource` (RFC 8707) and `audience` for
//! the grants that request a token for a scope (client credentials, password,
//! refresh token, device authorization). Form bodies are WHATWG
//! form-urlencoded; JSON bodies are one compact object with string members in
//! the same order.
//!
//! # Safety of the output
//! All input is checked before a byte is written: CR, LF, NUL and other
//! control characters, empty credentials, missing secrets, header names that
//! are not tokens or that would override a header fieldauth sets, and plain
//! `http` to a non-loopback host (unless `allow_insecure`) are refused with
//! [`Error::InvalidInput`]. If the buffer is too small the call returns
//! [`Error::BufferTooSmall`] with the exact size needed, and the buffer is
//! zeroed so that no partial request (or secret) is left in it.

use core::fmt;

use crate::error::{Error, Field, InputError, Result};
use crate::url::{split_once_byte, Url};
use crate::write::{check_header_value, check_param, check_token, Window, Writer};
#[cfg(feature = "basic-auth")]
use crate::write::{Alphabet, Base64};

/// Most extra headers a [`Client`] may configure.
pub const MAX_EXTRA_HEADERS: usize = 6;

/// Most headers a request has: the six fieldauth may set, plus
/// [`MAX_EXTRA_HEADERS`].
pub const MAX_HEADERS: usize = 12;

/// How the request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` (RFC 6749; Fentu, Autotask).
    Form,
    /// `application/json` (Field Nation, Patchworks).
    Json,
}

impl BodyFormat {
    /// The `Content-Type` header value.
    pub const fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Json => "application/json",
        }
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Body,
    /// `client_secret_basic`: `Authorization: Basic
    /// base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
    /// Needs the `basic-auth` feature (on by default).
    #[cfg(feature = "basic-auth")]
    Basic,
    /// Public client: `client_id` in the body, no secret.
    None,
}

/// The `token_type_hint` of a revocation request (RFC 7009 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    /// The parameter value.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// The configuration of an OAuth client. All strings are borrowed.
///
/// `Debug` shows neither the client secret nor extra header values.
#[derive(Clone, Copy)]
pub struct Client<'a> {
    /// The token endpoint (also the default target of every request).
    pub endpoint: Url<'a>,
    /// `client_id` (unused by [`Grant::Login`] and [`Grant::RevokeBearer`]).
    pub client_id: &'a str,
    /// `client_secret`; required by [`ClientAuth::Body`] and [`ClientAuth::Basic`].
    pub client_secret: Option<&'a str>,
    /// How the client authenticates.
    pub auth: ClientAuth,
    /// How bodies are encoded.
    pub format: BodyFormat,
    /// Space-separated scopes.
    pub scope: Option<&'a str>,
    /// `resource` (RFC 8707).
    pub resource: Option<&'a str>,
    /// `audience` (used by some providers instead of `resource`).
    pub audience: Option<&'a str>,
    /// Allow plain `http` to a non-loopback endpoint. Off by default; for
    /// test rigs only.
    pub allow_insecure: bool,
    /// Extra headers `(name, value)`, at most [`MAX_EXTRA_HEADERS`]. Names
    /// must be tokens and may not be `Host`, `Content-Length`,
    /// `Transfer-Encoding`, `Content-Type` or `Authorization`.
    pub extra_headers: &'a [(&'a str, &'a str)],
    /// `User-Agent` header value.
    pub user_agent: Option<&'a str>,
    /// More body parameters for every grant request (not revocations), as
    /// `application/x-www-form-urlencoded` text: `name=value` pairs joined
    /// by `&`, already encoded (`prompt=none&login_hint=a%40b.example`).
    /// Sent as they are in form bodies, decoded in JSON bodies. Names are
    /// plain (`A-Z a-z 0-9 - . _ ~`); names fieldauth sets itself (`grant_type`, `client_id`, `scope`, ...) are
    /// refused ([`InputError::Reserved`]), as are characters a query cannot
    /// carry unencoded, bad escapes, and decoded control characters or
    /// invalid UTF-8.
    pub extra_params: Option<&'a str>,
}

impl<'a> Client<'a> {
    /// A public client ([`ClientAuth::None`]) with form bodies, no secret,
    /// scope, extra headers or user agent. Set the other fields as needed.
    pub const fn new(endpoint: Url<'a>, client_id: &'a str) -> Self {
        Client {
            endpoint,
            client_id,
            client_secret: None,
            auth: ClientAuth::None,
            format: BodyFormat::Form,
            scope: None,
            resource: None,
            audience: None,
            allow_insecure: false,
            extra_headers: &[],
            user_agent: None,
            extra_params: None,
        }
    }

    /// A request for `grant` to the token endpoint.
    pub fn request<'r>(&'r self, grant: Grant<'r>) -> Request<'r> {
        Request {
            client: self,
            endpoint: self.endpoint,
            grant,
        }
    }

    /// A request for `grant` to another endpoint of the same server (device
    /// authorization, revocation).
    pub fn request_to<'r>(&'r self, endpoint: Url<'r>, grant: Grant<'r>) -> Request<'r> {
        Request {
            client: self,
            endpoint,
            grant,
        }
    }
}

impl fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.map(|_| "<redacted>"))
            .field("auth", &self.auth)
            .field("format", &self.format)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .field("audience", &self.audience)
            .field("allow_insecure", &self.allow_insecure)
            .field("extra_headers", &self.extra_headers.len())
            .field("user_agent", &self.user_agent)
            .field("extra_params", &self.extra_params.map(|_| "<redacted>"))
            .finish()
    }
}

/// What a request asks for. Secret fields never appear in `Debug`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Grant<'a> {
    /// `grant_type=client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// `grant_type=password` with `username` and `password` (RFC 6749 §4.3).
    Password {
        /// Resource-owner username.
        username: &'a str,
        /// Resource-owner password.
        password: &'a str,
    },
    /// Provider login (Patchworks `/fabric/api/login`): a body of exactly
    /// `username` and `password`, without `grant_type` or client
    /// authentication.
    Login {
        /// Account username.
        username: &'a str,
        /// Account password.
        password: &'a str,
    },
    /// `grant_type=refresh_token` (RFC 6749 §6).
    RefreshToken {
        /// The refresh token.
        refresh_token: &'a str,
    },
    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5).
    AuthorizationCode {
        /// The code from the redirect.
        code: &'a str,
        /// The `redirect_uri` sent in the authorization request, if any.
        redirect_uri: Option<&'a str>,
        /// The PKCE code verifier, if PKCE was used
        /// ([`CodeVerifier::as_str`](crate::pkce::CodeVerifier::as_str)).
        code_verifier: Option<&'a str>,
    },
    /// Device access token poll (RFC 8628 §3.4):
    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code`. Needs the
    /// `device-flow` feature (on by default).
    #[cfg(feature = "device-flow")]
    DeviceCode {
        /// The `device_code` from the device authorization response.
        device_code: &'a str,
    },
    /// Device authorization request (RFC 8628 §3.1), to the device
    /// authorization endpoint ([`Client::request_to`]): client authentication
    /// and `scope`, no `grant_type`. Needs the `device-flow` feature (on by
    /// default).
    #[cfg(feature = "device-flow")]
    DeviceAuthorization,
    /// Token revocation (RFC 7009 §2.1), to the revocation endpoint:
    /// `token`, optional `token_type_hint`, client authentication as configured.
    Revoke {
        /// The token to revoke.
        token: &'a str,
        /// Which kind of token it is.
        hint: Option<TokenTypeHint>,
    },
    /// Revocation as Fentu documents it: `POST` with
    /// `Authorization: Bearer <token>` and no body.
    RevokeBearer {
        /// The token to revoke.
        token: &'a str,
    },
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Grant::ClientCredentials => "ClientCredentials",
            Grant::Password { .. } => "Password { <redacted> }",
            Grant::Login { .. } => "Login { <redacted> }",
            Grant::RefreshToken { .. } => "RefreshToken { <redacted> }",
            Grant::AuthorizationCode { .. } => "AuthorizationCode { <redacted> }",
            #[cfg(feature = "device-flow")]
            Grant::DeviceCode { .. } => "DeviceCode { <redacted> }",
            #[cfg(feature = "device-flow")]
            Grant::DeviceAuthorization => "DeviceAuthorization",
            Grant::Revoke { .. } => "Revoke { <redacted> }",
            Grant::RevokeBearer { .. } => "RevokeBearer { <redacted> }",
        })
    }
}

/// Header names a caller may not supply: framing headers and the ones
/// fieldauth sets itself.
const RESERVED: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "content-type",
    "authorization",
];

/// Checks a caller-supplied header name: a token, and not [`RESERVED`].
pub(crate) fn check_header_name(name: &str) -> Result<()> {
    check_token(Field::HeaderName, name.as_bytes())?;
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(Error::input(Field::HeaderName, InputError::Reserved));
    }
    Ok(())
}

/// Runs `f` over a writer on `buf`; on any error (too small) zeroes `buf` so
/// no partial output remains.
#[inline(always)]
pub(crate) fn write_into(buf: &mut [u8], f: impl FnOnce(&mut Writer<'_>)) -> Result<usize> {
    let mut w = Writer::new(buf);
    f(&mut w);
    w.finish_or_wipe()
}

/// Receives the body parameters of a request in order: `(key, value,
/// field)`; a value of `None` is one the request needs but does not have
/// (a missing client secret). Walked twice (checked, then written) instead
/// of collected: a table of them was 164 bytes in the deepest stack frame of
/// every request writer on a Cortex-M4 (issue #13).
type ParamSink<'s, 'a> = dyn FnMut(&'static str, Option<&'a str>, Field) + 's;

/// An optional parameter: given to `p` when present.
fn opt<'a>(p: &mut ParamSink<'_, 'a>, key: &'static str, value: Option<&'a str>, field: Field) {
    if value.is_some() {
        p(key, value, field);
    }
}

/// Writes a header line.
fn header(w: &mut Writer<'_>, name: &str, value: &str) {
    w.str(name);
    w.str(": ");
    w.str(value);
    w.str("\r\n");
}

/// Splits off the first CRLF-terminated line of `s`: the line and the rest.
fn next_line(s: &str) -> Option<(&str, &str)> {
    let (line, rest) = split_once_byte(s, b'\n')?;
    Some((line.get(..line.len().checked_sub(1)?)?, rest))
}

/// A request ready to be written: a [`Client`], an endpoint and a [`Grant`].
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    client: &'a Client<'a>,
    endpoint: Url<'a>,
    grant: Grant<'a>,
}

impl<'a> Request<'a> {
    /// The endpoint the request goes to (scheme, host and port for the
    /// host's connection).
    pub const fn url(&self) -> Url<'a> {
        self.endpoint
    }

    /// The grant.
    pub const fn grant(&self) -> Grant<'a> {
        self.grant
    }

    /// Whether the client authenticates with this request (not for
    /// [`Grant::Login`] and [`Grant::RevokeBearer`]).
    fn uses_client(&self) -> bool {
        !matches!(self.grant, Grant::Login { .. } | Grant::RevokeBearer { .. })
    }

    /// Collects and checks the body parameters.
    /// Walks the body parameters (see [`ParamSink`]). `body`: only those the
    /// body carries (with Basic authentication the client id and secret are
    /// checked but go in the header).
    fn params(&self, body: bool, p: &mut ParamSink<'_, 'a>) {
        let c = self.client;
        let mut scoped = false;
        let gt = |p: &mut ParamSink<'_, 'a>, v| p("grant_type", Some(v), Field::Url);
        match self.grant {
            Grant::ClientCredentials => {
                gt(p, "client_credentials");
                scoped = true;
            }
            Grant::Password { username, password } | Grant::Login { username, password } => {
                // The login is the same pair without a grant type or scope.
                scoped = matches!(self.grant, Grant::Password { .. });
                if scoped {
                    gt(p, "password");
                }
                p("username", Some(username), Field::Username);
                p("password", Some(password), Field::Password);
            }
            Grant::RefreshToken { refresh_token } => {
                gt(p, "refresh_token");
                p("refresh_token", Some(refresh_token), Field::RefreshToken);
                scoped = true;
            }
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                gt(p, "authorization_code");
                p("code", Some(code), Field::Code);
                opt(p, "redirect_uri", redirect_uri, Field::RedirectUri);
                opt(p, "code_verifier", code_verifier, Field::CodeVerifier);
            }
            #[cfg(feature = "device-flow")]
            Grant::DeviceCode { device_code } => {
                gt(p, "urn:ietf:params:oauth:grant-type:device_code");
                p("device_code", Some(device_code), Field::DeviceCode);
            }
            #[cfg(feature = "device-flow")]
            Grant::DeviceAuthorization => scoped = true,
            Grant::Revoke { token, hint } => {
                p("token", Some(token), Field::Token);
                opt(
                    p,
                    "token_type_hint",
                    hint.map(TokenTypeHint::as_str),
                    Field::Token,
                );
            }
            Grant::RevokeBearer { .. } => {}
        }
        // With Basic the id and secret are checked, then sent in the header.
        #[cfg(feature = "basic-auth")]
        let in_body = !body || c.auth != ClientAuth::Basic;
        #[cfg(not(feature = "basic-auth"))]
        let in_body = {
            let _ = body;
            true
        };
        if self.uses_client() && in_body {
            p("client_id", Some(c.client_id), Field::ClientId);
            if c.auth != ClientAuth::None {
                p("client_secret", c.client_secret, Field::ClientSecret);
            }
        }
        if scoped {
            opt(p, "scope", c.scope, Field::Scope);
            opt(p, "resource", c.resource, Field::Resource);
            opt(p, "audience", c.audience, Field::Audience);
        }
    }

    /// Checks the whole request: the first problem, in parameter order.
    fn prepare(&self) -> Result<()> {
        let c = self.client;
        self.endpoint.check_transport(c.allow_insecure)?;
        let mut err = Ok(());
        self.params(false, &mut |_, value, field| {
            if err.is_ok() {
                err = match value {
                    Some(v) => check_param(field, v),
                    None => Err(Error::input(field, InputError::Missing)),
                };
            }
        });
        err?;
        if let Grant::RevokeBearer { token } = self.grant {
            check_header_value(Field::Token, token.as_bytes())?;
        }
        if c.extra_headers.len() > MAX_EXTRA_HEADERS {
            return Err(Error::input(Field::HeaderName, InputError::TooLong));
        }
        for &(name, value) in c.extra_headers {
            check_header_name(name)?;
            check_header_value(Field::HeaderValue, value.as_bytes())?;
        }
        if let Some(ua) = c.user_agent {
            check_header_value(Field::HeaderValue, ua.as_bytes())?;
        }
        if let Some(extra) = c.extra_params {
            crate::params::check(Field::ExtraParams, extra)?;
        }
        Ok(())
    }

    fn emit_body(&self, w: &mut Writer<'_>) {
        let json = self.client.format == BodyFormat::Json;
        let mut first = true;
        let mut kv = |k: &str, v: &str| {
            if json {
                w.byte(if first { b'{' } else { b',' });
                w.json_str(k);
                w.byte(b':');
                w.json_str(v);
            } else {
                if !first {
                    w.byte(b'&');
                }
                w.str(k);
                w.byte(b'=');
                w.form(v.as_bytes());
            }
            first = false;
        };
        self.params(true, &mut |k, v, _| kv(k, v.unwrap_or_default()));
        let extra = match self.grant {
            Grant::Revoke { .. } | Grant::RevokeBearer { .. } => None,
            _ => self.client.extra_params,
        };
        if json {
            if let Some(extra) = extra {
                first = crate::params::emit_json(w, extra, first);
            }
            if first {
                w.byte(b'{');
            }
            w.byte(b'}');
        } else if let Some(extra) = extra {
            crate::params::emit_form(w, extra, first);
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        let c = self.client;
        let has_body = !matches!(self.grant, Grant::RevokeBearer { .. });
        let body_len = if has_body {
            let mut count = Writer::new(&mut []);
            self.emit_body(&mut count);
            count.len()
        } else {
            0
        };
        w.str("POST ");
        self.endpoint.write_target(w);
        w.str(" HTTP/1.1\r\n");
        header(w, "Host", self.endpoint.host_header());
        if has_body {
            header(w, "Content-Type", c.format.content_type());
        }
        w.str("Content-Length: ");
        w.decimal(body_len as u64);
        w.str("\r\nAccept: application/json\r\n");
        if let Grant::RevokeBearer { token } = self.grant {
            w.str("Authorization: Bearer ");
            w.str(token);
            w.str("\r\n");
        }
        #[cfg(feature = "basic-auth")]
        if c.auth == ClientAuth::Basic && self.uses_client() {
            w.str("Authorization: Basic ");
            let mut b = Base64::new(Alphabet::Standard);
            b.push_form(w, c.client_id.as_bytes());
            b.push(w, b':');
            b.push_form(w, c.client_secret.unwrap_or("").as_bytes());
            b.finish(w);
            w.str("\r\n");
        }
        for &(name, value) in c.extra_headers {
            header(w, name, value);
        }
        if let Some(ua) = c.user_agent {
            header(w, "User-Agent", ua);
        }
        w.str("\r\n");
        if has_body {
            self.emit_body(w);
        }
    }

    /// Writes the complete HTTP/1.1 request (head and body) into `buf` and
    /// returns its length.
    ///
    /// Errors: [`Error::InvalidInput`] for unusable configuration or grant
    /// values (nothing written); [`Error::BufferTooSmall`] with the exact
    /// length needed (the buffer is zeroed).
    pub fn write_http(&self, buf: &mut [u8]) -> Result<usize> {
        self.prepare()?;
        write_into(buf, |w| self.emit(w))
    }

    /// Writes bytes `offset ..` of the complete HTTP/1.1 request (what
    /// [`Request::write_http`] writes) into `buf`, as many as fit, and returns
    /// how many were written and the request's total length. A device with a
    /// small buffer sends the request window by window, advancing `offset` by
    /// `written` until it reaches `total`. Errors: input errors only (there
    /// is no `BufferTooSmall`: a window is always as large as the buffer).
    pub fn write_http_window(&self, offset: usize, buf: &mut [u8]) -> Result<Window> {
        self.prepare()?;
        let mut w = Writer::window(buf, offset);
        self.emit(&mut w);
        Ok(w.finish_window())
    }

    /// Writes only the request body into `buf` and returns its length: for
    /// hosts whose HTTP client builds the head itself (send it with
    /// `Content-Type:` [`BodyFormat::content_type`], and the `Authorization`
    /// header that [`Request::write_parts`] would give when Basic auth is
    /// configured). Empty for [`Grant::RevokeBearer`], which has no body.
    /// Errors as [`Request::write_http`].
    pub fn write_body(&self, buf: &mut [u8]) -> Result<usize> {
        self.prepare()?;
        write_into(buf, |w| {
            if !matches!(self.grant, Grant::RevokeBearer { .. }) {
                self.emit_body(w);
            }
        })
    }

    /// Writes the request into `buf` and returns its pieces, for hosts whose
    /// HTTP client takes a method, target, headers and body.
    ///
    /// `buf` receives exactly what [`Request::write_http`] writes (so it needs
    /// the same size); the target, header names and values, and body in
    /// [`Parts`] are sub-slices of it, and [`Parts::raw`] is all of it. The
    /// errors are those of [`Request::write_http`].
    pub fn write_parts<'b>(&self, buf: &'b mut [u8]) -> Result<Parts<'b>> {
        let len = self.write_http(buf)?;
        parts_of(buf, len)
    }
}

/// The parts of a request [`Request::write_http`] wrote: the first `len`
/// bytes of `buf`. Out of line, so a caller's request builders and the
/// parts' header table do not share a stack frame.
#[inline(never)]
pub(crate) fn parts_of(buf: &[u8], len: usize) -> Result<Parts<'_>> {
    // Anything else than what the writer writes is `WrongState`, from one
    // place (flash, issue #13).
    split_parts(buf.get(..len).unwrap_or(&[])).ok_or(Error::WrongState)
}

fn split_parts(raw: &[u8]) -> Option<Parts<'_>> {
    // All of it is UTF-8 (written from `str`s and ASCII encodings). The
    // head is the request line `POST <target> HTTP/1.1` and `Name: value`
    // lines, none of them empty and none with a CR or LF inside (every
    // piece was checked), then an empty line and the body.
    let all = core::str::from_utf8(raw).ok()?;
    let (line, lines) = next_line(all)?;
    let target = line.get(5..line.len().wrapping_sub(9))?;
    let mut rest = lines;
    let mut n = 0usize;
    loop {
        let (line, tail) = next_line(rest)?;
        if line.is_empty() {
            break;
        }
        split_once_byte(line, b':')?;
        rest = tail;
        n = n.saturating_add(1);
    }
    // `rest` starts at the empty line; the body follows it.
    let head = lines.get(..lines.len().saturating_sub(rest.len()))?;
    let body = rest.get(2..)?;
    Some(Parts {
        method: "POST",
        target,
        head,
        header_count: n,
        body: body.as_bytes(),
        raw,
    })
}

/// A written request as pieces borrowing the caller's buffer (see
/// [`Request::write_parts`]).
///
/// `Debug` shows the target, header names and body length, never header
/// values or the body (they hold credentials).
#[derive(Clone, Copy)]
pub struct Parts<'b> {
    /// Always `"POST"`.
    pub method: &'static str,
    /// The request target (origin-form path and query).
    pub target: &'b str,
    /// The header lines as written (`Name: value` and CR LF each), read by
    /// [`Parts::headers`]: the parts stay small (no table of slices on the
    /// stack: issue #13).
    head: &'b str,
    /// Number of headers ([`Parts::headers`] yields this many; at most
    /// [`MAX_HEADERS`]).
    pub header_count: usize,
    /// The body (empty for [`Grant::RevokeBearer`]).
    pub body: &'b [u8],
    /// The complete HTTP/1.1 request, identical to [`Request::write_http`]'s
    /// output.
    pub raw: &'b [u8],
}

impl<'b> Parts<'b> {
    /// The headers as `(name, value)` pairs, in order. Includes `Host` and
    /// `Content-Length`, which a host's HTTP client may set itself.
    pub fn headers(&self) -> impl Iterator<Item = (&'b str, &'b str)> {
        let mut rest = self.head;
        core::iter::from_fn(move || {
            let (line, tail) = next_line(rest)?;
            rest = tail;
            let (name, value) = split_once_byte(line, b':')?;
            Some((name, value.get(1..).unwrap_or_default()))
        })
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl fmt::Debug for Parts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Names<'p, 'b>(&'p Parts<'b>);
        impl fmt::Debug for Names<'_, '_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.headers().map(|(n, _)| n))
                    .finish()
            }
        }
        f.debug_struct("Parts")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &Names(self))
            .field("body_len", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    fn http(r: &Request<'_>) -> String {
        let mut buf = [0u8; 2048];
        let n = r.write_http(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn body(r: &Request<'_>) -> String {
        let s = http(r);
        let (_, b) = s.split_once("\r\n\r\n").unwrap();
        String::from(b)
    }

    fn url(s: &str) -> Url<'_> {
        Url::parse(s).unwrap()
    }

    /// The client authentications that send a secret.
    fn secret_auths() -> &'static [ClientAuth] {
        #[cfg(feature = "basic-auth")]
        return &[ClientAuth::Body, ClientAuth::Basic];
        #[cfg(not(feature = "basic-auth"))]
        return &[ClientAuth::Body];
    }

    /// Basic authentication when asked and available, else the body.
    fn basic_or_body(basic: bool) -> ClientAuth {
        #[cfg(feature = "basic-auth")]
        if basic {
            return ClientAuth::Basic;
        }
        let _ = basic;
        ClientAuth::Body
    }

    fn input(field: Field, kind: InputError) -> Result<usize> {
        Err(Error::input(field, kind))
    }

    /// Checks every buffer size below the needed length, exact size, and
    /// parts/http equivalence; returns the request text.
    fn check_all(r: &Request<'_>) -> String {
        let want = http(r);
        let needed = want.len();
        // Under Miri (tests/miri.sh) every 97th short buffer and the longest.
        for n in (0..needed).filter(|&n| !cfg!(miri) || n % 97 == 0 || n + 1 == needed) {
            let mut buf = std::vec![0xAAu8; n];
            assert_eq!(r.write_http(&mut buf), Err(Error::buffer_too_small(needed)));
            assert!(buf.iter().all(|&b| b == 0), "buffer not wiped at {n}");
            let mut buf = std::vec![0u8; n];
            assert_eq!(
                r.write_parts(&mut buf).map(|_| ()),
                Err(Error::buffer_too_small(needed))
            );
        }
        let mut buf = std::vec![0u8; needed];
        assert_eq!(r.write_http(&mut buf), Ok(needed));
        assert_eq!(buf, want.as_bytes());
        let mut buf = std::vec![0u8; needed];
        let parts = r.write_parts(&mut buf).unwrap();
        assert_eq!(parts.raw, want.as_bytes());
        // Rebuild the request from the parts.
        let mut re = format!("{} {} HTTP/1.1\r\n", parts.method, parts.target);
        for (n, v) in parts.headers() {
            re.push_str(&format!("{n}: {v}\r\n"));
        }
        re.push_str("\r\n");
        re.push_str(std::str::from_utf8(parts.body).unwrap());
        assert_eq!(re, want);
        assert_eq!(
            parts.header("content-length").unwrap(),
            format!("{}", parts.body.len())
        );
        want
    }

    #[test]
    fn fentu_refresh_form_body() {
        let mut c = Client::new(url("https://api.fentu.io/oauth/token"), "YOUR_CLIENT_ID");
        c.client_secret = Some("YOUR_CLIENT_SECRET");
        c.auth = ClientAuth::Body;
        let r = c.request(Grant::RefreshToken {
            refresh_token: "YOUR_REFRESH_TOKEN",
        });
        let b = "grant_type=refresh_token&refresh_token=YOUR_REFRESH_TOKEN&client_id=YOUR_CLIENT_ID&client_secret=YOUR_CLIENT_SECRET";
        assert_eq!(
            check_all(&r),
            format!(
                "POST /oauth/token HTTP/1.1\r\nHost: api.fentu.io\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nAccept: application/json\r\n\r\n{b}",
                b.len()
            )
        );
    }

    #[test]
    fn fentu_revoke_bearer() {
        let c = Client::new(url("https://api.fentu.io/oauth/token"), "id");
        let r = c.request_to(
            url("https://api.fentu.io/oauth/revoke"),
            Grant::RevokeBearer {
                token: "YOUR_TOKEN",
            },
        );
        assert_eq!(r.url().target_parts(), ("", "/oauth/revoke"));
        assert_eq!(
            check_all(&r),
            "POST /oauth/revoke HTTP/1.1\r\nHost: api.fentu.io\r\nContent-Length: 0\r\nAccept: application/json\r\nAuthorization: Bearer YOUR_TOKEN\r\n\r\n"
        );
        let bad = c.request(Grant::RevokeBearer { token: "a\r\nb" });
        assert_eq!(
            bad.write_http(&mut [0u8; 512]),
            input(Field::Token, InputError::ControlCharacter)
        );
    }

    #[test]
    fn field_nation_json_body() {
        let mut c = Client::new(
            url("https://api-sandbox.fndev.net/authentication/api/oauth/token"),
            "YOUR_CLIENT_ID",
        );
        c.client_secret = Some("YOUR_CLIENT_SECRET");
        c.auth = ClientAuth::Body;
        c.format = BodyFormat::Json;
        c.scope = Some("api");
        let r = c.request(Grant::ClientCredentials);
        let want = r#"{"grant_type":"client_credentials","client_id":"YOUR_CLIENT_ID","client_secret":"YOUR_CLIENT_SECRET","scope":"api"}"#;
        let s = check_all(&r);
        assert!(s.starts_with("POST /authentication/api/oauth/token HTTP/1.1\r\nHost: api-sandbox.fndev.net\r\nContent-Type: application/json\r\n"));
        assert_eq!(body(&r), want);
        // The same body as serde_json sees it.
        let v: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
        assert_eq!(v["scope"], "api");
    }

    #[test]
    fn autotask_form_body() {
        let mut c = Client::new(
            url("https://webservices.autotask.net/ATServicesRest/oauth/token"),
            "YOUR_CLIENT_ID",
        );
        c.client_secret = Some("YOUR_CLIENT_SECRET");
        c.auth = ClientAuth::Body;
        let r = c.request(Grant::ClientCredentials);
        let s = check_all(&r);
        assert!(s.starts_with(
            "POST /ATServicesRest/oauth/token HTTP/1.1\r\nHost: webservices.autotask.net\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ));
        assert_eq!(
            body(&r),
            "grant_type=client_credentials&client_id=YOUR_CLIENT_ID&client_secret=YOUR_CLIENT_SECRET"
        );
        // Joined from a zone base URL, the request is the same.
        let mut c2 = c;
        c2.endpoint = url("https://webservices.autotask.net/ATServicesRest")
            .join("/oauth/token")
            .unwrap();
        assert_eq!(http(&c2.request(Grant::ClientCredentials)), s);
    }

    #[test]
    fn patchworks_login() {
        let mut c = Client::new(url("https://app.wearepatchworks.com/fabric/api/login"), "");
        c.format = BodyFormat::Json;
        let login = Grant::Login {
            username: "me@patchworks.com",
            password: "a1b2c3d4e5f6",
        };
        let r = c.request(login);
        let b = r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#;
        assert_eq!(
            check_all(&r),
            format!(
                "POST /fabric/api/login HTTP/1.1\r\nHost: app.wearepatchworks.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAccept: application/json\r\n\r\n{b}",
                b.len()
            )
        );
        // Client authentication settings are ignored by the login.
        assert_eq!(r.grant(), login);
        c.auth = basic_or_body(true);
        assert_eq!(body(&c.request(login)), b);
    }

    #[cfg(feature = "basic-auth")]
    fn rfc_client(endpoint: &str) -> Client<'_> {
        let mut c = Client::new(url(endpoint), "s6BhdRkqt3");
        c.client_secret = Some("gX1fBat3bV");
        c.auth = ClientAuth::Basic;
        c
    }

    #[test]
    #[cfg(feature = "basic-auth")]
    fn rfc6749_client_credentials_basic() {
        let c = rfc_client("https://server.example.com/token");
        let r = c.request(Grant::ClientCredentials);
        assert_eq!(
            check_all(&r),
            "POST /token HTTP/1.1\r\nHost: server.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\nAccept: application/json\r\nAuthorization: Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW\r\n\r\ngrant_type=client_credentials"
        );
    }

    #[test]
    #[cfg(feature = "basic-auth")]
    fn rfc6749_refresh() {
        let c = rfc_client("https://server.example.com/token");
        let r = c.request(Grant::RefreshToken {
            refresh_token: "tGzv3JOkF0XG5Qx2TlKWIA",
        });
        check_all(&r);
        assert_eq!(
            body(&r),
            "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA"
        );
        assert!(http(&r).contains("\r\nAuthorization: Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW\r\n"));
    }

    #[test]
    #[cfg(feature = "basic-auth")]
    fn rfc6749_authorization_code_with_pkce() {
        let c = rfc_client("https://server.example.com/token");
        let r = c.request(Grant::AuthorizationCode {
            code: "SplxlOBeZQQYbYS6WxSbIA",
            redirect_uri: Some("https://client.example.com/cb"),
            code_verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        });
        check_all(&r);
        assert_eq!(
            body(&r),
            "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn password_grant() {
        let mut c = Client::new(url("https://h.example/token"), "cid");
        c.scope = Some("a b");
        let r = c.request(Grant::Password {
            username: "johndoe",
            password: "A3ddj3w",
        });
        check_all(&r);
        assert_eq!(
            body(&r),
            "grant_type=password&username=johndoe&password=A3ddj3w&client_id=cid&scope=a+b"
        );
    }

    #[test]
    #[cfg(feature = "basic-auth")]
    fn rfc7009_revocation() {
        let c = rfc_client("https://server.example.com/token");
        let r = c.request_to(
            url("https://server.example.com/revoke"),
            Grant::Revoke {
                token: "45ghiukldjahdnhzdauz",
                hint: Some(TokenTypeHint::RefreshToken),
            },
        );
        let s = check_all(&r);
        assert!(s.starts_with("POST /revoke HTTP/1.1\r\nHost: server.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
        assert!(s.contains("\r\nAuthorization: Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW\r\n"));
        assert_eq!(
            body(&r),
            "token=45ghiukldjahdnhzdauz&token_type_hint=refresh_token"
        );
        // Public client: client_id in the body.
        let c = Client::new(url("https://server.example.com/revoke"), "pub");
        let r = c.request(Grant::Revoke {
            token: "t",
            hint: None,
        });
        assert_eq!(body(&r), "token=t&client_id=pub");
    }

    #[test]
    #[cfg(feature = "device-flow")]
    fn rfc8628_device_flow() {
        let mut c = Client::new(url("https://server.example.com/token"), "1406020730");
        c.scope = Some("example_scope");
        let r = c.request_to(
            url("https://server.example.com/device_authorization"),
            Grant::DeviceAuthorization,
        );
        let s = check_all(&r);
        assert!(s.starts_with("POST /device_authorization HTTP/1.1\r\nHost: server.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
        assert_eq!(body(&r), "client_id=1406020730&scope=example_scope");
        let r = c.request(Grant::DeviceCode {
            device_code: "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
        });
        check_all(&r);
        assert_eq!(
            body(&r),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS&client_id=1406020730"
        );
        // JSON: the grant type is not encoded.
        c.format = BodyFormat::Json;
        assert_eq!(
            body(&c.request(Grant::DeviceCode { device_code: "d" })),
            r#"{"grant_type":"urn:ietf:params:oauth:grant-type:device_code","device_code":"d","client_id":"1406020730"}"#
        );
    }

    #[test]
    fn scope_resource_audience_and_extras() {
        let mut c = Client::new(url("https://h.example:8443/t"), "id");
        c.client_secret = Some("sec");
        c.auth = ClientAuth::Body;
        c.scope = Some("read:work-orders write:work-orders");
        c.resource = Some("https://api.example.com/");
        c.audience = Some("aud");
        let extra = [("X-Trace", "abc 1"), ("X-Device", "unit-7")];
        c.extra_headers = &extra;
        c.user_agent = Some("fieldauth/0.1");
        let r = c.request(Grant::ClientCredentials);
        let s = check_all(&r);
        assert!(s.starts_with("POST /t HTTP/1.1\r\nHost: h.example:8443\r\n"));
        assert!(s.contains("Accept: application/json\r\nX-Trace: abc 1\r\nX-Device: unit-7\r\nUser-Agent: fieldauth/0.1\r\n\r\n"));
        assert_eq!(
            body(&r),
            "grant_type=client_credentials&client_id=id&client_secret=sec&scope=read%3Awork-orders+write%3Awork-orders&resource=https%3A%2F%2Fapi.example.com%2F&audience=aud"
        );
        c.format = BodyFormat::Json;
        assert_eq!(
            body(&c.request(Grant::ClientCredentials)),
            r#"{"grant_type":"client_credentials","client_id":"id","client_secret":"sec","scope":"read:work-orders write:work-orders","resource":"https://api.example.com/","audience":"aud"}"#
        );
        // Not sent with the device-code poll or the authorization code.
        #[cfg(feature = "device-flow")]
        assert!(!body(&c.request(Grant::DeviceCode { device_code: "d" })).contains("scope"));
        // Exactly the maximum number of extra headers works.
        let many = [("X-A", "1"); MAX_EXTRA_HEADERS];
        c.extra_headers = &many;
        check_all(&c.request(Grant::ClientCredentials));
        let too_many = [("X-A", "1"); MAX_EXTRA_HEADERS + 1];
        c.extra_headers = &too_many;
        assert_eq!(
            c.request(Grant::ClientCredentials)
                .write_http(&mut [0u8; 2048]),
            input(Field::HeaderName, InputError::TooLong)
        );
    }

    #[test]
    #[cfg(feature = "basic-auth")]
    fn basic_encodes_special_characters() {
        use base64::Engine;
        let cases = [
            ("s6BhdRkqt3", "gX1fBat3bV", "s6BhdRkqt3:gX1fBat3bV"),
            (
                "id:with:colons",
                "p+a%s:s",
                "id%3Awith%3Acolons:p%2Ba%25s%3As",
            ),
            ("a b", "é ü/=", "a+b:%C3%A9+%C3%BC%2F%3D"),
            ("x", "~*-._", "x:%7E*-._"),
        ];
        for (id, secret, encoded) in cases {
            let mut c = Client::new(url("https://h.example/t"), id);
            c.client_secret = Some(secret);
            c.auth = ClientAuth::Basic;
            let r = c.request(Grant::ClientCredentials);
            let mut buf = [0u8; 1024];
            let parts = r.write_parts(&mut buf).unwrap();
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(encoded)
            );
            assert_eq!(parts.header("Authorization"), Some(want.as_str()));
        }
    }

    /// A client with every configurable value set, Body auth.
    fn full_client<'a>(extra: &'a [(&'a str, &'a str)]) -> Client<'a> {
        let mut c = Client::new(url("https://h.example/t"), "id");
        c.client_secret = Some("sec");
        c.auth = ClientAuth::Body;
        c.scope = Some("s");
        c.resource = Some("r");
        c.audience = Some("a");
        c.extra_headers = extra;
        c.user_agent = Some("ua");
        c
    }

    const HOSTILE: [(&str, InputError); 6] = [
        ("a\rb", InputError::ControlCharacter),
        ("a\nb", InputError::ControlCharacter),
        ("a\r\nX-Evil: 1", InputError::ControlCharacter),
        ("a\0b", InputError::ControlCharacter),
        ("a\x7fb", InputError::ControlCharacter),
        ("", InputError::Empty),
    ];

    fn refuses(r: &Request<'_>, field: Field, kind: InputError) {
        let mut buf = [0x55u8; 1024];
        assert_eq!(r.write_http(&mut buf), input(field, kind));
        // (A slice comparison: `iter().all` was most of a test's time under
        // Miri, tests/miri.sh.)
        assert!(buf == [0x55u8; 1024], "buffer written");
        assert_eq!(
            r.write_parts(&mut buf).map(|_| ()),
            Err(Error::input(field, kind))
        );
    }

    #[test]
    fn hostile_configuration_is_refused() {
        let extra = [("X-A", "1")];
        for (i, (bad, kind)) in HOSTILE.into_iter().enumerate() {
            for (k, &auth) in secret_auths().iter().enumerate() {
                // Under Miri (tests/miri.sh) every other hostile value, with
                // one client authentication, taking turns.
                if cfg!(miri) && (i % 2 == 1 || (i / 2 + k) % secret_auths().len() != 0) {
                    continue;
                }
                let mut c = full_client(&extra);
                c.auth = auth;
                c.client_id = bad;
                refuses(&c.request(Grant::ClientCredentials), Field::ClientId, kind);
                let mut c = full_client(&extra);
                c.auth = auth;
                c.client_secret = Some(bad);
                refuses(
                    &c.request(Grant::ClientCredentials),
                    Field::ClientSecret,
                    kind,
                );
            }
            let mut c = full_client(&extra);
            c.auth = ClientAuth::None;
            c.client_id = bad;
            refuses(&c.request(Grant::ClientCredentials), Field::ClientId, kind);
            let mut c = full_client(&extra);
            c.scope = Some(bad);
            refuses(&c.request(Grant::ClientCredentials), Field::Scope, kind);
            let mut c = full_client(&extra);
            c.resource = Some(bad);
            refuses(&c.request(Grant::ClientCredentials), Field::Resource, kind);
            let mut c = full_client(&extra);
            c.audience = Some(bad);
            refuses(&c.request(Grant::ClientCredentials), Field::Audience, kind);
            let mut c = full_client(&extra);
            c.user_agent = Some(bad);
            refuses(
                &c.request(Grant::ClientCredentials),
                Field::HeaderValue,
                kind,
            );
            let bad_value = [("X-A", bad)];
            let c = full_client(&bad_value);
            refuses(
                &c.request(Grant::ClientCredentials),
                Field::HeaderValue,
                kind,
            );
            let bad_name = [(bad, "v")];
            let c = full_client(&bad_name);
            refuses(
                &c.request(Grant::ClientCredentials),
                Field::HeaderName,
                kind,
            );

            let c = full_client(&extra);
            for (grant, field) in [
                (
                    Grant::Password {
                        username: bad,
                        password: "p",
                    },
                    Field::Username,
                ),
                (
                    Grant::Password {
                        username: "u",
                        password: bad,
                    },
                    Field::Password,
                ),
                (
                    Grant::Login {
                        username: bad,
                        password: "p",
                    },
                    Field::Username,
                ),
                (
                    Grant::Login {
                        username: "u",
                        password: bad,
                    },
                    Field::Password,
                ),
                (
                    Grant::RefreshToken { refresh_token: bad },
                    Field::RefreshToken,
                ),
                (
                    Grant::AuthorizationCode {
                        code: bad,
                        redirect_uri: None,
                        code_verifier: None,
                    },
                    Field::Code,
                ),
                (
                    Grant::AuthorizationCode {
                        code: "c",
                        redirect_uri: Some(bad),
                        code_verifier: None,
                    },
                    Field::RedirectUri,
                ),
                (
                    Grant::AuthorizationCode {
                        code: "c",
                        redirect_uri: None,
                        code_verifier: Some(bad),
                    },
                    Field::CodeVerifier,
                ),
                #[cfg(feature = "device-flow")]
                (Grant::DeviceCode { device_code: bad }, Field::DeviceCode),
                (
                    Grant::Revoke {
                        token: bad,
                        hint: None,
                    },
                    Field::Token,
                ),
                (Grant::RevokeBearer { token: bad }, Field::Token),
            ] {
                refuses(&c.request(grant), field, kind);
            }
        }
    }

    #[test]
    fn header_names_are_checked() {
        for (name, kind) in [
            ("X Api", InputError::InvalidCharacter),
            ("X:Api", InputError::InvalidCharacter),
            ("Host", InputError::Reserved),
            ("content-length", InputError::Reserved),
            ("Transfer-Encoding", InputError::Reserved),
            ("CONTENT-TYPE", InputError::Reserved),
            ("Authorization", InputError::Reserved),
        ] {
            let extra = [(name, "v")];
            let c = full_client(&extra);
            refuses(
                &c.request(Grant::ClientCredentials),
                Field::HeaderName,
                kind,
            );
        }
        for value in [" v", "v\t"] {
            let extra = [("X-A", value)];
            let c = full_client(&extra);
            refuses(
                &c.request(Grant::ClientCredentials),
                Field::HeaderValue,
                InputError::InvalidCharacter,
            );
        }
    }

    #[test]
    fn missing_secret() {
        for &auth in secret_auths() {
            let mut c = Client::new(url("https://h.example/t"), "id");
            c.auth = auth;
            refuses(
                &c.request(Grant::ClientCredentials),
                Field::ClientSecret,
                InputError::Missing,
            );
            // The login and bearer revocation need no client.
            c.format = BodyFormat::Json;
            assert!(c
                .request(Grant::Login {
                    username: "u",
                    password: "p"
                })
                .write_http(&mut [0u8; 512])
                .is_ok());
        }
        // A public client ignores a configured secret.
        let mut c = Client::new(url("https://h.example/t"), "id");
        c.client_secret = Some("never-sent");
        assert!(!http(&c.request(Grant::ClientCredentials)).contains("never-sent"));
    }

    #[test]
    fn transport_security() {
        let mut c = Client::new(url("http://auth.example.com/token"), "id");
        refuses(
            &c.request(Grant::ClientCredentials),
            Field::Url,
            InputError::InsecureScheme,
        );
        c.allow_insecure = true;
        assert!(http(&c.request(Grant::ClientCredentials))
            .starts_with("POST /token HTTP/1.1\r\nHost: auth.example.com\r\n"));
        for loopback in [
            "http://localhost:8080/token",
            "http://127.0.0.1/token",
            "http://[::1]:9/token",
        ] {
            let c = Client::new(url(loopback), "id");
            check_all(&c.request(Grant::ClientCredentials));
        }
        // The endpoint of request_to is checked as well.
        let c = Client::new(url("https://auth.example.com/token"), "id");
        refuses(
            &c.request_to(
                url("http://auth.example.com/revoke"),
                Grant::Revoke {
                    token: "t",
                    hint: None,
                },
            ),
            Field::Url,
            InputError::InsecureScheme,
        );
    }

    #[test]
    fn json_escapes_values() {
        let mut c = Client::new(url("https://h.example/t"), "id\"x");
        c.format = BodyFormat::Json;
        let r = c.request(Grant::Login {
            username: "a\"b\\c",
            password: "pé/\u{2028}",
        });
        let b = body(&r);
        assert_eq!(
            b,
            "{\"username\":\"a\\\"b\\\\c\",\"password\":\"pé/\u{2028}\"}"
        );
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["username"], "a\"b\\c");
        assert_eq!(v["password"], "pé/\u{2028}");
    }

    #[test]
    fn debug_hides_secrets() {
        let extra = [("X-Api-Key", "HEADERSECRET")];
        let mut c = full_client(&extra);
        c.client_secret = Some("CLIENTSECRET");
        let grants = [
            Grant::Password {
                username: "USERNAME",
                password: "PASSWORD",
            },
            Grant::Login {
                username: "USERNAME",
                password: "PASSWORD",
            },
            Grant::RefreshToken {
                refresh_token: "REFRESHTOKEN",
            },
            Grant::AuthorizationCode {
                code: "AUTHCODE",
                redirect_uri: None,
                code_verifier: Some("VERIFIER"),
            },
            #[cfg(feature = "device-flow")]
            Grant::DeviceCode {
                device_code: "DEVICECODE",
            },
            Grant::Revoke {
                token: "REVOKETOKEN",
                hint: None,
            },
            Grant::RevokeBearer {
                token: "REVOKETOKEN",
            },
        ];
        let secrets = [
            "CLIENTSECRET",
            "HEADERSECRET",
            "USERNAME",
            "PASSWORD",
            "REFRESHTOKEN",
            "AUTHCODE",
            "VERIFIER",
            "DEVICECODE",
            "REVOKETOKEN",
        ];
        for (i, g) in grants.into_iter().enumerate() {
            for (k, &auth) in secret_auths().iter().enumerate() {
                // Under Miri (tests/miri.sh) one client authentication per
                // grant, taking turns.
                if cfg!(miri) && (i + k) % secret_auths().len() != 0 {
                    continue;
                }
                c.auth = auth;
                let r = c.request(g);
                let mut buf = [0u8; 1024];
                let parts = r.write_parts(&mut buf).unwrap();
                let text = format!("{c:?} {g:?} {r:?} {parts:?}");
                for s in secrets {
                    assert!(!text.contains(s), "{s} in {text}");
                }
                assert!(text.contains("<redacted>"));
                // Errors carry no input either.
                let e = Client {
                    client_secret: Some("CLIENTSECRET\n"),
                    ..c
                }
                .request(g)
                .write_http(&mut buf)
                .err();
                assert!(!format!("{e:?}").contains("CLIENTSECRET"));
            }
        }
    }

    #[test]
    #[cfg(feature = "basic-auth")]
    fn parts_layout() {
        let c = rfc_client("https://server.example.com/token");
        let r = c.request(Grant::ClientCredentials);
        let mut buf = [0u8; 512];
        let p = r.write_parts(&mut buf).unwrap();
        assert_eq!(p.method, "POST");
        assert_eq!(p.target, "/token");
        let names: Vec<&str> = p.headers().map(|h| h.0).collect();
        assert_eq!(
            names,
            [
                "Host",
                "Content-Type",
                "Content-Length",
                "Accept",
                "Authorization"
            ]
        );
        assert_eq!(p.header("host"), Some("server.example.com"));
        assert_eq!(p.header("X-None"), None);
        assert_eq!(p.body, b"grant_type=client_credentials");
    }

    /// Decodes `application/x-www-form-urlencoded` text (test reference).
    fn form_decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }

    fn form_pairs(body: &str) -> Vec<(String, String)> {
        body.split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (form_decode(k), form_decode(v))
            })
            .collect()
    }

    proptest::proptest! {
        // Under Miri (tests/miri.sh) one case (most of its time there is
        // proptest compiling the four `\PC` patterns, once per case), and
        // proptest's cheaper XorShift generator (ChaCha20 is emulated SSE2).
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: if cfg!(miri) { 1 } else { 256 },
            rng_algorithm: if cfg!(miri) {
                proptest::test_runner::RngAlgorithm::XorShift
            } else {
                proptest::prelude::ProptestConfig::default().rng_algorithm
            },
            ..proptest::prelude::ProptestConfig::default()
        })]
        /// Any values either are refused with a typed input error, or give a
        /// request whose body and Basic header decode back to the values,
        /// with parts and http output identical.
        #[test]
        fn round_trips(
            id in "\\PC{0,20}",
            secret in "[ -~\\u{80}-\\u{10ffff}\\r\\n\\x00]{0,20}",
            user in "\\PC{0,20}",
            password in "\\PC{0,20}",
            json in proptest::bool::ANY,
            basic in proptest::bool::ANY,
        ) {
            let mut c = Client::new(url("https://h.example/t"), &id);
            c.client_secret = Some(&secret);
            let basic = basic && cfg!(feature = "basic-auth");
            c.auth = basic_or_body(basic);
            c.format = if json { BodyFormat::Json } else { BodyFormat::Form };
            let r = c.request(Grant::Password { username: &user, password: &password });
            let mut buf = [0u8; 2048];
            let parts = match r.write_parts(&mut buf) {
                Ok(p) => p,
                Err(Error::InvalidInput { .. }) => {
                    let all = [&id, &secret, &user, &password];
                    proptest::prop_assert!(all.iter().any(|v| v.is_empty()
                        || v.bytes().any(|b| b < 0x20 || b == 0x7f)));
                    return Ok(());
                }
                Err(e) => panic!("{e:?}"),
            };
            let mut buf2 = [0u8; 2048];
            let n = r.write_http(&mut buf2).unwrap();
            proptest::prop_assert_eq!(parts.raw, &buf2[..n]);
            let body = std::str::from_utf8(parts.body).unwrap();
            let mut want = std::vec![
                ("grant_type", "password"),
                ("username", user.as_str()),
                ("password", password.as_str()),
            ];
            if !basic {
                want.push(("client_id", id.as_str()));
                want.push(("client_secret", secret.as_str()));
            }
            if json {
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                let obj = v.as_object().unwrap();
                proptest::prop_assert_eq!(obj.len(), want.len());
                for (k, val) in &want {
                    proptest::prop_assert_eq!(obj[*k].as_str().unwrap(), *val);
                }
            } else {
                let got = form_pairs(body);
                let got: Vec<(&str, &str)> =
                    got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                proptest::prop_assert_eq!(got, want);
            }
            if basic {
                use base64::Engine;
                let h = parts.header("Authorization").unwrap();
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(h.strip_prefix("Basic ").unwrap())
                    .unwrap();
                let raw = String::from_utf8(raw).unwrap();
                let (i, s) = raw.split_once(':').unwrap();
                proptest::prop_assert_eq!(form_decode(i), id.clone());
                proptest::prop_assert_eq!(form_decode(s), secret.clone());
            }
        }
    }
}
