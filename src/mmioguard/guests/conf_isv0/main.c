/*
 * Conformance: rule 3 of spec section 4.  Once enrolled, an access without a
 * valid syndrome (ISV=0) aborts even on a mapped granule: load/store pairs,
 * pre- and post-index writeback, exclusives, LSE atomics, SIMD&FP registers
 * and structures.  For each: ESR 0x96000010, FAR = the first byte accessed,
 * ELR = the instruction, every register unchanged (destinations, base: no
 * writeback, status), and the device unchanged (the RTC load register).
 * The same forms on RAM are unaffected; single loads and stores with a
 * syndrome (LDR/STR, LDUR, LDAR/STLR) are forwarded on the mapped granule.
 *
 * Run with nisv=stop (default) and nisv=emulate: the NISV policy only
 * matters before enrollment.  RAM_EDGE=1 runs only a separate check: a pair
 * that starts in RAM and ends outside every memory slot aborts too, and must
 * leave its RAM half untouched.
 */
#include "guest.h"

#ifndef RAM_EDGE
#define RAM_EDGE 0
#endif

#define NR_TESTS 171
#define NR_LSE_CASES 4 /* each 6 checks, or 1 skip without LSE */
#define LR_BEFORE 0xc0ffee03U
#define V1 0x1111111111111111UL
#define V2 0x2222222222222222UL
#define RAM_END (RAM_BASE + SZ_128M)

#include "access_forms.h"

struct isv0_case {
	const char *name;
	access_fn *fn;
	const char *insn;
	u64 base;   /* x11 */
	u64 far;    /* first byte accessed */
	bool simd;
	bool lse;
};

#define RTC(off) (RTC_BASE + (off))
#define CASE(fn, base, far, simd, lse) { #fn, fn, fn##_insn, base, far, simd, lse }

static const struct isv0_case isv0_cases[] = {
	CASE(a_ldp_x, RTC(0xfe0), RTC(0xfe0), false, false),
	CASE(a_ldp_w, RTC(0xfe8), RTC(0xfe8), false, false),
	CASE(a_ldpsw, RTC(0xff0), RTC(0xff0), false, false),
	CASE(a_ldnp, RTC(0xff0), RTC(0xff0), false, false),
	CASE(a_stp_x, RTC(0x0), RTC(0x0), false, false),
	CASE(a_stp_w, RTC(0x8), RTC(0x8), false, false),
	CASE(a_ldr_post, RTC(0x0), RTC(0x0), false, false),
	CASE(a_ldr_pre, RTC(0x0), RTC(0x8), false, false),
	CASE(a_ldrb_post, RTC(0xfe0), RTC(0xfe0), false, false),
	CASE(a_str_post, RTC(0x8), RTC(0x8), false, false),
	CASE(a_str_pre_neg, RTC(0xc), RTC(0x8), false, false),
	CASE(a_ldp_post, RTC(0x8), RTC(0x8), false, false),
	CASE(a_ldxr, RTC(0x8), RTC(0x8), false, false),
	CASE(a_ldaxr_x, RTC(0x8), RTC(0x8), false, false),
	CASE(a_ldxp, RTC(0x8), RTC(0x8), false, false),
	CASE(a_ldadd, RTC(0x8), RTC(0x8), false, true),
	CASE(a_swp, RTC(0x8), RTC(0x8), false, true),
	CASE(a_cas, RTC(0x8), RTC(0x8), false, true),
	CASE(a_stadd, RTC(0x8), RTC(0x8), false, true),
	CASE(a_ldr_s, RTC(0xfe0), RTC(0xfe0), true, false),
	CASE(a_ldr_d, RTC(0xfe0), RTC(0xfe0), true, false),
	CASE(a_str_s, RTC(0x8), RTC(0x8), true, false),
	CASE(a_ldp_s, RTC(0x8), RTC(0x8), true, false),
	CASE(a_ld1, RTC(0xfe0), RTC(0xfe0), true, false),
	CASE(a_st1, RTC(0x8), RTC(0x8), true, false),
};

static bool have_lse(void)
{
	return ((read_sysreg(id_aa64isar0_el1) >> 20) & 0xf) >= 2;
}

static void isv0_aborts(const struct isv0_case *c, bool lse)
{
	struct exception_info e;
	struct after a = { 0 };
	char n[140];

	if (c->lse && !lse) {
		skip("%s: no LSE atomics on this CPU (5 checks left out)", c->name);
		return;
	}
	expect_exception();
	c->fn(c->base, V1, V2, &a);
	e = take_exception();
#define CHECK(what, got, want)                                   \
	do {                                                     \
		snprintf(n, sizeof(n), "%s: %s", c->name, what); \
		is_eq(n, got, want);                             \
	} while (0)
	ok(e.taken && e.esr == ESR_GUARD_DABT_EL1 && e.vector == VEC_CUR_SPX_SYNC,
	   "%s on a mapped granule: aborted (ESR 0x%lx)", c->name, e.esr);
	CHECK("FAR = first byte", e.far, c->far);
	CHECK("ELR = the instruction", e.elr, (u64)(uintptr_t)c->insn);
	CHECK("base register unchanged (no writeback)", a.x11, c->base);
	if (c->simd) {
		CHECK("d0 unchanged", a.d0, V1);
		CHECK("d1 unchanged", a.d1, V2);
	} else {
		CHECK("x12 unchanged", a.x12, V1);
		CHECK("x13 unchanged", a.x13, V2);
	}
#undef CHECK
}

/*
 * STXR with no reservation (its LDXR would have aborted): the architecture
 * lets it fail without an access, or abort.  Either way nothing reaches the
 * device, and the status register says "failed" when it was not aborted.
 */
static void stxr_without_reservation(void)
{
	struct exception_info e;
	struct after a = { 0 };

	asm volatile("clrex" ::: "memory");
	expect_exception();
	a_stxr(RTC_BASE + 8, V1, V2, &a);
	e = take_exception();
	if (e.taken)
		ok(e.esr == ESR_GUARD_DABT_EL1 && e.far == RTC_BASE + 8 && a.x13 == V2,
		   "a_stxr on a mapped granule: aborted, status register unchanged");
	else
		is_eq("a_stxr with no reservation: not aborted, so it failed (status 1)", a.x13, 1);
}

static u64 ram_buf[4] __aligned(16);

static void on_ram(void)
{
	struct after a = { 0 };
	u64 base = (u64)(uintptr_t)ram_buf;

	ram_buf[0] = 0x0123456789abcdefUL;
	ram_buf[1] = 0xfedcba9876543210UL;
	expect_exception();
	a_ldp_x(base, V1, V2, &a);
	ok(!take_exception().taken && a.x12 == ram_buf[0] && a.x13 == ram_buf[1],
	   "RAM is not guarded: ldp reads RAM");
	expect_exception();
	a_stp_x(base + 16, V1, V2, &a);
	ok(!take_exception().taken && ram_buf[2] == V1 && ram_buf[3] == V2,
	   "RAM is not guarded: stp writes RAM");
	expect_exception();
	a_ldr_post(base, V1, V2, &a);
	ok(!take_exception().taken && a.x12 == ram_buf[0] && a.x11 == base + 8,
	   "RAM is not guarded: ldr post-index loads and writes back");
	expect_exception();
	a_ldr_pre(base, V1, V2, &a);
	ok(!take_exception().taken && a.x12 == ram_buf[1] && a.x11 == base + 8,
	   "RAM is not guarded: ldr pre-index loads and writes back");
	expect_exception();
	a_ldxr(base, V1, V2, &a);
	ok(!take_exception().taken && a.x12 == (u32)ram_buf[0], "RAM is not guarded: ldxr");
	expect_exception();
	a_ldr_d(base, V1, V2, &a);
	ok(!take_exception().taken && a.d0 == ram_buf[0], "RAM is not guarded: ldr d0");
}

static void with_syndrome(void)
{
	struct after a = { 0 };

	a.x12 = 0;
	b_str_w(RTC_BASE, 0xabcd0001, 0, &a);
	b_ldr_w(RTC_BASE, 0, 0, &a);
	is_eq("str w / ldr w [x, #8] with a syndrome: forwarded (RTC load register)", a.x12,
	      0xabcd0001);
	b_stlr(RTC_BASE + 8, 0xabcd0002, 0, &a);
	b_ldar(RTC_BASE + 8, 0, 0, &a);
	is_eq("stlr / ldar with a syndrome: forwarded", a.x12, 0xabcd0002);
	b_ldur(RTC_BASE + 0x10, 0, 0, &a);
	is_eq("ldur [x, #-8] with a syndrome: forwarded", a.x12, 0xabcd0002);
	writel(LR_BEFORE, __ioptr(RTC_BASE + 8));
}

/*
 * A pair from the last bytes of RAM into the first bytes past it (no memory
 * slot there).  ISV=0 and enrolled: aborted, so it did not execute and its
 * RAM half must be unchanged (section 4: no register, memory or device
 * changes).  Run alone (RAM_EDGE=1): see tests/test_conformance.py.
 */
static void across_ram_end(bool mapped)
{
	volatile u64 *last = (volatile u64 *)(RAM_END - 8);
	const char *m = mapped ? "granule after RAM mapped" : "granule after RAM not mapped";
	struct exception_info e;
	struct after a = { 0 };

	*last = 0x5555aaaa5555aaaaUL;
	expect_exception();
	a_stp_x(RAM_END - 8, V1, V2, &a);
	e = take_exception();
	ok(e.taken && e.esr == ESR_GUARD_DABT_EL1 && e.far == RAM_END - 8,
	   "stp x across the end of RAM (%s): aborted (ESR 0x%lx FAR 0x%lx)", m, e.esr, e.far);
	ok(*last == 0x5555aaaa5555aaaaUL,
	   "stp x across the end of RAM (%s): its RAM half is unchanged (0x%lx)", m, *last);
	*last = 0x5555aaaa5555aaaaUL;
	expect_exception();
	a_stp_w(RAM_END - 4, V1, V2, &a);
	e = take_exception();
	ok(e.taken && e.esr == ESR_GUARD_DABT_EL1 && e.far == RAM_END - 4,
	   "stp w across the end of RAM (%s): aborted (ESR 0x%lx FAR 0x%lx)", m, e.esr, e.far);
	ok(*last == 0x5555aaaa5555aaaaUL,
	   "stp w across the end of RAM (%s): its RAM half is unchanged (0x%lx)", m, *last);
	expect_exception();
	a_ldp_x(RAM_END - 8, V1, V2, &a);
	e = take_exception();
	ok(e.taken && e.far == RAM_END - 8 && a.x12 == V1 && a.x13 == V2,
	   "ldp x across the end of RAM (%s): aborted, both registers unchanged", m);
}

/* The other way round: from below RAM (no slot) into its first bytes. */
static void across_ram_start(void)
{
	volatile u64 *first = (volatile u64 *)RAM_BASE;
	struct exception_info e;
	struct after a = { 0 };

	*first = 0x5555aaaa5555aaaaUL;
	expect_exception();
	a_stp_x(RAM_BASE - 8, V1, V2, &a);
	e = take_exception();
	ok(e.taken && e.esr == ESR_GUARD_DABT_EL1 && e.far == RAM_BASE - 8,
	   "stp x across the start of RAM: aborted (ESR 0x%lx FAR 0x%lx)", e.esr, e.far);
	is_eq("stp x across the start of RAM: its RAM half is unchanged", *first,
	      0x5555aaaa5555aaaaUL);
}

static int ram_edge_main(void)
{
	int err;

	plan(12);
	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("enrolled", (u64)(s64)err, 0);
	across_ram_end(false);
	ok(ioremap(RAM_END, SZ_4K) != NULL, "MAP of the granule after RAM");
	across_ram_end(true);
	done();
}

int main(u64 dtb)
{
	bool lse = have_lse();
	int err;

	if (RAM_EDGE)
		return ram_edge_main();
	plan(lse ? NR_TESTS : NR_TESTS - 5 * NR_LSE_CASES);
	writel(LR_BEFORE, __ioptr(RTC_BASE + 8));
	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("enrolled", (u64)(s64)err, 0);
	ok(ioremap(RTC_BASE, SZ_4K) != NULL, "RTC mapped");
	diag("LSE atomics: %s", lse ? "yes" : "no");

	fpsimd_enable();
	for (unsigned int i = 0; i < ARRAY_SIZE(isv0_cases); i++)
		isv0_aborts(&isv0_cases[i], lse);
	stxr_without_reservation();
	is_eq("the RTC load register is unchanged by every aborted store",
	      readl(__ioptr(RTC_BASE + 8)), LR_BEFORE);
	with_syndrome();
	on_ram();
	across_ram_start();
	fpsimd_disable();

	/* ISV=0 on a granule that is not mapped: aborted as well. */
	iounmap((void *)RTC_BASE, SZ_4K);
	isv0_aborts(&(struct isv0_case)CASE(a_ldp_x, RTC(0xfe0), RTC(0xfe0), false, false), lse);
	done();
}
