/*
 * EL0 functions for run_at_el0(fn, params): each performs one device access
 * at a global label NAME_insn with NZCV set from the parameters, and writes
 * what the access left behind.
 *
 *   struct params { u64 base, value, nzcv; struct after *out; }
 *   struct after  { u64 reg, base, sp_before, sp_after, nzcv; }
 *
 * Registers at the access: x11 = base, x12 = value (load destination or
 * store source), x13 = 3 (an index register).
 */
	.text

	.macro access name, insn:vararg
	.globl \name
	.globl \name\()_insn
	.type \name, %function
\name:
	ldp	x11, x12, [x0]
	ldp	x2, x3, [x0, #16]
	mov	x13, #3
	mov	x14, sp
	msr	nzcv, x2
\name\()_insn:
	\insn
	mrs	x15, nzcv
	mov	x16, sp
	stp	x12, x11, [x3]
	stp	x14, x16, [x3, #16]
	str	x15, [x3, #32]
	mov	x0, #0
	ret
	.size \name, . - \name
	.endm

	access	el0_ldr_w, ldr w12, [x11, #8]
	access	el0_ldr_x, ldr x12, [x11]
	access	el0_ldrb_reg, ldrb w12, [x11, x13]
	access	el0_ldrsh, ldrsh x12, [x11, #2]
	access	el0_str_w, str w12, [x11, #8]
	access	el0_strb, strb w12, [x11, #1]
	access	el0_mmu_ldr_w, ldr w12, [x11, #8]

	.globl current_sp
current_sp:
	mov	x0, sp
	ret
