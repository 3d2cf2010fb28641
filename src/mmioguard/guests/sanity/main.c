/*
 * Sanity checks of the guest runtime, as TAP: printf, exceptions at EL1 and
 * EL0, SMCCC/PSCI discovery, the MMU with each granule, secondary CPUs, and,
 * when the hypervisor offers it, the MMIO guard client.
 *
 * Defines:
 *   PAGE_SIZE=4096|16384|65536  guest page size for guard_init (default 4096)
 *   EXPECT_GUARD=0|1            require guard_init to fail / succeed
 *                               (default: either is fine, guard tests skip)
 *   HOST_QEMU=1                 running under QEMU (no SMCCC 1.1 there):
 *                               skip the checks only a KVM-like host passes
 *   MMU_GRANULES=mask           stage-1 granules to test: 1 = 4K, 2 = 16K,
 *                               4 = 64K (default 7: all the CPU implements)
 */
#include "guest.h"

#ifndef PAGE_SIZE
#define PAGE_SIZE 4096
#endif
#ifndef HOST_QEMU
#define HOST_QEMU 0
#endif
#ifndef MMU_GRANULES
#define MMU_GRANULES 7
#endif

#ifdef EXPECT_GUARD
#define NR_TESTS 68
#else
#define NR_TESTS 67
#endif

static bool str_is(const char *name, const char *got, const char *want)
{
	bool same = strcmp(got, want) == 0;

	if (same)
		return ok(true, "%s", name);
	return ok(false, "%s (got \"%s\", want \"%s\")", name, got, want);
}

static void test_printf(void)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "%d %i %u", -42, 7, 4000000000U);
	str_is("printf %d %i %u", buf, "-42 7 4000000000");
	snprintf(buf, sizeof(buf), "%x %X %08x %#x", 0xbeefU, 0xbeefU, 0x1234U, 0xffU);
	str_is("printf %x %X %08x %#x", buf, "beef BEEF 00001234 0xff");
	snprintf(buf, sizeof(buf), "%lx %llx %016lx", 0x123456789abcUL, 0xfedcba9876543210ULL,
		 0x42UL);
	str_is("printf %lx %llx %016lx", buf, "123456789abc fedcba9876543210 0000000000000042");
	snprintf(buf, sizeof(buf), "%p %p", (void *)0x40080000UL, (void *)0);
	str_is("printf %p", buf, "0x40080000 0x0");
	snprintf(buf, sizeof(buf), "[%s] [%5s] [%-5s] [%.2s] [%c%c]", "abc", "ab", "ab", "xyz", 'o',
		 'k');
	str_is("printf %s %c widths", buf, "[abc] [   ab] [ab   ] [xy] [ok]");
	snprintf(buf, sizeof(buf), "[%5d] [%-5d] [%05d] [%ld] [%%]", 42, 42, -42,
		 -9223372036854775807L - 1);
	str_is("printf widths and padding", buf,
	       "[   42] [42   ] [-0042] [-9223372036854775808] [%]");
	is_eq("snprintf returns the full length", (u64)snprintf(buf, 4, "%s", "abcdef"), 6);
	str_is("snprintf truncates", buf, "abc");
}

static u64 brk_addr, svc_next;

static void test_exceptions_el1(void)
{
	struct exception_info e;
	u64 before = exception_count;
	volatile int resumed = 0;

	expect_exception();
	asm volatile("adr %0, 1f\n"
		     "1: brk #0x42\n"
		     : "=r"(brk_addr)
		     :
		     : "memory");
	resumed = 1;
	e = take_exception();
	ok(e.taken && resumed, "brk at EL1 caught and resumed");
	is_eq("brk: ESR_EL1", e.esr, (0x3cUL << 26) | (1UL << 25) | 0x42);
	is_eq("brk: vector 0x200", e.vector, VEC_CUR_SPX_SYNC);
	is_eq("brk: ELR_EL1 at the brk", e.elr, brk_addr);
	is_eq("exception_count counted it", exception_count - before, 1);

	expect_exception();
	asm volatile("svc #0x123\n"
		     "adr %0, .\n"
		     : "=r"(svc_next)
		     :
		     : "memory");
	e = take_exception();
	ok(e.taken, "svc at EL1 caught");
	is_eq("svc: ESR_EL1", e.esr, (0x15UL << 26) | (1UL << 25) | 0x123);
	is_eq("svc: ELR_EL1 past the svc", e.elr, svc_next);

	expect_exception();
	e = take_exception();
	ok(!e.taken, "take_exception without an exception: taken == false");
	is_eq("last_exception is the svc", last_exception.ec, ESR_EC_SVC64);
}

static u64 el0_add_one(u64 arg) { return arg + 1; }

static u64 el0_brk(u64 arg)
{
	asm volatile("brk #0x7" ::: "memory");
	return arg * 2;
}

static u64 el0_read(u64 addr) { return readl(__ioptr(addr)); }

static void test_el0(const char *when)
{
	struct exception_info e;
	u64 ret;

	ret = run_at_el0(el0_add_one, 41);
	is_eq(when, ret, 42);

	expect_exception();
	ret = run_at_el0(el0_brk, 21);
	e = take_exception();
	ok(e.taken && e.vector == VEC_LOWER64_SYNC && e.ec == ESR_EC_BRK64 && ret == 42,
	   "brk at EL0 arrives at vector 0x400 and resumes (vector 0x%x EC 0x%x ret %lu)",
	   e.vector, e.ec, ret);
	ok(current_el() == 1, "back at EL1");
}

static void test_smccc(void)
{
	u32 psci = psci_version();

	if (HOST_QEMU) {
		skip("SMCCC_VERSION (QEMU implements PSCI only)");
		skip("PSCI_FEATURES(SMCCC_VERSION)");
		skip("SMC returns NOT_SUPPORTED (QEMU: SMC is undefined without EL3)");
	} else {
		is_eq("SMCCC_VERSION is 1.1", (u32)smccc_version(), 0x10001);
		is_eq("PSCI_FEATURES(SMCCC_VERSION)", (u64)(s64)psci_features(SMCCC_VERSION), 0);
		is_eq("SMC returns NOT_SUPPORTED", smccc_smc(SMCCC_VERSION, 0, 0, 0).a0, (u64)-1);
	}
	ok(psci == 0x10000 || psci == 0x10001, "PSCI_VERSION 1.0 or 1.1 (0x%x)", psci);
	is_eq("PSCI_FEATURES(SYSTEM_OFF)", (u64)(s64)psci_features(PSCI_SYSTEM_OFF), 0);
	is_eq("PSCI_FEATURES(CPU_ON)", (u64)(s64)psci_features(PSCI_CPU_ON64), 0);
	is_eq("unknown function returns NOT_SUPPORTED",
	      smccc_hvc(0x8200ff00, 0, 0, 0).a0, (u64)-1);
}

static volatile u64 scratch;

#define MMU_TESTS 9 /* per granule */

static void test_mmu(unsigned long granule)
{
	struct exception_info e;
	u64 par, ret;
	int err;

	unsigned int bit = granule == SZ_4K ? 1 : granule == SZ_16K ? 2 : 4;

	if (!(MMU_GRANULES & bit)) {
		for (int i = 0; i < MMU_TESTS; i++)
			skip("MMU with %luK granule: not selected (MMU_GRANULES)", granule / 1024);
		return;
	}
	if (!mmu_granule_supported(granule)) {
		for (int i = 0; i < MMU_TESTS; i++)
			skip("MMU with %luK granule: not implemented by this CPU", granule / 1024);
		return;
	}
	err = mmu_enable(granule);
	if (!ok(err == 0 && (read_sysreg(sctlr_el1) & 1) && mmu_granule() == granule,
		"MMU on with %luK granule (err %d)", granule / 1024, err)) {
		for (int i = 1; i < MMU_TESTS; i++)
			skip("MMU %luK did not come up", granule / 1024);
		return;
	}
	scratch = 0x1234;
	par = mmu_at_s1e1r(UART_BASE);
	ok(scratch == 0x1234 && !(par & 1) && (par & 0xfffffffff000UL) == UART_BASE,
	   "MMU %luK: RAM and UART (PAR 0x%lx)", granule / 1024, par);

	expect_exception();
	ret = readl_preset(__ioptr(0x20000000UL), 0x5a5a);
	e = take_exception();
	ok(e.taken && e.ec == ESR_EC_DABT_CUR && (e.esr & 0x3c) == 0x04 && e.far == 0x20000000UL &&
		   ret == 0x5a5a,
	   "MMU %luK: translation fault on an unmapped VA (ESR 0x%lx)", granule / 1024, e.esr);

	test_el0("MMU: run_at_el0 returns fn's result");

	expect_exception();
	ret = run_at_el0(el0_read, UART_BASE + 0x18);
	e = take_exception();
	ok(e.taken && e.ec == ESR_EC_DABT_LOWER && (e.esr & 0x3c) == 0x0c,
	   "MMU %luK: EL0 permission fault on the UART (ESR 0x%lx)", granule / 1024, e.esr);

	mmu_set_user(UART_BASE, granule, true);
	ret = run_at_el0(el0_read, UART_BASE + 0xfe0);
	ok(ret == 0x11, "MMU %luK: EL0 reads UART PeriphID0 after mmu_set_user (0x%lx)",
	   granule / 1024, ret);
	mmu_reset_map();
	mmu_disable();
	ok(!(read_sysreg(sctlr_el1) & 1) && !mmu_enabled(), "MMU %luK off again", granule / 1024);
}

static u64 pair[2] __aligned(16);

static void test_nisv_on_ram(void)
{
	u64 v;

	nisv_stp(pair, 0x1122334455667788UL);
	v = nisv_ldp(pair, 0);
	ok(v == 0x1122334455667788UL && pair[1] == v, "nisv_stp/nisv_ldp on RAM");
	pair[0] = 0xabc;
	ok(nisv_ldr_post(pair, 0) == 0xabc && nisv_ldr_pre(pair, 0) == 0xabc &&
		   nisv_ldxr(pair, 0) == 0xabc,
	   "nisv_ldr_post/pre, nisv_ldxr on RAM");
	fpsimd_enable();
	nisv_str_simd(pair, 0x5a5a5a5a);
	v = nisv_ldr_simd(pair, 0);
	fpsimd_disable();
	is_eq("nisv_str_simd/nisv_ldr_simd on RAM", v, 0x5a5a5a5a);
	if (((read_sysreg(id_aa64isar0_el1) >> 20) & 0xf) >= 2)
		ok(nisv_ldadd(pair, 1, 0) == 0x5a5a5a5a && (u32)pair[0] == 0x5a5a5a5b,
		   "nisv_ldadd on RAM");
	else
		skip("nisv_ldadd: no LSE atomics on this CPU");
}

static volatile u64 secondary_seen;

static void secondary_fn(u64 arg)
{
	secondary_seen = arg + smp_processor_id();
}

static void test_smp(void)
{
	s32 ret = smp_boot_secondary(1, secondary_fn, 0x100);

	if (ret == PSCI_RET_INVALID_PARAMS || ret == PSCI_RET_NOT_PRESENT) {
		skip("secondary CPU: only one CPU (CPU_ON returned %d)", ret);
		skip("secondary CPU: CPU_OFF");
		return;
	}
	for (u64 i = 0; i < 10000000 && !secondary_seen; i++)
		cpu_relax();
	is_eq("secondary CPU ran fn(arg) on CPU 1", secondary_seen, 0x101);
	ok(cpu_wait_online(1, false, 10000000), "secondary CPU turned itself off");
}

static void test_guard(void)
{
	int err = guard_init(PAGE_SIZE);
	void *uart = NULL, *rtc, *again;
	struct exception_info e;
	u32 val;

	/* Enrolled: only mapped granules work now, the console included. */
	if (!err) {
		uart = ioremap(UART_BASE, PAGE_SIZE);
		if (uart)
			uart_set_base(uart);
	}
#ifdef EXPECT_GUARD
	ok((err == 0) == (EXPECT_GUARD != 0), "guard_init(%d): %s", PAGE_SIZE,
	   guard_strerror(err));
#else
	diag("guard_init(%d): %s", PAGE_SIZE, guard_strerror(err));
#endif
	if (err) {
		ok(!guard_enrolled(), "not enrolled after a failed guard_init");
		is_eq("ioremap without the guard returns the address",
		      (u64)(uintptr_t)ioremap(RTC_BASE, 4), RTC_BASE);
		for (int i = 0; i < 4; i++)
			skip("guard: not enrolled");
		return;
	}
	ok(guard_enrolled() && guard_granule() == PAGE_SIZE && uart == (void *)UART_BASE &&
		   guard_refcount(UART_BASE) == 1,
	   "enrolled, granule %lu, UART mapped", guard_granule());

	rtc = ioremap(RTC_BASE, 4);
	again = ioremap(RTC_BASE + 8, 4);
	ok(rtc && again && guard_refcount(RTC_BASE) == 2, "two ioremaps of the RTC: refcount %u",
	   guard_refcount(RTC_BASE));
	iounmap(again, 4);
	val = readl_preset(rtc, 0);
	ok(guard_refcount(RTC_BASE) == 1 && val != 0, "one iounmap: still mapped (RTC 0x%x)", val);
	iounmap(rtc, 4);
	expect_exception();
	val = readl_preset(rtc, 0xdeadbeef);
	e = take_exception();
	ok(e.taken && e.esr == ESR_GUARD_DABT_EL1 && e.far == RTC_BASE && val == 0xdeadbeef,
	   "access after the last iounmap aborted (ESR 0x%lx FAR 0x%lx)", e.esr, e.far);
	ok(ioremap(0x40000000UL, 4) == NULL && guard_refcount(0x40000000UL) == 0,
	   "ioremap of RAM fails and leaves nothing mapped");
	/* 8 bytes straddling two granules of unassigned device space. */
	ok(ioremap(0x0c000000UL + PAGE_SIZE - 4, 8) != NULL &&
		   guard_refcount(0x0c000000UL) == 1 && guard_refcount(0x0c000000UL + PAGE_SIZE) == 1,
	   "ioremap straddling two granules maps both");
}

int main(u64 dtb)
{
	plan(NR_TESTS);
	diag("mmioguard SDK sanity, CPU MIDR 0x%lx, DTB at 0x%lx", read_sysreg(midr_el1), dtb);
	test_printf();
	test_exceptions_el1();
	test_el0("run_at_el0 returns fn's result");
	test_smccc();
	test_nisv_on_ram();
	test_mmu(SZ_4K);
	test_mmu(SZ_16K);
	test_mmu(SZ_64K);
	test_smp();
	test_guard();
	done();
}
