//! Applying a credential to an API request: an `Authorization` header, a
//! custom header, or a query parameter.
//!
//! A host builds its API request as usual and asks the [`ApiCredential`] for
//! the header line to add ([`ApiCredential::write_header_line`]) and for the
//! request target to use ([`ApiCredential::write_target`]). Both work for every
//! kind of credential: a header credential leaves the target unchanged, a
//! query-parameter credential adds no header line, so a host can call both
//! without looking at the kind.
//!
//! Targets must not contain a fragment (`#`): a request target never carries
//! one (RFC 9112 §3.2), so a target with `#` is refused with
//! [`InputError::InvalidCharacter`] rather than rewritten.

use core::fmt;

use crate::error::{Error, Field, InputError, Result};
use crate::request::{check_header_name, write_into};
use crate::url::{check_target, query_sep};
use crate::write::{check_header_value, check_param, check_token, Writer};

/// A credential for API requests. `Debug` never shows the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ApiCredential<'a> {
    /// `Authorization: Bearer <token>` (OAuth access tokens; Autotask,
    /// Patchworks login tokens).
    Bearer(&'a str),
    /// An API key in the `Authorization` header, after a scheme
    /// (`Bearer KEY`, Fentu) or on its own (`KEY`, Patchworks).
    ApiKey {
        /// The authorization scheme, e.g. `Bearer`; `None` sends the key alone.
        scheme: Option<&'a str>,
        /// The key.
        key: &'a str,
    },
    /// A key in a custom header, e.g. `X-Api-Key: KEY`.
    Header {
        /// Header name (a token; not `Host`, `Content-Length`,
        /// `Transfer-Encoding`, `Content-Type` or `Authorization`).
        name: &'a str,
        /// The key.
        value: &'a str,
    },
    /// A query parameter appended to the target, e.g. Field Nation's
    /// `access_token`. Name and value are form-urlencoded.
    QueryParam {
        /// Parameter name.
        name: &'a str,
        /// The token or key.
        value: &'a str,
    },
}

impl fmt::Debug for ApiCredential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiCredential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            ApiCredential::ApiKey { scheme, .. } => f
                .debug_struct("ApiKey")
                .field("scheme", scheme)
                .field("key", &"<redacted>")
                .finish(),
            ApiCredential::Header { name, .. } => f
                .debug_struct("Header")
                .field("name", name)
                .field("value", &"<redacted>")
                .finish(),
            ApiCredential::QueryParam { name, .. } => f
                .debug_struct("QueryParam")
                .field("name", name)
                .field("value", &"<redacted>")
                .finish(),
        }
    }
}

impl<'a> ApiCredential<'a> {
    /// Checks the credential: header names are tokens and not reserved,
    /// schemes are tokens, header values have no control characters or
    /// surrounding whitespace, nothing is empty. The errors name
    /// [`Field::AccessToken`] (bearer), [`Field::ApiKey`] (other values),
    /// [`Field::Scheme`], [`Field::HeaderName`] or [`Field::ParamName`].
    pub fn validate(&self) -> Result<()> {
        match *self {
            ApiCredential::Bearer(token) => {
                check_header_value(Field::AccessToken, token.as_bytes())
            }
            ApiCredential::ApiKey { scheme, key } => {
                if let Some(s) = scheme {
                    check_token(Field::Scheme, s.as_bytes())?;
                }
                check_header_value(Field::ApiKey, key.as_bytes())
            }
            ApiCredential::Header { name, value } => {
                check_header_name(name)?;
                check_header_value(Field::ApiKey, value.as_bytes())
            }
            ApiCredential::QueryParam { name, value } => {
                check_param(Field::ParamName, name)?;
                check_param(Field::ApiKey, value)
            }
        }
    }

    /// The header this credential sets (`Authorization` or the custom name);
    /// `None` for [`ApiCredential::QueryParam`].
    pub fn header_name(&self) -> Option<&'a str> {
        match *self {
            ApiCredential::Bearer(_) | ApiCredential::ApiKey { .. } => Some("Authorization"),
            ApiCredential::Header { name, .. } => Some(name),
            ApiCredential::QueryParam { .. } => None,
        }
    }

    /// Writes the header value (`Bearer <token>`, `<scheme> <key>`, `<key>`).
    fn value(&self, w: &mut Writer<'_>) {
        match *self {
            ApiCredential::Bearer(token) => {
                w.str("Bearer ");
                w.str(token);
            }
            ApiCredential::ApiKey { scheme, key } => {
                if let Some(s) = scheme {
                    w.str(s);
                    w.byte(b' ');
                }
                w.str(key);
            }
            ApiCredential::Header { value, .. } => w.str(value),
            ApiCredential::QueryParam { .. } => {}
        }
    }

    /// Writes the header value into `buf` and returns its length.
    ///
    /// Errors: those of [`ApiCredential::validate`]; [`InputError::Missing`]
    /// with [`Field::HeaderName`] for a query-parameter credential (it has no
    /// header); [`Error::BufferTooSmall`] (the buffer is zeroed).
    pub fn write_header_value(&self, buf: &mut [u8]) -> Result<usize> {
        self.validate()?;
        if self.header_name().is_none() {
            return Err(Error::input(Field::HeaderName, InputError::Missing));
        }
        write_into(buf, |w| self.value(w))
    }

    /// Writes the whole header line `Name: value\r\n` into `buf` and returns
    /// its length; writes nothing and returns 0 for a query-parameter
    /// credential. Errors as [`ApiCredential::write_header_value`], except
    /// that a query parameter is not an error.
    pub fn write_header_line(&self, buf: &mut [u8]) -> Result<usize> {
        self.validate()?;
        if self.header_name().is_none() {
            return Ok(0);
        }
        write_into(buf, |w| self.emit_header_line(w))
    }

    /// Writes `Name: value\r\n` (nothing for a query parameter). The caller
    /// has validated the credential.
    pub(crate) fn emit_header_line(&self, w: &mut Writer<'_>) {
        if let Some(name) = self.header_name() {
            w.str(name);
            w.str(": ");
            self.value(w);
            w.str("\r\n");
        }
    }

    /// Writes the request target to use into `buf` and returns its length.
    ///
    /// `target` is an origin-form target (`/path?query`) or an absolute URL;
    /// it must be non-empty, ASCII, without spaces, control characters or a
    /// fragment (errors name [`Field::Target`]). A header credential copies
    /// it unchanged. A query parameter is appended as `name=value`
    /// (form-urlencoded) after `?` if the target has no query, directly if
    /// the query is empty (`/w?`) or ends in `&`, else after `&` (so
    /// `/w?limit=` and `/w?q=why?` get `&`). An existing parameter of the
    /// same name is not detected.
    pub fn write_target(&self, target: &str, buf: &mut [u8]) -> Result<usize> {
        self.validate()?;
        if target.is_empty() {
            return Err(Error::input(Field::Target, InputError::Empty));
        }
        check_target(Field::Target, target)?;
        write_into(buf, |w| {
            w.str(target);
            self.emit_query(w, target);
        })
    }

    /// Writes what a query-parameter credential appends to `target` (already
    /// written): the separator and `name=value`; nothing for the others. The
    /// caller has validated the credential and the target.
    pub(crate) fn emit_query(&self, w: &mut Writer<'_>, target: &str) {
        if let ApiCredential::QueryParam { name, value } = *self {
            query_sep(w, target);
            w.form(name.as_bytes());
            w.byte(b'=');
            w.form(value.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::String;

    type Op = fn(&ApiCredential<'_>, &mut [u8]) -> Result<usize>;

    /// Runs `op` over every buffer size and returns the output. (Under
    /// Miri, tests/miri.sh: every 7th size and the largest too small.)
    fn run(c: &ApiCredential<'_>, op: Op) -> String {
        let mut big = [0u8; 512];
        let n = op(c, &mut big).unwrap();
        for k in (0..n).filter(|&k| !cfg!(miri) || k % 7 == 0 || k + 1 == n) {
            let mut buf = std::vec![0x33u8; k];
            assert_eq!(op(c, &mut buf), Err(Error::buffer_too_small(n)));
            assert!(buf.iter().all(|&b| b == 0));
        }
        let mut exact = std::vec![0u8; n];
        assert_eq!(op(c, &mut exact), Ok(n));
        String::from_utf8(exact).unwrap()
    }

    fn line(c: &ApiCredential<'_>) -> String {
        run(c, |c, b| c.write_header_line(b))
    }

    fn value(c: &ApiCredential<'_>) -> String {
        run(c, |c, b| c.write_header_value(b))
    }

    fn target(c: &ApiCredential<'_>, t: &str) -> String {
        let mut buf = [0u8; 512];
        let n = c.write_target(t, &mut buf).unwrap();
        // Under Miri (tests/miri.sh) every 7th size and the largest.
        for k in (0..n).filter(|&k| !cfg!(miri) || k % 7 == 0 || k + 1 == n) {
            let mut small = std::vec![0u8; k];
            assert_eq!(
                c.write_target(t, &mut small),
                Err(Error::buffer_too_small(n))
            );
        }
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn provider_vectors() {
        // Autotask / Patchworks login token.
        let c = ApiCredential::Bearer("eyJ0eXAiOiJKV......");
        assert_eq!(line(&c), "Authorization: Bearer eyJ0eXAiOiJKV......\r\n");
        assert_eq!(value(&c), "Bearer eyJ0eXAiOiJKV......");
        assert_eq!(
            target(&c, "/ATServicesRest/V1.0/Companies"),
            "/ATServicesRest/V1.0/Companies"
        );
        // Fentu API key.
        let c = ApiCredential::ApiKey {
            scheme: Some("Bearer"),
            key: "YOUR_API_KEY",
        };
        assert_eq!(line(&c), "Authorization: Bearer YOUR_API_KEY\r\n");
        // Patchworks API key: raw.
        let c = ApiCredential::ApiKey {
            scheme: None,
            key: "KEY123",
        };
        assert_eq!(line(&c), "Authorization: KEY123\r\n");
        assert_eq!(c.header_name(), Some("Authorization"));
        // Field Nation access token as a query parameter.
        let c = ApiCredential::QueryParam {
            name: "access_token",
            value: "YOUR_ACCESS_TOKEN",
        };
        assert_eq!(
            target(&c, "/api/rest/v2/workorders"),
            "/api/rest/v2/workorders?access_token=YOUR_ACCESS_TOKEN"
        );
        assert_eq!(
            target(&c, "https://api-sandbox.fndev.net/api/rest/v2/workorders"),
            "https://api-sandbox.fndev.net/api/rest/v2/workorders?access_token=YOUR_ACCESS_TOKEN"
        );
        assert_eq!(c.header_name(), None);
        assert_eq!(c.write_header_line(&mut [0u8; 8]), Ok(0));
        assert_eq!(
            c.write_header_value(&mut [0u8; 64]),
            Err(Error::input(Field::HeaderName, InputError::Missing))
        );
    }

    #[test]
    fn custom_header() {
        let c = ApiCredential::Header {
            name: "X-Api-Key",
            value: "k-1",
        };
        assert_eq!(line(&c), "X-Api-Key: k-1\r\n");
        assert_eq!(value(&c), "k-1");
        assert_eq!(target(&c, "/a?b=c"), "/a?b=c");
        for (name, kind) in [
            ("X Api", InputError::InvalidCharacter),
            ("X-Api:", InputError::InvalidCharacter),
            ("", InputError::Empty),
            ("X\r\nA", InputError::ControlCharacter),
            ("host", InputError::Reserved),
            ("Content-Length", InputError::Reserved),
        ] {
            let c = ApiCredential::Header { name, value: "k" };
            assert_eq!(
                c.write_header_line(&mut [0u8; 64]),
                Err(Error::input(Field::HeaderName, kind))
            );
        }
    }

    #[test]
    fn query_param_placement() {
        let c = ApiCredential::QueryParam {
            name: "access_token",
            value: "a b+/=é",
        };
        let enc = "access_token=a+b%2B%2F%3D%C3%A9";
        for (t, want) in [
            ("/w", format!("/w?{enc}")),
            ("/w?", format!("/w?{enc}")),
            ("/w?x=1", format!("/w?x=1&{enc}")),
            ("/w?x=1&", format!("/w?x=1&{enc}")),
            ("/w?x=1&y=2", format!("/w?x=1&y=2&{enc}")),
        ] {
            assert_eq!(target(&c, t), want, "{t}");
        }
        let c = ApiCredential::QueryParam {
            name: "api key",
            value: "v",
        };
        assert_eq!(target(&c, "/w"), "/w?api+key=v");
    }

    #[test]
    fn hostile_input() {
        let t = Error::input(Field::Target, InputError::InvalidCharacter);
        let c = ApiCredential::Bearer("tok");
        let q = ApiCredential::QueryParam {
            name: "access_token",
            value: "tok",
        };
        for cred in [c, q] {
            let mut buf = [0u8; 128];
            assert_eq!(cred.write_target("/w#frag", &mut buf), Err(t));
            assert_eq!(cred.write_target("/w x", &mut buf), Err(t));
            assert_eq!(cred.write_target("/é", &mut buf), Err(t));
            assert_eq!(
                cred.write_target("/w\r\nHost: evil", &mut buf),
                Err(Error::input(Field::Target, InputError::ControlCharacter))
            );
            assert_eq!(
                cred.write_target("", &mut buf),
                Err(Error::input(Field::Target, InputError::Empty))
            );
        }
        for bad in ["a\rb", "a\nb", "a\0b", "a\r\nX: y"] {
            let mut buf = [0x77u8; 128];
            for (cred, field) in [
                (ApiCredential::Bearer(bad), Field::AccessToken),
                (
                    ApiCredential::ApiKey {
                        scheme: Some("Bearer"),
                        key: bad,
                    },
                    Field::ApiKey,
                ),
                (
                    ApiCredential::ApiKey {
                        scheme: Some(bad),
                        key: "k",
                    },
                    Field::Scheme,
                ),
                (
                    ApiCredential::Header {
                        name: "X-Api-Key",
                        value: bad,
                    },
                    Field::ApiKey,
                ),
                (
                    ApiCredential::QueryParam {
                        name: "access_token",
                        value: bad,
                    },
                    Field::ApiKey,
                ),
                (
                    ApiCredential::QueryParam {
                        name: bad,
                        value: "v",
                    },
                    Field::ParamName,
                ),
            ] {
                let e = Err(Error::input(field, InputError::ControlCharacter));
                assert_eq!(cred.write_header_line(&mut buf), e);
                assert_eq!(cred.write_target("/w", &mut buf), e);
                assert_eq!(cred.validate().map(|_| 0), e);
                assert!(buf.iter().all(|&b| b == 0x77));
            }
        }
        assert_eq!(
            ApiCredential::Bearer("").validate(),
            Err(Error::input(Field::AccessToken, InputError::Empty))
        );
        assert_eq!(
            ApiCredential::Bearer(" tok").validate(),
            Err(Error::input(
                Field::AccessToken,
                InputError::InvalidCharacter
            ))
        );
        assert_eq!(
            ApiCredential::ApiKey {
                scheme: Some("Bea rer"),
                key: "k"
            }
            .validate(),
            Err(Error::input(Field::Scheme, InputError::InvalidCharacter))
        );
    }

    #[test]
    fn debug_hides_secrets() {
        for c in [
            ApiCredential::Bearer("SECRETVALUE"),
            ApiCredential::ApiKey {
                scheme: Some("Bearer"),
                key: "SECRETVALUE",
            },
            ApiCredential::Header {
                name: "X-Api-Key",
                value: "SECRETVALUE",
            },
            ApiCredential::QueryParam {
                name: "access_token",
                value: "SECRETVALUE",
            },
        ] {
            let s = format!("{c:?}");
            assert!(!s.contains("SECRETVALUE"), "{s}");
            assert!(s.contains("<redacted>"));
        }
    }
}
