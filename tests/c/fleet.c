/*
 * fleet: one credential shared by a fleet of C workers through a store of
 * callbacks (issue #21). Every worker thread has its own session
 * (fieldauth_session), its own fieldauth_worker and its own handle on the
 * store; the store is a file mapped into every process (MAP_SHARED), locked
 * with flock() on each handle's own descriptor, so threads and processes
 * exclude each other alike. It keeps two state slots and flips between them,
 * so a worker killed mid-save leaves the old state whole.
 *
 *   fleet PORT STORE bootstrap
 *       a person's one login: the authorization-code flow against the
 *       emulator's Fentu, its token saved in the store as generation 1
 *   fleet PORT STORE run PROCS THREADS SECONDS
 *       PROCS processes of THREADS workers call Fentu's API for SECONDS;
 *       prints one line per worker, "worker OK FAILED MAX_GAP_MS", then
 *       "fleet OK FAILED WORKERS"
 *
 * While a file STORE.down exists, every store callback fails (the
 * harness's "store down"): the workers keep serving their tokens and their
 * 1/fleet share of the budget, and rejoin when it is gone.
 *
 * Run by ffi/tests/fleet_c.rs, which starts the emulator (5 s tokens,
 * refresh-token rotation with reuse detection) and checks its counters.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fieldauth.h"

static int port;
static char base[64];
static const char *store_path;
static char down_path[512];

/* ------------------------------------------------------------ clocks */

static uint64_t clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
static uint64_t mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
static uint64_t unix_ms(void) { return clock_ms(CLOCK_REALTIME); }

static void sleep_until(uint64_t at) {
    uint64_t now = mono_ms();
    struct timespec ts;
    if (at <= now) return;
    if (at - now > 30000) at = now + 30000; /* never longer than a lease */
    ts.tv_sec = (time_t)((at - now) / 1000);
    ts.tv_nsec = (long)((at - now) % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------ the store */

#define STATE_CAP 4096
#define STORE_MAGIC 0x31746c6674736146ull /* "Fastflt1" */

/* The mapped file. Changed only under an exclusive flock. */
struct shared {
    uint64_t magic;
    uint64_t generation; /* 0: empty */
    uint64_t holder;
    uint64_t lease_end; /* Unix ms */
    uint64_t tat[2];    /* GCRA cells: "token", "api" */
    uint32_t active;    /* the slot holding the state */
    uint32_t len[2];
    uint8_t slot[2][STATE_CAP];
};

/* One worker's handle: its own descriptor (flock is per open file). */
struct handle {
    int fd;
    struct shared *m;
};

static int lock(struct handle *h) {
    if (access(down_path, F_OK) == 0) return -1; /* the harness's outage */
    while (flock(h->fd, LOCK_EX) != 0) {
        if (errno != EINTR) return -1;
    }
    if (h->m->magic != STORE_MAGIC) { /* a new file: start it empty */
        memset(h->m, 0, sizeof *h->m);
        h->m->magic = STORE_MAGIC;
    }
    return 0;
}

static void unlock(struct handle *h) { flock(h->fd, LOCK_UN); }

static int open_store(struct handle *h) {
    h->fd = open(store_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (h->fd < 0) return -1;
    if (ftruncate(h->fd, (off_t)sizeof(struct shared)) != 0) return -1;
    h->m = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
    return h->m == MAP_FAILED ? -1 : 0;
}

static void close_store(struct handle *h) {
    munmap(h->m, sizeof(struct shared));
    close(h->fd);
}

static int32_t st_load(void *ctx, uint8_t *buf, size_t buf_len, size_t *out_len,
                       uint64_t *out_generation) {
    struct handle *h = ctx;
    struct shared *m = h->m;
    int32_t rc = FIELDAUTH_STORE_OK;
    if (lock(h) != 0) return FIELDAUTH_STORE_FAILED;
    *out_generation = m->generation;
    *out_len = m->generation ? m->len[m->active] : 0;
    if (*out_len > buf_len)
        rc = FIELDAUTH_STORE_BUFFER_TOO_SMALL;
    else if (*out_len)
        memcpy(buf, m->slot[m->active], *out_len);
    unlock(h);
    return rc;
}

static int32_t st_lease(void *ctx, uint64_t holder, uint32_t ttl_ms, uint32_t *out_held,
                        uint64_t *out_until_ms) {
    struct handle *h = ctx;
    struct shared *m = h->m;
    uint64_t now;
    if (lock(h) != 0) return FIELDAUTH_STORE_FAILED;
    now = unix_ms();
    if (m->holder == holder || m->lease_end <= now) {
        m->holder = holder;
        m->lease_end = now + ttl_ms;
        *out_held = 1;
    }
    *out_until_ms = m->lease_end;
    unlock(h);
    return FIELDAUTH_STORE_OK;
}

static int32_t st_save(void *ctx, uint64_t holder, uint64_t expected, const uint8_t *state,
                       size_t len, uint32_t *out_result, uint64_t *out_generation) {
    struct handle *h = ctx;
    struct shared *m = h->m;
    if (len > STATE_CAP) return FIELDAUTH_STORE_FAILED;
    if (lock(h) != 0) return FIELDAUTH_STORE_FAILED;
    if (m->holder != holder || m->lease_end <= unix_ms()) {
        *out_result = FIELDAUTH_SAVED_NOT_HOLDER;
    } else if (m->generation != expected) {
        *out_result = FIELDAUTH_SAVED_STALE;
        *out_generation = m->generation;
    } else {
        uint32_t next = m->active ^ 1u;
        memcpy(m->slot[next], state, len);
        m->len[next] = (uint32_t)len;
        m->active = next; /* the flip: a reader sees the old slot or the new */
        m->generation = expected + 1;
        *out_result = FIELDAUTH_SAVED_STORED;
        *out_generation = m->generation;
    }
    unlock(h);
    return FIELDAUTH_STORE_OK;
}

static int32_t st_release(void *ctx, uint64_t holder) {
    struct handle *h = ctx;
    if (lock(h) != 0) return FIELDAUTH_STORE_FAILED;
    if (h->m->holder == holder) h->m->lease_end = 0;
    unlock(h);
    return FIELDAUTH_STORE_OK;
}

/* GCRA, as fieldauth::shared::charge_cell: a burst of `burst`, then one per
 * window / (requests - burst + 1), never more than `requests` per window. */
static int32_t st_charge(void *ctx, const char *id, uint32_t requests, uint32_t window_s,
                         uint32_t burst, uint64_t *out_wait_until_ms) {
    struct handle *h = ctx;
    uint64_t *tat;
    fieldauth_status rc;
    if (strcmp(id, "token") != 0 && strcmp(id, "api") != 0) return FIELDAUTH_STORE_FAILED;
    if (lock(h) != 0) return FIELDAUTH_STORE_FAILED;
    tat = &h->m->tat[strcmp(id, "api") == 0];
    /* The library's GCRA step, on the store's clock, under the lock. */
    rc = fieldauth_store_charge_cell(*tat, unix_ms(), requests, window_s, burst, tat,
                                     out_wait_until_ms);
    unlock(h);
    return rc == FIELDAUTH_OK ? FIELDAUTH_STORE_OK : FIELDAUTH_STORE_FAILED;
}

static fieldauth_store make_store(struct handle *h) {
    fieldauth_store s;
    s.ctx = h;
    s.load = st_load;
    s.lease = st_lease;
    s.save = st_save;
    s.release = st_release;
    s.charge = st_charge;
    return s;
}

/* ------------------------------------------------------------ HTTP */

static int connect_local(void) {
    struct sockaddr_in addr;
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static ptrdiff_t tx(void *ctx, const uint8_t *buf, size_t len) {
    ssize_t n;
    do {
        n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? FIELDAUTH_TRANSPORT_ERROR : (ptrdiff_t)n;
}

static ptrdiff_t rx(void *ctx, uint8_t *buf, size_t len) {
    ssize_t n;
    do {
        n = recv(*(int *)ctx, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return FIELDAUTH_TRANSPORT_CLOSED;
    return n < 0 ? FIELDAUTH_TRANSPORT_ERROR : (ptrdiff_t)n;
}

/* One request on a new connection; the whole response, NUL-terminated. */
static long roundtrip(const char *req, size_t len, char *resp, size_t cap) {
    size_t got = 0;
    int fd = connect_local();
    if (fd < 0) return -1;
    while (len > 0) {
        ptrdiff_t n = tx(&fd, (const uint8_t *)req, len);
        if (n <= 0) break;
        req += n;
        len -= (size_t)n;
    }
    while (len == 0 && got + 1 < cap) {
        ptrdiff_t n = rx(&fd, (uint8_t *)resp + got, cap - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    resp[got] = '\0';
    return len == 0 && got > 0 ? (long)got : -1;
}

/* ------------------------------------------------------------ a worker */

struct worker {
    fieldauth_session session;
    fieldauth_head head;
    fieldauth_worker w;
    struct handle handle;
    fieldauth_store store;
    uint8_t image[STATE_CAP];
    unsigned long ok, failed;
    uint64_t max_gap;
};

static fieldauth_str str(const char *s) {
    fieldauth_str r;
    r.ptr = (const uint8_t *)s;
    r.len = strlen(s);
    return r;
}

static uint64_t random64(void) {
    uint64_t r = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &r, sizeof r) != (ssize_t)sizeof r) r = 0;
        close(fd);
    }
    r ^= mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&r;
    return r ? r : 1;
}

/* Fentu's preset with the fleet test's API budget: 40 requests in any 10 s,
 * 4 back to back (a short window the emulator counts exactly). */
static int worker_init(struct worker *k, uint32_t fleet) {
    fieldauth_profile p;
    fieldauth_config c;
    memset(k, 0, sizeof *k);
    if (fieldauth_profile_preset(FIELDAUTH_PRESET_FENTU_OAUTH, &p) != FIELDAUTH_OK) return -1;
    p.api_budget.requests = 40;
    p.api_budget.window_s = 10;
    p.api_budget.burst = 4;
    memset(&c, 0, sizeof c);
    c.base_url = str(base);
    c.client_id = str("demo-client");
    c.client_secret = str("demo-secret");
    c.redirect_uri = str("http://127.0.0.1:9/callback");
    c.scope = str("read:work-orders");
    if (fieldauth_session_init(&k->session, &p, &c, random64()) != FIELDAUTH_OK ||
        fieldauth_session_set_wall_clock(&k->session, mono_ms(), unix_ms()) != FIELDAUTH_OK ||
        fieldauth_worker_init(&k->w, random64(), fleet, 5000, 0) != FIELDAUTH_OK ||
        open_store(&k->handle) != 0)
        return -1;
    k->store = make_store(&k->handle);
    return 0;
}

static void worker_done(struct worker *k) {
    if (fieldauth_session_clear(&k->session) != FIELDAUTH_OK) fprintf(stderr, "fleet: clear failed\n");
    close_store(&k->handle);
}

/* Logs what the worker noticed (never a secret: a fixed sentence). */
static void notices(struct worker *k) {
    uint32_t n = FIELDAUTH_NOTICE_NONE;
    if (fieldauth_worker_take_notice(&k->w, &n) != FIELDAUTH_OK) return;
    if (n == FIELDAUTH_NOTICE_STORE_DOWN)
        fprintf(stderr, "fieldauth: the store failed; on our own with a share of the budget\n");
    else if (n == FIELDAUTH_NOTICE_STORE_BACK)
        fprintf(stderr, "fieldauth: the store answers again; rejoined the fleet\n");
    else if (n == FIELDAUTH_NOTICE_FOREIGN_STATE)
        fprintf(stderr, "fieldauth: the store holds a state this session cannot adopt\n");
}

/* The token exchange of a LEAD or SOLO turn, then the worker's bookkeeping. */
static void token_exchange(struct worker *k) {
    uint8_t buf[256];
    fieldauth_transport t;
    fieldauth_event ev;
    fieldauth_status st;
    uint32_t adopted = 0;
    int fd = connect_local();
    memset(&ev, 0, sizeof ev);
    if (fd < 0) {
        (void)!fieldauth_session_report_transport_error(&k->session, mono_ms(), &ev);
        st = FIELDAUTH_ERR_TRANSPORT;
    } else {
        t.ctx = &fd;
        t.send = tx;
        t.recv = rx;
        st = fieldauth_session_exchange(&k->session, &k->head, mono_ms(), &t, buf, sizeof buf, &ev);
        close(fd);
    }
    if (fieldauth_worker_exchanged(&k->w, &k->session, &k->store, mono_ms(), unix_ms(),
                                   st == FIELDAUTH_OK && ev.kind == FIELDAUTH_EVENT_TOKEN_ISSUED,
                                   k->image, sizeof k->image, &adopted) != FIELDAUTH_OK)
        fprintf(stderr, "fleet: fieldauth_worker_exchanged failed\n");
}

/* Up to 50 rounds of poll and token turns until the session may send: 1 when
 * authorize may be asked, 0 when not (counted as a failure by the caller). */
static int credential(struct worker *k) {
    int round;
    for (round = 0; round < 50; round++) {
        fieldauth_action a;
        uint32_t turn = 0, adopted = 0;
        uint64_t until = 0, now = mono_ms();
        if (fieldauth_session_poll(&k->session, now, &a) != FIELDAUTH_OK) return 0;
        switch (a.kind) {
        case FIELDAUTH_ACTION_READY:
            return 1;
        case FIELDAUTH_ACTION_WAIT:
            sleep_until(a.at_ms);
            continue;
        case FIELDAUTH_ACTION_NEED_AUTHORIZATION_CODE:
        case FIELDAUTH_ACTION_FAILED:
            /* The grant is the fleet's: take it from the store. */
            if (fieldauth_worker_sync(&k->w, &k->session, &k->store, now, unix_ms(), k->image,
                                      sizeof k->image, &adopted) == FIELDAUTH_OK &&
                adopted == FIELDAUTH_ADOPTED_NEWER)
                continue;
            notices(k);
            sleep_until(now + 200);
            continue;
        case FIELDAUTH_ACTION_SEND_TOKEN_REQUEST:
            if (fieldauth_worker_token_turn(&k->w, &k->session, &k->store, now, unix_ms(),
                                            k->image, sizeof k->image, &turn,
                                            &until) != FIELDAUTH_OK)
                return 0;
            notices(k);
            if (turn == FIELDAUTH_TURN_LEAD || turn == FIELDAUTH_TURN_SOLO) {
                token_exchange(k);
                notices(k);
            } else if (turn == FIELDAUTH_TURN_WAIT) {
                sleep_until(until);
            } else if (turn == FIELDAUTH_TURN_USE) {
                return 1;
            }
            continue;
        default:
            sleep_until(now + 50);
            continue;
        }
    }
    return 0;
}

/* One API call: 200 or not; the verdict reported to the session. */
static int api_call(struct worker *k) {
    uint8_t cred[2048];
    char req[3072], resp[8192];
    size_t len = 0, used = 0;
    uint32_t complete = 0;
    fieldauth_authorization au;
    fieldauth_response_info info;
    fieldauth_verdict v;
    long got;
    int n;
    if (fieldauth_session_authorize(&k->session, mono_ms(), NULL, 0, cred, sizeof cred, &len,
                                    &au) != FIELDAUTH_OK)
        return 0;
    if (au.kind == FIELDAUTH_AUTHORIZATION_WAIT) {
        sleep_until(au.until_ms);
        return -1; /* not sent: ask again */
    }
    if (au.kind != FIELDAUTH_AUTHORIZATION_SEND) {
        sleep_until(mono_ms() + 50);
        return -1;
    }
    n = snprintf(req, sizeof req,
                 "GET /fentu/v1/work-orders HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%.*sConnection: "
                 "close\r\n\r\n",
                 port, (int)len, (const char *)cred);
    memset(cred, 0, sizeof cred);
    if (n <= 0 || (size_t)n >= sizeof req) return 0;
    got = roundtrip(req, (size_t)n, resp, sizeof resp);
    memset(req, 0, sizeof req);
    if (got <= 0 || fieldauth_head_init(&k->head) != FIELDAUTH_OK ||
        fieldauth_head_feed(&k->head, (const uint8_t *)resp, (size_t)got, &used, &complete) !=
            FIELDAUTH_OK ||
        !complete || fieldauth_head_get_info(&k->head, &info) != FIELDAUTH_OK)
        return 0;
    if (fieldauth_session_report_api_response(&k->session, mono_ms(), &k->head,
                                              (const uint8_t *)resp + used, (size_t)got - used,
                                              &v) != FIELDAUTH_OK)
        return 0;
    return info.status == 200;
}

struct run {
    uint32_t fleet;
    uint64_t deadline;
};

static void *work(void *arg) {
    const struct run *r = arg;
    struct worker *k = calloc(1, sizeof *k);
    uint64_t last;
    if (k == NULL || worker_init(k, r->fleet) != 0) {
        fprintf(stderr, "fleet: worker init failed\n");
        free(k);
        return NULL;
    }
    last = mono_ms();
    while (mono_ms() < r->deadline) {
        uint64_t until = 0, now;
        int ok;
        if (!credential(k)) {
            k->failed++;
            sleep_until(mono_ms() + 50);
            continue;
        }
        /* The fleet's API budget, charged right before the request goes out
         * (a slot charged before a token wait would be sent late, in a later
         * window than the fleet counted it in). */
        now = mono_ms();
        if (fieldauth_worker_charge(&k->w, &k->session, &k->store, FIELDAUTH_BUDGET_API, now,
                                    unix_ms(), k->image, sizeof k->image, &until) != FIELDAUTH_OK) {
            k->failed++;
            break;
        }
        notices(k);
        if (until) {
            sleep_until(until);
            continue;
        }
        ok = api_call(k);
        if (ok < 0) continue;
        if (ok) {
            now = mono_ms();
            if (now - last > k->max_gap) k->max_gap = now - last;
            last = now;
            k->ok++;
        } else {
            k->failed++;
            sleep_until(mono_ms() + 50);
        }
    }
    printf("worker %lu %lu %llu\n", k->ok, k->failed, (unsigned long long)k->max_gap);
    fflush(stdout);
    worker_done(k);
    free(k);
    return NULL;
}

static int run_process(uint32_t threads, uint32_t fleet, uint64_t seconds) {
    pthread_t tid[64];
    struct run r;
    uint32_t i;
    if (threads > 64) threads = 64;
    r.fleet = fleet;
    r.deadline = mono_ms() + seconds * 1000u;
    for (i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, work, &r) != 0) return 1;
    for (i = 0; i < threads; i++) pthread_join(tid[i], NULL);
    return 0;
}

/* ------------------------------------------------------------ bootstrap */

/* The one login: authorization URL, the emulator's consent redirect, the
 * code exchange, saved as generation 1 by the worker that leads it. */
static int bootstrap(void) {
    struct worker *k = calloc(1, sizeof *k);
    uint8_t rnd[48], url[2048];
    char req[2560], resp[4096], *loc, *end;
    size_t len = 0;
    uint32_t turn = 0, adopted = 0, denied = 0;
    uint64_t until = 0, gen = 0;
    fieldauth_action a;
    int n, i, rc = 1;
    if (k == NULL || worker_init(k, 1) != 0) goto out;
    for (i = 0; i < (int)sizeof rnd; i += 8) {
        uint64_t r = random64();
        memcpy(rnd + i, &r, 8);
    }
    if (fieldauth_session_authorization_url(&k->session, rnd, 32, rnd + 32, 16, url, sizeof url,
                                            &len) != FIELDAUTH_OK)
        goto out;
    /* GET the URL's path and query (after "http://127.0.0.1:PORT"). */
    loc = memchr(url + 7, '/', len - 7);
    if (loc == NULL) goto out;
    n = snprintf(req, sizeof req, "GET %.*s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                 (int)(len - (size_t)((uint8_t *)loc - url)), loc, port);
    if (n <= 0 || (size_t)n >= sizeof req || roundtrip(req, (size_t)n, resp, sizeof resp) < 0)
        goto out;
    loc = strstr(resp, "\r\nLocation: ");
    if (loc == NULL) goto out;
    loc += 12;
    end = strstr(loc, "\r\n");
    if (end == NULL ||
        fieldauth_session_on_authorization_callback(&k->session, (const uint8_t *)loc,
                                                    (size_t)(end - loc), NULL, 0,
                                                    &denied) != FIELDAUTH_OK)
        goto out;
    if (fieldauth_session_poll(&k->session, mono_ms(), &a) != FIELDAUTH_OK ||
        a.kind != FIELDAUTH_ACTION_SEND_TOKEN_REQUEST ||
        fieldauth_worker_token_turn(&k->w, &k->session, &k->store, mono_ms(), unix_ms(), k->image,
                                    sizeof k->image, &turn, &until) != FIELDAUTH_OK ||
        turn != FIELDAUTH_TURN_LEAD)
        goto out;
    token_exchange(k);
    if (fieldauth_session_shared_generation(&k->session, &gen) != FIELDAUTH_OK || gen != 1)
        goto out;
    (void)adopted;
    printf("bootstrap generation %llu\n", (unsigned long long)gen);
    rc = 0;
out:
    if (rc) fprintf(stderr, "fleet: bootstrap failed\n");
    if (k) worker_done(k);
    free(k);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT STORE bootstrap | run PROCS THREADS SECONDS\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    store_path = argv[2];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/fentu", port);
    snprintf(down_path, sizeof down_path, "%s.down", store_path);
    if (strcmp(argv[3], "bootstrap") == 0) return bootstrap();
    if (strcmp(argv[3], "run") == 0 && argc == 7) {
        uint32_t procs = (uint32_t)atoi(argv[4]), threads = (uint32_t)atoi(argv[5]);
        uint64_t seconds = (uint64_t)atoi(argv[6]);
        uint32_t i;
        int status, bad = 0;
        fflush(stdout);
        for (i = 0; i < procs; i++) {
            pid_t pid = fork();
            if (pid < 0) return 1;
            if (pid == 0) _exit(run_process(threads, procs * threads, seconds));
        }
        while (wait(&status) > 0)
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bad = 1;
        return bad;
    }
    fprintf(stderr, "unknown mode %s\n", argv[3]);
    return 2;
}
