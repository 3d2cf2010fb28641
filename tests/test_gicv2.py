"""GICv2 distributor and CPU interface: the behaviour Linux's irq-gic driver and bare-metal
guests rely on."""

from __future__ import annotations

import pytest

from mmioguard.vmm.device import MmioDevice
from mmioguard.vmm.devices.gicv2 import GicV2
from mmioguard.vmm.devices.pl011 import Pl011

# Distributor.
CTLR, TYPER, IIDR = 0x000, 0x004, 0x008
IGROUPR, ISENABLER, ICENABLER = 0x080, 0x100, 0x180
ISPENDR, ICPENDR, ISACTIVER, ICACTIVER = 0x200, 0x280, 0x300, 0x380
IPRIORITYR, ITARGETSR, ICFGR, SGIR = 0x400, 0x800, 0xC00, 0xF00
CPENDSGIR, SPENDSGIR = 0xF10, 0xF20
# CPU interface.
C_CTLR, PMR, BPR, IAR, EOIR, RPR, HPPIR, ABPR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C
APR0, C_IIDR, DIR = 0xD0, 0xFC, 0x1000

UART, RTC = 33, 34
VTIMER_PPI = 11  # interrupt ID 27


class Guest:
    """A GIC with helpers that access it the way a guest on a given CPU does."""

    def __init__(self, cpus: int = 1, irqs: int = 128) -> None:
        self.unknown: list[str] = []
        self.gic = GicV2(num_cpus=cpus, num_irqs=irqs, on_unknown=self.unknown.append)

    def dr(self, offset: int, cpu: int = 0, size: int = 4) -> int:
        self.gic.current_cpu = cpu
        return self.gic.distributor.read(offset, size)

    def dw(self, offset: int, value: int, cpu: int = 0, size: int = 4) -> None:
        self.gic.current_cpu = cpu
        self.gic.distributor.write(offset, size, value)

    def cr(self, offset: int, cpu: int = 0, size: int = 4) -> int:
        self.gic.current_cpu = cpu
        return self.gic.cpu_interface.read(offset, size)

    def cw(self, offset: int, value: int, cpu: int = 0, size: int = 4) -> None:
        self.gic.current_cpu = cpu
        self.gic.cpu_interface.write(offset, size, value)

    def ack(self, cpu: int = 0) -> int:
        return self.cr(IAR, cpu)

    def eoi(self, value: int, cpu: int = 0) -> None:
        self.cw(EOIR, value, cpu)

    def enable(self, irq: int, cpu: int = 0, priority: int = 0xA0) -> None:
        self.dw(IPRIORITYR + irq, priority, cpu, size=1)
        self.dw(ISENABLER + 4 * (irq // 32), 1 << (irq % 32), cpu)

    def set_edge(self, irq: int, cpu: int = 0) -> None:
        reg = ICFGR + 4 * (irq // 16)
        self.dw(reg, self.dr(reg, cpu) | (2 << (2 * (irq % 16))), cpu)

    def linux_init(self) -> None:
        """What irq-gic.c does at boot: gic_dist_init, then gic_cpu_init on every CPU."""
        gic_irqs = 32 * ((self.dr(TYPER) & 0x1F) + 1)
        self.dw(CTLR, 0)
        mask = 0
        for i in range(0, 32, 4):
            mask |= self.dr(ITARGETSR + i)
            mask |= mask >> 16
            mask |= mask >> 8
        mask &= 0xFF
        mask |= mask << 8
        mask |= mask << 16
        for i in range(32, gic_irqs, 4):
            self.dw(ITARGETSR + i, mask)
        for i in range(32, gic_irqs, 16):
            self.dw(ICFGR + i // 4, 0)  # gic_dist_config: level-triggered, active low
        for i in range(32, gic_irqs, 4):
            self.dw(IPRIORITYR + i, 0xA0A0A0A0)
        for i in range(32, gic_irqs, 32):
            self.dw(ICACTIVER + i // 8, 0xFFFFFFFF)
            self.dw(ICENABLER + i // 8, 0xFFFFFFFF)
        self.dw(CTLR, 1)
        for cpu in range(self.gic.num_cpus):
            self.dw(ICACTIVER, 0xFFFFFFFF, cpu)
            self.dw(ICENABLER, 0xFFFFFFFF, cpu)
            for i in range(0, 32, 4):
                self.dw(IPRIORITYR + i, 0xA0A0A0A0, cpu)
            self.cw(PMR, 0xF0, cpu)
            if self.cr(C_IIDR, cpu) & 0xFF0FFF == 0x02043B:  # gic_check_gicv2
                for i in range(4):
                    self.cw(APR0 + 4 * i, 0, cpu)
            bypass = self.cr(C_CTLR, cpu) & 0x1E0
            self.cw(C_CTLR, bypass | 1, cpu)


@pytest.fixture
def guest() -> Guest:
    g = Guest()
    g.linux_init()
    return g


@pytest.fixture
def smp() -> Guest:
    g = Guest(cpus=2)
    g.linux_init()
    return g


# -- identification and probing ----------------------------------------------------------


def test_views_are_devices() -> None:
    gic = GicV2()
    for view, name in ((gic.distributor, "gicv2-dist"), (gic.cpu_interface, "gicv2-cpu")):
        assert isinstance(view, MmioDevice)
        assert view.name == name
        assert view.size == 0x10000
    assert isinstance(gic.distributor_for(0), MmioDevice)
    assert isinstance(gic.cpu_interface_for(0), MmioDevice)


@pytest.mark.parametrize(
    ("cpus", "irqs", "typer"), [(1, 128, 0x03), (2, 128, 0x23), (8, 96, 0xE2), (4, 32, 0x60)]
)
def test_typer(cpus: int, irqs: int, typer: int) -> None:
    g = Guest(cpus, irqs)
    assert g.dr(TYPER) == typer  # ITLinesNumber, CPUNumber, no Security Extensions


def test_identification() -> None:
    g = Guest()
    assert g.dr(IIDR) == 0x0200043B
    assert g.cr(C_IIDR) == 0x0202043B
    assert g.dr(0xFE8) == 0x2B  # ICPIDR2: architecture version 2
    assert g.dr(0xFE8, size=1) == 0x2B
    assert [g.dr(0xFD0)] + [g.dr(0xFE0 + 4 * i) for i in range(8)] == [
        0x04, 0x90, 0xB4, 0x2B, 0x00, 0x0D, 0xF0, 0x05, 0xB1,
    ]  # fmt: skip
    assert g.unknown == []


def test_bad_configurations() -> None:
    with pytest.raises(ValueError):
        GicV2(num_cpus=9)
    with pytest.raises(ValueError):
        GicV2(num_cpus=0)
    with pytest.raises(ValueError):
        GicV2(num_irqs=100)
    gic = GicV2(num_cpus=2)
    with pytest.raises(ValueError):
        gic.current_cpu = 2
    with pytest.raises(ValueError):
        gic.set_level(27, True)  # a PPI: needs a CPU
    with pytest.raises(ValueError):
        gic.set_level(128, True)
    with pytest.raises(ValueError):
        gic.set_ppi_level(2, 11, True)
    with pytest.raises(ValueError):
        gic.set_ppi_level(0, 32, True)


def test_reset_values() -> None:
    g = Guest()
    assert g.dr(CTLR) == 0
    assert g.dr(ISENABLER) == 0
    assert g.dr(IGROUPR) == 0
    assert g.dr(ICFGR) == 0xAAAAAAAA  # SGIs are edge-triggered, read-only
    assert g.cr(C_CTLR) == 0
    assert g.cr(PMR) == 0
    assert g.cr(BPR) == 0
    assert g.cr(ABPR) == 1
    assert g.cr(RPR) == 0xFF
    assert g.cr(HPPIR) == 1023
    assert g.ack() == 1023


def test_linux_probe_and_init_read_back(smp: Guest) -> None:
    assert smp.dr(CTLR) == 1
    assert smp.cr(C_CTLR, 0) == 1 and smp.cr(C_CTLR, 1) == 1
    assert smp.cr(PMR, 1) == 0xF0
    assert smp.dr(ITARGETSR + 32) == 0x01010101  # the boot CPU's mask, written to every SPI
    assert smp.dr(IPRIORITYR + 32) == 0xA0A0A0A0
    assert smp.dr(IPRIORITYR + 8, cpu=1) == 0xA0A0A0A0
    assert smp.dr(ISENABLER + 4) == 0
    assert smp.unknown == []


# -- distributor registers ---------------------------------------------------------------


def test_enable_set_and_clear() -> None:
    g = Guest()
    g.dw(ISENABLER + 4, 0x0000_0006)
    g.dw(ISENABLER + 4, 0x0000_0010)
    assert g.dr(ISENABLER + 4) == 0x16
    assert g.dr(ICENABLER + 4) == 0x16
    g.dw(ICENABLER + 4, 0x2)
    assert g.dr(ISENABLER + 4) == 0x14
    g.dw(ISENABLER, 0x0800_FFFF)  # SGIs and the virtual timer PPI: banked
    assert g.dr(ISENABLER) == 0x0800_FFFF
    g.dw(ISENABLER + 0x10, 0xFFFF_FFFF)  # interrupts 128-159 do not exist: RAZ/WI
    assert g.dr(ISENABLER + 0x10) == 0
    assert g.unknown == []


def test_priorities_are_byte_accessible() -> None:
    g = Guest()
    g.dw(IPRIORITYR + 33, 0x40, size=1)
    g.dw(IPRIORITYR + 34, 0x80, size=1)
    assert g.dr(IPRIORITYR + 32) == 0x00804000
    assert g.dr(IPRIORITYR + 33, size=1) == 0x40
    assert g.dr(IPRIORITYR + 34, size=2) == 0x0080
    g.dw(IPRIORITYR + 36, 0x11223344)
    assert [g.dr(IPRIORITYR + 36 + i, size=1) for i in range(4)] == [0x44, 0x33, 0x22, 0x11]
    assert g.dr(IPRIORITYR + 32, size=8) == 0x11223344_00804000


def test_private_registers_are_banked() -> None:
    g = Guest(cpus=2)
    g.dw(IPRIORITYR + 27, 0x20, cpu=0, size=1)
    g.dw(IPRIORITYR + 27, 0x60, cpu=1, size=1)
    g.dw(ISENABLER, 1 << 27, cpu=1)
    g.dw(IGROUPR, 1 << 27, cpu=1)
    assert g.dr(IPRIORITYR + 27, cpu=0, size=1) == 0x20
    assert g.dr(IPRIORITYR + 27, cpu=1, size=1) == 0x60
    assert g.dr(ISENABLER, cpu=0) == 0 and g.dr(ISENABLER, cpu=1) == 1 << 27
    assert g.dr(IGROUPR, cpu=0) == 0 and g.dr(IGROUPR, cpu=1) == 1 << 27
    # SPI registers are shared.
    g.dw(IPRIORITYR + 40, 0x30, cpu=1, size=1)
    assert g.dr(IPRIORITYR + 40, cpu=0, size=1) == 0x30


def test_targets_of_private_interrupts_name_the_reading_cpu() -> None:
    g = Guest(cpus=4)
    for cpu in range(4):
        for i in range(0, 32, 4):
            assert g.dr(ITARGETSR + i, cpu=cpu) == 0x01010101 << cpu
        assert g.dr(ITARGETSR + 27, cpu=cpu, size=1) == 1 << cpu
    g.dw(ITARGETSR + 24, 0xFFFFFFFF, cpu=2)  # read-only
    assert g.dr(ITARGETSR + 24, cpu=2) == 0x04040404


def test_spi_targets_are_byte_accessible() -> None:
    g = Guest(cpus=2)
    g.dw(ITARGETSR + 33, 0x02, size=1)
    g.dw(ITARGETSR + 34, 0xFF, size=1)  # only CPUs that exist are kept
    assert g.dr(ITARGETSR + 32) == 0x00030200
    assert g.dr(ITARGETSR + 34, size=1) == 0x03


def test_uniprocessor_targets_are_raz_wi_and_spis_reach_cpu0() -> None:
    g = Guest()
    assert g.dr(ITARGETSR) == 0
    g.dw(ITARGETSR + 32, 0x02020202)
    assert g.dr(ITARGETSR + 32) == 0
    g.dw(CTLR, 1)
    g.cw(C_CTLR, 1)
    g.cw(PMR, 0xFF)
    g.enable(UART)
    g.gic.set_level(UART, True)
    assert g.gic.irq_pending(0)
    assert g.ack() == UART


def test_icfgr() -> None:
    g = Guest(cpus=2)
    g.dw(ICFGR, 0)  # SGI configuration is fixed
    assert g.dr(ICFGR) == 0xAAAAAAAA
    g.dw(ICFGR + 4, 0x0080_0000, cpu=1)  # PPI 11 (ID 27) edge on CPU 1 only
    assert g.dr(ICFGR + 4, cpu=1) == 0x0080_0000
    assert g.dr(ICFGR + 4, cpu=0) == 0
    g.dw(ICFGR + 8, 0xFFFF_FFFF)  # only the odd bits are implemented
    assert g.dr(ICFGR + 8) == 0xAAAA_AAAA
    g.dw(ICFGR + 8, 0x00, size=1)
    assert g.dr(ICFGR + 8) == 0xAAAA_AA00


def test_groups_read_back() -> None:
    g = Guest()
    g.dw(IGROUPR + 4, 0x0000_0004)
    assert g.dr(IGROUPR + 4) == 4
    g.dw(IGROUPR + 4, 0xFF, size=1)
    assert g.dr(IGROUPR + 4) == 0xFF


def test_unknown_offsets_read_zero_and_are_reported() -> None:
    g = Guest()
    assert g.dr(0x00C) == 0
    g.dw(0xD00, 1)
    g.dw(TYPER, 0)
    assert g.dr(TYPER) == 0x03
    assert g.cr(0x40) == 0
    g.cw(0x44, 5)
    assert len(g.unknown) == 5
    assert all(msg.startswith("gicv2: ") for msg in g.unknown)
    assert "0x000c" in g.unknown[0]
    gic = GicV2()  # without a callback, nothing is reported and nothing breaks
    assert gic.distributor.read(0x00C, 4) == 0
    gic.cpu_interface.write(0x44, 4, 1)


# -- acknowledge / end of interrupt --------------------------------------------------------


def test_spi_level_cycle(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(UART)
    assert not gic.irq_pending(0)
    gic.set_level(UART, True)
    assert gic.irq_pending(0)
    assert guest.cr(HPPIR) == UART
    assert guest.dr(ISPENDR + 4) == 1 << 1
    assert guest.ack() == UART
    assert not gic.irq_pending(0)
    assert guest.cr(RPR) == 0xA0
    # The line is still high: active and pending.
    assert gic.is_active(UART) and gic.is_pending(UART)
    assert guest.dr(ISACTIVER + 4) == 1 << 1
    assert guest.ack() == 1023
    guest.eoi(UART)
    assert guest.cr(RPR) == 0xFF
    assert not gic.is_active(UART)
    assert gic.irq_pending(0)  # still asserted: taken again
    assert guest.ack() == UART
    gic.set_level(UART, False)  # the handler quiets the device
    guest.eoi(UART)
    assert not gic.irq_pending(0)
    assert guest.ack() == 1023
    assert guest.dr(ISPENDR + 4) == 0
    assert guest.unknown == []


def test_level_interrupt_pending_latch(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(RTC)
    guest.dw(ISPENDR + 4, 1 << 2)  # software pend with the line low
    assert gic.irq_pending(0)
    assert guest.ack() == RTC
    assert not gic.is_pending(RTC)  # acknowledge cleared the latch
    guest.eoi(RTC)
    assert not gic.irq_pending(0)
    # ICPENDR clears the latch but not a high line.
    gic.set_level(RTC, True)
    guest.dw(ISPENDR + 4, 1 << 2)
    guest.dw(ICPENDR + 4, 1 << 2)
    assert gic.is_pending(RTC)
    gic.set_level(RTC, False)
    assert not gic.is_pending(RTC)


def test_spi_edge_cycle(guest: Guest) -> None:
    gic = guest.gic
    guest.set_edge(40)
    guest.enable(40)
    gic.set_level(40, True)
    gic.set_level(40, False)  # a pulse is latched
    assert gic.irq_pending(0)
    assert guest.ack() == 40
    assert not gic.is_pending(40)
    gic.set_level(40, True)  # a second edge while active: active and pending
    assert gic.is_pending(40) and gic.is_active(40)
    assert not gic.irq_pending(0)
    gic.set_level(40, True)  # no edge, nothing new
    guest.eoi(40)
    assert gic.irq_pending(0)
    assert guest.ack() == 40
    guest.eoi(40)
    assert not gic.irq_pending(0)  # the line stays high but an edge interrupt is taken once
    guest.dw(ICPENDR + 4, 0xFFFFFFFF)


def test_disabled_and_untargeted_interrupts_are_not_signalled() -> None:
    g = Guest(cpus=2)
    g.linux_init()
    gic = g.gic
    gic.set_level(UART, True)
    assert not gic.irq_pending(0)  # not enabled
    g.enable(UART)
    assert gic.irq_pending(0) and not gic.irq_pending(1)
    g.dw(ITARGETSR + UART, 0x02, size=1)
    assert not gic.irq_pending(0) and gic.irq_pending(1)
    g.dw(ITARGETSR + UART, 0x00, size=1)
    assert not gic.irq_pending(0) and not gic.irq_pending(1)
    g.dw(ITARGETSR + UART, 0x03, size=1)  # both: whichever CPU acknowledges first takes it
    assert gic.irq_pending(0) and gic.irq_pending(1)
    assert g.ack(cpu=1) == UART
    assert not gic.irq_pending(0)
    assert g.ack(cpu=0) == 1023
    g.eoi(UART, cpu=1)
    g.dw(ICENABLER + 4, 1 << 1)
    assert not gic.irq_pending(0) and not gic.irq_pending(1)


def test_enables_gate_the_signal(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(UART)
    gic.set_level(UART, True)
    assert gic.irq_pending(0)
    guest.dw(CTLR, 0)
    assert not gic.irq_pending(0)
    assert guest.ack() == 1023
    guest.dw(CTLR, 1)
    guest.cw(C_CTLR, 0)
    assert not gic.irq_pending(0)
    assert guest.ack() == 1023
    guest.cw(C_CTLR, 1)
    assert gic.irq_pending(0)


def test_spurious_when_nothing_pending(guest: Guest) -> None:
    assert guest.ack() == 1023
    assert guest.cr(HPPIR) == 1023
    guest.eoi(1023)  # EOI of a spurious ID is ignored
    assert guest.unknown == []
    assert guest.cr(RPR) == 0xFF


def test_eoi_of_an_unacknowledged_interrupt_is_reported(guest: Guest) -> None:
    guest.eoi(UART)
    assert len(guest.unknown) == 1
    assert "not acknowledged" in guest.unknown[0]


# -- priorities ----------------------------------------------------------------------------


def test_priority_mask(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(UART, priority=0xA0)
    gic.set_level(UART, True)
    guest.cw(PMR, 0xA0)  # equal priority is masked
    assert not gic.irq_pending(0)
    assert guest.ack() == 1023
    assert guest.cr(HPPIR) == UART  # HPPIR ignores the mask
    guest.cw(PMR, 0xA1)
    assert gic.irq_pending(0)
    guest.cw(PMR, 0)
    assert not gic.irq_pending(0)
    guest.cw(PMR, 0xF0)
    assert guest.ack() == UART


def test_highest_priority_first_and_preemption(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(UART, priority=0xA0)
    guest.enable(RTC, priority=0x80)
    guest.enable(40, priority=0xA0)
    gic.set_level(UART, True)
    gic.set_level(40, True)
    assert guest.cr(HPPIR) == UART  # equal priority: the lowest ID wins
    assert guest.ack() == UART
    assert guest.cr(RPR) == 0xA0
    assert not gic.irq_pending(0)  # 40 has the same priority: no preemption
    gic.set_level(RTC, True)
    assert gic.irq_pending(0)  # higher priority preempts
    assert guest.ack() == RTC
    assert guest.cr(RPR) == 0x80
    gic.set_level(RTC, False)
    guest.eoi(RTC)
    assert guest.cr(RPR) == 0xA0
    assert not gic.irq_pending(0)
    gic.set_level(UART, False)
    guest.eoi(UART)
    assert guest.cr(RPR) == 0xFF
    assert guest.ack() == 40
    gic.set_level(40, False)
    guest.eoi(40)


def test_binary_point_limits_preemption(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(UART, priority=0xB0)
    guest.enable(RTC, priority=0xA0)
    gic.set_level(UART, True)
    guest.cw(BPR, 4)  # group priority = bits [7:5]: 0xB0 and 0xA0 are both 0xA0
    assert guest.ack() == UART
    assert guest.cr(RPR) == 0xA0
    gic.set_level(RTC, True)
    assert not gic.irq_pending(0)
    assert guest.ack() == 1023
    guest.cw(BPR, 3)  # bits [7:4] would separate them, but the running priority stays 0xA0
    assert not gic.irq_pending(0)
    gic.set_level(UART, False)
    guest.eoi(UART)
    assert gic.irq_pending(0)
    assert guest.ack() == RTC


def test_group1_needs_ackctl() -> None:
    g = Guest()
    gic = g.gic
    g.dw(CTLR, 3)
    g.cw(PMR, 0xFF)
    g.cw(C_CTLR, 0x3)
    g.dw(IGROUPR + 4, 1 << 1)
    g.enable(UART)
    gic.set_level(UART, True)
    assert gic.irq_pending(0)
    assert g.cr(HPPIR) == 1022
    assert g.ack() == 1022
    g.cw(C_CTLR, 0x7)  # AckCtl
    assert g.ack() == UART
    g.eoi(UART)
    gic.set_level(UART, False)
    # Group 1 disabled at the CPU interface: not signalled.
    gic.set_level(UART, True)
    g.cw(C_CTLR, 0x5)
    assert not gic.irq_pending(0)
    assert g.ack() == 1023


def test_fiq_enable_turns_group0_into_fiq(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(UART)
    gic.set_level(UART, True)
    assert gic.irq_pending(0) and not gic.fiq_pending(0)
    guest.cw(C_CTLR, 1 | 1 << 3)
    assert not gic.irq_pending(0) and gic.fiq_pending(0)


def test_split_eoi_and_deactivate(guest: Guest) -> None:
    gic = guest.gic
    guest.cw(C_CTLR, 1 | 1 << 9)  # EOImode: EOIR drops priority, DIR deactivates
    guest.enable(UART)
    gic.set_level(UART, True)
    assert guest.ack() == UART
    guest.eoi(UART)
    assert guest.cr(RPR) == 0xFF
    assert gic.is_active(UART)
    assert not gic.irq_pending(0)
    guest.cw(DIR, UART)
    assert not gic.is_active(UART)
    assert gic.irq_pending(0)
    guest.cw(C_CTLR, 1)
    guest.cw(DIR, UART)  # with EOImode clear, DIR is ignored and reported
    assert len(guest.unknown) == 1


def test_active_registers(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(UART)
    gic.set_level(UART, True)
    guest.dw(ISACTIVER + 4, 1 << 1)
    assert not gic.irq_pending(0)
    guest.dw(ICACTIVER + 4, 1 << 1)
    assert gic.irq_pending(0)


def test_active_priority_registers(guest: Guest) -> None:
    gic = guest.gic
    assert [guest.cr(APR0 + 4 * i) for i in range(4)] == [0, 0, 0, 0]
    guest.enable(UART, priority=0xA0)
    guest.enable(RTC, priority=0x20)
    gic.set_level(UART, True)
    guest.ack()
    gic.set_level(RTC, True)
    guest.ack()
    # Group priority 0xA0 is level 0x50 (APR2 bit 16), 0x20 is level 0x10 (APR0 bit 16).
    assert [guest.cr(APR0 + 4 * i) for i in range(4)] == [1 << 16, 0, 1 << 16, 0]
    assert guest.cr(0xE0) == 0  # GICC_NSAPR0: RAZ/WI
    guest.cw(APR0 + 8, 0xFFFFFFFF)  # setting bits does nothing
    assert guest.cr(RPR) == 0x20
    guest.cw(APR0, 0)  # clearing them drops the priority, as Linux does at CPU bring-up
    assert guest.cr(RPR) == 0xA0
    guest.cw(APR0 + 8, 0)
    assert guest.cr(RPR) == 0xFF
    assert [guest.cr(APR0 + 4 * i) for i in range(4)] == [0, 0, 0, 0]
    assert gic.is_active(UART)  # dropping priority does not deactivate
    assert guest.unknown == []


# -- private interrupts ----------------------------------------------------------------------


def test_ppi_per_cpu(smp: Guest) -> None:
    gic = smp.gic
    for cpu in (0, 1):
        smp.enable(27, cpu=cpu)
    gic.set_ppi_level(1, VTIMER_PPI, True)
    assert not gic.irq_pending(0) and gic.irq_pending(1)
    assert smp.dr(ISPENDR, cpu=1) == 1 << 27
    assert smp.dr(ISPENDR, cpu=0) == 0
    assert smp.ack(cpu=0) == 1023
    assert smp.ack(cpu=1) == 27
    assert not gic.irq_pending(1)
    gic.set_ppi_level(1, 27, False)  # the ID works too
    smp.eoi(27, cpu=1)
    assert not gic.irq_pending(1)
    gic.set_ppi_level(0, 27, True)
    assert gic.irq_pending(0) and not gic.irq_pending(1)
    smp.dw(ICENABLER, 1 << 27, cpu=0)
    assert not gic.irq_pending(0)


def test_ppi_software_pending(smp: Guest) -> None:
    smp.enable(30, cpu=1)
    smp.dw(ISPENDR, 1 << 30, cpu=1)
    assert smp.gic.irq_pending(1) and not smp.gic.irq_pending(0)
    smp.dw(ICPENDR, 1 << 30, cpu=1)
    assert not smp.gic.irq_pending(1)


def test_line_callbacks() -> None:
    g = Guest(cpus=2)
    g.linux_init()
    uart = g.gic.line(UART)
    timer = g.gic.ppi_line(1, VTIMER_PPI)
    uart(True)
    timer(True)
    assert g.gic.is_pending(UART)
    assert g.gic.is_pending(27, cpu=1) and not g.gic.is_pending(27, cpu=0)
    uart(False)
    assert not g.gic.is_pending(UART)


def test_pl011_drives_its_spi(guest: Guest) -> None:
    gic = guest.gic
    uart = Pl011(lambda data: None, irq=gic.line(UART))
    guest.enable(UART)
    uart.write(0x38, 4, 1 << 4)  # UARTIMSC: receive interrupt
    assert not gic.irq_pending(0)
    uart.feed(b"x")
    assert gic.irq_pending(0)
    assert guest.ack() == UART
    assert uart.read(0x000, 4) == ord("x")  # the handler drains the FIFO: line low
    guest.eoi(UART)
    assert not gic.irq_pending(0)
    assert guest.ack() == 1023


# -- software-generated interrupts -----------------------------------------------------------


def test_sgi_between_two_cpus(smp: Guest) -> None:
    gic = smp.gic
    for cpu in (0, 1):
        smp.dw(ISENABLER, 0xFFFF, cpu=cpu)
    smp.dw(SGIR, (0b10 << 16) | 5, cpu=0)  # target list: CPU 1
    assert not gic.irq_pending(0) and gic.irq_pending(1)
    assert smp.dr(ISPENDR, cpu=1) == 1 << 5
    assert smp.dr(SPENDSGIR + 5, cpu=1, size=1) == 0x01  # SGI 5 pending from CPU 0
    assert smp.cr(HPPIR, cpu=1) == 5
    assert smp.ack(cpu=1) == 5  # source CPU 0 in bits 12:10
    smp.eoi(5, cpu=1)
    assert not gic.irq_pending(1)
    smp.dw(SGIR, (1 << 24) | 3, cpu=1)  # everyone but me
    assert gic.irq_pending(0) and not gic.irq_pending(1)
    assert smp.cr(HPPIR, cpu=0) == (1 << 10) | 3
    assert smp.ack(cpu=0) == (1 << 10) | 3
    smp.eoi((1 << 10) | 3, cpu=0)
    assert not gic.is_active(3, cpu=0)
    smp.dw(SGIR, (2 << 24) | 7, cpu=1)  # myself
    assert smp.ack(cpu=1) == (1 << 10) | 7
    smp.eoi((1 << 10) | 7, cpu=1)
    assert not gic.irq_pending(0) and not gic.irq_pending(1)
    assert smp.unknown == []


def test_sgi_from_several_sources() -> None:
    g = Guest(cpus=3)
    g.linux_init()
    g.dw(ISENABLER, 0xFFFF, cpu=2)
    g.dw(SGIR, (0b100 << 16) | 1, cpu=1)
    g.dw(SGIR, (0b100 << 16) | 1, cpu=0)
    assert g.dr(SPENDSGIR, cpu=2) == 0x0300
    assert g.ack(cpu=2) == 1  # from CPU 0 first
    assert g.dr(SPENDSGIR, cpu=2) == 0x0200
    assert g.gic.is_pending(1, cpu=2) and g.gic.is_active(1, cpu=2)
    assert g.ack(cpu=2) == 1023  # active: not taken again until deactivated
    g.eoi(1, cpu=2)
    assert g.ack(cpu=2) == (1 << 10) | 1
    g.eoi((1 << 10) | 1, cpu=2)
    assert not g.gic.is_pending(1, cpu=2)


def test_sgi_set_and_clear_pending_registers(smp: Guest) -> None:
    smp.dw(ISENABLER, 0xFFFF, cpu=0)
    smp.dw(SPENDSGIR + 8, 0x02, cpu=0, size=1)  # SGI 8 "from CPU 1"
    assert smp.dr(ISPENDR, cpu=0) == 1 << 8
    assert smp.gic.irq_pending(0)
    smp.dw(ICPENDR, 0xFFFF, cpu=0)  # ignored for SGIs
    assert smp.gic.irq_pending(0)
    smp.dw(CPENDSGIR + 8, 0xFF, cpu=0)
    assert not smp.gic.irq_pending(0)
    assert smp.dr(ISPENDR, cpu=0) == 0
    smp.dw(ISPENDR, 0xFFFF, cpu=0)  # ignored for SGIs
    assert smp.dr(ISPENDR, cpu=0) == 0
    smp.dw(SGIR, (3 << 24) | 1, cpu=0)  # reserved filter: ignored and reported
    assert not smp.gic.irq_pending(0) and not smp.gic.irq_pending(1)
    assert len(smp.unknown) == 1


# -- views, reset ------------------------------------------------------------------------------


def test_fixed_cpu_views(smp: Guest) -> None:
    gic = smp.gic
    gic.current_cpu = 0
    dist1, cpu1 = gic.distributor_for(1), gic.cpu_interface_for(1)
    assert dist1.read(ITARGETSR, 4) == 0x02020202
    dist1.write(ISENABLER, 4, 1 << 27)
    gic.set_ppi_level(1, VTIMER_PPI, True)
    assert cpu1.read(IAR, 4) == 27
    assert gic.current_cpu == 0
    cpu1.write(EOIR, 4, 27)
    assert gic.cpu_read(1, RPR, 4) == 0xFF
    with pytest.raises(ValueError):
        gic.cpu_interface_for(2)


def test_reset_clears_state_but_keeps_lines(guest: Guest) -> None:
    gic = guest.gic
    guest.enable(UART)
    gic.set_level(UART, True)
    guest.ack()
    guest.gic.cpu_interface.reset()
    assert guest.dr(CTLR) == 0 and guest.cr(C_CTLR) == 0 and guest.cr(PMR) == 0
    assert guest.cr(RPR) == 0xFF
    assert not gic.is_active(UART)
    assert guest.dr(ISENABLER + 4) == 0
    assert guest.dr(IPRIORITYR + 32) == 0
    assert not gic.irq_pending(0)
    guest.linux_init()
    guest.enable(UART)
    assert gic.irq_pending(0)  # the UART's line is still high
    assert guest.ack() == UART


# -- irq_pending as the VMM polls it -----------------------------------------------------------


def test_irq_pending_transitions(smp: Guest) -> None:
    gic = smp.gic
    seen: list[tuple[bool, bool]] = []

    def poll() -> None:
        seen.append((gic.irq_pending(0), gic.irq_pending(1)))

    smp.enable(UART)
    poll()
    gic.set_level(UART, True)
    poll()
    poll()  # cached: same answer
    smp.ack(cpu=0)
    poll()
    smp.dw(SGIR, (0b10 << 16) | 0, cpu=0)
    smp.dw(ISENABLER, 1, cpu=1)
    poll()
    smp.ack(cpu=1)
    poll()
    gic.set_level(UART, False)
    smp.eoi(UART, cpu=0)
    smp.eoi(0, cpu=1)
    poll()
    assert seen == [
        (False, False),
        (True, False),
        (True, False),
        (False, False),
        (False, True),
        (False, False),
        (False, False),
    ]


def test_irq_pending_is_cached(guest: Guest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Polling between slices must cost next to nothing: the signal is computed once per
    change, not per poll."""
    gic = guest.gic
    guest.enable(UART)
    gic.set_level(UART, True)
    evaluations = 0
    evaluate = gic._evaluate

    def counting(cpu: int) -> object:
        nonlocal evaluations
        evaluations += 1
        return evaluate(cpu)

    monkeypatch.setattr(gic, "_evaluate", counting)
    for _ in range(1000):
        assert gic.irq_pending(0)
    assert evaluations <= 1
    gic.set_level(UART, False)
    assert not gic.irq_pending(0)
    assert evaluations <= 2
