"""The command line contract: exit statuses, one-line errors, stdout is the guest's UART."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def mmioguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmioguard.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_runs_the_example_and_traces(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    done = mmioguard("demo", "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    assert "MMIO guard enrolled, granule 4096 bytes" in done.stdout
    assert "ESR_EL1=0x96000010 FAR_EL1=0x09010000" in done.stdout
    assert "destination register unchanged" in done.stdout
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    names = [e["name"] for e in events if e["event"] == "hvc"]
    assert "MMIO_GUARD_ENROLL" in names and "MMIO_GUARD_MAP" in names
    aborts = [e for e in events if e["event"] == "exception" and e["why"] == "guard abort"]
    assert aborts and aborts[0]["far"] == "0x9010000"
    assert events[-1]["event"] == "stop" and events[-1]["status"] == 0


def test_abi_table() -> None:
    done = mmioguard("abi", "--profile", "kvm-v2")
    assert done.returncode == 0
    assert "0xc6000004" in done.stdout and "MMIO_GUARD_MAP" in done.stdout


def _elf_for(machine: int, path: Path) -> Path:
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5], header[6] = 2, 1, 1
    header[16:18] = (2).to_bytes(2, "little")
    header[18:20] = machine.to_bytes(2, "little")
    path.write_bytes(bytes(header))
    return path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "MISSING"], "cannot read image"),
        (["run", "GUEST_TEXT"], "neither an ELF"),
        (["run", "GUEST_X86"], "x86-64"),
        (["run", "GUEST_TEXT", "--memory", "12Q"], "is not a size"),
        (["run", "GUEST_TEXT", "--memory", "1M"], "--memory must be"),
        (["run", "GUEST_TEXT", "--granule", "8k"], "invalid choice"),
        (["run", "GUEST_TEXT", "--smp", "9"], "--smp must be 1 to 8"),
        (["run", "GUEST_TEXT", "--ipa-bits", "20"], "--ipa-bits must be"),
        (["run", "GUEST_TEXT", "--max-insns", "0"], "must be a positive"),
        (["run", "GUEST_TEXT", "--timeout", "x"], "is not a number"),
        (["run"], "required"),
        (["run", "GUEST_TEXT", "--icount", "11"], "--icount must be 0 to 10"),
        (["run", "GUEST_TEXT", "--icount", "x"], "is not a number"),
        (["run", "GUEST_TEXT", "--symbols", "MISSING"], "cannot read symbols"),
        (["run", "GUEST_TEXT", "--symbols", "GUEST_TEXT", "--trace", "T"], "not a System.map"),
        (["run", "GUEST_TEXT", "--profile", "kvm-v3"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    text = tmp_path / "guest.txt"
    text.write_text("hello")
    x86 = _elf_for(62, tmp_path / "x86.elf")
    names = {"GUEST_TEXT": str(text), "GUEST_X86": str(x86), "MISSING": str(tmp_path / "no.elf"),
             "T": str(tmp_path / "t.jsonl")}
    args = [names.get(a, a) for a in args]
    done = mmioguard(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0]
    assert "Traceback" not in done.stderr


def test_report_summarizes_a_trace(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    assert mmioguard("demo", "--trace", str(trace)).returncode == 0
    done = mmioguard("report", str(trace))
    assert done.returncode == 0, done.stderr
    assert "MMIO_GUARD_MAP" in done.stdout
    mapping = next(line for line in done.stdout.splitlines() if "MMIO_GUARD_MAP" in line
                   and "->" in line)
    assert "0x9000000" in mapping and "-> 1 mapped" in mapping
    # An ELF guest names its own functions: the call chain of the MAP, from frame records.
    assert "from main+0x" in mapping and "_start+0x" in mapping
    assert "0x9010000" in done.stdout  # the aborted granule
    assert "stop: status 0" in done.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    done = mmioguard("report", str(bad))
    assert done.returncode == 2 and "bad.jsonl:1" in done.stderr


def test_audit_mode_lists_missing_maps(tmp_path: Path) -> None:
    from mmioguard.guests.build import build_guest

    done = mmioguard("run", str(build_guest("example")), "--guard", "audit")
    assert done.returncode == 0, done.stderr
    assert "was not aborted" in done.stdout  # audit lets the access through
    lines = [line for line in done.stderr.splitlines() if "audit:" in line]
    assert lines == [
        "mmioguard: audit: unmapped granule 0x9010000 (pl031 + 0x0): first PC "
        + lines[0].split("first PC ")[1].split(",")[0]
        + ", 1 access(es); the guest is missing a MAP of it"
    ]


def test_bad_image_leaves_no_trace_file(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    done = mmioguard("run", str(tmp_path / "missing.elf"), "--trace", str(trace))
    assert done.returncode == 2
    assert not trace.exists()
