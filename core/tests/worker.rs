//! `shared::Worker` (issue #21): one worker's side of a fleet, over an
//! in-memory store that follows the `Store` contract, with a store clock the
//! test moves and a switch that makes every operation fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use fieldauth::preset::{self, Budget};
use fieldauth::session::{Action, Adopted, Event, RequestKind};
use fieldauth::shared::{
    charge_cell, BudgetKind, Charge, Lease, Loaded, Notice, Saved, Store, StoreError, Turn, Worker,
    STORE_RETRY_MS,
};
use fieldauth::Error;

mod common;
use common::*;

const UNIX0: u64 = 1_796_619_600_000;

#[derive(Default)]
struct Mem {
    /// Store clock (Unix ms) = UNIX0 + (session time - T0): one clock.
    now: u64,
    down: bool,
    generation: u64,
    state: Vec<u8>,
    holder: u64,
    lease_end: u64,
    cells: HashMap<String, u64>,
    saves: u32,
}

#[derive(Debug)]
struct Down;
impl fmt::Display for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("store down")
    }
}
impl StoreError for Down {}

#[derive(Debug)]
enum MemError {
    Down,
    Short(usize),
}
impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mem store error")
    }
}
impl StoreError for MemError {
    fn needed_len(&self) -> Option<usize> {
        match self {
            MemError::Short(n) => Some(*n),
            MemError::Down => None,
        }
    }
}

/// One worker's handle on the shared memory store.
#[derive(Clone)]
struct MemStore(Rc<RefCell<Mem>>);

impl MemStore {
    fn new() -> Self {
        MemStore(Rc::new(RefCell::new(Mem {
            now: UNIX0,
            ..Mem::default()
        })))
    }
    fn m(&self) -> std::cell::RefMut<'_, Mem> {
        self.0.borrow_mut()
    }
    fn up(&self) -> Result<std::cell::RefMut<'_, Mem>, MemError> {
        let m = self.0.borrow_mut();
        if m.down {
            Err(MemError::Down)
        } else {
            Ok(m)
        }
    }
}

impl Store for MemStore {
    type Error = MemError;
    fn load(&mut self, buf: &mut [u8]) -> Result<Option<Loaded>, MemError> {
        let m = self.up()?;
        if m.generation == 0 {
            return Ok(None);
        }
        if buf.len() < m.state.len() {
            return Err(MemError::Short(m.state.len()));
        }
        buf[..m.state.len()].copy_from_slice(&m.state);
        Ok(Some(Loaded {
            generation: m.generation,
            len: m.state.len(),
        }))
    }
    fn lease(&mut self, holder: u64, ttl_ms: u32) -> Result<Lease, MemError> {
        let mut m = self.up()?;
        if m.holder != holder && m.lease_end > m.now {
            return Ok(Lease::Busy {
                until_ms: m.lease_end,
            });
        }
        m.holder = holder;
        m.lease_end = m.now + u64::from(ttl_ms);
        Ok(Lease::Held {
            until_ms: m.lease_end,
        })
    }
    fn save(&mut self, holder: u64, expected: u64, state: &[u8]) -> Result<Saved, MemError> {
        let mut m = self.up()?;
        if m.holder != holder || m.lease_end <= m.now {
            return Ok(Saved::NotHolder);
        }
        if m.generation != expected {
            return Ok(Saved::Stale {
                generation: m.generation,
            });
        }
        m.generation += 1;
        m.state = state.to_vec();
        m.saves += 1;
        Ok(Saved::Stored {
            generation: m.generation,
        })
    }
    fn release(&mut self, holder: u64) -> Result<(), MemError> {
        let mut m = self.up()?;
        if m.holder == holder {
            m.lease_end = 0;
        }
        Ok(())
    }
    fn charge(&mut self, id: &str, budget: Budget) -> Result<Charge, MemError> {
        let mut m = self.up()?;
        let now = m.now;
        let tat = m.cells.get(id).copied().unwrap_or(0);
        let (c, tat) = charge_cell(tat, now, budget);
        m.cells.insert(id.to_string(), tat);
        Ok(c)
    }
}

/// The store clock at session time `now`.
fn unix(now: u64) -> u64 {
    UNIX0 + (now - T0)
}

struct W {
    s: Sess,
    w: Worker,
    st: MemStore,
    buf: Vec<u8>,
}

impl W {
    fn new(store: &MemStore, holder: u64, fleet: u32) -> Self {
        let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), holder).unwrap();
        s.set_wall_clock(T0, UNIX0);
        W {
            s,
            w: Worker::new(holder, fleet, 30_000),
            st: store.clone(),
            buf: vec![0u8; 4096],
        }
    }
    fn at(&self, now: u64) {
        self.st.m().now = unix(now);
    }
    fn turn(&mut self, now: u64) -> Turn {
        self.at(now);
        self.w
            .token_turn(&mut self.st, &mut self.s, now, unix(now), &mut self.buf)
            .unwrap()
    }
    /// Runs the exchange the session wants with `raw` and reports it.
    fn exchange(&mut self, now: u64, raw: &str) -> (String, Event, Option<Adopted>) {
        self.at(now);
        let (req, event) = exchange(&mut self.s, now, raw);
        let issued = matches!(event, Event::TokenIssued { .. });
        let adopted = self
            .w
            .exchanged(
                &mut self.st,
                &mut self.s,
                now,
                unix(now),
                issued,
                &mut self.buf,
            )
            .unwrap();
        (req, event, adopted)
    }
    fn charge(&mut self, kind: BudgetKind, now: u64) -> Option<u64> {
        self.at(now);
        self.w
            .charge(
                &mut self.st,
                &mut self.s,
                kind,
                now,
                unix(now),
                &mut self.buf,
            )
            .unwrap()
    }
}

#[test]
fn one_worker_fetches_for_the_fleet() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 3);
    let mut b = W::new(&store, 22, 3);
    let mut c = W::new(&store, 33, 3);
    for w in [&mut a, &mut b, &mut c] {
        assert_eq!(w.s.poll(T0), Action::SendTokenRequest(RequestKind::Fetch));
    }
    assert_eq!(a.turn(T0), Turn::Lead);
    // B and C have no token: they wait for A's, looking again shortly.
    let Turn::WaitUntil(t) = b.turn(T0) else {
        panic!()
    };
    assert!(t > T0 && t <= T0 + 100, "{t}");
    assert!(matches!(c.turn(T0), Turn::WaitUntil(_)));

    let (_, _, adopted) = a.exchange(T0 + 50, &token_json("fleet-token", 3600, None));
    assert_eq!(adopted, None);
    assert_eq!(store.m().saves, 1);
    assert_eq!(store.m().generation, 1);
    assert_eq!(a.s.shared_generation(), 1);
    assert_eq!(store.m().lease_end, 0, "released");

    // B and C adopt A's token and never send a token request.
    for w in [&mut b, &mut c] {
        assert_eq!(w.turn(T0 + 100), Turn::Poll);
        assert!(matches!(w.s.poll(T0 + 100), Action::Ready { .. }));
        assert_eq!(
            bearer(&mut w.s, T0 + 100),
            "Authorization: Bearer fleet-token\r\n"
        );
        assert_eq!(w.s.shared_generation(), 1);
    }
    // The buffers that carried the images hold no token bytes.
    for w in [&a, &b, &c] {
        assert!(w.buf.iter().all(|&x| x == 0));
    }
}

#[test]
fn a_busy_lease_keeps_a_valid_token_in_use() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 2);
    let mut b = W::new(&store, 22, 2);
    assert_eq!(a.turn(T0), Turn::Lead);
    a.exchange(T0, &token_json("t1", 3600, None));
    assert_eq!(b.turn(T0), Turn::Poll);
    // Near the end of the hour both want a new token; A leads.
    let late = a.s.status().refresh_at;
    assert!(matches!(
        a.s.poll(late),
        Action::SendTokenRequest(RequestKind::Fetch)
    ));
    assert_eq!(a.turn(late), Turn::Lead);
    assert_eq!(b.turn(late), Turn::Use, "B keeps its valid token");
    assert_eq!(bearer(&mut b.s, late), "Authorization: Bearer t1\r\n");
    a.exchange(late + S, &token_json("t2", 3600, None));
    assert_eq!(b.turn(late + 2 * S), Turn::Poll);
    assert_eq!(
        bearer(&mut b.s, late + 2 * S),
        "Authorization: Bearer t2\r\n"
    );
}

#[test]
fn a_dead_holder_blocks_the_others_for_at_most_its_lease() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 2);
    let mut b = W::new(&store, 22, 2);
    assert_eq!(a.turn(T0), Turn::Lead);
    // A dies here. B waits, never past the lease's end (30 s).
    let mut now = T0;
    loop {
        match b.turn(now) {
            Turn::WaitUntil(t) => {
                assert!(t > now && t - now <= 100);
                now = t;
            }
            Turn::Lead => break,
            other => panic!("{other:?}"),
        }
        assert!(now <= T0 + 30 * S + 100, "waited past the lease");
    }
    assert!(now >= T0 + 30 * S);
    let (req, _, _) = b.exchange(now, &token_json("b-token", 3600, None));
    assert!(req.starts_with("POST "));
    assert_eq!(store.m().generation, 1);
}

#[test]
fn a_rejected_refresh_adopts_the_peers_rotation_instead_of_failing() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 2);
    let mut b = W::new(&store, 22, 2);
    assert_eq!(a.turn(T0), Turn::Lead);
    a.exchange(T0, &token_json("t1", 3600, Some("r1")));
    assert_eq!(b.turn(T0), Turn::Poll);
    assert_eq!(b.s.shared_generation(), 1);

    // The refresh is due. B leads (A's lease ended long ago) ...
    let late = b.s.status().refresh_at;
    assert_eq!(
        b.s.poll(late),
        Action::SendTokenRequest(RequestKind::Refresh)
    );
    assert_eq!(b.turn(late), Turn::Lead);
    // ... but while B's refresh with r1 is on the wire, A (its lease having
    // expired, the race the lease cannot exclude) rotated r1 and saved.
    {
        let (_, image) = {
            let mut peer = Sess::new(&preset::AUTOTASK, &cc_config(), 9).unwrap();
            peer.set_wall_clock(late, unix(late));
            exchange(&mut peer, late, &token_json("t2", 3600, Some("r2")));
            let mut image = vec![0u8; peer.snapshot_len()];
            let n = peer.snapshot(late, unix(late), &mut image).unwrap();
            image.truncate(n);
            ((), image)
        };
        let mut m = store.m();
        m.generation = 2;
        m.state = image;
    }
    let (req, event, adopted) = b.exchange(late + S, &json(400, r#"{"error":"invalid_grant"}"#));
    assert!(req.contains("refresh_token=r1"), "{req}");
    assert_eq!(event, Event::RefreshRejected);
    assert_eq!(adopted, Some(Adopted::Newer), "the peer's rotation adopted");
    // B serves the peer's token and holds r2; no further token request, and
    // r1 is never sent again.
    assert!(matches!(b.s.poll(late + S), Action::Ready { .. }));
    assert_eq!(bearer(&mut b.s, late + S), "Authorization: Bearer t2\r\n");
    assert!(b.s.status().refreshable);
    let later = b.s.status().refresh_at;
    assert_eq!(
        b.s.poll(later),
        Action::SendTokenRequest(RequestKind::Refresh)
    );
    assert_eq!(b.turn(later), Turn::Lead);
    let (req, _, _) = b.exchange(later, &token_json("t3", 3600, Some("r3")));
    assert!(req.contains("refresh_token=r2"), "{req}");
    assert!(!req.contains("r1"));
}

#[test]
fn a_failed_store_means_solo_with_a_share_then_rejoin() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 4);
    store.m().down = true;
    // No refresh token: A fetches on its own.
    assert_eq!(a.turn(T0), Turn::Solo);
    assert_eq!(a.w.take_notice(), Some(Notice::StoreDown));
    assert_eq!(a.w.take_notice(), None, "said once");
    assert!(a.w.store_down());
    a.exchange(T0, &token_json("solo", 3600, None));
    assert_eq!(bearer(&mut a.s, T0), "Authorization: Bearer solo\r\n");
    assert_eq!(store.m().saves, 0);

    // Autotask's API budget is 600 a minute: a share of a fleet of 4 is 150.
    let mut granted = 0;
    let mut now = T0 + S;
    while now < T0 + 61 * S {
        match a.charge(BudgetKind::Api, now) {
            None => granted += 1,
            Some(t) => {
                assert!(t > now);
                now = t;
                continue;
            }
        }
    }
    assert!((140..=150).contains(&granted), "{granted}");
    assert_eq!(a.w.take_notice(), None);

    // The store answers again (after the retry pause): A rejoins.
    store.m().down = false;
    assert_eq!(a.charge(BudgetKind::Api, now + STORE_RETRY_MS), None);
    assert_eq!(a.w.take_notice(), Some(Notice::StoreBack));
    assert!(!a.w.store_down());
}

#[test]
fn a_refreshable_worker_does_not_refresh_alone_by_default() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 2);
    assert_eq!(a.turn(T0), Turn::Lead);
    a.exchange(T0, &token_json("t1", 3600, Some("r1")));
    store.m().down = true;
    let late = a.s.status().refresh_at;
    assert_eq!(
        a.s.poll(late),
        Action::SendTokenRequest(RequestKind::Refresh)
    );
    assert_eq!(a.turn(late), Turn::Use, "the valid token, no solo refresh");
    // Expired and the store still down: wait for it.
    let expired = a.s.status().expires_at + S;
    let turn = a.turn(expired);
    assert!(
        matches!(turn, Turn::WaitUntil(t) if t > expired),
        "{turn:?} {:?}",
        a.s.status()
    );
    // With solo refresh allowed, the worker refreshes on its own.
    a.w = a.w.clone().with_solo_refresh(true);
    assert_eq!(a.turn(expired + 2 * STORE_RETRY_MS), Turn::Solo);
}

#[test]
fn the_fleet_charges_stay_inside_the_budget_in_every_window() {
    let store = MemStore::new();
    let mut ws: Vec<W> = (1..=5).map(|h| W::new(&store, h * 7, 5)).collect();
    // Autotask's token budget: 10 a minute. Every worker charges as fast as
    // it is let; the store grants at most 9 (one kept as the margin).
    let mut grants = Vec::new();
    let mut now = T0;
    while now < T0 + 180 * S {
        for w in &mut ws {
            if w.charge(BudgetKind::Token, now).is_none() {
                grants.push(now);
            }
        }
        now += 250;
    }
    for (i, &g) in grants.iter().enumerate() {
        let in_window = grants[i..].iter().take_while(|&&t| t < g + 60 * S).count();
        assert!(in_window <= 9, "{in_window} grants in the minute from {g}");
    }
    assert!(grants.len() >= 20, "{}", grants.len());
}

#[test]
fn a_short_buffer_is_the_callers_error_and_a_foreign_state_a_notice() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 2);
    assert_eq!(a.turn(T0), Turn::Lead);
    a.exchange(T0, &token_json("t1", 3600, None));
    let mut b = W::new(&store, 22, 2);
    let mut short = [0u8; 16];
    let err =
        b.w.sync(&mut b.st, &mut b.s, T0, UNIX0, &mut short)
            .unwrap_err();
    assert!(
        matches!(err, Error::BufferTooSmall { needed } if needed as usize == a.s.snapshot_len())
    );
    assert!(!b.w.store_down(), "not a store failure");

    // A worker configured differently cannot adopt it: a notice, its own
    // state kept.
    let mut other = Sess::new(&preset::FIELD_NATION, &cc_config(), 5).unwrap();
    let mut w = Worker::new(44, 2, 30_000);
    let mut st = store.clone();
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        w.sync(&mut st, &mut other, T0, UNIX0, &mut buf).unwrap(),
        None
    );
    assert_eq!(w.take_notice(), Some(Notice::ForeignState));
    assert_eq!(other.shared_generation(), 0);
}

#[test]
fn a_store_restarted_empty_is_saved_over_from_generation_zero() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 2);
    assert_eq!(a.turn(T0), Turn::Lead);
    a.exchange(T0, &token_json("t1", 3600, None));
    a.at(T0);
    assert_eq!(a.s.shared_generation(), 1);
    // The store loses everything (a Redis restart without persistence).
    *store.m() = Mem {
        now: unix(T0),
        ..Mem::default()
    };
    let late = a.s.status().refresh_at;
    assert_eq!(a.turn(late), Turn::Lead);
    a.exchange(late, &token_json("t2", 3600, None));
    assert_eq!(store.m().generation, 1);
    assert_eq!(a.s.shared_generation(), 1);
}

#[test]
fn the_worker_is_small() {
    assert!(
        core::mem::size_of::<Worker>() <= 64,
        "{}",
        core::mem::size_of::<Worker>()
    );
    let _ = Down;
}

#[test]
fn a_token_the_store_did_not_take_keeps_the_lease_and_is_saved_first_when_it_answers() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 2);
    let mut b = W::new(&store, 22, 2);
    assert_eq!(a.turn(T0), Turn::Lead);
    a.exchange(T0, &token_json("t1", 3600, Some("r1")));
    assert_eq!(b.turn(T0), Turn::Poll);

    // A refreshes (r1 is spent, the server rotated it to r2), and the store
    // fails just before the save.
    let late = a.s.status().refresh_at;
    assert_eq!(a.turn(late), Turn::Lead);
    a.at(late);
    let (req, event) = exchange(&mut a.s, late, &token_json("t2", 3600, Some("r2")));
    assert!(req.contains("refresh_token=r1"));
    assert!(matches!(event, Event::TokenIssued { .. }));
    store.m().down = true;
    let adopted =
        a.w.exchanged(&mut a.st, &mut a.s, late, unix(late), true, &mut a.buf)
            .unwrap();
    assert_eq!(adopted, None);
    assert!(a.w.unsaved(), "the store did not take it");
    assert_eq!(store.m().holder, 11, "the lease is kept");
    assert!(store.m().lease_end > unix(late));

    // The store answers again. B's refresh is due too, but the lease is A's:
    // B keeps its valid token and does not spend r1.
    store.m().down = false;
    let after = late + 2 * STORE_RETRY_MS;
    assert_eq!(
        b.s.poll(after),
        Action::SendTokenRequest(RequestKind::Refresh)
    );
    assert_eq!(b.turn(after), Turn::Use);
    // A's next store contact (its API charge) saves t2 and r2 first.
    assert_eq!(a.charge(BudgetKind::Api, after), None);
    assert!(!a.w.unsaved());
    assert_eq!(store.m().generation, 2);
    assert_eq!(store.m().lease_end, 0, "released after the save");
    assert_eq!(a.s.shared_generation(), 2);
    // B adopts it: its next refresh would send r2, never r1.
    assert_eq!(b.turn(after + S), Turn::Poll);
    assert_eq!(bearer(&mut b.s, after + S), "Authorization: Bearer t2\r\n");
    let next = b.s.status().refresh_at;
    assert_eq!(b.turn(next), Turn::Lead);
    let (req, _, _) = b.exchange(next, &token_json("t3", 3600, Some("r3")));
    assert!(req.contains("refresh_token=r2"), "{req}");
}

#[test]
fn an_unsaved_token_goes_into_a_store_that_restarted_empty() {
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 2);
    assert_eq!(a.turn(T0), Turn::Lead);
    a.exchange(T0, &token_json("t1", 3600, Some("r1")));
    let late = a.s.status().refresh_at;
    assert_eq!(a.turn(late), Turn::Lead);
    a.at(late);
    exchange(&mut a.s, late, &token_json("t2", 3600, Some("r2")));
    store.m().down = true;
    a.w.exchanged(&mut a.st, &mut a.s, late, unix(late), true, &mut a.buf)
        .unwrap();
    assert!(a.w.unsaved());
    // Back, but empty (a Redis restart without persistence).
    *store.m() = Mem {
        now: unix(late),
        ..Mem::default()
    };
    let after = late + 2 * STORE_RETRY_MS;
    let mut fresh = W::new(&store, 33, 2);
    // A's sync (any store contact) saves first; the newcomer adopts it.
    a.at(after);
    a.w.sync(&mut a.st, &mut a.s, after, unix(after), &mut a.buf)
        .unwrap();
    assert!(!a.w.unsaved());
    assert_eq!(store.m().generation, 1);
    assert_eq!(fresh.turn(after), Turn::Poll);
    assert_eq!(bearer(&mut fresh.s, after), "Authorization: Bearer t2\r\n");
}

#[test]
fn a_worker_that_keeps_losing_the_draw_asks_again_sooner() {
    // Autotask's token budget, spent: every charge at the same instant is
    // refused with the same wait. The jitter on it halves with each refusal
    // since the last grant (50 ms, 25, 12, 6, 3, 1, then none), so a worker
    // that lost the draw for a slot asks before those that did not.
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 8);
    let mut now = T0;
    while a.charge(BudgetKind::Token, now).is_none() {}
    let refusals: Vec<u64> = (0..10)
        .map(|_| a.charge(BudgetKind::Token, now).unwrap())
        .collect();
    let base = refusals[9];
    for (k, &t) in refusals.iter().enumerate().skip(1) {
        // The first of these is the second refusal (the loop above ended on one).
        assert!(
            t - base <= 50 >> k.min(6),
            "refusal {k}: {} ms of jitter",
            t - base
        );
    }
    assert!(refusals[7..].iter().all(|&t| t == base), "{refusals:?}");
    // A grant starts the count again: the next refusals have jitter again.
    now = base + 60 * S;
    assert_eq!(a.charge(BudgetKind::Token, now), None);
    while a.charge(BudgetKind::Token, now).is_none() {}
    let again: Vec<u64> = (0..4)
        .map(|_| a.charge(BudgetKind::Token, now).unwrap())
        .collect();
    assert!(
        again.windows(2).any(|w| w[0] != w[1]),
        "no jitter after a grant: {again:?}"
    );
}

#[test]
fn a_fleet_larger_than_a_budget_shares_it_in_stretched_windows() {
    // Autotask's token budget is 10 a minute; 32 workers on their own may
    // take one each every 3.2 minutes, not one each a minute (their waits
    // end at each try of the store, which keeps failing here).
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 32);
    store.m().down = true;
    assert_eq!(a.charge(BudgetKind::Token, T0), None);
    let mut now = T0 + S;
    while let Some(t) = a.charge(BudgetKind::Token, now) {
        assert!(t > now);
        now = t;
    }
    assert!(now >= T0 + 192 * S, "{}", now - T0);
}

#[test]
fn a_wait_for_the_own_share_ends_when_the_store_is_asked_again() {
    // Autotask's token budget (10 a minute) shared by 8: while the store
    // fails, a worker's next token request of its own would wait a minute;
    // it waits only until the store's next try, and rejoins the fleet's
    // budget when the store answers.
    let store = MemStore::new();
    let mut a = W::new(&store, 11, 8);
    store.m().down = true;
    assert_eq!(a.charge(BudgetKind::Token, T0), None);
    let t = a
        .charge(BudgetKind::Token, T0 + 10)
        .expect("the share is spent");
    assert!(t > T0 + 10 && t <= T0 + STORE_RETRY_MS, "{}", t - T0);
    // Still down then: the share still applies (a wait again, never a grant).
    let t2 = a
        .charge(BudgetKind::Token, t)
        .expect("the share is still spent");
    assert!(t2 > t && t2 <= t + STORE_RETRY_MS, "{}", t2 - t);
    store.m().down = false;
    assert_eq!(
        a.charge(BudgetKind::Token, t2),
        None,
        "the fleet's budget again"
    );
    assert_eq!(a.w.take_notice(), Some(Notice::StoreBack));
}
