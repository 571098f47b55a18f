/* Must NOT compile with -Werror: a fieldauth_status is ignored
 * (FIELDAUTH_MUST_USE = warn_unused_result). Checked by ffi/tests/header.rs. */
#include "fieldauth.h"

static fieldauth_head head;

int main(void) {
    fieldauth_head_init(&head);
    return 0;
}
