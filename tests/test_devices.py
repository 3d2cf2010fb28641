"""PL011 UART and PL031 RTC register behaviour."""

from __future__ import annotations

import pytest

from mmioguard.vmm.device import MmioDevice, register_pieces
from mmioguard.vmm.devices.pl011 import OUTPUT_FLUSH_THRESHOLD, Pl011
from mmioguard.vmm.devices.pl031 import Pl031

DR, RSR, FR, ILPR, IBRD, FBRD, LCR_H, CR = 0x0, 0x4, 0x18, 0x20, 0x24, 0x28, 0x2C, 0x30
IFLS, IMSC, RIS, MIS, ICR, DMACR = 0x34, 0x38, 0x3C, 0x40, 0x44, 0x48
TXFE, RXFF, TXFF, RXFE, BUSY = 0x80, 0x40, 0x20, 0x10, 0x08
RXIM, TXIM, RTIM = 1 << 4, 1 << 5, 1 << 6
UARTEN, TXE, RXE, LBE = 1 << 0, 1 << 8, 1 << 9, 1 << 7


class Uart:
    """A PL011 with its sink, interrupt line and unknown-access reports recorded."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.irqs: list[bool] = []
        self.unknown: list[str] = []
        self.dev = Pl011(self.chunks.append, irq=self.irqs.append, on_unknown=self.unknown.append)

    @property
    def output(self) -> bytes:
        return b"".join(self.chunks)

    def puts(self, text: bytes) -> None:
        for byte in text:
            self.dev.write(DR, 4, byte)


@pytest.fixture
def uart() -> Uart:
    return Uart()


def test_register_pieces() -> None:
    assert list(register_pieces(0x18, 4)) == [(0x18, 0, 4, 0)]
    assert list(register_pieces(0x19, 1)) == [(0x18, 1, 1, 0)]
    assert list(register_pieces(0x30, 8)) == [(0x30, 0, 4, 0), (0x34, 0, 4, 4)]
    assert list(register_pieces(0x2E, 4)) == [(0x2C, 2, 2, 0), (0x30, 0, 2, 2)]


# -- PL011 -------------------------------------------------------------------------------


def test_pl011_is_a_device(uart: Uart) -> None:
    assert isinstance(uart.dev, MmioDevice)
    assert uart.dev.name == "pl011"
    assert uart.dev.size == 0x1000


def test_pl011_ids(uart: Uart) -> None:
    ids = [uart.dev.read(0xFE0 + 4 * i, 4) for i in range(8)]
    assert ids == [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
    assert [uart.dev.read(0xFE0 + 4 * i, 1) for i in range(8)] == ids
    assert uart.unknown == []


def test_pl011_flags_idle(uart: Uart) -> None:
    for size in (1, 2, 4, 8):
        flags = uart.dev.read(FR, size)
        assert flags & TXFE and flags & RXFE
        assert not flags & (TXFF | BUSY | RXFF)
    assert uart.dev.read(FR + 1, 1) == 0


def test_pl011_flags_with_input(uart: Uart) -> None:
    uart.dev.feed(b"ab")
    assert uart.dev.read(FR, 4) & RXFE == 0
    assert uart.dev.read(DR, 4) == ord("a")
    assert uart.dev.read(FR, 2) & RXFE == 0
    assert uart.dev.read(DR, 1) == ord("b")
    assert uart.dev.read(FR, 4) & RXFE
    assert uart.dev.read(DR, 4) == 0  # empty: reads 0, RXFE says so
    assert uart.dev.pending_input == 0


def test_pl011_dr_upper_lanes_do_not_pop(uart: Uart) -> None:
    uart.dev.feed(b"x")
    assert uart.dev.read(DR + 1, 1) == 0
    assert uart.dev.pending_input == 1
    assert uart.dev.read(DR, 8) == ord("x")


def test_pl011_output_buffered_until_newline(uart: Uart) -> None:
    uart.puts(b"hello")
    assert uart.chunks == []
    uart.puts(b" world\nmore")
    assert uart.chunks == [b"hello world\n"]
    uart.dev.flush()
    assert uart.chunks == [b"hello world\n", b"more"]
    uart.dev.flush()
    assert len(uart.chunks) == 2


def test_pl011_output_flushes_at_threshold(uart: Uart) -> None:
    uart.puts(b"x" * (OUTPUT_FLUSH_THRESHOLD - 1))
    assert uart.chunks == []
    uart.puts(b"y")
    assert len(uart.chunks) == 1 and len(uart.chunks[0]) == OUTPUT_FLUSH_THRESHOLD
    uart.puts(b"z")
    uart.dev.flush()
    assert uart.output == b"x" * (OUTPUT_FLUSH_THRESHOLD - 1) + b"yz"


def test_pl011_byte_and_halfword_writes_transmit(uart: Uart) -> None:
    uart.dev.write(DR, 1, ord("A"))
    uart.dev.write(DR, 2, ord("B"))
    uart.dev.write(DR, 4, 0xF00 | ord("C"))  # bits above the data byte are ignored
    uart.dev.write(DR + 1, 1, ord("D"))  # upper lane: error bits, not data
    uart.dev.flush()
    assert uart.output == b"ABC"


def test_pl011_transmits_without_enable(uart: Uart) -> None:
    uart.dev.write(CR, 4, 0)
    uart.puts(b"ok\n")
    assert uart.output == b"ok\n"


def test_pl011_loopback(uart: Uart) -> None:
    uart.dev.write(CR, 4, UARTEN | TXE | RXE | LBE)
    uart.dev.write(DR, 4, 0)
    uart.dev.flush()
    assert uart.output == b""
    assert uart.dev.read(FR, 4) & RXFE == 0
    assert uart.dev.read(DR, 4) == 0
    uart.dev.write(CR, 4, UARTEN | TXE | RXE)
    uart.puts(b"!\n")
    assert uart.output == b"!\n"


def test_pl011_storage_registers_and_reset_values(uart: Uart) -> None:
    assert uart.dev.read(CR, 4) == TXE | RXE
    assert uart.dev.read(IFLS, 4) == 0x12
    for reg, value, width in [
        (ILPR, 0xAB, 0xFF),
        (IBRD, 0x1234, 0xFFFF),
        (FBRD, 0x3F, 0x3F),
        (LCR_H, 0x70, 0xFF),
        (IFLS, 0x09, 0x3F),
        (DMACR, 0x7, 0x7),
    ]:
        uart.dev.write(reg, 4, 0xFFFF_FFFF)
        assert uart.dev.read(reg, 4) == width, hex(reg)
        uart.dev.write(reg, 4, value)
        assert uart.dev.read(reg, 4) == value, hex(reg)
    # Linux's amba-pl011 uses 16-bit accesses.
    uart.dev.write(CR, 2, UARTEN | TXE | RXE)
    assert uart.dev.read(CR, 2) == UARTEN | TXE | RXE
    # A byte write to the upper lane leaves the low byte alone.
    uart.dev.write(CR + 1, 1, 0x00)
    assert uart.dev.read(CR, 4) == UARTEN
    uart.dev.reset()
    assert uart.dev.read(CR, 4) == TXE | RXE
    assert uart.dev.read(IBRD, 4) == 0
    assert uart.dev.read(IFLS, 4) == 0x12
    assert uart.unknown == []


def test_pl011_error_registers(uart: Uart) -> None:
    assert uart.dev.read(RSR, 4) == 0
    uart.dev.write(RSR, 4, 0xFF)
    assert uart.dev.read(RSR, 4) == 0
    assert uart.dev.read(ICR, 4) == 0
    assert uart.unknown == []


def test_pl011_unknown_offsets(uart: Uart) -> None:
    assert uart.dev.read(0x50, 4) == 0
    uart.dev.write(0x50, 4, 0x1234)
    uart.dev.write(FR, 4, 0)
    uart.dev.write(0xFE0, 4, 0)
    assert uart.unknown == [
        "pl011: read of unknown register at offset 0x050",
        "pl011: write of 0x1234 to unknown register at 0x050",
        "pl011: write of 0x0 to read-only register at 0x018",
        "pl011: write of 0x0 to read-only register at 0xfe0",
    ]
    silent = Pl011(lambda data: None)
    assert silent.read(0x50, 4) == 0
    silent.write(0x50, 4, 1)


def test_pl011_tx_interrupt(uart: Uart) -> None:
    dev = uart.dev
    assert dev.read(RIS, 4) & TXIM == 0  # UARTEN is clear after reset
    dev.write(CR, 4, UARTEN | TXE | RXE)
    assert dev.read(RIS, 4) & TXIM
    assert dev.read(MIS, 4) == 0 and uart.irqs == []
    dev.write(IMSC, 4, TXIM)
    assert dev.read(MIS, 4) == TXIM and uart.irqs == [True]
    dev.write(ICR, 4, TXIM)
    assert dev.read(RIS, 4) & TXIM == 0 and uart.irqs == [True, False]
    dev.write(DR, 4, ord("a"))  # the byte leaves at once: pending again
    assert dev.read(MIS, 4) == TXIM and uart.irqs == [True, False, True]
    dev.write(DR, 4, ord("b"))
    assert uart.irqs == [True, False, True]  # only changes are reported
    dev.write(IMSC, 4, 0)
    assert uart.irqs == [True, False, True, False]
    assert dev.irq_level is False
    dev.write(IMSC, 4, TXIM)
    dev.write(CR, 4, UARTEN | RXE)  # TX disabled: no TX interrupt
    assert dev.read(RIS, 4) & TXIM == 0 and dev.irq_level is False


def test_pl011_rx_interrupt(uart: Uart) -> None:
    dev = uart.dev
    dev.write(IMSC, 4, RXIM | RTIM)
    assert uart.irqs == []
    dev.feed(b"")
    assert uart.irqs == []
    dev.feed(b"hi")
    assert dev.read(RIS, 4) & (RXIM | RTIM) == RXIM | RTIM
    assert dev.read(MIS, 4) == RXIM | RTIM
    assert uart.irqs == [True]
    assert dev.read(DR, 4) == ord("h")
    assert dev.irq_level  # one byte still waits
    assert dev.read(DR, 4) == ord("i")
    assert uart.irqs == [True, False]
    assert dev.read(RIS, 4) & (RXIM | RTIM) == 0
    # Clearing through ICR drops the interrupt even with data left, as on hardware.
    dev.feed(b"z")
    dev.write(ICR, 4, RXIM | RTIM)
    assert uart.irqs == [True, False, True, False]
    assert dev.read(FR, 4) & RXFE == 0
    assert dev.read(DR, 4) == ord("z")


def test_pl011_reset_flushes_output_and_clears_input(uart: Uart) -> None:
    dev = uart.dev
    dev.write(CR, 4, UARTEN | TXE | RXE)
    dev.write(IMSC, 4, TXIM | RXIM)
    dev.feed(b"pending")
    uart.puts(b"partial")
    assert uart.irqs == [True]
    dev.reset()
    assert uart.output == b"partial"
    assert uart.irqs == [True, False]
    assert dev.pending_input == 0
    assert dev.read(FR, 4) & RXFE
    assert dev.read(IMSC, 4) == 0
    assert dev.raw_interrupts == 0


def test_pl011_sub_word_ris_and_wide_reads(uart: Uart) -> None:
    dev = uart.dev
    dev.write(IBRD, 4, 0x1234)
    dev.write(FBRD, 4, 0x21)
    assert dev.read(IBRD, 8) == 0x21_0000_1234
    assert dev.read(IBRD + 1, 1) == 0x12
    assert dev.read(IBRD, 2) == 0x1234
    dev.write(IBRD, 8, 0x05_0000_0010)
    assert dev.read(IBRD, 4) == 0x10 and dev.read(FBRD, 4) == 0x05


# -- PL031 -------------------------------------------------------------------------------

RTC_DR, RTC_MR, RTC_LR, RTC_CR, RTC_IMSC, RTC_RIS, RTC_MIS, RTC_ICR = range(0, 0x20, 4)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Rtc:
    def __init__(self, start: float = 1_700_000_000.25) -> None:
        self.clock = FakeClock(start)
        self.irqs: list[bool] = []
        self.unknown: list[str] = []
        self.dev = Pl031(self.clock, irq=self.irqs.append, on_unknown=self.unknown.append)


@pytest.fixture
def rtc() -> Rtc:
    return Rtc()


def test_pl031_is_a_device(rtc: Rtc) -> None:
    assert isinstance(rtc.dev, MmioDevice)
    assert rtc.dev.name == "pl031" and rtc.dev.size == 0x1000


def test_pl031_ids(rtc: Rtc) -> None:
    ids = [rtc.dev.read(0xFE0 + 4 * i, 4) for i in range(8)]
    assert ids == [0x31, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]


def test_pl031_dr_follows_the_host_clock(rtc: Rtc) -> None:
    assert rtc.dev.read(RTC_DR, 4) == 1_700_000_000
    rtc.clock.now += 0.74
    assert rtc.dev.read(RTC_DR, 4) == 1_700_000_000
    rtc.clock.now += 0.01
    assert rtc.dev.read(RTC_DR, 4) == 1_700_000_001
    assert rtc.dev.read(RTC_LR, 4) == 0
    assert rtc.dev.read(RTC_CR, 4) == 1


def test_pl031_default_clock_is_wall_time() -> None:
    import time

    before = int(time.time())
    value = Pl031().read(RTC_DR, 4)
    assert before <= value <= int(time.time())


def test_pl031_load_counts_from_the_write(rtc: Rtc) -> None:
    rtc.dev.write(RTC_LR, 4, 1000)
    assert rtc.dev.read(RTC_LR, 4) == 1000
    assert rtc.dev.read(RTC_DR, 4) == 1000
    rtc.clock.now += 0.999
    assert rtc.dev.read(RTC_DR, 4) == 1000
    rtc.clock.now += 0.001
    assert rtc.dev.read(RTC_DR, 4) == 1001
    rtc.clock.now += 3600
    assert rtc.dev.read(RTC_DR, 4) == 4601
    assert rtc.dev.now() == 4601


def test_pl031_counter_wraps(rtc: Rtc) -> None:
    rtc.dev.write(RTC_LR, 4, 0xFFFF_FFFF)
    rtc.clock.now += 1
    assert rtc.dev.read(RTC_DR, 4) == 0


def test_pl031_reset_keeps_the_time(rtc: Rtc) -> None:
    rtc.dev.write(RTC_LR, 4, 42)
    rtc.dev.write(RTC_IMSC, 4, 1)
    rtc.clock.now += 10
    rtc.dev.reset()
    assert rtc.dev.read(RTC_DR, 4) == 52
    assert rtc.dev.read(RTC_LR, 4) == 42
    assert rtc.dev.read(RTC_IMSC, 4) == 0
    assert rtc.dev.read(RTC_RIS, 4) == 0
    assert rtc.dev.read(RTC_CR, 4) == 1


def test_pl031_match_interrupt(rtc: Rtc) -> None:
    dev = rtc.dev
    dev.write(RTC_LR, 4, 100)
    dev.write(RTC_IMSC, 4, 1)
    dev.write(RTC_MR, 4, 105)
    assert dev.read(RTC_MR, 4) == 105
    assert dev.deadline == pytest.approx(rtc.clock.now + 5)
    rtc.clock.now += 4.9
    assert dev.read(RTC_RIS, 4) == 0 and rtc.irqs == []
    rtc.clock.now += 0.1
    dev.poll()
    assert rtc.irqs == [True] and dev.irq_level
    assert dev.read(RTC_RIS, 4) == 1 and dev.read(RTC_MIS, 4) == 1
    assert dev.deadline is None
    dev.write(RTC_ICR, 4, 1)
    assert dev.read(RTC_RIS, 4) == 0 and rtc.irqs == [True, False]


def test_pl031_match_found_by_a_register_read(rtc: Rtc) -> None:
    dev = rtc.dev
    dev.write(RTC_LR, 4, 0)
    dev.write(RTC_ICR, 4, 1)  # loading 0 matched MR=0 at once
    dev.write(RTC_MR, 4, 2)
    rtc.clock.now += 2
    assert dev.read(RTC_MIS, 4) == 0  # masked
    assert dev.read(RTC_RIS, 4) == 1
    assert rtc.irqs == []
    dev.write(RTC_IMSC, 4, 1)
    assert rtc.irqs == [True]


def test_pl031_match_equal_to_counter_fires_at_once(rtc: Rtc) -> None:
    dev = rtc.dev
    dev.write(RTC_IMSC, 4, 1)
    dev.write(RTC_MR, 4, dev.read(RTC_DR, 4))
    assert rtc.irqs == [True]
    assert dev.read(RTC_RIS, 4) == 1


def test_pl031_unknown_and_read_only(rtc: Rtc) -> None:
    assert rtc.dev.read(0x20, 4) == 0
    rtc.dev.write(RTC_DR, 4, 5)
    rtc.dev.write(0x20, 4, 5)
    rtc.dev.write(RTC_CR, 4, 0)  # cannot stop the RTC: silently ignored
    assert rtc.dev.read(RTC_CR, 4) == 1
    assert rtc.unknown == [
        "pl031: read of unknown register at offset 0x020",
        "pl031: write of 0x5 to read-only register at 0x000",
        "pl031: write of 0x5 to unknown register at 0x020",
    ]


def test_pl031_sub_word_access(rtc: Rtc) -> None:
    rtc.dev.write(RTC_LR, 4, 0x1234_5678)
    assert rtc.dev.read(RTC_DR, 1) == 0x78
    assert rtc.dev.read(RTC_DR + 2, 2) == 0x1234
    rtc.dev.write(RTC_MR + 3, 1, 0xAB)
    assert rtc.dev.read(RTC_MR, 4) == 0xAB00_0000


class FakeFastPath:
    """Stands in for the C module's NativePl011: what it answers, what it buffered."""

    def __init__(self) -> None:
        self.fr = -1
        self.modes: list[tuple[bool, bool]] = []
        self.ring = bytearray()

    def set_mode(self, fr_fast: bool, dr_fast: bool) -> None:
        self.modes.append((fr_fast, dr_fast))

    @property
    def dr_fast(self) -> bool:
        return self.modes[-1][1]

    def drain(self) -> bytes:
        data = bytes(self.ring)
        self.ring.clear()
        return data


def test_pl011_keeps_a_fast_path_in_step() -> None:
    out: list[bytes] = []
    uart = Pl011(out.append)
    fast = FakeFastPath()
    uart.attach_fast_path(fast)
    assert fast.fr == uart.read(0x18, 4) and fast.dr_fast
    # Bytes C buffered go out before a byte the model handles, and whole lines reach the sink.
    fast.ring += b"ab"
    uart.write(0x000, 4, ord("c"))
    fast.ring += b"d\n"
    uart.take_fast_output()
    assert b"".join(out) == b"abcd\n"
    # Input changes UARTFR: C must see it.
    uart.feed(b"x")
    assert fast.fr == uart.read(0x18, 4) and not fast.fr & 0x10
    assert uart.read(0x000, 4) == ord("x") and fast.fr & 0x10
    # A TX interrupt acknowledgement makes the next DR write more than output: not for C.
    uart.write(0x030, 4, 0x301)  # UARTEN | TXE | RXE
    uart.write(0x044, 4, 0x20)  # ICR: TX
    assert not fast.dr_fast
    uart.write(0x000, 4, ord("y"))
    assert fast.dr_fast
    # Loopback: DR writes come back as input, never C's output.
    uart.write(0x030, 4, 0x381)
    assert not fast.dr_fast
    uart.flush()
    assert b"".join(out).endswith(b"y")
