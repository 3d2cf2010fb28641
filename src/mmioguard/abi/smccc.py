"""SMCCC and PSCI function identifiers, return codes and the KVM vendor UID.

Pure data: the dispatcher in :mod:`mmioguard.hyp.smccc` and ``mmioguard abi`` both read it.
"""

from __future__ import annotations

import enum

# SMCCC return codes as the guest sees them in x0 (64-bit two's complement).
NOT_SUPPORTED = 0xFFFF_FFFF_FFFF_FFFF
NOT_REQUIRED = 0xFFFF_FFFF_FFFF_FFFE
INVALID_PARAMETER = 0xFFFF_FFFF_FFFF_FFFD

SMCCC_VERSION_1_1 = 0x10001
PSCI_VERSION_1_1 = 0x10001


def signed(value: int) -> int:
    """A register value read as a signed 64-bit number (for reports)."""
    return value - (1 << 64) if value & (1 << 63) else value


def to_reg(value: int) -> int:
    """A Python int (possibly negative) as the 64-bit register value the guest sees."""
    return value & 0xFFFF_FFFF_FFFF_FFFF


class Fid(enum.IntEnum):
    """Function IDs this hypervisor knows by name, whatever the profile."""

    SMCCC_VERSION = 0x8000_0000
    SMCCC_ARCH_FEATURES = 0x8000_0001
    SMCCC_ARCH_SOC_ID = 0x8000_0002
    SMCCC_ARCH_WORKAROUND_1 = 0x8000_8000
    SMCCC_ARCH_WORKAROUND_2 = 0x8000_7FFF
    SMCCC_ARCH_WORKAROUND_3 = 0x8000_3FFF

    PSCI_VERSION = 0x8400_0000
    PSCI_CPU_SUSPEND_32 = 0x8400_0001
    PSCI_CPU_SUSPEND = 0xC400_0001
    PSCI_CPU_OFF = 0x8400_0002
    PSCI_CPU_ON_32 = 0x8400_0003
    PSCI_CPU_ON = 0xC400_0003
    PSCI_AFFINITY_INFO_32 = 0x8400_0004
    PSCI_AFFINITY_INFO = 0xC400_0004
    PSCI_MIGRATE_INFO_TYPE = 0x8400_0006
    PSCI_SYSTEM_OFF = 0x8400_0008
    PSCI_SYSTEM_RESET = 0x8400_0009
    PSCI_FEATURES = 0x8400_000A
    PSCI_SYSTEM_RESET2_32 = 0x8400_0012
    PSCI_SYSTEM_RESET2 = 0xC400_0012

    VENDOR_HYP_KVM_FEATURES = 0x8600_0000
    VENDOR_HYP_CALL_UID = 0x8600_FF01


class PsciRet(enum.IntEnum):
    SUCCESS = 0
    NOT_SUPPORTED = -1
    INVALID_PARAMETERS = -2
    DENIED = -3
    ALREADY_ON = -4
    ON_PENDING = -5
    INTERNAL_FAILURE = -6
    NOT_PRESENT = -7
    DISABLED = -8
    INVALID_ADDRESS = -9


class AffinityState(enum.IntEnum):
    ON = 0
    OFF = 1
    ON_PENDING = 2


# ARM_SMCCC_VENDOR_HYP_UID_KVM, as the four words a guest compares in x0..x3.
KVM_UID = (0xB66F_B428, 0xE911_C52E, 0x564B_CAA9, 0x743A_004D)

# Fast-call bit (31) and SMC64 bit (30) of a function ID.
FAST_CALL = 1 << 31
SMC64 = 1 << 30
# Owner 6 (vendor-specific hypervisor service), fast, 64-bit: 0xC6000000 + n.
VENDOR_HYP_64 = 0xC600_0000
