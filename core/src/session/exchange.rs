//! The token exchange: what is due next (`poll`), writing the token request,
//! reading its response and acting on it (tokens, errors, backoff,
//! revocation bookkeeping), and the rate limits a response head teaches.

use super::{
    random_upto, secs_to_ms, Action, Arena, Event, Failure, Gcra, Phase, Progress, RequestKind,
    SessionIn, Span, TokenBody, EXHAUSTED_RETRY_MS, F_CODE, F_DEVICE, F_LAST_CHANCE, F_PKCE,
    F_REVOKE, F_REV_AT, F_REV_RT, F_RT, F_TOKEN, NEVER, RESPONSE_TIMEOUT_MS, SHORT_TOKEN_EARLY_MS,
    S_AUDIENCE, S_BASE, S_CLIENT_ID, S_DEVICE_PATH, S_PASS, S_REDIRECT, S_RESOURCE, S_REVOKE_PATH,
    S_SCOPE, S_SECRET, S_TOKEN_PARAMS, S_TOKEN_PATH, S_USER, UNKNOWN_RESET_WAIT_S,
};
#[cfg(doc)]
use super::{Config, Revocation, Session};
use crate::body::{BodyParser, ErrorCode, Expect, Outcome, Response};
use crate::error::{Error, Member, Result};
use crate::http::{BodyReader, ResponseHead, RetryAfter};
use crate::preset::{Mode, RevokeStyle};
use crate::request::{Client, Grant, Parts, Request, TokenTypeHint};
use crate::url::Url;
use crate::write::Window;

impl<A: Arena> SessionIn<A> {
    /// The token request to send next, if any is possible without the user.
    fn next_kind(&self, now: u64) -> Option<RequestKind> {
        if self.has(F_REV_RT | F_REV_AT) {
            return Some(RequestKind::Revoke);
        }
        match self.set.mode {
            Mode::ApiKey => None,
            _ if self.has(F_CODE) => Some(RequestKind::Fetch),
            _ if self.refresh_usable(now) => Some(RequestKind::Refresh),
            Mode::AuthorizationCode => None,
            // The device flow shares the active slot and the expiry with the
            // token: it starts only once the token is gone (as the
            // authorization-code mode asks for the browser step only then).
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode if self.token_valid(now) => None,
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode if self.has(F_DEVICE) && now < self.st.expires_at => {
                Some(RequestKind::DevicePoll)
            }
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode => Some(RequestKind::DeviceAuthorization),
            Mode::ClientCredentials | Mode::Password | Mode::Login => Some(RequestKind::Fetch),
        }
    }

    /// Earliest time the token endpoint may be used.
    fn token_gate(&self, now: u64) -> u64 {
        let gcra = match super::budget(self.set.token_budget) {
            Some(b) => self.st.token_gcra.ready_at(now, b),
            None => 0,
        };
        self.st.retry_at.max(self.st.token_blocked_until).max(gcra)
    }

    /// What to do next. Call it whenever time passes or a response completes.
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Action, Config, RequestKind, Session, TokenBody};
    ///
    /// let config = Config {
    ///     base_url: "https://webservices.autotask.net",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// assert_eq!(s.poll(0), Action::SendTokenRequest(RequestKind::Fetch));
    /// # let mut out = [0u8; 512];
    /// # s.write_token_request(0, &mut out)?;
    /// # let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// # let mut head: HeadParser = HeadParser::new();
    /// # let n = head.feed(raw)?.unwrap();
    /// # let mut body = TokenBody::new();
    /// # s.on_token_head(0, head.head().unwrap(), &mut body)?;
    /// # s.on_token_body(0, &mut body, &raw[n..])?;
    /// // A token: usable until its refresh time, then poll says send again.
    /// let Action::Ready { next } = s.poll(0) else { unreachable!() };
    /// assert!(next > 3_000_000 && next < 3_600_000);
    /// assert_eq!(s.poll(next), Action::SendTokenRequest(RequestKind::Fetch));
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn poll(&mut self, now: u64) -> Action {
        let now = self.tick(now);
        if self.st.phase != Phase::Idle {
            if now.saturating_sub(self.st.sent_at) < RESPONSE_TIMEOUT_MS {
                return Action::AwaitResponse;
            }
            self.st.last_status = 0;
            self.exchange_failed(now, 0);
        }
        self.settle_revocations();
        let failure = self.st.failure;
        if self.set.mode == Mode::ApiKey && failure.is_none() {
            return Action::Ready { next: NEVER };
        }
        let valid = self.token_valid(now);
        let due = failure.is_some()
            || !valid
            || now >= self.st.refresh_at
            || self.has(F_REV_RT | F_REV_AT);
        if !due {
            return Action::Ready {
                next: self.st.refresh_at,
            };
        }
        // After a final answer nothing is sent, but a token that is still
        // valid is served to its end.
        let next = match failure {
            Some(_) => None,
            None => self.next_kind(now),
        };
        let Some(kind) = next else {
            return match (valid, failure) {
                (true, _) => Action::Ready {
                    next: self.st.expires_at,
                },
                (false, Some(f)) => Action::Failed(f),
                (false, None) => Action::NeedAuthorizationCode,
            };
        };
        let exhausted = self.st.attempts >= self.set.backoff.max_attempts;
        // Without a valid token, an exhausted session keeps trying at the
        // slow pace `exchange_failed` set (EXHAUSTED_RETRY_MS): it never
        // latches on a server that may come back.
        if exhausted && valid && kind != RequestKind::Revoke {
            // Retries ran out while the token is still valid (say, a network
            // blip at refresh time): one last attempt shortly before expiry,
            // so a short outage does not become an outage at expiry. The
            // attempt count stays bounded (max_attempts + 1).
            let last_chance = self.last_chance_at();
            if self.has(F_LAST_CHANCE) || now < last_chance {
                let next = if self.has(F_LAST_CHANCE) {
                    self.st.expires_at
                } else {
                    last_chance
                };
                return Action::Ready { next };
            }
        }
        let gate = self.token_gate(now);
        if now < gate {
            return if valid {
                Action::Ready {
                    next: gate.min(self.st.expires_at),
                }
            } else {
                Action::Wait { until: gate }
            };
        }
        Action::SendTokenRequest(kind)
    }

    /// Configuration string `i`, or `None` if it was not given (empty). One
    /// out-of-line copy for the token request's and the authorization URL's
    /// optional values (flash, issue #13).
    #[inline(never)]
    pub(super) fn configured(&self, i: u8) -> Option<&str> {
        Some(self.string(i)).filter(|v| !v.is_empty())
    }

    /// [`SessionIn::clock`] out of line: the exchange and API paths read
    /// the clock in nine places, and its 64-bit compare and store cost more
    /// inlined than a call (flash, issue #13).
    #[inline(never)]
    pub(super) fn tick(&mut self, now: u64) -> u64 {
        self.clock(now)
    }

    // ------------------------------------------------------------ requests

    pub(super) fn endpoint(&self, path: u8) -> Result<Url<'_>> {
        Url::parse(self.string(S_BASE))?.join(self.string(path))
    }

    /// The request of `kind`, given to `f`: the endpoint parsed once, the
    /// client and grant built in place (no `Result` of a 120-byte client to
    /// move out of: the session's token request is the deepest stack chain
    /// of several C entry points, issue #13).
    fn with_request<T>(
        &self,
        kind: RequestKind,
        f: impl FnOnce(&Request<'_>) -> Result<T>,
    ) -> Result<T> {
        let path = match kind {
            RequestKind::DeviceAuthorization => S_DEVICE_PATH,
            RequestKind::Revoke => S_REVOKE_PATH,
            _ => S_TOKEN_PATH,
        };
        let client = self.client(self.endpoint(path)?, kind);
        let grant = self.grant_for(kind)?;
        f(&client.request(grant))
    }

    fn client<'c>(&'c self, endpoint: Url<'c>, kind: RequestKind) -> Client<'c> {
        let mut c = Client::new(endpoint, self.string(S_CLIENT_ID));
        c.client_secret = self.configured(S_SECRET);
        c.auth = self.set.client_auth;
        c.format = self.set.format;
        // A refresh asks for no scope, which means the scope granted (RFC
        // 6749 §6): the configured one may be more than the server granted
        // (oidc-provider drops `offline_access` without consent), and asking
        // for more is `invalid_scope`, which would cost the refresh token.
        c.scope = self
            .configured(S_SCOPE)
            .filter(|_| kind != RequestKind::Refresh);
        c.resource = self.configured(S_RESOURCE);
        c.audience = self.configured(S_AUDIENCE);
        c.extra_params = self.configured(S_TOKEN_PARAMS);
        c.allow_insecure = self.set.allow_insecure;
        c
    }

    /// When the one attempt after exhaustion goes out: `min(10 s, 5 %)` of
    /// the lifetime before expiry.
    fn last_chance_at(&self) -> u64 {
        let margin = secs_to_ms(self.st.lifetime_s / 20).min(10_000);
        self.st.expires_at.saturating_sub(margin)
    }

    fn sent(&mut self, now: u64, kind: RequestKind) {
        crate::trace::decision!(
            "fieldauth: token request sent ({}), attempt {}",
            crate::trace::kind(kind),
            self.st.attempts.saturating_add(1)
        );
        if self.st.attempts >= self.set.backoff.max_attempts {
            self.set_flag(F_LAST_CHANCE, true);
        }
        self.st.phase = Phase::Sent;
        self.st.kind = kind;
        self.st.sent_at = now;
        if let Some(b) = super::budget(self.set.token_budget) {
            self.st.token_gcra.take(now, b);
        }
    }

    /// Writes the token request [`Action::SendTokenRequest`] asked for, as
    /// complete HTTP/1.1 bytes, and marks it in flight (only one is ever in
    /// flight). Returns its length.
    ///
    /// Errors: [`Error::WrongState`] if no token request is due (poll first)
    /// or one is in flight; [`Error::BufferTooSmall`] with the size needed
    /// (nothing is marked in flight); configuration errors.
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Action, Config, RequestKind, Session, TokenBody};
    ///
    /// let config = Config {
    ///     base_url: "https://webservices.autotask.net",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// let mut out = [0u8; 512];
    /// let n = s.write_token_request(0, &mut out)?;
    /// assert!(out[..n].starts_with(b"POST /ATServicesRest/oauth/token HTTP/1.1\r\n"));
    /// assert_eq!(s.poll(1), Action::AwaitResponse); // one request in flight
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    #[inline(never)]
    pub fn write_token_request(&mut self, now: u64, buf: &mut [u8]) -> Result<usize> {
        let (now, kind) = self.due_request(now)?;
        let n = self.with_request(kind, |r| r.write_http(buf))?;
        self.sent(now, kind);
        Ok(n)
    }

    /// Like [`Session::write_token_request`], but returns the request as
    /// parts for hosts with their own HTTP client; the URL to send it to is
    /// [`Session::token_request_url`].
    pub fn write_token_request_parts<'b>(
        &mut self,
        now: u64,
        buf: &'b mut [u8],
    ) -> Result<Parts<'b>> {
        // Written, then split into parts: the request's builders and the
        // parts' header table are never on the stack at the same time
        // (issue #13's 1 KB stack target).
        let len = self.write_token_request(now, buf)?;
        crate::request::parts_of(buf, len)
    }

    /// Writes the token request window by window, for devices whose buffer
    /// is smaller than the request (as small as 128 bytes): call with
    /// `offset` 0 (which checks that a request is due and marks it in
    /// flight), send `written` bytes, and call again with `offset +=
    /// written` until `offset` reaches `total`. Every window is cut from the
    /// same request.
    ///
    /// Errors: [`Error::WrongState`] if `offset` is 0 and no request is due,
    /// or `offset` is not 0 and no request is in flight; input errors.
    pub fn write_token_request_window(
        &mut self,
        now: u64,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<Window> {
        let (now, kind) = if offset == 0 {
            self.due_request(now)?
        } else if self.st.phase == Phase::Sent {
            (self.tick(now), self.st.kind)
        } else {
            return Err(Error::WrongState);
        };
        let win = self.with_request(kind, |r| r.write_http_window(offset, buf))?;
        if offset == 0 {
            self.sent(now, kind);
        }
        Ok(win)
    }

    /// The token request due at `now`, or [`Error::WrongState`].
    fn due_request(&mut self, now: u64) -> Result<(u64, RequestKind)> {
        let now = self.tick(now);
        match self.poll(now) {
            Action::SendTokenRequest(kind) => Ok((now, kind)),
            _ => Err(Error::WrongState),
        }
    }

    fn grant_for(&self, kind: RequestKind) -> Result<Grant<'_>> {
        let (access, refresh) = (self.active_text(0), self.active_text(1));
        let grant = match kind {
            RequestKind::Refresh => Grant::RefreshToken {
                refresh_token: refresh,
            },
            #[cfg(feature = "device-flow")]
            RequestKind::DeviceAuthorization => Grant::DeviceAuthorization,
            // In device mode the active slot's first span is the device code.
            #[cfg(feature = "device-flow")]
            RequestKind::DevicePoll => Grant::DeviceCode {
                device_code: access,
            },
            #[cfg(not(feature = "device-flow"))]
            RequestKind::DeviceAuthorization | RequestKind::DevicePoll => {
                return Err(Error::WrongState)
            }
            RequestKind::Revoke => match self.set.revoke_style {
                RevokeStyle::Bearer => Grant::RevokeBearer { token: access },
                _ if self.revoking_refresh() => Grant::Revoke {
                    token: refresh,
                    hint: Some(TokenTypeHint::RefreshToken),
                },
                _ => Grant::Revoke {
                    token: access,
                    hint: Some(TokenTypeHint::AccessToken),
                },
            },
            RequestKind::Fetch => match self.set.mode {
                Mode::Login | Mode::Password => {
                    let (username, password) = (self.string(S_USER), self.string(S_PASS));
                    if self.set.mode == Mode::Login {
                        Grant::Login { username, password }
                    } else {
                        Grant::Password { username, password }
                    }
                }
                Mode::AuthorizationCode => Grant::AuthorizationCode {
                    code: self.text(self.st.code),
                    redirect_uri: self.configured(S_REDIRECT),
                    code_verifier: (self.has(F_PKCE) && self.st.verifier.len > 0)
                        .then(|| self.text(self.st.verifier)),
                },
                _ => Grant::ClientCredentials,
            },
        };
        Ok(grant)
    }

    /// The URL the current or next token request goes to (for hosts that use
    /// [`Session::write_token_request_parts`]), written into `buf`.
    pub fn token_request_url(&self, buf: &mut [u8]) -> Result<usize> {
        let url = match self.st.kind {
            RequestKind::DeviceAuthorization => self.endpoint(S_DEVICE_PATH)?,
            RequestKind::Revoke => self.endpoint(S_REVOKE_PATH)?,
            _ => self.endpoint(S_TOKEN_PATH)?,
        };
        url.write(buf)
    }

    // ------------------------------------------------------------ responses

    /// The response head of the token request in flight arrived. `body`
    /// (caller storage, see [`TokenBody`]) is reset for this response; pass
    /// it to [`on_token_body`](Self::on_token_body) and
    /// [`on_token_eof`](Self::on_token_eof).
    ///
    /// Errors: [`Error::WrongState`] if no token request is waiting for its
    /// head.
    ///
    /// A whole exchange, the response read in small pieces:
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Action, Config, RequestKind, Session, TokenBody};
    ///
    /// let config = Config {
    ///     base_url: "https://webservices.autotask.net",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// use fieldauth::session::Event;
    /// let mut out = [0u8; 512];
    /// s.write_token_request(0, &mut out)?;
    /// let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n\
    ///     {\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// let mut head: HeadParser = HeadParser::new();
    /// let n = head.feed(raw)?.expect("a complete head");
    /// let mut body = TokenBody::new();
    /// s.on_token_head(10, head.head().unwrap(), &mut body)?;
    /// let mut event = None;
    /// for piece in raw[n..].chunks(16) {
    ///     event = s.on_token_body(10, &mut body, piece)?.event.or(event);
    /// }
    /// assert!(matches!(event, Some(Event::TokenIssued { lifetime_s: 3600, .. })));
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn on_token_head(
        &mut self,
        now: u64,
        head: &ResponseHead,
        body: &mut TokenBody,
    ) -> Result<()> {
        let now = self.tick(now);
        if self.st.phase != Phase::Sent {
            return Err(Error::WrongState);
        }
        self.learn_limits(now, head, true);
        self.st.last_status = head.status;
        self.st.last_json = head.content_type_json;
        let expect = match self.st.kind {
            #[cfg(feature = "device-flow")]
            RequestKind::DeviceAuthorization => Expect::DeviceAuthorization,
            RequestKind::Revoke => Expect::Revocation,
            _ => Expect::Token,
        };
        self.st.ticket = match self.st.ticket.wrapping_add(1) {
            0 => 1,
            t => t,
        };
        *body = TokenBody {
            parser: BodyParser::new(expect, head.status, self.set.keys),
            reader: BodyReader::new(head.framing()),
            ticket: self.st.ticket,
        };
        // The staging slot receives the response; an authorization code in
        // it was sent and is single-use, so it goes too.
        let staging = self.slot_range(self.st.active ^ 1);
        self.wipe(staging);
        self.set_flag(F_CODE, false);
        self.st.phase = Phase::Body;
        Ok(())
    }

    /// Feeds a piece of the token response body (after the head), with the
    /// `body` given to [`on_token_head`](Self::on_token_head). When the body
    /// is complete the session acts on it and returns the [`Event`].
    ///
    /// Errors: [`Error::WrongState`] outside a body, or if `body` is not the
    /// one this exchange's head went to (nothing changes); malformed framing
    /// or JSON errors — the exchange then counts as failed (a retry is
    /// scheduled; a valid token stays valid) and the error is returned for
    /// logging.
    pub fn on_token_body(
        &mut self,
        now: u64,
        body: &mut TokenBody,
        chunk: &[u8],
    ) -> Result<Progress> {
        if self.st.phase != Phase::Body || body.ticket != self.st.ticket {
            return Err(Error::WrongState);
        }
        let now = self.tick(now);
        let mut consumed = 0usize;
        let mut rest = chunk;
        while !body.reader.is_done() {
            let (n, data) = match body.reader.next(rest) {
                Ok(x) => x,
                Err(e) => return Err(self.abort(now, e)),
            };
            if n == 0 {
                break;
            }
            let slot = self.slot_range(self.st.active ^ 1);
            let storage = self.arena.as_mut().get_mut(slot).unwrap_or(&mut []);
            if let Err(e) = body.parser.feed(storage, data) {
                return Err(self.abort(now, e));
            }
            consumed = consumed.saturating_add(n);
            rest = rest.get(n..).unwrap_or(&[]);
        }
        let event = if body.reader.is_done() {
            Some(self.complete(now, body)?)
        } else {
            None
        };
        Ok(Progress { consumed, event })
    }

    /// The connection closed. Completes a close-delimited body (read with
    /// `body`, the state given to [`on_token_head`](Self::on_token_head));
    /// anything else in flight counts as a failed exchange.
    ///
    /// Errors: [`Error::WrongState`] with no exchange in flight, or if `body`
    /// is not this exchange's (nothing changes); [`Error::Transport`] for a
    /// body cut short (the exchange failed; a retry is scheduled).
    pub fn on_token_eof(&mut self, now: u64, body: &mut TokenBody) -> Result<Event> {
        let foreign = self.st.phase == Phase::Body && body.ticket != self.st.ticket;
        if self.st.phase == Phase::Idle || foreign {
            return Err(Error::WrongState);
        }
        let now = self.tick(now);
        match self.st.phase {
            Phase::Body if body.reader.finish().is_ok() => self.complete(now, body),
            _ => Err(self.abort(now, Error::Transport)),
        }
    }

    /// The token request failed at the transport (connect, TLS, write, read,
    /// timeout). Schedules a retry; a valid token stays valid.
    pub fn on_transport_error(&mut self, now: u64) -> Event {
        let now = self.tick(now);
        self.st.last_status = 0;
        self.exchange_failed(now, 0)
    }

    fn abort(&mut self, now: u64, e: Error) -> Error {
        if let Error::CapacityExceeded { needed, .. } = e {
            self.st.slot_needed = needed;
        }
        self.exchange_failed(now, 0);
        e
    }

    /// A failed exchange (transport, malformed or cut-short response): the
    /// staging slot may hold part of a token, so it is wiped; then back off.
    fn exchange_failed(&mut self, now: u64, status: u16) -> Event {
        let staging = self.slot_range(self.st.active ^ 1);
        if !self.has(F_CODE) {
            self.wipe(staging);
        }
        self.back_off(now, status)
    }

    /// Schedules the retry of a failed token request: full-jitter
    /// exponential backoff, and once `max_attempts` have failed with no
    /// valid token left, one attempt per [`EXHAUSTED_RETRY_MS`] (its upper
    /// half), for as long as it takes.
    fn back_off(&mut self, now: u64, status: u16) -> Event {
        self.st.phase = Phase::Idle;
        self.st.attempts = self.st.attempts.saturating_add(1);
        let b = self.set.backoff;
        let (floor, bound) = if self.st.attempts >= b.max_attempts && !self.token_valid(now) {
            (EXHAUSTED_RETRY_MS / 2, EXHAUSTED_RETRY_MS / 2)
        } else {
            let shift = u32::from(self.st.attempts.saturating_sub(1)).min(16);
            (0, b.base_ms.saturating_mul(1u32 << shift).min(b.cap_ms))
        };
        let delay = floor.saturating_add(random_upto(&mut self.st.rng, bound));
        self.st.retry_at = now.saturating_add(u64::from(delay));
        let at = self.st.retry_at.max(self.st.token_blocked_until);
        crate::trace::decision!(
            "fieldauth: token request failed (HTTP {}, 0: transport): retry at {} ms",
            status,
            at
        );
        Event::Retrying { status, at }
    }

    /// Whether the revocation in flight (or next) names the refresh token.
    fn revoking_refresh(&self) -> bool {
        self.set.revoke_style == RevokeStyle::Rfc7009 && self.has(F_REV_RT) && self.has(F_RT)
    }

    /// Drops pending revocations whose token is gone (an API 401 may have
    /// dropped the access token since it was asked for; a provider that
    /// revokes by Bearer can name only the access token) and, when none is
    /// left of a [`Revocation::Grant`] or [`Revocation::Both`], ends the
    /// session here.
    pub(super) fn settle_revocations(&mut self) {
        let (rt, at) = match self.set.revoke_style {
            RevokeStyle::None => (false, false),
            RevokeStyle::Bearer => (false, self.has(F_TOKEN)),
            RevokeStyle::Rfc7009 => (self.has(F_RT), self.has(F_TOKEN)),
        };
        if !rt {
            self.set_flag(F_REV_RT, false);
        }
        if !at {
            self.set_flag(F_REV_AT, false);
        }
        if self.has(F_REVOKE) && !self.has(F_REV_RT | F_REV_AT) {
            self.revoked();
        }
    }

    /// A revocation request was answered (revoked, or refused with an RFC
    /// error: the token is forgotten here all the same).
    fn revocation_done(&mut self) -> Event {
        if self.revoking_refresh() {
            self.set_flag(F_REV_RT, false);
            self.drop_refresh_token();
        } else {
            self.set_flag(F_REV_AT, false);
            self.drop_access_token();
        }
        // Ends the session here (`revoked`) once nothing is left to revoke.
        self.settle_revocations();
        Event::Revoked
    }

    /// The tokens are gone (revoked, or revocation refused): wipe both
    /// slots and report [`Failure::Revoked`].
    fn revoked(&mut self) -> Event {
        let all = self.slot_range(0).start..self.capacity();
        self.wipe(all);
        // An authorization code waiting in the staging slot is gone too.
        self.st.flags &= !(F_TOKEN | F_RT | F_REVOKE | F_REV_RT | F_REV_AT | F_DEVICE | F_CODE);
        self.fail(Failure::Revoked);
        Event::Revoked
    }

    pub(super) fn fail(&mut self, f: Failure) -> Event {
        self.st.failure = Some(f);
        self.st.phase = Phase::Idle;
        // Logged here (also for failures outside a token response).
        crate::trace::decision!(
            "fieldauth: final failure: {} (restart() after fixing the cause)",
            crate::trace::failure(f)
        );
        Event::Failed(f)
    }

    /// The body is complete: act on it (and log what it led to).
    fn complete(&mut self, now: u64, body: &mut TokenBody) -> Result<Event> {
        let r = self.complete_inner(now, body);
        if let Ok(ev) = &r {
            crate::trace::event(ev);
        }
        r
    }

    fn complete_inner(&mut self, now: u64, body: &mut TokenBody) -> Result<Event> {
        let slot = self.slot_range(self.st.active ^ 1);
        let storage = self.arena.as_ref().get(slot.clone()).unwrap_or(&[]);
        let outcome = match body.parser.finish(storage) {
            Ok(o) => o,
            Err(e) => return Err(self.abort(now, e)),
        };
        self.st.phase = Phase::Idle;
        let kind = self.st.kind;
        let base = u16::try_from(slot.start).unwrap_or(0);
        match outcome.view(storage) {
            Response::Token(t) => {
                let lifetime = t.expires_in.unwrap_or(self.set.default_lifetime_s);
                let rt_lifetime = t.refresh_expires_in;
                // An empty `refresh_token` is none: it could never be sent.
                let has_new_rt = t.refresh_token.is_some_and(|r| !r.is_empty());
                Ok(self.commit_token(now, kind, &outcome, base, lifetime, rt_lifetime, has_new_rt))
            }
            #[cfg(feature = "device-flow")]
            Response::DeviceAuthorization(d) => {
                let interval = d.interval.unwrap_or(5);
                let expires = d.expires_in;
                self.flip(
                    &outcome,
                    base,
                    [
                        Member::DeviceCode,
                        Member::UserCode,
                        Member::VerificationUri,
                        Member::VerificationUriComplete,
                    ],
                );
                self.st.flags = (self.st.flags & !(F_TOKEN | F_RT)) | F_DEVICE;
                self.st.device_interval_s = interval.max(1).min(self.set.max_wait_s);
                self.st.expires_at = self.st.sent_at.saturating_add(secs_to_ms(expires));
                self.st.retry_at = now.saturating_add(secs_to_ms(self.st.device_interval_s));
                self.st.attempts = 0;
                Ok(Event::UserCode)
            }
            Response::Revoked => Ok(self.revocation_done()),
            Response::Error(e) => {
                let code = e.code;
                let status = e.status;
                let desc = outcome
                    .text_span(Member::ErrorDescription)
                    .unwrap_or((0, 0));
                // Set first: a path of `token_error` that wipes the slot
                // forgets it (see `wipe`).
                self.st.failure_desc = Span {
                    start: base.saturating_add(desc.0),
                    len: desc.1,
                };
                Ok(self.token_error(now, kind, code, status))
            }
        }
    }

    /// Moves the parsed members of the staging slot into the active spans and
    /// makes the staging slot active.
    fn flip(&mut self, o: &Outcome, base: u16, members: [Member; 4]) {
        let old = self.slot_range(self.st.active);
        for (span, m) in self.st.spans.iter_mut().zip(members) {
            *span = match o.text_span(m) {
                Some((s, l)) => Span {
                    start: base.saturating_add(s),
                    len: l,
                },
                None => Span::default(),
            };
        }
        self.st.active ^= 1;
        self.wipe(old);
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_token(
        &mut self,
        now: u64,
        kind: RequestKind,
        o: &Outcome,
        base: u16,
        lifetime_s: u32,
        rt_lifetime_s: Option<u32>,
        has_new_rt: bool,
    ) -> Event {
        // Keep the old refresh token when the response brings none and it is
        // still usable: copy it after the new text in the staging slot before
        // the old slot is wiped. When it does not fit, the session holds no
        // refresh token (`refreshable: false` says so) and the primary grant
        // renews the token next time.
        let mut kept_rt = None;
        if !has_new_rt && self.refresh_usable(now) {
            let old = self.st.spans.get(1).copied().unwrap_or_default();
            let used = o.text_used();
            let dst_start = usize::from(base).saturating_add(usize::from(used));
            let dst_end = dst_start.saturating_add(usize::from(old.len));
            let staging_end = self.slot_range(self.st.active ^ 1).end;
            if dst_end <= staging_end {
                let (src, dst) = (old.range(), dst_start..dst_end);
                // The slots do not overlap; copy through a bounded loop.
                for (d, s) in dst.zip(src) {
                    let b = self.arena.as_ref().get(s).copied().unwrap_or(0);
                    if let Some(x) = self.arena.as_mut().get_mut(d) {
                        *x = b;
                    }
                }
                kept_rt = Some(Span {
                    start: u16::try_from(dst_start).unwrap_or(0),
                    len: old.len,
                });
            }
        }
        let old_rt_expiry = self.st.rt_expires_at;
        self.flip(
            o,
            base,
            [
                Member::AccessToken,
                Member::RefreshToken,
                Member::Scope,
                Member::Message,
            ],
        );
        if let Some(rt) = kept_rt {
            if let Some(s) = self.st.spans.get_mut(1) {
                *s = rt;
            }
        }
        let refreshable = has_new_rt || kept_rt.is_some();
        // F_RETRIED_401 survives: only an API success re-arms the single
        // retry, so a server that rejects every new token cannot cause a loop.
        self.st.flags = (self.st.flags & !(F_DEVICE | F_CODE | F_PKCE | F_RT))
            | F_TOKEN
            | if refreshable { F_RT } else { 0 };
        // Refresh-token lifetime: as the server says; else the profile's; a
        // kept refresh token keeps its old expiry.
        self.st.rt_expires_at = if kept_rt.is_some() {
            old_rt_expiry
        } else {
            match (rt_lifetime_s, self.set.refresh_lifetime_s) {
                (Some(s), _) => self.st.sent_at.saturating_add(secs_to_ms(s)),
                (None, 0) => NEVER,
                (None, s) => self.st.sent_at.saturating_add(secs_to_ms(s)),
            }
        };
        self.st.lifetime_s = lifetime_s;
        self.st.expires_at = self.st.sent_at.saturating_add(secs_to_ms(lifetime_s));
        // Early refresh, in milliseconds (whole seconds truncated a 5 s
        // token's 10 % to nothing): min(margin, fraction of the lifetime),
        // but at least min(half the lifetime, 2 s), so that a short-lived
        // token is still usable while its replacement is fetched; plus up
        // to half that again of jitter. (`pct %` of `s` seconds is
        // `s · pct · 10` ms: no division, which Cortex-M4 lacks for 64 bits.)
        let lifetime_ms = secs_to_ms(lifetime_s);
        let fraction_ms = u64::from(lifetime_s)
            .saturating_mul(u64::from(self.set.refresh_fraction_pct))
            .saturating_mul(10);
        let floor_ms = (lifetime_ms / 2).min(SHORT_TOKEN_EARLY_MS);
        let early = secs_to_ms(self.set.refresh_margin_s).min(fraction_ms.max(floor_ms));
        let early_ms = u32::try_from(early).unwrap_or(u32::MAX);
        let jitter = random_upto(&mut self.st.rng, early_ms / 2);
        self.st.refresh_at = self
            .st
            .expires_at
            .saturating_sub(u64::from(early_ms))
            .saturating_sub(u64::from(jitter))
            .max(self.st.sent_at);
        self.st.attempts = 0;
        self.st.retry_at = 0;
        self.set_flag(F_LAST_CHANCE, false);
        if self.set.api_budget_per_token {
            self.st.api_gcra = Gcra::default();
        }
        self.st.token_gen = self.st.token_gen.wrapping_add(1);
        self.st.slot_needed = 0;
        Event::TokenIssued {
            kind,
            lifetime_s,
            refreshable,
        }
    }

    /// Acts on an error response to a token request. Which answers are final
    /// is listed at [`Failure`]; everything else is retried.
    fn token_error(&mut self, now: u64, kind: RequestKind, code: ErrorCode, status: u16) -> Event {
        // An RFC 6749 error body: an `error` member (any code).
        let rfc = code != ErrorCode::None;
        match code {
            ErrorCode::AuthorizationPending => {
                self.st.retry_at = now.saturating_add(secs_to_ms(self.st.device_interval_s));
                Event::AuthorizationPending
            }
            ErrorCode::SlowDown => {
                self.st.device_interval_s = self
                    .st
                    .device_interval_s
                    .saturating_add(5)
                    .min(self.set.max_wait_s);
                self.st.retry_at = now.saturating_add(secs_to_ms(self.st.device_interval_s));
                Event::SlowDown
            }
            ErrorCode::ExpiredToken if kind == RequestKind::DevicePoll => {
                // The device code expired: start over with a new user code.
                self.set_flag(F_DEVICE, false);
                self.back_off(now, status)
            }
            // Trouble at the server or a rate limit, whatever the code
            // (Fentu's 429 says `rate_limit_exceeded`): retry.
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => {
                self.back_off(now, status)
            }
            _ if matches!(status, 408 | 429) || status >= 500 => self.back_off(now, status),
            _ if !rfc && status != 401 => self.back_off(now, status),
            _ if kind == RequestKind::Revoke => {
                // The server will not revoke (say, `unsupported_token_type`):
                // the token is forgotten here all the same.
                self.revocation_done()
            }
            _ if kind == RequestKind::Refresh => {
                // The refresh token is no good, whatever the code: drop it
                // and use the primary grant once, right away. A valid
                // access token is served meanwhile.
                self.drop_refresh_token();
                self.st.retry_at = 0;
                Event::RefreshRejected
            }
            ErrorCode::InvalidGrant if self.set.mode == Mode::AuthorizationCode => {
                // The code expired or was used: the user must approve again.
                self.st.flags &= !(F_CODE | F_PKCE);
                self.st.retry_at = 0;
                Event::Failed(Failure::InvalidGrant)
            }
            _ => {
                // The final answers, through one `fail` (flash, issue #13).
                let failure = match code {
                    ErrorCode::InvalidClient => Failure::InvalidClient,
                    ErrorCode::UnauthorizedClient | ErrorCode::UnsupportedGrantType => {
                        Failure::UnauthorizedClient
                    }
                    ErrorCode::InvalidScope => Failure::InvalidScope,
                    ErrorCode::AccessDenied => Failure::AccessDenied,
                    ErrorCode::InvalidGrant => Failure::InvalidGrant,
                    ErrorCode::InvalidRequest => Failure::Rejected,
                    // A 401 without an error code: the login or password is
                    // wrong, or the client credentials are.
                    ErrorCode::None if matches!(self.set.mode, Mode::Login | Mode::Password) => {
                        Failure::InvalidGrant
                    }
                    ErrorCode::None => Failure::InvalidClient,
                    // Codes that do not belong to a token endpoint, and
                    // unknown ones: nothing says the request can never
                    // succeed.
                    _ => return self.back_off(now, status),
                };
                self.fail(failure)
            }
        }
    }

    // ------------------------------------------------------------ rate limits

    /// Learns rate-limit state from a response head: `Retry-After` (which
    /// takes precedence), `X-RateLimit-*`, IETF `RateLimit`, and 429/503.
    /// Every wait is cut to the configured cap ([`Config::max_wait_s`]); a
    /// reset that needs a "now" the session does not know (no `Date`, no
    /// wall clock) waits [`UNKNOWN_RESET_WAIT_S`].
    pub(super) fn learn_limits(
        &mut self,
        now: u64,
        head: &ResponseHead,
        token_endpoint: bool,
    ) -> Option<u64> {
        let unix_now = head.date.or_else(|| self.unix_now(now));
        let unknown = u64::from(UNKNOWN_RESET_WAIT_S);
        let mut delay_s: Option<u64> = None;
        if let Some(r) = head.retry_after {
            delay_s = Some(match r {
                RetryAfter::Delay(s) => u64::from(s),
                RetryAfter::At(t) => unix_now.map_or(unknown, |u| t.saturating_sub(u)),
            });
        } else {
            let x = head.x_rate_limit;
            if x.remaining == Some(0) {
                if let Some(raw) = x.reset {
                    delay_s = Some(self.set.reset_mode.delay(raw, unix_now).unwrap_or(unknown));
                }
            }
            #[cfg(feature = "ietf-ratelimit")]
            if head.rate_limit.remaining == Some(0) {
                let d = u64::from(head.rate_limit.reset.unwrap_or(1));
                delay_s = Some(delay_s.map_or(d, |u| u.max(d)));
            }
            if delay_s.is_none() && matches!(head.status, 429 | 503) {
                // Limited without saying until when: a short pause.
                delay_s = Some(1);
            }
        }
        let cap = u64::from(self.set.max_wait_s);
        let until = now.saturating_add(delay_s?.min(cap).saturating_mul(1000));
        let slot = if token_endpoint {
            &mut self.st.token_blocked_until
        } else {
            &mut self.st.api_blocked_until
        };
        *slot = (*slot).max(until);
        Some(until)
    }
}
