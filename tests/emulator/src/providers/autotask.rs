//! Autotask (`/autotask`): client_credentials with a form body at
//! `/ATServicesRest/oauth/token` (10 requests/minute), `Authorization: Bearer`
//! on `/ATServicesRest/V1.0/...` (600 requests/minute per token), 1-hour
//! JWT-shaped tokens, `400 invalid_client` for bad credentials.

use crate::config::EndpointKind;
use crate::data;
use crate::encoding::{json_object, J};
use crate::fault::Fault;
use crate::http::{Request, Response};
use crate::providers::{
    bearer_token, content_type_is, form_body, jwt_token, method_not_allowed, no_store, oauth_error,
    single_header, Ctx, Lookup, Token, TokenKind, TokenStore,
};
use crate::ratelimit::Limiter;

/// The documented 401 for an expired token.
pub(crate) fn expired() -> Response {
    oauth_error(401, "invalid_token", "The access token has expired").with_header(
        "WWW-Authenticate",
        "Bearer realm=\"Autotask\", error=\"invalid_token\"",
    )
}

/// A 401 for a missing, malformed, unknown or revoked token.
pub(crate) fn invalid() -> Response {
    oauth_error(401, "invalid_token", "The access token is invalid").with_header(
        "WWW-Authenticate",
        "Bearer realm=\"Autotask\", error=\"invalid_token\"",
    )
}

/// The body of an injected or real 429 / 503.
pub(crate) fn fault_response(status: u16, retry_after_s: u32) -> Response {
    let resp = if status == 429 {
        oauth_error(429, "rate_limit_exceeded", "Too many requests")
    } else {
        oauth_error(
            503,
            "temporarily_unavailable",
            "The service is temporarily unavailable",
        )
    };
    resp.with_header("Retry-After", &retry_after_s.to_string())
}

/// A 404 for an unknown path under `/autotask`.
pub(crate) fn not_found(path: &str) -> Response {
    oauth_error(404, "not_found", &format!("No such endpoint: {path}"))
}

/// Which endpoint a path under `/autotask` is.
pub(crate) fn classify(path: &str) -> Option<EndpointKind> {
    if path == "/ATServicesRest/oauth/token" {
        return Some(EndpointKind::Token);
    }
    entity(path).map(|_| EndpointKind::Api)
}

/// An entity collection (`Companies`, `Tickets`) and optional id.
fn entity(path: &str) -> Option<(&'static str, Option<&str>)> {
    let rest = path.strip_prefix("/ATServicesRest/V1.0/")?;
    let (name, id) = match rest.split_once('/') {
        Some((n, id)) if !id.is_empty() && !id.contains('/') => (n, Some(id)),
        Some(_) => return None,
        None => (rest, None),
    };
    let name = ["Companies", "Tickets"].into_iter().find(|n| *n == name)?;
    Some((name, id))
}

/// Autotask's server-side state.
#[derive(Debug, Default)]
pub(crate) struct Autotask {
    pub tokens: TokenStore,
    token_limiter: Limiter,
    api_limiter: Limiter,
}

impl Autotask {
    pub fn handle(
        &mut self,
        ctx: &mut Ctx<'_>,
        endpoint: EndpointKind,
        path: &str,
        req: &Request,
    ) -> Response {
        match endpoint {
            EndpointKind::Token => no_store(self.token(ctx, req)),
            _ => self.api(ctx, path, req),
        }
    }

    fn token(&mut self, ctx: &mut Ctx<'_>, req: &Request) -> Response {
        if req.method != "POST" {
            return method_not_allowed(
                "POST",
                json_object(&[
                    ("error", J::Str("invalid_request")),
                    ("error_description", J::Str("Use POST")),
                ]),
            );
        }
        // Every request to the token endpoint counts, good or bad, per
        // client_id as sent.
        let form = if content_type_is(req, "application/x-www-form-urlencoded") {
            Some(form_body(req))
        } else {
            None
        };
        let key = match &form {
            Some(Ok(p)) => p
                .unique("client_id")
                .ok()
                .flatten()
                .unwrap_or("")
                .to_owned(),
            _ => String::new(),
        };
        let cfg = &ctx.config.autotask;
        let d = self
            .token_limiter
            .check(&key, cfg.token_limit, cfg.window, ctx.epoch_ms);
        if !d.allowed {
            ctx.note(format!(
                "token endpoint limit: {} requests per {} s",
                cfg.token_limit.requests, cfg.token_limit.window_s
            ));
            return fault_response(429, d.retry_after_s as u32);
        }
        let params = match form {
            None => {
                ctx.note("token request without a form Content-Type");
                return oauth_error(
                    400,
                    "invalid_request",
                    "Content-Type must be application/x-www-form-urlencoded",
                );
            }
            Some(Err(e)) => {
                ctx.note(e.clone());
                return oauth_error(400, "invalid_request", &e);
            }
            Some(Ok(p)) => p,
        };
        let get = |n: &str| params.unique(n).ok().flatten();
        match get("grant_type") {
            Some("client_credentials") => {}
            Some(other) => {
                ctx.note(format!("grant_type `{other}`"));
                return oauth_error(
                    400,
                    "unsupported_grant_type",
                    "grant_type must be client_credentials",
                );
            }
            None => {
                ctx.note("token request without grant_type");
                return oauth_error(400, "invalid_request", "grant_type is required");
            }
        }
        let (Some(id), Some(secret)) = (get("client_id"), get("client_secret")) else {
            ctx.note("client_id or client_secret missing from the body");
            return oauth_error(400, "invalid_client", "Invalid client credentials");
        };
        if !cfg
            .clients
            .iter()
            .any(|c| c.client_id == id && c.client_secret == secret)
        {
            ctx.note("client authentication failed");
            return oauth_error(400, "invalid_client", "Invalid client credentials");
        }
        let lifetime = ctx.config.token_lifetime(crate::Provider::Autotask);
        let expires_at_ms = ctx.epoch_ms + u64::from(lifetime) * 1000;
        let token = jwt_token(
            ctx.rng,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            "fieldauth-emulator/autotask",
            id,
            ctx.epoch_s(),
            expires_at_ms / 1000,
        );
        let grant = self.tokens.new_grant();
        self.tokens.insert(
            token.clone(),
            Token {
                kind: TokenKind::Access,
                client: id.to_owned(),
                scopes: Vec::new(),
                expires_at_ms: Some(expires_at_ms),
                revoked: false,
                rotated: false,
                api_calls: 0,
                grant,
            },
        );
        ctx.note("token issued");
        Response::json(
            200,
            json_object(&[
                ("access_token", J::Str(&token)),
                ("token_type", J::Str("Bearer")),
                ("expires_in", J::Int(i64::from(lifetime))),
            ]),
        )
    }

    fn api(&mut self, ctx: &mut Ctx<'_>, path: &str, req: &Request) -> Response {
        let token = match single_header(req, "authorization") {
            Err(e) => {
                ctx.note(e.clone());
                return oauth_error(400, "invalid_request", &e);
            }
            Ok(None) => {
                ctx.note("no Authorization header");
                return invalid();
            }
            Ok(Some(v)) => match bearer_token(v) {
                Some(t) => t,
                None => {
                    ctx.note("Authorization is not `Bearer <token>`");
                    return invalid();
                }
            },
        };
        match self.tokens.lookup(token, TokenKind::Access, ctx.epoch_ms) {
            Lookup::Valid => {
                if !self.tokens.use_for_api(token, ctx) {
                    return invalid();
                }
            }
            Lookup::Expired => {
                ctx.note("access token expired");
                return expired();
            }
            Lookup::Revoked => {
                ctx.note("access token revoked");
                return invalid();
            }
            Lookup::Unknown => {
                ctx.note("unknown access token");
                return invalid();
            }
        }
        let limit = ctx.api_limit.unwrap_or(ctx.config.autotask.api_limit);
        let d = self
            .api_limiter
            .check(token, limit, ctx.config.autotask.window, ctx.epoch_ms);
        if !d.allowed {
            if let Some(l) = ctx.api_limit {
                ctx.applied.push(Fault::ApiLimit(l));
            }
            ctx.note(format!(
                "API limit: {} requests per {} s per token",
                limit.requests, limit.window_s
            ));
            return fault_response(429, d.retry_after_s as u32);
        }
        if req.method != "GET" {
            return method_not_allowed(
                "GET",
                json_object(&[
                    ("error", J::Str("invalid_request")),
                    ("error_description", J::Str("Use GET")),
                ]),
            );
        }
        let Some((name, id)) = entity(path) else {
            return not_found(path);
        };
        let array = if name == "Companies" {
            data::AUTOTASK_COMPANIES
        } else {
            data::AUTOTASK_TICKETS
        };
        match id {
            None => Response::json(
                200,
                format!(
                    "{{\"items\":{array},\"pageDetails\":{{\"count\":{},\"requestCount\":500,\"prevPageUrl\":null,\"nextPageUrl\":null}}}}",
                    data::count(array)
                ),
            ),
            Some(id) => match data::find_by_id(array, id) {
                Some(item) => Response::json(200, serde_json::json!({ "item": item }).to_string()),
                None => Response::json(200, r#"{"item":null}"#),
            },
        }
    }
}
