/*
 * Conformance: PSCI SYSTEM_RESET clears the enrollment and forgets every
 * mapping (spec section 3).
 *
 * RAM is reloaded at a reset, so the guest counts its boots in the PL031 load
 * register (offset 8), which survives one (the data register reads it plus
 * the seconds elapsed).  Boot 1 enrolls, maps the UART, the RTC and a granule
 * of unassigned space, checks they work, stores its results in the load
 * register and resets.  Boot 2 prints the TAP stream: boot 1's results, then
 * that MAP and UNMAP fail (not enrolled), that every device is reachable again
 * (not enrolled), and, after enrolling again, that every granule mapped
 * before the reset aborts until it is mapped again.
 */
#include "guest.h"

#define NR_TESTS 25
#define MAGIC 0x5e5e0000U
#define MAGIC_MASK 0xffff0000U
#define M1 0xffffffffffffffffUL
#define FREE 0x0a000000UL
#define SENTINEL 0x5a5a5a5aU

/* Boot 1 results, one bit each in LR[15:8] (set = failed). */
#define B1_INIT 0
#define B1_UART 1
#define B1_RTC 2
#define B1_FREE 3
#define B1_REACH 4
#define B1_ENROLL_AGAIN 5

static volatile void *const rtc_lr = (volatile void *)(RTC_BASE + 8);

/* 1: aborted by the guard; 0: reached; -1: other. */
static int probe(u64 pa)
{
	struct exception_info e;

	expect_exception();
	(void)readl_preset(__ioptr(pa), SENTINEL);
	e = take_exception();
	if (!e.taken)
		return 0;
	return e.esr == ESR_GUARD_DABT_EL1 && e.far == pa ? 1 : -1;
}

static __noreturn void boot1(void)
{
	u32 failed = 0;
	int err = guard_init(SZ_4K);

	if (err)
		failed |= 1U << B1_INIT;
	if (!ioremap(UART_BASE, SZ_4K))
		failed |= 1U << B1_UART;
	else
		uart_set_base(__ioptr(UART_BASE));
	if (!ioremap(RTC_BASE, SZ_4K))
		failed |= 1U << B1_RTC;
	if (guard_map(FREE, 0) != 0)
		failed |= 1U << B1_FREE;
	if (probe(FREE) != 0 || probe(RTC_BASE) != 0 || probe(UART_BASE + 0xfe0) != 0)
		failed |= 1U << B1_REACH;
	if (guard_enroll() != 0)
		failed |= 1U << B1_ENROLL_AGAIN;
	diag("boot 1: enrolled, UART, RTC and 0x%lx mapped (failures 0x%x); PSCI SYSTEM_RESET",
	     FREE, failed);
	writel(MAGIC | (failed << 8) | 1, rtc_lr);
	psci_system_reset();
}

static void report_boot1(u32 lr)
{
	u32 failed = (lr >> 8) & 0xff;

	is_eq("boot 1: guard_init enrolled", (failed >> B1_INIT) & 1, 0);
	is_eq("boot 1: UART mapped", (failed >> B1_UART) & 1, 0);
	is_eq("boot 1: RTC mapped", (failed >> B1_RTC) & 1, 0);
	is_eq("boot 1: MAP of unassigned space", (failed >> B1_FREE) & 1, 0);
	is_eq("boot 1: all three reachable", (failed >> B1_REACH) & 1, 0);
	is_eq("boot 1: ENROLL again (idempotent)", (failed >> B1_ENROLL_AGAIN) & 1, 0);
}

int main(u64 dtb)
{
	u32 lr = readl(rtc_lr);
	s64 enroll;
	int rtc, uart, free_;

	if ((lr & MAGIC_MASK) != MAGIC)
		boot1();
	plan(NR_TESTS);
	is_eq("this is boot 2 (boot count in the RTC load register)", lr & 0xff, 1);
	if ((lr & 0xff) != 1)
		done(); /* never loop through resets */
	writel(MAGIC | 2, rtc_lr);
	report_boot1(lr);

	/* After the reset: not enrolled. */
	is_eq("INFO still answers", (u64)guard_info(), SZ_4K);
	ok(!guard_enrolled(), "the guest's client starts afresh (RAM was reloaded)");
	is_eq("MAP of the RTC fails: the reset cleared the enrollment",
	      (u64)guard_map(RTC_BASE, 0), M1);
	is_eq("UNMAP of the RTC fails: not enrolled", (u64)guard_unmap(RTC_BASE), M1);
	is_eq("MAP of unassigned space fails", (u64)guard_map(FREE, 0), M1);
	is_eq("not enrolled: the RTC is reachable", (u64)(s64)probe(RTC_BASE), 0);
	is_eq("not enrolled: unassigned space is reachable", (u64)(s64)probe(FREE), 0);
	is_eq("RTC load register holds boot 2's count", readl(rtc_lr), MAGIC | 2);

	/* Enroll again: the mappings of boot 1 are gone. */
	enroll = guard_enroll();
	rtc = probe(RTC_BASE);
	uart = probe(UART_BASE + 0xfe0);
	free_ = probe(FREE);
	if (guard_init(SZ_4K) == 0)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("ENROLL after the reset", (u64)enroll, 0);
	is_eq("the RTC, mapped before the reset, aborts", (u64)(s64)rtc, 1);
	is_eq("the UART, mapped before the reset, aborts", (u64)(s64)uart, 1);
	is_eq("unassigned space, mapped before the reset, aborts", (u64)(s64)free_, 1);
	is_eq("UNMAP of the RTC fails: not mapped any more", (u64)guard_unmap(RTC_BASE), M1);
	is_eq("UNMAP of the unassigned granule fails: not mapped", (u64)guard_unmap(FREE), M1);
	ok(guard_refcount(UART_BASE) == 1, "the UART mapped again");
	is_eq("MAP of the RTC works again", (u64)guard_map(RTC_BASE, 0), 0);
	is_eq("the RTC is reachable again", (u64)(s64)probe(RTC_BASE), 0);
	is_eq("the unassigned granule still aborts", (u64)(s64)probe(FREE), 1);
	done();
}
