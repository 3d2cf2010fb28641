"""ARM PrimeCell PL031 real-time clock.

The counter is not stored: it is the last value loaded into RTCLR plus the whole seconds the
host clock says have passed since that load, so it keeps time without a timer thread. Before
the guest loads anything the counter reads the host's time (as if 0 had been loaded at the epoch).

The match interrupt has no timer behind it either: the instant the counter reaches RTCMR is
computed when MR or LR is written, and the raw interrupt is latched lazily, when the guest reads
RTCRIS/RTCMIS or when the VMM calls `poll()` (it can ask `deadline` when to).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import IntEnum

from mmioguard.vmm.device import primecell_id_registers, register_pieces

PL031_SIZE = 0x1000
PL031_PART_ID: tuple[int, int, int, int] = (0x31, 0x10, 0x14, 0x00)

_WORD = 0xFFFF_FFFF
_MATCH = 1  # the one interrupt bit in IMSC / RIS / MIS / ICR


class Reg(IntEnum):
    DR = 0x000
    MR = 0x004
    LR = 0x008
    CR = 0x00C
    IMSC = 0x010
    RIS = 0x014
    MIS = 0x018
    ICR = 0x01C


class Pl031:
    """PL031 RTC model keeping time from an injectable clock (seconds since the epoch)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        irq: Callable[[bool], None] | None = None,
        on_unknown: Callable[[str], None] | None = None,
        name: str = "pl031",
    ) -> None:
        self.name = name
        self.size = PL031_SIZE
        self._clock = clock
        self._irq = irq
        self._on_unknown = on_unknown
        self._ids = primecell_id_registers(PL031_PART_ID)
        self._loaded = 0
        self._loaded_at = 0.0
        self._mr = 0
        self._imsc = 0
        self._ris = 0
        self._deadline: float | None = None
        self._irq_level = False

    # -- guest accesses -------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        value = 0
        for reg, lane, count, pos in register_pieces(offset, size):
            word = self._read_register(reg, lane)
            value |= ((word >> (8 * lane)) & ((1 << (8 * count)) - 1)) << (8 * pos)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        for reg, lane, count, pos in register_pieces(offset, size):
            piece = (value >> (8 * pos)) & ((1 << (8 * count)) - 1)
            self._write_register(reg, lane, count, piece)

    def reset(self) -> None:
        # The counter survives: guests keep time (and count their boots) across a VM reset.
        # Only the alarm and the interrupt logic start over.
        self._mr = 0
        self._imsc = 0
        self._ris = 0
        self._deadline = None
        self._update_irq()

    # -- host side ------------------------------------------------------------------------

    def now(self) -> int:
        """The counter value (what RTCDR reads)."""
        elapsed = math.floor(self._clock() - self._loaded_at)
        return (self._loaded + elapsed) & _WORD

    @property
    def deadline(self) -> float | None:
        """Clock time at which the match interrupt will be raised, or None if none is due."""
        return self._deadline

    @property
    def irq_level(self) -> bool:
        """The level of the interrupt line: (RIS & IMSC) != 0."""
        return self._irq_level

    def poll(self) -> None:
        """Latch the match interrupt if its time has come, and update the interrupt line."""
        if self._deadline is not None and self._clock() >= self._deadline:
            self._deadline = None
            self._ris = _MATCH
        self._update_irq()

    # -- internals --------------------------------------------------------------------------

    def _arm(self) -> None:
        now = self._clock()
        elapsed = math.floor(now - self._loaded_at)
        ticks = (self._mr - (self._loaded + elapsed)) & _WORD
        if ticks == 0:
            # As QEMU does: a match value equal to the counter fires at once.
            self._deadline = None
            self._ris = _MATCH
        else:
            self._deadline = self._loaded_at + elapsed + ticks
        self._update_irq()

    def _update_irq(self) -> None:
        level = (self._ris & self._imsc) != 0
        if level != self._irq_level:
            self._irq_level = level
            if self._irq is not None:
                self._irq(level)

    def _read_register(self, reg: int, lane: int) -> int:
        if reg == Reg.DR:
            return self.now()
        if reg == Reg.MR:
            return self._mr
        if reg == Reg.LR:
            return self._loaded
        if reg == Reg.CR:
            # The RTC starts at reset and cannot be stopped.
            return 1
        if reg == Reg.IMSC:
            return self._imsc
        if reg == Reg.RIS:
            self.poll()
            return self._ris
        if reg == Reg.MIS:
            self.poll()
            return self._ris & self._imsc
        if reg == Reg.ICR:
            return 0
        ident = self._ids.get(reg)
        if ident is not None:
            return ident
        self._unknown(f"read of unknown register at offset {reg + lane:#05x}")
        return 0

    def _write_register(self, reg: int, lane: int, count: int, value: int) -> None:
        shift = 8 * lane
        lanes = ((1 << (8 * count)) - 1) << shift
        if reg == Reg.MR:
            self._mr = (self._mr & ~lanes) | (value << shift)
            self._arm()
        elif reg == Reg.LR:
            self._loaded = (self._loaded & ~lanes) | (value << shift)
            self._loaded_at = self._clock()
            self._arm()
        elif reg == Reg.CR:
            pass  # writing 0 does not stop a started RTC, and it is always started
        elif reg == Reg.IMSC:
            self._imsc = ((self._imsc & ~lanes) | (value << shift)) & _MATCH
            self._update_irq()
        elif reg == Reg.ICR:
            if (value << shift) & _MATCH:
                self._ris = 0
            self._update_irq()
        elif reg in (Reg.DR, Reg.RIS, Reg.MIS) or reg in self._ids:
            self._unknown(f"write of {value << shift:#x} to read-only register at {reg:#05x}")
        else:
            self._unknown(f"write of {value << shift:#x} to unknown register at {reg + lane:#05x}")

    def _unknown(self, what: str) -> None:
        if self._on_unknown is not None:
            self._on_unknown(f"{self.name}: {what}")
