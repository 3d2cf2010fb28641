"""Code one vCPU patches, another vCPU runs (Linux's alternatives and static keys).

Each vCPU is its own Unicorn engine over shared RAM: an engine does not notice stores another
engine makes to code it has translated. The guest's instruction cache invalidation is what
tells the hypervisor (Linux 6.12 on two vCPUs kept running fpsimd_thread_switch's unpatched
early return and oopsed in fpsimd_save_state when a task changed CPU).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mmioguard.hyp.backend import Reg
from mmioguard.vmm.virt import ExitStatus

# vCPU 1 runs `patched` once (its emulator translates it), then waits; vCPU 0 rewrites its
# first instruction through the architecture's sequence for modified code (DC CVAU, DSB,
# IC IVAU, DSB, ISB) and lets vCPU 1 run it again. vCPU 0 runs it before and after too.
PATCH_BODY = """
  adr x19, flags
  bl patched
  mov x12, x0
  mov x1, #1
  adr x2, secondary
  mov x3, #0
  hcall 0xc4000003
wait_first:
  ldr x0, [x19]
  cbz x0, wait_first
  adr x1, patched
  ldr w2, =0xd2800040
  str w2, [x1]
  dc cvau, x1
  dsb ish
  {invalidate}
  add x14, x14, #1
  dsb ish
  isb
  bl patched
  mov x10, x0
  mov x0, #1
  str x0, [x19, #8]
wait_second:
  ldr x11, [x19, #16]
  cbz x11, wait_second
  ldr x13, [x19]
  b off
secondary:
  adr x19, flags
  bl patched
  str x0, [x19]
wait_go:
  ldr x0, [x19, #8]
  cbz x0, wait_go
  isb
  bl patched
  str x0, [x19, #16]
  hcall 0x84000002
patched:
  mov x0, #1
  ret
.balign 8
flags: .quad 0, 0, 0
"""


@pytest.mark.parametrize("invalidate", ["ic ivau, x1", "ic iallu", "ic ialluis"])
def test_code_patched_by_one_vcpu_runs_patched_on_the_other(
    run_asm: Callable, invalidate: str
) -> None:
    r = run_asm(PATCH_BODY.format(invalidate=invalidate), smp=2)
    assert r.outcome.status is ExitStatus.OFF, r.outcome
    assert r.x(14) == 1  # the stop after the IC is clean: nothing skipped or run twice
    assert r.x(12) == 1 and r.x(13) == 1  # both ran the original first
    assert r.x(10) == 2  # the patching vCPU runs the new instruction
    assert r.x(11) == 2  # and so does the other one (it had translated the old one)


# One vCPU, MMU on: the code is rewritten through an alias that is not executable (as Linux
# writes its text through the linear map), then invalidated by that alias's address, which the
# hypervisor translates and drops by physical address with stage 1 off for the call. Unicorn
# notices this store by itself (it passes without the hypervisor's help): the test covers the
# MMU-on path of the invalidation, the regression is the two-vCPU test above.
ALIAS_BODY = """
  ldr x1, =0x40100000
  ldr x2, =0x401
  str x2, [x1]
  ldr x2, =0x40000705
  str x2, [x1, #8]
  ldr x2, =0x60000040000705
  str x2, [x1, #16]
  ldr x2, =0xff00
  msr mair_el1, x2
  ldr x2, =0x800019
  msr tcr_el1, x2
  msr ttbr0_el1, x1
  isb
  mrs x2, sctlr_el1
  orr x2, x2, #1
  msr sctlr_el1, x2
  isb
  adr x1, patched
  mov x3, #0x40000000
  add x1, x1, x3
  ldr w4, [x1]
  bl patched
  mov x12, x0
  ldr w2, =0xd2800040
  str w2, [x1]
  dc cvau, x1
  dsb ish
  ic ivau, x1
  dsb ish
  isb
  bl patched
  mov x10, x0
  b off
.balign 4096
patched:
  mov x0, #1
  ret
"""


def test_code_patched_through_a_non_executable_alias(run_asm: Callable) -> None:
    # Stage 1: VA 0 GiB -> devices, VA 1 GiB -> RAM (identity), VA 2 GiB -> the same RAM
    # with PXN and UXN; 39-bit VAs, 4 KiB granule, one level-1 table of 1 GiB blocks.
    r = run_asm(ALIAS_BODY)
    assert r.outcome.status is ExitStatus.OFF, r.outcome
    assert r.x(12) == 1
    assert r.x(10) == 2
    assert r.machine.backends[0].get(Reg.SCTLR_EL1) & 1  # the MMU is back on
