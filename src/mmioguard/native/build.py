"""Build the native fast path (``mgnative.c``) for the host with the ``ziglang`` package.

The shared library is compiled against the Unicorn wheel's own headers and library
(``<site-packages>/unicorn/include`` and ``unicorn/lib/libunicorn.so.2``), at first use, and
cached under a key that covers the sources, the flags, the ziglang and Unicorn versions and
the library it links against. The cache directory is, in order: the ``cache_dir`` argument,
``$MMIOGUARD_CACHE_DIR``, ``$XDG_CACHE_HOME/mmioguard/native``,
``~/.cache/mmioguard/native``. Builds go to a private temporary directory and are moved into
place with :func:`os.replace`, so parallel processes (pytest-xdist workers) never see a partial
file. zig's own object cache goes to ``<cache>/zig`` unless ``$ZIG_GLOBAL_CACHE_DIR`` is set.

:func:`build_native` never raises for an expected failure (no ziglang, no Unicorn wheel files,
an unsupported host, a compiler error): it returns ``(None, reason)``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mmioguard.distinfo import installed_version

__all__ = [
    "CFLAGS",
    "NATIVE_DIR",
    "UBSAN_FLAGS",
    "build_native",
    "default_cache_dir",
    "unicorn_paths",
]

NATIVE_DIR = Path(__file__).resolve().parent
SOURCES = ("mgnative.c", "mgtimer.c")
HASHED = ("mgnative.c", "mgnative.h", "mgtimer.c", "mgtimer.h")

CFLAGS: tuple[str, ...] = (
    "-shared",
    "-fPIC",
    "-O2",
    "-std=c11",
    "-fvisibility=hidden",
    "-Wall",
    "-Wextra",
    "-Wconversion",
    "-Wshadow",
    "-Werror",
)

#: The CI variant: undefined behaviour traps (SIGILL) instead of being silently compiled.
UBSAN_FLAGS: tuple[str, ...] = ("-fsanitize=undefined", "-fsanitize-trap=undefined")

#: Bump when the build procedure changes in a way the inputs do not show.
BUILD_FORMAT = "1"

_SUPPORTED = {("linux", "x86_64"), ("linux", "aarch64")}
_LIBRARY = "libunicorn.so.2"
_TIMEOUT = 300


def default_cache_dir() -> Path:
    explicit = os.environ.get("MMIOGUARD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "mmioguard" / "native"


def unicorn_paths() -> tuple[Path, Path] | str:
    """(include directory, library) of the installed Unicorn wheel, or why there are none.

    The library must be the one the Python binding loaded: linking against another copy would
    put two Unicorns in the process, and the callbacks would call into the wrong one.
    """
    try:
        import unicorn
        from unicorn.unicorn_py3.unicorn import uclib
    except Exception as exc:  # ImportError, or the binding failing to load its library
        return f"cannot import the unicorn binding: {exc}"
    root = Path(unicorn.__file__).resolve().parent
    include = root / "include"
    library = root / "lib" / _LIBRARY
    if not (include / "unicorn" / "unicorn.h").is_file():
        return f"the unicorn package has no C headers in {include}"
    if not library.is_file():
        return f"the unicorn package has no {_LIBRARY} in {library.parent}"
    loaded = getattr(uclib, "_name", None)
    if not isinstance(loaded, str) or Path(loaded).resolve() != library.resolve():
        return f"the unicorn binding loaded {loaded!r}, not the wheel's {library}"
    return include, library


def _host() -> tuple[str, str]:
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return sys.platform, machine


def _versions() -> tuple[str, str] | str:
    zig = installed_version("ziglang")
    if zig is None:
        return "the 'ziglang' package is not installed (pip install ziglang)"
    return zig, installed_version("unicorn") or "unknown"


def _cache_key(flags: tuple[str, ...], zig: str, uc: str, include: Path, library: Path) -> str:
    digest = hashlib.sha256()

    def field(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    field(f"mmioguard-native {BUILD_FORMAT}".encode())
    field(f"ziglang {zig} unicorn {uc}".encode())
    field("/".join(_host()).encode())
    for flag in flags:
        field(flag.encode())
    for name in HASHED:
        field(name.encode())
        field((NATIVE_DIR / name).read_bytes())
    for header in sorted((include / "unicorn").glob("*.h")):
        field(header.name.encode())
        field(header.read_bytes())
    # The library's path is recorded in the output (its run path): a move means a rebuild.
    field(str(library.resolve()).encode())
    return digest.hexdigest()[:32]


def build_native(ubsan: bool = False, cache_dir: Path | None = None) -> tuple[Path | None, str]:
    """Build (or find in the cache) the native library: ``(path, how)`` or ``(None, why)``."""
    host = _host()
    if host not in _SUPPORTED:
        return None, f"unsupported host {host[0]}/{host[1]} (supported: Linux x86-64, AArch64)"
    versions = _versions()
    if isinstance(versions, str):
        return None, versions
    zig, uc = versions
    paths = unicorn_paths()
    if isinstance(paths, str):
        return None, paths
    include, library = paths
    flags = CFLAGS + (UBSAN_FLAGS if ubsan else ())
    try:
        key = _cache_key(flags, zig, uc, include, library)
    except OSError as exc:
        return None, f"cannot read the native sources: {exc}"
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = f"mgnative-{key}{'-ubsan' if ubsan else ''}.so"
    output = root / name
    if output.is_file():
        return output, f"cached {output}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=".build-native-", dir=root))
    except OSError as exc:
        return None, f"cannot use the native cache directory {root}: {exc}"
    try:
        target = workdir / name
        argv = [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            *flags,
            f"-I{include}",
            *(str(NATIVE_DIR / s) for s in SOURCES),
            str(library),
            f"-Wl,-rpath,{library.parent}",
            "-o",
            str(target),
        ]
        env = dict(os.environ)
        env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(root / "zig"))
        try:
            result = subprocess.run(
                argv,
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
                timeout=_TIMEOUT,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"cannot run the ziglang compiler: {exc}"
        if result.returncode != 0 or not target.is_file():
            messages = ((result.stderr or "") + (result.stdout or "")).strip()
            return None, (
                f"building the native library failed (exit status {result.returncode})"
                + (f":\n{messages}" if messages else "")
            )
        try:
            os.replace(target, output)
        except OSError as exc:
            return None, f"cannot store the native library in {root}: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return output, f"built {output}"
