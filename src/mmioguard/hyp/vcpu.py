"""One virtual CPU: the hypervisor's side of running guest code.

Like KVM_RUN, :meth:`Vcpu.run` handles inside the hypervisor everything that never reaches a
VMM (hypercalls, guard decisions, injected aborts, exceptions Unicorn does not take itself) and
returns an exit record only for what the VMM must act on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmioguard.abi.smccc import NOT_SUPPORTED
from mmioguard.arch import esr as E
from mmioguard.arch.decode import LoadStore, NotEmulable, decode, effective_address, emulate
from mmioguard.arch.exception import (
    PSTATE_I,
    PSTATE_SP,
    Entry,
    VectorKind,
    current_el,
    enter,
)
from mmioguard.arch.pagetable import (
    AccessType,
    Translation,
    TranslationFault,
    TranslationRegs,
    translate,
)
from mmioguard.hyp.backend import Fault, MmioRead, MmioWrite, Reg, VcpuBackend
from mmioguard.hyp.exits import Exit, GuestStop, Halted, SliceEnd, SystemEvent
from mmioguard.hyp.mmio import AbortAccess, StopAccess, Verdict, decide
from mmioguard.hyp.timer import TICK_NS, VIRTUAL_TIMER_PPI, ClockMode, TimerReg, VirtualTimer

if TYPE_CHECKING:
    from mmioguard.hyp.vm import Vm

# Unicorn/QEMU exception numbers handed to the interrupt hook.
EXCP_UDEF = 1
EXCP_SWI = 2
EXCP_PREFETCH_ABORT = 3
EXCP_DATA_ABORT = 4
EXCP_BKPT = 7
EXCP_HVC = 11
EXCP_SMC = 13

INSN_WFI = 0xD503207F

# Without a native block hook, a pure-Python run cannot be stopped at a clean point when a
# deadline passes or the guest unmasks IRQs: it runs in counted slices while that matters
# (counted slices are slower, see docs/unicorn.md). While an interrupt waits for the guest to
# unmask IRQs it steps, one instruction at first, doubling up to PY_UNMASK_SLICE while IRQs
# stay masked: `msr daifclr` reaches no hook, and an idle loop may keep IRQs unmasked for one
# instruction after a WFI (`wfi; msr daifclr; b idle; msr daifset`), while a long masked
# section must not be single-stepped (a Linux boot would take a minute).
PY_TIMER_SLICE = 20_000
PY_UNMASK_SLICE = 1024
BRK_MASK, BRK_BITS = 0xFFE0001F, 0xD4200000
# Instruction cache line the emulated CPU reports (CTR_EL0.IminLine: 16 words): what IC IVAU
# invalidates.
ICACHE_LINE = 64


@dataclass(frozen=True, slots=True)
class Insn:
    """What the hypervisor knows about the instruction at one PC (cached per PC)."""

    word: int
    ls: LoadStore | None
    # ISV=1 and at most 4 bytes: Unicorn hands it to the device callback whole, in one call.
    fast: bool
    size: int
    isv: bool
    is_write: bool = False

    def explains(self, size: int, is_write: bool) -> bool:
        """Could this instruction have made a device access of this size and direction?"""
        ls = self.ls
        if ls is None:
            return False
        if (is_write and not ls.is_write) or (not is_write and not ls.is_read):
            return False
        return size <= ls.size or ls.size == 0


@dataclass(frozen=True, slots=True)
class _Abort:
    """Inject the guard's external data abort for the instruction at ``pc``."""

    pc: int
    far: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Exception:
    """Take a synchronous exception (decided in a hook, performed by the run loop)."""

    elr: int
    esr: int
    far: int | None
    why: str


@dataclass(frozen=True, slots=True)
class _Emulate:
    pc: int
    insn: Insn
    reason: str


_Pending = Exit | _Abort | _Emulate | _Exception


@dataclass(frozen=True, slots=True)
class _SavedRegisters:
    gprs: list[int]
    sp: int
    vregs: dict[int, int]


class RegisterView:
    """The decoder's view of the vCPU registers, read lazily from the backend."""

    def __init__(self, backend: VcpuBackend, pc: int) -> None:
        self._backend = backend
        self._pc = pc
        self._gprs: dict[int, int] = {}

    def x(self, n: int) -> int:
        if n == 31:
            return 0
        value = self._gprs.get(n)
        if value is None:
            value = self._gprs[n] = self._backend.gpr(n)
        return value

    def sp(self) -> int:
        return self._backend.get(Reg.SP)

    def pc(self) -> int:
        return self._pc

    def v(self, n: int) -> int:
        return self._backend.vreg(n)


class Vcpu:
    def __init__(self, vm: Vm, index: int) -> None:
        self.vm = vm
        self.index = index
        self.mpidr = (1 << 31) | index  # Aff0 = index, uniprocessor bit clear
        self.backend: VcpuBackend
        self.powered_on = index == 0
        self.pending: _Pending | None = None
        # Decoded instructions by PC. Guest code that rewrites itself, or the same virtual
        # address in two address spaces, would need a finer key; resets clear it.
        self.insn_cache: dict[int, Insn] = {}
        # Told of every decoded instruction and of every cache clear (the native fast path
        # keeps its own copy of the cache).
        self.on_decode: Callable[[int, Insn], None] | None = None
        self.on_cache_clear: Callable[[], None] | None = None
        # The high half of an 8-byte device access that Unicorn splits into two callbacks.
        self._split: tuple[int, int, int] | None = None
        self._write_split: tuple[int, int, int] | None = None
        self._saved: _SavedRegisters | None = None
        # Old contents of the last bytes of RAM, by writing PC: a store pair that crosses
        # from RAM into device space writes its RAM half before the fault on the other half.
        self._undo: deque[tuple[int, int, bytes]] = deque(maxlen=64)
        self._loop_key: tuple[int, int, int] | None = None
        self._loop_regs: list[int] = []
        self._loop_count = 0
        self.exceptions_injected = 0
        self.interrupts_taken = 0
        self.timer = VirtualTimer()
        # Why the native timer stopped the emulator, gathered at each sync.
        self._stop_reasons = 0
        self._timer_changed = False
        self._unmask_step = 1
        # Once the guest uses the timer the pure-Python path never runs uncounted again:
        # Unicorn flushes every translated block when a run switches between counted and
        # uncounted (a Linux boot went from 1 s to 14 s toggling twice a tick).
        self._timer_used = False
        # An instruction cache invalidation (IC) stopped this run: what it covers (IC IVAU's
        # address, or None for all). _stale_translations: drop all the emulator's translated
        # code before running again.
        self._icache_stop = False
        self._icache_va: int | None = None
        self._stale_translations = False

    def attach(self, backend: VcpuBackend) -> None:
        self.backend = backend

    # -- power and reset ------------------------------------------------------------------

    def boot(self, pc: int, x0: int) -> None:
        """Reset the CPU to the boot state of the spec: EL1h, MMU off, DAIF masked."""
        self.backend.reset()
        self.backend.set_gpr(0, x0)
        self.backend.set(Reg.PC, pc)
        self.pending = None
        self._split = None
        self._write_split = None
        self._clear_insn_cache()
        self._loop_key = None
        self.timer.reset()
        self.backend.set_timer_state(0, 0)
        self._stop_reasons = 0
        self._timer_used = False

    def power_on(self, pc: int, context: int) -> None:
        self.powered_on = True
        self.boot(pc, context)

    def power_off(self) -> Exit:
        self.powered_on = False
        return Halted(self.index, powered_off=True)

    def note(self, text: str) -> None:
        self.vm.warn(self.index, self.backend.get(Reg.PC), text)

    # -- the run loop ----------------------------------------------------------------------

    def run(self, count: int = 0) -> Exit:
        """Run guest code until something the VMM must handle; ``count`` bounds the slice."""
        backend = self.backend
        interrupts = self.vm.interrupts is not None
        while True:
            self.pending = None
            self._saved = None
            run_count = self._service_interrupts(count) if interrupts else count
            pc = backend.get(Reg.PC)
            if self._undo:
                self._undo.clear()  # only the run that aborts can have written its RAM half
            if self._stale_translations:
                self._stale_translations = False
                backend.flush_translations()
            fault = backend.run(pc, run_count)
            pending = self.pending
            if pending is not None:
                self.pending = None
                self._restore_registers()
                if isinstance(pending, _Exception):
                    stop = self._inject(pending.elr, pending.esr, pending.far, pending.why)
                elif isinstance(pending, _Abort):
                    stop = self._inject_guard_abort(pending.pc, pending.far)
                elif isinstance(pending, _Emulate):
                    stop = self._emulate(pending.pc, pending.insn)
                else:
                    return pending
                if stop is not None:
                    return stop
            elif fault is Fault.NATIVE_ABORT:
                stop = self._native_abort()
                if stop is not None:
                    return stop
            elif fault is not None:
                stop = self._on_fault(fault)
                if stop is not None:
                    return stop
            else:
                if interrupts:
                    self.sync_timer()
                elif backend.native_timer:
                    backend.timer_state()  # it reports an instruction cache invalidation
                icache_stop = self._icache_stop
                if icache_stop:
                    self._icache_stop = False
                    self._drop_translations(self._icache_va)
                if interrupts and (self._stop_reasons or self._timer_changed):
                    # The native timer stopped at a block boundary, or the guest
                    # reprogrammed the timer: deliver, work the slice out again, go on.
                    # The VMM counts a SliceEnd as a whole slice: keep going instead.
                    self._stop_reasons = 0
                    self._timer_changed = False
                    continue
                if icache_stop:
                    continue  # stopped right after an IC, translations dropped: go on
                pc = backend.get(Reg.PC)
                if self._word_at(pc - 4) == INSN_WFI:
                    if interrupts and self.wake_pending():
                        # An interrupt is pending: WFI completes at once, and the guest will
                        # likely unmask IRQs within a few instructions.
                        self._unmask_step = 1
                        continue
                    return Halted(self.index, powered_off=False)
                if run_count:
                    self.vm.clock.add_instructions(run_count)
                if interrupts and run_count and count == 0:
                    continue  # the slice the pure-Python path bounded itself ended
                return SliceEnd(self.index)

    # -- interrupts and the virtual timer ------------------------------------------------------

    def timer_read(self, reg: TimerReg) -> int:
        """MRS of a timer register (the pure-Python path's hook)."""
        return self.timer.read(reg, self.vm.clock.now())

    def timer_write(self, reg: TimerReg, value: int) -> bool:
        """MSR of a timer register; False leaves the instruction to the emulator.

        The pure-Python path bounds its slices by the timer's deadline, worked out before each
        run: a new deadline stops the emulator (cleanly: PC is past the MSR) to work it out
        again, or a guest spinning on the interrupt would never be stopped.
        """
        handled = self.timer.write(reg, value, self.vm.clock.now())
        if handled and not self.backend.native_timer:
            self._timer_changed = True
            self._timer_used = True
            self.backend.stop()
        return handled

    def icache_invalidated(self, va: int | None) -> None:
        """The guest executed IC IVAU (``va``: its operand) or IC IALLU/IALLUIS (None); the
        backend stops right after it, and the run loop drops the translations it covers.

        Unicorn treats IC as a no-op and relies on noticing stores to code it has translated,
        but it never sees stores made by another vCPU's engine (RAM is shared, translated code
        is not), nor, in Linux's case, all of its own (alternatives written by CPU 0 through
        the linear map; docs/unicorn.md). Both vCPUs then ran stale code: Linux's
        fpsimd_thread_switch kept the early return its alternative patches out, so a task
        moved to another CPU kept TIF_FOREIGN_FPSTATE clear and its next signal oopsed in
        fpsimd_save_state.
        """
        self._icache_va = None if self._icache_stop else va  # two before a stop: all
        self._icache_stop = True

    def _drop_translations(self, va: int | None) -> None:
        """Every vCPU drops its translated code of the line at ``va`` (this vCPU's address),
        or all of it: the invalidation is broadcast to the Inner Shareable domain."""
        vcpus = self.vm.vcpus
        if va is not None:
            line = self.translate(va & ~(ICACHE_LINE - 1), AccessType.READ)
            if isinstance(line, Translation) and self.vm.memory.slot_at(line.pa) is not None:
                for vcpu in vcpus:
                    vcpu.backend.flush_translations_of(line.pa, ICACHE_LINE)
                return
        for vcpu in vcpus:
            vcpu._stale_translations = True  # this one too: before its next run

    def sync_timer(self) -> bool:
        """Bring the timer's output to its PPI (native: read the C state first); the level."""
        timer = self.timer
        backend = self.backend
        if backend.native_timer:
            timer.ctl, timer.cval, reasons = backend.timer_state()
            self._stop_reasons |= reasons
        level = timer.output(self.vm.clock.now())
        interrupts = self.vm.interrupts
        if interrupts is not None:
            interrupts.set_ppi_level(self.index, VIRTUAL_TIMER_PPI, level)
        return level

    def wake_pending(self) -> bool:
        """Whether an interrupt is signalled to this vCPU (what ends a WFI, masked or not)."""
        interrupts = self.vm.interrupts
        if interrupts is None:
            return False
        self.sync_timer()
        return interrupts.irq_pending(self.index)

    def next_timer_event(self) -> int | None:
        """The counter value at which this vCPU's timer will interrupt, if it is armed."""
        if self.sync_timer():
            return self.vm.clock.now()
        return self.timer.deadline()

    def device_raised_interrupt(self) -> None:
        """A device access changed what the interrupt controller signals to this vCPU.

        Stopping inside the access would make Unicorn replay the instruction, so the native
        path stops at the next block boundary once its block hook is in (the guest has armed
        the timer); before that, and on the pure-Python path, it is seen at the next stop.
        """
        self.backend.request_stop_soon()

    def _service_interrupts(self, count: int) -> int:
        """Before guest code runs again: drive the timer PPI, take a signalled IRQ if PSTATE.I
        allows it, and say when to stop next. Returns the instruction count to run."""
        interrupts = self.vm.interrupts
        assert interrupts is not None
        backend = self.backend
        if not self._timer_used and not backend.timer_active() and not (
            interrupts.irq_pending(self.index)
        ):
            return count  # the hot path of guests without a timer (aborts, hypercalls)
        level = self.sync_timer()
        masked = False
        if interrupts.irq_pending(self.index):
            if self.backend.get(Reg.PSTATE) & PSTATE_I:
                masked = True
            else:
                self._enter_irq()
        if backend.native_timer:
            backend.timer_control(armed=not level, watch_unmask=masked)
            return count
        bound = 0
        if masked:
            bound = self._unmask_step
            self._unmask_step = min(2 * bound, PY_UNMASK_SLICE)
        else:
            self._unmask_step = 1
            deadline = self.timer.deadline()
            if deadline is not None and not level:
                bound = PY_TIMER_SLICE
                clock = self.vm.clock
                if clock.config.mode is ClockMode.ICOUNT:
                    ns = max(deadline - clock.now(), 1) * TICK_NS
                    bound = min(bound, max(ns >> clock.config.shift, 1))
        if bound == 0:
            if not self._timer_used:
                return count
            bound = PY_TIMER_SLICE
        return min(count, bound) if count else bound

    def _enter_irq(self) -> None:
        """IRQ exception entry to EL1 (no syndrome): ELR is the next instruction to run."""
        backend = self.backend
        pc, pstate, vbar, sp, sp_el1 = backend.get_many(
            (Reg.PC, Reg.PSTATE, Reg.VBAR_EL1, Reg.SP, Reg.SP_EL1)
        )
        entry = enter(pstate, pc, vbar, VectorKind.IRQ)
        self._apply_entry(entry, {Reg.ELR_EL1: entry.elr, Reg.PC: entry.pc}, sp, sp_el1)
        self.interrupts_taken += 1
        vm = self.vm
        if vm.tracer is not None:
            vm.trace("irq", self, elr=pc, spsr=pstate, vector=entry.pc)

    def _unidentified(self, pc: int, pa: int, word: int) -> GuestStop:
        """The instruction at the reported PC cannot have made this device access.

        Unicorn reports a stale PC (an earlier instruction of the block) when PC was written
        inside a hook; the hypervisor never does that (see ``_defer``), so this is a bug in the
        hypervisor or the emulator, and deciding on the wrong instruction could leak: stop.
        """
        return GuestStop(
            "unidentified-access",
            self.vm.describe_access(
                self,
                pc,
                word,
                pa,
                "internal error: the instruction at this PC cannot have made the device access "
                "the emulator reported, so the guard cannot decide on it",
            ),
            self.index,
            pc,
        )

    # -- hooks called by the backend while guest code runs -----------------------------------

    def on_hvc(self) -> None:
        backend = self.backend
        x0, x1, x2, x3 = backend.hvc_args()
        vm = self.vm
        result = vm.hypercalls.dispatch(self, x0, x1, x2, x3)
        if vm.tracer is not None:
            vm.trace_hypercall(self, x0, x1, x2, x3, result)
        if isinstance(result, tuple):
            backend.set_hvc_result(*result)
        else:
            self.pending = result
            backend.stop()

    def on_exception(self, number: int) -> None:
        """A synchronous exception Unicorn hands to the host instead of taking it."""
        backend = self.backend
        pc, pstate = backend.get_many((Reg.PC, Reg.PSTATE))
        el = current_el(pstate)
        if number == EXCP_HVC:
            if el == 0:
                self._defer(pc - 4, E.esr(E.EC.UNKNOWN), None, "HVC from EL0 is undefined")
            else:
                self.on_hvc()
        elif number == EXCP_SMC:
            if el == 0:
                self._defer(pc - 4, E.esr(E.EC.UNKNOWN), None, "SMC from EL0 is undefined")
            else:
                # No EL3 firmware: KVM answers NOT_SUPPORTED and skips the SMC.
                backend.set_gpr(0, NOT_SUPPORTED)
                if self.vm.tracer is not None:
                    self.vm.trace("smc", self, pc=pc - 4, result=NOT_SUPPORTED)
        elif number == EXCP_SWI:
            word = self._word_at(pc - 4) or 0
            self._defer(pc, E.esr(E.EC.SVC64, (word >> 5) & 0xFFFF), None, "SVC")
        elif number == EXCP_BKPT:
            brk = self._word_at(pc)
            if brk is None or brk & BRK_MASK != BRK_BITS:
                pc -= 4
                brk = self._word_at(pc)
            imm = ((brk or 0) >> 5) & 0xFFFF
            self._defer(pc, E.esr(E.EC.BRK64, imm), None, "BRK")
        elif number == EXCP_UDEF:
            self._defer(pc, E.esr(E.EC.UNKNOWN), None, "undefined instruction")
        elif number == EXCP_DATA_ABORT:
            self._stage1_data_abort(pc, el)
        elif number == EXCP_PREFETCH_ABORT:
            self._stage1_prefetch_abort(pc, el)
        else:
            self.pending = GuestStop(
                "cpu-exception",
                f"the emulated CPU raised exception {number} at PC {pc:#x}, "
                "which this hypervisor does not model",
                self.index,
                pc,
            )
            backend.stop()

    def mmio_callbacks(
        self,
        base: int,
        read: Callable[[int, int], int],
        write: Callable[[int, int, int], None],
        traced: bool,
    ) -> tuple[MmioRead, MmioWrite]:
        """Callbacks for one device region; the untraced ones are the hot path."""
        guard = self.vm.guard
        mapped = guard.mapped
        cache = self.insn_cache
        insn_at = self._insn_at
        slow = self._mmio_slow
        shift = guard.shift

        # Enrolled, the fast path lets a piece through when its granule is mapped and it ends
        # before the granule's last byte: (pa + size) >> shift == g. Unicorn hands an unaligned
        # access to the callbacks in aligned pieces, lowest address first (docs/unicorn.md):
        # the piece that could pass while a later one is refused is the one that ends at a
        # granule's end, and it goes to _mmio_slow, which decides on the instruction's whole
        # access. Only accesses to the last bytes of a granule pay for that; the native path
        # compares the piece with the effective address instead (cheap in C).
        def fast_read(pc: int, offset: int, size: int) -> int:
            insn = cache.get(pc) or insn_at(pc)
            if insn.fast and insn.size == size and not insn.is_write:
                if not guard.enrolled:
                    return read(offset, size)
                pa = base + offset
                g = pa >> shift
                if g in mapped and (pa + size) >> shift == g:
                    return read(offset, size)
            return slow(insn, pc, base, offset, size, False, 0, read, write)

        def fast_write(pc: int, offset: int, size: int, value: int) -> None:
            insn = cache.get(pc) or insn_at(pc)
            if insn.fast and insn.size == size and insn.is_write:
                if not guard.enrolled:
                    write(offset, size, value)
                    return
                pa = base + offset
                g = pa >> shift
                if g in mapped and (pa + size) >> shift == g:
                    write(offset, size, value)
                    return
            slow(insn, pc, base, offset, size, True, value, read, write)

        def traced_read(pc: int, offset: int, size: int) -> int:
            insn = cache.get(pc) or insn_at(pc)
            return slow(insn, pc, base, offset, size, False, 0, read, write)

        def traced_write(pc: int, offset: int, size: int, value: int) -> None:
            insn = cache.get(pc) or insn_at(pc)
            slow(insn, pc, base, offset, size, True, value, read, write)

        if traced:
            return traced_read, traced_write
        return fast_read, fast_write

    # -- device accesses -------------------------------------------------------------------

    def _mmio_slow(
        self,
        insn: Insn,
        pc: int,
        base: int,
        offset: int,
        size: int,
        is_write: bool,
        value: int,
        read: Callable[[int, int], int],
        write: Callable[[int, int, int], None],
    ) -> int:
        pa = base + offset
        vm = self.vm
        # Second half of an 8-byte access whose first half was already decided and performed.
        split = self._write_split if is_write else self._split
        if split is not None and split[0] == pc and split[1] == pa:
            if is_write:
                self._write_split = None
                low = split[2]
                write(offset - 4, 8, low | ((value & 0xFFFF_FFFF) << 32))
                return 0
            self._split = None
            return split[2]
        if not insn.explains(size, is_write):
            return self._request(self._unidentified(pc, pa, insn.word))
        # Unicorn splits unaligned accesses into aligned pieces (or bytes, for stores), each
        # reaching this callback on its own: the guard decides on the whole access, from the
        # instruction's own address, or a piece that fits a granule would leak.
        access_pa = self._access_pa(insn, pc, pa) if insn.isv else pa
        access_size = insn.size if insn.isv else size
        verdict = decide(vm.config, vm.guard, insn.isv, access_pa, access_size)
        if vm.tracer is not None:
            self._trace_mmio(
                pc, access_pa, access_size, is_write, value if is_write else None, verdict
            )
        if verdict is Verdict.AUDIT:
            vm.guard.record_audit(access_pa, pc)
            if not insn.isv:
                return self._request(_Emulate(pc, insn, "audit"))
        elif verdict is not Verdict.FORWARD:
            return self._refuse_access(verdict, insn, pc, access_pa)
        if insn.size == 8 and size == 4:
            if is_write:
                self._write_split = (pc, pa + 4, value & 0xFFFF_FFFF)
                return 0
            full = read(offset, 8)
            self._split = (pc, pa + 4, full >> 32)
            return full & 0xFFFF_FFFF
        if is_write:
            write(offset, size, value)
            return 0
        return read(offset, size)

    def _access_pa(self, insn: Insn, pc: int, piece_pa: int) -> int:
        """Physical address of the first byte the instruction accesses."""
        if insn.ls is None:
            return piece_pa
        va = effective_address(insn.ls, RegisterView(self.backend, pc)) & (2**64 - 1)
        result = self.translate(va, AccessType.WRITE if insn.is_write else AccessType.READ)
        return piece_pa if isinstance(result, TranslationFault) else result.pa

    def _trace_mmio(
        self, pc: int, pa: int, size: int, is_write: bool, value: int | None, verdict: Verdict
    ) -> None:
        guard = self.vm.guard
        self.vm.trace(
            "mmio",
            self,
            pc=pc,
            addr=pa,
            size=size,
            write=is_write,
            value=value,
            verdict=verdict.name.lower(),
            enrolled=guard.enrolled,
            mapped=guard.is_mapped(pa),
        )

    def _request(self, pending: _Pending) -> int:
        """Stop the emulator before the accessing instruction completes.

        Unicorn stops after the memory operation in progress: a single-register load has
        already written its destination by then (measured), so the registers the instruction
        may write are saved here, at its first access, and put back before the abort or the
        emulation.
        """
        if isinstance(pending, (_Abort, _Emulate)):
            self._saved = self._save_registers(self.insn_cache.get(pending.pc))
        self.pending = pending
        self.backend.stop()
        return 0

    def _save_registers(self, insn: Insn | None) -> _SavedRegisters:
        backend = self.backend
        vregs: dict[int, int] = {}
        ls = insn.ls if insn is not None else None
        if ls is not None and ls.simd:
            for n in (ls.rt, ls.rt2):
                if n is not None:
                    vregs[n] = backend.vreg(n)
            if ls.structure is not None:
                vregs = {n: backend.vreg(n) for n in range(32)}
        return _SavedRegisters(backend.gprs(), backend.get(Reg.SP), vregs)

    def _restore_registers(self) -> None:
        saved = self._saved
        if saved is None:
            return
        self._saved = None
        backend = self.backend
        current = backend.gprs()
        for n, value in enumerate(saved.gprs):
            if current[n] != value:
                backend.set_gpr(n, value)
        backend.set(Reg.SP, saved.sp)
        for n, value in saved.vregs.items():
            backend.set_vreg(n, value)

    def _refuse_access(self, verdict: Verdict, insn: Insn, pc: int, pa: int) -> int:
        """A device access the guard or the NISV policy does not let through."""
        if verdict.aborts:
            far = self._fault_va(insn, pc)
            return self._request(_Abort(pc, far, verdict.value))
        if verdict is Verdict.NISV_EMULATE:
            return self._request(_Emulate(pc, insn, "nisv"))
        if verdict is Verdict.NISV_USER:
            self.vm.trace("nisv", self, pc=pc, addr=pa, insn=insn.word)
            far = self._fault_va(insn, pc)
            return self._request(_Abort(pc, far, "NISV exit: the VMM injected an abort"))
        return self._request(self._nisv_stop(insn, pc, pa))

    def _nisv_stop(self, insn: Insn, pc: int, pa: int) -> GuestStop:
        report = self.vm.describe_access(
            self,
            pc,
            insn.word,
            pa,
            "an access to device memory without a valid syndrome (ISV=0): real KVM cannot "
            "emulate it and fails the vCPU run (use --nisv emulate to emulate it, or fix the "
            "guest to use a single load or store without writeback)",
        )
        return GuestStop("nisv", report, self.index, pc)

    def _fault_va(self, insn: Insn, pc: int) -> int:
        if insn.ls is None:
            return 0
        return effective_address(insn.ls, RegisterView(self.backend, pc)) & (2**64 - 1)

    # -- instruction fetch and translation ---------------------------------------------------

    def translation_regs(self) -> TranslationRegs:
        sctlr, tcr, ttbr0, ttbr1, mair = self.backend.get_many(
            (Reg.SCTLR_EL1, Reg.TCR_EL1, Reg.TTBR0_EL1, Reg.TTBR1_EL1, Reg.MAIR_EL1)
        )
        return TranslationRegs(sctlr, tcr, ttbr0, ttbr1, mair)

    def translate(self, va: int, access: AccessType) -> Translation | TranslationFault:
        backend = self.backend
        sctlr = backend.get(Reg.SCTLR_EL1)
        if not sctlr & 1 and va < 1 << 48:
            # MMU off: a flat map, Device memory for data (the walker's answer, without it).
            return Translation(va, access is not AccessType.FETCH, 0, -1, 4096)
        regs = self.translation_regs()
        el = current_el(backend.get(Reg.PSTATE))
        return translate(va, regs, access, el, self.vm.memory.read64)

    def backtrace(self, depth: int) -> list[int]:
        """Return addresses from the guest's frame records (the x29 chain), best effort.

        For reports and traces only: a guest without frame pointers gives a short or
        meaningless list, never an error.
        """
        fp = self.backend.gpr(29)
        found: list[int] = []
        memory = self.vm.memory
        while len(found) < depth and fp and not fp & 7:
            where = self.translate(fp, AccessType.READ)
            if isinstance(where, TranslationFault):
                break
            previous = memory.read64(where.pa)
            ret = memory.read64(where.pa + 8)
            if previous is None or not ret:
                break
            found.append(ret)
            if previous <= fp:
                break
            fp = previous
        return found

    def _word_at(self, va: int) -> int | None:
        result = self.translate(va, AccessType.FETCH)
        if isinstance(result, TranslationFault):
            return None
        return self.vm.memory.read32(result.pa)

    def _insn_at(self, pc: int) -> Insn:
        word = self._word_at(pc)
        ls = decode(word) if word is not None else None
        if ls is None:
            insn = Insn(word or 0, None, False, 0, False)
        else:
            insn = Insn(word or 0, ls, ls.isv and ls.size <= 4, ls.size, ls.isv, ls.is_write)
        if len(self.insn_cache) > 65536:
            self._clear_insn_cache()
        self.insn_cache[pc] = insn
        if self.on_decode is not None:
            self.on_decode(pc, insn)
        return insn

    def _clear_insn_cache(self) -> None:
        self.insn_cache.clear()
        if self.on_cache_clear is not None:
            self.on_cache_clear()

    # -- faults on unmapped addresses ---------------------------------------------------------

    def _on_fault(self, fault: Fault) -> Exit | None:
        backend = self.backend
        pc, pstate = backend.get_many((Reg.PC, Reg.PSTATE))
        from_el0 = current_el(pstate) == 0
        if fault is Fault.FETCH:
            if self.vm.tracer is not None:
                self.vm.trace("fetch-abort", self, pc=pc)
            return self._inject(
                pc, E.external_instruction_abort(from_el0), pc, "instruction fetch outside memory"
            )
        insn = self.insn_cache.get(pc) or self._insn_at(pc)
        ls = insn.ls
        word: int | None = insn.word
        if ls is None:
            return GuestStop(
                "unknown-access",
                self.vm.describe_access(
                    self,
                    pc,
                    word or 0,
                    None,
                    "an access outside memory by an instruction this hypervisor cannot decode",
                ),
                self.index,
                pc,
            )
        va = effective_address(ls, RegisterView(backend, pc)) & (2**64 - 1)
        result = self.translate(va, AccessType.WRITE if ls.is_write else AccessType.READ)
        if isinstance(result, TranslationFault):
            iss = result.fsc() | (E.ISS_WNR if ls.is_write else 0)
            return self._inject(pc, E.data_abort(from_el0, iss), va, "stage-1 fault")
        pa = result.pa
        verdict = decide(self.vm.config, self.vm.guard, insn.isv, pa, insn.size)
        if self.vm.tracer is not None:
            self._trace_mmio(pc, pa, insn.size, ls.is_write, None, verdict)
        if verdict is Verdict.AUDIT:
            self.vm.guard.record_audit(pa, pc)
        elif verdict.aborts or verdict is Verdict.NISV_USER:
            if verdict is Verdict.NISV_USER:
                self.vm.trace("nisv", self, pc=pc, addr=pa, insn=insn.word)
            return self._inject_guard_abort(pc, va)
        elif verdict is Verdict.NISV_STOP:
            return self._nisv_stop(insn, pc, pa)
        return self._emulate(pc, insn)

    # -- emulation of one instruction ---------------------------------------------------------

    def _emulate(self, pc: int, insn: Insn) -> Exit | None:
        """Perform a load/store in software: its device accesses go through the VMM."""
        assert insn.ls is not None
        backend = self.backend
        vm = self.vm
        ls = insn.ls

        def access(va: int, size: int, is_write: bool, value: int) -> int:
            result = self.translate(va, AccessType.WRITE if is_write else AccessType.READ)
            if isinstance(result, TranslationFault):
                raise _EmulationFault(va, result.fsc() | (E.ISS_WNR if is_write else 0))
            return vm.phys_access(result.pa, size, is_write, value)

        try:
            result = emulate(ls, RegisterView(backend, pc), access)
        except NotEmulable as exc:
            return GuestStop(
                "not-emulable",
                vm.describe_access(self, pc, insn.word, None, f"cannot emulate: {exc}"),
                self.index,
                pc,
            )
        except _EmulationFault as fault:
            from_el0 = current_el(backend.get(Reg.PSTATE)) == 0
            return self._inject(pc, E.data_abort(from_el0, fault.iss), fault.va, "stage-1 fault")
        except AbortAccess:
            return self._inject_guard_abort(pc, self._fault_va(insn, pc))
        except StopAccess as stop:
            return GuestStop(
                "unassigned",
                vm.describe_access(self, pc, insn.word, stop.addr, str(stop)),
                self.index,
                pc,
            )
        for n, value in result.gpr.items():
            if n == 31:
                backend.set(Reg.SP, value)
            else:
                backend.set_gpr(n, value)
        for n, value in result.vregs.items():
            backend.set_vreg(n, value)
        if result.sp is not None:
            backend.set(Reg.SP, result.sp)
        backend.set(Reg.PC, pc + 4)
        return None

    # -- exception injection ------------------------------------------------------------------

    def on_watched_write(self, pc: int, address: int, size: int) -> None:
        old = self.vm.memory.read(address, size)
        if old is not None:
            self._undo.append((pc, address, old))

    def _undo_writes(self, pc: int, far: int) -> None:
        """Put back what the aborted instruction at ``pc`` (effective address ``far``) already
        wrote to RAM before its access crossed the end of a slot.

        Its writes are the newest of this run (the log is emptied before each run) and lie
        below the end of RAM, contiguous, from the physical address of ``far`` on: newest
        first, entries are taken while they continue that run downwards. An older entry of the
        same instruction (a loop) does not."""
        translation = self.translate(far, AccessType.WRITE)
        low = translation.pa if isinstance(translation, Translation) else None
        below: int | None = None
        while self._undo:
            at, address, old = self._undo.pop()
            end = address + len(old)
            if at != pc or (low is not None and address < low):
                break
            if below is not None and end != below:
                break
            self.vm.memory.write(address, old)
            below = address
        self._undo.clear()

    def _native_abort(self) -> Exit | None:
        """Take the guard abort the backend's native path recorded.

        C refused the access exactly as ``_mmio_slow``/``_on_fault`` would (the whole access,
        guard enforcing, untraced) and recorded the ``_Abort`` they would: ELR, the ESR of
        ``_inject_guard_abort`` and the effective address as FAR. The backend puts back what
        the load wrote and performs the entry ``_inject`` would, in one call. Python keeps the
        exception-loop check and the accounting; whenever the check needs the registers (a
        repeat's start, the limit), RAM writes must be undone, or C does not model the state,
        Python's own path takes the abort, the reference.
        """
        backend = self.backend
        elr, esr, far = backend.native_abort()
        key = (elr, esr, far)
        repeat = key == self._loop_key
        count = self._loop_count + 1
        python = (
            bool(self._undo)
            or self.vm.tracer is not None
            or (repeat and (count == 1 or count >= self.vm.config.exception_loop_limit))
        )
        if python or not backend.take_native_abort(enter=True):
            if python:
                backend.take_native_abort(enter=False)
            return self._inject_guard_abort(elr, far)
        # What _check_loop does when it neither reads the registers nor stops.
        if repeat:
            self._loop_count = count
        else:
            self._loop_key = key
            self._loop_count = 0
        self.exceptions_injected += 1
        self.vm.note_guard_abort(self.index, elr, far)
        return None

    def _inject_guard_abort(self, pc: int, far: int) -> Exit | None:
        if self._undo:
            self._undo_writes(pc, far)
        self.vm.note_guard_abort(self.index, pc, far)
        from_el0 = current_el(self.backend.get(Reg.PSTATE)) == 0
        return self._inject(pc, E.external_data_abort(from_el0), far, "guard abort")

    def _stage1_data_abort(self, pc: int, el: int) -> None:
        word = self._word_at(pc)
        ls = decode(word) if word is not None else None
        from_el0 = el == 0
        if ls is None:
            self._defer(pc, E.data_abort(from_el0, E.FSC.EXTERNAL), 0, "data abort")
            return
        va = effective_address(ls, RegisterView(self.backend, pc)) & (2**64 - 1)
        result = self.translate(va, AccessType.WRITE if ls.is_write else AccessType.READ)
        wnr = E.ISS_WNR if ls.is_write else 0
        # When the walk succeeds the emulator faulted for a reason the walker does not
        # model; an unaligned access is the one Unicorn raises here.
        fsc = result.fsc() if isinstance(result, TranslationFault) else E.FSC.ALIGNMENT
        self._defer(pc, E.data_abort(from_el0, fsc | wnr), va, "stage-1 data abort")

    def _stage1_prefetch_abort(self, pc: int, el: int) -> None:
        result = self.translate(pc, AccessType.FETCH)
        fsc = result.fsc() if isinstance(result, TranslationFault) else E.FSC.EXTERNAL
        self._defer(pc, E.instruction_abort(el == 0, fsc), pc, "stage-1 prefetch abort")

    def _defer(self, elr: int, syndrome: int, far: int | None, why: str) -> None:
        """Exception entry requested from inside an emulator hook.

        Writing PC inside a Unicorn hook and letting emulation continue leaves later
        translation blocks without PC synchronisation at device accesses (measured: device
        callbacks then see the PC of an earlier instruction), so the hook only records the
        exception and stops; the run loop performs the entry and restarts the emulator.
        """
        self.pending = _Exception(elr, syndrome, far, why)
        self.backend.stop()

    def _inject(self, elr: int, syndrome: int, far: int | None, why: str) -> Exit | None:
        """Synchronous exception entry to EL1, performed on the backend's registers."""
        backend = self.backend
        pstate, vbar, sp, sp_el1 = backend.get_many(
            (Reg.PSTATE, Reg.VBAR_EL1, Reg.SP, Reg.SP_EL1)
        )
        entry = enter(pstate, elr, vbar, VectorKind.SYNC, syndrome, far)
        loop = self._check_loop(elr, syndrome, far or 0)
        if loop is not None:
            backend.stop()
            self.pending = loop
            return loop
        values = {Reg.ELR_EL1: entry.elr, Reg.ESR_EL1: syndrome, Reg.PC: entry.pc}
        if far is not None:
            values[Reg.FAR_EL1] = far
        self._apply_entry(entry, values, sp, sp_el1)
        self.exceptions_injected += 1
        vm = self.vm
        if vm.tracer is not None:
            vm.trace(
                "exception",
                self,
                why=why,
                esr=syndrome,
                far=far,
                elr=elr,
                spsr=entry.spsr,
                vector=entry.pc,
                from_el0=entry.from_el0,
                sp_el0_in_use=not pstate & PSTATE_SP,
            )
        return None

    def _apply_entry(self, entry: Entry, values: dict[Reg, int], sp: int, sp_el1: int) -> None:
        """Write an exception entry: ``values`` (ELR, PC, syndrome...), then the stack pointers,
        PSTATE and SPSR in that order (the native entry mirrors it)."""
        if entry.bank_sp_el0:
            # The SP in use was SP_EL0: bank it; SP_EL1 becomes the current SP.
            values[Reg.SP_EL0] = sp
            values[Reg.SP] = sp_el1
        values[Reg.PSTATE] = entry.pstate
        values[Reg.SPSR_EL1] = entry.spsr
        self.backend.set_many(values)

    def _check_loop(self, elr: int, syndrome: int, far: int) -> GuestStop | None:
        """The same exception at the same PC with the same registers, again and again.

        The registers are read only twice per run of identical exceptions (at its start and
        when it reaches the limit): a guest that makes progress changes some register.
        """
        key = (elr, syndrome, far)
        if key != self._loop_key:
            self._loop_key = key
            self._loop_count = 0
            return None
        self._loop_count += 1
        if self._loop_count == 1:
            self._loop_regs = self.backend.gprs()
            return None
        if self._loop_count < self.vm.config.exception_loop_limit:
            return None
        if self.backend.gprs() != self._loop_regs:
            self._loop_count = 0
            return None
        report = self.vm.describe_access(
            self,
            elr,
            self._word_at(elr) or 0,
            None,
            f"exception loop: the guest took the same exception (ESR {E.describe(syndrome)}, "
            f"FAR {far:#x}) at this PC {self._loop_count} times in a row with no change in "
            "its registers (check VBAR_EL1 and the handler)",
        )
        return GuestStop("exception-loop", report, self.index, elr)


class _EmulationFault(Exception):
    def __init__(self, va: int, iss: int) -> None:
        super().__init__(f"stage-1 fault at {va:#x}")
        self.va = va
        self.iss = iss


__all__ = ["Insn", "SystemEvent", "Vcpu"]
