/*
 * Conformance: an instruction fetch from outside every memory slot gets a
 * prefetch abort (spec section 4): ESR_EL1 0x86000010 from EL1, 0x82000010
 * from EL0, FAR_EL1 = ELR_EL1 = the address, SPSR = PSTATE at the branch
 * target, vector VBAR + 0x200 / + 0x400; enrolled or not, and whether or not
 * the granule is mapped.  Fetches from a device (the RTC) must not reach it
 * (checked in the VMM's trace by tests/test_conformance.py).  The exception
 * hook returns to the branch's link register.
 */
#include "guest.h"

#define NR_TESTS 57
#define NZCV 0x60000000UL
#define FREE 0x0a000000UL
#define RAM_END (RAM_BASE + SZ_128M)

u64 fetch_from(u64 addr, u64 nzcv);
u64 el0_fetch(u64 addr);

static volatile struct {
	bool taken;
	u64 esr, far, elr, spsr, vector;
} seen;

static bool iabt_hook(struct exception_frame *f, u64 vector, u64 esr)
{
	unsigned int ec = ESR_EC(esr);

	if ((vector & 0x180) || (ec != ESR_EC_IABT_CUR && ec != ESR_EC_IABT_LOWER))
		return false;
	seen.taken = true;
	seen.esr = esr;
	seen.far = read_sysreg(far_el1);
	seen.elr = f->elr;
	seen.spsr = f->spsr;
	seen.vector = vector;
	f->elr = f->regs[30]; /* back to the caller of blr */
	return true;
}

static void check(const char *what, u64 addr, bool el0)
{
	u64 came_back;
	char n[140];

	seen.taken = false;
	seen.esr = seen.far = seen.elr = seen.spsr = seen.vector = 0;
	if (el0)
		came_back = run_at_el0(el0_fetch, addr);
	else
		came_back = fetch_from(addr, NZCV);
#define CHECK(field, got, want)                                     \
	do {                                                        \
		snprintf(n, sizeof(n), "%s 0x%lx: %s", what, addr, field); \
		is_eq(n, got, want);                                \
	} while (0)
	ok(seen.taken && came_back == 1, "%s 0x%lx: prefetch abort taken", what, addr);
	CHECK("ESR_EL1", seen.esr, el0 ? ESR_GUARD_IABT_EL0 : ESR_GUARD_IABT_EL1);
	CHECK("FAR_EL1 = the address", seen.far, addr);
	CHECK("ELR_EL1 = the address", seen.elr, addr);
	CHECK("SPSR_EL1", seen.spsr, el0 ? (0x3c0 | 0x40000000UL) : (NZCV | 0x3c5));
	CHECK("vector", seen.vector, el0 ? VEC_LOWER64_SYNC : VEC_CUR_SPX_SYNC);
#undef CHECK
}

int main(u64 dtb)
{
	int err;

	plan(NR_TESTS);
	set_exception_hook(iabt_hook);

	/* Not enrolled. */
	check("EL1, not enrolled, no device at", FREE, false);
	check("EL1, not enrolled, the RTC at", RTC_BASE, false);
	check("EL1, not enrolled, past the end of RAM at", RAM_END, false);
	check("EL0, not enrolled, no device at", FREE + 0x40, true);

	/* Enrolled: mapped or not, a fetch is never an MMIO access. */
	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("enrolled", (u64)(s64)err, 0);
	ok(ioremap(RTC_BASE, SZ_4K) != NULL && guard_map(FREE, 0) == 0,
	   "RTC and 0x0a000000 mapped");
	check("EL1, enrolled, mapped RTC at", RTC_BASE + 0x10, false);
	check("EL1, enrolled, mapped, no device at", FREE + 0x100, false);
	check("EL1, enrolled, unmapped granule at", FREE + 0x1000, false);
	check("EL0, enrolled, mapped RTC at", RTC_BASE + 0x20, true);

	/* MMU on, the page executable at stage 1: still the external abort. */
	mmu_map(FREE, SZ_4K, MT_NORMAL, MMU_EXEC);
	err = mmu_enable(SZ_4K);
	is_eq("MMU on (4K), 0x0a000000 mapped Normal and executable", (u64)(s64)err, 0);
	check("EL1, MMU on, executable page, no device at", FREE + 0x200, false);
	mmu_disable();
	mmu_reset_map();

	set_exception_hook(NULL);
	done();
}
