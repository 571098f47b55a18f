//! Response-body parsing: golden vectors from the provider documents and the
//! RFCs, hostile input, and chunk invariance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use fieldauth::body::{
    parse_body, BodyParser, ErrorBody, ErrorCode, Expect, KeyTable, Parsed, Response,
    PATCHWORKS_KEYS, STANDARD_KEYS,
};
use fieldauth::{Error, JsonError, Member, ResponseError};

fn parse_with<'b>(
    expect: Expect,
    keys: KeyTable,
    status: u16,
    body: &'b [u8],
    storage: &mut [u8],
) -> Result<Parsed<'b>, Error> {
    parse_body(expect, status, keys, body, storage)
}

/// Parses `body` whole and in every chunk size up to 64, asserting identical
/// outcomes and stored text; returns the whole-body outcome and storage.
fn parse_all(
    expect: Expect,
    keys: KeyTable,
    status: u16,
    body: &[u8],
) -> (Result<Parsed<'_>, Error>, Vec<u8>) {
    let mut storage = vec![0u8; 2048];
    let whole = parse_with(expect, keys, status, body, &mut storage);
    // Under Miri (tests/miri.sh) a sample of the chunk sizes: 1, 22, 43, 64.
    for size in (1..=body.len().min(64)).step_by(if cfg!(miri) { 21 } else { 1 }) {
        let mut s2 = vec![0u8; 2048];
        let mut p = BodyParser::new(expect, status, keys);
        let mut r = Ok(());
        for c in body.chunks(size) {
            r = p.feed(&mut s2, c);
            if r.is_err() {
                break;
            }
        }
        let got = match r {
            Ok(()) => p.finish(&s2),
            Err(e) => Err(e),
        };
        match (&whole, &got) {
            (Ok(a), Ok(b)) => assert_eq!(a.view(&storage), b.view(&s2), "chunk size {size}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "chunk size {size}"),
            _ => panic!("chunk size {size}: {whole:?} vs {got:?}"),
        }
    }
    (whole, storage)
}

fn token(status: u16, body: &str) -> (Result<Parsed<'_>, Error>, Vec<u8>) {
    parse_all(Expect::Token, STANDARD_KEYS, status, body.as_bytes())
}

// ---- golden vectors: provider documents (../shared/seeds) ----

const FIELD_NATION_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

#[test]
fn field_nation_token_response() {
    let body = format!(
        "{{\n  \"access_token\": \"{FIELD_NATION_JWT}\",\n  \"token_type\": \"Bearer\",\n  \"expires_in\": 3600\n}}"
    );
    let (o, s) = token(200, &body);
    let t = o.unwrap().token(&s).unwrap();
    assert_eq!(t.access_token, FIELD_NATION_JWT);
    assert_eq!(t.token_type, Some("Bearer"));
    assert_eq!(t.expires_in, Some(3600));
    assert_eq!(t.refresh_token, None);
}

#[test]
fn field_nation_errors() {
    for status in [400, 401] {
        let (o, s) = token(
            status,
            "{\n  \"error\": \"invalid_client\",\n  \"error_description\": \"Client authentication failed\"\n}",
        );
        let e = o.unwrap().error(&s).unwrap();
        assert_eq!(e.status, status);
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert_eq!(e.description, Some("Client authentication failed"));
        assert_eq!(e.body, ErrorBody::Json);
    }
    let (o, s) = token(
        401,
        "{\n  \"error\": \"invalid_token\",\n  \"error_description\": \"The access token expired\"\n}",
    );
    let e = o.unwrap().error(&s).unwrap();
    assert_eq!(e.code, ErrorCode::InvalidToken);
    assert_eq!(e.description, Some("The access token expired"));
}

#[test]
fn autotask_token_and_error() {
    let (o, s) = token(
        200,
        "{\n  \"access_token\": \"eyJhbGciOiJIUzI1NiIsInR5cCI6...\",\n  \"token_type\": \"Bearer\",\n  \"expires_in\": 3600\n}",
    );
    let t = o.unwrap().token(&s).unwrap();
    assert_eq!(t.access_token, "eyJhbGciOiJIUzI1NiIsInR5cCI6...");
    assert_eq!(t.expires_in, Some(3600));
    let (o, s) = token(
        401,
        "{\n  \"error\": \"invalid_token\",\n  \"error_description\": \"The access token has expired\"\n}",
    );
    assert_eq!(o.unwrap().error(&s).unwrap().code, ErrorCode::InvalidToken);
}

#[test]
fn fentu_error_shape() {
    let (o, s) = token(
        401,
        "{\n  \"error\": \"unauthorized\",\n  \"error_description\": \"Invalid or expired token\",\n  \"status\": 401\n}",
    );
    let e = o.unwrap().error(&s).unwrap();
    assert_eq!(e.code, ErrorCode::Other);
    assert_eq!(e.error, Some("unauthorized"));
    assert_eq!(e.description, Some("Invalid or expired token"));
    assert_eq!(e.status_member, Some(401));
}

#[test]
fn patchworks_login_response() {
    let body = "{\n\"message\": \"You have successfully logged in.\",\n\"token\": \"eyJ0eXAiOiJKV......\",\n\"expires_in\": 86400\n}";
    let (o, s) = parse_all(Expect::Token, PATCHWORKS_KEYS, 200, body.as_bytes());
    let t = o.unwrap().token(&s).unwrap();
    assert_eq!(t.access_token, "eyJ0eXAiOiJKV......");
    assert_eq!(t.expires_in, Some(86400));
    assert_eq!(t.message, Some("You have successfully logged in."));
    assert_eq!(t.token_type, None);
    // With the standard names the token is not found.
    let (o, _) = token(200, body);
    assert_eq!(
        o,
        Err(Error::Response(ResponseError::MissingMember(
            Member::AccessToken
        )))
    );
}

// ---- golden vectors: RFCs ----

#[test]
fn rfc6749_examples() {
    // §4.4.3 / §5.1 use token_type "example": not Bearer, so it is refused
    // rather than sent as a Bearer token.
    let (o, _) = token(
        200,
        r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,"example_parameter":"example_value"}"#,
    );
    assert_eq!(o, Err(Error::Response(ResponseError::UnsupportedTokenType)));
    // §5.1 with a Bearer type.
    let (o, s) = token(
        200,
        r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"bearer","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#,
    );
    let t = o.unwrap().token(&s).unwrap();
    assert_eq!(t.refresh_token, Some("tGzv3JOkF0XG5Qx2TlKWIA"));
    // §5.2
    let (o, s) = token(400, "{\n  \"error\":\"invalid_request\"\n}");
    assert_eq!(
        o.unwrap().error(&s).unwrap().code,
        ErrorCode::InvalidRequest
    );
    for (code, want) in [
        ("invalid_client", ErrorCode::InvalidClient),
        ("invalid_grant", ErrorCode::InvalidGrant),
        ("unauthorized_client", ErrorCode::UnauthorizedClient),
        ("unsupported_grant_type", ErrorCode::UnsupportedGrantType),
        ("invalid_scope", ErrorCode::InvalidScope),
        ("insufficient_scope", ErrorCode::InsufficientScope),
        ("temporarily_unavailable", ErrorCode::TemporarilyUnavailable),
        ("server_error", ErrorCode::ServerError),
    ] {
        let body = format!(r#"{{"error":"{code}","error_uri":"https://e.example/x"}}"#);
        let (o, s) = token(400, &body);
        let e = o.unwrap().error(&s).unwrap();
        assert_eq!(e.code, want);
        assert_eq!(e.code.as_str(), code);
        assert_eq!(e.uri, Some("https://e.example/x"));
    }
}

#[test]
#[cfg(feature = "device-flow")]
fn rfc8628_device_authorization_and_poll_errors() {
    let body = r#"{
        "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://example.com/device",
        "verification_uri_complete":
            "https://example.com/device?user_code=WDJB-MJHT",
        "expires_in": 1800,
        "interval": 5
      }"#;
    let (o, s) = parse_all(
        Expect::DeviceAuthorization,
        STANDARD_KEYS,
        200,
        body.as_bytes(),
    );
    let Response::DeviceAuthorization(d) = o.unwrap().view(&s) else {
        panic!()
    };
    assert_eq!(d.device_code, "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS");
    assert_eq!(d.user_code, "WDJB-MJHT");
    assert_eq!(d.verification_uri, "https://example.com/device");
    assert_eq!(
        d.verification_uri_complete,
        Some("https://example.com/device?user_code=WDJB-MJHT")
    );
    assert_eq!((d.expires_in, d.interval), (1800, Some(5)));
    assert!(
        !format!("{d:?}").contains("GmRhmhcx"),
        "device_code is redacted"
    );
    // A response without expires_in is incomplete.
    let (o, _) = parse_all(
        Expect::DeviceAuthorization,
        STANDARD_KEYS,
        200,
        br#"{"device_code":"a","user_code":"b","verification_uri":"https://x"}"#,
    );
    assert_eq!(
        o,
        Err(Error::Response(ResponseError::MissingMember(
            Member::ExpiresIn
        )))
    );
    for (code, want) in [
        ("authorization_pending", ErrorCode::AuthorizationPending),
        ("slow_down", ErrorCode::SlowDown),
        ("access_denied", ErrorCode::AccessDenied),
        ("expired_token", ErrorCode::ExpiredToken),
    ] {
        let body = format!(r#"{{"error":"{code}"}}"#);
        let (o, s) = token(400, &body);
        assert_eq!(o.unwrap().error(&s).unwrap().code, want);
    }
}

#[test]
fn rfc7009_revocation() {
    for body in [&b""[..], b"{}", b"anything at all"] {
        let (o, s) = parse_all(Expect::Revocation, STANDARD_KEYS, 200, body);
        assert_eq!(o.unwrap().view(&s), Response::Revoked);
    }
    let (o, s) = parse_all(
        Expect::Revocation,
        STANDARD_KEYS,
        400,
        br#"{"error":"unsupported_token_type"}"#,
    );
    assert_eq!(
        o.unwrap().error(&s).unwrap().code,
        ErrorCode::UnsupportedTokenType
    );
    let (o, s) = parse_all(Expect::Revocation, STANDARD_KEYS, 503, b"");
    let e = o.unwrap().error(&s).unwrap();
    assert_eq!((e.status, e.body), (503, ErrorBody::Empty));
}

// ---- rules ----

#[test]
fn success_statuses_and_error_in_200() {
    let ok = r#"{"access_token":"abc","token_type":"Bearer","expires_in":60}"#;
    for status in [200, 201] {
        let (o, s) = token(status, ok);
        assert_eq!(o.unwrap().token(&s).unwrap().access_token, "abc");
    }
    let (o, s) = token(
        200,
        r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#,
    );
    let o = o.unwrap();
    assert!(!o.is_success());
    let e = o.error(&s).unwrap();
    assert_eq!((e.status, e.code), (200, ErrorCode::InvalidGrant));
    // A 3xx with a JSON body is not a token response.
    let (o, _) = token(302, ok);
    assert_eq!(o, Err(Error::Response(ResponseError::UnexpectedStatus)));
}

#[test]
fn expires_in_forms() {
    let cases: &[(&str, Result<Option<u32>, ResponseError>)] = &[
        ("3600", Ok(Some(3600))),
        ("\"3600\"", Ok(Some(3600))),
        ("null", Ok(None)),
        ("1", Ok(Some(1))),
        ("315360000", Ok(Some(315_360_000))),
        (
            "315360001",
            Err(ResponseError::InvalidNumber(Member::ExpiresIn)),
        ),
        ("0", Err(ResponseError::InvalidNumber(Member::ExpiresIn))),
        ("-1", Err(ResponseError::InvalidNumber(Member::ExpiresIn))),
        ("-0", Err(ResponseError::InvalidNumber(Member::ExpiresIn))),
        (
            "1e400",
            Err(ResponseError::InvalidNumber(Member::ExpiresIn)),
        ),
        (
            "3600.5",
            Err(ResponseError::InvalidNumber(Member::ExpiresIn)),
        ),
        (
            "99999999999999999999999999",
            Err(ResponseError::InvalidNumber(Member::ExpiresIn)),
        ),
        (
            "\"-1\"",
            Err(ResponseError::InvalidNumber(Member::ExpiresIn)),
        ),
        ("\"\"", Err(ResponseError::InvalidNumber(Member::ExpiresIn))),
        (
            "\"36 00\"",
            Err(ResponseError::InvalidNumber(Member::ExpiresIn)),
        ),
        (
            "\"99999999999999999999999\"",
            Err(ResponseError::InvalidNumber(Member::ExpiresIn)),
        ),
        ("true", Err(ResponseError::WrongType(Member::ExpiresIn))),
        ("[3600]", Err(ResponseError::WrongType(Member::ExpiresIn))),
    ];
    for (v, want) in cases {
        let body = format!(r#"{{"access_token":"t","expires_in":{v}}}"#);
        let (o, s) = token(200, &body);
        let got = o
            .map(|o| o.token(&s).unwrap().expires_in)
            .map_err(|e| match e {
                Error::Response(r) => r,
                other => panic!("{v}: {other:?}"),
            });
        assert_eq!(&got, want, "expires_in {v}");
    }
}

#[test]
fn duplicate_members_are_rejected() {
    let (o, _) = token(200, r#"{"access_token":"a","access_token":"b"}"#);
    assert_eq!(
        o,
        Err(Error::Response(ResponseError::DuplicateMember(
            Member::AccessToken
        )))
    );
    // Even when one copy is null, and when the key is escaped differently.
    let (o, _) = token(200, r#"{"access_token":"a","acc\u0065ss_token":null}"#);
    assert_eq!(
        o,
        Err(Error::Response(ResponseError::DuplicateMember(
            Member::AccessToken
        )))
    );
    // Duplicates of members fieldauth does not read are fine.
    let (o, s) = token(200, r#"{"access_token":"a","x":1,"x":2}"#);
    assert_eq!(o.unwrap().token(&s).unwrap().access_token, "a");
}

#[test]
fn escaped_keys_and_values_are_decoded() {
    let (o, s) = token(
        200,
        r#"{"acc\u0065ss_token":"ab\/cd","token_type":"B\u0065arer","scope":"r\u00e9ad \ud83d\ude00 \"q\" \\ \/","refresh_token":"x\/y"}"#,
    );
    let t = o.unwrap().token(&s).unwrap();
    assert_eq!(t.access_token, "ab/cd");
    assert_eq!(t.token_type, Some("Bearer"));
    assert_eq!(t.scope, Some("réad 😀 \"q\" \\ /"));
    assert_eq!(t.refresh_token, Some("x/y"));
}

#[test]
fn unknown_and_nested_members_are_skipped() {
    let (o, s) = token(
        200,
        r#"{"a":{"access_token":"nested","b":[1,{"c":[true,false,null,-1.5e+3,"\u0041"]}]},"access_token":"top","z":[],"y":{}}"#,
    );
    assert_eq!(o.unwrap().token(&s).unwrap().access_token, "top");
}

#[test]
fn informational_members_of_the_wrong_type_are_ignored() {
    let (o, s) = token(
        200,
        r#"{"access_token":"t","scope":["a","b"],"message":{"x":1},"status":"ok"}"#,
    );
    let t = o.unwrap().token(&s).unwrap();
    assert_eq!((t.scope, t.message), (None, None));
    for body in [
        r#"{"access_token":1}"#,
        r#"{"access_token":"t","refresh_token":{}}"#,
        r#"{"access_token":"t","token_type":true}"#,
        r#"{"access_token":"t","error":[]}"#,
        r#"{"access_token":"t","expires_in":"x","scope":1}"#,
    ] {
        let (o, _) = token(200, body);
        assert!(
            matches!(
                o,
                Err(Error::Response(
                    ResponseError::WrongType(_) | ResponseError::InvalidNumber(_)
                ))
            ),
            "{body}: {o:?}"
        );
    }
}

#[test]
fn tokens_must_be_printable_ascii() {
    for bad in [
        r#""a\r\nX-Injected: 1""#,
        r#""a\u0000b""#,
        r#""caf\u00e9""#,
        r#""""#,
    ] {
        let body = format!(r#"{{"access_token":{bad}}}"#);
        let (o, _) = token(200, &body);
        assert!(
            matches!(
                o,
                Err(Error::Response(
                    ResponseError::InvalidCharacters(Member::AccessToken)
                        | ResponseError::MissingMember(Member::AccessToken)
                ))
            ),
            "{bad}: {o:?}"
        );
    }
    let (o, _) = token(200, r#"{"access_token":"ok","refresh_token":"a\nb"}"#);
    assert_eq!(
        o,
        Err(Error::Response(ResponseError::InvalidCharacters(
            Member::RefreshToken
        )))
    );
}

#[test]
fn non_json_error_bodies_keep_the_status() {
    let html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    let (o, s) = parse_all(Expect::Token, STANDARD_KEYS, 502, html);
    let e = o.unwrap().error(&s).unwrap();
    assert_eq!(
        (e.status, e.body, e.code),
        (502, ErrorBody::NotJson, ErrorCode::None)
    );
    let (o, s) = parse_all(Expect::Token, STANDARD_KEYS, 401, b"");
    assert_eq!(o.unwrap().error(&s).unwrap().body, ErrorBody::Empty);
    let (o, s) = parse_all(
        Expect::Token,
        STANDARD_KEYS,
        500,
        br#"{"error":"server_error","#,
    );
    let e = o.unwrap().error(&s).unwrap();
    assert!(matches!(
        e.body,
        ErrorBody::Malformed(Error::Json {
            kind: JsonError::Truncated,
            ..
        })
    ));
    // The same bodies with a success status are errors.
    assert_eq!(
        parse_all(Expect::Token, STANDARD_KEYS, 200, html).0,
        Err(Error::Response(ResponseError::NotJson))
    );
    assert_eq!(
        parse_all(Expect::Token, STANDARD_KEYS, 200, b"").0,
        Err(Error::Response(ResponseError::NotJson))
    );
}

#[test]
fn truncated_at_every_byte() {
    let body = format!(
        r#"{{"access_token":"{FIELD_NATION_JWT}","token_type":"Bearer","expires_in":3600,"refresh_token":"r\u00e9","scope":"api"}}"#
    );
    let b = body.as_bytes();
    // Under Miri (tests/miri.sh) every 13th cut and the last.
    for cut in (0..b.len()).filter(|&c| !cfg!(miri) || c % 13 == 0 || c + 1 == b.len()) {
        let mut storage = [0u8; 1024];
        let r = parse_with(Expect::Token, STANDARD_KEYS, 200, &b[..cut], &mut storage);
        match r {
            Err(Error::Json {
                kind: JsonError::Truncated,
                ..
            }) => assert!(cut > 0),
            Err(Error::Response(ResponseError::NotJson)) => assert_eq!(cut, 0),
            other => panic!("cut at {cut}: {other:?}"),
        }
        // With an error status, a truncated body still yields the status.
        let r = parse_with(Expect::Token, STANDARD_KEYS, 503, &b[..cut], &mut storage).unwrap();
        assert_eq!(r.status(), 503);
        assert!(!r.is_success());
    }
}

#[test]
fn invalid_utf8_everywhere() {
    for bad in [
        &b"\xff"[..],
        b"\xc3",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\x80",
    ] {
        for template in [
            &b"{\"access_token\":\"a#b\"}"[..],
            b"{\"k#\":1,\"access_token\":\"a\"}",
            b"{\"x\":[\"#\"],\"access_token\":\"a\"}",
        ] {
            let pos = template.iter().position(|&c| c == b'#').unwrap();
            let mut body = template[..pos].to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(&template[pos + 1..]);
            let (o, _) = parse_all(Expect::Token, STANDARD_KEYS, 200, &body);
            assert!(
                matches!(
                    o,
                    Err(Error::Json {
                        kind: JsonError::InvalidUtf8,
                        ..
                    })
                ),
                "{body:?}: {o:?}"
            );
        }
    }
}

#[test]
fn nesting_ten_thousand_deep() {
    // Under Miri (tests/miri.sh) a thousand deep: still far past the limit.
    let deep = if cfg!(miri) { 1_000 } else { 10_000 };
    let mut body = b"{\"x\":".to_vec();
    body.extend(std::iter::repeat_n(b'[', deep));
    body.extend(std::iter::repeat_n(b']', deep));
    body.push(b'}');
    let mut storage = [0u8; 64];
    let r = parse_with(Expect::Token, STANDARD_KEYS, 200, &body, &mut storage);
    assert!(matches!(
        r,
        Err(Error::Json {
            kind: JsonError::TooDeep,
            ..
        })
    ));
    let mut obj = b"{\"x\":".to_vec();
    for _ in 0..deep {
        obj.extend_from_slice(b"{\"a\":");
    }
    let r = parse_with(Expect::Token, STANDARD_KEYS, 200, &obj, &mut storage);
    assert!(matches!(
        r,
        Err(Error::Json {
            kind: JsonError::TooDeep,
            ..
        })
    ));
}

#[test]
fn tokens_larger_than_the_capacity() {
    let big = "A".repeat(3000);
    let body = format!(
        r#"{{"access_token":"{big}","refresh_token":"{}","token_type":"Bearer"}}"#,
        "R".repeat(100)
    );
    let mut storage = [0u8; 1024];
    let r = parse_with(
        Expect::Token,
        STANDARD_KEYS,
        200,
        body.as_bytes(),
        &mut storage,
    );
    assert_eq!(
        r,
        Err(Error::CapacityExceeded {
            needed: 3000 + 100 + 6,
            capacity: 1024
        })
    );
    // Exactly enough storage succeeds.
    let mut storage = vec![0u8; 3106];
    let o = parse_with(
        Expect::Token,
        STANDARD_KEYS,
        200,
        body.as_bytes(),
        &mut storage,
    )
    .unwrap();
    assert_eq!(o.token(&storage).unwrap().access_token.len(), 3000);
}

#[test]
fn feed_after_finish_and_after_error() {
    let mut storage = [0u8; 64];
    let mut p = BodyParser::new(Expect::Token, 200, STANDARD_KEYS);
    p.feed(&mut storage, br#"{"access_token":"a"}"#).unwrap();
    p.finish(&storage).unwrap();
    assert_eq!(p.feed(&mut storage, b" "), Err(Error::WrongState));
    assert_eq!(p.finish(&storage), Err(Error::WrongState));
    let mut p = BodyParser::new(Expect::Token, 200, STANDARD_KEYS);
    assert!(p.feed(&mut storage, b"{]").is_err());
    assert_eq!(p.feed(&mut storage, b"}"), Err(Error::WrongState));
}

#[test]
fn debug_output_redacts_tokens() {
    let (o, s) = token(
        200,
        r#"{"access_token":"SECRETACCESS","refresh_token":"SECRETREFRESH","expires_in":5}"#,
    );
    let t = o.unwrap().token(&s).unwrap();
    let dbg = format!("{t:?} {:?}", o.unwrap());
    assert!(!dbg.contains("SECRET"), "{dbg}");
    assert!(dbg.contains("12 bytes"));
}

// ---- property tests: chunk invariance and agreement with serde_json ----

mod props {
    use super::*;
    use proptest::prelude::*;

    fn json_string() -> impl Strategy<Value = String> {
        // Printable ASCII plus a few multi-byte characters, quotes and backslashes.
        proptest::collection::vec(
            prop_oneof![
                8 => (0x20u8..0x7f).prop_map(char::from),
                1 => Just('é'),
                1 => Just('😀'),
                1 => Just('"'),
                1 => Just('\\'),
                1 => Just('/'),
            ],
            0..40,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn token_string() -> impl Strategy<Value = String> {
        proptest::collection::vec((0x21u8..0x7f).prop_map(char::from), 1..200)
            .prop_map(|v| v.into_iter().collect())
    }

    /// Encodes `s` as a JSON string, escaping some characters at random.
    fn encode(s: &str, escape_mask: u64) -> String {
        let mut out = String::from("\"");
        for (i, c) in s.chars().enumerate() {
            let escape = escape_mask >> (i % 64) & 1 == 1;
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' if escape => out.push_str("\\/"),
                c if escape => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    prop_compose! {
        fn response()(
            access in token_string(),
            refresh in proptest::option::of(token_string()),
            scope in proptest::option::of(json_string()),
            expires in proptest::option::of(1u32..1_000_000),
            expires_as_string in any::<bool>(),
            junk in proptest::collection::vec((json_string(), json_string()), 0..4),
            masks in any::<[u64; 4]>(),
            order in Just(()).prop_perturb(|_, mut rng| rng.next_u64()),
            ws in prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t")],
        ) -> (String, String, Option<String>, Option<String>, Option<u32>) {
            let mut members: Vec<String> = Vec::new();
            members.push(format!("\"access_token\":{ws}{}", encode(&access, masks[0])));
            members.push(format!("\"token_type\":{ws}\"Bearer\""));
            if let Some(r) = &refresh { members.push(format!("\"refresh_token\":{}", encode(r, masks[1]))); }
            if let Some(s) = &scope { members.push(format!("\"scope\":{}", encode(s, masks[2]))); }
            if let Some(e) = expires {
                members.push(if expires_as_string { format!("\"expires_in\":\"{e}\"") } else { format!("\"expires_in\":{e}") });
            }
            for (i, (k, v)) in junk.iter().enumerate() {
                let ek = encode(k, masks[3]);
                let ek = &ek[1..ek.len() - 1];
                members.push(format!("\"x{i}{ek}\":{ws}{{\"n\":[{},1.5e3,null,{{}}]}}", encode(v, masks[3])));
            }
            // Deterministic shuffle.
            let mut o = order;
            for i in (1..members.len()).rev() {
                let j = (o % (i as u64 + 1)) as usize;
                o = o.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
                members.swap(i, j);
            }
            let body = format!("{ws}{{{ws}{}{ws}}}{ws}", members.join(&format!(",{ws}")));
            (body, access, refresh, scope, expires)
        }
    }

    proptest! {
        // Under Miri (tests/miri.sh) one case: each is ~10,000x slower
        // there. And proptest's XorShift generator instead of ChaCha20: it
        // seeds a new generator for every character it draws, and ChaCha20
        // (emulated SSE2) was two thirds of the time there.
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 1 } else { 256 },
            rng_algorithm: if cfg!(miri) {
                proptest::test_runner::RngAlgorithm::XorShift
            } else {
                ProptestConfig::default().rng_algorithm
            },
            ..ProptestConfig::default()
        })]

        #[test]
        fn chunking_never_changes_the_result(
            (body, access, refresh, scope, expires) in response(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            // serde_json agrees that this is the JSON we meant.
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            prop_assert_eq!(v["access_token"].as_str(), Some(access.as_str()));

            let bytes = body.as_bytes();
            let mut whole = vec![0u8; 4096];
            let o = parse_with(Expect::Token, STANDARD_KEYS, 200, bytes, &mut whole).unwrap();
            let t = o.token(&whole).unwrap();
            prop_assert_eq!(t.access_token, access.as_str());
            prop_assert_eq!(t.refresh_token, refresh.as_deref());
            prop_assert_eq!(t.scope, scope.as_deref());
            prop_assert_eq!(t.expires_in, expires);

            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut storage = vec![0u8; 4096];
            let mut p = BodyParser::new(Expect::Token, 200, STANDARD_KEYS);
            let mut last = 0;
            for &c in points.iter().chain(std::iter::once(&bytes.len())) {
                p.feed(&mut storage, &bytes[last..c]).unwrap();
                last = c;
            }
            let o2 = p.finish(&storage).unwrap();
            prop_assert_eq!(o.view(&whole), o2.view(&storage));

            // One byte at a time.
            let mut storage = vec![0u8; 4096];
            let mut p = BodyParser::new(Expect::Token, 200, STANDARD_KEYS);
            for b in bytes.chunks(1) {
                p.feed(&mut storage, b).unwrap();
            }
            let o3 = p.finish(&storage).unwrap();
            prop_assert_eq!(o.view(&whole), o3.view(&storage));
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), status in 100u16..600) {
            let mut storage = [0u8; 128];
            let _ = parse_with(Expect::Token, STANDARD_KEYS, status, &body, &mut storage);
            #[cfg(feature = "device-flow")]
            let _ = parse_with(Expect::DeviceAuthorization, PATCHWORKS_KEYS, status, &body, &mut storage);
        }

        #[test]
        fn agrees_with_serde_json_on_validity(body in "[ {}\\[\\]\":,a-c0-9.eE+\\-\\\\u]{0,40}") {
            let ours = {
                let mut storage = [0u8; 256];
                parse_with(Expect::Revocation, STANDARD_KEYS, 400, body.as_bytes(), &mut storage)
                    .map(|o| o.error(&storage).map(|e| e.body))
            };
            let theirs: Result<serde_json::Value, _> = serde_json::from_str(&body);
            let ours_valid = matches!(ours, Ok(Some(ErrorBody::Json)));
            let theirs_valid = matches!(theirs, Ok(serde_json::Value::Object(_)));
            prop_assert_eq!(ours_valid, theirs_valid, "{:?} ours={:?}", body, ours);
        }
    }
}
