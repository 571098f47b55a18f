//! The core's events as `fieldauth_event` (with the request kinds and
//! failures they carry), shared by `session.rs` and `exchange.rs`.

use fieldauth_core::session::{Event, Failure, RequestKind};

use crate::types::*;

pub(crate) fn request_kind(k: RequestKind) -> u32 {
    match k {
        RequestKind::Fetch => FIELDAUTH_REQUEST_FETCH,
        RequestKind::Refresh => FIELDAUTH_REQUEST_REFRESH,
        RequestKind::DeviceAuthorization => FIELDAUTH_REQUEST_DEVICE_AUTHORIZATION,
        RequestKind::DevicePoll => FIELDAUTH_REQUEST_DEVICE_POLL,
        RequestKind::Revoke => FIELDAUTH_REQUEST_REVOKE,
    }
}

pub(crate) fn failure(f: Option<Failure>) -> u32 {
    match f {
        None => FIELDAUTH_FAILURE_NONE,
        Some(Failure::InvalidClient) => FIELDAUTH_FAILURE_INVALID_CLIENT,
        Some(Failure::UnauthorizedClient) => FIELDAUTH_FAILURE_UNAUTHORIZED_CLIENT,
        Some(Failure::InvalidScope) => FIELDAUTH_FAILURE_INVALID_SCOPE,
        Some(Failure::InvalidGrant) => FIELDAUTH_FAILURE_INVALID_GRANT,
        Some(Failure::InvalidKey) => FIELDAUTH_FAILURE_INVALID_KEY,
        Some(Failure::AccessDenied) => FIELDAUTH_FAILURE_ACCESS_DENIED,
        Some(Failure::Rejected) => FIELDAUTH_FAILURE_REJECTED,
        Some(Failure::RetriesExhausted) => FIELDAUTH_FAILURE_RETRIES_EXHAUSTED,
        Some(Failure::Revoked) => FIELDAUTH_FAILURE_REVOKED,
    }
}

const NO_EVENT: fieldauth_event = fieldauth_event {
    at_ms: 0,
    kind: FIELDAUTH_EVENT_NONE,
    request_kind: FIELDAUTH_REQUEST_NONE,
    lifetime_s: 0,
    refreshable: 0,
    http_status: 0,
    failure: FIELDAUTH_FAILURE_NONE,
};

pub(crate) fn event(e: Option<Event>) -> fieldauth_event {
    let Some(e) = e else { return NO_EVENT };
    match e {
        Event::TokenIssued {
            kind,
            lifetime_s,
            refreshable,
        } => fieldauth_event {
            kind: FIELDAUTH_EVENT_TOKEN_ISSUED,
            request_kind: request_kind(kind),
            lifetime_s,
            refreshable: u32::from(refreshable),
            ..NO_EVENT
        },
        Event::UserCode => fieldauth_event {
            kind: FIELDAUTH_EVENT_USER_CODE,
            ..NO_EVENT
        },
        Event::AuthorizationPending => fieldauth_event {
            kind: FIELDAUTH_EVENT_AUTHORIZATION_PENDING,
            ..NO_EVENT
        },
        Event::SlowDown => fieldauth_event {
            kind: FIELDAUTH_EVENT_SLOW_DOWN,
            ..NO_EVENT
        },
        Event::RefreshRejected => fieldauth_event {
            kind: FIELDAUTH_EVENT_REFRESH_REJECTED,
            ..NO_EVENT
        },
        Event::Retrying { status, at } => fieldauth_event {
            at_ms: at,
            kind: FIELDAUTH_EVENT_RETRYING,
            http_status: u32::from(status),
            ..NO_EVENT
        },
        Event::Failed(f) => fieldauth_event {
            kind: FIELDAUTH_EVENT_FAILED,
            failure: failure(Some(f)),
            ..NO_EVENT
        },
        Event::Revoked => fieldauth_event {
            kind: FIELDAUTH_EVENT_REVOKED,
            ..NO_EVENT
        },
    }
}
