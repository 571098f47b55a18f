/*
 * oidc_e2e: fieldauth's C ABI end to end against an independent OAuth 2.0
 * server, panva's oidc-provider (tests/oidc/server.mjs, 5 s access tokens),
 * over real sockets to 127.0.0.1 (issue #14). Token requests go through
 * fieldauth_session_exchange() with send/recv transport callbacks; API
 * requests to the server's protected resource GET /api/me are written here
 * with the credential from fieldauth_session_authorize(), and their answers
 * reported with fieldauth_session_report_api_response().
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
    proactive_refresh();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
