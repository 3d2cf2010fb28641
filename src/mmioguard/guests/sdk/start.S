/*
 * Entry points of an mmioguard guest.
 *
 * _start: the boot CPU, at EL1h with the MMU off and x0 = the physical address
 * of the device tree (or 0 when the loader does not pass one, e.g. QEMU with an
 * ELF image).  Sets up a known EL1 state, the stack of CPU 0, clears .bss,
 * installs the exception vectors and calls guest_start(dtb) (runtime.c), which
 * calls main(dtb) and powers off with PSCI SYSTEM_OFF.
 *
 * secondary_entry: where PSCI CPU_ON starts the other CPUs, with x0 = the
 * context_id given to CPU_ON, which the SDK sets to the CPU index (see smp.h).
 * If x0 is not a valid index, MPIDR_EL1.Aff0 is used instead.
 */
#include "asm-defs.h"

	.section .text.boot, "ax"

	.globl _start
	.type _start, %function
_start:
	msr	daifset, #0xf
	mov	x19, x0				/* device tree address */

	ldr	x1, =SCTLR_EL1_MMU_OFF
	msr	sctlr_el1, x1
	isb
	msr	cpacr_el1, xzr			/* FP/SIMD traps: the SDK never uses it */
	ldr	x1, =MAIR_EL1_VALUE
	msr	mair_el1, x1
	msr	spsel, #1

	ldr	x1, =__stacks_end		/* CPU 0 stack */
	mov	sp, x1
	mov	x29, xzr
	mov	x30, xzr
	msr	tpidr_el1, xzr			/* CPU index */

	ldr	x1, =vectors
	msr	vbar_el1, x1
	isb

	ldr	x1, =__bss_start
	ldr	x2, =__bss_end
1:	cmp	x1, x2
	b.hs	2f
	stp	xzr, xzr, [x1], #16
	b	1b
2:
	mov	x0, x19
	bl	guest_start			/* does not return */
3:	ldr	w0, =PSCI_0_2_FN_SYSTEM_OFF
	hvc	#0
	wfi
	b	3b
	.size _start, . - _start

	.globl secondary_entry
	.type secondary_entry, %function
secondary_entry:
	msr	daifset, #0xf
	mov	x19, x0
	cmp	x19, #NR_CPUS_ASM
	b.lo	1f
	mrs	x19, mpidr_el1
	and	x19, x19, #0xff
	cmp	x19, #NR_CPUS_ASM
	b.hs	9f
1:
	ldr	x1, =SCTLR_EL1_MMU_OFF
	msr	sctlr_el1, x1
	isb
	msr	cpacr_el1, xzr
	ldr	x1, =MAIR_EL1_VALUE
	msr	mair_el1, x1
	msr	spsel, #1

	ldr	x1, =__stacks_end
	sub	x1, x1, x19, lsl #STACK_SHIFT
	mov	sp, x1
	mov	x29, xzr
	mov	x30, xzr
	msr	tpidr_el1, x19

	ldr	x1, =vectors
	msr	vbar_el1, x1
	isb

	mov	x0, x19
	bl	secondary_start			/* does not return */
9:	ldr	w0, =PSCI_0_2_FN_CPU_OFF
	hvc	#0
	wfi
	b	9b
	.size secondary_entry, . - secondary_entry

	.ltorg
