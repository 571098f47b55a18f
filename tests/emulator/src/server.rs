//! The blocking loopback server: [`serve`] runs an [`Emulator`] on a
//! `TcpListener` (one thread per connection, keep-alive, pipelining), and
//! [`spawn`] starts one in the background on an ephemeral port.
//!
//! `now_ms` is the time since [`serve`] started, from `Instant`. The server
//! obeys each response's [`Transport`](crate::Transport) directives: chunked
//! framing is already in the serialized bytes; the server writes them in
//! pieces with delays, cuts them short, and closes the connection.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http::{parse_request, Limits, Parsed, Response};
use crate::{Emulator, EmulatorConfig, LogEntry, Provider, Stats};

/// How long a keep-alive connection may sit idle before the server closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(10);

fn lock(emu: &Mutex<Emulator>) -> MutexGuard<'_, Emulator> {
    emu.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves `emu` on `listener` until `stop` is set, then waits for open
/// connections to finish (they notice `stop` within a few milliseconds).
pub fn serve(
    listener: TcpListener,
    emu: Arc<Mutex<Emulator>>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let origin = Instant::now();
    listener.set_nonblocking(true)?;
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (emu, stop) = (Arc::clone(&emu), Arc::clone(&stop));
                connections.retain(|c| !c.is_finished());
                connections.push(thread::spawn(move || {
                    // An I/O error only ends this connection.
                    let _ = connection(stream, &emu, &stop, origin);
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of file descriptors and the like: wait and go on.
            Err(_) => thread::sleep(POLL * 5),
        }
    }
    for c in connections {
        let _ = c.join();
    }
    Ok(())
}

fn now_ms(origin: Instant) -> u64 {
    origin.elapsed().as_millis() as u64
}

/// Reads requests from one connection and answers them in order.
fn connection(
    mut stream: TcpStream,
    emu: &Mutex<Emulator>,
    stop: &AtomicBool,
    origin: Instant,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    let limits = Limits {
        max_body: lock(emu).config().max_body_bytes,
        ..Limits::default()
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut idle_since = Instant::now();
    let mut continue_sent = false;
    let mut chunk = [0u8; 8192];
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        match parse_request(&buf, limits) {
            Ok(Parsed::Complete(request, used)) => {
                buf.drain(..used);
                continue_sent = false;
                let response = lock(emu).handle(now_ms(origin), &request);
                write_response(&mut stream, &response, stop)?;
                if response.transport.close || response.transport.truncate_body_after.is_some() {
                    close(stream);
                    return Ok(());
                }
                idle_since = Instant::now();
                continue;
            }
            Ok(Parsed::Incomplete { expects_continue }) => {
                if expects_continue && !continue_sent {
                    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                    continue_sent = true;
                }
            }
            Err(err) => {
                let response = lock(emu).reject(now_ms(origin), &err);
                write_response(&mut stream, &response, stop)?;
                close(stream);
                return Ok(());
            }
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
                if idle_since.elapsed() > IDLE_TIMEOUT {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes a response as its [`Transport`](crate::Transport) says: in pieces,
/// with delays, possibly cut short.
fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    stop: &AtomicBool,
) -> io::Result<()> {
    let wire = response.serialize();
    let bytes = wire.to_send(&response.transport);
    let piece = response.transport.piece_bytes.unwrap_or(bytes.len()).max(1);
    for (i, part) in bytes.chunks(piece).enumerate() {
        if i > 0 && response.transport.piece_delay_ms > 0 {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(response.transport.piece_delay_ms));
        }
        stream.write_all(part)?;
        stream.flush()?;
    }
    Ok(())
}

/// Half-closes, then drains what the client still sends for a moment, so
/// the close is a FIN the client sees after the data, not a reset.
fn close(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 1024];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}

/// An emulator serving in the background; stops when dropped.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    emulator: Arc<Mutex<Emulator>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// Starts an emulator with `config` on `127.0.0.1` at an ephemeral port.
pub fn spawn(config: EmulatorConfig) -> io::Result<RunningEmulator> {
    spawn_on("127.0.0.1:0", config)
}

/// Starts an emulator with `config` on `addr` (e.g. `127.0.0.1:8080`).
pub fn spawn_on(addr: impl ToSocketAddrs, config: EmulatorConfig) -> io::Result<RunningEmulator> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let emulator = Arc::new(Mutex::new(Emulator::new(config)));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (emulator, stop) = (Arc::clone(&emulator), Arc::clone(&stop));
        thread::Builder::new()
            .name(format!("fieldauth-emulator {addr}"))
            .spawn(move || serve(listener, emulator, stop))?
    };
    Ok(RunningEmulator {
        addr,
        emulator,
        stop,
        thread: Some(thread),
    })
}

impl RunningEmulator {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/<provider>`: the provider's base URL, to which
    /// its documented paths are appended.
    pub fn base_url(&self, provider: Provider) -> String {
        format!("http://{}{}", self.addr, provider.prefix())
    }

    /// The full URL of `path` at `provider`.
    pub fn url(&self, provider: Provider, path: &str) -> String {
        format!("{}{}", self.base_url(provider), path)
    }

    /// The shared emulator (to change its configuration or read its state).
    pub fn emulator(&self) -> Arc<Mutex<Emulator>> {
        Arc::clone(&self.emulator)
    }

    /// Runs `f` on the emulator under its lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut Emulator) -> R) -> R {
        f(&mut lock(&self.emulator))
    }

    /// A copy of the request log.
    pub fn log(&self) -> Vec<LogEntry> {
        lock(&self.emulator).log().to_vec()
    }

    /// The counters (see [`Emulator::stats`]); `GET /_stats` from another
    /// process reads the same.
    pub fn stats(&self) -> Stats {
        lock(&self.emulator).stats()
    }

    /// Zeroes the counters and returns them as they were (see
    /// [`Emulator::reset_stats`]; `POST /_stats/reset` over HTTP).
    pub fn reset_stats(&self) -> Stats {
        lock(&self.emulator).reset_stats()
    }

    /// Stops serving and waits for the server thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("emulator thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
