//! The async drivers (feature `embedded-io-async`): the same state machines
//! as the blocking ones, over [`embedded_io_async`] streams.

use embedded_io_async::{Read, Write};

use super::machine::{BodyDrain, Did, Machine, ReadApi, SendApi, Step, TokenExchange};
use super::{api_permit, check_buf, finish, ApiOutcome, ApiPermit, ApiResponse, Exchanged};
use crate::error::Result;
use crate::session::Session;
use crate::url::Url;

/// [`run`](super::run) over an async stream.
async fn run<T>(io: &mut T, machine: &mut dyn Machine, buf: &mut [u8])
where
    T: Read + Write + ?Sized,
{
    drive!(io, machine, buf, await)
}

/// [`run_read`](super::run_read) over an async stream.
async fn run_read<T>(io: &mut T, machine: &mut dyn Machine, buf: &mut [u8])
where
    T: Read + ?Sized,
{
    drive!(read_only: io, machine, buf, await)
}

/// [`exchange_token`](super::exchange_token) over an async stream.
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-io-async")))]
pub async fn exchange_token_async<T, const N: usize>(
    session: &mut Session<N>,
    now: u64,
    io: &mut T,
    buf: &mut [u8],
) -> Result<Exchanged>
where
    T: Read + Write + ?Sized,
{
    let mut m = TokenExchange::new(session, now);
    run(io, &mut m, buf).await;
    m.finish()
}

/// [`api_get`](super::api_get) over an async stream.
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-io-async")))]
pub async fn api_get_async<T, const N: usize>(
    session: &mut Session<N>,
    now: u64,
    io: &mut T,
    url: Url<'_>,
    buf: &mut [u8],
) -> Result<ApiOutcome>
where
    T: Read + Write + ?Sized,
{
    check_buf(buf)?;
    match api_permit(session, now) {
        Ok(permit) => api_get_permitted_async(session, permit, now, io, url, buf).await,
        Err(not) => Ok(not.into()),
    }
}

/// [`api_get_permitted`](super::api_get_permitted) over an async stream.
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-io-async")))]
pub async fn api_get_permitted_async<T, const N: usize>(
    session: &mut Session<N>,
    permit: ApiPermit,
    now: u64,
    io: &mut T,
    url: Url<'_>,
    buf: &mut [u8],
) -> Result<ApiOutcome>
where
    T: Read + Write + ?Sized,
{
    let _ = permit;
    check_buf(buf)?;
    let token = session.token_id();
    let Some(cred) = session.credential() else {
        return Ok(ApiOutcome::NoCredential);
    };
    let mut send = SendApi::new(cred, url);
    run(io, &mut send, buf).await;
    finish(send.out)?;
    let mut read = ReadApi::new(session, now, token);
    run(io, &mut read, buf).await;
    finish(read.out).map(ApiOutcome::Response)
}

/// [`read_body`](super::read_body) over an async stream.
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-io-async")))]
pub async fn read_body_async<T>(
    io: &mut T,
    response: &ApiResponse,
    buf: &mut [u8],
    sink: impl FnMut(&[u8]),
) -> Result<u64>
where
    T: Read + ?Sized,
{
    let mut m = BodyDrain::new(response.head.framing(), response.leftover.clone(), sink);
    run_read(io, &mut m, buf).await;
    finish(m.out)
}
