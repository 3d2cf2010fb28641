/*
 * Conformance: the guest side of spec section 6, the SDK's reference-counted
 * ioremap()/iounmap() on the real hypervisor.
 *
 * Build with GRANULE=4096|65536 and run the VM with the same granule.  Every
 * hypercall goes through this guest's smccc_hvc(), which counts MAP and UNMAP
 * calls: MAP is made only for a granule's first reference, UNMAP only when the
 * last goes; two overlapping mappings do not unmap each other's granule; a
 * failed MAP (RAM, or the client's table full) fails the whole ioremap and
 * undoes what it did, leaving older references alone.
 */
#include "guest.h"

#ifndef GRANULE
#define GRANULE 4096
#endif

#define NR_TESTS 53
#define G ((u64)GRANULE)
#define FREE 0x0a000000UL
#define SENTINEL 0x5a5a5a5aU

static unsigned int nmap, nunmap;

/* The SDK's smccc_hvc() is weak: count the guard calls on their way. */
struct smccc_res smccc_hvc(u32 fid, u64 a1, u64 a2, u64 a3)
{
	if (fid == MMIO_GUARD_MAP)
		nmap++;
	else if (fid == MMIO_GUARD_UNMAP)
		nunmap++;
	return smccc_hvc_raw(fid, a1, a2, a3);
}

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

static void calls(const char *what, unsigned int maps, unsigned int unmaps)
{
	ok(nmap == maps && nunmap == unmaps, "%s: %u MAP and %u UNMAP calls (made %u and %u)",
	   what, maps, unmaps, nmap, nunmap);
	nmap = nunmap = 0;
}

int main(u64 dtb)
{
	void *p1, *p2, *q1, *q2, *r;
	int err;

	plan(NR_TESTS);
	err = guard_init(GRANULE);
	if (!err)
		uart_set_base(ioremap(UART_BASE, G));
	is_eq("enrolled", (u64)(s64)err, 0);
	calls("guard_init and ioremap of the UART", 1, 0);

	/* Two overlapping mappings of the RTC. */
	p1 = ioremap(RTC_BASE, 0x10);
	ok(p1 == (void *)RTC_BASE, "first ioremap of the RTC");
	is_eq("  refcount", guard_refcount(RTC_BASE), 1);
	calls("  first ioremap", 1, 0);
	p2 = ioremap(RTC_BASE + 8, 4);
	ok(p2 == (void *)(RTC_BASE + 8), "second, overlapping ioremap of the RTC");
	is_eq("  refcount", guard_refcount(RTC_BASE), 2);
	calls("  second ioremap: the granule is already mapped", 0, 0);
	iounmap(p2, 4);
	is_eq("one iounmap: refcount", guard_refcount(RTC_BASE), 1);
	calls("  one iounmap", 0, 0);
	writel(0x600dcafe, __ioptr(RTC_BASE + 8));
	is_eq("  the shared granule still works (RTC load register)", readl(__ioptr(RTC_BASE + 8)),
	      0x600dcafe);
	iounmap(p1, 0x10);
	is_eq("last iounmap: refcount", guard_refcount(RTC_BASE), 0);
	calls("  last iounmap", 0, 1);
	is_eq("  the RTC now aborts", (u64)(s64)probe(RTC_BASE + 8), 1);

	/* A range over two granules, and a mapping of its second granule. */
	q1 = ioremap(FREE + G - 8, 16);
	ok(q1 != NULL && guard_refcount(FREE) == 1 && guard_refcount(FREE + G) == 1,
	   "ioremap across two granules references both");
	calls("  ioremap across two granules", 2, 0);
	q2 = ioremap(FREE + G, 8);
	is_eq("ioremap of the second granule: refcount", guard_refcount(FREE + G), 2);
	calls("  no new MAP", 0, 0);
	iounmap(q1, 16);
	calls("iounmap of the two-granule range", 0, 1);
	is_eq("  first granule: refcount 0", guard_refcount(FREE), 0);
	is_eq("  first granule aborts", (u64)(s64)probe(FREE), 1);
	is_eq("  second granule: refcount 1", guard_refcount(FREE + G), 1);
	is_eq("  second granule still works", (u64)(s64)probe(FREE + G), 0);
	iounmap(q2, 8);
	calls("last iounmap of the second granule", 0, 1);
	is_eq("  second granule aborts", (u64)(s64)probe(FREE + G), 1);

	/* A failed MAP fails the mapping and undoes it. */
	ok(ioremap(RAM_BASE - G, 2 * G) == NULL, "ioremap running into RAM fails");
	calls("  MAP of the granule below RAM, MAP of RAM (refused), UNMAP to undo", 2, 1);
	is_eq("  granule below RAM: refcount 0", guard_refcount(RAM_BASE - G), 0);
	is_eq("  granule below RAM aborts", (u64)(s64)probe(RAM_BASE - G), 1);

	r = ioremap(RAM_BASE - 2 * G, G);
	ok(r != NULL, "ioremap of the second granule below RAM");
	calls("  ", 1, 0);
	ok(ioremap(RAM_BASE - 2 * G, 3 * G) == NULL, "ioremap of it and on into RAM fails");
	calls("  only the new granule is MAPped and undone", 2, 1);
	is_eq("  the older reference is left alone: refcount", guard_refcount(RAM_BASE - 2 * G), 1);
	is_eq("  and it still works", (u64)(s64)probe(RAM_BASE - 2 * G), 0);
	is_eq("  the granule below RAM: refcount 0", guard_refcount(RAM_BASE - G), 0);
	iounmap(r, G);
	calls("iounmap", 0, 1);

	/* Bad ranges: nothing is called. */
	ok(ioremap(FREE, 0) == NULL, "ioremap of 0 bytes fails");
	ok(ioremap(0xfffffffffffff000UL, 0x2000) == NULL, "ioremap of a wrapping range fails");
	calls("  without a call", 0, 0);
	iounmap((void *)(FREE + 8 * G), G);
	calls("iounmap of a range never mapped: no call", 0, 0);

	/* The client's table is full: the ioremap fails and is undone. */
	ok(ioremap(FREE, (GUARD_MAX_GRANULES - 1) * G) != NULL,
	   "ioremap of %d granules fills the table (with the UART)", GUARD_MAX_GRANULES - 1);
	calls("  one MAP each", GUARD_MAX_GRANULES - 1, 0);
	ok(ioremap(FREE + GUARD_MAX_GRANULES * G, G) == NULL,
	   "one more granule: table full, fails");
	calls("  without a MAP", 0, 0);
	iounmap((void *)FREE, G);
	calls("iounmap of the first granule frees one slot", 0, 1);
	ok(ioremap(FREE + (GUARD_MAX_GRANULES - 2) * G, 3 * G) == NULL,
	   "a range with one known and two new granules fails at the second new one");
	calls("  one MAP, one UNMAP to undo", 1, 1);
	is_eq("  the known granule keeps refcount 1",
	      guard_refcount(FREE + (GUARD_MAX_GRANULES - 2) * G), 1);
	is_eq("  the undone granule aborts",
	      (u64)(s64)probe(FREE + (GUARD_MAX_GRANULES - 1) * G), 1);
	iounmap((void *)FREE, (GUARD_MAX_GRANULES - 1) * G);
	calls("iounmap of the big range (its first granule already gone)", 0,
	      GUARD_MAX_GRANULES - 2);
	is_eq("  first granule aborts", (u64)(s64)probe(FREE), 1);
	is_eq("the UART is still referenced once", guard_refcount(UART_BASE), 1);
	done();
}
