/*
 * fieldauth's footprint on a device that uses one preset, through the C API
 * only: what a handheld talking to Autotask does, and nothing else —
 * client_credentials token exchange (canned response), an API request
 * authorized with a Bearer header, API responses with X-RateLimit-* and
 * Retry-After, and the session persisted (snapshot) and restored after a
 * "reboot". ffi/tests/firmware_link.rs measures this image against the
 * baseline (the same startup with an empty main): issue #13's "one preset"
 * row. main.c is the other image, the one that calls every entry point.
 *
 * Deliberately small: its own checks print the failing line and the status
 * number (no fieldauth_status_message(), which a device could leave out), and
 * the exit status under QEMU is the number of failed checks.
 */
#include <stddef.h>
#include <stdint.h>

#include "fieldauth.h"
#include "fw.h"

static _Alignas(FIELDAUTH_SESSION_ALIGN) fieldauth_session session;
static _Alignas(FIELDAUTH_HEAD_ALIGN) fieldauth_head head;

static uint8_t buf[512];       /* token request, then the credential line */
static uint8_t snapshot[1600]; /* the persisted image */
static char text[64];          /* console output */

static uint32_t checks, failures;

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

static void check(int ok, uint32_t source_line, uint32_t status) {
    checks++;
    if (ok) {
        return;
    }
    failures++;
    char *p = put_u32(put_str(text, "FAIL one_preset.c:"), source_line);
    p = put_u32(put_str(p, " status "), status);
    *p++ = '\n';
    *p = '\0';
    fw_print(text);
}

#define CHECK(cond) check((cond) != 0, __LINE__, 0u)
#define CHECK_OK(call)                                 \
    do {                                               \
        fieldauth_status st_ = (call);                 \
        check(st_ == FIELDAUTH_OK, __LINE__, st_);     \
    } while (0)

static size_t cstrlen(const char *s) {
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

/* 1 if buf[..len] is exactly `s`. */
static int equals(const uint8_t *b, size_t len, const char *s) {
    if (len != cstrlen(s)) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (b[i] != (uint8_t)s[i]) {
            return 0;
        }
    }
    return 1;
}

#define S 1000u                /* one second in ms */
#define T0 10000000u           /* monotonic ms at the first exchange */
#define UNIX0 1640995200000ull /* wall clock at T0: 2022-01-01T00:00Z */
#define TOKEN "at-8f14e45fceea167a5a36dedd4bea2543"
#define TARGET "/ATServicesRest/V1.0/Tickets/query"
#define LEN(literal) (sizeof(literal) - 1u)

static const fieldauth_config config = {
    .base_url = FIELDAUTH_STR("https://webservices.autotask.net"),
    .client_id = FIELDAUTH_STR("demo-client"),
    .client_secret = FIELDAUTH_STR("demo-secret"),
};

static const char token_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 94\r\n"
    "\r\n"
    "{\"access_token\":\"" TOKEN "\",\"token_type\":\"Bearer\",\"expires_in\":3600}";

static const char api_ok_response[] =
    "HTTP/1.1 200 OK\r\n"
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

/* Parses a complete response head; returns the offset of its body. */
static size_t parse_head(const char *raw, size_t len) {
    size_t consumed = 0;
    uint32_t complete = 0;
    CHECK_OK(fieldauth_head_init(&head));
    CHECK_OK(fieldauth_head_feed(&head, (const uint8_t *)raw, len, &consumed, &complete));
    CHECK(complete == 1u);
    return consumed;
}

/* Ticks since `t0` (the counter is 24 bits wide). */
static uint32_t since(uint32_t t0) { return (fw_ticks() - t0) & 0x00FFFFFFu; }

/* A loop of exactly 2 x 25,000 = 50,000 instructions (subs + bne): the
 * calibration of the tick count (1,250 ticks under -icount shift=0). */
static uint32_t calibration_ticks(void) {
    uint32_t n = 25000u;
    uint32_t t0 = fw_ticks();
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
    return since(t0);
}

/* Authorizes one API request; returns its kind (credential line in buf). */
static uint32_t authorize(uint64_t now, size_t *len) {
    fieldauth_authorization auth = {0};
    *len = 0;
    CHECK_OK(fieldauth_session_authorize(&session, now, (const uint8_t *)TARGET, LEN(TARGET), buf,
                                         sizeof buf, len, &auth));
    return auth.kind;
}

int main(void) {
    fieldauth_action action;
    fieldauth_event event = {0};
    fieldauth_verdict verdict;
    size_t len = 0;

    CHECK_OK(fieldauth_session_init_preset(&session, FIELDAUTH_PRESET_AUTOTASK, &config, 0x5eedu));
    CHECK_OK(fieldauth_session_set_wall_clock(&session, T0, UNIX0));

    /* Instruction counts (issue #13): one full token exchange, then one
     * authorized API call with its response, in SysTick ticks. */
    fw_ticks_start();
    const uint32_t calibration = calibration_ticks();
    const uint32_t exchange_start = fw_ticks();

    /* The token request, then the response in 16-byte pieces. */
    CHECK_OK(fieldauth_session_poll(&session, T0, &action));
    CHECK(action.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    CHECK_OK(fieldauth_session_write_token_request(&session, T0, buf, sizeof buf, &len));
    CHECK(len > 100u);
    size_t at = parse_head(token_response, LEN(token_response));
    CHECK_OK(fieldauth_session_feed_token_head(&session, T0 + 80u, &head));
    while (at < LEN(token_response)) {
        size_t n = LEN(token_response) - at < 16u ? LEN(token_response) - at : 16u;
        size_t consumed = 0;
        CHECK_OK(fieldauth_session_feed_token_body(&session, T0 + 80u,
                                                   (const uint8_t *)token_response + at, n,
                                                   &consumed, &event));
        at += n;
    }
    CHECK(event.kind == FIELDAUTH_EVENT_TOKEN_ISSUED && event.lifetime_s == 3600u);
    const uint32_t exchange_ticks = since(exchange_start);

    /* An authorized API request and its response. */
    const uint32_t api_start = fw_ticks();
    CHECK(authorize(T0 + S, &len) == FIELDAUTH_AUTHORIZATION_SEND);
    CHECK(equals(buf, len, "Authorization: Bearer " TOKEN "\r\n"));
    parse_head(api_ok_response, LEN(api_ok_response));
    CHECK_OK(fieldauth_session_report_api_response(&session, T0 + 2u * S, &head,
                                                   (const uint8_t *)"{}", 2, &verdict));
    CHECK(verdict.kind == FIELDAUTH_VERDICT_OK);
    const uint32_t api_ticks = since(api_start);

    /* Rate limited: 429 with Retry-After holds requests back for 30 s. */
    CHECK(authorize(T0 + 3u * S, &len) == FIELDAUTH_AUTHORIZATION_SEND);
    parse_head(api_limited_response, LEN(api_limited_response));
    CHECK_OK(fieldauth_session_report_api_response(&session, T0 + 4u * S, &head, NULL, 0,
                                                   &verdict));
    CHECK(verdict.kind == FIELDAUTH_VERDICT_RATE_LIMITED && verdict.until_ms == T0 + 34u * S);

    /* Persist, "reboot" (a fresh session, the clock restarted), restore. */
    CHECK_OK(fieldauth_session_snapshot(&session, T0 + 5u * S, UNIX0 + 5u * S, snapshot,
                                        sizeof snapshot, &len));
    const uint64_t boot = 2u * S;
    CHECK_OK(fieldauth_session_init_preset(&session, FIELDAUTH_PRESET_AUTOTASK, &config, 0x5eed2u));
    CHECK_OK(fieldauth_session_restore(&session, boot, UNIX0 + 20u * S, snapshot, len));
    size_t line_len = 0;
    CHECK(authorize(boot, &line_len) == FIELDAUTH_AUTHORIZATION_WAIT);
    CHECK(authorize(boot + 14u * S, &line_len) == FIELDAUTH_AUTHORIZATION_SEND);
    CHECK(equals(buf, line_len, "Authorization: Bearer " TOKEN "\r\n"));
#ifdef FW_FORCE_FAILURE
    CHECK(0);
#endif

    char *p = put_str(text, "fieldauth one preset: ");
    p = put_str(put_u32(p, checks), " checks, ");
    p = put_str(put_u32(p, failures), " failed; stack peak ");
    p = put_str(put_u32(p, fw_stack_peak()), " bytes\n");
    *p = '\0';
    fw_print(text);
    p = put_str(text, "ticks: calibration ");
    p = put_str(put_u32(p, calibration), ", token exchange ");
    p = put_str(put_u32(p, exchange_ticks), ", api call ");
    p = put_str(put_u32(p, api_ticks), "\n");
    *p = '\0';
    fw_print(text);
    return (int)(failures > 255u ? 255u : failures);
}
