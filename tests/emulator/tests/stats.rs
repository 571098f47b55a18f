//! The counters tests read to check a client, or a fleet of client
//! processes, from outside: in-process (`Emulator::stats`,
//! `RunningEmulator::stats`) and over HTTP (`GET /_stats`), the sliding-window
//! maxima, and the reset (`Emulator::reset_stats`, `POST /_stats/reset`).

mod common;

use common::*;
use fieldauth_emulator::encoding::encode_form;
use fieldauth_emulator::{
    spawn, Emulator, EmulatorConfig, Provider, Request, Stats, STATS_PATH, STATS_RESET_PATH,
};

const AUTOTASK_TOKEN: &str = "/autotask/ATServicesRest/oauth/token";
const AUTOTASK_API: &str = "/autotask/ATServicesRest/V1.0/Companies";

fn autotask_token_request() -> Request {
    form_post(
        AUTOTASK_TOKEN,
        "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
    )
}

/// Sends Autotask token requests at `times_ms`; returns their statuses.
fn autotask_tokens_at(emu: &mut Emulator, times_ms: impl IntoIterator<Item = u64>) -> Vec<u16> {
    times_ms
        .into_iter()
        .map(|t| emu.handle(t, &autotask_token_request()).status)
        .collect()
}

#[test]
fn token_requests_over_61_s_vs_59_s() {
    let mut emu = emulator();
    // 11 token requests 6.1 s apart: the first and the last are 61 s apart,
    // so no 60 s window holds more than 10 (and Autotask allows them all).
    let statuses = autotask_tokens_at(&mut emu, (0..11).map(|i| i * 6_100));
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stats = emu.reset_stats();
    let autotask = stats.provider(Provider::Autotask);
    assert_eq!(autotask.token_requests, 11);
    assert_eq!(autotask.token_succeeded, 11);
    assert_eq!(autotask.token_rate_limited, 0);
    let minute = autotask.window(60).unwrap();
    assert_eq!(minute.token_requests_max, 10);
    assert!(minute.exact);
    assert_eq!(autotask.window(3_600).unwrap().token_requests_max, 11);

    // 11 token requests 5.9 s apart, within 59 s: one 60 s window holds all
    // 11, and Autotask refuses the 11th (which is still a token request).
    let start = 1_000_000;
    let statuses = autotask_tokens_at(&mut emu, (0..11).map(|i| start + i * 5_900));
    assert_eq!(statuses[..10], [200; 10]);
    assert_eq!(statuses[10], 429);
    let stats = emu.stats();
    let autotask = stats.provider(Provider::Autotask);
    assert_eq!(autotask.token_requests, 11);
    assert_eq!(autotask.token_succeeded, 10);
    assert_eq!(autotask.token_rate_limited, 1);
    assert_eq!(autotask.window(60).unwrap().token_requests_max, 11);
    // The other providers saw nothing.
    for p in [Provider::Fentu, Provider::FieldNation, Provider::Patchworks] {
        let s = stats.provider(p);
        assert_eq!((s.token_requests, s.api_requests), (0, 0), "{p}");
    }
}

#[test]
fn the_window_edges_follow_the_rate_limiter() {
    let mut emu = emulator();
    // Requests exactly 60 s apart are not in one 60 s window; 59.999 s apart
    // they are.
    autotask_tokens_at(&mut emu, [0, 60_000]);
    let stats = emu.reset_stats();
    assert_eq!(
        stats
            .provider(Provider::Autotask)
            .window(60)
            .unwrap()
            .token_requests_max,
        1
    );
    autotask_tokens_at(&mut emu, [100_000, 159_999]);
    let stats = emu.stats();
    assert_eq!(
        stats
            .provider(Provider::Autotask)
            .window(60)
            .unwrap()
            .token_requests_max,
        2
    );
}

#[test]
fn api_counters_all_credentials_and_per_credential() {
    let mut config = EmulatorConfig::default();
    config.set_token_lifetime(Provider::Autotask, 6);
    let mut emu = Emulator::new(config);
    // Ten tokens, 6 s apart (inside the 10/min token limit), each used for
    // 100 API requests during its 6 s life: 1,000 API requests in one
    // minute, but never more than 100 with one token.
    let mut tokens = Vec::new();
    for i in 0..10u64 {
        let t0 = i * 6_000;
        let token = autotask_token(&mut emu, t0);
        for j in 0..100u64 {
            let resp = emu.handle(
                t0 + 10 + j * 50,
                &bearer(Request::get(AUTOTASK_API), &token),
            );
            assert_eq!(resp.status, 200, "{}", resp.body_text());
        }
        tokens.push(token);
    }
    let last = tokens.pop().unwrap();
    // The last token, expired, and no token at all: rejected.
    assert_eq!(
        emu.handle(70_000, &bearer(Request::get(AUTOTASK_API), &last))
            .status,
        401
    );
    assert_eq!(emu.handle(70_001, &Request::get(AUTOTASK_API)).status, 401);

    let stats = emu.stats();
    let a = stats.provider(Provider::Autotask);
    assert_eq!(a.api_requests, 1_002);
    assert_eq!(a.api_authorized, 1_000);
    assert_eq!(a.api_rejected, 2);
    assert_eq!(a.api_rate_limited, 0);
    let minute = a.window(60).unwrap();
    assert_eq!(minute.api_requests_max, 1_000);
    assert_eq!(minute.api_requests_max_per_credential, 100);
    assert_eq!(minute.token_requests_max, 10);
    let hour = a.window(3_600).unwrap();
    assert_eq!(hour.api_requests_max, 1_002);
    assert_eq!(hour.api_requests_max_per_credential, 100);
}

#[test]
fn api_rate_limit_is_counted_per_credential() {
    let mut emu = emulator();
    let token = autotask_token(&mut emu, 0);
    // 600 requests with one token, 100 ms apart: allowed...
    let statuses: Vec<u16> = (0..600u64)
        .map(|i| {
            emu.handle(i * 100, &bearer(Request::get(AUTOTASK_API), &token))
                .status
        })
        .collect();
    assert!(statuses.iter().all(|s| *s == 200));
    // ...one more at 59.95 s is the 601st within a minute: 429, but it was
    // sent with that token, so it counts in the windows.
    let over = emu.handle(59_950, &bearer(Request::get(AUTOTASK_API), &token));
    assert_eq!(over.status, 429);
    let stats = emu.stats();
    let a = stats.provider(Provider::Autotask);
    assert_eq!(
        (a.api_requests, a.api_authorized, a.api_rate_limited),
        (601, 601, 1)
    );
    let minute = a.window(60).unwrap();
    assert_eq!(minute.api_requests_max, 601);
    assert_eq!(minute.api_requests_max_per_credential, 601);
}

#[test]
fn every_provider_is_counted() {
    let mut emu = emulator();
    // Fentu: an API key and an OAuth token.
    for key in ["fentu-demo-key", "not-a-key"] {
        emu.handle(0, &bearer(Request::get("/fentu/v1/work-orders"), key));
    }
    let login = fentu_login(&mut emu, 0, "read:work-orders");
    let access = field(&login, "access_token");
    emu.handle(1, &bearer(Request::get("/fentu/v1/customers"), &access));
    // Field Nation: a token and two API calls, one without the token.
    let fnt = fieldnation_token(&mut emu, 0);
    emu.handle(
        1,
        &Request::get(&format!(
            "/fieldnation/api/rest/v2/workorders?access_token={fnt}"
        )),
    );
    emu.handle(1, &Request::get("/fieldnation/api/rest/v2/workorders"));
    // Patchworks: a failed login, a login, the token and the API key.
    emu.handle(
        0,
        &json_post(
            "/patchworks/fabric/api/login",
            r#"{"username":"x","password":"y"}"#,
        )
        .with_header("Accept", "application/json"),
    );
    let pw = patchworks_login(&mut emu, 0);
    emu.handle(1, &bearer(Request::get("/patchworks/core/v1/flows"), &pw));
    emu.handle(
        1,
        &Request::get("/patchworks/core/v1/flows").with_header("Authorization", "pw-demo-key"),
    );
    // Not counted: the authorize endpoint, unknown paths, the index, /_stats.
    emu.handle(0, &Request::get("/fentu/nope"));
    emu.handle(0, &Request::get("/"));
    emu.handle(0, &Request::get(STATS_PATH));

    let stats = emu.stats();
    let counts = |p: Provider| {
        let s = stats.provider(p);
        (
            s.token_requests,
            s.token_succeeded,
            s.api_requests,
            s.api_authorized,
            s.api_rejected,
        )
    };
    assert_eq!(counts(Provider::Fentu), (1, 1, 3, 2, 1));
    assert_eq!(counts(Provider::FieldNation), (1, 1, 2, 1, 1));
    assert_eq!(counts(Provider::Autotask), (0, 0, 0, 0, 0));
    assert_eq!(counts(Provider::Patchworks), (2, 1, 2, 2, 0));
    // Two Fentu credentials (the key and the token), one request each.
    let fentu = stats.provider(Provider::Fentu).window(60).unwrap();
    assert_eq!(
        (
            fentu.api_requests_max,
            fentu.api_requests_max_per_credential
        ),
        (3, 1)
    );
}

#[test]
fn fentu_hour_window() {
    let mut emu = emulator();
    let key = |emu: &mut Emulator, t: u64| {
        emu.handle(
            t,
            &bearer(Request::get("/fentu/v1/assets"), "fentu-demo-key"),
        )
        .status
    };
    // Requests 15 minutes apart, then two 1 ms apart: two in a minute at
    // most, five in an hour (the sixth, an hour after the first, is not in
    // the first one's hour).
    for t in [0, 900_000, 1_800_000, 2_700_000, 3_599_999, 3_600_000] {
        assert_eq!(key(&mut emu, t), 200);
    }
    let stats = emu.stats();
    let fentu = stats.provider(Provider::Fentu);
    assert_eq!(fentu.window(60).unwrap().api_requests_max, 2);
    assert_eq!(fentu.window(3_600).unwrap().api_requests_max, 5);
}

#[test]
fn configured_windows_and_the_cap() {
    let config = EmulatorConfig::default().with_stats_windows(&[10, 1]);
    let mut emu = Emulator::new(config);
    autotask_tokens_at(&mut emu, [0, 500, 1_000, 9_000]);
    let stats = emu.stats();
    assert_eq!(stats.windows_s, vec![1, 10]);
    let a = stats.provider(Provider::Autotask);
    assert_eq!(a.window(1).unwrap().token_requests_max, 2);
    assert_eq!(a.window(10).unwrap().token_requests_max, 4);
    assert!(a.window(60).is_none());

    // A cap of 3 timestamps: the 10 s maximum is a lower bound, flagged.
    let mut config = EmulatorConfig::default().with_stats_windows(&[10, 1]);
    config.stats_cap = 3;
    let mut emu = Emulator::new(config);
    autotask_tokens_at(&mut emu, [0, 500, 1_000, 9_000]);
    let stats = emu.stats();
    let a = stats.provider(Provider::Autotask);
    assert_eq!(a.window(10).unwrap().token_requests_max, 3);
    assert!(!a.window(10).unwrap().exact);
    assert_eq!(a.token_requests, 4, "totals are not capped");

    // New windows take effect at the reset.
    emu.config_mut().stats_windows_s = vec![30];
    assert_eq!(emu.stats().windows_s, vec![1, 10]);
    emu.reset_stats();
    assert_eq!(emu.stats().windows_s, vec![30]);
}

#[test]
fn reset_zeroes_everything_but_keeps_tokens() {
    let mut emu = emulator();
    let token = autotask_token(&mut emu, 0);
    emu.handle(1, &bearer(Request::get(AUTOTASK_API), &token));
    let before = emu.reset_stats();
    assert_eq!(before.provider(Provider::Autotask).api_requests, 1);
    let zero = emu.stats();
    assert_eq!(zero, Emulator::new(EmulatorConfig::default()).stats());
    assert_eq!(
        zero.provider(Provider::Autotask)
            .window(60)
            .unwrap()
            .token_requests_max,
        0
    );
    // The token is still good, and the new run is counted from zero.
    assert_eq!(
        emu.handle(2, &bearer(Request::get(AUTOTASK_API), &token))
            .status,
        200
    );
    assert_eq!(emu.stats().provider(Provider::Autotask).api_requests, 1);
}

#[test]
fn json_shape() {
    let stats = emulator().stats();
    let json: serde_json::Value = serde_json::from_str(&stats.to_json()).unwrap();
    let top: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top.len(), 2);
    assert_eq!(json["windows_s"], serde_json::json!([60, 3600]));
    for p in Provider::ALL {
        let provider = &json["providers"][p.name()];
        for member in [
            "token_requests",
            "token_succeeded",
            "token_rate_limited",
            "refresh_replays",
            "grants_revoked",
            "api_requests",
            "api_authorized",
            "api_rejected",
            "api_rate_limited",
        ] {
            assert_eq!(provider[member], 0, "{p} {member}");
        }
        for w in ["60", "3600"] {
            assert_eq!(
                provider["windows"][w],
                serde_json::json!({
                    "token_requests_max": 0,
                    "api_requests_max": 0,
                    "api_requests_max_per_credential": 0,
                    "exact": true
                }),
                "{p} {w}"
            );
        }
    }
    // The body keeps the members in the documented order.
    assert!(stats.to_json().starts_with(
        r#"{"windows_s":[60,3600],"providers":{"fentu":{"token_requests":0,"token_succeeded":0,"#
    ));
}

/// `GET /_stats` and `POST /_stats/reset` on a running emulator, with the
/// emulator's own (advanced) clock making the windows.
#[test]
fn over_http_with_the_emulators_clock() {
    let server = spawn(EmulatorConfig::default()).unwrap();
    let mut client = Client::connect(server.addr());
    let mut send = |req: Request| {
        client.send(&req.to_bytes());
        client.read_response()
    };
    // 11 token requests 6.1 s apart on the emulator's clock.
    for i in 0..11 {
        if i > 0 {
            server.with(|emu| emu.advance_clock(6_100));
        }
        assert_eq!(send(autotask_token_request()).status, 200);
    }
    let resp = send(Request::get(STATS_PATH));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Cache-Control"), Some("no-store"));
    let json = resp.json();
    let autotask = &json["providers"]["autotask"];
    assert_eq!(autotask["token_requests"], 11);
    assert_eq!(autotask["windows"]["60"]["token_requests_max"], 10);
    // In-process, the same numbers.
    let stats: Stats = server.stats();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stats.to_json()).unwrap(),
        json
    );

    // Reset over HTTP answers the old counters.
    let reset = send(Request::post(STATS_RESET_PATH));
    assert_eq!(reset.status, 200);
    assert_eq!(reset.json(), json);
    assert_eq!(
        server.stats().provider(Provider::Autotask).token_requests,
        0
    );

    // 11 in 55 s on the emulator's clock (plus the real milliseconds this
    // takes): the 11th is refused and counted.
    for i in 0..11 {
        server.with(|emu| emu.advance_clock(if i == 0 { 60_000 } else { 5_500 }));
        let status = send(autotask_token_request()).status;
        assert_eq!(status, if i < 10 { 200 } else { 429 }, "request {i}");
    }
    let json = send(Request::get(STATS_PATH)).json();
    let autotask = &json["providers"]["autotask"];
    assert_eq!(autotask["token_requests"], 11);
    assert_eq!(autotask["token_rate_limited"], 1);
    assert_eq!(autotask["windows"]["60"]["token_requests_max"], 11);

    // In-process reset, seen over HTTP.
    assert_eq!(
        server
            .reset_stats()
            .provider(Provider::Autotask)
            .token_requests,
        11
    );
    let json = send(Request::get(STATS_PATH)).json();
    assert_eq!(json["providers"]["autotask"]["token_requests"], 0);

    // Wrong methods and other paths under /_stats.
    let wrong = send(Request::post(STATS_PATH));
    assert_eq!((wrong.status, wrong.header("Allow")), (405, Some("GET")));
    let wrong = send(Request::get(STATS_RESET_PATH));
    assert_eq!((wrong.status, wrong.header("Allow")), (405, Some("POST")));
    assert_eq!(
        server.stats().provider(Provider::Autotask).token_requests,
        0
    );
    assert_eq!(send(Request::get("/_stats/other")).status, 404);
    // The index page lists it.
    let index = send(Request::get("/"));
    let text = String::from_utf8_lossy(&index.body).into_owned();
    assert!(text.contains("GET  /_stats") && text.contains("POST /_stats/reset"));
    // The log shows the stats requests, under no provider.
    let log = server.log();
    let entry = log.iter().find(|e| e.path == STATS_PATH).unwrap();
    assert_eq!((entry.provider, entry.endpoint), (None, None));
}

/// Refresh-token replays and revoked grants over HTTP, as a fleet test
/// reads them from another process.
#[test]
fn replay_counted_over_http() {
    let server = spawn(EmulatorConfig::default().with_refresh_token_rotation(true)).unwrap();
    let (access, rt0) = server.with(|emu| {
        let login = fentu_login(emu, 0, "read:work-orders");
        (
            field(&login, "access_token"),
            field(&login, "refresh_token"),
        )
    });
    let mut client = Client::connect(server.addr());
    let refresh = form_post(
        "/fentu/oauth/token",
        &encode_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt0),
            ("client_id", DEMO_ID),
            ("client_secret", DEMO_SECRET),
        ]),
    );
    for expected in [200, 400, 400] {
        client.send(&refresh.to_bytes());
        assert_eq!(client.read_response().status, expected);
    }
    client.send(&bearer(Request::get("/fentu/v1/work-orders"), &access).to_bytes());
    assert_eq!(client.read_response().status, 401);
    client.send(&Request::get(STATS_PATH).to_bytes());
    let json = client.read_response().json();
    let fentu = &json["providers"]["fentu"];
    assert_eq!(fentu["refresh_replays"], 2);
    assert_eq!(fentu["grants_revoked"], 1);
    assert_eq!(fentu["token_requests"], 4);
    assert_eq!(fentu["token_succeeded"], 2);
    assert_eq!(fentu["api_rejected"], 1);
}
