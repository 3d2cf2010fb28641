"""Why a vCPU stopped running guest code: small immutable records the run loop matches on.

As in kvm-ioctls' VcpuExit, each kind of exit is one type; the VMM's run loop is a match over
them, and exit handlers can be tested with fabricated records.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SystemEventKind(enum.Enum):
    OFF = "off"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class SystemEvent:
    """PSCI SYSTEM_OFF / SYSTEM_RESET / SYSTEM_RESET2 (KVM_EXIT_SYSTEM_EVENT)."""

    kind: SystemEventKind
    vcpu: int
    pc: int
    reset_type: int = 0


@dataclass(frozen=True, slots=True)
class GuestStop:
    """The VM must stop because of the guest (exit status 1); ``report`` says why."""

    reason: str
    report: str
    vcpu: int
    pc: int


@dataclass(frozen=True, slots=True)
class SliceEnd:
    """The vCPU used up its slice; the scheduler may run another one."""

    vcpu: int


@dataclass(frozen=True, slots=True)
class Halted:
    """The vCPU is powered off (PSCI CPU_OFF) or waiting (WFI) with nothing to wake it."""

    vcpu: int
    powered_off: bool


Exit = SystemEvent | GuestStop | SliceEnd | Halted
