//! Request parameters through the session (issue #14 §2.3): `resource`,
//! `audience`, extra token-request parameters and extra authorization-URL
//! parameters (`prompt`, `nonce`, `login_hint`, ...), in form and JSON
//! bodies; what cannot be sent is refused when the session is configured.
// Without feature `extra-params` only the last test is built.
#![cfg_attr(not(feature = "extra-params"), allow(unused_imports))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use fieldauth::preset::{self, Mode, Profile};
use fieldauth::request::{BodyFormat, ClientAuth};
use fieldauth::session::{Action, Config, RequestKind};
use fieldauth::{Error, Field, InputError};

mod common;
use common::*;

fn body_of(s: &mut Sess, now: u64) -> String {
    let mut buf = [0u8; 2048];
    let parts = s.write_token_request_parts(now, &mut buf).unwrap();
    String::from_utf8(parts.body.to_vec()).unwrap()
}

fn config() -> Config<'static> {
    Config {
        base_url: "https://as.example",
        client_id: "app",
        client_secret: "s3cret",
        scope: "api:read",
        resource: "https://api.example/",
        audience: "fsm-api",
        token_params: "tenant=acme&note=a%20b%2Bc%22q",
        authorize_params: "prompt=consent&login_hint=tech%40acme.example&nonce=n-1",
        ..Config::default()
    }
}

#[test]
#[cfg(feature = "extra-params")]
fn token_requests_carry_resource_audience_and_extra_parameters() {
    // Form body.
    let form = Profile {
        client_auth: ClientAuth::Body,
        ..preset::custom()
    };
    let mut s = Sess::new(&form, &config(), 1).unwrap();
    let body = body_of(&mut s, T0);
    assert_eq!(
        body,
        "grant_type=client_credentials&client_id=app&client_secret=s3cret&scope=api%3Aread\
         &resource=https%3A%2F%2Fapi.example%2F&audience=fsm-api&tenant=acme&note=a%20b%2Bc%22q",
        "{body}"
    );
    // JSON body: decoded.
    let json = Profile {
        format: BodyFormat::Json,
        client_auth: ClientAuth::Body,
        ..preset::custom()
    };
    let mut s = Sess::new(&json, &config(), 1).unwrap();
    let body = body_of(&mut s, T0);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["resource"], "https://api.example/");
    assert_eq!(v["audience"], "fsm-api");
    assert_eq!(v["tenant"], "acme");
    assert_eq!(v["note"], "a b+c\"q");
    assert_eq!(v["client_secret"], "s3cret");
}

#[test]
#[cfg(feature = "extra-params")]
fn a_refresh_keeps_the_extra_parameters_and_drops_the_scope() {
    let mut s = Sess::new(&preset::custom(), &config(), 1).unwrap();
    exchange(&mut s, T0, &token_json("at-1", 3600, Some("rt-1")));
    let Action::Ready { next } = s.poll(T0) else {
        panic!()
    };
    assert_eq!(s.poll(next), Action::SendTokenRequest(RequestKind::Refresh));
    let body = body_of(&mut s, next);
    assert!(
        body.starts_with("grant_type=refresh_token&refresh_token=rt-1"),
        "{body}"
    );
    assert!(!body.contains("scope="), "{body}");
    assert!(
        body.contains("&resource=https%3A%2F%2Fapi.example%2F&audience=fsm-api&tenant=acme"),
        "{body}"
    );
}

#[test]
#[cfg(feature = "extra-params")]
fn the_authorization_url_carries_prompt_nonce_login_hint_and_resource() {
    let profile = Profile {
        mode: Mode::AuthorizationCode,
        ..preset::custom()
    };
    let c = Config {
        redirect_uri: "https://app.example/cb",
        ..config()
    };
    let mut s = Sess::new(&profile, &c, 1).unwrap();
    let mut buf = [0u8; 1024];
    let n = s.authorization_url(&[7; 32], &[9; 16], &mut buf).unwrap();
    let url = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(
        url.contains("&resource=https%3A%2F%2Fapi.example%2F&response_type=code"),
        "{url}"
    );
    assert!(
        url.ends_with("&prompt=consent&login_hint=tech%40acme.example&nonce=n-1"),
        "{url}"
    );
    // The token parameters are not in the URL, nor the URL's in the body.
    assert!(!url.contains("tenant"), "{url}");
}

#[test]
#[cfg(feature = "extra-params")]
fn what_cannot_be_sent_is_refused_at_configuration() {
    let cases: [(Config<'static>, Error); 6] = [
        (
            Config {
                token_params: "grant_type=password",
                ..config()
            },
            Error::input(Field::ExtraParams, InputError::Reserved),
        ),
        (
            Config {
                authorize_params: "state=fixed",
                ..config()
            },
            Error::input(Field::ExtraParams, InputError::Reserved),
        ),
        (
            Config {
                token_params: "a=b\r\nHost: evil",
                ..config()
            },
            Error::input(Field::ExtraParams, InputError::ControlCharacter),
        ),
        (
            Config {
                token_params: "a=%0d%0a",
                ..config()
            },
            Error::input(Field::ExtraParams, InputError::ControlCharacter),
        ),
        (
            Config {
                authorize_params: "a=b c",
                ..config()
            },
            Error::input(Field::ExtraParams, InputError::InvalidCharacter),
        ),
        (
            Config {
                resource: "https://api\r\n",
                ..config()
            },
            Error::input(Field::Resource, InputError::ControlCharacter),
        ),
    ];
    for (c, e) in cases {
        assert_eq!(
            Sess::new(&preset::custom(), &c, 1).map(|_| ()),
            Err(e),
            "{c:?}"
        );
    }
    // A secret-looking parameter never shows in Debug.
    let c = Config {
        token_params: "api_secret=TOPSECRET",
        ..config()
    };
    assert!(!format!("{c:?}").contains("TOPSECRET"));
}

/// Without feature `extra-params` (the presets-only firmware build): extra
/// parameters are refused at configuration with a typed error that names
/// the feature, and `resource` / `audience` are still sent.
#[test]
#[cfg(not(feature = "extra-params"))]
fn without_the_feature_extra_parameters_are_refused_and_the_rest_is_sent() {
    for c in [
        Config {
            authorize_params: "",
            ..config()
        },
        Config {
            token_params: "",
            ..config()
        },
    ] {
        let err = Sess::new(&preset::custom(), &c, 1).map(|_| ()).unwrap_err();
        assert_eq!(
            err,
            Error::input(Field::ExtraParams, InputError::Unsupported)
        );
        assert!(err.to_string().contains("extra-params"), "{err}");
    }
    let plain = Config {
        token_params: "",
        authorize_params: "",
        ..config()
    };
    let form = Profile {
        client_auth: ClientAuth::Body,
        ..preset::custom()
    };
    let mut s = Sess::new(&form, &plain, 1).unwrap();
    assert_eq!(
        body_of(&mut s, T0),
        "grant_type=client_credentials&client_id=app&client_secret=s3cret&scope=api%3Aread\
         &resource=https%3A%2F%2Fapi.example%2F&audience=fsm-api"
    );
}
