/*
 * mmioguard guest SDK: include this one header.
 *
 * A guest provides `int main(u64 dtb)`.  The SDK's _start (start.S) runs at
 * EL1h with the MMU off, sets up the stack and vectors, clears .bss and calls
 * main(dtb) with the device tree address from x0 (0 when the loader passes
 * none).  When main returns, the guest powers off with PSCI SYSTEM_OFF (after
 * printing "exit code N" and "FAIL" if main returned non-zero).
 *
 *   types.h       u8..u64, sizes, the virt machine's addresses
 *   sysreg.h      read_sysreg/write_sysreg, barriers, ESR classes
 *   io.h          readb..readq / writeb..writeq device accessors
 *   printf.h      PL011 console, printf, snprintf
 *   lib.h         memcpy & co, boot_dtb(), exit()
 *   exceptions.h  expect_exception(), take_exception(), run_at_el0()
 *   smccc.h       smccc_hvc/smccc_smc, PSCI wrappers
 *   smp.h         secondary CPUs
 *   mmu.h         stage-1 identity map with 4K/16K/64K granules
 *   guard.h       MMIO guard client: guard_init(), ioremap(), iounmap()
 *   tap.h         TAP test output: plan(), ok(), is_eq(), done()
 */
#ifndef MMIOGUARD_GUEST_H
#define MMIOGUARD_GUEST_H

#include "types.h"
#include "sysreg.h"
#include "io.h"
#include "printf.h"
#include "lib.h"
#include "exceptions.h"
#include "smccc.h"
#include "smp.h"
#include "mmu.h"
#include "guard.h"
#include "tap.h"

#endif
