//! HTTPS from Rust: a `Session` driven by the blocking driver over rustls
//! (`FromStd<rustls::StreamOwned<ClientConnection, TcpStream>>`) against
//! the provider emulator behind TLS on 127.0.0.1, with a CA and server
//! certificate rcgen makes at test time (`support/https_emulator.rs`, also
//! used by `examples/https_rustls.rs`). The core has no TLS: these tests
//! show that the driver runs over a TLS stream as over a plain one, that
//! nothing secret crosses the wire in clear, and that a certificate the
//! client does not trust is a transport failure the session retries.
//!
//! `cargo test -p fieldauth --features std --test https`
#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

#[path = "support/https_emulator.rs"]
mod https_emulator;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldauth::driver::{self, ApiOutcome, FromStd};
use fieldauth::preset;
use fieldauth::session::{Action, ApiVerdict, Config, Event, RequestKind, Session};
use fieldauth::url::Url;
use fieldauth::Error;
use fieldauth_emulator::{EmulatorConfig, EndpointKind, Provider};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use https_emulator::{HttpsEmulator, Pki};

const API: &str = "/ATServicesRest/V1.0/Companies";

/// A TCP stream that keeps a copy of every byte written to it: what went
/// over the wire.
struct Tap {
    tcp: TcpStream,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tcp.write(buf)?;
        self.sent.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

type Stream = FromStd<StreamOwned<ClientConnection, Tap>>;

fn client_config(ca: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS stream to the server, verifying `name`; the handshake happens on
/// the first read or write (inside the driver). Returns the wire tap too.
fn connect(
    server: &HttpsEmulator,
    tls: &Arc<ClientConfig>,
    name: &str,
) -> (Stream, Arc<Mutex<Vec<u8>>>) {
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let tap = Tap {
        tcp,
        sent: Arc::clone(&sent),
    };
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let conn = ClientConnection::new(Arc::clone(tls), name).unwrap();
    (FromStd::new(StreamOwned::new(conn, tap)), sent)
}

fn config(base_url: &str) -> Config<'_> {
    Config {
        base_url,
        client_id: "demo-client",
        client_secret: "demo-secret",
        ..Config::default()
    }
}

/// One authorized GET and its whole body.
fn get(
    session: &mut Session,
    now: u64,
    io: &mut Stream,
    url: Url<'_>,
) -> (u16, ApiVerdict, Vec<u8>) {
    let mut buf = [0u8; 256];
    match driver::api_get(session, now, io, url, &mut buf).unwrap() {
        ApiOutcome::Response(response) => {
            let mut body = Vec::new();
            driver::read_body(io, &response, &mut buf, |p| body.extend_from_slice(p)).unwrap();
            (response.head.status, response.verdict, body)
        }
        other => panic!("not sent: {other:?}"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A token exchange and three authorized calls on one TLS connection (one
/// handshake), for a server named by IP address and by DNS name; the
/// client secret and the token never appear in clear on the wire.
#[test]
fn token_exchange_and_api_calls_over_one_tls_connection() {
    let pki = Pki::new("fieldauth test CA", &["localhost", "127.0.0.1"]).unwrap();
    let tls = client_config(&pki.ca);
    for host in ["127.0.0.1", "localhost"] {
        let server =
            HttpsEmulator::start(EmulatorConfig::default(), pki.server_config().unwrap()).unwrap();
        let base_url = server.base_url(host, Provider::Autotask);
        let mut session: Session = Session::new(&preset::AUTOTASK, &config(&base_url), 7).unwrap();
        let (mut io, wire) = connect(&server, &tls, host);
        let mut now = 1_000;

        assert_eq!(
            session.poll(now),
            Action::SendTokenRequest(RequestKind::Fetch)
        );
        let mut buf = [0u8; 128];
        let exchanged = driver::exchange_token(&mut session, now, &mut io, &mut buf).unwrap();
        assert!(exchanged.reusable, "the emulator keeps the connection open");
        let event = exchanged.event;
        assert!(
            matches!(
                event,
                Event::TokenIssued {
                    kind: RequestKind::Fetch,
                    lifetime_s: 3600,
                    ..
                }
            ),
            "{event:?}"
        );
        assert!(session.status().usable);

        let url = Url::parse(&base_url).unwrap().join(API).unwrap();
        for _ in 0..3 {
            now += 1_000; // Autotask's client-side pacing: 600 calls a minute
            let (status, verdict, body) = get(&mut session, now, &mut io, url);
            assert_eq!((status, verdict), (200, ApiVerdict::Ok));
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(json.is_object(), "{json}");
        }

        // Everything went through TLS 1.3, on one connection.
        let tls_conn = &io.inner().conn;
        assert_eq!(
            tls_conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(server.handshakes(), 1);
        let log = server.with(|e| e.log().to_vec());
        let kinds: Vec<_> = log.iter().map(|l| (l.endpoint, l.status)).collect();
        assert_eq!(
            kinds,
            [
                (Some(EndpointKind::Token), 200),
                (Some(EndpointKind::Api), 200),
                (Some(EndpointKind::Api), 200),
                (Some(EndpointKind::Api), 200),
            ]
        );
        // The bytes on the wire are TLS records, not HTTP.
        let wire = wire.lock().unwrap();
        assert!(wire.len() > 500, "{} bytes sent", wire.len());
        for clear in [
            &b"demo-secret"[..],
            b"POST ",
            b"Authorization",
            b"Bearer",
            b"client_secret",
        ] {
            assert!(
                !contains(&wire, clear),
                "{:?} in clear on the wire",
                String::from_utf8_lossy(clear)
            );
        }
    }
}

/// A token the server expired (its clock moved an hour on) draws a 401
/// over TLS; the session drops it, fetches a new one on the same
/// connection, and the retried call succeeds.
#[test]
fn a_401_over_tls_is_recovered_on_the_same_connection() {
    let pki = Pki::new("fieldauth test CA", &["localhost"]).unwrap();
    let tls = client_config(&pki.ca);
    let server =
        HttpsEmulator::start(EmulatorConfig::default(), pki.server_config().unwrap()).unwrap();
    let base_url = server.base_url("localhost", Provider::Autotask);
    let mut session: Session = Session::new(&preset::AUTOTASK, &config(&base_url), 7).unwrap();
    let (mut io, _) = connect(&server, &tls, "localhost");
    let url = Url::parse(&base_url).unwrap().join(API).unwrap();
    let mut buf = [0u8; 128];
    let mut now = 1_000;

    driver::exchange_token(&mut session, now, &mut io, &mut buf).unwrap();
    assert_eq!(get(&mut session, now, &mut io, url).1, ApiVerdict::Ok);

    server.with(|e| e.advance_clock(3_601_000));
    now += 1_000;
    let (status, verdict, _) = get(&mut session, now, &mut io, url);
    assert_eq!((status, verdict), (401, ApiVerdict::RetryWithNewToken));

    // The token endpoint's budget may ask for a short wait first.
    let mut exchanged = false;
    for _ in 0..4 {
        match session.poll(now) {
            Action::SendTokenRequest(kind) => {
                assert_eq!(kind, RequestKind::Fetch); // Autotask has no refresh token
                let event = driver::exchange_token(&mut session, now, &mut io, &mut buf)
                    .unwrap()
                    .event;
                assert!(matches!(event, Event::TokenIssued { .. }), "{event:?}");
                exchanged = true;
                break;
            }
            Action::Wait { until } => now = until,
            other => panic!("{other:?}"),
        }
    }
    assert!(exchanged);
    now += 1_000;
    assert_eq!(get(&mut session, now, &mut io, url).0, 200);
    assert_eq!(server.handshakes(), 1);
    let token_requests = server.with(|e| {
        e.log()
            .iter()
            .filter(|l| l.endpoint == Some(EndpointKind::Token))
            .count()
    });
    assert_eq!(token_requests, 2);
}

/// A server certificate the client cannot verify — issued by a CA it does
/// not trust, or for another name — fails the handshake inside the driver:
/// `Error::Transport`, counted by the session as a failed attempt with a
/// retry scheduled, and no request ever reaches the server.
#[test]
fn an_unverifiable_certificate_is_a_transport_failure_that_is_retried() {
    let pki = Pki::new("fieldauth test CA", &["localhost"]).unwrap();
    let stranger = Pki::new("some other CA", &["localhost"]).unwrap();
    let cases = [
        ("untrusted CA", client_config(&stranger.ca), "localhost"),
        ("wrong name", client_config(&pki.ca), "127.0.0.1"),
    ];
    for (what, tls, host) in cases {
        let server =
            HttpsEmulator::start(EmulatorConfig::default(), pki.server_config().unwrap()).unwrap();
        let base_url = server.base_url(host, Provider::Autotask);
        let mut session: Session = Session::new(&preset::AUTOTASK, &config(&base_url), 7).unwrap();
        let (mut io, wire) = connect(&server, &tls, host);
        let now = 1_000;
        assert_eq!(
            session.poll(now),
            Action::SendTokenRequest(RequestKind::Fetch)
        );
        let mut buf = [0u8; 128];
        let result = driver::exchange_token(&mut session, now, &mut io, &mut buf);
        assert_eq!(result, Err(Error::Transport), "{what}");

        let status = session.status();
        assert!(!status.usable, "{what}");
        assert_eq!(status.failed_attempts, 1, "{what}");
        assert_eq!(status.last_http_status, 0, "{what}");
        assert!(
            matches!(session.poll(now), Action::Wait { until } if until > now),
            "{what}"
        );
        // Nothing but the handshake's first flight (and an alert) was sent.
        assert!(!contains(&wire.lock().unwrap(), b"demo-secret"), "{what}");
        assert!(server.with(|e| e.log().is_empty()), "{what}");
        assert_eq!(server.handshakes(), 0, "{what}");
    }
}
