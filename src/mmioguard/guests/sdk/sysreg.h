/* System register access and barriers. */
#ifndef MMIOGUARD_SYSREG_H
#define MMIOGUARD_SYSREG_H

#include "types.h"

#define read_sysreg(r)                                                  \
	({                                                              \
		u64 __val;                                              \
		asm volatile("mrs %0, " #r : "=r"(__val)::"memory");    \
		__val;                                                  \
	})

#define write_sysreg(v, r)                                              \
	do {                                                            \
		u64 __val = (u64)(v);                                   \
		asm volatile("msr " #r ", %x0" ::"rZ"(__val) : "memory"); \
	} while (0)

#define isb() asm volatile("isb" ::: "memory")
#define dsb(opt) asm volatile("dsb " #opt ::: "memory")
#define dmb(opt) asm volatile("dmb " #opt ::: "memory")
#define wfi() asm volatile("wfi" ::: "memory")
#define wfe() asm volatile("wfe" ::: "memory")
#define sev() asm volatile("sev" ::: "memory")
#define cpu_relax() asm volatile("yield" ::: "memory")
#define barrier() asm volatile("" ::: "memory")

/* DAIF bits as in PSTATE / SPSR. */
#define DAIF_D (1UL << 9)
#define DAIF_A (1UL << 8)
#define DAIF_I (1UL << 7)
#define DAIF_F (1UL << 6)

static inline void local_irq_enable(void) { asm volatile("msr daifclr, #2" ::: "memory"); }
static inline void local_irq_disable(void) { asm volatile("msr daifset, #2" ::: "memory"); }

/* CurrentEL as 0..3. */
static inline unsigned int current_el(void) { return (unsigned int)(read_sysreg(CurrentEL) >> 2) & 3; }

/* ESR_EL1 exception classes used by the SDK and tests. */
#define ESR_EC_SHIFT 26
#define ESR_EC(esr) ((unsigned int)((esr) >> ESR_EC_SHIFT) & 0x3f)
#define ESR_ISS(esr) ((esr) & 0x1ffffffUL)
#define ESR_EC_UNKNOWN 0x00
#define ESR_EC_WFX 0x01
#define ESR_EC_FP_ASIMD 0x07
#define ESR_EC_ILLEGAL_STATE 0x0e
#define ESR_EC_SVC32 0x11
#define ESR_EC_HVC32 0x12
#define ESR_EC_SMC32 0x13
#define ESR_EC_SVC64 0x15
#define ESR_EC_HVC64 0x16
#define ESR_EC_SMC64 0x17
#define ESR_EC_SYS64 0x18
#define ESR_EC_IABT_LOWER 0x20
#define ESR_EC_IABT_CUR 0x21
#define ESR_EC_PC_ALIGN 0x22
#define ESR_EC_DABT_LOWER 0x24
#define ESR_EC_DABT_CUR 0x25
#define ESR_EC_SP_ALIGN 0x26
#define ESR_EC_SERROR 0x2f
#define ESR_EC_BRK64 0x3c

/* ESR values the MMIO guard injects (spec section 4). */
#define ESR_GUARD_DABT_EL1 0x96000010UL
#define ESR_GUARD_DABT_EL0 0x92000010UL
#define ESR_GUARD_IABT_EL1 0x86000010UL
#define ESR_GUARD_IABT_EL0 0x82000010UL

#endif
