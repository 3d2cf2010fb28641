"""Flattened device tree for the `virt` machine, laid out the way QEMU's virt board writes it.

Guests written for QEMU (Linux, kvm-unit-tests) find their devices by these node names,
compatible strings and properties, so they copy QEMU's rather than invent anything. Interrupt
properties are only written when a GIC is described: without an interrupt controller they would
name a parent that does not exist (dtc warns, Linux fails to map them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fdt

MIB = 1 << 20

# Interrupt specifier fields of the GIC binding (arm,gic.yaml).
GIC_SPI = 0
GIC_PPI = 1
IRQ_TYPE_LEVEL_HIGH = 4
GIC_PPI_CPU_SHIFT = 8
GICV2_MAX_CPUS = 8

# PSCI 0.2+ function IDs that PSCI 0.1 clients look for as node properties.
PSCI_CPU_SUSPEND = 0xC400_0001
PSCI_CPU_OFF = 0x8400_0002
PSCI_CPU_ON = 0xC400_0003
PSCI_MIGRATE = 0xC400_0005

APB_PCLK_HZ = 24_000_000
APB_PCLK_PHANDLE = 0x8000
GIC_PHANDLE = 0x8001

# MPIDR_EL1 affinity fields: Aff2..Aff0 in bits 23..0, Aff3 in bits 39..32.
MPIDR_AFF_LOW = 0x00FF_FFFF
MPIDR_AFF3 = 0xFF_0000_0000

_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class GicDescription:
    """A GICv2: distributor and CPU interface frames."""

    dist_base: int = 0x0800_0000
    dist_size: int = 0x1_0000
    cpu_base: int = 0x0801_0000
    cpu_size: int = 0x1_0000


@dataclass(frozen=True)
class TimerDescription:
    """The architected timer's PPI numbers (PPI n is GIC interrupt ID 16 + n)."""

    secure_ppi: int = 13
    nonsecure_ppi: int = 14
    virtual_ppi: int = 11
    hyp_ppi: int = 10


def virt_mpidr(index: int) -> int:
    """MPIDR affinity QEMU's virt board gives vCPU `index` with a GICv2 (8 CPUs per cluster)."""
    return ((index // GICV2_MAX_CPUS) << 8) | (index % GICV2_MAX_CPUS)


@dataclass(frozen=True)
class MachineDescription:
    """What the device tree describes; defaults are the `virt` memory map with one vCPU."""

    memory_base: int = 0x4000_0000
    memory_size: int = 128 * MIB
    cpus: tuple[int, ...] = (0,)
    """MPIDR_EL1 of each vCPU, in vCPU order; only the affinity fields are used."""
    uart_base: int = 0x0900_0000
    uart_size: int = 0x1000
    uart_irq: int = 1
    """SPI number (GIC interrupt ID 32 + n)."""
    rtc_base: int = 0x0901_0000
    rtc_size: int = 0x1000
    rtc_irq: int = 2
    gic: GicDescription | None = None
    timer: TimerDescription | None = None
    bootargs: str = ""
    initrd_start: int | None = None
    initrd_end: int | None = None
    """End of the initrd, exclusive (as Linux reads linux,initrd-end)."""
    kaslr_seed: int | None = None
    cpu_compatible: str = "arm,cortex-a57"


def uart_node_path(machine: MachineDescription) -> str:
    """Path of the UART node, which /chosen/stdout-path names."""
    return f"/pl011@{machine.uart_base:x}"


def _validate(machine: MachineDescription) -> None:
    def check_range(what: str, base: int, size: int) -> None:
        if base < 0 or size <= 0 or base + size > _U64 + 1:
            raise ValueError(f"{what} at {base:#x} with size {size:#x} is not a valid range")

    check_range("memory", machine.memory_base, machine.memory_size)
    check_range("the UART", machine.uart_base, machine.uart_size)
    check_range("the RTC", machine.rtc_base, machine.rtc_size)
    if not machine.cpus:
        raise ValueError("the machine has no CPUs")
    affinities = [_affinity(mpidr) for mpidr in machine.cpus]
    if len(set(affinities)) != len(affinities):
        raise ValueError("two CPUs have the same MPIDR affinity")
    if machine.gic is not None:
        check_range("the GIC distributor", machine.gic.dist_base, machine.gic.dist_size)
        check_range("the GIC CPU interface", machine.gic.cpu_base, machine.gic.cpu_size)
        if len(machine.cpus) > GICV2_MAX_CPUS:
            raise ValueError(
                f"a GICv2 serves at most {GICV2_MAX_CPUS} CPUs, not {len(machine.cpus)}"
            )
    if (machine.initrd_start is None) != (machine.initrd_end is None):
        raise ValueError("give both the start and the end of the initrd, or neither")
    start, end = machine.initrd_start, machine.initrd_end
    if start is not None and end is not None and not 0 <= start <= end <= _U64:
        raise ValueError(f"initrd {start:#x} - {end:#x} is not a valid range")
    if machine.kaslr_seed is not None and not 0 <= machine.kaslr_seed <= _U64:
        raise ValueError("the KASLR seed must be a 64-bit unsigned value")
    if not all(" " <= c <= "~" or c in "\t\n\r" for c in machine.bootargs):
        raise ValueError(f"bootargs must be printable ASCII, got {machine.bootargs!r}")


def _affinity(mpidr: int) -> int:
    return mpidr & (MPIDR_AFF_LOW | MPIDR_AFF3)


def _cells64(value: int) -> list[int]:
    return [value >> 32, value & 0xFFFF_FFFF]


def _reg(base: int, size: int) -> list[int]:
    return [*_cells64(base), *_cells64(size)]


def _node(name: str, *props: Any) -> Any:
    node = fdt.Node(name)
    for prop in props:
        node.append(prop)
    return node


def _words(name: str, values: Sequence[int]) -> Any:
    return fdt.PropWords(name, *values)


def _strings(name: str, *values: str) -> Any:
    return fdt.PropStrings(name, *values)


def _flag(name: str) -> Any:
    return fdt.Property(name)


def _spi(irq: int) -> list[int]:
    return [GIC_SPI, irq, IRQ_TYPE_LEVEL_HIGH]


def build_dtb(machine: MachineDescription) -> bytes:
    """Return the device tree blob (version 17) describing `machine`."""
    _validate(machine)
    has_gic = machine.gic is not None

    root = fdt.Node("/")
    root.append(_strings("compatible", "linux,dummy-virt"))
    root.append(_strings("model", "linux,dummy-virt"))
    root.append(_words("#address-cells", [2]))
    root.append(_words("#size-cells", [2]))
    if has_gic:
        root.append(_words("interrupt-parent", [GIC_PHANDLE]))

    root.append(
        _node(
            "psci",
            _strings("compatible", "arm,psci-1.0", "arm,psci-0.2", "arm,psci"),
            _strings("method", "hvc"),
            _words("cpu_suspend", [PSCI_CPU_SUSPEND]),
            _words("cpu_off", [PSCI_CPU_OFF]),
            _words("cpu_on", [PSCI_CPU_ON]),
            _words("migrate", [PSCI_MIGRATE]),
        )
    )

    root.append(
        _node(
            f"memory@{machine.memory_base:x}",
            _strings("device_type", "memory"),
            _words("reg", _reg(machine.memory_base, machine.memory_size)),
        )
    )

    root.append(_cpus_node(machine))

    if machine.timer is not None:
        root.append(_timer_node(machine.timer, len(machine.cpus), has_gic))

    root.append(
        _node(
            "apb-pclk",
            _strings("compatible", "fixed-clock"),
            _words("#clock-cells", [0]),
            _words("clock-frequency", [APB_PCLK_HZ]),
            _strings("clock-output-names", "clk24mhz"),
            _words("phandle", [APB_PCLK_PHANDLE]),
        )
    )

    if machine.gic is not None:
        gic = machine.gic
        root.append(
            _node(
                f"intc@{gic.dist_base:x}",
                _strings("compatible", "arm,cortex-a15-gic"),
                _words("#interrupt-cells", [3]),
                _flag("interrupt-controller"),
                # As QEMU, which keeps room for a GICv2m frame child (dtc also wants these).
                _words("#address-cells", [2]),
                _words("#size-cells", [2]),
                _flag("ranges"),
                _words(
                    "reg", [*_reg(gic.dist_base, gic.dist_size), *_reg(gic.cpu_base, gic.cpu_size)]
                ),
                _words("phandle", [GIC_PHANDLE]),
            )
        )

    uart = _node(
        uart_node_path(machine).lstrip("/"),
        _strings("compatible", "arm,pl011", "arm,primecell"),
        _words("reg", _reg(machine.uart_base, machine.uart_size)),
    )
    if has_gic:
        uart.append(_words("interrupts", _spi(machine.uart_irq)))
    uart.append(_words("clocks", [APB_PCLK_PHANDLE, APB_PCLK_PHANDLE]))
    uart.append(_strings("clock-names", "uartclk", "apb_pclk"))
    root.append(uart)

    rtc = _node(
        f"pl031@{machine.rtc_base:x}",
        _strings("compatible", "arm,pl031", "arm,primecell"),
        _words("reg", _reg(machine.rtc_base, machine.rtc_size)),
    )
    if has_gic:
        rtc.append(_words("interrupts", _spi(machine.rtc_irq)))
    rtc.append(_words("clocks", [APB_PCLK_PHANDLE]))
    rtc.append(_strings("clock-names", "apb_pclk"))
    root.append(rtc)

    root.append(_chosen_node(machine))

    tree = fdt.FDT(entries=[])
    tree.header.version = 17
    tree.root = root
    return bytes(tree.to_dtb())


def padded(dtb: bytes, size: int) -> bytes:
    """``dtb`` with free space at its end up to ``size`` bytes, counted in its header's
    totalsize (as dtc -S does): a kernel reserves totalsize bytes, the padding included."""
    if size < len(dtb) or size >= 1 << 32 or dtb[:4] != b"\xd0\x0d\xfe\xed":
        raise ValueError(f"cannot pad a {len(dtb)}-byte device tree to {size} bytes")
    return dtb[:4] + size.to_bytes(4, "big") + dtb[8:] + bytes(size - len(dtb))


def _cpus_node(machine: MachineDescription) -> Any:
    affinities = [_affinity(mpidr) for mpidr in machine.cpus]
    # As QEMU: one address cell unless some CPU needs Aff3.
    address_cells = 2 if any(aff & MPIDR_AFF3 for aff in affinities) else 1
    cpus = _node("cpus", _words("#address-cells", [address_cells]), _words("#size-cells", [0]))
    for aff in affinities:
        reg = _cells64(aff) if address_cells == 2 else [aff]
        cpus.append(
            _node(
                f"cpu@{aff:x}",
                _strings("device_type", "cpu"),
                _strings("compatible", machine.cpu_compatible),
                _words("reg", reg),
                _strings("enable-method", "psci"),
            )
        )
    return cpus


def _timer_node(timer: TimerDescription, ncpus: int, has_gic: bool) -> Any:
    node = _node("timer", _strings("compatible", "arm,armv8-timer", "arm,armv7-timer"))
    if has_gic:
        # GICv2 PPI specifiers carry a mask of the CPUs the PPI is wired to, as QEMU writes it.
        flags = (((1 << ncpus) - 1) << GIC_PPI_CPU_SHIFT) | IRQ_TYPE_LEVEL_HIGH
        ppis = (timer.secure_ppi, timer.nonsecure_ppi, timer.virtual_ppi, timer.hyp_ppi)
        node.append(_words("interrupts", [cell for ppi in ppis for cell in (GIC_PPI, ppi, flags)]))
    node.append(_flag("always-on"))
    return node


def _chosen_node(machine: MachineDescription) -> Any:
    chosen = _node("chosen")
    # QEMU leaves bootargs out when the command line is empty.
    if machine.bootargs:
        chosen.append(_strings("bootargs", machine.bootargs))
    chosen.append(_strings("stdout-path", uart_node_path(machine)))
    if machine.initrd_start is not None and machine.initrd_end is not None:
        chosen.append(_words("linux,initrd-start", _cells64(machine.initrd_start)))
        chosen.append(_words("linux,initrd-end", _cells64(machine.initrd_end)))
    if machine.kaslr_seed is not None:
        chosen.append(_words("kaslr-seed", _cells64(machine.kaslr_seed)))
    return chosen
