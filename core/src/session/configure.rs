//! Building a session: `new` / `new_in` / `with_storage*`, the arena size a
//! configuration needs, and the checks and copies that lay out its string
//! table (plus the settings derived from the profile and configuration).

use core::mem::MaybeUninit;

use zeroize::Zeroize;

#[cfg(doc)]
use super::Session;
use super::{
    Arena, Config, Place, SessionIn, Settings, St, DEFAULT_MAX_WAIT_S, MIN_CAPACITY, NO_BUDGET,
    PKCE_ZONE, STRINGS, S_AUDIENCE, S_AUTH_PARAMS, S_AUTH_PATH, S_BASE, S_CLIENT_ID, S_DEVICE_PATH,
    S_KEY, S_PASS, S_PHRASE, S_PLACEMENT, S_REDIRECT, S_RESOURCE, S_REVOKE_PATH, S_SCOPE, S_SECRET,
    S_TOKEN_PARAMS, S_TOKEN_PATH, S_USER,
};
use crate::error::{Error, Field, InputError, Result};
use crate::http::ResetMode;
use crate::preset::{Backoff, Budget, Mode, Placement, Profile, RevokeStyle};
use crate::request::{BodyFormat, ClientAuth};
use crate::url::Url;
use crate::write::check_param;

impl<const N: usize> SessionIn<[u8; N]> {
    /// Creates a session for `profile` with `config`, seeding the jitter from
    /// `seed` (any random 64 bits; different devices should use different
    /// seeds).
    ///
    /// Errors: [`Error::InvalidInput`] for a missing or unusable value (an
    /// invalid or insecure base URL, an empty credential the mode needs,
    /// control characters); [`Error::CapacityExceeded`] if the strings do not
    /// leave room for two token slots of at least 256 bytes.
    pub fn new(profile: &Profile<'_>, config: &Config<'_>, seed: u64) -> Result<Self> {
        let mut s = SessionIn {
            arena: [0; N],
            set: settings(profile, config),
            st: St::empty(),
        };
        s.st.rng = seed;
        s.st.ticket = (seed ^ (seed >> 32)) as u32;
        s.configure(profile, config)?;
        Ok(s)
    }

    /// Creates a session like [`Session::new`], but directly in `slot`
    /// (static memory, a caller's struct, C storage) instead of returning it,
    /// so that no `N`-byte temporary is built on the stack: on a device,
    /// `new` needs about `N` + 240 bytes of stack, `new_in` a few hundred.
    ///
    /// Returns the initialized session. On error `slot` holds no secrets
    /// (the arena is wiped) and must not be treated as initialized.
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Config, Session};
    ///
    /// let mut slot = MaybeUninit::<Session<2048>>::uninit();
    /// let config = Config {
    ///     base_url: "https://api.fieldnation.com",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let session = Session::new_in(&mut slot, &preset::FIELD_NATION, &config, 7)?;
    /// assert!(!session.status().usable); // no token yet
    /// session.clear(); // a `MaybeUninit` never drops: wipe the secrets
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    ///
    /// Like any `MaybeUninit`, `slot` never drops its contents: call
    /// [`Session::clear`] when done (or use `MaybeUninit::assume_init_drop`
    /// in code that allows `unsafe`), or the arena keeps its secrets.
    ///
    /// Errors: as [`Session::new`].
    pub fn new_in<'s>(
        slot: &'s mut MaybeUninit<Self>,
        profile: &Profile<'_>,
        config: &Config<'_>,
        seed: u64,
    ) -> Result<&'s mut Self> {
        // A constant literal, so that LLVM stores it straight into `slot`
        // (a memset plus a few stores) instead of building the N-byte value
        // on the stack and copying it: `ffi/tests/firmware_link.rs` fails if
        // the Cortex-M4 stack peak of the C firmware grows past 2 KB. What
        // was measured (static frame of the C init, thumbv7em): this form
        // with the arena last in a `repr(C)` struct ≈ 600 B; the settings
        // computed inside the literal, or the arena first, ≈ 3.4 KB.
        let s = slot.write(SessionIn {
            st: St::empty(),
            set: Settings::BLANK,
            arena: [0; N],
        });
        s.set = settings(profile, config);
        s.st.rng = seed;
        s.st.ticket = (seed ^ (seed >> 32)) as u32;
        if let Err(e) = s.configure(profile, config) {
            s.arena.zeroize();
            return Err(e);
        }
        Ok(s)
    }
}

impl<A: Arena> SessionIn<A> {
    /// Creates a session in `storage`, an arena of any size from what the
    /// configuration needs up to 65,535 bytes ([`SessionIn::storage_needed`]
    /// computes it): storage the caller sizes at run time, for tokens larger
    /// than a fixed [`Session<N>`] was built for. The storage is wiped first,
    /// holds the secrets and tokens while the session lives, and is wiped
    /// again when the session is dropped or cleared.
    ///
    /// ```
    /// use fieldauth::preset;
    /// use fieldauth::session::{Config, SessionIn};
    ///
    /// let config = Config {
    ///     base_url: "https://login.example.com",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// // Room for a 4 KB JWT, a 1 KB refresh token and a scope per slot.
    /// let needed = SessionIn::<&mut [u8]>::storage_needed(&preset::custom(), &config, 5_400);
    /// let mut storage = vec![0u8; needed];
    /// let s = SessionIn::with_storage(&mut storage[..], &preset::custom(), &config, 7)?;
    /// assert_eq!(s.slot_capacity(), 5_400);
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    ///
    /// Errors: as [`Session::new`]; [`Error::CapacityExceeded`] names the
    /// bytes needed when the storage is smaller than the strings plus two
    /// 256-byte slots, or larger than 65,535 bytes.
    pub fn with_storage(
        mut storage: A,
        profile: &Profile<'_>,
        config: &Config<'_>,
        seed: u64,
    ) -> Result<Self> {
        storage.as_mut().zeroize();
        let mut s = SessionIn {
            st: St::empty(),
            set: settings(profile, config),
            arena: storage,
        };
        s.st.rng = seed;
        s.st.ticket = (seed ^ (seed >> 32)) as u32;
        s.configure(profile, config)?;
        Ok(s)
    }

    /// Like [`SessionIn::with_storage`], but builds the session directly in
    /// `slot` (as [`Session::new_in`] does): the C ABI builds its sessions
    /// in the caller's object this way, so init needs no session-sized
    /// temporary on a device's stack. On error `slot` holds no secrets (the
    /// storage is wiped) and must not be treated as initialized.
    ///
    /// Errors: as [`SessionIn::with_storage`].
    pub fn with_storage_in<'s>(
        slot: &'s mut MaybeUninit<Self>,
        mut storage: A,
        profile: &Profile<'_>,
        config: &Config<'_>,
        seed: u64,
    ) -> Result<&'s mut Self> {
        storage.as_mut().zeroize();
        let s = slot.write(SessionIn {
            st: St::empty(),
            set: Settings::BLANK,
            arena: storage,
        });
        s.set = settings(profile, config);
        s.st.rng = seed;
        s.st.ticket = (seed ^ (seed >> 32)) as u32;
        if let Err(e) = s.configure(profile, config) {
            s.arena.as_mut().zeroize();
            return Err(e);
        }
        Ok(s)
    }

    /// The arena size a session for `profile` and `config` needs so that
    /// each of its two token slots holds `slot` bytes: the longest access
    /// token plus refresh token plus scope it must keep (as JSON-decoded
    /// text), or 256 at least. With [`SessionIn::with_storage`].
    pub fn storage_needed(profile: &Profile<'_>, config: &Config<'_>, slot: usize) -> usize {
        strings_len(profile, config).saturating_add(slot.max(MIN_CAPACITY / 2).saturating_mul(2))
    }

    /// The bytes each of the two token slots holds (what one token
    /// response's text may use).
    pub fn slot_capacity(&self) -> usize {
        usize::from(self.st.slot_len)
    }

    /// The arena's size in bytes.
    pub fn capacity(&self) -> usize {
        self.arena.as_ref().len()
    }

    fn configure(&mut self, p: &Profile<'_>, c: &Config<'_>) -> Result<()> {
        let url = Url::parse(c.base_url)?;
        url.check_transport(c.allow_insecure)?;
        let need = |field: Field, v: &str| -> Result<()> {
            if v.is_empty() {
                Err(Error::input(field, InputError::Missing))
            } else {
                Ok(())
            }
        };
        match p.mode {
            Mode::ApiKey => need(Field::ApiKey, c.api_key)?,
            Mode::Login | Mode::Password => {
                need(Field::Username, c.username)?;
                need(Field::Password, c.password)?;
            }
            Mode::AuthorizationCode => {
                need(Field::ClientId, c.client_id)?;
                need(Field::RedirectUri, c.redirect_uri)?;
            }
            Mode::ClientCredentials => need(Field::ClientId, c.client_id)?,
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode => need(Field::ClientId, c.client_id)?,
        }
        if p.mode != Mode::ApiKey && p.mode != Mode::Login && p.client_auth != ClientAuth::None {
            need(Field::ClientSecret, c.client_secret)?;
        }
        for i in 0..STRINGS {
            let (field, v) = config_string(p, c, i);
            if !v.is_empty() {
                check_param(field, v)?;
            }
        }
        for v in [c.token_params, c.authorize_params] {
            crate::params::check(Field::ExtraParams, v)?;
        }
        let len = strings_len(p, c);
        // Two slots of at least 256 bytes must remain.
        let cap = self.capacity();
        let min = len.saturating_add(MIN_CAPACITY);
        if min > cap || cap > usize::from(u16::MAX) {
            return Err(Error::capacity_exceeded(min, cap));
        }
        let mut pos = 0usize;
        for i in 0..STRINGS {
            let (_, v) = config_string(p, c, i);
            let end = pos.saturating_add(v.len());
            if let Some(dst) = self.arena.as_mut().get_mut(pos..end) {
                crate::write::copy(dst, v.as_bytes());
            }
            pos = end.saturating_add(1); // NUL separator (already zero)
        }
        self.st.strings_len = u16::try_from(len).unwrap_or(u16::MAX);
        self.st.slot_len = u16::try_from(cap.saturating_sub(len) / 2).unwrap_or(0);
        Ok(())
    }
}

/// Configuration string `i` of the arena's string table ([`S_BASE`] ..
/// [`S_PLACEMENT`] ..), with the field it is checked as. One at a time: the
/// whole table as an array was 216 bytes of stack on a Cortex-M4, in the
/// deepest frame of a session's initialization (issue #13).
fn config_string<'a>(p: &Profile<'a>, c: &Config<'a>, i: u8) -> (Field, &'a str) {
    match i {
        S_BASE => (Field::Url, c.base_url),
        S_CLIENT_ID => (Field::ClientId, c.client_id),
        S_SECRET => (Field::ClientSecret, c.client_secret),
        S_USER => (Field::Username, c.username),
        S_PASS => (Field::Password, c.password),
        S_KEY => (Field::ApiKey, c.api_key),
        S_SCOPE => (
            Field::Scope,
            if c.scope.is_empty() {
                p.scope.unwrap_or("")
            } else {
                c.scope
            },
        ),
        S_REDIRECT => (Field::RedirectUri, c.redirect_uri),
        S_TOKEN_PATH => (Field::Target, p.token_path),
        S_AUTH_PATH => (Field::Target, p.authorize_path),
        S_DEVICE_PATH => (Field::Target, p.device_path),
        S_REVOKE_PATH => (Field::Target, p.revoke_path),
        S_PHRASE => (Field::Target, p.expired_token_phrase),
        S_PLACEMENT => (
            Field::ParamName,
            match p.placement {
                Placement::Header(n) | Placement::Query(n) => n,
                Placement::Bearer | Placement::Raw => "",
            },
        ),
        S_RESOURCE => (Field::Resource, c.resource),
        S_AUDIENCE => (Field::Audience, c.audience),
        S_TOKEN_PARAMS => (Field::ExtraParams, c.token_params),
        S_AUTH_PARAMS => (Field::ExtraParams, c.authorize_params),
        _ => (Field::Url, ""),
    }
}

/// Bytes of the string table (NUL-separated), plus the PKCE zone in
/// authorization-code mode.
fn strings_len(p: &Profile<'_>, c: &Config<'_>) -> usize {
    let mut len = 0usize;
    for i in 0..STRINGS {
        len = len
            .saturating_add(config_string(p, c, i).1.len())
            .saturating_add(1);
    }
    if p.mode == Mode::AuthorizationCode {
        len = len.saturating_add(PKCE_ZONE);
    }
    len
}

impl Settings {
    /// Placeholder values, replaced at once by [`settings`] (a constant lets
    /// [`Session::new_in`] build the session in place).
    const BLANK: Settings = Settings {
        mode: Mode::ApiKey,
        format: BodyFormat::Form,
        client_auth: ClientAuth::None,
        revoke_style: RevokeStyle::Rfc7009,
        place: Place::Bearer,
        reset_mode: ResetMode::Auto,
        refresh_fraction_pct: 0,
        api_budget_per_token: false,
        allow_insecure: false,
        keys: &[],
        default_lifetime_s: 1,
        refresh_lifetime_s: 0,
        refresh_margin_s: 0,
        max_wait_s: DEFAULT_MAX_WAIT_S,
        token_budget: NO_BUDGET,
        api_budget: NO_BUDGET,
        backoff: Backoff {
            base_ms: 1,
            cap_ms: 1,
            max_attempts: 1,
        },
    };
}

/// A profile's budget as the session keeps it: an empty one is none.
fn kept_budget(b: Option<Budget>) -> Budget {
    b.filter(|b| b.requests > 0 && b.window_s > 0)
        .unwrap_or(NO_BUDGET)
}

fn settings(p: &Profile<'_>, c: &Config<'_>) -> Settings {
    Settings {
        mode: p.mode,
        format: p.format,
        client_auth: p.client_auth,
        revoke_style: p.revoke_style,
        place: match p.placement {
            Placement::Bearer => Place::Bearer,
            Placement::Raw => Place::Raw,
            Placement::Header(_) => Place::Header,
            Placement::Query(_) => Place::Query,
        },
        reset_mode: p.reset_mode,
        refresh_fraction_pct: p.refresh_fraction_pct.min(100),
        api_budget_per_token: p.api_budget_per_token,
        allow_insecure: c.allow_insecure,
        keys: p.keys,
        default_lifetime_s: p.default_lifetime_s.max(1),
        refresh_lifetime_s: p.refresh_lifetime_s,
        refresh_margin_s: p.refresh_margin_s,
        max_wait_s: match c.max_wait_s {
            0 => DEFAULT_MAX_WAIT_S,
            s => s,
        },
        token_budget: kept_budget(p.token_budget),
        api_budget: kept_budget(p.api_budget),
        backoff: Backoff {
            base_ms: p.backoff.base_ms.max(1),
            cap_ms: p.backoff.cap_ms.max(p.backoff.base_ms.max(1)),
            max_attempts: p.backoff.max_attempts.max(1),
        },
    }
}
