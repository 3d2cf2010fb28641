/* Exception handler: armed/unexpected logic and the EL0 return path. */
#include "exceptions.h"
#include "internal.h"
#include "printf.h"
#include "smccc.h"
#include "smp.h"
#include "sysreg.h"

struct exc_percpu {
	bool armed;
	int depth;
	struct exception_info info;
};

struct exception_info last_exception;
volatile u64 exception_count;

static struct exc_percpu exc_cpu[NR_CPUS];
static exception_hook_t exc_hook;

void el0_exit(u64 result) __noreturn;

static struct exc_percpu *this_cpu(void)
{
	return &exc_cpu[smp_processor_id()];
}

void expect_exception(void)
{
	struct exc_percpu *pc = this_cpu();

	pc->info = (struct exception_info){ 0 };
	barrier();
	pc->armed = true;
	barrier();
}

bool exception_taken(void)
{
	barrier();
	return this_cpu()->info.taken;
}

struct exception_info take_exception(void)
{
	struct exc_percpu *pc = this_cpu();
	struct exception_info info;

	barrier();
	pc->armed = false;
	info = pc->info;
	pc->info = (struct exception_info){ 0 };
	barrier();
	return info;
}

void set_exception_hook(exception_hook_t hook)
{
	exc_hook = hook;
	barrier();
}

const char *esr_class_str(unsigned int ec)
{
	switch (ec) {
	case ESR_EC_UNKNOWN: return "unknown reason (undefined instruction)";
	case ESR_EC_WFX: return "WFI/WFE trap";
	case ESR_EC_FP_ASIMD: return "FP/SIMD access trap";
	case ESR_EC_ILLEGAL_STATE: return "illegal execution state";
	case ESR_EC_SVC32: return "SVC (AArch32)";
	case ESR_EC_SVC64: return "SVC";
	case ESR_EC_HVC64: return "HVC";
	case ESR_EC_SMC64: return "SMC";
	case ESR_EC_SYS64: return "system register trap";
	case ESR_EC_IABT_LOWER: return "instruction abort from EL0";
	case ESR_EC_IABT_CUR: return "instruction abort from EL1";
	case ESR_EC_PC_ALIGN: return "PC alignment fault";
	case ESR_EC_DABT_LOWER: return "data abort from EL0";
	case ESR_EC_DABT_CUR: return "data abort from EL1";
	case ESR_EC_SP_ALIGN: return "SP alignment fault";
	case ESR_EC_SERROR: return "SError";
	case ESR_EC_BRK64: return "BRK";
	default: return "other exception class";
	}
}

static bool elr_points_past(unsigned int ec)
{
	switch (ec) {
	case ESR_EC_SVC32:
	case ESR_EC_HVC32:
	case ESR_EC_SMC32:
	case ESR_EC_SVC64:
	case ESR_EC_HVC64:
	case ESR_EC_SMC64:
		return true;
	default:
		return false;
	}
}

static const char *vector_str(u64 vector)
{
	static const char *const from[4] = { "EL1t", "EL1h", "EL0 (AArch64)", "EL0 (AArch32)" };

	return from[(vector >> 9) & 3];
}

static __noreturn void unexpected(struct exception_frame *f, u64 vector, u64 esr, u64 far,
				  unsigned int cpu)
{
	static const char *const kind[4] = { "synchronous", "IRQ", "FIQ", "SError" };
	unsigned int ec = ESR_EC(esr);

	sdk_console_rescue();
	printf("unexpected exception: vector 0x%03lx ESR 0x%08lx FAR 0x%08lx ELR 0x%08lx\n",
	       vector, esr, far, f->elr);
	if ((vector & 0x180) == 0)
		printf("  %s from %s: EC 0x%02x %s, SPSR 0x%lx, CPU %u\n", kind[(vector >> 7) & 3],
		       vector_str(vector), ec, esr_class_str(ec), f->spsr, cpu);
	else
		printf("  %s from %s, SPSR 0x%lx, CPU %u\n", kind[(vector >> 7) & 3],
		       vector_str(vector), f->spsr, cpu);
	puts("FAIL");
	psci_system_off();
}

void handle_exception(struct exception_frame *f, u64 vector)
{
	unsigned int cpu = smp_processor_id();
	struct exc_percpu *pc = &exc_cpu[cpu];
	u64 esr = read_sysreg(esr_el1);
	u64 far = read_sysreg(far_el1);
	unsigned int ec = ESR_EC(esr);
	bool sync = (vector & 0x180) == 0;

	if (vector == VEC_LOWER64_SYNC && ec == ESR_EC_SVC64 &&
	    (esr & 0xffff) == SVC_RETURN_TO_EL1)
		el0_exit(f->regs[0]);

	exception_count++;

	if (pc->depth >= 2)
		psci_system_off(); /* the fault path itself keeps faulting: give up */
	pc->depth++;

	if (exc_hook && exc_hook(f, vector, esr)) {
		pc->depth--;
		return;
	}

	if (pc->armed) {
		struct exception_info *e = &pc->info;

		e->taken = true;
		e->cpu = cpu;
		e->vector = (u32)vector;
		e->ec = ec;
		e->esr = esr;
		e->far = far;
		e->elr = f->elr;
		e->spsr = f->spsr;
		last_exception = *e;
		pc->armed = false;
		if (sync && !elr_points_past(ec))
			f->elr += 4;
		pc->depth--;
		return;
	}

	unexpected(f, vector, esr, far, cpu);
}
