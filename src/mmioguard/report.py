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
