/*
 * Exception vectors: all 16 entries save the interrupted context in a
 * struct exception_frame on the EL1 stack and call
 *     void handle_exception(struct exception_frame *frame, u64 vector_offset)
 * (exceptions.c), then restore the frame (ELR/SPSR included, so the handler
 * can change where execution resumes) and return with ERET.
 *
 * Also run_at_el0() and el0_exit(): see exceptions.h.
 */
#include "asm-defs.h"

	.macro ventry offset
	.balign	0x80
	sub	sp, sp, #EXCEPTION_FRAME_SIZE
	stp	x0, x1, [sp, #0]
	mov	x0, #\offset
	b	vector_common
	.endm

	.text
	.balign	0x800
	.globl vectors
vectors:
	ventry	0x000	/* current EL, SP_EL0: synchronous */
	ventry	0x080	/* IRQ */
	ventry	0x100	/* FIQ */
	ventry	0x180	/* SError */
	ventry	0x200	/* current EL, SP_ELx: synchronous */
	ventry	0x280
	ventry	0x300
	ventry	0x380
	ventry	0x400	/* lower EL, AArch64: synchronous */
	ventry	0x480
	ventry	0x500
	ventry	0x580
	ventry	0x600	/* lower EL, AArch32: synchronous */
	ventry	0x680
	ventry	0x700
	ventry	0x780

	.balign	0x80
vector_common:
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x19, [sp, #144]
	stp	x20, x21, [sp, #160]
	stp	x22, x23, [sp, #176]
	stp	x24, x25, [sp, #192]
	stp	x26, x27, [sp, #208]
	stp	x28, x29, [sp, #224]
	str	x30, [sp, #240]

	/* The interrupted SP: SP_EL1 before the frame for EL1h, else SP_EL0. */
	add	x1, sp, #EXCEPTION_FRAME_SIZE
	cmp	x0, #0x200
	b.lo	1f
	cmp	x0, #0x400
	b.lo	2f
1:	mrs	x1, sp_el0
2:	mrs	x2, elr_el1
	mrs	x3, spsr_el1
	str	x1, [sp, #248]
	stp	x2, x3, [sp, #256]

	mov	x1, x0
	mov	x0, sp
	bl	handle_exception

	ldp	x2, x3, [sp, #256]
	msr	elr_el1, x2
	msr	spsr_el1, x3
	ldp	x0, x1, [sp, #0]
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x19, [sp, #144]
	ldp	x20, x21, [sp, #160]
	ldp	x22, x23, [sp, #176]
	ldp	x24, x25, [sp, #192]
	ldp	x26, x27, [sp, #208]
	ldp	x28, x29, [sp, #224]
	ldr	x30, [sp, #240]
	add	sp, sp, #EXCEPTION_FRAME_SIZE
	eret

/*
 * u64 run_at_el0(u64 (*fn)(u64), u64 arg)
 *
 * Saves the callee-saved registers, SP and DAIF, then ERETs to EL0t at
 * el0_trampoline with x0 = arg, x1 = fn and SP_EL0 = this CPU's EL0 stack.
 * The trampoline calls fn(arg) and issues SVC #SVC_RETURN_TO_EL1 with the
 * result in x0; the exception handler then calls el0_exit(result), which
 * restores the saved state and returns from run_at_el0() at EL1.
 */
	.globl run_at_el0
	.type run_at_el0, %function
run_at_el0:
	sub	sp, sp, #112
	stp	x29, x30, [sp, #0]
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	stp	x27, x28, [sp, #80]
	mrs	x9, daif
	str	x9, [sp, #96]

	mrs	x10, tpidr_el1
	ldr	x11, =el0_saved_sp
	mov	x12, sp
	str	x12, [x11, x10, lsl #3]

	ldr	x12, =__el0_stacks_end
	sub	x12, x12, x10, lsl #STACK_SHIFT
	msr	sp_el0, x12

	ldr	x12, =el0_trampoline
	msr	elr_el1, x12
	msr	spsr_el1, x9			/* EL0t, same DAIF mask as the caller */
	mov	x2, x0
	mov	x0, x1
	mov	x1, x2
	mov	x29, xzr
	mov	x30, xzr
	eret
	.size run_at_el0, . - run_at_el0

	.globl el0_trampoline
	.type el0_trampoline, %function
el0_trampoline:
	blr	x1
	svc	#SVC_RETURN_TO_EL1
	b	.
	.size el0_trampoline, . - el0_trampoline

/* void el0_exit(u64 result): only called by handle_exception(). */
	.globl el0_exit
	.type el0_exit, %function
el0_exit:
	mrs	x10, tpidr_el1
	ldr	x11, =el0_saved_sp
	ldr	x12, [x11, x10, lsl #3]
	mov	sp, x12
	ldr	x9, [sp, #96]
	msr	daif, x9
	ldp	x29, x30, [sp, #0]
	ldp	x19, x20, [sp, #16]
	ldp	x21, x22, [sp, #32]
	ldp	x23, x24, [sp, #48]
	ldp	x25, x26, [sp, #64]
	ldp	x27, x28, [sp, #80]
	add	sp, sp, #112
	ret
	.size el0_exit, . - el0_exit

	.ltorg

	.bss
	.balign	8
	.globl el0_saved_sp
el0_saved_sp:
	.space	8 * NR_CPUS_ASM
