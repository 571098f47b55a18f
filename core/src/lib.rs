//! fieldauth core (work in progress).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::arithmetic_side_effects))]

pub mod apply;
pub mod body;
pub mod error;
pub mod http;
pub(crate) mod json;
pub mod pkce;
pub mod request;
pub mod url;
pub mod write;

pub use error::{Error, Field, HttpError, InputError, JsonError, Member, ResponseError, Result};

/// Largest lifetime (in seconds) accepted from a server: ten years.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;
