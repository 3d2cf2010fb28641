/*
 * mmioguard native fast path: device accesses, guard aborts and discovery hypercalls in C.
 *
 * Mirrors the untraced hot path of mmioguard.hyp.vcpu.Vcpu.mmio_callbacks: an access is let
 * through when the decode cache has a fast entry for its PC of the same size and direction and
 * (the VM is not enrolled, or the piece Unicorn hands over is the instruction's whole access,
 * the granule of its first byte is mapped and its last byte is in the same granule). With
 * MG_VCPU_NATIVE_ABORT, a whole fast access to an unmapped granule is refused in C: the abort
 * Python would inject is recorded, the emulator stopped, and the run loop takes it
 * (mg_vcpu_take_abort performs the exception entry as mmioguard.arch.exception.enter says).
 * Anything else goes to Python, which decides exactly as it does without this module. See
 * mgnative.h for the API and the ownership rules.
 */
#include "mgnative.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MG_API __attribute__((visibility("default")))

#define MG_MAGIC_GUARD 0x4d474755u  /* "MGGU" */
#define MG_MAGIC_VCPU 0x4d475643u   /* "MGVC" */
#define MG_MAGIC_PL011 0x4d47504cu  /* "MGPL" */
#define MG_MAGIC_REGION 0x4d475247u /* "MGRG" */
#define MG_MAGIC_DEAD 0xdeadbeefu

#define MG_EXCP_HVC 11u
#define MG_PL011_DR 0x000u
#define MG_PL011_FR 0x018u

#define MG_FID_SMCCC_VERSION 0x80000000u
#define MG_FID_KVM_FEATURES 0x86000000u
#define MG_FID_KVM_UID 0x8600ff01u
#define MG_FID_PSCI_VERSION 0x84000000u
#define MG_SMCCC_VERSION_1_1 0x10001u

#define MG_GUARD_MIN_SLOTS 1024u

/* Unicorn hands an unaligned device access to the callbacks in aligned pieces (within a page
 * too, MMU on or off: docs/unicorn.md), none of which starts at the instruction's effective
 * address: a piece is the whole access only if its offset in the 4 KiB page (Unicorn's page for
 * AArch64, where a virtual and a physical address agree whatever the translation) is the
 * effective address's. */
#define MG_PAGE_OFFSET_MASK 0xfffull

/* PSTATE and exception entry (mmioguard.arch.exception). */
#define MG_PSTATE_SP 1ull         /* M[0]: SP_ELx in use */
#define MG_PSTATE_NRW (1ull << 4) /* M[4]: AArch32 */
#define MG_BOOT_PSTATE 0x3c5ull   /* EL1h, DAIF masked */
#define MG_VECTOR_CUR_SP0 0x000u
#define MG_VECTOR_CUR_SPX 0x200u
#define MG_VECTOR_LOWER_A64 0x400u
#define MG_SCTLR_M 1ull
#define MG_VA_FLAT_LIMIT (1ull << 48) /* MMU off: Python's translate is flat below this */

/* ESR of the guard's external data abort (mmioguard.arch.esr.external_data_abort). */
#define MG_EC_DABT_LOW 0x24ull
#define MG_EC_DABT_CUR 0x25ull
#define MG_ESR_IL (1ull << 25)
#define MG_FSC_EXTERNAL 0x10ull

/* System registers without a Unicorn register id: (crn, crm, op0, op1, op2). */
#define MG_CP_SPSR_EL1 4, 0, 3, 0, 0
#define MG_CP_SCTLR_EL1 1, 0, 3, 0, 0

/* -- open-addressing hash table of 64-bit keys (linear probing, load <= 1/2) --------------- */

struct mg_slot {
    uint64_t key;
    int64_t imm; /* decode cache: the offset of MG_FORM_IMM */
    uint8_t used;
    uint8_t fast;
    uint8_t size;
    uint8_t is_write;
    uint8_t form; /* decode cache: MG_FORM_*; the fields below are 0..31 / checked values */
    uint8_t rt;
    uint8_t rn;
    uint8_t rm;
    uint8_t extend;
    uint8_t shift;
    uint8_t reserved[6];
};

struct mg_table {
    struct mg_slot *slots;
    uint64_t mask; /* slot count - 1; the slot count is a power of two >= 2 */
    uint64_t count;
    uint64_t seed;
};

static inline uint64_t mix(uint64_t key, uint64_t seed)
{
    /* MurmurHash3's 64-bit finaliser over key ^ seed: every key bit reaches every index bit. */
    uint64_t x = key ^ seed;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t table_home(const struct mg_table *t, uint64_t key)
{
    return mix(key, t->seed) & t->mask;
}

static uint64_t pow2_at_least(uint64_t n)
{
    uint64_t p = 2;
    while (p < n)
        p <<= 1; /* callers bound n far below 2^63 */
    return p;
}

static int table_init(struct mg_table *t, uint64_t nslots, uint64_t seed)
{
    t->slots = calloc((size_t)nslots, sizeof *t->slots);
    if (t->slots == NULL)
        return -1;
    t->mask = nslots - 1;
    t->count = 0;
    t->seed = seed;
    return 0;
}

static void table_free(struct mg_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->mask = 0;
    t->count = 0;
}

/* The slot holding key, or NULL. Bounded by the slot count whatever the table holds. */
static inline const struct mg_slot *table_find(const struct mg_table *t, uint64_t key)
{
    uint64_t i = table_home(t, key);
    for (uint64_t n = 0; n <= t->mask; n++) {
        const struct mg_slot *s = &t->slots[i];
        if (!s->used)
            return NULL;
        if (s->key == key)
            return s;
        i = (i + 1) & t->mask;
    }
    return NULL;
}

/* Index of key's slot (*found = true) or of the free slot it would take (*found = false);
 * UINT64_MAX when neither exists (never with load <= 1/2). */
static uint64_t table_probe(const struct mg_table *t, uint64_t key, bool *found)
{
    uint64_t i = table_home(t, key);
    for (uint64_t n = 0; n <= t->mask; n++) {
        const struct mg_slot *s = &t->slots[i];
        if (!s->used) {
            *found = false;
            return i;
        }
        if (s->key == key) {
            *found = true;
            return i;
        }
        i = (i + 1) & t->mask;
    }
    *found = false;
    return UINT64_MAX;
}

/* Remove the entry at slot i, moving later entries of its probe run back (no tombstones). */
static void table_erase_at(struct mg_table *t, uint64_t i)
{
    const uint64_t mask = t->mask;
    uint64_t j = i;
    for (;;) {
        memset(&t->slots[i], 0, sizeof t->slots[i]);
        for (uint64_t n = 0;; n++) {
            if (n > mask) {
                t->count--; /* unreachable: an empty slot always exists */
                return;
            }
            j = (j + 1) & mask;
            if (!t->slots[j].used) {
                t->count--;
                return;
            }
            uint64_t k = table_home(t, t->slots[j].key);
            /* The entry at j may fill the hole at i unless its home lies cyclically in (i, j]. */
            bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays)
                break;
        }
        t->slots[i] = t->slots[j];
        i = j;
    }
}

static void table_clear(struct mg_table *t)
{
    memset(t->slots, 0, (size_t)(t->mask + 1) * sizeof *t->slots);
    t->count = 0;
}

/* Rebuild with nslots slots (a power of two above twice the count). 0 or -1 (no memory). */
static int table_resize(struct mg_table *t, uint64_t nslots)
{
    struct mg_table fresh;
    if (table_init(&fresh, nslots, t->seed) != 0)
        return -1;
    for (uint64_t i = 0; i <= t->mask; i++) {
        const struct mg_slot *s = &t->slots[i];
        if (!s->used)
            continue;
        bool found;
        uint64_t at = table_probe(&fresh, s->key, &found);
        if (at == UINT64_MAX) { /* cannot happen: fresh is at most half full */
            table_free(&fresh);
            return -1;
        }
        fresh.slots[at] = *s;
        fresh.count++;
    }
    table_free(t);
    *t = fresh;
    return 0;
}

MG_API uint64_t mg_hash(uint64_t key, uint64_t seed)
{
    return mix(key, seed);
}

/* -- guard ---------------------------------------------------------------------------------- */

struct mg_guard {
    uint32_t magic;
    uint32_t shift;
    uint32_t enrolled;
    uint32_t users;
    uint64_t max_granules;
    uint64_t max_slots;
    struct mg_table set;
};

static inline bool guard_ok(const struct mg_guard *g)
{
    return g != NULL && g->magic == MG_MAGIC_GUARD;
}

MG_API struct mg_guard *mg_guard_create(unsigned shift, uint64_t max_granules, uint64_t seed)
{
    if (shift > 63 || max_granules == 0 || max_granules > MG_GUARD_MAX_GRANULES)
        return NULL;
    struct mg_guard *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->max_granules = max_granules;
    g->max_slots = pow2_at_least(2 * max_granules);
    uint64_t first = g->max_slots < MG_GUARD_MIN_SLOTS ? g->max_slots : MG_GUARD_MIN_SLOTS;
    if (table_init(&g->set, first, seed) != 0) {
        free(g);
        return NULL;
    }
    g->shift = shift;
    g->magic = MG_MAGIC_GUARD;
    return g;
}

MG_API int mg_guard_destroy(struct mg_guard *g)
{
    if (!guard_ok(g) || g->users != 0)
        return -1;
    table_free(&g->set);
    g->magic = MG_MAGIC_DEAD;
    free(g);
    return 0;
}

MG_API int mg_guard_set_enrolled(struct mg_guard *g, int enrolled)
{
    if (!guard_ok(g))
        return -1;
    g->enrolled = enrolled != 0;
    return 0;
}

MG_API int mg_guard_enrolled(const struct mg_guard *g)
{
    return guard_ok(g) ? (int)g->enrolled : -1;
}

MG_API int mg_guard_add(struct mg_guard *g, uint64_t granule)
{
    if (!guard_ok(g))
        return -1;
    bool found;
    uint64_t at = table_probe(&g->set, granule, &found);
    if (found)
        return 0;
    if (g->set.count >= g->max_granules)
        return -1;
    if ((g->set.count + 1) * 2 > g->set.mask + 1) {
        uint64_t grown = (g->set.mask + 1) * 2;
        if (grown > g->max_slots || table_resize(&g->set, grown) != 0)
            return -1;
        at = table_probe(&g->set, granule, &found);
    }
    if (at == UINT64_MAX)
        return -1;
    struct mg_slot *s = &g->set.slots[at];
    s->key = granule;
    s->used = 1;
    g->set.count++;
    return 1;
}

MG_API int mg_guard_remove(struct mg_guard *g, uint64_t granule)
{
    if (!guard_ok(g))
        return -1;
    bool found;
    uint64_t at = table_probe(&g->set, granule, &found);
    if (!found)
        return 0;
    table_erase_at(&g->set, at);
    return 1;
}

MG_API int mg_guard_contains(const struct mg_guard *g, uint64_t granule)
{
    if (!guard_ok(g))
        return -1;
    return table_find(&g->set, granule) != NULL;
}

MG_API int mg_guard_clear(struct mg_guard *g)
{
    if (!guard_ok(g))
        return -1;
    /* Give back the memory of a large set: a reset is rare, a big memset is not free. */
    uint64_t first = g->max_slots < MG_GUARD_MIN_SLOTS ? g->max_slots : MG_GUARD_MIN_SLOTS;
    if (g->set.mask + 1 > first) {
        struct mg_table fresh;
        if (table_init(&fresh, first, g->set.seed) == 0) {
            table_free(&g->set);
            g->set = fresh;
            return 0;
        }
    }
    table_clear(&g->set);
    return 0;
}

MG_API uint64_t mg_guard_count(const struct mg_guard *g)
{
    return guard_ok(g) ? g->set.count : 0;
}

MG_API uint64_t mg_guard_slots(const struct mg_guard *g)
{
    return guard_ok(g) ? g->set.mask + 1 : 0;
}

/* -- vCPU ------------------------------------------------------------------------------------ */

/* A guest PC worked out from the host address of the access (cpu_restore_state's answer):
 * the same host code is the same guest instruction until the translation cache is flushed. */
#define MG_PC_MEMO_SIZE 512u
struct mg_pc_memo {
    uintptr_t host;
    uint64_t pc;
};

struct mg_vcpu {
    uint32_t magic;
    uint32_t flags;
    uint32_t users;
    uint32_t n_info;
    uint32_t have_features;
    uint32_t info_fids[MG_MAX_INFO_FIDS];
    uint64_t features;
    uint32_t psci_version; /* 0: PSCI_VERSION goes to Python */
    uc_engine *uc;
    struct mg_guard *guard;
    mg_intr_escape_t intr_escape;
    uint64_t cache_capacity;
    struct mg_table cache;
    struct mg_stats stats;
    struct mg_abort abort;
    /* The register the aborted load wrote after its callback returned (docs/unicorn.md), put
     * back by mg_vcpu_take_abort: a Unicorn register id, its value before the load. */
    uint32_t saved;
    int saved_reg;
    uint64_t saved_value;
    /* Exact PCs without a memory hook (mg_vcpu_bind_pc_restore): Unicorn's CPUState, its
     * mem_io_pc field and QEMU's cpu_restore_state. NULL: PC is read as Unicorn keeps it. */
    void *cpu;
    uintptr_t *mem_io_pc;
    const uint32_t *flush_count; /* TBContext.tb_flush_count: host code is reused after a flush */
    const int32_t *size_recur;   /* uc_struct.size_recur_mem: nonzero inside a split access */
    mg_restore_t restore;
    uint32_t seen_flush;
    uint32_t pc_exact;  /* Unicorn's PC is the last access's (restored), not just known here */
    uintptr_t last_host;
    uint64_t last_pc;
    struct mg_pc_memo pc_memo[MG_PC_MEMO_SIZE];
};

static inline bool vcpu_ok(const struct mg_vcpu *v)
{
    return v != NULL && v->magic == MG_MAGIC_VCPU;
}

MG_API struct mg_vcpu *mg_vcpu_create(uc_engine *uc, struct mg_guard *g, uint64_t cache_capacity,
                                      mg_intr_escape_t intr_escape, uint64_t seed)
{
    if (uc == NULL || !guard_ok(g) || intr_escape == NULL || cache_capacity == 0 ||
        cache_capacity > MG_CACHE_MAX_ENTRIES || g->users == UINT32_MAX)
        return NULL;
    struct mg_vcpu *v = calloc(1, sizeof *v);
    if (v == NULL)
        return NULL;
    if (table_init(&v->cache, pow2_at_least(2 * cache_capacity), seed) != 0) {
        free(v);
        return NULL;
    }
    v->uc = uc;
    v->guard = g;
    v->intr_escape = intr_escape;
    v->cache_capacity = cache_capacity;
    v->flags = MG_VCPU_FAST_MMIO;
    g->users++;
    v->magic = MG_MAGIC_VCPU;
    return v;
}

MG_API int mg_vcpu_bind_pc_restore(struct mg_vcpu *v, mg_restore_t restore,
                                   const struct mg_uc_layout *layout, size_t layout_size)
{
    if (!vcpu_ok(v) || restore == NULL || layout == NULL ||
        layout_size != sizeof(struct mg_uc_layout))
        return -1;
    const struct mg_uc_layout l = *layout;
    const uint64_t limit = MG_STRUCT_OFFSET_LIMIT;
    const uint64_t align = sizeof(void *) - 1;
    if (l.uc_cpu >= limit || l.cpu_uc >= limit || l.cpu_mem_io_pc >= limit ||
        l.uc_tcg >= limit || l.tcg_uc >= limit || l.tcg_flush_count >= limit ||
        l.uc_size_recur_mem >= limit ||
        ((l.uc_cpu | l.cpu_uc | l.cpu_mem_io_pc | l.uc_tcg | l.tcg_uc) & align) != 0 ||
        ((l.tcg_flush_count | l.uc_size_recur_mem) & 3u) != 0)
        return -1;
    void *cpu = *(void *const *)((const char *)v->uc + l.uc_cpu);
    void *tcg = *(void *const *)((const char *)v->uc + l.uc_tcg);
    if (cpu == NULL || ((uintptr_t)cpu & align) != 0 || tcg == NULL || ((uintptr_t)tcg & align))
        return -1;
    /* Both point back at their engine: the offsets are those of this build of Unicorn. */
    if (*(void *const *)((const char *)cpu + l.cpu_uc) != (void *)v->uc ||
        *(void *const *)((const char *)tcg + l.tcg_uc) != (void *)v->uc)
        return -1;
    const int32_t *size_recur = (const int32_t *)((const char *)v->uc + l.uc_size_recur_mem);
    if (*size_recur != 0) /* no access is in progress while the engine is stopped */
        return -1;
    v->cpu = cpu;
    v->mem_io_pc = (uintptr_t *)((char *)cpu + l.cpu_mem_io_pc);
    v->flush_count = (const uint32_t *)((const char *)tcg + l.tcg_flush_count);
    v->size_recur = size_recur;
    v->seen_flush = *v->flush_count;
    memset(v->pc_memo, 0, sizeof v->pc_memo);
    v->restore = restore;
    return 0;
}

MG_API int mg_vcpu_destroy(struct mg_vcpu *v)
{
    if (!vcpu_ok(v) || v->users != 0)
        return -1;
    v->guard->users--;
    table_free(&v->cache);
    v->magic = MG_MAGIC_DEAD;
    free(v);
    return 0;
}

MG_API int mg_vcpu_set_flags(struct mg_vcpu *v, unsigned flags)
{
    if (!vcpu_ok(v) || (flags & ~MG_VCPU_FLAGS_ALL) != 0)
        return -1;
    v->flags = flags;
    return 0;
}

MG_API int mg_vcpu_flags(const struct mg_vcpu *v)
{
    return vcpu_ok(v) ? (int)v->flags : -1;
}

MG_API int mg_vcpu_set_hypercalls(struct mg_vcpu *v, int have_features, uint64_t features,
                                  const uint32_t *info_fids, size_t n_info)
{
    if (!vcpu_ok(v) || n_info > MG_MAX_INFO_FIDS || (n_info > 0 && info_fids == NULL))
        return -1;
    v->have_features = have_features != 0;
    v->features = features;
    memset(v->info_fids, 0, sizeof v->info_fids);
    for (size_t i = 0; i < n_info; i++)
        v->info_fids[i] = info_fids[i];
    v->n_info = (uint32_t)n_info;
    return 0;
}

MG_API int mg_vcpu_set_psci_version(struct mg_vcpu *v, uint32_t version)
{
    if (!vcpu_ok(v))
        return -1;
    v->psci_version = version;
    return 0;
}

MG_API int mg_vcpu_cache_put_form(struct mg_vcpu *v, uint64_t pc, int fast, unsigned size,
                                  int is_write, unsigned form, unsigned rt, unsigned rn,
                                  unsigned rm, unsigned extend, unsigned shift, int64_t imm)
{
    if (!vcpu_ok(v) || size > 8)
        return -1;
    if (fast && size != 1 && size != 2 && size != 4 && size != 8)
        return -1;
    if (form > MG_FORM_REG || rt > 31 || rn > 31 || rm > 31 || shift > 4)
        return -1;
    if (extend != MG_EXTEND_UXTW && extend != MG_EXTEND_UXTX && extend != MG_EXTEND_SXTW &&
        extend != MG_EXTEND_SXTX)
        return -1;
    int result = 1;
    bool found;
    uint64_t at = table_probe(&v->cache, pc, &found);
    if (!found && v->cache.count >= v->cache_capacity) {
        /* Full: start again, as the Python cache does (code rarely has that many accesses). */
        table_clear(&v->cache);
        at = table_probe(&v->cache, pc, &found);
        result = 2;
    } else if (found) {
        result = 0;
    }
    if (at == UINT64_MAX)
        return -1;
    struct mg_slot *s = &v->cache.slots[at];
    if (!found)
        v->cache.count++;
    s->key = pc;
    s->used = 1;
    s->fast = fast != 0;
    s->size = (uint8_t)size;
    s->is_write = is_write != 0;
    s->form = (uint8_t)form;
    s->rt = (uint8_t)rt;
    s->rn = (uint8_t)rn;
    s->rm = (uint8_t)rm;
    s->extend = (uint8_t)extend;
    s->shift = (uint8_t)shift;
    s->imm = form == MG_FORM_IMM ? imm : 0;
    return result;
}

MG_API int mg_vcpu_cache_put(struct mg_vcpu *v, uint64_t pc, int fast, unsigned size,
                             int is_write)
{
    return mg_vcpu_cache_put_form(v, pc, fast, size, is_write, MG_FORM_NONE, 0, 0, 0,
                                  MG_EXTEND_UXTX, 0, 0);
}

MG_API int mg_vcpu_cache_get(const struct mg_vcpu *v, uint64_t pc, int *fast, unsigned *size,
                             int *is_write)
{
    if (!vcpu_ok(v))
        return -1;
    const struct mg_slot *s = table_find(&v->cache, pc);
    if (s == NULL)
        return 0;
    if (fast != NULL)
        *fast = s->fast;
    if (size != NULL)
        *size = s->size;
    if (is_write != NULL)
        *is_write = s->is_write;
    return 1;
}

MG_API int mg_vcpu_cache_get_form(const struct mg_vcpu *v, uint64_t pc, unsigned *form,
                                  unsigned *rt, unsigned *rn, unsigned *rm, unsigned *extend,
                                  unsigned *shift, int64_t *imm)
{
    if (!vcpu_ok(v))
        return -1;
    const struct mg_slot *s = table_find(&v->cache, pc);
    if (s == NULL)
        return 0;
    if (form != NULL)
        *form = s->form;
    if (rt != NULL)
        *rt = s->rt;
    if (rn != NULL)
        *rn = s->rn;
    if (rm != NULL)
        *rm = s->rm;
    if (extend != NULL)
        *extend = s->extend;
    if (shift != NULL)
        *shift = s->shift;
    if (imm != NULL)
        *imm = s->imm;
    return 1;
}

MG_API int mg_vcpu_cache_remove(struct mg_vcpu *v, uint64_t pc)
{
    if (!vcpu_ok(v))
        return -1;
    bool found;
    uint64_t at = table_probe(&v->cache, pc, &found);
    if (!found)
        return 0;
    table_erase_at(&v->cache, at);
    return 1;
}

MG_API int mg_vcpu_cache_clear(struct mg_vcpu *v)
{
    if (!vcpu_ok(v))
        return -1;
    table_clear(&v->cache);
    return 0;
}

MG_API uint64_t mg_vcpu_cache_count(const struct mg_vcpu *v)
{
    return vcpu_ok(v) ? v->cache.count : 0;
}

MG_API uint64_t mg_vcpu_cache_slots(const struct mg_vcpu *v)
{
    return vcpu_ok(v) ? v->cache.mask + 1 : 0;
}

MG_API int mg_vcpu_get_stats(const struct mg_vcpu *v, struct mg_stats *out, size_t out_size)
{
    if (!vcpu_ok(v) || out == NULL || out_size != sizeof *out)
        return -1;
    *out = v->stats;
    return 0;
}

MG_API int mg_vcpu_reset_stats(struct mg_vcpu *v)
{
    if (!vcpu_ok(v))
        return -1;
    memset(&v->stats, 0, sizeof v->stats);
    return 0;
}

/* -- PL011 state ----------------------------------------------------------------------------- */

struct mg_pl011 {
    uint32_t magic;
    uint32_t users;
    uint32_t fr;
    uint32_t modes;
    int32_t flush_byte; /* -1: none */
    uint32_t reserved;
    uint64_t head;
    uint64_t count;
    uint64_t mask; /* ring capacity - 1 */
    uint64_t total;
    uint8_t *ring;
};

static inline bool pl011_ok(const struct mg_pl011 *p)
{
    return p != NULL && p->magic == MG_MAGIC_PL011;
}

MG_API struct mg_pl011 *mg_pl011_create(uint32_t ring_capacity)
{
    if (ring_capacity < MG_RING_MIN || ring_capacity > MG_RING_MAX ||
        (ring_capacity & (ring_capacity - 1)) != 0)
        return NULL;
    struct mg_pl011 *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->ring = calloc(ring_capacity, 1);
    if (p->ring == NULL) {
        free(p);
        return NULL;
    }
    p->mask = ring_capacity - 1;
    p->flush_byte = -1;
    p->magic = MG_MAGIC_PL011;
    return p;
}

MG_API int mg_pl011_destroy(struct mg_pl011 *p)
{
    if (!pl011_ok(p) || p->users != 0)
        return -1;
    free(p->ring);
    p->magic = MG_MAGIC_DEAD;
    free(p);
    return 0;
}

MG_API int mg_pl011_set_mode(struct mg_pl011 *p, unsigned modes, int flush_byte)
{
    if (!pl011_ok(p) || (modes & ~MG_PL011_MODES_ALL) != 0 || flush_byte < -1 ||
        flush_byte > 255)
        return -1;
    p->modes = modes;
    p->flush_byte = flush_byte;
    return 0;
}

MG_API int mg_pl011_set_fr(struct mg_pl011 *p, uint32_t fr)
{
    if (!pl011_ok(p))
        return -1;
    p->fr = fr;
    return 0;
}

MG_API int64_t mg_pl011_get_fr(const struct mg_pl011 *p)
{
    return pl011_ok(p) ? (int64_t)p->fr : -1;
}

MG_API uint64_t mg_pl011_pending(const struct mg_pl011 *p)
{
    return pl011_ok(p) ? p->count : 0;
}

MG_API uint64_t mg_pl011_total(const struct mg_pl011 *p)
{
    return pl011_ok(p) ? p->total : 0;
}

MG_API uint64_t mg_pl011_drain(struct mg_pl011 *p, uint8_t *buf, uint64_t cap)
{
    if (!pl011_ok(p) || buf == NULL)
        return 0;
    uint64_t n = p->count < cap ? p->count : cap;
    uint64_t first = p->mask + 1 - p->head; /* bytes up to the end of the ring */
    if (first > n)
        first = n;
    memcpy(buf, p->ring + p->head, (size_t)first);
    memcpy(buf + first, p->ring, (size_t)(n - first));
    p->head = (p->head + n) & p->mask;
    p->count -= n;
    return n;
}

/* -- regions --------------------------------------------------------------------------------- */

struct mg_region {
    uint32_t magic;
    uint32_t kind;
    uint64_t base;
    uint64_t size;
    struct mg_vcpu *vcpu;
    struct mg_pl011 *pl011;
    mg_read_escape_t read_escape;
    mg_write_escape_t write_escape;
    mg_read_escape_t forward_read;
    mg_write_escape_t forward_write;
};

static inline bool region_ok(const struct mg_region *r)
{
    return r != NULL && r->magic == MG_MAGIC_REGION;
}

MG_API struct mg_region *mg_region_create(struct mg_vcpu *v, uint64_t base, uint64_t size,
                                          unsigned kind, struct mg_pl011 *pl011,
                                          mg_read_escape_t read_escape,
                                          mg_write_escape_t write_escape)
{
    if (!vcpu_ok(v) || size == 0 || base > UINT64_MAX - (size - 1) || read_escape == NULL ||
        write_escape == NULL || v->users == UINT32_MAX)
        return NULL;
    if (kind == MG_KIND_PL011) {
        if (!pl011_ok(pl011) || pl011->users == UINT32_MAX)
            return NULL;
    } else if (kind != MG_KIND_GENERIC || pl011 != NULL) {
        return NULL;
    }
    struct mg_region *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->kind = kind;
    r->base = base;
    r->size = size;
    r->vcpu = v;
    r->pl011 = pl011;
    r->read_escape = read_escape;
    r->write_escape = write_escape;
    v->users++;
    if (pl011 != NULL)
        pl011->users++;
    r->magic = MG_MAGIC_REGION;
    return r;
}

MG_API int mg_region_set_forward(struct mg_region *r, mg_read_escape_t read,
                                 mg_write_escape_t write)
{
    if (!region_ok(r))
        return -1;
    r->forward_read = read;
    r->forward_write = write;
    return 0;
}

MG_API int mg_region_destroy(struct mg_region *r)
{
    if (!region_ok(r))
        return -1;
    r->vcpu->users--;
    if (r->pl011 != NULL)
        r->pl011->users--;
    r->magic = MG_MAGIC_DEAD;
    free(r);
    return 0;
}

/* -- registers ------------------------------------------------------------------------------ */

/* Unicorn's id of X<n>, n in 0..30 (X29 and X30 are not after X28 in uc_arm64_reg). */
static inline int xreg_id(unsigned n)
{
    if (n <= 28)
        return UC_ARM64_REG_X0 + (int)n;
    return n == 29 ? UC_ARM64_REG_X29 : UC_ARM64_REG_X30;
}

/* The instruction's effective address from its cached address form and the registers, as
 * mmioguard.arch.decode.effective_address computes it (wrapping at 2^64). False when the entry
 * has no form or a register cannot be read. */
static bool effective_address(struct mg_vcpu *v, const struct mg_slot *e, uint64_t *ea)
{
    if (e->form != MG_FORM_IMM && e->form != MG_FORM_REG)
        return false;
    uint64_t vals[2] = {0, 0};
    int ids[2];
    void *ptrs[2] = {&vals[0], &vals[1]};
    int n = 0;
    ids[n++] = e->rn == 31 ? UC_ARM64_REG_SP : xreg_id(e->rn);
    if (e->form == MG_FORM_REG && e->rm != 31) /* rm 31 is XZR: the index stays 0 */
        ids[n++] = xreg_id(e->rm);
    if (uc_reg_read_batch(v->uc, ids, ptrs, n) != UC_ERR_OK) {
        v->stats.errors++;
        return false;
    }
    if (e->form == MG_FORM_IMM) {
        *ea = vals[0] + (uint64_t)e->imm;
        return true;
    }
    uint64_t index = vals[1];
    if (e->extend == MG_EXTEND_UXTW)
        index &= 0xffffffffull;
    else if (e->extend == MG_EXTEND_SXTW)
        index = (index & 0x80000000ull) ? (index | 0xffffffff00000000ull)
                                        : (index & 0xffffffffull);
    *ea = vals[0] + (index << (e->shift & 7u)); /* shift <= 4, checked at put */
    return true;
}

/* -- the guard's decision -------------------------------------------------------------------- */

enum mg_verdict {
    MG_ESCAPE = 0, /* Python decides */
    MG_ALLOW = 1,  /* certainly forwarded */
    MG_REFUSE = 2, /* certainly aborted: the whole access of a fast instruction, guard enforcing */
};

/* The guard's fast decision (Vcpu.mmio_callbacks' fast_read/fast_write, and for a refusal
 * Vcpu._mmio_slow's): MG_ALLOW only when the access is certainly forwarded, MG_REFUSE (with the
 * entry and the effective address) only when it is certainly aborted; anything else escapes. */
static inline enum mg_verdict judge(const struct mg_region *r, uint64_t pc, uint64_t offset,
                                    unsigned size, bool is_write, const struct mg_slot **entry,
                                    uint64_t *far)
{
    struct mg_vcpu *v = r->vcpu;
    if (!(v->flags & MG_VCPU_FAST_MMIO))
        return MG_ESCAPE;
    if (size == 0 || size > 8 || offset >= r->size || size > r->size - offset)
        return MG_ESCAPE;
    const struct mg_slot *e = table_find(&v->cache, pc);
    if (e == NULL || !e->fast || e->size != size || (bool)e->is_write != is_write)
        return MG_ESCAPE;
    const struct mg_guard *g = v->guard;
    if (!g->enrolled)
        return MG_ALLOW;
    uint64_t pa = r->base + offset; /* no wrap: base + size - 1 was checked at creation */
    /* Unicorn splits an unaligned access into aligned pieces, each reaching the callback on
     * its own: a piece that fits a mapped granule must not be let through when another piece
     * is refused. Only the whole access is decided here; a piece goes to Python, which decides
     * on the instruction's whole access. Unicorn marks its pieces (size_recur_mem); without
     * that mark a piece is told by its page offset, which differs from the instruction's
     * effective address's. */
    bool have_ea = false;
    uint64_t ea = 0;
    if (v->size_recur != NULL) {
        if (*v->size_recur != 0)
            return MG_ESCAPE;
    } else {
        if (!effective_address(v, e, &ea) || ((ea ^ pa) & MG_PAGE_OFFSET_MASK) != 0)
            return MG_ESCAPE;
        have_ea = true;
    }
    uint64_t granule = pa >> g->shift;
    if (((pa + (size - 1)) >> g->shift) != granule)
        return MG_ESCAPE; /* crosses into the next granule: Python checks both */
    if (table_find(&g->set, granule) != NULL)
        return MG_ALLOW;
    if (!(v->flags & MG_VCPU_NATIVE_ABORT))
        return MG_ESCAPE;
    if (!have_ea && (!effective_address(v, e, &ea) || ((ea ^ pa) & MG_PAGE_OFFSET_MASK) != 0))
        return MG_ESCAPE;
    *entry = e;
    *far = ea;
    return MG_REFUSE;
}

MG_API int mg_region_decide(const struct mg_region *r, uint64_t pc, uint64_t offset,
                            unsigned size, int is_write)
{
    if (!region_ok(r))
        return -1;
    const struct mg_slot *e = NULL;
    uint64_t far = 0;
    return (int)judge(r, pc, offset, size, is_write != 0, &e, &far);
}

/* -- guard aborts ---------------------------------------------------------------------------- */

/* Record the guard's abort of the instruction at pc (entry e, effective address far): the
 * values Python's _Abort would carry, and the load's destination register as it is now, before
 * Unicorn writes it. False (nothing recorded) when Python must handle it: a register cannot be
 * read, a state C does not model, or an abort already waiting. */
static bool record_abort(struct mg_vcpu *v, const struct mg_slot *e, uint64_t pc, uint64_t far,
                         bool save_rt)
{
    if (v->abort.active)
        return false;
    uint64_t vals[2] = {0, 0};
    int ids[2] = {UC_ARM64_REG_PSTATE, 0};
    void *ptrs[2] = {&vals[0], &vals[1]};
    int n = 1;
    bool save = save_rt && !e->is_write && e->rt != 31; /* rt 31 is WZR/XZR: nothing written */
    if (save)
        ids[n++] = xreg_id(e->rt);
    if (uc_reg_read_batch(v->uc, ids, ptrs, n) != UC_ERR_OK) {
        v->stats.errors++;
        return false;
    }
    uint64_t pstate = vals[0];
    uint64_t el = (pstate >> 2) & 3u;
    if ((pstate & MG_PSTATE_NRW) || el > 1)
        return false;
    v->saved = save;
    v->saved_reg = save ? ids[1] : 0;
    v->saved_value = save ? vals[1] : 0;
    v->abort.elr = pc;
    v->abort.esr = ((el == 0 ? MG_EC_DABT_LOW : MG_EC_DABT_CUR) << 26) | MG_ESR_IL |
                   MG_FSC_EXTERNAL;
    v->abort.far = far;
    v->abort.active = 1;
    return true;
}

MG_API const struct mg_abort *mg_vcpu_abort(const struct mg_vcpu *v)
{
    return vcpu_ok(v) ? &v->abort : NULL;
}

/* A fault on an unmapped address, decided as Vcpu._on_fault would when that is cheap: the MMU
 * off, a fast entry with an address form for PC, the guard enrolled and enforcing. Records the
 * abort and returns true; false leaves it to Python. address: the piece that faulted. */
static bool fault_abort(struct mg_vcpu *v, bool is_write, uint64_t address)
{
    const unsigned need = MG_VCPU_FAST_MMIO | MG_VCPU_NATIVE_ABORT;
    const struct mg_guard *g = v->guard;
    if ((v->flags & need) != need || !g->enrolled || v->abort.active)
        return false;
    uint64_t pc = 0;
    uc_arm64_cp_reg sctlr = {MG_CP_SCTLR_EL1, 0};
    int ids[2] = {UC_ARM64_REG_PC, UC_ARM64_REG_CP_REG};
    void *ptrs[2] = {&pc, &sctlr};
    if (uc_reg_read_batch(v->uc, ids, ptrs, 2) != UC_ERR_OK) {
        v->stats.errors++;
        return false;
    }
    if (sctlr.val & MG_SCTLR_M)
        return false; /* the MMU is on: Python walks the tables for the physical address */
    const struct mg_slot *e = table_find(&v->cache, pc);
    if (e == NULL || !e->fast || (bool)e->is_write != is_write)
        return false;
    uint64_t ea;
    if (!effective_address(v, e, &ea) || ea >= MG_VA_FLAT_LIMIT)
        return false;
    uint64_t end = ea + (e->size - 1u);
    /* The faulting piece lies on the page of the access's first or last byte, or the PC is not
     * that of the accessing instruction: then Python looks. */
    if (((address ^ ea) >> 12) != 0 && ((address ^ end) >> 12) != 0)
        return false;
    /* MMU off: the physical address is the virtual one (Vcpu.translate). Python's decide()
     * forwards when both granules are mapped (then it emulates the access): only the refusal
     * is taken here. Nothing was written: the fault stopped the instruction. */
    uint64_t first = ea >> g->shift;
    uint64_t last = end >> g->shift;
    if (table_find(&g->set, first) != NULL &&
        (last == first || table_find(&g->set, last) != NULL))
        return false;
    if (!record_abort(v, e, pc, ea, false))
        return false;
    v->stats.fault_abort++;
    return true;
}

MG_API int mg_vcpu_take_abort(struct mg_vcpu *v, unsigned mode)
{
    if (!vcpu_ok(v) || mode > MG_TAKE_ENTER)
        return -1;
    if (!v->abort.active)
        return 0;
    struct mg_abort a = v->abort;
    bool saved = v->saved;
    v->abort.active = 0;
    v->saved = 0;
    if (mode == MG_TAKE_DROP)
        return 1;
    uc_engine *uc = v->uc;
    if (saved && uc_reg_write(uc, v->saved_reg, &v->saved_value) != UC_ERR_OK) {
        v->stats.errors++;
        return -2;
    }
    if (mode == MG_TAKE_RESTORE)
        return 1;

    /* Exception entry to EL1 (mmioguard.arch.exception.enter), written as Vcpu._inject writes
     * it: one batch in the same order, SPSR_EL1 last as a system register, which also makes
     * Unicorn recompute its cached PSTATE flags (docs/unicorn.md). */
    uint64_t pstate = 0, vbar = 0, sp = 0, sp_el1 = 0;
    {
        const int ids[4] = {UC_ARM64_REG_PSTATE, UC_ARM64_REG_VBAR_EL1, UC_ARM64_REG_SP,
                            UC_ARM64_REG_SP_EL1};
        void *ptrs[4] = {&pstate, &vbar, &sp, &sp_el1};
        if (uc_reg_read_batch(uc, ids, ptrs, 4) != UC_ERR_OK) {
            v->stats.errors++;
            return -2;
        }
    }
    uint64_t el = (pstate >> 2) & 3u;
    if ((pstate & MG_PSTATE_NRW) || el > 1)
        return 2;
    bool sp_elx = (pstate & MG_PSTATE_SP) != 0;
    unsigned offset = el == 0 ? MG_VECTOR_LOWER_A64
                              : (sp_elx ? MG_VECTOR_CUR_SPX : MG_VECTOR_CUR_SP0);
    uint64_t pc = (vbar & ~0x7ffull) + offset;
    bool bank = !sp_elx || el == 0; /* the SP in use was SP_EL0: bank it, SP_EL1 is current */
    uint64_t boot = MG_BOOT_PSTATE;
    uc_arm64_cp_reg spsr = {MG_CP_SPSR_EL1, pstate};
    int ids[8] = {UC_ARM64_REG_ELR_EL1, UC_ARM64_REG_ESR_EL1, UC_ARM64_REG_PC,
                  UC_ARM64_REG_FAR_EL1};
    void *ptrs[8] = {&a.elr, &a.esr, &pc, &a.far};
    int n = 4;
    if (bank) {
        ids[n] = UC_ARM64_REG_SP_EL0;
        ptrs[n++] = &sp;
        ids[n] = UC_ARM64_REG_SP;
        ptrs[n++] = &sp_el1;
    }
    ids[n] = UC_ARM64_REG_PSTATE;
    ptrs[n++] = &boot;
    ids[n] = UC_ARM64_REG_CP_REG;
    ptrs[n++] = &spsr;
    if (uc_reg_write_batch(uc, ids, ptrs, n) != UC_ERR_OK) {
        v->stats.errors++;
        return -2;
    }
    v->stats.abort_enter++;
    return 1;
}

/* -- Unicorn callbacks ------------------------------------------------------------------------ */

/* The PC of the instruction whose device access is being dispatched, into *pc (false: it
 * cannot be read). Without a memory hook Unicorn leaves PC where it was last stored
 * (docs/unicorn.md); QEMU records the host address of the access in mem_io_pc just before it
 * calls the device, and cpu_restore_state maps that back to the guest instruction, as Unicorn
 * itself does before it calls a memory hook. The answer is remembered by host address until
 * the translation cache is flushed. mem_io_pc is cleared after use: the second callback of a
 * split access (none in between) is the same instruction, and a device access from outside
 * the emulator (none is made today) must not restore a stale PC. */
static inline bool access_pc(struct mg_vcpu *v, uint64_t *pc)
{
    if (v->cpu == NULL)
        return uc_reg_read(v->uc, UC_ARM64_REG_PC, pc) == UC_ERR_OK;
    uintptr_t host = *v->mem_io_pc;
    if (host == 0) {
        *pc = v->last_pc;
        return true;
    }
    *v->mem_io_pc = 0;
    uint32_t flushes = *v->flush_count;
    if (flushes != v->seen_flush) {
        memset(v->pc_memo, 0, sizeof v->pc_memo);
        v->seen_flush = flushes;
    }
    struct mg_pc_memo *m = &v->pc_memo[(host ^ (host >> 9)) & (MG_PC_MEMO_SIZE - 1)];
    v->last_host = host;
    if (m->host == host) {
        v->pc_exact = 0;
        v->last_pc = *pc = m->pc;
        return true;
    }
    v->restore(v->cpu, host, false);
    if (uc_reg_read(v->uc, UC_ARM64_REG_PC, pc) != UC_ERR_OK)
        return false;
    v->pc_exact = 1;
    m->host = host;
    m->pc = v->last_pc = *pc;
    return true;
}

/* Before Python runs inside a callback: Unicorn's PC is the accessing instruction's, as it
 * would be with the memory hooks (Python reads registers, may stop the emulator). */
static inline void exact_pc(struct mg_vcpu *v)
{
    if (v->cpu != NULL && !v->pc_exact && v->last_host != 0) {
        v->restore(v->cpu, v->last_host, false);
        v->pc_exact = 1;
    }
}

static inline uint64_t size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (((uint64_t)1 << (8 * size)) - 1);
}

MG_API uint64_t mg_mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *user_data)
{
    struct mg_region *r = user_data;
    if (!region_ok(r)) {
        uc_emu_stop(uc); /* not one of ours: refuse to run on */
        return 0;
    }
    struct mg_vcpu *v = r->vcpu;
    uint64_t pc = 0;
    if (!access_pc(v, &pc)) {
        v->stats.errors++;
        v->stats.mmio_escape++;
        return r->read_escape(pc, offset, size);
    }
    const struct mg_slot *e = NULL;
    uint64_t far = 0;
    enum mg_verdict verdict = judge(r, pc, offset, size, false, &e, &far);
    if (verdict == MG_REFUSE && record_abort(v, e, pc, far, true)) {
        /* Unicorn writes the return value to the destination register before it stops:
         * mg_vcpu_take_abort puts the saved value back. */
        v->stats.mmio_abort++;
        uc_emu_stop(uc);
        return 0;
    }
    if (verdict != MG_ALLOW) {
        v->stats.mmio_escape++;
        exact_pc(v);
        return r->read_escape(pc, offset, size);
    }
    const struct mg_pl011 *p = r->pl011;
    if (r->kind == MG_KIND_PL011 && offset == MG_PL011_FR && (p->modes & MG_PL011_FR_FAST)) {
        v->stats.mmio_native++;
        return p->fr & size_mask(size);
    }
    v->stats.mmio_forward++;
    exact_pc(v);
    mg_read_escape_t forward = r->forward_read != NULL ? r->forward_read : r->read_escape;
    return forward(pc, offset, size);
}

MG_API void mg_mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value,
                          void *user_data)
{
    struct mg_region *r = user_data;
    if (!region_ok(r)) {
        uc_emu_stop(uc);
        return;
    }
    struct mg_vcpu *v = r->vcpu;
    uint64_t pc = 0;
    if (size >= 1 && size <= 8)
        value &= size_mask(size);
    if (!access_pc(v, &pc)) {
        v->stats.errors++;
        v->stats.mmio_escape++;
        r->write_escape(pc, offset, size, value);
        return;
    }
    const struct mg_slot *e = NULL;
    uint64_t far = 0;
    enum mg_verdict verdict = judge(r, pc, offset, size, true, &e, &far);
    if (verdict == MG_REFUSE && record_abort(v, e, pc, far, false)) {
        v->stats.mmio_abort++;
        uc_emu_stop(uc);
        return;
    }
    if (verdict != MG_ALLOW) {
        v->stats.mmio_escape++;
        exact_pc(v);
        r->write_escape(pc, offset, size, value);
        return;
    }
    struct mg_pl011 *p = r->pl011;
    if (r->kind == MG_KIND_PL011 && offset == MG_PL011_DR && size <= 4 &&
        (p->modes & MG_PL011_DR_FAST)) {
        uint8_t byte = (uint8_t)(value & 0xff);
        if (p->count <= p->mask && (int32_t)byte != p->flush_byte) {
            p->ring[(p->head + p->count) & p->mask] = byte;
            p->count++;
            p->total++;
            v->stats.mmio_native++;
            return;
        }
        /* A full ring or the flush byte: Python drains the ring, then writes this byte. */
    }
    v->stats.mmio_forward++;
    exact_pc(v);
    mg_write_escape_t forward = r->forward_write != NULL ? r->forward_write : r->write_escape;
    forward(pc, offset, size, value);
}

/* -- hypercalls ------------------------------------------------------------------------------- */

static bool answer_hvc(const struct mg_vcpu *v, uint32_t fid, uint64_t out[4])
{
    out[0] = out[1] = out[2] = out[3] = 0;
    switch (fid) {
    case MG_FID_SMCCC_VERSION:
        out[0] = MG_SMCCC_VERSION_1_1;
        return true;
    case MG_FID_KVM_UID:
        out[0] = 0xb66fb428u;
        out[1] = 0xe911c52eu;
        out[2] = 0x564bcaa9u;
        out[3] = 0x743a004du;
        return true;
    case MG_FID_KVM_FEATURES:
        if (!v->have_features)
            return false;
        out[0] = v->features;
        return true;
    case MG_FID_PSCI_VERSION:
        if (v->psci_version == 0)
            return false;
        out[0] = v->psci_version;
        return true;
    default:
        break;
    }
    uint32_t n = v->n_info <= MG_MAX_INFO_FIDS ? v->n_info : MG_MAX_INFO_FIDS;
    for (uint32_t i = 0; i < n; i++) {
        if (v->info_fids[i] == fid) {
            out[0] = (uint64_t)1 << v->guard->shift;
            return true;
        }
    }
    return false;
}

MG_API void mg_intr(uc_engine *uc, uint32_t intno, void *user_data)
{
    struct mg_vcpu *v = user_data;
    if (!vcpu_ok(v)) {
        uc_emu_stop(uc);
        return;
    }
    if (intno == MG_EXCP_HVC && (v->flags & MG_VCPU_NATIVE_HVC)) {
        uint64_t x0 = 0;
        uint64_t out[4];
        if (uc_reg_read(uc, UC_ARM64_REG_X0, &x0) != UC_ERR_OK) {
            v->stats.errors++;
        } else if (answer_hvc(v, (uint32_t)(x0 & 0xffffffffu), out)) {
            static const int regs[4] = {UC_ARM64_REG_X0, UC_ARM64_REG_X1, UC_ARM64_REG_X2,
                                        UC_ARM64_REG_X3};
            void *const vals[4] = {&out[0], &out[1], &out[2], &out[3]};
            if (uc_reg_write_batch(uc, regs, vals, 4) == UC_ERR_OK) {
                v->stats.hvc_native++;
                return;
            }
            v->stats.errors++;
        }
    }
    v->stats.intr_escape++;
    v->intr_escape(intno);
}

MG_API bool mg_mem_unmapped(uc_engine *uc, uc_mem_type type, uint64_t address, int size,
                            int64_t value, void *user_data)
{
    (void)size;
    (void)value;
    struct mg_vcpu *v = user_data;
    if (!vcpu_ok(v)) {
        uc_emu_stop(uc);
        return false;
    }
    if (type == UC_MEM_READ_UNMAPPED || type == UC_MEM_WRITE_UNMAPPED)
        fault_abort(v, type == UC_MEM_WRITE_UNMAPPED, address);
    return false; /* never handled: the emulator stops with the fault, recorded or not */
}

MG_API void mg_mem_nop(uc_engine *uc, uc_mem_type type, uint64_t address, int size,
                       int64_t value, void *user_data)
{
    (void)uc;
    (void)type;
    (void)address;
    (void)size;
    (void)value;
    (void)user_data;
}

MG_API int mg_abi_version(void)
{
    return MG_ABI_VERSION;
}

MG_API uint64_t mg_stats_size(void)
{
    return sizeof(struct mg_stats);
}
