"""The guest's counter and the architected virtual timer (the reference model).

Unicorn lets CNTVCT_EL0 follow host time and drops writes to CNTV_CTL_EL0 and CNTV_CVAL_EL0
(docs/unicorn.md), so the hypervisor emulates them, as KVM's arch timer code does: the CPU
backend traps MRS/MSR of the timer registers (in C on the native path, whose state the run loop
reads back after every stop), and the run loop drives the timer's PPI from the output level.

Time is counted in ticks of the 62.5 MHz counter Unicorn reports in CNTFRQ_EL0. A clock is
either real (host monotonic time since boot) or deterministic (``--icount SHIFT``: each
instruction lasts 2**SHIFT ns, and idle time at WFI is skipped), so that two runs of the same
guest read the same counter values.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Protocol

COUNTER_HZ = 62_500_000
TICK_NS = 1_000_000_000 // COUNTER_HZ  # 16
VIRTUAL_TIMER_PPI = 27  # PPI 11
MAX_ICOUNT_SHIFT = 10

CTL_ENABLE = 1
CTL_IMASK = 2
CTL_ISTATUS = 4

_U64 = (1 << 64) - 1


class TimerReg(enum.Enum):
    """The timer registers the hypervisor answers, by (crn, crm, op0, op1, op2)."""

    CNTPCT = (14, 0, 3, 3, 1)
    CNTVCT = (14, 0, 3, 3, 2)
    CNTV_TVAL = (14, 3, 3, 3, 0)
    CNTV_CTL = (14, 3, 3, 3, 1)
    CNTV_CVAL = (14, 3, 3, 3, 2)


TIMER_REGS = {r.value: r for r in TimerReg}


class ClockMode(enum.Enum):
    REAL = "real"
    ICOUNT = "icount"


@dataclass(frozen=True)
class ClockConfig:
    mode: ClockMode = ClockMode.REAL
    shift: int = 0  # icount: 2**shift ns per instruction

    def __post_init__(self) -> None:
        if not 0 <= self.shift <= MAX_ICOUNT_SHIFT:
            raise ValueError(f"icount shift {self.shift} is not in 0..{MAX_ICOUNT_SHIFT}")


class GuestClock(Protocol):
    """The VM's counter (CNTVCT_EL0 = CNTPCT_EL0: no offset), shared by its vCPUs."""

    config: ClockConfig

    def now(self) -> int:
        """The counter, in ticks."""
        ...

    def skip_to(self, ticks: int) -> None:
        """Deterministic clocks: the vCPUs idle until ``ticks`` (no effect on real time)."""
        ...

    def add_instructions(self, count: int) -> None:
        """Instructions the run loop counted itself (clocks fed by the backend ignore it)."""
        ...

    def reset(self) -> None: ...


class PyClock:
    """The clock of the pure-Python path; icount advances by whole slices."""

    def __init__(self, config: ClockConfig) -> None:
        self.config = config
        self._icount = 0
        self._skip_ns = 0
        self._origin = time.monotonic_ns()

    def now(self) -> int:
        if self.config.mode is ClockMode.ICOUNT:
            return ((self._icount << self.config.shift) + self._skip_ns) // TICK_NS
        return max(time.monotonic_ns() - self._origin, 0) // TICK_NS

    def skip_to(self, ticks: int) -> None:
        if self.config.mode is ClockMode.ICOUNT:
            now = self.now()
            if ticks > now:
                self._skip_ns += (ticks - now) * TICK_NS

    def add_instructions(self, count: int) -> None:
        self._icount += count

    def reset(self) -> None:
        self._icount = 0
        self._skip_ns = 0
        self._origin = time.monotonic_ns()


def sign_extend32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value & 0x8000_0000 else value


class VirtualTimer:
    """CNTV_CTL_EL0 and CNTV_CVAL_EL0 of one vCPU (Arm ARM D11.2, the generic timer)."""

    def __init__(self) -> None:
        self.ctl = 0  # ENABLE and IMASK; ISTATUS is computed
        self.cval = 0

    def reset(self) -> None:
        self.ctl = 0
        self.cval = 0

    def condition(self, now: int) -> bool:
        """ISTATUS: enabled and the counter has reached CVAL."""
        return bool(self.ctl & CTL_ENABLE) and now >= self.cval

    def output(self, now: int) -> bool:
        """The interrupt line: the condition met and not masked."""
        return self.condition(now) and not self.ctl & CTL_IMASK

    def deadline(self) -> int | None:
        """The counter value at which the output rises, or None if it cannot."""
        if self.ctl & CTL_ENABLE and not self.ctl & CTL_IMASK:
            return self.cval
        return None

    def read(self, reg: TimerReg, now: int) -> int:
        if reg in (TimerReg.CNTVCT, TimerReg.CNTPCT):
            return now & _U64
        if reg is TimerReg.CNTV_CTL:
            return self.ctl | (CTL_ISTATUS if self.condition(now) else 0)
        if reg is TimerReg.CNTV_CVAL:
            return self.cval
        return (self.cval - now) & 0xFFFF_FFFF  # CNTV_TVAL

    def write(self, reg: TimerReg, value: int, now: int) -> bool:
        """Apply an MSR; False for the read-only counters (left to the emulator)."""
        if reg is TimerReg.CNTV_CTL:
            self.ctl = value & (CTL_ENABLE | CTL_IMASK)
        elif reg is TimerReg.CNTV_CVAL:
            self.cval = value & _U64
        elif reg is TimerReg.CNTV_TVAL:
            self.cval = (now + sign_extend32(value)) & _U64
        else:
            return False
        return True


def ticks_to_seconds(ticks: int) -> float:
    return ticks / COUNTER_HZ
