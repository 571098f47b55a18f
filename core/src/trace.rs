//! The decision log (features `log` and `defmt`): one line per decision the
//! session makes — a token request sent, a token issued, a retry scheduled,
//! a final failure, a token dropped after an API 401, an API rate limit —
//! through the `log` facade (target `fieldauth`, level `info`) and/or
//! `defmt`. Lines carry kinds, HTTP statuses, counts and times only: never a
//! token, secret, code or server text. Without either feature nothing is
//! compiled in.

/// Logs one decision line (a format string and integer / `&'static str`
/// arguments, valid for both `log` and `defmt`).
macro_rules! decision {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::info!(target: "fieldauth", $($arg)*);
        #[cfg(feature = "defmt")]
        ::defmt::info!($($arg)*);
    }};
}
pub(crate) use decision;

#[cfg(any(feature = "log", feature = "defmt"))]
use crate::session::{Event, Failure, RequestKind};

/// The name of a request kind, for log lines.
#[cfg(any(feature = "log", feature = "defmt"))]
pub(crate) const fn kind(k: RequestKind) -> &'static str {
    match k {
        RequestKind::Fetch => "fetch",
        RequestKind::Refresh => "refresh",
        RequestKind::DeviceAuthorization => "device authorization",
        RequestKind::DevicePoll => "device poll",
        RequestKind::Revoke => "revocation",
    }
}

/// The name of a final failure, for log lines.
#[cfg(any(feature = "log", feature = "defmt"))]
pub(crate) const fn failure(f: Failure) -> &'static str {
    match f {
        Failure::InvalidClient => "invalid_client",
        Failure::UnauthorizedClient => "unauthorized_client",
        Failure::InvalidScope => "invalid_scope",
        Failure::InvalidGrant => "invalid_grant",
        Failure::InvalidKey => "invalid API key",
        Failure::AccessDenied => "access_denied",
        Failure::Rejected => "rejected",
        Failure::RetriesExhausted => "retries exhausted",
        Failure::Revoked => "revoked",
    }
}

/// The line for what a token response led to (retries and failures are
/// logged where they are decided).
#[cfg(any(feature = "log", feature = "defmt"))]
pub(crate) fn event(ev: &Event) {
    match *ev {
        Event::TokenIssued {
            kind: k,
            lifetime_s,
            refreshable,
        } => decision!(
            "fieldauth: token issued ({}): lifetime {} s, refresh token {}",
            kind(k),
            lifetime_s,
            if refreshable { "held" } else { "none" }
        ),
        Event::UserCode => decision!("fieldauth: device flow: show the user code"),
        Event::AuthorizationPending => {
            decision!("fieldauth: device flow: authorization pending")
        }
        Event::SlowDown => decision!("fieldauth: device flow: slow down"),
        Event::RefreshRejected => {
            decision!("fieldauth: refresh token rejected: falling back to the primary grant")
        }
        // Logged where they are decided (back_off, fail), also outside a
        // token response.
        Event::Retrying { .. } | Event::Failed(_) => {}
        Event::Revoked => decision!("fieldauth: revoked"),
    }
}

/// Without a log backend: nothing.
#[cfg(not(any(feature = "log", feature = "defmt")))]
#[inline(always)]
pub(crate) fn event<T>(_: &T) {}
