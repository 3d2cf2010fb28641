"""``mmioguard bench``: the hypervisor's cost against a raw-Unicorn floor, side by side.

Every figure comes from one run on one machine: the same guest image (``guests/bench``) runs
under mmioguard and under a floor written here with the Unicorn binding and the least work a
VMM must do (a trivial device callback, a hypercall hook that reads x0 and answers, a fault
that is skipped). Ratios are mmioguard / floor; targets are those of the project's issue.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM
from unicorn import arm64_const as A
from unicorn.unicorn_py3.unicorn import Uc, UcError

from mmioguard.guests.build import build_guest
from mmioguard.hyp.config import VmConfig
from mmioguard.vmm.loader import load_image
from mmioguard.vmm.virt import RAM_BASE, MachineOptions, VirtMachine

MIB = 1 << 20
UART = 0x0900_0000
SYSTEM_OFF = 0x8400_0008
COMPUTE, MEMORY, MMIO, HVC, MAP_UNMAP, ABORT, TOUCH, ABORT_DEVICE = range(1, 9)


@dataclass
class Figure:
    name: str
    unit: str
    mmioguard: float
    floor: float | None
    floor_name: str
    ratio: float | None
    target: float | None
    note: str = ""

    @property
    def ok(self) -> bool | None:
        if self.ratio is None or self.target is None:
            return None
        return self.ratio <= self.target


def _image(bench: int, iterations: int) -> str:
    return str(build_guest("bench", defines={"BENCH": bench, "ITERATIONS": iterations}))


def _run_mmioguard(
    image: str, prepare: Callable[[VirtMachine], None] | None = None, native: bool = True
) -> float:
    machine = VirtMachine(MachineOptions(image=image, vm=VmConfig(), native=native),
                          lambda b: None, lambda w: None)
    if prepare is not None:
        prepare(machine)
    start = time.perf_counter()
    outcome = machine.run()
    elapsed = time.perf_counter() - start
    if outcome.status != 0:
        raise RuntimeError(f"benchmark guest {image} stopped: {outcome.reason} {outcome.report}")
    return elapsed


def _run_raw(image: str) -> float:
    """The floor: the same image on bare Unicorn with the least a VMM must do."""
    loaded = load_image(image, [(RAM_BASE, 128 * MIB, "RAM")], RAM_BASE, None)
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(RAM_BASE, 128 * MIB)
    for seg in loaded.segments:
        uc.mem_write(seg.addr, seg.data)
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (1, 1, 3, 6, 0, (1 << 8) | (1 << 10)))
    uc.mmio_map(UART, 0x1000, lambda uc, off, size, ud: 0x90, None,
                lambda uc, off, size, value, ud: None, None)
    done = [False]

    def intr(uc: Any, number: int, ud: Any) -> None:
        if number == 11:
            if uc.reg_read(A.UC_ARM64_REG_X0) & 0xFFFF_FFFF == SYSTEM_OFF:
                done[0] = True
                uc.emu_stop()
            else:
                uc.reg_write(A.UC_ARM64_REG_X0, 4096)
        else:
            raise RuntimeError(f"raw floor: unexpected exception {number}")

    uc.hook_add(UC_HOOK_INTR, intr)
    pc = loaded.entry
    start = time.perf_counter()
    while not done[0]:
        try:
            uc.emu_start(pc, 0xFFFF_FFFF_FFFF_FFFD)
            pc = uc.reg_read(A.UC_ARM64_REG_PC)
        except UcError:
            # A fault on unmapped memory: skip the instruction and go on.
            pc = uc.reg_read(A.UC_ARM64_REG_PC) + 4
    return time.perf_counter() - start


def _per_op(seconds: float, ops: int) -> float:
    return seconds / ops * 1e6


def _qemu_compute(image: str, empty: str) -> float | None:
    qemu = shutil.which("qemu-system-aarch64")
    if qemu is None:
        return None

    def wall(path: str) -> float:
        start = time.perf_counter()
        subprocess.run(
            [qemu, "-M", "virt", "-cpu", "cortex-a57", "-m", "128", "-nographic",
             "-kernel", path],
            capture_output=True, timeout=300, check=False,
        )
        return time.perf_counter() - start

    return max(wall(image) - wall(empty), 0.0)


LINUX_MARKER = b"Run /init as init process"


def _until_marker(argv: list[str], marker: bytes, timeout: float = 300.0) -> float | None:
    """Wall time from starting ``argv`` until ``marker`` appears on its stdout (then kill it)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen = b""
    try:
        while time.perf_counter() - start < timeout:
            chunk = proc.stdout.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                return None
            seen = seen[-len(marker):] + chunk
            if marker in seen:
                return time.perf_counter() - start
        return None
    finally:
        proc.kill()
        proc.wait()


def _linux_boot() -> list[Figure]:
    """Boot to /init, ours and QEMU TCG's, from process start, same Image and initramfs."""
    from mmioguard.cli import LINUX_BOOTARGS
    from mmioguard.linux.build import build_initramfs, cached_kernel

    image = cached_kernel()
    if image is None:
        print("(Linux boot not measured: build the kernel first with `mmioguard guests linux`)",
              file=sys.stderr)
        return []
    initrd = str(build_initramfs())
    ours_argv = [sys.executable, "-m", "mmioguard.cli", "linux", "--no-reboot"]
    pure_argv = [*ours_argv, "--no-native"]
    qemu = shutil.which("qemu-system-aarch64")
    qemu_argv = [qemu or "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-m", "256",
                 "-nographic", "-monitor", "none", "-no-reboot", "-kernel", str(image),
                 "-initrd", initrd, "-append", LINUX_BOOTARGS]
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(3):  # interleaved, best of three: a busy machine shows in single runs
        t = _until_marker(ours_argv, LINUX_MARKER)
        if t is not None:
            ours.append(t)
        if qemu is not None:
            q = _until_marker(qemu_argv, LINUX_MARKER)
            if q is not None:
                theirs.append(q)
    if not ours:
        return []
    pure = _until_marker(pure_argv, LINUX_MARKER)
    note = f"pure Python {pure:.2f} s" if pure is not None else ""
    best = min(ours)
    if not theirs:
        return [Figure("Linux boot to /init (process start)", "s", best, None, "QEMU not installed",
                       None, None, note)]
    q = min(theirs)
    return [Figure("Linux boot to /init (process start)", "s", best, q, "QEMU TCG", best / q,
                   1.5, note)]


def _peak_rss_mib() -> float:
    """Peak resident size of a run that writes every page of the default 128 MiB of RAM."""
    code = (
        "import resource,sys\n"
        "from mmioguard.bench import _image, _run_mmioguard, TOUCH\n"
        "_run_mmioguard(_image(TOUCH, 1))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=300)
    return int(done.stdout.split()[-1]) / 1024


def measure(quick: bool = False) -> list[Figure]:
    scale = 100 if quick else 1
    n_compute = 100_000_000 // scale
    n_memory = 20_000_000 // scale
    n_mmio = 1_000_000 // scale
    n_hvc = 1_000_000 // scale
    n_map = 100_000 // scale
    n_abort = 50_000 // scale
    figures: list[Figure] = []

    image = _image(COMPUTE, n_compute)
    # Best of three, interleaved: a compute loop is where a busy machine's noise shows most.
    ours = raw = float("inf")
    for _ in range(1 if quick else 3):
        ours = min(ours, _run_mmioguard(image))
        raw = min(raw, _run_raw(image))
    figures.append(Figure("compute loop (4 insns/iteration)", "s", ours, raw, "raw Unicorn",
                          ours / raw, 1.10, f"{4 * n_compute / ours / 1e9:.2f} G insns/s"))
    qemu = _qemu_compute(image, _image(COMPUTE, 1))
    if qemu is not None:
        figures.append(Figure("compute loop under QEMU TCG", "s", ours, qemu, "QEMU TCG",
                              ours / qemu if qemu else None, None))

    image = _image(MEMORY, n_memory)
    ours, raw = _run_mmioguard(image), _run_raw(image)
    figures.append(Figure("RAM load/store loop", "s", ours, raw, "raw Unicorn", ours / raw,
                          None, "PC-sync memory hook cost (docs/unicorn.md)"))

    image = _image(MMIO, n_mmio)
    ours, raw = _run_mmioguard(image), _run_raw(image)
    pure = _run_mmioguard(image, native=False)
    figures.append(Figure("mapped device read (UARTFR)", "us", _per_op(ours, n_mmio),
                          _per_op(raw, n_mmio), "raw mmio_map callback", ours / raw, 1.5))
    figures.append(Figure("  same, pure Python (--no-native)", "us", _per_op(pure, n_mmio),
                          _per_op(raw, n_mmio), "raw mmio_map callback", pure / raw, None))

    image = _image(HVC, n_hvc)
    ours, raw = _run_mmioguard(image), _run_raw(image)
    pure = _run_mmioguard(image, native=False)
    figures.append(Figure("hypercall round trip (INFO)", "us", _per_op(ours, n_hvc),
                          _per_op(raw, n_hvc), "raw HVC hook", ours / raw, 2.0))
    figures.append(Figure("  same, pure Python (--no-native)", "us", _per_op(pure, n_hvc),
                          _per_op(raw, n_hvc), "raw HVC hook", pure / raw, None))

    image = _image(MAP_UNMAP, n_map)

    def premap(count: int) -> Callable[[VirtMachine], None]:
        def prepare(machine: VirtMachine) -> None:
            base = 0x1_0000_0000 >> machine.vm.guard.shift
            for g in range(base, base + count):
                machine.vm.guard.add(g)
        return prepare

    small = _run_mmioguard(image, premap(10))
    large = _run_mmioguard(image, premap(100_000))
    figures.append(Figure("MAP+UNMAP with 100,000 granules mapped", "us",
                          _per_op(large, 2 * n_map), _per_op(small, 2 * n_map),
                          "same with 10 mapped", large / small, 1.5))

    # The guard's abort, both ways it arises: an address where nothing is mapped in Unicorn
    # (the emulator faults) and a device whose granule the guest did not map (the device
    # callback refuses it). Either floor is the same fault-and-restart (nothing is mapped there
    # in the raw engine).
    # Each: fault or refusal, injection, the guest's handler, return.
    for bench, what in ((ABORT, "unassigned address"), (ABORT_DEVICE, "device, granule unmapped")):
        image = _image(bench, n_abort)
        ours, raw = _run_mmioguard(image), _run_raw(image)
        pure = _run_mmioguard(image, native=False)
        figures.append(Figure(f"aborted access ({what})", "us",
                              _per_op(ours, n_abort), _per_op(raw, n_abort),
                              "raw fault-and-restart", ours / raw, 2.0,
                              f"pure Python {_per_op(pure, n_abort):.1f} us"))

    figures += _linux_boot()

    _image(TOUCH, 1)  # built here: a compiler run inside the measured child inflates its RSS
    rss = _peak_rss_mib()
    figures.append(Figure("peak RSS, 128 MiB guest RAM all touched", "MiB", rss, 228.0,
                          "128 MiB + 100 MiB", rss / 228.0, 1.0))
    return figures


def main(json_output: bool = False, quick: bool = False) -> int:
    figures = measure(quick)
    if json_output:
        print(json.dumps([{**asdict(f), "ok": f.ok} for f in figures], indent=2))
        return 0
    print(f"{'measure':<48} {'mmioguard':>12} {'floor':>12} {'ratio':>7} {'target':>7}  floor")
    for f in figures:
        floor = f"{f.floor:.3f}" if f.floor is not None else "-"
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        target = f"{f.target:.2f}x" if f.target is not None else "-"
        mark = {True: "", False: "  OVER TARGET", None: ""}[f.ok]
        print(f"{f.name:<48} {f.mmioguard:>9.3f} {f.unit:<2} {floor:>12} {ratio:>7} "
              f"{target:>7}  {f.floor_name}{mark}{'  (' + f.note + ')' if f.note else ''}")
    if quick:
        print("(--quick: too few iterations to be a measure)")
    return 0



