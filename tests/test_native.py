"""The native fast path (mmioguard.native): build, tables, and real Unicorn callbacks.

Every test runs against the plain build and the UBSan build (undefined behaviour traps).
The guest code is a few hand-encoded AArch64 instructions (checked against capstone below).
"""

from __future__ import annotations

import ctypes
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from unicorn import (
    UC_ARCH_ARM64,
    UC_HOOK_INTR,
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_READ_UNMAPPED,
    UC_HOOK_MEM_WRITE,
    UC_HOOK_MEM_WRITE_UNMAPPED,
    UC_MODE_ARM,
    Uc,
    UcError,
)
from unicorn import arm64_const as A
from unicorn.unicorn_py3.unicorn import MMIO_READ_CFUNC, MMIO_WRITE_CFUNC, uclib

from mmioguard.arch import esr as E
from mmioguard.arch.exception import VectorKind, current_el, enter
from mmioguard.cpu import pcrestore
from mmioguard.native import (
    DECIDE_ALLOW,
    DECIDE_ESCAPE,
    DECIDE_REFUSE,
    TAKE_DROP,
    TAKE_ENTER,
    TAKE_RESTORE,
    AddressForm,
    NativeError,
    NativeGuard,
    NativeLib,
    NativePl011,
    NativeRegion,
    NativeStats,
    NativeVcpu,
    UcLayout,
    load_native,
)
from mmioguard.native import build as native_build

CODE = 0x4000_0000
UART = 0x0900_0000
DEVICE_SPACE = (0x0800_0000, 0x4000_0000)
FID_VERSION = 0x8000_0000
FID_UID = 0x8600_FF01
FID_FEATURES = 0x8600_0000
FID_INFO = 0xC600_0002
FID_ENROLL = 0xC600_0003
KVM_UID = (0xB66F_B428, 0xE911_C52E, 0x564B_CAA9, 0x743A_004D)

# -- a few AArch64 encodings ---------------------------------------------------------------


def movz(rd: int, imm: int, shift: int = 0) -> int:
    return 0xD280_0000 | ((shift // 16) << 21) | (imm << 5) | rd


def ldr_w(rt: int, rn: int, off: int) -> int:
    return 0xB940_0000 | ((off // 4) << 10) | (rn << 5) | rt


def strb(rt: int, rn: int, off: int) -> int:
    return 0x3900_0000 | (off << 10) | (rn << 5) | rt


def add_reg(rd: int, rn: int, rm: int) -> int:
    return 0x8B00_0000 | (rm << 16) | (rn << 5) | rd


def add_imm(rd: int, rn: int, imm: int) -> int:
    return 0x9100_0000 | (imm << 10) | (rn << 5) | rd


def subs_imm(rd: int, rn: int, imm: int) -> int:
    return 0xF100_0000 | (imm << 10) | (rn << 5) | rd


def b_ne(frm: int, to: int) -> int:
    return 0x5400_0001 | ((((to - frm) // 4) & 0x7FFFF) << 5)


HVC = 0xD400_0002
SVC = 0xD400_0001
NOP = 0xD503_201F


def str_w(rt: int, rn: int, off: int) -> int:
    return 0xB900_0000 | ((off // 4) << 10) | (rn << 5) | rt


def ldr_w_lsl2(rt: int, rn: int, rm: int) -> int:
    """ldr wt, [xn, xm, lsl #2]"""
    return 0xB860_7800 | (rm << 16) | (rn << 5) | rt


def assemble(words: list[int]) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)


# The UART loop: x5 += UARTFR, UARTDR = x3++, x7 += UARTCR, x2 times; ends at LOOP_END.
#   00 movz x1, #0x0900, lsl #16      14 ldr w4, [x1, #0x18]   28 add x3, x3, #1
#   04 movz x2, #N                    18 add x5, x5, x4        2c subs x2, x2, #1
#   08 movz x3, #0x41                 1c strb w3, [x1]         30 b.ne 0x14
#   0c movz x5, #0                    20 ldr w6, [x1, #0x30]   34 (end)
#   10 movz x7, #0                    24 add x7, x7, x6
PC_FR, PC_DR, PC_CR = CODE + 0x14, CODE + 0x1C, CODE + 0x20
LOOP_END = CODE + 0x34


def uart_loop(n: int) -> bytes:
    return assemble(
        [
            movz(1, UART >> 16, 16),
            movz(2, n),
            movz(3, 0x41),
            movz(5, 0),
            movz(7, 0),
            ldr_w(4, 1, 0x18),
            add_reg(5, 5, 4),
            strb(3, 1, 0),
            ldr_w(6, 1, 0x30),
            add_reg(7, 7, 6),
            add_imm(3, 3, 1),
            subs_imm(2, 2, 1),
            b_ne(CODE + 0x30, CODE + 0x14),
        ]
    )


def test_encodings_match_capstone() -> None:
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    text = [f"{i.mnemonic} {i.op_str}" for i in md.disasm(uart_loop(10), CODE)]
    assert text == [
        "mov x1, #0x9000000",
        "mov x2, #0xa",
        "mov x3, #0x41",
        "mov x5, #0",
        "mov x7, #0",
        "ldr w4, [x1, #0x18]",
        "add x5, x5, x4",
        "strb w3, [x1]",
        "ldr w6, [x1, #0x30]",
        "add x7, x7, x6",
        "add x3, x3, #1",
        "subs x2, x2, #1",
        f"b.ne #{PC_FR:#x}",
    ]
    assert [f"{i.mnemonic} {i.op_str}" for i in md.disasm(assemble([HVC, SVC]), 0)] == [
        "hvc #0",
        "svc #0",
    ]
    words = [str_w(3, 1, 0x30), ldr_w_lsl2(5, 1, 2), NOP]
    assert [f"{i.mnemonic} {i.op_str}".strip() for i in md.disasm(assemble(words), 0)] == [
        "str w3, [x1, #0x30]",
        "ldr w5, [x1, x2, lsl #2]",
        "nop",
    ]


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "ubsan"])
def lib(request: pytest.FixtureRequest) -> NativeLib:
    native, why = load_native(ubsan=bool(request.param))
    if native is None:
        if why.startswith(("unsupported host", "the 'ziglang' package")):
            pytest.skip(why)
        pytest.fail(f"the native library did not build: {why}")
    assert native.ubsan is bool(request.param)
    return native


def close_uc(uc: Uc) -> None:
    """uc_close now (the binding only closes on garbage collection): native objects an engine
    calls into must outlive it."""
    finalizer = getattr(uc, "_Uc__finalizer", None)
    if finalizer is not None:
        finalizer()


def new_uc(lib: NativeLib, code: bytes) -> Uc:
    """An engine as the backend sets it up: code in RAM, HVC as interrupt 11, PC sync hooks."""
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(CODE, 0x10000)
    uc.mem_write(CODE, code)
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (1, 1, 3, 6, 0, (1 << 8) | (1 << 10)))  # SCR_EL3
    for kind in (UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE):
        hook = ctypes.c_size_t()
        err = uclib.uc_hook_add(
            uc._uch,
            ctypes.byref(hook),
            kind,
            lib.mem_nop_ptr,
            None,
            ctypes.c_uint64(DEVICE_SPACE[0]),
            ctypes.c_uint64(DEVICE_SPACE[1] - 1),
        )
        assert err == 0
    return uc


@dataclass
class Escapes:
    """Python's side: records what reached it, answers like a tiny PL011 model."""

    fr: int = 0x80
    cr: int = 0x301
    reads: list[tuple[int, int, int]] = field(default_factory=list)
    writes: list[tuple[int, int, int, int]] = field(default_factory=list)
    forwarded: list[tuple[int, int, int]] = field(default_factory=list)
    intrs: list[int] = field(default_factory=list)

    def read(self, pc: int, offset: int, size: int) -> int:
        self.reads.append((pc, offset, size))
        return self.fr if offset == 0x18 else self.cr

    def write(self, pc: int, offset: int, size: int, value: int) -> None:
        self.writes.append((pc, offset, size, value))

    def forward_read(self, pc: int, offset: int, size: int) -> int:
        self.forwarded.append((pc, offset, size))
        return self.cr

    def intr(self, intno: int) -> None:
        self.intrs.append(intno)


@dataclass
class Machine:
    lib: NativeLib
    uc: Uc
    guard: NativeGuard
    vcpu: NativeVcpu
    pl011: NativePl011
    region: NativeRegion
    esc: Escapes

    def run(self, until: int = LOOP_END) -> None:
        self.vcpu.reset_stats()
        self.uc.emu_start(CODE, until)

    def stats(self) -> NativeStats:
        return self.vcpu.stats()

    def fill_cache(self) -> None:
        self.vcpu.cache_put(PC_FR, True, 4, False, AddressForm(rt=4, rn=1, imm=0x18))
        self.vcpu.cache_put(PC_DR, True, 1, True, AddressForm(rt=3, rn=1))
        self.vcpu.cache_put(PC_CR, True, 4, False, AddressForm(rt=6, rn=1, imm=0x30))

    def close(self) -> None:
        close_uc(self.uc)
        for obj in (self.region, self.pl011, self.vcpu, self.guard):
            obj.close()


@pytest.fixture
def machine(lib: NativeLib) -> Iterator[Machine]:
    yield from _machine(lib, uart_loop(10))


def _machine(lib: NativeLib, code: bytes, ring: int = 4096) -> Iterator[Machine]:
    uc = new_uc(lib, code)
    esc = Escapes()
    guard = NativeGuard(lib, 4096)
    vcpu = NativeVcpu(lib, uc._uch, guard, esc.intr)
    pl011 = NativePl011(lib, ring_capacity=ring, fr=0x90, flush_byte=None)
    region = NativeRegion(lib, vcpu, UART, 0x1000, esc.read, esc.write, pl011=pl011)
    err = uclib.uc_mmio_map(
        uc._uch,
        UART,
        0x1000,
        lib.mmio_read_ptr,
        region.handle,
        lib.mmio_write_ptr,
        region.handle,
    )
    assert err == 0
    hook = ctypes.c_size_t()
    err = uclib.uc_hook_add(
        uc._uch, ctypes.byref(hook), UC_HOOK_INTR, vcpu.intr_ptr, vcpu.handle, 1, 0
    )
    assert err == 0
    err = uclib.uc_hook_add(
        uc._uch,
        ctypes.byref(hook),
        UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED,
        lib.mem_unmapped_ptr,
        vcpu.handle,
        1,
        0,
    )
    assert err == 0
    m = Machine(lib, uc, guard, vcpu, pl011, region, esc)
    yield m
    m.close()


# -- build and load --------------------------------------------------------------------------


def test_load_is_remembered_and_cached(lib: NativeLib) -> None:
    again, how = load_native(ubsan=lib.ubsan)
    assert again is lib
    path, how = native_build.build_native(ubsan=lib.ubsan)
    assert path == lib.path and how.startswith("cached")
    assert lib.mmio_read_ptr and lib.mmio_write_ptr and lib.intr_ptr and lib.mem_nop_ptr


def test_build_failures_are_reasons_not_exceptions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(native_build, "CFLAGS", (*native_build.CFLAGS, "--no-such-flag"))
    path, why = native_build.build_native(cache_dir=tmp_path)
    assert path is None and "failed" in why
    assert not list(tmp_path.glob("mgnative-*"))  # nothing half-built left behind

    monkeypatch.setattr(native_build, "_host", lambda: ("plan9", "mips"))
    path, why = native_build.build_native(cache_dir=tmp_path)
    assert path is None and why.startswith("unsupported host")

    def boom(**_kw: object) -> tuple[Path | None, str]:
        raise RuntimeError("boom")

    import mmioguard.native as native

    monkeypatch.setattr(native, "build_native", boom)
    lib, why = load_native(cache_dir=tmp_path / "other")
    assert lib is None and "boom" in why

    monkeypatch.setenv("MMIOGUARD_NATIVE", "0")
    assert load_native() == (None, "disabled by MMIOGUARD_NATIVE")


# -- guard set ---------------------------------------------------------------------------------


def test_guard_100k_granules_against_a_python_set(lib: NativeLib) -> None:
    rng = random.Random(7)
    guard = NativeGuard(lib, 4096, capacity=1 << 20, seed=rng.getrandbits(64))
    model: set[int] = set()
    granules = rng.sample(range(1 << 28), 100_000)
    for g in granules:
        assert guard.add(g) is True
        model.add(g)
    assert len(guard) == 100_000
    assert guard.slots >= 2 * len(guard)
    assert guard.add(granules[0]) is False  # mapping again is not an error
    for g in rng.sample(granules, 2_000):
        assert g in guard
    for _ in range(60_000):
        op = rng.random()
        g = rng.choice(granules) if rng.random() < 0.7 else rng.getrandbits(28)
        if op < 0.35:
            assert guard.add(g) is (g not in model)
            model.add(g)
        elif op < 0.7:
            assert guard.remove(g) is (g in model)
            model.discard(g)
        else:
            assert (g in guard) is (g in model)
    assert len(guard) == len(model)
    assert all((g in guard) is (g in model) for g in granules[:20_000])
    # Extreme keys are ordinary keys.
    for g in (0, 1, (1 << 64) - 1):
        assert guard.add(g) and g in guard and guard.remove(g) and g not in guard
    guard.clear()
    assert len(guard) == 0 and guard.slots <= 1024 and granules[1] not in guard
    guard.close()


def test_guard_capacity_enrollment_and_ownership(lib: NativeLib) -> None:
    guard = NativeGuard(lib, 65536, capacity=10)
    assert guard.shift == 16 and not guard.enrolled
    for g in range(10):
        guard.add(g)
    with pytest.raises(NativeError):
        guard.add(10)
    assert guard.add(3) is False  # present: no capacity needed
    guard.enrolled = True
    assert guard.enrolled
    guard.reset()
    assert not guard.enrolled and len(guard) == 0
    with pytest.raises(ValueError):
        NativeGuard(lib, 3000)
    with pytest.raises(ValueError):
        guard.add(-1)
    # A guard used by a vCPU cannot be freed; once the vCPU is gone it can.
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    vcpu = NativeVcpu(lib, uc._uch, guard, lambda n: None)
    with pytest.raises(NativeError):
        guard.close()
    vcpu.close()
    guard.close()
    assert guard.closed
    with pytest.raises(NativeError):
        _ = guard.handle
    close_uc(uc)


# -- decode cache -----------------------------------------------------------------------------


def test_decode_cache_collisions_removal_and_overflow(lib: NativeLib) -> None:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    guard = NativeGuard(lib, 4096)
    seed = 12345
    vcpu = NativeVcpu(lib, uc._uch, guard, lambda n: None, cache_capacity=4, seed=seed)
    slots = vcpu.cache_slots
    assert slots == 8
    # Four PCs with the same home slot: one probe run, then removal from its middle.
    by_home: dict[int, list[int]] = {}
    pc = CODE
    while True:
        home = lib.hash(pc, seed) & (slots - 1)
        by_home.setdefault(home, []).append(pc)
        if len(by_home[home]) == 4:
            run = by_home[home]
            break
        pc += 4
    for i, p in enumerate(run):
        assert vcpu.cache_put(p, True, 4, i % 2 == 1) == 1
    assert vcpu.cache_count == 4
    assert [vcpu.cache_get(p) for p in run] == [
        (True, 4, False),
        (True, 4, True),
        (True, 4, False),
        (True, 4, True),
    ]
    assert vcpu.cache_remove(run[1]) is True
    assert vcpu.cache_remove(run[1]) is False
    assert vcpu.cache_get(run[1]) is None
    assert [vcpu.cache_get(p) is not None for p in (run[0], run[2], run[3])] == [True] * 3
    assert vcpu.cache_put(run[2], False, 16, False) == 0  # replace; a slow entry of any size
    assert vcpu.cache_get(run[2]) == (False, 0, False)
    assert vcpu.cache_put(run[1], True, 2, True) == 1
    # Full (capacity 4): a new PC empties the cache first, like the Python dict.
    assert vcpu.cache_put(CODE - 4, True, 1, False) == 2
    assert vcpu.cache_count == 1 and vcpu.cache_get(run[0]) is None
    vcpu.cache_clear()
    assert vcpu.cache_count == 0 and vcpu.cache_get(CODE - 4) is None
    with pytest.raises(ValueError):
        vcpu.cache_put(CODE, True, 3, False)
    vcpu.close()
    guard.close()
    close_uc(uc)


def test_decode_cache_random_operations(lib: NativeLib) -> None:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    guard = NativeGuard(lib, 4096)
    vcpu = NativeVcpu(lib, uc._uch, guard, lambda n: None, cache_capacity=50_000)
    rng = random.Random(3)
    model: dict[int, tuple[bool, int, bool]] = {}
    pcs = [CODE + 4 * rng.randrange(1 << 20) for _ in range(3000)] + [0, (1 << 64) - 4]
    for _ in range(30_000):
        pc = rng.choice(pcs)
        op = rng.random()
        if op < 0.5:
            entry = (rng.random() < 0.8, rng.choice((1, 2, 4)), rng.random() < 0.5)
            vcpu.cache_put(pc, *entry)
            model[pc] = entry
        elif op < 0.7:
            assert vcpu.cache_remove(pc) is (pc in model)
            model.pop(pc, None)
        else:
            assert vcpu.cache_get(pc) == model.get(pc)
    assert vcpu.cache_count == len(model)
    assert all(vcpu.cache_get(pc) == model.get(pc) for pc in pcs)
    vcpu.close()
    guard.close()
    close_uc(uc)


def test_decide_checks_bounds_size_direction_and_straddle(lib: NativeLib) -> None:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    guard = NativeGuard(lib, 4096)
    vcpu = NativeVcpu(lib, uc._uch, guard, lambda n: None)
    esc = Escapes()
    region = NativeRegion(lib, vcpu, UART, 0x2000, esc.read, esc.write)
    pc = CODE
    assert not region.decide(pc, 0, 4, False)  # cache miss
    vcpu.cache_put(pc, True, 4, False)
    assert region.decide(pc, 0, 4, False)  # not enrolled: any granule
    assert not region.decide(pc, 0, 2, False)  # size differs
    assert not region.decide(pc, 0, 4, True)  # direction differs
    assert not region.decide(pc, 0x2000, 4, False)  # outside the region
    assert not region.decide(pc, 0x1FFE, 4, False)  # runs past its end
    assert not region.decide(pc, (1 << 64) - 1, 4, False)
    vcpu.cache_put(pc, False, 4, False)
    assert not region.decide(pc, 0, 4, False)  # known slow instruction
    vcpu.cache_put(pc, True, 4, False)
    guard.enrolled = True
    assert not region.decide(pc, 0, 4, False)
    guard.add(UART >> 12)
    guard.add((UART >> 12) + 1)
    # Enrolled, C decides only the instruction's whole access: it needs the address form.
    assert not region.decide(pc, 0xFFC, 4, False)
    vcpu.cache_put(pc, True, 4, False, AddressForm(rt=4, rn=1, imm=2))

    def ea(address: int) -> None:
        uc.reg_write(A.UC_ARM64_REG_X1, address - 2)

    ea(UART + 0xFFC)
    assert region.decide(pc, 0xFFC, 4, False)
    ea(UART + 0xFFE)
    assert not region.decide(pc, 0xFFC, 4, False)  # a piece of a split access
    assert not region.decide(pc, 0xFFE, 4, False)  # straddles: Python checks both granules
    ea(UART + 0x1000)
    assert region.decide(pc, 0x1000, 4, False)
    ea(UART + 0x1000 + (5 << 32))  # a virtual address: only the page offset must agree
    assert region.decide(pc, 0x1000, 4, False)
    guard.remove(UART >> 12)
    ea(UART + 0xFFC)
    assert region.judge(pc, 0xFFC, 4, False) == DECIDE_ESCAPE  # refused: Python aborts
    vcpu.native_abort = True
    assert region.judge(pc, 0xFFC, 4, False) == DECIDE_REFUSE  # refused: C records the abort
    assert region.judge(pc, 0xFFC, 4, True) == DECIDE_ESCAPE  # direction differs
    ea(UART + 0x1000)
    assert region.judge(pc, 0x1000, 4, False) == DECIDE_ALLOW
    vcpu.fast_mmio = False
    assert not region.decide(pc, 0x1000, 4, False)
    with pytest.raises(NativeError):
        vcpu.close()  # a region still uses it
    region.close()
    vcpu.close()
    guard.close()
    close_uc(uc)


# -- real Unicorn: device accesses -------------------------------------------------------------


def test_empty_cache_escapes_every_access(machine: Machine) -> None:
    machine.run()
    s = machine.stats()
    assert (s.mmio_native, s.mmio_forward, s.mmio_escape, s.errors) == (0, 0, 30, 0)
    esc = machine.esc
    assert esc.reads == [(PC_FR, 0x18, 4), (PC_CR, 0x30, 4)] * 10
    assert esc.writes == [(PC_DR, 0, 1, 0x41 + i) for i in range(10)]
    assert machine.uc.reg_read(A.UC_ARM64_REG_X5) == 10 * esc.fr  # Python answered
    assert machine.pl011.pending == 0


def test_filled_cache_is_answered_in_c(machine: Machine) -> None:
    machine.fill_cache()
    machine.run()
    s = machine.stats()
    assert (s.mmio_native, s.mmio_forward, s.mmio_escape) == (20, 10, 0)
    uc = machine.uc
    assert uc.reg_read(A.UC_ARM64_REG_X5) == 10 * 0x90  # UARTFR from C
    assert uc.reg_read(A.UC_ARM64_REG_X7) == 10 * 0x301  # UARTCR forwarded to Python
    assert machine.esc.reads == [(PC_CR, 0x30, 4)] * 10
    assert machine.esc.writes == []
    assert machine.pl011.pending == 10 and machine.pl011.total == 10
    assert machine.region.drain() == b"ABCDEFGHIJ"
    assert machine.pl011.pending == 0 and machine.pl011.drain() == b""
    # With forwards, allowed accesses skip the escape.
    machine.region.set_forward(machine.esc.forward_read, machine.esc.write)
    machine.esc.reads.clear()
    machine.run()
    assert machine.esc.reads == [] and machine.esc.forwarded == [(PC_CR, 0x30, 4)] * 10
    # The FR value is Python's to change.
    machine.region.fr = 0x10
    machine.run()
    assert uc.reg_read(A.UC_ARM64_REG_X5) == 10 * 0x10


def test_guard_enrolled_unmapped_escapes_mapped_is_native(machine: Machine) -> None:
    machine.fill_cache()
    machine.guard.enrolled = True
    machine.run()
    assert machine.stats().mmio_escape == 30 and machine.stats().mmio_native == 0
    machine.guard.add((UART >> 12) + 1)  # the next granule is not this one
    machine.run()
    assert machine.stats().mmio_escape == 30
    machine.guard.add(UART >> 12)
    machine.run()
    s = machine.stats()
    assert (s.mmio_native, s.mmio_forward, s.mmio_escape) == (20, 10, 0)
    machine.guard.remove(UART >> 12)
    machine.run()
    assert machine.stats().mmio_escape == 30
    machine.guard.reset()  # as after SYSTEM_RESET: not enrolled, nothing mapped
    machine.run()
    assert machine.stats().mmio_native == 20


def test_pl011_modes_flush_byte_and_full_ring(lib: NativeLib) -> None:
    gen = _machine(lib, uart_loop(20), ring=16)
    m = next(gen)
    m.fill_cache()
    m.run()
    # 16 bytes fit in the ring; the next 4 go to Python (which would drain first).
    assert m.pl011.pending == 16
    assert [w[3] for w in m.esc.writes] == [0x41 + i for i in range(16, 20)]
    assert m.stats().mmio_forward == 20 + 4
    assert m.pl011.drain() == bytes(range(0x41, 0x41 + 16))
    m.esc.writes.clear()
    m.pl011.set_mode(fr_fast=True, dr_fast=True, flush_byte=ord("C"))
    m.run()
    # "C" goes to Python whatever the ring holds; 16 others fill it; R, S, T overflow.
    assert bytes(w[3] for w in m.esc.writes) == b"CRST"
    assert m.pl011.drain() == b"ABDEFGHIJKLMNOPQ"
    m.esc.writes.clear()
    m.pl011.set_mode(fr_fast=False, dr_fast=False)
    m.run()
    s = m.stats()
    assert (s.mmio_native, s.mmio_forward, s.mmio_escape) == (0, 60, 0)
    assert len(m.esc.writes) == 20 and m.pl011.pending == 0
    m.vcpu.fast_mmio = False  # tracing: Python sees everything
    m.run()
    assert m.stats().mmio_escape == 60
    with pytest.raises(StopIteration):
        next(gen)


def test_pl011_ring_wraps_in_order(lib: NativeLib) -> None:
    gen = _machine(lib, uart_loop(10), ring=16)
    m = next(gen)
    m.fill_cache()
    for _ in range(3):  # the second and third runs wrap around the end of the ring
        m.run()
        assert m.stats().mmio_native == 20
        assert m.pl011.drain() == b"ABCDEFGHIJ"
    assert m.pl011.total == 30 and m.esc.writes == []
    with pytest.raises(StopIteration):
        next(gen)


# -- real Unicorn: hypercalls ----------------------------------------------------------------------


def hvc(m: Machine, x0: int) -> tuple[int, int, int, int]:
    uc = m.uc
    uc.reg_write(A.UC_ARM64_REG_X0, x0)
    for r in (A.UC_ARM64_REG_X1, A.UC_ARM64_REG_X2, A.UC_ARM64_REG_X3):
        uc.reg_write(r, 0x1111)
    m.vcpu.reset_stats()
    uc.emu_start(CODE, CODE + 4)
    return (
        uc.reg_read(A.UC_ARM64_REG_X0),
        uc.reg_read(A.UC_ARM64_REG_X1),
        uc.reg_read(A.UC_ARM64_REG_X2),
        uc.reg_read(A.UC_ARM64_REG_X3),
    )


@pytest.fixture
def hvc_machine(lib: NativeLib) -> Iterator[Machine]:
    yield from _machine(lib, assemble([HVC, SVC]))


def test_hypercalls_answered_in_c(hvc_machine: Machine) -> None:
    m = hvc_machine
    # Off by default: everything goes to Python.
    assert hvc(m, FID_VERSION) == (FID_VERSION, 0x1111, 0x1111, 0x1111)
    assert m.esc.intrs == [11] and m.stats().intr_escape == 1
    m.vcpu.native_hvc = True
    m.vcpu.set_hypercalls(features=0x3D, info_fids=[FID_INFO])
    m.esc.intrs.clear()
    assert hvc(m, FID_VERSION) == (0x10001, 0, 0, 0)
    assert hvc(m, 0xFFFF_FFFF_0000_0000 | FID_VERSION) == (0x10001, 0, 0, 0)  # w0 selects
    assert hvc(m, FID_UID) == KVM_UID
    assert hvc(m, FID_FEATURES) == (0x3D, 0, 0, 0)
    assert hvc(m, FID_INFO) == (4096, 0, 0, 0)
    assert m.esc.intrs == []
    assert m.stats().hvc_native == 1 and m.stats().intr_escape == 0
    # Unknown to C: Python gets interrupt 11 and the registers untouched.
    assert hvc(m, FID_ENROLL) == (FID_ENROLL, 0x1111, 0x1111, 0x1111)
    assert hvc(m, 0x1234) == (0x1234, 0x1111, 0x1111, 0x1111)
    assert m.esc.intrs == [11, 11]
    assert m.stats().intr_escape == 1 and m.stats().hvc_native == 0
    m.vcpu.set_hypercalls(features=None, info_fids=[])
    m.esc.intrs.clear()
    hvc(m, FID_FEATURES)
    hvc(m, FID_INFO)
    assert m.esc.intrs == [11, 11]
    # PSCI_VERSION: Python's unless C is given the version.
    m.esc.intrs.clear()
    assert hvc(m, 0x8400_0000) == (0x8400_0000, 0x1111, 0x1111, 0x1111)
    m.vcpu.set_psci_version(0x10001)
    assert hvc(m, 0x8400_0000) == (0x10001, 0, 0, 0)
    assert m.esc.intrs == [11]
    with pytest.raises(ValueError):
        m.vcpu.set_psci_version(1 << 32)
    # Any other exception goes to Python with its number (SVC is 2).
    m.esc.intrs.clear()
    m.uc.emu_start(CODE + 4, CODE + 8)
    assert m.esc.intrs == [2]


# -- real Unicorn: guard aborts decided and entered in C ----------------------------------------

SPSR_EL1 = (4, 0, 3, 0, 0)
TPIDR_EL1 = (13, 0, 3, 0, 4)
VBAR = CODE + 0x8800  # not 2 KiB aligned: entry uses VBAR_EL1 & ~0x7FF, as Python does
SP0, SP1 = 0x4000_1000, 0x4000_2000


def set_pstate(uc: Uc, value: int) -> None:
    """Write PSTATE as the backend does: a system-register write makes Unicorn recompute its
    cached EL and SP flags (docs/unicorn.md)."""
    uc.reg_write(A.UC_ARM64_REG_PSTATE, value)
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (*TPIDR_EL1, uc.reg_read(A.UC_ARM64_REG_CP_REG, TPIDR_EL1)))


def entry_state(uc: Uc) -> dict[str, int]:
    names = ("PC", "PSTATE", "ELR_EL1", "ESR_EL1", "FAR_EL1", "SP", "SP_EL0", "SP_EL1")
    state = {n: int(uc.reg_read(getattr(A, f"UC_ARM64_REG_{n}"))) for n in names}
    state["SPSR_EL1"] = int(uc.reg_read(A.UC_ARM64_REG_CP_REG, SPSR_EL1))
    state.update({f"X{n}": int(uc.reg_read(A.UC_ARM64_REG_X0 + n)) for n in range(8)})
    return state


def prepared(lib: NativeLib, words: list[int], pstate: int) -> Iterator[Machine]:
    """A machine enrolled with nothing mapped, native aborts on, at ``pstate`` with known
    stacks (the live SP is SP_EL0 at EL0 and EL1t, SP_EL1 at EL1h)."""
    gen = _machine(lib, assemble(words))
    m = next(gen)
    m.guard.enrolled = True
    m.vcpu.native_abort = True
    uc = m.uc
    uc.reg_write(A.UC_ARM64_REG_VBAR_EL1, VBAR)
    set_pstate(uc, pstate)
    if pstate & 1:
        uc.reg_write(A.UC_ARM64_REG_SP_EL0, SP0)
        uc.reg_write(A.UC_ARM64_REG_SP, SP1)
    else:
        uc.reg_write(A.UC_ARM64_REG_SP, SP0)
        uc.reg_write(A.UC_ARM64_REG_SP_EL1, SP1)
    yield m
    yield from gen


def expected_entry(before: dict[str, int], pstate: int, far: int) -> dict[str, int]:
    """What Vcpu._inject writes for the guard's abort of the instruction at CODE."""
    esr = E.external_data_abort(current_el(pstate) == 0)
    entry = enter(pstate, CODE, VBAR, VectorKind.SYNC, esr, far)
    after = dict(before)
    after.update(
        PC=entry.pc,
        PSTATE=entry.pstate,
        ELR_EL1=CODE,
        ESR_EL1=esr,
        FAR_EL1=far,
        SPSR_EL1=entry.spsr,
    )
    if entry.bank_sp_el0:
        after.update(SP_EL0=before["SP"], SP=before["SP_EL1"])
    return after


# EL1h, EL1t and EL0t, with condition flags set (SPSR keeps them, entry clears them).
ORIGINS = [0x3C5, 0x6000_03C4, 0x9000_0000]


@pytest.mark.parametrize("pstate", ORIGINS, ids=["el1h", "el1t", "el0"])
def test_refused_load_into_its_base_is_put_back_and_entered_in_c(
    lib: NativeLib, pstate: int
) -> None:
    # ldr w1, [x1, #0x18]: the refused load's destination is its own base register.
    gen = prepared(lib, [ldr_w(1, 1, 0x18), NOP], pstate)
    m = next(gen)
    uc = m.uc
    m.vcpu.cache_put(CODE, True, 4, False, AddressForm(rt=1, rn=1, imm=0x18))
    uc.reg_write(A.UC_ARM64_REG_X1, UART)
    before = entry_state(uc)
    m.run(CODE + 8)
    a = m.vcpu.abort
    esr = E.external_data_abort(current_el(pstate) == 0)
    assert (a.active, a.elr, a.esr, a.far) == (1, CODE, esr, UART + 0x18)
    s = m.stats()
    assert (s.mmio_abort, s.mmio_escape, s.abort_enter) == (1, 0, 0)
    assert m.esc.reads == []
    assert uc.reg_read(A.UC_ARM64_REG_PC) == CODE  # stopped on the load
    assert m.vcpu.take_abort(TAKE_ENTER) == 1
    assert m.vcpu.abort.active == 0 and m.stats().abort_enter == 1
    assert entry_state(uc) == expected_entry(before, pstate, UART + 0x18)  # x1 put back
    assert m.vcpu.take_abort(TAKE_ENTER) == 0  # taken once
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.parametrize("pstate", ORIGINS, ids=["el1h", "el1t", "el0"])
def test_refused_store_and_register_offset_load(lib: NativeLib, pstate: int) -> None:
    gen = prepared(lib, [str_w(3, 1, 0x30), ldr_w_lsl2(5, 1, 2), NOP], pstate)
    m = next(gen)
    uc = m.uc
    m.vcpu.cache_put(CODE, True, 4, True, AddressForm(rt=3, rn=1, imm=0x30))
    m.vcpu.cache_put(CODE + 4, True, 4, False, AddressForm(rt=5, rn=1, rm=2, shift=2))
    uc.reg_write(A.UC_ARM64_REG_X1, UART)
    uc.reg_write(A.UC_ARM64_REG_X2, 6)
    uc.reg_write(A.UC_ARM64_REG_X5, 0x5555)
    before = entry_state(uc)
    m.run(CODE + 12)
    assert m.vcpu.abort.far == UART + 0x30 and m.esc.writes == []
    assert m.vcpu.take_abort(TAKE_ENTER) == 1
    assert entry_state(uc) == expected_entry(before, pstate, UART + 0x30)
    # The load at CODE + 4, index register shifted: x5 is put back (Python's RESTORE).
    set_pstate(uc, pstate)
    uc.reg_write(A.UC_ARM64_REG_SP, before["SP"])
    m.vcpu.reset_stats()
    uc.emu_start(CODE + 4, CODE + 12)
    assert m.vcpu.abort.far == UART + 0x18 and m.vcpu.abort.elr == CODE + 4
    assert m.vcpu.take_abort(TAKE_RESTORE) == 1  # Python would enter
    assert uc.reg_read(A.UC_ARM64_REG_X5) == 0x5555
    assert uc.reg_read(A.UC_ARM64_REG_PC) == CODE + 4
    assert m.stats().abort_enter == 0 and m.vcpu.abort.active == 0
    with pytest.raises(StopIteration):
        next(gen)


def test_aborts_only_for_whole_refused_accesses(machine: Machine) -> None:
    m = machine
    m.fill_cache()
    m.guard.enrolled = True
    m.run()  # native aborts off: the refusals escape, as before
    assert m.stats().mmio_escape == 30 and m.vcpu.abort.active == 0
    m.vcpu.native_abort = True
    m.guard.add(UART >> 12)
    m.run()  # mapped: nothing refused
    assert m.stats().mmio_native == 20 and m.vcpu.abort.active == 0
    m.guard.remove(UART >> 12)
    m.run()
    s = m.stats()
    assert (s.mmio_abort, s.mmio_escape, s.mmio_native) == (1, 0, 0)
    assert m.vcpu.abort.elr == PC_FR and m.uc.reg_read(A.UC_ARM64_REG_PC) == PC_FR
    assert m.vcpu.take_abort(TAKE_DROP) == 1 and m.vcpu.abort.active == 0
    # No address form: C cannot tell the whole access from a piece and lets Python decide.
    m.vcpu.cache_put(PC_FR, True, 4, False)
    m.run(PC_FR + 4)
    assert m.stats().mmio_escape == 1 and m.vcpu.abort.active == 0
    m.vcpu.fast_mmio = False  # traced: everything escapes
    m.fill_cache()
    m.run(PC_FR + 4)
    assert m.stats().mmio_escape == 1 and m.vcpu.abort.active == 0


def test_unmapped_fault_is_decided_in_c_with_the_mmu_off(lib: NativeLib) -> None:
    unassigned = 0x0A00_0000
    gen = prepared(lib, [ldr_w(2, 1, 4), NOP], 0x3C5)
    m = next(gen)
    uc = m.uc
    uc.reg_write(A.UC_ARM64_REG_X1, unassigned)
    before = entry_state(uc)

    def fault() -> None:
        m.vcpu.reset_stats()
        with pytest.raises(UcError):
            uc.emu_start(CODE, CODE + 8)

    fault()  # no decode-cache entry: Python decides
    assert m.vcpu.abort.active == 0 and m.stats().fault_abort == 0
    m.vcpu.cache_put(CODE, True, 4, True, AddressForm(rt=2, rn=1, imm=4))
    fault()  # a store's entry for a load's fault: Python looks
    assert m.vcpu.abort.active == 0
    m.vcpu.cache_put(CODE, True, 4, False, AddressForm(rt=2, rn=1, imm=4))
    m.guard.add(unassigned >> 12)
    fault()  # allowed: Python emulates it (the unassigned policy)
    assert m.vcpu.abort.active == 0
    m.guard.remove(unassigned >> 12)
    m.guard.enrolled = False
    fault()
    assert m.vcpu.abort.active == 0
    m.guard.enrolled = True
    fault()
    a = m.vcpu.abort
    assert (a.active, a.elr, a.esr, a.far) == (1, CODE, 0x9600_0010, unassigned + 4)
    assert m.stats().fault_abort == 1
    assert m.vcpu.take_abort(TAKE_ENTER) == 1
    assert entry_state(uc) == expected_entry(before, 0x3C5, unassigned + 4)
    # With the MMU on, Python walks the tables (tests/test_core_guest.py runs that case).
    with pytest.raises(StopIteration):
        next(gen)


def test_address_forms_round_trip_and_are_checked(lib: NativeLib) -> None:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    guard = NativeGuard(lib, 4096)
    vcpu = NativeVcpu(lib, uc._uch, guard, lambda n: None)
    forms = [
        AddressForm(rt=1, rn=31, imm=-256),
        AddressForm(rt=31, rn=0, imm=16380),
        AddressForm(rt=4, rn=5, rm=6, extend=6, shift=2),
        AddressForm(rt=4, rn=31, rm=31, extend=2, shift=0),
    ]
    for i, form in enumerate(forms):
        vcpu.cache_put(CODE + 4 * i, True, 4, False, form)
        assert vcpu.cache_form(CODE + 4 * i) == form
    vcpu.cache_put(CODE, True, 4, False)
    assert vcpu.cache_form(CODE) is None and vcpu.cache_form(CODE - 4) is None
    for bad in (
        AddressForm(rt=32, rn=0),
        AddressForm(rt=0, rn=32),
        AddressForm(rt=0, rn=0, rm=32),
        AddressForm(rt=0, rn=0, rm=1, extend=4),
        AddressForm(rt=0, rn=0, rm=1, shift=5),
        AddressForm(rt=-1, rn=0),
    ):
        with pytest.raises((ValueError, ctypes.ArgumentError)):
            vcpu.cache_put(CODE, True, 4, False, bad)
    assert vcpu.take_abort(TAKE_ENTER) == 0
    with pytest.raises(NativeError):
        vcpu.take_abort(3)
    vcpu.close()
    assert vcpu.abort.active == 0  # a detached copy once closed
    guard.close()
    close_uc(uc)


class _UcRegs:
    """arch.decode's RegisterView over a bare engine."""

    def __init__(self, uc: Uc) -> None:
        self.uc = uc

    def x(self, n: int) -> int:
        return int(self.uc.reg_read(A.UC_ARM64_REG_X0 + n)) if n != 31 else 0

    def sp(self) -> int:
        return int(self.uc.reg_read(A.UC_ARM64_REG_SP))

    def pc(self) -> int:
        return CODE

    def v(self, n: int) -> int:
        return 0


def test_effective_address_forms_match_the_decoder(lib: NativeLib) -> None:
    """C's effective address (seen through the FAR it records) against arch.decode's, for the
    forms it caches: extensions, shifts, negative offsets, SP as the base, XZR as index."""
    from mmioguard.arch.decode import decode, effective_address

    cases = [
        (0xB8400000 | (0x1F0 << 12) | (1 << 5) | 2, {1: UART + 0x28}),  # ldur w2, [x1, #-16]
        (0xB8605800 | (3 << 16) | (1 << 5) | 2, {1: UART, 3: (1 << 32) | 6}),  # uxtw #2
        (0xB860D800 | (3 << 16) | (1 << 5) | 2, {1: UART + 0x28, 3: 0xFFFF_FFFC}),  # sxtw #2
        (0x38606800 | (3 << 16) | (1 << 5) | 2, {1: UART, 3: 0x18}),  # ldrb w2, [x1, x3]
        (0x38606800 | (31 << 16) | (1 << 5) | 2, {1: UART + 0x18}),  # ldrb w2, [x1, xzr]
        (0xB9401BE2, {}),  # ldr w2, [sp, #0x18]
    ]
    for word, values in cases:
        ls = decode(word)
        assert ls is not None and ls.isv and ls.size <= 4, hex(word)
        gen = prepared(lib, [word, NOP], 0x3C5)
        m = next(gen)
        uc = m.uc
        if ls.rn == 31:
            uc.reg_write(A.UC_ARM64_REG_SP, UART)
        for n, value in values.items():
            uc.reg_write(A.UC_ARM64_REG_X0 + n, value)

        expected = effective_address(ls, _UcRegs(uc))
        if ls.rm is None:
            form = AddressForm(ls.rt, ls.rn or 0, ls.imm)
        else:
            form = AddressForm(ls.rt, ls.rn or 0, rm=ls.rm, extend=ls.extend.value, shift=ls.shift)
        m.vcpu.cache_put(CODE, True, ls.size, False, form)
        m.run(CODE + 8)
        assert m.vcpu.abort.active == 1, hex(word)
        assert m.vcpu.abort.far == expected == UART + 0x18, hex(word)
        m.vcpu.take_abort(TAKE_DROP)
        with pytest.raises(StopIteration):
            next(gen)


# -- a micro-measure (printed, not asserted) ----------------------------------------------------


def fr_loop(n: int, hvc_loop: bool = False) -> bytes:
    """n times UARTFR read (at CODE + 0x10) or HVC SMCCC_VERSION; the count is in x9, which
    no hypercall result touches (x0..x3 do)."""
    body = [HVC] if hvc_loop else [ldr_w(4, 1, 0x18)]
    return assemble(
        [
            movz(1, UART >> 16, 16),
            movz(9, n & 0xFFFF),
            0xF2A0_0009 | ((n >> 16) << 5),  # movk x9, #hi, lsl #16
            movz(0, 0x8000, 16),  # x0 = SMCCC_VERSION (a hypercall's result replaces it)
            *body,
            subs_imm(9, 9, 1),
            b_ne(CODE + 0x18, CODE + 0xC),
        ]
    )


def _python_callbacks(uc: Uc) -> tuple[object, object, Callable[[int, int, int], int]]:
    """What the backend registers today: bare ctypes callbacks, a raw PC read, and a closure
    shaped like Vcpu.mmio_callbacks' fast_read in front of the device's read."""
    reg_read = ctypes.CDLL(uclib._name).uc_reg_read
    reg_read.restype = ctypes.c_int
    handle = uc._uch
    pc_buf = ctypes.c_uint64()
    pc_ref = ctypes.byref(pc_buf)
    cache = {CODE + 0x10: (True, 4, False)}
    mapped: set[int] = set()
    enrolled = False

    def device_read(offset: int, size: int) -> int:
        return 0x90 if offset == 0x18 else 0

    def fast_read(pc: int, offset: int, size: int) -> int:
        fast, isize, is_write = cache[pc]
        if fast and isize == size and not is_write:
            if not enrolled:
                return device_read(offset, size)
            g = (UART + offset) >> 12
            if g in mapped:
                return device_read(offset, size)
        return 0

    def on_read(_h: int, offset: int, size: int, _u: int) -> int:
        reg_read(handle, A.UC_ARM64_REG_PC, pc_ref)
        return fast_read(pc_buf.value, offset, size)

    def on_write(_h: int, offset: int, size: int, value: int, _u: int) -> None:
        return None

    return MMIO_READ_CFUNC(on_read), MMIO_WRITE_CFUNC(on_write), fast_read


def test_micro_measure(lib: NativeLib) -> None:
    if lib.ubsan:
        pytest.skip("measured on the plain build only")
    n = 100_000
    end = CODE + 0x1C
    results: dict[str, float] = {}

    def timed(uc: Uc) -> float:
        start = time.perf_counter()
        uc.emu_start(CODE, end)
        return (time.perf_counter() - start) / n * 1e6

    # Floor: the same loop reading RAM.
    uc = new_uc(lib, fr_loop(n))
    uc.reg_write(A.UC_ARM64_REG_X1, CODE)
    code = bytearray(fr_loop(n))
    code[0:4] = (0xD503201F).to_bytes(4, "little")  # nop: keep x1 pointing at RAM
    uc.mem_write(CODE, bytes(code))
    results["RAM load (floor)"] = timed(uc)
    close_uc(uc)

    gen = _machine(lib, fr_loop(n))
    m = next(gen)
    m.vcpu.cache_put(CODE + 0x10, True, 4, False)
    results["UARTFR read, C callback"] = timed(m.uc)
    assert m.stats().mmio_native == n
    with pytest.raises(StopIteration):
        next(gen)

    uc = new_uc(lib, fr_loop(n))
    rcb, wcb, fast_read = _python_callbacks(uc)
    assert uclib.uc_mmio_map(uc._uch, UART, 0x1000, rcb, None, wcb, None) == 0
    results["UARTFR read, Python callback"] = timed(uc)
    close_uc(uc)

    # What an access C does not decide costs: C, then the same Python closure as the escape.
    uc = new_uc(lib, fr_loop(n))
    guard = NativeGuard(lib, 4096)
    vcpu = NativeVcpu(lib, uc._uch, guard, lambda intno: None)
    region = NativeRegion(lib, vcpu, UART, 0x1000, fast_read, lambda *args: None)
    err = uclib.uc_mmio_map(
        uc._uch, UART, 0x1000, lib.mmio_read_ptr, region.handle, lib.mmio_write_ptr, region.handle
    )
    assert err == 0
    results["UARTFR read, C then Python escape"] = timed(uc)
    assert vcpu.stats().mmio_escape == n
    close_uc(uc)
    for obj in (region, vcpu, guard):
        obj.close()

    gen = _machine(lib, fr_loop(n, hvc_loop=True))
    m = next(gen)
    m.vcpu.native_hvc = True
    results["HVC SMCCC_VERSION, C"] = timed(m.uc)
    assert m.stats().hvc_native == n
    with pytest.raises(StopIteration):
        next(gen)

    # The same loop with the hypercall answered in Python, shaped like Vcpu.on_hvc with the
    # backend's batched register accesses.
    uc = new_uc(lib, fr_loop(n, hvc_loop=True))
    dll = ctypes.CDLL(uclib._name)
    handle = uc._uch
    ids = (ctypes.c_int * 4)(*(A.UC_ARM64_REG_X0 + i for i in range(4)))
    vals = (ctypes.c_uint64 * 4)()
    ptrs = (ctypes.c_void_p * 4)(*(ctypes.addressof(vals) + 8 * i for i in range(4)))
    table = {FID_VERSION: lambda: (0x10001, 0, 0, 0)}

    def on_hvc(intno: int) -> None:
        dll.uc_reg_read_batch(handle, ids, ptrs, 4)
        vals[0], vals[1], vals[2], vals[3] = table[vals[0] & 0xFFFF_FFFF]()
        dll.uc_reg_write_batch(handle, ids, ptrs, 4)

    guard = NativeGuard(lib, 4096)
    py_vcpu = NativeVcpu(lib, handle, guard, on_hvc)
    hook = ctypes.c_size_t()
    err = uclib.uc_hook_add(
        handle, ctypes.byref(hook), UC_HOOK_INTR, lib.intr_ptr, py_vcpu.handle, 1, 0
    )
    assert err == 0
    results["HVC SMCCC_VERSION, Python escape"] = timed(uc)
    assert py_vcpu.stats().intr_escape == n
    close_uc(uc)
    py_vcpu.close()
    guard.close()

    print()
    for what, us in results.items():
        print(f"  {what:36s} {us:7.3f} us per iteration")


def test_native_binding_checks_the_offsets(lib: NativeLib) -> None:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(0x1000, 0x1000)  # the engine creates its CPU on first use
    guard = NativeGuard(lib, 4096)
    vcpu = NativeVcpu(lib, uc._uch, guard, lambda n: None)
    restore = pcrestore.restore_function()
    offsets = pcrestore.layout()
    assert restore is not None and offsets is not None
    good = UcLayout.of(offsets)

    def changed(**fields: int) -> UcLayout:
        layout = UcLayout.from_buffer_copy(good)
        for name, value in fields.items():
            setattr(layout, name, value)
        return layout

    assert not vcpu.bind_pc_restore(restore, changed(uc_cpu=offsets.uc_cpu + 8))
    assert not vcpu.bind_pc_restore(restore, changed(cpu_uc=offsets.cpu_uc + 8))
    assert not vcpu.bind_pc_restore(restore, changed(uc_tcg=offsets.uc_tcg + 8))
    assert not vcpu.bind_pc_restore(restore, changed(tcg_uc=offsets.tcg_uc - 8))
    assert not vcpu.bind_pc_restore(restore, changed(uc_cpu=offsets.uc_cpu + 1))  # unaligned
    assert not vcpu.bind_pc_restore(restore, changed(tcg_flush_count=1 << 20))  # beyond limit
    assert vcpu.bind_pc_restore(restore, good)
    vcpu.close()
    guard.close()


def test_remembered_pcs_are_forgotten_when_the_translation_cache_is_flushed(
    lib: NativeLib,
) -> None:
    # Without any memory hook, C works out the PC of an access from its host address and
    # remembers it. After a flush the first block translated reuses the host code of the first
    # block ever translated: the same instructions elsewhere get the same host addresses, and a
    # remembered PC would name the old place.
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(CODE, 0x10000)
    code = assemble([movz(1, 0x0900, 16), ldr_w(0, 1, 0x18)])
    uc.mem_write(CODE, code)
    uc.mem_write(CODE + 0x1000, code)
    esc = Escapes()
    guard = NativeGuard(lib, 4096)
    vcpu = NativeVcpu(lib, uc._uch, guard, esc.intr)
    region = NativeRegion(lib, vcpu, UART, 0x1000, esc.read, esc.write)
    assert uclib.uc_mmio_map(uc._uch, UART, 0x1000, lib.mmio_read_ptr, region.handle,
                             lib.mmio_write_ptr, region.handle) == 0
    restore, offsets = pcrestore.restore_function(), pcrestore.layout()
    assert restore is not None and offsets is not None
    layout = UcLayout.of(offsets)
    assert vcpu.bind_pc_restore(restore, layout)
    seen = []
    for start in (CODE, CODE, CODE + 0x1000):
        uc.ctl_flush_tb()
        uc.emu_start(start, start + 8)
        seen.append(esc.reads[-1][0])
    assert seen == [CODE + 4, CODE + 4, CODE + 0x1004]
    region.close()
    vcpu.close()
    guard.close()
