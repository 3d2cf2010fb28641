/*
 * Device register accessors.
 *
 * Every accessor is exactly one load or store instruction with a plain base
 * register address ([xN], no offset, no writeback) from/to a general-purpose
 * register: the form the hardware describes with a valid instruction syndrome
 * (ISV=1), which is the only form an MMIO-guarded hypervisor can emulate.
 * Never touch device memory through a plain C pointer: the compiler is free to
 * merge accesses into LDP/STP, use writeback addressing or SIMD registers, and
 * the hypervisor aborts all of those.
 *
 * The *_preset variants load into a register that already holds `preset`; if
 * the load is aborted and skipped (an expected exception resumes after the
 * faulting instruction), the function returns `preset`, which shows that the
 * destination register was left unchanged.
 *
 * The nisv_* helpers (nisv.S) deliberately perform syndrome-less (ISV=0)
 * accesses to `addr`, for tests of the guard's rule 3.  Each is a tiny
 * function that performs exactly one such access and returns.
 */
#ifndef MMIOGUARD_IO_H
#define MMIOGUARD_IO_H

#include "types.h"

static inline u8 readb(const volatile void *addr)
{
	u32 val;
	asm volatile("ldrb %w0, [%1]" : "=r"(val) : "r"(addr) : "memory");
	return (u8)val;
}

static inline u16 readw(const volatile void *addr)
{
	u32 val;
	asm volatile("ldrh %w0, [%1]" : "=r"(val) : "r"(addr) : "memory");
	return (u16)val;
}

static inline u32 readl(const volatile void *addr)
{
	u32 val;
	asm volatile("ldr %w0, [%1]" : "=r"(val) : "r"(addr) : "memory");
	return val;
}

static inline u64 readq(const volatile void *addr)
{
	u64 val;
	asm volatile("ldr %x0, [%1]" : "=r"(val) : "r"(addr) : "memory");
	return val;
}

static inline void writeb(u8 val, volatile void *addr)
{
	asm volatile("strb %w0, [%1]" : : "rZ"((u32)val), "r"(addr) : "memory");
}

static inline void writew(u16 val, volatile void *addr)
{
	asm volatile("strh %w0, [%1]" : : "rZ"((u32)val), "r"(addr) : "memory");
}

static inline void writel(u32 val, volatile void *addr)
{
	asm volatile("str %w0, [%1]" : : "rZ"(val), "r"(addr) : "memory");
}

static inline void writeq(u64 val, volatile void *addr)
{
	asm volatile("str %x0, [%1]" : : "rZ"(val), "r"(addr) : "memory");
}

static inline u8 readb_preset(const volatile void *addr, u8 preset)
{
	u32 val = preset;
	asm volatile("ldrb %w0, [%1]" : "+r"(val) : "r"(addr) : "memory");
	return (u8)val;
}

static inline u16 readw_preset(const volatile void *addr, u16 preset)
{
	u32 val = preset;
	asm volatile("ldrh %w0, [%1]" : "+r"(val) : "r"(addr) : "memory");
	return (u16)val;
}

static inline u32 readl_preset(const volatile void *addr, u32 preset)
{
	u32 val = preset;
	asm volatile("ldr %w0, [%1]" : "+r"(val) : "r"(addr) : "memory");
	return val;
}

static inline u64 readq_preset(const volatile void *addr, u64 preset)
{
	u64 val = preset;
	asm volatile("ldr %x0, [%1]" : "+r"(val) : "r"(addr) : "memory");
	return val;
}

/* Accessors taking a physical address as an integer (identity mapping). */
#define __ioptr(pa) ((volatile void *)(uintptr_t)(pa))

/*
 * Syndrome-less (ISV=0) accesses, for guard tests (nisv.S).  Loads return
 * `preset` when the access is aborted and skipped.
 */
u64 nisv_ldp(const volatile void *addr, u64 preset);          /* ldp x, x, [addr] */
void nisv_stp(volatile void *addr, u64 val);                  /* stp x, x, [addr] */
u64 nisv_ldr_post(const volatile void *addr, u64 preset);     /* ldr x, [addr], #8 */
u64 nisv_ldr_pre(const volatile void *addr, u64 preset);      /* ldr x, [addr, #0]! */
void nisv_str_post(volatile void *addr, u64 val);             /* str x, [addr], #8 */
u32 nisv_ldxr(const volatile void *addr, u32 preset);         /* ldxr w, [addr] */
u32 nisv_ldadd(volatile void *addr, u32 val, u32 preset);     /* ldadd (needs LSE, ARMv8.1) */
u32 nisv_ldr_simd(const volatile void *addr, u32 preset);     /* ldr s0, [addr] (needs FP on) */
void nisv_str_simd(volatile void *addr, u32 val);             /* str s0, [addr] (needs FP on) */

/* Enable/disable FP/SIMD at EL1 and EL0 (CPACR_EL1.FPEN); off at boot. */
void fpsimd_enable(void);
void fpsimd_disable(void);

#endif
