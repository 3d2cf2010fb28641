/*
 * mmioguard native fast path: the guest clock and the architected virtual timer.
 *
 * Unicorn drops writes to CNTV_CTL_EL0 and CNTV_CVAL_EL0 and lets CNTVCT_EL0 follow host time,
 * so the VMM emulates the virtual timer: a UC_HOOK_INSN hook on MRS/MSR answers the timer
 * registers (every other system register is left to Unicorn), and a UC_HOOK_BLOCK hook counts
 * instructions and stops the emulator at the start of a block (a clean point: nothing of the
 * block has run) once the timer's deadline has passed or, when asked, once the guest unmasks
 * IRQs. Python reads the timer back after every stop and drives the interrupt line; the
 * reference model is mmioguard.hyp.timer.
 *
 *   mg_clock   the VM's counter, shared by its vCPUs: host time (ticks of 16 ns since creation)
 *              or, in icount mode, instructions << shift nanoseconds plus skipped idle time.
 *   mg_timer   one vCPU's CNTV_CTL/CNTV_CVAL, its deadline and why it last stopped the emulator;
 *              its address is the user_data of the hooks.
 *
 * Same rules as mgnative.h: not thread-safe, objects outlive the engines that call into them,
 * guest values are only compared and masked.
 */
#ifndef MMIOGUARD_TIMER_H
#define MMIOGUARD_TIMER_H

#include <stdint.h>

#include <unicorn/unicorn.h>

#define MG_CLOCK_REAL 0
#define MG_CLOCK_ICOUNT 1
#define MG_CLOCK_MAX_SHIFT 10u

/* Counter frequency: what Unicorn reports in CNTFRQ_EL0 (62.5 MHz, 16 ns a tick). */
#define MG_TICK_NS 16u

/* Why the timer's hooks last stopped the emulator (bits). */
#define MG_STOP_DEADLINE 1u
#define MG_STOP_UNMASKED 2u
#define MG_STOP_REQUESTED 4u
#define MG_STOP_NEED_BLOCK_HOOK 8u /* the guest armed the timer and no block hook is installed */
#define MG_STOP_ICACHE 16u /* the guest invalidated instruction caches (IC IVAU/IALLU/IALLUIS) */

struct mg_clock;
struct mg_timer;

struct mg_clock *mg_clock_create(int mode, unsigned shift);
int mg_clock_destroy(struct mg_clock *c);            /* -1 while timers use it */
uint64_t mg_clock_now(const struct mg_clock *c);     /* ticks; UINT64_MAX on a bad pointer */
uint64_t mg_clock_icount(const struct mg_clock *c);  /* instructions counted by block hooks */
int mg_clock_skip_to(struct mg_clock *c, uint64_t ticks); /* icount mode: idle until ticks */
int mg_clock_reset(struct mg_clock *c);              /* counter back to 0 (VM reset) */

struct mg_timer *mg_timer_create(uc_engine *uc, struct mg_clock *c);
int mg_timer_destroy(struct mg_timer *t);
/* out: ctl, cval, stop reasons (cleared by the call). 0, or -1 on a bad pointer. */
int mg_timer_get(struct mg_timer *t, uint64_t out[3]);
int mg_timer_set(struct mg_timer *t, uint64_t ctl, uint64_t cval);
/* MRS MPIDR_EL1 reads this (Unicorn ignores writes to MPIDR_EL1: every vCPU would be CPU 0). */
int mg_timer_set_mpidr(struct mg_timer *t, uint64_t mpidr);
/* Stop at the first block at or after the deadline (armed) or where PSTATE.I is clear
 * (watch_unmask). The hooks arm the timer again on every guest write to it. */
int mg_timer_control(struct mg_timer *t, int armed, int watch_unmask);
/* Whether the block hook is installed: it costs every block a helper call (about 5 ns), so the
 * VMM installs it only once the guest arms the timer; until then an MSR that arms it stops the
 * emulator (cleanly: PC is past the MSR) with MG_STOP_NEED_BLOCK_HOOK. */
int mg_timer_set_block_hook(struct mg_timer *t, int installed);
/* Stop at the start of the next block: a device raised an interrupt during an access, where
 * stopping at once would make Unicorn replay the instruction. */
int mg_timer_request_stop(struct mg_timer *t);
/* The instruction cache invalidation behind MG_STOP_ICACHE, cleared by the call: MG_ICACHE_NONE,
 * MG_ICACHE_LINE (IC IVAU: *va is its operand) or MG_ICACHE_ALL (IC IALLU, IALLUIS, or more
 * than one before the VMM looked); -1 on a bad pointer. */
#define MG_ICACHE_NONE 0
#define MG_ICACHE_LINE 1
#define MG_ICACHE_ALL 2
int mg_timer_icache(struct mg_timer *t, uint64_t *va);

/* Unicorn callbacks (user_data: the mg_timer). */
uint32_t mg_timer_mrs(uc_engine *uc, uc_arm64_reg reg, const uc_arm64_cp_reg *cp, void *user);
uint32_t mg_timer_msr(uc_engine *uc, uc_arm64_reg reg, const uc_arm64_cp_reg *cp, void *user);
void mg_timer_block(uc_engine *uc, uint64_t address, uint32_t size, void *user);
/* SYS (UC_ARM64_INS_SYS): an instruction cache invalidation stops the emulator (cleanly: PC is
 * past it) with MG_STOP_ICACHE and is recorded for mg_timer_icache. Unicorn treats IC as a
 * no-op and misses code written by another engine (and some written by its own), so the VMM
 * drops the translations it covers in every vCPU. Every other SYS instruction (DC ZVA,
 * TLBI...) is left to Unicorn. */
uint32_t mg_timer_sys(uc_engine *uc, uc_arm64_reg reg, const uc_arm64_cp_reg *cp, void *user);

#endif
