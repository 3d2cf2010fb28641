from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import asmguest
from mmioguard.hyp.config import VmConfig
from mmioguard.vmm.virt import MachineOptions, Outcome, VirtMachine


class ListTracer:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def emit(self, event: str, fields: dict[str, object]) -> None:
        self.events.append({"event": event, **fields})

    def of(self, kind: str) -> list[dict[str, object]]:
        return [e for e in self.events if e["event"] == kind]


@dataclass
class Run:
    outcome: Outcome
    machine: VirtMachine
    output: bytes
    trace: ListTracer
    warnings: list[str] = field(default_factory=list)

    def x(self, n: int) -> int:
        return self.machine.backends[0].gprs()[n]


@pytest.fixture(scope="session")
def asm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("asmguests")


@pytest.fixture(params=["native", "python"])
def run_asm(asm_cache: Path, request: pytest.FixtureRequest) -> Callable[..., Run]:
    """Runs an assembly guest with the native fast path and with pure Python: every guest
    test is also a differential test of the two."""
    native = request.param == "native"

    def run(body: str, **config: object) -> Run:
        elf = asmguest.build(body, asm_cache)
        return run_image(str(elf), native=native, **config)

    return run


def run_image(
    image: str,
    max_insns: int | None = None,
    no_reboot: bool = False,
    native: bool = True,
    traced: bool = True,
    **config: object,
) -> Run:
    """``traced=False`` runs the production path: the fast paths (C and Python) are only
    taken without a tracer (``Run.trace`` then stays empty)."""
    out = bytearray()
    warnings: list[str] = []
    tracer = ListTracer()
    options = MachineOptions(
        image=image,
        vm=VmConfig(**config),  # type: ignore[arg-type]
        max_insns=max_insns,
        no_reboot=no_reboot,
        native=native,
    )
    machine = VirtMachine(options, out.extend, warnings.append, tracer if traced else None)
    outcome = machine.run()
    return Run(outcome, machine, bytes(out), tracer, warnings)
