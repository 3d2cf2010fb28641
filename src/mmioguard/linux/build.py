"""Build the Linux guest: an arm64 kernel ``Image`` and an initramfs, both cached.

The kernel is upstream Linux 6.12 from Debian's ``linux-source-6.12`` package,
cross-compiled with Debian's ``gcc-aarch64-linux-gnu``, configured as
``allnoconfig`` plus the fragment ``kernel.config`` next to this file (PL011
console and earlycon, PL031, GICv2, arch timer, initramfs, devtmpfs,
``/dev/mem`` and ``CONFIG_ARM_PKVM_GUEST=y``, the upstream MMIO guard client)::

    from mmioguard.linux.build import build_initramfs, build_kernel

    image = build_kernel(log=print)   # -> <cache>/kernel/<key>/Image
    initrd = build_initramfs()        # -> <cache>/initramfs/<key>/initramfs.cpio

:func:`build_kernel` installs the Debian packages it needs when they are
missing (as root, with ``apt-get``), extracts the source tarball once into the
cache, configures and builds out of tree in a temporary directory, checks that
every line of the fragment survived into the final ``.config``, and moves the
result into place with :func:`os.replace`.  Its cache key is the SHA-256 of
the package version of ``linux-source-6.12``, the fragment's settings (its
comments do not count) and the cross compiler's and linker's version lines, so
a second call with nothing changed runs no ``make``.  Next to ``Image`` it
keeps ``config`` (the final ``.config``) and ``System.map`` (for naming the
kernel functions that issue hypercalls).

:func:`build_initramfs` compiles ``guests/linux_init/src/init.c`` with
``zig cc -target aarch64-linux-musl -static`` and packs it with ``/dev``,
``/dev/console`` and ``/proc`` into an uncompressed ``newc`` cpio archive,
cached by the hash of the sources, flags and ziglang version.

The cache directory is, in order: the ``cache_dir`` argument,
``$MMIOGUARD_CACHE_DIR/linux``, ``$XDG_CACHE_HOME/mmioguard/linux``,
``~/.cache/mmioguard/linux``.  ``python -m mmioguard.linux.build`` builds both
and prints the two paths.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmioguard.distinfo import installed_version
from mmioguard.linux import cpio

__all__ = [
    "ARCH",
    "CROSS_COMPILE",
    "FRAGMENT",
    "INIT_CFLAGS",
    "INIT_SOURCE_DIR",
    "REQUIRED_PACKAGES",
    "SOURCE_PACKAGE",
    "SOURCE_TARBALL",
    "KernelBuildError",
    "KernelInputs",
    "build_initramfs",
    "build_kernel",
    "check_config",
    "default_cache_dir",
    "fragment_settings",
    "image_is_arm64",
    "initramfs_entries",
    "kernel_cache_key",
    "kernel_config_path",
    "main",
    "parse_config",
]

Log = Callable[[str], None]

#: The Debian package holding the kernel source, and the tarball it installs.
SOURCE_PACKAGE = "linux-source-6.12"
SOURCE_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
#: The top directory inside the tarball.
SOURCE_TOPDIR = "linux-source-6.12"

ARCH = "arm64"
CROSS_COMPILE = "aarch64-linux-gnu-"
BASE_CONFIG = "allnoconfig"

#: Everything ``make Image`` needs on a Debian 12 host (host compiler and
#: headers for the kconfig and build tools, the cross compiler, the parser
#: generators, the source tarball and its decompressor).
REQUIRED_PACKAGES: tuple[str, ...] = (
    SOURCE_PACKAGE,
    "gcc-aarch64-linux-gnu",
    "gcc",
    "libc6-dev",
    "make",
    "bc",
    "flex",
    "bison",
    "libssl-dev",
    "libelf-dev",
    "cpio",
    "xz-utils",
    "tar",
)

#: The configuration fragment kept in the repository.
FRAGMENT = Path(__file__).resolve().parent / "kernel.config"

#: Options the build refuses to do without, whatever the fragment says.
REQUIRED_OPTIONS: tuple[tuple[str, str], ...] = (("CONFIG_ARM_PKVM_GUEST", "y"),)

#: Fixed identity for the kernel's version banner, so that builds of the same
#: inputs print the same ``Linux version`` line.
BUILD_ENV: tuple[tuple[str, str], ...] = (
    ("KBUILD_BUILD_USER", "mmioguard"),
    ("KBUILD_BUILD_HOST", "mmioguard"),
    ("KBUILD_BUILD_VERSION", "1"),
    ("KBUILD_BUILD_TIMESTAMP", "Thu Jan  1 00:00:00 UTC 1970"),
    ("LOCALVERSION", ""),
)

#: The ``/init`` program's sources and compiler flags.
INIT_SOURCE_DIR = Path(__file__).resolve().parent.parent / "guests" / "linux_init" / "src"
INIT_TARGET = "aarch64-linux-musl"
INIT_CFLAGS: tuple[str, ...] = (
    "-target",
    INIT_TARGET,
    "-static",
    "-O2",
    "-s",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
)

#: Offset and value of the magic in an arm64 ``Image`` header.
IMAGE_MAGIC_OFFSET = 0x38
IMAGE_MAGIC = b"ARM\x64"

#: Bump when the build procedure changes in a way the inputs do not show.
KERNEL_FORMAT = "1"
INITRAMFS_FORMAT = "1"

#: Lines of ``make`` output quoted in the error when a build step fails.
ERROR_TAIL = 25

_CONFIG_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_CONFIG_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


class KernelBuildError(Exception):
    """The kernel or the initramfs could not be built.

    The message is one line; ``details`` holds the failing command's output (the
    last lines of ``make``, or the compiler's messages), and ``streamed`` says
    whether those lines already went to the ``log`` callback.
    """

    def __init__(self, message: str, details: str = "", *, streamed: bool = False) -> None:
        super().__init__(message)
        self.details = details
        self.streamed = streamed


# --- cache ------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where builds go when no ``cache_dir`` is given."""
    explicit = os.environ.get("MMIOGUARD_CACHE_DIR")
    if explicit:
        return Path(explicit) / "linux"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "mmioguard" / "linux"


@dataclass(frozen=True)
class KernelInputs:
    """Everything the kernel cache key depends on."""

    source_version: str
    fragment: bytes
    compiler: str


def fragment_settings(fragment: bytes) -> str:
    """The settings of a fragment, one ``CONFIG_X=value`` a line, sorted: what
    Kconfig reads from it, without comments, blank lines or order (a later
    line for the same option wins, as in Kconfig)."""
    values = parse_config(fragment.decode(errors="replace"))
    return "".join(f"{name}={values[name]}\n" for name in sorted(values))


def kernel_cache_key(inputs: KernelInputs) -> str:
    """The SHA-256 naming the cache entry of a kernel built from ``inputs``.

    The fragment counts by its settings (:func:`fragment_settings`), so that
    editing its comments does not cost a rebuild.
    """
    digest = hashlib.sha256()
    for field in (
        f"mmioguard-linux-kernel {KERNEL_FORMAT}".encode(),
        f"{ARCH} {CROSS_COMPILE} {BASE_CONFIG}".encode(),
        f"{SOURCE_PACKAGE} {inputs.source_version}".encode(),
        inputs.compiler.encode(),
        fragment_settings(inputs.fragment).encode(),
        repr(BUILD_ENV).encode(),
    ):
        digest.update(len(field).to_bytes(8, "little"))
        digest.update(field)
    return digest.hexdigest()


def kernel_config_path(image: Path) -> Path:
    """The final ``.config`` kept next to a cached ``Image``."""
    return image.with_name("config")


def image_is_arm64(path: Path) -> bool:
    """Whether ``path`` starts with an arm64 ``Image`` header."""
    try:
        with path.open("rb") as f:
            head = f.read(IMAGE_MAGIC_OFFSET + len(IMAGE_MAGIC))
    except OSError:
        return False
    return head[IMAGE_MAGIC_OFFSET:] == IMAGE_MAGIC


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialize kernel builds (and source extraction) sharing one cache."""
    with (root / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _make_root(cache_dir: Path | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KernelBuildError(f"cannot create the cache directory {root}: {exc}") from exc
    return root


# --- host: Debian packages and tools ---------------------------------------------


def _run(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise KernelBuildError(f"cannot run {argv[0]}: {exc}") from exc


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _missing_packages(packages: Sequence[str]) -> list[str]:
    """The packages of ``packages`` that dpkg does not list as installed."""
    if shutil.which("dpkg-query") is None:
        raise KernelBuildError("dpkg-query not found: the Linux guest builds on Debian only")
    result = _run(["dpkg-query", "-W", "-f=${Package}\\t${db:Status-Status}\\n", *packages])
    installed = set()
    for line in result.stdout.splitlines():
        name, _, status = line.partition("\t")
        if status == "installed":
            installed.add(name.split(":", 1)[0])
    return [p for p in packages if p not in installed]


def _ensure_packages(packages: Sequence[str], log: Log) -> None:
    """Install the missing ones of ``packages`` with apt-get (root only)."""
    missing = _missing_packages(packages)
    if not missing:
        return
    names = " ".join(missing)
    if os.geteuid() != 0:
        raise KernelBuildError(
            f"missing Debian packages: {names} (run as root, or: apt-get install -y {names})"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    log(f"linux: installing Debian packages: {names}")
    result = _run(install, env=env)
    if result.returncode != 0:
        log("linux: apt-get install failed; running apt-get update and trying again")
        _run(["apt-get", "update", "-q"], env=env)
        result = _run(install, env=env)
    if result.returncode != 0:
        raise KernelBuildError(
            f"apt-get install {names} failed (exit status {result.returncode}): "
            f"{_last_line(result.stderr or result.stdout)}"
        )
    still = _missing_packages(missing)
    if still:
        raise KernelBuildError(f"apt-get ran but these packages are not installed: {still}")


def _package_version(package: str) -> str:
    result = _run(["dpkg-query", "-W", "-f=${Version}", package])
    version = result.stdout.strip()
    if result.returncode != 0 or not version:
        raise KernelBuildError(f"cannot read the version of Debian package {package}")
    return version


def _compiler_version() -> str:
    """The first ``--version`` lines of the cross compiler and linker, joined."""
    lines = []
    for tool in ("gcc", "ld"):
        program = f"{CROSS_COMPILE}{tool}"
        result = _run([program, "--version"])
        if result.returncode != 0 or not result.stdout.strip():
            raise KernelBuildError(f"{program} --version failed: {_last_line(result.stderr)}")
        lines.append(result.stdout.splitlines()[0].strip())
    return " / ".join(lines)


def _host_inputs(fragment: Path) -> KernelInputs:
    try:
        text = fragment.read_bytes()
    except OSError as exc:
        raise KernelBuildError(f"cannot read the kernel config fragment {fragment}: {exc}") from exc
    return KernelInputs(_package_version(SOURCE_PACKAGE), text, _compiler_version())


HOST_MEMO = "host.json"
DPKG_STATUS = Path("/var/lib/dpkg/status")


def _host_fingerprint() -> list[object]:
    """What the package check and the tool versions depend on, read without running
    anything: dpkg's status file (any install or removal rewrites it) and the cross tools."""
    marks: list[object] = []
    for path in (str(DPKG_STATUS), shutil.which(f"{CROSS_COMPILE}gcc"),
                 shutil.which(f"{CROSS_COMPILE}ld")):
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        marks.append([path, st.st_mtime_ns, st.st_size, st.st_ino] if st else [path])
    return marks


def _checked_host_inputs(root: Path, fragment: Path, say: Log) -> KernelInputs:
    """The packages checked (installed if missing) and the host's inputs of the cache key;
    remembered in the cache with the host's fingerprint, so that a run with nothing changed
    runs no dpkg-query and no compiler."""
    memo = root / HOST_MEMO
    fingerprint = _host_fingerprint()
    try:
        known = json.loads(memo.read_text())
        if known.get("fingerprint") == fingerprint and known.get("packages") == list(
            REQUIRED_PACKAGES
        ):
            text = fragment.read_bytes()
            return KernelInputs(str(known["source_version"]), text, str(known["compiler"]))
    except OSError:
        pass  # no memo yet: check
    except (ValueError, KeyError, AttributeError):
        pass  # an unreadable memo is rewritten
    _ensure_packages(REQUIRED_PACKAGES, say)
    inputs = _host_inputs(fragment)
    record = {
        "fingerprint": _host_fingerprint(),  # after any install
        "packages": list(REQUIRED_PACKAGES),
        "source_version": inputs.source_version,
        "compiler": inputs.compiler,
    }
    with contextlib.suppress(OSError):
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(memo)
    return inputs


# --- kernel source and build -------------------------------------------------------


def _safe(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", version)


def _remove_stale(root: Path) -> None:
    """Remove what interrupted builds left (called with the cache lock held, so
    no other process is using these)."""
    for pattern in ("source/.extract-*", "kernel/.build-*"):
        for stale in root.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


def _prepare_source(root: Path, version: str, log: Log) -> Path:
    """The extracted source tree for ``version``, extracting it the first time.

    Trees of other versions are removed once the new one is in place: each
    takes about 1.5 GB.  Called with the cache lock held.
    """
    sources = root / "source"
    tree = sources / _safe(version) / SOURCE_TOPDIR
    if (tree / "Makefile").is_file():
        return tree
    if not SOURCE_TARBALL.is_file():
        raise KernelBuildError(f"{SOURCE_TARBALL} not found (is {SOURCE_PACKAGE} installed?)")
    sources.mkdir(parents=True, exist_ok=True)
    log(f"linux: extracting {SOURCE_TARBALL} ({SOURCE_PACKAGE} {version})")
    work = Path(tempfile.mkdtemp(prefix=".extract-", dir=sources))
    try:
        result = _run(["tar", "-xJf", str(SOURCE_TARBALL), "-C", str(work)])
        if result.returncode != 0 or not (work / SOURCE_TOPDIR / "Makefile").is_file():
            raise KernelBuildError(
                f"extracting {SOURCE_TARBALL} failed: {_last_line(result.stderr)}"
            )
        shutil.rmtree(tree.parent, ignore_errors=True)
        os.replace(work, tree.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for other in sources.iterdir():
        if other.name != tree.parent.name and not other.name.startswith("."):
            log(f"linux: removing the source tree of version {other.name}")
            shutil.rmtree(other, ignore_errors=True)
    return tree


def _make_argv(source: Path, build: Path, *targets: str, jobs: int = 1) -> list[str]:
    return [
        "make",
        "-C",
        str(source),
        f"O={build}",
        f"ARCH={ARCH}",
        f"CROSS_COMPILE={CROSS_COMPILE}",
        f"-j{jobs}",
        *targets,
    ]


def _stream(argv: Sequence[str], env: Mapping[str, str], what: str, log: Log) -> None:
    """Run ``argv``, passing each output line to ``log``; raise with its tail on failure."""
    tail: collections.deque[str] = collections.deque(maxlen=ERROR_TAIL)
    try:
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise KernelBuildError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log(f"  {line}")
    if proc.returncode != 0:
        # make's own last words ("make: *** [...] Error 2") name no cause:
        # quote the last compiler or Kconfig error instead when there is one.
        errors = [t for t in tail if "error" in t.lower() and not t.lstrip().startswith("make")]
        reason = (errors or list(tail) or ["no output"])[-1].strip()
        raise KernelBuildError(
            f"{what} failed (exit status {proc.returncode}): {reason}",
            "\n".join(tail),
            streamed=True,
        )


def _configure_kernel(source: Path, build: Path, fragment: Path, log: Log) -> None:
    """Write ``build/.config``: the base configuration with ``fragment`` applied.
    (A seam the tests replace.)"""
    env = {**os.environ, **dict(BUILD_ENV), "KCONFIG_ALLCONFIG": str(fragment)}
    build.mkdir(parents=True, exist_ok=True)
    log(f"linux: configuring: {BASE_CONFIG} + {fragment.name}")
    _stream(_make_argv(source, build, BASE_CONFIG), env, f"make {BASE_CONFIG}", log)


def _make_image(source: Path, build: Path, jobs: int, log: Log) -> None:
    """Build ``build/arch/arm64/boot/Image`` (and ``System.map``) from ``build/.config``.
    (A seam the tests replace.)"""
    env = {**os.environ, **dict(BUILD_ENV)}
    env.pop("KCONFIG_ALLCONFIG", None)
    log(f"linux: make -j{jobs} Image")
    _stream(_make_argv(source, build, "Image", jobs=jobs), env, "make Image", log)


def parse_config(text: str) -> dict[str, str]:
    """``CONFIG_X`` -> value for a ``.config`` or fragment; ``n`` for "is not set"."""
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if match := _CONFIG_SET.match(line):
            values[match.group(1)] = match.group(2)
        elif match := _CONFIG_UNSET.match(line):
            values[match.group(1)] = "n"
    return values


def check_config(fragment: str, final: str) -> list[str]:
    """The requests of ``fragment`` (and :data:`REQUIRED_OPTIONS`) that ``final`` lost.

    Each item reads like ``CONFIG_X=y requested, final .config has CONFIG_X unset``.
    """
    wanted = parse_config(fragment)
    for name, value in REQUIRED_OPTIONS:
        wanted.setdefault(name, value)
    got = parse_config(final)
    problems = []
    for name, value in wanted.items():
        actual = got.get(name, "n")
        if actual != value:
            shown = f"{name}={actual}" if actual != "n" else f"{name} unset"
            problems.append(f"{name}={value} requested, final .config has {shown}")
    return problems


def build_kernel(
    *,
    jobs: int | None = None,
    log: Log | None = None,
    cache_dir: Path | None = None,
    fragment: Path | None = None,
) -> Path:
    """Build (or find in the cache) the guest kernel and return its ``Image``.

    ``jobs`` defaults to the number of CPUs; ``log`` receives progress lines
    and ``make``'s output.  Raises :class:`KernelBuildError` with a one-line
    reason (and the tail of the failing command's output).
    """
    say: Log = log if log is not None else (lambda _line: None)
    fragment_path = Path(fragment) if fragment is not None else FRAGMENT
    root = _make_root(cache_dir)
    inputs = _checked_host_inputs(root, fragment_path, say)
    key = kernel_cache_key(inputs)
    entry = root / "kernel" / key
    image = entry / "Image"
    if image.is_file():
        return image

    with _locked(root):
        if image.is_file():  # another process built it while we waited
            return image
        _remove_stale(root)
        source = _prepare_source(root, inputs.source_version, say)
        (root / "kernel").mkdir(exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root / "kernel"))
        try:
            start = time.monotonic()
            build = work / "build"
            # Kconfig reads a private copy of the fragment: what it reads is
            # exactly what the key hashed, even if the file changes meanwhile.
            private = work / "kernel.config"
            private.write_bytes(inputs.fragment)
            _configure_kernel(source, build, private, say)
            final = (build / ".config").read_text(errors="replace")
            lost = check_config(inputs.fragment.decode(errors="replace"), final)
            if lost:
                raise KernelBuildError(
                    "kernel config fragment not honoured (check the options' dependencies): "
                    + "; ".join(lost)
                )
            _make_image(source, build, jobs or os.cpu_count() or 1, say)
            built = build / "arch" / ARCH / "boot" / "Image"
            if not image_is_arm64(built):
                raise KernelBuildError(f"the build produced no arm64 Image at {built}")
            if check_config(final, (build / ".config").read_text(errors="replace")):
                raise KernelBuildError("the kernel build changed .config after configuration")
            result = work / "result"
            result.mkdir()
            os.replace(built, result / "Image")
            os.replace(build / ".config", kernel_config_path(result / "Image"))
            if (build / "System.map").is_file():
                os.replace(build / "System.map", result / "System.map")
            (result / "inputs.txt").write_text(
                f"{SOURCE_PACKAGE} {inputs.source_version}\n{inputs.compiler}\n"
                f"fragment sha256 {hashlib.sha256(inputs.fragment).hexdigest()}\n"
                f"{fragment_settings(inputs.fragment)}"
            )
            os.replace(result, entry)
            say(f"linux: built {image} in {time.monotonic() - start:.0f} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return image


# --- initramfs ---------------------------------------------------------------


def _ziglang_version() -> str:
    version = installed_version("ziglang")
    if version is None:
        raise KernelBuildError("the 'ziglang' package is not installed (pip install ziglang)")
    return version


def _init_sources() -> list[Path]:
    try:
        files = sorted(p for p in INIT_SOURCE_DIR.iterdir() if p.suffix in (".c", ".h"))
    except OSError as exc:
        raise KernelBuildError(
            f"cannot list the /init sources in {INIT_SOURCE_DIR}: {exc}"
        ) from exc
    if not any(p.suffix == ".c" for p in files):
        raise KernelBuildError(f"no .c files for /init in {INIT_SOURCE_DIR}")
    return files


def _initramfs_key(sources: Sequence[Path], zig: str) -> str:
    digest = hashlib.sha256()
    fields = [
        f"mmioguard-linux-initramfs {INITRAMFS_FORMAT}".encode(),
        f"ziglang {zig}".encode(),
        *(flag.encode() for flag in INIT_CFLAGS),
    ]
    for path in sources:
        fields += [path.name.encode(), path.read_bytes()]
    for field in fields:
        digest.update(len(field).to_bytes(8, "little"))
        digest.update(field)
    return digest.hexdigest()


def initramfs_entries(init: bytes) -> list[cpio.CpioEntry]:
    """The members of the initramfs around the ``/init`` binary ``init``."""
    return [
        cpio.directory("dev"),
        cpio.char_device("dev/console", 5, 1, 0o600),
        cpio.directory("proc"),
        cpio.regular_file("init", init, 0o755),
    ]


def cached_kernel(cache_dir: Path | None = None) -> Path | None:
    """The kernel Image already in the cache for this host's inputs, without building."""
    if _missing_packages(REQUIRED_PACKAGES):
        return None
    try:
        key = kernel_cache_key(_host_inputs(FRAGMENT))
    except KernelBuildError:
        return None
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    image = root / "kernel" / key / "Image"
    return image if image.is_file() else None


def build_initramfs(*, cache_dir: Path | None = None, log: Log | None = None) -> Path:
    """Build (or find in the cache) the initramfs and return the path of its cpio."""
    say: Log = log if log is not None else (lambda _line: None)
    sources = _init_sources()
    zig = _ziglang_version()
    key = _initramfs_key(sources, zig)
    root = _make_root(cache_dir)
    entry = root / "initramfs" / key
    archive = entry / "initramfs.cpio"
    if archive.is_file():
        return archive

    (root / "initramfs").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root / "initramfs"))
    try:
        result = work / "result"
        result.mkdir()
        init = result / "init"
        argv = [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            *INIT_CFLAGS,
            *(str(p) for p in sources if p.suffix == ".c"),
            "-o",
            str(init),
        ]
        env = dict(os.environ)
        # zig's object cache (musl is built into it once) outlives any one
        # cache_dir, so that a scratch cache does not rebuild libc.
        env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(default_cache_dir() / "zig"))
        say(f"linux: compiling /init ({INIT_TARGET})")
        compiled = _run(argv, cwd=work, env=env)
        if compiled.returncode != 0 or not init.is_file():
            messages = (compiled.stderr or compiled.stdout).strip()
            raise KernelBuildError(
                f"compiling /init failed (exit status {compiled.returncode}): "
                f"{_last_line(messages)}",
                messages,
            )
        (result / "initramfs.cpio").write_bytes(cpio.pack(initramfs_entries(init.read_bytes())))
        try:
            os.replace(result, entry)
        except OSError:
            if not archive.is_file():  # not a concurrent build finishing first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return archive


# --- command line ---------------------------------------------------------------


def main(argv: list[str]) -> int:
    """``mmioguard guests linux``: build the kernel and initramfs, print both paths."""
    parser = argparse.ArgumentParser(
        prog="mmioguard guests linux",
        description="Build (or find in the cache) the Linux guest kernel Image and initramfs "
        "and print their paths.",
    )
    parser.add_argument("-j", "--jobs", type=int, default=None, help="make jobs (default: CPUs)")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="only progress lines, not make's output"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    if args.jobs is not None and args.jobs < 1:
        print("mmioguard: linux: --jobs must be at least 1", file=sys.stderr)
        return 2

    def log(line: str) -> None:
        if not (args.quiet and line.startswith("  ")):
            print(line, file=sys.stderr, flush=True)

    try:
        image = build_kernel(jobs=args.jobs, log=log)
        initramfs = build_initramfs(log=log)
    except KernelBuildError as exc:
        print(f"mmioguard: linux: {exc}", file=sys.stderr)
        if exc.details and (args.quiet or not exc.streamed):
            print(exc.details, file=sys.stderr)
        return 1
    print(image)
    print(initramfs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
