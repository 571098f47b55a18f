//! Runs the fieldauth token-response parse in a loop, for profilers
//! (`valgrind --tool=callgrind`): `profile_parse [iterations] [small]`.
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
