/* TAP reporting. */
#include "tap.h"
#include "internal.h"
#include "printf.h"
#include "smccc.h"

static int tap_planned = -1;
static int tap_count;
static int tap_failed;
static int tap_skipped;

void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
}

static bool report(bool cond, const char *fmt, va_list ap)
{
	char name[160];

	vsnprintf(name, sizeof(name), fmt, ap);
	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_count, name);
	return cond;
}

bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(cond, fmt, ap);
	va_end(ap);
	return cond;
}

bool is_eq(const char *name, u64 got, u64 want)
{
	tap_count++;
	if (got == want) {
		printf("ok %d - %s\n", tap_count, name);
		return true;
	}
	tap_failed++;
	printf("not ok %d - %s (got 0x%lx, want 0x%lx)\n", tap_count, name, got, want);
	return false;
}

void skip(const char *fmt, ...)
{
	char reason[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	tap_count++;
	tap_skipped++;
	printf("ok %d - # SKIP %s\n", tap_count, reason);
}

void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

int tap_failures(void) { return tap_failed; }

__noreturn void done(void)
{
	bool pass = tap_failed == 0 && (tap_planned < 0 || tap_planned == tap_count);

	sdk_console_rescue();
	if (tap_planned < 0)
		printf("1..%d\n", tap_count); /* a trailing plan is valid TAP */
	printf("# %d tests, %d failed, %d skipped\n", tap_count, tap_failed, tap_skipped);
	if (tap_planned >= 0 && tap_planned != tap_count)
		printf("# planned %d tests but ran %d\n", tap_planned, tap_count);
	puts(pass ? "PASS" : "FAIL");
	psci_system_off();
}
