//! Token-request building with arbitrary configured strings.
//!
//! The input drives an endpoint URL, a client configuration (id, secret,
//! scope, resource, audience, extra headers, user agent, body format,
//! client authentication) and a grant, all with arbitrary strings. Checks:
//! - `Url::parse` refuses a control character with `ControlCharacter`, and
//!   what it accepts writes back to a URL that parses the same;
//! - a request is written exactly when every value it uses is acceptable
//!   (parameters non-empty and free of control characters, so CR, LF and NUL
//!   never pass; header values and names valid; https unless loopback or
//!   allowed), and is refused with a typed `InvalidInput` otherwise;
//! - the written request parses with httparse: `POST`, the endpoint's
//!   target, `Host`, exact `Content-Length`, the configured headers and
//!   nothing else (no header injection);
//! - a form body is exactly what `form_urlencoded` serializes for the
//!   documented parameters, in order, and decodes back to the configured
//!   strings; a JSON body is an object with the same members; HTTP Basic
//!   decodes back to the client id and secret;
//! - `write_parts`, `write_body`, `write_http_window` (any window size) and
//!   a short buffer (`BufferTooSmall` with the exact size, buffer zeroed)
//!   agree with `write_http`.
#![no_main]

use base64::Engine;
use fieldauth::request::{BodyFormat, Client, ClientAuth, Grant, TokenTypeHint, MAX_EXTRA_HEADERS};
use fieldauth::url::{Scheme, Url};
use fieldauth::{Error, Field, InputError};
use fieldauth_fuzz::{form, gen_str, has_ctl, header_value_ok, is_token, Members};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

const HOSTS: [&str; 8] = [
    "api.fieldnation.com",
    "webservices.autotask.net",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "h.example:8443",
    "api.example.com:443",
    "evil.example",
];

fn gen_url(u: &mut Unstructured<'_>) -> String {
    if u.ratio(1, 4).unwrap_or(false) {
        return gen_str(u);
    }
    let scheme = *u
        .choose(&["https", "http", "HTTPS", "ftp"])
        .unwrap_or(&"https");
    let host = *u.choose(&HOSTS).unwrap_or(&"h");
    let path = *u
        .choose(&[
            "",
            "/",
            "/oauth/token",
            "/authentication/api/oauth/token",
            "/t?limit=",
            "/t?a=1&",
            "/a b",
        ])
        .unwrap_or(&"");
    let extra = if u.ratio(1, 3).unwrap_or(false) {
        gen_str(u)
    } else {
        String::new()
    };
    format!("{scheme}://{host}{path}{extra}")
}

fn opt(u: &mut Unstructured<'_>) -> Option<String> {
    u.arbitrary::<bool>().unwrap_or(false).then(|| gen_str(u))
}

/// A parameter value fieldauth must accept: non-empty, no control character.
fn param_ok(s: &str) -> bool {
    !s.is_empty() && !has_ctl(s)
}

fn check_url(s: &str) -> Option<Url<'_>> {
    match Url::parse(s) {
        Ok(url) => {
            let mut buf = [0u8; 512];
            let n = url.write(&mut buf).expect("fits");
            let written = std::str::from_utf8(&buf[..n]).unwrap().to_string();
            let again = Url::parse(&written)
                .unwrap_or_else(|e| panic!("{s:?} wrote {written:?}, which fails: {e:?}"));
            assert_eq!(again.host(), url.host());
            assert_eq!(again.port(), url.port());
            assert_eq!(again.scheme(), url.scheme());
            let (a, b) = url.target_parts();
            assert_eq!(again.target_parts().1, format!("{a}{b}"));
            assert!(!s.bytes().any(|b| b < 0x20 || b == 0x7f));
            Some(url)
        }
        Err(e) => {
            if has_ctl(s) {
                assert_eq!(
                    e,
                    Error::input(Field::Url, InputError::ControlCharacter),
                    "{s:?}"
                );
            } else {
                assert!(
                    matches!(
                        e,
                        Error::InvalidInput {
                            field: Field::Url,
                            kind: InputError::InvalidCharacter | InputError::InvalidUrl
                        }
                    ),
                    "{s:?}: {e:?}"
                );
            }
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let url_text = gen_url(&mut u);
    let Some(endpoint) = check_url(&url_text) else {
        return;
    };
    let client_id = gen_str(&mut u);
    let secret = opt(&mut u);
    let scope = opt(&mut u);
    let resource = opt(&mut u);
    let audience = opt(&mut u);
    let user_agent = opt(&mut u);
    let n_headers = u.int_in_range(0..=MAX_EXTRA_HEADERS + 1).unwrap_or(0);
    let mut header_strings = Vec::new();
    for _ in 0..n_headers {
        let name = if u.ratio(3, 4).unwrap_or(false) {
            (*u.choose(&[
                "X-Request-Id",
                "X-Api-Version",
                "Host",
                "content-length",
                "Authorization",
                "X Bad",
                "Accept",
            ])
            .unwrap())
            .to_string()
        } else {
            gen_str(&mut u)
        };
        header_strings.push((name, gen_str(&mut u)));
    }
    let extra: Vec<(&str, &str)> = header_strings
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let auth = *u
        .choose(&[ClientAuth::Body, ClientAuth::Basic, ClientAuth::None])
        .unwrap_or(&ClientAuth::Body);
    let format = if u.arbitrary::<bool>().unwrap_or(false) {
        BodyFormat::Json
    } else {
        BodyFormat::Form
    };
    let allow_insecure = u.arbitrary::<bool>().unwrap_or(false);
    let (s1, s2, s3) = (gen_str(&mut u), gen_str(&mut u), gen_str(&mut u));
    let (o1, o2) = (opt(&mut u), opt(&mut u));
    let hint = *u
        .choose(&[
            None,
            Some(TokenTypeHint::AccessToken),
            Some(TokenTypeHint::RefreshToken),
        ])
        .unwrap_or(&None);
    let grant = match u.int_in_range(0..=8u8).unwrap_or(0) {
        0 => Grant::ClientCredentials,
        1 => Grant::Password {
            username: &s1,
            password: &s2,
        },
        2 => Grant::Login {
            username: &s1,
            password: &s2,
        },
        3 => Grant::RefreshToken { refresh_token: &s1 },
        4 => Grant::AuthorizationCode {
            code: &s1,
            redirect_uri: o1.as_deref(),
            code_verifier: o2.as_deref(),
        },
        5 => Grant::DeviceCode { device_code: &s3 },
        6 => Grant::DeviceAuthorization,
        7 => Grant::Revoke { token: &s1, hint },
        _ => Grant::RevokeBearer { token: &s1 },
    };
    let client = Client {
        endpoint,
        client_id: &client_id,
        client_secret: secret.as_deref(),
        auth,
        format,
        scope: scope.as_deref(),
        resource: resource.as_deref(),
        audience: audience.as_deref(),
        allow_insecure,
        extra_headers: &extra,
        user_agent: user_agent.as_deref(),
        // Not fuzzed here (the oracle below lists the documented
        // parameters); the core's params tests cover them.
        extra_params: None,
    };
    let request = client.request(grant);

    // The documented parameters, in order, and whether every value is
    // acceptable.
    let mut ok = true;
    let mut params: Vec<(&str, &str)> = Vec::new();
    let mut scoped = false;
    let uses_client = !matches!(grant, Grant::Login { .. } | Grant::RevokeBearer { .. });
    match grant {
        Grant::ClientCredentials => {
            params.push(("grant_type", "client_credentials"));
            scoped = true;
        }
        Grant::Password { username, password } => {
            params.extend([
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ]);
            scoped = true;
        }
        Grant::Login { username, password } => {
            params.extend([("username", username), ("password", password)])
        }
        Grant::RefreshToken { refresh_token } => {
            params.extend([
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ]);
            scoped = true;
        }
        Grant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            params.extend([("grant_type", "authorization_code"), ("code", code)]);
            params.extend(redirect_uri.map(|v| ("redirect_uri", v)));
            params.extend(code_verifier.map(|v| ("code_verifier", v)));
        }
        Grant::DeviceCode { device_code } => params.extend([
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
        ]),
        Grant::DeviceAuthorization => scoped = true,
        Grant::Revoke { token, hint } => {
            params.push(("token", token));
            params.extend(hint.map(|h| ("token_type_hint", h.as_str())));
        }
        Grant::RevokeBearer { token } => ok &= header_value_ok(token),
    }
    if uses_client {
        params.push(("client_id", &client_id));
        if auth != ClientAuth::None {
            match &secret {
                Some(s) => params.push(("client_secret", s)),
                None => ok = false,
            }
        }
    }
    for (_, v) in &params {
        ok &= param_ok(v);
    }
    if auth == ClientAuth::Basic && uses_client {
        params.retain(|(k, _)| *k != "client_id" && *k != "client_secret");
    }
    if scoped {
        for (k, v) in [
            ("scope", &scope),
            ("resource", &resource),
            ("audience", &audience),
        ] {
            if let Some(v) = v {
                ok &= param_ok(v);
                params.push((k, v));
            }
        }
    }
    ok &= extra.len() <= MAX_EXTRA_HEADERS;
    for (name, value) in &extra {
        let reserved = [
            "host",
            "content-length",
            "transfer-encoding",
            "content-type",
            "authorization",
        ]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name));
        ok &= is_token(name) && !reserved && header_value_ok(value);
    }
    if let Some(ua) = &user_agent {
        ok &= header_value_ok(ua);
    }
    let insecure = endpoint.scheme() == Scheme::Http && !endpoint.is_loopback() && !allow_insecure;
    ok &= !insecure;

    let mut buf = vec![0u8; 8192];
    let result = request.write_http(&mut buf);
    let n = match result {
        Err(e) => {
            assert!(
                !ok,
                "refused a valid request: {e:?} ({grant:?}, {client:?})"
            );
            assert!(
                matches!(e, Error::InvalidInput { .. }),
                "not a typed input error: {e:?}"
            );
            assert!(buf.iter().all(|&b| b == 0), "a refused request wrote bytes");
            assert_eq!(request.write_body(&mut buf), Err(e));
            return;
        }
        Ok(n) => n,
    };
    assert!(
        ok,
        "wrote a request with a refused value: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let raw = buf[..n].to_vec();

    // httparse reads the same request, with exactly the expected headers.
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(&raw) {
        Ok(httparse::Status::Complete(h)) => h,
        other => panic!("httparse: {other:?} on {:?}", String::from_utf8_lossy(&raw)),
    };
    assert_eq!(req.method, Some("POST"));
    assert_eq!(req.version, Some(1));
    let (prefix, path) = endpoint.target_parts();
    assert_eq!(req.path, Some(format!("{prefix}{path}").as_str()));
    let body = &raw[head_len..];
    let get = |name: &str| -> Vec<&[u8]> {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect()
    };
    assert_eq!(get("host"), [endpoint.host_header().as_bytes()]);
    assert_eq!(get("content-length"), [body.len().to_string().as_bytes()]);
    let has_body = !matches!(grant, Grant::RevokeBearer { .. });
    let basic = auth == ClientAuth::Basic && uses_client;
    let expected_headers = 3
        + usize::from(has_body)
        + usize::from(basic || !has_body)
        + extra.len()
        + usize::from(user_agent.is_some());
    assert_eq!(
        req.headers.len(),
        expected_headers,
        "header count (injection?)"
    );
    for (i, (name, value)) in extra.iter().enumerate() {
        let h = &req.headers[3 + usize::from(has_body) + usize::from(basic || !has_body) + i];
        assert_eq!((h.name, h.value), (*name, value.as_bytes()));
    }
    if let Some(ua) = &user_agent {
        assert_eq!(get("user-agent"), [ua.as_bytes()]);
    }
    if let Grant::RevokeBearer { token } = grant {
        assert!(body.is_empty());
        assert_eq!(get("authorization"), [format!("Bearer {token}").as_bytes()]);
    }
    if basic {
        let auth_value = get("authorization");
        let b64 = std::str::from_utf8(auth_value[0])
            .unwrap()
            .strip_prefix("Basic ")
            .expect("Basic");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        let decoded = String::from_utf8(decoded).unwrap();
        let (id, sec) = decoded.split_once(':').expect("id:secret");
        // RFC 6749 §2.3.1: each form-urlencoded.
        assert_eq!(id, form(&client_id));
        assert_eq!(sec, form(secret.as_deref().unwrap()));
    }

    // The body: exactly the documented parameters.
    if has_body {
        match format {
            BodyFormat::Form => {
                assert_eq!(
                    get("content-type"),
                    [&b"application/x-www-form-urlencoded"[..]]
                );
                let want: String = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter())
                    .finish();
                assert_eq!(std::str::from_utf8(body).unwrap(), want, "form body");
                let decoded: Vec<(String, String)> =
                    form_urlencoded::parse(body).into_owned().collect();
                let want: Vec<(String, String)> = params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(decoded, want, "form body does not decode to the parameters");
            }
            BodyFormat::Json => {
                assert_eq!(get("content-type"), [&b"application/json"[..]]);
                let members = serde_json::from_slice::<Members>(body)
                    .expect("JSON body")
                    .0;
                let got: Vec<(String, String)> = members
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().expect("string member").to_string()))
                    .collect();
                let want: Vec<(String, String)> = params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(got, want, "JSON body");
            }
        }
    }

    // The other ways of writing the same request agree.
    let mut pbuf = vec![0u8; n];
    let parts = request.write_parts(&mut pbuf).expect("parts");
    assert_eq!(parts.raw, &raw[..]);
    assert_eq!(parts.body, body);
    assert_eq!(parts.target, req.path.unwrap());
    assert_eq!(parts.headers().count(), req.headers.len());
    assert_eq!(parts.headers().count(), parts.header_count);
    for (a, b) in parts.headers().zip(req.headers.iter()) {
        assert_eq!((a.0, a.1.as_bytes()), (b.name, b.value));
    }
    let mut bbuf = vec![0u8; body.len()];
    assert_eq!(request.write_body(&mut bbuf), Ok(body.len()));
    assert_eq!(bbuf, body);
    let window = 1 + usize::from(u.arbitrary::<u8>().unwrap_or(0));
    let mut joined = Vec::new();
    let mut wbuf = vec![0u8; window];
    loop {
        let w = request
            .write_http_window(joined.len(), &mut wbuf)
            .expect("window");
        assert_eq!(w.total, n);
        joined.extend_from_slice(&wbuf[..w.written]);
        if joined.len() >= n || w.written == 0 {
            break;
        }
    }
    assert_eq!(joined, raw, "windows of {window} bytes");
    let short = usize::from(u.arbitrary::<u16>().unwrap_or(0)) % n;
    let mut sbuf = vec![0x55u8; short];
    assert_eq!(
        request.write_http(&mut sbuf),
        Err(Error::BufferTooSmall { needed: n as u32 })
    );
    assert!(
        sbuf.iter().all(|&b| b == 0),
        "a short buffer kept partial output"
    );
});
