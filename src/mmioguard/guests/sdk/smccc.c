/* SMCCC conduits and PSCI wrappers. */
#include "smccc.h"
#include "sysreg.h"

#define SMCCC_CALL(insn)                                                          \
	do {                                                                      \
		register u64 r0 asm("x0") = fid;                                  \
		register u64 r1 asm("x1") = a1;                                   \
		register u64 r2 asm("x2") = a2;                                   \
		register u64 r3 asm("x3") = a3;                                   \
		asm volatile(insn                                                 \
			     : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3)             \
			     :                                                    \
			     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",  \
			       "x12", "x13", "x14", "x15", "x16", "x17", "memory"); \
		res.a0 = r0;                                                      \
		res.a1 = r1;                                                      \
		res.a2 = r2;                                                      \
		res.a3 = r3;                                                      \
	} while (0)

struct smccc_res smccc_hvc_raw(u32 fid, u64 a1, u64 a2, u64 a3)
{
	struct smccc_res res;

	SMCCC_CALL("hvc #0");
	return res;
}

/* Weak, so that a test guest can put a mock hypervisor in front of it. */
__weak struct smccc_res smccc_hvc(u32 fid, u64 a1, u64 a2, u64 a3)
{
	struct smccc_res res;

	SMCCC_CALL("hvc #0");
	return res;
}

struct smccc_res smccc_smc(u32 fid, u64 a1, u64 a2, u64 a3)
{
	struct smccc_res res;

	SMCCC_CALL(".inst 0xd4000003 /* smc #0 */");
	return res;
}

static s32 hvc0(u32 fid) { return (s32)smccc_hvc(fid, 0, 0, 0).a0; }

s32 smccc_version(void) { return hvc0(SMCCC_VERSION); }

s32 smccc_arch_features(u32 fid) { return (s32)smccc_hvc(SMCCC_ARCH_FEATURES, fid, 0, 0).a0; }

u32 psci_version(void) { return (u32)smccc_hvc(PSCI_VERSION, 0, 0, 0).a0; }

s32 psci_features(u32 fid) { return (s32)smccc_hvc(PSCI_FEATURES, fid, 0, 0).a0; }

s32 psci_cpu_on(u64 mpidr, u64 entry, u64 context_id)
{
	return (s32)smccc_hvc(PSCI_CPU_ON64, mpidr, entry, context_id).a0;
}

s32 psci_cpu_off(void) { return hvc0(PSCI_CPU_OFF); }

s32 psci_affinity_info(u64 mpidr, u32 lowest_level)
{
	return (s32)smccc_hvc(PSCI_AFFINITY_INFO64, mpidr, lowest_level, 0).a0;
}

__noreturn void psci_system_off(void)
{
	hvc0(PSCI_SYSTEM_OFF);
	for (;;)
		wfi();
}

__noreturn void psci_system_reset(void)
{
	hvc0(PSCI_SYSTEM_RESET);
	for (;;)
		wfi();
}

s32 psci_system_reset2(u32 reset_type, u64 cookie)
{
	return (s32)smccc_hvc(PSCI_SYSTEM_RESET2_64, reset_type, cookie, 0).a0;
}
