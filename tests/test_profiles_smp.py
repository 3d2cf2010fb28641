"""Later ABI profiles and several vCPUs, from inside guests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mmioguard.abi.profiles import LINUX, PKVM
from mmioguard.hyp.timer import ClockConfig, ClockMode
from mmioguard.vmm.virt import ExitStatus

M1 = 0xFFFF_FFFF_FFFF_FFFF
M3 = (-3) & M1


def test_pkvm_profile_numbers_and_errors(run_asm: Callable) -> None:
    r = run_asm("""
  hcall 0x86000000
  mov x10, x0
  hcall 0xc6000005
  mov x11, x0
  ldr x1, =0x09000000
  hcall 0xc6000007
  mov x12, x0
  hcall 0xc6000006
  ldr x1, =0x09000800
  hcall 0xc6000007
  mov x13, x0
  ldr x1, =0x09000000
  hcall 0xc6000007
  mov x14, x0
  ldr x1, =0x40000000
  hcall 0xc6000003
  mov x15, x0
  ldr x1, =0x09010000
  ldr w6, [x1]
  mov x16, x20
""", profile=PKVM)
    assert r.outcome.status is ExitStatus.OFF
    assert r.x(10) == PKVM.feature_bitmap() == 0xFFD
    assert r.x(11) == 4096
    assert r.x(12) == M3  # MAP before ENROLL: INVALID_PARAMETER
    assert r.x(13) == M3  # misaligned
    assert r.x(14) == 0
    assert r.x(15) == 0  # MEM_SHARE of a RAM granule
    assert r.x(16) == 0x96000010


def test_linux_profile_first_map_enrolls(run_asm: Callable) -> None:
    r = run_asm("""
  hcall 0x86000000
  mov x10, x0
  hcall 0xc6000002
  mov x11, x0
  ldr x1, =0x09000004
  hcall 0xc6000007
  mov x12, x0
  ldr x1, =0x09010000
  ldr w6, [x1]
  mov x13, x25
  ldr x1, =0x09000000
  hcall 0xc6000007
  mov x14, x0
  ldr x1, =0x09010000
  ldr w6, [x1]
  mov x15, x20
  hcall 0xc6000003
  mov x16, x0
""", profile=LINUX)
    assert r.x(10) == LINUX.feature_bitmap() == 0x9D
    assert r.x(11) == 4096
    assert r.x(12) == M1 and r.x(13) == 0  # a failed call does not enroll
    assert r.x(14) == 0 and r.x(15) == 0x96000010
    assert r.x(16) == M1  # MEM_SHARE of a device address (x1 = 0x09010000) fails


def test_four_vcpus_share_the_guard(run_asm: Callable) -> None:
    # vCPU 0 enrolls and starts vCPUs 1..3; each maps, reads and unmaps its own granule of
    # unassigned space and records what it saw in RAM; vCPU 0 waits for all of them.
    r = run_asm("""
  hcall 0xc6000003
  adr x19, results
  mov x20, #1
start_next:
  mov x1, x20
  adr x2, secondary
  mov x3, x20
  hcall 0xc4000003
  str x0, [x19, x20, lsl #3]
  add x20, x20, #1
  cmp x20, #4
  b.ne start_next
wait:
  ldr x0, [x19, #64]
  cmp x0, #3
  b.ne wait
  mov x1, #1
  mov x2, #0
  hcall 0xc4000004
  mov x10, x0
  mov x1, #9
  mov x2, #0
  hcall 0xc4000004
  mov x11, x0
  mov x1, #2
  adr x2, secondary
  hcall 0xc4000003
  mov x12, x0
  ldr x13, [x19, #8]
  b off
secondary:
  mov x21, x0
  adr x19, results
  ldr x1, =0x0a000000
  add x1, x1, x21, lsl #12
  mov x22, x1
  hcall 0xc6000004
  mov x1, x22
  ldr w2, [x1]
  mov x1, x22
  hcall 0xc6000005
  add x23, x19, #64
1:ldxr x3, [x23]
  add x3, x3, #1
  stxr w4, x3, [x23]
  cbnz w4, 1b
  hcall 0x84000002
.balign 8
results: .quad 0,0,0,0,0,0,0,0,0
""", smp=4)
    assert r.outcome.status is ExitStatus.OFF, r.outcome
    assert r.x(13) == 0  # CPU_ON succeeded
    assert r.x(10) in (0, 1)  # ON or OFF, depending on the schedule
    assert r.x(11) == (-2) & M1  # no such MPIDR
    assert r.x(12) == (-4) & M1 or r.x(12) == 0  # ALREADY_ON, or it was already off again
    maps = [e for e in r.trace.of("hvc") if e["name"] == "MMIO_GUARD_MAP"]
    assert sorted(e["vcpu"] for e in maps) == [1, 2, 3]
    assert not r.machine.vm.guard.mapped


def test_check_mair(run_asm: Callable) -> None:
    body = """
  hcall 0xc6000003
  ldr x9, =0xff04
  msr mair_el1, x9
  ldr x1, =0x09000000
  mov x2, #0
  hcall 0xc6000004
  mov x10, x0
  ldr x1, =0x09010000
  mov x2, #1
  hcall 0xc6000004
  mov x11, x0
  ldr x1, =0x09010000
  mov x2, #8
  hcall 0xc6000004
  mov x12, x0
"""
    strict = run_asm(body, check_mair=True)
    assert (strict.x(10), strict.x(11), strict.x(12)) == (0, M1, M1)
    lax = run_asm(body)
    assert (lax.x(10), lax.x(11), lax.x(12)) == (0, 0, 0)


RESET_BODY = """
  ldr x1, =0x09010000
  ldr w10, [x1, #8]
  cbnz w10, second
  mov w2, #1
  str w2, [x1, #8]
{first}
  hcall 0x84000009
second:
  ldr x1, =0x09010000
  ldr w6, [x1]
  mov x11, x25
{second}
"""


def test_reset_per_profile(run_asm: Callable) -> None:
    pkvm = run_asm(RESET_BODY.format(
        first="  hcall 0xc6000006\n  ldr x1, =0x09000000\n  hcall 0xc6000007",
        second="  ldr x1, =0x09000000\n  hcall 0xc6000007\n  mov x12, x0",
    ), profile=PKVM)
    assert pkvm.outcome.resets == 1
    assert pkvm.x(11) == 0  # not enrolled any more: the RTC read reached the device
    assert pkvm.x(12) == M3  # MAP without ENROLL
    linux = run_asm(RESET_BODY.format(
        first="  ldr x1, =0x09000000\n  hcall 0xc6000007",
        second="  mov x12, #0",
    ), profile=LINUX)
    assert linux.outcome.resets == 1 and linux.x(11) == 0
    assert not linux.machine.vm.guard.mapped


def test_no_reboot_ends_the_run(run_asm: Callable) -> None:
    r = run_asm("  hcall 0x84000009", no_reboot=True)
    assert r.outcome.status is ExitStatus.OFF
    assert "--no-reboot" in r.outcome.reason and r.outcome.resets == 0


def test_system_reset2(run_asm: Callable) -> None:
    r = run_asm("""
  ldr x1, =0x09010000
  ldr w10, [x1, #8]
  cbnz w10, second
  mov w2, #1
  str w2, [x1, #8]
  mov x1, #1
  hcall 0xc4000012
  mov x12, x0
  mov x1, #0
  hcall 0xc4000012
second:
""")
    calls = [e for e in r.trace.of("hvc") if e["name"] == "PSCI_SYSTEM_RESET2"]
    assert calls[0]["result"][0] == (-2) & M1  # reset types other than 0 are reserved
    assert calls[1]["exit"] == "SystemEvent"
    assert r.outcome.resets == 1


def test_each_vcpu_reads_its_own_mpidr(run_asm: Callable) -> None:
    # Unicorn ignores writes to MPIDR_EL1, so every instance would read CPU 0: the
    # hypervisor answers MRS MPIDR_EL1 itself (Linux matches it against the device tree).
    r = run_asm("""
  mrs x10, mpidr_el1
  adr x19, seen
  mov x1, #1
  adr x2, secondary
  mov x3, #0
  hcall 0xc4000003
wait:
  ldr x11, [x19]
  cbz x11, wait
  b off
secondary:
  adr x19, seen
  mrs x0, mpidr_el1
  str x0, [x19]
  hcall 0x84000002
.balign 8
seen: .quad 0
""", smp=2)
    assert r.outcome.status is ExitStatus.OFF, r.outcome
    assert r.x(10) == 0x8000_0000
    assert r.x(11) == 0x8000_0001


TIMER_IRQ_BODY = """
  adr x9, irqvec
  msr vbar_el1, x9
  isb
  ldr x1, =0x08000000
  mov w2, #1
  str w2, [x1]
  mov w2, #(1 << 27)
  str w2, [x1, #0x100]
  ldr x3, =0x08010000
  mov w2, #1
  str w2, [x3]
  mov w2, #0xff
  str w2, [x3, #4]
  mov x19, #0
  mrs x10, cntvct_el0
  mov x2, #1000
  msr cntv_tval_el0, x2
  mov x2, #1
  msr cntv_ctl_el0, x2
  msr daifclr, #2
spin:
  cbz x19, spin
  mov x2, #1000
  msr cntv_tval_el0, x2
  mov x2, #1
  msr cntv_ctl_el0, x2
idle:
  msr daifset, #2
  cmp x19, #2
  b.eq done
  wfi
  msr daifclr, #2
  b idle
done:
  mrs x11, cntvct_el0
  mrs x13, cntv_ctl_el0
  msr daifset, #2
  b off
irq_handler:
  ldr w20, [x3, #0xc]
  mov x2, #3
  msr cntv_ctl_el0, x2
  str w20, [x3, #0x10]
  add x19, x19, #1
  mrs x21, spsr_el1
  eret
.balign 2048
irqvec:
  .skip 0x280
  b irq_handler
"""


@pytest.mark.parametrize("icount", [None, 3])
def test_virtual_timer_interrupt_spinning_and_in_wfi(
    run_asm: Callable, icount: int | None
) -> None:
    """CNTV_* (dropped by Unicorn) are emulated; the timer's PPI 27 goes through the GICv2 and
    is taken at VBAR_EL1 + 0x280, once while the guest spins and once after it waited in WFI
    with IRQs masked (WFI wakes on a pending interrupt; the IRQ is taken once it unmasks)."""
    clock = ClockConfig(ClockMode.ICOUNT, icount) if icount is not None else ClockConfig()
    r = run_asm(TIMER_IRQ_BODY, clock=clock, traced=False)
    assert r.outcome.status is ExitStatus.OFF, r.outcome
    assert r.x(19) == 2  # two interrupts taken
    assert r.x(20) == 27  # GICC_IAR: the virtual timer's PPI
    assert r.x(11) - r.x(10) >= 2000  # both deadlines passed on the guest's counter
    assert r.x(13) == 0b111  # enabled, masked by the handler, condition met
    assert r.x(21) & 0xF == 0x5 and not r.x(21) & 0x80  # interrupted at EL1h, IRQs unmasked
    vcpu = r.machine.vm.vcpus[0]
    assert vcpu.interrupts_taken == 2


def test_wfi_with_nothing_armed_stops_the_run(run_asm: Callable) -> None:
    r = run_asm("  wfi\n  b off")
    assert r.outcome.status is ExitStatus.GUEST and r.outcome.reason == "wfi-forever"
