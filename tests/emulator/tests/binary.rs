//! The `fieldauth-emulator` binary: prints base URLs, serves, logs requests.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use common::*;
use fieldauth_emulator::Request;

/// Starts the emulator binary with `args`; returns it, its stdout (after the
/// first line) and the address that line announced.
fn spawn(args: &[&str]) -> (Child, BufReader<ChildStdout>, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldauth-emulator"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("fieldauth-emulator listening on http://")
        .unwrap_or_else(|| panic!("first line: {line}"))
        .parse()
        .unwrap();
    (child, out, addr)
}

#[test]
fn binary_prints_base_urls_and_logs_requests() {
    let (mut child, mut out, addr) = spawn(&[
        "--port",
        "0",
        "--lifetime",
        "30",
        "--faults",
        "autotask:token:429=7:once",
    ]);
    let mut line = String::new();
    let mut banner = Vec::new();
    for _ in 0..7 {
        line.clear();
        out.read_line(&mut line).unwrap();
        banner.push(line.clone());
    }
    let banner = banner.concat();
    for prefix in ["/fentu", "/fieldnation", "/autotask", "/patchworks"] {
        assert!(
            banner.contains(&format!("http://{addr}{prefix}")),
            "{banner}"
        );
    }
    assert!(banner.contains("(token lifetime 30 s)"));
    assert!(banner.contains("(token lifetime 30 s); refresh tokens rotate"));
    assert!(banner.contains(&format!(
        "counters: GET http://{addr}/_stats (windows 60, 3600 s), POST http://{addr}/_stats/reset"
    )));
    assert!(banner.contains("fault: autotask:token:429=7:first=1"));

    let mut client = Client::connect(addr);
    let token = form_post(
        "/autotask/ATServicesRest/oauth/token",
        "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
    );
    client.send(&token.to_bytes());
    let resp = client.read_response();
    assert_eq!((resp.status, resp.header("Retry-After")), (429, Some("7")));
    client.send(&token.to_bytes());
    assert_eq!(client.read_response().json()["expires_in"], 30);
    client.send(&Request::get("/fentu/v1/work-orders").to_bytes());
    assert_eq!(client.read_response().status, 401);

    let mut logged = Vec::new();
    for _ in 0..3 {
        line.clear();
        out.read_line(&mut line).unwrap();
        logged.push(line.clone());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        logged[0].contains(
            "POST /autotask/ATServicesRest/oauth/token -> 429 [autotask token] faults: 429=7"
        ),
        "{logged:?}"
    );
    assert!(logged[1].contains("-> 200"));
    assert!(logged[2]
        .contains("GET /fentu/v1/work-orders -> 401 [fentu api] (no Authorization header)"));
    assert!(
        logged[0].contains('T') && logged[0].contains("Z +"),
        "timestamped: {}",
        logged[0]
    );
}

#[test]
fn binary_help_and_bad_flags() {
    let help = Command::new(env!("CARGO_BIN_EXE_fieldauth-emulator"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help_text = String::from_utf8_lossy(&help.stdout);
    assert!(help_text.contains("FAULT SPECS"));
    // The endpoints and the demo credentials are listed too.
    for listed in [
        "ENDPOINTS",
        "/fieldnation",
        "POST /authentication/api/oauth/token",
        "GET  /ATServicesRest/V1.0/Companies",
        "demo-client / demo-secret",
        "GET  /_stats",
        "POST /_stats/reset",
        "--rotate-refresh-tokens",
        "--no-rotate-refresh-tokens",
        "--stats-window SECS",
    ] {
        assert!(help_text.contains(listed), "--help lacks {listed}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_fieldauth-emulator"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown option"));
}

#[test]
fn binary_keeps_serving_after_its_stdout_is_closed() {
    let (mut child, out, addr) = spawn(&["--port", "0"]);
    // Whoever started the emulator stops reading its log: the pipe closes,
    // and every later log line hits EPIPE (Rust ignores SIGPIPE).
    drop(out);

    let mut client = Client::connect(addr);
    for _ in 0..3 {
        client.send(&Request::get("/fentu/v1/work-orders").to_bytes());
        assert_eq!(client.read_response().status, 401);
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the emulator exited after its stdout closed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Over HTTP: a Fentu login, then two refreshes with the login's refresh
/// token; returns the two statuses.
fn login_and_refresh_twice(client: &mut Client) -> (u16, u16) {
    let authorize = format!(
        "/fentu/oauth/authorize?client_id={DEMO_ID}&redirect_uri={}&scope=read:work-orders&response_type=code",
        fieldauth_emulator::encoding::encode_component(REDIRECT)
    );
    client.send(&Request::get(&authorize).to_bytes());
    let redirect = client.read_response();
    let location = redirect.header("Location").unwrap();
    let query = location.split_once('?').unwrap().1;
    let params = fieldauth_emulator::encoding::Params::parse(query).unwrap();
    let code = params.unique("code").unwrap().unwrap().to_owned();
    let exchange = fieldauth_emulator::encoding::encode_form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", DEMO_ID),
        ("client_secret", DEMO_SECRET),
    ]);
    client.send(&form_post("/fentu/oauth/token", &exchange).to_bytes());
    let login = client.read_response();
    assert_eq!(login.status, 200);
    let refresh_token = login.json()["refresh_token"].as_str().unwrap().to_owned();
    let refresh = fieldauth_emulator::encoding::encode_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh_token),
        ("client_id", DEMO_ID),
        ("client_secret", DEMO_SECRET),
    ]);
    let mut statuses = [0; 2];
    for status in &mut statuses {
        client.send(&form_post("/fentu/oauth/token", &refresh).to_bytes());
        *status = client.read_response().status;
    }
    (statuses[0], statuses[1])
}

#[test]
fn binary_rotation_flags_and_stats_over_http() {
    for (flag, second, replays) in [
        ("--no-rotate-refresh-tokens", 200, 0),
        ("--rotate-refresh-tokens", 400, 1),
    ] {
        let (mut child, _out, addr) =
            spawn(&["--port", "0", "--quiet", flag, "--stats-window", "30"]);
        let mut client = Client::connect(addr);
        assert_eq!(
            login_and_refresh_twice(&mut client),
            (200, second),
            "{flag}"
        );

        client.send(&Request::get("/_stats").to_bytes());
        let stats = client.read_response();
        assert_eq!(stats.status, 200);
        assert_eq!(stats.header("Content-Type"), Some("application/json"));
        let stats = stats.json();
        assert_eq!(stats["windows_s"], serde_json::json!([30]), "{stats}");
        let fentu = &stats["providers"]["fentu"];
        assert_eq!(fentu["token_requests"], 3, "{flag}: {stats}");
        assert_eq!(fentu["token_succeeded"], 2 + u64::from(second == 200));
        assert_eq!(fentu["refresh_replays"], replays);
        assert_eq!(fentu["grants_revoked"], replays);
        assert_eq!(fentu["windows"]["30"]["token_requests_max"], 3);
        assert_eq!(fentu["windows"]["30"]["exact"], true);
        assert!(fentu["windows"].get("60").is_none());

        // Reset answers the counters as they were, then they are zero.
        client.send(&Request::post("/_stats/reset").to_bytes());
        let before = client.read_response().json();
        assert_eq!(before, stats);
        client.send(&Request::get("/_stats").to_bytes());
        let after = client.read_response().json();
        assert_eq!(after["providers"]["fentu"]["token_requests"], 0);
        assert_eq!(
            after["providers"]["fentu"]["windows"]["30"]["token_requests_max"],
            0
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
