/*
 * Conformance: MMIO_GUARD_ENROLL, _MAP and _UNMAP, every failure and success
 * case of spec section 3, and what each does to accesses (section 4).
 *
 * Defines (the VM must be run with the matching settings):
 *   GRANULE=4096|16384|65536   granule=
 *   IPA_BITS=32..52            ipa_bits=
 *   CHECK_MAIR=0|1             check_mair=
 *   CAPACITY=n                 guard_capacity= (granules before MAP is "out of memory")
 */
#include "guest.h"

#ifndef GRANULE
#define GRANULE 4096
#endif
#ifndef IPA_BITS
#define IPA_BITS 40
#endif
#ifndef CHECK_MAIR
#define CHECK_MAIR 0
#endif
#ifndef CAPACITY
#define CAPACITY 16
#endif

#define NR_TESTS 70
#define M1 0xffffffffffffffffUL
#define SENTINEL 0x5a5a5a5aU
#define G ((u64)GRANULE)
/* Unassigned device space: no device, reads as zero when forwarded. */
#define FREE_BASE 0x0a000000UL
#define RAM_SIZE SZ_128M /* the VM's default memory */
#define IPA_LIMIT (1UL << IPA_BITS)

static void call_is(const char *what, u32 fid, u64 ipa, u64 want)
{
	struct smccc_res r = smccc_hvc(fid, ipa, 0, 0x3333);
	char name[140];

	snprintf(name, sizeof(name), "%s", what);
	is_eq(name, r.a0, want);
	if (r.a1 | r.a2 | r.a3) /* only reported when wrong: keeps the plan fixed */
		ok(false, "%s: x1..x3 not zeroed (0x%lx 0x%lx 0x%lx)", what, r.a1, r.a2, r.a3);
}

static void map_is(const char *what, u64 ipa, u64 want)
{
	char name[140];

	snprintf(name, sizeof(name), "MAP 0x%lx: %s", ipa, what);
	call_is(name, MMIO_GUARD_MAP, ipa, want);
}

static void unmap_is(const char *what, u64 ipa, u64 want)
{
	char name[140];

	snprintf(name, sizeof(name), "UNMAP 0x%lx: %s", ipa, what);
	call_is(name, MMIO_GUARD_UNMAP, ipa, want);
}

static void mair_is(const char *what, u64 idx, u64 want)
{
	char name[140];

	snprintf(name, sizeof(name), "MAP x2=%lu: %s", idx, what);
	is_eq(name, (u64)smccc_hvc(MMIO_GUARD_MAP, FREE_BASE, idx, 0).a0, want);
	guard_unmap(FREE_BASE);
}

/* 1: aborted by the guard (right ESR and FAR), 0: reached, -1: anything else. */
static int probe(u64 pa)
{
	struct exception_info e;
	u32 v;

	expect_exception();
	v = readl_preset(__ioptr(pa), SENTINEL);
	e = take_exception();
	if (!e.taken)
		return v == SENTINEL ? -1 : 0;
	if (e.esr == ESR_GUARD_DABT_EL1 && e.far == pa && v == SENTINEL)
		return 1;
	diag("probe 0x%lx: ESR 0x%lx FAR 0x%lx value 0x%x", pa, e.esr, e.far, v);
	return -1;
}

static void reachable(const char *what, u64 pa)
{
	ok(probe(pa) == 0, "access 0x%lx reaches the VMM: %s", pa, what);
}

static void aborted(const char *what, u64 pa)
{
	ok(probe(pa) == 1, "access 0x%lx aborted (ESR 0x96000010, FAR): %s", pa, what);
}

static void test_mair(void)
{
#if CHECK_MAIR
	u64 mair = read_sysreg(mair_el1);

	mair_is("Device-nGnRE (0x04) accepted", 0, 0);
	mair_is("Normal WB (0xff) refused", 1, M1);
	mair_is("Device-nGnRnE (0x00) accepted", 2, 0);
	mair_is("Normal NC (0x44) refused", 3, M1);
	mair_is("index 8 is not 0..7", 8, M1);
	write_sysreg((mair & ~0xff0000000000UL) | (0x08UL << 40), mair_el1);
	mair_is("Device-nGRE (0x08) in MAIR_EL1 byte 5 accepted", 5, 0);
	write_sysreg((mair & ~0xff0000000000UL) | (0x0cUL << 40), mair_el1);
	mair_is("Device-GRE (0x0c) in MAIR_EL1 byte 5 accepted", 5, 0);
	write_sysreg((mair & ~0xffUL) | 0x44, mair_el1);
	mair_is("MAIR_EL1 is read at the call: byte 0 now Normal, refused", 0, M1);
	write_sysreg(mair, mair_el1);
	mair_is("MAIR_EL1 restored: byte 0 Device again", 0, 0);
#else
	mair_is("kvm-v2 ignores x2 (Normal WB index)", 1, 0);
	mair_is("kvm-v2 ignores x2 (Normal NC index)", 3, 0);
	mair_is("kvm-v2 ignores x2 (index 8)", 8, 0);
	mair_is("kvm-v2 ignores x2 (raw page protection bits)", 0x60000000000fc3UL, 0);
	mair_is("kvm-v2 ignores x2 (-1)", M1, 0);
	ok(true, "(padding: the strict MAIR check is off)");
	ok(true, "(padding: the strict MAIR check is off)");
	ok(true, "(padding: the strict MAIR check is off)");
	ok(true, "(padding: the strict MAIR check is off)");
#endif
}

static void test_capacity(void)
{
	/* Only the UART's granule is mapped here. */
	unsigned int fresh = CAPACITY - 1, n = 0;
	u64 ipa = FREE_BASE;

	for (unsigned int i = 0; i < fresh; i++, ipa += G)
		if (guard_map(ipa, 0) == 0)
			n++;
	is_eq("capacity: MAP of granules up to the capacity all succeed", n, fresh);
	map_is("one granule more than the capacity: out of memory", ipa, M1);
	aborted("the granule that did not fit stays unmapped", ipa);
	map_is("re-MAP of a mapped granule when full still succeeds", FREE_BASE, 0);
	unmap_is("UNMAP frees a slot", FREE_BASE, 0);
	map_is("now the extra granule fits", ipa, 0);
	reachable("the extra granule", ipa);
	for (u64 a = FREE_BASE; a <= ipa; a += G)
		guard_unmap(a);
}

int main(u64 dtb)
{
	u64 last = IPA_LIMIT - G;
	struct smccc_res r;
	int err;
	void *uart;
	u32 lr;

	plan(NR_TESTS);
	diag("granule %lu, %d IPA bits, strict MAIR %d, capacity %d", G, IPA_BITS, CHECK_MAIR,
	     CAPACITY);

	/* Not enrolled yet. */
	map_is("refused before ENROLL", UART_BASE, M1);
	unmap_is("refused before ENROLL", UART_BASE, M1);
	reachable("not enrolled: everything goes to the VMM", RTC_BASE);

	/* ENROLL is idempotent.  Nothing can be printed between ENROLL and the
	 * MAP of the UART: report afterwards. */
	r = smccc_hvc(MMIO_GUARD_ENROLL, 0x1111, 0x2222, 0x3333);
	err = guard_init(G); /* discovery, then ENROLL a second time */
	uart = ioremap(UART_BASE, G);
	if (uart)
		uart_set_base(uart);
	is_eq("ENROLL", r.a0, 0);
	is_eq("ENROLL: x1..x3 zeroed", r.a1 | r.a2 | r.a3, 0);
	is_eq("ENROLL a second time (guard_init)", (u64)(s64)err, 0);
	ok(uart != NULL, "MAP of the UART after ENROLL");
	call_is("ENROLL again (idempotent)", MMIO_GUARD_ENROLL, 0, 0);
	reachable("still mapped after the second ENROLL", UART_BASE + 0xfe0);
	aborted("enrolled: an unmapped granule", RTC_BASE);

	/* MAP failures. */
	map_is("misaligned by 16 bytes", FREE_BASE + 0x10, M1);
	map_is("misaligned by half a granule", FREE_BASE + G / 2, M1);
	aborted("a failed MAP mapped nothing", FREE_BASE);
	map_is("RAM (first granule)", RAM_BASE, M1);
	map_is("RAM (this image)", ALIGN_DOWN(0x40080000UL, G), M1);
	map_is("RAM (last granule)", RAM_BASE + RAM_SIZE - G, M1);
	map_is("just below RAM: not a memory slot", RAM_BASE - G, 0);
	unmap_is("just below RAM", RAM_BASE - G, 0);
	map_is("just above RAM: not a memory slot", RAM_BASE + RAM_SIZE, 0);
	unmap_is("just above RAM", RAM_BASE + RAM_SIZE, 0);
	map_is("last granule below the IPA limit", last, 0);
	unmap_is("last granule below the IPA limit", last, 0);
	map_is("at the IPA limit", IPA_LIMIT, M1);
	map_is("one granule beyond the IPA limit", IPA_LIMIT + G, M1);
	map_is("top of the 64-bit space (IPA + granule wraps)", (u64)0 - G, M1);
	map_is("bit 63 set", (1UL << 63) | FREE_BASE, M1);
	unmap_is("a granule whose MAP failed is not mapped", IPA_LIMIT, M1);

	/* MAP success, idempotent MAP, one UNMAP removes it. */
	map_is("unassigned device space", FREE_BASE, 0);
	reachable("mapped", FREE_BASE);
	reachable("mapped (last word)", FREE_BASE + G - 4);
	map_is("again (idempotent)", FREE_BASE, 0);
	reachable("still mapped", FREE_BASE);
	unmap_is("once", FREE_BASE, 0);
	aborted("one UNMAP removed a granule mapped twice", FREE_BASE);
	unmap_is("twice: no longer mapped", FREE_BASE, M1);
	map_is("after UNMAP, MAP again works", FREE_BASE, 0);
	reachable("mapped again", FREE_BASE);
	unmap_is("cleanup", FREE_BASE, 0);

	/* A device: writes reach it. */
	map_is("the RTC", RTC_BASE, 0);
	writel(0x1234abcd, __ioptr(RTC_BASE + 8));
	lr = readl(__ioptr(RTC_BASE + 8));
	is_eq("RTC load register written and read back through the mapping", lr, 0x1234abcd);
	unmap_is("the RTC", RTC_BASE, 0);
	aborted("the RTC after UNMAP", RTC_BASE + 8);

	/* UNMAP failures and rounding. */
	unmap_is("never mapped", FREE_BASE + 4 * G, M1);
	unmap_is("RAM", RAM_BASE, M1);
	unmap_is("misaligned, in a granule that is not mapped", FREE_BASE + 4 * G + 0x10, M1);
	map_is("granule A", FREE_BASE + G, 0);
	map_is("granule B = A + granule", FREE_BASE + 2 * G, 0);
	unmap_is("misaligned in A (+16): rounded down to A", FREE_BASE + G + 0x10, 0);
	aborted("A after the misaligned UNMAP", FREE_BASE + G);
	reachable("B untouched by UNMAP of A", FREE_BASE + 2 * G);
	unmap_is("A again: already gone", FREE_BASE + G, M1);
	unmap_is("last byte of B: rounded down to B", FREE_BASE + 3 * G - 1, 0);
	aborted("B after UNMAP of its last byte", FREE_BASE + 2 * G);
	reachable("the UART granule survived all of this", UART_BASE + 0xfe0);

	/* x2, the MAIR index. */
	test_mair();

	/* Out of memory: the VM holds CAPACITY granules. */
	test_capacity();
	done();
}
