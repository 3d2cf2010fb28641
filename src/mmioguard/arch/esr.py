"""Exception syndrome (ESR_ELx) encoding, as the Arm ARM defines it."""

from __future__ import annotations

import enum

IL = 1 << 25  # 32-bit instruction
ISS_MASK = (1 << 25) - 1


class EC(enum.IntEnum):
    UNKNOWN = 0x00
    WFX = 0x01
    FP_ACCESS = 0x07
    ILLEGAL_STATE = 0x0E
    SVC64 = 0x15
    HVC64 = 0x16
    SMC64 = 0x17
    SYS64 = 0x18
    IABT_LOW = 0x20
    IABT_CUR = 0x21
    PC_ALIGN = 0x22
    DABT_LOW = 0x24
    DABT_CUR = 0x25
    SP_ALIGN = 0x26
    SERROR = 0x2F
    BRK64 = 0x3C


class FSC(enum.IntEnum):
    """Fault status codes (DFSC/IFSC) that this hypervisor produces."""

    ADDRESS_SIZE_L0 = 0x00
    TRANSLATION_L0 = 0x04
    ACCESS_FLAG_L0 = 0x08
    PERMISSION_L0 = 0x0C
    EXTERNAL = 0x10  # synchronous external abort, not on a table walk
    EXTERNAL_WALK_L0 = 0x14
    ALIGNMENT = 0x21


# Data abort ISS fields.
ISS_ISV = 1 << 24
ISS_SSE = 1 << 21
ISS_SF = 1 << 15
ISS_AR = 1 << 14
ISS_WNR = 1 << 6


def esr(ec: int, iss: int = 0, il: bool = True) -> int:
    return (ec << 26) | (IL if il else 0) | (iss & ISS_MASK)


def ec_of(value: int) -> int:
    return (value >> 26) & 0x3F


def iss_of(value: int) -> int:
    return value & ISS_MASK


def data_abort(from_el0: bool, iss: int) -> int:
    return esr(EC.DABT_LOW if from_el0 else EC.DABT_CUR, iss)


def instruction_abort(from_el0: bool, fsc: int) -> int:
    return esr(EC.IABT_LOW if from_el0 else EC.IABT_CUR, fsc)


def external_data_abort(from_el0: bool) -> int:
    """The abort KVM injects for a guarded access (spec section 4): only EC, IL and DFSC."""
    return data_abort(from_el0, FSC.EXTERNAL)


def external_instruction_abort(from_el0: bool) -> int:
    return instruction_abort(from_el0, FSC.EXTERNAL)


def describe(value: int) -> str:
    """A short human reading of an ESR value, for reports."""
    ec = ec_of(value)
    try:
        name = EC(ec).name
    except ValueError:
        name = f"EC {ec:#x}"
    return f"{value:#010x} ({name}, ISS {iss_of(value):#x})"
