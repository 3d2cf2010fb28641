"""Tests for mmioguard.arch.pagetable.

Hand-built tables (indices worked out by hand from the VA bit ranges) pin down each granule and
starting level; a small table builder drives the fault matrix; a random cross-check compares
the walker with Unicorn's own MMU doing real loads and stores.
"""

from __future__ import annotations

import contextlib
import random
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest

from mmioguard.arch.pagetable import (
    AccessType,
    FaultKind,
    Translation,
    TranslationFault,
    TranslationRegs,
    translate,
)

R, W, X = AccessType.READ, AccessType.WRITE, AccessType.FETCH

# Descriptor bits
VALID = 0b01
TABLE = 0b11
PAGE = 0b11
BLOCK = 0b01
AF = 1 << 10
AP_EL0 = 1 << 6  # AP[1]
AP_RO = 1 << 7  # AP[2]
PXN = 1 << 53
UXN = 1 << 54
PXN_TABLE = 1 << 59
UXN_TABLE = 1 << 60
AP_TABLE_NO_EL0 = 1 << 61
AP_TABLE_RO = 1 << 62


def attr(index: int) -> int:
    return index << 2


# MAIR: index 0 Normal WB, 1 Device-nGnRE, 2 Normal NC, 3 Device-nGnRnE
MAIR = 0x00_44_04_FF
SCTLR_M = 1
SCTLR_A = 1 << 1
SCTLR_I = 1 << 12
SCTLR_WXN = 1 << 19
SCTLR_EE = 1 << 25

TG0 = {4096: 0b00 << 14, 16384: 0b10 << 14, 65536: 0b01 << 14}
TG1 = {4096: 0b10 << 30, 16384: 0b01 << 30, 65536: 0b11 << 30}
IPS_48 = 0b101 << 32
EPD0, EPD1 = 1 << 7, 1 << 23
TBI0, TBI1 = 1 << 37, 1 << 38
HPD0 = 1 << 41
TBID0 = 1 << 51
E0PD0 = 1 << 55

RAM_END = 1 << 34  # physical reads beyond this find no memory


class Phys:
    """Sparse physical memory of 64-bit words; nothing above RAM_END."""

    def __init__(self) -> None:
        self.words: dict[int, int] = {}
        self.reads: list[int] = []

    def __setitem__(self, pa: int, value: int) -> None:
        assert pa % 8 == 0
        self.words[pa] = value

    def read64(self, pa: int) -> int | None:
        assert pa % 8 == 0
        self.reads.append(pa)
        if pa >= RAM_END:
            return None
        return self.words.get(pa, 0)


def regs(
    tcr: int, ttbr0: int = 0, ttbr1: int = 0, sctlr: int = SCTLR_M, mair: int = MAIR
) -> TranslationRegs:
    return TranslationRegs(
        sctlr_el1=sctlr, tcr_el1=tcr, ttbr0_el1=ttbr0, ttbr1_el1=ttbr1, mair_el1=mair
    )


def ok(result: Translation | TranslationFault) -> Translation:
    assert isinstance(result, Translation), result
    return result


def fault(result: Translation | TranslationFault) -> TranslationFault:
    assert isinstance(result, TranslationFault), result
    return result


# ---------------------------------------------------------------------------------------------
# Hand-built walks


def test_4k_four_levels() -> None:
    mem = Phys()
    # T0SZ=16: L0 = VA[47:39], L1 = [38:30], L2 = [29:21], L3 = [20:12]
    va = (1 << 39) | (2 << 30) | (3 << 21) | (4 << 12) | 0x123
    mem[0x10000 + 8 * 1] = 0x11000 | TABLE
    mem[0x11000 + 8 * 2] = 0x12000 | TABLE
    mem[0x12000 + 8 * 3] = 0x13000 | TABLE
    mem[0x13000 + 8 * 4] = 0x4567_8000 | AF | attr(1) | PAGE
    t = ok(translate(va, regs(16 | IPS_48, ttbr0=0x10000), R, 1, mem.read64))
    assert t == Translation(pa=0x4567_8123, device=True, attr=0x04, level=3, page_size=4096)
    assert mem.reads == [0x10008, 0x11010, 0x12018, 0x13020]


def test_16k_four_levels() -> None:
    mem = Phys()
    # T0SZ=16: L0 = VA[47] (a 2-entry table), L1 = [46:36], L2 = [35:25], L3 = [24:14]
    va = (1 << 47) | (5 << 36) | (6 << 25) | (7 << 14) | 0x1234
    mem[0x20000 + 8 * 1] = 0x24000 | TABLE
    mem[0x24000 + 8 * 5] = 0x28000 | TABLE
    mem[0x28000 + 8 * 6] = 0x2C000 | TABLE
    mem[0x2C000 + 8 * 7] = 0x1_2345_C000 | AF | attr(0) | PAGE
    t = ok(translate(va, regs(16 | TG0[16384] | IPS_48, ttbr0=0x20000), R, 1, mem.read64))
    assert (t.pa, t.device, t.attr, t.level, t.page_size) == (
        0x1_2345_D234,
        False,
        0xFF,
        3,
        16384,
    )


def test_64k_three_levels() -> None:
    mem = Phys()
    # T0SZ=16: starts at L1 = VA[47:42], L2 = [41:29], L3 = [28:16]
    va = (3 << 42) | (9 << 29) | (10 << 16) | 0xABCD
    mem[0x40000 + 8 * 3] = 0x50000 | TABLE
    mem[0x50000 + 8 * 9] = 0x60000 | TABLE
    mem[0x60000 + 8 * 10] = 0x7_0005_0000 | AF | attr(2) | PAGE
    t = ok(translate(va, regs(16 | TG0[65536] | IPS_48, ttbr0=0x40000), W, 1, mem.read64))
    assert (t.pa, t.attr, t.level, t.page_size) == (0x7_0005_ABCD, 0x44, 3, 65536)


@pytest.mark.parametrize(
    ("granule", "txsz", "lsb", "width", "start"),
    [
        (4096, 25, 30, 9, 1),  # 39-bit VA: L1 = VA[38:30]
        (4096, 34, 21, 9, 2),  # 30-bit VA: L2 = VA[29:21]
        (4096, 20, 39, 5, 0),  # 44-bit VA: a 32-entry L0 = VA[43:39]
        (16384, 17, 36, 11, 1),  # 47-bit VA: L1 = VA[46:36]
        (16384, 28, 25, 11, 2),  # 36-bit VA: L2 = VA[35:25]
        (65536, 22, 29, 13, 2),  # 42-bit VA: L2 = VA[41:29]
        (65536, 39, 16, 9, 3),  # 25-bit VA: a 512-entry L3 = VA[24:16]
        (4096, 10, 39, 9, 0),  # T0SZ below 16 acts as 16
        (4096, 45, 21, 4, 2),  # T0SZ above 39 acts as 39: 25-bit VA, L2 = VA[24:21]
    ],
)
def test_starting_level(granule: int, txsz: int, lsb: int, width: int, start: int) -> None:
    mem = Phys()
    index = (1 << width) - 2
    va = (index << lsb) | 0x18
    leaf = 0x3_0000_0000
    if start == 3:
        mem[0x100000 + 8 * index] = leaf | AF | PAGE
    else:
        # Stop the walk at the first level with an invalid entry: enough to see the index used.
        mem[0x100000 + 8 * index] = 0
    result = translate(va, regs(txsz | TG0[granule] | IPS_48, ttbr0=0x100000), R, 1, mem.read64)
    assert mem.reads[0] == 0x100000 + 8 * index
    if start == 3:
        assert ok(result).pa == leaf | 0x18
    else:
        assert fault(result) == TranslationFault(FaultKind.TRANSLATION, start)


@pytest.mark.parametrize(
    ("granule", "level", "size"),
    [(4096, 1, 1 << 30), (4096, 2, 1 << 21), (16384, 2, 1 << 25), (65536, 2, 1 << 29)],
)
def test_blocks(granule: int, level: int, size: int) -> None:
    b = Builder(granule, txsz=16)
    va = 0x0000_5A5A_0000_0000 + 3 * size + 0x1234
    b.map(va, 0x2_0000_0000, level, AF | attr(3))
    t = ok(b.translate(va, R))
    assert (t.pa, t.level, t.page_size, t.device, t.attr) == (
        0x2_0000_1234,
        level,
        size,
        True,
        0x00,
    )


@pytest.mark.parametrize(("granule", "level"), [(4096, 0), (16384, 1), (65536, 1)])
def test_blocks_where_not_allowed(granule: int, level: int) -> None:
    b = Builder(granule, txsz=16)
    va = 0x0000_7000_0000_0000
    b.map(va, 0, level, AF)
    assert fault(b.translate(va, R)) == TranslationFault(FaultKind.TRANSLATION, level)


def test_level3_block_encoding_is_reserved() -> None:
    b = Builder(4096, txsz=16)
    b.map(0x4000, 0x8000, 3, AF, leaf_type=BLOCK)
    assert fault(b.translate(0x4000, R)) == TranslationFault(FaultKind.TRANSLATION, 3)


# ---------------------------------------------------------------------------------------------
# A table builder for the rest


GRANULE_SHIFT = {4096: 12, 16384: 14, 65536: 16}


@dataclass
class Builder:
    granule: int
    txsz: int = 16
    high: bool = False
    tcr_extra: int = 0
    sctlr: int = SCTLR_M
    mem: Phys = field(default_factory=Phys)
    next_free: int = 0x100_0000

    def __post_init__(self) -> None:
        self.root = self.alloc()

    def alloc(self) -> int:
        addr = -(-self.next_free // self.granule) * self.granule
        self.next_free = addr + self.granule
        return addr

    @property
    def shift(self) -> int:
        return GRANULE_SHIFT[self.granule]

    def start_level(self) -> int:
        ia = 64 - min(max(self.txsz, 16), 39)
        stride = self.shift - 3
        return 4 - -(-(ia - self.shift) // stride)

    def index(self, va: int, level: int) -> int:
        stride = self.shift - 3
        lsb = self.shift + (3 - level) * stride
        ia = 64 - min(max(self.txsz, 16), 39)
        width = ia - lsb if level == self.start_level() else stride
        return (va >> lsb) & ((1 << width) - 1)

    def map(
        self,
        va: int,
        oa: int,
        level: int,
        bits: int,
        table_bits: dict[int, int] | None = None,
        leaf_type: int | None = None,
    ) -> None:
        """Map va at `level` (3 = page, else block); `table_bits` adds bits to the table
        descriptor read at a given level. ValueError if the path crosses a non-table entry."""
        table = self.root
        for lvl in range(self.start_level(), level):
            slot = table + 8 * self.index(va, lvl)
            desc = self.mem.words.get(slot)
            extra = (table_bits or {}).get(lvl, 0)
            if desc is not None and desc & 3 != TABLE:
                raise ValueError("path blocked by a leaf or an invalid entry")
            if desc is None:
                nxt = self.alloc()
                self.mem[slot] = nxt | TABLE | extra
            else:
                nxt = desc & ((1 << 48) - 1) & ~(self.granule - 1)
                self.mem[slot] = desc | extra
            table = nxt
        kind = leaf_type if leaf_type is not None else (PAGE if level == 3 else BLOCK)
        self.mem[table + 8 * self.index(va, level)] = oa | bits | kind

    def slot(self, va: int, level: int) -> int:
        """Address of the descriptor for va at `level` (the path must exist)."""
        table = self.root
        for lvl in range(self.start_level(), level):
            desc = self.mem.words[table + 8 * self.index(va, lvl)]
            table = desc & ((1 << 48) - 1) & ~(self.granule - 1)
        return table + 8 * self.index(va, level)

    def regs(self) -> TranslationRegs:
        if self.high:
            tcr = (self.txsz << 16) | TG1[self.granule] | EPD0
            return regs(tcr | IPS_48 | self.tcr_extra, ttbr1=self.root, sctlr=self.sctlr)
        tcr = self.txsz | TG0[self.granule] | EPD1
        return regs(tcr | IPS_48 | self.tcr_extra, ttbr0=self.root, sctlr=self.sctlr)

    def translate(
        self,
        va: int,
        access: AccessType,
        el: int = 1,
        *,
        pan: bool = False,
        access_size: int | None = None,
    ) -> Translation | TranslationFault:
        return translate(
            va, self.regs(), access, el, self.mem.read64, pan=pan, access_size=access_size
        )


# ---------------------------------------------------------------------------------------------
# TTBR1 and VA range checks


@pytest.mark.parametrize("granule", [4096, 16384, 65536])
def test_ttbr1_high_addresses(granule: int) -> None:
    b = Builder(granule, txsz=16, high=True)
    va = 0xFFFF_8000_1234_0000 + 0x58
    b.map(va & ~(granule - 1), 0x9_0000_0000, 3, AF)
    t = ok(b.translate(va, R))
    assert t.pa == 0x9_0000_0000 + (va & (granule - 1)) and t.page_size == granule
    # The same VA through TTBR0 is out of range (bits 63:48 are not zero).
    assert fault(translate(va, regs(16), R, 1, b.mem.read64)) == TranslationFault(
        FaultKind.TRANSLATION, 0
    )


def test_tg1_encoding_differs_from_tg0() -> None:
    b = Builder(16384, txsz=16, high=True)
    va = 0xFFFF_C000_0000_4000
    b.map(va, 0x4000, 3, AF)
    assert ok(b.translate(va, R)).pa == 0x4000
    # TG1 = 0b10 means 4K; decoding it with TG0's table (16K) would walk different indices.
    assert TG1[16384] >> 30 == 0b01 and TG0[16384] >> 14 == 0b10


def test_va_range_checks() -> None:
    b = Builder(4096, txsz=25)  # 39-bit TTBR0 range
    b.map(0x7F_FFFF_F000, 0x1000, 3, AF)
    assert ok(b.translate(0x7F_FFFF_F000, R)).pa == 0x1000
    for bad in (1 << 39, 1 << 47, 1 << 56):
        assert fault(b.translate(0x7F_FFFF_F000 | bad, R)) == TranslationFault(
            FaultKind.TRANSLATION, 0
        )
    hi = Builder(4096, txsz=25, high=True)
    hi.map(0xFFFF_FF80_0000_0000, 0x2000, 3, AF)
    assert ok(hi.translate(0xFFFF_FF80_0000_0000, R)).pa == 0x2000
    assert fault(hi.translate(0xFFFF_FF00_0000_0000, R)).kind is FaultKind.TRANSLATION


def test_top_byte_ignore() -> None:
    b = Builder(4096, txsz=16, tcr_extra=TBI0)
    b.map(0x1000, 0x5000, 3, AF)
    assert ok(b.translate(0xAB00_0000_0000_1008, R)).pa == 0x5008
    assert ok(b.translate(0xAB00_0000_0000_1008, X)).pa == 0x5008
    b.tcr_extra = TBI0 | TBID0  # TBID: instruction addresses keep their top byte
    assert ok(b.translate(0xAB00_0000_0000_1008, R)).pa == 0x5008
    assert fault(b.translate(0xAB00_0000_0000_1008, X)).kind is FaultKind.TRANSLATION
    b.tcr_extra = 0
    assert fault(b.translate(0xAB00_0000_0000_1008, R)).kind is FaultKind.TRANSLATION


def test_epd_and_e0pd() -> None:
    b = Builder(4096, txsz=16)
    b.map(0x1000, 0x5000, 3, AF | AP_EL0)
    assert ok(b.translate(0x1000, R, el=0)).pa == 0x5000
    b.tcr_extra = EPD0
    assert fault(b.translate(0x1000, R)) == TranslationFault(FaultKind.TRANSLATION, 0)
    b.tcr_extra = E0PD0
    assert fault(b.translate(0x1000, R, el=0)) == TranslationFault(FaultKind.TRANSLATION, 0)
    assert ok(b.translate(0x1000, R, el=1)).pa == 0x5000
    assert b.mem.reads.count(b.slot(0x1000, 0)) == 2  # faults before the walk read nothing


# ---------------------------------------------------------------------------------------------
# Faults and their status codes


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_translation_fault_levels(level: int) -> None:
    b = Builder(4096)
    b.map(0x1234_5000, 0x5000, 3, AF)
    b.mem[b.slot(0x1234_5000, level)] = 0x5000 | 0b10  # bit 0 clear: invalid
    f = fault(b.translate(0x1234_5000, R))
    assert f == TranslationFault(FaultKind.TRANSLATION, level) and f.fsc() == 0b000100 | level


@pytest.mark.parametrize(("level", "fsc"), [(1, 0x09), (2, 0x0A), (3, 0x0B)])
def test_access_flag_fault(level: int, fsc: int) -> None:
    b = Builder(4096)
    b.map(0x4000_0000, 0x4000_0000, level, attr(0))  # AF clear
    f = fault(b.translate(0x4000_0000, R))
    assert (f.kind, f.level, f.fsc()) == (FaultKind.ACCESS_FLAG, level, fsc)


def test_external_abort_on_walk() -> None:
    b = Builder(4096)
    b.map(0x1000, 0x5000, 3, AF)
    b.mem[b.slot(0x1000, 1)] = (RAM_END + 0x1000) | TABLE  # L2 table in no memory
    f = fault(b.translate(0x1000, R))
    assert (f.kind, f.level, f.fsc()) == (FaultKind.EXTERNAL_ON_WALK, 2, 0x16)
    root_missing = regs(16 | IPS_48, ttbr0=RAM_END)
    f = fault(translate(0x1000, root_missing, R, 1, b.mem.read64))
    assert (f.level, f.fsc()) == (0, 0x14)


def test_address_size_faults() -> None:
    ips32 = 0b000 << 32
    b = Builder(4096)
    b.map(0x1000, 0x1_0000_0000, 3, AF)  # a 33-bit output address
    f = fault(translate(0x1000, regs(16 | ips32, ttbr0=b.root), R, 1, b.mem.read64))
    assert (f.kind, f.level, f.fsc()) == (FaultKind.ADDRESS_SIZE, 3, 0x03)
    assert ok(b.translate(0x1000, R)).pa == 0x1_0000_0000  # fine with IPS = 48 bits
    # A next-level table above the limit is reported at the level of the table descriptor.
    mem = Phys()
    mem[0x0] = 0x2000 | TABLE
    mem[0x2000] = 0x1_0000_0000 | TABLE
    f = fault(translate(0x1000, regs(16 | ips32, ttbr0=0), R, 1, mem.read64))
    assert f == TranslationFault(FaultKind.ADDRESS_SIZE, 1)
    # TTBR itself above the limit: level 0, before any read
    mem.reads.clear()
    f = fault(translate(0x1000, regs(16 | ips32, ttbr0=0x1_0000_0000), R, 1, mem.read64))
    assert f == TranslationFault(FaultKind.ADDRESS_SIZE, 0) and mem.reads == []
    # The implemented PA size caps IPS.
    r48 = regs(16 | IPS_48, ttbr0=0x1_0000_0000)
    f = fault(translate(0x1000, r48, R, 1, mem.read64, pa_bits=32))
    assert f == TranslationFault(FaultKind.ADDRESS_SIZE, 0)


def test_64k_descriptor_bits_15_12_are_address_bits() -> None:
    b = Builder(65536)
    b.map(0x10000, 0x20000, 3, AF)
    assert ok(b.translate(0x10000, R)).pa == 0x20000
    slot = b.slot(0x10000, 3)
    b.mem[slot] = b.mem.words[slot] | (1 << 12)  # OA[48] under FEAT_LPA
    assert fault(b.translate(0x10000, R)) == TranslationFault(FaultKind.ADDRESS_SIZE, 3)


def test_fsc_values() -> None:
    expected = {
        (FaultKind.ADDRESS_SIZE, 2): 0x02,
        (FaultKind.TRANSLATION, 0): 0x04,
        (FaultKind.TRANSLATION, 3): 0x07,
        (FaultKind.ACCESS_FLAG, 1): 0x09,
        (FaultKind.PERMISSION, 3): 0x0F,
        (FaultKind.EXTERNAL_ON_WALK, 0): 0x14,
        (FaultKind.EXTERNAL_ON_WALK, 3): 0x17,
        (FaultKind.EXTERNAL, 0): 0x10,
        (FaultKind.ALIGNMENT, 2): 0x21,
    }
    for (kind, level), fsc in expected.items():
        assert TranslationFault(kind, level).fsc() == fsc


# ---------------------------------------------------------------------------------------------
# Permissions


# AP[2:1] -> (EL1 read, EL1 write, EL0 read, EL0 write)
AP_TABLE = {
    0: (True, True, False, False),
    AP_EL0: (True, True, True, True),
    AP_RO: (True, False, False, False),
    AP_RO | AP_EL0: (True, False, True, False),
}


@pytest.mark.parametrize("ap", list(AP_TABLE))
def test_data_permissions(ap: int) -> None:
    b = Builder(4096)
    b.map(0x8000, 0x8000, 3, AF | ap)
    got = tuple(
        isinstance(b.translate(0x8000, access, el=el), Translation)
        for el, access in ((1, R), (1, W), (0, R), (0, W))
    )
    assert got == AP_TABLE[ap]
    f = b.translate(0x8000, W, el=0)
    if isinstance(f, TranslationFault):
        assert (f.kind, f.fsc()) == (FaultKind.PERMISSION, 0x0F)


def test_execute_permissions() -> None:
    b = Builder(4096)
    pages = {
        0x1000: AF,  # EL1 RW, not EL0: EL1 may execute, EL0 may (only UXN stops EL0)
        0x2000: AF | UXN,
        0x3000: AF | PXN,
        0x4000: AF | AP_EL0,  # writable at EL0: never executable at EL1
        0x5000: AF | AP_EL0 | AP_RO,
    }
    for va, bits in pages.items():
        b.map(va, va, 3, bits)

    def can_exec(va: int, el: int) -> bool:
        return isinstance(b.translate(va, X, el=el), Translation)

    assert [can_exec(va, 1) for va in pages] == [True, True, False, False, True]
    assert [can_exec(va, 0) for va in pages] == [True, False, True, True, True]
    b.sctlr = SCTLR_M | SCTLR_WXN  # writable (at the EL doing the fetch) means not executable
    assert [can_exec(va, 1) for va in pages] == [False, False, False, False, True]
    assert [can_exec(va, 0) for va in pages] == [True, False, True, False, True]


def test_pan() -> None:
    b = Builder(4096)
    b.map(0x1000, 0x1000, 3, AF | AP_EL0 | AP_RO)
    b.map(0x2000, 0x2000, 3, AF)
    assert fault(b.translate(0x1000, R, pan=True)).kind is FaultKind.PERMISSION
    assert ok(b.translate(0x1000, R, pan=False))
    assert ok(b.translate(0x1000, X, pan=True))  # PAN does not apply to fetches
    assert ok(b.translate(0x2000, W, pan=True))
    assert ok(b.translate(0x1000, R, el=0, pan=True))


def test_hierarchical_table_attributes() -> None:
    b = Builder(4096)
    b.map(0x1000, 0x1000, 3, AF | AP_EL0, table_bits={1: AP_TABLE_RO})
    assert ok(b.translate(0x1000, R, el=0))
    assert fault(b.translate(0x1000, W, el=1)) == TranslationFault(FaultKind.PERMISSION, 3)
    assert fault(b.translate(0x1000, W, el=0)).kind is FaultKind.PERMISSION

    b2 = Builder(4096)
    b2.map(0x1000, 0x1000, 3, AF | AP_EL0, table_bits={0: AP_TABLE_NO_EL0})
    assert fault(b2.translate(0x1000, R, el=0)).kind is FaultKind.PERMISSION
    assert ok(b2.translate(0x1000, W, el=1))
    assert ok(b2.translate(0x1000, X, el=1))  # no longer EL0-writable: EL1 may execute

    b3 = Builder(4096)
    b3.map(0x1000, 0x1000, 3, AF, table_bits={2: UXN_TABLE | PXN_TABLE})
    assert fault(b3.translate(0x1000, X, el=0)).kind is FaultKind.PERMISSION
    assert fault(b3.translate(0x1000, X, el=1)).kind is FaultKind.PERMISSION
    b3.tcr_extra = HPD0  # hierarchical permissions disabled
    assert ok(b3.translate(0x1000, X, el=1))


# ---------------------------------------------------------------------------------------------
# Alignment, MMU off, endianness, arguments


def test_alignment() -> None:
    b = Builder(4096)
    b.map(0x1000, 0x1000, 3, AF | attr(0))  # Normal
    b.map(0x2000, 0x2000, 3, AF | attr(1))  # Device
    assert ok(b.translate(0x1003, R, access_size=4))
    assert ok(b.translate(0x2004, W, access_size=4))
    f = fault(b.translate(0x2002, R, access_size=4))
    assert (f.kind, f.fsc()) == (FaultKind.ALIGNMENT, 0x21)
    assert ok(b.translate(0x2002, X, access_size=4))  # fetches are never data-aligned-checked
    b.sctlr = SCTLR_M | SCTLR_A
    assert fault(b.translate(0x1003, R, access_size=4)).kind is FaultKind.ALIGNMENT
    # SCTLR.A alignment comes before the walk: an unmapped address still reports alignment
    assert fault(b.translate(0x9_0001, R, access_size=2)).kind is FaultKind.ALIGNMENT
    b.sctlr = SCTLR_M
    b.map(0x3000, 0x3000, 3, attr(1))  # Device and AF clear: the walk's fault wins
    assert fault(b.translate(0x3002, R, access_size=4)).kind is FaultKind.ACCESS_FLAG
    b.map(0x4000, 0x4000, 3, AF | attr(1) | AP_RO)  # Device alignment before permission
    assert fault(b.translate(0x4002, W, access_size=4)).kind is FaultKind.ALIGNMENT


def test_mmu_off() -> None:
    mem = Phys()
    off = regs(16, sctlr=0)
    t = ok(translate(0x0900_0010, off, R, 1, mem.read64))
    assert t == Translation(pa=0x0900_0010, device=True, attr=0x00, level=-1, page_size=4096)
    t = ok(translate(0x4000_0000, off, X, 1, mem.read64))
    assert (t.device, t.attr) == (False, 0x44)
    t = ok(translate(0x4000_0000, regs(16, sctlr=SCTLR_I), X, 0, mem.read64))
    assert (t.device, t.attr) == (False, 0xAA)
    assert fault(translate(1 << 48, off, R, 1, mem.read64)) == TranslationFault(
        FaultKind.ADDRESS_SIZE, 0
    )
    assert fault(translate(0x0900_0002, off, R, 1, mem.read64, access_size=4)).kind is (
        FaultKind.ALIGNMENT
    )
    assert ok(translate(0x5A00_0000_0900_0000, regs(TBI0, sctlr=0), R, 1, mem.read64)).pa == (
        0x0900_0000
    )
    assert ok(translate(0x0000_FFFF_0000_0000, off, R, 1, mem.read64, pa_bits=48))
    assert fault(translate(0x0000_FFFF_0000_0000, off, R, 1, mem.read64, pa_bits=40))
    assert mem.reads == []


def test_big_endian_descriptors() -> None:
    b = Builder(4096, sctlr=SCTLR_M | SCTLR_EE)
    b.map(0x1000, 0x7000, 3, AF)
    for addr, value in list(b.mem.words.items()):
        b.mem[addr] = int.from_bytes(value.to_bytes(8, "little"), "big")
    assert ok(b.translate(0x1000, R)).pa == 0x7000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        translate(0, regs(16), R, 2, Phys().read64)
    with pytest.raises(ValueError):
        translate(0, regs(16), R, 1, Phys().read64, pa_bits=52)


# ---------------------------------------------------------------------------------------------
# Random cross-check against Unicorn's MMU


UC_RAM = 0x0100_0000  # 16 MiB of physical memory in Unicorn
CODE_PA = 0x1000
DATA_PA, DATA_END = 0x10_0000, 0x7F_0000  # where mapped leaves point; stores stay in here
TABLES_PA = 0x80_0000


def _random_scenario(rng: random.Random) -> tuple[Builder, Builder, list[int], TranslationRegs]:
    """Random TTBR0 and TTBR1 tables with random leaves, permissions and holes."""
    lo = Builder(rng.choice([4096, 16384, 65536]), txsz=rng.choice([16, 20, 25, 30, 33, 39, 45]))
    hi = Builder(rng.choice([4096, 16384, 65536]), txsz=rng.choice([16, 21, 25, 36]), high=True)
    hi.mem = lo.mem
    lo.next_free = TABLES_PA
    lo.root = lo.alloc()
    hi.next_free = lo.next_free + 0x40_0000
    hi.root = hi.alloc()
    # The code page: identity, executable at EL1.
    lo.map(CODE_PA & ~(lo.granule - 1), CODE_PA & ~(lo.granule - 1), 3, AF)
    vas = []
    for b in (lo, hi):
        ia = 64 - min(max(b.txsz, 16), 39)
        blocks = {4096: (1, 2), 16384: (2,), 65536: (2,)}[b.granule]
        for _ in range(6):
            level = rng.choice([3, 3, *blocks])
            size = 1 << (b.shift + (3 - level) * (b.shift - 3))
            if level < b.start_level():
                continue
            va = rng.randrange(0, 1 << ia) & ~(size - 1)
            if b.high:
                va |= ((1 << 64) - 1) ^ ((1 << ia) - 1)
            if not b.high and va < (1 << 24):
                continue  # keep clear of the code page's path
            pa_in = rng.randrange(DATA_PA, DATA_END) & ~7
            offset = pa_in % size
            oa = pa_in - offset
            bits = AF if rng.random() < 0.85 else 0
            bits |= rng.choice([0, AP_EL0, AP_RO, AP_RO | AP_EL0]) | attr(rng.randrange(4))
            table_bits = {}
            if rng.random() < 0.2:
                table_bits[b.start_level()] = rng.choice([AP_TABLE_RO, AP_TABLE_NO_EL0])
            try:
                b.map(va, oa, level, bits, table_bits)
            except ValueError:
                continue
            if rng.random() < 0.1:
                # KeyError: a later mapping replaced part of this path
                with contextlib.suppress(KeyError):
                    b.mem[b.slot(va, rng.randrange(b.start_level(), level + 1))] = 0
            vas.append(va + offset)
            vas.append(va + offset + rng.randrange(0, 8) * 8)
        vas.append(rng.getrandbits(64) & ~7)
    tcr = lo.txsz | TG0[lo.granule] | (hi.txsz << 16) | TG1[hi.granule] | IPS_48
    if rng.random() < 0.3:
        tcr |= TBI0 | TBI1
        vas += [va ^ (rng.getrandbits(8) << 56) for va in vas[:4]]
    tr = TranslationRegs(SCTLR_M, tcr, lo.root, hi.root, MAIR)
    return lo, hi, vas, tr


def test_random_walks_match_unicorn() -> None:
    unicorn = pytest.importorskip("unicorn")
    from unicorn import arm64_const as a

    # ldr x2, [x1] ; str x3, [x1]
    code = struct.pack("<II", 0xF9400022, 0xF9000023)
    rng = random.Random(77)
    compared = {"ok": 0, "fault": 0}
    for _ in range(40):
        lo, _, vas, tr = _random_scenario(rng)
        image = bytearray(UC_RAM)
        image[DATA_PA:TABLES_PA] = rng.randbytes(TABLES_PA - DATA_PA)
        for pa, value in lo.mem.words.items():
            image[pa : pa + 8] = value.to_bytes(8, "little")
        image[CODE_PA : CODE_PA + len(code)] = code

        def read64(pa: int, image: bytearray = image) -> int | None:
            if pa + 8 > UC_RAM:
                return None
            return int.from_bytes(image[pa : pa + 8], "little")

        uc = unicorn.Uc(unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM)
        uc.ctl_set_cpu_model(a.UC_CPU_ARM64_MAX)
        uc.mem_map(0, UC_RAM)
        uc.mem_write(0, bytes(image))
        # EL1 runs AArch64 with the MMU on only once SCR_EL3.RW is set (HCE too, as the VMM).
        uc.reg_write(a.UC_ARM64_REG_CP_REG, (1, 1, 3, 6, 0, (1 << 8) | (1 << 10)))
        uc.reg_write(a.UC_ARM64_REG_MAIR_EL1, tr.mair_el1)
        uc.reg_write(a.UC_ARM64_REG_TTBR0_EL1, tr.ttbr0_el1)
        uc.reg_write(a.UC_ARM64_REG_TTBR1_EL1, tr.ttbr1_el1)
        uc.reg_write(a.UC_ARM64_REG_CP_REG, (2, 0, 3, 0, 2, tr.tcr_el1))
        sctlr = uc.reg_read(a.UC_ARM64_REG_CP_REG, (1, 0, 3, 0, 0))
        uc.reg_write(a.UC_ARM64_REG_CP_REG, (1, 0, 3, 0, 0, sctlr | SCTLR_M))
        live = TranslationRegs(sctlr | SCTLR_M, tr.tcr_el1, tr.ttbr0_el1, tr.ttbr1_el1, MAIR)
        exceptions: list[int] = []

        def on_intr(uc: Any, number: int, _: object, exceptions: list[int] = exceptions) -> None:
            exceptions.append(number)
            uc.emu_stop()

        uc.hook_add(unicorn.UC_HOOK_INTR, on_intr)
        if not isinstance(translate(CODE_PA, live, X, 1, read64), Translation):
            continue  # a random hole or block took out the code page's own mapping

        for va in vas:
            for access, pc in ((R, CODE_PA), (W, CODE_PA + 4)):
                result = translate(va, live, access, 1, read64)
                if isinstance(result, Translation) and not DATA_PA <= result.pa < DATA_END:
                    continue  # a large block reaching code, tables or past Unicorn's RAM
                marker = rng.getrandbits(64)
                exceptions.clear()
                uc.reg_write(a.UC_ARM64_REG_X1, va)
                uc.reg_write(a.UC_ARM64_REG_X2, 0)
                uc.reg_write(a.UC_ARM64_REG_X3, marker)
                uc.emu_start(pc, pc + 4, count=1)
                trail: list[str] = []

                def traced(pa: int, trail: list[str] = trail) -> int | None:
                    value = read64(pa)
                    trail.append(f"{pa:#x}:{value:#x}" if value is not None else f"{pa:#x}:-")
                    return value

                translate(va, live, access, 1, traced)
                where = f"va={va:#x} {access} tcr={tr.tcr_el1:#x} -> {result} via {trail}"
                if isinstance(result, TranslationFault):
                    assert exceptions == [4], where  # a data abort
                    compared["fault"] += 1
                    continue
                assert exceptions == [], where
                got = int.from_bytes(uc.mem_read(result.pa, 8), "little")
                if access is R:
                    assert uc.reg_read(a.UC_ARM64_REG_X2) == got, where
                else:
                    assert got == marker, where
                    image[result.pa : result.pa + 8] = marker.to_bytes(8, "little")
                compared["ok"] += 1
    assert compared["ok"] > 100 and compared["fault"] > 100, compared
