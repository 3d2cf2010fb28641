/*
 * u64 fetch_from(u64 addr, u64 nzcv): branch with link to addr with NZCV set;
 * returns 1 if execution came back (the exception hook returns to x30).
 * el0_fetch(addr): the same at EL0, for run_at_el0().
 */
	.text
	.globl fetch_from
	.type fetch_from, %function
fetch_from:
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	msr	nzcv, x1
	blr	x0
	mov	x0, #1
	ldp	x29, x30, [sp], #16
	ret
	.size fetch_from, . - fetch_from

	.globl el0_fetch
	.type el0_fetch, %function
el0_fetch:
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	mov	x1, #0x40000000		/* Z */
	msr	nzcv, x1
	blr	x0
	mov	x0, #1
	ldp	x29, x30, [sp], #16
	ret
	.size el0_fetch, . - el0_fetch
