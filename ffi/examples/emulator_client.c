/*
 * emulator_client: gets a token from the fieldauth provider emulator over
 * POSIX sockets and makes one authorized API call, using only fieldauth.h and
 * libfieldauth.a (no allocation in the library; all storage is here).
 *
 *   cargo run -p fieldauth-emulator -- --port 8080 &
 *   cc -std=c11 -Wall -Wextra -pedantic -Iinclude ffi/examples/emulator_client.c \
 *      target/release/libfieldauth.a -o emulator_client
 *   ./emulator_client 127.0.0.1 8080 autotask
 *
 * PROVIDER is one of: autotask, fieldnation, patchworks (login), fentu-key.
 * Exit status 0 when the API answered 2xx with the credential accepted.
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

/* Everything the library needs, caller-allocated. */
static fieldauth_session session;
static fieldauth_head head;
static fieldauth_body body;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int fail(const char *what, fieldauth_status st) {
    fprintf(stderr, "emulator_client: %s: %s (status %u)\n", what, fieldauth_status_message(st),
            (unsigned)st);
    return 1;
}

/* fail() for api_call, whose 0 means "no verdict". */
static uint32_t no_verdict(const char *what, fieldauth_status st) {
    (void)fail(what, st);
    return 0;
}

/* A TCP connection to host:port with a 10 s receive timeout, or -1. */
static int connect_to(const char *host, int port) {
    struct sockaddr_in addr;
    struct timeval tv;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Transport callbacks over a blocking socket: > 0 bytes, 0 would block
 * (here: the receive timeout), FIELDAUTH_TRANSPORT_CLOSED, or an error. */
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

static int send_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ptrdiff_t k = sock_send(&fd, p, n);
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One token exchange on a fresh connection, through a 128-byte buffer. */
static int token_exchange(const char *host, int port) {
    uint8_t buf[128];
    fieldauth_transport t;
    fieldauth_event ev;
    fieldauth_status st;
    int fd = connect_to(host, port);
    if (fd < 0) {
        if (fieldauth_session_report_transport_error(&session, now_ms(), &ev) != FIELDAUTH_OK) return 1;
        fprintf(stderr, "emulator_client: cannot connect to %s:%d\n", host, port);
        return 1;
    }
    t.ctx = &fd;
    t.send = sock_send;
    t.recv = sock_recv;
    st = fieldauth_session_exchange(&session, &head, now_ms(), &t, buf, sizeof buf, &ev);
    close(fd);
    if (st == FIELDAUTH_ERR_WOULD_BLOCK) {
        /* Blocking socket: "would block" means the receive timed out. */
        if (fieldauth_session_report_transport_error(&session, now_ms(), &ev) != FIELDAUTH_OK) return 1;
        return fail("token exchange timed out", FIELDAUTH_ERR_TRANSPORT);
    }
    if (st != FIELDAUTH_OK) return fail("token exchange", st);
    switch (ev.kind) {
    case FIELDAUTH_EVENT_TOKEN_ISSUED:
        printf("token issued: lifetime %u s, refreshable %u\n", (unsigned)ev.lifetime_s,
               (unsigned)ev.refreshable);
        return 0;
    case FIELDAUTH_EVENT_RETRYING:
        printf("token request failed (HTTP %u): retrying\n", (unsigned)ev.http_status);
        return 0;
    case FIELDAUTH_EVENT_FAILED:
        printf("token request failed permanently (failure %u)\n", (unsigned)ev.failure);
        return 0;
    default:
        printf("token exchange event %u\n", (unsigned)ev.kind);
        return 0;
    }
}

/* One authorized GET; prints the status and returns the verdict kind (0 on error). */
static uint32_t api_call(const char *host, int port, const char *target) {
    uint8_t cred[1024], req[2048], buf[128], prefix[256];
    size_t cred_len = 0, prefix_len = 0;
    int len, fd, done = 0;
    fieldauth_authorization au;
    fieldauth_response_info info;
    fieldauth_verdict v;
    fieldauth_status st;
    const char *path = target;
    int path_len = (int)strlen(target);
    const char *extra = "";
    int extra_len = 0;

    st = fieldauth_session_authorize(&session, now_ms(), (const uint8_t *)target, strlen(target),
                                     cred, sizeof cred, &cred_len, &au);
    if (st != FIELDAUTH_OK) return no_verdict("authorize", st);
    if (au.kind != FIELDAUTH_AUTHORIZATION_SEND) {
        printf("not authorized now (kind %u, until %llu)\n", (unsigned)au.kind,
               (unsigned long long)au.until_ms);
        return 0;
    }
    if (au.credential == FIELDAUTH_CREDENTIAL_QUERY) {
        path = (const char *)cred;
        path_len = (int)cred_len;
    } else {
        extra = (const char *)cred;
        extra_len = (int)cred_len;
    }
    len = snprintf((char *)req, sizeof req,
                   "GET %.*s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\n%.*s"
                   "Connection: close\r\n\r\n",
                   path_len, path, host, port, extra_len, extra);
    memset(cred, 0, sizeof cred); /* the credential is a secret */
    if (len <= 0 || (size_t)len >= sizeof req) return 0;
    fd = connect_to(host, port);
    if (fd < 0 || send_all(fd, req, (size_t)len) != 0) {
        if (fd >= 0) close(fd);
        fprintf(stderr, "emulator_client: API request failed to send\n");
        return 0;
    }
    memset(req, 0, sizeof req);

    /* Read the head, then the body (its first bytes are kept for the session). */
    if (fieldauth_head_init(&head) != FIELDAUTH_OK) {
        close(fd);
        return 0;
    }
    while (!done) {
        ptrdiff_t n = sock_recv(&fd, buf, sizeof buf);
        size_t at = 0;
        if (n <= 0) {
            if (n == FIELDAUTH_TRANSPORT_CLOSED && fieldauth_body_finish(&body) == FIELDAUTH_OK &&
                fieldauth_head_get_info(&head, &info) == FIELDAUTH_OK)
                break;
            close(fd);
            fprintf(stderr, "emulator_client: API response cut short\n");
            return 0;
        }
        if (fieldauth_head_get_info(&head, &info) != FIELDAUTH_OK) {
            size_t used = 0;
            uint32_t complete = 0;
            st = fieldauth_head_feed(&head, buf, (size_t)n, &used, &complete);
            if (st != FIELDAUTH_OK) {
                close(fd);
                return no_verdict("API response head", st);
            }
            if (!complete) continue;
            at = used;
            if (fieldauth_body_init(&body, &head) != FIELDAUTH_OK) {
                close(fd);
                return 0;
            }
        }
        while (at < (size_t)n && !done) {
            fieldauth_body_progress p;
            size_t i;
            st = fieldauth_body_read(&body, buf + at, (size_t)n - at, &p);
            if (st != FIELDAUTH_OK) {
                close(fd);
                return no_verdict("API response body", st);
            }
            for (i = 0; i < p.data_len && prefix_len < sizeof prefix; i++)
                prefix[prefix_len++] = buf[at + p.data_offset + i];
            at += p.consumed;
            done = p.done != 0;
            if (p.consumed == 0) break;
        }
        if (!done) {
            fieldauth_body_progress p;
            /* An empty body (204, Content-Length: 0) is done at once. */
            if (fieldauth_body_read(&body, NULL, 0, &p) == FIELDAUTH_OK && p.done) done = 1;
        }
    }
    close(fd);
    if (fieldauth_head_get_info(&head, &info) != FIELDAUTH_OK) return 0;
    st = fieldauth_session_report_api_response(&session, now_ms(), &head, prefix, prefix_len, &v);
    if (st != FIELDAUTH_OK) return no_verdict("report API response", st);
    printf("API %u: %.*s\n", (unsigned)info.status, (int)(prefix_len > 80 ? 80 : prefix_len),
           (const char *)prefix);
    return info.status >= 200 && info.status <= 299 ? v.kind : 0;
}

int main(int argc, char **argv) {
    const char *host, *provider, *prefix, *target;
    int port, round;
    uint32_t preset;
    char base[128];
    fieldauth_config cfg;
    fieldauth_action a;
    fieldauth_status st;
    uint32_t verdict = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: %s HOST PORT autotask|fieldnation|patchworks|fentu-key\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    provider = argv[3];
    memset(&cfg, 0, sizeof cfg);
    if (strcmp(provider, "autotask") == 0) {
        preset = FIELDAUTH_PRESET_AUTOTASK;
        prefix = "/autotask";
        target = "/autotask/ATServicesRest/V1.0/Companies";
        cfg.client_id = (fieldauth_str)FIELDAUTH_STR("demo-client");
        cfg.client_secret = (fieldauth_str)FIELDAUTH_STR("demo-secret");
    } else if (strcmp(provider, "fieldnation") == 0) {
        preset = FIELDAUTH_PRESET_FIELD_NATION;
        prefix = "/fieldnation";
        target = "/fieldnation/api/rest/v2/workorders";
        cfg.client_id = (fieldauth_str)FIELDAUTH_STR("demo-client");
        cfg.client_secret = (fieldauth_str)FIELDAUTH_STR("demo-secret");
    } else if (strcmp(provider, "patchworks") == 0) {
        preset = FIELDAUTH_PRESET_PATCHWORKS_LOGIN;
        prefix = "/patchworks";
        target = "/patchworks/core/v1/flows";
        cfg.username = (fieldauth_str)FIELDAUTH_STR("me@patchworks.com");
        cfg.password = (fieldauth_str)FIELDAUTH_STR("a1b2c3d4e5f6");
    } else if (strcmp(provider, "fentu-key") == 0) {
        preset = FIELDAUTH_PRESET_FENTU_API_KEY;
        prefix = "/fentu";
        target = "/fentu/v1/work-orders";
        cfg.api_key = (fieldauth_str)FIELDAUTH_STR("fentu-demo-key");
    } else {
        fprintf(stderr, "emulator_client: unknown provider %s\n", provider);
        return 2;
    }
    if (fieldauth_version_number() != FIELDAUTH_VERSION_NUMBER) {
        fprintf(stderr, "emulator_client: header %s, library %s\n", FIELDAUTH_VERSION_STRING,
                fieldauth_version());
        return 1;
    }
    snprintf(base, sizeof base, "http://%s:%d%s", host, port, prefix);
    cfg.base_url.ptr = (const uint8_t *)base;
    cfg.base_url.len = strlen(base);
    st = fieldauth_session_init_preset(&session, preset, &cfg, now_ms() ^ 0x9e3779b97f4a7c15ull);
    if (st != FIELDAUTH_OK) return fail("init", st);
    printf("%s at %s\n", fieldauth_preset_name(preset), base);

    /* Poll until a credential is usable (bounded), then call the API; retry
     * once if the API rejects the token. */
    for (round = 0; round < 8 && verdict != FIELDAUTH_VERDICT_OK; round++) {
        st = fieldauth_session_poll(&session, now_ms(), &a);
        if (st != FIELDAUTH_OK) return fail("poll", st);
        switch (a.kind) {
        case FIELDAUTH_ACTION_SEND_TOKEN_REQUEST:
            if (token_exchange(host, port) != 0) goto out;
            break;
        case FIELDAUTH_ACTION_READY:
            verdict = api_call(host, port, target);
            if (verdict == 0) goto out;
            printf("verdict %u\n", (unsigned)verdict);
            break;
        case FIELDAUTH_ACTION_WAIT: {
            uint64_t now = now_ms();
            uint64_t ms = a.at_ms > now ? a.at_ms - now : 0;
            struct timespec ts;
            if (ms > 5000) ms = 5000;
            ts.tv_sec = (time_t)(ms / 1000);
            ts.tv_nsec = (long)(ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
            break;
        }
        case FIELDAUTH_ACTION_FAILED:
            printf("session failed (failure %u)\n", (unsigned)a.failure);
            goto out;
        default:
            printf("unexpected action %u\n", (unsigned)a.kind);
            goto out;
        }
    }
out:
    if (fieldauth_session_clear(&session) != FIELDAUTH_OK) return 1;
    if (verdict == FIELDAUTH_VERDICT_OK) {
        printf("ok\n");
        return 0;
    }
    return 1;
}
