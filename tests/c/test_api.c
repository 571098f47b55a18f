/*
 * C tests of the fieldauth C ABI: every exported function, with good and bad
 * input (NULL, misaligned and uninitialized objects, short buffers, invalid
 * UTF-8, unknown enumeration values, oversized tokens, calls in the wrong
 * state, overlapping buffers), against canned HTTP responses and an
 * in-memory transport. No network.
 *
 * Built and run by ffi/tests/c_api.rs: plain, under AddressSanitizer +
 * UndefinedBehaviorSanitizer, and under valgrind. Prints
 * "N passed, N failed" and exits non-zero on any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fieldauth.h"

static int passed, failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
        }                                                                      \
    } while (0)

/* Expects `call` to return `want`; prints both messages otherwise. */
#define EXPECT(call, want)                                                     \
    do {                                                                       \
        fieldauth_status got_ = (call);                                        \
        if (got_ == (fieldauth_status)(want)) {                                \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: %s\n  returned %u (%s)\n  expected %u (%s)\n", \
                    __FILE__, __LINE__, #call, (unsigned)got_,                 \
                    fieldauth_status_message(got_), (unsigned)(want),          \
                    fieldauth_status_message(want));                           \
        }                                                                      \
    } while (0)

#define OK(call) EXPECT(call, FIELDAUTH_OK)

static fieldauth_str str(const char *s) {
    fieldauth_str r;
    r.ptr = (const uint8_t *)s;
    r.len = s ? strlen(s) : 0;
    return r;
}

static const uint8_t *u8(const char *s) { return (const uint8_t *)s; }

static int eq(fieldauth_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static int mem_has(const uint8_t *hay, size_t n, const char *needle) {
    size_t k = strlen(needle);
    size_t i;
    for (i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return 1;
    return 0;
}

/* Objects on 8-byte-aligned storage, plus misaligned pointers into it. */
static fieldauth_session s1, s2;
static fieldauth_head hd;
static fieldauth_body bd;
static uint64_t raw_storage[FIELDAUTH_SESSION_WORDS + 1];

static fieldauth_session *misaligned_session(void) {
    return (fieldauth_session *)(void *)((char *)raw_storage + 4);
}

static fieldauth_config config(const char *base) {
    fieldauth_config c;
    memset(&c, 0, sizeof c);
    c.base_url = str(base);
    return c;
}

/* A complete HTTP response with Content-Length. */
static size_t response(char *out, size_t cap, int status, const char *headers,
                       const char *body) {
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%s"
                     "Content-Length: %u\r\n\r\n%s",
                     status, headers, (unsigned)strlen(body), body);
    return (n > 0 && (size_t)n < cap) ? (size_t)n : 0;
}

/* Parses a complete head from `data` into `hd` in pieces of `piece` bytes;
 * returns the bytes consumed, or (size_t)-1 on error. */
static size_t parse_head(const uint8_t *data, size_t len, size_t piece) {
    size_t at = 0;
    if (fieldauth_head_init(&hd) != FIELDAUTH_OK) return (size_t)-1;
    while (at < len) {
        size_t n = len - at < piece ? len - at : piece;
        size_t used = 0;
        uint32_t complete = 0;
        if (fieldauth_head_feed(&hd, data + at, n, &used, &complete) != FIELDAUTH_OK)
            return (size_t)-1;
        at += used;
        if (complete) return at;
    }
    return (size_t)-1;
}

/* Feeds a whole token response (head, then the body in `piece`-byte chunks).
 * Returns the status of the first failing call; the event on success. */
static fieldauth_status feed_response(fieldauth_session *s, uint64_t now,
                                      const char *resp, size_t piece,
                                      fieldauth_event *ev) {
    size_t len = strlen(resp);
    size_t at = parse_head(u8(resp), len, piece);
    fieldauth_status st;
    if (at == (size_t)-1) return FIELDAUTH_ERR_HTTP;
    st = fieldauth_session_feed_token_head(s, now, &hd);
    if (st != FIELDAUTH_OK) return st;
    do {
        size_t n = len - at < piece ? len - at : piece;
        size_t used = 0;
        st = fieldauth_session_feed_token_body(s, now, u8(resp) + at, n, &used, ev);
        if (st != FIELDAUTH_OK) return st;
        at += used;
        if (ev->kind != FIELDAUTH_EVENT_NONE) return FIELDAUTH_OK;
    } while (at < len);
    return FIELDAUTH_ERR_TRANSPORT;
}

/* Sends the due token request (whole) and returns its length. */
static size_t send_request(fieldauth_session *s, uint64_t now, uint8_t *buf, size_t cap) {
    size_t n = 0;
    if (fieldauth_session_write_token_request(s, now, buf, cap, &n) != FIELDAUTH_OK) return 0;
    return n;
}

static const char TOKEN_BODY[] =
    "{\"access_token\":\"tok-123\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
    "\"scope\":\"api read\"}";

/* ------------------------------------------------------------------ tests */

static void test_version_and_sizes(void) {
    CHECK(strcmp(fieldauth_version(), FIELDAUTH_VERSION_STRING) == 0);
    CHECK(fieldauth_version_number() == FIELDAUTH_VERSION_NUMBER);
    CHECK(fieldauth_session_sizeof() == FIELDAUTH_SESSION_SIZE);
    CHECK(fieldauth_head_sizeof() == FIELDAUTH_HEAD_SIZE);
    CHECK(fieldauth_body_sizeof() == FIELDAUTH_BODY_SIZE);
    CHECK(sizeof(fieldauth_session) == FIELDAUTH_SESSION_SIZE);
    CHECK(sizeof(fieldauth_head) == FIELDAUTH_HEAD_SIZE);
    CHECK(sizeof(fieldauth_body) == FIELDAUTH_BODY_SIZE);
}

static void test_status_messages(void) {
    static const fieldauth_status codes[] = {
        FIELDAUTH_OK, FIELDAUTH_ERR_NULL_POINTER, FIELDAUTH_ERR_MISALIGNED,
        FIELDAUTH_ERR_NOT_INITIALIZED, FIELDAUTH_ERR_INVALID_UTF8,
        FIELDAUTH_ERR_UNKNOWN_ENUM, FIELDAUTH_ERR_INVALID_ARGUMENT,
        FIELDAUTH_ERR_WOULD_BLOCK, FIELDAUTH_ERR_BUFFER_TOO_SMALL,
        FIELDAUTH_ERR_CAPACITY_EXCEEDED, FIELDAUTH_ERR_INPUT_EMPTY,
        FIELDAUTH_ERR_INPUT_RESERVED, FIELDAUTH_ERR_HTTP_STATUS_LINE,
        FIELDAUTH_ERR_JSON_SYNTAX, FIELDAUTH_ERR_RESPONSE_NOT_JSON,
        FIELDAUTH_ERR_WRONG_STATE, FIELDAUTH_ERR_SNAPSHOT_CORRUPT,
        FIELDAUTH_ERR_TRANSPORT, FIELDAUTH_ERR_UNKNOWN};
    size_t i;
    const char *unknown = fieldauth_status_message(123456u);
    CHECK(unknown != NULL && strstr(unknown, "unknown") != NULL);
    CHECK(fieldauth_status_message(0xFFFFFFFFu) == unknown);
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *m = fieldauth_status_message(codes[i]);
        CHECK(m != NULL && m[0] != '\0' && m != unknown);
    }
    CHECK(strcmp(fieldauth_status_message(FIELDAUTH_OK), "success") == 0);
}

static void test_presets(void) {
    uint32_t id;
    fieldauth_profile p;
    static uint64_t storage[64];
    for (id = 0; id < FIELDAUTH_PRESET_COUNT; id++) {
        CHECK(fieldauth_preset_name(id) != NULL);
        OK(fieldauth_profile_preset(id, &p));
        CHECK(p.mode >= FIELDAUTH_MODE_API_KEY && p.mode <= FIELDAUTH_MODE_DEVICE_CODE);
        CHECK(eq(p.name, fieldauth_preset_name(id)));
    }
    CHECK(fieldauth_preset_name(FIELDAUTH_PRESET_COUNT) == NULL);
    CHECK(fieldauth_preset_name(0xFFFFFFFFu) == NULL);
    CHECK(strcmp(fieldauth_preset_name(FIELDAUTH_PRESET_FIELD_NATION), "Field Nation") == 0);
    EXPECT(fieldauth_profile_preset(FIELDAUTH_PRESET_COUNT, &p), FIELDAUTH_ERR_UNKNOWN_ENUM);
    EXPECT(fieldauth_profile_preset(0xFFFFFFFFu, &p), FIELDAUTH_ERR_UNKNOWN_ENUM);
    EXPECT(fieldauth_profile_preset(0, NULL), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_profile_preset(0, (fieldauth_profile *)(void *)((char *)storage + 1)),
           FIELDAUTH_ERR_MISALIGNED);
    /* Field Nation: query parameter access_token, JSON body. */
    OK(fieldauth_profile_preset(FIELDAUTH_PRESET_FIELD_NATION, &p));
    CHECK(p.placement == FIELDAUTH_PLACEMENT_QUERY && eq(p.placement_name, "access_token"));
    CHECK(p.format == FIELDAUTH_FORMAT_JSON && eq(p.scope, "api"));
}

static void test_init_errors(void) {
    fieldauth_config c = config("http://127.0.0.1:8080/fentu");
    fieldauth_profile p;
    static char big[5000];
    c.api_key = str("fentu-demo-key");
    EXPECT(fieldauth_session_init_preset(NULL, 1, &c, 1), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_init_preset(misaligned_session(), 1, &c, 1), FIELDAUTH_ERR_MISALIGNED);
    EXPECT(fieldauth_session_init_preset(&s1, 1, NULL, 1), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_init_preset(&s1, 99, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    EXPECT(fieldauth_session_init(&s1, NULL, &c, 1), FIELDAUTH_ERR_NULL_POINTER);
    /* A config inside the session's own storage overlaps it. */
    EXPECT(fieldauth_session_init_preset(&s1, 1, (const fieldauth_config *)(const void *)&s1, 1),
           FIELDAUTH_ERR_INVALID_ARGUMENT);

    /* Invalid UTF-8, control characters, insecure and invalid URLs. */
    c.base_url.ptr = u8("http://127.0.0.1/\xff\xfe");
    c.base_url.len = 19;
    EXPECT(fieldauth_session_init_preset(&s1, 1, &c, 1), FIELDAUTH_ERR_INVALID_UTF8);
    c.base_url.ptr = NULL;
    c.base_url.len = 5;
    EXPECT(fieldauth_session_init_preset(&s1, 1, &c, 1), FIELDAUTH_ERR_NULL_POINTER);
    c.base_url = str("http://api.example.com/fentu");
    EXPECT(fieldauth_session_init_preset(&s1, 1, &c, 1), FIELDAUTH_ERR_INPUT_INSECURE_SCHEME);
    c.base_url = str("not a url");
    EXPECT(fieldauth_session_init_preset(&s1, 1, &c, 1), FIELDAUTH_ERR_INPUT_INVALID_URL);
    c.base_url = str("https://api.example.com/fentu");
    c.api_key = str("key\r\nX-Evil: 1");
    EXPECT(fieldauth_session_init_preset(&s1, 1, &c, 1), FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER);
    c.api_key = str("");
    EXPECT(fieldauth_session_init_preset(&s1, 1, &c, 1), FIELDAUTH_ERR_INPUT_MISSING);
    c.allow_insecure = 2;
    c.api_key = str("k");
    EXPECT(fieldauth_session_init_preset(&s1, 1, &c, 1), FIELDAUTH_ERR_INVALID_ARGUMENT);
    c.allow_insecure = 1;
    c.base_url = str("http://api.example.com/fentu");
    OK(fieldauth_session_init_preset(&s1, 1, &c, 1)); /* explicit opt-in */
    c.allow_insecure = 0;
    c.base_url = str("https://api.example.com/fentu");
    /* Oversized configuration: does not fit the arena. */
    memset(big, 'a', sizeof big - 1);
    c.api_key = str(big);
    EXPECT(fieldauth_session_init_preset(&s1, 1, &c, 1), FIELDAUTH_ERR_CAPACITY_EXCEEDED);
    /* A failed init leaves the storage wiped and not initialized. */
    {
        fieldauth_action a;
        EXPECT(fieldauth_session_poll(&s1, 0, &a), FIELDAUTH_ERR_NOT_INITIALIZED);
    }
    c.api_key = str("k");

    /* Custom profiles: enumeration and range checks. */
    OK(fieldauth_profile_preset(FIELDAUTH_PRESET_FENTU_API_KEY, &p));
    OK(fieldauth_session_init(&s1, &p, &c, 1));
    p.mode = 0;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    p.mode = 77;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    p.mode = FIELDAUTH_MODE_API_KEY;
    p.format = 3;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    p.format = FIELDAUTH_FORMAT_FORM;
    p.client_auth = 0;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    p.client_auth = FIELDAUTH_CLIENT_AUTH_BODY;
    p.revoke_style = 9;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    p.revoke_style = FIELDAUTH_REVOKE_NONE;
    p.keys = 3;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    p.keys = FIELDAUTH_KEYS_STANDARD;
    p.placement = 5;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    p.placement = FIELDAUTH_PLACEMENT_HEADER;
    p.placement_name = str("");
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_INPUT_MISSING);
    /* A bad header name is refused when the credential is used. */
    p.placement_name = str("X-Bad Name");
    OK(fieldauth_session_init(&s1, &p, &c, 1));
    {
        uint8_t b[64];
        size_t n = 0;
        fieldauth_authorization au;
        EXPECT(fieldauth_session_authorize(&s1, 0, NULL, 0, b, sizeof b, &n, &au),
               FIELDAUTH_ERR_INPUT_INVALID_CHARACTER);
        p.placement_name = str("X-Api-Key");
        OK(fieldauth_session_init(&s1, &p, &c, 1));
        OK(fieldauth_session_authorize(&s1, 0, NULL, 0, b, sizeof b, &n, &au));
        CHECK(n == strlen("X-Api-Key: k\r\n") && memcmp(b, "X-Api-Key: k\r\n", n) == 0);
        CHECK(au.header_name_len == 9);
    }
    p.reset_mode = 0;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_UNKNOWN_ENUM);
    p.reset_mode = FIELDAUTH_RESET_AUTO;
    p.refresh_fraction_pct = 101;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_INVALID_ARGUMENT);
    p.refresh_fraction_pct = 10;
    p.backoff.max_attempts = 0;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_INVALID_ARGUMENT);
    p.backoff.max_attempts = 256;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_INVALID_ARGUMENT);
    p.backoff.max_attempts = 3;
    p.api_budget.requests = 10;
    p.api_budget.window_s = 60;
    p.api_budget.burst = 11;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_INVALID_ARGUMENT);
    p.api_budget.burst = 0;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_INVALID_ARGUMENT);
    p.api_budget.burst = 1;
    p.api_budget_per_token = 7;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_INVALID_ARGUMENT);
    p.api_budget_per_token = 0;
    p.token_path.ptr = u8("/\xc3\x28");
    p.token_path.len = 3;
    EXPECT(fieldauth_session_init(&s1, &p, &c, 1), FIELDAUTH_ERR_INVALID_UTF8);
    p.token_path = str("");
    OK(fieldauth_session_init(&s1, &p, &c, 1));
    OK(fieldauth_session_clear(&s1));
}

/* Every function that takes a session: NULL, misaligned and uninitialized. */
static void test_session_argument_checks(void) {
    fieldauth_action a;
    fieldauth_event ev;
    fieldauth_verdict v;
    fieldauth_authorization au;
    fieldauth_session_info info;
    fieldauth_device_display dd;
    fieldauth_request_parts parts;
    uint8_t buf[64];
    size_t n = 0, m = 0;
    fieldauth_session *bad[3];
    fieldauth_status want[3] = {FIELDAUTH_ERR_NULL_POINTER, FIELDAUTH_ERR_MISALIGNED,
                                FIELDAUTH_ERR_NOT_INITIALIZED};
    int i;
    static fieldauth_session zeroed; /* never initialized */
    bad[0] = NULL;
    bad[1] = misaligned_session();
    bad[2] = &zeroed;
    OK(fieldauth_head_init(&hd));
    for (i = 0; i < 3; i++) {
        fieldauth_session *s = bad[i];
        fieldauth_status w = want[i];
        EXPECT(fieldauth_session_poll(s, 0, &a), w);
        EXPECT(fieldauth_session_write_token_request(s, 0, buf, sizeof buf, &n), w);
        EXPECT(fieldauth_session_write_token_request_window(s, 0, 0, buf, sizeof buf, &n, &m), w);
        EXPECT(fieldauth_session_write_token_request_parts(s, 0, buf, sizeof buf, &n, &parts), w);
        EXPECT(fieldauth_session_token_request_url(s, buf, sizeof buf, &n), w);
        EXPECT(fieldauth_session_feed_token_head(s, 0, &hd), w);
        EXPECT(fieldauth_session_feed_token_body(s, 0, buf, 1, &n, &ev), w);
        EXPECT(fieldauth_session_feed_token_eof(s, 0, &ev), w);
        EXPECT(fieldauth_session_report_transport_error(s, 0, &ev), w);
        EXPECT(fieldauth_session_authorize(s, 0, u8("/x"), 2, buf, sizeof buf, &n, &au), w);
        EXPECT(fieldauth_session_report_api_response(s, 0, &hd, NULL, 0, &v), w);
        EXPECT(fieldauth_session_snapshot_len(s, &n), w);
        EXPECT(fieldauth_session_snapshot(s, 0, 0, buf, sizeof buf, &n), w);
        EXPECT(fieldauth_session_restore(s, 0, 0, buf, sizeof buf), w);
        EXPECT(fieldauth_session_device_display(s, buf, sizeof buf, &n, &dd), w);
        EXPECT(fieldauth_session_authorization_url(s, buf, 32, buf + 32, 16, NULL, 0, &n), w);
        EXPECT(fieldauth_session_set_authorization_code(s, u8("c"), 1, u8("s"), 1), w);
        EXPECT(fieldauth_session_set_wall_clock(s, 0, 0), w);
        EXPECT(fieldauth_session_reseed(s, 0), w);
        EXPECT(fieldauth_session_revoke(s), w);
        EXPECT(fieldauth_session_restart(s), w);
        EXPECT(fieldauth_session_get_info(s, &info), w);
        EXPECT(fieldauth_session_failure_description(s, buf, sizeof buf, &n), w);
        EXPECT(fieldauth_session_granted_scope(s, buf, sizeof buf, &n), w);
        if (i < 2) {
            EXPECT(fieldauth_session_clear(s), w);
        } else {
            OK(fieldauth_session_clear(s)); /* clearing uninitialized storage is fine */
        }
    }
}

static void test_api_key_session(void) {
    fieldauth_config c = config("https://api.fentu.example/v1");
    fieldauth_action a;
    fieldauth_authorization au;
    fieldauth_verdict v;
    fieldauth_session_info info;
    uint8_t buf[256];
    size_t n = 0, i;
    char resp[512];
    const uint8_t *bytes;
    c.api_key = str("fentu-demo-key");
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_FENTU_API_KEY, &c, 42));
    /* Re-init over a live session is allowed (the old one is wiped first). */
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_FENTU_API_KEY, &c, 42));
    OK(fieldauth_session_poll(&s1, 1000, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_READY && a.at_ms == FIELDAUTH_NEVER);
    EXPECT(fieldauth_session_poll(&s1, 1000, NULL), FIELDAUTH_ERR_NULL_POINTER);

    /* Header credential; the target is not needed. */
    OK(fieldauth_session_authorize(&s1, 1000, NULL, 0, buf, sizeof buf, &n, &au));
    CHECK(au.kind == FIELDAUTH_AUTHORIZATION_SEND && au.credential == FIELDAUTH_CREDENTIAL_HEADER);
    CHECK(n == strlen("Authorization: Bearer fentu-demo-key\r\n"));
    CHECK(memcmp(buf, "Authorization: Bearer fentu-demo-key\r\n", n) == 0);
    CHECK(au.header_name_len == 13);
    /* Size query and short buffers: the needed size, no budget spent. */
    n = 0;
    EXPECT(fieldauth_session_authorize(&s1, 1000, NULL, 0, NULL, 0, &n, &au), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 38);
    EXPECT(fieldauth_session_authorize(&s1, 1000, NULL, 0, buf, 37, &n, &au), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 38);
    EXPECT(fieldauth_session_authorize(&s1, 1000, NULL, 0, NULL, 10, &n, &au), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_authorize(&s1, 1000, NULL, 0, buf, sizeof buf, NULL, &au), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_authorize(&s1, 1000, NULL, 0, buf, sizeof buf, &n, NULL), FIELDAUTH_ERR_NULL_POINTER);
    /* An output buffer inside the session is refused. */
    EXPECT(fieldauth_session_authorize(&s1, 1000, NULL, 0, (uint8_t *)(void *)&s1 + 64, 100, &n, &au),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    /* A buffer overlapping the target is refused. */
    memcpy(buf, "/v1/work-orders", 15);
    EXPECT(fieldauth_session_authorize(&s1, 1000, buf, 15, buf + 4, 100, &n, &au),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    EXPECT(fieldauth_session_authorize(&s1, 1000, u8("\xff"), 1, buf, sizeof buf, &n, &au),
           FIELDAUTH_ERR_INVALID_UTF8);

    /* No token endpoint in API-key mode. */
    EXPECT(fieldauth_session_write_token_request(&s1, 1000, buf, sizeof buf, &n), FIELDAUTH_ERR_WRONG_STATE);
    EXPECT(fieldauth_session_write_token_request_window(&s1, 1000, 0, buf, sizeof buf, &n, &i),
           FIELDAUTH_ERR_WRONG_STATE);
    EXPECT(fieldauth_session_device_display(&s1, buf, sizeof buf, &n, NULL), FIELDAUTH_ERR_NULL_POINTER);

    /* The API says 429: rate limited until Retry-After. */
    n = response(resp, sizeof resp, 429, "Retry-After: 30\r\n", "{}");
    CHECK(parse_head(u8(resp), n, 7) != (size_t)-1);
    OK(fieldauth_session_report_api_response(&s1, 2000, &hd, NULL, 0, &v));
    CHECK(v.kind == FIELDAUTH_VERDICT_RATE_LIMITED && v.until_ms == 32000);
    OK(fieldauth_session_authorize(&s1, 2001, NULL, 0, buf, sizeof buf, &n, &au));
    CHECK(au.kind == FIELDAUTH_AUTHORIZATION_WAIT && au.until_ms == 32000 && n == 0);
    for (i = 0, bytes = buf; i < 38; i++) CHECK(bytes[i] == 0); /* sizing pass wiped */
    OK(fieldauth_session_get_info(&s1, &info));
    CHECK(info.usable == 1 && info.api_blocked_until_ms == 32000 && info.expires_at_ms == FIELDAUTH_NEVER);

    /* 401: the key is invalid, a permanent failure. */
    n = response(resp, sizeof resp, 401, "", "{}");
    CHECK(parse_head(u8(resp), n, 1000) != (size_t)-1);
    OK(fieldauth_session_report_api_response(&s1, 40000, &hd, u8("{}"), 2, &v));
    CHECK(v.kind == FIELDAUTH_VERDICT_INVALID_KEY);
    OK(fieldauth_session_poll(&s1, 40000, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_FAILED && a.failure == FIELDAUTH_FAILURE_INVALID_KEY);
    OK(fieldauth_session_authorize(&s1, 40000, NULL, 0, buf, sizeof buf, &n, &au));
    CHECK(au.kind == FIELDAUTH_AUTHORIZATION_NO_CREDENTIAL);
    OK(fieldauth_session_restart(&s1));
    OK(fieldauth_session_poll(&s1, 40001, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_READY);
    /* Reporting a head that is not complete is a state error. */
    OK(fieldauth_head_init(&hd));
    EXPECT(fieldauth_session_report_api_response(&s1, 40001, &hd, NULL, 0, &v), FIELDAUTH_ERR_WRONG_STATE);

    /* Clear wipes every byte and de-initializes. */
    OK(fieldauth_session_clear(&s1));
    bytes = (const uint8_t *)(const void *)&s1;
    for (i = 0; i < sizeof s1 && bytes[i] == 0; i++) {
    }
    CHECK(i == sizeof s1);
    EXPECT(fieldauth_session_poll(&s1, 0, &a), FIELDAUTH_ERR_NOT_INITIALIZED);
    OK(fieldauth_session_clear(&s1)); /* twice is fine */
}

static void init_autotask(fieldauth_session *s) {
    fieldauth_config c = config("http://127.0.0.1:8080/autotask");
    c.client_id = str("demo-client");
    c.client_secret = str("demo-secret");
    OK(fieldauth_session_init_preset(s, FIELDAUTH_PRESET_AUTOTASK, &c, 7));
}

static void test_token_flow(void) {
    fieldauth_action a;
    fieldauth_event ev;
    fieldauth_authorization au;
    fieldauth_session_info info;
    fieldauth_request_parts parts;
    uint8_t buf[1024], whole[1024], win[128], snap[2048];
    char resp[1024];
    size_t n = 0, total = 0, off, w = 0, len, req_len = 0, k, snap_len = 0;
    init_autotask(&s1);
    OK(fieldauth_session_poll(&s1, 0, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST && a.request_kind == FIELDAUTH_REQUEST_FETCH);
    /* Responses before a request are state errors. */
    EXPECT(fieldauth_session_feed_token_body(&s1, 0, u8("{}"), 2, &n, &ev), FIELDAUTH_ERR_WRONG_STATE);
    EXPECT(fieldauth_session_feed_token_eof(&s1, 0, &ev), FIELDAUTH_ERR_WRONG_STATE);
    len = response(resp, sizeof resp, 200, "", TOKEN_BODY);
    CHECK(parse_head(u8(resp), len, 64) != (size_t)-1);
    EXPECT(fieldauth_session_feed_token_head(&s1, 0, &hd), FIELDAUTH_ERR_WRONG_STATE);
    EXPECT(fieldauth_session_write_token_request_window(&s1, 0, 5, win, sizeof win, &w, &total),
           FIELDAUTH_ERR_WRONG_STATE);

    /* Size query, then the request. */
    EXPECT(fieldauth_session_write_token_request(&s1, 0, NULL, 0, &n), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n > 100 && n < sizeof whole);
    len = req_len = n;
    EXPECT(fieldauth_session_write_token_request(&s1, 0, whole, len - 1, &n), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == len);
    OK(fieldauth_session_poll(&s1, 0, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST); /* nothing in flight yet */
    OK(fieldauth_session_write_token_request(&s1, 0, whole, sizeof whole, &n));
    CHECK(n == len && memcmp(whole, "POST /autotask/ATServicesRest/oauth/token HTTP/1.1\r\n", 52) == 0);
    CHECK(mem_has(whole, n, "client_secret=demo-secret"));
    OK(fieldauth_session_poll(&s1, 10, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_AWAIT_RESPONSE);
    EXPECT(fieldauth_session_write_token_request(&s1, 10, buf, sizeof buf, &n), FIELDAUTH_ERR_WRONG_STATE);

    /* The same request through a 128-byte window, on a twin session. */
    init_autotask(&s2);
    EXPECT(fieldauth_session_write_token_request_window(&s2, 0, 0, win, 0, &w, &total),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    EXPECT(fieldauth_session_write_token_request_window(&s2, 0, 0, win, sizeof win, NULL, &total),
           FIELDAUTH_ERR_NULL_POINTER);
    off = 0;
    do {
        OK(fieldauth_session_write_token_request_window(&s2, 0, off, win, sizeof win, &w, &total));
        CHECK(total == len && w <= sizeof win && off + w <= sizeof buf);
        memcpy(buf + off, win, w);
        off += w;
    } while (off < total && w > 0);
    CHECK(off == len && memcmp(buf, whole, len) == 0);
    EXPECT(fieldauth_session_write_token_request_window(&s2, 0, total + 1, win, sizeof win, &w, &total),
           FIELDAUTH_ERR_INVALID_ARGUMENT);

    /* Feed the response, 5 bytes at a time. */
    len = response(resp, sizeof resp, 200, "", TOKEN_BODY);
    OK(feed_response(&s1, 50, resp, 5, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED && ev.request_kind == FIELDAUTH_REQUEST_FETCH);
    CHECK(ev.lifetime_s == 3600 && ev.refreshable == 0);
    EXPECT(fieldauth_session_feed_token_body(&s1, 50, u8("x"), 1, &n, &ev), FIELDAUTH_ERR_WRONG_STATE);
    OK(fieldauth_session_poll(&s1, 60, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_READY && a.at_ms > 3000000 && a.at_ms < 3600000);
    OK(fieldauth_session_granted_scope(&s1, buf, sizeof buf, &n));
    CHECK(n == 8 && strcmp((const char *)buf, "api read") == 0);
    EXPECT(fieldauth_session_granted_scope(&s1, buf, 8, &n), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 9);
    OK(fieldauth_session_failure_description(&s1, buf, sizeof buf, &n));
    CHECK(n == 0 && buf[0] == 0);
    EXPECT(fieldauth_session_failure_description(&s1, NULL, 0, &n), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 1);
    OK(fieldauth_session_get_info(&s1, &info));
    CHECK(info.usable == 1 && info.refreshable == 0 && info.expires_at_ms == 3600000);
    OK(fieldauth_session_authorize(&s1, 100, u8("/ATServicesRest/V1.0/Companies"), 30, buf, sizeof buf, &n, &au));
    CHECK(au.kind == FIELDAUTH_AUTHORIZATION_SEND && au.credential == FIELDAUTH_CREDENTIAL_HEADER);
    CHECK(n == strlen("Authorization: Bearer tok-123\r\n") && memcmp(buf, "Authorization: Bearer tok-123\r\n", n) == 0);
    /* Autotask's API budget is one request per 100 ms (600/min, burst 1). */
    OK(fieldauth_session_authorize(&s1, 100, NULL, 0, buf, sizeof buf, &n, &au));
    CHECK(au.kind == FIELDAUTH_AUTHORIZATION_WAIT && au.until_ms >= 200 && au.until_ms < 300 && n == 0);

    /* Snapshot and restore into a twin. */
    EXPECT(fieldauth_session_snapshot_len(&s1, NULL), FIELDAUTH_ERR_NULL_POINTER);
    OK(fieldauth_session_snapshot_len(&s1, &snap_len));
    CHECK(snap_len > 112 && snap_len <= sizeof snap);
    EXPECT(fieldauth_session_snapshot(&s1, 100, 1700000000000ull, snap, snap_len - 1, &n),
           FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == snap_len);
    OK(fieldauth_session_snapshot(&s1, 100, 1700000000000ull, snap, sizeof snap, &n));
    CHECK(n == snap_len);
    EXPECT(fieldauth_session_snapshot(&s1, 100, 0, (uint8_t *)(void *)&s1, 4000, &n),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    init_autotask(&s2);
    EXPECT(fieldauth_session_restore(&s2, 5, 1700000001000ull, snap, snap_len - 1), FIELDAUTH_ERR_SNAPSHOT_LENGTH);
    snap[20] ^= 1;
    EXPECT(fieldauth_session_restore(&s2, 5, 1700000001000ull, snap, snap_len), FIELDAUTH_ERR_SNAPSHOT_CORRUPT);
    snap[20] ^= 1;
    EXPECT(fieldauth_session_restore(&s2, 5, 1700000001000ull, NULL, snap_len), FIELDAUTH_ERR_NULL_POINTER);
    OK(fieldauth_session_restore(&s2, 5, 1700000001000ull, snap, snap_len));
    OK(fieldauth_session_poll(&s2, 6, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_READY);
    OK(fieldauth_session_authorize(&s2, 1000, NULL, 0, buf, sizeof buf, &n, &au));
    CHECK(au.kind == FIELDAUTH_AUTHORIZATION_SEND && mem_has(buf, n, "tok-123"));
    /* Expired later: nothing valid in the image. */
    init_autotask(&s2);
    EXPECT(fieldauth_session_restore(&s2, 5, 1700000000000ull + 7200000ull, snap, snap_len),
           FIELDAUTH_ERR_SNAPSHOT_EXPIRED);

    /* Shared state (issue #21): the image as a store's generation 3. */
    {
        uint64_t g = 99;
        uint32_t adopted = 0;
        init_autotask(&s2);
        OK(fieldauth_session_shared_generation(&s2, &g));
        CHECK(g == 0);
        EXPECT(fieldauth_session_shared_generation(&s2, NULL), FIELDAUTH_ERR_NULL_POINTER);
        EXPECT(fieldauth_session_adopt(&s2, 5, 1700000001000ull, snap, snap_len, 3, NULL),
               FIELDAUTH_ERR_NULL_POINTER);
        EXPECT(fieldauth_session_adopt(&s2, 5, 1700000001000ull, NULL, snap_len, 3, &adopted),
               FIELDAUTH_ERR_NULL_POINTER);
        snap[20] ^= 1;
        EXPECT(fieldauth_session_adopt(&s2, 5, 1700000001000ull, snap, snap_len, 3, &adopted),
               FIELDAUTH_ERR_SNAPSHOT_CORRUPT);
        snap[20] ^= 1;
        OK(fieldauth_session_shared_generation(&s2, &g));
        CHECK(g == 0);
        OK(fieldauth_session_adopt(&s2, 5, 1700000001000ull, snap, snap_len, 3, &adopted));
        CHECK(adopted == FIELDAUTH_ADOPTED_NEWER);
        OK(fieldauth_session_shared_generation(&s2, &g));
        CHECK(g == 3);
        OK(fieldauth_session_authorize(&s2, 1000, NULL, 0, buf, sizeof buf, &n, &au));
        CHECK(au.kind == FIELDAUTH_AUTHORIZATION_SEND && mem_has(buf, n, "tok-123"));
        OK(fieldauth_session_adopt(&s2, 6, 1700000001000ull, snap, snap_len, 3, &adopted));
        CHECK(adopted == FIELDAUTH_ADOPTED_NOT_NEWER);
        /* Newer but expired: generation recorded, nothing else. */
        OK(fieldauth_session_adopt(&s2, 7, 1700000000000ull + 7200000ull, snap, snap_len, 4,
                                   &adopted));
        CHECK(adopted == FIELDAUTH_ADOPTED_NOTHING_USABLE);
        OK(fieldauth_session_set_shared_generation(&s2, 7));
        OK(fieldauth_session_shared_generation(&s2, &g));
        CHECK(g == 7);
        EXPECT(fieldauth_session_set_shared_generation(NULL, 7), FIELDAUTH_ERR_NULL_POINTER);
    }

    /* A 401 from the API drops the token: retry once with a new one. */
    n = response(resp, sizeof resp, 401,
                 "WWW-Authenticate: Bearer realm=\"api\", error=\"invalid_token\", "
                 "error_description=\"The token expired\", scope=\"read write\"\r\n", "{}");
    CHECK(parse_head(u8(resp), n, 3) != (size_t)-1);
    {
        fieldauth_verdict v;
        fieldauth_response_info ri;
        fieldauth_bearer_challenge bc;
        uint8_t texts[128];
        size_t tl = 0;
        OK(fieldauth_head_get_info(&hd, &ri));
        CHECK(ri.status == 401 && (ri.flags & FIELDAUTH_HEAD_BEARER_CHALLENGE));
        /* The challenge's texts (issue #14 §2.4). */
        OK(fieldauth_head_get_bearer(&hd, texts, sizeof texts, &tl, &bc));
        CHECK(bc.error.len == 13 && memcmp(bc.error.ptr, "invalid_token", 13) == 0);
        CHECK(bc.error_description.len == 17 && strcmp((const char *)bc.error_description.ptr, "The token expired") == 0);
        CHECK(bc.scope.len == 10 && memcmp(bc.scope.ptr, "read write", 10) == 0);
        CHECK(bc.realm.len == 3 && memcmp(bc.realm.ptr, "api", 3) == 0 && bc.error_uri.len == 0);
        CHECK(tl == 13 + 17 + 10 + 3 + 5);
        EXPECT(fieldauth_head_get_bearer(&hd, texts, tl - 1, &tl, &bc), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
        CHECK(tl == 13 + 17 + 10 + 3 + 5);
        EXPECT(fieldauth_head_get_bearer(&hd, texts, sizeof texts, NULL, &bc), FIELDAUTH_ERR_NULL_POINTER);
        OK(fieldauth_session_report_api_response(&s1, 300, &hd, NULL, 0, &v));
        CHECK(v.kind == FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN);
    }
    /* Autotask's token endpoint allows one request per 6 s. */
    OK(fieldauth_session_poll(&s1, 300, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_WAIT && a.at_ms >= 6000 && a.at_ms <= 7000);
    OK(fieldauth_session_poll(&s1, 7000, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST && a.request_kind == FIELDAUTH_REQUEST_FETCH);

    /* Parts, and the URL. */
    OK(fieldauth_session_token_request_url(&s1, buf, sizeof buf, &n));
    CHECK(n == strlen("http://127.0.0.1:8080/autotask/ATServicesRest/oauth/token"));
    EXPECT(fieldauth_session_token_request_url(&s1, buf, 3, &n), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == strlen("http://127.0.0.1:8080/autotask/ATServicesRest/oauth/token"));
    EXPECT(fieldauth_session_write_token_request_parts(&s1, 7000, buf, 10, &n, &parts), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == req_len);
    OK(fieldauth_session_write_token_request_parts(&s1, 7000, buf, sizeof buf, &n, &parts));
    CHECK(eq(parts.method, "POST") && eq(parts.target, "/autotask/ATServicesRest/oauth/token"));
    CHECK(parts.header_count >= 3 && parts.header_count <= FIELDAUTH_MAX_HEADERS);
    CHECK(parts.raw.ptr == buf && parts.raw.len == n);
    CHECK(parts.body.len > 0 && parts.body.ptr + parts.body.len == buf + n);
    for (k = 0; k < parts.header_count; k++) {
        CHECK(parts.headers[k].name.ptr >= buf && parts.headers[k].value.ptr < buf + n);
    }
    CHECK(eq(parts.headers[0].name, "Host") && eq(parts.headers[0].value, "127.0.0.1:8080"));

    /* A transport failure schedules a retry; the next response is refused. */
    OK(fieldauth_session_report_transport_error(&s1, 7100, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_RETRYING && ev.http_status == 0 && ev.at_ms >= 7100);
    OK(fieldauth_session_get_info(&s1, &info));
    CHECK(info.failed_attempts == 1 && info.usable == 0);
    OK(fieldauth_session_clear(&s1));
    OK(fieldauth_session_clear(&s2));
}

/* Bad token responses: each counts as a failed exchange. */
static void test_bad_responses(void) {
    char resp[8192];
    static char body[6000];
    fieldauth_event ev;
    uint8_t buf[1024];
    size_t n = 0;
    fieldauth_action a;
    struct {
        int status;
        const char *body;
        fieldauth_status want;
    } cases[] = {
        {200, "{\"access_token\":\"a\",", FIELDAUTH_ERR_JSON_TRUNCATED},
        {200, "{\"access_token\":\"a\"}}", FIELDAUTH_ERR_JSON_TRAILING_DATA},
        {200, "{\"access_token\":\"a\\q\"}", FIELDAUTH_ERR_JSON_INVALID_ESCAPE},
        {200, "[1]", FIELDAUTH_ERR_JSON_NOT_AN_OBJECT},
        {200, "{\"token_type\":\"Bearer\"}", FIELDAUTH_ERR_RESPONSE_MISSING_MEMBER},
        {200, "{\"access_token\":\"a\",\"access_token\":\"b\"}", FIELDAUTH_ERR_RESPONSE_DUPLICATE_MEMBER},
        {200, "{\"access_token\":5}", FIELDAUTH_ERR_RESPONSE_WRONG_TYPE},
        {200, "{\"access_token\":\"a\",\"expires_in\":-1}", FIELDAUTH_ERR_RESPONSE_INVALID_NUMBER},
        {200, "{\"access_token\":\"a\\u00e9\"}", FIELDAUTH_ERR_RESPONSE_INVALID_CHARACTERS},
        {200, "{\"access_token\":\"a\",\"token_type\":\"mac\"}", FIELDAUTH_ERR_RESPONSE_UNSUPPORTED_TOKEN_TYPE},
        {200, "<html>hi</html>", FIELDAUTH_ERR_RESPONSE_NOT_JSON},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        init_autotask(&s1);
        CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
        CHECK(response(resp, sizeof resp, cases[i].status, "", cases[i].body) > 0);
        EXPECT(feed_response(&s1, 10, resp, 3, &ev), cases[i].want);
        OK(fieldauth_session_get_info(&s1, &(fieldauth_session_info){0}));
        OK(fieldauth_session_poll(&s1, 10, &a));
        CHECK(a.kind == FIELDAUTH_ACTION_WAIT || a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    }
    /* An oversized token: more than the session's token slot holds. */
    init_autotask(&s1);
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    strcpy(body, "{\"access_token\":\"");
    memset(body + strlen(body), 'A', 4000);
    strcpy(body + strlen("{\"access_token\":\"") + 4000, "\"}");
    CHECK(response(resp, sizeof resp, 200, "", body) > 0);
    EXPECT(feed_response(&s1, 10, resp, 100, &ev), FIELDAUTH_ERR_CAPACITY_EXCEEDED);

    /* A malformed head: the head parser refuses it, then refuses more input. */
    {
        size_t used;
        uint32_t done;
        OK(fieldauth_head_init(&hd));
        EXPECT(fieldauth_head_feed(&hd, u8("HTTP/9 200\r\n"), 12, &used, &done), FIELDAUTH_ERR_HTTP_STATUS_LINE);
        EXPECT(fieldauth_head_feed(&hd, u8("x"), 1, &used, &done), FIELDAUTH_ERR_WRONG_STATE);
        OK(fieldauth_head_init(&hd));
        EXPECT(fieldauth_head_feed(&hd, u8("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 59, &used, &done),
               FIELDAUTH_ERR_HTTP_CONFLICTING_LENGTH);
        OK(fieldauth_head_init(&hd));
        EXPECT(fieldauth_head_feed(&hd, u8("HTTP/1.1 200 OK\r\nBad Header\r\n"), 29, &used, &done),
               FIELDAUTH_ERR_HTTP_HEADER_LINE);
        OK(fieldauth_head_init(&hd));
        EXPECT(fieldauth_head_feed(NULL, u8("x"), 1, &used, &done), FIELDAUTH_ERR_NULL_POINTER);
        EXPECT(fieldauth_head_feed(&hd, NULL, 1, &used, &done), FIELDAUTH_ERR_NULL_POINTER);
        EXPECT(fieldauth_head_feed(&hd, NULL, 0, NULL, &done), FIELDAUTH_ERR_NULL_POINTER);
        OK(fieldauth_head_feed(&hd, NULL, 0, &used, &done));
        CHECK(used == 0 && done == 0);
        EXPECT(fieldauth_head_init(NULL), FIELDAUTH_ERR_NULL_POINTER);
        EXPECT(fieldauth_head_init((fieldauth_head *)(void *)((char *)raw_storage + 2)), FIELDAUTH_ERR_MISALIGNED);
    }
    /* 401 invalid_client with a description: a permanent failure. */
    init_autotask(&s1);
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    CHECK(response(resp, sizeof resp, 401, "",
                   "{\"error\":\"invalid_client\",\"error_description\":\"bad secret\"}") > 0);
    OK(feed_response(&s1, 10, resp, 1, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_FAILED && ev.failure == FIELDAUTH_FAILURE_INVALID_CLIENT);
    OK(fieldauth_session_failure_description(&s1, buf, sizeof buf, &n));
    CHECK(n == 10 && strcmp((const char *)buf, "bad secret") == 0);
    EXPECT(fieldauth_session_failure_description(&s1, buf, 10, &n), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 11);
    OK(fieldauth_session_poll(&s1, 20, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_FAILED && a.failure == FIELDAUTH_FAILURE_INVALID_CLIENT);
    /* 503: transient, a retry. */
    init_autotask(&s1);
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    CHECK(response(resp, sizeof resp, 503, "Retry-After: 9\r\n", "{\"error\":\"temporarily_unavailable\"}") > 0);
    OK(feed_response(&s1, 10, resp, 64, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_RETRYING && ev.http_status == 503 && ev.at_ms >= 9010);
    /* The connection closes before the body ends. */
    init_autotask(&s1);
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    EXPECT(fieldauth_session_feed_token_eof(&s1, 10, &ev), FIELDAUTH_ERR_TRANSPORT);
    OK(fieldauth_session_clear(&s1));
}

/* Issue #19: an old error's description never shows a new token, and a
 * server-imposed wait is cut to the configured cap. */
static void test_failure_handling(void) {
    fieldauth_action a;
    fieldauth_event ev;
    fieldauth_verdict v;
    fieldauth_config c = config("http://127.0.0.1:8080/autotask");
    uint8_t buf[1024];
    char resp[1024];
    size_t n = 0, len;
    uint64_t now;
    init_autotask(&s1);
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    CHECK(response(resp, sizeof resp, 503, "",
                   "{\"error\":\"temporarily_unavailable\",\"error_description\":\"down for maintenance\"}") > 0);
    OK(feed_response(&s1, 10, resp, 7, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_RETRYING);
    OK(fieldauth_session_failure_description(&s1, buf, sizeof buf, &n));
    CHECK(n == 20 && strcmp((const char *)buf, "down for maintenance") == 0);
    {
        fieldauth_session_info info;
        OK(fieldauth_session_get_info(&s1, &info));
        CHECK(info.last_http_status == 503 && info.last_content_json == 1);
    }
    now = ev.at_ms + 7000; /* past the retry and Autotask's token pace */
    OK(fieldauth_session_poll(&s1, now, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    CHECK(send_request(&s1, now, buf, sizeof buf) > 0);
    CHECK(response(resp, sizeof resp, 200, "",
                   "{\"access_token\":\"tok-abcdefghijklmnopqrstuvwxyz0123\",\"token_type\":\"Bearer\",\"expires_in\":3600}") > 0);
    OK(feed_response(&s1, now, resp, 7, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
    memset(buf, 0xAA, sizeof buf);
    OK(fieldauth_session_failure_description(&s1, buf, sizeof buf, &n));
    CHECK(n == 0 && buf[0] == 0); /* before the fix: 20 bytes of the new token */
    OK(fieldauth_session_clear(&s1));

    /* max_wait_s: a Retry-After of a day is cut to 120 s. */
    c.client_id = str("demo-client");
    c.client_secret = str("demo-secret");
    c.max_wait_s = 120;
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_AUTOTASK, &c, 7));
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    CHECK(response(resp, sizeof resp, 200, "", TOKEN_BODY) > 0);
    OK(feed_response(&s1, 10, resp, 64, &ev));
    len = response(resp, sizeof resp, 429, "Retry-After: 86400\r\n", "");
    CHECK(parse_head(u8(resp), len, 64) != (size_t)-1);
    OK(fieldauth_session_report_api_response(&s1, 1000, &hd, NULL, 0, &v));
    CHECK(v.kind == FIELDAUTH_VERDICT_RATE_LIMITED && v.until_ms == 1000 + 120000);
    /* The default cap (max_wait_s = 0) is an hour. */
    c.max_wait_s = 0;
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_AUTOTASK, &c, 7));
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    CHECK(response(resp, sizeof resp, 200, "", TOKEN_BODY) > 0);
    OK(feed_response(&s1, 10, resp, 64, &ev));
    len = response(resp, sizeof resp, 429, "Retry-After: 4000000000\r\n", "");
    CHECK(parse_head(u8(resp), len, 64) != (size_t)-1);
    OK(fieldauth_session_report_api_response(&s1, 1000, &hd, NULL, 0, &v));
    CHECK(v.kind == FIELDAUTH_VERDICT_RATE_LIMITED && v.until_ms == 1000 + (uint64_t)FIELDAUTH_DEFAULT_MAX_WAIT_S * 1000);
    OK(fieldauth_session_clear(&s1));

    /* Issue #14 section 2.9: a late 401 for an older token leaves the new one alone. */
    {
        fieldauth_authorization au;
        fieldauth_session_info info;
        uint32_t old_id;
        init_autotask(&s1);
        CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
        CHECK(response(resp, sizeof resp, 200, "", TOKEN_BODY) > 0);
        OK(feed_response(&s1, 10, resp, 64, &ev));
        OK(fieldauth_session_authorize(&s1, 100, NULL, 0, buf, sizeof buf, &n, &au));
        CHECK(au.kind == FIELDAUTH_AUTHORIZATION_SEND && au.token_id != 0);
        old_id = au.token_id;
        len = response(resp, sizeof resp, 401, "", "");
        CHECK(parse_head(u8(resp), len, 64) != (size_t)-1);
        OK(fieldauth_session_report_api_response_for(&s1, 200, &hd, NULL, 0, old_id, &v));
        CHECK(v.kind == FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN);
        CHECK(send_request(&s1, 7000, buf, sizeof buf) > 0); /* a new token */
        CHECK(response(resp, sizeof resp, 200, "", TOKEN_BODY) > 0);
        OK(feed_response(&s1, 7010, resp, 64, &ev));
        CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
        len = response(resp, sizeof resp, 401, "", "");
        CHECK(parse_head(u8(resp), len, 64) != (size_t)-1);
        OK(fieldauth_session_report_api_response_for(&s1, 8000, &hd, NULL, 0, old_id, &v));
        CHECK(v.kind == FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN);
        OK(fieldauth_session_get_info(&s1, &info));
        CHECK(info.usable == 1);
        OK(fieldauth_session_authorize(&s1, 8100, NULL, 0, buf, sizeof buf, &n, &au));
        CHECK(au.kind == FIELDAUTH_AUTHORIZATION_SEND && au.token_id != old_id);
        OK(fieldauth_session_clear(&s1));
    }
}

static void test_body_reader(void) {
    const char *resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                       "X-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 7\r\nX-RateLimit-Reset: 60\r\n\r\n"
                       "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nEXTRA";
    size_t at = parse_head(u8(resp), strlen(resp), 10);
    fieldauth_response_info ri;
    fieldauth_body_progress pr;
    char out[32];
    size_t out_len = 0, len = strlen(resp);
    CHECK(at != (size_t)-1);
    OK(fieldauth_head_get_info(&hd, &ri));
    CHECK(ri.status == 200 && ri.framing == FIELDAUTH_FRAMING_CHUNKED);
    CHECK((ri.flags & FIELDAUTH_HEAD_CHUNKED) && (ri.flags & FIELDAUTH_HEAD_DATE) && ri.date == 784111777u);
    CHECK(ri.x_rate_limit_limit == 100 && ri.x_rate_limit_remaining == 7 && ri.x_rate_limit_reset == 60);
    CHECK((ri.flags & FIELDAUTH_HEAD_X_RATE_LIMIT_RESET) && !(ri.flags & FIELDAUTH_HEAD_CONTENT_LENGTH));
    EXPECT(fieldauth_head_get_info(&hd, NULL), FIELDAUTH_ERR_NULL_POINTER);
    {
        fieldauth_bearer_challenge bc;
        uint8_t texts[16];
        size_t tl = 0;
        /* No challenge in this head. */
        EXPECT(fieldauth_head_get_bearer(&hd, texts, sizeof texts, &tl, &bc), FIELDAUTH_ERR_WRONG_STATE);
    }
    EXPECT(fieldauth_body_read(&bd, u8("x"), 1, &pr), FIELDAUTH_ERR_NOT_INITIALIZED);
    EXPECT(fieldauth_body_init(NULL, &hd), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_body_init(&bd, NULL), FIELDAUTH_ERR_NULL_POINTER);
    /* A head object is not a body object (different magic). */
    EXPECT(fieldauth_body_finish((const fieldauth_body *)(const void *)&hd), FIELDAUTH_ERR_NOT_INITIALIZED);
    OK(fieldauth_body_init(&bd, &hd));
    EXPECT(fieldauth_body_finish(&bd), FIELDAUTH_ERR_TRANSPORT); /* nothing read yet */
    while (at < len) {
        size_t piece = len - at < 4 ? len - at : 4;
        OK(fieldauth_body_read(&bd, u8(resp) + at, piece, &pr));
        CHECK(pr.data_offset + pr.data_len <= piece && out_len + pr.data_len < sizeof out);
        memcpy(out + out_len, resp + at + pr.data_offset, pr.data_len);
        out_len += pr.data_len;
        at += pr.consumed;
        if (pr.done) break;
    }
    CHECK(pr.done == 1 && out_len == 11 && memcmp(out, "hello world", 11) == 0);
    CHECK(strcmp(resp + at, "EXTRA") == 0); /* trailing bytes are not consumed */
    OK(fieldauth_body_finish(&bd));
    OK(fieldauth_body_read(&bd, u8("EXTRA"), 5, &pr));
    CHECK(pr.consumed == 0 && pr.done == 1);

    /* Malformed chunk size. */
    OK(fieldauth_body_init(&bd, &hd));
    EXPECT(fieldauth_body_read(&bd, u8("zz\r\n"), 4, &pr), FIELDAUTH_ERR_HTTP_CHUNK);
    EXPECT(fieldauth_body_read(&bd, u8("0\r\n"), 3, &pr), FIELDAUTH_ERR_WRONG_STATE);
    EXPECT(fieldauth_body_read(&bd, u8("0\r\n"), 3, NULL), FIELDAUTH_ERR_NULL_POINTER);
    /* Close-delimited: complete at end of stream. */
    CHECK(parse_head(u8("HTTP/1.0 200 OK\r\n\r\nabc"), 22, 100) == 19);
    OK(fieldauth_head_get_info(&hd, &ri));
    CHECK(ri.framing == FIELDAUTH_FRAMING_CLOSE && (ri.flags & FIELDAUTH_HEAD_CONNECTION_CLOSE));
    OK(fieldauth_body_init(&bd, &hd));
    OK(fieldauth_body_read(&bd, u8("abc"), 3, &pr));
    CHECK(pr.consumed == 3 && pr.data_len == 3 && pr.done == 0);
    OK(fieldauth_body_finish(&bd));
    /* An incomplete head cannot start a body. */
    OK(fieldauth_head_init(&hd));
    EXPECT(fieldauth_body_init(&bd, &hd), FIELDAUTH_ERR_WRONG_STATE);
    EXPECT(fieldauth_head_get_info(&hd, &ri), FIELDAUTH_ERR_WRONG_STATE);
}

static void test_field_nation_query_and_phrase(void) {
    fieldauth_config c = config("http://127.0.0.1:9/fieldnation");
    fieldauth_event ev;
    fieldauth_authorization au;
    fieldauth_verdict v;
    fieldauth_action a;
    uint8_t buf[512];
    char resp[1024];
    size_t n = 0;
    const char *target = "/api/rest/v2/workorders?page=2";
    c.client_id = str("demo-client");
    c.client_secret = str("demo-secret");
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_FIELD_NATION, &c, 3));
    n = send_request(&s1, 0, buf, sizeof buf);
    CHECK(n > 0 && mem_has(buf, n, "\"scope\":\"api\""));
    CHECK(response(resp, sizeof resp, 200, "", "{\"access_token\":\"fn+tok/=\",\"expires_in\":3600}") > 0);
    OK(feed_response(&s1, 5, resp, 1000, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
    /* Query credential: the target gains the parameter (form-encoded). */
    OK(fieldauth_session_authorize(&s1, 10, u8(target), strlen(target), buf, sizeof buf, &n, &au));
    CHECK(au.kind == FIELDAUTH_AUTHORIZATION_SEND && au.credential == FIELDAUTH_CREDENTIAL_QUERY);
    CHECK(n == strlen("/api/rest/v2/workorders?page=2&access_token=fn%2Btok%2F%3D"));
    CHECK(memcmp(buf, "/api/rest/v2/workorders?page=2&access_token=fn%2Btok%2F%3D", n) == 0);
    /* Bad targets are refused (before any budget is spent). */
    EXPECT(fieldauth_session_authorize(&s1, 10, NULL, 0, buf, sizeof buf, &n, &au), FIELDAUTH_ERR_INPUT_EMPTY);
    EXPECT(fieldauth_session_authorize(&s1, 10, u8("/a b"), 4, buf, sizeof buf, &n, &au),
           FIELDAUTH_ERR_INPUT_INVALID_CHARACTER);
    EXPECT(fieldauth_session_authorize(&s1, 10, u8("/a\r\n"), 4, buf, sizeof buf, &n, &au),
           FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER);
    /* 400 with the expired-token phrase: retry with a new token. */
    CHECK(response(resp, sizeof resp, 400, "", "{\"error\":\"Expired token\"}") > 0);
    CHECK(parse_head(u8(resp), strlen(resp), 50) != (size_t)-1);
    OK(fieldauth_session_report_api_response(&s1, 20, &hd, u8("{\"error\":\"Expired token\"}"), 25, &v));
    CHECK(v.kind == FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN);
    /* Revocation without an endpoint: the tokens are wiped. */
    OK(fieldauth_session_revoke(&s1));
    OK(fieldauth_session_poll(&s1, 30, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_FAILED && a.failure == FIELDAUTH_FAILURE_REVOKED);
    OK(fieldauth_session_restart(&s1));
    OK(fieldauth_session_reseed(&s1, 0x1234));
    OK(fieldauth_session_set_wall_clock(&s1, 30, 1700000000000ull));
    OK(fieldauth_session_poll(&s1, 30, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    OK(fieldauth_session_clear(&s1));
}

static void test_device_flow(void) {
    fieldauth_profile p;
    fieldauth_config c = config("https://idp.example.com");
    fieldauth_action a;
    fieldauth_event ev;
    fieldauth_device_display dd;
    uint8_t buf[512];
    char resp[1024];
    size_t n = 0;
    OK(fieldauth_profile_preset(FIELDAUTH_PRESET_CUSTOM, &p));
    p.mode = FIELDAUTH_MODE_DEVICE_CODE;
    p.client_auth = FIELDAUTH_CLIENT_AUTH_NONE;
    c.client_id = str("handheld");
    OK(fieldauth_session_init(&s1, &p, &c, 9));
    EXPECT(fieldauth_session_device_display(&s1, buf, sizeof buf, &n, &dd), FIELDAUTH_ERR_WRONG_STATE);
    OK(fieldauth_session_poll(&s1, 0, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST && a.request_kind == FIELDAUTH_REQUEST_DEVICE_AUTHORIZATION);
    n = send_request(&s1, 0, buf, sizeof buf);
    CHECK(n > 0 && memcmp(buf, "POST /oauth/device_authorization", 32) == 0);
    CHECK(response(resp, sizeof resp, 200, "",
                   "{\"device_code\":\"dev-1\",\"user_code\":\"WDJB-MJHT\","
                   "\"verification_uri\":\"https://idp.example.com/device\",\"expires_in\":900,\"interval\":5}") > 0);
    OK(feed_response(&s1, 100, resp, 13, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_USER_CODE);
    EXPECT(fieldauth_session_device_display(&s1, buf, 20, &n, &dd), FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n == strlen("WDJB-MJHT") + 1 + strlen("https://idp.example.com/device") + 1 + 1);
    OK(fieldauth_session_device_display(&s1, buf, sizeof buf, &n, &dd));
    CHECK(eq(dd.user_code, "WDJB-MJHT") && dd.user_code.ptr[dd.user_code.len] == 0);
    CHECK(eq(dd.verification_uri, "https://idp.example.com/device"));
    CHECK(dd.verification_uri_complete.len == 0 && dd.expires_at_ms == 900000);
    OK(fieldauth_session_poll(&s1, 5100, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST && a.request_kind == FIELDAUTH_REQUEST_DEVICE_POLL);
    CHECK(send_request(&s1, 5100, buf, sizeof buf) > 0);
    CHECK(response(resp, sizeof resp, 400, "", "{\"error\":\"authorization_pending\"}") > 0);
    OK(feed_response(&s1, 5200, resp, 13, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_AUTHORIZATION_PENDING);
    OK(fieldauth_session_clear(&s1));
}

static void test_authorization_code(void) {
    fieldauth_config c = config("https://api.fentu.example");
    fieldauth_action a;
    uint8_t rnd[64], url[1024];
    size_t n = 0, i;
    const char *state_param;
    char state[128];
    for (i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)(i * 37 + 11);
    c.client_id = str("demo-client");
    c.client_secret = str("demo-secret");
    c.redirect_uri = str("https://app.example/cb");
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_FENTU_OAUTH, &c, 5));
    OK(fieldauth_session_poll(&s1, 0, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_NEED_AUTHORIZATION_CODE);
    EXPECT(fieldauth_session_set_authorization_code(&s1, u8("c"), 1, u8("s"), 1), FIELDAUTH_ERR_WRONG_STATE);
    EXPECT(fieldauth_session_authorization_url(&s1, rnd, 8, rnd + 32, 16, url, sizeof url, &n),
           FIELDAUTH_ERR_INPUT_TOO_SHORT);
    EXPECT(fieldauth_session_authorization_url(&s1, rnd, 32, rnd + 32, 16, url, 10, &n),
           FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(n > 100);
    OK(fieldauth_session_authorization_url(&s1, rnd, 32, rnd + 32, 16, url, sizeof url, &n));
    CHECK(memcmp(url, "https://api.fentu.example/oauth/authorize?", 42) == 0);
    CHECK(mem_has(url, n, "code_challenge_method=S256"));
    /* Find state=... in the URL. */
    url[n] = 0;
    state_param = strstr((const char *)url, "state=");
    CHECK(state_param != NULL);
    if (!state_param) return;
    state_param += 6;
    for (i = 0; state_param[i] && state_param[i] != '&' && i + 1 < sizeof state; i++) state[i] = state_param[i];
    state[i] = 0;
    EXPECT(fieldauth_session_set_authorization_code(&s1, u8("code-1"), 6, u8("wrong"), 5),
           FIELDAUTH_ERR_INPUT_INVALID_CHARACTER);
    EXPECT(fieldauth_session_set_authorization_code(&s1, u8("c\xff"), 2, u8(state), strlen(state)),
           FIELDAUTH_ERR_INVALID_UTF8);
    EXPECT(fieldauth_session_set_authorization_code(&s1, u8("c\n"), 2, u8(state), strlen(state)),
           FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER);
    OK(fieldauth_session_set_authorization_code(&s1, u8("code-1"), 6, u8(state), strlen(state)));
    OK(fieldauth_session_poll(&s1, 10, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST && a.request_kind == FIELDAUTH_REQUEST_FETCH);
    n = send_request(&s1, 10, url, sizeof url);
    CHECK(n > 0 && mem_has(url, n, "code=code-1") && mem_has(url, n, "code_verifier="));
    OK(fieldauth_session_clear(&s1));
}

/* resource, audience and extra parameters (issue #14 §2.3). */
static void test_extra_params(void) {
    fieldauth_config c = config("https://as.example");
    fieldauth_request_parts parts;
    uint8_t buf[1024];
    size_t n = 0;
    const char *want = "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example%2F"
                       "&audience=fsm-api&tenant=acme&x=a%20b";
    c.client_id = str("app");
    c.client_secret = str("s3cret");
    c.resource = str("https://api.example/");
    c.audience = str("fsm-api");
    c.token_params = str("tenant=acme&x=a%20b");
    c.authorize_params = str("prompt=consent");
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_CUSTOM, &c, 1));
    OK(fieldauth_session_write_token_request_parts(&s1, 0, buf, sizeof buf, &n, &parts));
    CHECK(parts.body.len == strlen(want) && memcmp(parts.body.ptr, want, parts.body.len) == 0);
    OK(fieldauth_session_clear(&s1));
    c.token_params = str("grant_type=password");
    EXPECT(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_CUSTOM, &c, 1), FIELDAUTH_ERR_INPUT_RESERVED);
    c.token_params = str("a=b\r\nHost: x");
    EXPECT(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_CUSTOM, &c, 1), FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER);
}

/* The redirect itself (issue #14 §2.7): state and iss checked, error= typed,
 * a forged redirect refused without losing the login. */
static void test_authorization_callback(void) {
    fieldauth_config c = config("https://api.fentu.example");
    fieldauth_action a;
    uint8_t rnd[64], url[1024];
    char state[128], redirect[512];
    const char *p;
    const char *iss = "https://as.example";
    size_t n = 0, i;
    uint32_t denied = 99;
    for (i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)(i * 13 + 5);
    c.client_id = str("demo-client");
    c.client_secret = str("demo-secret");
    c.redirect_uri = str("https://app.example/cb");
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_FENTU_OAUTH, &c, 5));
    EXPECT(fieldauth_session_on_authorization_callback(&s1, u8("code=c&state=s"), 14, NULL, 0, NULL),
           FIELDAUTH_ERR_WRONG_STATE);
    OK(fieldauth_session_authorization_url(&s1, rnd, 32, rnd + 32, 16, url, sizeof url, &n));
    url[n] = 0;
    p = strstr((const char *)url, "state=");
    CHECK(p != NULL);
    if (!p) return;
    p += 6;
    for (i = 0; p[i] && p[i] != '&' && i + 1 < sizeof state; i++) state[i] = p[i];
    state[i] = 0;
    /* Forged, mixed up, malformed: refused, and the login goes on. */
    snprintf(redirect, sizeof redirect, "https://app.example/cb?code=x&state=forged");
    EXPECT(fieldauth_session_on_authorization_callback(&s1, u8(redirect), strlen(redirect), NULL, 0, &denied),
           FIELDAUTH_ERR_INPUT_MISMATCH);
    CHECK(denied == FIELDAUTH_FAILURE_NONE);
    snprintf(redirect, sizeof redirect, "/cb?code=x&state=%s", state);
    EXPECT(fieldauth_session_on_authorization_callback(&s1, u8(redirect), strlen(redirect), u8(iss), strlen(iss), NULL),
           FIELDAUTH_ERR_INPUT_MISSING);
    snprintf(redirect, sizeof redirect, "/cb?code=x&state=%s&iss=https%%3A%%2F%%2Fevil.example", state);
    EXPECT(fieldauth_session_on_authorization_callback(&s1, u8(redirect), strlen(redirect), u8(iss), strlen(iss), NULL),
           FIELDAUTH_ERR_INPUT_MISMATCH);
    snprintf(redirect, sizeof redirect, "/cb?code=x&code=y&state=%s", state);
    EXPECT(fieldauth_session_on_authorization_callback(&s1, u8(redirect), strlen(redirect), NULL, 0, NULL),
           FIELDAUTH_ERR_INPUT_DUPLICATE);
    snprintf(redirect, sizeof redirect, "/cb?code=x%%0D%%0A&state=%s", state);
    EXPECT(fieldauth_session_on_authorization_callback(&s1, u8(redirect), strlen(redirect), NULL, 0, NULL),
           FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER);
    snprintf(redirect, sizeof redirect, "/cb?error=access_denied&error_description=no&state=%s", state);
    EXPECT(fieldauth_session_on_authorization_callback(&s1, u8(redirect), strlen(redirect), NULL, 0, &denied),
           FIELDAUTH_ERR_RESPONSE_AUTHORIZATION_DENIED);
    CHECK(denied == FIELDAUTH_FAILURE_ACCESS_DENIED);
    CHECK(strstr(fieldauth_status_message(FIELDAUTH_ERR_RESPONSE_AUTHORIZATION_DENIED), "declined") != NULL);
    OK(fieldauth_session_poll(&s1, 10, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_NEED_AUTHORIZATION_CODE);
    /* The genuine one. */
    snprintf(redirect, sizeof redirect, "https://app.example/cb?code=c%%2Bd&state=%s&iss=https%%3A%%2F%%2Fas.example", state);
    OK(fieldauth_session_on_authorization_callback(&s1, u8(redirect), strlen(redirect), u8(iss), strlen(iss), &denied));
    CHECK(denied == FIELDAUTH_FAILURE_NONE);
    OK(fieldauth_session_poll(&s1, 10, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST && a.request_kind == FIELDAUTH_REQUEST_FETCH);
    n = send_request(&s1, 10, url, sizeof url);
    CHECK(n > 0 && mem_has(url, n, "code=c%2Bd"));
    OK(fieldauth_session_clear(&s1));
}

/* ------------------------------------------------------------------ exchange */

/* An in-memory peer: collects the request, answers with `resp` in pieces of
 * `piece` bytes, returning "would block" every `block_every` calls. */
typedef struct {
    char req[2048];
    size_t req_len;
    const char *resp;
    size_t resp_len, resp_at, piece;
    int calls, block_every;
    int fail_send, fail_recv, close_at_end, overrun;
} peer;

static ptrdiff_t peer_send(void *ctx, const uint8_t *buf, size_t len) {
    peer *p = (peer *)ctx;
    size_t n = len > 50 ? 50 : len; /* partial writes */
    p->calls++;
    if (p->fail_send) return FIELDAUTH_TRANSPORT_ERROR;
    if (p->block_every && p->calls % p->block_every == 0) return 0;
    if (p->req_len + n > sizeof p->req) return FIELDAUTH_TRANSPORT_ERROR;
    memcpy(p->req + p->req_len, buf, n);
    p->req_len += n;
    return (ptrdiff_t)n;
}

static ptrdiff_t peer_recv(void *ctx, uint8_t *buf, size_t len) {
    peer *p = (peer *)ctx;
    size_t n = p->resp_len - p->resp_at;
    p->calls++;
    if (p->fail_recv) return -5;
    if (p->overrun) return (ptrdiff_t)len + 1;
    if (p->block_every && p->calls % p->block_every == 0) return 0;
    if (n == 0) return p->close_at_end ? FIELDAUTH_TRANSPORT_CLOSED : 0;
    if (n > p->piece) n = p->piece;
    if (n > len) n = len;
    memcpy(buf, p->resp + p->resp_at, n);
    p->resp_at += n;
    return (ptrdiff_t)n;
}

static void peer_init(peer *p, const char *resp, size_t piece, int block_every) {
    memset(p, 0, sizeof *p);
    p->resp = resp;
    p->resp_len = strlen(resp);
    p->piece = piece;
    p->block_every = block_every;
}

static void test_exchange(void) {
    static char resp[1024];
    peer p;
    fieldauth_transport t;
    fieldauth_event ev;
    fieldauth_action a;
    uint8_t buf[128];
    uint8_t whole[1024];
    size_t whole_len;
    int rounds;
    fieldauth_status st;

    CHECK(response(resp, sizeof resp, 200, "", TOKEN_BODY) > 0);
    t.ctx = &p;
    t.send = peer_send;
    t.recv = peer_recv;

    /* The expected request bytes, from a twin session. */
    init_autotask(&s2);
    whole_len = send_request(&s2, 0, whole, sizeof whole);
    CHECK(whole_len > 128);

    /* Blocking transport: one call does it all, through 128 bytes. */
    init_autotask(&s1);
    peer_init(&p, resp, 17, 0);
    OK(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED && ev.lifetime_s == 3600);
    CHECK(p.req_len == whole_len && memcmp(p.req, whole, whole_len) == 0);
    OK(fieldauth_session_poll(&s1, 10, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_READY);
    /* Nothing is due now. */
    EXPECT(fieldauth_session_exchange(&s1, &hd, 10, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_WRONG_STATE);

    /* Non-blocking transport: would-block every third call, resumed. */
    init_autotask(&s1);
    peer_init(&p, resp, 9, 3);
    rounds = 0;
    do {
        st = fieldauth_session_exchange(&s1, &hd, (uint64_t)rounds, &t, buf, sizeof buf, &ev);
        rounds++;
    } while (st == FIELDAUTH_ERR_WOULD_BLOCK && rounds < 1000);
    OK(st);
    CHECK(rounds > 3 && ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
    CHECK(p.req_len == whole_len && memcmp(p.req, whole, whole_len) == 0);

    /* Tiny buffer: 1 byte works too. */
    init_autotask(&s1);
    peer_init(&p, resp, 64, 0);
    OK(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, 1, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
    {
        /* The head says whether the connection goes on (issue #14 §2.2). */
        static char closing[1024];
        fieldauth_response_info ri;
        OK(fieldauth_head_get_info(&hd, &ri));
        CHECK(!(ri.flags & FIELDAUTH_HEAD_CONNECTION_CLOSE) && ri.framing == FIELDAUTH_FRAMING_LENGTH);
        CHECK(response(closing, sizeof closing, 200, "Connection: close\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
                       TOKEN_BODY) > 0);
        init_autotask(&s1);
        peer_init(&p, closing, 64, 0);
        OK(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev));
        CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
        OK(fieldauth_head_get_info(&hd, &ri));
        CHECK((ri.flags & FIELDAUTH_HEAD_CONNECTION_CLOSE) && (ri.flags & FIELDAUTH_HEAD_DATE) && ri.date == 784111777u);
    }

    /* Errors: callbacks fail, overrun, close early, bad arguments. */
    init_autotask(&s1);
    peer_init(&p, resp, 64, 0);
    p.fail_send = 1;
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_TRANSPORT);
    OK(fieldauth_session_poll(&s1, 0, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_WAIT || a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    init_autotask(&s1);
    peer_init(&p, resp, 64, 0);
    p.fail_recv = 1;
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_TRANSPORT);
    init_autotask(&s1);
    peer_init(&p, resp, 64, 0);
    p.overrun = 1;
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_TRANSPORT);
    init_autotask(&s1);
    peer_init(&p, "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{", 64, 0);
    p.close_at_end = 1;
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_TRANSPORT);
    init_autotask(&s1);
    peer_init(&p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 64, 0);
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_JSON_NOT_AN_OBJECT);
    init_autotask(&s1);
    peer_init(&p, "HTTP/1.1 2000 OK\r\n\r\n", 64, 0);
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_HTTP_STATUS_LINE);
    /* Close-delimited token response: complete at end of stream. */
    init_autotask(&s1);
    {
        static char closed[512];
        snprintf(closed, sizeof closed, "HTTP/1.0 200 OK\r\n\r\n%s", TOKEN_BODY);
        peer_init(&p, closed, 64, 0);
        p.close_at_end = 1;
        OK(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev));
        CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
    }
    /* A resumed exchange whose session timed out meanwhile. */
    init_autotask(&s1);
    peer_init(&p, "", 64, 0); /* recv would block forever */
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_WOULD_BLOCK);
    EXPECT(fieldauth_session_exchange(&s1, &hd, 1000, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_WOULD_BLOCK);
    EXPECT(fieldauth_session_exchange(&s1, &hd, 61000, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_TRANSPORT);

    init_autotask(&s1);
    peer_init(&p, resp, 64, 0);
    t.recv = NULL;
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_NULL_POINTER);
    t.recv = peer_recv;
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, NULL, buf, sizeof buf, &ev), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_exchange(&s1, NULL, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, 0, &ev), FIELDAUTH_ERR_INVALID_ARGUMENT);
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, NULL, 128, &ev), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_exchange(&s1, &hd, 0, &t, buf, sizeof buf, NULL), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_exchange(NULL, &hd, 0, &t, buf, sizeof buf, &ev), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_exchange(&s1, (fieldauth_head *)(void *)&s1, 0, &t, buf, sizeof buf, &ev),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    OK(fieldauth_session_clear(&s1));
    OK(fieldauth_session_clear(&s2));
}

/* Issue #20: token storage sized by the caller. A 4,096-byte JWT access
 * token with a 1 KB refresh token does not fit the inline 3 KB (the info says
 * how much a slot needed) and goes through caller storage; clear wipes it. */
static void fill_jwt(char *out, size_t len) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i;
    for (i = 0; i < len; i++) out[i] = (i == len / 2) ? '.' : b64[(i * 7 + 3) % 64];
    out[len] = 0;
}

/* Issue #14 section 2.6: revoking the access token alone, or both tokens. */
static void test_revoke_tokens(void) {
    fieldauth_config c = config("https://auth.example");
    fieldauth_action a;
    fieldauth_event ev;
    fieldauth_session_info info;
    uint8_t buf[1024];
    char resp[1024];
    size_t n;
    c.client_id = str("client-1");
    c.client_secret = str("s3cret");
    OK(fieldauth_session_init_preset(&s1, FIELDAUTH_PRESET_CUSTOM, &c, 1));
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    CHECK(response(resp, sizeof resp, 200, "",
                   "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
                   "\"refresh_token\":\"rt-1\"}") > 0);
    OK(feed_response(&s1, 10, resp, 64, &ev));
    EXPECT(fieldauth_session_revoke_tokens(&s1, 7), FIELDAUTH_ERR_UNKNOWN_ENUM);
    OK(fieldauth_session_revoke_tokens(&s1, FIELDAUTH_REVOCATION_ACCESS));
    OK(fieldauth_session_poll(&s1, 20, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST && a.request_kind == FIELDAUTH_REQUEST_REVOKE);
    n = send_request(&s1, 20, buf, sizeof buf);
    CHECK(n > 0 && mem_has(buf, n, "token=at-1&token_type_hint=access_token"));
    CHECK(response(resp, sizeof resp, 200, "", "") > 0);
    OK(feed_response(&s1, 30, resp, 64, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_REVOKED);
    OK(fieldauth_session_get_info(&s1, &info));
    CHECK(info.failure == FIELDAUTH_FAILURE_NONE && info.refreshable == 1 && info.usable == 0);
    OK(fieldauth_session_poll(&s1, 40, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST && a.request_kind == FIELDAUTH_REQUEST_REFRESH);
    OK(fieldauth_session_clear(&s1));
}

static void test_caller_storage(void) {
    static char access[4097], refresh[1025], body[6000], resp[6500];
    static uint8_t storage[16384], buf[8192];
    static fieldauth_session_header hdr;
    fieldauth_session *hs = (fieldauth_session *)(void *)&hdr;
    fieldauth_config c = config("http://127.0.0.1:8080/autotask");
    fieldauth_profile p;
    fieldauth_event ev;
    fieldauth_session_info info;
    fieldauth_authorization au;
    size_t need = 0, n = 0, i, slot;
    int all_zero = 1;
    c.client_id = str("demo-client");
    c.client_secret = str("demo-secret");
    fill_jwt(access, 4096);
    fill_jwt(refresh, 1024);
    snprintf(body, sizeof body,
             "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
             "\"refresh_token\":\"%s\",\"scope\":\"openid groups\"}", access, refresh);
    CHECK(response(resp, sizeof resp, 200, "", body) > 0);

    /* The inline storage is too small, and the info says what a slot needed. */
    init_autotask(&s1);
    CHECK(send_request(&s1, 0, buf, sizeof buf) > 0);
    EXPECT(feed_response(&s1, 10, resp, 512, &ev), FIELDAUTH_ERR_CAPACITY_EXCEEDED);
    OK(fieldauth_session_get_info(&s1, &info));
    CHECK(info.slot_needed >= 4096 + 1024 && info.slot_capacity < info.slot_needed);
    slot = info.slot_needed + 64;
    OK(fieldauth_session_clear(&s1));

    /* Sized by the library for that slot; the session itself is a header. */
    OK(fieldauth_profile_preset(FIELDAUTH_PRESET_AUTOTASK, &p));
    OK(fieldauth_session_storage_size(&p, &c, slot, &need));
    CHECK(need > 2 * slot && need <= sizeof storage);
    EXPECT(fieldauth_session_init_preset_with_storage(hs, storage, 300, FIELDAUTH_PRESET_AUTOTASK, &c, 1),
           FIELDAUTH_ERR_CAPACITY_EXCEEDED);
    EXPECT(fieldauth_session_init_preset_with_storage(hs, NULL, need, FIELDAUTH_PRESET_AUTOTASK, &c, 1),
           FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_session_init_preset_with_storage(hs, (uint8_t *)(void *)&hdr, need, FIELDAUTH_PRESET_AUTOTASK, &c, 1),
           FIELDAUTH_ERR_INVALID_ARGUMENT); /* overlaps the session */
    memset(storage, 0xAA, sizeof storage);
    OK(fieldauth_session_init_preset_with_storage(hs, storage, need, FIELDAUTH_PRESET_AUTOTASK, &c, 1));
    OK(fieldauth_session_get_info(hs, &info));
    CHECK(info.slot_capacity >= slot && info.slot_needed == 0);
    CHECK(send_request(hs, 0, buf, sizeof buf) > 0);
    OK(feed_response(hs, 10, resp, 512, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED && ev.refreshable == 1);
    OK(fieldauth_session_authorize(hs, 100, NULL, 0, buf, sizeof buf, &n, &au));
    CHECK(au.kind == FIELDAUTH_AUTHORIZATION_SEND && n == strlen("Authorization: Bearer \r\n") + 4096);
    CHECK(memcmp(buf + 22, access, 4096) == 0);
    /* A buffer argument may not overlap the lent storage. */
    EXPECT(fieldauth_session_authorize(hs, 100, NULL, 0, storage + 8, 64, &n, &au), FIELDAUTH_ERR_INVALID_ARGUMENT);
    /* Clear wipes the caller's storage too; then it is the caller's again. */
    OK(fieldauth_session_clear(hs));
    for (i = 0; i < need; i++) all_zero &= storage[i] == 0;
    CHECK(all_zero);
    EXPECT(fieldauth_session_get_info(hs, &info), FIELDAUTH_ERR_NOT_INITIALIZED);
}

/* Init on uninitialized heap storage reads none of it (valgrind checks). */
static void test_heap_storage(void) {
    fieldauth_session *hs = (fieldauth_session *)malloc(fieldauth_session_sizeof());
    fieldauth_config c = config("https://api.example.com");
    fieldauth_action a;
    CHECK(hs != NULL);
    if (!hs) return;
    c.api_key = str("k");
    OK(fieldauth_session_init_preset(hs, FIELDAUTH_PRESET_PATCHWORKS_API_KEY, &c, 1));
    OK(fieldauth_session_poll(hs, 0, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_READY);
    OK(fieldauth_session_clear(hs));
    free(hs);
}

/* ------------------------------------------------------------------ fleet worker (issue #21) */

/* An in-memory store of callbacks that follows the fieldauth_store contract,
 * with a switch that makes every callback fail, and a clock the test sets. */
static struct {
    int down;
    uint64_t now, generation, holder, lease_end, tat[2];
    size_t len;
    uint8_t state[4096];
} mem;

static int32_t mem_load(void *ctx, uint8_t *buf, size_t cap, size_t *len, uint64_t *gen) {
    (void)ctx;
    if (mem.down) return FIELDAUTH_STORE_FAILED;
    *gen = mem.generation;
    *len = mem.generation ? mem.len : 0;
    if (*len > cap) return FIELDAUTH_STORE_BUFFER_TOO_SMALL;
    memcpy(buf, mem.state, *len);
    return FIELDAUTH_STORE_OK;
}

static int32_t mem_lease(void *ctx, uint64_t holder, uint32_t ttl, uint32_t *held, uint64_t *until) {
    (void)ctx;
    if (mem.down) return FIELDAUTH_STORE_FAILED;
    if (mem.holder == holder || mem.lease_end <= mem.now) {
        mem.holder = holder;
        mem.lease_end = mem.now + ttl;
        *held = 1;
    }
    *until = mem.lease_end;
    return FIELDAUTH_STORE_OK;
}

static int32_t mem_save(void *ctx, uint64_t holder, uint64_t expected, const uint8_t *state,
                        size_t len, uint32_t *result, uint64_t *gen) {
    (void)ctx;
    if (mem.down || len > sizeof mem.state) return FIELDAUTH_STORE_FAILED;
    if (mem.holder != holder || mem.lease_end <= mem.now) {
        *result = FIELDAUTH_SAVED_NOT_HOLDER;
    } else if (mem.generation != expected) {
        *result = FIELDAUTH_SAVED_STALE;
        *gen = mem.generation;
    } else {
        memcpy(mem.state, state, len);
        mem.len = len;
        *gen = mem.generation = expected + 1;
        *result = FIELDAUTH_SAVED_STORED;
    }
    return FIELDAUTH_STORE_OK;
}

static int32_t mem_release(void *ctx, uint64_t holder) {
    (void)ctx;
    if (mem.down) return FIELDAUTH_STORE_FAILED;
    if (mem.holder == holder) mem.lease_end = 0;
    return FIELDAUTH_STORE_OK;
}

/* Grants everything but counts: tat[0] token charges, tat[1] API charges. */
static int32_t mem_charge(void *ctx, const char *id, uint32_t requests, uint32_t window_s,
                          uint32_t burst, uint64_t *until) {
    (void)ctx;
    (void)until;
    if (mem.down) return FIELDAUTH_STORE_FAILED;
    CHECK(requests > 0 && window_s > 0 && burst > 0 && burst <= requests);
    if (strcmp(id, "token") == 0)
        mem.tat[0]++;
    else if (strcmp(id, "api") == 0)
        mem.tat[1]++;
    else
        return FIELDAUTH_STORE_FAILED;
    return FIELDAUTH_STORE_OK;
}

static void test_worker(void) {
    static fieldauth_worker w1, w2;
    static uint64_t raw_worker[FIELDAUTH_WORKER_WORDS + 1];
    fieldauth_worker *misaligned = (fieldauth_worker *)(void *)((char *)raw_worker + 4);
    fieldauth_store st = {NULL, mem_load, mem_lease, mem_save, mem_release, mem_charge};
    fieldauth_store no_save = st;
    fieldauth_action a;
    fieldauth_event ev;
    uint8_t img[4096], tiny[8], req[1024];
    char resp[1024];
    uint32_t turn = 9, adopted = 9, notice = 9;
    uint64_t until = 9, gen = 0;
    const uint64_t unix0 = 1700000000000ull;
    no_save.save = NULL;
    memset(img, 0, sizeof img);
    memset(&mem, 0, sizeof mem);
    mem.now = unix0;

    CHECK(fieldauth_worker_sizeof() == FIELDAUTH_WORKER_SIZE);
    EXPECT(fieldauth_worker_init(NULL, 1, 2, 1000, 0), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_worker_init(misaligned, 1, 2, 1000, 0), FIELDAUTH_ERR_MISALIGNED);
    memset(&w1, 0, sizeof w1);
    EXPECT(fieldauth_worker_take_notice(&w1, &notice), FIELDAUTH_ERR_NOT_INITIALIZED);
    OK(fieldauth_worker_init(&w1, 0x1111, 2, 30000, 0));
    OK(fieldauth_worker_init(&w2, 0x2222, 2, 30000, 0));
    init_autotask(&s1);
    init_autotask(&s2);
    OK(fieldauth_session_set_wall_clock(&s1, 0, unix0));
    OK(fieldauth_session_set_wall_clock(&s2, 0, unix0));

    /* Argument checks: a NULL callback, a NULL output, an unknown budget,
     * the image buffer overlapping the session. */
    EXPECT(fieldauth_worker_token_turn(&w1, &s1, &no_save, 0, unix0, img, sizeof img, &turn, &until),
           FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_worker_token_turn(&w1, &s1, &st, 0, unix0, img, sizeof img, NULL, &until),
           FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_worker_token_turn(&w1, &s1, NULL, 0, unix0, img, sizeof img, &turn, &until),
           FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_worker_charge(&w1, &s1, &st, 7, 0, unix0, img, sizeof img, &until), FIELDAUTH_ERR_UNKNOWN_ENUM);
    EXPECT(fieldauth_worker_sync(&w1, &s1, &st, 0, unix0, (uint8_t *)&s1, 64, &adopted),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    EXPECT(fieldauth_worker_sync(&w1, &s1, &st, 0, unix0, img, sizeof img, (uint32_t *)(void *)&w1),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(turn == 9 && until == 9 && adopted == 9); /* outputs untouched on errors */

    /* An empty store: nothing to adopt; W1 leads (its token budget charged). */
    OK(fieldauth_worker_sync(&w1, &s1, &st, 0, unix0, img, sizeof img, &adopted));
    CHECK(adopted == FIELDAUTH_ADOPTED_NONE);
    OK(fieldauth_session_poll(&s1, 0, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    OK(fieldauth_worker_token_turn(&w1, &s1, &st, 0, unix0, img, sizeof img, &turn, &until));
    CHECK(turn == FIELDAUTH_TURN_LEAD && until == 0 && mem.tat[0] == 1 && mem.holder == 0x1111);
    /* W2 has no token and the lease is busy: it waits (at most 100 ms). */
    OK(fieldauth_worker_token_turn(&w2, &s2, &st, 0, unix0, img, sizeof img, &turn, &until));
    CHECK(turn == FIELDAUTH_TURN_WAIT && until > 0 && until <= 100);
    /* W1's exchange, before it is over: the worker refuses to save. */
    CHECK(send_request(&s1, 0, req, sizeof req) > 0);
    EXPECT(fieldauth_worker_exchanged(&w1, &s1, &st, 0, unix0, 1, img, sizeof img, &adopted),
           FIELDAUTH_ERR_WRONG_STATE);
    CHECK(mem.lease_end == 0); /* but released the lease */
    OK(fieldauth_worker_token_turn(&w1, &s1, &st, 0, unix0, img, sizeof img, &turn, &until));
    CHECK(turn == FIELDAUTH_TURN_WAIT || turn == FIELDAUTH_TURN_LEAD);
    CHECK(response(resp, sizeof resp, 200, "", TOKEN_BODY) > 0);
    OK(feed_response(&s1, 10, resp, 64, &ev));
    CHECK(ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED);
    /* A buffer too small for the image: BUFFER_TOO_SMALL, the lease released. */
    OK(fieldauth_worker_token_turn(&w1, &s1, &st, 10, unix0 + 10, img, sizeof img, &turn, &until));
    EXPECT(fieldauth_worker_exchanged(&w1, &s1, &st, 10, unix0 + 10, 1, tiny, sizeof tiny, &adopted),
           FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(mem.generation == 0 && mem.lease_end == 0);
    OK(fieldauth_worker_token_turn(&w1, &s1, &st, 10, unix0 + 10, img, sizeof img, &turn, &until));
    CHECK(turn == FIELDAUTH_TURN_LEAD);
    OK(fieldauth_worker_exchanged(&w1, &s1, &st, 10, unix0 + 10, 1, img, sizeof img, &adopted));
    CHECK(adopted == FIELDAUTH_ADOPTED_NONE && mem.generation == 1 && mem.lease_end == 0);
    OK(fieldauth_session_shared_generation(&s1, &gen));
    CHECK(gen == 1);
    CHECK(!mem_has(img, sizeof img, "tok-123")); /* the image was wiped */

    /* W2 adopts W1's token instead of fetching its own. */
    mem.now = unix0 + 20;
    gen = mem.tat[0];
    OK(fieldauth_worker_token_turn(&w2, &s2, &st, 20, unix0 + 20, img, sizeof img, &turn, &until));
    CHECK(turn == FIELDAUTH_TURN_POLL && mem.tat[0] == gen); /* adopted: nothing charged */
    OK(fieldauth_session_poll(&s2, 20, &a));
    CHECK(a.kind == FIELDAUTH_ACTION_READY);
    OK(fieldauth_session_shared_generation(&s2, &gen));
    CHECK(gen == 1);
    /* A buffer too small to load into. */
    EXPECT(fieldauth_worker_sync(&w2, &s2, &st, 20, unix0 + 20, tiny, sizeof tiny, &adopted),
           FIELDAUTH_ERR_BUFFER_TOO_SMALL);

    /* API charges go to the store; a failing store is noticed once, then the
     * worker charges its own share, and the store's return is noticed. */
    OK(fieldauth_worker_charge(&w2, &s2, &st, FIELDAUTH_BUDGET_API, 30, unix0 + 30, img, sizeof img, &until));
    CHECK(until == 0 && mem.tat[1] == 1);
    OK(fieldauth_worker_take_notice(&w2, &notice));
    CHECK(notice == FIELDAUTH_NOTICE_NONE);
    mem.down = 1;
    OK(fieldauth_worker_charge(&w2, &s2, &st, FIELDAUTH_BUDGET_API, 40, unix0 + 40, img, sizeof img, &until));
    CHECK(until == 0);
    OK(fieldauth_worker_take_notice(&w2, &notice));
    CHECK(notice == FIELDAUTH_NOTICE_STORE_DOWN);
    OK(fieldauth_worker_take_notice(&w2, &notice));
    CHECK(notice == FIELDAUTH_NOTICE_NONE);
    mem.down = 0;
    OK(fieldauth_worker_charge(&w2, &s2, &st, FIELDAUTH_BUDGET_API, 40 + FIELDAUTH_STORE_RETRY_MS,
                               unix0 + 40 + FIELDAUTH_STORE_RETRY_MS, img, sizeof img, &until));
    OK(fieldauth_worker_take_notice(&w2, &notice));
    CHECK(notice == FIELDAUTH_NOTICE_STORE_BACK && mem.tat[1] == 2);
    OK(fieldauth_session_clear(&s1));
    OK(fieldauth_session_clear(&s2));
}

/* The GCRA step a C store's charge callback keeps per budget name: the core's
 * shared::charge_cell, so a C store and the library's stores agree. */
static void test_store_charge_cell(void) {
    uint64_t tat = 0, next = 0, until = 7;
    const uint64_t now = 1700000000000ull;
    /* 3 per 3 s, a burst of 2: two back to back, the third 1.5 s later
     * (interval ceil(3000 / 2) = 1500 ms, tolerance 1500 ms). */
    OK(fieldauth_store_charge_cell(tat, now, 3, 3, 2, &next, &until));
    CHECK(until == 0 && next == now + 1500);
    tat = next;
    OK(fieldauth_store_charge_cell(tat, now, 3, 3, 2, &next, &until));
    CHECK(until == 0 && next == now + 3000);
    tat = next;
    OK(fieldauth_store_charge_cell(tat, now, 3, 3, 2, &next, &until));
    CHECK(until == now + 1500 && next == tat); /* refused: nothing charged */
    OK(fieldauth_store_charge_cell(tat, now + 1500, 3, 3, 2, &next, &until));
    CHECK(until == 0 && next == now + 4500);
    /* A burst above the count is clamped; burst 0 counts as 1. */
    OK(fieldauth_store_charge_cell(0, now, 1, 10, 5, &next, &until));
    CHECK(until == 0 && next == now + 10000);
    OK(fieldauth_store_charge_cell(next, now, 1, 10, 0, &next, &until));
    CHECK(until == now + 10000);
    /* Bad arguments leave the outputs alone. */
    next = until = 42;
    EXPECT(fieldauth_store_charge_cell(0, now, 0, 10, 1, &next, &until),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    EXPECT(fieldauth_store_charge_cell(0, now, 10, 0, 1, &next, &until),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(next == 42 && until == 42);
    EXPECT(fieldauth_store_charge_cell(0, now, 1, 1, 1, NULL, &until), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_store_charge_cell(0, now, 1, 1, 1, &next, NULL), FIELDAUTH_ERR_NULL_POINTER);
    EXPECT(fieldauth_store_charge_cell(0, now, 1, 1, 1, &next, &next),
           FIELDAUTH_ERR_INVALID_ARGUMENT);
    EXPECT(fieldauth_store_charge_cell(0, now, 1, 1, 1, (uint64_t *)(void *)((char *)&next + 1), &until),
           FIELDAUTH_ERR_MISALIGNED);
}

int main(void) {
    test_version_and_sizes();
    test_heap_storage();
    test_status_messages();
    test_presets();
    test_init_errors();
    test_session_argument_checks();
    test_api_key_session();
    test_token_flow();
    test_bad_responses();
    test_failure_handling();
    test_caller_storage();
    test_revoke_tokens();
    test_body_reader();
    test_field_nation_query_and_phrase();
    test_device_flow();
    test_authorization_code();
    test_authorization_callback();
    test_extra_params();
    test_exchange();
    test_worker();
    test_store_charge_cell();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
