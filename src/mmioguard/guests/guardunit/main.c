/*
 * Unit tests of the guard client (guard.c) against a mock hypervisor: this
 * guest replaces the SDK's weak smccc_hvc() with one that answers the
 * discovery and MMIO guard calls itself, logs them, and passes everything
 * else (PSCI) to the real hypervisor.  Runs anywhere (QEMU included) and
 * checks the exact call sequences of spec section 6: discovery order, no
 * ENROLL unless every check passed, MAP on a granule's first reference only,
 * UNMAP on its last, and the undo of a partly failed ioremap().
 */
#include "guest.h"

#define G SZ_4K
#define DEV 0x0a000000UL /* unassigned device space */

struct call {
	u32 fid;
	u64 a1, a2;
};

static struct {
	bool uid_ok;
	u64 features;
	s64 info;
	s64 enroll_ret;
	u64 fail_map_ipa; /* MAP of this IPA returns -1 (0: none) */
	bool enrolled;
	unsigned int nr_calls;
	struct call calls[64];
	unsigned int nr_mapped;
	u64 mapped[32];
} mock;

static struct smccc_res result(u64 a0)
{
	return (struct smccc_res){ a0, 0, 0, 0 };
}

static bool mock_is_mapped(u64 ipa)
{
	for (unsigned int i = 0; i < mock.nr_mapped; i++)
		if (mock.mapped[i] == ipa)
			return true;
	return false;
}

struct smccc_res smccc_hvc(u32 fid, u64 a1, u64 a2, u64 a3)
{
	bool mine = fid == SMCCC_VERSION || fid == ARM_SMCCC_VENDOR_HYP_CALL_UID ||
		    fid == ARM_SMCCC_VENDOR_HYP_KVM_FEATURES || (fid >= 0xC6000002U && fid <= 0xC6000005U);

	if (!mine)
		return smccc_hvc_raw(fid, a1, a2, a3);
	if (mock.nr_calls < ARRAY_SIZE(mock.calls))
		mock.calls[mock.nr_calls] = (struct call){ fid, a1, a2 };
	mock.nr_calls++;

	switch (fid) {
	case SMCCC_VERSION:
		return result(0x10001);
	case ARM_SMCCC_VENDOR_HYP_CALL_UID:
		if (!mock.uid_ok)
			return result((u64)-1);
		return (struct smccc_res){ KVM_UID_0, KVM_UID_1, KVM_UID_2, KVM_UID_3 };
	case ARM_SMCCC_VENDOR_HYP_KVM_FEATURES:
		return result(mock.features);
	case MMIO_GUARD_INFO:
		return result((u64)mock.info);
	case MMIO_GUARD_ENROLL:
		if (mock.enroll_ret == 0)
			mock.enrolled = true;
		return result((u64)mock.enroll_ret);
	case MMIO_GUARD_MAP:
		if (!mock.enrolled || (a1 & (G - 1)) || a1 == mock.fail_map_ipa)
			return result((u64)-1);
		if (!mock_is_mapped(a1) && mock.nr_mapped < ARRAY_SIZE(mock.mapped))
			mock.mapped[mock.nr_mapped++] = a1;
		return result(0);
	case MMIO_GUARD_UNMAP:
		for (unsigned int i = 0; i < mock.nr_mapped; i++) {
			if (mock.mapped[i] == (a1 & ~(G - 1))) {
				mock.mapped[i] = mock.mapped[--mock.nr_mapped];
				return result(0);
			}
		}
		return result((u64)-1);
	}
	return result((u64)-1);
}

static void mock_reset(void)
{
	mock = (typeof(mock)){ 0 };
	mock.uid_ok = true;
	mock.features = 0x3d; /* FEATURES, MMIO guard bits 2..5 (no PTP) */
	mock.info = G;
	guard_test_reset();
}

static void mock_clear_log(void) { mock.nr_calls = 0; }

static unsigned int count_calls(u32 fid)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < mock.nr_calls && i < ARRAY_SIZE(mock.calls); i++)
		n += mock.calls[i].fid == fid;
	return n;
}

static bool log_is(const u32 *fids, unsigned int n)
{
	if (mock.nr_calls != n)
		return false;
	for (unsigned int i = 0; i < n; i++)
		if (mock.calls[i].fid != fids[i])
			return false;
	return true;
}

static void test_discovery(void)
{
	static const u32 full[] = { SMCCC_VERSION, ARM_SMCCC_VENDOR_HYP_CALL_UID,
				    ARM_SMCCC_VENDOR_HYP_KVM_FEATURES, MMIO_GUARD_INFO,
				    MMIO_GUARD_ENROLL };
	int err;

	mock_reset();
	is_eq("bad page size refused", (u64)(s64)guard_init(8192), (u64)(s64)GUARD_EPAGESIZE);
	ok(mock.nr_calls == 0, "bad page size: no call made");

	mock_reset();
	mock.uid_ok = false;
	err = guard_init(G);
	ok(err == GUARD_EUID && log_is(full, 2) && !guard_enrolled(),
	   "wrong UID: stops after the UID call (%d, %u calls)", err, mock.nr_calls);

	for (int bit = 2; bit <= 5; bit++) {
		mock_reset();
		mock.features &= ~(1UL << bit);
		err = guard_init(G);
		ok(err == GUARD_EFEATURES && log_is(full, 3) && !guard_enrolled(),
		   "feature bit %d missing: stops after FEATURES (%d)", bit, err);
	}

	mock_reset();
	mock.info = SZ_64K;
	err = guard_init(G);
	ok(err == GUARD_EGRANULE && log_is(full, 4) && !guard_enrolled(),
	   "INFO != page size: no ENROLL (%d)", err);

	mock_reset();
	mock.info = -1;
	err = guard_init(G);
	ok(err == GUARD_EGRANULE && log_is(full, 4), "INFO failing: no ENROLL (%d)", err);

	mock_reset();
	mock.enroll_ret = -1;
	err = guard_init(G);
	ok(err == GUARD_EENROLL && log_is(full, 5) && !guard_enrolled(),
	   "ENROLL refused: not enrolled (%d)", err);
	ok(ioremap(DEV, 4) == (void *)DEV && count_calls(MMIO_GUARD_MAP) == 0,
	   "not enrolled: ioremap returns the address and MAPs nothing");

	mock_reset();
	err = guard_init(G);
	ok(err == 0 && log_is(full, 5) && guard_enrolled() && guard_granule() == G,
	   "UID, FEATURES, INFO, ENROLL in that order: enrolled");
	mock_clear_log();
	ok(guard_init(G) == 0 && mock.nr_calls == 0, "second guard_init: 0, no call");
}

static void test_refcount(void)
{
	void *a, *b, *c;

	mock_reset();
	guard_init(G);
	mock_clear_log();

	a = ioremap(DEV + 0x10, 2 * G); /* touches 3 granules */
	ok(a == (void *)(DEV + 0x10) && count_calls(MMIO_GUARD_MAP) == 3 && mock.nr_mapped == 3,
	   "ioremap over 3 granules: 3 MAPs (%u)", count_calls(MMIO_GUARD_MAP));
	ok(mock.calls[0].a1 == DEV && mock.calls[1].a1 == DEV + G && mock.calls[2].a1 == DEV + 2 * G &&
		   mock.calls[0].a2 == MT_DEVICE_nGnRE,
	   "MAP x1 = granule IPA, x2 = MAIR index 0");

	mock_clear_log();
	b = ioremap(DEV + G, 8);
	ok(b && mock.nr_calls == 0 && guard_refcount(DEV + G) == 2,
	   "overlapping ioremap: no MAP, refcount 2");

	iounmap(a, 2 * G);
	ok(count_calls(MMIO_GUARD_UNMAP) == 2 && mock_is_mapped(DEV + G) && !mock_is_mapped(DEV) &&
		   !mock_is_mapped(DEV + 2 * G),
	   "iounmap: UNMAPs only the granules whose count reached 0");
	mock_clear_log();
	iounmap(b, 8);
	ok(count_calls(MMIO_GUARD_UNMAP) == 1 && mock.nr_mapped == 0 && guard_refcount(DEV + G) == 0,
	   "last iounmap: UNMAP");
	mock_clear_log();
	iounmap(b, 8);
	ok(mock.nr_calls == 0, "iounmap of an unreferenced granule: no call");

	/* A MAP failing in the middle undoes exactly what this call did. */
	c = ioremap(DEV, 4); /* granule 0 already referenced */
	mock.fail_map_ipa = DEV + 2 * G;
	mock_clear_log();
	a = ioremap(DEV, 3 * G);
	ok(a == NULL, "ioremap with a failing MAP returns NULL");
	ok(count_calls(MMIO_GUARD_MAP) == 2 && count_calls(MMIO_GUARD_UNMAP) == 1 &&
		   mock.calls[mock.nr_calls - 1].a1 == DEV + G,
	   "it UNMAPs the granule it mapped, and only that one");
	ok(guard_refcount(DEV) == 1 && guard_refcount(DEV + G) == 0 && mock_is_mapped(DEV) &&
		   !mock_is_mapped(DEV + G),
	   "the earlier mapping keeps its reference");
	iounmap(c, 4);
	mock.fail_map_ipa = 0;

	ok(ioremap(DEV, 0) == NULL && ioremap(~0UL - 4, 16) == NULL, "size 0 or wrapping: NULL");

	/* Table full. */
	mock_reset();
	guard_init(G);
	for (unsigned int i = 0; i < GUARD_MAX_GRANULES; i++)
		if (!ioremap(0x20000000UL + i * G, 4))
			break;
	mock.nr_mapped = 0; /* the mock only tracks 32; start afresh for the check */
	mock_clear_log();
	ok(ioremap(DEV, 4) == NULL && count_calls(MMIO_GUARD_MAP) == 0,
	   "ioremap with the %d-entry table full: NULL, no MAP", GUARD_MAX_GRANULES);
}

int main(u64 dtb)
{
	plan(24);
	test_discovery();
	test_refcount();
	mock_reset();
	done();
}
