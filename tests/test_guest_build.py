"""Tests of the guest build (mmioguard.guests.build): no emulator needed."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmioguard.guests import build
from mmioguard.guests.build import GuestBuildError, build_guest, guest_names

LOAD_ADDR = 0x40080000
RAM_BASE = 0x40000000
IMAGE_LIMIT = RAM_BASE + 64 * 1024 * 1024
EM_AARCH64 = 183
ET_EXEC = 2
PT_LOAD = 1
SHT_SYMTAB = 2

BUNDLED = ("example", "guardunit", "sanity")


# --- a minimal ELF64 reader -------------------------------------------------


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    addr: int
    offset: int
    size: int
    link: int


@dataclass(frozen=True)
class Elf:
    data: bytes
    machine: int
    type: int
    entry: int
    segments: list[tuple[int, int, int, int, int]]  # type, offset, paddr, filesz, memsz
    sections: list[Section]

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def symbols(self) -> dict[str, tuple[int, int]]:
        """name -> (value, size) for every named symbol."""
        symtab = next(s for s in self.sections if s.type == SHT_SYMTAB)
        strtab = self.sections[symtab.link]
        result = {}
        for off in range(symtab.offset, symtab.offset + symtab.size, 24):
            st_name, _info, _other, _shndx, value, size = struct.unpack_from(
                "<IBBHQQ", self.data, off
            )
            start = strtab.offset + st_name
            name = self.data[start : self.data.index(b"\0", start)].decode()
            if name and not name.startswith("$"):
                result[name] = (value, size)
        return result


def read_elf(path: Path) -> Elf:
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2, "not ELFCLASS64"
    assert data[5] == 1, "not little-endian"
    (
        e_type,
        e_machine,
        _version,
        e_entry,
        e_phoff,
        e_shoff,
        _flags,
        _ehsize,
        e_phentsize,
        e_phnum,
        e_shentsize,
        e_shnum,
        e_shstrndx,
    ) = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
    segments = []
    for i in range(e_phnum):
        p_type, _pflags, p_offset, _vaddr, p_paddr, p_filesz, p_memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, e_phoff + i * e_phentsize
        )
        segments.append((p_type, p_offset, p_paddr, p_filesz, p_memsz))
    raw = []
    for i in range(e_shnum):
        sh_name, sh_type, _f, sh_addr, sh_offset, sh_size, sh_link = struct.unpack_from(
            "<IIQQQQI", data, e_shoff + i * e_shentsize
        )
        raw.append((sh_name, sh_type, sh_addr, sh_offset, sh_size, sh_link))
    names_off = raw[e_shstrndx][3]
    sections = [
        Section(data[names_off + n : data.index(b"\0", names_off + n)].decode(), t, a, o, s, lk)
        for n, t, a, o, s, lk in raw
    ]
    return Elf(data, e_machine, e_type, e_entry, segments, sections)


# --- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="session")
def zig_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zig-cache")


@pytest.fixture(autouse=True)
def _shared_zig_cache(zig_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One zig object cache for the session, whatever cache_dir a test uses."""
    monkeypatch.setenv("ZIG_GLOBAL_CACHE_DIR", str(zig_cache))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guest-cache")


@pytest.fixture(scope="session")
def built(shared_cache: Path) -> dict[str, Path]:
    return {name: build_guest(name, cache_dir=shared_cache) for name in BUNDLED}


@pytest.fixture
def compiler_runs(monkeypatch: pytest.MonkeyPatch) -> list[Sequence[str]]:
    """Record every compiler invocation made by build_guest."""
    runs: list[Sequence[str]] = []
    real: Callable[[Sequence[str], Path, Mapping[str, str]], subprocess.CompletedProcess[str]] = (
        build._run_compiler
    )

    def counting(
        argv: Sequence[str], cwd: Path, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        runs.append(argv)
        return real(argv, cwd, env)

    monkeypatch.setattr(build, "_run_compiler", counting)
    return runs


@pytest.fixture
def scratch_guests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private guests directory: a copy of the SDK and a trivial guest 'tiny'."""
    root = tmp_path / "guests"
    shutil.copytree(build.GUESTS_DIR / "sdk", root / "sdk")
    (root / "tiny").mkdir()
    (root / "tiny" / "main.c").write_text(
        '#include "guest.h"\n\nint main(u64 dtb)\n{\n\tputs("tiny");\n\treturn 0;\n}\n'
    )
    monkeypatch.setattr(build, "GUESTS_DIR", root)
    return root


# --- tests ------------------------------------------------------------------


def test_guest_names_lists_the_bundled_guests() -> None:
    names = guest_names()
    assert set(BUNDLED) <= set(names)
    assert "sdk" not in names
    assert names == sorted(names)


@pytest.mark.parametrize("name", BUNDLED)
def test_elf_header_and_layout(built: dict[str, Path], name: str) -> None:
    path = built[name]
    assert path.name == f"{name}.elf"
    elf = read_elf(path)
    assert elf.machine == EM_AARCH64
    assert elf.type == ET_EXEC
    assert elf.entry == LOAD_ADDR
    loads = [s for s in elf.segments if s[0] == PT_LOAD]
    assert loads
    assert min(s[2] for s in loads) == LOAD_ADDR
    assert max(s[2] + s[4] for s in loads) <= IMAGE_LIMIT
    symbols = elf.symbols()
    assert symbols["_start"][0] == LOAD_ADDR
    assert symbols["main"][0] > LOAD_ADDR
    assert symbols["vectors"][0] % 0x800 == 0
    for needed in ("secondary_entry", "handle_exception", "run_at_el0", "guard_init", "ioremap"):
        assert needed in symbols, needed
    # Stacks for 8 CPUs, 16 KiB each, and the tables live in the image.
    assert symbols["__stacks_end"][0] - symbols["__stacks_start"][0] == 8 * 16 * 1024
    assert symbols["__text_end"][0] % 0x10000 == 0


# Registers of the FP/SIMD file as capstone prints them (q0, d1, s2, h3, b4, v5).
_FP_REG = re.compile(r"(?<![\w#])[qdshbv](?:[12]?[0-9]|3[01])\b")


@pytest.mark.parametrize("name", BUNDLED)
def test_no_fp_simd_outside_the_nisv_helpers(built: dict[str, Path], name: str) -> None:
    capstone = pytest.importorskip("capstone")
    elf = read_elf(built[name])
    text = elf.section(".text")
    code = elf.data[text.offset : text.offset + text.size]
    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    md.skipdata = True  # literal pools sit between functions
    # The pattern does see FP/SIMD operands: fmov s0, w1 and ldp q0, q1, [sp].
    for word in (0x1E270020, 0xAD4007E0):
        (insn,) = md.disasm(word.to_bytes(4, "little"), 0)
        assert _FP_REG.search(insn.op_str), insn.op_str
    allowed = [
        (value, value + size)
        for sym, (value, size) in elf.symbols().items()
        if sym.startswith(("nisv_", "fpsimd_"))
    ]
    offenders = [
        f"{insn.address:#x}: {insn.mnemonic} {insn.op_str}"
        for insn in md.disasm(code, text.addr)
        if _FP_REG.search(insn.op_str) and not any(lo <= insn.address < hi for lo, hi in allowed)
    ]
    assert not offenders, "FP/SIMD register use in guest code:\n" + "\n".join(offenders[:20])


def test_second_build_does_not_compile(tmp_path: Path, compiler_runs: list[Sequence[str]]) -> None:
    first = build_guest("example", cache_dir=tmp_path)
    assert len(compiler_runs) == 1
    mtime = first.stat().st_mtime_ns
    second = build_guest("example", cache_dir=tmp_path)
    assert second == first
    assert len(compiler_runs) == 1
    assert second.stat().st_mtime_ns == mtime
    assert first.parent.parent == tmp_path
    assert re.fullmatch(r"[0-9a-f]{64}", first.parent.name)
    # Only the image is left behind: no temporary build directories.
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.parent.name]


def test_defines_change_the_key(tmp_path: Path, compiler_runs: list[Sequence[str]]) -> None:
    plain = build_guest("example", cache_dir=tmp_path)
    page16 = build_guest("example", defines={"PAGE_SIZE": 16384}, cache_dir=tmp_path)
    again = build_guest("example", defines={"PAGE_SIZE": "16384"}, cache_dir=tmp_path)
    assert plain != page16
    assert again == page16
    assert len(compiler_runs) == 2
    assert "-DPAGE_SIZE=16384" in compiler_runs[1]


def test_source_change_rebuilds(
    scratch_guests: Path, tmp_path: Path, compiler_runs: list[Sequence[str]]
) -> None:
    cache = tmp_path / "cache"
    first = build_guest("tiny", cache_dir=cache)
    header = scratch_guests / "sdk" / "types.h"
    header.write_text(header.read_text() + "\n/* changed */\n")
    second = build_guest("tiny", cache_dir=cache)
    assert second != first
    assert len(compiler_runs) == 2
    assert first.is_file() and second.is_file()


def test_broken_source_raises_with_compiler_message(scratch_guests: Path, tmp_path: Path) -> None:
    (scratch_guests / "tiny" / "main.c").write_text(
        '#include "guest.h"\n\nint main(u64 dtb)\n{\n\treturn undefined_thing;\n}\n'
    )
    with pytest.raises(GuestBuildError) as info:
        build_guest("tiny", cache_dir=tmp_path / "cache")
    assert "undefined_thing" in info.value.stderr
    assert "main.c" in info.value.stderr
    assert "error" in str(info.value)
    # Nothing was cached.
    assert not list((tmp_path / "cache").glob("*/tiny.elf"))


def test_link_error_raises(scratch_guests: Path, tmp_path: Path) -> None:
    (scratch_guests / "tiny" / "main.c").write_text(
        '#include "guest.h"\n\nvoid nowhere(void);\n\n'
        "int main(u64 dtb)\n{\n\tnowhere();\n\treturn 0;\n}\n"
    )
    with pytest.raises(GuestBuildError) as info:
        build_guest("tiny", cache_dir=tmp_path / "cache")
    assert "nowhere" in info.value.stderr


def test_unknown_guest_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(GuestBuildError, match="unknown guest"):
        build_guest("no-such-guest", cache_dir=tmp_path)
    for bad in ("sdk", "../example", "", "a/b"):
        with pytest.raises(GuestBuildError):
            build_guest(bad, cache_dir=tmp_path)
    with pytest.raises(GuestBuildError, match="macro"):
        build_guest("example", defines={"1BAD": 1}, cache_dir=tmp_path)
    with pytest.raises(GuestBuildError, match="single line"):
        build_guest("example", defines={"X": "1\n#error"}, cache_dir=tmp_path)


def test_parallel_builds_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = list(pool.map(lambda _: build_guest("sanity", cache_dir=tmp_path), range(4)))
    assert len(set(paths)) == 1
    assert read_elf(paths[0]).entry == LOAD_ADDR
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build-")]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MMIOGUARD_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MMIOGUARD_CACHE_DIR")
    assert build.default_cache_dir() == tmp_path / "xdg" / "mmioguard" / "guests"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert build.default_cache_dir() == tmp_path / "home" / ".cache" / "mmioguard" / "guests"


def test_zig_cache_defaults_to_ours(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, compiler_runs: list[Sequence[str]]
) -> None:
    monkeypatch.delenv("ZIG_GLOBAL_CACHE_DIR")
    build_guest("example", cache_dir=tmp_path)
    assert (tmp_path / "zig").is_dir()


def test_env_cache_dir_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, compiler_runs: list[Sequence[str]]
) -> None:
    monkeypatch.setenv("MMIOGUARD_CACHE_DIR", str(tmp_path))
    path = build_guest("example")
    assert path.is_relative_to(tmp_path)
    assert os.access(path, os.R_OK)
