"""The guest SDK's own guests, run on the hypervisor: every TAP line must be ok."""

from __future__ import annotations

import pytest

from conftest import run_image
from mmioguard.guests.build import build_guest
from mmioguard.hyp.timer import ClockConfig, ClockMode
from mmioguard.vmm.virt import ExitStatus


def tap_failures(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("not ok")]


def test_sanity_guest_passes() -> None:
    # 64K stage-1 tables do not translate under Unicorn 2.1.4 (docs/unicorn.md): 4K only.
    elf = build_guest("sanity", defines={"EXPECT_GUARD": 1, "MMU_GRANULES": 1})
    r = run_image(str(elf))
    out = r.output.decode()
    assert r.outcome.status is ExitStatus.OFF
    assert not tap_failures(out), out
    assert out.rstrip().endswith("PASS"), out


def test_guard_client_unit_guest_passes() -> None:
    r = run_image(str(build_guest("guardunit")))
    out = r.output.decode()
    assert not tap_failures(out) and out.rstrip().endswith("PASS"), out


@pytest.mark.parametrize("granule", [4096, 16384, 65536])
def test_example_guest_with_each_granule(granule: int) -> None:
    elf = build_guest("example", defines={"PAGE_SIZE": granule})
    r = run_image(str(elf), granule=granule)
    out = r.output.decode()
    assert f"MMIO guard enrolled, granule {granule} bytes" in out
    assert "ESR_EL1=0x96000010 FAR_EL1=0x09010000" in out
    assert "destination register unchanged (0xdeadbeef)" in out


def test_example_guest_refuses_mismatched_granule() -> None:
    r = run_image(str(build_guest("example")), granule=65536)
    assert "MMIO guard not available" in r.output.decode()
    assert not r.machine.vm.guard.enrolled


def test_uart_output_through_c_is_the_same_as_through_python() -> None:
    """Untraced, C answers UARTFR and buffers UARTDR: the bytes, their order and the lines
    the console gets are those of the pure-Python model."""
    elf = str(build_guest("sanity", defines={"EXPECT_GUARD": 1, "MMU_GRANULES": 1}))
    # The guest prints the RTC: deterministic time, or a second may pass between the runs.
    clock = ClockConfig(ClockMode.ICOUNT, 3)
    native = run_image(elf, traced=False, clock=clock)
    pure = run_image(elf, traced=False, native=False, clock=clock)
    fast = native.machine.uart._fast
    assert fast is not None and fast.total > 0  # the output did go through C
    assert pure.machine.uart._fast is None
    assert native.output == pure.output and native.output.rstrip().endswith(b"PASS")
