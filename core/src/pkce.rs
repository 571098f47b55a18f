//! PKCE (RFC 7636), the `state` parameter, and the authorization URL
//! (RFC 6749 §4.1.1).
//!
//! PKCE ([`CodeVerifier`], [`Challenge`], [`ChallengeMethod`] and
//! [`AuthorizationRequest::pkce`]) needs the `pkce` feature (on by default).
//!
//! The core has no random number generator: the caller supplies random bytes
//! from the platform's CSPRNG (a hardware TRNG on the device).

use core::fmt;

#[cfg(feature = "pkce")]
use zeroize::Zeroize;

use crate::error::{Error, Field, InputError, Result};
use crate::request::write_into;
use crate::url::{query_sep, Url};
#[cfg(feature = "pkce")]
use crate::write::{byte_set, in_set, ByteSet};
use crate::write::{check_param, Alphabet, Base64, Writer};

/// RFC 3986 `unreserved`: the characters of a code verifier.
#[cfg(feature = "pkce")]
const UNRESERVED: ByteSet = byte_set(b"-._~");

/// Base64url-encodes `random` (unpadded) into `out`; returns the length.
fn encode_random(random: &[u8], out: &mut [u8]) -> usize {
    let mut w = Writer::new(out);
    let mut b = Base64::new(Alphabet::UrlSafeNoPad);
    b.push_all(&mut w, random);
    b.finish(&mut w);
    w.len()
}

#[cfg(feature = "pkce")]
/// SHA-256 of a short message (a verifier has at most 128 bytes): the raw
/// compression function over the message and its FIPS 180-4 padding,
/// produced one byte at a time (the `Digest` API's block buffer keeps a
/// panic path).
fn sha256(msg: &[u8]) -> [u8; 32] {
    let len = msg.len();
    let bits = (len as u64).wrapping_mul(8).to_be_bytes();
    // Message, 0x80 and the 8-byte length, rounded up to whole blocks.
    let total = len.saturating_add(72) & !63;
    let mut state: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut block = [0u8; 64];
    for i in 0..total {
        let b = match msg.get(i) {
            Some(&b) => b,
            None if i == len => 0x80,
            // The length in the last 8 bytes, zeros before it.
            None => bits
                .get(i.wrapping_add(8).wrapping_sub(total))
                .copied()
                .unwrap_or(0),
        };
        if let Some(slot) = block.get_mut(i & 63) {
            *slot = b;
        }
        if i & 63 == 63 {
            compress(&mut state, &block);
        }
    }
    let mut out = [0u8; 32];
    for (d, w) in out.chunks_exact_mut(4).zip(state) {
        for (x, y) in d.iter_mut().zip(w.to_be_bytes()) {
            *x = y;
        }
    }
    out
}

/// Checks the length of a random-bytes input.
fn check_random(random: &[u8], min: usize, max: usize) -> Result<()> {
    if random.len() < min {
        return Err(Error::input(Field::Random, InputError::TooShort));
    }
    if random.len() > max {
        return Err(Error::input(Field::Random, InputError::TooLong));
    }
    Ok(())
}

/// The S256 challenge [`AuthorizationRequest::write_with`] takes (none
/// without feature `pkce`).
#[cfg(feature = "pkce")]
pub(crate) type S256 = Challenge;
/// The S256 challenge [`AuthorizationRequest::write_with`] takes (none
/// without feature `pkce`).
#[cfg(not(feature = "pkce"))]
pub(crate) type S256 = core::convert::Infallible;

#[cfg(feature = "pkce")]
/// SHA-256's round constants (FIPS 180-4 §4.2.2).
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

#[cfg(feature = "pkce")]
/// The SHA-256 compression function (FIPS 180-4 §6.2.2), compact: the
/// message schedule rolls in 16 words, one round per loop pass. RustCrypto's
/// `sha2` (its compact software variant) needed a 568-byte stack frame and
/// more flash on a Cortex-M4 (issue #13; the numbers are in
/// docs/ARCHITECTURE.md); this is checked against it in the tests.
fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    let mut w = [0u32; 16];
    for (d, c) in w.iter_mut().zip(block.chunks_exact(4)) {
        let mut b = [0u8; 4];
        for (x, y) in b.iter_mut().zip(c) {
            *x = *y;
        }
        *d = u32::from_be_bytes(b);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for (i, &k) in K.iter().enumerate() {
        let at = |j: usize| w.get(i.wrapping_add(j) & 15).copied().unwrap_or(0);
        let wi = if i < 16 {
            at(0)
        } else {
            // w[i] = σ1(w[i-2]) + w[i-7] + σ0(w[i-15]) + w[i-16], kept in
            // the slot of w[i-16].
            let (w2, w7, w15, w16) = (at(14), at(9), at(1), at(0));
            let s0 = w15.rotate_right(7) ^ w15.rotate_right(18) ^ (w15 >> 3);
            let s1 = w2.rotate_right(17) ^ w2.rotate_right(19) ^ (w2 >> 10);
            let v = w16.wrapping_add(s0).wrapping_add(w7).wrapping_add(s1);
            if let Some(slot) = w.get_mut(i & 15) {
                *slot = v;
            }
            v
        };
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(k)
            .wrapping_add(wi);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// Stored bytes (always ASCII) as a string.
fn ascii(bytes: &[u8], len: u8) -> &str {
    bytes
        .get(..usize::from(len))
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or("")
}

#[cfg(feature = "pkce")]
#[cfg_attr(docsrs, doc(cfg(feature = "pkce")))]
/// A PKCE code verifier: 43 to 128 characters of `[A-Za-z0-9-._~]`
/// (RFC 7636 §4.1).
///
/// Held in a fixed array that is wiped when the value is dropped. Not `Copy`
/// or `Clone`, so it is not duplicated by accident; `Debug` shows only the
/// length.
pub struct CodeVerifier {
    bytes: [u8; 128],
    len: u8,
}

#[cfg(feature = "pkce")]
impl CodeVerifier {
    /// A verifier from 32 to 96 random bytes, base64url-encoded without
    /// padding: 32 bytes (the RFC 7636 recommendation) give 43 characters,
    /// 96 bytes give 128.
    ///
    /// Errors: [`InputError::TooShort`] / [`InputError::TooLong`] with
    /// [`Field::Random`].
    pub fn from_random(random: &[u8]) -> Result<Self> {
        let mut v = Self::EMPTY;
        v.fill(random)?;
        Ok(v)
    }

    /// An empty verifier, for [`CodeVerifier::fill`].
    pub(crate) const EMPTY: Self = CodeVerifier {
        bytes: [0; 128],
        len: 0,
    };

    /// [`CodeVerifier::from_random`] in place (no `Result` of a 129-byte
    /// value to move out of: the session's stack, issue #13).
    pub(crate) fn fill(&mut self, random: &[u8]) -> Result<()> {
        check_random(random, 32, 96)?;
        let n = encode_random(random, &mut self.bytes);
        self.len = u8::try_from(n).unwrap_or(0);
        Ok(())
    }

    /// A verifier from a string the caller generated.
    ///
    /// Errors (with [`Field::CodeVerifier`]): [`InputError::TooShort`] below
    /// 43 characters, [`InputError::TooLong`] above 128,
    /// [`InputError::InvalidCharacter`] for anything outside
    /// `[A-Za-z0-9-._~]`.
    pub fn new(s: &str) -> Result<Self> {
        let e = |kind| Error::input(Field::CodeVerifier, kind);
        if s.len() < 43 {
            return Err(e(InputError::TooShort));
        }
        if s.len() > 128 {
            return Err(e(InputError::TooLong));
        }
        if !s.bytes().all(|b| in_set(&UNRESERVED, b)) {
            return Err(e(InputError::InvalidCharacter));
        }
        let mut v = CodeVerifier {
            bytes: [0; 128],
            len: u8::try_from(s.len()).unwrap_or(0),
        };
        for (d, b) in v.bytes.iter_mut().zip(s.bytes()) {
            *d = b;
        }
        Ok(v)
    }

    /// The verifier (the `code_verifier` of the token request).
    pub fn as_str(&self) -> &str {
        ascii(&self.bytes, self.len)
    }

    /// The S256 challenge: BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2).
    #[inline(never)] // SHA-256's frame of its own (issue #13)
    pub fn challenge(&self) -> Challenge {
        let digest = sha256(self.as_str().as_bytes());
        let mut c = Challenge { bytes: [0; 43] };
        encode_random(&digest, &mut c.bytes);
        c
    }

    /// Writes the challenge for `method` (the verifier itself for `plain`).
    /// Out of line: SHA-256's state gets a frame of its own.
    #[inline(never)]
    fn write_challenge(&self, method: ChallengeMethod, w: &mut Writer<'_>) {
        match method {
            ChallengeMethod::S256 => w.str(self.challenge().as_str()),
            ChallengeMethod::Plain => w.str(self.as_str()),
        }
    }
}

#[cfg(feature = "pkce")]
impl Drop for CodeVerifier {
    fn drop(&mut self) {
        self.bytes.zeroize();
        self.len.zeroize();
    }
}

#[cfg(feature = "pkce")]
impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeVerifier")
            .field("len", &self.len)
            .field("value", &"<redacted>")
            .finish()
    }
}

#[cfg(feature = "pkce")]
#[cfg_attr(docsrs, doc(cfg(feature = "pkce")))]
/// An S256 code challenge: 43 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Challenge {
    bytes: [u8; 43],
}

#[cfg(feature = "pkce")]
impl Challenge {
    /// The challenge text.
    pub fn as_str(&self) -> &str {
        ascii(&self.bytes, 43)
    }
}

#[cfg(feature = "pkce")]
impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Challenge").field(&self.as_str()).finish()
    }
}

#[cfg(feature = "pkce")]
#[cfg_attr(docsrs, doc(cfg(feature = "pkce")))]
/// The `code_challenge_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChallengeMethod {
    /// `S256`: the challenge is the SHA-256 of the verifier. Use this.
    S256,
    /// `plain`: the challenge is the verifier (only for servers that cannot
    /// do S256).
    Plain,
}

#[cfg(feature = "pkce")]
impl ChallengeMethod {
    /// The parameter value: `S256` or `plain`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChallengeMethod::S256 => "S256",
            ChallengeMethod::Plain => "plain",
        }
    }
}

/// An opaque `state` value from 16 to 48 random bytes, base64url-encoded
/// (16 bytes give 22 characters). `Debug` shows only the length.
#[derive(Clone, Copy)]
pub struct State {
    bytes: [u8; 64],
    len: u8,
}

impl State {
    /// A state from 16 to 48 random bytes.
    ///
    /// Errors: [`InputError::TooShort`] / [`InputError::TooLong`] with
    /// [`Field::Random`].
    pub fn from_random(random: &[u8]) -> Result<Self> {
        let mut s = Self::EMPTY;
        s.fill(random)?;
        Ok(s)
    }

    /// An empty state, for [`State::fill`].
    pub(crate) const EMPTY: Self = State {
        bytes: [0; 64],
        len: 0,
    };

    /// [`State::from_random`] in place.
    pub(crate) fn fill(&mut self, random: &[u8]) -> Result<()> {
        check_random(random, 16, 48)?;
        let n = encode_random(random, &mut self.bytes);
        self.len = u8::try_from(n).unwrap_or(0);
        Ok(())
    }

    /// The state text.
    pub fn as_str(&self) -> &str {
        ascii(&self.bytes, self.len)
    }

    /// Whether `received` (the `state` of the redirect) equals this state.
    /// The comparison takes the same time wherever the first difference is.
    pub fn matches(&self, received: &str) -> bool {
        let mine = self.as_str().as_bytes();
        let theirs = received.as_bytes();
        mine.len() == theirs.len()
            && mine
                .iter()
                .zip(theirs)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("len", &self.len)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// An authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3): the URL to open
/// in the user's browser.
///
/// Parameters, form-urlencoded, in this order: `client_id`, `redirect_uri`,
/// `scope`, `response_type=code`, `state`, `code_challenge`,
/// `code_challenge_method`. The endpoint may already carry a query.
#[derive(Clone, Copy, Debug)]
pub struct AuthorizationRequest<'a> {
    /// The authorization endpoint.
    pub endpoint: Url<'a>,
    /// `client_id`.
    pub client_id: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: Option<&'a str>,
    /// Space-separated scopes.
    pub scope: Option<&'a str>,
    /// `state` (e.g. [`State::as_str`]).
    pub state: Option<&'a str>,
    /// PKCE: the verifier (kept for the token request) and the method.
    #[cfg(feature = "pkce")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pkce")))]
    pub pkce: Option<(&'a CodeVerifier, ChallengeMethod)>,
    /// Allow a plain `http` endpoint on a non-loopback host.
    pub allow_insecure: bool,
    /// `resource` (RFC 8707).
    pub resource: Option<&'a str>,
    /// More query parameters, form-urlencoded `name=value&...` (`prompt`,
    /// `nonce`, `login_hint`, ...), checked as
    /// [`Client::extra_params`](crate::request::Client::extra_params).
    pub extra_params: Option<&'a str>,
}

impl<'a> AuthorizationRequest<'a> {
    /// A request with only the endpoint and `client_id`; set the other fields
    /// as needed.
    pub const fn new(endpoint: Url<'a>, client_id: &'a str) -> Self {
        AuthorizationRequest {
            endpoint,
            client_id,
            redirect_uri: None,
            scope: None,
            state: None,
            #[cfg(feature = "pkce")]
            pkce: None,
            allow_insecure: false,
            resource: None,
            extra_params: None,
        }
    }

    /// Writes the authorization URL into `buf` and returns its length.
    ///
    /// Errors: [`InputError::InsecureScheme`] for plain `http` to a
    /// non-loopback host; [`InputError::Empty`] /
    /// [`InputError::ControlCharacter`] for `client_id`, `redirect_uri`,
    /// `scope` or `state`; [`Error::BufferTooSmall`] (the buffer is zeroed).
    pub fn write(&self, buf: &mut [u8]) -> Result<usize> {
        #[cfg(feature = "pkce")]
        let s256 = match self.pkce {
            Some((v, ChallengeMethod::S256)) => Some(v.challenge()),
            _ => None,
        };
        #[cfg(not(feature = "pkce"))]
        let s256 = None;
        self.write_with(s256.as_ref(), buf)
    }

    /// [`AuthorizationRequest::write`] with the S256 challenge already
    /// computed (the session computes it before, so SHA-256's frame and the
    /// URL writer's are not stacked: issue #13). Computed here if `None`.
    pub(crate) fn write_with(&self, s256: Option<&S256>, buf: &mut [u8]) -> Result<usize> {
        #[cfg(not(feature = "pkce"))]
        let _ = s256;
        self.endpoint.check_transport(self.allow_insecure)?;
        let optional = [
            ("redirect_uri", self.redirect_uri, Field::RedirectUri),
            ("scope", self.scope, Field::Scope),
            ("resource", self.resource, Field::Resource),
        ];
        // Every value in one loop, in order (flash, issue #13).
        let checked = [
            (Some(self.client_id), Field::ClientId),
            (self.redirect_uri, Field::RedirectUri),
            (self.scope, Field::Scope),
            (self.resource, Field::Resource),
            (self.state, Field::State),
        ];
        for (v, field) in checked {
            if let Some(v) = v {
                check_param(field, v)?;
            }
        }
        if let Some(extra) = self.extra_params {
            crate::params::check(Field::ExtraParams, extra)?;
        }
        write_into(buf, |w| {
            self.endpoint.write_url(w);
            query_sep(w, self.endpoint.target_parts().1);
            w.str("client_id=");
            w.form(self.client_id.as_bytes());
            for (k, v, _) in optional {
                if let Some(v) = v {
                    w.byte(b'&');
                    w.str(k);
                    w.byte(b'=');
                    w.form(v.as_bytes());
                }
            }
            w.str("&response_type=code");
            if let Some(s) = self.state {
                w.str("&state=");
                w.form(s.as_bytes());
            }
            #[cfg(feature = "pkce")]
            if let Some((v, method)) = self.pkce {
                w.str("&code_challenge=");
                match (method, s256) {
                    (ChallengeMethod::S256, Some(c)) => w.str(c.as_str()),
                    _ => v.write_challenge(method, w),
                }
                w.str("&code_challenge_method=");
                w.str(method.as_str());
            }
            if let Some(extra) = self.extra_params {
                crate::params::emit_form(w, extra, false);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    #[cfg(feature = "pkce")]
    use std::{format, string::ToString};

    #[cfg(feature = "pkce")]
    const RFC7636_RANDOM: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];

    #[test]
    #[cfg(feature = "pkce")]
    fn rfc7636_appendix_b() {
        let v = CodeVerifier::from_random(&RFC7636_RANDOM).unwrap();
        assert_eq!(v.as_str(), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            v.challenge().as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v2 = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(v2.challenge(), v.challenge());
    }

    /// The compact SHA-256 against FIPS 180-4's examples and, for every
    /// message length up to four blocks, RustCrypto's `sha2`.
    #[test]
    #[cfg(feature = "pkce")]
    fn sha256_matches_fips_180_4_and_sha2() {
        use sha2::Digest;
        let hex = |d: [u8; 32]| {
            d.iter()
                .map(|b| std::format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let msg: std::vec::Vec<u8> = (0..256u32).map(|i| (i * 31 + 7) as u8).collect();
        // Under Miri (tests/miri.sh) the lengths around the padding and
        // block boundaries (55/56, 64, 119/120) and the longest.
        let miri_lengths = [0, 55, 56, 64, 119, 120, 256];
        for n in (0..=msg.len()).filter(|n| !cfg!(miri) || miri_lengths.contains(n)) {
            let want: [u8; 32] = sha2::Sha256::digest(&msg[..n]).into();
            assert_eq!(sha256(&msg[..n]), want, "length {n}");
        }
    }

    #[test]
    #[cfg(feature = "pkce")]
    fn verifier_lengths_and_characters() {
        use base64::Engine;
        // Under Miri (tests/miri.sh) every 16th length, both ends included.
        for n in (32..=96usize).step_by(if cfg!(miri) { 16 } else { 1 }) {
            let random: std::vec::Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let v = CodeVerifier::from_random(&random).unwrap();
            assert_eq!(
                v.as_str(),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&random)
            );
            assert!((43..=128).contains(&v.as_str().len()));
            // The challenge matches an independent computation.
            use sha2::Digest;
            let digest = sha2::Sha256::digest(v.as_str().as_bytes());
            assert_eq!(
                v.challenge().as_str(),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
            );
        }
        let r = |kind| Err(Error::input(Field::Random, kind));
        assert_eq!(
            CodeVerifier::from_random(&[0; 31]).map(|_| ()),
            r(InputError::TooShort)
        );
        assert_eq!(
            CodeVerifier::from_random(&[0; 97]).map(|_| ()),
            r(InputError::TooLong)
        );

        let e = |kind| Err(Error::input(Field::CodeVerifier, kind));
        let ok = "a".repeat(43);
        assert_eq!(CodeVerifier::new(&ok).unwrap().as_str(), ok);
        let max = "A-._~z9".repeat(19)[..128].to_string();
        assert_eq!(CodeVerifier::new(&max).unwrap().as_str(), max);
        assert_eq!(
            CodeVerifier::new(&"a".repeat(42)).map(|_| ()),
            e(InputError::TooShort)
        );
        assert_eq!(
            CodeVerifier::new(&"a".repeat(129)).map(|_| ()),
            e(InputError::TooLong)
        );
        assert_eq!(CodeVerifier::new("").map(|_| ()), e(InputError::TooShort));
        for bad in ["+", "/", "=", " ", "\r", "\n", "\0", "é", "%"] {
            let s = format!("{}{bad}", "a".repeat(43));
            assert_eq!(
                CodeVerifier::new(&s).map(|_| ()),
                e(InputError::InvalidCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn state() {
        let s = State::from_random(&[0xfb; 16]).unwrap();
        assert_eq!(s.as_str().len(), 22);
        assert_eq!(s.as_str(), "-_v7-_v7-_v7-_v7-_v7-w");
        assert!(s.matches("-_v7-_v7-_v7-_v7-_v7-w"));
        assert!(!s.matches("-_v7-_v7-_v7-_v7-_v7-x"));
        assert!(!s.matches("-_v7-_v7-_v7-_v7-_v7-"));
        assert!(!s.matches(""));
        assert_eq!(State::from_random(&[1; 48]).unwrap().as_str().len(), 64);
        assert_eq!(
            State::from_random(&[1; 15]).map(|_| ()),
            Err(Error::input(Field::Random, InputError::TooShort))
        );
        assert_eq!(
            State::from_random(&[1; 49]).map(|_| ()),
            Err(Error::input(Field::Random, InputError::TooLong))
        );
    }

    #[test]
    #[cfg(feature = "pkce")]
    fn debug_hides_secrets() {
        let v = CodeVerifier::from_random(&RFC7636_RANDOM).unwrap();
        let s = State::from_random(&[0xfb; 16]).unwrap();
        let mut a = AuthorizationRequest::new(Url::parse("https://h/a").unwrap(), "id");
        a.pkce = Some((&v, ChallengeMethod::Plain));
        let text = format!("{v:?} {s:?} {a:?}");
        assert!(!text.contains(v.as_str()), "{text}");
        assert!(!text.contains(s.as_str()), "{text}");
        assert!(text.contains("<redacted>"));
    }

    fn write(a: &AuthorizationRequest<'_>) -> String {
        let mut big = [0u8; 1024];
        let n = a.write(&mut big).unwrap();
        // Under Miri (tests/miri.sh) every 97th short buffer and the longest.
        for k in (0..n).filter(|&k| !cfg!(miri) || k % 97 == 0 || k + 1 == n) {
            let mut buf = std::vec![0x11u8; k];
            assert_eq!(a.write(&mut buf), Err(Error::buffer_too_small(n)));
            assert!(buf.iter().all(|&b| b == 0));
        }
        let mut exact = std::vec![0u8; n];
        assert_eq!(a.write(&mut exact), Ok(n));
        String::from_utf8(exact).unwrap()
    }

    #[test]
    fn fentu_authorize_url() {
        let mut a = AuthorizationRequest::new(
            Url::parse("https://api.fentu.io/oauth/authorize").unwrap(),
            "YOUR_CLIENT_ID",
        );
        a.redirect_uri = Some("YOUR_REDIRECT");
        a.scope = Some("read:work-orders write:work-orders");
        assert_eq!(
            write(&a),
            "https://api.fentu.io/oauth/authorize?client_id=YOUR_CLIENT_ID&redirect_uri=YOUR_REDIRECT&scope=read%3Awork-orders+write%3Awork-orders&response_type=code"
        );
        let s = State::from_random(&[0xfb; 16]).unwrap();
        a.state = Some(s.as_str());
        a.redirect_uri = Some("http://127.0.0.1:8765/cb");
        assert_eq!(
            write(&a),
            "https://api.fentu.io/oauth/authorize?client_id=YOUR_CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcb&scope=read%3Awork-orders+write%3Awork-orders&response_type=code&state=-_v7-_v7-_v7-_v7-_v7-w"
        );
        #[cfg(feature = "pkce")]
        fentu_authorize_url_pkce(a);
    }

    #[cfg(feature = "pkce")]
    fn fentu_authorize_url_pkce(a: AuthorizationRequest<'_>) {
        let v = CodeVerifier::from_random(&RFC7636_RANDOM).unwrap();
        let mut a = AuthorizationRequest {
            pkce: Some((&v, ChallengeMethod::S256)),
            ..a
        };
        a.redirect_uri = Some("http://127.0.0.1:8765/cb");
        assert_eq!(
            write(&a),
            "https://api.fentu.io/oauth/authorize?client_id=YOUR_CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcb&scope=read%3Awork-orders+write%3Awork-orders&response_type=code&state=-_v7-_v7-_v7-_v7-_v7-w&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        );
        a.pkce = Some((&v, ChallengeMethod::Plain));
        assert!(write(&a).ends_with(
            "&code_challenge=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&code_challenge_method=plain"
        ));
    }

    #[test]
    fn endpoint_with_query_and_port() {
        for (base, want) in [
            (
                "https://h:8443/authorize?tenant=x",
                "https://h:8443/authorize?tenant=x&client_id=c&response_type=code",
            ),
            (
                "https://h/authorize?",
                "https://h/authorize?client_id=c&response_type=code",
            ),
            (
                "https://h/authorize?a=1&",
                "https://h/authorize?a=1&client_id=c&response_type=code",
            ),
            ("HTTPS://h:443", "https://h/?client_id=c&response_type=code"),
        ] {
            let a = AuthorizationRequest::new(Url::parse(base).unwrap(), "c");
            assert_eq!(write(&a), want);
        }
    }

    #[test]
    fn hostile_input() {
        let url = Url::parse("https://h/authorize").unwrap();
        for (bad, kind) in [
            ("", InputError::Empty),
            ("a\r\nb", InputError::ControlCharacter),
            ("a\0", InputError::ControlCharacter),
        ] {
            let mut buf = [0x42u8; 256];
            let base = AuthorizationRequest::new(url, "c");
            for (a, field) in [
                (AuthorizationRequest::new(url, bad), Field::ClientId),
                (
                    AuthorizationRequest {
                        redirect_uri: Some(bad),
                        ..base
                    },
                    Field::RedirectUri,
                ),
                (
                    AuthorizationRequest {
                        scope: Some(bad),
                        ..base
                    },
                    Field::Scope,
                ),
                (
                    AuthorizationRequest {
                        state: Some(bad),
                        ..base
                    },
                    Field::State,
                ),
            ] {
                assert_eq!(a.write(&mut buf), Err(Error::input(field, kind)));
                assert!(buf.iter().all(|&b| b == 0x42));
            }
        }
        let mut a =
            AuthorizationRequest::new(Url::parse("http://auth.example/authorize").unwrap(), "c");
        assert_eq!(
            a.write(&mut [0u8; 256]),
            Err(Error::input(Field::Url, InputError::InsecureScheme))
        );
        a.allow_insecure = true;
        assert!(a.write(&mut [0u8; 256]).is_ok());
        let a = AuthorizationRequest::new(Url::parse("http://localhost:9/authorize").unwrap(), "c");
        assert!(a.write(&mut [0u8; 256]).is_ok());
    }
}
