/*
 * Load/store forms for the conformance guests that test syndromes (conf_isv0, conf_nisv):
 * one load or store per function, at a global label NAME_insn (which the guests compare
 * with ELR_EL1 and the hypervisor's trace).
 *
 *   void NAME(u64 base, u64 value, u64 value2, struct after *out)
 *
 * Registers at the access: x11 = base, x12 = value, x13 = value2, and
 * (FP/SIMD must be enabled for the SIMD ones) d0 = value, d1 = value2.
 * Afterwards *out = { x12, x13, x11, d0, d1 }.
 *
 * Included by a guest's access.S for the code and by its C for the declarations: a header,
 * so the SDK does not link it into every guest.
 */
#ifndef MMIOGUARD_ACCESS_FORMS_H
#define MMIOGUARD_ACCESS_FORMS_H

#ifdef __ASSEMBLER__
	.arch_extension lse
	.arch_extension fp
	.arch_extension simd
	.text

	.macro access name, simd, insn:vararg
	.globl \name
	.globl \name\()_insn
	.type \name, %function
\name:
	mov	x11, x0
	mov	x12, x1
	mov	x13, x2
	.if \simd
	fmov	d0, x1
	fmov	d1, x2
	.endif
\name\()_insn:
	\insn
	stp	x12, x13, [x3]
	str	x11, [x3, #16]
	.if \simd
	fmov	x14, d0
	fmov	x15, d1
	stp	x14, x15, [x3, #24]
	.endif
	ret
	.size \name, . - \name
	.endm

	/* syndrome-less: pairs */
	access	a_ldp_x, 0, ldp x12, x13, [x11]
	access	a_ldp_w, 0, ldp w12, w13, [x11]
	access	a_ldpsw, 0, ldpsw x12, x13, [x11]
	access	a_ldnp, 0, ldnp x12, x13, [x11]
	access	a_stp_x, 0, stp x12, x13, [x11]
	access	a_stp_w, 0, stp w12, w13, [x11]
	/* syndrome-less: writeback */
	access	a_ldr_post, 0, ldr x12, [x11], #8
	access	a_ldr_pre, 0, ldr x12, [x11, #8]!
	access	a_ldrb_post, 0, ldrb w12, [x11], #1
	access	a_str_post, 0, str x12, [x11], #8
	access	a_str_pre_neg, 0, str w12, [x11, #-4]!
	access	a_ldp_post, 0, ldp w12, w13, [x11], #8
	/* syndrome-less: exclusives */
	access	a_ldxr, 0, ldxr w12, [x11]
	access	a_ldaxr_x, 0, ldaxr x12, [x11]
	access	a_stxr, 0, stxr w13, w12, [x11]
	access	a_ldxp, 0, ldxp w12, w13, [x11]
	/* syndrome-less: atomics (LSE) */
	access	a_ldadd, 0, ldadd w13, w12, [x11]
	access	a_swp, 0, swp w13, w12, [x11]
	access	a_cas, 0, cas w12, w13, [x11]
	access	a_stadd, 0, stadd w13, [x11]
	/* syndrome-less: SIMD&FP */
	access	a_ldr_s, 1, ldr s0, [x11]
	access	a_ldr_d, 1, ldr d0, [x11]
	access	a_str_s, 1, str s0, [x11]
	access	a_ldp_s, 1, ldp s0, s1, [x11]
	access	a_ld1, 1, ld1 {v0.2s}, [x11]
	access	a_st1, 1, st1 {v0.2s}, [x11]
	/* with a syndrome (ISV=1): forwarded when mapped */
	access	b_ldr_w, 0, ldr w12, [x11, #8]
	access	b_str_w, 0, str w12, [x11, #8]
	access	b_ldar, 0, ldar w12, [x11]
	access	b_stlr, 0, stlr w12, [x11]
	access	b_ldur, 0, ldur w12, [x11, #-8]
#else

#include "types.h"

struct after {
	u64 x12, x13, x11, d0, d1;
};

typedef void access_fn(u64 base, u64 value, u64 value2, struct after *out);

#define DECLARE(name) access_fn name; extern char name##_insn[]
DECLARE(a_ldp_x);
DECLARE(a_ldp_w);
DECLARE(a_ldpsw);
DECLARE(a_ldnp);
DECLARE(a_stp_x);
DECLARE(a_stp_w);
DECLARE(a_ldr_post);
DECLARE(a_ldr_pre);
DECLARE(a_ldrb_post);
DECLARE(a_str_post);
DECLARE(a_str_pre_neg);
DECLARE(a_ldp_post);
DECLARE(a_ldxr);
DECLARE(a_ldaxr_x);
DECLARE(a_stxr);
DECLARE(a_ldxp);
DECLARE(a_ldadd);
DECLARE(a_swp);
DECLARE(a_cas);
DECLARE(a_stadd);
DECLARE(a_ldr_s);
DECLARE(a_ldr_d);
DECLARE(a_str_s);
DECLARE(a_ldp_s);
DECLARE(a_ld1);
DECLARE(a_st1);
DECLARE(b_ldr_w);
DECLARE(b_str_w);
DECLARE(b_ldar);
DECLARE(b_stlr);
DECLARE(b_ldur);
#undef DECLARE

#endif /* __ASSEMBLER__ */
#endif
