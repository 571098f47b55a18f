/* A minimal fieldauth consumer: an API-key session authorizes one request. */
#include <stdio.h>
#include <string.h>

#include "fieldauth.h"

static fieldauth_session session;

int main(void) {
    fieldauth_config cfg;
    fieldauth_authorization au;
    uint8_t line[128];
    size_t n = 0;
    fieldauth_status st;

    if (fieldauth_version_number() != FIELDAUTH_VERSION_NUMBER ||
        fieldauth_session_sizeof() != sizeof(fieldauth_session)) {
        fprintf(stderr, "header and library do not match\n");
        return 1;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.base_url.ptr = (const uint8_t *)"https://api.fentu.example";
    cfg.base_url.len = strlen("https://api.fentu.example");
    cfg.api_key.ptr = (const uint8_t *)"demo-key";
    cfg.api_key.len = 8;
    st = fieldauth_session_init_preset(&session, FIELDAUTH_PRESET_FENTU_API_KEY, &cfg, 1);
    if (st == FIELDAUTH_OK)
        st = fieldauth_session_authorize(&session, 0, NULL, 0, line, sizeof line, &n, &au);
    if (st != FIELDAUTH_OK) {
        fprintf(stderr, "fieldauth: %s\n", fieldauth_status_message(st));
        return 1;
    }
    printf("fieldauth %s: %.*s", fieldauth_version(), (int)n, (const char *)line);
    if (fieldauth_session_clear(&session) != FIELDAUTH_OK) return 1;
    return n == strlen("Authorization: Bearer demo-key\r\n") ? 0 : 1;
}
