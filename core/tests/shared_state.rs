//! Shared state between the sessions of a fleet (issue #21): the generation
//! a snapshot carries, and `adopt` of a newer image a store returns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use fieldauth::preset;
use fieldauth::session::{Action, Adopted, Authorization, RequestKind};
use fieldauth::{Error, SnapshotError};

mod common;
use common::*;

const UNIX0: u64 = 1_796_619_600_000;

fn session(seed: u64) -> Sess {
    Sess::new(&preset::AUTOTASK, &cc_config(), seed).unwrap()
}

/// A session holding `token` (one hour), and its snapshot at `now`.
fn with_token(token: &str, now: u64) -> (Sess, Vec<u8>) {
    with_token_for(token, now, 3600)
}

fn with_token_for(token: &str, now: u64, lifetime_s: u32) -> (Sess, Vec<u8>) {
    let mut s = session(1);
    s.set_wall_clock(now, UNIX0);
    exchange(&mut s, now, &token_json(token, lifetime_s, None));
    let mut image = vec![0u8; s.snapshot_len()];
    let n = s.snapshot(now, UNIX0, &mut image).unwrap();
    image.truncate(n);
    (s, image)
}

#[test]
fn a_newer_generation_is_adopted_once() {
    let (mut a, image) = with_token("peer-token", T0);
    // The store saved A's image as generation 1.
    a.set_shared_generation(1);
    assert_eq!(a.shared_generation(), 1);

    let mut b = session(2);
    assert_eq!(b.shared_generation(), 0);
    assert_eq!(b.poll(T0), Action::SendTokenRequest(RequestKind::Fetch));
    assert_eq!(b.adopt(T0, UNIX0, &image, 1), Ok(Adopted::Newer));
    assert_eq!(b.shared_generation(), 1);
    // B sends the peer's token and does not fetch its own.
    assert_eq!(
        bearer(&mut b, T0 + S),
        "Authorization: Bearer peer-token\r\n"
    );
    assert_ne!(b.poll(T0 + S), Action::SendTokenRequest(RequestKind::Fetch));

    // The same generation, or an older one, changes nothing.
    assert_eq!(b.adopt(T0, UNIX0, &image, 1), Ok(Adopted::NotNewer));
    assert_eq!(b.adopt(T0, UNIX0, &image, 0), Ok(Adopted::NotNewer));
    assert_eq!(b.shared_generation(), 1);
}

#[test]
fn a_newer_token_replaces_an_older_one() {
    let (_, old) = with_token("old-token", T0);
    let (_, new) = with_token("new-token", T0 + 10 * S);
    let mut b = session(3);
    assert_eq!(b.adopt(T0, UNIX0, &old, 4), Ok(Adopted::Newer));
    assert_eq!(
        bearer(&mut b, T0 + S),
        "Authorization: Bearer old-token\r\n"
    );
    assert_eq!(
        b.adopt(T0 + 2 * S, UNIX0 + 2_000, &new, 5),
        Ok(Adopted::Newer)
    );
    assert_eq!(
        bearer(&mut b, T0 + 3 * S),
        "Authorization: Bearer new-token\r\n"
    );
    assert_eq!(b.shared_generation(), 5);
}

#[test]
fn the_generation_travels_with_the_snapshot() {
    let (mut a, _) = with_token("tok", T0);
    a.set_shared_generation(42);
    let mut image = vec![0u8; a.snapshot_len()];
    let n = a.snapshot(T0, UNIX0, &mut image).unwrap();
    let mut b = session(4);
    b.restore(T0, UNIX0, &image[..n]).unwrap();
    assert_eq!(b.shared_generation(), 42);
    // An image written before generations existed (zero there) reads as 0:
    // the bytes were reserved and zero, and the checksum covers them.
    let (_, plain) = with_token("tok", T0);
    let mut c = session(5);
    c.restore(T0, UNIX0, &plain).unwrap();
    assert_eq!(c.shared_generation(), 0);
}

#[test]
fn nothing_usable_records_the_generation_and_keeps_the_rest() {
    let (_, image) = with_token("expired-token", T0);
    let (mut b, _) = with_token_for("own-token", T0, 86_400);
    // Two hours later (wall clock too): the image's token expired.
    let later = T0 + 7_200 * S;
    let unix_later = UNIX0 + 7_200_000;
    assert_eq!(
        b.adopt(later, unix_later, &image, 9),
        Ok(Adopted::NothingUsable)
    );
    assert_eq!(b.shared_generation(), 9);
    // The session's own token is still the one it sends.
    assert_eq!(bearer(&mut b, later), "Authorization: Bearer own-token\r\n");
}

#[test]
fn a_bad_image_or_an_exchange_in_flight_changes_nothing() {
    let (_, image) = with_token("tok", T0);
    let mut b = session(6);
    // Corrupt: one flipped byte in the token text.
    let mut bad = image.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x20;
    bad[fieldauth::session::SNAPSHOT_HEADER_LEN] ^= 1;
    assert_eq!(
        b.adopt(T0, UNIX0, &bad, 3),
        Err(Error::Snapshot(SnapshotError::Corrupt))
    );
    assert_eq!(b.shared_generation(), 0);
    assert!(matches!(b.authorize(T0), Authorization::NoCredential));

    // While B's own token request is in flight: WrongState, then adopted
    // once the exchange is over.
    let mut buf = [0u8; 1024];
    b.write_token_request(T0, &mut buf).unwrap();
    assert_eq!(b.adopt(T0, UNIX0, &image, 3), Err(Error::WrongState));
    assert_eq!(b.shared_generation(), 0);
    b.on_transport_error(T0 + S);
    assert_eq!(
        b.adopt(T0 + S, UNIX0 + 1_000, &image, 3),
        Ok(Adopted::Newer)
    );
    assert_eq!(bearer(&mut b, T0 + 2 * S), "Authorization: Bearer tok\r\n");
}

#[test]
fn another_configuration_is_refused() {
    let (_, image) = with_token("tok", T0);
    let other = fieldauth::session::Config {
        client_id: "demo-CLIENT", // same length: the image fits, the account differs
        ..cc_config()
    };
    let mut b = Sess::new(&preset::AUTOTASK, &other, 7).unwrap();
    assert_eq!(
        b.adopt(T0, UNIX0, &image, 1),
        Err(Error::Snapshot(SnapshotError::Foreign))
    );
    assert_eq!(b.shared_generation(), 0);
}
