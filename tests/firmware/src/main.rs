//! A bare-metal image that calls every public entry point of the fieldauth
//! core with inputs the optimizer cannot see (`black_box`).
//!
//! Two proofs come from linking it for `thumbv7em-none-eabihf` with the
//! `firmware` profile (opt-level z, LTO):
//! - **no panic paths**: the panic handler calls `fieldauth_panic_path_survived`,
//!   a symbol that exists nowhere. If any panic (bounds check, overflow check,
//!   unwrap, slice copy length check...) survives optimization, the link fails
//!   naming that symbol.
//! - **flash size**: `.text + .rodata + .data` of the image is the core's
//!   footprint with everything reachable from these calls.
//!
//! The default build (feature `full`) has every optional fieldauth feature
//! and calls everything. `--no-default-features --features
//! firmware,presets-only` builds the image a device that only needs the four
//! provider presets would have: no device flow, IETF rate-limit fields,
//! obsolete HTTP-date formats, HTTP Basic client authentication or PKCE.
#![no_std]
#![no_main]

#[cfg(all(
    feature = "presets-only",
    any(
        feature = "device-flow",
        feature = "ietf-ratelimit",
        feature = "obsolete-dates",
        feature = "basic-auth",
        feature = "pkce"
    )
))]
compile_error!(
    "`presets-only` measures fieldauth without its optional features: build with --no-default-features"
);

use core::hint::black_box;
use fieldauth::apply::ApiCredential;
use fieldauth::body::{parse_body, BodyParser, Expect, Response, PATCHWORKS_KEYS, STANDARD_KEYS};
use fieldauth::http::{parse_http_date, BodyReader, HeadParser, ResetMode};
use fieldauth::pkce::{AuthorizationRequest, State};
#[cfg(feature = "pkce")]
use fieldauth::pkce::{ChallengeMethod, CodeVerifier};
use fieldauth::request::{BodyFormat, Client, ClientAuth, Grant, TokenTypeHint};
use fieldauth::url::Url;

#[cfg(not(feature = "allow-panic"))]
extern "C" {
    /// Deliberately undefined: referencing it fails the link.
    fn fieldauth_panic_path_survived() -> !;
}

#[cfg(not(feature = "allow-panic"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: never executed; the symbol does not exist, so any reachable call
    // is a link error, which is the point.
    unsafe { fieldauth_panic_path_survived() }
}

/// Diagnostic build (`--features allow-panic`): links, so that
/// `llvm-objdump -d` shows which functions still call the panic machinery.
#[cfg(feature = "allow-panic")]
#[panic_handler]
#[inline(never)]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Reset entry point.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    loop {
        body();
        session();
        http();
        requests();
        apply();
        pkce();
        #[cfg(feature = "full")]
        driver();
    }
}

/// An opaque string.
fn text(s: &'static str) -> &'static str {
    black_box(s)
}

#[inline(never)]
fn http() {
    let raw = [0u8; 256];
    let mut p: HeadParser<256> = HeadParser::new();
    for chunk in input(&raw).chunks(128) {
        match p.feed(chunk) {
            Ok(None) => {}
            _ => break,
        }
    }
    if let Some(h) = p.head() {
        black_box(h.status);
        black_box(h.x_rate_limit.reset_at(ResetMode::Auto, black_box(0)));
        #[cfg(feature = "ietf-ratelimit")]
        black_box(h.rate_limit);
        black_box(h.retry_after.map(|r| r.delay_from(black_box(0))));
        let mut r = BodyReader::new(h.framing());
        if let Ok((n, data)) = r.next(input(&raw)) {
            black_box((n, data));
        }
        black_box(r.is_done());
        let _ = black_box(r.finish());
    }
    black_box(p.bearer().map(|b| (b.code, b.error_description)));
    black_box(parse_http_date(input(&raw)));
}

#[inline(never)]
fn requests() {
    let mut buf = [0u8; 512];
    let Ok(url) = Url::parse(text("https://api.example.com/oauth/token")) else {
        return;
    };
    let mut client = Client::new(url, text("client"));
    client.client_secret = Some(text("secret"));
    client.auth = if black_box(true) {
        #[cfg(feature = "basic-auth")]
        {
            ClientAuth::Basic
        }
        #[cfg(not(feature = "basic-auth"))]
        {
            ClientAuth::None
        }
    } else {
        ClientAuth::Body
    };
    client.format = if black_box(true) {
        BodyFormat::Json
    } else {
        BodyFormat::Form
    };
    client.scope = Some(text("api"));
    let grants = [
        Grant::ClientCredentials,
        Grant::Password {
            username: text("u"),
            password: text("p"),
        },
        Grant::Login {
            username: text("u"),
            password: text("p"),
        },
        Grant::RefreshToken {
            refresh_token: text("r"),
        },
        Grant::AuthorizationCode {
            code: text("c"),
            redirect_uri: Some(text("https://x/cb")),
            code_verifier: Some(text("v")),
        },
        #[cfg(feature = "device-flow")]
        Grant::DeviceCode {
            device_code: text("d"),
        },
        #[cfg(feature = "device-flow")]
        Grant::DeviceAuthorization,
        Grant::Revoke {
            token: text("t"),
            hint: Some(TokenTypeHint::RefreshToken),
        },
        Grant::RevokeBearer { token: text("t") },
    ];
    let g = grants[black_box(0usize) % grants.len()];
    let req = client.request(g);
    let _ = black_box(req.write_http(&mut buf));
    if let Ok(parts) = req.write_parts(&mut buf) {
        black_box(parts.header(text("Authorization")));
        black_box(parts.body);
    }
    if let Ok(u2) = url.join(text("/oauth/revoke")) {
        let _ = black_box(client.request_to(u2, g).write_http(&mut buf));
    }
    let _ = black_box(url.write(&mut buf));
}

#[inline(never)]
fn apply() {
    let mut buf = [0u8; 512];
    let creds = [
        ApiCredential::Bearer(text("tok")),
        ApiCredential::ApiKey {
            scheme: Some(text("Bearer")),
            key: text("k"),
        },
        ApiCredential::Header {
            name: text("X-Api-Key"),
            value: text("k"),
        },
        ApiCredential::QueryParam {
            name: text("access_token"),
            value: text("t"),
        },
    ];
    let c = creds[black_box(0usize) % creds.len()];
    let _ = black_box(c.write_header_line(&mut buf));
    let _ = black_box(c.write_header_value(&mut buf));
    let _ = black_box(c.write_target(text("/api/v1/x?y=1"), &mut buf));
}

#[inline(never)]
fn pkce() {
    let mut buf = [0u8; 512];
    let random = [7u8; 32];
    #[cfg(feature = "pkce")]
    let Ok(v) = CodeVerifier::from_random(input(&random)) else {
        return;
    };
    let Ok(state) = State::from_random(input(&random[..16])) else {
        return;
    };
    black_box(state.matches(text("abc")));
    let Ok(url) = Url::parse(text("https://api.fentu.io/oauth/authorize")) else {
        return;
    };
    let mut a = AuthorizationRequest::new(url, text("client"));
    a.redirect_uri = Some(text("https://app/cb"));
    a.scope = Some(text("read:work-orders"));
    a.state = Some(state.as_str());
    #[cfg(feature = "pkce")]
    {
        a.pkce = Some((&v, ChallengeMethod::S256));
    }
    let _ = black_box(a.write(&mut buf));
    #[cfg(feature = "pkce")]
    {
        black_box(v.challenge().as_str().len());
        let _ = black_box(CodeVerifier::new(text(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        )));
    }
}

/// An opaque byte slice.
fn input<'a>(buf: &'a [u8]) -> &'a [u8] {
    black_box(buf)
}

#[inline(never)]
fn body() {
    let mut storage = [0u8; 1024];
    let raw = [0u8; 256];
    let status = black_box(200u16);
    // Streaming parse, as a device does through its receive buffer.
    let mut p = BodyParser::new(Expect::Token, status, STANDARD_KEYS);
    for chunk in input(&raw).chunks(128) {
        if p.feed(&mut storage, chunk).is_err() {
            break;
        }
    }
    if let Ok(o) = p.finish(&storage) {
        match o.view(&storage) {
            Response::Token(t) => {
                black_box(t.access_token);
                black_box(t.expires_in);
            }
            Response::Error(e) => {
                black_box(e.code);
                black_box(e.description);
            }
            other => {
                black_box(other);
            }
        }
    }
    for expect in [
        #[cfg(feature = "device-flow")]
        Expect::DeviceAuthorization,
        Expect::Revocation,
    ] {
        let keys = if black_box(false) {
            PATCHWORKS_KEYS
        } else {
            STANDARD_KEYS
        };
        let r = parse_body(black_box(expect), status, keys, input(&raw), &mut storage);
        let _ = black_box(r.map(|o| o.view(&storage)));
    }
}

/// The session with every preset: the whole lifecycle API with opaque inputs.
#[inline(never)]
fn session() {
    use fieldauth::preset;
    use fieldauth::session::{Authorization, Config, Session, TokenBody};
    let raw = [0u8; 256];
    let mut out = [0u8; 512];
    let config = Config {
        base_url: text("https://api.example.com"),
        client_id: text("client"),
        client_secret: text("secret"),
        username: text("user"),
        password: text("pass"),
        api_key: text("key"),
        scope: text(""),
        redirect_uri: text("https://app/cb"),
        allow_insecure: black_box(false),
        max_wait_s: black_box(0),
        resource: text(""),
        audience: text(""),
        token_params: text(""),
        authorize_params: text(""),
    };
    let profile = preset::ALL[black_box(0usize) % preset::ALL.len()];
    let Ok(mut s) = Session::<2048>::new(profile, &config, black_box(1)) else {
        return;
    };
    // The in-place constructor the C ABI uses.
    let mut slot = core::mem::MaybeUninit::<Session<2048>>::uninit();
    if let Ok(t) = Session::new_in(&mut slot, profile, &config, black_box(2)) {
        black_box(t.poll(black_box(1)));
        t.clear();
    }
    let now = black_box(1_000u64);
    black_box(s.poll(now));
    let _ = black_box(s.write_token_request(now, &mut out));
    let mut head: HeadParser<256> = HeadParser::new();
    if let Ok(Some(n)) = head.feed(input(&raw)) {
        if let Some(h) = head.head() {
            let mut tb = TokenBody::new();
            let _ = black_box(s.on_token_head(now, h, &mut tb));
            let body = input(raw.get(n..).unwrap_or(&[]));
            let _ = black_box(s.on_token_body(now, &mut tb, body));
            let _ = black_box(s.on_token_eof(now, &mut tb));
            black_box(s.on_api_response(now, h, input(&raw)));
        }
    }
    black_box(s.on_transport_error(now));
    if let Authorization::Send(c) = s.authorize(now) {
        let _ = black_box(c.write_header_line(&mut out));
    }
    let _ = black_box(s.authorization_url(input(&raw[..32]), input(&raw[..16]), &mut out));
    let _ = black_box(s.set_authorization_code(text("code"), text("state")));
    #[cfg(feature = "redirect")]
    let _ = black_box(s.on_authorization_callback(text("/cb?code=c&state=s"), None));
    black_box(s.device_display().map(|d| d.user_code.len()));
    let _ = black_box(s.snapshot(now, black_box(0), &mut out));
    let _ = black_box(s.restore(now, black_box(0), input(&raw)));
    s.set_wall_clock(now, black_box(0));
    s.revoke();
    s.restart();
    black_box(s.status());
    black_box(s.failure_description().map(str::len));
    s.clear();
}

/// The blocking transport driver over a dummy embedded-io stream: a token
/// exchange, an API request and its body, with opaque bytes and outcomes.
#[cfg(feature = "full")]
#[inline(never)]
fn driver() {
    use fieldauth::driver::{self, embedded_io, ApiOutcome};
    use fieldauth::preset;
    use fieldauth::session::{Config, Session};

    /// Reads pieces of an opaque response (sizes the optimizer cannot see);
    /// writes go nowhere. Either may fail.
    struct Wire<'a> {
        rx: &'a [u8],
    }
    impl embedded_io::ErrorType for Wire<'_> {
        type Error = embedded_io::ErrorKind;
    }
    impl embedded_io::Read for Wire<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            if black_box(false) {
                return Err(embedded_io::ErrorKind::TimedOut);
            }
            let n = black_box(buf.len()).min(self.rx.len());
            let (now, later) = self.rx.split_at_checked(n).unwrap_or((self.rx, &[]));
            for (d, s) in buf.iter_mut().zip(now) {
                *d = *s;
            }
            self.rx = later;
            Ok(n)
        }
    }
    impl embedded_io::Write for Wire<'_> {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            black_box(buf);
            Ok(black_box(buf.len()))
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            black_box(Ok(()))
        }
    }

    // One opaque value for every credential: `new` fails for no preset.
    let v = text("v");
    let config = Config {
        base_url: text("https://api.example.com"),
        redirect_uri: text("https://app/cb"),
        ..Config {
            client_id: v,
            client_secret: v,
            username: v,
            password: v,
            api_key: v,
            ..Config::default()
        }
    };
    let profile = preset::ALL[black_box(0usize) % preset::ALL.len()];
    let Ok(mut s) = Session::<2048>::new(profile, &config, black_box(1)) else {
        return;
    };
    let raw = [0u8; 256];
    let mut io = Wire { rx: input(&raw) };
    let mut buf = [0u8; 128];
    let now = black_box(1_000u64);
    let _ = black_box(driver::exchange_token(&mut s, now, &mut io, &mut buf));
    let Ok(url) = Url::parse(text("https://api.example.com/v1/work-orders")) else {
        return;
    };
    if let Ok(ApiOutcome::Response(r)) = driver::api_get(&mut s, now, &mut io, url, &mut buf) {
        black_box(r.verdict);
        black_box(r.bearer().map(|b| b.code));
        let _ = black_box(driver::read_body(&mut io, &r, &mut buf, |d| {
            black_box(d);
        }));
    }
}
