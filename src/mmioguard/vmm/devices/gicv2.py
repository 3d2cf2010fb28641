"""ARM GICv2 interrupt controller (distributor and CPU interface) for up to 8 vCPUs.

Enough for Linux's `irq-gic` driver (DT compatible ``arm,cortex-a15-gic``) and for bare-metal
guests, laid out like QEMU's `virt` board: distributor at 0x08000000, CPU interface at 0x08010000,
64 KiB each. The model has no Security Extensions (GICD_TYPER.SecurityExtn = 0): every access
sees the one register bank, group 0 interrupts are signalled as IRQ unless GICC_CTLR.FIQEn is
set, and group 1 interrupts are acknowledged only when GICC_CTLR.AckCtl is set (1022 otherwise),
as in a GICv2 without them. Priorities are 8 bits wide; GICC_BPR resets to 0 and GICC_ABPR to 1.

Which vCPU is accessing: registers 0-31 of the distributor and the whole CPU interface are
banked per CPU, and an MMIO callback does not say which vCPU made the access. The VMM runs the
vCPUs one at a time in one thread, so the model keeps a `current_cpu` attribute that the run loop
sets before it runs a vCPU's slice; `GicV2.distributor` and `GicV2.cpu_interface` are views that
follow it. Where each vCPU has its own emulator instance and callbacks, `distributor_for(cpu)`
and `cpu_interface_for(cpu)` give views fixed to one CPU instead, and `dist_read`/`dist_write`/
`cpu_read`/`cpu_write` take the CPU index per access.

Devices drive interrupt lines: `set_level(irq, level)` for SPIs (IDs 32 and up), and
`set_ppi_level(cpu, ppi, level)` for a CPU's private peripheral interrupts. The line level is an
input, not GIC state: `reset()` keeps it, so a device whose line stays high across a VM reset is
still seen. For a level-sensitive interrupt the pending state is the OR of a software latch
(GICD_ISPENDR) and the line; for an edge-triggered one a rising edge sets the latch.

The output is `irq_pending(cpu)` (and `fiq_pending(cpu)`): whether the CPU interface signals
an interrupt to that CPU. The VMM polls it between slices and performs the exception entry. The
highest-priority candidate of each CPU, and whether it is signalled, is cached and recomputed
only after a change that can affect it, so a poll is a list lookup.

Not modelled: Security Extensions and the aliased group 1 registers (GICC_AIAR, GICC_AEOIR,
GICC_AHPPIR), GICv2 virtualization extensions (GICH/GICV), the implementation-defined status
registers at 0xD00, the legacy GICv1 1-N model (an SPI targeting several CPUs is taken by
whichever acknowledges it first, as in GICv2), FIQ/IRQ bypass, and wake-up or power management.
GICC_NSAPRn are RAZ/WI. With one CPU, GICD_ITARGETSR is RAZ/WI and every SPI goes
to CPU 0, as the architecture says for a uniprocessor GIC (and as QEMU does).
"""

from __future__ import annotations

from collections.abc import Callable

from mmioguard.vmm.device import primecell_id_registers, register_pieces

GICD_SIZE = 0x10000
GICC_SIZE = 0x10000
VIRT_GICD_BASE = 0x0800_0000
VIRT_GICC_BASE = 0x0801_0000
"""Where QEMU's `virt` board puts the two regions."""

MAX_CPUS = 8
SGI_COUNT = 16
PPI_BASE = 16
SPI_BASE = 32
SPURIOUS = 1023
GROUP1_SPURIOUS = 1022
IDLE_PRIORITY = 0xFF

GICD_IIDR_VALUE = 0x0200_043B
GICC_IIDR_VALUE = 0x0202_043B
# GIC-400 peripheral ID bytes (PIDR0..3 at 0xFE0; PIDR4 = 0x04 at 0xFD0): PIDR2 0x2B = GICv2.
GIC_PART_ID: tuple[int, int, int, int] = (0x90, 0xB4, 0x2B, 0x00)

_WORD = 0xFFFF_FFFF
_BANKED = 0xFFFF_FFFF  # interrupt IDs 0-31
_SGI_BITS = 0xFFFF
_PPI_BITS = 0xFFFF_0000
# What `_evaluate` caches per CPU: (ID, priority, group, IRQ signalled, FIQ signalled).
_Signal = tuple[int, int, int, bool, bool]
_NOTHING: _Signal = (SPURIOUS, 0x100, 0, False, False)


# Distributor register offsets (the start of each block). Plain ints, not enums: the accessors
# compare against them on every access, and enum members cost an attribute lookup each (IntFlag
# operands even a Python-level `__rand__`).
GICD_CTLR = 0x000
GICD_TYPER = 0x004
GICD_IIDR = 0x008
GICD_IGROUPR = 0x080
GICD_ISENABLER = 0x100
GICD_ICENABLER = 0x180
GICD_ISPENDR = 0x200
GICD_ICPENDR = 0x280
GICD_ISACTIVER = 0x300
GICD_ICACTIVER = 0x380
GICD_IPRIORITYR = 0x400
GICD_ITARGETSR = 0x800
GICD_ICFGR = 0xC00
GICD_IMPDEF = 0xD00
GICD_SGIR = 0xF00
GICD_CPENDSGIR = 0xF10
GICD_SPENDSGIR = 0xF20

# CPU interface register offsets.
GICC_CTLR = 0x00
GICC_PMR = 0x04
GICC_BPR = 0x08
GICC_IAR = 0x0C
GICC_EOIR = 0x10
GICC_RPR = 0x14
GICC_HPPIR = 0x18
GICC_ABPR = 0x1C
GICC_APR0 = 0xD0
GICC_NSAPR0 = 0xE0
GICC_IIDR = 0xFC
GICC_DIR = 0x1000

# GICC_CTLR bits of a GICv2 without Security Extensions.
CTLR_ENABLE_GRP0 = 1 << 0
CTLR_ENABLE_GRP1 = 1 << 1
CTLR_ACK_CTL = 1 << 2
CTLR_FIQ_EN = 1 << 3
CTLR_CBPR = 1 << 4
CTLR_EOI_MODE = 1 << 9
CTLR_EOI_MODE_NS = 1 << 10

_GICC_CTLR_BITS = 0x7FF
_GICD_CTLR_BITS = 0x3


def _edge_from_icfgr(word: int) -> int:
    """The edge-triggered bitmap (16 interrupts) encoded by an ICFGR word (bit 2n+1)."""
    bits = 0
    for i in range(16):
        if word >> (2 * i + 1) & 1:
            bits |= 1 << i
    return bits


def _icfgr_from_edge(bits: int) -> int:
    word = 0
    for i in range(16):
        if bits >> i & 1:
            word |= 2 << (2 * i)
    return word


def _group_mask(bpr: int) -> int:
    """The group-priority bits of a priority for a binary point `bpr` (GICC_BPR semantics)."""
    return (0xFF << (bpr + 1)) & 0xFF


class GicV2:
    """GICv2 state shared by the distributor and CPU interface views; see the module docstring."""

    def __init__(
        self,
        num_cpus: int = 1,
        num_irqs: int = 128,
        on_unknown: Callable[[str], None] | None = None,
    ) -> None:
        if not 1 <= num_cpus <= MAX_CPUS:
            raise ValueError(f"a GICv2 serves 1 to {MAX_CPUS} CPUs, not {num_cpus}")
        if num_irqs % 32 or not SPI_BASE <= num_irqs <= 1024:
            raise ValueError(f"num_irqs must be a multiple of 32 from 32 to 1024, not {num_irqs}")
        self.num_cpus = num_cpus
        self.num_irqs = num_irqs
        self._on_unknown = on_unknown
        self._current = 0
        self._cpus = range(num_cpus)
        self._spi_bits = ((1 << num_irqs) - 1) & ~_BANKED
        self._typer = (num_irqs // 32 - 1) | ((num_cpus - 1) << 5)
        ids = primecell_id_registers(GIC_PART_ID)
        ids.update({0xFD0: 0x04, 0xFD4: 0, 0xFD8: 0, 0xFDC: 0})
        self._ids = ids
        # Distributor, shared part: bitmaps indexed by interrupt ID (bits 0-31 unused).
        self._d_ctlr = 0
        self._group = 0
        self._enabled = 0
        self._latch = 0
        self._line = 0
        self._active = 0
        self._edge = 0
        self._prio = bytearray(num_irqs)
        self._targets = bytearray(num_irqs)
        self._target_bits = [0] * num_cpus  # per CPU: the SPIs whose target list names it
        # Distributor, banked part (IDs 0-31), one entry per CPU.
        self._b_group = [0] * num_cpus
        self._b_enabled = [0] * num_cpus
        self._b_latch = [0] * num_cpus  # SGI bits mirror `_sgi_sources` being non-zero
        self._b_line = [0] * num_cpus  # PPI input lines
        self._b_active = [0] * num_cpus
        self._b_edge = [_SGI_BITS] * num_cpus
        self._b_prio = [bytearray(32) for _ in self._cpus]
        self._sgi_sources = [[0] * SGI_COUNT for _ in self._cpus]
        # CPU interfaces.
        self._c_ctlr = [0] * num_cpus
        self._pmr = [0] * num_cpus
        self._bpr = [0] * num_cpus
        self._abpr = [1] * num_cpus
        self._gmask = [(0xFE, 0xFE)] * num_cpus  # group-priority mask for group 0 and group 1
        # Acknowledged interrupts whose priority has not been dropped: (IAR value, group prio).
        self._stack: list[list[tuple[int, int]]] = [[] for _ in self._cpus]
        self._rpr = [IDLE_PRIORITY] * num_cpus
        # Per CPU: the best candidate and what it signals, or None when it must be recomputed.
        self._cache: list[_Signal | None] = [None] * num_cpus
        self.distributor = GicDistributor(self)
        self.cpu_interface = GicCpuInterface(self)
        self.reset()

    # -- which CPU is accessing -----------------------------------------------------------

    @property
    def current_cpu(self) -> int:
        """The vCPU whose accesses the `distributor` and `cpu_interface` views make."""
        return self._current

    @current_cpu.setter
    def current_cpu(self, cpu: int) -> None:
        self._check_cpu(cpu)
        self._current = cpu

    def distributor_for(self, cpu: int) -> GicDistributor:
        """A distributor view whose accesses always come from `cpu`."""
        self._check_cpu(cpu)
        return GicDistributor(self, cpu)

    def cpu_interface_for(self, cpu: int) -> GicCpuInterface:
        """The CPU interface of `cpu`, as a view that ignores `current_cpu`."""
        self._check_cpu(cpu)
        return GicCpuInterface(self, cpu)

    # -- inputs ---------------------------------------------------------------------------

    def set_level(self, irq: int, level: bool) -> None:
        """Drive the input line of shared peripheral interrupt `irq` (an ID, 32 and up)."""
        if not SPI_BASE <= irq < self.num_irqs:
            raise ValueError(
                f"interrupt {irq} is not an SPI of this GIC (32-{self.num_irqs - 1}); "
                "use set_ppi_level for private interrupts"
            )
        bit = 1 << irq
        line = self._line
        if level:
            if line & bit:
                return
            self._line = line | bit
            if self._edge & bit:
                self._latch |= bit
        else:
            if not line & bit:
                return
            self._line = line & ~bit
        self._cache = [None] * self.num_cpus

    def set_ppi_level(self, cpu: int, ppi: int, level: bool) -> None:
        """Drive private peripheral interrupt `ppi` of `cpu`.

        `ppi` is the PPI number 0-15 (the number a device tree names) or, equivalently, the
        interrupt ID 16-31: the virtual timer is PPI 11 = ID 27.
        """
        self._check_cpu(cpu)
        if not 0 <= ppi < SPI_BASE:
            raise ValueError(f"{ppi} is neither a PPI number (0-15) nor a PPI ID (16-31)")
        bit = 1 << (ppi if ppi >= PPI_BASE else ppi + PPI_BASE)
        line = self._b_line[cpu]
        if level:
            if line & bit:
                return
            self._b_line[cpu] = line | bit
            if self._b_edge[cpu] & bit:
                self._b_latch[cpu] |= bit
        else:
            if not line & bit:
                return
            self._b_line[cpu] = line & ~bit
        self._cache[cpu] = None

    def line(self, irq: int) -> Callable[[bool], None]:
        """An `irq` callback for a device model (like Pl011's) wired to SPI `irq`."""
        if not SPI_BASE <= irq < self.num_irqs:
            raise ValueError(f"interrupt {irq} is not an SPI of this GIC")

        def drive(level: bool) -> None:
            self.set_level(irq, level)

        return drive

    def ppi_line(self, cpu: int, ppi: int) -> Callable[[bool], None]:
        """A level callback wired to PPI `ppi` (number or ID) of `cpu`."""
        self._check_cpu(cpu)
        if not 0 <= ppi < SPI_BASE:
            raise ValueError(f"{ppi} is neither a PPI number (0-15) nor a PPI ID (16-31)")

        def drive(level: bool) -> None:
            self.set_ppi_level(cpu, ppi, level)

        return drive

    # -- outputs --------------------------------------------------------------------------

    def irq_pending(self, cpu: int) -> bool:
        """Whether the CPU interface of `cpu` signals IRQ: an enabled, pending interrupt
        targeting it, in a group enabled in GICD_CTLR and GICC_CTLR, with a priority above
        (numerically below) GICC_PMR and a group priority above the running priority.

        Cached between state changes: cheap enough to call between every two slices."""
        return (self._cache[cpu] or self._evaluate(cpu))[3]

    def fiq_pending(self, cpu: int) -> bool:
        """Whether `cpu` is signalled FIQ (a group 0 interrupt with GICC_CTLR.FIQEn set)."""
        return (self._cache[cpu] or self._evaluate(cpu))[4]

    def is_pending(self, irq: int, cpu: int = 0) -> bool:
        """The pending state of `irq` (banked IDs 0-31 as seen by `cpu`)."""
        if irq < SPI_BASE:
            return bool(self._banked_pending(cpu) >> irq & 1)
        return bool(self._spi_pending() >> irq & 1)

    def is_active(self, irq: int, cpu: int = 0) -> bool:
        """The active state of `irq` (banked IDs 0-31 as seen by `cpu`)."""
        bits = self._b_active[cpu] if irq < SPI_BASE else self._active
        return bool(bits >> irq & 1)

    def running_priority(self, cpu: int) -> int:
        """GICC_RPR of `cpu`: the group priority of its highest active interrupt, 0xFF if idle."""
        return self._rpr[cpu]

    # -- reset ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Return every register to its reset value; input line levels are kept."""
        n = self.num_cpus
        self._d_ctlr = 0
        self._group = 0
        self._enabled = 0
        self._latch = 0
        self._active = 0
        self._edge = 0
        self._prio = bytearray(self.num_irqs)
        self._targets = bytearray(self.num_irqs)
        self._b_group = [0] * n
        self._b_enabled = [0] * n
        self._b_latch = [0] * n
        self._b_active = [0] * n
        self._b_edge = [_SGI_BITS] * n
        self._b_prio = [bytearray(32) for _ in self._cpus]
        self._sgi_sources = [[0] * SGI_COUNT for _ in self._cpus]
        self._c_ctlr = [0] * n
        self._pmr = [0] * n
        self._bpr = [0] * n
        self._abpr = [1] * n
        self._gmask = [(0xFE, 0xFE)] * n
        self._stack = [[] for _ in self._cpus]
        self._rpr = [IDLE_PRIORITY] * n
        self._update_targets()

    # -- distributor accesses -------------------------------------------------------------

    def dist_read(self, cpu: int, offset: int, size: int) -> int:
        """A distributor read made by `cpu`."""
        if size == 4 and not offset & 3:
            return self._dist_read_word(cpu, offset)
        value = 0
        for reg, lane, count, pos in register_pieces(offset, size):
            word = self._dist_read_word(cpu, reg)
            value |= ((word >> (8 * lane)) & ((1 << (8 * count)) - 1)) << (8 * pos)
        return value

    def dist_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        """A distributor write made by `cpu`."""
        if size == 4 and not offset & 3:
            self._dist_write_word(cpu, offset, value & _WORD, _WORD)
            return
        for reg, lane, count, pos in register_pieces(offset, size):
            piece = (value >> (8 * pos)) & ((1 << (8 * count)) - 1)
            lanes = ((1 << (8 * count)) - 1) << (8 * lane)
            self._dist_write_word(cpu, reg, piece << (8 * lane), lanes)

    # -- CPU interface accesses -----------------------------------------------------------

    def cpu_read(self, cpu: int, offset: int, size: int) -> int:
        """A read of `cpu`'s CPU interface."""
        if offset == GICC_IAR and size == 4:
            return self._acknowledge(cpu)
        if size == 4 and not offset & 3:
            return self._cpu_read_word(cpu, offset)
        value = 0
        for reg, lane, count, pos in register_pieces(offset, size):
            word = self._cpu_read_word(cpu, reg)
            value |= ((word >> (8 * lane)) & ((1 << (8 * count)) - 1)) << (8 * pos)
        return value

    def cpu_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        """A write to `cpu`'s CPU interface."""
        if size == 4 and not offset & 3:
            self._cpu_write_word(cpu, offset, value & _WORD, _WORD)
            return
        for reg, lane, count, pos in register_pieces(offset, size):
            piece = (value >> (8 * pos)) & ((1 << (8 * count)) - 1)
            lanes = ((1 << (8 * count)) - 1) << (8 * lane)
            self._cpu_write_word(cpu, reg, piece << (8 * lane), lanes)

    # -- internals: state -----------------------------------------------------------------

    def _check_cpu(self, cpu: int) -> None:
        if not 0 <= cpu < self.num_cpus:
            raise ValueError(f"CPU {cpu} does not exist (this GIC has {self.num_cpus})")

    def _invalidate(self) -> None:
        self._cache = [None] * self.num_cpus

    def _spi_pending(self) -> int:
        return self._latch | (self._line & ~self._edge)

    def _banked_pending(self, cpu: int) -> int:
        return self._b_latch[cpu] | (self._b_line[cpu] & ~self._b_edge[cpu])

    def _update_targets(self) -> None:
        if self.num_cpus == 1:
            self._target_bits = [self._spi_bits]
        else:
            bits = [0] * self.num_cpus
            targets = self._targets
            for irq in range(SPI_BASE, self.num_irqs):
                mask = targets[irq]
                cpu = 0
                while mask:
                    if mask & 1 and cpu < self.num_cpus:
                        bits[cpu] |= 1 << irq
                    mask >>= 1
                    cpu += 1
            self._target_bits = bits
        self._invalidate()

    def _set_target(self, irq: int, mask: int) -> None:
        self._targets[irq] = mask
        bit = 1 << irq
        bits = self._target_bits
        for cpu in self._cpus:
            if mask >> cpu & 1:
                bits[cpu] |= bit
            else:
                bits[cpu] &= ~bit

    def _evaluate(self, cpu: int) -> _Signal:
        """Find the highest-priority pending, enabled, inactive interrupt targeting `cpu` in a
        group enabled in both GICD_CTLR and GICC_CTLR (lowest ID on a tie), and whether it is
        signalled (priority below GICC_PMR, group priority below the running priority).

        The answer is cached until something it depends on changes."""
        ctlr = self._c_ctlr[cpu]
        groups = self._d_ctlr & ctlr & 3
        best = _NOTHING
        if groups:
            spi = self._spi_pending() & self._enabled & ~self._active & self._target_bits[cpu]
            banked = self._banked_pending(cpu) & self._b_enabled[cpu] & ~self._b_active[cpu]
            if groups == 1:
                spi &= ~self._group
                banked &= ~self._b_group[cpu]
            elif groups == 2:
                spi &= self._group
                banked &= self._b_group[cpu]
            candidates = spi | banked
            if candidates:
                best_irq = SPURIOUS
                best_prio = 0x100
                b_prio = self._b_prio[cpu]
                prio = self._prio
                while candidates:
                    low = candidates & -candidates
                    irq = low.bit_length() - 1
                    p = b_prio[irq] if irq < SPI_BASE else prio[irq]
                    if p < best_prio:
                        best_prio = p
                        best_irq = irq
                    candidates ^= low
                group_bits = self._b_group[cpu] if best_irq < SPI_BASE else self._group
                group = group_bits >> best_irq & 1
                signalled = (
                    best_prio < self._pmr[cpu]
                    and (best_prio & self._gmask[cpu][group]) < self._rpr[cpu]
                )
                fiq = signalled and group == 0 and bool(ctlr & CTLR_FIQ_EN)
                best = (best_irq, best_prio, group, signalled and not fiq, fiq)
        self._cache[cpu] = best
        return best

    def _sgi_source(self, cpu: int, irq: int) -> int:
        sources = self._sgi_sources[cpu][irq]
        return (sources & -sources).bit_length() - 1 if sources else 0

    def _send_sgi(self, source: int, value: int) -> None:
        irq = value & 0xF
        target_filter = (value >> 24) & 3
        if target_filter == 0:
            targets = (value >> 16) & 0xFF
        elif target_filter == 1:
            targets = ((1 << self.num_cpus) - 1) & ~(1 << source)
        elif target_filter == 2:
            targets = 1 << source
        else:
            self._unknown(f"GICD_SGIR write {value:#x} with the reserved target list filter 3")
            return
        bit = 1 << irq
        for cpu in self._cpus:
            if targets >> cpu & 1:
                self._sgi_sources[cpu][irq] |= 1 << source
                self._b_latch[cpu] |= bit
                self._cache[cpu] = None

    def _set_sgi_sources(self, cpu: int, irq: int, sources: int) -> None:
        self._sgi_sources[cpu][irq] = sources
        bit = 1 << irq
        if sources:
            self._b_latch[cpu] |= bit
        else:
            self._b_latch[cpu] &= ~bit
        self._cache[cpu] = None

    # -- internals: distributor registers -------------------------------------------------

    def _dist_read_word(self, cpu: int, reg: int) -> int:
        if reg < GICD_IGROUPR:
            if reg == GICD_CTLR:
                return self._d_ctlr
            if reg == GICD_TYPER:
                return self._typer
            if reg == GICD_IIDR:
                return GICD_IIDR_VALUE
        elif reg < GICD_IPRIORITYR:
            block = reg & ~0x7F
            index = (reg & 0x7F) >> 2
            if index >= self.num_irqs // 32:
                return 0  # interrupts this GIC does not implement
            if block == GICD_IGROUPR:
                return self._bitmap_word(index, self._b_group[cpu], self._group)
            if block in (GICD_ISENABLER, GICD_ICENABLER):
                return self._bitmap_word(index, self._b_enabled[cpu], self._enabled)
            if block in (GICD_ISPENDR, GICD_ICPENDR):
                return self._bitmap_word(index, self._banked_pending(cpu), self._spi_pending())
            return self._bitmap_word(index, self._b_active[cpu], self._active)
        elif reg < GICD_ITARGETSR:
            first = reg - GICD_IPRIORITYR
            if first >= self.num_irqs:
                return 0
            prio = self._b_prio[cpu] if first < SPI_BASE else self._prio
            return int.from_bytes(prio[first : first + 4], "little")
        elif reg < GICD_ICFGR:
            first = reg - GICD_ITARGETSR
            if first >= self.num_irqs or self.num_cpus == 1:
                return 0
            if first < SPI_BASE:
                return (1 << cpu) * 0x0101_0101
            return int.from_bytes(self._targets[first : first + 4], "little")
        elif reg < GICD_IMPDEF:
            index = (reg - GICD_ICFGR) >> 2
            if index == 0:
                return 0xAAAA_AAAA  # SGIs are edge-triggered
            if index == 1:
                return _icfgr_from_edge(self._b_edge[cpu] >> PPI_BASE)
            if index >= self.num_irqs // 16:
                return 0
            return _icfgr_from_edge(self._edge >> (16 * index))
        elif reg == GICD_SGIR:
            return 0  # write-only
        elif GICD_CPENDSGIR <= reg < GICD_SPENDSGIR + 16:
            first = reg & 0xF  # the SGI of byte lane 0
            sources = self._sgi_sources[cpu]
            return int.from_bytes(bytes(sources[first : first + 4]), "little")
        else:
            ident = self._ids.get(reg)
            if ident is not None:
                return ident
        self._unknown(f"read of unknown distributor register at {reg:#06x}")
        return 0

    def _bitmap_word(self, index: int, banked: int, shared: int) -> int:
        if index == 0:
            return banked & _WORD
        return (shared >> (32 * index)) & _WORD

    def _dist_write_word(self, cpu: int, reg: int, value: int, lanes: int) -> None:
        if reg < GICD_IGROUPR:
            if reg == GICD_CTLR:
                ctlr = (self._d_ctlr & ~lanes) | (value & lanes)
                self._d_ctlr = ctlr & _GICD_CTLR_BITS
                self._invalidate()
            elif reg in (GICD_TYPER, GICD_IIDR):
                self._unknown(f"write of {value:#x} to read-only register at {reg:#05x}")
            else:
                self._unknown(f"write of {value:#x} to unknown distributor register at {reg:#05x}")
        elif reg < GICD_IPRIORITYR:
            index = (reg & 0x7F) >> 2
            if index < self.num_irqs // 32:
                self._write_bitmap(cpu, reg & ~0x7F, index, value, lanes)
        elif reg < GICD_ITARGETSR:
            first = reg - GICD_IPRIORITYR
            if first < self.num_irqs:
                prio = self._b_prio[cpu] if first < SPI_BASE else self._prio
                for lane in range(4):
                    if lanes >> (8 * lane) & 0xFF:
                        prio[first + lane] = (value >> (8 * lane)) & 0xFF
                self._invalidate_for(cpu, first)
        elif reg < GICD_ICFGR:
            first = reg - GICD_ITARGETSR
            # Targets of IDs 0-31 are read-only; one-CPU GICs have RAZ/WI target registers.
            if SPI_BASE <= first < self.num_irqs and self.num_cpus > 1:
                valid = (1 << self.num_cpus) - 1
                for lane in range(4):
                    if lanes >> (8 * lane) & 0xFF:
                        self._set_target(first + lane, (value >> (8 * lane)) & valid)
                self._invalidate()
        elif reg < GICD_IMPDEF:
            index = (reg - GICD_ICFGR) >> 2
            if index == 0 or index >= self.num_irqs // 16:
                return  # SGI configuration is fixed; unimplemented interrupts are WI
            shift = 16 * index
            if index == 1:
                old_word = _icfgr_from_edge(self._b_edge[cpu] >> PPI_BASE)
                word = (old_word & ~lanes) | (value & lanes)
                self._b_edge[cpu] = _SGI_BITS | (_edge_from_icfgr(word) << PPI_BASE)
                self._cache[cpu] = None
            else:
                old_word = _icfgr_from_edge(self._edge >> shift)
                word = (old_word & ~lanes) | (value & lanes)
                field = 0xFFFF << shift
                self._edge = (self._edge & ~field) | (_edge_from_icfgr(word) << shift)
                self._invalidate()
        elif reg == GICD_SGIR:
            self._send_sgi(cpu, value)
        elif GICD_CPENDSGIR <= reg < GICD_SPENDSGIR + 16:
            first = reg & 0xF
            setting = reg >= GICD_SPENDSGIR
            sources = self._sgi_sources[cpu]
            for lane in range(4):
                if not lanes >> (8 * lane) & 0xFF:
                    continue
                mask = (value >> (8 * lane)) & ((1 << self.num_cpus) - 1)
                old = sources[first + lane]
                new = old | mask if setting else old & ~mask
                if new != old:
                    self._set_sgi_sources(cpu, first + lane, new)
        elif reg in self._ids:
            self._unknown(f"write of {value:#x} to read-only register at {reg:#05x}")
        else:
            self._unknown(f"write of {value:#x} to unknown distributor register at {reg:#06x}")

    def _invalidate_for(self, cpu: int, irq: int) -> None:
        if irq < SPI_BASE:
            self._cache[cpu] = None
        else:
            self._invalidate()

    def _write_bitmap(self, cpu: int, block: int, index: int, value: int, lanes: int) -> None:
        if index == 0:
            if block == GICD_IGROUPR:
                old = self._b_group[cpu]
                self._b_group[cpu] = (old & ~lanes) | (value & lanes)
            elif block == GICD_ISENABLER:
                self._b_enabled[cpu] |= value
            elif block == GICD_ICENABLER:
                self._b_enabled[cpu] &= ~value
            elif block == GICD_ISPENDR:
                self._b_latch[cpu] |= value & _PPI_BITS  # SGIs: use GICD_SPENDSGIR
            elif block == GICD_ICPENDR:
                self._b_latch[cpu] &= ~(value & _PPI_BITS)
            elif block == GICD_ISACTIVER:
                self._b_active[cpu] |= value
            else:
                self._b_active[cpu] &= ~value
            self._cache[cpu] = None
            return
        shift = 32 * index
        bits = value << shift
        if block == GICD_IGROUPR:
            field = lanes << shift
            self._group = (self._group & ~field) | bits
        elif block == GICD_ISENABLER:
            self._enabled |= bits
        elif block == GICD_ICENABLER:
            self._enabled &= ~bits
        elif block == GICD_ISPENDR:
            self._latch |= bits
        elif block == GICD_ICPENDR:
            self._latch &= ~bits
        elif block == GICD_ISACTIVER:
            self._active |= bits
        else:
            self._active &= ~bits
        self._invalidate()

    # -- internals: CPU interface registers -----------------------------------------------

    def _cpu_read_word(self, cpu: int, reg: int) -> int:
        if reg == GICC_IAR:
            return self._acknowledge(cpu)
        if reg == GICC_CTLR:
            return self._c_ctlr[cpu]
        if reg == GICC_PMR:
            return self._pmr[cpu]
        if reg == GICC_BPR:
            return self._bpr[cpu]
        if reg == GICC_RPR:
            return self._rpr[cpu]
        if reg == GICC_HPPIR:
            irq, _, group, _, _ = self._cache[cpu] or self._evaluate(cpu)
            if irq == SPURIOUS:
                return SPURIOUS
            if group == 1 and not self._c_ctlr[cpu] & CTLR_ACK_CTL:
                return GROUP1_SPURIOUS
            return irq | (self._sgi_source(cpu, irq) << 10 if irq < SGI_COUNT else 0)
        if reg == GICC_ABPR:
            return self._abpr[cpu]
        if GICC_APR0 <= reg < GICC_NSAPR0:
            return self._active_priorities(cpu) >> (8 * (reg - GICC_APR0)) & _WORD
        if GICC_NSAPR0 <= reg < GICC_IIDR:
            return 0
        if reg == GICC_IIDR:
            return GICC_IIDR_VALUE
        if reg in (GICC_EOIR, GICC_DIR):
            return 0  # write-only
        self._unknown(f"read of unknown CPU interface register at {reg:#06x}")
        return 0

    def _cpu_write_word(self, cpu: int, reg: int, value: int, lanes: int) -> None:
        if reg == GICC_EOIR:
            self._end_of_interrupt(cpu, value)
        elif reg == GICC_CTLR:
            ctlr = (self._c_ctlr[cpu] & ~lanes) | (value & lanes)
            self._c_ctlr[cpu] = ctlr & _GICC_CTLR_BITS
            self._update_gmask(cpu)
        elif reg == GICC_PMR:
            self._pmr[cpu] = ((self._pmr[cpu] & ~lanes) | (value & lanes)) & 0xFF
            self._cache[cpu] = None
        elif reg == GICC_BPR:
            self._bpr[cpu] = ((self._bpr[cpu] & ~lanes) | (value & lanes)) & 7
            self._update_gmask(cpu)
        elif reg == GICC_ABPR:
            self._abpr[cpu] = max(((self._abpr[cpu] & ~lanes) | (value & lanes)) & 7, 1)
            self._update_gmask(cpu)
        elif reg == GICC_DIR:
            if self._c_ctlr[cpu] & CTLR_EOI_MODE:
                self._deactivate(cpu, value)
            else:
                self._unknown(f"GICC_DIR write {value:#x} with GICC_CTLR.EOImode clear: ignored")
        elif GICC_APR0 <= reg < GICC_NSAPR0:
            self._write_active_priorities(cpu, reg - GICC_APR0, value | (_WORD & ~lanes))
        elif GICC_NSAPR0 <= reg < GICC_IIDR:
            pass
        elif reg in (GICC_IAR, GICC_RPR, GICC_HPPIR, GICC_IIDR):
            self._unknown(f"write of {value:#x} to read-only register at {reg:#05x}")
        else:
            self._unknown(f"write of {value:#x} to unknown CPU interface register at {reg:#06x}")

    def _update_gmask(self, cpu: int) -> None:
        # GICC_ABPR counts one more than GICC_BPR; with CBPR set, BPR serves both groups.
        group0 = _group_mask(self._bpr[cpu])
        cbpr = self._c_ctlr[cpu] & CTLR_CBPR
        self._gmask[cpu] = (group0, group0 if cbpr else _group_mask(self._abpr[cpu] - 1))
        self._cache[cpu] = None

    def _active_priorities(self, cpu: int) -> int:
        """GICC_APR0-3 as one 128-bit value: bit n set while an acknowledged interrupt of group
        priority 2n has not had its priority dropped (the layout the GICv2 spec recommends for
        7 bits of group priority)."""
        bits = 0
        for _, gprio in self._stack[cpu]:
            bits |= 1 << (gprio >> 1)
        return bits

    def _write_active_priorities(self, cpu: int, offset: int, value: int) -> None:
        """A write to GICC_APR<offset / 4>: clearing a bit drops that priority level (Linux
        writes zeros when it brings a CPU interface up); set bits cannot create active
        priorities the model has no interrupt for, so they are ignored."""
        first = 8 * offset
        kept = [
            entry
            for entry in self._stack[cpu]
            if not first <= entry[1] >> 1 < first + 32 or value >> ((entry[1] >> 1) - first) & 1
        ]
        if len(kept) != len(self._stack[cpu]):
            self._stack[cpu] = kept
            self._rpr[cpu] = min((p for _, p in kept), default=IDLE_PRIORITY)
            self._cache[cpu] = None

    def _acknowledge(self, cpu: int) -> int:
        irq, prio, group, irq_out, fiq_out = self._cache[cpu] or self._evaluate(cpu)
        if not (irq_out or fiq_out):
            return SPURIOUS
        if group == 1 and not self._c_ctlr[cpu] & CTLR_ACK_CTL:
            return GROUP1_SPURIOUS
        gprio = prio & self._gmask[cpu][group]
        bit = 1 << irq
        if irq < SGI_COUNT:
            sources = self._sgi_sources[cpu][irq]
            source_bit = sources & -sources
            sources ^= source_bit
            self._sgi_sources[cpu][irq] = sources
            if not sources:
                self._b_latch[cpu] &= ~bit
            self._b_active[cpu] |= bit
            value = irq | ((source_bit.bit_length() - 1) << 10)
            self._cache[cpu] = None
        elif irq < SPI_BASE:
            # A level-sensitive interrupt whose line is high stays pending (active and pending).
            self._b_latch[cpu] &= ~bit
            self._b_active[cpu] |= bit
            value = irq
            self._cache[cpu] = None
        else:
            self._latch &= ~bit
            self._active |= bit
            value = irq
            self._invalidate()
        self._stack[cpu].append((value, gprio))
        if gprio < self._rpr[cpu]:
            self._rpr[cpu] = gprio
        return value

    def _end_of_interrupt(self, cpu: int, value: int) -> None:
        irq = value & 0x3FF
        if irq >= self.num_irqs:
            return  # 1020-1023 (spurious) and unimplemented IDs are ignored
        key = value & 0x1FFF if irq < SGI_COUNT else irq
        stack = self._stack[cpu]
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == key:
                del stack[i]
                self._rpr[cpu] = min((p for _, p in stack), default=IDLE_PRIORITY)
                self._cache[cpu] = None
                break
        else:
            self._unknown(f"GICC_EOIR write {value:#x}: that interrupt is not acknowledged")
            return
        if not self._c_ctlr[cpu] & CTLR_EOI_MODE:
            self._deactivate(cpu, value)

    def _deactivate(self, cpu: int, value: int) -> None:
        irq = value & 0x3FF
        if irq >= self.num_irqs:
            return
        bit = 1 << irq
        if irq < SPI_BASE:
            self._b_active[cpu] &= ~bit
            self._cache[cpu] = None
        else:
            self._active &= ~bit
            self._invalidate()

    def _unknown(self, what: str) -> None:
        if self._on_unknown is not None:
            self._on_unknown(f"gicv2: {what}")


class GicDistributor:
    """The distributor as an `MmioDevice`: accesses come from `cpu`, or, when it is None, from
    the GIC's `current_cpu`."""

    def __init__(self, gic: GicV2, cpu: int | None = None, name: str = "gicv2-dist") -> None:
        self.name = name
        self.size = GICD_SIZE
        self.gic = gic
        self.cpu = cpu

    def read(self, offset: int, size: int) -> int:
        cpu = self.cpu
        return self.gic.dist_read(self.gic.current_cpu if cpu is None else cpu, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        cpu = self.cpu
        self.gic.dist_write(self.gic.current_cpu if cpu is None else cpu, offset, size, value)

    def reset(self) -> None:
        self.gic.reset()


class GicCpuInterface:
    """A CPU interface as an `MmioDevice`: that of `cpu`, or, when it is None, that of the GIC's
    `current_cpu`."""

    def __init__(self, gic: GicV2, cpu: int | None = None, name: str = "gicv2-cpu") -> None:
        self.name = name
        self.size = GICC_SIZE
        self.gic = gic
        self.cpu = cpu

    def read(self, offset: int, size: int) -> int:
        cpu = self.cpu
        return self.gic.cpu_read(self.gic.current_cpu if cpu is None else cpu, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        cpu = self.cpu
        self.gic.cpu_write(self.gic.current_cpu if cpu is None else cpu, offset, size, value)

    def reset(self) -> None:
        self.gic.reset()
