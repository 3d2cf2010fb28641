"""The guard's decision for one device access (spec section 4), as a pure function."""

from __future__ import annotations

import enum

from mmioguard.hyp.config import GuardMode, NisvPolicy, VmConfig
from mmioguard.hyp.guard import GuardState


class Verdict(enum.Enum):
    FORWARD = "forwarded"
    ABORT_UNMAPPED = "aborted: granule not mapped"
    ABORT_STRADDLE = "aborted: access crosses into an unmapped granule"
    ABORT_NO_SYNDROME = "aborted: no valid syndrome (ISV=0)"
    AUDIT = "audit: would abort, forwarded"
    NISV_STOP = "stopped: no valid syndrome before enrollment"
    NISV_USER = "NISV exit to the VMM"
    NISV_EMULATE = "emulated: no valid syndrome"

    @property
    def aborts(self) -> bool:
        return self in (
            Verdict.ABORT_UNMAPPED,
            Verdict.ABORT_STRADDLE,
            Verdict.ABORT_NO_SYNDROME,
        )


class AbortAccess(Exception):
    """Raised by the VMM's access handler: inject an external abort (e.g. unassigned=abort)."""


class StopAccess(Exception):
    """Raised by the VMM's access handler: the VM must stop; the message is the report."""

    def __init__(self, message: str, addr: int | None = None) -> None:
        super().__init__(message)
        self.addr = addr


def decide(config: VmConfig, guard: GuardState, isv: bool, ipa: int, size: int) -> Verdict:
    if not guard.enrolled:
        if isv:
            return Verdict.FORWARD
        if config.nisv is NisvPolicy.STOP:
            return Verdict.NISV_STOP
        if config.nisv is NisvPolicy.USER:
            return Verdict.NISV_USER
        return Verdict.NISV_EMULATE
    if not isv:
        verdict = Verdict.ABORT_NO_SYNDROME
    elif not guard.is_mapped(ipa):
        verdict = Verdict.ABORT_UNMAPPED
    elif not guard.allows(ipa, size):
        verdict = Verdict.ABORT_STRADDLE
    else:
        return Verdict.FORWARD
    if config.guard_mode is GuardMode.AUDIT:
        return Verdict.AUDIT
    return verdict
