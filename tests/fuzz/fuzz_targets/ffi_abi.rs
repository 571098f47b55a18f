//! The C ABI (`fieldauth-ffi`'s `extern "C"` functions) driven by a
//! sequence of calls with arbitrary arguments: lengths anywhere in the
//! buffer, NULL pointers with any length, lengths past `isize::MAX` or
//! wrapping the address space, misaligned and uninitialized objects,
//! output buffers overlapping the object, invalid UTF-8, unknown enum
//! values, and a transport whose callbacks block, fail, close early or
//! return more than asked.
//!
//! The harness keeps the C contract itself (a non-NULL pointer is always
//! valid for the bytes it claims unless the length is one the library must
//! refuse before touching memory: past `isize::MAX` or wrapping). Checks:
//! - nothing crashes (ASan and libFuzzer see any out-of-bounds access);
//! - no byte past the length given is written (canaries);
//! - every status is a documented code (its message is not the "unknown"
//!   one); outputs are written only on success, except `*out_len` on
//!   BUFFER_TOO_SMALL, which then exceeds the buffer; on success lengths
//!   fit their buffers and returned texts lie inside them.
#![no_main]

use core::ffi::{c_void, CStr};
use core::mem::{size_of, MaybeUninit};
use core::ptr::{null, null_mut};

use ffi::*;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

const BUF: usize = 4096;
const CANARY: usize = 64;
const SENTINEL: usize = 0x5a5a_5a5a;

fn zeroed<T>() -> T {
    // SAFETY: only used for the C ABI's plain structs (integers, raw
    // pointers, `Option<fn>`), for which all-zero bytes are valid.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

struct World {
    session: Vec<u64>,
    head: Vec<u64>,
    body: Vec<u64>,
    buf: Vec<u8>,
    /// Bytes strings and inputs point into (from the fuzz input).
    pool: Vec<u8>,
    unknown_message: &'static CStr,
}

/// A pointer/length pair for an input or output region of `cap` bytes at
/// `base`: mostly valid lengths, sometimes NULL with any length, or a
/// length the library must refuse before touching memory.
fn region(u: &mut Unstructured<'_>, base: *mut u8, cap: usize) -> (*mut u8, usize, bool) {
    match u.int_in_range(0..=19u8).unwrap_or(0) {
        0 => (null_mut(), u.arbitrary::<usize>().unwrap_or(0), false),
        1 => (null_mut(), 0, true),
        2 => (
            base,
            (isize::MAX as usize).wrapping_add(1 + usize::from(u.arbitrary::<u8>().unwrap_or(0))),
            false,
        ),
        3 => (
            base,
            usize::MAX - usize::from(u.arbitrary::<u8>().unwrap_or(0)),
            false,
        ),
        4 => (base, 0, true),
        _ => (base, u.int_in_range(0..=cap).unwrap_or(cap), true),
    }
}

impl World {
    fn check(&self, st: fieldauth_status) {
        // SAFETY: the message is a static NUL-terminated string.
        let msg = unsafe { CStr::from_ptr(fieldauth_status_message(st)) };
        assert_ne!(msg, self.unknown_message, "undocumented status {st}");
    }

    fn arm(&mut self) {
        self.buf.fill(0xa5);
    }

    /// Nothing past `len` bytes of the buffer changed.
    fn canaries(&self, len: usize, valid: bool) {
        let from = if valid { len.min(BUF) } else { 0 };
        assert!(
            self.buf[from..].iter().all(|&b| b == 0xa5),
            "write past the {len}-byte buffer (valid length: {valid})"
        );
    }

    fn session_ptr(&mut self, u: &mut Unstructured<'_>) -> *mut fieldauth_session {
        let base = self.session.as_mut_ptr().cast::<u8>();
        match u.int_in_range(0..=40u8).unwrap_or(0) {
            0 => null_mut(),
            // Misaligned: still inside our storage, so nothing could be hurt.
            1 => base
                .wrapping_add(1 + usize::from(u.arbitrary::<u8>().unwrap_or(0) % 7))
                .cast(),
            _ => base.cast(),
        }
    }

    fn head_ptr(&mut self, u: &mut Unstructured<'_>) -> *mut fieldauth_head {
        let base = self.head.as_mut_ptr().cast::<u8>();
        match u.int_in_range(0..=40u8).unwrap_or(0) {
            0 => null_mut(),
            1 => base.wrapping_add(4).cast(),
            _ => base.cast(),
        }
    }

    /// An output buffer: ours, or (sometimes) one overlapping the session,
    /// which the library must refuse.
    fn out_buf(&mut self, u: &mut Unstructured<'_>) -> (*mut u8, usize, bool, bool) {
        if u.ratio(1, 30).unwrap_or(false) {
            let p = self.session.as_mut_ptr().cast::<u8>().wrapping_add(64);
            return (p, 16, true, true);
        }
        let (p, n, valid) = region(u, self.buf.as_mut_ptr(), BUF);
        (p, n, valid, false)
    }

    fn input(&mut self, u: &mut Unstructured<'_>) -> (*const u8, usize) {
        let cap = self.pool.len();
        let base = self.pool.as_mut_ptr();
        let start = u.int_in_range(0..=cap).unwrap_or(0);
        let (p, n, valid) = region(u, base.wrapping_add(start), cap - start);
        let _ = valid;
        (p.cast_const(), n)
    }

    fn fstr(&mut self, u: &mut Unstructured<'_>, plausible: &'static str) -> fieldauth_str {
        if u.ratio(3, 4).unwrap_or(true) {
            return fieldauth_str {
                ptr: plausible.as_ptr(),
                len: plausible.len(),
            };
        }
        let (ptr, len) = self.input(u);
        fieldauth_str { ptr, len }
    }

    fn config(&mut self, u: &mut Unstructured<'_>) -> fieldauth_config {
        let mut c: fieldauth_config = zeroed();
        let base = *u
            .choose(&[
                "https://api.example.com",
                "http://127.0.0.1:8080/autotask",
                "http://evil.example",
                "https://h/x?limit=",
            ])
            .unwrap_or(&"https://h");
        c.base_url = self.fstr(u, base);
        c.client_id = self.fstr(u, "demo-client");
        c.client_secret = self.fstr(u, "demo-secret");
        c.username = self.fstr(u, "tech@example.com");
        c.password = self.fstr(u, "pw");
        c.api_key = self.fstr(u, "key-123");
        c.scope = self.fstr(u, "api");
        c.redirect_uri = self.fstr(u, "https://handheld.example/cb");
        c.allow_insecure = u32::from(u.int_in_range(0..=2u8).unwrap_or(0));
        c.max_wait_s = u.arbitrary().unwrap_or(0);
        c.resource = self.fstr(u, "https://api.example/");
        c.token_params = self.fstr(u, "tenant=acme&x=a%20b");
        c.authorize_params = self.fstr(u, "prompt=consent");
        c
    }

    fn step(&mut self, u: &mut Unstructured<'_>, now: &mut u64) {
        *now = now.wrapping_add(u64::from(u.arbitrary::<u16>().unwrap_or(0)) * 100);
        let now_ms = if u.ratio(1, 20).unwrap_or(false) {
            u.arbitrary().unwrap_or(0)
        } else {
            *now
        };
        let op = u.int_in_range(0..=27u8).unwrap_or(0);
        match op {
            0 => {
                let id = if u.ratio(7, 8).unwrap_or(true) {
                    u32::from(u.int_in_range(0..=6u8).unwrap_or(0))
                } else {
                    u.arbitrary().unwrap_or(0)
                };
                let cfg = self.config(u);
                let s = self.session_ptr(u);
                let cfg_ptr: *const fieldauth_config = if u.ratio(1, 20).unwrap_or(false) {
                    null()
                } else {
                    &cfg
                };
                // SAFETY: storage and config valid (or NULL / misaligned, refused).
                let st = unsafe {
                    fieldauth_session_init_preset(s, id, cfg_ptr, u.arbitrary().unwrap_or(0))
                };
                self.check(st);
            }
            1 => {
                let mut p: fieldauth_profile = zeroed();
                let id = u32::from(u.int_in_range(0..=7u8).unwrap_or(0));
                // SAFETY: a valid out pointer.
                let st = unsafe { fieldauth_profile_preset(id, &mut p) };
                self.check(st);
                if u.ratio(1, 2).unwrap_or(false) {
                    let fields = [
                        &mut p.mode,
                        &mut p.format,
                        &mut p.client_auth,
                        &mut p.revoke_style,
                        &mut p.keys,
                        &mut p.placement,
                        &mut p.reset_mode,
                    ];
                    let i = u.choose_index(fields.len()).unwrap_or(0);
                    *fields.into_iter().nth(i).unwrap() = u.arbitrary().unwrap_or(0);
                }
                if u.ratio(1, 3).unwrap_or(false) {
                    p.placement_name = self.fstr(u, "access_token");
                    p.token_path = self.fstr(u, "/oauth/token");
                    p.expired_token_phrase = self.fstr(u, "expired");
                }
                p.refresh_fraction_pct = u.int_in_range(0..=120u32).unwrap_or(10);
                p.backoff.max_attempts = u.int_in_range(0..=300u32).unwrap_or(3);
                p.token_budget.burst = u.int_in_range(0..=20u32).unwrap_or(1);
                let cfg = self.config(u);
                let s = self.session_ptr(u);
                // SAFETY: valid pointers (or NULL / misaligned, refused).
                let st = unsafe { fieldauth_session_init(s, &p, &cfg, u.arbitrary().unwrap_or(0)) };
                self.check(st);
            }
            2 => {
                let s = self.session_ptr(u);
                let mut a: fieldauth_action = zeroed();
                a.reserved = 77;
                // SAFETY: valid pointers.
                let st = unsafe { fieldauth_session_poll(s, now_ms, &mut a) };
                self.check(st);
                if st == FIELDAUTH_OK {
                    assert_eq!(a.reserved, 0);
                } else {
                    assert_eq!(a.reserved, 77, "out written on error");
                }
            }
            3 | 4 | 5 | 6 => {
                let s = self.session_ptr(u);
                let (b, n, valid, overlap) = self.out_buf(u);
                self.arm();
                let mut len = SENTINEL;
                let mut total = SENTINEL;
                // SAFETY: valid pointers or refused lengths; an overlapping
                // buffer lies inside the session storage.
                let st = unsafe {
                    match op {
                        3 => fieldauth_session_write_token_request(s, now_ms, b, n, &mut len),
                        4 => {
                            let off = usize::from(u.arbitrary::<u16>().unwrap_or(0)) % 1024;
                            fieldauth_session_write_token_request_window(
                                s, now_ms, off, b, n, &mut len, &mut total,
                            )
                        }
                        5 => {
                            let mut parts: fieldauth_request_parts = zeroed();
                            let st = fieldauth_session_write_token_request_parts(
                                s, now_ms, b, n, &mut len, &mut parts,
                            );
                            if st == FIELDAUTH_OK {
                                let lo = b as usize;
                                let inside = |p: *const u8, l: usize| {
                                    l == 0 || (p as usize >= lo && p as usize + l <= lo + len)
                                };
                                assert!(inside(parts.target.ptr, parts.target.len));
                                assert!(inside(parts.body.ptr, parts.body.len));
                                assert!(inside(parts.raw.ptr, parts.raw.len));
                                assert!(parts.header_count <= FIELDAUTH_MAX_HEADERS);
                                for h in &parts.headers[..parts.header_count] {
                                    assert!(
                                        inside(h.name.ptr, h.name.len)
                                            && inside(h.value.ptr, h.value.len)
                                    );
                                }
                            }
                            st
                        }
                        _ => fieldauth_session_token_request_url(s, b, n, &mut len),
                    }
                };
                self.check(st);
                assert!(
                    !(overlap && st == FIELDAUTH_OK),
                    "an output buffer overlapping the session was accepted"
                );
                if !overlap {
                    self.canaries(n, valid);
                }
                self.out_len(st, len, n);
                if op == 4 && st == FIELDAUTH_OK {
                    assert!(total != SENTINEL && len <= n);
                }
            }
            7 => {
                let h = self.head_ptr(u);
                // SAFETY: head storage (or NULL / misaligned).
                let st = unsafe { fieldauth_head_init(h) };
                self.check(st);
            }
            8 => {
                let h = self.head_ptr(u);
                let (p, n) = self.input(u);
                let mut consumed = SENTINEL;
                let mut complete = 77u32;
                // SAFETY: as above.
                let st = unsafe { fieldauth_head_feed(h, p, n, &mut consumed, &mut complete) };
                self.check(st);
                if st == FIELDAUTH_OK {
                    assert!(consumed <= n && complete <= 1);
                } else {
                    assert_eq!((consumed, complete), (SENTINEL, 77));
                }
            }
            9 => {
                let h = self.head_ptr(u);
                let mut info: fieldauth_response_info = zeroed();
                // SAFETY: as above.
                let st = unsafe { fieldauth_head_get_info(h, &mut info) };
                self.check(st);
            }
            10 => {
                let s = self.session_ptr(u);
                let h = self.head_ptr(u);
                // SAFETY: as above.
                let st = unsafe { fieldauth_session_feed_token_head(s, now_ms, h) };
                self.check(st);
            }
            11 => {
                let s = self.session_ptr(u);
                let (p, n) = self.input(u);
                let mut consumed = SENTINEL;
                let mut ev: fieldauth_event = zeroed();
                // SAFETY: as above.
                let st = unsafe {
                    fieldauth_session_feed_token_body(s, now_ms, p, n, &mut consumed, &mut ev)
                };
                self.check(st);
                if st == FIELDAUTH_OK {
                    assert!(consumed <= n);
                }
            }
            12 => {
                let s = self.session_ptr(u);
                let mut ev: fieldauth_event = zeroed();
                // SAFETY: as above.
                let st = unsafe {
                    if u.arbitrary::<bool>().unwrap_or(false) {
                        fieldauth_session_feed_token_eof(s, now_ms, &mut ev)
                    } else {
                        fieldauth_session_report_transport_error(s, now_ms, &mut ev)
                    }
                };
                self.check(st);
            }
            13 => {
                let s = self.session_ptr(u);
                let target: &'static str = u
                    .choose(&[
                        "/api/v1/items",
                        "/api/v1/items?limit=",
                        "/w?x=1&",
                        "/a b",
                        "",
                    ])
                    .copied()
                    .unwrap_or("/");
                let (tp, tn) = if u.ratio(3, 4).unwrap_or(true) {
                    (target.as_ptr(), target.len())
                } else {
                    self.input(u)
                };
                let (b, n, valid, overlap) = self.out_buf(u);
                self.arm();
                let mut len = SENTINEL;
                let mut au: fieldauth_authorization = zeroed();
                // SAFETY: as above.
                let st = unsafe {
                    fieldauth_session_authorize(s, now_ms, tp, tn, b, n, &mut len, &mut au)
                };
                self.check(st);
                assert!(!(overlap && st == FIELDAUTH_OK));
                if !overlap {
                    self.canaries(n, valid);
                }
                self.out_len(st, len, n);
                if st == FIELDAUTH_OK && au.kind == FIELDAUTH_AUTHORIZATION_SEND {
                    let out = &self.buf[..len];
                    if au.credential == FIELDAUTH_CREDENTIAL_HEADER {
                        assert!(out.ends_with(b"\r\n"));
                        assert!(
                            !out[..len - 2]
                                .iter()
                                .any(|&c| c == b'\r' || c == b'\n' || c == 0),
                            "header injection"
                        );
                    } else {
                        assert!(!out.iter().any(|&c| c <= b' ' || c == 0x7f));
                    }
                }
            }
            14 => {
                let s = self.session_ptr(u);
                let h = self.head_ptr(u);
                let (p, n) = self.input(u);
                let mut v: fieldauth_verdict = zeroed();
                // SAFETY: as above.
                let st =
                    unsafe { fieldauth_session_report_api_response(s, now_ms, h, p, n, &mut v) };
                self.check(st);
            }
            15 => {
                let s = self.session_ptr(u);
                let mut len = SENTINEL;
                // SAFETY: as above.
                let st = unsafe { fieldauth_session_snapshot_len(s, &mut len) };
                self.check(st);
                let (b, n, valid, overlap) = self.out_buf(u);
                self.arm();
                let mut out = SENTINEL;
                let unix = u.arbitrary().unwrap_or(1_700_000_000_000u64);
                // SAFETY: as above.
                let st = unsafe { fieldauth_session_snapshot(s, now_ms, unix, b, n, &mut out) };
                self.check(st);
                if !overlap {
                    self.canaries(n, valid);
                }
                self.out_len(st, out, n);
                if st == FIELDAUTH_OK && !overlap && u.arbitrary::<bool>().unwrap_or(true) {
                    // Restore it, perhaps damaged.
                    let mut img = self.buf[..out].to_vec();
                    if let Ok(i) = u.choose_index(img.len().max(1)) {
                        if u.arbitrary::<bool>().unwrap_or(false) && i < img.len() {
                            img[i] ^= u.arbitrary::<u8>().unwrap_or(1) | 1;
                        }
                    }
                    // SAFETY: as above.
                    let st = unsafe {
                        fieldauth_session_restore(s, now_ms, unix, img.as_ptr(), img.len())
                    };
                    self.check(st);
                }
            }
            16 => {
                let s = self.session_ptr(u);
                let (p, n) = self.input(u);
                // SAFETY: as above.
                let st = unsafe {
                    fieldauth_session_restore(s, now_ms, u.arbitrary().unwrap_or(0), p, n)
                };
                self.check(st);
            }
            17 | 18 | 19 => {
                let s = self.session_ptr(u);
                let (b, n, valid, overlap) = self.out_buf(u);
                self.arm();
                let mut len = SENTINEL;
                // SAFETY: as above.
                let st = unsafe {
                    match op {
                        17 => {
                            let mut d: fieldauth_device_display = zeroed();
                            let st = fieldauth_session_device_display(s, b, n, &mut len, &mut d);
                            if st == FIELDAUTH_OK {
                                let lo = b as usize;
                                for t in
                                    [d.user_code, d.verification_uri, d.verification_uri_complete]
                                {
                                    assert!(
                                        t.len == 0
                                            || (t.ptr as usize >= lo
                                                && t.ptr as usize + t.len <= lo + len)
                                    );
                                }
                            }
                            st
                        }
                        18 => fieldauth_session_failure_description(s, b, n, &mut len),
                        _ => fieldauth_session_granted_scope(s, b, n, &mut len),
                    }
                };
                self.check(st);
                if !overlap {
                    self.canaries(n, valid);
                }
                self.out_len(st, len, n);
            }
            20 => {
                let s = self.session_ptr(u);
                let (vp, vn) = self.input(u);
                let (sp, sn) = self.input(u);
                let (b, n, valid, overlap) = self.out_buf(u);
                self.arm();
                let mut len = SENTINEL;
                // SAFETY: as above.
                let st = unsafe {
                    fieldauth_session_authorization_url(s, vp, vn, sp, sn, b, n, &mut len)
                };
                self.check(st);
                if !overlap {
                    self.canaries(n, valid);
                }
                self.out_len(st, len, n);
            }
            21 => {
                let s = self.session_ptr(u);
                let (cp, cn) = self.input(u);
                let (sp, sn) = self.input(u);
                // SAFETY: as above.
                let st = unsafe { fieldauth_session_set_authorization_code(s, cp, cn, sp, sn) };
                self.check(st);
            }
            22 => {
                let s = self.session_ptr(u);
                // SAFETY: as above.
                let st = unsafe {
                    match u.int_in_range(0..=4u8).unwrap_or(0) {
                        0 => {
                            fieldauth_session_set_wall_clock(s, now_ms, u.arbitrary().unwrap_or(0))
                        }
                        1 => fieldauth_session_reseed(s, u.arbitrary().unwrap_or(0)),
                        2 => fieldauth_session_revoke(s),
                        3 => fieldauth_session_restart(s),
                        _ => fieldauth_session_clear(s),
                    }
                };
                self.check(st);
            }
            23 => {
                let s = self.session_ptr(u);
                let mut info: fieldauth_session_info = zeroed();
                // SAFETY: as above.
                let st = unsafe { fieldauth_session_get_info(s, &mut info) };
                self.check(st);
            }
            24 => {
                let b = self.body.as_mut_ptr().cast::<fieldauth_body>();
                let h = self.head_ptr(u);
                // SAFETY: as above.
                let st = unsafe { fieldauth_body_init(b, h) };
                self.check(st);
                let (p, n) = self.input(u);
                let mut pr: fieldauth_body_progress = zeroed();
                // SAFETY: as above.
                let st = unsafe { fieldauth_body_read(b, p, n, &mut pr) };
                self.check(st);
                if st == FIELDAUTH_OK {
                    assert!(pr.consumed <= n);
                    assert!(pr
                        .data_offset
                        .checked_add(pr.data_len)
                        .is_some_and(|e| e <= pr.consumed));
                }
                // SAFETY: as above.
                let st = unsafe { fieldauth_body_finish(b) };
                self.check(st);
            }
            25 => self.exchange(u, now_ms),
            26 => {
                let code: u32 = u.arbitrary().unwrap_or(0);
                // SAFETY: static strings.
                unsafe {
                    let m = fieldauth_status_message(code);
                    assert!(!m.is_null());
                    let _ = CStr::from_ptr(m);
                    let n = fieldauth_preset_name(code % 16);
                    if !n.is_null() {
                        let _ = CStr::from_ptr(n);
                    }
                    let _ = CStr::from_ptr(fieldauth_version());
                }
                let _ = fieldauth_version_number();
                assert_eq!(fieldauth_session_sizeof(), size_of::<fieldauth_session>());
                assert_eq!(fieldauth_head_sizeof(), size_of::<fieldauth_head>());
                assert_eq!(fieldauth_body_sizeof(), size_of::<fieldauth_body>());
                let mut p: fieldauth_profile = zeroed();
                // SAFETY: valid out pointer.
                let st = unsafe { fieldauth_profile_preset(code, &mut p) };
                self.check(st);
            }
            _ => {
                // A canned token response through the head parser, so the
                // session path past the head is reached.
                let body = *u
                    .choose(&[
                        r#"{"access_token":"tok-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1","scope":"api"}"#,
                        r#"{"token":"pw-tok","expires_in":86400,"message":"ok"}"#,
                        r#"{"error":"invalid_client","error_description":"bad \u00e9"}"#,
                        r#"{"device_code":"dc","user_code":"UC-1","verification_uri":"https://v.example","expires_in":600,"interval":5}"#,
                    ])
                    .unwrap_or(&"{}");
                let status = *u.choose(&[200u16, 400, 401, 429, 503]).unwrap_or(&200);
                let raw = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let h = self.head.as_mut_ptr().cast::<fieldauth_head>();
                let s = self.session.as_mut_ptr().cast::<fieldauth_session>();
                let (mut consumed, mut complete) = (0usize, 0u32);
                let mut ev: fieldauth_event = zeroed();
                // SAFETY: valid pointers throughout.
                unsafe {
                    self.check(fieldauth_head_init(h));
                    let st = fieldauth_head_feed(
                        h,
                        raw.as_ptr(),
                        raw.len(),
                        &mut consumed,
                        &mut complete,
                    );
                    self.check(st);
                    self.check(fieldauth_session_feed_token_head(s, now_ms, h));
                    let rest = &raw.as_bytes()[consumed.min(raw.len())..];
                    let st = fieldauth_session_feed_token_body(
                        s,
                        now_ms,
                        rest.as_ptr(),
                        rest.len(),
                        &mut consumed,
                        &mut ev,
                    );
                    self.check(st);
                }
            }
        }
    }

    fn out_len(&self, st: fieldauth_status, len: usize, n: usize) {
        if st == FIELDAUTH_OK {
            assert!(len <= n, "out_len {len} past the {n}-byte buffer");
        } else if st == FIELDAUTH_ERR_BUFFER_TOO_SMALL {
            assert!(
                len > n && len != SENTINEL,
                "BUFFER_TOO_SMALL with out_len {len} for {n} bytes"
            );
        } else {
            assert_eq!(len, SENTINEL, "out_len written on error {st}");
        }
    }

    fn exchange(&mut self, u: &mut Unstructured<'_>, now_ms: u64) {
        let body = r#"{"access_token":"tok-x","token_type":"Bearer","expires_in":600}"#;
        let canned = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let response = if u.ratio(1, 2).unwrap_or(true) {
            canned.into_bytes()
        } else {
            let (p, n) = self.input(u);
            if p.is_null() || n > self.pool.len() {
                Vec::new()
            } else {
                // SAFETY: a valid region of the pool.
                unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
            }
        };
        let mut t = Transport {
            response,
            at: 0,
            script: u.bytes(16).unwrap_or(&[]).to_vec(),
            step: 0,
            sent: 0,
        };
        let tr = fieldauth_transport {
            ctx: (&mut t as *mut Transport).cast(),
            send: Some(send),
            recv: Some(recv),
        };
        let s = self.session_ptr(u);
        let h = self.head_ptr(u);
        let n = u.int_in_range(0..=256usize).unwrap_or(128);
        let mut ev: fieldauth_event = zeroed();
        for _ in 0..u.int_in_range(1..=8u8).unwrap_or(1) {
            self.arm();
            // SAFETY: valid pointers; the callbacks get `t`, alive for the call.
            let st = unsafe {
                fieldauth_session_exchange(s, h, now_ms, &tr, self.buf.as_mut_ptr(), n, &mut ev)
            };
            self.check(st);
            self.canaries(n, true);
            if st != FIELDAUTH_ERR_WOULD_BLOCK {
                break;
            }
        }
    }
}

/// A scripted transport: each call takes one script byte deciding whether it
/// works (and how much), blocks, fails, closes or returns more than asked.
struct Transport {
    response: Vec<u8>,
    at: usize,
    script: Vec<u8>,
    step: usize,
    sent: usize,
}

impl Transport {
    fn next(&mut self) -> u8 {
        let b = self
            .script
            .get(self.step % self.script.len().max(1))
            .copied()
            .unwrap_or(0x40);
        self.step += 1;
        b
    }
}

unsafe extern "C" fn send(ctx: *mut c_void, _buf: *const u8, len: usize) -> isize {
    // SAFETY: `ctx` is the harness's Transport, alive for the exchange.
    let t = unsafe { &mut *ctx.cast::<Transport>() };
    match t.next() {
        0 => 0,
        1 => -1,
        2 => len as isize + 1,
        b => {
            let n = (usize::from(b) % 97 + 1).min(len);
            t.sent += n;
            n as isize
        }
    }
}

unsafe extern "C" fn recv(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize {
    // SAFETY: as in `send`; `buf` is writable for `len` bytes (the contract
    // the library promises its callbacks).
    let t = unsafe { &mut *ctx.cast::<Transport>() };
    match t.next() {
        0 => 0,
        1 => -1,
        3 => len as isize + 1,
        b => {
            let rest = &t.response[t.at.min(t.response.len())..];
            if rest.is_empty() {
                return FIELDAUTH_TRANSPORT_CLOSED;
            }
            let n = (usize::from(b) % 61 + 1).min(len).min(rest.len());
            // SAFETY: `n <= len`.
            unsafe { core::ptr::copy_nonoverlapping(rest.as_ptr(), buf, n) };
            t.at += n;
            n as isize
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first half is the pool strings and inputs point into, the second
    // half the script of calls.
    let (pool, script) = data.split_at(data.len() / 2);
    let mut u = Unstructured::new(script);
    let unknown = fieldauth_status_message(0xdead_beef);
    let mut w = World {
        session: vec![0u64; FIELDAUTH_SESSION_WORDS + 1],
        head: vec![0u64; FIELDAUTH_HEAD_WORDS + 1],
        body: vec![0u64; FIELDAUTH_BODY_WORDS + 1],
        buf: vec![0xa5u8; BUF + CANARY],
        pool: pool.to_vec(),
        // SAFETY: a static NUL-terminated string.
        unknown_message: unsafe { CStr::from_ptr(unknown) },
    };
    let mut now = 10_000_000u64;
    let mut steps = 0;
    while !u.is_empty() && steps < 64 {
        w.step(&mut u, &mut now);
        steps += 1;
    }
    // SAFETY: our storage.
    let st = unsafe { fieldauth_session_clear(w.session.as_mut_ptr().cast()) };
    assert_eq!(st, FIELDAUTH_OK);
    assert!(
        w.session[..FIELDAUTH_SESSION_WORDS].iter().all(|&x| x == 0),
        "clear left bytes"
    );
});
