//! The session cell: what a `fieldauth_session` holds (the core session over
//! its token storage, the token response being read, and the state of a
//! transport exchange between calls), shared by `session.rs` and
//! `exchange.rs`.

use fieldauth_core::session::{Arena, SessionIn, TokenBody, DEFAULT_CAPACITY};

use crate::ptr::{fits, Cell};
use crate::types::*;

/// Token storage the session addresses by pointer: the inline area after
/// the cell in a fieldauth_session, or the caller's storage
/// (fieldauth_session_init_with_storage).
pub(crate) struct Storage {
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

impl AsRef<[u8]> for Storage {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` is non-NULL and valid for `len` bytes for as long as
        // the session is initialized (init checked it; the caller keeps it,
        // per the header's ownership rules), disjoint from the cell itself
        // and from the other arguments of the call (claimed by `with_mut`).
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl AsMut<[u8]> for Storage {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`; the session is used by one thread at a time.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Arena for Storage {}

/// The session in caller storage (the first FIELDAUTH_SESSION_HEADER_SIZE
/// bytes of a fieldauth_session; its token storage follows, or is the
/// caller's).
#[repr(C)]
pub(crate) struct SessionCell {
    pub(crate) magic: u64,
    /// Where the token storage is (also inside `inner`, which does not
    /// expose it): claimed by every call so no argument overlaps it.
    pub(crate) storage: *mut u8,
    pub(crate) storage_len: usize,
    /// State of a transport exchange in progress (fieldauth_session_exchange).
    pub(crate) xchg: Exchange,
    /// The token response being read (the core keeps it outside the session
    /// so Rust callers can hold it only during an exchange; a C handle bundles
    /// it, so the C API keeps one storage object per session).
    pub(crate) body: TokenBody,
    pub(crate) inner: SessionIn<Storage>,
}

impl Cell for SessionCell {
    const MAGIC: u64 = 0x4641_5345_5353_0002; // "FASESS" v2
    const STORAGE: usize = FIELDAUTH_SESSION_HEADER_SIZE;
}

const _: () = assert!(fits::<SessionCell, fieldauth_session_header>());
const _: () = assert!(core::mem::size_of::<fieldauth_session>() == FIELDAUTH_SESSION_SIZE);
const _: () =
    assert!(core::mem::size_of::<fieldauth_session_header>() == FIELDAUTH_SESSION_HEADER_SIZE);
const _: () = assert!(FIELDAUTH_SESSION_INLINE_STORAGE == DEFAULT_CAPACITY);

/// Where an exchange stands between calls (kept in the session cell; its
/// fields are `exchange.rs`'s to read and write).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exchange {
    pub(crate) stage: Stage,
    /// Request bytes sent so far.
    pub(crate) sent: usize,
    /// The request's first byte. The core writes the window at offset 0 only
    /// when it starts a request (that marks it in flight); a window that
    /// starts at 0 is this byte followed by the window at offset 1.
    pub(crate) first: u8,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Idle,
    Sending,
    Head,
    Body,
}

impl Exchange {
    pub(crate) const IDLE: Exchange = Exchange {
        stage: Stage::Idle,
        sent: 0,
        first: 0,
    };
}
