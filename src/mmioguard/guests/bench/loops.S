/*
 * Benchmark loops, in assembly so that the instruction mix is exactly what the benchmark
 * says. The same image runs on mmioguard and on the benchmark's raw-Unicorn floor, so no
 * loop checks hypercall results (the floor answers every call alike).
 * x0 = iterations for every loop.
 */
	.text
	.macro hvc_call fid
	movz	w0, #(\fid & 0xffff)
	movk	w0, #(\fid >> 16), lsl #16
	hvc	#0
	.endm

	.globl bench_compute
	.type bench_compute, %function
bench_compute:
	mov	x9, x0
	mov	x2, #1
1:	add	x2, x2, x9
	eor	x3, x3, x2
	subs	x9, x9, #1
	b.ne	1b
	ret

	.globl bench_memory
	.type bench_memory, %function
bench_memory:
	mov	x9, x0
	adr	x1, scratch
1:	ldr	x2, [x1]
	add	x2, x2, x9
	str	x2, [x1, #8]
	subs	x9, x9, #1
	b.ne	1b
	ret

	.globl bench_mmio
	.type bench_mmio, %function
bench_mmio:
	mov	x9, x0
	hvc_call 0xc6000003		/* ENROLL */
	mov	x1, #0x09000000
	hvc_call 0xc6000004		/* MAP the UART granule */
	mov	x0, x9
	/* fall through: the same loop as bench_mmio_plain */

	/* The device read loop alone, for hypervisors without the guard (QEMU TCG). */
	.globl bench_mmio_plain
	.type bench_mmio_plain, %function
bench_mmio_plain:
	mov	x9, x0
	mov	x1, #0x09000000
1:	ldr	w2, [x1, #0x18]		/* UARTFR */
	subs	x9, x9, #1
	b.ne	1b
	ret

	.globl bench_hvc
	.type bench_hvc, %function
bench_hvc:
	mov	x9, x0
1:	hvc_call 0xc6000002		/* MMIO_GUARD_INFO */
	subs	x9, x9, #1
	b.ne	1b
	ret

	/* A hypercall QEMU TCG answers too (its PSCI conduit is HVC on -M virt). */
	.globl bench_psci_version
	.type bench_psci_version, %function
bench_psci_version:
	mov	x9, x0
1:	hvc_call 0x84000000		/* PSCI_VERSION */
	subs	x9, x9, #1
	b.ne	1b
	ret

	.globl bench_map_unmap
	.type bench_map_unmap, %function
bench_map_unmap:
	mov	x9, x0
	hvc_call 0xc6000003
1:	mov	x1, #0x0a000000
	hvc_call 0xc6000004		/* MAP */
	mov	x1, #0x0a000000
	hvc_call 0xc6000005		/* UNMAP */
	subs	x9, x9, #1
	b.ne	1b
	ret

	.globl bench_abort
	.type bench_abort, %function
bench_abort:
	mov	x9, x0
	mrs	x10, vbar_el1
	adr	x11, skip_vectors
	msr	vbar_el1, x11
	isb
	hvc_call 0xc6000003		/* ENROLL: 0x0a000000 is not mapped */
	mov	x1, #0x0a000000
1:	ldr	w2, [x1]		/* aborted every time */
	subs	x9, x9, #1
	b.ne	1b
	msr	vbar_el1, x10
	isb
	ret

	.globl bench_abort_device
	.type bench_abort_device, %function
bench_abort_device:			/* the same, on a device: the RTC's granule is not mapped */
	mov	x9, x0
	mrs	x10, vbar_el1
	adr	x11, skip_vectors
	msr	vbar_el1, x11
	isb
	hvc_call 0xc6000003		/* ENROLL */
	mov	x1, #0x09010000
1:	ldr	w2, [x1]		/* refused every time */
	subs	x9, x9, #1
	b.ne	1b
	msr	vbar_el1, x10
	isb
	ret

	.globl bench_touch
	.type bench_touch, %function
bench_touch:				/* x0 = start, x1 = end: write one word per 4K page */
1:	str	x1, [x0]
	add	x0, x0, #4096
	cmp	x0, x1
	b.lo	1b
	ret

	.balign	2048
skip_vectors:
	.rept	16
	.balign	0x80
	mrs	x12, elr_el1
	add	x12, x12, #4
	msr	elr_el1, x12
	eret
	.endr

	.data
	.balign	16
scratch:
	.quad	0, 0
