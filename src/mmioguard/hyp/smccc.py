"""SMCCC hypercall dispatch: SMCCC discovery, PSCI, the KVM vendor calls and the MMIO guard.

Calls are routed like a bus (as crosvm does): a dict from function ID to handler, built once
from the profile's tables; an unknown ID is answered NOT_SUPPORTED and nothing else happens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmioguard.abi.profiles import GuardOp
from mmioguard.abi.smccc import (
    KVM_UID,
    NOT_SUPPORTED,
    PSCI_VERSION_1_1,
    SMC64,
    SMCCC_VERSION_1_1,
    AffinityState,
    Fid,
    PsciRet,
    to_reg,
)
from mmioguard.hyp.backend import Reg
from mmioguard.hyp.config import NisvPolicy
from mmioguard.hyp.exits import Exit, SystemEvent, SystemEventKind

if TYPE_CHECKING:
    from mmioguard.hyp.vcpu import Vcpu
    from mmioguard.hyp.vm import Vm

Result = tuple[int, int, int, int]
Handler = Callable[["Vcpu", int, int, int], "Result | Exit"]

# MAIR attribute bytes that are Device memory (nGnRnE, nGnRE, nGRE, GRE).
DEVICE_ATTRS = frozenset({0x00, 0x04, 0x08, 0x0C})
MPIDR_AFF_MASK = 0xFF_00FF_FFFF


def one(value: int) -> Result:
    return (to_reg(value), 0, 0, 0)


NOT_SUPPORTED_RESULT: Result = (NOT_SUPPORTED, 0, 0, 0)


@dataclass(frozen=True)
class CallInfo:
    fid: int
    name: str


class Hypercalls:
    def __init__(self, vm: Vm) -> None:
        self.vm = vm
        self.profile = vm.config.profile
        self.error = self.profile.error
        table: dict[int, tuple[str, Handler]] = {
            Fid.SMCCC_VERSION: ("SMCCC_VERSION", lambda v, a, b, c: one(SMCCC_VERSION_1_1)),
            Fid.SMCCC_ARCH_FEATURES: ("SMCCC_ARCH_FEATURES", self._arch_features),
            Fid.PSCI_VERSION: ("PSCI_VERSION", lambda v, a, b, c: one(PSCI_VERSION_1_1)),
            Fid.PSCI_CPU_SUSPEND: ("PSCI_CPU_SUSPEND", self._cpu_suspend),
            Fid.PSCI_CPU_SUSPEND_32: ("PSCI_CPU_SUSPEND", self._cpu_suspend),
            Fid.PSCI_CPU_OFF: ("PSCI_CPU_OFF", self._cpu_off),
            Fid.PSCI_CPU_ON: ("PSCI_CPU_ON", self._cpu_on),
            Fid.PSCI_CPU_ON_32: ("PSCI_CPU_ON", self._cpu_on),
            Fid.PSCI_AFFINITY_INFO: ("PSCI_AFFINITY_INFO", self._affinity_info),
            Fid.PSCI_AFFINITY_INFO_32: ("PSCI_AFFINITY_INFO", self._affinity_info),
            Fid.PSCI_MIGRATE_INFO_TYPE: ("PSCI_MIGRATE_INFO_TYPE", lambda v, a, b, c: one(2)),
            Fid.PSCI_SYSTEM_OFF: ("PSCI_SYSTEM_OFF", self._system_off),
            Fid.PSCI_SYSTEM_RESET: ("PSCI_SYSTEM_RESET", self._system_reset),
            Fid.PSCI_SYSTEM_RESET2: ("PSCI_SYSTEM_RESET2", self._system_reset2),
            Fid.PSCI_SYSTEM_RESET2_32: ("PSCI_SYSTEM_RESET2", self._system_reset2),
            Fid.PSCI_FEATURES: ("PSCI_FEATURES", self._psci_features),
            Fid.VENDOR_HYP_CALL_UID: ("VENDOR_HYP_CALL_UID", lambda v, a, b, c: KVM_UID),
            Fid.VENDOR_HYP_KVM_FEATURES: ("VENDOR_HYP_KVM_FEATURES", self._kvm_features),
        }
        guard_handlers: dict[GuardOp, Handler] = {
            GuardOp.INFO: self._info,
            GuardOp.ENROLL: self._enroll,
            GuardOp.MAP: self._map,
            GuardOp.UNMAP: self._unmap,
            GuardOp.MMIO_GUARD: self._mmio_guard,
            GuardOp.MEM_SHARE: self._mem_share,
            GuardOp.MEM_UNSHARE: self._mem_share,
            GuardOp.MEM_RELINQUISH: self._mem_share,
            GuardOp.RGUARD_MAP: self._rguard_map,
            GuardOp.RGUARD_UNMAP: self._rguard_unmap,
        }
        for call in self.profile.calls:
            table[call.fid] = (call.name, guard_handlers[call.op])
        self.table = table
        self.psci_fids = frozenset(f for f in table if (f >> 24) & 0x3F == 0x04)

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, vcpu: Vcpu, x0: int, x1: int, x2: int, x3: int) -> Result | Exit:
        fid = x0 & 0xFFFF_FFFF
        entry = self.table.get(fid)
        if entry is None:
            return NOT_SUPPORTED_RESULT
        if not fid & SMC64:
            # SMC32 convention: only the low 32 bits of the arguments are defined.
            x1 &= 0xFFFF_FFFF
            x2 &= 0xFFFF_FFFF
            x3 &= 0xFFFF_FFFF
        return entry[1](vcpu, x1, x2, x3)

    def name_of(self, fid: int) -> str:
        entry = self.table.get(fid & 0xFFFF_FFFF)
        return entry[0] if entry else "UNKNOWN"

    def implemented(self, fid: int) -> bool:
        return (fid & 0xFFFF_FFFF) in self.table

    # -- SMCCC and KVM vendor discovery -----------------------------------------------------

    def _arch_features(self, vcpu: Vcpu, fid: int, _b: int, _c: int) -> Result:
        if fid & 0xFFFF_FFFF in (Fid.SMCCC_VERSION, Fid.SMCCC_ARCH_FEATURES):
            return one(0)
        return NOT_SUPPORTED_RESULT

    def _kvm_features(self, vcpu: Vcpu, _a: int, _b: int, _c: int) -> Result:
        return one(self.profile.feature_bitmap())

    # -- PSCI -----------------------------------------------------------------------------

    def _psci_features(self, vcpu: Vcpu, fid: int, _b: int, _c: int) -> Result:
        fid &= 0xFFFF_FFFF
        if fid in self.psci_fids or fid == Fid.SMCCC_VERSION:
            return one(0)
        return NOT_SUPPORTED_RESULT

    def _cpu_suspend(self, vcpu: Vcpu, _a: int, _b: int, _c: int) -> Result:
        # KVM treats every power state as a WFI-like standby that returns at once.
        return one(PsciRet.SUCCESS)

    def _target(self, mpidr: int) -> Vcpu | None:
        for other in self.vm.vcpus:
            if other.mpidr & MPIDR_AFF_MASK == mpidr & MPIDR_AFF_MASK:
                return other
        return None

    def _cpu_on(self, vcpu: Vcpu, mpidr: int, entry: int, context: int) -> Result:
        target = self._target(mpidr)
        if target is None:
            return one(PsciRet.INVALID_PARAMETERS)
        if target.powered_on:
            return one(PsciRet.ALREADY_ON)
        if self.vm.memory.slot_at(entry) is None:
            return one(PsciRet.INVALID_ADDRESS)
        target.power_on(entry, context)
        return one(PsciRet.SUCCESS)

    def _cpu_off(self, vcpu: Vcpu, _a: int, _b: int, _c: int) -> Result | Exit:
        return vcpu.power_off()

    def _affinity_info(self, vcpu: Vcpu, mpidr: int, level: int, _c: int) -> Result:
        if level != 0:
            return one(PsciRet.INVALID_PARAMETERS)
        target = self._target(mpidr)
        if target is None:
            return one(PsciRet.INVALID_PARAMETERS)
        return one(AffinityState.ON if target.powered_on else AffinityState.OFF)

    def _system_off(self, vcpu: Vcpu, _a: int, _b: int, _c: int) -> Exit:
        return SystemEvent(SystemEventKind.OFF, vcpu.index, vcpu.backend.get(Reg.PC))

    def _system_reset(self, vcpu: Vcpu, _a: int, _b: int, _c: int) -> Exit:
        return SystemEvent(SystemEventKind.RESET, vcpu.index, vcpu.backend.get(Reg.PC))

    def _system_reset2(self, vcpu: Vcpu, reset_type: int, _cookie: int, _c: int) -> Result | Exit:
        # Architectural reset types other than SYSTEM_WARM_RESET (0) are reserved; vendor
        # types (bit 31) are not implemented.
        if reset_type != 0:
            return one(PsciRet.INVALID_PARAMETERS)
        return SystemEvent(SystemEventKind.RESET, vcpu.index, vcpu.backend.get(Reg.PC), 0)

    # -- MMIO guard ---------------------------------------------------------------------------

    def _info(self, vcpu: Vcpu, _a: int, _b: int, _c: int) -> Result:
        return one(self.vm.config.granule)

    def _enroll(self, vcpu: Vcpu, _a: int, _b: int, _c: int) -> Result:
        if self.vm.config.nisv is NisvPolicy.USER:
            vcpu.note("ENROLL refused: the VMM takes syndrome-less accesses (--nisv user)")
            return (self.error, 0, 0, 0)
        self.vm.guard.enroll()
        return one(0)

    def _map_granule(self, vcpu: Vcpu, ipa: int) -> str | None:
        """Map one granule; returns why it failed, or None."""
        guard = self.vm.guard
        config = self.vm.config
        if ipa & (config.granule - 1):
            return f"address {ipa:#x} is not aligned to the {config.granule:#x}-byte granule"
        if ipa + config.granule > 1 << config.ipa_bits:
            return f"granule {ipa:#x} is beyond the {config.ipa_bits}-bit IPA space"
        slot = self.vm.memory.overlapping(ipa, config.granule)
        if slot is not None:
            return f"granule {ipa:#x} overlaps memory slot {slot.name}"
        g = ipa >> guard.shift
        if g not in guard.mapped and len(guard.mapped) >= config.guard_capacity:
            return f"out of memory: {config.guard_capacity} granules already mapped"
        guard.add(g)
        return None

    def _refuse(self, vcpu: Vcpu, call: str, why: str) -> Result:
        vcpu.note(f"{call} failed: {why}")
        return (self.error, 0, 0, 0)

    def _map(self, vcpu: Vcpu, ipa: int, mair_index: int, _c: int) -> Result:
        if not self.vm.guard.enrolled:
            return self._refuse(vcpu, "MAP", "the VM is not enrolled")
        if self.vm.config.check_mair:
            if mair_index > 7:
                return self._refuse(vcpu, "MAP", f"MAIR index {mair_index} is not 0..7")
            attr = (vcpu.backend.get(Reg.MAIR_EL1) >> (8 * mair_index)) & 0xFF
            if attr not in DEVICE_ATTRS:
                return self._refuse(
                    vcpu, "MAP", f"MAIR_EL1 attribute {mair_index} is {attr:#04x}, not Device"
                )
        why = self._map_granule(vcpu, ipa)
        if why is not None:
            return self._refuse(vcpu, "MAP", why)
        return one(0)

    def _unmap(self, vcpu: Vcpu, ipa: int, _b: int, _c: int) -> Result:
        guard = self.vm.guard
        if not guard.enrolled:
            return self._refuse(vcpu, "UNMAP", "the VM is not enrolled")
        if ipa & (self.vm.config.granule - 1):
            # The series' code rounds down without checking; a guest doing this has a bug.
            vcpu.note(f"UNMAP of misaligned address {ipa:#x}, rounded down to its granule")
        g = ipa >> guard.shift
        if g not in guard.mapped:
            return self._refuse(vcpu, "UNMAP", f"granule {g << guard.shift:#x} is not mapped")
        guard.discard(g)
        return one(0)

    def _mmio_guard(self, vcpu: Vcpu, ipa: int, _b: int, _c: int) -> Result:
        why = self._map_granule(vcpu, ipa)
        if why is not None:
            return self._refuse(vcpu, "MMIO_GUARD", why)
        self.vm.guard.enroll()
        return one(0)

    def _mem_share(self, vcpu: Vcpu, ipa: int, _b: int, _c: int) -> Result:
        granule = self.vm.config.granule
        slot = self.vm.memory.slot_at(ipa)
        if ipa & (granule - 1) or slot is None or slot.name != "ram":
            return self._refuse(vcpu, "MEM_SHARE", f"{ipa:#x} is not a granule of RAM")
        return one(0)

    def _ranged(self, vcpu: Vcpu, ipa: int, size: int, mapping: bool) -> Result:
        name = "MMIO_RGUARD_MAP" if mapping else "MMIO_RGUARD_UNMAP"
        guard = self.vm.guard
        granule = self.vm.config.granule
        if not guard.enrolled:
            return self._refuse(vcpu, name, "the VM is not enrolled")
        if ipa & (granule - 1) or size == 0 or size & (granule - 1):
            return self._refuse(vcpu, name, f"range {ipa:#x}+{size:#x} is not granule-aligned")
        done = 0
        while done < size:
            if mapping:
                if self._map_granule(vcpu, ipa + done) is not None:
                    break
            else:
                guard.discard((ipa + done) >> guard.shift)
            done += granule
        if done == 0:
            return self._refuse(vcpu, name, f"nothing at {ipa:#x} could be changed")
        return (0, done, 0, 0)

    def _rguard_map(self, vcpu: Vcpu, ipa: int, size: int, _c: int) -> Result:
        return self._ranged(vcpu, ipa, size, True)

    def _rguard_unmap(self, vcpu: Vcpu, ipa: int, size: int, _c: int) -> Result:
        return self._ranged(vcpu, ipa, size, False)


def call_info(hypercalls: Hypercalls) -> list[CallInfo]:
    return [CallInfo(fid, name) for fid, (name, _h) in sorted(hypercalls.table.items())]
