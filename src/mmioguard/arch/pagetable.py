"""Software stage-1 translation for the AArch64 EL1&0 regime (VMSAv8-64).

Unicorn walks the guest's page tables itself but reports a failed walk only as "data abort"
or "prefetch abort" with no syndrome, and tells us nothing about virtual-to-physical mappings.
The hypervisor needs both: the fault status code for the ESR it injects, and the physical
address of an access that reached unmapped physical space. This module redoes the walk from
the guest's system registers and physical memory.

Scope: 4K/16K/64K granules, 48-bit VAs and PAs (no FEAT_LVA/LPA/LPA2), TBI, EPD, E0PD, IPS,
hierarchical APTable/UXNTable/PXNTable (honouring HPD), WXN, PAN, and alignment faults.
Not modelled: hardware Access flag and dirty state updates (TCR.HA/HD: AF=0 always faults),
the Contiguous hint, stage 2, and the permission overlay / indirection extensions.
The fault priority follows the Arm ARM pseudocode: SCTLR.A alignment, then the walk
(address size, translation, external abort on walk), then the Access flag, then Device-memory
alignment, then permissions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

_MASK64 = (1 << 64) - 1
_OA_MASK = ((1 << 48) - 1) & ~0xFFF  # descriptor/TTBR output address bits [47:12]

# SCTLR_EL1 bits
_SCTLR_M = 1 << 0
_SCTLR_A = 1 << 1
_SCTLR_I = 1 << 12
_SCTLR_WXN = 1 << 19
_SCTLR_EE = 1 << 25

# Output address size (bits) for each TCR_EL1.IPS value; 0b110 (52 bits) and the reserved
# 0b111 are limited by the implemented size below.
_IPS_BITS = (32, 36, 40, 42, 44, 48, 52, 52)

_MIN_TXSZ = 16  # 48-bit VA: FEAT_LVA is not modelled
_MAX_TXSZ = 39  # without FEAT_TTST; larger values are treated as 39, as QEMU does

# Attributes of stage-1-disabled accesses: data is Device-nGnRnE; instruction fetches are
# Normal, Write-Through cacheable when SCTLR_EL1.I is set, else Non-cacheable.
_ATTR_DEVICE_NGNRNE = 0x00
_ATTR_NORMAL_WT = 0xAA
_ATTR_NORMAL_NC = 0x44


class AccessType(enum.Enum):
    READ = "read"
    WRITE = "write"  # also read-modify-write atomics: write permission implies read
    FETCH = "fetch"


class FaultKind(enum.Enum):
    ADDRESS_SIZE = "address_size"
    TRANSLATION = "translation"
    ACCESS_FLAG = "access_flag"
    PERMISSION = "permission"
    ALIGNMENT = "alignment"
    EXTERNAL_ON_WALK = "external_on_walk"  # a descriptor read hit no memory
    EXTERNAL = "external"  # never returned by translate; for callers building one ESR type


# Fault status codes (DFSC/IFSC). Level-encoded kinds add the level to the base.
_FSC_BY_LEVEL = {
    FaultKind.ADDRESS_SIZE: 0b000000,
    FaultKind.TRANSLATION: 0b000100,
    FaultKind.ACCESS_FLAG: 0b001000,
    FaultKind.PERMISSION: 0b001100,
    FaultKind.EXTERNAL_ON_WALK: 0b010100,
}
_FSC_FIXED = {
    FaultKind.EXTERNAL: 0b010000,
    FaultKind.ALIGNMENT: 0b100001,
}


@dataclass(frozen=True)
class TranslationRegs:
    """The EL1 system registers that control stage-1 translation."""

    sctlr_el1: int
    tcr_el1: int
    ttbr0_el1: int
    ttbr1_el1: int
    mair_el1: int


@dataclass(frozen=True)
class Translation:
    """A successful translation.

    `level` is the level of the leaf descriptor (-1 when stage 1 is disabled). `page_size` is
    the size of the block or page the address lies in (4096 with stage 1 disabled), so
    `pa - va % page_size` is where it starts.
    """

    pa: int
    device: bool  # the memory type is Device-* (MAIR attribute high nibble 0)
    attr: int  # MAIR_EL1 attribute byte
    level: int
    page_size: int


@dataclass(frozen=True)
class TranslationFault:
    kind: FaultKind
    level: int  # lookup level the fault is reported at; 0 for faults before the walk

    def fsc(self) -> int:
        """The fault status code for ESR_ELx.ISS DFSC/IFSC."""
        fixed = _FSC_FIXED.get(self.kind)
        if fixed is not None:
            return fixed
        return _FSC_BY_LEVEL[self.kind] | self.level


@dataclass(frozen=True)
class _Granule:
    shift: int  # log2 of the granule size
    block_levels: frozenset[int]  # levels where a block descriptor is allowed (48-bit OA)


_G4K = _Granule(12, frozenset({1, 2}))
_G16K = _Granule(14, frozenset({2}))
_G64K = _Granule(16, frozenset({2}))

# TG0 and TG1 encode the granule differently; reserved encodings act as 4K (as in QEMU).
_TG0 = {0b00: _G4K, 0b01: _G64K, 0b10: _G16K, 0b11: _G4K}
_TG1 = {0b00: _G4K, 0b01: _G16K, 0b10: _G4K, 0b11: _G64K}


def _field(value: int, hi: int, lo: int) -> int:
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def _bit(value: int, n: int) -> bool:
    return bool((value >> n) & 1)


@dataclass(frozen=True)
class _Range:
    """Per-VA-range parameters selected by VA bit 55."""

    high: bool
    txsz: int
    granule: _Granule
    epd: bool
    tbi: bool
    tbid: bool
    hpd: bool
    e0pd: bool
    ttbr: int


def _select_range(va: int, regs: TranslationRegs) -> _Range:
    tcr = regs.tcr_el1
    if _bit(va, 55):
        return _Range(
            high=True,
            txsz=_field(tcr, 21, 16),
            granule=_TG1[_field(tcr, 31, 30)],
            epd=_bit(tcr, 23),
            tbi=_bit(tcr, 38),
            tbid=_bit(tcr, 52),
            hpd=_bit(tcr, 42),
            e0pd=_bit(tcr, 56),
            ttbr=regs.ttbr1_el1,
        )
    return _Range(
        high=False,
        txsz=_field(tcr, 5, 0),
        granule=_TG0[_field(tcr, 15, 14)],
        epd=_bit(tcr, 7),
        tbi=_bit(tcr, 37),
        tbid=_bit(tcr, 51),
        hpd=_bit(tcr, 41),
        e0pd=_bit(tcr, 55),
        ttbr=regs.ttbr0_el1,
    )


def _misaligned(va: int, access_size: int | None) -> bool:
    return access_size is not None and access_size > 1 and va % access_size != 0


def translate(
    va: int,
    regs: TranslationRegs,
    access: AccessType,
    el: int,
    read_phys64: Callable[[int], int | None],
    *,
    pan: bool = False,
    access_size: int | None = None,
    pa_bits: int = 48,
) -> Translation | TranslationFault:
    """Translate `va` for an access from EL0 or EL1 (an unprivileged LDTR/STTR at EL1 passes 0).

    `read_phys64(pa)` returns the 64-bit word at an 8-byte aligned physical address as stored
    in memory (little-endian bytes), or None when nothing is there. `pan` is PSTATE.PAN.
    `access_size`, when given, enables alignment checking (SCTLR_EL1.A, and the rule that
    Device memory faults on any unaligned data access). `pa_bits` is the implemented physical
    address size, which caps TCR_EL1.IPS.
    """
    if el not in (0, 1):
        raise ValueError(f"the EL1&0 regime covers EL0 and EL1, not EL{el}")
    if not 32 <= pa_bits <= 48:
        raise ValueError("pa_bits must be between 32 and 48")
    va &= _MASK64
    sctlr = regs.sctlr_el1
    fetch = access is AccessType.FETCH
    rng = _select_range(va, regs)
    # TBI is decided per range even with stage 1 off; TBID exempts instruction addresses.
    top_byte_ignored = rng.tbi and not (fetch and rng.tbid)

    if not fetch and sctlr & _SCTLR_A and _misaligned(va, access_size):
        return TranslationFault(FaultKind.ALIGNMENT, 0)

    if not sctlr & _SCTLR_M:
        return _stage1_off(va, sctlr, fetch, top_byte_ignored, access_size, pa_bits)

    txsz = min(max(rng.txsz, _MIN_TXSZ), _MAX_TXSZ)
    in_bits = 64 - txsz
    top = 56 if top_byte_ignored else 64
    upper = _field(va, top - 1, in_bits)
    if upper != ((1 << (top - in_bits)) - 1 if rng.high else 0):
        return TranslationFault(FaultKind.TRANSLATION, 0)
    if rng.epd or (el == 0 and rng.e0pd):
        return TranslationFault(FaultKind.TRANSLATION, 0)

    out_bits = min(_IPS_BITS[_field(regs.tcr_el1, 34, 32)], pa_bits)
    granule = rng.granule
    stride = granule.shift - 3
    start = 4 - -(-(in_bits - granule.shift) // stride)

    start_lsb = granule.shift + (3 - start) * stride
    table_align = 3 + in_bits - start_lsb  # log2 of the start table's size
    ttbr_base = rng.ttbr & ((1 << 48) - 1) & ~1
    if ttbr_base >> out_bits:
        return TranslationFault(FaultKind.ADDRESS_SIZE, 0)
    table = ttbr_base & ~((1 << table_align) - 1)

    big_endian = bool(sctlr & _SCTLR_EE)
    ap_table = 0
    uxn_table = False
    pxn_table = False
    level = start
    while True:
        lsb = granule.shift + (3 - level) * stride
        width = in_bits - lsb if level == start else stride
        desc = read_phys64(table + 8 * _field(va, lsb + width - 1, lsb))
        if desc is None:
            return TranslationFault(FaultKind.EXTERNAL_ON_WALK, level)
        if big_endian:
            desc = int.from_bytes(desc.to_bytes(8, "little"), "big")
        if not desc & 1 or (level == 3 and not desc & 2):
            return TranslationFault(FaultKind.TRANSLATION, level)
        # With the 64K granule, bits [15:12] hold OA[51:48] under FEAT_LPA: nonzero is out of
        # range for a 48-bit output address.
        if granule is _G64K and _field(desc, 15, 12):
            return TranslationFault(FaultKind.ADDRESS_SIZE, level)
        if level == 3 or not desc & 2:
            break
        next_table = desc & _OA_MASK & ~((1 << granule.shift) - 1)
        if next_table >> out_bits:
            return TranslationFault(FaultKind.ADDRESS_SIZE, level)
        if not rng.hpd:
            ap_table |= _field(desc, 62, 61)
            uxn_table |= _bit(desc, 60)
            pxn_table |= _bit(desc, 59)
        table = next_table
        level += 1

    if level < 3 and level not in granule.block_levels:
        return TranslationFault(FaultKind.TRANSLATION, level)
    leaf_shift = lsb
    oa = desc & _OA_MASK & ~((1 << leaf_shift) - 1)
    if oa >> out_bits:
        return TranslationFault(FaultKind.ADDRESS_SIZE, level)
    if not _bit(desc, 10):
        return TranslationFault(FaultKind.ACCESS_FLAG, level)

    attr = (regs.mair_el1 >> (8 * _field(desc, 4, 2))) & 0xFF
    device = attr & 0xF0 == 0
    if device and not fetch and _misaligned(va, access_size):
        return TranslationFault(FaultKind.ALIGNMENT, level)

    read_only = _bit(desc, 7) or bool(ap_table & 0b10)
    el0_access = _bit(desc, 6) and not ap_table & 0b01
    uxn = _bit(desc, 54) or uxn_table
    pxn = _bit(desc, 53) or pxn_table
    if not _permitted(access, el, read_only, el0_access, uxn, pxn, bool(sctlr & _SCTLR_WXN), pan):
        return TranslationFault(FaultKind.PERMISSION, level)

    pa = oa | (va & ((1 << leaf_shift) - 1))
    return Translation(pa=pa, device=device, attr=attr, level=level, page_size=1 << leaf_shift)


def _permitted(
    access: AccessType,
    el: int,
    read_only: bool,
    el0_access: bool,
    uxn: bool,
    pxn: bool,
    wxn: bool,
    pan: bool,
) -> bool:
    user_w = el0_access and not read_only
    priv_w = not read_only
    if access is AccessType.FETCH:
        if el == 0:
            return not (uxn or (wxn and user_w))
        # Memory writable from EL0 is never executable at EL1.
        return not (pxn or (wxn and priv_w) or user_w)
    if el == 1 and pan and el0_access:
        # PAN: EL1 data accesses to EL0-accessible memory fault (fetches are unaffected).
        return False
    if access is AccessType.WRITE:
        return user_w if el == 0 else priv_w
    return el0_access if el == 0 else True


def _stage1_off(
    va: int,
    sctlr: int,
    fetch: bool,
    top_byte_ignored: bool,
    access_size: int | None,
    pa_bits: int,
) -> Translation | TranslationFault:
    top = 56 if top_byte_ignored else 64
    if _field(va, top - 1, pa_bits):
        return TranslationFault(FaultKind.ADDRESS_SIZE, 0)
    pa = va & ((1 << pa_bits) - 1)
    if fetch:
        attr = _ATTR_NORMAL_WT if sctlr & _SCTLR_I else _ATTR_NORMAL_NC
        return Translation(pa=pa, device=False, attr=attr, level=-1, page_size=4096)
    if _misaligned(va, access_size):
        return TranslationFault(FaultKind.ALIGNMENT, 0)
    return Translation(pa=pa, device=True, attr=_ATTR_DEVICE_NGNRNE, level=-1, page_size=4096)
