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

#endif /* FW_H */
