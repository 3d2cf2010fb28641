"""The ``--trace`` file: one JSON object per line per event."""

from __future__ import annotations

import json
from typing import TextIO

# Fields that hold addresses, IDs or register values: written in hex, as a guest developer
# reads them in a disassembly or a datasheet.
_HEX = frozenset(
    {"pc", "addr", "far", "elr", "esr", "spsr", "vector", "fid", "value", "insn", "ipa",
     "granule", "entry", "dtb"}
)


def _hex(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, list):
            return [_hex(v) for v in value]
        return value
    return f"{value:#x}"


class JsonlTracer:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.seq = 0

    def emit(self, event: str, fields: dict[str, object]) -> None:
        record: dict[str, object] = {"seq": self.seq, "event": event}
        for key, value in fields.items():
            if value is None:
                continue
            record[key] = _hex(value) if key in _HEX or key in ("args", "result") else value
        self.seq += 1
        self._out.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._out.close()
