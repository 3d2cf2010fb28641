"""Guest image loaders: ELF64 AArch64, arm64 Linux `Image`, and raw binaries.

Loading only decides what goes where; copying into guest memory is the caller's job. Every
rejection is an `ImageError` whose message is one line naming the file and, where it applies, the
offset or segment and the addresses involved, because it is what the user sees (exit status 2).
Only `struct` is used to read ELF: no third-party parser.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise
from typing import Literal

Region = tuple[int, int, str]
"""A memory slot an image may be loaded into: (base, size, name)."""

ImageKind = Literal["elf", "image", "raw"]

ELF_MAGIC = b"\x7fELF"
ARM64_IMAGE_MAGIC = b"ARM\x64"
ARM64_IMAGE_MAGIC_OFFSET = 0x38
ARM64_IMAGE_HEADER_SIZE = 64
# Documentation/arch/arm64/booting.rst: an image_size of 0 means a kernel older than 3.17,
# which expects text_offset 0x80000 whatever its header says.
ARM64_LEGACY_TEXT_OFFSET = 0x80000
ARM64_IMAGE_FLAG_BE = 1 << 0

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_ARM64_HEADER = struct.Struct("<IIQQQQQQII")

EI_CLASS = 4
EI_DATA = 5
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2
PT_LOAD = 1
PN_XNUM = 0xFFFF


class ElfType(IntEnum):
    NONE = 0
    REL = 1
    EXEC = 2
    DYN = 3
    CORE = 4


EM_AARCH64 = 183

# e_machine values worth naming when someone hands over the wrong build.
_MACHINE_NAMES: tuple[tuple[int, str], ...] = (
    (0, "no machine (EM_NONE)"),
    (2, "SPARC"),
    (3, "x86 (i386)"),
    (8, "MIPS"),
    (20, "PowerPC"),
    (21, "PowerPC64"),
    (22, "S/390"),
    (40, "ARM (32-bit)"),
    (42, "SuperH"),
    (43, "SPARC V9"),
    (50, "IA-64"),
    (62, "x86-64"),
    (243, "RISC-V"),
    (247, "BPF"),
    (258, "LoongArch"),
)


class ImageError(Exception):
    """An image cannot be loaded; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Segment:
    """Bytes to place at guest-physical `addr`; memory from len(data) up to memsz is zeroed."""

    addr: int
    data: bytes
    memsz: int

    @property
    def end(self) -> int:
        return self.addr + self.memsz


@dataclass(frozen=True)
class LoadedImage:
    segments: tuple[Segment, ...]
    entry: int
    kind: ImageKind


def machine_name(e_machine: int) -> str:
    """A readable name for an ELF e_machine value."""
    for number, name in _MACHINE_NAMES:
        if number == e_machine:
            return name
    return f"machine {e_machine}"


def _elf_type_name(e_type: int) -> str:
    if e_type == ElfType.NONE:
        return "an ELF file of no type (ET_NONE)"
    if e_type == ElfType.REL:
        return "a relocatable object file (ET_REL), not an executable"
    if e_type == ElfType.CORE:
        return "a core dump (ET_CORE)"
    return f"an ELF file of type {e_type:#x}"


def _span(start: int, end: int) -> str:
    return f"{start:#x} - {end:#x}"


def _check_placement(
    path: str, what: str, start: int, size: int, regions: Sequence[Region]
) -> None:
    """Raise unless [start, start + size) lies wholly inside one region."""
    end = start + size
    for base, length, _ in regions:
        if base <= start and end <= base + length:
            return
    for base, length, name in regions:
        if base <= start < base + length:
            raise ImageError(
                f"{path}: {what} at {_span(start, end)} runs past the end of {name} "
                f"({_span(base, base + length)})"
            )
    if not regions:
        raise ImageError(f"{path}: {what} at {_span(start, end)}: no memory to load it into")
    slots = ", ".join(f"{name} ({_span(base, base + length)})" for base, length, name in regions)
    raise ImageError(f"{path}: {what} at {_span(start, end)} is outside {slots}")


@dataclass(frozen=True)
class _ProgramHeader:
    index: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int


def load_elf(path: str, data: bytes, regions: Sequence[Region]) -> LoadedImage:
    """Load an ELF64 little-endian AArch64 executable at its program headers' physical addresses.

    The entry point is e_entry, translated from virtual to physical through the segment that
    holds it (the MMU is off at entry).
    """
    if len(data) < len(ELF_MAGIC) or data[:4] != ELF_MAGIC:
        raise ImageError(f"{path}: not an ELF file (starts with {data[:4].hex() or 'nothing'})")
    if len(data) <= EI_DATA:
        raise ImageError(f"{path}: truncated ELF header ({len(data)} bytes)")
    elf_class = data[EI_CLASS]
    if elf_class != ELFCLASS64:
        what = (
            "a 32-bit ELF file (ELFCLASS32)"
            if elf_class == ELFCLASS32
            else f"an ELF file of unknown class {elf_class}"
        )
        raise ImageError(f"{path}: {what}, not ELFCLASS64; build it for AArch64")
    if data[EI_DATA] != ELFDATA2LSB:
        order = "big-endian" if data[EI_DATA] == ELFDATA2MSB else f"data encoding {data[EI_DATA]}"
        raise ImageError(f"{path}: the ELF file is {order}; only little-endian is supported")
    if len(data) < _EHDR.size:
        raise ImageError(
            f"{path}: truncated ELF header: the file is {len(data)} bytes, "
            f"an ELF64 header needs {_EHDR.size}"
        )
    (_, e_type, e_machine, _, e_entry, e_phoff, _, _, _, e_phentsize, e_phnum, _, _, _) = (
        _EHDR.unpack_from(data)
    )
    if e_machine != EM_AARCH64:
        raise ImageError(
            f"{path}: the ELF file is for {machine_name(e_machine)}, not AArch64 "
            f"(e_machine {e_machine}, expected {EM_AARCH64})"
        )
    if e_type not in (ElfType.EXEC, ElfType.DYN):
        raise ImageError(f"{path}: {_elf_type_name(e_type)}; give a linked executable")
    headers = _program_headers(path, data, e_phoff, e_phentsize, e_phnum)
    loads = [ph for ph in headers if ph.memsz > 0]
    if not loads:
        raise ImageError(f"{path}: the ELF file has no PT_LOAD segments (nothing to load)")

    segments: list[Segment] = []
    for ph in loads:
        what = f"segment {ph.index}"
        file_end = ph.offset + ph.filesz
        if file_end > len(data):
            raise ImageError(
                f"{path}: {what}: file range {_span(ph.offset, file_end)} runs past the end of "
                f"the file ({len(data):#x} bytes); the file is truncated"
            )
        if ph.filesz > ph.memsz:
            raise ImageError(
                f"{path}: {what}: file size {ph.filesz:#x} is larger than its memory size "
                f"{ph.memsz:#x}"
            )
        _check_placement(path, what, ph.paddr, ph.memsz, regions)
        segments.append(Segment(ph.paddr, bytes(data[ph.offset : file_end]), ph.memsz))

    by_address = sorted(zip(loads, segments, strict=True), key=lambda pair: pair[1].addr)
    for (ph_a, seg_a), (ph_b, seg_b) in pairwise(by_address):
        if seg_b.addr < seg_a.end:
            raise ImageError(
                f"{path}: segments {ph_a.index} ({_span(seg_a.addr, seg_a.end)}) and "
                f"{ph_b.index} ({_span(seg_b.addr, seg_b.end)}) overlap"
            )

    entry = _physical_entry(loads, e_entry)
    if entry is None:
        raise ImageError(f"{path}: entry point {e_entry:#x} is not inside any loaded segment")
    return LoadedImage(tuple(segments), entry, "elf")


def _program_headers(
    path: str, data: bytes, phoff: int, phentsize: int, phnum: int
) -> list[_ProgramHeader]:
    if phnum == PN_XNUM:
        raise ImageError(f"{path}: more than {PN_XNUM - 1} program headers are not supported")
    if phnum and phentsize < _PHDR.size:
        raise ImageError(
            f"{path}: program header entries of {phentsize} bytes are too small "
            f"(ELF64 needs {_PHDR.size})"
        )
    table_end = phoff + phnum * phentsize
    if table_end > len(data):
        raise ImageError(
            f"{path}: program header table at {_span(phoff, table_end)} ({phnum} entries) runs "
            f"past the end of the file ({len(data):#x} bytes); the file is truncated"
        )
    headers = []
    for index in range(phnum):
        p_type, _, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _ = _PHDR.unpack_from(
            data, phoff + index * phentsize
        )
        if p_type == PT_LOAD:
            headers.append(_ProgramHeader(index, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz))
    return headers


def _physical_entry(loads: Sequence[_ProgramHeader], e_entry: int) -> int | None:
    # e_entry is virtual; with the MMU off the CPU starts at the matching physical address.
    for ph in loads:
        if ph.vaddr <= e_entry < ph.vaddr + ph.memsz:
            return ph.paddr + (e_entry - ph.vaddr)
    # Some linker scripts give a physical entry even though the segments run at other VAs.
    for ph in loads:
        if ph.paddr <= e_entry < ph.paddr + ph.memsz:
            return e_entry
    return None


def is_arm64_image(data: bytes) -> bool:
    end = ARM64_IMAGE_MAGIC_OFFSET + len(ARM64_IMAGE_MAGIC)
    return data[ARM64_IMAGE_MAGIC_OFFSET:end] == ARM64_IMAGE_MAGIC


def load_linux_image(
    path: str, data: bytes, ram_base: int, regions: Sequence[Region]
) -> LoadedImage:
    """Load an arm64 Linux `Image` at ram_base + text_offset (booting.rst); entry is its start."""
    if is_arm64_image(data) and len(data) < ARM64_IMAGE_HEADER_SIZE:
        raise ImageError(
            f"{path}: truncated arm64 Image header: the file is {len(data)} bytes, "
            f"the header needs {ARM64_IMAGE_HEADER_SIZE}"
        )
    if not is_arm64_image(data):
        raise ImageError(
            f"{path}: not an arm64 Image (no 'ARM\\x64' magic at offset "
            f"{ARM64_IMAGE_MAGIC_OFFSET:#x})"
        )
    _, _, text_offset, image_size, flags, _, _, _, _, _ = _ARM64_HEADER.unpack_from(data)
    if image_size == 0:
        text_offset = ARM64_LEGACY_TEXT_OFFSET
    if flags & ARM64_IMAGE_FLAG_BE:
        raise ImageError(f"{path}: the arm64 Image is big-endian (flags {flags:#x} at offset 0x18)")
    addr = ram_base + text_offset
    # image_size covers the kernel's BSS too: that memory must exist even though the file ends.
    memsz = max(image_size, len(data))
    _check_placement(path, f"the Image (text_offset {text_offset:#x})", addr, memsz, regions)
    return LoadedImage((Segment(addr, bytes(data), memsz),), addr, "image")


def load_raw(path: str, data: bytes, addr: int, regions: Sequence[Region]) -> LoadedImage:
    """Load a raw binary at `addr` and start it there."""
    if not data:
        raise ImageError(f"{path}: the file is empty")
    _check_placement(path, "the raw binary", addr, len(data), regions)
    return LoadedImage((Segment(addr, bytes(data), len(data)),), addr, "raw")


def load_image(
    path: str, regions: Sequence[Region], ram_base: int, load_addr: int | None
) -> LoadedImage:
    """Read `path` and load it as ELF, arm64 Image or (with `load_addr`) raw binary."""
    try:
        with open(path, "rb") as image:
            data = image.read()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ImageError(f"cannot read image {path}: {reason}") from error
    if not data:
        raise ImageError(f"{path}: the file is empty")
    if data[:4] == ELF_MAGIC:
        kind = "an ELF file"
    elif is_arm64_image(data):
        kind = "an arm64 Image"
    elif load_addr is not None:
        return load_raw(path, data, load_addr, regions)
    else:
        raise ImageError(
            f"{path} is neither an ELF nor an arm64 Image; give --load-addr for a raw binary"
        )
    if load_addr is not None:
        raise ImageError(
            f"{path} is {kind}, which says where it loads; --load-addr is only for raw binaries"
        )
    if kind == "an ELF file":
        return load_elf(path, data, regions)
    return load_linux_image(path, data, ram_base, regions)
