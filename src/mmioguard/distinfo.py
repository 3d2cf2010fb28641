"""Versions of installed distributions, read from their ``.dist-info`` folders.

What ``importlib.metadata.version`` returns for a wheel-installed package, without importing
``importlib.metadata`` (with ``email`` and its parsers), which costs a program start tens of
milliseconds: the build caches key on the ziglang and unicorn versions at every start.
"""

from __future__ import annotations

import os
import re
import sys


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def installed_version(distribution: str) -> str | None:
    """The version of ``distribution`` on ``sys.path``, or None when it is not installed."""
    want = _normalise(distribution)
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith(".dist-info"):
                continue
            # "<name>-<version>.dist-info", the name with "-" written as "_" (PEP 427).
            dist, sep, version = name[: -len(".dist-info")].rpartition("-")
            if sep and _normalise(dist) == want:
                return version
    return None
