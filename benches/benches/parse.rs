//! fieldauth against the usual host-side stack, in one criterion run.
//!
//! - `token_response`: a realistic 1,158-byte token response parsed by
//!   fieldauth (whole body, and streamed through a 128-byte receive buffer),
//!   by serde_json into the `oauth2` crate's `BasicTokenResponse`, and by
//!   serde_json into a borrowed struct.
//! - `form_body`: a client_credentials form body built by fieldauth into a
//!   stack buffer and by `form_urlencoded` into a `String`.
//!
//! Before measuring, the binary checks with a counting global allocator that
//! the fieldauth paths allocate nothing, and aborts if they do.
//!
//! Run: `cargo bench -p fieldauth-benches --bench parse`

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fieldauth::body::{parse_body, BodyParser, Expect, STANDARD_KEYS};
use fieldauth::request::{BodyFormat, Client, ClientAuth, Grant};
use fieldauth::url::Url;
use fieldauth_benches::TOKEN_RESPONSE_1K1 as BODY;
use oauth2::basic::BasicTokenResponse;
use oauth2::TokenResponse as _;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// serde_json into a borrowed struct: borrows where no escape intervenes.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Borrowed<'a> {
    #[serde(borrow)]
    access_token: Cow<'a, str>,
    #[serde(borrow)]
    token_type: Cow<'a, str>,
    expires_in: Option<u64>,
    #[serde(borrow)]
    refresh_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    scope: Option<Cow<'a, str>>,
}

/// What every contender extracts, so none can skip work.
type Extract = (usize, Option<u64>, Option<usize>, Option<usize>);

fn fieldauth_whole(storage: &mut [u8]) -> Extract {
    let o = parse_body(Expect::Token, 200, STANDARD_KEYS, black_box(BODY), storage)
        .expect("fixture parses");
    let t = o.token(storage).expect("token response");
    (
        t.access_token.len(),
        t.expires_in.map(u64::from),
        t.refresh_token.map(str::len),
        t.scope.map(str::len),
    )
}

fn fieldauth_streaming(storage: &mut [u8]) -> Extract {
    let mut p = BodyParser::new(Expect::Token, 200, STANDARD_KEYS);
    for chunk in black_box(BODY).chunks(128) {
        p.feed(storage, chunk).expect("chunk parses");
    }
    let o = p.finish(storage).expect("fixture parses");
    let t = o.token(storage).expect("token response");
    (
        t.access_token.len(),
        t.expires_in.map(u64::from),
        t.refresh_token.map(str::len),
        t.scope.map(str::len),
    )
}

fn serde_oauth2() -> Extract {
    let t: BasicTokenResponse = serde_json::from_slice(black_box(BODY)).expect("fixture parses");
    (
        t.access_token().secret().len(),
        t.expires_in().map(|d| d.as_secs()),
        t.refresh_token().map(|r| r.secret().len()),
        t.scopes().map(|s| s.len()),
    )
}

fn serde_borrowed() -> Extract {
    let t: Borrowed<'_> = serde_json::from_slice(black_box(BODY)).expect("fixture parses");
    (
        t.access_token.len(),
        t.expires_in,
        t.refresh_token.as_ref().map(|r| r.len()),
        t.scope.as_ref().map(|s| s.len()),
    )
}

fn check_contenders_agree_and_fieldauth_does_not_allocate() {
    let mut storage = [0u8; 2048];
    let mut a = (0, None, None, None);
    let n = allocations_during(|| a = fieldauth_whole(&mut storage));
    assert_eq!(n, 0, "fieldauth (whole body) allocated {n} times");
    let mut b = (0, None, None, None);
    let n = allocations_during(|| b = fieldauth_streaming(&mut storage));
    assert_eq!(n, 0, "fieldauth (streaming) allocated {n} times");
    let c = serde_borrowed();
    assert_eq!(a, b);
    assert_eq!(a, c);
    let d = serde_oauth2();
    // oauth2 splits the scope into a list; compare the rest.
    assert_eq!((a.0, a.1, a.2), (d.0, d.1, d.2));
    let n = allocations_during(|| {
        black_box(serde_oauth2());
    });
    eprintln!("allocations per parse: fieldauth 0, serde_json+oauth2 {n}");
}

fn token_response(c: &mut Criterion) {
    check_contenders_agree_and_fieldauth_does_not_allocate();
    let mut g = c.benchmark_group("token_response");
    g.throughput(Throughput::Bytes(BODY.len() as u64));
    let mut storage = [0u8; 2048];
    g.bench_function("fieldauth", |b| b.iter(|| fieldauth_whole(&mut storage)));
    g.bench_function("fieldauth_streaming_128B", |b| {
        b.iter(|| fieldauth_streaming(&mut storage))
    });
    g.bench_function("serde_json_oauth2", |b| b.iter(serde_oauth2));
    g.bench_function("serde_json_borrowed", |b| b.iter(serde_borrowed));
    g.finish();
}

// Realistic credentials: a secret with characters that need encoding.
const TOKEN_URL: &str = "https://webservices.autotask.net/ATServicesRest/oauth/token";
const CLIENT_ID: &str = "fsm-handheld-fleet-eu-west-7731";
const CLIENT_SECRET: &str = "q8Z+v/3kL:p%2Fw9 xR7tY!mN4sB6dF1gH0jK";
const SCOPE: &str = "read:work-orders write:work-orders read:customers";

/// The client configuration, built once as an application would.
fn form_client() -> Client<'static> {
    let url = Url::parse(TOKEN_URL).expect("valid url");
    let mut client = Client::new(url, CLIENT_ID);
    client.client_secret = Some(CLIENT_SECRET);
    client.auth = ClientAuth::Body;
    client.format = BodyFormat::Form;
    client.scope = Some(SCOPE);
    client
}

/// Validates every value (CR/LF/NUL, emptiness, transport) and writes the body.
fn fieldauth_form(client: &Client<'_>, buf: &mut [u8]) -> usize {
    black_box(client)
        .request(Grant::ClientCredentials)
        .write_body(buf)
        .expect("fits")
}

fn form_urlencoded_string() -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", black_box(CLIENT_ID))
        .append_pair("client_secret", black_box(CLIENT_SECRET))
        .append_pair("scope", black_box(SCOPE))
        .finish()
}

fn form_body(c: &mut Criterion) {
    let mut buf = [0u8; 512];
    let mut n = 0;
    let client = form_client();
    let allocs = allocations_during(|| n = fieldauth_form(&client, &mut buf));
    assert_eq!(allocs, 0, "fieldauth form body allocated {allocs} times");
    assert_eq!(
        std::str::from_utf8(&buf[..n]).expect("ascii"),
        form_urlencoded_string(),
        "both produce the same body"
    );
    let mut g = c.benchmark_group("form_body");
    g.bench_function("fieldauth", |b| {
        b.iter(|| fieldauth_form(&client, &mut buf))
    });
    g.bench_function("form_urlencoded_string", |b| b.iter(form_urlencoded_string));
    g.finish();
}

criterion_group!(benches, token_response, form_body);
criterion_main!(benches);
