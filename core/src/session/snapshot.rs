//! Persistence: a versioned, fixed-size, checksummed byte image of the token
//! and rate-limit state, so firmware can keep it in flash and a reboot does
//! not spend a token request.
//!
//! # Image layout (little-endian)
//!
//! | Offset | Size | Field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `FASN` |
//! | 4 | 2 | format version (1) |
//! | 6 | 2 | flags (token, refresh token) |
//! | 8 | 4 | arena size `N` of the session that wrote it |
//! | 12 | 4 | CRC-32 of the configuration strings (binds the image to one account) |
//! | 16 | 8 | Unix ms when written |
//! | 24 | 8 | token expiry (Unix ms) |
//! | 32 | 8 | refresh time (Unix ms) |
//! | 40 | 8 | refresh-token expiry (Unix ms; `u64::MAX`: none known) |
//! | 48 | 8 | API blocked until (Unix ms; 0: not) |
//! | 56 | 8 | token endpoint blocked until (Unix ms; 0: not) |
//! | 64 | 8 | token-endpoint GCRA state (Unix ms) |
//! | 72 | 8 | API GCRA state (Unix ms) |
//! | 80 | 4 | token lifetime (s) |
//! | 84 | 16 | spans of access token, refresh token, scope, message (offset and length, `u16` each, relative to the text) |
//! | 100 | 8 | shared-state generation (issue #21; 0: none, as in images written before it) |
//! | 108 | 4 | CRC-32 (IEEE) of every other byte of the image |
//! | 112 | slot | token text (the active slot, zero-padded) |
//!
//! The image contains the tokens: store it where the device keeps secrets.
//! Monotonic time does not survive a reboot, so times are stored as Unix
//! milliseconds: both calls take the wall clock.

use super::{Arena, SessionIn, Span, F_RT, F_TOKEN, NEVER};
use crate::error::{Error, Result, SnapshotError};

/// Length of the image header; the whole image is
/// [`SessionIn::snapshot_len`] bytes.
pub const SNAPSHOT_HEADER_LEN: usize = 112;

const MAGIC: &[u8; 4] = b"FASN";
const VERSION: u16 = 1;
const CRC_AT: usize = 108;
/// Offset of the seven times (expiry, refresh, refresh-token expiry, API
/// block, token block, token and API GCRA), 8 bytes each.
const TIMES_AT: usize = 24;

/// CRC-32 (IEEE 802.3, reflected), bitwise: small rather than fast; images are
/// written rarely.
pub(crate) fn crc32(data: &[u8], mut crc: u32) -> u32 {
    crc = !crc;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = buf.get_mut(at..at.saturating_add(bytes.len())) {
        crate::write::copy(d, bytes);
    }
}

fn get<const W: usize>(buf: &[u8], at: usize) -> [u8; W] {
    let mut out = [0u8; W];
    if let Some(s) = buf.get(at..at.saturating_add(W)) {
        crate::write::copy(&mut out, s);
    }
    out
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(get(buf, at))
}

/// `t` on a clock that reads `from` moved to a clock that reads `to` at the
/// same instant; 0 (never set) and `NEVER` stay as they are. One
/// out-of-line copy for both directions (flash: it is used 14 times).
#[inline(never)]
fn shift(t: u64, from: u64, to: u64) -> u64 {
    match t {
        0 => 0,
        NEVER => NEVER,
        t if t >= from => to.saturating_add(t.saturating_sub(from)),
        t => to.saturating_sub(from.saturating_sub(t)),
    }
}

impl<A: Arena> SessionIn<A> {
    /// Size of this session's snapshot image (fixed for a given `N` and
    /// configuration).
    pub fn snapshot_len(&self) -> usize {
        SNAPSHOT_HEADER_LEN.saturating_add(usize::from(self.st.slot_len))
    }

    /// CRC-32 of the configuration strings.
    /// The strings only: not the PKCE zone after them (authorization-code
    /// mode), whose verifier and state change with every login.
    fn config_crc(&self) -> u32 {
        let mut end = usize::from(self.st.strings_len);
        if self.set.mode == crate::preset::Mode::AuthorizationCode {
            end = end.saturating_sub(super::PKCE_ZONE);
        }
        crc32(self.arena.as_ref().get(..end).unwrap_or(&[]), 0)
    }

    /// Monotonic ms → Unix ms, given that `now` is `unix_ms`.
    fn to_unix(t: u64, now: u64, unix_ms: u64) -> u64 {
        shift(t, now, unix_ms)
    }

    /// Unix ms → monotonic ms, given that `now` is `unix_ms`.
    fn to_mono(t: u64, now: u64, unix_ms: u64) -> u64 {
        shift(t, unix_ms, now)
    }

    /// Writes the snapshot image into `buf` (at least
    /// [`SessionIn::snapshot_len`] bytes); `unix_ms` is the wall clock at
    /// monotonic `now`. Returns the image length.
    ///
    /// Errors: [`Error::BufferTooSmall`]; [`Error::WrongState`] while a token
    /// request is in flight (its outcome would be lost).
    ///
    /// Keeping the token across a reboot:
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
    /// # let mut out = [0u8; 512];
    /// # s.write_token_request(0, &mut out)?;
    /// # let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// # let mut head: HeadParser = HeadParser::new();
    /// # let n = head.feed(raw)?.unwrap();
    /// # let mut body = TokenBody::new();
    /// # s.on_token_head(0, head.head().unwrap(), &mut body)?;
    /// # s.on_token_body(0, &mut body, &raw[n..])?;
    /// let unix_ms = 1_796_619_600_000; // the wall clock when it is written
    /// let mut image = [0u8; 2048];
    /// let len = s.snapshot(100, unix_ms, &mut image)?;
    /// // ... stored in flash; the device reboots (a new monotonic clock) ...
    /// let mut again: Session = Session::new(&preset::AUTOTASK, &config, 8)?;
    /// again.restore(5, unix_ms + 60_000, &image[..len])?;
    /// assert!(matches!(again.authorize(5), Authorization::Send(_)));
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn snapshot(&self, now: u64, unix_ms: u64, buf: &mut [u8]) -> Result<usize> {
        let len = self.snapshot_len();
        if buf.len() < len {
            return Err(Error::buffer_too_small(len));
        }
        if self.st.phase != super::Phase::Idle {
            return Err(Error::WrongState);
        }
        let now = now.max(self.st.last_now);
        let img = buf.get_mut(..len).unwrap_or(&mut []);
        img.fill(0);
        put(img, 0, MAGIC);
        put(img, 4, &VERSION.to_le_bytes());
        put(img, 6, &(self.st.flags & (F_TOKEN | F_RT)).to_le_bytes());
        put(
            img,
            8,
            &u32::try_from(self.capacity()).unwrap_or(0).to_le_bytes(),
        );
        put(img, 12, &self.config_crc().to_le_bytes());
        put(img, 16, &unix_ms.to_le_bytes());
        let times = [
            self.st.expires_at,
            self.st.refresh_at,
            self.st.rt_expires_at,
            self.st.api_blocked_until,
            self.st.token_blocked_until,
            self.st.token_gcra.tat(),
            self.st.api_gcra.tat(),
        ];
        for (k, t) in times.into_iter().enumerate() {
            let at = TIMES_AT.saturating_add(k.saturating_mul(8));
            put(img, at, &Self::to_unix(t, now, unix_ms).to_le_bytes());
        }
        put(img, 80, &self.st.lifetime_s.to_le_bytes());
        put(img, 100, &self.st.shared_gen.to_le_bytes());
        let slot = self.slot_range(self.st.active);
        for (i, s) in self.st.spans.iter().enumerate() {
            let rel = usize::from(s.start).saturating_sub(slot.start);
            let rel = if s.len == 0 { 0 } else { rel };
            let at = 84usize.saturating_add(i.saturating_mul(4));
            put(img, at, &u16::try_from(rel).unwrap_or(0).to_le_bytes());
            put(img, at.saturating_add(2), &s.len.to_le_bytes());
        }
        if let Some(text) = self.arena.as_ref().get(slot) {
            put(img, SNAPSHOT_HEADER_LEN, text);
        }
        let crc = crc32(img.get(..CRC_AT).unwrap_or(&[]), 0);
        let crc = crc32(img.get(SNAPSHOT_HEADER_LEN..).unwrap_or(&[]), crc);
        put(img, CRC_AT, &crc.to_le_bytes());
        Ok(len)
    }

    /// Restores state from an image written by [`SessionIn::snapshot`] of a
    /// session with the same `N` and configuration; `unix_ms` is the wall
    /// clock at monotonic `now`.
    ///
    /// A wall clock that reads earlier than when the image was written (a
    /// device whose RTC lost power and restarted in the past) cannot say how
    /// much time went by: the restore then assumes none did, rather than
    /// shifting every deadline by the clock's error: so no deadline lies
    /// further ahead than it did when the image was written (a token expiry
    /// at most its lifetime). Server-imposed blocks are also cut to this
    /// session's [`Config::max_wait_s`](super::Config::max_wait_s).
    ///
    /// Errors, with the session left as it was:
    /// [`SnapshotError::Length`], [`SnapshotError::Corrupt`] (magic or
    /// checksum), [`SnapshotError::Version`], [`SnapshotError::Foreign`]
    /// (another arena size or configuration), [`SnapshotError::Expired`]
    /// (nothing in it is still usable), [`Error::WrongState`] while a token
    /// request is in flight. A failed restore changes nothing, not even the
    /// session's notion of the time.
    pub fn restore(&mut self, now: u64, unix_ms: u64, image: &[u8]) -> Result<()> {
        let err = |e| Err(Error::Snapshot(e));
        if image.len() != self.snapshot_len() {
            return err(SnapshotError::Length);
        }
        if self.st.phase != super::Phase::Idle {
            return Err(Error::WrongState);
        }
        if image.get(..4) != Some(&MAGIC[..]) {
            return err(SnapshotError::Corrupt);
        }
        let crc = crc32(image.get(..CRC_AT).unwrap_or(&[]), 0);
        let crc = crc32(image.get(SNAPSHOT_HEADER_LEN..).unwrap_or(&[]), crc);
        if u32::from_le_bytes(get(image, CRC_AT)) != crc {
            return err(SnapshotError::Corrupt);
        }
        if u16::from_le_bytes(get(image, 4)) != VERSION {
            return err(SnapshotError::Version);
        }
        if u32::from_le_bytes(get(image, 8)) != u32::try_from(self.capacity()).unwrap_or(0)
            || u32::from_le_bytes(get(image, 12)) != self.config_crc()
        {
            return err(SnapshotError::Foreign);
        }
        // Not `clock`: a failed restore must not move the clock guard.
        let now = now.max(self.st.last_now);
        let unix_ms = unix_ms.max(get_u64(image, 16));
        let m = |at: usize| Self::to_mono(get_u64(image, at), now, unix_ms);
        let cap = now.saturating_add(super::secs_to_ms(self.set.max_wait_s));
        let flags = u16::from_le_bytes(get(image, 6)) & (F_TOKEN | F_RT);
        let expires_at = m(24);
        let rt_expires_at = m(40);
        let token_ok = flags & F_TOKEN != 0 && now < expires_at;
        let rt_ok = flags & F_RT != 0 && now < rt_expires_at;
        if !token_ok && !rt_ok {
            return err(SnapshotError::Expired);
        }
        // Spans must lie within the text.
        let slot_len = usize::from(self.st.slot_len);
        let mut spans = [Span::default(); 4];
        for (i, s) in spans.iter_mut().enumerate() {
            let at = 84usize.saturating_add(i.saturating_mul(4));
            let start = u16::from_le_bytes(get(image, at));
            let len = u16::from_le_bytes(get(image, at.saturating_add(2)));
            if usize::from(start).saturating_add(usize::from(len)) > slot_len {
                return err(SnapshotError::Corrupt);
            }
            *s = Span { start, len };
        }
        // All checks passed: commit.
        let active = self.st.active;
        let slot = self.slot_range(active);
        if let (Some(d), Some(t)) = (
            self.arena.as_mut().get_mut(slot.clone()),
            image.get(SNAPSHOT_HEADER_LEN..),
        ) {
            crate::write::copy(d, t);
        }
        let other = self.slot_range(active ^ 1);
        self.wipe(other);
        let base = u16::try_from(slot.start).unwrap_or(0);
        for s in spans.iter_mut().filter(|s| s.len > 0) {
            s.start = s.start.saturating_add(base);
        }
        self.st.spans = spans;
        let mut f = flags;
        if !token_ok {
            f &= !F_TOKEN;
        }
        // The image holds a token, not a device authorization; an
        // authorization code that waited in the other slot was wiped with it.
        let gone = F_TOKEN | F_RT | super::F_DEVICE | super::F_CODE;
        self.st.flags = (self.st.flags & !gone) | f;
        self.st.expires_at = expires_at;
        self.st.refresh_at = m(32);
        self.st.rt_expires_at = rt_expires_at;
        self.st.api_blocked_until = m(48).min(cap);
        self.st.token_blocked_until = m(56).min(cap);
        self.st.token_gcra = super::Gcra::with_tat(m(64));
        self.st.api_gcra = super::Gcra::with_tat(m(72));
        self.st.lifetime_s = u32::from_le_bytes(get(image, 80));
        self.st.shared_gen = get_u64(image, 100);
        self.st.token_gen = self.st.token_gen.wrapping_add(1);
        self.st.failure = None;
        self.st.attempts = 0;
        self.st.retry_at = 0;
        self.set_wall_clock(now, unix_ms);
        Ok(())
    }
}

impl<A: Arena> SessionIn<A> {
    /// The generation of the shared state this session holds (issue #21):
    /// the number a store gave the image it adopted ([`SessionIn::adopt`])
    /// or saved last ([`SessionIn::set_shared_generation`]); 0 for none.
    /// Snapshots carry it, and restore brings it back. A worker that saves
    /// its state passes it to the store as the generation it builds on
    /// (compare-and-set).
    pub fn shared_generation(&self) -> u64 {
        self.st.shared_gen
    }

    /// Records that a store saved this session's snapshot as `generation`.
    pub fn set_shared_generation(&mut self, generation: u64) {
        self.st.shared_gen = generation;
    }

    /// Adopts a shared state: `image` is a snapshot another session with the
    /// same configuration and arena size wrote ([`SessionIn::snapshot`]), as
    /// a store returned it with its `generation`. Only a generation newer
    /// than [`SessionIn::shared_generation`] is taken, and then as
    /// [`SessionIn::restore`] takes an image (token, refresh token, expiry,
    /// rate-limit state and server blocks; same clock rules), keeping what
    /// is this session's own: its random stream and its configuration. A
    /// worker of a fleet calls it after loading the store, before deciding
    /// to fetch or refresh, and when a refresh it sent was rejected (a peer
    /// may have rotated the refresh token: the rejected one is never sent
    /// again either way).
    ///
    /// Returns [`Adopted::Newer`](super::Adopted::Newer), [`Adopted::NotNewer`](super::Adopted::NotNewer) (nothing changed) or
    /// [`Adopted::NothingUsable`](super::Adopted::NothingUsable) (a newer image whose tokens all expired:
    /// the generation is recorded, the rest kept).
    ///
    /// Errors, with the session unchanged: those of [`SessionIn::restore`]
    /// but [`SnapshotError::Expired`], among them [`Error::WrongState`] while
    /// this session's own token request is in flight (its outcome would be
    /// lost: adopt after it completes).
    pub fn adopt(
        &mut self,
        now: u64,
        unix_ms: u64,
        image: &[u8],
        generation: u64,
    ) -> Result<super::Adopted> {
        if generation <= self.st.shared_gen {
            return Ok(super::Adopted::NotNewer);
        }
        match self.restore(now, unix_ms, image) {
            Ok(()) => {
                self.st.shared_gen = generation;
                Ok(super::Adopted::Newer)
            }
            Err(Error::Snapshot(SnapshotError::Expired)) => {
                self.st.shared_gen = generation;
                Ok(super::Adopted::NothingUsable)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789", 0), 0xcbf4_3926);
        // Incremental use gives the same result.
        assert_eq!(crc32(b"56789", crc32(b"1234", 0)), 0xcbf4_3926);
    }
}
