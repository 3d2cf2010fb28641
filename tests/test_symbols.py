"""Guest symbols: System.map and ELF symbol tables, and address -> function+offset."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioguard.guests.build import build_guest
from mmioguard.vmm.symbols import MAX_SYMBOL_SPAN, SymbolError, Symbols

SYSTEM_MAP = """\
ffff800080000000 T _text
ffff800080010000 T _stext
ffff800080010400 t el1h_64_sync
ffff800080200000 D some_data
ffff800080300000 W weak_fn
"""


def test_system_map(tmp_path: Path) -> None:
    path = tmp_path / "System.map"
    path.write_text(SYSTEM_MAP)
    symbols = Symbols.load(path)
    assert len(symbols) == 4  # data symbols do not name code
    assert symbols.describe(0xFFFF800080010400) == "el1h_64_sync"
    assert symbols.describe(0xFFFF800080010464) == "el1h_64_sync+0x64"
    assert symbols.describe(0xFFFF800080200010) is None  # data, over 1 MiB from any code
    assert symbols.describe(0xFFFF800080300000 + MAX_SYMBOL_SPAN + 1) is None
    assert symbols.describe(0x1000) is None


def test_bad_symbol_files(tmp_path: Path) -> None:
    with pytest.raises(SymbolError, match="cannot read"):
        Symbols.load(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_text("hello\n")
    with pytest.raises(SymbolError, match=r"bad:1: not a System.map line"):
        Symbols.load(bad)
    data_only = tmp_path / "data"
    data_only.write_text("ffff800080200000 D some_data\n")
    with pytest.raises(SymbolError, match="no code symbols"):
        Symbols.load(data_only)
    lazy = Symbols.lazy(bad)
    assert lazy.describe(0x1000) is None and lazy.error is not None


def test_elf_symbols_of_a_guest() -> None:
    elf = build_guest("example")
    symbols = Symbols.load(elf)
    assert len(symbols) > 10
    names = {symbols.describe(a) for a in symbols._addrs}
    assert "main" in names and "_start" in names
