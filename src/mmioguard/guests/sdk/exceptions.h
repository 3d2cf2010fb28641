/*
 * Exception handling for tests.
 *
 * Every exception goes to handle_exception().  By default an exception is a
 * test failure: the SDK prints
 *     unexpected exception: vector 0x200 ESR 0x96000010 FAR 0x09010000 ELR 0x40080abc
 * followed by a line naming the exception class, then "FAIL", and powers off
 * with PSCI SYSTEM_OFF.
 *
 * To test an exception, arm the handler first:
 *
 *     expect_exception();
 *     val = readl_preset(addr, 0xdeadbeef);    // aborted by the hypervisor
 *     struct exception_info e = take_exception();
 *     if (e.taken && e.esr == ESR_GUARD_DABT_EL1 && e.far == addr) ...
 *
 * When an exception arrives on an armed CPU, the handler records it (in this
 * CPU's slot, returned by take_exception(), and in the global last_exception),
 * disarms, and resumes after the instruction that caused it: for a synchronous
 * exception ELR_EL1 += 4, except for SVC/HVC/SMC, whose ELR already points past
 * the instruction; asynchronous exceptions (IRQ, FIQ, SError) resume at ELR.
 * One expect_exception() covers one exception.  Arming is per CPU.
 *
 * EL0: run_at_el0(fn, arg) drops to EL0t, runs fn(arg) on this CPU's EL0 stack
 * and returns its result at EL1 (fn returns through SVC #0xe1e1, which the
 * handler turns into a return from run_at_el0()).  Exceptions from EL0 arrive
 * at vector 0x400 (synchronous) and follow the same armed/unexpected rules.
 * With the MMU on, fn's code and data must be EL0-accessible: the SDK's
 * identity map makes the whole RAM (but not the device window) accessible to
 * EL0; see mmu_set_user() for device pages.  With the MMU off, EL0 can access
 * everything.
 */
#ifndef MMIOGUARD_EXCEPTIONS_H
#define MMIOGUARD_EXCEPTIONS_H

#include "types.h"
#include "asm-defs.h"

/* Offsets in the vector table. */
#define VEC_CUR_SP0_SYNC 0x000
#define VEC_CUR_SP0_IRQ 0x080
#define VEC_CUR_SP0_FIQ 0x100
#define VEC_CUR_SP0_SERROR 0x180
#define VEC_CUR_SPX_SYNC 0x200 /* EL1h: the SDK runs here */
#define VEC_CUR_SPX_IRQ 0x280
#define VEC_CUR_SPX_FIQ 0x300
#define VEC_CUR_SPX_SERROR 0x380
#define VEC_LOWER64_SYNC 0x400 /* from EL0 (AArch64) */
#define VEC_LOWER64_IRQ 0x480
#define VEC_LOWER64_FIQ 0x500
#define VEC_LOWER64_SERROR 0x580
#define VEC_LOWER32_SYNC 0x600
#define VEC_LOWER32_IRQ 0x680
#define VEC_LOWER32_FIQ 0x700
#define VEC_LOWER32_SERROR 0x780

/* The interrupted context, as saved by vectors.S. */
struct exception_frame {
	u64 regs[31]; /* x0..x30 */
	u64 sp;       /* SP of the interrupted context (SP_EL0 for EL0/EL1t); read-only */
	u64 elr;      /* where execution resumes; writable */
	u64 spsr;     /* PSTATE to resume with; writable */
};

struct exception_info {
	bool taken;        /* an exception arrived since expect_exception() */
	unsigned int cpu;  /* CPU that took it */
	u32 vector;        /* offset in the vector table, 0x000..0x780 */
	u32 ec;            /* ESR_EL1.EC */
	u64 esr;           /* ESR_EL1 */
	u64 far;           /* FAR_EL1 (UNKNOWN for exceptions that do not set it) */
	u64 elr;           /* ELR_EL1 at entry: the faulting instruction for aborts */
	u64 spsr;          /* SPSR_EL1 at entry */
};

/* The most recent expected exception on any CPU. */
extern struct exception_info last_exception;
/* Exceptions taken since boot, all CPUs, expected or not (not counting the
 * SVC with which run_at_el0() returns). */
extern volatile u64 exception_count;

/* Arm this CPU's handler for one exception (clears the previous record). */
void expect_exception(void);
/* Whether an exception arrived on this CPU since expect_exception(). */
bool exception_taken(void);
/*
 * Return this CPU's record (taken == false if nothing arrived), clear it and
 * disarm.  Call it after every expect_exception(), also when nothing came.
 */
struct exception_info take_exception(void);

/*
 * Optional hook called for every exception before the armed/unexpected logic
 * (not for the EL0 return SVC).  Return true if it handled the exception (it
 * may then edit frame->elr/spsr/regs); false to continue with the default.
 * NULL removes it.  One hook for all CPUs.
 */
typedef bool (*exception_hook_t)(struct exception_frame *frame, u64 vector, u64 esr);
void set_exception_hook(exception_hook_t hook);

/* Human-readable name of an exception class. */
const char *esr_class_str(unsigned int ec);

/* Run fn(arg) at EL0 and return its result at EL1 (see above). */
u64 run_at_el0(u64 (*fn)(u64), u64 arg);

/* Called from vectors.S. */
void handle_exception(struct exception_frame *frame, u64 vector);

#endif
