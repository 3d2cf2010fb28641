/*
 * TAP output (Test Anything Protocol), kvm-unit-tests style:
 *
 *     1..3
 *     ok 1 - printf %d
 *     not ok 2 - ESR (got 0x92000010, want 0x96000010)
 *     ok 3 - # SKIP 16K granule not supported
 *     # 3 tests, 1 failed, 1 skipped
 *     FAIL
 *
 * plan(n) prints "1..n" and must come first.  done() prints the summary line
 * and then "PASS" (every test passed or was skipped and the count matches the
 * plan) or "FAIL", and powers off with PSCI SYSTEM_OFF.
 */
#ifndef MMIOGUARD_TAP_H
#define MMIOGUARD_TAP_H

#include "types.h"

void plan(int n);
/* Report one test; the name is printf-formatted.  Returns cond. */
bool ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ok(got == want); on failure prints "(got 0x..., want 0x...)" after the name. */
bool is_eq(const char *name, u64 got, u64 want);
/* Report a skipped test: "ok N - # SKIP reason". */
void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A diagnostic line: "# ...". */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Number of failed tests so far. */
int tap_failures(void);
/* Summary, PASS/FAIL, SYSTEM_OFF. */
__noreturn void done(void);

#endif
