/*
 * Hypercall shapes the SDK's smccc_hvc() cannot make: a 64-bit x0, a non-zero
 * HVC immediate, and a check that x4..x17 survive a call (SMCCC 1.1).
 */
	.text

	/* struct smccc_res hvc64(u64 x0, u64 a1, u64 a2, u64 a3): x8 = result */
	.globl hvc64
	.type hvc64, %function
hvc64:
	mov	x9, x8
	hvc	#0
	stp	x0, x1, [x9]
	stp	x2, x3, [x9, #16]
	ret
	.size hvc64, . - hvc64

	/* u64 hvc_imm(u32 fid): hvc #0x4d */
	.globl hvc_imm
	.type hvc_imm, %function
hvc_imm:
	mov	w0, w0
	hvc	#0x4d
	ret
	.size hvc_imm, . - hvc_imm

	/* u64 hvc_imm_max(u32 fid): hvc #0xffff */
	.globl hvc_imm_max
	.type hvc_imm_max, %function
hvc_imm_max:
	mov	w0, w0
	hvc	#0xffff
	ret
	.size hvc_imm_max, . - hvc_imm_max

	/*
	 * u64 hvc_clobbers(u32 fid): bitmask of x4..x17 (bit n = xn) that an
	 * HVC changed.  x18..x30 are callee-saved here and restored.
	 */
	.globl hvc_clobbers
	.type hvc_clobbers, %function
hvc_clobbers:
	mov	w0, w0
	mov	x1, #0
	mov	x2, #0
	mov	x3, #0
	movz	x4, #0x0404, lsl #48
	movz	x5, #0x0505, lsl #48
	movz	x6, #0x0606, lsl #48
	movz	x7, #0x0707, lsl #48
	movz	x8, #0x0808, lsl #48
	movz	x9, #0x0909, lsl #48
	movz	x10, #0x1010, lsl #48
	movz	x11, #0x1111, lsl #48
	movz	x12, #0x1212, lsl #48
	movz	x13, #0x1313, lsl #48
	movz	x14, #0x1414, lsl #48
	movz	x15, #0x1515, lsl #48
	movz	x16, #0x1616, lsl #48
	movz	x17, #0x1717, lsl #48
	hvc	#0
	mov	x0, #0
	.macro chk reg, val, bit
	movz	x1, #\val, lsl #48
	cmp	\reg, x1
	cset	x2, ne
	orr	x0, x0, x2, lsl #\bit
	.endm
	chk	x4, 0x0404, 4
	chk	x5, 0x0505, 5
	chk	x6, 0x0606, 6
	chk	x7, 0x0707, 7
	chk	x8, 0x0808, 8
	chk	x9, 0x0909, 9
	chk	x10, 0x1010, 10
	chk	x11, 0x1111, 11
	chk	x12, 0x1212, 12
	chk	x13, 0x1313, 13
	chk	x14, 0x1414, 14
	chk	x15, 0x1515, 15
	chk	x16, 0x1616, 16
	chk	x17, 0x1717, 17
	ret
	.size hvc_clobbers, . - hvc_clobbers

	/*
	 * u64 smc_call(u32 fid, u64 a1, u64 *continued): smc #0, returns x0 and
	 * sets *continued = 1 from the instruction right after the smc.
	 */
	.globl smc_call
	.type smc_call, %function
smc_call:
	mov	w0, w0
	mov	x5, x2
	mov	x2, #0
	mov	x3, #0
	.inst	0xd4000003		/* smc #0 */
	mov	x6, #1
	str	x6, [x5]
	ret
	.size smc_call, . - smc_call

	/* u64 el0_hvc(u64 fid): hvc #0 at EL0 (UNDEFINED there); returns x0. */
	.globl el0_hvc
	.globl el0_hvc_insn
	.type el0_hvc, %function
el0_hvc:
el0_hvc_insn:
	hvc	#0
	ret
	.size el0_hvc, . - el0_hvc
