//! One credential, many workers: the contract of a shared store.
//!
//! Provider limits are per credential, not per process: eight workers that
//! each hold their own [`Session`](crate::session::Session) fetch eight
//! tokens and send eight times the API budget, and with a rotating refresh
//! token two workers that refresh at once lose the grant (the loser's
//! refresh token was rotated out, the provider answers `invalid_grant`). A
//! [`Store`] is the one place the workers of a fleet share:
//!
//! - the **state**: the bytes of the newest session snapshot, opaque to the
//!   store, with a **generation** number that grows by one with every save;
//! - a **lease**: which worker may fetch or refresh the token right now, with
//!   a time-to-live, so a worker killed mid-refresh blocks the others for at
//!   most that long;
//! - the **rate budgets**: one GCRA cell per named budget ("token", "api"),
//!   charged by every worker before each request, so the fleet as a whole
//!   stays inside the provider's limit in every sliding window.
//!
//! This module is the contract only (`no_std`, no allocation, always
//! compiled). [`FileStore`] (feature `std`) implements it over one file for
//! the workers of one host; other stores (Redis, a C application's callbacks)
//! implement the same rules.
//!
//! # How a worker uses a store
//!
//! 1. **Load, adopt if newer.** [`Store::load`] the newest state; if its
//!    generation is newer than the one this worker last saw, adopt it into the
//!    session (the token another worker fetched) and remember the generation.
//! 2. **Fetch or refresh under the lease.** When the session wants a token
//!    request, take the [`lease`](Store::lease) first. [`Lease::Busy`]: a peer
//!    is at it; keep serving the still-valid token, or wait until the lease's
//!    end and load again. [`Lease::Held`]: load once more (a peer may have
//!    saved while this worker waited for the lock), then send the request,
//!    [`save`](Store::save) the new state over the generation just loaded and
//!    [`release`](Store::release). [`Saved::Stale`] means someone else saved
//!    meanwhile: load and adopt theirs, do not overwrite it.
//! 3. **Charge before each request.** [`Store::charge`] the budget of the
//!    request ("token" before a token request, "api" before an API request);
//!    [`Charge::WaitUntil`] says when to ask again, and nothing was charged.
//! 4. **When the store fails** (an `Err` from any operation: the file
//!    unwritable or corrupt, Redis down), nothing is lost: keep serving the
//!    valid token the session holds, fall back to the session's own budgets
//!    (with a share of the limit for a fleet of the configured size), and try
//!    the store again later. A store error never means the credential is bad.
//!
//! [`Worker`] is these rules as code (no_std, no allocation, at most 64 bytes): the C
//! ABI's `fieldauth_worker` runs it over a C application's store callbacks,
//! and a Rust worker over any [`Store`]. The steps by hand, one worker's
//! round with the file store (feature `std`):
//!
#![cfg_attr(feature = "std", doc = "```")]
#![cfg_attr(not(feature = "std"), doc = "```ignore")]
//! use fieldauth::preset;
//! use fieldauth::shared::{Charge, FileStore, Lease, Saved, Store};
//!
//! # fn main() -> Result<(), fieldauth::shared::FileStoreError> {
//! # let dir = std::env::temp_dir().join(format!("fieldauth-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let mut store = FileStore::open(dir.join("autotask.store"))?;
//! let me: u64 = 0x8f3a_51c2_0d9e_7b14; // random, once per worker
//! let mut image = [0u8; 4096]; // a session snapshot image fits
//!
//! // 1. Adopt what a peer saved, if it is newer than what this worker has.
//! let seen = match store.load(&mut image)? {
//!     Some(loaded) => loaded.generation, // adopt image[..loaded.len] into the session
//!     None => 0,
//! };
//! // 2. The session wants a token: only the lease holder fetches it.
//! if let Lease::Held { .. } = store.lease(me, 30_000)? {
//!     // ... the token request, its response, then the session's snapshot:
//!     let snapshot = b"(the session's snapshot image)";
//!     match store.save(me, seen, snapshot)? {
//!         Saved::Stored { generation } => assert_eq!(generation, seen + 1),
//!         Saved::Stale { .. } | Saved::NotHolder => { /* load and adopt theirs */ }
//!     }
//!     store.release(me)?;
//! }
//! // 3. Before each API request: the preset's API budget (Autotask: 600 a
//! //    minute), charged for the whole fleet.
//! if let Some(api) = preset::AUTOTASK.api_budget {
//!     match store.charge("api", api)? {
//!         Charge::Granted => { /* send it */ }
//!         Charge::WaitUntil { unix_ms } => { /* not before unix_ms */ let _ = unix_ms; }
//!     }
//! }
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(())
//! # }
//! ```
//!
//! # Clocks
//!
//! Every time in this module (lease ends, [`Charge::WaitUntil`]) is the
//! **store's clock**, in Unix milliseconds: the clock all workers on all
//! hosts share (the file store's host clock, the Redis server's `TIME`). It
//! is not a session's monotonic clock; convert with the difference between
//! the two at the moment of the call.
//!
//! # Holders
//!
//! A holder id is a `u64` the worker chooses, at random, once per worker
//! process or thread (a fixed id shared by two workers would let both pass as
//! the lease holder). Ids should not be 0.
//!
#![cfg_attr(not(feature = "std"), doc = "[`FileStore`]: crate#cargo-features")]

use crate::preset::Budget;
use crate::session::Gcra;

#[cfg(feature = "std")]
mod file;
mod worker;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use file::{FileStore, FileStoreError};
pub use worker::{
    BudgetKind, Notice, Turn, Worker, DEFAULT_LEASE_TTL_MS, STORE_RETRY_MS, WAIT_POLL_MS,
};

/// Longest budget name a store must accept, in bytes (`"token"`, `"api"`,
/// `"api:tenant-42"`).
pub const MAX_BUDGET_ID_LEN: usize = 32;

/// What [`Store::load`] copied into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Loaded {
    /// The generation of this state (1 after the first save; never 0).
    pub generation: u64,
    /// How many bytes of the buffer hold it.
    pub len: usize,
}

/// The answer to [`Store::lease`]. Times are the store's clock (Unix ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lease {
    /// The caller holds the lease until `until_ms` (taken, or renewed if it
    /// already held it).
    Held {
        /// When the lease ends by itself.
        until_ms: u64,
    },
    /// Another holder has it until `until_ms`; ask again then at the latest.
    Busy {
        /// When the other holder's lease ends, unless it is renewed or released.
        until_ms: u64,
    },
}

/// The answer to [`Store::save`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Saved {
    /// The state was stored with this generation (the expected one plus one).
    Stored {
        /// The new generation.
        generation: u64,
    },
    /// The caller does not hold a live lease (never took it, released it, or
    /// it expired and perhaps another worker took it): nothing was stored.
    NotHolder,
    /// The caller holds the lease but the stored generation is not the one
    /// it expected: someone saved meanwhile. Nothing was stored; load and
    /// adopt the newer state.
    Stale {
        /// The generation the store holds.
        generation: u64,
    },
}

/// The answer to [`Store::charge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Charge {
    /// One request was charged: send it now.
    Granted,
    /// The budget is spent until `unix_ms` (store clock); nothing was charged.
    WaitUntil {
        /// The earliest time a charge can be granted.
        unix_ms: u64,
    },
}

/// What a caller can learn from any store's error, beyond "the store failed".
pub trait StoreError: core::fmt::Debug + core::fmt::Display {
    /// `Some(n)` when the error is a [`Store::load`] buffer that was too
    /// small: `n` bytes are needed. `None` for every other error.
    fn needed_len(&self) -> Option<usize> {
        None
    }
}

/// A store shared by the workers of a fleet: the newest state, a lease and
/// the rate budgets (see the [module documentation](self) for how a worker
/// uses it).
///
/// # Contract
///
/// Every implementation guarantees:
///
/// - **Atomicity.** Each operation is one atomic step over the whole store,
///   with respect to every other operation by any worker on any host: no
///   operation sees another half done, and none is lost.
/// - **Durability of what was answered.** Once an operation returned `Ok`,
///   its effect is visible to every later operation (of every worker) for as
///   long as the store lives. A store that loses its content (a Redis restart
///   without persistence) comes back *empty* (generation 0, no lease, full
///   budgets), never with an older state.
/// - **Errors.** An `Err` is a store failure (module documentation, step
///   4). A store whose connection broke mid-operation may have applied the
///   operation all the same (a lease taken, a save stored, a charge counted),
///   so a worker relies only on what later successful operations answer.
///   Never is a state stored or returned half written, and never does
///   `load` return bytes that did not come from one `save`.
/// - **No secret in errors.** The state holds tokens: it never appears in
///   an error, in its `Display` or `Debug` text, or in a log line.
/// - **One clock.** Every time is the store's clock in Unix ms, read once per
///   operation, inside its atomic step.
pub trait Store {
    /// Why an operation failed (I/O, a corrupt store, a connection lost).
    type Error: StoreError;

    /// Copies the newest state into `buf`.
    ///
    /// `Ok(None)`: the store is empty (nothing was ever saved, or it lost its
    /// content). `Ok(Some(loaded))`: `buf[..loaded.len]` is the state of
    /// generation `loaded.generation` (at least 1). A `buf` shorter than the
    /// state is an error whose [`needed_len`](StoreError::needed_len) is the
    /// state's length; the state is never truncated.
    fn load(&mut self, buf: &mut [u8]) -> Result<Option<Loaded>, Self::Error>;

    /// Takes the lease for `holder` for `ttl_ms`, or renews it if `holder`
    /// holds it: [`Lease::Held`] with its new end, store time now + `ttl_ms`.
    ///
    /// While another holder's lease is live, [`Lease::Busy`] with its end,
    /// and nothing changes. A lease whose end has passed is nobody's: the
    /// next caller takes it over. So a holder that died blocks the others for
    /// at most its `ttl_ms`; choose it longer than one token exchange with its
    /// retries (a few seconds to a minute), and renew before it ends if an
    /// exchange takes longer.
    fn lease(&mut self, holder: u64, ttl_ms: u32) -> Result<Lease, Self::Error>;

    /// Compare-and-set of the state: stores `state` as generation
    /// `expected_generation + 1` only if `holder` holds a live lease
    /// ([`Saved::NotHolder`] otherwise, checked first) and the stored
    /// generation is `expected_generation` (0: the store is empty;
    /// [`Saved::Stale`] with the stored generation otherwise).
    ///
    /// The lease stays held (release it when done). Nothing else changes: the
    /// budgets are not touched.
    fn save(
        &mut self,
        holder: u64,
        expected_generation: u64,
        state: &[u8],
    ) -> Result<Saved, Self::Error>;

    /// Ends the lease if `holder` holds it, so the next worker need not wait
    /// for its end; otherwise (not held, held by another, expired) does
    /// nothing. Not an error either way.
    fn release(&mut self, holder: u64) -> Result<(), Self::Error>;

    /// Charges one request to the fleet-wide budget named `budget_id` (at
    /// most [`MAX_BUDGET_ID_LEN`] bytes, not empty): [`Charge::Granted`], or
    /// [`Charge::WaitUntil`] with the earliest store time it would be granted,
    /// in which case nothing was charged.
    ///
    /// The same GCRA as the session's own budgets ([`Gcra`]): a burst of
    /// `budget.burst` at once, then evenly paced, never more than
    /// `budget.requests` grants in any sliding window of `budget.window_s`
    /// seconds of store time. Every worker passes the same `budget` for one
    /// `budget_id` (the preset's). A budget unused for a window is full
    /// again; a store that lost its content starts with full budgets.
    fn charge(&mut self, budget_id: &str, budget: Budget) -> Result<Charge, Self::Error>;
}

/// One GCRA step, for implementations of [`Store::charge`]: charges the
/// budget whose stored cell is `tat` (its theoretical arrival time, 0 for a
/// budget never charged) at store time `now`. Returns the answer and the
/// cell's new value (`tat` unchanged when the answer is to wait).
pub fn charge_cell(tat: u64, now: u64, budget: Budget) -> (Charge, u64) {
    let mut gcra = Gcra::with_tat(tat);
    let at = gcra.ready_at(now, budget);
    if at > now {
        return (Charge::WaitUntil { unix_ms: at }, tat);
    }
    gcra.take(now, budget);
    (Charge::Granted, gcra.tat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_cell_follows_the_governor() {
        let b = Budget {
            requests: 3,
            window_s: 3,
            burst: 2,
        };
        let now = 1_700_000_000_000;
        let (c, tat) = charge_cell(0, now, b);
        assert_eq!(c, Charge::Granted);
        let (c, tat) = charge_cell(tat, now, b);
        assert_eq!(c, Charge::Granted);
        let (c, same) = charge_cell(tat, now, b);
        assert_eq!(same, tat, "a refused charge changes nothing");
        let Charge::WaitUntil { unix_ms } = c else {
            panic!("{c:?}")
        };
        assert!(unix_ms > now);
        assert_eq!(charge_cell(tat, unix_ms, b).0, Charge::Granted);
    }
}
