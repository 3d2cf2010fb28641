"""The protocol every emulated MMIO device follows, and helpers shared by the device models.

Devices are plain Python objects: the bus hands them an offset inside their own window, never a
guest-physical address, so a device can be mapped anywhere (or twice) without knowing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

ACCESS_SIZES: frozenset[int] = frozenset((1, 2, 4, 8))
"""The access sizes a device must accept (those an AArch64 load or store with ISV=1 can make)."""

PRIMECELL_ID: tuple[int, int, int, int] = (0x0D, 0xF0, 0x05, 0xB1)
"""PrimeCell identification bytes read at 0xFF0..0xFFC, the same for every PrimeCell part."""


@runtime_checkable
class MmioDevice(Protocol):
    """An emulated device decoding `size` bytes of guest-physical address space.

    `read` returns an unsigned value of `size` bytes (1, 2, 4 or 8); `write` receives a value
    already masked to `size`. Offsets are relative to the base the device is mapped at.
    `reset` is a VM reset (PSCI SYSTEM_RESET), not a power cycle: a device decides what it keeps.
    """

    name: str
    size: int

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...

    def reset(self) -> None: ...


def primecell_id_registers(part: tuple[int, int, int, int]) -> dict[int, int]:
    """Map the offsets 0xFE0..0xFFC to the peripheral ID bytes `part` and the PrimeCell ID."""
    ids = (*part, *PRIMECELL_ID)
    return {0xFE0 + 4 * i: byte for i, byte in enumerate(ids)}


def register_pieces(offset: int, size: int) -> Iterator[tuple[int, int, int, int]]:
    """Split an access into the 32-bit registers it touches.

    Yields `(register offset, byte lane, byte count, byte position in the access value)`.
    Register files of the PrimeCell parts are 32 bits wide; an 8-byte or lane-crossing access
    (which the CPU only makes to Normal memory or by mistake) touches each register in turn.
    """
    pos = 0
    while pos < size:
        addr = offset + pos
        lane = addr & 3
        count = min(4 - lane, size - pos)
        yield addr - lane, lane, count, pos
        pos += count
