//! The session's lifecycle: revocation requests, restart, clear, status and
//! failure description, the wall clock and reseeding.

use zeroize::Zeroize;

use super::{
    next_random, Arena, Failure, Revocation, SessionIn, Span, St, Status, F_LAST_CHANCE, F_REVOKE,
    F_REV_AT, F_REV_RT, F_RT, F_TOKEN, F_WALL, NEVER,
};
#[cfg(doc)]
use super::{RequestKind, Session};
use crate::preset::{Budget, Mode, RevokeStyle};

impl<A: Arena> SessionIn<A> {
    /// Asks the session to revoke its tokens (next token request):
    /// [`Revocation::Grant`], see [`Session::revoke_tokens`].
    pub fn revoke(&mut self) {
        self.revoke_tokens(Revocation::Grant);
    }

    /// Asks the session to revoke `which` tokens: the next token requests
    /// are the revocations ([`RequestKind::Revoke`], one per token), each
    /// token forgotten once its request is answered (or refused). After
    /// [`Revocation::Grant`] and [`Revocation::Both`] the session reports
    /// [`Failure::Revoked`] until [`Session::restart`]; after
    /// [`Revocation::Access`] it goes on (a refresh token, or the primary
    /// grant, gets a new access token when one is needed). A token the
    /// provider cannot revoke (no revocation endpoint; a `Bearer`-style
    /// endpoint names only the access token) is just wiped here.
    pub fn revoke_tokens(&mut self, which: Revocation) {
        let bits = match which {
            Revocation::Grant if self.has(F_RT) => F_REV_RT | F_REVOKE,
            Revocation::Grant => F_REV_AT | F_REVOKE,
            Revocation::Access if !self.has(F_TOKEN) => return, // nothing to revoke
            Revocation::Access => F_REV_AT,
            Revocation::Both => F_REV_RT | F_REV_AT | F_REVOKE,
        };
        self.st.flags |= bits;
        self.st.retry_at = 0;
        // A Bearer-style endpoint revokes the grant with the access token.
        if self.set.revoke_style == RevokeStyle::Bearer && self.has(F_REV_RT) {
            self.st.flags = (self.st.flags & !F_REV_RT) | F_REV_AT;
        }
        if which == Revocation::Access && self.set.revoke_style == RevokeStyle::None {
            self.set_flag(F_REV_AT, false);
            self.drop_access_token();
        }
        self.settle_revocations();
    }

    /// Leaves a permanent failure (after the cause was fixed elsewhere, or
    /// to log in again after a revocation) and resets the retry counter.
    ///
    /// It also lifts every server-imposed block (`Retry-After`, rate-limit
    /// resets) and forgets the failure's description.
    pub fn restart(&mut self) {
        self.st.failure = None;
        self.st.attempts = 0;
        self.st.retry_at = 0;
        self.st.token_blocked_until = 0;
        self.st.api_blocked_until = 0;
        self.st.failure_desc = Span::default();
        self.st.flags &= !F_LAST_CHANCE;
    }

    /// Wipes every secret and token and leaves the session unusable (it
    /// reports [`Failure::Revoked`]). Drop does the same wiping.
    pub fn clear(&mut self) {
        self.arena.as_mut().zeroize();
        self.st = St::empty();
        self.st.failure = Some(Failure::Revoked);
    }

    /// State for display and logs; contains no secrets.
    pub fn status(&self) -> Status {
        let api_key = self.set.mode == Mode::ApiKey;
        let now = self.st.last_now;
        Status {
            usable: self.usable(now),
            expires_at: if api_key { NEVER } else { self.st.expires_at },
            refresh_at: if api_key { NEVER } else { self.st.refresh_at },
            refreshable: self.has(F_RT),
            failed_attempts: self.st.attempts,
            api_blocked_until: self.st.api_blocked_until,
            token_blocked_until: self.st.token_blocked_until,
            failure: self.st.failure,
            last_http_status: self.st.last_status,
            last_content_json: self.st.last_json,
            slot_needed: self.st.slot_needed,
            slot_capacity: u32::from(self.st.slot_len),
        }
    }

    /// The client-side budget of the token endpoint this session keeps (the
    /// profile's [`token_budget`](crate::preset::Profile::token_budget)), if
    /// any. A fleet charges the same budget for all its workers
    /// ([`crate::shared::Worker`]).
    pub fn token_budget(&self) -> Option<Budget> {
        super::budget(self.set.token_budget)
    }

    /// The client-side budget of API requests this session keeps (the
    /// profile's [`api_budget`](crate::preset::Profile::api_budget)), if any.
    pub fn api_budget(&self) -> Option<Budget> {
        super::budget(self.set.api_budget)
    }

    /// The server's `error_description` for the last token error, if it
    /// sent one: kept until the next token exchange starts (or the session
    /// is restarted, restored or cleared). It lies in the staging slot, where
    /// the next response goes, and is forgotten whenever that slot is reused.
    //
    // Why it can never show token bytes: the span is set only from the
    // error response just parsed into the staging slot, and every later
    // write into that slot (the next response, an authorization code, a
    // restore) is preceded by a `wipe` of it, which drops the span.
    pub fn failure_description(&self) -> Option<&str> {
        let d = self.text(self.st.failure_desc);
        (!d.is_empty()).then_some(d)
    }

    /// The scope the server granted with the active token, if it said.
    pub fn granted_scope(&self) -> Option<&str> {
        if !self.has(F_TOKEN) {
            return None;
        }
        let s = self.active_text(2);
        (!s.is_empty()).then_some(s)
    }

    /// Records the wall clock: `unix_ms` is the Unix time in milliseconds at
    /// monotonic time `now`. Used for epoch-based rate-limit resets when a
    /// response has no `Date`, and for snapshots.
    pub fn set_wall_clock(&mut self, now: u64, unix_ms: u64) {
        let now = self.clock(now);
        // Two's-complement difference: exact while both times are below 2^63
        // (no 128-bit arithmetic, which Cortex-M4 does in software).
        self.st.wall_offset = unix_ms.wrapping_sub(now) as i64;
        self.set_flag(F_WALL, true);
    }

    /// Unix seconds at monotonic `now`, if the wall clock is known.
    pub(super) fn unix_now(&self, now: u64) -> Option<u64> {
        if !self.has(F_WALL) {
            return None;
        }
        let ms = now.wrapping_add(self.st.wall_offset as u64);
        crate::http::div1000(ms)
    }

    /// Mixes new caller randomness into the jitter generator.
    pub fn reseed(&mut self, seed: u64) {
        self.st.rng ^= seed;
        next_random(&mut self.st.rng);
    }
}
