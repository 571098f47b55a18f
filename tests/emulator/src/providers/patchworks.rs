//! Patchworks (`/patchworks`): API keys raw in `Authorization` (no scheme,
//! never expire), or `POST /fabric/api/login` with a JSON
//! `{"username","password"}` body (and `Accept: application/json`) for a
//! 24-hour token used as `Authorization: Bearer`. Errors carry a `message`.

use crate::config::{EndpointKind, RateWindow};
use crate::data;
use crate::encoding::{json_object, J};
use crate::fault::Fault;
use crate::http::{Request, Response};
use crate::providers::{
    accepts_json, bearer_token, content_type_is, json_body, json_str, jwt_token, no_store,
    single_header, Ctx, Lookup, Token, TokenKind, TokenStore,
};
use crate::ratelimit::Limiter;

/// A `{"message": ...}` body.
pub(crate) fn message(status: u16, text: &str) -> Response {
    Response::json(status, json_object(&[("message", J::Str(text))]))
}

/// A malformed request: an RFC 6749 error body plus Patchworks' `message`.
pub(crate) fn bad_request(text: &str) -> Response {
    Response::json(
        400,
        json_object(&[
            ("error", J::Str("invalid_request")),
            ("error_description", J::Str(text)),
            ("message", J::Str(text)),
        ]),
    )
}

/// The 401 for an invalid or expired token or API key.
pub(crate) fn unauthenticated() -> Response {
    message(401, "Unauthenticated.")
}

/// The body of an injected or real 429 / 503.
pub(crate) fn fault_response(status: u16, retry_after_s: u32) -> Response {
    let resp = if status == 429 {
        message(429, "Too Many Attempts.")
    } else {
        message(503, "Service Unavailable")
    };
    resp.with_header("Retry-After", &retry_after_s.to_string())
}

/// A 404 for an unknown path under `/patchworks`.
pub(crate) fn not_found(path: &str) -> Response {
    message(
        404,
        &format!(
            "The route {} could not be found.",
            path.trim_start_matches('/')
        ),
    )
}

/// Which endpoint a path under `/patchworks` is.
pub(crate) fn classify(path: &str) -> Option<EndpointKind> {
    if path == "/fabric/api/login" {
        Some(EndpointKind::Token)
    } else if path.starts_with("/core/") {
        Some(EndpointKind::Api)
    } else {
        None
    }
}

/// Patchworks' server-side state.
#[derive(Debug, Default)]
pub(crate) struct Patchworks {
    pub tokens: TokenStore,
    limiter: Limiter,
}

impl Patchworks {
    pub fn handle(
        &mut self,
        ctx: &mut Ctx<'_>,
        endpoint: EndpointKind,
        path: &str,
        req: &Request,
    ) -> Response {
        match endpoint {
            EndpointKind::Token => no_store(self.login(ctx, req)),
            _ => self.api(ctx, path, req),
        }
    }

    fn login(&mut self, ctx: &mut Ctx<'_>, req: &Request) -> Response {
        if req.method != "POST" {
            return message(405, &format!("The {} method is not supported for route fabric/api/login. Supported methods: POST.", req.method))
                .with_header("Allow", "POST");
        }
        if !content_type_is(req, "application/json") {
            ctx.note("login without Content-Type: application/json");
            return bad_request("Content-Type must be application/json");
        }
        if !accepts_json(req) {
            ctx.note("login without Accept: application/json");
            return bad_request("Accept: application/json is required");
        }
        let body = match json_body(req) {
            Ok(b) => b,
            Err(e) => {
                ctx.note(e.clone());
                return bad_request(&e);
            }
        };
        let (username, password) = match (json_str(&body, "username"), json_str(&body, "password"))
        {
            (Ok(Some(u)), Ok(Some(p))) => (u, p),
            (Err(e), _) | (_, Err(e)) => {
                ctx.note(e.clone());
                return bad_request(&e);
            }
            _ => {
                ctx.note("login without username or password");
                return bad_request("username and password are required");
            }
        };
        if !ctx
            .config
            .patchworks
            .users
            .iter()
            .any(|u| u.username == username && u.password == password)
        {
            ctx.note("wrong username or password");
            return message(401, "Invalid login details.");
        }
        let lifetime = ctx.config.token_lifetime(crate::Provider::Patchworks);
        let expires_at_ms = ctx.epoch_ms + u64::from(lifetime) * 1000;
        let token = jwt_token(
            ctx.rng,
            r#"{"typ":"JWT","alg":"HS256"}"#,
            "fieldauth-emulator/patchworks",
            username,
            ctx.epoch_s(),
            expires_at_ms / 1000,
        );
        let grant = self.tokens.new_grant();
        self.tokens.insert(
            token.clone(),
            Token {
                kind: TokenKind::Access,
                client: username.to_owned(),
                scopes: Vec::new(),
                expires_at_ms: Some(expires_at_ms),
                revoked: false,
                rotated: false,
                api_calls: 0,
                grant,
            },
        );
        ctx.note("logged in");
        Response::json(
            200,
            json_object(&[
                ("message", J::Str("You have successfully logged in.")),
                ("token", J::Str(&token)),
                ("expires_in", J::Int(i64::from(lifetime))),
            ]),
        )
    }

    fn api(&mut self, ctx: &mut Ctx<'_>, path: &str, req: &Request) -> Response {
        let value = match single_header(req, "authorization") {
            Err(e) => {
                ctx.note(e.clone());
                return bad_request(&e);
            }
            Ok(None) => {
                ctx.note("no Authorization header");
                return unauthenticated();
            }
            Ok(Some(v)) => v,
        };
        // `Bearer <token>` for login tokens; the bare key for API keys.
        let scheme_is_bearer = value
            .split_once(' ')
            .is_some_and(|(s, _)| s.eq_ignore_ascii_case("bearer"));
        let credential =
            if scheme_is_bearer {
                let Some(token) = bearer_token(value) else {
                    ctx.note("malformed Bearer credentials");
                    return unauthenticated();
                };
                match self.tokens.lookup(token, TokenKind::Access, ctx.epoch_ms) {
                    Lookup::Valid => {
                        if !self.tokens.use_for_api(token, ctx) {
                            return unauthenticated();
                        }
                    }
                    Lookup::Expired => {
                        ctx.note("token expired");
                        return unauthenticated();
                    }
                    Lookup::Revoked => {
                        ctx.note("token revoked");
                        return unauthenticated();
                    }
                    Lookup::Unknown => {
                        ctx.note(if ctx.config.patchworks.api_keys.iter().any(|k| k == token) {
                        "API key sent as Bearer (API keys go in Authorization without a scheme)"
                    } else {
                        "unknown token"
                    });
                        return unauthenticated();
                    }
                }
                token
            } else if ctx.config.patchworks.api_keys.iter().any(|k| k == value) {
                ctx.authorized(value);
                value
            } else {
                ctx.note(if self.tokens.tokens.contains_key(value) {
                    "login token sent without `Bearer`"
                } else {
                    "invalid API key"
                });
                return unauthenticated();
            };
        if let Some(limit) = ctx.api_limit {
            let d = self
                .limiter
                .check(credential, limit, RateWindow::Fixed, ctx.epoch_ms);
            if !d.allowed {
                ctx.applied.push(Fault::ApiLimit(limit));
                ctx.note("API limit override reached");
                return fault_response(429, d.retry_after_s as u32);
            }
        }
        if req.method != "GET" {
            return message(
                405,
                &format!(
                    "The {} method is not supported for route {}. Supported methods: GET.",
                    req.method,
                    path.trim_start_matches('/')
                ),
            )
            .with_header("Allow", "GET");
        }
        match path {
            "/core/v1/flows" => Response::json(
                200,
                format!(
                    "{{\"data\":{},\"meta\":{{\"current_page\":1,\"per_page\":15,\"total\":{}}}}}",
                    data::PATCHWORKS_FLOWS,
                    data::count(data::PATCHWORKS_FLOWS)
                ),
            ),
            _ => Response::json(200, r#"{"data":[]}"#),
        }
    }
}
