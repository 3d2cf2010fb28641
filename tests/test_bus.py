"""MmioBus: range bookkeeping at every edge."""

from __future__ import annotations

import pytest

from mmioguard.vmm.bus import BusError, MmioBus
from mmioguard.vmm.device import MmioDevice


class Dummy:
    def __init__(self, name: str, size: int = 0x1000) -> None:
        self.name = name
        self.size = size

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        pass

    def reset(self) -> None:
        pass


BASE = 0x0900_0000
SIZE = 0x1000


@pytest.fixture
def bus() -> MmioBus:
    bus = MmioBus()
    bus.insert(BASE, SIZE, Dummy("a"))
    return bus


def test_dummy_is_a_device() -> None:
    assert isinstance(Dummy("x"), MmioDevice)


def test_lookup_first_and_last_byte(bus: MmioBus) -> None:
    first = bus.lookup(BASE)
    last = bus.lookup(BASE + SIZE - 1)
    assert first is not None and last is not None
    assert first[0] == BASE and first[1].name == "a"
    assert last[0] == BASE and last[1] is first[1]


def test_lookup_one_before_and_one_past(bus: MmioBus) -> None:
    assert bus.lookup(BASE - 1) is None
    assert bus.lookup(BASE + SIZE) is None


def test_lookup_empty_bus_and_extremes() -> None:
    bus = MmioBus()
    assert bus.lookup(0) is None
    assert bus.lookup(-1) is None
    assert bus.lookup((1 << 64) - 1) is None


def test_adjacent_regions_allowed(bus: MmioBus) -> None:
    bus.insert(BASE + SIZE, SIZE, Dummy("after"))
    bus.insert(BASE - SIZE, SIZE, Dummy("before"))
    for addr, name in [
        (BASE - SIZE, "before"),
        (BASE - 1, "before"),
        (BASE, "a"),
        (BASE + SIZE - 1, "a"),
        (BASE + SIZE, "after"),
        (BASE + 2 * SIZE - 1, "after"),
    ]:
        hit = bus.lookup(addr)
        assert hit is not None and hit[1].name == name, hex(addr)
    assert bus.lookup(BASE + 2 * SIZE) is None
    assert bus.lookup(BASE - SIZE - 1) is None


@pytest.mark.parametrize(
    ("base", "size"),
    [
        (BASE, SIZE),  # identical
        (BASE - 1, 2),  # covers the first byte from below
        (BASE - SIZE + 1, SIZE),  # ends on the first byte
        (BASE + SIZE - 1, 1),  # the last byte
        (BASE + SIZE - 1, SIZE),  # starts on the last byte
        (BASE + 1, 1),  # strictly inside
        (BASE - SIZE, 3 * SIZE),  # strictly around
        (BASE, 1),  # same base, smaller
        (BASE, 2 * SIZE),  # same base, larger
    ],
)
def test_overlap_rejected(bus: MmioBus, base: int, size: int) -> None:
    with pytest.raises(BusError, match="overlaps a at 0x9000000 - 0x9001000"):
        bus.insert(base, size, Dummy("b"))
    assert len(bus) == 1


def test_overlap_with_the_next_range_rejected() -> None:
    bus = MmioBus()
    bus.insert(0x2000, 0x1000, Dummy("high"))
    bus.insert(0x0, 0x1000, Dummy("low"))
    with pytest.raises(BusError, match="overlaps high"):
        bus.insert(0x1000, 0x1001, Dummy("mid"))
    bus.insert(0x1000, 0x1000, Dummy("mid"))
    assert [d.name for _, _, d in bus.devices()] == ["low", "mid", "high"]


@pytest.mark.parametrize("size", [0, -1])
def test_empty_size_rejected(size: int) -> None:
    with pytest.raises(BusError, match="empty"):
        MmioBus().insert(BASE, size, Dummy("z"))


def test_address_space_edges() -> None:
    bus = MmioBus()
    top = 1 << 64
    bus.insert(top - 0x1000, 0x1000, Dummy("top"))
    hit = bus.lookup(top - 1)
    assert hit is not None and hit[1].name == "top"
    with pytest.raises(BusError, match="64-bit"):
        bus.insert(top - 0x1000, 0x1001, Dummy("over"))
    with pytest.raises(BusError, match="64-bit"):
        bus.insert(top, 1, Dummy("over"))
    with pytest.raises(BusError, match="negative"):
        bus.insert(-0x1000, 0x1000, Dummy("neg"))
    bus.insert(0, 1, Dummy("zero"))
    hit = bus.lookup(0)
    assert hit is not None and hit[1].name == "zero"
    assert bus.lookup(1) is None


def test_devices_in_address_order() -> None:
    bus = MmioBus()
    for base, name in [(0x3000, "c"), (0x1000, "a"), (0x2000, "b")]:
        bus.insert(base, 0x100, Dummy(name))
    assert [(base, size, dev.name) for base, size, dev in bus.devices()] == [
        (0x1000, 0x100, "a"),
        (0x2000, 0x100, "b"),
        (0x3000, 0x100, "c"),
    ]


def test_remove(bus: MmioBus) -> None:
    device = bus.remove(BASE)
    assert device.name == "a"
    assert bus.lookup(BASE) is None
    assert len(bus) == 0
    bus.insert(BASE, SIZE, Dummy("again"))
    with pytest.raises(BusError, match="no device"):
        bus.remove(BASE + 1)
    with pytest.raises(BusError, match="no device"):
        bus.remove(BASE - 1)


def test_remove_while_iterating() -> None:
    bus = MmioBus()
    for base in (0x1000, 0x2000, 0x3000):
        bus.insert(base, 0x100, Dummy(hex(base)))
    for base, _, _ in bus.devices():
        bus.remove(base)
    assert len(bus) == 0


def test_many_ranges_lookup_every_edge() -> None:
    bus = MmioBus()
    ranges = [(0x1000 * i * 3, 0x1000 + i) for i in range(200)]
    for base, size in reversed(ranges):
        bus.insert(base, size, Dummy(hex(base), size))
    for base, size in ranges:
        for addr in (base, base + size - 1):
            hit = bus.lookup(addr)
            assert hit is not None and hit[0] == base
        assert bus.lookup(base + size) is None
    assert 0x1000 * 3 in bus
    assert 0x1000 * 3 - 1 not in bus
