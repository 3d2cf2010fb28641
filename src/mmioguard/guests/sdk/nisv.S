/*
 * Deliberately syndrome-less (ISV=0) accesses, for tests of the MMIO guard.
 * Each function performs exactly one such access to the address in x0.
 * Loads start from a destination register that holds `preset`, so a caller
 * can tell that an aborted (and skipped) access left it unchanged.
 */
	.text

	.globl nisv_ldp
	.type nisv_ldp, %function
nisv_ldp:			/* u64 nisv_ldp(addr, preset) */
	mov	x2, x1
	mov	x3, x1
	ldp	x2, x3, [x0]
	mov	x0, x2
	ret
	.size nisv_ldp, . - nisv_ldp

	.globl nisv_stp
	.type nisv_stp, %function
nisv_stp:			/* void nisv_stp(addr, val) */
	stp	x1, x1, [x0]
	ret
	.size nisv_stp, . - nisv_stp

	.globl nisv_ldr_post
	.type nisv_ldr_post, %function
nisv_ldr_post:			/* u64 nisv_ldr_post(addr, preset) */
	mov	x2, x0
	mov	x0, x1
	ldr	x0, [x2], #8
	ret
	.size nisv_ldr_post, . - nisv_ldr_post

	.globl nisv_ldr_pre
	.type nisv_ldr_pre, %function
nisv_ldr_pre:			/* u64 nisv_ldr_pre(addr, preset) */
	mov	x2, x0
	mov	x0, x1
	ldr	x0, [x2, #0]!
	ret
	.size nisv_ldr_pre, . - nisv_ldr_pre

	.globl nisv_str_post
	.type nisv_str_post, %function
nisv_str_post:			/* void nisv_str_post(addr, val) */
	str	x1, [x0], #8
	ret
	.size nisv_str_post, . - nisv_str_post

	.globl nisv_ldxr
	.type nisv_ldxr, %function
nisv_ldxr:			/* u32 nisv_ldxr(addr, preset) */
	mov	x2, x0
	mov	w0, w1
	ldxr	w0, [x2]
	clrex
	ret
	.size nisv_ldxr, . - nisv_ldxr

	.globl nisv_ldadd
	.type nisv_ldadd, %function
nisv_ldadd:			/* u32 nisv_ldadd(addr, val, preset) */
	.arch_extension lse
	mov	x3, x0
	mov	w0, w2
	ldadd	w1, w0, [x3]
	ret
	.size nisv_ldadd, . - nisv_ldadd

	.arch_extension fp
	.arch_extension simd

	.globl nisv_ldr_simd
	.type nisv_ldr_simd, %function
nisv_ldr_simd:			/* u32 nisv_ldr_simd(addr, preset) */
	fmov	s0, w1
	ldr	s0, [x0]
	fmov	w0, s0
	ret
	.size nisv_ldr_simd, . - nisv_ldr_simd

	.globl nisv_str_simd
	.type nisv_str_simd, %function
nisv_str_simd:			/* void nisv_str_simd(addr, val) */
	fmov	s0, w1
	str	s0, [x0]
	ret
	.size nisv_str_simd, . - nisv_str_simd

	.globl fpsimd_enable
	.type fpsimd_enable, %function
fpsimd_enable:
	mrs	x0, cpacr_el1
	orr	x0, x0, #(3 << 20)
	msr	cpacr_el1, x0
	isb
	ret
	.size fpsimd_enable, . - fpsimd_enable

	.globl fpsimd_disable
	.type fpsimd_disable, %function
fpsimd_disable:
	mrs	x0, cpacr_el1
	bic	x0, x0, #(3 << 20)
	msr	cpacr_el1, x0
	isb
	ret
	.size fpsimd_disable, . - fpsimd_disable
