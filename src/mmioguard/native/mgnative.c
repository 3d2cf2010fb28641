/*
 * mmioguard native fast path: device accesses and discovery hypercalls decided in C.
 *
 * Mirrors the untraced hot path of mmioguard.hyp.vcpu.Vcpu.mmio_callbacks: an access is let
 * through when the decode cache has a fast entry for its PC of the same size and direction and
 * (the VM is not enrolled, or the granule of its first byte is mapped and its last byte is in
 * the same granule). Anything else goes to Python, which decides exactly as it does without
 * this module. See mgnative.h for the API and the ownership rules.
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
#define MG_SMCCC_VERSION_1_1 0x10001u

#define MG_GUARD_MIN_SLOTS 1024u

/* -- open-addressing hash table of 64-bit keys (linear probing, load <= 1/2) --------------- */

struct mg_slot {
    uint64_t key;
    uint8_t used;
    uint8_t fast;
    uint8_t size;
    uint8_t is_write;
    uint32_t reserved;
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

struct mg_vcpu {
    uint32_t magic;
    uint32_t flags;
    uint32_t users;
    uint32_t n_info;
    uint32_t have_features;
    uint32_t info_fids[MG_MAX_INFO_FIDS];
    uint64_t features;
    uc_engine *uc;
    struct mg_guard *guard;
    mg_intr_escape_t intr_escape;
    uint64_t cache_capacity;
    struct mg_table cache;
    struct mg_stats stats;
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

MG_API int mg_vcpu_cache_put(struct mg_vcpu *v, uint64_t pc, int fast, unsigned size,
                             int is_write)
{
    if (!vcpu_ok(v) || size > 8)
        return -1;
    if (fast && size != 1 && size != 2 && size != 4 && size != 8)
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
    return result;
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

/* The guard's fast decision (Vcpu.mmio_callbacks' fast_read/fast_write): true only when the
 * access is certainly forwarded; false sends it to Python, which decides. */
static inline bool decide(const struct mg_region *r, uint64_t pc, uint64_t offset, unsigned size,
                          bool is_write)
{
    const struct mg_vcpu *v = r->vcpu;
    if (!(v->flags & MG_VCPU_FAST_MMIO))
        return false;
    if (size == 0 || size > 8 || offset >= r->size || size > r->size - offset)
        return false;
    const struct mg_slot *e = table_find(&v->cache, pc);
    if (e == NULL || !e->fast || e->size != size || (bool)e->is_write != is_write)
        return false;
    const struct mg_guard *g = v->guard;
    if (!g->enrolled)
        return true;
    uint64_t pa = r->base + offset; /* no wrap: base + size - 1 was checked at creation */
    uint64_t granule = pa >> g->shift;
    if (((pa + (size - 1)) >> g->shift) != granule)
        return false; /* crosses into the next granule: Python checks both */
    return table_find(&g->set, granule) != NULL;
}

MG_API int mg_region_decide(const struct mg_region *r, uint64_t pc, uint64_t offset,
                            unsigned size, int is_write)
{
    if (!region_ok(r))
        return -1;
    return decide(r, pc, offset, size, is_write != 0);
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
    if (uc_reg_read(uc, UC_ARM64_REG_PC, &pc) != UC_ERR_OK) {
        v->stats.errors++;
        v->stats.mmio_escape++;
        return r->read_escape(pc, offset, size);
    }
    if (!decide(r, pc, offset, size, false)) {
        v->stats.mmio_escape++;
        return r->read_escape(pc, offset, size);
    }
    const struct mg_pl011 *p = r->pl011;
    if (r->kind == MG_KIND_PL011 && offset == MG_PL011_FR && (p->modes & MG_PL011_FR_FAST)) {
        v->stats.mmio_native++;
        return p->fr & size_mask(size);
    }
    v->stats.mmio_forward++;
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
    if (uc_reg_read(uc, UC_ARM64_REG_PC, &pc) != UC_ERR_OK) {
        v->stats.errors++;
        v->stats.mmio_escape++;
        r->write_escape(pc, offset, size, value);
        return;
    }
    if (!decide(r, pc, offset, size, true)) {
        v->stats.mmio_escape++;
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
