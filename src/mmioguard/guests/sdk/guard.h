/*
 * MMIO guard client (spec section 6, profile kvm-v2).
 *
 * int guard_init(unsigned long page_size)
 *     Discovery, then enrollment.  In order:
 *       1. SMCCC_VERSION (0x80000000) must be >= 1.1 (0x10001);
 *       2. VENDOR_HYP_CALL_UID (0x8600FF01) must return KVM's UID in x0..x3:
 *          0xb66fb428, 0xe911c52e, 0x564bcaa9, 0x743a004d;
 *       3. VENDOR_HYP_KVM_FEATURES (0x86000000) must have bits 2..5 set
 *          (MMIO_GUARD_INFO, _ENROLL, _MAP, _UNMAP);
 *       4. MMIO_GUARD_INFO (0xC6000002) must return page_size, the guest's
 *          page size (4096, 16384 or 65536), which is then the granule;
 *       5. MMIO_GUARD_ENROLL (0xC6000003) must return 0.
 *     Returns 0 when enrolled, or a negative GUARD_E* code telling which step
 *     failed; on failure the guest has not enrolled (ENROLL is the last call
 *     and is made only when every check passed) and guard_enrolled() stays
 *     false.  Calling it again after success returns 0 and does nothing.
 *
 * bool guard_enrolled(void)
 *
 * void *ioremap(u64 pa, u64 size)
 *     Prepare [pa, pa + size) for device access and return its address
 *     (identity: the returned pointer is pa).  When enrolled, every granule
 *     the range touches is reference-counted here, and MMIO_GUARD_MAP
 *     (0xC6000004, x1 = granule IPA, x2 = MAIR index 0 = Device-nGnRE) is
 *     called only for a granule's first reference.  If a MAP fails, or the
 *     table of GUARD_MAX_GRANULES granules is full, everything this call did
 *     is undone (granules it MAPped are UNMAPped) and NULL is returned.
 *     Also NULL for size == 0 or a range that wraps.  When not enrolled,
 *     returns pa and calls nothing.
 *
 * void iounmap(void *va, u64 size)
 *     Drop one reference to every granule of [va, va + size); a granule whose
 *     count reaches 0 is UNMAPped (MMIO_GUARD_UNMAP, 0xC6000005, x1 = IPA).
 *     Granules without a reference are left alone.  No-op when not enrolled.
 *
 * Raw calls for tests (no reference counting, return x0 as a signed value:
 * 0 or -1 for NOT_SUPPORTED): guard_info(), guard_enroll(), guard_map(ipa,
 * mair_idx), guard_unmap(ipa).  guard_refcount(pa) is the count of the
 * granule holding pa.  None of this is SMP-safe: serialise calls yourself.
 */
#ifndef MMIOGUARD_GUARD_H
#define MMIOGUARD_GUARD_H

#include "types.h"

/* kvm-v2 function IDs. */
#define ARM_SMCCC_VENDOR_HYP_CALL_UID 0x8600FF01U
#define ARM_SMCCC_VENDOR_HYP_KVM_FEATURES 0x86000000U
#define MMIO_GUARD_INFO 0xC6000002U
#define MMIO_GUARD_ENROLL 0xC6000003U
#define MMIO_GUARD_MAP 0xC6000004U
#define MMIO_GUARD_UNMAP 0xC6000005U

/* KVM feature bitmap bits. */
#define KVM_FEATURE_FEATURES 0
#define KVM_FEATURE_PTP 1
#define KVM_FEATURE_MMIO_GUARD_INFO 2
#define KVM_FEATURE_MMIO_GUARD_ENROLL 3
#define KVM_FEATURE_MMIO_GUARD_MAP 4
#define KVM_FEATURE_MMIO_GUARD_UNMAP 5
#define KVM_FEATURES_MMIO_GUARD_ALL (0xfUL << 2)

/* KVM's vendor hypervisor UID, x0..x3. */
#define KVM_UID_0 0xb66fb428U
#define KVM_UID_1 0xe911c52eU
#define KVM_UID_2 0x564bcaa9U
#define KVM_UID_3 0x743a004dU

/* guard_init() results. */
#define GUARD_OK 0
#define GUARD_EPAGESIZE (-1) /* page_size is not 4K, 16K or 64K */
#define GUARD_ESMCCC (-2)    /* SMCCC older than 1.1 */
#define GUARD_EUID (-3)      /* not KVM's vendor hypervisor UID */
#define GUARD_EFEATURES (-4) /* feature bits 2..5 not all set */
#define GUARD_EGRANULE (-5)  /* MMIO_GUARD_INFO differs from page_size (or failed) */
#define GUARD_EENROLL (-6)   /* MMIO_GUARD_ENROLL failed */

#define GUARD_MAX_GRANULES 256

int guard_init(unsigned long page_size);
bool guard_enrolled(void);
/* The granule size when enrolled, else 0. */
unsigned long guard_granule(void);
/* "not supported by the hypervisor (...)" etc. */
const char *guard_strerror(int err);

void *ioremap(u64 pa, u64 size);
void iounmap(void *va, u64 size);

s64 guard_info(void);
s64 guard_enroll(void);
s64 guard_map(u64 ipa, u64 mair_idx);
s64 guard_unmap(u64 ipa);
unsigned int guard_refcount(u64 pa);
/* Forget the enrollment and every reference, without any call (unit tests). */
void guard_test_reset(void);

#endif
