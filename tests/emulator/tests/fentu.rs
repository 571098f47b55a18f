//! Fentu FSM: golden vectors from the seed document (000/001) and the
//! OAuth behaviour around them.

mod common;

use common::*;
use fieldauth_emulator::encoding::encode_form;
use fieldauth_emulator::{Emulator, EmulatorConfig, FentuApiKey, FentuTier, OAuthClient, Request};

const DOC_401: &str =
    r#"{"error":"unauthorized","error_description":"Invalid or expired token","status":401}"#;

#[test]
fn api_key_request_from_the_document_with_rate_limit_headers() {
    let mut emu = emulator();
    // The document's curl: GET /v1/work-orders, Bearer API key, JSON content type.
    let req = bearer(Request::get("/fentu/v1/work-orders"), "fentu-demo-key")
        .with_header("Content-Type", "application/json");
    let resp = emu.handle(0, &req);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    // The document's example headers, exactly.
    assert_eq!(resp.header("X-RateLimit-Limit"), Some("1000"));
    assert_eq!(resp.header("X-RateLimit-Remaining"), Some("999"));
    assert_eq!(resp.header("X-RateLimit-Reset"), Some("1640995200"));
    assert_eq!(resp.header("Date"), Some("Fri, 31 Dec 2021 23:00:00 GMT"));
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let body = json(&resp);
    assert_eq!(body["data"][0]["id"], "WO-1001");
    assert_eq!(body["meta"]["total"], 3);
    let one = emu.handle(
        1,
        &bearer(
            Request::get("/fentu/v1/work-orders/WO-1002"),
            "fentu-demo-key",
        ),
    );
    assert_eq!(json(&one)["data"]["id"], "WO-1002");
    assert_eq!(one.header("X-RateLimit-Remaining"), Some("998"));
    let missing = emu.handle(
        2,
        &bearer(Request::get("/fentu/v1/work-orders/WO-9"), "fentu-demo-key"),
    );
    assert_eq!(missing.status, 404);
    assert_eq!(json(&missing)["status"], 404);
}

#[test]
fn error_body_shape_is_the_documented_one() {
    let mut emu = emulator();
    for req in [
        bearer(Request::get("/fentu/v1/work-orders"), "not-a-key"),
        Request::get("/fentu/v1/work-orders"),
        Request::get("/fentu/v1/work-orders").with_header("Authorization", "fentu-demo-key"),
        Request::get("/fentu/v1/work-orders").with_header("Authorization", "Basic ZGVtbzpkZW1v"),
    ] {
        let resp = emu.handle(0, &req);
        assert_eq!(resp.status, 401);
        assert_eq!(resp.body_text(), DOC_401);
        assert!(resp
            .header("WWW-Authenticate")
            .unwrap()
            .starts_with("Bearer realm="));
    }
    // Two Authorization headers are malformed.
    let two = bearer(bearer(Request::get("/fentu/v1/work-orders"), "a"), "b");
    let resp = emu.handle(0, &two);
    assert_eq!(resp.status, 400);
    assert_eq!(json(&resp)["error"], "invalid_request");
}

#[test]
fn authorization_code_flow_with_the_documented_scopes() {
    let mut emu = emulator();
    // The document's authorization URL, with the space in `scope` encoded
    // as %20 (a raw space is not valid in a request target).
    let target = format!(
        "/fentu/oauth/authorize?client_id=demo-client&redirect_uri={}&scope=read:work-orders%20write:work-orders&response_type=code&state=s1",
        fieldauth_emulator::encoding::encode_component(REDIRECT)
    );
    let resp = emu.handle(0, &Request::get(&target));
    assert_eq!(resp.status, 302);
    let location = resp.header("Location").unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=fentu_code_")),
        "{location}"
    );
    assert!(location.ends_with("&state=s1"));
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();

    let body = encode_form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", DEMO_ID),
        ("client_secret", DEMO_SECRET),
    ]);
    let resp = emu.handle(10, &form_post("/fentu/oauth/token", &body));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.header("Cache-Control"), Some("no-store"));
    assert_eq!(resp.header("Pragma"), Some("no-cache"));
    let token = json(&resp);
    let keys: Vec<&str> = token
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ]
        .into()
    );
    assert!(resp
        .body_text()
        .starts_with(r#"{"access_token":"fentu_at_"#));
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    assert_eq!(token["scope"], "read:work-orders write:work-orders");
    let access = token["access_token"].as_str().unwrap();
    let api = emu.handle(20, &bearer(Request::get("/fentu/v1/work-orders"), access));
    assert_eq!(api.status, 200);

    // Single use: a replay fails and revokes what the code produced.
    let replay = emu.handle(30, &form_post("/fentu/oauth/token", &body));
    assert_eq!(replay.status, 400);
    assert_eq!(json(&replay)["error"], "invalid_grant");
    let api = emu.handle(40, &bearer(Request::get("/fentu/v1/work-orders"), access));
    assert_eq!(api.status, 401);
}

#[test]
fn authorize_validation() {
    let mut emu = Emulator::new(EmulatorConfig {
        fentu: fieldauth_emulator::FentuConfig {
            clients: vec![OAuthClient {
                redirect_uris: vec![REDIRECT.to_owned()],
                ..OAuthClient::demo()
            }],
            ..Default::default()
        },
        ..Default::default()
    });
    let cb = fieldauth_emulator::encoding::encode_component(REDIRECT);
    let get = |emu: &mut Emulator, q: &str| {
        emu.handle(0, &Request::get(&format!("/fentu/oauth/authorize?{q}")))
    };
    // Not redirected: unknown client, missing or unregistered redirect URI.
    for q in [
        format!("client_id=nobody&redirect_uri={cb}&scope=admin&response_type=code"),
        "client_id=demo-client&scope=admin&response_type=code".to_owned(),
        "client_id=demo-client&redirect_uri=http%3A%2F%2Fevil%2Fcb&scope=admin&response_type=code".to_owned(),
        format!("client_id=demo-client&client_id=demo-client&redirect_uri={cb}&scope=admin&response_type=code"),
        format!("client_id=demo-client&redirect_uri={cb}&scope=admin&response_type=code&x=%zz"),
    ] {
        let resp = get(&mut emu, &q);
        assert_eq!(resp.status, 400, "{q}");
        assert!(resp.header("Location").is_none());
        assert_eq!(json(&resp)["status"], 400);
    }
    // Redirected with an error (and the state).
    for (q, error) in [
        (format!("client_id=demo-client&redirect_uri={cb}&scope=admin&response_type=token&state=z"), "unsupported_response_type"),
        (format!("client_id=demo-client&redirect_uri={cb}&scope=admin&state=z"), "invalid_request"),
        (format!("client_id=demo-client&redirect_uri={cb}&scope=read:everything&response_type=code&state=z"), "invalid_scope"),
        (format!("client_id=demo-client&redirect_uri={cb}&response_type=code&state=z"), "invalid_scope"),
        (format!("client_id=demo-client&redirect_uri={cb}&scope=admin&response_type=code&state=z&code_challenge_method=S256"), "invalid_request"),
        (format!("client_id=demo-client&redirect_uri={cb}&scope=admin&response_type=code&state=z&code_challenge=short&code_challenge_method=S256"), "invalid_request"),
        (format!("client_id=demo-client&redirect_uri={cb}&scope=admin&response_type=code&state=z&code_challenge={}&code_challenge_method=S512", "a".repeat(43)), "invalid_request"),
    ] {
        let resp = get(&mut emu, &q);
        assert_eq!(resp.status, 302, "{q}");
        let location = resp.header("Location").unwrap();
        assert!(location.starts_with(&format!("{REDIRECT}?error={error}&")), "{location}");
        assert!(location.ends_with("&state=z"), "{location}");
    }
    let resp = emu.handle(0, &form_post("/fentu/oauth/authorize", ""));
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("Allow"), Some("GET"));
}

#[test]
fn pkce_rfc7636_appendix_b_through_the_flow() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let exchange = |emu: &mut Emulator, code: &str, verifier: Option<&str>| {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", DEMO_ID),
            ("client_secret", DEMO_SECRET),
        ];
        if let Some(v) = verifier {
            pairs.push(("code_verifier", v));
        }
        emu.handle(0, &form_post("/fentu/oauth/token", &encode_form(&pairs)))
    };
    let mut emu = emulator();
    let s256 = format!("&code_challenge={challenge}&code_challenge_method=S256");
    let code = fentu_code(&mut emu, 0, "read:work-orders", &s256);
    assert_eq!(exchange(&mut emu, &code, Some(verifier)).status, 200);

    let code = fentu_code(&mut emu, 0, "read:work-orders", &s256);
    let wrong = exchange(&mut emu, &code, Some(&"x".repeat(43)));
    assert_eq!(
        (wrong.status, field(&wrong, "error").as_str()),
        (400, "invalid_grant")
    );

    let code = fentu_code(&mut emu, 0, "read:work-orders", &s256);
    let missing = exchange(&mut emu, &code, None);
    assert_eq!(
        (missing.status, field(&missing, "error").as_str()),
        (400, "invalid_request")
    );

    // plain: the verifier is the challenge; also the default method.
    let code = fentu_code(
        &mut emu,
        0,
        "read:work-orders",
        &format!("&code_challenge={verifier}"),
    );
    assert_eq!(exchange(&mut emu, &code, Some(verifier)).status, 200);

    // A verifier without a challenge is refused.
    let code = fentu_code(&mut emu, 0, "read:work-orders", "");
    assert_eq!(exchange(&mut emu, &code, Some(verifier)).status, 400);
    assert!(emu
        .log()
        .iter()
        .any(|e| e.note.as_deref() == Some("PKCE verification failed")));
}

#[test]
fn public_client_needs_pkce_and_no_secret() {
    let mut emu = Emulator::new(EmulatorConfig {
        fentu: fieldauth_emulator::FentuConfig {
            clients: vec![OAuthClient {
                client_secret: None,
                ..OAuthClient::demo()
            }],
            ..Default::default()
        },
        ..Default::default()
    });
    let cb = fieldauth_emulator::encoding::encode_component(REDIRECT);
    let resp = emu.handle(0, &Request::get(&format!(
        "/fentu/oauth/authorize?client_id=demo-client&redirect_uri={cb}&scope=admin&response_type=code"
    )));
    assert!(resp
        .header("Location")
        .unwrap()
        .contains("error=invalid_request"));
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = fentu_code(
        &mut emu,
        0,
        "admin",
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
    );
    let body = encode_form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", DEMO_ID),
        ("code_verifier", verifier),
    ]);
    assert_eq!(
        emu.handle(0, &form_post("/fentu/oauth/token", &body))
            .status,
        200
    );
}

#[test]
fn refresh_with_the_documented_form_body_and_rotation() {
    let mut config = EmulatorConfig::default();
    config.set_client("YOUR_CLIENT_ID", "YOUR_CLIENT_SECRET");
    let mut emu = Emulator::new(config);
    let code = {
        let cb = fieldauth_emulator::encoding::encode_component(REDIRECT);
        let r = emu.handle(0, &Request::get(&format!(
            "/fentu/oauth/authorize?client_id=YOUR_CLIENT_ID&redirect_uri={cb}&scope=read:work-orders&response_type=code"
        )));
        let loc = r.header("Location").unwrap().to_owned();
        loc.split("code=").nth(1).unwrap().to_owned()
    };
    let first = emu.handle(0, &form_post("/fentu/oauth/token", &format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=YOUR_CLIENT_ID&client_secret=YOUR_CLIENT_SECRET",
        fieldauth_emulator::encoding::encode_component(REDIRECT)
    )));
    assert_eq!(first.status, 200, "{}", first.body_text());
    let refresh = field(&first, "refresh_token");

    // The document's body, as printed (display line breaks after each `&`):
    // a strict server refuses the line breaks...
    let printed = format!(
        "grant_type=refresh_token&\nrefresh_token={refresh}&\nclient_id=YOUR_CLIENT_ID&\nclient_secret=YOUR_CLIENT_SECRET"
    );
    let resp = emu.handle(1_000, &form_post("/fentu/oauth/token", &printed));
    assert_eq!(resp.status, 400);
    assert_eq!(json(&resp)["error"], "invalid_request");
    assert_eq!(json(&resp)["status"], 400);
    // ...and takes the body as it goes on the wire.
    let wire = printed.replace('\n', "");
    let second = emu.handle(2_000, &form_post("/fentu/oauth/token", &wire));
    assert_eq!(second.status, 200, "{}", second.body_text());
    let new_refresh = field(&second, "refresh_token");
    assert_ne!(new_refresh, refresh);
    assert_eq!(json(&second)["expires_in"], 3600);
    let access = field(&second, "access_token");
    assert_eq!(
        emu.handle(
            3_000,
            &bearer(Request::get("/fentu/v1/work-orders"), &access)
        )
        .status,
        200
    );

    // Replaying the rotated refresh token fails and revokes the grant.
    let replay = emu.handle(4_000, &form_post("/fentu/oauth/token", &wire));
    assert_eq!(
        (replay.status, field(&replay, "error").as_str()),
        (400, "invalid_grant")
    );
    assert_eq!(
        emu.handle(
            5_000,
            &bearer(Request::get("/fentu/v1/work-orders"), &access)
        )
        .status,
        401
    );
    let newer = wire.replace(&refresh, &new_refresh);
    assert_eq!(
        emu.handle(6_000, &form_post("/fentu/oauth/token", &newer))
            .status,
        400
    );

    // Wrong secret in the refresh body.
    let bad = newer.replace("YOUR_CLIENT_SECRET", "nope");
    let resp = emu.handle(7_000, &form_post("/fentu/oauth/token", &bad));
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.body_text(),
        r#"{"error":"invalid_client","error_description":"Client authentication failed","status":401}"#
    );
}

#[test]
fn refresh_without_rotation_and_30_day_refresh_lifetime() {
    let mut config = EmulatorConfig::default();
    config.fentu.rotate_refresh_tokens = false;
    let mut emu = Emulator::new(config);
    let login = fentu_login(&mut emu, 0, "read:work-orders read:customers");
    let refresh = field(&login, "refresh_token");
    let body = encode_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh),
        ("client_id", DEMO_ID),
        ("client_secret", DEMO_SECRET),
    ]);
    let thirty_days = 30 * 24 * 3_600 * 1000;
    for at in [1_000, 2_000, thirty_days - 1] {
        let resp = emu.handle(at, &form_post("/fentu/oauth/token", &body));
        assert_eq!(resp.status, 200);
        assert!(
            json(&resp).get("refresh_token").is_none(),
            "no rotation: no new refresh token"
        );
    }
    let resp = emu.handle(thirty_days, &form_post("/fentu/oauth/token", &body));
    assert_eq!(
        (resp.status, field(&resp, "error").as_str()),
        (400, "invalid_grant")
    );

    // Narrowing the scope on refresh is allowed; widening is not.
    let mut emu = emulator();
    let login = fentu_login(&mut emu, 0, "read:work-orders read:customers");
    let refresh = field(&login, "refresh_token");
    let ask = |emu: &mut Emulator, refresh: &str, scope: &str| {
        emu.handle(
            0,
            &form_post(
                "/fentu/oauth/token",
                &encode_form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", DEMO_ID),
                    ("client_secret", DEMO_SECRET),
                    ("scope", scope),
                ]),
            ),
        )
    };
    let wide = ask(&mut emu, &refresh, "admin");
    assert_eq!(field(&wide, "error"), "invalid_scope");
    let narrow = ask(&mut emu, &refresh, "read:customers");
    assert_eq!(field(&narrow, "scope"), "read:customers");
}

#[test]
fn access_tokens_expire_after_an_hour_of_virtual_time() {
    let mut emu = emulator();
    let access = field(
        &fentu_login(&mut emu, 0, "read:work-orders"),
        "access_token",
    );
    let api = bearer(Request::get("/fentu/v1/work-orders"), &access);
    assert_eq!(emu.handle(3_599_999, &api).status, 200);
    let resp = emu.handle(3_600_000, &api);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.body_text(), DOC_401);
    assert_eq!(
        emu.log().last().unwrap().note.as_deref(),
        Some("access token expired")
    );

    let mut config = EmulatorConfig::default().with_token_lifetime(5);
    config.fentu.token_lifetime_s = Some(7);
    let mut emu = Emulator::new(config);
    let login = fentu_login(&mut emu, 0, "read:work-orders");
    assert_eq!(json(&login)["expires_in"], 7);
}

#[test]
fn revocation_with_bearer_and_no_body() {
    let mut emu = emulator();
    let login = fentu_login(&mut emu, 0, "read:work-orders");
    let (access, refresh) = (
        field(&login, "access_token"),
        field(&login, "refresh_token"),
    );
    // The document's request: POST /oauth/revoke, Authorization: Bearer, nothing else.
    let revoke = |token: &str| bearer(Request::post("/fentu/oauth/revoke"), token);
    let resp = emu.handle(0, &revoke(&access));
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    assert_eq!(
        emu.handle(0, &bearer(Request::get("/fentu/v1/work-orders"), &access))
            .status,
        401
    );
    // Revoking a refresh token takes its access tokens with it.
    let body = encode_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh),
        ("client_id", DEMO_ID),
        ("client_secret", DEMO_SECRET),
    ]);
    let refreshed = emu.handle(0, &form_post("/fentu/oauth/token", &body));
    let (access2, refresh2) = (
        field(&refreshed, "access_token"),
        field(&refreshed, "refresh_token"),
    );
    assert_eq!(emu.handle(0, &revoke(&refresh2)).status, 200);
    assert_eq!(
        emu.handle(0, &bearer(Request::get("/fentu/v1/work-orders"), &access2))
            .status,
        401
    );
    // A body (RFC 7009 style) is not what Fentu documents.
    let rfc7009 = form_post("/fentu/oauth/revoke", &format!("token={access2}"));
    assert_eq!(emu.handle(0, &bearer(rfc7009, &access2)).status, 400);
    assert_eq!(emu.handle(0, &revoke("nonsense")).body_text(), DOC_401);
    assert_eq!(
        emu.handle(0, &Request::post("/fentu/oauth/revoke")).status,
        401
    );
    let key = emu.handle(0, &revoke("fentu-demo-key"));
    assert_eq!(
        (key.status, field(&key, "error").as_str()),
        (400, "unsupported_token_type")
    );
}

#[test]
fn scopes_give_403() {
    let mut config = EmulatorConfig::default();
    config.fentu.api_keys.push(FentuApiKey {
        key: "customers-only".to_owned(),
        scopes: vec!["read:customers".to_owned()],
    });
    let mut emu = Emulator::new(config);
    let resp = emu.handle(
        0,
        &bearer(Request::get("/fentu/v1/work-orders"), "customers-only"),
    );
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.body_text(),
        r#"{"error":"insufficient_scope","error_description":"Insufficient permissions: this request needs the read:work-orders scope","status":403}"#
    );
    assert!(resp
        .header("WWW-Authenticate")
        .unwrap()
        .contains("scope=\"read:work-orders\""));
    assert!(resp.header("X-RateLimit-Remaining").is_some());
    assert_eq!(
        emu.handle(
            0,
            &bearer(Request::get("/fentu/v1/customers"), "customers-only")
        )
        .status,
        200
    );

    let access = field(&fentu_login(&mut emu, 0, "read:assets"), "access_token");
    assert_eq!(
        emu.handle(0, &bearer(Request::get("/fentu/v1/work-orders"), &access))
            .status,
        403
    );
    assert_eq!(
        emu.handle(0, &bearer(Request::get("/fentu/v1/assets"), &access))
            .status,
        200
    );
    let admin = field(&fentu_login(&mut emu, 0, "admin"), "access_token");
    assert_eq!(
        emu.handle(0, &bearer(Request::get("/fentu/v1/work-orders"), &admin))
            .status,
        200
    );

    // Writing needs write:work-orders.
    let create = |token: &str| {
        bearer(
            json_post("/fentu/v1/work-orders", r#"{"title":"Fix the chiller"}"#),
            token,
        )
    };
    let reader = field(
        &fentu_login(&mut emu, 0, "read:work-orders"),
        "access_token",
    );
    assert_eq!(emu.handle(0, &create(&reader)).status, 403);
    let writer = field(
        &fentu_login(&mut emu, 0, "write:work-orders"),
        "access_token",
    );
    let created = emu.handle(0, &create(&writer));
    assert_eq!(created.status, 201);
    assert_eq!(json(&created)["data"]["title"], "Fix the chiller");
}

#[test]
fn hourly_rate_limit_tiers() {
    let mut emu = emulator();
    let api = bearer(Request::get("/fentu/v1/work-orders"), "fentu-demo-key");
    for i in 0..1000u64 {
        let resp = emu.handle(i, &api);
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("X-RateLimit-Remaining"),
            Some((999 - i).to_string().as_str())
        );
    }
    // 23:30: over the limit until midnight (1640995200).
    let resp = emu.handle(1_800_000, &api);
    assert_eq!(resp.status, 429);
    assert_eq!(
        resp.body_text(),
        r#"{"error":"rate_limit_exceeded","error_description":"Rate limit exceeded","status":429}"#
    );
    assert_eq!(resp.header("Retry-After"), Some("1800"));
    assert_eq!(resp.header("X-RateLimit-Remaining"), Some("0"));
    assert_eq!(resp.header("X-RateLimit-Reset"), Some("1640995200"));
    // A new window at midnight.
    let resp = emu.handle(3_600_000, &api);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("X-RateLimit-Remaining"), Some("999"));
    assert_eq!(resp.header("X-RateLimit-Reset"), Some("1640998800"));
    // OAuth tokens count against their client's budget, not the key's.
    let access = field(
        &fentu_login(&mut emu, 3_600_000, "read:work-orders"),
        "access_token",
    );
    let resp = emu.handle(
        3_600_001,
        &bearer(Request::get("/fentu/v1/work-orders"), &access),
    );
    assert_eq!(resp.header("X-RateLimit-Remaining"), Some("999"));

    let mut config = EmulatorConfig::default();
    config.fentu.tier = FentuTier::Professional;
    let mut emu = Emulator::new(config);
    assert_eq!(
        emu.handle(0, &api).header("X-RateLimit-Limit"),
        Some("10000")
    );
    let mut config = EmulatorConfig::default();
    config.fentu.tier = FentuTier::Enterprise;
    let mut emu = Emulator::new(config);
    for i in 0..1500 {
        let resp = emu.handle(i, &api);
        assert_eq!(resp.status, 200);
        assert!(resp.header("X-RateLimit-Limit").is_none());
    }
}

#[test]
fn token_endpoint_strictness() {
    let mut emu = emulator();
    let code = fentu_code(&mut emu, 0, "admin", "");
    let good = encode_form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", DEMO_ID),
        ("client_secret", DEMO_SECRET),
    ]);
    let cases: Vec<(Request, u16, &str)> = vec![
        (json_post("/fentu/oauth/token", r#"{"grant_type":"refresh_token"}"#), 400, "invalid_request"),
        (Request::post("/fentu/oauth/token").with_body(good.clone()), 400, "invalid_request"),
        (form_post("/fentu/oauth/token", &format!("{good}&code=again")), 400, "invalid_request"),
        (form_post("/fentu/oauth/token", "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret"), 400, "unsupported_grant_type"),
        (form_post("/fentu/oauth/token", "client_id=demo-client&client_secret=demo-secret"), 400, "invalid_request"),
        (form_post("/fentu/oauth/token", "grant_type=refresh_token&client_id=demo-client&client_secret=demo-secret"), 400, "invalid_request"),
        (form_post("/fentu/oauth/token", "grant_type=refresh_token&refresh_token=x&client_id=demo-client"), 401, "invalid_client"),
        (form_post("/fentu/oauth/token", "grant_type=refresh_token&refresh_token=x"), 401, "invalid_client"),
        (form_post("/fentu/oauth/token", "grant_type=refresh_token&refresh_token=x&client_id=demo-client&client_secret=demo-secret"), 400, "invalid_grant"),
        (form_post("/fentu/oauth/token", &good.replace("127.0.0.1%3A8976", "127.0.0.1%3A1")), 400, "invalid_grant"),
        (Request::get("/fentu/oauth/token"), 405, "invalid_request"),
    ];
    for (req, status, error) in cases {
        let resp = emu.handle(0, &req);
        assert_eq!(
            (resp.status, field(&resp, "error").as_str()),
            (status, error),
            "{}",
            String::from_utf8_lossy(&req.body)
        );
        assert_eq!(json(&resp)["status"], status);
    }
    // HTTP Basic client authentication also works (RFC 6749 §2.3.1)...
    let basic = form_post(
        "/fentu/oauth/token",
        &encode_form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ]),
    )
    .with_header("Authorization", "Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=");
    assert_eq!(emu.handle(0, &basic).status, 200);
    // ...but not together with client_secret in the body.
    let both = form_post("/fentu/oauth/token", &good)
        .with_header("Authorization", "Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=");
    assert_eq!(emu.handle(0, &both).status, 400);
    let wrong = form_post(
        "/fentu/oauth/token",
        "grant_type=refresh_token&refresh_token=x",
    )
    .with_header("Authorization", "Basic ZGVtby1jbGllbnQ6bm9wZQ==");
    let resp = emu.handle(0, &wrong);
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("WWW-Authenticate"),
        Some("Basic realm=\"Fentu FSM\"")
    );
}

#[test]
fn authorization_codes_expire_after_ten_minutes() {
    let mut emu = emulator();
    let code = fentu_code(&mut emu, 0, "admin", "");
    let body = encode_form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", DEMO_ID),
        ("client_secret", DEMO_SECRET),
    ]);
    let resp = emu.handle(600_000, &form_post("/fentu/oauth/token", &body));
    assert_eq!(
        (resp.status, field(&resp, "error").as_str()),
        (400, "invalid_grant")
    );
}
