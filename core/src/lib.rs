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

/// Largest lifetime (in seconds) accepted from a server: ten years.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;
