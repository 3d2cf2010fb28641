/* MMIO guard client: discovery, enrollment, ref-counted ioremap/iounmap. */
#include "guard.h"
#include "internal.h"
#include "mmu.h"
#include "printf.h"
#include "smccc.h"

struct granule_ref {
	u64 ipa; /* granule address */
	u32 count;
};

static bool enrolled;
static u64 granule;
static struct granule_ref refs[GUARD_MAX_GRANULES];

s64 guard_info(void) { return (s64)smccc_hvc(MMIO_GUARD_INFO, 0, 0, 0).a0; }

s64 guard_enroll(void) { return (s64)smccc_hvc(MMIO_GUARD_ENROLL, 0, 0, 0).a0; }

s64 guard_map(u64 ipa, u64 mair_idx) { return (s64)smccc_hvc(MMIO_GUARD_MAP, ipa, mair_idx, 0).a0; }

s64 guard_unmap(u64 ipa) { return (s64)smccc_hvc(MMIO_GUARD_UNMAP, ipa, 0, 0).a0; }

static bool hyp_is_kvm(void)
{
	struct smccc_res res = smccc_hvc(ARM_SMCCC_VENDOR_HYP_CALL_UID, 0, 0, 0);

	return res.a0 == KVM_UID_0 && res.a1 == KVM_UID_1 && res.a2 == KVM_UID_2 &&
	       res.a3 == KVM_UID_3;
}

int guard_init(unsigned long page_size)
{
	struct smccc_res res;
	s32 version;

	if (enrolled)
		return GUARD_OK;
	if (page_size != SZ_4K && page_size != SZ_16K && page_size != SZ_64K)
		return GUARD_EPAGESIZE;
	version = smccc_version();
	if (version < 0x10001)
		return GUARD_ESMCCC;
	if (!hyp_is_kvm())
		return GUARD_EUID;
	res = smccc_hvc(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES, 0, 0, 0);
	if ((res.a0 & KVM_FEATURES_MMIO_GUARD_ALL) != KVM_FEATURES_MMIO_GUARD_ALL)
		return GUARD_EFEATURES;
	if ((u64)guard_info() != page_size)
		return GUARD_EGRANULE;
	if (guard_enroll() != 0)
		return GUARD_EENROLL;
	granule = page_size;
	enrolled = true;
	return GUARD_OK;
}

bool guard_enrolled(void) { return enrolled; }

unsigned long guard_granule(void) { return enrolled ? granule : 0; }

const char *guard_strerror(int err)
{
	switch (err) {
	case GUARD_OK: return "enrolled";
	case GUARD_EPAGESIZE: return "unsupported guest page size";
	case GUARD_ESMCCC: return "not supported (SMCCC older than 1.1)";
	case GUARD_EUID: return "not supported (the hypervisor is not KVM)";
	case GUARD_EFEATURES: return "not supported (no MMIO guard in the KVM features)";
	case GUARD_EGRANULE: return "granule differs from the guest page size";
	case GUARD_EENROLL: return "enrollment refused";
	default: return "unknown error";
	}
}

static struct granule_ref *find_ref(u64 ipa)
{
	for (unsigned int i = 0; i < GUARD_MAX_GRANULES; i++)
		if (refs[i].count && refs[i].ipa == ipa)
			return &refs[i];
	return NULL;
}

static struct granule_ref *free_ref(void)
{
	for (unsigned int i = 0; i < GUARD_MAX_GRANULES; i++)
		if (!refs[i].count)
			return &refs[i];
	return NULL;
}

unsigned int guard_refcount(u64 pa)
{
	struct granule_ref *r;

	if (!enrolled)
		return 0;
	r = find_ref(ALIGN_DOWN(pa, granule));
	return r ? r->count : 0;
}

/* Drop one reference; UNMAP when it was the last. */
static void put_granule(u64 ipa)
{
	struct granule_ref *r = find_ref(ipa);

	if (!r)
		return;
	if (--r->count == 0)
		guard_unmap(ipa);
}

void *ioremap(u64 pa, u64 size)
{
	u64 first, last;

	if (size == 0 || pa + size - 1 < pa)
		return NULL;
	if (!enrolled)
		return (void *)(uintptr_t)pa;

	first = ALIGN_DOWN(pa, granule);
	last = ALIGN_DOWN(pa + size - 1, granule);
	for (u64 ipa = first;; ipa += granule) {
		struct granule_ref *r = find_ref(ipa);

		if (r) {
			r->count++;
		} else {
			r = free_ref();
			if (!r || guard_map(ipa, MT_DEVICE_nGnRE) != 0) {
				/* undo the granules this call already took */
				for (u64 undo = first; undo < ipa; undo += granule)
					put_granule(undo);
				return NULL;
			}
			r->ipa = ipa;
			r->count = 1;
		}
		if (ipa == last)
			break;
	}
	return (void *)(uintptr_t)pa;
}

void iounmap(void *va, u64 size)
{
	u64 pa = (u64)(uintptr_t)va, first, last;

	if (!enrolled || size == 0 || pa + size - 1 < pa)
		return;
	first = ALIGN_DOWN(pa, granule);
	last = ALIGN_DOWN(pa + size - 1, granule);
	for (u64 ipa = first;; ipa += granule) {
		put_granule(ipa);
		if (ipa == last)
			break;
	}
}

void guard_test_reset(void)
{
	enrolled = false;
	granule = 0;
	for (unsigned int i = 0; i < GUARD_MAX_GRANULES; i++)
		refs[i] = (struct granule_ref){ 0, 0 };
}

void sdk_console_rescue(void)
{
	u64 uart = ALIGN_DOWN((u64)(uintptr_t)uart_get_base(), granule);

	if (enrolled && !find_ref(uart))
		guard_map(uart, MT_DEVICE_nGnRE);
}
