//! Deterministic fault injection.
//!
//! A [`FaultRule`] says *where* (provider, endpoint kind), *what* ([`Fault`])
//! and *when* ([`Trigger`]: always, every Nth matching request, the first N,
//! all after N, or a seeded-PRNG rate). Counters are per rule and count the
//! requests the rule's scope matches, so a run is reproducible.
//!
//! Rules are written on the command line as
//! `PROVIDER:ENDPOINT:FAULT[:TRIGGER]`, e.g.
//!
//! | spec | meaning |
//! | --- | --- |
//! | `fieldnation:api:revoke-after=3` | every Field Nation token dies server-side after 3 API calls (the 4th gets 401) |
//! | `autotask:token:429=30:every=3` | every 3rd Autotask token request gets 429 with `Retry-After: 30` |
//! | `all:all:503=5:rate=0.1` | 10 % of all requests get 503 with `Retry-After: 5` |
//! | `fentu:api:slow=50/16` | Fentu API responses are written 16 bytes at a time, 50 ms apart |
//! | `patchworks:token:chunked=7` | login responses use chunked encoding, 7-byte chunks |
//! | `all:token:pieces=1` | token responses are written one byte per `write` |
//! | `autotask:token:truncate=10:first=1` | the first token response is cut after 10 body bytes |
//! | `fieldnation:token:malformed=cut` | token responses are cut JSON (framing intact) |
//! | `patchworks:api:limit=5/60` | Patchworks API limited to 5 requests per 60 s |

use crate::config::{EndpointKind, Provider, RateLimit};
use crate::rng::Rng;

/// How a [`Fault::MalformedJson`] damages a successful token response. The
/// HTTP framing stays correct: only the JSON is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformation {
    /// The body is cut in half (unterminated object).
    Cut,
    /// Trailing data: an extra `}` after the object.
    Trailing,
    /// An invalid escape (`\q`) inside the first string value.
    BadEscape,
    /// Not JSON at all: an HTML error page with status 200.
    Html,
}

impl Malformation {
    /// The spec name (`cut`, `trailing`, `bad-escape`, `html`).
    pub fn name(self) -> &'static str {
        match self {
            Malformation::Cut => "cut",
            Malformation::Trailing => "trailing",
            Malformation::BadEscape => "bad-escape",
            Malformation::Html => "html",
        }
    }

    /// Damages `body` (a compact JSON object) this way.
    pub fn apply(self, body: &[u8]) -> Vec<u8> {
        match self {
            Malformation::Cut => body[..body.len() / 2].to_vec(),
            Malformation::Trailing => {
                let mut out = body.to_vec();
                out.extend_from_slice(b"}");
                out
            }
            Malformation::BadEscape => {
                let text = String::from_utf8_lossy(body);
                // Insert `\q` after the opening quote of the first value.
                match text.find(":\"") {
                    Some(i) => format!("{}\\q{}", &text[..i + 2], &text[i + 2..]).into_bytes(),
                    None => b"{\"a\":\"\\q\"}".to_vec(),
                }
            }
            Malformation::Html => b"<html><body><h1>Gateway error</h1></body></html>".to_vec(),
        }
    }
}

/// A fault to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Server-side revocation: an issued access token is revoked once it has
    /// served N API calls; the next call gets the provider's 401 (Field
    /// Nation's quirk mode does not apply: the token is revoked, not expired).
    /// API keys are not affected. The trigger is ignored.
    RevokeAfter(u32),
    /// `429 Too Many Requests` with `Retry-After` seconds and the provider's
    /// error body, instead of handling the request.
    TooManyRequests {
        /// `Retry-After` value, seconds.
        retry_after_s: u32,
    },
    /// `503 Service Unavailable` with `Retry-After` seconds and the
    /// provider's error body, instead of handling the request.
    Unavailable {
        /// `Retry-After` value, seconds.
        retry_after_s: u32,
    },
    /// The response is written in pieces of `piece_bytes`, `delay_ms` apart.
    Slow {
        /// Pause before each piece after the first, milliseconds.
        delay_ms: u64,
        /// Piece size, bytes.
        piece_bytes: usize,
    },
    /// The body is sent with `Transfer-Encoding: chunked` in chunks of this size.
    Chunked {
        /// Chunk size, bytes.
        chunk_bytes: usize,
    },
    /// The response is written in pieces of this many bytes (no delay).
    Pieces {
        /// Piece size, bytes.
        piece_bytes: usize,
    },
    /// The connection is closed after this many framed body bytes (`None`:
    /// half the body), mid-response.
    Truncate {
        /// Body bytes written before the close.
        body_bytes: Option<usize>,
    },
    /// A successful token response has broken JSON (the token was issued all
    /// the same: the response was damaged on its way).
    MalformedJson(Malformation),
    /// Overrides the API rate limit of the matching provider(s) (Fentu tier,
    /// Autotask 600/min; Field Nation and Patchworks document no numbers and
    /// have none by default). The trigger and endpoint are ignored.
    ApiLimit(RateLimit),
}

impl Fault {
    /// The fault's spec text, e.g. `429=30`, `slow=50/16`.
    pub fn spec(&self) -> String {
        match self {
            Fault::RevokeAfter(n) => format!("revoke-after={n}"),
            Fault::TooManyRequests { retry_after_s } => format!("429={retry_after_s}"),
            Fault::Unavailable { retry_after_s } => format!("503={retry_after_s}"),
            Fault::Slow {
                delay_ms,
                piece_bytes,
            } => format!("slow={delay_ms}/{piece_bytes}"),
            Fault::Chunked { chunk_bytes } => format!("chunked={chunk_bytes}"),
            Fault::Pieces { piece_bytes } => format!("pieces={piece_bytes}"),
            Fault::Truncate { body_bytes: None } => "truncate".to_owned(),
            Fault::Truncate {
                body_bytes: Some(n),
            } => format!("truncate={n}"),
            Fault::MalformedJson(m) => format!("malformed={}", m.name()),
            Fault::ApiLimit(l) => format!("limit={}/{}", l.requests, l.window_s),
        }
    }

    /// Parses a fault spec (see the module documentation).
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let (name, arg) = match spec.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (spec, None),
        };
        let num = |a: Option<&str>, default: Option<u64>| -> Result<u64, String> {
            match (a, default) {
                (Some(a), _) => a
                    .parse::<u64>()
                    .map_err(|_| format!("`{spec}`: `{a}` is not a number")),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(format!("`{spec}`: needs `={name}` argument")),
            }
        };
        let positive = |v: u64| -> Result<u64, String> {
            if v == 0 {
                Err(format!("`{spec}`: must be at least 1"))
            } else {
                Ok(v)
            }
        };
        Ok(match name {
            "revoke-after" => Fault::RevokeAfter(num(arg, None)? as u32),
            "429" => Fault::TooManyRequests {
                retry_after_s: num(arg, Some(1))? as u32,
            },
            "503" => Fault::Unavailable {
                retry_after_s: num(arg, Some(1))? as u32,
            },
            "slow" => {
                let (delay, piece) = match arg.map(|a| a.split_once('/')) {
                    Some(Some((d, p))) => (Some(d), Some(p)),
                    _ => (arg, None),
                };
                Fault::Slow {
                    delay_ms: num(delay, Some(20))?,
                    piece_bytes: positive(num(piece, Some(32))?)? as usize,
                }
            }
            "chunked" => Fault::Chunked {
                chunk_bytes: positive(num(arg, Some(16))?)? as usize,
            },
            "pieces" => Fault::Pieces {
                piece_bytes: positive(num(arg, Some(1))?)? as usize,
            },
            "truncate" => Fault::Truncate {
                body_bytes: match arg {
                    Some(_) => Some(num(arg, None)? as usize),
                    None => None,
                },
            },
            "malformed" => Fault::MalformedJson(match arg.unwrap_or("cut") {
                "cut" => Malformation::Cut,
                "trailing" => Malformation::Trailing,
                "bad-escape" => Malformation::BadEscape,
                "html" => Malformation::Html,
                other => {
                    return Err(format!(
                        "`{spec}`: unknown malformation `{other}` (cut, trailing, bad-escape, html)"
                    ))
                }
            }),
            "limit" => {
                let Some((r, w)) = arg.and_then(|a| a.split_once('/')) else {
                    return Err(format!("`{spec}`: write limit=REQUESTS/SECONDS"));
                };
                Fault::ApiLimit(RateLimit::new(
                    num(Some(r), None)? as u32,
                    positive(num(Some(w), None)?)? as u32,
                ))
            }
            other => {
                return Err(format!(
                    "unknown fault `{other}` (revoke-after, 429, 503, slow, chunked, pieces, truncate, malformed, limit)"
                ))
            }
        })
    }
}

/// When a rule fires, counting the requests its scope matches (from 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    /// Every matching request.
    Always,
    /// Requests N, 2N, 3N, ...
    EveryNth(u32),
    /// Requests 1..=N.
    FirstN(u32),
    /// Requests after the Nth.
    AfterN(u32),
    /// Each request with this probability (0.0..=1.0), drawn from the seeded PRNG.
    Rate(f64),
}

impl Trigger {
    /// The trigger's spec text (`always`, `every=3`, `first=2`, `after=5`, `rate=0.25`).
    pub fn spec(&self) -> String {
        match self {
            Trigger::Always => "always".to_owned(),
            Trigger::EveryNth(n) => format!("every={n}"),
            Trigger::FirstN(n) => format!("first={n}"),
            Trigger::AfterN(n) => format!("after={n}"),
            Trigger::Rate(p) => format!("rate={p}"),
        }
    }

    /// Parses a trigger spec; `once` is `first=1`.
    pub fn parse(spec: &str) -> Result<Trigger, String> {
        let (name, arg) = spec.split_once('=').unwrap_or((spec, ""));
        let n = || -> Result<u32, String> {
            arg.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{spec}`: needs a positive count"))
        };
        Ok(match name {
            "always" => Trigger::Always,
            "once" => Trigger::FirstN(1),
            "every" => Trigger::EveryNth(n()?),
            "first" => Trigger::FirstN(n()?),
            "after" => Trigger::AfterN(
                arg.parse()
                    .map_err(|_| format!("`{spec}`: needs a count"))?,
            ),
            "rate" => {
                let p: f64 = arg
                    .parse()
                    .map_err(|_| format!("`{spec}`: needs a probability"))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("`{spec}`: probability must be within 0..=1"));
                }
                Trigger::Rate(p)
            }
            other => {
                return Err(format!(
                    "unknown trigger `{other}` (always, once, every=N, first=N, after=N, rate=P)"
                ))
            }
        })
    }

    /// Whether the `count`th matching request (from 1) fires. Only
    /// [`Trigger::Rate`] draws from `rng`.
    pub fn fires(&self, count: u64, rng: &mut Rng) -> bool {
        match *self {
            Trigger::Always => true,
            Trigger::EveryNth(n) => count.is_multiple_of(u64::from(n.max(1))),
            Trigger::FirstN(n) => count <= u64::from(n),
            Trigger::AfterN(n) => count > u64::from(n),
            Trigger::Rate(p) => rng.next_f64() < p,
        }
    }
}

/// Where, what and when: one fault-injection rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultRule {
    /// The provider it applies to (`None`: all).
    pub provider: Option<Provider>,
    /// The endpoint kind it applies to (`None`: all).
    pub endpoint: Option<EndpointKind>,
    /// What happens.
    pub fault: Fault,
    /// When.
    pub trigger: Trigger,
}

impl FaultRule {
    /// A rule that fires on every request in its scope.
    pub fn new(
        provider: Option<Provider>,
        endpoint: Option<EndpointKind>,
        fault: Fault,
    ) -> FaultRule {
        FaultRule {
            provider,
            endpoint,
            fault,
            trigger: Trigger::Always,
        }
    }

    /// Sets the trigger (builder style).
    pub fn when(mut self, trigger: Trigger) -> FaultRule {
        self.trigger = trigger;
        self
    }

    /// Whether a request to `provider`'s `endpoint` is in this rule's scope.
    pub fn matches(&self, provider: Provider, endpoint: EndpointKind) -> bool {
        self.provider.is_none_or(|p| p == provider) && self.endpoint.is_none_or(|e| e == endpoint)
    }

    /// Parses `PROVIDER:ENDPOINT:FAULT[:TRIGGER]` where PROVIDER is a
    /// provider name or `all` and ENDPOINT is `authorize`, `token`, `revoke`,
    /// `api` or `all`.
    pub fn parse(spec: &str) -> Result<FaultRule, String> {
        let parts: Vec<&str> = spec.trim().split(':').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(format!(
                "`{spec}`: write PROVIDER:ENDPOINT:FAULT[:TRIGGER], e.g. autotask:token:429=30:every=3"
            ));
        }
        let provider = match parts[0] {
            "all" | "*" => None,
            name => Some(Provider::from_name(name).ok_or_else(|| {
                format!("`{spec}`: unknown provider `{name}` (fentu, fieldnation, autotask, patchworks, all)")
            })?),
        };
        let endpoint = match parts[1] {
            "all" | "*" => None,
            name => Some(EndpointKind::from_name(name).ok_or_else(|| {
                format!("`{spec}`: unknown endpoint `{name}` (authorize, token, revoke, api, all)")
            })?),
        };
        let fault = Fault::parse(parts[2])?;
        let trigger = match parts.get(3) {
            Some(t) => Trigger::parse(t)?,
            None => Trigger::Always,
        };
        Ok(FaultRule {
            provider,
            endpoint,
            fault,
            trigger,
        })
    }

    /// Parses a comma-separated list of rules.
    pub fn parse_list(specs: &str) -> Result<Vec<FaultRule>, String> {
        specs
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(FaultRule::parse)
            .collect()
    }
}

impl std::fmt::Display for FaultRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.provider.map_or("all", Provider::name),
            self.endpoint.map_or("all", EndpointKind::name),
            self.fault.spec(),
            self.trigger.spec()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        for spec in [
            "fieldnation:api:revoke-after=3:always",
            "autotask:token:429=30:every=3",
            "all:all:503=5:rate=0.1",
            "fentu:api:slow=50/16:always",
            "patchworks:token:chunked=7:always",
            "all:token:pieces=1:always",
            "autotask:token:truncate=10:first=1",
            "autotask:token:truncate:after=2",
            "fieldnation:token:malformed=cut:always",
            "fentu:token:malformed=bad-escape:always",
            "patchworks:api:limit=5/60:always",
        ] {
            assert_eq!(FaultRule::parse(spec).unwrap().to_string(), spec);
        }
        assert_eq!(
            FaultRule::parse("fentu:api:429").unwrap(),
            FaultRule::new(
                Some(Provider::Fentu),
                Some(EndpointKind::Api),
                Fault::TooManyRequests { retry_after_s: 1 }
            )
        );
        assert_eq!(
            FaultRule::parse("all:all:slow").unwrap().fault,
            Fault::Slow {
                delay_ms: 20,
                piece_bytes: 32
            }
        );
        assert_eq!(
            FaultRule::parse("all:all:429:once").unwrap().trigger,
            Trigger::FirstN(1)
        );
        assert_eq!(
            FaultRule::parse_list("all:all:429, fentu:api:503=2")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn bad_specs_are_explained() {
        for spec in [
            "fentu:api",
            "nobody:api:429",
            "fentu:nowhere:429",
            "fentu:api:explode",
            "fentu:api:429=x",
            "fentu:api:429:every=0",
            "fentu:api:429:rate=2",
            "fentu:api:limit=5",
            "fentu:api:chunked=0",
            "fentu:api:malformed=weird",
            "fentu:api:revoke-after",
        ] {
            assert!(FaultRule::parse(spec).is_err(), "{spec}");
        }
    }

    #[test]
    fn triggers_count_deterministically() {
        let mut rng = Rng::new(1);
        let fired = |t: Trigger, rng: &mut Rng| -> Vec<u64> {
            (1..=9).filter(|c| t.fires(*c, rng)).collect()
        };
        assert_eq!(fired(Trigger::EveryNth(3), &mut rng), vec![3, 6, 9]);
        assert_eq!(fired(Trigger::FirstN(2), &mut rng), vec![1, 2]);
        assert_eq!(fired(Trigger::AfterN(7), &mut rng), vec![8, 9]);
        assert_eq!(fired(Trigger::Always, &mut rng).len(), 9);
        let a = fired(Trigger::Rate(0.5), &mut Rng::new(42));
        let b = fired(Trigger::Rate(0.5), &mut Rng::new(42));
        assert_eq!(a, b);
        assert!(fired(Trigger::Rate(0.0), &mut rng).is_empty());
        assert_eq!(fired(Trigger::Rate(1.0), &mut rng).len(), 9);
    }

    #[test]
    fn malformations_break_json() {
        let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
        for m in [
            Malformation::Cut,
            Malformation::Trailing,
            Malformation::BadEscape,
            Malformation::Html,
        ] {
            let out = m.apply(body);
            assert!(
                serde_json::from_slice::<serde_json::Value>(&out).is_err(),
                "{m:?}: {}",
                String::from_utf8_lossy(&out)
            );
        }
    }
}
