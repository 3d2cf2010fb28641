/*
 * Conformance: an access that crosses from one granule into the next (spec
 * section 4, rule 2) is forwarded only if both granules are mapped.
 *
 * Unaligned accesses are legal only on Normal memory, so the guest turns the
 * MMU on (4K granule: 64K stage-1 tables do not work under Unicorn 2.1.4) and
 * maps unassigned device space at 0x0a000000 as Normal.  No device lives
 * there: a forwarded read returns zero, a forwarded write is dropped.  Each
 * case uses its own pair of granules so that the VMM's trace can tell them
 * apart (tests/test_conformance.py checks that the aborted ones never reached
 * the VMM).  DEVICE_EDGE=1 runs the same rule at the edges of the RTC's
 * granule instead.
 */
#include "guest.h"

#ifndef DEVICE_EDGE
#define DEVICE_EDGE 0
#endif

#define NR_TESTS 32
#define FREE 0x0a000000UL
#define G SZ_4K
#define SENTINEL 0xfeedfacecafef00dUL

/* 1: aborted by the guard with FAR = pa, register unchanged; 0: reached (read
 * zero); -1: anything else. */
static int load(u64 pa, unsigned int size)
{
	struct exception_info e;
	u64 v;

	expect_exception();
	switch (size) {
	case 8: v = readq_preset(__ioptr(pa), SENTINEL); break;
	case 4: v = readl_preset(__ioptr(pa), (u32)SENTINEL); break;
	default: v = readw_preset(__ioptr(pa), (u16)SENTINEL); break;
	}
	e = take_exception();
	if (!e.taken)
		return v == 0 ? 0 : -1;
	if (e.esr == ESR_GUARD_DABT_EL1 && e.far == pa &&
	    v == (SENTINEL & (size == 8 ? ~0UL : (1UL << (8 * size)) - 1)))
		return 1;
	diag("load 0x%lx: ESR 0x%lx FAR 0x%lx value 0x%lx", pa, e.esr, e.far, v);
	return -1;
}

static int store(u64 pa, unsigned int size)
{
	struct exception_info e;

	expect_exception();
	if (size == 8)
		writeq(SENTINEL, __ioptr(pa));
	else
		writel((u32)SENTINEL, __ioptr(pa));
	e = take_exception();
	if (!e.taken)
		return 0;
	if (e.esr == ESR_GUARD_DABT_EL1 && e.far == pa)
		return 1;
	diag("store 0x%lx: ESR 0x%lx FAR 0x%lx", pa, e.esr, e.far);
	return -1;
}

#define ABORTED(what, r) is_eq(what ": aborted (ESR 0x96000010, FAR, register unchanged)", r, 1)
#define REACHED(what, r) is_eq(what ": forwarded", r, 0)

/*
 * DEVICE_EDGE=1: the same rule at the edge of a real device's granule (the
 * RTC, mapped Normal at stage 1), where the emulator splits unaligned device
 * accesses into pieces.  Run separately (see tests/test_conformance.py).
 */
static int device_edge_main(void)
{
	u64 v, dr;
	int err;

	plan(11);
	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("enrolled", (u64)(s64)err, 0);
	mmu_map_normal(RTC_BASE - G, 3 * G);
	is_eq("MMU on, the RTC and its neighbours mapped Normal", (u64)(s64)mmu_enable(SZ_4K), 0);
	is_eq("MAP of the RTC only", (u64)guard_map(RTC_BASE, 0), 0);
	ABORTED("device edge: 8-byte load at RTC+0xffc, next granule unmapped",
		(u64)(s64)load(RTC_BASE + 0xffc, 8));
	ABORTED("device edge: 8-byte store at RTC+0xffc, next granule unmapped",
		(u64)(s64)store(RTC_BASE + 0xffc, 8));
	v = readq_preset(__ioptr(RTC_BASE + 0xff3), SENTINEL);
	is_eq("device edge: 8-byte load at RTC+0xff3, inside the granule: ID bytes", v,
	      0x000005000000f000UL);
	REACHED("device edge: 8-byte store at RTC+0xff3, inside the granule",
		(u64)(s64)store(RTC_BASE + 0xff3, 8));
	is_eq("MAP of the granule after the RTC", (u64)guard_map(RTC_BASE + G, 0), 0);
	is_eq("device edge: 8-byte load at RTC+0xffc, both mapped: 0xb1 then zeros",
	      readq_preset(__ioptr(RTC_BASE + 0xffc), SENTINEL), 0xb1);
	is_eq("MAP of the granule before the RTC", (u64)guard_map(RTC_BASE - G, 0), 0);
	writel(0x1000, __ioptr(RTC_BASE + 8)); /* the data register reads 0x1000 + seconds */
	v = readq_preset(__ioptr(RTC_BASE - 4), SENTINEL);
	dr = readl(__ioptr(RTC_BASE));
	ok((u32)v == 0 && (v >> 32) >= 0x1000 && (v >> 32) <= dr,
	   "device edge: 8-byte load at RTC-4, both mapped: zeros then the RTC data register "
	   "(got 0x%lx, DR 0x%lx)", v, dr);
	mmu_disable();
	done();
}

int main(u64 dtb)
{
	int err;

	if (DEVICE_EDGE)
		return device_edge_main();
	plan(NR_TESTS);
	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("enrolled", (u64)(s64)err, 0);
	mmu_map_normal(FREE, 16 * G);
	is_eq("MMU on, 4K granule, 0x0a000000.. mapped Normal", (u64)(s64)mmu_enable(SZ_4K), 0);

	/* Pair 0 (0x0a000000, 0x0a001000): neither mapped. */
	ABORTED("8 bytes at 0x0a000ffc, neither granule mapped", (u64)(s64)load(FREE + 0xffc, 8));

	/* Pair 1 (0x0a002000, 0x0a003000): only the first mapped. */
	is_eq("MAP 0x0a002000", (u64)guard_map(FREE + 0x2000, 0), 0);
	ABORTED("8-byte load at 0x0a002ffc, only the first granule mapped",
		(u64)(s64)load(FREE + 0x2ffc, 8));
	ABORTED("4-byte load at 0x0a002ffe, only the first mapped",
		(u64)(s64)load(FREE + 0x2ffe, 4));
	ABORTED("2-byte load at 0x0a002fff, only the first mapped",
		(u64)(s64)load(FREE + 0x2fff, 2));
	ABORTED("8-byte store at 0x0a002ff9, only the first mapped",
		(u64)(s64)store(FREE + 0x2ff9, 8));
	REACHED("unaligned 8 bytes at 0x0a002ff1, inside the first granule",
		(u64)(s64)load(FREE + 0x2ff1, 8));
	REACHED("unaligned 8-byte store at 0x0a002ff3, inside the first granule",
		(u64)(s64)store(FREE + 0x2ff3, 8));

	/* Pair 2 (0x0a004000, 0x0a005000): only the second mapped. */
	is_eq("MAP 0x0a005000", (u64)guard_map(FREE + 0x5000, 0), 0);
	ABORTED("8-byte load at 0x0a004ffc, only the second granule mapped",
		(u64)(s64)load(FREE + 0x4ffc, 8));
	ABORTED("4-byte load at 0x0a004ffd, only the second mapped",
		(u64)(s64)load(FREE + 0x4ffd, 4));
	ABORTED("4-byte store at 0x0a004ffe, only the second mapped",
		(u64)(s64)store(FREE + 0x4ffe, 4));
	REACHED("unaligned 8 bytes at 0x0a005001, inside the second granule",
		(u64)(s64)load(FREE + 0x5001, 8));

	/* Pair 3 (0x0a006000, 0x0a007000): both mapped. */
	is_eq("MAP 0x0a006000", (u64)guard_map(FREE + 0x6000, 0), 0);
	is_eq("MAP 0x0a007000", (u64)guard_map(FREE + 0x7000, 0), 0);
	REACHED("8-byte load at 0x0a006ffc, both granules mapped",
		(u64)(s64)load(FREE + 0x6ffc, 8));
	REACHED("4-byte load at 0x0a006ffe, both mapped", (u64)(s64)load(FREE + 0x6ffe, 4));
	REACHED("2-byte load at 0x0a006fff, both mapped", (u64)(s64)load(FREE + 0x6fff, 2));
	REACHED("8-byte store at 0x0a006ff9, both mapped", (u64)(s64)store(FREE + 0x6ff9, 8));
	REACHED("4-byte store at 0x0a006ffd, both mapped", (u64)(s64)store(FREE + 0x6ffd, 4));

	/* Pair 4 (0x0a008000, 0x0a009000): both mapped, then the second unmapped. */
	is_eq("MAP 0x0a008000", (u64)guard_map(FREE + 0x8000, 0), 0);
	is_eq("MAP 0x0a009000", (u64)guard_map(FREE + 0x9000, 0), 0);
	REACHED("8-byte load at 0x0a008ffc, both mapped", (u64)(s64)load(FREE + 0x8ffc, 8));
	is_eq("UNMAP 0x0a009000", (u64)guard_unmap(FREE + 0x9000), 0);
	ABORTED("8-byte load at 0x0a008ffd, second granule unmapped again",
		(u64)(s64)load(FREE + 0x8ffd, 8));
	REACHED("8-byte load at 0x0a008ff8, aligned, inside the first",
		(u64)(s64)load(FREE + 0x8ff8, 8));

	/* Pair 5: an aligned access never straddles; the granule of its first byte decides. */
	is_eq("MAP 0x0a00b000", (u64)guard_map(FREE + 0xb000, 0), 0);
	ABORTED("8 bytes at 0x0a00aff8 (aligned, last of the unmapped granule)",
		(u64)(s64)load(FREE + 0xaff8, 8));
	REACHED("8 bytes at 0x0a00b000 (aligned, first of the mapped granule)",
		(u64)(s64)load(FREE + 0xb000, 8));

	mmu_disable();
	ok(!mmu_enabled(), "MMU off again");
	done();
}
