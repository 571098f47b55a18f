//! Fentu refresh-token rotation with reuse detection, switched from the
//! command line and from `EmulatorConfig`: with rotation on, every refresh
//! retires the refresh token sent and a replay of a retired one revokes the
//! whole grant (as oidc-provider does); with rotation off, the refresh token
//! stays valid and no new one is issued.

mod common;

use common::*;
use fieldauth_emulator::cli::parse_args;
use fieldauth_emulator::encoding::encode_form;
use fieldauth_emulator::{Emulator, EmulatorConfig, Request, Response};

fn refresh(emu: &mut Emulator, now_ms: u64, refresh_token: &str) -> Response {
    emu.handle(
        now_ms,
        &form_post(
            "/fentu/oauth/token",
            &encode_form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", DEMO_ID),
                ("client_secret", DEMO_SECRET),
            ]),
        ),
    )
}

fn api_status(emu: &mut Emulator, now_ms: u64, access: &str) -> u16 {
    emu.handle(
        now_ms,
        &bearer(Request::get("/fentu/v1/work-orders"), access),
    )
    .status
}

#[test]
fn rotation_flags_on_the_command_line() {
    let default = parse_args(Vec::<String>::new()).unwrap();
    assert!(default.config.fentu.rotate_refresh_tokens, "on by default");
    for (args, on) in [
        (vec!["--no-rotate-refresh-tokens"], false),
        (vec!["--rotate-refresh-tokens"], true),
        (vec!["--no-rotate"], false),
        (vec!["--rotate"], true),
        // The last one wins.
        (
            vec!["--no-rotate-refresh-tokens", "--rotate-refresh-tokens"],
            true,
        ),
        (
            vec!["--rotate-refresh-tokens", "--no-rotate-refresh-tokens"],
            false,
        ),
    ] {
        let cli = parse_args(args.clone()).unwrap();
        assert_eq!(cli.config.fentu.rotate_refresh_tokens, on, "{args:?}");
    }
    // Listed in --help.
    for flag in ["--rotate-refresh-tokens", "--no-rotate-refresh-tokens"] {
        assert!(
            fieldauth_emulator::cli::USAGE.contains(flag),
            "{flag} not in --help"
        );
    }
}

#[test]
fn rotation_switch_in_the_config_builder() {
    assert!(EmulatorConfig::default().fentu.rotate_refresh_tokens);
    let off = EmulatorConfig::default().with_refresh_token_rotation(false);
    assert!(!off.fentu.rotate_refresh_tokens);
    assert!(
        off.with_refresh_token_rotation(true)
            .fentu
            .rotate_refresh_tokens
    );
}

#[test]
fn rotation_off_keeps_the_refresh_token() {
    let mut emu = Emulator::new(EmulatorConfig::default().with_refresh_token_rotation(false));
    let login = fentu_login(&mut emu, 0, "read:work-orders");
    let rt = field(&login, "refresh_token");
    let mut accesses = Vec::new();
    for i in 1..=3u64 {
        let resp = refresh(&mut emu, i * 1_000, &rt);
        assert_eq!(resp.status, 200, "{}", resp.body_text());
        assert!(json(&resp).get("refresh_token").is_none());
        accesses.push(field(&resp, "access_token"));
    }
    for access in &accesses {
        assert_eq!(api_status(&mut emu, 5_000, access), 200);
    }
    let stats = emu.stats();
    let fentu = stats.provider(fieldauth_emulator::Provider::Fentu);
    assert_eq!((fentu.refresh_replays, fentu.grants_revoked), (0, 0));
}

#[test]
fn replay_of_a_rotated_refresh_token_revokes_the_grant_and_is_counted() {
    let mut emu = Emulator::new(EmulatorConfig::default().with_refresh_token_rotation(true));
    let login = fentu_login(&mut emu, 0, "read:work-orders");
    let (access0, rt0) = (
        field(&login, "access_token"),
        field(&login, "refresh_token"),
    );
    // Two workers hold rt0; the first refreshes and gets rt1...
    let first = refresh(&mut emu, 1_000, &rt0);
    assert_eq!(first.status, 200, "{}", first.body_text());
    let (access1, rt1) = (
        field(&first, "access_token"),
        field(&first, "refresh_token"),
    );
    assert_ne!(rt1, rt0);
    assert_eq!(api_status(&mut emu, 1_500, &access1), 200);
    // ...the second refreshes with rt0 too: a replay.
    let loser = refresh(&mut emu, 2_000, &rt0);
    assert_eq!(
        (loser.status, field(&loser, "error").as_str()),
        (400, "invalid_grant")
    );
    assert!(emu
        .log()
        .last()
        .unwrap()
        .note
        .as_deref()
        .unwrap()
        .contains("replayed"));
    // The grant is gone: every token of it, old and new.
    assert_eq!(api_status(&mut emu, 3_000, &access0), 401);
    assert_eq!(api_status(&mut emu, 3_000, &access1), 401);
    assert_eq!(refresh(&mut emu, 3_000, &rt1).status, 400);
    assert_eq!(
        emu.live_tokens(fieldauth_emulator::Provider::Fentu, 3_000),
        0
    );

    let stats = emu.stats();
    let fentu = stats.provider(fieldauth_emulator::Provider::Fentu);
    assert_eq!(fentu.refresh_replays, 1);
    assert_eq!(fentu.grants_revoked, 1);
    // Code exchange, good refresh, replay, refresh with the revoked rt1.
    assert_eq!((fentu.token_requests, fentu.token_succeeded), (4, 2));

    // A second replay is counted as one, but the grant was revoked once.
    assert_eq!(refresh(&mut emu, 4_000, &rt0).status, 400);
    let stats = emu.stats();
    let fentu = stats.provider(fieldauth_emulator::Provider::Fentu);
    assert_eq!((fentu.refresh_replays, fentu.grants_revoked), (2, 1));

    // Another grant of the same client is untouched by all this.
    let other = fentu_login(&mut emu, 5_000, "read:work-orders");
    let other_rt = field(&other, "refresh_token");
    assert_eq!(refresh(&mut emu, 6_000, &other_rt).status, 200);
    let stats = emu.stats();
    assert_eq!(
        stats
            .provider(fieldauth_emulator::Provider::Fentu)
            .grants_revoked,
        1
    );
}

#[test]
fn other_revocations_of_a_grant_are_counted_but_are_not_replays() {
    let mut emu = emulator();
    // An authorization code used twice revokes what it produced.
    let code = fentu_code(&mut emu, 0, "read:work-orders", "");
    let exchange = form_post(
        "/fentu/oauth/token",
        &encode_form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", DEMO_ID),
            ("client_secret", DEMO_SECRET),
        ]),
    );
    assert_eq!(emu.handle(0, &exchange).status, 200);
    assert_eq!(emu.handle(1, &exchange).status, 400);
    // Revoking a refresh token (RFC 7009) revokes its grant.
    let login = fentu_login(&mut emu, 2, "read:work-orders");
    let rt = field(&login, "refresh_token");
    let revoke = bearer(Request::post("/fentu/oauth/revoke"), &rt);
    assert_eq!(emu.handle(3, &revoke).status, 200);
    let stats = emu.stats();
    let fentu = stats.provider(fieldauth_emulator::Provider::Fentu);
    assert_eq!((fentu.refresh_replays, fentu.grants_revoked), (0, 2));
    // A revoked (not rotated) refresh token sent again is no replay.
    assert_eq!(refresh(&mut emu, 4, &rt).status, 400);
    let stats = emu.stats();
    let fentu = stats.provider(fieldauth_emulator::Provider::Fentu);
    assert_eq!((fentu.refresh_replays, fentu.grants_revoked), (0, 2));
}
