"""One virtual machine: memory slots, guard state, hypercalls and vCPUs."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

from mmioguard.abi.smccc import signed
from mmioguard.hyp.backend import Reg
from mmioguard.hyp.config import UnassignedPolicy, VmConfig
from mmioguard.hyp.exits import Exit
from mmioguard.hyp.guard import GuardState
from mmioguard.hyp.memory import PhysMemory
from mmioguard.hyp.mmio import AbortAccess, StopAccess
from mmioguard.hyp.smccc import Hypercalls, Result
from mmioguard.hyp.timer import GuestClock, PyClock
from mmioguard.hyp.vcpu import Vcpu


class Device(Protocol):
    name: str

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


class DeviceLookup(Protocol):
    def lookup(self, addr: int) -> tuple[int, Device] | None: ...


# Frames of the guest's call chain recorded with each traced hypercall.
TRACE_BACKTRACE = 4


class InterruptController(Protocol):
    """What the vCPUs need of the VMM's interrupt controller (a GICv2 here)."""

    def irq_pending(self, cpu: int) -> bool: ...

    def set_ppi_level(self, cpu: int, ppi: int, level: bool) -> None: ...


class Tracer(Protocol):
    def emit(self, event: str, fields: dict[str, object]) -> None: ...


Disassembler = Callable[[int, int], str]


class Vm:
    def __init__(
        self,
        config: VmConfig,
        memory: PhysMemory,
        devices: DeviceLookup,
        tracer: Tracer | None = None,
        warn: Callable[[str], None] | None = None,
        disassemble: Disassembler | None = None,
    ) -> None:
        self.config = config
        self.memory = memory
        self.devices = devices
        self.tracer = tracer
        self._warn = warn
        self._disassemble = disassemble
        self.guard = GuardState(config.granule)
        # The VMM replaces these when it models an interrupt controller or a native clock.
        self.clock: GuestClock = PyClock(config.clock)
        self.interrupts: InterruptController | None = None
        # Guest address -> "function+0xoffset" for traces and reports, when symbols are known.
        self.symbolize: Callable[[int], str | None] | None = None
        self.hypercalls = Hypercalls(self)
        self.vcpus = [Vcpu(self, i) for i in range(config.smp)]
        self.unassigned_seen: set[int] = set()
        self.warnings: list[str] = []
        # Aborts the guard injected, and the first one (vCPU, PC, FAR), for the summary.
        self.guard_aborts = 0
        self.first_guard_abort: tuple[int, int, int] | None = None

    def reset(self) -> None:
        """PSCI SYSTEM_RESET: the guard forgets enrollment and every mapping."""
        self.guard.reset()
        self.unassigned_seen.clear()
        self.clock.reset()

    def note_guard_abort(self, vcpu: int, pc: int, far: int) -> None:
        self.guard_aborts += 1
        if self.first_guard_abort is None:
            self.first_guard_abort = (vcpu, pc, far)

    def guard_abort_summary(self) -> str | None:
        """One line for the end of a run in which the guard aborted device accesses."""
        first = self.first_guard_abort
        if first is None:
            return None
        vcpu, pc, far = first
        where = self.symbolize(pc) if self.symbolize is not None else None
        return (
            f"the guard aborted {self.guard_aborts} device access(es) and injected the abort "
            f"into the guest; the first on vCPU {vcpu} at PC {pc:#x}"
            + (f" ({where})" if where else "")
            + f", address {far:#x} (use --trace and `mmioguard report` for all of them)"
        )

    # -- reports and trace ----------------------------------------------------------------

    def warn(self, vcpu: int, pc: int, text: str) -> None:
        self.trace_event("warning", vcpu=vcpu, pc=pc, text=text)
        self.warnings.append(text)

    def trace_event(self, event: str, **fields: object) -> None:
        if self.tracer is not None:
            self.tracer.emit(event, fields)

    def trace(self, event: str, vcpu: Vcpu, **fields: object) -> None:
        if self.tracer is not None:
            self.tracer.emit(event, {"vcpu": vcpu.index, **fields})

    def trace_hypercall(
        self, vcpu: Vcpu, x0: int, x1: int, x2: int, x3: int, result: Result | Exit
    ) -> None:
        assert self.tracer is not None
        fid = x0 & 0xFFFF_FFFF
        fields: dict[str, object] = {
            "vcpu": vcpu.index,
            "fid": fid,
            "name": self.hypercalls.name_of(fid),
            "args": [x1, x2, x3],
        }
        if isinstance(result, tuple):
            fields["result"] = list(result)
            fields["ok"] = signed(result[0]) >= 0
        else:
            fields["exit"] = type(result).__name__
        # The hook runs with PC already past the HVC.
        pc = vcpu.backend.get(Reg.PC) - 4
        fields["pc"] = pc
        symbolize = self.symbolize
        if symbolize is not None:
            fields["symbol"] = symbolize(pc)
            callers = [symbolize(ret) for ret in vcpu.backtrace(TRACE_BACKTRACE)]
            fields["caller"] = callers[0] if callers else None
            fields["callers"] = callers
        self.tracer.emit("hvc", fields)

    def disassemble(self, word: int, pc: int) -> str:
        if self._disassemble is None:
            return f".word {word:#010x}"
        return self._disassemble(word, pc)

    def describe_access(
        self, vcpu: Vcpu, pc: int, word: int, pa: int | None, what: str
    ) -> str:
        """A one-paragraph report of a guest access, in terms of the guest."""
        parts = [f"vCPU {vcpu.index} at PC {pc:#x} ({self.disassemble(word, pc)}): {what}."]
        if pa is not None:
            granule = self.guard.granule_base(pa)
            found = self.devices.lookup(pa)
            where = f"device {found[1].name}" if found else "no device"
            parts.append(
                f"Address {pa:#x} ({where}), granule {granule:#x}; the guest is "
                f"{'enrolled' if self.guard.enrolled else 'not enrolled'} and the granule is "
                f"{'mapped' if self.guard.is_mapped(pa) else 'not mapped'}."
            )
        return " ".join(parts)

    # -- physical accesses performed by the hypervisor on behalf of the guest ----------------

    def _place(self, pa: int) -> int:
        """What holds address ``pa``: a memory slot or device (its base), or -1 (nothing)."""
        slot = self.memory.slot_at(pa)
        if slot is not None:
            return slot.base
        found = self.devices.lookup(pa)
        return found[0] if found is not None else -1

    def phys_access(self, pa: int, size: int, is_write: bool, value: int) -> int:
        """One access by an emulated instruction: RAM, a device, or unassigned space."""
        if size > 1 and self._place(pa) != self._place(pa + size - 1):
            # It crosses from one place into another: each byte goes where it belongs.
            result = 0
            for i in range(size):
                byte = self.phys_access(pa + i, 1, is_write, (value >> (8 * i)) & 0xFF)
                result |= byte << (8 * i)
            return 0 if is_write else result
        slot = self.memory.slot_at(pa)
        if slot is not None and pa + size <= slot.end:
            fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size]
            off = pa - slot.base
            if is_write:
                if not slot.readonly:
                    struct.pack_into(fmt, slot.buf, off, value & ((1 << (8 * size)) - 1))
                return 0
            return int(struct.unpack_from(fmt, slot.buf, off)[0])
        found = self.devices.lookup(pa)
        if found is not None:
            base, device = found
            if is_write:
                device.write(pa - base, size, value & ((1 << (8 * size)) - 1))
                return 0
            return device.read(pa - base, size)
        return self._unassigned(pa, size, is_write)

    def _unassigned(self, pa: int, size: int, is_write: bool) -> int:
        policy = self.config.unassigned
        if policy is UnassignedPolicy.ABORT:
            raise AbortAccess(f"no device at {pa:#x}")
        if policy is UnassignedPolicy.STOP:
            raise StopAccess(
                f"{'write to' if is_write else 'read from'} {pa:#x}, where no device lives "
                "(--unassigned stop)",
                pa,
            )
        granule = self.guard.granule_base(pa)
        if granule not in self.unassigned_seen:
            self.unassigned_seen.add(granule)
            text = (
                f"{'write to' if is_write else 'read from'} unassigned device space at "
                f"{pa:#x} (granule {granule:#x}): no device there, "
                f"{'write dropped' if is_write else 'read as zero'}"
            )
            if self._warn is not None:
                self._warn(text)
            self.trace_event("unassigned", addr=pa, size=size, write=is_write)
        return 0
