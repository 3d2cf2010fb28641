/* Secondary CPU bring-up through PSCI CPU_ON. */
#include "smp.h"
#include "internal.h"
#include "smccc.h"
#include "sysreg.h"

struct secondary_boot {
	secondary_fn_t fn;
	u64 arg;
	volatile u32 online;
};

static struct secondary_boot boot_slot[NR_CPUS];

s32 smp_boot_secondary_mpidr(unsigned int cpu, u64 mpidr, secondary_fn_t fn, u64 arg)
{
	if (cpu == 0 || cpu >= NR_CPUS || !fn)
		return PSCI_RET_INVALID_PARAMS;
	boot_slot[cpu].fn = fn;
	boot_slot[cpu].arg = arg;
	boot_slot[cpu].online = 0;
	dsb(sy);
	return psci_cpu_on(mpidr, (u64)(uintptr_t)secondary_entry, cpu);
}

s32 smp_boot_secondary(unsigned int cpu, secondary_fn_t fn, u64 arg)
{
	return smp_boot_secondary_mpidr(cpu, cpu, fn, arg);
}

bool cpu_online(unsigned int cpu)
{
	if (cpu == 0)
		return true;
	if (cpu >= NR_CPUS)
		return false;
	dmb(sy);
	return boot_slot[cpu].online != 0;
}

bool cpu_wait_online(unsigned int cpu, bool online, u64 spins)
{
	for (u64 i = 0; spins == 0 || i < spins; i++) {
		if (cpu_online(cpu) == online)
			return true;
		cpu_relax();
	}
	return false;
}

__noreturn void secondary_start(u64 cpu)
{
	struct secondary_boot *slot = &boot_slot[cpu];

	mmu_secondary_init();
	slot->online = 1;
	dsb(sy);
	slot->fn(slot->arg);
	slot->online = 0;
	dsb(sy);
	psci_cpu_off();
	for (;;)
		wfi();
}
