/*
 * Secondary CPUs.
 *
 * smp_boot_secondary(cpu, fn, arg) starts CPU `cpu` (MPIDR affinity = cpu, as
 * on the virt machine with up to 8 CPUs) through PSCI CPU_ON at
 * secondary_entry with context_id = cpu.  The new CPU gets its own 16 KiB
 * stack, the SDK's vectors, the boot CPU's MMU configuration if the MMU is on,
 * and calls fn(arg); when fn returns it marks itself offline and calls PSCI
 * CPU_OFF.  Returns the PSCI result (0 on success).
 */
#ifndef MMIOGUARD_SMP_H
#define MMIOGUARD_SMP_H

#include "types.h"

typedef void (*secondary_fn_t)(u64 arg);

/* This CPU's index (0 = boot CPU), kept in TPIDR_EL1. */
static inline unsigned int smp_processor_id(void)
{
	u64 v;

	asm volatile("mrs %0, tpidr_el1" : "=r"(v));
	return (unsigned int)v & (NR_CPUS - 1);
}

s32 smp_boot_secondary(unsigned int cpu, secondary_fn_t fn, u64 arg);
/* As above with an explicit MPIDR affinity value for CPU_ON. */
s32 smp_boot_secondary_mpidr(unsigned int cpu, u64 mpidr, secondary_fn_t fn, u64 arg);
/* True from just before fn(arg) runs until fn returns. */
bool cpu_online(unsigned int cpu);
/* Wait (bounded by `spins` polls; 0 = forever) for cpu_online(cpu) to become `online`. */
bool cpu_wait_online(unsigned int cpu, bool online, u64 spins);

/* The PSCI CPU_ON entry point (start.S); expects x0 = CPU index. */
void secondary_entry(void);

#endif
