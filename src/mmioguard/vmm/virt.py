"""The `virt` machine: memory map, devices, boot protocol and the run loop.

vCPUs run one after another in one thread, in fixed-size slices when there are several, so a
run is reproducible: the same guest gives the same trace every time.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mmioguard.cpu.unicorn import NativeSetup, UnicornVcpu, disassembler
from mmioguard.hyp.config import VmConfig
from mmioguard.hyp.exits import GuestStop, Halted, SliceEnd, SystemEvent
from mmioguard.hyp.exits import SystemEventKind as Sys
from mmioguard.hyp.memory import MemorySlot, PhysMemory
from mmioguard.hyp.timer import COUNTER_HZ, TICK_NS, ClockMode
from mmioguard.hyp.vcpu import Vcpu
from mmioguard.hyp.vm import Tracer, Vm
from mmioguard.native import NativeGuard, NativePl011, load_native
from mmioguard.native.timer import NativeClock
from mmioguard.vmm.bus import MmioBus
from mmioguard.vmm.device import MmioDevice
from mmioguard.vmm.devices.gicv2 import VIRT_GICC_BASE, VIRT_GICD_BASE, GicV2
from mmioguard.vmm.devices.pl011 import Pl011
from mmioguard.vmm.devices.pl031 import Pl031
from mmioguard.vmm.devicetree import (
    GicDescription,
    MachineDescription,
    TimerDescription,
    build_dtb,
    padded,
)
from mmioguard.vmm.loader import ImageError, load_image

MIB = 1 << 20
RAM_BASE = 0x4000_0000
FLASH_BASE = 0x0
FLASH_SIZE = 64 * MIB
UART_BASE = 0x0900_0000
RTC_BASE = 0x0901_0000
DEVICE_SIZE = 0x1000
GIC_FRAME_SIZE = 0x1_0000
UART_SPI = 1  # GIC interrupt ID 33, as on QEMU's virt board
RTC_SPI = 2  # ID 34
GIC_IRQS = 64
# Under --icount the RTC starts at 2000-01-01 00:00:00 UTC.
ICOUNT_RTC_EPOCH = 946_684_800
# A WFI wait longer than this is cut into pieces, so the watchdog is heard.
MAX_IDLE_SLEEP = 0.05
# The boot data (device tree, initrd below it) live in the last 2 MiB of RAM: out of the way of
# images linked low. The device tree ends at the end of RAM, inside one 2 MiB block as arm64
# kernels require: Linux keeps it reserved, so nothing writes the last page of RAM, which the
# backend write-protects to watch stores that cross the end of RAM (UnicornVcpu.watch_writes).
DTB_AREA = 2 * MIB
# Instructions per slice when several vCPUs share the thread.
SMP_SLICE = 20_000


class ExitStatus(enum.IntEnum):
    OFF = 0
    GUEST = 1
    USAGE = 2
    LIMIT = 3


@dataclass
class MachineOptions:
    image: str
    memory: int = 128 * MIB
    load_addr: int | None = None
    initrd: str | None = None
    bootargs: str = ""
    no_reboot: bool = False
    max_insns: int | None = None
    timeout: float | None = None
    vm: VmConfig = field(default_factory=VmConfig)
    # Deterministic RTC for tests: seconds since the epoch at boot, advancing 0 per second.
    rtc_clock: Callable[[], float] | None = None
    # Use the native fast path when it can be built (pure Python otherwise, said once).
    native: bool = True


@dataclass(frozen=True)
class Outcome:
    status: ExitStatus
    reason: str
    report: str = ""
    resets: int = 0


class _Watchdog:
    """Stops the running vCPU once the wall-clock budget is spent.

    Unicorn's own ``timeout`` reports bogus aborts when it fires inside a device access; here
    the stop request only ends the run, so whatever state it leaves is never resumed.
    """

    def __init__(self, seconds: float, stop: Callable[[], None]) -> None:
        self.fired = threading.Event()
        self._done = threading.Event()
        self._seconds = seconds
        self._stop = stop
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        if self._done.wait(self._seconds):
            return
        self.fired.set()
        # The run loop may be between slices when the first request lands: repeat until it
        # notices.
        while not self._done.wait(0.05):
            self._stop()

    def cancel(self) -> None:
        self._done.set()


class _Signalling:
    """A device whose accesses can change what the GIC signals to the accessing vCPU.

    After each access the running vCPU is told if an interrupt is now signalled to it, so that
    it stops at the next clean point and takes it; reads of the GIC's CPU interface first bring
    the running vCPU's timer line up to date (the guest may have just masked or re-armed it).
    """

    def __init__(
        self, device: MmioDevice, gic: GicV2, vcpus: list[Vcpu], sync_timer: bool = False
    ) -> None:
        self.name = device.name
        self.size = device.size
        self._device = device
        self._gic = gic
        self._vcpus = vcpus
        self._sync = sync_timer

    def read(self, offset: int, size: int) -> int:
        gic = self._gic
        cpu = gic.current_cpu
        if self._sync:
            self._vcpus[cpu].sync_timer()
        value = self._device.read(offset, size)
        if gic.irq_pending(cpu):
            self._vcpus[cpu].device_raised_interrupt()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        self._device.write(offset, size, value)
        gic = self._gic
        cpu = gic.current_cpu
        if gic.irq_pending(cpu):
            self._vcpus[cpu].device_raised_interrupt()

    def reset(self) -> None:
        self._device.reset()


class VirtMachine:
    def __init__(
        self,
        options: MachineOptions,
        console: Callable[[bytes], None],
        warn: Callable[[str], None],
        tracer: Tracer | None = None,
    ) -> None:
        self.options = options
        self.tracer = tracer
        self._warn = warn
        config = options.vm
        self.memory = PhysMemory()
        self.ram = self.memory.add(MemorySlot(RAM_BASE, options.memory, "ram"))
        self.bus = MmioBus()
        self.gic = GicV2(num_cpus=config.smp, num_irqs=GIC_IRQS, on_unknown=warn)
        self.uart = Pl011(console, irq=self.gic.line(32 + UART_SPI), on_unknown=warn)
        self.rtc = Pl031(
            options.rtc_clock or self._rtc_clock(config),
            irq=self.gic.line(32 + RTC_SPI),
            on_unknown=warn,
        )
        regions = [(RAM_BASE, options.memory, "RAM")]
        self.image = load_image(options.image, regions, RAM_BASE, options.load_addr)
        self.initrd: bytes | None = None
        if options.initrd is not None:
            try:
                with open(options.initrd, "rb") as f:
                    self.initrd = f.read()
            except OSError as err:
                raise ImageError(f"cannot read initrd {options.initrd}: {err.strerror}") from err
        self.vm = Vm(config, self.memory, self.bus, tracer, warn, disassembler())
        self.vm.interrupts = self.gic
        vcpus = self.vm.vcpus
        self.bus.insert(
            VIRT_GICD_BASE, GIC_FRAME_SIZE, _Signalling(self.gic.distributor, self.gic, vcpus)
        )
        self.bus.insert(
            VIRT_GICC_BASE,
            GIC_FRAME_SIZE,
            _Signalling(self.gic.cpu_interface, self.gic, vcpus, sync_timer=True),
        )
        self.bus.insert(UART_BASE, DEVICE_SIZE, _Signalling(self.uart, self.gic, vcpus))
        self.bus.insert(RTC_BASE, DEVICE_SIZE, _Signalling(self.rtc, self.gic, vcpus))
        native = self._native(options, warn)
        traced = tracer is not None
        # C answers UARTFR and buffers UARTDR output (shared by every vCPU's region), unless a
        # trace wants every access in Python.
        uart_fast = None
        if native is not None and not traced:
            uart_fast = NativePl011(native.lib)
            self.uart.attach_fast_path(uart_fast)
        self.backends: list[UnicornVcpu] = []
        for vcpu in self.vm.vcpus:
            backend = UnicornVcpu(vcpu, self.memory.slots, native)
            vcpu.attach(backend)
            for slot in self.memory.slots:
                # The widest store (STP of two Q registers) is 32 bytes.
                backend.watch_writes(slot.end - 32, slot.end - 1, vcpu.on_watched_write)
            for base, size, device in self.bus.devices():
                read, write = vcpu.mmio_callbacks(base, device.read, device.write, traced)
                pl011 = uart_fast if base == UART_BASE else None
                backend.map_device(base, size, read, write, device.read, device.write, pl011)
            self.backends.append(backend)
        self.dtb_addr, self.dtb = self._place_boot_data()
        self.resets = 0
        self.load()

    def _rtc_clock(self, config: VmConfig) -> Callable[[], float]:
        """Host time, or under --icount a fixed epoch plus the guest's own time, so that two
        runs read the same date as well as the same counter."""
        if config.clock.mode is not ClockMode.ICOUNT:
            return time.time

        def deterministic() -> float:
            return ICOUNT_RTC_EPOCH + self.vm.clock.now() / COUNTER_HZ

        return deterministic

    def _native(self, options: MachineOptions, warn: Callable[[str], None]) -> NativeSetup | None:
        if not options.native:
            return None
        # CI runs the guest tests once more with the module built with UBSan (trap mode).
        lib, reason = load_native(ubsan=os.environ.get("MMIOGUARD_NATIVE_UBSAN") == "1")
        if lib is None:
            warn(f"native fast path unavailable ({reason}); running in pure Python")
            return None
        guard = NativeGuard(lib, options.vm.granule, capacity=options.vm.guard_capacity)
        self.vm.guard.mirror = guard
        clock = NativeClock(lib, options.vm.clock)
        self.vm.clock = clock
        return NativeSetup(lib, guard, clock)

    # -- boot -----------------------------------------------------------------------------

    def _place_boot_data(self) -> tuple[int, bytes]:
        ram_end = RAM_BASE + self.options.memory
        area = ram_end - DTB_AREA
        initrd_range: tuple[int, int] | None = None
        if self.initrd is not None:
            start = (area - len(self.initrd)) & ~0xFFFF
            initrd_range = (start, start + len(self.initrd))
        description = MachineDescription(
            memory_base=RAM_BASE,
            memory_size=self.options.memory,
            cpus=tuple(v.mpidr & 0xFF_00FF_FFFF for v in self.vm.vcpus),
            uart_base=UART_BASE,
            uart_irq=UART_SPI,
            rtc_base=RTC_BASE,
            rtc_irq=RTC_SPI,
            gic=GicDescription(
                dist_base=VIRT_GICD_BASE,
                dist_size=GIC_FRAME_SIZE,
                cpu_base=VIRT_GICC_BASE,
                cpu_size=GIC_FRAME_SIZE,
            ),
            timer=TimerDescription(),
            bootargs=self.options.bootargs,
            initrd_start=initrd_range[0] if initrd_range else None,
            initrd_end=initrd_range[1] if initrd_range else None,
        )
        # Padded to whole pages: a kernel reserves the blob's totalsize, so none of the last
        # page of RAM is left for its allocator.
        dtb = build_dtb(description)
        dtb = padded(dtb, (len(dtb) + 0xFFF) & ~0xFFF)
        dtb_addr = ram_end - len(dtb)
        if dtb_addr < area:
            raise ImageError(f"the device tree ({len(dtb)} bytes) does not fit in its 2 MiB")
        low = initrd_range[0] if initrd_range else area
        if low < RAM_BASE:
            raise ImageError("the initrd does not fit in RAM: give more --memory")
        for i, seg in enumerate(self.image.segments):
            if seg.addr < ram_end and low < seg.addr + seg.memsz:
                raise ImageError(
                    f"{self.options.image}: segment {i} ({seg.addr:#x}-{seg.addr + seg.memsz:#x})"
                    f" overlaps the boot data at {low:#x}-{ram_end:#x} (device tree, initrd); "
                    "give more --memory or link the image lower"
                )
        return dtb_addr, dtb

    def load(self) -> None:
        """Write the images into RAM and put vCPU 0 at the entry point (boot and reset)."""
        if self.resets:
            # A fresh anonymous mapping is already zero: clearing it at boot would only make
            # every page of guest RAM resident.
            self.ram.clear()
        for seg in self.image.segments:
            self.memory.write(seg.addr, seg.data)
        if self.initrd is not None:
            start = (RAM_BASE + self.options.memory - DTB_AREA - len(self.initrd)) & ~0xFFFF
            self.memory.write(start, self.initrd)
        self.memory.write(self.dtb_addr, self.dtb)
        self.uart.reset()
        self.rtc.reset()
        self.gic.reset()
        self.vm.reset()
        for vcpu in self.vm.vcpus:
            vcpu.powered_on = vcpu.index == 0
            if vcpu.powered_on:
                vcpu.boot(self.image.entry, self.dtb_addr)
        if self.tracer is not None:
            self.vm.trace_event(
                "boot", entry=self.image.entry, dtb=self.dtb_addr, image=self.options.image
            )

    # -- run loop -------------------------------------------------------------------------

    def run(self) -> Outcome:
        watchdog = None
        if self.options.timeout is not None:
            watchdog = _Watchdog(self.options.timeout, self._stop_all)
            watchdog.start()
        try:
            outcome = self._run(watchdog)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            self.uart.flush()
        if self.tracer is not None:
            self.vm.trace_event(
                "stop", status=int(outcome.status), reason=outcome.reason, report=outcome.report
            )
        return outcome

    def _stop_all(self) -> None:
        for backend in self.backends:
            backend.stop()

    def _run(self, watchdog: _Watchdog | None) -> Outcome:
        vcpus = self.vm.vcpus
        max_insns = self.options.max_insns
        smp = len(vcpus) > 1
        executed = 0
        waiting: set[int] = set()
        current = 0
        while True:
            vcpu = vcpus[current]
            if vcpu.index in waiting and vcpu.wake_pending():
                waiting.discard(vcpu.index)
            if not vcpu.powered_on or vcpu.index in waiting:
                current = (current + 1) % len(vcpus)
                if all(not v.powered_on or v.index in waiting for v in vcpus):
                    idle = self._idle(waiting, watchdog)
                    if idle is not None:
                        return idle
                continue
            self.gic.current_cpu = vcpu.index
            count = SMP_SLICE if smp else 0
            if max_insns is not None:
                count = min(count or max_insns, max(max_insns - executed, 1))
            exit_ = vcpu.run(count)
            self.uart.take_fast_output()
            if watchdog is not None and watchdog.fired.is_set():
                return Outcome(ExitStatus.LIMIT, f"--timeout {self.options.timeout:g}s reached")
            if isinstance(exit_, SliceEnd):
                executed += count
                if max_insns is not None and executed >= max_insns:
                    return Outcome(ExitStatus.LIMIT, f"--max-insns {max_insns} reached")
                current = (current + 1) % len(vcpus)
            elif isinstance(exit_, SystemEvent):
                if exit_.kind is Sys.OFF:
                    return Outcome(ExitStatus.OFF, "the guest called PSCI SYSTEM_OFF",
                                   resets=self.resets)
                if self.options.no_reboot:
                    return Outcome(ExitStatus.OFF, "the guest asked for a reset (--no-reboot)",
                                   resets=self.resets)
                self.resets += 1
                self.load()
                waiting.clear()
                current = 0
            elif isinstance(exit_, GuestStop):
                return Outcome(ExitStatus.GUEST, exit_.reason, exit_.report, self.resets)
            elif isinstance(exit_, Halted):
                if not exit_.powered_off:
                    waiting.add(vcpu.index)
                current = (current + 1) % len(vcpus)

    def _idle(self, waiting: set[int], watchdog: _Watchdog | None) -> Outcome | None:
        """Every vCPU that is on waits in WFI: let time pass until the next timer event.

        A deterministic clock jumps to it; a real one sleeps (in short pieces, so the
        watchdog is heard). None: go on running.
        """
        events = [
            event
            for index in waiting
            if (event := self.vm.vcpus[index].next_timer_event()) is not None
        ]
        if not events:
            return self._all_idle(waiting)
        target = min(events)
        clock = self.vm.clock
        if clock.config.mode is ClockMode.ICOUNT:
            clock.skip_to(target)
        else:
            delay = (target - clock.now()) * TICK_NS / 1e9
            if delay > 0:
                time.sleep(min(delay, MAX_IDLE_SLEEP))
        if watchdog is not None and watchdog.fired.is_set():
            return Outcome(ExitStatus.LIMIT, f"--timeout {self.options.timeout:g}s reached")
        return None

    def _all_idle(self, waiting: set[int]) -> Outcome:
        if not waiting:
            return Outcome(
                ExitStatus.GUEST,
                "all-off",
                "every vCPU is powered off (PSCI CPU_OFF) and none can wake up: the guest "
                "should call PSCI SYSTEM_OFF to end the run",
                self.resets,
            )
        return Outcome(
            ExitStatus.GUEST,
            "wfi-forever",
            "every running vCPU waits for an interrupt (WFI) and none can come: no virtual "
            "timer is armed and no device interrupt is pending or enabled",
            self.resets,
        )
