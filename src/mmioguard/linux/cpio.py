"""Write and read ``newc`` cpio archives, the format of a Linux initramfs.

Each member is a 110-byte ASCII header (the magic ``070701`` and thirteen
8-digit hexadecimal fields), its NUL-terminated name padded to a multiple of
four bytes counted from the start of the header, and its data padded to a
multiple of four.  The archive ends with a member named ``TRAILER!!!`` and is
padded with zeros to a multiple of 512 bytes, as ``cpio -H newc`` does.

The writer is deterministic: inode numbers count up from 1 in the order the
members are given and every timestamp, owner and group is 0, so the same
members always give the same bytes.  The reader exists for the tests and for
inspecting archives; it accepts what the writer produces and checks it
strictly.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MAGIC",
    "TRAILER",
    "CpioEntry",
    "CpioError",
    "char_device",
    "directory",
    "pack",
    "regular_file",
    "unpack",
]

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
HEADER_SIZE = 110
_FIELDS = (
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
)


class CpioError(ValueError):
    """An archive or a member cannot be written or parsed."""


@dataclass(frozen=True)
class CpioEntry:
    """One archive member: ``mode`` holds the file type bits and permissions."""

    name: str
    mode: int
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    mtime: int = 0


def regular_file(name: str, data: bytes, perm: int = 0o644) -> CpioEntry:
    return CpioEntry(name, stat.S_IFREG | perm, data)


def directory(name: str, perm: int = 0o755) -> CpioEntry:
    return CpioEntry(name, stat.S_IFDIR | perm, nlink=2)


def char_device(name: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
    return CpioEntry(name, stat.S_IFCHR | perm, rdev_major=major, rdev_minor=minor)


def _pad4(length: int) -> int:
    return -length % 4


def _header(entry: CpioEntry, ino: int, name: bytes) -> bytes:
    values = (
        ino,
        entry.mode,
        entry.uid,
        entry.gid,
        entry.nlink,
        entry.mtime,
        len(entry.data),
        0,
        0,
        entry.rdev_major,
        entry.rdev_minor,
        len(name) + 1,
        0,
    )
    for field, value in zip(_FIELDS, values, strict=True):
        if not 0 <= value <= 0xFFFFFFFF:
            raise CpioError(f"cpio member {entry.name!r}: {field} {value} does not fit 32 bits")
    return MAGIC + b"".join(b"%08X" % value for value in values)


def _member(entry: CpioEntry, ino: int) -> bytes:
    name = entry.name.encode()
    if not name or b"\0" in name or name.startswith(b"/"):
        raise CpioError(f"cpio member name {entry.name!r} must be relative and not empty")
    if entry.data and not stat.S_ISREG(entry.mode) and not stat.S_ISLNK(entry.mode):
        raise CpioError(f"cpio member {entry.name!r}: only files and symlinks carry data")
    head = _header(entry, ino, name) + name + b"\0"
    return head + bytes(_pad4(len(head))) + entry.data + bytes(_pad4(len(entry.data)))


def pack(entries: Iterable[CpioEntry]) -> bytes:
    """The archive holding ``entries`` in order, with trailer and padding."""
    out = bytearray()
    seen: set[str] = set()
    for ino, entry in enumerate(entries, start=1):
        if entry.name in seen or entry.name == TRAILER:
            raise CpioError(f"cpio member name {entry.name!r} is repeated or reserved")
        seen.add(entry.name)
        out += _member(entry, ino)
    out += _member(CpioEntry(TRAILER, 0), 0)
    out += bytes(-len(out) % 512)
    return bytes(out)


def unpack(archive: bytes) -> list[CpioEntry]:
    """The members of a ``newc`` archive, without the trailer.

    Raises :class:`CpioError` on a bad magic, a non-hex field, a name without
    its NUL, a member running past the end, non-zero padding or a missing
    trailer.
    """
    entries: list[CpioEntry] = []
    offset = 0
    while True:
        if offset + HEADER_SIZE > len(archive):
            raise CpioError(f"cpio archive ends at {len(archive)} without {TRAILER}")
        head = archive[offset : offset + HEADER_SIZE]
        if head[:6] != MAGIC:
            raise CpioError(f"cpio header at {offset:#x}: bad magic {head[:6]!r}")
        try:
            values = dict(
                zip(
                    _FIELDS, (int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)), strict=True
                )
            )
        except ValueError as exc:
            raise CpioError(f"cpio header at {offset:#x}: a field is not hexadecimal") from exc
        name_end = offset + HEADER_SIZE + values["namesize"]
        raw_name = archive[offset + HEADER_SIZE : name_end]
        if values["namesize"] < 1 or len(raw_name) != values["namesize"] or raw_name[-1] != 0:
            raise CpioError(f"cpio header at {offset:#x}: name is not NUL-terminated")
        name = raw_name[:-1].decode()
        data_start = name_end + _pad4(name_end - offset)
        data_end = data_start + values["filesize"]
        if data_end > len(archive):
            raise CpioError(f"cpio member {name!r} runs past the end of the archive")
        padding = archive[name_end:data_start] + archive[data_end : data_end + _pad4(data_end)]
        if any(padding):
            raise CpioError(f"cpio member {name!r}: padding is not zero")
        if name == TRAILER:
            if any(archive[data_end:]):
                raise CpioError("cpio archive has non-zero bytes after the trailer")
            return entries
        entries.append(
            CpioEntry(
                name=name,
                mode=values["mode"],
                data=archive[data_start:data_end],
                rdev_major=values["rdevmajor"],
                rdev_minor=values["rdevminor"],
                nlink=values["nlink"],
                uid=values["uid"],
                gid=values["gid"],
                mtime=values["mtime"],
            )
        )
        offset = data_end + _pad4(data_end)
