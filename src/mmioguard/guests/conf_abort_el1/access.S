/*
 * One device access per function, at a global label NAME_insn, in a known
 * PSTATE: DAIF unmasked, NZCV = the caller's value, SP_EL1 (EL1h) or SP_EL0
 * (EL1t).  The caller learns what the aborted instruction left behind.
 *
 *   void NAME(u64 base, u64 value, u64 nzcv, struct after *out, u64 sp_el0)
 *
 * Registers at the access: x11 = base, x12 = value (the destination of a load
 * or the source of a store), x13 = 3 (an index register).  Afterwards *out =
 * { x12, x11, SP before, SP after, NZCV after }.
 */
	.text

	.macro access name, el1t, insn:vararg
	.globl \name
	.globl \name\()_insn
	.type \name, %function
\name:
	mrs	x9, daif
	mov	x11, x0
	mov	x12, x1
	mov	x13, #3
	.if \el1t
	msr	sp_el0, x4
	msr	spsel, #0
	.endif
	mov	x14, sp
	msr	daifclr, #0xf
	msr	nzcv, x2
\name\()_insn:
	\insn
	mrs	x15, nzcv
	msr	daif, x9
	mov	x16, sp
	.if \el1t
	msr	spsel, #1
	.endif
	stp	x12, x11, [x3]
	stp	x14, x16, [x3, #16]
	str	x15, [x3, #32]
	ret
	.size \name, . - \name
	.endm

	access	el1h_ldr_w, 0, ldr w12, [x11, #8]
	access	el1h_ldr_x, 0, ldr x12, [x11]
	access	el1h_ldrb_reg, 0, ldrb w12, [x11, x13]
	access	el1h_ldur_neg, 0, ldur w12, [x11, #-4]
	access	el1h_ldr_base, 0, ldr x11, [x11]
	access	el1h_str_w, 0, str w12, [x11, #8]
	access	el1h_str_x, 0, str x12, [x11]
	access	el1t_ldr_w, 1, ldr w12, [x11, #8]
	access	el1t_ldr_x, 1, ldr x12, [x11]
	access	el1t_str_w, 1, str w12, [x11, #8]

	/* u64 current_sp(void) */
	.globl current_sp
current_sp:
	mov	x0, sp
	ret
