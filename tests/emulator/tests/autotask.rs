//! Autotask: golden vectors from the seed document (003).

mod common;

use common::*;
use fieldauth_emulator::{Emulator, EmulatorConfig, RateLimit, RateWindow, Request};

const TOKEN_PATH: &str = "/autotask/ATServicesRest/oauth/token";
const COMPANIES: &str = "/autotask/ATServicesRest/V1.0/Companies";

#[test]
fn token_request_and_response_from_the_document() {
    let mut config = EmulatorConfig::default();
    config.set_client("YOUR_CLIENT_ID", "YOUR_CLIENT_SECRET");
    let mut emu = Emulator::new(config);
    // The document's body, one parameter per printed line; on the wire (as
    // its Python and JavaScript examples send it) they are joined by `&`.
    let printed =
        "grant_type=client_credentials\nclient_id=YOUR_CLIENT_ID\nclient_secret=YOUR_CLIENT_SECRET";
    let resp = emu.handle(0, &form_post(TOKEN_PATH, printed));
    assert_eq!(
        (resp.status, field(&resp, "error").as_str()),
        (400, "invalid_request")
    );
    let wire = printed.replace('\n', "&");
    let resp = emu.handle(0, &form_post(TOKEN_PATH, &wire));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let token = field(&resp, "access_token");
    assert_eq!(
        resp.body_text(),
        format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#)
    );
    assert!(
        token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6"),
        "the document's prefix"
    );
    // The document's API call.
    let api = emu.handle(0, &bearer(Request::get(COMPANIES), &token));
    assert_eq!(api.status, 200);
    assert_eq!(
        json(&api)["items"][1]["companyName"],
        "Fabrikam Dental Group"
    );
    let one = emu.handle(
        0,
        &bearer(Request::get(&format!("{COMPANIES}/174")), &token),
    );
    assert_eq!(json(&one)["item"]["id"], 174);
    let tickets = emu.handle(
        0,
        &bearer(
            Request::get("/autotask/ATServicesRest/V1.0/Tickets"),
            &token,
        ),
    );
    assert_eq!(tickets.status, 200);
}

#[test]
fn bad_client_credentials_are_400() {
    let mut emu = emulator();
    for body in [
        "grant_type=client_credentials&client_id=demo-client&client_secret=nope",
        "grant_type=client_credentials&client_id=demo-client",
        "grant_type=client_credentials",
    ] {
        let resp = emu.handle(0, &form_post(TOKEN_PATH, body));
        assert_eq!(resp.status, 400, "{body}");
        assert_eq!(
            resp.body_text(),
            r#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#
        );
    }
    let cases = [
        (
            form_post(
                TOKEN_PATH,
                "grant_type=password&client_id=demo-client&client_secret=demo-secret",
            ),
            "unsupported_grant_type",
        ),
        (
            form_post(
                TOKEN_PATH,
                "client_id=demo-client&client_secret=demo-secret",
            ),
            "invalid_request",
        ),
        (
            form_post(
                TOKEN_PATH,
                "grant_type=client_credentials&grant_type=client_credentials",
            ),
            "invalid_request",
        ),
        (
            json_post(
                TOKEN_PATH,
                r#"{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"demo-secret"}"#,
            ),
            "invalid_request",
        ),
    ];
    for (req, error) in cases {
        let resp = emu.handle(0, &req);
        assert_eq!((resp.status, field(&resp, "error").as_str()), (400, error));
    }
}

#[test]
fn token_endpoint_allows_10_requests_per_minute() {
    let mut emu = emulator();
    for i in 0..10 {
        autotask_token(&mut emu, i * 1_000);
    }
    // Sliding window: the 11th within any minute is refused until the first
    // falls out of the window.
    let resp = emu.handle(
        59_500,
        &form_post(
            TOKEN_PATH,
            "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
        ),
    );
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("Retry-After"), Some("1"));
    assert_eq!(field(&resp, "error"), "rate_limit_exceeded");
    autotask_token(&mut emu, 60_000);
    // Bad requests count too.
    let mut emu = emulator();
    for _ in 0..10 {
        assert_eq!(
            emu.handle(
                0,
                &form_post(
                    TOKEN_PATH,
                    "grant_type=client_credentials&client_id=demo-client"
                )
            )
            .status,
            400
        );
    }
    let resp = emu.handle(
        0,
        &form_post(
            TOKEN_PATH,
            "grant_type=client_credentials&client_id=demo-client",
        ),
    );
    assert_eq!((resp.status, resp.header("Retry-After")), (429, Some("60")));

    // Fixed windows: a new minute starts afresh.
    let mut config = EmulatorConfig::default();
    config.autotask.window = RateWindow::Fixed;
    let mut emu = Emulator::new(config);
    for i in 0..10 {
        autotask_token(&mut emu, 50_000 + i * 100);
    }
    let body = "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";
    let resp = emu.handle(55_000, &form_post(TOKEN_PATH, body));
    assert_eq!((resp.status, resp.header("Retry-After")), (429, Some("5")));
    autotask_token(&mut emu, 60_000);
}

#[test]
fn api_allows_600_requests_per_minute_per_token() {
    let mut config = EmulatorConfig::default();
    config.autotask.token_limit = RateLimit::new(100, 60);
    let mut emu = Emulator::new(config);
    let a = autotask_token(&mut emu, 0);
    let b = autotask_token(&mut emu, 0);
    for i in 0..600 {
        assert_eq!(
            emu.handle(i * 10, &bearer(Request::get(COMPANIES), &a))
                .status,
            200
        );
    }
    let resp = emu.handle(6_000, &bearer(Request::get(COMPANIES), &a));
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("Retry-After"), Some("54"));
    // Per token: another token is unaffected.
    assert_eq!(
        emu.handle(6_000, &bearer(Request::get(COMPANIES), &b))
            .status,
        200
    );
    assert_eq!(
        emu.handle(60_000, &bearer(Request::get(COMPANIES), &a))
            .status,
        200
    );
}

#[test]
fn expired_token_body_from_the_document() {
    let mut emu = emulator();
    let token = autotask_token(&mut emu, 0);
    let api = bearer(Request::get(COMPANIES), &token);
    assert_eq!(emu.handle(3_599_999, &api).status, 200);
    let resp = emu.handle(3_600_000, &api);
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.body_text(),
        r#"{"error":"invalid_token","error_description":"The access token has expired"}"#
    );
    for req in [
        bearer(Request::get(COMPANIES), "bogus"),
        Request::get(COMPANIES),
        Request::get(COMPANIES).with_header("Authorization", &token),
        Request::get(&format!("{COMPANIES}?access_token={token}")),
    ] {
        let resp = emu.handle(0, &req);
        assert_eq!(
            (resp.status, field(&resp, "error").as_str()),
            (401, "invalid_token")
        );
    }
    let resp = emu.handle(
        0,
        &bearer(
            Request::get("/autotask/ATServicesRest/V1.0/Widgets"),
            &token,
        ),
    );
    assert_eq!(resp.status, 404);
}
