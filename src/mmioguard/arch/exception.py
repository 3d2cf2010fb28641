"""AArch64 exception entry to EL1, as a pure function of the state at the exception.

Unicorn hands every synchronous exception to the host instead of taking it inside the guest,
so the hypervisor performs the architectural entry itself: this module says what the entry
writes; the CPU backend only applies it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# PSTATE / SPSR bit positions (AArch64 view).
PSTATE_SP = 1 << 0  # M[0]: 1 = SP_ELx, 0 = SP_EL0
PSTATE_EL_SHIFT = 2
PSTATE_EL_MASK = 0b11 << PSTATE_EL_SHIFT
PSTATE_NRW = 1 << 4  # M[4]: AArch32
PSTATE_F = 1 << 6
PSTATE_I = 1 << 7
PSTATE_A = 1 << 8
PSTATE_D = 1 << 9
PSTATE_DAIF = PSTATE_D | PSTATE_A | PSTATE_I | PSTATE_F

MODE_EL0T = 0b0000
MODE_EL1T = 0b0100
MODE_EL1H = 0b0101

# What a vCPU boots with and what exception entry to EL1 sets: EL1h, DAIF masked.
BOOT_PSTATE = PSTATE_DAIF | MODE_EL1H


class VectorKind(enum.IntEnum):
    """Offset of the vector within a 0x200-byte group."""

    SYNC = 0x000
    IRQ = 0x080
    FIQ = 0x100
    SERROR = 0x180


class UnsupportedState(Exception):
    """The vCPU is in a state this hypervisor does not model (AArch32, EL2 or EL3)."""


def current_el(pstate: int) -> int:
    return (pstate & PSTATE_EL_MASK) >> PSTATE_EL_SHIFT


def uses_sp_elx(pstate: int) -> bool:
    return bool(pstate & PSTATE_SP)


def vector_offset(pstate: int, kind: VectorKind) -> int:
    """Offset from VBAR_EL1 for an exception taken to EL1 from ``pstate``."""
    if pstate & PSTATE_NRW:
        raise UnsupportedState("exception from AArch32 state")
    el = current_el(pstate)
    if el == 0:
        group = 0x400  # lower EL using AArch64
    elif el == 1:
        group = 0x200 if uses_sp_elx(pstate) else 0x000
    else:
        raise UnsupportedState(f"exception from EL{el}")
    return group + kind


@dataclass(frozen=True)
class Entry:
    """The register writes of one exception entry to EL1h."""

    pc: int
    pstate: int
    elr: int
    spsr: int
    esr: int | None  # None for asynchronous exceptions (ESR is not written)
    far: int | None  # None where the architecture leaves FAR_EL1 unchanged
    from_el0: bool
    # The stack pointer in use at the exception was SP_EL0 (EL0, or EL1t): it must be banked
    # into SP_EL0 and SP_EL1 becomes current.
    bank_sp_el0: bool


def enter(
    pstate: int,
    return_address: int,
    vbar: int,
    kind: VectorKind,
    esr: int | None = None,
    far: int | None = None,
) -> Entry:
    """Exception entry to EL1 from EL0 or EL1, AArch64 (Arm ARM, AArch64.TakeException)."""
    offset = vector_offset(pstate, kind)
    return Entry(
        pc=(vbar & ~0x7FF) + offset,
        pstate=BOOT_PSTATE,
        elr=return_address,
        spsr=pstate,
        esr=esr,
        far=far,
        from_el0=current_el(pstate) == 0,
        bank_sp_el0=not uses_sp_elx(pstate) or current_el(pstate) == 0,
    )
