"""Exact device-access PCs without a memory hook.

Unicorn stores PC only where it has to; a device callback reads the PC of some earlier
instruction unless a ``UC_HOOK_MEM_READ``/``WRITE`` hook exists, and any such hook sends every
load and store of the guest, RAM included, through the emulator's slow path (docs/unicorn.md:
it was the largest single cost of a Linux boot). QEMU records the host address of a device
access in ``CPUState.mem_io_pc`` just before it calls the device, and its
``cpu_restore_state`` maps a host address back to the guest instruction: Unicorn calls it
itself before every memory hook. Calling it from the device callback gives the same exact PC
and lets the guest's RAM accesses stay on the fast path.

Unicorn exports the function (``cpu_restore_state_aarch64``) but not the structures: the
offsets below are those of the pinned Unicorn release, read from its sources, and are checked
against the running engine (the CPU must point back at its engine) before they are used. Any
other release, or a failed check, leaves the memory hooks in place.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import unicorn
from unicorn.unicorn_py3.unicorn import uclib


@dataclass(frozen=True)
class Layout:
    """Byte offsets in Unicorn's private structures (``uc_struct``, QEMU's ``CPUState``)."""

    uc_cpu: int  # struct uc_struct: CPUState *cpu
    cpu_uc: int  # CPUState: struct uc_struct *uc
    cpu_mem_io_pc: int  # CPUState: uintptr_t mem_io_pc
    uc_tcg: int  # struct uc_struct: TCGContext *tcg_ctx
    tcg_uc: int  # TCGContext: struct uc_struct *uc
    tcg_flush_count: int  # TCGContext: tb_ctx.tb_flush_count
    uc_size_recur_mem: int  # struct uc_struct: int size_recur_mem


#: By Unicorn release: offsetof() compiled against that release's headers (x86-64 hosts).
LAYOUTS: dict[str, Layout] = {
    "2.1.4": Layout(
        uc_cpu=440,
        cpu_uc=33192,
        cpu_mem_io_pc=33144,
        uc_tcg=768,
        tcg_uc=43376,
        tcg_flush_count=43216,
        uc_size_recur_mem=1384,
    ),
}

_RESTORE_CFUNC = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_bool)


def restore_function() -> int | None:
    """The address of Unicorn's exported ``cpu_restore_state`` for AArch64, or None."""
    try:
        func = ctypes.CDLL(uclib._name).cpu_restore_state_aarch64
    except AttributeError:
        return None
    address = ctypes.cast(func, ctypes.c_void_p).value
    return int(address) if address else None


def layout() -> Layout | None:
    """The structure offsets of the running Unicorn on this kind of host, or None."""
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    return LAYOUTS.get(str(getattr(unicorn, "__version__", "")))


def engine_cpu(handle: int, offsets: Layout) -> int | None:
    """The CPUState of engine ``handle`` (a ``uc_engine *`` whose CPU exists: after its first
    mapping), or None when the offsets do not fit this engine."""
    cpu = ctypes.c_void_p.from_address(handle + offsets.uc_cpu).value
    if not cpu or cpu % 8:
        return None
    back = ctypes.c_void_p.from_address(cpu + offsets.cpu_uc).value
    return int(cpu) if back == handle else None


class PcRestore:
    """The pure-Python use of the same mechanism: :meth:`sync` from a device callback."""

    def __init__(self, handle: int | ctypes.c_void_p) -> None:
        if isinstance(handle, ctypes.c_void_p):
            handle = int(handle.value or 0)
        offsets = layout()
        address = restore_function()
        cpu = engine_cpu(handle, offsets) if offsets is not None and address else None
        if offsets is None or address is None or cpu is None:
            raise LookupError("this Unicorn's CPU state is not where this build expects it")
        self.cpu = cpu
        self._mem_io_pc = ctypes.c_size_t.from_address(cpu + offsets.cpu_mem_io_pc)
        self._restore = _RESTORE_CFUNC(address)

    def sync(self) -> None:
        """Make PC that of the instruction whose device access is being dispatched (cleared
        after use, as in mgnative.c: a second callback of a split access keeps it)."""
        host = self._mem_io_pc.value
        if host:
            self._mem_io_pc.value = 0
            self._restore(self.cpu, host, False)
