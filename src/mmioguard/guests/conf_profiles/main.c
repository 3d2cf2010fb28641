/*
 * Conformance: the later ABI profiles of spec section 7, each checked with a
 * guest written against that profile's numbers (raw hypercalls, no SDK guard
 * client: guard.h speaks kvm-v2 only).
 *
 * Defines (the VM must be run with the matching profile=):
 *   PROFILE=0   pkvm  (Android protected KVM): explicit ENROLL, errors are
 *               INVALID_PARAMETER (-3)
 *   PROFILE=1   linux (upstream 6.12+ guest): no ENROLL/UNMAP, the first
 *               successful MMIO_GUARD call enrolls, errors are -1
 *
 * Once enrolled the console is unmapped until its granule is mapped: results
 * between ENROLL and that MAP are collected and reported afterwards.
 */
#include "guest.h"

#ifndef PROFILE
#define PROFILE 0
#endif

#define G 4096UL
#define M1 0xffffffffffffffffUL /* NOT_SUPPORTED */
#define M3 0xfffffffffffffffdUL /* INVALID_PARAMETER */
#define SENTINEL 0x5a5a5a5aU
#define FREE_BASE 0x0a000000UL /* unassigned device space */
#define RAM_GRANULE (RAM_BASE + 0x100000UL)

#define FN(n) (0xC6000000U + (n))
#define HYP_MEMINFO FN(2)
#define MEM_SHARE FN(3)

static u64 call(u32 fid, u64 a1, u64 a2)
{
	return smccc_hvc(fid, a1, a2, 0).a0;
}

/* Read the RTC data register; the exception record says whether it aborted. */
static struct exception_info read_rtc(void)
{
	expect_exception();
	(void)readl_preset(__ioptr(RTC_BASE), SENTINEL);
	return take_exception();
}

static void rtc_reads(const char *what)
{
	struct exception_info e = read_rtc();

	ok(!e.taken, "RTC read goes through (no exception): %s", what);
	if (e.taken)
		diag("ESR 0x%lx FAR 0x%lx", e.esr, e.far);
}

static void rtc_aborts(const char *what)
{
	struct exception_info e = read_rtc();
	char name[120];

	ok(e.taken, "RTC read aborted: %s", what);
	snprintf(name, sizeof(name), "abort ESR: %s", what);
	is_eq(name, e.esr, ESR_GUARD_DABT_EL1);
	snprintf(name, sizeof(name), "abort FAR: %s", what);
	is_eq(name, e.far, RTC_BASE);
}

#if PROFILE == 0
#define MMIO_GUARD_INFO FN(5)
#define MMIO_GUARD_ENROLL FN(6)
#define MMIO_GUARD_MAP_ FN(7)
#define MMIO_GUARD_UNMAP_ FN(8)
#define MMIO_RGUARD_MAP FN(10)

static void run(void)
{
	u64 enroll, enroll2, map_uart;
	struct smccc_res r;

	plan(20);
	diag("profile pkvm");
	is_eq("VENDOR_HYP_KVM_FEATURES bitmap", call(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES, 0, 0),
	      0xffd);
	is_eq("HYP_MEMINFO (2) is the granule", call(HYP_MEMINFO, 0, 0), G);
	is_eq("MMIO_GUARD_INFO (5) is the granule", call(MMIO_GUARD_INFO, 0, 0), G);
	is_eq("MMIO_GUARD_MAP (7) before ENROLL: INVALID_PARAMETER",
	      call(MMIO_GUARD_MAP_, RTC_BASE, 0), M3);

	/* Nothing can be printed between ENROLL and the MAP of the UART. */
	enroll = call(MMIO_GUARD_ENROLL, 0, 0);
	enroll2 = call(MMIO_GUARD_ENROLL, 0, 0);
	map_uart = call(MMIO_GUARD_MAP_, UART_BASE, 0);
	is_eq("MMIO_GUARD_ENROLL (6)", enroll, 0);
	is_eq("MMIO_GUARD_ENROLL again", enroll2, 0);
	is_eq("MMIO_GUARD_MAP of the UART granule", map_uart, 0);

	is_eq("MAP misaligned: INVALID_PARAMETER", call(MMIO_GUARD_MAP_, RTC_BASE + 0x10, 0), M3);
	is_eq("MAP of a RAM granule: INVALID_PARAMETER", call(MMIO_GUARD_MAP_, RAM_GRANULE, 0), M3);
	is_eq("MAP of the RTC granule", call(MMIO_GUARD_MAP_, RTC_BASE, 0), 0);
	rtc_reads("RTC mapped");
	is_eq("MMIO_GUARD_UNMAP (8) of the RTC granule", call(MMIO_GUARD_UNMAP_, RTC_BASE, 0), 0);
	rtc_aborts("RTC unmapped");
	is_eq("UNMAP of an unmapped granule: INVALID_PARAMETER",
	      call(MMIO_GUARD_UNMAP_, RTC_BASE, 0), M3);

	is_eq("MEM_SHARE (3) of a RAM granule", call(MEM_SHARE, RAM_GRANULE, 0), 0);
	is_eq("MEM_SHARE of a device address: INVALID_PARAMETER", call(MEM_SHARE, RTC_BASE, 0),
	      M3);

	r = smccc_hvc(MMIO_RGUARD_MAP, FREE_BASE, 2 * G, 0);
	is_eq("MMIO_RGUARD_MAP (10) of two granules: x0", r.a0, 0);
	is_eq("MMIO_RGUARD_MAP of two granules: x1 = bytes mapped", r.a1, 2 * G);
}

#else
#define MMIO_GUARD FN(7)

static void run(void)
{
	u64 res;

	plan(14);
	diag("profile linux");
	is_eq("VENDOR_HYP_KVM_FEATURES bitmap", call(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES, 0, 0),
	      0x9d);
	is_eq("HYP_MEMINFO (2) is the granule", call(HYP_MEMINFO, 0, 0), G);
	is_eq("call 5 is reserved: NOT_SUPPORTED", call(FN(5), 0, 0), M1);
	is_eq("call 6 is reserved: NOT_SUPPORTED", call(FN(6), 0, 0), M1);
	is_eq("call 8 is reserved: NOT_SUPPORTED", call(FN(8), RTC_BASE, 0), M1);

	/* A failed call never enrolls (the console stays usable either way). */
	is_eq("MMIO_GUARD (7) misaligned: NOT_SUPPORTED", call(MMIO_GUARD, UART_BASE + 0x10, 0),
	      M1);
	rtc_reads("the failed MMIO_GUARD did not enroll");

	/* The first success enrolls: the UART's, so the console keeps working. */
	res = call(MMIO_GUARD, UART_BASE, 0);
	is_eq("MMIO_GUARD of the UART granule", res, 0);
	rtc_aborts("the first successful MMIO_GUARD enrolled");
	is_eq("MMIO_GUARD of the RTC granule", call(MMIO_GUARD, RTC_BASE, 0), 0);
	rtc_reads("RTC granule mapped by MMIO_GUARD");

	is_eq("MEM_SHARE (3) of a RAM granule", call(MEM_SHARE, RAM_GRANULE, 0), 0);
}
#endif

int main(u64 dtb)
{
	(void)dtb;
	run();
	done();
}
