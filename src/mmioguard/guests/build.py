"""Build the bundled AArch64 guests from source with the ``ziglang`` package.

A guest is a directory under ``mmioguard/guests/`` (for example ``example``)
holding ``.c`` and ``.S`` files.  It is compiled and linked together with the
guest SDK in ``guests/sdk`` into a static ELF image linked at 0x40080000::

    from mmioguard.guests.build import build_guest

    elf = build_guest("example")                      # -> Path to example.elf
    elf = build_guest("sanity", defines={"GRANULE": 65536})

Results are cached: the cache key is the SHA-256 of every source, header and
linker-script byte of the guest and the SDK, the compiler flags, the defines
and the ziglang version, and the image lives at ``<cache>/<key>/<name>.elf``.
A call that finds its image there compiles nothing.  Builds go to a private
temporary directory and are moved into place with :func:`os.replace`, so
parallel processes (pytest-xdist workers) never see a partial file.

The cache directory is, in order: the ``cache_dir`` argument,
``$MMIOGUARD_CACHE_DIR``, ``$XDG_CACHE_HOME/mmioguard/guests``,
``~/.cache/mmioguard/guests``.  zig's own object cache goes to ``<cache>/zig``
unless ``$ZIG_GLOBAL_CACHE_DIR`` is set.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mmioguard.distinfo import installed_version

__all__ = [
    "CFLAGS",
    "GUESTS_DIR",
    "LDFLAGS",
    "SDK_DIR",
    "GuestBuildError",
    "build_guest",
    "default_cache_dir",
    "guest_names",
]

#: Where the guest directories and ``sdk`` live (read at call time).
GUESTS_DIR = Path(__file__).resolve().parent
SDK_DIR = GUESTS_DIR / "sdk"

TARGET = "aarch64-freestanding-none"

#: Flags for every C and assembly file.  MMU-off guests see Device memory
#: semantics for all data accesses: no FP/SIMD registers, no unaligned
#: accesses, nothing from a hosted libc.  ``zig cc`` passes its own CPU
#: features after the driver's, which re-enables FP/SIMD behind
#: ``-mgeneral-regs-only`` (varargs prologues then save q0-q7), so the CPU
#: model removes them explicitly too.
CFLAGS: tuple[str, ...] = (
    "-target",
    TARGET,
    "-mcpu=generic-fp_armv8-neon",
    "-mgeneral-regs-only",
    "-ffreestanding",
    "-fno-builtin",
    "-nostdlib",
    "-O2",
    "-mstrict-align",
    "-fno-stack-protector",
    "-fno-pic",
    "-fno-pie",
    "-fno-omit-frame-pointer",
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
)

LDFLAGS: tuple[str, ...] = ("-static", "-Wl,--build-id=none")

SOURCE_SUFFIXES = (".c", ".S")
HASHED_SUFFIXES = (".c", ".S", ".h", ".ld")

#: Bump when the build procedure changes in a way the inputs do not show.
BUILD_FORMAT = "1"

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_DEFINE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class GuestBuildError(Exception):
    """A guest could not be built; ``stderr`` holds the compiler's messages."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(f"{message}\n{stderr}".rstrip() if stderr else message)
        self.stderr = stderr


def guest_names() -> list[str]:
    """Names of the bundled guests: directories next to ``sdk`` with sources."""
    names = []
    for entry in sorted(GUESTS_DIR.iterdir()):
        if entry.name == "sdk" or not entry.is_dir() or not _NAME_RE.match(entry.name):
            continue
        if any(p.suffix in SOURCE_SUFFIXES for p in entry.iterdir() if p.is_file()):
            names.append(entry.name)
    return names


def default_cache_dir() -> Path:
    """Where images go when ``build_guest`` gets no ``cache_dir``."""
    explicit = os.environ.get("MMIOGUARD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "mmioguard" / "guests"


def ziglang_version() -> str:
    version = installed_version("ziglang")
    if version is None:
        raise GuestBuildError("the 'ziglang' package is not installed (pip install ziglang)")
    return version


def _guest_dir(name: str) -> Path:
    if not _NAME_RE.match(name) or name == "sdk":
        raise GuestBuildError(f"invalid guest name {name!r}")
    directory = GUESTS_DIR / name
    if not directory.is_dir():
        known = ", ".join(guest_names()) or "none"
        raise GuestBuildError(f"unknown guest {name!r} (bundled guests: {known})")
    return directory


def _files(directory: Path, suffixes: Sequence[str]) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in suffixes)


def _define_flags(defines: Mapping[str, str | int] | None) -> list[str]:
    flags = []
    for key in sorted(defines or {}):
        value = (defines or {})[key]
        if not _DEFINE_RE.match(key):
            raise GuestBuildError(f"invalid macro name {key!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise GuestBuildError(f"macro {key!r}: value must be str or int, not {value!r}")
        text = str(value)
        if "\n" in text or "\0" in text:
            raise GuestBuildError(f"macro {key!r}: value must be a single line")
        flags.append(f"-D{key}={text}")
    return flags


def _cache_key(name: str, inputs: Sequence[Path], flags: Sequence[str], zig: str) -> str:
    root = GUESTS_DIR
    digest = hashlib.sha256()

    def field(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    field(f"mmioguard-guest-build {BUILD_FORMAT}".encode())
    field(name.encode())
    field(f"ziglang {zig}".encode())
    for flag in flags:
        field(flag.encode())
    for path in inputs:
        field(path.relative_to(root).as_posix().encode())
        field(path.read_bytes())
    return digest.hexdigest()


def _run_compiler(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run one compiler command (a seam that tests may wrap to count builds)."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def build_guest(
    name: str,
    *,
    defines: Mapping[str, str | int] | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Build guest ``name`` (cached) and return the path of its ELF image.

    ``defines`` become ``-DKEY=VALUE`` for every C and assembly file.  Raises
    :class:`GuestBuildError` (with the compiler's stderr) when the guest does
    not exist or does not compile or link.
    """
    guest_dir = _guest_dir(name)
    sdk_dir = GUESTS_DIR / "sdk"
    sources = _files(sdk_dir, SOURCE_SUFFIXES) + _files(guest_dir, SOURCE_SUFFIXES)
    if not any(p.parent == guest_dir for p in sources):
        raise GuestBuildError(f"guest {name!r} has no .c or .S files in {guest_dir}")
    inputs = _files(sdk_dir, HASHED_SUFFIXES) + _files(guest_dir, HASHED_SUFFIXES)
    define_flags = _define_flags(defines)
    flags = [
        *CFLAGS,
        *define_flags,
        f"-I{guest_dir}",
        f"-I{sdk_dir}",
        *LDFLAGS,
        f"-Wl,-T,{sdk_dir / 'guest.ld'}",
    ]
    # The key leaves out the absolute paths (their contents are hashed) so that
    # every checkout or installation of the same sources shares its images.
    zig = ziglang_version()
    key = _cache_key(name, inputs, [*CFLAGS, *define_flags, *LDFLAGS], zig)

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    output = root / key / f"{name}.elf"
    if output.is_file():
        return output

    try:
        root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=root))
    except OSError as exc:
        raise GuestBuildError(f"cannot use the guest cache directory {root}: {exc}") from exc
    try:
        target = workdir / f"{name}.elf"
        argv = [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            *flags,
            *(str(p) for p in sources),
            "-o",
            str(target),
        ]
        # zig keeps its own object cache; keep it with ours unless told otherwise,
        # so that a read-only home directory does not break the build.
        env = dict(os.environ)
        env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(root / "zig"))
        result = _run_compiler(argv, workdir, env)
        if result.returncode != 0 or not target.is_file():
            raise GuestBuildError(
                f"building guest {name!r} failed (exit status {result.returncode})",
                (result.stderr or "") + (result.stdout or ""),
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, output)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmioguard.guests.build [NAME...]``: build guests, print paths."""
    names = list(argv if argv is not None else sys.argv[1:]) or guest_names()
    status = 0
    for guest in names:
        try:
            print(build_guest(guest))
        except GuestBuildError as exc:
            print(exc, file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
