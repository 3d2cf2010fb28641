"""Guest symbols for reports and traces: a kernel's System.map or an ELF image's symbol table.

The trace names the function behind each hypercall (``pkvm_init_hyp_services+0x4c``), which is
what a kernel developer needs to see which driver asked to map what.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from pathlib import Path

# System.map types that name code: text, weak, and local text.
_CODE_TYPES = frozenset("tTwW")
# Beyond this distance from the nearest symbol an address is not attributed to it.
MAX_SYMBOL_SPAN = 1 << 20

_ELF_MAGIC = b"\x7fELF"
_SHT_SYMTAB = 2
_STT_FUNC = 2


class SymbolError(Exception):
    """The symbol file cannot be read or parsed."""


class Symbols:
    """Sorted code symbols; :meth:`describe` turns an address into ``name+0xoffset``."""

    def __init__(self, entries: list[tuple[int, str]]) -> None:
        entries = sorted(set(entries))
        self._addrs = [a for a, _ in entries]
        self._names = [n for _, n in entries]

    def __len__(self) -> int:
        return len(self._addrs)

    def address(self, name: str) -> int | None:
        """Where ``name`` is (the first of that name), or None."""
        try:
            return self._addrs[self._names.index(name)]
        except ValueError:
            return None

    def describe(self, addr: int) -> str | None:
        i = bisect_right(self._addrs, addr) - 1
        if i < 0 or addr - self._addrs[i] > MAX_SYMBOL_SPAN:
            return None
        offset = addr - self._addrs[i]
        return self._names[i] if offset == 0 else f"{self._names[i]}+{offset:#x}"

    @classmethod
    def lazy(cls, path: str | Path) -> LazySymbols:
        """Symbols read at their first use (a run that names nothing does not parse them);
        the file is checked for readability now."""
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise SymbolError(f"cannot read symbols from {path}: {exc.strerror}") from exc
        return LazySymbols(path)

    @classmethod
    def load(cls, path: str | Path) -> Symbols:
        """A System.map (``ADDR TYPE NAME`` lines) or an ELF64 file with a symbol table."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SymbolError(f"cannot read symbols from {path}: {exc.strerror}") from exc
        if data.startswith(_ELF_MAGIC):
            return cls(_elf_symbols(data, str(path)))
        return cls(_system_map(data, str(path)))


def _system_map(data: bytes, where: str) -> list[tuple[int, str]]:
    entries: list[tuple[int, str]] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 3:
            raise SymbolError(f"{where}:{number}: not a System.map line: {line.strip()!r}")
        try:
            addr = int(fields[0], 16)
        except ValueError:
            raise SymbolError(f"{where}:{number}: bad address {fields[0]!r}") from None
        if fields[1] in _CODE_TYPES:
            entries.append((addr, fields[2]))
    if not entries:
        raise SymbolError(f"{where}: no code symbols (is it a System.map?)")
    return entries


def _elf_symbols(data: bytes, where: str) -> list[tuple[int, str]]:
    try:
        if data[4] != 2 or data[5] != 1:
            raise SymbolError(f"{where}: only little-endian ELF64 symbol tables are read")
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = [
            struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
        ]
        entries: list[tuple[int, str]] = []
        for sh in sections:
            if sh[1] != _SHT_SYMTAB:
                continue
            offset, size, link, entsize = sh[4], sh[5], sh[6], sh[9] or 24
            strtab = sections[link]
            str_off = strtab[4]
            for pos in range(offset, offset + size, entsize):
                name_off, info, _other, _shndx, value, _size = struct.unpack_from(
                    "<IBBHQQ", data, pos
                )
                if info & 0xF != _STT_FUNC or not value:
                    continue
                end = data.index(b"\0", str_off + name_off)
                entries.append((value, data[str_off + name_off:end].decode("utf-8", "replace")))
        return entries
    except (struct.error, IndexError, ValueError) as exc:
        raise SymbolError(f"{where}: malformed ELF file ({exc})") from None


class LazySymbols:
    """:class:`Symbols` parsed on the first :meth:`describe`; a bad file then names nothing."""

    def __init__(self, path: str | Path) -> None:
        self._path = path
        self._symbols: Symbols | None = None
        self.error: str | None = None

    def describe(self, addr: int) -> str | None:
        symbols = self._symbols
        if symbols is None:
            if self.error is not None:
                return None
            try:
                symbols = self._symbols = Symbols.load(self._path)
            except SymbolError as exc:
                self.error = str(exc)
                return None
        return symbols.describe(addr)
