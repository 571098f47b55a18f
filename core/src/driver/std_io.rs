//! Feature `std`: [`FromStd`], an adapter from `std::io` streams to the
//! embedded-io traits the drivers use. (embedded-io 0.7's own `std` feature
//! only implements its `Error` trait for `std::io::Error`; its adapters live
//! in another crate.) This is the only place the core uses `std`.

extern crate std;

use std::io;

/// Wraps a `std::io::Read + std::io::Write` stream (e.g. a
/// `std::net::TcpStream`, or a TLS stream over one) as an
/// [`embedded_io::Read`] + [`embedded_io::Write`] stream for the drivers.
/// Errors are the `std::io::Error`s; `Interrupted` is retried.
///
/// ```no_run
/// use std::net::TcpStream;
/// use fieldauth::driver::{self, FromStd};
/// # use fieldauth::session::Session;
/// # fn f(session: &mut Session, now: u64) -> Result<(), Box<dyn std::error::Error>> {
/// let mut stream = FromStd::new(TcpStream::connect("127.0.0.1:8080")?);
/// let mut buf = [0u8; 1024];
/// let exchanged = driver::exchange_token(session, now, &mut stream, &mut buf)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub struct FromStd<T>(T);

impl<T> FromStd<T> {
    /// Wraps `inner`.
    pub const fn new(inner: T) -> Self {
        FromStd(inner)
    }

    /// The wrapped stream.
    pub fn inner(&self) -> &T {
        &self.0
    }

    /// The wrapped stream, mutably (to set timeouts, shut it down...).
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.0
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Calls `op` again while it fails with `Interrupted`.
fn retry<R>(mut op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl<T> embedded_io::ErrorType for FromStd<T> {
    type Error = io::Error;
}

impl<T: io::Read> embedded_io::Read for FromStd<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| self.0.read(buf))
    }
}

impl<T: io::Write> embedded_io::Write for FromStd<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        retry(|| self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        retry(|| self.0.flush())
    }
}
