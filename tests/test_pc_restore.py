"""Exact device-access PCs without memory hooks, and stores that cross the end of RAM.

Unicorn keeps PC exact at a device access only while a memory hook exists, and such a hook
slows every guest load and store; the backend restores PC from QEMU's record of the access
instead (mmioguard.cpu.pcrestore), and falls back to the hooks where it cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import asmguest
from asmguest import ENROLL
from conftest import run_image
from mmioguard.cpu import pcrestore
from mmioguard.hyp.config import GuardMode
from mmioguard.vmm.virt import ExitStatus

if TYPE_CHECKING:
    from conftest import Run

# Device accesses at the labels, after RAM loads and stores in the same translation block
# (without a hook, Unicorn's PC there is the PC the run started at, or older).
DEVICE_AMONG_RAM = """
  ldr x1, =0x09000000
  ldr x3, =0x40060000
  adr x11, first
  adr x12, second
  adr x13, third
  mov x4, #7
  str x4, [x3]
  ldr x5, [x3]
first:
  ldr w9, [x1, #0x18]
  str x5, [x3, #8]
  ldr x6, [x3, #8]
  add x6, x6, #1
second:
  ldr w10, [x1, #0xfe0]
  stp x5, x6, [x3, #16]
third:
  str w4, [x1, #0x38]
  b off
"""


def _mmio_pcs(run: Run) -> list[int]:
    return [e["pc"] for e in run.trace.of("mmio")]


def test_device_pcs_are_exact_among_ram_accesses(run_asm: Callable) -> None:
    r = run_asm(DEVICE_AMONG_RAM)
    assert r.outcome.status is ExitStatus.OFF
    assert all(b.exact_pc == "restore" for b in r.machine.backends)
    assert _mmio_pcs(r) == [r.x(11), r.x(12), r.x(13)]
    assert r.x(9) == 0x90 and r.x(10) == 0x11  # UARTFR, PeriphID0


@pytest.fixture
def without_restore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a Unicorn release whose structures this build does not know."""
    monkeypatch.setattr(pcrestore, "layout", lambda: None)
    yield


def test_memory_hooks_are_the_fallback(run_asm: Callable, without_restore: None) -> None:
    r = run_asm(DEVICE_AMONG_RAM)
    assert r.outcome.status is ExitStatus.OFF
    assert all(b.exact_pc == "hook" for b in r.machine.backends)
    assert _mmio_pcs(r) == [r.x(11), r.x(12), r.x(13)]


def test_guard_abort_elr_is_exact_on_the_production_path(asm_cache: Path) -> None:
    # Untraced: C (or Python's fast path) decides, and the abort's ELR is the restored PC.
    elf = asmguest.build(ENROLL + """
  ldr x1, =0x09010000
  ldr x3, =0x40060000
  adr x11, refused
  str x1, [x3]
  ldr x4, [x3]
refused:
  ldr w9, [x1]
  str x4, [x3, #8]
  b off
""", asm_cache)
    for native in (True, False):
        r = run_image(str(elf), native=native, traced=False)
        assert r.outcome.status is ExitStatus.OFF
        assert r.x(25) == 1
        assert r.x(22) == r.x(11)  # ELR
        assert r.x(20) == 0x96000010 and r.x(21) == 0x09010000


# A store pair that walks up to the end of RAM (0x48000000 with the default 128 MiB): the first
# iteration writes [end-24, end-8) and stays; the second writes [end-8, end) before its other
# half faults beyond RAM, where the enrolled guest mapped nothing, and only that half is put
# back.
CROSSING_LOOP = ENROLL + """
  ldr x2, =0x47ffffe8
  ldr x7, =0xaaaaaaaaaaaaaaaa
  stp x7, x7, [x2]
  str x7, [x2, #16]
  ldr x1, =0xbbbbbbbbbbbbbbbb
  adr x11, loop
  mov x6, #2
loop:
  stp x1, x1, [x2], #16
  subs x6, x6, #1
  b.ne loop
  b off
"""


def test_store_crossing_the_end_of_ram_leaves_ram_unchanged(run_asm: Callable) -> None:
    r = run_asm(CROSSING_LOOP)
    assert r.outcome.status is ExitStatus.OFF, r.outcome.report
    assert r.x(25) == 1 and r.x(22) == r.x(11) and r.x(20) == 0x96000010
    memory = r.machine.vm.memory
    assert memory.read(0x47FF_FFE8, 16) == b"\xbb" * 16  # the first iteration's stores stay
    assert memory.read(0x47FF_FFF8, 8) == b"\xaa" * 8  # the aborted one's RAM half is undone


def test_guard_mode_audit_still_sees_exact_pcs(run_asm: Callable) -> None:
    r = run_asm(DEVICE_AMONG_RAM, guard_mode=GuardMode.AUDIT)
    assert _mmio_pcs(r) == [r.x(11), r.x(12), r.x(13)]


def test_device_tree_fills_the_last_page_of_ram(run_asm: Callable) -> None:
    # The last page is the write-protected one: the padded blob covers it, so a kernel that
    # reserves the blob leaves that page alone.
    r = run_asm("  b off\n")
    machine = r.machine
    assert machine.dtb_addr + len(machine.dtb) == 0x4800_0000
    assert len(machine.dtb) % 4096 == 0
    assert int.from_bytes(machine.dtb[4:8], "big") == len(machine.dtb)
