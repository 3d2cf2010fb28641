/*
 * Stage-1 identity map (VA == PA, 39-bit VA space, TTBR0 only) with the 4K,
 * 16K or 64K translation granule chosen at run time.
 *
 * MAIR_EL1 (programmed at boot, see asm-defs.h):
 *   index 0 MT_DEVICE_nGnRE (0x04), 1 MT_NORMAL write-back (0xff),
 *   2 MT_DEVICE_nGnRnE (0x00), 3 MT_NORMAL_NC (0x44).
 *
 * Default map, built by mmu_enable():
 *   RAM base .. + RAM size (mmu_set_ram_size(), default 128 MiB):
 *       Normal WB, read-write, EL0-accessible, execute-never;
 *   the image's text and rodata (__text_start..__text_end):
 *       Normal WB, read-only, EL0-accessible, executable at EL1 and EL0;
 *   the device window 0x08000000..0x10000000:
 *       Device-nGnRE, EL1 read-write, no EL0 access, execute-never;
 *   everything else: unmapped (translation fault).
 * Then every change requested with mmu_map*() / mmu_unmap() / mmu_set_user()
 * is applied on top, in call order (a later change wins).  Changes are
 * remembered (up to MMU_MAX_CHANGES) and survive mmu_disable()/mmu_enable(),
 * so they apply to every granule; mmu_reset_map() forgets them.  Ranges are
 * rounded out to the granule in use.  When the MMU is on, a change rebuilds
 * the tables (with the MMU briefly off on this CPU): do not change the map
 * while other CPUs run with the MMU on.
 *
 * ioremap() (guard.h) does not create stage-1 mappings: device addresses
 * outside the device window need mmu_map_device() when the MMU is on.
 */
#ifndef MMIOGUARD_MMU_H
#define MMIOGUARD_MMU_H

#include "types.h"

#define MT_DEVICE_nGnRE 0
#define MT_NORMAL 1
#define MT_DEVICE_nGnRnE 2
#define MT_NORMAL_NC 3

/* Flags for mmu_map(). */
#define MMU_USER (1U << 0)   /* EL0 may access (AP[1]) */
#define MMU_RDONLY (1U << 1) /* read-only at EL1 (and EL0) (AP[2]) */
#define MMU_EXEC (1U << 2)   /* executable (EL1, and EL0 if MMU_USER); never for Device */

#define MMU_MAX_CHANGES 32

/* Error codes. */
#define MMU_ENOTSUPP (-1) /* granule not implemented by this CPU (ID_AA64MMFR0_EL1) */
#define MMU_ENOMEM (-2)   /* out of translation tables or change slots */
#define MMU_EINVAL (-3)   /* bad granule, attribute index or address range */

void mmu_set_ram_size(u64 size);
bool mmu_granule_supported(unsigned long granule);

/* Build the tables for `granule` (4096, 16384 or 65536) and turn the MMU on. */
int mmu_enable(unsigned long granule);
/* Turn the MMU off (the tables and the recorded changes are kept). */
void mmu_disable(void);
bool mmu_enabled(void);
/* Granule in use, 0 when the MMU is off. */
unsigned long mmu_granule(void);

/* Map [pa, pa + size) with MAIR index attr_idx and MMU_* flags. */
int mmu_map(u64 pa, u64 size, unsigned int attr_idx, unsigned int flags);
/* Device-nGnRE, EL1 read-write, execute-never. */
int mmu_map_device(u64 pa, u64 size);
/* Normal WB, EL1 read-write, execute-never: e.g. a device page where a test
 * wants an unaligned access straddling two granules, legal only on Normal. */
int mmu_map_normal(u64 pa, u64 size);
/* Make [pa, pa + size) invalid (translation fault). */
int mmu_unmap(u64 pa, u64 size);
/* Grant (user = true) or remove EL0 access to the pages mapped in the range. */
int mmu_set_user(u64 pa, u64 size, bool user);
/* Forget all changes (back to the default map; rebuilt now if the MMU is on). */
void mmu_reset_map(void);

/* AT S1E1R: PAR_EL1 for a read of va at EL1 (bit 0 set = fault). */
u64 mmu_at_s1e1r(u64 va);

#endif
