//! Snapshot restore of arbitrary bytes into a configured session.
//!
//! Input: a preset byte, a mode byte, 16 bytes of clock (monotonic and wall
//! time of the restore), then image bytes. Mode 0 restores the bytes as
//! they are; mode 1 XORs them onto a valid image of a session that holds a
//! token; mode 2 does the same and then fixes the checksum, so the
//! semantic checks behind it (version, configuration, spans, times) are
//! reached. Checks:
//! - a refused image is a `Snapshot` error and changes nothing (status,
//!   snapshot, the session's clock);
//! - an accepted image leaves a session that works: poll, authorize, the
//!   credential applies or is refused with a typed error; its snapshot
//!   restores into a fresh session to the same state;
//! - no restored deadline lies further ahead than it did when the image
//!   was written, and blocks are cut to `max_wait_s`.
#![no_main]

use fieldauth::session::{Authorization, Status, NEVER};
use fieldauth::Error;
use fieldauth_fuzz::{exchange, json_response, token_presets, Sess};
use libfuzzer_sys::fuzz_target;

const T0: u64 = 10_000_000;
const UNIX0: u64 = 1_700_000_000_000;
const CRC_AT: usize = 108;
const HEADER: usize = 112;

fn crc32(data: &[u8], mut crc: u32) -> u32 {
    crc = !crc;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn u64_at(img: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(img[at..at + 8].try_into().unwrap())
}

fn snapshot(s: &Sess, now: u64, unix: u64) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; s.snapshot_len()];
    let n = s.snapshot(now, unix, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// The session must still work: nothing panics, and a credential it hands
/// out either applies cleanly or is refused with a typed error.
fn exercise(s: &mut Sess, now: u64) -> Status {
    let status = s.status();
    let _ = s.poll(now);
    if let Authorization::Send(c) = s.authorize(now) {
        let mut buf = [0u8; 4096];
        match c.write_header_line(&mut buf) {
            Ok(0) => assert!(c.header_name().is_none(), "an empty header line"),
            Ok(n) => {
                let line = &buf[..n];
                assert!(line.ends_with(b"\r\n"));
                let inner = &line[..n - 2];
                assert!(
                    !inner.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
                    "header injection: {line:?}"
                );
            }
            Err(Error::InvalidInput { .. } | Error::BufferTooSmall { .. }) => {}
            Err(e) => panic!("unexpected error applying a restored credential: {e:?}"),
        }
        match c.write_target("/api/v1/items?limit=", &mut buf) {
            Ok(n) => assert!(!buf[..n].iter().any(|&b| b <= b' ' || b == 0x7f)),
            Err(Error::InvalidInput { .. } | Error::BufferTooSmall { .. }) => {}
            Err(e) => panic!("unexpected error applying a restored credential: {e:?}"),
        }
    }
    let _ = s.granted_scope();
    let _ = s.failure_description();
    status
}

const BODY: &str = r#"{"access_token":"tok-AAAA","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-BBBB","scope":"api"}"#;

/// A valid image per preset of `token_presets`: a session that fetched a
/// token (or holds an API key) at `T0`, written a second later.
fn valid_images() -> &'static Vec<Vec<u8>> {
    static IMAGES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    IMAGES.get_or_init(|| {
        token_presets()
            .iter()
            .map(|(profile, config)| {
                let mut holder = Sess::new(profile, config, 7).unwrap();
                let _ = holder.poll(T0);
                let _ = exchange(&mut holder, T0, &json_response(200, BODY));
                snapshot(&holder, T0 + 1000, UNIX0 + 1000).unwrap()
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 18 {
        return;
    }
    let presets = token_presets();
    let (profile, config) = &presets[usize::from(data[0]) % presets.len()];
    let mode = data[1] % 3;
    let dt = u64::from_le_bytes(data[2..10].try_into().unwrap());
    let dunix = u64::from_le_bytes(data[10..18].try_into().unwrap());
    let bytes = &data[18..];

    // The image of a session that holds a token (or an API key), made once
    // per preset.
    let preset_index = usize::from(data[0]) % presets.len();
    let valid = &valid_images()[preset_index];

    let image: Vec<u8> = match mode {
        0 => bytes.to_vec(),
        _ => {
            let mut img = valid.clone();
            for (i, b) in bytes.iter().enumerate().take(img.len()) {
                img[i] ^= b;
            }
            if mode == 2 && img.len() >= HEADER {
                let crc = crc32(&img[..CRC_AT], 0);
                let crc = crc32(&img[HEADER..], crc);
                img[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
            }
            img
        }
    };

    // Restore times: around the image's, forwards and backwards.
    let now = T0.wrapping_add(dt % (400 * 24 * 3600 * 1000));
    let unix = if dunix & 1 == 0 {
        UNIX0.saturating_add(dunix >> 1)
    } else {
        UNIX0.saturating_sub(dunix >> 1)
    };

    for fresh in [true, false] {
        let mut s = if fresh {
            let mut s = Sess::new(profile, config, 9).unwrap();
            let _ = s.poll(T0);
            s
        } else {
            // One that holds the token already.
            let mut s = Sess::new(profile, config, 7).unwrap();
            let _ = s.poll(T0);
            let _ = s.restore(T0 + 1000, UNIX0 + 1000, valid);
            s
        };
        let before_status = s.status();
        let before_image = snapshot(&s, now, unix);
        match s.restore(now, unix, &image) {
            Err(e) => {
                assert!(
                    matches!(e, Error::Snapshot(_) | Error::WrongState),
                    "restore error {e:?}"
                );
                assert_eq!(
                    s.status(),
                    before_status,
                    "a refused restore changed the session"
                );
                assert_eq!(
                    snapshot(&s, now, unix),
                    before_image,
                    "a refused restore changed the image"
                );
                exercise(&mut s, now);
            }
            Ok(()) => {
                assert!(image.len() >= HEADER);
                let st = exercise(&mut s, now);
                // Deadlines: never further ahead than when written.
                let written = u64_at(&image, 16);
                // The session's clock: it never goes back (the held session
                // restored its token at T0 + 1 s).
                let eff_now = now.max(if fresh { T0 } else { T0 + 1000 });
                for (at, got) in [(24, st.expires_at)] {
                    let t = u64_at(&image, at);
                    if t != 0 && t != NEVER && got != 0 && got != NEVER && t >= written {
                        assert!(
                            got.saturating_sub(eff_now) <= t - written,
                            "restored deadline at {got} (now {eff_now}) lies further ahead than the image's {t} - {written}"
                        );
                    }
                }
                let max_wait = 3_600_000;
                for b in [st.api_blocked_until, st.token_blocked_until] {
                    assert!(
                        b <= eff_now.saturating_add(max_wait) || b == 0,
                        "block {b} past max_wait (now {eff_now})"
                    );
                }
                // The restored state round-trips.
                if let Ok(again) = snapshot(&s, now, unix) {
                    let mut t = Sess::new(profile, config, 11).unwrap();
                    let _ = t.poll(T0);
                    if t.restore(now, unix, &again).is_ok() {
                        assert_eq!(
                            snapshot(&t, now, unix),
                            Ok(again.clone()),
                            "snapshot of a restored image differs"
                        );
                    }
                }
            }
        }
    }
});
