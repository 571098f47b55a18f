/*
 * oidc_e2e: fieldauth's C ABI end to end against an independent OAuth 2.0
 * server, panva's oidc-provider (tests/oidc/server.mjs, 5 s access tokens),
 * over real sockets to 127.0.0.1 (issue #14). Token requests go through
 * fieldauth_session_exchange() with send/recv transport callbacks; API
 * requests to the server's protected resource GET /api/me are written here
 * with the credential from fieldauth_session_authorize(), and their answers
 * reported with fieldauth_session_report_api_response(). The device flow runs
 * to completion: this program is also the user's browser (oidc-provider's
 * /device pages, login and consent, cookies and relative Locations).
 *
 *   oidc_e2e PORT
 *
 * Run by ffi/tests/oidc_c.rs, which starts the server. Prints
 * "N passed, N failed" and exits non-zero on any failure. Takes about 8 s
 * (the proactive-refresh check runs in real time across three tokens).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

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

/* Two unsigned numbers that must be equal; prints both otherwise. */
#define CHECK_EQ(got, want)                                                    \
    do {                                                                       \
        unsigned long long g_ = (unsigned long long)(got);                     \
        unsigned long long w_ = (unsigned long long)(want);                    \
        if (g_ == w_) {                                                        \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: %s is %llu, expected %s = %llu\n",         \
                    __FILE__, __LINE__, #got, g_, #want, w_);                  \
        }                                                                      \
    } while (0)

/* A call that must return FIELDAUTH_OK. */
#define OK(call)                                                               \
    do {                                                                       \
        fieldauth_status st_ = (call);                                         \
        if (st_ == FIELDAUTH_OK) {                                             \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: %s\n  returned %u (%s)\n", __FILE__,      \
                    __LINE__, #call, (unsigned)st_,                            \
                    fieldauth_status_message(st_));                            \
        }                                                                      \
    } while (0)

#define BASIC_ID "basic client:1"
#define BASIC_SECRET "p@ss:w/rd+&=%"
#define POST_ID "post-client"
#define POST_SECRET "post-secret"
#define RESOURCE "urn:fieldauth:api"

static int port;
static char base[64];

static fieldauth_session session;
static fieldauth_head head;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static fieldauth_str str(const char *s) {
    fieldauth_str r;
    r.ptr = (const uint8_t *)s;
    r.len = strlen(s);
    return r;
}

/* A TCP connection to the server with a 10 s receive timeout, or -1. */
static int connect_local(void) {
    struct sockaddr_in addr;
    struct timeval tv;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The transport callbacks over a blocking socket. */
static ptrdiff_t sock_send(void *ctx, const uint8_t *buf, size_t len) {
    int fd = *(int *)ctx;
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return (ptrdiff_t)n;
        if (errno == EINTR) continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : FIELDAUTH_TRANSPORT_ERROR;
    }
}

static ptrdiff_t sock_recv(void *ctx, uint8_t *buf, size_t len) {
    int fd = *(int *)ctx;
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n > 0) return (ptrdiff_t)n;
        if (n == 0) return FIELDAUTH_TRANSPORT_CLOSED;
        if (errno == EINTR) continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : FIELDAUTH_TRANSPORT_ERROR;
    }
}

/* Sends `req` on a new connection (which it asks to close) and reads the
 * whole response into `resp` (NUL-terminated): its length, or -1. */
static long http(const char *req, size_t req_len, char *resp, size_t cap) {
    size_t got = 0;
    int fd = connect_local();
    if (fd < 0) return -1;
    while (req_len > 0) {
        ptrdiff_t n = sock_send(&fd, (const uint8_t *)req, req_len);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        req += n;
        req_len -= (size_t)n;
    }
    for (;;) {
        ptrdiff_t n;
        if (got + 1 >= cap) break;
        n = sock_recv(&fd, (uint8_t *)resp + got, cap - 1 - got);
        if (n == FIELDAUTH_TRANSPORT_CLOSED) break;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    resp[got] = '\0';
    return (long)got;
}

/* The status of a raw HTTP response (0 if none). */
static unsigned status_of(const char *resp) {
    return strncmp(resp, "HTTP/1.1 ", 9) == 0 ? (unsigned)atoi(resp + 9) : 0;
}

/* GET /api/me with `token`, not through the session: the status. */
static unsigned raw_get_me(const char *token) {
    char req[512], resp[4096];
    int n = snprintf(req, sizeof req,
                     "GET /api/me HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                     "Connection: close\r\n\r\n",
                     port, token);
    if (n <= 0 || (size_t)n >= sizeof req || http(req, (size_t)n, resp, sizeof resp) < 0) return 0;
    return status_of(resp);
}

/* Revokes `token` at the RFC 7009 endpoint as the post client, behind the
 * session's back: the status. */
static unsigned revoke_behind_the_back(const char *token) {
    char form[256], req[1024], resp[4096];
    int f = snprintf(form, sizeof form, "token=%s&client_id=" POST_ID "&client_secret=" POST_SECRET,
                     token);
    int n = snprintf(req, sizeof req,
                     "POST /token/revocation HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s",
                     port, f, form);
    if (f <= 0 || n <= 0 || (size_t)n >= sizeof req || http(req, (size_t)n, resp, sizeof resp) < 0)
        return 0;
    return status_of(resp);
}

/* A session for oidc-provider's routes (a custom profile), client
 * credentials. */
static fieldauth_status init_session(uint32_t client_auth, const char *id, const char *secret,
                                     const char *scope) {
    fieldauth_profile p;
    fieldauth_config c;
    fieldauth_status st = fieldauth_profile_preset(FIELDAUTH_PRESET_CUSTOM, &p);
    if (st != FIELDAUTH_OK) return st;
    p.name = str("oidc-provider");
    p.mode = FIELDAUTH_MODE_CLIENT_CREDENTIALS;
    p.client_auth = client_auth;
    p.token_path = str("/token");
    p.authorize_path = str("/auth");
    p.device_path = str("/device/auth");
    p.revoke_path = str("/token/revocation");
    memset(&c, 0, sizeof c);
    c.base_url = str(base);
    c.client_id = str(id);
    c.client_secret = str(secret);
    c.scope = str(scope);
    return fieldauth_session_init(&session, &p, &c, now_ms() ^ 0x0dc5eed5ull);
}

/* Polls (a token request must be due) and runs the exchange on a new
 * connection through a 128-byte buffer: the status; the event in `ev`. */
static fieldauth_status exchange(uint64_t now, fieldauth_event *ev) {
    uint8_t buf[128];
    fieldauth_transport t;
    fieldauth_action a;
    fieldauth_status st;
    int fd;
    memset(ev, 0, sizeof *ev);
    st = fieldauth_session_poll(&session, now, &a);
    if (st != FIELDAUTH_OK) return st;
    if (a.kind != FIELDAUTH_ACTION_SEND_TOKEN_REQUEST) {
        fprintf(stderr, "no token request due: action %u\n", (unsigned)a.kind);
        return FIELDAUTH_ERR_WRONG_STATE;
    }
    fd = connect_local();
    if (fd < 0) return FIELDAUTH_ERR_TRANSPORT;
    t.ctx = &fd;
    t.send = sock_send;
    t.recv = sock_recv;
    st = fieldauth_session_exchange(&session, &head, now, &t, buf, sizeof buf, ev);
    close(fd);
    return st;
}

/* The access token the session hands out now (from its Authorization header
 * line), NUL-terminated in `out`; 0 if none. */
static int current_token(uint64_t now, char *out, size_t cap) {
    uint8_t cred[1024];
    size_t len = 0;
    fieldauth_authorization au;
    static const char prefix[] = "Authorization: Bearer ";
    out[0] = '\0';
    if (fieldauth_session_authorize(&session, now, NULL, 0, cred, sizeof cred, &len, &au) !=
            FIELDAUTH_OK ||
        au.kind != FIELDAUTH_AUTHORIZATION_SEND || au.credential != FIELDAUTH_CREDENTIAL_HEADER ||
        len < sizeof prefix + 2 || memcmp(cred, prefix, sizeof prefix - 1) != 0 ||
        len - (sizeof prefix - 1) - 2 >= cap)
        return 0;
    len -= (sizeof prefix - 1) + 2; /* the prefix and "\r\n" */
    memcpy(out, cred + sizeof prefix - 1, len);
    out[len] = '\0';
    memset(cred, 0, sizeof cred);
    return 1;
}

/* GET /api/me through the session: authorize, send, read the answer,
 * report it. Returns the HTTP status (0: not sent or no answer); the verdict
 * in `v`, the body (NUL-terminated) in `body_out`. */
static unsigned api_me(uint64_t now, fieldauth_verdict *v, char *body_out, size_t cap) {
    uint8_t cred[1024];
    char req[2048], resp[4096];
    size_t len = 0, used = 0, body_len;
    uint32_t complete = 0;
    fieldauth_authorization au;
    fieldauth_response_info info;
    long got;
    int n;
    memset(v, 0, sizeof *v);
    body_out[0] = '\0';
    if (fieldauth_session_authorize(&session, now, NULL, 0, cred, sizeof cred, &len, &au) !=
            FIELDAUTH_OK ||
        au.kind != FIELDAUTH_AUTHORIZATION_SEND || au.credential != FIELDAUTH_CREDENTIAL_HEADER) {
        fprintf(stderr, "api_me: not authorized (kind %u)\n", (unsigned)au.kind);
        return 0;
    }
    n = snprintf(req, sizeof req,
                 "GET /api/me HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n%.*s"
                 "Connection: close\r\n\r\n",
                 port, (int)len, (const char *)cred);
    memset(cred, 0, sizeof cred);
    if (n <= 0 || (size_t)n >= sizeof req) return 0;
    got = http(req, (size_t)n, resp, sizeof resp);
    memset(req, 0, sizeof req);
    if (got <= 0) return 0;
    if (fieldauth_head_init(&head) != FIELDAUTH_OK ||
        fieldauth_head_feed(&head, (const uint8_t *)resp, (size_t)got, &used, &complete) !=
            FIELDAUTH_OK ||
        !complete || fieldauth_head_get_info(&head, &info) != FIELDAUTH_OK)
        return 0;
    body_len = (size_t)got - used;
    if (body_len >= cap) body_len = cap - 1;
    memcpy(body_out, resp + used, body_len);
    body_out[body_len] = '\0';
    if (fieldauth_session_report_api_response(&session, now, &head, (const uint8_t *)body_out,
                                              body_len, v) != FIELDAUTH_OK)
        return 0;
    return info.status;
}

static int contains(const char *haystack, const char *needle) {
    return strstr(haystack, needle) != NULL;
}

/* The granted scope, NUL-terminated in `out` ("" if none or on error). */
static void granted(char *out, size_t cap) {
    size_t len = 0;
    if (fieldauth_session_granted_scope(&session, (uint8_t *)out, cap, &len) != FIELDAUTH_OK)
        out[0] = '\0';
}

static void check_issued(const fieldauth_event *ev) {
    CHECK_EQ(ev->kind, FIELDAUTH_EVENT_TOKEN_ISSUED);
    CHECK_EQ(ev->request_kind, FIELDAUTH_REQUEST_FETCH);
    CHECK_EQ(ev->lifetime_s, 5);
    CHECK_EQ(ev->refreshable, 0);
}

/* client_secret_basic with an id and a secret that must be form-urlencoded
 * before base64 (RFC 6749 §2.3.1). */
static void basic_with_special_character_secret(void) {
    fieldauth_event ev;
    fieldauth_verdict v;
    fieldauth_session_info info;
    char body[1024], scope[128];
    OK(init_session(FIELDAUTH_CLIENT_AUTH_BASIC, BASIC_ID, BASIC_SECRET, "api:read"));
    OK(exchange(now_ms(), &ev));
    check_issued(&ev);
    OK(fieldauth_session_get_info(&session, &info));
    CHECK_EQ(info.last_http_status, 200);
    CHECK_EQ(info.usable, 1);
    granted(scope, sizeof scope);
    CHECK(strcmp(scope, "api:read") == 0);
    CHECK_EQ(api_me(now_ms(), &v, body, sizeof body), 200);
    CHECK_EQ(v.kind, FIELDAUTH_VERDICT_OK);
    CHECK(contains(body, "\"client_id\":\"" BASIC_ID "\""));
    CHECK(contains(body, "\"scope\":\"api:read\""));
    CHECK(contains(body, "\"aud\":\"" RESOURCE "\""));
    OK(fieldauth_session_clear(&session));
}

/* client_secret_post: id and secret in the form body, two scopes. */
static void post_client(void) {
    fieldauth_event ev;
    fieldauth_verdict v;
    char body[1024], scope[128];
    OK(init_session(FIELDAUTH_CLIENT_AUTH_BODY, POST_ID, POST_SECRET, "api:read api:write"));
    OK(exchange(now_ms(), &ev));
    check_issued(&ev);
    granted(scope, sizeof scope);
    CHECK(strcmp(scope, "api:read api:write") == 0);
    CHECK_EQ(api_me(now_ms(), &v, body, sizeof body), 200);
    CHECK_EQ(v.kind, FIELDAUTH_VERDICT_OK);
    CHECK(contains(body, "\"client_id\":\"" POST_ID "\""));
    CHECK(contains(body, "\"scope\":\"api:read api:write\""));
    OK(fieldauth_session_clear(&session));
}

/* A wrong secret (Basic and post): the typed final failure INVALID_CLIENT
 * with the server's description; no retry. */
static void wrong_secret(void) {
    int i;
    for (i = 0; i < 2; i++) {
        fieldauth_event ev;
        fieldauth_action a;
        fieldauth_session_info info;
        uint8_t desc[128];
        size_t len = 0;
        if (i == 0)
            OK(init_session(FIELDAUTH_CLIENT_AUTH_BASIC, BASIC_ID, "p@ss:w/rd+&=", ""));
        else
            OK(init_session(FIELDAUTH_CLIENT_AUTH_BODY, POST_ID, "not-the-secret", ""));
        OK(exchange(now_ms(), &ev));
        CHECK_EQ(ev.kind, FIELDAUTH_EVENT_FAILED);
        CHECK_EQ(ev.failure, FIELDAUTH_FAILURE_INVALID_CLIENT);
        OK(fieldauth_session_poll(&session, now_ms(), &a));
        CHECK_EQ(a.kind, FIELDAUTH_ACTION_FAILED);
        CHECK_EQ(a.failure, FIELDAUTH_FAILURE_INVALID_CLIENT);
        OK(fieldauth_session_get_info(&session, &info));
        CHECK_EQ(info.failure, FIELDAUTH_FAILURE_INVALID_CLIENT);
        CHECK_EQ(info.last_http_status, 401);
        CHECK_EQ(info.last_content_json, 1);
        CHECK_EQ(info.usable, 0);
        OK(fieldauth_session_failure_description(&session, desc, sizeof desc, &len));
        CHECK(strcmp((const char *)desc, "client authentication failed") == 0);
        OK(fieldauth_session_clear(&session));
    }
}

/* 5 s tokens for about 7 s of API calls every 200 ms: each next token is
 * fetched early (at least 2 s before expiry), the old one still works at
 * the server while it is replaced, and no call lacks a credential. */
static void proactive_refresh(void) {
    static char tokens[8][128];
    int count = 0, calls = 0, refused = 0, i;
    uint64_t end;
    OK(init_session(FIELDAUTH_CLIENT_AUTH_BASIC, BASIC_ID, BASIC_SECRET, "api:read"));
    end = now_ms() + 7000;
    while (now_ms() < end) {
        fieldauth_action a;
        fieldauth_verdict v;
        char body[1024];
        uint64_t now = now_ms();
        OK(fieldauth_session_poll(&session, now, &a));
        if (a.kind == FIELDAUTH_ACTION_SEND_TOKEN_REQUEST) {
            fieldauth_event ev;
            fieldauth_session_info info;
            CHECK_EQ(a.request_kind, FIELDAUTH_REQUEST_FETCH);
            if (count > 0) {
                /* Early: the current token is still usable, here and at
                 * the server, while its replacement is fetched. */
                char token[128];
                OK(fieldauth_session_get_info(&session, &info));
                CHECK_EQ(info.usable, 1);
                CHECK(current_token(now, token, sizeof token));
                CHECK_EQ(raw_get_me(token), 200);
            }
            OK(exchange(now, &ev));
            check_issued(&ev);
            OK(fieldauth_session_get_info(&session, &info));
            CHECK(info.expires_at_ms - info.refresh_at_ms >= 2000);
            if (count < 8) {
                CHECK(current_token(now_ms(), tokens[count], sizeof tokens[count]));
                for (i = 0; i < count; i++) CHECK(strcmp(tokens[i], tokens[count]) != 0);
                count++;
            }
        } else {
            CHECK_EQ(a.kind, FIELDAUTH_ACTION_READY);
        }
        if (api_me(now_ms(), &v, body, sizeof body) != 200 || v.kind != FIELDAUTH_VERDICT_OK)
            refused++;
        calls++;
        sleep_ms(200);
    }
    CHECK_EQ(refused, 0);
    CHECK(count >= 3);
    CHECK(calls >= 20);
    printf("proactive refresh: %d tokens, %d calls\n", count, calls);
    OK(fieldauth_session_clear(&session));
}

/* The server revokes the token behind the session's back: the API's 401
 * (invalid_token) makes the session drop it and fetch a new one. */
static void api_401_recovery(void) {
    fieldauth_event ev;
    fieldauth_verdict v;
    fieldauth_action a;
    fieldauth_session_info info;
    char body[1024], old[128], fresh[128];
    OK(init_session(FIELDAUTH_CLIENT_AUTH_BODY, POST_ID, POST_SECRET, "api:read"));
    OK(exchange(now_ms(), &ev));
    check_issued(&ev);
    CHECK_EQ(api_me(now_ms(), &v, body, sizeof body), 200);
    CHECK(current_token(now_ms(), old, sizeof old));
    CHECK_EQ(revoke_behind_the_back(old), 200);

    CHECK_EQ(api_me(now_ms(), &v, body, sizeof body), 401);
    CHECK_EQ(v.kind, FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN);
    CHECK(contains(body, "invalid_token"));
    OK(fieldauth_session_get_info(&session, &info));
    CHECK_EQ(info.usable, 0);
    OK(fieldauth_session_poll(&session, now_ms(), &a));
    CHECK_EQ(a.kind, FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    CHECK_EQ(a.request_kind, FIELDAUTH_REQUEST_FETCH);
    OK(exchange(now_ms(), &ev));
    check_issued(&ev);
    CHECK(current_token(now_ms(), fresh, sizeof fresh));
    CHECK(strcmp(old, fresh) != 0);
    CHECK_EQ(api_me(now_ms(), &v, body, sizeof body), 200);
    CHECK_EQ(v.kind, FIELDAUTH_VERDICT_OK);
    OK(fieldauth_session_clear(&session));
}

/* Revocation (RFC 7009; oidc-provider answers 200 with an empty text/plain
 * body): of the access token alone (the session goes on and fetches a new
 * one), then of the grant (the session ends: REVOKED). Each revoked token is
 * dead at the server. */
static void revocation(void) {
    fieldauth_event ev;
    fieldauth_verdict v;
    fieldauth_action a;
    fieldauth_session_info info;
    char body[1024], first[128], second[128];
    OK(init_session(FIELDAUTH_CLIENT_AUTH_BODY, POST_ID, POST_SECRET, "api:read"));
    OK(exchange(now_ms(), &ev));
    check_issued(&ev);
    CHECK(current_token(now_ms(), first, sizeof first));

    OK(fieldauth_session_revoke_tokens(&session, FIELDAUTH_REVOCATION_ACCESS));
    OK(fieldauth_session_poll(&session, now_ms(), &a));
    CHECK_EQ(a.kind, FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    CHECK_EQ(a.request_kind, FIELDAUTH_REQUEST_REVOKE);
    OK(exchange(now_ms(), &ev));
    CHECK_EQ(ev.kind, FIELDAUTH_EVENT_REVOKED);
    OK(fieldauth_session_get_info(&session, &info));
    CHECK_EQ(info.last_http_status, 200);
    CHECK_EQ(info.last_content_json, 0);
    CHECK_EQ(info.failure, FIELDAUTH_FAILURE_NONE);
    CHECK_EQ(info.usable, 0);
    CHECK_EQ(raw_get_me(first), 401);
    OK(fieldauth_session_poll(&session, now_ms(), &a));
    CHECK_EQ(a.kind, FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    CHECK_EQ(a.request_kind, FIELDAUTH_REQUEST_FETCH);
    OK(exchange(now_ms(), &ev));
    check_issued(&ev);
    CHECK(current_token(now_ms(), second, sizeof second));
    CHECK(strcmp(first, second) != 0);
    CHECK_EQ(api_me(now_ms(), &v, body, sizeof body), 200);

    OK(fieldauth_session_revoke_tokens(&session, FIELDAUTH_REVOCATION_GRANT));
    OK(fieldauth_session_poll(&session, now_ms(), &a));
    CHECK_EQ(a.kind, FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    CHECK_EQ(a.request_kind, FIELDAUTH_REQUEST_REVOKE);
    OK(exchange(now_ms(), &ev));
    CHECK_EQ(ev.kind, FIELDAUTH_EVENT_REVOKED);
    OK(fieldauth_session_get_info(&session, &info));
    CHECK_EQ(info.last_http_status, 200);
    CHECK_EQ(info.last_content_json, 0);
    CHECK_EQ(info.usable, 0);
    OK(fieldauth_session_poll(&session, now_ms(), &a));
    CHECK_EQ(a.kind, FIELDAUTH_ACTION_FAILED);
    CHECK_EQ(a.failure, FIELDAUTH_FAILURE_REVOKED);
    CHECK(!current_token(now_ms(), second + 64, 64));
    CHECK_EQ(raw_get_me(second), 401);
    OK(fieldauth_session_clear(&session));
}

/* ------------------------------------------------------------------ the device flow */

/* A transport that keeps a copy of what went each way (NUL-terminated). */
struct recorded {
    int fd;
    size_t sent_len, got_len;
    char sent[4096];
    char got[8192];
};

static ptrdiff_t rec_send(void *ctx, const uint8_t *buf, size_t len) {
    struct recorded *r = ctx;
    ptrdiff_t n = sock_send(&r->fd, buf, len);
    if (n > 0 && r->sent_len + (size_t)n < sizeof r->sent) {
        memcpy(r->sent + r->sent_len, buf, (size_t)n);
        r->sent_len += (size_t)n;
        r->sent[r->sent_len] = '\0';
    }
    return n;
}

static ptrdiff_t rec_recv(void *ctx, uint8_t *buf, size_t len) {
    struct recorded *r = ctx;
    ptrdiff_t n = sock_recv(&r->fd, buf, len);
    if (n > 0 && r->got_len + (size_t)n < sizeof r->got) {
        memcpy(r->got + r->got_len, buf, (size_t)n);
        r->got_len += (size_t)n;
        r->got[r->got_len] = '\0';
    }
    return n;
}

/* Polls at `now` (a token request of `kind` must be due) and runs the
 * exchange on a new, recorded connection. */
static fieldauth_status recorded_exchange(uint64_t now, uint32_t kind, fieldauth_event *ev,
                                          struct recorded *r) {
    uint8_t buf[128];
    fieldauth_transport t;
    fieldauth_action a;
    fieldauth_status st;
    memset(ev, 0, sizeof *ev);
    memset(r, 0, sizeof *r);
    st = fieldauth_session_poll(&session, now, &a);
    if (st != FIELDAUTH_OK) return st;
    if (a.kind != FIELDAUTH_ACTION_SEND_TOKEN_REQUEST || a.request_kind != kind) {
        fprintf(stderr, "not the token request expected (%u): action %u, request %u\n",
                (unsigned)kind, (unsigned)a.kind, (unsigned)a.request_kind);
        return FIELDAUTH_ERR_WRONG_STATE;
    }
    r->fd = connect_local();
    if (r->fd < 0) return FIELDAUTH_ERR_TRANSPORT;
    t.ctx = r;
    t.send = rec_send;
    t.recv = rec_recv;
    st = fieldauth_session_exchange(&session, &head, now, &t, buf, sizeof buf, ev);
    close(r->fd);
    return st;
}

/* The percent-decoded value of form field `name` in the body of the HTTP
 * request `req`, NUL-terminated in `out`; 0 if absent. */
static int form_field(const char *req, const char *name, char *out, size_t cap) {
    const char *p = strstr(req, "\r\n\r\n");
    size_t nlen = strlen(name), o = 0;
    if (p == NULL) return 0;
    p += 4;
    for (;;) {
        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') break;
        p = strchr(p, '&');
        if (p == NULL) return 0;
        p++;
    }
    for (p += nlen + 1; *p && *p != '&' && o + 1 < cap; p++) {
        unsigned hex;
        if (*p == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &hex) == 1) {
            out[o++] = (char)hex;
            p += 2;
        } else {
            out[o++] = *p == '+' ? ' ' : *p;
        }
    }
    out[o] = '\0';
    return 1;
}

/* The JSON string member `name` of the body in `text` (no escapes expected),
 * NUL-terminated in `out`; 0 if absent. */
static int json_string(const char *text, const char *name, char *out, size_t cap) {
    char key[64];
    const char *p, *end;
    snprintf(key, sizeof key, "\"%s\":\"", name);
    p = strstr(text, key);
    if (p == NULL) return 0;
    p += strlen(key);
    end = strchr(p, '"');
    if (end == NULL || (size_t)(end - p) >= cap) return 0;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 1;
}

/* The value of <input name="NAME" value="..."> in an HTML page; 0 if none. */
static int html_field(const char *html, const char *name, char *out, size_t cap) {
    char key[64];
    const char *p, *end;
    snprintf(key, sizeof key, "name=\"%s\" value=\"", name);
    p = strstr(html, key);
    if (p == NULL) return 0;
    p += strlen(key);
    end = strchr(p, '"');
    if (end == NULL || (size_t)(end - p) >= cap) return 0;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 1;
}

/* A browser for one user: its cookies, kept by name (the steps only go
 * forward, so a later cookie replacing an earlier one of another path is
 * what a browser would send too). */
static struct {
    char name[16][64];
    char value[16][512];
    int count;
    int relative; /* relative Location headers seen */
} jar;

static void jar_set(const char *line) {
    /* `line` is the value of a Set-Cookie header up to its end of line. */
    const char *eq = strchr(line, '='), *semi = strpbrk(line, ";\r\n");
    size_t nlen, vlen;
    int i, cleared;
    if (eq == NULL || (semi != NULL && semi < eq)) return;
    if (semi == NULL) semi = line + strlen(line);
    nlen = (size_t)(eq - line);
    vlen = (size_t)(semi - eq - 1);
    if (nlen >= 64 || vlen >= 512) return;
    for (i = 0; i < jar.count; i++) {
        if (strlen(jar.name[i]) == nlen && memcmp(jar.name[i], line, nlen) == 0) {
            jar.count--;
            memmove(jar.name[i], jar.name[jar.count], 64);
            memmove(jar.value[i], jar.value[jar.count], 512);
            break;
        }
    }
    {
        const char *eol = strpbrk(line, "\r\n");
        size_t all = eol ? (size_t)(eol - line) : strlen(line);
        cleared = vlen == 0;
        for (i = 0; (size_t)i + 4 <= all; i++)
            if (memcmp(line + i, "1970", 4) == 0) cleared = 1;
    }
    if (cleared || jar.count == 16) return;
    memcpy(jar.name[jar.count], line, nlen);
    jar.name[jar.count][nlen] = '\0';
    memcpy(jar.value[jar.count], eq + 1, vlen);
    jar.value[jar.count][vlen] = '\0';
    jar.count++;
}

/* One browser request (`form`: a form body to POST, or NULL for GET) to
 * `target` (origin-form, or an absolute URL of the server). The page body
 * goes to `page` (NUL-terminated), a Location header to `location` ("" if
 * none). Returns the HTTP status (0 on failure). */
static char browser_resp[65536];
static unsigned browse(const char *target, const char *form, char *page, size_t page_cap,
                       char *location, size_t loc_cap) {
    static char req[8192];
    char cookies[4096] = "";
    const char *p, *body;
    size_t used = 0, blen;
    int i, n;
    unsigned status;
    location[0] = '\0';
    page[0] = '\0';
    if (strncmp(target, base, strlen(base)) == 0) target += strlen(base);
    if (target[0] != '/') {
        fprintf(stderr, "a page elsewhere: %s\n", target);
        return 0;
    }
    for (i = 0; i < jar.count; i++) {
        n = snprintf(cookies + used, sizeof cookies - used, "%s%s=%s", i ? "; " : "Cookie: ",
                     jar.name[i], jar.value[i]);
        if (n < 0 || (size_t)n >= sizeof cookies - used) return 0;
        used += (size_t)n;
    }
    if (jar.count > 0) {
        if (used + 3 > sizeof cookies) return 0;
        strcpy(cookies + used, "\r\n");
    }
    if (form != NULL)
        n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/html\r\n%s"
                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     target, port, cookies, strlen(form), form);
    else
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/html\r\n%s"
                     "Connection: close\r\n\r\n",
                     target, port, cookies);
    if (n <= 0 || (size_t)n >= sizeof req) return 0;
    if (http(req, (size_t)n, browser_resp, sizeof browser_resp) < 0) return 0;
    status = status_of(browser_resp);
    body = strstr(browser_resp, "\r\n\r\n");
    if (body == NULL) return 0;
    for (p = strstr(browser_resp, "\r\n"); p != NULL && p < body; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, "Set-Cookie: ", 12) == 0) {
            jar_set(h + 12);
        } else if (strncasecmp(h, "Location: ", 10) == 0) {
            const char *end = strstr(h, "\r\n");
            size_t len = (size_t)(end - h - 10);
            if (len >= loc_cap) return 0;
            memcpy(location, h + 10, len);
            location[len] = '\0';
            if (location[0] == '/') jar.relative++;
        }
    }
    body += 4;
    blen = strlen(body);
    if (blen >= page_cap) blen = page_cap - 1;
    memcpy(page, body, blen);
    page[blen] = '\0';
    if (status >= 400) fprintf(stderr, "%s %s: %u\n%s\n", form ? "POST" : "GET", target, status, page);
    return status;
}

/* The user enters `user_code` at `verification_uri`, confirms it, logs in
 * (any login and password) and consents, through oidc-provider's device and
 * development pages. Returns 1 when the last page says "Sign-in Success". */
static int approve_device(const char *verification_uri, const char *user_code) {
    static char page[32768];
    char location[512], here[512], xsrf[128], form[512], prompt[32], code[64];
    int step, logins = 0, consents = 0;
    memset(&jar, 0, sizeof jar);
    CHECK_EQ(browse(verification_uri, NULL, page, sizeof page, location, sizeof location), 200);
    CHECK(contains(page, "op.deviceInputForm"));
    if (!html_field(page, "xsrf", xsrf, sizeof xsrf)) return 0;
    snprintf(form, sizeof form, "xsrf=%s&user_code=%s", xsrf, user_code);
    CHECK_EQ(browse("/device", form, page, sizeof page, location, sizeof location), 200);
    CHECK(contains(page, "op.deviceConfirmForm"));
    CHECK(html_field(page, "user_code", code, sizeof code) && strcmp(code, user_code) == 0);
    if (!html_field(page, "xsrf", xsrf, sizeof xsrf)) return 0;
    snprintf(form, sizeof form, "xsrf=%s&user_code=%s&confirm=yes", xsrf, user_code);
    browse("/device", form, page, sizeof page, location, sizeof location);
    CHECK(location[0] != '\0');
    for (step = 0; step < 12 && location[0] != '\0'; step++) {
        unsigned st;
        strcpy(here, location);
        st = browse(here, NULL, page, sizeof page, location, sizeof location);
        if (st == 0 || st >= 400) return 0;
        if (location[0] != '\0') continue;
        if (!html_field(page, "prompt", prompt, sizeof prompt)) break;
        if (strcmp(prompt, "login") == 0) {
            logins++;
            strcpy(form, "prompt=login&login=alice&password=anything");
        } else if (strcmp(prompt, "consent") == 0) {
            consents++;
            strcpy(form, "prompt=consent");
        } else {
            fprintf(stderr, "unexpected prompt %s:\n%s\n", prompt, page);
            return 0;
        }
        browse(here, form, page, sizeof page, location, sizeof location);
        CHECK(location[0] != '\0');
    }
    CHECK_EQ(logins, 1);
    CHECK_EQ(consents, 1);
    CHECK(jar.relative >= 2);
    CHECK(contains(page, "Sign-in Success"));
    return contains(page, "Sign-in Success");
}

/* What a refresh_token grant answers to `rt` sent by hand (post client):
 * the status; the body in `resp`. */
static unsigned raw_refresh(const char *rt, char *resp, size_t cap) {
    char form[512], req[1024];
    int f = snprintf(form, sizeof form,
                     "grant_type=refresh_token&refresh_token=%s&client_id=" POST_ID
                     "&client_secret=" POST_SECRET,
                     rt);
    int n = snprintf(req, sizeof req,
                     "POST /token HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s",
                     port, f, form);
    if (f <= 0 || n <= 0 || (size_t)n >= sizeof req || http(req, (size_t)n, resp, cap) < 0) return 0;
    return status_of(resp);
}

/* RFC 8628 to completion with offline_access: no interval in the device
 * authorization response (the session waits the default 5 s: its clock is
 * moved on instead of sleeping; oidc-provider does not time the polls),
 * authorization_pending until the user (this program, over HTTP) has entered
 * the code, logged in and consented, then a token and a refresh token. Three
 * refreshes with rotation, each sending the newest refresh token and never
 * one sent before (read off the wire). Then a rotated-out refresh token
 * replayed by hand revokes the grant: a 401 at the API, the refresh
 * rejected, and the device flow starts over. */
static void device_flow(void) {
    static struct recorded r;
    static char sent[4][128], issued[5][128];
    fieldauth_profile p;
    fieldauth_config c;
    fieldauth_event ev;
    fieldauth_action a;
    fieldauth_verdict v;
    fieldauth_session_info info;
    fieldauth_device_display d;
    uint8_t dbuf[512];
    size_t dlen = 0;
    char user_code[64], uri[128], complete[256], device_code[128], value[256], body[1024];
    char access[128], older[128], resp[4096];
    uint64_t now = now_ms();
    int i, j, nsent = 0, nissued = 0;

    OK(fieldauth_profile_preset(FIELDAUTH_PRESET_CUSTOM, &p));
    p.name = str("oidc-provider");
    p.mode = FIELDAUTH_MODE_DEVICE_CODE;
    p.client_auth = FIELDAUTH_CLIENT_AUTH_BODY;
    p.token_path = str("/token");
    p.device_path = str("/device/auth");
    p.revoke_path = str("/token/revocation");
    memset(&c, 0, sizeof c);
    c.base_url = str(base);
    c.client_id = str(POST_ID);
    c.client_secret = str(POST_SECRET);
    c.scope = str("openid offline_access api:read");
    OK(fieldauth_session_init(&session, &p, &c, now ^ 0xde71ce5eull));

    OK(recorded_exchange(now, FIELDAUTH_REQUEST_DEVICE_AUTHORIZATION, &ev, &r));
    CHECK_EQ(ev.kind, FIELDAUTH_EVENT_USER_CODE);
    CHECK(strncmp(r.sent, "POST /device/auth HTTP/1.1\r\n", 28) == 0);
    CHECK(!contains(r.got, "\"interval\""));
    CHECK(json_string(r.got, "device_code", device_code, sizeof device_code));
    OK(fieldauth_session_device_display(&session, dbuf, sizeof dbuf, &dlen, &d));
    snprintf(user_code, sizeof user_code, "%.*s", (int)d.user_code.len, (const char *)d.user_code.ptr);
    snprintf(uri, sizeof uri, "%.*s", (int)d.verification_uri.len,
             (const char *)d.verification_uri.ptr);
    snprintf(complete, sizeof complete, "%.*s", (int)d.verification_uri_complete.len,
             (const char *)d.verification_uri_complete.ptr);
    CHECK(json_string(r.got, "user_code", value, sizeof value) && strcmp(value, user_code) == 0);
    snprintf(value, sizeof value, "%s/device", base);
    CHECK(strcmp(uri, value) == 0);
    snprintf(value, sizeof value, "%s?user_code=%s", uri, user_code);
    CHECK(strcmp(complete, value) == 0);
    CHECK(d.expires_at_ms > now && d.expires_at_ms <= now + 600000u);

    /* No interval: the RFC 8628 default of 5 s between polls. */
    OK(fieldauth_session_poll(&session, now, &a));
    CHECK_EQ(a.kind, FIELDAUTH_ACTION_WAIT);
    CHECK_EQ(a.at_ms, now + 5000);
    now += 5000;
    OK(recorded_exchange(now, FIELDAUTH_REQUEST_DEVICE_POLL, &ev, &r));
    CHECK_EQ(ev.kind, FIELDAUTH_EVENT_AUTHORIZATION_PENDING);
    CHECK(contains(r.got, "\"error\":\"authorization_pending\""));
    CHECK(form_field(r.sent, "grant_type", value, sizeof value) &&
          strcmp(value, "urn:ietf:params:oauth:grant-type:device_code") == 0);
    CHECK(form_field(r.sent, "device_code", value, sizeof value) && strcmp(value, device_code) == 0);
    OK(fieldauth_session_poll(&session, now, &a));
    CHECK_EQ(a.kind, FIELDAUTH_ACTION_WAIT);
    CHECK_EQ(a.at_ms, now + 5000);

    CHECK(approve_device(uri, user_code));

    now += 5000;
    OK(recorded_exchange(now, FIELDAUTH_REQUEST_DEVICE_POLL, &ev, &r));
    CHECK_EQ(ev.kind, FIELDAUTH_EVENT_TOKEN_ISSUED);
    CHECK_EQ(ev.request_kind, FIELDAUTH_REQUEST_DEVICE_POLL);
    CHECK_EQ(ev.lifetime_s, 5);
    CHECK_EQ(ev.refreshable, 1);
    CHECK(json_string(r.got, "refresh_token", issued[nissued], sizeof issued[0]));
    nissued++;
    CHECK(fieldauth_session_device_display(&session, dbuf, sizeof dbuf, &dlen, &d) != FIELDAUTH_OK);
    CHECK_EQ(api_me(now, &v, body, sizeof body), 200);
    CHECK(contains(body, "\"client_id\":\"" POST_ID "\""));
    CHECK(contains(body, "\"sub\":\"alice\""));

    /* Refresh with rotation, each at the session's refresh time. */
    for (i = 0; i < 3; i++) {
        CHECK(current_token(now, older, sizeof older));
        OK(fieldauth_session_get_info(&session, &info));
        CHECK(info.refresh_at_ms > now);
        now = info.refresh_at_ms;
        OK(recorded_exchange(now, FIELDAUTH_REQUEST_REFRESH, &ev, &r));
        CHECK(form_field(r.sent, "grant_type", value, sizeof value) &&
              strcmp(value, "refresh_token") == 0);
        CHECK(form_field(r.sent, "refresh_token", sent[nsent], sizeof sent[0]));
        CHECK(strcmp(sent[nsent], issued[nissued - 1]) == 0); /* the newest */
        for (j = 0; j < nsent; j++) CHECK(strcmp(sent[j], sent[nsent]) != 0); /* no replay */
        nsent++;
        CHECK_EQ(ev.kind, FIELDAUTH_EVENT_TOKEN_ISSUED);
        CHECK_EQ(ev.request_kind, FIELDAUTH_REQUEST_REFRESH);
        CHECK_EQ(ev.refreshable, 1);
        CHECK(json_string(r.got, "refresh_token", issued[nissued], sizeof issued[0]));
        for (j = 0; j < nissued; j++) CHECK(strcmp(issued[j], issued[nissued]) != 0); /* rotated */
        nissued++;
        CHECK(current_token(now, access, sizeof access) && strcmp(access, older) != 0);
        CHECK_EQ(api_me(now, &v, body, sizeof body), 200);
        CHECK(contains(body, "\"sub\":\"alice\""));
    }

    /* oidc-provider's side of rotation: the replay revokes the grant. */
    CHECK(current_token(now, access, sizeof access));
    CHECK_EQ(raw_get_me(access), 200);
    CHECK_EQ(raw_refresh(issued[0], resp, sizeof resp), 400);
    CHECK(contains(resp, "invalid_grant"));
    CHECK_EQ(raw_get_me(access), 401);
    CHECK_EQ(api_me(now, &v, body, sizeof body), 401);
    CHECK_EQ(v.kind, FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN);
    OK(recorded_exchange(now, FIELDAUTH_REQUEST_REFRESH, &ev, &r));
    CHECK(form_field(r.sent, "refresh_token", value, sizeof value) &&
          strcmp(value, issued[nissued - 1]) == 0);
    CHECK_EQ(ev.kind, FIELDAUTH_EVENT_REFRESH_REJECTED);
    CHECK(contains(r.got, "invalid_grant"));
    OK(fieldauth_session_get_info(&session, &info));
    CHECK_EQ(info.refreshable, 0);
    OK(fieldauth_session_poll(&session, now, &a));
    CHECK_EQ(a.kind, FIELDAUTH_ACTION_SEND_TOKEN_REQUEST);
    CHECK_EQ(a.request_kind, FIELDAUTH_REQUEST_DEVICE_AUTHORIZATION);
    printf("device flow: %d refreshes with rotation, replay revoked the grant\n", nsent);
    OK(fieldauth_session_clear(&session));
}

int main(int argc, char **argv) {
    if (argc != 2 || (port = atoi(argv[1])) <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT (of tests/oidc/server.mjs on 127.0.0.1)\n", argv[0]);
        return 2;
    }
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);

    basic_with_special_character_secret();
    post_client();
    wrong_secret();
    api_401_recovery();
    revocation();
    device_flow();
    proactive_refresh();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
