//! Shared fixtures for the fieldauth benchmarks (see `benches/parse.rs`).

/// A realistic 1,158-byte token response: a 900-character RS256 JWT, a
/// refresh token, `expires_in` and a four-entry scope.
pub const TOKEN_RESPONSE_1K1: &[u8] = include_bytes!("../fixtures/token_response_1k1.json");
