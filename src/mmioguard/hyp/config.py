"""How a VM is set up: the choices a VMM makes before the guest runs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mmioguard.abi.profiles import KVM_V2, Profile
from mmioguard.hyp.timer import ClockConfig


class NisvPolicy(enum.Enum):
    """What happens to a device access without a valid syndrome before enrollment (spec 5)."""

    STOP = "stop"  # KVM's default: the vCPU run fails and the VM stops with a report
    USER = "user"  # KVM_CAP_ARM_NISV_TO_USER: the VMM is told (and injects an abort)
    EMULATE = "emulate"  # beyond KVM: the instruction is decoded and emulated


class UnassignedPolicy(enum.Enum):
    """What the VMM does with an access where no device lives."""

    RAZ = "raz"  # reads as zero, writes ignored
    ABORT = "abort"  # the VMM injects an external abort
    STOP = "stop"  # the VM stops with a report


class GuardMode(enum.Enum):
    ENFORCE = "enforce"
    AUDIT = "audit"  # would-be aborts reach the device and are recorded


GRANULES = {"4k": 4096, "16k": 16384, "64k": 65536}


@dataclass(frozen=True)
class VmConfig:
    profile: Profile = KVM_V2
    granule: int = 4096
    ipa_bits: int = 40
    nisv: NisvPolicy = NisvPolicy.STOP
    unassigned: UnassignedPolicy = UnassignedPolicy.RAZ
    guard_mode: GuardMode = GuardMode.ENFORCE
    check_mair: bool = False
    # Granules the guard can hold before MAP fails as "out of memory" (KVM fails when it
    # cannot allocate stage-2 table pages; a bound makes that case reachable and testable).
    guard_capacity: int = 1 << 22
    smp: int = 1
    # How many identical exceptions at one PC, with identical registers, make a loop.
    exception_loop_limit: int = 64
    # The guest counter: host time, or deterministic (--icount).
    clock: ClockConfig = field(default_factory=ClockConfig)

    def __post_init__(self) -> None:
        if self.granule not in GRANULES.values():
            raise ValueError(f"granule must be 4k, 16k or 64k, not {self.granule}")
        if not 32 <= self.ipa_bits <= 52:
            raise ValueError(f"IPA bits must be between 32 and 52, not {self.ipa_bits}")
