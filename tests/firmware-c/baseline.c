/*
 * Baseline image: the same startup, linker script and flags as main.c's
 * image, with a main that does nothing with fieldauth. The difference
 * between the two images is what fieldauth (and main.c's use of it) costs.
 * It starts and reads the tick counter as one_preset.c does, so startup.c's
 * counter code is in the baseline, not in the library's share.
 */
#include "fw.h"

int main(void);

int main(void) {
    fw_ticks_start();
    fw_print("baseline: ok\n");
    return (int)(fw_ticks() > 0x00FFFFFFu);
}
