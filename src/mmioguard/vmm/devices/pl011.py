"""ARM PrimeCell PL011 UART: enough for Linux's amba-pl011 driver, earlycon and bare-metal guests.

Transmission is instantaneous, so the TX FIFO is always empty and never busy. Received bytes wait
in an unbounded backlog (host input must not be dropped), presented to the guest as a FIFO that is
never full. Output bytes are buffered and handed to the sink per line, per 4 KiB, or on `flush()`,
because calling out per byte would dominate the cost of a chatty guest.

Like QEMU, the model transmits whatever is written to UARTDR even if the guest never set UARTEN
or TXE: many bare-metal guests print without programming the UART at all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import IntEnum, IntFlag
from types import MappingProxyType
from typing import Protocol

from mmioguard.vmm.device import primecell_id_registers, register_pieces

PL011_SIZE = 0x1000
PL011_PART_ID: tuple[int, int, int, int] = (0x11, 0x10, 0x14, 0x00)
OUTPUT_FLUSH_THRESHOLD = 4096


class Reg(IntEnum):
    DR = 0x000
    RSR_ECR = 0x004
    FR = 0x018
    ILPR = 0x020
    IBRD = 0x024
    FBRD = 0x028
    LCR_H = 0x02C
    CR = 0x030
    IFLS = 0x034
    IMSC = 0x038
    RIS = 0x03C
    MIS = 0x040
    ICR = 0x044
    DMACR = 0x048


class Flag(IntFlag):
    """UARTFR bits."""

    CTS = 1 << 0
    DSR = 1 << 1
    DCD = 1 << 2
    BUSY = 1 << 3
    RXFE = 1 << 4
    TXFF = 1 << 5
    RXFF = 1 << 6
    TXFE = 1 << 7
    RI = 1 << 8


class Control(IntFlag):
    """UARTCR bits the model acts on."""

    UARTEN = 1 << 0
    LBE = 1 << 7
    TXE = 1 << 8
    RXE = 1 << 9


class Interrupt(IntFlag):
    """UARTRIS / UARTIMSC / UARTMIS / UARTICR bits."""

    RIM = 1 << 0
    CTSM = 1 << 1
    DCDM = 1 << 2
    DSRM = 1 << 3
    RX = 1 << 4
    TX = 1 << 5
    RT = 1 << 6
    FE = 1 << 7
    PE = 1 << 8
    BE = 1 << 9
    OE = 1 << 10


ALL_INTERRUPTS = 0x7FF

# Plain read/write registers: offset -> (implemented bits, value after reset).
_STORAGE: MappingProxyType[int, tuple[int, int]] = MappingProxyType(
    {
        Reg.ILPR: (0xFF, 0),
        Reg.IBRD: (0xFFFF, 0),
        Reg.FBRD: (0x3F, 0),
        Reg.LCR_H: (0xFF, 0),
        Reg.CR: (0xFF87, int(Control.TXE | Control.RXE)),
        Reg.IFLS: (0x3F, 0x12),
        Reg.IMSC: (ALL_INTERRUPTS, 0),
        Reg.DMACR: (0x7, 0),
    }
)

_READ_ONLY = frozenset((Reg.FR, Reg.RIS, Reg.MIS))

_FR_RX_EMPTY = int(Flag.TXFE | Flag.RXFE)
_FR_RX_READY = int(Flag.TXFE)
_LINE_END = 0x0A
_RX_INTERRUPTS = int(Interrupt.RX | Interrupt.RT)
_TX_INTERRUPT = int(Interrupt.TX)


class FastPath(Protocol):
    """What a native fast path may answer for this UART without the model (the C module's
    NativePl011): UARTFR reads from ``fr``, and UARTDR writes appended to a ring while
    ``dr_fast``, which the model drains before it handles anything else."""

    fr: int

    def set_mode(self, fr_fast: bool, dr_fast: bool) -> None: ...

    def drain(self) -> bytes: ...


class Pl011:
    """PL011 UART model; see the module docstring for what is simplified and why."""

    def __init__(
        self,
        sink: Callable[[bytes], None],
        irq: Callable[[bool], None] | None = None,
        on_unknown: Callable[[str], None] | None = None,
        name: str = "pl011",
    ) -> None:
        self.name = name
        self.size = PL011_SIZE
        self._sink = sink
        self._irq = irq
        self._on_unknown = on_unknown
        self._ids = primecell_id_registers(PL011_PART_ID)
        self._out = bytearray()
        self._rx: deque[int] = deque()
        self._regs: dict[int, int] = {}
        self._fr = _FR_RX_EMPTY
        self._loopback = False
        self._tx_enabled = False
        self._tx_acked = False
        self._rx_latched = 0
        self._irq_level = False
        self._fast: FastPath | None = None
        self._fast_dr: bool | None = None
        self._reset_state()

    def attach_fast_path(self, fast: FastPath) -> None:
        """Let ``fast`` answer UARTFR and take plain UARTDR writes; the model keeps it in step."""
        self._fast = fast
        self._fast_dr = None
        self._sync_fast()

    def take_fast_output(self) -> None:
        """Move what the fast path buffered into the output, in order, handing complete lines
        to the sink (the model calls it before any access it handles; the VMM at every stop)."""
        if self._fast is not None and self._drain_fast():
            out = self._out
            if _LINE_END in out or len(out) >= OUTPUT_FLUSH_THRESHOLD:
                self.flush()

    def _drain_fast(self) -> bool:
        fast = self._fast
        if fast is None:
            return False
        data = fast.drain()
        if data:
            self._out += data
        return bool(data)

    def _sync_fast(self) -> None:
        """UARTFR, and whether a DR write is only output, as the fast path must see them."""
        fast = self._fast
        if fast is None:
            return
        fast.fr = self._fr
        dr = not (self._loopback or self._tx_acked)
        if dr != self._fast_dr:
            self._fast_dr = dr
            fast.set_mode(True, dr)

    # -- guest accesses -------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        if self._fast is None:
            return self._read(offset, size)
        # Bytes the fast path buffered were written before this access: they go out first.
        self.take_fast_output()
        value = self._read(offset, size)
        self._sync_fast()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if self._fast is None:
            self._write(offset, size, value)
            return
        self.take_fast_output()
        self._write(offset, size, value)
        self._sync_fast()

    def _read(self, offset: int, size: int) -> int:
        # Guests poll UARTFR before every byte: answer it before anything else. FR never has
        # bits above bit 7 set here, so no masking to the access size is needed.
        if offset == 0x018:
            return self._fr
        if offset == 0:
            # UARTRSR above it reads as zero, so even an 8-byte read is just the data byte.
            return self._read_dr()
        value = 0
        for reg, lane, count, pos in register_pieces(offset, size):
            word = self._read_register(reg, lane)
            value |= ((word >> (8 * lane)) & ((1 << (8 * count)) - 1)) << (8 * pos)
        return value

    def _write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            byte = value & 0xFF
            if self._loopback or self._tx_acked:
                self._transmit(byte)
                return
            # Second hottest path (every byte of output): the common case inline.
            out = self._out
            out.append(byte)
            if byte == _LINE_END or len(out) >= OUTPUT_FLUSH_THRESHOLD:
                self.flush()
            return
        for reg, lane, count, pos in register_pieces(offset, size):
            piece = (value >> (8 * pos)) & ((1 << (8 * count)) - 1)
            self._write_register(reg, lane, count, piece)

    def reset(self) -> None:
        # What the guest wrote before the reset has left the UART already.
        self.take_fast_output()
        self.flush()
        self._rx.clear()
        self._reset_state()

    # -- host side ------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Queue bytes received from the host for the guest to read.

        Not thread-safe against guest accesses: call it from the thread running the vCPUs.
        """
        if not data:
            return
        self._rx.extend(data)
        self._fr = _FR_RX_READY
        # Receive trigger level one byte, and in emulated time the receive timeout has always
        # expired by the time the guest looks, so both interrupts fire on arrival.
        self._rx_latched = _RX_INTERRUPTS
        self._update_irq()
        self._sync_fast()

    def flush(self) -> None:
        """Hand buffered output to the sink (the VMM calls this on every stop)."""
        self._drain_fast()
        if self._out:
            data = bytes(self._out)
            self._out.clear()
            self._sink(data)

    @property
    def pending_input(self) -> int:
        """Number of received bytes the guest has not read yet."""
        return len(self._rx)

    @property
    def raw_interrupts(self) -> int:
        """UARTRIS as the guest would read it."""
        return self._ris()

    @property
    def irq_level(self) -> bool:
        """The level of the interrupt line: (RIS & IMSC) != 0."""
        return self._irq_level

    # -- internals --------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._regs = {reg: reset for reg, (_, reset) in _STORAGE.items()}
        self._fr = _FR_RX_READY if self._rx else _FR_RX_EMPTY
        self._rx_latched = 0
        self._tx_acked = False
        self._apply_control()
        self._update_irq()
        self._sync_fast()

    def _apply_control(self) -> None:
        cr = self._regs[Reg.CR]
        self._loopback = bool(cr & Control.LBE)
        self._tx_enabled = cr & (Control.UARTEN | Control.TXE) == Control.UARTEN | Control.TXE

    def _transmit(self, byte: int) -> None:
        if self._loopback:
            # Linux (up to 4.x) sends a byte in loopback mode at startup to provoke the TX
            # interrupt: it must come back as input, not reach the console.
            self.feed(bytes((byte,)))
        else:
            out = self._out
            out.append(byte)
            if byte == _LINE_END or len(out) >= OUTPUT_FLUSH_THRESHOLD:
                self.flush()
        # The byte left at once, so the FIFO is below its trigger level again.
        if self._tx_acked:
            self._tx_acked = False
            self._update_irq()

    def _read_dr(self) -> int:
        rx = self._rx
        if not rx:
            return 0
        byte = rx.popleft()
        if not rx:
            self._fr = _FR_RX_EMPTY
            self._rx_latched = 0
            self._update_irq()
        return byte

    def _ris(self) -> int:
        ris = self._rx_latched
        if self._tx_enabled and not self._tx_acked:
            ris |= _TX_INTERRUPT
        return ris

    def _update_irq(self) -> None:
        level = (self._ris() & self._regs[Reg.IMSC]) != 0
        if level != self._irq_level:
            self._irq_level = level
            if self._irq is not None:
                self._irq(level)

    def _read_register(self, reg: int, lane: int) -> int:
        if reg == Reg.DR:
            # Only the data lane pops the FIFO; the upper lanes hold error bits, never set here.
            return self._read_dr() if lane == 0 else 0
        stored = self._regs.get(reg)
        if stored is not None:
            return stored
        if reg == Reg.FR:
            return self._fr
        if reg == Reg.RIS:
            return self._ris()
        if reg == Reg.MIS:
            return self._ris() & self._regs[Reg.IMSC]
        if reg in (Reg.RSR_ECR, Reg.ICR):
            # No receive errors are ever recorded; ICR is write-only and reads as zero.
            return 0
        ident = self._ids.get(reg)
        if ident is not None:
            return ident
        self._unknown(f"read of unknown register at offset {reg + lane:#05x}")
        return 0

    def _write_register(self, reg: int, lane: int, count: int, value: int) -> None:
        shift = 8 * lane
        spec = _STORAGE.get(reg)
        if spec is not None:
            implemented, _ = spec
            lanes = ((1 << (8 * count)) - 1) << shift
            old = self._regs[reg]
            self._regs[reg] = ((old & ~lanes) | (value << shift)) & implemented
            if reg == Reg.CR:
                self._apply_control()
            self._update_irq()
        elif reg == Reg.DR:
            # Bits 8..11 of UARTDR are read-only error flags: only the data lane transmits.
            if lane == 0:
                self._transmit(value & 0xFF)
        elif reg == Reg.ICR:
            cleared = (value << shift) & ALL_INTERRUPTS
            self._rx_latched &= ~cleared
            if cleared & _TX_INTERRUPT:
                self._tx_acked = True
            self._update_irq()
        elif reg == Reg.RSR_ECR:
            pass  # clears the receive error flags, and there never are any
        elif reg in _READ_ONLY or reg in self._ids:
            self._unknown(f"write of {value << shift:#x} to read-only register at {reg:#05x}")
        else:
            self._unknown(f"write of {value << shift:#x} to unknown register at {reg + lane:#05x}")

    def _unknown(self, what: str) -> None:
        if self._on_unknown is not None:
            self._on_unknown(f"{self.name}: {what}")
