//! The redirect back from the authorization server through the session
//! (issue #14 §2.7): `Session::on_authorization_callback` checks `state`
//! and `iss`, refuses what a client must refuse without losing the login,
//! and turns `error=` into a typed error. The parser is feature `redirect`;
//! code and state passed in (`set_authorization_code`) work in every build.
#![cfg_attr(not(feature = "redirect"), allow(unused_imports, dead_code))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

#[cfg(feature = "redirect")]
use fieldauth::body::ErrorCode;
use fieldauth::preset;
use fieldauth::session::{Action, Config, RequestKind};
use fieldauth::{Error, Field, InputError, ResponseError};

mod common;
use common::*;

fn config() -> Config<'static> {
    Config {
        base_url: "https://api.fentu.io",
        client_id: "c",
        client_secret: "s",
        redirect_uri: "https://app.example/cb",
        ..Config::default()
    }
}

/// Starts a login and returns the session and the `state` it expects.
fn login() -> (Sess, String) {
    let mut s = Sess::new(&preset::FENTU_OAUTH, &config(), 1).unwrap();
    let mut url = [0u8; 512];
    let n = s
        .authorization_url(&[7u8; 32], &[9u8; 16], &mut url)
        .unwrap();
    let url = std::str::from_utf8(&url[..n]).unwrap().to_string();
    let state = url
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    (s, state.to_string())
}

const ISS: &str = "https://as.example";

#[test]
#[cfg(feature = "redirect")]
fn a_genuine_redirect_starts_the_code_exchange() {
    let (mut s, state) = login();
    assert_eq!(s.poll(T0), Action::NeedAuthorizationCode);
    let redirect =
        format!("https://app.example/cb?code=a%2Fb%2Bc&state={state}&iss=https%3A%2F%2Fas.example");
    s.on_authorization_callback(&redirect, Some(ISS)).unwrap();
    assert_eq!(s.poll(T0), Action::SendTokenRequest(RequestKind::Fetch));
    let (req, _) = exchange(&mut s, T0, &token_json("at-1", 3600, Some("rt-1")));
    // The decoded code goes out, form-encoded again.
    assert!(req.contains("code=a%2Fb%2Bc"), "{req}");
    assert_eq!(bearer(&mut s, T0), "Authorization: Bearer at-1\r\n");
}

#[test]
#[cfg(feature = "redirect")]
fn forged_and_mixed_up_redirects_are_refused_and_the_login_survives() {
    let (mut s, state) = login();
    let cases: Vec<(String, Option<&str>, Error)> = vec![
        (
            "/cb?code=x&state=forged".into(),
            None,
            Error::input(Field::State, InputError::Mismatch),
        ),
        (
            "/cb?code=x".into(),
            None,
            Error::input(Field::State, InputError::Missing),
        ),
        (
            format!("/cb?code=x&state={state}"),
            Some(ISS),
            Error::input(Field::Issuer, InputError::Missing),
        ),
        (
            format!("/cb?code=x&state={state}&iss=https%3A%2F%2Fevil.example"),
            Some(ISS),
            Error::input(Field::Issuer, InputError::Mismatch),
        ),
        (
            format!("/cb?code=x&code=y&state={state}"),
            None,
            Error::input(Field::Code, InputError::Duplicate),
        ),
        (
            format!("/cb?code=x%0d%0aHost:%20evil&state={state}"),
            None,
            Error::input(Field::Code, InputError::ControlCharacter),
        ),
        (
            format!("/cb?code=%zz&state={state}"),
            None,
            Error::input(Field::Code, InputError::InvalidCharacter),
        ),
        (
            format!("/cb?state={state}"),
            None,
            Error::input(Field::Code, InputError::Missing),
        ),
        (
            format!("/cb?error=access_denied&error_description=no&state={state}"),
            None,
            Error::Response(ResponseError::AuthorizationDenied(ErrorCode::AccessDenied)),
        ),
        (
            // A denial for another login is not this login's denial.
            "/cb?error=access_denied&state=other".into(),
            None,
            Error::input(Field::State, InputError::Mismatch),
        ),
        (
            format!("/cb?code={}&state={state}", "c".repeat(5000)),
            None,
            Error::CapacityExceeded {
                needed: 5000 + state.len() as u32,
                capacity: s.slot_capacity() as u32,
            },
        ),
    ];
    for (redirect, iss, err) in cases {
        let before = s.status();
        assert_eq!(
            s.on_authorization_callback(&redirect, iss),
            Err(err),
            "{redirect}"
        );
        assert_eq!(s.status(), before, "{redirect}");
        assert_eq!(s.poll(T0), Action::NeedAuthorizationCode, "{redirect}");
    }
    // The genuine one still works.
    s.on_authorization_callback(&format!("code=good&state={state}"), None)
        .unwrap();
    let (req, _) = exchange(&mut s, T0, &token_json("at-1", 3600, None));
    assert!(req.contains("code=good"), "{req}");
}

#[test]
#[cfg(feature = "redirect")]
fn the_callback_needs_a_login_in_progress() {
    // Not in code mode.
    let mut cc = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
    assert_eq!(
        cc.on_authorization_callback("code=x&state=y", None),
        Err(Error::WrongState)
    );
    // Before authorization_url.
    let mut s = Sess::new(&preset::FENTU_OAUTH, &config(), 1).unwrap();
    assert_eq!(
        s.on_authorization_callback("code=x&state=y", None),
        Err(Error::WrongState)
    );
    // A second redirect while the first code waits: refused, the first kept.
    let (mut s, state) = login();
    s.on_authorization_callback(&format!("code=first&state={state}"), None)
        .unwrap();
    assert_eq!(
        s.on_authorization_callback(&format!("code=second&state={state}"), None),
        Err(Error::WrongState)
    );
    let (req, _) = exchange(&mut s, T0, &token_json("at-1", 3600, None));
    assert!(req.contains("code=first"), "{req}");
}

/// Code and state passed in: every build has this path (without feature
/// `redirect` it is the only one: the parser and `on_authorization_callback`
/// are left out, and the C ABI answers FIELDAUTH_ERR_INPUT_UNSUPPORTED,
/// tested in the ffi crate).
#[test]
fn code_and_state_passed_in_work_in_every_build() {
    let (mut s, state) = login();
    assert_eq!(s.poll(T0), Action::NeedAuthorizationCode);
    assert_eq!(
        s.set_authorization_code("c0de", "forged"),
        Err(Error::input(Field::State, InputError::InvalidCharacter))
    );
    assert_eq!(s.poll(T0), Action::NeedAuthorizationCode);
    s.set_authorization_code("c0de", &state).unwrap();
    assert_eq!(s.poll(T0), Action::SendTokenRequest(RequestKind::Fetch));
    let (req, _) = exchange(&mut s, T0, &token_json("at-1", 3600, None));
    assert!(req.contains("code=c0de"), "{req}");
    assert_eq!(bearer(&mut s, T0), "Authorization: Bearer at-1\r\n");
}
