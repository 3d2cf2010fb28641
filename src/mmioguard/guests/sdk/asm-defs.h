/* Constants shared by assembly and C. Keep it free of C syntax. */
#ifndef MMIOGUARD_ASM_DEFS_H
#define MMIOGUARD_ASM_DEFS_H

/*
 * SCTLR_EL1 with the MMU off: the RES1 bits of ARMv8.0 (11, 20, 22, 23, 28,
 * 29; bit 23 is SPAN=1, so PSTATE.PAN is left alone on exception entry), nTWI
 * and nTWE (WFI/WFE at EL0 do not trap), SA and SA0 (SP alignment checks).
 * Caches off, alignment checking off, little-endian.
 */
#define SCTLR_EL1_RES1 0x30d00800
#define SCTLR_EL1_NTWI (1 << 16)
#define SCTLR_EL1_NTWE (1 << 18)
#define SCTLR_EL1_SA (1 << 3)
#define SCTLR_EL1_SA0 (1 << 4)
#define SCTLR_EL1_M (1 << 0)
#define SCTLR_EL1_C (1 << 2)
#define SCTLR_EL1_I (1 << 12)
#define SCTLR_EL1_MMU_OFF \
	(SCTLR_EL1_RES1 | SCTLR_EL1_NTWI | SCTLR_EL1_NTWE | SCTLR_EL1_SA | SCTLR_EL1_SA0)

/*
 * MAIR_EL1 layout used by the whole SDK (and programmed at boot, even with the
 * MMU off, so that an MMIO_GUARD_MAP with x2 = 0 always names a Device type):
 *   index 0: Device-nGnRE   (0x04)
 *   index 1: Normal WB RW-allocate, inner and outer (0xff)
 *   index 2: Device-nGnRnE  (0x00)
 *   index 3: Normal non-cacheable (0x44)
 */
#define MAIR_EL1_VALUE 0x4400ff04

#define PSCI_0_2_FN_SYSTEM_OFF 0x84000008
#define PSCI_0_2_FN_CPU_OFF 0x84000002

/* SVC immediate used by run_at_el0() to return to EL1. */
#define SVC_RETURN_TO_EL1 0xe1e1

/* Size of struct exception_frame: x0..x30, sp, elr, spsr. */
#define EXCEPTION_FRAME_SIZE (34 * 8)

#define NR_CPUS_ASM 8
#define STACK_SHIFT 14 /* 16 KiB stacks */

#endif
