"""Image loaders: hand-built ELF files for every error, and one real ELF from zig cc."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmioguard.vmm.loader import (
    ImageError,
    LoadedImage,
    Segment,
    load_elf,
    load_image,
    load_linux_image,
    load_raw,
    machine_name,
)

RAM = (0x4000_0000, 0x800_0000, "RAM")
FLASH = (0x0, 0x400_0000, "flash")
REGIONS = [RAM]
PT_LOAD, PT_NOTE = 1, 4


@dataclass
class Seg:
    paddr: int
    data: bytes
    memsz: int | None = None
    vaddr: int | None = None
    p_type: int = PT_LOAD
    offset: int | None = None  # default: where build_elf puts the data
    filesz: int | None = None


def build_elf(
    segments: list[Seg],
    entry: int,
    *,
    ident: bytes | None = None,
    e_type: int = 2,
    machine: int = 183,
    phentsize: int = 56,
    phnum: int | None = None,
) -> bytes:
    """An ELF64 executable: header, program headers, then each segment's bytes in order."""
    phoff = 64
    data_start = phoff + len(segments) * 56
    blobs = b""
    phdrs = b""
    for seg in segments:
        offset = data_start + len(blobs) if seg.offset is None else seg.offset
        filesz = len(seg.data) if seg.filesz is None else seg.filesz
        memsz = len(seg.data) if seg.memsz is None else seg.memsz
        vaddr = seg.paddr if seg.vaddr is None else seg.vaddr
        phdrs += struct.pack(
            "<IIQQQQQQ", seg.p_type, 5, offset, vaddr, seg.paddr, filesz, memsz, 0x1000
        )
        blobs += seg.data
    if ident is None:
        ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = struct.pack(
        "<16sHHIQQQIHHHHHH",
        ident,
        e_type,
        machine,
        1,
        entry,
        phoff,
        0,
        0,
        64,
        phentsize,
        len(segments) if phnum is None else phnum,
        64,
        0,
        0,
    )
    return header + phdrs + blobs


CODE = bytes(range(32))
GOOD = build_elf([Seg(0x4008_0000, CODE), Seg(0x4009_0000, b"data", memsz=0x100)], 0x4008_0000)


def elf_error(data: bytes, regions: list[tuple[int, int, str]] | None = None) -> str:
    with pytest.raises(ImageError) as info:
        load_elf("guest.elf", data, REGIONS if regions is None else regions)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("guest.elf")
    return message


# -- ELF success paths -------------------------------------------------------------------


def test_elf_loads_segments_and_entry() -> None:
    image = load_elf("guest.elf", GOOD, REGIONS)
    assert image == LoadedImage(
        (Segment(0x4008_0000, CODE, 32), Segment(0x4009_0000, b"data", 0x100)), 0x4008_0000, "elf"
    )
    assert image.segments[1].end == 0x4009_0100


def test_elf_skips_non_load_and_empty_segments() -> None:
    data = build_elf(
        [Seg(0, b"note", p_type=PT_NOTE), Seg(0x1234, b"", memsz=0), Seg(0x4000_0000, CODE)],
        0x4000_0010,
    )
    image = load_elf("guest.elf", data, REGIONS)
    assert [s.addr for s in image.segments] == [0x4000_0000]
    assert image.entry == 0x4000_0010


def test_elf_uses_physical_addresses_and_translates_entry() -> None:
    va = 0xFFFF_8000_1000_0000
    data = build_elf([Seg(0x4020_0000, CODE, vaddr=va)], va + 8)
    image = load_elf("guest.elf", data, REGIONS)
    assert image.segments[0].addr == 0x4020_0000
    assert image.entry == 0x4020_0008


def test_elf_physical_entry_accepted() -> None:
    data = build_elf([Seg(0x4020_0000, CODE, vaddr=0xFFFF_0000_0000_0000)], 0x4020_0004)
    assert load_elf("guest.elf", data, REGIONS).entry == 0x4020_0004


def test_elf_in_flash_and_ram() -> None:
    data = build_elf([Seg(0x0, CODE), Seg(0x4000_0000, b"ram")], 0x0)
    image = load_elf("guest.elf", data, [FLASH, RAM])
    assert [s.addr for s in image.segments] == [0, 0x4000_0000]


def test_elf_pie_loads_where_it_says() -> None:
    data = build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, e_type=3)
    assert load_elf("guest.elf", data, REGIONS).kind == "elf"


def test_elf_segment_filling_ram_exactly() -> None:
    data = build_elf([Seg(0x4000_0000, CODE, memsz=0x800_0000)], 0x4000_0000)
    assert load_elf("guest.elf", data, REGIONS).segments[0].memsz == 0x800_0000


# -- ELF errors ----------------------------------------------------------------------------


def test_not_elf() -> None:
    assert "not an ELF file" in elf_error(b"MZ\x90\x00" + bytes(100))
    assert "not an ELF file" in elf_error(b"")


def test_truncated_header() -> None:
    assert "truncated ELF header" in elf_error(b"\x7fELF\x02")
    message = elf_error(GOOD[:40])
    assert "truncated ELF header" in message and "40 bytes" in message


def test_elfclass32() -> None:
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    assert "32-bit ELF file (ELFCLASS32), not ELFCLASS64" in elf_error(
        build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, ident=ident)
    )
    ident = b"\x7fELF" + bytes([9, 1, 1, 0]) + bytes(8)
    assert "unknown class 9" in elf_error(
        build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, ident=ident)
    )


def test_big_endian() -> None:
    ident = b"\x7fELF" + bytes([2, 2, 1, 0]) + bytes(8)
    message = elf_error(build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, ident=ident))
    assert "big-endian" in message


@pytest.mark.parametrize(
    ("machine", "name"),
    [
        (62, "x86-64"),
        (40, "ARM (32-bit)"),
        (3, "x86 (i386)"),
        (243, "RISC-V"),
        (9999, "machine 9999"),
    ],
)
def test_wrong_machine(machine: int, name: str) -> None:
    message = elf_error(build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, machine=machine))
    assert f"for {name}, not AArch64" in message
    assert machine_name(machine) == name


def test_relocatable_object() -> None:
    message = elf_error(build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, e_type=1))
    assert "relocatable object" in message


def test_no_load_segments() -> None:
    assert "no PT_LOAD segments" in elf_error(build_elf([], 0x4000_0000))
    assert "no PT_LOAD segments" in elf_error(
        build_elf([Seg(0x4000_0000, CODE, p_type=PT_NOTE)], 0x4000_0000)
    )


def test_program_header_table_truncated() -> None:
    data = build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, phnum=50)
    message = elf_error(data)
    assert "program header table at 0x40 - " in message and "truncated" in message


def test_program_header_entries_too_small() -> None:
    data = build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, phentsize=32)
    assert "too small" in elf_error(data)


def test_segment_runs_past_end_of_file() -> None:
    data = build_elf([Seg(0x4000_0000, CODE), Seg(0x4001_0000, b"x" * 64)], 0x4000_0000)
    message = elf_error(data[:-10])
    assert "segment 1: file range" in message
    assert f"past the end of the file ({len(data) - 10:#x} bytes)" in message
    assert "truncated" in message


def test_filesz_larger_than_memsz() -> None:
    data = build_elf([Seg(0x4000_0000, CODE, memsz=16)], 0x4000_0000)
    assert "segment 0: file size 0x20 is larger than its memory size 0x10" in elf_error(data)


def test_segment_outside_ram() -> None:
    data = build_elf([Seg(0x4000_0000, CODE), Seg(0x1000, CODE)], 0x4000_0000)
    assert elf_error(data) == (
        "guest.elf: segment 1 at 0x1000 - 0x1020 is outside RAM (0x40000000 - 0x48000000)"
    )


def test_segment_outside_every_region_lists_them() -> None:
    data = build_elf([Seg(0x3000_0000, CODE)], 0x3000_0000)
    assert elf_error(data, [FLASH, RAM]) == (
        "guest.elf: segment 0 at 0x30000000 - 0x30000020 is outside "
        "flash (0x0 - 0x4000000), RAM (0x40000000 - 0x48000000)"
    )


def test_segment_runs_past_end_of_ram() -> None:
    data = build_elf([Seg(0x47FF_FFF0, CODE)], 0x47FF_FFF0)
    assert elf_error(data) == (
        "guest.elf: segment 0 at 0x47fffff0 - 0x48000010 runs past the end of RAM "
        "(0x40000000 - 0x48000000)"
    )


def test_segment_starting_below_ram() -> None:
    data = build_elf([Seg(0x3FFF_FFF0, CODE)], 0x4000_0000)
    assert "is outside RAM" in elf_error(data)


def test_segment_spanning_two_regions() -> None:
    regions = [(0x0, 0x1000, "flash"), (0x1000, 0x1000, "RAM")]
    data = build_elf([Seg(0xFF0, CODE)], 0xFF0)
    assert "runs past the end of flash" in elf_error(data, regions)


def test_bss_outside_ram() -> None:
    data = build_elf([Seg(0x4000_0000, CODE, memsz=0x900_0000)], 0x4000_0000)
    assert "runs past the end of RAM" in elf_error(data)


def test_overlapping_segments() -> None:
    data = build_elf([Seg(0x4000_1000, CODE), Seg(0x4000_0000, CODE, memsz=0x1001)], 0x4000_1000)
    assert elf_error(data) == (
        "guest.elf: segments 1 (0x40000000 - 0x40001001) and 0 (0x40001000 - 0x40001020) overlap"
    )


def test_adjacent_segments_do_not_overlap() -> None:
    data = build_elf([Seg(0x4000_0000, CODE, memsz=0x1000), Seg(0x4000_1000, CODE)], 0x4000_0000)
    assert len(load_elf("guest.elf", data, REGIONS).segments) == 2


def test_entry_outside_segments() -> None:
    data = build_elf([Seg(0x4000_0000, CODE)], 0x4000_0020)
    assert elf_error(data) == ("guest.elf: entry point 0x40000020 is not inside any loaded segment")


# -- arm64 Image ---------------------------------------------------------------------------


def arm64_image(text_offset: int, image_size: int, flags: int = 0, length: int = 0x100) -> bytes:
    header = struct.pack(
        "<IIQQQQQQII", 0x14000010, 0, text_offset, image_size, flags, 0, 0, 0, 0x644D5241, 0
    )
    return header + bytes(length - len(header))


def test_linux_image() -> None:
    data = arm64_image(0x0, 0x20_0000)
    image = load_linux_image("Image", data, 0x4000_0000, REGIONS)
    assert image.kind == "image"
    assert image.entry == 0x4000_0000
    assert image.segments == (Segment(0x4000_0000, data, 0x20_0000),)


def test_linux_image_text_offset() -> None:
    image = load_linux_image("Image", arm64_image(0x8_0000, 0x100), 0x4000_0000, REGIONS)
    assert image.entry == 0x4008_0000
    assert image.segments[0].memsz == 0x100


def test_linux_image_legacy_text_offset() -> None:
    image = load_linux_image("Image", arm64_image(0x1234, 0), 0x4000_0000, REGIONS)
    assert image.entry == 0x4008_0000
    assert image.segments[0].memsz == 0x100


def test_linux_image_errors() -> None:
    with pytest.raises(ImageError, match=r"^Image: not an arm64 Image \(no 'ARM\\x64' magic"):
        load_linux_image("Image", bytes(0x100), 0x4000_0000, REGIONS)
    with pytest.raises(ImageError, match="truncated arm64 Image header: the file is 62 bytes"):
        load_linux_image("Image", arm64_image(0, 0x1000)[:62], 0x4000_0000, REGIONS)
    with pytest.raises(ImageError, match="big-endian"):
        load_linux_image("Image", arm64_image(0, 0x1000, flags=1), 0x4000_0000, REGIONS)
    with pytest.raises(
        ImageError, match=r"the Image \(text_offset 0x0\) at 0x40000000 - 0x50000000"
    ):
        load_linux_image("Image", arm64_image(0, 0x1000_0000), 0x4000_0000, REGIONS)


# -- raw -------------------------------------------------------------------------------------


def test_raw() -> None:
    image = load_raw("x.bin", b"\x00\x00\x00\x14", 0x4010_0000, REGIONS)
    assert image == LoadedImage((Segment(0x4010_0000, b"\x00\x00\x00\x14", 4),), 0x4010_0000, "raw")


def test_raw_errors() -> None:
    with pytest.raises(ImageError, match=r"x\.bin: the file is empty"):
        load_raw("x.bin", b"", 0x4000_0000, REGIONS)
    with pytest.raises(
        ImageError, match=r"x\.bin: the raw binary at 0x1000 - 0x1004 is outside RAM"
    ):
        load_raw("x.bin", b"abcd", 0x1000, REGIONS)
    with pytest.raises(ImageError, match="no memory to load it into"):
        load_raw("x.bin", b"abcd", 0x1000, [])


# -- load_image: reading and choosing ----------------------------------------------------------


def test_load_image_picks_by_content(tmp_path: Path) -> None:
    elf = tmp_path / "guest.elf"
    elf.write_bytes(GOOD)
    assert load_image(str(elf), REGIONS, 0x4000_0000, None).kind == "elf"
    kernel = tmp_path / "Image"
    kernel.write_bytes(arm64_image(0x8_0000, 0x1000))
    loaded = load_image(str(kernel), REGIONS, 0x4000_0000, None)
    assert loaded.kind == "image" and loaded.entry == 0x4008_0000
    raw = tmp_path / "guest.bin"
    raw.write_bytes(b"\x1f\x20\x03\xd5")
    assert load_image(str(raw), REGIONS, 0x4000_0000, 0x4000_0000).kind == "raw"


def test_load_image_raw_needs_an_address(tmp_path: Path) -> None:
    raw = tmp_path / "guest.bin"
    raw.write_bytes(b"\x1f\x20\x03\xd5")
    with pytest.raises(ImageError) as info:
        load_image(str(raw), REGIONS, 0x4000_0000, None)
    assert str(info.value) == (
        f"{raw} is neither an ELF nor an arm64 Image; give --load-addr for a raw binary"
    )


def test_load_image_address_for_an_elf_is_refused(tmp_path: Path) -> None:
    elf = tmp_path / "guest.elf"
    elf.write_bytes(GOOD)
    with pytest.raises(ImageError, match="only for raw binaries"):
        load_image(str(elf), REGIONS, 0x4000_0000, 0x4000_0000)


def test_load_image_missing_and_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.elf"
    with pytest.raises(
        ImageError, match=rf"^cannot read image {re.escape(str(missing))}: No such file"
    ):
        load_image(str(missing), REGIONS, 0x4000_0000, None)
    with pytest.raises(
        ImageError, match=rf"^cannot read image {re.escape(str(tmp_path))}: Is a directory"
    ):
        load_image(str(tmp_path), REGIONS, 0x4000_0000, None)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="the file is empty"):
        load_image(str(empty), REGIONS, 0x4000_0000, 0x4000_0000)


def test_load_image_bad_elf_reports_path(tmp_path: Path) -> None:
    elf = tmp_path / "x86.elf"
    elf.write_bytes(build_elf([Seg(0x4000_0000, CODE)], 0x4000_0000, machine=62))
    with pytest.raises(ImageError, match=rf"^{re.escape(str(elf))}: the ELF file is for x86-64"):
        load_image(str(elf), REGIONS, 0x4000_0000, None)


# -- a real ELF --------------------------------------------------------------------------------

START_S = """\
.section .text.boot, "ax"
.global _start
_start:
    movz x0, #0x0008
    movk x0, #0x8400, lsl #16
    hvc #0
1:  b 1b
.data
value: .quad 42
.bss
buffer: .space 256
"""

LINK_LD = """\
ENTRY(_start)
SECTIONS {
  . = 0x40080000;
  .text : { *(.text.boot) *(.text*) }
  .data : { *(.data*) }
  .bss : { *(.bss*) }
}
"""


def zig_available() -> bool:
    try:
        import ziglang  # noqa: F401
    except ImportError:
        return shutil.which("zig") is not None
    return True


@pytest.mark.skipif(not zig_available(), reason="the ziglang package is not installed")
def test_real_elf_from_zig(tmp_path: Path) -> None:
    (tmp_path / "start.S").write_text(START_S)
    (tmp_path / "link.ld").write_text(LINK_LD)
    elf = tmp_path / "x.elf"
    subprocess.run(
        [sys.executable, "-m", "ziglang", "cc", "-target", "aarch64-freestanding-none",
         "-nostdlib", "-T", "link.ld", "start.S", "-o", str(elf)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    image = load_image(str(elf), REGIONS, 0x4000_0000, None)
    assert image.kind == "elf"
    assert image.entry == 0x4008_0000
    text = image.segments[0]
    assert text.addr == 0x4008_0000
    # movz x0, #8 ; movk x0, #0x8400, lsl #16 ; hvc #0 ; b .
    assert text.data[:16] == bytes.fromhex("000180d20080b0f2020000d400000014")
    data = next(s for s in image.segments if s.memsz > len(s.data))
    assert data.data[:8] == (42).to_bytes(8, "little")
    assert data.memsz >= 8 + 256
