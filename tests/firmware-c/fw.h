/* Services startup.c gives the firmware programs (no C library). */
#ifndef FW_H
#define FW_H

#include <stdint.h>

/* Prints a NUL-terminated string on the semihosting console. */
void fw_print(const char *s);

/* Ends the program with `status` (the QEMU exit status). */
void fw_exit(uint32_t status) __attribute__((noreturn));

/* Bytes of stack used so far (the deepest point reached since reset). */
uint32_t fw_stack_peak(void);

/* Starts SysTick as a free-running 24-bit down-counter on the processor
 * clock. Under QEMU with `-icount shift=0` the clock advances 1 ns per
 * instruction and mps2-an386's processor clock is 25 MHz, so one tick is
 * 40 instructions (ffi/tests/firmware_link.rs checks this against a loop
 * of known length). */
void fw_ticks_start(void);

/* Ticks since fw_ticks_start() (wraps after 2^24 ticks). */
uint32_t fw_ticks(void);

#endif /* FW_H */
