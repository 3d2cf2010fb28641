"""The small vCPU interface the hypervisor needs from a CPU backend.

``mmioguard.cpu`` implements it on Unicorn; nothing in ``hyp`` imports the emulator.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol


class Reg(enum.Enum):
    PC = "pc"
    SP = "sp"  # the stack pointer currently selected
    SP_EL0 = "sp_el0"
    SP_EL1 = "sp_el1"
    PSTATE = "pstate"
    ELR_EL1 = "elr_el1"
    SPSR_EL1 = "spsr_el1"
    ESR_EL1 = "esr_el1"
    FAR_EL1 = "far_el1"
    VBAR_EL1 = "vbar_el1"
    SCTLR_EL1 = "sctlr_el1"
    TCR_EL1 = "tcr_el1"
    TTBR0_EL1 = "ttbr0_el1"
    TTBR1_EL1 = "ttbr1_el1"
    MAIR_EL1 = "mair_el1"
    MPIDR_EL1 = "mpidr_el1"

    # Registers are dict keys on the exception path; Enum's own __hash__ is a Python-level
    # function, identity hashing is equivalent for enum members and far cheaper.
    __hash__ = object.__hash__


class Fault(enum.Enum):
    """The emulator stopped on an access to an address where nothing is mapped."""

    READ = "read"
    WRITE = "write"
    FETCH = "fetch"
    # Not a fault: the backend's native fast path refused an access and recorded the guard's
    # abort (``native_abort``), to be taken with ``take_native_abort``.
    NATIVE_ABORT = "native-abort"


# Device-access callbacks handed to the backend for one region: (pc, offset, size) for reads
# and (pc, offset, size, value) for writes. The backend supplies the program counter of the
# accessing instruction, which identifies it.
MmioRead = Callable[[int, int, int], int]
MmioWrite = Callable[[int, int, int, int], None]


class VcpuBackend(Protocol):
    index: int
    # The backend answers the virtual timer's registers itself (the native path); otherwise
    # it calls the vCPU's timer_read/timer_write from its MRS/MSR hooks.
    native_timer: bool

    def get(self, reg: Reg) -> int: ...

    def set(self, reg: Reg, value: int) -> None: ...

    def get_many(self, regs: Sequence[Reg]) -> list[int]: ...

    def set_many(self, values: Mapping[Reg, int]) -> None: ...

    def gprs(self) -> list[int]:
        """x0..x30."""
        ...

    def gpr(self, n: int) -> int:
        """One of x0..x30."""
        ...

    def set_gpr(self, n: int, value: int) -> None: ...

    def vreg(self, n: int) -> int: ...

    def set_vreg(self, n: int, value: int) -> None: ...

    def hvc_args(self) -> tuple[int, int, int, int]:
        """x0..x3, read in one go (the hypercall hot path)."""
        ...

    def set_hvc_result(self, r0: int, r1: int, r2: int, r3: int) -> None: ...

    def run(self, pc: int, count: int) -> Fault | None:
        """Run from ``pc`` for at most ``count`` instructions (0: no limit) until stopped.

        Returns the kind of access fault that stopped it, or None.
        """
        ...

    def stop(self) -> None:
        """Ask the running ``run`` to return (callable from inside callbacks)."""
        ...

    def flush_translations(self) -> None:
        """Drop all the emulator's translated code (the guest invalidated instruction caches)."""
        ...

    def flush_translations_of(self, pa: int, size: int) -> None:
        """Drop the translated code of guest physical [pa, pa + size), within one page."""
        ...

    def native_abort(self) -> tuple[int, int, int]:
        """(ELR, ESR, FAR) of the abort behind ``Fault.NATIVE_ABORT``."""
        ...

    def take_native_abort(self, enter: bool) -> bool:
        """Put back the registers the aborted instruction wrote and, with ``enter``, perform
        the exception entry. False when it did not enter (a state the native path does not
        model): the registers are back and the caller enters."""
        ...

    def map_device(self, base: int, size: int, read: MmioRead, write: MmioWrite) -> None: ...

    def reset(self) -> None:
        """Architectural reset of the CPU state (registers, system registers)."""
        ...

    def watch_writes(self, begin: int, end: int, callback: Callable[[int, int, int], None]) -> None:
        """Call ``callback(pc, address, size)`` before each guest write in [begin, end]."""
        ...

    def timer_state(self) -> tuple[int, int, int]:
        """Native timer: (CNTV_CTL, CNTV_CVAL, why it stopped the emulator since last asked).

        An instruction cache invalidation among the reasons is also told to the vCPU
        (``Vcpu.icache_invalidated``), as the pure-Python SYS hook tells it at once."""
        ...

    def set_timer_state(self, ctl: int, cval: int) -> None: ...

    def timer_control(self, armed: bool, watch_unmask: bool) -> None:
        """Native timer: stop at the first block after the deadline (armed) or where the
        guest has unmasked IRQs (watch_unmask)."""
        ...

    def timer_active(self) -> bool:
        """Native timer: the guest has armed the timer (or an IRQ waited) since boot."""
        ...

    def request_stop_soon(self) -> None:
        """Stop at the next block boundary, a clean point (no-op without a native timer)."""
        ...
