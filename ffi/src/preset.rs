//! Presets, profiles (C struct <-> core `Profile`), configuration and version.

use core::ffi::{c_char, CStr};

use fieldauth_core::body::{PATCHWORKS_KEYS, STANDARD_KEYS};
use fieldauth_core::http::ResetMode;
use fieldauth_core::preset::{self, Backoff, Budget, Mode, Placement, Profile, RevokeStyle};
use fieldauth_core::request::{BodyFormat, ClientAuth};
use fieldauth_core::session::Config;

use crate::ptr::{done, Args, R};
use crate::status::*;
use crate::types::*;

/// The preset names, NUL-terminated, by id (a test checks them against the
/// core's `Profile::name`).
const NAMES: [&CStr; FIELDAUTH_PRESET_COUNT as usize] = [
    c"custom",
    c"Fentu FSM (API key)",
    c"Fentu FSM (OAuth)",
    c"Field Nation",
    c"Autotask",
    c"Patchworks (API key)",
    c"Patchworks (login)",
];

/// The core profile of a preset id.
pub(crate) fn preset(id: u32) -> R<&'static Profile<'static>> {
    // A reference, not a copy: init's stack (issue #13).
    static CUSTOM: Profile<'static> = preset::custom();
    match id {
        FIELDAUTH_PRESET_CUSTOM => Ok(&CUSTOM),
        _ => {
            let i = usize::try_from(id.wrapping_sub(1)).map_err(|_| FIELDAUTH_ERR_UNKNOWN_ENUM)?;
            preset::ALL
                .get(i)
                .copied()
                .ok_or(FIELDAUTH_ERR_UNKNOWN_ENUM)
        }
    }
}

/// The name of preset `id` (FIELDAUTH_PRESET_*), static and NUL-terminated,
/// or NULL for an unknown id (so `for (id = 0; fieldauth_preset_name(id); id++)`
/// lists them). Never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn fieldauth_preset_name(id: u32) -> *const c_char {
    usize::try_from(id)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or(core::ptr::null(), |n| n.as_ptr())
}

/// Fills `*out_profile` with preset `id` (FIELDAUTH_PRESET_*), to pass to
/// fieldauth_session_init() as is or after changing what differs (the
/// custom preset is the starting point for any RFC 6749 server). Its strings
/// point to static storage inside the library. Thread-safe.
///
/// Errors: UNKNOWN_ENUM for an unknown id; NULL_POINTER, MISALIGNED.
///
/// # Safety
/// `out_profile` is NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn fieldauth_profile_preset(
    id: u32,
    out_profile: *mut fieldauth_profile,
) -> fieldauth_status {
    let mut a = Args::new();
    done((|| {
        let out = a.out(out_profile)?;
        out.put(profile_to_c(preset(id)?));
        Ok(())
    })())
}

fn budget_to_c(b: Option<Budget>) -> fieldauth_budget {
    match b {
        Some(b) => fieldauth_budget {
            requests: b.requests,
            window_s: b.window_s,
            burst: b.burst,
        },
        None => fieldauth_budget {
            requests: 0,
            window_s: 0,
            burst: 0,
        },
    }
}

fn profile_to_c(p: &Profile<'static>) -> fieldauth_profile {
    let (placement, placement_name) = match p.placement {
        Placement::Bearer => (FIELDAUTH_PLACEMENT_BEARER, fieldauth_str::EMPTY),
        Placement::Raw => (FIELDAUTH_PLACEMENT_RAW, fieldauth_str::EMPTY),
        Placement::Header(n) => (FIELDAUTH_PLACEMENT_HEADER, fieldauth_str::of(n)),
        Placement::Query(n) => (FIELDAUTH_PLACEMENT_QUERY, fieldauth_str::of(n)),
    };
    fieldauth_profile {
        name: fieldauth_str::of(p.name),
        mode: match p.mode {
            Mode::ApiKey => FIELDAUTH_MODE_API_KEY,
            Mode::ClientCredentials => FIELDAUTH_MODE_CLIENT_CREDENTIALS,
            Mode::Password => FIELDAUTH_MODE_PASSWORD,
            Mode::Login => FIELDAUTH_MODE_LOGIN,
            Mode::AuthorizationCode => FIELDAUTH_MODE_AUTHORIZATION_CODE,
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode => FIELDAUTH_MODE_DEVICE_CODE,
        },
        format: match p.format {
            BodyFormat::Form => FIELDAUTH_FORMAT_FORM,
            BodyFormat::Json => FIELDAUTH_FORMAT_JSON,
        },
        client_auth: match p.client_auth {
            ClientAuth::Body => FIELDAUTH_CLIENT_AUTH_BODY,
            #[cfg(feature = "basic-auth")]
            ClientAuth::Basic => FIELDAUTH_CLIENT_AUTH_BASIC,
            ClientAuth::None => FIELDAUTH_CLIENT_AUTH_NONE,
        },
        revoke_style: match p.revoke_style {
            RevokeStyle::None => FIELDAUTH_REVOKE_NONE,
            RevokeStyle::Rfc7009 => FIELDAUTH_REVOKE_RFC7009,
            RevokeStyle::Bearer => FIELDAUTH_REVOKE_BEARER,
        },
        token_path: fieldauth_str::of(p.token_path),
        authorize_path: fieldauth_str::of(p.authorize_path),
        device_path: fieldauth_str::of(p.device_path),
        revoke_path: fieldauth_str::of(p.revoke_path),
        scope: p.scope.map_or(fieldauth_str::EMPTY, fieldauth_str::of),
        keys: if p.keys == PATCHWORKS_KEYS {
            FIELDAUTH_KEYS_PATCHWORKS
        } else {
            FIELDAUTH_KEYS_STANDARD
        },
        placement,
        placement_name,
        default_lifetime_s: p.default_lifetime_s,
        refresh_lifetime_s: p.refresh_lifetime_s,
        refresh_margin_s: p.refresh_margin_s,
        refresh_fraction_pct: u32::from(p.refresh_fraction_pct),
        token_budget: budget_to_c(p.token_budget),
        api_budget: budget_to_c(p.api_budget),
        api_budget_per_token: u32::from(p.api_budget_per_token),
        reset_mode: match p.reset_mode {
            ResetMode::Auto => FIELDAUTH_RESET_AUTO,
            ResetMode::EpochSeconds => FIELDAUTH_RESET_EPOCH_SECONDS,
            ResetMode::DeltaSeconds => FIELDAUTH_RESET_DELTA_SECONDS,
        },
        backoff: fieldauth_backoff {
            base_ms: p.backoff.base_ms,
            cap_ms: p.backoff.cap_ms,
            max_attempts: u32::from(p.backoff.max_attempts),
        },
        expired_token_phrase: fieldauth_str::of(p.expired_token_phrase),
    }
}

fn flag(v: u32) -> R<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(FIELDAUTH_ERR_INVALID_ARGUMENT),
    }
}

fn budget_from_c(b: fieldauth_budget) -> R<Option<Budget>> {
    if b.requests == 0 {
        return Ok(None);
    }
    if b.window_s == 0 || b.burst == 0 || b.burst > b.requests {
        return Err(FIELDAUTH_ERR_INVALID_ARGUMENT);
    }
    Ok(Some(Budget {
        requests: b.requests,
        window_s: b.window_s,
        burst: b.burst,
    }))
}

/// Converts and validates a C profile; its strings borrow the C memory.
///
/// # Safety
/// Every `fieldauth_str` in `p` is readable for its length during `'a`.
pub(crate) unsafe fn profile_from_c<'a>(
    a: &mut Args,
    p: &fieldauth_profile,
    out: &mut Profile<'a>,
) -> R<()> {
    // SAFETY (all `a.str` calls): the caller's contract covers every string.
    let mut s = |v: fieldauth_str| unsafe { a.str(v) };
    let name = s(p.name)?;
    let token_path = s(p.token_path)?;
    let authorize_path = s(p.authorize_path)?;
    let device_path = s(p.device_path)?;
    let revoke_path = s(p.revoke_path)?;
    let scope = s(p.scope)?;
    let placement_name = s(p.placement_name)?;
    let expired_token_phrase = s(p.expired_token_phrase)?;
    let named = |n: &'a str| {
        if n.is_empty() {
            Err(FIELDAUTH_ERR_INPUT_MISSING)
        } else {
            Ok(n)
        }
    };
    // Into `out`, not a `Result` of it (the init functions' stack, issue #13).
    *out = Profile {
        name,
        mode: match p.mode {
            FIELDAUTH_MODE_API_KEY => Mode::ApiKey,
            FIELDAUTH_MODE_CLIENT_CREDENTIALS => Mode::ClientCredentials,
            FIELDAUTH_MODE_PASSWORD => Mode::Password,
            FIELDAUTH_MODE_LOGIN => Mode::Login,
            FIELDAUTH_MODE_AUTHORIZATION_CODE => Mode::AuthorizationCode,
            #[cfg(feature = "device-flow")]
            FIELDAUTH_MODE_DEVICE_CODE => Mode::DeviceCode,
            #[cfg(not(feature = "device-flow"))]
            FIELDAUTH_MODE_DEVICE_CODE => return Err(FIELDAUTH_ERR_INPUT_UNSUPPORTED),
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        },
        token_path,
        authorize_path,
        device_path,
        revoke_path,
        revoke_style: match p.revoke_style {
            FIELDAUTH_REVOKE_NONE => RevokeStyle::None,
            FIELDAUTH_REVOKE_RFC7009 => RevokeStyle::Rfc7009,
            FIELDAUTH_REVOKE_BEARER => RevokeStyle::Bearer,
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        },
        format: match p.format {
            FIELDAUTH_FORMAT_FORM => BodyFormat::Form,
            FIELDAUTH_FORMAT_JSON => BodyFormat::Json,
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        },
        client_auth: match p.client_auth {
            FIELDAUTH_CLIENT_AUTH_BODY => ClientAuth::Body,
            #[cfg(feature = "basic-auth")]
            FIELDAUTH_CLIENT_AUTH_BASIC => ClientAuth::Basic,
            #[cfg(not(feature = "basic-auth"))]
            FIELDAUTH_CLIENT_AUTH_BASIC => return Err(FIELDAUTH_ERR_INPUT_UNSUPPORTED),
            FIELDAUTH_CLIENT_AUTH_NONE => ClientAuth::None,
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        },
        scope: (!scope.is_empty()).then_some(scope),
        keys: match p.keys {
            FIELDAUTH_KEYS_STANDARD => STANDARD_KEYS,
            FIELDAUTH_KEYS_PATCHWORKS => PATCHWORKS_KEYS,
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        },
        placement: match p.placement {
            FIELDAUTH_PLACEMENT_BEARER => Placement::Bearer,
            FIELDAUTH_PLACEMENT_RAW => Placement::Raw,
            FIELDAUTH_PLACEMENT_HEADER => Placement::Header(named(placement_name)?),
            FIELDAUTH_PLACEMENT_QUERY => Placement::Query(named(placement_name)?),
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        },
        default_lifetime_s: p.default_lifetime_s,
        refresh_lifetime_s: p.refresh_lifetime_s,
        refresh_margin_s: p.refresh_margin_s,
        refresh_fraction_pct: u8::try_from(p.refresh_fraction_pct)
            .ok()
            .filter(|&v| v <= 100)
            .ok_or(FIELDAUTH_ERR_INVALID_ARGUMENT)?,
        token_budget: budget_from_c(p.token_budget)?,
        api_budget: budget_from_c(p.api_budget)?,
        api_budget_per_token: flag(p.api_budget_per_token)?,
        reset_mode: match p.reset_mode {
            FIELDAUTH_RESET_AUTO => ResetMode::Auto,
            FIELDAUTH_RESET_EPOCH_SECONDS => ResetMode::EpochSeconds,
            FIELDAUTH_RESET_DELTA_SECONDS => ResetMode::DeltaSeconds,
            _ => return Err(FIELDAUTH_ERR_UNKNOWN_ENUM),
        },
        backoff: Backoff {
            base_ms: p.backoff.base_ms,
            cap_ms: p.backoff.cap_ms,
            max_attempts: u8::try_from(p.backoff.max_attempts)
                .ok()
                .filter(|&v| v >= 1)
                .ok_or(FIELDAUTH_ERR_INVALID_ARGUMENT)?,
        },
        expired_token_phrase,
    };
    Ok(())
}

/// Converts and validates a C configuration; its strings borrow the C memory.
///
/// # Safety
/// Every `fieldauth_str` in `c` is readable for its length during `'a`.
/// Written into `out` field by field (no `Result` of the whole configuration
/// to move out of: the init functions' stack, issue #13).
pub(crate) unsafe fn config_from_c<'a>(
    a: &mut Args,
    c: &fieldauth_config,
    out: &mut Config<'a>,
) -> R<()> {
    // SAFETY (all `a.str` calls): the caller's contract covers every string.
    let mut s = |v: fieldauth_str| unsafe { a.str(v) };
    out.base_url = s(c.base_url)?;
    out.client_id = s(c.client_id)?;
    out.client_secret = s(c.client_secret)?;
    out.username = s(c.username)?;
    out.password = s(c.password)?;
    out.api_key = s(c.api_key)?;
    out.scope = s(c.scope)?;
    out.redirect_uri = s(c.redirect_uri)?;
    out.allow_insecure = flag(c.allow_insecure)?;
    out.max_wait_s = c.max_wait_s;
    out.resource = s(c.resource)?;
    out.audience = s(c.audience)?;
    out.token_params = s(c.token_params)?;
    out.authorize_params = s(c.authorize_params)?;
    Ok(())
}

// ------------------------------------------------------------------ version

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

const fn parse(s: &str) -> u32 {
    let mut v: u32 = 0;
    let mut b = s.as_bytes();
    while let [d, rest @ ..] = b {
        v = v
            .wrapping_mul(10)
            .wrapping_add((*d).wrapping_sub(b'0') as u32);
        b = rest;
    }
    v
}

const VERSION_NUMBER: u32 = (parse(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
    | (parse(env!("CARGO_PKG_VERSION_MINOR")) << 8)
    | parse(env!("CARGO_PKG_VERSION_PATCH"));

/// The library's version, "MAJOR.MINOR.PATCH", static and NUL-terminated
/// (compare with FIELDAUTH_VERSION_STRING). Never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn fieldauth_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The library's version as MAJOR << 16 | MINOR << 8 | PATCH: equal to
/// FIELDAUTH_VERSION_NUMBER when header and library match. Thread-safe.
#[no_mangle]
pub extern "C" fn fieldauth_version_number() -> u32 {
    VERSION_NUMBER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_core_presets() {
        assert_eq!(NAMES[0].to_str().unwrap(), preset::custom().name);
        for (i, p) in preset::ALL.iter().enumerate() {
            assert_eq!(NAMES[i + 1].to_str().unwrap(), p.name);
        }
        assert_eq!(NAMES.len(), preset::ALL.len() + 1);
    }

    #[test]
    fn profiles_round_trip_through_c() {
        for id in 0..FIELDAUTH_PRESET_COUNT {
            let p = *preset(id).unwrap();
            let c = profile_to_c(&p);
            let mut a = Args::new();
            let mut back = preset::custom();
            // SAFETY: the strings point to static data.
            unsafe { profile_from_c(&mut a, &c, &mut back) }.unwrap();
            assert_eq!(back, p, "preset {id}");
        }
    }

    /// A library built without an optional part refuses the values that
    /// need it with FIELDAUTH_ERR_INPUT_UNSUPPORTED (and knows them: not
    /// UNKNOWN_ENUM); with every part, they convert. CI runs this crate's
    /// unit tests both ways.
    #[test]
    fn values_needing_a_left_out_feature_are_unsupported() {
        let base = profile_to_c(&preset::custom());
        let cases = [
            (
                fieldauth_profile {
                    mode: FIELDAUTH_MODE_DEVICE_CODE,
                    ..base
                },
                cfg!(feature = "device-flow"),
            ),
            (
                fieldauth_profile {
                    client_auth: FIELDAUTH_CLIENT_AUTH_BASIC,
                    ..base
                },
                cfg!(feature = "basic-auth"),
            ),
        ];
        for (c, built_in) in cases {
            let mut a = Args::new();
            // SAFETY: the strings point to static data.
            let mut out = preset::custom();
            // SAFETY: the strings point to static data.
            let r = unsafe { profile_from_c(&mut a, &c, &mut out) };
            if built_in {
                assert_eq!(r, Ok(()));
            } else {
                assert_eq!(r, Err(FIELDAUTH_ERR_INPUT_UNSUPPORTED));
            }
        }
    }

    #[test]
    fn version_matches_cargo() {
        let v = env!("CARGO_PKG_VERSION");
        // SAFETY: static NUL-terminated string.
        let c = unsafe { CStr::from_ptr(fieldauth_version()) };
        assert_eq!(c.to_str().unwrap(), v);
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap());
        let (ma, mi, pa) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert_eq!(fieldauth_version_number(), ma << 16 | mi << 8 | pa);
    }
}
