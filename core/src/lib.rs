//! fieldauth core (work in progress).
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
//! | `pkce` | RFC 7636: `CodeVerifier`, `Challenge`, `AuthorizationRequest::pkce` (pulls in `sha2`) | ~1.5 KB |
//!
//! Off by default, for hosts: `embedded-io` and `embedded-io-async` (the
//! transport drivers in `driver`), `std` (adapters from `std::io` streams to
//! them, and `simd-utf8` with run-time CPU detection) and `simd-utf8` (the
//! one UTF-8 validation of a parsed body's text runs on simdutf8's SSE4.2 /
//! AVX2 validator; without `std` only if those CPU features are enabled at
//! compile time).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::arithmetic_side_effects))]

pub mod apply;
pub mod body;
#[cfg(feature = "embedded-io")]
pub mod driver;
pub mod error;
pub mod http;
pub(crate) mod json;
pub mod pkce;
pub mod preset;
pub mod request;
pub mod session;
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
        for len in 0..=140usize {
            let ascii: Vec<u8> = (0..len).map(|k| b'!' + (k % 90) as u8).collect();
            assert_eq!(super::utf8(&ascii), core::str::from_utf8(&ascii).ok());
            for insert in inserts {
                for at in (0..=len).step_by(3) {
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
