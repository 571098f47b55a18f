//! Credential application (`ApiCredential`) and the authorization URL
//! (`AuthorizationRequest`) with arbitrary configured strings and targets.
//!
//! Checks:
//! - a credential is applied exactly when its values are acceptable
//!   (header values without control characters other than HTAB or
//!   surrounding whitespace; names and schemes tokens, not reserved;
//!   parameters non-empty without control characters), else refused with a
//!   typed `InvalidInput` and nothing written;
//! - a header line parses with httparse as one header with the expected
//!   name and value;
//! - a target with a query credential is the target, then `?` if it had no
//!   query, nothing if its query is empty or ends in `&`, else `&` (a query
//!   ending in `limit=` or in a `?` of its own gets `&`), then `name=value`
//!   exactly as `form_urlencoded`
//!   serializes them; its query decodes to the target's pairs plus the
//!   credential; `GET <target> HTTP/1.1` parses with httparse;
//! - the authorization URL's query is the endpoint's pairs plus the
//!   documented parameters, in order, decoding back to the configured
//!   strings.
#![no_main]

use fieldauth::apply::ApiCredential;
use fieldauth::pkce::{AuthorizationRequest, ChallengeMethod, CodeVerifier};
use fieldauth::url::Url;
use fieldauth::Error;
use fieldauth_fuzz::{form, gen_str, has_ctl, header_value_ok, is_token};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

const TARGETS: [&str; 10] = [
    "/api/rest/v2/workorders",
    "/api/rest/v2/workorders?limit=",
    "/w?",
    "/w?x=1&",
    "/w?x=1&y=2",
    "/w?a",
    "https://api.fieldnation.com/api/rest/v2/workorders?page=2",
    "/w?&&",
    "/w?limit=%",
    "/w?a=%2",
];

fn gen_target(u: &mut Unstructured<'_>) -> String {
    match u.int_in_range(0..=3u8).unwrap_or(0) {
        0 => gen_str(u),
        1 => format!("{}{}", u.choose(&TARGETS).unwrap_or(&"/"), gen_str(u)),
        _ => (*u.choose(&TARGETS).unwrap_or(&"/")).to_string(),
    }
}

/// RFC 3986 path/query characters, as fieldauth's target check has them.
fn target_ok(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

fn query_of(s: &str) -> Option<&str> {
    s.split_once('?').map(|(_, q)| q)
}

fn pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn check_credential(u: &mut Unstructured<'_>) {
    let (a, b) = (gen_str(u), gen_str(u));
    let name_pick = if u.ratio(1, 2).unwrap_or(false) {
        (*u.choose(&[
            "access_token",
            "X-Api-Key",
            "api key",
            "Host",
            "authorization",
            "Bearer",
        ])
        .unwrap_or(&"x"))
        .to_string()
    } else {
        gen_str(u)
    };
    let scheme = if u.arbitrary::<bool>().unwrap_or(false) {
        Some(name_pick.as_str())
    } else {
        None
    };
    let cred = match u.int_in_range(0..=3u8).unwrap_or(0) {
        0 => ApiCredential::Bearer(&a),
        1 => ApiCredential::ApiKey { scheme, key: &a },
        2 => ApiCredential::Header {
            name: &name_pick,
            value: &b,
        },
        _ => ApiCredential::QueryParam {
            name: &name_pick,
            value: &b,
        },
    };
    let reserved = |n: &str| {
        [
            "host",
            "content-length",
            "transfer-encoding",
            "content-type",
            "authorization",
        ]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(n))
    };
    let param_ok = |s: &str| !s.is_empty() && !has_ctl(s);
    let (valid, header): (bool, Option<(String, String)>) = match cred {
        ApiCredential::Bearer(t) => (
            header_value_ok(t),
            Some(("Authorization".into(), format!("Bearer {t}"))),
        ),
        ApiCredential::ApiKey { scheme, key } => (
            scheme.is_none_or(is_token) && header_value_ok(key),
            Some((
                "Authorization".into(),
                match scheme {
                    Some(s) => format!("{s} {key}"),
                    None => key.to_string(),
                },
            )),
        ),
        ApiCredential::Header { name, value } => (
            is_token(name) && !reserved(name) && header_value_ok(value),
            Some((name.to_string(), value.to_string())),
        ),
        ApiCredential::QueryParam { name, value } => (param_ok(name) && param_ok(value), None),
    };
    assert_eq!(
        cred.validate().is_ok(),
        valid,
        "validate() of {cred:?}: {:?}",
        cred.validate()
    );
    assert_eq!(cred.header_name(), header.as_ref().map(|(n, _)| n.as_str()));

    // The header line.
    let mut buf = vec![0x77u8; 1024];
    match cred.write_header_line(&mut buf) {
        Ok(n) if header.is_none() => assert_eq!(n, 0),
        Ok(n) => {
            assert!(valid);
            let (name, value) = header.as_ref().unwrap();
            let mut block = buf[..n].to_vec();
            block.extend_from_slice(b"\r\n");
            let mut hs = [httparse::EMPTY_HEADER; 4];
            match httparse::parse_headers(&block, &mut hs) {
                Ok(httparse::Status::Complete((_, parsed))) => {
                    assert_eq!(
                        parsed.len(),
                        1,
                        "one header line: {:?}",
                        String::from_utf8_lossy(&block)
                    );
                    assert_eq!(parsed[0].name, name.as_str());
                    assert_eq!(parsed[0].value, value.as_bytes());
                }
                other => panic!(
                    "httparse: {other:?} on {:?}",
                    String::from_utf8_lossy(&block)
                ),
            }
            let mut vbuf = vec![0u8; 1024];
            let vn = cred.write_header_value(&mut vbuf).unwrap();
            assert_eq!(&vbuf[..vn], value.as_bytes());
        }
        Err(e) => {
            assert!(!valid, "refused a valid credential: {e:?}");
            assert!(matches!(e, Error::InvalidInput { .. }));
            assert!(
                buf.iter().all(|&b| b == 0x77),
                "a refused credential wrote bytes"
            );
        }
    }

    // The target.
    let target = gen_target(u);
    let mut buf = vec![0x77u8; 2048];
    match cred.write_target(&target, &mut buf) {
        Err(e) => {
            assert!(
                !valid || !target_ok(&target),
                "refused {target:?} for {cred:?}: {e:?}"
            );
            assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        }
        Ok(n) => {
            assert!(
                valid && target_ok(&target),
                "accepted {target:?} for {cred:?}"
            );
            let out = std::str::from_utf8(&buf[..n]).unwrap();
            match cred {
                ApiCredential::QueryParam { name, value } => {
                    // The query is everything after the first `?`; `?` is
                    // an ordinary character inside it.
                    let sep = match query_of(&target) {
                        None => "?",
                        Some("") => "",
                        Some(q) if q.ends_with('&') => "",
                        Some(_) => "&",
                    };
                    let want = format!("{target}{sep}{}={}", form(name), form(value));
                    assert_eq!(out, want, "query credential on {target:?}");
                    // Decoded: the target's pairs, then the credential.
                    let mut expected = pairs(query_of(&target).unwrap_or(""));
                    expected.push((name.to_string(), value.to_string()));
                    assert_eq!(pairs(query_of(out).unwrap()), expected, "{out:?}");
                    assert_eq!(
                        out.split_once('?').unwrap().0,
                        target.split_once('?').map_or(target.as_str(), |t| t.0)
                    );
                }
                _ => assert_eq!(out, target),
            }
            let line = format!("GET {out} HTTP/1.1\r\nHost: h\r\n\r\n");
            let mut hs = [httparse::EMPTY_HEADER; 4];
            let mut req = httparse::Request::new(&mut hs);
            assert!(
                matches!(
                    req.parse(line.as_bytes()),
                    Ok(httparse::Status::Complete(_))
                ),
                "{line:?}"
            );
            assert_eq!(req.path, Some(out));
            // A buffer one byte short: the exact size, nothing left in it.
            let mut small = vec![0x55u8; n - 1];
            assert_eq!(
                cred.write_target(&target, &mut small),
                Err(Error::BufferTooSmall { needed: n as u32 })
            );
            assert!(small.iter().all(|&b| b == 0));
        }
    }
}

fn check_authorization_url(u: &mut Unstructured<'_>) {
    let path = gen_target(u);
    let base = format!(
        "https://auth.example.com{}",
        if path.starts_with('/') {
            path.as_str()
        } else {
            "/oauth/authorize"
        }
    );
    let Ok(endpoint) = Url::parse(&base) else {
        return;
    };
    let client_id = gen_str(u);
    let redirect = u.arbitrary::<bool>().unwrap_or(false).then(|| gen_str(u));
    let scope = u.arbitrary::<bool>().unwrap_or(false).then(|| gen_str(u));
    let state = u.arbitrary::<bool>().unwrap_or(false).then(|| gen_str(u));
    let verifier = CodeVerifier::from_random(&[7u8; 32]).unwrap();
    let method = if u.arbitrary::<bool>().unwrap_or(false) {
        ChallengeMethod::S256
    } else {
        ChallengeMethod::Plain
    };
    let mut req = AuthorizationRequest::new(endpoint, &client_id);
    req.redirect_uri = redirect.as_deref();
    req.scope = scope.as_deref();
    req.state = state.as_deref();
    req.pkce = Some((&verifier, method));
    let param_ok = |s: &str| !s.is_empty() && !has_ctl(s);
    let valid = param_ok(&client_id)
        && [&redirect, &scope, &state]
            .iter()
            .all(|o| o.as_deref().is_none_or(param_ok));
    let mut buf = vec![0u8; 4096];
    match req.write(&mut buf) {
        Err(e) => {
            assert!(!valid, "refused: {e:?}");
            assert!(matches!(e, Error::InvalidInput { .. }));
        }
        Ok(n) => {
            assert!(valid);
            let out = std::str::from_utf8(&buf[..n]).unwrap();
            let (_, path_q) = endpoint.target_parts();
            let mut expected = pairs(query_of(path_q).unwrap_or(""));
            expected.push(("client_id".into(), client_id.clone()));
            if let Some(r) = &redirect {
                expected.push(("redirect_uri".into(), r.clone()));
            }
            if let Some(s) = &scope {
                expected.push(("scope".into(), s.clone()));
            }
            expected.push(("response_type".into(), "code".into()));
            if let Some(s) = &state {
                expected.push(("state".into(), s.clone()));
            }
            expected.push(("code_challenge".into(), verifier.challenge_for(method)));
            expected.push(("code_challenge_method".into(), method.as_str().into()));
            assert_eq!(pairs(query_of(out).unwrap()), expected, "{out:?}");
            assert!(out.starts_with(&base.split('?').next().unwrap().to_ascii_lowercase()[..8]));
        }
    }
}

trait ChallengeFor {
    fn challenge_for(&self, m: ChallengeMethod) -> String;
}

impl ChallengeFor for CodeVerifier {
    fn challenge_for(&self, m: ChallengeMethod) -> String {
        match m {
            ChallengeMethod::Plain => self.as_str().to_string(),
            ChallengeMethod::S256 => self.challenge().as_str().to_string(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if u.arbitrary::<bool>().unwrap_or(true) {
        check_credential(&mut u);
    } else {
        check_authorization_url(&mut u);
    }
});
