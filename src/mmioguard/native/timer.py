"""The native guest clock and virtual timer (``mgtimer.c``): wrappers for the CPU backend.

The C side answers MRS/MSR of the timer registers and counts instructions in a block hook that
stops the emulator at the first block after the timer's deadline (or after the guest unmasks
IRQs, when asked); :mod:`mmioguard.hyp.timer` is the reference model and reads this state back
after every stop.
"""

from __future__ import annotations

import ctypes
from typing import Any

from mmioguard.hyp.timer import ClockConfig, ClockMode
from mmioguard.native import NativeError, NativeLib

_vp = ctypes.c_void_p
_u64 = ctypes.c_uint64
_int = ctypes.c_int

_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "mg_clock_create": (_vp, [_int, ctypes.c_uint]),
    "mg_clock_destroy": (_int, [_vp]),
    "mg_clock_now": (_u64, [_vp]),
    "mg_clock_icount": (_u64, [_vp]),
    "mg_clock_skip_to": (_int, [_vp, _u64]),
    "mg_clock_reset": (_int, [_vp]),
    "mg_timer_create": (_vp, [_vp, _vp]),
    "mg_timer_destroy": (_int, [_vp]),
    "mg_timer_get": (_int, [_vp, ctypes.POINTER(_u64)]),
    "mg_timer_set": (_int, [_vp, _u64, _u64]),
    "mg_timer_control": (_int, [_vp, _int, _int]),
    "mg_timer_request_stop": (_int, [_vp]),
    "mg_timer_set_mpidr": (_int, [_vp, _u64]),
    "mg_timer_set_block_hook": (_int, [_vp, _int]),
    "mg_timer_icache": (_int, [_vp, ctypes.POINTER(_u64)]),
}

STOP_DEADLINE = 1
STOP_UNMASKED = 2
STOP_REQUESTED = 4
STOP_NEED_BLOCK_HOOK = 8
STOP_ICACHE = 16

# What mg_timer_icache reports.
ICACHE_LINE = 1
ICACHE_ALL = 2


class NativeClock:
    """The VM's counter in C (a :class:`~mmioguard.hyp.timer.GuestClock`)."""

    def __init__(self, lib: NativeLib, config: ClockConfig) -> None:
        self.lib = lib
        self.config = config
        self.fn = lib.bind(_PROTOTYPES)
        mode = 1 if config.mode is ClockMode.ICOUNT else 0
        ptr = self.fn["mg_clock_create"](mode, config.shift)
        if not ptr:
            raise NativeError("cannot create the native clock")
        self.handle: int = int(ptr)
        self._now = self.fn["mg_clock_now"]
        #: Unicorn callbacks (user data: a NativeTimer's handle).
        self.mrs_ptr = lib.pointer("mg_timer_mrs")
        self.msr_ptr = lib.pointer("mg_timer_msr")
        self.block_ptr = lib.pointer("mg_timer_block")
        self.sys_ptr = lib.pointer("mg_timer_sys")

    def now(self) -> int:
        return int(self._now(self.handle))

    def icount(self) -> int:
        return int(self.fn["mg_clock_icount"](self.handle))

    def skip_to(self, ticks: int) -> None:
        if self.config.mode is ClockMode.ICOUNT:
            self.fn["mg_clock_skip_to"](self.handle, max(ticks, 0))

    def add_instructions(self, count: int) -> None:
        """The block hooks count instructions themselves."""

    def reset(self) -> None:
        self.fn["mg_clock_reset"](self.handle)


class NativeTimer:
    """One vCPU's CNTV_CTL/CNTV_CVAL in C; keep it alive as long as its Unicorn engine."""

    def __init__(self, clock: NativeClock, uc_handle: Any) -> None:
        self.clock = clock
        fn = clock.fn
        ptr = fn["mg_timer_create"](uc_handle, clock.handle)
        if not ptr:
            raise NativeError("cannot create the native timer")
        self.handle: int = int(ptr)
        self._get = fn["mg_timer_get"]
        self._set = fn["mg_timer_set"]
        self._control = fn["mg_timer_control"]
        self._request_stop = fn["mg_timer_request_stop"]
        self._out = (_u64 * 3)()

    def get(self) -> tuple[int, int, int]:
        """(CNTV_CTL, CNTV_CVAL, why the hooks last stopped the emulator); clears the last."""
        out = self._out
        self._get(self.handle, out)
        return out[0], out[1], out[2]

    def set(self, ctl: int, cval: int) -> None:
        self._set(self.handle, ctl, cval)

    def control(self, armed: bool, watch_unmask: bool) -> None:
        self._control(self.handle, 1 if armed else 0, 1 if watch_unmask else 0)

    def set_block_hook(self, installed: bool) -> None:
        self.clock.fn["mg_timer_set_block_hook"](self.handle, 1 if installed else 0)

    def set_mpidr(self, mpidr: int) -> None:
        self.clock.fn["mg_timer_set_mpidr"](self.handle, mpidr)

    def request_stop(self) -> None:
        self._request_stop(self.handle)

    def icache(self) -> int | None:
        """The instruction cache invalidation behind ``STOP_ICACHE`` (cleared): IC IVAU's
        address, or None for all (IC IALLU, IALLUIS)."""
        va = _u64()
        kind = self.clock.fn["mg_timer_icache"](self.handle, ctypes.byref(va))
        return int(va.value) if kind == ICACHE_LINE else None
