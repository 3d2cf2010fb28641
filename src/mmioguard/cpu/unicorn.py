"""The Unicorn CPU backend: the only module that imports the emulator.

The hot callbacks (device accesses, HVC) are registered with Unicorn as bare ctypes function
pointers rather than through the binding's wrappers, and read registers through preallocated
ctypes buffers: the binding's generic layers cost more than the emulator's own work per access
(see docs/unicorn.md).
"""

from __future__ import annotations

import ctypes
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM
from unicorn import arm64_const as A
from unicorn import unicorn_const as C
from unicorn.unicorn_py3.unicorn import (
    HOOK_INTR_CFUNC,
    HOOK_MEM_INVALID_CFUNC,
    MMIO_READ_CFUNC,
    MMIO_WRITE_CFUNC,
    Uc,
    UcError,
    uclib,
)

from mmioguard import native as mgnative
from mmioguard.abi.profiles import GuardOp
from mmioguard.abi.smccc import PSCI_VERSION_1_1
from mmioguard.arch.decode import AddrMode
from mmioguard.arch.exception import BOOT_PSTATE
from mmioguard.cpu import pcrestore
from mmioguard.cpu.pcrestore import PcRestore
from mmioguard.hyp.backend import Fault, MmioRead, MmioWrite, Reg
from mmioguard.hyp.config import GuardMode
from mmioguard.hyp.exits import GuestStop
from mmioguard.hyp.timer import TIMER_REGS, ClockMode
from mmioguard.native import NativeGuard, NativeLib, NativePl011, NativeRegion, NativeVcpu
from mmioguard.native.timer import (
    STOP_ICACHE,
    STOP_NEED_BLOCK_HOOK,
    NativeClock,
    NativeTimer,
)

if TYPE_CHECKING:
    from mmioguard.hyp.memory import MemorySlot
    from mmioguard.hyp.vcpu import Insn, Vcpu

# System registers without a Unicorn constant: (crn, crm, op0, op1, op2).
_CP = {
    Reg.SPSR_EL1: (4, 0, 3, 0, 0),
    Reg.SCTLR_EL1: (1, 0, 3, 0, 0),
    Reg.TCR_EL1: (2, 0, 3, 0, 2),
    Reg.MPIDR_EL1: (0, 0, 3, 0, 5),
}
_SCR_EL3 = (1, 1, 3, 6, 0)
_TPIDR_EL1 = (13, 0, 3, 0, 4)
# SCR_EL3.HCE makes HVC reach the hook as a hypercall (number 11, PC past it); RW keeps EL1
# in AArch64. NS must stay clear: with it EL2 counts as present and EL1 drops to AArch32.
_SCR_HCE_RW = (1 << 8) | (1 << 10)


def _is_icache_invalidation(crn: int, crm: int, op0: int, op1: int, op2: int) -> bool:
    """IC IALLUIS, IC IALLU or IC IVAU (what ``mg_timer_sys`` looks for)."""
    if op0 != 1 or crn != 7:
        return False
    if op1 == 0 and op2 == 0:
        return crm in (1, 5)
    return op1 == 3 and crm == 5 and op2 == 1


_UC = {
    Reg.PC: A.UC_ARM64_REG_PC,
    Reg.SP: A.UC_ARM64_REG_SP,
    Reg.SP_EL0: A.UC_ARM64_REG_SP_EL0,
    Reg.SP_EL1: A.UC_ARM64_REG_SP_EL1,
    Reg.PSTATE: A.UC_ARM64_REG_PSTATE,
    Reg.ELR_EL1: A.UC_ARM64_REG_ELR_EL1,
    Reg.ESR_EL1: A.UC_ARM64_REG_ESR_EL1,
    Reg.FAR_EL1: A.UC_ARM64_REG_FAR_EL1,
    Reg.VBAR_EL1: A.UC_ARM64_REG_VBAR_EL1,
    Reg.TTBR0_EL1: A.UC_ARM64_REG_TTBR0_EL1,
    Reg.TTBR1_EL1: A.UC_ARM64_REG_TTBR1_EL1,
    Reg.MAIR_EL1: A.UC_ARM64_REG_MAIR_EL1,
}
_X = [A.UC_ARM64_REG_X0 + i for i in range(29)] + [A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30]
_V0 = A.UC_ARM64_REG_Q0

# Never reached as a PC (not 4-aligned): run() stops only when asked to.
_NO_UNTIL = 0xFFFF_FFFF_FFFF_FFFD

_FAULTS = {
    C.UC_ERR_READ_UNMAPPED: Fault.READ,
    C.UC_ERR_WRITE_UNMAPPED: Fault.WRITE,
    C.UC_ERR_FETCH_UNMAPPED: Fault.FETCH,
    C.UC_ERR_FETCH_PROT: Fault.FETCH,
    C.UC_ERR_READ_PROT: Fault.READ,
    C.UC_ERR_WRITE_PROT: Fault.WRITE,
}


# Where devices may live: the hypervisor needs an exact PC for accesses in this range.
DEVICE_SPACE = (0x0800_0000, 0x4000_0000)


def _raw_reg_read() -> Any:
    """uc_reg_read without the binding's argument conversions (a third of the cost)."""
    fn = ctypes.CDLL(uclib._name).uc_reg_read
    fn.restype = ctypes.c_int
    return fn


def _raw_reg_write() -> Any:
    fn = ctypes.CDLL(uclib._name).uc_reg_write
    fn.restype = ctypes.c_int
    return fn


class BackendError(Exception):
    """The emulator failed in a way that is not a guest access fault."""


class _CpReg(ctypes.Structure):
    """uc_arm64_cp_reg: a system register by encoding, for the raw uc_reg_read/write calls."""

    _fields_ = [
        ("crn", ctypes.c_uint32),
        ("crm", ctypes.c_uint32),
        ("op0", ctypes.c_uint32),
        ("op1", ctypes.c_uint32),
        ("op2", ctypes.c_uint32),
        ("val", ctypes.c_uint64),
    ]


class _Batch:
    """A preallocated uc_reg_read_batch/uc_reg_write_batch call for a fixed register list."""

    def __init__(self, handle: Any, regs: Sequence[int]) -> None:
        n = len(regs)
        self.handle = handle
        self.n = n
        self.ids = (ctypes.c_int * n)(*regs)
        self.vals = (ctypes.c_uint64 * n)()
        self.ptrs = (ctypes.c_void_p * n)(
            *[ctypes.addressof(self.vals) + 8 * i for i in range(n)]
        )
        lib = ctypes.CDLL(uclib._name)
        self._read = lib.uc_reg_read_batch
        self._write = lib.uc_reg_write_batch

    def read(self) -> list[int]:
        self._read(self.handle, self.ids, self.ptrs, self.n)
        return self.vals[:]

    def write(self, values: Sequence[int]) -> None:
        for i, value in enumerate(values):
            self.vals[i] = value
        self._write(self.handle, self.ids, self.ptrs, self.n)


@dataclass(frozen=True)
class NativeSetup:
    """The native fast path of one VM: the loaded module, the C copy of the guard, the clock."""

    lib: NativeLib
    guard: NativeGuard
    clock: NativeClock


# uc_cb_insn_sys_t: (uc, Xt register id, const uc_arm64_cp_reg *, user data) -> skip?
_HOOK_SYS_CFUNC = ctypes.CFUNCTYPE(
    ctypes.c_uint32, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p
)


_U64_MAX = (1 << 64) - 1
_PAGE_MASK = 0xFFF  # Unicorn's AArch64 page: protections apply per 4 KiB


def _no_sync() -> None:
    pass


def _gaps(slots: Sequence[MemorySlot]) -> list[tuple[int, int]]:
    """The inclusive address ranges outside every memory slot."""
    gaps: list[tuple[int, int]] = []
    at = 0
    for slot in sorted(slots, key=lambda s: s.base):
        if slot.base > at:
            gaps.append((at, slot.base - 1))
        at = max(at, slot.end)
    if at <= _U64_MAX:
        gaps.append((at, _U64_MAX))
    return gaps


class UnicornVcpu:
    """One vCPU on its own Unicorn instance; RAM is shared by pointer across instances.

    With ``native``, Unicorn calls the C module directly for device accesses and hypercalls;
    it answers what needs no Python (allowed accesses, discovery calls) and hands the rest
    to the same Python callbacks as without it, which stay the reference.
    """

    def __init__(
        self, vcpu: Vcpu, slots: Sequence[MemorySlot], native: NativeSetup | None = None
    ) -> None:
        self.index = vcpu.index
        self.vcpu = vcpu
        self.uc = uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        self._handle = uc._uch
        self._slots = tuple(slots)
        self._keep: list[object] = []  # ctypes callbacks must outlive the engine
        self.native = native
        self._native_vcpu: NativeVcpu | None = None
        self._pc_buf = ctypes.c_uint64()
        self._pc_ref = ctypes.byref(self._pc_buf)
        self._reg_read = _raw_reg_read()
        self._watches: list[tuple[int, int, Callable[[int, int, int], None]]] = []
        for slot in slots:
            self._map_slot(slot)
        self._hvc_batch = _Batch(self._handle, _X[:4])
        self._gpr_batch = _Batch(self._handle, _X)
        self._pc_restore: PcRestore | None = None
        if native is None:
            self._install_intr_hook()
        else:
            self._install_native(native)
        #: How device callbacks get exact PCs: QEMU's state restore, or the memory hooks.
        self.exact_pc = self._bind_pc_restore()
        if self.exact_pc == "hook":
            self._install_pc_sync()
        self.native_timer = native is not None
        self._timer: NativeTimer | None = None
        self._block_hook = False
        if native is not None:
            self._install_native_timer(native.clock)
        else:
            self._install_timer_hooks()
        self._reg_write = _raw_reg_write()
        self._wbuf = ctypes.c_uint64()
        self._wref = ctypes.byref(self._wbuf)
        self._plans: dict[tuple[Reg, ...], tuple[_Batch | None, tuple[Reg, ...]]] = {}
        self._cp_reg = _CpReg()
        self._cp_ref = ctypes.byref
        uc.reg_write(A.UC_ARM64_REG_CP_REG, (*_SCR_EL3, _SCR_HCE_RW))
        self._reset_sysregs = {
            reg: self.get(reg) for reg in (Reg.SCTLR_EL1, Reg.TCR_EL1, Reg.MAIR_EL1)
        }

    # -- registers --------------------------------------------------------------------------

    def _cp(self, encoding: tuple[int, int, int, int, int]) -> _CpReg:
        cp = self._cp_reg
        cp.crn, cp.crm, cp.op0, cp.op1, cp.op2 = encoding
        return cp

    def get(self, reg: Reg) -> int:
        cp = _CP.get(reg)
        if cp is not None:
            self._reg_read(self._handle, A.UC_ARM64_REG_CP_REG, self._cp_ref(self._cp(cp)))
            return int(self._cp_reg.val)
        self._reg_read(self._handle, _UC[reg], self._pc_ref)
        return self._pc_buf.value

    def set(self, reg: Reg, value: int) -> None:
        value &= 0xFFFF_FFFF_FFFF_FFFF
        cp = _CP.get(reg)
        if cp is not None:
            self._write_cp(cp, value)
        else:
            self._wbuf.value = value
            self._reg_write(self._handle, _UC[reg], self._wref)
        if reg is Reg.PSTATE:
            # Unicorn does not recompute its cached EL/SP flags on a PSTATE write; a system
            # register write does (notes: "Writing PSTATE does not refresh ...").
            self._reg_read(self._handle, A.UC_ARM64_REG_TPIDR_EL1, self._pc_ref)
            self._write_cp(_TPIDR_EL1, self._pc_buf.value)

    def _write_cp(self, encoding: tuple[int, int, int, int, int], value: int) -> None:
        cp = self._cp(encoding)
        cp.val = value
        self._reg_write(self._handle, A.UC_ARM64_REG_CP_REG, self._cp_ref(cp))

    def _plan(self, regs: tuple[Reg, ...]) -> tuple[_Batch | None, tuple[Reg, ...]]:
        """The batch call for the plain registers of ``regs`` and its system registers,
        worked out once per register tuple (the exception path reuses a few tuples)."""
        plan = self._plans.get(regs)
        if plan is None:
            plain = [r for r in regs if r not in _CP]
            batch = _Batch(self._handle, [_UC[r] for r in plain]) if plain else None
            plan = self._plans[regs] = (batch, tuple(r for r in regs if r in _CP))
        return plan

    def get_many(self, regs: Sequence[Reg]) -> list[int]:
        key = tuple(regs)
        batch, system = self._plan(key)
        if system or batch is None:
            return [self.get(r) for r in key]
        return batch.read()

    def set_many(self, values: Mapping[Reg, int]) -> None:
        """Write several registers: one batch call, then system registers by encoding.

        A system-register write also refreshes Unicorn's cached PSTATE flags, so PSTATE goes
        in the batch and is refreshed by the writes that follow (or explicitly).
        """
        batch, system = self._plan(tuple(values))
        if batch is not None:
            batch.write(
                [v & 0xFFFF_FFFF_FFFF_FFFF for r, v in values.items() if r not in _CP]
            )
        for reg in system:
            self._write_cp(_CP[reg], values[reg] & 0xFFFF_FFFF_FFFF_FFFF)
        if not system and Reg.PSTATE in values:
            self._reg_read(self._handle, A.UC_ARM64_REG_TPIDR_EL1, self._pc_ref)
            self._write_cp(_TPIDR_EL1, self._pc_buf.value)

    def gprs(self) -> list[int]:
        return self._gpr_batch.read()

    def gpr(self, n: int) -> int:
        self._reg_read(self._handle, _X[n], self._pc_ref)
        return self._pc_buf.value

    def set_gpr(self, n: int, value: int) -> None:
        self.uc.reg_write(_X[n], value & 0xFFFF_FFFF_FFFF_FFFF)

    def vreg(self, n: int) -> int:
        return int(self.uc.reg_read(_V0 + n))

    def set_vreg(self, n: int, value: int) -> None:
        self.uc.reg_write(_V0 + n, value & ((1 << 128) - 1))

    def hvc_args(self) -> tuple[int, int, int, int]:
        b = self._hvc_batch
        b._read(b.handle, b.ids, b.ptrs, 4)
        v = b.vals
        return v[0], v[1], v[2], v[3]

    def set_hvc_result(self, r0: int, r1: int, r2: int, r3: int) -> None:
        b = self._hvc_batch
        v = b.vals
        v[0] = r0
        v[1] = r1
        v[2] = r2
        v[3] = r3
        b._write(b.handle, b.ids, b.ptrs, 4)

    def reset(self) -> None:
        if self._native_vcpu is not None:
            self._native_vcpu.take_abort(mgnative.TAKE_DROP)
        self.uc.ctl_flush_tb()
        self._gpr_batch.write([0] * 31)
        for n in range(32):
            self.set_vreg(n, 0)
        for reg in (Reg.ELR_EL1, Reg.ESR_EL1, Reg.FAR_EL1, Reg.VBAR_EL1, Reg.SPSR_EL1,
                    Reg.TTBR0_EL1, Reg.TTBR1_EL1, Reg.SP_EL0, Reg.SP_EL1):
            self.set(reg, 0)
        self.set_many(self._reset_sysregs)
        self.set(Reg.PSTATE, BOOT_PSTATE)
        self.set(Reg.SP, 0)

    # -- running ------------------------------------------------------------------------------

    def run(self, pc: int, count: int) -> Fault | None:
        try:
            self.uc.emu_start(pc, _NO_UNTIL, 0, count)
        except UcError as err:
            fault = _FAULTS.get(err.errno)
            if fault is None:
                if self.vcpu.pending is not None:
                    return None
                raise BackendError(f"emulator error at PC {self.get(Reg.PC):#x}: {err}") from err
            nv = self._native_vcpu
            if nv is not None and nv.abort.active:
                return self._native_outcome(fault)
            return fault
        nv = self._native_vcpu
        if nv is not None and nv.abort.active:
            return self._native_outcome(None)
        return None

    def _native_outcome(self, fault: Fault | None) -> Fault | None:
        """C recorded the guard's abort (in a device callback, or at a fault on an unmapped
        address): ``Fault.NATIVE_ABORT`` for the run loop, which takes it."""
        if self.vcpu.pending is None:
            return Fault.NATIVE_ABORT
        # Python stopped the instruction at an earlier piece of a split access and a later
        # piece faulted (a stop does not cancel an instruction's remaining pieces), or Python
        # stopped for some other reason: Python's request wins, C's record goes.
        assert self._native_vcpu is not None
        self._native_vcpu.take_abort(mgnative.TAKE_RESTORE)
        return fault

    def native_abort(self) -> tuple[int, int, int]:
        nv = self._native_vcpu
        if nv is None:
            raise BackendError("no native fast path: no native abort")
        a = nv.abort
        return a.elr, a.esr, a.far

    def take_native_abort(self, enter: bool) -> bool:
        nv = self._native_vcpu
        if nv is None:
            raise BackendError("no native fast path: no native abort")
        done = nv.take_abort(mgnative.TAKE_ENTER if enter else mgnative.TAKE_RESTORE)
        if done == 0:
            raise BackendError("no native abort to take")
        return enter and done == 1

    def stop(self) -> None:
        self.uc.emu_stop()

    def flush_translations(self) -> None:
        self.uc.ctl_flush_tb()

    def flush_translations_of(self, pa: int, size: int) -> None:
        # Unicorn removes cached code by virtual address, translated by the vCPU's own MMU
        # for an instruction fetch: an alias that is not executable (Linux's linear map)
        # removes nothing. With stage 1 off for the call the address is the physical one
        # (docs/unicorn.md); the SCTLR_EL1 writes only make QEMU drop its TLB.
        pstate, sctlr = self.get_many((Reg.PSTATE, Reg.SCTLR_EL1))
        if (pstate >> 2) & 3 > 1:
            self.uc.ctl_flush_tb()  # not the EL1&0 regime
            return
        mmu = _CP[Reg.SCTLR_EL1]
        if sctlr & 1:
            self._write_cp(mmu, sctlr & ~1)
        self.uc.ctl_remove_cache(pa, pa + size)
        if sctlr & 1:
            self._write_cp(mmu, sctlr)

    # -- hooks ----------------------------------------------------------------------------------

    def _fail(self, where: str, exc: BaseException) -> None:
        """A Python exception escaped a device model or a handler: stop the VM with a report.

        A ctypes callback cannot propagate an exception into the emulator, so this is the
        boundary where it becomes a stop of the VM instead of a hang or a lost error.
        """
        pc = self.get(Reg.PC)
        frames = traceback.extract_tb(exc.__traceback__)
        last = frames[-1] if frames else None
        at = f" ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})" if last else ""
        self.vcpu.pending = GuestStop(
            "vmm-error",
            f"internal error in {where} at guest PC {pc:#x}: "
            f"{type(exc).__name__}: {exc}{at}",
            self.index,
            pc,
        )
        self.uc.emu_stop()

    def _hook_add(
        self, kind: int, callback: Any, user_data: Any, begin: int, end: int, what: str,
        *extra: Any,
    ) -> None:
        hook = ctypes.c_size_t()
        err = uclib.uc_hook_add(
            self._handle,
            ctypes.byref(hook),
            kind,
            callback,
            user_data,
            ctypes.c_uint64(begin),
            ctypes.c_uint64(end),
            *extra,
        )
        if err != C.UC_ERR_OK:
            raise BackendError(f"cannot install {what}: error {err}")

    def _intr(self, number: int) -> None:
        """Every interrupt the emulator (or the native module) hands to Python."""
        try:
            if number == 11:
                self.vcpu.on_hvc()
            else:
                self.vcpu.on_exception(number)
        except Exception as exc:
            self._fail("the hypercall/exception handler", exc)

    def _install_intr_hook(self) -> None:
        intr = self._intr

        def hook(handle: int, number: int, user: int) -> None:
            intr(number)

        cb = HOOK_INTR_CFUNC(hook)
        self._keep.append(cb)
        self._hook_add(UC_HOOK_INTR, ctypes.cast(cb, ctypes.c_void_p), None, 1, 0,
                       "the interrupt hook")

    def _install_native(self, native: NativeSetup) -> None:
        vcpu = self.vcpu
        nv = NativeVcpu(native.lib, self._handle, native.guard, self._intr)
        self._native_vcpu = nv
        traced = vcpu.vm.tracer is not None
        # With a trace, every access and call goes to Python, which records it.
        nv.fast_mmio = not traced
        nv.native_hvc = not traced
        # Refusals become aborts in C only when they are aborts (not audited).
        nv.native_abort = not traced and vcpu.vm.config.guard_mode is GuardMode.ENFORCE
        profile = vcpu.vm.config.profile
        nv.set_hypercalls(
            profile.feature_bitmap(), [c.fid for c in profile.calls if c.op is GuardOp.INFO]
        )
        nv.set_psci_version(PSCI_VERSION_1_1)  # what mmioguard.hyp.smccc answers

        def on_decode(pc: int, insn: Insn) -> None:
            nv.cache_put(pc, insn.fast, insn.size, insn.is_write, _address_form(insn))

        vcpu.on_decode = on_decode
        vcpu.on_cache_clear = nv.cache_clear
        self._hook_add(UC_HOOK_INTR, ctypes.c_void_p(native.lib.intr_ptr),
                       ctypes.c_void_p(nv.handle), 1, 0, "the native interrupt hook")
        # Only over what is not RAM: Unicorn never lets a RAM page leave its slow "not
        # dirty" store path while any memory hook covers it (cputlb.c, notdirty_write), so a
        # hook over all addresses would send every store of the guest through that path.
        for begin, end in _gaps(self._slots):
            self._hook_add(C.UC_HOOK_MEM_READ_UNMAPPED | C.UC_HOOK_MEM_WRITE_UNMAPPED,
                           ctypes.c_void_p(native.lib.mem_unmapped_ptr),
                           ctypes.c_void_p(nv.handle), begin, end,
                           "the native unmapped-access hook")

    def _bind_pc_restore(self) -> str:
        """Exact device-access PCs from QEMU's state restore where this Unicorn allows it
        (mmioguard.cpu.pcrestore), else "hook": the memory hooks that slow every access."""
        offsets = pcrestore.layout()
        restore = pcrestore.restore_function()
        if offsets is None or restore is None:
            return "hook"
        if self._native_vcpu is not None:
            layout = mgnative.UcLayout.of(offsets)
            ok = self._native_vcpu.bind_pc_restore(restore, layout)
            return "restore" if ok else "hook"
        try:
            self._pc_restore = pcrestore.PcRestore(self._handle)
        except LookupError:
            return "hook"
        return "restore"

    def _install_pc_sync(self) -> None:
        """Make Unicorn keep PC exact at every load and store.

        Without a memory hook, Unicorn updates PC only at block boundaries, so a device
        callback cannot tell which instruction is accessing it (measured: PC of the block
        start). Any UC_HOOK_MEM_READ/WRITE hook makes it store PC before each access. The hook
        is only needed for that side effect, so its callback is a C function without side
        effects (libc's ``abs``), restricted to device space: no Python runs for it.
        """
        if self.native is not None:
            callback = ctypes.c_void_p(self.native.lib.mem_nop_ptr)
        else:
            callback = ctypes.cast(ctypes.CDLL(None).abs, ctypes.c_void_p)
        for kind in (C.UC_HOOK_MEM_READ, C.UC_HOOK_MEM_WRITE):
            self._hook_add(kind, callback, None, DEVICE_SPACE[0], DEVICE_SPACE[1] - 1,
                           "the PC synchronisation hook")

    # -- the virtual timer ------------------------------------------------------------------

    def _install_native_timer(self, clock: NativeClock) -> None:
        """MRS/MSR of the timer registers and the block hook, all in C (mgtimer.c)."""
        timer = NativeTimer(clock, self._handle)
        timer.set_mpidr(self.vcpu.mpidr)
        self._timer = timer
        self._keep.append(timer)
        user = ctypes.c_void_p(timer.handle)
        self._hook_add(C.UC_HOOK_INSN, ctypes.c_void_p(clock.mrs_ptr), user, 1, 0,
                       "the MRS hook", ctypes.c_int(A.UC_ARM64_INS_MRS))
        self._hook_add(C.UC_HOOK_INSN, ctypes.c_void_p(clock.msr_ptr), user, 1, 0,
                       "the MSR hook", ctypes.c_int(A.UC_ARM64_INS_MSR))
        self._hook_add(C.UC_HOOK_INSN, ctypes.c_void_p(clock.sys_ptr), user, 1, 0,
                       "the SYS hook", ctypes.c_int(A.UC_ARM64_INS_SYS))
        self._block_hook = False
        if clock.config.mode is ClockMode.ICOUNT:
            self._install_block_hook()  # it counts the instructions from the first one

    def _install_block_hook(self) -> None:
        """The block hook costs every block a helper call (about 5 ns: a tight loop runs 2.4x
        slower), so it goes in only when the guest needs it: --icount, an armed timer, an
        interrupt waiting for the guest to unmask IRQs. Translated blocks lack it: flush them."""
        if self._block_hook or self._timer is None or self.native is None:
            return
        self._hook_add(C.UC_HOOK_BLOCK, ctypes.c_void_p(self.native.clock.block_ptr),
                       ctypes.c_void_p(self._timer.handle), 1, 0, "the block hook")
        self._timer.set_block_hook(True)
        self._block_hook = True
        self.uc.ctl_flush_tb()

    def _install_timer_hooks(self) -> None:
        """The pure-Python path: every MRS and MSR reaches Python, which answers the timer's."""
        vcpu = self.vcpu
        regs = TIMER_REGS
        from_address = _CpReg.from_address
        raw_write = _raw_reg_write()
        value_buf = ctypes.c_uint64()
        value_ref = ctypes.byref(value_buf)
        handle = self._handle

        def on_mrs(_h: int, reg: int, cp_ptr: int, _u: int) -> int:
            cp = from_address(cp_ptr)
            key = (cp.crn, cp.crm, cp.op0, cp.op1, cp.op2)
            which = regs.get(key)
            if which is None:
                if key != _CP[Reg.MPIDR_EL1]:
                    return 0
                # Unicorn ignores writes to MPIDR_EL1: every instance would read CPU 0.
                value_buf.value = vcpu.mpidr
                raw_write(handle, reg, value_ref)
                return 1
            try:
                value_buf.value = vcpu.timer_read(which)
            except Exception as exc:
                self._fail("the timer", exc)
                return 0
            raw_write(handle, reg, value_ref)
            return 1

        def on_msr(_h: int, _reg: int, cp_ptr: int, _u: int) -> int:
            cp = from_address(cp_ptr)
            which = regs.get((cp.crn, cp.crm, cp.op0, cp.op1, cp.op2))
            if which is None:
                return 0
            try:
                return 1 if vcpu.timer_write(which, int(cp.val)) else 0
            except Exception as exc:
                self._fail("the timer", exc)
                return 0

        def on_sys(_h: int, _reg: int, cp_ptr: int, _u: int) -> int:
            # Every SYS instruction comes here (DC ZVA clears pages), IC only stops.
            cp = from_address(cp_ptr)
            if _is_icache_invalidation(cp.crn, cp.crm, cp.op0, cp.op1, cp.op2):
                vcpu.icache_invalidated(int(cp.val) if cp.op1 == 3 else None)
                self.uc.emu_stop()
            return 0

        mrs = _HOOK_SYS_CFUNC(on_mrs)
        msr = _HOOK_SYS_CFUNC(on_msr)
        sys_ = _HOOK_SYS_CFUNC(on_sys)
        self._keep += [mrs, msr, sys_]
        self._hook_add(C.UC_HOOK_INSN, ctypes.cast(mrs, ctypes.c_void_p), None, 1, 0,
                       "the MRS hook", ctypes.c_int(A.UC_ARM64_INS_MRS))
        self._hook_add(C.UC_HOOK_INSN, ctypes.cast(msr, ctypes.c_void_p), None, 1, 0,
                       "the MSR hook", ctypes.c_int(A.UC_ARM64_INS_MSR))
        self._hook_add(C.UC_HOOK_INSN, ctypes.cast(sys_, ctypes.c_void_p), None, 1, 0,
                       "the SYS hook", ctypes.c_int(A.UC_ARM64_INS_SYS))

    def timer_state(self) -> tuple[int, int, int]:
        assert self._timer is not None
        ctl, cval, reasons = self._timer.get()
        if reasons & STOP_NEED_BLOCK_HOOK:
            self._install_block_hook()
        if reasons & STOP_ICACHE:
            self.vcpu.icache_invalidated(self._timer.icache())
        return ctl, cval, reasons

    def set_timer_state(self, ctl: int, cval: int) -> None:
        if self._timer is not None:
            self._timer.set(ctl, cval)

    def timer_control(self, armed: bool, watch_unmask: bool) -> None:
        if self._timer is not None:
            if watch_unmask:
                self._install_block_hook()
            self._timer.control(armed, watch_unmask)

    def timer_active(self) -> bool:
        return self._block_hook

    def request_stop_soon(self) -> None:
        if self._timer is not None:
            self._timer.request_stop()

    def map_device(
        self,
        base: int,
        size: int,
        read: MmioRead,
        write: MmioWrite,
        device_read: Callable[[int, int], int] | None = None,
        device_write: Callable[[int, int, int], None] | None = None,
        pl011: NativePl011 | None = None,
    ) -> None:
        """Register a device region; ``read``/``write`` decide, ``device_*`` only perform.

        The native path sends accesses the guard already allowed straight to ``device_*``,
        and lets C answer a PL011's flags and buffer its output when ``pl011`` is given.
        """
        if self._native_vcpu is not None:
            self._map_native(base, size, read, write, device_read, device_write, pl011)
            return
        reg_read = self._reg_read
        handle = self._handle
        pc_id = A.UC_ARM64_REG_PC
        pc_ref = self._pc_ref
        pc_buf = self._pc_buf
        vcpu = self.vcpu
        stop = self.uc.emu_stop
        fail = self._fail
        sync = self._pc_restore.sync if self._pc_restore is not None else _no_sync

        def on_read(_h: int, offset: int, size: int, _u: int) -> int:
            sync()
            reg_read(handle, pc_id, pc_ref)
            try:
                value = read(pc_buf.value, offset, size)
            except Exception as exc:
                fail(f"device read at {base + offset:#x}", exc)
                return 0
            if vcpu.pending is not None:
                stop()
            return value

        def on_write(_h: int, offset: int, size: int, value: int, _u: int) -> None:
            sync()
            reg_read(handle, pc_id, pc_ref)
            try:
                write(pc_buf.value, offset, size, value & ((1 << (8 * size)) - 1))
            except Exception as exc:
                fail(f"device write at {base + offset:#x}", exc)
                return
            if vcpu.pending is not None:
                stop()

        rcb = MMIO_READ_CFUNC(on_read)
        wcb = MMIO_WRITE_CFUNC(on_write)
        self._keep += [rcb, wcb]
        err = uclib.uc_mmio_map(self._handle, base, size, rcb, None, wcb, None)
        if err != C.UC_ERR_OK:
            raise BackendError(f"cannot map device region {base:#x}+{size:#x}: error {err}")


    def _map_slot(self, slot: MemorySlot) -> None:
        """Map a memory slot, its last page without write permission (see watch_writes).

        A ``UC_HOOK_MEM_WRITE`` hook, even over 32 bytes, would send every load and store of
        the guest through the emulator's slow path (docs/unicorn.md); a ``WRITE_PROT`` hook
        over a protected page costs nothing elsewhere. Mapped in two parts from the start:
        protecting a page of a mapped region costs Unicorn tens of milliseconds.
        """
        rx = C.UC_PROT_READ | C.UC_PROT_EXEC
        if slot.readonly:
            self.uc.mem_map_ptr(slot.base, slot.size, rx, slot.address())
            return
        tail = min(slot.size, _PAGE_MASK + 1)
        if slot.size > tail:
            self.uc.mem_map_ptr(slot.base, slot.size - tail, rx | C.UC_PROT_WRITE, slot.address())
        first = slot.end - tail
        self.uc.mem_map_ptr(first, tail, rx, slot.address() + slot.size - tail)
        reg_read, handle, pc_ref, pc_buf = self._reg_read, self._handle, self._pc_ref, self._pc_buf
        pc_id = A.UC_ARM64_REG_PC
        watches = self._watches
        host = slot.address() + slot.size - tail
        memmove = ctypes.memmove

        def on_write(_h: int, _t: int, address: int, size: int, value: int, _u: int) -> bool:
            try:
                for begin, end, callback in watches:
                    if address <= end and begin < address + size:
                        reg_read(handle, pc_id, pc_ref)
                        callback(pc_buf.value, address, size)
                # Unicorn drops a protected write the hook handled: perform it. Into the
                # buffer directly (uc_mem_write would remap the region under the running
                # store); like any host write, the translation cache does not see it, so code
                # is not rewritten here (the device tree, which Linux keeps, fills the page).
                offset = address - first
                if offset >= 0 and offset + size <= tail and 0 < size <= 8:
                    data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
                    memmove(host + offset, data, size)
            except Exception as exc:
                self._fail("the write to the last page of RAM", exc)
            return True

        cb = HOOK_MEM_INVALID_CFUNC(on_write)
        self._keep.append(cb)
        self._hook_add(C.UC_HOOK_MEM_WRITE_PROT, ctypes.cast(cb, ctypes.c_void_p), None, first,
                       slot.end - 1, f"the write hook of {first:#x}")

    def watch_writes(self, begin: int, end: int, callback: Callable[[int, int, int], None]) -> None:
        """Call ``callback(pc, address, size)`` before each guest write to [begin, end], which
        lies in the last page of a RAM slot: the machine keeps its device tree there, which
        the guest only reads, so these writes are rare and may be slow."""
        if not any(s.end - _PAGE_MASK - 1 <= begin and end < s.end for s in self._slots):
            raise BackendError(f"{begin:#x}-{end:#x} is not in the last page of a memory slot")
        self._watches.append((begin, end, callback))

    def _map_native(
        self,
        base: int,
        size: int,
        read: MmioRead,
        write: MmioWrite,
        device_read: Callable[[int, int], int] | None,
        device_write: Callable[[int, int, int], None] | None,
        pl011: NativePl011 | None = None,
    ) -> None:
        assert self.native is not None and self._native_vcpu is not None
        vcpu = self.vcpu
        stop = self.uc.emu_stop
        fail = self._fail

        def escape_read(pc: int, offset: int, size: int) -> int:
            try:
                value = read(pc, offset, size)
            except Exception as exc:
                fail(f"device read at {base + offset:#x}", exc)
                return 0
            if vcpu.pending is not None:
                stop()
            return value

        def escape_write(pc: int, offset: int, size: int, value: int) -> None:
            try:
                write(pc, offset, size, value)
            except Exception as exc:
                fail(f"device write at {base + offset:#x}", exc)
                return
            if vcpu.pending is not None:
                stop()

        forward_read = forward_write = None
        if device_read is not None and device_write is not None:
            dread, dwrite = device_read, device_write

            def forward_read(pc: int, offset: int, size: int) -> int:
                try:
                    return dread(offset, size)
                except Exception as exc:
                    fail(f"device read at {base + offset:#x}", exc)
                    return 0

            def forward_write(pc: int, offset: int, size: int, value: int) -> None:
                try:
                    dwrite(offset, size, value)
                except Exception as exc:
                    fail(f"device write at {base + offset:#x}", exc)

        region = NativeRegion(
            self.native.lib,
            self._native_vcpu,
            base,
            size,
            escape_read,
            escape_write,
            pl011=pl011,
            forward_read=forward_read,
            forward_write=forward_write,
        )
        self._keep.append(region)
        err = uclib.uc_mmio_map(
            self._handle,
            base,
            size,
            ctypes.c_void_p(region.mmio_read_ptr),
            ctypes.c_void_p(region.handle),
            ctypes.c_void_p(region.mmio_write_ptr),
            ctypes.c_void_p(region.handle),
        )
        if err != C.UC_ERR_OK:
            raise BackendError(f"cannot map device region {base:#x}+{size:#x}: error {err}")


def _address_form(insn: Insn) -> mgnative.AddressForm | None:
    """What C needs to compute a fast instruction's effective address (None: C cannot, and
    lets Python decide its accesses once the guard is enrolled)."""
    ls = insn.ls
    if ls is None or not insn.fast or ls.rn is None or ls.simd or ls.pointer_auth:
        return None
    if ls.mode is AddrMode.OFFSET:
        return mgnative.AddressForm(ls.rt, ls.rn, ls.imm)
    if ls.mode is AddrMode.REGISTER and ls.rm is not None:
        return mgnative.AddressForm(ls.rt, ls.rn, rm=ls.rm, extend=ls.extend.value, shift=ls.shift)
    return None


def disassembler() -> Callable[[int, int], str]:
    """A capstone disassembler for reports, imported at the first report (a run that stops
    with none does not pay the import)."""
    engine: list[Any] = []

    def disassemble(word: int, pc: int) -> str:
        if not engine:
            import capstone

            engine.append(capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM))
        for insn in engine[0].disasm(word.to_bytes(4, "little"), pc):
            return f"{insn.mnemonic} {insn.op_str}".strip()
        return f".word {word:#010x}"

    return disassemble
