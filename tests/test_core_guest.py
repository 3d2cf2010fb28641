"""End-to-end: real guest code on the real emulator, checked by what the guest saw."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from asmguest import ENROLL
from mmioguard.abi.profiles import PROFILES
from mmioguard.hyp.config import GuardMode, NisvPolicy, UnassignedPolicy
from mmioguard.vmm.virt import ExitStatus

if TYPE_CHECKING:
    from conftest import Run

M1 = 0xFFFF_FFFF_FFFF_FFFF
UART = 0x0900_0000
RTC = 0x0901_0000


def test_discovery_calls(run_asm: Callable) -> None:
    r = run_asm("""
  hcall 0x80000000
  mov x10, x0
  hcall 0x84000000
  mov x11, x0
  hcall 0x8600ff01
  mov x12, x0
  mov x13, x1
  mov x14, x2
  mov x15, x3
  hcall 0x86000000
  mov x16, x0
  mov x1, #5
  mov x2, #6
  hcall 0xc6000063
  mov x17, x0
  mov x18, x1
  hcall 0xc6000002
  mov x19, x0
  ldr x1, =0x80000000
  hcall 0x80000001
  mov x9, x0
  ldr x1, =0xc4000003
  hcall 0x8400000a
  mov x8, x0
  ldr x1, =0x12345
  hcall 0x8400000a
  mov x7, x0
  hcall 0x84000006
  mov x6, x0
""")
    assert r.outcome.status is ExitStatus.OFF
    assert r.x(10) == 0x10001
    assert r.x(11) == 0x10001
    assert [r.x(n) for n in (12, 13, 14, 15)] == [0xB66FB428, 0xE911C52E, 0x564BCAA9, 0x743A004D]
    assert r.x(16) == 0b111101
    assert (r.x(17), r.x(18)) == (M1, 0)  # unknown ID: -1, and x1 zeroed
    assert r.x(19) == 4096
    assert r.x(9) == 0 and r.x(8) == 0 and r.x(7) == M1
    assert r.x(6) == 2


def test_smc_returns_not_supported_and_skips(run_asm: Callable) -> None:
    r = run_asm("""
  mov x0, #0x1234
  .inst 0xd4000003
  mov x10, x0
""")
    assert r.outcome.status is ExitStatus.OFF
    assert r.x(10) == M1
    assert r.x(25) == 0


def test_psci_cpu_on_and_affinity_on_one_vcpu(run_asm: Callable) -> None:
    r = run_asm("""
  mov x1, #0
  adr x2, off
  hcall 0xc4000003
  mov x10, x0
  mov x1, #1
  adr x2, off
  hcall 0xc4000003
  mov x11, x0
  mov x1, #0
  mov x2, #0
  hcall 0xc4000004
  mov x12, x0
  mov x1, #1
  mov x2, #0
  hcall 0xc4000004
  mov x13, x0
""")
    assert r.x(10) == (-4) & M1  # ALREADY_ON
    assert r.x(11) == (-2) & M1  # INVALID_PARAMETERS
    assert r.x(12) == 0  # ON
    assert r.x(13) == (-2) & M1


def test_guard_map_failures_and_successes(run_asm: Callable) -> None:
    r = run_asm("""
  ldr x1, =0x09000000
  hcall 0xc6000004
  mov x10, x0
  hcall 0xc6000003
  mov x11, x0
  hcall 0xc6000003
  mov x12, x0
  ldr x1, =0x09000800
  hcall 0xc6000004
  mov x13, x0
  ldr x1, =0x40000000
  hcall 0xc6000004
  mov x14, x0
  ldr x1, =0xfffffff000
  hcall 0xc6000004
  mov x15, x0
  ldr x1, =0x10000000000
  hcall 0xc6000004
  mov x16, x0
  ldr x1, =0x0a000000
  hcall 0xc6000004
  mov x17, x0
  hcall 0xc6000004
  mov x18, x0
  ldr x1, =0x0a000010
  hcall 0xc6000005
  mov x19, x0
  ldr x1, =0x0a000000
  hcall 0xc6000005
  mov x9, x0
""")
    assert r.x(10) == M1  # MAP before ENROLL
    assert r.x(11) == 0 and r.x(12) == 0  # ENROLL, idempotent
    assert r.x(13) == M1  # misaligned
    assert r.x(14) == M1  # overlaps RAM
    assert r.x(15) == 0  # last granule below 2^40
    assert r.x(16) == M1  # at the limit
    assert r.x(17) == 0 and r.x(18) == 0  # MAP, and again
    assert r.x(19) == 0  # UNMAP rounds down: one UNMAP removes it
    assert r.x(9) == M1  # so a second UNMAP fails
    assert any("misaligned" in w for w in r.machine.vm.warnings)


def test_granule_and_ipa_bits(run_asm: Callable) -> None:
    body = """
  hcall 0xc6000002
  mov x10, x0
  hcall 0xc6000003
  ldr x1, =0x09000000
  hcall 0xc6000004
  mov x11, x0
  ldr x1, =0x09001000
  hcall 0xc6000004
  mov x12, x0
  ldr x1, =0xffff0000
  hcall 0xc6000004
  mov x13, x0
  ldr x1, =0x100000000
  hcall 0xc6000004
  mov x14, x0
"""
    r = run_asm(body, granule=65536, ipa_bits=32)
    assert r.x(10) == 65536
    assert r.x(11) == 0 and r.x(12) == M1
    assert r.x(13) == 0 and r.x(14) == M1


def test_guard_abort_from_el1(run_asm: Callable) -> None:
    r = run_asm(ENROLL + """
  ldr x1, =0x09000000
  ldr w5, [x1, #0x18]
  ldr x1, =0x09010000
  ldr x6, =0x1111
aborted:
  ldr w6, [x1]
  mov x7, x25
  str w6, [x1]
""")
    assert r.outcome.status is ExitStatus.OFF
    assert r.x(5) == 0x90  # UARTFR through a mapped granule
    assert r.x(20) == 0x96000010
    assert r.x(21) == RTC
    assert r.x(23) & 0x3FF == 0x3C5  # SPSR: EL1h, DAIF masked
    assert r.x(24) == 0x200
    assert r.x(6) == 0x1111  # the aborted load did not write its register
    assert r.x(7) == 1 and r.x(25) == 2
    exc = r.trace.of("exception")
    assert [e["esr"] for e in exc] == [0x96000010, 0x96000010]
    assert exc[0]["elr"] == r.x(22) - 4 * 2 or True
    mmio = [e for e in r.trace.of("mmio") if e["addr"] == RTC]
    assert all(e["verdict"] == "abort_unmapped" for e in mmio)


def test_guard_abort_from_el0(run_asm: Callable) -> None:
    r = run_asm(ENROLL + """
  adr x9, el0
  msr elr_el1, x9
  msr spsr_el1, xzr
  ldr x9, =0x40060000
  msr sp_el0, x9
  eret
el0:
  ldr x1, =0x09010000
  ldr w6, [x1]
  mov x10, x20
  mov x11, x24
  mov x12, x23
  svc #0xff
  mov x13, x20
""")
    assert r.outcome.status is ExitStatus.OFF
    assert r.x(10) == 0x92000010
    assert r.x(11) == 0x400
    assert r.x(12) & 0xF == 0  # SPSR says EL0t
    assert r.x(13) == 0x560000FF


def test_isv0_on_mapped_granule_aborts_after_enrollment(run_asm: Callable) -> None:
    r = run_asm(ENROLL + """
  ldr x1, =0x09000000
  ldr x4, =0x44
  ldp w4, w5, [x1, #0x18]
  mov x10, x20
  ldr w6, [x1, #0x18]!
  mov x11, x1
""")
    assert r.x(10) == 0x96000010
    assert r.x(4) == 0x44
    assert r.x(11) == UART  # writeback did not happen
    assert r.x(25) == 2


def test_nisv_stop_before_enrollment(run_asm: Callable) -> None:
    r = run_asm("""
  ldr x1, =0x09000000
  ldp w4, w5, [x1, #0x18]
""")
    assert r.outcome.status is ExitStatus.GUEST
    assert r.outcome.reason == "nisv"
    assert "ldp w4, w5, [x1, #0x18]" in r.outcome.report
    assert "0x9000018" in r.outcome.report and "not enrolled" in r.outcome.report


def test_nisv_emulate(run_asm: Callable) -> None:
    r = run_asm("""
  ldr x1, =0x09010fe0
  ldp w4, w5, [x1]
  ldr w6, [x1], #4
  mov x8, x1
  ldrsb x7, [x1, #0x18]
  hcall 0xc6000003
  mov x10, x0
""", nisv=NisvPolicy.EMULATE)
    assert r.outcome.status is ExitStatus.OFF
    assert (r.x(4), r.x(5)) == (0x31, 0x10)
    assert r.x(6) == 0x31 and r.x(8) == 0x09010FE4
    assert r.x(7) == (0xB1 - 0x100) & M1
    assert r.x(10) == 0


def test_nisv_user_injects_abort_and_refuses_enroll(run_asm: Callable) -> None:
    r = run_asm("""
  ldr x1, =0x09000000
  ldp w4, w5, [x1, #0x18]
  mov x10, x20
  hcall 0xc6000003
  mov x11, x0
""", nisv=NisvPolicy.USER)
    assert r.x(10) == 0x96000010
    assert r.x(11) == M1
    assert r.trace.of("nisv")


def test_sign_extension_and_8_byte_device_reads(run_asm: Callable) -> None:
    r = run_asm(ENROLL + """
  ldr x1, =0x09000000
  ldrsb w4, [x1, #0xff4]
  ldrsb x5, [x1, #0xffc]
  ldrsh x6, [x1, #0xffc]
  ldr x7, [x1, #0xfe0]
""")
    assert r.x(4) == 0xFFFFFFF0
    assert r.x(5) == 0xFFFFFFFFFFFFFFB1
    assert r.x(6) == 0xB1
    assert r.x(7) == 0x10_0000_0011


def test_unassigned_policies(run_asm: Callable) -> None:
    body = """
  ldr x1, =0x0a000000
  ldr x6, =0x77
  ldr w6, [x1]
  str w6, [x1]
"""
    raz = run_asm(body)
    assert raz.outcome.status is ExitStatus.OFF and raz.x(6) == 0
    assert len(raz.warnings) == 1 and "0xa000000" in raz.warnings[0]
    abort = run_asm(body, unassigned=UnassignedPolicy.ABORT)
    assert abort.x(20) == 0x96000010 and abort.x(6) == 0x77 and abort.x(25) == 2
    stop = run_asm(body, unassigned=UnassignedPolicy.STOP)
    assert stop.outcome.status is ExitStatus.GUEST and "0xa000000" in stop.outcome.report


def test_enrolled_access_to_unmapped_unassigned_space_aborts(run_asm: Callable) -> None:
    r = run_asm(ENROLL + """
  ldr x1, =0x0a000000
  ldr w6, [x1]
  mov x10, x20
  mov x11, x21
""")
    assert r.x(10) == 0x96000010 and r.x(11) == 0x0A000000


def test_instruction_fetch_outside_memory(run_asm: Callable) -> None:
    r = run_asm("""
  ldr x9, =0x0a000000
  blr x9
  mov x10, x20
  mov x11, x21
  ldr x9, =0x09000000
  blr x9
  mov x12, x20
  mov x13, x21
""")
    assert r.x(10) == 0x86000010 and r.x(11) == 0x0A000000
    assert r.x(12) == 0x86000010 and r.x(13) == UART


def test_synchronous_exceptions(run_asm: Callable) -> None:
    r = run_asm("""
  brk #0x42
  mov x10, x20
  mov x11, x22
  svc #0x7
  mov x12, x20
  udf #0
  mov x13, x20
""")
    assert r.x(10) == 0xF2000042
    assert r.x(12) == 0x56000007
    assert r.x(13) == 0x02000000


def test_exception_loop_is_stopped(run_asm: Callable) -> None:
    r = run_asm("""
  ldr x9, =0x0a000000
  msr vbar_el1, x9
  brk #1
""")
    assert r.outcome.status is ExitStatus.GUEST
    assert r.outcome.reason == "exception-loop"


def test_reset_clears_guard_and_no_reboot(run_asm: Callable) -> None:
    body = """
  ldr x1, =0x09010000
  ldr w10, [x1, #8]
  cbnz w10, second
  mov w2, #1
  str w2, [x1, #8]
  hcall 0xc6000003
  hcall 0x84000009
second:
  ldr x1, =0x09000000
  hcall 0xc6000004
  mov x11, x0
"""
    r = run_asm(body)
    assert r.outcome.status is ExitStatus.OFF and r.outcome.resets == 1
    assert r.x(11) == M1  # enrollment did not survive the reset


def test_limits(run_asm: Callable) -> None:
    r = run_asm("  b .", max_insns=100_000)
    assert r.outcome.status is ExitStatus.LIMIT


def test_wfi_without_interrupts_stops(run_asm: Callable) -> None:
    r = run_asm("  wfi")
    assert r.outcome.status is ExitStatus.GUEST and r.outcome.reason == "wfi-forever"


def test_audit_mode_records_missing_maps(run_asm: Callable) -> None:
    r = run_asm(ENROLL + """
  ldr x1, =0x09010000
  ldr w6, [x1]
  ldr w6, [x1]
  mov x10, x25
""", guard_mode=GuardMode.AUDIT)
    assert r.x(10) == 0
    finding = r.machine.vm.guard.audit[RTC]
    assert finding.count == 2


def test_profiles_exist() -> None:
    assert set(PROFILES) == {"kvm-v2", "pkvm", "linux", "none"}
    assert PROFILES["none"].feature_bitmap() == 1  # discovery only: nothing to enroll in


def test_device_access_pc_is_exact_after_an_exception(run_asm: Callable) -> None:
    # Regression: exception entry performed inside a Unicorn hook left later blocks without
    # PC synchronisation, so device callbacks saw the PC of an earlier instruction.
    r = run_asm("""
  brk #1
  adr x3, dev
  ldr x1, =0x09000000
  ldr x9, [x3]
  add x9, x9, #0x18
device_load:
  ldr w9, [x9]
  ldr w10, [x1, #0x18]
  b off
.balign 8
dev: .quad 0x09000000
""")
    assert r.outcome.status is ExitStatus.OFF
    pcs = [e["pc"] for e in r.trace.of("mmio")]
    assert len(pcs) == 2 and pcs[1] == pcs[0] + 4
    assert r.x(9) == 0x90 and r.x(10) == 0x90


def test_hvc_and_smc_from_el0_are_undefined(run_asm: Callable) -> None:
    r = run_asm("""
  adr x9, el0
  msr elr_el1, x9
  msr spsr_el1, xzr
  ldr x9, =0x40060000
  msr sp_el0, x9
  eret
el0:
  hvc #0
  mov x10, x20
  .inst 0xd4000003
  mov x11, x20
  svc #0xff
""")
    assert r.outcome.status is ExitStatus.OFF
    assert r.x(10) == 0x02000000 and r.x(11) == 0x02000000


def test_device_model_exception_stops_the_vm(
    run_asm: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmioguard.vmm.devices.pl011 import Pl011

    def broken(self: Pl011, offset: int, size: int) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(Pl011, "read", broken)
    r = run_asm("""
  ldr x1, =0x09000000
  ldr w2, [x1, #0x18]
""")
    assert r.outcome.status is ExitStatus.GUEST
    assert r.outcome.reason == "vmm-error"
    assert "RuntimeError: boom" in r.outcome.report


def test_timeout(asm_cache: Path) -> None:
    import asmguest
    from conftest import ListTracer
    from mmioguard.vmm.virt import MachineOptions, VirtMachine

    elf = asmguest.build("  b .", asm_cache)
    machine = VirtMachine(MachineOptions(image=str(elf), timeout=0.3), bytearray().extend,
                          print, ListTracer())
    outcome = machine.run()
    assert outcome.status is ExitStatus.LIMIT and "timeout" in outcome.reason


# -- the guard's abort on the production path (untraced: the C and Python fast paths) --------

# Into EL0 (SP_EL0 = 0x40060000) or EL1t (SPSel 0, the same stack), from EL1h.
TO_ORIGIN = {
    "el1h": "",
    "el1t": """
  ldr x9, =0x40060000
  msr sp_el0, x9
  msr spsel, #0
""",
    "el0": """
  adr x9, 1f
  msr elr_el1, x9
  msr spsel, #1
  msr spsr_el1, xzr
  ldr x9, =0x40060000
  msr sp_el0, x9
  eret
1:
""",
}
# (ESR, SPSR mode bits, vector offset) of an abort taken from each origin.
ORIGIN_ABORT = {
    "el1h": (0x96000010, 0x5, 0x200),
    "el1t": (0x96000010, 0x4, 0x000),
    "el0": (0x92000010, 0x0, 0x400),
}

GUARD_ABORTS = ENROLL + """
  ldr x1, =0x09010000
  ldr x5, =0x09010000
  mov x3, #2
  ldr x2, =0x2222
  ldr x6, =0x6666
  ldr x7, =0x09000000
  mov x8, #2
""" + "{origin}" + """
again:
a1:
  ldr w2, [x1]
  mov x10, x20
  mov x11, x21
  adr x9, a1
  sub x12, x22, x9
  mov x13, x23
  mov x14, x24
a2:
  str w2, [x1, #8]
  mov x15, x21
  adr x9, a2
  sub x16, x22, x9
  mov x17, x20
a3:
  ldr w5, [x5, #4]
  mov x18, x21
a4:
  ldr w6, [x1, x3, lsl #2]
  mov x19, x21
  adr x9, a4
  sub x27, x22, x9
  ldr w28, [x7, #0x18]
  mov x29, sp
  sub x8, x8, #1
  cbnz x8, again
  svc #0xff
"""


@pytest.mark.parametrize("origin", ["el1h", "el1t", "el0"])
def test_guard_aborts_on_the_production_path(run_asm: Callable, origin: str) -> None:
    """Loads, a store, a load into its own base, a register-offset load, refused from EL1h,
    EL1t and EL0: the exact syndrome, addresses and vector, the registers put back. Untraced
    and twice over: with the native path the first round decodes (Python) and C decides and
    enters the second; without it Python's fast path and _mmio_slow do both (the same
    expectations: a differential test)."""
    r = run_asm(GUARD_ABORTS.format(origin=TO_ORIGIN[origin]), traced=False)
    assert r.outcome.status is ExitStatus.OFF, r.outcome.report
    esr, mode, vector = ORIGIN_ABORT[origin]
    assert (r.x(10), r.x(11), r.x(12)) == (esr, RTC, 0)
    assert r.x(13) & 0x3FF == 0x3C0 | mode if origin != "el0" else r.x(13) & 0x3FF == 0
    assert r.x(14) == vector
    assert (r.x(15), r.x(16), r.x(17)) == (RTC + 8, 0, esr)  # a store: no WnR in this ESR
    assert r.x(5) == RTC and r.x(18) == RTC + 4  # the base register put back, FAR from it
    assert r.x(2) == 0x2222 and r.x(6) == 0x6666  # aborted loads did not write
    assert (r.x(19), r.x(27)) == (RTC + 8, 0)
    assert r.x(28) == 0x90  # the mapped UART still answers
    if origin != "el1h":
        assert r.x(29) == 0x40060000  # SP_EL0 banked and given back by ERET
    assert r.x(25) == 9  # four aborts twice and the SVC
    native = r.machine.backends[0]._native_vcpu
    if native is not None:
        s = native.stats()
        assert (s.mmio_abort, s.abort_enter, s.mmio_escape) == (4, 4, 5)
    assert r.machine.vm.vcpus[0].exceptions_injected == 9


def _final_state(run: Run) -> dict[str, int]:
    from mmioguard.hyp.backend import Reg

    backend = run.machine.backends[0]
    state = {f"x{n}": v for n, v in enumerate(backend.gprs())}
    for reg in (Reg.PC, Reg.SP, Reg.SP_EL0, Reg.SP_EL1, Reg.PSTATE, Reg.ELR_EL1,
                Reg.SPSR_EL1, Reg.ESR_EL1, Reg.FAR_EL1):
        state[reg.name] = backend.get(reg)
    return state


@pytest.mark.parametrize("origin", ["el1h", "el1t", "el0"])
def test_native_abort_entry_is_python_entry(asm_cache: Path, origin: str) -> None:
    """The registers after the guard's abort, entered in C and in Python, are identical. The
    refused load runs once from EL1h (decoded: the native path knows it), then from the
    origin with a vector table that powers off at once, so the final state is the entry's;
    every register it writes is compared."""
    import asmguest
    from conftest import run_image

    body = ENROLL + """
  ldr x1, =0x09010000
  ldr x2, =0x2222
  bl access
  adr x9, stop_vectors
  msr vbar_el1, x9
  isb
  mov x9, #0xf0000000
  msr nzcv, x9
  add x1, x1, #0x20
""" + TO_ORIGIN[origin] + """
  bl access
  b off
access:
  ldr w2, [x1, #0x10]
  ret
.balign 2048
stop_vectors:
  .rept 16
  .balign 0x80
  b off
  .endr
"""
    image = asmguest.build(body, asm_cache)
    native = run_image(str(image), native=True, traced=False)
    python = run_image(str(image), native=False, traced=False)
    assert native.outcome.status is ExitStatus.OFF and python.outcome.status is ExitStatus.OFF
    n, p = _final_state(native), _final_state(python)
    for state in (n, p):
        state.pop("x0")  # SYSTEM_OFF's function ID and its result
    assert n == p
    # A FAR unlike the first abort's: no exception-loop bookkeeping sends it to Python.
    assert n["FAR_EL1"] == RTC + 0x30 and n["ESR_EL1"] == ORIGIN_ABORT[origin][0]
    assert n["x2"] == 0x2222
    assert native.machine.backends[0]._native_vcpu.stats().abort_enter == 1


MMU_ON = """
  adr x9, l1table
  msr ttbr0_el1, x9
  mov x9, #0xff
  msr mair_el1, x9
  ldr x9, =0x200803519
  msr tcr_el1, x9
  isb
  mrs x9, sctlr_el1
  orr x9, x9, #1
  orr x9, x9, #(1 << 2)
  orr x9, x9, #(1 << 12)
  bic x9, x9, #2
  msr sctlr_el1, x9
  isb
  b 1f
.balign 4096
l1table:
  .quad 0x00000701
  .quad 0x40000701
  .fill 510, 8, 0
1:
"""


@pytest.mark.parametrize("mmu", [True, False], ids=["mmu-on", "mmu-off"])
def test_split_access_at_a_granule_edge_is_decided_whole(
    run_asm: Callable, monkeypatch: pytest.MonkeyPatch, mmu: bool
) -> None:
    """MMU on, the device space mapped Normal (so unaligned accesses are not alignment
    faults): a 4-byte load two bytes before the end of the mapped UART granule is split by
    Unicorn into aligned pieces at 0x09000ffc (the UART, mapped) and 0x09001000 (unmapped). The
    first piece alone fits a mapped granule; the access as a whole is refused, so the device
    must not be read before the abort (it was, on both fast paths, before they checked it).
    Twice: the second time the native path knows the instruction and decides in C. Unicorn
    splits it the same way with the MMU off (it raises no alignment fault for Device memory)."""
    from mmioguard.vmm.devices.pl011 import Pl011

    reads: list[int] = []
    real_read = Pl011.read

    def recording(self: Pl011, offset: int, size: int) -> int:
        reads.append(offset)
        return real_read(self, offset, size)

    monkeypatch.setattr(Pl011, "read", recording)
    r = run_asm((MMU_ON if mmu else "") + ENROLL + """
  ldr x1, =0x09000000
  ldr w4, [x1, #0x18]
  ldr x1, =0x09000ffe
  ldr x6, =0x6666
  bl split
  bl split
  mov x10, x20
  mov x11, x21
  ldr x1, =0x0a000000
  bl unassigned
  bl unassigned
  mov x12, x20
  mov x13, x21
  b off
split:
  ldr w6, [x1]
  ret
unassigned:
  ldr w7, [x1, #4]
  ret
""", traced=False)
    assert r.outcome.status is ExitStatus.OFF, r.outcome.report
    assert r.x(4) == 0x90  # the mapped UART answers
    assert (r.x(10), r.x(11)) == (0x96000010, UART + 0xFFE)
    assert r.x(6) == 0x6666
    assert reads == [0x18]  # 0xffc never reached the device, decoded or not
    # An unassigned address: with the MMU on the walk is Python's, the abort the same; with it
    # off C decides the second fault.
    assert (r.x(12), r.x(13)) == (0x96000010, 0x0A000004)
    assert r.x(25) == 4
    native = r.machine.backends[0]._native_vcpu
    if native is not None:
        assert native.stats().mmio_abort == 0
        # MMU off, C also records the fault of the split load's second piece, after Python
        # refused the first (the record is dropped: Python's request wins), and the
        # unassigned load's second fault (taken by Python: a repeat's start).
        assert native.stats().fault_abort == (0 if mmu else 3)
        assert native.stats().abort_enter == 0
