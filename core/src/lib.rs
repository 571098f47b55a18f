//! An allocation-free, panic-free, `#![no_std]` OAuth 2.0 and API-key client
//! for field-service-management APIs, that leaves the I/O to you.
//!
//! fieldauth does the whole client side of API authentication: it writes
//! token requests into your buffers, parses the responses as they arrive in
//! chunks of any size, keeps a credential usable for days (proactive refresh,
//! 401 recovery, backoff, client-side budgets and the server's rate limits)
//! and applies it to your API requests. It is *sans-IO*: it never opens a
//! socket, reads a clock or draws a random number. You pass it bytes, the
//! time and a seed, and it tells you what to send and what it learned.
//! Nothing is allocated, and every problem is a typed [`Error`], never a
//! panic: it runs on a Cortex-M handheld with a 128-byte receive buffer as
//! well as on a server. Four providers define its behaviour as presets —
//! Fentu FSM, Field Nation, Autotask and Patchworks — and
//! [`preset::custom`] starts a profile for any RFC 6749 server.
//!
//! | Layer | Use it to |
//! | --- | --- |
//! | [`session::Session`] | keep one credential usable: [`poll`](session::Session::poll) says what to do next ([`Action`](session::Action)); you do the I/O and report back |
//! | [`driver`] (features `embedded-io`, `embedded-io-async`, `std`) | run a session's I/O over a stream you connected (TLS and all): a whole token exchange, an authorized `GET` |
//! | [`preset`] | each provider's documented behaviour as `const` data ([`Profile`](preset::Profile)) |
//! | [`request`], [`http`], [`body`], [`apply`], [`pkce`], [`url`] | the wire-format layer, without a session: write one token request, parse one response, apply one credential |
//! | [`shared`] | share one credential and its rate budgets among many workers: the [`Store`](shared::Store) contract, and a file store (feature `std`) |
//!
//! # Example: client credentials with the blocking driver
//!
//! With the `std` feature (`fieldauth = { version = "0.1", features =
//! ["std"] }`), over any `std::io` stream. Here it is a plain TCP
//! connection to the provider emulator this crate is tested against
//! (`tests/emulator` in the repository); in production, a TLS stream to the
//! provider.
//!
#![cfg_attr(feature = "std", doc = "```")]
#![cfg_attr(not(feature = "std"), doc = "```ignore")]
//! use std::net::TcpStream;
//! use std::time::Instant;
//!
//! use fieldauth::driver::{self, ApiOutcome, FromStd};
//! use fieldauth::preset;
//! use fieldauth::session::{Action, ApiVerdict, Config, Event, Session};
//! use fieldauth::url::Url;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The emulator stands in for Autotask ("https://webservices.autotask.net").
//! let emulator = fieldauth_emulator::spawn(Default::default())?;
//! let base_url = emulator.base_url(fieldauth_emulator::Provider::Autotask);
//!
//! let config = Config {
//!     base_url: &base_url,
//!     client_id: "demo-client",
//!     client_secret: "demo-secret",
//!     ..Config::default()
//! };
//! // The session copies the configuration; the seed drives its retry jitter.
//! let seed = 0x5eed; // from your RNG
//! let mut session: Session = Session::new(&preset::AUTOTASK, &config, seed)?;
//! let clock = Instant::now();
//! let now = || clock.elapsed().as_millis() as u64; // monotonic milliseconds
//!
//! let mut stream = FromStd::new(TcpStream::connect(emulator.addr())?);
//! let mut buf = [0u8; 512]; // carries requests out and responses in
//!
//! // The session wants a token: one exchange on the stream.
//! if let Action::SendTokenRequest(_) = session.poll(now()) {
//!     let exchanged = driver::exchange_token(&mut session, now(), &mut stream, &mut buf)?;
//!     assert!(matches!(exchanged.event, Event::TokenIssued { lifetime_s: 3600, .. }));
//!     // Had the server said `Connection: close`, `exchanged.reusable` would be
//!     // false: connect again before the next request.
//! }
//!
//! // An authorized GET on the same connection, and its body.
//! let url = Url::parse(config.base_url)?.join("/ATServicesRest/V1.0/Companies")?;
//! match driver::api_get(&mut session, now(), &mut stream, url, &mut buf)? {
//!     ApiOutcome::Response(response) => {
//!         let mut body = Vec::new();
//!         driver::read_body(&mut stream, &response, &mut buf, |piece| {
//!             body.extend_from_slice(piece)
//!         })?;
//!         match response.verdict {
//!             ApiVerdict::Ok => println!("HTTP {}: {} bytes", response.head.status, body.len()),
//!             ApiVerdict::RetryWithNewToken => { /* poll, exchange, send it again once */ }
//!             ApiVerdict::RateLimited { until } => println!("send it again at {until}"),
//!             other => println!("not retried: {other:?}"),
//!         }
//!     }
//!     ApiOutcome::Wait { until } => println!("rate limited until {until}: nothing sent"),
//!     ApiOutcome::NoCredential => println!("no token: poll the session"),
//! }
//! # assert!(session.status().usable);
//! # Ok(())
//! # }
//! ```
//!
//! A long-running client loops: `poll(now)`, then per [`Action`](session::Action)
//! exchange a token, send API requests while it is `Ready`, or sleep until
//! the time it names. `cargo run -p fieldauth-demo` in the repository runs
//! every preset through a whole lifecycle this way.
//!
//! # Example: your own transport (sans-IO)
//!
//! Without a driver, the same session works with any I/O — a modem's AT
//! commands, an RTOS socket, a host's HTTP client. You move the bytes; the
//! session writes the request and reads the response you feed it, here a
//! canned one arriving in 16-byte pieces.
//!
//! ```
//! use fieldauth::http::HeadParser;
//! use fieldauth::preset;
//! use fieldauth::session::{Action, ApiVerdict, Authorization, Config, Event, Session, TokenBody};
//!
//! # fn main() -> Result<(), fieldauth::Error> {
//! let config = Config {
//!     base_url: "https://webservices.autotask.net",
//!     client_id: "YOUR_CLIENT_ID",
//!     client_secret: "YOUR_CLIENT_SECRET",
//!     ..Config::default()
//! };
//! let mut session: Session = Session::new(&preset::AUTOTASK, &config, 0x5eed)?;
//! let now = 1_000; // your monotonic clock, in milliseconds
//!
//! // 1. The session wants a token: it writes the request, you send it.
//! assert_eq!(session.poll(now), Action::SendTokenRequest(fieldauth::session::RequestKind::Fetch));
//! let mut out = [0u8; 512];
//! let n = session.write_token_request(now, &mut out)?;
//! assert!(out[..n].starts_with(b"POST /ATServicesRest/oauth/token HTTP/1.1\r\n"));
//! // ... write out[..n] to the connection ...
//!
//! // 2. Feed the response as it arrives, in pieces of any size.
//! let response: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
//!     Content-Length: 62\r\n\r\n\
//!     {\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
//! let mut head: HeadParser = HeadParser::new();
//! let mut body = TokenBody::new(); // the response's parsing state, yours during the exchange
//! let mut in_body = false;
//! let mut event = None;
//! for mut piece in response.chunks(16) { // what each read returned
//!     if !in_body {
//!         let Some(used) = head.feed(piece)? else { continue }; // the head is not complete yet
//!         let parsed = head.head().ok_or(fieldauth::Error::WrongState)?;
//!         session.on_token_head(now, parsed, &mut body)?;
//!         piece = &piece[used..]; // the rest of the piece is body
//!         in_body = true;
//!     }
//!     event = session.on_token_body(now, &mut body, piece)?.event;
//! }
//! assert_eq!(
//!     event,
//!     Some(Event::TokenIssued {
//!         kind: fieldauth::session::RequestKind::Fetch,
//!         lifetime_s: 3600,
//!         refreshable: false
//!     })
//! );
//!
//! // 3. Each API request: ask for the credential, apply it, report the answer.
//! let Authorization::Send(credential) = session.authorize(now) else {
//!     unreachable!("a fresh token is usable and the budget is not spent");
//! };
//! let n = credential.write_header_line(&mut out)?;
//! assert_eq!(&out[..n], b"Authorization: Bearer tok\r\n");
//! // ... send the API request with that header line, read its response head ...
//! let mut api_head: HeadParser = HeadParser::new();
//! api_head.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")?;
//! let api_response = api_head.head().ok_or(fieldauth::Error::WrongState)?;
//! let verdict = session.on_api_response(now, api_response, &[]);
//!
//! // The token was rejected: the session dropped it and fetches a new one as
//! // soon as the token endpoint's budget allows (Autotask: 10 a minute).
//! assert_eq!(verdict, ApiVerdict::RetryWithNewToken);
//! let Action::Wait { until } = session.poll(now) else { unreachable!() };
//! assert!(matches!(session.poll(until), Action::SendTokenRequest(_)));
//! # Ok(())
//! # }
//! ```
//!
//! Hosts with their own HTTP client use
//! [`write_token_request_parts`](session::Session::write_token_request_parts)
//! (method, target, headers and body) and
//! [`token_request_url`](session::Session::token_request_url); devices whose
//! buffer is smaller than the request use
//! [`write_token_request_window`](session::Session::write_token_request_window).
//! Report a failed connection with
//! [`on_transport_error`](session::Session::on_transport_error) and a
//! close-delimited body's end with
//! [`on_token_eof`](session::Session::on_token_eof).
//!
//! # Flows
//!
//! | Flow | With a [`Session`](session::Session) | Wire-format layer |
//! | --- | --- | --- |
//! | Client credentials | [`preset::AUTOTASK`], [`preset::FIELD_NATION`], [`preset::custom`] ([`Mode::ClientCredentials`](preset::Mode::ClientCredentials)) | [`Grant::ClientCredentials`](request::Grant::ClientCredentials) |
//! | Password | [`Mode::Password`](preset::Mode::Password) with [`Config::username`](session::Config::username) / [`password`](session::Config::password) | [`Grant::Password`](request::Grant::Password) |
//! | Provider login | [`preset::PATCHWORKS_LOGIN`] ([`Mode::Login`](preset::Mode::Login)) | [`Grant::Login`](request::Grant::Login) |
//! | Refresh | automatic, before expiry and after a 401 ([`RequestKind::Refresh`](session::RequestKind::Refresh)) | [`Grant::RefreshToken`](request::Grant::RefreshToken) |
//! | Authorization code + PKCE | [`preset::FENTU_OAUTH`]: [`Action::NeedAuthorizationCode`](session::Action::NeedAuthorizationCode), then [`authorization_url`](session::Session::authorization_url) and [`set_authorization_code`](session::Session::set_authorization_code) | [`pkce::AuthorizationRequest`], [`pkce`]'s `CodeVerifier` (feature `pkce`), [`Grant::AuthorizationCode`](request::Grant::AuthorizationCode) |
//! | Device authorization (RFC 8628, feature `device-flow`) | `Mode::DeviceCode`: [`Event::UserCode`](session::Event::UserCode), then show [`device_display`](session::Session::device_display) | `Grant::DeviceAuthorization`, `Grant::DeviceCode` ([`request::Grant`]) |
//! | Revocation (RFC 7009) | [`Session::revoke`](session::Session::revoke) | [`Grant::Revoke`](request::Grant::Revoke), [`Grant::RevokeBearer`](request::Grant::RevokeBearer) |
//! | API keys | [`preset::FENTU_API_KEY`], [`preset::PATCHWORKS_API_KEY`] ([`Mode::ApiKey`](preset::Mode::ApiKey)) | [`apply::ApiCredential`] |
//! | Persistence across reboots | [`snapshot`](session::Session::snapshot) / [`restore`](session::Session::restore) | |
//!
//! Parsing without a session: [`body::parse_body`] (a whole body) or
//! [`body::BodyParser`] (streaming), after an [`http::HeadParser`]; the
//! network-free tour is `cargo run -p fieldauth --example quickstart`.
//!
//! # Cargo features
//! All are on by default. A device that only talks to the provider presets
//! (Fentu, Field Nation, Autotask, Patchworks) can build with
//! `default-features = false` to save flash; each line gives what the feature
//! adds to the firmware image of `tests/firmware` (Cortex-M4, opt-level z).
//!
//! | Feature | Adds | Flash |
//! | --- | --- | --- |
//! | `device-flow` | RFC 8628: `Grant::DeviceCode`, `Grant::DeviceAuthorization`, `Expect::DeviceAuthorization` and the device members of [`body::STANDARD_KEYS`] | ~0.6 KB |
//! | `ietf-ratelimit` | IETF `RateLimit` / `RateLimit-Policy` / `RateLimit-*` response fields (`ResponseHead::rate_limit`) | ~0.8 KB |
//! | `obsolete-dates` | the RFC 850 and asctime HTTP-date formats | ~0.3 KB |
//! | `basic-auth` | `ClientAuth::Basic` (client_secret_basic) | ~0.3 KB |
//! | `pkce` | RFC 7636: `CodeVerifier`, `Challenge`, `AuthorizationRequest::pkce` (with the crate's own compact SHA-256) | ~1.5 KB |
//! | `extra-params` | extra request parameters (`Config::token_params` / `authorize_params`, `Client::extra_params`, `AuthorizationRequest::extra_params`); without it a non-empty value is refused with [`InputError::Unsupported`] | ~1.1 KB |
//! | `redirect` | the authorization-redirect parser: module `callback` (`callback::parse`, `Callback`) and `Session::on_authorization_callback`; without it a device passes `code` and `state` to [`set_authorization_code`](session::Session::set_authorization_code) (every build), and the C ABI's `fieldauth_session_on_authorization_callback` answers `FIELDAUTH_ERR_INPUT_UNSUPPORTED` | ~2.1 KB |
//!
//! Off by default, for hosts: `embedded-io` and `embedded-io-async` (the
//! transport drivers in [`driver`]), `std` (adapters from `std::io` streams
//! to them, [`shared`]'s `FileStore`, and `simd-utf8` with run-time CPU
//! detection) and `simd-utf8` (the one UTF-8 validation of a parsed body's
//! text runs on simdutf8's SSE4.2 / AVX2 validator; without `std` only if
//! those CPU features are enabled at compile time). Items that need a
//! feature say so in these docs.
//!
//! # Guarantees
//!
//! No heap (but for [`shared`]'s `FileStore`, feature `std`, which reads its
//! file into a `Vec`), no `unsafe` in this crate, no panic paths (the
//! firmware link check proves it), no static RAM. Chunking never changes a
//! result. `Debug` output of tokens, secrets and verifiers shows lengths
//! only, and errors carry no input bytes. Secrets in a
//! [`Session`](session::Session) are wiped by
//! [`clear`](session::Session::clear) and on drop.
//!
#![cfg_attr(not(feature = "embedded-io"), doc = "[`driver`]: #cargo-features")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::arithmetic_side_effects))]

pub mod apply;
pub mod body;
#[cfg(feature = "redirect")]
#[cfg_attr(docsrs, doc(cfg(feature = "redirect")))]
pub mod callback;
#[cfg(feature = "embedded-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-io")))]
pub mod driver;
pub mod error;
pub mod http;
pub(crate) mod json;
mod params;
pub mod pkce;
pub mod preset;
pub mod request;
pub mod session;
pub mod shared;
mod trace;
pub mod url;
pub mod write;

pub use error::{
    Error, Field, HttpError, InputError, JsonError, Member, ResponseError, Result, SnapshotError,
};

/// `bytes` as `&str`, if it is valid UTF-8: `core::str::from_utf8`, or with
/// the `simd-utf8` feature simdutf8's SIMD validator (same answers).
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    #[cfg(feature = "simd-utf8")]
    let s = simdutf8::basic::from_utf8(bytes).ok();
    #[cfg(not(feature = "simd-utf8"))]
    let s = core::str::from_utf8(bytes).ok();
    s
}

/// Largest lifetime (in seconds) accepted from a server: ten years.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

// The Rust blocks of README.md and docs/*.md run as doc tests (blocks in
// other languages are marked as such; C blocks are compiled by
// tests/readme/check_c_snippets.py).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

#[cfg(doctest)]
#[doc = include_str!("../../docs/ARCHITECTURE.md")]
mod architecture {}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    /// Whichever validator is built in (`simd-utf8` or not), it gives
    /// `core::str::from_utf8`'s answer: ASCII of every length around the
    /// SIMD block sizes, with a multi-byte, a broken, an overlong, a
    /// surrogate or a truncated sequence at every position.
    #[test]
    fn utf8_agrees_with_core() {
        let inserts: [&[u8]; 8] = [
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            b"\xff",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\xe2\x82",
            b"\x80",
        ];
        // Under Miri (tests/miri.sh) a sample of the lengths, and of the
        // positions.
        for len in (0..=140usize).step_by(if cfg!(miri) { 35 } else { 1 }) {
            let ascii: Vec<u8> = (0..len).map(|k| b'!' + (k % 90) as u8).collect();
            assert_eq!(super::utf8(&ascii), core::str::from_utf8(&ascii).ok());
            for insert in inserts {
                for at in (0..=len).step_by(if cfg!(miri) { 11 } else { 3 }) {
                    let mut s = ascii.clone();
                    s.splice(at..at, insert.iter().copied());
                    assert_eq!(
                        super::utf8(&s),
                        core::str::from_utf8(&s).ok(),
                        "len {len}, {insert:x?} at {at}"
                    );
                }
            }
        }
    }
}
