//! The four providers. Each module owns its state (issued tokens, codes,
//! rate-limit counters) and answers requests already routed to it; this
//! module has what they share: the per-request context, the token store,
//! token text, and strict header checks.

use std::collections::{HashMap, HashSet};

use crate::config::{EmulatorConfig, RateLimit};
use crate::encoding::{base64url, hex, json_object, J};
use crate::fault::Fault;
use crate::http::{Request, Response};
use crate::rng::Rng;
use crate::sha256::sha256;

pub mod autotask;
pub mod fentu;
pub mod fieldnation;
pub mod patchworks;

/// What a provider handler gets besides the request.
pub(crate) struct Ctx<'a> {
    /// Wall-clock time of the request, epoch milliseconds.
    pub epoch_ms: u64,
    /// The seeded PRNG.
    pub rng: &'a mut Rng,
    /// The configuration.
    pub config: &'a EmulatorConfig,
    /// A `revoke-after` fault in scope: tokens die after this many API calls.
    pub revoke_after: Option<u32>,
    /// A `limit` fault in scope: overrides the API rate limit.
    pub api_limit: Option<RateLimit>,
    /// Faults that took effect (for the log).
    pub applied: Vec<Fault>,
    /// A remark for the log (why a request was refused, ...).
    pub note: Option<String>,
    /// The credential (access token or API key) an API request was
    /// authorized with, for the per-credential counters.
    pub credential: Option<String>,
    /// A retired refresh token was presented again.
    pub refresh_replay: bool,
    /// A grant was revoked whole (for the first time).
    pub grant_revoked: bool,
}

impl Ctx<'_> {
    /// Records why the request got the answer it got.
    pub fn note(&mut self, text: impl Into<String>) {
        self.note = Some(text.into());
    }

    /// Records that an API request was authorized with `credential`.
    pub fn authorized(&mut self, credential: &str) {
        self.credential = Some(credential.to_owned());
    }

    /// Epoch seconds.
    pub fn epoch_s(&self) -> u64 {
        self.epoch_ms / 1000
    }
}

/// What an issued credential is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Access,
    Refresh,
}

/// An issued access or refresh token.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// The client (or user) it was issued to.
    pub client: String,
    pub scopes: Vec<String>,
    pub expires_at_ms: Option<u64>,
    pub revoked: bool,
    /// Revoked because a newer refresh token replaced it (rotation).
    pub rotated: bool,
    /// API calls served with it.
    pub api_calls: u32,
    /// The authorization grant it belongs to (code → tokens → refreshed tokens).
    pub grant: u64,
}

/// The state of a presented token.
pub(crate) enum Lookup {
    Valid,
    Expired,
    Revoked,
    Unknown,
}

/// Issued tokens of one provider.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    pub tokens: HashMap<String, Token>,
    next_grant: u64,
    /// Grants revoked whole by [`TokenStore::revoke_grant`].
    revoked_grants: HashSet<u64>,
}

impl TokenStore {
    pub fn new_grant(&mut self) -> u64 {
        self.next_grant += 1;
        self.next_grant
    }

    pub fn insert(&mut self, text: String, token: Token) {
        self.tokens.insert(text, token);
    }

    pub fn lookup(&self, text: &str, kind: TokenKind, epoch_ms: u64) -> Lookup {
        match self.tokens.get(text) {
            Some(t) if t.kind != kind => Lookup::Unknown,
            Some(t) if t.revoked => Lookup::Revoked,
            Some(t) if t.expires_at_ms.is_some_and(|e| epoch_ms >= e) => Lookup::Expired,
            Some(_) => Lookup::Valid,
            None => Lookup::Unknown,
        }
    }

    /// Counts an API call on a valid access token; if a `revoke-after` fault
    /// is in force and the token has served that many calls, revokes it and
    /// returns `false`.
    pub fn use_for_api(&mut self, text: &str, ctx: &mut Ctx<'_>) -> bool {
        let Some(token) = self.tokens.get_mut(text) else {
            return false;
        };
        if let Some(n) = ctx.revoke_after {
            if token.api_calls >= n {
                token.revoked = true;
                ctx.applied.push(Fault::RevokeAfter(n));
                ctx.note(format!("token revoked server-side after {n} API calls"));
                return false;
            }
        }
        token.api_calls += 1;
        ctx.authorized(text);
        true
    }

    /// Revokes every token of `grant`; `true` the first time a grant is
    /// revoked this way (and records that in `ctx`).
    pub fn revoke_grant(&mut self, grant: u64, ctx: &mut Ctx<'_>) -> bool {
        for t in self.tokens.values_mut().filter(|t| t.grant == grant) {
            t.revoked = true;
        }
        let first = self.revoked_grants.insert(grant);
        ctx.grant_revoked |= first;
        first
    }

    /// Revokes everything.
    pub fn revoke_all(&mut self) {
        for t in self.tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Access tokens that are neither revoked nor expired.
    pub fn live_access_tokens(&self, epoch_ms: u64) -> usize {
        self.tokens
            .values()
            .filter(|t| {
                t.kind == TokenKind::Access
                    && !t.revoked
                    && t.expires_at_ms.is_none_or(|e| epoch_ms < e)
            })
            .count()
    }
}

/// An opaque token: `prefix` and 32 random bytes in base64url.
pub(crate) fn opaque_token(rng: &mut Rng, prefix: &str) -> String {
    format!("{prefix}{}", base64url(&rng.bytes(32)))
}

/// A JWT-shaped token (`header.payload.signature`, base64url) like the ones
/// in the Field Nation, Autotask and Patchworks documents. The signature is a
/// SHA-256 over the rest and random bytes: nobody verifies it.
pub(crate) fn jwt_token(
    rng: &mut Rng,
    header: &str,
    issuer: &str,
    subject: &str,
    iat_s: u64,
    exp_s: u64,
) -> String {
    let jti = hex(&rng.bytes(12));
    let payload = json_object(&[
        ("iss", J::Str(issuer)),
        ("sub", J::Str(subject)),
        ("iat", J::Int(iat_s as i64)),
        ("exp", J::Int(exp_s as i64)),
        ("jti", J::Str(&jti)),
    ]);
    let signing_input = format!(
        "{}.{}",
        base64url(header.as_bytes()),
        base64url(payload.as_bytes())
    );
    let mut key_material = rng.bytes(32);
    key_material.extend_from_slice(signing_input.as_bytes());
    format!("{signing_input}.{}", base64url(&sha256(&key_material)))
}

/// The single value of header `name`: `Err` if it appears more than once.
pub(crate) fn single_header<'r>(req: &'r Request, name: &str) -> Result<Option<&'r str>, String> {
    let mut values = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(format!("more than one {name} header"));
    }
    Ok(first)
}

/// Whether `Content-Type` is `media_type` (case-insensitive, parameters such
/// as `charset=utf-8` allowed).
pub(crate) fn content_type_is(req: &Request, media_type: &str) -> bool {
    let values: Vec<&str> = req.headers_named("content-type").collect();
    match values[..] {
        [value] => value
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(media_type)),
        _ => false,
    }
}

/// Whether `Accept` admits `application/json` (`application/json`,
/// `application/*` or `*/*`, with a non-zero `q`). `false` when absent.
pub(crate) fn accepts_json(req: &Request) -> bool {
    req.headers_named("accept")
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            !q_zero && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
        })
}

/// The token of an `Authorization: Bearer <token>` value (scheme
/// case-insensitive, RFC 6750 `b64token` characters), or `None`.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.chars().all(b64token) {
        return None;
    }
    Some(token)
}

/// Whether a body is a JSON object; returns it.
pub(crate) fn json_body(
    req: &Request,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if req.body.is_empty() {
        return Err("the request body is empty; a JSON object is required".to_owned());
    }
    let text = std::str::from_utf8(&req.body).map_err(|_| "the body is not UTF-8".to_owned())?;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("the body must be a JSON object".to_owned()),
        Err(e) => Err(format!("the body is not valid JSON: {e}")),
    }
}

/// A string member of a JSON object: `Ok(None)` if absent, `Err` if present
/// with another type.
pub(crate) fn json_str<'m>(
    map: &'m serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<&'m str>, String> {
    match map.get(name) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

/// The form body of a request (UTF-8, strictly decoded, no repeated
/// parameter).
pub(crate) fn form_body(req: &Request) -> Result<crate::encoding::Params, String> {
    let text = std::str::from_utf8(&req.body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let params = crate::encoding::Params::parse(text)
        .map_err(|e| format!("the form body is malformed: {e}"))?;
    if let Some(dup) = params.first_duplicate() {
        return Err(format!("parameter `{dup}` appears more than once"));
    }
    Ok(params)
}

/// The decoded query string of a request (no repeated parameter).
pub(crate) fn query_params(req: &Request) -> Result<crate::encoding::Params, String> {
    let params = crate::encoding::Params::parse(req.query().unwrap_or(""))
        .map_err(|e| format!("the query string is malformed: {e}"))?;
    if let Some(dup) = params.first_duplicate() {
        return Err(format!("query parameter `{dup}` appears more than once"));
    }
    Ok(params)
}

/// Headers every token response carries (RFC 6749 §5.1).
pub(crate) fn no_store(resp: Response) -> Response {
    resp.with_header("Cache-Control", "no-store")
        .with_header("Pragma", "no-cache")
}

/// A `405` with `Allow`.
pub(crate) fn method_not_allowed(allow: &str, body: String) -> Response {
    Response::json(405, body).with_header("Allow", allow)
}

/// An RFC 6749 error body without `status` (Field Nation, Autotask).
pub(crate) fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(
        status,
        json_object(&[
            ("error", J::Str(error)),
            ("error_description", J::Str(description)),
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc.DEF-_~+/="), Some("abc.DEF-_~+/="));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer  abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn accept_and_content_type() {
        let r = Request::post("/").with_header("Accept", "text/html, application/json;q=0.9");
        assert!(accepts_json(&r));
        let r = Request::post("/").with_header("Accept", "application/json;q=0");
        assert!(!accepts_json(&r));
        assert!(!accepts_json(&Request::post("/")));
        let r = Request::post("/").with_header("Content-Type", "Application/JSON; charset=utf-8");
        assert!(content_type_is(&r, "application/json"));
        let r = r.with_header("Content-Type", "application/json");
        assert!(!content_type_is(&r, "application/json"));
    }
}
