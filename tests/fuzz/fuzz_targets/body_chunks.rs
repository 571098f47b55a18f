//! The body parser on arbitrary bytes with arbitrary chunk splits.
//!
//! Input: 4 header bytes (what is expected, the status, the key table and
//! storage size, how to split), then the body. The same body is parsed
//! whole by `parse_body` (which borrows plain values from the body), fed to
//! a `BodyParser` in one chunk, in the pieces the split byte gives, and one
//! byte at a time: every result (the view, or the error) must be identical.
//! A `CapacityExceeded { needed }` must be cured by exactly `needed` bytes
//! of storage, and a successful view must obey the documented rules.
#![no_main]

use fieldauth::body::{parse_body, BodyParser, Expect, Response, PATCHWORKS_KEYS, STANDARD_KEYS};
use fieldauth::{Error, MAX_LIFETIME_SECS};
use fieldauth_fuzz::{dump, split};
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 14] = [
    200, 201, 204, 299, 400, 401, 403, 429, 500, 503, 302, 101, 0, 999,
];
const CAPACITIES: [usize; 8] = [0, 1, 8, 64, 256, 1024, 4096, 70_000];

type Outcome = Result<String, Error>;

fn whole(
    expect: Expect,
    status: u16,
    keys: fieldauth::body::KeyTable,
    body: &[u8],
    cap: usize,
) -> Outcome {
    let mut storage = vec![0u8; cap];
    let parsed = parse_body(expect, status, keys, body, &mut storage)?;
    let view = parsed.view(&storage);
    check_view(&view);
    Ok(dump(&view))
}

fn streamed(
    expect: Expect,
    status: u16,
    keys: fieldauth::body::KeyTable,
    pieces: &[&[u8]],
    cap: usize,
) -> Outcome {
    let mut storage = vec![0u8; cap];
    let mut p = BodyParser::new(expect, status, keys);
    assert_eq!(p.status(), status);
    for piece in pieces {
        p.feed(&mut storage, piece)?;
    }
    let outcome = p.finish(&storage)?;
    assert_eq!(outcome.status(), status);
    // Finished: a second finish or feed is WrongState.
    assert_eq!(p.finish(&storage), Err(Error::WrongState));
    let view = outcome.view(&storage);
    assert_eq!(outcome.is_success(), !matches!(view, Response::Error(_)));
    check_view(&view);
    Ok(dump(&view))
}

/// The rules the module documentation promises for a successful parse.
fn check_view(view: &Response<'_>) {
    let vschar = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x20..=0x7e).contains(&b));
    match view {
        Response::Token(t) => {
            assert!(
                vschar(t.access_token),
                "access token not VSCHAR: {:?}",
                t.access_token
            );
            if let Some(r) = t.refresh_token {
                assert!(vschar(r), "refresh token not VSCHAR: {r:?}");
            }
            if let Some(tt) = t.token_type {
                assert!(tt.eq_ignore_ascii_case("bearer"), "token_type {tt:?}");
            }
            if let Some(e) = t.expires_in {
                assert!(
                    (1..=MAX_LIFETIME_SECS).contains(&u64::from(e)),
                    "expires_in {e}"
                );
            }
            if let Some(e) = t.refresh_expires_in {
                assert!(u64::from(e) <= MAX_LIFETIME_SECS, "refresh_expires_in {e}");
            }
        }
        Response::DeviceAuthorization(d) => {
            assert!(vschar(d.device_code) && vschar(d.user_code));
            assert!(
                vschar(d.verification_uri),
                "verification_uri {:?}",
                d.verification_uri
            );
            if let Some(c) = d.verification_uri_complete {
                assert!(vschar(c), "verification_uri_complete {c:?}");
            }
            assert!((1..=MAX_LIFETIME_SECS).contains(&u64::from(d.expires_in)));
            if let Some(i) = d.interval {
                assert!(i <= 86_400);
            }
        }
        Response::Revoked => {}
        Response::Error(e) => {
            if let Some(s) = e.status_member {
                assert!(s <= 999);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, mode, body @ ..] = data else {
        return;
    };
    let expect = match a % 3 {
        0 => Expect::Token,
        1 => Expect::DeviceAuthorization,
        _ => Expect::Revocation,
    };
    let status = STATUSES[usize::from(*b) % STATUSES.len()];
    let keys = if c & 1 == 0 {
        STANDARD_KEYS
    } else {
        PATCHWORKS_KEYS
    };
    let cap = CAPACITIES[usize::from(c >> 1) % CAPACITIES.len()];

    let reference = whole(expect, status, keys, body, cap);
    let show = |what: &str, got: &Outcome| {
        format!(
            "{what} differs from parse_body\n  body: {:?}\n  parse_body: {reference:?}\n  {what}: {got:?}",
            String::from_utf8_lossy(body)
        )
    };
    let one = streamed(expect, status, keys, &[body], cap);
    assert_eq!(one, reference, "{}", show("one chunk", &one));
    let pieces = split(body, *mode);
    let got = streamed(expect, status, keys, &pieces, cap);
    assert_eq!(got, reference, "{}", show("split chunks", &got));
    if body.len() <= 512 && *mode != 0 {
        let bytes = split(body, 0);
        let got = streamed(expect, status, keys, &bytes, cap);
        assert_eq!(got, reference, "{}", show("byte by byte", &got));
    }
    // Storage: what `needed` says is enough, and what is enough gives the
    // same answer as plenty.
    if let Err(Error::CapacityExceeded { needed, capacity }) = reference {
        assert_eq!(capacity as usize, cap.min(usize::from(u16::MAX)));
        assert!(needed as usize > capacity as usize);
        let exact = whole(expect, status, keys, body, needed as usize);
        if needed <= u32::from(u16::MAX) {
            assert!(
                !matches!(exact, Err(Error::CapacityExceeded { .. })),
                "{needed} bytes of storage still too small: {exact:?}"
            );
            let plenty = whole(expect, status, keys, body, 70_000);
            assert_eq!(exact, plenty);
        }
    } else if cap < 70_000 {
        let plenty = whole(expect, status, keys, body, 70_000);
        assert_eq!(reference, plenty, "more storage changed the answer");
    }
});
