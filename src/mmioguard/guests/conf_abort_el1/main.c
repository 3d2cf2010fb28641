/*
 * Conformance: the guard's abort taken from EL1 (spec section 4), with the
 * SP_ELx stack (EL1h) and with SP_EL0 selected (EL1t, msr spsel, #0).
 *
 * The guest enrolls, maps only the UART, and touches the unmapped RTC with
 * loads and stores of several shapes.  For each it checks the exact ESR_EL1
 * (0x96000010), FAR_EL1 (the address), ELR_EL1 (the instruction), SPSR_EL1
 * (PSTATE at the fault: NZCV as set, DAIF clear, EL1h or EL1t), the vector
 * (VBAR + 0x200 or + 0x000), the new PSTATE seen in the handler (EL1h, DAIF
 * masked), and that the instruction changed nothing: destination or source
 * register, base register, flags, SP; and the device register a store
 * targeted (read after the RTC is mapped at the end).  The pytest side checks
 * in the VMM's trace that the RTC saw none of these accesses.
 */
#include "guest.h"

#define NR_TESTS 117
#define LR_BEFORE 0xc0ffee01U
#define NZCV_A 0x60000000UL /* Z, C */
#define NZCV_B 0x90000000UL /* N, V */

struct after {
	u64 reg;       /* x12: load destination or store source */
	u64 base;      /* x11 */
	u64 sp_before; /* SP at the access */
	u64 sp_after;  /* SP right after it */
	u64 nzcv;      /* NZCV right after it */
};

typedef void access_fn(u64 base, u64 value, u64 nzcv, struct after *out, u64 sp_el0);

#define DECLARE(name) access_fn name; extern char name##_insn[]
DECLARE(el1h_ldr_w);
DECLARE(el1h_ldr_x);
DECLARE(el1h_ldrb_reg);
DECLARE(el1h_ldur_neg);
DECLARE(el1h_ldr_base);
DECLARE(el1h_str_w);
DECLARE(el1h_str_x);
DECLARE(el1t_ldr_w);
DECLARE(el1t_ldr_x);
DECLARE(el1t_str_w);
u64 current_sp(void);

/* What the handler saw on entry (exception hook). */
static volatile u64 entry_pstate, entry_sp;

static bool hook(struct exception_frame *f, u64 vector, u64 esr)
{
	entry_pstate = read_sysreg(daif) | read_sysreg(CurrentEL) | read_sysreg(spsel);
	entry_sp = current_sp();
	return false; /* then the armed handler records it */
}

static u8 el0_stack[4096] __aligned(16);

struct access_case {
	const char *name;
	access_fn *fn;
	const char *insn;
	bool el1t;
	u64 base;
	u64 far;
	u64 nzcv;
};

#define SENTINEL 0xfeedfacecafef00dUL

static void run_case(const struct access_case *c)
{
	u64 stack = (u64)(uintptr_t)(el0_stack + sizeof(el0_stack));
	u64 spsr_mode = c->el1t ? 0x4 : 0x5;
	u64 vector = c->el1t ? VEC_CUR_SP0_SYNC : VEC_CUR_SPX_SYNC;
	struct exception_info e;
	struct after a;
	char n[140];

	entry_pstate = 0;
	expect_exception();
	c->fn(c->base, SENTINEL, c->nzcv, &a, stack);
	e = take_exception();

#define CHECK(what, got, want)                                   \
	do {                                                     \
		snprintf(n, sizeof(n), "%s: %s", c->name, what); \
		is_eq(n, got, want);                             \
	} while (0)
	ok(e.taken, "%s: aborted", c->name);
	CHECK("vector", e.vector, vector);
	CHECK("ESR_EL1", e.esr, ESR_GUARD_DABT_EL1);
	CHECK("FAR_EL1 = the address", e.far, c->far);
	CHECK("ELR_EL1 = the instruction", e.elr, (u64)(uintptr_t)c->insn);
	CHECK("SPSR_EL1 = PSTATE at the fault", e.spsr, c->nzcv | spsr_mode);
	CHECK("new PSTATE: EL1h, DAIF masked", entry_pstate, 0x3c5);
	CHECK("register unchanged", a.reg, SENTINEL);
	CHECK("base register unchanged", a.base, c->base);
	CHECK("NZCV unchanged", a.nzcv, c->nzcv);
	CHECK("SP unchanged", a.sp_after, a.sp_before);
	if (c->el1t)
		ok(a.sp_before == stack &&
			   (entry_sp < (u64)(uintptr_t)el0_stack || entry_sp > stack),
		   "%s: SP_EL0 in use at the fault (0x%lx), handler on SP_EL1 (0x%lx)", c->name,
		   a.sp_before, entry_sp);
#undef CHECK
}

int main(u64 dtb)
{
	const struct access_case cases[] = {
		{ "EL1h ldr w", el1h_ldr_w, el1h_ldr_w_insn, false, RTC_BASE + 0x10,
		  RTC_BASE + 0x18, NZCV_A },
		{ "EL1h ldr x (8 bytes)", el1h_ldr_x, el1h_ldr_x_insn, false, RTC_BASE,
		  RTC_BASE, NZCV_B },
		{ "EL1h ldrb [x, x] (register offset)", el1h_ldrb_reg, el1h_ldrb_reg_insn, false,
		  RTC_BASE + 0xfe0, RTC_BASE + 0xfe3, NZCV_A },
		{ "EL1h ldur [x, #-4]", el1h_ldur_neg, el1h_ldur_neg_insn, false, RTC_BASE + 0x20,
		  RTC_BASE + 0x1c, NZCV_B },
		{ "EL1h ldr x11, [x11] (base is destination)", el1h_ldr_base, el1h_ldr_base_insn,
		  false, RTC_BASE + 0x10, RTC_BASE + 0x10, NZCV_A },
		{ "EL1h str w to the RTC load register", el1h_str_w, el1h_str_w_insn, false,
		  RTC_BASE, RTC_BASE + 8, NZCV_B },
		{ "EL1h str x (8 bytes)", el1h_str_x, el1h_str_x_insn, false, RTC_BASE + 0x10,
		  RTC_BASE + 0x10, NZCV_A },
		{ "EL1t ldr w", el1t_ldr_w, el1t_ldr_w_insn, true, RTC_BASE + 0x20,
		  RTC_BASE + 0x28, NZCV_A },
		{ "EL1t ldr x (8 bytes)", el1t_ldr_x, el1t_ldr_x_insn, true, RTC_BASE + 0x30,
		  RTC_BASE + 0x30, NZCV_B },
		{ "EL1t str w to the RTC load register", el1t_str_w, el1t_str_w_insn, true,
		  RTC_BASE, RTC_BASE + 8, NZCV_B },
	};
	u32 lr;
	int err;

	plan(NR_TESTS);
	/* Before enrolling: the RTC load register gets a known value. */
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
	set_exception_hook(NULL);

	/* The stores never reached the device. */
	ok(ioremap(RTC_BASE, 4) != NULL, "RTC mapped at the end");
	is_eq("RTC load register unchanged by the aborted stores", readl(__ioptr(RTC_BASE + 8)),
	      LR_BEFORE);
	done();
}
