"""The virt machine's device tree, checked through dtc and through the fdt parser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import fdt
import pytest

from mmioguard.vmm.devicetree import (
    GicDescription,
    MachineDescription,
    TimerDescription,
    build_dtb,
    padded,
    uart_node_path,
    virt_mpidr,
)

DTC = shutil.which("dtc")
needs_dtc = pytest.mark.skipif(
    DTC is None, reason="dtc (device-tree-compiler) is not installed; CI installs it"
)

FULL = MachineDescription(
    memory_size=256 << 20,
    cpus=tuple(virt_mpidr(i) for i in range(4)),
    gic=GicDescription(),
    timer=TimerDescription(),
    bootargs="console=ttyAMA0 earlycon ioremap_guard",
    initrd_start=0x4800_0000,
    initrd_end=0x4812_3456,
    kaslr_seed=0x0123_4567_89AB_CDEF,
)
MINIMAL = MachineDescription()


def decompile(blob: bytes, tmp_path: Path) -> tuple[str, str]:
    """Return (dts, warnings) from `dtc -I dtb -O dts`."""
    assert DTC is not None
    path = tmp_path / "virt.dtb"
    path.write_bytes(blob)
    result = subprocess.run(
        [DTC, "-I", "dtb", "-O", "dts", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout, result.stderr


def node_body(dts: str, name: str) -> str:
    """The text of node `name` up to its closing brace (nodes here nest at most two deep)."""
    match = re.search(rf"^(\t*){re.escape(name)} {{\n(.*?)^\1}};", dts, re.M | re.S)
    assert match is not None, f"node {name} not in:\n{dts}"
    return match.group(2)


def props(body: str) -> list[str]:
    """The property lines directly in a node body (not those of its children)."""
    depth = min(len(line) - len(line.lstrip("\t")) for line in body.splitlines() if line.strip())
    return [
        line.strip()
        for line in body.splitlines()
        if line.strip().endswith(";")
        and not line.strip().startswith("}")
        and len(line) - len(line.lstrip("\t")) == depth
        and "{" not in line
    ]


@needs_dtc
def test_full_machine_decompiles_cleanly(tmp_path: Path) -> None:
    dts, warnings = decompile(build_dtb(FULL), tmp_path)
    assert warnings == ""
    root = props(node_body(dts, "/"))
    assert 'compatible = "linux,dummy-virt";' in root
    assert "#address-cells = <0x02>;" in root
    assert "#size-cells = <0x02>;" in root
    assert "interrupt-parent = <0x8001>;" in root

    assert props(node_body(dts, "memory@40000000")) == [
        'device_type = "memory";',
        "reg = <0x00 0x40000000 0x00 0x10000000>;",
    ]

    cpus = node_body(dts, "cpus")
    assert "#address-cells = <0x01>;" in props(cpus)
    assert "#size-cells = <0x00>;" in props(cpus)
    for index in range(4):
        assert props(node_body(cpus, f"cpu@{index}")) == [
            'device_type = "cpu";',
            'compatible = "arm,cortex-a57";',
            f"reg = <{index:#04x}>;",
            'enable-method = "psci";',
        ]
    assert "cpu@4" not in dts

    assert props(node_body(dts, "psci")) == [
        'compatible = "arm,psci-1.0\\0arm,psci-0.2\\0arm,psci";',
        'method = "hvc";',
        "cpu_suspend = <0xc4000001>;",
        "cpu_off = <0x84000002>;",
        "cpu_on = <0xc4000003>;",
        "migrate = <0xc4000005>;",
    ]

    clock = props(node_body(dts, "apb-pclk"))
    assert 'compatible = "fixed-clock";' in clock
    assert "#clock-cells = <0x00>;" in clock
    assert "clock-frequency = <0x16e3600>;" in clock  # 24 MHz
    assert "phandle = <0x8000>;" in clock

    assert props(node_body(dts, "pl011@9000000")) == [
        'compatible = "arm,pl011\\0arm,primecell";',
        "reg = <0x00 0x9000000 0x00 0x1000>;",
        "interrupts = <0x00 0x01 0x04>;",
        "clocks = <0x8000 0x8000>;",
        'clock-names = "uartclk\\0apb_pclk";',
    ]
    assert props(node_body(dts, "pl031@9010000")) == [
        'compatible = "arm,pl031\\0arm,primecell";',
        "reg = <0x00 0x9010000 0x00 0x1000>;",
        "interrupts = <0x00 0x02 0x04>;",
        "clocks = <0x8000>;",
        'clock-names = "apb_pclk";',
    ]

    gic = props(node_body(dts, "intc@8000000"))
    assert 'compatible = "arm,cortex-a15-gic";' in gic
    assert "#interrupt-cells = <0x03>;" in gic
    assert "interrupt-controller;" in gic
    assert "reg = <0x00 0x8000000 0x00 0x10000 0x00 0x8010000 0x00 0x10000>;" in gic
    assert "phandle = <0x8001>;" in gic

    timer = props(node_body(dts, "timer"))
    assert timer[0].startswith('compatible = "arm,armv8-timer')
    # Four CPUs: the GICv2 PPI CPU mask is 0xf, as QEMU writes it.
    assert (
        "interrupts = <0x01 0x0d 0xf04 0x01 0x0e 0xf04 0x01 0x0b 0xf04 0x01 0x0a 0xf04>;" in timer
    )
    assert "always-on;" in timer

    assert props(node_body(dts, "chosen")) == [
        'bootargs = "console=ttyAMA0 earlycon ioremap_guard";',
        'stdout-path = "/pl011@9000000";',
        "linux,initrd-start = <0x00 0x48000000>;",
        "linux,initrd-end = <0x00 0x48123456>;",
        "kaslr-seed = <0x1234567 0x89abcdef>;",
    ]


@needs_dtc
def test_minimal_machine(tmp_path: Path) -> None:
    dts, warnings = decompile(build_dtb(MINIMAL), tmp_path)
    assert warnings == ""
    assert "interrupt-parent" not in dts
    assert "interrupts" not in dts  # no GIC: nothing to deliver them
    assert "intc@" not in dts and "timer" not in dts
    assert props(node_body(dts, "memory@40000000"))[1] == "reg = <0x00 0x40000000 0x00 0x8000000>;"
    assert props(node_body(dts, "chosen")) == ['stdout-path = "/pl011@9000000";']
    assert "kaslr-seed" not in dts and "initrd" not in dts and "bootargs" not in dts
    assert "cpu@0 {" in dts and "cpu@1" not in dts


@needs_dtc
def test_single_cpu_timer_mask(tmp_path: Path) -> None:
    machine = MachineDescription(gic=GicDescription(), timer=TimerDescription())
    dts, _ = decompile(build_dtb(machine), tmp_path)
    assert "interrupts = <0x01 0x0d 0x104 0x01 0x0e 0x104" in dts


@needs_dtc
def test_aff3_cpus_use_two_address_cells(tmp_path: Path) -> None:
    machine = MachineDescription(cpus=(0x8000_0000, 0x1_0000_0000))  # bit 31 is RES1, dropped
    dts, warnings = decompile(build_dtb(machine), tmp_path)
    assert warnings == ""
    cpus = node_body(dts, "cpus")
    assert "#address-cells = <0x02>;" in props(cpus)
    assert "reg = <0x00 0x00>;" in props(node_body(cpus, "cpu@0"))
    assert "reg = <0x01 0x00>;" in props(node_body(cpus, "cpu@100000000"))


@needs_dtc
def test_moved_devices(tmp_path: Path) -> None:
    machine = MachineDescription(
        memory_base=0x8000_0000, uart_base=0x1C09_0000, rtc_base=0x1C17_0000
    )
    dts, _ = decompile(build_dtb(machine), tmp_path)
    assert "memory@80000000 {" in dts
    assert 'stdout-path = "/pl011@1c090000";' in dts
    assert "pl031@1c170000 {" in dts
    assert uart_node_path(machine) == "/pl011@1c090000"


def test_parses_back_with_fdt() -> None:
    tree = fdt.parse_dtb(build_dtb(FULL))
    assert tree.header.version == 17
    assert tree.get_property("compatible").value == "linux,dummy-virt"
    assert list(tree.get_property("reg", "/memory@40000000").data) == [0, 0x4000_0000, 0, 256 << 20]
    assert tree.get_property("method", "/psci").value == "hvc"
    assert tree.get_property("stdout-path", "/chosen").value == "/pl011@9000000"
    assert tree.get_property("bootargs", "/chosen").value == FULL.bootargs
    assert list(tree.get_property("kaslr-seed", "/chosen").data) == [0x0123_4567, 0x89AB_CDEF]
    assert tree.exist_node("/intc@8000000")
    assert tree.exist_property("interrupt-controller", "/intc@8000000")
    names = [node.name for node in tree.get_node("/cpus").nodes]
    assert names == ["cpu@0", "cpu@1", "cpu@2", "cpu@3"]
    assert tree.get_property("enable-method", "/cpus/cpu@3").value == "psci"


def test_blob_header() -> None:
    blob = build_dtb(MINIMAL)
    assert blob[:4] == bytes.fromhex("d00dfeed")
    assert int.from_bytes(blob[4:8], "big") == len(blob)


def test_padding_is_counted_in_totalsize() -> None:
    # A kernel reserves totalsize bytes: padding to whole pages leaves none of the last page
    # of RAM to its allocator.
    blob = build_dtb(FULL)
    page = padded(blob, 4096)
    assert len(page) == 4096 and int.from_bytes(page[4:8], "big") == 4096
    assert page[8:len(blob)] == blob[8:] and page[len(blob):] == bytes(4096 - len(blob))
    assert fdt.parse_dtb(page).get_property("method", "/psci").value == "hvc"
    with pytest.raises(ValueError, match="cannot pad"):
        padded(blob, len(blob) - 1)
    with pytest.raises(ValueError, match="cannot pad"):
        padded(b"not a dtb", 4096)


def test_virt_mpidr() -> None:
    assert [virt_mpidr(i) for i in (0, 1, 7, 8, 9)] == [0, 1, 7, 0x100, 0x101]


@pytest.mark.parametrize(
    ("machine", "message"),
    [
        (MachineDescription(cpus=()), "no CPUs"),
        (MachineDescription(cpus=(0, 0x8000_0000)), "same MPIDR"),
        (
            MachineDescription(gic=GicDescription(), cpus=tuple(range(9))),
            "at most 8 CPUs",
        ),
        (MachineDescription(memory_size=0), "memory"),
        (MachineDescription(uart_base=(1 << 64) - 0x800), "UART"),
        (MachineDescription(initrd_start=0x4800_0000), "both"),
        (MachineDescription(initrd_start=0x4800_0000, initrd_end=0x4700_0000), "initrd"),
        (MachineDescription(kaslr_seed=1 << 64), "KASLR"),
        (MachineDescription(bootargs="caf\u00e9"), "printable ASCII"),
        (MachineDescription(bootargs="a\x00b"), "printable ASCII"),
    ],
)
def test_invalid_descriptions(machine: MachineDescription, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_dtb(machine)
