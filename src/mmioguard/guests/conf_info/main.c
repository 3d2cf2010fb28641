/*
 * Conformance: MMIO_GUARD_INFO and the protection granule (spec sections 3
 * and 6).
 *
 * Build with GRANULE=4096|16384|65536 and run the VM with the same granule.
 * Checks: INFO before and after enrollment returns the granule (x1..x3 = 0);
 * the guest client refuses to enroll when its page size differs from INFO
 * (and then nothing is enrolled); a mapping covers exactly one granule of
 * that size, aligned to it.
 */
#include "guest.h"

#ifndef GRANULE
#define GRANULE 4096
#endif

#define NR_TESTS 25
#define M1 0xffffffffffffffffUL
#define SENTINEL 0x5a5a5a5aU
/* Unassigned device space (no device: reads as zero when allowed). */
#define FREE_BASE 0x0a000000UL

static const unsigned long sizes[] = { SZ_4K, SZ_16K, SZ_64K };

/* Read 4 bytes at pa; returns true if it was aborted by the guard. */
static bool aborts(u64 pa, u64 *far)
{
	struct exception_info e;

	expect_exception();
	(void)readl_preset(__ioptr(pa), SENTINEL);
	e = take_exception();
	*far = e.far;
	return e.taken && e.esr == ESR_GUARD_DABT_EL1;
}

int main(u64 dtb)
{
	struct smccc_res r;
	char name[120];
	u64 far;
	int err;

	plan(NR_TESTS);
	diag("granule %lu", (unsigned long)GRANULE);

	r = smccc_hvc(MMIO_GUARD_INFO, 0x1111, 0x2222, 0x3333);
	is_eq("INFO before enrollment: x0 = granule", r.a0, GRANULE);
	is_eq("INFO before enrollment: x1..x3 zeroed", r.a1 | r.a2 | r.a3, 0);
	is_eq("INFO is stable", (u64)guard_info(), GRANULE);

	/* A guest whose page size differs from the granule must not enroll. */
	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		if (sizes[i] == GRANULE)
			continue;
		err = guard_init(sizes[i]);
		snprintf(name, sizeof(name), "guard_init(%lu) with granule %lu: GUARD_EGRANULE",
			 sizes[i], (unsigned long)GRANULE);
		is_eq(name, (u64)(s64)err, (u64)(s64)GUARD_EGRANULE);
		snprintf(name, sizeof(name), "after guard_init(%lu) failed: not enrolled (MAP -1)",
			 sizes[i]);
		ok(!guard_enrolled() && guard_map(FREE_BASE, 0) == -1, "%s", name);
	}

	err = guard_init(GRANULE);
	if (err == 0)
		uart_set_base(ioremap(UART_BASE, GRANULE));
	is_eq("guard_init(granule) enrolls", (u64)(s64)err, 0);
	is_eq("guard_granule() is the granule", guard_granule(), GRANULE);

	r = smccc_hvc(MMIO_GUARD_INFO, 0x1111, 0x2222, 0x3333);
	is_eq("INFO after enrollment: x0 = granule", r.a0, GRANULE);
	is_eq("INFO after enrollment: x1..x3 zeroed", r.a1 | r.a2 | r.a3, 0);

	/* Alignment is to this granule. */
	is_eq("MAP at granule / 2 is misaligned", (u64)guard_map(FREE_BASE + GRANULE / 2, 0), M1);
	if (GRANULE > SZ_4K)
		is_eq("MAP at a 4K-aligned, not granule-aligned address fails",
		      (u64)guard_map(FREE_BASE + SZ_4K, 0), M1);
	else
		is_eq("MAP at 2K is misaligned", (u64)guard_map(FREE_BASE + 0x800, 0), M1);
	is_eq("MAP of a granule-aligned address", (u64)guard_map(FREE_BASE, 0), 0);

	/* One MAP covers [base, base + granule): no more, no less. */
	ok(!aborts(FREE_BASE, &far), "first word of the mapped granule is reachable");
	ok(!aborts(FREE_BASE + GRANULE / 2, &far), "middle of the mapped granule is reachable");
	ok(!aborts(FREE_BASE + GRANULE - 4, &far), "last word of the mapped granule is reachable");
	ok(aborts(FREE_BASE + GRANULE, &far), "first word of the next granule aborts");
	is_eq("  its FAR", far, FREE_BASE + GRANULE);
	ok(aborts(FREE_BASE - 4, &far), "last word of the previous granule aborts");
	is_eq("  its FAR", far, FREE_BASE - 4);

	/* Devices inside one granule share its mapping. */
	is_eq("UART mapped through the client: refcount 1", guard_refcount(UART_BASE), 1);
	ok(aborts(RTC_BASE, &far), "RTC (in another granule than the UART) aborts: not mapped");
	is_eq("UNMAP of the granule", (u64)guard_unmap(FREE_BASE), 0);
	ok(aborts(FREE_BASE + GRANULE - 4, &far), "after UNMAP the granule aborts again");
	done();
}
