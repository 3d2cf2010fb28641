"""The native fast path: device accesses, guard aborts and discovery hypercalls decided in C.

A small C library (``mgnative.c``, built at first use with the ``ziglang`` package, see
:mod:`mmioguard.native.build`) whose functions have exactly Unicorn's callback signatures, so
that the common device accesses and hypercalls never enter Python::

    lib, why = load_native()
    if lib is None: ...                                    # keep the Python callbacks; say why
    guard = NativeGuard(lib, granule=4096)                 # one per VM
    vcpu = NativeVcpu(lib, uc._uch, guard, on_intr)        # one per vCPU
    uart = NativePl011(lib)                                # one per PL011 device
    region = NativeRegion(lib, vcpu, base, size, on_read, on_write, pl011=uart)
    uclib.uc_mmio_map(uc._uch, base, size, lib.mmio_read_ptr, region.handle,
                      lib.mmio_write_ptr, region.handle)
    uclib.uc_hook_add(uc._uch, byref(hook), UC_HOOK_INTR, lib.intr_ptr, vcpu.handle, 1, 0)
    uclib.uc_hook_add(uc._uch, byref(hook), UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED,
                      lib.mem_unmapped_ptr, vcpu.handle, 1, 0)

Python stays the source of truth: it mirrors the guard state (enrolled, mapped granules) into
:class:`NativeGuard` and fills the decode cache of :class:`NativeVcpu` after decoding; whatever
C cannot decide goes to the escapes, which take the same arguments as the Python callbacks of
:meth:`mmioguard.hyp.vcpu.Vcpu.mmio_callbacks`.

With :attr:`NativeVcpu.native_abort`, an access the guard refuses is not escaped: C records the
abort Python would inject (:attr:`NativeVcpu.abort`) and stops the emulator; the run loop checks
it and takes it with :meth:`NativeVcpu.take_abort`, which performs the exception entry::

    uc.emu_start(...)                                    # returns: C stopped it
    if vcpu.abort.active:
        elr, esr, far = vcpu.abort.elr, vcpu.abort.esr, vcpu.abort.far
        vcpu.take_abort(TAKE_ENTER)                      # registers put back, entry to EL1

The escapes are called from C through ctypes: they must not raise (an exception would be
printed and the access would read as 0), so wrap them like the backend's callbacks. The objects
here must outlive the Unicorn engine that calls into them: keep them with the engine and close
them (or drop them) only after ``uc_close``.
"""

from __future__ import annotations

import ctypes
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmioguard.native.build import build_native

__all__ = [
    "ABI_VERSION",
    "DECIDE_ALLOW",
    "DECIDE_ESCAPE",
    "DECIDE_REFUSE",
    "KIND_GENERIC",
    "KIND_PL011",
    "TAKE_DROP",
    "TAKE_ENTER",
    "TAKE_RESTORE",
    "Abort",
    "AddressForm",
    "IntrEscape",
    "NativeGuard",
    "NativeLib",
    "NativePl011",
    "NativeRegion",
    "NativeStats",
    "NativeVcpu",
    "ReadEscape",
    "UcLayout",
    "WriteEscape",
    "load_native",
]

ABI_VERSION = 6

KIND_GENERIC = 0
KIND_PL011 = 1

VCPU_FAST_MMIO = 1
VCPU_NATIVE_HVC = 2
VCPU_NATIVE_ABORT = 4

FORM_NONE = 0
FORM_IMM = 1
FORM_REG = 2
EXTEND_UXTW, EXTEND_UXTX, EXTEND_SXTW, EXTEND_SXTX = 2, 3, 6, 7

TAKE_DROP = 0
TAKE_RESTORE = 1
TAKE_ENTER = 2

DECIDE_ESCAPE = 0
DECIDE_ALLOW = 1
DECIDE_REFUSE = 2

PL011_FR_FAST = 1
PL011_DR_FAST = 2

MAX_INFO_FIDS = 8
GUARD_MAX_GRANULES = 1 << 28
CACHE_MAX_ENTRIES = 1 << 22
RING_MIN = 16
RING_MAX = 1 << 20

_U64 = (1 << 64) - 1

#: (pc, offset, size) -> value, as the Python read callbacks.
ReadEscape = Callable[[int, int, int], int]
#: (pc, offset, size, value masked to the size), as the Python write callbacks.
WriteEscape = Callable[[int, int, int, int], None]
#: (interrupt number): 11 is HVC (PC already past it).
IntrEscape = Callable[[int], None]

READ_ESCAPE_CFUNC = ctypes.CFUNCTYPE(
    ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint
)
WRITE_ESCAPE_CFUNC = ctypes.CFUNCTYPE(
    None, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint, ctypes.c_uint64
)
INTR_ESCAPE_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_uint32)


class _Stats(ctypes.Structure):
    _fields_ = [
        ("mmio_native", ctypes.c_uint64),
        ("mmio_forward", ctypes.c_uint64),
        ("mmio_escape", ctypes.c_uint64),
        ("hvc_native", ctypes.c_uint64),
        ("intr_escape", ctypes.c_uint64),
        ("errors", ctypes.c_uint64),
        ("mmio_abort", ctypes.c_uint64),
        ("fault_abort", ctypes.c_uint64),
        ("abort_enter", ctypes.c_uint64),
    ]


class UcLayout(ctypes.Structure):
    """struct mg_uc_layout: byte offsets in Unicorn's uc_struct, CPUState and TCGContext."""

    _fields_ = [
        ("uc_cpu", ctypes.c_uint64),
        ("cpu_uc", ctypes.c_uint64),
        ("cpu_mem_io_pc", ctypes.c_uint64),
        ("uc_tcg", ctypes.c_uint64),
        ("tcg_uc", ctypes.c_uint64),
        ("tcg_flush_count", ctypes.c_uint64),
        ("uc_size_recur_mem", ctypes.c_uint64),
    ]

    @classmethod
    def of(cls, offsets: object) -> UcLayout:
        """The structure from any object with attributes of the fields' names (the
        backend's table of offsets, mmioguard.cpu.pcrestore.Layout)."""
        return cls(*(int(getattr(offsets, name)) for name, *_ in cls._fields_))


class Abort(ctypes.Structure):
    """struct mg_abort: the guard abort C recorded (a live view of the vCPU's record)."""

    _fields_ = [
        ("active", ctypes.c_uint64),
        ("elr", ctypes.c_uint64),
        ("esr", ctypes.c_uint64),
        ("far", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class AddressForm:
    """How C computes an instruction's effective address (``arch.decode.effective_address``):
    ``[Xn|SP, #imm]``, or ``[Xn|SP, Rm, extend #shift]`` when ``rm`` is given. ``rt`` is the
    data register (a load writes it). Registers are raw encodings (``rn`` 31 is SP, ``rm``
    31 is XZR); ``extend`` is the option field (UXTW 2, UXTX/LSL 3, SXTW 6, SXTX 7)."""

    rt: int
    rn: int
    imm: int = 0
    rm: int | None = None
    extend: int = EXTEND_UXTX
    shift: int = 0


@dataclass(frozen=True)
class NativeStats:
    """Counters of one vCPU since creation or :meth:`NativeVcpu.reset_stats`."""

    mmio_native: int  # decided and answered in C
    mmio_forward: int  # decided in C, the register answered by Python (forward or escape)
    mmio_escape: int  # not decided in C: Python's slow path decided
    hvc_native: int  # hypercalls answered in C
    intr_escape: int  # interrupts (hypercalls included) handed to Python
    errors: int  # failed register reads/writes inside a callback
    mmio_abort: int = 0  # device accesses refused in C (a pending abort, no escape)
    fault_abort: int = 0  # faults on unmapped addresses turned into a pending abort in C
    abort_enter: int = 0  # exception entries performed in C


_vp = ctypes.c_void_p
_u64 = ctypes.c_uint64
_int = ctypes.c_int
_uint = ctypes.c_uint

_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "mg_abi_version": (_int, []),
    "mg_stats_size": (_u64, []),
    "mg_hash": (_u64, [_u64, _u64]),
    "mg_guard_create": (_vp, [_uint, _u64, _u64]),
    "mg_guard_destroy": (_int, [_vp]),
    "mg_guard_set_enrolled": (_int, [_vp, _int]),
    "mg_guard_enrolled": (_int, [_vp]),
    "mg_guard_add": (_int, [_vp, _u64]),
    "mg_guard_remove": (_int, [_vp, _u64]),
    "mg_guard_contains": (_int, [_vp, _u64]),
    "mg_guard_clear": (_int, [_vp]),
    "mg_guard_count": (_u64, [_vp]),
    "mg_guard_slots": (_u64, [_vp]),
    "mg_vcpu_create": (_vp, [_vp, _vp, _u64, _vp, _u64]),
    "mg_vcpu_destroy": (_int, [_vp]),
    "mg_vcpu_set_flags": (_int, [_vp, _uint]),
    "mg_vcpu_bind_pc_restore": (_int, [_vp, _vp, _vp, ctypes.c_size_t]),
    "mg_vcpu_set_psci_version": (_int, [_vp, ctypes.c_uint32]),
    "mg_vcpu_flags": (_int, [_vp]),
    "mg_vcpu_set_hypercalls": (
        _int,
        [_vp, _int, _u64, ctypes.POINTER(ctypes.c_uint32), ctypes.c_size_t],
    ),
    "mg_vcpu_cache_put": (_int, [_vp, _u64, _int, _uint, _int]),
    "mg_vcpu_cache_put_form": (
        _int,
        [_vp, _u64, _int, _uint, _int, _uint, _uint, _uint, _uint, _uint, _uint, ctypes.c_int64],
    ),
    "mg_vcpu_cache_get": (
        _int,
        [_vp, _u64, ctypes.POINTER(_int), ctypes.POINTER(_uint), ctypes.POINTER(_int)],
    ),
    "mg_vcpu_cache_get_form": (
        _int,
        [_vp, _u64, *([ctypes.POINTER(_uint)] * 6), ctypes.POINTER(ctypes.c_int64)],
    ),
    "mg_vcpu_cache_remove": (_int, [_vp, _u64]),
    "mg_vcpu_cache_clear": (_int, [_vp]),
    "mg_vcpu_cache_count": (_u64, [_vp]),
    "mg_vcpu_cache_slots": (_u64, [_vp]),
    "mg_vcpu_get_stats": (_int, [_vp, ctypes.POINTER(_Stats), ctypes.c_size_t]),
    "mg_vcpu_reset_stats": (_int, [_vp]),
    "mg_vcpu_abort": (ctypes.POINTER(Abort), [_vp]),
    "mg_vcpu_take_abort": (_int, [_vp, _uint]),
    "mg_pl011_create": (_vp, [ctypes.c_uint32]),
    "mg_pl011_destroy": (_int, [_vp]),
    "mg_pl011_set_mode": (_int, [_vp, _uint, _int]),
    "mg_pl011_set_fr": (_int, [_vp, ctypes.c_uint32]),
    "mg_pl011_get_fr": (ctypes.c_int64, [_vp]),
    "mg_pl011_pending": (_u64, [_vp]),
    "mg_pl011_total": (_u64, [_vp]),
    "mg_pl011_drain": (_u64, [_vp, _vp, _u64]),
    "mg_region_create": (_vp, [_vp, _u64, _u64, _uint, _vp, _vp, _vp]),
    "mg_region_set_forward": (_int, [_vp, _vp, _vp]),
    "mg_region_destroy": (_int, [_vp]),
    "mg_region_decide": (_int, [_vp, _u64, _u64, _uint, _int]),
    "mg_mmio_read": (_u64, [_vp, _u64, _uint, _vp]),
    "mg_mmio_write": (None, [_vp, _u64, _uint, _u64, _vp]),
    "mg_intr": (None, [_vp, ctypes.c_uint32, _vp]),
    "mg_mem_nop": (None, [_vp, _int, _u64, _int, ctypes.c_int64, _vp]),
    "mg_mem_unmapped": (ctypes.c_bool, [_vp, _int, _u64, _int, ctypes.c_int64, _vp]),
}


class NativeError(Exception):
    """A native object could not be created or used (bad arguments, out of memory, in use)."""


def _u64_arg(name: str, value: int) -> int:
    if not 0 <= value <= _U64:
        raise ValueError(f"{name} {value:#x} is not a 64-bit unsigned value")
    return value


def _address(handle: int | ctypes.c_void_p) -> int:
    value = handle.value if isinstance(handle, ctypes.c_void_p) else handle
    if not isinstance(value, int) or value <= 0 or value > _U64:
        raise NativeError(f"not a valid C pointer: {handle!r}")
    return value


class NativeLib:
    """The loaded library: its functions (``fn``) and the callback addresses for Unicorn."""

    def __init__(self, dll: ctypes.CDLL, path: Path, ubsan: bool) -> None:
        self.dll = dll
        self.path = path
        self.ubsan = ubsan
        self.fn: dict[str, Any] = self.bind(_PROTOTYPES)
        version = int(self.fn["mg_abi_version"]())
        if version != ABI_VERSION:
            raise NativeError(f"{path}: ABI version {version}, expected {ABI_VERSION}")
        size = int(self.fn["mg_stats_size"]())
        if size != ctypes.sizeof(_Stats):
            raise NativeError(
                f"{path}: struct mg_stats is {size} bytes, expected {ctypes.sizeof(_Stats)}"
            )
        #: uc_cb_mmio_read_t / uc_cb_mmio_write_t for uc_mmio_map (user data: a region).
        self.mmio_read_ptr = self.pointer("mg_mmio_read")
        self.mmio_write_ptr = self.pointer("mg_mmio_write")
        #: uc_cb_hookintr_t for UC_HOOK_INTR (user data: a vCPU).
        self.intr_ptr = self.pointer("mg_intr")
        #: A no-op uc_cb_hookmem_t for the PC synchronisation hooks (no user data).
        self.mem_nop_ptr = self.pointer("mg_mem_nop")
        #: uc_cb_eventmem_t for UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED (user
        #: data: a vCPU): with native aborts, records the guard's abort of a fault it decides.
        self.mem_unmapped_ptr = self.pointer("mg_mem_unmapped")

    def bind(self, prototypes: dict[str, tuple[Any, list[Any]]]) -> dict[str, Any]:
        """The library's functions with their ctypes prototypes set (for modules of the
        library that declare their own, like :mod:`mmioguard.native.timer`)."""
        found: dict[str, Any] = {}
        for name, (restype, argtypes) in prototypes.items():
            func = getattr(self.dll, name)
            func.restype = restype
            func.argtypes = argtypes
            found[name] = func
        return found

    def pointer(self, name: str) -> int:
        """The address of a C function, to hand Unicorn as a callback."""
        value = ctypes.cast(getattr(self.dll, name), ctypes.c_void_p).value
        if not value:
            raise NativeError(f"{self.path}: no address for {name}")
        return int(value)

    def hash(self, key: int, seed: int) -> int:
        """The hash the tables use (for tests that need colliding keys)."""
        return int(self.fn["mg_hash"](_u64_arg("key", key), _u64_arg("seed", seed)))


class _Owned:
    """A C object owned by one Python object: freed by :meth:`close` (or when collected)."""

    _destroy_name = ""
    _what = ""

    def __init__(self, lib: NativeLib, ptr: int | None, what: str) -> None:
        if not ptr:
            raise NativeError(f"cannot create the native {what} (invalid arguments or no memory)")
        self.lib = lib
        self._ptr: int | None = ptr

    @property
    def handle(self) -> int:
        """The C object's address (the user data to give Unicorn)."""
        if self._ptr is None:
            raise NativeError(f"the native {self._what} is closed")
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Free the C object. Fails while dependent objects are open (regions of a vCPU...)."""
        ptr = self._ptr
        if ptr is None:
            return
        if int(self.lib.fn[self._destroy_name](ptr)) != 0:
            raise NativeError(f"the native {self._what} is still in use")
        self._ptr = None
        self._closed_hook()

    def _closed_hook(self) -> None:
        pass

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # References keep dependents' targets alive, so by now nothing uses this object.
        # No module globals here: they may already be gone at interpreter exit.
        try:  # noqa: SIM105
            self.close()
        except Exception:
            pass


class NativeGuard(_Owned):
    """The guard state of one VM as C sees it: a mirror of :class:`~mmioguard.hyp.guard.GuardState`.

    Granule numbers are IPA >> log2(granule), as in ``GuardState.mapped``.
    """

    _destroy_name = "mg_guard_destroy"
    _what = "guard"

    def __init__(
        self, lib: NativeLib, granule: int, capacity: int = 1 << 22, seed: int | None = None
    ) -> None:
        if granule <= 0 or granule & (granule - 1) or granule.bit_length() > 64:
            raise ValueError(f"granule {granule:#x} is not a power of two below 2^64")
        if not 0 < capacity <= GUARD_MAX_GRANULES:
            raise ValueError(f"capacity {capacity} is not in 1..{GUARD_MAX_GRANULES}")
        self.granule = granule
        self.shift = granule.bit_length() - 1
        self.capacity = capacity
        s = secrets.randbits(64) if seed is None else _u64_arg("seed", seed)
        fn = lib.fn
        super().__init__(lib, fn["mg_guard_create"](self.shift, capacity, s), "guard")
        self._add = fn["mg_guard_add"]
        self._remove = fn["mg_guard_remove"]
        self._contains = fn["mg_guard_contains"]

    @property
    def enrolled(self) -> bool:
        return int(self.lib.fn["mg_guard_enrolled"](self.handle)) == 1

    @enrolled.setter
    def enrolled(self, value: bool) -> None:
        self.lib.fn["mg_guard_set_enrolled"](self.handle, 1 if value else 0)

    def add(self, granule: int) -> bool:
        """Map a granule number: True if it was not mapped. NativeError when full."""
        result = int(self._add(self.handle, _u64_arg("granule", granule)))
        if result < 0:
            raise NativeError(
                f"the native guard is full ({self.capacity} granules) or out of memory"
            )
        return result == 1

    def remove(self, granule: int) -> bool:
        """Unmap a granule number: True if it was mapped."""
        return int(self._remove(self.handle, _u64_arg("granule", granule))) == 1

    def __contains__(self, granule: object) -> bool:
        if not isinstance(granule, int) or not 0 <= granule <= _U64:
            return False
        return int(self._contains(self.handle, granule)) == 1

    def contains(self, granule: int) -> bool:
        return granule in self

    def clear(self) -> None:
        """Forget every mapping (enrollment is separate: set ``enrolled``)."""
        self.lib.fn["mg_guard_clear"](self.handle)

    def reset(self) -> None:
        """As ``GuardState.reset``: not enrolled, nothing mapped."""
        self.enrolled = False
        self.clear()

    def __len__(self) -> int:
        return int(self.lib.fn["mg_guard_count"](self.handle))

    @property
    def count(self) -> int:
        return len(self)

    @property
    def slots(self) -> int:
        return int(self.lib.fn["mg_guard_slots"](self.handle))


class NativeVcpu(_Owned):
    """One vCPU's C context: its engine, its guard, the decode cache and the interrupt escape.

    ``intr_escape(intno)`` gets every interrupt C does not answer (all of them unless
    :meth:`set_native_hvc` is on, and then every hypercall but the discovery ones).
    """

    _destroy_name = "mg_vcpu_destroy"
    _what = "vCPU"

    def __init__(
        self,
        lib: NativeLib,
        uc_handle: int | ctypes.c_void_p,
        guard: NativeGuard,
        intr_escape: IntrEscape,
        cache_capacity: int = 65536,
        seed: int | None = None,
    ) -> None:
        if not 0 < cache_capacity <= CACHE_MAX_ENTRIES:
            raise ValueError(f"cache capacity {cache_capacity} is not in 1..{CACHE_MAX_ENTRIES}")
        self.guard = guard  # keeps the guard alive as long as this vCPU
        self._intr_cb = INTR_ESCAPE_CFUNC(intr_escape)
        s = secrets.randbits(64) if seed is None else _u64_arg("seed", seed)
        fn = lib.fn
        ptr = fn["mg_vcpu_create"](
            _address(uc_handle),
            guard.handle,
            cache_capacity,
            ctypes.cast(self._intr_cb, ctypes.c_void_p),
            s,
        )
        super().__init__(lib, ptr, "vCPU")
        self.cache_capacity = cache_capacity
        self._put = fn["mg_vcpu_cache_put"]
        self._put_form = fn["mg_vcpu_cache_put_form"]
        self._take = fn["mg_vcpu_take_abort"]
        self._fast = ctypes.c_int()
        self._size = ctypes.c_uint()
        self._write = ctypes.c_int()
        self._stats = _Stats()
        record = fn["mg_vcpu_abort"](self.handle)
        if not record:
            raise NativeError("no abort record for the native vCPU")
        #: The guard abort C recorded, read in place (no call): ``active``, ``elr``, ``esr``,
        #: ``far``. Valid until :meth:`close`, then an inactive copy.
        self.abort: Abort = record.contents

    def set_psci_version(self, version: int) -> None:
        """Answer PSCI_VERSION in C with ``version`` (0: leave it to Python)."""
        if not 0 <= version <= 0xFFFF_FFFF:
            raise ValueError(f"PSCI version {version:#x} is not a 32-bit value")
        if self.lib.fn["mg_vcpu_set_psci_version"](self.handle, version) != 0:
            raise NativeError("cannot set the PSCI version of the native vCPU")

    def bind_pc_restore(self, restore: int, layout: UcLayout) -> bool:
        """Let the device callbacks work out exact PCs themselves (mgnative.h,
        mg_vcpu_bind_pc_restore): ``restore`` is the address of Unicorn's cpu_restore_state,
        ``layout`` where Unicorn keeps its structures. False when C finds they do not fit."""
        rc = self.lib.fn["mg_vcpu_bind_pc_restore"](
            self.handle, _address(restore), ctypes.byref(layout), ctypes.sizeof(layout)
        )
        return int(rc) == 0

    def _closed_hook(self) -> None:
        self.abort = Abort()  # the C record is freed: never read it again

    @property
    def intr_ptr(self) -> int:
        """The UC_HOOK_INTR callback to register with this vCPU's :attr:`handle` as user data."""
        return self.lib.intr_ptr

    # -- flags ------------------------------------------------------------------------------

    @property
    def flags(self) -> int:
        return int(self.lib.fn["mg_vcpu_flags"](self.handle))

    def _set_flag(self, bit: int, on: bool) -> None:
        flags = self.flags
        flags = flags | bit if on else flags & ~bit
        if int(self.lib.fn["mg_vcpu_set_flags"](self.handle, flags)) != 0:
            raise NativeError(f"cannot set vCPU flags {flags:#x}")

    @property
    def fast_mmio(self) -> bool:
        """Decide device accesses in C (on by default). Off: every access escapes (tracing)."""
        return bool(self.flags & VCPU_FAST_MMIO)

    @fast_mmio.setter
    def fast_mmio(self, on: bool) -> None:
        self._set_flag(VCPU_FAST_MMIO, on)

    @property
    def native_hvc(self) -> bool:
        """Answer SMCCC_VERSION, the KVM UID, KVM_FEATURES and INFO in C (off by default)."""
        return bool(self.flags & VCPU_NATIVE_HVC)

    @native_hvc.setter
    def native_hvc(self, on: bool) -> None:
        self._set_flag(VCPU_NATIVE_HVC, on)

    @property
    def native_abort(self) -> bool:
        """Record the guard's abort in C for a fast access it refuses, and for a fault on an
        unmapped address it can decide (the ``mem_unmapped_ptr`` hook), instead of escaping
        (off by default; only while the guard enforces and nothing is traced)."""
        return bool(self.flags & VCPU_NATIVE_ABORT)

    @native_abort.setter
    def native_abort(self, on: bool) -> None:
        self._set_flag(VCPU_NATIVE_ABORT, on)

    def set_hypercalls(self, features: int | None, info_fids: Sequence[int] = ()) -> None:
        """What the native hypercalls answer: the KVM feature bitmap (None: Python answers
        VENDOR_HYP_KVM_FEATURES) and the function IDs of the guard's INFO call (x0 = granule)."""
        if len(info_fids) > MAX_INFO_FIDS:
            raise ValueError(f"at most {MAX_INFO_FIDS} INFO function IDs")
        for fid in info_fids:
            if not 0 <= fid <= 0xFFFF_FFFF:
                raise ValueError(f"function ID {fid:#x} is not 32-bit")
        fids = (ctypes.c_uint32 * max(1, len(info_fids)))(*info_fids)
        have = features is not None
        bitmap = _u64_arg("features", features) if features is not None else 0
        result = self.lib.fn["mg_vcpu_set_hypercalls"](
            self.handle, 1 if have else 0, bitmap, fids, len(info_fids)
        )
        if int(result) != 0:
            raise NativeError("cannot set the native hypercalls")

    # -- decode cache -----------------------------------------------------------------------

    def cache_put(
        self, pc: int, fast: bool, size: int, is_write: bool, form: AddressForm | None = None
    ) -> int:
        """Record what the instruction at ``pc`` is (``Insn.fast``, ``Insn.size``,
        ``Insn.is_write``) and how to compute its effective address (without ``form``, C lets
        Python decide every access by it once the guard is enrolled). A non-fast entry may
        carry any size (stored as 0 above 8). Returns 1 inserted, 0 replaced, 2 inserted after
        emptying the full cache."""
        if not fast and not 0 <= size <= 8:
            size = 0
        w = 1 if is_write else 0
        f = 1 if fast else 0
        if form is None:
            result = int(self._put(self.handle, _u64_arg("pc", pc), f, size, w))
        else:
            mode = FORM_IMM if form.rm is None else FORM_REG
            imm = form.imm if form.rm is None else 0
            if not -(1 << 63) <= imm < 1 << 63:
                raise ValueError(f"offset {imm} is not a signed 64-bit value")
            result = int(
                self._put_form(
                    self.handle,
                    _u64_arg("pc", pc),
                    f,
                    size,
                    w,
                    mode,
                    form.rt,
                    form.rn,
                    form.rm or 0,
                    form.extend,
                    form.shift,
                    imm,
                )
            )
        if result < 0:
            raise ValueError(f"invalid decode-cache entry: fast={fast} size={size} {form}")
        return result

    def cache_form(self, pc: int) -> AddressForm | None:
        """The address form stored for ``pc`` (None: absent, or stored without one)."""
        vals = [ctypes.c_uint() for _ in range(6)]
        imm = ctypes.c_int64()
        found = self.lib.fn["mg_vcpu_cache_get_form"](
            self.handle, _u64_arg("pc", pc), *[ctypes.byref(x) for x in vals], ctypes.byref(imm)
        )
        mode, rt, rn, rm, extend, shift = (x.value for x in vals)
        if int(found) != 1 or mode == FORM_NONE:
            return None
        if mode == FORM_IMM:
            return AddressForm(rt, rn, imm.value, None, extend, shift)
        return AddressForm(rt, rn, 0, rm, extend, shift)

    def cache_get(self, pc: int) -> tuple[bool, int, bool] | None:
        """(fast, size, is_write) for ``pc``, or None."""
        found = self.lib.fn["mg_vcpu_cache_get"](
            self.handle,
            _u64_arg("pc", pc),
            ctypes.byref(self._fast),
            ctypes.byref(self._size),
            ctypes.byref(self._write),
        )
        if int(found) != 1:
            return None
        return bool(self._fast.value), int(self._size.value), bool(self._write.value)

    def cache_remove(self, pc: int) -> bool:
        return int(self.lib.fn["mg_vcpu_cache_remove"](self.handle, _u64_arg("pc", pc))) == 1

    def cache_clear(self) -> None:
        self.lib.fn["mg_vcpu_cache_clear"](self.handle)

    @property
    def cache_count(self) -> int:
        return int(self.lib.fn["mg_vcpu_cache_count"](self.handle))

    @property
    def cache_slots(self) -> int:
        return int(self.lib.fn["mg_vcpu_cache_slots"](self.handle))

    # -- counters ---------------------------------------------------------------------------

    def stats(self) -> NativeStats:
        s = self._stats
        if (
            int(self.lib.fn["mg_vcpu_get_stats"](self.handle, ctypes.byref(s), ctypes.sizeof(s)))
            != 0
        ):
            raise NativeError("cannot read the native counters")
        return NativeStats(
            s.mmio_native,
            s.mmio_forward,
            s.mmio_escape,
            s.hvc_native,
            s.intr_escape,
            s.errors,
            s.mmio_abort,
            s.fault_abort,
            s.abort_enter,
        )

    def reset_stats(self) -> None:
        self.lib.fn["mg_vcpu_reset_stats"](self.handle)

    # -- guard aborts decided in C ---------------------------------------------------------

    def take_abort(self, mode: int) -> int:
        """Take the recorded abort: TAKE_DROP forgets it, TAKE_RESTORE puts back the register
        the aborted load wrote, TAKE_ENTER also performs the exception entry. Returns 1 done,
        2 registers put back but not entered (a state C does not model), 0 nothing pending."""
        result = int(self._take(self.handle, mode))
        if result < 0:
            raise NativeError(f"cannot take the native abort (mode {mode}): error {result}")
        return result


class NativePl011(_Owned):
    """What C may answer for one PL011 UART: the UARTFR value and the UARTDR output ring.

    Shared by the regions of every vCPU for that UART. Python keeps it in step with the model:
    ``fr`` after anything that changes UARTFR (received input, DR reads, reset), and
    ``dr_fast`` off while a write to DR does more than append a byte to the output (loopback,
    a pending TX interrupt acknowledgement). Python drains the ring before it handles any other
    access of the UART and whenever the vCPU stops.
    """

    _destroy_name = "mg_pl011_destroy"
    _what = "PL011 state"

    def __init__(
        self,
        lib: NativeLib,
        ring_capacity: int = 4096,
        fr: int = 0,
        fr_fast: bool = True,
        dr_fast: bool = True,
        flush_byte: int | None = 0x0A,
    ) -> None:
        cap = ring_capacity
        if not RING_MIN <= cap <= RING_MAX or cap & (cap - 1):
            raise ValueError(f"ring capacity {cap} is not a power of two in {RING_MIN}..{RING_MAX}")
        super().__init__(lib, lib.fn["mg_pl011_create"](cap), "PL011 state")
        self.ring_capacity = cap
        self._buf = (ctypes.c_uint8 * cap)()
        self._drain = lib.fn["mg_pl011_drain"]
        self._pending = lib.fn["mg_pl011_pending"]
        self._set_fr = lib.fn["mg_pl011_set_fr"]
        self.fr = fr
        self.set_mode(fr_fast, dr_fast, flush_byte)

    def set_mode(self, fr_fast: bool, dr_fast: bool, flush_byte: int | None = 0x0A) -> None:
        """What C answers; ``flush_byte`` (a line end) is handed to Python instead of being
        buffered, so output appears per line (None: only a full ring goes to Python)."""
        if flush_byte is not None and not 0 <= flush_byte <= 255:
            raise ValueError(f"flush byte {flush_byte} is not a byte")
        modes = (PL011_FR_FAST if fr_fast else 0) | (PL011_DR_FAST if dr_fast else 0)
        byte = -1 if flush_byte is None else flush_byte
        if int(self.lib.fn["mg_pl011_set_mode"](self.handle, modes, byte)) != 0:
            raise NativeError("cannot set the PL011 mode")
        self.fr_fast = fr_fast
        self.dr_fast = dr_fast
        self.flush_byte = flush_byte

    @property
    def fr(self) -> int:
        return int(self.lib.fn["mg_pl011_get_fr"](self.handle))

    @fr.setter
    def fr(self, value: int) -> None:
        if not 0 <= value <= 0xFFFF_FFFF:
            raise ValueError(f"UARTFR value {value:#x} is not 32-bit")
        self._set_fr(self.handle, value)

    @property
    def pending(self) -> int:
        """Bytes written by the guest and not drained yet."""
        return int(self._pending(self.handle))

    @property
    def total(self) -> int:
        """Bytes ever buffered in C."""
        return int(self.lib.fn["mg_pl011_total"](self.handle))

    def drain(self) -> bytes:
        """Take every buffered byte, oldest first."""
        n = int(self._drain(self.handle, ctypes.addressof(self._buf), self.ring_capacity))
        return bytes(self._buf[:n]) if n else b""


class NativeRegion(_Owned):
    """One device region of one vCPU: the user data of ``uc_mmio_map`` with
    :attr:`mmio_read_ptr` / :attr:`mmio_write_ptr`.

    ``read_escape``/``write_escape`` get every access C does not decide, and (unless
    ``forward_read``/``forward_write`` are given) every access the guard allowed whose register
    C does not answer: the arguments of the Python callbacks, so ``Vcpu.mmio_callbacks``'
    ``fast_read``/``fast_write`` fit as they are. The forwards, when given, get only accesses
    the guard already allowed: they may go straight to the device model.
    """

    _destroy_name = "mg_region_destroy"
    _what = "region"

    def __init__(
        self,
        lib: NativeLib,
        vcpu: NativeVcpu,
        base: int,
        size: int,
        read_escape: ReadEscape,
        write_escape: WriteEscape,
        pl011: NativePl011 | None = None,
        forward_read: ReadEscape | None = None,
        forward_write: WriteEscape | None = None,
    ) -> None:
        _u64_arg("base", base)
        if not 0 < size <= _U64 - base + 1:
            raise ValueError(f"region {base:#x}+{size:#x} is empty or wraps")
        self.vcpu = vcpu  # keep the vCPU (and its guard) alive
        self.pl011 = pl011
        self.base = base
        self.size = size
        self.kind = KIND_PL011 if pl011 is not None else KIND_GENERIC
        self._callbacks: list[Any] = [
            READ_ESCAPE_CFUNC(read_escape),
            WRITE_ESCAPE_CFUNC(write_escape),
        ]
        ptr = lib.fn["mg_region_create"](
            vcpu.handle,
            base,
            size,
            self.kind,
            pl011.handle if pl011 is not None else None,
            ctypes.cast(self._callbacks[0], ctypes.c_void_p),
            ctypes.cast(self._callbacks[1], ctypes.c_void_p),
        )
        super().__init__(lib, ptr, "region")
        if forward_read is not None or forward_write is not None:
            self.set_forward(forward_read, forward_write)

    def set_forward(self, read: ReadEscape | None, write: WriteEscape | None) -> None:
        """Where allowed accesses go when C does not answer the register (None: the escape)."""
        rcb = READ_ESCAPE_CFUNC(read) if read is not None else None
        wcb = WRITE_ESCAPE_CFUNC(write) if write is not None else None
        result = self.lib.fn["mg_region_set_forward"](
            self.handle,
            ctypes.cast(rcb, ctypes.c_void_p) if rcb is not None else None,
            ctypes.cast(wcb, ctypes.c_void_p) if wcb is not None else None,
        )
        if int(result) != 0:
            raise NativeError("cannot set the region's forwards")
        # Old callbacks stay referenced: C may be inside one of them right now.
        self._callbacks += [cb for cb in (rcb, wcb) if cb is not None]

    @property
    def mmio_read_ptr(self) -> int:
        return self.lib.mmio_read_ptr

    @property
    def mmio_write_ptr(self) -> int:
        return self.lib.mmio_write_ptr

    def decide(self, pc: int, offset: int, size: int, is_write: bool) -> bool:
        """The fast-path decision alone (what the callbacks do before answering): True when C
        lets the access through."""
        return self.judge(pc, offset, size, is_write) == DECIDE_ALLOW

    def judge(self, pc: int, offset: int, size: int, is_write: bool) -> int:
        """DECIDE_ALLOW, DECIDE_REFUSE (C would record an abort) or DECIDE_ESCAPE."""
        result = self.lib.fn["mg_region_decide"](
            self.handle,
            _u64_arg("pc", pc),
            _u64_arg("offset", offset),
            size,
            1 if is_write else 0,
        )
        return int(result)

    # PL011 conveniences (the state may be shared with other vCPUs' regions).

    def _uart(self) -> NativePl011:
        if self.pl011 is None:
            raise NativeError("not a PL011 region")
        return self.pl011

    @property
    def fr(self) -> int:
        return self._uart().fr

    @fr.setter
    def fr(self, value: int) -> None:
        self._uart().fr = value

    def drain(self) -> bytes:
        return self._uart().drain()


_loaded: dict[tuple[bool, str | None], tuple[NativeLib | None, str]] = {}


def load_native(ubsan: bool = False, cache_dir: Path | None = None) -> tuple[NativeLib | None, str]:
    """Build (at first use, cached) and load the native library.

    Returns ``(lib, how)``, or ``(None, why)`` when it cannot be had: no ziglang, a compiler
    error, an unsupported host, ``MMIOGUARD_NATIVE=0``. Never raises. ``ubsan`` selects the
    variant built with ``-fsanitize=undefined -fsanitize-trap=undefined`` (for CI). The result
    is remembered for the process.
    """
    if os.environ.get("MMIOGUARD_NATIVE", "").strip() in ("0", "off", "no", "false"):
        return None, "disabled by MMIOGUARD_NATIVE"
    key = (ubsan, str(cache_dir) if cache_dir is not None else None)
    done = _loaded.get(key)
    if done is not None:
        return done
    try:
        path, how = build_native(ubsan=ubsan, cache_dir=cache_dir)
        if path is None:
            result: tuple[NativeLib | None, str] = (None, how)
        else:
            result = (NativeLib(ctypes.CDLL(str(path)), path, ubsan), how)
    except Exception as exc:  # the promise is "no exception escapes"
        result = (None, f"cannot load the native library: {type(exc).__name__}: {exc}")
    _loaded[key] = result
    return result
