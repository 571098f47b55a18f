/*
 * Baseline image: the same startup, linker script and flags as main.c's
 * image, with a main that does nothing with fieldauth. The difference
 * between the two images is what fieldauth (and main.c's use of it) costs.
 */
#include "fw.h"

int main(void);

int main(void) {
    fw_print("baseline: ok\n");
    return 0;
}
