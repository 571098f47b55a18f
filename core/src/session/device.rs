//! The device flow (RFC 8628): what to show the user while the session polls.

use super::{Arena, DeviceDisplay, SessionIn, F_DEVICE};

impl<A: Arena> SessionIn<A> {
    /// Device mode: what to show the user while the session polls.
    pub fn device_display(&self) -> Option<DeviceDisplay<'_>> {
        if !self.has(F_DEVICE) {
            return None;
        }
        let complete = self.active_text(3);
        Some(DeviceDisplay {
            user_code: self.active_text(1),
            verification_uri: self.active_text(2),
            verification_uri_complete: (!complete.is_empty()).then_some(complete),
            expires_at: self.st.expires_at,
        })
    }
}
