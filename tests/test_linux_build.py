"""Tests of the Linux guest build (mmioguard.linux): cpio writer, cache keys, /init, kernel."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mmioguard.linux import build, cpio
from mmioguard.linux.build import (
    KernelBuildError,
    KernelInputs,
    build_initramfs,
    build_kernel,
    check_config,
    image_is_arm64,
    kernel_cache_key,
    kernel_config_path,
    parse_config,
)

EM_AARCH64 = 183
PT_INTERP = 3

# --- cpio ---------------------------------------------------------------------


def _offsets(archive: bytes) -> list[tuple[int, str, int, int]]:
    """(header offset, name, namesize, filesize) of every member, trailer included,
    walked independently of cpio.unpack."""
    out = []
    offset = 0
    while True:
        head = archive[offset : offset + 110]
        namesize = int(head[94:102], 16)
        filesize = int(head[54:62], 16)
        name = archive[offset + 110 : offset + 110 + namesize - 1].decode()
        out.append((offset, name, namesize, filesize))
        data = offset + 110 + namesize
        data += -(data - offset) % 4
        offset = data + filesize + (-filesize % 4)
        if name == cpio.TRAILER:
            return out


def test_cpio_round_trip_of_the_initramfs_members() -> None:
    init = b"\x7fELF" + bytes(range(256)) * 3 + b"odd"  # 775 bytes: needs padding
    entries = build.initramfs_entries(init)
    archive = cpio.pack(entries)
    assert cpio.unpack(archive) == entries
    by_name = {e.name: e for e in cpio.unpack(archive)}
    assert list(by_name) == ["dev", "dev/console", "proc", "init"]
    assert by_name["init"].mode == stat.S_IFREG | 0o755
    assert by_name["init"].data == init
    assert by_name["dev"].mode == stat.S_IFDIR | 0o755
    assert by_name["proc"].mode == stat.S_IFDIR | 0o755
    console = by_name["dev/console"]
    assert stat.S_ISCHR(console.mode)
    assert (console.rdev_major, console.rdev_minor) == (5, 1)
    assert console.data == b""


def test_cpio_layout_headers_names_and_padding() -> None:
    data = b"12345"
    archive = cpio.pack([cpio.regular_file("a", data, 0o600), cpio.directory("dir")])
    assert len(archive) % 512 == 0
    members = _offsets(archive)
    assert [m[1] for m in members] == ["a", "dir", cpio.TRAILER]
    for offset, name, namesize, _size in members:
        assert offset % 4 == 0
        assert archive[offset : offset + 6] == b"070701"
        header = archive[offset + 6 : offset + 110]
        assert all(chr(c) in "0123456789ABCDEF" for c in header)
        assert namesize == len(name) + 1
        assert archive[offset + 110 + namesize - 1] == 0
    # "a": 110-byte header + "a\0" = 112, already aligned; 5 data bytes + 3 padding.
    assert members[1][0] == 112 + 8
    assert archive[112:117] == data
    assert archive[117:120] == b"\0\0\0"
    # Inode numbers count from 1; the trailer's fields are all zero but nlink.
    assert int(archive[6:14], 16) == 1
    trailer = members[-1][0]
    fields = [int(archive[trailer + 6 + 8 * i : trailer + 14 + 8 * i], 16) for i in range(13)]
    assert fields[4] == 1
    assert fields[:4] == [0, 0, 0, 0]
    assert fields[5:11] == [0] * 6
    assert not any(archive[trailer + 110 + 11 :])


def test_cpio_is_deterministic_and_rejects_bad_members() -> None:
    entries = build.initramfs_entries(b"x")
    assert cpio.pack(entries) == cpio.pack(list(entries))
    with pytest.raises(cpio.CpioError, match="relative"):
        cpio.pack([cpio.directory("/dev")])
    with pytest.raises(cpio.CpioError, match="repeated"):
        cpio.pack([cpio.directory("dev"), cpio.directory("dev")])
    with pytest.raises(cpio.CpioError, match="reserved"):
        cpio.pack([cpio.directory(cpio.TRAILER)])
    with pytest.raises(cpio.CpioError, match="only files"):
        cpio.pack([cpio.CpioEntry("d", stat.S_IFDIR | 0o755, b"data")])


def test_cpio_unpack_rejects_damaged_archives() -> None:
    archive = cpio.pack(build.initramfs_entries(b"abc"))
    with pytest.raises(cpio.CpioError, match="magic"):
        cpio.unpack(b"070707" + archive[6:])
    with pytest.raises(cpio.CpioError, match="without"):
        cpio.unpack(archive[:200])
    broken = bytearray(archive)
    broken[6] = ord("G")
    with pytest.raises(cpio.CpioError, match="hexadecimal"):
        cpio.unpack(bytes(broken))


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")
def test_gnu_cpio_reads_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "a.cpio"
    archive.write_bytes(cpio.pack(build.initramfs_entries(b"#!/bin/true\n")))
    listing = subprocess.run(
        ["cpio", "-itv", "--quiet", "-F", str(archive)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert [line.split()[-1] for line in listing] == ["dev", "dev/console", "proc", "init"]
    assert listing[0].startswith("drwxr-xr-x")
    assert listing[1].startswith("crw-------")
    assert listing[3].startswith("-rwxr-xr-x")


# --- configuration checks --------------------------------------------------------


def test_parse_and_check_config() -> None:
    fragment = '# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=4\nCONFIG_S="x y"\n'
    assert parse_config(fragment) == {
        "CONFIG_A": "y",
        "CONFIG_B": "n",
        "CONFIG_N": "4",
        "CONFIG_S": '"x y"',
    }
    good = 'CONFIG_A=y\nCONFIG_N=4\nCONFIG_S="x y"\nCONFIG_ARM_PKVM_GUEST=y\n'
    assert check_config(fragment, good) == []
    assert check_config(fragment, good + "CONFIG_B=y\n") == [
        "CONFIG_B=n requested, final .config has CONFIG_B=y"
    ]
    lost = check_config(fragment, "CONFIG_N=8\n# CONFIG_A is not set\n")
    assert "CONFIG_A=y requested, final .config has CONFIG_A unset" in lost
    assert "CONFIG_N=4 requested, final .config has CONFIG_N=8" in lost
    # The guard client is required even when a fragment forgets it.
    assert any("CONFIG_ARM_PKVM_GUEST=y" in p for p in lost)


def test_the_repository_fragment_asks_for_the_guard_client() -> None:
    wanted = parse_config(build.FRAGMENT.read_text())
    for option in (
        "CONFIG_ARM_PKVM_GUEST",
        "CONFIG_SERIAL_AMBA_PL011_CONSOLE",
        "CONFIG_RTC_DRV_PL031",
        "CONFIG_DEVMEM",
        "CONFIG_BLK_DEV_INITRD",
        "CONFIG_DEVTMPFS",
    ):
        assert wanted[option] == "y", option
    assert wanted["CONFIG_STRICT_DEVMEM"] == "n"
    assert wanted["CONFIG_RTC_HCTOSYS"] == "n"
    assert wanted["CONFIG_MODULES"] == "n"


# --- kernel cache with a fake builder ------------------------------------------------


def test_kernel_cache_key_changes_with_each_input() -> None:
    base = KernelInputs("6.12.1-1", b"CONFIG_A=y\n", "aarch64-linux-gnu-gcc 12.2.0")
    key = kernel_cache_key(base)
    assert key == kernel_cache_key(KernelInputs(base.source_version, base.fragment, base.compiler))
    assert len(key) == 64
    others = {
        kernel_cache_key(KernelInputs("6.12.2-1", base.fragment, base.compiler)),
        kernel_cache_key(KernelInputs(base.source_version, b"CONFIG_A=n\n", base.compiler)),
        kernel_cache_key(KernelInputs(base.source_version, base.fragment, "gcc 13")),
    }
    assert key not in others
    assert len(others) == 3
    # Comments, blank lines and order do not count; a repeated option's last value does.
    reworded = b"# the guard client\n\nCONFIG_A=n\n  CONFIG_A=y\n"
    same = KernelInputs(base.source_version, reworded, base.compiler)
    assert kernel_cache_key(same) == key
    assert build.fragment_settings(b"CONFIG_B=y\n# CONFIG_A is not set\n") == (
        "CONFIG_A=n\nCONFIG_B=y\n"
    )


class FakeHost:
    """Stands in for dpkg, the cross compiler, the source tree and make."""

    def __init__(self, tmp: Path) -> None:
        self.version = "6.12.117-1~deb12u1"
        self.compiler = "aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0"
        self.source = tmp / "src"
        self.source.mkdir()
        self.configures = 0
        self.makes = 0
        self.drop: str | None = None  # an option the fake Kconfig refuses

    def configure(
        self, source: Path, out: Path, fragment: Path, log: Callable[[str], None]
    ) -> None:
        assert source == self.source
        self.configures += 1
        out.mkdir(parents=True, exist_ok=True)
        lines = [
            line
            for line in fragment.read_text().splitlines()
            if not (self.drop and line.startswith(f"{self.drop}="))
        ]
        (out / ".config").write_text("\n".join(lines) + "\n")

    def make(self, source: Path, out: Path, jobs: int, log: Callable[[str], None]) -> None:
        assert jobs >= 1
        self.makes += 1
        image = out / "arch" / "arm64" / "boot" / "Image"
        image.parent.mkdir(parents=True)
        header = bytearray(64)
        header[0x38:0x3C] = b"ARM\x64"
        image.write_bytes(bytes(header) + f"build {self.makes}".encode())
        (out / "System.map").write_text("ffff800080000000 T _text\n")


@pytest.fixture
def fake_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    host = FakeHost(tmp_path)
    monkeypatch.setattr(build, "_ensure_packages", lambda packages, log: None)
    monkeypatch.setattr(build, "_package_version", lambda package: host.version)
    monkeypatch.setattr(build, "_compiler_version", lambda: host.compiler)
    monkeypatch.setattr(build, "_prepare_source", lambda root, version, log: host.source)
    # A new package or compiler rewrites dpkg's status file or the tool: the fingerprint.
    monkeypatch.setattr(build, "_host_fingerprint", lambda: [host.version, host.compiler])
    monkeypatch.setattr(build, "_configure_kernel", host.configure)
    monkeypatch.setattr(build, "_make_image", host.make)
    return host


def test_kernel_cache_hits_and_misses(fake_host: FakeHost, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fragment = tmp_path / "kernel.config"
    fragment.write_text("CONFIG_ARM_PKVM_GUEST=y\nCONFIG_A=y\n")
    lines: list[str] = []

    first = build_kernel(cache_dir=cache, fragment=fragment, log=lines.append)
    assert fake_host.makes == 1
    assert image_is_arm64(first)
    assert first.read_bytes().endswith(b"build 1")
    assert "CONFIG_A=y" in kernel_config_path(first).read_text()
    assert (first.parent / "System.map").is_file()
    assert any(line.startswith("linux: built ") for line in lines)

    assert build_kernel(cache_dir=cache, fragment=fragment) == first
    assert fake_host.makes == 1, "a second call with nothing changed must not build"
    assert not [p for p in (cache / "kernel").iterdir() if p.name.startswith(".")]

    fragment.write_text("CONFIG_ARM_PKVM_GUEST=y\nCONFIG_A=y\nCONFIG_B=y\n")
    second = build_kernel(cache_dir=cache, fragment=fragment)
    assert fake_host.makes == 2
    assert second != first and first.is_file()

    fake_host.version = "6.12.118-1~deb12u1"
    third = build_kernel(cache_dir=cache, fragment=fragment)
    assert fake_host.makes == 3
    assert third not in (first, second)

    fake_host.compiler = "aarch64-linux-gnu-gcc (Debian 13.1.0-1) 13.1.0"
    build_kernel(cache_dir=cache, fragment=fragment)
    assert fake_host.makes == 4

    fake_host.version = "6.12.117-1~deb12u1"
    fake_host.compiler = "aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0"
    fragment.write_text("CONFIG_ARM_PKVM_GUEST=y\nCONFIG_A=y\n")
    assert build_kernel(cache_dir=cache, fragment=fragment) == first
    assert fake_host.makes == 4


def test_unchanged_host_runs_no_package_or_compiler_query(
    fake_host: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    queries: list[str] = []
    monkeypatch.setattr(build, "_ensure_packages", lambda packages, log: queries.append("dpkg"))
    monkeypatch.setattr(
        build, "_package_version", lambda package: queries.append("version") or fake_host.version
    )
    first = build_kernel(cache_dir=cache)
    assert queries == ["dpkg", "version"]
    assert build_kernel(cache_dir=cache) == first
    assert queries == ["dpkg", "version"], "nothing changed: the memo answers"
    (cache / build.HOST_MEMO).write_text("{not json")
    assert build_kernel(cache_dir=cache) == first
    assert queries == ["dpkg", "version"] * 2, "an unreadable memo is checked again"
    fake_host.compiler = "aarch64-linux-gnu-gcc (Debian 13.1.0-1) 13.1.0"
    build_kernel(cache_dir=cache)
    assert queries == ["dpkg", "version"] * 3
    assert fake_host.makes == 2


def test_kernel_build_fails_loudly_when_the_guard_client_is_dropped(
    fake_host: FakeHost, tmp_path: Path
) -> None:
    fake_host.drop = "CONFIG_ARM_PKVM_GUEST"
    with pytest.raises(KernelBuildError, match=r"CONFIG_ARM_PKVM_GUEST=y requested"):
        build_kernel(cache_dir=tmp_path / "cache")
    assert fake_host.configures == 1
    assert fake_host.makes == 0, "a lost option must stop the build before make Image"
    assert not list((tmp_path / "cache" / "kernel").iterdir())


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MMIOGUARD_CACHE_DIR", str(tmp_path / "m"))
    assert build.default_cache_dir() == tmp_path / "m" / "linux"
    monkeypatch.delenv("MMIOGUARD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert build.default_cache_dir() == tmp_path / "x" / "mmioguard" / "linux"


def test_missing_packages_without_root_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(build, "_missing_packages", lambda packages: ["flex", "bison"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(
        KernelBuildError, match=r"missing Debian packages: flex bison \(run as root"
    ):
        build._ensure_packages(["flex", "bison", "make"], lambda line: None)


def test_failing_command_gives_a_one_line_error_and_keeps_the_output() -> None:
    seen: list[str] = []
    with pytest.raises(KernelBuildError) as info:
        build._stream(
            ["sh", "-c", "echo compiling; echo 'error: boom' >&2; exit 3"],
            dict(os.environ),
            "make Image",
            seen.append,
        )
    assert str(info.value) == "make Image failed (exit status 3): error: boom"
    assert info.value.details == "compiling\nerror: boom"
    assert info.value.streamed
    assert seen == ["  compiling", "  error: boom"]


def test_main_reports_a_build_error_on_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(**kwargs: object) -> Path:
        raise KernelBuildError("make Image failed (exit status 2): oops", "a\noops", streamed=True)

    monkeypatch.setattr(build, "build_kernel", failing)
    assert build.main(["-q"]) == 1
    err = capsys.readouterr().err
    assert err == "mmioguard: linux: make Image failed (exit status 2): oops\na\noops\n"
    assert build.main([]) == 1
    assert capsys.readouterr().err == "mmioguard: linux: make Image failed (exit status 2): oops\n"


def test_main_rejects_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--jobs", "0"]) == 2
    assert build.main(["--no-such-option"]) == 2
    assert build.main(["--help"]) == 0
    assert "initramfs" in capsys.readouterr().out


# --- /init ----------------------------------------------------------------------------


def _elf_program_types(data: bytes) -> tuple[int, list[int]]:
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", data, 32)[0],
        struct.unpack_from("<H", data, 54)[0],
        struct.unpack_from("<H", data, 56)[0],
    )
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return machine, types


def test_initramfs_build_and_cache(tmp_path: Path) -> None:
    archive = build_initramfs(cache_dir=tmp_path)
    entries = {e.name: e for e in cpio.unpack(archive.read_bytes())}
    assert set(entries) == {"dev", "dev/console", "proc", "init"}
    init = entries["init"]
    assert init.mode == stat.S_IFREG | 0o755
    machine, types = _elf_program_types(init.data)
    assert machine == EM_AARCH64
    assert PT_INTERP not in types, "/init must be static"
    for text in (b"/dev/rtc0", b"/dev/mem", b"SIGBUS", b"refused the access", b"reached the VMM"):
        assert text in init.data, text

    def no_compiler(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached initramfs must come back without compiling")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build, "_run", no_compiler)
        assert build_initramfs(cache_dir=tmp_path) == archive


# --- the real kernel --------------------------------------------------------------------


@pytest.mark.slow
def test_real_kernel_build(capsys: pytest.CaptureFixture[str]) -> None:
    """Builds the kernel from Debian's packages (minutes the first time, then cached)."""
    missing = build._missing_packages(build.REQUIRED_PACKAGES)
    if missing and os.geteuid() != 0:
        pytest.skip(f"needs root to install {' '.join(missing)}")
    image = build_kernel()
    assert image.read_bytes()[0x38:0x3C] == b"ARM\x64"
    config = kernel_config_path(image).read_text()
    assert "CONFIG_ARM_PKVM_GUEST=y" in config.splitlines()
    assert "# CONFIG_STRICT_DEVMEM is not set" in config.splitlines()
    symbols = (image.parent / "System.map").read_text()
    assert " pkvm_init_hyp_services\n" in symbols
    assert " mmio_guard_ioremap_hook\n" in symbols

    def no_make(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached kernel must come back without make")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build, "_stream", no_make)
        patch.setattr(build, "_prepare_source", no_make)
        assert build_kernel() == image

    assert build.main(["--quiet"]) == 0
    out = capsys.readouterr().out.split()
    assert out[0] == str(image)
    assert out[1].endswith("initramfs.cpio")
