//! `fieldauth::Error` on a host: it is a `core::error::Error` (so
//! `std::error::Error`: `?` into `Box<dyn Error>`, `downcast_ref`, error
//! crates), its `Display` is the static sentence of `Error::message` plus
//! the numbers and field names that locate the problem, and no `Display`
//! of an error caused by secret-bearing input contains any of that input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use fieldauth::body::{parse_body, Expect, STANDARD_KEYS};
use fieldauth::http::HeadParser;
use fieldauth::preset;
use fieldauth::session::{Config, Session};
use fieldauth::url::Url;
use fieldauth::{
    Error, Field, HttpError, InputError, JsonError, Member, ResponseError, SnapshotError,
};

/// Compiles only if `E` implements the trait from `core` (no `std` needed:
/// the impl is unconditional).
fn is_core_error<E: core::error::Error + Send + Sync + 'static>(_: &E) {}

#[test]
fn error_is_a_core_and_std_error() {
    let e = Error::input(Field::Url, InputError::InvalidUrl);
    is_core_error(&e);

    // `?` converts it into the usual boxed error, and it comes back out.
    fn parse(url: &str) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Url::parse(url)?.port())
    }
    assert_eq!(parse("https://example.com").unwrap(), 443);
    let boxed = parse("ftp://example.com").unwrap_err();
    assert_eq!(boxed.downcast_ref::<Error>(), Some(&e));
    assert!(boxed.source().is_none(), "no wrapped cause");
    assert_eq!(
        boxed.to_string(),
        "invalid endpoint URL: expected http(s)://host[:port]/path (field: url)"
    );
}

#[test]
fn display_is_the_message_plus_what_locates_the_problem() {
    let cases: [(Error, &str); 12] = [
        (Error::buffer_too_small(600), " (needed 600 bytes)"),
        (
            Error::capacity_exceeded(4096, 3072),
            " (needed 4096 bytes, capacity 3072)",
        ),
        (
            Error::capacity_exceeded(usize::MAX, 1),
            " (needed 4294967295 bytes, capacity 1)",
        ),
        (
            Error::input(Field::ClientSecret, InputError::ControlCharacter),
            " (field: client_secret)",
        ),
        (Error::Http(HttpError::ConflictingLength), ""),
        (
            Error::Json {
                kind: JsonError::Syntax,
                offset: 17,
            },
            " (at byte 17)",
        ),
        (
            Error::Response(ResponseError::MissingMember(Member::AccessToken)),
            " (member: access_token)",
        ),
        (
            Error::Response(ResponseError::InvalidCharacters(Member::RefreshToken)),
            " (member: refresh_token)",
        ),
        (Error::Response(ResponseError::UnsupportedTokenType), ""),
        (Error::WrongState, ""),
        (Error::Snapshot(SnapshotError::Corrupt), ""),
        (Error::Transport, ""),
    ];
    for (e, detail) in cases {
        let shown = e.to_string();
        assert_eq!(shown, format!("{}{detail}", e.message()), "{e:?}");
        assert!(
            !e.message().is_empty() && !shown.contains('\n'),
            "{e:?}: {shown:?}"
        );
    }
    // Field names are the ones the protocol uses, not Rust's Debug names.
    assert!(Error::input(Field::ClientSecret, InputError::Empty)
        .to_string()
        .ends_with("(field: client_secret)"));
}

/// Real failures on input that carries secrets: the secret never shows.
#[test]
fn display_never_contains_the_input_that_caused_it() {
    const SECRET: &str = "s3cr3t-VALUE";
    let mut shown = Vec::new();

    // A client secret with a header-injection attempt.
    let bad_secret = format!("{SECRET}\r\nX-Injected: 1");
    let config = Config {
        base_url: "https://webservices.autotask.net",
        client_id: "demo-client",
        client_secret: &bad_secret,
        ..Config::default()
    };
    let e = Session::<3072>::new(&preset::AUTOTASK, &config, 1).unwrap_err();
    assert_eq!(
        e,
        Error::input(Field::ClientSecret, InputError::ControlCharacter)
    );
    shown.push(e.to_string());

    // A URL with the secret as userinfo.
    let url = format!("https://user:{SECRET}@example.com/token");
    shown.push(Url::parse(&url).unwrap_err().to_string());

    // Token responses: a token with a control character, a duplicated
    // token, broken JSON right after a token, a token of the wrong type.
    let bodies = [
        format!(r#"{{"access_token":"{SECRET}\u0001","token_type":"Bearer"}}"#),
        format!(r#"{{"access_token":"{SECRET}","access_token":"{SECRET}2"}}"#),
        format!(r#"{{"access_token":"{SECRET}",,"expires_in":3600}}"#),
        format!(r#"{{"access_token":["{SECRET}"]}}"#),
        format!(r#"{{"access_token":"{SECRET}","expires_in":-1}}"#),
    ];
    for body in &bodies {
        let mut storage = [0u8; 256];
        let e = parse_body(
            Expect::Token,
            200,
            STANDARD_KEYS,
            body.as_bytes(),
            &mut storage,
        )
        .map(|_| ())
        .unwrap_err();
        shown.push(e.to_string());
    }

    // A response head with the secret in a malformed header line.
    let mut head: HeadParser = HeadParser::new();
    let raw = format!("HTTP/1.1 200 OK\r\nX-Token {SECRET}\r\n\r\n");
    shown.push(head.feed(raw.as_bytes()).unwrap_err().to_string());

    assert_eq!(shown.len(), 8);
    for s in &shown {
        assert!(
            !s.contains(SECRET) && !s.contains("s3cr3t"),
            "secret in {s:?}"
        );
        assert!(!s.contains("X-Injected"), "input in {s:?}");
    }
}
