/*
 * Conformance: SMCCC calling convention and discovery (spec section 2).
 *
 * Checks, from inside the guest, what a guest can rely on before it enrolls:
 * SMCCC_VERSION, SMCCC_ARCH_FEATURES, PSCI_VERSION and PSCI_FEATURES, KVM's
 * vendor UID, the KVM feature bitmap (0x3d for kvm-v2: bits 0, 2..5, no PTP),
 * the register convention (single result: x1..x3 zeroed; only w0 selects the
 * function; the HVC immediate is ignored; x4..x17 preserved), unknown IDs
 * (NOT_SUPPORTED and no side effect), SMC (NOT_SUPPORTED, skipped) and HVC
 * from EL0 (undefined instruction).
 *
 * Runs with the default VM settings; never enrolls.
 */
#include "guest.h"

#define NR_TESTS 74
#define M1 0xffffffffffffffffUL

struct smccc_res hvc64(u64 x0, u64 a1, u64 a2, u64 a3);
u64 hvc_imm(u32 fid);
u64 hvc_imm_max(u32 fid);
u64 hvc_clobbers(u32 fid);
u64 smc_call(u32 fid, u64 a1, u64 *continued);
u64 el0_hvc(u64 fid);
extern char el0_hvc_insn[];

/* A call that must return (want, 0, 0, 0), made with junk in x1..x3 where
 * the call ignores them. */
static void single(const char *what, u32 fid, u64 a1, u64 want)
{
	char name[120];
	struct smccc_res r = smccc_hvc(fid, a1, 0x2222222222222222UL, 0x3333333333333333UL);

	snprintf(name, sizeof(name), "%s: x0", what);
	is_eq(name, r.a0, want);
	snprintf(name, sizeof(name), "%s: x1..x3 zeroed (single result)", what);
	is_eq(name, r.a1 | r.a2 | r.a3, 0);
}

static void feature(const char *what, u32 fn, u32 fid, u64 want)
{
	char name[120];

	snprintf(name, sizeof(name), "%s (fid 0x%08x)", what, fid);
	is_eq(name, smccc_hvc(fn, fid, 0, 0).a0, want);
}

/* MMIO_GUARD_MAP with a valid device granule: -1 tells "not enrolled". */
static bool still_not_enrolled(void)
{
	return guard_map(UART_BASE, 0) == -1;
}

int main(u64 dtb)
{
	struct smccc_res r;
	struct exception_info e;
	u64 v, continued;
	u32 psci;

	plan(NR_TESTS);

	/* SMCCC_VERSION */
	single("SMCCC_VERSION is 1.1", SMCCC_VERSION, 0x1111111111111111UL, 0x10001);
	is_eq("only w0 selects the function: x0 = 0xdeadbeef80000000 is SMCCC_VERSION",
	      hvc64(0xdeadbeef00000000UL | SMCCC_VERSION, 0, 0, 0).a0, 0x10001);
	is_eq("only w0 selects the function: x0 = 0xffffffffc6000002 is MMIO_GUARD_INFO",
	      hvc64(0xffffffff00000000UL | MMIO_GUARD_INFO, 0, 0, 0).a0, 4096);
	is_eq("the HVC immediate is ignored: hvc #0x4d", hvc_imm(SMCCC_VERSION), 0x10001);
	is_eq("the HVC immediate is ignored: hvc #0xffff", hvc_imm_max(PSCI_VERSION),
	      (u64)psci_version());
	is_eq("SMCCC 1.1: x4..x17 preserved by SMCCC_VERSION (mask of changed)",
	      hvc_clobbers(SMCCC_VERSION), 0);
	is_eq("SMCCC 1.1: x4..x17 preserved by VENDOR_HYP_CALL_UID (mask of changed)",
	      hvc_clobbers(ARM_SMCCC_VENDOR_HYP_CALL_UID), 0);
	is_eq("SMCCC 1.1: x4..x17 preserved by an unknown call (mask of changed)",
	      hvc_clobbers(0xc6000063), 0);

	/* SMCCC_ARCH_FEATURES */
	feature("SMCCC_ARCH_FEATURES", SMCCC_ARCH_FEATURES, SMCCC_VERSION, 0);
	feature("SMCCC_ARCH_FEATURES", SMCCC_ARCH_FEATURES, SMCCC_ARCH_FEATURES, 0);
	feature("SMCCC_ARCH_FEATURES of an unimplemented arch call", SMCCC_ARCH_FEATURES,
		0x80007ffe, M1);
	feature("SMCCC_ARCH_FEATURES of a non-arch call", SMCCC_ARCH_FEATURES, PSCI_VERSION, M1);

	/* PSCI */
	psci = psci_version();
	ok(psci == 0x10000 || psci == 0x10001, "PSCI_VERSION is 1.0 or 1.1 (0x%x)", psci);
	single("PSCI_VERSION", PSCI_VERSION, 0x1111, psci);
	feature("PSCI_FEATURES", PSCI_FEATURES, PSCI_VERSION, 0);
	feature("PSCI_FEATURES", PSCI_FEATURES, PSCI_FEATURES, 0);
	feature("PSCI_FEATURES", PSCI_FEATURES, PSCI_CPU_OFF, 0);
	feature("PSCI_FEATURES", PSCI_FEATURES, PSCI_CPU_ON64, 0);
	feature("PSCI_FEATURES", PSCI_FEATURES, PSCI_AFFINITY_INFO64, 0);
	feature("PSCI_FEATURES", PSCI_FEATURES, PSCI_SYSTEM_OFF, 0);
	feature("PSCI_FEATURES", PSCI_FEATURES, PSCI_SYSTEM_RESET, 0);
	feature("PSCI_FEATURES of SMCCC_VERSION", PSCI_FEATURES, SMCCC_VERSION, 0);
	feature("PSCI_FEATURES of SMCCC_ARCH_FEATURES (not PSCI)", PSCI_FEATURES,
		SMCCC_ARCH_FEATURES, M1);
	feature("PSCI_FEATURES of an unallocated PSCI ID", PSCI_FEATURES, 0x8400001f, M1);
	feature("PSCI_FEATURES of MMIO_GUARD_INFO (not PSCI)", PSCI_FEATURES, MMIO_GUARD_INFO, M1);

	/* Vendor hypervisor service: UID, then the KVM feature bitmap. */
	r = smccc_hvc(ARM_SMCCC_VENDOR_HYP_CALL_UID, 0x1111, 0x2222, 0x3333);
	is_eq("VENDOR_HYP_CALL_UID x0", r.a0, KVM_UID_0);
	is_eq("VENDOR_HYP_CALL_UID x1", r.a1, KVM_UID_1);
	is_eq("VENDOR_HYP_CALL_UID x2", r.a2, KVM_UID_2);
	is_eq("VENDOR_HYP_CALL_UID x3", r.a3, KVM_UID_3);
	r = smccc_hvc(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES, 0x1111, 0x2222, 0x3333);
	is_eq("VENDOR_HYP_KVM_FEATURES bitmap (kvm-v2: FEATURES, INFO, ENROLL, MAP, UNMAP)", r.a0,
	      0x3d);
	is_eq("VENDOR_HYP_KVM_FEATURES: x1..x3 zeroed", r.a1 | r.a2 | r.a3, 0);
	is_eq("feature bit 0 (FEATURES) set", (r.a0 >> KVM_FEATURE_FEATURES) & 1, 1);
	is_eq("feature bits 2..5 (the MMIO guard) all set", r.a0 & KVM_FEATURES_MMIO_GUARD_ALL,
	      KVM_FEATURES_MMIO_GUARD_ALL);
	is_eq("feature bit 1 (PTP) clear", (r.a0 >> KVM_FEATURE_PTP) & 1, 0);
	is_eq("PTP not advertised, so not implemented: 0x86000001 -> NOT_SUPPORTED",
	      smccc_hvc(0x86000001, 0, 0, 0).a0, M1);
	is_eq("PTP (64-bit ID 0xc6000001) -> NOT_SUPPORTED", smccc_hvc(0xc6000001, 0, 0, 0).a0,
	      M1);
	/* Every advertised bit n answers (INFO: the granule, here 4K by default). */
	single("MMIO_GUARD_INFO (bit 2) answers before enrollment", MMIO_GUARD_INFO, 0x1111, 4096);

	/* Unknown function IDs: NOT_SUPPORTED in x0, x1..x3 zeroed, nothing else. */
	single("unknown vendor call 0xc6000063", 0xc6000063, UART_BASE, M1);
	single("kvm-v2 has no function 6: 0xc6000006", 0xc6000006, UART_BASE, M1);
	single("SMC32 alias of MMIO_GUARD_INFO 0x86000002 (the guard is 64-bit only)",
	       0x86000002, 0, M1);
	single("SMC32 alias of MMIO_GUARD_ENROLL 0x86000003", 0x86000003, 0, M1);
	single("yielding (non-fast) 0x46000003", 0x46000003, 0, M1);
	single("SiP service call 0xc2000000", 0xc2000000, 0, M1);
	ok(still_not_enrolled(), "unknown calls enrolled nothing (MAP still refused)");

	/* SMC: no EL3 firmware, NOT_SUPPORTED, instruction skipped. */
	continued = 0;
	v = smc_call(SMCCC_VERSION, 0, &continued);
	is_eq("smc #0 SMCCC_VERSION -> NOT_SUPPORTED", v, M1);
	is_eq("smc #0 is skipped: the next instruction ran", continued, 1);
	continued = 0;
	v = smc_call(MMIO_GUARD_ENROLL, 0, &continued);
	is_eq("smc #0 MMIO_GUARD_ENROLL -> NOT_SUPPORTED", v, M1);
	ok(still_not_enrolled(), "ENROLL over SMC enrolled nothing (MAP still refused)");
	is_eq("smc #0 PSCI_SYSTEM_OFF -> NOT_SUPPORTED (and the VM keeps running)",
	      smc_call(PSCI_SYSTEM_OFF, 0, &continued), M1);

	/* HVC at EL0 is an undefined instruction, taken to EL1; x0 untouched. */
	expect_exception();
	v = run_at_el0(el0_hvc, SMCCC_VERSION);
	e = take_exception();
	ok(e.taken, "hvc at EL0: an exception is taken");
	is_eq("hvc at EL0: vector 0x400", e.vector, VEC_LOWER64_SYNC);
	is_eq("hvc at EL0: ESR_EL1 (EC 0 unknown, IL)", e.esr, 0x02000000);
	is_eq("hvc at EL0: ELR_EL1 is the hvc", e.elr, (u64)(uintptr_t)el0_hvc_insn);
	is_eq("hvc at EL0: x0 not replaced by a result", v, SMCCC_VERSION);

	/* The same discovery at EL1 still works after all that. */
	single("SMCCC_VERSION again", SMCCC_VERSION, 0, 0x10001);
	v = (u64)(s64)guard_init(4096);
	if (v == 0)
		uart_set_base(ioremap(UART_BASE, 4096));
	is_eq("guard_init(4096) over the discovered interface succeeds", v, 0);
	single("MMIO_GUARD_INFO (bit 2) answers after enrollment", MMIO_GUARD_INFO, 0x1111, 4096);
	single("MMIO_GUARD_ENROLL (bit 3) again", MMIO_GUARD_ENROLL, 0x1111, 0);
	single("MMIO_GUARD_MAP (bit 4) of the RTC", MMIO_GUARD_MAP, RTC_BASE, 0);
	single("MMIO_GUARD_UNMAP (bit 5) of the RTC", MMIO_GUARD_UNMAP, RTC_BASE, 0);
	done();
}
