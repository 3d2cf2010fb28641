"""The MMIO bus: which device answers at which guest-physical address.

Modelled on rust-vmm's vm-device bus: a set of non-overlapping ranges, each owned by one device,
kept sorted by base so that a lookup is a binary search. Every MMIO exit does a lookup, so the
ranges live in parallel lists that `bisect` can search without building keys.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator

from mmioguard.vmm.device import MmioDevice

ADDRESS_LIMIT = 1 << 64


class BusError(Exception):
    """A range cannot be inserted or removed (overlap, empty, beyond the 64-bit space, absent)."""


def _describe(base: int, size: int, device: MmioDevice) -> str:
    return f"{device.name} at {base:#x} - {base + size:#x}"


class MmioBus:
    """An ordered, non-overlapping set of `(base, size, device)` ranges."""

    def __init__(self) -> None:
        self._bases: list[int] = []
        self._ends: list[int] = []
        self._devices: list[MmioDevice] = []

    def insert(self, base: int, size: int, device: MmioDevice) -> None:
        """Map `device` at `[base, base + size)`; adjacent ranges are fine, overlaps are not."""
        if size <= 0:
            raise BusError(f"cannot map {device.name} at {base:#x}: size {size:#x} is empty")
        if base < 0:
            raise BusError(f"cannot map {device.name} at negative address {base:#x}")
        end = base + size
        if end > ADDRESS_LIMIT:
            raise BusError(
                f"cannot map {device.name} at {base:#x} with size {size:#x}: "
                f"the range ends past the 64-bit address space"
            )
        index = bisect_right(self._bases, base)
        if index > 0 and self._ends[index - 1] > base:
            self._overlap(base, size, device, index - 1)
        if index < len(self._bases) and self._bases[index] < end:
            self._overlap(base, size, device, index)
        self._bases.insert(index, base)
        self._ends.insert(index, end)
        self._devices.insert(index, device)

    def _overlap(self, base: int, size: int, device: MmioDevice, index: int) -> None:
        other_base = self._bases[index]
        other = _describe(other_base, self._ends[index] - other_base, self._devices[index])
        raise BusError(f"cannot map {_describe(base, size, device)}: it overlaps {other}")

    def lookup(self, addr: int) -> tuple[int, MmioDevice] | None:
        """Return `(base, device)` of the range holding `addr`, or None if no device is there."""
        index = bisect_right(self._bases, addr) - 1
        if index >= 0 and addr < self._ends[index]:
            return self._bases[index], self._devices[index]
        return None

    def remove(self, base: int) -> MmioDevice:
        """Unmap the range starting exactly at `base` and return its device."""
        index = bisect_right(self._bases, base) - 1
        if index < 0 or self._bases[index] != base:
            raise BusError(f"no device is mapped at {base:#x}")
        del self._bases[index]
        del self._ends[index]
        return self._devices.pop(index)

    def devices(self) -> Iterator[tuple[int, int, MmioDevice]]:
        """Yield `(base, size, device)` in increasing address order."""
        # A snapshot, so that a caller may remove devices while iterating.
        entries = list(zip(self._bases, self._ends, self._devices, strict=True))
        for base, end, device in entries:
            yield base, end - base, device

    def __len__(self) -> int:
        return len(self._bases)

    def __contains__(self, addr: object) -> bool:
        return isinstance(addr, int) and self.lookup(addr) is not None
