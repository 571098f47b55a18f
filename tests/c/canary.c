/*
 * Deliberately broken program: proves that the instrumentation the C tests
 * rely on really catches errors. `canary heap` reads past a heap block
 * (AddressSanitizer, valgrind); `canary ub` overflows a signed int
 * (UndefinedBehaviorSanitizer). Built and run by ffi/tests/c_api.rs, which
 * expects these runs to FAIL.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "heap") == 0) {
        volatile char *p = malloc(8);
        int r;
        if (!p) return 2;
        r = p[argc + 8]; /* out of bounds: 8-byte block, index 10 */
        free((void *)p);
        printf("read %d\n", r);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "ub") == 0) {
        volatile int x = INT_MAX;
        x = x + argc; /* signed overflow */
        printf("x = %d\n", x);
        return 0;
    }
    return 3;
}
