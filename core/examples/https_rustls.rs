//! HTTPS from Rust: a `Session` run by the blocking driver over a rustls
//! connection — a token exchange, then authorized API calls on the same
//! TLS connection.
//!
//! fieldauth has no TLS of its own: the driver runs over any stream that is
//! `std::io::Read + Write` (through `FromStd`), and a
//! `rustls::StreamOwned<ClientConnection, TcpStream>` is one. The client
//! half of this file (`connect_tls`, `run_client`) is what a host
//! application copies; with a real provider, `ca` would be the system's or
//! webpki-roots' trust store and `base_url` the provider's (e.g.
//! `https://webservices.autotask.net`).
//!
//! To run without an account, the provider here is the emulator behind TLS
//! on 127.0.0.1, with a private CA and a server certificate made at start-up
//! (`tests/support/https_emulator.rs`).
//!
//! Run: `cargo run -p fieldauth --features std --example https_rustls`
//!
//! Cargo.toml of an application doing this:
//!
//! ```toml
//! fieldauth = { version = "0.1", features = ["std"] }
//! # ring: builds with a C compiler alone. rustls's default, aws-lc-rs, adds
//! # post-quantum key exchange but needs cmake or NASM on some hosts.
//! rustls = { version = "0.23", default-features = false, features = ["ring", "std", "tls12"] }
//! webpki-roots = "1"   # or rustls-native-certs: the public CAs
//! ```

// An example prints and counts; the core's panic-free lints are for the
// library.
#![allow(clippy::print_stdout, clippy::arithmetic_side_effects)]

use std::collections::hash_map::RandomState;
use std::error::Error;
use std::hash::BuildHasher;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldauth::driver::{self, ApiOutcome, FromStd};
use fieldauth::preset;
use fieldauth::session::{Action, ApiVerdict, Config, Session};
use fieldauth::url::Url;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

#[path = "../tests/support/https_emulator.rs"]
mod https_emulator;

/// The stream the driver runs on: TLS over TCP, adapted to the driver's
/// `embedded_io` traits.
type TlsStream = FromStd<StreamOwned<ClientConnection, TcpStream>>;

/// A client TLS configuration that trusts `ca` (and nothing else).
///
/// The crypto provider is the one rustls's Cargo features select (here
/// `ring`; with rustls's default features, aws-lc-rs, which adds
/// post-quantum key exchange but needs more to build). If a dependency
/// graph enables both, `ClientConfig::builder` panics: install one first
/// with `CryptoProvider::install_default`.
fn tls_config(ca: CertificateDer<'static>) -> Result<Arc<ClientConfig>, Box<dyn Error>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    // With a public provider instead:
    //   roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects to the host and port of `url` and completes the TLS handshake,
/// verifying the certificate against `url`'s host name.
///
/// The handshake is done here, before the driver sees the stream, so that a
/// certificate problem comes back as rustls's own error ("invalid peer
/// certificate: UnknownIssuer") rather than as the driver's
/// `fieldauth::Error::Transport`.
fn connect_tls(tls: &Arc<ClientConfig>, url: Url<'_>) -> Result<TlsStream, Box<dyn Error>> {
    let name = ServerName::try_from(url.host().to_owned())?;
    let mut tcp = TcpStream::connect((url.host(), url.port()))?;
    // The driver does not time out on its own: the socket does, and a
    // timed-out read or write becomes `fieldauth::Error::Transport`.
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_nodelay(true)?;
    let mut conn = ClientConnection::new(Arc::clone(tls), name)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(FromStd::new(StreamOwned::new(conn, tcp)))
}

/// The application: keep a credential usable and make `calls` authorized
/// API calls, all over one TLS connection (reconnecting if it drops).
fn run_client(
    tls: &Arc<ClientConfig>,
    base_url: &str,
    api_path: &str,
    calls: usize,
) -> Result<(), Box<dyn Error>> {
    let config = Config {
        base_url,
        client_id: "demo-client",
        client_secret: "demo-secret",
        ..Config::default()
    };
    // The seed drives the retry jitter (so that a fleet does not retry in
    // step): any random u64. std's hasher keys come from the OS's RNG.
    let seed = RandomState::new().hash_one(0u8);
    let mut session: Session = Session::new(&preset::AUTOTASK, &config, seed)?;
    let clock = Instant::now();
    let now = || clock.elapsed().as_millis() as u64; // monotonic milliseconds

    let api_url = Url::parse(base_url)?.join(api_path)?;
    let mut stream: Option<TlsStream> = None;
    let mut buf = [0u8; 1024]; // carries requests out and responses in
    let mut done = 0;
    while done < calls {
        if stream.is_none() {
            stream = Some(connect_tls(tls, api_url)?);
        }
        let Some(io) = stream.as_mut() else { continue };
        match session.poll(now()) {
            Action::SendTokenRequest(kind) => {
                match driver::exchange_token(&mut session, now(), io, &mut buf) {
                    Ok(exchanged) => {
                        println!("token request ({kind:?}): {:?}", exchanged.event);
                        if !exchanged.reusable {
                            // The server closes this connection (Connection:
                            // close, HTTP/1.0): the next request needs a new one.
                            stream = None;
                        }
                    }
                    Err(e) => {
                        // The session has counted the failure and scheduled
                        // a retry: reconnect and poll again.
                        println!("token request ({kind:?}) failed: {e}");
                        stream = None;
                    }
                }
            }
            Action::Ready { .. } => {
                match driver::api_get(&mut session, now(), io, api_url, &mut buf) {
                    Ok(ApiOutcome::Response(response)) => {
                        let mut body = Vec::new();
                        // Read the whole body: the connection is then ready for
                        // the next request.
                        driver::read_body(io, &response, &mut buf, |piece| {
                            body.extend_from_slice(piece)
                        })?;
                        let status = response.head.status;
                        match response.verdict {
                            ApiVerdict::Ok => {
                                done += 1;
                                println!("GET {api_path}: HTTP {status}, {} bytes", body.len());
                            }
                            // The token was dropped: the next poll fetches a new one.
                            ApiVerdict::RetryWithNewToken => println!("HTTP {status}: new token"),
                            ApiVerdict::RateLimited { until } => {
                                println!("HTTP {status}: rate limited");
                                std::thread::sleep(Duration::from_millis(
                                    until.saturating_sub(now()),
                                ));
                            }
                            other => return Err(format!("HTTP {status}: {other:?}").into()),
                        }
                    }
                    Ok(ApiOutcome::Wait { until }) => {
                        std::thread::sleep(Duration::from_millis(until.saturating_sub(now())));
                    }
                    Ok(ApiOutcome::NoCredential) => {} // poll again
                    Err(e) => {
                        println!("API call failed: {e}; reconnecting");
                        stream = None;
                    }
                }
            }
            Action::Wait { until } => {
                std::thread::sleep(Duration::from_millis(until.saturating_sub(now())));
            }
            Action::AwaitResponse => {} // the driver feeds responses itself
            Action::NeedAuthorizationCode => return Err("not a client-credentials profile".into()),
            Action::Failed(failure) => {
                let why = session.failure_description().unwrap_or("");
                return Err(format!("session failed: {failure:?} {why}").into());
            }
        }
    }
    // Tell the server we are done (TLS close_notify), then drop the socket.
    if let Some(io) = stream {
        let mut tls = io.into_inner();
        tls.conn.send_close_notify();
        let _ = tls.conn.complete_io(&mut tls.sock);
    }
    session.clear(); // wipe the secrets
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    // The stand-in provider: a private CA, a certificate for 127.0.0.1 and
    // localhost, the emulator behind TLS.
    let pki = https_emulator::Pki::new("fieldauth example CA", &["localhost", "127.0.0.1"])?;
    let server = https_emulator::HttpsEmulator::start(Default::default(), pki.server_config()?)?;
    let base_url = server.base_url("127.0.0.1", fieldauth_emulator::Provider::Autotask);
    println!("provider: {base_url} (TLS, certificate from a CA made just now)");

    // The client trusts that CA only.
    let tls = tls_config(pki.ca.clone())?;
    run_client(&tls, &base_url, "/ATServicesRest/V1.0/Companies", 3)?;

    println!(
        "{} TLS handshake(s); the emulator answered: {}",
        server.handshakes(),
        server.with(|e| e
            .log()
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("; "))
    );
    Ok(())
}
