/*
 * The example guest: enroll in the MMIO guard, map the UART and print through
 * it, then touch a device page it never mapped (the RTC) and show the abort
 * the hypervisor injects.
 *
 * Build with defines={"PAGE_SIZE": 16384} (or 65536) for a VMM started with
 * --granule 16k (or 64k).
 */
#include "guest.h"

#ifndef PAGE_SIZE
#define PAGE_SIZE 4096
#endif

#define SENTINEL 0xdeadbeefU

int main(u64 dtb)
{
	struct exception_info e;
	void *uart;
	u32 val;
	int err;

	puts("mmioguard example guest");

	err = guard_init(PAGE_SIZE);
	if (err) {
		/* The UART is still reachable: nothing was enrolled. */
		printf("MMIO guard not available: %s\n", guard_strerror(err));
		val = readl(__ioptr(RTC_BASE));
		printf("without the guard, the RTC at 0x%08lx reads 0x%08x\n", RTC_BASE, val);
		return 0;
	}

	/* Enrolled: from now on only mapped granules reach the VMM. */
	uart = ioremap(UART_BASE, PAGE_SIZE);
	if (!uart)
		return 1; /* cannot print: exit() re-maps the UART to say FAIL */
	uart_set_base(uart);
	printf("MMIO guard enrolled, granule %lu bytes\n", guard_granule());
	printf("UART mapped at 0x%08lx\n", (u64)(uintptr_t)uart);

	expect_exception();
	val = readl_preset(__ioptr(RTC_BASE), SENTINEL);
	e = take_exception();
	if (!e.taken) {
		printf("access to unmapped 0x%08lx was not aborted (read 0x%08x)\n", RTC_BASE, val);
		return 1;
	}
	printf("access to unmapped 0x%08lx aborted: ESR_EL1=0x%08lx FAR_EL1=0x%08lx\n", RTC_BASE,
	       e.esr, e.far);
	if (val == SENTINEL)
		printf("destination register unchanged (0x%08x)\n", val);
	else
		printf("destination register changed to 0x%08x\n", val);
	puts("powering off");
	return 0;
}
