"""The MMIO guard conformance suite: every rule of spec sections 2 to 6, checked from inside
real guests.

Each conformance guest (``guests/conf_*``) is a TAP program built with the guest SDK. A guest
runs under one or more *settings* (build-time defines plus VM configuration); a run passes
when the VM ends the way the setting expects (normally PSCI SYSTEM_OFF), every TAP line is
``ok``, the plan count is met, and the checks this module makes on the VMM's trace hold (for
what a guest cannot see from inside: that a device never saw an aborted access, that a stop
report names the instruction, ...).

``run_suite`` builds and runs everything and prints a summary table; ``tests/test_conformance.py``
runs the same table under pytest. The tables here are the single description of the suite.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

from mmioguard.abi.profiles import LINUX, PKVM
from mmioguard.guests.build import GuestBuildError, build_guest
from mmioguard.hyp.config import NisvPolicy, VmConfig
from mmioguard.vmm.virt import ExitStatus, MachineOptions, Outcome, VirtMachine

__all__ = [
    "GUESTS",
    "ConformanceGuest",
    "GuestRun",
    "Setting",
    "Tap",
    "check_run",
    "find_guest",
    "parse_tap",
    "run_guest",
    "run_suite",
]

# The virt machine and the addresses the conformance guests use.
UART = 0x0900_0000
RTC = 0x0901_0000
RTC_EPOCH = 1_700_000_000.0  # 2023-11-14, what the RTC reads in every conformance run
FREE = 0x0A00_0000  # unassigned device space: no device lives there
PAGE = 0x1000
ESR_DABT_EL1 = 0x9600_0010
ESR_DABT_EL0 = 0x9200_0010
ESR_IABT_EL1 = 0x8600_0010
ESR_IABT_EL0 = 0x8200_0010

# Bounds on one run: far above what any conformance guest needs.
TIMEOUT_S = 120.0

Event = Mapping[str, object]


# -- running a guest -------------------------------------------------------------------------


class _Recorder:
    """A tracer that keeps every event as ``{"event": kind, **fields}``."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def emit(self, event: str, fields: dict[str, object]) -> None:
        self.events.append({"event": event, **fields})


@dataclass
class GuestRun:
    """What one run of a conformance guest produced."""

    outcome: Outcome
    output: str
    events: list[dict[str, object]]
    warnings: list[str]
    seconds: float
    machine: VirtMachine
    traced: bool


@dataclass(frozen=True)
class Tap:
    """The TAP stream of a guest."""

    planned: int | None
    passed: int
    skipped: int
    failures: tuple[str, ...]
    verdict: str | None  # the PASS/FAIL line done() prints, if reached

    @property
    def ran(self) -> int:
        return self.passed + len(self.failures)


_TAP_LINE = re.compile(r"^(not )?ok \d+( - .*)?$")
_PLAN = re.compile(r"^1\.\.(\d+)$")


def parse_tap(text: str) -> Tap:
    planned: int | None = None
    passed = skipped = 0
    failures: list[str] = []
    verdict: str | None = None
    for line in text.splitlines():
        line = line.rstrip("\r")
        plan = _PLAN.match(line)
        if plan and planned is None:
            planned = int(plan.group(1))
        elif _TAP_LINE.match(line):
            if line.startswith("not "):
                failures.append(line)
            else:
                passed += 1
                if "# SKIP" in line:
                    skipped += 1
        elif line in ("PASS", "FAIL"):
            verdict = line
    return Tap(planned, passed, skipped, tuple(failures), verdict)


# -- trace helpers -----------------------------------------------------------------------------


def _events(run: GuestRun, kind: str) -> list[dict[str, object]]:
    return [e for e in run.events if e["event"] == kind]


def _int(event: Event, key: str) -> int:
    value = event.get(key)
    return value if isinstance(value, int) else -1


def _mmio(
    run: GuestRun, verdict: str | None = None, page: int | None = None
) -> list[dict[str, object]]:
    found = []
    for e in _events(run, "mmio"):
        if verdict is not None and e.get("verdict") != verdict:
            continue
        if page is not None and _int(e, "addr") & ~(PAGE - 1) != page:
            continue
        found.append(e)
    return found


def _guard_aborts(run: GuestRun) -> list[dict[str, object]]:
    return [e for e in _events(run, "exception") if e.get("why") == "guard abort"]


def _expect_aborts(run: GuestRun, esr: int, fars: Iterable[int]) -> list[str]:
    """Each address got the guard's abort with this ESR and never reached the VMM."""
    problems = []
    seen = {_int(e, "far") for e in _guard_aborts(run) if _int(e, "esr") == esr}
    forwarded = {_int(e, "addr") for e in _mmio(run, "forward")}
    for far in fars:
        if far not in seen:
            problems.append(f"trace: no guard abort with ESR {esr:#x} and FAR {far:#x}")
        if far in forwarded:
            problems.append(f"trace: an access at {far:#x} was forwarded to the VMM")
    return problems


def _expect_forwarded(run: GuestRun, addrs: Iterable[int]) -> list[str]:
    forwarded = {_int(e, "addr") for e in _mmio(run, "forward")}
    return [f"trace: no forwarded access at {a:#x}" for a in addrs if a not in forwarded]


def _enrolled_rtc_writes(run: GuestRun, allowed: Iterable[int]) -> list[str]:
    """Writes that reached the RTC once the guest was enrolled carry only these values."""
    ok_values = set(allowed)
    return [
        f"trace: the RTC saw a write of {_int(e, 'value'):#x} at {_int(e, 'addr'):#x} "
        "from an access the guard should have aborted"
        for e in _mmio(run, "forward", RTC)
        if e.get("write") and e.get("enrolled") and _int(e, "value") not in ok_values
    ]


def _aborted_accesses_reached_nothing(run: GuestRun) -> list[str]:
    """No part of an access the guard aborted was forwarded (checked for every traced run).

    The device-access events of one instruction come right before its exception, with that
    instruction's PC (an access the emulator splits makes several); walking back from each
    guard abort over those events, none may be forwarded.
    """
    problems = []
    for i, e in enumerate(run.events):
        if e["event"] != "exception" or e.get("why") != "guard abort":
            continue
        elr = _int(e, "elr")
        j = i - 1
        while j >= 0:
            prev = run.events[j]
            if prev["event"] == "unassigned":
                j -= 1
                continue
            if prev["event"] != "mmio" or _int(prev, "pc") != elr:
                break
            if prev.get("verdict") == "forward":
                problems.append(
                    f"trace: the instruction at {elr:#x} was aborted (FAR {_int(e, 'far'):#x}) "
                    f"after part of it was forwarded: {'write' if prev.get('write') else 'read'}"
                    f" at {_int(prev, 'addr'):#x}"
                )
            j -= 1
    return problems


# -- per-guest trace checks --------------------------------------------------------------------

TraceCheck = Callable[[GuestRun], list[str]]


def _discovery_trace(run: GuestRun) -> list[str]:
    smcs = _events(run, "smc")
    problems = []
    if len(smcs) != 3 or any(_int(e, "result") != 2**64 - 1 for e in smcs):
        problems.append(f"trace: expected 3 SMCs answered NOT_SUPPORTED, got {smcs}")
    enrolls = [e for e in _events(run, "hvc") if e.get("name") == "MMIO_GUARD_ENROLL"]
    if not enrolls or enrolls[0].get("ok") is not True:
        problems.append("trace: the guest's ENROLL is missing or failed")
    return problems


def _info_trace(run: GuestRun) -> list[str]:
    """Section 6: UID, then the feature bits, then INFO, then (and only then) ENROLL."""
    names = [str(e.get("name")) for e in _events(run, "hvc")]
    if names.count("MMIO_GUARD_ENROLL") != 1:
        return [f"trace: expected exactly one ENROLL (the matching guard_init), got {names}"]
    i = names.index("MMIO_GUARD_ENROLL")
    want = [
        "SMCCC_VERSION",
        "VENDOR_HYP_CALL_UID",
        "VENDOR_HYP_KVM_FEATURES",
        "MMIO_GUARD_INFO",
        "MMIO_GUARD_ENROLL",
    ]
    if names[i - 4 : i + 1] != want:
        return [f"trace: guard_init's calls were {names[max(i - 4, 0) : i + 1]}, want {want}"]
    return []


def _profiles_trace(run: GuestRun) -> list[str]:
    """The RTC read made while its granule was unmapped got the guard's abort (the RTC is
    also read, and forwarded, while mapped or before enrollment)."""
    if not any(_int(e, "esr") == ESR_DABT_EL1 and _int(e, "far") == RTC
               for e in _guard_aborts(run)):
        return [f"trace: no guard abort with ESR {ESR_DABT_EL1:#x} and FAR {RTC:#x}"]
    return _expect_forwarded(run, [RTC])


def _map_unmap_trace(run: GuestRun) -> list[str]:
    texts = [str(e.get("text")) for e in _events(run, "warning")]
    if not any("UNMAP of misaligned address" in t for t in texts):
        return ["trace: no guest warning for the misaligned UNMAP"]
    return []


def _abort_el1_trace(run: GuestRun) -> list[str]:
    problems = _expect_aborts(
        run,
        ESR_DABT_EL1,
        [RTC + 0x18, RTC, RTC + 0xFE3, RTC + 0x1C, RTC + 0x10, RTC + 0x28, RTC + 0x30],
    )
    problems += _enrolled_rtc_writes(run, ())
    sp0 = {_int(e, "far") for e in _guard_aborts(run) if e.get("sp_el0_in_use") is True}
    if sp0 != {RTC + 0x28, RTC + 0x30, RTC + 0x8}:
        problems.append(f"trace: aborts taken with SP_EL0 in use at {sorted(sp0)}")
    reads = {_int(e, "addr") for e in _mmio(run, "forward", RTC) if e.get("enrolled")}
    if reads - {RTC + 8}:
        problems.append(f"trace: RTC accesses forwarded after enrollment at {sorted(reads)}")
    return problems


def _abort_el0_trace(run: GuestRun) -> list[str]:
    problems = _expect_aborts(
        run,
        ESR_DABT_EL0,
        [RTC + 0x18, RTC, RTC + 0xFF3, RTC + 0xFE6, RTC + 0x9, RTC + 0x28],
    )
    problems += _enrolled_rtc_writes(run, ())
    if any(e.get("from_el0") is not True for e in _guard_aborts(run)):
        problems.append("trace: a guard abort not taken from EL0")
    reads = {_int(e, "addr") for e in _mmio(run, "forward", RTC) if e.get("enrolled")}
    if reads - {RTC + 8}:
        problems.append(f"trace: RTC accesses forwarded after enrollment at {sorted(reads)}")
    return problems


def _isv0_trace(run: GuestRun) -> list[str]:
    problems = _enrolled_rtc_writes(run, (0xABCD0001, 0xABCD0002, 0xC0FFEE03))
    isv0 = _mmio(run, "abort_no_syndrome", RTC)
    if len({_int(e, "pc") for e in isv0}) < 20:
        problems.append(f"trace: only {len(isv0)} ISV=0 accesses to the RTC were aborted")
    return problems


def _nisv_stop_trace(run: GuestRun) -> list[str]:
    problems = []
    report = run.outcome.report
    stops = _mmio(run, "nisv_stop", RTC)
    if not stops:
        return ["trace: no mmio event with verdict nisv_stop"]
    pc = f"PC {_int(stops[-1], 'pc'):#x}"
    for needle in (pc, "stp w12, w13, [x11]", "0x9010008", "not enrolled", "ISV=0"):
        if needle not in report:
            problems.append(f"stop report does not mention {needle!r}: {report}")
    if run.machine.rtc.read(8, 4) != 0xC0FFEE04:
        problems.append("the stopping stp reached the RTC load register")
    return problems


def _nisv_user_trace(run: GuestRun) -> list[str]:
    problems = []
    nisv = _events(run, "nisv")
    if len({_int(e, "pc") for e in nisv}) < 20:
        problems.append(f"trace: only {len(nisv)} NISV exits")
    if _mmio(run, "nisv_emulate"):
        problems.append("trace: an access was emulated under nisv=user")
    if not any("ENROLL refused" in str(e.get("text")) for e in _events(run, "warning")):
        problems.append("trace: no warning for the refused ENROLL")
    if run.machine.vm.guard.enrolled:
        problems.append("the VM ended enrolled")
    return problems


def _nisv_emulate_trace(run: GuestRun) -> list[str]:
    problems = []
    if len({_int(e, "pc") for e in _mmio(run, "nisv_emulate", RTC)}) < 18:
        problems.append("trace: fewer emulated ISV=0 accesses than the guest made")
    if not _mmio(run, "abort_no_syndrome", RTC):
        problems.append("trace: no ISV=0 abort after enrollment")
    return problems


_STRADDLE_ABORTED = [0xFFC, 0x2FFC, 0x2FFE, 0x2FFF, 0x2FF9, 0x4FFC, 0x4FFD, 0x4FFE, 0x8FFD,
                     0xAFF8]
_STRADDLE_FORWARDED = [0x2FF1, 0x2FF3, 0x5001, 0x6FFC, 0x6FFE, 0x6FFF, 0x6FF9, 0x6FFD, 0x8FFC,
                       0x8FF8, 0xB000]


def _straddle_trace(run: GuestRun) -> list[str]:
    return _expect_aborts(run, ESR_DABT_EL1, [FREE + a for a in _STRADDLE_ABORTED]) + (
        _expect_forwarded(run, [FREE + a for a in _STRADDLE_FORWARDED])
    )


def _fetch_trace(run: GuestRun) -> list[str]:
    problems = []
    el1 = [FREE, RTC, 0x4800_0000, RTC + 0x10, FREE + 0x100, FREE + 0x1000, FREE + 0x200]
    el0 = [FREE + 0x40, RTC + 0x20]
    excs = _events(run, "exception")
    for esr, addrs in ((ESR_IABT_EL1, el1), (ESR_IABT_EL0, el0)):
        seen = {_int(e, "far") for e in excs if _int(e, "esr") == esr and
                _int(e, "elr") == _int(e, "far")}
        problems += [f"trace: no prefetch abort {esr:#x} at {a:#x}" for a in addrs
                     if a not in seen]
    fetches = {_int(e, "pc") for e in _events(run, "fetch-abort")}
    problems += [f"trace: no fetch-abort event at {a:#x}" for a in el1 + el0 if a not in fetches]
    if _mmio(run, page=RTC):
        problems.append("trace: an instruction fetch reached the RTC as a device access")
    return problems


def _refcount_trace(run: GuestRun) -> list[str]:
    guard = run.machine.vm.guard
    if guard.mapped_bases() != [guard.granule_base(UART)]:
        return [f"mapped at the end: {[hex(b) for b in guard.mapped_bases()]}, want the UART's"]
    return []


def _signext_trace(run: GuestRun) -> list[str]:
    if _guard_aborts(run):
        return ["trace: a sign-extending load was aborted"]
    return []


def _reset_trace(run: GuestRun) -> list[str]:
    problems = []
    boots = [i for i, e in enumerate(run.events) if e["event"] == "boot"]
    if len(boots) != 2:
        return [f"trace: {len(boots)} boots, want 2"]
    after = [e for e in run.events[boots[1]:] if e["event"] == "hvc"]
    first_map = next((e for e in after if e.get("name") == "MMIO_GUARD_MAP"), None)
    if first_map is None or first_map.get("ok") is not False:
        problems.append("trace: the first MAP after the reset did not fail")
    return problems


def _vm_wide_trace(run: GuestRun) -> list[str]:
    maps = [e for e in _events(run, "hvc")
            if e.get("vcpu") == 1 and e.get("name") == "MMIO_GUARD_MAP" and e.get("ok")]
    if not maps:
        return ["trace: no successful MAP from vCPU 1"]
    if not any(e.get("vcpu") == 1 for e in _guard_aborts(run)):
        return ["trace: no guard abort on vCPU 1"]
    return []


# -- the suite ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One way to build and run a guest, and how that run must end."""

    label: str
    defines: tuple[tuple[str, int], ...] = ()
    vm: tuple[tuple[str, object], ...] = ()  # VmConfig fields
    status: ExitStatus = ExitStatus.OFF
    reason: str | None = None  # Outcome.reason when the run must stop on its own
    resets: int = 0
    traced: bool = True  # untraced runs take the device-access fast path; no trace checks
    checks: tuple[TraceCheck, ...] = ()
    # Set while a known hypervisor bug makes this run fail (pytest marks it xfail).
    known_failure: str | None = None

    def config(self) -> VmConfig:
        return VmConfig(**dict(self.vm))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ConformanceGuest:
    name: str
    rules: str
    settings: tuple[Setting, ...]
    checks: tuple[TraceCheck, ...] = ()  # for every traced setting


def _granules() -> tuple[Setting, ...]:
    return tuple(
        Setting(label, (("GRANULE", size),), (("granule", size),))
        for label, size in (("granule=4k", 4096), ("granule=16k", 16384), ("granule=64k", 65536))
    )


GUESTS: tuple[ConformanceGuest, ...] = (
    ConformanceGuest(
        "conf_discovery",
        "2: SMCCC/PSCI versions and features, KVM UID, feature bitmap 0x3d, register "
        "convention, unknown IDs, SMC, HVC at EL0",
        (Setting("default"),),
        (_discovery_trace,),
    ),
    ConformanceGuest(
        "conf_info",
        "3, 6: INFO before and after ENROLL, page size must equal the granule, granule extent",
        _granules(),
        (_info_trace,),
    ),
    ConformanceGuest(
        "conf_map_unmap",
        "3, 4: ENROLL/MAP/UNMAP failure and success cases, idempotence, UNMAP rounding, IPA "
        "limit, MAIR index, out of memory",
        (
            Setting(
                "granule=4k ipa_bits=40",
                (("GRANULE", 4096), ("IPA_BITS", 40), ("CAPACITY", 16)),
                (("granule", 4096), ("ipa_bits", 40), ("guard_capacity", 16)),
            ),
            Setting(
                "granule=16k ipa_bits=32 check_mair",
                (("GRANULE", 16384), ("IPA_BITS", 32), ("CHECK_MAIR", 1), ("CAPACITY", 16)),
                (("granule", 16384), ("ipa_bits", 32), ("check_mair", True),
                 ("guard_capacity", 16)),
            ),
            Setting(
                "granule=64k ipa_bits=48",
                (("GRANULE", 65536), ("IPA_BITS", 48), ("CAPACITY", 8)),
                (("granule", 65536), ("ipa_bits", 48), ("guard_capacity", 8)),
            ),
        ),
        (_map_unmap_trace,),
    ),
    ConformanceGuest(
        "conf_abort_el1",
        "4: the guard's abort from EL1h and EL1t: ESR, FAR, ELR, SPSR, vector, new PSTATE, "
        "nothing changed, the device saw nothing",
        (Setting("traced"), Setting("untraced", traced=False)),
        (_abort_el1_trace,),
    ),
    ConformanceGuest(
        "conf_abort_el0",
        "4: the guard's abort from EL0 (MMU off and on): ESR, FAR, ELR, SPSR, vector, nothing "
        "changed, the device saw nothing",
        (Setting("default"),),
        (_abort_el0_trace,),
    ),
    ConformanceGuest(
        "conf_isv0",
        "4 rule 3: ISV=0 forms (pairs, writeback, exclusives, atomics, SIMD) abort on a mapped "
        "granule once enrolled; RAM unaffected",
        (
            Setting("nisv=stop", checks=(_isv0_trace,)),
            Setting("nisv=emulate", vm=(("nisv", NisvPolicy.EMULATE),), checks=(_isv0_trace,)),
            Setting("untraced", traced=False),
            Setting("pair across the end of RAM", (("RAM_EDGE", 1),)),
        ),
    ),
    ConformanceGuest(
        "conf_nisv",
        "5: ISV=0 device accesses before enrollment under nisv=stop, user and emulate",
        (
            Setting("nisv=stop", (("NISV_MODE", 0),), status=ExitStatus.GUEST, reason="nisv",
                    checks=(_nisv_stop_trace,)),
            Setting("nisv=user", (("NISV_MODE", 1),), (("nisv", NisvPolicy.USER),),
                    checks=(_nisv_user_trace,)),
            Setting("nisv=emulate", (("NISV_MODE", 2),), (("nisv", NisvPolicy.EMULATE),),
                    checks=(_nisv_emulate_trace,)),
            Setting(
                "nisv=emulate LD1/ST1",
                (("NISV_MODE", 2), ("SIMD_STRUCT", 1)),
                (("nisv", NisvPolicy.EMULATE),),
            ),
        ),
    ),
    ConformanceGuest(
        "conf_straddle",
        "4 rule 2: an access crossing into the next granule is forwarded only if both are "
        "mapped (MMU on, 4K, Normal mapping)",
        (
            Setting("unassigned space", checks=(_straddle_trace,)),
            Setting("RTC granule edges", (("DEVICE_EDGE", 1),)),
        ),
    ),
    ConformanceGuest(
        "conf_fetch",
        "4: instruction fetch outside memory: prefetch abort 0x86000010/0x82000010, enrolled "
        "or not, never a device access",
        (Setting("default"),),
        (_fetch_trace,),
    ),
    ConformanceGuest(
        "conf_refcount",
        "6: the guest's refcounted ioremap/iounmap: overlapping mappings, failed MAP undone",
        (
            Setting("granule=4k", (("GRANULE", 4096),), (("granule", 4096),)),
            Setting("granule=64k", (("GRANULE", 65536),), (("granule", 65536),)),
        ),
        (_refcount_trace,),
    ),
    ConformanceGuest(
        "conf_signext",
        "4: LDRSB/LDRSH/LDRSW from device registers are sign-extended, before and after "
        "enrollment",
        (Setting("traced"), Setting("untraced", traced=False)),
        (_signext_trace,),
    ),
    ConformanceGuest(
        "conf_reset",
        "3: PSCI SYSTEM_RESET clears the enrollment and every mapping",
        (Setting("default", resets=1),),
        (_reset_trace,),
    ),
    ConformanceGuest(
        "conf_vm_wide",
        "3: enrollment and mappings are per VM, shared by all vCPUs",
        (Setting("smp=2", vm=(("smp", 2),)),),
        (_vm_wide_trace,),
    ),    ConformanceGuest(
        "conf_profiles",
        "7: the pkvm and linux profiles from guests written against them: numbers, feature "
        "bitmap, errors, enrollment (explicit, or by the first successful MMIO_GUARD)",
        (
            Setting("pkvm", (("PROFILE", 0),), (("profile", PKVM),)),
            Setting("linux", (("PROFILE", 1),), (("profile", LINUX),)),
        ),
        (_profiles_trace,),
    ),
)


def find_guest(name: str) -> ConformanceGuest:
    for guest in GUESTS:
        if guest.name == name:
            return guest
    raise KeyError(name)


def run_guest(guest: ConformanceGuest, setting: Setting, native: bool = True) -> GuestRun:
    """Build the guest for this setting (cached) and run it in-process.

    Only a wall-clock limit: an instruction limit would make Unicorn count (and so
    synchronise PC at) every instruction, which is not the path guests normally run on.
    """
    elf = build_guest(guest.name, defines=dict(setting.defines))
    output = bytearray()
    warnings: list[str] = []
    recorder = _Recorder() if setting.traced else None
    options = MachineOptions(
        image=str(elf),
        vm=setting.config(),
        timeout=TIMEOUT_S,
        native=native,
        # A fixed date: runs compared with each other must not see a second tick by.
        rtc_clock=lambda: RTC_EPOCH,
    )
    start = time.perf_counter()
    machine = VirtMachine(options, output.extend, warnings.append, recorder)
    outcome = machine.run()
    seconds = time.perf_counter() - start
    return GuestRun(
        outcome,
        output.decode(errors="replace"),
        recorder.events if recorder is not None else [],
        warnings,
        seconds,
        machine,
        setting.traced,
    )


def check_run(guest: ConformanceGuest, setting: Setting, run: GuestRun) -> list[str]:
    """Everything wrong with this run; empty when it passes."""
    problems: list[str] = []
    outcome = run.outcome
    if outcome.status is not setting.status:
        problems.append(
            f"exit status {int(outcome.status)} ({outcome.reason}), want {int(setting.status)}"
            + (f"; report: {outcome.report}" if outcome.report else "")
        )
    elif setting.reason is not None and outcome.reason != setting.reason:
        problems.append(f"stopped for {outcome.reason!r}, want {setting.reason!r}")
    if outcome.resets != setting.resets:
        problems.append(f"{outcome.resets} resets, want {setting.resets}")
    tap = parse_tap(run.output)
    problems += list(tap.failures)
    if tap.planned is None:
        problems.append("no TAP plan")
    elif tap.ran != tap.planned:
        problems.append(f"planned {tap.planned} tests, ran {tap.ran}")
    if setting.status is ExitStatus.OFF and tap.verdict != "PASS":
        problems.append(f"the guest did not finish with PASS (got {tap.verdict})")
    if run.traced:
        for trace_check in (_aborted_accesses_reached_nothing, *guest.checks, *setting.checks):
            problems += trace_check(run)
    return problems


@dataclass(frozen=True)
class _Row:
    guest: str
    setting: str
    tests: int
    passed: int
    failed: int
    seconds: float
    problems: tuple[str, ...]
    known_failure: str | None


def _run_one(guest: ConformanceGuest, setting: Setting) -> _Row:
    try:
        run = run_guest(guest, setting)
    except GuestBuildError as exc:
        return _Row(guest.name, setting.label, 0, 0, 0, 0.0, (str(exc),), setting.known_failure)
    tap = parse_tap(run.output)
    problems = tuple(check_run(guest, setting, run))
    failed = len(tap.failures)
    return _Row(
        guest.name,
        setting.label,
        tap.planned if tap.planned is not None else tap.ran,
        tap.passed,
        failed,
        run.seconds,
        problems,
        setting.known_failure,
    )


def run_suite(out: TextIO) -> int:
    """Build and run every conformance guest under each of its settings; print a summary
    table. Returns 0 only if every run passes (a known hypervisor bug still counts as a
    failure)."""
    rows = [_run_one(guest, setting) for guest in GUESTS for setting in guest.settings]
    headers = ("guest", "settings", "tests", "passed", "failed", "time", "result")
    table = [
        (
            r.guest,
            r.setting,
            str(r.tests),
            str(r.passed),
            str(r.failed),
            f"{r.seconds:.2f}s",
            "ok" if not r.problems else ("KNOWN BUG" if r.known_failure else "FAIL"),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    numeric = {2, 3, 4, 5}

    def line(cells: Iterable[str]) -> str:
        parts = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    print(line(headers), file=out)
    print(line("-" * w for w in widths), file=out)
    for cells in table:
        print(line(cells), file=out)
    bad = [r for r in rows if r.problems]
    total_tests = sum(r.passed + r.failed for r in rows)
    total_time = sum(r.seconds for r in rows)
    print(
        f"\n{len(rows)} runs of {len(GUESTS)} guests, {total_tests} TAP tests, "
        f"{len(rows) - len(bad)} runs passed, {len(bad)} failed, {total_time:.1f}s",
        file=out,
    )
    for r in bad:
        print(f"\n{r.guest} [{r.setting}]:", file=out)
        if r.known_failure:
            print(f"  known: {r.known_failure}", file=out)
        for problem in r.problems[:20]:
            print(f"  {problem}", file=out)
        if len(r.problems) > 20:
            print(f"  ... and {len(r.problems) - 20} more", file=out)
    fixed = [r for r in rows if r.known_failure and not r.problems]
    for r in fixed:
        print(f"\n{r.guest} [{r.setting}] passes now: its known failure looks fixed", file=out)
    return 1 if bad else 0
