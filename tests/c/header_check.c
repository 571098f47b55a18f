/*
 * Compiles the header alone with -Wall -Wextra -Werror -pedantic as C99, C11
 * and C17, and (as header_check.cpp, a copy) as C++17. Uses the macros and
 * types a caller uses, so they are checked too. Checked by ffi/tests/header.rs.
 */
#include "fieldauth.h"
#include "fieldauth.h" /* include guard */

static fieldauth_session session;
static fieldauth_head head;
static fieldauth_body body;

static ptrdiff_t my_send(void *ctx, const uint8_t *buf, size_t len) {
    (void)ctx;
    (void)buf;
    return (ptrdiff_t)len;
}

static ptrdiff_t my_recv(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    (void)buf;
    (void)len;
    return FIELDAUTH_TRANSPORT_CLOSED;
}

int main(void) {
    fieldauth_str url = FIELDAUTH_STR("https://api.example.com");
    fieldauth_config cfg = {FIELDAUTH_STR("https://api.example.com"), {0, 0}, {0, 0}, {0, 0},
                            {0, 0}, {0, 0}, {0, 0}, {0, 0}, 0, 0, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    fieldauth_transport t;
    fieldauth_event ev;
    uint8_t buf[128];
    int sizes_ok = sizeof(fieldauth_session) == FIELDAUTH_SESSION_SIZE &&
                   sizeof(fieldauth_head) == FIELDAUTH_HEAD_SIZE &&
                   sizeof(fieldauth_body) == FIELDAUTH_BODY_SIZE &&
                   FIELDAUTH_SESSION_WORDS * 8 == FIELDAUTH_SESSION_SIZE;
    unsigned long long never = FIELDAUTH_NEVER;
    t.ctx = 0;
    t.send = my_send;
    t.recv = my_recv;
    (void)url;
    (void)body;
    (void)never;
    if (fieldauth_session_init_preset(&session, FIELDAUTH_PRESET_FENTU_API_KEY, &cfg, 1) !=
        FIELDAUTH_ERR_INPUT_MISSING)
        return 1;
    if (fieldauth_session_exchange(&session, &head, 0, &t, buf, sizeof buf, &ev) == FIELDAUTH_OK)
        return 1;
    return sizes_ok && FIELDAUTH_VERSION_NUMBER == fieldauth_version_number() ? 0 : 1;
}
