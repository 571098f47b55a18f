/*
 * Porting example (docs/PORTING.md): fieldauth in an RTOS task on a device,
 * against the C ABI only (include/fieldauth.h), over an mbedTLS-style TLS
 * connection. An Autotask client keeps a token usable across reboots and
 * makes one authorized GET whenever the application has work.
 *
 * What the platform provides is declared in the "platform" block below:
 * the mbedTLS 3.x read/write calls, a FreeRTOS-style tick counter and
 * delay, a hardware random number, the wall clock once SNTP has set it,
 * and a flash record for the session's snapshot. Here they are only
 * declared, so that the example builds without mbedTLS or FreeRTOS;
 * ffi/tests/firmware_link.rs compiles it with -Wall -Wextra -Werror
 * -pedantic for the Cortex-M4F and links it with libfieldauth.a and
 * porting_stubs.c (placeholders that satisfy the linker: it is built, not
 * run). In a real port, include the platform's headers instead and delete
 * the block.
 *
 * No C library is used (the firmware build is -nostdlib), so the few string
 * helpers are written out.
 */
#include <stddef.h>
#include <stdint.h>

#include "fieldauth.h"

/* ------------------------------------------------------------------ platform */

/* mbedTLS 3.x (mbedtls/ssl.h): the context is set up, connected (TCP) and
 * has completed mbedtls_ssl_handshake() with certificate verification
 * before fieldauth sees it. */
typedef struct mbedtls_ssl_context mbedtls_ssl_context;
int mbedtls_ssl_read(mbedtls_ssl_context *ssl, unsigned char *buf, size_t len);
int mbedtls_ssl_write(mbedtls_ssl_context *ssl, const unsigned char *buf, size_t len);
#ifndef MBEDTLS_ERR_SSL_WANT_READ
#define MBEDTLS_ERR_SSL_WANT_READ -0x6900
#define MBEDTLS_ERR_SSL_WANT_WRITE -0x6880
#define MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY -0x7880
#endif

/* The application's connection management around mbedTLS: TCP connect to
 * host:port, mbedtls_ssl_setup with the provider's CA, handshake with
 * hostname verification, read timeout (mbedtls_ssl_conf_read_timeout);
 * NULL on failure. close sends close_notify and frees the socket. */
mbedtls_ssl_context *app_tls_connect(const char *host, uint16_t port);
void app_tls_close(mbedtls_ssl_context *ssl);

/* FreeRTOS (task.h): a 32-bit tick counter at configTICK_RATE_HZ, and a
 * delay in ticks. */
typedef uint32_t TickType_t;
TickType_t xTaskGetTickCount(void);
void vTaskDelay(TickType_t ticks);
#define TICK_RATE_HZ 1000u

/* A 64-bit random number from the hardware RNG (or mbedtls_ctr_drbg). */
uint64_t app_random_u64(void);

/* Unix time in ms from the RTC/SNTP, or 0 while it is not known. */
uint64_t app_unix_ms(void);

/* One flash record for the snapshot (an NVS key, a reserved sector):
 * read returns the bytes read (0: none stored); write returns 0 on success. */
size_t app_flash_read(uint8_t *buf, size_t len);
int app_flash_write(const uint8_t *buf, size_t len);

/* The application's work: 1 if an API call is due. */
int app_has_work(void);
/* The API's answer (only when it was 200): called per piece of body. */
void app_consume(const uint8_t *data, size_t len);

/* ------------------------------------------------------------------ configuration */

#define HOST "webservices.autotask.net"
#define PORT 443u
#define API_TARGET "/ATServicesRest/V1.0/Companies/query?search=%7B%7D"
#define LEN(literal) (sizeof(literal) - 1u)

/* From provisioning; the session copies the strings at init. */
static const fieldauth_config config = {
    .base_url = FIELDAUTH_STR("https://" HOST),
    .client_id = FIELDAUTH_STR("YOUR_CLIENT_ID"),
    .client_secret = FIELDAUTH_STR("YOUR_CLIENT_SECRET"),
};

/* ------------------------------------------------------------------ static storage */

/* The library allocates nothing and has no static data: all of fieldauth's
 * RAM is here, where the application can see it. */
static _Alignas(FIELDAUTH_SESSION_ALIGN) fieldauth_session session; /* 4,096 B */
static _Alignas(FIELDAUTH_HEAD_ALIGN) fieldauth_head head;          /* 512 B */
static _Alignas(FIELDAUTH_BODY_ALIGN) fieldauth_body body;          /* 32 B */
static uint8_t io_buf[256];   /* token exchange window, then API response bytes */
static uint8_t line[512];     /* the request line, Host and the credential header */
static uint8_t snapshot[1600]; /* the persisted session (see fieldauth_session_snapshot_len) */

static mbedtls_ssl_context *tls; /* the open connection, or NULL */

/* ------------------------------------------------------------------ clock */

/* Monotonic milliseconds since boot as 64 bits: the 32-bit tick counter
 * wraps (after 49.7 days at 1 kHz); fieldauth needs a clock that does not. */
static uint64_t now_ms(void) {
    static uint32_t last;
    static uint64_t high;
    uint32_t ticks = xTaskGetTickCount();
    if (ticks < last) {
        high += (uint64_t)1 << 32;
    }
    last = ticks;
    return (high + ticks) * 1000u / TICK_RATE_HZ;
}

/* Sleeps until monotonic time `at_ms` (at most a minute at a time, so that
 * new work and the wall clock are looked at). */
static void sleep_until(uint64_t at_ms) {
    uint64_t now = now_ms();
    if (at_ms <= now) {
        return;
    }
    uint64_t ms = at_ms - now;
    if (ms > 60000u) {
        ms = 60000u;
    }
    vTaskDelay((TickType_t)(ms * TICK_RATE_HZ / 1000u));
}

/* ------------------------------------------------------------------ transport callbacks */

/* fieldauth_transport.send over mbedtls_ssl_write: bytes written, 0 for
 * "would block" (never, with a blocking socket), negative on error. */
static ptrdiff_t tls_send(void *ctx, const uint8_t *buf, size_t len) {
    int n = mbedtls_ssl_write((mbedtls_ssl_context *)ctx, buf, len);
    if (n > 0) {
        return n;
    }
    if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) {
        return 0;
    }
    return FIELDAUTH_TRANSPORT_ERROR;
}

/* fieldauth_transport.recv over mbedtls_ssl_read: bytes read, 0 for "would
 * block", FIELDAUTH_TRANSPORT_CLOSED at the end of the stream (close_notify
 * or a TCP close), FIELDAUTH_TRANSPORT_ERROR on an error or a timeout. */
static ptrdiff_t tls_recv(void *ctx, uint8_t *buf, size_t len) {
    int n = mbedtls_ssl_read((mbedtls_ssl_context *)ctx, buf, len);
    if (n > 0) {
        return n;
    }
    if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        return FIELDAUTH_TRANSPORT_CLOSED;
    }
    if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) {
        return 0;
    }
    return FIELDAUTH_TRANSPORT_ERROR;
}

static int connect_if_needed(void) {
    if (tls == NULL) {
        tls = app_tls_connect(HOST, (uint16_t)PORT);
    }
    return tls != NULL;
}

static void disconnect(void) {
    if (tls != NULL) {
        app_tls_close(tls);
        tls = NULL;
    }
}

/* Writes all of buf[..len]; 0 on success. */
static int send_all(const uint8_t *buf, size_t len) {
    while (len > 0u) {
        ptrdiff_t n = tls_send(tls, buf, len);
        if (n < 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ small helpers */

static size_t put(uint8_t *out, size_t at, size_t cap, const char *s, size_t len) {
    for (size_t i = 0; i < len && at < cap; i++) {
        out[at++] = (uint8_t)s[i];
    }
    return at;
}

/* Wipes a buffer that held a credential (volatile: not optimized away). */
static void wipe(uint8_t *buf, size_t len) {
    volatile uint8_t *p = buf;
    while (len-- > 0u) {
        *p++ = 0;
    }
}

/* ------------------------------------------------------------------ persistence */

/* After each new token: the token and rate-limit state to flash, so that a
 * reboot does not cost a token request. The image holds the token: keep it
 * where the device keeps secrets (encrypted flash, a secure element). */
static void save_snapshot(uint64_t now) {
    size_t len = 0;
    uint64_t unix_ms = app_unix_ms();
    if (unix_ms == 0u) {
        return; /* without the wall clock a restore could not age the token */
    }
    if (fieldauth_session_snapshot(&session, now, unix_ms, snapshot, sizeof snapshot, &len) ==
        FIELDAUTH_OK) {
        (void)app_flash_write(snapshot, len);
    }
    wipe(snapshot, sizeof snapshot);
}

/* At boot: the session from flash if it is still good (returns 1). Any
 * error (FIELDAUTH_ERR_SNAPSHOT_*: corrupt, another configuration, expired)
 * leaves the session as it was: a fresh login follows. */
static int restore_snapshot(uint64_t now) {
    uint64_t unix_ms = app_unix_ms();
    size_t len = app_flash_read(snapshot, sizeof snapshot);
    int restored = len > 0u && unix_ms != 0u &&
                   fieldauth_session_restore(&session, now, unix_ms, snapshot, len) == FIELDAUTH_OK;
    wipe(snapshot, sizeof snapshot);
    return restored;
}

/* ------------------------------------------------------------------ one API call */

/* One authorized GET of API_TARGET on the open connection. Returns the
 * verdict kind (FIELDAUTH_VERDICT_*), 0 if nothing was sent, -1 on a
 * transport or protocol error (the caller reconnects). */
static int api_get(uint64_t now, uint64_t *until) {
    fieldauth_authorization auth = {0};
    size_t cred_len = 0;
    /* The credential header line goes at the end of `line`; the request
     * line and Host go in front of it. */
    const size_t front = 128u;
    fieldauth_status st =
        fieldauth_session_authorize(&session, now, (const uint8_t *)API_TARGET, LEN(API_TARGET),
                                    line + front, sizeof line - front, &cred_len, &auth);
    if (st != FIELDAUTH_OK || auth.kind != FIELDAUTH_AUTHORIZATION_SEND) {
        *until = auth.until_ms; /* WAIT: a rate limit; NO_CREDENTIAL: poll */
        return 0;
    }
    /* Autotask takes a header credential (FIELDAUTH_CREDENTIAL_HEADER); a
     * query credential would replace API_TARGET by line[front..]. */
    size_t n = 0;
    n = put(line, n, front, "GET " API_TARGET " HTTP/1.1\r\nHost: " HOST "\r\n",
            LEN("GET " API_TARGET " HTTP/1.1\r\nHost: " HOST "\r\n"));
    int rc = send_all(line, n) == 0 && send_all(line + front, cred_len) == 0 &&
                     send_all((const uint8_t *)"\r\n", 2u) == 0
                 ? 0
                 : -1;
    wipe(line, sizeof line);
    if (rc != 0) {
        return -1;
    }

    /* The response head, then its body through the same buffer. */
    if (fieldauth_head_init(&head) != FIELDAUTH_OK) {
        return -1;
    }
    uint32_t complete = 0;
    size_t have = 0, at = 0;
    while (!complete) {
        ptrdiff_t got = tls_recv(tls, io_buf, sizeof io_buf);
        if (got <= 0) {
            return -1; /* closed, error or timeout before the head ended */
        }
        size_t used = 0;
        if (fieldauth_head_feed(&head, io_buf, (size_t)got, &used, &complete) != FIELDAUTH_OK) {
            return -1;
        }
        have = (size_t)got;
        at = used;
    }
    fieldauth_verdict verdict = {0};
    st = fieldauth_session_report_api_response_for(&session, now_ms(), &head, io_buf + at,
                                                   have - at, auth.token_id, &verdict);
    if (st != FIELDAUTH_OK) {
        return -1;
    }
    fieldauth_response_info info = {0};
    if (fieldauth_head_get_info(&head, &info) != FIELDAUTH_OK ||
        fieldauth_body_init(&body, &head) != FIELDAUTH_OK) {
        return -1;
    }
    /* Read the whole body, so that the connection can carry the next request. */
    for (;;) {
        while (at < have) {
            fieldauth_body_progress p;
            if (fieldauth_body_read(&body, io_buf + at, have - at, &p) != FIELDAUTH_OK) {
                return -1;
            }
            if (p.data_len > 0u && info.status == 200u) {
                app_consume(io_buf + at + p.data_offset, p.data_len);
            }
            at += p.consumed;
            if (p.done) {
                *until = verdict.until_ms;
                return (int)verdict.kind;
            }
            if (p.consumed == 0u) {
                return -1;
            }
        }
        ptrdiff_t got = tls_recv(tls, io_buf, sizeof io_buf);
        if (got == FIELDAUTH_TRANSPORT_CLOSED) {
            /* A close-delimited body ends here. */
            *until = verdict.until_ms;
            disconnect();
            return fieldauth_body_finish(&body) == FIELDAUTH_OK ? (int)verdict.kind : -1;
        }
        if (got <= 0) {
            return -1;
        }
        have = (size_t)got;
        at = 0;
    }
}

/* ------------------------------------------------------------------ token exchange */

/* Runs (or resumes) the token exchange poll asked for, on the connection. */
static void token_exchange(uint64_t now) {
    fieldauth_event event = {0};
    if (!connect_if_needed()) {
        /* No network or no TLS: the session schedules the retry. */
        if (fieldauth_session_report_transport_error(&session, now, &event) == FIELDAUTH_OK) {
            sleep_until(event.at_ms); /* FIELDAUTH_EVENT_RETRYING: when */
        }
        return;
    }
    const fieldauth_transport transport = {.ctx = tls, .send = tls_send, .recv = tls_recv};
    fieldauth_status st =
        fieldauth_session_exchange(&session, &head, now, &transport, io_buf, sizeof io_buf, &event);
    if (st == FIELDAUTH_OK && event.kind == FIELDAUTH_EVENT_TOKEN_ISSUED) {
        save_snapshot(now_ms());
    } else if (st == FIELDAUTH_ERR_WOULD_BLOCK) {
        sleep_until(now + 10u); /* a real port waits for the socket instead */
    } else if (st != FIELDAUTH_OK) {
        /* The session has counted the failure and scheduled a retry (poll
         * says when); the next try starts on a new connection. */
        disconnect();
    }
}

/* ------------------------------------------------------------------ the task */

/* The task's entry point (xTaskCreate(fieldauth_task, "auth", 1024, NULL,
 * ...): 1,024 words is 4 KB of stack; fieldauth's deepest call needs about
 * 1.5 KB, mbedTLS's handshake several KB more). */
void fieldauth_task(void *arg) {
    (void)arg;
    uint64_t now = now_ms();
    /* The seed makes each device's retry jitter different: fleets that lose
     * their network together must not come back in step. */
    if (fieldauth_session_init_preset(&session, FIELDAUTH_PRESET_AUTOTASK, &config,
                                      app_random_u64()) != FIELDAUTH_OK) {
        return; /* a configuration error: fieldauth_status_message() says which */
    }
    uint64_t unix_ms = app_unix_ms();
    if (unix_ms != 0u && fieldauth_session_set_wall_clock(&session, now, unix_ms) != FIELDAUTH_OK) {
        return;
    }
    if (restore_snapshot(now)) {
        /* The token from before the reboot: poll says READY, no request. */
    }

    int wall_clock_set = unix_ms != 0u;
    for (;;) {
        now = now_ms();
        if (!wall_clock_set && (unix_ms = app_unix_ms()) != 0u) {
            /* SNTP came up: epoch-based rate-limit resets become usable. */
            wall_clock_set = fieldauth_session_set_wall_clock(&session, now, unix_ms) ==
                             FIELDAUTH_OK;
        }
        fieldauth_action action;
        if (fieldauth_session_poll(&session, now, &action) != FIELDAUTH_OK) {
            return;
        }
        switch (action.kind) {
        case FIELDAUTH_ACTION_SEND_TOKEN_REQUEST:
        case FIELDAUTH_ACTION_AWAIT_RESPONSE:
            /* AWAIT_RESPONSE is only seen with a non-blocking transport (the
             * exchange returned FIELDAUTH_ERR_WOULD_BLOCK): the same call
             * resumes it. */
            token_exchange(now);
            break;
        case FIELDAUTH_ACTION_READY: {
            if (!app_has_work()) {
                sleep_until(action.at_ms < now + 1000u ? action.at_ms : now + 1000u);
                break;
            }
            if (!connect_if_needed()) {
                sleep_until(now + 5000u);
                break;
            }
            uint64_t until = 0;
            int verdict = api_get(now, &until);
            if (verdict < 0) {
                disconnect();
            } else if (verdict == FIELDAUTH_VERDICT_RATE_LIMITED || verdict == 0) {
                sleep_until(until != 0u ? until : now + 1000u);
            }
            /* RETRY_WITH_NEW_TOKEN: the next poll fetches one, and the work
             * is still pending; OK: done. UNAUTHORIZED / FORBIDDEN: the
             * application's to report. */
            break;
        }
        case FIELDAUTH_ACTION_WAIT:
            sleep_until(action.at_ms);
            break;
        default:
            /* FAILED: a final answer (wrong credentials, revoked).
             * fieldauth_session_failure_description() has the server's
             * words; wait for new provisioning, then restart. */
            disconnect();
            sleep_until(now + 3600u * 1000u);
            if (fieldauth_session_restart(&session) != FIELDAUTH_OK) {
                return;
            }
            break;
        }
    }
}
