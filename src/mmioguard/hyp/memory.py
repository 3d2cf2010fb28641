"""Guest physical memory: the memory slots (RAM, flash) of a VM.

The buffers are anonymous mappings handed to the CPU backend by pointer, so guest RAM exists
once in the process and the hypervisor reads guest page tables and code without copies.
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
import struct
from dataclasses import dataclass, field


@dataclass
class MemorySlot:
    base: int
    size: int
    name: str
    readonly: bool = False
    buf: mmap.mmap = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.buf = mmap.mmap(-1, self.size)

    @property
    def end(self) -> int:
        return self.base + self.size

    def address(self) -> int:
        """Host address of the buffer, for the backend's zero-copy mapping."""
        return ctypes.addressof(ctypes.c_char.from_buffer(self.buf))

    def clear(self) -> None:
        # madvise(DONTNEED) would be cheaper, but is not portable to every host Python.
        self.buf.seek(0)
        chunk = bytes(1 << 20)
        remaining = self.size
        while remaining:
            n = min(remaining, len(chunk))
            self.buf.write(chunk[:n])
            remaining -= n
        self.buf.seek(0)


class PhysMemory:
    """The memory slots of a VM, in address order."""

    def __init__(self) -> None:
        self._slots: list[MemorySlot] = []
        self._bases: list[int] = []

    def add(self, slot: MemorySlot) -> MemorySlot:
        if self.overlapping(slot.base, slot.size) is not None:
            raise ValueError(f"memory slot {slot.name} overlaps another slot")
        i = bisect.bisect(self._bases, slot.base)
        self._slots.insert(i, slot)
        self._bases.insert(i, slot.base)
        return slot

    @property
    def slots(self) -> tuple[MemorySlot, ...]:
        return tuple(self._slots)

    def slot_at(self, pa: int) -> MemorySlot | None:
        i = bisect.bisect(self._bases, pa) - 1
        if i >= 0:
            slot = self._slots[i]
            if pa < slot.end:
                return slot
        return None

    def overlapping(self, base: int, size: int) -> MemorySlot | None:
        for slot in self._slots:
            if base < slot.end and slot.base < base + size:
                return slot
        return None

    def read(self, pa: int, size: int) -> bytes | None:
        slot = self.slot_at(pa)
        if slot is None or pa + size > slot.end:
            return None
        off = pa - slot.base
        return slot.buf[off : off + size]

    def read64(self, pa: int) -> int | None:
        slot = self.slot_at(pa)
        if slot is None or pa + 8 > slot.end:
            return None
        return int(struct.unpack_from("<Q", slot.buf, pa - slot.base)[0])

    def read32(self, pa: int) -> int | None:
        slot = self.slot_at(pa)
        if slot is None or pa + 4 > slot.end:
            return None
        return int(struct.unpack_from("<I", slot.buf, pa - slot.base)[0])

    def write(self, pa: int, data: bytes) -> bool:
        slot = self.slot_at(pa)
        if slot is None or pa + len(data) > slot.end:
            return False
        off = pa - slot.base
        slot.buf[off : off + len(data)] = data
        return True
