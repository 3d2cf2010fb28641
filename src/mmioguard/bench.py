"""``mmioguard bench``: the hypervisor's cost against a raw-Unicorn floor, side by side.

Every figure comes from one run on one machine: the same guest image (``guests/bench``) runs
under mmioguard and under a floor written here with the Unicorn binding and the least work a
VMM must do (a trivial device callback, a hypercall hook that reads x0 and answers, a fault
that is skipped). Ratios are mmioguard / floor; targets are those of the project's issue.
"""

from __future__ import annotations

import compileall
import ctypes
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM
from unicorn import arm64_const as A
from unicorn.unicorn_py3.unicorn import Uc, UcError, uclib

from mmioguard.guests.build import build_guest
from mmioguard.hyp.config import VmConfig
from mmioguard.vmm.loader import load_image
from mmioguard.vmm.virt import RAM_BASE, MachineOptions, VirtMachine

MIB = 1 << 20
UART = 0x0900_0000
SYSTEM_OFF = 0x8400_0008
COMPUTE, MEMORY, MMIO, HVC, MAP_UNMAP, ABORT, TOUCH, ABORT_DEVICE, MMIO_PLAIN, PSCI = range(1, 11)


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


def _raw_engine(image: str) -> tuple[Uc, Any]:
    """A bare engine with 128 MiB of RAM, the image loaded, HVC enabled (SCR_EL3.HCE)."""
    loaded = load_image(image, [(RAM_BASE, 128 * MIB, "RAM")], RAM_BASE, None)
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(RAM_BASE, 128 * MIB)
    for seg in loaded.segments:
        uc.mem_write(seg.addr, seg.data)
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (1, 1, 3, 6, 0, (1 << 8) | (1 << 10)))
    return uc, loaded


def _run_raw(image: str) -> float:
    """The floor: the same image on bare Unicorn with the least a VMM must do."""
    uc, loaded = _raw_engine(image)
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


def _run_raw_c(image: str, function: str, n: int) -> float:
    """The C-callback floor: one loop function of the image called on bare Unicorn, every
    device access and hypercall answered by a C function that does nothing (libc's abs)."""
    from mmioguard.vmm.symbols import Symbols

    entry = Symbols.load(image).address(function)
    if entry is None:
        raise RuntimeError(f"{image} has no function {function}")
    uc, _ = _raw_engine(image)
    nothing = ctypes.cast(ctypes.CDLL(None).abs, ctypes.c_void_p)
    uclib.uc_mmio_map(uc._uch, UART, 0x1000, nothing, None, nothing, None)
    hook = ctypes.c_size_t()
    uclib.uc_hook_add(uc._uch, ctypes.byref(hook), UC_HOOK_INTR, nothing, None,
                      ctypes.c_uint64(1), ctypes.c_uint64(0))
    done = RAM_BASE + 128 * MIB - 4  # the loop returns here: emu_start stops on arrival
    uc.reg_write(A.UC_ARM64_REG_X0, n)
    uc.reg_write(A.UC_ARM64_REG_X30, done)
    uc.reg_write(A.UC_ARM64_REG_SP, RAM_BASE + 64 * MIB)
    start = time.perf_counter()
    uc.emu_start(entry, done)
    return time.perf_counter() - start


def _loop_time(bench: int, n: int) -> float:
    """mmioguard's time for n iterations of a loop image, the run of one iteration
    subtracted (best of three of each): the loop alone, as QEMU's is measured."""
    full, empty = _image(bench, n), _image(bench, 1)
    return max(min(_run_mmioguard(full) for _ in range(3))
               - min(_run_mmioguard(empty) for _ in range(3)), 0.0)


def _against_qemu(name: str, ours_bench: int, plain_bench: int, function: str, floor: str,
                  n: int) -> list[Figure]:
    """One loop's time per iteration, fixed costs (boot, translation, power-off) subtracted:
    ours (``ours_bench``), QEMU TCG's on ``plain_bench`` (the same loop without the guard's
    calls), and the raw-Unicorn floor calling ``function`` of it with C callbacks. The
    target is against QEMU where it is installed, else against the floor."""
    ours = _loop_time(ours_bench, n)
    raw_c = min(_run_raw_c(_image(plain_bench, 1), function, n) for _ in range(3))
    qemu = _qemu_loop(plain_bench, n)
    per = _per_op(ours, n)
    figures = []
    if qemu is not None:
        q = _per_op(qemu, n)
        figures.append(Figure(name, "us", per, q, "QEMU TCG, same loop", per / q, 1.5))
    figures.append(Figure(f"  same against raw Unicorn, {floor}", "us", per, _per_op(raw_c, n),
                          f"raw Unicorn, {floor}", ours / raw_c,
                          None if qemu is not None else 1.5))
    return figures


def _qemu_loop(bench: int, n: int) -> float | None:
    """QEMU TCG's time for n iterations of a loop image, start-up subtracted (best of three
    of each, interleaved), or None where QEMU is not installed."""
    if shutil.which("qemu-system-aarch64") is None:
        return None
    full, empty = _image(bench, n), _image(bench, 1)
    return _qemu_compute(full, empty, repeats=3)


def _qemu_compute(image: str, empty: str, repeats: int = 1) -> float | None:
    """QEMU TCG's wall time for ``image`` less that of ``empty`` (its start-up and boot),
    each the best of ``repeats`` runs, interleaved; None where QEMU is not installed."""
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

    full = base = float("inf")
    for _ in range(repeats):
        full = min(full, wall(image))
        base = min(base, wall(empty))
    return max(full - base, 0.0)


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
    # Byte-compiled as an installed package is: with PYTHONDONTWRITEBYTECODE set (or a fresh
    # checkout), every start would compile the sources again (0.15 s here).
    compileall.compile_dir(str(Path(__file__).parent), quiet=2)
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
                          1.10, "no memory hook: device PCs restored (docs/unicorn.md)"))

    # The device read and the hypercall against QEMU TCG running the same loop (the guard's
    # calls left out of its image: QEMU does not answer them), and against the floors.
    figures += _against_qemu("mapped device read (UARTFR), guard on", MMIO, MMIO_PLAIN,
                             "bench_mmio_plain", "C callback", n_mmio * 5)
    image = _image(MMIO, n_mmio)
    raw, pure = _run_raw(image), _run_mmioguard(image, native=False)
    figures.append(Figure("  same, pure Python (--no-native)", "us", _per_op(pure, n_mmio),
                          _per_op(raw, n_mmio), "raw mmio_map, Python callback", pure / raw,
                          None))
    figures += _against_qemu("hypercall round trip (PSCI_VERSION)", PSCI, PSCI,
                             "bench_psci_version", "C hook", n_hvc * 5)

    image = _image(HVC, n_hvc)
    ours, raw = _run_mmioguard(image), _run_raw(image)
    pure = _run_mmioguard(image, native=False)
    figures.append(Figure("hypercall round trip (MMIO_GUARD_INFO)", "us", _per_op(ours, n_hvc),
                          _per_op(raw, n_hvc), "raw HVC hook, Python", ours / raw, 2.0))
    figures.append(Figure("  same, pure Python (--no-native)", "us", _per_op(pure, n_hvc),
                          _per_op(raw, n_hvc), "raw HVC hook, Python", pure / raw, None))

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



