//! Field Nation (`/fieldnation`): client_credentials with a JSON body at
//! `/authentication/api/oauth/token`, JWT-shaped 1-hour tokens, and the token
//! accepted *only* as the `access_token` query parameter of API requests.
//!
//! Optional quirk ([`FieldNationConfig::expired_token_quirk`](crate::FieldNationConfig)):
//! an expired token yields `400 {"error":"invalid_request","error_description":"Expired token"}`.

use crate::config::{EndpointKind, RateWindow};
use crate::data;
use crate::encoding::{json_object, J};
use crate::fault::Fault;
use crate::http::{Request, Response};
use crate::providers::{
    content_type_is, json_body, json_str, jwt_token, method_not_allowed, no_store, oauth_error,
    query_params, Ctx, Lookup, Token, TokenKind, TokenStore,
};
use crate::ratelimit::Limiter;

/// The documented 401 for an expired (or unknown) token.
pub(crate) fn invalid_token() -> Response {
    oauth_error(401, "invalid_token", "The access token expired").with_header(
        "WWW-Authenticate",
        "Bearer realm=\"Field Nation\", error=\"invalid_token\"",
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

/// A 404 for an unknown path under `/fieldnation`.
pub(crate) fn not_found(path: &str) -> Response {
    oauth_error(404, "not_found", &format!("No such endpoint: {path}"))
}

/// Which endpoint a path under `/fieldnation` is.
pub(crate) fn classify(path: &str) -> Option<EndpointKind> {
    if path == "/authentication/api/oauth/token" {
        return Some(EndpointKind::Token);
    }
    work_order_id(path).map(|_| EndpointKind::Api)
}

/// `Some(None)` for the collection, `Some(Some(id))` for one work order.
fn work_order_id(path: &str) -> Option<Option<&str>> {
    let rest = path.strip_prefix("/api/rest/v2/workorders")?;
    match rest {
        "" => Some(None),
        _ => {
            let id = rest.strip_prefix('/')?;
            (!id.is_empty() && !id.contains('/')).then_some(Some(id))
        }
    }
}

/// Field Nation's server-side state.
#[derive(Debug, Default)]
pub(crate) struct FieldNation {
    pub tokens: TokenStore,
    limiter: Limiter,
}

impl FieldNation {
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
        if !content_type_is(req, "application/json") {
            ctx.note("token request without Content-Type: application/json");
            return oauth_error(
                400,
                "invalid_request",
                "Content-Type must be application/json",
            );
        }
        let body = match json_body(req) {
            Ok(b) => b,
            Err(e) => {
                ctx.note(e.clone());
                return oauth_error(400, "invalid_request", &e);
            }
        };
        let field = |name: &str| json_str(&body, name);
        let (grant_type, client_id, client_secret, scope) = match (
            field("grant_type"),
            field("client_id"),
            field("client_secret"),
            field("scope"),
        ) {
            (Ok(g), Ok(i), Ok(s), Ok(sc)) => (g, i, s, sc),
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                ctx.note(e.clone());
                return oauth_error(400, "invalid_request", &e);
            }
        };
        match grant_type {
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
        let client_ok = match (client_id, client_secret) {
            (Some(id), Some(secret)) => ctx
                .config
                .field_nation
                .clients
                .iter()
                .any(|c| c.client_id == id && c.client_secret == secret),
            _ => false,
        };
        if !client_ok {
            ctx.note("client authentication failed");
            return oauth_error(401, "invalid_client", "Client authentication failed");
        }
        match scope {
            Some("api") => {}
            Some(other) => {
                ctx.note(format!("scope `{other}`"));
                return oauth_error(400, "invalid_scope", "scope must be api");
            }
            None => {
                ctx.note("token request without scope");
                return oauth_error(400, "invalid_scope", "scope is required (api)");
            }
        }
        let client_id = client_id.unwrap_or_default();
        let lifetime = ctx.config.token_lifetime(crate::Provider::FieldNation);
        let expires_at_ms = ctx.epoch_ms + u64::from(lifetime) * 1000;
        let token = jwt_token(
            ctx.rng,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            "fieldauth-emulator/fieldnation",
            client_id,
            ctx.epoch_s(),
            expires_at_ms / 1000,
        );
        let grant = self.tokens.new_grant();
        self.tokens.insert(
            token.clone(),
            Token {
                kind: TokenKind::Access,
                client: client_id.to_owned(),
                scopes: vec!["api".to_owned()],
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
        let params = match query_params(req) {
            Ok(p) => p,
            Err(e) => {
                ctx.note(e.clone());
                return oauth_error(400, "invalid_request", &e);
            }
        };
        let Ok(Some(token)) = params.unique("access_token") else {
            ctx.note(if req.header("authorization").is_some() {
                "no access_token query parameter (Authorization header is not accepted)"
            } else {
                "no access_token query parameter"
            });
            return invalid_token();
        };
        match self.tokens.lookup(token, TokenKind::Access, ctx.epoch_ms) {
            Lookup::Valid => {
                if !self.tokens.use_for_api(token, ctx) {
                    return invalid_token();
                }
            }
            Lookup::Expired if ctx.config.field_nation.expired_token_quirk => {
                ctx.note("access token expired (quirk: 400)");
                return oauth_error(400, "invalid_request", "Expired token");
            }
            Lookup::Expired => {
                ctx.note("access token expired");
                return invalid_token();
            }
            Lookup::Revoked => {
                ctx.note("access token revoked");
                return invalid_token();
            }
            Lookup::Unknown => {
                ctx.note("unknown access token");
                return invalid_token();
            }
        }
        if let Some(limit) = ctx.api_limit {
            let d = self
                .limiter
                .check(token, limit, RateWindow::Fixed, ctx.epoch_ms);
            if !d.allowed {
                ctx.applied.push(Fault::ApiLimit(limit));
                ctx.note("API limit override reached");
                return fault_response(429, d.retry_after_s as u32);
            }
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
        match work_order_id(path) {
            Some(None) => Response::json(
                200,
                format!(
                    "{{\"metadata\":{{\"total\":{n},\"page\":1,\"per_page\":25,\"pages\":1}},\"results\":{}}}",
                    data::FIELD_NATION_WORK_ORDERS,
                    n = data::count(data::FIELD_NATION_WORK_ORDERS)
                ),
            ),
            Some(Some(id)) => match data::find_by_id(data::FIELD_NATION_WORK_ORDERS, id) {
                Some(item) => Response::json(200, item.to_string()),
                None => oauth_error(404, "not_found", &format!("Work order {id} not found")),
            },
            None => not_found(path),
        }
    }
}
