//! The authorization-code flow's browser step: the authorization URL (with
//! PKCE and `state`) and the code the redirect brings back (passed in, or
//! parsed from the redirect with feature `redirect`).

#[cfg(doc)]
use super::Session;
use super::{
    Arena, Phase, SessionIn, Span, F_CODE, F_PKCE, PKCE_ZONE, S_AUTH_PARAMS, S_AUTH_PATH,
    S_CLIENT_ID, S_REDIRECT, S_RESOURCE, S_SCOPE,
};
use crate::error::{Error, Field, InputError, Result};
use crate::pkce::{AuthorizationRequest, State as PkceState};
#[cfg(feature = "pkce")]
use crate::pkce::{ChallengeMethod, CodeVerifier};
use crate::preset::Mode;
use crate::write::check_param;

impl<A: Arena> SessionIn<A> {
    /// Authorization-code mode: writes the URL to open in a browser, with a
    /// `state` from `state_random` (16–48 bytes) and, with the `pkce`
    /// feature, a PKCE S256 verifier from `verifier_random` (32–96 bytes;
    /// ignored without the feature). Both come from the caller's RNG; the
    /// session keeps verifier and state for [`Session::set_authorization_code`].
    #[inline(never)]
    pub fn authorization_url(
        &mut self,
        verifier_random: &[u8],
        state_random: &[u8],
        buf: &mut [u8],
    ) -> Result<usize> {
        if self.set.mode != Mode::AuthorizationCode || self.st.phase != Phase::Idle {
            return Err(Error::WrongState);
        }
        // Filled in place (stack, issue #13).
        #[cfg(feature = "pkce")]
        let mut v = CodeVerifier::EMPTY;
        #[cfg(feature = "pkce")]
        v.fill(verifier_random)?;
        #[cfg(not(feature = "pkce"))]
        let _ = verifier_random;
        let mut s = PkceState::EMPTY;
        s.fill(state_random)?;
        // The challenge first: SHA-256's frame is gone before the URL's.
        #[cfg(feature = "pkce")]
        let c = v.challenge();
        #[cfg(feature = "pkce")]
        let n = self.write_authorization_url(&v, &c, &s, buf)?;
        #[cfg(not(feature = "pkce"))]
        let n = self.write_authorization_url(&s, buf)?;
        // Keep verifier and state in the PKCE zone (after the strings).
        let zone_end = usize::from(self.st.strings_len);
        let zone = zone_end.saturating_sub(PKCE_ZONE)..zone_end;
        self.wipe(zone.clone());
        #[cfg(feature = "pkce")]
        let vb = v.as_str().as_bytes();
        #[cfg(not(feature = "pkce"))]
        let vb: &[u8] = &[];
        let sb = s.as_str().as_bytes();
        let v_end = zone.start.saturating_add(vb.len());
        let s_end = v_end.saturating_add(sb.len());
        if s_end > zone.end {
            return Err(Error::capacity_exceeded(
                s_end.saturating_sub(zone.start),
                PKCE_ZONE,
            ));
        }
        self.put_text(zone.start, vb);
        self.put_text(v_end, sb);
        self.st.verifier = span(zone.start, vb.len());
        self.st.state = span(v_end, sb.len());
        self.set_flag(F_PKCE, true);
        Ok(n)
    }

    /// The authorization URL into `buf` (a frame of its own: the verifier
    /// and state of the caller are not stacked on the request's, issue #13).
    #[inline(never)]
    fn write_authorization_url(
        &self,
        #[cfg(feature = "pkce")] v: &CodeVerifier,
        #[cfg(feature = "pkce")] c: &crate::pkce::Challenge,
        s: &PkceState,
        buf: &mut [u8],
    ) -> Result<usize> {
        let endpoint = self.endpoint(S_AUTH_PATH)?;
        let mut a = AuthorizationRequest::new(endpoint, self.string(S_CLIENT_ID));
        let redirect = self.string(S_REDIRECT);
        a.redirect_uri = (!redirect.is_empty()).then_some(redirect);
        let scope = self.string(S_SCOPE);
        a.scope = (!scope.is_empty()).then_some(scope);
        let opt = |i| Some(self.string(i)).filter(|v: &&str| !v.is_empty());
        a.resource = opt(S_RESOURCE);
        a.extra_params = opt(S_AUTH_PARAMS);
        a.state = Some(s.as_str());
        #[cfg(feature = "pkce")]
        {
            a.pkce = Some((v, ChallengeMethod::S256));
        }
        a.allow_insecure = self.set.allow_insecure;
        #[cfg(feature = "pkce")]
        let s256 = Some(c);
        #[cfg(not(feature = "pkce"))]
        let s256 = None;
        a.write_with(s256, buf)
    }

    /// Authorization-code mode: the `code` and `state` the redirect brought.
    /// The state must match the one [`Session::authorization_url`] created
    /// (constant-time comparison). The code exchange is the next token
    /// request. Every build has it (the redirect parser,
    /// `on_authorization_callback`, is feature `redirect`).
    pub fn set_authorization_code(&mut self, code: &str, state: &str) -> Result<()> {
        if self.set.mode != Mode::AuthorizationCode
            || !self.has(F_PKCE)
            || self.st.phase != Phase::Idle
        {
            return Err(Error::WrongState);
        }
        if !crate::write::same_secret(self.text(self.st.state), state) {
            return Err(Error::input(Field::State, InputError::InvalidCharacter));
        }
        check_param(Field::Code, code)?;
        let staging = self.slot_range(self.st.active ^ 1);
        if code.len() > staging.len() {
            return Err(Error::capacity_exceeded(code.len(), staging.len()));
        }
        self.wipe(staging.clone());
        self.put_text(staging.start, code.as_bytes());
        self.keep_code(staging.start, code.len());
        Ok(())
    }

    /// Authorization-code mode: the redirect back from the authorization
    /// server, as the URL (or its query) the browser was sent to. Reads
    /// `code`, `state`, `iss`, `error` ([`callback::parse`](crate::callback::parse)), checks `state`
    /// against the one [`Session::authorization_url`] created (constant
    /// time) and, when `expected_issuer` is given (the server advertises
    /// RFC 9207 `authorization_response_iss_parameter_supported`; pass its
    /// issuer identifier), that `iss` is present and equal. Then keeps the
    /// code: the code exchange is the next token request, as after
    /// [`Session::set_authorization_code`].
    ///
    /// Errors (the session keeps its verifier and state, so a genuine
    /// redirect may still follow a forged one): `WrongState` outside
    /// code mode, before `authorization_url`, while an exchange runs or a
    /// code is already waiting; the [`callback::parse`](crate::callback::parse) errors;
    /// `InvalidInput { State | Issuer, Mismatch | Missing }` for a
    /// response to another login or from another server;
    /// `Response(AuthorizationDenied(code))` when the server sent `error`
    /// (e.g. the user declined: `access_denied`); `CapacityExceeded` when
    /// the decoded values do not fit a token slot.
    ///
    /// ```
    /// use fieldauth::preset::{self, Mode, Profile};
    /// use fieldauth::session::{Action, Config, RequestKind, Session};
    ///
    /// use fieldauth::request::ClientAuth;
    ///
    /// // A public client (PKCE, no secret).
    /// let profile = Profile {
    ///     mode: Mode::AuthorizationCode,
    ///     client_auth: ClientAuth::None,
    ///     ..preset::custom()
    /// };
    /// let config = Config {
    ///     base_url: "https://as.example",
    ///     client_id: "app",
    ///     redirect_uri: "https://app.example/cb",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&profile, &config, 7)?;
    /// let mut url = [0u8; 512];
    /// let n = s.authorization_url(&[7; 32], &[9; 16], &mut url)?;
    /// // The state the session chose is in the URL it wrote; the browser
    /// // comes back with it (here, read from that URL).
    /// let url = std::str::from_utf8(&url[..n]).unwrap();
    /// let state = url.split(['?', '&']).find_map(|p| p.strip_prefix("state=")).unwrap();
    /// assert!(s.on_authorization_callback("https://app.example/cb?code=c0de&state=forged", None).is_err());
    /// let redirect = format!("https://app.example/cb?code=c0de&state={state}&iss=https%3A%2F%2Fas.example");
    /// s.on_authorization_callback(&redirect, Some("https://as.example"))?;
    /// assert_eq!(s.poll(0), Action::SendTokenRequest(RequestKind::Fetch));
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    ///
    /// Feature `redirect` (default on); without it, pass `code` and `state`
    /// to [`Session::set_authorization_code`].
    #[cfg(feature = "redirect")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redirect")))]
    pub fn on_authorization_callback(
        &mut self,
        url_or_query: &str,
        expected_issuer: Option<&str>,
    ) -> Result<()> {
        use crate::callback::{self, Callback, P_CODE, P_ERROR, P_ISS, P_STATE};
        if self.set.mode != Mode::AuthorizationCode
            || !self.has(F_PKCE)
            || self.has(F_CODE)
            || self.st.phase != Phase::Idle
        {
            return Err(Error::WrongState);
        }
        let staging = self.slot_range(self.st.active ^ 1);
        // The staging slot holds nothing while no code waits; the values
        // are decoded there (a failure description there is forgotten).
        self.wipe(staging.clone());
        let wanted = (1 << P_CODE) | (1 << P_STATE) | (1 << P_ISS) | (1 << P_ERROR);
        let parsed = match self.arena.as_mut().get_mut(staging.clone()) {
            Some(buf) => callback::parse_spans(url_or_query, buf, wanted),
            None => Err(Error::WrongState),
        };
        let spans = match parsed {
            Ok(spans) => spans,
            Err(e) => {
                self.wipe(staging.clone());
                return Err(match e {
                    Error::BufferTooSmall { needed } => {
                        Error::capacity_exceeded(needed as usize, staging.len())
                    }
                    e => e,
                });
            }
        };
        let checked = {
            let slot = self.arena.as_ref().get(staging.clone()).unwrap_or_default();
            spans.callback(slot).and_then(|cb| {
                // A denial is an error here, so what passes is a code.
                cb.check(self.text(self.st.state), expected_issuer)?;
                if let Callback::Code { code, .. } = cb {
                    check_param(Field::Code, code)?;
                }
                // Relative to the slot.
                Ok(spans.range(P_CODE).unwrap_or_default())
            })
        };
        let code = match checked {
            Ok(code) => code,
            Err(e) => {
                self.wipe(staging);
                return Err(e);
            }
        };
        // Move the code to the slot's start and wipe the rest.
        let from = staging.start.saturating_add(code.start);
        let arena = self.arena.as_mut();
        for k in 0..code.len() {
            let b = arena.get(from.saturating_add(k)).copied().unwrap_or(0);
            if let Some(d) = arena.get_mut(staging.start.saturating_add(k)) {
                *d = b;
            }
        }
        let end = staging.start.saturating_add(code.len());
        self.wipe(end..staging.end);
        self.keep_code(staging.start, code.len());
        Ok(())
    }
}

impl<A: Arena> SessionIn<A> {
    /// Copies `bytes` into the arena at `at` (nothing if they do not fit).
    /// One out-of-line copy for the code paths (flash, issue #13).
    #[inline(never)]
    pub(super) fn put_text(&mut self, at: usize, bytes: &[u8]) {
        if let Some(d) = self
            .arena
            .as_mut()
            .get_mut(at..at.saturating_add(bytes.len()))
        {
            crate::write::copy(d, bytes);
        }
    }

    /// The code at `start` (`len` bytes) is the next token request's: a
    /// failure before it is forgotten.
    #[inline(never)]
    fn keep_code(&mut self, start: usize, len: usize) {
        self.st.code = span(start, len);
        self.set_flag(F_CODE, true);
        self.st.failure = None;
        self.st.attempts = 0;
        self.st.retry_at = 0;
    }
}

fn span(start: usize, len: usize) -> Span {
    Span {
        start: u16::try_from(start).unwrap_or(0),
        len: u16::try_from(len).unwrap_or(0),
    }
}
