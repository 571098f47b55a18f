//! Patchworks: golden vectors from the seed document (004).

mod common;

use common::*;
use fieldauth_emulator::{parse_request, Emulator, EmulatorConfig, Limits, Parsed, Request};

#[test]
fn login_request_and_response_from_the_document() {
    let mut emu = emulator();
    // The document's request, byte for byte but for the blank line between
    // head and body that its rendering drops.
    let body = "{\n    \"username\": \"me@patchworks.com\",\n    \"password\": \"a1b2c3d4e5f6\"\n}";
    let raw = format!(
        "POST /patchworks/fabric/api/login HTTP/1.1\r\nHost: app.wearepatchworks.com\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let Ok(Parsed::Complete(req, _)) = parse_request(raw.as_bytes(), Limits::default()) else {
        panic!("the document's request does not parse");
    };
    let resp = emu.handle(0, &req);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let token = field(&resp, "token");
    assert_eq!(
        resp.body_text(),
        format!(
            r#"{{"message":"You have successfully logged in.","token":"{token}","expires_in":86400}}"#
        )
    );
    assert!(
        token.starts_with("eyJ0eXAiOiJKV"),
        "the document's prefix: {token}"
    );

    // "used as your access token inside the Authorization header (along with the term Bearer)"
    let api = emu.handle(
        1_000,
        &bearer(Request::get("/patchworks/core/v1/flows"), &token),
    );
    assert_eq!(api.status, 200);
    assert_eq!(json(&api)["data"][0]["name"], "Shopify orders to NetSuite");
    // Any path under /core/.
    let other = emu.handle(
        1_000,
        &bearer(Request::get("/patchworks/core/v1/anything/else"), &token),
    );
    assert_eq!(other.status, 200);
    // Expired after expires_in seconds: 401, reauthenticate.
    let resp = emu.handle(
        86_400_000,
        &bearer(Request::get("/patchworks/core/v1/flows"), &token),
    );
    assert_eq!(resp.status, 401);
    assert_eq!(resp.body_text(), r#"{"message":"Unauthenticated."}"#);
}

#[test]
fn bad_login_and_malformed_logins() {
    let mut emu = emulator();
    let login = |body: &str| {
        json_post("/patchworks/fabric/api/login", body).with_header("Accept", "application/json")
    };
    let resp = emu.handle(
        0,
        &login(r#"{"username":"me@patchworks.com","password":"wrong"}"#),
    );
    assert_eq!(resp.status, 401);
    assert!(json(&resp)["message"].is_string());
    for req in [
        login(r#"{"username":"me@patchworks.com"}"#),
        login(r#"{"username":"me@patchworks.com","password":12}"#),
        login("username=me@patchworks.com"),
        json_post(
            "/patchworks/fabric/api/login",
            r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#,
        ),
        form_post(
            "/patchworks/fabric/api/login",
            "username=me%40patchworks.com&password=a1b2c3d4e5f6",
        )
        .with_header("Accept", "application/json"),
    ] {
        let resp = emu.handle(0, &req);
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(&req.body));
        assert_eq!(field(&resp, "error"), "invalid_request");
        assert!(json(&resp)["message"].is_string());
    }
    let ok = json_post(
        "/patchworks/fabric/api/login",
        r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#,
    )
    .with_header("Accept", "*/*");
    assert_eq!(emu.handle(0, &ok).status, 200);
    assert_eq!(
        emu.handle(0, &Request::get("/patchworks/fabric/api/login"))
            .status,
        405
    );
}

#[test]
fn api_keys_go_raw_in_authorization() {
    let mut emu = emulator();
    let flows = |auth: Option<&str>| {
        let req = Request::get("/patchworks/core/v1/flows");
        match auth {
            Some(a) => req.with_header("Authorization", a),
            None => req,
        }
    };
    assert_eq!(emu.handle(0, &flows(Some("pw-demo-key"))).status, 200);
    // API keys never expire.
    assert_eq!(
        emu.handle(10 * 365 * 86_400_000, &flows(Some("pw-demo-key")))
            .status,
        200
    );
    for auth in [Some("Bearer pw-demo-key"), Some("not-a-key"), None] {
        let resp = emu.handle(0, &flows(auth));
        assert_eq!(resp.status, 401, "{auth:?}");
        assert_eq!(resp.body_text(), r#"{"message":"Unauthenticated."}"#);
    }
    // A login token without the Bearer term is refused.
    let token = patchworks_login(&mut emu, 0);
    assert_eq!(emu.handle(0, &flows(Some(&token))).status, 401);
    assert_eq!(
        emu.log().last().unwrap().note.as_deref(),
        Some("login token sent without `Bearer`")
    );
}

#[test]
fn login_lifetime_is_configurable() {
    let mut config = EmulatorConfig::default().with_token_lifetime(30);
    config.patchworks.token_lifetime_s = Some(5);
    let mut emu = Emulator::new(config);
    let resp = emu.handle(
        0,
        &json_post(
            "/patchworks/fabric/api/login",
            r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#,
        )
        .with_header("Accept", "application/json"),
    );
    assert_eq!(json(&resp)["expires_in"], 5);
    let token = field(&resp, "token");
    let api = bearer(Request::get("/patchworks/core/v1/flows"), &token);
    assert_eq!(emu.handle(4_999, &api).status, 200);
    assert_eq!(emu.handle(5_000, &api).status, 401);
}
