//! Field Nation: golden vectors from the seed document (002).

mod common;

use common::*;
use fieldauth_emulator::{Emulator, EmulatorConfig, Request};

/// The document's request body, verbatim (pretty-printed).
const DOC_REQUEST: &str = r#"{
  "grant_type": "client_credentials",
  "client_id": "YOUR_CLIENT_ID",
  "client_secret": "YOUR_CLIENT_SECRET",
  "scope": "api"
}"#;

const TOKEN_PATH: &str = "/fieldnation/authentication/api/oauth/token";

fn doc_client() -> Emulator {
    let mut config = EmulatorConfig::default();
    config.set_client("YOUR_CLIENT_ID", "YOUR_CLIENT_SECRET");
    Emulator::new(config)
}

#[test]
fn token_request_and_response_from_the_document() {
    let mut emu = doc_client();
    let resp = emu.handle(0, &json_post(TOKEN_PATH, DOC_REQUEST));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    assert_eq!(resp.header("Cache-Control"), Some("no-store"));
    let token = field(&resp, "access_token");
    // Exactly the document's members, in its order.
    assert_eq!(
        resp.body_text(),
        format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#)
    );
    // JWT-shaped like the document's example.
    assert!(
        token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."),
        "{token}"
    );
    assert_eq!(token.split('.').count(), 3);

    // The document's API call: the token as the access_token query parameter.
    let api = emu.handle(
        1_000,
        &Request::get(&format!(
            "/fieldnation/api/rest/v2/workorders?access_token={token}"
        )),
    );
    assert_eq!(api.status, 200, "{}", api.body_text());
    assert_eq!(json(&api)["results"][0]["id"], 48213);
    let one = emu.handle(
        1_000,
        &Request::get(&format!(
            "/fieldnation/api/rest/v2/workorders/48214?access_token={token}"
        )),
    );
    assert_eq!(json(&one)["title"], "Network cabling - 12 drops");
    // The token never reaches the log.
    assert!(emu.log().iter().all(|e| !e.path.contains(&token)));
}

#[test]
fn invalid_client_body_from_the_document() {
    let mut emu = emulator();
    for body in [
        DOC_REQUEST.to_owned(),
        DOC_REQUEST.replace("YOUR_CLIENT_ID", "demo-client"),
        r#"{"grant_type":"client_credentials","scope":"api"}"#.to_owned(),
    ] {
        let resp = emu.handle(0, &json_post(TOKEN_PATH, &body));
        assert_eq!(resp.status, 401);
        assert_eq!(
            resp.body_text(),
            r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#
        );
    }
}

#[test]
fn grant_type_and_scope_errors() {
    let mut emu = doc_client();
    let cases = [
        (DOC_REQUEST.replace("client_credentials", "password"), 400, "unsupported_grant_type"),
        (DOC_REQUEST.replace("\"api\"", "\"all\""), 400, "invalid_scope"),
        (
            r#"{"grant_type":"client_credentials","client_id":"YOUR_CLIENT_ID","client_secret":"YOUR_CLIENT_SECRET"}"#.to_owned(),
            400,
            "invalid_scope",
        ),
        (r#"{"client_id":"YOUR_CLIENT_ID","client_secret":"YOUR_CLIENT_SECRET","scope":"api"}"#.to_owned(), 400, "invalid_request"),
        (DOC_REQUEST.replace("\"api\"", "7"), 400, "invalid_request"),
        (r#"["grant_type"]"#.to_owned(), 400, "invalid_request"),
        (r#"{"grant_type":"client_credentials","#.to_owned(), 400, "invalid_request"),
        (String::new(), 400, "invalid_request"),
    ];
    for (body, status, error) in cases {
        let resp = emu.handle(0, &json_post(TOKEN_PATH, &body));
        assert_eq!(
            (resp.status, field(&resp, "error").as_str()),
            (status, error),
            "{body}"
        );
        assert_eq!(
            json(&resp).as_object().unwrap().len(),
            2,
            "no `status` member"
        );
    }
    // A form body is not what Field Nation takes.
    let form = form_post(
        TOKEN_PATH,
        "grant_type=client_credentials&client_id=YOUR_CLIENT_ID&client_secret=YOUR_CLIENT_SECRET&scope=api",
    );
    let resp = emu.handle(0, &form);
    assert_eq!(
        (resp.status, field(&resp, "error").as_str()),
        (400, "invalid_request")
    );
    // Nor a JSON body without the JSON content type.
    let resp = emu.handle(0, &Request::post(TOKEN_PATH).with_body(DOC_REQUEST));
    assert_eq!(resp.status, 400);
    assert_eq!(emu.handle(0, &Request::get(TOKEN_PATH)).status, 405);
}

#[test]
fn token_only_accepted_as_query_parameter() {
    let mut emu = emulator();
    let token = fieldnation_token(&mut emu, 0);
    let resp = emu.handle(
        0,
        &bearer(Request::get("/fieldnation/api/rest/v2/workorders"), &token),
    );
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.body_text(),
        r#"{"error":"invalid_token","error_description":"The access token expired"}"#
    );
    assert!(emu
        .log()
        .last()
        .unwrap()
        .note
        .as_deref()
        .unwrap()
        .contains("Authorization header is not accepted"));
    let resp = emu.handle(
        0,
        &Request::get("/fieldnation/api/rest/v2/workorders?access_token=bogus"),
    );
    assert_eq!(resp.status, 401);
    let dup =
        format!("/fieldnation/api/rest/v2/workorders?access_token={token}&access_token={token}");
    let resp = emu.handle(0, &Request::get(&dup));
    assert_eq!(
        (resp.status, field(&resp, "error").as_str()),
        (400, "invalid_request")
    );
}

#[test]
fn expiry_401_from_the_document_and_the_400_quirk() {
    let mut emu = emulator();
    let token = fieldnation_token(&mut emu, 0);
    let api = Request::get(&format!(
        "/fieldnation/api/rest/v2/workorders?access_token={token}"
    ));
    assert_eq!(emu.handle(3_599_999, &api).status, 200);
    let resp = emu.handle(3_600_000, &api);
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.body_text(),
        r#"{"error":"invalid_token","error_description":"The access token expired"}"#
    );

    let mut config = EmulatorConfig::default();
    config.field_nation.expired_token_quirk = true;
    config.field_nation.token_lifetime_s = Some(10);
    let mut emu = Emulator::new(config);
    let resp = emu.handle(0, &json_post(TOKEN_PATH, r#"{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"demo-secret","scope":"api"}"#));
    assert_eq!(json(&resp)["expires_in"], 10);
    let token = field(&resp, "access_token");
    let api = Request::get(&format!(
        "/fieldnation/api/rest/v2/workorders?access_token={token}"
    ));
    assert_eq!(emu.handle(9_999, &api).status, 200);
    let resp = emu.handle(10_000, &api);
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_text(),
        r#"{"error":"invalid_request","error_description":"Expired token"}"#
    );
    // Unknown tokens still get the 401.
    let resp = emu.handle(
        10_000,
        &Request::get("/fieldnation/api/rest/v2/workorders?access_token=bogus"),
    );
    assert_eq!(resp.status, 401);
}
