//! The provider emulator behind TLS, on 127.0.0.1: the stand-in for a
//! provider's HTTPS endpoint in `examples/https_rustls.rs` and
//! `tests/https.rs`.
//!
//! [`Pki::new`] makes a private CA and a server certificate signed by it
//! (rcgen, at run time: nothing is checked in, nothing expires in CI), and
//! [`HttpsEmulator::start`] serves a `fieldauth_emulator::Emulator` over
//! rustls with that certificate: each connection does its TLS handshake,
//! then reads HTTP/1.1 requests (keep-alive), answers each with
//! `Emulator::handle` and writes the answer back through TLS. The emulator
//! has no plain-HTTP listener here, so every request it logs came over TLS.
//!
//! Scaffolding for tests, not something a client copies: `unwrap` on
//! poisoned locks and the like is fine here. Of the emulator's transport
//! directives it honours "close" and "truncate" (the connection ends after
//! the answer); pieces and delays are not reproduced over TLS.
// Test scaffolding: the core's panic-free lints are for the library.
#![allow(
    dead_code,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fieldauth_emulator::{parse_request, Emulator, EmulatorConfig, Limits, Parsed, Provider};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(10);

/// A keep-alive connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(30);

/// A private certificate authority and one server certificate it signed.
pub struct Pki {
    /// The CA certificate: what a client trusts (its only root).
    pub ca: CertificateDer<'static>,
    /// The server's certificate chain: the leaf, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8 DER).
    key: Vec<u8>,
}

impl Pki {
    /// A CA named `ca_name` and a server certificate for `names` (DNS names
    /// or IP addresses, e.g. `["localhost", "127.0.0.1"]`) signed by it.
    pub fn new(ca_name: &str, names: &[&str]) -> Result<Pki, rcgen::Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "fieldauth emulator");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &issuer)?;

        Ok(Pki {
            ca: ca_cert.der().clone(),
            chain: vec![leaf.der().clone(), ca_cert.der().clone()],
            key: key.serialize_der(),
        })
    }

    /// A rustls server configuration presenting this certificate chain
    /// (the provider rustls's features select: ring; TLS 1.2 and 1.3).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, rustls::Error> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)?;
        Ok(Arc::new(config))
    }
}

/// The emulator served over TLS in the background; stops when dropped.
pub struct HttpsEmulator {
    addr: SocketAddr,
    emulator: Arc<Mutex<Emulator>>,
    handshakes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock(emu: &Mutex<Emulator>) -> MutexGuard<'_, Emulator> {
    emu.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl HttpsEmulator {
    /// Starts an emulator with `config` behind TLS (`tls`) on 127.0.0.1 at
    /// an ephemeral port.
    pub fn start(config: EmulatorConfig, tls: Arc<ServerConfig>) -> io::Result<HttpsEmulator> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let emulator = Arc::new(Mutex::new(Emulator::new(config)));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = (
            Arc::clone(&emulator),
            Arc::clone(&handshakes),
            Arc::clone(&stop),
        );
        let thread = thread::Builder::new()
            .name(format!("https emulator {addr}"))
            .spawn(move || accept_loop(listener, tls, shared.0, shared.1, shared.2))?;
        Ok(HttpsEmulator {
            addr,
            emulator,
            handshakes,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://<host>:PORT/<provider>`: the provider's base URL, `host`
    /// being a name the certificate is valid for.
    pub fn base_url(&self, host: &str, provider: Provider) -> String {
        format!("https://{host}:{}{}", self.addr.port(), provider.prefix())
    }

    /// Runs `f` on the emulator under its lock (its log, its configuration).
    pub fn with<R>(&self, f: impl FnOnce(&mut Emulator) -> R) -> R {
        f(&mut lock(&self.emulator))
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for HttpsEmulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    emu: Arc<Mutex<Emulator>>,
    handshakes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let origin = Instant::now();
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((tcp, _)) => {
                let (tls, emu) = (Arc::clone(&tls), Arc::clone(&emu));
                let (handshakes, stop) = (Arc::clone(&handshakes), Arc::clone(&stop));
                connections.retain(|c| !c.is_finished());
                connections.push(thread::spawn(move || {
                    // An I/O or TLS error (a client that does not trust the
                    // certificate) only ends this connection.
                    let _ = connection(tcp, tls, &emu, &handshakes, &stop, origin);
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

/// One TLS connection: the handshake, then requests answered in order.
fn connection(
    tcp: TcpStream,
    tls: Arc<ServerConfig>,
    emu: &Mutex<Emulator>,
    handshakes: &AtomicUsize,
    stop: &AtomicBool,
    origin: Instant,
) -> io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    // Short reads, so that the stop flag is seen; rustls keeps a partial
    // record across a timed-out read.
    tcp.set_read_timeout(Some(POLL))?;
    let conn = ServerConnection::new(tls).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    let limits = Limits {
        max_body: lock(emu).config().max_body_bytes,
        ..Limits::default()
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut counted = false;
    let mut idle_since = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if !counted && !stream.conn.is_handshaking() {
            counted = true;
            handshakes.fetch_add(1, Ordering::SeqCst);
        }
        let now_ms = origin.elapsed().as_millis() as u64;
        let (response, last) = match parse_request(&buf, limits) {
            Ok(Parsed::Complete(request, used)) => {
                buf.drain(..used);
                let response = lock(emu).handle(now_ms, &request);
                let t = &response.transport;
                let last = t.close || t.truncate_body_after.is_some();
                (Some(response), last)
            }
            Ok(Parsed::Incomplete { .. }) => (None, false),
            Err(err) => (Some(lock(emu).reject(now_ms, &err)), true),
        };
        if let Some(response) = response {
            let wire = response.serialize();
            stream.write_all(wire.to_send(&response.transport))?;
            stream.flush()?;
            if last {
                stream.conn.send_close_notify();
                let _ = stream.flush();
                let _ = stream.sock.shutdown(Shutdown::Write);
                return Ok(());
            }
            idle_since = Instant::now();
            continue;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                idle_since = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if idle_since.elapsed() > IDLE {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
