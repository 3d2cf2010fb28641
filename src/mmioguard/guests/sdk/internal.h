/* SDK-internal declarations (not for tests). */
#ifndef MMIOGUARD_INTERNAL_H
#define MMIOGUARD_INTERNAL_H

#include "types.h"

/* Make sure the console can print (re-MAP the UART granule if the guard is on). */
void sdk_console_rescue(void);
/* Bring a secondary CPU's MMU up to the boot CPU's configuration. */
void mmu_secondary_init(void);

__noreturn void guest_start(u64 dtb);
__noreturn void secondary_start(u64 cpu);

#endif
