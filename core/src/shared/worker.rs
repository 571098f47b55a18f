//! [`Worker`]: one worker's side of a fleet that shares a credential through
//! a [`Store`]: the rules of the [module documentation](super) as code, so
//! that Rust, C (through the C ABI) and every store follow the same ones.

use zeroize::Zeroize;

use super::{Charge, Lease, Saved, Store, StoreError};
use crate::error::Error;
use crate::preset::Budget;
use crate::session::{Adopted, Arena, Gcra, SessionIn};

/// Default lease time-to-live: longer than one token exchange with its
/// retries takes (the session gives up on a response after 20 s).
pub const DEFAULT_LEASE_TTL_MS: u32 = 45_000;

/// How long a worker whose store failed works on its own before it asks the
/// store again.
pub const STORE_RETRY_MS: u64 = 1_000;

/// How often a worker that waits for the lease holder's new token looks in
/// the store.
pub const WAIT_POLL_MS: u64 = 100;

/// Which fleet-wide budget a request is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BudgetKind {
    /// The token endpoint (the session's [`token_budget`](SessionIn::token_budget)).
    Token,
    /// API requests (the session's [`api_budget`](SessionIn::api_budget)).
    Api,
}

impl BudgetKind {
    /// The budget's name in the store: `"token"` or `"api"` (the names the
    /// Python workers use too, so a mixed fleet shares one budget).
    pub const fn id(self) -> &'static str {
        match self {
            BudgetKind::Token => "token",
            BudgetKind::Api => "api",
        }
    }
}

/// What a worker does with the token request its session wants
/// ([`Worker::token_turn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Turn {
    /// This worker holds the lease and its token budget was charged: send
    /// the token request now, then call [`Worker::exchanged`].
    Lead,
    /// The store is not answering: send the token request on this worker's
    /// own (its budget share was charged), then call [`Worker::exchanged`].
    Solo,
    /// Another worker is fetching or refreshing and this session's token is
    /// still valid: keep using it ([`SessionIn::authorize`]).
    Use,
    /// A newer shared state was adopted: poll the session again.
    Poll,
    /// Nothing to do before this time (the session's monotonic clock, ms):
    /// the lease holder's new token is awaited, or a budget is spent.
    WaitUntil(u64),
}

/// Something a worker's caller should log, once per change
/// ([`Worker::take_notice`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Notice {
    /// The store failed: the worker keeps its own token and a share of the
    /// budgets (limit ÷ fleet size) until the store answers again.
    StoreDown,
    /// The store answers again: the worker rejoins the fleet.
    StoreBack,
    /// The store holds a state this session cannot adopt (another
    /// configuration, arena size or format): are all workers configured
    /// alike? The session keeps its own state.
    ForeignState,
}

/// One worker's side of a fleet sharing a credential through a [`Store`]:
/// its lease holder id, whether the store is answering, and the budget
/// shares it falls back to when it is not. At most 64 bytes; no secret (tokens pass
/// through the caller's buffer and are wiped there after use).
///
/// The worker's loop, with the session's own steps in between:
///
/// 1. [`poll`](SessionIn::poll) the session. When it wants a token request,
///    ask [`token_turn`](Worker::token_turn): [`Turn::Lead`] or
///    [`Turn::Solo`]: send it, feed the response, then
///    [`exchanged`](Worker::exchanged) (saves the new state for the fleet,
///    releases the lease; after a rejection, adopts a peer's newer state);
///    [`Turn::Poll`]: poll again; [`Turn::WaitUntil`]: wait;
///    [`Turn::Use`]: go on with the token the session has.
/// 2. With a usable token, right before the API request goes out,
///    [`charge`](Worker::charge) the [`BudgetKind::Api`] budget; `Some(t)`:
///    wait until `t` and start over (charged earlier, before a wait for a
///    token, the request would reach the server in a later window than the
///    fleet counted it in).
/// 3. [`authorize`](SessionIn::authorize) and send the API request.
///
/// Every store operation's failure is absorbed here (the worker keeps
/// serving its valid token, falls back to its share of the budgets, tries
/// the store again after [`STORE_RETRY_MS`]); the methods return `Err` only
/// for the caller's own errors (a buffer too small for the state).
///
/// ```
/// use fieldauth::preset;
/// use fieldauth::session::{Action, Config, Session};
/// use fieldauth::shared::{Charge, Lease, Loaded, Saved, Store, StoreError, Turn, Worker};
/// # #[derive(Debug)] struct Down;
/// # impl core::fmt::Display for Down { fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result { f.write_str("down") } }
/// # impl StoreError for Down {}
/// # struct Nowhere;
/// # impl Store for Nowhere {
/// #     type Error = Down;
/// #     fn load(&mut self, _: &mut [u8]) -> Result<Option<Loaded>, Down> { Err(Down) }
/// #     fn lease(&mut self, _: u64, _: u32) -> Result<Lease, Down> { Err(Down) }
/// #     fn save(&mut self, _: u64, _: u64, _: &[u8]) -> Result<Saved, Down> { Err(Down) }
/// #     fn release(&mut self, _: u64) -> Result<(), Down> { Err(Down) }
/// #     fn charge(&mut self, _: &str, _: preset::Budget) -> Result<Charge, Down> { Err(Down) }
/// # }
/// # let mut store = Nowhere;
/// let config = Config {
///     base_url: "https://webservices.autotask.net",
///     client_id: "dispatch",
///     client_secret: "s3cret",
///     ..Config::default()
/// };
/// let mut session: Session = Session::new(&preset::AUTOTASK, &config, 1)?;
/// let mut worker = Worker::new(0x8f3a_51c2_0d9e_7b14, 8, 45_000);
/// let mut image = [0u8; 4096]; // the snapshot image passes through here
/// let (now, unix_ms) = (1_000, 1_700_000_000_000);
/// session.set_wall_clock(now, unix_ms);
/// if let Action::SendTokenRequest(_) = session.poll(now) {
///     match worker.token_turn(&mut store, &mut session, now, unix_ms, &mut image)? {
///         Turn::Lead | Turn::Solo => { /* the token exchange, then worker.exchanged(..) */ }
///         Turn::Use | Turn::Poll | Turn::WaitUntil(_) => {}
///     }
/// }
/// // This store never answers: the worker went solo and says so once.
/// assert!(worker.store_down());
/// # Ok::<(), fieldauth::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    holder: u64,
    /// Jitter for budget waits (xorshift64, seeded from the holder id).
    rng: u64,
    retry_at: u64,
    local_token: Gcra,
    local_api: Gcra,
    lease_ttl_ms: u32,
    fleet_size: u32,
    leading: bool,
    /// A token this worker fetched as the lead is not in the store yet (the
    /// store failed at the save): saved at the next store contact, before
    /// anything else, since a peer that refreshes with the refresh token it
    /// replaced would replay it.
    unsaved: bool,
    down: bool,
    solo_refresh: bool,
    /// The fleet budget's refusals since this worker's last grant: each one
    /// halves its jitter, so that a worker that keeps losing the draw for a
    /// slot asks again before the others (see `jitter`).
    refused: u8,
    notice: Option<Notice>,
}

impl Worker {
    /// A worker with lease holder id `holder` (random, chosen once per worker
    /// process or thread, not 0: two workers with one id would both pass as
    /// the lease holder), one of `fleet_size` workers (its budget share when
    /// the store fails; 0 counts as 1), taking the lease for `lease_ttl_ms`
    /// ([`DEFAULT_LEASE_TTL_MS`] is a good value).
    pub const fn new(holder: u64, fleet_size: u32, lease_ttl_ms: u32) -> Self {
        Worker {
            holder,
            rng: holder | 1,
            retry_at: 0,
            local_token: Gcra::new(),
            local_api: Gcra::new(),
            lease_ttl_ms,
            fleet_size: if fleet_size == 0 { 1 } else { fleet_size },
            leading: false,
            unsaved: false,
            down: false,
            solo_refresh: false,
            refused: 0,
            notice: None,
        }
    }

    /// Whether a worker may refresh on its own while the store is down
    /// (default: no). A rotating refresh token spent by two workers at once
    /// loses the grant, so by default a worker without the store keeps using
    /// its valid token and waits for the store instead; say yes only for a
    /// provider whose refresh tokens do not rotate.
    pub const fn with_solo_refresh(mut self, allowed: bool) -> Self {
        self.solo_refresh = allowed;
        self
    }

    /// The lease holder id.
    pub const fn holder(&self) -> u64 {
        self.holder
    }

    /// Whether the store failed last time it was asked (the worker is on its
    /// own until it answers again).
    pub const fn store_down(&self) -> bool {
        self.down
    }

    /// The last change worth a log line, once: the store went down or came
    /// back, or holds a state this session cannot adopt.
    pub fn take_notice(&mut self) -> Option<Notice> {
        self.notice.take()
    }

    /// Whether the store is resting after a failure at `now`.
    fn resting(&self, now: u64) -> bool {
        self.down && now < self.retry_at
    }

    /// Records what the store answered; `None` if it failed.
    fn answered<T, E>(&mut self, now: u64, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => {
                if self.down {
                    self.down = false;
                    self.notice = Some(Notice::StoreBack);
                }
                Some(v)
            }
            Err(_) => {
                if !self.down {
                    self.notice = Some(Notice::StoreDown);
                }
                self.down = true;
                self.retry_at = now.saturating_add(STORE_RETRY_MS);
                None
            }
        }
    }

    /// Loads the newest shared state into `buf` and adopts it into `session`
    /// if it is newer than the one the session holds
    /// ([`SessionIn::adopt`]). `None`: the store is empty, failed or
    /// resting, the session's own token request is in flight, or the state
    /// is foreign ([`Notice::ForeignState`]). `buf` is wiped after use.
    ///
    /// Errors: [`Error::BufferTooSmall`] when `buf` is shorter than the
    /// stored state (at least [`SessionIn::snapshot_len`] bytes do).
    pub fn sync<S: Store, A: Arena>(
        &mut self,
        store: &mut S,
        session: &mut SessionIn<A>,
        now: u64,
        unix_ms: u64,
        buf: &mut [u8],
    ) -> Result<Option<Adopted>, Error> {
        if self.resting(now) {
            return Ok(None);
        }
        self.flush(store, session, now, unix_ms, buf)?;
        let loaded = match store.load(buf) {
            Err(e) => {
                if let Some(needed) = e.needed_len() {
                    return Err(Error::buffer_too_small(needed));
                }
                self.answered::<(), _>(now, Err(e));
                return Ok(None);
            }
            Ok(loaded) => self.answered::<_, ()>(now, Ok(loaded)).flatten(),
        };
        let Some(loaded) = loaded else {
            return Ok(None);
        };
        if loaded.generation < session.shared_generation() {
            // The store lost its content (restarted empty, file removed):
            // count from its numbers again.
            session.set_shared_generation(0);
        }
        let adopted = match buf.get(..loaded.len) {
            Some(image) => match session.adopt(now, unix_ms, image, loaded.generation) {
                Ok(adopted) => Some(adopted),
                Err(Error::WrongState) => None,
                Err(_) => {
                    self.notice = Some(Notice::ForeignState);
                    None
                }
            },
            // A store that claims more than it copied breaks its contract.
            None => {
                self.answered::<(), _>(now, Err(()));
                None
            }
        };
        let used = loaded.len.min(buf.len());
        if let Some(image) = buf.get_mut(..used) {
            image.zeroize();
        }
        Ok(adopted)
    }

    /// What to do with the token request `session` wants
    /// ([`Action::SendTokenRequest`](crate::session::Action::SendTokenRequest)):
    ///
    /// - a peer's newer state is adopted first ([`Turn::Poll`]);
    /// - the lease taken: [`Turn::Lead`], after loading once more (a peer
    ///   may have saved meanwhile) and charging the fleet's token budget
    ///   ([`Turn::WaitUntil`] if it is spent: the lease is released);
    /// - the lease busy: [`Turn::Use`] while the session's token is valid,
    ///   else [`Turn::WaitUntil`] the next look into the store
    ///   ([`WAIT_POLL_MS`]; a holder that died is replaced when its lease
    ///   ends);
    /// - the store down: [`Turn::Solo`] with this worker's budget share,
    ///   except for a refreshable session without
    ///   [`with_solo_refresh`](Worker::with_solo_refresh), which keeps using
    ///   its valid token ([`Turn::Use`]) or waits for the store.
    ///
    /// After [`Turn::Lead`] or [`Turn::Solo`], call
    /// [`exchanged`](Worker::exchanged) once the exchange is over, whatever
    /// its outcome. `buf` as for [`sync`](Worker::sync).
    pub fn token_turn<S: Store, A: Arena>(
        &mut self,
        store: &mut S,
        session: &mut SessionIn<A>,
        now: u64,
        unix_ms: u64,
        buf: &mut [u8],
    ) -> Result<Turn, Error> {
        if self.sync(store, session, now, unix_ms, buf)? == Some(Adopted::Newer) {
            return Ok(Turn::Poll);
        }
        // The session's view at `now` (status() reports the last time it
        // was given).
        let _ = session.poll(now);
        let status = session.status();
        if !self.resting(now) {
            let lease = store.lease(self.holder, self.lease_ttl_ms);
            match self.answered(now, lease) {
                Some(Lease::Held { .. }) => {
                    self.leading = true;
                    match self.sync(store, session, now, unix_ms, buf) {
                        Ok(Some(Adopted::Newer)) => {
                            self.release(store, now);
                            return Ok(Turn::Poll);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            self.release(store, now);
                            return Err(e);
                        }
                    }
                    return Ok(self.charge_token(store, session, now, unix_ms, Turn::Lead));
                }
                Some(Lease::Busy { until_ms }) => {
                    if status.usable {
                        return Ok(Turn::Use);
                    }
                    let left = until_ms.saturating_sub(unix_ms).clamp(1, WAIT_POLL_MS);
                    return Ok(Turn::WaitUntil(now.saturating_add(left)));
                }
                None => {}
            }
        }
        if status.refreshable && !self.solo_refresh {
            if status.usable {
                return Ok(Turn::Use);
            }
            return Ok(Turn::WaitUntil(self.retry_at.max(now.saturating_add(1))));
        }
        Ok(self.charge_token(store, session, now, unix_ms, Turn::Solo))
    }

    /// Charges the token budget for a lead or solo turn; releases the lease
    /// if the budget says wait.
    fn charge_token<S: Store, A: Arena>(
        &mut self,
        store: &mut S,
        session: &SessionIn<A>,
        now: u64,
        unix_ms: u64,
        turn: Turn,
    ) -> Turn {
        match self.charge_budget(
            store,
            BudgetKind::Token,
            session.token_budget(),
            now,
            unix_ms,
        ) {
            None => turn,
            Some(at) => {
                if self.leading {
                    self.release(store, now);
                }
                Turn::WaitUntil(at)
            }
        }
    }

    /// After the token exchange of a [`Turn::Lead`] or [`Turn::Solo`] is
    /// over: `issued` is whether it ended in a new token
    /// ([`Event::TokenIssued`](crate::session::Event::TokenIssued)).
    ///
    /// A lead worker's new token is saved for the fleet (compare-and-set over
    /// the generation the session holds; the session records the new
    /// generation) and the lease released. After any other outcome (a
    /// rejected refresh token among them: a peer may have rotated it) the
    /// newest shared state is loaded and adopted if newer, instead of the
    /// session trying its own way first; the rejected refresh token is never
    /// sent again either way. Returns what that adoption did (`None` after a
    /// new token). `buf` holds the snapshot image on the way to the store,
    /// and is wiped after.
    ///
    /// Errors: [`Error::BufferTooSmall`] (`buf` shorter than
    /// [`SessionIn::snapshot_len`]: nothing was saved); [`Error::WrongState`]
    /// if the session's exchange is not over. The lease is released either
    /// way: take the turn again ([`token_turn`](Worker::token_turn)) when
    /// the exchange is over.
    pub fn exchanged<S: Store, A: Arena>(
        &mut self,
        store: &mut S,
        session: &mut SessionIn<A>,
        now: u64,
        unix_ms: u64,
        issued: bool,
        buf: &mut [u8],
    ) -> Result<Option<Adopted>, Error> {
        let leading = core::mem::replace(&mut self.leading, false);
        let saved = if issued && leading {
            self.save(store, session, now, unix_ms, buf)
        } else {
            Ok(true)
        };
        match saved {
            // Not in the store: keep the lease (as long as the store keeps
            // it, peers wait instead of refreshing with the refresh token
            // this one replaced) and save it at the next store contact.
            Ok(false) => self.unsaved = true,
            _ if leading => self.release(store, now),
            _ => {}
        }
        saved?;
        if issued {
            return Ok(None);
        }
        self.sync(store, session, now, unix_ms, buf)
    }

    /// Saves the session's state over the generation it holds (the lease
    /// held). Returns whether the store has it (or a newer state a peer
    /// saved meanwhile, which the next sync adopts).
    fn save<S: Store, A: Arena>(
        &mut self,
        store: &mut S,
        session: &mut SessionIn<A>,
        now: u64,
        unix_ms: u64,
        buf: &mut [u8],
    ) -> Result<bool, Error> {
        let len = session.snapshot(now, unix_ms, buf)?;
        let image = buf.get(..len).unwrap_or(&[]);
        let mut done = false;
        for _ in 0..2 {
            if self.resting(now) {
                break;
            }
            let saved = store.save(self.holder, session.shared_generation(), image);
            match self.answered(now, saved) {
                Some(Saved::Stored { generation }) => {
                    session.set_shared_generation(generation);
                    done = true;
                    break;
                }
                // The store was reset: save over what it has.
                Some(Saved::Stale { generation }) if generation < session.shared_generation() => {
                    session.set_shared_generation(generation);
                }
                // A peer saved a newer state meanwhile: the next sync adopts
                // theirs.
                Some(Saved::Stale { .. }) => {
                    done = true;
                    break;
                }
                // The lease was lost, or the store failed.
                Some(Saved::NotHolder) | None => break,
            }
        }
        if let Some(image) = buf.get_mut(..len) {
            image.zeroize();
        }
        Ok(done)
    }

    /// Saves a token the store did not take when it was fetched
    /// ([`Worker::unsaved`]), under the lease: first thing at every store
    /// contact until it is in.
    fn flush<S: Store, A: Arena>(
        &mut self,
        store: &mut S,
        session: &mut SessionIn<A>,
        now: u64,
        unix_ms: u64,
        buf: &mut [u8],
    ) -> Result<(), Error> {
        if !self.unsaved || self.resting(now) {
            return Ok(());
        }
        let lease = store.lease(self.holder, self.lease_ttl_ms);
        if let Some(Lease::Held { .. }) = self.answered(now, lease) {
            let saved = self.save(store, session, now, unix_ms, buf);
            if matches!(saved, Ok(true)) {
                self.unsaved = false;
            }
            self.release(store, now);
            saved?;
        }
        Ok(())
    }

    /// Whether a token this worker fetched as the lead has not reached the
    /// store yet (it failed at the save). The worker keeps the lease as long
    /// as the store keeps it, and saves the token first thing when the store
    /// answers again ([`sync`](Worker::sync), [`token_turn`](Worker::token_turn),
    /// [`charge`](Worker::charge)).
    pub const fn unsaved(&self) -> bool {
        self.unsaved
    }

    /// Releases the lease (a failure is absorbed: the lease ends by itself).
    fn release<S: Store>(&mut self, store: &mut S, now: u64) {
        self.leading = false;
        if !self.resting(now) {
            let released = store.release(self.holder);
            self.answered(now, released);
        }
    }

    /// Up to a quarter of `wait`, at most 50 ms, at random: workers told to
    /// wait for the same slot do not all ask again at the same instant, so
    /// the slot goes to a different one each time instead of the fastest.
    /// The span halves with each refusal since this worker's last grant
    /// (25 ms after one, 6 ms after three, 0 after six): a worker that lost
    /// the draw asks again before those that did not, so no worker loses it
    /// for long (with the same span for all, one of 8 C workers once got no
    /// slot in 12 s while the others got 47).
    fn jitter(&mut self, wait: u64) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        let span = (wait / 4).min(50) >> self.refused.min(6);
        x.checked_rem(span.saturating_add(1)).unwrap_or(0)
    }

    /// Charges one request to the fleet's `kind` budget (the session's
    /// [`token_budget`](SessionIn::token_budget) or
    /// [`api_budget`](SessionIn::api_budget)): `None` to send now, or
    /// `Some(t)`, not before the session's monotonic time `t` (nothing was
    /// charged; `t` has up to 50 ms of jitter, so that waiting workers take
    /// turns). A session without that budget is never held back.
    ///
    /// The store charges one request less than the budget allows (a request
    /// granted just inside a window can reach the server after a later one,
    /// and the server counts one more than the fleet charged: measured as
    /// 41 in a window of 40). When the store is down, the worker charges its
    /// share of the budget (requests ÷ fleet size per window, or one request
    /// per window stretched by fleet size ÷ requests for a fleet larger than
    /// the budget; evenly paced, no burst) on its own. The fleet then keeps
    /// to the budget in every window that lies inside the outage; a window reaching back before it
    /// can hold what the fleet was granted before plus the shares (at most
    /// twice the budget, in the one window after the store went down), which
    /// a server that enforces its limit answers with 429 and `Retry-After`,
    /// honoured by the session.
    ///
    /// First, a token this worker fetched that the store did not take is
    /// saved ([`unsaved`](Worker::unsaved)); `buf` carries its image, as for
    /// [`sync`](Worker::sync), whose errors this returns.
    pub fn charge<S: Store, A: Arena>(
        &mut self,
        store: &mut S,
        session: &mut SessionIn<A>,
        kind: BudgetKind,
        now: u64,
        unix_ms: u64,
        buf: &mut [u8],
    ) -> Result<Option<u64>, Error> {
        self.flush(store, session, now, unix_ms, buf)?;
        let budget = match kind {
            BudgetKind::Token => session.token_budget(),
            BudgetKind::Api => session.api_budget(),
        };
        Ok(self.charge_budget(store, kind, budget, now, unix_ms))
    }

    /// [`Worker::charge`] of `budget` (none: never held back).
    fn charge_budget<S: Store>(
        &mut self,
        store: &mut S,
        kind: BudgetKind,
        budget: Option<Budget>,
        now: u64,
        unix_ms: u64,
    ) -> Option<u64> {
        let budget = budget?;
        if budget.window_s == 0 {
            return None;
        }
        if !self.resting(now) {
            let requests = if budget.requests > 1 {
                budget.requests.saturating_sub(1)
            } else {
                budget.requests
            };
            let margin = Budget {
                requests,
                window_s: budget.window_s,
                burst: budget.burst.clamp(1, requests.max(1)),
            };
            let charged = store.charge(kind.id(), margin);
            match self.answered(now, charged) {
                Some(Charge::Granted) => {
                    self.refused = 0;
                    return None;
                }
                Some(Charge::WaitUntil { unix_ms: at }) => {
                    let wait = at.saturating_sub(unix_ms).max(1);
                    let jitter = self.jitter(wait);
                    self.refused = self.refused.saturating_add(1);
                    return Some(now.saturating_add(wait).saturating_add(jitter));
                }
                None => {}
            }
        }
        // This worker's share: requests ÷ fleet size per window, or, for a
        // fleet larger than the budget, one request per window stretched by
        // fleet size ÷ requests (32 workers on their own would otherwise
        // take 32 of Autotask's 10 token requests a minute). No bursts while
        // uncoordinated: evenly paced from the first one.
        let mine = if budget.requests >= self.fleet_size {
            Budget {
                requests: budget.requests.checked_div(self.fleet_size).unwrap_or(1),
                window_s: budget.window_s,
                burst: 1,
            }
        } else {
            let stretched = u64::from(budget.window_s)
                .saturating_mul(u64::from(self.fleet_size))
                .div_ceil(u64::from(budget.requests.max(1)));
            Budget {
                requests: 1,
                window_s: u32::try_from(stretched).unwrap_or(u32::MAX),
                burst: 1,
            }
        };
        let cell = match kind {
            BudgetKind::Token => &mut self.local_token,
            BudgetKind::Api => &mut self.local_api,
        };
        let at = cell.ready_at(now, mine);
        if at > now {
            // Not past the store's next try: when it answers again, the
            // fleet's budget applies and the worker rejoins at once (a share
            // of an hourly budget would otherwise keep it away for minutes).
            return Some(at.min(self.retry_at.max(now.saturating_add(1))));
        }
        cell.take(now, mine);
        None
    }
}
