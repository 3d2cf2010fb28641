"""Printed tables and summaries."""

from __future__ import annotations

from typing import TextIO

from mmioguard.abi.profiles import Profile
from mmioguard.abi.smccc import KVM_UID, Fid


def print_abi(profile: Profile, out: TextIO) -> None:
    """The vendor hypercalls of ``profile``, from the table the dispatcher uses."""
    out.write(f"profile {profile.name}: {profile.summary}\n")
    out.write(
        f"errors: x0 = {profile.error:#x}; enrollment: "
        f"{'explicit ENROLL call' if profile.explicit_enroll else 'first successful map'}\n"
    )
    out.write(f"{'ID':<12} {'name':<20} {'arguments':<32} result\n")
    rows: list[tuple[int, str, str, str]] = [
        (Fid.VENDOR_HYP_CALL_UID, "VENDOR_HYP_CALL_UID", "",
         "x0..x3 = " + ", ".join(f"{w:#x}" for w in KVM_UID)),
        (Fid.VENDOR_HYP_KVM_FEATURES, "KVM_FEATURES", "",
         f"x0 = {profile.feature_bitmap():#x}"),
    ]
    rows += [(c.fid, c.name, ", ".join(c.args), c.result) for c in profile.calls]
    for fid, name, args, result in rows:
        out.write(f"{fid:#010x}   {name:<20} {args or '-':<32} {result}\n")


class TraceError(Exception):
    """The trace file cannot be read; the message says where."""


def summarize_trace(path: str, out: TextIO) -> None:
    """``mmioguard report``: what a ``--trace`` file says, summed up."""
    import json
    from collections import Counter

    calls: Counter[tuple[str, str]] = Counter()
    aborts: Counter[tuple[int, int]] = Counter()
    audit: Counter[tuple[int, int]] = Counter()
    mapped: set[int] = set()
    # (first seq, call, first IPA, pages, mapped after, call chain)
    timeline: list[tuple[int, str, int, int, int, str]] = []
    stop = None
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                    kind = event["event"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise TraceError(f"{path}:{lineno}: not a trace record ({exc})") from None
                if kind == "hvc":
                    ok = "ok" if event.get("ok", True) else "failed"
                    if "exit" in event:
                        ok = "exit"
                    calls[(event["name"], ok)] += 1
                    name = event["name"]
                    if ok == "ok" and name.endswith(("MAP", "UNMAP", "MMIO_GUARD")):
                        ipa = int(event["args"][0], 16)
                        if name.endswith("UNMAP"):
                            mapped.discard(ipa)
                        else:
                            mapped.add(ipa)
                        chain = " < ".join(c for c in event.get("callers") or [] if c)
                        last = timeline[-1] if timeline else None
                        if (
                            last is not None
                            and last[1] == name
                            and last[5] == chain
                            and last[2] + last[3] * 0x1000 == ipa
                        ):
                            timeline[-1] = (*last[:3], last[3] + 1, len(mapped), chain)
                        else:
                            timeline.append((event["seq"], name, ipa, 1, len(mapped), chain))
                elif kind == "mmio" and str(event.get("verdict", "")).startswith("abort"):
                    aborts[(int(event["pc"], 16), int(event["addr"], 16) & ~0xFFF)] += 1
                elif kind == "mmio" and event.get("verdict") == "audit":
                    audit[(int(event["pc"], 16), int(event["addr"], 16) & ~0xFFF)] += 1
                elif kind == "stop":
                    stop = event
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror}") from None

    out.write("hypercalls (function, result: count)\n")
    for (name, result), count in sorted(calls.items()):
        out.write(f"  {name:<28} {result:<7} {count}\n")
    changes = sum(entry[3] for entry in timeline)
    out.write(
        f"guard mappings over time ({changes} changes, {len(mapped)} mapped at the end; "
        "consecutive pages from one caller on one line)\n"
    )
    for seq, name, ipa, pages, total, chain in timeline[:50]:
        span = f"{ipa:#x}" if pages == 1 else f"{ipa:#x} +{pages} pages"
        via = f"  from {chain}" if chain else ""
        out.write(f"  #{seq:<8} {name:<20} {span:<24} -> {total} mapped{via}\n")
    if len(timeline) > 50:
        out.write(f"  ... {len(timeline) - 50} more\n")
    out.write("aborted device accesses (PC, granule: count)\n")
    for (pc, granule), count in sorted(aborts.items()):
        out.write(f"  {pc:#x}  {granule:#x}  {count}\n")
    if audit:
        out.write("audit: accesses that enforcement would abort (PC, granule: count)\n")
        for (pc, granule), count in sorted(audit.items()):
            out.write(f"  {pc:#x}  {granule:#x}  {count}\n")
    if stop is not None:
        out.write(f"stop: status {stop.get('status')}, {stop.get('reason')}\n")
