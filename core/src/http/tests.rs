use super::*;
extern crate std;
use std::string::{String, ToString};
use std::vec::Vec;

/// Everything observable after a parse, owned.
#[derive(Clone, Debug, PartialEq)]
struct Out {
    head: ResponseHead,
    /// Bytes of the input that belong to the head.
    consumed: usize,
    bearer: Option<Bearer>,
}

#[derive(Clone, Debug, PartialEq)]
struct Bearer {
    code: ErrorCode,
    error: Option<String>,
    description: Option<String>,
    uri: Option<String>,
    scope: Option<String>,
    realm: Option<String>,
}

const TRUNCATED: Error = Error::Transport;

/// Feeds `input` in pieces; `Err(TRUNCATED)` if the head never completes.
fn feed_pieces<'a, const N: usize>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<Out> {
    let mut p = HeadParser::<N>::new();
    let mut off = 0;
    for piece in pieces {
        if let Some(n) = p.feed(piece)? {
            assert!(n >= 1 && n <= piece.len());
            // Complete: nothing more is accepted.
            assert_eq!(p.feed(b"x"), Err(Error::WrongState));
            let own = |s: Option<&str>| s.map(ToString::to_string);
            let bearer = p.bearer().map(|b| Bearer {
                code: b.code,
                error: own(b.error),
                description: own(b.error_description),
                uri: own(b.error_uri),
                scope: own(b.scope),
                realm: own(b.realm),
            });
            let head = *p.head().unwrap();
            assert_eq!(head.bearer, bearer.as_ref().map(|b| b.code));
            return Ok(Out {
                head,
                consumed: off + n,
                bearer,
            });
        }
        assert!(p.head().is_none());
        off += piece.len();
    }
    Err(TRUNCATED)
}

/// Parses with buffer size `N`, checking that every way of splitting the
/// input gives the same result; returns it.
fn parse_n<const N: usize>(input: &[u8]) -> Result<Out> {
    let whole = feed_pieces::<N>([input]);
    if cfg!(miri) {
        // Under Miri (tests/miri.sh) at most one other way besides the
        // whole, by the input's length: byte by byte with an empty piece
        // before each byte (every split point and empty pieces in one
        // parse), three pieces and an empty one, or none (every split is
        // checked natively, and by the head_framing fuzz target).
        match input.len() % 4 {
            0 => {
                let pieces = input.chunks(1).flat_map(|b| [&[][..], b]);
                assert_eq!(feed_pieces::<N>(pieces), whole, "byte by byte");
            }
            2 => {
                let (a, rest) = input.split_at(input.len() / 3);
                let (b, c) = rest.split_at(rest.len() / 2);
                assert_eq!(feed_pieces::<N>([a, &[], b, c]), whole, "three pieces");
            }
            _ => {}
        }
        return whole;
    }
    let steps: Vec<usize> = if input.len() <= 1500 {
        (1..=input.len()).collect()
    } else {
        [1, 2, 3, 5, 7, 16, 64, 128, 1000].to_vec()
    };
    for step in steps {
        assert_eq!(feed_pieces::<N>(input.chunks(step)), whole, "step {step}");
    }
    if input.len() <= 1500 {
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(feed_pieces::<N>([a, b]), whole, "split {at}");
        }
        // Empty pieces change nothing.
        let mut pieces: Vec<&[u8]> = Vec::new();
        for c in input.chunks(3) {
            pieces.push(&[]);
            pieces.push(c);
        }
        assert_eq!(feed_pieces::<N>(pieces), whole);
    }
    whole
}

fn parse(input: &str) -> Result<Out> {
    parse_n::<256>(input.as_bytes())
}

fn head(input: &str) -> ResponseHead {
    parse(input).unwrap().head
}

fn bearer(input: &str) -> Bearer {
    parse(input).unwrap().bearer.unwrap()
}

fn http(e: HttpError) -> Result<Out> {
    Err(Error::Http(e))
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// A 200 head with the given field lines.
fn with(fields: &str) -> String {
    std::format!("HTTP/1.1 200 OK\r\n{fields}\r\n")
}

#[test]
fn http_minimal_heads_and_body_offset() {
    let input = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    let out = parse(input).unwrap();
    assert_eq!(out.consumed, input.len() - 2);
    assert_eq!(out.head.status, 200);
    assert_eq!(out.head.content_length, Some(2));
    assert!(!out.head.chunked && !out.head.connection_close && !out.head.content_type_json);
    assert_eq!(out.head.malformed, 0);
    assert!(out.head.is_success());
    assert_eq!(out.head.framing(), BodyFraming::Length(2));

    let h = head("HTTP/1.1 204\r\n\r\n");
    assert_eq!((h.status, h.framing()), (204, BodyFraming::Length(0)));
    let h = head("HTTP/1.1 500 \r\n\r\n");
    assert_eq!(h.status, 500);
    assert!(!h.is_success());
    let h = head("HTTP/1.1 404 Not \t Found \u{e9}\r\n\r\n");
    assert_eq!(h.status, 404);
    assert_eq!(h.framing(), BodyFraming::Close);
}

#[test]
fn http_bare_lf_line_endings() {
    let crlf = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\
        Content-Length: 0\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nBODY";
    let lf = crlf.replace("\r\n", "\n");
    let mixed = crlf.replacen("\r\n", "\n", 2);
    let a = parse(crlf).unwrap();
    let b = parse(&lf).unwrap();
    let c = parse(&mixed).unwrap();
    assert_eq!((a.head, &a.bearer), (b.head, &b.bearer));
    assert_eq!((a.head, &a.bearer), (c.head, &c.bearer));
    assert_eq!(&lf[b.consumed..], "BODY");
    assert_eq!(&mixed[c.consumed..], "BODY");
}

#[test]
fn http_status_line_variants() {
    assert_eq!(head("HTTP/1.0 200 OK\r\n\r\n").status, 200);
    for s in [100, 199, 200, 301, 418, 599] {
        let h = parse(&std::format!(
            "HTTP/1.1 {s} X\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
        ));
        assert_eq!(h.unwrap().head.status, if s < 200 { 200 } else { s });
    }
    for bad in [
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 000\r\n\r\n",
        "HTTP/1.1 600 High\r\n\r\n",
        "HTTP/1.1 999 High\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1\t200 OK\r\n\r\n",
        " HTTP/1.1 200 OK\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1\r\n\r\n",
        "HTTP/1.1 200 O\rK\r\n\r\n",
        "HTTP/1.1 200 O\0K\r\n\r\n",
        "HTTP/1.1 200 O\x1bK\r\n\r\n",
        "HTTP/1.1 200 OK\x7f\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "\0",
    ] {
        assert_eq!(parse(bad), http(HttpError::StatusLine), "{bad:?}");
    }
    assert_eq!(
        parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"),
        Err(Error::Response(ResponseError::UnexpectedStatus))
    );
}

#[test]
fn http_interim_responses_are_skipped() {
    let input = "HTTP/1.1 100 Continue\r\n\r\n\
        HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\
        Content-Length: 99\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    let out = parse(input).unwrap();
    assert_eq!(out.head.status, 200);
    assert_eq!(out.head.content_length, Some(7));
    assert_eq!(out.bearer, None);
    assert_eq!(&input[out.consumed..], "{\"a\":1}");
    // An interim head alone is not a complete response.
    assert_eq!(parse("HTTP/1.1 100 Continue\r\n\r\n"), Err(TRUNCATED));
    // Fields of an interim head are still checked for syntax.
    assert_eq!(
        parse("HTTP/1.1 100 Continue\r\nBad Name: x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
        http(HttpError::HeaderLine)
    );
    // A huge WWW-Authenticate in an interim head is not buffered.
    let big = "a".repeat(1000);
    let input = std::format!(
        "HTTP/1.1 100 Continue\r\nWWW-Authenticate: Basic realm=\"{big}\"\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    );
    assert_eq!(parse(&input).unwrap().head.status, 204);
}

#[test]
fn http_header_line_errors() {
    for bad in [
        "X-Foo: a\rb\r\n",
        "X-Foo\r: a\r\n",
        "X-Foo: a\r\r\n",
        "X-Foo: a\r\n folded\r\n",
        "X-Foo: a\r\n\tfolded\r\n",
        " X-Foo: a\r\n",
        "X-Foo: a\0b\r\n",
        "X-Foo: a\x01\r\n",
        "X-Foo: \x7f\r\n",
        "X-Foo a\r\n",
        "X-Foo\r\n",
        "Content-Length : 5\r\n",
        "Content-Length\t: 5\r\n",
        ": empty name\r\n",
        "X(Foo): a\r\n",
        "X/Foo: a\r\n",
        "X\u{e9}: a\r\n",
        "X-Foo: a\rContent-Length: 5\r\n",
        "X-Foo: a\r\rContent-Length: 5\r\n",
        "Set-Cookie: a=b\0\r\nContent-Length: 5\r\n",
    ] {
        assert_eq!(parse(&with(bad)), http(HttpError::HeaderLine), "{bad:?}");
    }
    // A bare CR at the very end of the head.
    assert_eq!(parse("HTTP/1.1 200 OK\r\n\rX"), http(HttpError::HeaderLine));
    // Header injection through a value: the CR ends nothing, it is an error.
    assert_eq!(
        parse("HTTP/1.1 200 OK\r\nLocation: /a\rTransfer-Encoding: chunked\r\n\r\n"),
        http(HttpError::HeaderLine)
    );
    // obs-text and HTAB in values are fine.
    assert_eq!(head(&with("X-Foo: \t\u{e9}t\u{e9}\t\r\n")).status, 200);
}

#[test]
fn http_truncated_heads_never_complete() {
    let full = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\", error=\"invalid_token\"\r\n\
        Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 5\r\n\r\n";
    assert!(parse(full).is_ok());
    // Under Miri (tests/miri.sh) every 17th prefix and the longest.
    for i in (0..full.len()).filter(|&i| !cfg!(miri) || i % 17 == 0 || i + 1 == full.len()) {
        assert_eq!(parse_n::<256>(&full.as_bytes()[..i]), Err(TRUNCATED), "{i}");
    }
}

#[test]
fn http_fentu_rate_limit_golden() {
    let input = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
        X-RateLimit-Limit: 1000\r\nX-RateLimit-Remaining: 999\r\nX-RateLimit-Reset: 1640995200\r\n\
        Content-Length: 2\r\n\r\n{}";
    let h = head(input);
    assert!(h.content_type_json);
    assert_eq!(
        h.x_rate_limit,
        XRateLimit {
            limit: Some(1000),
            remaining: Some(999),
            reset: Some(1_640_995_200),
        }
    );
    // 2022-01-01T00:00:00Z
    let new_year = parse_http_date(b"Sat, 01 Jan 2022 00:00:00 GMT");
    assert_eq!(new_year, Some(1_640_995_200));
    for mode in [ResetMode::Auto, ResetMode::EpochSeconds] {
        assert_eq!(h.x_rate_limit.reset_at(mode, 1_640_990_000), new_year);
    }
    #[cfg(feature = "ietf-ratelimit")]
    assert_eq!(h.rate_limit, RateLimit::default());
    assert_eq!(h.malformed, 0);

    // Rate limited: 429 with the reset and no quota left.
    let h = head(
        "HTTP/1.1 429 Too Many Requests\r\nx-ratelimit-limit: 1000\r\n\
        X-RATELIMIT-REMAINING: 0\r\nX-RateLimit-Reset: 1640995200\r\n\r\n",
    );
    assert_eq!(h.status, 429);
    assert_eq!(h.x_rate_limit.remaining, Some(0));
    assert_eq!(h.x_rate_limit.limit, Some(1000));

    // The X-Rate-Limit-* spelling.
    let h = head(&with(
        "X-Rate-Limit-Limit: 600\r\nX-Rate-Limit-Remaining: 598\r\nX-Rate-Limit-Reset: 42\r\n",
    ));
    assert_eq!(
        h.x_rate_limit,
        XRateLimit {
            limit: Some(600),
            remaining: Some(598),
            reset: Some(42),
        }
    );
    assert_eq!(h.x_rate_limit.reset_at(ResetMode::Auto, 1000), Some(1042));
}

#[test]
fn http_reset_mode() {
    let now = 1_700_000_000;
    let cases = [
        (ResetMode::Auto, 1_640_995_200, Some(1_640_995_200)),
        (ResetMode::Auto, 1_640_995_200_123, Some(1_640_995_200)),
        (ResetMode::Auto, 1_000_000_000, Some(1_000_000_000)),
        (ResetMode::Auto, 999_999_999, Some(now + 999_999_999)),
        (ResetMode::Auto, 60, Some(now + 60)),
        (ResetMode::Auto, 0, Some(now)),
        (ResetMode::Auto, 253_402_300_799, Some(253_402_300_799)),
        // Epoch seconds past the year 9999.
        (ResetMode::Auto, 999_999_999_999, None),
        (ResetMode::Auto, u64::MAX, None),
        (ResetMode::EpochSeconds, 60, Some(60)),
        (
            ResetMode::EpochSeconds,
            253_402_300_799,
            Some(253_402_300_799),
        ),
        (ResetMode::EpochSeconds, 253_402_300_800, None),
        (
            ResetMode::DeltaSeconds,
            1_640_995_200,
            Some(now + 1_640_995_200),
        ),
        (ResetMode::DeltaSeconds, 60, Some(now + 60)),
        (ResetMode::DeltaSeconds, u64::MAX, None),
    ];
    for (mode, raw, want) in cases {
        assert_eq!(mode.resolve(raw, now), want, "{mode:?} {raw}");
    }
    assert_eq!(ResetMode::DeltaSeconds.resolve(1, u64::MAX), None);
    assert_eq!(ResetMode::default(), ResetMode::Auto);
    assert_eq!(XRateLimit::default().reset_at(ResetMode::Auto, now), None);
}

#[test]
fn http_retry_after() {
    let h = head("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\n\r\n");
    assert_eq!(h.retry_after, Some(RetryAfter::Delay(120)));
    assert_eq!(h.retry_after.unwrap().delay_from(12345), 120);

    let h = head(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\n",
    );
    assert_eq!(h.retry_after, Some(RetryAfter::At(946_684_799)));

    let h = head(
        "HTTP/1.1 503 Service Unavailable\r\nDate: Fri, 31 Dec 1999 23:58:59 GMT\r\n\
        Retry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\n",
    );
    assert_eq!(h.status, 503);
    assert_eq!(h.date, Some(946_684_739));
    assert_eq!(h.retry_after.unwrap().delay_from(h.date.unwrap()), 60);
    assert_eq!(RetryAfter::At(10).delay_from(20), 0);

    let h = head("HTTP/1.1 503 Service Unavailable\r\nRetry-After:   3600  \r\n\r\n");
    assert_eq!(h.retry_after, Some(RetryAfter::Delay(3600)));
    // Obsolete date formats work too (or are malformed without the feature).
    for d in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
        let h = head(&with(&std::format!("Retry-After: {d}\r\n")));
        let want = cfg!(feature = "obsolete-dates").then_some(RetryAfter::At(784_111_777));
        assert_eq!(h.retry_after, want);
    }
}

#[test]
#[allow(clippy::single_element_loop)] // one element without `obsolete-dates`
fn http_date_field() {
    for d in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        #[cfg(feature = "obsolete-dates")]
        "Sunday, 06-Nov-94 08:49:37 GMT",
        #[cfg(feature = "obsolete-dates")]
        "Sun Nov  6 08:49:37 1994",
    ] {
        let h = head(&with(&std::format!("Date: {d}\r\n")));
        assert_eq!(h.date, Some(784_111_777));
        assert_eq!(h.malformed, 0);
    }
    // Repeated: the last line wins.
    let h = head(&with(
        "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nDATE: Sat, 01 Jan 2022 00:00:00 GMT\r\n",
    ));
    assert_eq!(h.date, Some(1_640_995_200));
}

#[test]
fn http_malformed_informational_fields_are_flagged() {
    let cases: &[(&str, u8)] = &[
        ("Date: yesterday", ResponseHead::MALFORMED_DATE),
        (
            "Date: Sun, 31 Feb 1994 08:49:37 GMT",
            ResponseHead::MALFORMED_DATE,
        ),
        ("Date:", ResponseHead::MALFORMED_DATE),
        ("Retry-After: -1", ResponseHead::MALFORMED_RETRY_AFTER),
        ("Retry-After: 1.5", ResponseHead::MALFORMED_RETRY_AFTER),
        (
            "Retry-After: 4294967296",
            ResponseHead::MALFORMED_RETRY_AFTER,
        ),
        (
            "Retry-After: 99999999999999999999",
            ResponseHead::MALFORMED_RETRY_AFTER,
        ),
        (
            "X-RateLimit-Remaining: 999999999999999999999999999999",
            ResponseHead::MALFORMED_X_RATE_LIMIT,
        ),
        (
            "X-RateLimit-Limit: 10.5",
            ResponseHead::MALFORMED_X_RATE_LIMIT,
        ),
        (
            "X-RateLimit-Limit: 4294967296",
            ResponseHead::MALFORMED_X_RATE_LIMIT,
        ),
        (
            "X-RateLimit-Reset: 18446744073709551616",
            ResponseHead::MALFORMED_X_RATE_LIMIT,
        ),
        (
            "X-Rate-Limit-Reset: soon",
            ResponseHead::MALFORMED_X_RATE_LIMIT,
        ),
        #[cfg(feature = "ietf-ratelimit")]
        (
            "RateLimit: \"default\";r=-1",
            ResponseHead::MALFORMED_RATE_LIMIT,
        ),
        #[cfg(feature = "ietf-ratelimit")]
        (
            "RateLimit-Remaining: many",
            ResponseHead::MALFORMED_RATE_LIMIT,
        ),
        #[cfg(feature = "ietf-ratelimit")]
        (
            "RateLimit-Policy: \"a\";q=99999999999",
            ResponseHead::MALFORMED_RATE_LIMIT,
        ),
        (
            "WWW-Authenticate: Bearer error=\"unterminated",
            ResponseHead::MALFORMED_WWW_AUTHENTICATE,
        ),
        (
            "Date: now\r\nRetry-After: later",
            ResponseHead::MALFORMED_DATE | ResponseHead::MALFORMED_RETRY_AFTER,
        ),
        #[cfg(feature = "ietf-ratelimit")]
        (
            "X-RateLimit-Limit: x\r\nRateLimit-Limit: y",
            ResponseHead::MALFORMED_X_RATE_LIMIT | ResponseHead::MALFORMED_RATE_LIMIT,
        ),
    ];
    for &(field, bits) in cases {
        let h = head(&with(&std::format!("{field}\r\nContent-Length: 3\r\n")));
        assert_eq!(h.malformed, bits, "{field}");
        assert_eq!(h.content_length, Some(3));
        assert_eq!((h.date, h.retry_after), (None, None), "{field}");
        assert_eq!(h.x_rate_limit, XRateLimit::default(), "{field}");
        #[cfg(feature = "ietf-ratelimit")]
        assert_eq!(h.rate_limit, RateLimit::default(), "{field}");
    }
    // The largest values that fit are accepted.
    let h = head(&with(
        "X-RateLimit-Limit: 4294967295\r\nX-RateLimit-Reset: 18446744073709551615\r\n\
         Retry-After: 4294967295\r\n",
    ));
    assert_eq!(h.x_rate_limit.limit, Some(u32::MAX));
    assert_eq!(h.x_rate_limit.reset, Some(u64::MAX));
    assert_eq!(h.x_rate_limit.reset_at(ResetMode::Auto, 0), None);
    assert_eq!(h.retry_after, Some(RetryAfter::Delay(u32::MAX)));
    assert_eq!(h.malformed, 0);
    // A malformed repeat replaces an earlier good value (last line wins).
    let h = head(&with(
        "X-RateLimit-Remaining: 5\r\nX-RateLimit-Remaining: five\r\n",
    ));
    assert_eq!(h.x_rate_limit.remaining, None);
    assert_eq!(h.malformed, ResponseHead::MALFORMED_X_RATE_LIMIT);
}

#[test]
#[cfg(feature = "ietf-ratelimit")]
fn http_ietf_rate_limit_fields() {
    let h = head(&with(
        "RateLimit: \"default\";r=50;t=30\r\nRateLimit-Policy: \"default\";q=100;w=60\r\n",
    ));
    assert_eq!(
        h.rate_limit,
        RateLimit {
            limit: Some(100),
            remaining: Some(50),
            reset: Some(30),
            window: Some(60),
        }
    );
    // Several items: the most restrictive one.
    let h = head(&with(
        "RateLimit: \"daily\";r=500;t=3600, \"burst\";r=5;t=1 , \"x\";t=9\r\n\
         RateLimit-Policy: \"daily\";q=1000;w=86400, \"burst\";q=10;w=1;pk=:YWJj:\r\n",
    ));
    assert_eq!(
        h.rate_limit,
        RateLimit {
            limit: Some(10),
            remaining: Some(5),
            reset: Some(1),
            window: Some(1),
        }
    );
    // Items split over several lines combine.
    let h = head(&with(
        "RateLimit: \"a\";r=7;t=70\r\nRateLimit: b;r=3\r\nRateLimit: c;r=9;t=1\r\n",
    ));
    assert_eq!(
        (h.rate_limit.remaining, h.rate_limit.reset),
        (Some(3), None)
    );
    // Other parameters and value types are skipped.
    let h = head(&with(
        "RateLimit: \"a\\\"b\";pk=:cHJpbmNpcGFs:;r=1;x=?1;y=\"s;r=0\";t=2;z=-3.5;flag\r\n",
    ));
    assert_eq!(
        (h.rate_limit.remaining, h.rate_limit.reset),
        (Some(1), Some(2))
    );
    assert_eq!(h.malformed, 0);
    // Unknown (even upper-case) keys are skipped.
    let h = head(&with("RateLimit: \"a\";R=5;r=6\r\n"));
    assert_eq!((h.rate_limit.remaining, h.malformed), (Some(6), 0));
    // No item with the parameter: absent, not malformed.
    let h = head(&with(
        "RateLimit: \"default\";t=30\r\nRateLimit-Policy: x\r\n",
    ));
    assert_eq!(h.rate_limit, RateLimit::default());
    assert_eq!(h.malformed, 0);

    // The older draft's separate fields.
    let h = head(&with(
        "RateLimit-Limit: 100, 100;w=60\r\nRateLimit-Remaining: 50\r\nRateLimit-Reset: 30\r\n",
    ));
    assert_eq!(
        h.rate_limit,
        RateLimit {
            limit: Some(100),
            remaining: Some(50),
            reset: Some(30),
            window: None,
        }
    );
    // Structured fields take precedence, in either order.
    let a = "RateLimit: x;r=5;t=6\r\nRateLimit-Policy: x;q=7;w=8\r\n";
    let b = "RateLimit-Limit: 1\r\nRateLimit-Remaining: 2\r\nRateLimit-Reset: 3\r\n";
    let want = RateLimit {
        limit: Some(7),
        remaining: Some(5),
        reset: Some(6),
        window: Some(8),
    };
    assert_eq!(head(&with(&std::format!("{a}{b}"))).rate_limit, want);
    assert_eq!(head(&with(&std::format!("{b}{a}"))).rate_limit, want);

    for bad in [
        "\"default\";r=1.5",
        "\"default\";r=\"5\"",
        "\"default\";r=5,",
        "\"default\";r=5, ",
        ",\"default\";r=5",
        "\"unterminated;r=5",
        ";r=5",
        "\"a\" \"b\"",
        "\"a\";=5",
        "\"a\" ;r=5",
        "(\"a\");r=5",
        "\"a\";r=5;t=99999999999",
    ] {
        let h = head(&with(&std::format!("RateLimit: {bad}\r\n")));
        assert_eq!(h.malformed, ResponseHead::MALFORMED_RATE_LIMIT, "{bad}");
        assert_eq!(h.rate_limit, RateLimit::default(), "{bad}");
    }
}

#[test]
fn http_content_length_rules() {
    assert_eq!(head(&with("Content-Length: 0\r\n")).content_length, Some(0));
    assert_eq!(
        head(&with("content-length:007\r\n")).content_length,
        Some(7)
    );
    assert_eq!(
        head(&with("Content-Length: 42, 42\r\n")).content_length,
        Some(42)
    );
    assert_eq!(
        head(&with("Content-Length: 42\r\nContent-Length: 42\r\n")).content_length,
        Some(42)
    );
    assert_eq!(
        head(&with("Content-Length: 18446744073709551615\r\n")).content_length,
        Some(u64::MAX)
    );
    for bad in [
        "",
        "abc",
        "12a",
        "-1",
        "+5",
        "0x10",
        "1 2",
        "4 2",
        "42,",
        ",42",
        "42,,42",
        "1.0",
        "18446744073709551616",
        "99999999999999999999",
        "123456789012345678901234567890",
    ] {
        let input = with(&std::format!("Content-Length: {bad}\r\n"));
        assert_eq!(parse(&input), http(HttpError::ContentLength), "{bad:?}");
    }
    for bad in [
        "Content-Length: 42, 43\r\n",
        "Content-Length: 42\r\nContent-Length: 43\r\n",
        "Content-Length: 42\r\nContent-Length: 42, 43\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    ] {
        assert_eq!(
            parse(&with(bad)),
            http(HttpError::ConflictingLength),
            "{bad:?}"
        );
    }
}

#[test]
fn http_transfer_encoding_rules() {
    for ok in [
        "Transfer-Encoding: chunked\r\n",
        "transfer-encoding:\tChunked \r\n",
        "Transfer-Encoding: chunked,\r\n",
        "Transfer-Encoding: , chunked\r\n",
        // Lines combine into one list; empty elements are ignored.
        "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let h = head(&with(ok));
        assert!(h.chunked, "{ok:?}");
        assert_eq!(h.framing(), BodyFraming::Chunked);
    }
    for bad in [
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked;q=1\r\n",
        "Transfer-Encoding: \"chunked\"\r\n",
        "Transfer-Encoding: \r\n",
        "Transfer-Encoding: ,\r\n",
    ] {
        assert_eq!(
            parse(&with(bad)),
            http(HttpError::TransferEncoding),
            "{bad:?}"
        );
    }
}

#[test]
fn http_connection_and_version() {
    assert!(head(&with("Connection: close\r\n")).connection_close);
    assert!(head(&with("Connection: Keep-Alive, CLOSE\r\n")).connection_close);
    assert!(!head(&with("Connection: keep-alive\r\n")).connection_close);
    assert!(!head(&with("Connection: closed\r\n")).connection_close);
    assert!(head("HTTP/1.0 200 OK\r\n\r\n").connection_close);
    assert!(!head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").connection_close);
    assert!(head("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n\r\n").connection_close);
    // HTTP/1.0 with Transfer-Encoding: faulty framing, close afterwards.
    let h = head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(h.chunked && h.connection_close);
}

#[test]
fn http_content_type() {
    for (ct, json) in [
        ("application/json", true),
        ("application/json; charset=utf-8", true),
        ("Application/JSON ;charset=UTF-8", true),
        ("application/problem+json", true),
        ("application/vnd.api+JSON; ext=x", true),
        ("application/jsonp", false),
        ("text/json-seq", false),
        ("text/html; charset=application/json", false),
        ("+json", false),
        ("", false),
    ] {
        let h = head(&with(&std::format!("Content-Type: {ct}\r\n")));
        assert_eq!(h.content_type_json, json, "{ct:?}");
    }
}

#[test]
fn http_rfc6750_examples() {
    let b =
        bearer("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"example\"\r\n\r\n");
    assert_eq!(
        b,
        Bearer {
            code: ErrorCode::None,
            error: None,
            description: None,
            uri: None,
            scope: None,
            realm: s("example"),
        }
    );
    let out = parse(
        "HTTP/1.1 401 Unauthorized\r\n\
         WWW-Authenticate: Bearer realm=\"example\",\r\n\
         \x20                  error=\"invalid_token\",\r\n\
         \x20                  error_description=\"The access token expired\"\r\n\r\n",
    );
    // RFC 6750 prints the example folded; folding is obs-fold, rejected.
    assert_eq!(out, http(HttpError::HeaderLine));
    let b = bearer(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"example\", \
         error=\"invalid_token\", error_description=\"The access token expired\"\r\n\r\n",
    );
    assert_eq!(
        b,
        Bearer {
            code: ErrorCode::InvalidToken,
            error: s("invalid_token"),
            description: s("The access token expired"),
            uri: None,
            scope: None,
            realm: s("example"),
        }
    );
}

#[test]
fn http_field_nation_401() {
    let body = "{\"error\":\"invalid_token\",\"error_description\":\"The access token expired\"}";
    let input = std::format!(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
        WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"The access token expired\"\r\n\
        Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = parse(&input).unwrap();
    assert_eq!(out.head.content_length, Some(body.len() as u64));
    assert_eq!(out.head.status, 401);
    assert_eq!(out.head.bearer, Some(ErrorCode::InvalidToken));
    let b = out.bearer.unwrap();
    assert_eq!(b.error, s("invalid_token"));
    assert_eq!(b.description, s("The access token expired"));
    assert_eq!(b.realm, None);
    assert_eq!(&input[out.consumed..], body);
}

#[test]
fn http_www_authenticate_challenges() {
    // Bearer after another challenge with parameters.
    let b = bearer(&with(
        "WWW-Authenticate: Basic realm=\"x\", Bearer realm=\"api\", error=\"invalid_token\", \
         error_description=\"The access token expired\"\r\n",
    ));
    assert_eq!(b.code, ErrorCode::InvalidToken);
    assert_eq!(b.realm, s("api"));
    assert_eq!(b.description, s("The access token expired"));
    // Bearer followed by another challenge.
    let b = bearer(&with(
        "WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"read:work-orders admin\", \
         Basic realm=\"other\", error=\"invalid_request\"\r\n",
    ));
    assert_eq!(b.code, ErrorCode::InsufficientScope);
    assert_eq!(b.scope, s("read:work-orders admin"));
    assert_eq!(b.realm, None);
    // Several lines: the first Bearer challenge.
    let b = bearer(&with(
        "WWW-Authenticate: Basic realm=\"x\"\r\nWWW-Authenticate: Negotiate\r\n\
         WWW-Authenticate: Bearer error=invalid_token\r\n\
         WWW-Authenticate: Bearer error=\"invalid_request\"\r\n",
    ));
    assert_eq!(b.code, ErrorCode::InvalidToken);
    assert_eq!(b.error, s("invalid_token"));
    // Case-insensitive scheme and parameter names; token values; BWS.
    let b = bearer(&with(
        "WWW-Authenticate: bEaReR ERROR = invalid_token ,Error_URI=\"https://e.x/a?b=c,d\"\r\n",
    ));
    assert_eq!(b.code, ErrorCode::InvalidToken);
    assert_eq!(b.uri, s("https://e.x/a?b=c,d"));
    // Token68 schemes around it; "Bearer" as a token68 is not a challenge.
    let b = bearer(&with(
        "WWW-Authenticate: Negotiate YII=, Basic Bearer, NTLM, Bearer realm=\"r\"\r\n",
    ));
    assert_eq!((b.code, b.realm), (ErrorCode::None, s("r")));
    // No parameters at all.
    let b = bearer(&with("WWW-Authenticate: Bearer\r\n"));
    assert_eq!((b.code, b.error, b.realm), (ErrorCode::None, None, None));
    // Escapes are resolved; empty values are present.
    let b = bearer(&with(
        "WWW-Authenticate: Bearer realm=\"\", error_description=\"say \\\"hi\\\" \\\\ \\bye\"\r\n",
    ));
    assert_eq!(b.realm, s(""));
    assert_eq!(b.description, s("say \"hi\" \\ bye"));
    // Unknown codes keep their text.
    let b = bearer(&with("WWW-Authenticate: Bearer error=\"unauthorized\"\r\n"));
    assert_eq!((b.code, b.error), (ErrorCode::Other, s("unauthorized")));
    // RFC 9110's example: no Bearer challenge.
    let out = parse(&with(
        "WWW-Authenticate: Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", Basic realm=\"simple\"\r\n",
    ))
    .unwrap();
    assert_eq!(
        (out.bearer, out.head.bearer, out.head.malformed),
        (None, None, 0)
    );
    // Similar names are not Bearer.
    for v in [
        "Bearerx",
        "Bear",
        "XBearer realm=\"x\"",
        "Basic realm=\"Bearer\"",
    ] {
        let out = parse(&with(&std::format!("WWW-Authenticate: {v}\r\n"))).unwrap();
        assert_eq!(out.bearer, None, "{v}");
    }
}

#[test]
fn http_www_authenticate_malformed() {
    let flag = ResponseHead::MALFORMED_WWW_AUTHENTICATE;
    // Repeated parameter: the first counts.
    let out = parse(&with(
        "WWW-Authenticate: Bearer error=\"invalid_token\", error=\"invalid_request\"\r\n",
    ))
    .unwrap();
    assert_eq!(out.bearer.unwrap().code, ErrorCode::InvalidToken);
    assert_eq!(out.head.malformed, flag);
    // Unterminated quote: the challenge is known, the broken value is not.
    let out = parse(&with(
        "WWW-Authenticate: Bearer realm=\"r\", error=\"invalid_token\r\n",
    ))
    .unwrap();
    let b = out.bearer.unwrap();
    assert_eq!((b.code, b.realm), (ErrorCode::None, s("r")));
    assert_eq!(out.head.malformed, flag);
    for v in [
        "Bearer realm=\"r\" error=\"x\"",
        "Bearer error=\"x\", realm=",
        "Bearer error=\"x\", realm=@",
        "Bearer error=\"x\", =y",
        "Bearer realm=\"r\", /x",
        "@",
    ] {
        let out = parse(&with(&std::format!("WWW-Authenticate: {v}\r\n"))).unwrap();
        assert_eq!(out.head.malformed, flag, "{v}");
    }
    // Not UTF-8 (obs-text): the value reads as absent.
    let out = parse_n::<256>(
        b"HTTP/1.1 401 X\r\nWWW-Authenticate: Bearer error=\"invalid_token\", realm=\"\xff\"\r\n\r\n",
    )
    .unwrap();
    let b = out.bearer.unwrap();
    assert_eq!((b.code, b.realm), (ErrorCode::InvalidToken, None));
    let out = parse_n::<256>(
        b"HTTP/1.1 401 X\r\nWWW-Authenticate: Bearer error=\"invalid\xfftoken\"\r\n\r\n",
    )
    .unwrap();
    let b = out.bearer.unwrap();
    assert_eq!((b.code, b.error), (ErrorCode::Other, None));
}

#[test]
fn http_capacity_exceeded_reports_needed() {
    let long = "d".repeat(300);
    let field = std::format!("WWW-Authenticate: Bearer error_description=\"{long}\"");
    let value_len = field.len() - "WWW-Authenticate: ".len();
    let input = with(&std::format!("{field}\r\nContent-Length: 1\r\n"));
    assert_eq!(
        parse_n::<256>(input.as_bytes()),
        Err(Error::CapacityExceeded {
            needed: value_len as u32,
            capacity: 256,
        })
    );
    // Trailing whitespace is part of what the buffer must hold.
    let input = with(&std::format!("{field}   \r\n"));
    assert_eq!(
        parse_n::<256>(input.as_bytes()),
        Err(Error::CapacityExceeded {
            needed: (value_len + 3) as u32,
            capacity: 256,
        })
    );
    // With exactly that capacity it works.
    let input = with(&std::format!("{field}\r\n"));
    let got = feed_pieces::<327>([input.as_bytes()]).unwrap();
    assert_eq!(value_len, 327);
    assert_eq!(got.bearer.unwrap().description.unwrap(), long);
    assert!(matches!(
        feed_pieces::<326>([input.as_bytes()]),
        Err(Error::CapacityExceeded {
            needed: 327,
            capacity: 326
        })
    ));

    // Retained Bearer text (up to the end of the last parameter kept: 24
    // bytes here) counts toward a later field's need.
    let input = with(
        "WWW-Authenticate: Bearer realm=\"0123456789\"\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
    );
    let out = parse_n::<53>(input.as_bytes()).unwrap();
    assert_eq!(out.bearer.unwrap().realm, s("0123456789"));
    assert_eq!(out.head.date, Some(784_111_777));
    assert_eq!(
        parse_n::<52>(input.as_bytes()),
        Err(Error::CapacityExceeded {
            needed: 24 + 29,
            capacity: 52,
        })
    );
    // A tiny buffer still parses framing it can hold.
    let out =
        parse_n::<2>(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nSet-Cookie: a=b\r\n\r\n").unwrap();
    assert_eq!(out.head.content_length, Some(10));
    assert_eq!(
        parse_n::<0>(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"),
        Err(Error::CapacityExceeded {
            needed: 1,
            capacity: 0,
        })
    );
    // After a Bearer challenge, later WWW-Authenticate lines are not buffered.
    let input = with(&std::format!(
        "WWW-Authenticate: Bearer realm=\"a\"\r\nWWW-Authenticate: Basic realm=\"{long}\"\r\n"
    ));
    assert_eq!(parse(&input).unwrap().bearer.unwrap().realm, s("a"));
}

#[test]
fn http_huge_skipped_fields() {
    // Under Miri (tests/miri.sh) a 1 KiB cookie: still far over the buffer.
    let cookie = "c".repeat(if cfg!(miri) { 1 } else { 10 } * 1024);
    let input = std::format!(
        "HTTP/1.1 200 OK\r\nSet-Cookie: session={cookie}; Path=/; HttpOnly\r\n\
         X-RateLimit-Remaining: 7\r\nContent-Length: 4\r\n\r\nbody"
    );
    let whole = parse_n::<16>(input.as_bytes()).unwrap();
    let chunked = feed_pieces::<16>(input.as_bytes().chunks(16)).unwrap();
    assert_eq!(whole, chunked);
    assert_eq!(whole.head.x_rate_limit.remaining, Some(7));
    assert_eq!(&input[whole.consumed..], "body");

    // Under Miri (tests/miri.sh) not the 64 KiB cap: three 64 KiB heads are
    // ~40 M instructions natively, over a minute there.
    if cfg!(miri) {
        return;
    }
    // The whole head is capped at 64 KiB, even if every field is skipped.
    let big = "v".repeat(MAX_HEAD_BYTES as usize);
    let input = std::format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\n\r\n");
    assert_eq!(
        feed_pieces::<256>(input.as_bytes().chunks(100)),
        http(HttpError::TooManyHeaders)
    );
    assert_eq!(
        feed_pieces::<256>([input.as_bytes()]),
        http(HttpError::TooManyHeaders)
    );
    // Exactly 64 KiB is fine.
    let head_len = "HTTP/1.1 200 OK\r\nX-Big: \r\n\r\n".len();
    let input = std::format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
        "v".repeat(MAX_HEAD_BYTES as usize - head_len)
    );
    assert_eq!(input.len(), MAX_HEAD_BYTES as usize);
    assert!(feed_pieces::<256>([input.as_bytes()]).is_ok());
}

#[test]
fn http_too_many_header_lines() {
    let lines = |n: usize| {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..n {
            s.push_str(&std::format!("X-{i}: {i}\r\n"));
        }
        s.push_str("\r\n");
        s
    };
    assert!(feed_pieces::<256>([lines(100).as_bytes()]).is_ok());
    assert_eq!(
        feed_pieces::<256>([lines(101).as_bytes()]),
        http(HttpError::TooManyHeaders)
    );
    // The count is per head: interim heads do not use it up. (Not under
    // Miri, tests/miri.sh: 200 more lines, ~4 M instructions natively.)
    if cfg!(miri) {
        return;
    }
    let input = std::format!(
        "{}{}",
        lines(100).replace("200 OK", "100 Continue"),
        lines(100)
    );
    assert!(feed_pieces::<256>([input.as_bytes()]).is_ok());
}

#[test]
fn http_wrong_state_after_error_and_done() {
    let mut p: HeadParser = HeadParser::new();
    assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Ok(Some(19)));
    assert_eq!(p.feed(b""), Err(Error::WrongState));
    assert!(p.head().is_some());
    assert!(p.bearer().is_none());
    let mut p: HeadParser = HeadParser::default();
    assert_eq!(p.feed(b"HTTP/9"), http(HttpError::StatusLine).map(|_| None));
    assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Err(Error::WrongState));
    assert!(p.head().is_none());
    // Debug shows the state, not the buffer.
    let d = std::format!("{p:?}");
    assert!(d.starts_with("HeadParser"), "{d}");
}

#[test]
fn http_state_size() {
    // The IETF rate-limit fields take 32 bytes.
    let ietf = if cfg!(feature = "ietf-ratelimit") {
        32
    } else {
        0
    };
    assert_eq!(core::mem::size_of::<HeadParser<256>>(), 392 + ietf);
    assert_eq!(core::mem::size_of::<HeadParser<64>>(), 64 + 136 + ietf);
    assert_eq!(core::mem::size_of::<ResponseHead>(), 88 + ietf);
    assert_eq!(core::mem::size_of::<BodyReader>(), 16);
}

#[test]
fn http_head_then_body_end_to_end() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\n\
        Content-Type: application/json;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\
        Connection: close\r\n\r\n\
        10\r\n{\"error\":\"invali\r\n9;x=y\r\nd_grant\"}\r\n0\r\n\r\n";
    // Under Miri (tests/miri.sh) a sample of the piece sizes.
    for step in (1..=input.len()).step_by(if cfg!(miri) { 13 } else { 1 }) {
        let mut p: HeadParser = HeadParser::new();
        let mut body = Vec::new();
        let mut reader: Option<BodyReader> = None;
        for piece in input.chunks(step) {
            let mut rest = piece;
            if reader.is_none() {
                match p.feed(piece).unwrap() {
                    None => continue,
                    Some(n) => {
                        rest = &piece[n..];
                        reader = Some(BodyReader::new(p.head().unwrap().framing()));
                    }
                }
            }
            let r = reader.as_mut().unwrap();
            while !rest.is_empty() {
                let (n, data) = r.next(rest).unwrap();
                body.extend_from_slice(data);
                rest = &rest[n..];
                if n == 0 {
                    break;
                }
            }
        }
        let h = p.head().unwrap();
        assert_eq!(h.status, 400);
        assert!(h.chunked && h.connection_close && h.content_type_json);
        let r = reader.unwrap();
        assert!(r.is_done());
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(body, b"{\"error\":\"invalid_grant\"}");
    }
}

#[test]
fn http_div1000_matches_division() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    // Under Miri (tests/miri.sh) 2,000 values instead of 20,000.
    for _ in 0..if cfg!(miri) { 2_000 } else { 20_000 } {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ms = x >> (x % 40 + 16);
        assert_eq!(div1000(ms), Some(ms / 1000), "{ms}");
    }
    for ms in [0, 999, 1000, 1_640_995_200_123, (1 << 48) - 1] {
        assert_eq!(div1000(ms), Some(ms / 1000));
    }
    assert_eq!(div1000(1 << 48), None);
    assert_eq!(div1000(u64::MAX), None);
}

/// Deterministic mutations of valid heads: every chunking gives the same
/// result, and nothing panics.
#[test]
fn http_mutated_heads_are_chunk_invariant() {
    let seeds: [&[u8]; 4] = [
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\", Bearer realm=\"a\\\"b\", \
          error=\"invalid_token\", error_description=\"expired\"\r\nContent-Length: 12\r\n\
          Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many\r\nRetry-After: 120\r\n\
          X-RateLimit-Remaining: 0\r\nRateLimit: \"d\";r=0;t=5, \"b\";r=1\r\n\
          RateLimit-Policy: \"d\";q=10;w=60\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.0 503 X\nRetry-After: Sunday, 06-Nov-94 08:49:37 GMT\nConnection: keep-alive\n\
          Content-Type: application/problem+json; charset=utf-8\n\n",
        b"HTTP/1.1 200 OK\r\nX-Rate-Limit-Reset: 1640995200123\r\nContent-Length: 5, 5\r\n\
          Retry-After: Sun Nov  6 08:49:37 1994\r\n\r\n",
    ];
    let specials = b"\r\n :;,=\"\\\t\x00\x7f\xffa0-";
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut outcomes = [0usize; 2];
    // Under Miri (tests/miri.sh) 8 rounds instead of 600, one piece size
    // each.
    let (rounds, each) = if cfg!(miri) { (8, 1) } else { (600, 50) };
    for round in 0..rounds {
        let mut input = seeds[round % seeds.len()].to_vec();
        for _ in 0..1 + rnd(4) {
            let at = rnd(input.len());
            let b = specials[rnd(specials.len())];
            match rnd(3) {
                0 => input[at] = b,
                1 => input.insert(at, b),
                _ => {
                    input.remove(at);
                }
            }
        }
        let whole = feed_pieces::<64>([&input[..]]);
        outcomes[usize::from(whole.is_ok())] += 1;
        for (k, step) in [1, 2, 3, 5, 8, 13, 21].into_iter().enumerate() {
            // Under Miri one piece size per round, not 1 (byte by byte is
            // parse_n's, above).
            if cfg!(miri) && (k == 0 || k != 1 + round % 6) {
                continue;
            }
            assert_eq!(feed_pieces::<64>(input.chunks(step)), whole, "{input:?}");
        }
        let at = rnd(input.len() + 1);
        assert_eq!(feed_pieces::<64>([&input[..at], &input[at..]]), whole);
    }
    // Both outcomes occur: the mutations exercise the error paths.
    assert!(outcomes[0] > each && outcomes[1] > each, "{outcomes:?}");
}

#[test]
fn http_mutated_chunked_bodies_are_chunk_invariant() {
    let seed: &[u8] = b"4\r\nWiki\r\n5;a=\"b\"\r\npedia\r\n0\r\nX: y\r\n\r\nnext";
    let specials = b"\r\n;0aF \t\x00";
    let mut x = 0x0123_4567_89ab_cdefu64;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let decode = |input: &[u8], step: usize| -> Result<(Vec<u8>, usize, bool)> {
        let mut r = BodyReader::new(BodyFraming::Chunked);
        let (mut out, mut used) = (Vec::new(), 0);
        for piece in input.chunks(step) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (n, d) = r.next(rest)?;
                out.extend_from_slice(d);
                used += n;
                rest = &rest[n..];
                if n == 0 {
                    break;
                }
            }
        }
        Ok((out, used, r.is_done()))
    };
    // Under Miri (tests/miri.sh) 30 mutations instead of 1000, each read
    // in pieces of 1, 3 and 7 bytes.
    for _ in 0..if cfg!(miri) { 30 } else { 1000 } {
        let mut input = seed.to_vec();
        let at = rnd(input.len());
        let b = specials[rnd(specials.len())];
        if rnd(2) == 0 {
            input[at] = b;
        } else {
            input.insert(at, b);
        }
        let whole = decode(&input, input.len());
        for step in (1..8).filter(|s| !cfg!(miri) || s % 2 == 1 && *s != 5) {
            assert_eq!(decode(&input, step), whole, "{input:?}");
        }
    }
}

/// The flat name table the parser reads is `NAMES`, in order.
#[test]
fn name_table_is_names() {
    let mut at = 0;
    assert_eq!(NAME_LENS.len(), NAMES.len());
    for (n, &len) in NAMES.iter().zip(&NAME_LENS) {
        assert_eq!(usize::from(len), n.len());
        assert_eq!(&NAME_BYTES[at..at + n.len()], *n);
        at += n.len();
    }
    assert_eq!(at, NAME_BYTES.len());
}
