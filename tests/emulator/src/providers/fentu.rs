//! Fentu FSM (`/fentu`): API keys as `Authorization: Bearer`, OAuth 2.0
//! authorization code (+ PKCE), refresh tokens, revocation with
//! `Authorization: Bearer`, scopes, and hourly rate limits with
//! `X-RateLimit-*` headers (Reset in epoch seconds).
//!
//! Every error body has the documented shape
//! `{"error":..,"error_description":..,"status":..}`.

use std::collections::HashMap;

use crate::config::{EndpointKind, OAuthClient, RateWindow, FENTU_SCOPES};
use crate::data;
use crate::encoding::{base64_decode, base64url, encode_component, json_object, Params, J};
use crate::fault::Fault;
use crate::http::{Request, Response};
use crate::providers::{
    bearer_token, content_type_is, form_body, no_store, opaque_token, query_params, single_header,
    Ctx, Lookup, Token, TokenKind, TokenStore,
};
use crate::ratelimit::Limiter;
use crate::sha256::sha256;

const REALM: &str = "Fentu FSM";

/// The documented error body.
pub(crate) fn error(status: u16, error: &str, description: &str) -> Response {
    Response::json(
        status,
        json_object(&[
            ("error", J::Str(error)),
            ("error_description", J::Str(description)),
            ("status", J::Int(i64::from(status))),
        ]),
    )
}

/// The documented 401: `{"error":"unauthorized","error_description":"Invalid or expired token","status":401}`.
pub(crate) fn unauthorized() -> Response {
    error(401, "unauthorized", "Invalid or expired token").with_header(
        "WWW-Authenticate",
        &format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"Invalid or expired token\""
        ),
    )
}

/// The body of an injected or real 429 / 503.
pub(crate) fn fault_response(status: u16, retry_after_s: u32) -> Response {
    let resp = if status == 429 {
        error(429, "rate_limit_exceeded", "Rate limit exceeded")
    } else {
        error(
            503,
            "temporarily_unavailable",
            "The service is temporarily unavailable",
        )
    };
    resp.with_header("Retry-After", &retry_after_s.to_string())
}

/// A 404 for an unknown path under `/fentu`.
pub(crate) fn not_found(path: &str) -> Response {
    error(404, "not_found", &format!("No such endpoint: {path}"))
}

/// Which endpoint a path under `/fentu` is.
pub(crate) fn classify(path: &str) -> Option<EndpointKind> {
    match path {
        "/oauth/authorize" => Some(EndpointKind::Authorize),
        "/oauth/token" => Some(EndpointKind::Token),
        "/oauth/revoke" => Some(EndpointKind::Revoke),
        _ => resource(path).map(|_| EndpointKind::Api),
    }
}

/// An API resource: collection name and optional id.
fn resource(path: &str) -> Option<(&'static str, Option<&str>)> {
    let rest = path.strip_prefix("/v1/")?;
    let (name, id) = match rest.split_once('/') {
        Some((n, id)) if !id.is_empty() && !id.contains('/') => (n, Some(id)),
        Some(_) => return None,
        None => (rest, None),
    };
    let name = ["work-orders", "customers", "assets"]
        .into_iter()
        .find(|n| *n == name)?;
    Some((name, id))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChallengeMethod {
    S256,
    Plain,
}

#[derive(Clone, Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    challenge: Option<(String, ChallengeMethod)>,
    expires_at_ms: u64,
    used: bool,
    grant: u64,
}

/// Fentu's server-side state.
#[derive(Debug, Default)]
pub(crate) struct Fentu {
    pub tokens: TokenStore,
    codes: HashMap<String, Code>,
    limiter: Limiter,
}

/// The RFC 7636 check of a `code_verifier` against a stored challenge.
fn pkce_matches(verifier: &str, challenge: &str, method: ChallengeMethod) -> bool {
    match method {
        ChallengeMethod::S256 => base64url(&sha256(verifier.as_bytes())) == challenge,
        ChallengeMethod::Plain => verifier == challenge,
    }
}

/// RFC 7636 §4.1/§4.2: 43..=128 characters of `[A-Za-z0-9-._~]`.
fn valid_pkce_text(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An absolute URI without a fragment (`scheme:...`).
fn valid_redirect_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !uri.contains('#')
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Parses a space-separated scope list against the documented scopes.
fn parse_scopes(scope: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ') {
        if s.is_empty() {
            return Err("scope must be scope tokens separated by single spaces".to_owned());
        }
        if !FENTU_SCOPES.contains(&s) {
            return Err(format!("unknown scope `{s}`"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

impl Fentu {
    pub fn handle(
        &mut self,
        ctx: &mut Ctx<'_>,
        endpoint: EndpointKind,
        path: &str,
        req: &Request,
    ) -> Response {
        match endpoint {
            EndpointKind::Authorize => self.authorize(ctx, req),
            EndpointKind::Token => self.token(ctx, req),
            EndpointKind::Revoke => self.revoke(ctx, req),
            EndpointKind::Api => self.api(ctx, path, req),
        }
    }

    // ------------------------------------------------------------ authorize

    fn authorize(&mut self, ctx: &mut Ctx<'_>, req: &Request) -> Response {
        if req.method != "GET" {
            return error(405, "invalid_request", "Use GET for /oauth/authorize")
                .with_header("Allow", "GET");
        }
        let params = match query_params(req) {
            Ok(p) => p,
            Err(e) => {
                ctx.note(e.clone());
                return error(400, "invalid_request", &e);
            }
        };
        let get = |n: &str| params.unique(n).ok().flatten();
        // Errors before the redirect URI is trusted are shown, not redirected
        // (RFC 6749 §4.1.2.1).
        let Some(client_id) = get("client_id") else {
            ctx.note("authorize without client_id");
            return error(400, "invalid_request", "client_id is required");
        };
        let Some(client) = ctx
            .config
            .fentu
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
        else {
            ctx.note(format!("unknown client_id `{client_id}`"));
            return error(400, "invalid_client", "Unknown client_id");
        };
        let Some(redirect_uri) = get("redirect_uri") else {
            ctx.note("authorize without redirect_uri");
            return error(400, "invalid_request", "redirect_uri is required");
        };
        let registered = if client.redirect_uris.is_empty() {
            valid_redirect_uri(redirect_uri)
        } else {
            client.redirect_uris.iter().any(|u| u == redirect_uri)
        };
        if !registered {
            ctx.note(format!("redirect_uri `{redirect_uri}` refused"));
            return error(
                400,
                "invalid_request",
                "redirect_uri is not a registered redirect URI",
            );
        }
        let state = get("state");
        let redirect_error = |error: &str, description: &str| {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(s) = state {
                pairs.push(("state", s));
            }
            redirect(redirect_uri, &pairs)
        };
        match get("response_type") {
            Some("code") => {}
            Some(other) => {
                ctx.note(format!("response_type `{other}`"));
                return redirect_error(
                    "unsupported_response_type",
                    "Only response_type=code is supported",
                );
            }
            None => {
                ctx.note("authorize without response_type");
                return redirect_error("invalid_request", "response_type is required");
            }
        }
        let scopes = match get("scope").map(parse_scopes) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                ctx.note(e.clone());
                return redirect_error("invalid_scope", &e);
            }
            None => {
                ctx.note("authorize without scope");
                return redirect_error("invalid_scope", "scope is required");
            }
        };
        let challenge = match (get("code_challenge"), get("code_challenge_method")) {
            (None, None) => None,
            (None, Some(_)) => {
                ctx.note("code_challenge_method without code_challenge");
                return redirect_error(
                    "invalid_request",
                    "code_challenge_method given without code_challenge",
                );
            }
            (Some(c), method) => {
                let method = match method {
                    None | Some("plain") => ChallengeMethod::Plain,
                    Some("S256") => ChallengeMethod::S256,
                    Some(other) => {
                        ctx.note(format!("code_challenge_method `{other}`"));
                        return redirect_error(
                            "invalid_request",
                            "transform algorithm not supported",
                        );
                    }
                };
                if !valid_pkce_text(c) {
                    ctx.note("malformed code_challenge");
                    return redirect_error(
                        "invalid_request",
                        "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]",
                    );
                }
                Some((c.to_owned(), method))
            }
        };
        if client.client_secret.is_none() && challenge.is_none() {
            ctx.note("public client without PKCE");
            return redirect_error(
                "invalid_request",
                "PKCE (code_challenge) is required for public clients",
            );
        }
        let code = opaque_token(ctx.rng, "fentu_code_");
        let grant = self.tokens.new_grant();
        self.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                scopes,
                challenge,
                expires_at_ms: ctx.epoch_ms + u64::from(ctx.config.fentu.code_lifetime_s) * 1000,
                used: false,
                grant,
            },
        );
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        ctx.note("auto-approved");
        redirect(redirect_uri, &pairs)
    }

    // ------------------------------------------------------------ token

    fn token(&mut self, ctx: &mut Ctx<'_>, req: &Request) -> Response {
        if req.method != "POST" {
            return error(405, "invalid_request", "Use POST for /oauth/token")
                .with_header("Allow", "POST");
        }
        if !content_type_is(req, "application/x-www-form-urlencoded") {
            ctx.note("token request without a form Content-Type");
            return no_store(error(
                400,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        let params = match form_body(req) {
            Ok(p) => p,
            Err(e) => {
                ctx.note(e.clone());
                return no_store(error(400, "invalid_request", &e));
            }
        };
        let client = match authenticate_client(ctx, req, &params) {
            Ok(c) => c,
            Err(resp) => return no_store(resp),
        };
        let grant_type = params.unique("grant_type").ok().flatten();
        let resp = match grant_type {
            Some("authorization_code") => self.code_grant(ctx, &client, &params),
            Some("refresh_token") => self.refresh_grant(ctx, &client, &params),
            Some(other) => {
                ctx.note(format!("grant_type `{other}`"));
                error(
                    400,
                    "unsupported_grant_type",
                    "Supported grant types: authorization_code, refresh_token",
                )
            }
            None => {
                ctx.note("token request without grant_type");
                error(400, "invalid_request", "grant_type is required")
            }
        };
        no_store(resp)
    }

    fn code_grant(&mut self, ctx: &mut Ctx<'_>, client: &OAuthClient, params: &Params) -> Response {
        let get = |n: &str| params.unique(n).ok().flatten();
        let Some(code_text) = get("code") else {
            ctx.note("authorization_code grant without code");
            return error(400, "invalid_request", "code is required");
        };
        let Some(code) = self.codes.get_mut(code_text) else {
            ctx.note("unknown authorization code");
            return error(400, "invalid_grant", "The authorization code is invalid");
        };
        if code.used {
            // RFC 6749 §4.1.2: a code used twice revokes what it produced.
            let grant = code.grant;
            self.tokens.revoke_grant(grant, ctx);
            ctx.note("authorization code replayed: its tokens are revoked");
            return error(
                400,
                "invalid_grant",
                "The authorization code has already been used",
            );
        }
        if ctx.epoch_ms >= code.expires_at_ms {
            ctx.note("authorization code expired");
            return error(400, "invalid_grant", "The authorization code has expired");
        }
        if code.client_id != client.client_id {
            ctx.note("authorization code of another client");
            return error(
                400,
                "invalid_grant",
                "The authorization code was issued to another client",
            );
        }
        match get("redirect_uri") {
            Some(uri) if uri == code.redirect_uri => {}
            Some(_) => {
                ctx.note("redirect_uri differs from the authorization request");
                return error(
                    400,
                    "invalid_grant",
                    "redirect_uri does not match the authorization request",
                );
            }
            None => {
                ctx.note("authorization_code grant without redirect_uri");
                return error(400, "invalid_request", "redirect_uri is required");
            }
        }
        match (&code.challenge, get("code_verifier")) {
            (None, None) => {}
            (None, Some(_)) => {
                ctx.note("code_verifier without a code_challenge");
                return error(
                    400,
                    "invalid_request",
                    "code_verifier given but the authorization request had no code_challenge",
                );
            }
            (Some(_), None) => {
                ctx.note("PKCE code_verifier missing");
                return error(400, "invalid_request", "code_verifier is required");
            }
            (Some((challenge, method)), Some(verifier)) => {
                if !valid_pkce_text(verifier) {
                    ctx.note("malformed code_verifier");
                    return error(
                        400,
                        "invalid_request",
                        "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
                    );
                }
                if !pkce_matches(verifier, challenge, *method) {
                    ctx.note("PKCE verification failed");
                    return error(400, "invalid_grant", "PKCE verification failed");
                }
            }
        }
        code.used = true;
        let (grant, scopes, client_id) = (code.grant, code.scopes.clone(), code.client_id.clone());
        ctx.note("code exchanged");
        self.issue(ctx, &client_id, scopes, grant, true)
    }

    fn refresh_grant(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: &OAuthClient,
        params: &Params,
    ) -> Response {
        let get = |n: &str| params.unique(n).ok().flatten();
        let Some(refresh) = get("refresh_token") else {
            ctx.note("refresh_token grant without refresh_token");
            return error(400, "invalid_request", "refresh_token is required");
        };
        let token = match self
            .tokens
            .lookup(refresh, TokenKind::Refresh, ctx.epoch_ms)
        {
            Lookup::Valid => self.tokens.tokens[refresh].clone(),
            Lookup::Expired => {
                ctx.note("refresh token expired");
                return error(400, "invalid_grant", "The refresh token has expired");
            }
            Lookup::Revoked => {
                let old = &self.tokens.tokens[refresh];
                if old.rotated {
                    let grant = old.grant;
                    ctx.refresh_replay = true;
                    self.tokens.revoke_grant(grant, ctx);
                    ctx.note("rotated refresh token replayed: the whole grant is revoked");
                } else {
                    ctx.note("refresh token revoked");
                }
                return error(400, "invalid_grant", "The refresh token is invalid");
            }
            Lookup::Unknown => {
                ctx.note("unknown refresh token");
                return error(400, "invalid_grant", "The refresh token is invalid");
            }
        };
        if token.client != client.client_id {
            ctx.note("refresh token of another client");
            return error(
                400,
                "invalid_grant",
                "The refresh token was issued to another client",
            );
        }
        let scopes = match get("scope") {
            None => token.scopes.clone(),
            Some(s) => match parse_scopes(s) {
                Ok(asked) if asked.iter().all(|a| token.scopes.contains(a)) => asked,
                Ok(_) => {
                    ctx.note("refresh asked for more scope than granted");
                    return error(
                        400,
                        "invalid_scope",
                        "The requested scope exceeds the scope granted",
                    );
                }
                Err(e) => {
                    ctx.note(e.clone());
                    return error(400, "invalid_scope", &e);
                }
            },
        };
        let rotate = ctx.config.fentu.rotate_refresh_tokens;
        if rotate {
            if let Some(old) = self.tokens.tokens.get_mut(refresh) {
                old.revoked = true;
                old.rotated = true;
            }
        }
        ctx.note(if rotate {
            "refreshed (rotated)"
        } else {
            "refreshed"
        });
        self.issue(ctx, &token.client, scopes, token.grant, rotate)
    }

    /// Issues an access token (and a refresh token if `with_refresh`).
    fn issue(
        &mut self,
        ctx: &mut Ctx<'_>,
        client_id: &str,
        scopes: Vec<String>,
        grant: u64,
        with_refresh: bool,
    ) -> Response {
        let lifetime = ctx.config.token_lifetime(crate::Provider::Fentu);
        let access = opaque_token(ctx.rng, "fentu_at_");
        let scope_text = scopes.join(" ");
        self.tokens.insert(
            access.clone(),
            Token {
                kind: TokenKind::Access,
                client: client_id.to_owned(),
                scopes: scopes.clone(),
                expires_at_ms: Some(ctx.epoch_ms + u64::from(lifetime) * 1000),
                revoked: false,
                rotated: false,
                api_calls: 0,
                grant,
            },
        );
        let mut members = vec![
            ("access_token", J::Str(&access)),
            ("token_type", J::Str("Bearer")),
            ("expires_in", J::Int(i64::from(lifetime))),
        ];
        let refresh;
        if with_refresh {
            refresh = opaque_token(ctx.rng, "fentu_rt_");
            self.tokens.insert(
                refresh.clone(),
                Token {
                    kind: TokenKind::Refresh,
                    client: client_id.to_owned(),
                    scopes,
                    expires_at_ms: Some(
                        ctx.epoch_ms + u64::from(ctx.config.fentu.refresh_lifetime_s) * 1000,
                    ),
                    revoked: false,
                    rotated: false,
                    api_calls: 0,
                    grant,
                },
            );
            members.push(("refresh_token", J::Str(&refresh)));
        }
        members.push(("scope", J::Str(&scope_text)));
        Response::json(200, json_object(&members))
    }

    // ------------------------------------------------------------ revoke

    fn revoke(&mut self, ctx: &mut Ctx<'_>, req: &Request) -> Response {
        if req.method != "POST" {
            return error(405, "invalid_request", "Use POST for /oauth/revoke")
                .with_header("Allow", "POST");
        }
        if !req.body.is_empty() {
            ctx.note("revocation request with a body");
            return error(
                400,
                "invalid_request",
                "POST /oauth/revoke takes no body: send the token as Authorization: Bearer",
            );
        }
        let token = match single_header(req, "authorization") {
            Err(e) => {
                ctx.note(e.clone());
                return error(400, "invalid_request", &e);
            }
            Ok(None) => {
                ctx.note("revocation without Authorization");
                return unauthorized();
            }
            Ok(Some(v)) => match bearer_token(v) {
                Some(t) => t,
                None => {
                    ctx.note("Authorization is not `Bearer <token>`");
                    return unauthorized();
                }
            },
        };
        if ctx.config.fentu.api_keys.iter().any(|k| k.key == token) {
            ctx.note("attempt to revoke an API key");
            return error(
                400,
                "unsupported_token_type",
                "API keys are revoked in Administration > Integrations > API",
            );
        }
        let Some(found) = self.tokens.tokens.get_mut(token) else {
            ctx.note("unknown token");
            return unauthorized();
        };
        found.revoked = true;
        if found.kind == TokenKind::Refresh {
            // RFC 7009 §2.1: revoking a refresh token revokes its access tokens.
            let grant = found.grant;
            self.tokens.revoke_grant(grant, ctx);
            ctx.note("refresh token revoked with its access tokens");
        } else {
            ctx.note("access token revoked");
        }
        Response::new(200)
    }

    // ------------------------------------------------------------ API

    fn api(&mut self, ctx: &mut Ctx<'_>, path: &str, req: &Request) -> Response {
        let credential = match single_header(req, "authorization") {
            Err(e) => {
                ctx.note(e.clone());
                return error(400, "invalid_request", &e);
            }
            Ok(None) => {
                ctx.note("no Authorization header");
                return unauthorized();
            }
            Ok(Some(v)) => match bearer_token(v) {
                Some(t) => t,
                None => {
                    ctx.note("Authorization is not `Bearer <token>`");
                    return unauthorized();
                }
            },
        };
        // Who is calling, what they may do, and whose hourly budget it uses.
        let (scopes, account) = if let Some(key) = ctx
            .config
            .fentu
            .api_keys
            .iter()
            .find(|k| k.key == credential)
        {
            ctx.authorized(&key.key);
            (key.scopes.clone(), format!("key:{}", key.key))
        } else {
            match self
                .tokens
                .lookup(credential, TokenKind::Access, ctx.epoch_ms)
            {
                Lookup::Valid => {
                    if !self.tokens.use_for_api(credential, ctx) {
                        return unauthorized();
                    }
                    let t = &self.tokens.tokens[credential];
                    (t.scopes.clone(), format!("client:{}", t.client))
                }
                Lookup::Expired => {
                    ctx.note("access token expired");
                    return unauthorized();
                }
                Lookup::Revoked => {
                    ctx.note("access token revoked");
                    return unauthorized();
                }
                Lookup::Unknown => {
                    ctx.note("unknown API key or token");
                    return unauthorized();
                }
            }
        };
        let limit = ctx.api_limit.or(ctx.config.fentu.tier.limit());
        let mut rate_headers = Vec::new();
        if let Some(limit) = limit {
            let d = self
                .limiter
                .check(&account, limit, RateWindow::Fixed, ctx.epoch_ms);
            rate_headers.push(("X-RateLimit-Limit", d.limit.to_string()));
            rate_headers.push(("X-RateLimit-Remaining", d.remaining.to_string()));
            rate_headers.push(("X-RateLimit-Reset", d.reset_epoch_s.to_string()));
            if !d.allowed {
                if let Some(l) = ctx.api_limit {
                    ctx.applied.push(Fault::ApiLimit(l));
                }
                ctx.note(format!(
                    "over {} requests per {} s",
                    limit.requests, limit.window_s
                ));
                let mut resp = error(429, "rate_limit_exceeded", "Rate limit exceeded");
                for (n, v) in rate_headers {
                    resp.push_header(n, v);
                }
                resp.push_header("Retry-After", d.retry_after_s.to_string());
                return resp;
            }
        }
        let mut resp = self.resource(ctx, path, req, &scopes);
        for (n, v) in rate_headers {
            resp.push_header(n, v);
        }
        resp
    }

    fn resource(
        &mut self,
        ctx: &mut Ctx<'_>,
        path: &str,
        req: &Request,
        scopes: &[String],
    ) -> Response {
        let Some((name, id)) = resource(path) else {
            return not_found(path);
        };
        let (array, singular) = match name {
            "work-orders" => (data::FENTU_WORK_ORDERS, "Work order"),
            "customers" => (data::FENTU_CUSTOMERS, "Customer"),
            _ => (data::FENTU_ASSETS, "Asset"),
        };
        let write = match (req.method.as_str(), id) {
            ("GET", _) => false,
            ("POST", None) => true,
            _ => {
                let allow = if id.is_some() { "GET" } else { "GET, POST" };
                return error(
                    405,
                    "method_not_allowed",
                    &format!("{} is not allowed here", req.method),
                )
                .with_header("Allow", allow);
            }
        };
        let needed = format!("{}:{name}", if write { "write" } else { "read" });
        if !scopes.iter().any(|s| *s == needed || s == "admin") {
            ctx.note(format!("token lacks scope {needed}"));
            return error(
                403,
                "insufficient_scope",
                &format!("Insufficient permissions: this request needs the {needed} scope"),
            )
            .with_header(
                "WWW-Authenticate",
                &format!(
                    "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{needed}\""
                ),
            );
        }
        if write {
            if !content_type_is(req, "application/json") {
                return error(
                    400,
                    "invalid_request",
                    "Content-Type must be application/json",
                );
            }
            let body = match crate::providers::json_body(req) {
                Ok(b) => b,
                Err(e) => return error(400, "invalid_request", &e),
            };
            let mut record = serde_json::Map::new();
            record.insert(
                "id".to_owned(),
                serde_json::Value::String(format!("WO-{}", 2000 + ctx.rng.next_u64() % 1000)),
            );
            record.extend(body);
            let body = serde_json::json!({ "data": record });
            return Response::json(201, body.to_string());
        }
        match id {
            None => Response::json(
                200,
                format!(
                    "{{\"data\":{array},\"meta\":{{\"total\":{},\"page\":1,\"per_page\":25}}}}",
                    data::count(array)
                ),
            ),
            Some(id) => match data::find_by_id(array, id) {
                Some(item) => Response::json(200, serde_json::json!({ "data": item }).to_string()),
                None => error(404, "not_found", &format!("{singular} {id} not found")),
            },
        }
    }
}

/// Client authentication at the token endpoint: `client_id` +
/// `client_secret` in the body (as the document shows) or HTTP Basic
/// (RFC 6749 §2.3.1), not both.
fn authenticate_client(
    ctx: &mut Ctx<'_>,
    req: &Request,
    params: &Params,
) -> Result<OAuthClient, Response> {
    let invalid = |basic: bool| {
        let resp = error(401, "invalid_client", "Client authentication failed");
        if basic {
            resp.with_header("WWW-Authenticate", &format!("Basic realm=\"{REALM}\""))
        } else {
            resp
        }
    };
    let authorization =
        single_header(req, "authorization").map_err(|e| error(400, "invalid_request", &e))?;
    let body_id = params.unique("client_id").ok().flatten();
    let body_secret = params.unique("client_secret").ok().flatten();
    let (id, secret, basic) = match authorization {
        Some(value) => {
            let Some(encoded) = value
                .split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
                .map(|(_, e)| e.trim())
            else {
                ctx.note("token endpoint Authorization is not Basic");
                return Err(invalid(true));
            };
            let decoded = base64_decode(encoded)
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|d| {
                    let (i, s) = d.split_once(':')?;
                    Some((
                        crate::encoding::decode_component(i).ok()?,
                        crate::encoding::decode_component(s).ok()?,
                    ))
                });
            let Some((id, secret)) = decoded else {
                ctx.note("malformed HTTP Basic credentials");
                return Err(invalid(true));
            };
            if body_secret.is_some() {
                ctx.note("client authenticated twice (Basic and body)");
                return Err(error(
                    400,
                    "invalid_request",
                    "Use one client authentication method, not Basic and client_secret together",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                ctx.note("client_id in the body differs from Basic");
                return Err(invalid(true));
            }
            (id, Some(secret), true)
        }
        None => {
            let Some(id) = body_id else {
                ctx.note("token request without client_id");
                return Err(invalid(false));
            };
            (id.to_owned(), body_secret.map(str::to_owned), false)
        }
    };
    let Some(client) = ctx.config.fentu.clients.iter().find(|c| c.client_id == id) else {
        ctx.note(format!("unknown client_id `{id}`"));
        return Err(invalid(basic));
    };
    let ok = match (&client.client_secret, &secret) {
        (Some(expected), Some(given)) => expected == given,
        (None, None) => true,
        _ => false,
    };
    if !ok {
        ctx.note("wrong client_secret");
        return Err(invalid(basic));
    }
    Ok(client.clone())
}

/// `302 Found` to `uri` with `pairs` added to its query.
fn redirect(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let query = pairs
        .iter()
        .map(|(n, v)| format!("{n}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&");
    let sep = if uri.contains('?') { '&' } else { '?' };
    Response::new(302)
        .with_header("Location", &format!("{uri}{sep}{query}"))
        .with_header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(base64url(&sha256(verifier.as_bytes())), challenge);
        assert!(pkce_matches(verifier, challenge, ChallengeMethod::S256));
        assert!(!pkce_matches(challenge, challenge, ChallengeMethod::S256));
        assert!(pkce_matches(verifier, verifier, ChallengeMethod::Plain));
        assert!(valid_pkce_text(verifier));
        assert!(!valid_pkce_text("short"));
    }

    #[test]
    fn scopes_and_redirects() {
        assert_eq!(
            parse_scopes("read:work-orders write:work-orders").unwrap(),
            vec!["read:work-orders", "write:work-orders"]
        );
        assert!(parse_scopes("read:work-orders  admin").is_err());
        assert!(parse_scopes("read:everything").is_err());
        assert!(valid_redirect_uri("http://127.0.0.1:9000/cb"));
        assert!(valid_redirect_uri("com.example.app:/oauth"));
        assert!(!valid_redirect_uri("/relative"));
        assert!(!valid_redirect_uri("http://x/cb#frag"));
        assert!(!valid_redirect_uri("YOUR_REDIRECT"));
        assert_eq!(
            redirect("http://x/cb?a=1", &[("code", "c"), ("state", "s t")]).header("Location"),
            Some("http://x/cb?a=1&code=c&state=s+t")
        );
        assert_eq!(classify("/v1/work-orders"), Some(EndpointKind::Api));
        assert_eq!(classify("/v1/work-orders/WO-1"), Some(EndpointKind::Api));
        assert_eq!(classify("/v1/work-orders/"), None);
        assert_eq!(classify("/v1/widgets"), None);
    }
}
