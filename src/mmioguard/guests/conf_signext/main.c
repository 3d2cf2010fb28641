/*
 * Conformance: sign-extending loads from device registers (LDRSB, LDRSH,
 * LDRSW, to X and to W registers, with immediate, unscaled and register
 * offsets) give the sign-extended value, before and after enrollment.
 *
 * Values come from the PrimeCell ID registers at 0xFE0..0xFFC of the PL011
 * (0x11 0x10 0x14 0x00 0x0D 0xF0 0x05 0xB1) and the PL031 (0x31 ...), where
 * 0xF0 and 0xB1 have bit 7 set, and from the PL031 load register, which holds
 * any 32-bit value.  Every destination starts as 0xa5a5a5a5a5a5a5a5, so a load
 * that writes a W register must clear bits 63..32.
 */
#include "guest.h"

#define NR_TESTS 64
#define JUNK 0xa5a5a5a5a5a5a5a5UL
#define UART(off) ((const volatile void *)(UART_BASE + (off)))
#define RTC(off) ((const volatile void *)(RTC_BASE + (off)))

#define LD(form, addr)                                                        \
	({                                                                    \
		u64 __v = JUNK;                                               \
		asm volatile(form : "+r"(__v) : "r"(addr) : "memory");        \
		__v;                                                          \
	})
#define LDX(form, addr, idx)                                                  \
	({                                                                    \
		u64 __v = JUNK;                                               \
		asm volatile(form : "+r"(__v) : "r"(addr), "r"((u64)(idx)) : "memory"); \
		__v;                                                          \
	})

static void id_registers(const char *when)
{
	char n[140];

#define T(what, got, want)                                        \
	do {                                                      \
		snprintf(n, sizeof(n), "%s: %s", when, what);     \
		is_eq(n, got, want);                              \
	} while (0)
	T("ldrsb x, UART 0xff4 (0xf0)", LD("ldrsb %x0, [%1]", UART(0xff4)), 0xfffffffffffffff0UL);
	T("ldrsb w, UART 0xff4 (0xf0)", LD("ldrsb %w0, [%1]", UART(0xff4)), 0x00000000fffffff0UL);
	T("ldrsb x, UART 0xffc (0xb1)", LD("ldrsb %x0, [%1]", UART(0xffc)), 0xffffffffffffffb1UL);
	T("ldrsb w, UART 0xffc (0xb1)", LD("ldrsb %w0, [%1]", UART(0xffc)), 0x00000000ffffffb1UL);
	T("ldrsb x, UART 0xfe0 (0x11, positive)", LD("ldrsb %x0, [%1]", UART(0xfe0)), 0x11);
	T("ldrsb x, UART 0xff5 (byte 1 of 0x000000f0)", LD("ldrsb %x0, [%1]", UART(0xff5)), 0);
	T("ldrsh x, UART 0xff4 (0x00f0, positive)", LD("ldrsh %x0, [%1]", UART(0xff4)), 0xf0);
	T("ldrsh w, UART 0xffc (0x00b1)", LD("ldrsh %w0, [%1]", UART(0xffc)), 0xb1);
	T("ldrsw x, UART 0xff4 (0x000000f0)", LD("ldrsw %x0, [%1]", UART(0xff4)), 0xf0);
	T("ldrsw x, UART 0xfe8 (0x14)", LD("ldrsw %x0, [%1]", UART(0xfe8)), 0x14);
	T("ldrsb x, [x, #0xff4] RTC (0xf0)", LD("ldrsb %x0, [%1, #0xff4]", RTC(0)),
	  0xfffffffffffffff0UL);
	T("ldursb x, [x, #-4] RTC 0xffc (0xb1)", LD("ldursb %x0, [%1, #-4]", RTC(0x1000)),
	  0xffffffffffffffb1UL);
	T("ldrsb w, [x, x] RTC 0xffc (0xb1)", LDX("ldrsb %w0, [%1, %2]", RTC(0xf00), 0xfc),
	  0x00000000ffffffb1UL);
	T("ldrsb x, RTC 0xfe0 (0x31)", LD("ldrsb %x0, [%1]", RTC(0xfe0)), 0x31);
	T("ldr x (8 bytes), UART 0xff0: 0x0d | 0xf0 << 32", LD("ldr %x0, [%1]", UART(0xff0)),
	  0x000000f00000000dUL);
	T("ldrb w (zero-extends), UART 0xffc", LD("ldrb %w0, [%1]", UART(0xffc)), 0xb1);
	T("ldrh w (zero-extends), UART 0xff4", LD("ldrh %w0, [%1]", UART(0xff4)), 0xf0);
#undef T
}

static void load_register(const char *when)
{
	volatile void *lr = (volatile void *)(RTC_BASE + 8);
	char n[140];

#define T(what, got, want)                                        \
	do {                                                      \
		snprintf(n, sizeof(n), "%s: %s", when, what);     \
		is_eq(n, got, want);                              \
	} while (0)
	writel(0x8000f0f0, lr);
	T("ldrsw x, RTC LR = 0x8000f0f0", LD("ldrsw %x0, [%1]", lr), 0xffffffff8000f0f0UL);
	T("ldrsh x, RTC LR low half 0xf0f0", LD("ldrsh %x0, [%1]", lr), 0xfffffffffffff0f0UL);
	T("ldrsh w, RTC LR low half 0xf0f0", LD("ldrsh %w0, [%1]", lr), 0x00000000fffff0f0UL);
	T("ldrsh x, RTC LR high half 0x8000", LD("ldrsh %x0, [%1, #2]", lr), 0xffffffffffff8000UL);
	T("ldursh x, [x, #-2] RTC LR high half", LD("ldursh %x0, [%1, #-2]", RTC(0xc)),
	  0xffffffffffff8000UL);
	T("ldrsb x, RTC LR byte 1 (0xf0)", LD("ldrsb %x0, [%1, #1]", lr), 0xfffffffffffffff0UL);
	T("ldrsb x, RTC LR byte 2 (0x00)", LD("ldrsb %x0, [%1, #2]", lr), 0);
	T("ldrsw x, [x, x, lsl #2] RTC LR", LDX("ldrsw %x0, [%1, %2, lsl #2]", RTC(0), 2),
	  0xffffffff8000f0f0UL);
	writel(0x7fff7f7f, lr);
	T("ldrsw x, RTC LR = 0x7fff7f7f (positive)", LD("ldrsw %x0, [%1]", lr), 0x7fff7f7f);
	T("ldrsh x, RTC LR low half 0x7f7f (positive)", LD("ldrsh %x0, [%1]", lr), 0x7f7f);
	T("ldrsb w, RTC LR byte 2 (0xff)", LD("ldrsb %w0, [%1, #2]", lr), 0xffffffffUL);
	writel(0xffffffff, lr);
	T("ldr w, RTC LR = 0xffffffff (no sign extension)", LD("ldr %w0, [%1]", lr),
	  0xffffffffUL);
	T("ldrsw x, RTC LR = 0xffffffff", LD("ldrsw %x0, [%1]", lr), 0xffffffffffffffffUL);
	T("ldr x (8 bytes), RTC LR | CR << 32", LD("ldr %x0, [%1]", lr), 0x00000001ffffffffUL);
#undef T
}

int main(u64 dtb)
{
	int err;

	plan(NR_TESTS);
	id_registers("not enrolled");
	load_register("not enrolled");
	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("enrolled", (u64)(s64)err, 0);
	ok(ioremap(RTC_BASE, SZ_4K) != NULL, "RTC mapped");
	id_registers("enrolled");
	load_register("enrolled");
	done();
}
