"""Command line: ``mmioguard run|abi|demo|bench``.

The contract (options, exit statuses, stdout carrying only the guest's UART output) is
``shared/spec/virt-machine.md``; bad input exits 2 with one line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from mmioguard.abi.profiles import PROFILES
from mmioguard.hyp.config import GRANULES, GuardMode, NisvPolicy, UnassignedPolicy, VmConfig
from mmioguard.hyp.timer import MAX_ICOUNT_SHIFT, ClockConfig, ClockMode

USAGE_ERROR = 2
RAM_BASE = 0x4000_0000


class UsageError(Exception):
    """Bad usage or bad input: exit status 2, one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``128M``, ``1G``, ``512MiB``, ``65536``: sizes in bytes, binary multiples."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size (try 128M or 1G)")
    value = int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[
        match.group(2).lower()
    ]
    if value == 0:
        raise argparse.ArgumentTypeError("the size must not be 0")
    return value


def parse_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


def positive(text: str) -> int:
    value = parse_int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive number")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be more than 0 seconds")
    return value


def _choices(enum_cls: type[NisvPolicy] | type[UnassignedPolicy] | type[GuardMode]) -> list[str]:
    return [e.value for e in enum_cls]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mmioguard",
        description="Run AArch64 guests under KVM/arm64's MMIO guard, emulated on Unicorn.",
        epilog="Exit status of run: 0 guest powered off, 1 the VM stopped because of the "
        "guest (report on stderr), 2 bad usage or input, 3 a limit was reached.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="run a guest until it powers off or stops",
        description="Boot GUEST (ELF64, arm64 Linux Image, or raw binary with --load-addr) on "
        "the virt machine. The guest's UART output goes to stdout, byte for byte; reports "
        "and warnings go to stderr.",
    )
    add_run_options(run)

    abi = sub.add_parser("abi", help="print the hypercall table this build answers")
    abi.add_argument("--profile", choices=sorted(PROFILES), default="kvm-v2")

    demo = sub.add_parser(
        "demo", help="build the bundled example guest from source and run it"
    )
    demo.add_argument("--trace", metavar="FILE", help="write the JSON Lines trace to FILE")

    linux = sub.add_parser(
        "linux",
        help="build (cached) and boot the project's Linux kernel and initramfs",
        description="Boot the Linux 6.12 kernel (CONFIG_ARM_PKVM_GUEST) and the /init that "
        "`mmioguard guests linux` builds, with their symbols for the trace. Under --profile "
        "linux (the default) the kernel enrolls in the MMIO guard and maps every device it "
        "ioremaps; /init then touches a page it never mapped and must get SIGBUS. Under "
        "--profile none (KVM without the guard) the same access reaches the VMM. Under "
        "--profile kvm-v2 the kernel dies: that ABI's ENROLL has the number of the 6.12 "
        "client's MEM_SHARE, so it enrolls without ever mapping a device.",
    )
    add_run_options(linux, guest=False)
    linux.add_argument("-j", "--jobs", type=positive, help="parallel make jobs for a build")

    guests = sub.add_parser(
        "guests",
        help="build guest images: 'linux' builds the kernel and initramfs (cached)",
    )
    guests.add_argument("what", choices=["linux"], help="which guest to build")
    guests.add_argument("-j", "--jobs", type=positive, help="parallel make jobs")

    sub.add_parser(
        "conformance",
        help="run the MMIO guard conformance suite (guests checking every rule from inside)",
    )

    report = sub.add_parser("report", help="summarize a --trace file")
    report.add_argument("trace", metavar="TRACE", help="a JSON Lines file from run --trace")

    bench = sub.add_parser(
        "bench",
        help="measure the hypervisor's overhead against raw Unicorn (and QEMU if installed)",
        description="Runs the same benchmark guests under mmioguard and under a raw-Unicorn "
        "floor in one process and prints per-operation figures and ratios.",
    )
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.add_argument("--quick", action="store_true",
                       help="1/100 of the iterations: a smoke test, not a measure")
    return parser


LINUX_BOOTARGS = "console=ttyAMA0 panic=-1"


def add_run_options(run: argparse.ArgumentParser, guest: bool = True) -> None:
    if guest:
        run.add_argument("guest", metavar="GUEST", help="the guest image")
    memory = 128 if guest else 256
    run.add_argument("--memory", type=parse_size, default=memory << 20, metavar="SIZE",
                     help=f"guest RAM at 0x40000000 (default {memory}M)")
    run.add_argument("--smp", type=positive, default=1, metavar="N",
                     help="number of vCPUs, 1 to 8 (default 1)")
    run.add_argument("--granule", choices=list(GRANULES), default="4k",
                     help="MMIO guard protection granule (the host page size; default 4k)")
    run.add_argument("--ipa-bits", type=parse_int, default=40, metavar="N",
                     help="guest physical address bits, 32 to 52 (default 40)")
    profile = "kvm-v2" if guest else "linux"
    run.add_argument("--profile", choices=sorted(PROFILES), default=profile,
                     help=f"hypercall ABI (default {profile})")
    bootargs = "" if guest else LINUX_BOOTARGS
    run.add_argument("--append", default=bootargs, metavar="ARGS",
                     help="kernel command line (/chosen/bootargs)"
                     + (f"; default '{bootargs}' (no earlycon: its fixmap window is never "
                        "ioremapped, so the guard aborts it once the kernel enrolls)"
                        if bootargs else ""))
    run.add_argument("--nisv", choices=_choices(NisvPolicy), default="stop",
                     help="device accesses without a valid syndrome before enrollment: stop "
                     "the VM (KVM's default), tell the VMM (which injects an abort; ENROLL "
                     "then fails), or emulate them (default stop)")
    run.add_argument("--unassigned", choices=_choices(UnassignedPolicy), default="raz",
                     help="accesses where no device lives, before enrollment or on mapped "
                     "granules: read as zero and drop writes, inject an abort, or stop "
                     "(default raz)")
    run.add_argument("--guard", choices=_choices(GuardMode), default="enforce",
                     help="enforce the guard (default), or audit: let would-be aborts reach "
                     "the device and list them at the end")
    run.add_argument("--check-mair", action="store_true",
                     help="MAP requires x2 to name a Device attribute in MAIR_EL1")
    run.add_argument("--initrd", metavar="FILE", help="initial ramdisk")
    run.add_argument("--load-addr", type=parse_int, metavar="ADDR",
                     help="load address of a raw binary (its entry point too)")
    run.add_argument("--no-reboot", action="store_true",
                     help="a PSCI reset ends the run with status 0")
    run.add_argument("--trace", metavar="FILE",
                     help="write one JSON object per line per hypercall, guard decision, "
                     "injected exception and stop")
    run.add_argument("--no-native", action="store_true",
                     help="do not use the native (C) fast path: pure Python throughout")
    run.add_argument("--max-insns", type=positive, metavar="N",
                     help="stop with status 3 after about N instructions")
    run.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                     help="stop with status 3 after SECONDS of wall-clock time")
    run.add_argument("--icount", type=parse_int, metavar="SHIFT",
                     help="deterministic time: the counter (CNTVCT_EL0) advances 2**SHIFT ns "
                     "per instruction and skips idle time, so two runs read the same values "
                     f"(SHIFT 0 to {MAX_ICOUNT_SHIFT}; default: host time)")
    run.add_argument("--symbols", metavar="FILE",
                     help="System.map or ELF file naming the guest's functions in the trace "
                     "(an ELF guest's own symbols are used by default)")


def vm_config(args: argparse.Namespace) -> VmConfig:
    if not 1 <= args.smp <= 8:
        raise UsageError(f"mmioguard run: --smp must be 1 to 8, not {args.smp}")
    if not 32 <= args.ipa_bits <= 52:
        raise UsageError(f"mmioguard run: --ipa-bits must be 32 to 52, not {args.ipa_bits}")
    if args.memory < 8 << 20 or args.memory % (64 << 10) or args.memory > 64 << 30:
        raise UsageError(
            f"mmioguard run: --memory must be a multiple of 64K from 8M to 64G, not {args.memory}"
        )
    if RAM_BASE + args.memory > 1 << args.ipa_bits:
        raise UsageError(
            f"mmioguard run: --memory {args.memory:#x} does not fit below the "
            f"{args.ipa_bits}-bit IPA limit"
        )
    clock = ClockConfig()
    if args.icount is not None:
        if not 0 <= args.icount <= MAX_ICOUNT_SHIFT:
            raise UsageError(
                f"mmioguard run: --icount must be 0 to {MAX_ICOUNT_SHIFT}, not {args.icount}"
            )
        clock = ClockConfig(ClockMode.ICOUNT, args.icount)
    return VmConfig(
        clock=clock,
        profile=PROFILES[args.profile],
        granule=GRANULES[args.granule],
        ipa_bits=args.ipa_bits,
        nisv=NisvPolicy(args.nisv),
        unassigned=UnassignedPolicy(args.unassigned),
        guard_mode=GuardMode(args.guard),
        check_mair=args.check_mair,
        smp=args.smp,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except UsageError as err:
        print(err, file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("mmioguard: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE_ERROR
    if args.command == "run":
        from mmioguard.runner import run_guest

        return run_guest(args.guest, args, vm_config(args), sys.stderr)
    if args.command == "abi":
        from mmioguard.report import print_abi

        print_abi(PROFILES[args.profile], sys.stdout)
        return 0
    if args.command == "demo":
        return _demo(args, sys.stderr)
    if args.command == "linux":
        return _linux(args, sys.stderr)
    if args.command == "guests":
        from mmioguard.linux.build import main as linux_main

        return linux_main(["-j", str(args.jobs)] if args.jobs else [])
    if args.command == "conformance":
        from mmioguard.conformance import run_suite

        return run_suite(sys.stdout)
    if args.command == "report":
        from mmioguard.report import TraceError, summarize_trace

        try:
            summarize_trace(args.trace, sys.stdout)
        except TraceError as exc:
            raise UsageError(f"mmioguard report: {exc}") from None
        return 0
    if args.command == "bench":
        from mmioguard.bench import main as bench_main

        return bench_main(json_output=args.json, quick=args.quick)
    raise UsageError(f"mmioguard: unknown command {args.command}")


def _linux(args: argparse.Namespace, err: TextIO) -> int:
    from mmioguard.linux.build import KernelBuildError, build_initramfs, build_kernel
    from mmioguard.runner import run_guest

    def log(line: str) -> None:
        print(line, file=err, flush=True)

    try:
        image = build_kernel(jobs=args.jobs, log=log)
        initramfs = build_initramfs(log=log)
    except KernelBuildError as exc:
        print(f"mmioguard linux: {exc}", file=err)
        return 1
    if args.initrd is None:
        args.initrd = str(initramfs)
    if args.symbols is None:
        args.symbols = str(image.parent / "System.map")
    return run_guest(str(image), args, vm_config(args), err)


def _demo(args: argparse.Namespace, err: TextIO) -> int:
    from mmioguard.guests.build import GuestBuildError, build_guest
    from mmioguard.runner import run_guest

    try:
        elf = build_guest("example")
    except GuestBuildError as exc:
        print(f"mmioguard demo: cannot build the example guest: {exc}", file=err)
        return 1
    run_args = build_parser().parse_args(["run", str(elf)])
    run_args.trace = args.trace
    return run_guest(str(elf), run_args, vm_config(run_args), err)


if __name__ == "__main__":
    sys.exit(main())
