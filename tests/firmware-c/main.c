/*
 * fieldauth on a Cortex-M4F, through the C API only (include/fieldauth.h):
 * one statically allocated session driven through an Autotask token
 * exchange (canned response), an authorized API request, API responses with
 * rate-limit headers, a snapshot / "reboot" / restore, a custom RFC 6749
 * profile with query-parameter credentials and a refresh, and clear.
 *
 * No C library and no heap: the image links with -nostdlib; memcpy, memset
 * and memcmp come from Rust's compiler_builtins inside libfieldauth.a.
 * Under QEMU (ffi/tests/firmware_link.rs) the checks really run and the exit
 * status is the number of failed checks (0: all passed).
 */
#include <stddef.h>
#include <stdint.h>

#include "fieldauth.h"
#include "fw.h"

/* ------------------------------------------------------------- storage */

/* All of fieldauth's state: caller-allocated, sized by the header. */
static _Alignas(FIELDAUTH_SESSION_ALIGN) fieldauth_session session;
static _Alignas(FIELDAUTH_HEAD_ALIGN) fieldauth_head head;
_Static_assert(sizeof session == FIELDAUTH_SESSION_SIZE, "session storage");
_Static_assert(sizeof head == FIELDAUTH_HEAD_SIZE, "head storage");

static uint8_t request[512];  /* token requests */
static uint8_t line[256];     /* credential header line / target */
static uint8_t snapshot[1600]; /* the persisted image: snapshot_len() of this
                                 * configuration, checked below */
static char text[96];         /* console output */

/* ------------------------------------------------------------- checks */

static uint32_t checks, failures;

/* Appends the decimal digits of `v` to `out`; returns the end. */
static char *put_u32(char *out, uint32_t v) {
    char digits[10];
    unsigned n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (n > 0u) {
        *out++ = digits[--n];
    }
    return out;
}

static char *put_str(char *out, const char *s) {
    while (*s != '\0') {
        *out++ = *s++;
    }
    return out;
}

static void check(int ok, uint32_t source_line, fieldauth_status st) {
    checks++;
    if (ok) {
        return;
    }
    failures++;
    char *p = put_u32(put_str(text, "FAIL main.c:"), source_line);
    if (st != FIELDAUTH_OK) {
        p = put_str(put_u32(put_str(p, " status "), st), " ");
        /* Status messages are short sentences; keep the line bounded. */
        const char *m = fieldauth_status_message(st);
        for (unsigned i = 0; m[i] != '\0' && p < text + sizeof text - 2; i++) {
            *p++ = m[i];
        }
    }
    *p++ = '\n';
    *p = '\0';
    fw_print(text);
}

#define CHECK(cond) check((cond) != 0, __LINE__, FIELDAUTH_OK)
#define CHECK_STATUS(call, want)                       \
    do {                                               \
        fieldauth_status st_ = (call);                 \
        check(st_ == (want), __LINE__, st_);           \
    } while (0)
#define CHECK_OK(call) CHECK_STATUS(call, FIELDAUTH_OK)

static size_t cstrlen(const char *s) {
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

static int bytes_eq(const uint8_t *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (a[i] != (uint8_t)b[i]) {
            return 0;
        }
    }
    return 1;
}

static int equals(const uint8_t *buf, size_t len, const char *s) {
    return len == cstrlen(s) && bytes_eq(buf, s, len);
}

static int starts_with(const uint8_t *buf, size_t len, const char *s) {
    size_t n = cstrlen(s);
    return len >= n && bytes_eq(buf, s, n);
}

static int ends_with(const uint8_t *buf, size_t len, const char *s) {
    size_t n = cstrlen(s);
    return len >= n && bytes_eq(buf + (len - n), s, n);
}

static int contains(const uint8_t *buf, size_t len, const char *s) {
    size_t n = cstrlen(s);
    for (size_t i = 0; i + n <= len; i++) {
        if (bytes_eq(buf + i, s, n)) {
            return 1;
        }
    }
    return 0;
}

/* 1 if every byte of the session storage is zero. */
static int session_is_wiped(void) {
    const volatile uint8_t *p = (const volatile uint8_t *)&session;
    for (size_t i = 0; i < sizeof session; i++) {
        if (p[i] != 0u) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------- inputs */

#define S 1000u                       /* one second in ms */
#define T0 10000000u                  /* monotonic ms at the first exchange */
#define UNIX0 1640995200000ull        /* wall clock at T0: 2022-01-01T00:00Z */
#define UNIX_AT(now) (UNIX0 + ((uint64_t)(now) - T0))

#define AUTOTASK_TOKEN "at-8f14e45fceea167a5a36dedd4bea2543"
#define CUSTOM_TOKEN "c-2b6d9e6a0c4f"
#define CUSTOM_REFRESH "r-77a1f0"

static const fieldauth_config autotask_config = {
    .base_url = FIELDAUTH_STR("https://webservices.autotask.net"),
    .client_id = FIELDAUTH_STR("demo-client"),
    .client_secret = FIELDAUTH_STR("demo-secret"),
};

/* The token response of the core's Autotask tests (core/tests/session.rs,
 * client_credentials_lifecycle), as the provider sends it. */
static const char autotask_token_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 94\r\n"
    "\r\n"
    "{\"access_token\":\"" AUTOTASK_TOKEN "\",\"token_type\":\"Bearer\",\"expires_in\":3600}";

/* An API response with X-RateLimit-* headers (the core's HTTP golden). */
static const char api_ok_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "X-RateLimit-Limit: 1000\r\n"
    "X-RateLimit-Remaining: 999\r\n"
    "X-RateLimit-Reset: 1640995200\r\n"
    "Content-Length: 2\r\n"
    "\r\n";

static const char api_limited_response[] =
    "HTTP/1.1 429 Too Many Requests\r\n"
    "Retry-After: 30\r\n"
    "X-RateLimit-Limit: 1000\r\n"
    "X-RateLimit-Remaining: 0\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

static const char custom_token_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "21\r\n{\"access_token\":\"" CUSTOM_TOKEN "\",\r\n"
    "42\r\n\"token_type\":\"bearer\",\"expires_in\":600,\"refresh_token\":\"" CUSTOM_REFRESH "\"}\r\n"
    "0\r\n\r\n";

#define LEN(literal) (sizeof(literal) - 1u)

/* ------------------------------------------------------------- steps */

/* Parses a complete response head from `raw` into `head`; returns the
 * offset of the body (or 0 after a failed check). */
static size_t parse_head(const char *raw, size_t len) {
    size_t consumed = 0;
    uint32_t complete = 0;
    CHECK_OK(fieldauth_head_init(&head));
    CHECK_OK(fieldauth_head_feed(&head, (const uint8_t *)raw, len, &consumed, &complete));
    CHECK(complete == 1u);
    return complete == 1u ? consumed : 0u;
}

/* Writes the due token request into `request`; returns its length. */
static size_t write_request(uint64_t now, uint32_t want_kind) {
    static fieldauth_action action;
    size_t need = 0, len = 0;
    CHECK_OK(fieldauth_session_poll(&session, now, &action));
    CHECK(action.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    CHECK(action.request_kind == want_kind);
    /* Too small a buffer: the size needed, and nothing goes in flight. */
    CHECK_STATUS(fieldauth_session_write_token_request(&session, now, request, 16, &need),
                 FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(need > 16u && need <= sizeof request);
    CHECK_OK(fieldauth_session_write_token_request(&session, now, request, sizeof request, &len));
    CHECK(len == need);
    CHECK_OK(fieldauth_session_poll(&session, now, &action));
    CHECK(action.kind == FIELDAUTH_ACTION_AWAIT_RESPONSE);
    return len;
}

/* Feeds a canned token response, the body in `piece`-byte chunks as a
 * device reading a socket would; returns the final event (static storage:
 * results live outside the frames, as on a device with a small stack). */
static const fieldauth_event *feed_response(uint64_t now, const char *raw, size_t len,
                                            size_t piece) {
    static fieldauth_event event;
    size_t at;
    event = (fieldauth_event){0};
    at = parse_head(raw, len);
    CHECK(at > 0u);
    CHECK_OK(fieldauth_session_feed_token_head(&session, now, &head));
    while (at < len) {
        size_t n = len - at < piece ? len - at : piece;
        size_t consumed = 0;
        CHECK_OK(fieldauth_session_feed_token_body(&session, now, (const uint8_t *)raw + at, n,
                                                   &consumed, &event));
        CHECK(consumed == n);
        if (consumed != n) {
            break;
        }
        at += n;
    }
    return &event;
}

/* Authorizes one API request; returns the authorization (static storage),
 * the credential in `line` and its length in `*len`. */
static const fieldauth_authorization *authorize(uint64_t now, const char *target, size_t *len) {
    static fieldauth_authorization auth;
    auth = (fieldauth_authorization){0};
    *len = 0;
    CHECK_OK(fieldauth_session_authorize(&session, now, (const uint8_t *)target, cstrlen(target),
                                         line, sizeof line, len, &auth));
    return &auth;
}

/* noinline, and large structs static: the steps' frames follow one another
 * instead of adding up in main's (what a device does with a small stack;
 * issue #13 measures the QEMU peak of this program). */
__attribute__((noinline)) static void autotask(void) {
    static fieldauth_action action;
    static fieldauth_response_info info;
    static fieldauth_verdict verdict;
    static fieldauth_session_info sinfo;
    size_t len;

    CHECK_OK(fieldauth_session_init_preset(&session, FIELDAUTH_PRESET_AUTOTASK, &autotask_config,
                                           0x5eed0001u));
    CHECK_OK(fieldauth_session_set_wall_clock(&session, T0, UNIX_AT(T0)));

    /* Token request and response. */
    len = write_request(T0, FIELDAUTH_REQUEST_FETCH);
    CHECK(starts_with(request, len, "POST /ATServicesRest/oauth/token HTTP/1.1\r\n"));
    CHECK(contains(request, len, "\r\nHost: webservices.autotask.net\r\n"));
    CHECK(ends_with(request, len,
                    "\r\n\r\ngrant_type=client_credentials&client_id=demo-client"
                    "&client_secret=demo-secret"));
    const fieldauth_event *ev =
        feed_response(T0 + 80u, autotask_token_response, LEN(autotask_token_response), 16);
    CHECK(ev->kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
    CHECK(ev->request_kind == FIELDAUTH_REQUEST_FETCH);
    CHECK(ev->lifetime_s == 3600u);
    CHECK(ev->refreshable == 0u);

    /* Ready until the early refresh, well inside the hour. */
    CHECK_OK(fieldauth_session_poll(&session, T0 + S, &action));
    CHECK(action.kind == FIELDAUTH_ACTION_READY);
    CHECK(action.at_ms > T0 + 3000u * S && action.at_ms < T0 + 3600u * S);

    /* An authorized API request. */
    const fieldauth_authorization *auth = authorize(T0 + S, "/ATServicesRest/V1.0/Tickets/query", &len);
    CHECK(auth->kind == FIELDAUTH_AUTHORIZATION_SEND);
    CHECK(auth->credential == FIELDAUTH_CREDENTIAL_HEADER);
    CHECK(auth->header_name_len == 13u);
    CHECK(equals(line, len, "Authorization: Bearer " AUTOTASK_TOKEN "\r\n"));

    /* Its response, with X-RateLimit-* headers. */
    parse_head(api_ok_response, LEN(api_ok_response));
    CHECK_OK(fieldauth_head_get_info(&head, &info));
    CHECK(info.status == 200u);
    CHECK(info.x_rate_limit_limit == 1000u && info.x_rate_limit_remaining == 999u);
    CHECK(info.x_rate_limit_reset == 1640995200u);
    CHECK((info.flags & FIELDAUTH_HEAD_X_RATE_LIMIT_REMAINING) != 0u);
    CHECK(info.framing == FIELDAUTH_FRAMING_LENGTH && info.content_length == 2u);
    CHECK_OK(fieldauth_session_report_api_response(&session, T0 + 2u * S, &head,
                                                   (const uint8_t *)"{}", 2, &verdict));
    CHECK(verdict.kind == FIELDAUTH_VERDICT_OK);

    /* Rate limited: 429 with Retry-After; the session holds requests back. */
    auth = authorize(T0 + 3u * S, "/ATServicesRest/V1.0/Tickets/query", &len);
    CHECK(auth->kind == FIELDAUTH_AUTHORIZATION_SEND);
    parse_head(api_limited_response, LEN(api_limited_response));
    CHECK_OK(fieldauth_session_report_api_response(&session, T0 + 4u * S, &head, NULL, 0,
                                                   &verdict));
    CHECK(verdict.kind == FIELDAUTH_VERDICT_RATE_LIMITED);
    CHECK(verdict.until_ms == T0 + 34u * S);
    auth = authorize(T0 + 5u * S, "/ATServicesRest/V1.0/Tickets/query", &len);
    CHECK(auth->kind == FIELDAUTH_AUTHORIZATION_WAIT);
    CHECK(auth->until_ms == verdict.until_ms && len == 0u);
    CHECK_OK(fieldauth_session_get_info(&session, &sinfo));
    CHECK(sinfo.usable == 1u && sinfo.api_blocked_until_ms == verdict.until_ms);

    /* Persist the token and the rate limit, then "reboot": wipe the RAM
     * copy and restore into a fresh session whose clock restarted. */
    size_t snap_len = 0;
    CHECK_OK(fieldauth_session_snapshot_len(&session, &snap_len));
    CHECK(snap_len > 0u && snap_len <= sizeof snapshot);
    CHECK_OK(fieldauth_session_snapshot(&session, T0 + 5u * S, UNIX_AT(T0 + 5u * S), snapshot,
                                        sizeof snapshot, &len));
    CHECK(len == snap_len);
    CHECK_OK(fieldauth_session_clear(&session));
    CHECK(session_is_wiped());
    CHECK_STATUS(fieldauth_session_poll(&session, T0, &action), FIELDAUTH_ERR_NOT_INITIALIZED);

    const uint64_t boot = 2u * S; /* monotonic clock after the reboot */
    const uint64_t boot_unix = UNIX_AT(T0 + 20u * S);
    CHECK_OK(fieldauth_session_init_preset(&session, FIELDAUTH_PRESET_AUTOTASK, &autotask_config,
                                           0x5eed0002u));
    /* A corrupted image is refused and changes nothing. */
    snapshot[len / 2u] ^= 0x40u;
    fieldauth_status st = fieldauth_session_restore(&session, boot, boot_unix, snapshot, len);
    CHECK(st == FIELDAUTH_ERR_SNAPSHOT_CORRUPT || st == FIELDAUTH_ERR_SNAPSHOT_FOREIGN);
    snapshot[len / 2u] ^= 0x40u;
    CHECK_OK(fieldauth_session_restore(&session, boot, boot_unix, snapshot, len));
    CHECK_OK(fieldauth_session_poll(&session, boot, &action));
    CHECK(action.kind == FIELDAUTH_ACTION_READY);
    /* Still rate limited for the 14 s left of the 30, then the same token. */
    auth = authorize(boot, "/ATServicesRest/V1.0/Tickets/query", &len);
    CHECK(auth->kind == FIELDAUTH_AUTHORIZATION_WAIT);
    CHECK(auth->until_ms == boot + 14u * S);
    auth = authorize(boot + 14u * S, "/ATServicesRest/V1.0/Tickets/query", &len);
    CHECK(auth->kind == FIELDAUTH_AUTHORIZATION_SEND);
    CHECK(equals(line, len, "Authorization: Bearer " AUTOTASK_TOKEN "\r\n"));
}

__attribute__((noinline)) static void custom_profile(void) {
    static const fieldauth_config config = {
        .base_url = FIELDAUTH_STR("https://fsm.example.com"),
        .client_id = FIELDAUTH_STR("device-42"),
        .client_secret = FIELDAUTH_STR("s3cret"),
    };
    static fieldauth_profile p;
    static fieldauth_action action;
    size_t len;

    CHECK_OK(fieldauth_profile_preset(FIELDAUTH_PRESET_CUSTOM, &p));
    p.name = (fieldauth_str)FIELDAUTH_STR("Example FSM");
    p.token_path = (fieldauth_str)FIELDAUTH_STR("/connect/token");
    p.client_auth = FIELDAUTH_CLIENT_AUTH_BODY;
    p.scope = (fieldauth_str)FIELDAUTH_STR("jobs.read");
    p.placement = FIELDAUTH_PLACEMENT_QUERY;
    p.placement_name = (fieldauth_str)FIELDAUTH_STR("access_token");
    CHECK_OK(fieldauth_session_init(&session, &p, &config, 0x5eed0003u));

    len = write_request(T0, FIELDAUTH_REQUEST_FETCH);
    CHECK(starts_with(request, len, "POST /connect/token HTTP/1.1\r\n"));
    CHECK(ends_with(request, len,
                    "grant_type=client_credentials&client_id=device-42&client_secret=s3cret"
                    "&scope=jobs.read"));
    const fieldauth_event *ev =
        feed_response(T0 + 50u, custom_token_response, LEN(custom_token_response), 7);
    CHECK(ev->kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
    CHECK(ev->lifetime_s == 600u && ev->refreshable == 1u);

    const fieldauth_authorization *auth = authorize(T0 + S, "/api/v1/jobs?page=2", &len);
    CHECK(auth->kind == FIELDAUTH_AUTHORIZATION_SEND);
    CHECK(auth->credential == FIELDAUTH_CREDENTIAL_QUERY);
    CHECK(equals(line, len, "/api/v1/jobs?page=2&access_token=" CUSTOM_TOKEN));

    /* At the refresh time poll asks for the refresh_token grant. */
    CHECK_OK(fieldauth_session_poll(&session, T0 + S, &action));
    CHECK(action.kind == FIELDAUTH_ACTION_READY);
    CHECK(action.at_ms > T0 + S && action.at_ms < T0 + 600u * S);
    len = write_request(action.at_ms, FIELDAUTH_REQUEST_REFRESH);
    /* No scope: a refresh asks for the scope granted (RFC 6749 §6). */
    CHECK(ends_with(request, len, "grant_type=refresh_token&refresh_token=" CUSTOM_REFRESH
                                  "&client_id=device-42&client_secret=s3cret"));

    /* The secrets leave RAM with clear. */
    CHECK_OK(fieldauth_session_clear(&session));
    CHECK(session_is_wiped());
    CHECK_STATUS(fieldauth_session_poll(&session, T0, &action), FIELDAUTH_ERR_NOT_INITIALIZED);
}

int main(void) {
    CHECK(fieldauth_version_number() == FIELDAUTH_VERSION_NUMBER);
    CHECK(fieldauth_session_sizeof() == FIELDAUTH_SESSION_SIZE);
    CHECK(fieldauth_head_sizeof() == FIELDAUTH_HEAD_SIZE);
    autotask();
    custom_profile();
    CHECK(cstrlen(fieldauth_status_message(FIELDAUTH_ERR_WRONG_STATE)) > 0u);
#ifdef FW_FORCE_FAILURE
    /* The test's proof that a failed check reaches the exit status. */
    CHECK(0);
#endif

    char *p = put_str(text, "fieldauth firmware: ");
    p = put_str(put_u32(p, checks), " checks, ");
    p = put_str(put_u32(p, failures), " failed; stack peak ");
    p = put_str(put_u32(p, fw_stack_peak()), " bytes\n");
    *p = '\0';
    fw_print(text);
    return (int)(failures > 255u ? 255u : failures);
}
