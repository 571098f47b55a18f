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
    for _ in 0..6 {
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
