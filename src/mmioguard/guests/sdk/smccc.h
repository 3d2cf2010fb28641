/*
 * SMCCC 1.1 calls and PSCI wrappers.
 *
 * smccc_hvc()/smccc_smc() issue HVC #0 / SMC #0 with w0 = fid and x1..x3 =
 * a1..a3 and return x0..x3.  Negative PSCI/SMCCC results come back as
 * sign-extended 64-bit values (NOT_SUPPORTED = 0xffffffffffffffff).
 *
 * smccc_hvc() is a weak symbol: a test guest may define its own to put a mock
 * hypervisor in front of every SDK call (guests/guardunit does), and reach
 * the real one through smccc_hvc_raw().
 */
#ifndef MMIOGUARD_SMCCC_H
#define MMIOGUARD_SMCCC_H

#include "types.h"

struct smccc_res {
	u64 a0, a1, a2, a3;
};

struct smccc_res smccc_hvc(u32 fid, u64 a1, u64 a2, u64 a3);
struct smccc_res smccc_hvc_raw(u32 fid, u64 a1, u64 a2, u64 a3);
struct smccc_res smccc_smc(u32 fid, u64 a1, u64 a2, u64 a3);

/* SMCCC architecture calls. */
#define SMCCC_VERSION 0x80000000U
#define SMCCC_ARCH_FEATURES 0x80000001U
#define SMCCC_RET_SUCCESS 0
#define SMCCC_RET_NOT_SUPPORTED (-1)
#define SMCCC_RET_NOT_REQUIRED (-2)
#define SMCCC_RET_INVALID_PARAMETER (-3)

/* SMCCC_VERSION result (-1 from an SMCCC 1.0 implementation). */
s32 smccc_version(void);
s32 smccc_arch_features(u32 fid);

/* PSCI function IDs (0.2+; the *64 ones take 64-bit arguments). */
#define PSCI_VERSION 0x84000000U
#define PSCI_CPU_SUSPEND64 0xC4000001U
#define PSCI_CPU_OFF 0x84000002U
#define PSCI_CPU_ON64 0xC4000003U
#define PSCI_AFFINITY_INFO64 0xC4000004U
#define PSCI_MIGRATE_INFO_TYPE 0x84000006U
#define PSCI_SYSTEM_OFF 0x84000008U
#define PSCI_SYSTEM_RESET 0x84000009U
#define PSCI_FEATURES 0x8400000AU
#define PSCI_SYSTEM_RESET2_64 0xC4000012U

/* PSCI return codes. */
#define PSCI_RET_SUCCESS 0
#define PSCI_RET_NOT_SUPPORTED (-1)
#define PSCI_RET_INVALID_PARAMS (-2)
#define PSCI_RET_DENIED (-3)
#define PSCI_RET_ALREADY_ON (-4)
#define PSCI_RET_ON_PENDING (-5)
#define PSCI_RET_INTERNAL_FAILURE (-6)
#define PSCI_RET_NOT_PRESENT (-7)
#define PSCI_RET_DISABLED (-8)
#define PSCI_RET_INVALID_ADDRESS (-9)

/* AFFINITY_INFO results. */
#define PSCI_AFFINITY_ON 0
#define PSCI_AFFINITY_OFF 1
#define PSCI_AFFINITY_ON_PENDING 2

/* PSCI_VERSION: major in bits 31:16, minor in 15:0 (0x10001 = 1.1). */
u32 psci_version(void);
s32 psci_features(u32 fid);
/* Start CPU `mpidr` at physical address `entry` with x0 = context_id. */
s32 psci_cpu_on(u64 mpidr, u64 entry, u64 context_id);
/* Only returns on failure. */
s32 psci_cpu_off(void);
s32 psci_affinity_info(u64 mpidr, u32 lowest_level);
/* Power off / reset; if the call returns (unsupported), the CPU parks in WFI. */
__noreturn void psci_system_off(void);
__noreturn void psci_system_reset(void);
/* Returns only on failure (e.g. NOT_SUPPORTED). type 0 = SYSTEM_WARM_RESET. */
s32 psci_system_reset2(u32 reset_type, u64 cookie);

#endif
