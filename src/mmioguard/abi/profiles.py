"""The MMIO guard ABI profiles of spec section 7, as data.

Each profile is a table of vendor-hypervisor calls (function 0xC6000000 + n) naming the guard
operation behind each number. The dispatcher, the feature bitmap and ``mmioguard abi`` are all
derived from these tables, so what the build answers and what it prints cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from mmioguard.abi.smccc import INVALID_PARAMETER, NOT_SUPPORTED, VENDOR_HYP_64


class GuardOp(enum.Enum):
    """What a vendor call does, independent of the number a profile gives it."""

    INFO = "info"  # returns the protection granule size
    ENROLL = "enroll"
    MAP = "map"
    UNMAP = "unmap"
    MMIO_GUARD = "mmio_guard"  # linux: map one granule; the first success enrolls
    MEM_SHARE = "mem_share"
    MEM_UNSHARE = "mem_unshare"
    MEM_RELINQUISH = "mem_relinquish"
    RGUARD_MAP = "rguard_map"
    RGUARD_UNMAP = "rguard_unmap"


@dataclass(frozen=True)
class VendorCall:
    n: int
    name: str
    op: GuardOp
    args: tuple[str, ...]
    result: str

    @property
    def fid(self) -> int:
        return VENDOR_HYP_64 + self.n


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    calls: tuple[VendorCall, ...]
    # x0 for a guard call that fails because of its arguments or state.
    error: int
    # True: a guard call other than INFO needs a prior ENROLL. False: the first successful
    # MMIO_GUARD call enrolls (upstream Linux has no enroll call).
    explicit_enroll: bool
    by_fid: Mapping[int, VendorCall] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_fid", {c.fid: c for c in self.calls})

    def feature_bitmap(self) -> int:
        """VENDOR_HYP_KVM_FEATURES: bit 0 (the call itself) and bit n for each call n."""
        bits = 1
        for call in self.calls:
            bits |= 1 << call.n
        return bits

    def call_for(self, op: GuardOp) -> VendorCall | None:
        for call in self.calls:
            if call.op is op:
                return call
        return None


KVM_V2 = Profile(
    name="kvm-v2",
    summary="the seed ABI of the KVM MMIO guard series (v2, 2021)",
    calls=(
        VendorCall(2, "MMIO_GUARD_INFO", GuardOp.INFO, (), "x0 = granule size in bytes"),
        VendorCall(3, "MMIO_GUARD_ENROLL", GuardOp.ENROLL, (), "x0 = 0"),
        VendorCall(
            4, "MMIO_GUARD_MAP", GuardOp.MAP, ("x1 = IPA", "x2 = MAIR_EL1 index"), "x0 = 0"
        ),
        VendorCall(5, "MMIO_GUARD_UNMAP", GuardOp.UNMAP, ("x1 = IPA",), "x0 = 0"),
    ),
    error=NOT_SUPPORTED,
    explicit_enroll=True,
)

PKVM = Profile(
    name="pkvm",
    summary="Android protected KVM",
    calls=(
        VendorCall(2, "HYP_MEMINFO", GuardOp.INFO, (), "x0 = granule size in bytes"),
        VendorCall(3, "MEM_SHARE", GuardOp.MEM_SHARE, ("x1 = IPA",), "x0 = 0"),
        VendorCall(4, "MEM_UNSHARE", GuardOp.MEM_UNSHARE, ("x1 = IPA",), "x0 = 0"),
        VendorCall(5, "MMIO_GUARD_INFO", GuardOp.INFO, (), "x0 = granule size in bytes"),
        VendorCall(6, "MMIO_GUARD_ENROLL", GuardOp.ENROLL, (), "x0 = 0"),
        VendorCall(7, "MMIO_GUARD_MAP", GuardOp.MAP, ("x1 = IPA",), "x0 = 0"),
        VendorCall(8, "MMIO_GUARD_UNMAP", GuardOp.UNMAP, ("x1 = IPA",), "x0 = 0"),
        VendorCall(9, "MEM_RELINQUISH", GuardOp.MEM_RELINQUISH, ("x1 = IPA",), "x0 = 0"),
        VendorCall(
            10,
            "MMIO_RGUARD_MAP",
            GuardOp.RGUARD_MAP,
            ("x1 = IPA", "x2 = size in bytes"),
            "x0 = 0, x1 = bytes mapped",
        ),
        VendorCall(
            11,
            "MMIO_RGUARD_UNMAP",
            GuardOp.RGUARD_UNMAP,
            ("x1 = IPA", "x2 = size in bytes"),
            "x0 = 0, x1 = bytes unmapped",
        ),
    ),
    error=INVALID_PARAMETER,
    explicit_enroll=True,
)

LINUX = Profile(
    name="linux",
    summary="the upstream Linux 6.12+ guest (drivers/virt/coco/pkvm-guest)",
    calls=(
        VendorCall(2, "HYP_MEMINFO", GuardOp.INFO, (), "x0 = granule size in bytes"),
        VendorCall(3, "MEM_SHARE", GuardOp.MEM_SHARE, ("x1 = IPA",), "x0 = 0"),
        VendorCall(4, "MEM_UNSHARE", GuardOp.MEM_UNSHARE, ("x1 = IPA",), "x0 = 0"),
        VendorCall(7, "MMIO_GUARD", GuardOp.MMIO_GUARD, ("x1 = IPA",), "x0 = 0"),
    ),
    error=NOT_SUPPORTED,
    explicit_enroll=False,
)

# A KVM host that does not offer the guard at all (plain KVM): the UID and the feature bitmap
# answer, with no vendor call behind them, so a guest finds nothing to enroll in. The baseline
# to compare a guarded run with.
NO_GUARD = Profile(
    name="none",
    summary="KVM without the MMIO guard (discovery answers, no guard calls)",
    calls=(),
    error=NOT_SUPPORTED,
    explicit_enroll=True,
)

PROFILES: Mapping[str, Profile] = {p.name: p for p in (KVM_V2, PKVM, LINUX, NO_GUARD)}
