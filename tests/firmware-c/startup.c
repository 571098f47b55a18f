/*
 * Minimal Cortex-M4F startup for the fieldauth firmware link test: vector
 * table, reset handler (FPU on, .data copied from flash, .bss zeroed, stack
 * painted so main can measure its peak), main, then the exit status through
 * ARM semihosting (QEMU with -semihosting; on a board without a debugger
 * attached the BKPT would fault, so a real product replaces fw_exit()).
 *
 * No C library: the image links with -nostdlib. Every loop below writes
 * through volatile pointers so GCC cannot turn it into a memcpy/memset call.
 */
#include <stdint.h>

#include "fw.h"

/* Symbols from the linker script (sections.ld). */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _stack_top[];

int main(void);

/* Semihosting call (ARMv7-M: BKPT 0xAB; operation in r0, argument in r1). */
static uint32_t semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void fw_print(const char *s) { (void)semihost(0x04u /* SYS_WRITE0 */, s); }

void fw_exit(uint32_t status) {
    /* SYS_EXIT_EXTENDED: { ADP_Stopped_ApplicationExit, status } -> QEMU's
     * exit status is `status`. */
    const uint32_t block[2] = {0x20026u, status};
    (void)semihost(0x20u, block);
    for (;;) {
        __asm__ volatile("wfi");
    }
}

/* Stack painting: every word from the end of .bss up to just below the
 * reset handler's frame holds this pattern until something uses it. */
#define STACK_PAINT 0xA5C3A5C3u

uint32_t fw_stack_peak(void) {
    const volatile uint32_t *p = (const volatile uint32_t *)_ebss;
    while (p < (const volatile uint32_t *)_stack_top && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)_stack_top - (uintptr_t)p);
}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

void fw_ticks_start(void) {
    SYST_CSR = 0u;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;        /* any write clears it; it reloads on the next tick */
    SYST_CSR = 5u;        /* ENABLE | CLKSOURCE (processor clock), no interrupt */
}

uint32_t fw_ticks(void) { return (0x00FFFFFFu - SYST_CVR) & 0x00FFFFFFu; }

void Reset_Handler(void);

void Reset_Handler(void) {
    /* CPACR: full access to CP10/CP11 (the FPU) before any hard-float code. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    volatile uint32_t *src = _sidata;
    volatile uint32_t *dst = _sdata;
    while (dst < (volatile uint32_t *)_edata) {
        *dst++ = *src++;
    }
    for (dst = _sbss; dst < (volatile uint32_t *)_ebss; dst++) {
        *dst = 0;
    }
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = _ebss; (uintptr_t)dst < sp - 64u; dst++) {
        *dst = STACK_PAINT;
    }

    fw_exit((uint32_t)main());
}

/* Any fault or unexpected interrupt: report it as exit status 255. */
static void Fault_Handler(void) {
    fw_print("firmware: fault\n");
    fw_exit(255u);
}

/* The vector table: initial stack pointer, reset, then the 14 system
 * exceptions (NMI ... SysTick). Device interrupts are not used. */
typedef void (*vector)(void);

__attribute__((section(".isr_vector"), used)) const vector vector_table[16] = {
    (vector)(uintptr_t)_stack_top,
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0,
    0,
    0,
    0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};
