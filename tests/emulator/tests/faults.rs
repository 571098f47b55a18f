//! Fault injection: each fault, its scoping and its triggers, all in
//! virtual time through the sans-IO core.

mod common;

use common::*;
use fieldauth_emulator::{
    parse_request, Emulator, EmulatorConfig, EndpointKind, Fault, FaultRule, Limits, Malformation,
    Parsed, Provider, RateLimit, Request, Trigger,
};

fn with_faults(specs: &str) -> Emulator {
    Emulator::new(EmulatorConfig {
        faults: FaultRule::parse_list(specs).unwrap(),
        ..EmulatorConfig::default()
    })
}

fn fn_api(token: &str) -> Request {
    Request::get(&format!(
        "/fieldnation/api/rest/v2/workorders?access_token={token}"
    ))
}

#[test]
fn revoke_after_n_api_calls() {
    let mut emu = with_faults("fieldnation:api:revoke-after=3");
    let token = fieldnation_token(&mut emu, 0);
    for i in 0..3 {
        assert_eq!(emu.handle(i, &fn_api(&token)).status, 200);
    }
    let resp = emu.handle(10, &fn_api(&token));
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.body_text(),
        r#"{"error":"invalid_token","error_description":"The access token expired"}"#
    );
    let entry = emu.log().last().unwrap();
    assert_eq!(entry.faults, vec![Fault::RevokeAfter(3)]);
    assert_eq!(entry.endpoint, Some(EndpointKind::Api));
    // Stays revoked; a new token gets three more calls.
    assert_eq!(emu.handle(11, &fn_api(&token)).status, 401);
    let fresh = fieldnation_token(&mut emu, 20);
    for i in 0..3 {
        assert_eq!(emu.handle(30 + i, &fn_api(&fresh)).status, 200);
    }
    assert_eq!(emu.handle(40, &fn_api(&fresh)).status, 401);

    // Fentu, Autotask, Patchworks tokens too; API keys never.
    let mut emu = with_faults("all:api:revoke-after=1");
    let at = autotask_token(&mut emu, 0);
    let companies = bearer(Request::get("/autotask/ATServicesRest/V1.0/Companies"), &at);
    assert_eq!(emu.handle(0, &companies).status, 200);
    assert_eq!(emu.handle(0, &companies).status, 401);
    let pw = patchworks_login(&mut emu, 0);
    let flows = bearer(Request::get("/patchworks/core/v1/flows"), &pw);
    assert_eq!(emu.handle(0, &flows).status, 200);
    assert_eq!(emu.handle(0, &flows).status, 401);
    let access = field(
        &fentu_login(&mut emu, 0, "read:work-orders"),
        "access_token",
    );
    let wo = bearer(Request::get("/fentu/v1/work-orders"), &access);
    assert_eq!(emu.handle(0, &wo).status, 200);
    assert_eq!(emu.handle(0, &wo).status, 401);
    let key = bearer(Request::get("/fentu/v1/work-orders"), "fentu-demo-key");
    for _ in 0..3 {
        assert_eq!(emu.handle(0, &key).status, 200);
    }
}

#[test]
fn too_many_requests_every_nth_token_request() {
    let mut emu = with_faults("autotask:token:429=30:every=3");
    let body = "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";
    let statuses: Vec<u16> = (0..6u64)
        .map(|i| {
            emu.handle(
                i * 10_000,
                &form_post("/autotask/ATServicesRest/oauth/token", body),
            )
            .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429, 200, 200, 429]);
    let resp = emu.handle(
        60_000,
        &form_post("/autotask/ATServicesRest/oauth/token", body),
    );
    assert_eq!(resp.status, 200);
    let log = emu.log();
    assert_eq!(
        log[2].faults,
        vec![Fault::TooManyRequests { retry_after_s: 30 }]
    );
    assert!(log[0].faults.is_empty());
    // The body and header of an injected 429, per provider.
    let mut emu = with_faults("all:all:429=30");
    let fentu = emu.handle(0, &Request::get("/fentu/v1/work-orders"));
    assert_eq!(fentu.header("Retry-After"), Some("30"));
    assert_eq!(
        fentu.body_text(),
        r#"{"error":"rate_limit_exceeded","error_description":"Rate limit exceeded","status":429}"#
    );
    let pw = emu.handle(0, &Request::get("/patchworks/core/v1/flows"));
    assert_eq!(
        (pw.status, pw.body_text().as_str()),
        (429, r#"{"message":"Too Many Attempts."}"#)
    );
    let fnr = emu.handle(0, &Request::get("/fieldnation/api/rest/v2/workorders"));
    assert_eq!(
        (fnr.status, field(&fnr, "error").as_str()),
        (429, "rate_limit_exceeded")
    );
}

#[test]
fn service_unavailable_at_a_seeded_rate_is_reproducible() {
    let run = |seed: u64| -> Vec<u16> {
        let mut emu = Emulator::new(EmulatorConfig {
            seed,
            faults: FaultRule::parse_list("fieldnation:token:503=5:rate=0.5").unwrap(),
            ..EmulatorConfig::default()
        });
        (0..40)
            .map(|i| {
                emu.handle(i, &json_post(
                    "/fieldnation/authentication/api/oauth/token",
                    r#"{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"demo-secret","scope":"api"}"#,
                ))
                .status
            })
            .collect()
    };
    let a = run(1);
    assert_eq!(a, run(1));
    assert_ne!(a, run(2));
    let unavailable = a.iter().filter(|s| **s == 503).count();
    assert!((8..=32).contains(&unavailable), "{unavailable} of 40");
    assert!(a.iter().all(|s| *s == 200 || *s == 503));
    let mut emu = with_faults("fentu:all:503=5");
    let resp = emu.handle(0, &Request::get("/fentu/v1/work-orders"));
    assert_eq!(resp.header("Retry-After"), Some("5"));
    assert_eq!(
        resp.body_text(),
        r#"{"error":"temporarily_unavailable","error_description":"The service is temporarily unavailable","status":503}"#
    );
}

#[test]
fn transport_faults_become_directives() {
    let mut emu = with_faults(
        "patchworks:token:chunked=7,fieldnation:token:pieces=1,autotask:token:slow=15/4,fentu:api:truncate=10",
    );
    let pw = emu.handle(
        0,
        &json_post(
            "/patchworks/fabric/api/login",
            r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#,
        )
        .with_header("Accept", "application/json"),
    );
    assert_eq!(pw.transport.chunked, Some(7));
    let wire = String::from_utf8(pw.to_bytes()).unwrap();
    assert!(wire.contains("\r\nTransfer-Encoding: chunked\r\n"));
    assert!(!wire.contains("Content-Length"));
    assert!(wire.contains("\r\n\r\n7\r\n{\"messa\r\n"), "{wire}");
    assert!(wire.ends_with("\r\n0\r\n\r\n"));

    fieldnation_token(&mut emu, 0);
    let fnr = emu.log().last().unwrap().clone();
    assert_eq!(fnr.faults, vec![Fault::Pieces { piece_bytes: 1 }]);

    let at = emu.handle(
        0,
        &form_post(
            "/autotask/ATServicesRest/oauth/token",
            "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
        ),
    );
    assert_eq!(
        (at.transport.piece_bytes, at.transport.piece_delay_ms),
        (Some(4), 15)
    );

    let api = emu.handle(
        0,
        &bearer(Request::get("/fentu/v1/work-orders"), "fentu-demo-key"),
    );
    assert_eq!(api.status, 200);
    assert_eq!(api.transport.truncate_body_after, Some(10));
    let wire = api.serialize();
    let sent = wire.to_send(&api.transport);
    assert_eq!(sent.len(), wire.head_len + 10);
    assert!(String::from_utf8_lossy(&sent[..wire.head_len]).contains("Connection: close"));
    // Other endpoints are untouched.
    let untouched = emu.handle(
        0,
        &bearer(Request::get("/autotask/ATServicesRest/V1.0/Companies"), "x"),
    );
    assert_eq!(untouched.transport, Default::default());
}

#[test]
fn truncate_defaults_to_half_the_body() {
    let mut emu = with_faults("fieldnation:token:truncate:first=1");
    let resp = emu.handle(0, &json_post(
        "/fieldnation/authentication/api/oauth/token",
        r#"{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"demo-secret","scope":"api"}"#,
    ));
    assert_eq!(
        resp.transport.truncate_body_after,
        Some(resp.body.len() / 2)
    );
    let again = emu.handle(0, &json_post(
        "/fieldnation/authentication/api/oauth/token",
        r#"{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"demo-secret","scope":"api"}"#,
    ));
    assert_eq!(again.transport.truncate_body_after, None, "first=1");
}

#[test]
fn malformed_json_token_responses() {
    for (kind, provider) in [
        (Malformation::Cut, Provider::FieldNation),
        (Malformation::Trailing, Provider::Autotask),
        (Malformation::BadEscape, Provider::Patchworks),
        (Malformation::Html, Provider::FieldNation),
    ] {
        let mut emu = Emulator::new(EmulatorConfig::default().with_fault(FaultRule::new(
            Some(provider),
            Some(EndpointKind::Token),
            Fault::MalformedJson(kind),
        )));
        let req = match provider {
            Provider::FieldNation => json_post(
                "/fieldnation/authentication/api/oauth/token",
                r#"{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"demo-secret","scope":"api"}"#,
            ),
            Provider::Autotask => form_post(
                "/autotask/ATServicesRest/oauth/token",
                "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
            ),
            _ => json_post(
                "/patchworks/fabric/api/login",
                r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#,
            )
            .with_header("Accept", "application/json"),
        };
        let resp = emu.handle(0, &req);
        assert_eq!(resp.status, 200);
        assert!(resp.body_json().is_none(), "{kind:?}: {}", resp.body_text());
        assert_eq!(emu.log()[0].faults, vec![Fault::MalformedJson(kind)]);
        // The token was issued all the same.
        assert_eq!(emu.live_tokens(provider, 0), 1);
        if kind == Malformation::Html {
            assert_eq!(
                resp.header("Content-Type"),
                Some("text/html; charset=utf-8")
            );
        }
    }
    // Errors are left alone.
    let mut emu = with_faults("fieldnation:token:malformed");
    let resp = emu.handle(
        0,
        &json_post("/fieldnation/authentication/api/oauth/token", "{}"),
    );
    assert!(resp.body_json().is_some());
    assert!(emu.log()[0].faults.is_empty());
}

#[test]
fn api_limit_override() {
    let mut emu = with_faults("patchworks:api:limit=2/60,fentu:api:limit=3/60");
    let flows =
        Request::get("/patchworks/core/v1/flows").with_header("Authorization", "pw-demo-key");
    assert_eq!(emu.handle(0, &flows).status, 200);
    assert_eq!(emu.handle(1_000, &flows).status, 200);
    let resp = emu.handle(2_000, &flows);
    assert_eq!((resp.status, resp.header("Retry-After")), (429, Some("58")));
    assert_eq!(
        emu.log().last().unwrap().faults,
        vec![Fault::ApiLimit(RateLimit::new(2, 60))]
    );
    assert_eq!(emu.handle(60_000, &flows).status, 200);
    // Fentu: the override replaces the tier in the headers too.
    let wo = bearer(Request::get("/fentu/v1/work-orders"), "fentu-demo-key");
    let first = emu.handle(0, &wo);
    assert_eq!(first.header("X-RateLimit-Limit"), Some("3"));
    assert_eq!(first.header("X-RateLimit-Reset"), Some("1640991660"));
    emu.handle(0, &wo);
    emu.handle(0, &wo);
    let resp = emu.handle(0, &wo);
    assert_eq!(
        (resp.status, resp.header("X-RateLimit-Remaining")),
        (429, Some("0"))
    );
    // Field Nation and Autotask accept it as well.
    let mut emu = with_faults("fieldnation:api:limit=1/10,autotask:api:limit=1/10");
    let token = fieldnation_token(&mut emu, 0);
    assert_eq!(emu.handle(0, &fn_api(&token)).status, 200);
    assert_eq!(emu.handle(0, &fn_api(&token)).status, 429);
    let at = autotask_token(&mut emu, 0);
    let companies = bearer(Request::get("/autotask/ATServicesRest/V1.0/Companies"), &at);
    assert_eq!(emu.handle(0, &companies).status, 200);
    assert_eq!(emu.handle(0, &companies).status, 429);
}

#[test]
fn scoping_and_triggers() {
    // A Fentu API fault touches neither Fentu's token endpoint nor other providers.
    let mut emu = with_faults("fentu:api:503=1");
    assert_eq!(
        emu.handle(
            0,
            &bearer(Request::get("/fentu/v1/work-orders"), "fentu-demo-key")
        )
        .status,
        503
    );
    fentu_login(&mut emu, 0, "admin");
    let token = fieldnation_token(&mut emu, 0);
    assert_eq!(emu.handle(0, &fn_api(&token)).status, 200);

    // first=2 / after=2 count only in-scope requests.
    let mut emu = Emulator::new(
        EmulatorConfig::default()
            .with_fault(FaultRule::parse("patchworks:api:503:first=2").unwrap())
            .with_fault(FaultRule::parse("patchworks:api:429:after=3").unwrap()),
    );
    let flows =
        Request::get("/patchworks/core/v1/flows").with_header("Authorization", "pw-demo-key");
    patchworks_login(&mut emu, 0); // a token request: not counted
    let statuses: Vec<u16> = (0..5).map(|_| emu.handle(0, &flows).status).collect();
    assert_eq!(statuses, [503, 503, 200, 429, 429]);

    // Replacing the faults restarts the counters.
    emu.set_faults(vec![FaultRule::new(
        Some(Provider::Patchworks),
        None,
        Fault::Unavailable { retry_after_s: 2 },
    )
    .when(Trigger::EveryNth(2))]);
    let statuses: Vec<u16> = (0..4).map(|_| emu.handle(0, &flows).status).collect();
    assert_eq!(statuses, [200, 503, 200, 503]);
}

#[test]
fn same_seed_same_tokens() {
    let tokens = |seed: u64| {
        let mut emu = Emulator::new(EmulatorConfig {
            seed,
            ..EmulatorConfig::default()
        });
        (
            fieldnation_token(&mut emu, 0),
            patchworks_login(&mut emu, 0),
        )
    };
    assert_eq!(tokens(5), tokens(5));
    assert_ne!(tokens(5), tokens(6));
}

#[test]
fn request_log_and_routing() {
    let mut emu = emulator();
    let token = fieldnation_token(&mut emu, 5);
    emu.handle(6, &fn_api(&token));
    emu.handle(7, &Request::get("/nowhere"));
    emu.handle(8, &Request::get("/fentu/v2/nothing"));
    let index = emu.handle(9, &Request::get("/"));
    assert!(index.body_text().contains("/fieldnation"));
    let no_host = emu.handle(
        10,
        &Request::get("/fentu/v1/work-orders").without_header("Host"),
    );
    assert_eq!(no_host.status, 400);
    assert_eq!(field(&no_host, "error"), "invalid_request");
    let err = match parse_request(b"GET / HTTP/1.1\r\n\r\n", Limits::default()) {
        Err(e) => e,
        Ok(Parsed::Complete(..)) | Ok(Parsed::Incomplete { .. }) => unreachable!(),
    };
    let rejected = emu.reject(11, &err);
    assert_eq!(rejected.status, 400);
    assert!(rejected.transport.close);

    let log = emu.log();
    assert_eq!(log.len(), 7);
    assert_eq!((log[0].at_ms, log[0].status), (5, 200));
    assert_eq!(log[0].provider, Some(Provider::FieldNation));
    assert_eq!(log[0].endpoint, Some(EndpointKind::Token));
    assert_eq!(log[1].path, "/fieldnation/api/rest/v2/workorders");
    assert_eq!((log[2].status, log[2].provider), (404, None));
    assert_eq!(
        (log[3].status, log[3].provider, log[3].endpoint),
        (404, Some(Provider::Fentu), None)
    );
    assert_eq!(log[3].epoch_ms, 1_640_991_600_008);
    assert_eq!(log[6].method, "-");
    assert!(log[1]
        .to_string()
        .starts_with("GET /fieldnation/api/rest/v2/workorders -> 200 [fieldnation api]"));
    // Date on every response.
    assert_eq!(
        rejected.header("Date"),
        Some("Fri, 31 Dec 2021 23:00:00 GMT")
    );
    assert_eq!(
        no_host.header("Date"),
        Some("Fri, 31 Dec 2021 23:00:00 GMT")
    );
    // advance_clock moves virtual time forward for everything after it.
    emu.advance_clock(3_600_000);
    assert_eq!(emu.handle(12, &fn_api(&token)).status, 401);
    assert_eq!(emu.take_log().len(), 8);
    assert!(emu.log().is_empty());
}
