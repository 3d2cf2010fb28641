/*
 * Conformance: the guard's abort taken from EL0 (spec section 4).
 *
 * The guest enrolls, maps only the UART, and runs loads and stores to the
 * unmapped RTC at EL0 (run_at_el0).  For each it checks ESR_EL1 = 0x92000010
 * (EC 0x24), FAR_EL1, ELR_EL1, SPSR_EL1 (EL0t, NZCV as set, DAIF clear),
 * vector VBAR + 0x400, the new PSTATE in the handler (EL1h, DAIF masked), and
 * that nothing changed: registers, flags, SP_EL0, the RTC load register.
 * Then the same with the MMU on (4K): without EL0 access to the device page
 * the stage-1 permission fault comes first (no guard involved); with it, the
 * guard's abort, FAR = the virtual address.
 */
#include "guest.h"

#define NR_TESTS 101
#define LR_BEFORE 0xc0ffee02U
#define NZCV_A 0x60000000UL
#define NZCV_B 0x90000000UL
#define SENTINEL 0xfeedfacecafef00dUL

struct after {
	u64 reg, base, sp_before, sp_after, nzcv;
};

struct params {
	u64 base, value, nzcv;
	struct after *out;
};

typedef u64 el0_fn(u64 params);

#define DECLARE(name) el0_fn name; extern char name##_insn[]
DECLARE(el0_ldr_w);
DECLARE(el0_ldr_x);
DECLARE(el0_ldrb_reg);
DECLARE(el0_ldrsh);
DECLARE(el0_str_w);
DECLARE(el0_strb);
DECLARE(el0_mmu_ldr_w);
u64 current_sp(void);

static volatile u64 entry_pstate, entry_sp;

static bool hook(struct exception_frame *f, u64 vector, u64 esr)
{
	if (vector == VEC_LOWER64_SYNC) {
		entry_pstate = read_sysreg(daif) | read_sysreg(CurrentEL) | read_sysreg(spsel);
		entry_sp = current_sp();
	}
	return false;
}

struct access_case {
	const char *name;
	el0_fn *fn;
	const char *insn;
	u64 base;
	u64 far;
	u64 nzcv;
	u64 esr;
};

static struct after result;
static struct params params;

static void run_case(const struct access_case *c)
{
	struct exception_info e;
	u64 daif = read_sysreg(daif);
	char n[140];

	params = (struct params){ c->base, SENTINEL, c->nzcv, &result };
	result = (struct after){ 0 };
	entry_pstate = 0;
	entry_sp = 0;
	expect_exception();
	asm volatile("msr daifclr, #0xf" ::: "memory"); /* EL0 runs with DAIF clear */
	run_at_el0(c->fn, (u64)(uintptr_t)&params);
	write_sysreg(daif, daif);
	e = take_exception();

#define CHECK(what, got, want)                                   \
	do {                                                     \
		snprintf(n, sizeof(n), "%s: %s", c->name, what); \
		is_eq(n, got, want);                             \
	} while (0)
	ok(e.taken, "%s: exception taken", c->name);
	CHECK("vector 0x400", e.vector, VEC_LOWER64_SYNC);
	CHECK("ESR_EL1", e.esr, c->esr);
	CHECK("FAR_EL1 = the address", e.far, c->far);
	CHECK("ELR_EL1 = the instruction", e.elr, (u64)(uintptr_t)c->insn);
	CHECK("SPSR_EL1 = PSTATE at the fault (EL0t)", e.spsr, c->nzcv);
	CHECK("new PSTATE: EL1h, DAIF masked", entry_pstate, 0x3c5);
	ok(entry_sp != result.sp_before && entry_sp != 0,
	   "%s: handler on SP_EL1 (0x%lx), not SP_EL0 (0x%lx)", c->name, entry_sp,
	   result.sp_before);
	CHECK("register unchanged", result.reg, SENTINEL);
	CHECK("base register unchanged", result.base, c->base);
	CHECK("NZCV unchanged", result.nzcv, c->nzcv);
	CHECK("SP_EL0 unchanged", result.sp_after, result.sp_before);
#undef CHECK
}

int main(u64 dtb)
{
	const struct access_case cases[] = {
		{ "EL0 ldr w", el0_ldr_w, el0_ldr_w_insn, RTC_BASE + 0x10, RTC_BASE + 0x18,
		  NZCV_A, ESR_GUARD_DABT_EL0 },
		{ "EL0 ldr x (8 bytes)", el0_ldr_x, el0_ldr_x_insn, RTC_BASE, RTC_BASE, NZCV_B,
		  ESR_GUARD_DABT_EL0 },
		{ "EL0 ldrb [x, x]", el0_ldrb_reg, el0_ldrb_reg_insn, RTC_BASE + 0xff0,
		  RTC_BASE + 0xff3, NZCV_A, ESR_GUARD_DABT_EL0 },
		{ "EL0 ldrsh", el0_ldrsh, el0_ldrsh_insn, RTC_BASE + 0xfe4, RTC_BASE + 0xfe6,
		  NZCV_B, ESR_GUARD_DABT_EL0 },
		{ "EL0 str w to the RTC load register", el0_str_w, el0_str_w_insn, RTC_BASE,
		  RTC_BASE + 8, NZCV_A, ESR_GUARD_DABT_EL0 },
		{ "EL0 strb to the RTC load register", el0_strb, el0_strb_insn, RTC_BASE + 8,
		  RTC_BASE + 9, NZCV_B, ESR_GUARD_DABT_EL0 },
	};
	/* MMU on: stage-1 first.  EC 0x24, IL, DFSC 0x0e: permission fault at level 2
	 * (the SDK maps the device window with 2M blocks). */
	const struct access_case mmu_perm = { "EL0, MMU on, no EL0 access: stage-1 fault",
					      el0_mmu_ldr_w, el0_mmu_ldr_w_insn, RTC_BASE + 0x10,
					      RTC_BASE + 0x18, NZCV_A, 0x9200000eUL };
	const struct access_case mmu_guard = { "EL0, MMU on, EL0 access granted: guard abort",
					       el0_mmu_ldr_w, el0_mmu_ldr_w_insn, RTC_BASE + 0x20,
					       RTC_BASE + 0x28, NZCV_B, ESR_GUARD_DABT_EL0 };
	u32 lr;
	int err;

	plan(NR_TESTS);
	writel(LR_BEFORE, __ioptr(RTC_BASE + 8));
	lr = readl(__ioptr(RTC_BASE + 8));
	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("RTC load register set before enrolling", lr, LR_BEFORE);
	is_eq("enrolled", (u64)(s64)err, 0);

	set_exception_hook(hook);
	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++)
		run_case(&cases[i]);

	err = mmu_enable(SZ_4K);
	is_eq("MMU on with the 4K granule", (u64)(s64)err, 0);
	run_case(&mmu_perm);
	mmu_set_user(RTC_BASE, SZ_4K, true);
	run_case(&mmu_guard);
	mmu_reset_map();
	mmu_disable();
	set_exception_hook(NULL);

	ok(ioremap(RTC_BASE, 4) != NULL, "RTC mapped at the end");
	is_eq("RTC load register unchanged by the aborted stores", readl(__ioptr(RTC_BASE + 8)),
	      LR_BEFORE);
	done();
}
