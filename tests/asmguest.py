"""Tiny assembly guests for end-to-end tests, built with the ziglang package.

Each guest gets a vector table whose synchronous handlers record ESR_EL1, FAR_EL1, ELR_EL1
and SPSR_EL1 in x20..x23, the vector offset in x24, count exceptions in x25, and resume after
the faulting instruction (an instruction abort returns to x30; ``svc #0xff`` returns to EL1h);
the body ends with PSCI SYSTEM_OFF.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

LINK = """
ENTRY(_start)
SECTIONS { . = 0x40080000; .text : { *(.text*) } .data : { *(.data*) *(.rodata*) } }
"""

PRELUDE = """
.macro vec off
  .balign 0x80
  mrs x20, esr_el1
  mrs x21, far_el1
  mrs x22, elr_el1
  mrs x23, spsr_el1
  mov x24, #\\off
  add x25, x25, #1
  b handler_tail
.endm
.global _start
.text
_start:
  adr x9, vectors
  msr vbar_el1, x9
  isb
  mov x25, #0
  ldr x9, =0x40070000
  mov sp, x9
  b body
.balign 2048
vectors:
  vec 0x000
  vec 0x080
  vec 0x100
  vec 0x180
  vec 0x200
  vec 0x280
  vec 0x300
  vec 0x380
  vec 0x400
  vec 0x480
  vec 0x500
  vec 0x580
  vec 0x600
  vec 0x680
  vec 0x700
  vec 0x780
handler_tail:
  lsr x26, x20, #26
  cmp x26, #0x20
  b.eq 1f
  cmp x26, #0x21
  b.eq 1f
  ldr x26, =0x560000ff
  cmp x20, x26
  b.eq 3f
  lsr x26, x20, #26
  cmp x26, #0x15
  mov x26, x22
  b.eq 2f
  add x26, x22, #4
  b 2f
1:mov x26, x30
2:msr elr_el1, x26
  eret
3:mov x26, #0x3c5
  msr spsr_el1, x26
  mov x26, x22
  b 2b
off:
  movz w0, #0x0008
  movk w0, #0x8400, lsl #16
  hvc #0
  b .
.macro hcall fid
  ldr x0, =\\fid
  hvc #0
.endm
body:
"""


# Enrolls the guest and maps the UART's granule (x0..x1 clobbered).
ENROLL = """
  hcall 0xc6000003
  mov x0, #0x0004
  movk x0, #0xc600, lsl #16
  ldr x1, =0x09000000
  hvc #0
"""


def build(body: str, cache: Path) -> Path:
    source = PRELUDE + body + "\n  b off\n.ltorg\n"
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    out = cache / f"g{key}.elf"
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    src = cache / f"g{key}.S"
    ld = cache / "link.ld"
    src.write_text(source)
    ld.write_text(LINK)
    tmp = cache / f"g{key}.tmp"
    done = subprocess.run(
        [sys.executable, "-m", "ziglang", "cc", "-target", "aarch64-freestanding-none",
         "-nostdlib", "-T", str(ld), str(src), "-o", str(tmp)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"assembling {src} failed:\n{done.stderr}")
    tmp.replace(out)
    return out
