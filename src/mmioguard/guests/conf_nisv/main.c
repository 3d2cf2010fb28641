/*
 * Conformance: syndrome-less (ISV=0) device accesses before enrollment
 * (spec section 5), under each NISV policy of the VMM.
 *
 * Build with NISV_MODE = 0 (stop), 1 (user) or 2 (emulate) and run the VM
 * with nisv= the same policy.
 *
 *   stop     the first ISV=0 device access (an stp to the RTC load register)
 *            stops the VM: status 1, reason "nisv"; nothing after it runs and
 *            the RTC is not written (checked by the pytest side);
 *   user     each ISV=0 form gets the guard's abort (ESR 0x96000010, FAR,
 *            registers unchanged, the RTC unchanged) and ENROLL then fails:
 *            MAP keeps failing and accesses keep reaching the VMM;
 *   emulate  each form is emulated with the right values (pairs, sign
 *            extension, writeback, SIMD registers, stores reaching the RTC);
 *            ENROLL still works, and then rule 3 applies: ISV=0 aborts.
 */
#include "guest.h"

#ifndef NISV_MODE
#define NISV_MODE 0
#endif
#ifndef SIMD_STRUCT
#define SIMD_STRUCT 0
#endif
#define NISV_STOP 0
#define NISV_USER 1
#define NISV_EMULATE 2

#define LR_BEFORE 0xc0ffee04U
#define V1 0x1111111111111111UL
#define V2 0x2222222222222222UL
#define M1 0xffffffffffffffffUL

#include "access_forms.h"

#define RTC(off) (RTC_BASE + (off))
/* PL031 ID registers: 0xfe0.. = 0x31 0x10 0x14 0x00 0x0d 0xf0 0x05 0xb1. */
#define ID(a, b) ((u64)(a) | ((u64)(b) << 32))

enum kind { LOAD, STORE, SIMD_LOAD, SIMD_STORE };

struct nisv_case {
	const char *name;
	access_fn *fn;
	const char *insn;
	enum kind kind;
	bool lse;
	u64 base;  /* x11 */
	u64 far;   /* first byte accessed */
	u32 lr;    /* RTC load register before the access */
	/* emulated results: x12/d0, x13/d1, x11 afterwards, and the load register */
	u64 r1, r2, wb, lr_after;
};

#define C(fn, kind, lse, base, far, lr, r1, r2, wb, lr_after) \
	{ #fn, fn, fn##_insn, kind, lse, base, far, lr, r1, r2, wb, lr_after }

static const struct nisv_case cases[] = {
	C(a_ldp_x, LOAD, false, RTC(0xfe0), RTC(0xfe0), 0, ID(0x31, 0x10), ID(0x14, 0x00),
	  RTC(0xfe0), 0),
	C(a_ldp_w, LOAD, false, RTC(0xff0), RTC(0xff0), 0, 0x0d, 0xf0, RTC(0xff0), 0),
	C(a_ldpsw, LOAD, false, RTC(0x8), RTC(0x8), 0x80000001, 0xffffffff80000001UL, 1, RTC(0x8),
	  0x80000001),
	C(a_ldnp, LOAD, false, RTC(0xff0), RTC(0xff0), 0, ID(0x0d, 0xf0), ID(0x05, 0xb1),
	  RTC(0xff0), 0),
	C(a_stp_w, STORE, false, RTC(0x8), RTC(0x8), 0, V1, V2, RTC(0x8), (u32)V1),
	C(a_ldr_post, LOAD, false, RTC(0xfe0), RTC(0xfe0), 0, ID(0x31, 0x10), V2, RTC(0xfe8), 0),
	C(a_ldr_pre, LOAD, false, RTC(0xfe0), RTC(0xfe8), 0, ID(0x14, 0x00), V2, RTC(0xfe8), 0),
	C(a_ldrb_post, LOAD, false, RTC(0xff4), RTC(0xff4), 0, 0xf0, V2, RTC(0xff5), 0),
	C(a_str_post, STORE, false, RTC(0x8), RTC(0x8), 0, V1, V2, RTC(0x10), (u32)V1),
	C(a_str_pre_neg, STORE, false, RTC(0xc), RTC(0x8), 0, V1, V2, RTC(0x8), (u32)V1),
	C(a_ldp_post, LOAD, false, RTC(0xff8), RTC(0xff8), 0, 0x05, 0xb1, RTC(0x1000), 0),
	C(a_ldxr, LOAD, false, RTC(0x8), RTC(0x8), 0x12345678, 0x12345678, V2, RTC(0x8),
	  0x12345678),
	C(a_ldaxr_x, LOAD, false, RTC(0xfe0), RTC(0xfe0), 0, ID(0x31, 0x10), V2, RTC(0xfe0), 0),
	C(a_ldxp, LOAD, false, RTC(0xff8), RTC(0xff8), 0, 0x05, 0xb1, RTC(0xff8), 0),
	/* LSE: x13 is the operand, x12 gets the old value. */
	C(a_ldadd, LOAD, true, RTC(0x8), RTC(0x8), 100, 100, V2, RTC(0x8), (u32)(100 + V2)),
	C(a_swp, LOAD, true, RTC(0x8), RTC(0x8), 100, 100, V2, RTC(0x8), (u32)V2),
	C(a_cas, LOAD, true, RTC(0x8), RTC(0x8), (u32)V1, (u32)V1, V2, RTC(0x8), (u32)V2),
	C(a_stadd, STORE, true, RTC(0x8), RTC(0x8), 100, V1, V2, RTC(0x8), (u32)(100 + V2)),
	C(a_ldr_s, SIMD_LOAD, false, RTC(0xff4), RTC(0xff4), 0, 0xf0, V2, RTC(0xff4), 0),
	C(a_ldr_d, SIMD_LOAD, false, RTC(0xfe0), RTC(0xfe0), 0, ID(0x31, 0x10), V2, RTC(0xfe0), 0),
	C(a_str_s, SIMD_STORE, false, RTC(0x8), RTC(0x8), 0, V1, V2, RTC(0x8), (u32)V1),
	C(a_ldp_s, SIMD_LOAD, false, RTC(0xff8), RTC(0xff8), 0, 0x05, 0xb1, RTC(0xff8), 0),
};

/* SIMD structures (LD1/ST1): run under user; under emulate only with
 * SIMD_STRUCT=1 (see tests/test_conformance.py). */
static const struct nisv_case struct_cases[] = {
	C(a_ld1, SIMD_LOAD, false, RTC(0xfe0), RTC(0xfe0), 0, ID(0x31, 0x10), V2, RTC(0xfe0), 0),
	C(a_st1, SIMD_STORE, false, RTC(0x8), RTC(0x8), 0, V1, V2, RTC(0x8), (u32)V1),
};

#define CHECKS_PER_CASE 5

static bool have_lse(void)
{
	return ((read_sysreg(id_aa64isar0_el1) >> 20) & 0xf) >= 2;
}

static void run_case(const struct nisv_case *c, bool lse)
{
	bool simd = c->kind == SIMD_LOAD || c->kind == SIMD_STORE;
	struct exception_info e;
	struct after a = { 0 };
	u64 r1, r2;
	char n[140];

	if (c->lse && !lse) {
		skip("%s: no LSE atomics on this CPU (%d checks left out)", c->name,
		     CHECKS_PER_CASE - 1);
		return;
	}
	writel(c->lr, __ioptr(RTC_BASE + 8));
	expect_exception();
	c->fn(c->base, V1, V2, &a);
	e = take_exception();
	r1 = simd ? a.d0 : a.x12;
	r2 = simd ? a.d1 : a.x13;
#define CHECK(what, got, want)                                   \
	do {                                                     \
		snprintf(n, sizeof(n), "%s: %s", c->name, what); \
		is_eq(n, got, want);                             \
	} while (0)
	if (NISV_MODE == NISV_USER) {
		ok(e.taken && e.esr == ESR_GUARD_DABT_EL1 && e.far == c->far &&
			   e.elr == (u64)(uintptr_t)c->insn,
		   "%s: abort injected (ESR 0x%lx FAR 0x%lx)", c->name, e.esr, e.far);
		CHECK(simd ? "d0 unchanged" : "x12 unchanged", r1, V1);
		CHECK(simd ? "d1 unchanged" : "x13 unchanged", r2, V2);
		CHECK("base unchanged (no writeback)", a.x11, c->base);
		CHECK("RTC load register unchanged", readl(__ioptr(RTC_BASE + 8)), c->lr);
	} else {
		ok(!e.taken, "%s: emulated, no exception (ESR 0x%lx)", c->name, e.esr);
		CHECK(simd ? "d0" : "x12", r1, c->r1);
		CHECK(simd ? "d1" : "x13", r2, c->r2);
		CHECK("base after writeback", a.x11, c->wb);
		CHECK("RTC load register", readl(__ioptr(RTC_BASE + 8)), c->lr_after);
	}
#undef CHECK
}

static int stop_main(void)
{
	struct after a = { 0 };

	plan(2);
	writel(LR_BEFORE, __ioptr(RTC_BASE + 8));
	is_eq("a load with a syndrome reaches the RTC before enrollment",
	      readl(__ioptr(RTC_BASE + 8)), LR_BEFORE);
	ok(true, "next: stp to the RTC load register, which must stop the VM");
	a_stp_w(RTC_BASE + 8, V1, V2, &a);
	ok(false, "the VM did not stop on an ISV=0 access before enrollment");
	done();
}

/* LD1/ST1 before enrollment under the given policy, alone. */
static int struct_main(void)
{
	plan((int)ARRAY_SIZE(struct_cases) * CHECKS_PER_CASE);
	fpsimd_enable();
	for (unsigned int i = 0; i < ARRAY_SIZE(struct_cases); i++)
		run_case(&struct_cases[i], false);
	fpsimd_disable();
	done();
}

int main(u64 dtb)
{
	bool lse = have_lse();
	int nlse = 0, err;
	s64 ret;

	if (NISV_MODE == NISV_STOP)
		return stop_main();
	if (SIMD_STRUCT)
		return struct_main();
	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++)
		nlse += cases[i].lse;
	plan((int)ARRAY_SIZE(cases) * CHECKS_PER_CASE - (lse ? 0 : nlse * (CHECKS_PER_CASE - 1)) +
	     (NISV_MODE == NISV_USER ? 5 + (int)ARRAY_SIZE(struct_cases) * CHECKS_PER_CASE : 7));
	diag("NISV policy %s, LSE atomics: %s", NISV_MODE == NISV_USER ? "user" : "emulate",
	     lse ? "yes" : "no");

	fpsimd_enable();
	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++)
		run_case(&cases[i], lse);
	if (NISV_MODE == NISV_USER)
		for (unsigned int i = 0; i < ARRAY_SIZE(struct_cases); i++)
			run_case(&struct_cases[i], lse);
	fpsimd_disable();

	writel(LR_BEFORE, __ioptr(RTC_BASE + 8));
	ret = guard_enroll();
	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	if (NISV_MODE == NISV_USER) {
		is_eq("ENROLL refused (the VMM takes syndrome-less accesses)", (u64)ret, M1);
		is_eq("guard_init: enrollment refused", (u64)(s64)err, (u64)(s64)GUARD_EENROLL);
		is_eq("MAP fails: not enrolled", (u64)guard_map(RTC_BASE, 0), M1);
		is_eq("not enrolled: the unmapped RTC is still reachable",
		      readl(__ioptr(RTC_BASE + 8)), LR_BEFORE);
		ok(!guard_enrolled(), "the client is not enrolled");
	} else {
		struct exception_info e;
		struct after a = { 0 };

		is_eq("ENROLL works under nisv=emulate", (u64)ret, 0);
		is_eq("guard_init", (u64)(s64)err, 0);
		ok(ioremap(RTC_BASE, SZ_4K) != NULL, "RTC mapped");
		b_ldr_w(RTC_BASE, 0, 0, &a);
		is_eq("a load with a syndrome on the mapped RTC", a.x12, LR_BEFORE);
		expect_exception();
		a_ldp_x(RTC_BASE + 0xfe0, V1, V2, &a);
		e = take_exception();
		ok(e.taken && e.esr == ESR_GUARD_DABT_EL1 && e.far == RTC_BASE + 0xfe0,
		   "enrolled: ldp on the mapped RTC now aborts (rule 3)");
		ok(a.x12 == V1 && a.x13 == V2, "  and leaves its registers unchanged");
		is_eq("RTC load register unchanged", readl(__ioptr(RTC_BASE + 8)), LR_BEFORE);
	}
	done();
}
