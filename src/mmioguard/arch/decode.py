"""AArch64 load/store decoding, data-abort syndrome construction and software emulation.

A hypervisor on real hardware learns about a guest's device access from the data abort's
instruction syndrome (ESR ISS). Unicorn gives us no syndrome, so we rebuild it from the
instruction word: `decode` classifies the instruction, `data_abort_iss` produces the ISS bits
the hardware would have reported, and `emulate` performs the access in software when the VMM
has to carry it out on a device model instead of letting Unicorn execute it.

Encodings follow the "Loads and Stores" section of the A64 instruction set encoding in the Arm
ARM. Should-be-one fields (Rs/Rt2 of LDAR, LDXR, LDAPR, ...) are not checked, because
implementations (QEMU among them, hence Unicorn) execute such words as the instruction anyway;
encodings the architecture calls UNDEFINED or unallocated decode to None.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

_MASK32 = (1 << 32) - 1
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1
_XZR = 31


class AccessClass(enum.Enum):
    """What kind of transfer an instruction performs; together with the addressing mode this
    decides whether hardware gives a valid syndrome."""

    SINGLE = "single"  # one general-purpose register (LDR/STR family, LDAR/STLR, LDAPR, LDRAA)
    LITERAL = "literal"  # PC-relative load of one register (GPR or SIMD&FP)
    PAIR = "pair"  # LDP/STP/LDNP/STNP/LDPSW
    SIMD = "simd"  # one SIMD&FP register (B/H/S/D/Q)
    SIMD_PAIR = "simd_pair"  # LDP/STP/LDNP/STNP of SIMD&FP registers
    SIMD_STRUCT = "simd_struct"  # LD1-4/ST1-4 (multiple and single structures), LD1R-LD4R
    EXCLUSIVE = "exclusive"  # LDXR/STXR/LDAXR/STLXR and their pair forms
    ATOMIC = "atomic"  # LSE read-modify-write: LDADD..LDUMIN, SWP, CAS, CASP
    BLOCK64 = "block64"  # FEAT_LS64: LD64B/ST64B/ST64BV/ST64BV0
    TAG = "tag"  # FEAT_MTE tag accesses: LDG/STG/STZG/ST2G/STZ2G/STGP/LDGM/STGM/STZGM
    PREFETCH = "prefetch"  # PRFM/PRFUM: a hint, no access


class AddrMode(enum.Enum):
    OFFSET = "offset"  # [Xn|SP, #imm] (imm may be 0): no writeback
    REGISTER = "register"  # [Xn|SP, Rm, extend #shift]: no writeback
    PRE_INDEX = "pre_index"  # [Xn|SP, #imm]!
    POST_INDEX = "post_index"  # [Xn|SP], #imm  or  [Xn|SP], Xm (SIMD structures)
    LITERAL = "literal"  # PC + imm


class Extend(enum.Enum):
    """Index-register extension of the register-offset form (option field)."""

    UXTW = 0b010
    UXTX = 0b011  # printed as LSL
    SXTW = 0b110
    SXTX = 0b111


class AtomicOp(enum.Enum):
    ADD = "add"
    CLR = "clr"  # memory AND NOT Rs
    EOR = "eor"
    SET = "set"  # memory OR Rs
    SMAX = "smax"
    SMIN = "smin"
    UMAX = "umax"
    UMIN = "umin"
    SWP = "swp"
    CAS = "cas"
    CASP = "casp"


_LSE_OPS = (
    AtomicOp.ADD,
    AtomicOp.CLR,
    AtomicOp.EOR,
    AtomicOp.SET,
    AtomicOp.SMAX,
    AtomicOp.SMIN,
    AtomicOp.UMAX,
    AtomicOp.UMIN,
)


@dataclass(frozen=True)
class Structure:
    """Shape of an LD1-4/ST1-4 access (SIMD_STRUCT only)."""

    selem: int  # elements per structure (the digit in LDn)
    nregs: int  # vector registers transferred, starting at rt, wrapping at 31
    lane: int | None  # single-structure lane index; None for all lanes or replicate
    replicate: bool  # LDnR: one structure loaded into every lane
    q: bool  # 128-bit registers (else 64-bit)


@dataclass(frozen=True)
class LoadStore:
    """A decoded load/store.

    Register numbers are raw encodings: for data registers 31 is XZR/WZR (or V31 when `simd`),
    for `rn` 31 is SP. `size` is the bytes per register transferred (the element size for
    SIMD_STRUCT); `length` is the total bytes the instruction touches from its first address
    (0 for prefetches and for the MTE bulk operations, whose size is implementation defined).
    """

    insn: int
    cls: AccessClass
    mnemonic: str  # Arm's base mnemonic, lower case, no alias substitution (LDADD, not STADD)
    is_read: bool
    is_write: bool
    size: int
    length: int
    isv: bool
    rt: int
    rt2: int | None = None
    rn: int | None = None  # None only for PC-relative (LITERAL mode)
    rs: int | None = None  # status (STXR, ST64BV*) or compare/operand (CAS, LDADD...) register
    simd: bool = False  # rt/rt2 name SIMD&FP registers
    sign_extend: bool = False
    sixty_four: bool = False  # the register transferred is an X register (ISS.SF)
    acquire_release: bool = False
    mode: AddrMode = AddrMode.OFFSET
    imm: int = 0  # signed byte offset; for POST_INDEX the amount added to the base afterwards
    rm: int | None = None  # index register (REGISTER mode, SIMD structure post-index)
    extend: Extend = Extend.UXTX
    shift: int = 0
    unprivileged: bool = False  # LDTR/STTR family: checked with EL0 permissions
    atomic_op: AtomicOp | None = None
    structure: Structure | None = None
    pointer_auth: bool = False  # LDRAA/LDRAB: the base is authenticated before use

    @property
    def writeback(self) -> bool:
        return self.mode in (AddrMode.PRE_INDEX, AddrMode.POST_INDEX)

    @property
    def post_index(self) -> bool:
        return self.mode is AddrMode.POST_INDEX


class RegisterView(Protocol):
    """Read access to the vCPU registers, implemented by the caller."""

    def x(self, n: int) -> int:
        """X0..X30; 31 is XZR (0)."""
        ...

    def sp(self) -> int:
        """The stack pointer of the current exception level."""
        ...

    def pc(self) -> int:
        """Address of the instruction being emulated."""
        ...

    def v(self, n: int) -> int:
        """V0..V31 as a 128-bit integer."""
        ...


# access(address, size, is_write, value) -> value read (0 for writes); size is 1, 2, 4 or 8.
MemoryAccess = Callable[[int, int, bool, int], int]


@dataclass(frozen=True)
class Emulation:
    """Register updates produced by emulating one instruction.

    `gpr` maps X register numbers 0..30 to new 64-bit values (W results already zero-extended;
    writes to XZR are dropped, so 31 never appears). A base writeback to SP goes to `sp`.
    `vregs` maps V register numbers to new 128-bit values. The PC is left to the caller.
    """

    gpr: dict[int, int] = field(default_factory=dict)
    vregs: dict[int, int] = field(default_factory=dict)
    sp: int | None = None


class NotEmulable(Exception):
    """The instruction is decoded but `emulate` cannot carry it out in software."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Bit helpers


def _bits(value: int, hi: int, lo: int) -> int:
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def _bit(value: int, n: int) -> int:
    return (value >> n) & 1


def _sext(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    value &= (1 << bits) - 1
    return value - (1 << bits) if value & sign else value


_SIZE_SUFFIX = ("b", "h", "", "")
_ORDER_SUFFIX = ("", "l", "a", "al")  # indexed by A:R (acquire, release)


# ---------------------------------------------------------------------------------------------
# Decoding


def decode(insn: int) -> LoadStore | None:
    """Decode an A64 instruction word; None if it is not a load, store or prefetch.

    SVE/SME memory instructions, FEAT_MOPS (CPY*/SET*) and extensions newer than Armv8.7
    (LRCPC3, LSE128, THE, GCS, LSUI) are not decoded and also give None.
    """
    insn &= _MASK32
    # Loads and stores live where op0<2> (bit 27) is 1 and op0<0> (bit 25) is 0.
    if not _bit(insn, 27) or _bit(insn, 25):
        return None
    group = _bits(insn, 29, 28)
    if group == 0b11:
        return _decode_single_register(insn)
    if group == 0b10:
        return _decode_pair(insn)
    if group == 0b01:
        if not _bit(insn, 24):
            return _decode_literal(insn)
        if _bits(insn, 31, 24) == 0xD9 and _bit(insn, 21):
            return _decode_tag(insn)
        if not _bit(insn, 26) and not _bit(insn, 21) and _bits(insn, 11, 10) == 0:
            return _decode_rcpc_unscaled(insn)
        return None
    if _bit(insn, 26):
        if _bit(insn, 31):
            return None
        return _decode_simd_struct(insn)
    if not _bit(insn, 24):
        return _decode_exclusive_group(insn)
    return None


def _gpr_shape(size: int, opc: int) -> tuple[bool, int, bool, bool] | None:
    """(is_load, bytes, sign_extend, sixty_four) for a GPR size/opc pair; None for PRFM or
    unallocated. Shared by every single-register form."""
    nbytes = 1 << size
    if opc == 0:
        return (False, nbytes, False, size == 3)
    if opc == 1:
        return (True, nbytes, False, size == 3)
    if opc == 2:
        if size == 3:
            return None
        return (True, nbytes, True, True)
    if size >= 2:
        return None
    return (True, nbytes, True, False)


def _gpr_mnemonic(prefix: str, is_load: bool, sign: bool, nbytes: int) -> str:
    base = prefix.replace("*", "ld" if is_load else "st")
    if sign:
        return base + "s" + {1: "b", 2: "h", 4: "w"}[nbytes]
    return base + {1: "b", 2: "h", 4: "", 8: ""}[nbytes]


def _decode_single_register(insn: int) -> LoadStore | None:
    size = _bits(insn, 31, 30)
    v = _bit(insn, 26)
    opc = _bits(insn, 23, 22)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)

    if _bit(insn, 24):
        scale = 4 if (v and opc >= 2) else size
        imm = _bits(insn, 21, 10) << scale
        return _single(insn, size, v, opc, rt, rn, "*r", AddrMode.OFFSET, imm, allow_prfm=True)

    if not _bit(insn, 21):
        imm = _sext(_bits(insn, 20, 12), 9)
        kind = _bits(insn, 11, 10)
        if kind == 0b00:
            return _single(insn, size, v, opc, rt, rn, "*ur", AddrMode.OFFSET, imm, True, "prfum")
        if kind == 0b01:
            return _single(insn, size, v, opc, rt, rn, "*r", AddrMode.POST_INDEX, imm)
        if kind == 0b11:
            return _single(insn, size, v, opc, rt, rn, "*r", AddrMode.PRE_INDEX, imm)
        if v:
            return None
        return _single(insn, size, v, opc, rt, rn, "*tr", AddrMode.OFFSET, imm, unpriv=True)

    kind = _bits(insn, 11, 10)
    if kind == 0b00:
        return _decode_atomic(insn)
    if kind == 0b10:
        option = _bits(insn, 15, 13)
        if not option & 0b010:
            return None
        scale = 4 if (v and opc >= 2) else size
        return _single(
            insn,
            size,
            v,
            opc,
            rt,
            rn,
            "*r",
            AddrMode.REGISTER,
            0,
            allow_prfm=True,
            rm=_bits(insn, 20, 16),
            extend=Extend(option),
            shift=scale if _bit(insn, 12) else 0,
        )
    return _decode_pac(insn)


def _single(
    insn: int,
    size: int,
    v: int,
    opc: int,
    rt: int,
    rn: int,
    prefix: str,
    mode: AddrMode,
    imm: int,
    allow_prfm: bool = False,
    prfm_name: str = "prfm",
    *,
    unpriv: bool = False,
    rm: int | None = None,
    extend: Extend = Extend.UXTX,
    shift: int = 0,
) -> LoadStore | None:
    if v:
        if opc >= 2:
            if size != 0:
                return None
            nbytes = 16
        else:
            nbytes = 1 << size
        is_load = bool(opc & 1)
        return LoadStore(
            insn=insn,
            cls=AccessClass.SIMD,
            mnemonic=prefix.replace("*", "ld" if is_load else "st"),
            is_read=is_load,
            is_write=not is_load,
            size=nbytes,
            length=nbytes,
            isv=False,
            rt=rt,
            rn=rn,
            simd=True,
            mode=mode,
            imm=imm,
            rm=rm,
            extend=extend,
            shift=shift,
        )
    shape = _gpr_shape(size, opc)
    if shape is None:
        if size == 3 and opc == 2 and allow_prfm:
            return LoadStore(
                insn=insn,
                cls=AccessClass.PREFETCH,
                mnemonic=prfm_name,
                is_read=False,
                is_write=False,
                size=8,
                length=0,
                isv=False,
                rt=rt,
                rn=rn,
                mode=mode,
                imm=imm,
                rm=rm,
                extend=extend,
                shift=shift,
            )
        return None
    is_load, nbytes, sign, sf = shape
    return LoadStore(
        insn=insn,
        cls=AccessClass.SINGLE,
        mnemonic=_gpr_mnemonic(prefix, is_load, sign, nbytes),
        is_read=is_load,
        is_write=not is_load,
        size=nbytes,
        length=nbytes,
        isv=mode in (AddrMode.OFFSET, AddrMode.REGISTER),
        rt=rt,
        rn=rn,
        sign_extend=sign,
        sixty_four=sf,
        mode=mode,
        imm=imm,
        rm=rm,
        extend=extend,
        shift=shift,
        unprivileged=unpriv,
    )


def _decode_pac(insn: int) -> LoadStore | None:
    # LDRAA/LDRAB: only size=11, V=0 is allocated.
    if _bits(insn, 31, 30) != 0b11 or _bit(insn, 26):
        return None
    offset = _sext((_bit(insn, 22) << 9) | _bits(insn, 20, 12), 10) << 3
    wback = bool(_bit(insn, 11))
    return LoadStore(
        insn=insn,
        cls=AccessClass.SINGLE,
        mnemonic="ldrab" if _bit(insn, 23) else "ldraa",
        is_read=True,
        is_write=False,
        size=8,
        length=8,
        # The authenticated address is known when the access faults, so hardware reports a
        # syndrome unless the form writes back (QEMU does the same).
        isv=not wback,
        rt=_bits(insn, 4, 0),
        rn=_bits(insn, 9, 5),
        sixty_four=True,
        mode=AddrMode.PRE_INDEX if wback else AddrMode.OFFSET,
        imm=offset,
        pointer_auth=True,
    )


def _decode_atomic(insn: int) -> LoadStore | None:
    size = _bits(insn, 31, 30)
    if _bit(insn, 26):
        return None
    acq = _bit(insn, 23)
    rel = _bit(insn, 22)
    rs = _bits(insn, 20, 16)
    o3 = _bit(insn, 15)
    opc = _bits(insn, 14, 12)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    nbytes = 1 << size
    order = _ORDER_SUFFIX[(acq << 1) | rel]

    if o3 == 0 or opc == 0:
        op = _LSE_OPS[opc] if o3 == 0 else AtomicOp.SWP
        prefix = "swp" if op is AtomicOp.SWP else "ld" + op.value
        return LoadStore(
            insn=insn,
            cls=AccessClass.ATOMIC,
            mnemonic=prefix + order + _SIZE_SUFFIX[size],
            is_read=True,
            is_write=True,
            size=nbytes,
            length=nbytes,
            isv=False,
            rt=rt,
            rn=rn,
            rs=rs,
            sixty_four=size == 3,
            acquire_release=bool(acq or rel),
            atomic_op=op,
        )
    if opc == 0b100:
        if not acq or rel:
            return None
        return LoadStore(
            insn=insn,
            cls=AccessClass.SINGLE,
            mnemonic="ldapr" + _SIZE_SUFFIX[size],
            is_read=True,
            is_write=False,
            size=nbytes,
            length=nbytes,
            isv=True,
            rt=rt,
            rn=rn,
            sixty_four=size == 3,
            acquire_release=True,
        )
    if size == 3 and not acq and not rel and opc in (0b001, 0b010, 0b011, 0b101):
        # Xt..Xt+7 are transferred; Rt odd or Rt<4:3> == 0b11 is UNDEFINED.
        if rt & 1 or rt >= 24:
            return None
        name = {0b001: "st64b", 0b010: "st64bv0", 0b011: "st64bv", 0b101: "ld64b"}[opc]
        has_status = opc in (0b010, 0b011)
        return LoadStore(
            insn=insn,
            cls=AccessClass.BLOCK64,
            mnemonic=name,
            is_read=opc == 0b101,
            is_write=opc != 0b101,
            size=8,
            length=64,
            isv=False,
            rt=rt,
            rn=rn,
            rs=rs if has_status else None,
            sixty_four=True,
        )
    return None


def _decode_literal(insn: int) -> LoadStore | None:
    opc = _bits(insn, 31, 30)
    v = _bit(insn, 26)
    imm = _sext(_bits(insn, 23, 5), 19) << 2
    rt = _bits(insn, 4, 0)
    if v:
        if opc == 3:
            return None
        nbytes = 4 << opc
        return LoadStore(
            insn=insn,
            cls=AccessClass.LITERAL,
            mnemonic="ldr",
            is_read=True,
            is_write=False,
            size=nbytes,
            length=nbytes,
            isv=False,
            rt=rt,
            simd=True,
            mode=AddrMode.LITERAL,
            imm=imm,
        )
    if opc == 3:
        return LoadStore(
            insn=insn,
            cls=AccessClass.PREFETCH,
            mnemonic="prfm",
            is_read=False,
            is_write=False,
            size=8,
            length=0,
            isv=False,
            rt=rt,
            mode=AddrMode.LITERAL,
            imm=imm,
        )
    nbytes = 8 if opc == 1 else 4
    return LoadStore(
        insn=insn,
        cls=AccessClass.LITERAL,
        mnemonic="ldrsw" if opc == 2 else "ldr",
        is_read=True,
        is_write=False,
        size=nbytes,
        length=nbytes,
        # A single GPR load without writeback: the Arm ARM's ISV rule includes it, and QEMU
        # reports ISV=1 for it.
        isv=True,
        rt=rt,
        sign_extend=opc == 2,
        sixty_four=opc != 0,
        mode=AddrMode.LITERAL,
        imm=imm,
    )


def _decode_rcpc_unscaled(insn: int) -> LoadStore | None:
    # LDAPUR*/STLUR* (FEAT_LRCPC2): the unscaled-immediate shapes with acquire/release.
    size = _bits(insn, 31, 30)
    opc = _bits(insn, 23, 22)
    if size == 3 and opc >= 2:
        return None
    shape = _gpr_shape(size, opc)
    if shape is None:
        return None
    is_load, nbytes, sign, sf = shape
    name = ("ldapur" if is_load else "stlur") + ("s" if sign else "")
    name += {1: "b", 2: "h", 4: "w" if sign else "", 8: ""}[nbytes]
    return LoadStore(
        insn=insn,
        cls=AccessClass.SINGLE,
        mnemonic=name,
        is_read=is_load,
        is_write=not is_load,
        size=nbytes,
        length=nbytes,
        isv=True,
        rt=_bits(insn, 4, 0),
        rn=_bits(insn, 9, 5),
        sign_extend=sign,
        sixty_four=sf,
        acquire_release=True,
        imm=_sext(_bits(insn, 20, 12), 9),
    )


def _decode_tag(insn: int) -> LoadStore | None:
    opc = _bits(insn, 23, 22)
    imm9 = _bits(insn, 20, 12)
    op2 = _bits(insn, 11, 10)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    if op2 == 0:
        if opc == 0b01:
            return LoadStore(
                insn=insn,
                cls=AccessClass.TAG,
                mnemonic="ldg",
                is_read=True,
                is_write=False,
                size=16,
                length=16,
                isv=False,
                rt=rt,
                rn=rn,
                imm=_sext(imm9, 9) << 4,
            )
        if imm9 != 0:
            return None
        name = {0b00: "stzgm", 0b10: "stgm", 0b11: "ldgm"}[opc]
        return LoadStore(
            insn=insn,
            cls=AccessClass.TAG,
            mnemonic=name,
            is_read=opc == 0b11,
            is_write=opc != 0b11,
            size=8,
            length=0,
            isv=False,
            rt=rt,
            rn=rn,
            sixty_four=True,
        )
    name = ("stg", "stzg", "st2g", "stz2g")[opc]
    mode = {0b01: AddrMode.POST_INDEX, 0b10: AddrMode.OFFSET, 0b11: AddrMode.PRE_INDEX}[op2]
    return LoadStore(
        insn=insn,
        cls=AccessClass.TAG,
        mnemonic=name,
        is_read=False,
        is_write=True,
        size=16,
        length=32 if opc >= 2 else 16,
        isv=False,
        rt=rt,
        rn=rn,
        mode=mode,
        imm=_sext(imm9, 9) << 4,
    )


def _decode_pair(insn: int) -> LoadStore | None:
    opc = _bits(insn, 31, 30)
    v = _bit(insn, 26)
    kind = _bits(insn, 24, 23)
    is_load = bool(_bit(insn, 22))
    imm7 = _sext(_bits(insn, 21, 15), 7)
    rt2 = _bits(insn, 14, 10)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    mode = (AddrMode.OFFSET, AddrMode.POST_INDEX, AddrMode.OFFSET, AddrMode.PRE_INDEX)[kind]
    stem = ("ldnp" if is_load else "stnp") if kind == 0 else ("ldp" if is_load else "stp")
    if v:
        if opc == 3:
            return None
        nbytes = 4 << opc
        return LoadStore(
            insn=insn,
            cls=AccessClass.SIMD_PAIR,
            mnemonic=stem,
            is_read=is_load,
            is_write=not is_load,
            size=nbytes,
            length=2 * nbytes,
            isv=False,
            rt=rt,
            rt2=rt2,
            rn=rn,
            simd=True,
            mode=mode,
            imm=imm7 * nbytes,
        )
    sign = False
    if opc == 0b01:
        if kind == 0:
            return None
        if not is_load:
            # STGP (FEAT_MTE): stores two X registers and the base's allocation tag.
            return LoadStore(
                insn=insn,
                cls=AccessClass.TAG,
                mnemonic="stgp",
                is_read=False,
                is_write=True,
                size=8,
                length=16,
                isv=False,
                rt=rt,
                rt2=rt2,
                rn=rn,
                sixty_four=True,
                mode=mode,
                imm=imm7 << 4,
            )
        sign = True
        stem = "ldpsw"
        nbytes = 4
    elif opc == 0b11:
        return None
    else:
        nbytes = 8 if opc == 0b10 else 4
    return LoadStore(
        insn=insn,
        cls=AccessClass.PAIR,
        mnemonic=stem,
        is_read=is_load,
        is_write=not is_load,
        size=nbytes,
        length=2 * nbytes,
        isv=False,
        rt=rt,
        rt2=rt2,
        rn=rn,
        sign_extend=sign,
        sixty_four=sign or nbytes == 8,
        mode=mode,
        imm=imm7 * nbytes,
    )


def _decode_exclusive_group(insn: int) -> LoadStore | None:
    # Armv8.0-8.7 "Load/store exclusive" group: o2 (bit 23), L (22), o1 (21), o0 (15).
    size = _bits(insn, 31, 30)
    o2 = _bit(insn, 23)
    is_load = bool(_bit(insn, 22))
    o1 = _bit(insn, 21)
    rs = _bits(insn, 20, 16)
    o0 = _bit(insn, 15)
    rt2 = _bits(insn, 14, 10)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    nbytes = 1 << size

    if o2 == 0 and o1 == 0:
        name = ("ldaxr" if o0 else "ldxr") if is_load else ("stlxr" if o0 else "stxr")
        return LoadStore(
            insn=insn,
            cls=AccessClass.EXCLUSIVE,
            mnemonic=name + _SIZE_SUFFIX[size],
            is_read=is_load,
            is_write=not is_load,
            size=nbytes,
            length=nbytes,
            isv=False,
            rt=rt,
            rn=rn,
            rs=None if is_load else rs,
            sixty_four=size == 3,
            acquire_release=bool(o0),
        )
    if o2 == 0:
        if size >= 2:
            name = ("ldaxp" if o0 else "ldxp") if is_load else ("stlxp" if o0 else "stxp")
            return LoadStore(
                insn=insn,
                cls=AccessClass.EXCLUSIVE,
                mnemonic=name,
                is_read=is_load,
                is_write=not is_load,
                size=nbytes,
                length=2 * nbytes,
                isv=False,
                rt=rt,
                rt2=rt2,
                rn=rn,
                rs=None if is_load else rs,
                sixty_four=size == 3,
                acquire_release=bool(o0),
            )
        # CASP: the register pairs must start at even registers, or the word is UNDEFINED.
        if rs & 1 or rt & 1:
            return None
        nbytes = 4 << size
        return LoadStore(
            insn=insn,
            cls=AccessClass.ATOMIC,
            mnemonic="casp" + _ORDER_SUFFIX[(int(is_load) << 1) | o0],
            is_read=True,
            is_write=True,
            size=nbytes,
            length=2 * nbytes,
            isv=False,
            rt=rt,
            rt2=rt + 1,
            rn=rn,
            rs=rs,
            sixty_four=size == 1,
            acquire_release=bool(is_load or o0),
            atomic_op=AtomicOp.CASP,
        )
    if o1 == 0:
        name = ("ldar" if o0 else "ldlar") if is_load else ("stlr" if o0 else "stllr")
        return LoadStore(
            insn=insn,
            cls=AccessClass.SINGLE,
            mnemonic=name + _SIZE_SUFFIX[size],
            is_read=is_load,
            is_write=not is_load,
            size=nbytes,
            length=nbytes,
            isv=True,
            rt=rt,
            rn=rn,
            sixty_four=size == 3,
            acquire_release=True,
        )
    return LoadStore(
        insn=insn,
        cls=AccessClass.ATOMIC,
        mnemonic="cas" + _ORDER_SUFFIX[(int(is_load) << 1) | o0] + _SIZE_SUFFIX[size],
        is_read=True,
        is_write=True,
        size=nbytes,
        length=nbytes,
        isv=False,
        rt=rt,
        rn=rn,
        rs=rs,
        sixty_four=size == 3,
        acquire_release=bool(is_load or o0),
        atomic_op=AtomicOp.CAS,
    )


# LD/ST multiple structures: opcode -> (selem, register count)
_MULTI_STRUCT = {
    0b0000: (4, 4),
    0b0010: (1, 4),
    0b0100: (3, 3),
    0b0110: (1, 3),
    0b0111: (1, 1),
    0b1000: (2, 2),
    0b1010: (1, 2),
}


def _decode_simd_struct(insn: int) -> LoadStore | None:
    q = bool(_bit(insn, 30))
    single = bool(_bit(insn, 24))
    post = bool(_bit(insn, 23))
    is_load = bool(_bit(insn, 22))
    rm = _bits(insn, 20, 16)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    size = _bits(insn, 11, 10)

    if not single:
        # Bit 21 is 0 in both forms; without post-index Rm must also be 0.
        if _bit(insn, 21) or (not post and rm != 0):
            return None
        shape = _MULTI_STRUCT.get(_bits(insn, 15, 12))
        if shape is None:
            return None
        selem, nregs = shape
        if selem > 1 and size == 3 and not q:
            return None
        esize = 1 << size
        total = nregs * (16 if q else 8)
        struct = Structure(selem=selem, nregs=nregs, lane=None, replicate=False, q=q)
    else:
        if not post and rm != 0:
            return None
        opcode = _bits(insn, 15, 13)
        s = _bit(insn, 12)
        scale = opcode >> 1
        selem = (((opcode & 1) << 1) | _bit(insn, 21)) + 1
        replicate = False
        lane: int | None
        if scale == 3:
            if not is_load or s:
                return None
            scale = size
            replicate = True
            lane = None
        elif scale == 0:
            lane = (int(q) << 3) | (s << 2) | size
        elif scale == 1:
            if size & 1:
                return None
            lane = (int(q) << 2) | (s << 1) | (size >> 1)
        elif size & 2:
            return None
        elif size == 0:
            lane = (int(q) << 1) | s
        else:
            if s:
                return None
            scale = 3
            lane = int(q)
        esize = 1 << scale
        total = selem * esize
        struct = Structure(selem=selem, nregs=selem, lane=lane, replicate=replicate, q=q)

    mode = AddrMode.POST_INDEX if post else AddrMode.OFFSET
    post_reg = rm if post and rm != _XZR else None
    name = ("ld" if is_load else "st") + str(struct.selem) + ("r" if struct.replicate else "")
    return LoadStore(
        insn=insn,
        cls=AccessClass.SIMD_STRUCT,
        mnemonic=name,
        is_read=is_load,
        is_write=not is_load,
        size=esize,
        length=total,
        isv=False,
        rt=rt,
        rn=rn,
        simd=True,
        mode=mode,
        # Post-index by "#imm" always adds the transfer size; by Xm adds the register.
        imm=total if post and post_reg is None else 0,
        rm=post_reg,
        structure=struct,
    )


# ---------------------------------------------------------------------------------------------
# Syndrome


def data_abort_iss(ls: LoadStore, *, write_fault: bool | None = None) -> int:
    """The ISS bits hardware reports for a data abort on this instruction.

    For ISV=1: ISV, SAS, SSE, SRT, SF, AR and WnR. For ISV=0 only WnR. The caller adds
    DFSC, EA, S1PTW, CM and FnV. WnR is 1 for stores and 0 for loads; for instructions that
    both read and write (atomics, CAS, SWP) the Arm ARM sets it to 0 when the read would have
    faulted too, which is the case for an external abort or translation fault, so that is the
    default; pass `write_fault=True` when only the write faulted (a permission fault on a
    read-only page).
    """
    wnr = (ls.is_write and not ls.is_read) if write_fault is None else write_fault
    iss = int(wnr) << 6
    if not ls.isv:
        return iss
    sas = ls.size.bit_length() - 1
    iss |= 1 << 24
    iss |= sas << 22
    iss |= int(ls.sign_extend and ls.is_read) << 21
    iss |= ls.rt << 16
    iss |= int(ls.sixty_four) << 15
    iss |= int(ls.acquire_release) << 14
    return iss


# ---------------------------------------------------------------------------------------------
# Addressing and emulation


def _xreg(regs: RegisterView, n: int) -> int:
    return 0 if n == _XZR else regs.x(n) & _MASK64


def _base(ls: LoadStore, regs: RegisterView) -> int:
    if ls.rn is None:
        return regs.pc() & _MASK64
    return (regs.sp() if ls.rn == _XZR else regs.x(ls.rn)) & _MASK64


def _index(ls: LoadStore, regs: RegisterView) -> int:
    assert ls.rm is not None
    value = _xreg(regs, ls.rm)
    if ls.extend is Extend.UXTW:
        value &= _MASK32
    elif ls.extend is Extend.SXTW:
        value = _sext(value, 32)
    return (value << ls.shift) & _MASK64


def effective_address(ls: LoadStore, regs: RegisterView) -> int:
    """Virtual address of the first byte the instruction accesses (the base for post-index),
    before any pointer authentication (LDRAA/LDRAB) and with tag bits as in the register."""
    base = _base(ls, regs)
    if ls.mode is AddrMode.POST_INDEX:
        return base
    if ls.mode is AddrMode.REGISTER:
        return (base + _index(ls, regs)) & _MASK64
    return (base + ls.imm) & _MASK64


def _read(access: MemoryAccess, addr: int, nbytes: int) -> int:
    if nbytes <= 8:
        return access(addr & _MASK64, nbytes, False, 0) & ((1 << (8 * nbytes)) - 1)
    # 16-byte SIMD&FP transfers: two 8-byte accesses, low half first (little-endian).
    lo = _read(access, addr, 8)
    hi = _read(access, addr + 8, 8)
    return lo | (hi << 64)


def _write(access: MemoryAccess, addr: int, nbytes: int, value: int) -> None:
    if nbytes <= 8:
        access(addr & _MASK64, nbytes, True, value & ((1 << (8 * nbytes)) - 1))
        return
    _write(access, addr, 8, value)
    _write(access, addr + 8, 8, value >> 64)


def _load_value(raw: int, nbytes: int, sign: bool, sixty_four: bool) -> int:
    value = _sext(raw, 8 * nbytes) if sign else raw
    return value & (_MASK64 if sixty_four else _MASK32)


def _set_x(gpr: dict[int, int], n: int, value: int) -> None:
    if n != _XZR:
        gpr[n] = value & _MASK64


def _writeback(
    ls: LoadStore, addr: int, gpr: dict[int, int], regs: RegisterView
) -> int | None:
    """Apply base writeback (`addr` is the effective address); returns the new SP when the
    base is SP."""
    if not ls.writeback or ls.rn is None:
        return None
    # LD1-4/ST1-4 post-index by a register add the register, not the transfer size.
    step = _xreg(regs, ls.rm) if ls.post_index and ls.rm is not None else ls.imm
    new_base = (addr + step) & _MASK64 if ls.post_index else addr
    if ls.rn == _XZR:
        return new_base
    # Written after the data registers: where Rt == Rn (CONSTRAINED UNPREDICTABLE) the base
    # update wins, as in QEMU and therefore in Unicorn.
    gpr[ls.rn] = new_base
    return None


def _atomic_result(op: AtomicOp, old: int, operand: int, nbytes: int) -> int:
    bits = 8 * nbytes
    mask = (1 << bits) - 1
    if op is AtomicOp.ADD:
        return (old + operand) & mask
    if op is AtomicOp.CLR:
        return old & ~operand & mask
    if op is AtomicOp.EOR:
        return (old ^ operand) & mask
    if op is AtomicOp.SET:
        return (old | operand) & mask
    if op is AtomicOp.SMAX:
        return old if _sext(old, bits) >= _sext(operand, bits) else operand
    if op is AtomicOp.SMIN:
        return old if _sext(old, bits) <= _sext(operand, bits) else operand
    if op is AtomicOp.UMAX:
        return max(old, operand)
    if op is AtomicOp.UMIN:
        return min(old, operand)
    if op is AtomicOp.SWP:
        return operand
    raise AssertionError(op)


def emulate(ls: LoadStore, regs: RegisterView, access: MemoryAccess) -> Emulation:
    """Carry out the instruction's memory accesses through `access` and return the register
    updates it makes.

    Accesses are issued one register (or one element) at a time, at most 8 bytes each, in
    ascending address order; read-modify-write instructions read first and write after.
    Exclusives behave as if the monitor always succeeds. Raises NotEmulable for MTE tag
    accesses, ST64BV/ST64BV0 and LDRAA/LDRAB, whose results depend on state this module
    cannot see. A prefetch performs no access and changes nothing.
    """
    cls = ls.cls
    gpr: dict[int, int] = {}
    vregs: dict[int, int] = {}
    if cls is AccessClass.PREFETCH:
        return Emulation()
    if cls is AccessClass.TAG:
        raise NotEmulable(f"{ls.mnemonic}: MTE tag accesses are not emulated")
    if ls.pointer_auth:
        raise NotEmulable(f"{ls.mnemonic}: pointer authentication needs the guest's keys")
    if cls is AccessClass.BLOCK64 and ls.rs is not None:
        raise NotEmulable(f"{ls.mnemonic}: the store status comes from the device")

    addr = effective_address(ls, regs)
    size = ls.size

    if cls is AccessClass.SIMD_STRUCT:
        _emulate_struct(ls, regs, access, addr, vregs)
    elif cls is AccessClass.ATOMIC:
        _emulate_atomic(ls, regs, access, addr, gpr)
    elif cls is AccessClass.BLOCK64:
        for i in range(8):
            if ls.is_read:
                _set_x(gpr, ls.rt + i, _read(access, addr + 8 * i, 8))
            else:
                _write(access, addr + 8 * i, 8, _xreg(regs, ls.rt + i))
    elif ls.simd:
        targets = [ls.rt] if ls.rt2 is None else [ls.rt, ls.rt2]
        for i, reg in enumerate(targets):
            if ls.is_read:
                vregs[reg] = _read(access, addr + i * size, size)
            else:
                _write(access, addr + i * size, size, regs.v(reg) & _MASK128)
    else:
        targets = [ls.rt] if ls.rt2 is None else [ls.rt, ls.rt2]
        # Results go to the dict, never back into `regs`, so stores always see the registers'
        # values from before the instruction; for LDP with Rt == Rt2 the second load wins.
        for i, reg in enumerate(targets):
            if ls.is_read:
                raw = _read(access, addr + i * size, size)
                _set_x(gpr, reg, _load_value(raw, size, ls.sign_extend, ls.sixty_four))
            else:
                _write(access, addr + i * size, size, _xreg(regs, reg))
        if cls is AccessClass.EXCLUSIVE and ls.rs is not None:
            _set_x(gpr, ls.rs, 0)  # store-exclusive status: 0 means the store happened

    sp = _writeback(ls, addr, gpr, regs)
    return Emulation(gpr=gpr, vregs=vregs, sp=sp)


def _emulate_struct(
    ls: LoadStore, regs: RegisterView, access: MemoryAccess, addr: int, vregs: dict[int, int]
) -> None:
    """LD1-4/ST1-4: multiple structures, one lane, or replicated (Arm ARM pseudocode)."""
    st = ls.structure
    assert st is not None
    ebytes = ls.size
    bits = 8 * ebytes
    emask = (1 << bits) - 1
    elements = (16 if st.q else 8) // ebytes

    def current(n: int) -> int:
        return vregs[n] if n in vregs else regs.v(n) & _MASK128

    if st.replicate:
        for s in range(st.selem):
            element = _read(access, addr, ebytes)
            addr += ebytes
            vregs[(ls.rt + s) % 32] = sum(element << (bits * i) for i in range(elements))
    elif st.lane is not None:
        shift = bits * st.lane
        for s in range(st.selem):
            n = (ls.rt + s) % 32
            if ls.is_read:
                element = _read(access, addr, ebytes)
                vregs[n] = (current(n) & ~(emask << shift) & _MASK128) | (element << shift)
            else:
                _write(access, addr, ebytes, (current(n) >> shift) & emask)
            addr += ebytes
    else:
        # Loads write whole registers: the elements loaded, and zero above 64 bits when Q=0.
        loaded: dict[int, int] = {}
        for r in range(st.nregs // st.selem):
            for e in range(elements):
                for s in range(st.selem):
                    n = (ls.rt + r + s) % 32
                    if ls.is_read:
                        element = _read(access, addr, ebytes)
                        loaded[n] = loaded.get(n, 0) | (element << (bits * e))
                    else:
                        _write(access, addr, ebytes, (current(n) >> (bits * e)) & emask)
                    addr += ebytes
        vregs.update(loaded)


def _emulate_atomic(
    ls: LoadStore, regs: RegisterView, access: MemoryAccess, addr: int, gpr: dict[int, int]
) -> None:
    op = ls.atomic_op
    size = ls.size
    mask = (1 << (8 * size)) - 1
    assert op is not None and ls.rs is not None
    if op is AtomicOp.CASP:
        old_lo = _read(access, addr, size)
        old_hi = _read(access, addr + size, size)
        cmp_lo = _xreg(regs, ls.rs) & mask
        cmp_hi = _xreg(regs, ls.rs + 1) & mask
        if (old_lo, old_hi) == (cmp_lo, cmp_hi):
            _write(access, addr, size, _xreg(regs, ls.rt))
            _write(access, addr + size, size, _xreg(regs, ls.rt + 1))
        _set_x(gpr, ls.rs, old_lo)
        _set_x(gpr, ls.rs + 1, old_hi)
        return
    old = _read(access, addr, size)
    if op is AtomicOp.CAS:
        if old == _xreg(regs, ls.rs) & mask:
            _write(access, addr, size, _xreg(regs, ls.rt))
        _set_x(gpr, ls.rs, old)
        return
    operand = _xreg(regs, ls.rs) & mask
    _write(access, addr, size, _atomic_result(op, old, operand, size))
    _set_x(gpr, ls.rt, old)
