"""``mmioguard run``: set up the machine from the command line, run it, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from mmioguard.hyp.config import GuardMode, VmConfig
from mmioguard.vmm.bus import BusError
from mmioguard.vmm.loader import ImageError
from mmioguard.vmm.symbols import LazySymbols, SymbolError, Symbols
from mmioguard.vmm.trace import JsonlTracer
from mmioguard.vmm.virt import ExitStatus, MachineOptions, Outcome, VirtMachine


def _console(data: bytes) -> None:
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


def run_guest(image: str, args: argparse.Namespace, config: VmConfig, err: TextIO) -> int:
    options = MachineOptions(
        image=image,
        memory=args.memory,
        load_addr=args.load_addr,
        initrd=args.initrd,
        bootargs=args.append,
        no_reboot=args.no_reboot,
        max_insns=args.max_insns,
        timeout=args.timeout,
        vm=config,
        native=not args.no_native,
    )
    symbols: Symbols | LazySymbols | None = None
    if args.symbols:
        try:
            # Parsed when first needed (a trace, a report); a traced run checks it at once.
            symbols = Symbols.load(args.symbols) if args.trace else Symbols.lazy(args.symbols)
        except SymbolError as exc:
            print(f"mmioguard run: {exc}", file=err)
            return int(ExitStatus.USAGE)

    tracer = None
    if args.trace:
        try:
            tracer = JsonlTracer(open(args.trace, "w", encoding="utf-8"))  # noqa: SIM115
        except OSError as exc:
            print(f"mmioguard run: cannot write trace file {args.trace}: {exc.strerror}",
                  file=err)
            return int(ExitStatus.USAGE)

    if symbols is None and tracer is not None:
        # An ELF guest names its own functions; anything else is simply not symbolized.
        try:
            symbols = Symbols.load(image)
        except SymbolError:
            symbols = None

    def warn(text: str) -> None:
        sys.stdout.flush()
        print(f"mmioguard: warning: {text}", file=err)

    try:
        try:
            machine = VirtMachine(options, _console, warn, tracer)
        except (ImageError, BusError) as exc:
            print(f"mmioguard run: {exc}", file=err)
            if tracer is not None:
                # Nothing ran: leave no empty trace behind to be mistaken for a run's.
                tracer.close()
                tracer = None
                Path(args.trace).unlink(missing_ok=True)
            return int(ExitStatus.USAGE)
        if symbols is not None:
            machine.vm.symbolize = symbols.describe
        outcome = machine.run()
    finally:
        if tracer is not None:
            tracer.close()
    _report(outcome, machine, err)
    return int(outcome.status)


def _report(outcome: Outcome, machine: VirtMachine, err: TextIO) -> None:
    summary = machine.vm.guard_abort_summary()
    if summary is not None:
        print(f"mmioguard: {summary}", file=err)
    if outcome.status is ExitStatus.GUEST:
        print(f"mmioguard: the VM stopped ({outcome.reason}): {outcome.report}", file=err)
    elif outcome.status is ExitStatus.LIMIT:
        print(f"mmioguard: {outcome.reason}", file=err)
    if machine.options.vm.guard_mode is GuardMode.AUDIT:
        findings = sorted(machine.vm.guard.audit.values(), key=lambda f: f.granule_addr)
        if not findings:
            print("mmioguard: audit: no access would have been aborted", file=err)
        for f in findings:
            found = machine.bus.lookup(f.granule_addr)
            device = found[1].name if found else "no device"
            offset = f.granule_addr - found[0] if found else 0
            print(
                f"mmioguard: audit: unmapped granule {f.granule_addr:#x} ({device} + "
                f"{offset:#x}): first PC {f.first_pc:#x}, {f.count} access(es); "
                "the guest is missing a MAP of it",
                file=err,
            )
