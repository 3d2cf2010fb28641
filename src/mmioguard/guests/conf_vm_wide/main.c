/*
 * Conformance: the guard state belongs to the VM, not to a vCPU (spec
 * section 3: "ENROLL is a per-VM flag, shared by all vCPUs"; the mapped
 * granules likewise).  Run with smp=2.
 *
 * CPU 1 runs a small command loop; CPU 0 asks it to call MAP, UNMAP, ENROLL,
 * INFO or to touch an address, and checks that what one CPU does is what the
 * other sees.
 */
#include "guest.h"

#define NR_TESTS 20
#define M1 0xffffffffffffffffUL
#define FREE 0x0a000000UL
#define SENTINEL 0x5a5a5a5aU

enum { CMD_NONE, CMD_INFO, CMD_ENROLL, CMD_MAP, CMD_UNMAP, CMD_PROBE, CMD_EXIT };

static volatile u64 cmd, cmd_arg, cmd_result;

/* 1: aborted by the guard on this CPU; 0: reached; 2: other. */
static u64 probe(u64 pa)
{
	struct exception_info e;

	expect_exception();
	(void)readl_preset(__ioptr(pa), SENTINEL);
	e = take_exception();
	if (!e.taken)
		return 0;
	return e.esr == ESR_GUARD_DABT_EL1 && e.far == pa && e.cpu == smp_processor_id() ? 1 : 2;
}

static void secondary(u64 unused)
{
	for (;;) {
		u64 c, r = 0;

		while ((c = cmd) == CMD_NONE)
			cpu_relax();
		switch (c) {
		case CMD_INFO: r = (u64)guard_info(); break;
		case CMD_ENROLL: r = (u64)guard_enroll(); break;
		case CMD_MAP: r = (u64)guard_map(cmd_arg, 0); break;
		case CMD_UNMAP: r = (u64)guard_unmap(cmd_arg); break;
		case CMD_PROBE: r = probe(cmd_arg); break;
		default: break;
		}
		cmd_result = r;
		dsb(sy);
		cmd = CMD_NONE;
		if (c == CMD_EXIT)
			return;
	}
}

static u64 on_cpu1(u64 c, u64 a)
{
	cmd_arg = a;
	cmd_result = 0xdead;
	dsb(sy);
	cmd = c;
	for (u64 i = 0; cmd != CMD_NONE && i < 100000000; i++)
		cpu_relax();
	return cmd == CMD_NONE ? cmd_result : 0xdead;
}

int main(u64 dtb)
{
	s64 ret;
	u64 r;
	int err;

	plan(NR_TESTS);
	ret = smp_boot_secondary(1, secondary, 0);
	is_eq("CPU 1 started", (u64)ret, 0);
	ok(cpu_wait_online(1, true, 100000000), "CPU 1 online");

	is_eq("CPU 1: INFO", on_cpu1(CMD_INFO, 0), SZ_4K);
	is_eq("CPU 1: MAP before anyone enrolled fails", on_cpu1(CMD_MAP, RTC_BASE), M1);
	is_eq("CPU 1: not enrolled, the RTC is reachable", on_cpu1(CMD_PROBE, RTC_BASE), 0);

	err = guard_init(SZ_4K);
	if (!err)
		uart_set_base(ioremap(UART_BASE, SZ_4K));
	is_eq("CPU 0 enrolls", (u64)(s64)err, 0);
	is_eq("CPU 1: the unmapped RTC now aborts on CPU 1 too", on_cpu1(CMD_PROBE, RTC_BASE), 1);
	is_eq("CPU 1: MAP of the RTC works: the VM is enrolled", on_cpu1(CMD_MAP, RTC_BASE), 0);
	is_eq("CPU 0: reaches the RTC that CPU 1 mapped", probe(RTC_BASE), 0);
	is_eq("CPU 1: reaches it too", on_cpu1(CMD_PROBE, RTC_BASE), 0);
	is_eq("CPU 1: reaches the UART that CPU 0 mapped",
	      on_cpu1(CMD_PROBE, UART_BASE + 0xfe0), 0);
	is_eq("CPU 0: UNMAP of the RTC", (u64)guard_unmap(RTC_BASE), 0);
	is_eq("CPU 1: the RTC aborts again", on_cpu1(CMD_PROBE, RTC_BASE), 1);
	is_eq("CPU 1: ENROLL again (idempotent from another vCPU)", on_cpu1(CMD_ENROLL, 0), 0);
	is_eq("CPU 1: UNMAP of a granule nobody mapped fails", on_cpu1(CMD_UNMAP, FREE), M1);
	is_eq("CPU 1: MAP of unassigned space", on_cpu1(CMD_MAP, FREE), 0);
	is_eq("CPU 0: UNMAP of CPU 1's granule", (u64)guard_unmap(FREE), 0);
	is_eq("CPU 1: its granule aborts", on_cpu1(CMD_PROBE, FREE), 1);
	r = on_cpu1(CMD_EXIT, 0);
	is_eq("CPU 1: command loop left", r, 0);
	ok(cpu_wait_online(1, false, 100000000), "CPU 1 offline");
	done();
}
