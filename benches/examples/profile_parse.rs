//! Runs the fieldauth token-response parse in a loop, for profilers
//! (`valgrind --tool=callgrind`): `profile_parse [iterations] [small|min|stream|oauth2|borrowed]`.
//! `oauth2` parses the 1.1 KB response with serde_json into the `oauth2`
//! crate's `BasicTokenResponse` instead, and `borrowed` with serde_json into
//! a borrowed struct, for an instruction-count comparison; `stream` feeds
//! fieldauth 128-byte chunks.
use fieldauth::body::{parse_body, Expect, STANDARD_KEYS};
use fieldauth_benches::TOKEN_RESPONSE_1K1 as BODY;
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let body = match args.next().as_deref() {
        // The same response with an 8-byte access token: the difference is
        // the per-byte cost of the long string.
        Some("small") => {
            let s = String::from_utf8(BODY.to_vec()).unwrap();
            s.replace(&s[21..921], "abcdefgh").into_bytes()
        }
        Some("min") => br#"{"access_token":"a"}"#.to_vec(),
        Some("oauth2") => {
            use oauth2::TokenResponse as _;
            let mut total = 0usize;
            for _ in 0..n {
                let t: oauth2::basic::BasicTokenResponse =
                    serde_json::from_slice(black_box(BODY)).unwrap();
                total += t.access_token().secret().len() + t.scopes().map_or(0, Vec::len);
            }
            println!("{total}");
            return;
        }
        Some("borrowed") => {
            #[derive(serde::Deserialize)]
            struct Borrowed<'a> {
                #[serde(borrow)]
                access_token: std::borrow::Cow<'a, str>,
                #[serde(borrow)]
                scope: Option<std::borrow::Cow<'a, str>>,
                #[serde(borrow)]
                refresh_token: Option<std::borrow::Cow<'a, str>>,
                expires_in: Option<u64>,
            }
            let mut total = 0usize;
            for _ in 0..n {
                let t: Borrowed<'_> = serde_json::from_slice(black_box(BODY)).unwrap();
                total += t.access_token.len()
                    + t.scope.map_or(0, |s| s.len())
                    + t.refresh_token.map_or(0, |s| s.len())
                    + t.expires_in.unwrap_or(0) as usize;
            }
            println!("{total}");
            return;
        }
        Some("stream") => {
            let mut storage = [0u8; 2048];
            let mut total = 0usize;
            for _ in 0..n {
                let mut p = fieldauth::body::BodyParser::new(Expect::Token, 200, STANDARD_KEYS);
                for chunk in black_box(BODY).chunks(128) {
                    p.feed(&mut storage, chunk).unwrap();
                }
                let o = p.finish(&storage).unwrap();
                let t = o.token(&storage).unwrap();
                total += t.access_token.len() + t.scope.map_or(0, str::len);
            }
            println!("{total}");
            return;
        }
        _ => BODY.to_vec(),
    };
    let mut storage = [0u8; 2048];
    let mut total = 0usize;
    for _ in 0..n {
        let o = parse_body(
            Expect::Token,
            200,
            STANDARD_KEYS,
            black_box(&body),
            &mut storage,
        )
        .unwrap();
        let t = o.token(&storage).unwrap();
        total += t.access_token.len() + t.scope.map_or(0, str::len);
    }
    println!("{total}");
}
