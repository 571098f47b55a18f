//! API requests: the credential to send (`authorize`), and what the API's
//! responses mean for the token (`on_api_response*`).

#[cfg(doc)]
use super::Session;
use super::{
    ApiVerdict, Arena, Authorization, Failure, Place, SessionIn, TokenId, F_RETRIED_401, F_TOKEN,
    S_KEY, S_PHRASE, S_PLACEMENT,
};
use crate::apply::ApiCredential;
use crate::body::ErrorCode;
use crate::http::ResponseHead;
use crate::preset::Mode;

impl<A: Arena> SessionIn<A> {
    /// Permission and credential for one API request at `now`. Counts the
    /// request against the client-side API budget when it returns
    /// [`Authorization::Send`]. Apply the credential with
    /// [`ApiCredential::write_header_line`] or
    /// [`ApiCredential::write_target`].
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
    /// use fieldauth::session::Authorization;
    /// assert_eq!(s.authorize(0), Authorization::NoCredential); // no token yet
    /// # let mut out = [0u8; 512];
    /// # s.write_token_request(0, &mut out)?;
    /// # let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// # let mut head: HeadParser = HeadParser::new();
    /// # let n = head.feed(raw)?.unwrap();
    /// # let mut body = TokenBody::new();
    /// # s.on_token_head(0, head.head().unwrap(), &mut body)?;
    /// # s.on_token_body(0, &mut body, &raw[n..])?;
    /// let mut line = [0u8; 128];
    /// let Authorization::Send(credential) = s.authorize(100) else { unreachable!() };
    /// let n = credential.write_header_line(&mut line)?;
    /// assert_eq!(&line[..n], b"Authorization: Bearer tok\r\n");
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn authorize(&mut self, now: u64) -> Authorization<'_> {
        let now = self.tick(now);
        let usable = self.usable(now);
        let mut until = self.st.api_blocked_until;
        if let Some(b) = super::budget(self.set.api_budget) {
            until = until.max(self.st.api_gcra.ready_at(now, b));
        }
        // A rate limit outlasts the token it was learned with: a token that
        // merely expired during the wait still means "wait", then a new
        // token (poll fetches it meanwhile). A token that was rejected (an
        // API 401) or a final failure says "no credential" at once.
        let expired = self.has(F_TOKEN) && self.st.failure.is_none();
        if now < until && (usable || expired) {
            return Authorization::Wait { until };
        }
        if !usable {
            return Authorization::NoCredential;
        }
        if let Some(b) = super::budget(self.set.api_budget) {
            self.st.api_gcra.take(now, b);
        }
        Authorization::Send(self.api_credential())
    }

    /// The credential [`Session::authorize`] would hand out, without checking
    /// rate limits or counting a request; `None` when no credential is usable
    /// at the latest time the session has seen. For sizing buffers before
    /// `authorize` (the C ABI does, so a short buffer costs no budget).
    pub fn credential(&self) -> Option<ApiCredential<'_>> {
        self.usable(self.st.last_now).then(|| self.api_credential())
    }

    /// Whether a credential may be handed out at `now`: the API key unless
    /// it failed, or a token until its expiry, whatever failed since.
    pub(super) fn usable(&self, now: u64) -> bool {
        if self.set.mode == Mode::ApiKey {
            self.st.failure.is_none()
        } else {
            self.token_valid(now)
        }
    }

    fn api_credential(&self) -> ApiCredential<'_> {
        let api_key = self.set.mode == Mode::ApiKey;
        let secret = if api_key {
            self.string(S_KEY)
        } else {
            self.active_text(0)
        };
        let name = self.string(S_PLACEMENT);
        match self.set.place {
            Place::Bearer if api_key => ApiCredential::ApiKey {
                scheme: Some("Bearer"),
                key: secret,
            },
            Place::Bearer => ApiCredential::Bearer(secret),
            Place::Raw => ApiCredential::ApiKey {
                scheme: None,
                key: secret,
            },
            Place::Header => ApiCredential::Header {
                name,
                value: secret,
            },
            Place::Query => ApiCredential::QueryParam {
                name,
                value: secret,
            },
        }
    }

    /// Reports the response to an API request: its head and, optionally, the
    /// first bytes of its body (used only to recognise a provider's
    /// "expired token" phrase). Learns rate limits and token invalidity.
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
    /// use fieldauth::session::ApiVerdict;
    /// # let mut out = [0u8; 512];
    /// # s.write_token_request(0, &mut out)?;
    /// # let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// # let mut head: HeadParser = HeadParser::new();
    /// # let n = head.feed(raw)?.unwrap();
    /// # let mut body = TokenBody::new();
    /// # s.on_token_head(0, head.head().unwrap(), &mut body)?;
    /// # s.on_token_body(0, &mut body, &raw[n..])?;
    /// # let _ = s.authorize(100);
    /// let mut api: HeadParser = HeadParser::new();
    /// api.feed(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\n\r\n")?;
    /// let verdict = s.on_api_response(200, api.head().unwrap(), b"");
    /// assert_eq!(verdict, ApiVerdict::RateLimited { until: 30_200 });
    /// let mut api: HeadParser = HeadParser::new();
    /// api.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")?;
    /// // The token is dropped: poll fetches a new one; retry the request once.
    /// assert_eq!(s.on_api_response(31_000, api.head().unwrap(), b""), ApiVerdict::RetryWithNewToken);
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn on_api_response(
        &mut self,
        now: u64,
        head: &ResponseHead,
        body_prefix: &[u8],
    ) -> ApiVerdict {
        self.api_response(now, head, body_prefix, false)
    }

    /// Which token [`Session::authorize`] hands out now: read it when you
    /// send a request and give it to [`Session::on_api_response_for`] with
    /// the response, so that a late rejection of an older token leaves a
    /// newer one alone (several requests in flight while the token was
    /// renewed).
    pub fn token_id(&self) -> TokenId {
        TokenId(self.st.token_gen)
    }

    /// Like [`Session::on_api_response`], for a request sent with the token
    /// `token` ([`Session::token_id`] when it was authorized). A rejection
    /// (401, the provider's expired-token phrase) of a token that is no
    /// longer the current one drops nothing: the answer is
    /// [`ApiVerdict::RetryWithNewToken`] (send it again with the current
    /// token), and it does not count as the current token's one retry.
    /// Rate limits are learned either way.
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{ApiVerdict, Authorization, Config, Session, TokenBody};
    /// # let config = Config { base_url: "https://webservices.autotask.net", client_id: "id", client_secret: "secret", ..Config::default() };
    /// # let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// # let mut exchange = |s: &mut Session, now: u64, token: &str| -> Result<(), fieldauth::Error> {
    /// #     let mut out = [0u8; 512];
    /// #     s.write_token_request(now, &mut out)?;
    /// #     let body = format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#);
    /// #     let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    /// #     let mut head: HeadParser = HeadParser::new();
    /// #     let n = head.feed(raw.as_bytes())?.unwrap();
    /// #     let mut tb = TokenBody::new();
    /// #     s.on_token_head(now, head.head().unwrap(), &mut tb)?;
    /// #     s.on_token_body(now, &mut tb, &raw.as_bytes()[n..])?;
    /// #     Ok(())
    /// # };
    /// # let mut h: HeadParser = HeadParser::new();
    /// # h.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")?;
    /// # let unauthorized = *h.head().unwrap();
    /// exchange(&mut s, 0, "old")?;
    /// assert!(matches!(s.authorize(1_000), Authorization::Send(_)));
    /// let sent_with = s.token_id(); // a slow request goes out with "old"
    /// // Meanwhile the token is renewed at its refresh time...
    /// let fieldauth::session::Action::Ready { next } = s.poll(1_000) else { unreachable!() };
    /// exchange(&mut s, next, "new")?;
    /// // ...and the slow request's 401 arrives late: "new" stays.
    /// assert_eq!(
    ///     s.on_api_response_for(next + 1, &unauthorized, b"", sent_with),
    ///     ApiVerdict::RetryWithNewToken
    /// );
    /// assert!(s.status().usable);
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn on_api_response_for(
        &mut self,
        now: u64,
        head: &ResponseHead,
        body_prefix: &[u8],
        token: TokenId,
    ) -> ApiVerdict {
        let stale = token.0 != self.st.token_gen;
        self.api_response(now, head, body_prefix, stale)
    }

    fn api_response(
        &mut self,
        now: u64,
        head: &ResponseHead,
        body_prefix: &[u8],
        stale: bool,
    ) -> ApiVerdict {
        let now = self.tick(now);
        let limited = self.learn_limits(now, head, false);
        let forbidden_exhausted = head.status == 403 && head.x_rate_limit.remaining == Some(0);
        if matches!(head.status, 429 | 503) || forbidden_exhausted {
            let until = limited.unwrap_or(now).max(self.st.api_blocked_until);
            self.st.api_blocked_until = until;
            crate::trace::decision!(
                "fieldauth: API rate limit (HTTP {}): requests wait until {} ms",
                head.status,
                until
            );
            return ApiVerdict::RateLimited { until };
        }
        let phrase = self.string(S_PHRASE);
        let expired_phrase = head.status == 400
            && !phrase.is_empty()
            && contains_ignore_case(body_prefix, phrase.as_bytes());
        let rejected = head.status == 401 || expired_phrase;
        if !rejected {
            if (200..=399).contains(&head.status) {
                self.set_flag(F_RETRIED_401, false);
            }
            return if head.status == 403 {
                ApiVerdict::Forbidden
            } else {
                ApiVerdict::Ok
            };
        }
        if self.set.mode == Mode::ApiKey {
            crate::trace::decision!(
                "fieldauth: the API rejected the API key (HTTP {})",
                head.status
            );
            self.fail(Failure::InvalidKey);
            return ApiVerdict::InvalidKey;
        }
        if head.bearer == Some(ErrorCode::InsufficientScope) {
            return ApiVerdict::Forbidden;
        }
        if stale {
            // An older token was rejected: the current one is not in question.
            return ApiVerdict::RetryWithNewToken;
        }
        if !self.has(F_TOKEN) {
            // No token is active: the rejection of another request in flight
            // with the same token already dropped it. This request was not
            // retried yet, so it may be retried (no loop: nothing can be
            // sent before a new token arrives, and that one counts again).
            return ApiVerdict::RetryWithNewToken;
        }
        // Drop the access token (keep a refresh token: it may still work).
        crate::trace::decision!(
            "fieldauth: the API rejected the token (HTTP {}): dropped, a new one is fetched",
            head.status
        );
        self.drop_access_token();
        if self.has(F_RETRIED_401) {
            ApiVerdict::Unauthorized
        } else {
            self.set_flag(F_RETRIED_401, true);
            ApiVerdict::RetryWithNewToken
        }
    }
}

/// Whether `hay` contains `needle`, ASCII case-insensitively.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}
