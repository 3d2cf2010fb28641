/*
 * mmioguard native fast path: the public C API (loaded from Python with ctypes).
 *
 * Three kinds of objects, all created and destroyed from Python:
 *
 *   mg_guard   the guard state shared by all vCPUs of a VM: the enrolled flag, the granule
 *              shift and the set of mapped granule numbers (IPA >> shift).
 *   mg_vcpu    one vCPU: its Unicorn engine, its guard, a decode cache keyed by PC (fast flag,
 *              access size, direction, how to compute the effective address), the escape for
 *              interrupts C does not answer, and at most one guard abort C recorded and the
 *              run loop has not taken yet (mg_vcpu_abort, mg_vcpu_take_abort).
 *   mg_pl011   the state of one PL011 UART the fast path may answer for: the UARTFR value and
 *              a byte ring holding what the guest wrote to UARTDR. Shared by every vCPU's
 *              region of that UART, so output stays in guest order.
 *   mg_region  one device region of one vCPU: base, size, kind and the Python escapes; its
 *              address is the user_data of uc_mmio_map.
 *
 * Ownership: a vCPU keeps its guard alive, a region its vCPU and its PL011 state: destroying an
 * object that is still in use fails (returns -1) and changes nothing. Nothing here may be
 * destroyed while a Unicorn engine can still call back into it (keep it until uc_close).
 *
 * Not thread-safe: call everything from the thread that runs the vCPUs (or while they are
 * stopped). The callbacks never touch an object after calling a Python escape, so an escape
 * may call any function of this API.
 *
 * Every value a guest controls (PC, offset, size, function ID, granule number, register values)
 * is only ever hashed, compared, added or masked: none is used as an index. Register numbers
 * in the decode cache come from Python and are checked (0..31) when an entry is stored.
 */
#ifndef MMIOGUARD_NATIVE_H
#define MMIOGUARD_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <unicorn/unicorn.h>

#define MG_ABI_VERSION 6

/* Region kinds. */
#define MG_KIND_GENERIC 0u
#define MG_KIND_PL011 1u

/* vCPU flags. */
#define MG_VCPU_FAST_MMIO 1u  /* decide device accesses in C (off: every access escapes) */
#define MG_VCPU_NATIVE_HVC 2u /* answer the discovery hypercalls in C */
/* A fast access the guard refuses (enrolled, granule not mapped) becomes a pending abort in C
 * instead of an escape; so does a fault on an unmapped address (mg_mem_unmapped). Only while the
 * guard enforces (not in audit mode) and nothing is traced: Python's path stays the reference. */
#define MG_VCPU_NATIVE_ABORT 4u
#define MG_VCPU_FLAGS_ALL 7u

/* Address forms of a decode-cache entry: how C computes the instruction's effective address
 * (the virtual address of its first byte), as mmioguard.arch.decode.effective_address does. */
#define MG_FORM_NONE 0u /* C cannot: once the guard is enrolled, Python decides every access */
#define MG_FORM_IMM 1u  /* [Xn|SP, #imm]: no writeback */
#define MG_FORM_REG 2u  /* [Xn|SP, Rm{, extend #shift}]: no writeback */

/* Index-register extensions (the instruction's option field). */
#define MG_EXTEND_UXTW 2u
#define MG_EXTEND_UXTX 3u /* LSL */
#define MG_EXTEND_SXTW 6u
#define MG_EXTEND_SXTX 7u

/* What mg_vcpu_take_abort does with the pending abort. */
#define MG_TAKE_DROP 0u    /* forget it, registers as they are (reset) */
#define MG_TAKE_RESTORE 1u /* put back the register the aborted load wrote; Python enters */
#define MG_TAKE_ENTER 2u   /* put it back and perform the exception entry to EL1 */

/* PL011 modes. */
#define MG_PL011_FR_FAST 1u /* answer reads of UARTFR (0x18) from the stored value */
#define MG_PL011_DR_FAST 2u /* buffer writes to UARTDR (0x00, size <= 4) in the ring */
#define MG_PL011_MODES_ALL 3u

#define MG_MAX_INFO_FIDS 8u

/* Limits checked at set-up. */
#define MG_GUARD_MAX_GRANULES (1ull << 28)
#define MG_CACHE_MAX_ENTRIES (1ull << 22)
#define MG_RING_MIN 16u
#define MG_RING_MAX (1u << 20)
#define MG_STRUCT_OFFSET_LIMIT (1ull << 20)

/* Escapes into Python. The MMIO ones get the arguments of the Python callbacks of
 * mmioguard.hyp.vcpu: the accessing instruction's PC, the offset in the region, the access size
 * and, for writes, the value masked to the access size. */
typedef uint64_t (*mg_read_escape_t)(uint64_t pc, uint64_t offset, unsigned size);
typedef void (*mg_write_escape_t)(uint64_t pc, uint64_t offset, unsigned size, uint64_t value);
typedef void (*mg_intr_escape_t)(uint32_t intno);
/* QEMU's cpu_restore_state(CPUState *, uintptr_t host_pc, bool will_exit), as Unicorn exports
 * it (cpu_restore_state_aarch64). */
typedef bool (*mg_restore_t)(void *cpu, uintptr_t host_pc, bool will_exit);

struct mg_guard;
struct mg_vcpu;
struct mg_pl011;
struct mg_region;

/* Counters of one vCPU (see mg_vcpu_get_stats). */
struct mg_stats {
    uint64_t mmio_native;  /* device accesses decided and answered in C */
    uint64_t mmio_forward; /* decided in C (the guard allows it), device register in Python */
    uint64_t mmio_escape;  /* not decided in C: Python's slow path decides */
    uint64_t hvc_native;   /* hypercalls answered in C */
    uint64_t intr_escape;  /* interrupts (hypercalls included) handed to Python */
    uint64_t errors;       /* failed register accesses inside a callback */
    uint64_t mmio_abort;   /* device accesses refused in C: a pending abort, no escape */
    uint64_t fault_abort;  /* faults on unmapped addresses turned into a pending abort in C */
    uint64_t abort_enter;  /* exception entries performed by mg_vcpu_take_abort */
};

/* The guard abort C recorded (see MG_VCPU_NATIVE_ABORT); the run loop reads it through the
 * pointer mg_vcpu_abort returns, checks it, and takes it with mg_vcpu_take_abort. The values
 * are those of Python's reference path: ELR the accessing instruction, ESR the external data
 * abort of mmioguard.arch.esr.external_data_abort (EC 0x24 from EL0, 0x25 from EL1; IL; DFSC
 * 0x10; no other ISS bit), FAR the instruction's effective address. */
struct mg_abort {
    uint64_t active; /* 1 from the refusal until mg_vcpu_take_abort */
    uint64_t elr;
    uint64_t esr;
    uint64_t far;
};

/* -- guard ------------------------------------------------------------------------------- */

/* shift: log2 of the granule (0..63); max_granules: 1..MG_GUARD_MAX_GRANULES. NULL on error. */
struct mg_guard *mg_guard_create(unsigned shift, uint64_t max_granules, uint64_t seed);
int mg_guard_destroy(struct mg_guard *g);                /* 0, or -1 (NULL, or vCPUs use it) */
int mg_guard_set_enrolled(struct mg_guard *g, int enrolled); /* 0 or -1 */
int mg_guard_enrolled(const struct mg_guard *g);         /* 0/1, -1 on a bad pointer */
int mg_guard_add(struct mg_guard *g, uint64_t granule);  /* 1 added, 0 already there, -1 full */
int mg_guard_remove(struct mg_guard *g, uint64_t granule); /* 1 removed, 0 absent, -1 bad ptr */
int mg_guard_contains(const struct mg_guard *g, uint64_t granule); /* 0/1, -1 bad pointer */
int mg_guard_clear(struct mg_guard *g);                  /* 0 or -1; forgets the mappings only */
uint64_t mg_guard_count(const struct mg_guard *g);
uint64_t mg_guard_slots(const struct mg_guard *g);       /* current table size (tests) */

/* -- vCPU -------------------------------------------------------------------------------- */

/* cache_capacity: entries before the decode cache is emptied (1..MG_CACHE_MAX_ENTRIES). */
struct mg_vcpu *mg_vcpu_create(uc_engine *uc, struct mg_guard *g, uint64_t cache_capacity,
                               mg_intr_escape_t intr_escape, uint64_t seed);
int mg_vcpu_destroy(struct mg_vcpu *v);
/* Where Unicorn keeps what mg_vcpu_bind_pc_restore needs: byte offsets in its uc_struct,
 * QEMU's CPUState and TCGContext. */
struct mg_uc_layout {
    uint64_t uc_cpu;          /* uc_struct: CPUState *cpu */
    uint64_t cpu_uc;          /* CPUState: struct uc_struct *uc (checked: the engine) */
    uint64_t cpu_mem_io_pc;   /* CPUState: uintptr_t mem_io_pc */
    uint64_t uc_tcg;          /* uc_struct: TCGContext *tcg_ctx */
    uint64_t tcg_uc;          /* TCGContext: struct uc_struct *uc (checked: the engine) */
    uint64_t tcg_flush_count; /* TCGContext: tb_ctx.tb_flush_count (unsigned) */
    uint64_t uc_size_recur_mem; /* uc_struct: int size_recur_mem (0 at bind) */
};

/* Give the device callbacks exact PCs without a memory hook: restore is cpu_restore_state,
 * layout where the structures are (layout_size: sizeof(struct mg_uc_layout)); each offset
 * below MG_STRUCT_OFFSET_LIMIT and aligned. Call after the engine has created its CPU (after
 * the first mapping). 0, or -1 (nothing bound). */
int mg_vcpu_bind_pc_restore(struct mg_vcpu *v, mg_restore_t restore,
                            const struct mg_uc_layout *layout, size_t layout_size);
int mg_vcpu_set_flags(struct mg_vcpu *v, unsigned flags); /* 0 or -1 (unknown bits) */
int mg_vcpu_flags(const struct mg_vcpu *v);
/* The hypercalls C answers when MG_VCPU_NATIVE_HVC is set: SMCCC_VERSION and the KVM UID
 * always, VENDOR_HYP_KVM_FEATURES when have_features, and INFO (x0 = granule size) at each of
 * the n_info function IDs. 0, or -1 (n_info > MG_MAX_INFO_FIDS). */
int mg_vcpu_set_hypercalls(struct mg_vcpu *v, int have_features, uint64_t features,
                           const uint32_t *info_fids, size_t n_info);
/* PSCI_VERSION answered in C with version (PSCI's encoding) when MG_VCPU_NATIVE_HVC is set and
 * version is not 0 (the default: Python answers). 0, or -1. */
int mg_vcpu_set_psci_version(struct mg_vcpu *v, uint32_t version);
/* Decode cache. size: 0..8 (1, 2, 4 or 8 when fast). 1 inserted, 0 replaced, 2 inserted after
 * emptying a full cache, -1 invalid. An entry stored this way has no address form. */
int mg_vcpu_cache_put(struct mg_vcpu *v, uint64_t pc, int fast, unsigned size, int is_write);
/* The same with an address form: form MG_FORM_*; rt the data register (a load writes it),
 * rn the base (31: SP), rm the index register (31: XZR) for MG_FORM_REG, extend MG_EXTEND_*,
 * shift 0..4, imm the signed byte offset for MG_FORM_IMM. Registers 0..31. Same results. */
int mg_vcpu_cache_put_form(struct mg_vcpu *v, uint64_t pc, int fast, unsigned size, int is_write,
                           unsigned form, unsigned rt, unsigned rn, unsigned rm, unsigned extend,
                           unsigned shift, int64_t imm);
/* 1 and the entry, or 0 when absent (-1 bad pointer). Any out pointer may be NULL. */
int mg_vcpu_cache_get(const struct mg_vcpu *v, uint64_t pc, int *fast, unsigned *size,
                      int *is_write);
/* 1 and the entry's address form, or 0 when absent (-1 bad pointer). Out pointers may be NULL. */
int mg_vcpu_cache_get_form(const struct mg_vcpu *v, uint64_t pc, unsigned *form, unsigned *rt,
                           unsigned *rn, unsigned *rm, unsigned *extend, unsigned *shift,
                           int64_t *imm);
int mg_vcpu_cache_remove(struct mg_vcpu *v, uint64_t pc); /* 1 removed, 0 absent */
int mg_vcpu_cache_clear(struct mg_vcpu *v);
uint64_t mg_vcpu_cache_count(const struct mg_vcpu *v);
uint64_t mg_vcpu_cache_slots(const struct mg_vcpu *v);
int mg_vcpu_get_stats(const struct mg_vcpu *v, struct mg_stats *out, size_t out_size);
int mg_vcpu_reset_stats(struct mg_vcpu *v);

/* -- guard aborts decided in C (MG_VCPU_NATIVE_ABORT) ------------------------------------ */

/* The vCPU's abort record, valid as long as the vCPU (NULL on a bad pointer). */
const struct mg_abort *mg_vcpu_abort(const struct mg_vcpu *v);
/* Take the pending abort (mode MG_TAKE_*). 1 done; 2 registers put back but no entry, the
 * vCPU is in a state C does not model (AArch32, EL2/EL3): Python enters; 0 nothing pending;
 * -1 bad pointer or mode; -2 a register access failed. The record is cleared in every case. */
int mg_vcpu_take_abort(struct mg_vcpu *v, unsigned mode);

/* -- PL011 state ------------------------------------------------------------------------- */

/* ring_capacity: a power of two in MG_RING_MIN..MG_RING_MAX. */
struct mg_pl011 *mg_pl011_create(uint32_t ring_capacity);
int mg_pl011_destroy(struct mg_pl011 *p);
/* modes: MG_PL011_*; flush_byte: -1, or a byte (0..255) that C does not buffer but hands to
 * Python (a line end, so output appears per line). 0 or -1. */
int mg_pl011_set_mode(struct mg_pl011 *p, unsigned modes, int flush_byte);
int mg_pl011_set_fr(struct mg_pl011 *p, uint32_t fr);
int64_t mg_pl011_get_fr(const struct mg_pl011 *p);
uint64_t mg_pl011_pending(const struct mg_pl011 *p); /* bytes in the ring */
uint64_t mg_pl011_total(const struct mg_pl011 *p);   /* bytes ever buffered */
/* Move up to cap bytes, oldest first, out of the ring into buf; returns how many. */
uint64_t mg_pl011_drain(struct mg_pl011 *p, uint8_t *buf, uint64_t cap);

/* -- regions ----------------------------------------------------------------------------- */

/* base + size must not wrap; size > 0; kind MG_KIND_*; pl011 required for (and only for)
 * MG_KIND_PL011; both escapes required. NULL on error. */
struct mg_region *mg_region_create(struct mg_vcpu *v, uint64_t base, uint64_t size,
                                   unsigned kind, struct mg_pl011 *pl011,
                                   mg_read_escape_t read_escape,
                                   mg_write_escape_t write_escape);
/* Where accesses the guard allowed go when C does not answer the register itself; NULL: the
 * escape. Lets Python skip re-checking what C decided. 0 or -1. */
int mg_region_set_forward(struct mg_region *r, mg_read_escape_t read, mg_write_escape_t write);
int mg_region_destroy(struct mg_region *r);
/* The fast-path decision alone, registers read as the callbacks read them: 1 when C may let
 * the access through, 2 when it refuses it (MG_VCPU_NATIVE_ABORT: a callback would record an
 * abort), 0 when Python decides (-1 bad ptr). Records nothing. */
int mg_region_decide(const struct mg_region *r, uint64_t pc, uint64_t offset, unsigned size,
                     int is_write);

/* -- Unicorn callbacks ------------------------------------------------------------------- */

uint64_t mg_mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *user_data);
void mg_mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value,
                   void *user_data);
void mg_intr(uc_engine *uc, uint32_t intno, void *user_data);
/* A UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED callback (user data: a vCPU).
 * With MG_VCPU_NATIVE_ABORT it decides the fault as mmioguard.hyp.vcpu.Vcpu._on_fault would
 * when that is cheap (MMU off, a fast entry with an address form for PC, the guard enrolled and
 * the access not allowed) and records the abort. Never handles the access: the emulator stops
 * with the fault either way, and the run loop finds the record or decides in Python. */
bool mg_mem_unmapped(uc_engine *uc, uc_mem_type type, uint64_t address, int size,
                     int64_t value, void *user_data);
/* A UC_HOOK_MEM_READ/WRITE callback that does nothing: installing any such hook makes Unicorn
 * keep PC exact at loads and stores, which the MMIO callbacks rely on. */
void mg_mem_nop(uc_engine *uc, uc_mem_type type, uint64_t address, int size, int64_t value,
                void *user_data);

int mg_abi_version(void);
uint64_t mg_stats_size(void);
uint64_t mg_hash(uint64_t key, uint64_t seed); /* the table hash, for tests */

#endif
