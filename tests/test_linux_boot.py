"""Upstream Linux 6.12 (CONFIG_ARM_PKVM_GUEST) as a real MMIO guard client.

Boots the project's kernel and /init (built from Debian's linux-source package and cached; the
first build takes minutes) under each profile and checks, line by line, what the guest printed
and what the hypervisor recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mmioguard.linux import build

pytestmark = pytest.mark.slow

GIC_PAGES = {0x0800_0000 + 0x1000 * i for i in range(32)}  # distributor + CPU interface
UART_PAGE = 0x0900_0000
RTC_PAGE = 0x0901_0000
DEVMEM_VA = "0x200000000"


@pytest.fixture(scope="module")
def kernel() -> Path:
    missing = build._missing_packages(build.REQUIRED_PACKAGES)
    if missing and os.geteuid() != 0:
        pytest.skip(f"needs root to install {' '.join(missing)}")
    image = build.build_kernel()
    build.build_initramfs()
    return image


@dataclass
class Boot:
    status: int
    out: str
    err: str
    events: list[dict[str, Any]]

    def lines(self) -> list[str]:
        return self.out.splitlines()

    def calls(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "hvc" and e["name"] == name]


def boot(tmp_path: Path, *options: str) -> Boot:
    trace = tmp_path / "trace.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "mmioguard.cli", "linux", "--no-reboot", "--timeout", "300",
         "--trace", str(trace), *options],
        capture_output=True,
        text=True,
        check=False,
        timeout=400,
    )
    events = [json.loads(line) for line in trace.read_text().splitlines()] if trace.exists() else []
    return Boot(result.returncode, result.stdout, result.stderr, events)


def expect_in_order(lines: list[str], wanted: list[str]) -> None:
    """Each wanted fragment appears in a later line than the previous one."""
    at = 0
    for fragment in wanted:
        for i in range(at, len(lines)):
            if fragment in lines[i]:
                at = i + 1
                break
        else:
            raise AssertionError(f"{fragment!r} not found after line {at}:\n" + "\n".join(lines))


@pytest.mark.parametrize("path", ["native", "python"])
def test_linux_enrolls_maps_its_devices_and_gets_sigbus(
    kernel: Path, tmp_path: Path, path: str
) -> None:
    r = boot(tmp_path, *(["--no-native"] if path == "python" else []))
    assert r.status == 0, r.err
    expect_in_order(
        r.lines(),
        [
            "Machine model: linux,dummy-virt",
            "smccc: KVM: hypervisor services detected",
            "arch_timer: cp15 timer(s) running at 62.50MHz (virt).",
            "ttyAMA0 at MMIO 0x9000000",
            "rtc-pl031 9010000.pl031: registered as rtc0",
            "Run /init as init process",
            "init: mmioguard initramfs /init started as pid 1",
            "init: RTC /dev/rtc0 reads ",
            f"init: mapped physical 0x0a000000 at {DEVMEM_VA} through /dev/mem",
            f"init: SIGBUS at {DEVMEM_VA} (si_code 3): the hypervisor refused the access",
            "init: syncing and powering off",
            "reboot: Power down",
        ],
    )
    assert "reached the VMM" not in r.out

    meminfo = r.calls("HYP_MEMINFO")
    assert len(meminfo) == 1 and meminfo[0]["ok"]
    assert meminfo[0]["symbol"].startswith("pkvm_init_hyp_services+")

    guard = r.calls("MMIO_GUARD")
    assert all(c["ok"] for c in guard)
    pages = [int(c["args"][0], 16) for c in guard]
    assert set(pages) == GIC_PAGES | {UART_PAGE, RTC_PAGE}
    # Each GIC page once; the UART and RTC pages twice (the AMBA bus maps them to read the
    # peripheral ID, then the driver maps them again).
    assert sorted(pages) == sorted([*GIC_PAGES, UART_PAGE, UART_PAGE, RTC_PAGE, RTC_PAGE])
    for call in guard:
        assert call["callers"][0].startswith("mmio_guard_ioremap_hook+"), call
    gic_callers = {
        c["callers"][3].split("+")[0] for c in guard if int(c["args"][0], 16) in GIC_PAGES
    }
    assert gic_callers == {"gic_of_setup"}
    rtc = [c for c in guard if int(c["args"][0], 16) == RTC_PAGE]
    assert any("pl031_probe" in " ".join(c["callers"]) for c in rtc)

    # The /dev/mem touch: one guard abort, from EL0, at the mapped address.
    aborts = [e for e in r.events if e["event"] == "exception" and e["why"] == "guard abort"]
    assert len(aborts) == 1
    assert aborts[0]["from_el0"] is True and aborts[0]["far"] == DEVMEM_VA
    assert aborts[0]["esr"] == "0x92000010"  # data abort from EL0, external, ISV=0
    assert "the guard aborted 1 device access(es)" in r.err
    assert r.events[-1]["event"] == "stop" and r.events[-1]["status"] == 0


def test_the_same_kernel_without_the_guard_reaches_the_device(
    kernel: Path, tmp_path: Path
) -> None:
    r = boot(tmp_path, "--profile", "none")
    assert r.status == 0, r.err
    expect_in_order(
        r.lines(),
        [
            "Run /init as init process",
            f"init: mapped physical 0x0a000000 at {DEVMEM_VA} through /dev/mem",
            "init: read 0x00000000 from 0x0a000000: the access reached the VMM",
            "reboot: Power down",
        ],
    )
    assert r.calls("HYP_MEMINFO") == [] and r.calls("MMIO_GUARD") == []
    assert "unassigned device space at 0xa000000" in r.err
    assert "guard aborted" not in r.err


def test_under_the_seed_abi_mem_share_is_enroll_and_the_kernel_dies(
    kernel: Path, tmp_path: Path
) -> None:
    """kvm-v2 numbers its calls 2..5 like the later ABIs: the 6.12 client takes INFO for
    HYP_MEMINFO and calls MEM_SHARE (= ENROLL) for its DMA pool, then never maps a device:
    the first GIC access after that is aborted, as a real kvm-v2 host would do."""
    r = boot(tmp_path, "--profile", "kvm-v2")
    assert r.status == 0, r.err  # the kernel panics and asks for a reset (--no-reboot)
    enroll = r.calls("MMIO_GUARD_ENROLL")
    assert enroll and enroll[0]["callers"][0].startswith("pkvm_set_memory_decrypted+")
    assert r.calls("MMIO_GUARD_MAP") == []
    assert "Run /init" not in r.out
    assert "(gic_handle_irq+" in r.err and "the guard aborted" in r.err


def test_icount_gives_the_same_output_twice(kernel: Path, tmp_path: Path) -> None:
    first = boot(tmp_path, "--icount", "3")
    second = boot(tmp_path, "--icount", "3")
    assert first.status == second.status == 0
    assert "init: RTC /dev/rtc0 reads 2000-01-01 00:00:00 UTC" in first.out
    assert first.out == second.out


def test_two_vcpus_boot_and_the_guard_holds(kernel: Path, tmp_path: Path) -> None:
    r = boot(tmp_path, "--smp", "2")
    assert r.status == 0, r.err
    expect_in_order(
        r.lines(),
        [
            "CPU1: Booted secondary processor 0x0000000001",
            "smp: Brought up 1 node, 2 CPUs",
            "Run /init as init process",
            f"init: SIGBUS at {DEVMEM_VA} (si_code 3): the hypervisor refused the access",
            "reboot: Power down",
        ],
    )
    # Both CPUs' GIC CPU interface page is the same frame: still mapped once per page.
    pages = [int(c["args"][0], 16) for c in r.calls("MMIO_GUARD")]
    assert set(pages) == GIC_PAGES | {UART_PAGE, RTC_PAGE}
