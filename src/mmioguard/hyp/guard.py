"""The MMIO guard state of one VM: enrollment and the set of mapped granules.

Lookups are one shift and one set membership test, whatever the number of mapped granules:
the device-access hot path reads ``enrolled`` and ``mapped`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class GuardMirror(Protocol):
    """A copy of the guard state kept elsewhere (the native fast path's C set).

    It must never be more permissive than this one: enrollment and every unmapping are
    mirrored before the guest runs again; a mapping it failed to record only costs speed.
    """

    enrolled: bool

    def add(self, granule: int) -> bool: ...

    def remove(self, granule: int) -> bool: ...

    def clear(self) -> None: ...


@dataclass
class AuditFinding:
    """A granule an audited guest touched without mapping it."""

    granule_addr: int
    first_pc: int
    count: int = 0


@dataclass
class GuardState:
    granule: int
    enrolled: bool = False
    mapped: set[int] = field(default_factory=set)  # granule numbers (IPA >> shift)
    audit: dict[int, AuditFinding] = field(default_factory=dict)
    mirror: GuardMirror | None = None

    def __post_init__(self) -> None:
        if self.granule & (self.granule - 1):
            raise ValueError("granule must be a power of two")
        self.shift = self.granule.bit_length() - 1

    def reset(self) -> None:
        self.enrolled = False
        self.mapped.clear()
        if self.mirror is not None:
            self.mirror.enrolled = False
            self.mirror.clear()

    def enroll(self) -> None:
        self.enrolled = True
        if self.mirror is not None:
            self.mirror.enrolled = True

    def add(self, granule: int) -> None:
        """Map granule number ``granule`` (an IPA shifted right by ``shift``)."""
        self.mapped.add(granule)
        if self.mirror is not None:
            self.mirror.add(granule)

    def discard(self, granule: int) -> None:
        self.mapped.discard(granule)
        if self.mirror is not None:
            self.mirror.remove(granule)

    def is_mapped(self, ipa: int) -> bool:
        return (ipa >> self.shift) in self.mapped

    def allows(self, ipa: int, size: int) -> bool:
        """The granule of the first byte, and of the last byte when it crosses, are mapped."""
        first = ipa >> self.shift
        last = (ipa + size - 1) >> self.shift
        return first in self.mapped and (last == first or last in self.mapped)

    def granule_base(self, ipa: int) -> int:
        return (ipa >> self.shift) << self.shift

    def mapped_bases(self) -> list[int]:
        return sorted(g << self.shift for g in self.mapped)

    def record_audit(self, ipa: int, pc: int) -> None:
        base = self.granule_base(ipa)
        finding = self.audit.get(base)
        if finding is None:
            finding = self.audit[base] = AuditFinding(base, pc)
        finding.count += 1
